//! Text and JSON rendering shared by the commands.

use serde::Serialize;

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

/// Formats a byte count with binary units.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Formats a count with thousands separators.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 { format!("{ms} ms") } else { format!("{:.2} s", ms as f64 / 1000.0) }
}

/// Formats milliseconds since the epoch as an ISO 8601 UTC time.
pub fn time_ms(ms: i64) -> String {
    d1snap_engine::time::format_utc(ms)
}

/// First 12 hex digits of an id: enough to name a snapshot on the command line.
pub fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_uses_binary_units() {
        assert_eq!(bytes(1536), "1.5 KiB");
    }

    #[test]
    fn count_groups_thousands() {
        assert_eq!(count(15607), "15,607");
    }
}
