//! What each script defines (its functions, their parameters and docs), and which templates
//! parse, kept on disk so that a command compiles only the scripts it runs and the templates it
//! renders (issue 38).
//!
//! An outline is stored under the SHA-256 of the script's text (under its path for a stdlib
//! file: the binary holds its text), and only after that text compiled: an outline found for a
//! text is proof that the text has no syntax error, so every diagnostic stays as it was while
//! the unchanged files are not compiled again. A template's key is kept the same way, once its
//! text parsed. The whole file belongs to one weft binary: another version or build of weft
//! starts afresh.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One function a script defines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FnOutline {
    /// Its name.
    pub name: String,
    /// Its parameters, `host` included.
    pub params: Vec<String>,
    /// Its doc comment without the slashes.
    pub doc: String,
    /// Whether it is a `private fn`.
    pub private: bool,
}

/// A setting `app_settings()` or `repo_settings()` declares, as the index keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingOutline {
    /// Its key.
    pub name: String,
    /// What it is for.
    pub doc: String,
    /// Its default.
    pub default: Option<serde_json::Value>,
}

/// What a `lib/app.rhai` declares: `None` when it does not declare both functions.
pub type DeclaredOutline = Option<(Vec<SettingOutline>, Vec<SettingOutline>)>;

/// The file: every entry is valid only for the binary named in `binary`.
#[derive(Default, Clone, Serialize, Deserialize)]
struct IndexFile {
    binary: String,
    /// Outlines by the SHA-256 of the script's text, or `<stdlib>/PATH`.
    scripts: HashMap<String, Vec<FnOutline>>,
    /// The settings an app service declares, by the key of its `lib/app.rhai`.
    app_settings: HashMap<String, DeclaredOutline>,
    /// The templates known to parse, by the SHA-256 of their text or `<stdlib>/PATH`.
    #[serde(default)]
    templates: HashSet<String>,
}

/// The outlines of one project's scripts: those kept from earlier commands and those this
/// command made; only those it used or made are written back.
pub struct Index {
    path: Option<PathBuf>,
    /// What names this binary, which the file is written for.
    binary: String,
    known: IndexFile,
    used: Used,
    changed: bool,
    /// Whether this command checked the templates: one that did not keeps those known.
    templates_checked: bool,
}

/// The keys of the entries this command used or made.
#[derive(Default)]
struct Used {
    scripts: HashSet<String>,
    app_settings: HashSet<String>,
    templates: HashSet<String>,
}

/// The SHA-256 of `text`, in hex: the key of its outline.
pub fn key(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What names this binary: its version, and the size and modification time of its file, so a
/// rebuilt weft (a changed stdlib or parser) never reads what an earlier build wrote.
fn binary() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let meta = std::fs::metadata(exe).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!(
        "{} {} {}.{:09}",
        env!("CARGO_PKG_VERSION"),
        meta.len(),
        modified.as_secs(),
        modified.subsec_nanos()
    ))
}

/// `$XDG_CACHE_HOME/weft/index/<SHA-256 of the project's folder>.json`, while that folder is
/// this user's alone: under `sudo` with another user's `HOME`, outlines from a folder that user
/// can fill would decide which goals exist and where they run.
fn path_for(root: &Path, create: bool) -> Option<PathBuf> {
    let dir = crate::config::weft_dir("XDG_CACHE_HOME", ".cache")?.join("index");
    let private = if create {
        crate::lockfile::private_folder(&dir)
    } else {
        crate::lockfile::is_private_folder(&dir)
    };
    private.then(|| dir.join(format!("{}.json", key(&root.to_string_lossy()))))
}

impl Index {
    /// The index kept for the project at `root`; empty when there is none, it is unreadable
    /// or another weft binary wrote it.
    pub fn open(root: &Path) -> Self {
        Self::open_in(root, true)
    }

    /// Like `open`, but it creates no folder and `save` writes nothing (`--check`).
    pub fn read_only(root: &Path) -> Self {
        let mut index = Self::open_in(root, false);
        index.path = None;
        index
    }

    fn open_in(root: &Path, create: bool) -> Self {
        let (path, binary) = match (path_for(root, create), binary()) {
            (Some(path), Some(binary)) => (Some(path), binary),
            // Without a name for this binary nothing kept could be trusted.
            _ => (None, String::new()),
        };
        let known = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice::<IndexFile>(&bytes).ok())
            .filter(|f| f.binary == binary)
            .unwrap_or_default();
        Index {
            path,
            binary,
            used: Used::default(),
            known,
            changed: false,
            templates_checked: false,
        }
    }

    /// An index that keeps nothing: every script is compiled.
    pub fn none() -> Self {
        Index {
            path: None,
            binary: String::new(),
            known: IndexFile::default(),
            used: Used::default(),
            changed: false,
            templates_checked: false,
        }
    }

    /// The outline kept for the text whose key is `key`.
    pub fn outline(&mut self, key: &str) -> Option<Vec<FnOutline>> {
        let outline = self.known.scripts.get(key)?.clone();
        self.used.scripts.insert(key.to_string());
        Some(outline)
    }

    /// Keeps the outline of a text that compiled.
    pub fn remember(&mut self, key: String, outline: Vec<FnOutline>) {
        self.used.scripts.insert(key.clone());
        self.known.scripts.insert(key, outline);
        self.changed = true;
    }

    /// The app settings kept for the `lib/app.rhai` whose key is `key`.
    pub fn app_settings(&mut self, key: &str) -> Option<DeclaredOutline> {
        let declared = self.known.app_settings.get(key)?.clone();
        self.used.app_settings.insert(key.to_string());
        Some(declared)
    }

    /// Keeps what the `lib/app.rhai` whose key is `key` declares.
    pub fn remember_app_settings(&mut self, key: String, declared: DeclaredOutline) {
        self.used.app_settings.insert(key.clone());
        self.known.app_settings.insert(key, declared);
        self.changed = true;
    }

    /// Starts a check of every template: those it does not find are dropped from the index.
    pub fn checking_templates(&mut self) {
        self.templates_checked = true;
    }

    /// Whether the template text whose key is `key` is known to parse.
    pub fn template_parses(&mut self, key: &str) -> bool {
        let known = self.known.templates.contains(key);
        if known {
            self.used.templates.insert(key.to_string());
        }
        known
    }

    /// Keeps the key of a template text that parsed.
    pub fn remember_template(&mut self, key: String) {
        self.used.templates.insert(key.clone());
        self.known.templates.insert(key);
        self.changed = true;
    }

    /// Writes the outlines this command used back when any is new or any kept one went
    /// unused; a cache that cannot be written only makes the next command compile again.
    pub fn save(&mut self) {
        let Some(path) = &self.path else { return };
        let (known, used) = (&mut self.known, &self.used);
        let stale = known.scripts.len() != used.scripts.len()
            || known.app_settings.len() != used.app_settings.len()
            || (self.templates_checked && known.templates.len() != used.templates.len());
        if !(self.changed || stale) {
            return;
        }
        // Every entry this command needs is a used one: what it did not use goes.
        known.scripts.retain(|key, _| used.scripts.contains(key));
        known
            .app_settings
            .retain(|key, _| used.app_settings.contains(key));
        if self.templates_checked {
            known.templates.retain(|key| used.templates.contains(key));
        }
        known.binary.clone_from(&self.binary);
        let Ok(text) = serde_json::to_vec(&*known) else {
            return;
        };
        if let Some(dir) = path.parent() {
            if std::fs::create_dir_all(dir).is_err() {
                return;
            }
        }
        // Through an exclusively created sibling and a rename: a parallel weft reads the old
        // index or the new one, never half of one.
        if crate::lockfile::replace(path, &text, 0o600).is_ok() {
            self.changed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn the_key_is_the_texts_sha256() {
        assert_eq!(
            key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
