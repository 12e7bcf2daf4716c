//! The one interface between the runner and the script engine: find a goal, call it. The
//! script module implements it; `exec/` never names a script type.

use std::sync::Arc;

use indexmap::IndexMap;

use super::orchestrator::Orchestrator;
use super::output::Output;
use super::session::HostSession;
use crate::inventory::Vars;
use crate::template::{TemplateError, Templates};

/// A goal as the runner sees it.
#[derive(Debug, Clone)]
pub struct GoalInfo {
    /// Its name.
    pub name: String,
    /// Whether it runs once per host (else once, on the controller).
    pub takes_host: bool,
}

/// The env a goal runs in, as `env()` shows it.
#[derive(Debug, Clone)]
pub struct EnvInfo {
    /// The env's name.
    pub name: String,
    /// Project and env variables.
    pub vars: Vars,
    /// The hosts of this run.
    pub hosts: Vec<String>,
    /// Role → host names.
    pub roles: IndexMap<String, Vec<String>>,
    /// Host name → bare address (no user, no port).
    pub addresses: IndexMap<String, String>,
    /// `--check`.
    pub check: bool,
    /// `--break-lock`.
    pub break_lock: bool,
    /// `--rebuild`.
    pub rebuild: bool,
    /// `--scrub`.
    pub scrub: bool,
    /// `user@host:pid` of this weft process, as locks record it.
    pub runner: String,
    /// This weft process's run id: a pid the kernel gives again is a new run.
    pub run_id: String,
    /// The project folder: relative paths of `secret_file` start here.
    pub root: std::path::PathBuf,
}

/// One call of a goal on one host (or on the controller).
pub struct GoalCall<'a> {
    /// The goal.
    pub goal: &'a GoalInfo,
    /// Its command-line arguments.
    pub args: &'a [String],
    /// The host of a host goal.
    pub host: Option<Arc<HostSession>>,
    /// This machine, for controller goals.
    pub controller: Option<Arc<HostSession>>,
    /// The prefix of its log lines.
    pub prefix: String,
    /// Where its events go.
    pub output: Arc<Output>,
    /// Its env, one for all the hosts of a run (it names every host: a copy per host would
    /// make a run's memory grow with the square of its hosts).
    pub env: Arc<EnvInfo>,
    /// Env-level actions for controller goals.
    pub orchestrator: Option<Arc<dyn Orchestrator>>,
}

/// A goal that failed: a one-line message and the rendered diagnostic.
#[derive(Debug, Clone)]
pub struct GoalFailure {
    /// The first line of the error.
    pub message: String,
    /// The full diagnostic, rendered.
    pub report: String,
}

/// What the runner needs of compiled scripts.
pub trait GoalEngine: Send + Sync {
    /// The goal named `name`, or a diagnostic that says which goals exist.
    fn goal(&self, name: &str) -> Result<GoalInfo, miette::Report>;
    /// Checks that `args` fit the goal's parameters.
    fn check_arguments(&self, goal: &GoalInfo, args: &[String]) -> Result<(), miette::Report>;
    /// Checks that every template parses, before a goal runs.
    fn check_templates(&self, templates: &Templates) -> Result<(), TemplateError> {
        templates.check()
    }
    /// Runs one call; errors are rendered with colour when `color`.
    fn call(&self, call: GoalCall<'_>, color: bool) -> Result<(), GoalFailure>;

    /// The roles whose machines host goal `goal` runs on, when the file that defines it says
    /// so with `private fn runs_on(vars)` (called with the env's vars); `None` otherwise.
    fn runs_on(&self, goal: &GoalInfo, vars: &Vars) -> Result<Option<Vec<String>>, miette::Report>;

    /// Calls controller goal `name` with `input` as its one argument (a map) and no host,
    /// for decisions such as `<role>_scale(metrics)`; its result as JSON.
    fn decide(
        &self,
        name: &str,
        input: &serde_json::Value,
        color: bool,
    ) -> Result<serde_json::Value, GoalFailure>;
}
