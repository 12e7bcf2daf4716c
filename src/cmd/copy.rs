//! `weft copy`: push files to the selected hosts, or pull one file from each.

use miette::Result;

use super::settings::{self, GoalFlags};
use super::Context;
use crate::cli::CopyArgs;
use crate::exec::runner::Job;
use crate::inventory::Selection;

/// Copies to (or with `--pull`, from) every selected host.
pub fn copy(ctx: &Context, args: CopyArgs) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    let selection = Selection::resolve(&project, &settings::filter(&args.select))?;
    let job = if args.pull {
        Job::Download {
            remote: args.source,
            dest: ctx.cwd.join(&args.dest),
        }
    } else {
        // Local paths are taken from the working directory, as with cp.
        let local = ctx.cwd.join(&args.source);
        Job::Upload {
            local: local.display().to_string(),
            remote: args.dest,
        }
    };
    let settings = settings::run_settings(
        ctx,
        &project,
        &args.connect,
        &args.fanout,
        GoalFlags::default(),
    )?;
    settings::run_context(project, layers, None, settings).execute(selection, job, false)
}
