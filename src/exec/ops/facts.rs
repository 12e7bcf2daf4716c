//! Facts: what a host is, read fresh every time a goal asks (never cached across changes).

use serde_json::{json, Map, Value};

use crate::exec::session::{HostError, HostSession};

use super::fail;

/// One shell script printing `key=value` lines for the basic facts. It starts few processes
/// (uname, nproc, id twice, ip): each costs about a millisecond, most of what `system_info`
/// takes on a local host (issue 38). `uname -n` is the name `hostname` prints.
const BASIC: &str = r#"
set -f
set -- $(uname -snrm)
echo "os=$1"
echo "kernel=$3"
echo "arch=$4"
echo "hostname=$2"
if [ -r /etc/os-release ]; then
  . /etc/os-release
  echo "distro=${ID:-unknown}"
  echo "distro_version=${VERSION_ID:-}"
  echo "distro_name=${PRETTY_NAME:-}"
fi
if [ -d /run/systemd/system ]; then echo init=systemd; else echo init=other; fi
for pm in apt-get dnf yum apk; do
  if command -v "$pm" >/dev/null 2>&1; then echo "package_manager=${pm%-get}"; break; fi
done
echo "cpus=$(nproc 2>/dev/null || echo 1)"
mem=
if [ -r /proc/meminfo ]; then
  while read -r key value _; do
    if [ "$key" = MemTotal: ]; then mem=$((value / 1024)); break; fi
  done </proc/meminfo
fi
echo "memory_mb=$mem"
echo "user=$(id -un)"
echo "uid=$(id -u)"
addr=
set -- $(ip -4 route get 1.1.1.1 2>/dev/null)
while [ $# -gt 1 ]; do
  if [ "$1" = src ]; then addr=$2; break; fi
  shift
done
[ -n "$addr" ] || addr=$(hostname -I 2>/dev/null | awk '{ print $1 }')
echo "address=${addr:-127.0.0.1}"
"#;

/// The names `fact(name)` knows, beside the basic facts.
pub const NAMED: &[&str] = &["users", "groups", "packages", "ports"];

/// The basic facts: os, kernel, arch, hostname, distro, distro_version, distro_name, init,
/// package_manager, cpus, memory_mb, user, uid, address. Read once per goal: the probe costs a
/// round trip, and operations ask for them often.
pub fn basic(session: &HostSession) -> Result<Map<String, Value>, HostError> {
    session.cached_facts(|| probe_basic(session))
}

fn probe_basic(session: &HostSession) -> Result<Map<String, Value>, HostError> {
    let out = session.probe(BASIC)?;
    let mut facts = Map::new();
    for line in out.stdout.lines() {
        if let Some((key, value)) = line.split_once('=') {
            let value = match key {
                "cpus" | "memory_mb" | "uid" => value
                    .parse::<i64>()
                    .map_or_else(|_| json!(value), |n| json!(n)),
                _ => json!(value),
            };
            facts.insert(key.to_string(), value);
        }
    }
    facts.entry("package_manager").or_insert(json!(""));
    Ok(facts)
}

/// A heavier fact by name: `users`, `groups`, `packages` (name → version) or `ports`.
pub fn named(session: &HostSession, name: &str) -> Result<Value, HostError> {
    match name {
        "users" => {
            let out = session.probe("getent passwd")?;
            let users: Vec<Value> = out
                .stdout
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 7).then(|| {
                        json!({"name": f[0], "uid": f[2].parse::<i64>().unwrap_or(-1),
                               "gid": f[3].parse::<i64>().unwrap_or(-1), "home": f[5], "shell": f[6]})
                    })
                })
                .collect();
            Ok(Value::Array(users))
        }
        "groups" => {
            let out = session.probe("getent group")?;
            let groups: Vec<Value> = out
                .stdout
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 4).then(|| {
                        let members: Vec<&str> = f[3].split(',').filter(|m| !m.is_empty()).collect();
                        json!({"name": f[0], "gid": f[2].parse::<i64>().unwrap_or(-1), "members": members})
                    })
                })
                .collect();
            Ok(Value::Array(groups))
        }
        "packages" => Ok(Value::Object(super::packages::installed(session)?)),
        "ports" => {
            let out = session.probe("ss -Hltnu 2>/dev/null")?;
            let ports: Vec<Value> = out
                .stdout
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let local = f.get(4)?;
                    let (addr, port) = local.rsplit_once(':')?;
                    Some(json!({"proto": f[0], "address": addr, "port": port.parse::<i64>().ok()?}))
                })
                .collect();
            Ok(Value::Array(ports))
        }
        other => Err(fail(
            &format!("fact {other}"),
            format!("no fact `{other}`; facts are {}", NAMED.join(", ")),
        )),
    }
}
