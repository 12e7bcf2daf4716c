//! Live output of one invocation: host-prefixed lines for people (with a progress bar on a
//! terminal), one JSON event per line for machines. Goals started by `run_goal` show as
//! phases, and one summary ends the invocation. Every line passes through the mask, so
//! secrets (the sudo password) never reach the screen. The bar is drawn only while a run is
//! in progress, and every line for people steps around it (`logging::aside`); without a
//! terminal, a progress line goes to stderr every 5 seconds instead.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::mask::Mask;
use crate::transport::{LineSink, Stream};

/// How much a person sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Failures and the summary only (`-q`).
    Quiet,
    /// Changes, the goals' own output and logs; not what was already as wanted.
    Normal,
    /// Also every operation that found the host as wanted (`-v`).
    Verbose,
}

/// How events are printed.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// One JSON event per line instead of text.
    pub json: bool,
    /// Colour host prefixes.
    pub color: bool,
    /// How much is shown.
    pub verbosity: Verbosity,
    /// Draw a live progress bar (a terminal, text output).
    pub progress_bar: bool,
    /// A `--check` run: changes are only reported, so messages say so.
    pub check: bool,
}

/// Where and how run events are printed.
#[derive(Debug)]
pub struct Output {
    json: bool,
    color: bool,
    check: bool,
    verbosity: Verbosity,
    width: AtomicUsize,
    secrets: Mask,
    lock: Mutex<()>,
    /// Draw a bar while a run is in progress (a terminal, text output).
    bar_wanted: bool,
    /// The bar, from the start of the outermost run to its end.
    bar: Mutex<Option<ProgressBar>>,
    /// When the outermost run started, for the progress lines without a terminal.
    since: Mutex<Option<Instant>>,
    /// What a refused confirmation left undone, said last (`not confirmed: nothing was ...`).
    refusal: Mutex<Option<String>>,
    /// The runs in progress, outermost first.
    runs: Mutex<Vec<RunProgress>>,
    /// Files being copied now: host and what (`uploading 48.2 MB to app-0`), for the bar.
    transfers: Mutex<Vec<(String, String)>>,
    /// The latest message of a goal, shown on the bar as its current step.
    step: Mutex<Option<String>>,
    /// Unit tests read the lines here instead of on the terminal.
    #[cfg(test)]
    recorded: Option<Mutex<Vec<String>>>,
}

/// How often a progress line is printed when no bar shows progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Where one run stands, for the progress bar.
#[derive(Debug, Default)]
struct RunProgress {
    goal: String,
    total: usize,
    started: usize,
    done: usize,
    failed: usize,
    /// A goal over many hosts at the normal verbosity: each host's changes, command output
    /// and messages are not printed (the summary counts them; `-v` prints them).
    held: bool,
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
    /// The word the summary uses.
    pub fn label(self) -> &'static str {
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
    /// When the host's run started: runs nested in one another on the same host (the
    /// controller's) count once in the summary's time, sequential ones add up.
    #[serde(skip)]
    pub started: Option<Instant>,
    /// The goal stopped because the person said no or pressed Ctrl-C: the summary and the last
    /// line say so, and no report is printed for it.
    #[serde(skip)]
    pub stopped: bool,
}

impl HostOutcome {
    /// Folds a later run on the same host into this outcome: the worse status, the sums of
    /// counts, the first error (time is merged by `merge`).
    fn absorb(&mut self, later: &HostOutcome) {
        let rank = |s: Status| match s {
            Status::Skipped => 0,
            Status::Ok => 1,
            Status::Changed => 2,
            Status::Unreachable => 3,
            Status::Failed => 4,
        };
        if rank(later.status) > rank(self.status) {
            self.status = later.status;
        }
        self.changes += later.changes;
        self.unchanged += later.unchanged;
        if self.error.is_none() {
            self.error = later.error.clone();
            self.report = later.report.clone();
            self.stopped = later.stopped;
        }
    }

    /// The outcomes of several runs, one per host in order of first appearance. A host's
    /// time is the wall time its runs covered: a controller goal's `run_goal` on the
    /// controller runs inside the goal's own time, and counts once.
    pub fn merge(runs: impl IntoIterator<Item = HostOutcome>) -> Vec<HostOutcome> {
        // Per host: the merged outcome, the spans of its runs, and time without a span.
        type Spans = Vec<(Instant, Instant)>;
        let mut merged: Vec<(HostOutcome, Spans, Duration)> = Vec::new();
        for outcome in runs {
            let (span, unspanned) = match outcome.started {
                Some(s) => (Some((s, s + outcome.duration)), Duration::ZERO),
                None => (None, outcome.duration),
            };
            match merged.iter_mut().find(|(m, _, _)| m.host == outcome.host) {
                Some((known, spans, rest)) => {
                    known.absorb(&outcome);
                    spans.extend(span);
                    *rest += unspanned;
                }
                None => merged.push((outcome, span.into_iter().collect(), unspanned)),
            }
        }
        merged
            .into_iter()
            .map(|(mut outcome, spans, unspanned)| {
                outcome.duration = covered(spans) + unspanned;
                outcome
            })
            .collect()
    }

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
            started: None,
            stopped: false,
        }
    }
}

/// How long the union of `spans` lasts.
fn covered(mut spans: Vec<(Instant, Instant)>) -> Duration {
    spans.sort();
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map_or(Duration::ZERO, |(s, e)| e - s)
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

const COLORS: [&str; 6] = ["36", "35", "33", "32", "34", "96"];

impl Output {
    /// An output in `style`, hiding every one of `secrets`.
    pub fn new(style: Style, secrets: Vec<String>) -> Arc<Self> {
        let bar_wanted = style.progress_bar && !style.json;
        let output = Arc::new(Output {
            json: style.json,
            color: style.color && !style.json,
            check: style.check,
            verbosity: style.verbosity,
            width: AtomicUsize::new(0),
            secrets: Mask::new(),
            lock: Mutex::new(()),
            bar_wanted,
            bar: Mutex::new(None),
            since: Mutex::new(None),
            refusal: Mutex::new(None),
            runs: Mutex::new(Vec::new()),
            transfers: Mutex::new(Vec::new()),
            step: Mutex::new(None),
            #[cfg(test)]
            recorded: None,
        });
        for secret in &secrets {
            output.add_secret(secret);
        }
        if !bar_wanted && !style.json && style.verbosity >= Verbosity::Normal {
            let output = Arc::downgrade(&output);
            std::thread::spawn(move || progress_lines(&output));
        }
        output
    }

    /// An output that keeps its lines, one JSON event each, for `recorded` (unit tests).
    #[cfg(test)]
    pub fn recording(check: bool) -> Arc<Self> {
        let style = Style {
            json: true,
            color: false,
            verbosity: Verbosity::Verbose,
            progress_bar: false,
            check,
        };
        let mut output = Output::new(style, Vec::new());
        // A JSON output starts no thread that would share it.
        Arc::get_mut(&mut output)
            .expect("a new output is not shared")
            .recorded = Some(Mutex::new(Vec::new()));
        output
    }

    /// The events printed so far by an output made by `recording`.
    #[cfg(test)]
    pub fn recorded(&self) -> Vec<serde_json::Value> {
        let lines = self
            .recorded
            .as_ref()
            .map(|r| r.lock().unwrap_or_else(|e| e.into_inner()).clone());
        lines
            .unwrap_or_default()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Keeps `text` when the output records (unit tests); `false` when it should be printed.
    #[cfg(test)]
    fn record(&self, text: &str) -> bool {
        let Some(recorded) = &self.recorded else {
            return false;
        };
        recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text.to_string());
        true
    }

    /// The bar, while one is drawn.
    fn bar(&self) -> Option<ProgressBar> {
        self.bar.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes room for host names of `width` characters in prefixes.
    pub fn widen(&self, width: usize) {
        self.width.fetch_max(width, Ordering::Relaxed);
    }

    fn shows(&self, level: Verbosity) -> bool {
        self.json || self.verbosity >= level
    }

    /// Whether the innermost run holds back its hosts' lines (see `RunProgress::held`).
    fn held(&self) -> bool {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .is_some_and(|run| run.held)
    }

    /// `text` with every secret replaced by `********`, also in its JSON-escaped form.
    pub fn mask(&self, text: &str) -> String {
        // A secret not read yet (a goal logged its stand-in) shows as one that is.
        crate::config::secret::hide_stand_ins(&self.secrets.apply(text), crate::mask::HIDDEN)
    }

    /// Whether `text` holds a secret anywhere, a short one inside a word too.
    pub fn holds_secret(&self, text: &str) -> bool {
        self.secrets.contains(text)
    }

    /// Masks `value` in everything printed from now on (values marked sensitive by scripts),
    /// and in the diagnostic log. The first secret shorter than `mask::SHORT` characters
    /// brings a warning on standard error: it is masked as a whole word only.
    pub fn add_secret(&self, value: &str) {
        if self.secrets.add(value) {
            crate::logging::note(&crate::mask::short_warning());
        }
        crate::logging::hide(value);
    }

    fn emit(&self, text: &str) {
        let text = self.mask(text);
        #[cfg(test)]
        if self.record(&text) {
            return;
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // The bar steps aside while the line is written, so they never share a line.
        crate::logging::aside(|| {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`weft run ... | head`) must not turn into a failed goal.
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        });
    }

    fn emit_err(&self, text: &str) {
        let text = self.mask(text);
        #[cfg(test)]
        if self.record(&text) {
            return;
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        crate::logging::aside(|| {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        });
    }

    fn prefix(&self, host: &str) -> String {
        let width = self.width.load(Ordering::Relaxed);
        let padded = format!("{host:<width$}");
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
        if !self.shows(Verbosity::Normal) || self.held() {
            return;
        }
        if self.json {
            self.emit(
                &json!({"event": "output", "host": host, "stream": stream, "line": text})
                    .to_string(),
            );
        } else {
            self.emit(&format!("{} {text}", self.prefix(host)));
        }
    }

    /// A message from the script (`log`) or from weft about a step; under `--check` it is
    /// marked, since the goal's `deployed ...` did not happen.
    pub fn log(&self, host: &str, text: &str) {
        if !self.shows(Verbosity::Normal) {
            return;
        }
        // A held line is not printed, but it is still the step on the bar.
        if self.held() {
        } else if self.json {
            let mut event = json!({"event": "log", "host": host, "message": text});
            if self.check {
                event["check"] = true.into();
            }
            self.emit(&event.to_string());
        } else if self.check {
            self.emit(&format!("{} [check] {text}", self.prefix(host)));
        } else {
            self.emit(&format!("{} {text}", self.prefix(host)));
        }
        if !self.json {
            // A goal's own messages are its steps (the build's checkout, tests, pip): the
            // latest one stays on the bar while the step runs.
            let line = text.lines().next().unwrap_or_default();
            let step: String = line.chars().take(60).collect();
            *self.step.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(self.mask(&format!("{host}: {step}")));
            self.draw();
        }
    }

    /// The word for `status` in this run: a `--check` run changes nothing, its hosts would change.
    fn label(&self, status: Status) -> &'static str {
        match status {
            Status::Changed if self.check => "would change",
            other => other.label(),
        }
    }

    /// A step that changed (or under `--check` would change) the host.
    pub fn change(&self, host: &str, step: &str, check: bool) {
        if !self.shows(Verbosity::Normal) || self.held() {
            return;
        }
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
        if !self.shows(Verbosity::Verbose) {
            return;
        }
        if self.json {
            self.emit(&json!({"event": "unchanged", "host": host, "step": step}).to_string());
        } else {
            self.emit(&format!("{} ok: {step}", self.prefix(host)));
        }
    }

    /// A unified diff of a file change (`--diff`).
    pub fn diff(&self, host: &str, path: &str, diff: &str) {
        if !self.shows(Verbosity::Normal) {
            return;
        }
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
        if let Some(run) = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_mut()
        {
            run.started += 1;
        }
        self.draw();
    }

    /// `host` is copying a file (`what`: `uploading 48.2 MB to app-0`); the bar shows it until
    /// `transfer_done`.
    pub fn transfer(&self, host: &str, what: String) {
        if !self.json {
            let mut transfers = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
            transfers.push((host.to_string(), what));
            drop(transfers);
            self.draw();
        }
    }

    /// `host` finished copying the file it was copying.
    pub fn transfer_done(&self, host: &str) {
        if !self.json {
            let mut transfers = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(at) = transfers.iter().position(|(h, _)| h == host) {
                transfers.remove(at);
            }
            drop(transfers);
            self.draw();
        }
    }

    /// A goal ending on a host.
    pub fn finish(&self, outcome: &HostOutcome) {
        if self.json {
            let mut event = serde_json::to_value(outcome).unwrap_or_default();
            event["event"] = "finish".into();
            self.emit(&event.to_string());
        } else if outcome.stopped {
            // The summary and the last line say why; a stack of calls would not.
        } else if let Some(error) = outcome.report.as_ref().or(outcome.error.as_ref()) {
            self.emit_err(&format!(
                "{} {}:\n{error}",
                self.prefix(&outcome.host),
                outcome.status.label()
            ));
        }
        self.advance(matches!(
            outcome.status,
            Status::Failed | Status::Unreachable
        ));
    }

    /// A run of `goal` over `total` hosts begins; a run inside another is a phase. A goal
    /// (`goal_run`; not `weft exec`'s command, whose output is the point) over more than
    /// `summary::MANY_HOSTS` hosts holds back each host's lines unless `-v`, and says so.
    pub fn begin(&self, goal: &str, total: usize, hosts: &str, goal_run: bool) {
        *self.step.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let held = goal_run
            && total > super::summary::MANY_HOSTS
            && !self.json
            && self.verbosity == Verbosity::Normal;
        let nested = {
            let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
            runs.push(RunProgress {
                goal: goal.to_string(),
                total,
                held,
                ..RunProgress::default()
            });
            runs.len() > 1
        };
        if !nested {
            *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            if self.bar_wanted {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} · {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                // A message first: no frame is ever drawn without the run's counts.
                bar.set_message(self.status().unwrap_or_default());
                bar.enable_steady_tick(Duration::from_millis(120));
                *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
                crate::logging::set_bar(Some(bar));
            }
        }
        if nested {
            if self.json {
                self.emit(&json!({"event": "phase", "goal": goal, "hosts": total}).to_string());
            } else if self.shows(Verbosity::Normal) {
                self.emit(&format!("▸ {goal} on {hosts}"));
            }
        }
        if held {
            self.emit(&format!(
                "{goal} on {hosts}: failures show as they happen, each host's changes and \
                 output with -v"
            ));
        }
        self.draw();
    }

    /// The innermost run ended with `outcomes` after `took`.
    pub fn end(&self, outcomes: &[HostOutcome], took: Duration) {
        let (goal, nested) = {
            let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
            let goal = runs.pop().map(|run| run.goal).unwrap_or_default();
            (goal, !runs.is_empty())
        };
        if nested {
            let counts = status_counts(outcomes);
            if self.json {
                let mut event = json!({"event": "phase_end", "goal": goal,
                    "seconds": (took.as_secs_f64() * 1000.0).round() / 1000.0});
                for (status, n) in counts {
                    event[status.label()] = n.into();
                }
                self.emit(&event.to_string());
            } else if self.shows(Verbosity::Normal) {
                let counts: Vec<String> = counts
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(s, n)| format!("{n} {}", self.label(*s)))
                    .collect();
                self.emit(&format!(
                    "▸ {goal} {:.1}s: {}",
                    took.as_secs_f64(),
                    counts.join(", ")
                ));
            }
        }
        if nested {
            self.draw();
            return;
        }
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            crate::logging::set_bar(None);
            bar.finish_and_clear();
        }
    }

    fn advance(&self, failed: bool) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(run) = runs.last_mut() {
            run.done += 1;
            run.failed += usize::from(failed);
        }
        drop(runs);
        self.draw();
    }

    /// Where the innermost run stands: its phases as a path, its hosts done of all, running
    /// and failed, and the file being copied or else the latest step; `None` between runs.
    fn status(&self) -> Option<String> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let run = runs.last()?;
        let path: Vec<&str> = runs.iter().map(|run| run.goal.as_str()).collect();
        let mut message = path.join(" ▸ ");
        // Both counts come from the one run, read under one lock, so done never passes total.
        message.push_str(&format!(
            " · {}/{} hosts",
            run.done.min(run.total),
            run.total
        ));
        let running = run.started.saturating_sub(run.done);
        if running > 0 {
            message.push_str(&format!(" · {running} running"));
        }
        if run.failed > 0 {
            message.push_str(&format!(" · {} failed", run.failed));
        }
        let transfers = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, what)) = transfers.last() {
            message.push_str(&format!(" · {what}"));
        } else if let Some(step) = &*self.step.lock().unwrap_or_else(|e| e.into_inner()) {
            message.push_str(&format!(" · {step}"));
        }
        Some(message)
    }

    /// Shows where the run stands on the bar, in one message, so no frame mixes two states.
    fn draw(&self) {
        let Some(bar) = self.bar() else {
            return;
        };
        if let Some(message) = self.status() {
            bar.set_message(message);
        }
    }

    /// A progress line on stderr (no bar draws here): where the run stands and for how long.
    fn progress_line(&self) {
        let since = *self.since.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(since), Some(status)) = (since, self.status()) else {
            return;
        };
        let line = self.mask(&format!("… {status} · {}s", since.elapsed().as_secs()));
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// Keeps what a refused confirmation left undone, for the last line of the invocation.
    pub fn refused(&self, message: &str) {
        self.refusal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| message.to_string());
    }

    /// The last line of an invocation that stopped early: what a refused confirmation left
    /// undone, or after Ctrl-C which hosts finished, stopped or never started.
    pub fn stopped(&self, outcomes: &[HostOutcome], interrupted: bool) {
        let refusal = self
            .refusal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let line = if let Some(refusal) = refusal {
            refusal
        } else if interrupted {
            interrupted_line(outcomes)
        } else {
            return;
        };
        if self.json {
            self.emit(&json!({"event": "stopped", "message": line}).to_string());
        } else {
            self.emit_err(&format!("weft: {line}"));
        }
    }

    /// The per-host summary after every host ended.
    pub fn summary(&self, outcomes: &[HostOutcome]) {
        let counts = status_counts(outcomes);
        if self.json {
            let mut event = json!({"event": "summary", "hosts": outcomes, "check": self.check});
            for (status, n) in counts {
                event[status.label()] = n.into();
            }
            self.emit(&event.to_string());
            return;
        }
        let totals: Vec<String> = counts
            .iter()
            .filter(|(s, n)| *n > 0 || matches!(s, Status::Ok | Status::Changed | Status::Failed))
            .map(|(s, n)| format!("{n} {}", self.label(*s)))
            .collect();
        let title = if self.check {
            "summary (--check: nothing was changed)"
        } else {
            "summary"
        };
        let mut text = format!("\n{title}: {}", totals.join(", "));
        if outcomes.len() > super::summary::MANY_HOSTS {
            let ended: Vec<super::summary::Ended> = outcomes
                .iter()
                .map(|o| super::summary::Ended {
                    host: &o.host,
                    status: self.label(o.status),
                    rank: counts.iter().position(|(s, _)| *s == o.status).unwrap_or(0),
                    failure: o.status.is_failure(),
                    error: o.error.as_deref(),
                    changes: o.changes,
                    duration: o.duration,
                })
                .collect();
            text.push_str(&super::summary::grouped(&ended));
            self.emit(&text);
            return;
        }
        for o in outcomes {
            let detail = match (&o.error, o.changes, o.unchanged, self.check) {
                (Some(error), _, _, _) => error.clone(),
                (None, 0, 0, _) => String::new(),
                (None, 1, 0, false) => "1 change".into(),
                (None, n, 0, false) => format!("{n} changes"),
                (None, n, u, false) => format!("{n} changed, {u} unchanged"),
                (None, n, u, true) => format!("{n} would change, {u} unchanged"),
            };
            let line = format!(
                "\n  {:<width$}  {:<12} {:>7.2}s  {detail}",
                o.host,
                self.label(o.status),
                o.duration.as_secs_f64(),
                width = self.width.load(Ordering::Relaxed)
            );
            text.push_str(line.trim_end());
        }
        self.emit(text.trim_end());
    }

    /// Prints where time went (`--timings`), after the summary: a table, or a `timings` event.
    pub fn timings(&self, rows: &[crate::exec::timings::TimingRow]) {
        if self.json {
            self.emit(&json!({"event": "timings", "rows": rows}).to_string());
            return;
        }
        let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(9);
        let mut text = format!(
            "\ntimings:\n  {:<9} {:<width$} {:>6} {:>9} {:>8} {:>8}  slowest",
            "", "", "count", "total", "p50", "p95"
        );
        for r in rows {
            let line = format!(
                "\n  {:<9} {:<width$} {:>6} {:>8.3}s {:>7.3}s {:>7.3}s  {} ({:.3}s)",
                r.section, r.name, r.count, r.total, r.p50, r.p95, r.slowest_host, r.slowest
            );
            text.push_str(&line);
        }
        self.emit(&text);
    }
}

/// Prints a progress line every `PROGRESS_EVERY` while a run of `output` is in progress, until
/// the output is gone.
fn progress_lines(output: &Weak<Output>) {
    loop {
        std::thread::sleep(PROGRESS_EVERY);
        let Some(output) = output.upgrade() else {
            return;
        };
        output.progress_line();
    }
}

/// `interrupted: 2 hosts finished, 1 stopped (app-1), 3 not started; ...` after Ctrl-C.
fn interrupted_line(outcomes: &[HostOutcome]) -> String {
    let names = |pick: &dyn Fn(&HostOutcome) -> bool| -> Vec<&str> {
        outcomes
            .iter()
            .filter(|o| pick(o))
            .map(|o| o.host.as_str())
            .collect()
    };
    let finished = names(&|o| matches!(o.status, Status::Ok | Status::Changed));
    let stopped = names(&|o| o.status.is_failure());
    let skipped = names(&|o| o.status == Status::Skipped);
    let list = |hosts: &[&str]| {
        if hosts.len() > 5 {
            format!("{}, ...", hosts[..5].join(", "))
        } else {
            hosts.join(", ")
        }
    };
    let mut parts = vec![format!("{} finished", finished.len())];
    if !stopped.is_empty() {
        parts.push(format!("{} stopped ({})", stopped.len(), list(&stopped)));
    }
    if !skipped.is_empty() {
        parts.push(format!("{} not started", skipped.len()));
    }
    format!(
        "interrupted: of {} hosts, {}; changes made before the stop stay, nothing after it ran",
        outcomes.len(),
        parts.join(", ")
    )
}

/// How many outcomes ended in each status, in the summary's order.
fn status_counts(outcomes: &[HostOutcome]) -> [(Status, usize); 5] {
    [
        Status::Ok,
        Status::Changed,
        Status::Failed,
        Status::Unreachable,
        Status::Skipped,
    ]
    .map(|s| (s, outcomes.iter().filter(|o| o.status == s).count()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(host: &str, started: Instant, seconds: u64) -> HostOutcome {
        HostOutcome {
            started: Some(started),
            duration: Duration::from_secs(seconds),
            ..HostOutcome::not_run(host, Status::Ok, None)
        }
    }

    #[test]
    fn nested_runs_on_one_host_count_once_and_phases_add_up() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // The controller's goal ran 30 s, its `run_goal`s on the controller inside it; the
        // app host ran two phases one after the other.
        let merged = HostOutcome::merge([
            ran("controller", t0 + s(2), 10),
            ran("app-0", t0 + s(12), 5),
            ran("controller", t0 + s(20), 8),
            ran("app-0", t0 + s(20), 4),
            ran("controller", t0, 30),
            HostOutcome::not_run("app-1", Status::Skipped, None),
        ]);
        let time = |host: &str| merged.iter().find(|o| o.host == host).map(|o| o.duration);
        assert_eq!(time("controller"), Some(s(30)));
        assert_eq!(time("app-0"), Some(s(9)));
        assert_eq!(time("app-1"), Some(Duration::ZERO));
    }

    #[test]
    fn the_interrupted_line_names_what_finished_stopped_and_never_started() {
        let t0 = Instant::now();
        let mut stopped = ran("app-1", t0, 1);
        stopped.status = Status::Failed;
        let line = interrupted_line(&[
            ran("app-0", t0, 1),
            stopped,
            HostOutcome::not_run("app-2", Status::Skipped, None),
        ]);
        assert_eq!(
            line,
            "interrupted: of 3 hosts, 1 finished, 1 stopped (app-1), 1 not started; \
             changes made before the stop stay, nothing after it ran"
        );
    }
}
