//! `weft exec`: one ad hoc shell command on many hosts.

use miette::Result;

use super::settings::{self, GoalFlags};
use super::Context;
use crate::cli::ExecArgs;
use crate::exec::runner::Job;
use crate::inventory::Selection;

/// Runs the command on the selected hosts; exit 1 when it failed on any.
pub fn exec(ctx: &Context, args: ExecArgs) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    let selection = Selection::resolve(&project, &settings::filter(&args.select))?;
    let settings = settings::run_settings(
        ctx,
        &project,
        &args.connect,
        &args.fanout,
        GoalFlags::default(),
    )?;
    // The words after `--` are one command line, as with `ssh host -- cmd`.
    let job = Job::Command(args.command.join(" "));
    settings::run_context(project, layers, None, settings).execute(selection, job, false)
}
