//! The HTML report: one self-contained file with inline CSS and inline SVG charts, and no
//! script, font, image or any other resource to fetch. A Content-Security-Policy of
//! `default-src 'none'` makes a browser block any fetch that text in the page could cause.

pub mod svg;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use d1snap_engine::history::HistoryEvent;
use d1snap_engine::id::SnapshotId;
use d1snap_engine::object::snapshot::SnapshotRecord;

use crate::duration::format_ms;
use crate::format::{bytes, count, short};
use crate::history;
use crate::schedule::format_time;
use crate::status::{SourceStatus, StatusReport};
use svg::{Chart, Mark, Point, Series, Threshold, Unit};

/// Rows in the tables of recent snapshots and recent jobs.
const RECENT_ROWS: usize = 50;

/// Series colors, one per source, in order.
const PALETTE: [&str; 6] = ["#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2"];

const STYLE: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #111827; background: #f9fafb; margin: 0; }
main { max-width: 920px; margin: 0 auto; padding: 24px 16px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 8px; }
.meta { color: #4b5563; margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 12px; }
.card { background: #fff; border: 1px solid #e5e7eb; border-left: 5px solid #16a34a; border-radius: 6px; padding: 10px 14px; }
.card.breached { border-left-color: #dc2626; }
.card h3 { font-size: 15px; margin: 0 0 6px; }
.card dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 0; }
.card dt { color: #6b7280; }
.card dd { margin: 0; }
.breach { color: #b91c1c; margin: 6px 0 0; }
figure { background: #fff; border: 1px solid #e5e7eb; border-radius: 6px; margin: 12px 0; padding: 10px 12px 4px; }
figcaption { font-weight: 600; margin-bottom: 2px; }
.legend { list-style: none; margin: 0 0 4px; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; color: #374151; font-size: 13px; }
.legend span { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart text { font-size: 11px; fill: #4b5563; }
svg.chart .empty { font-size: 14px; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #e5e7eb; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #f3f4f6; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.ok { color: #15803d; }
.bad { color: #b91c1c; font-weight: 600; }
.warn { color: #b45309; font-weight: 600; }
code { font-size: 12px; }
";

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Data the report shows.
pub struct ReportInput<'a> {
    pub status: &'a StatusReport,
    pub records: &'a [(SnapshotId, SnapshotRecord)],
    pub events: &'a [HistoryEvent],
}

/// Names a source location as the status does: the configured name, else the location.
fn namer(status: &StatusReport) -> impl Fn(&str) -> String + '_ {
    move |location: &str| status.sources.iter().find(|s| s.location == location).map_or_else(|| location.to_string(), |s| s.name.clone())
}

/// Renders the whole report.
pub fn render_html(input: &ReportInput<'_>) -> String {
    let status = input.status;
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>d1snap report: {repository}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>d1snap report</h1>
<p class="meta">Repository <code>{repository}</code> &middot; {snapshots} snapshots &middot; {size} on disk &middot; generated {generated}</p>
"#,
        repository = escape(&status.repository),
        snapshots = status.snapshots,
        size = status.repository_bytes.map_or_else(|| "unknown size".to_string(), bytes),
        generated = format_time(status.now_ms)
    );
    render_status(&mut html, status);
    html.push_str("<h2>Charts</h2>\n");
    for chart in [size_chart(input), duration_chart(input), drill_chart(input)] {
        render_figure(&mut html, &chart);
    }
    render_drills(&mut html, input);
    render_snapshots(&mut html, input);
    render_jobs(&mut html, input);
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn render_status(html: &mut String, status: &StatusReport) {
    let verdict = if status.ok { r#"<span class="ok">all thresholds met</span>"#.to_string() } else { format!(r#"<span class="bad">{} breach(es)</span>"#, status.breaches.len()) };
    let _ = writeln!(html, "<h2>Status: {verdict}</h2>\n<div class=\"cards\">");
    if status.sources.is_empty() {
        html.push_str("<p>No source yet: take a snapshot, or list sources in d1snap.toml.</p>\n");
    }
    for source in &status.sources {
        render_card(html, status, source);
    }
    html.push_str("</div>\n");
}

fn render_card(html: &mut String, status: &StatusReport, source: &SourceStatus) {
    let breaches: Vec<&crate::status::Breach> = status.breaches.iter().filter(|b| b.source == source.name).collect();
    let class = if breaches.is_empty() { "card" } else { "card breached" };
    let _ = write!(html, "<section class=\"{class}\" data-source=\"{}\"><h3>{}</h3><dl>", escape(&source.name), escape(&source.name));

    let mut row = |term: &str, value: String| {
        let _ = write!(html, "<dt>{term}</dt><dd>{value}</dd>");
    };
    match &source.last_snapshot {
        Some(last) => {
            row("last snapshot", format!("{} ago, <code>{}</code>", format_ms(last.age_ms), short(&last.id)));
            row("size", format!("{} in {} rows, {} new ({:.1}x)", bytes(last.bytes), count(last.rows), bytes(last.new_bytes), last.dedup_ratio));
        }
        None => row("last snapshot", "none".into()),
    }
    row("snapshots", source.snapshots.to_string());

    row(
        "last verify",
        source.last_verify.as_ref().map_or_else(
            || "never".into(),
            |v| format!("{} {} ago", if v.ok { r#"<span class="ok">passed</span>"# } else { r#"<span class="bad">failed</span>"# }, format_ms(v.age_ms)),
        ),
    );
    row(
        "last drill",
        source.last_drill.as_ref().map_or_else(
            || "never".into(),
            |d| format!("{} {} ago, restore {}", drill_verdict(d.ok, d.failed), format_ms(d.age_ms), format_ms(d.restore_ms)),
        ),
    );
    row(
        "rollback",
        source.projected_rollback_ms.map_or_else(
            || "no drill to project from".into(),
            |ms| format!("{} projected, limit {}", format_ms(ms), format_ms(status.thresholds.max_projected_rollback.as_ms())),
        ),
    );
    html.push_str("</dl>");

    for breach in breaches {
        let _ = write!(html, "<p class=\"breach\">{}</p>", escape(&breach.message));
    }
    html.push_str("</section>\n");
}

fn drill_verdict(ok: bool, failed: bool) -> &'static str {
    if ok {
        r#"<span class="ok">passed</span>"#
    } else if failed {
        r#"<span class="bad">failed</span>"#
    } else {
        r#"<span class="warn">too slow</span>"#
    }
}

fn render_figure(html: &mut String, chart: &Chart) {
    let _ = write!(html, "<figure><figcaption>{}</figcaption><ul class=\"legend\">", escape(&chart.title));
    for series in &chart.series {
        let _ = write!(html, "<li><span style=\"background:{}\"></span>{}</li>", series.color, escape(&series.name));
    }
    if let Some(threshold) = &chart.threshold {
        let _ = write!(html, "<li><span style=\"background:#dc2626\"></span>{}</li>", escape(&threshold.label));
    }
    html.push_str("</ul>");
    html.push_str(&svg::render(chart));
    html.push_str("</figure>\n");
}

/// One snapshot's figures for the charts.
struct SnapshotPoint {
    id: String,
    time_ms: i64,
    bytes: u64,
    new_bytes: u64,
    duration_ms: u64,
}

/// Collects every snapshot ever taken, by source name with a color per source: from the
/// history's snapshot events, which outlive `forget`, and from the records of snapshots
/// that have no event (taken before the history existed).
fn snapshots_by_source(input: &ReportInput<'_>) -> Vec<(String, &'static str, Vec<SnapshotPoint>)> {
    let name = namer(input.status);
    let mut groups: BTreeMap<String, Vec<SnapshotPoint>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for event in input.events.iter().filter(|e| e.kind == "snapshot" && e.ok) {
        let details = &event.details;
        let (Some(id), Some(location)) = (details.get("id").and_then(|v| v.as_str()), details.get("source").and_then(|v| v.as_str())) else { continue };
        seen.insert(id.to_string());
        let number = |key: &str| details.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
        let time_ms = details.get("time_ms").and_then(|v| v.as_i64()).unwrap_or(event.time_ms);
        let point = SnapshotPoint { id: id.to_string(), time_ms, bytes: number("bytes_read"), new_bytes: number("new_bytes"), duration_ms: number("duration_ms") };
        groups.entry(name(location)).or_default().push(point);
    }
    for (id, record) in input.records {
        let id = id.to_hex();
        if seen.contains(&id) {
            continue;
        }
        let stats = &record.stats;
        let point = SnapshotPoint { id, time_ms: record.time_ms, bytes: stats.bytes_read, new_bytes: stats.new_bytes, duration_ms: stats.duration_ms };
        groups.entry(name(&record.source.location)).or_default().push(point);
    }
    groups.into_iter().enumerate().map(|(i, (name, points))| (name, PALETTE[i % PALETTE.len()], points)).collect()
}

fn size_chart(input: &ReportInput<'_>) -> Chart {
    let mut series = Vec::new();
    for (name, color, snapshots) in snapshots_by_source(input) {
        let point = |snapshot: &SnapshotPoint, value: u64, what: &str| Point {
            time_ms: snapshot.time_ms,
            value: value as f64,
            title: format!("{name}, snapshot {} at {}: {what} {}", short(&snapshot.id), format_time(snapshot.time_ms), bytes(value)),
        };
        series.push(Series { name: format!("{name}: snapshot size"), color, mark: Mark::Line, points: snapshots.iter().map(|s| point(s, s.bytes, "size")).collect() });
        series.push(Series { name: format!("{name}: new bytes stored"), color, mark: Mark::Bars, points: snapshots.iter().map(|s| point(s, s.new_bytes.max(1), "new bytes")).collect() });
    }
    Chart { id: "chart-size".into(), title: "Snapshot size and new bytes stored per snapshot".into(), unit: Unit::Bytes, series, threshold: None }
}

fn detail_ms(event: &HistoryEvent, key: &str) -> Option<u64> {
    event.details.get(key).and_then(|v| v.as_u64())
}

fn duration_chart(input: &ReportInput<'_>) -> Chart {
    let mut series = Vec::new();
    for (name, color, snapshots) in snapshots_by_source(input) {
        let points = snapshots
            .iter()
            .map(|s| Point { time_ms: s.time_ms, value: s.duration_ms.max(1) as f64, title: format!("{name}, snapshot {} at {}: {}", short(&s.id), format_time(s.time_ms), format_ms(s.duration_ms)) })
            .collect();
        series.push(Series { name: format!("{name}: snapshot"), color, mark: Mark::Line, points });
    }
    let restores = input
        .events
        .iter()
        .filter(|e| e.kind == "restore")
        .map(|e| Point { time_ms: e.time_ms, value: e.duration_ms.max(1) as f64, title: format!("restore at {}: {}", format_time(e.time_ms), format_ms(e.duration_ms)) })
        .collect();
    series.push(Series { name: "restore".into(), color: "#111827", mark: Mark::Dots, points: restores });
    let drills: Vec<&HistoryEvent> = input.events.iter().filter(|e| e.kind == "drill").collect();
    let drill_restores = drills
        .iter()
        .filter_map(|e| {
            let ms = detail_ms(e, "restore_ms")?;
            Some(Point { time_ms: e.time_ms, value: ms.max(1) as f64, title: format!("drill restore at {}: {}", format_time(e.time_ms), format_ms(ms)) })
        })
        .collect();
    series.push(Series { name: "drill restore".into(), color: "#6b7280", mark: Mark::Dots, points: drill_restores });
    let projected = drills
        .iter()
        .filter_map(|e| {
            let ms = detail_ms(e, "projected_restore_ms")?;
            Some(Point { time_ms: e.time_ms, value: ms.max(1) as f64, title: format!("projected full restore at {}: {}", format_time(e.time_ms), format_ms(ms)) })
        })
        .collect();
    series.push(Series { name: "projected rollback (from drills)".into(), color: "#f59e0b", mark: Mark::Dots, points: projected });
    let limit = input.status.thresholds.max_restore_time.as_ms();
    Chart {
        id: "chart-durations".into(),
        title: "Snapshot and restore durations".into(),
        unit: Unit::Millis,
        series,
        threshold: Some(Threshold { value: limit as f64, label: format!("{} limit (max_restore_time)", format_ms(limit)) }),
    }
}

fn drill_chart(input: &ReportInput<'_>) -> Chart {
    let mut outcomes: [(&str, &'static str, Vec<Point>); 3] = [("passed", "#16a34a", Vec::new()), ("too slow", "#f59e0b", Vec::new()), ("failed", "#dc2626", Vec::new())];
    for event in input.events.iter().filter(|e| e.kind == "drill") {
        let failed = event.details.get("failed").and_then(|v| v.as_bool()).unwrap_or(!event.ok);
        let slot = if event.ok { 0 } else if failed { 2 } else { 1 };
        let ms = detail_ms(event, "restore_ms").unwrap_or(event.duration_ms);
        let snapshot = event.snapshot.as_deref().map(short).unwrap_or("?");
        let title = format!("drill of {snapshot} at {}: {}, restore {}", format_time(event.time_ms), outcomes[slot].0, format_ms(ms));
        outcomes[slot].2.push(Point { time_ms: event.time_ms, value: ms.max(1) as f64, title });
    }
    let series = outcomes.into_iter().map(|(name, color, points)| Series { name: format!("drill {name}"), color, mark: Mark::Dots, points }).collect();
    let limit = input.status.thresholds.max_restore_time.as_ms();
    Chart {
        id: "chart-drills".into(),
        title: "Restore drills: restore time and result".into(),
        unit: Unit::Millis,
        series,
        threshold: Some(Threshold { value: limit as f64, label: format!("{} limit (max_restore_time)", format_ms(limit)) }),
    }
}

fn render_drills(html: &mut String, input: &ReportInput<'_>) {
    let drills: Vec<&HistoryEvent> = input.events.iter().rev().filter(|e| e.kind == "drill").take(RECENT_ROWS).collect();
    html.push_str("<h2>Recent drills</h2>\n");
    if drills.is_empty() {
        html.push_str("<p>No drill yet: run <code>d1snap drill</code> or schedule [jobs.drill].</p>\n");
        return;
    }
    html.push_str("<table id=\"drills\"><thead><tr><th>time (UTC)</th><th>snapshot</th><th>result</th><th>restore</th><th>verify</th><th>throughput</th><th>notes</th></tr></thead><tbody>\n");
    for event in drills {
        let failed = event.details.get("failed").and_then(|v| v.as_bool()).unwrap_or(!event.ok);
        let mut notes: Vec<String> = event.details.get("breaches").and_then(|b| b.as_array()).into_iter().flatten().filter_map(|b| b.as_str().map(str::to_string)).collect();
        for check in event.details.get("checks").and_then(|c| c.as_array()).into_iter().flatten() {
            if check.get("ok").and_then(|o| o.as_bool()) == Some(false) {
                notes.push(format!("{}: {}", check.get("name").and_then(|n| n.as_str()).unwrap_or("check"), check.get("detail").and_then(|d| d.as_str()).unwrap_or("")));
            }
        }
        let rate = event.details.get("restore_bytes_per_second").and_then(|r| r.as_f64()).unwrap_or(0.0);
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}/s</td><td>{}</td></tr>",
            format_time(event.time_ms),
            escape(event.snapshot.as_deref().map(short).unwrap_or("")),
            drill_verdict(event.ok, failed),
            format_ms(detail_ms(event, "restore_ms").unwrap_or(0)),
            format_ms(detail_ms(event, "verify_ms").unwrap_or(0)),
            bytes(rate as u64),
            escape(&notes.join("; "))
        );
    }
    html.push_str("</tbody></table>\n");
}

fn render_snapshots(html: &mut String, input: &ReportInput<'_>) {
    let name = namer(input.status);
    let _ = writeln!(html, "<h2>Recent snapshots</h2>");
    if input.records.is_empty() {
        html.push_str("<p>No snapshot yet.</p>\n");
        return;
    }
    html.push_str("<table id=\"snapshots\"><thead><tr><th>time (UTC)</th><th>id</th><th>source</th><th>labels</th><th>tables</th><th>rows</th><th>size</th><th>new</th><th>dedup</th><th>duration</th></tr></thead><tbody>\n");
    let mut records: Vec<&(SnapshotId, SnapshotRecord)> = input.records.iter().collect();
    records.sort_by_key(|(id, r)| std::cmp::Reverse((r.time_ms, *id)));
    for (id, record) in records.into_iter().take(RECENT_ROWS) {
        let stats = &record.stats;
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}x</td><td class=\"num\">{}</td></tr>",
            format_time(record.time_ms),
            short(&id.to_hex()),
            escape(&name(&record.source.location)),
            escape(&record.labels.join(", ")),
            record.tables.len(),
            count(stats.rows),
            bytes(stats.bytes_read),
            bytes(stats.new_bytes),
            stats.bytes_read as f64 / stats.new_bytes.max(1) as f64,
            format_ms(stats.duration_ms)
        );
    }
    html.push_str("</tbody></table>\n");
}

fn render_jobs(html: &mut String, input: &ReportInput<'_>) {
    let jobs: Vec<&HistoryEvent> = input.events.iter().rev().filter(|e| e.kind == history::JOB).take(RECENT_ROWS).collect();
    if jobs.is_empty() {
        return;
    }
    html.push_str("<h2>Recent scheduled jobs</h2>\n<table id=\"jobs\"><thead><tr><th>time (UTC)</th><th>job</th><th>result</th><th>duration</th><th>details</th></tr></thead><tbody>\n");
    for event in jobs {
        let items: Vec<String> = event
            .details
            .get("items")
            .and_then(|i| i.as_array())
            .into_iter()
            .flatten()
            .map(|item| {
                let source = item.get("source").and_then(|s| s.as_str()).map(|s| format!("{s}: ")).unwrap_or_default();
                format!("{source}{}", item.get("message").and_then(|m| m.as_str()).unwrap_or(""))
            })
            .collect();
        let result = if event.ok { r#"<span class="ok">ok</span>"# } else { r#"<span class="bad">failed</span>"# };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{result}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            format_time(event.time_ms),
            escape(history::job_name(event).unwrap_or("")),
            format_ms(event.duration_ms),
            escape(&items.join("\n")).replace('\n', "<br>")
        );
    }
    html.push_str("</tbody></table>\n");
}
