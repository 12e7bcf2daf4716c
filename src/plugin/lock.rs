//! `weft.lock`: where each vendored plugin came from and the SHA-256 of each of its files, so
//! that a file changed since `weft plugin add` is noticed before it runs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use walkdir::WalkDir;

use super::PluginError;

/// The lock file's name, next to weft.toml.
pub const LOCK_FILE: &str = "weft.lock";

/// The whole lock file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LockFile {
    /// One entry per vendored plugin.
    #[serde(default)]
    pub plugin: Vec<LockEntry>,
}

/// One vendored plugin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockEntry {
    /// Its name: its folder is `plugins/NAME`.
    pub name: String,
    /// The path or git URL it was added from.
    pub source: String,
    /// The git ref asked for, if any.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// The commit that ref was, for git sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// That commit's object as git stores it (`git cat-file commit`): its hash is `commit` and
    /// it names the tree, so `verify` can tell that the vendored files are that commit's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_object: Option<String>,
    /// The plugin's version from its plugin.toml.
    pub version: String,
    /// SHA-256 over every file's path and hash: one value to compare.
    pub sha256: String,
    /// Path inside the plugin → SHA-256 of the file.
    pub files: BTreeMap<String, String>,
}

/// What differs between a vendored plugin and its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A file differs from its recorded hash.
    File {
        /// The plugin.
        plugin: String,
        /// `modified`, `added`, `removed`, or `a link` (never vendored: a link is refused).
        what: &'static str,
        /// The file, relative to the plugin's folder.
        file: String,
    },
    /// The recorded commit is not the one the vendored files are.
    Commit {
        /// The plugin.
        plugin: String,
        /// What does not match.
        message: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::File { plugin, what, file } => {
                write!(f, "{plugin}: {what} plugins/{plugin}/{file}")
            }
            Change::Commit { plugin, message } => write!(f, "{plugin}: {message}"),
        }
    }
}

impl LockFile {
    /// Reads the lock file of the project at `root`; none is an empty one.
    pub fn load(root: &Path) -> Result<Self, PluginError> {
        let path = root.join(LOCK_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(io(&path, e)),
        };
        toml::from_str(&text).map_err(|e| PluginError::Read {
            path: LOCK_FILE.into(),
            message: e.message().to_string(),
        })
    }

    /// Writes the lock file of the project at `root`.
    pub fn save(&self, root: &Path) -> Result<(), PluginError> {
        let path = root.join(LOCK_FILE);
        let body = toml::to_string_pretty(self).map_err(|e| PluginError::Read {
            path: LOCK_FILE.into(),
            message: e.to_string(),
        })?;
        let text = format!(
            "# Written by `weft plugin add`; `weft plugin verify` and `weft run` check the \
             vendored files against it.\n\n{body}"
        );
        std::fs::write(&path, text).map_err(|e| io(&path, e))
    }

    /// Every difference between the vendored plugins under `root` and their records: files
    /// against their hashes and, for a plugin fetched with git, the files against the tree of
    /// the recorded commit.
    pub fn changes(&self, root: &Path) -> Result<Vec<Change>, PluginError> {
        let mut out = Vec::new();
        for entry in &self.plugin {
            let dir = root.join("plugins").join(&entry.name);
            let now = hash_tree(&dir)?;
            let before = out.len();
            let change = |what, file: &String| Change::File {
                plugin: entry.name.clone(),
                what,
                file: file.clone(),
            };
            for (file, sum) in &entry.files {
                match now.get(file) {
                    None => out.push(change("removed", file)),
                    Some(current) if current != sum => out.push(change("modified", file)),
                    Some(_) => {}
                }
            }
            for file in now.keys().filter(|f| !entry.files.contains_key(*f)) {
                out.push(change("added", file));
            }
            for link in links(&dir)? {
                out.push(change("a link at", &link));
            }
            // Files that differ already say why the tree does not match.
            if out.len() == before {
                if let Some(message) = commit_mismatch(entry, &dir)? {
                    out.push(Change::Commit {
                        plugin: entry.name.clone(),
                        message,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Why `dir` is not the tree of the commit `entry` records, if it is not.
fn commit_mismatch(entry: &LockEntry, dir: &Path) -> Result<Option<String>, PluginError> {
    let Some(commit) = &entry.commit else {
        return Ok(None);
    };
    let Some(object) = &entry.commit_object else {
        return Ok(Some(format!(
            "weft.lock records commit {commit} without its content, so the vendored files \
             cannot be checked against it: `weft plugin update {}` records it",
            entry.name
        )));
    };
    let Some(format) = ObjectFormat::of(commit) else {
        return Ok(Some(format!(
            "weft.lock's commit `{commit}` is not a git object id"
        )));
    };
    if format.object_id("commit", object.as_bytes()) != *commit {
        return Ok(Some(format!(
            "the commit content weft.lock records is not commit {commit} (weft.lock was edited?)"
        )));
    }
    let Some(tree) = commit_tree(object) else {
        return Ok(Some(format!(
            "the commit content weft.lock records for {commit} names no tree"
        )));
    };
    let vendored = git_tree_id(dir, format)?;
    if vendored != tree {
        return Ok(Some(format!(
            "the vendored files are not commit {commit}: its tree is {tree}, theirs is {vendored}"
        )));
    }
    Ok(None)
}

/// The tree a commit object names on its first line.
pub fn commit_tree(object: &str) -> Option<String> {
    let tree = object.lines().next()?.strip_prefix("tree ")?;
    tree.chars()
        .all(|c| c.is_ascii_hexdigit())
        .then(|| tree.to_string())
}

/// The hash function of a repository's objects, told by the length of their ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectFormat {
    /// 40 hex digits.
    Sha1,
    /// 64 hex digits (`git init --object-format=sha256`).
    Sha256,
}

impl ObjectFormat {
    /// The format of object id `id`.
    pub fn of(id: &str) -> Option<Self> {
        if !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        match id.len() {
            40 => Some(ObjectFormat::Sha1),
            64 => Some(ObjectFormat::Sha256),
            _ => None,
        }
    }

    fn raw(self, kind: &str, body: &[u8]) -> Vec<u8> {
        let header = format!("{kind} {}\0", body.len());
        match self {
            ObjectFormat::Sha1 => {
                use sha1::Digest;
                let mut hasher = sha1::Sha1::new();
                hasher.update(header.as_bytes());
                hasher.update(body);
                hasher.finalize().to_vec()
            }
            ObjectFormat::Sha256 => {
                use sha2::Digest;
                let mut hasher = sha2::Sha256::new();
                hasher.update(header.as_bytes());
                hasher.update(body);
                hasher.finalize().to_vec()
            }
        }
    }

    /// The id git gives an object of `kind` (`blob`, `tree`, `commit`) holding `body`.
    pub fn object_id(self, kind: &str, body: &[u8]) -> String {
        hex(&self.raw(kind, body))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The id of the tree git would record for the files under `dir` (`.git` left out, and
/// folders without files, which git does not keep): the `tree` of the commit they came from.
pub fn git_tree_id(dir: &Path, format: ObjectFormat) -> Result<String, PluginError> {
    let raw = tree_object(dir, format)?.unwrap_or_else(|| format.raw("tree", b""));
    Ok(hex(&raw))
}

/// The raw id of `dir`'s tree, or `None` when it holds no file.
fn tree_object(dir: &Path, format: ObjectFormat) -> Result<Option<Vec<u8>>, PluginError> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let mut entries: Vec<(Vec<u8>, bool, &'static str, Vec<u8>)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| io(&path, e))?;
        let kind = meta.file_type();
        let (is_tree, mode, id) = if kind.is_dir() {
            match tree_object(&path, format)? {
                Some(id) => (true, "40000", id),
                None => continue,
            }
        } else if kind.is_file() {
            let body = std::fs::read(&path).map_err(|e| io(&path, e))?;
            // git keeps one bit of a file's mode: whether its owner may run it.
            let mode = if meta.permissions().mode() & 0o100 != 0 {
                "100755"
            } else {
                "100644"
            };
            (false, mode, format.raw("blob", &body))
        } else {
            return Err(PluginError::Read {
                path: path.display().to_string(),
                message: "not a regular file or folder".into(),
            });
        };
        entries.push((name.as_bytes().to_vec(), is_tree, mode, id));
    }
    if entries.is_empty() {
        return Ok(None);
    }
    // git orders a tree's entries by name, a folder's name as if it ended with `/`.
    let key = |(name, is_tree, ..): &(Vec<u8>, bool, &str, Vec<u8>)| {
        let mut key = name.clone();
        if *is_tree {
            key.push(b'/');
        }
        key
    };
    entries.sort_by_key(key);
    let mut body = Vec::new();
    for (name, _, mode, id) in &entries {
        body.extend_from_slice(mode.as_bytes());
        body.push(b' ');
        body.extend_from_slice(name);
        body.push(0);
        body.extend_from_slice(id);
    }
    Ok(Some(format.raw("tree", &body)))
}

/// Every entry under `dir` but `.git`, sorted by name, `dir` itself first.
pub fn entries(dir: &Path) -> impl Iterator<Item = Result<walkdir::DirEntry, PluginError>> + '_ {
    WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .map(move |entry| {
            entry.map_err(|e| PluginError::Read {
                path: dir.display().to_string(),
                message: e.to_string(),
            })
        })
}

/// The symbolic links under `dir` (`.git` left out), relative to it.
pub fn links(dir: &Path) -> Result<Vec<String>, PluginError> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in entries(dir) {
        let entry = entry?;
        if entry.depth() > 0 && entry.path_is_symlink() {
            if let Ok(rel) = entry.path().strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    Ok(out)
}

/// The SHA-256 of every file under `dir` but `.git`, by path relative to `dir`.
pub fn hash_tree(dir: &Path) -> Result<BTreeMap<String, String>, PluginError> {
    let mut out = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in entries(dir) {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(dir) else {
            continue;
        };
        let sum = crate::transport::sha256_local(entry.path()).map_err(|e| io(entry.path(), e))?;
        out.insert(rel.to_string_lossy().replace('\\', "/"), sum);
    }
    Ok(out)
}

/// One SHA-256 for a whole tree, from its files' paths and hashes.
pub fn tree_sum(files: &BTreeMap<String, String>) -> String {
    let listing: String = files
        .iter()
        .map(|(path, sum)| format!("{sum}  {path}\n"))
        .collect();
    crate::transport::sha256_bytes(listing.as_bytes())
}

fn io(path: &Path, e: std::io::Error) -> PluginError {
    PluginError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}
