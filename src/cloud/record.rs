//! weft's own record of the machines it made, per namespace and env: a machine that merely
//! carries an env's tags is not admitted to the inventory unless its id is recorded here.

use std::path::PathBuf;

use super::{data_dir, CloudError, Scope};

/// Record paths keep every `_` (changing them would orphan existing records).
fn slug(text: &str) -> String {
    let slug = super::file_safe(text);
    if slug.is_empty() {
        "_".into()
    } else {
        slug
    }
}

/// `<data>/instances/<namespace>/<env>`: one machine id a line.
pub fn path(scope: &Scope) -> PathBuf {
    data_dir()
        .join("instances")
        .join(slug(&scope.namespace))
        .join(slug(&scope.env))
}

fn ids(scope: &Scope) -> Vec<String> {
    std::fs::read_to_string(path(scope))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether weft recorded machine `id` in the scope.
pub fn contains(scope: &Scope, id: &str) -> bool {
    ids(scope).iter().any(|i| i == id)
}

/// Records machine `id`.
pub fn add(scope: &Scope, id: &str) -> Result<(), CloudError> {
    edit(scope, |all| {
        if !all.iter().any(|i| i == id) {
            all.push(id.to_string());
        }
    })
}

/// Forgets machine `id`.
pub fn remove(scope: &Scope, id: &str) -> Result<(), CloudError> {
    edit(scope, |all| all.retain(|i| i != id))
}

/// Reads, edits and writes the record back under its lock: parallel creates in one env each
/// add their machine, and a reader sees the old or the new record whole (a rename).
fn edit(scope: &Scope, change: impl FnOnce(&mut Vec<String>)) -> Result<(), CloudError> {
    let path = path(scope);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _lock = crate::lockfile::FileLock::beside(&path)?;
    let mut all = ids(scope);
    let before = all.clone();
    change(&mut all);
    if all == before && path.exists() {
        return Ok(());
    }
    let text: String = all.iter().map(|i| format!("{i}\n")).collect();
    crate::lockfile::replace(&path, text.as_bytes(), 0o644)?;
    Ok(())
}
