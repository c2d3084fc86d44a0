//! Durations as people write them in options and in the configuration file (`30m`, `90s`,
//! `1h`, `7d`, `500ms`), and as the status and alerts print them.

use std::time::Duration;

/// Parses a duration such as `30m`, `90s`, `1h`, `7d` or `500ms`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("invalid duration {text:?}: expected a number and a unit, such as 30m or 90s"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => return Err(format!("invalid duration unit {unit:?} in {text:?}: use ms, s, m, h or d")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// Formats milliseconds for people: `850 ms`, `12.4 s`, `7 min 30 s`, `30 min`, `3 h 5 min`,
/// `2 d 4 h`.
pub fn format_ms(ms: u64) -> String {
    let seconds = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 if ms.is_multiple_of(1000) => format!("{seconds} s"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => join_units(seconds / 60, "min", seconds % 60, "s"),
        3_600_000..86_400_000 => join_units(seconds / 3600, "h", seconds % 3600 / 60, "min"),
        _ => join_units(seconds / 86_400, "d", seconds % 86_400 / 3600, "h"),
    }
}

/// `7 min 30 s`, or `7 min` when the smaller unit is zero.
fn join_units(large: u64, large_unit: &str, small: u64, small_unit: &str) -> String {
    if small == 0 { format!("{large} {large_unit}") } else { format!("{large} {large_unit} {small} {small_unit}") }
}

/// Formats a duration for people, as `format_ms` does.
pub fn format_duration(duration: Duration) -> String {
    format_ms(duration.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_every_unit() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn parse_rejects_unknown_unit() {
        assert!(parse_duration("3w").unwrap_err().contains("unit"));
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn format_picks_readable_unit() {
        assert_eq!(format_ms(850), "850 ms");
        assert_eq!(format_ms(12_400), "12.4 s");
        assert_eq!(format_ms(10_000), "10 s");
        assert_eq!(format_ms(450_000), "7 min 30 s");
        assert_eq!(format_ms(1_800_000), "30 min");
        assert_eq!(format_ms(11_100_000), "3 h 5 min");
        assert_eq!(format_ms(187_200_000), "2 d 4 h");
    }
}
