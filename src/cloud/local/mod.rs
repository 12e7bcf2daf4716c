//! The `local` provider: sandbox machines on this Linux host. Each machine is a set of
//! namespaces (mount, UTS, PID, network) over an overlay of the host's root filesystem, with
//! its own hostname, processes, address and writable disk (kept in a folder under weft's data
//! folder), running its own OpenSSH sshd. Machines outlive the weft process that started them.

mod network;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    data_dir, known_hosts_file, machine_key, tags, CloudError, Machine, MachineSpec, Provider,
    Scope,
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
    pid: Option<u32>,
    tags: BTreeMap<String, String>,
}

/// Sandbox machines under `<data>/machines`, images under `<data>/images`.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    machines: PathBuf,
    images: PathBuf,
}

/// The sshd config every local machine runs.
const SSHD_CONFIG: &str = "Port 22
ListenAddress 0.0.0.0
HostKey /etc/weft/ssh_host_ed25519_key
AuthorizedKeysFile .ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PidFile /run/sshd.pid
MaxSessions 32
MaxStartups 100:30:200
Subsystem sftp internal-sftp
";

fn slug(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
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
        let base = data_dir();
        Ok(LocalProvider {
            machines: base.join("machines"),
            images: base.join("images"),
        })
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
        let marker = self.dir(&meta.id).join("root").display().to_string();
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
        std::fs::write(etc_weft.join("sshd_config"), SSHD_CONFIG)?;
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
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700))?;
        // A fresh machine's root has the distribution's shell files, not this host's: sshd runs
        // every command through bash, which reads ~/.bashrc, and a host's hooks there (version
        // managers and their locks) would slow or block every command in every machine.
        for (file, stock) in [
            (".bashrc", "/usr/share/base-files/dot.bashrc"),
            (".profile", "/usr/share/base-files/dot.profile"),
        ] {
            let text = std::fs::read_to_string(stock).unwrap_or_default();
            std::fs::write(upper.join("root").join(file), text)?;
        }
        std::fs::write(upper.join("etc/hostname"), format!("{}\n", meta.name))?;
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        std::fs::write(
            upper.join("etc/hosts"),
            format!("{hosts}{} {}\n", meta.ip, meta.name),
        )?;
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
        let dir = self.dir(&meta.id);
        for sub in ["upper", "work", "root"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        meta.ip = network::reserve(&dir, Some(meta.ip))?;
        network::ensure_bridge().await?;
        network::create_namespace(&netns_name(&dir), &veth_name(&dir), meta.ip).await?;
        let q = |p: &Path| crate::shell::quote(&p.display().to_string());
        let (root, upper, work) = (dir.join("root"), dir.join("upper"), dir.join("work"));
        let script = format!(
            "set -e\n\
             mount -t overlay overlay -o lowerdir=/,upperdir={upper},workdir={work} {root}\n\
             mount -t proc proc {root}/proc\n\
             mount --rbind /dev {root}/dev\n\
             mount -t sysfs sysfs {root}/sys || mount --rbind /sys {root}/sys\n\
             mount -t tmpfs tmpfs {root}/run\n\
             mkdir -p {root}/run/sshd\n\
             hostname {name}\n\
             exec chroot {root} /usr/sbin/sshd -D -e -f /etc/weft/sshd_config\n",
            upper = q(&upper),
            work = q(&work),
            root = q(&root),
            name = crate::shell::quote(&meta.name),
        );
        let log = std::fs::File::create(dir.join("console.log"))?;
        let mut command = std::process::Command::new("ip");
        command
            .args([
                "netns",
                "exec",
                &netns_name(&dir),
                "unshare",
                "--mount",
                "--uts",
                "--pid",
                "--fork",
                "--kill-child",
            ])
            .args([
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
                "weft-machine",
            ])
            .arg(&root)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own process group: the machine keeps running after weft exits.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .map_err(|e| CloudError::Unsupported(format!("cannot start the machine: {e}")))?;
        meta.pid = Some(child.id());
        self.save(meta)?;
        wait_for_ssh(meta.ip, &dir.join("console.log")).await
    }

    async fn halt(&self, meta: &mut Meta) -> Result<(), CloudError> {
        if let Some(pid) = meta.pid.filter(|_| self.running(meta)) {
            // `unshare --fork` blocks SIGTERM while it waits, so the machine's init (its
            // child, sshd) gets it: when init ends, the kernel ends the rest of the machine.
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            for child in children.split_whitespace() {
                let _ = network::run("kill", &[child]).await;
            }
            let _ = network::run("kill", &[&pid.to_string()]).await;
            for _ in 0..50 {
                if !self.running(meta) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if self.running(meta) {
                let _ = network::run("kill", &["-KILL", &pid.to_string()]).await;
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
    for _ in 0..200 {
        let connect = tokio::net::TcpStream::connect((ip, 22));
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let console = std::fs::read_to_string(log).unwrap_or_default();
    Err(CloudError::Io(format!(
        "the machine at {ip} did not answer on port 22: {}",
        console.trim()
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
        // A mount left behind by a crash must not take the host's files with it.
        let _ = network::run("umount", &["-R", &dir.join("root").display().to_string()]).await;
        std::fs::remove_dir_all(&dir)?;
        network::release(meta.ip);
        forget_host(meta.ip)
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
