//! Machines: the provider interface, the `local` sandbox, `ec2` and `openstack` providers behind it, and an
//! env's machines as the CLI and controller goals act on them (`env.rs`). Plain Rust.

#[cfg(feature = "ec2")]
pub mod ec2;
pub mod env;
pub mod hostkey;
pub mod local;
#[cfg(feature = "openstack")]
pub mod openstack;
pub mod record;
pub mod userdata;

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Tag keys every machine and resource carries.
pub mod tags {
    /// The namespace the env lives in (`/<project>/` by default, `/prod/` ...; `/` for
    /// machines made before namespaces held the project).
    pub const NAMESPACE: &str = "weft:namespace";
    /// The env's name.
    pub const ENV: &str = "weft:env";
    /// The machine's role.
    pub const ROLE: &str = "weft:role";
    /// The machine's ordinal within its role.
    pub const ORDINAL: &str = "weft:ordinal";
    /// Who made it.
    pub const CREATED_BY: &str = "weft:created-by";
    /// The name of the project that made it (`[project] name`).
    pub const PROJECT: &str = "weft:project";
    /// The folder of the project that made it (`local` only: it stays on this host), so
    /// `weft cloud list --all` can tell a project whose folder is gone.
    pub const PROJECT_DIR: &str = "weft:project-dir";
}

/// A machine as a provider reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    /// The provider's id.
    pub id: String,
    /// `<role>-<ordinal>`, its host name in the env.
    pub name: String,
    /// Its role.
    pub role: String,
    /// Its ordinal within the role, from 0.
    pub ordinal: u32,
    /// `running`, `stopped`, `pending`, ...
    pub state: String,
    /// How weft reaches it over SSH (`root@10.77.0.5:22`), when it has an address.
    pub address: Option<String>,
    /// The image it was made from.
    pub image: Option<String>,
    /// All its tags.
    pub tags: BTreeMap<String, String>,
    /// When it was made, in seconds since the Unix epoch, when the provider knows.
    #[serde(default)]
    pub created: Option<u64>,
}

/// Which machines: those of one env in one namespace, optionally one role.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The namespace.
    pub namespace: String,
    /// The env.
    pub env: String,
}

/// Refuses a malformed IPv4 CIDR (`ssh_cidr`) before anything is made.
pub fn check_cidr(cidr: &str) -> Result<(), CloudError> {
    let valid = cidr.split_once('/').is_some_and(|(ip, bits)| {
        ip.parse::<std::net::Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32)
    });
    if valid {
        Ok(())
    } else {
        Err(CloudError::Config(format!(
            "ssh_cidr `{cidr}` is not an IPv4 CIDR like `203.0.113.0/24`"
        )))
    }
}

impl Machine {
    /// Sorts `machines` as `cloud list --all` shows them: by namespace, env, role, ordinal.
    pub fn sort_by_place(machines: &mut [Machine]) {
        machines.sort_by(|a, b| {
            let key = |m: &Machine| {
                (
                    m.tags.get(tags::NAMESPACE).cloned(),
                    m.tags.get(tags::ENV).cloned(),
                    m.role.clone(),
                    m.ordinal,
                )
            };
            key(a).cmp(&key(b))
        });
    }
}

/// What a new machine should be.
#[derive(Debug, Clone, Default)]
pub struct MachineSpec {
    /// Its role.
    pub role: String,
    /// Its ordinal.
    pub ordinal: u32,
    /// The image to start from (a provider image id or a weft image name).
    pub image: Option<String>,
    /// The instance size (`t3.micro`); the local provider ignores it.
    pub size: Option<String>,
    /// Public keys that may log in as root (or the image's login user).
    pub keys: Vec<String>,
    /// A script run at first boot, where the provider supports it.
    pub user_data: Option<String>,
    /// Debian packages the machine starts with.
    pub packages: Vec<String>,
    /// The size of its disk in bytes (the local provider's; none for its default).
    pub disk: Option<u64>,
    /// Extra tags (the login user goes in `weft:ssh-user`).
    pub tags: BTreeMap<String, String>,
}

/// An env's virtual IP: the address a pair of load balancers shares over VRRP, and the
/// router id that keeps its VRRP instance apart from other envs' on the same network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualIp {
    /// The address.
    pub address: std::net::Ipv4Addr,
    /// The VRRP virtual router id (1..=255), unique on the provider's network.
    pub router_id: u8,
}

/// What can go wrong with a provider.
#[derive(Debug, Error)]
pub enum CloudError {
    /// The provider cannot work here (no root, not Linux, missing tools).
    #[error("{0}")]
    Unsupported(String),
    /// This host lacks Debian packages the provider needs.
    #[error(
        "this host lacks what `local` machines need: {tools}; install them with \
         `apt-get install {packages}`"
    )]
    MissingPackages {
        /// The missing tools, each with its package.
        tools: String,
        /// The packages to install, space-separated.
        packages: String,
    },
    /// No machine or image by that name.
    #[error("{0}")]
    NotFound(String),
    /// The provider's API said no: `code: message`.
    #[error("{code}: {message}")]
    Api { code: String, message: String },
    /// A command or file operation failed.
    #[error("{0}")]
    Io(String),
    /// A machine answered with another host key than the one weft gave it.
    #[error("{0}")]
    HostKey(String),
    /// A setting cannot be used (`user_data`, `ssh_cidr`, ...).
    #[error("{0}")]
    Config(String),
}

impl From<std::io::Error> for CloudError {
    fn from(err: std::io::Error) -> Self {
        CloudError::Io(err.to_string())
    }
}

/// What every provider does.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Creates (and starts) a machine. The local provider gives it the first ordinal from
    /// `spec.ordinal` on that is free, so parallel creates in one env each make their own;
    /// ec2 returns the machine of that role and ordinal when one exists.
    async fn create(&self, scope: &Scope, spec: &MachineSpec) -> Result<Machine, CloudError>;
    /// The machines of the scope, by role then ordinal.
    async fn list(&self, scope: &Scope) -> Result<Vec<Machine>, CloudError>;
    /// Starts a stopped machine.
    async fn start(&self, scope: &Scope, id: &str) -> Result<(), CloudError>;
    /// Stops a running machine, keeping its disk.
    async fn stop(&self, scope: &Scope, id: &str) -> Result<(), CloudError>;
    /// Deletes a machine and its disk.
    async fn terminate(&self, scope: &Scope, id: &str) -> Result<(), CloudError>;
    /// Saves a machine's disk as image `name`; returns the image id.
    async fn image(&self, scope: &Scope, id: &str, name: &str) -> Result<String, CloudError>;
    /// Imports a public key under `name`, for machines created later.
    async fn register_key(
        &self,
        scope: &Scope,
        name: &str,
        public_key: &str,
    ) -> Result<(), CloudError>;
    /// Deletes everything the scope owns besides machines (keys, security groups, images).
    async fn destroy_resources(&self, scope: &Scope) -> Result<Vec<String>, CloudError>;
    /// Reserves the scope's virtual IP (`wanted`, or a free address of the provider's network)
    /// and its VRRP router id; later calls return the same pair until the env's last machine
    /// goes. Providers whose network cannot carry VRRP refuse, saying what to use instead.
    async fn virtual_ip(
        &self,
        _scope: &Scope,
        _wanted: Option<std::net::Ipv4Addr>,
    ) -> Result<VirtualIp, CloudError> {
        Err(CloudError::Config(
            "this provider has no virtual IPs for load balancers".into(),
        ))
    }
    /// What `virtual_ip` would return, reserving nothing (for `--check`). Providers whose
    /// `virtual_ip` writes anything (a reservation) override it.
    async fn peek_virtual_ip(
        &self,
        scope: &Scope,
        wanted: Option<std::net::Ipv4Addr>,
    ) -> Result<VirtualIp, CloudError> {
        self.virtual_ip(scope, wanted).await
    }

    /// Moves the machines of `from` into `to` (the same env in another namespace) and gives
    /// them `tags`; they keep running, with their names, addresses and disks. Refused, with
    /// nothing moved, when `to` already has a machine of one of their names.
    async fn adopt(
        &self,
        _from: &Scope,
        _to: &Scope,
        _tags: &BTreeMap<String, String>,
    ) -> Result<Vec<Machine>, CloudError> {
        Err(CloudError::Unsupported(
            "this provider cannot move machines between namespaces".into(),
        ))
    }

    /// Every machine weft made that the provider sees, whatever its namespace and env (their
    /// tags say which): on `local` those of this data folder, on `ec2` those of the region.
    async fn list_all(&self) -> Result<Vec<Machine>, CloudError> {
        Err(CloudError::Unsupported(
            "this provider cannot list every machine".into(),
        ))
    }
    /// Whether `machine` may receive deploys and secrets: a machine weft made itself, not one
    /// that only carries the env's tags.
    fn admits(&self, _scope: &Scope, _machine: &Machine) -> bool {
        true
    }
}

/// weft's own data folder: `$XDG_DATA_HOME/weft`, else `~/.local/share/weft`.
/// Refuses to adopt machines named `moving` into `to` where it already has one of their
/// `taken` names: nothing is moved then.
pub fn refuse_name_clash<'a>(
    moving: impl IntoIterator<Item = &'a str>,
    taken: &[String],
    from: &Scope,
    to: &Scope,
) -> Result<(), CloudError> {
    let clash: Vec<&str> = moving
        .into_iter()
        .filter(|name| taken.iter().any(|t| t == name))
        .collect();
    if clash.is_empty() {
        return Ok(());
    }
    Err(CloudError::Config(format!(
        "namespace `{}` already has {} in env `{}`: terminate those (or the ones in `{}`) \
         first; nothing was moved",
        to.namespace,
        clash.join(", "),
        to.env,
        from.namespace
    )))
}

pub fn data_dir() -> PathBuf {
    crate::config::weft_dir("XDG_DATA_HOME", ".local/share")
        .unwrap_or_else(|| PathBuf::from("/var/lib/weft"))
}

/// The key pair weft logs in to its machines with, made on first use: once, when parallel
/// weft processes ask for it together (the others wait on its lock and read it).
pub fn machine_key() -> Result<(PathBuf, String), CloudError> {
    machine_key_in(&data_dir().join("keys"))
}

/// `machine_key` in the folder `dir`.
fn machine_key_in(dir: &std::path::Path) -> Result<(PathBuf, String), CloudError> {
    let key = dir.join("id_ed25519");
    if !key.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let _lock = crate::lockfile::FileLock::beside(&key)?;
        if !key.exists() {
            make_machine_key(dir, &key)?;
        }
    }
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    Ok((key, public.trim().to_string()))
}

/// Makes the key pair under a fresh name in `dir`, then renames it to `key`: the public half
/// first, so whoever sees the private key finds its public key too.
fn make_machine_key(dir: &std::path::Path, key: &std::path::Path) -> Result<(), CloudError> {
    // No dot but the leading one, so `with_extension("pub")` names ssh-keygen's public half.
    let fresh = dir.join(format!(".new-key-{:016x}", fastrand::u64(..)));
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "weft-machines", "-f"])
        .arg(&fresh)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            CloudError::Unsupported(format!(
                "ssh-keygen is needed to make weft's machine key: {e}"
            ))
        });
    let placed = status.and_then(|status| {
        if !status.success() {
            return Err(CloudError::Io(
                "ssh-keygen failed to make weft's machine key".into(),
            ));
        }
        std::fs::rename(fresh.with_extension("pub"), key.with_extension("pub"))?;
        std::fs::rename(&fresh, key)?;
        Ok(())
    });
    if placed.is_err() {
        let _ = std::fs::remove_file(&fresh);
        let _ = std::fs::remove_file(fresh.with_extension("pub"));
    }
    placed
}

/// The public half of the key pair weft logs in to its machines with, when it was made.
pub fn existing_machine_key() -> Option<String> {
    let public = data_dir().join("keys").join("id_ed25519.pub");
    let text = std::fs::read_to_string(public).ok()?;
    Some(text.trim().to_string()).filter(|k| !k.is_empty())
}

/// The known_hosts file where weft records its machines' host keys.
pub fn known_hosts_file() -> PathBuf {
    data_dir().join("known_hosts")
}

/// `text` as part of a file name: ASCII letters, digits and `-` stay, anything else is `_`.
fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parallel weft processes on a fresh data folder all get the one machine key: none fails
    /// on a key another is making (ssh-keygen refuses to overwrite), none gets another key.
    #[test]
    fn parallel_first_uses_make_one_machine_key() {
        let dir = tempfile::tempdir().expect("dir");
        let keys = dir.path().join("keys");
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let keys = keys.clone();
                std::thread::spawn(move || machine_key_in(&keys).map(|(_, public)| public))
            })
            .collect();
        let publics: Vec<String> = threads
            .into_iter()
            .map(|t| t.join().expect("thread").expect("machine key"))
            .collect();
        assert!(publics[0].starts_with("ssh-ed25519 "), "{publics:?}");
        assert!(publics.iter().all(|p| p == &publics[0]), "{publics:?}");
        let left: Vec<String> = std::fs::read_dir(&keys)
            .expect("keys")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".id_ed25519.lock"))
            .collect();
        let mut left = left;
        left.sort();
        assert_eq!(left, ["id_ed25519", "id_ed25519.pub"]);
    }
}
