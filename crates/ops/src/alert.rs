//! Alerts: which conditions fire (a failed job, a breached threshold, a stale backup), when
//! to send them again, and the webhook POST that delivers them as `{"text": "..."}`. That
//! is the message shape of Slack incoming webhooks, which Mattermost, Rocket.Chat, Google
//! Chat and Discord (through its `/slack` URL suffix) accept too.
//!
//! The webhook URL carries its own credential, so it is never logged, printed or stored:
//! errors have it replaced by `[webhook URL]`.

use std::collections::BTreeMap;
use std::time::Duration;

use d1snap_engine::history::HistoryEvent;
use serde::Serialize;

use crate::config::AlertConfig;
use crate::history;
use crate::schedule::format_time;
use crate::status::StatusReport;

/// Maximum wait between two attempts, whatever the number of attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// A condition that should alert while it lasts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Condition {
    /// Stable across passes, such as `job:snapshot` or `source:app:snapshot_age`.
    pub key: String,
    pub message: String,
}

/// Collects the conditions active in a status: the latest run of a job failed, or a source
/// breaches a threshold or failed a check.
pub fn conditions(status: &StatusReport) -> Vec<Condition> {
    let mut active = Vec::new();
    for job in status.jobs.iter().filter(|j| j.last_ok == Some(false)) {
        let at = job.last_run_ms.map(format_time).unwrap_or_default();
        let error = job.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        active.push(Condition { key: format!("job:{}", job.job), message: format!("the {} job failed at {at}{error}", job.job) });
    }
    for breach in &status.breaches {
        active.push(Condition { key: format!("source:{}:{}", breach.source, breach.check.name()), message: format!("source {:?}: {}", breach.source, breach.message) });
    }
    active
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AlertPlan {
    /// Conditions to announce: new ones, and lasting ones whose last alert is older than
    /// `repeat_after`.
    pub firing: Vec<Condition>,
    /// Conditions announced before that no longer hold.
    pub resolved: Vec<Condition>,
    /// Active conditions already announced within `repeat_after`.
    pub repeated_later: usize,
}

/// Decides what to send, from the delivered alerts in the history.
pub fn plan(active: &[Condition], events: &[HistoryEvent], now_ms: i64, repeat_after: Duration) -> AlertPlan {
    let last = history::last_alerts(events);
    let state = |event: &HistoryEvent| event.details.get("state").and_then(|s| s.as_str()).unwrap_or_default().to_string();
    let mut plan = AlertPlan::default();
    for condition in active {
        let announced = last.get(&condition.key).filter(|e| state(e) == "firing");
        match announced {
            Some(event) if now_ms - event.time_ms < repeat_after.as_millis() as i64 => plan.repeated_later += 1,
            _ => plan.firing.push(condition.clone()),
        }
    }
    let active_keys: BTreeMap<&str, ()> = active.iter().map(|c| (c.key.as_str(), ())).collect();
    for (key, event) in &last {
        if state(event) == "firing" && !active_keys.contains_key(key.as_str()) {
            let before = event.details.get("message").and_then(|m| m.as_str()).unwrap_or(key);
            plan.resolved.push(Condition { key: key.clone(), message: format!("resolved: {before}") });
        }
    }
    plan
}

/// Builds the text of one message: a header line, then one line per condition.
pub fn message_text(host: &str, repository: &str, plan: &AlertPlan) -> String {
    let mut text = format!("d1snap on {host}, repository {repository}:");
    for condition in &plan.firing {
        text.push_str(&format!("\nALERT {}", condition.message));
    }
    for condition in &plan.resolved {
        text.push_str(&format!("\nOK {}", condition.message));
    }
    text
}

/// The result of sending one message.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub delivered: bool,
    /// POST attempts made.
    pub attempts: u32,
    /// The last error, with the URL redacted.
    pub error: Option<String>,
}

/// A webhook target. `Debug` leaves the URL out.
pub struct Webhook {
    url: String,
    agent: ureq::Agent,
    attempts: u32,
    retry_delay: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("url", &"[redacted]").field("attempts", &self.attempts).finish()
    }
}

/// Replaces the URL, and its path (where services put the token), wherever it appears.
pub fn redact(text: &str, url: &str) -> String {
    let mut out = text.replace(url, "[webhook URL]");
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    if let Some(slash) = after_scheme.find('/') {
        let path = &after_scheme[slash..];
        if path.len() > 1 {
            out = out.replace(path, "/[redacted]");
        }
    }
    out
}

impl Webhook {
    pub fn new(url: String, config: &AlertConfig) -> Webhook {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout.0))
            .max_redirects(0)
            .user_agent(concat!("d1snap/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Webhook { url, agent, attempts: config.attempts, retry_delay: config.retry_delay.0 }
    }

    /// POSTs `{"text": text}`, retrying after server errors (5xx, 408, 429), timeouts and
    /// connection failures with a doubling delay. Other client errors (such as 404 for a
    /// revoked URL) are not retried.
    pub fn post(&self, text: &str) -> Delivery {
        let body = serde_json::json!({ "text": text }).to_string();
        let mut delay = self.retry_delay;
        let mut last_error = None;
        for attempt in 1..=self.attempts {
            let result = self.agent.post(&self.url).content_type("application/json").send(body.as_bytes());
            let (retry, error) = match result {
                Ok(mut response) => {
                    // The reply (Slack's is "ok") is read only to free the connection.
                    let _ = response.body_mut().read_to_string();
                    tracing::info!(attempt, "alert delivered to the webhook");
                    return Delivery { delivered: true, attempts: attempt, error: None };
                }
                Err(ureq::Error::StatusCode(code)) => (code >= 500 || code == 408 || code == 429, format!("the webhook replied with HTTP status {code}")),
                Err(e) => (true, redact(&e.to_string(), &self.url)),
            };
            let will_retry = retry && attempt < self.attempts;
            tracing::warn!(attempt, attempts = self.attempts, error, will_retry, "alert webhook POST failed");
            last_error = Some(error);
            if !will_retry {
                return Delivery { delivered: false, attempts: attempt, error: last_error };
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(MAX_RETRY_DELAY);
        }
        Delivery { delivered: false, attempts: self.attempts, error: last_error }
    }
}

/// Outcome of a pass's alerts: the plan and its delivery.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AlertReport {
    #[serde(flatten)]
    pub plan: AlertPlan,
    /// False when the configuration has no `[alerts]`: nothing is sent.
    pub target_configured: bool,
    /// The delivery of this pass's message; `None` when there was nothing to send.
    pub delivery: Option<Delivery>,
}

/// Sends the planned alerts as one message and records one `alert` event per condition.
/// Only delivered alerts count as announced, so an undelivered one is tried again on the
/// next pass.
pub fn send(repo: Option<&d1snap_engine::repo::Repository>, webhook: Option<&Webhook>, plan: AlertPlan, host: &str, repository: &str, now_ms: i64) -> AlertReport {
    let mut report = AlertReport { target_configured: webhook.is_some(), ..Default::default() };
    let nothing = plan.firing.is_empty() && plan.resolved.is_empty();
    let Some(webhook) = webhook.filter(|_| !nothing) else {
        report.plan = plan;
        return report;
    };
    let text = message_text(host, repository, &plan);
    let delivery = webhook.post(&text);
    if let Some(repo) = repo {
        let message_id = d1snap_engine::id::Digest::of(format!("{now_ms} {text}").as_bytes()).to_hex();
        let states = plan.firing.iter().map(|c| (c, "firing")).chain(plan.resolved.iter().map(|c| (c, "resolved")));
        for (condition, state) in states {
            let details = serde_json::json!({
                "key": condition.key,
                "state": state,
                "message": condition.message,
                "message_id": message_id,
                "attempts": delivery.attempts,
                "error": delivery.error,
            });
            history::append(repo, &history::event(history::ALERT, now_ms, delivery.delivered, 0, &details));
        }
    }
    report.plan = plan;
    report.delivery = Some(delivery);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn condition(key: &str) -> Condition {
        Condition { key: key.into(), message: format!("{key} happened") }
    }

    fn alert_event(key: &str, state: &str, time_ms: i64, delivered: bool) -> HistoryEvent {
        history::event(history::ALERT, time_ms, delivered, 0, &serde_json::json!({ "key": key, "state": state, "message": format!("{key} happened") }))
    }

    #[test]
    fn new_condition_fires() {
        let plan = plan(&[condition("job:snapshot")], &[], 10 * HOUR, Duration::from_secs(3600));
        assert_eq!(plan.firing, vec![condition("job:snapshot")]);
    }

    #[test]
    fn announced_condition_waits_for_repeat() {
        let events = [alert_event("job:snapshot", "firing", 10 * HOUR, true)];
        let soon = plan(&[condition("job:snapshot")], &events, 10 * HOUR + HOUR / 2, Duration::from_secs(3600));
        assert!(soon.firing.is_empty());
        assert_eq!(soon.repeated_later, 1);
        let later = plan(&[condition("job:snapshot")], &events, 11 * HOUR, Duration::from_secs(3600));
        assert_eq!(later.firing.len(), 1);
    }

    #[test]
    fn undelivered_alert_is_sent_again() {
        let events = [alert_event("job:snapshot", "firing", 10 * HOUR, false)];
        let plan = plan(&[condition("job:snapshot")], &events, 10 * HOUR + 60_000, Duration::from_secs(3600));
        assert_eq!(plan.firing.len(), 1);
    }

    #[test]
    fn cleared_condition_resolves_once() {
        let events = vec![alert_event("job:snapshot", "firing", 10 * HOUR, true)];
        let first = plan(&[], &events, 11 * HOUR, Duration::from_secs(3600));
        assert_eq!(first.resolved.len(), 1);
        assert!(first.resolved[0].message.starts_with("resolved: "));
        let mut after = events;
        after.push(alert_event("job:snapshot", "resolved", 11 * HOUR, true));
        assert!(plan(&[], &after, 12 * HOUR, Duration::from_secs(3600)).resolved.is_empty());
    }

    #[test]
    fn redact_hides_url_and_path() {
        let url = "https://hooks.example.com/services/T000/B000/secret-token";
        let text = format!("cannot reach {url}; also /services/T000/B000/secret-token");
        let redacted = redact(&text, url);
        assert!(!redacted.contains("secret-token"), "{redacted}");
        assert!(redacted.contains("[webhook URL]"));
    }
}
