//! Starting runs: one `RunContext` per invocation (project, templates, compiled goals and the
//! run settings), from which `weft run`, `exec`, `copy`, provisioning and every goal started by
//! `run_goal` start alike: connector, output, runner, summary, exit code.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use miette::Result;

use super::goals::GoalEngine;
use super::interrupt::{Interrupt, EXIT_INTERRUPTED};
use super::orchestrator::Orchestrator;
use super::output::{HostOutcome, Output};
use super::run::Run;
use super::runner::{self, Job, RunPlan, CONTROLLER};
use super::settings::RunSettings;
use super::timings::Timings;
use crate::config::secret::Secrets;
use crate::config::ConnectorKind;
use crate::error::{EXIT_FAILED, EXIT_OK};
use crate::inventory::{HostFilter, Selection};
use crate::project::Project;
use crate::template::Templates;
use crate::transport::round_trip::RoundTrip;
use crate::transport::ssh::ConnectError;
use crate::transport::Connector;

/// What every run of one `weft` invocation shares.
pub struct RunContext {
    /// The project.
    pub project: Arc<Project>,
    /// Templates of the project's layers.
    pub templates: Arc<Templates>,
    /// The compiled goals, for commands that run goals.
    pub engine: Option<Arc<dyn GoalEngine>>,
    /// How runs behave.
    pub settings: Arc<RunSettings>,
    /// Where every run of the invocation reports.
    pub output: Arc<Output>,
    /// Outcomes of runs started inside another (phases), for the one summary at the end.
    phases: Mutex<Vec<HostOutcome>>,
    /// How many runs are in progress: more than one means a phase.
    depth: AtomicUsize,
    /// The secrets of `weft.toml` resolved so far (`{ env = .. }`, `{ file = .. }`, ...).
    pub secrets: Secrets,
    /// Where time went, under `--timings`.
    pub timings: Option<Arc<Timings>>,
    /// Makes the env actions of a run's controller goals.
    env_actions: EnvActions,
    /// The shortest round trip the invocation's connections have seen.
    round_trip: Arc<RoundTrip>,
    /// Ctrl-C and SIGTERM, for every run of the invocation: a run started after one (a
    /// deploy releasing its lock through `run_goal`) is cleanup.
    pub interrupt: Arc<Interrupt>,
}

/// Makes the actions a run's controller goals may take on env `env` (`run_goal`,
/// `create_machines`, ...), as nested runs of the same `RunContext`: `exec::orchestrate`'s,
/// handed in by the command layer so that this file need not import the one that imports it.
pub type EnvActions = fn(run: Arc<RunContext>, env: &str) -> Arc<dyn Orchestrator>;

impl RunContext {
    /// The context of one invocation.
    pub fn new(
        project: Arc<Project>,
        templates: Arc<Templates>,
        engine: Option<Arc<dyn GoalEngine>>,
        settings: Arc<RunSettings>,
        output: Arc<Output>,
        env_actions: EnvActions,
    ) -> Self {
        let timings = (settings.timings || settings.timings_html.is_some())
            .then(|| Arc::new(Timings::default()));
        RunContext {
            timings,
            project,
            templates,
            engine,
            settings,
            output,
            secrets: Secrets::default(),
            phases: Mutex::new(Vec::new()),
            depth: AtomicUsize::new(0),
            env_actions,
            round_trip: Arc::default(),
            interrupt: Interrupt::watched(),
        }
    }

    /// The connector for the selection; SSH settings load identities once, before any host.
    pub fn connector(&self, selection: &Selection) -> Result<Connector, ConnectError> {
        if selection.inventory.connector == ConnectorKind::Local {
            return Ok(Connector::Local(self.project.root.clone()));
        }
        let addresses: Vec<(&str, &str)> = selection
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.address.as_str()))
            .collect();
        let connector = Connector::ssh(
            &self.settings.connect,
            &addresses,
            self.settings.limits.parallel,
            self.round_trip.clone(),
        )?;
        // A check trusts a new host key as a run would, but writes it nowhere.
        if let (true, Connector::Ssh(ssh)) = (self.settings.check, &connector) {
            ssh.known_hosts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keep_in_memory();
        }
        Ok(connector)
    }

    /// Runs goal `name` with `args` on the hosts `filter` selects (once on the controller for
    /// a goal without a host), with `--set` vars over every layer; the exit code.
    pub fn run_goal(
        self: &Arc<Self>,
        name: &str,
        args: &[String],
        filter: &HostFilter,
    ) -> Result<i32> {
        let engine = self
            .engine
            .clone()
            .ok_or_else(|| miette::miette!("internal error: goals run without compiled scripts"))?;
        let goal = engine.goal(name)?;
        engine.check_arguments(&goal, args)?;
        let selection = if goal.takes_host {
            let mut selection = Selection::resolve(&self.project, filter)?;
            // Hosts named with -H are the user's choice; an env or its roles are narrowed to
            // the machines the goal's service runs on (`postgres_*` on the db machines only).
            if filter.hosts.is_empty() {
                if let Some(roles) = engine.runs_on(&goal, &selection.inventory.vars)? {
                    selection
                        .hosts
                        .retain(|h| h.roles.iter().any(|r| roles.contains(r)));
                    if selection.hosts.is_empty() {
                        let env = &selection.inventory.env;
                        let roles = if roles.is_empty() {
                            "no role: no app of the env uses its service".to_string()
                        } else {
                            format!("role `{}`", roles.join("`, `"))
                        };
                        return Err(miette::miette!(
                            code = "weft::run::no_host",
                            help = "add machines of that role to the env, or name a host with -H",
                            "`{name}` runs on the machines of {roles}, and env `{env}` selects none of them"
                        ));
                    }
                }
            }
            selection
        } else {
            Selection::for_controller(&self.project, filter)?
        };
        let job = Job::Goal {
            engine,
            goal,
            args: args.to_vec(),
        };
        self.execute(selection, job, true)
    }

    /// Replaces the secret references in the selection's vars by their values, before any
    /// host is touched; returns the values, for the output to mask. One that cannot be
    /// resolved becomes a placeholder that fails only the step that uses it, so goals that
    /// never read the app's secrets (`env_down`, `env_status`) run without them.
    fn resolve_secrets(&self, selection: &mut Selection) -> Vec<String> {
        let config = self.project.config.as_ref();
        let root = &self.project.root;
        let env = selection.inventory.env.clone();
        let mut found = Vec::new();
        let layers = selection
            .hosts
            .iter_mut()
            .map(|h| &mut h.vars)
            .chain([&mut selection.inventory.vars]);
        for vars in layers {
            for value in vars.values_mut() {
                found.extend(self.secrets.resolve_when_used_in(value, root, &env, config));
            }
        }
        found
    }

    /// Runs `job` over the selection; exit 1 when any host failed. The outermost run prints
    /// the summary of the whole invocation; a run inside it (a goal started by `run_goal`,
    /// provisioning) shows as a phase. With `env_actions`, controller goals may act on the
    /// selection's env (`run_goal`, `create_machines`, ...).
    pub fn execute(
        self: &Arc<Self>,
        mut selection: Selection,
        job: Job,
        env_actions: bool,
    ) -> Result<i32> {
        selection.set_vars(&self.settings.vars);
        // A template that does not parse is bad input, like a script that does not: it stops
        // a goal before any host is touched, whichever template the goal would render.
        if let Job::Goal { engine, .. } = &job {
            engine.check_templates(&self.templates)?;
        }
        let resolved = self.resolve_secrets(&mut selection);
        let connector = self.connector(&selection)?;
        let output = self.output.clone();
        let names: Vec<&str> = selection.hosts.iter().map(|h| h.name.as_str()).collect();
        output.widen(names.iter().map(|n| n.len()).max().unwrap_or(0));
        let (total, hosts) = if job.per_host() {
            let hosts = match names.as_slice() {
                [one] => one.to_string(),
                _ => format!("{} hosts", names.len()),
            };
            (names.len(), hosts)
        } else {
            output.widen(CONTROLLER.len());
            (1, CONTROLLER.to_string())
        };
        // Resolved secrets of weft.toml are masked everywhere from now on.
        for secret in &resolved {
            output.add_secret(secret);
        }
        let orchestrator =
            env_actions.then(|| (self.env_actions)(self.clone(), &selection.inventory.env));
        let goal = job.name().to_string();
        let run = Arc::new(Run {
            settings: self.settings.clone(),
            output: output.clone(),
            templates: self.templates.clone(),
            root: self.project.root.clone(),
            timings: self.timings.clone(),
            hashes: Default::default(),
            sums: Run::cached_sums(self.settings.check),
            round_trip: self.round_trip.clone(),
            interrupt: self.interrupt.clone(),
        });
        let plan = RunPlan {
            job,
            inventory: selection.inventory,
            hosts: selection.hosts,
            connector,
            run,
            orchestrator,
        };
        super::interrupt::install();
        let nested = self.depth.fetch_add(1, Ordering::SeqCst) > 0;
        let started = Instant::now();
        output.begin(&goal, total, &hosts, matches!(plan.job, Job::Goal { .. }));
        let outcomes = runner::run(plan);
        self.depth.fetch_sub(1, Ordering::SeqCst);
        let outcomes = outcomes?;
        output.end(&outcomes, started.elapsed());
        let failed = |outcomes: &[HostOutcome]| outcomes.iter().any(|o| o.status.is_failure());
        if nested {
            let code = if failed(&outcomes) {
                EXIT_FAILED
            } else {
                EXIT_OK
            };
            self.phases
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(outcomes);
            return Ok(code);
        }
        let phases = std::mem::take(&mut *self.phases.lock().unwrap_or_else(|e| e.into_inner()));
        let all = HostOutcome::merge(phases.into_iter().chain(outcomes));
        output.summary(&all);
        if let Some(timings) = self.timings.as_ref().filter(|_| self.settings.timings) {
            output.timings(&timings.rows());
        }
        // The page is the run's report, written also after a failure or Ctrl-C.
        let write_page = || match (&self.timings, &self.settings.timings_html) {
            (Some(timings), Some(path)) => {
                super::timings_page::write_run(path, &goal, timings, &all, &output).is_ok()
            }
            _ => true,
        };
        Ok(conclude(&output, &self.interrupt, &all, write_page))
    }
}

/// Ends the invocation's report with the line saying what a Ctrl-C (or a refusal) left done
/// and undone, then writes the `--timings-html` page (`write_page`, false when it could not);
/// the exit code: `EXIT_INTERRUPTED` after a Ctrl-C, else 1 when a host failed or the page
/// could not be written.
pub(crate) fn conclude(
    output: &Output,
    interrupt: &Interrupt,
    all: &[HostOutcome],
    write_page: impl FnOnce() -> bool,
) -> i32 {
    output.stopped(all, interrupt.interrupted());
    let unwritten = !write_page();
    if interrupt.interrupted() {
        EXIT_INTERRUPTED
    } else if unwritten || all.iter().any(|o| o.status.is_failure()) {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}
