//! Cron schedules: standard 5-field expressions (minute, hour, day of month, month, day of
//! week) and the `@hourly`-style nicknames, parsed by the `croner` crate and evaluated in
//! UTC. Times are milliseconds since the Unix epoch, so a caller can run a schedule on any
//! clock.

use std::fmt;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Deserializer};

#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    /// Parses a 5-field cron expression. Fields for seconds or years are rejected, so an
    /// expression means the same here as in a crontab or a CI schedule.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        let cron = parser
            .parse(text)
            .map_err(|e| format!("invalid cron expression {text:?}: {e}; expected 5 fields (minute hour day-of-month month day-of-week), such as \"0 * * * *\""))?;
        Ok(Schedule { text: text.trim().to_string(), cron })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first time the schedule fires strictly after `time_ms`, or `None` when it never
    /// fires again (such as 30 February).
    pub fn next_after(&self, time_ms: i64) -> Option<i64> {
        let start: DateTime<Utc> = DateTime::from_timestamp_millis(time_ms)?;
        self.cron.find_next_occurrence(&start, false).ok().map(|next| next.timestamp_millis())
    }

    /// Whether a job on this schedule is due at `now_ms`, given when it last ran. A job that
    /// never ran is due at once; otherwise it is due once the schedule has fired since its
    /// last run. Missed firings are not made up: a job that missed several runs once.
    pub fn is_due(&self, last_run_ms: Option<i64>, now_ms: i64) -> bool {
        match last_run_ms {
            None => true,
            Some(last) => self.next_after(last).is_some_and(|next| next <= now_ms),
        }
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.text)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Schedule::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// Formats milliseconds since the epoch as an ISO 8601 UTC time to the second.
pub fn format_time(time_ms: i64) -> String {
    d1snap_engine::time::format_utc(time_ms)
}

/// Parses an RFC 3339 time (`2026-12-04T20:00:00Z`) into milliseconds since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("invalid time {text:?}: {e}; expected RFC 3339, such as 2026-12-04T20:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-04T20:00:00Z, a Friday.
    const FRIDAY_20H: i64 = 1_796_414_400_000;
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;

    #[test]
    fn hourly_fires_on_the_hour() {
        let schedule = Schedule::parse("0 * * * *").unwrap();
        assert_eq!(schedule.next_after(FRIDAY_20H), Some(FRIDAY_20H + HOUR));
        assert_eq!(schedule.next_after(FRIDAY_20H - 1), Some(FRIDAY_20H));
    }

    #[test]
    fn steps_lists_and_weekdays() {
        let every_15 = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(every_15.next_after(FRIDAY_20H + 1), Some(FRIDAY_20H + 15 * MINUTE));
        let twice_daily = Schedule::parse("30 3,15 * * *").unwrap();
        assert_eq!(twice_daily.next_after(FRIDAY_20H), Some(FRIDAY_20H + 7 * HOUR + 30 * MINUTE));
        // Sunday at 04:00 after a Friday at 20:00 is 32 hours later.
        let sunday = Schedule::parse("0 4 * * sun").unwrap();
        assert_eq!(sunday.next_after(FRIDAY_20H), Some(FRIDAY_20H + 32 * HOUR));
    }

    #[test]
    fn nickname_daily_is_midnight() {
        let daily = Schedule::parse("@daily").unwrap();
        assert_eq!(daily.next_after(FRIDAY_20H), Some(FRIDAY_20H + 4 * HOUR));
    }

    #[test]
    fn invalid_expressions_are_rejected() {
        for text in ["", "* * * *", "0 0 * * * *", "61 * * * *", "* 24 * * *", "every hour"] {
            assert!(Schedule::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn due_after_firing_since_last_run() {
        let hourly = Schedule::parse("0 * * * *").unwrap();
        assert!(hourly.is_due(None, FRIDAY_20H));
        assert!(!hourly.is_due(Some(FRIDAY_20H), FRIDAY_20H + 59 * MINUTE));
        assert!(hourly.is_due(Some(FRIDAY_20H), FRIDAY_20H + HOUR));
        assert!(hourly.is_due(Some(FRIDAY_20H), FRIDAY_20H + 5 * HOUR), "a job that missed runs is due once");
    }

    #[test]
    fn time_round_trips() {
        assert_eq!(format_time(FRIDAY_20H), "2026-12-04T20:00:00Z");
        assert_eq!(parse_time("2026-12-04T20:00:00Z").unwrap(), FRIDAY_20H);
        assert_eq!(parse_time("2026-12-04T21:00:00+01:00").unwrap(), FRIDAY_20H);
        assert!(parse_time("yesterday").is_err());
    }
}
