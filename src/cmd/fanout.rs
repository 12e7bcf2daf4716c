//! What `run`, `exec` and `copy` share: choosing hosts (inventory names or ad hoc addresses),
//! building the connector, sudo settings, running the plan and turning outcomes into an exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use miette::{Diagnostic, Result};
use thiserror::Error;
use tokio::sync::Semaphore;

use super::Context;
use crate::cli::{ConnectArgs, FanoutArgs, HostKeyPolicyArg, Select};
use crate::config::ConnectorKind;
use crate::error::{EXIT_FAILED, EXIT_OK};
use crate::exec::output::Output;
use crate::exec::runner::{self, Connector, Job, MaxFail, RunPlan, CONTROLLER};
use crate::exec::session::Privilege;
use crate::inventory::{HostSpec, Inventory};
use crate::project::Project;
use crate::template::Templates;
use crate::transport::ssh::auth::{default_identity_files, Identities};
use crate::transport::ssh::known_hosts::KnownHosts;
use crate::transport::ssh::ssh_config::SshConfig;
use crate::transport::ssh::{HostKeyPolicy, SshError, SshSettings, Target};

/// The environment variable holding the sudo password.
pub const SUDO_PASSWORD_ENV: &str = "WEFT_SUDO_PASSWORD";

/// Bad connection settings, found before any host is touched.
#[derive(Debug, Error, Diagnostic)]
pub enum ConnectError {
    /// A host's address does not parse.
    #[error("host `{host}` has a bad address: {message}")]
    #[diagnostic(
        code(weft::connect::address),
        help("write addresses as `user@addr:port`")
    )]
    Address { host: String, message: String },
    /// An identity, known_hosts or ssh config file is unusable.
    #[error(transparent)]
    #[diagnostic(code(weft::connect::setup))]
    Setup(#[from] SshError),
    /// A file could not be read.
    #[error("cannot read `{path}`: {message}")]
    #[diagnostic(code(weft::connect::read))]
    Read { path: String, message: String },
    /// Addresses were mixed with the hosts of a local env.
    #[error("`-H {address}` is an SSH address, but env `{env}` uses the local connector")]
    #[diagnostic(
        code(weft::connect::mixed),
        help("give only addresses, or pick an env with SSH hosts")
    )]
    Mixed { address: String, env: String },
    /// `--max-fail` does not parse.
    #[error("--max-fail {0}")]
    #[diagnostic(code(weft::connect::max_fail))]
    MaxFail(String),
    /// The sudo password prompt failed.
    #[error("cannot read the sudo password: {0}")]
    #[diagnostic(code(weft::connect::sudo), help("set ${SUDO_PASSWORD_ENV} instead"))]
    SudoPrompt(String),
}

/// The hosts a command runs on and how they are reached.
pub struct Selection {
    /// The env (or an ad hoc env of addresses).
    pub inventory: Inventory,
    /// The selected hosts.
    pub hosts: Vec<HostSpec>,
}

impl Selection {
    /// Puts `vars` over every layer: the env's and each host's.
    pub fn set_vars(&mut self, vars: &crate::inventory::Vars) {
        if vars.is_empty() {
            return;
        }
        let hosts = self.hosts.iter_mut().chain(self.inventory.hosts.iter_mut());
        for vars_of in hosts.map(|h| &mut h.vars).chain([&mut self.inventory.vars]) {
            crate::inventory::merge(vars_of, vars.clone());
        }
    }
}

/// Like `select`, but an env with no hosts yet is fine (controller goals that make machines).
pub fn select_for_controller(project: &Project, select: &Select) -> Result<Selection> {
    let inventory = env_inventory(project, select.env.as_deref())?;
    if !select.roles.is_empty() || !select.hosts.is_empty() {
        return select_in(inventory, select);
    }
    let hosts = inventory.hosts.clone();
    Ok(Selection { inventory, hosts })
}

/// The env's inventory (`-e`, else the default env), with a provider's machines added.
pub fn env_inventory(project: &Project, env: Option<&str>) -> Result<Inventory> {
    let env = Inventory::env_name(project, env);
    let mut inventory = Inventory::resolve(project, &env)?;
    super::cloud::discover(project, &mut inventory)?;
    Ok(inventory)
}

/// Resolves `-e/-r/-H`; `-H` values that are not hosts of the env but look like addresses
/// become ad hoc SSH hosts, so weft works without any weft.toml.
pub fn select(project: &Project, select: &Select) -> Result<Selection> {
    select_in(env_inventory(project, select.env.as_deref())?, select)
}

/// Applies `-r/-H` (`select.env` aside) to an inventory already resolved.
pub fn select_in(mut inventory: Inventory, select: &Select) -> Result<Selection> {
    let (named, addresses): (Vec<String>, Vec<String>) =
        select.hosts.iter().cloned().partition(|h| {
            inventory.hosts.iter().any(|known| &known.name == h) || !Target::looks_like_address(h)
        });
    if addresses.is_empty() {
        let hosts = inventory.select(&select.roles, &named)?;
        return Ok(Selection { inventory, hosts });
    }
    if inventory.connector == ConnectorKind::Local
        && (!named.is_empty() || !select.roles.is_empty())
    {
        return Err(ConnectError::Mixed {
            address: addresses[0].clone(),
            env: inventory.env.clone(),
        }
        .into());
    }
    let mut hosts = if named.is_empty() && select.roles.is_empty() {
        Vec::new()
    } else {
        inventory.select(&select.roles, &named)?
    };
    for address in addresses {
        hosts.push(HostSpec {
            name: address.clone(),
            address,
            roles: Vec::new(),
            vars: inventory.vars.clone(),
        });
    }
    inventory.connector = ConnectorKind::Ssh;
    Ok(Selection { inventory, hosts })
}

/// The connector for the selection; SSH settings load identities once, before any host.
pub fn connector(
    project: &Project,
    selection: &Selection,
    args: &ConnectArgs,
) -> Result<Connector> {
    if selection.inventory.connector == ConnectorKind::Local {
        return Ok(Connector::Local(project.root.clone()));
    }
    let mut targets = Vec::new();
    for host in &selection.hosts {
        let target = Target::parse(&host.address).map_err(|message| ConnectError::Address {
            host: host.name.clone(),
            message,
        })?;
        targets.push(target);
    }
    Ok(Connector::Ssh(Arc::new(ssh_settings(
        project, args, &targets,
    )?)))
}

fn home_path(rel: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(rel))
}

/// Builds the SSH settings of a run from flags, the user config and `~/.ssh`.
pub fn ssh_settings(
    project: &Project,
    args: &ConnectArgs,
    targets: &[Target],
) -> Result<SshSettings> {
    let ssh_config_path = args.ssh_config.clone().or_else(|| home_path(".ssh/config"));
    let ssh_config = match &ssh_config_path {
        Some(path) => SshConfig::load(path).map_err(|e| ConnectError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?,
        None => SshConfig::default(),
    };
    let mut known_files: Vec<PathBuf> = Vec::new();
    let user_known = project
        .user
        .known_hosts
        .as_ref()
        .map(|p| crate::config::expand_home(&project.user.dir, p));
    for file in [
        args.known_hosts.clone(),
        user_known,
        home_path(".ssh/known_hosts"),
        // Where weft records the host keys of the machines it makes.
        Some(crate::cloud::known_hosts_file()),
    ]
    .into_iter()
    .flatten()
    {
        if !known_files.contains(&file) {
            known_files.push(file);
        }
    }
    let known_hosts = KnownHosts::load(known_files).map_err(|e| ConnectError::Read {
        path: "known_hosts".into(),
        message: e.to_string(),
    })?;
    let mut optional: Vec<PathBuf> = Vec::new();
    if let Some(identity) = &project.user.identity {
        optional.push(crate::config::expand_home(&project.user.dir, identity));
    }
    for target in targets {
        optional.extend(ssh_config.resolve(&target.host).identity_files);
        let jumps = ssh_config
            .resolve(&target.host)
            .proxy_jump
            .unwrap_or_default();
        for jump in jumps.iter().filter_map(|j| Target::parse(j).ok()) {
            optional.extend(ssh_config.resolve(&jump.host).identity_files);
        }
    }
    optional.extend(default_identity_files());
    // The key weft's own machines accept, once weft has made one.
    optional.push(crate::cloud::data_dir().join("keys/id_ed25519"));
    let identities = Identities::load(&args.identities, &optional).map_err(ConnectError::from)?;
    let default_user = args
        .user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into());
    Ok(SshSettings {
        known_hosts: std::sync::Mutex::new(known_hosts),
        policy: match args.host_key_policy {
            HostKeyPolicyArg::Strict => HostKeyPolicy::Strict,
            HostKeyPolicyArg::AcceptNew => HostKeyPolicy::AcceptNew,
        },
        identities,
        ssh_config,
        default_user,
        connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
        retries: 2,
        opening: Semaphore::new(64),
        keepalive: Duration::from_secs(15),
    })
}

/// The sudo settings: `--become`, and the password asked once or taken from the environment.
pub fn privilege(args: &FanoutArgs) -> Result<Privilege> {
    let sudo_password = if args.ask_sudo_pass {
        Some(
            rpassword::prompt_password("sudo password: ")
                .map_err(|e| ConnectError::SudoPrompt(e.to_string()))?,
        )
    } else {
        std::env::var(SUDO_PASSWORD_ENV)
            .ok()
            .filter(|p| !p.is_empty())
    };
    Ok(Privilege {
        become_user: args.become_root.then(|| args.become_user.clone()),
        sudo_password,
    })
}

/// Everything a fan-out needs beside the job.
pub struct Fanout<'a> {
    /// Where the command runs.
    pub ctx: &'a Context,
    /// The project.
    pub project: &'a Project,
    /// Templates of the project's layers.
    pub templates: Arc<Templates>,
    /// The hosts.
    pub selection: Selection,
    /// `--check`.
    pub check: bool,
    /// `--diff`.
    pub diff: bool,
    /// `--break-lock`.
    pub break_lock: bool,
    /// Env-level actions for controller goals.
    pub orchestrator: Option<Arc<dyn crate::exec::orchestrator::Orchestrator>>,
}

impl<'a> Fanout<'a> {
    /// A fan-out over `selection` that changes what it must (no `--check`, no `--diff`).
    pub fn new(
        ctx: &'a Context,
        project: &'a Project,
        layers: crate::layers::Layers,
        selection: Selection,
    ) -> Self {
        Fanout {
            ctx,
            project,
            templates: Arc::new(Templates::new(layers)),
            selection,
            check: false,
            diff: false,
            break_lock: false,
            orchestrator: None,
        }
    }
}

/// Runs `job` over the selection and prints the summary; exit 1 when any host failed.
pub fn execute(
    fanout: Fanout<'_>,
    job: Job,
    connect: &ConnectArgs,
    args: &FanoutArgs,
) -> Result<i32> {
    let max_fail = args
        .max_fail
        .as_deref()
        .map(MaxFail::parse)
        .transpose()
        .map_err(ConnectError::MaxFail)?;
    let privilege = privilege(args)?;
    let connector = connector(fanout.project, &fanout.selection, connect)?;
    let width = fanout
        .selection
        .hosts
        .iter()
        .map(|h| h.name.len())
        .chain([if job.per_host() { 0 } else { CONTROLLER.len() }])
        .max()
        .unwrap_or(0);
    let secrets = privilege.sudo_password.iter().cloned().collect();
    let color = fanout.ctx.color && std::io::stdout().is_terminal();
    let output = Output::new(args.json, color, width, secrets);
    let plan = RunPlan {
        job,
        inventory: fanout.selection.inventory,
        hosts: fanout.selection.hosts,
        connector,
        check: fanout.check,
        diff: fanout.diff,
        break_lock: fanout.break_lock,
        parallel: args.parallel,
        serial: args.serial,
        max_fail,
        privilege,
        output: output.clone(),
        templates: fanout.templates,
        root: fanout.project.root.clone(),
        color: fanout.ctx.color,
        orchestrator: fanout.orchestrator,
    };
    crate::exec::interrupt::install();
    let outcomes = runner::run(plan)?;
    output.summary(&outcomes);
    if crate::exec::interrupt::interrupted() {
        Ok(crate::exec::interrupt::EXIT_INTERRUPTED)
    } else if outcomes.iter().any(|o| o.status.is_failure()) {
        Ok(EXIT_FAILED)
    } else {
        Ok(EXIT_OK)
    }
}
