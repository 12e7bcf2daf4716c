//! `weft watch`: samples every machine of an env at an interval over kept SSH connections
//! (issue 15); one watcher per env, held by a lock file on the controller.

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
use crate::inventory::Selection;
use crate::transport::{ExecRequest, NoLines, Transport};
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
}

/// Samples the selection's machines until interrupted (or once), handing each round of
/// samples, in host order, and the scaling decisions they led to, to `show`.
pub fn watch(
    ctx: &Arc<RunContext>,
    selection: &Selection,
    settings: &WatchSettings,
    mut show: impl FnMut(&[MachineSample], &[Result<Decision, String>]),
) -> Result<()> {
    let machines_config: HashMap<String, MachineEntry> = ctx
        .project
        .config
        .as_ref()
        .and_then(|c| c.file.env.get(&selection.inventory.env))
        .map(|e| e.machines.clone().into_iter().collect())
        .unwrap_or_default();
    let mut policy = match (&ctx.engine, settings.policy) {
        (Some(engine), true) => Some(Policy::new(
            engine.as_ref(),
            &selection.inventory,
            machines_config,
            ctx.settings.color,
        )),
        _ => None,
    };
    let connector = ctx.connector(selection)?;
    let mut machines: Vec<(String, Vec<String>, Arc<dyn Transport>)> = Vec::new();
    for host in &selection.hosts {
        let transport = connector
            .transport(&host.address)
            .map_err(|message| miette::miette!("host {}: {message}", host.name))?;
        machines.push((host.name.clone(), host.roles.clone(), transport));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| miette::miette!("cannot start the async runtime: {err}"))?;
    interrupt::install();
    runtime.block_on(async {
        loop {
            let started = tokio::time::Instant::now();
            let handles: Vec<_> = machines
                .iter()
                .map(|(name, roles, transport)| {
                    let transport = transport.clone();
                    let (name, roles) = (name.clone(), roles.clone());
                    tokio::spawn(async move { sample_one(name, roles, transport.as_ref()).await })
                })
                .collect();
            let mut samples = Vec::with_capacity(handles.len());
            for (handle, (name, roles, _)) in handles.into_iter().zip(&machines) {
                samples.push(handle.await.unwrap_or_else(|err| {
                    MachineSample::failed(name.clone(), roles.clone(), 0, err.to_string())
                }));
            }
            let decisions = match policy.as_mut() {
                Some(policy) => policy.decide(&samples),
                None => Vec::new(),
            };
            show(&samples, &decisions);
            if settings.once {
                break;
            }
            // Sleep in short steps so Ctrl-C ends the watcher within a second.
            while started.elapsed() < settings.interval {
                if interrupt::interrupted() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if interrupt::interrupted() {
                return;
            }
        }
    });
    Ok(())
}

/// One machine's sample; a machine that does not answer yields a sample with its error.
async fn sample_one(name: String, roles: Vec<String>, transport: &dyn Transport) -> MachineSample {
    let request = ExecRequest {
        command: SAMPLE_COMMAND.to_string(),
        stdin: None,
        timeout: Some(SAMPLE_TIMEOUT),
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
