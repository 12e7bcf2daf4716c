//! `weft copy`: push files to the selected hosts, or pull one file from each.

use miette::Result;

use super::fanout::{self, Fanout};
use super::Context;
use crate::cli::CopyArgs;
use crate::exec::runner::Job;

/// Copies to (or with `--pull`, from) every selected host.
pub fn copy(ctx: &Context, args: CopyArgs) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    let selection = fanout::select(&project, &args.select)?;
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
    let fan = Fanout::new(ctx, &project, layers, selection);
    fanout::execute(fan, job, &args.connect, &args.fanout)
}
