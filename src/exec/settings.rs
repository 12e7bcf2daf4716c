//! How one `weft` invocation behaves: built once from the command line and passed down, so
//! every run it starts (goals started by `run_goal`, provisioning, env goals) behaves alike.

use std::sync::{Arc, Mutex};

use crate::inventory::Vars;
use crate::transport::ssh::ConnectOptions;

use super::output::Verbosity;

/// How commands gain privileges: a user every command becomes (`--become`) and the sudo
/// password, fed to `sudo -S` on standard input, never in argv.
#[derive(Debug, Clone, Default)]
pub struct Privilege {
    /// Every command of the goal runs as this user.
    pub become_user: Option<String>,
    /// The password `sudo` asks for, if any.
    pub sudo_password: Option<String>,
}

/// Hosts at once when `-p` is not given, to begin with.
pub const DEFAULT_PARALLEL: usize = 32;

/// The most hosts at once that a default fan-out grows to. A host in flight holds about 0.6 MB
/// while its upload's send buffers live (its thread's stack, russh's buffers: README,
/// Benchmarks): 96 keep a 1,000-host cold run under 100 MB (87 MB), where 128 took 108 MB
/// (before each host's job had one thread) and were 3% faster on the bench's fleet, whose
/// logins share the controller's CPU.
pub const MAX_GROWN_PARALLEL: usize = 96;

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
    /// How many hosts run at once (to begin with, when `grow`).
    pub parallel: usize,
    /// No `-p`: the fan-out grows with the round trip to the hosts (`grown_parallel`).
    pub grow: bool,
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
    /// Write where time went, host by host, as an HTML page here (`--timings-html`).
    pub timings_html: Option<std::path::PathBuf>,
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

/// The default fan-out once a round trip of `round_trip` was seen: 32 hosts per 10 ms, from
/// `DEFAULT_PARALLEL` up to `MAX_GROWN_PARALLEL`. A host's run is mostly a chain of round
/// trips, so on a distant fleet more hosts wait at once for the same work on the controller.
pub fn grown_parallel(round_trip: std::time::Duration) -> usize {
    let tens = usize::try_from(round_trip.as_micros().div_ceil(10_000)).unwrap_or(usize::MAX);
    DEFAULT_PARALLEL
        .saturating_mul(tens.max(1))
        .min(MAX_GROWN_PARALLEL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_default_fan_out_grows_with_the_round_trip_up_to_its_cap() {
        let at = |ms| grown_parallel(Duration::from_micros(ms));
        assert_eq!(at(50), 32, "loopback");
        assert_eq!(at(10_000), 32);
        assert_eq!(at(10_001), 64);
        assert_eq!(at(25_000), 96);
        assert_eq!(at(20_001), 96);
        assert_eq!(at(40_000), 96, "capped");
        assert_eq!(at(300_000), 96, "capped");
    }
}
