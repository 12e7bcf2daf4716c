//! `weft watch`: samples every machine of an env at an interval over kept SSH connections
//! (issue 15), asks each role's policy for its count and acts on it, and raises alerts; one
//! watcher per env, held by a lock file on the controller.

pub mod act;
pub mod alert;
pub mod lock;
pub mod policy;
pub mod sample;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use miette::Result;

use super::interrupt;
use super::launch::RunContext;
use crate::config::MachineEntry;
use crate::inventory::{HostFilter, Selection};
use crate::transport::{ExecRequest, NoLines, Transport};
use act::{ActionEvent, Actor};
use alert::{Alert, Alerts, Thresholds};
use policy::{Decision, Policy};
use sample::{MachineSample, SAMPLE_COMMAND};

/// A sample taking longer than this counts as the machine not answering.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(20);

/// How the watcher runs.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// Time between the starts of two samples.
    pub interval: Duration,
    /// Sample once and stop.
    pub once: bool,
    /// Ask the roles' `<role>_scale` goals after each sample and report their decisions.
    pub policy: bool,
    /// Carry the decisions out (else they are only reported: `--dry-run`).
    pub act: bool,
}

/// What the watcher tells as it goes, in this order for each sample.
pub enum Event<'a> {
    /// Every machine's sample, in host order.
    Sample(&'a [MachineSample]),
    /// An alert condition that started or ended, and whether an `alert` goal runs for it
    /// next (the stdlib's prints it).
    Alert(&'a Alert, bool),
    /// A role's policy's decision, or why the policy failed.
    Decision(&'a Result<Decision, String>),
    /// A step of acting on a decision.
    Action(&'a ActionEvent),
}

/// A machine the watcher samples.
struct Watched {
    name: String,
    roles: Vec<String>,
    transport: Arc<dyn Transport>,
}

/// Kept connections to the selection's machines.
fn connect(ctx: &RunContext, selection: &Selection) -> Result<Vec<Watched>> {
    let connector = ctx.connector(selection)?;
    selection
        .hosts
        .iter()
        .map(|host| {
            let transport = connector
                .transport(&host.address)
                .map_err(|message| miette::miette!("host {}: {message}", host.name))?;
            Ok(Watched {
                name: host.name.clone(),
                roles: host.roles.clone(),
                transport,
            })
        })
        .collect()
}

/// One sample of each of `machines`, in their order.
async fn sample_all(machines: &[Watched]) -> Vec<MachineSample> {
    let handles: Vec<_> = machines
        .iter()
        .map(|m| {
            let transport = m.transport.clone();
            let (name, roles) = (m.name.clone(), m.roles.clone());
            tokio::spawn(async move { sample_one(name, roles, transport.as_ref()).await })
        })
        .collect();
    let mut samples = Vec::with_capacity(handles.len());
    for (handle, m) in handles.into_iter().zip(machines) {
        samples.push(handle.await.unwrap_or_else(|err| {
            MachineSample::failed(m.name.clone(), m.roles.clone(), 0, err.to_string())
        }));
    }
    samples
}

/// Watches the machines `filter` selects (first resolved as `selection`) until a stop is
/// requested (or once), telling `show` what it sees and does. After an action changed the
/// env's machines, the selection is resolved again.
pub fn watch(
    ctx: &Arc<RunContext>,
    filter: &HostFilter,
    mut selection: Selection,
    settings: &WatchSettings,
    mut show: impl FnMut(Event<'_>),
) -> Result<()> {
    let env = selection.inventory.env.clone();
    let section = ctx
        .project
        .config
        .as_ref()
        .and_then(|c| c.file.env.get(&env))
        .cloned()
        .unwrap_or_default();
    let machines_config: HashMap<String, MachineEntry> =
        section.machines.clone().into_iter().collect();
    let mut policy = match (&ctx.engine, settings.policy) {
        (Some(engine), true) => Some(Policy::new(
            engine.as_ref(),
            machines_config,
            ctx.settings.color,
        )),
        _ => None,
    };
    let mut alerts = Alerts::new(Thresholds {
        cpu: section.alert_cpu,
        mem: section.alert_mem,
        disk: section.alert_disk,
    });
    let alert_goal = ctx
        .engine
        .as_ref()
        .is_some_and(|engine| engine.goal("alert").is_ok());
    let mut actor = Actor::new(ctx.clone(), &env);
    let mut machines = connect(ctx, &selection)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| miette::miette!("cannot start the async runtime: {err}"))?;
    interrupt::install();
    // Ctrl-C lets an action (a machine half made, a drain) finish before the watcher stops.
    ctx.interrupt.defer_first();
    loop {
        let started = std::time::Instant::now();
        let samples = runtime.block_on(sample_all(&machines));
        show(Event::Sample(&samples));
        for alert in alerts.check(&samples) {
            show(Event::Alert(&alert, alert_goal));
            if alert_goal {
                run_alert(ctx, &env, &alert);
            }
        }
        let decisions = match policy.as_mut() {
            Some(policy) => policy.decide(&selection.inventory, &samples),
            None => Vec::new(),
        };
        let mut changed = false;
        for decision in &decisions {
            show(Event::Decision(decision));
            let (Ok(decision), Some(policy), true) = (decision, policy.as_mut(), settings.act)
            else {
                continue;
            };
            if ctx.interrupt.stop_requested() {
                break;
            }
            let lbs: Vec<&Watched> = machines
                .iter()
                .zip(&samples)
                .filter(|(_, s)| !s.servers.is_empty())
                .map(|(m, _)| m)
                .collect();
            let mut probe = || {
                let lbs: Vec<Watched> = lbs
                    .iter()
                    .map(|m| Watched {
                        name: m.name.clone(),
                        roles: m.roles.clone(),
                        transport: m.transport.clone(),
                    })
                    .collect();
                runtime.block_on(sample_all(&lbs))
            };
            changed |= actor.act(decision, &samples, policy, &mut probe, &mut |event| {
                show(Event::Action(event));
            });
        }
        if changed {
            selection = Selection::resolve(&ctx.project, filter)?;
            machines = connect(ctx, &selection)?;
        }
        if settings.once {
            break;
        }
        // Sleep in short steps so Ctrl-C ends the watcher within a second.
        while started.elapsed() < settings.interval {
            if ctx.interrupt.stop_requested() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if ctx.interrupt.stop_requested() {
            return Ok(());
        }
    }
    Ok(())
}

/// Runs the `alert` goal with the alert as its JSON text; a failing goal is logged and the
/// watcher goes on.
fn run_alert(ctx: &Arc<RunContext>, env: &str, alert: &Alert) {
    let text = serde_json::to_string(alert).unwrap_or_default();
    let filter = HostFilter {
        env: Some(env.to_string()),
        ..HostFilter::default()
    };
    match ctx.run_goal("alert", &[text], &filter) {
        Ok(crate::error::EXIT_OK) => {}
        Ok(_) => tracing::warn!("the alert goal failed"),
        Err(report) => tracing::warn!(%report, "the alert goal failed"),
    }
}

/// One machine's sample; a machine that does not answer yields a sample with its error.
async fn sample_one(name: String, roles: Vec<String>, transport: &dyn Transport) -> MachineSample {
    let request = ExecRequest {
        command: SAMPLE_COMMAND.to_string(),
        stdin: None,
        timeout: Some(SAMPLE_TIMEOUT),
        cancel: None,
    };
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match transport.exec(&request, &NoLines).await {
        Ok(out) if out.code == 0 => sample::parse(name, roles, at, &out.stdout),
        Ok(out) => MachineSample::failed(
            name,
            roles,
            at,
            format!("sampling exited {}: {}", out.code, out.stderr.trim()),
        ),
        Err(err) => MachineSample::failed(name, roles, at, err.to_string()),
    }
}
