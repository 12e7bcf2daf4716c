//! The base image of local machines: a Debian 12 root filesystem made once with `debootstrap`
//! and cached in a folder that outlives clones and CI runs. Machines boot from it read-only,
//! each with its own writable layer.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cloud::CloudError;

/// The base image's name in the cache.
pub const BASE: &str = "debian-12";
/// The Debian mirror images are built from and machines install packages from.
pub const MIRROR: &str = "http://deb.debian.org/debian";
/// Packages on top of debootstrap's minbase: what a machine needs to boot and answer SSH.
const PACKAGES: &str = "systemd,systemd-sysv,dbus,openssh-server,sudo,ca-certificates,python3";

/// The folder that caches base images: `WEFT_IMAGE_CACHE`, else `/var/tmp/weft-images`, which
/// survives reboots and clones so a build happens once per host.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("WEFT_IMAGE_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/weft-images"))
}

/// The tools the provider runs on this host, each with the Debian package that has it.
const TOOLS: [(&str, &str); 4] = [
    ("systemd-nspawn", "systemd-container"),
    ("debootstrap", "debootstrap"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
];

/// Fails, before anything is made, naming every Debian package this host lacks for `local`
/// machines in one message: a package per missing tool, and then also `python3-venv` when
/// `python3` cannot make a virtualenv (app builds on this host need it; `env_up` checks that
/// alone too), so a first `env_up` names all it needs at once.
pub fn require_tools() -> Result<(), CloudError> {
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
    };
    let mut missing: Vec<(&str, &str)> = TOOLS
        .into_iter()
        .filter(|(tool, _)| !on_path(tool))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !python_makes_venvs() {
        missing.push(("python3 -m venv", "python3-venv"));
    }
    let tools: Vec<String> = missing
        .iter()
        .map(|(tool, package)| format!("`{tool}` (package {package})"))
        .collect();
    let packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
    Err(CloudError::MissingPackages {
        tools: tools.join(", "),
        packages: packages.join(" "),
    })
}

/// Whether `python3` can make a virtualenv: Debian ships `ensurepip`, which `venv` needs, in
/// `python3-venv`.
fn python_makes_venvs() -> bool {
    Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The name of the image whose machines start with `packages`: the base image when there are
/// none, else `debian-12+` and a digest of the sorted package list, so every role that names
/// the same packages shares one image.
pub fn name_for(packages: &[String]) -> String {
    let mut sorted: Vec<&str> = packages.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.is_empty() {
        return BASE.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(sorted.join(" ").as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{BASE}+{hex}")
}

/// The root folder of the image whose machines start with `packages` (see `name_for`), built
/// first when the cache has none: the base image with debootstrap, a package image from the
/// base with apt. Parallel weft processes build an image once: the others wait on its lock. A
/// build goes to a temporary folder renamed into place only when it succeeded, so an
/// interrupted build never counts as an image.
pub async fn ensure(packages: &[String]) -> Result<PathBuf, CloudError> {
    let name = name_for(packages);
    let cache = cache_dir();
    let root = cache.join(&name);
    // Before an image is used, not only before one is built: machines boot from it as root.
    trusted_cache(&cache)?;
    if root.join("etc/os-release").is_file() {
        return Ok(root);
    }
    let base = if name == BASE {
        None
    } else {
        Some(Box::pin(ensure(&[])).await?)
    };
    let packages = packages.to_vec();
    tokio::task::spawn_blocking(move || {
        // A kernel lock: one whose holder was killed is free at once.
        let _lock =
            crate::lockfile::FileLock::take_or(&cache.join(format!("{name}.lock")), || {
                crate::logging::note("weft: waiting for another weft to build the image");
            })?;
        if root.join("etc/os-release").is_file() {
            return Ok(root);
        }
        let partial = cache.join(format!("{name}.partial"));
        if partial.exists() {
            std::fs::remove_dir_all(&partial)?;
        }
        let started = Instant::now();
        match &base {
            None => bootstrap(&partial, started),
            Some(base) => install(base, &partial, &name, &packages, started),
        }
        .inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&partial);
        })?;
        finish(&partial)?;
        std::fs::rename(&partial, &root)?;
        crate::logging::note(&format!(
            "weft: image {name} ready in {}s",
            started.elapsed().as_secs()
        ));
        Ok(root)
    })
    .await
    .map_err(|e| CloudError::Io(format!("image build panicked: {e}")))?
}

/// Makes the base image in `partial` with debootstrap.
fn bootstrap(partial: &Path, started: Instant) -> Result<(), CloudError> {
    crate::logging::note(&format!(
        "weft: building the local machine image {BASE} from {MIRROR} (once; a few minutes)"
    ));
    let mut command = Command::new("debootstrap");
    command
        .args([
            "--variant=minbase",
            &format!("--include={PACKAGES}"),
            "bookworm",
        ])
        .arg(partial)
        .arg(MIRROR);
    // debootstrap's stages (retrieving, resolving, extracting, installing) are the progress
    // a user waits through.
    let stages = [
        "I: Retrieving Release",
        "I: Resolving",
        "I: Extracting",
        "I: Installing",
        "I: Base system installed",
    ];
    run_showing(command, started, |line| {
        stages
            .iter()
            .any(|p| line.starts_with(p))
            .then(|| line.trim_start_matches("I: ").to_string())
    })
    .map_err(|output| {
        CloudError::Io(format!(
            "building the image with `debootstrap ... bookworm {} {MIRROR}` failed; \
             is the mirror reachable?\n{output}",
            partial.display()
        ))
    })
}

/// Makes image `name` in `partial`: a copy of `base` with `packages` installed by apt, run
/// inside the copy by systemd-nspawn (not booted, so no service starts during the build).
fn install(
    base: &Path,
    partial: &Path,
    name: &str,
    packages: &[String],
    started: Instant,
) -> Result<(), CloudError> {
    crate::logging::note(&format!(
        "weft: building the local machine image {name} ({}) from {BASE} (once)",
        packages.join(", ")
    ));
    let copied = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(base)
        .arg(partial)
        .status()?;
    if !copied.success() {
        return Err(CloudError::Io(format!(
            "copying image {BASE} to {} failed ({copied})",
            partial.display()
        )));
    }
    // Package names were checked when weft.toml was read; they travel as arguments anyway.
    let mut command = Command::new("systemd-nspawn");
    command
        .args(["--quiet", "--register=no", "--keep-unit", "--as-pid2"])
        .args(["--resolv-conf=copy-host", "--timezone=off"])
        .args(["-E", "DEBIAN_FRONTEND=noninteractive", "--directory"])
        .arg(partial)
        .args([
            "sh",
            "-ec",
            // `finish` empties apt's cache afterwards, as for the base image.
            "apt-get update -q; apt-get install -y -q --no-install-recommends -- \"$@\"",
            "sh",
        ])
        .args(packages);
    run_showing(command, started, |line| {
        line.strip_prefix("Setting up ").map(|rest| {
            let package = rest.split_whitespace().next().unwrap_or(rest);
            format!("setting up {package}")
        })
    })
    .map_err(|output| {
        CloudError::Io(format!(
            "installing {} into image {name} failed; are the names right and is the mirror \
             reachable?\n{output}",
            packages.join(" ")
        ))
    })
}

/// Runs `command`, printing the lines `progress` picks as the build's progress. On failure,
/// the error is the last lines of its output.
fn run_showing(
    mut command: Command,
    started: Instant,
    progress: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(err) = stderr {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    });
    let mut tail: Vec<String> = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(step) = progress(&line) {
                crate::logging::note(&format!(
                    "weft: image build [{:>3}s] {step}",
                    started.elapsed().as_secs()
                ));
            }
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let errors = errors.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    Err(format!(
        "({status})\n{}\n{}",
        tail.join("\n"),
        errors.trim()
    ))
}

/// Makes the fresh root a template: each machine gets its own identity at boot.
fn finish(root: &Path) -> Result<(), CloudError> {
    // systemd derives the machine id from the container; an empty file keeps it per machine.
    std::fs::write(root.join("etc/machine-id"), "")?;
    let _ = std::fs::remove_file(root.join("var/lib/dbus/machine-id"));
    let _ = std::fs::remove_file(root.join("etc/hostname"));
    // Host keys are per machine (written into each machine's own layer).
    if let Ok(entries) = std::fs::read_dir(root.join("etc/ssh")) {
        for entry in entries.filter_map(Result::ok) {
            if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    std::fs::write(
        root.join("etc/apt/sources.list"),
        format!(
            "deb {MIRROR} bookworm main\ndeb {MIRROR} bookworm-updates main\n\
             deb {MIRROR}-security bookworm-security main\n"
        ),
    )?;
    let _ = Command::new("chroot")
        .arg(root)
        .args(["apt-get", "clean"])
        .status();
    Ok(())
}

/// One image in the cache, for `weft cloud images`.
#[derive(Debug, Clone)]
pub struct CachedImage {
    /// The image's name.
    pub name: String,
    /// Its size on disk in bytes.
    pub bytes: u64,
    /// How long ago it was made.
    pub age: Duration,
}

/// Whether `name` can name a complete image of a cache folder: one entry of it, not a
/// partial build or a hidden file.
pub fn is_image_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.starts_with('.') && !name.ends_with(".partial")
}

/// The complete images in `dir` (partial builds are not images).
pub fn list(dir: &Path) -> Vec<CachedImage> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<CachedImage> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !is_image_name(&name) {
                return None;
            }
            let age = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            Some(CachedImage {
                bytes: disk_usage(&e.path()),
                name,
                age,
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

fn disk_usage(path: &Path) -> u64 {
    Command::new("du")
        .args(["-sxb"])
        .arg(path)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Makes the image cache folder when missing (root's, 0755), and refuses one that another
/// user could write: the default lives under the world-writable `/var/tmp`, where any local
/// user could make `weft-images` first, then swap the image machines boot from as root, or
/// plant links that root's build writes through.
pub fn trusted_cache(cache: &Path) -> Result<(), CloudError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o755).create(cache) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(cache)?;
        }
        Err(err) => return Err(err.into()),
    }
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let link = std::fs::symlink_metadata(cache)?;
    let target = std::fs::metadata(cache)?;
    for meta in [&link, &target] {
        if meta.uid() != me || (meta.is_dir() && meta.mode() & 0o022 != 0) {
            return Err(CloudError::Unsupported(format!(
                "the image cache {} belongs to another user or others can write it, so they \
                 could change the images machines boot from: remove it, or set \
                 WEFT_IMAGE_CACHE to a folder of root's",
                cache.display()
            )));
        }
    }
    if !target.is_dir() {
        return Err(CloudError::Unsupported(format!(
            "the image cache {} is not a folder",
            cache.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache folder another user made first (under `/var/tmp` anyone can) is refused, and
    /// so is a link to one of root's folders; weft's own is taken. Needs root to give the
    /// folder away.
    #[test]
    fn an_image_cache_another_user_could_write_is_refused() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().expect("dir");
        let mine = dir.path().join("mine");
        trusted_cache(&mine).expect("a fresh cache of root's");
        assert_eq!(
            std::fs::metadata(&mine).expect("made").permissions().mode() & 0o777,
            0o755
        );
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).expect("dir");
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
        let err = trusted_cache(&theirs)
            .expect_err("another user's cache")
            .to_string();
        assert!(err.contains("WEFT_IMAGE_CACHE"), "{err}");
        let open = dir.path().join("open");
        std::fs::create_dir(&open).expect("dir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(trusted_cache(&open).is_err());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&theirs, &link).expect("link");
        assert!(trusted_cache(&link).is_err());
    }
}
