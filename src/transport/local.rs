//! The local transport: this machine, commands through `sh -c`, files through the filesystem.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::capture::Capture;
use super::download::{Attrs, Kind, Tree};
use super::{
    DownloadOptions, Downloaded, ExecOutput, ExecRequest, LineSink, Pipe, Stream, Transport,
    TransportError,
};
use crate::lockfile::replace_atomically;

/// Runs everything on this machine, relative paths taken from `cwd`.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    cwd: PathBuf,
}

impl LocalTransport {
    /// A transport whose commands start in `cwd`.
    pub fn new(cwd: PathBuf) -> Self {
        LocalTransport { cwd }
    }

    fn path(&self, path: &str) -> PathBuf {
        self.cwd.join(path)
    }
}

async fn pump(
    mut reader: impl AsyncRead + Unpin,
    stream: Stream,
    sink: &dyn LineSink,
) -> std::io::Result<String> {
    let mut capture = Capture::new(stream);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        capture.push(&buf[..n], sink);
    }
    Ok(capture.finish(sink))
}

/// One output stream of a command: copied whole to `to` when the caller wired one (its text
/// is then empty), else shown and captured line by line.
async fn drain(
    from: Option<impl AsyncRead + Unpin>,
    to: Option<&mut (dyn tokio::io::AsyncWrite + Unpin + Send)>,
    stream: Stream,
    sink: &dyn LineSink,
) -> std::io::Result<String> {
    match (from, to) {
        (Some(mut from), Some(to)) => {
            tokio::io::copy(&mut from, to).await?;
            to.flush().await?;
            Ok(String::new())
        }
        (Some(from), None) => pump(from, stream, sink).await,
        (None, _) => Ok(String::new()),
    }
}

#[async_trait]
impl Transport for LocalTransport {
    async fn exec_piped(
        &self,
        request: &ExecRequest,
        pipe: Pipe<'_>,
        sink: &dyn LineSink,
    ) -> Result<ExecOutput, TransportError> {
        let spawn_error = |source| TransportError::Spawn {
            command: request.command.clone(),
            source,
        };
        let has_input = request.stdin.is_some() || pipe.input.is_some();
        let mut command = Command::new("sh");
        // A session (so a process group) of its own, as a remote command has: the terminal's
        // Ctrl-C goes to weft alone (which then stops the command as it stops a remote one),
        // and what the command starts in the background is stopped with it. Without a
        // controlling terminal, a command that opens /dev/tty (a passphrase prompt) fails at
        // once instead of being stopped, as a background group reading the terminal would be.
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .arg("-c")
            .arg(&request.command)
            // Builds, tests and pip run here: they never see weft's own secrets.
            .env_remove(super::ssh::auth::PASSPHRASE_ENV)
            .env_remove(super::SUDO_PASSWORD_ENV)
            .current_dir(&self.cwd)
            .stdin(if has_input {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_error)?;
        let mut group = Group(child.id());
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let Pipe {
            input,
            input_may_remain,
            output,
            error,
        } = pipe;
        let streams_input = input.is_some() && !input_may_remain;
        let run = async {
            // Whether all of `input` went in: a command may exit without reading its input,
            // which is no error of ours unless it was given a stream to take whole.
            let feed = async {
                let Some(mut stdin) = stdin else {
                    return Ok(true);
                };
                if let Some(bytes) = request.stdin.as_ref() {
                    if stdin.write_all(bytes).await.is_err() {
                        return Ok(false);
                    }
                }
                if let Some(input) = input {
                    match tokio::io::copy(input, &mut stdin).await {
                        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                            return Ok(false)
                        }
                        Err(err) => return Err(err),
                        Ok(_) => {}
                    }
                }
                Ok::<_, std::io::Error>(true)
            };
            let (fed, out, err) = tokio::join!(
                feed,
                drain(stdout, output, Stream::Stdout, sink),
                drain(stderr, error, Stream::Stderr, sink)
            );
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((
                fed?,
                ExecOutput {
                    stdout: out?,
                    stderr: err?,
                    code: status.code().unwrap_or(-1),
                },
            ))
        };
        let run = async {
            let (whole, output) = run.await.map_err(spawn_error)?;
            if streams_input && !whole && output.code == 0 {
                return Err(TransportError::InputNotRead {
                    command: request.command.clone(),
                });
            }
            Ok(output)
        };
        // A command cut short is dropped, which kills its shell (`kill_on_drop`); its group
        // gets TERM (`Group`), as a remote command's tree does.
        let deadline = async {
            match request.timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match &request.cancel {
                Some(cancel) => cancel.wait().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = run => {
                // Ended on its own: what it left running in the background is meant to stay.
                group.0 = None;
                result
            }
            () = deadline => Err(TransportError::Timeout {
                command: request.command.clone(),
                timeout: request.timeout.unwrap_or_default(),
            }),
            () = cancelled => Err(TransportError::Interrupted {
                command: request.command.clone(),
            }),
        }
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, TransportError> {
        match tokio::fs::read(self.path(path)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(TransportError::File {
                action: "cannot read",
                path: path.into(),
                source,
            }),
        }
    }

    async fn read_regular_file(&self, path: &str) -> Result<Option<Vec<u8>>, TransportError> {
        let cannot_read = |source| TransportError::File {
            action: "cannot read",
            path: path.into(),
            source,
        };
        let mut file = match open_regular(&self.path(path)).await {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(cannot_read(err)),
        };
        let mut data = Vec::new();
        file.read_to_end(&mut data).await.map_err(cannot_read)?;
        Ok(Some(data))
    }

    async fn write_file(
        &self,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
        _fresh: bool,
    ) -> Result<Option<u64>, TransportError> {
        let target = self.path(path);
        no_foreign_link_on_the_way(&target).map_err(|source| TransportError::File {
            action: "cannot write",
            path: path.into(),
            source,
        })?;
        let mode = Some(file_mode(&target, mode).await);
        replace_atomically(&target, mode, |mut file| async move {
            file.write_all(data).await?;
            file.sync_all().await?;
            // By descriptor, before the rename; the mode follows (a change of owner clears
            // the set-user-id bit).
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
            }
            Ok(file)
        })
        .await
        .map_err(|source| TransportError::File {
            action: "cannot write",
            path: path.into(),
            source,
        })?;
        Ok(None)
    }

    async fn upload_file(
        &self,
        local: &Path,
        remote: &str,
        mode: Option<u32>,
        _fresh: bool,
    ) -> Result<Option<u64>, TransportError> {
        let target = self.path(remote);
        no_foreign_link_on_the_way(&target).map_err(|source| TransportError::File {
            action: "cannot write",
            path: remote.into(),
            source,
        })?;
        let mode = Some(file_mode(&target, mode).await);
        copy_atomic(local, &target, mode)
            .await
            .map_err(|source| TransportError::File {
                action: "cannot write",
                path: remote.into(),
                source,
            })?;
        Ok(None)
    }

    async fn download_file(
        &self,
        remote: &str,
        local: &Path,
        options: DownloadOptions<'_>,
    ) -> Result<Downloaded, TransportError> {
        let remote = self.path(remote).display().to_string();
        super::download::download(&LocalTree, &remote, local, options).await
    }
}

/// The process group of a running local command (its shell's pid, `setsid` made it lead one), sent TERM when dropped
/// before the command ended: on its deadline, on Ctrl-C, or when the step is abandoned.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        let Some(pgid) = self.0.and_then(|pid| libc::pid_t::try_from(pid).ok()) else {
            return;
        };
        // SAFETY: kill has no memory preconditions; a group already gone is ESRCH, ignored.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
    }
}

/// This machine's file system, as a download walks it.
struct LocalTree;

fn attrs(meta: &std::fs::Metadata) -> Attrs {
    use std::os::unix::fs::MetadataExt;
    Attrs {
        kind: Kind::of_mode(meta.mode()),
        size: meta.len(),
        mode: meta.mode() & 0o7777,
        owner: (meta.uid(), meta.gid()),
        mtime: meta.mtime(),
        inode: Some((meta.dev(), meta.ino())),
    }
}

#[async_trait]
impl Tree for LocalTree {
    type Reader = tokio::fs::File;

    async fn lstat(&self, path: &str) -> std::io::Result<Attrs> {
        Ok(attrs(&tokio::fs::symlink_metadata(path).await?))
    }

    async fn stat(&self, path: &str) -> std::io::Result<Attrs> {
        Ok(attrs(&tokio::fs::metadata(path).await?))
    }

    async fn canonical(&self, path: &str) -> std::io::Result<String> {
        Ok(tokio::fs::canonicalize(path).await?.display().to_string())
    }

    async fn read_link(&self, path: &str) -> std::io::Result<String> {
        Ok(tokio::fs::read_link(path).await?.display().to_string())
    }

    async fn list(&self, path: &str) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        let mut entries = tokio::fs::read_dir(path).await?;
        while let Some(entry) = entries.next_entry().await? {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    async fn open(&self, path: &str, follow: bool) -> std::io::Result<(tokio::fs::File, Attrs)> {
        use std::os::unix::fs::OpenOptionsExt;
        // Never through a link unless following one, and never waiting on a FIFO put in the
        // file's place: what the handle is gets checked against what was looked at.
        let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nofollow | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)?;
        let opened = attrs(&file.metadata()?);
        Ok((tokio::fs::File::from_std(file), opened))
    }
}

/// Opens the regular file at `path` for reading, never through a link (`O_NOFOLLOW`), and
/// without blocking, so a fifo swapped in is refused, not waited on.
async fn open_regular(path: &Path) -> std::io::Result<tokio::fs::File> {
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .await
        .map_err(|err| {
            // O_NOFOLLOW's answer to a link.
            if err.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other(
                    "it is a symbolic link, and weft never edits a file through a link (its target could be any file of the host)",
                )
            } else {
                err
            }
        })?;
    if !file.metadata().await?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    Ok(file)
}

/// Fails when a folder on the way to `target` is a symbolic link that neither root nor the
/// user weft runs as owns, as `shell::enter` does on a host: a link planted in a folder of
/// another user (`/home/u/x` to `/etc`) would have the file written where it leads. The check
/// comes before the write, so a link swapped in between the two is not caught; one planted
/// beforehand is.
fn no_foreign_link_on_the_way(target: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let Some(folder) = target.parent() else {
        return Ok(());
    };
    let mut on_the_way = PathBuf::new();
    for part in folder.components() {
        on_the_way.push(part);
        let meta = match std::fs::symlink_metadata(&on_the_way) {
            Ok(meta) => meta,
            // What is missing is for the write to report.
            Err(_) => return Ok(()),
        };
        if meta.file_type().is_symlink() && meta.uid() != 0 && meta.uid() != me {
            return Err(std::io::Error::other(format!(
                "{} is a symbolic link of user {}: weft follows no link that another user \
                 could change (it could lead to any folder of the host)",
                on_the_way.display(),
                meta.uid()
            )));
        }
    }
    Ok(())
}

/// The mode a written file gets, as over SSH: the one asked for, else the replaced file's,
/// else 0644 for a new file (readable by a web server, unlike a temporary file's 0600).
async fn file_mode(target: &Path, mode: Option<u32>) -> u32 {
    match mode {
        Some(mode) => mode,
        // The replaced file's own mode, never that of a link's target.
        None => tokio::fs::symlink_metadata(target)
            .await
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map_or(0o644, |m| m.permissions().mode() & 0o7777),
    }
}

/// Copies `from` to a temporary sibling of `to`, sets the mode, then renames it into place.
async fn copy_atomic(from: &Path, to: &Path, mode: Option<u32>) -> std::io::Result<()> {
    replace_atomically(to, mode, |mut file| async move {
        let mut source = tokio::fs::File::open(from).await?;
        tokio::io::copy(&mut source, &mut file).await?;
        file.sync_all().await?;
        Ok(file)
    })
    .await
}
