//! `weft copy`: push files to the selected hosts, or pull one file from each.

use miette::{Diagnostic, Result};
use thiserror::Error;

use super::settings::{self, GoalFlags};
use super::Context;
use crate::cli::CopyArgs;
use crate::exec::runner::Job;
use crate::inventory::Selection;
use crate::transport::download::DownloadLimits;

/// What stops `weft copy` before it connects.
#[derive(Debug, Error, Diagnostic)]
pub enum CopyError {
    /// The local source of an upload cannot be read.
    #[error("cannot copy `{path}`: {err}")]
    #[diagnostic(
        code(weft::copy::source),
        help(
            "the source is a file or folder on this machine, relative to the working directory; \
             to fetch a file from the hosts, add --pull"
        )
    )]
    Source { path: String, err: std::io::Error },
}

/// Copies to (or with `--pull`, from) every selected host.
pub fn copy(ctx: &Context, args: CopyArgs) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    let selection = Selection::resolve(&project, &settings::filter(&args.select))?;
    let job = if args.pull {
        Job::Download {
            remote: args.source,
            dest: ctx.cwd.join(&args.dest),
            limits: DownloadLimits {
                follow_links: args.follow_links,
                max_bytes: args.max_size,
            },
        }
    } else {
        // Local paths are taken from the working directory, as with cp.
        let local = ctx.cwd.join(&args.source);
        // Every host would fail on it alone: say it once, before connecting to any.
        if let Err(err) = std::fs::metadata(&local) {
            return Err(CopyError::Source {
                path: args.source,
                err,
            }
            .into());
        }
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
