//! The `local` provider: machines on this Linux host. Each machine boots a Debian 12 image
//! (built once with debootstrap, see `image`) under `systemd-nspawn --boot`, with systemd as
//! PID 1, its own writable layer over the image (kept in a folder under weft's data folder),
//! its own hostname and a network namespace with an address on the `weft0` bridge. sshd is an
//! enabled unit of the image. Machines outlive the weft process that started them.

pub mod image;
mod network;
mod vip;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    data_dir, known_hosts_file, machine_key, tags, CloudError, Machine, MachineSpec, Provider,
    Scope, VirtualIp,
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

    /// Who holds the env's virtual IP in the host-wide reservations: unique per data folder,
    /// namespace and env, as machine folders are.
    fn vip_owner(&self, scope: &Scope) -> String {
        format!(
            "vip:{}/{}/{}",
            self.machines.display(),
            slug(&scope.namespace),
            slug(&scope.env)
        )
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
        std::fs::write(self.dir(&meta.id).join("meta.json"), text)?;
        Ok(())
    }

    fn all(&self, scope: &Scope) -> Vec<Meta> {
        let Ok(entries) = std::fs::read_dir(&self.machines) else {
            return Vec::new();
        };
        let mut found: Vec<Meta> = entries
            .filter_map(Result::ok)
            .filter_map(|e| self.load(&e.path()))
            .filter(|m| m.namespace == scope.namespace && m.env == scope.env)
            .collect();
        found.sort_by(|a, b| a.role.cmp(&b.role).then(a.ordinal.cmp(&b.ordinal)));
        found
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
        let marker = self.dir(&meta.id).join("upper").display().to_string();
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
        }
    }

    /// Writes the machine's own files into its disk: sshd config, host key, keys, hostname.
    fn prepare_disk(&self, meta: &Meta, keys: &[String]) -> Result<(), CloudError> {
        let upper = self.dir(&meta.id).join("upper");
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
        // Record the host key so weft's strict checking knows the machine.
        let public = std::fs::read_to_string(host_key.with_extension("pub"))?;
        let mut fields = public.split_whitespace();
        let line = format!(
            "{} {} {}\n",
            meta.ip,
            fields.next().unwrap_or(""),
            fields.next().unwrap_or("")
        );
        forget_host(meta.ip)?;
        let path = known_hosts_file();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&line);
        std::fs::write(&path, text)?;
        Ok(())
    }

    async fn boot(&self, meta: &mut Meta) -> Result<(), CloudError> {
        if self.running(meta) {
            return Ok(());
        }
        let base = image::ensure(&meta.packages).await?;
        let dir = self.dir(&meta.id);
        let upper = dir.join("upper");
        std::fs::create_dir_all(&upper)?;
        meta.ip = network::reserve(&dir, Some(meta.ip))?;
        network::ensure_bridge().await?;
        network::ensure_nat().await?;
        let netns = netns_name(&dir);
        network::create_namespace(&netns, &veth_name(&dir), meta.ip).await?;
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
            // network, as a real machine does (keepalived adds and removes a virtual IP).
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
        network::delete_namespace(&netns_name(&dir), &veth_name(&dir)).await;
        meta.pid = None;
        self.save(meta)
    }
}

/// Removes the recorded host key of `ip` (the address may go to another machine later).
fn forget_host(ip: Ipv4Addr) -> Result<(), CloudError> {
    let path = known_hosts_file();
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let prefix = format!("{ip} ");
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with(&prefix))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, kept)?;
    Ok(())
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
        let name = format!("{}-{}", spec.role, spec.ordinal);
        let id = format!("{}.{}.{name}", slug(&scope.namespace), slug(&scope.env));
        let dir = self.dir(&id);
        if let Some(mut meta) = self.load(&dir) {
            self.boot(&mut meta).await?;
            return Ok(self.machine(&meta));
        }
        // The image first: a failed package install leaves no half-made machine behind.
        image::ensure(&spec.packages).await?;
        std::fs::create_dir_all(dir.join("upper"))?;
        if let Some(image) = &spec.image {
            let source = self.images.join(slug(image)).join("upper");
            if !source.is_dir() {
                return Err(CloudError::NotFound(format!("no local image `{image}`")));
            }
            network::run(
                "cp",
                &[
                    "-a",
                    &format!("{}/.", source.display()),
                    &dir.join("upper").display().to_string(),
                ],
            )
            .await?;
        }
        let ip = network::reserve(&dir, None)?;
        let mut tags = BTreeMap::new();
        tags.insert(tags::NAMESPACE.to_string(), scope.namespace.clone());
        tags.insert(tags::ENV.to_string(), scope.env.clone());
        tags.insert(tags::ROLE.to_string(), spec.role.clone());
        tags.insert(tags::ORDINAL.to_string(), spec.ordinal.to_string());
        tags.insert(tags::CREATED_BY.to_string(), "weft".into());
        tags.extend(spec.tags.clone());
        let mut meta = Meta {
            id,
            name,
            role: spec.role.clone(),
            ordinal: spec.ordinal,
            namespace: scope.namespace.clone(),
            env: scope.env.clone(),
            ip,
            image: spec.image.clone(),
            packages: spec.packages.clone(),
            pid: None,
            tags,
        };
        let (_, weft_key) = machine_key()?;
        let mut keys = vec![weft_key];
        keys.extend(spec.keys.iter().cloned());
        keys.extend(self.registered_keys(scope));
        self.save(&meta)?;
        self.prepare_disk(&meta, &keys)?;
        self.boot(&mut meta).await?;
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
        std::fs::remove_dir_all(&dir)?;
        network::release(meta.ip);
        // The env's VIP lives as long as its machines.
        if self.all(scope).is_empty() {
            vip::release(&self.vip_owner(scope));
        }
        forget_host(meta.ip)
    }

    async fn virtual_ip(
        &self,
        scope: &Scope,
        wanted: Option<Ipv4Addr>,
    ) -> Result<VirtualIp, CloudError> {
        vip::reserve(&self.vip_owner(scope), wanted)
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
        let upper = self.dir(&meta.id).join("upper");
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
        vip::release(&self.vip_owner(scope));
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
