//! Identities: private keys loaded once per run, and the ssh-agent when `SSH_AUTH_SOCK` is
//! set. The agent is tried first; an encrypted key file is unlocked only when a login gets to
//! it and the agent does not hold it, by asking for its passphrase on the terminal once per
//! run. Without a terminal such a key is skipped with a note (issue 18 item 4).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::client::Handle;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};

use super::error::SshError;

/// The environment variable holding the passphrase of encrypted identity files.
pub const PASSPHRASE_ENV: &str = "WEFT_SSH_PASSPHRASE";

/// An identity file as loaded: ready, or encrypted and waiting until a login needs it.
#[derive(Debug)]
enum Slot {
    Ready(Arc<PrivateKey>),
    Locked {
        /// Its public key (kept in clear in OpenSSH key files, else read from `.pub`), to
        /// tell whether the agent already holds it.
        public: Option<PublicKey>,
        state: Mutex<Unlock>,
    },
}

/// How far unlocking an encrypted key got.
#[derive(Debug)]
enum Unlock {
    Untried,
    Unlocked(Arc<PrivateKey>),
    /// Not usable in this run: the note says why.
    Skipped(String),
}

/// The keys a run may offer, by path.
#[derive(Debug, Default)]
pub struct Identities {
    keys: HashMap<PathBuf, Slot>,
    order: Vec<PathBuf>,
    /// The passphrase last typed, tried first on the next encrypted key (many people use one).
    typed: Mutex<Option<String>>,
}

/// The identity files OpenSSH tries when none is configured.
pub fn default_identity_files() -> Vec<PathBuf> {
    let Some(home) = std::env::var_os("HOME") else {
        return Vec::new();
    };
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|name| Path::new(&home).join(".ssh").join(name))
        .collect()
}

/// The public key of the encrypted key file `path`, when it can be read without the passphrase.
fn public_of_encrypted(path: &Path) -> Option<PublicKey> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| PrivateKey::from_openssh(text).ok())
        .map(|key| key.public_key().clone())
        .or_else(|| {
            let mut public = path.as_os_str().to_owned();
            public.push(".pub");
            russh::keys::load_public_key(PathBuf::from(public)).ok()
        })
}

impl Identities {
    /// Loads `explicit` files (an error when missing) and `optional` ones (skipped when missing).
    /// With `WEFT_SSH_PASSPHRASE` set, encrypted keys are unlocked at once (a wrong passphrase
    /// is an error); without it they wait until a login needs them.
    pub fn load(explicit: &[PathBuf], optional: &[PathBuf]) -> Result<Self, SshError> {
        let mut identities = Identities::default();
        let passphrase: Option<String> = std::env::var(PASSPHRASE_ENV).ok();
        if let Some(passphrase) = &passphrase {
            crate::logging::hide(passphrase);
        }
        let candidates = explicit
            .iter()
            .map(|p| (p, true))
            .chain(optional.iter().map(|p| (p, false)));
        for (path, required) in candidates {
            if identities.keys.contains_key(path) {
                continue;
            }
            if !path.exists() {
                if required {
                    return Err(SshError::Key {
                        path: path.clone(),
                        message: "no such file".into(),
                    });
                }
                continue;
            }
            let slot = match russh::keys::load_secret_key(path, passphrase.as_deref()) {
                Ok(key) => Slot::Ready(Arc::new(key)),
                Err(russh::keys::Error::KeyIsEncrypted) if passphrase.is_none() => Slot::Locked {
                    public: public_of_encrypted(path),
                    state: Mutex::new(Unlock::Untried),
                },
                Err(err) => {
                    return Err(SshError::Key {
                        path: path.clone(),
                        message: err.to_string(),
                    })
                }
            };
            identities.order.push(path.clone());
            identities.keys.insert(path.clone(), slot);
        }
        Ok(identities)
    }

    /// The key at `path` ready to offer: unlocked now if it is encrypted (asking for its
    /// passphrase once per run), or the note saying why it is skipped.
    fn unlock(&self, path: &Path) -> Result<Arc<PrivateKey>, String> {
        let state = match self.keys.get(path) {
            Some(Slot::Ready(key)) => return Ok(key.clone()),
            Some(Slot::Locked { state, .. }) => state,
            None => return Err("not loaded".into()),
        };
        // Held while asking, so parallel logins ask once and then share the answer.
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        match &*state {
            Unlock::Unlocked(key) => return Ok(key.clone()),
            Unlock::Skipped(note) => return Err(note.clone()),
            Unlock::Untried => {}
        }
        let result = self.ask_passphrase(path);
        *state = match &result {
            Ok(key) => Unlock::Unlocked(key.clone()),
            Err(note) => {
                crate::logging::note(&format!(
                    "weft: note: skipping identity {}: {note}",
                    path.display()
                ));
                Unlock::Skipped(note.clone())
            }
        };
        result
    }

    fn ask_passphrase(&self, path: &Path) -> Result<Arc<PrivateKey>, String> {
        let mut typed = self.typed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(earlier) = typed.as_deref() {
            if let Ok(key) = russh::keys::load_secret_key(path, Some(earlier)) {
                return Ok(Arc::new(key));
            }
        }
        if !std::io::stdin().is_terminal() {
            return Err(format!(
                "it is encrypted, ssh-agent does not hold it, and there is no terminal to ask for its passphrase (ssh-add it, or set {PASSPHRASE_ENV})"
            ));
        }
        let entered = rpassword::prompt_password(format!("passphrase for {}: ", path.display()))
            .map_err(|e| format!("cannot read its passphrase: {e}"))?;
        crate::logging::hide(&entered);
        let key = russh::keys::load_secret_key(path, Some(&entered))
            .map_err(|e| format!("it does not open with that passphrase: {e}"))?;
        *typed = Some(entered);
        Ok(Arc::new(key))
    }

    /// Authenticates `user` on `handle`: the agent's keys first, then `preferred` files, then
    /// every other loaded key; an encrypted file the agent holds is not offered again. Any
    /// russh handler will do (the connection's checks the host key): authenticating does not
    /// depend on it.
    pub async fn authenticate<H: russh::client::Handler>(
        &self,
        handle: &mut Handle<H>,
        user: &str,
        preferred: &[PathBuf],
        target: &str,
    ) -> Result<(), SshError> {
        let mut tried = Vec::new();
        let mut in_agent: Vec<PublicKey> = Vec::new();
        if std::env::var_os("SSH_AUTH_SOCK").is_some() {
            if let Ok(mut agent) = AgentClient::connect_env().await {
                let ids = agent.request_identities().await.unwrap_or_default();
                for id in ids {
                    let russh::keys::agent::AgentIdentity::PublicKey { key, comment } = id else {
                        continue;
                    };
                    in_agent.push(key.clone());
                    tracing::debug!(target: "weft::ssh", "{target}: offering agent key {comment}");
                    let hash = handle.best_supported_rsa_hash().await?.flatten();
                    let result = handle
                        .authenticate_publickey_with(user, key, hash, &mut agent)
                        .await;
                    tried.push(format!("agent:{comment}"));
                    if matches!(result, Ok(ref r) if r.success()) {
                        tracing::debug!(target: "weft::ssh", "{target}: accepted agent key {comment}");
                        return Ok(());
                    }
                }
            }
        }
        let ordered = preferred
            .iter()
            .filter(|p| self.keys.contains_key(*p))
            .chain(self.order.iter().filter(|p| !preferred.contains(p)));
        for path in ordered {
            if let Some(Slot::Locked {
                public: Some(public),
                ..
            }) = self.keys.get(path)
            {
                if in_agent.iter().any(|k| k.key_data() == public.key_data()) {
                    continue;
                }
            }
            let key = match self.unlock(path) {
                Ok(key) => key,
                Err(_) => {
                    tried.push(format!("{} (encrypted, skipped)", path.display()));
                    continue;
                }
            };
            tracing::debug!(target: "weft::ssh", "{target}: offering key {}", path.display());
            let hash = handle.best_supported_rsa_hash().await?.flatten();
            let result = handle
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash))
                .await?;
            tried.push(path.display().to_string());
            if result.success() {
                tracing::debug!(target: "weft::ssh", "{target}: accepted key {}", path.display());
                return Ok(());
            }
            tracing::debug!(target: "weft::ssh", "{target}: refused key {}", path.display());
        }
        Err(SshError::Auth {
            target: target.to_string(),
            user: user.to_string(),
            tried: if tried.is_empty() {
                "no keys: pass -i KEY or start ssh-agent".into()
            } else {
                tried.join(", ")
            },
        })
    }
}
