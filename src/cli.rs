//! Command-line definitions. Every flag is defined once here and drives `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "d1snap", version, about = "Cheap, verifiable snapshots of Cloudflare D1 and SQLite databases, restored exactly")]
pub struct Cli {
    /// Repository: a directory, `s3://BUCKET/PREFIX`, or `r2://ACCOUNT_ID/BUCKET/PREFIX`
    /// (`r2://BUCKET/PREFIX` with CLOUDFLARE_ACCOUNT_ID set). Defaults to
    /// $XDG_DATA_HOME/d1snap/repository (~/.local/share/d1snap/repository), created by the
    /// first snapshot.
    #[arg(long, global = true, env = "D1SNAP_REPO", value_name = "PATH|URL")]
    pub repo: Option<String>,

    #[command(flatten)]
    pub remote: RemoteArgs,

    /// Size at which a pack of new objects is closed and stored, in bytes. Smaller packs
    /// make prune rewrite less, and larger ones mean fewer files and requests.
    #[arg(long, global = true, env = "D1SNAP_PACK_SIZE", value_name = "BYTES", default_value_t = d1snap_engine::repo::PACK_TARGET_BYTES,
          value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u64).range(1..=1 << 30), |n| n as usize))]
    pub pack_size: usize,

    /// Print one JSON object on stdout instead of text (shapes in docs/commands.md).
    #[arg(long, global = true)]
    pub json: bool,

    /// Log detail on stderr: -v for debug, -vv for trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// Options of S3 and R2 repositories; local repositories ignore them.
#[derive(Debug, Args, Clone)]
pub struct RemoteArgs {
    /// Endpoint URL of an S3-compatible store, such as http://127.0.0.1:9000 for a local
    /// server; for R2 it defaults to https://ACCOUNT_ID.r2.cloudflarestorage.com.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL_S3", value_name = "URL")]
    pub endpoint: Option<String>,

    /// Maximum requests in flight at once to an S3 or R2 repository.
    #[arg(long, global = true, env = "D1SNAP_S3_CONNECTIONS", value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub connections: u16,

    /// Attempts per request to an S3 or R2 repository, the first included, before the
    /// command fails; transient errors are retried with exponential backoff.
    #[arg(long, global = true, env = "D1SNAP_S3_ATTEMPTS", value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,

    /// Folder caching the index files and snapshot records of S3 and R2 repositories. Defaults to
    /// $XDG_CACHE_HOME/d1snap (~/.cache/d1snap).
    #[arg(long, global = true, env = "D1SNAP_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Read every index file and snapshot record from the bucket instead of the local cache.
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// Objects of at least this many bytes are uploaded in parts.
    #[arg(long, global = true, env = "D1SNAP_S3_MULTIPART_THRESHOLD", value_name = "BYTES", hide = true)]
    pub multipart_threshold: Option<usize>,

    /// Size of each multipart part but the last, in bytes.
    #[arg(long, global = true, env = "D1SNAP_S3_PART_SIZE", value_name = "BYTES", hide = true)]
    pub part_size: Option<usize>,

    /// Maximum part uploads in flight at once.
    #[arg(long, global = true, env = "D1SNAP_S3_PART_CONNECTIONS", value_name = "N", hide = true)]
    pub part_connections: Option<usize>,

    /// Backoff before the second attempt of a request, in milliseconds.
    #[arg(long, global = true, env = "D1SNAP_S3_RETRY_BASE_MS", value_name = "MS", hide = true)]
    pub retry_base_ms: Option<u64>,

    /// Time limit of one request attempt, in milliseconds.
    #[arg(long, global = true, env = "D1SNAP_S3_ATTEMPT_TIMEOUT_MS", value_name = "MS", hide = true)]
    pub attempt_timeout_ms: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take a snapshot of a SQLite file, a wrangler project's local D1 database or a SQL dump.
    Snapshot(SnapshotArgs),
    /// List the snapshots in the repository, oldest first.
    #[command(visible_alias = "snapshots")]
    List,
    /// Show one snapshot: its tables, row counts, roots and sizes.
    Show(ShowArgs),
    /// Check that snapshots are complete and undamaged, or that a source still matches one.
    Verify(VerifyArgs),
    /// Compare two snapshots, or a snapshot with a live source, by table or by row, and write
    /// rollback SQL.
    Diff(DiffArgs),
    /// Restore a snapshot, or some of its tables, to a new SQLite file, into an existing
    /// database, or as SQL for D1.
    Restore(RestoreArgs),
    /// Apply migrations with a snapshot before and after, checks, and an automatic,
    /// proven rollback on any failure.
    Migrate(MigrateArgs),
    /// Restore snapshots to a scratch file, check them, time every phase and compare with
    /// thresholds.
    Drill(DrillArgs),
    /// Remove the snapshot records a retention policy does not keep (prune reclaims their
    /// data).
    Forget(ForgetArgs),
    /// Delete every object no snapshot refers to.
    Prune(PruneArgs),
    /// Run each job of the configuration file's schedule that is due, once, then check the
    /// thresholds and send alerts.
    Run(RunArgs),
    /// Run the configuration file's schedule until stopped by SIGINT or SIGTERM.
    Daemon(DaemonArgs),
    /// Show each source's latest snapshot, verification and drill, and the projected
    /// rollback time, against the thresholds.
    Status(StatusArgs),
    /// Write a self-contained HTML report with charts of sizes, durations and drills.
    Report(ReportArgs),
}

/// The configuration file option of the scheduling and monitoring commands.
#[derive(Debug, Args, Clone)]
pub struct ConfigArgs {
    /// Configuration file (default: d1snap.toml in the working directory). --repo and
    /// D1SNAP_REPO take precedence over its `repository`.
    #[arg(long, value_name = "FILE", env = "D1SNAP_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// After the pass, write Prometheus metrics to FILE (atomically, for node_exporter's
    /// textfile collector).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,

    #[command(flatten)]
    pub clock: TestClockArgs,
}

/// The hidden test clock of `run`, `status` and `report`.
#[derive(Debug, Args, Clone, Copy)]
pub struct TestClockArgs {
    /// For tests only: take TIME (RFC 3339, such as 2026-12-04T10:00:00Z) as the current
    /// time in place of the system clock. Snapshots and history events get this time.
    #[arg(long, value_name = "TIME", hide = true, value_parser = parse_time)]
    pub now: Option<i64>,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// After every pass, write Prometheus metrics to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Also write Prometheus metrics to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,

    #[command(flatten)]
    pub clock: TestClockArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Write the report to FILE, replacing it if it exists.
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,

    #[command(flatten)]
    pub clock: TestClockArgs,
}

fn parse_time(text: &str) -> Result<i64, String> {
    d1snap_ops::schedule::parse_time(text)
}

#[derive(Debug, Args, Clone, Default)]
pub struct ForgetArgs {
    /// Keep the N most recent snapshots of each source.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Keep the most recent snapshot of each of the last N hours that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<usize>,
    /// Keep the most recent snapshot of each of the last N days (UTC) that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<usize>,
    /// Keep the most recent snapshot of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<usize>,
    /// Keep the most recent snapshot of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<usize>,
    /// Keep every snapshot taken within DURATION of the source's latest one (for example
    /// 7d, 12h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub keep_within: Option<std::time::Duration>,
    /// Keep every snapshot with a label equal to or starting with TEXT (for example
    /// pre-migration); repeatable.
    #[arg(long = "keep-label", value_name = "TEXT")]
    pub keep_labels: Vec<String>,
    /// List what would be removed and why each kept snapshot stays, without removing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run prune after removing the records.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Count what would be deleted without deleting.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Without --wrangler: the SQLite database, then one or more migration files. With
    /// --wrangler: migration files (default: the pending ones from the project's
    /// migrations directory, those not yet in d1_migrations).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub wrangler: WranglerArgs,

    /// SQL checks that must pass after the migration: queries that must return no rows, or,
    /// after a line `-- expect: VALUE`, whose first value must equal VALUE.
    #[arg(long, value_name = "FILE")]
    pub checks: Option<PathBuf>,

    /// Extra label for the pre-migration snapshot; repeatable.
    #[arg(long = "label", value_name = "TEXT")]
    pub labels: Vec<String>,

    /// Path of the rollback SQL (default: NAME.rollback.sql beside the last migration file,
    /// or in the project's rollback/ directory with --wrangler, because wrangler applies
    /// every .sql file in its migrations directory).
    #[arg(long, value_name = "FILE")]
    pub rollback_sql: Option<PathBuf>,

    /// Record applied migrations in d1_migrations, as `wrangler d1 migrations apply` does
    /// (always on with --wrangler).
    #[arg(long)]
    pub record: bool,

    /// Run everything on a temporary copy of the database with a temporary repository and
    /// report; nothing is changed.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Snapshot to drill: `latest` (the default), an id prefix or a label.
    #[arg(conflicts_with_all = ["latest", "random"])]
    pub snapshot: Option<String>,

    /// Drill the latest snapshot.
    #[arg(long)]
    pub latest: bool,

    /// Drill N snapshots chosen at random.
    #[arg(long, value_name = "N")]
    pub random: Option<usize>,

    /// Fail when a restore takes longer than this (for example 30m, 90s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub max_restore_time: std::time::Duration,

    /// Fail when verifying the restored copy takes longer than this.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_verify_time: Option<std::time::Duration>,

    /// Fail when the projected restore of a 10 GB database, D1's maximum, takes longer than
    /// this.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_projected_time: Option<std::time::Duration>,
}

pub use d1snap_ops::duration::parse_duration;

fn parse_sample(text: &str) -> Result<d1snap_engine::verify::Sample, String> {
    text.parse().map_err(|e: d1snap_engine::Error| e.to_string())
}

/// A wrangler project's local D1 database.
#[derive(Debug, Args, Clone)]
pub struct WranglerArgs {
    /// Read the local D1 database of the wrangler project in DIR (default: the current
    /// directory), found through wrangler.json, wrangler.jsonc or wrangler.toml.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    pub wrangler: Option<PathBuf>,

    /// D1 database binding or database_name in the wrangler config; needed when the project
    /// declares more than one.
    #[arg(long, value_name = "NAME_OR_BINDING", requires = "wrangler")]
    pub database: Option<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// SQLite database file or `wrangler d1 export` SQL dump.
    #[arg(value_name = "SOURCE", required_unless_present = "wrangler", conflicts_with = "wrangler")]
    pub source: Option<PathBuf>,

    #[command(flatten)]
    pub wrangler: WranglerArgs,

    /// Label for the snapshot, such as the migration about to run; repeatable.
    #[arg(long = "label", value_name = "TEXT")]
    pub labels: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Snapshot: `latest`, an id prefix of at least 4 hex digits, or a label.
    pub snapshot: String,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Snapshot to verify (default: latest): `latest`, an id prefix or a label.
    #[arg(conflicts_with = "all")]
    pub snapshot: Option<String>,

    /// Verify every snapshot in the repository.
    #[arg(long)]
    pub all: bool,

    /// Also read every chunk, decompress it, re-hash it and decode its rows.
    #[arg(long)]
    pub read_data: bool,

    /// With --read-data, read only a sample of the distinct chunks: a percentage (10%) or a
    /// number of chunks (250), chosen anew on each run. The other chunks get an existence
    /// check.
    #[arg(long, value_name = "PERCENT%|N", requires = "read_data", value_parser = parse_sample)]
    pub sample: Option<d1snap_engine::verify::Sample>,

    /// Scan this live SQLite file or SQL dump and compare its roots with the snapshot.
    #[arg(long, value_name = "SOURCE", conflicts_with_all = ["all", "read_data"])]
    pub against: Option<PathBuf>,

    /// Compare with a wrangler project's local D1 database instead of a file.
    #[arg(long = "against-wrangler", value_name = "DIR", num_args = 0..=1, default_missing_value = ".", conflicts_with_all = ["all", "read_data", "against"])]
    pub against_wrangler: Option<PathBuf>,

    /// D1 database binding or name for --against-wrangler.
    #[arg(long, value_name = "NAME_OR_BINDING", requires = "against_wrangler")]
    pub database: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier side: a snapshot name (`latest`, id prefix or label).
    pub a: String,

    /// The later side: a snapshot name, or else the path of a live SQLite file or SQL dump.
    #[arg(required_unless_present = "wrangler", conflicts_with = "wrangler")]
    pub b: Option<String>,

    /// Use a wrangler project's local D1 database as the later side.
    #[command(flatten)]
    pub wrangler: WranglerArgs,

    /// List the rows added, removed and changed in each changed table, keyed by rowid or
    /// primary key, with the changed columns.
    #[arg(long)]
    pub rows: bool,

    /// Only compare this table; repeatable.
    #[arg(long = "table", value_name = "NAME")]
    pub tables: Vec<String>,

    /// Rows listed per table with --rows (the counts are always complete).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,

    /// Write the SQL that turns B into A (the rollback of a migration taken as A before and
    /// B after) to FILE, for `wrangler d1 execute --file`.
    #[arg(long, value_name = "FILE")]
    pub sql: Option<PathBuf>,

    /// With --sql, skip applying the SQL to a scratch copy of B to check that it gives A's
    /// root (the check restores B, which takes time on large databases).
    #[arg(long, requires = "sql")]
    pub no_check: bool,

    /// Replace an existing --sql FILE.
    #[arg(long, requires = "sql")]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("destination").required(true).args(["to", "into", "sql"])))]
pub struct RestoreArgs {
    /// Snapshot to restore: `latest`, an id prefix or a label.
    pub snapshot: String,

    /// Create a new SQLite file.
    #[arg(long, value_name = "FILE")]
    pub to: Option<PathBuf>,

    /// Replace the --table tables of this existing SQLite database in place, leaving every
    /// other table untouched.
    #[arg(long, value_name = "FILE", requires = "tables")]
    pub into: Option<PathBuf>,

    /// Write the snapshot as SQL for `wrangler d1 execute --file` into an empty D1 database.
    #[arg(long, value_name = "FILE")]
    pub sql: Option<PathBuf>,

    /// Restore only this table (and its indexes and triggers); repeatable. Naming a virtual
    /// table restores its shadow tables with it.
    #[arg(long = "table", value_name = "NAME")]
    pub tables: Vec<String>,

    /// With --into, recreate a table whose definition in the target differs from the
    /// snapshot's.
    #[arg(long, requires = "into")]
    pub replace_schema: bool,

    /// With --into, report what would change without writing.
    #[arg(long, requires = "into")]
    pub dry_run: bool,

    /// Replace the --to or --sql file if it exists.
    #[arg(long, conflicts_with = "into")]
    pub force: bool,
}
