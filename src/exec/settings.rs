//! How one `weft` invocation behaves: built once from the command line and passed down, so
//! every run it starts (goals started by `run_goal`, provisioning, env goals) behaves alike.

use std::sync::{Arc, Mutex};

use crate::inventory::Vars;
use crate::transport::ssh::ConnectOptions;

use super::output::Verbosity;
use super::session::Privilege;

/// When to stop starting new hosts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxFail {
    /// After more than this many failed hosts.
    Count(usize),
    /// After more than this share of the hosts failed.
    Percent(f64),
}

impl MaxFail {
    /// Parses `N` or `P%`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a count (`3`) or a percentage (`25%`)");
        match text.strip_suffix('%') {
            Some(p) => p
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .map(MaxFail::Percent)
                .ok_or_else(bad),
            None => text.parse().map(MaxFail::Count).map_err(|_| bad()),
        }
    }

    /// How many failed hosts of `total` are still allowed.
    pub fn allowed(self, total: usize) -> usize {
        match self {
            MaxFail::Count(n) => n,
            MaxFail::Percent(p) => (p / 100.0 * total as f64).floor() as usize,
        }
    }
}

/// Limits of a fan-out.
#[derive(Debug, Clone)]
pub struct FanoutLimits {
    /// How many hosts run at once.
    pub parallel: usize,
    /// Hosts per batch; each batch finishes before the next starts.
    pub serial: Option<usize>,
    /// When to stop starting new hosts.
    pub max_fail: Option<MaxFail>,
    /// How long one command may run; `None`: as long as it takes.
    pub command_timeout: Option<std::time::Duration>,
    /// How long the whole job may take on one host, its connection included; `None`: no limit.
    pub host_timeout: Option<std::time::Duration>,
}

/// Everything about a run that is not its job or its hosts.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// How hosts are reached over SSH.
    pub connect: ConnectOptions,
    /// Parallelism, batches and failure limits.
    pub limits: FanoutLimits,
    /// `--become` and the sudo password, asked once per invocation.
    pub privilege: Privilege,
    /// Only report what would change (`--check`).
    pub check: bool,
    /// Show a diff of every change (`--diff`).
    pub diff: bool,
    /// One JSON event per line instead of text (`--json`).
    pub json: bool,
    /// Colour in output and rendered errors.
    pub color: bool,
    /// How much people see (`-q`, `-v`).
    pub verbosity: Verbosity,
    /// Variables put over every layer (`--set`).
    pub vars: Vars,
    /// Deploy locks held by other runs may be taken (`--break-lock`).
    pub break_lock: bool,
    /// Builds are made again even when one of the same content exists (`--rebuild`).
    pub rebuild: bool,
    /// `restore` scrubs even a backup of its own env (`--scrub`).
    pub scrub: bool,
    /// Print where time went at the end (`--timings`).
    pub timings: bool,
    /// How destructive env actions (terminating machines) are confirmed.
    pub confirm: Confirm,
}

/// What the person running weft said to a confirmation prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Go on (or `--yes`).
    Yes,
    /// Do not.
    No,
    /// There is no terminal to ask on, and no `--yes`.
    NoTerminal,
}

/// A prompt: the question and the items it is about; the command layer asks on the terminal.
pub type Prompt = dyn Fn(&str, &[String]) -> Answer + Send + Sync;

/// Confirmation of destructive env actions, asked at most once per invocation: every nested
/// run shares the answer, and a refusal makes weft exit 2.
#[derive(Clone)]
pub struct Confirm {
    prompt: Arc<Prompt>,
    answer: Arc<Mutex<Option<Answer>>>,
}

impl std::fmt::Debug for Confirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirm")
            .field("answer", &self.answer())
            .finish_non_exhaustive()
    }
}

impl Confirm {
    /// Confirms by asking `prompt`.
    pub fn new(prompt: Arc<Prompt>) -> Self {
        Confirm {
            prompt,
            answer: Arc::new(Mutex::new(None)),
        }
    }

    /// Confirms everything without asking (`--yes`).
    pub fn yes() -> Self {
        Self::new(Arc::new(|_, _| Answer::Yes))
    }

    /// The answer for `question` about `items`: asked the first time only, since one yes
    /// covers the whole invocation.
    pub fn ask(&self, question: &str, items: &[String]) -> Answer {
        let mut answer = self.answer.lock().unwrap_or_else(|e| e.into_inner());
        *answer.get_or_insert_with(|| (self.prompt)(question, items))
    }

    /// The answer given so far, if any.
    pub fn answer(&self) -> Option<Answer> {
        *self.answer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a prompt was refused (weft then exits 2).
    pub fn refused(&self) -> bool {
        matches!(self.answer(), Some(Answer::No | Answer::NoTerminal))
    }
}
