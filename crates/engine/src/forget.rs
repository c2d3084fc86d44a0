//! Retention: which snapshots a policy keeps, and why. Snapshots are grouped by source, so
//! each database is thinned on its own; time buckets are UTC.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::object::snapshot::SnapshotRecord;
use crate::repo::Repository;
use crate::time::{civil_from_days, days_from_civil};

#[derive(Clone, Debug, Default, Serialize)]
pub struct ForgetPolicy {
    pub keep_last: Option<usize>,
    pub keep_hourly: Option<usize>,
    pub keep_daily: Option<usize>,
    pub keep_weekly: Option<usize>,
    pub keep_monthly: Option<usize>,
    /// Keep every snapshot taken within this duration of the group's latest one.
    pub keep_within: Option<Duration>,
    /// Keep every snapshot with a label equal to, or starting with, one of these.
    pub keep_labels: Vec<String>,
}

impl ForgetPolicy {
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_hourly.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
            && self.keep_within.is_none()
            && self.keep_labels.is_empty()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ForgetDecision {
    pub id: SnapshotId,
    pub time_ms: i64,
    pub source: String,
    pub labels: Vec<String>,
    pub keep: bool,
    /// Rules that keep the snapshot, such as "last 3" or "daily 2026-12-04".
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ForgetReport {
    pub dry_run: bool,
    pub decisions: Vec<ForgetDecision>,
    pub removed: usize,
    pub kept: usize,
}

/// Returns the hourly, daily, weekly and monthly bucket names of a time.
fn buckets(time_ms: i64) -> [String; 4] {
    let secs = time_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let hour = secs.rem_euclid(86_400) / 3600;
    // ISO week: weeks start on Monday; 1970-01-01 was a Thursday.
    let weekday = (days + 3).rem_euclid(7);
    let thursday = days - weekday + 3;
    let (iso_year, _, _) = civil_from_days(thursday);
    let jan1 = days_from_civil(iso_year, 1, 1);
    let week = (thursday - jan1) / 7 + 1;
    [
        format!("{year:04}-{month:02}-{day:02} {hour:02}h"),
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{iso_year:04}-W{week:02}"),
        format!("{year:04}-{month:02}"),
    ]
}

/// Decides, per source, which snapshots the policy keeps. `snapshots` may be in any order.
pub fn plan(policy: &ForgetPolicy, snapshots: &[(SnapshotId, SnapshotRecord)]) -> Result<Vec<ForgetDecision>> {
    if policy.is_empty() {
        return Err(Error::Invalid(
            "no retention policy given; pass at least one --keep-* option (forget never removes every snapshot by default)".into(),
        ));
    }
    let mut groups: BTreeMap<&str, Vec<&(SnapshotId, SnapshotRecord)>> = BTreeMap::new();
    for snapshot in snapshots {
        groups.entry(snapshot.1.source.location.as_str()).or_default().push(snapshot);
    }
    let mut decisions = Vec::new();
    for (_, mut group) in groups {
        // Newest first, as every rule counts from the newest.
        group.sort_by(|a, b| b.1.time_ms.cmp(&a.1.time_ms).then(b.0.cmp(&a.0)));
        let latest = group.first().map(|s| s.1.time_ms).unwrap_or(0);
        let mut reasons: Vec<Vec<String>> = vec![Vec::new(); group.len()];
        if let Some(n) = policy.keep_last {
            for (i, reason) in reasons.iter_mut().enumerate().take(n) {
                reason.push(format!("last {}", i + 1));
            }
        }
        let calendar = [("hourly", policy.keep_hourly, 0), ("daily", policy.keep_daily, 1), ("weekly", policy.keep_weekly, 2), ("monthly", policy.keep_monthly, 3)];
        for (name, count, slot) in calendar {
            let Some(count) = count else { continue };
            let mut seen: BTreeSet<String> = BTreeSet::new();
            for (i, snapshot) in group.iter().enumerate() {
                if seen.len() >= count {
                    break;
                }
                let bucket = buckets(snapshot.1.time_ms)[slot].clone();
                if seen.insert(bucket.clone()) {
                    reasons[i].push(format!("{name} {bucket}"));
                }
            }
        }
        if let Some(within) = policy.keep_within {
            for (i, snapshot) in group.iter().enumerate() {
                if latest - snapshot.1.time_ms <= within.as_millis() as i64 {
                    reasons[i].push(format!("within {}s of the latest", within.as_secs()));
                }
            }
        }
        for (i, snapshot) in group.iter().enumerate() {
            for wanted in &policy.keep_labels {
                if let Some(label) = snapshot.1.labels.iter().find(|l| l.as_str() == wanted || l.starts_with(wanted.as_str())) {
                    reasons[i].push(format!("label {label:?}"));
                }
            }
        }
        for (snapshot, reasons) in group.into_iter().zip(reasons) {
            decisions.push(ForgetDecision {
                id: snapshot.0,
                time_ms: snapshot.1.time_ms,
                source: snapshot.1.source.location.clone(),
                labels: snapshot.1.labels.clone(),
                keep: !reasons.is_empty(),
                reasons,
            });
        }
    }
    Ok(decisions)
}

/// Applies a policy: removes the snapshot records it does not keep. Their data stays until
/// `prune` reclaims it.
pub fn forget(repo: &Repository, policy: &ForgetPolicy, dry_run: bool) -> Result<ForgetReport> {
    let mut snapshots = Vec::new();
    for (id, record) in repo.snapshots()? {
        match record {
            Ok(record) => snapshots.push((id, record)),
            // A record that cannot be read is never removed by a policy: verify reports it.
            Err(e) => tracing::warn!(snapshot = %id, error = %e, "keeping an unreadable snapshot record"),
        }
    }
    let decisions = plan(policy, &snapshots)?;
    let removed = decisions.iter().filter(|d| !d.keep).count();
    if !dry_run && removed > 0 {
        for decision in decisions.iter().filter(|d| !d.keep) {
            repo.store().delete(&crate::object::Kind::Snapshot.key(&decision.id.0))?;
        }
        repo.store().flush()?;
    }
    Ok(ForgetReport { dry_run, kept: decisions.len() - removed, removed, decisions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_of_known_time() {
        // 2026-12-04T20:00:00Z is a Friday in ISO week 49.
        let b = buckets(1_796_414_400_000);
        assert_eq!(b[0], "2026-12-04 20h");
        assert_eq!(b[1], "2026-12-04");
        assert_eq!(b[2], "2026-W49");
        assert_eq!(b[3], "2026-12");
    }

    #[test]
    fn iso_week_spans_new_year() {
        // 2027-01-01 is a Friday, in ISO week 53 of 2026.
        assert_eq!(buckets(1_798_761_600_000)[2], "2026-W53");
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;
    use crate::id::Digest;
    use crate::object::snapshot::{CONTENT_VERSION, DatabaseContent, SNAPSHOT_VERSION, SnapshotStats, SourceInfo};

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    /// 2026-12-04T20:00:00Z.
    const NOW: i64 = 1_796_414_400_000;

    fn record(time_ms: i64, labels: &[&str]) -> (SnapshotId, SnapshotRecord) {
        let content = DatabaseContent { version: CONTENT_VERSION, encoding: "UTF-8".into(), user_version: 0, application_id: 0, tables: vec![], schema: vec![], sequences: vec![] };
        let record = SnapshotRecord {
            version: SNAPSHOT_VERSION,
            root: content.root(),
            content,
            time_ms,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            source: SourceInfo { kind: "sqlite".into(), location: "/db".into(), lossy: false },
            parent: None,
            tables: vec![],
            stats: SnapshotStats::default(),
            tool_version: "test".into(),
        };
        (SnapshotId(Digest::of(&time_ms.to_le_bytes())), record)
    }

    fn kept(policy: &ForgetPolicy, snapshots: &[(SnapshotId, SnapshotRecord)]) -> Vec<i64> {
        let mut times: Vec<i64> = plan(policy, snapshots).unwrap().into_iter().filter(|d| d.keep).map(|d| (NOW - d.time_ms) / HOUR).collect();
        times.sort();
        times
    }

    /// One snapshot every 6 hours for 10 days; returns them with their age in hours.
    fn every_six_hours() -> Vec<(SnapshotId, SnapshotRecord)> {
        (0..40).map(|i| record(NOW - i * 6 * HOUR, &[])).collect()
    }

    #[test]
    fn keep_last_keeps_newest() {
        let policy = ForgetPolicy { keep_last: Some(3), ..Default::default() };
        assert_eq!(kept(&policy, &every_six_hours()), vec![0, 6, 12]);
    }

    #[test]
    fn keep_daily_keeps_newest_of_each_day() {
        let policy = ForgetPolicy { keep_daily: Some(3), ..Default::default() };
        // Snapshots fall at 20:00, 14:00, 08:00 and 02:00 each day, so each day's newest is
        // its 20:00 one.
        assert_eq!(kept(&policy, &every_six_hours()), vec![0, 24, 48]);
    }

    #[test]
    fn keep_within_uses_latest_snapshot() {
        let policy = ForgetPolicy { keep_within: Some(Duration::from_secs(24 * 3600)), ..Default::default() };
        assert_eq!(kept(&policy, &every_six_hours()), vec![0, 6, 12, 18, 24]);
    }

    #[test]
    fn keep_label_matches_prefix() {
        let mut snapshots = every_six_hours();
        snapshots.push(record(NOW - 30 * DAY, &["pre-migration: 0002_add_index.sql"]));
        let policy = ForgetPolicy { keep_last: Some(1), keep_labels: vec!["pre-migration".into()], ..Default::default() };
        assert_eq!(kept(&policy, &snapshots), vec![0, 30 * 24]);
    }

    #[test]
    fn empty_policy_is_rejected() {
        assert!(plan(&ForgetPolicy::default(), &every_six_hours()).is_err());
    }
}
