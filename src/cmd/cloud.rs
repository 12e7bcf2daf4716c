//! `weft cloud`: make, list, start, stop, image and remove an env's machines.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use miette::{Diagnostic, Result};
use thiserror::Error;

use super::settings::{self, GoalFlags};
use super::Context;
use crate::cli::{CloudCommand, CloudTarget, ConnectArgs, FanoutArgs};
use crate::cloud::env::{read_keys, CloudEnv};
use crate::cloud::Machine;
use crate::error::EXIT_OK;
use crate::inventory::Inventory;
use crate::layers::Layers;
use crate::project::Project;

/// A destructive command was not confirmed.
#[derive(Debug, Error, Diagnostic)]
#[error("not confirmed: nothing was deleted")]
#[diagnostic(
    code(weft::cloud::not_confirmed),
    help("pass --yes to confirm without a prompt")
)]
pub struct NotConfirmed;

/// Asks before deleting `what`, unless `yes`; without a terminal, refuses.
pub fn confirm(what: &[String], yes: bool) -> Result<()> {
    if yes || what.is_empty() {
        return Ok(());
    }
    eprintln!("this deletes:");
    for item in what {
        eprintln!("  {item}");
    }
    if !std::io::stdin().is_terminal() {
        return Err(NotConfirmed.into());
    }
    eprint!("delete them? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(NotConfirmed.into())
    }
}

fn print_machines(machines: &[Machine], json: bool) {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(machines).unwrap_or_default()
        );
        return;
    }
    outln!(
        "{:<14} {:<8} {:>7}  {:<9} {:<22} id",
        "name",
        "role",
        "ordinal",
        "state",
        "address"
    );
    for m in machines {
        outln!(
            "{:<14} {:<8} {:>7}  {:<9} {:<22} {}",
            m.name,
            m.role,
            m.ordinal,
            m.state,
            m.address.as_deref().unwrap_or("-"),
            m.id
        );
    }
}

/// The provider of the env `-e` names (else the default env), after checking the env exists.
fn open(project: &Project, env: Option<&str>) -> Result<CloudEnv> {
    let name = Inventory::env_name(project, env);
    // An unknown env gets the usual "did you mean".
    Inventory::resolve(project, &name)?;
    Ok(CloudEnv::open(project, &name)?)
}

/// What `create` and `recreate` share.
struct Create {
    role: String,
    count: u32,
    env: Option<String>,
    image: Option<String>,
    keys: Vec<String>,
    no_provision: bool,
    connect: ConnectArgs,
    fanout: FanoutArgs,
}

/// Makes the machines, then runs the role's provisioning goal on them with the run's flags.
fn create(ctx: &Context, project: Project, layers: Layers, args: Create) -> Result<i32> {
    let env = open(&project, args.env.as_deref())?;
    let keys = read_keys(&args.keys)?;
    let json = args.fanout.json;
    let made = env.create(&args.role, args.count, args.image, keys, &mut |m| {
        let address = m.address.as_deref().unwrap_or("-");
        if json {
            let event = serde_json::json!({"event": "created", "machine": m.name, "id": m.id,
                "address": address});
            outln!("{event}");
        } else {
            outln!("created {} ({}) at {address}", m.name, m.id);
        }
    })?;
    if args.no_provision {
        return Ok(EXIT_OK);
    }
    let engine = Arc::new(crate::script::engine::load(&layers, &project)?);
    let settings = settings::run_settings(
        ctx,
        &project,
        &args.connect,
        &args.fanout,
        GoalFlags::default(),
    )?;
    let run = settings::run_context(project, layers, Some(engine), settings);
    crate::exec::orchestrate::provision(&run, &env.scope.env, &args.role, &made)
}

/// Runs a `weft cloud` subcommand.
pub fn cloud(ctx: &Context, command: CloudCommand) -> Result<i32> {
    if let CloudCommand::Images { remove } = &command {
        return images(remove.as_deref());
    }
    let (project, layers) = ctx.project()?;
    match command {
        CloudCommand::Create {
            role,
            count,
            env,
            image,
            keys,
            no_provision,
            connect,
            fanout,
        } => {
            let args = Create {
                role,
                count,
                env,
                image,
                keys,
                no_provision,
                connect,
                fanout,
            };
            return create(ctx, project, layers, args);
        }
        CloudCommand::Recreate {
            role,
            image,
            count,
            env,
            no_provision,
            connect,
            fanout,
        } => {
            let args = Create {
                role,
                count,
                env,
                image: Some(image),
                keys: Vec::new(),
                no_provision,
                connect,
                fanout,
            };
            return create(ctx, project, layers, args);
        }
        CloudCommand::List { env, json } => {
            print_machines(&open(&project, env.as_deref())?.list()?, json);
        }
        CloudCommand::Start { target } => machine_action(&project, &target, "start", true)?,
        CloudCommand::Stop { target } => machine_action(&project, &target, "stop", true)?,
        CloudCommand::Terminate { target, yes } => {
            machine_action(&project, &target, "terminate", yes)?
        }
        CloudCommand::Image { target, name } => {
            let env = open(&project, target.env.as_deref())?;
            let machine = env.find(&env.list()?, &target.target, target.ordinal)?;
            let image = env.block_on(env.provider.image(&env.scope, &machine.id, &name))?;
            outln!("imaged {} as {image}", machine.name);
        }
        CloudCommand::RegisterKey { key, name, env } => {
            let env = open(&project, env.as_deref())?;
            let public = read_keys(std::slice::from_ref(&key))?.remove(0);
            let name = name.unwrap_or_else(|| {
                public
                    .split_whitespace()
                    .nth(2)
                    .unwrap_or("key")
                    .to_string()
            });
            env.block_on(env.provider.register_key(&env.scope, &name, &public))?;
            outln!("registered key {name} for env {}", env.scope.env);
        }
        CloudCommand::Images { .. } => unreachable!("handled before the project loads"),
        CloudCommand::Destroy { env, yes } => {
            let env = open(&project, env.as_deref())?;
            let machines = env.list()?;
            let mut what: Vec<String> = machines
                .iter()
                .map(|m| format!("machine {} ({})", m.name, m.id))
                .collect();
            what.push(format!(
                "every key and security group of env {} in namespace {}",
                env.scope.env, env.scope.namespace
            ));
            confirm(&what, yes)?;
            for machine in &machines {
                env.block_on(env.provider.terminate(&env.scope, &machine.id))?;
                outln!("terminated {}", machine.name);
            }
            for gone in env.block_on(env.provider.destroy_resources(&env.scope))? {
                outln!("deleted {gone}");
            }
        }
    }
    Ok(EXIT_OK)
}

/// `weft cloud images`: local images need no project or env, only this host.
fn images(remove: Option<&str>) -> Result<i32> {
    use crate::cloud::local;
    if let Some(name) = remove {
        local::remove_image(name).map_err(crate::cloud::env::CloudEnvError::from)?;
        outln!("removed image {name}");
        return Ok(0);
    }
    outln!("{:<24} {:<8} {:>10} {:>10}", "name", "kind", "size", "age");
    for (kind, image) in local::images() {
        let age = image.age.as_secs();
        let age = if age >= 86400 {
            format!("{}d", age / 86400)
        } else if age >= 3600 {
            format!("{}h", age / 3600)
        } else {
            format!("{}m", age / 60)
        };
        outln!(
            "{:<24} {:<8} {:>7} MiB {:>10}",
            image.name,
            kind,
            image.bytes / (1024 * 1024),
            age
        );
    }
    Ok(0)
}

fn machine_action(project: &Project, target: &CloudTarget, action: &str, yes: bool) -> Result<()> {
    let env = open(project, target.env.as_deref())?;
    let machine = env.find(&env.list()?, &target.target, target.ordinal)?;
    let call = match action {
        "start" => env.provider.start(&env.scope, &machine.id),
        "stop" => env.provider.stop(&env.scope, &machine.id),
        _ => {
            confirm(&[format!("machine {} ({})", machine.name, machine.id)], yes)?;
            env.provider.terminate(&env.scope, &machine.id)
        }
    };
    env.block_on(call)?;
    outln!("{action}: {}", machine.name);
    Ok(())
}
