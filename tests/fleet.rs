//! Real OpenSSH test hosts for the SSH tests, started and stopped with `scripts/fleet.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// One sshd of the fleet.
#[derive(Debug, Clone)]
pub struct FleetHost {
    pub name: String,
    pub port: u16,
}

/// N sshd processes on loopback, stopped when dropped.
pub struct Fleet {
    dir: TempDir,
    pub hosts: Vec<FleetHost>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fleet.sh")
}

impl Fleet {
    /// Starts `count` hosts.
    pub fn start(count: usize) -> Self {
        Self::start_with(count, &[])
    }

    /// Starts `count` hosts in a network namespace behind a link with a round trip of
    /// `rtt_ms` and `loss` percent of packets lost each way, and a jump host in front of them
    /// (`ssh_config` sends every host through it; `jump_connections` counts what it took).
    pub fn start_behind_jump_host(count: usize, rtt_ms: u32, loss: u32) -> Self {
        Self::start_env(
            count,
            &[],
            &[
                ("FLEET_NET", "1".to_string()),
                ("RTT", rtt_ms.to_string()),
                ("LOSS", loss.to_string()),
                ("BASTION", "1".to_string()),
            ],
        )
    }

    /// The TCP connections the jump host accepted so far.
    pub fn jump_connections(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("bastion/sshd.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Connection from"))
            .count()
    }

    /// Starts `count` hosts, host `i` with the sshd options `text` for each `(i, text)` (its
    /// keywords replace the defaults').
    pub fn start_with(count: usize, options: &[(usize, &str)]) -> Self {
        Self::start_env(count, options, &[])
    }

    fn start_env(count: usize, options: &[(usize, &str)], env: &[(&str, String)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("weft-fleet")
            .tempdir()
            .expect("fleet dir");
        for (index, text) in options {
            std::fs::write(dir.path().join(format!("host-{index}.sshd_config")), text)
                .expect("sshd options");
        }
        let status = Command::new(script())
            .arg("start")
            .arg(count.to_string())
            .arg(dir.path())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .status()
            .expect("fleet.sh runs");
        assert!(
            status.success(),
            "fleet.sh start failed (needs root and openssh-server)"
        );
        let tsv = std::fs::read_to_string(dir.path().join("hosts.tsv")).expect("hosts.tsv");
        let hosts = tsv
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                FleetHost {
                    name: fields[0].to_string(),
                    port: fields[2].parse().expect("port"),
                }
            })
            .collect();
        Fleet { dir, hosts }
    }

    /// The client key every host accepts.
    pub fn key(&self) -> String {
        self.path("client_key")
    }

    /// A known_hosts file with every host's key.
    pub fn known_hosts(&self) -> String {
        self.path("known_hosts")
    }

    /// A file in the fleet's folder.
    pub fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    /// `user@127.0.0.1:port` of host `index`.
    pub fn address(&self, index: usize, user: &str) -> String {
        format!("{user}@127.0.0.1:{}", self.hosts[index].port)
    }

    /// A weft.toml with env `fleet` holding every host as root.
    pub fn config(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weft.toml")).expect("weft.toml")
    }

    /// The sudo password of the plain user `weft-test`.
    pub fn sudo_password(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sudo_password"))
            .expect("sudo_password")
            .trim()
            .to_string()
    }

    /// Cuts every open connection to host `index`.
    pub fn drop_connections(&self, index: usize) {
        let status = Command::new(script())
            .arg("drop")
            .arg(self.dir.path())
            .arg(&self.hosts[index].name)
            .status()
            .expect("fleet.sh runs");
        assert!(status.success());
    }

    /// Stops host `index` for good.
    pub fn stop_host(&self, index: usize) {
        let tsv = std::fs::read_to_string(self.dir.path().join("hosts.tsv")).expect("hosts.tsv");
        let line = tsv.lines().nth(index).expect("host line");
        let pid = line.split('\t').nth(3).expect("pid");
        let _ = Command::new("kill").arg(pid).status();
        // sshd runs as a daemon (not our child): gone once its /proc entry is.
        let proc = std::path::Path::new("/proc").join(pid);
        crate::harness::wait_for(
            &format!("sshd {pid} to stop"),
            std::time::Duration::from_secs(10),
            || !proc.exists(),
        );
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}
