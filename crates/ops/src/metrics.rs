//! Prometheus metrics in the text exposition format (version 0.0.4), written atomically for
//! node_exporter's textfile collector. Every name starts with `d1snap_`; per-source metrics
//! carry a `source` label with the source's name. Times are Unix seconds, durations
//! seconds, sizes bytes.
//!
//! NOTE: object-store request counts are not exported, because the local store does not
//! count its requests; the webhook request count is.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::error::Result;
use crate::status::{Check, StatusReport};

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, f64)>,
}

/// Escapes a label value: backslash, double quote and line feed, as the format requires.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    format!("{{{}}}", inner.join(","))
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn bool_value(value: bool) -> f64 {
    if value { 1.0 } else { 0.0 }
}

/// Renders the metrics of a status.
pub fn render(status: &StatusReport) -> String {
    let mut families: Vec<Family> = Vec::new();
    let mut family = |name: &'static str, kind: &'static str, help: &'static str, samples: Vec<(String, f64)>| {
        families.push(Family { name, help, kind, samples });
    };

    let job = |name: &str| labels(&[("job", name)]);
    let jobs = &status.jobs;
    family("d1snap_job_last_run_timestamp_seconds", "gauge", "Time the job last ran, on the scheduler's clock.", jobs.iter().filter_map(|j| Some((job(j.job.name()), seconds(j.last_run_ms?)))).collect());
    family("d1snap_job_last_success_timestamp_seconds", "gauge", "Time the job last succeeded.", jobs.iter().filter_map(|j| Some((job(j.job.name()), seconds(j.last_success_ms?)))).collect());
    family("d1snap_job_last_run_success", "gauge", "1 when the job's latest run succeeded, 0 when it failed.", jobs.iter().filter_map(|j| Some((job(j.job.name()), bool_value(j.last_ok?)))).collect());
    family("d1snap_job_last_duration_seconds", "gauge", "Duration of the job's latest run.", jobs.iter().filter_map(|j| Some((job(j.job.name()), j.last_duration_ms? as f64 / 1000.0))).collect());
    family("d1snap_job_next_run_timestamp_seconds", "gauge", "Time the job is next due.", jobs.iter().filter_map(|j| Some((job(j.job.name()), seconds(j.next_run_ms?)))).collect());

    let sources = &status.sources;
    let source = |name: &str| labels(&[("source", name)]);
    let per_source = |value: &dyn Fn(&crate::status::SourceStatus) -> Option<f64>| -> Vec<(String, f64)> { sources.iter().filter_map(|s| Some((source(&s.name), value(s)?))).collect() };
    family("d1snap_snapshots", "gauge", "Snapshots of the source in the repository.", per_source(&|s| Some(s.snapshots as f64)));
    family("d1snap_snapshot_last_timestamp_seconds", "gauge", "Time of the source's latest snapshot (a snapshot is recorded only when it succeeds).", per_source(&|s| Some(seconds(s.last_snapshot.as_ref()?.time_ms))));
    family("d1snap_snapshot_last_duration_seconds", "gauge", "Duration of the source's latest snapshot.", per_source(&|s| Some(s.last_snapshot.as_ref()?.duration_ms as f64 / 1000.0)));
    family("d1snap_snapshot_last_size_bytes", "gauge", "Plain encoded bytes of every row in the source's latest snapshot.", per_source(&|s| Some(s.last_snapshot.as_ref()?.bytes as f64)));
    family("d1snap_snapshot_last_new_bytes", "gauge", "Stored bytes the source's latest snapshot added to the repository.", per_source(&|s| Some(s.last_snapshot.as_ref()?.new_bytes as f64)));
    family("d1snap_snapshot_last_rows", "gauge", "Rows in the source's latest snapshot.", per_source(&|s| Some(s.last_snapshot.as_ref()?.rows as f64)));
    family("d1snap_snapshot_last_dedup_ratio", "gauge", "Size of the latest snapshot divided by the bytes it added.", per_source(&|s| Some(s.last_snapshot.as_ref()?.dedup_ratio)));
    family("d1snap_verify_last_timestamp_seconds", "gauge", "Time of the latest verification of the source's snapshots.", per_source(&|s| Some(seconds(s.last_verify.as_ref()?.time_ms))));
    family("d1snap_verify_last_success", "gauge", "1 when the latest verification found no problem, 0 otherwise.", per_source(&|s| Some(bool_value(s.last_verify.as_ref()?.ok))));
    family("d1snap_verify_last_errors", "gauge", "Problems the latest verification found.", per_source(&|s| Some(s.last_verify.as_ref()?.errors as f64)));
    family("d1snap_verify_last_chunks_read", "gauge", "Chunks the latest verification read and re-hashed.", per_source(&|s| Some(s.last_verify.as_ref()?.chunks_read as f64)));
    family("d1snap_verify_last_duration_seconds", "gauge", "Duration of the latest verification.", per_source(&|s| Some(s.last_verify.as_ref()?.duration_ms as f64 / 1000.0)));
    family("d1snap_drill_last_timestamp_seconds", "gauge", "Time of the source's latest restore drill.", per_source(&|s| Some(seconds(s.last_drill.as_ref()?.time_ms))));
    family("d1snap_drill_last_success", "gauge", "1 when the latest drill passed its checks within the time limit, 0 otherwise.", per_source(&|s| Some(bool_value(s.last_drill.as_ref()?.ok))));
    family("d1snap_drill_last_restore_duration_seconds", "gauge", "Restore time measured by the latest drill.", per_source(&|s| Some(s.last_drill.as_ref()?.restore_ms as f64 / 1000.0)));
    family("d1snap_drill_last_restore_throughput_bytes_per_second", "gauge", "Restore throughput of the latest drill, in plain bytes per second.", per_source(&|s| Some(s.last_drill.as_ref()?.restore_bytes_per_second)));
    family("d1snap_rollback_projected_seconds", "gauge", "Time to restore the latest snapshot, projected from the latest drill's throughput.", per_source(&|s| Some(s.projected_rollback_ms? as f64 / 1000.0)));

    let mut breached = Vec::new();
    for s in sources {
        for check in Check::ALL {
            let hit = status.breaches.iter().any(|b| b.source == s.name && b.check == check);
            breached.push((labels(&[("source", &s.name), ("check", check.name())]), bool_value(hit)));
        }
    }
    family("d1snap_check_breached", "gauge", "1 when the source breaches the threshold or failed the check, 0 otherwise.", breached);

    let thresholds = &status.thresholds;
    let mut limits = vec![
        (labels(&[("threshold", "max_snapshot_age")]), thresholds.max_snapshot_age.as_ms() as f64 / 1000.0),
        (labels(&[("threshold", "max_restore_time")]), thresholds.max_restore_time.as_ms() as f64 / 1000.0),
        (labels(&[("threshold", "max_projected_rollback")]), thresholds.max_projected_rollback.as_ms() as f64 / 1000.0),
    ];
    for (name, value) in [("max_verify_age", thresholds.max_verify_age), ("max_drill_age", thresholds.max_drill_age)] {
        if let Some(value) = value {
            limits.push((labels(&[("threshold", name)]), value.as_ms() as f64 / 1000.0));
        }
    }
    family("d1snap_threshold_seconds", "gauge", "Configured time limits.", limits);

    family("d1snap_repository_size_bytes", "gauge", "Bytes of every file in the repository directory.", status.repository_bytes.map(|b| (String::new(), b as f64)).into_iter().collect());
    family("d1snap_repository_files", "gauge", "Files in the repository directory.", status.repository_files.map(|f| (String::new(), f as f64)).into_iter().collect());
    family("d1snap_repository_snapshots", "gauge", "Snapshot records in the repository that can be read.", vec![(String::new(), status.snapshots as f64)]);
    family("d1snap_repository_unreadable_snapshots", "gauge", "Snapshot records that cannot be read.", vec![(String::new(), status.unreadable_snapshots as f64)]);
    family("d1snap_alerts_total", "counter", "Alert conditions sent, by delivery result, as recorded in the repository history.", vec![
        (labels(&[("result", "delivered")]), status.alerts.delivered as f64),
        (labels(&[("result", "failed")]), status.alerts.failed as f64),
    ]);
    family("d1snap_webhook_requests_total", "counter", "Alert webhook POST requests, retries included.", vec![(String::new(), status.alerts.requests as f64)]);

    let mut text = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(text, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(text, "# TYPE {} {}", family.name, family.kind);
        for (labels, value) in &family.samples {
            let _ = writeln!(text, "{}{labels} {}", family.name, format_value(*value));
        }
    }
    text
}

/// Formats a sample value; Prometheus reads Go-style floats, and whole numbers print
/// without an exponent so timestamps stay readable.
fn format_value(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 { format!("{value:.0}") } else if value.is_finite() { format!("{value}") } else { "NaN".into() }
}

/// Writes metrics to `path` atomically (a temporary file beside it, then a rename), so the
/// textfile collector never reads half a file. The file is readable by every user, since
/// node_exporter usually runs as another user.
pub fn write(path: &Path, text: &str) -> Result<()> {
    write_public_file(path, text.as_bytes())
}

/// Writes a file atomically and makes it readable by every user (mode 0644 on Unix).
pub fn write_public_file(path: &Path, bytes: &[u8]) -> Result<()> {
    d1snap_engine::fsutil::write_atomically(path, true, |mut out| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            out.get_ref().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(|e| d1snap_engine::Error::io(format!("setting the permissions of {}", path.display()), e))?;
        }
        out.write_all(bytes).map_err(|e| d1snap_engine::Error::io(format!("writing {}", path.display()), e))?;
        Ok(((), out))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("source", "a\"b\\c\nd")]), "{source=\"a\\\"b\\\\c\\nd\"}");
    }

    #[test]
    fn values_print_without_exponent() {
        assert_eq!(format_value(1_796_414_400.0), "1796414400");
        assert_eq!(format_value(2.5), "2.5");
        assert_eq!(format_value(f64::NAN), "NaN");
    }
}
