//! The SQL writer for D1: statements that `wrangler d1 execute --file` accepts and that
//! reproduce every value exactly.
//!
//! D1 rejects a statement over 100,000 bytes and an explicit transaction, and runs with
//! foreign keys on (only `PRAGMA defer_foreign_keys` can relax them). So rows are batched by
//! bytes, a value too large for one statement is written as a first piece followed by
//! appends, and no BEGIN or COMMIT is ever written.

use std::io::Write;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::schema::quote_ident;
use crate::value::ValueRef;

/// D1's maximum SQL statement length in bytes.
pub const D1_MAX_STATEMENT_BYTES: usize = 100_000;

/// D1's maximum size of a string, BLOB or row in bytes.
pub const D1_MAX_VALUE_BYTES: usize = 2_000_000;

/// Formats values as SQL literals that SQLite reads back with the same storage class and
/// bits.
pub struct LiteralWriter {
    /// The bundled SQLite, used to check that a REAL's decimal form parses back exactly.
    check: Connection,
}

impl LiteralWriter {
    pub fn new() -> Result<LiteralWriter> {
        let check = Connection::open_in_memory().map_err(|e| Error::sqlite("opening an in-memory database", ":memory:", e))?;
        Ok(LiteralWriter { check })
    }

    /// Appends the literal of `value` to `out`.
    pub fn push(&self, out: &mut String, value: ValueRef<'_>) -> Result<()> {
        match value {
            ValueRef::Null => out.push_str("NULL"),
            ValueRef::Integer(i) => out.push_str(&i.to_string()),
            ValueRef::Real(r) => out.push_str(&self.real(r)?),
            ValueRef::Text(t) => push_text(out, t),
            ValueRef::Blob(b) => push_blob(out, b),
        }
        Ok(())
    }

    /// Formats a REAL literal. Rust's shortest round-trip form always has a decimal point or
    /// an exponent, so SQLite reads it as REAL, and infinities are written as 9e999, which
    /// SQLite reads as infinity. SQLite's decimal parser is not correctly rounded for every
    /// value: in a test of the bundled SQLite, about one in six doubles with random bits came
    /// back one bit off from their shortest form. So the form is checked against SQLite,
    /// and a value that does not come back exact is written as an exact product of its
    /// integer significand and powers of two.
    pub fn real(&self, r: f64) -> Result<String> {
        if r.is_infinite() {
            return Ok(if r > 0.0 { "9e999".into() } else { "-9e999".into() });
        }
        let decimal = format!("{r:?}");
        if self.parses_to(&decimal, r)? {
            return Ok(decimal);
        }
        let exact = exact_real_expression(r);
        if self.parses_to(&exact, r)? {
            return Ok(exact);
        }
        Err(Error::Invalid(format!("cannot write REAL {r:?} (bits {:016x}) as SQL that reads back exactly", r.to_bits())))
    }

    fn parses_to(&self, literal: &str, r: f64) -> Result<bool> {
        let parsed: rusqlite::types::Value = self
            .check
            .query_row(&format!("SELECT {literal}"), [], |row| row.get(0))
            .map_err(|e| Error::sqlite("checking a REAL literal", ":memory:", e))?;
        Ok(matches!(parsed, rusqlite::types::Value::Real(p) if p.to_bits() == r.to_bits()))
    }
}

/// Writes `r` as `(m * 2^e)` using only integer literals and exact multiplications or
/// divisions by powers of two, each of which IEEE-754 performs without rounding.
fn exact_real_expression(r: f64) -> String {
    let bits = r.to_bits();
    let negative = bits >> 63 == 1;
    let exponent_bits = ((bits >> 52) & 0x7ff) as i64;
    let fraction = bits & ((1u64 << 52) - 1);
    let (mantissa, mut exponent) = if exponent_bits == 0 { (fraction, -1074) } else { (fraction | (1 << 52), exponent_bits - 1075) };
    let sign = if negative { "-" } else { "" };
    let mut expr = format!("({sign}{mantissa}.0");
    // Steps of 2^60 keep every factor an exact integer literal.
    while exponent != 0 {
        let step = exponent.clamp(-60, 60);
        let factor = 1u64 << step.unsigned_abs();
        expr.push_str(if step > 0 { " * " } else { " / " });
        expr.push_str(&factor.to_string());
        exponent -= step;
    }
    expr.push(')');
    expr
}

/// Appends a TEXT literal: a quoted string when the bytes are valid UTF-8 without NUL, otherwise
/// `CAST(X'…' AS TEXT)`, which keeps NUL and invalid UTF-8 byte for byte.
pub fn push_text(out: &mut String, text: &[u8]) {
    match std::str::from_utf8(text) {
        Ok(s) if !s.contains('\0') => {
            out.push('\'');
            out.push_str(&s.replace('\'', "''"));
            out.push('\'');
        }
        _ => {
            out.push_str("CAST(");
            push_blob(out, text);
            out.push_str(" AS TEXT)");
        }
    }
}

pub fn push_blob(out: &mut String, bytes: &[u8]) {
    out.push_str("X'");
    out.push_str(&hex::encode_upper(bytes));
    out.push('\'');
}

/// Bytes a value's literal takes, without formatting it (REALs are bounded by their exact
/// form).
pub fn literal_len(value: ValueRef<'_>) -> usize {
    match value {
        ValueRef::Null => 4,
        ValueRef::Integer(_) => 20,
        ValueRef::Real(_) => 120,
        ValueRef::Text(t) => 2 * t.len() + 20,
        ValueRef::Blob(b) => 2 * b.len() + 3,
    }
}

/// Writes statements to a file, counting them and checking D1's size limit.
pub struct StatementWriter<W: Write> {
    out: W,
    pub statements: u64,
    pub bytes: u64,
    pub max_statement_bytes: usize,
}

impl<W: Write> StatementWriter<W> {
    pub fn new(out: W) -> Self {
        StatementWriter { out, statements: 0, bytes: 0, max_statement_bytes: D1_MAX_STATEMENT_BYTES }
    }

    /// Writes one statement (without its terminating semicolon).
    pub fn statement(&mut self, sql: &str) -> Result<()> {
        let len = sql.len() + 2;
        if len > self.max_statement_bytes {
            return Err(Error::Invalid(format!(
                "an SQL statement of {len} bytes exceeds D1's limit of {} bytes: {}…",
                self.max_statement_bytes,
                &sql[..sql.floor_char_boundary(120)]
            )));
        }
        self.out.write_all(sql.as_bytes()).and_then(|_| self.out.write_all(b";\n")).map_err(|e| Error::io("writing SQL", e))?;
        self.statements += 1;
        self.bytes += len as u64;
        Ok(())
    }

    pub fn comment(&mut self, text: &str) -> Result<()> {
        for line in text.lines() {
            writeln!(self.out, "-- {line}").map_err(|e| Error::io("writing SQL", e))?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<W> {
        self.out.flush().map_err(|e| Error::io("writing SQL", e))?;
        Ok(self.out)
    }
}

/// Address of a row in UPDATE and DELETE statements.
#[derive(Clone, Debug)]
pub enum RowKey<'a> {
    Rowid(i64),
    /// Primary-key column names and values of a WITHOUT ROWID table.
    PrimaryKey(Vec<(&'a str, ValueRef<'a>)>),
}

impl RowKey<'_> {
    pub fn where_clause(&self, literals: &LiteralWriter) -> Result<String> {
        match self {
            RowKey::Rowid(rowid) => Ok(format!("rowid = {rowid}")),
            RowKey::PrimaryKey(columns) => {
                let mut parts = Vec::with_capacity(columns.len());
                for (name, value) in columns {
                    let mut literal = String::new();
                    literals.push(&mut literal, *value)?;
                    parts.push(format!("{} IS {literal}", quote_ident(name)));
                }
                Ok(parts.join(" AND "))
            }
        }
    }
}

/// Batches INSERTs of one table into statements under the size limit, splitting values that
/// cannot fit into one statement.
pub struct InsertBatcher<'t> {
    table: &'t str,
    /// `INSERT INTO "t"("a", "b") VALUES ` including the rowid column when present.
    prefix: String,
    /// Column names in value order (with "rowid" first for rowid tables).
    columns: Vec<String>,
    pending: String,
    pending_rows: u64,
    /// Target size of one statement; the limit minus room for the terminator.
    budget: usize,
}

impl<'t> InsertBatcher<'t> {
    pub fn new(table: &'t str, columns: Vec<String>, budget: usize) -> Self {
        let quoted: Vec<String> = columns.iter().map(|c| if c == "rowid" { c.clone() } else { quote_ident(c) }).collect();
        let prefix = format!("INSERT INTO {}({}) VALUES ", quote_ident(table), quoted.join(", "));
        InsertBatcher { table, prefix, columns, pending: String::new(), pending_rows: 0, budget: budget.saturating_sub(2) }
    }

    /// Adds a row: `values` line up with the batcher's columns; `key` addresses the row for
    /// the appends of an oversized value.
    pub fn push<W: Write>(
        &mut self,
        writer: &mut StatementWriter<W>,
        literals: &LiteralWriter,
        values: &[ValueRef<'_>],
        key: &RowKey<'_>,
    ) -> Result<()> {
        let estimate: usize = values.iter().map(|v| literal_len(*v) + 2).sum::<usize>() + 2;
        if self.prefix.len() + estimate <= self.budget {
            let mut tuple = String::with_capacity(estimate);
            tuple.push('(');
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    tuple.push_str(", ");
                }
                literals.push(&mut tuple, *value)?;
            }
            tuple.push(')');
            let separator = if self.pending.is_empty() { 0 } else { 2 };
            if self.prefix.len() + self.pending.len() + separator + tuple.len() > self.budget {
                self.flush(writer)?;
            }
            if !self.pending.is_empty() {
                self.pending.push_str(", ");
            }
            self.pending.push_str(&tuple);
            self.pending_rows += 1;
            return Ok(());
        }
        self.flush(writer)?;
        self.push_oversized(writer, literals, values, key)
    }

    /// Writes a row too large for one statement. The INSERT has empty values of the right
    /// storage class in place of the large ones, then each large value is appended in pieces.
    fn push_oversized<W: Write>(
        &mut self,
        writer: &mut StatementWriter<W>,
        literals: &LiteralWriter,
        values: &[ValueRef<'_>],
        key: &RowKey<'_>,
    ) -> Result<()> {
        let large = pick_large(values, self.prefix.len(), self.budget);
        let mut insert = self.prefix.clone();
        insert.push('(');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                insert.push_str(", ");
            }
            push_placeholder_or_literal(&mut insert, literals, *value, large[i])?;
        }
        insert.push(')');
        writer.statement(&insert)?;

        let where_clause = key.where_clause(literals)?;
        for (i, value) in values.iter().enumerate().filter(|(i, _)| large[*i]) {
            append_pieces(writer, self.budget, self.table, &self.columns[i], *value, &where_clause)?;
        }
        Ok(())
    }

    pub fn flush<W: Write>(&mut self, writer: &mut StatementWriter<W>) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let statement = format!("{}{}", self.prefix, self.pending);
        self.pending.clear();
        self.pending_rows = 0;
        writer.statement(&statement)
    }
}

/// Marks the TEXT and BLOB values, biggest first, that must leave a statement of
/// `fixed_len` bytes plus the values' literals for it to fit in `budget`.
fn pick_large(values: &[ValueRef<'_>], fixed_len: usize, budget: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(literal_len(values[i])));
    let mut large = vec![false; values.len()];
    let mut total: usize = fixed_len + values.iter().map(|v| literal_len(*v) + 2).sum::<usize>() + 2;
    for i in order {
        if total <= budget {
            break;
        }
        if matches!(values[i], ValueRef::Text(_) | ValueRef::Blob(_)) {
            large[i] = true;
            total -= literal_len(values[i]);
        }
    }
    large
}

/// Writes a value's literal, or for a large value an empty value of the same storage class
/// that `append_pieces` then fills.
fn push_placeholder_or_literal(out: &mut String, literals: &LiteralWriter, value: ValueRef<'_>, large: bool) -> Result<()> {
    match (large, value) {
        (true, ValueRef::Text(_)) => out.push_str("''"),
        (true, _) => out.push_str("X''"),
        (false, value) => literals.push(out, value)?,
    }
    Ok(())
}

/// Appends a TEXT or BLOB value to a column in pieces that each fit in one statement.
fn append_pieces<W: Write>(
    writer: &mut StatementWriter<W>,
    budget: usize,
    table: &str,
    column: &str,
    value: ValueRef<'_>,
    where_clause: &str,
) -> Result<()> {
    let column = quote_ident(column);
    let table = quote_ident(table);
    let overhead = format!("UPDATE {table} SET {column} = CAST({column} || CAST(X'' AS TEXT) AS BLOB) WHERE {where_clause}").len();
    let piece_bytes = budget.saturating_sub(overhead) / 2;
    if piece_bytes == 0 {
        return Err(Error::Invalid(format!("table {table}: the row key is too long to address the row in an UPDATE")));
    }
    let (bytes, target) = match value {
        ValueRef::Text(t) => (t, "TEXT"),
        ValueRef::Blob(b) => (b, "BLOB"),
        _ => return Ok(()),
    };
    for piece in bytes.chunks(piece_bytes) {
        let mut literal = String::with_capacity(piece.len() * 2 + 20);
        push_blob(&mut literal, piece);
        // `||` always yields TEXT, so a BLOB is cast back after each append.
        // NOTE: in a NUMERIC column a digits-only prefix of a huge TEXT value would be
        // converted by affinity between appends; D1 data has not shown such values.
        writer.statement(&format!("UPDATE {table} SET {column} = CAST({column} || CAST({literal} AS TEXT) AS {target}) WHERE {where_clause}"))?;
    }
    Ok(())
}

/// Writes `UPDATE table SET ... WHERE ...`, splitting values too large for one statement
/// into appends.
pub fn write_update<W: Write>(
    writer: &mut StatementWriter<W>,
    literals: &LiteralWriter,
    table: &str,
    sets: &[(&str, ValueRef<'_>)],
    where_clause: &str,
) -> Result<()> {
    let budget = writer.max_statement_bytes.saturating_sub(2);
    let values: Vec<ValueRef<'_>> = sets.iter().map(|(_, v)| *v).collect();
    let fixed = format!("UPDATE {} SET  WHERE {where_clause}", quote_ident(table)).len() + sets.iter().map(|(c, _)| c.len() + 6).sum::<usize>();
    let large = pick_large(&values, fixed, budget);
    let mut parts = Vec::with_capacity(sets.len());
    for (i, (column, value)) in sets.iter().enumerate() {
        let mut part = format!("{} = ", if *column == "rowid" { "rowid".to_string() } else { quote_ident(column) });
        push_placeholder_or_literal(&mut part, literals, *value, large[i])?;
        parts.push(part);
    }
    writer.statement(&format!("UPDATE {} SET {} WHERE {where_clause}", quote_ident(table), parts.join(", ")))?;
    for (_, (column, value)) in sets.iter().enumerate().filter(|(i, _)| large[*i]) {
        append_pieces(writer, budget, table, column, *value, where_clause)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(sql: &str) -> rusqlite::types::Value {
        let conn = Connection::open_in_memory().unwrap();
        conn.query_row(&format!("SELECT {sql}"), [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn whole_number_real_keeps_decimal_point() {
        let literals = LiteralWriter::new().unwrap();
        assert_eq!(literals.real(1.0).unwrap(), "1.0");
    }

    #[test]
    fn negative_zero_reads_back_negative() {
        let literals = LiteralWriter::new().unwrap();
        let value = read_back(&literals.real(-0.0).unwrap());
        assert!(matches!(value, rusqlite::types::Value::Real(r) if r.to_bits() == (-0.0f64).to_bits()));
    }

    #[test]
    fn infinities_read_back_as_infinities() {
        let literals = LiteralWriter::new().unwrap();
        assert!(matches!(read_back(&literals.real(f64::INFINITY).unwrap()), rusqlite::types::Value::Real(r) if r == f64::INFINITY));
        assert!(matches!(read_back(&literals.real(f64::NEG_INFINITY).unwrap()), rusqlite::types::Value::Real(r) if r == f64::NEG_INFINITY));
    }

    #[test]
    fn every_real_reads_back_exactly() {
        let literals = LiteralWriter::new().unwrap();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let r = f64::from_bits(state);
            if r.is_nan() {
                continue;
            }
            let literal = literals.real(r).unwrap();
            assert!(matches!(read_back(&literal), rusqlite::types::Value::Real(p) if p.to_bits() == r.to_bits()), "{literal}");
        }
    }

    #[test]
    fn exact_expression_handles_denormals() {
        let value = read_back(&exact_real_expression(f64::from_bits(1)));
        assert!(matches!(value, rusqlite::types::Value::Real(r) if r.to_bits() == 1));
    }

    #[test]
    fn text_with_nul_uses_cast() {
        let mut out = String::new();
        push_text(&mut out, b"a\0b");
        assert_eq!(out, "CAST(X'610062' AS TEXT)");
    }

    #[test]
    fn text_quotes_are_doubled() {
        let mut out = String::new();
        push_text(&mut out, "it's".as_bytes());
        assert_eq!(out, "'it''s'");
    }

    #[test]
    fn minimum_integer_reads_back_as_integer() {
        let literals = LiteralWriter::new().unwrap();
        let mut out = String::new();
        literals.push(&mut out, ValueRef::Integer(i64::MIN)).unwrap();
        assert!(matches!(read_back(&out), rusqlite::types::Value::Integer(i64::MIN)));
    }

    #[test]
    fn oversized_update_is_split_under_the_limit() {
        let literals = LiteralWriter::new().unwrap();
        let mut writer = StatementWriter::new(Vec::new());
        let big = "é".repeat(120_000);
        write_update(&mut writer, &literals, "t", &[("v", ValueRef::Text(big.as_bytes())), ("n", ValueRef::Integer(7))], "rowid = 1").unwrap();
        let sql = String::from_utf8(writer.finish().unwrap()).unwrap();
        assert!(sql.lines().all(|line| line.len() <= D1_MAX_STATEMENT_BYTES));
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(v TEXT, n INTEGER); INSERT INTO t VALUES ('old', 0);").unwrap();
        conn.execute_batch(&sql).unwrap();
        let (stored, n): (String, i64) = conn.query_row("SELECT v, n FROM t", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!(stored, big);
        assert_eq!(n, 7);
    }

    #[test]
    fn oversized_value_is_split_under_the_limit() {
        let literals = LiteralWriter::new().unwrap();
        let mut writer = StatementWriter::new(Vec::new());
        let mut batcher = InsertBatcher::new("t", vec!["rowid".into(), "v".into()], D1_MAX_STATEMENT_BYTES);
        let big = vec![0xabu8; 300_000];
        batcher.push(&mut writer, &literals, &[ValueRef::Integer(1), ValueRef::Blob(&big)], &RowKey::Rowid(1)).unwrap();
        batcher.flush(&mut writer).unwrap();
        let sql = String::from_utf8(writer.finish().unwrap()).unwrap();
        assert!(sql.lines().all(|line| line.len() <= D1_MAX_STATEMENT_BYTES));
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(v BLOB);").unwrap();
        conn.execute_batch(&sql).unwrap();
        let stored: Vec<u8> = conn.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(stored, big);
    }
}
