//! SHA-256 sums of local files, each read once per run however many hosts it goes to.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// What identifies a file's content cheaply: a changed size or mtime means a new sum.
type Key = (PathBuf, u64, Option<SystemTime>);

/// The sums a run has taken, shared by every host's session.
#[derive(Default)]
pub struct LocalHashes(Mutex<HashMap<Key, String>>);

impl LocalHashes {
    /// The lowercase hex SHA-256 of `path`, from the run's earlier read when the file's size
    /// and mtime are the same.
    pub fn sha256(&self, path: &Path) -> std::io::Result<String> {
        let meta = std::fs::metadata(path)?;
        let key = (path.to_path_buf(), meta.len(), meta.modified().ok());
        if let Some(sum) = self.lock().get(&key) {
            return Ok(sum.clone());
        }
        // Hashed outside the lock: hosts uploading different files do not wait on each other
        // (two hosts may hash the same file at once, which costs only time).
        let sum = crate::transport::sha256_local(path)?;
        self.lock().insert(key, sum.clone());
        Ok(sum)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
