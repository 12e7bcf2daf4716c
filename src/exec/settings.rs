//! How one `weft` invocation behaves: built once from the command line and passed down, so
//! every run it starts (goals started by `run_goal`, provisioning, env goals) behaves alike.

use crate::inventory::Vars;
use crate::transport::ssh::ConnectOptions;

use super::output::Verbosity;
use super::runner::MaxFail;
use super::session::Privilege;

/// Limits of a fan-out.
#[derive(Debug, Clone)]
pub struct FanoutLimits {
    /// How many hosts run at once.
    pub parallel: usize,
    /// Hosts per batch; each batch finishes before the next starts.
    pub serial: Option<usize>,
    /// When to stop starting new hosts.
    pub max_fail: Option<MaxFail>,
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
    /// Print where time went at the end (`--timings`).
    pub timings: bool,
}
