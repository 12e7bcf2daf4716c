//! `weft ssh`: a shell on one host (through OpenSSH's client, for a real terminal), or one
//! command there through weft's own connection.

use std::os::fd::AsFd;
use std::process::Command;

use miette::{Diagnostic, Result};
use thiserror::Error;

use super::settings;
use super::Context;
use crate::cli::SshArgs;
use crate::cloud::env::by_ordinal;
use crate::config::ConnectorKind;
use crate::inventory::{env_inventory, HostFilter, HostSpec, Selection};
use crate::transport::ssh::{ConnectError, ConnectOptions, HostKeyPolicy, Target};
use crate::transport::{Connector, ExecRequest, NoLines, Pipe, SUDO_PASSWORD_ENV};

/// A target `weft ssh` cannot pick one host from.
#[derive(Debug, Error, Diagnostic)]
pub enum SshTargetError {
    /// The ordinal is past the role's hosts.
    #[error("role `{role}` has {count} host(s); ordinal {ordinal} is out of range")]
    #[diagnostic(
        code(weft::ssh::ordinal),
        help("ordinals start at 0; -1 is the last host")
    )]
    Ordinal {
        role: String,
        count: usize,
        ordinal: i64,
    },
    /// The shell could not start.
    #[error("cannot start `{program}`: {message}")]
    #[diagnostic(code(weft::ssh::spawn))]
    Spawn { program: String, message: String },
    /// A standard stream of weft's cannot be handed to the command (a descriptor limit).
    #[error("cannot hand weft's input and output to the command: {0}")]
    #[diagnostic(code(weft::ssh::streams))]
    Streams(std::io::Error),
}

/// Opens a shell on the target, or runs the command after `--` and exits with its code.
pub fn ssh(ctx: &Context, args: SshArgs) -> Result<i32> {
    let (project, _) = ctx.project()?;
    let inventory = env_inventory(&project, args.target.env.as_deref())?;
    let host = match inventory.roles.get(&args.target.target) {
        Some(members) if !inventory.hosts.iter().any(|h| h.name == args.target.target) => {
            let ordinal = args.target.ordinal.unwrap_or(0);
            let name = by_ordinal(members, ordinal).ok_or_else(|| SshTargetError::Ordinal {
                role: args.target.target.clone(),
                count: members.len(),
                ordinal,
            })?;
            name.clone()
        }
        _ => args.target.target.clone(),
    };
    let filter = HostFilter {
        hosts: vec![host],
        ..HostFilter::default()
    };
    let selection = Selection::within(inventory, &filter)?;
    let spec = selection.hosts[0].clone();
    let options = settings::connect_options(&project, &args.connect);
    let local = selection.inventory.connector == ConnectorKind::Local;
    if !args.command.is_empty() {
        let command = args.command.join(" ");
        if local {
            // This machine: the command gets weft's own input and output, as a shell would
            // give them, without weft's secrets (as the local connector runs commands).
            let mut shell = Command::new("sh");
            shell
                .arg("-c")
                .arg(&command)
                .current_dir(&project.root)
                .env_remove(crate::transport::ssh::auth::PASSPHRASE_ENV)
                .env_remove(SUDO_PASSWORD_ENV);
            return interactive(&mut shell, "sh");
        }
        let connector = Connector::ssh(
            &options,
            &[(spec.name.as_str(), spec.address.as_str())],
            1,
            Default::default(),
        )?;
        return run_one(connector, &spec, &command);
    }
    if local {
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
        return interactive(Command::new(&shell).current_dir(&project.root), &shell);
    }
    let target = Target::parse(&spec.address).map_err(|message| ConnectError::Address {
        host: spec.name.clone(),
        message,
    })?;
    interactive(&mut openssh(&options, &target), "ssh")
}

/// The OpenSSH client command that reaches `target` as weft's own connection would: the same
/// known_hosts files (weft's machines' keys among them), identities, config, user and policy.
fn openssh(options: &ConnectOptions, target: &Target) -> Command {
    let mut command = Command::new("ssh");
    if let Some(port) = target.port {
        command.arg("-p").arg(port.to_string());
    }
    let identities = options
        .identities
        .iter()
        .chain(&options.config_identity)
        .chain(options.machine_identity.iter().filter(|p| p.exists()));
    for identity in identities {
        command.arg("-i").arg(ssh_path(identity));
    }
    if let Some(config) = options.ssh_config.as_ref().filter(|p| p.exists()) {
        command.arg("-F").arg(config);
    }
    // One option value lists every file: each is quoted, so a path with a space stays whole.
    let files: Vec<String> = options
        .known_hosts
        .iter()
        .map(|p| format!("\"{}\"", ssh_path(p)))
        .collect();
    command
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", files.join(" ")));
    let policy = match options.policy {
        HostKeyPolicy::Strict => "yes",
        HostKeyPolicy::AcceptNew => "accept-new",
    };
    command
        .arg("-o")
        .arg(format!("StrictHostKeyChecking={policy}"));
    command.arg("-o").arg(format!(
        "ConnectTimeout={}",
        options.connect_timeout.as_secs().max(1)
    ));
    let user = target.user.clone().or_else(|| options.user.clone());
    if let Some(user) = user {
        command.arg("-l").arg(user);
    }
    command.arg(&target.host);
    command
}

/// `path` as OpenSSH reads a file option: `%` starts a token there, so it is doubled.
fn ssh_path(path: &std::path::Path) -> String {
    path.display().to_string().replace('%', "%%")
}

fn interactive(command: &mut Command, program: &str) -> Result<i32> {
    let status = command.status().map_err(|e| SshTargetError::Spawn {
        program: program.to_string(),
        message: e.to_string(),
    })?;
    Ok(status.code().unwrap_or(1))
}

fn run_one(connector: Connector, spec: &HostSpec, command: &str) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::exec::runner::RunError::from)?;
    let transport =
        connector
            .transport(&spec.address)
            .map_err(|message| ConnectError::Address {
                host: spec.name.clone(),
                message,
            })?;
    let request = ExecRequest {
        command: command.to_string(),
        ..ExecRequest::default()
    };
    let mut stdin = std_stream(std::io::stdin().as_fd())?;
    let mut stdout = std_stream(std::io::stdout().as_fd())?;
    let mut stderr = std_stream(std::io::stderr().as_fd())?;
    // As with OpenSSH's client: weft's input goes to the command until it ends (or the
    // command does), and its output comes back byte for byte, binary or not.
    let result = runtime.block_on(async {
        use tokio::io::AsyncWriteExt;
        transport.connect().await?;
        let pipe = Pipe {
            input: Some(&mut stdin),
            input_may_remain: true,
            output: Some(&mut stdout),
            error: Some(&mut stderr),
        };
        let result = transport.exec_piped(&request, pipe, &NoLines).await;
        // tokio writes on a blocking thread: what a failed command wrote is out before weft ends.
        let _ = stdout.flush().await;
        let _ = stderr.flush().await;
        result
    });
    // tokio reads stdin on a blocking thread that cannot be interrupted (a terminal that never
    // sends EOF): when the command ends first, that read is left behind rather than waited for.
    runtime.shutdown_background();
    match result {
        Ok(out) => Ok(out.code.clamp(0, 255)),
        Err(err) => {
            eprintln!("weft: {}: {err}", spec.name);
            Ok(crate::error::EXIT_FAILED)
        }
    }
}

/// One of weft's standard streams as a tokio file over a copy of its descriptor: reads and writes
/// run on tokio's blocking threads, as `tokio::io::stdin()` does. (tokio's `io-std` feature
/// would give the same, but turning it on rebuilds every crate above tokio, aws-sdk-ec2 too.)
fn std_stream(fd: std::os::fd::BorrowedFd<'_>) -> Result<tokio::fs::File> {
    let fd = fd.try_clone_to_owned().map_err(SshTargetError::Streams)?;
    let file = std::fs::File::from(fd);
    Ok(tokio::fs::File::from_std(file))
}
