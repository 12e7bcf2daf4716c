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

/// Runs a command, turning a failure into an error that shows it.
pub async fn run(program: &str, args: &[&str]) -> Result<String, CloudError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|e| CloudError::Unsupported(format!("cannot run `{program}`: {e}")))?;
    if !out.status.success() {
        return Err(CloudError::Io(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates the bridge when it does not exist yet.
pub async fn ensure_bridge() -> Result<(), CloudError> {
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
    if run("nft", &["list", "table", "ip", "weft"]).await.is_ok() {
        return Ok(());
    }
    let rules = format!(
        "table ip weft {{\n chain postrouting {{\n  type nat hook postrouting priority 100;\n  \
         ip saddr 10.77.0.0/16 oifname != \"{BRIDGE}\" masquerade\n }}\n}}\n"
    );
    let path = std::env::temp_dir().join(format!("weft-nat-{}.nft", std::process::id()));
    std::fs::write(&path, rules)?;
    let result = run("nft", &["-f", &path.display().to_string()]).await;
    let _ = std::fs::remove_file(&path);
    result.map(|_| ())
}

/// Reserves a free address for the machine in `dir`, or returns the one it holds.
pub fn reserve(dir: &Path, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr, CloudError> {
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

/// Gives the address back.
pub fn release(ip: Ipv4Addr) {
    let _ = std::fs::remove_file(Path::new(RESERVATIONS).join(ip.to_string()));
}

/// Makes the namespace `ns` with `ip` on a veth pair whose host end `veth` joins the bridge.
pub async fn create_namespace(ns: &str, veth: &str, ip: Ipv4Addr) -> Result<(), CloudError> {
    delete_namespace(ns, veth).await;
    let peer = format!("{veth}p");
    run("ip", &["netns", "add", ns]).await?;
    // The machine's MAC comes from its address, so it is the same after a restart: other
    // machines' neighbour caches (an lb's, say) stay right and reach it at once.
    let mac = super::isolation::mac_of(ip);
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
