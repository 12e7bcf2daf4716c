//! Virtual IPs of local envs: an address of the bridge's network and a VRRP router id, each
//! reserved system-wide for one env the way machine addresses are, so two envs on `weft0`
//! never share either (the limitation the OpenStack tool weft grows out of documented).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::network::{create_new, GATEWAY, RESERVATIONS};
use crate::cloud::{CloudError, VirtualIp};

/// Router id reservations, shared by every weft process on this host.
const ROUTER_IDS: &str = "/run/weft/vrids";
/// The bridge's network, 10.77.0.0/16.
const MASK: u32 = 0xffff_0000;

/// The file in `dir` whose content is `owner`, if any.
fn held_by(dir: &str, owner: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p).is_ok_and(|held| held == owner))
}

/// Why `ip` cannot be a VIP on the bridge, if it cannot.
fn outside(ip: Ipv4Addr) -> Option<String> {
    let net = u32::from(GATEWAY) & MASK;
    let bits = u32::from(ip);
    if bits & MASK != net {
        return Some(format!(
            "vip {ip} is outside the local machines' network {}/16: choose an address in it, \
             or leave `vip` out and weft picks a free one",
            Ipv4Addr::from(net)
        ));
    }
    if bits == net || bits == net | !MASK || ip == GATEWAY {
        return Some(format!(
            "vip {ip} is the network's own, broadcast or gateway address: choose another"
        ));
    }
    None
}

/// The VIP and router id of `owner` (an env), reserving them first when it has none: `wanted`
/// when given (an address another env or a machine holds is refused), else the highest free
/// address, away from machines', which are handed out from the bottom.
pub fn reserve(owner: &str, wanted: Option<Ipv4Addr>) -> Result<VirtualIp, CloudError> {
    if let Some(why) = wanted.and_then(outside) {
        return Err(CloudError::Config(why));
    }
    // The lbs of one env ask for its VIP in parallel, from this process or others: one at a
    // time looks, then reserves, under the host-wide lock.
    let _lock = super::network::lock()?;
    std::fs::create_dir_all(RESERVATIONS)?;
    std::fs::create_dir_all(ROUTER_IDS)?;
    let address = address(owner, wanted)?;
    let router_id = match held_by(ROUTER_IDS, owner).and_then(|p| number(&p)) {
        Some(id) => id,
        None => (1u8..=255)
            .find_map(|id| {
                let path = Path::new(ROUTER_IDS).join(id.to_string());
                match create_new(&path, owner) {
                    Ok(true) => Some(Ok(id)),
                    Ok(false) => None,
                    Err(err) => Some(Err(err)),
                }
            })
            .unwrap_or_else(|| {
                Err(CloudError::Io(
                    "all 255 VRRP router ids of this host are taken".into(),
                ))
            })?,
    };
    Ok(VirtualIp { address, router_id })
}

/// The VIP `owner` holds, if any.
pub fn held(owner: &str) -> Option<Ipv4Addr> {
    held_by(RESERVATIONS, owner).and_then(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<Ipv4Addr>().ok())
    })
}

fn address(owner: &str, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr, CloudError> {
    match (held(owner), wanted) {
        (Some(ip), None) => return Ok(ip),
        (Some(ip), Some(want)) if ip == want => return Ok(ip),
        // The project asks for another address now: the old one goes back.
        (Some(ip), Some(_)) => super::network::release_locked(ip, owner),
        (None, _) => {}
    }
    if let Some(ip) = wanted {
        let path = Path::new(RESERVATIONS).join(ip.to_string());
        if create_new(&path, owner)? {
            return Ok(ip);
        }
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        let who = if holder.starts_with("vip:") {
            "another env's virtual IP"
        } else {
            "a machine"
        };
        return Err(CloudError::Config(format!(
            "vip {ip} is taken by {who} on this host: choose another address, or leave `vip` out \
             and weft picks a free one"
        )));
    }
    let net = u32::from(GATEWAY) & MASK;
    for host in (2..=0xfffe_u32).rev() {
        let ip = Ipv4Addr::from(net | host);
        if create_new(&Path::new(RESERVATIONS).join(ip.to_string()), owner)? {
            return Ok(ip);
        }
    }
    Err(CloudError::Io(
        "no free address left in 10.77.0.0/16".into(),
    ))
}

/// What `reserve` would hand `owner`, found without writing anything (for `--check`): the
/// pair it holds, else the address and router id the next `reserve` would take, unless
/// another run takes them first.
pub fn peek(owner: &str, wanted: Option<Ipv4Addr>) -> Result<VirtualIp, CloudError> {
    if let Some(why) = wanted.and_then(outside) {
        return Err(CloudError::Config(why));
    }
    // No lock: taking one could create its file, and a check writes nothing.
    let free = |dir: &str, name: &str| !Path::new(dir).join(name).exists();
    let address = match (held(owner), wanted) {
        (Some(ip), None) => ip,
        (Some(ip), Some(want)) if ip == want => ip,
        (_, Some(want)) if free(RESERVATIONS, &want.to_string()) => want,
        (_, Some(want)) => {
            return Err(CloudError::Config(format!(
                "vip {want} is taken on this host: choose another address, or leave `vip` out \
                 and weft picks a free one"
            )))
        }
        (None, None) => {
            let net = u32::from(GATEWAY) & MASK;
            (2..=0xfffe_u32)
                .rev()
                .map(|host| Ipv4Addr::from(net | host))
                .find(|ip| free(RESERVATIONS, &ip.to_string()))
                .ok_or_else(|| CloudError::Io("no free address left in 10.77.0.0/16".into()))?
        }
    };
    let router_id = match held_by(ROUTER_IDS, owner).and_then(|p| number(&p)) {
        Some(id) => id,
        None => (1u8..=255)
            .find(|id| free(ROUTER_IDS, &id.to_string()))
            .ok_or_else(|| {
                CloudError::Io("all 255 VRRP router ids of this host are taken".into())
            })?,
    };
    Ok(VirtualIp { address, router_id })
}

fn number(path: &Path) -> Option<u8> {
    path.file_name()?.to_str()?.parse().ok()
}

/// Hands the VIP and router id of env `from` to env `to` (its machines moved there), each
/// when `to` holds none: the address and VRRP instance the lbs run stay the same.
pub fn rename(from: &str, to: &str) -> Result<(), CloudError> {
    let _lock = super::network::lock()?;
    for dir in [RESERVATIONS, ROUTER_IDS] {
        if held_by(dir, to).is_none() {
            if let Some(path) = held_by(dir, from) {
                crate::lockfile::replace(&path, to.as_bytes(), 0o644)?;
            }
        }
    }
    Ok(())
}

/// Gives the VIP and router id of `owner` back.
pub fn release(owner: &str) {
    let Ok(_lock) = super::network::lock() else {
        return;
    };
    for dir in [RESERVATIONS, ROUTER_IDS] {
        if let Some(path) = held_by(dir, owner) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_outside_the_bridge_network_are_refused() {
        assert!(outside("10.77.3.4".parse().unwrap()).is_none());
        let why = outside("192.168.1.10".parse().unwrap()).unwrap();
        assert!(
            why.contains("outside the local machines' network 10.77.0.0/16"),
            "{why}"
        );
        assert!(outside("10.77.0.1".parse().unwrap()).is_some());
        assert!(outside("10.77.255.255".parse().unwrap()).is_some());
        assert!(outside("10.78.0.5".parse().unwrap()).is_some());
    }
}
