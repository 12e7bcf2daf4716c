//! The sums of files weft wrote on hosts, kept between runs, so that checking a file nobody
//! changed since costs the host a `stat` instead of reading the whole file.
//!
//! A file weft writes gets a whole-second mtime (its sub-second part zero). Anything else that
//! writes the file gives it the clock's time instead, which in practice is never a whole
//! second. So the first check that finds the file at its old size with that exact stamp trusts
//! the sum weft wrote, and keeps the file's full identity in its place: size, mtime, ctime,
//! device and inode. No program can set a ctime (every change moves it to the clock's time), so
//! from then on any change to the file, even one that restores its size and mtime, makes the
//! next check hash it again on the host, as every check did before.
//!
//! What this cannot see: a change made before weft's next check that keeps the file's size
//! and puts back the exact whole-second mtime weft gave it (`cp -p` or `rsync -t` from a file
//! weft wrote in the same second, at the same size), or a change within the same clock tick
//! as that check's stat. Sensitive files are never recorded (their sums stay off the
//! controller's disk). The cache is `$XDG_CACHE_HOME/weft/remote-sums.json`; deleting it only
//! makes the next checks hash again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How long an entry no run used is kept.
const KEEP_SECS: u64 = 30 * 24 * 3600;

/// The `stat -c` format of a check: kind, mode, owner, group, then the identity.
pub const STAT_FORMAT: &str = "%F|%a|%U|%G|%s|%Y|%y|%z|%d|%i";

/// What is known of one file on one host.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    host: String,
    path: String,
    sha256: String,
    #[serde(flatten)]
    known: Known,
    /// When a run last wrote or trusted it (unix seconds).
    used: u64,
}

/// Why the entry's sum may be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Known {
    /// weft wrote the file: its size and the whole-second mtime it was stamped with.
    Written { size: u64, mtime: u64 },
    /// A check found it as written: the identity part of its stat line.
    Seen { identity: String },
}

/// The sums known for every host, shared by a run's sessions; read on first use, saved when
/// the run ends.
pub struct RemoteSums {
    file: Option<PathBuf>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    loaded: bool,
    dirty: bool,
    entries: HashMap<(String, String), Entry>,
}

impl Default for RemoteSums {
    fn default() -> Self {
        RemoteSums::at(cache_file())
    }
}

impl RemoteSums {
    /// Sums kept in `file`; `None` keeps them for this run only.
    pub fn at(file: Option<PathBuf>) -> Self {
        RemoteSums {
            file,
            state: Mutex::new(State::default()),
        }
    }

    /// The `case` pattern a check's stat line matches when the known sum holds, so the host
    /// skips hashing; `None` when nothing is known.
    pub fn pattern(&self, host: &str, path: &str) -> Option<String> {
        let mut state = self.lock();
        let entry = state.entry(self, host, path)?;
        // Quoted `|`: bare, it would separate alternatives.
        let head = "regular*'|'*'|'*'|'*";
        Some(match &entry.known {
            Known::Written { size, mtime } => {
                format!("{head}'|{size}|{mtime}|'*'.000000000 '*")
            }
            Known::Seen { identity } => {
                format!("{head}{}", crate::shell::quote(&format!("|{identity}")))
            }
        })
    }

    /// The known sum of `path` when `line` (its stat line, `STAT_FORMAT`) shows the file as
    /// it was; the first time after weft wrote it, its identity is kept from then on.
    pub fn trusted(&self, host: &str, path: &str, line: &str) -> Option<String> {
        let fields: Vec<&str> = line.splitn(5, '|').collect();
        let [kind, _, _, _, identity] = fields[..] else {
            return None;
        };
        if !kind.starts_with("regular") {
            return None;
        }
        let mut state = self.lock();
        let entry = state.entry(self, host, path)?;
        let holds = match &entry.known {
            Known::Written { size, mtime } => {
                let parts: Vec<&str> = identity.split('|').collect();
                parts.len() == 6
                    && parts[0] == size.to_string()
                    && parts[1] == mtime.to_string()
                    && parts[2].contains(".000000000 ")
            }
            Known::Seen { identity: seen } => seen == identity,
        };
        if !holds {
            return None;
        }
        let sum = entry.sha256.clone();
        let seen = Known::Seen {
            identity: identity.to_string(),
        };
        if entry.known != seen || now() > entry.used + 24 * 3600 {
            entry.known = seen;
            entry.used = now();
            state.dirty = true;
        }
        Some(sum)
    }

    /// Records that weft wrote `path` with content `sha256` of `size` bytes, stamped `mtime`.
    pub fn written(&self, host: &str, path: &str, size: u64, mtime: u64, sha256: String) {
        let mut state = self.lock();
        state.load(self);
        state.dirty = true;
        state.entries.insert(
            (host.to_string(), path.to_string()),
            Entry {
                host: host.to_string(),
                path: path.to_string(),
                sha256,
                known: Known::Written { size, mtime },
                used: now(),
            },
        );
    }

    /// Forgets `path`: a check found it changed, or weft wrote it without a stamp.
    pub fn forget(&self, host: &str, path: &str) {
        let mut state = self.lock();
        if state.loaded
            && state
                .entries
                .remove(&(host.to_string(), path.to_string()))
                .is_some()
        {
            state.dirty = true;
        }
    }

    /// Writes what changed to the cache file, merged with what other runs saved meanwhile.
    /// A cache that cannot be written only costs later runs their hashes.
    pub fn save(&self) {
        let (Some(file), mut state) = (&self.file, self.lock()) else {
            return;
        };
        if !state.dirty {
            return;
        }
        let mut merged = read(file);
        for (key, entry) in &state.entries {
            match merged.get(key) {
                Some(other) if other.used > entry.used => {}
                _ => {
                    merged.insert(key.clone(), entry.clone());
                }
            }
        }
        let oldest = now().saturating_sub(KEEP_SECS);
        let mut entries: Vec<Entry> = merged.into_values().filter(|e| e.used >= oldest).collect();
        entries.sort_by(|a, b| (&a.host, &a.path).cmp(&(&b.host, &b.path)));
        if let Err(err) = write(file, &entries) {
            tracing::debug!("cannot save {}: {err}", file.display());
        }
        state.dirty = false;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn load(&mut self, sums: &RemoteSums) {
        if !self.loaded {
            self.loaded = true;
            if let Some(file) = &sums.file {
                self.entries = read(file);
            }
        }
    }

    fn entry(&mut self, sums: &RemoteSums, host: &str, path: &str) -> Option<&mut Entry> {
        self.load(sums);
        self.entries.get_mut(&(host.to_string(), path.to_string()))
    }
}

/// The whole second a file written now is stamped with.
pub fn stamp() -> u64 {
    now()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `$XDG_CACHE_HOME/weft/remote-sums.json`, else under `~/.cache`.
fn cache_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("weft").join("remote-sums.json"))
}

/// The entries of `file`; a missing or unreadable cache is an empty one.
fn read(file: &Path) -> HashMap<(String, String), Entry> {
    let entries: Vec<Entry> = std::fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    entries
        .into_iter()
        .map(|e| ((e.host.clone(), e.path.clone()), e))
        .collect()
}

/// Replaces `file` atomically, readable by its owner only (it names hosts and paths).
fn write(file: &Path, entries: &[Entry]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".remote-sums.{:016x}", fastrand::u64(..)));
    let result = (|| {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        out.write_all(&serde_json::to_vec(entries).map_err(std::io::Error::other)?)?;
        out.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "regular file|644|web|web|12|1700000000|2023-11-14 22:13:20.000000000 +0000|2026-11-29 10:12:02.500559077 +0000|65024|77";

    #[test]
    fn a_written_file_is_trusted_at_its_stamp_then_by_its_identity() {
        let sums = RemoteSums::at(None);
        sums.written("h", "/f", 12, 1_700_000_000, "abc".into());
        assert!(sums
            .pattern("h", "/f")
            .is_some_and(|p| p.contains("|12|1700000000|")));
        assert_eq!(sums.trusted("h", "/f", LINE).as_deref(), Some("abc"));
        // Another write keeps size and mtime but moves the ctime: no longer trusted.
        let touched = LINE.replace("10:12:02.500559077", "10:12:09.000000001");
        assert_eq!(sums.trusted("h", "/f", &touched), None);
        assert_eq!(sums.trusted("h", "/f", LINE).as_deref(), Some("abc"));
    }

    #[test]
    fn a_write_by_anything_else_is_not_trusted() {
        let sums = RemoteSums::at(None);
        sums.written("h", "/f", 12, 1_700_000_000, "abc".into());
        let rewritten = LINE.replace("22:13:20.000000000", "22:13:20.004000000");
        assert_eq!(sums.trusted("h", "/f", &rewritten), None);
        let resized = LINE.replace("|12|", "|13|");
        assert_eq!(sums.trusted("h", "/f", &resized), None);
        assert_eq!(sums.trusted("other", "/f", LINE), None);
        let link = LINE.replace("regular file", "symbolic link");
        assert_eq!(sums.trusted("h", "/f", &link), None);
    }

    #[test]
    fn saved_sums_are_read_by_the_next_run_and_merged() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sums.json");
        let first = RemoteSums::at(Some(file.clone()));
        first.written("h", "/a", 12, 1_700_000_000, "aaa".into());
        let second = RemoteSums::at(Some(file.clone()));
        second.written("h", "/b", 12, 1_700_000_000, "bbb".into());
        first.save();
        second.save();
        let next = RemoteSums::at(Some(file));
        assert_eq!(next.trusted("h", "/a", LINE).as_deref(), Some("aaa"));
        assert_eq!(next.trusted("h", "/b", LINE).as_deref(), Some("bbb"));
    }
}
