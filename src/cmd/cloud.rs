//! `weft cloud`: make, list, start, stop, image and remove an env's machines.

use std::io::{BufRead, IsTerminal, Write};

use miette::{Diagnostic, Result};
use thiserror::Error;

use super::Context;
use crate::cli::{CloudCommand, CloudTarget};
use crate::cloud::local::LocalProvider;
use crate::cloud::{CloudError, Machine, MachineSpec, Provider, Scope};
use crate::config::{EnvSection, ProviderKind};
use crate::error::EXIT_OK;
use crate::inventory::Inventory;
use crate::project::Project;

/// A cloud command that cannot go on.
#[derive(Debug, Error, Diagnostic)]
pub enum CloudCommandError {
    /// The env has no provider.
    #[error("env `{env}` has no provider")]
    #[diagnostic(
        code(weft::cloud::no_provider),
        help("add `provider = \"local\"` (or \"ec2\") to [env.{env}] in weft.toml")
    )]
    NoProvider { env: String },
    /// The provider failed.
    #[error("{0}")]
    #[diagnostic(code(weft::cloud::provider))]
    Provider(CloudError),
    /// The target names no machine.
    #[error("no machine `{target}` in env `{env}`")]
    #[diagnostic(code(weft::cloud::unknown_machine))]
    UnknownMachine {
        target: String,
        env: String,
        #[help]
        help: Option<String>,
    },
    /// A destructive command was not confirmed.
    #[error("not confirmed: nothing was deleted")]
    #[diagnostic(
        code(weft::cloud::not_confirmed),
        help("pass --yes to confirm without a prompt")
    )]
    NotConfirmed,
    /// A key file could not be read.
    #[error("cannot read the public key `{path}`: {message}")]
    #[diagnostic(code(weft::cloud::key))]
    Key { path: String, message: String },
}

impl From<CloudError> for CloudCommandError {
    fn from(err: CloudError) -> Self {
        CloudCommandError::Provider(err)
    }
}

/// An env's provider and where its resources live.
pub struct CloudEnv {
    /// The provider.
    pub provider: Box<dyn Provider>,
    /// Namespace and env.
    pub scope: Scope,
    /// The env's config section.
    pub section: EnvSection,
}

/// The provider of env `name`, or an error when it has none.
pub fn cloud_env(project: &Project, name: &str) -> Result<CloudEnv> {
    let section = project
        .config
        .as_ref()
        .and_then(|c| c.file.env.get(name))
        .map(|s| s.get_ref());
    let Some(section) = section.filter(|s| s.provider.is_some()) else {
        // An unknown env gets the usual "did you mean".
        Inventory::resolve(project, name)?;
        return Err(CloudCommandError::NoProvider { env: name.into() }.into());
    };
    let provider: Box<dyn Provider> = match section.provider {
        Some(ProviderKind::Ec2) => Box::new(
            crate::cloud::ec2::Ec2Provider::new(section.region.clone())
                .map_err(CloudCommandError::from)?,
        ),
        _ => Box::new(LocalProvider::new().map_err(CloudCommandError::from)?),
    };
    Ok(CloudEnv {
        provider,
        scope: Scope {
            namespace: section.namespace.clone().unwrap_or_else(|| "/".into()),
            env: name.to_string(),
        },
        section: section.clone(),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::exec::runner::RunError::from)?)
}

/// Adds the machines of a provider env to its inventory (dynamic inventory).
pub fn discover(project: &Project, inventory: &mut Inventory) -> Result<()> {
    let has_provider = project
        .config
        .as_ref()
        .and_then(|c| c.file.env.get(&inventory.env))
        .is_some_and(|s| s.get_ref().provider.is_some());
    if !has_provider {
        return Ok(());
    }
    let env = cloud_env(project, &inventory.env)?;
    let machines = runtime()?
        .block_on(env.provider.list(&env.scope))
        .map_err(CloudCommandError::from)?;
    let running: Vec<Machine> = machines
        .into_iter()
        .filter(|m| m.state == "running")
        .collect();
    inventory.add_machines(&running, &env.section);
    Ok(())
}

fn resolve_target(env: &CloudEnv, machines: &[Machine], target: &CloudTarget) -> Result<Machine> {
    let by_role: Vec<&Machine> = machines
        .iter()
        .filter(|m| m.role == target.target)
        .collect();
    let found = if !by_role.is_empty()
        && !machines
            .iter()
            .any(|m| m.name == target.target || m.id == target.target)
    {
        super::by_ordinal(&by_role, target.ordinal.unwrap_or(0)).map(|m| (*m).clone())
    } else {
        machines
            .iter()
            .find(|m| m.name == target.target || m.id == target.target)
            .cloned()
    };
    found.ok_or_else(|| {
        let names: Vec<&str> = machines.iter().map(|m| m.name.as_str()).collect();
        CloudCommandError::UnknownMachine {
            target: target.target.clone(),
            env: env.scope.env.clone(),
            help: crate::suggest::help("machines", &target.target, &names),
        }
        .into()
    })
}

fn confirm(what: &[String], yes: bool) -> Result<()> {
    if yes || what.is_empty() {
        return Ok(());
    }
    eprintln!("this deletes:");
    for item in what {
        eprintln!("  {item}");
    }
    if !std::io::stdin().is_terminal() {
        return Err(CloudCommandError::NotConfirmed.into());
    }
    eprint!("delete them? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CloudCommandError::NotConfirmed.into())
    }
}

/// Public keys from key files (`~` allowed) or keys written out.
pub fn read_keys(files: &[String]) -> Result<Vec<String>> {
    files
        .iter()
        .map(|f| {
            if f.starts_with("ssh-") || f.starts_with("ecdsa-") {
                return Ok(f.clone());
            }
            let path =
                crate::config::expand_home(std::path::Path::new("."), std::path::Path::new(f));
            std::fs::read_to_string(&path)
                .map(|k| k.trim().to_string())
                .map_err(|e| {
                    CloudCommandError::Key {
                        path: f.clone(),
                        message: e.to_string(),
                    }
                    .into()
                })
        })
        .collect()
}

fn print_machines(machines: &[Machine], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(machines).unwrap_or_default()
        );
        return;
    }
    println!(
        "{:<14} {:<8} {:>7}  {:<9} {:<22} id",
        "name", "role", "ordinal", "state", "address"
    );
    for m in machines {
        println!(
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

/// The env's machines.
pub fn list(env: &CloudEnv) -> Result<Vec<Machine>> {
    Ok(runtime()?
        .block_on(env.provider.list(&env.scope))
        .map_err(CloudCommandError::from)?)
}

/// Terminates the machine named (or with id) `name`.
pub fn terminate(env: &CloudEnv, name: &str) -> Result<()> {
    let rt = runtime()?;
    let machines = rt
        .block_on(env.provider.list(&env.scope))
        .map_err(CloudCommandError::from)?;
    let target = CloudTarget {
        target: name.to_string(),
        ordinal: None,
        env: None,
    };
    let machine = resolve_target(env, &machines, &target)?;
    rt.block_on(env.provider.terminate(&env.scope, &machine.id))
        .map_err(CloudCommandError::from)?;
    println!("terminated {}", machine.name);
    Ok(())
}

/// Makes `count` new machines of `role` (after the highest ordinal in use).
pub fn create_machines(
    env: &CloudEnv,
    role: &str,
    count: u32,
    image: Option<String>,
    keys: Vec<String>,
) -> Result<Vec<Machine>> {
    let rt = runtime()?;
    let existing = rt
        .block_on(env.provider.list(&env.scope))
        .map_err(CloudCommandError::from)?;
    let next = existing
        .iter()
        .filter(|m| m.role == role)
        .map(|m| m.ordinal + 1)
        .max()
        .unwrap_or(0);
    let entry = env.section.machines.get(role);
    let mut all_keys = keys;
    if let Some(entry) = entry {
        all_keys.extend(read_keys(&entry.keys)?);
    }
    all_keys.extend(read_keys(&env.section.keys)?);
    let mut made = Vec::new();
    for ordinal in next..next + count {
        let spec = MachineSpec {
            role: role.to_string(),
            ordinal,
            image: image
                .clone()
                .or_else(|| entry.and_then(|e| e.image.clone())),
            size: entry.and_then(|e| e.size.clone()),
            keys: all_keys.clone(),
            user_data: entry.and_then(|e| e.user_data.clone()),
            tags: entry
                .map(|e| {
                    let mut tags: std::collections::BTreeMap<String, String> =
                        e.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    if let Some(user) = &e.user {
                        tags.insert("weft:ssh-user".into(), user.clone());
                    }
                    tags
                })
                .unwrap_or_default(),
        };
        let machine = rt
            .block_on(env.provider.create(&env.scope, &spec))
            .map_err(CloudCommandError::from)?;
        println!(
            "created {} ({}) at {}",
            machine.name,
            machine.id,
            machine.address.as_deref().unwrap_or("-")
        );
        made.push(machine);
    }
    Ok(made)
}

/// Runs a `weft cloud` subcommand.
pub fn cloud(ctx: &Context, command: CloudCommand) -> Result<i32> {
    if let CloudCommand::Images { remove } = &command {
        return images(remove.as_deref());
    }
    let (project, _) = ctx.project()?;
    let env_name = |e: &Option<String>| Inventory::env_name(&project, e.as_deref());
    match command {
        CloudCommand::Create {
            role,
            count,
            env,
            image,
            keys,
            no_provision,
        } => {
            let env = cloud_env(&project, &env_name(&env))?;
            let made = create_machines(&env, &role, count, image, read_keys(&keys)?)?;
            if !no_provision {
                return super::provision::provision(ctx, &project, &env.scope.env, &role, &made);
            }
        }
        CloudCommand::Recreate {
            role,
            image,
            count,
            env,
            no_provision,
        } => {
            let env = cloud_env(&project, &env_name(&env))?;
            let made = create_machines(&env, &role, count, Some(image), Vec::new())?;
            if !no_provision {
                return super::provision::provision(ctx, &project, &env.scope.env, &role, &made);
            }
        }
        CloudCommand::List { env, json } => {
            let env = cloud_env(&project, &env_name(&env))?;
            let machines = runtime()?
                .block_on(env.provider.list(&env.scope))
                .map_err(CloudCommandError::from)?;
            print_machines(&machines, json);
        }
        CloudCommand::Start { target } => machine_action(&project, &target, "start", true)?,
        CloudCommand::Stop { target } => machine_action(&project, &target, "stop", true)?,
        CloudCommand::Terminate { target, yes } => {
            machine_action(&project, &target, "terminate", yes)?
        }
        CloudCommand::Image { target, name } => {
            let env = cloud_env(&project, &env_name(&target.env))?;
            let rt = runtime()?;
            let machines = rt
                .block_on(env.provider.list(&env.scope))
                .map_err(CloudCommandError::from)?;
            let machine = resolve_target(&env, &machines, &target)?;
            let image = rt
                .block_on(env.provider.image(&env.scope, &machine.id, &name))
                .map_err(CloudCommandError::from)?;
            println!("imaged {} as {image}", machine.name);
        }
        CloudCommand::RegisterKey { key, name, env } => {
            let env = cloud_env(&project, &env_name(&env))?;
            let public = read_keys(std::slice::from_ref(&key))?.remove(0);
            let name = name.unwrap_or_else(|| {
                public
                    .split_whitespace()
                    .nth(2)
                    .unwrap_or("key")
                    .to_string()
            });
            runtime()?
                .block_on(env.provider.register_key(&env.scope, &name, &public))
                .map_err(CloudCommandError::from)?;
            println!("registered key {name} for env {}", env.scope.env);
        }
        CloudCommand::Images { .. } => unreachable!("handled before the project loads"),
        CloudCommand::Destroy { env, yes } => {
            let env = cloud_env(&project, &env_name(&env))?;
            let rt = runtime()?;
            let machines = rt
                .block_on(env.provider.list(&env.scope))
                .map_err(CloudCommandError::from)?;
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
                rt.block_on(env.provider.terminate(&env.scope, &machine.id))
                    .map_err(CloudCommandError::from)?;
                println!("terminated {}", machine.name);
            }
            for gone in rt
                .block_on(env.provider.destroy_resources(&env.scope))
                .map_err(CloudCommandError::from)?
            {
                println!("deleted {gone}");
            }
        }
    }
    Ok(EXIT_OK)
}

/// `weft cloud images`: local images need no project or env, only this host.
fn images(remove: Option<&str>) -> Result<i32> {
    use crate::cloud::local;
    if let Some(name) = remove {
        local::remove_image(name).map_err(CloudCommandError::from)?;
        println!("removed image {name}");
        return Ok(0);
    }
    println!("{:<24} {:<8} {:>10} {:>10}", "name", "kind", "size", "age");
    for (kind, image) in local::images() {
        let age = image.age.as_secs();
        let age = if age >= 86400 {
            format!("{}d", age / 86400)
        } else if age >= 3600 {
            format!("{}h", age / 3600)
        } else {
            format!("{}m", age / 60)
        };
        println!(
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
    let env = cloud_env(
        project,
        &Inventory::env_name(project, target.env.as_deref()),
    )?;
    let rt = runtime()?;
    let machines = rt
        .block_on(env.provider.list(&env.scope))
        .map_err(CloudCommandError::from)?;
    let machine = resolve_target(&env, &machines, target)?;
    let result = match action {
        "start" => rt.block_on(env.provider.start(&env.scope, &machine.id)),
        "stop" => rt.block_on(env.provider.stop(&env.scope, &machine.id)),
        _ => {
            confirm(&[format!("machine {} ({})", machine.name, machine.id)], yes)?;
            rt.block_on(env.provider.terminate(&env.scope, &machine.id))
        }
    };
    result.map_err(CloudCommandError::from)?;
    println!("{action}: {}", machine.name);
    Ok(())
}
