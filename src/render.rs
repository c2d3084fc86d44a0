//! Text and JSON rendering shared by the commands.

use serde::Serialize;

pub use d1snap_ops::format::{bytes, count, short};

/// Prints a value as one JSON object on stdout, with a `requests` member counting the
/// requests the command made to its repository.
pub fn json<T: Serialize>(value: &T) {
    let mut value = match serde_json::to_value(value) {
        Ok(value) => value,
        Err(e) => {
            eprintln!("error: cannot render JSON output: {e}");
            return;
        }
    };
    if let (Some(object), Some(counts)) = (value.as_object_mut(), crate::commands::requests()) {
        object.insert("requests".to_string(), serde_json::to_value(counts).expect("counts serialize"));
    }
    match serde_json::to_string_pretty(&value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot render JSON output: {e}"),
    }
}

/// Prints an error with its full cause chain: on stderr as text, and in JSON mode also as
/// `{"error": {"message": ..., "causes": [...]}}` on stdout.
pub fn error(error: &anyhow::Error, as_json: bool) {
    let causes: Vec<String> = error.chain().skip(1).map(|c| c.to_string()).collect();
    if as_json {
        json(&serde_json::json!({ "error": { "message": error.to_string(), "causes": causes } }));
    }
    eprintln!("error: {error}");
    for cause in causes {
        eprintln!("  caused by: {cause}");
    }
}

/// Prints the requests a command made: on stdout after success, on stderr after a failure.
pub fn print_requests(counts: &d1snap_engine::store::RequestCounts, succeeded: bool) {
    let line = format!(
        "requests: {} PUT, {} GET, {} HEAD, {} LIST, {} DELETE; {} sent, {} received; {} retried",
        count(counts.put),
        count(counts.get),
        count(counts.head),
        count(counts.list),
        count(counts.delete),
        bytes(counts.bytes_sent),
        bytes(counts.bytes_received),
        count(counts.retries)
    );
    if succeeded { println!("{line}") } else { eprintln!("{line}") }
}

pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 { format!("{ms} ms") } else { format!("{:.2} s", ms as f64 / 1000.0) }
}

/// Formats milliseconds since the epoch as an ISO 8601 UTC time.
pub fn time_ms(ms: i64) -> String {
    d1snap_engine::time::format_utc(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats_known_instant() {
        assert_eq!(time_ms(1_733_342_400_000), "2024-12-04T20:00:00Z");
    }
}
