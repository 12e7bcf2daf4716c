//! Kernel file locks (`flock(2)` through std's `File::lock`) around the read-modify-writes that
//! parallel weft processes share: weft's known_hosts, its machine key, the record of its
//! machines, and the address and router id reservations of local machines (issue 29); and the
//! one watcher of an env (`exec::watch::lock`). The kernel drops a lock when its holder dies, so
//! a killed weft never leaves one behind. And the swap of a whole file through a fresh sibling
//! and a rename, so a reader sees the old file or the new one: `replace` under such a lock,
//! `replace_atomically` for the files transports and dumps write on this machine.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub struct FileLock {
    // Closing the descriptor releases the lock.
    file: File,
}

impl FileLock {
    /// Waits for the exclusive lock of the lock file `path`, creating it (0600, never through a
    /// link) when missing. Lock files stay: removing one while another process waits on it
    /// would let a third lock a new file beside the waiter's.
    pub fn take(path: &Path) -> std::io::Result<FileLock> {
        FileLock::take_or(path, || {})
    }

    /// `take`, calling `waiting` first when another process holds the lock.
    pub fn take_or(path: &Path, waiting: impl FnOnce()) -> std::io::Result<FileLock> {
        let file = open(path)?;
        let locked = match file.try_lock() {
            Ok(()) => Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                waiting();
                file.lock()
            }
            Err(std::fs::TryLockError::Error(err)) => Err(err),
        };
        locked.map_err(|e| context(path, e))?;
        Ok(FileLock { file })
    }

    /// `take` without waiting: `None` while another holder has it (another process, or another
    /// `FileLock` of this one).
    pub fn try_take(path: &Path) -> std::io::Result<Option<FileLock>> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock { file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(err)) => Err(context(path, err)),
        }
    }

    /// The locked file, for the holder to write who it is.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Whether `path` still names the locked file. A holder that removes its lock file before
    /// letting go (so that no file is left when nobody holds it) makes the file a waiter had
    /// opened a dead one: a lock taken on it must be given up and taken again.
    pub fn is_at(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), std::fs::symlink_metadata(path)) {
            (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
            _ => false,
        }
    }

    /// Waits for the lock that guards the file `path`: `.NAME.lock` in the same folder.
    pub fn beside(path: &Path) -> std::io::Result<FileLock> {
        FileLock::take(&lock_path(path))
    }
}

/// Opens the lock file `path` for `FileLock`, creating it and its folder.
fn open(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| context(path, e))
}

fn context(path: &Path, err: std::io::Error) -> std::io::Error {
    std::io::Error::new(err.kind(), format!("lock {}: {err}", path.display()))
}

/// The lock file that guards `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.lock"))
}

/// Replaces `path` with `text` through a fresh, exclusively created sibling and a rename, so a
/// reader sees the old or the new file, never half of one. Call it under the file's lock.
pub fn replace(path: &Path, text: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = temporary_sibling(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        file.write_all(text)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Replaces `target` through a temporary sibling: `fill` writes the temporary file (created
/// here, exclusively and under a random name, so a link planted beside the target is never
/// written through), then it gets `mode` through its handle and is renamed over `target`. A
/// failure never leaves `target` half-written, and the temporary file is removed.
pub async fn replace_atomically<F, Fut>(
    target: &Path,
    mode: Option<u32>,
    fill: F,
) -> std::io::Result<()>
where
    F: FnOnce(tokio::fs::File) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<tokio::fs::File>>,
{
    let tmp = temporary_sibling(target);
    let result = async {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .await?;
        let file = fill(file).await?;
        if let Some(mode) = mode {
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .await?;
        }
        drop(file);
        tokio::fs::rename(&tmp, target).await
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// A hidden, random temporary name beside `target`, so the final rename stays on one
/// filesystem and nobody can plant a link under it in advance.
pub fn temporary_sibling(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.weft-{:016x}", fastrand::u64(..)))
}

/// Whether `dir` (made 0700 when missing) is a folder of this user's that no other user can
/// write: one another user made first, or a link planted under its name, is not.
pub fn private_folder(dir: &Path) -> bool {
    use std::os::unix::fs::DirBuilderExt;
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    is_private_folder(dir)
}

/// Whether `dir` is already a folder as `private_folder` makes it; creates nothing.
pub fn is_private_folder(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && Some(m.uid()) == me && m.mode() & 0o022 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Many threads each add one line to a file under the lock, reading it all and writing it
    /// all back: with the lock, no line is lost.
    #[test]
    fn read_modify_writes_under_the_lock_lose_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("known_hosts");
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let file = file.clone();
                let inside = inside.clone();
                std::thread::spawn(move || {
                    let _lock = FileLock::beside(&file).expect("lock");
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
                    std::thread::yield_now();
                    text.push_str(&format!("line {i}\n"));
                    replace(&file, text.as_bytes(), 0o600).expect("replace");
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let text = std::fs::read_to_string(&file).expect("read");
        assert_eq!(text.lines().count(), 16, "{text}");
        assert!(dir.path().join(".known_hosts.lock").exists());
    }

    #[test]
    fn a_link_planted_at_the_lock_name_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").expect("victim");
        std::os::unix::fs::symlink(&victim, dir.path().join(".f.lock")).expect("link");
        assert!(FileLock::beside(&dir.path().join("f")).is_err());
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
    }
}
