//! Fans a goal out over the selected hosts, each on its own script thread, and collects outcomes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use miette::Diagnostic;
use rhai::{Array, Dynamic, Map};
use thiserror::Error;
use tokio::sync::Semaphore;

use super::output::{HostOutcome, Output, Status};
use super::session::HostSession;
use crate::config::ConnectorKind;
use crate::inventory::{HostSpec, Inventory};
use crate::script::{Goal, Host, ScriptContext, ScriptEngine};
use crate::template::Templates;
use crate::transport::{LocalTransport, Transport};

/// The name runs of host-less goals are reported under.
pub const CONTROLLER: &str = "controller";

/// Errors found before any host is touched.
#[derive(Debug, Error, Diagnostic)]
pub enum RunError {
    /// The env's connector is not available in this build.
    #[error(
        "env `{env}` uses the `{connector}` connector, which this build of weft cannot run yet"
    )]
    #[diagnostic(
        code(weft::run::connector),
        help("run the goal on an env with `connector = \"local\"`, e.g. `-e local`")
    )]
    ConnectorUnavailable { env: String, connector: String },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    #[diagnostic(code(weft::run::runtime))]
    Runtime(#[from] std::io::Error),
}

/// One `weft run`: a goal, its arguments and where it runs.
pub struct RunPlan {
    /// The goal to call.
    pub goal: Goal,
    /// Its command-line arguments.
    pub args: Vec<String>,
    /// The env.
    pub inventory: Inventory,
    /// The selected hosts (ignored by host-less goals).
    pub hosts: Vec<HostSpec>,
    /// Only report what would change.
    pub check: bool,
    /// How many hosts run at once.
    pub parallel: usize,
    /// Where events go.
    pub output: Arc<Output>,
    /// Templates for `host.template`.
    pub templates: Arc<Templates>,
    /// The project folder: local paths and the local connector's working directory.
    pub root: PathBuf,
    /// Colour in rendered errors.
    pub color: bool,
}

fn transport_for(plan: &RunPlan) -> Result<Arc<dyn Transport>, RunError> {
    match plan.inventory.connector {
        ConnectorKind::Local => Ok(Arc::new(LocalTransport::new(plan.root.clone()))),
        other => Err(RunError::ConnectorUnavailable {
            env: plan.inventory.env.clone(),
            connector: other.as_str().into(),
        }),
    }
}

fn env_map(plan: &RunPlan) -> Map {
    let mut env = Map::new();
    env.insert("name".into(), plan.inventory.env.clone().into());
    env.insert(
        "vars".into(),
        crate::script::api::to_dynamic(&serde_json::Value::Object(plan.inventory.vars.clone())),
    );
    let hosts: Array = plan.hosts.iter().map(|h| h.name.clone().into()).collect();
    env.insert("hosts".into(), hosts.into());
    let roles: Map = plan
        .inventory
        .roles
        .iter()
        .map(|(role, members)| {
            let members: Array = members.iter().map(|m| m.clone().into()).collect();
            (role.as_str().into(), Dynamic::from_array(members))
        })
        .collect();
    env.insert("roles".into(), roles.into());
    env.insert("check".into(), plan.check.into());
    env
}

/// Runs the plan and returns one outcome per host (or one for the controller).
pub fn run(engine: Arc<ScriptEngine>, plan: RunPlan) -> Result<Vec<HostOutcome>, RunError> {
    let transport = if plan.goal.takes_host {
        Some(transport_for(&plan)?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()?;
    let plan = Arc::new(plan);
    let env = env_map(&plan);
    let outcomes = runtime.block_on(async {
        let permits = Arc::new(Semaphore::new(plan.parallel.max(1)));
        let targets: Vec<Option<HostSpec>> = if plan.goal.takes_host {
            plan.hosts.iter().cloned().map(Some).collect()
        } else {
            vec![None]
        };
        let mut tasks = Vec::new();
        for target in targets {
            let (plan, engine, env, transport) =
                (plan.clone(), engine.clone(), env.clone(), transport.clone());
            let permits = permits.clone();
            let handle = tokio::runtime::Handle::current();
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.ok();
                tokio::task::spawn_blocking(move || {
                    run_one(&engine, &plan, env, target, transport, handle)
                })
                .await
            }));
        }
        let mut outcomes = Vec::new();
        for task in tasks {
            match task.await {
                Ok(Ok(outcome)) => outcomes.push(outcome),
                Ok(Err(join)) | Err(join) => outcomes.push(HostOutcome {
                    host: "?".into(),
                    status: Status::Failed,
                    duration: Default::default(),
                    changes: 0,
                    error: Some(format!("internal error: {join}")),
                    report: None,
                }),
            }
        }
        outcomes
    });
    Ok(outcomes)
}

fn run_one(
    engine: &ScriptEngine,
    plan: &RunPlan,
    env: Map,
    target: Option<HostSpec>,
    transport: Option<Arc<dyn Transport>>,
    runtime: tokio::runtime::Handle,
) -> HostOutcome {
    let started = Instant::now();
    let name = target
        .as_ref()
        .map_or(CONTROLLER.to_string(), |h| h.name.clone());
    plan.output.start(&name, &plan.goal.name);
    let session = match (target, transport) {
        (Some(spec), Some(transport)) => Some(Arc::new(HostSession::new(
            spec,
            transport,
            runtime,
            plan.output.clone(),
            plan.templates.clone(),
            plan.root.clone(),
            plan.check,
        ))),
        _ => None,
    };
    let context = ScriptContext {
        prefix: name.clone(),
        output: plan.output.clone(),
        env,
    };
    let rhai = engine.engine(Some(context));
    let result = engine.call(&rhai, &plan.goal, session.clone().map(Host), &plan.args);
    let changes = session.as_ref().map_or(0, |s| s.changes());
    let (status, error, report) = match result {
        Ok(_) if changes > 0 => (Status::Changed, None, None),
        Ok(_) => (Status::Ok, None, None),
        Err(err) => (
            Status::Failed,
            err.to_string().lines().next().map(String::from),
            Some(crate::error::render(&err, plan.color)),
        ),
    };
    let outcome = HostOutcome {
        host: name,
        status,
        duration: started.elapsed(),
        changes,
        error,
        report,
    };
    plan.output.finish(&outcome);
    outcome
}
