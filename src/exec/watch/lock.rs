//! One watcher per env: a kernel lock (`lockfile::FileLock`) on a file under the project's
//! `.weft/` holding the watcher's pid. The kernel lets go when the watcher dies, so a file left
//! by a killed watcher is simply locked again, and two watchers can never both hold it.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use thiserror::Error;

use crate::lockfile::FileLock;

/// Why the lock was not taken.
#[derive(Debug, Error, Diagnostic)]
pub enum LockError {
    /// Another watcher runs on the env.
    #[error("env `{env}` is already watched by {} (lock {})", holder(*.pid), .path.display())]
    #[diagnostic(
        code(weft::watch::locked),
        help("stop that watcher first; one watcher per env")
    )]
    Held {
        env: String,
        /// `None` when the holder has not written its pid yet.
        pid: Option<u32>,
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

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("process {pid}"),
        None => "another process".into(),
    }
}

/// The held lock; dropping it removes the file, then lets go of the lock.
#[derive(Debug)]
pub struct WatchLock {
    path: PathBuf,
    lock: FileLock,
}

impl WatchLock {
    /// Takes the lock of `env` in the project at `root`: `Held` while another watcher runs.
    pub fn take(root: &Path, env: &str) -> Result<Self, LockError> {
        let path = root.join(".weft").join(format!("watch-{env}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // A watcher that ends removes the file before it lets go, so a lock won on the file it
        // had is on no file at all: take the one now at the path. A retry follows only such an
        // end, so a few are plenty.
        for _ in 0..4 {
            let Some(lock) = FileLock::try_take(&path).map_err(io)? else {
                return Err(LockError::Held {
                    env: env.to_string(),
                    pid: std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|text| text.trim().parse().ok()),
                    path,
                });
            };
            if !lock.is_at(&path) {
                continue;
            }
            let mut file = lock.file();
            let mut stale = String::new();
            let _ = file.read_to_string(&mut stale);
            if !stale.trim().is_empty() {
                tracing::info!(path = %path.display(), pid = stale.trim(), "taking over the watch lock of a watcher that is gone");
            }
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            writeln!(file, "{}", std::process::id()).map_err(io)?;
            return Ok(WatchLock { path, lock });
        }
        Err(io(std::io::Error::other(
            "lock changed hands while being taken",
        )))
    }
}

impl Drop for WatchLock {
    fn drop(&mut self) {
        // Still holding the lock: a watcher starting now either sees it held or, once it wins
        // the lock, sees that the file is gone and makes a new one.
        if self.lock.is_at(&self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_second_watcher_is_refused_naming_the_first_and_the_lock_goes_with_it() {
        let root = tempfile::tempdir().expect("dir");
        let path = root.path().join(".weft/watch-dev.lock");
        let first = WatchLock::take(root.path(), "dev").expect("first");
        let pid = std::process::id();
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            format!("{pid}\n")
        );
        match WatchLock::take(root.path(), "dev") {
            Err(LockError::Held {
                pid: Some(held), ..
            }) => assert_eq!(held, pid),
            other => panic!("a second watcher got {other:?}"),
        }
        // Another env has its own lock.
        let other = WatchLock::take(root.path(), "prod").expect("prod");
        drop(first);
        assert!(!path.exists(), "an ending watcher removes its lock");
        drop(WatchLock::take(root.path(), "dev").expect("after the first ended"));
        drop(other);
    }

    /// The lock is won before the pid is written: a watcher that has won it but not yet said
    /// who it is holds it all the same. (Reading that empty file as stale let two both win.)
    #[test]
    fn a_holder_that_has_not_written_its_pid_yet_holds_the_lock() {
        let root = tempfile::tempdir().expect("dir");
        let path = root.path().join(".weft/watch-dev.lock");
        let _winner = FileLock::try_take(&path).expect("open").expect("free");
        match WatchLock::take(root.path(), "dev") {
            Err(err @ LockError::Held { pid: None, .. }) => {
                assert!(err
                    .to_string()
                    .contains("already watched by another process"));
            }
            other => panic!("a second watcher got {other:?}"),
        }
    }

    #[test]
    fn a_lock_file_left_behind_is_taken_over_whatever_it_says() {
        let root = tempfile::tempdir().expect("dir");
        let path = root.path().join(".weft/watch-dev.lock");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        // A killed watcher's pid (this very process's, even: only the kernel lock counts), or
        // an empty file from one killed before it wrote its pid.
        for text in [format!("{}\n", std::process::id()), String::new()] {
            std::fs::write(&path, &text).expect("write");
            let lock = WatchLock::take(root.path(), "dev").expect("taken over");
            assert_eq!(
                std::fs::read_to_string(&path).expect("read"),
                format!("{}\n", std::process::id())
            );
            drop(lock);
        }
    }

    /// Watchers starting and ending at once, over and over, never both hold the lock.
    #[test]
    fn two_watchers_never_both_hold_the_lock() {
        let root = Arc::new(tempfile::tempdir().expect("dir"));
        let inside = Arc::new(AtomicUsize::new(0));
        let won = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (root, inside, won) = (root.clone(), inside.clone(), won.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        match WatchLock::take(root.path(), "dev") {
                            Ok(lock) => {
                                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                                won.fetch_add(1, Ordering::SeqCst);
                                std::thread::yield_now();
                                inside.fetch_sub(1, Ordering::SeqCst);
                                drop(lock);
                            }
                            Err(LockError::Held { .. }) => {}
                            Err(err) => panic!("{err}"),
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
        assert!(won.load(Ordering::SeqCst) > 0);
    }
}
