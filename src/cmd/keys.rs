//! `weft keys sync`: the env's key set, enforced on every machine.

use miette::Result;

use super::settings::{self, GoalFlags};
use super::Context;
use crate::cli::KeysCommand;
use crate::cloud::env::read_keys;
use crate::exec::runner::Job;
use crate::inventory::{Inventory, Selection};

/// Runs a `weft keys` subcommand.
pub fn keys(ctx: &Context, command: KeysCommand) -> Result<i32> {
    let KeysCommand::Sync {
        select,
        connect,
        fanout,
        check,
    } = command;
    let (project, layers) = ctx.project()?;
    let env = Inventory::env_name(&project, select.env.as_deref());
    let section = project.config.as_ref().and_then(|c| c.file.env.get(&env));

    let mut keys = read_keys(&section.map(|s| s.keys.clone()).unwrap_or_default())?;
    // weft's own key stays, or weft would lock itself out of its machines.
    if let Ok((_, weft_key)) = crate::cloud::machine_key() {
        keys.push(weft_key);
    }
    let selection = Selection::resolve(&project, &settings::filter(&select))?;
    let flags = GoalFlags {
        check,
        ..GoalFlags::default()
    };
    let settings = settings::run_settings(ctx, &project, &connect, &fanout, flags)?;
    settings::run_context(project, layers, None, settings).execute(
        selection,
        Job::SyncKeys(keys),
        false,
    )
}
