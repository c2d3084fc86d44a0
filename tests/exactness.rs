//! Every SQLite value and schema shape comes back exactly after snapshot and restore.

use rusqlite::params;
use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::util::{Workspace, open, round_trip, table_rows, Exact};

/// Binds raw bytes as TEXT, so NUL and invalid UTF-8 reach the database unchanged.
struct RawText<'a>(&'a [u8]);

impl rusqlite::ToSql for RawText<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0)))
    }
}

const SPECIAL_REALS: [f64; 7] = [1.0, 5.0, 1e21, -0.0, f64::INFINITY, f64::NEG_INFINITY, 4.9406564584124654e-324];

#[test]
fn reals_keep_class_and_bits() {
    let ws = Workspace::new();
    let db = ws.path("reals.sqlite");
    let conn = open(&db);
    conn.execute_batch("CREATE TABLE typed(v REAL); CREATE TABLE untyped(v); CREATE TABLE strict_any(v ANY) STRICT;").unwrap();
    for table in ["typed", "untyped", "strict_any"] {
        for value in SPECIAL_REALS {
            conn.execute(&format!("INSERT INTO {table}(v) VALUES (?1)"), [value]).unwrap();
        }
    }
    drop(conn);
    let restored = round_trip(&ws, &db);

    // A REAL column stores whole numbers as integers on disk, so SQLite itself turns -0.0
    // into 0.0 there; round_trip has checked that copy against the source. The other two
    // keep every bit.
    let conn = open(&restored);
    for table in ["untyped", "strict_any"] {
        let values: Vec<Exact> = table_rows(&conn, table).into_iter().map(|row| row[1].clone()).collect();
        let expected: Vec<Exact> = SPECIAL_REALS.iter().map(|v| Exact::Real(v.to_bits())).collect();
        assert_eq!(values, expected, "table {table}");
    }
}

#[test]
fn integers_keep_full_range() {
    let ws = Workspace::new();
    let db = ws.path("ints.sqlite");
    let conn = open(&db);
    conn.execute_batch("CREATE TABLE i(v INTEGER); CREATE TABLE u(v);").unwrap();
    let values = [0i64, -1, i64::MIN, i64::MAX, (1 << 53) + 1];
    for table in ["i", "u"] {
        for value in values {
            conn.execute(&format!("INSERT INTO {table}(v) VALUES (?1)"), [value]).unwrap();
        }
    }
    drop(conn);
    let restored = round_trip(&ws, &db);
    let conn = open(&restored);
    let got: Vec<Exact> = table_rows(&conn, "u").into_iter().map(|row| row[1].clone()).collect();
    assert_eq!(got, values.iter().map(|v| Exact::Integer(*v)).collect::<Vec<_>>());
}

#[test]
fn text_and_blob_bytes_survive() {
    let ws = Workspace::new();
    let db = ws.path("text.sqlite");
    let conn = open(&db);
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v);").unwrap();
    let texts: [&[u8]; 6] = [
        b"nul\0inside",
        b"\xff\xfe invalid \xc3\x28 utf-8",
        b"quotes ' \" `",
        b"cr\r lf\n tab\t",
        "emoji 🦀 👩‍👩‍👧‍👦".as_bytes(),
        b"",
    ];
    for text in texts {
        conn.execute("INSERT INTO t(v) VALUES (?1)", [RawText(text)]).unwrap();
    }
    conn.execute("INSERT INTO t(v) VALUES (?1)", [&[0u8, 1, 2, 0x0f][..]]).unwrap();
    conn.execute("INSERT INTO t(v) VALUES (?1)", [&b""[..]]).unwrap();
    conn.execute("INSERT INTO t(v) VALUES (NULL)", []).unwrap();
    drop(conn);
    let restored = round_trip(&ws, &db);

    let conn = open(&restored);
    let got: Vec<Exact> = table_rows(&conn, "t").into_iter().map(|row| row[2].clone()).collect();
    let mut expected: Vec<Exact> = texts.iter().map(|t| Exact::Text(t.to_vec())).collect();
    expected.push(Exact::Blob(vec![0, 1, 2, 0x0f]));
    expected.push(Exact::Blob(Vec::new()));
    expected.push(Exact::Null);
    assert_eq!(got, expected);
}

#[test]
fn table_shapes_round_trip() {
    let ws = Workspace::new();
    let db = ws.path("shapes.sqlite");
    let conn = open(&db);
    conn.execute_batch(
        "CREATE TABLE gaps(a TEXT);
         INSERT INTO gaps(rowid, a) VALUES (5, 'five'), (9, 'nine'), (100, 'hundred');
         CREATE TABLE composite(k1 TEXT, k2 INTEGER, v BLOB, PRIMARY KEY (k2, k1)) WITHOUT ROWID;
         INSERT INTO composite VALUES ('b', 2, x'01'), ('a', 2, x'02'), ('z', -1, NULL);
         CREATE TABLE strict_t(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, r REAL, t TEXT, b BLOB, a ANY) STRICT;
         INSERT INTO strict_t VALUES (1, 7, 1.5, 'x', x'00', 2.0), (2, -7, NULL, NULL, NULL, 'any');
         CREATE TABLE generated(id INTEGER PRIMARY KEY, price INTEGER, rate REAL DEFAULT 0.2,
             total REAL GENERATED ALWAYS AS (price * (1 + rate)) VIRTUAL,
             label TEXT GENERATED ALWAYS AS ('p' || price) STORED);
         INSERT INTO generated(id, price) VALUES (1, 100), (2, 250);
         CREATE TABLE empty_table(x, y);",
    )
    .unwrap();
    drop(conn);
    let restored = round_trip(&ws, &db);
    let conn = open(&restored);
    let label: String = conn.query_row("SELECT label FROM generated WHERE id = 2", [], |r| r.get(0)).unwrap();
    assert_eq!(label, "p250");
}

#[test]
fn autoincrement_counter_survives_deleted_last_row() {
    let ws = Workspace::new();
    let db = ws.path("auto.sqlite");
    let conn = open(&db);
    conn.execute_batch(
        "CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
         INSERT INTO jobs(name) VALUES ('a'), ('b'), ('c');
         DELETE FROM jobs WHERE id = 3;",
    )
    .unwrap();
    drop(conn);
    let restored = round_trip(&ws, &db);
    let conn = open(&restored);
    conn.execute("INSERT INTO jobs(name) VALUES ('d')", []).unwrap();
    let next: i64 = conn.query_row("SELECT max(id) FROM jobs", [], |r| r.get(0)).unwrap();
    assert_eq!(next, 4);
}

#[test]
fn awkward_identifiers_round_trip() {
    let ws = Workspace::new();
    let db = ws.path("names.sqlite");
    let conn = open(&db);
    conn.execute_batch(
        r#"CREATE TABLE "select"("from" INTEGER, "order" TEXT, "group" BLOB);
           INSERT INTO "select" VALUES (1, 'o', x'aa');
           CREATE TABLE "my ""odd"" täble with spaces"("col ""q""" TEXT, "日本" INTEGER);
           INSERT INTO "my ""odd"" täble with spaces" VALUES ('v', 2);
           CREATE INDEX "idx on ""select""" ON "select"("order");"#,
    )
    .unwrap();
    drop(conn);
    round_trip(&ws, &db);
}

#[test]
fn foreign_keys_triggers_and_views_round_trip() {
    let ws = Workspace::new();
    let db = ws.path("relations.sqlite");
    let conn = open(&db);
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
         CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE node(id INTEGER PRIMARY KEY, up INTEGER REFERENCES node(id));
         CREATE TABLE a(id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b(id) DEFERRABLE INITIALLY DEFERRED);
         CREATE TABLE b(id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id) DEFERRABLE INITIALLY DEFERRED);
         CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT);
         INSERT INTO parent VALUES (1, 'p');
         INSERT INTO child VALUES (10, 1);
         INSERT INTO node VALUES (1, NULL), (2, 1), (3, 2);
         BEGIN; INSERT INTO a VALUES (1, 1); INSERT INTO b VALUES (1, 1); COMMIT;
         CREATE TRIGGER parent_log AFTER INSERT ON parent BEGIN INSERT INTO audit(what) VALUES ('parent ' || new.id); END;
         CREATE TRIGGER child_touch AFTER INSERT ON child BEGIN UPDATE parent SET name = 'touched' WHERE id = new.parent_id; END;
         CREATE VIEW v1 AS SELECT id, name FROM parent;
         CREATE VIEW v2 AS SELECT id FROM v1 WHERE name IS NOT NULL;
         CREATE TRIGGER v1_insert INSTEAD OF INSERT ON v1 BEGIN INSERT INTO parent VALUES (new.id, new.name); END;",
    )
    .unwrap();
    drop(conn);
    let restored = round_trip(&ws, &db);
    let conn = open(&restored);
    // The triggers exist again but did not fire during the load.
    let audit: i64 = conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0)).unwrap();
    assert_eq!(audit, 0);
    let name: String = conn.query_row("SELECT name FROM parent WHERE id = 1", [], |r| r.get(0)).unwrap();
    assert_eq!(name, "p");
    let through_views: i64 = conn.query_row("SELECT count(*) FROM v2", [], |r| r.get(0)).unwrap();
    assert_eq!(through_views, 1);
}

#[test]
fn fts5_index_answers_queries_after_restore() {
    let ws = Workspace::new();
    let db = ws.path("fts.sqlite");
    let conn = open(&db);
    conn.execute_batch(
        "CREATE TABLE note(id INTEGER PRIMARY KEY, title TEXT, body TEXT);
         CREATE VIRTUAL TABLE note_fts USING fts5(title, body, content='note', content_rowid='id');
         CREATE TRIGGER note_ai AFTER INSERT ON note BEGIN INSERT INTO note_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END;
         INSERT INTO note(title, body) VALUES ('groceries', 'milk eggs cheese'), ('travel', 'tokyo kyoto osaka'), ('work', 'deploy the worker');
         CREATE VIRTUAL TABLE plain_fts USING fts5(text);
         INSERT INTO plain_fts VALUES ('standalone full text row');",
    )
    .unwrap();
    drop(conn);
    let restored = round_trip(&ws, &db);
    let conn = open(&restored);
    let hit: i64 = conn.query_row("SELECT rowid FROM note_fts WHERE note_fts MATCH 'kyoto'", [], |r| r.get(0)).unwrap();
    assert_eq!(hit, 2);
    let plain: String = conn.query_row("SELECT text FROM plain_fts WHERE plain_fts MATCH 'standalone'", [], |r| r.get(0)).unwrap();
    assert_eq!(plain, "standalone full text row");
    let check: rusqlite::Result<usize> = conn.execute("INSERT INTO note_fts(note_fts) VALUES ('integrity-check')", []);
    assert!(check.is_ok(), "fts5 integrity-check failed: {check:?}");
}

#[test]
fn database_without_tables_round_trips() {
    let ws = Workspace::new();
    let db = ws.path("empty.sqlite");
    let conn = open(&db);
    conn.execute_batch("PRAGMA user_version = 7;").unwrap();
    drop(conn);
    let report = ws.snapshot(&db);
    assert_eq!(report["tables"], 0);
    round_trip(&ws, &db);
}

#[test]
fn d1_internal_table_round_trips() {
    let ws = Workspace::new();
    let db = ws.path("cf.sqlite");
    let conn = open(&db);
    conn.execute_batch(
        "CREATE TABLE _cf_METADATA (key INTEGER PRIMARY KEY, value BLOB);
         INSERT INTO _cf_METADATA VALUES (2, 42);
         CREATE TABLE app(x);",
    )
    .unwrap();
    conn.execute("INSERT INTO app VALUES (?1)", params![1.0f64]).unwrap();
    drop(conn);
    round_trip(&ws, &db);
}

#[test]
fn header_values_round_trip() {
    let ws = Workspace::new();
    let db = ws.path("header.sqlite");
    let conn = open(&db);
    conn.execute_batch("PRAGMA user_version = 42; PRAGMA application_id = 1145324612; CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
    drop(conn);
    round_trip(&ws, &db);
}
