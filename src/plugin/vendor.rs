//! `weft plugin add/remove`: copying a plugin into `plugins/NAME/` from a folder or a git
//! repo, and keeping `[plugins]` of weft.toml and `weft.lock` in step.

use std::path::{Path, PathBuf};
use std::process::Command;

use toml_edit::{value, DocumentMut, InlineTable, Item, Table, TableLike};

use super::lock::{
    commit_tree, git_tree_id, hash_tree, tree_sum, LockEntry, LockFile, ObjectFormat,
};
use super::{read_manifest, PluginError, MANIFEST};

/// Where a plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A folder on this machine, copied as it is.
    Path(PathBuf),
    /// A git repository (URL or path) at an optional ref.
    Git {
        url: String,
        git_ref: Option<String>,
    },
}

impl Source {
    /// Reads `PATH | GIT-URL[@REF]`: an existing folder without `@REF` is a path, the rest git.
    pub fn parse(arg: &str, cwd: &Path) -> Self {
        let local = cwd.join(arg);
        if local.is_dir() && !local.join(".git").exists() {
            return Source::Path(local);
        }
        // `git@host:repo` has its `@` before the host: a ref never holds `:`.
        match arg.rsplit_once('@') {
            Some((url, r)) if !url.is_empty() && !r.is_empty() && !r.contains(':') => Source::Git {
                url: git_url(url, cwd),
                git_ref: Some(r.to_string()),
            },
            _ => Source::Git {
                url: git_url(arg, cwd),
                git_ref: None,
            },
        }
    }

    fn shown(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Git { url, .. } => url.clone(),
        }
    }
}

/// A relative repo path made absolute, so that `weft plugin update` works from anywhere.
fn git_url(url: &str, cwd: &Path) -> String {
    let local = cwd.join(url);
    if !url.contains("://") && !url.contains(':') && local.exists() {
        local.display().to_string()
    } else {
        url.to_string()
    }
}

/// Vendors the plugin at `source` into `root/plugins/NAME`, records it in weft.toml and
/// weft.lock, and returns the entry. `force` replaces a plugin already vendored.
pub fn add(root: &Path, source: &Source, force: bool) -> Result<LockEntry, PluginError> {
    fetch_and_vendor(root, source, force, None)
}

/// What `weft plugin update` did.
pub struct Updated {
    /// The new record.
    pub entry: LockEntry,
    /// The commit weft.lock had before, for git sources.
    pub previous: Option<String>,
}

/// Fetches plugin `name` again from the source and ref weft.lock recorded. A tag whose commit
/// is not the recorded one is refused unless `allow_moved_tag`: a tag is a release, and one
/// that moves is a re-release or someone else's code under the old name.
pub fn update(root: &Path, name: &str, allow_moved_tag: bool) -> Result<Updated, PluginError> {
    let lock = LockFile::load(root)?;
    let Some(entry) = lock.plugin.iter().find(|e| e.name == name) else {
        return Err(PluginError::State {
            message: format!("plugin `{name}` is not recorded in weft.lock"),
            help: Some("`weft plugin add PATH | GIT-URL[@REF]` vendors one".into()),
        });
    };
    let source = match &entry.git_ref {
        Some(r) => format!("{}@{r}", entry.source),
        None => entry.source.clone(),
    };
    let pinned = Pinned {
        name,
        commit: entry.commit.as_deref(),
        allow_moved_tag,
    };
    let previous = entry.commit.clone();
    let entry = fetch_and_vendor(root, &Source::parse(&source, root), true, Some(&pinned))?;
    Ok(Updated { entry, previous })
}

/// The commit an update must find a tag at.
struct Pinned<'a> {
    name: &'a str,
    commit: Option<&'a str>,
    allow_moved_tag: bool,
}

fn fetch_and_vendor(
    root: &Path,
    source: &Source,
    force: bool,
    pinned: Option<&Pinned<'_>>,
) -> Result<LockEntry, PluginError> {
    // Inside the project rather than a shared /tmp, where another user could plant the path.
    let scratch = root
        .join("plugins")
        .join(format!(".fetch-{}", std::process::id()));
    let result = add_via(root, source, force, &scratch, pinned);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// A git source as fetched: its commit and that commit's object.
struct Fetched {
    commit: String,
    object: String,
}

fn add_via(
    root: &Path,
    source: &Source,
    force: bool,
    scratch: &Path,
    pinned: Option<&Pinned<'_>>,
) -> Result<LockEntry, PluginError> {
    let (from, git_ref, fetched) = match source {
        Source::Path(dir) => (dir.clone(), None, None),
        Source::Git { url, git_ref } => {
            let fetched = clone(url, git_ref.as_deref(), scratch, pinned)?;
            (scratch.to_path_buf(), git_ref.clone(), Some(fetched))
        }
    };
    // Before anything is read: a link would read (and vendor) a file outside the plugin.
    refuse_special_files(&from, &source.shown())?;
    if !from.join(MANIFEST).is_file() {
        return Err(PluginError::Source {
            source_name: source.shown(),
            message: "it has no plugin.toml at its top".into(),
        });
    }
    let (manifest, _) = read_manifest(&from.join(MANIFEST), &from)?;
    let name = manifest.name.get_ref().clone();
    if !super::manifest::valid_name(&name) {
        return Err(PluginError::Source {
            source_name: source.shown(),
            message: format!("its name `{name}` is not lowercase letters, digits, `-` and `_`"),
        });
    }
    if let Some(fetched) = &fetched {
        same_tree(&from, fetched, &source.shown())?;
    }
    let target = root.join("plugins").join(&name);
    let mut lock = LockFile::load(root)?;
    if target.exists() {
        if !force {
            return Err(PluginError::State {
                message: format!("plugin `{name}` is already in plugins/{name}"),
                help: Some("pass --force to replace it, or `weft plugin update NAME`".into()),
            });
        }
        std::fs::remove_dir_all(&target).map_err(|e| io(&target, e))?;
    }
    copy_tree(&from, &target)?;
    let files = hash_tree(&target)?;
    let (commit, commit_object) = match fetched {
        Some(f) => (Some(f.commit), Some(f.object)),
        None => (None, None),
    };
    let entry = LockEntry {
        name: name.clone(),
        source: source.shown(),
        git_ref,
        commit,
        commit_object,
        version: manifest.version.clone(),
        sha256: tree_sum(&files),
        files,
    };
    lock.plugin.retain(|e| e.name != name);
    lock.plugin.push(entry.clone());
    lock.save(root)?;
    list_in_config(root, &name)?;
    Ok(entry)
}

/// Refuses a plugin that holds a symbolic link, a device, a FIFO or a socket: a plugin ships
/// regular files and folders, and a link would make weft read a file of this machine as the
/// plugin's (its plugin.toml, a script, a template).
fn refuse_special_files(from: &Path, source_name: &str) -> Result<(), PluginError> {
    for entry in super::lock::entries(from) {
        let entry = entry?;
        // The folder given may itself be a link to the plugin; what is inside may not.
        if entry.depth() == 0 {
            continue;
        }
        let kind = entry.file_type();
        let what = if kind.is_symlink() {
            "a symbolic link"
        } else if kind.is_file() || kind.is_dir() {
            continue;
        } else {
            "not a regular file or folder"
        };
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        return Err(PluginError::Special {
            source_name: source_name.to_string(),
            path: rel.display().to_string(),
            what,
        });
    }
    Ok(())
}

/// Refuses a checkout whose files are not the commit's tree (a submodule, or git attributes
/// that convert files on checkout), since `weft plugin verify` checks one against the other.
fn same_tree(dir: &Path, fetched: &Fetched, source_name: &str) -> Result<(), PluginError> {
    let format = ObjectFormat::of(&fetched.commit);
    let tree = commit_tree(&fetched.object);
    let checked_out = match format {
        Some(format) => Some(git_tree_id(dir, format)?),
        None => None,
    };
    if tree.is_some() && tree == checked_out {
        return Ok(());
    }
    Err(PluginError::Source {
        source_name: source_name.to_string(),
        message: format!(
            "the files git checked out are not the tree of commit {} (a submodule, or git \
             attributes that convert files on checkout?): weft vendors a commit's files as \
             they are, so that `weft plugin verify` can check them",
            fetched.commit
        ),
    })
}

/// Deletes `plugins/NAME`, its weft.toml line and its lock entry.
pub fn remove(root: &Path, name: &str) -> Result<(), PluginError> {
    let mut lock = LockFile::load(root)?;
    let target = root.join("plugins").join(name);
    let known = lock.plugin.iter().any(|e| e.name == name);
    if !known && !target.exists() {
        return Err(PluginError::State {
            message: format!("no plugin `{name}` in this project"),
            help: Some("`weft plugin list` shows the plugins".into()),
        });
    }
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(|e| io(&target, e))?;
    }
    lock.plugin.retain(|e| e.name != name);
    lock.save(root)?;
    unlist_in_config(root, name)
}

/// Clones `url` into `dir` at `git_ref` and returns the commit. For an update (`pinned`), a
/// tag whose commit is not the recorded one is refused unless moved tags are allowed.
fn clone(
    url: &str,
    git_ref: Option<&str>,
    dir: &Path,
    pinned: Option<&Pinned<'_>>,
) -> Result<Fetched, PluginError> {
    let _ = std::fs::remove_dir_all(dir);
    let git_err = |action, message: String| PluginError::Git {
        action,
        source_name: url.to_string(),
        message,
    };
    run_git(
        Command::new("git")
            .args(["clone", "--quiet", "--"])
            .arg(url)
            .arg(dir),
    )
    .map_err(|m| git_err("clone", m))?;
    if let Some(r) = git_ref {
        // A ref is never an option: `-x` would be read as one.
        if r.starts_with('-') {
            return Err(git_err("checkout", format!("`{r}` is not a ref")));
        }
        run_git(
            Command::new("git")
                .arg("-C")
                .arg(dir)
                .args([
                    "-c",
                    "advice.detachedHead=false",
                    "checkout",
                    "--quiet",
                    "--detach",
                ])
                .arg(r),
        )
        .map_err(|m| git_err("checkout", m))?;
    }
    let commit = run_git(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "HEAD"]),
    )
    .map_err(|m| git_err("rev-parse", m))?;
    if let (Some(pinned), Some(tag)) = (pinned, git_ref) {
        let is_tag = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("refs/tags/{tag}"))
            .output()
            .is_ok_and(|out| out.status.success());
        match pinned.commit {
            Some(old) if is_tag && old != commit && !pinned.allow_moved_tag => {
                return Err(PluginError::MovedTag {
                    name: pinned.name.to_string(),
                    tag: tag.to_string(),
                    old: old.to_string(),
                    new: commit,
                });
            }
            _ => {}
        }
    }
    let object = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["cat-file", "commit", "HEAD"])
        .output()
        .map_err(|e| git_err("cat-file", e.to_string()))?;
    if !object.status.success() {
        return Err(git_err(
            "cat-file",
            String::from_utf8_lossy(&object.stderr).trim().to_string(),
        ));
    }
    let object = String::from_utf8(object.stdout).map_err(|_| {
        git_err(
            "cat-file",
            format!("commit {commit} is not UTF-8 text, which weft.lock cannot hold"),
        )
    })?;
    Ok(Fetched { commit, object })
}

fn run_git(command: &mut Command) -> Result<String, String> {
    let out = command.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), PluginError> {
    for entry in super::lock::entries(from) {
        let entry = entry?;
        let Ok(rel) = entry.path().strip_prefix(from) else {
            continue;
        };
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).map_err(|e| io(&dest, e))?;
        } else if entry.file_type().is_file() {
            copy_file(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// Copies the regular file `from` (never through a link put in its place since it was
/// listed) to `to`, with its mode.
fn copy_file(from: &Path, to: &Path) -> Result<(), PluginError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut source = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(from)
        .map_err(|e| io(from, e))?;
    let meta = source.metadata().map_err(|e| io(from, e))?;
    if !meta.is_file() {
        return Err(io(from, std::io::Error::other("not a regular file")));
    }
    let mut dest = std::fs::File::create(to).map_err(|e| io(to, e))?;
    std::io::copy(&mut source, &mut dest).map_err(|e| io(to, e))?;
    dest.set_permissions(meta.permissions())
        .map_err(|e| io(to, e))
}

/// weft.toml of the project at `root`, parsed for editing: comments and layout survive.
fn read_config(root: &Path) -> Result<(PathBuf, DocumentMut), PluginError> {
    let path = root.join(crate::project::PROJECT_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    let doc = text
        .parse::<DocumentMut>()
        .map_err(|e| PluginError::State {
            message: format!("{} does not parse: {}", path.display(), e.message()),
            help: Some(
                "fix weft.toml (`weft list` points at the error), then add the plugin".into(),
            ),
        })?;
    Ok((path, doc))
}

/// `[plugins]` of `doc`, made when it is missing.
fn plugins_table(doc: &mut DocumentMut) -> Result<&mut dyn TableLike, PluginError> {
    let item = doc.entry("plugins").or_insert_with(|| {
        let mut table = Table::new();
        // A blank line before the new table, as a person would write it.
        table.decor_mut().set_prefix("\n");
        Item::Table(table)
    });
    item.as_table_like_mut().ok_or_else(|| PluginError::State {
        message: "`plugins` in weft.toml is not a table".into(),
        help: Some(
            "write it as [plugins] with one `NAME = { path = \"plugins/NAME\" }` per plugin".into(),
        ),
    })
}

/// Adds `name = { path = "plugins/NAME" }` to the end of `[plugins]` of weft.toml, unless
/// the table lists `name` already.
fn list_in_config(root: &Path, name: &str) -> Result<(), PluginError> {
    let (path, mut doc) = read_config(root)?;
    let plugins = plugins_table(&mut doc)?;
    if plugins.contains_key(name) {
        return Ok(());
    }
    let mut entry = InlineTable::new();
    entry.insert("path", format!("plugins/{name}").into());
    plugins.insert(name, value(entry));
    std::fs::write(&path, doc.to_string()).map_err(|e| io(&path, e))
}

/// Removes `name` from `[plugins]` of weft.toml, when it is there.
fn unlist_in_config(root: &Path, name: &str) -> Result<(), PluginError> {
    let (path, mut doc) = read_config(root)?;
    let Some(plugins) = doc.get_mut("plugins").and_then(Item::as_table_like_mut) else {
        return Ok(());
    };
    if plugins.remove(name).is_none() {
        return Ok(());
    }
    std::fs::write(&path, doc.to_string()).map_err(|e| io(&path, e))
}

fn io(path: &Path, e: std::io::Error) -> PluginError {
    PluginError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}
