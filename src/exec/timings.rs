//! `--timings`: where a run's time went, per operation kind and per goal (count, total, p50,
//! p95, slowest host), connection setup included; collected by sessions and the runner and
//! printed once at the end of the invocation. Each duration keeps when it started, for the
//! page of `--timings-html` (`timings_page.rs`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Which table a duration belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// An operation, a command, a file transfer or the connection.
    Operation,
    /// A whole goal on one host.
    Goal,
}

/// Durations recorded by every run of one invocation.
#[derive(Debug)]
pub struct Timings {
    /// Where offsets count from: when the invocation's timings began.
    origin: Instant,
    entries: Mutex<Vec<Span>>,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            origin: Instant::now(),
            entries: Mutex::new(Vec::new()),
        }
    }
}

/// One recorded duration: what, on which host, when it started and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Which table it belongs to.
    pub section: Section,
    /// The operation kind or the goal.
    pub name: String,
    /// The host it ran on.
    pub host: String,
    /// When it started, from the start of the invocation's timings.
    pub start: Duration,
    /// How long it took.
    pub duration: Duration,
}

/// One line of the table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimingRow {
    /// `operation` or `goal`.
    pub section: &'static str,
    /// The operation kind (`run`, `upload`, `directory`, `connect`, ...) or the goal.
    pub name: String,
    /// How many times it ran.
    pub count: usize,
    /// Seconds, summed over hosts.
    pub total: f64,
    /// Median seconds.
    pub p50: f64,
    /// 95th percentile seconds.
    pub p95: f64,
    /// The host of the slowest one.
    pub slowest_host: String,
    /// Its seconds.
    pub slowest: f64,
}

impl Timings {
    /// Records that `name` took `duration` on `host`, ending now.
    pub fn record(&self, section: Section, name: &str, host: &str, duration: Duration) {
        let start = self.since_origin(Instant::now()).saturating_sub(duration);
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Span {
                section,
                name: name.to_string(),
                host: host.to_string(),
                start,
                duration,
            });
    }

    /// How long after the start of these timings `at` came (zero for an earlier instant).
    pub fn since_origin(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.origin)
    }

    /// Every duration recorded so far, in the order they ended.
    pub fn spans(&self) -> Vec<Span> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The table: operations then goals, each by total time, largest first.
    pub fn rows(&self) -> Vec<TimingRow> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut groups: BTreeMap<(Section, &str), Vec<(&str, Duration)>> = BTreeMap::new();
        for span in entries.iter() {
            groups
                .entry((span.section, span.name.as_str()))
                .or_default()
                .push((span.host.as_str(), span.duration));
        }
        let mut rows: Vec<(Section, TimingRow)> = groups
            .into_iter()
            .map(|((section, name), mut runs)| {
                runs.sort_by_key(|(_, d)| *d);
                let at = |q: f64| {
                    let i = ((runs.len() as f64 * q).ceil() as usize).clamp(1, runs.len()) - 1;
                    runs[i].1.as_secs_f64()
                };
                let (slowest_host, slowest) = runs[runs.len() - 1];
                let row = TimingRow {
                    section: match section {
                        Section::Operation => "operation",
                        Section::Goal => "goal",
                    },
                    name: name.to_string(),
                    count: runs.len(),
                    total: runs.iter().map(|(_, d)| d.as_secs_f64()).sum(),
                    p50: at(0.5),
                    p95: at(0.95),
                    slowest_host: slowest_host.to_string(),
                    slowest: slowest.as_secs_f64(),
                };
                (section, row)
            })
            .collect();
        rows.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(b.1.total.total_cmp(&a.1.total))
                .then(a.1.name.cmp(&b.1.name))
        });
        rows.into_iter().map(|(_, row)| row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_percentiles() {
        let t = Timings::default();
        for (i, host) in ["a", "b", "c", "d"].iter().enumerate() {
            t.record(
                Section::Operation,
                "run",
                host,
                Duration::from_millis(10 * (i as u64 + 1)),
            );
        }
        t.record(Section::Goal, "deploy", "a", Duration::from_millis(5));
        let rows = t.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "run");
        assert_eq!(rows[0].count, 4);
        assert!((rows[0].p50 - 0.02).abs() < 1e-9);
        assert!((rows[0].p95 - 0.04).abs() < 1e-9);
        assert_eq!(rows[0].slowest_host, "d");
        assert_eq!(rows[1].section, "goal");
    }

    #[test]
    fn a_span_starts_its_duration_before_it_was_recorded() {
        let t = Timings::default();
        std::thread::sleep(Duration::from_millis(30));
        t.record(Section::Operation, "run", "a", Duration::from_millis(20));
        let spans = t.spans();
        assert_eq!(spans.len(), 1);
        let end = spans[0].start + spans[0].duration;
        assert!(spans[0].start >= Duration::from_millis(10), "{spans:?}");
        assert!(end >= Duration::from_millis(30) && end < Duration::from_secs(5));
        if let Some(before) = t.origin.checked_sub(Duration::from_secs(1)) {
            assert_eq!(t.since_origin(before), Duration::ZERO);
        }
    }
}
