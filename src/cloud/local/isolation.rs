//! What keeps local envs apart on the one bridge `weft0`: a `bridge` nftables table of weft's
//! (`bridge weft`) that filters every frame a machine sends, on the host side of its veth.
//!
//! - Each env holds a number, reserved system-wide like VIPs (`/run/weft/envs`); each machine's
//!   veth is listed with its env's number, its MAC address and its IPv4 address.
//! - A machine's frames leave its veth only with its own MAC, as ARP or IPv4 (no IPv6, no
//!   VLAN tags), and from its own address or a VIP of its env: root in a machine may add any
//!   address, but it cannot announce or use one it was not given.
//! - The bridge forwards a frame only to a veth of the same env, broadcasts and VRRP's
//!   multicast included; and the host routes nothing from a machine back onto the bridge, so
//!   the gateway is no way around that.
//!
//! The host reaches every machine (its frames do not pass these hooks), and machines reach
//! the host and, through its NAT, Debian's mirror. Veths weft never listed (made by an older
//! weft) pass as before, but cannot reach listed ones. The filter is the enforcement, not
//! the machines' capabilities: keepalived needs `CAP_NET_RAW` and `CAP_NET_ADMIN` inside.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::network::{create_new, mac_of, GATEWAY};
use crate::cloud::CloudError;

/// Env number reservations, shared by every weft process on this host.
const ENV_NUMBERS: &str = "/run/weft/envs";

/// The table's sets and chains. A veth (`iifname`) is listed in `ports`; its env's number is
/// `env_of` (copied into the frame's mark, which is zero for frames from another namespace);
/// `members` pairs each veth with its env for the forward check; `macs` and `addrs` pair it
/// with its own addresses, `vips` pairs an env's number with its virtual IP.
fn table() -> String {
    format!(
        "create table bridge weft
table bridge weft {{
 set ports {{ type ifname; }}
 map env_of {{ type ifname : mark; }}
 set members {{ type ifname . mark; }}
 set macs {{ type ifname . ether_addr; }}
 set addrs {{ type ifname . ipv4_addr; }}
 set vips {{ type mark . ipv4_addr; }}
 chain prerouting {{
  type filter hook prerouting priority -200; policy accept;
  iifname != @ports accept
  meta mark set iifname map @env_of
  iifname . ether saddr != @macs drop
  ether type arp jump arp_from_machine
  ether type ip jump ip_from_machine
  drop
 }}
 chain arp_from_machine {{
  iifname . arp saddr ether != @macs drop
  iifname . arp saddr ip @addrs accept
  meta mark . arp saddr ip @vips accept
  drop
 }}
 chain ip_from_machine {{
  iifname . ip saddr @addrs accept
  meta mark . ip saddr @vips accept
  drop
 }}
 chain forward {{
  type filter hook forward priority -200; policy accept;
  iifname != @ports accept
  oifname . meta mark != @members drop
 }}
 chain input {{
  type filter hook input priority -200; policy accept;
  iifname != @ports accept
  ip daddr {net}/16 ip daddr != {GATEWAY} drop
  meta mark set 0
 }}
}}
",
        net = Ipv4Addr::from(u32::from(GATEWAY) & 0xffff_0000),
    )
}

/// Runs `nft -f -` with `script` on its standard input: no file to stage.
async fn nft(script: &str) -> Result<(), CloudError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CloudError::Unsupported(format!("cannot run `nft`: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if out.status.success() {
        return Ok(());
    }
    Err(CloudError::Io(format!(
        "nftables refused weft's isolation of local envs: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Makes weft's bridge table when it does not exist yet; `create` makes two weft processes
/// that both found none make it once.
async fn ensure_table() -> Result<(), CloudError> {
    if super::network::run("nft", &["list", "table", "bridge", "weft"])
        .await
        .is_ok()
    {
        return Ok(());
    }
    match nft(&table()).await {
        Ok(()) => Ok(()),
        Err(_)
            if super::network::run("nft", &["list", "table", "bridge", "weft"])
                .await
                .is_ok() =>
        {
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// Runs `f` holding the host-wide lock of env numbers: two weft processes making machines of
/// one env at once must agree on its number, and one being released is not taken meanwhile.
fn locked<T>(f: impl FnOnce() -> Result<T, CloudError>) -> Result<T, CloudError> {
    let _lock = crate::lockfile::FileLock::take(&Path::new(ENV_NUMBERS).join(".lock"))?;
    f()
}

/// The number of the env `owner` (see `LocalProvider::env_key`), reserving the lowest free
/// one first when it has none. Never 0: a frame's mark is 0 when it comes from no listed veth.
pub fn env_number(owner: &str) -> Result<u32, CloudError> {
    locked(|| {
        if let Some(n) = held(owner) {
            return Ok(n);
        }
        for n in 1u32..=u32::from(u16::MAX) {
            if create_new(&Path::new(ENV_NUMBERS).join(n.to_string()), owner)? {
                return Ok(n);
            }
        }
        Err(CloudError::Io(
            "all env numbers of this host are taken".into(),
        ))
    })
}

fn held(owner: &str) -> Option<u32> {
    std::fs::read_dir(ENV_NUMBERS)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| std::fs::read_to_string(e.path()).is_ok_and(|held| held == owner))
        .and_then(|e| e.file_name().to_str()?.parse().ok())
}

/// The number env `owner` holds, if any.
pub fn held_number(owner: &str) -> Option<u32> {
    locked(|| Ok(held(owner))).ok().flatten()
}

/// Hands env `from`'s number to env `to` (its machines moved there), when `to` holds none:
/// the machines' veths stay listed under the same number.
pub fn rename_env(from: &str, to: &str) -> Result<(), CloudError> {
    locked(|| {
        if held(to).is_none() {
            if let Some(n) = held(from) {
                crate::lockfile::replace(
                    &Path::new(ENV_NUMBERS).join(n.to_string()),
                    to.as_bytes(),
                    0o644,
                )?;
            }
        }
        Ok(())
    })
}

/// Gives the env's number back (when its last machine is gone).
pub fn release_env(owner: &str) {
    let _ = locked(|| {
        if let Some(n) = held(owner) {
            let _ = std::fs::remove_file(Path::new(ENV_NUMBERS).join(n.to_string()));
        }
        Ok(())
    });
}

/// One machine's veth as the table lists it.
pub struct Port<'a> {
    /// The host end of its veth pair.
    pub veth: &'a str,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its env's number.
    pub env: u32,
}

impl Port<'_> {
    fn elements(&self) -> [(&'static str, String); 5] {
        let veth = format!("\"{}\"", self.veth);
        [
            ("ports", veth.clone()),
            ("env_of", format!("{veth} : {}", self.env)),
            ("members", format!("{veth} . {}", self.env)),
            ("macs", format!("{veth} . {}", mac_of(self.ip))),
            ("addrs", format!("{veth} . {}", self.ip)),
        ]
    }
}

/// Lists the machine's veth, before the machine starts: from then on it sends only from its
/// own addresses and reaches only its env. Whatever an earlier run of the same machine left
/// listed goes first.
pub async fn admit(port: &Port<'_>) -> Result<(), CloudError> {
    ensure_table().await?;
    forget(port).await;
    let script: String = port
        .elements()
        .iter()
        .map(|(set, element)| format!("add element bridge weft {set} {{ {element} }}\n"))
        .collect();
    nft(&script).await
}

/// Takes the machine's veth off the lists (it stopped); nothing when it is not listed.
pub async fn forget(port: &Port<'_>) {
    // One command each: a transaction would fail whole on the first element not there.
    for (set, element) in port.elements() {
        let key = if set == "env_of" {
            format!("\"{}\"", port.veth)
        } else {
            element
        };
        let _ = nft(&format!("delete element bridge weft {set} {{ {key} }}\n")).await;
    }
}

/// Lets the machines of env `env` send from `vip` (keepalived moves it between them).
pub async fn allow_vip(env: u32, vip: Ipv4Addr) -> Result<(), CloudError> {
    ensure_table().await?;
    nft(&format!(
        "add element bridge weft vips {{ {env} . {vip} }}\n"
    ))
    .await
}

/// No machine of env `env` may send from `vip` any more.
pub async fn deny_vip(env: u32, vip: Ipv4Addr) {
    let _ = nft(&format!(
        "delete element bridge weft vips {{ {env} . {vip} }}\n"
    ))
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_filters_the_bridge_network_and_lets_the_gateway_through() {
        let text = table();
        assert!(
            text.contains("ip daddr 10.77.0.0/16 ip daddr != 10.77.0.1 drop"),
            "{text}"
        );
        assert!(text.starts_with("create table bridge weft\n"), "{text}");
    }
}
