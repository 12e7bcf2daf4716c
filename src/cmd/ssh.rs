//! `weft ssh`: a shell on one host (through OpenSSH's client, for a real terminal), or one
//! command there through weft's own connection.

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
        let connector =
            Connector::ssh(&options, &[(spec.name.as_str(), spec.address.as_str())], 1)?;
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
    // As with OpenSSH's client: weft's input goes to the command until it ends (or the
    // command does), and its output comes back byte for byte, binary or not.
    let result = runtime.block_on(async {
        transport.connect().await?;
        let mut stdin = stdin_stream();
        let mut stdout = Blocking(std::io::stdout());
        let mut stderr = Blocking(std::io::stderr());
        let pipe = Pipe {
            input: Some(&mut stdin),
            input_may_remain: true,
            output: Some(&mut stdout),
            error: Some(&mut stderr),
        };
        transport.exec_piped(&request, pipe, &NoLines).await
    });
    match result {
        Ok(out) => Ok(out.code.clamp(0, 255)),
        Err(err) => {
            eprintln!("weft: {}: {err}", spec.name);
            Ok(crate::error::EXIT_FAILED)
        }
    }
}

/// weft's standard input as an async stream. It is read on a thread of its own, because a
/// blocking read (a terminal that never sends EOF) cannot be interrupted: when the command
/// ends first, that thread is simply left behind, and the process exits without it.
struct StdinStream {
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    pending: Vec<u8>,
    at: usize,
}

fn stdin_stream() -> StdinStream {
    use std::io::Read;
    let (sender, chunks) = tokio::sync::mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let chunk = match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => Ok(buf[..n].to_vec()),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => Err(err),
            };
            let failed = chunk.is_err();
            if sender.blocking_send(chunk).is_err() || failed {
                break;
            }
        }
    });
    StdinStream {
        chunks,
        pending: Vec::new(),
        at: 0,
    }
}

impl tokio::io::AsyncRead for StdinStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.at == this.pending.len() {
            match this.chunks.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                // The reading thread ended: EOF.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(err)),
                Poll::Ready(Some(Ok(chunk))) => {
                    this.pending = chunk;
                    this.at = 0;
                }
            }
        }
        let n = (this.pending.len() - this.at).min(buf.remaining());
        buf.put_slice(&this.pending[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

/// weft's standard output or error as an async writer, written as the bytes come: a slow
/// reader holds the command back, as a pipe would. (tokio's own wrappers are not built in.)
struct Blocking<W>(W);

impl<W: std::io::Write + Unpin> tokio::io::AsyncWrite for Blocking<W> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(self.get_mut().0.write(buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(self.get_mut().0.flush())
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}
