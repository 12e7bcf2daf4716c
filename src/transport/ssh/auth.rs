//! Identities: private keys loaded once per run (asking for a passphrase at most once), and
//! the ssh-agent when `SSH_AUTH_SOCK` is set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::client::Handle;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};

use super::connection::Client;
use super::error::SshError;

/// The environment variable holding the passphrase of encrypted identity files.
pub const PASSPHRASE_ENV: &str = "WEFT_SSH_PASSPHRASE";

/// The keys a run may offer, by path.
#[derive(Debug, Default)]
pub struct Identities {
    keys: HashMap<PathBuf, Arc<PrivateKey>>,
    order: Vec<PathBuf>,
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

impl Identities {
    /// Loads `explicit` files (an error when missing) and `optional` ones (skipped when missing).
    pub fn load(explicit: &[PathBuf], optional: &[PathBuf]) -> Result<Self, SshError> {
        let mut identities = Identities::default();
        let mut passphrase: Option<String> = std::env::var(PASSPHRASE_ENV).ok();
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
            let key = match russh::keys::load_secret_key(path, passphrase.as_deref()) {
                Ok(key) => key,
                Err(russh::keys::Error::KeyIsEncrypted) if passphrase.is_none() => {
                    let prompt = format!("passphrase for {}: ", path.display());
                    let entered = rpassword::prompt_password(prompt).map_err(|e| SshError::Key {
                        path: path.clone(),
                        message: format!("the key is encrypted and no passphrase was given ({e}); set {PASSPHRASE_ENV}"),
                    })?;
                    let key = russh::keys::load_secret_key(path, Some(&entered)).map_err(|e| {
                        SshError::Key {
                            path: path.clone(),
                            message: e.to_string(),
                        }
                    })?;
                    passphrase = Some(entered);
                    key
                }
                Err(err) => {
                    return Err(SshError::Key {
                        path: path.clone(),
                        message: err.to_string(),
                    })
                }
            };
            identities.order.push(path.clone());
            identities.keys.insert(path.clone(), Arc::new(key));
        }
        Ok(identities)
    }

    /// Authenticates `user` on `handle`: the agent's keys first, then `preferred` files, then
    /// every other loaded key.
    pub async fn authenticate(
        &self,
        handle: &mut Handle<Client>,
        user: &str,
        preferred: &[PathBuf],
        target: &str,
    ) -> Result<(), SshError> {
        let mut tried = Vec::new();
        if std::env::var_os("SSH_AUTH_SOCK").is_some() {
            if let Ok(mut agent) = AgentClient::connect_env().await {
                let ids = agent.request_identities().await.unwrap_or_default();
                for id in ids {
                    let russh::keys::agent::AgentIdentity::PublicKey { key, comment } = id else {
                        continue;
                    };
                    let hash = handle.best_supported_rsa_hash().await?.flatten();
                    let result = handle
                        .authenticate_publickey_with(user, key, hash, &mut agent)
                        .await;
                    tried.push(format!("agent:{comment}"));
                    if matches!(result, Ok(ref r) if r.success()) {
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
            let Some(key) = self.keys.get(path) else {
                continue;
            };
            let hash = handle.best_supported_rsa_hash().await?.flatten();
            let result = handle
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key.clone(), hash))
                .await?;
            tried.push(path.display().to_string());
            if result.success() {
                return Ok(());
            }
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
