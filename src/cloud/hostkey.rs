//! Host keys of new machines, known before the first login: made on the controller, recorded
//! in weft's known_hosts under the machine's id, and checked against what the machine answers.

use std::os::unix::fs::DirBuilderExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::keys::ssh_key::PublicKey;
use russh::keys::PublicKeyOrCertificate;

use super::{data_dir, known_hosts_file, CloudError};

/// A host key pair made for one machine.
pub struct HostKey {
    /// The private key, OpenSSH format: only ever put in the machine's user data.
    pub private: String,
    /// The public key line (`ssh-ed25519 AAAA...`).
    pub public: String,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Makes an ed25519 host key with `ssh-keygen` in a private folder it removes afterwards.
pub fn generate() -> Result<HostKey, CloudError> {
    let base = data_dir();
    std::fs::create_dir_all(&base)?;
    let dir = base.join(format!(
        ".hostkey-{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    ));
    // Exclusive and owner-only: nobody else can read the private key while it is on disk.
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let key = dir.join("key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "weft-host", "-f"])
        .arg(&key)
        .stdin(std::process::Stdio::null())
        .status();
    let read = || -> Result<HostKey, CloudError> {
        let status = made.map_err(|e| {
            CloudError::Unsupported(format!("ssh-keygen is needed to make host keys: {e}"))
        })?;
        if !status.success() {
            return Err(CloudError::Io(
                "ssh-keygen failed to make a host key".into(),
            ));
        }
        let public = std::fs::read_to_string(key.with_extension("pub"))?;
        let mut words = public.split_whitespace();
        let public = format!(
            "{} {}",
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default()
        );
        Ok(HostKey {
            private: std::fs::read_to_string(&key)?,
            public,
        })
    };
    let result = read();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `host` and `port` of an address `user@host:port` (port 22 when absent).
pub fn host_port(address: &str) -> (String, u16) {
    let rest = address.rsplit_once('@').map_or(address, |(_, r)| r);
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => (
            host.trim_matches(['[', ']']).to_string(),
            port.parse().unwrap_or(22),
        ),
        _ => (rest.trim_matches(['[', ']']).to_string(), 22),
    }
}

fn marker(machine_id: &str) -> String {
    format!("weft:{machine_id}")
}

fn name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Records `public` as the key of `host:port` for machine `machine_id` in weft's known_hosts,
/// replacing what was recorded for that machine before.
pub fn record(machine_id: &str, host: &str, port: u16, public: &str) -> Result<(), CloudError> {
    let marker = marker(machine_id);
    let line = format!("{} {} {marker}\n", name(host, port), public.trim());
    edit_known_hosts(|text| {
        let mut kept = without(text, &marker);
        kept.push_str(&line);
        kept
    })
}

/// Moves the key recorded for machine `machine_id` to its new address (a stopped EC2
/// instance gets a new public address when it starts again).
pub fn readdress(machine_id: &str, host: &str, port: u16) -> Result<(), CloudError> {
    let marker = marker(machine_id);
    edit_known_hosts(|text| {
        text.lines()
            .map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                if words.len() == 4 && words[3] == marker {
                    format!(
                        "{} {} {} {}\n",
                        name(host, port),
                        words[1],
                        words[2],
                        marker
                    )
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    })
}

/// Removes the lines recorded for machine `machine_id` (its address may go to another machine).
pub fn forget(machine_id: &str) -> Result<(), CloudError> {
    let marker = marker(machine_id);
    edit_known_hosts(|text| without(text, &marker))
}

/// The lines of `text` but those recorded for `marker`'s machine.
fn without(text: &str, marker: &str) -> String {
    text.lines()
        .filter(|l| l.split_whitespace().nth(3) != Some(marker))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Rewrites weft's known_hosts with `edit` under its lock, so parallel weft processes (creates
/// in several envs at once) never lose each other's lines, and readers see the whole old or
/// the whole new file (a rename). Local machines' keys go through the same function.
pub fn edit_known_hosts(edit: impl FnOnce(&str) -> String) -> Result<(), CloudError> {
    let path = known_hosts_file();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _lock = crate::lockfile::FileLock::beside(&path)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err.into()),
    };
    let edited = edit(&text);
    if edited != text {
        crate::lockfile::replace(&path, edited.as_bytes(), 0o600)?;
    }
    Ok(())
}

/// Captures the key a server presents and accepts only `expected`.
struct Probe {
    expected: PublicKey,
    seen: Arc<Mutex<Option<PublicKey>>>,
}

impl russh::client::Handler for Probe {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, russh::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(key.clone());
        Ok(key.key_data() == self.expected.key_data())
    }
}

/// What one look at the machine's SSH server found.
enum Answer {
    /// It presented the expected key.
    Expected,
    /// It presented another key.
    Other(String),
    /// Nothing answered yet (refused, timed out, closed before the key exchange).
    Silent,
}

async fn probe(host: &str, port: u16, expected: &PublicKey) -> Answer {
    let seen = Arc::new(Mutex::new(None));
    let config = Arc::new(russh::client::Config {
        preferred: russh::Preferred {
            key: std::borrow::Cow::Borrowed(&[russh::keys::Algorithm::Ed25519]),
            ..Default::default()
        },
        ..Default::default()
    });
    let handler = Probe {
        expected: expected.clone(),
        seen: seen.clone(),
    };
    let attempt = tokio::time::timeout(
        Duration::from_secs(10),
        russh::client::connect(config, (host, port), handler),
    )
    .await;
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match (attempt, seen) {
        (Ok(Ok(_)), _) => Answer::Expected,
        (_, Some(key)) if key.key_data() == expected.key_data() => Answer::Expected,
        (_, Some(key)) => Answer::Other(key.to_openssh().unwrap_or_default()),
        _ => Answer::Silent,
    }
}

/// Waits (backing off from 1 s to 15 s, at most `limit`) until `host:port` answers SSH with
/// `public`; a machine presenting another key is refused at once.
pub async fn wait_for(
    machine: &str,
    host: &str,
    port: u16,
    public: &str,
    limit: Duration,
) -> Result<(), CloudError> {
    let expected = PublicKey::from_openssh(public)
        .map_err(|e| CloudError::Io(format!("bad generated host key: {e}")))?;
    let start = Instant::now();
    let mut pause = Duration::from_secs(1);
    loop {
        match probe(host, port, &expected).await {
            Answer::Expected => return Ok(()),
            Answer::Other(key) => {
                return Err(CloudError::HostKey(format!(
                    "{machine} at {} answered with another host key than the one weft gave it \
                     ({key}); refusing to use it",
                    name(host, port)
                )))
            }
            Answer::Silent if start.elapsed() + pause > limit => {
                return Err(CloudError::Io(format!(
                    "{machine} at {} did not answer SSH within {} s",
                    name(host, port),
                    limit.as_secs()
                )))
            }
            Answer::Silent => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(15));
            }
        }
    }
}
