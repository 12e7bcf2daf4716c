//! `weft run`: validate everything, then run the goal on the selected hosts.

use std::sync::Arc;

use miette::Result;

use super::fanout::{self, Fanout};
use super::Context;
use crate::cli::RunArgs;
use crate::exec::runner::Job;
use crate::script::{engine, ScriptEngine};

/// Runs a goal; exit 1 when it failed on any host.
pub fn run(ctx: &Context, args: RunArgs) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    let engine = engine::load(&layers, &project)?;
    let goal = engine.scripts().goal(&args.goal)?.clone();
    ScriptEngine::check_arguments(&goal, &args.args)?;
    let mut selection = if goal.takes_host {
        fanout::select(&project, &args.select)?
    } else {
        fanout::select_for_controller(&project, &args.select)?
    };
    selection.set_vars(&crate::inventory::assignments(&args.set));
    let env = selection.inventory.env.clone();
    let job = Job::Goal {
        engine: Arc::new(engine),
        goal,
        args: args.args,
    };
    let mut fan = Fanout::new(ctx, &project, layers, selection);
    fan.check = args.check;
    fan.diff = args.diff;
    fan.break_lock = args.break_lock;
    fan.orchestrator = Some(Arc::new(super::orchestrate::EnvOrchestrator::new(
        ctx,
        &env,
        args.break_lock,
        args.set,
    )));
    fanout::execute(fan, job, &args.connect, &args.fanout)
}
