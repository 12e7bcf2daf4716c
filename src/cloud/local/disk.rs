//! A local machine's disk: an ext4 filesystem in a sparse file of its folder (`disk.img`),
//! mounted through a loop device on `disk/` while the machine needs it. Its writable layer is
//! `disk/upper`, so a machine that fills its disk sees `ENOSPC` at its size, and the host's
//! disk only gives what the machine actually stores (deleted files are given back: the mount
//! passes discards on to the file).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::network::run;
use crate::cloud::CloudError;

/// A machine's disk size when its role sets no `disk`: 10 GiB.
pub const DEFAULT_SIZE: u64 = 10 << 30;

/// The file that holds the machine's filesystem.
fn image(dir: &Path) -> PathBuf {
    dir.join("disk.img")
}

/// Where the filesystem is mounted.
fn mount_point(dir: &Path) -> PathBuf {
    dir.join("disk")
}

/// The machine's writable layer on its disk.
pub fn upper(dir: &Path) -> PathBuf {
    mount_point(dir).join("upper")
}

/// Whether the disk of the machine in `dir` is mounted: its mount point is on another device
/// than the folder.
fn mounted(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::symlink_metadata(mount_point(dir)),
        std::fs::symlink_metadata(dir),
    ) {
        (Ok(point), Ok(folder)) => point.dev() != folder.dev(),
        _ => false,
    }
}

/// Makes a disk of `bytes` for the machine in `dir` and mounts it, with an empty layer.
pub async fn make(dir: &Path, bytes: u64) -> Result<(), CloudError> {
    let file = image(dir);
    // Sparse: the host gives blocks as the machine writes them.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)?
        .set_len(bytes)?;
    let path = file.display().to_string();
    // No blocks reserved for root (the machine is root); tables zeroed lazily, so a 10 GiB
    // disk costs the host a few megabytes until it is used.
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-m",
            "0",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1",
            &path,
        ],
    )
    .await?;
    mount(dir).await?;
    std::fs::create_dir(upper(dir))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(upper(dir), std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Mounts the machine's disk when it is not mounted yet.
pub async fn mount(dir: &Path) -> Result<(), CloudError> {
    if mounted(dir) {
        return Ok(());
    }
    let file = image(dir);
    if !file.is_file() {
        return Err(CloudError::Io(format!(
            "the machine's disk {} is missing",
            file.display()
        )));
    }
    std::fs::create_dir_all(mount_point(dir))?;
    run(
        "mount",
        &[
            "-t",
            "ext4",
            "-o",
            "loop,discard",
            &file.display().to_string(),
            &mount_point(dir).display().to_string(),
        ],
    )
    .await
    .map_err(|e| CloudError::Io(format!("cannot mount the machine's disk: {e}")))?;
    Ok(())
}

/// Unmounts the machine's disk (it stopped); the loop device goes with it. A mount still
/// busy a moment after the machine's last process is detached lazily, so the folder can go.
pub async fn unmount(dir: &Path) {
    let point = mount_point(dir).display().to_string();
    for _ in 0..20 {
        if !mounted(dir) {
            return;
        }
        if run("umount", &[&point]).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = run("umount", &["-l", &point]).await;
}
