//! One watcher per env: a lock file under the project's `.weft/` holding the watcher's pid; a
//! lock whose process is gone is stale and taken over.

use std::io::Write;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use thiserror::Error;

/// Why the lock was not taken.
#[derive(Debug, Error, Diagnostic)]
pub enum LockError {
    /// Another watcher runs on the env.
    #[error("env `{env}` is already watched by process {pid} (lock {})", .path.display())]
    #[diagnostic(
        code(weft::watch::locked),
        help("stop that watcher first; one watcher per env")
    )]
    Held {
        env: String,
        pid: u32,
        path: PathBuf,
    },
    /// The lock file could not be written.
    #[error("cannot write the watch lock {}: {source}", .path.display())]
    #[diagnostic(code(weft::watch::lock_io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it removes the file.
#[derive(Debug)]
pub struct WatchLock {
    path: PathBuf,
}

impl WatchLock {
    /// Takes the lock of `env` in the project at `root`, replacing a stale one.
    pub fn take(root: &Path, env: &str) -> Result<Self, LockError> {
        let dir = root.join(".weft");
        let path = dir.join(format!("watch-{env}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        // Two attempts: the second follows the removal of a stale lock.
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    writeln!(file, "{}", std::process::id()).map_err(io)?;
                    return Ok(WatchLock { path });
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    match text.trim().parse::<u32>() {
                        Ok(pid) if alive(pid) => {
                            return Err(LockError::Held {
                                env: env.to_string(),
                                pid,
                                path,
                            })
                        }
                        _ => {
                            tracing::info!(path = %path.display(), "removing stale watch lock");
                            match std::fs::remove_file(&path) {
                                Ok(()) => {}
                                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                                Err(err) => return Err(io(err)),
                            }
                        }
                    }
                }
                Err(err) => return Err(io(err)),
            }
        }
        Err(io(std::io::Error::other(
            "lock changed hands while being taken",
        )))
    }
}

impl Drop for WatchLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` exists on this machine.
fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}
