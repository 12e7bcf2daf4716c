//! Ctrl-C during a run, through the run's own `Interrupt` handle (no signal is sent to the
//! test process): no new commands on any host, commands in flight ended, `always` cleanup
//! within its grace and cap, the run reported as interrupted (exit 130), a second Ctrl-C
//! quitting, and `weft watch`'s deferred first stop.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::exec::goals::{GoalCall, GoalEngine, GoalFailure, GoalInfo};
use crate::exec::interrupt::{Interrupt, Signalled, CLEANUP_CAP, CLEANUP_GRACE, EXIT_INTERRUPTED};
use crate::exec::output::{HostOutcome, Output, Status};
use crate::exec::runner::Job;
use crate::exec::session::{Handler, HostError, HostSession, RunOptions};
use crate::exec::settings::FanoutLimits;
use crate::exec::test_host::{limits, run_job_with};
use crate::inventory::Vars;
use crate::transport::fake::FakeTransport;

type Steps = dyn Fn(&HostSession) -> Result<(), HostError> + Send + Sync;

/// A goal written in Rust, standing in for a script's: the runner drives it as any goal.
struct RustGoal(Arc<Steps>);

impl GoalEngine for RustGoal {
    fn goal(&self, name: &str) -> Result<GoalInfo, miette::Report> {
        Ok(GoalInfo {
            name: name.into(),
            takes_host: true,
        })
    }

    fn check_arguments(&self, _goal: &GoalInfo, _args: &[String]) -> Result<(), miette::Report> {
        Ok(())
    }

    fn call(&self, call: GoalCall<'_>, _color: bool) -> Result<(), GoalFailure> {
        let host = call.host.expect("a host goal gets its host");
        (self.0)(&host).map_err(|err| GoalFailure {
            message: err.to_string(),
            report: err.to_string(),
        })
    }

    fn runs_on(
        &self,
        _goal: &GoalInfo,
        _vars: &Vars,
    ) -> Result<Option<Vec<String>>, miette::Report> {
        Ok(None)
    }

    fn decide(
        &self,
        name: &str,
        _input: &serde_json::Value,
        _color: bool,
    ) -> Result<serde_json::Value, GoalFailure> {
        Err(GoalFailure {
            message: format!("no decision goal `{name}`"),
            report: String::new(),
        })
    }
}

fn goal(steps: impl Fn(&HostSession) -> Result<(), HostError> + Send + Sync + 'static) -> Job {
    Job::Goal {
        engine: Arc::new(RustGoal(Arc::new(steps))),
        goal: GoalInfo {
            name: "deploy".into(),
            takes_host: true,
        },
        args: Vec::new(),
    }
}

fn plain() -> RunOptions {
    RunOptions::default()
}

/// A step marked `always`, as `host.run(cmd, #{always: true})`.
fn always() -> RunOptions {
    RunOptions {
        always: true,
        ..RunOptions::default()
    }
}

/// A deploy that runs a long step then a migration, and releases its lock whatever happened,
/// as `try { ... } catch` with an `always` step does in a script.
fn deploy(host: &HostSession) -> Result<(), HostError> {
    let slow = host.run("deploy --slow", &plain());
    // A goal that goes on after a failed step (a script's `try`) still starts no command.
    let migrate = host.run("migrate", &plain());
    host.run("release-lock", &always())?;
    slow.and(migrate).map(|_| ())
}

/// Fan-out limits of `-p parallel`, with a command timeout that ends a test whose interrupt
/// did not end its commands (it then fails rather than hangs).
fn bounded(parallel: usize) -> FanoutLimits {
    FanoutLimits {
        command_timeout: Some(Duration::from_secs(20)),
        ..limits(parallel, None, None)
    }
}

/// Runs `job` over `hosts` on a thread of its own, with `interrupt` as its Ctrl-C.
fn start(
    job: Job,
    hosts: &[Arc<FakeTransport>],
    limits: FanoutLimits,
    interrupt: &Arc<Interrupt>,
) -> std::thread::JoinHandle<(Vec<HostOutcome>, Arc<Output>)> {
    let hosts = hosts.to_vec();
    let interrupt = interrupt.clone();
    std::thread::spawn(move || {
        let refs: Vec<Option<&Arc<FakeTransport>>> = hosts.iter().map(Some).collect();
        run_job_with(
            job,
            &refs,
            limits,
            false,
            Path::new("/nonexistent"),
            interrupt,
        )
    })
}

fn statuses(outcomes: &[HostOutcome]) -> Vec<Status> {
    outcomes.iter().map(|o| o.status).collect()
}

#[test]
fn an_interrupt_ends_the_commands_in_flight_starts_nothing_new_and_lets_cleanup_run() {
    let fakes: Vec<Arc<FakeTransport>> = (0..3)
        .map(|_| Arc::new(FakeTransport::new().hang("deploy --slow")))
        .collect();
    let interrupt = Interrupt::new();
    // Two at a time: the third host waits for a free slot when the interrupt comes.
    let run = start(goal(deploy), &fakes, bounded(2), &interrupt);
    assert!(fakes[0].wait_held(1) && fakes[1].wait_held(1));
    let interrupted = Instant::now();
    assert_eq!(interrupt.signal(), Signalled::Interrupted);
    let (outcomes, output) = run.join().expect("the run's thread");
    // The commands in flight ended at the interrupt, not at their 20 s timeout, and the
    // cleanup step was not held back.
    assert!(
        interrupted.elapsed() < CLEANUP_GRACE,
        "the run took {:?} after the interrupt",
        interrupted.elapsed()
    );
    assert_eq!(
        statuses(&outcomes),
        [Status::Failed, Status::Failed, Status::Skipped]
    );
    for (outcome, fake) in outcomes.iter().zip(&fakes).take(2) {
        // The migration never started; the lock was released.
        assert_eq!(fake.commands(), ["deploy --slow", "release-lock"]);
        let error = outcome.error.as_deref().unwrap_or_default();
        assert!(error == "interrupted during `deploy --slow`", "{error}");
        assert!(
            outcome.stopped,
            "a failure caused by the interrupt is marked stopped"
        );
    }
    assert_eq!(fakes[2].commands(), Vec::<String>::new());
    assert_eq!(
        outcomes[2].error.as_deref(),
        Some("not started: interrupted")
    );
    // The invocation ends with exit 130 and a line saying what was and was not done.
    let code = crate::exec::launch::conclude(&output, &interrupt, &outcomes, || true);
    assert_eq!(code, EXIT_INTERRUPTED);
    let stopped: Vec<String> = output
        .recorded()
        .iter()
        .filter(|e| e["event"] == "stopped")
        .filter_map(|e| e["message"].as_str().map(String::from))
        .collect();
    assert_eq!(
        stopped,
        [
            "interrupted: of 3 hosts, 0 finished, 2 stopped (app-0, app-1), 1 not started; \
          changes made before the stop stay, nothing after it ran"
        ]
    );
}

#[test]
fn cleanup_steps_each_get_a_grace_and_all_end_within_the_cap() {
    let fake = Arc::new(FakeTransport::new().hang("deploy --slow").hang("cleanup"));
    let ends = Arc::new(Mutex::new(Vec::new()));
    let recorded = ends.clone();
    // Three cleanup steps on a host that stalls: each would run for ever.
    let job = goal(move |host| {
        let result = host.run("deploy --slow", &plain());
        for step in ["cleanup-1", "cleanup-2", "cleanup-3"] {
            let ended = host.run(step, &always());
            recorded
                .lock()
                .unwrap()
                .push((step, Instant::now(), ended.is_err()));
        }
        result.map(|_| ())
    });
    let interrupt = Interrupt::new();
    let run = start(job, std::slice::from_ref(&fake), bounded(1), &interrupt);
    assert!(fake.wait_held(1));
    let interrupted = Instant::now();
    interrupt.signal();
    let (outcomes, _) = run.join().expect("the run's thread");
    assert_eq!(statuses(&outcomes), [Status::Failed]);
    assert_eq!(
        fake.commands(),
        ["deploy --slow", "cleanup-1", "cleanup-2", "cleanup-3"]
    );
    let ends = ends.lock().unwrap().clone();
    let after = |i: usize| ends[i].1.duration_since(interrupted);
    // Each step ran for its grace (none was cut at the interrupt) ...
    assert!(ends.iter().all(|(_, _, failed)| *failed));
    let slack = Duration::from_millis(900);
    assert!(
        after(0) >= CLEANUP_GRACE && after(0) < CLEANUP_GRACE + slack,
        "the first cleanup step ended {:?} after the interrupt",
        after(0)
    );
    assert!(
        after(1) >= CLEANUP_GRACE * 2 && after(1) < CLEANUP_GRACE * 2 + slack,
        "the second cleanup step ended {:?} after the interrupt",
        after(1)
    );
    // ... but all of them ended within the cap, the third cut short of its grace.
    assert!(
        after(2) >= CLEANUP_CAP && after(2) < CLEANUP_CAP + slack,
        "the last cleanup step ended {:?} after the interrupt",
        after(2)
    );
}

#[test]
fn a_second_interrupt_quits_at_once() {
    let interrupt = Interrupt::new();
    assert!(!interrupt.interrupted());
    assert_eq!(interrupt.signal(), Signalled::Interrupted);
    assert!(interrupt.interrupted() && interrupt.stop_requested());
    // The signal handler exits with 130 on this answer.
    assert_eq!(interrupt.signal(), Signalled::Quit);
}

#[test]
fn an_interrupt_is_its_own_runs_only() {
    let other = Interrupt::new();
    assert_eq!(other.signal(), Signalled::Interrupted);
    let fake = Arc::new(FakeTransport::new());
    let (outcomes, _) = start(
        goal(deploy),
        std::slice::from_ref(&fake),
        bounded(1),
        &Interrupt::new(),
    )
    .join()
    .expect("the run's thread");
    assert_eq!(statuses(&outcomes), [Status::Ok]);
    assert_eq!(
        fake.commands(),
        ["deploy --slow", "migrate", "release-lock"]
    );
}

#[test]
fn signals_reach_the_handles_held_and_no_other() {
    let held = Interrupt::watched();
    assert!(!crate::exec::interrupt::any_interrupted());
    held.signal();
    assert!(crate::exec::interrupt::any_interrupted());
    drop(held);
    assert!(!crate::exec::interrupt::any_interrupted());
}

#[test]
fn under_defer_first_the_first_signal_only_asks_to_stop_and_the_run_goes_on() {
    // `weft watch`: a machine half made must be finished before the watcher stops.
    let release = Arc::new(Semaphore::new(0));
    let fake = Arc::new(FakeTransport::new().hold("scale-up --slow", release.clone()));
    let job = goal(|host| {
        host.run("scale-up --slow", &plain())?;
        host.run("register", &plain()).map(|_| ())
    });
    let interrupt = Interrupt::new();
    interrupt.defer_first();
    let run = start(job, std::slice::from_ref(&fake), bounded(1), &interrupt);
    assert!(fake.wait_held(1));
    assert_eq!(interrupt.signal(), Signalled::StopRequested);
    assert!(interrupt.stop_requested());
    assert!(!interrupt.interrupted());
    release.add_permits(1);
    let (outcomes, _) = run.join().expect("the run's thread");
    assert_eq!(statuses(&outcomes), [Status::Ok]);
    assert_eq!(fake.commands(), ["scale-up --slow", "register"]);
    // The second one interrupts as usual, the third quits.
    assert_eq!(interrupt.signal(), Signalled::Interrupted);
    assert_eq!(interrupt.signal(), Signalled::Quit);
}

/// A handler asking `action` of `service` under systemd, as `host.notify` does.
fn handler(service: &str, action: &str, always: bool) -> Handler {
    Handler {
        service: service.into(),
        action: action.into(),
        manager: Some("systemd".into()),
        config: None,
        commands: None,
        always,
    }
}

#[test]
fn an_interrupted_handler_still_lets_the_always_handlers_after_it_run() {
    let fake = Arc::new(FakeTransport::new().hang("systemctl reload -- nginx"));
    let job = goal(|host| {
        host.notify(handler("nginx", "reload", false));
        host.notify(handler("app", "restart", true));
        host.notify(handler("worker", "restart", false));
        host.notify(handler("haproxy", "reload", true));
        Ok(())
    });
    let interrupt = Interrupt::new();
    let run = start(job, std::slice::from_ref(&fake), bounded(1), &interrupt);
    assert!(fake.wait_held(1));
    assert_eq!(interrupt.signal(), Signalled::Interrupted);
    let (outcomes, _) = run.join().expect("the run's thread");
    // The reload Ctrl-C ended is the error; the `always` handlers after it ran, the other
    // did not.
    assert_eq!(statuses(&outcomes), [Status::Failed]);
    let error = outcomes[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("interrupted"), "{error}");
    assert_eq!(
        fake.commands(),
        [
            "systemctl reload -- nginx",
            "systemctl restart -- app",
            "systemctl reload -- haproxy",
        ]
    );
}

#[test]
fn a_failed_always_handler_after_an_interrupt_lets_the_next_one_run() {
    let fake = Arc::new(FakeTransport::new().hang("deploy --slow").on(
        "systemctl restart -- app",
        1,
        "",
    ));
    let job = goal(|host| {
        host.notify(handler("app", "restart", true));
        host.notify(handler("nginx", "reload", false));
        host.notify(handler("haproxy", "reload", true));
        host.run("deploy --slow", &plain()).map(|_| ())
    });
    let interrupt = Interrupt::new();
    let run = start(job, std::slice::from_ref(&fake), bounded(1), &interrupt);
    assert!(fake.wait_held(1));
    assert_eq!(interrupt.signal(), Signalled::Interrupted);
    let (outcomes, _) = run.join().expect("the run's thread");
    assert_eq!(statuses(&outcomes), [Status::Failed]);
    let error = outcomes[0].error.as_deref().unwrap_or_default();
    assert_eq!(error, "interrupted during `deploy --slow`");
    assert_eq!(
        fake.commands(),
        [
            "deploy --slow",
            "systemctl restart -- app",
            "systemctl reload -- haproxy",
        ]
    );
}
