//! Why an SSH connection or step failed, in words that say what to do about it.

use std::path::PathBuf;

use thiserror::Error;

/// An SSH failure on one host.
#[derive(Debug, Error)]
pub enum SshError {
    /// TCP could not connect.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: std::io::Error,
    },
    /// A step of the connection got no answer in time: the host accepted it and stalled (or
    /// dropped the packets, for the TCP connection).
    #[error("{target}: no answer to {step} within {seconds}s")]
    Stalled {
        target: String,
        step: Step,
        seconds: u64,
    },
    /// The kept shell did not answer its greeting in time. The first command goes out with
    /// the greeting (issue 33) and the channel was closed at the deadline, so it did not run,
    /// unless the shell answered at that very moment or its answer never reached weft (sshd
    /// or the network stalled after the shell started).
    #[error(
        "{target}: no answer to the start of the kept shell within {seconds}s; `{command}`, sent \
         with it, was stopped and did not run, unless the shell started just as the time ran out \
         or its answer was lost on the way"
    )]
    ShellStalled {
        target: String,
        command: String,
        seconds: u64,
    },
    /// The host's key differs from the recorded one.
    #[error(
        "the host key of {target} does not match the one in {}:{line}; it may have been \
         reinstalled, or someone may be intercepting the connection. If the change is expected, \
         remove the old key with `{forget}`",
        file.display()
    )]
    HostKeyChanged {
        target: String,
        file: PathBuf,
        line: usize,
        forget: String,
    },
    /// The host is not in any known_hosts file and the policy is strict.
    #[error(
        "the host key of {target} is not known (checked {files}); add it to known_hosts, or run \
         once with `--host-key-policy accept-new` to trust it on first use"
    )]
    HostKeyUnknown { target: String, files: String },
    /// The host's key is marked `@revoked`.
    #[error("the host key of {target} is revoked in {}:{line}", file.display())]
    HostKeyRevoked {
        target: String,
        file: PathBuf,
        line: usize,
    },
    /// A new key could not be recorded under `accept-new`.
    #[error("cannot record the host key of {target}: {message}")]
    HostKeyRecord { target: String, message: String },
    /// No identity was accepted.
    #[error("{target} refused every key offered ({tried})")]
    Auth {
        target: String,
        user: String,
        tried: String,
    },
    /// An identity file could not be used.
    #[error("cannot load the identity `{}`: {message}", path.display())]
    Key { path: PathBuf, message: String },
    /// The connection ended while a command ran, before the command reported its exit.
    #[error(
        "connection to {target} lost while running `{command}`; the command may still be \
         running on {target}: check there before running it again"
    )]
    ConnectionLost { target: String, command: String },
    /// The connection had already ended when a step was to start, so the step never ran.
    #[error(
        "connection to {target} is lost (it ended during an earlier step); {step} did not run"
    )]
    Closed { target: String, step: String },
    /// A command's streamed output could not be written where it was going.
    #[error("cannot write the output of a command on {target}: {source}")]
    Stream {
        target: String,
        #[source]
        source: std::io::Error,
    },
    /// A command given a stream on its input ended before it read all of it.
    #[error("`{command}` on {target} ended before it read all its input")]
    InputNotRead { target: String, command: String },
    /// The SSH protocol failed.
    #[error("ssh: {0}")]
    Protocol(String),
    /// SFTP failed.
    #[error("sftp: {0}")]
    Sftp(String),
    /// The host's SFTP server ended or refused before the file transfer started.
    #[error(
        "{target} has no working SFTP server (sshd's `Subsystem sftp`), which the file transfer \
         needs: {reason}"
    )]
    NoSftp { target: String, reason: String },
}

/// A network step that has a deadline of its own, beside each command's (`--command-timeout`):
/// the steps of a connection share `--connect-timeout`, and the kept shell and the file
/// transfer must start within it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The TCP connection (to the host, or to the first jump host).
    Tcp,
    /// A channel through a jump host to the next hop.
    Jump,
    /// The SSH handshake: versions, key exchange, the host key.
    Handshake,
    /// Authentication.
    Login,
    /// The SFTP session's start: a channel, the subsystem, the protocol's version.
    FileTransfer,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Tcp => "the TCP connection",
            Step::Jump => "the channel through the jump host",
            Step::Handshake => "the SSH handshake",
            Step::Login => "the login",
            Step::FileTransfer => "the start of the file transfer (SFTP)",
        })
    }
}

impl From<russh::Error> for SshError {
    fn from(err: russh::Error) -> Self {
        SshError::Protocol(err.to_string())
    }
}

impl From<russh_sftp::client::error::Error> for SshError {
    fn from(err: russh_sftp::client::error::Error) -> Self {
        SshError::Sftp(err.to_string())
    }
}

impl SshError {
    /// Whether trying again may help (the host may still be booting).
    pub fn is_transient(&self) -> bool {
        match self {
            SshError::Connect { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::InvalidInput
            ),
            // A host still booting drops the first packets; a busy one (sshd forks and re-execs
            // for every connection) may miss one handshake's deadline and make the next.
            SshError::Stalled {
                step: Step::Tcp | Step::Handshake,
                ..
            } => true,
            _ => false,
        }
    }

    /// How many times this failure is retried, of the `retries` transient failures get: a
    /// host that accepted the connection and then stalled gets one more chance, not all.
    pub fn retries(&self, retries: u32) -> u32 {
        match self {
            SshError::Stalled {
                step: Step::Handshake,
                ..
            } => retries.min(1),
            _ => retries,
        }
    }
}
