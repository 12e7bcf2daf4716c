//! `weft ssh`: a shell on one host (through OpenSSH's client, for a real terminal), or one
//! command there through weft's own connection.

use std::process::Command;

use miette::{Diagnostic, Result};
use thiserror::Error;

use super::fanout::{self, ConnectError};
use super::Context;
use crate::cli::{HostKeyPolicyArg, Select, SshArgs};
use crate::config::ConnectorKind;
use crate::exec::runner::Connector;
use crate::transport::ssh::Target;
use crate::transport::{ExecRequest, LineSink, Stream};

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
}

struct Raw;

impl LineSink for Raw {
    fn line(&self, stream: Stream, line: &str) {
        match stream {
            Stream::Stdout => println!("{line}"),
            Stream::Stderr => eprintln!("{line}"),
        }
    }
}

/// Opens a shell on the target, or runs the command after `--` and exits with its code.
pub fn ssh(ctx: &Context, args: SshArgs) -> Result<i32> {
    let (project, _) = ctx.project()?;
    let inventory = fanout::env_inventory(&project, args.target.env.as_deref())?;
    let host = match inventory.roles.get(&args.target.target) {
        Some(members) if !inventory.hosts.iter().any(|h| h.name == args.target.target) => {
            let ordinal = args.target.ordinal.unwrap_or(0);
            let name =
                super::by_ordinal(members, ordinal).ok_or_else(|| SshTargetError::Ordinal {
                    role: args.target.target.clone(),
                    count: members.len(),
                    ordinal,
                })?;
            name.clone()
        }
        _ => args.target.target.clone(),
    };
    let select = Select {
        env: None,
        roles: Vec::new(),
        hosts: vec![host],
    };
    let selection = fanout::select_in(inventory, &select)?;
    let spec = selection.hosts[0].clone();
    if !args.command.is_empty() {
        let connector = fanout::connector(&project, &selection, &args.connect)?;
        return run_one(connector, &spec, &args.command.join(" "));
    }
    if selection.inventory.connector == ConnectorKind::Local {
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
        return interactive(Command::new(&shell).current_dir(&project.root), &shell);
    }
    let target = Target::parse(&spec.address).map_err(|message| ConnectError::Address {
        host: spec.name.clone(),
        message,
    })?;
    let mut command = Command::new("ssh");
    if let Some(port) = target.port {
        command.arg("-p").arg(port.to_string());
    }
    for identity in &args.connect.identities {
        command.arg("-i").arg(identity);
    }
    if let Some(config) = &args.connect.ssh_config {
        command.arg("-F").arg(config);
    }
    if let Some(known) = &args.connect.known_hosts {
        let mut files = known.display().to_string();
        if let Some(home) = std::env::var_os("HOME") {
            files.push_str(&format!(" {}/.ssh/known_hosts", home.to_string_lossy()));
        }
        command.arg("-o").arg(format!("UserKnownHostsFile={files}"));
    }
    let policy = match args.connect.host_key_policy {
        HostKeyPolicyArg::Strict => "yes",
        HostKeyPolicyArg::AcceptNew => "accept-new",
    };
    command
        .arg("-o")
        .arg(format!("StrictHostKeyChecking={policy}"));
    let user = target.user.clone().or_else(|| args.connect.user.clone());
    if let Some(user) = user {
        command.arg("-l").arg(user);
    }
    command.arg(&target.host);
    interactive(&mut command, "ssh")
}

fn interactive(command: &mut Command, program: &str) -> Result<i32> {
    let status = command.status().map_err(|e| SshTargetError::Spawn {
        program: program.to_string(),
        message: e.to_string(),
    })?;
    Ok(status.code().unwrap_or(1))
}

fn run_one(connector: Connector, spec: &crate::inventory::HostSpec, command: &str) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::exec::runner::RunError::from)?;
    let transport = connector
        .transport(spec)
        .map_err(|message| ConnectError::Address {
            host: spec.name.clone(),
            message,
        })?;
    let request = ExecRequest {
        command: command.to_string(),
        ..ExecRequest::default()
    };
    let result = runtime.block_on(async {
        transport.connect().await?;
        transport.exec(&request, &Raw).await
    });
    match result {
        Ok(out) => Ok(out.code.clamp(0, 255)),
        Err(err) => {
            eprintln!("weft: {}: {err}", spec.name);
            Ok(crate::error::EXIT_FAILED)
        }
    }
}
