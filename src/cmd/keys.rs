//! `weft keys sync`: the env's key set, enforced on every machine.

use miette::{Diagnostic, Result};
use thiserror::Error;

use super::settings::{self, GoalFlags};
use super::Context;
use crate::cli::KeysCommand;
use crate::cloud::env::read_keys;
use crate::config::ConnectorKind;
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
    // weft's own key stays, or weft would lock itself out of its machines. A check makes no
    // key: it keeps the one there is.
    let weft_key = if check {
        crate::cloud::existing_machine_key()
    } else {
        crate::cloud::machine_key().ok().map(|(_, public)| public)
    };
    keys.extend(weft_key);
    let selection = Selection::resolve(&project, &settings::filter(&select))?;
    // Both would lock people out: of this machine, or of every host but through weft.
    if selection.inventory.connector == ConnectorKind::Local {
        return Err(KeysError::Local { env }.into());
    }
    if section.is_none_or(|s| s.keys.is_empty()) {
        let message = format!(
            "env `{env}` lists no `keys`: `weft keys sync` would leave only weft's own key on \
             every host, and remove everyone else's"
        );
        let help = format!(
            "list the public keys that may log in: [env.{env}] keys = [\"~/.ssh/id_ed25519.pub\"]"
        );
        return Err(
            match project.config.as_ref().filter(|_| section.is_some()) {
                Some(config) => config.env_error(&env, message, Some(help)).into(),
                None => miette::miette!(code = "weft::keys::none", help = help, "{message}"),
            },
        );
    }
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

/// A `weft keys sync` that would lock people out.
#[derive(Debug, Error, Diagnostic)]
enum KeysError {
    /// The env is this machine.
    #[error(
        "env `{env}` runs on this machine (the local connector): `weft keys sync` would \
         rewrite your own `authorized_keys`"
    )]
    #[diagnostic(
        code(weft::keys::local),
        help("sync an env whose hosts weft reaches over SSH: `weft keys sync -e ENV`")
    )]
    Local { env: String },
}
