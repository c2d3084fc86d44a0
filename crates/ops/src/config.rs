//! The configuration file, `d1snap.toml`: the repository, the sources, the scheduled jobs,
//! the thresholds and the alert target. Unknown keys are errors that name the key, so a
//! misspelt key never leaves a job silently unscheduled. Relative paths are relative to
//! the directory of the file. docs/operations.md describes every key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use d1snap_engine::forget::ForgetPolicy;
use d1snap_engine::source::SourceSpec;
use d1snap_engine::verify::Sample;
use serde::{Deserialize, Deserializer, Serialize};

use crate::duration::parse_duration;
use crate::error::{Error, Result};
use crate::schedule::Schedule;

/// The name `run`, `daemon`, `status` and `report` look for in the working directory.
pub const FILE_NAME: &str = "d1snap.toml";

/// A duration written as text in the file, such as `30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text).map(Interval).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Interval {
    /// Writes whole milliseconds, the unit of every other time in the JSON output.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0.as_millis() as u64)
    }
}

impl Interval {
    pub fn as_ms(&self) -> u64 {
        self.0.as_millis() as u64
    }
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file this was read from.
    #[serde(skip)]
    pub path: PathBuf,
    /// The repository: a directory, or an `s3://` or `r2://` URL. `--repo` and
    /// `D1SNAP_REPO` take precedence.
    pub repository: Option<String>,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub jobs: Jobs,
    #[serde(default)]
    pub thresholds: Thresholds,
    pub alerts: Option<AlertConfig>,
}

/// One `[[source]]`: a SQLite file or SQL dump (`path`), or a wrangler project's local D1
/// database (`wrangler`, with `database` when the project declares several).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Names the source in status, metrics labels and alerts.
    pub name: String,
    pub path: Option<PathBuf>,
    pub wrangler: Option<PathBuf>,
    pub database: Option<String>,
}

impl SourceConfig {
    pub fn spec(&self) -> SourceSpec {
        match (&self.path, &self.wrangler) {
            (_, Some(project)) => SourceSpec::Wrangler { project: project.clone(), database: self.database.clone() },
            (Some(path), None) => SourceSpec::Path(path.clone()),
            // `Config::validate` rejects a source with neither.
            (None, None) => SourceSpec::Path(PathBuf::new()),
        }
    }
}

/// `[jobs.*]`: each job that has a table is scheduled.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Jobs {
    pub snapshot: Option<SnapshotJob>,
    pub verify: Option<VerifyJob>,
    pub drill: Option<DrillJob>,
    pub forget: Option<ForgetJob>,
    pub prune: Option<PruneJob>,
}

/// Snapshots every source.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotJob {
    pub schedule: Schedule,
    /// Labels for every scheduled snapshot.
    #[serde(default)]
    pub labels: Vec<String>,
}

/// Verifies every snapshot, one source at a time.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyJob {
    pub schedule: Schedule,
    /// Read and re-hash chunks, as `verify --read-data` does.
    #[serde(default)]
    pub read_data: bool,
    /// With `read_data`, read only this sample of the chunks: `"10%"` or a number of chunks.
    #[serde(default, deserialize_with = "deserialize_sample")]
    pub sample: Option<Sample>,
}

/// Drills the latest snapshot of every source.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DrillJob {
    pub schedule: Schedule,
}

/// Applies a retention policy, as `d1snap forget` does with the same `keep_*` options.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgetJob {
    pub schedule: Schedule,
    pub keep_last: Option<usize>,
    pub keep_hourly: Option<usize>,
    pub keep_daily: Option<usize>,
    pub keep_weekly: Option<usize>,
    pub keep_monthly: Option<usize>,
    pub keep_within: Option<Interval>,
    #[serde(default)]
    pub keep_label: Vec<String>,
}

impl ForgetJob {
    pub fn policy(&self) -> ForgetPolicy {
        ForgetPolicy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_within: self.keep_within.map(|i| i.0),
            keep_labels: self.keep_label.clone(),
        }
    }
}

impl Serialize for ForgetJob {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Serialized<'a> {
            schedule: &'a Schedule,
            policy: ForgetPolicy,
        }
        Serialized { schedule: &self.schedule, policy: self.policy() }.serialize(serializer)
    }
}

/// Deletes unreferenced objects.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PruneJob {
    pub schedule: Schedule,
}

/// `[thresholds]`: what `status` checks, what breaches alert, and what drills must meet.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// The latest snapshot of each source must be younger than this. The default, 25 hours,
    /// lets a daily schedule finish its next run before the last snapshot counts as stale.
    #[serde(default = "default_max_snapshot_age")]
    pub max_snapshot_age: Interval,
    /// A drill's measured restore must finish within this.
    #[serde(default = "default_rollback_limit")]
    pub max_restore_time: Interval,
    /// Restoring the latest snapshot, projected from the latest drill's throughput, must
    /// fit in this.
    #[serde(default = "default_rollback_limit")]
    pub max_projected_rollback: Interval,
    /// When set, some verification of each source must have passed within this.
    pub max_verify_age: Option<Interval>,
    /// When set, some drill of each source must have passed within this.
    pub max_drill_age: Option<Interval>,
}

fn default_max_snapshot_age() -> Interval {
    Interval(Duration::from_secs(25 * 3600))
}

/// Rollback of any change must stay under 30 minutes.
fn default_rollback_limit() -> Interval {
    Interval(Duration::from_secs(30 * 60))
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_snapshot_age: default_max_snapshot_age(),
            max_restore_time: default_rollback_limit(),
            max_projected_rollback: default_rollback_limit(),
            max_verify_age: None,
            max_drill_age: None,
        }
    }
}

/// `[alerts]`: where and how to send alerts.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// The webhook URL. It is a secret: prefer `webhook_url_env`.
    webhook_url: Option<String>,
    /// The name of an environment variable that contains the webhook URL.
    pub webhook_url_env: Option<String>,
    /// Time limit of one POST, connection included.
    #[serde(default = "default_timeout")]
    pub timeout: Interval,
    /// POST attempts per message, the first included.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before the second attempt; each later wait doubles.
    #[serde(default = "default_retry_delay")]
    pub retry_delay: Interval,
    /// While a condition lasts, its alert is sent again after this long.
    #[serde(default = "default_repeat_after")]
    pub repeat_after: Interval,
}

fn default_timeout() -> Interval {
    Interval(Duration::from_secs(10))
}

fn default_attempts() -> u32 {
    3
}

fn default_retry_delay() -> Interval {
    Interval(Duration::from_secs(2))
}

fn default_repeat_after() -> Interval {
    Interval(Duration::from_secs(24 * 3600))
}

impl std::fmt::Debug for AlertConfig {
    /// Leaves the URL out: it is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertConfig")
            .field("webhook_url", &self.webhook_url.as_ref().map(|_| "[redacted]"))
            .field("webhook_url_env", &self.webhook_url_env)
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("retry_delay", &self.retry_delay)
            .field("repeat_after", &self.repeat_after)
            .finish()
    }
}

impl AlertConfig {
    /// Returns the webhook URL, from the file or from the named environment variable.
    pub fn webhook_url(&self, config_path: &Path) -> Result<String> {
        let url = match (&self.webhook_url, &self.webhook_url_env) {
            (Some(url), _) => url.clone(),
            (None, Some(name)) => std::env::var(name).map_err(|_| {
                Error::config(config_path, format!("alerts.webhook_url_env names the environment variable {name}, which is not set (or not valid UTF-8); set it to the webhook URL"))
            })?,
            (None, None) => return Err(Error::config(config_path, "[alerts] needs webhook_url or webhook_url_env")),
        };
        let url = url.trim().to_string();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            // The value is a secret, so the message does not show it.
            return Err(Error::config(config_path, "the alert webhook URL does not start with https:// or http://"));
        }
        Ok(url)
    }
}

fn deserialize_sample<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<Sample>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Count(u64),
        Text(String),
    }
    let text = match Written::deserialize(deserializer)? {
        Written::Count(count) => count.to_string(),
        Written::Text(text) => text,
    };
    text.parse::<Sample>().map(Some).map_err(serde::de::Error::custom)
}

impl Config {
    /// Finds the configuration file: `explicit` when given (it must exist), else
    /// `d1snap.toml` in the working directory when there is one.
    pub fn find(explicit: Option<&Path>) -> Result<Option<PathBuf>> {
        if let Some(path) = explicit {
            if !path.is_file() {
                return Err(Error::config(path, "configuration file not found; check --config / D1SNAP_CONFIG"));
            }
            return Ok(Some(path.to_path_buf()));
        }
        let default = PathBuf::from(FILE_NAME);
        Ok(default.is_file().then_some(default))
    }

    /// Reads, parses and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::config(path, format!("cannot read: {e}")))?;
        Config::parse(&text, path)
    }

    /// Parses and checks configuration text; `path` names the file in errors and anchors
    /// relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let mut config: Config = toml::from_str(text).map_err(|e| Error::config(path, format!("invalid configuration: {e}")))?;
        config.path = path.to_path_buf();
        config.validate()?;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let base = std::path::absolute(parent).map_err(|e| Error::config(path, format!("cannot resolve the file's directory: {e}")))?;
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        // A relative directory is relative to the file; a bucket URL is left as written.
        if let Some(repository) = config.repository.as_mut().filter(|r| !r.contains("://")) {
            let mut path = PathBuf::from(&*repository);
            resolve(&mut path);
            *repository = path.display().to_string();
        }
        for source in &mut config.sources {
            source.path.as_mut().map(resolve);
            source.wrangler.as_mut().map(resolve);
        }
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config(&self.path, message));
        for (i, source) in self.sources.iter().enumerate() {
            let name = &source.name;
            if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                return invalid(format!("source {} has an invalid name {name:?}: use 1 to 100 characters without control characters", i + 1));
            }
            if self.sources[..i].iter().any(|other| &other.name == name) {
                return invalid(format!("two sources are named {name:?}; names must be unique"));
            }
            match (&source.path, &source.wrangler) {
                (Some(_), Some(_)) => return invalid(format!("source {name:?} sets both path and wrangler; give one")),
                (None, None) => return invalid(format!("source {name:?} needs path (a SQLite file or SQL dump) or wrangler (a project directory)")),
                _ => {}
            }
            if source.database.is_some() && source.wrangler.is_none() {
                return invalid(format!("source {name:?} sets database without wrangler; database names a D1 database of a wrangler project"));
            }
        }

        let needs_sources = [("snapshot", self.jobs.snapshot.is_some()), ("drill", self.jobs.drill.is_some())];
        for (job, scheduled) in needs_sources {
            if scheduled && self.sources.is_empty() {
                return invalid(format!("[jobs.{job}] is scheduled but no [[source]] is configured"));
            }
        }

        if let Some(snapshot) = &self.jobs.snapshot {
            for label in &snapshot.labels {
                d1snap_engine::snapshot::validate_label(label).map_err(|e| Error::config(&self.path, format!("jobs.snapshot.labels: {e}")))?;
            }
        }
        if let Some(verify) = &self.jobs.verify
            && verify.sample.is_some()
            && !verify.read_data
        {
            return invalid("jobs.verify.sample needs read_data = true: the sample says which chunks to read".into());
        }
        if let Some(forget) = &self.jobs.forget
            && forget.policy().is_empty()
        {
            return invalid("[jobs.forget] needs at least one keep_* key; forget never removes every snapshot".into());
        }

        let thresholds = [
            ("max_snapshot_age", Some(self.thresholds.max_snapshot_age)),
            ("max_restore_time", Some(self.thresholds.max_restore_time)),
            ("max_projected_rollback", Some(self.thresholds.max_projected_rollback)),
            ("max_verify_age", self.thresholds.max_verify_age),
            ("max_drill_age", self.thresholds.max_drill_age),
        ];
        for (key, value) in thresholds {
            if value.is_some_and(|v| v.0.is_zero()) {
                return invalid(format!("thresholds.{key} must be longer than zero"));
            }
        }

        if let Some(alerts) = &self.alerts {
            if alerts.webhook_url.is_some() == alerts.webhook_url_env.is_some() {
                return invalid("[alerts] needs exactly one of webhook_url and webhook_url_env".into());
            }
            if !(1..=10).contains(&alerts.attempts) {
                return invalid(format!("alerts.attempts is {}; use 1 to 10", alerts.attempts));
            }
            if alerts.timeout.0.is_zero() {
                return invalid("alerts.timeout must be longer than zero".into());
            }
        }
        Ok(())
    }

    /// Returns the repository, a directory or a bucket URL: `override_repo` (from `--repo`
    /// or `D1SNAP_REPO`) when given, else the file's `repository`.
    pub fn repository(&self, override_repo: Option<&str>) -> Result<String> {
        match (override_repo, &self.repository) {
            (Some(repo), _) => Ok(repo.to_string()),
            (None, Some(repo)) => Ok(repo.clone()),
            (None, None) => Err(Error::config(&self.path, "no repository: set repository in the file, or pass --repo / D1SNAP_REPO")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("/etc/d1snap/d1snap.toml"))
    }

    const FULL: &str = r#"
repository = "repo"

[[source]]
name = "app"
path = "data/app.sqlite"

[[source]]
name = "worker"
wrangler = "/srv/worker"
database = "DB"

[jobs.snapshot]
schedule = "0 * * * *"
labels = ["scheduled"]

[jobs.verify]
schedule = "30 3 * * *"
read_data = true
sample = "10%"

[jobs.drill]
schedule = "0 4 * * sun"

[jobs.forget]
schedule = "15 0 * * *"
keep_hourly = 24
keep_daily = 7
keep_within = "2d"
keep_label = ["pre-migration"]

[jobs.prune]
schedule = "45 0 * * sun"

[thresholds]
max_snapshot_age = "2h"

[alerts]
webhook_url_env = "D1SNAP_TEST_WEBHOOK"
attempts = 4
"#;

    #[test]
    fn bucket_repository_is_kept_as_written() {
        let config = parse("repository = \"r2://account/bucket/prefix\"\n").unwrap();
        assert_eq!(config.repository.as_deref(), Some("r2://account/bucket/prefix"));
    }

    #[test]
    fn full_file_parses() {
        let config = parse(FULL).unwrap();
        assert_eq!(config.repository.as_deref(), Some("/etc/d1snap/repo"));
        assert_eq!(config.sources[0].path.as_deref(), Some(Path::new("/etc/d1snap/data/app.sqlite")));
        assert_eq!(config.sources[1].wrangler.as_deref(), Some(Path::new("/srv/worker")));
        assert_eq!(config.jobs.verify.as_ref().unwrap().sample, Some(Sample::Percent(10.0)));
        let policy = config.jobs.forget.as_ref().unwrap().policy();
        assert_eq!(policy.keep_within, Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(config.thresholds.max_snapshot_age.0, Duration::from_secs(7200));
        assert_eq!(config.thresholds.max_restore_time.0, Duration::from_secs(1800));
        assert_eq!(config.alerts.as_ref().unwrap().attempts, 4);
    }

    #[test]
    fn sample_may_be_a_number() {
        let config = parse("[jobs.verify]\nschedule = \"@daily\"\nread_data = true\nsample = 250\n").unwrap();
        assert_eq!(config.jobs.verify.unwrap().sample, Some(Sample::Chunks(250)));
    }

    #[test]
    fn unknown_key_is_named() {
        let error = parse("[jobs.snapshot]\nschedule = \"@hourly\"\nshedule = \"@daily\"\n").unwrap_err().to_string();
        assert!(error.contains("unknown field `shedule`"), "{error}");
        let error = parse("[thresholds]\nmax_age = \"1h\"\n").unwrap_err().to_string();
        assert!(error.contains("unknown field `max_age`"), "{error}");
    }

    #[test]
    fn invalid_cron_names_the_expression() {
        let error = parse("[jobs.prune]\nschedule = \"61 * * * *\"\n").unwrap_err().to_string();
        assert!(error.contains("invalid cron expression \"61 * * * *\""), "{error}");
    }

    #[test]
    fn invalid_combinations_are_rejected() {
        let cases = [
            ("[[source]]\nname = \"a\"\n", "needs path"),
            ("[[source]]\nname = \"a\"\npath = \"x\"\nwrangler = \"y\"\n", "both path and wrangler"),
            ("[[source]]\nname = \"a\"\npath = \"x\"\n[[source]]\nname = \"a\"\npath = \"y\"\n", "unique"),
            ("[[source]]\nname = \"a\"\npath = \"x\"\ndatabase = \"DB\"\n", "without wrangler"),
            ("[jobs.snapshot]\nschedule = \"@hourly\"\n", "no [[source]]"),
            ("[jobs.verify]\nschedule = \"@daily\"\nsample = \"5%\"\n", "read_data = true"),
            ("[jobs.forget]\nschedule = \"@daily\"\n", "keep_*"),
            ("[thresholds]\nmax_restore_time = \"0s\"\n", "longer than zero"),
            ("[alerts]\nattempts = 2\n", "exactly one of"),
            ("[alerts]\nwebhook_url_env = \"X\"\nattempts = 0\n", "1 to 10"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?} gave {error:?}, expected it to mention {expected:?}");
        }
    }

    #[test]
    fn webhook_url_from_missing_env_is_an_error() {
        let config = parse("[alerts]\nwebhook_url_env = \"D1SNAP_TEST_UNSET_VARIABLE\"\n").unwrap();
        let error = config.alerts.unwrap().webhook_url(&config.path).unwrap_err().to_string();
        assert!(error.contains("D1SNAP_TEST_UNSET_VARIABLE"), "{error}");
    }

    #[test]
    fn webhook_url_error_does_not_show_the_url() {
        let config = parse("[alerts]\nwebhook_url = \"ftp://hooks.example/secret-token\"\n").unwrap();
        let alerts = config.alerts.unwrap();
        let error = alerts.webhook_url(&config.path).unwrap_err().to_string();
        assert!(!error.contains("secret-token"), "{error}");
        assert!(!format!("{alerts:?}").contains("secret-token"));
    }
}
