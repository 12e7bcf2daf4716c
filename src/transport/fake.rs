//! A host for unit tests (issue 32): it answers commands from a script and keeps files in
//! memory, and records every command and file write that reached it, so a test can say "with
//! these facts, an operation sends these commands" without sshd, root or a network.
//!
//! ```text
//! let host = FakeTransport::new()
//!     .on("getent passwd deploy", 2, "")          // no such user
//!     .file("/etc/motd", "hello\n");
//! // ... run an operation through a session over `Arc::new(host)` ...
//! assert_eq!(host.commands(), ["getent passwd deploy", "useradd -m -- deploy"]);
//! ```
//!
//! A command gets the answer of the first rule (in the order they were added) whose text it
//! contains, so a narrow rule goes before a broad one that would match the same command; a
//! command no rule matches exits 0 and prints nothing. Files are only what `read_file`,
//! `write_file` and `upload_file` see: commands never read or change them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    DownloadOptions, Downloaded, ExecOutput, ExecRequest, LineSink, Pipe, Stream, Transport,
    TransportError,
};

/// What a command that matched a rule does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// Its exit code.
    pub code: i32,
    /// What it prints on standard output.
    pub stdout: String,
    /// What it prints on standard error.
    pub stderr: String,
}

/// A command that reached the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// The command line, as the transport got it.
    pub command: String,
    /// What was fed to its standard input: the request's input, then what a pipe streamed.
    pub stdin: Option<Vec<u8>>,
    /// How long it was given.
    pub timeout: Option<Duration>,
}

/// A file written to the host (`write_file` or `upload_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Where.
    pub path: String,
    /// Its bytes.
    pub data: Vec<u8>,
    /// The mode asked for.
    pub mode: Option<u32>,
    /// The owner ids asked for.
    pub owner: Option<(u32, u32)>,
}

#[derive(Default)]
struct State {
    /// Each rule with how many more commands it answers (`None`: any number).
    rules: Vec<(String, Answer, Option<usize>)>,
    /// Commands that do not end by themselves (see `hold`), and what lets them.
    holds: Vec<(String, Option<Arc<tokio::sync::Semaphore>>)>,
    /// How many held commands have started.
    held: usize,
    files: BTreeMap<String, Vec<u8>>,
    ran: Vec<Ran>,
    written: Vec<Written>,
}

/// A scripted host; see the module's documentation.
#[derive(Default)]
pub struct FakeTransport {
    state: Mutex<State>,
    /// Every command waits here first, so tests can make hosts meet (see `gate`).
    gate: Option<Arc<tokio::sync::Barrier>>,
    /// Told each time a held command starts.
    holding: Condvar,
    /// Small text files are written by a command, as over SSH (see `by_command`).
    by_command: bool,
}

impl FakeTransport {
    /// A host where every command succeeds silently and no file exists.
    pub fn new() -> Self {
        Self::default()
    }

    /// A host that takes small text files by a command, as SSH hosts do.
    pub fn by_command(mut self) -> Self {
        self.by_command = true;
        self
    }

    /// Commands containing `needle` exit with `code`, printing `stdout`.
    pub fn on(self, needle: &str, code: i32, stdout: &str) -> Self {
        self.answer(
            needle,
            Answer {
                code,
                stdout: stdout.to_string(),
                stderr: String::new(),
            },
        )
    }

    /// Commands containing `needle` answer with `answer`.
    pub fn answer(self, needle: &str, answer: Answer) -> Self {
        self.lock().rules.push((needle.to_string(), answer, None));
        self
    }

    /// The next command containing `needle` (and only that one) exits with `code`, printing
    /// `stdout`; later ones go to the rules after it. A host that changes between two tries.
    pub fn once(self, needle: &str, code: i32, stdout: &str) -> Self {
        let answer = Answer {
            code,
            stdout: stdout.to_string(),
            stderr: String::new(),
        };
        self.lock()
            .rules
            .push((needle.to_string(), answer, Some(1)));
        self
    }

    /// A file at `path` holding `content`.
    pub fn file(self, path: &str, content: &str) -> Self {
        self.lock()
            .files
            .insert(path.to_string(), content.as_bytes().to_vec());
        self
    }

    /// Every command first waits at `barrier` (for at most ten seconds, then it fails with
    /// code 124): hosts sharing one barrier run their commands only once enough of them are
    /// running at the same time, which a test of the fan-out uses to prove they are.
    pub fn gate(mut self, barrier: Arc<tokio::sync::Barrier>) -> Self {
        self.gate = Some(barrier);
        self
    }

    /// Commands containing `needle` run until the run is interrupted or their timeout passes,
    /// as a command that never finishes would on a real host (it then gets TERM): the step
    /// fails with the transport's `Interrupted` or `Timeout`.
    pub fn hang(self, needle: &str) -> Self {
        self.lock().holds.push((needle.to_string(), None));
        self
    }

    /// Commands containing `needle` run until `release` gives them a permit (they then exit
    /// 0), or until an interrupt or their timeout ends them, as `hang`.
    pub fn hold(self, needle: &str, release: Arc<tokio::sync::Semaphore>) -> Self {
        self.lock().holds.push((needle.to_string(), Some(release)));
        self
    }

    /// Waits until `n` held commands (`hang`, `hold`) have started, for at most ten seconds;
    /// whether they did.
    pub fn wait_held(&self, n: usize) -> bool {
        let state = self.lock();
        let (_state, waited) = self
            .holding
            .wait_timeout_while(state, Duration::from_secs(10), |s| s.held < n)
            .unwrap_or_else(|e| e.into_inner());
        !waited.timed_out()
    }

    /// The command lines that reached the host, in order.
    pub fn commands(&self) -> Vec<String> {
        self.lock().ran.iter().map(|r| r.command.clone()).collect()
    }

    /// The commands that reached the host, with their input.
    pub fn ran(&self) -> Vec<Ran> {
        self.lock().ran.clone()
    }

    /// The files written, in order.
    pub fn written(&self) -> Vec<Written> {
        self.lock().written.clone()
    }

    /// What the host holds at `path` now.
    pub fn content(&self, path: &str) -> Option<String> {
        self.lock()
            .files
            .get(path)
            .map(|data| String::from_utf8_lossy(data).into_owned())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, path: &str, data: Vec<u8>, mode: Option<u32>, owner: Option<(u32, u32)>) {
        let mut state = self.lock();
        state.files.insert(path.to_string(), data.clone());
        state.written.push(Written {
            path: path.to_string(),
            data,
            mode,
            owner,
        });
    }
}

/// A held command's end: released (exit 0), interrupted, or timed out.
async fn held_command(
    request: &ExecRequest,
    release: Option<Arc<tokio::sync::Semaphore>>,
) -> Result<ExecOutput, TransportError> {
    let released = async {
        match release {
            Some(release) => match release.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    };
    let cancelled = async {
        match &request.cancel {
            Some(cancel) => cancel.wait().await,
            None => std::future::pending().await,
        }
    };
    let timeout = async {
        match request.timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = released => Ok(ExecOutput::default()),
        () = cancelled => Err(TransportError::Interrupted {
            command: request.command.clone(),
        }),
        () = timeout => Err(TransportError::Timeout {
            command: request.command.clone(),
            timeout: request.timeout.unwrap_or_default(),
        }),
    }
}

#[async_trait]
impl Transport for FakeTransport {
    async fn exec_piped(
        &self,
        request: &ExecRequest,
        pipe: Pipe<'_>,
        sink: &dyn LineSink,
    ) -> Result<ExecOutput, TransportError> {
        let mut stdin = request.stdin.clone();
        if let Some(input) = pipe.input {
            let mut streamed = Vec::new();
            input
                .read_to_end(&mut streamed)
                .await
                .map_err(|source| TransportError::File {
                    action: "cannot read the input of",
                    path: request.command.clone(),
                    source,
                })?;
            stdin.get_or_insert_with(Vec::new).extend(streamed);
        }
        let answer = {
            let mut state = self.lock();
            state.ran.push(Ran {
                command: request.command.clone(),
                stdin,
                timeout: request.timeout,
            });
            state
                .rules
                .iter_mut()
                .find(|(needle, _, left)| {
                    left.is_none_or(|n| n > 0) && request.command.contains(needle.as_str())
                })
                .map(|(_, answer, left)| {
                    if let Some(n) = left {
                        *n -= 1;
                    }
                    answer.clone()
                })
                .unwrap_or_default()
        };
        let held = {
            let mut state = self.lock();
            let held = state
                .holds
                .iter()
                .find(|(needle, _)| request.command.contains(needle.as_str()))
                .map(|(_, release)| release.clone());
            if held.is_some() {
                state.held += 1;
                self.holding.notify_all();
            }
            held
        };
        if let Some(release) = held {
            return held_command(request, release).await;
        }
        if let Some(gate) = &self.gate {
            if tokio::time::timeout(Duration::from_secs(10), gate.wait())
                .await
                .is_err()
            {
                return Ok(ExecOutput {
                    code: 124,
                    stderr: "fake: no other host came to the gate".into(),
                    ..ExecOutput::default()
                });
            }
        }
        let mut stdout = answer.stdout;
        match pipe.output {
            Some(output) => {
                let _ = output.write_all(stdout.as_bytes()).await;
                stdout.clear();
            }
            None => stdout.lines().for_each(|l| sink.line(Stream::Stdout, l)),
        }
        answer
            .stderr
            .lines()
            .for_each(|l| sink.line(Stream::Stderr, l));
        Ok(ExecOutput {
            stdout,
            stderr: answer.stderr,
            code: answer.code,
        })
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, TransportError> {
        Ok(self.lock().files.get(path).cloned())
    }

    async fn read_regular_file(&self, path: &str) -> Result<Option<Vec<u8>>, TransportError> {
        self.read_file(path).await
    }

    fn small_files_by_command(&self) -> bool {
        self.by_command
    }

    async fn write_file(
        &self,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
        _fresh: bool,
    ) -> Result<Option<u64>, TransportError> {
        self.write(path, data.to_vec(), mode, owner);
        Ok(None)
    }

    async fn upload_file(
        &self,
        local: &Path,
        remote: &str,
        mode: Option<u32>,
        _fresh: bool,
    ) -> Result<Option<u64>, TransportError> {
        let data = std::fs::read(local).map_err(|source| TransportError::File {
            action: "cannot read",
            path: local.display().to_string(),
            source,
        })?;
        self.write(remote, data, mode, None);
        Ok(None)
    }

    /// Copies one file the host holds; folders are not modelled.
    async fn download_file(
        &self,
        remote: &str,
        local: &Path,
        _options: DownloadOptions<'_>,
    ) -> Result<Downloaded, TransportError> {
        let Some(data) = self.lock().files.get(remote).cloned() else {
            return Err(TransportError::NotDownloadable {
                path: remote.to_string(),
                why: "does not exist on the fake host".into(),
            });
        };
        std::fs::write(local, &data).map_err(|source| TransportError::File {
            action: "cannot write",
            path: local.display().to_string(),
            source,
        })?;
        Ok(Downloaded {
            files: 1,
            bytes: data.len() as u64,
            skipped: 0,
        })
    }
}
