//! Transports: how commands and files reach a host. Plain async Rust, no script types.

pub mod capture;
pub mod connector;
pub mod download;
#[cfg(test)]
pub mod fake;
pub mod local;
pub mod round_trip;
pub mod ssh;

pub use connector::Connector;
pub use download::{DownloadOptions, Downloaded};

/// The environment variable holding the sudo password.
pub const SUDO_PASSWORD_ENV: &str = "WEFT_SUDO_PASSWORD";
pub use local::LocalTransport;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};

/// The whole second a file written now is stamped with (see `write_file`): the controller's
/// clock, which `exec::remote_sums` reads the same way.
pub fn stamp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Receives a command's output line by line while it runs.
pub trait LineSink: Send + Sync {
    /// One complete line, without its newline.
    fn line(&self, stream: Stream, line: &str);
}

/// A command to run through the host's shell.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The shell command line, already quoted.
    pub command: String,
    /// Bytes fed to the command's standard input.
    pub stdin: Option<Vec<u8>>,
    /// The command is killed after this long.
    pub timeout: Option<Duration>,
    /// What else ends the command early (Ctrl-C), as its timeout does.
    pub cancel: Option<Cancel>,
}

/// An event from outside that ends a command early, as its timeout does: the command gets TERM
/// (with what it started) and the step fails. Ctrl-C is one (`exec::interrupt::Interrupt::cancel`).
#[derive(Debug, Clone)]
pub struct Cancel {
    /// When the event came; `None` until it does.
    since: tokio::sync::watch::Receiver<Option<std::time::Instant>>,
    /// When the step started.
    start: std::time::Instant,
    /// How long the step may still run after the event, or after its start when later.
    grace: Duration,
    /// ... but never longer than this after the event.
    cap: Duration,
}

impl Cancel {
    /// Ends a step that started at `start` once `since` holds a time: `grace` after that time
    /// or after `start`, whichever is later, and at most `cap` after that time.
    pub fn new(
        since: tokio::sync::watch::Receiver<Option<std::time::Instant>>,
        start: std::time::Instant,
        grace: Duration,
        cap: Duration,
    ) -> Self {
        Cancel {
            since,
            start,
            grace,
            cap,
        }
    }

    /// Whether the event came (the step may still have some grace).
    pub fn came(&self) -> bool {
        self.since.borrow().is_some()
    }

    /// Resolves once the event came and the step's grace has passed; never when no event comes.
    pub async fn wait(&self) {
        let mut since = self.since.clone();
        let at = match since.wait_for(Option::is_some).await {
            Ok(at) => *at,
            // The sender lives in the run's `Interrupt`: it is never dropped while a run goes on.
            Err(_) => None,
        };
        match at {
            Some(at) => {
                let end = (at.max(self.start) + self.grace).min(at + self.cap);
                tokio::time::sleep_until(tokio::time::Instant::from_std(end)).await
            }
            None => std::future::pending().await,
        }
    }
}

/// What a finished command left behind.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Everything written to standard output.
    pub stdout: String,
    /// Everything written to standard error.
    pub stderr: String,
    /// The exit code; -1 when killed by a signal.
    pub code: i32,
}

/// What can go wrong moving commands or bytes to a host.
#[derive(Debug, Error)]
pub enum TransportError {
    /// The command could not be started at all.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The command ran longer than its timeout.
    #[error("`{command}` timed out after {}s", .timeout.as_secs_f64())]
    Timeout { command: String, timeout: Duration },
    /// The run was interrupted (Ctrl-C) while the command ran: it got TERM.
    #[error("interrupted while `{command}` ran (it got TERM)")]
    Interrupted { command: String },
    /// A command given a stream on its input ended before it read all of it.
    #[error("`{command}` ended before it read all its input")]
    InputNotRead { command: String },
    /// SSH failed: connecting, authenticating, or on an open connection.
    #[error(transparent)]
    Ssh(#[from] ssh::SshError),
    /// A download passed its size limit; the file in progress was removed.
    #[error(
        "downloading `{top}` stopped at `{path}`: more than {} from this host (--max-size, \
         or `max_size` in a script; the file in progress was removed)",
        download::human_bytes(*.limit)
    )]
    DownloadTooLarge {
        path: String,
        top: String,
        limit: u64,
    },
    /// The run was interrupted during a download; the file in progress was removed.
    #[error("interrupted while downloading `{path}` (the file in progress was removed)")]
    DownloadInterrupted { path: String },
    /// The path a download names is nothing it copies: a link not followed, a device...
    #[error("cannot download `{path}`: it {why}")]
    NotDownloadable { path: String, why: String },
    /// Reading or writing a file failed.
    #[error("{action} `{path}`: {source}")]
    File {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Byte streams wired to a command instead of memory, so data of any size passes with flat
/// memory: dumps of databases to files of the controller, and back (issue 14).
#[derive(Default)]
pub struct Pipe<'a> {
    /// Read to the end into the command's standard input, after `ExecRequest::stdin`.
    pub input: Option<&'a mut (dyn AsyncRead + Unpin + Send)>,
    /// The command may end before it read all of `input`, as with OpenSSH's client (`weft
    /// ssh`); otherwise that fails as `InputNotRead`, since a dump being loaded must go in whole.
    pub input_may_remain: bool,
    /// Receives the command's standard output, which `ExecOutput::stdout` then lacks.
    pub output: Option<&'a mut (dyn AsyncWrite + Unpin + Send)>,
    /// Receives the command's standard error, which `ExecOutput::stderr` then lacks.
    pub error: Option<&'a mut (dyn AsyncWrite + Unpin + Send)>,
}

/// How weft talks to one host: run a command, read a file, write a file.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Opens the connection, so an unreachable host is known before its goal starts.
    async fn connect(&self) -> Result<(), TransportError> {
        Ok(())
    }

    /// Ends the connection once the host's work is done, so a long fan-out holds only the
    /// connections of the hosts still running.
    async fn close(&self) {}

    /// Runs a command, streaming its lines to `sink` as they arrive.
    async fn exec(
        &self,
        request: &ExecRequest,
        sink: &dyn LineSink,
    ) -> Result<ExecOutput, TransportError> {
        self.exec_piped(request, Pipe::default(), sink).await
    }

    /// Runs a command with its standard input and output wired to `pipe` where it names a
    /// stream; standard error (and standard output that `pipe` does not take) goes to `sink`.
    async fn exec_piped(
        &self,
        request: &ExecRequest,
        pipe: Pipe<'_>,
        sink: &dyn LineSink,
    ) -> Result<ExecOutput, TransportError>;

    /// Reads a whole file; `None` when it does not exist.
    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, TransportError>;

    /// Reads a whole regular file that weft is about to edit, never through a link: a link at
    /// `path` (planted by whoever owns its folder) or anything but a regular file fails.
    /// `None` when nothing is there.
    async fn read_regular_file(&self, path: &str) -> Result<Option<Vec<u8>>, TransportError>;

    /// Whether a small text file is cheaper to write with one command than with `write_file`,
    /// and a file an operation edits to read with one than with `read_regular_file`: over SSH
    /// they are (SFTP takes open, write, close and rename, or open, check and read, a round
    /// trip each, and four more to start its session, where a command is one; see
    /// `exec::stage::write_command` and `exec::session::read_regular_command`).
    fn small_files_by_command(&self) -> bool {
        false
    }

    /// Replaces a file atomically (temporary file + rename) with `data`, then sets `mode`.
    /// `owner` (user and group ids) is given to the temporary file through its handle, before
    /// the rename: the file that replaces another keeps its owner, whatever the folder's
    /// set-group-id bit would give it. `fresh`: a check has just found nothing at `path`, so
    /// the file can be put in place the cheapest way (over SSH: SFTP's rename, no command).
    /// Returns the whole-second mtime the file was stamped with, when it was (see
    /// `exec::remote_sums`).
    async fn write_file(
        &self,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
        fresh: bool,
    ) -> Result<Option<u64>, TransportError>;

    /// Streams a local file to `remote` atomically, then sets `mode`; `fresh` and the result
    /// as for `write_file`.
    async fn upload_file(
        &self,
        local: &Path,
        remote: &str,
        mode: Option<u32>,
        fresh: bool,
    ) -> Result<Option<u64>, TransportError>;

    /// Copies `remote`, a file or a folder with everything in it, to `local`: regular files
    /// and folders only, each file written whole or not at all (see `download`).
    async fn download_file(
        &self,
        remote: &str,
        local: &Path,
        options: DownloadOptions<'_>,
    ) -> Result<Downloaded, TransportError>;
}

/// A sink that drops every line, for commands weft runs for itself.
pub struct NoLines;

impl LineSink for NoLines {
    fn line(&self, _: Stream, _: &str) {}
}

/// The SHA-256 of a local file as lowercase hex, read in chunks so memory stays flat.
pub fn sha256_local(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The SHA-256 of `data` as lowercase hex.
pub fn sha256_bytes(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
