//! `weft exec`: one ad hoc shell command on many hosts.

use miette::Result;

use super::fanout::{self, Fanout};
use super::Context;
use crate::cli::ExecArgs;
use crate::exec::runner::Job;

/// Runs the command on the selected hosts; exit 1 when it failed on any.
pub fn exec(ctx: &Context, args: ExecArgs) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    let selection = fanout::select(&project, &args.select)?;
    // The words after `--` are one command line, as with `ssh host -- cmd`.
    let job = Job::Command(args.command.join(" "));
    let fan = Fanout::new(ctx, &project, layers, selection);
    fanout::execute(fan, job, &args.connect, &args.fanout)
}
