//! The SSH transport: one connection per host for the whole run, commands in a kept shell (or
//! on channels of their own, capped below sshd's `MaxSessions`), files over one SFTP session,
//! writes made atomic by a rename.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use russh::ChannelMsg;
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OnceCell, Semaphore};

use super::connection::{connect, Connection, SshSettings};
use super::error::{SshError, Step};
use super::shell::{KeptShell, ShellError};
use super::stop::{Cut, Stop};
use super::target::Target;
use crate::transport::capture::Capture;
use crate::transport::download::{Attrs, Kind, Tree};
use crate::transport::{
    DownloadOptions, Downloaded, ExecOutput, ExecRequest, LineSink, Pipe, Stream, Transport,
    TransportError,
};

/// sshd allows 10 sessions per connection by default; keep one for SFTP and one for the kept
/// shell.
const CHANNELS_PER_CONNECTION: usize = 8;
/// Bytes per SFTP write while streaming a file.
const CHUNK: usize = 64 * 1024;

/// The first line of `command`, cut to a length that fits a message.
fn shortened(command: &str) -> String {
    const MAX: usize = 80;
    let line = command.lines().next().unwrap_or_default();
    if line.chars().count() <= MAX && line.len() == command.len() {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(MAX).collect::<String>())
    }
}

/// One host reached over SSH.
pub struct SshTransport {
    target: Target,
    settings: Arc<SshSettings>,
    connection: OnceCell<Connection>,
    sftp: OnceCell<SftpSession>,
    channels: Semaphore,
    shell: tokio::sync::Mutex<ShellSlot>,
}

/// The kept shell of a transport, when there is one to use.
enum ShellSlot {
    /// None started yet, or the last one ended: the next command starts one.
    Idle(Option<KeptShell>),
    /// This login does not run a kept shell: every command gets its own channel.
    Off,
}

impl SshTransport {
    /// A transport to `target`; nothing connects until `connect` or the first use.
    pub fn new(target: Target, settings: Arc<SshSettings>) -> Self {
        SshTransport {
            target,
            settings,
            connection: OnceCell::new(),
            sftp: OnceCell::new(),
            channels: Semaphore::new(CHANNELS_PER_CONNECTION),
            shell: tokio::sync::Mutex::new(ShellSlot::Idle(None)),
        }
    }

    /// The connection, opened on first use; `step` names what is about to use it, for the
    /// error when it has ended.
    async fn connection(&self, step: &str) -> Result<&Connection, SshError> {
        let connection = self
            .connection
            .get_or_try_init(|| connect(&self.settings, &self.target))
            .await?;
        // The connection is opened once and kept after it ends (no reconnection): every later
        // step would fail with russh's bare "Channel send error", which names neither the host
        // nor the cause.
        if connection.handle.is_closed() {
            return Err(self.closed(step));
        }
        Ok(connection)
    }

    /// The error for `step`, which could not start because the connection has ended.
    fn closed(&self, step: &str) -> SshError {
        SshError::Closed {
            target: self.target.to_string(),
            step: step.to_string(),
        }
    }

    /// `err` from starting `step`, told as a lost connection when that is what it was: the
    /// connection can end between the check in `connection` and the step's first message.
    fn starting(&self, step: &str, err: impl Into<SshError>) -> SshError {
        match self.connection.get() {
            Some(connection) if connection.handle.is_closed() => self.closed(step),
            _ => err.into(),
        }
    }

    /// The SFTP session, started on first use within `--connect-timeout` (a channel, the
    /// subsystem, the protocol's version): a subsystem that never answers fails naming it.
    async fn sftp(&self) -> Result<&SftpSession, SshError> {
        const STEP: &str = "the file transfer";
        // Checked on every use, not only the first: the session outlives its connection.
        let connection = self.connection(STEP).await?;
        self.sftp
            .get_or_try_init(|| async {
                let start = async {
                    let channel = connection
                        .handle
                        .channel_open_session()
                        .await
                        .map_err(|e| self.starting(STEP, e))?;
                    // Unless the connection itself ended meanwhile (`starting` says so).
                    let no_sftp = |reason: String| {
                        let err = SshError::NoSftp {
                            target: self.target.to_string(),
                            reason,
                        };
                        self.starting(STEP, err)
                    };
                    channel
                        .request_subsystem(true, "sftp")
                        .await
                        .map_err(|e| no_sftp(e.to_string()))?;
                    let config = russh_sftp::client::Config {
                        max_concurrent_writes: self.settings.sftp_writes,
                        // Each request later gets as long as the start did, and never less
                        // than 30 s: a write of many in flight on a slow link or a busy host
                        // waits its turn (10 s cut a 300 MiB upload to a loaded machine).
                        request_timeout_secs: self.settings.connect_timeout.as_secs().max(30),
                        ..Default::default()
                    };
                    SftpSession::new_with_config(channel.into_stream(), config)
                        .await
                        .map_err(|e| no_sftp(e.to_string()))
                };
                match tokio::time::timeout(self.settings.connect_timeout, start).await {
                    Ok(result) => result,
                    Err(_) => Err(self.stalled(Step::FileTransfer)),
                }
            })
            .await
    }

    /// The error for `step`, which got no answer within `--connect-timeout`.
    fn stalled(&self, step: Step) -> SshError {
        SshError::Stalled {
            target: self.target.to_string(),
            step,
            seconds: self.settings.connect_timeout.as_secs(),
        }
    }

    /// How long a TERM for a command cut short by `cut` may take to send and end it: a few
    /// seconds after a timeout (the host may be slow, not gone), fewer after Ctrl-C (the run
    /// must end, but not before what it cut short has, or a cleanup step would race it).
    fn term_bound(cut: Cut) -> std::time::Duration {
        match cut {
            Cut::Deadline => std::time::Duration::from_secs(5),
            // Inside the 2 s a Ctrl-C may take to end the run.
            Cut::Cancelled => std::time::Duration::from_millis(1500),
        }
    }

    /// Runs a plain command (no input, no stream) in the kept shell, with what `run_channel`
    /// returns; `None` when the shell is busy with another command of this host or this
    /// login cannot keep one, so the command goes to a channel of its own.
    async fn run_in_shell(
        &self,
        request: &ExecRequest,
        stop: &mut Stop,
        sink: &dyn LineSink,
    ) -> Result<Option<Result<ExecOutput, Cut>>, SshError> {
        let Ok(mut slot) = self.shell.try_lock() else {
            return Ok(None);
        };
        // Taken out while the command runs: a run cut short (an interrupt drops this future)
        // leaves no shell in the middle of a command for the next one to read.
        let outcome = match std::mem::replace(&mut *slot, ShellSlot::Idle(None)) {
            ShellSlot::Off => {
                *slot = ShellSlot::Off;
                return Ok(None);
            }
            ShellSlot::Idle(Some(shell)) => shell.run(&request.command, stop, sink).await,
            ShellSlot::Idle(None) => {
                let step = format!("`{}`", shortened(&request.command));
                let connection = match stop.bound(self.connection(&step)).await {
                    Ok(connection) => connection?,
                    Err(cut) => return Ok(Some(Err(cut))),
                };
                // The shell answers within `--connect-timeout`, as the other steps of a
                // login, and within the command's deadline: a forced command that never reads
                // its input (`sleep`) would otherwise hold the host for the whole command
                // timeout.
                let started = KeptShell::start(
                    &connection.handle,
                    &request.command,
                    stop,
                    sink,
                    self.settings.connect_timeout,
                )
                .await;
                match started {
                    Err(ShellError::Unavailable) => {
                        tracing::debug!("{}: no kept shell; one channel per command", self.target);
                        *slot = ShellSlot::Off;
                        return Ok(None);
                    }
                    Err(ShellError::Stalled) => {
                        return Err(SshError::ShellStalled {
                            target: self.target.to_string(),
                            command: shortened(&request.command),
                            seconds: self.settings.connect_timeout.as_secs(),
                        })
                    }
                    Err(ShellError::Ssh(err)) => return Err(self.starting(&step, err)),
                    other => other,
                }
            }
        };
        match outcome {
            Ok((shell, output)) => {
                *slot = ShellSlot::Idle(shell);
                Ok(Some(Ok(output)))
            }
            Err(ShellError::Cut { pid: None, cut }) => Ok(Some(Err(cut))),
            Err(ShellError::Cut {
                pid: Some(pid),
                cut,
            }) => {
                // Not every sshd passes a signal on, so the TERM goes by a command of its own
                // (to the shell, whose trap ends the command's tree), which then waits up to
                // 1 s for that shell to be gone: a step that runs after Ctrl-C (a link switched
                // back) must not race the end of the one cut short (its `mv` landing after).
                // A host that stopped answering gets a few seconds, not the rest of the run.
                let kill = ExecRequest {
                    command: format!(
                        "kill -TERM {pid} 2>/dev/null; n=0; \
                         while kill -0 {pid} 2>/dev/null && [ $n -lt 10 ]; do sleep 0.1; n=$((n+1)); done"
                    ),
                    ..ExecRequest::default()
                };
                let mut unbounded = Stop::new(None, None);
                let sent = self.run_own_channel(&kill, Pipe::default(), &mut unbounded, &Quiet);
                let _ = tokio::time::timeout(Self::term_bound(cut), sent).await;
                Ok(Some(Err(cut)))
            }
            Err(ShellError::Ssh(err)) => Err(err),
            Err(ShellError::Lost | ShellError::Unavailable | ShellError::Stalled) => {
                Err(SshError::ConnectionLost {
                    target: self.target.to_string(),
                    command: shortened(&request.command),
                })
            }
        }
    }

    /// Runs the request in the kept shell when it can, else on a channel of its own, with
    /// `pipe`'s streams wired to it; `Err(cut)` when its deadline or an interrupt ended it
    /// first (the command then gets TERM and the channel is closed, so sessions never pile up).
    async fn run_channel(
        &self,
        request: &ExecRequest,
        pipe: Pipe<'_>,
        sink: &dyn LineSink,
    ) -> Result<Result<ExecOutput, Cut>, SshError> {
        // One stop for every wait of the command, from the channel's opening (which a stalled
        // host never answers) to its last message.
        let mut stop = Stop::new(deadline(request.timeout), request.cancel.clone());
        let plain = request.stdin.is_none()
            && pipe.input.is_none()
            && pipe.output.is_none()
            && pipe.error.is_none();
        if plain {
            if let Some(outcome) = self.run_in_shell(request, &mut stop, sink).await? {
                return Ok(outcome);
            }
        }
        self.run_own_channel(request, pipe, &mut stop, sink).await
    }

    /// Runs the request on a channel of its own; see `run_channel`.
    async fn run_own_channel(
        &self,
        request: &ExecRequest,
        pipe: Pipe<'_>,
        stop: &mut Stop,
        sink: &dyn LineSink,
    ) -> Result<Result<ExecOutput, Cut>, SshError> {
        let step = format!("`{}`", shortened(&request.command));
        let connection = match stop.bound(self.connection(&step)).await {
            Ok(connection) => connection?,
            Err(cut) => return Ok(Err(cut)),
        };
        let _permit = match stop.bound(self.channels.acquire()).await {
            Ok(permit) => permit,
            Err(cut) => return Ok(Err(cut)),
        };
        let channel = match stop.bound(connection.handle.channel_open_session()).await {
            Ok(channel) => channel.map_err(|e| self.starting(&step, e))?,
            Err(cut) => return Ok(Err(cut)),
        };
        match stop
            .bound(channel.exec(true, request.command.as_bytes()))
            .await
        {
            Ok(started) => started.map_err(|e| self.starting(&step, e))?,
            Err(cut) => {
                // The command may have started: it gets TERM as below.
                let end = async {
                    let _ = channel.signal(russh::Sig::TERM).await;
                    let _ = channel.close().await;
                };
                let _ = tokio::time::timeout(Self::term_bound(cut), end).await;
                return Ok(Err(cut));
            }
        }
        let (mut reader, writer) = channel.split();
        let Pipe {
            input,
            input_may_remain,
            mut output,
            mut error,
        } = pipe;
        let streams_input = input.is_some() && !input_may_remain;
        // Input is sent while output is read: a command that answers as it reads (or a dump
        // loaded through one) never waits on a full window in both directions.
        let feed = async {
            if let Some(stdin) = &request.stdin {
                writer.data(&stdin[..]).await?;
            }
            if let Some(input) = input {
                writer.data(input).await?;
            }
            writer.eof().await?;
            Ok::<_, SshError>(())
        };
        let mut out = Capture::new(Stream::Stdout);
        let mut err = Capture::new(Stream::Stderr);
        let mut code = None;
        let receive = async {
            loop {
                let msg = match stop.bound(reader.wait()).await {
                    Ok(msg) => msg,
                    Err(cut) => return Ok(Some(cut)),
                };
                let Some(msg) = msg else {
                    break;
                };
                // A stream wired by the caller gets the bytes as they come; else they
                // are shown and captured line by line.
                let (wired, capture, data) = match msg {
                    ChannelMsg::Data { data } => (output.as_mut(), &mut out, data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => (error.as_mut(), &mut err, data),
                    ChannelMsg::ExitStatus { exit_status } => {
                        code = Some(exit_status as i32);
                        continue;
                    }
                    ChannelMsg::ExitSignal { .. } => {
                        code = Some(-1);
                        continue;
                    }
                    _ => continue,
                };
                match wired {
                    Some(wired) => {
                        wired
                            .write_all(&data)
                            .await
                            .map_err(|source| SshError::Stream {
                                target: self.target.to_string(),
                                source,
                            })?
                    }
                    None => capture.push(&data, sink),
                }
            }
            for stream in [output.as_mut(), error.as_mut()].into_iter().flatten() {
                stream.flush().await.map_err(|source| SshError::Stream {
                    target: self.target.to_string(),
                    source,
                })?;
            }
            Ok::<_, SshError>(None)
        };
        // The channel's end decides: input still being sent then (a command that stopped
        // reading, a timeout) is dropped, never waited for.
        let (fed, finished) = {
            tokio::pin!(feed);
            tokio::pin!(receive);
            let mut fed = None;
            let finished = loop {
                tokio::select! {
                    result = &mut feed, if fed.is_none() => fed = Some(result),
                    result = &mut receive => break result,
                }
            };
            (fed, finished)
        };
        if let Some(cut) = finished? {
            let end = async {
                let _ = writer.signal(russh::Sig::TERM).await;
                let _ = writer.close().await;
            };
            let _ = tokio::time::timeout(Self::term_bound(cut), end).await;
            return Ok(Err(cut));
        }
        // A command may exit without reading all its input, which is no error of ours; but a
        // stream (a dump being loaded) that was not taken whole must not pass for a success.
        if streams_input && code == Some(0) {
            match fed {
                Some(Ok(())) => {}
                Some(Err(err)) => return Err(err),
                None => {
                    return Err(SshError::InputNotRead {
                        target: self.target.to_string(),
                        command: shortened(&request.command),
                    })
                }
            }
        }
        let stdout = out.finish(sink);
        let stderr = err.finish(sink);
        // The channel ended without an exit status or signal: the connection went away (sshd
        // killed, network cut), and nothing says whether the command stopped with it.
        let Some(code) = code else {
            return Err(SshError::ConnectionLost {
                target: self.target.to_string(),
                command: shortened(&request.command),
            });
        };
        Ok(Ok(ExecOutput {
            stdout,
            stderr,
            code,
        }))
    }

    /// Streams `reader` into a temporary file beside `path`, sets the mode and a whole-second
    /// mtime, then renames it over `path`, so a dropped connection never leaves a half-written
    /// target. `fresh`: a check has just found nothing at `path`. Returns the mtime.
    async fn write_atomic(
        &self,
        path: &str,
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
        fresh: bool,
        mut reader: impl tokio::io::AsyncRead + Unpin + Send,
    ) -> Result<Option<u64>, TransportError> {
        let sftp = self.sftp().await.map_err(TransportError::from)?;
        let _sending = self.settings.sending.acquire().await;
        let tmp = temporary_name(path);
        let file_error = |source: std::io::Error| TransportError::File {
            action: "cannot write",
            path: path.to_string(),
            source,
        };
        // The mode of the file replaced, read without following a link: a link's target is
        // not the file being replaced (and could be any file of the host).
        let mode = match mode {
            Some(mode) => Some(mode),
            None if fresh => None,
            None => sftp
                .symlink_metadata(path)
                .await
                .ok()
                .filter(|m| m.file_type().is_file())
                .and_then(|m| m.permissions)
                .map(|p| p & 0o7777),
        };
        let (folder, name) = match path.rsplit_once('/') {
            Some(("", name)) => ("/", name),
            Some((folder, name)) => (folder, name),
            None => (".", path),
        };
        let result = async {
            let mut attrs = FileAttributes::empty();
            attrs.permissions = Some(mode.unwrap_or(0o644));
            // A fresh random name opened exclusively: a link planted beside the target by
            // whoever owns its folder is never written through.
            let mut file = sftp
                .open_with_flags_and_attributes(
                    tmp.clone(),
                    OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
                    attrs,
                )
                .await
                .map_err(sftp_io)?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                file.write_all(&buf[..n]).await?;
            }
            // Through the open handle, not the name, which could be swapped for a link. The
            // owner goes first: a change of owner clears the set-user-id bit the mode may hold.
            let finish = |mut file: russh_sftp::client::fs::File| async move {
                if let Some((uid, gid)) = owner {
                    let mut attrs = FileAttributes::empty();
                    (attrs.uid, attrs.gid) = (Some(uid), Some(gid));
                    file.set_metadata(attrs).await.map_err(sftp_io)?;
                }
                let mut attrs = FileAttributes::empty();
                attrs.permissions = mode;
                let stamp = u32::try_from(crate::transport::stamp()).ok();
                (attrs.atime, attrs.mtime) = (stamp, stamp);
                let stamp = match file.set_metadata(attrs).await {
                    Ok(()) => stamp,
                    // A server that will not set times still gets the mode; the file then has no
                    // stamp, and its next check hashes it.
                    Err(_) if stamp.is_some() => {
                        if mode.is_some() {
                            let mut attrs = FileAttributes::empty();
                            attrs.permissions = mode;
                            file.set_metadata(attrs).await.map_err(sftp_io)?;
                        }
                        None
                    }
                    Err(err) => return Err(sftp_io(err)),
                };
                file.shutdown().await?;
                Ok::<_, std::io::Error>(stamp.map(u64::from))
            };
            // The folder's real path, for the rename below, asked along with the file's last
            // requests instead of a round trip after them (issue 33).
            let check = async {
                if fresh {
                    sftp.canonicalize(folder).await.ok()
                } else {
                    None
                }
            };
            let (finished, real_folder) = tokio::join!(finish(file), check);
            Ok::<_, std::io::Error>((finished?, real_folder))
        }
        .await;
        let (stamp, real_folder) = match result {
            Ok(done) => done,
            Err(err) => {
                let _ = sftp.remove_file(tmp.clone()).await;
                return Err(file_error(err));
            }
        };
        // Where the check found nothing, SFTP's rename puts the file in place without a command
        // (sshd's rename is a link then an unlink, which never replaces anything: whatever
        // appeared meanwhile, a planted link too, makes it fail, and the command below runs).
        // SFTP follows links on the way, so only where the folder's real path is the path
        // itself (no link on the way: `/home/u/x` made a link to `/etc` would put the file in
        // `/etc`). Leftovers of interrupted uploads are swept by the next replacement.
        if fresh
            && real_folder.as_deref() == Some(folder)
            && sftp.rename(tmp.clone(), path.to_string()).await.is_ok()
        {
            return Ok(stamp);
        }
        // The rename runs in the target's folder, entered name by name without following a
        // link that another user owns (`shell::enter`): a link planted on the way (`/home/u/x`
        // to `/etc`) fails the write instead of replacing a file where it leads. The same
        // command sweeps what interrupted uploads to this target left behind (their names are
        // random too); `rm` removes a planted link itself, never what it points to, and runs
        // only when the glob found something.
        let temporary = tmp.rsplit_once('/').map_or(tmp.as_str(), |(_, n)| n);
        let leftovers = format!(
            "./{}{}",
            crate::shell::quote(&format!(".{name}.weft-")),
            "?".repeat(16)
        );
        let rename = ExecRequest {
            command: format!(
                "{} && mv -f -T -- ./{} ./{} && set -- {leftovers} && \
                 if [ -e \"$1\" ] || [ -L \"$1\" ]; then rm -f -- \"$@\"; fi",
                crate::shell::enter(folder, false),
                crate::shell::quote(temporary),
                crate::shell::quote(name)
            ),
            ..ExecRequest::default()
        };
        // No deadline and no cancel: the rename is as quick as any command, and the session
        // bounds the whole write.
        let out = self
            .run_channel(&rename, Pipe::default(), &Quiet)
            .await
            .map_err(TransportError::from)?
            .map_err(|_| file_error(std::io::Error::other("the rename was cut short")))?;
        if out.code != 0 {
            let _ = sftp.remove_file(tmp).await;
            return Err(file_error(std::io::Error::other(
                out.stderr.trim().to_string(),
            )));
        }
        Ok(stamp)
    }
}

/// A host's file system over SFTP, as a download walks it. SFTP opens follow links and have
/// no `O_NOFOLLOW`: each file is looked at (`lstat`) before and its handle (`fstat`) after the
/// open, and both must agree (see `transport::download`).
struct SftpTree<'a>(&'a SftpSession);

fn sftp_attrs(meta: &FileAttributes) -> Attrs {
    let mode = meta.permissions.unwrap_or(0);
    Attrs {
        kind: Kind::of_mode(mode),
        size: meta.size.unwrap_or(0),
        mode: mode & 0o7777,
        owner: (meta.uid.unwrap_or(0), meta.gid.unwrap_or(0)),
        mtime: i64::from(meta.mtime.unwrap_or(0)),
        inode: None,
    }
}

#[async_trait]
impl Tree for SftpTree<'_> {
    type Reader = russh_sftp::client::fs::File;

    async fn lstat(&self, path: &str) -> std::io::Result<Attrs> {
        let meta = self.0.symlink_metadata(path).await.map_err(sftp_io)?;
        Ok(sftp_attrs(&meta))
    }

    async fn stat(&self, path: &str) -> std::io::Result<Attrs> {
        let meta = self.0.metadata(path).await.map_err(sftp_io)?;
        Ok(sftp_attrs(&meta))
    }

    async fn canonical(&self, path: &str) -> std::io::Result<String> {
        self.0.canonicalize(path).await.map_err(sftp_io)
    }

    async fn read_link(&self, path: &str) -> std::io::Result<String> {
        self.0.read_link(path).await.map_err(sftp_io)
    }

    async fn list(&self, path: &str) -> std::io::Result<Vec<String>> {
        let entries = self.0.read_dir(path).await.map_err(sftp_io)?;
        Ok(entries.map(|e| e.file_name()).collect())
    }

    async fn open(&self, path: &str, _follow: bool) -> std::io::Result<(Self::Reader, Attrs)> {
        let file = self.0.open(path).await.map_err(sftp_io)?;
        let meta = file.metadata().await.map_err(sftp_io)?;
        Ok((file, sftp_attrs(&meta)))
    }
}

/// Why the file opened at a path is not the regular file that path names now, if it is not.
fn not_the_file_opened(
    opened: &russh_sftp::client::fs::Metadata,
    named: &russh_sftp::client::fs::Metadata,
) -> Option<&'static str> {
    // By the whole type field: `is_regular` tests bits that a link's type holds too.
    if named.file_type().is_symlink() {
        return Some(LINK_REFUSED);
    }
    if !named.file_type().is_file() || !opened.file_type().is_file() {
        return Some("it is not a regular file");
    }
    let facts =
        |m: &russh_sftp::client::fs::Metadata| (m.uid, m.gid, m.permissions, m.size, m.mtime);
    (facts(opened) != facts(named)).then_some("it was replaced while weft read it")
}

/// Why weft does not read or write a file through a link.
const LINK_REFUSED: &str =
    "it is a symbolic link, and weft never edits a file through a link (its target could be any file of the host)";

fn sftp_io(err: russh_sftp::client::error::Error) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

/// A hidden temporary name beside `path` (so the rename stays on one filesystem), random so
/// that nobody can plant a link under it in advance.
fn temporary_name(path: &str) -> String {
    format!("{}{:016x}", temporary_prefix(path), fastrand::u64(..))
}

/// `dir/.name.weft-`: what every temporary name of `path` starts with.
fn temporary_prefix(path: &str) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), path),
    };
    format!("{dir}.{name}.weft-")
}

struct Quiet;

impl LineSink for Quiet {
    fn line(&self, _: Stream, _: &str) {}
}

/// Splits a byte stream into lines for the sink while keeping the whole text.
#[async_trait]
impl Transport for SshTransport {
    async fn connect(&self) -> Result<(), TransportError> {
        self.connection("the login").await?;
        Ok(())
    }

    async fn close(&self) {
        if let Some(connection) = self.connection.get() {
            // Only queued for the connection's task, which a stalled host may keep from
            // taking it: a moment, then the connection is dropped with the transport.
            let bye = connection
                .handle
                .disconnect(russh::Disconnect::ByApplication, "", "");
            let _ = tokio::time::timeout(std::time::Duration::from_millis(250), bye).await;
        }
    }

    async fn exec_piped(
        &self,
        request: &ExecRequest,
        pipe: Pipe<'_>,
        sink: &dyn LineSink,
    ) -> Result<ExecOutput, TransportError> {
        match self.run_channel(request, pipe, sink).await? {
            Ok(output) => Ok(output),
            Err(Cut::Deadline) => Err(TransportError::Timeout {
                command: request.command.clone(),
                timeout: request.timeout.unwrap_or_default(),
            }),
            Err(Cut::Cancelled) => Err(TransportError::Interrupted {
                command: request.command.clone(),
            }),
        }
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, TransportError> {
        let sftp = self.sftp().await?;
        let result = async {
            let mut file = sftp.open(path).await?;
            let mut data = Vec::new();
            file.read_to_end(&mut data)
                .await
                .map_err(|e| russh_sftp::client::error::Error::IO(e.to_string()))?;
            Ok::<_, russh_sftp::client::error::Error>(data)
        }
        .await;
        match result {
            Ok(data) => Ok(Some(data)),
            Err(russh_sftp::client::error::Error::Status(status))
                if status.status_code == StatusCode::NoSuchFile =>
            {
                Ok(None)
            }
            Err(err) => Err(TransportError::File {
                action: "cannot read",
                path: path.to_string(),
                source: sftp_io(err),
            }),
        }
    }

    async fn read_regular_file(&self, path: &str) -> Result<Option<Vec<u8>>, TransportError> {
        let sftp = self.sftp().await?;
        let cannot_read = |source| TransportError::File {
            action: "cannot read",
            path: path.to_string(),
            source,
        };
        // SFTP has no O_NOFOLLOW: the file is opened, then what the handle holds is compared
        // with what the name holds now, unfollowed. A link swapped in for the open and a
        // regular file swapped back would need the linked file's owner, mode, size and mtime,
        // which a user who cannot read that file cannot forge.
        let mut file = match sftp.open(path).await {
            Ok(file) => file,
            Err(russh_sftp::client::error::Error::Status(status))
                if status.status_code == StatusCode::NoSuchFile =>
            {
                // Nothing, or a link to nothing: the caller's check tells which.
                return Ok(None);
            }
            Err(err) => return Err(cannot_read(sftp_io(err))),
        };
        let (opened, named) = tokio::join!(file.metadata(), sftp.symlink_metadata(path));
        let (opened, named) = (
            opened.map_err(|e| cannot_read(sftp_io(e)))?,
            named.map_err(|e| cannot_read(sftp_io(e)))?,
        );
        if let Some(why) = not_the_file_opened(&opened, &named) {
            return Err(cannot_read(std::io::Error::other(why)));
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data).await.map_err(cannot_read)?;
        Ok(Some(data))
    }

    fn small_files_by_command(&self) -> bool {
        // Even once SFTP is open: one round trip against four (open, write, close, rename),
        // for some six short processes of the host's (1,000 hosts took as long either way on
        // the bench, where the hosts share the controller's two cores).
        true
    }

    async fn write_file(
        &self,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
        fresh: bool,
    ) -> Result<Option<u64>, TransportError> {
        self.write_atomic(path, mode, owner, fresh, data).await
    }

    async fn upload_file(
        &self,
        local: &Path,
        remote: &str,
        mode: Option<u32>,
        fresh: bool,
    ) -> Result<Option<u64>, TransportError> {
        let file = tokio::fs::File::open(local)
            .await
            .map_err(|source| TransportError::File {
                action: "cannot read local",
                path: local.display().to_string(),
                source,
            })?;
        self.write_atomic(remote, mode, None, fresh, file).await
    }

    async fn download_file(
        &self,
        remote: &str,
        local: &Path,
        options: DownloadOptions<'_>,
    ) -> Result<Downloaded, TransportError> {
        let sftp = self.sftp().await?;
        crate::transport::download::download(&SftpTree(sftp), remote, local, options).await
    }
}

/// When a command given `timeout` must end; a timeout past what the clock can hold (a script's
/// `timeout: 1e18`) is no deadline.
fn deadline(timeout: Option<std::time::Duration>) -> Option<tokio::time::Instant> {
    timeout.and_then(|t| tokio::time::Instant::now().checked_add(t))
}
