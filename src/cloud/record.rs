//! weft's own record of the machines it made, per namespace and env: a machine that merely
//! carries an env's tags is not admitted to the inventory unless its id is recorded here.

use std::path::PathBuf;

use super::hostkey::{self, HostKey};
use super::{data_dir, CloudError, Machine, Scope};

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

/// How long a new cloud machine may take to answer SSH with the host key weft gave it.
pub const SSH_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Admits `machine`, just made by a cloud with `host_key` in its user data: the key is known
/// before the first login, so strict checking never has to trust a first use; once the machine
/// answers SSH with it (within `SSH_WAIT`), it is recorded as weft's, and a machine that never
/// does is forgotten again.
pub async fn admit(scope: &Scope, machine: &Machine, host_key: &HostKey) -> Result<(), CloudError> {
    let (id, name) = (&machine.id, &machine.name);
    let address = machine
        .address
        .as_deref()
        .ok_or_else(|| CloudError::Io(format!("{id} ({name}) runs but has no address to reach")))?;
    let (host, port) = hostkey::host_port(address);
    hostkey::record(id, &host, port, &host_key.public)?;
    if let Err(err) = hostkey::wait_for(name, &host, port, &host_key.public, SSH_WAIT).await {
        hostkey::forget(id)?;
        return Err(err);
    }
    add(scope, id)
}
