//! Writes a D1-style app database of about a requested size. It has users, WebAuthn
//! credentials with BLOB public keys, sessions, and an audit log with JSON payloads (the
//! largest table, about 80% of the file). A few uploads come near D1's 2,000,000-byte row
//! limit, and wrangler's `d1_migrations` table, indexes and two AUTOINCREMENT tables complete
//! the schema.
//!
//! The output depends only on the seed and the size, so two runs with the same arguments
//! write databases with the same content.
//!
//! Usage: `gen_d1_app --size-mb 1024 [--seed 1] OUT.sqlite`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use rusqlite::{Connection, params};

/// D1's limit on one row, string or BLOB, in bytes.
const D1_MAX_ROW_BYTES: usize = 2_000_000;

/// Share of the requested size given to each table. The shares are of file bytes, so they
/// include the table's indexes; the audit log takes the rest after the uploads.
const USERS_SHARE: f64 = 0.05;
const CREDENTIALS_SHARE: f64 = 0.01;
const SESSIONS_SHARE: f64 = 0.08;

/// File bytes per row, indexes included, measured with the `dbstat` table on a 100 MiB
/// database from this generator (rusqlite 0.37's bundled SQLite, 4096-byte pages). Row
/// counts derive from them, so the file lands within a few percent of the requested size.
const USER_ROW_BYTES: f64 = 124.0;
const CREDENTIAL_ROW_BYTES: f64 = 238.0;
const SESSION_ROW_BYTES: f64 = 320.0;
const AUDIT_ROW_BYTES: f64 = 193.0;

const SCHEMA: &str = "
CREATE TABLE d1_migrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT UNIQUE,
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    display_name TEXT,
    locale TEXT NOT NULL DEFAULT 'en',
    email_verified INTEGER NOT NULL DEFAULT 0,
    avatar_url TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE credentials (
    id TEXT PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    public_key BLOB NOT NULL,
    sign_count INTEGER NOT NULL DEFAULT 0,
    transports TEXT,
    backed_up INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ip TEXT,
    user_agent TEXT
);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER REFERENCES users(id),
    action TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id),
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
";

/// Indexes are created after the rows are in, which is faster and packs them densely.
const INDEXES: &str = "
CREATE UNIQUE INDEX users_email ON users(email);
CREATE INDEX credentials_user ON credentials(user_id);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expires ON sessions(expires_at);
CREATE INDEX audit_log_user_time ON audit_log(user_id, created_at);
";

const MIGRATIONS: [&str; 8] = [
    "0001_create_users.sql",
    "0002_create_credentials.sql",
    "0003_create_sessions.sql",
    "0004_create_audit_log.sql",
    "0005_add_users_locale.sql",
    "0006_create_uploads.sql",
    "0007_index_sessions_expires.sql",
    "0008_add_credentials_backed_up.sql",
];

const FIRST_NAMES: [&str; 16] = [
    "Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Edsger", "Radia", "Tim",
    "Hedy", "Donald", "Sophie", "Niklaus",
];
const LAST_NAMES: [&str; 12] =
    ["Lovelace", "Hopper", "Turing", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen", "Dijkstra", "Perlman", "Lamarr", "Knuth"];
const DOMAINS: [&str; 6] = ["example.com", "example.org", "example.net", "mail.example", "corp.example", "test.example"];
const LOCALES: [&str; 6] = ["en", "en-GB", "de", "fr", "ja", "pt-BR"];
const TRANSPORTS: [&str; 4] = [r#"["internal"]"#, r#"["usb","nfc"]"#, r#"["hybrid","internal"]"#, r#"["usb"]"#];
const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
];
const ACTIONS: [(&str, &str, &str); 8] = [
    ("login", "POST", "/api/v1/auth/login"),
    ("logout", "POST", "/api/v1/auth/logout"),
    ("passkey.register", "POST", "/api/v1/auth/passkeys"),
    ("project.update", "PATCH", "/api/v1/projects/"),
    ("member.invite", "POST", "/api/v1/projects/"),
    ("file.upload", "PUT", "/api/v1/files/"),
    ("settings.update", "PATCH", "/api/v1/settings"),
    ("token.refresh", "POST", "/api/v1/auth/refresh"),
];
const ROLES: [&str; 3] = ["viewer", "editor", "owner"];

/// Milliseconds since the Unix epoch of 2024-01-01T00:00:00Z, where the generated history starts.
const EPOCH_2024_MS: i64 = 1_704_067_200_000;

/// SplitMix64: a small, fast generator whose output depends only on its seed.
struct Random(u64);

impl Random {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a value in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn hex(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len + 16);
        while out.len() < len {
            out.push_str(&format!("{:016x}", self.next_u64()));
        }
        out.truncate(len);
        out
    }

    /// Base64url text of `len` random bytes, as WebAuthn credential ids are usually stored.
    fn base64url(&mut self, len: usize) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let chars = (len * 4).div_ceil(3);
        (0..chars).map(|_| ALPHABET[self.below(64) as usize] as char).collect()
    }
}

struct Options {
    size_mb: u64,
    seed: u64,
    out: PathBuf,
}

/// Row counts for a requested size.
#[derive(Debug)]
struct Plan {
    users: i64,
    credentials: i64,
    sessions: i64,
    audit_rows: i64,
    uploads: i64,
}

impl Plan {
    fn for_size(size_bytes: u64) -> Plan {
        let size = size_bytes as f64;
        // Three uploads at any size, plus two per GiB, so the large rows stay "a few".
        let uploads = 3 + (size_bytes >> 29) as i64;
        let upload_bytes = uploads as f64 * D1_MAX_ROW_BYTES as f64;
        let users = (size * USERS_SHARE / USER_ROW_BYTES) as i64;
        let credentials = (size * CREDENTIALS_SHARE / CREDENTIAL_ROW_BYTES) as i64;
        let sessions = (size * SESSIONS_SHARE / SESSION_ROW_BYTES) as i64;
        let audit_share = 1.0 - USERS_SHARE - CREDENTIALS_SHARE - SESSIONS_SHARE;
        let audit_rows = ((size * audit_share - upload_bytes).max(0.0) / AUDIT_ROW_BYTES) as i64;
        Plan { users: users.max(1), credentials, sessions, audit_rows, uploads }
    }
}

fn parse_args() -> Result<Options, String> {
    let mut size_mb = None;
    let mut seed = 1u64;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--size-mb" => {
                let value = args.next().ok_or("--size-mb needs a value in MiB")?;
                size_mb = Some(value.parse::<u64>().map_err(|_| format!("invalid --size-mb {value:?}; give a whole number of MiB"))?);
            }
            "--seed" => {
                let value = args.next().ok_or("--seed needs a value")?;
                seed = value.parse().map_err(|_| format!("invalid --seed {value:?}; give an unsigned integer"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') => return Err(format!("unknown option {other:?}")),
            other => out = Some(PathBuf::from(other)),
        }
    }
    let size_mb = size_mb.ok_or("missing --size-mb")?;
    if size_mb == 0 {
        return Err("--size-mb must be at least 1".into());
    }
    let out = out.ok_or("missing the output file")?;
    Ok(Options { size_mb, seed, out })
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!("usage: gen_d1_app --size-mb MIB [--seed N] OUT.sqlite");
            return ExitCode::from(2);
        }
    };
    if options.out.exists() {
        eprintln!("error: {} already exists; remove it or choose another path", options.out.display());
        return ExitCode::FAILURE;
    }
    match generate(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: generating {} failed: {e}", options.out.display());
            ExitCode::FAILURE
        }
    }
}

fn generate(options: &Options) -> rusqlite::Result<()> {
    let started = Instant::now();
    let plan = Plan::for_size(options.size_mb << 20);
    let mut random = Random(options.seed);
    let mut conn = Connection::open(&options.out)?;
    // Durability is not needed while the file is built; a failed run leaves a file to delete.
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -65536;")?;
    conn.execute_batch(SCHEMA)?;

    let tx = conn.transaction()?;
    insert_migrations(&tx)?;
    insert_users(&tx, &mut random, plan.users)?;
    insert_credentials(&tx, &mut random, &plan)?;
    insert_sessions(&tx, &mut random, &plan)?;
    insert_audit_log(&tx, &mut random, &plan)?;
    insert_uploads(&tx, &mut random, &plan)?;
    tx.execute_batch(INDEXES)?;
    tx.commit()?;
    conn.close().map_err(|(_, e)| e)?;

    let bytes = std::fs::metadata(&options.out).map(|m| m.len()).unwrap_or(0);
    let summary = serde_json::json!({
        "file": options.out.display().to_string(),
        "bytes": bytes,
        "seed": options.seed,
        "users": plan.users,
        "credentials": plan.credentials,
        "sessions": plan.sessions,
        "audit_log": plan.audit_rows,
        "uploads": plan.uploads,
        "duration_ms": started.elapsed().as_millis() as u64,
    });
    println!("{summary}");
    Ok(())
}

fn insert_migrations(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let mut insert = tx.prepare("INSERT INTO d1_migrations(name, applied_at) VALUES (?1, ?2)")?;
    for (day, name) in MIGRATIONS.iter().enumerate() {
        insert.execute(params![name, format!("2024-01-{:02} 09:30:00", day + 1)])?;
    }
    Ok(())
}

fn insert_users(tx: &rusqlite::Transaction<'_>, random: &mut Random, count: i64) -> rusqlite::Result<()> {
    let mut insert = tx.prepare(
        "INSERT INTO users(id, email, display_name, locale, email_verified, avatar_url, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for id in 1..=count {
        let first = random.pick(&FIRST_NAMES);
        let last = random.pick(&LAST_NAMES);
        // The id in the address keeps emails unique, as the unique index requires.
        let email = format!("{}.{}{}@{}", first.to_lowercase(), last.to_lowercase(), id, random.pick(&DOMAINS));
        let avatar = (random.below(3) == 0).then(|| format!("https://avatars.example/{}.webp", random.hex(24)));
        let created_at = EPOCH_2024_MS + id * 37_000 + random.below(30_000) as i64;
        insert.execute(params![id, email, format!("{first} {last}"), random.pick(&LOCALES), random.below(5) != 0, avatar, created_at])?;
    }
    Ok(())
}

fn insert_credentials(tx: &rusqlite::Transaction<'_>, random: &mut Random, plan: &Plan) -> rusqlite::Result<()> {
    let mut insert = tx.prepare(
        "INSERT INTO credentials(id, user_id, public_key, sign_count, transports, backed_up, created_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for _ in 0..plan.credentials {
        // A COSE_Key of an ES256 key, as WebAuthn stores it: a fixed 10-byte map header,
        // then the two 32-byte coordinates, each behind its own key and length header.
        let mut public_key = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        public_key.extend_from_slice(&random.bytes(32));
        public_key.extend_from_slice(&[0x22, 0x58, 0x20]);
        public_key.extend_from_slice(&random.bytes(32));
        let created_at = EPOCH_2024_MS + random.below(300 * 86_400_000) as i64;
        let last_used = (random.below(4) != 0).then(|| created_at + random.below(30 * 86_400_000) as i64);
        insert.execute(params![
            random.base64url(32),
            1 + random.below(plan.users as u64) as i64,
            public_key,
            random.below(5_000) as i64,
            random.pick(&TRANSPORTS),
            random.below(2) == 0,
            created_at,
            last_used,
        ])?;
    }
    Ok(())
}

fn insert_sessions(tx: &rusqlite::Transaction<'_>, random: &mut Random, plan: &Plan) -> rusqlite::Result<()> {
    let mut insert =
        tx.prepare("INSERT INTO sessions(id, user_id, created_at, expires_at, ip, user_agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
    for _ in 0..plan.sessions {
        let created_at = EPOCH_2024_MS + random.below(300 * 86_400_000) as i64;
        insert.execute(params![
            random.hex(64),
            1 + random.below(plan.users as u64) as i64,
            created_at,
            created_at + 30 * 86_400_000,
            documentation_ip(random),
            random.pick(&USER_AGENTS),
        ])?;
    }
    Ok(())
}

/// An address from the ranges reserved for documentation (RFC 5737), so no real host appears.
fn documentation_ip(random: &mut Random) -> String {
    let prefix = ["192.0.2", "198.51.100", "203.0.113"][random.below(3) as usize];
    format!("{prefix}.{}", random.below(254) + 1)
}

fn insert_audit_log(tx: &rusqlite::Transaction<'_>, random: &mut Random, plan: &Plan) -> rusqlite::Result<()> {
    let mut insert = tx.prepare("INSERT INTO audit_log(user_id, action, created_at, payload) VALUES (?1, ?2, ?3, ?4)")?;
    let mut time = EPOCH_2024_MS;
    let mut payload = String::with_capacity(256);
    for _ in 0..plan.audit_rows {
        time += random.below(4_000) as i64;
        let (action, method, path) = ACTIONS[random.below(ACTIONS.len() as u64) as usize];
        // One row in twenty comes from a background job with no user, so the column holds NULLs.
        let user_id = (random.below(20) != 0).then(|| 1 + random.below(plan.users as u64) as i64);
        let status = [200, 200, 200, 201, 204, 400, 401, 403][random.below(8) as usize];
        payload.clear();
        payload.push_str(&format!(
            r#"{{"request_id":"{}","ip":"{}","method":"{method}","path":"{path}{}","status":{status},"duration_ms":{}"#,
            random.hex(16),
            documentation_ip(random),
            if path.ends_with('/') { random.below(100_000).to_string() } else { String::new() },
            random.below(900) + 3,
        ));
        if action.starts_with("project") || action.starts_with("member") {
            payload.push_str(&format!(r#","changes":{{"role":"{}"}}"#, random.pick(&ROLES)));
        }
        payload.push('}');
        insert.execute(params![user_id, action, time, payload])?;
    }
    Ok(())
}

fn insert_uploads(tx: &rusqlite::Transaction<'_>, random: &mut Random, plan: &Plan) -> rusqlite::Result<()> {
    let mut insert =
        tx.prepare("INSERT INTO uploads(user_id, file_name, content_type, content, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for index in 0..plan.uploads {
        let file_name = format!("scan-{index:04}.png");
        // Leaves room under D1's row limit for the other columns and the record header.
        let content_len = D1_MAX_ROW_BYTES - 1_000 - random.below(20_000) as usize;
        // Compressed image data looks random to zstd.
        let content = random.bytes(content_len);
        insert.execute(params![
            1 + random.below(plan.users as u64) as i64,
            file_name,
            "image/png",
            content,
            EPOCH_2024_MS + random.below(300 * 86_400_000) as i64,
        ])?;
    }
    Ok(())
}
