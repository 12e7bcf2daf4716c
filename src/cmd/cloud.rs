//! `weft cloud`: make, list, start, stop, image, adopt and remove an env's machines; list
//! every project's, and remove a deleted project's leftovers.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use miette::{Diagnostic, Result};
use thiserror::Error;

use super::settings::{self, GoalFlags};
use super::Context;
use crate::cli::{CloudCommand, CloudTarget, ConnectArgs, FanoutArgs};
use crate::cloud::env::{read_keys, AllMachines, CloudEnv};
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

/// What `weft cloud` refuses before touching anything.
#[derive(Debug, Error, Diagnostic)]
pub enum CloudCommandError {
    /// `adopt --from` names the env's own namespace.
    #[error("env `{env}` is in namespace `{namespace}` already: nothing to adopt")]
    #[diagnostic(
        code(weft::cloud::adopt_same_namespace),
        help("`--from` names the namespace the machines are in now, such as `--from /`")
    )]
    AdoptSameNamespace { env: String, namespace: String },
    /// `destroy --namespace` names a namespace without machines.
    #[error("no local machine is in namespace `{namespace}`")]
    #[diagnostic(code(weft::cloud::unknown_namespace))]
    UnknownNamespace {
        namespace: String,
        #[help]
        help: Option<String>,
    },
}

/// Asks before deleting `what`, which belongs to `whose` (project, namespace, env), unless
/// `yes`; without a terminal, refuses.
pub fn confirm(whose: &str, what: &[String], yes: bool) -> Result<()> {
    if yes || what.is_empty() {
        return Ok(());
    }
    eprintln!("this deletes, of {whose}:");
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

/// An age as people read it: `42s`, `5m`, `3h`, `2d`.
fn age(secs: u64) -> String {
    if secs >= 86400 {
        format!("{}d", secs / 86400)
    } else if secs >= 3600 {
        format!("{}h", secs / 3600)
    } else if secs >= 60 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// How long ago `created` (seconds since the epoch) was.
fn age_of(created: Option<u64>) -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    created.map(|c| now.saturating_sub(c))
}

/// One machine as `cloud list --all` shows it.
#[derive(serde::Serialize)]
struct Owned<'a> {
    project: Option<&'a str>,
    /// The project's folder, when the machine is `local`.
    project_dir: Option<&'a str>,
    /// Whether that folder (its `weft.toml`) is gone: the machine is a leftover.
    folder_gone: bool,
    namespace: &'a str,
    env: &'a str,
    name: &'a str,
    role: &'a str,
    state: &'a str,
    age_seconds: Option<u64>,
    image: Option<&'a str>,
    id: &'a str,
}

impl<'a> Owned<'a> {
    fn of(m: &'a Machine) -> Self {
        let tag = |key: &str| m.tags.get(key).map(String::as_str);
        let project_dir = tag(crate::cloud::tags::PROJECT_DIR);
        Owned {
            project: tag(crate::cloud::tags::PROJECT),
            project_dir,
            folder_gone: project_dir
                .is_some_and(|d| !std::path::Path::new(d).join("weft.toml").is_file()),
            namespace: tag(crate::cloud::tags::NAMESPACE).unwrap_or("-"),
            env: tag(crate::cloud::tags::ENV).unwrap_or("-"),
            name: &m.name,
            role: &m.role,
            state: &m.state,
            age_seconds: age_of(m.created),
            image: m.image.as_deref(),
            id: &m.id,
        }
    }
}

/// `weft cloud list --all`: every project's machines.
fn print_all(machines: &[Machine], json: bool) {
    let rows: Vec<Owned> = machines.iter().map(Owned::of).collect();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return;
    }
    let project = |r: &Owned| {
        let name = r.project.unwrap_or("-");
        if r.folder_gone {
            format!("{name} (folder gone)")
        } else {
            name.to_string()
        }
    };
    let width = |f: &dyn Fn(&Owned) -> usize, title: &str| {
        rows.iter().map(f).max().unwrap_or(0).max(title.len())
    };
    let pw = width(&|r| project(r).len(), "project");
    let nw = width(&|r| r.namespace.len(), "namespace");
    let ew = width(&|r| r.env.len(), "env");
    let mw = width(&|r| r.name.len(), "machine");
    outln!(
        "{:<pw$}  {:<nw$}  {:<ew$}  {:<mw$}  {:<8} {:>5}  image",
        "project",
        "namespace",
        "env",
        "machine",
        "state",
        "age"
    );
    for r in &rows {
        outln!(
            "{:<pw$}  {:<nw$}  {:<ew$}  {:<mw$}  {:<8} {:>5}  {}",
            project(r),
            r.namespace,
            r.env,
            r.name,
            r.state,
            r.age_seconds.map_or_else(|| "-".into(), age),
            r.image.unwrap_or("base")
        );
    }
}

/// `weft cloud destroy --namespace NS`: every local machine of the namespace, of every env,
/// and what each env owns besides; no project needed.
fn destroy_namespace(namespace: &str, yes: bool) -> Result<i32> {
    let all = AllMachines::local()?;
    let machines = all.list()?;
    let in_ns = |ns: &str| -> Vec<&Machine> {
        machines
            .iter()
            .filter(|m| {
                m.tags
                    .get(crate::cloud::tags::NAMESPACE)
                    .map(String::as_str)
                    == Some(ns)
            })
            .collect()
    };
    // `old` for `/old/`, as people shorten it.
    let wrapped = format!("/{}/", namespace.trim_matches('/'));
    let (namespace, doomed) = match (in_ns(namespace), in_ns(&wrapped)) {
        (found, _) if !found.is_empty() => (namespace.to_string(), found),
        (_, found) if !found.is_empty() => (wrapped, found),
        _ => {
            let mut known: Vec<&str> = machines
                .iter()
                .filter_map(|m| m.tags.get(crate::cloud::tags::NAMESPACE))
                .map(String::as_str)
                .collect();
            known.dedup();
            return Err(CloudCommandError::UnknownNamespace {
                namespace: namespace.to_string(),
                help: crate::suggest::help("namespaces", namespace, &known).or_else(|| {
                    Some("`weft cloud list --all` shows every machine with its namespace".into())
                }),
            }
            .into());
        }
    };
    let first = Owned::of(doomed[0]);
    let mut whose = format!("namespace `{namespace}`");
    if let Some(project) = first.project {
        whose.push_str(&format!(" (project `{project}`"));
        if let Some(dir) = first.project_dir {
            let gone = if first.folder_gone { ", gone" } else { "" };
            whose.push_str(&format!(", folder {dir}{gone}"));
        }
        whose.push(')');
    }
    let what: Vec<String> = doomed
        .iter()
        .map(|m| {
            let r = Owned::of(m);
            format!("env `{}`: machine {} ({})", r.env, m.name, m.id)
        })
        .chain(std::iter::once(
            "the keys registered for its envs".to_string(),
        ))
        .collect();
    confirm(&whose, &what, yes)?;
    let mut envs: Vec<crate::cloud::Scope> = Vec::new();
    for machine in &doomed {
        all.terminate(machine)?;
        outln!("terminated {} ({})", machine.name, machine.id);
        let scope = crate::cloud::env::scope_of(machine);
        if !envs.iter().any(|s| s.env == scope.env) {
            envs.push(scope);
        }
    }
    for scope in &envs {
        for gone in all.destroy_resources(scope)? {
            outln!("deleted {gone}");
        }
    }
    Ok(EXIT_OK)
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
    if let Some(note) = env.old_default_note()? {
        eprintln!("{note}");
    }
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
    // These need no project: the host's images, and every project's machines on it.
    match &command {
        CloudCommand::Images { remove } => return images(remove.as_deref()),
        CloudCommand::List {
            env: None,
            all: true,
            json,
        } => {
            print_all(&AllMachines::local()?.list()?, *json);
            return Ok(EXIT_OK);
        }
        CloudCommand::Destroy {
            namespace: Some(namespace),
            yes,
            ..
        } => return destroy_namespace(namespace, *yes),
        _ => {}
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
        CloudCommand::List { env, all, json } => {
            let env = open(&project, env.as_deref())?;
            if all {
                print_all(&AllMachines::of_env(env)?.list()?, json);
                return Ok(EXIT_OK);
            }
            let machines = env.list()?;
            if !json {
                outln!("machines of {}", env.describe());
            }
            print_machines(&machines, json);
            if let Some(note) = env.old_default_note()? {
                eprintln!("{note}");
            }
        }
        CloudCommand::Adopt { env, from } => {
            let env = open(&project, env.as_deref())?;
            if from == env.scope.namespace {
                return Err(CloudCommandError::AdoptSameNamespace {
                    env: env.scope.env.clone(),
                    namespace: from,
                }
                .into());
            }
            let moved = env.adopt(&from)?;
            if moved.is_empty() {
                outln!(
                    "no machines of env `{}` in namespace `{from}`: nothing to adopt",
                    env.scope.env
                );
            }
            for machine in &moved {
                outln!(
                    "adopted {} ({}) from namespace `{from}` into {}",
                    machine.name,
                    machine.id,
                    env.describe()
                );
            }
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
        CloudCommand::Destroy { env, yes, .. } => {
            let env = open(&project, env.as_deref())?;
            let machines = env.list()?;
            let mut what: Vec<String> = machines
                .iter()
                .map(|m| format!("machine {} ({})", m.name, m.id))
                .collect();
            what.push("every key, security group and floating IP of the env".into());
            confirm(&env.describe(), &what, yes)?;
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
        let age = age(image.age.as_secs());
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
            confirm(
                &env.describe(),
                &[format!("machine {} ({})", machine.name, machine.id)],
                yes,
            )?;
            env.provider.terminate(&env.scope, &machine.id)
        }
    };
    env.block_on(call)?;
    outln!("{action}: {}", machine.name);
    Ok(())
}
