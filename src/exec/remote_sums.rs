//! The sums of files weft wrote or hashed on hosts, kept between runs, so that checking a
//! file nobody changed since costs the host a `stat` instead of reading the whole file.
//!
//! A file weft writes gets a whole-second mtime (its sub-second part zero). Anything else that
//! writes the file gives it the clock's time instead, which in practice is never a whole
//! second. So the first check that finds the file at its old size with that exact stamp trusts
//! the sum weft wrote, and keeps the file's full identity in its place: size, mtime, ctime,
//! device and inode. No program can set a ctime (every change moves it to the clock's time), so
//! from then on any change to the file, even one that restores its size and mtime, makes the
//! next check hash it again on the host, as every check did before.
//!
//! A check that has to hash a file (one weft did not write, or one that changed) keeps that
//! sum the same way, with the file's identity, when the file's ctime is at least
//! `SETTLED_SECS` older than the host's clock at the check (read once per session with
//! `date`). Any later write then moves the ctime past the kept one, even a write in the same
//! clock tick as the change before the check, which could otherwise leave the ctime as it was.
//!
//! What this cannot see: a change made before weft's next check that keeps the file's size
//! and puts back the exact whole-second mtime weft gave it (`cp -p` or `rsync -t` from a file
//! weft wrote in the same second, at the same size), or one that does so within the clock
//! tick of weft's own write (the ctime then reads the same). Sensitive files, and files whose
//! content holds a secret the run knows, are never recorded (their sums stay off the
//! controller's disk: a sum would let whoever reads it test guesses of the secret). The cache is a file per host in
//! `$XDG_CACHE_HOME/weft/remote-sums/`; deleting it only makes the next checks hash again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How long an entry no run used is kept.
const KEEP_SECS: u64 = 30 * 24 * 3600;

/// How long a file must have been left alone before a sum read by a check is kept. A write
/// in the same clock tick as the change before the check would leave the ctime as it was;
/// this is longer than any filesystem's timestamp granularity (FAT's is two seconds).
const SETTLED_SECS: i64 = 3;

/// The `stat -c` format of a check: kind, mode, owner, group, then the identity.
pub const STAT_FORMAT: &str = "%F|%a|%U|%G|%s|%Y|%y|%z|%d|%i";

/// What is known of one file on one host.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
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

/// One host's cache file.
#[derive(Default, Serialize, Deserialize)]
struct HostFile {
    host: String,
    files: Vec<Entry>,
}

/// The sums known for the hosts of a run, shared by its sessions. A host's are read from its
/// own file when its first check needs them and written back when its session closes, so
/// memory holds only the hosts being worked on, however large the fleet.
pub struct RemoteSums {
    dir: Option<PathBuf>,
    /// Whether what the run learns is written back: not under `--check`, which changes
    /// nothing on the controller either.
    keep: bool,
    hosts: Mutex<HashMap<String, HostSums>>,
}

#[derive(Default)]
struct HostSums {
    dirty: bool,
    entries: HashMap<String, Entry>,
}

impl Default for RemoteSums {
    fn default() -> Self {
        RemoteSums::at(cache_dir())
    }
}

impl RemoteSums {
    /// Sums kept in the folder `dir`, a file per host; `None` keeps them for this run only.
    pub fn at(dir: Option<PathBuf>) -> Self {
        RemoteSums {
            dir,
            keep: true,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// The sums of the cache folder, read but never written back (for `--check`).
    pub fn read_only() -> Self {
        RemoteSums {
            keep: false,
            ..RemoteSums::default()
        }
    }

    /// Whether a sum of `path` on `host` is known (the check then needs only its stat line).
    pub fn knows(&self, host: &str, path: &str) -> bool {
        self.with(host, |sums| sums.entries.contains_key(path))
    }

    /// The paths on `host` whose sums are known, the most recently used first.
    pub fn known_paths(&self, host: &str) -> Vec<String> {
        self.with(host, |sums| {
            let mut entries: Vec<&Entry> = sums.entries.values().collect();
            entries.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.path.cmp(&b.path)));
            entries.into_iter().map(|e| e.path.clone()).collect()
        })
    }

    /// The known sum of `path` when `line` (its stat line, `STAT_FORMAT`) shows the file as
    /// it was; the first time after weft wrote it, its identity is kept from then on.
    pub fn trusted(&self, host: &str, path: &str, line: &str) -> Option<String> {
        let identity = file_identity(line)?;
        self.with(host, |sums| {
            let entry = sums.entries.get_mut(path)?;
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
            let seen = Known::Seen {
                identity: identity.to_string(),
            };
            // Saved again when it changes, or once a day to keep it from expiring.
            if entry.known != seen || now() > entry.used + 24 * 3600 {
                entry.known = seen;
                entry.used = now();
                sums.dirty = true;
            }
            Some(entry.sha256.clone())
        })
    }

    /// Keeps `sha256`, which the host computed for `path` at its clock `now` (unix seconds)
    /// after printing its stat `line`, when the file's last change (ctime) is `SETTLED_SECS`
    /// older than that: any later write moves the ctime past it.
    pub fn seen(&self, host: &str, path: &str, line: &str, sha256: &str, now: i64) {
        let Some(identity) = file_identity(line) else {
            return;
        };
        let ctime = identity.split('|').nth(3).and_then(unix_seconds);
        if ctime.is_none_or(|c| now - c < SETTLED_SECS) {
            return;
        }
        let identity = identity.to_string();
        self.keep(host, path, sha256.to_string(), Known::Seen { identity });
    }

    /// Records that weft wrote `path` with content `sha256` of `size` bytes, stamped `mtime`.
    pub fn written(&self, host: &str, path: &str, size: u64, mtime: u64, sha256: String) {
        self.keep(host, path, sha256, Known::Written { size, mtime });
    }

    fn keep(&self, host: &str, path: &str, sha256: String, known: Known) {
        self.with(host, |sums| {
            sums.dirty = true;
            let entry = Entry {
                path: path.to_string(),
                sha256,
                known,
                used: now(),
            };
            sums.entries.insert(path.to_string(), entry);
        })
    }

    /// Forgets `path`: a check found it changed, or weft wrote it without a stamp.
    pub fn forget(&self, host: &str, path: &str) {
        self.with(host, |sums| {
            if sums.entries.remove(path).is_some() {
                sums.dirty = true;
            }
        })
    }

    /// Writes `host`'s sums back to its file, merged with what other runs saved meanwhile,
    /// and lets go of them. A cache that cannot be written only costs later runs their hashes.
    pub fn finish(&self, host: &str) {
        let sums = self.lock().remove(host);
        if let (Some(dir), Some(sums)) = (&self.dir, sums) {
            if sums.dirty && self.keep {
                save(&host_file(dir, host), host, sums.entries);
            }
        }
    }

    /// Finishes every host still held, and drops the files of hosts no run used for a month.
    pub fn save(&self) {
        let hosts: Vec<String> = self.lock().keys().cloned().collect();
        for host in hosts {
            self.finish(&host);
        }
        if let Some(dir) = self.dir.as_ref().filter(|_| self.keep) {
            prune(dir);
        }
    }

    fn with<T>(&self, host: &str, f: impl FnOnce(&mut HostSums) -> T) -> T {
        let mut hosts = self.lock();
        let sums = hosts.entry(host.to_string()).or_insert_with(|| HostSums {
            dirty: false,
            entries: self
                .dir
                .as_ref()
                .map(|dir| read(&host_file(dir, host)))
                .unwrap_or_default(),
        });
        f(sums)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostSums>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn now() -> u64 {
    clock() as u64
}

/// The controller's clock, in unix seconds.
pub fn clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The identity part of a stat line (`STAT_FORMAT`) when it shows a regular file.
fn file_identity(line: &str) -> Option<&str> {
    let fields: Vec<&str> = line.splitn(5, '|').collect();
    match fields[..] {
        [kind, _, _, _, identity] if kind.starts_with("regular") => Some(identity),
        _ => None,
    }
}

/// `$XDG_CACHE_HOME/weft/remote-sums`, else under `~/.cache`.
fn cache_dir() -> Option<PathBuf> {
    Some(crate::config::weft_dir("XDG_CACHE_HOME", ".cache")?.join("remote-sums"))
}

/// A host's file: named by a hash of its address, which may hold any character.
fn host_file(dir: &Path, host: &str) -> PathBuf {
    let sum = crate::transport::sha256_bytes(host.as_bytes());
    dir.join(format!("{}.json", &sum[..32]))
}

/// The entries of a host's file; a missing or unreadable one is empty.
fn read(file: &Path) -> HashMap<String, Entry> {
    let saved: HostFile = std::fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    saved
        .files
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect()
}

/// Merges `entries` into `file` (the newer of two entries for a path wins) and writes it.
fn save(file: &Path, host: &str, entries: HashMap<String, Entry>) {
    let mut merged = read(file);
    for (path, entry) in entries {
        match merged.get(&path) {
            Some(other) if other.used > entry.used => {}
            _ => {
                merged.insert(path, entry);
            }
        }
    }
    let oldest = now().saturating_sub(KEEP_SECS);
    let mut files: Vec<Entry> = merged.into_values().filter(|e| e.used >= oldest).collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let saved = HostFile {
        host: host.to_string(),
        files,
    };
    if let Err(err) = write(file, &saved) {
        tracing::debug!("cannot save {}: {err}", file.display());
    }
}

/// Removes the files of hosts that no run touched for `KEEP_SECS`.
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let oldest = SystemTime::now() - std::time::Duration::from_secs(KEEP_SECS);
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified < oldest);
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Unix seconds of a time as `stat` prints `%z`: `2026-11-29 10:12:02.500559077 +0000`.
fn unix_seconds(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let (date, time, zone) = (parts.next()?, parts.next()?, parts.next()?);
    let num = |s: &str| s.parse::<i64>().ok();
    let mut ymd = date.splitn(3, '-').map(num);
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = time.split('.').next()?.splitn(3, ':').map(num);
    let (h, min, sec) = (hms.next()??, hms.next()??, hms.next()??);
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset = num(zone.get(1..3)?)? * 3600 + num(zone.get(3..5)?)? * 60;
    let days = crate::calendar::days_from_civil(y, m, d);
    Some(days * 86_400 + h * 3600 + min * 60 + sec - sign * offset)
}

/// Replaces `file` atomically, readable by its owner only (it names hosts and paths).
fn write(file: &Path, saved: &HostFile) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".tmp-{:016x}", fastrand::u64(..)));
    let result = (|| {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        out.write_all(&serde_json::to_vec(saved).map_err(std::io::Error::other)?)?;
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
        assert!(sums.knows("h", "/f") && !sums.knows("h", "/g"));
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
    fn a_sum_a_check_read_is_kept_only_for_a_file_left_alone() {
        // LINE's ctime is 2026-11-29 10:12:02 UTC.
        assert_eq!(
            unix_seconds("2026-11-29 10:12:02.500559077 +0000"),
            Some(1_795_947_122)
        );
        assert_eq!(
            unix_seconds("2026-11-29 11:12:02.5 +0100"),
            Some(1_795_947_122)
        );
        assert_eq!(unix_seconds("1970-01-01 00:00:00.0 +0000"), Some(0));
        let sums = RemoteSums::at(None);
        sums.seen("h", "/f", LINE, "abc", 1_795_947_122 + 2);
        assert!(
            !sums.knows("h", "/f"),
            "changed two seconds before the check"
        );
        let link = LINE.replace("regular file", "symbolic link");
        sums.seen("h", "/f", &link, "abc", 1_795_947_122 + 60);
        assert!(!sums.knows("h", "/f"), "not a file");
        sums.seen("h", "/f", LINE, "abc", 1_795_947_122 + 3);
        assert_eq!(sums.trusted("h", "/f", LINE).as_deref(), Some("abc"));
        let touched = LINE.replace("10:12:02.500559077", "10:12:09.000000001");
        assert_eq!(sums.trusted("h", "/f", &touched), None);
    }

    #[test]
    fn saved_sums_are_read_by_the_next_run_and_merged_per_host() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Some(dir.path().to_path_buf());
        let first = RemoteSums::at(cache.clone());
        first.written("h", "/a", 12, 1_700_000_000, "aaa".into());
        let second = RemoteSums::at(cache.clone());
        second.written("h", "/b", 12, 1_700_000_000, "bbb".into());
        second.written("other", "/a", 12, 1_700_000_000, "ooo".into());
        first.finish("h");
        second.save();
        let next = RemoteSums::at(cache);
        assert_eq!(next.trusted("h", "/a", LINE).as_deref(), Some("aaa"));
        assert_eq!(next.trusted("h", "/b", LINE).as_deref(), Some("bbb"));
        assert_eq!(next.trusted("other", "/a", LINE).as_deref(), Some("ooo"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
