//! Machines: the provider interface, the `local` sandbox and `ec2` providers behind it, and an
//! env's machines as the CLI and controller goals act on them (`env.rs`). Plain Rust.

#[cfg(feature = "ec2")]
pub mod ec2;
pub mod env;
pub mod hostkey;
pub mod local;
pub mod record;

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Tag keys every machine and resource carries.
pub mod tags {
    /// The namespace the env lives in (`/` by default, `/prod/` ...).
    pub const NAMESPACE: &str = "weft:namespace";
    /// The env's name.
    pub const ENV: &str = "weft:env";
    /// The machine's role.
    pub const ROLE: &str = "weft:role";
    /// The machine's ordinal within its role.
    pub const ORDINAL: &str = "weft:ordinal";
    /// Who made it.
    pub const CREATED_BY: &str = "weft:created-by";
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
}

/// Which machines: those of one env in one namespace, optionally one role.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The namespace.
    pub namespace: String,
    /// The env.
    pub env: String,
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
    /// Creates (and starts) a machine, or returns the one of that role and ordinal that exists.
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
    /// Whether `machine` may receive deploys and secrets: a machine weft made itself, not one
    /// that only carries the env's tags.
    fn admits(&self, _scope: &Scope, _machine: &Machine) -> bool {
        true
    }
}

/// weft's own data folder: `$XDG_DATA_HOME/weft`, else `~/.local/share/weft`.
pub fn data_dir() -> PathBuf {
    crate::config::weft_dir("XDG_DATA_HOME", ".local/share")
        .unwrap_or_else(|| PathBuf::from("/var/lib/weft"))
}

/// The key pair weft logs in to its machines with, made on first use.
pub fn machine_key() -> Result<(PathBuf, String), CloudError> {
    let dir = data_dir().join("keys");
    let key = dir.join("id_ed25519");
    if !key.exists() {
        std::fs::create_dir_all(&dir)?;
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "weft-machines", "-f"])
            .arg(&key)
            .status()
            .map_err(|e| {
                CloudError::Unsupported(format!(
                    "ssh-keygen is needed to make weft's machine key: {e}"
                ))
            })?;
        if !status.success() {
            return Err(CloudError::Io(
                "ssh-keygen failed to make weft's machine key".into(),
            ));
        }
    }
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    Ok((key, public.trim().to_string()))
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
