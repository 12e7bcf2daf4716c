//! One step on a host, as sessions and operations share it: how a command runs
//! (`RunOptions`), what runs it (`Commands`, which `HostSession` implements) and why a step fails
//! (`HostError`, with a dump's `DumpError`). A leaf: it imports nothing else of `exec`, so the
//! files that run steps need not import each other for it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::template::TemplateError;
use crate::transport::{ExecOutput, TransportError};

/// What a step needs of the host it runs on: commands, one at a time. `session::HostSession`
/// runs them with everything a goal's session adds (`--check`, privileges, deadlines, output).
pub trait Commands {
    /// Runs a shell command; `None` when `--check` skipped it.
    fn run(&self, command: &str, options: &RunOptions) -> Result<Option<ExecOutput>, HostError>;
}

/// Why a host step failed.
#[derive(Debug, Error)]
pub enum HostError {
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The run was interrupted (Ctrl-C or SIGTERM) before or during this step ("before `x`").
    #[error("interrupted {0}")]
    Interrupted(String),
    /// The host's `--host-timeout` passed before or during this step.
    #[error("--host-timeout ({}s) passed {step}", .limit.as_secs())]
    HostTimeout {
        /// The flag's value.
        limit: Duration,
        /// When: "during `cmd`", "before `cmd`".
        step: String,
    },
    /// A command exited non-zero and the script did not allow it.
    #[error("`{command}` exited with {code}{}", stderr_tail(.stderr))]
    CommandFailed {
        command: String,
        code: i32,
        stderr: String,
    },
    /// A template failed.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A dump could not be written, or a dump to load is missing or corrupt.
    #[error(transparent)]
    Dump(#[from] DumpError),
    /// A local file to upload could not be read.
    #[error("cannot read local `{path}`: {source}")]
    LocalRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A validator (`validate` of `file` or `template`) rejected new content: the file was
    /// left as it was.
    #[error("the new `{path}` was rejected by validation (`{command}`) and left as it was{}", output_tail(.output))]
    Rejected {
        /// The file.
        path: String,
        /// The validator, as the script gave it.
        command: String,
        /// What the validator printed.
        output: String,
    },
    /// A step would use a secret of weft.toml that could not be resolved; it did not run.
    #[error("{0}")]
    MissingSecret(String),
    /// An operation refused or could not do what it was asked, without a failed command
    /// (a bad pattern, an unknown fact, a directory where a link should be, ...).
    #[error("{op}: {message}")]
    Operation {
        /// The operation and its subject, e.g. `link /srv/app/current`.
        op: String,
        /// Why.
        message: String,
    },
}

impl HostError {
    /// A short name of the kind of failure, as scripts read it in `err.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::Transport(_) => "transport",
            HostError::Interrupted(_) => "interrupted",
            HostError::HostTimeout { .. } => "host_timeout",
            HostError::CommandFailed { .. } => "command",
            HostError::Template(_) => "template",
            HostError::Dump(_) => "dump",
            HostError::LocalRead { .. } => "local_read",
            HostError::Rejected { .. } => "rejected",
            HostError::Operation { .. } => "operation",
            HostError::MissingSecret(_) => "secret",
        }
    }

    /// The exit code of a failed command; `None` for every other failure.
    pub fn code(&self) -> Option<i32> {
        match self {
            HostError::CommandFailed { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The command that failed or rejected: a failed command, or a validator.
    pub fn command(&self) -> Option<&str> {
        match self {
            HostError::CommandFailed { command, .. } | HostError::Rejected { command, .. } => {
                Some(command)
            }
            _ => None,
        }
    }
}

fn output_tail(output: &str) -> String {
    let output = output.trim();
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

fn stderr_tail(stderr: &str) -> String {
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    if tail.is_empty() {
        String::new()
    } else {
        let lines: Vec<&str> = tail.into_iter().rev().collect();
        format!(": {}", lines.join(" / "))
    }
}

/// How `run` treats a command.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// A non-zero exit fails the goal.
    pub fail_on_error: bool,
    /// The command only reads, so it also runs under `--check`.
    pub check_safe: bool,
    /// Keep the output to the script instead of printing it live.
    pub quiet: bool,
    /// Kill the command after this long.
    pub timeout: Option<Duration>,
    /// Text fed to the command's standard input.
    pub stdin: Option<String>,
    /// Run it through sudo as this user.
    pub sudo: Option<String>,
    /// Run it even after an interrupt: cleanup such as releasing a lock.
    pub always: bool,
    /// Under sudo, keep the command's text out of the host's process list, as a command with
    /// a secret is (read from standard input by sudo's shell, on a channel of its own).
    pub carried: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            fail_on_error: true,
            check_safe: false,
            quiet: false,
            timeout: None,
            stdin: None,
            sudo: None,
            always: false,
            carried: false,
        }
    }
}

/// Why a dump could not be written or a file cannot be loaded.
#[derive(Debug, Error)]
pub enum DumpError {
    /// A local file or folder could not be written.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A local file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The dump has no checksum beside it.
    #[error(
        "`{}` has no checksum file beside it (`{}.sha256`): it is not a complete dump, so \
         nothing was loaded",
        path.display(),
        path.display()
    )]
    NoChecksum { path: PathBuf },
    /// The checksum file holds no SHA-256.
    #[error("`{}.sha256` holds no SHA-256, so nothing was loaded", path.display())]
    BadChecksum { path: PathBuf },
    /// The bytes differ from those the dump wrote.
    #[error(
        "`{}` does not match its checksum (sha256 {actual}, {expected} recorded): the dump is \
         corrupt or truncated, so nothing was loaded",
        path.display()
    )]
    Mismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}
