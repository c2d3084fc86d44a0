//! Comparing two databases, each a snapshot or a live source, by their table roots.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::id::{Digest, TableId};
use crate::object::snapshot::{DatabaseContent, SchemaObject, SnapshotRecord};
use crate::object::table::TableObject;
use crate::rowdiff::{Row, RowEvent, Side, diff_rows};
use crate::scan::ScanOutput;
use crate::value::Value;

/// The rows and root of one table, as a diff needs them.
#[derive(Clone, Debug)]
pub struct TableView {
    pub id: TableId,
    pub rows: u64,
    pub sql: Option<String>,
}

/// One side of a diff.
#[derive(Clone, Debug)]
pub struct DatabaseView {
    /// Names the side in messages: a snapshot id or a source path.
    pub label: String,
    pub content: DatabaseContent,
    pub root: Digest,
    pub tables: BTreeMap<String, TableView>,
}

impl DatabaseView {
    pub fn from_snapshot(label: String, record: &SnapshotRecord) -> DatabaseView {
        let rows: BTreeMap<&str, u64> = record.tables.iter().map(|t| (t.name.as_str(), t.rows)).collect();
        let tables = record
            .content
            .tables
            .iter()
            .map(|t| (t.name.clone(), TableView { id: t.id, rows: rows.get(t.name.as_str()).copied().unwrap_or(0), sql: None }))
            .collect();
        DatabaseView { label, root: record.root, content: record.content.clone(), tables }
    }

    pub fn from_scan(label: String, scan: &ScanOutput) -> DatabaseView {
        let tables = scan
            .tables
            .iter()
            .map(|(id, t)| (t.name.clone(), TableView { id: *id, rows: t.rows, sql: Some(t.sql.clone()) }))
            .collect();
        DatabaseView { label, root: scan.content.root(), content: scan.content.clone(), tables }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    Changed,
    Unchanged,
}

impl Change {
    pub fn verb(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TableDiff {
    pub name: String,
    pub change: Change,
    pub rows_a: Option<u64>,
    pub rows_b: Option<u64>,
    pub root_a: Option<TableId>,
    pub root_b: Option<TableId>,
}

impl TableDiff {
    pub fn describe_rows(&self) -> String {
        match (self.rows_a, self.rows_b) {
            (Some(a), Some(b)) => format!("{a} → {b} rows"),
            (Some(a), None) => format!("{a} rows"),
            (None, Some(b)) => format!("{b} rows"),
            (None, None) => String::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SchemaDiff {
    pub kind: String,
    pub name: String,
    pub change: Change,
}

#[derive(Clone, Debug, Serialize)]
pub struct DiffReport {
    pub a: String,
    pub b: String,
    pub root_a: Digest,
    pub root_b: Digest,
    pub identical: bool,
    /// Every table of either side, unchanged ones included, sorted by name.
    pub tables: Vec<TableDiff>,
    /// Schema objects other than tables that were added, removed or changed.
    pub schema: Vec<SchemaDiff>,
    /// Changes of `sqlite_sequence`, encoding, user_version or application_id, as sentences.
    pub header: Vec<String>,
}

/// Lists what differs from `a` to `b`: "added" means present in `b` only.
pub fn diff_views(a: &DatabaseView, b: &DatabaseView) -> DiffReport {
    let mut tables = Vec::new();
    let names: std::collections::BTreeSet<&String> = a.tables.keys().chain(b.tables.keys()).collect();
    for name in names {
        let (ta, tb) = (a.tables.get(name), b.tables.get(name));
        let change = match (ta, tb) {
            (Some(x), Some(y)) if x.id == y.id => Change::Unchanged,
            (Some(_), Some(_)) => Change::Changed,
            (Some(_), None) => Change::Removed,
            (None, _) => Change::Added,
        };
        tables.push(TableDiff {
            name: name.clone(),
            change,
            rows_a: ta.map(|t| t.rows),
            rows_b: tb.map(|t| t.rows),
            root_a: ta.map(|t| t.id),
            root_b: tb.map(|t| t.id),
        });
    }

    let key = |o: &SchemaObject| (o.kind, o.name.clone());
    let schema_a: BTreeMap<_, &SchemaObject> = a.content.schema.iter().map(|o| (key(o), o)).collect();
    let schema_b: BTreeMap<_, &SchemaObject> = b.content.schema.iter().map(|o| (key(o), o)).collect();
    let mut schema = Vec::new();
    for k in schema_a.keys().chain(schema_b.keys()).collect::<std::collections::BTreeSet<_>>() {
        let change = match (schema_a.get(k), schema_b.get(k)) {
            (Some(x), Some(y)) if x.sql == y.sql && x.table == y.table => continue,
            (Some(_), Some(_)) => Change::Changed,
            (Some(_), None) => Change::Removed,
            (None, _) => Change::Added,
        };
        schema.push(SchemaDiff { kind: k.0.name().to_string(), name: k.1.clone(), change });
    }

    let mut header = Vec::new();
    let (ca, cb) = (&a.content, &b.content);
    if ca.encoding != cb.encoding {
        header.push(format!("encoding {} → {}", ca.encoding, cb.encoding));
    }
    if ca.user_version != cb.user_version {
        header.push(format!("user_version {} → {}", ca.user_version, cb.user_version));
    }
    if ca.application_id != cb.application_id {
        header.push(format!("application_id {} → {}", ca.application_id, cb.application_id));
    }
    let seq = |c: &DatabaseContent| -> BTreeMap<String, String> {
        c.sequences.iter().map(|s| (s.name.display(), s.seq.display())).collect()
    };
    let (sa, sb) = (seq(ca), seq(cb));
    for name in sa.keys().chain(sb.keys()).collect::<std::collections::BTreeSet<_>>() {
        if sa.get(name) != sb.get(name) {
            header.push(format!(
                "sqlite_sequence {name}: {} → {}",
                sa.get(name).map(String::as_str).unwrap_or("none"),
                sb.get(name).map(String::as_str).unwrap_or("none")
            ));
        }
    }

    DiffReport {
        a: a.label.clone(),
        b: b.label.clone(),
        root_a: a.root,
        root_b: b.root,
        identical: a.root == b.root,
        tables,
        schema,
        header,
    }
}

/// A value as JSON: numbers and strings as themselves, a BLOB as `{"blob": "<hex>"}`, TEXT
/// that is not UTF-8 as `{"text_hex": "<hex>"}`, infinities as the strings "inf" and "-inf".
pub fn value_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => (*i).into(),
        Value::Real(r) if r.is_finite() => serde_json::Number::from_f64(*r).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null),
        Value::Real(r) => (if *r > 0.0 { "inf" } else { "-inf" }).into(),
        Value::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => s.into(),
            Err(_) => serde_json::json!({ "text_hex": hex::encode(t) }),
        },
        Value::Blob(b) => serde_json::json!({ "blob": hex::encode(b) }),
    }
}

/// One row that differs, named by its key.
#[derive(Clone, Debug, Serialize)]
pub struct RowChange {
    pub change: Change,
    /// `{"rowid": n}` for rowid tables, the primary-key columns otherwise.
    pub key: serde_json::Value,
    /// Columns whose values differ (changed rows only).
    pub columns: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TableRowReport {
    pub name: String,
    pub columns_added: Vec<String>,
    pub columns_removed: Vec<String>,
    /// The CREATE statement differs.
    pub definition_changed: bool,
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    /// Tree nodes and chunks read to find the differences.
    pub nodes_read: u64,
    pub chunks_read: u64,
    /// The first differing rows, up to the requested limit.
    pub rows: Vec<RowChange>,
    pub truncated: bool,
}

fn row_key_json(row: &Row, table: &TableObject) -> serde_json::Value {
    // The same identity the row diff matches rows by: the declared key unless it holds a NULL.
    let by_rowid = match crate::rowdiff::declared_key(table) {
        Some(key) => key.iter().any(|name| matches!(row.value(name), Some(Value::Null) | None)),
        None => true,
    };
    match row.rowid {
        Some(rowid) if by_rowid => serde_json::json!({ "rowid": rowid }),
        _ => {
            let mut key = serde_json::Map::new();
            for i in table.primary_key() {
                let name = &table.columns[i].name;
                key.insert(name.clone(), row.value(name).map(value_json).unwrap_or(serde_json::Value::Null));
            }
            serde_json::Value::Object(key)
        }
    }
}

/// Compares one table's rows on two sides, listing up to `limit` differing rows.
pub fn table_row_report(a: &Side<'_>, b: &Side<'_>, limit: usize) -> crate::error::Result<TableRowReport> {
    let mut rows = Vec::new();
    let mut truncated = false;
    let counts = diff_rows(a, b, &mut |event| {
        if rows.len() >= limit {
            truncated = true;
            return Ok(());
        }
        rows.push(match event {
            RowEvent::Added { b: row } => RowChange { change: Change::Added, key: row_key_json(row, b.table), columns: Vec::new() },
            RowEvent::Removed { a: row } => RowChange { change: Change::Removed, key: row_key_json(row, a.table), columns: Vec::new() },
            RowEvent::Changed { a: row, columns, .. } => RowChange { change: Change::Changed, key: row_key_json(row, a.table), columns: columns.to_vec() },
        });
        Ok(())
    })?;
    let names = |t: &TableObject| -> Vec<String> { t.columns.iter().map(|c| c.name.clone()).collect() };
    let (names_a, names_b) = (names(a.table), names(b.table));
    Ok(TableRowReport {
        name: a.table.name.clone(),
        columns_added: names_b.iter().filter(|n| !names_a.contains(n)).cloned().collect(),
        columns_removed: names_a.iter().filter(|n| !names_b.contains(n)).cloned().collect(),
        definition_changed: a.table.sql != b.table.sql,
        added: counts.added,
        removed: counts.removed,
        changed: counts.changed,
        nodes_read: counts.nodes_read,
        chunks_read: counts.chunks_read,
        rows,
        truncated,
    })
}
