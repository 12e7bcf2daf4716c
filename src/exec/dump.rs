//! Dumps and loads of data services (issue 14). A dump is a command's standard output,
//! compressed with gzip on the host, streamed through the connection into a file of the
//! controller: written under a hidden temporary name while it streams, its SHA-256 computed on
//! the way and written to `<file>.sha256`, and only then renamed into place, so an interrupted
//! dump never looks complete and memory stays flat for any size. A load verifies that
//! checksum before it touches the host, then streams the file back into a command.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use sha2::Digest;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::session::HostSession;
use super::step::HostError;
use crate::transport::Pipe;

// Where it was before step.rs, so its importers need not change.
pub use super::step::DumpError;

/// A complete dump on this machine.
#[derive(Debug, Clone)]
pub struct Dumped {
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes (compressed).
    pub bytes: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// Streams the output of `command` on the session's host, gzip-compressed there, into
/// `target` (relative paths start at the project) with its `.sha256`. `None` under `--check`.
pub fn dump(
    session: &HostSession,
    command: &str,
    target: &str,
) -> Result<Option<Dumped>, HostError> {
    let target = session.local_path(target);
    if session.is_check() {
        session.log(&format!("would dump `{command}` to {}", target.display()));
        return Ok(None);
    }
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DumpError::Write { path, source }
    };
    if let Some(folder) = target.parent() {
        std::fs::create_dir_all(folder).map_err(write_error(folder))?;
    }
    let tmp = crate::lockfile::temporary_sibling(&target);
    let streamed = session.block_on(async {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .await
            .map_err(write_error(&tmp))?;
        let mut out = Hashing::new(file);
        let pipe = Pipe {
            output: Some(&mut out),
            ..Pipe::default()
        };
        session
            .exec_piped(&compressed(command), command, pipe)
            .await?;
        out.flush().await.map_err(write_error(&tmp))?;
        out.inner.sync_all().await.map_err(write_error(&tmp))?;
        Ok::<_, HostError>((out.bytes, hex(&out.hasher.finalize())))
    });
    let (bytes, sha256) = match streamed {
        Ok(done) => done,
        Err(err) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(err);
        }
    };
    // The checksum goes in first: a file under the dump's own name always has one.
    let sum = checksum_path(&target);
    let line = format!("{sha256}  {}\n", file_name(&target));
    let placed = session.block_on(async {
        crate::lockfile::replace_atomically(&sum, Some(0o644), |mut file| async move {
            file.write_all(line.as_bytes()).await?;
            file.sync_all().await?;
            Ok(file)
        })
        .await
        .map_err(write_error(&sum))?;
        tokio::fs::rename(&tmp, &target)
            .await
            .map_err(write_error(&target))
    });
    if let Err(err) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(err.into());
    }
    session.log(&format!(
        "dumped {} bytes to {} (sha256 {})",
        bytes,
        target.display(),
        &sha256[..12]
    ));
    Ok(Some(Dumped {
        path: target,
        bytes,
        sha256,
    }))
}

/// Verifies `source` against its `.sha256`, then streams it into `command` on the session's
/// host, decompressed there. Returns whether it loaded (`false` under `--check`).
pub fn load(session: &HostSession, source: &str, command: &str) -> Result<bool, HostError> {
    let source = session.local_path(source);
    let dumped = verify(&source)?;
    if session.is_check() {
        session.log(&format!("would load {} into `{command}`", source.display()));
        return Ok(false);
    }
    stream_in(session, &source, command, command)?;
    session.changed(&format!(
        "loaded {} ({} bytes)",
        source.display(),
        dumped.bytes
    ));
    Ok(true)
}

/// Where a load's result goes: `path` on the host, replaced by what the load's command left
/// under the name `new` in a private folder beside it (`exec::stage`), with `owner`, `group`
/// and `mode` set on weft's own copy before the rename.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// The file or folder replaced.
    pub path: String,
    /// Owning user (a name or id), set with `chown -R`.
    pub owner: Option<String>,
    /// Owning group.
    pub group: Option<String>,
    /// Permission bits of the file or folder itself.
    pub mode: Option<u32>,
}

/// Verifies every file of `sources`, then streams each into `command`, run inside a private
/// folder beside `placement.path` (so it writes only there, through names nobody else can
/// create or swap), and puts what the command left as `new` in place. Returns whether it
/// loaded (`false` under `--check`, which only verifies).
pub fn load_into(
    session: &HostSession,
    sources: &[String],
    command: &str,
    placement: &Placement,
) -> Result<bool, HostError> {
    if !placement.path.starts_with('/') {
        return Err(HostError::Operation {
            op: format!("load into {}", placement.path),
            message: "`into` must be an absolute path".into(),
        });
    }
    let verified = sources
        .iter()
        .map(|source| {
            let path = session.local_path(source);
            verify(&path).map(|dumped| (path, dumped))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if session.is_check() {
        session.log(&format!(
            "would load {} files into {} through `{command}`",
            verified.len(),
            placement.path
        ));
        return Ok(false);
    }
    let stage = super::stage::Stage::beside(session, &placement.path)?;
    let loaded = verified.iter().try_for_each(|(path, dumped)| {
        stream_in(session, path, &stage.command(command), command)?;
        session.log(&format!(
            "loaded {} ({} bytes) into a private folder beside {}",
            path.display(),
            dumped.bytes,
            placement.path
        ));
        Ok::<_, HostError>(())
    });
    if let Err(err) = loaded {
        stage.remove(session);
        return Err(err);
    }
    stage.place(
        session,
        &placement.path,
        placement.owner.as_deref(),
        placement.group.as_deref(),
        placement.mode,
    )?;
    session.changed(&format!(
        "loaded {} into {}",
        describe(&verified),
        placement.path
    ));
    Ok(true)
}

/// `a.gz` or `3 files`, for a step's report.
fn describe(verified: &[(PathBuf, Dumped)]) -> String {
    match verified {
        [(path, dumped)] => format!("{} ({} bytes)", path.display(), dumped.bytes),
        all => format!("{} files", all.len()),
    }
}

/// Streams the local file `source` into `command` on the session's host, decompressed there;
/// a failure names `shown`.
fn stream_in(
    session: &HostSession,
    source: &Path,
    command: &str,
    shown: &str,
) -> Result<(), HostError> {
    session.block_on(async {
        let mut file = tokio::fs::File::open(source)
            .await
            .map_err(|e| DumpError::Read {
                path: source.to_path_buf(),
                source: e,
            })?;
        let pipe = Pipe {
            input: Some(&mut file),
            ..Pipe::default()
        };
        session
            .exec_piped(&decompressed(command), shown, pipe)
            .await
    })
}

/// Checks that `path` matches the SHA-256 in `path.sha256`, reading it in chunks.
pub fn verify(path: &Path) -> Result<Dumped, DumpError> {
    let read_error = |source| DumpError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    let recorded = match std::fs::read_to_string(checksum_path(path)) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(DumpError::NoChecksum {
                path: path.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(DumpError::Read {
                path: checksum_path(path),
                source,
            })
        }
    };
    let expected = recorded
        .split_whitespace()
        .next()
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| DumpError::BadChecksum {
            path: path.to_path_buf(),
        })?
        .to_ascii_lowercase();
    let actual = crate::transport::sha256_local(path).map_err(read_error)?;
    if actual != expected {
        return Err(DumpError::Mismatch {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    Ok(Dumped {
        path: path.to_path_buf(),
        bytes: meta.len(),
        sha256: actual,
    })
}

/// `command` with its output through `gzip`, exiting with the command's status (or gzip's,
/// when only gzip failed): POSIX sh has no `pipefail`, so each side reports its status on
/// descriptor 3 while the data goes out on descriptor 4.
fn compressed(command: &str) -> String {
    with_statuses(&format!(
        "{{ ( {command}\n ) 3>&- 4>&-; echo \"$?\" >&3; }} | {{ gzip -c >&4 3>&-; echo \"$?\" >&3; }}"
    ))
}

/// `command` fed by `gzip -d`, exiting with the first failure of either.
fn decompressed(command: &str) -> String {
    with_statuses(&format!(
        "{{ gzip -dc 3>&- 4>&-; echo \"$?\" >&3; }} | {{ ( {command}\n ) 3>&- >&4 4>&-; echo \"$?\" >&3; }}"
    ))
}

/// Runs `pipeline` (whose parts echo their statuses to descriptor 3 and write their output to
/// 4) and exits with the first non-zero status, or 1 if none was reported (a part killed).
fn with_statuses(pipeline: &str) -> String {
    format!(
        "{{ weft_status=$( {{ {pipeline}; }} 3>&1 ); }} 4>&1; \
         [ -n \"$weft_status\" ] || exit 1; \
         for weft_code in $weft_status; do [ \"$weft_code\" = 0 ] || exit \"$weft_code\"; done"
    )
}

/// `<path>.sha256`.
pub fn checksum_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".sha256");
    PathBuf::from(name)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
            bytes: 0,
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Hashing<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.hasher.update(&buf[..n]);
            this.bytes += n as u64;
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str) -> (i32, Vec<u8>) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs");
        (out.status.code().unwrap_or(-1), out.stdout)
    }

    #[test]
    fn the_wrappers_pass_data_through_gzip_and_keep_the_command_s_failure() {
        let (code, data) = sh(&compressed("printf 'a\\nb\\n'; echo c"));
        assert_eq!(code, 0);
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("d.gz");
        std::fs::write(&file, &data).expect("write");
        let fed = |command: &str, input: &str| {
            let inner = crate::shell::quote(&decompressed(command));
            sh(&format!("{input} | sh -c {inner}"))
        };
        let cat = format!("cat {}", file.display());
        let back = fed("cat", &cat);
        assert_eq!(back, (0, b"a\nb\nc\n".to_vec()));
        // A failing dump command fails the whole line, though gzip succeeds.
        assert_eq!(sh(&compressed("echo partial; exit 7")).0, 7);
        // A load command's failure, and a corrupt input, both fail.
        assert_eq!(fed("cat >/dev/null; exit 5", &cat).0, 5);
        assert_ne!(fed("cat", "echo garbage").0, 0);
    }

    #[test]
    fn verify_refuses_a_truncated_file_and_one_without_a_checksum() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("x.gz");
        std::fs::write(&path, b"0123456789").expect("write");
        assert!(matches!(verify(&path), Err(DumpError::NoChecksum { .. })));
        let sum = crate::transport::sha256_local(&path).expect("sum");
        std::fs::write(checksum_path(&path), format!("{sum}  x.gz\n")).expect("write");
        assert_eq!(verify(&path).expect("verified").bytes, 10);
        std::fs::write(&path, b"01234").expect("truncate");
        let err = verify(&path).expect_err("truncated");
        assert!(err.to_string().contains("corrupt or truncated"), "{err}");
    }
}
