//! Opening one SSH connection: TCP (or a channel through jump hosts), host key check,
//! authentication, with a timeout and jittered retries for transient failures.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::PublicKeyOrCertificate;
use tokio::sync::Semaphore;

use super::algorithms::Algorithms;
use super::auth::Identities;
use super::error::{SshError, Step};
use super::known_hosts::{forget_command, host_key_name, KnownHosts, Verdict};
use super::quick_ack::QuickAck;
use super::ssh_config::SshConfig;
use super::target::Target;

/// What to do with a host whose key is not recorded anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse it.
    Strict,
    /// Record it and go on (trust on first use); a changed key is still refused.
    AcceptNew,
}

/// Everything shared by the connections of one run.
pub struct SshSettings {
    /// Recorded host keys; `accept-new` adds to them.
    pub known_hosts: Mutex<KnownHosts>,
    /// The key policy.
    pub policy: HostKeyPolicy,
    /// Loaded private keys.
    pub identities: Identities,
    /// `~/.ssh/config` or `-F`.
    pub ssh_config: SshConfig,
    /// The login user when neither the address nor the config names one.
    pub default_user: String,
    /// The limit for TCP connect plus handshake plus authentication, and for the start of the
    /// kept shell and of SFTP.
    pub connect_timeout: Duration,
    /// How many times a transient failure is retried.
    pub retries: u32,
    /// A cap on connections being opened at once, so a big fleet is no connection storm.
    pub opening: Semaphore,
    /// A cap on files being written at once across the run, each holding a read buffer and
    /// its connection's SFTP writes in flight.
    pub sending: Semaphore,
    /// SFTP writes each connection keeps in flight.
    pub sftp_writes: usize,
    /// Keepalive interval on open connections.
    pub keepalive: Duration,
    /// Open jump-host connections by chain (`a` then `a>b`): every target behind a bastion
    /// goes through one connection to it, so 32 parallel targets do not hit its MaxStartups.
    pub jumps: JumpPool,
    /// The shortest round trip seen, which the run's fan-out grows with.
    pub round_trip: Arc<crate::transport::round_trip::RoundTrip>,
}

/// The jump-host connections of a run, shared by every target behind them.
#[derive(Default)]
pub struct JumpPool(tokio::sync::Mutex<std::collections::HashMap<String, Arc<Handle<Client>>>>);

/// An open connection and the jump-host connections it runs through.
pub struct Connection {
    /// The connection to the host itself.
    pub handle: Handle<Client>,
    /// Jump hosts, kept open as long as a connection through them is.
    _jumps: Vec<Arc<Handle<Client>>>,
}

/// The russh handler: checks the host key against known_hosts.
pub struct Client {
    host: String,
    port: u16,
    settings: Arc<SshSettings>,
}

impl client::Handler for Client {
    type Error = SshError;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, SshError> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Err(SshError::Protocol(
                "the server presented a host certificate, which weft does not trust".into(),
            ));
        };
        let target = host_key_name(&self.host, self.port);
        let mut known = self
            .settings
            .known_hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match known.verify(&self.host, self.port, key) {
            Verdict::Known => Ok(true),
            Verdict::Changed { file, line } => Err(SshError::HostKeyChanged {
                forget: forget_command(&file, &self.host, self.port),
                target,
                file,
                line,
            }),
            Verdict::Revoked { file, line } => Err(SshError::HostKeyRevoked { target, file, line }),
            Verdict::Unknown if self.settings.policy == HostKeyPolicy::AcceptNew => {
                known
                    .learn(&self.host, self.port, key)
                    .map_err(|e| SshError::HostKeyRecord {
                        target,
                        message: e.to_string(),
                    })?;
                Ok(true)
            }
            Verdict::Unknown => Err(SshError::HostKeyUnknown {
                target,
                files: known
                    .files()
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

/// Where one hop goes, after applying the ssh config.
#[derive(Debug, Clone)]
struct Hop {
    host: String,
    port: u16,
    user: String,
    identity_files: Vec<PathBuf>,
    algorithms: Algorithms,
}

impl SshSettings {
    fn hop(&self, target: &Target) -> (Hop, Vec<String>) {
        let config = self.ssh_config.resolve(&target.host);
        let hop = Hop {
            host: config
                .hostname
                .clone()
                .unwrap_or_else(|| target.host.clone()),
            port: target.port.or(config.port).unwrap_or(22),
            user: target
                .user
                .clone()
                .or(config.user.clone())
                .unwrap_or_else(|| self.default_user.clone()),
            identity_files: config.identity_files.clone(),
            // Checked for every target and jump host before the run (`settings`).
            algorithms: Algorithms::for_host(&config).unwrap_or_else(|_| Algorithms::default()),
        };
        (hop, config.proxy_jump.unwrap_or_default())
    }

    fn client_config(&self, hop: &Hop) -> Arc<client::Config> {
        let known_algs = self
            .known_hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .algorithms_for(&hop.host, hop.port);
        let mut preferred = hop.algorithms.preferred();
        if !known_algs.is_empty() {
            // Ask for the key types already recorded first, as OpenSSH does, so a host with
            // several keys is not mistaken for a changed one.
            let mut keys: Vec<_> = known_algs.clone();
            keys.extend(
                preferred
                    .key
                    .iter()
                    .filter(|a| !known_algs.contains(a))
                    .cloned(),
            );
            preferred.key = Cow::Owned(keys);
        }
        Arc::new(client::Config {
            preferred,
            nodelay: true,
            keepalive_interval: Some(self.keepalive),
            keepalive_max: 3,
            inactivity_timeout: None,
            ..Default::default()
        })
    }
}

/// Opens a connection to `target`, through its jump hosts, retrying transient failures. Each
/// attempt has `connect_timeout` for all its steps (TCP, jump channels, handshakes, logins); a
/// step that gets no answer in time fails naming itself.
pub async fn connect(settings: &Arc<SshSettings>, target: &Target) -> Result<Connection, SshError> {
    let mut attempt = 0;
    loop {
        let result = {
            let _permit = settings.opening.acquire().await;
            let deadline = tokio::time::Instant::now() + settings.connect_timeout;
            connect_once(settings, target, deadline).await
        };
        match result {
            Err(err) if err.is_transient() && attempt < err.retries(settings.retries) => {
                attempt += 1;
                let base = 200u64 << attempt.min(5);
                let jitter = fastrand::u64(0..=base / 2);
                tokio::time::sleep(Duration::from_millis(base + jitter)).await;
            }
            other => return other,
        }
    }
}

/// `future`, or the error that `step` of `hop` got no answer by `deadline`.
async fn step<T>(
    settings: &SshSettings,
    hop: &str,
    step: Step,
    deadline: tokio::time::Instant,
    future: impl std::future::Future<Output = Result<T, SshError>>,
) -> Result<T, SshError> {
    match tokio::time::timeout_at(deadline, future).await {
        Ok(result) => result,
        Err(_) => Err(SshError::Stalled {
            target: hop.to_string(),
            step,
            seconds: settings.connect_timeout.as_secs(),
        }),
    }
}

async fn connect_once(
    settings: &Arc<SshSettings>,
    target: &Target,
    deadline: tokio::time::Instant,
) -> Result<Connection, SshError> {
    let (hop, jumps) = settings.hop(target);
    let mut jump_handles: Vec<Arc<Handle<Client>>> = Vec::new();
    let mut chain = String::new();
    for jump in &jumps {
        let jump_target = Target::parse(jump).map_err(SshError::Protocol)?;
        let (jump_hop, _) = settings.hop(&jump_target);
        if !chain.is_empty() {
            chain.push('>');
        }
        chain.push_str(&jump_hop.to_string());
        // Held while a jump connection opens, so targets starting together share the first
        // one instead of each opening their own.
        let mut pool = step(
            settings,
            &jump_hop.to_string(),
            Step::Tcp,
            deadline,
            async { Ok(settings.jumps.0.lock().await) },
        )
        .await?;
        let handle = match pool.get(&chain).filter(|h| !h.is_closed()) {
            Some(open) => open.clone(),
            None => {
                let opened = Arc::new(match jump_handles.last() {
                    None => open_tcp(settings, &jump_hop, deadline).await?,
                    Some(previous) => open_through(settings, previous, &jump_hop, deadline).await?,
                });
                pool.insert(chain.clone(), opened.clone());
                opened
            }
        };
        drop(pool);
        jump_handles.push(handle);
    }
    let handle = match jump_handles.last() {
        None => open_tcp(settings, &hop, deadline).await?,
        Some(previous) => open_through(settings, previous, &hop, deadline).await?,
    };
    Ok(Connection {
        handle,
        _jumps: jump_handles,
    })
}

fn handler(settings: &Arc<SshSettings>, hop: &Hop) -> Client {
    Client {
        host: hop.host.clone(),
        port: hop.port,
        settings: settings.clone(),
    }
}

/// A hop as people write it: `user@host:port` (no port when it is 22, brackets only around an
/// IPv6 address), the same in every message.
impl std::fmt::Display for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            22 => write!(f, "{}@{host}", self.user),
            port => write!(f, "{}@{host}:{port}", self.user),
        }
    }
}

async fn open_tcp(
    settings: &Arc<SshSettings>,
    hop: &Hop,
    deadline: tokio::time::Instant,
) -> Result<Handle<Client>, SshError> {
    let shown = hop.to_string();
    tracing::debug!(target: "weft::ssh", "connecting to {shown}");
    let started = std::time::Instant::now();
    let stream = step(settings, &shown, Step::Tcp, deadline, async {
        tokio::net::TcpStream::connect((hop.host.as_str(), hop.port))
            .await
            .map_err(|source| SshError::Connect {
                target: shown.clone(),
                source,
            })
    })
    .await?;
    settings.round_trip.note(started.elapsed());
    let _ = stream.set_nodelay(true);
    handshake_and_login(settings, hop, QuickAck(stream), deadline).await
}

async fn open_through(
    settings: &Arc<SshSettings>,
    via: &Handle<Client>,
    hop: &Hop,
    deadline: tokio::time::Instant,
) -> Result<Handle<Client>, SshError> {
    let shown = hop.to_string();
    let started = std::time::Instant::now();
    let channel = step(settings, &shown, Step::Jump, deadline, async {
        via.channel_open_direct_tcpip(hop.host.clone(), u32::from(hop.port), "127.0.0.1", 0)
            .await
            .map_err(|e| SshError::Connect {
                target: shown.clone(),
                source: std::io::Error::other(format!("through the jump host: {e}")),
            })
    })
    .await?;
    settings.round_trip.note(started.elapsed());
    handshake_and_login(settings, hop, channel.into_stream(), deadline).await
}

/// The SSH handshake over `stream`, then the login, each named when it stalls.
async fn handshake_and_login(
    settings: &Arc<SshSettings>,
    hop: &Hop,
    stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    deadline: tokio::time::Instant,
) -> Result<Handle<Client>, SshError> {
    let shown = hop.to_string();
    let mut handle = step(settings, &shown, Step::Handshake, deadline, async {
        client::connect_stream(settings.client_config(hop), stream, handler(settings, hop)).await
    })
    .await?;
    step(settings, &shown, Step::Login, deadline, async {
        settings
            .identities
            .authenticate(&mut handle, &hop.user, &hop.identity_files, &shown)
            .await
    })
    .await?;
    Ok(handle)
}
