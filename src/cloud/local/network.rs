//! The network of local machines: one bridge `weft0` (10.77.0.1/16) on this host, and per
//! machine a network namespace with a veth pair and an address reserved system-wide.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::cloud::CloudError;

/// The host's bridge.
pub const BRIDGE: &str = "weft0";
/// The host's address on the bridge; machines route through it.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// Address reservations, shared by every weft process on this host.
pub(super) const RESERVATIONS: &str = "/run/weft/ips";
/// The lock every weft process of this host takes to change the bridge, NAT or reservations.
const LOCK: &str = "/run/weft/.lock";

/// Waits for the host-wide lock of weft's network state (`/run/weft` is root's alone, as is
/// the local provider).
pub(super) fn lock() -> Result<crate::lockfile::FileLock, CloudError> {
    Ok(crate::lockfile::FileLock::take(Path::new(LOCK))?)
}

/// Runs a command, turning a failure into an error that shows it.
pub async fn run(program: &str, args: &[&str]) -> Result<String, CloudError> {
    run_with_input(program, args, None).await
}

/// `run`, with `input` fed to the command's standard input.
async fn run_with_input(
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, CloudError> {
    use tokio::io::AsyncWriteExt;
    let cannot =
        |e: std::io::Error| CloudError::Unsupported(format!("cannot run `{program}`: {e}"));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(cannot)?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        stdin.write_all(input.as_bytes()).await.map_err(cannot)?;
    }
    let out = child.wait_with_output().await.map_err(cannot)?;
    if !out.status.success() {
        return Err(CloudError::Io(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates the bridge when it does not exist yet; parallel creates make it once.
pub async fn ensure_bridge() -> Result<(), CloudError> {
    let _lock = lock()?;
    if run("ip", &["link", "show", BRIDGE]).await.is_ok() {
        return Ok(());
    }
    run("ip", &["link", "add", BRIDGE, "type", "bridge"]).await?;
    run(
        "ip",
        &["addr", "add", &format!("{GATEWAY}/16"), "dev", BRIDGE],
    )
    .await?;
    run("ip", &["link", "set", BRIDGE, "up"]).await?;
    Ok(())
}

/// Lets machines reach Debian's mirror: forwarding on, and the bridge's addresses masqueraded
/// behind the host's own (an nftables table of weft's, made once).
pub async fn ensure_nat() -> Result<(), CloudError> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
    let _lock = lock()?;
    if run("nft", &["list", "table", "ip", "weft"]).await.is_ok() {
        return Ok(());
    }
    // The ruleset goes to nft on its standard input: a file under a shared temporary folder
    // could be a link planted there by any local user, which root would write through.
    run_with_input("nft", &["-f", "-"], Some(&nat_rules()))
        .await
        .map(|_| ())
}

/// weft's NAT table: the bridge's addresses masqueraded behind the host's own.
fn nat_rules() -> String {
    format!(
        "table ip weft {{\n chain postrouting {{\n  type nat hook postrouting priority 100;\n  \
         ip saddr 10.77.0.0/16 oifname != \"{BRIDGE}\" masquerade\n }}\n}}\n"
    )
}

/// Reserves a free address for the machine in `dir`, or returns the one it holds.
pub fn reserve(dir: &Path, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr, CloudError> {
    let _lock = lock()?;
    std::fs::create_dir_all(RESERVATIONS)?;
    let owner = dir.display().to_string();
    if let Some(ip) = wanted {
        let path = Path::new(RESERVATIONS).join(ip.to_string());
        match std::fs::read_to_string(&path) {
            Ok(holder) if holder == owner => return Ok(ip),
            Ok(_) => {}
            Err(_) => {
                if create_new(&path, &owner)? {
                    return Ok(ip);
                }
            }
        }
    }
    for n in 2u32..65534 {
        let ip = Ipv4Addr::from(u32::from(GATEWAY) - 1 + n);
        if create_new(&Path::new(RESERVATIONS).join(ip.to_string()), &owner)? {
            return Ok(ip);
        }
    }
    Err(CloudError::Io(
        "no free address left in 10.77.0.0/16".into(),
    ))
}

pub(super) fn create_new(path: &PathBuf, owner: &str) -> Result<bool, CloudError> {
    use std::io::Write;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(owner.as_bytes())?;
            Ok(true)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Gives the address back, when `owner` (a machine's folder) holds it: an address released
/// twice, or after it went to another machine, stays with the holder.
pub fn release(ip: Ipv4Addr, owner: &str) {
    if let Ok(_lock) = lock() {
        release_locked(ip, owner);
    }
}

/// `release`, for a caller that holds the lock already (a second `flock` on another
/// descriptor of the same process would wait for ever).
pub(super) fn release_locked(ip: Ipv4Addr, owner: &str) {
    let path = Path::new(RESERVATIONS).join(ip.to_string());
    if std::fs::read_to_string(&path).is_ok_and(|held| held == owner) {
        let _ = std::fs::remove_file(path);
    }
}

/// Makes the host forget which MAC answers for `ip` on the bridge. A VIP moves between
/// machines, and envs reuse each other's: without this the host keeps sending to the MAC of
/// whoever held it last (an entry never expires while the table is small) and reaches the new
/// holder only after its probes of the old one time out.
pub async fn forget_neighbour(ip: Ipv4Addr) {
    let _ = run("ip", &["neigh", "del", &ip.to_string(), "dev", BRIDGE]).await;
}

/// The MAC address of the machine at `ip`: it comes from the address (see `create_namespace`),
/// and the isolation filter matches it with the address.
pub fn mac_of(ip: Ipv4Addr) -> String {
    let [_, _, c, d] = ip.octets();
    format!("02:77:00:00:{c:02x}:{d:02x}")
}

/// Makes the namespace `ns` with `ip` on a veth pair whose host end `veth` joins the bridge.
pub async fn create_namespace(ns: &str, veth: &str, ip: Ipv4Addr) -> Result<(), CloudError> {
    delete_namespace(ns, veth).await;
    let peer = format!("{veth}p");
    run("ip", &["netns", "add", ns]).await?;
    // The machine's MAC comes from its address, so it is the same after a restart: other
    // machines' neighbour caches (an lb's, say) stay right and reach it at once.
    let mac = mac_of(ip);
    run(
        "ip",
        &[
            "link", "add", veth, "type", "veth", "peer", "name", &peer, "address", &mac,
        ],
    )
    .await?;
    run("ip", &["link", "set", &peer, "netns", ns]).await?;
    run("ip", &["link", "set", veth, "master", BRIDGE, "up"]).await?;
    run("ip", &["-n", ns, "link", "set", &peer, "name", "eth0"]).await?;
    run(
        "ip",
        &["-n", ns, "addr", "add", &format!("{ip}/16"), "dev", "eth0"],
    )
    .await?;
    run("ip", &["-n", ns, "link", "set", "eth0", "up"]).await?;
    run("ip", &["-n", ns, "link", "set", "lo", "up"]).await?;
    run(
        "ip",
        &[
            "-n",
            ns,
            "route",
            "add",
            "default",
            "via",
            &GATEWAY.to_string(),
        ],
    )
    .await?;
    Ok(())
}

/// Deletes the namespace and the veth pair; nothing when they do not exist. The pair is
/// deleted by name because it outlives the namespace while its last processes exit.
pub async fn delete_namespace(ns: &str, veth: &str) {
    let _ = run("ip", &["netns", "del", ns]).await;
    let _ = run("ip", &["link", "del", veth]).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machines_mac_comes_from_its_address() {
        assert_eq!(mac_of("10.77.1.200".parse().unwrap()), "02:77:00:00:01:c8");
    }

    /// The NAT ruleset never goes through a file of the shared temporary folder: a link planted
    /// at the name weft used (`$TMPDIR/weft-nat-<pid>.nft`) is left alone, and its target
    /// keeps its content. Runs in a network namespace of this thread's own, so the host's
    /// table (and the machines of other tests) are untouched; needs root and nft.
    #[test]
    fn nat_rules_never_go_through_a_planted_link() {
        let uid = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .ok();
        if uid != Some(0)
            || std::process::Command::new("nft")
                .arg("--version")
                .output()
                .is_err()
        {
            eprintln!("skipped: needs root and nft");
            return;
        }
        let dir = tempfile::tempdir().expect("dir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "root's file\n").expect("victim");
        let planted = std::env::temp_dir().join(format!("weft-nat-{}.nft", std::process::id()));
        let _ = std::fs::remove_file(&planted);
        std::os::unix::fs::symlink(&victim, &planted).expect("plant");
        let table = std::thread::spawn(|| {
            // SAFETY: unshare only changes this thread's network namespace; the processes it
            // starts (nft) inherit it.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error().to_string());
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                ensure_nat().await.map_err(|e| e.to_string())?;
                run("nft", &["list", "table", "ip", "weft"])
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join()
        .expect("thread");
        let _ = std::fs::remove_file(&planted);
        let table = table.expect("nat in a namespace of its own");
        assert!(table.contains("masquerade"), "{table}");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "root's file\n",
            "the ruleset was written through the planted link"
        );
    }
}
