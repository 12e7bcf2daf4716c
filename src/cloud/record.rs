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
    let mut all = ids(scope);
    if all.iter().any(|i| i == id) {
        return Ok(());
    }
    all.push(id.to_string());
    write(scope, &all)
}

/// Forgets machine `id`.
pub fn remove(scope: &Scope, id: &str) -> Result<(), CloudError> {
    let all: Vec<String> = ids(scope).into_iter().filter(|i| i != id).collect();
    write(scope, &all)
}

fn write(scope: &Scope, ids: &[String]) -> Result<(), CloudError> {
    let path = path(scope);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text: String = ids.iter().map(|i| format!("{i}\n")).collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}
