//! Helpers: a temporary workspace with its own repository, running the binary, and an exact
//! comparison of two databases.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use d1snap_engine::id::Digest;
use d1snap_engine::object::Kind;
use d1snap_engine::repo::Repository;
use d1snap_engine::store::LocalStore;
use d1snap_s3_test_server::{ACCESS_KEY_ID, BUCKET, FaultPlan, FaultProxy, S3TestServer, SECRET_ACCESS_KEY};
use rusqlite::Connection;
use rusqlite::types::ValueRef;

pub const BIN: &str = env!("CARGO_BIN_EXE_d1snap");

/// The local D1 database of the wrangler sample in `tests/data/d1-local`, relative to the
/// project: miniflare names the file after the `database_id` in `wrangler.toml`.
pub const D1_DATABASE: &str = ".wrangler/state/v3/d1/miniflare-D1DatabaseObject/37202af4a48e51a6f9bf1676145f85cdbaaf76a4a51b95f5120b328bf5460e72.sqlite";

/// Where a workspace keeps its repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A directory in the workspace.
    Local,
    /// Prefix `repo` of a bucket on an S3 server that the workspace starts on 127.0.0.1.
    S3,
}

impl Backend {
    /// The backend of the running test, from its module path: tests.rs compiles every test
    /// module twice, under `local::` and under `s3::`, and the test harness names each
    /// test's thread after that path.
    pub fn of_current_test() -> Backend {
        let name = std::thread::current().name().unwrap_or_default().to_string();
        if name.starts_with("s3::") { Backend::S3 } else { Backend::Local }
    }
}

/// A temporary directory with a repository inside it, or beside it on an S3 server. Every
/// run clears the variables that could point d1snap at the caller's real repository or
/// credentials.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    server: Option<S3TestServer>,
    proxy: Option<FaultProxy>,
    /// Extra variables for every run.
    env: Vec<(String, String)>,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace::with_backend(Backend::of_current_test())
    }

    pub fn with_backend(backend: Backend) -> Workspace {
        let dir = tempfile::tempdir().expect("temporary directory");
        let server = (backend == Backend::S3).then(|| S3TestServer::start_in(&dir.path().join("s3")));
        Workspace { dir, backend, server, proxy: None, env: Vec::new() }
    }

    /// An S3 workspace whose requests go through a fault-injecting proxy, with fast retries.
    pub fn with_faults(plan: FaultPlan) -> Workspace {
        let mut ws = Workspace::with_backend(Backend::S3);
        let server = ws.server.as_ref().expect("S3 workspaces have a server");
        ws.proxy = Some(FaultProxy::start(server.addr(), plan));
        ws.set_env("D1SNAP_S3_RETRY_BASE_MS", "5");
        ws.set_env("D1SNAP_S3_ATTEMPT_TIMEOUT_MS", "2000");
        ws.set_env("D1SNAP_S3_ATTEMPTS", "12");
        ws
    }

    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.to_string(), value.to_string()));
    }

    pub fn proxy(&self) -> Option<&FaultProxy> {
        self.proxy.as_ref()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The repository's folder on disk: the repository itself, or the bucket prefix in the
    /// S3 server's folder, so tests can damage objects either way.
    pub fn repo(&self) -> PathBuf {
        match &self.server {
            Some(server) => server.bucket_dir().join("repo"),
            None => self.path("repo"),
        }
    }

    /// The value of `--repo`.
    pub fn repo_arg(&self) -> String {
        match self.backend {
            Backend::S3 => format!("s3://{BUCKET}/repo"),
            Backend::Local => self.repo().to_str().unwrap().to_string(),
        }
    }

    /// The endpoint d1snap talks to: the proxy when there is one, else the server.
    pub fn endpoint(&self) -> Option<String> {
        self.proxy.as_ref().map(|p| p.endpoint()).or_else(|| self.server.as_ref().map(|s| s.endpoint()))
    }

    /// The command line of a run, with the environment cleared of the caller's variables.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.args(args);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if ["AWS_", "D1SNAP_", "CLOUDFLARE_", "XDG_"].iter().any(|prefix| name.starts_with(prefix)) {
                command.env_remove(&*name);
            }
        }
        command.env("HOME", self.dir.path()).env("D1SNAP_REPO", self.repo_arg());
        if let Some(endpoint) = self.endpoint() {
            command
                .env("AWS_ENDPOINT_URL_S3", endpoint)
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
                .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run d1snap")
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "d1snap {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 stdout")
    }

    /// Runs a command with `--json` that must succeed and parses its output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        serde_json::from_str(&self.ok(&with_json)).expect("JSON output")
    }

    /// Takes a snapshot and returns its JSON report.
    pub fn snapshot(&self, source: &Path) -> serde_json::Value {
        self.json(&["snapshot", source.to_str().unwrap()])
    }

    /// Copies a file or directory tree from tests/data into the workspace, writable.
    pub fn copy_data(&self, relative: &str) -> PathBuf {
        let from = data_dir().join(relative);
        let to = self.path(Path::new(relative).file_name().unwrap().to_str().unwrap());
        copy_tree(&from, &to);
        to
    }

    /// Stores every object in a pack of its own, so a test can delete one object's pack.
    pub fn one_object_per_pack(&mut self) {
        self.set_env("D1SNAP_PACK_SIZE", "1");
    }

    /// Lists the packed objects of `kind` from the repository's index, with the file and
    /// byte range of each, ordered by file and offset.
    pub fn stored_objects(&self, kind: Kind) -> Vec<StoredObject> {
        let store = std::sync::Arc::new(LocalStore::new(self.repo()).unwrap());
        let repo = Repository::open(store).unwrap();
        let mut objects: Vec<StoredObject> = repo
            .packed_objects()
            .unwrap()
            .into_iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, id, (key, range))| {
                let (offset, length) = range.expect("packed objects have a range");
                let base = repo.delta_base_of(&id).unwrap();
                StoredObject { id, file: self.repo().join(key), offset, length, base }
            })
            .collect();
        objects.sort_by(|a, b| (&a.file, a.offset).cmp(&(&b.file, b.offset)));
        objects
    }
}

/// Location of one packed object's stored bytes on disk.
#[derive(Clone, Debug)]
pub struct StoredObject {
    pub id: Digest,
    pub file: PathBuf,
    pub offset: u64,
    pub length: u64,
    /// The object it is stored against, for a delta.
    pub base: Option<Digest>,
}

impl StoredObject {
    /// Flips a bit in the last byte of the object, inside the zstd frame.
    pub fn flip_last_byte(&self) {
        let mut bytes = std::fs::read(&self.file).unwrap();
        bytes[(self.offset + self.length - 1) as usize] ^= 0x40;
        std::fs::write(&self.file, bytes).unwrap();
    }
}

/// Describes a finished run for an assertion message: its exit code, stdout and stderr.
pub fn output_text(output: &Output) -> String {
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    format!("exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status.code())
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

pub fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
        let mut permissions = std::fs::metadata(to).unwrap().permissions();
        #[expect(clippy::permissions_set_readonly_false, reason = "test copies must be writable")]
        permissions.set_readonly(false);
        std::fs::set_permissions(to, permissions).unwrap();
    }
}

/// A value with its exact storage class and bits (REAL compared by bits, TEXT as bytes).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exact {
    Null,
    Integer(i64),
    Real(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl From<ValueRef<'_>> for Exact {
    fn from(value: ValueRef<'_>) -> Exact {
        match value {
            ValueRef::Null => Exact::Null,
            ValueRef::Integer(i) => Exact::Integer(i),
            ValueRef::Real(r) => Exact::Real(r.to_bits()),
            ValueRef::Text(t) => Exact::Text(t.to_vec()),
            ValueRef::Blob(b) => Exact::Blob(b.to_vec()),
        }
    }
}

/// Creates a database `name` whose table `notes` has `rows` rows of random text. zstd cannot
/// shrink it much, so a chunk stored whole is large and one stored as a delta is small.
pub fn random_notes(ws: &Workspace, name: &str, rows: u32) -> PathBuf {
    let db = ws.path(name);
    open(&db)
        .execute_batch(&format!(
            "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO notes SELECT i, hex(randomblob(60)) FROM n;"
        ))
        .unwrap();
    db
}

pub fn open(path: &Path) -> Connection {
    Connection::open(path).expect("open database")
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Reads every row of a table, with its rowid for rowid tables, sorted.
pub fn table_rows(conn: &Connection, table: &str) -> Vec<Vec<Exact>> {
    let without_rowid: bool = conn
        .query_row("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1", [table], |r| r.get(0))
        .unwrap();
    let sql = if without_rowid {
        format!("SELECT * FROM {}", quote(table))
    } else {
        format!("SELECT _rowid_, * FROM {}", quote(table))
    };
    let mut stmt = conn.prepare(&sql).unwrap();
    let columns = stmt.column_count();
    let mut rows: Vec<Vec<Exact>> = stmt
        .query_map([], |row| (0..columns).map(|i| row.get_ref(i).map(Exact::from)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

/// Reads the `sqlite_schema` rows, sorted by type and name.
pub fn schema(conn: &Connection) -> Vec<(String, String, String, Option<String>)> {
    let mut stmt = conn.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

/// Ordinary and shadow tables whose rows can be read directly.
pub fn data_tables(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'shadow') AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

pub fn sequences(conn: &Connection) -> Vec<Vec<Exact>> {
    let exists: bool = conn.query_row("SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'sqlite_sequence'", [], |r| r.get(0)).unwrap();
    if !exists {
        return Vec::new();
    }
    table_rows(conn, "sqlite_sequence")
}

/// Asserts that two databases hold the same schema text, the same rows with the same
/// storage classes and bits, the same rowids and the same `sqlite_sequence`.
pub fn assert_same_database(original: &Path, restored: &Path) {
    let a = open(original);
    let b = open(restored);
    assert_eq!(schema(&a), schema(&b), "schema differs");
    let tables = data_tables(&a);
    assert_eq!(tables, data_tables(&b), "table lists differ");
    for table in &tables {
        assert_eq!(table_rows(&a, table), table_rows(&b, table), "rows of table {table:?} differ");
    }
    assert_eq!(sequences(&a), sequences(&b), "sqlite_sequence differs");
    let pragma = |conn: &Connection, name: &str| -> i64 { conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0)).unwrap() };
    assert_eq!(pragma(&a, "user_version"), pragma(&b, "user_version"));
    assert_eq!(pragma(&a, "application_id"), pragma(&b, "application_id"));
}

/// Asserts `PRAGMA integrity_check` is ok and `PRAGMA foreign_key_check` finds nothing.
pub fn assert_healthy(path: &Path) {
    let conn = open(path);
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let violations: i64 = conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
    assert_eq!(violations, 0, "foreign key violations");
}

/// Snapshots `source`, restores it to a new file, checks the copy is exact and healthy, and
/// checks its own root equals the snapshot root. Returns the restored path.
pub fn round_trip(ws: &Workspace, source: &Path) -> PathBuf {
    let report = ws.snapshot(source);
    let id = report["id"].as_str().unwrap().to_string();
    let restored = ws.path(&format!("restored-{}.sqlite", &id[..12]));
    ws.ok(&["restore", &id, "--to", restored.to_str().unwrap()]);
    assert_same_database(source, &restored);
    assert_healthy(&restored);
    let verify = ws.json(&["verify", &id, "--against", restored.to_str().unwrap()]);
    assert_eq!(verify["findings"], serde_json::json!([]), "restored roots differ from the snapshot");
    let again = ws.snapshot(&restored);
    assert_eq!(again["root"], report["root"]);
    restored
}
