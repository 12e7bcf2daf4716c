//! `weft run`: validate everything, then run the goal on the selected hosts.

use std::sync::Arc;

use miette::Result;

use super::settings::{self, GoalFlags};
use super::Context;
use crate::cli::RunArgs;
use crate::script::engine;

/// Runs a goal; exit 1 when it failed on any host.
pub fn run(ctx: &Context, args: RunArgs) -> Result<i32> {
    if let Some(path) = &args.timings_html {
        check_page_path(path)?;
    }
    let (project, layers) = ctx.project()?;
    crate::plugin::check_vendored(&project.root)?;
    // `--check` leaves the controller as it found it: not even the goal index is written.
    let load = if args.check {
        engine::load_read_only
    } else {
        engine::load
    };
    let engine = Arc::new(load(&layers, &project)?);
    // The process ends with the run: its compiled scripts are left to the exit rather than
    // freed one by one (a tenth of a warm start's instructions).
    std::mem::forget(engine.clone());
    let flags = GoalFlags {
        check: args.check,
        diff: args.diff,
        break_lock: args.break_lock,
        rebuild: args.rebuild,
        scrub: args.scrub,
        timings: args.timings,
        timings_html: args.timings_html,
        vars: crate::inventory::assignments(&args.set),
        yes: args.yes,
    };
    let settings = settings::run_settings(ctx, &project, &args.connect, &args.fanout, flags)?;
    let run = settings::run_context(project, layers, Some(engine), settings);
    let code = run.run_goal(&args.goal, &args.args, &settings::filter(&args.select))?;
    // A refused confirmation is a usage matter, like `weft cloud terminate` without --yes.
    if run.settings.confirm.refused() {
        return Ok(crate::error::EXIT_USAGE);
    }
    Ok(code)
}

/// A `--timings-html` page goes where it can be written: into a folder that exists, not over
/// one. Checked before any host is touched; the page itself is written at the end.
fn check_page_path(path: &std::path::Path) -> Result<()> {
    let why = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        _ if path.is_dir() => "it is a folder".to_string(),
        Some(folder) if !folder.is_dir() => format!("there is no folder `{}`", folder.display()),
        _ => return Ok(()),
    };
    Err(miette::miette!(
        code = "weft::command::io",
        "cannot write the timings page `{}`: {why}",
        path.display()
    ))
}
