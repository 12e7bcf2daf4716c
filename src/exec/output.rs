//! Live output of a run: host-prefixed lines for people, one JSON event per line for machines.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::transport::{LineSink, Stream};

/// Where and how run events are printed.
#[derive(Debug)]
pub struct Output {
    json: bool,
    color: bool,
    width: usize,
    lock: Mutex<()>,
}

/// How one host's goal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Finished and changed nothing.
    Ok,
    /// Finished and changed something.
    Changed,
    /// The goal failed on this host.
    Failed,
}

/// The end of one host's run, for the summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostOutcome {
    /// The host's name.
    pub host: String,
    /// How it ended.
    pub status: Status,
    /// Wall time on this host.
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// How many changes the goal made (or would make under `--check`).
    pub changes: usize,
    /// The error's one-line message, when the host failed.
    pub error: Option<String>,
    /// The error with its source snippet, as printed when the host failed.
    #[serde(skip)]
    pub report: Option<String>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

const COLORS: [&str; 6] = ["36", "35", "33", "32", "34", "96"];

impl Output {
    /// An output for hosts whose names are at most `width` long.
    pub fn new(json: bool, color: bool, width: usize) -> Arc<Self> {
        Arc::new(Output {
            json,
            color: color && !json,
            width,
            lock: Mutex::new(()),
        })
    }

    /// Whether events are JSON lines.
    pub fn is_json(&self) -> bool {
        self.json
    }

    fn emit(&self, text: &str) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::io::stdout().lock();
        // A closed pipe (`weft run ... | head`) must not turn into a failed goal.
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    fn prefix(&self, host: &str) -> String {
        let padded = format!("{host:<width$}", width = self.width);
        if self.color {
            let index = host
                .bytes()
                .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b.into()));
            format!("\x1b[{}m{padded}\x1b[0m |", COLORS[index % COLORS.len()])
        } else {
            format!("{padded} |")
        }
    }

    /// One line of a command's output.
    pub fn line(&self, host: &str, stream: Stream, text: &str) {
        if self.json {
            self.emit(
                &json!({"event": "output", "host": host, "stream": stream, "line": text})
                    .to_string(),
            );
        } else {
            self.emit(&format!("{} {text}", self.prefix(host)));
        }
    }

    /// A message from the script (`log`) or from weft about a step.
    pub fn log(&self, host: &str, text: &str) {
        if self.json {
            self.emit(&json!({"event": "log", "host": host, "message": text}).to_string());
        } else {
            self.emit(&format!("{} {text}", self.prefix(host)));
        }
    }

    /// A step that changed (or under `--check` would change) the host.
    pub fn change(&self, host: &str, step: &str, check: bool) {
        let verb = if check { "would change" } else { "changed" };
        if self.json {
            self.emit(
                &json!({"event": "change", "host": host, "step": step, "check": check}).to_string(),
            );
        } else {
            self.emit(&format!("{} {verb}: {step}", self.prefix(host)));
        }
    }

    /// A goal starting on a host.
    pub fn start(&self, host: &str, goal: &str) {
        if self.json {
            self.emit(&json!({"event": "start", "host": host, "goal": goal}).to_string());
        }
    }

    /// A goal ending on a host.
    pub fn finish(&self, outcome: &HostOutcome) {
        if self.json {
            let mut event = serde_json::to_value(outcome).unwrap_or_default();
            event["event"] = "finish".into();
            self.emit(&event.to_string());
        } else if let Some(error) = &outcome.report {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{} failed:\n{error}", self.prefix(&outcome.host));
        }
    }

    /// The per-host summary after every host ended.
    pub fn summary(&self, outcomes: &[HostOutcome]) {
        let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
        let (ok, changed, failed) = (
            count(Status::Ok),
            count(Status::Changed),
            count(Status::Failed),
        );
        if self.json {
            self.emit(
                &json!({"event": "summary", "ok": ok, "changed": changed, "failed": failed, "hosts": outcomes})
                    .to_string(),
            );
            return;
        }
        let mut text = format!("\nsummary: {ok} ok, {changed} changed, {failed} failed");
        for o in outcomes {
            let status = match o.status {
                Status::Ok => "ok",
                Status::Changed => "changed",
                Status::Failed => "failed",
            };
            let detail = match (&o.error, o.changes) {
                (Some(error), _) => error.clone(),
                (None, 0) => String::new(),
                (None, 1) => "1 change".into(),
                (None, n) => format!("{n} changes"),
            };
            text.push_str(&format!(
                "\n  {:<width$}  {status:<8} {:>7.2}s  {detail}",
                o.host,
                o.duration.as_secs_f64(),
                width = self.width
            ));
        }
        self.emit(text.trim_end());
    }
}

/// The lines of one host's commands, routed to the run's output.
pub struct HostSink {
    output: Arc<Output>,
    host: String,
    quiet: bool,
}

impl HostSink {
    /// A sink printing under `host`'s prefix; `quiet` keeps the output to the script only.
    pub fn new(output: Arc<Output>, host: String, quiet: bool) -> Self {
        HostSink {
            output,
            host,
            quiet,
        }
    }
}

impl LineSink for HostSink {
    fn line(&self, stream: Stream, line: &str) {
        if !self.quiet {
            self.output.line(&self.host, stream, line);
        }
    }
}
