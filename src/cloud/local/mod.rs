//! The `local` provider: machines on this Linux host. Each machine boots a Debian 12 image
//! (built once with debootstrap, see `image`) under `systemd-nspawn --boot`, with systemd as
//! PID 1, its own writable layer over the image (kept in a folder under weft's data folder),
//! its own hostname and a network namespace with an address on the `weft0` bridge, filtered
//! so it reaches only its env (`isolation`). Its layer lives on a disk of its own size
//! (`disk`). sshd is an enabled unit of the image. Machines outlive the weft process that
//! started them.

mod disk;
pub mod image;
mod isolation;
mod network;
mod vip;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    data_dir, machine_key, tags, CloudError, Machine, MachineSpec, Provider, Scope, VirtualIp,
};

/// What a machine's folder remembers about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    id: String,
    name: String,
    role: String,
    ordinal: u32,
    namespace: String,
    env: String,
    ip: Ipv4Addr,
    image: Option<String>,
    /// The packages its image starts with (`image::name_for`); none for the base image.
    #[serde(default)]
    packages: Vec<String>,
    pid: Option<u32>,
    tags: BTreeMap<String, String>,
    /// The size of its disk in bytes; none for a machine made before weft gave machines a
    /// disk of their own (its layer is the folder `upper`, without a limit).
    #[serde(default)]
    disk: Option<u64>,
    /// When it was made (seconds since the Unix epoch); none for a machine made before weft
    /// recorded it (its folder's time stands in).
    #[serde(default)]
    created: Option<u64>,
}

/// Sandbox machines under `<data>/machines`, images under `<data>/images`.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    machines: PathBuf,
    images: PathBuf,
}

/// weft's drop-in for the image's sshd: the machine's own host key, keys only, and room for
/// weft's parallel sessions.
const SSHD_CONFIG: &str = "HostKey /etc/weft/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
MaxSessions 32
MaxStartups 100:30:200
";

/// journald keeps a machine's log in memory, within a bound: an idle machine writes nothing
/// to its disk, and services' own logs (nginx, gunicorn) are files that outlive reboots.
const JOURNALD_CONFIG: &str = "[Journal]\nStorage=volatile\nRuntimeMaxUse=8M\n";

/// What an idle machine does not need: the console is read-only, so no getty can log in on
/// it, and a persistent journal costs memory and disk writes. Masks and drop-ins live in the
/// machine's own layer, so the shared image stays as Debian made it.
fn trim_idle(upper: &Path) -> Result<(), CloudError> {
    let units = upper.join("etc/systemd/system");
    std::fs::create_dir_all(&units)?;
    for unit in ["console-getty.service", "getty@.service"] {
        let link = units.join(unit);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link)?;
    }
    let journald = upper.join("etc/systemd/journald.conf.d");
    std::fs::create_dir_all(&journald)?;
    std::fs::write(journald.join("weft.conf"), JOURNALD_CONFIG)?;
    Ok(())
}

/// Gives what weft wrote into a machine's own layer the modes the machine expects, whatever
/// the umask of the process that made it: a folder of the overlay's upper layer hides the mode
/// of the same folder below (the layer itself is `/`), so an `etc` made under umask 077 would
/// lock every user but root out of `/etc`.
fn settle_modes(upper: &Path) -> Result<(), CloudError> {
    use std::os::unix::fs::PermissionsExt;
    let private = upper.join("root");
    for entry in walkdir::WalkDir::new(upper) {
        let entry = entry.map_err(|e| CloudError::Io(e.to_string()))?;
        let path = entry.path();
        let mode = match entry.file_type() {
            t if t.is_symlink() => continue,
            t if t.is_dir() && path.starts_with(&private) => 0o700,
            t if t.is_dir() => 0o755,
            // root's files, and private host keys (`*_key`; `*_key.pub` stays readable).
            _ if path.starts_with(&private) || path.to_string_lossy().ends_with("_key") => 0o600,
            _ => 0o644,
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// How long a machine gets to power off before it is killed.
const POWEROFF_WAIT: Duration = Duration::from_secs(20);
/// How long a booting machine gets to answer SSH.
const SSH_WAIT: Duration = Duration::from_secs(60);

/// Machine ids and folders: the root namespace `/` is `root`.
fn slug(text: &str) -> String {
    let s = crate::cloud::file_safe(text);
    let s = s.trim_matches('_').to_string();
    if s.is_empty() {
        "root".into()
    } else {
        s
    }
}

fn short_hash(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Network names are global to the host, so they come from the machine's folder, which is
/// unique even across users and data folders. A veth name has at most 15 characters.
fn netns_name(dir: &Path) -> String {
    format!("weft-{}", short_hash(&dir.display().to_string()))
}

fn veth_name(dir: &Path) -> String {
    format!("wv{}", short_hash(&dir.display().to_string()))
}

fn pid_alive(pid: u32, marker: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmd| String::from_utf8_lossy(&cmd).contains(marker))
        .unwrap_or(false)
}

impl LocalProvider {
    /// The provider over weft's data folder; needs root on Linux.
    pub fn new() -> Result<Self, CloudError> {
        if !cfg!(target_os = "linux") {
            return Err(CloudError::Unsupported(
                "the local provider needs Linux namespaces: it runs on Linux only".into(),
            ));
        }
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
            });
        if uid.as_deref() != Some("0") {
            return Err(CloudError::Unsupported(
                "the local provider makes namespaces, mounts and network devices: run weft as root"
                    .into(),
            ));
        }
        image::require_tools()?;
        let base = data_dir();
        Ok(LocalProvider {
            machines: base.join("machines"),
            images: base.join("images"),
        })
    }

    /// What names an env among every weft's on this host: the data folder, namespace and env,
    /// as written (so it follows when the namespace names more, a project say). Not slugged as
    /// machine folders are: `/a.b/` and `/a_b/` are two envs, and must not share a network
    /// number or a VIP.
    fn env_key(&self, scope: &Scope) -> String {
        format!(
            "{}\t{}\t{}",
            self.machines.display(),
            scope.namespace,
            scope.env
        )
    }

    /// Who holds the env's virtual IP in the host-wide reservations.
    fn vip_owner(&self, scope: &Scope) -> String {
        format!("vip:{}", self.env_key(scope))
    }

    /// The env's number in the network filter (see `isolation`).
    fn env_number(&self, scope: &Scope) -> Result<u32, CloudError> {
        isolation::env_number(&format!("env:{}", self.env_key(scope)))
    }

    /// The machine's scope, from its record.
    fn scope_of(meta: &Meta) -> Scope {
        Scope {
            namespace: meta.namespace.clone(),
            env: meta.env.clone(),
        }
    }

    /// The machine's writable layer: on its own disk, or the folder of an older machine.
    fn upper(&self, meta: &Meta) -> PathBuf {
        let dir = self.dir(&meta.id);
        if meta.disk.is_some() {
            disk::upper(&dir)
        } else {
            dir.join("upper")
        }
    }

    /// Mounts the machine's disk, when it has one.
    async fn mount_disk(&self, meta: &Meta) -> Result<(), CloudError> {
        if meta.disk.is_some() {
            disk::mount(&self.dir(&meta.id)).await?;
        }
        Ok(())
    }

    /// The machine's veth as the network filter lists it.
    fn port<'a>(&self, meta: &Meta, veth: &'a str) -> Result<isolation::Port<'a>, CloudError> {
        Ok(isolation::Port {
            veth,
            ip: meta.ip,
            env: self.env_number(&Self::scope_of(meta))?,
        })
    }

    /// Gives back the env's VIP and number once its last machine is gone.
    async fn release_env(&self, scope: &Scope) {
        let owner = self.vip_owner(scope);
        // Looked up, never reserved: an env without a number has nothing to release.
        let number = isolation::held_number(&format!("env:{}", self.env_key(scope)));
        if let Some(vip) = vip::held(&owner) {
            if let Some(env) = number {
                isolation::deny_vip(env, vip).await;
            }
            network::forget_neighbour(vip).await;
        }
        vip::release(&owner);
        isolation::release_env(&format!("env:{}", self.env_key(scope)));
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.machines.join(id)
    }

    fn load(&self, dir: &Path) -> Option<Meta> {
        let text = std::fs::read_to_string(dir.join("meta.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn save(&self, meta: &Meta) -> Result<(), CloudError> {
        let text = serde_json::to_string_pretty(meta).map_err(|e| CloudError::Io(e.to_string()))?;
        // Whole or not at all: another weft listing machines meanwhile never reads half a file.
        crate::lockfile::replace(
            &self.dir(&meta.id).join("meta.json"),
            text.as_bytes(),
            0o644,
        )?;
        Ok(())
    }

    /// Every machine of this data folder, by namespace, env, role and ordinal.
    fn every(&self) -> Vec<Meta> {
        let Ok(entries) = std::fs::read_dir(&self.machines) else {
            return Vec::new();
        };
        let mut found: Vec<Meta> = entries
            .filter_map(Result::ok)
            .filter_map(|e| self.load(&e.path()))
            .collect();
        found.sort_by(|a, b| {
            (&a.namespace, &a.env, &a.role, a.ordinal).cmp(&(
                &b.namespace,
                &b.env,
                &b.role,
                b.ordinal,
            ))
        });
        found
    }

    fn all(&self, scope: &Scope) -> Vec<Meta> {
        self.every()
            .into_iter()
            .filter(|m| m.namespace == scope.namespace && m.env == scope.env)
            .collect()
    }

    fn find(&self, scope: &Scope, id: &str) -> Result<Meta, CloudError> {
        self.all(scope)
            .into_iter()
            .find(|m| m.id == id || m.name == id)
            .ok_or_else(|| {
                CloudError::NotFound(format!("no machine `{id}` in env `{}`", scope.env))
            })
    }

    fn running(&self, meta: &Meta) -> bool {
        let marker = self.upper(meta).display().to_string();
        meta.pid.is_some_and(|pid| pid_alive(pid, &marker))
    }

    fn machine(&self, meta: &Meta) -> Machine {
        Machine {
            id: meta.id.clone(),
            name: meta.name.clone(),
            role: meta.role.clone(),
            ordinal: meta.ordinal,
            state: if self.running(meta) {
                "running"
            } else {
                "stopped"
            }
            .into(),
            address: Some(format!("root@{}:22", meta.ip)),
            image: meta.image.clone(),
            tags: meta.tags.clone(),
            created: meta.created.or_else(|| {
                let made = std::fs::metadata(self.dir(&meta.id)).ok()?;
                let time = made.created().or_else(|_| made.modified()).ok()?;
                Some(time.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs())
            }),
        }
    }

    /// Writes the machine's own files into its disk: sshd config, host key, keys, hostname.
    fn prepare_disk(&self, meta: &Meta, keys: &[String]) -> Result<(), CloudError> {
        let upper = self.upper(meta);
        let etc_weft = upper.join("etc/weft");
        std::fs::create_dir_all(&etc_weft)?;
        let drop_in = upper.join("etc/ssh/sshd_config.d");
        std::fs::create_dir_all(&drop_in)?;
        std::fs::write(drop_in.join("weft.conf"), SSHD_CONFIG)?;
        let host_key = etc_weft.join("ssh_host_ed25519_key");
        let _ = std::fs::remove_file(&host_key);
        let _ = std::fs::remove_file(host_key.with_extension("pub"));
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C"])
            .arg(&meta.name)
            .arg("-f")
            .arg(&host_key)
            .status()?;
        if !status.success() {
            return Err(CloudError::Io(
                "ssh-keygen failed to make a host key".into(),
            ));
        }
        // root's own file, so `weft keys sync` and `authorized_keys` manage these keys too.
        let ssh_dir = upper.join("root/.ssh");
        std::fs::create_dir_all(&ssh_dir)?;
        std::fs::write(ssh_dir.join("authorized_keys"), keys.join("\n") + "\n")?;
        std::fs::write(upper.join("etc/hostname"), format!("{}\n", meta.name))?;
        trim_idle(&upper)?;
        std::fs::write(
            upper.join("etc/hosts"),
            format!(
                "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n{} {}\n",
                meta.ip, meta.name
            ),
        )?;
        settle_modes(&upper)?;
        // Record the host key so weft's strict checking knows the machine: in place of what
        // the address had, in one edit under the file's lock (parallel creates each add theirs).
        let public = std::fs::read_to_string(host_key.with_extension("pub"))?;
        let mut fields = public.split_whitespace();
        let line = format!(
            "{} {} {}\n",
            meta.ip,
            fields.next().unwrap_or(""),
            fields.next().unwrap_or("")
        );
        crate::cloud::hostkey::edit_known_hosts(|text| {
            let mut kept = without_host(text, meta.ip);
            kept.push_str(&line);
            kept
        })
    }

    async fn boot(&self, meta: &mut Meta) -> Result<(), CloudError> {
        if self.running(meta) {
            return Ok(());
        }
        let base = image::ensure(&meta.packages).await?;
        let dir = self.dir(&meta.id);
        self.mount_disk(meta).await?;
        let upper = self.upper(meta);
        std::fs::create_dir_all(&upper)?;
        meta.ip = network::reserve(&dir, Some(meta.ip))?;
        network::ensure_bridge().await?;
        network::ensure_nat().await?;
        let netns = netns_name(&dir);
        let veth = veth_name(&dir);
        network::create_namespace(&netns, &veth, meta.ip).await?;
        // Listed before anything runs in the machine: from its first frame it reaches only
        // its env, from its own addresses.
        isolation::admit(&self.port(meta, &veth)?).await?;
        let scope = Self::scope_of(meta);
        if let Some(vip) = vip::held(&self.vip_owner(&scope)) {
            isolation::allow_vip(self.env_number(&scope)?, vip).await?;
        }
        let log_path = dir.join("console.log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = std::process::Command::new("systemd-nspawn");
        command
            .args(["--boot", "--quiet", "--console=read-only", "--register=no"])
            // weft is not a systemd unit on every host (CI containers, Firecracker VMs): the
            // machine stays in weft's cgroup rather than asking a host systemd for a scope.
            .arg("--keep-unit")
            .arg("--private-users=no")
            .arg(format!("--machine={}", netns_name(&dir)))
            .arg(format!("--hostname={}", meta.name))
            .arg("--directory")
            .arg(&base)
            // The image stays read-only and shared; every write lands in the machine's layer.
            .arg(format!("--overlay=+/:{}:/", upper.display()))
            .arg(format!("--network-namespace-path=/run/netns/{netns}"))
            // What `--private-network` would grant: the machine manages its own namespace's
            // network, as a real machine does. keepalived needs it to add and remove a virtual
            // IP, and CAP_NET_RAW (nspawn's default) for VRRP and gratuitous ARP; what a
            // machine may send is enforced on the host, by `isolation`'s filter on its veth.
            .arg("--capability=CAP_NET_ADMIN")
            .arg("--resolv-conf=copy-host")
            .arg("--timezone=off")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own process group: the machine keeps running after weft exits.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .map_err(|e| CloudError::Unsupported(format!("cannot start systemd-nspawn: {e}")))?;
        meta.pid = Some(child.id());
        self.save(meta)?;
        wait_for_ssh(meta.ip, &log_path).await
    }

    /// Takes the first ordinal from `spec.ordinal` on that no machine of the role holds, with
    /// its folder, record and address, under the lock of the machines folder: parallel
    /// creates in one env (two `weft cloud create web`) each get a machine of their own. A
    /// folder without a record is what a create killed before this lock existed left: reused.
    /// One whose record does not read is kept, and its ordinal skipped.
    fn claim(&self, scope: &Scope, spec: &MachineSpec) -> Result<Meta, CloudError> {
        std::fs::create_dir_all(&self.machines)?;
        let _lock = crate::lockfile::FileLock::take(&self.machines.join(".lock"))?;
        let mut ordinal = spec.ordinal;
        // An adopted machine keeps the id it was made with: its name is taken too.
        let taken: Vec<String> = self.all(scope).into_iter().map(|m| m.name).collect();
        let (id, name, dir) = loop {
            let name = format!("{}-{ordinal}", spec.role);
            let id = format!("{}.{}.{name}", slug(&scope.namespace), slug(&scope.env));
            let dir = self.dir(&id);
            if !taken.contains(&name) && !dir.join("meta.json").exists() {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)?;
                }
                break (id, name, dir);
            }
            ordinal += 1;
        };
        std::fs::create_dir_all(&dir)?;
        let owner = dir.display().to_string();
        let ip = match network::reserve(&dir, None) {
            Ok(ip) => ip,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(err);
            }
        };
        let mut tags = BTreeMap::new();
        tags.insert(tags::NAMESPACE.to_string(), scope.namespace.clone());
        tags.insert(tags::ENV.to_string(), scope.env.clone());
        tags.insert(tags::ROLE.to_string(), spec.role.clone());
        tags.insert(tags::ORDINAL.to_string(), ordinal.to_string());
        tags.insert(tags::CREATED_BY.to_string(), "weft".into());
        tags.extend(spec.tags.clone());
        let meta = Meta {
            id,
            name,
            role: spec.role.clone(),
            ordinal,
            namespace: scope.namespace.clone(),
            env: scope.env.clone(),
            ip,
            image: spec.image.clone(),
            packages: spec.packages.clone(),
            pid: None,
            tags,
            disk: Some(spec.disk.unwrap_or(disk::DEFAULT_SIZE)),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs()),
        };
        if let Err(err) = self.save(&meta) {
            network::release(ip, &owner);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(err);
        }
        Ok(meta)
    }

    /// Fills the claimed machine's disk and boots it.
    async fn make(
        &self,
        scope: &Scope,
        spec: &MachineSpec,
        meta: &mut Meta,
        source: Option<&Path>,
    ) -> Result<(), CloudError> {
        // The record is saved before its disk is made: a create that fails from here on is
        // discarded with its disk unmounted.
        disk::make(&self.dir(&meta.id), meta.disk.unwrap_or(disk::DEFAULT_SIZE)).await?;
        if let Some(source) = source {
            network::run(
                "cp",
                &[
                    "-a",
                    &format!("{}/.", source.display()),
                    &self.upper(meta).display().to_string(),
                ],
            )
            .await?;
        }
        let (_, weft_key) = machine_key()?;
        let mut keys = vec![weft_key];
        keys.extend(spec.keys.iter().cloned());
        keys.extend(self.registered_keys(scope));
        self.prepare_disk(meta, &keys)?;
        self.boot(meta).await
    }

    /// Undoes a failed create: stops what runs, gives the address back, forgets the host key
    /// and removes the folder.
    async fn discard(&self, meta: &mut Meta) {
        let dir = self.dir(&meta.id);
        let _ = self.halt(meta).await;
        // The key goes before the address: once released, the address may be another
        // machine's, whose key this must not remove.
        let _ = forget_host(meta.ip);
        network::release(meta.ip, &dir.display().to_string());
        let _ = std::fs::remove_dir_all(&dir);
    }

    async fn halt(&self, meta: &mut Meta) -> Result<(), CloudError> {
        if let Some(pid) = meta.pid.filter(|_| self.running(meta)) {
            // SIGTERM makes systemd-nspawn ask the machine's systemd to power off: services
            // stop in order and disks are synced, as on a real machine.
            let _ = network::run("kill", &["-TERM", &pid.to_string()]).await;
            let deadline = std::time::Instant::now() + POWEROFF_WAIT;
            while self.running(meta) && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if self.running(meta) {
                let _ = network::run("kill", &["-KILL", &pid.to_string()]).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let dir = self.dir(&meta.id);
        let veth = veth_name(&dir);
        network::delete_namespace(&netns_name(&dir), &veth).await;
        if let Ok(port) = self.port(meta, &veth) {
            isolation::forget(&port).await;
        }
        if meta.disk.is_some() {
            disk::unmount(&dir).await;
        }
        meta.pid = None;
        self.save(meta)
    }
}

/// Removes the recorded host key of `ip` (the address may go to another machine later).
fn forget_host(ip: Ipv4Addr) -> Result<(), CloudError> {
    crate::cloud::hostkey::edit_known_hosts(|text| without_host(text, ip))
}

/// The lines of a known_hosts text but those of `ip`.
fn without_host(text: &str, ip: Ipv4Addr) -> String {
    let prefix = format!("{ip} ");
    text.lines()
        .filter(|l| !l.starts_with(&prefix))
        .map(|l| format!("{l}\n"))
        .collect()
}

async fn wait_for_ssh(ip: Ipv4Addr, log: &Path) -> Result<(), CloudError> {
    let deadline = std::time::Instant::now() + SSH_WAIT;
    while std::time::Instant::now() < deadline {
        let connect = tokio::net::TcpStream::connect((ip, 22));
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let console = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = console.lines().collect();
    let tail = lines[lines.len().saturating_sub(25)..].join("\n");
    Err(CloudError::Io(format!(
        "the machine at {ip} did not answer SSH within {}s; last lines of its boot log ({}):\n{tail}",
        SSH_WAIT.as_secs(),
        log.display()
    )))
}

#[async_trait]
impl Provider for LocalProvider {
    async fn create(&self, scope: &Scope, spec: &MachineSpec) -> Result<Machine, CloudError> {
        // The image first: a failed package install leaves no half-made machine behind.
        image::ensure(&spec.packages).await?;
        let source = match &spec.image {
            Some(image) => {
                let source = self.images.join(slug(image)).join("upper");
                if !source.is_dir() {
                    return Err(CloudError::NotFound(format!("no local image `{image}`")));
                }
                Some(source)
            }
            None => None,
        };
        let mut meta = self.claim(scope, spec)?;
        let made = self.make(scope, spec, &mut meta, source.as_deref()).await;
        if let Err(err) = made {
            // Nothing of a failed create stays: its process, network, address, host key
            // and folder all go, so a retry starts clean and nothing leaks.
            self.discard(&mut meta).await;
            return Err(err);
        }
        Ok(self.machine(&meta))
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<Machine>, CloudError> {
        Ok(self.all(scope).iter().map(|m| self.machine(m)).collect())
    }

    async fn start(&self, scope: &Scope, id: &str) -> Result<(), CloudError> {
        let mut meta = self.find(scope, id)?;
        self.boot(&mut meta).await
    }

    async fn stop(&self, scope: &Scope, id: &str) -> Result<(), CloudError> {
        let mut meta = self.find(scope, id)?;
        self.halt(&mut meta).await
    }

    async fn terminate(&self, scope: &Scope, id: &str) -> Result<(), CloudError> {
        let mut meta = self.find(scope, id)?;
        self.halt(&mut meta).await?;
        let dir = self.dir(&meta.id);
        // The key goes while the address is still this machine's (see `discard`).
        forget_host(meta.ip)?;
        std::fs::remove_dir_all(&dir)?;
        network::release(meta.ip, &dir.display().to_string());
        // The env's VIP and number live as long as its machines.
        if self.all(scope).is_empty() {
            self.release_env(scope).await;
        }
        Ok(())
    }

    async fn list_all(&self) -> Result<Vec<Machine>, CloudError> {
        Ok(self.every().iter().map(|m| self.machine(m)).collect())
    }

    async fn adopt(
        &self,
        from: &Scope,
        to: &Scope,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<Machine>, CloudError> {
        // Under the lock creates take: no machine joins either env while they move.
        std::fs::create_dir_all(&self.machines)?;
        let lock = crate::lockfile::FileLock::take(&self.machines.join(".lock"))?;
        let moving = self.all(from);
        let taken: Vec<String> = self.all(to).into_iter().map(|m| m.name).collect();
        super::refuse_name_clash(moving.iter().map(|m| m.name.as_str()), &taken, from, to)?;
        let mut moved = Vec::new();
        for old in &moving {
            let mut meta = old.clone();
            meta.namespace = to.namespace.clone();
            meta.tags
                .insert(tags::NAMESPACE.to_string(), to.namespace.clone());
            meta.tags.extend(tags.clone());
            self.save(&meta)?;
            moved.push(meta);
        }
        drop(lock);
        self.rekey(from, to, &moved).await?;
        Ok(moved.iter().map(|m| self.machine(m)).collect())
    }

    async fn virtual_ip(
        &self,
        scope: &Scope,
        wanted: Option<Ipv4Addr>,
    ) -> Result<VirtualIp, CloudError> {
        let owner = self.vip_owner(scope);
        let before = vip::held(&owner);
        let vip = vip::reserve(&owner, wanted)?;
        // The env's machines may send from the VIP, and only from the one it holds now.
        let env = self.env_number(scope)?;
        if let Some(old) = before.filter(|old| *old != vip.address) {
            isolation::deny_vip(env, old).await;
            network::forget_neighbour(old).await;
        }
        if before != Some(vip.address) {
            network::forget_neighbour(vip.address).await;
        }
        isolation::allow_vip(env, vip.address).await?;
        Ok(vip)
    }

    async fn peek_virtual_ip(
        &self,
        scope: &Scope,
        wanted: Option<Ipv4Addr>,
    ) -> Result<VirtualIp, CloudError> {
        vip::peek(&self.vip_owner(scope), wanted)
    }

    async fn image(&self, scope: &Scope, id: &str, name: &str) -> Result<String, CloudError> {
        let mut meta = self.find(scope, id)?;
        let was_running = self.running(&meta);
        // A disk is copied at rest, so the image is consistent.
        self.halt(&mut meta).await?;
        let target = self.images.join(slug(name));
        if target.exists() {
            std::fs::remove_dir_all(&target)?;
        }
        std::fs::create_dir_all(&target)?;
        self.mount_disk(&meta).await?;
        let upper = self.upper(&meta);
        network::run(
            "cp",
            &[
                "-a",
                &upper.display().to_string(),
                &target.join("upper").display().to_string(),
            ],
        )
        .await?;
        if was_running {
            self.boot(&mut meta).await?;
        } else if meta.disk.is_some() {
            disk::unmount(&self.dir(&meta.id)).await;
        }
        Ok(name.to_string())
    }

    async fn register_key(
        &self,
        scope: &Scope,
        name: &str,
        public_key: &str,
    ) -> Result<(), CloudError> {
        let dir = self
            .machines
            .join(".keys")
            .join(slug(&scope.namespace))
            .join(slug(&scope.env));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join(format!("{}.pub", slug(name))),
            format!("{}\n", public_key.trim()),
        )?;
        Ok(())
    }

    async fn destroy_resources(&self, scope: &Scope) -> Result<Vec<String>, CloudError> {
        let dir = self
            .machines
            .join(".keys")
            .join(slug(&scope.namespace))
            .join(slug(&scope.env));
        let mut gone = Vec::new();
        if self.all(scope).is_empty() {
            self.release_env(scope).await;
        }
        if dir.exists() {
            for entry in std::fs::read_dir(&dir)?.filter_map(Result::ok) {
                gone.push(format!(
                    "key {}",
                    entry.file_name().to_string_lossy().trim_end_matches(".pub")
                ));
            }
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(gone)
    }
}

impl LocalProvider {
    /// After machines moved from env `from` to env `to`: the network filter and VIP follow
    /// them, and so do the keys registered for `from`. When `to` has no env number yet it takes
    /// over `from`'s (and its VIP), so running machines keep their listing untouched;
    /// otherwise each running machine is listed again under `to`'s number.
    async fn rekey(&self, from: &Scope, to: &Scope, moved: &[Meta]) -> Result<(), CloudError> {
        let (old_key, new_key) = (
            format!("env:{}", self.env_key(from)),
            format!("env:{}", self.env_key(to)),
        );
        let old_number = isolation::held_number(&old_key);
        isolation::rename_env(&old_key, &new_key)?;
        vip::rename(&self.vip_owner(from), &self.vip_owner(to))?;
        let new_number = self.env_number(to)?;
        if old_number.is_some_and(|old| old != new_number) {
            for meta in moved.iter().filter(|m| self.running(m)) {
                let veth = veth_name(&self.dir(&meta.id));
                if let Some(old) = old_number {
                    isolation::forget(&isolation::Port {
                        veth: &veth,
                        ip: meta.ip,
                        env: old,
                    })
                    .await;
                }
                isolation::admit(&self.port(meta, &veth)?).await?;
            }
            if let Some(address) = vip::held(&self.vip_owner(to)) {
                isolation::allow_vip(new_number, address).await?;
            }
        }
        // Whatever `from` still holds (its VIP when `to` had one) goes.
        self.release_env(from).await;
        let keys = |scope: &Scope| {
            self.machines
                .join(".keys")
                .join(slug(&scope.namespace))
                .join(slug(&scope.env))
        };
        let (old_keys, new_keys) = (keys(from), keys(to));
        if let Ok(entries) = std::fs::read_dir(&old_keys) {
            std::fs::create_dir_all(&new_keys)?;
            for entry in entries.filter_map(Result::ok) {
                let target = new_keys.join(entry.file_name());
                if !target.exists() {
                    std::fs::rename(entry.path(), target)?;
                }
            }
            let _ = std::fs::remove_dir_all(&old_keys);
        }
        Ok(())
    }

    fn registered_keys(&self, scope: &Scope) -> Vec<String> {
        let dir = self
            .machines
            .join(".keys")
            .join(slug(&scope.namespace))
            .join(slug(&scope.env));
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|k| k.trim().to_string())
            .collect()
    }
}

/// The images machines can boot from on this host, for `weft cloud images`: the base images
/// in the image cache, then the images made from machines with `weft cloud image`.
pub fn images() -> Vec<(String, image::CachedImage)> {
    let mut found: Vec<(String, image::CachedImage)> = image::list(&image::cache_dir())
        .into_iter()
        .map(|i| ("base".to_string(), i))
        .collect();
    found.extend(
        image::list(&data_dir().join("images"))
            .into_iter()
            .map(|i| ("machine".to_string(), i)),
    );
    found
}

/// Removes image `name`. An image of the cache is refused while machines boot from it (the
/// base image while any machine exists: package images are copies of it, but a machine
/// restarted after its package image went is rebuilt from the base).
pub fn remove_image(name: &str) -> Result<(), CloudError> {
    let snapshot = data_dir().join("images").join(slug(name));
    if snapshot.is_dir() && slug(name) == name {
        std::fs::remove_dir_all(&snapshot)?;
        return Ok(());
    }
    let cached = image::cache_dir().join(name);
    if image::is_image_name(name) && cached.is_dir() {
        let machines = std::fs::read_dir(data_dir().join("machines"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_to_string(e.path().join("meta.json")).ok())
                    .filter_map(|text| serde_json::from_str::<Meta>(&text).ok())
                    .filter(|m| name == image::BASE || image::name_for(&m.packages) == name)
                    .count()
            })
            .unwrap_or(0);
        if machines > 0 {
            return Err(CloudError::Io(format!(
                "{machines} machine(s) boot from image `{name}`: terminate them first"
            )));
        }
        std::fs::remove_dir_all(&cached)?;
        return Ok(());
    }
    Err(CloudError::NotFound(format!("no local image `{name}`")))
}
