//! Fans a job (a goal, or an ad hoc command) out over the selected hosts: each host on its own
//! blocking thread for scripts, bounded by `--parallel`, in `--serial` batches, stopping new
//! hosts once `--max-fail` is exceeded. Returns one outcome per host.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use miette::Diagnostic;
use thiserror::Error;
use tokio::sync::Semaphore;

use super::goals::{EnvInfo, GoalCall, GoalEngine, GoalFailure, GoalInfo};
use super::orchestrator::Orchestrator;
use super::output::{HostOutcome, Status};
use super::run::Run;
use super::session::{Handler, HostDeadline, HostError, HostSession, RunOptions};
use super::timings::Section;
use crate::inventory::{HostSpec, Inventory};
use crate::transport::round_trip::RoundTrip;
use crate::transport::ssh::Target;
use crate::transport::{Connector, LocalTransport};

/// The name runs of host-less goals are reported under.
pub const CONTROLLER: &str = "controller";

/// Errors found before any host is touched.
#[derive(Debug, Error, Diagnostic)]
pub enum RunError {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    #[diagnostic(code(weft::run::runtime))]
    Runtime(#[from] std::io::Error),
}

/// What runs on each host.
pub enum Job {
    /// A script goal with its command-line arguments.
    Goal {
        /// The compiled scripts.
        engine: Arc<dyn GoalEngine>,
        /// The goal.
        goal: GoalInfo,
        /// Its arguments.
        args: Vec<String>,
    },
    /// One shell command (`weft exec`).
    Command(String),
    /// Copy a local file or folder to every host (`weft copy`).
    Upload {
        /// The local path, relative to the project.
        local: String,
        /// The path on the host.
        remote: String,
    },
    /// Make the login user's authorized_keys hold exactly these keys (`weft keys sync`).
    SyncKeys(Vec<String>),
    /// Copy a file from every host into `<dest>/<host>/` (`weft copy --pull`).
    Download {
        /// The path on the host.
        remote: String,
        /// The local folder.
        dest: PathBuf,
        /// `--follow-links` and `--max-size`.
        limits: crate::transport::download::DownloadLimits,
    },
}

impl Job {
    /// The goal's name, or what the job does.
    pub fn name(&self) -> &str {
        match self {
            Job::Goal { goal, .. } => &goal.name,
            Job::Command(command) => command,
            Job::Upload { remote, .. } | Job::Download { remote, .. } => remote,
            Job::SyncKeys(_) => "keys sync",
        }
    }

    /// Whether it runs once per host (else once, on the controller).
    pub fn per_host(&self) -> bool {
        match self {
            Job::Goal { goal, .. } => goal.takes_host,
            Job::Command(_) | Job::Upload { .. } | Job::Download { .. } | Job::SyncKeys(_) => true,
        }
    }
}

/// One run: a job, where it runs and how.
pub struct RunPlan {
    /// What runs on each host.
    pub job: Job,
    /// The env.
    pub inventory: Inventory,
    /// The selected hosts (a host-less goal runs once, on the controller).
    pub hosts: Vec<HostSpec>,
    /// How hosts are reached.
    pub connector: Connector,
    /// What every host of the run shares: settings, output, templates, sums.
    pub run: Arc<Run>,
    /// Env-level actions for controller goals.
    pub orchestrator: Option<Arc<dyn Orchestrator>>,
}

fn env_info(plan: &RunPlan) -> EnvInfo {
    let inventory = &plan.inventory;
    EnvInfo {
        name: inventory.env.clone(),
        vars: inventory.vars.clone(),
        hosts: plan.hosts.iter().map(|h| h.name.clone()).collect(),
        roles: inventory.roles.clone(),
        // Bare addresses (no user or port), for configs that name other hosts: an lb's backends.
        addresses: inventory
            .hosts
            .iter()
            .map(|h| {
                let bare = Target::parse(&h.address).map_or_else(|_| h.address.clone(), |t| t.host);
                (h.name.clone(), bare)
            })
            .collect::<IndexMap<_, _>>(),
        check: plan.run.settings.check,
        break_lock: plan.run.settings.break_lock,
        rebuild: plan.run.settings.rebuild,
        scrub: plan.run.settings.scrub,
        root: plan.run.root.clone(),
        runner: runner_id(),
        run_id: run_id().to_string(),
    }
}

/// A token for this weft process, the same for every goal it runs: the time it was first
/// asked for, in nanoseconds, with the pid, in hex.
fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{nanos:x}-{:x}", std::process::id())
    })
}

/// Who runs this weft process, as locks record it: `user@host:pid`. Goals that `run_goal`
/// others share it, so a deploy recognises its own locks.
fn runner_id() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(login_name)
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}:{}", std::process::id())
}

/// The name of this process's user, from `/etc/passwd`, when the environment does not say.
fn login_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.get(2) == Some(&uid.as_str())).then(|| fields[0].to_string())
    })
}

/// Shared state of a run in progress.
struct Progress {
    failed: AtomicUsize,
    stop: AtomicBool,
}

/// Keeps glibc to two malloc arenas. It gives each busy thread an arena of its own (up to eight
/// per core), and a fan-out runs one thread per host; memory freed in one arena is not reused
/// by the others, so a 200-host run kept a fifth more than it needed.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Runs the plan and returns one outcome per host (or one for the controller), in host order.
pub fn run(plan: RunPlan) -> Result<Vec<HostOutcome>, RunError> {
    limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()?;
    let handle = runtime.handle().clone();
    let env = Arc::new(env_info(&plan));
    let plan = Arc::new(plan);
    let cleanup = plan.run.interrupt.interrupted();
    let targets: Vec<Option<HostSpec>> = if plan.job.per_host() {
        plan.hosts.iter().cloned().map(Some).collect()
    } else {
        vec![None]
    };
    let total = targets.len();
    let batch = plan.run.settings.limits.serial.unwrap_or(total).max(1);
    let progress = Arc::new(Progress {
        failed: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let outcomes = runtime.block_on(async {
        let permits = Arc::new(Semaphore::new(plan.run.settings.limits.parallel.max(1)));
        // More permits only matter when there are more hosts than the first ones.
        let start = plan.run.settings.limits.parallel;
        let grower = (plan.run.settings.limits.grow && total > start).then(|| {
            tokio::spawn(grow_fanout(
                permits.clone(),
                start,
                plan.run.round_trip.clone(),
            ))
        });
        let mut outcomes = Vec::with_capacity(total);
        for chunk in targets.chunks(batch) {
            let mut tasks = Vec::new();
            for target in chunk.iter().cloned() {
                let (plan, env, handle) = (plan.clone(), env.clone(), handle.clone());
                let progress = progress.clone();
                let name = target
                    .as_ref()
                    .map_or(CONTROLLER.to_string(), |h| h.name.clone());
                // Taken here, before the task exists, so that hosts start in host order
                // whatever the fan-out (`-p 1` is one host after the other, as listed).
                let permit = permits.clone().acquire_owned().await.ok();
                tasks.push((
                    name,
                    tokio::spawn(async move {
                        let _permit = permit;
                        let name = target.as_ref().map_or(CONTROLLER, |h| h.name.as_str());
                        if progress.stop.load(Ordering::Relaxed) {
                            let why = "not started: --max-fail was exceeded".to_string();
                            return HostOutcome::not_run(name, Status::Skipped, Some(why));
                        }
                        // A run started after Ctrl-C is cleanup (a deploy releasing its lock
                        // through `run_goal`): its hosts start; those of an interrupted one do not.
                        if !cleanup && plan.run.interrupt.interrupted() {
                            let why = "not started: interrupted".to_string();
                            return HostOutcome::not_run(name, Status::Skipped, Some(why));
                        }
                        let max_fail = plan.run.settings.limits.max_fail;
                        let name = name.to_string();
                        let job =
                            crate::goal_stack::spawn_on_goal_stack(handle.clone(), move || {
                                run_one(&plan, &handle, env, target)
                            });
                        let outcome = match job {
                            Ok(job) => job.await.unwrap_or_else(|_| {
                                let why = "internal error: the host's job panicked";
                                HostOutcome::not_run(&name, Status::Failed, Some(why.into()))
                            }),
                            Err(err) => {
                                let why = format!("cannot start a thread for the host: {err}");
                                HostOutcome::not_run(&name, Status::Failed, Some(why))
                            }
                        };
                        if outcome.status.is_failure() {
                            let failed = progress.failed.fetch_add(1, Ordering::Relaxed) + 1;
                            if max_fail.is_some_and(|m| failed > m.allowed(total)) {
                                progress.stop.store(true, Ordering::Relaxed);
                            }
                        }
                        outcome
                    }),
                ));
            }
            for (name, task) in tasks {
                outcomes.push(task.await.unwrap_or_else(|join| {
                    HostOutcome::not_run(
                        &name,
                        Status::Failed,
                        Some(format!("internal error: {join}")),
                    )
                }));
            }
        }
        if let Some(grower) = grower {
            grower.abort();
        }
        outcomes
    });
    plan.run.sums.save();
    // Every host's job has ended; what is left are tasks of connections given up on (a
    // stalled host), which must not hold the run, nor a DNS lookup still on its thread.
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(outcomes)
}

/// Without `-p`: adds permits as the shortest round trip to the hosts becomes known (the first
/// connections tell within one round trip), up to `settings::grown_parallel` of it.
async fn grow_fanout(permits: Arc<Semaphore>, start: usize, round_trips: Arc<RoundTrip>) {
    let mut granted = start;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(round_trip) = round_trips.shortest() {
            let wanted = super::settings::grown_parallel(round_trip);
            if wanted > granted {
                permits.add_permits(wanted - granted);
                tracing::debug!(target: "weft::run", "fan-out {wanted} for a round trip of {round_trip:?}");
                granted = wanted;
            }
            if granted >= super::settings::MAX_GROWN_PARALLEL {
                return;
            }
        }
    }
}

/// Why a host's job failed, kept typed until its outcome is printed.
enum HostFailure {
    /// The goal failed: its one-line message and rendered diagnostic.
    Goal(GoalFailure),
    /// A step of a built-in job (`exec`, `copy`, `keys sync`) or a handler failed.
    Step(HostError),
}

fn run_one(
    plan: &RunPlan,
    runtime: &tokio::runtime::Handle,
    env: Arc<EnvInfo>,
    target: Option<HostSpec>,
) -> HostOutcome {
    let started = Instant::now();
    let name = target
        .as_ref()
        .map_or(CONTROLLER.to_string(), |h| h.name.clone());
    plan.run.output.start(&name, plan.job.name());
    let finish =
        |status: Status, counts: (usize, usize), error: Option<String>, report: Option<String>| {
            // After a refusal or Ctrl-C, a failure is their consequence: the last line of the
            // invocation says what was and was not done, the call chain would not.
            let stopped = status.is_failure()
                && (plan.run.interrupt.interrupted() || plan.run.settings.confirm.refused());
            let outcome = HostOutcome {
                host: name.clone(),
                status,
                duration: started.elapsed(),
                changes: counts.0,
                unchanged: counts.1,
                error,
                report: if stopped { None } else { report },
                started: Some(started),
                stopped,
            };
            plan.run.output.finish(&outcome);
            outcome
        };
    let session = match target {
        Some(spec) => {
            // The host's time starts with its connection.
            let deadline = HostDeadline::from_now(plan.run.settings.limits.host_timeout);
            let transport = match plan.connector.transport(&spec.address) {
                Ok(transport) => transport,
                Err(err) => return finish(Status::Unreachable, (0, 0), Some(err), None),
            };
            let connecting = Instant::now();
            let cleanup = plan.run.interrupt.interrupted();
            let cancel = plan.run.interrupt.cancel(cleanup);
            if let Err(err) = connect(runtime, transport.as_ref(), deadline, cancel) {
                return finish(Status::Unreachable, (0, 0), Some(err), None);
            }
            if let Some(timings) = &plan.run.timings {
                timings.record(Section::Operation, "connect", &name, connecting.elapsed());
            }
            Some(Arc::new(
                HostSession::new(plan.run.clone(), runtime.clone(), spec, transport)
                    .with_deadline(deadline),
            ))
        }
        // A controller goal works on this machine, in the project folder.
        None => Some(Arc::new(HostSession::new(
            plan.run.clone(),
            runtime.clone(),
            HostSpec {
                name: CONTROLLER.into(),
                address: "localhost".into(),
                roles: Vec::new(),
                vars: plan.inventory.vars.clone(),
            },
            Arc::new(LocalTransport::new(plan.run.root.clone())),
        ))),
    };
    let result = match &plan.job {
        Job::Goal { engine, goal, args } => {
            let (host, controller) = match (&session, goal.takes_host) {
                (Some(s), true) => (Some(s.clone()), None),
                (Some(s), false) => (None, Some(s.clone())),
                (None, _) => (None, None),
            };
            let call = GoalCall {
                goal,
                args,
                host,
                controller,
                prefix: name.clone(),
                output: plan.run.output.clone(),
                env,
                orchestrator: plan.orchestrator.clone(),
            };
            engine
                .call(call, plan.run.settings.color)
                .map_err(HostFailure::Goal)
        }
        job => match &session {
            Some(session) => match job {
                Job::Command(command) => session.run(command, &RunOptions::default()).map(|_| ()),
                Job::Upload { local, remote } => {
                    super::ops::files::upload(session, local, remote).map(|_| ())
                }
                Job::Download {
                    remote,
                    dest,
                    limits,
                } => session.download(remote, dest, *limits).map(|_| ()),
                Job::SyncKeys(keys) => {
                    let user = Target::parse(&session.spec.address)
                        .ok()
                        .and_then(|t| t.user)
                        .unwrap_or_else(|| "root".into());
                    crate::exec::ops::system::authorized_keys(session, &user, keys, false, true)
                        .map(|_| ())
                }
                Job::Goal { .. } => Ok(()),
            }
            .map_err(HostFailure::Step),
            None => Ok(()),
        },
    };
    // Reloads and restarts asked for by changes run once, after a goal that succeeded; those
    // asked for with `always` also after a goal Ctrl-C or the host's deadline ended.
    let result = match (result, &session) {
        (Ok(()), Some(session)) => run_handlers(session, false).map_err(HostFailure::Step),
        (Err(failure), Some(session)) if session.interrupted() || session.expired().is_some() => {
            if let Err(e) = run_handlers(session, true) {
                session.log(&format!("an `always` handler failed too: {e}"));
            }
            Err(failure)
        }
        (other, _) => other,
    };
    // A goal that caught the error of a step its host's deadline ended still fails.
    let expired = session.as_ref().and_then(|s| s.expired());
    if let Some(timings) = &plan.run.timings {
        timings.record(Section::Goal, plan.job.name(), &name, started.elapsed());
    }
    let counts = session
        .as_ref()
        .map_or((0, 0), |s| (s.changes(), s.unchanged()));
    if let Some(session) = &session {
        session.close();
    }
    // The step the deadline ended is the cause; a later step's "passed before" is not news.
    if expired.is_some() {
        return finish(Status::Failed, counts, expired, None);
    }
    match result {
        Ok(()) if counts.0 > 0 => finish(Status::Changed, counts, None, None),
        Ok(()) => finish(Status::Ok, counts, None, None),
        Err(HostFailure::Goal(failure)) => finish(
            Status::Failed,
            counts,
            Some(failure.message),
            Some(failure.report),
        ),
        Err(HostFailure::Step(err)) => finish(Status::Failed, counts, Some(err.to_string()), None),
    }
}

/// Opens the connection to a host, until its deadline or `cancel` (Ctrl-C, or a while after it
/// for a host of a cleanup run); the error as the host's outcome.
fn connect(
    runtime: &tokio::runtime::Handle,
    transport: &dyn crate::transport::Transport,
    deadline: Option<HostDeadline>,
    cancel: crate::transport::Cancel,
) -> Result<(), String> {
    runtime.block_on(async {
        let out_of_time = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancel.wait() => Err(HostError::Interrupted("during the connection".into()).to_string()),
            () = out_of_time => Err(HostError::HostTimeout {
                limit: deadline.map(|d| d.limit).unwrap_or_default(),
                step: "during the connection".into(),
            }
            .to_string()),
            result = transport.connect() => result.map_err(|e| e.to_string()),
        }
    })
}

/// Runs the handlers the goal asked for (only those with `always` when `only_always`); an
/// `always` one runs through Ctrl-C and the host's deadline, as `always` steps do. Once one
/// fails (Ctrl-C or the deadline ending a reload, say), the `always` ones left still run, and
/// the first error is the result.
fn run_handlers(session: &HostSession, only_always: bool) -> Result<(), HostError> {
    let mut first_error = None;
    for handler in session.take_handlers() {
        if (only_always || first_error.is_some()) && !handler.always {
            continue;
        }
        let ran = run_handler(session, &handler);
        if let Err(e) = ran {
            if first_error.is_some() {
                session.log(&format!("an `always` handler failed too: {e}"));
            } else {
                first_error = Some(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn run_handler(session: &HostSession, handler: &Handler) -> Result<(), HostError> {
    let manager = handler
        .manager
        .as_deref()
        .map(crate::exec::ops::services::ServiceManager::parse)
        .transpose()
        .map_err(|e| crate::exec::ops::fail("handler", e))?;
    let driver = crate::exec::ops::services::DriverSpec {
        manager,
        config: handler.config.clone(),
        commands: handler.commands.clone(),
    };
    session.always(handler.always, || {
        crate::exec::ops::services::act_now(session, &handler.service, &handler.action, &driver)
    })?;
    Ok(())
}
