//! Charts on a time axis with a logarithmic value axis, drawn as inline SVG: lines, dots
//! and bars, an optional threshold line, and a native tooltip (`<title>`) on every point.
//! The value axis is logarithmic because one chart contains values that differ by orders of
//! magnitude, such as a 40 ms snapshot under a 30-minute limit.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::escape;

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 40.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Millis,
}

impl Unit {
    /// Tick values for the axis, ascending; the axis range snaps to them.
    fn ladder(self) -> Vec<f64> {
        match self {
            // 1 B, 32 B, 1 KiB, 32 KiB, ... 1 PiB.
            Unit::Bytes => (0..=10).map(|i| 32f64.powi(i)).collect(),
            Unit::Millis => vec![1.0, 10.0, 100.0, 1e3, 1e4, 6e4, 6e5, 1.8e6, 3.6e6, 3.6e7, 8.64e7, 8.64e8],
        }
    }

    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Bytes => crate::format::bytes(value as u64),
            Unit::Millis => crate::duration::format_ms(value as u64),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Line,
    Dots,
    Bars,
}

#[derive(Clone, Debug)]
pub struct Point {
    pub time_ms: i64,
    pub value: f64,
    /// Tooltip text.
    pub title: String,
}

#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    /// A CSS color.
    pub color: &'static str,
    pub mark: Mark,
    pub points: Vec<Point>,
}

#[derive(Clone, Debug)]
pub struct Threshold {
    pub value: f64,
    pub label: String,
}

#[derive(Clone, Debug)]
pub struct Chart {
    /// The `id` of the `<svg>` element.
    pub id: String,
    pub title: String,
    pub unit: Unit,
    pub series: Vec<Series>,
    pub threshold: Option<Threshold>,
}

/// Maps times and values to picture coordinates.
struct Frame {
    t0: f64,
    t1: f64,
    log0: f64,
    log1: f64,
}

impl Frame {
    fn x(&self, time_ms: i64) -> f64 {
        LEFT + (time_ms as f64 - self.t0) / (self.t1 - self.t0) * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        let position = (value.max(f64::MIN_POSITIVE).log10() - self.log0) / (self.log1 - self.log0);
        TOP + (1.0 - position.clamp(0.0, 1.0)) * (HEIGHT - TOP - BOTTOM)
    }
}

/// Chooses the time span and the value range, snapped to the unit's ticks.
fn frame(chart: &Chart) -> Option<(Frame, Vec<f64>)> {
    let points = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut t0, mut t1, mut low, mut high) = (i64::MAX, i64::MIN, f64::MAX, f64::MIN);
    for point in points {
        t0 = t0.min(point.time_ms);
        t1 = t1.max(point.time_ms);
        low = low.min(point.value.max(1.0));
        high = high.max(point.value.max(1.0));
    }
    if t0 > t1 {
        return None;
    }

    if let Some(threshold) = &chart.threshold {
        high = high.max(threshold.value);
        low = low.min(threshold.value);
    }
    // Less than a minute of data gets an hour of axis; otherwise 3% on each side.
    let (t0, t1) = if t1 - t0 < 60_000 {
        (t0 as f64 - 1_800_000.0, t1 as f64 + 1_800_000.0)
    } else {
        let pad = (t1 - t0) as f64 * 0.03;
        (t0 as f64 - pad, t1 as f64 + pad)
    };

    let ladder = chart.unit.ladder();
    let bottom = ladder.iter().copied().rev().find(|tick| *tick <= low).unwrap_or(ladder[0]);
    let mut top = ladder.iter().copied().find(|tick| *tick >= high).unwrap_or(high);
    if top <= bottom {
        top = ladder.iter().copied().find(|tick| *tick > bottom).unwrap_or(bottom * 10.0);
    }
    let ticks: Vec<f64> = ladder.into_iter().filter(|tick| *tick >= bottom && *tick <= top).collect();
    Some((Frame { t0, t1, log0: bottom.log10(), log1: top.log10() }, ticks))
}

/// Time ticks: the shortest step that gives at most 7 ticks, aligned to UTC.
fn time_ticks(t0: f64, t1: f64) -> (Vec<i64>, &'static str) {
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let steps = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 365 * DAY];
    let span = t1 - t0;
    let step = steps.into_iter().find(|step| span / *step as f64 <= 7.0).unwrap_or(365 * DAY);
    let first = (t0 as i64).div_euclid(step) * step + step;
    let ticks = (0..8).map(|i| first + i * step).filter(|t| (*t as f64) <= t1).collect();
    (ticks, if step < DAY { "%m-%d %H:%M" } else { "%Y-%m-%d" })
}

/// Draws a chart as an `<svg>` element.
pub fn render(chart: &Chart) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title"><title id="{id}-title">{title}</title>"#,
        id = escape(&chart.id),
        title = escape(&chart.title)
    );
    let Some((frame, ticks)) = frame(chart) else {
        let _ = write!(svg, r#"<text class="empty" x="{}" y="{}" text-anchor="middle">no data yet</text></svg>"#, WIDTH / 2.0, HEIGHT / 2.0);
        return svg;
    };
    draw_axes(&mut svg, chart, &frame, &ticks);
    let bars: Vec<&Series> = chart.series.iter().filter(|s| s.mark == Mark::Bars && !s.points.is_empty()).collect();
    let total_bars: usize = bars.iter().map(|s| s.points.len()).sum();
    let bar_width = ((WIDTH - LEFT - RIGHT) / (total_bars.max(1) as f64 * 1.6)).clamp(2.0, 14.0);
    for (index, series) in chart.series.iter().enumerate() {
        let _ = write!(svg, r#"<g class="series" data-series="{}" data-points="{}">"#, escape(&series.name), series.points.len());
        let mut points: Vec<&Point> = series.points.iter().collect();
        points.sort_by_key(|p| p.time_ms);
        match series.mark {
            Mark::Line => {
                let path: Vec<String> = points.iter().map(|p| format!("{:.1},{:.1}", frame.x(p.time_ms), frame.y(p.value))).collect();
                let _ = write!(svg, r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#, series.color, path.join(" "));
                for point in &points {
                    draw_dot(&mut svg, &frame, point, series.color, 3.0);
                }
            }
            Mark::Dots => {
                for point in &points {
                    draw_dot(&mut svg, &frame, point, series.color, 4.5);
                }
            }
            Mark::Bars => {
                let slot = bars.iter().position(|s| std::ptr::eq(*s, &chart.series[index])).unwrap_or(0) as f64;
                let offset = (slot - (bars.len() as f64 - 1.0) / 2.0) * bar_width;
                let base = frame.y(10f64.powf(frame.log0));
                for point in &points {
                    let x = frame.x(point.time_ms) + offset - bar_width / 2.0;
                    let y = frame.y(point.value);
                    let _ = write!(
                        svg,
                        r#"<rect class="point" x="{x:.1}" y="{y:.1}" width="{bar_width:.1}" height="{:.1}" fill="{}" fill-opacity="0.6"><title>{}</title></rect>"#,
                        (base - y).max(1.0),
                        series.color,
                        escape(&point.title)
                    );
                }
            }
        }
        svg.push_str("</g>");
    }
    if let Some(threshold) = &chart.threshold {
        let y = frame.y(threshold.value);
        let _ = write!(
            svg,
            r##"<g class="threshold"><line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#dc2626" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{}" y="{:.1}" text-anchor="end" fill="#dc2626">{}</text></g>"##,
            WIDTH - RIGHT,
            WIDTH - RIGHT - 4.0,
            y - 5.0,
            escape(&threshold.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn draw_dot(svg: &mut String, frame: &Frame, point: &Point, color: &str, radius: f64) {
    let _ = write!(
        svg,
        r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="{radius}" fill="{color}"><title>{}</title></circle>"#,
        frame.x(point.time_ms),
        frame.y(point.value),
        escape(&point.title)
    );
}

fn draw_axes(svg: &mut String, chart: &Chart, frame: &Frame, ticks: &[f64]) {
    svg.push_str(r#"<g class="axes">"#);
    for tick in ticks {
        let y = frame.y(*tick);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape(&chart.unit.format(*tick))
        );
    }
    let (times, format) = time_ticks(frame.t0, frame.t1);
    for time in times {
        let x = frame.x(time);
        let label = DateTime::<Utc>::from_timestamp_millis(time).map(|t| t.format(format).to_string()).unwrap_or_default();
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#f3f4f6"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 18.0,
            escape(&label)
        );
    }
    let _ = write!(svg, r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{}" stroke="#9ca3af"/>"##, HEIGHT - BOTTOM);
    let _ = write!(svg, r##"<line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#9ca3af"/>"##, WIDTH - RIGHT, HEIGHT - BOTTOM, HEIGHT - BOTTOM);
    let _ = write!(svg, r#"<text x="{LEFT}" y="{}" class="axis-note">UTC</text>"#, HEIGHT - 4.0);
    svg.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn chart(points: Vec<(i64, f64)>, mark: Mark) -> Chart {
        Chart {
            id: "test".into(),
            title: "Test <chart>".into(),
            unit: Unit::Millis,
            series: vec![Series { name: "a".into(), color: "#2563eb", mark, points: points.into_iter().map(|(t, v)| Point { time_ms: t, value: v, title: format!("{v} & more") }).collect() }],
            threshold: Some(Threshold { value: 1_800_000.0, label: "30 min limit".into() }),
        }
    }

    #[test]
    fn line_chart_draws_every_point() {
        let svg = render(&chart(vec![(0, 40.0), (HOUR, 55.0), (2 * HOUR, 120.0)], Mark::Line));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("30 min limit"));
    }

    #[test]
    fn text_is_escaped() {
        let svg = render(&chart(vec![(0, 40.0)], Mark::Dots));
        assert!(svg.contains("Test &lt;chart&gt;"));
        assert!(svg.contains("40 &amp; more"));
        assert!(!svg.contains("<chart>"));
    }

    #[test]
    fn bars_stand_on_the_axis() {
        let svg = render(&chart(vec![(0, 1000.0), (HOUR, 10.0)], Mark::Bars));
        assert_eq!(svg.matches("<rect").count(), 2);
    }

    #[test]
    fn empty_chart_says_so() {
        assert!(render(&chart(vec![], Mark::Line)).contains("no data yet"));
    }

    #[test]
    fn values_map_inside_the_plot() {
        let (frame, ticks) = frame(&chart(vec![(0, 40.0), (HOUR, 5_000.0)], Mark::Line)).unwrap();
        assert!(ticks.contains(&10.0), "{ticks:?}");
        assert!(ticks.contains(&1_800_000.0), "the threshold sets the top: {ticks:?}");
        for value in [40.0, 5_000.0, 1_800_000.0] {
            let y = frame.y(value);
            assert!((TOP..=HEIGHT - BOTTOM).contains(&y), "{value} maps to {y}");
        }
        assert!(frame.y(40.0) > frame.y(5_000.0), "larger values are higher up");
    }

    #[test]
    fn time_ticks_stay_few() {
        let (ticks, _) = time_ticks(0.0, (24 * HOUR) as f64);
        assert!((3..=7).contains(&ticks.len()), "{ticks:?}");
    }
}
