//! Transports: how commands and files reach a host. Plain async Rust, no script types.

mod local;

pub use local::LocalTransport;

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

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
    /// Reading or writing a file failed.
    #[error("{action} `{path}`: {source}")]
    File {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// How weft talks to one host: run a command, read a file, write a file.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Runs a command, streaming its lines to `sink` as they arrive.
    async fn exec(
        &self,
        request: &ExecRequest,
        sink: &dyn LineSink,
    ) -> Result<ExecOutput, TransportError>;

    /// Reads a whole file; `None` when it does not exist.
    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, TransportError>;

    /// Replaces a file atomically (temporary file + rename) with `data`, then sets `mode`.
    async fn write_file(
        &self,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
    ) -> Result<(), TransportError>;
}
