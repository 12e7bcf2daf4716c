//! One goal's session on one host: commands, files and templates, with `--check` and change
//! counting. Called from script threads, so every call blocks on the async transport.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;

use super::ops::daemons::DaemonCommands;
use super::output::HostSink;
use super::run::Run;
use super::timings::Section;
use crate::inventory::{HostSpec, Vars};
use crate::template::Templates;
use crate::transport::download::DownloadLimits;
use crate::transport::{DownloadOptions, ExecOutput, ExecRequest, Pipe, Transport, TransportError};

// Where they were before step.rs, so their importers need not change.
pub use super::step::{HostError, RunOptions};
// Where it was before run.rs, so its importers need not change.
pub use super::settings::Privilege;

/// The lines a dump's or load's command writes besides its data: the tools' own chatter
/// (`redis-cli --rdb` says `sending REPLCONF capa eof`), which goes to the `-v` log, not the
/// run's output. A failure still shows their last lines, in its error.
struct VerboseLines<'a> {
    host: &'a str,
}

impl crate::transport::LineSink for VerboseLines<'_> {
    fn line(&self, _stream: crate::transport::Stream, line: &str) {
        tracing::debug!(target: "weft::run", "{}: {line}", self.host);
    }
}

/// Everything a goal can do to the host it runs on.
pub struct HostSession {
    /// The host as the inventory describes it.
    pub spec: HostSpec,
    /// What the run's hosts share: settings, output, templates, sums.
    run: Arc<Run>,
    transport: Arc<dyn Transport>,
    /// The run's async runtime, which the runner owns and shuts down.
    runtime: Handle,
    changed: AtomicUsize,
    unchanged: AtomicUsize,
    handlers: Mutex<Vec<Handler>>,
    /// The basic facts, once read: a goal reads them once unless it asks again.
    facts: Mutex<Option<Vars>>,
    /// How many timed steps are in progress, and the kind the innermost report named.
    timing: Mutex<(usize, Option<String>)>,
    /// How many `always` operations are in progress: their steps run even after an interrupt.
    always: AtomicUsize,
    /// When this host's steps must end (`--host-timeout`), from the start of its job.
    deadline: Option<HostDeadline>,
    /// Why the host ran out of time, once a step did: the host fails with it even when the
    /// goal caught the error.
    expired: Mutex<Option<String>>,
    /// Stat lines of known files read ahead by a file check.
    stat_lines: super::stat_lines::StatLines,
    /// The host's clock minus the controller's (seconds), never more than the truth, once a
    /// file check read it.
    host_clock: Mutex<Option<f64>>,
}

/// A host's `--host-timeout`: when its steps must end, and the flag's value for messages.
#[derive(Debug, Clone, Copy)]
pub struct HostDeadline {
    /// When every step on the host must have ended; cleanup steps (`always`) get
    /// `CLEANUP_CAP` more.
    pub at: tokio::time::Instant,
    /// The flag's value.
    pub limit: Duration,
}

impl HostDeadline {
    /// The deadline of a host whose job starts now, if `limit` is set.
    pub fn from_now(limit: Option<Duration>) -> Option<Self> {
        let limit = limit?;
        Some(HostDeadline {
            at: tokio::time::Instant::now().checked_add(limit)?,
            limit,
        })
    }
}

/// A service action requested by a change, run once when the goal ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// The service.
    pub service: String,
    /// `reload` or `restart`.
    pub action: String,
    /// The process manager, when not detected.
    pub manager: Option<String>,
    /// supervisor's config file, when named.
    pub config: Option<String>,
    /// The daemon's own commands, for a host without an init system.
    pub commands: Option<DaemonCommands>,
    /// Run it even when Ctrl-C (or the host's deadline) ended the goal.
    pub always: bool,
}

impl HostSession {
    /// A session of `run` on `spec` through `transport`, blocking on `runtime`.
    pub fn new(
        run: Arc<Run>,
        runtime: Handle,
        spec: HostSpec,
        transport: Arc<dyn Transport>,
    ) -> Self {
        HostSession {
            spec,
            run,
            transport,
            runtime,
            changed: AtomicUsize::new(0),
            unchanged: AtomicUsize::new(0),
            handlers: Mutex::new(Vec::new()),
            facts: Mutex::new(None),
            timing: Mutex::new((0, None)),
            always: AtomicUsize::new(0),
            stat_lines: Default::default(),
            host_clock: Mutex::new(None),
            deadline: None,
            expired: Mutex::new(None),
        }
    }

    /// The session with every step bounded by `deadline` (`--host-timeout`).
    pub fn with_deadline(mut self, deadline: Option<HostDeadline>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Why the host ran out of time, if it did.
    pub fn expired(&self) -> Option<String> {
        self.expired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The error for a step that the host's deadline ended (`step`: "during `x`"), kept as
    /// the host's outcome.
    fn out_of_time(&self, step: String) -> HostError {
        let limit = self.deadline.map(|d| d.limit).unwrap_or_default();
        let err = HostError::HostTimeout { limit, step };
        self.expired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| err.to_string());
        err
    }

    /// Whether a step runs as cleanup: marked `always`, or inside an `always` operation.
    fn cleanup(&self, always: bool) -> bool {
        always || self.always.load(Ordering::SeqCst) > 0
    }

    /// When a step must end by the host's deadline: cleanup gets a moment more.
    fn cutoff(&self, cleanup: bool) -> Option<tokio::time::Instant> {
        let grace = if cleanup {
            super::interrupt::CLEANUP_CAP
        } else {
            Duration::ZERO
        };
        self.deadline.map(|d| d.at + grace)
    }

    /// What ends a step at Ctrl-C: at once, or a moment later for cleanup.
    pub(crate) fn cancel(&self, cleanup: bool) -> crate::transport::Cancel {
        self.run.interrupt.cancel(cleanup)
    }

    /// `request` bounded by the host's deadline and cancelled by Ctrl-C (the transport then
    /// sends the command TERM); `true` when the deadline is nearer than the command's own
    /// timeout. Fails when the deadline already passed.
    fn limited(
        &self,
        mut request: ExecRequest,
        cleanup: bool,
        shown: &str,
    ) -> Result<(ExecRequest, bool), HostError> {
        request.cancel = Some(self.cancel(cleanup));
        let Some(cutoff) = self.cutoff(cleanup) else {
            return Ok((request, false));
        };
        let left = cutoff.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(self.out_of_time(format!("before `{shown}`")));
        }
        let host_bound = request.timeout.is_none_or(|timeout| left < timeout);
        if host_bound {
            request.timeout = Some(left);
        }
        Ok((request, host_bound))
    }

    /// A command's transport error as the host's: its deadline or Ctrl-C ended it.
    fn command_error(&self, err: TransportError, host_bound: bool, shown: &str) -> HostError {
        match err {
            TransportError::Timeout { .. } if host_bound => {
                self.out_of_time(format!("during `{shown}`"))
            }
            TransportError::Interrupted { .. } => {
                HostError::Interrupted(format!("during `{shown}`"))
            }
            other => other.into(),
        }
    }

    /// Runs a transport step that has no deadline of its own (files), until the host's
    /// deadline or Ctrl-C, which fail naming `what`.
    fn bounded<T>(
        &self,
        what: &dyn Fn() -> String,
        step: impl std::future::Future<Output = Result<T, TransportError>>,
    ) -> Result<T, HostError> {
        let cleanup = self.cleanup(false);
        let cutoff = self.cutoff(cleanup);
        let cancel = self.cancel(cleanup);
        self.runtime.block_on(async {
            let deadline = async {
                match cutoff {
                    Some(cutoff) => tokio::time::sleep_until(cutoff).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = cancel.wait() => Err(HostError::Interrupted(format!("during {}", what()))),
                () = deadline => Err(self.out_of_time(format!("during {}", what()))),
                result = step => result.map_err(HostError::from),
            }
        })
    }

    /// The basic facts, read by `read` the first time and kept for the rest of the goal.
    pub fn cached_facts(
        &self,
        read: impl FnOnce() -> Result<Vars, HostError>,
    ) -> Result<Vars, HostError> {
        let mut cached = self.facts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(facts) = cached.as_ref() {
            return Ok(facts.clone());
        }
        let facts = read()?;
        *cached = Some(facts.clone());
        Ok(facts)
    }

    /// Makes the next read of the basic facts go to the host again.
    pub fn forget_facts(&self) {
        *self.facts.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// How many steps changed (or would change) the host so far.
    pub fn changes(&self) -> usize {
        self.changed.load(Ordering::Relaxed)
    }

    /// How many operations found the host already as wanted.
    pub fn unchanged(&self) -> usize {
        self.unchanged.load(Ordering::Relaxed)
    }

    /// Whether the run only reports what it would do.
    pub fn is_check(&self) -> bool {
        self.run.settings.check
    }

    /// Prints a message under this host's prefix.
    pub fn log(&self, message: &str) {
        self.run.output.log(&self.spec.name, message);
    }

    /// Records a step that changed (or under `--check` would change) the host.
    pub fn changed(&self, step: &str) {
        self.name_timed_step(step);
        self.changed.fetch_add(1, Ordering::Relaxed);
        self.run
            .output
            .change(&self.spec.name, step, self.run.settings.check);
    }

    /// Under `--timings`, names the step in progress by the first word of its report.
    fn name_timed_step(&self, step: &str) {
        if self.run.timings.is_some() {
            let mut timing = self.timing.lock().unwrap_or_else(|e| e.into_inner());
            if timing.1.is_none() {
                timing.1 = step.split_whitespace().next().map(str::to_string);
            }
        }
    }

    /// Records an operation that found the host as wanted, and why nothing was done.
    pub fn unchanged_step(&self, step: &str) {
        self.unchanged.fetch_add(1, Ordering::Relaxed);
        self.run.output.unchanged(&self.spec.name, step);
    }

    /// Runs `step` and, under `--timings`, records how long it took as one `kind` (when `kind`
    /// is empty, as the first word its report names: `file`, `directory`, ...); steps run
    /// inside it count in it.
    pub fn timed<T>(&self, kind: &str, step: impl FnOnce() -> T) -> T {
        let Some(timings) = &self.run.timings else {
            return step();
        };
        let outer = {
            let mut timing = self.timing.lock().unwrap_or_else(|e| e.into_inner());
            timing.0 += 1;
            if timing.0 == 1 {
                timing.1 = None;
            }
            timing.0 == 1
        };
        let started = std::time::Instant::now();
        let result = step();
        let elapsed = started.elapsed();
        let mut timing = self.timing.lock().unwrap_or_else(|e| e.into_inner());
        timing.0 -= 1;
        if outer {
            let reported = timing.1.take();
            let name = match (kind, reported) {
                ("", Some(reported)) => reported,
                ("", None) => "operation".to_string(),
                (kind, _) => kind.to_string(),
            };
            timings.record(Section::Operation, &name, &self.spec.name, elapsed);
        }
        result
    }

    /// Records the result of an operation; returns `changed`.
    pub fn report(&self, step: &str, changed: bool) -> bool {
        self.name_timed_step(step);
        if changed {
            self.changed(step);
        } else {
            self.unchanged_step(step);
        }
        changed
    }

    /// Whether changed files show their diff (`--diff`), for which the old text is read.
    pub fn shows_diffs(&self) -> bool {
        self.run.settings.diff
    }

    /// Shows how a file's text changes, under `--diff`; sensitive content is never shown.
    pub fn show_diff(&self, path: &str, old: Option<&str>, new: &str, sensitive: bool) {
        if !self.shows_diffs() {
            return;
        }
        // A secret in the new text is masked, but the one it replaces is not known any more:
        // the old lines would show it.
        if sensitive || self.run.output.mask(new) != new {
            self.run.output.log(
                &self.spec.name,
                &format!("--- {path}: sensitive content, diff hidden"),
            );
            return;
        }
        let old = old.unwrap_or_default();
        let diff = similar::TextDiff::from_lines(old, new);
        let text = diff
            .unified_diff()
            .context_radius(3)
            .header(&format!("{path} (before)"), &format!("{path} (after)"))
            .to_string();
        self.run.output.diff(&self.spec.name, path, &text);
    }

    /// Whether `text` holds a value the run knows as secret.
    pub fn holds_secret(&self, text: &str) -> bool {
        self.run.output.holds_secret(text)
    }

    /// Marks a value as secret: it is masked in every output from now on.
    pub fn add_secret(&self, value: &str) {
        self.run.output.add_secret(value);
    }

    /// Runs `op` with every step it takes going ahead even after an interrupt when `always`
    /// is set (cleanup such as switching a link back or releasing a lock).
    pub fn always<T>(&self, always: bool, op: impl FnOnce() -> T) -> T {
        if !always {
            return op();
        }
        self.always.fetch_add(1, Ordering::SeqCst);
        let result = op();
        self.always.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Fails with "interrupted before `step`" once Ctrl-C came, and once the host's deadline
    /// passed, outside `always` steps.
    pub fn not_interrupted(&self, step: &str) -> Result<(), HostError> {
        self.not_interrupted_before(|| format!("`{step}`"))
    }

    /// Fails with "interrupted before `what()`" once Ctrl-C came, and once the host's deadline
    /// passed, outside `always` steps.
    fn not_interrupted_before(&self, what: impl FnOnce() -> String) -> Result<(), HostError> {
        if self.always.load(Ordering::SeqCst) > 0 {
            return Ok(());
        }
        if self.run.interrupt.interrupted() {
            return Err(HostError::Interrupted(format!("before {}", what())));
        }
        if self
            .deadline
            .is_some_and(|d| tokio::time::Instant::now() >= d.at)
        {
            return Err(self.out_of_time(format!("before {}", what())));
        }
        Ok(())
    }

    /// Ends the connection to the host (its goal and handlers are done) and saves what is
    /// known of the files weft wrote there.
    pub fn close(&self) {
        self.runtime.block_on(self.transport.close());
        self.run.sums.finish(&self.spec.address);
    }

    /// Runs a read-only command (also under `--check`), quietly, whatever its exit code.
    pub fn probe(&self, command: &str) -> Result<ExecOutput, HostError> {
        self.stat_lines.drop_all();
        self.file_probe(command)
    }

    /// `probe` with `input` on the command's standard input: for what must stay out of the
    /// host's process list, such as a request's headers.
    pub fn probe_with_input(&self, command: &str, input: &str) -> Result<ExecOutput, HostError> {
        self.stat_lines.drop_all();
        self.read_only(command, Some(input.to_string()))
    }

    /// `probe` for the checks of files, which keeps the stat lines read ahead
    /// (`exec::stat_lines`): it changes nothing they describe.
    pub(crate) fn file_probe(&self, command: &str) -> Result<ExecOutput, HostError> {
        self.read_only(command, None)
    }

    /// Runs `command` as a probe (also under `--check`, quietly, whatever its exit code), with
    /// `stdin` on its standard input.
    fn read_only(&self, command: &str, stdin: Option<String>) -> Result<ExecOutput, HostError> {
        // Named as the user knows it: the probe's text is weft's own (a `stat` of up to 32
        // files read ahead), not a step of the script.
        self.not_interrupted_before(|| "checking the host".into())?;
        let options = RunOptions {
            check_safe: true,
            quiet: true,
            fail_on_error: false,
            always: true,
            stdin,
            ..RunOptions::default()
        };
        Ok(self.execute(command, &options)?.unwrap_or_default())
    }

    /// The host's clock minus the controller's, once known (never more than the truth).
    pub(crate) fn host_clock(&self) -> Option<f64> {
        *self.host_clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the closest offset of the host's clock seen: the largest, since each is at most
    /// the true one.
    pub(crate) fn set_host_clock(&self, offset: f64) {
        let mut clock = self.host_clock.lock().unwrap_or_else(|e| e.into_inner());
        *clock = Some(clock.map_or(offset, |known: f64| known.max(offset)));
    }

    /// The stat lines read ahead by file checks on this host.
    pub(crate) fn stat_lines(&self) -> &super::stat_lines::StatLines {
        &self.stat_lines
    }

    /// Runs a command that changes the host, quietly; skipped under `--check`.
    pub fn act(&self, command: &str) -> Result<(), HostError> {
        if self.run.settings.check {
            return Ok(());
        }
        let options = RunOptions {
            quiet: true,
            ..RunOptions::default()
        };
        self.run(command, &options).map(|_| ())
    }

    /// Asks for `handler`'s action when the goal ends, once per service and action: a second
    /// request of the same runs with the first, `always` when either asked for it, and fills
    /// in the manager, config or commands the first left out.
    pub fn notify(&self, handler: Handler) {
        let mut handlers = self.handlers.lock().unwrap_or_else(|e| e.into_inner());
        let same = handlers
            .iter_mut()
            .find(|h| h.service == handler.service && h.action == handler.action);
        match same {
            Some(asked) => {
                asked.always |= handler.always;
                asked.manager = asked.manager.take().or(handler.manager);
                asked.config = asked.config.take().or(handler.config);
                asked.commands = asked.commands.take().or(handler.commands);
            }
            None => handlers.push(handler),
        }
    }

    /// Whether Ctrl-C came during this run.
    pub fn interrupted(&self) -> bool {
        self.run.interrupt.interrupted()
    }

    /// Takes the handlers requested so far, in request order.
    pub fn take_handlers(&self) -> Vec<Handler> {
        std::mem::take(&mut *self.handlers.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs a shell command; `None` when `--check` skipped it.
    pub fn run(
        &self,
        command: &str,
        options: &RunOptions,
    ) -> Result<Option<ExecOutput>, HostError> {
        self.stat_lines.drop_all();
        self.execute(command, options)
    }

    fn execute(
        &self,
        command: &str,
        options: &RunOptions,
    ) -> Result<Option<ExecOutput>, HostError> {
        // Secrets read on first use are read now; the output masks them like any other.
        let command = &*self.reveal(command)?;
        let revealed;
        let options = match &options.stdin {
            Some(stdin) => match self.reveal(stdin)? {
                Cow::Borrowed(_) => options,
                Cow::Owned(stdin) => {
                    revealed = RunOptions {
                        stdin: Some(stdin),
                        ..options.clone()
                    };
                    &revealed
                }
            },
            None => options,
        };
        if self.run.settings.check && !options.check_safe {
            self.run.output.log(
                &self.spec.name,
                &format!("skipped under --check: {command}"),
            );
            return Ok(None);
        }
        if !options.always {
            self.not_interrupted(command)?;
        }
        tracing::debug!(target: "weft::run", "{}: {}", self.spec.name, crate::shell::shown(command));
        let (request, host_bound) = self.limited(
            self.privileged(command, options),
            self.cleanup(options.always),
            command,
        )?;
        let sink = HostSink::new(
            self.run.output.clone(),
            self.spec.name.clone(),
            options.quiet,
        );
        let output = self
            .runtime
            .block_on(self.transport.exec(&request, &sink))
            .map_err(|e| self.command_error(e, host_bound, command))?;
        if output.code != 0 && options.fail_on_error {
            return Err(HostError::CommandFailed {
                command: command.to_string(),
                code: output.code,
                stderr: output.stderr,
            });
        }
        Ok(Some(output))
    }

    /// Runs `command` (also wrapped for sudo) with `pipe`'s streams wired to it, its standard
    /// error shown live; a non-zero exit fails, naming `shown` (what the script asked for,
    /// when `command` wraps it). For dumps and loads (`exec::dump`).
    pub async fn exec_piped(
        &self,
        command: &str,
        shown: &str,
        pipe: Pipe<'_>,
    ) -> Result<(), HostError> {
        let command = &*self.reveal(command)?;
        self.not_interrupted(shown)?;
        self.stat_lines.drop_all();
        let (request, host_bound) = self.limited(
            self.privileged(command, &RunOptions::default()),
            false,
            shown,
        )?;
        let sink = VerboseLines {
            host: &self.spec.name,
        };
        let output = self
            .transport
            .exec_piped(&request, pipe, &sink)
            .await
            .map_err(|e| self.command_error(e, host_bound, shown))?;
        if output.code != 0 {
            return Err(HostError::CommandFailed {
                command: shown.to_string(),
                code: output.code,
                stderr: output.stderr,
            });
        }
        Ok(())
    }

    /// Runs `future` to its end on the run's runtime, from a script thread.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The request for `command`, wrapped in sudo when the options or `--become` ask for it.
    /// A command that holds a secret never stands in a process's argv on the host (where `ps`
    /// shows it to every user): a shell reads it from its standard input instead
    /// (`carried_on_stdin`), before the command's own input. Without sudo the kept shell reads
    /// commands so too, but a command with input, or a login without a kept shell, would pass
    /// it to the login shell's `-c`.
    fn privileged(&self, command: &str, options: &RunOptions) -> ExecRequest {
        let timeout = options.timeout.or(self.run.settings.limits.command_timeout);
        let stdin = options.stdin.as_ref().map(|s| s.as_bytes().to_vec());
        let user = options
            .sudo
            .as_ref()
            .or(self.run.settings.privilege.become_user.as_ref());
        let secret = self.holds_secret(command);
        let Some(user) = user else {
            if secret {
                let (reader, input) = carried_on_stdin(command, stdin);
                return ExecRequest {
                    command: reader,
                    stdin: Some(input),
                    timeout,
                    cancel: None,
                };
            }
            return ExecRequest {
                command: command.to_string(),
                stdin,
                timeout,
                cancel: None,
            };
        };
        let user = crate::shell::quote(user);
        // Under sudo the command stands in sudo's arguments unless carried.
        let secret = secret || options.carried;
        match &self.run.settings.privilege.sudo_password {
            Some(password) => {
                // The password is the first line of stdin, read by a wrapper shell (never in
                // argv). sudo gets it only when it needs one: where it does not prompt (root,
                // NOPASSWD, a cached login), a password fed to `sudo -S` would reach the
                // command as input. The command follows it on stdin: this request has its
                // own channel anyway, so carrying every command costs nothing.
                let (reader, input) = carried_on_stdin(command, stdin);
                let wrapper = format!(
                    "IFS= read -r weft_pw; \
                     if sudo -n -u {user} -- true 2>/dev/null; then exec sudo -n -u {user} -- {reader}; fi; \
                     {{ printf '%s\\n' \"$weft_pw\"; exec cat; }} | sudo -S -p '' -u {user} -- {reader}"
                );
                let mut all = format!("{password}\n").into_bytes();
                all.extend(input);
                ExecRequest {
                    command: format!("sh -c {}", crate::shell::quote(&wrapper)),
                    stdin: Some(all),
                    timeout,
                    cancel: None,
                }
            }
            // Only a command with a secret gives up the kept shell for a channel of its own.
            None if secret => {
                let (reader, input) = carried_on_stdin(command, stdin);
                ExecRequest {
                    command: format!("sudo -n -u {user} -- {reader}"),
                    stdin: Some(input),
                    timeout,
                    cancel: None,
                }
            }
            None => ExecRequest {
                command: format!(
                    "sudo -n -u {user} -- sh -c {}",
                    crate::shell::quote(command)
                ),
                stdin,
                timeout,
                cancel: None,
            },
        }
    }

    /// Reads a file of the host; `None` when it does not exist.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, HostError> {
        if self.run.settings.privilege.become_user.is_none() {
            return self.bounded(
                &|| format!("reading `{path}`"),
                self.transport.read_file(path),
            );
        }
        // Under --become the file may be readable by the become user only.
        let q = crate::shell::quote(path);
        let out = self.probe(&format!("if [ -e {q} ]; then cat -- {q}; else exit 3; fi"))?;
        match out.code {
            0 => Ok(Some(out.stdout.into_bytes())),
            3 => Ok(None),
            code => Err(HostError::CommandFailed {
                command: format!("cat -- {q}"),
                code,
                stderr: out.stderr,
            }),
        }
    }

    /// Reads a regular file that an operation edits, never through a link (`None`: nothing
    /// is there). A link or anything but a regular file at `path` fails.
    pub fn read_regular_file(&self, path: &str) -> Result<Option<Vec<u8>>, HostError> {
        // Under --become the file may be readable by the become user only; over SSH one
        // command is one round trip where SFTP takes three, and four more to start it.
        let becomes = self.run.settings.privilege.become_user.is_some();
        let by_transport = || {
            self.bounded(
                &|| format!("reading `{path}`"),
                self.transport.read_regular_file(path),
            )
        };
        if !becomes && !self.transport.small_files_by_command() {
            return by_transport();
        }
        let refused = |why: &str| {
            HostError::Transport(TransportError::File {
                action: "cannot read",
                path: path.to_string(),
                source: std::io::Error::other(why.to_string()),
            })
        };
        let out = self.file_probe(&read_regular_command(path))?;
        // A command's output is text, and only its tail is kept past 16 MiB: a file longer than
        // `READ_BY_COMMAND` (or one whose bytes are not UTF-8 and grew in the decoding) would
        // come back changed, and be written back so.
        if out.code == 0 && out.stdout.len() > READ_BY_COMMAND {
            if !becomes {
                return by_transport();
            }
            return Err(refused(&format!(
                "it is over {} MiB or not text, which weft edits only without --become",
                READ_BY_COMMAND >> 20
            )));
        }
        match out.code {
            0 => Ok(Some(out.stdout.into_bytes())),
            3 => Ok(None),
            4 => Err(refused("it is a symbolic link, and weft never edits a file through a link (its target could be any file of the host)")),
            5 => Err(refused("it is not a regular file")),
            6 => Err(refused("it was replaced while weft opened it")),
            code => Err(HostError::CommandFailed {
                command: format!("cat -- {}", crate::shell::quote(path)),
                code,
                stderr: out.stderr,
            }),
        }
    }

    /// Replaces `path` atomically with `data` (nothing under `--check`), without comparing;
    /// `fresh`: a check has just found nothing at `path`; `keep_sum`: the next check may trust
    /// the sum of `data` while the file stays as written (never for secrets).
    pub fn put_file(
        &self,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
        fresh: bool,
        keep_sum: bool,
    ) -> Result<(), HostError> {
        self.put_file_owned(path, data, mode, None, fresh, keep_sum)
    }

    /// `put_file` that also gives the new file `owner` (user and group ids) before it replaces
    /// `path`, so it keeps the owner of the file it replaces.
    pub fn put_file_owned(
        &self,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
        fresh: bool,
        keep_sum: bool,
    ) -> Result<(), HostError> {
        let revealed = self.reveal_bytes(data)?;
        // No secret goes into a command's text, where a host's `ps` could show it.
        let secret_free = matches!(revealed, Cow::Borrowed(_));
        let data = &*revealed;
        self.not_interrupted(path)?;
        let sum = keep_sum.then(|| (data.len() as u64, crate::transport::sha256_bytes(data)));
        let by_command = keep_sum && secret_free && self.transport.small_files_by_command();
        let text = by_command.then(|| super::stage::small_text(data)).flatten();
        // The command stages privately as the user it runs as (under `--become`, that one).
        self.place(path, sum, || match text {
            Some(text) => self.write_by_command(path, text, mode, owner, fresh),
            None => self.place_stamped(path, mode, owner, fresh, |target, mode, owner, fresh| {
                self.bounded(
                    &|| format!("writing `{path}`"),
                    self.transport.write_file(target, data, mode, owner, fresh),
                )
            }),
        })
    }

    /// Writes `text` at `path` with one command (`stage::write_command`); returns the stamp
    /// it gave the file, when it could.
    fn write_by_command(
        &self,
        path: &str,
        text: &str,
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
        fresh: bool,
    ) -> Result<Option<u64>, HostError> {
        let stamp = crate::transport::stamp();
        let command = super::stage::write_command(path, text, mode, owner, fresh, stamp);
        // Carried on the input of sudo's shell under `--become`: the file's text stays out of
        // the host's process list, as it does in the kept shell's `printf`.
        let out = super::stage::run_carried_step(self, &format!("write {path}"), &command)?;
        let stamped = out.stdout.lines().any(|l| l == super::stage::STAMPED);
        Ok(stamped.then_some(stamp))
    }

    /// Writes `path` with `write`, which returns the whole-second stamp it gave the file.
    /// Nothing happens under `--check`. `sum` (size and SHA-256 of what is written) is kept
    /// for the next check when `write` stamped the file (`install -p` keeps the stamp);
    /// otherwise what was known of `path` is dropped.
    fn place(
        &self,
        path: &str,
        sum: Option<(u64, String)>,
        write: impl FnOnce() -> Result<Option<u64>, HostError>,
    ) -> Result<(), HostError> {
        if self.run.settings.check {
            return Ok(());
        }
        self.stat_lines.drop_all();
        let placed = write();
        let host = &self.spec.address;
        match (&placed, sum) {
            (Ok(Some(mtime)), Some((size, sha256))) => {
                self.run.sums.written(host, path, size, *mtime, sha256);
            }
            _ => self.run.sums.forget(host, path),
        }
        placed.map(|_| ())
    }

    /// Writes `path` with `write` (which gets the path to write and the mode), directly, or
    /// under `--become` through a private staging file that the become user copies into place
    /// with a rename, so the target is never half-written. `write` gets `fresh` (nothing is
    /// at `path`) only when it writes `path` itself. Returns the stamp.
    fn place_stamped(
        &self,
        path: &str,
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
        fresh: bool,
        write: impl FnOnce(
            &str,
            Option<u32>,
            Option<(u32, u32)>,
            bool,
        ) -> Result<Option<u64>, HostError>,
    ) -> Result<Option<u64>, HostError> {
        if self.run.settings.privilege.become_user.is_none() {
            return write(path, mode, owner, fresh);
        }
        let staging = format!("/tmp/.weft-stage-{:016x}", fastrand::u64(..));
        let s = crate::shell::quote(&staging);
        let result = write(&staging, Some(0o600), None, false)
            .and_then(|stamp| self.install_staged(&s, path, mode, owner).map(|()| stamp));
        // Cleanup of weft's own file, on every path (a write cut short by Ctrl-C or the
        // host's deadline leaves part of the file, maybe of a secret): it runs as an `always`
        // step would.
        // A write cut short also leaves the transport's own temporary sibling of the staging
        // file (`.NAME.weft-` and 16 random hex digits; the glob stays literal, and harmless,
        // when nothing matches).
        let (folder, name) = staging.rsplit_once('/').unwrap_or(("", &staging));
        let partial = format!(
            "{}{}",
            crate::shell::quote(&format!("{folder}/.{name}.weft-")),
            "?".repeat(16)
        );
        let remove = ExecRequest {
            command: format!("rm -f -- {s} {partial}"),
            ..ExecRequest::default()
        };
        if let Ok((remove, _)) = self.limited(remove, true, "rm") {
            let _ = self
                .runtime
                .block_on(self.transport.exec(&remove, &crate::transport::NoLines));
        }
        result
    }

    /// Puts the staged file `s` (quoted) at `path` as the become user, with its mode and owner.
    fn install_staged(
        &self,
        s: &str,
        path: &str,
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
    ) -> Result<(), HostError> {
        let t = super::stage::target_word(path);
        let mode = format!("{:o}", mode.unwrap_or(0o644));
        // `install` makes the file, gives it its owner, then its mode, by name: in a private
        // folder beside the target, where nobody else can swap that name for a link (which
        // chmod would follow), before the rename puts it in place.
        let owner = owner.map_or_else(String::new, |(uid, gid)| format!("-o {uid} -g {gid} "));
        let body = format!("install -p {owner}-m {mode} -T -- {s} new && mv -f -T -- new {t}");
        let script = super::stage::in_one_command(super::stage::folder_of(path), &body);
        super::stage::run_step(self, &format!("write {path}"), &script).map(|_| ())
    }

    /// Streams the local file `local` to `remote` atomically with `mode` (nothing under
    /// `--check`), without comparing; `fresh`: a check has just found nothing at `remote`;
    /// `sha256`: the local file's, kept for the next check while the file stays as written.
    pub fn put_local_file(
        &self,
        local: &Path,
        remote: &str,
        mode: u32,
        fresh: bool,
        sha256: String,
    ) -> Result<(), HostError> {
        let size = std::fs::metadata(local).map_or(0, |m| m.len());
        self.run.output.transfer(
            &self.spec.name,
            format!(
                "uploading {} to {}",
                crate::transport::download::human_bytes(size),
                self.spec.name
            ),
        );
        let copied = self.place(remote, Some((size, sha256)), || {
            self.place_stamped(remote, Some(mode), None, fresh, |target, mode, _, fresh| {
                self.bounded(
                    &|| format!("uploading `{remote}`"),
                    self.transport.upload_file(local, target, mode, fresh),
                )
            })
        });
        self.run.output.transfer_done(&self.spec.name);
        copied
    }

    /// The SHA-256 of local files, each hashed once per run while it stays the same.
    pub fn hashes(&self) -> &super::hashes::LocalHashes {
        &self.run.hashes
    }

    /// The templates of the project's layers.
    pub fn templates(&self) -> &Templates {
        &self.run.templates
    }

    /// What weft knows of the files it wrote on hosts.
    pub fn remote_sums(&self) -> &super::remote_sums::RemoteSums {
        &self.run.sums
    }

    /// A local path, taken from the project folder.
    pub fn local_path(&self, local: &str) -> PathBuf {
        self.run.root.join(local)
    }

    /// Copies `remote` into `<dest>/<host name>/<file name>` on this machine.
    pub fn download(
        &self,
        remote: &str,
        dest: &Path,
        limits: DownloadLimits,
    ) -> Result<PathBuf, HostError> {
        let name = Path::new(remote)
            .file_name()
            .map_or_else(|| "download".into(), |n| n.to_os_string());
        let target = dest.join(&self.spec.name).join(name);
        self.download_to(remote, &target, limits)?;
        Ok(target)
    }

    /// Copies the file or folder `remote` to `target` on this machine (relative paths are
    /// taken from the project), creating its folder: regular files and folders only, links
    /// as `limits` says, at most `limits.max_bytes`; each entry left out is said on the host's
    /// output. Skipped under `--check`.
    pub fn download_to(
        &self,
        remote: &str,
        target: &Path,
        limits: DownloadLimits,
    ) -> Result<(), HostError> {
        self.not_interrupted(remote)?;
        let target = self.run.root.join(target);
        if self.run.settings.check {
            self.log(&format!("would download {remote} to {}", target.display()));
            return Ok(());
        }
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder).map_err(|source| HostError::LocalRead {
                path: folder.display().to_string(),
                source,
            })?;
        }
        self.run.output.transfer(
            &self.spec.name,
            format!("downloading {remote} from {}", self.spec.name),
        );
        // Ctrl-C and the host's deadline stop the copy between reads, so the file in progress
        // is removed rather than left behind by a dropped transfer.
        let cleanup = self.cleanup(false);
        let cutoff = self.cutoff(cleanup);
        let past_deadline = move || cutoff.is_some_and(|c| tokio::time::Instant::now() >= c);
        let stopped = || (self.run.interrupt.interrupted() && !cleanup) || past_deadline();
        let skipped = |path: &str, why: &str| self.log(&format!("skipped {path}: it {why}"));
        let options = DownloadOptions {
            follow_links: limits.follow_links,
            max_bytes: limits.max_bytes,
            stopped: &stopped,
            skipped: &skipped,
        };
        let copied = self
            .runtime
            .block_on(self.transport.download_file(remote, &target, options));
        self.run.output.transfer_done(&self.spec.name);
        let done = match copied {
            Ok(done) => done,
            Err(TransportError::DownloadInterrupted { path }) if past_deadline() => {
                return Err(self.out_of_time(format!(
                    "during downloading `{remote}` (stopped at `{path}`; the file in progress was removed)"
                )))
            }
            Err(TransportError::DownloadInterrupted { path }) => {
                return Err(HostError::Interrupted(format!(
                    "the rest of the download (stopped at `{path}`; the file in progress was removed)"
                )))
            }
            Err(err) => return Err(err.into()),
        };
        let skipped = if done.skipped > 0 {
            format!(", {} skipped", done.skipped)
        } else {
            String::new()
        };
        self.log(&format!(
            "downloaded {remote} to {} ({} file{}, {}{skipped})",
            target.display(),
            done.files,
            if done.files == 1 { "" } else { "s" },
            crate::transport::download::human_bytes(done.bytes),
        ));
        Ok(())
    }
}

impl super::step::Commands for HostSession {
    fn run(&self, command: &str, options: &RunOptions) -> Result<Option<ExecOutput>, HostError> {
        HostSession::run(self, command, options)
    }
}

impl HostSession {
    /// `text` with the secrets of weft.toml read on first use put in (read now if no step has
    /// read them), masked from now on; fails like `no_missing_secret` when one cannot be read
    /// or could not be resolved. None is read after Ctrl-C (outside `always` steps), and
    /// Ctrl-C ends a read under way.
    pub fn reveal<'a>(&self, text: &'a str) -> Result<Cow<'a, str>, HostError> {
        no_missing_secret(text)?;
        if !crate::config::secret::has_stand_in(text.as_bytes()) {
            return Ok(Cow::Borrowed(text));
        }
        let stop = self.secret_stop()?;
        let (text, values) =
            crate::config::secret::reveal(text, Some(&stop)).map_err(|e| self.unrevealed(e))?;
        for value in &values {
            self.add_secret(value);
        }
        Ok(text)
    }

    /// `reveal` for bytes (a file's content).
    pub fn reveal_bytes<'a>(&self, data: &'a [u8]) -> Result<Cow<'a, [u8]>, HostError> {
        no_missing_secret_in(data)?;
        if !crate::config::secret::has_stand_in(data) {
            return Ok(Cow::Borrowed(data));
        }
        let stop = self.secret_stop()?;
        let (data, values) = crate::config::secret::reveal_bytes(data, Some(&stop))
            .map_err(|e| self.unrevealed(e))?;
        for value in &values {
            self.add_secret(value);
        }
        Ok(data)
    }

    /// What ends the read of a secret: Ctrl-C, as for any step; fails at once after it.
    fn secret_stop(&self) -> Result<crate::transport::Cancel, HostError> {
        self.not_interrupted_before(|| "reading a secret of weft.toml".into())?;
        Ok(self.cancel(self.cleanup(false)))
    }

    /// Why a secret could not be put in: Ctrl-C, or the reason `reason` says.
    fn unrevealed(&self, reason: String) -> HostError {
        if self.run.interrupt.interrupted() {
            HostError::Interrupted("while a secret of weft.toml was read".into())
        } else {
            HostError::MissingSecret(reason)
        }
    }
}

impl crate::config::secret::Stop for crate::transport::Cancel {
    fn wait(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(crate::transport::Cancel::wait(self))
    }

    fn came(&self) -> bool {
        crate::transport::Cancel::came(self)
    }
}

/// Refuses text that holds a secret of weft.toml that could not be resolved: the step that
/// would send or write it fails with the reason, before it runs.
pub fn no_missing_secret(text: &str) -> Result<(), HostError> {
    match crate::config::secret::find_missing(text) {
        Some(reason) => Err(HostError::MissingSecret(reason.to_string())),
        None => Ok(()),
    }
}

/// `no_missing_secret` for bytes (a file's content).
pub fn no_missing_secret_in(data: &[u8]) -> Result<(), HostError> {
    match crate::config::secret::find_missing_bytes(data) {
        Some(reason) => Err(HostError::MissingSecret(reason)),
        None => Ok(()),
    }
}

/// `sh -c READER`, a command line that holds no part of `command`, and the input that makes
/// it run `command`: the command's lines, then a line with a random marker, then `stdin`. The
/// reader takes lines up to the marker with `read` (which never reads past a newline, so the
/// command's own input is left whole), and evaluates them with its variables unset.
fn carried_on_stdin(command: &str, stdin: Option<Vec<u8>>) -> (String, Vec<u8>) {
    let marker = format!("weft-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let reader = format!(
        "weft_c=; while IFS= read -r weft_l; do \
           if [ \"$weft_l\" = {marker} ]; then eval \"unset weft_c weft_l; $weft_c\"; exit; fi; \
           weft_c=\"$weft_c$weft_l\n\"; \
         done; echo 'weft: the command did not arrive whole' >&2; exit 1"
    );
    let mut input = format!("{command}\n{marker}\n").into_bytes();
    input.extend(stdin.unwrap_or_default());
    (format!("sh -c {}", crate::shell::quote(&reader)), input)
}

/// The most a file read by `read_regular_command` may hold: well within what a command's
/// output keeps (`transport::capture::KEPT_BYTES`).
pub(crate) const READ_BY_COMMAND: usize = crate::transport::capture::KEPT_BYTES / 4;

/// The command that prints the regular file `path` as `read_regular_file` reads it: entered
/// folder by folder (`shell::enter`), then opened by its name, and read only if what the
/// descriptor holds is what the name holds now, unfollowed (as over SFTP: a link swapped in
/// for the open and a file swapped back would have to be a hard link to the linked file, which
/// only its owner can make). Exits 3: nothing there (nor its folder); 4: a link; 5: not a
/// regular file; 6: the name changed meanwhile.
pub(crate) fn read_regular_command(path: &str) -> String {
    let folder = super::stage::folder_of(path);
    let n = format!("./{}", crate::shell::quote(super::stage::name_of(path)));
    format!(
        "{enter} || {{ weft_s=$?; [ -e {f} ] || [ -L {f} ] || exit 3; exit \"$weft_s\"; }}; \
         if [ -L {n} ]; then exit 4; elif [ ! -e {n} ]; then exit 3; \
         elif [ ! -f {n} ]; then exit 5; fi; exec 3< {n} || exit; \
         if [ -L {n} ] || [ ! {n} -ef /dev/fd/3 ] || [ ! -f /dev/fd/3 ]; then exit 6; fi; \
         exec head -c {most} <&3",
        most = READ_BY_COMMAND + 1,
        enter = crate::shell::enter(folder, false),
        f = crate::shell::quote(folder),
    )
}
