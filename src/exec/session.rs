//! One goal's session on one host: commands, files and templates, with `--check` and change
//! counting. Called from script threads, so every call blocks on the async transport.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::runtime::Handle;
use walkdir::WalkDir;

use super::output::{HostSink, Output};
use crate::inventory::{HostSpec, Vars};
use crate::template::{TemplateError, Templates};
use crate::transport::{ExecOutput, ExecRequest, Transport, TransportError};

/// Why a host step failed.
#[derive(Debug, Error)]
pub enum HostError {
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
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
    /// A local file to upload could not be read.
    #[error("cannot read local `{path}`: {source}")]
    LocalRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
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
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            fail_on_error: true,
            check_safe: false,
            quiet: false,
            timeout: None,
            stdin: None,
        }
    }
}

/// Everything a goal can do to the host it runs on.
pub struct HostSession {
    /// The host as the inventory describes it.
    pub spec: HostSpec,
    transport: Arc<dyn Transport>,
    runtime: Handle,
    output: Arc<Output>,
    templates: Arc<Templates>,
    local_root: PathBuf,
    check: bool,
    changes: AtomicUsize,
}

impl HostSession {
    /// A session on `spec` through `transport`; local paths are taken from `local_root`.
    pub fn new(
        spec: HostSpec,
        transport: Arc<dyn Transport>,
        runtime: Handle,
        output: Arc<Output>,
        templates: Arc<Templates>,
        local_root: PathBuf,
        check: bool,
    ) -> Self {
        HostSession {
            spec,
            transport,
            runtime,
            output,
            templates,
            local_root,
            check,
            changes: AtomicUsize::new(0),
        }
    }

    /// How many steps changed (or would change) the host so far.
    pub fn changes(&self) -> usize {
        self.changes.load(Ordering::Relaxed)
    }

    /// Whether the run only reports what it would do.
    pub fn is_check(&self) -> bool {
        self.check
    }

    /// Prints a message under this host's prefix.
    pub fn log(&self, message: &str) {
        self.output.log(&self.spec.name, message);
    }

    fn changed(&self, step: &str) {
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.output.change(&self.spec.name, step, self.check);
    }

    /// Runs a shell command; `None` when `--check` skipped it.
    pub fn run(
        &self,
        command: &str,
        options: &RunOptions,
    ) -> Result<Option<ExecOutput>, HostError> {
        if self.check && !options.check_safe {
            self.output.log(
                &self.spec.name,
                &format!("skipped under --check: {command}"),
            );
            return Ok(None);
        }
        let request = ExecRequest {
            command: command.to_string(),
            stdin: options.stdin.as_ref().map(|s| s.as_bytes().to_vec()),
            timeout: options.timeout,
        };
        let sink = HostSink::new(self.output.clone(), self.spec.name.clone(), options.quiet);
        let output = self
            .runtime
            .block_on(self.transport.exec(&request, &sink))?;
        if output.code != 0 && options.fail_on_error {
            return Err(HostError::CommandFailed {
                command: command.to_string(),
                code: output.code,
                stderr: output.stderr,
            });
        }
        Ok(Some(output))
    }

    /// Reads a file of the host; `None` when it does not exist.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self.runtime.block_on(self.transport.read_file(path))?)
    }

    /// Makes `path` hold exactly `data`; returns whether anything changed.
    pub fn write_file(
        &self,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
    ) -> Result<bool, HostError> {
        let current = self.read_file(path)?;
        if current.as_deref() == Some(data) && mode.is_none() {
            return Ok(false);
        }
        if current.as_deref() == Some(data) {
            // Same bytes: only the mode may differ, and `stat` tells.
            let stat = self.run(
                &format!("stat -c %a {}", crate::shell::quote(path)),
                &RunOptions {
                    check_safe: true,
                    quiet: true,
                    ..RunOptions::default()
                },
            )?;
            let mode_now = stat.and_then(|o| u32::from_str_radix(o.stdout.trim(), 8).ok());
            if mode_now == mode {
                return Ok(false);
            }
        }
        if !self.check {
            self.runtime
                .block_on(self.transport.write_file(path, data, mode))?;
        }
        self.changed(&format!("file {path}"));
        Ok(true)
    }

    /// Copies a local file or folder (relative to the project) to `remote`; returns whether
    /// anything changed.
    pub fn upload(&self, local: &str, remote: &str) -> Result<bool, HostError> {
        let source = self.local_root.join(local);
        let read_error = |source| HostError::LocalRead {
            path: local.to_string(),
            source,
        };
        let meta = std::fs::metadata(&source).map_err(read_error)?;
        if !meta.is_dir() {
            let data = std::fs::read(&source).map_err(read_error)?;
            return self.write_file(remote, &data, Some(file_mode(&meta)));
        }
        let mut changed = false;
        for entry in WalkDir::new(&source).sort_by_file_name() {
            let entry = entry.map_err(|e| read_error(e.into()))?;
            let rel = entry.path().strip_prefix(&source).unwrap_or(Path::new(""));
            let target = join_remote(remote, rel);
            if entry.file_type().is_dir() {
                let mkdir = format!("mkdir -p {}", crate::shell::quote(&target));
                let exists = self.run(
                    &format!("test -d {}", crate::shell::quote(&target)),
                    &RunOptions {
                        check_safe: true,
                        fail_on_error: false,
                        quiet: true,
                        ..RunOptions::default()
                    },
                )?;
                if exists.is_some_and(|o| o.code == 0) {
                    continue;
                }
                self.run(&mkdir, &RunOptions::default())?;
                self.changed(&format!("directory {target}"));
                changed = true;
            } else if entry.file_type().is_file() {
                let data = std::fs::read(entry.path()).map_err(read_error)?;
                let meta = entry.metadata().map_err(|e| read_error(e.into()))?;
                changed |= self.write_file(&target, &data, Some(file_mode(&meta)))?;
            }
        }
        Ok(changed)
    }

    /// Renders template `name` with the host's variables, `vars` over them, into `dest`.
    pub fn template(
        &self,
        name: &str,
        dest: &str,
        vars: Vars,
        mode: Option<u32>,
    ) -> Result<bool, HostError> {
        let text = self.render(name, vars)?;
        self.write_file(dest, text.as_bytes(), mode)
    }

    /// Renders template `name` with the host's variables, `vars` over them.
    pub fn render(&self, name: &str, vars: Vars) -> Result<String, HostError> {
        let mut all = self.spec.vars.clone();
        all.insert(
            "host".into(),
            serde_json::json!({
                "name": self.spec.name,
                "address": self.spec.address,
                "roles": self.spec.roles,
            }),
        );
        crate::inventory::merge(&mut all, vars);
        Ok(self.templates.render(name, &all)?)
    }
}

fn file_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

fn join_remote(base: &str, rel: &Path) -> String {
    let rel = rel.to_string_lossy();
    if rel.is_empty() {
        base.to_string()
    } else {
        format!("{}/{rel}", base.trim_end_matches('/'))
    }
}
