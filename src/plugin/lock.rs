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
    /// The plugin's version from its plugin.toml.
    pub version: String,
    /// SHA-256 over every file's path and hash: one value to compare.
    pub sha256: String,
    /// Path inside the plugin → SHA-256 of the file.
    pub files: BTreeMap<String, String>,
}

/// What differs between a vendored plugin and its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The plugin.
    pub plugin: String,
    /// `modified`, `added` or `removed`.
    pub what: &'static str,
    /// The file, relative to the plugin's folder.
    pub file: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} plugins/{}/{}",
            self.plugin, self.what, self.plugin, self.file
        )
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

    /// Every difference between the vendored plugins under `root` and their records.
    pub fn changes(&self, root: &Path) -> Result<Vec<Change>, PluginError> {
        let mut out = Vec::new();
        for entry in &self.plugin {
            let now = hash_tree(&root.join("plugins").join(&entry.name))?;
            let change = |what, file: &String| Change {
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
        }
        Ok(out)
    }
}

/// The SHA-256 of every file under `dir` but `.git`, by path relative to `dir`.
pub fn hash_tree(dir: &Path) -> Result<BTreeMap<String, String>, PluginError> {
    let mut out = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
    {
        let entry = entry.map_err(|e| PluginError::Read {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
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
