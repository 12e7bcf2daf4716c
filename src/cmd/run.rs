//! `weft run`: validate everything, then run the goal on the selected hosts.

use std::io::IsTerminal;
use std::sync::Arc;

use miette::Result;

use super::Context;
use crate::cli::RunArgs;
use crate::error::{EXIT_FAILED, EXIT_OK};
use crate::exec::output::{Output, Status};
use crate::exec::runner::{self, RunPlan, CONTROLLER};
use crate::inventory::Inventory;
use crate::script::{engine, ScriptEngine};
use crate::template::Templates;

/// Runs a goal; exit 1 when it failed on any host.
pub fn run(ctx: &Context, args: RunArgs) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    let engine = engine::load(&layers, &project)?;
    let goal = engine.scripts().goal(&args.goal)?.clone();
    ScriptEngine::check_arguments(&goal, &args.args)?;
    let env = Inventory::env_name(&project, args.select.env.as_deref());
    let inventory = Inventory::resolve(&project, &env)?;
    let hosts = inventory.select(&args.select.roles, &args.select.hosts)?;
    let width = hosts
        .iter()
        .map(|h| h.name.len())
        .chain([if goal.takes_host { 0 } else { CONTROLLER.len() }])
        .max()
        .unwrap_or(0);
    let output = Output::new(
        args.json,
        ctx.color && std::io::stdout().is_terminal(),
        width,
    );
    let plan = RunPlan {
        goal,
        args: args.args,
        inventory,
        hosts,
        check: args.check,
        parallel: args.parallel,
        output: output.clone(),
        templates: Arc::new(Templates::new(layers)),
        root: project.root.clone(),
        color: ctx.color,
    };
    let outcomes = runner::run(Arc::new(engine), plan)?;
    output.summary(&outcomes);
    if outcomes.iter().any(|o| o.status == Status::Failed) {
        Ok(EXIT_FAILED)
    } else {
        Ok(EXIT_OK)
    }
}
