//! Command-line flags → the run settings and run context the rest of weft sees; the sudo
//! password is asked here, once per invocation.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use miette::{Diagnostic, Result};
use thiserror::Error;

use super::Context;
use crate::cli::{ConnectArgs, FanoutArgs, HostKeyPolicyArg, Select};
use crate::exec::goals::GoalEngine;
use crate::exec::launch::RunContext;
use crate::exec::orchestrate::EnvOrchestrator;
use crate::exec::output::{Output, Style, Verbosity};
use crate::exec::session::Privilege;
use crate::exec::settings::{
    Answer, Confirm, FanoutLimits, MaxFail, RunSettings, DEFAULT_PARALLEL,
};
use crate::inventory::{HostFilter, Vars};
use crate::layers::Layers;
use crate::project::Project;
use crate::template::Templates;
use crate::transport::ssh::{ConnectOptions, HostKeyPolicy};

use crate::transport::SUDO_PASSWORD_ENV;

/// Flags that do not make sense, found before any host is touched.
#[derive(Debug, Error, Diagnostic)]
pub enum FlagError {
    /// `--max-fail` does not parse.
    #[error("--max-fail {0}")]
    #[diagnostic(code(weft::connect::max_fail))]
    MaxFail(String),
    /// The sudo password prompt failed.
    #[error("cannot read the sudo password: {0}")]
    #[diagnostic(code(weft::connect::sudo), help("set ${SUDO_PASSWORD_ENV} instead"))]
    SudoPrompt(String),
}

fn home_path(rel: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(rel))
}

/// `-e/-r/-H` as a host filter.
pub fn filter(select: &Select) -> HostFilter {
    HostFilter {
        env: select.env.clone(),
        roles: select.roles.clone(),
        hosts: select.hosts.clone(),
    }
}

/// How to connect: flags, then the user config, then `~/.ssh`, then weft's own machine files.
pub fn connect_options(project: &Project, args: &ConnectArgs) -> ConnectOptions {
    let user_known = project
        .user
        .known_hosts
        .as_ref()
        .map(|p| crate::config::expand_home(&project.user.dir, p));
    let mut known_hosts: Vec<PathBuf> = Vec::new();
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
        if !known_hosts.contains(&file) {
            known_hosts.push(file);
        }
    }
    ConnectOptions {
        identities: args.identities.clone(),
        config_identity: project
            .user
            .identity
            .as_ref()
            .map(|p| crate::config::expand_home(&project.user.dir, p)),
        machine_identity: Some(crate::cloud::data_dir().join("keys/id_ed25519")),
        known_hosts,
        policy: match args.host_key_policy {
            HostKeyPolicyArg::Strict => HostKeyPolicy::Strict,
            HostKeyPolicyArg::AcceptNew => HostKeyPolicy::AcceptNew,
        },
        ssh_config: args.ssh_config.clone().or_else(|| home_path(".ssh/config")),
        connect_timeout: Duration::from_secs(args.connect_timeout),
        user: args.user.clone(),
    }
}

/// The sudo settings: `--become`, and the password asked once or taken from the environment.
fn privilege(args: &FanoutArgs) -> Result<Privilege> {
    let sudo_password = if args.ask_sudo_pass {
        Some(
            rpassword::prompt_password("sudo password: ")
                .map_err(|e| FlagError::SudoPrompt(e.to_string()))?,
        )
    } else {
        std::env::var(SUDO_PASSWORD_ENV)
            .ok()
            .filter(|p| !p.is_empty())
    };
    if let Some(password) = &sudo_password {
        crate::logging::hide(password);
    }
    Ok(Privilege {
        become_user: args.become_root.then(|| args.become_user.clone()),
        sudo_password,
    })
}

/// What changes how a goal run behaves beyond connection and fan-out flags.
#[derive(Debug, Default)]
pub struct GoalFlags {
    /// `--check`.
    pub check: bool,
    /// `--diff`.
    pub diff: bool,
    /// `--break-lock`.
    pub break_lock: bool,
    /// `--rebuild`.
    pub rebuild: bool,
    /// `--scrub`.
    pub scrub: bool,
    /// `--set` vars.
    pub vars: Vars,
    /// `--timings`.
    pub timings: bool,
    /// `--timings-html FILE`.
    pub timings_html: Option<std::path::PathBuf>,
    /// `--yes`: destructive env actions go on without asking.
    pub yes: bool,
}

/// Asks on the terminal whether to go on; without one, the answer is `NoTerminal`. The
/// progress bar is cleared and held still until the answer, so the question stays on screen.
fn ask_terminal(question: &str, items: &[String]) -> Answer {
    crate::logging::aside(|| ask_now(question, items))
}

fn ask_now(question: &str, items: &[String]) -> Answer {
    eprintln!("weft: {question}");
    for item in items {
        eprintln!("  {item}");
    }
    if !std::io::stdin().is_terminal() {
        return Answer::NoTerminal;
    }
    eprint!("go on? [y/N] ");
    let _ = std::io::stderr().flush();
    // Ctrl-C while the question waits is a no: the run is stopping anyway, and the read
    // itself would go on waiting for Enter.
    let (typed, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = typed.send(line);
    });
    let answer = loop {
        match answer.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => break line,
            Err(RecvTimeoutError::Timeout) if !crate::exec::interrupt::any_interrupted() => {}
            Err(_) => {
                eprintln!();
                break String::new();
            }
        }
    };
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Answer::Yes
    } else {
        Answer::No
    }
}

/// The run settings of this invocation.
pub fn run_settings(
    ctx: &Context,
    project: &Project,
    connect: &ConnectArgs,
    fanout: &FanoutArgs,
    flags: GoalFlags,
) -> Result<RunSettings> {
    let max_fail = fanout
        .max_fail
        .as_deref()
        .map(MaxFail::parse)
        .transpose()
        .map_err(FlagError::MaxFail)?;
    Ok(RunSettings {
        connect: connect_options(project, connect),
        limits: FanoutLimits {
            parallel: fanout.parallel.unwrap_or(DEFAULT_PARALLEL),
            grow: fanout.parallel.is_none(),
            serial: fanout.serial,
            max_fail,
            command_timeout: (fanout.command_timeout > 0)
                .then(|| Duration::from_secs(fanout.command_timeout)),
            host_timeout: (fanout.host_timeout > 0)
                .then(|| Duration::from_secs(fanout.host_timeout)),
        },
        privilege: privilege(fanout)?,
        check: flags.check,
        diff: flags.diff,
        json: fanout.json,
        color: ctx.color_output,
        verbosity: match (ctx.quiet, ctx.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, _) => Verbosity::Verbose,
        },
        vars: flags.vars,
        break_lock: flags.break_lock,
        rebuild: flags.rebuild,
        scrub: flags.scrub,
        confirm: if flags.yes {
            Confirm::yes()
        } else {
            Confirm::new(Arc::new(ask_terminal))
        },
        timings: flags.timings,
        timings_html: flags.timings_html,
    })
}

/// The run context of this invocation; `engine` when it runs goals.
pub fn run_context(
    project: Project,
    layers: Layers,
    engine: Option<Arc<dyn GoalEngine>>,
    settings: RunSettings,
) -> Arc<RunContext> {
    let style = Style {
        json: settings.json,
        color: settings.color,
        verbosity: settings.verbosity,
        progress_bar: std::io::stderr().is_terminal() && settings.verbosity != Verbosity::Quiet,
        check: settings.check,
    };
    let secrets = settings.privilege.sudo_password.iter().cloned().collect();
    Arc::new(RunContext::new(
        Arc::new(project),
        Arc::new(Templates::new(layers)),
        engine,
        Arc::new(settings),
        Output::new(style, secrets),
        EnvOrchestrator::actions,
    ))
}
