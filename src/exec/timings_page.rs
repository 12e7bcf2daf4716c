//! `--timings-html FILE`: the run's timings as one self-contained HTML page, as `cargo build
//! --timings` writes: a row per host with its connection, operations and uploads as bars on a
//! time axis (inline SVG, coloured by kind, a title on each bar for hover), a legend, and the
//! table `--timings` prints. No script, font or style is fetched from anywhere; every name
//! and error on it is masked, then escaped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::output::{HostOutcome, Output, Status};
use super::timings::{Section, Span, TimingRow, Timings};

/// How one host's run ended, for its row.
#[derive(Debug, Clone)]
pub struct HostRun {
    /// The host's name.
    pub host: String,
    /// `ok`, `changed`, `failed`, `unreachable` or `skipped`.
    pub status: &'static str,
    /// Whether it counts as a failure (red name).
    pub failure: bool,
    /// Whether weft never connected: its whole time is a failed connection.
    pub unreachable: bool,
    /// The error's one line, when it failed.
    pub error: Option<String>,
    /// When its run started (on the timings' clock), if it started.
    pub start: Option<Duration>,
    /// Its wall time.
    pub duration: Duration,
}

/// What the page shows.
pub struct Page<'a> {
    /// What ran: the goal.
    pub goal: &'a str,
    /// Every recorded duration.
    pub spans: &'a [Span],
    /// The hosts in summary order.
    pub hosts: &'a [HostRun],
    /// The `--timings` table.
    pub rows: &'a [TimingRow],
    /// Hides secrets in any text before it is escaped.
    pub mask: &'a dyn Fn(&str) -> String,
}

/// Colours of the kinds most runs have; other kinds take `SPARE` in order of total time.
const KNOWN: [(&str, &str); 8] = [
    ("connect", "#4e79a7"),
    ("run", "#f28e2b"),
    ("upload", "#59a14f"),
    ("template", "#b07aa1"),
    ("file", "#edc948"),
    ("directory", "#9c755f"),
    ("download", "#76b7b2"),
    ("line", "#ff9da7"),
];
const SPARE: [&str; 10] = [
    "#86bcb6", "#d4a6c8", "#8cd17d", "#a0cbe8", "#ffbe7d", "#f1ce63", "#d37295", "#b6992d",
    "#bab0ac", "#499894",
];
/// A connection that failed (an unreachable host's whole time).
const FAILED: &str = "#e15759";
/// A goal on a host, behind its operations: the gaps are the script's own time.
const GOAL: &str = "#dfe4ea";

/// Width of the time axis, in pixels.
const CHART: f64 = 1000.0;
/// Height of one lane of bars.
const LANE: f64 = 14.0;
/// Room above and below a host's lanes.
const PAD: f64 = 3.0;
/// Height of the axis.
const AXIS: f64 = 22.0;
/// Pixels per character of a host name, at the page's font size.
const CHAR: f64 = 7.2;

/// `text`, masked, with `& < > " '` escaped, for HTML text and attribute values.
fn esc(page: &Page, text: &str) -> String {
    let masked = (page.mask)(text);
    let mut out = String::with_capacity(masked.len());
    for c in masked.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Seconds with 3 decimals.
fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// A tick step of 1, 2 or 5 times a power of ten that puts at most about 12 ticks on `span`.
fn tick_step(span: f64) -> f64 {
    let rough = (span / 12.0).max(1e-3);
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * power)
}

/// A tick's label: as many decimals as the step needs.
fn tick_label(at: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    format!("{at:.decimals$}s")
}

/// The colour of each operation kind: known kinds keep theirs, the others get the spare ones
/// by total time, largest first. Returns the kinds in legend order with their totals.
fn palette(spans: &[Span]) -> Vec<(String, &'static str, Duration)> {
    let mut totals: HashMap<&str, Duration> = HashMap::new();
    for span in spans.iter().filter(|s| s.section == Section::Operation) {
        *totals.entry(span.name.as_str()).or_default() += span.duration;
    }
    let mut kinds: Vec<(&str, Duration)> = totals.into_iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut spare = SPARE.iter().cycle();
    let mut out: Vec<(String, &'static str, Duration)> = kinds
        .into_iter()
        .map(|(kind, total)| {
            let colour = KNOWN
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, c)| *c)
                .unwrap_or_else(|| spare.next().copied().unwrap_or(SPARE[0]));
            (kind.to_string(), colour, total)
        })
        .collect();
    // `connect` first, as on every row.
    out.sort_by_key(|(kind, _, _)| kind != "connect");
    out
}

/// One host's row: its goal spans (behind) and its operations packed into lanes so that
/// overlapping ones (a controller goal's nested runs) never hide each other.
struct Row<'s> {
    host: &'s str,
    run: Option<&'s HostRun>,
    goals: Vec<&'s Span>,
    lanes: Vec<Vec<&'s Span>>,
}

fn rows<'s>(spans: &'s [Span], hosts: &'s [HostRun]) -> Vec<Row<'s>> {
    let mut order: Vec<&str> = hosts.iter().map(|h| h.host.as_str()).collect();
    for span in spans {
        if !order.contains(&span.host.as_str()) {
            order.push(&span.host);
        }
    }
    order
        .into_iter()
        .map(|host| {
            let mut ops: Vec<&Span> = spans
                .iter()
                .filter(|s| s.host == host && s.section == Section::Operation)
                .collect();
            ops.sort_by_key(|s| s.start);
            let mut lanes: Vec<Vec<&Span>> = Vec::new();
            for op in ops {
                let free = lanes.iter_mut().find(|lane| {
                    lane.last()
                        .is_none_or(|last| last.start + last.duration <= op.start)
                });
                match free {
                    Some(lane) => lane.push(op),
                    None => lanes.push(vec![op]),
                }
            }
            Row {
                host,
                run: hosts.iter().find(|h| h.host == host),
                goals: spans
                    .iter()
                    .filter(|s| s.host == host && s.section == Section::Goal)
                    .collect(),
                lanes,
            }
        })
        .collect()
}

/// The page.
pub fn render(page: &Page) -> String {
    let starts = page
        .spans
        .iter()
        .map(|s| s.start)
        .chain(page.hosts.iter().filter_map(|h| h.start));
    let zero = starts.min().unwrap_or_default();
    let end = page
        .spans
        .iter()
        .map(|s| s.start + s.duration)
        .chain(
            page.hosts
                .iter()
                .filter_map(|h| h.start.map(|s| s + h.duration)),
        )
        .max()
        .unwrap_or_default();
    let wall = end.saturating_sub(zero);
    let span = wall.as_secs_f64().max(1e-3);
    let scale = CHART / span;
    let x = |d: Duration| d.saturating_sub(zero).as_secs_f64() * scale;
    let colours = palette(page.spans);
    let colour = |kind: &str| {
        colours
            .iter()
            .find(|(k, _, _)| k == kind)
            .map_or(SPARE[0], |(_, c, _)| *c)
    };
    let rows = rows(page.spans, page.hosts);
    let longest = rows
        .iter()
        .map(|r| r.host.chars().count())
        .max()
        .unwrap_or(4);
    let label = (longest as f64 * CHAR + 16.0).clamp(80.0, 260.0);
    let fits = ((label - 16.0) / CHAR) as usize;
    let width = label + CHART + 20.0;

    let mut html = String::new();
    let goal = esc(page, page.goal);
    // The summary's order; a status no host ended in is left out.
    let counts = ["ok", "changed", "failed", "unreachable", "skipped"]
        .iter()
        .map(|s| (s, page.hosts.iter().filter(|h| h.status == *s).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>weft run {goal}: timings</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>weft run <code>{goal}</code>: timings</h1>\n\
         <p class=\"facts\">{} host{} · {} · {:.3}s from the first host's start to the last one's end</p>\n",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        esc(page, &counts),
        wall.as_secs_f64(),
    );

    // The legend: each kind with its total over every host.
    html.push_str("<div class=\"legend\">");
    for (kind, c, total) in &colours {
        let _ = write!(
            html,
            "<span><i style=\"background:{c}\"></i>{} <small>{}</small></span>",
            esc(page, kind),
            secs(*total)
        );
    }
    let _ = write!(
        html,
        "<span><i style=\"background:{GOAL}\"></i>goal (gaps: the script's own time)</span>"
    );
    if page.hosts.iter().any(|h| h.unreachable) {
        let _ = write!(
            html,
            "<span><i style=\"background:{FAILED}\"></i>failed connection</span>"
        );
    }
    html.push_str("</div>\n");

    // The axis stays on screen while the rows scroll under it.
    let step = tick_step(span);
    let ticks: Vec<f64> = (0..)
        .map(|i| i as f64 * step)
        .take_while(|t| *t <= span + step * 1e-6)
        .collect();
    let _ = write!(
        html,
        "<div class=\"chart\"><svg class=\"axis\" width=\"{width}\" height=\"{AXIS}\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for t in &ticks {
        let tx = label + t * scale;
        let _ = write!(
            html,
            "<text x=\"{tx:.1}\" y=\"14\" text-anchor=\"middle\">{}</text>\
             <line x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"17\" y2=\"{AXIS}\"/>",
            tick_label(*t, step)
        );
    }
    html.push_str("</svg>\n");

    let heights: Vec<f64> = rows
        .iter()
        .map(|r| r.lanes.len().max(1) as f64 * LANE + 2.0 * PAD)
        .collect();
    let total_height: f64 = heights.iter().sum::<f64>().max(LANE);
    let _ = write!(
        html,
        "<svg class=\"rows\" width=\"{width}\" height=\"{total_height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for t in &ticks {
        let tx = label + t * scale;
        let _ = write!(
            html,
            "<line class=\"grid\" x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"0\" y2=\"{total_height}\"/>"
        );
    }
    let mut y = 0.0;
    for (i, (row, height)) in rows.iter().zip(&heights).enumerate() {
        let host = esc(page, row.host);
        let status = row.run.map_or("", |r| r.status);
        let failure = row.run.is_some_and(|r| r.failure);
        let _ = write!(
            html,
            "<g class=\"host{}\">",
            if failure { " failed" } else { "" }
        );
        if i % 2 == 1 {
            let _ = write!(
                html,
                "<rect class=\"stripe\" x=\"0\" y=\"{y}\" width=\"{width}\" height=\"{height}\"/>"
            );
        }
        // The name, cut to the column with the whole of it (and its outcome) on hover.
        let shown: String = if row.host.chars().count() > fits {
            let cut: String = row.host.chars().take(fits.saturating_sub(1)).collect();
            format!("{cut}…")
        } else {
            row.host.to_string()
        };
        let mut about = format!("{} · {status}", row.host);
        if let Some(run) = row.run {
            let _ = write!(about, " · {}", secs(run.duration));
            if let Some(error) = &run.error {
                let _ = write!(about, "\n{error}");
            }
        }
        let _ = write!(
            html,
            "<text class=\"name\" x=\"{:.1}\" y=\"{:.1}\"><title>{}</title>{}</text>",
            label - 8.0,
            y + height / 2.0 + 4.0,
            esc(page, &about),
            esc(page, &shown)
        );
        let top = y + PAD;
        let inner = height - 2.0 * PAD;
        for goal in &row.goals {
            let _ = write!(
                html,
                "<rect class=\"goal\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{inner:.1}\" \
                 fill=\"{GOAL}\"><title>{host} · goal {} · {} from {}</title></rect>",
                label + x(goal.start),
                (goal.duration.as_secs_f64() * scale).max(1.0),
                esc(page, &goal.name),
                secs(goal.duration),
                secs(goal.start.saturating_sub(zero)),
            );
        }
        if let Some(run) = row.run.filter(|r| r.unreachable) {
            if let Some(start) = run.start {
                let _ = write!(
                    html,
                    "<rect class=\"op\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                     fill=\"{FAILED}\"><title>{host} · connect failed · {} from {}{}</title></rect>",
                    label + x(start),
                    top + 1.0,
                    (run.duration.as_secs_f64() * scale).max(1.0),
                    LANE - 2.0,
                    secs(run.duration),
                    secs(start.saturating_sub(zero)),
                    run.error
                        .as_ref()
                        .map(|e| format!("\n{}", esc(page, e)))
                        .unwrap_or_default(),
                );
            }
        }
        for (lane, ops) in row.lanes.iter().enumerate() {
            let ly = top + lane as f64 * LANE + 1.0;
            for op in ops {
                let _ = write!(
                    html,
                    "<rect class=\"op\" x=\"{:.1}\" y=\"{ly:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                     fill=\"{}\"><title>{host} · {} · {} from {}</title></rect>",
                    label + x(op.start),
                    (op.duration.as_secs_f64() * scale).max(1.0),
                    LANE - 2.0,
                    colour(&op.name),
                    esc(page, &op.name),
                    secs(op.duration),
                    secs(op.start.saturating_sub(zero)),
                );
            }
        }
        html.push_str("</g>");
        y += height;
    }
    html.push_str("</svg></div>\n");

    // The table `--timings` prints.
    html.push_str(
        "<h2>Where the time went</h2>\n<table><thead><tr><th></th><th></th><th>count</th>\
         <th>total</th><th>p50</th><th>p95</th><th>slowest</th></tr></thead><tbody>\n",
    );
    for r in page.rows {
        let swatch = if r.section == "operation" {
            format!("<i style=\"background:{}\"></i>", colour(&r.name))
        } else {
            String::new()
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{swatch}{}</td><td>{}</td><td>{:.3}s</td><td>{:.3}s</td>\
             <td>{:.3}s</td><td>{} ({:.3}s)</td></tr>",
            r.section,
            esc(page, &r.name),
            r.count,
            r.total,
            r.p50,
            r.p95,
            esc(page, &r.slowest_host),
            r.slowest
        );
    }
    html.push_str("</tbody></table>\n<p class=\"note\">Hover a bar or a host for its times; \
                   an operation's time counts the commands it ran for itself.</p>\n</body></html>\n");
    html
}

const STYLE: &str = "\
body{font:13px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:16px 20px;color:#1f2328;background:#fff}\
h1{font-size:18px;margin:0 0 4px}h2{font-size:15px;margin:22px 0 6px}\
code{font-family:ui-monospace,monospace}\
.facts{color:#57606a;margin:0 0 10px}\
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin:0 0 8px}\
.legend span{white-space:nowrap}.legend small{color:#57606a}\
i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-2px}\
.chart{overflow-x:auto}\
svg{display:block;font:12px ui-monospace,monospace}\
svg.axis{position:sticky;top:0;background:#fff;z-index:1}\
.axis text{fill:#57606a}.axis line{stroke:#8c959f}\
line.grid{stroke:#eaeef2}rect.stripe{fill:#f6f8fa}\
text.name{text-anchor:end;fill:#1f2328}.failed text.name{fill:#cf222e;font-weight:bold}\
rect.op{stroke:#fff;stroke-width:1}rect.op:hover,rect.goal:hover{stroke:#1f2328;stroke-width:1.5}\
table{border-collapse:collapse;font:12px ui-monospace,monospace}\
th,td{padding:3px 10px;text-align:right;border-bottom:1px solid #eaeef2}\
th:nth-child(-n+2),td:nth-child(-n+2),td:last-child,th:last-child{text-align:left}\
.note{color:#57606a}";

/// Writes the page of a finished invocation to `path`: the hosts of `outcomes` (the summary's),
/// the durations of `timings`, every text behind `output`'s mask. A failure is said on stderr.
pub fn write_run(
    path: &std::path::Path,
    goal: &str,
    timings: &Timings,
    outcomes: &[HostOutcome],
    output: &Output,
) -> std::io::Result<()> {
    let hosts: Vec<HostRun> = outcomes
        .iter()
        .map(|o| HostRun {
            host: o.host.clone(),
            status: o.status.label(),
            failure: o.status.is_failure(),
            unreachable: o.status == Status::Unreachable,
            error: o.error.clone(),
            start: o.started.map(|at| timings.since_origin(at)),
            duration: o.duration,
        })
        .collect();
    let spans = timings.spans();
    let rows = timings.rows();
    let page = Page {
        goal,
        spans: &spans,
        hosts: &hosts,
        rows: &rows,
        mask: &|text: &str| output.mask(text),
    };
    std::fs::write(path, render(&page)).inspect_err(|err| {
        crate::logging::note(&format!(
            "weft: cannot write the timings page {}: {err}",
            path.display()
        ));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(section: Section, name: &str, host: &str, start_ms: u64, ms: u64) -> Span {
        Span {
            section,
            name: name.into(),
            host: host.into(),
            start: Duration::from_millis(start_ms),
            duration: Duration::from_millis(ms),
        }
    }

    fn host(name: &str, status: &'static str, start_ms: Option<u64>, ms: u64) -> HostRun {
        HostRun {
            host: name.into(),
            status,
            failure: matches!(status, "failed" | "unreachable"),
            unreachable: status == "unreachable",
            error: (status == "unreachable").then(|| format!("cannot connect to {name}")),
            start: start_ms.map(Duration::from_millis),
            duration: Duration::from_millis(ms),
        }
    }

    fn page_of(spans: &[Span], hosts: &[HostRun], rows: &[TimingRow]) -> String {
        render(&Page {
            goal: "deploy<all>",
            spans,
            hosts,
            rows,
            mask: &|s: &str| s.replace("hunter2", "********"),
        })
    }

    #[test]
    fn a_row_per_host_with_its_bars_and_the_table() {
        use Section::{Goal, Operation};
        let spans = [
            span(Operation, "connect", "app-0", 100, 50),
            span(Operation, "run", "app-0", 160, 20),
            span(Operation, "upload", "app-0", 190, 300),
            span(Goal, "deploy", "app-0", 100, 400),
            span(Operation, "connect", "app-1", 120, 80),
            span(Operation, "x-custom", "app-1", 210, 10),
            span(Goal, "deploy", "app-1", 120, 120),
        ];
        let hosts = [
            host("app-0", "changed", Some(100), 400),
            host("app-1", "ok", Some(120), 120),
            host("gone", "unreachable", Some(110), 900),
        ];
        let timings = crate::exec::timings::Timings::default();
        for s in &spans {
            timings.record(s.section, &s.name, &s.host, s.duration);
        }
        let rows = timings.rows();
        let html = page_of(&spans, &hosts, &rows);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        // Self-contained: nothing is fetched.
        for outside in ["<script src", "<link", "@import", "url(", "src=\"http"] {
            assert!(!html.contains(outside), "{outside}");
        }
        // One name per host, in summary order, the unreachable one in red with its error.
        let names: Vec<&str> = html
            .split("<text class=\"name\"")
            .skip(1)
            .map(|t| {
                t.split("</title>")
                    .nth(1)
                    .unwrap()
                    .split("</text>")
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(names, ["app-0", "app-1", "gone"]);
        assert_eq!(html.matches("<g class=\"host failed\">").count(), 1);
        assert!(html.contains("gone · connect failed · 0.900s from 0.010s\ncannot connect to gone"));
        // Every operation is a bar with its kind and times on hover; goals sit behind.
        assert_eq!(html.matches("<rect class=\"op\"").count(), 6);
        assert_eq!(html.matches("<rect class=\"goal\"").count(), 2);
        assert!(html.contains("<title>app-0 · upload · 0.300s from 0.090s</title>"));
        assert!(html.contains("fill=\"#59a14f\"><title>app-0 · upload"));
        assert!(html.contains("fill=\"#4e79a7\"><title>app-1 · connect"));
        // The legend has every kind, connect first; the table every row.
        let legend = html.split("<div class=\"legend\">").nth(1).unwrap();
        let legend = legend.split("</div>").next().unwrap();
        assert!(legend.find("connect").unwrap() < legend.find("upload").unwrap());
        assert!(legend.contains("x-custom") && legend.contains("failed connection"));
        let table = html.split("<tbody>").nth(1).unwrap();
        assert_eq!(table.matches("<tr>").count(), rows.len());
        assert!(table.contains("<td>goal</td><td>deploy</td><td>2</td>"));
        // The axis spans the run: 0 at the first start, to the last end (0.91 s later).
        assert!(html.contains(">0.0s</text>") && html.contains(">0.9s</text>"));
        assert!(!html.contains(">1.0s</text>"));
        assert!(html.contains("3 hosts · 1 ok, 1 changed, 1 unreachable · 0.910s"));
    }

    #[test]
    fn names_are_escaped_and_masked_everywhere() {
        let evil = "<img src=x onerror=alert(1)>&\"'";
        let spans = [
            span(Section::Operation, evil, evil, 0, 10),
            span(Section::Operation, "run hunter2", "h", 0, 10),
        ];
        let mut gone = host("h", "unreachable", Some(0), 10);
        gone.error = Some(format!("{evil} hunter2"));
        let timings = crate::exec::timings::Timings::default();
        for s in &spans {
            timings.record(s.section, &s.name, &s.host, s.duration);
        }
        let html = page_of(&spans, &[gone], &timings.rows());
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("hunter2"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#39;"));
        assert!(html.contains("deploy&lt;all&gt;"));
        assert!(!html.contains("&\"'"));
    }

    #[test]
    fn overlapping_operations_of_one_host_take_lanes_of_their_own() {
        let spans = [
            span(Section::Operation, "run", "c", 0, 100),
            span(Section::Operation, "run", "c", 50, 10),
            span(Section::Operation, "file", "c", 100, 10),
        ];
        let rows = rows(&spans, &[]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].lanes.len(), 2);
        assert_eq!(rows[0].lanes[0].len(), 2);
    }

    #[test]
    fn ticks_are_round() {
        let near = |a: f64, b: f64| (a - b).abs() < b * 1e-9;
        assert!(near(tick_step(0.91), 0.1));
        assert!(near(tick_step(49.2), 5.0));
        // A millisecond at least.
        assert!(near(tick_step(0.004), 0.001));
        assert_eq!(tick_label(2.5, 0.5), "2.5s");
        assert_eq!(tick_label(10.0, 5.0), "10s");
    }
}
