//! Downloads from a host to this machine, one walk for every transport (issue 29): regular
//! files and folders only. A link is reported and skipped unless the caller follows links;
//! devices, FIFOs and sockets are always skipped; a size limit stops a runaway; an interrupt
//! stops the copy at once; a file is written under a hidden name and renamed into place whole.
//!
//! Every file is looked at (`lstat`) before it is opened and its open handle (`fstat`) after:
//! a host user who swaps it for a link, a device or another file in between gets it skipped.
//! The path is also resolved before the open and must be the folder's own entry, so a folder
//! swapped for a link above it is not followed either.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::TransportError;

/// The default of `--max-size`: 10 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 << 30;

/// What a run allows its downloads: `--follow-links` and `--max-size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadLimits {
    /// Copy what links point to.
    pub follow_links: bool,
    /// At most this many bytes per download.
    pub max_bytes: u64,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        DownloadLimits {
            follow_links: false,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// How a download treats what it finds.
#[derive(Clone, Copy)]
pub struct DownloadOptions<'a> {
    /// Copy what links point to (files and folders, anywhere the login user can read); a
    /// folder already copied (a link looping back) is still skipped. Else every link is
    /// skipped and reported.
    pub follow_links: bool,
    /// At most this many bytes in all; past it the download fails.
    pub max_bytes: u64,
    /// Whether the run was interrupted: checked while waiting on the host and between chunks.
    pub stopped: &'a (dyn Fn() -> bool + Send + Sync),
    /// Told of every entry left out: its path on the host and why.
    pub skipped: &'a (dyn Fn(&str, &str) + Send + Sync),
}

/// What a download copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Downloaded {
    /// Regular files copied.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Entries left out (links, devices, FIFOs, sockets, files that changed).
    pub skipped: u64,
}

/// What kind of file an entry is, from its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link.
    Link,
    /// Anything else: a device, FIFO or socket, named from the mode.
    Special(&'static str),
}

impl Kind {
    /// The kind of a `st_mode`.
    pub fn of_mode(mode: u32) -> Kind {
        match mode & 0o170_000 {
            0o100_000 => Kind::File,
            0o040_000 => Kind::Dir,
            0o120_000 => Kind::Link,
            0o010_000 => Kind::Special("a FIFO"),
            0o140_000 => Kind::Special("a socket"),
            0o020_000 => Kind::Special("a character device"),
            0o060_000 => Kind::Special("a block device"),
            _ => Kind::Special("not a regular file"),
        }
    }
}

/// What a look at an entry tells: enough to see that the file opened is the one looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attrs {
    /// Its kind.
    pub kind: Kind,
    /// Its size in bytes.
    pub size: u64,
    /// Its permission bits.
    pub mode: u32,
    /// Owner and group.
    pub owner: (u32, u32),
    /// Last modification, in seconds.
    pub mtime: i64,
    /// Device and inode, where the transport knows them (not over SFTP).
    pub inode: Option<(u64, u64)>,
}

/// The file system of a host as a download sees it.
#[async_trait]
pub trait Tree: Send + Sync {
    /// An open file.
    type Reader: AsyncRead + Unpin + Send;
    /// The entry itself (a link is a link).
    async fn lstat(&self, path: &str) -> std::io::Result<Attrs>;
    /// What the entry points to, when it is a link.
    async fn stat(&self, path: &str) -> std::io::Result<Attrs>;
    /// The path with every link resolved.
    async fn canonical(&self, path: &str) -> std::io::Result<String>;
    /// Where a link points.
    async fn read_link(&self, path: &str) -> std::io::Result<String>;
    /// The names in a folder.
    async fn list(&self, path: &str) -> std::io::Result<Vec<String>>;
    /// Opens a file for reading (never blocking on a FIFO where the transport allows), with
    /// what its open handle says it is; `follow`: the path is a link being followed, which
    /// the open must then go through (else it never does, where the transport allows).
    async fn open(&self, path: &str, follow: bool) -> std::io::Result<(Self::Reader, Attrs)>;
}

/// One step of the walk.
enum Step {
    /// Copy `remote` to `local`; `expected` is its resolved path when nothing in it is a link.
    Visit {
        remote: String,
        local: PathBuf,
        expected: Option<String>,
    },
    /// A folder's own mode, given after its files so a read-only one can be filled first.
    Mode {
        remote: String,
        local: PathBuf,
        mode: u32,
    },
}

/// Why the copy of a file stopped.
#[derive(Debug)]
enum Stop {
    Interrupted,
    TooLarge,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stop::Interrupted => "interrupted",
            Stop::TooLarge => "over the size limit",
        })
    }
}

impl std::error::Error for Stop {}

/// Copies `remote` (a file, or a folder and everything in it) from `tree` to `local`.
pub async fn download<T: Tree>(
    tree: &T,
    remote: &str,
    local: &Path,
    options: DownloadOptions<'_>,
) -> Result<Downloaded, TransportError> {
    let mut walk = Walk {
        tree,
        options,
        done: Downloaded::default(),
        folders: HashSet::new(),
        top: remote.to_string(),
    };
    let mut steps = vec![Step::Visit {
        remote: remote.to_string(),
        local: local.to_path_buf(),
        expected: None,
    }];
    let mut first = true;
    while let Some(step) = steps.pop() {
        if (options.stopped)() {
            return Err(walk.interrupted(remote));
        }
        match step {
            Step::Visit {
                remote,
                local,
                expected,
            } => {
                walk.visit(&remote, &local, expected, first, &mut steps)
                    .await?
            }
            Step::Mode {
                remote,
                local,
                mode,
            } => {
                use std::os::unix::fs::PermissionsExt;
                tokio::fs::set_permissions(&local, std::fs::Permissions::from_mode(mode))
                    .await
                    .map_err(|e| walk.io(&remote, e))?;
            }
        }
        first = false;
    }
    Ok(walk.done)
}

struct Walk<'a, T: Tree> {
    tree: &'a T,
    options: DownloadOptions<'a>,
    done: Downloaded,
    /// Resolved paths of the folders copied so far, when links are followed: a link back to
    /// one of them (`loop -> .`) is skipped rather than copied again and again.
    folders: HashSet<String>,
    top: String,
}

impl<T: Tree> Walk<'_, T> {
    fn io(&self, path: &str, source: std::io::Error) -> TransportError {
        TransportError::File {
            action: "cannot download",
            path: path.to_string(),
            source,
        }
    }

    fn interrupted(&self, path: &str) -> TransportError {
        TransportError::DownloadInterrupted {
            path: path.to_string(),
        }
    }

    /// Leaves `path` out and says why; the path the caller named fails instead, since
    /// nothing of it would be copied.
    fn skip(&mut self, path: &str, why: String, first: bool) -> Result<(), TransportError> {
        if first {
            return Err(TransportError::NotDownloadable {
                path: path.to_string(),
                why,
            });
        }
        self.done.skipped += 1;
        (self.options.skipped)(path, &why);
        Ok(())
    }

    /// Waits for `step` on the host unless the run is interrupted first.
    async fn host<F, R>(&self, path: &str, step: F) -> Result<std::io::Result<R>, TransportError>
    where
        F: std::future::Future<Output = std::io::Result<R>>,
    {
        tokio::select! {
            result = step => Ok(result),
            () = until_stopped(self.options.stopped) => Err(self.interrupted(path)),
        }
    }

    async fn visit(
        &mut self,
        remote: &str,
        local: &Path,
        expected: Option<String>,
        first: bool,
        steps: &mut Vec<Step>,
    ) -> Result<(), TransportError> {
        let look = self
            .host(remote, self.tree.lstat(remote))
            .await?
            .map_err(|e| self.io(remote, e))?;
        let mut attrs = look.clone();
        if look.kind == Kind::Link {
            let target = self
                .host(remote, self.tree.read_link(remote))
                .await?
                .unwrap_or_else(|_| "?".into());
            if !self.options.follow_links {
                return self.skip(
                    remote,
                    format!("is a link to {target}: not followed (--follow-links copies what links point to)"),
                    first,
                );
            }
            attrs = match self.host(remote, self.tree.stat(remote)).await? {
                Ok(attrs) => attrs,
                Err(_) => {
                    return self.skip(
                        remote,
                        format!("is a link to {target}, which is missing"),
                        first,
                    )
                }
            };
        }
        let resolved = self
            .host(remote, self.tree.canonical(remote))
            .await?
            .map_err(|e| self.io(remote, e))?;
        // An entry found in a folder that is no link itself must resolve to that folder's own
        // entry: otherwise a folder above it became a link since it was listed.
        if look.kind != Kind::Link {
            if let Some(expected) = &expected {
                if &resolved != expected {
                    return self.skip(
                        remote,
                        format!("changed while being copied (it now resolves to {resolved}): not copied"),
                        first,
                    );
                }
            }
        }
        match attrs.kind {
            Kind::Dir => {
                if self.options.follow_links && !self.folders.insert(resolved.clone()) {
                    return self.skip(
                        remote,
                        format!("leads back to {resolved}, which is copied already: skipped"),
                        first,
                    );
                }
                tokio::fs::create_dir_all(local)
                    .await
                    .map_err(|e| self.io(remote, e))?;
                let mut names = self
                    .host(remote, self.tree.list(remote))
                    .await?
                    .map_err(|e| self.io(remote, e))?;
                names.sort();
                steps.push(Step::Mode {
                    remote: remote.to_string(),
                    local: local.to_path_buf(),
                    mode: kept_mode(attrs.mode),
                });
                for name in names.into_iter().rev() {
                    if name == "." || name == ".." {
                        continue;
                    }
                    let child = format!("{}/{name}", remote.trim_end_matches('/'));
                    // A name from the host never leaves the local folder.
                    if !plain_name(&name) {
                        self.skip(
                            &child,
                            "has a name that is no plain file name: skipped".into(),
                            false,
                        )?;
                        continue;
                    }
                    steps.push(Step::Visit {
                        remote: child,
                        local: local.join(&name),
                        expected: Some(format!("{}/{name}", resolved.trim_end_matches('/'))),
                    });
                }
                Ok(())
            }
            Kind::File => {
                self.file(remote, local, &attrs, look.kind == Kind::Link, first)
                    .await
            }
            Kind::Special(what) => self.skip(remote, format!("is {what}: not copied"), first),
            Kind::Link => self.skip(remote, "is a link to a link: not followed".into(), first),
        }
    }

    async fn file(
        &mut self,
        remote: &str,
        local: &Path,
        looked: &Attrs,
        follow: bool,
        first: bool,
    ) -> Result<(), TransportError> {
        let limit = self.options.max_bytes;
        if self.done.bytes.saturating_add(looked.size) > limit {
            return Err(self.too_large(remote));
        }
        let (mut reader, opened) = self
            .host(remote, self.tree.open(remote, follow))
            .await?
            .map_err(|e| self.io(remote, e))?;
        if !same_file(looked, &opened) {
            return self.skip(
                remote,
                "changed between its check and its opening (a link, device or other file in its place): not copied".into(),
                first,
            );
        }
        let stopped = self.options.stopped;
        let mut copied = self.done.bytes;
        let written =
            crate::lockfile::replace_atomically(local, Some(kept_mode(looked.mode)), |mut out| {
                let copied = &mut copied;
                async move {
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        let n = tokio::select! {
                            n = reader.read(&mut buf) => n?,
                            () = until_stopped(stopped) => {
                                return Err(std::io::Error::other(Stop::Interrupted))
                            }
                        };
                        if n == 0 {
                            break;
                        }
                        *copied += n as u64;
                        if *copied > limit {
                            return Err(std::io::Error::other(Stop::TooLarge));
                        }
                        out.write_all(&buf[..n]).await?;
                    }
                    out.sync_all().await?;
                    Ok(out)
                }
            })
            .await;
        match written {
            Ok(()) => {
                self.done.files += 1;
                self.done.bytes = copied;
                Ok(())
            }
            Err(err) => match err.get_ref().and_then(|e| e.downcast_ref::<Stop>()) {
                Some(Stop::Interrupted) => Err(self.interrupted(remote)),
                Some(Stop::TooLarge) => Err(self.too_large(remote)),
                None => Err(self.io(remote, err)),
            },
        }
    }

    fn too_large(&self, path: &str) -> TransportError {
        TransportError::DownloadTooLarge {
            path: path.to_string(),
            top: self.top.clone(),
            limit: self.options.max_bytes,
        }
    }
}

/// Whether the file opened is the one looked at before: a regular file still, with the same
/// owner, size and time (and inode, where known).
fn same_file(looked: &Attrs, opened: &Attrs) -> bool {
    opened.kind == Kind::File
        && opened.owner == looked.owner
        && opened.size == looked.size
        && opened.mtime == looked.mtime
        && (looked.inode.is_none() || opened.inode.is_none() || looked.inode == opened.inode)
}

/// Whether a name listed by a host is one entry of its folder: not empty, no `/`, not `.` or
/// `..`, no NUL.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Returns once `stopped` says so (checked every 50 ms); never otherwise.
async fn until_stopped(stopped: &(dyn Fn() -> bool + Send + Sync)) {
    while !stopped() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `bytes` as people read them: `512 B`, `1.5 KiB`, `10 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A size as `--max-size` takes it: bytes, or a number with `K`, `M`, `G` or `T` (powers of
/// 1024; `KB`, `KiB`, `MB`, `MiB`... too).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: f64 = number.parse().map_err(|_| {
        format!("`{text}` is no size: write bytes, or a number and K, M, G or T (`500M`, `10G`)")
    })?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        other => {
            return Err(format!(
                "`{other}` is no size unit: use K, M, G or T (`500M`, `10G`)"
            ))
        }
    };
    let bytes = number * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(format!("`{text}` is no usable size limit"));
    }
    Ok(bytes as u64)
}

/// The mode a downloaded file or folder gets here: never set-user-id, set-group-id or sticky,
/// and never writable by group or others (a host user's `chmod 4755` or 0777 folder must not
/// become a root-owned set-user-id file or a folder anyone can fill on the controller).
fn kept_mode(mode: u32) -> u32 {
    mode & 0o755
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(human_bytes(DEFAULT_MAX_BYTES), "10 GiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn names_from_a_host_stay_inside_the_local_folder() {
        assert!(plain_name("app.log"));
        assert!(plain_name(".hidden"));
        for bad in ["", ".", "..", "../x", "a/b", "/etc", "x\0y"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_file_swapped_between_look_and_open_is_not_the_same() {
        let looked = Attrs {
            kind: Kind::File,
            size: 10,
            mode: 0o644,
            owner: (1000, 1000),
            mtime: 5,
            inode: None,
        };
        assert!(same_file(&looked, &looked.clone()));
        let root_file = Attrs {
            owner: (0, 0),
            ..looked.clone()
        };
        assert!(!same_file(&looked, &root_file));
        let device = Attrs {
            kind: Kind::Special("a character device"),
            ..looked.clone()
        };
        assert!(!same_file(&looked, &device));
        assert_eq!(
            Kind::of_mode(0o020_666),
            Kind::Special("a character device")
        );
        assert_eq!(Kind::of_mode(0o010_644), Kind::Special("a FIFO"));
    }
}
