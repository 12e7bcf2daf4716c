//! Live output of a run: host-prefixed lines for people, one JSON event per line for machines.
//! Every line passes through the mask, so secrets (the sudo password) never reach the screen.

use std::io::Write;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::json;

use crate::transport::{LineSink, Stream};

/// Where and how run events are printed.
#[derive(Debug)]
pub struct Output {
    json: bool,
    color: bool,
    width: usize,
    secrets: RwLock<Vec<String>>,
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
    /// weft could not connect, so nothing ran there.
    Unreachable,
    /// Not started: `--max-fail` was exceeded first.
    Skipped,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Unreachable => "unreachable",
            Status::Skipped => "skipped",
        }
    }

    /// Whether the host counts against the run (exit 1, `--max-fail`).
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::Unreachable)
    }
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
    /// How many operations found the host already as wanted.
    pub unchanged: usize,
    /// The error's one-line message, when the host failed.
    pub error: Option<String>,
    /// The error with its source snippet, as printed when the host failed.
    #[serde(skip)]
    pub report: Option<String>,
}

impl HostOutcome {
    /// An outcome without changes or timing, for hosts that never ran.
    pub fn not_run(host: &str, status: Status, error: Option<String>) -> Self {
        HostOutcome {
            host: host.to_string(),
            status,
            duration: Duration::ZERO,
            changes: 0,
            unchanged: 0,
            error,
            report: None,
        }
    }
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

const COLORS: [&str; 6] = ["36", "35", "33", "32", "34", "96"];

impl Output {
    /// An output for hosts whose names are at most `width` long, hiding every one of `secrets`.
    pub fn new(json: bool, color: bool, width: usize, secrets: Vec<String>) -> Arc<Self> {
        Arc::new(Output {
            json,
            color: color && !json,
            width,
            secrets: RwLock::new(secrets.into_iter().filter(|s| !s.is_empty()).collect()),
            lock: Mutex::new(()),
        })
    }

    /// `text` with every secret replaced by `********`, also in its JSON-escaped form.
    pub fn mask(&self, text: &str) -> String {
        let mut text = text.to_string();
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        for secret in secrets.iter() {
            text = text.replace(secret.as_str(), "********");
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            if !escaped.is_empty() {
                text = text.replace(escaped, "********");
            }
        }
        text
    }

    /// Masks `value` in everything printed from now on (values marked sensitive by scripts).
    pub fn add_secret(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        if !secrets.iter().any(|s| s == value) {
            secrets.push(value.to_string());
            // Longer secrets first, so one that contains another is masked whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    fn emit(&self, text: &str) {
        let text = self.mask(text);
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

    /// An operation that found the host as wanted.
    pub fn unchanged(&self, host: &str, step: &str) {
        if self.json {
            self.emit(&json!({"event": "unchanged", "host": host, "step": step}).to_string());
        } else {
            self.emit(&format!("{} ok: {step}", self.prefix(host)));
        }
    }

    /// A unified diff of a file change (`--diff`).
    pub fn diff(&self, host: &str, path: &str, diff: &str) {
        if self.json {
            self.emit(
                &json!({"event": "diff", "host": host, "path": path, "diff": diff}).to_string(),
            );
        } else {
            let prefix = self.prefix(host);
            let text: Vec<String> = diff.lines().map(|l| format!("{prefix} {l}")).collect();
            self.emit(&text.join("\n"));
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
        } else if let Some(error) = outcome.report.as_ref().or(outcome.error.as_ref()) {
            let text = self.mask(&format!(
                "{} {}:\n{error}",
                self.prefix(&outcome.host),
                outcome.status.label()
            ));
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }

    /// Progress of a long run, on standard error for people only.
    pub fn progress(&self, done: usize, total: usize, failed: usize) {
        if !self.json {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(
                std::io::stderr().lock(),
                "… {done}/{total} hosts done, {failed} failed, {} running",
                total - done
            );
        }
    }

    /// The per-host summary after every host ended.
    pub fn summary(&self, outcomes: &[HostOutcome]) {
        let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
        let counts = [
            Status::Ok,
            Status::Changed,
            Status::Failed,
            Status::Unreachable,
            Status::Skipped,
        ]
        .map(|s| (s, count(s)));
        if self.json {
            let mut event = json!({"event": "summary", "hosts": outcomes});
            for (status, n) in counts {
                event[status.label()] = n.into();
            }
            self.emit(&event.to_string());
            return;
        }
        let totals: Vec<String> = counts
            .iter()
            .filter(|(s, n)| *n > 0 || matches!(s, Status::Ok | Status::Changed | Status::Failed))
            .map(|(s, n)| format!("{n} {}", s.label()))
            .collect();
        let mut text = format!("\nsummary: {}", totals.join(", "));
        for o in outcomes {
            let detail = match (&o.error, o.changes, o.unchanged) {
                (Some(error), _, _) => error.clone(),
                (None, 0, 0) => String::new(),
                (None, 1, 0) => "1 change".into(),
                (None, n, 0) => format!("{n} changes"),
                (None, n, u) => format!("{n} changed, {u} unchanged"),
            };
            let line = format!(
                "\n  {:<width$}  {:<11} {:>7.2}s  {detail}",
                o.host,
                o.status.label(),
                o.duration.as_secs_f64(),
                width = self.width
            );
            text.push_str(line.trim_end());
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
