//! `weft keys sync`: the env's key set, enforced on every machine.

use miette::Result;

use super::fanout::{self, Fanout};
use super::Context;
use crate::cli::KeysCommand;
use crate::exec::runner::Job;
use crate::inventory::Inventory;

/// Runs a `weft keys` subcommand.
pub fn keys(ctx: &Context, command: KeysCommand) -> Result<i32> {
    let KeysCommand::Sync {
        select,
        connect,
        fanout: fan_args,
        check,
    } = command;
    let (project, layers) = ctx.project()?;
    let env = Inventory::env_name(&project, select.env.as_deref());
    let section = project
        .config
        .as_ref()
        .and_then(|c| c.file.env.get(&env))
        .map(|s| s.get_ref());
    let mut keys = super::cloud::read_keys(&section.map(|s| s.keys.clone()).unwrap_or_default())?;
    // weft's own key stays, or weft would lock itself out of its machines.
    if let Ok((_, weft_key)) = crate::cloud::machine_key() {
        keys.push(weft_key);
    }
    let selection = fanout::select(&project, &select)?;
    let mut fan = Fanout::new(ctx, &project, layers, selection);
    fan.check = check;
    fanout::execute(fan, Job::SyncKeys(keys), &connect, &fan_args)
}
