//! How a run connects over SSH, as the user asked for it, and the settings built from that once
//! per run, before any host is touched.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use miette::Diagnostic;
use thiserror::Error;
use tokio::sync::Semaphore;

use super::algorithms::Algorithms;
use super::auth::{default_identity_files, Identities};
use super::known_hosts::KnownHosts;
use super::ssh_config::SshConfig;
use super::{HostKeyPolicy, SshError, SshSettings, Target};

/// Connection settings that cannot be used, found before any host is touched.
#[derive(Debug, Error, Diagnostic)]
pub enum ConnectError {
    /// A host's address does not parse.
    #[error("host `{host}` has a bad address: {message}")]
    #[diagnostic(
        code(weft::connect::address),
        help("write addresses as `user@addr:port`")
    )]
    Address { host: String, message: String },
    /// An identity, known_hosts or ssh config file is unusable.
    #[error(transparent)]
    #[diagnostic(code(weft::connect::setup))]
    Setup(#[from] SshError),
    /// A file could not be read.
    #[error("cannot read `{path}`: {message}")]
    #[diagnostic(code(weft::connect::read))]
    Read { path: String, message: String },
    /// The ssh config asks for something weft cannot do for a host.
    #[error("{path}, for host `{host}`: {message}")]
    #[diagnostic(
        code(weft::connect::ssh_config),
        help("see `ssh -Q kex` and `ssh -Q cipher` for the names, or remove the line")
    )]
    Config {
        path: String,
        host: String,
        message: String,
    },
}

/// How the hosts of a run are reached; nested runs share it unchanged.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Identity files the user named (`-i`): each must load.
    pub identities: Vec<PathBuf>,
    /// The identity the user config names, offered first when it exists.
    pub config_identity: Option<PathBuf>,
    /// The key weft's own machines accept, offered last when it exists.
    pub machine_identity: Option<PathBuf>,
    /// known_hosts files, checked in order; the first one records new keys.
    pub known_hosts: Vec<PathBuf>,
    /// What to do with a host whose key is not known yet.
    pub policy: HostKeyPolicy,
    /// The OpenSSH config file (`-F`, else `~/.ssh/config`).
    pub ssh_config: Option<PathBuf>,
    /// The limit for TCP connect, handshake and login.
    pub connect_timeout: Duration,
    /// The login user for addresses that name none.
    pub user: Option<String>,
}

impl ConnectOptions {
    /// The login user for addresses that name none: `-u`, else `$USER`, else root.
    pub fn default_user(&self) -> String {
        self.user
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into())
    }

    /// Loads the ssh config, known_hosts and identities for connections to `targets`, `at_once`
    /// of them at a time.
    pub fn settings(
        &self,
        targets: &[Target],
        at_once: usize,
    ) -> Result<SshSettings, ConnectError> {
        let ssh_config = match &self.ssh_config {
            Some(path) => SshConfig::load(path).map_err(|e| ConnectError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            })?,
            None => SshConfig::default(),
        };
        let known_hosts =
            KnownHosts::load(self.known_hosts.clone()).map_err(|e| ConnectError::Read {
                path: "known_hosts".into(),
                message: e.to_string(),
            })?;
        let mut optional: Vec<PathBuf> = self.config_identity.iter().cloned().collect();
        let bad_config = |host: &str, message: String| ConnectError::Config {
            path: self
                .ssh_config
                .as_ref()
                .map_or_else(|| "~/.ssh/config".into(), |p| p.display().to_string()),
            host: host.to_string(),
            message,
        };
        for target in targets {
            let resolved = ssh_config.resolve(&target.host);
            Algorithms::for_host(&resolved).map_err(|m| bad_config(&target.host, m))?;
            optional.extend(resolved.identity_files);
            let jumps = resolved.proxy_jump.unwrap_or_default();
            for jump in jumps.iter().filter_map(|j| Target::parse(j).ok()) {
                let resolved = ssh_config.resolve(&jump.host);
                Algorithms::for_host(&resolved).map_err(|m| bad_config(&jump.host, m))?;
                optional.extend(resolved.identity_files);
            }
        }
        optional.extend(default_identity_files());
        optional.extend(self.machine_identity.iter().cloned());
        let identities = Identities::load(&self.identities, &optional)?;
        Ok(SshSettings {
            known_hosts: Mutex::new(known_hosts),
            policy: self.policy,
            identities,
            ssh_config,
            default_user: self.default_user(),
            connect_timeout: self.connect_timeout.max(Duration::from_secs(1)),
            retries: 2,
            opening: Semaphore::new(64),
            sending: Semaphore::new(32),
            sftp_writes: sftp_writes(at_once.min(targets.len())),
            keepalive: Duration::from_secs(15),
            jumps: Default::default(),
            round_trip: Default::default(),
        })
    }
}

/// How many SFTP writes of 32 KiB each connection keeps in flight. russh encodes every write in
/// flight into one send buffer that keeps its size for the connection's life, so the run
/// shares a budget of 16 MiB: up to 32 hosts at once get the full 16 writes (enough for a
/// distant host), a 200-host fan-out gets 2 each (which still fills a link, 200 at a time).
fn sftp_writes(at_once: usize) -> usize {
    const BUDGET: usize = 16 << 20;
    (BUDGET / (at_once.max(1) * (32 << 10))).clamp(2, 16)
}

#[cfg(test)]
mod tests {
    use super::sftp_writes;

    #[test]
    fn sftp_writes_in_flight_share_one_budget_across_a_fan_out() {
        assert_eq!(sftp_writes(1), 16);
        assert_eq!(sftp_writes(32), 16);
        assert_eq!(sftp_writes(50), 10);
        assert_eq!(sftp_writes(200), 2);
        assert_eq!(sftp_writes(5000), 2);
        for hosts in [33, 64, 100, 256] {
            assert!(
                hosts * sftp_writes(hosts) * (32 << 10) <= 16 << 20,
                "{hosts}"
            );
        }
    }
}
