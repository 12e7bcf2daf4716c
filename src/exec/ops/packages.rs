//! Packages through the host's own manager (apt, dnf/yum, apk), chosen by what the host has.

use serde_json::{json, Map, Value};

use crate::exec::session::{HostError, HostSession};
use crate::shell::quote;

use super::{fail, OpResult};

/// A package manager weft drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    /// Debian, Ubuntu.
    Apt,
    /// Fedora, RHEL and friends (`dnf`, else `yum`).
    Dnf(&'static str),
    /// Alpine.
    Apk,
}

/// What a `packages` call wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageState {
    /// Installed, any version.
    Present,
    /// Not installed.
    Absent,
    /// Installed at the newest version the index knows.
    Latest,
}

impl PackageState {
    /// Parses `present`, `absent` or `latest`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "present" => Ok(PackageState::Present),
            "absent" => Ok(PackageState::Absent),
            "latest" => Ok(PackageState::Latest),
            other => Err(format!(
                "state `{other}` is not `present`, `absent` or `latest`"
            )),
        }
    }
}

/// The host's package manager.
pub fn manager(session: &HostSession) -> Result<Manager, HostError> {
    let out = session.probe("for m in apt-get dnf yum apk; do command -v $m >/dev/null 2>&1 && { echo $m; break; }; done")?;
    match out.stdout.trim() {
        "apt-get" => Ok(Manager::Apt),
        "dnf" => Ok(Manager::Dnf("dnf")),
        "yum" => Ok(Manager::Dnf("yum")),
        "apk" => Ok(Manager::Apk),
        _ => Err(fail(
            "packages",
            "no supported package manager (apt, dnf, yum, apk) on this host",
        )),
    }
}

/// Installed packages, name → version.
pub fn installed(session: &HostSession) -> Result<Map<String, Value>, HostError> {
    let command = match manager(session)? {
        Manager::Apt => {
            r#"dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Version}\n' | awk -F'\t' '$1 ~ /^ii/ { print $2 "\t" $3 }'"#
        }
        Manager::Dnf(_) => r"rpm -qa --qf '%{NAME}\t%{VERSION}-%{RELEASE}\n'",
        Manager::Apk => {
            r"apk list --installed 2>/dev/null | awk '{ print $1 }' | sed -E 's/-([0-9][^-]*-r[0-9]+)$/\t\1/'"
        }
    };
    let out = session.probe(command)?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(name, version)| (name.to_string(), json!(version)))
        .collect())
}

fn names(list: &[String]) -> String {
    list.iter().map(|n| quote(n)).collect::<Vec<_>>().join(" ")
}

/// Brings `wanted` to `state`; the index is refreshed only when something must be installed.
pub fn packages(session: &HostSession, wanted: &[String], state: PackageState) -> OpResult {
    let manager = manager(session)?;
    let have = installed(session)?;
    let step = |what: &str| format!("packages {what}: {}", wanted.join(" "));
    let (todo, verb): (Vec<String>, &str) = match state {
        PackageState::Present => (
            wanted
                .iter()
                .filter(|p| !have.contains_key(*p))
                .cloned()
                .collect(),
            "install",
        ),
        PackageState::Absent => (
            wanted
                .iter()
                .filter(|p| have.contains_key(*p))
                .cloned()
                .collect(),
            "remove",
        ),
        PackageState::Latest => (outdated(session, manager, wanted, &have)?, "upgrade"),
    };
    if todo.is_empty() {
        return Ok(session.report(
            &step(match state {
                PackageState::Present => "present",
                PackageState::Absent => "absent",
                PackageState::Latest => "latest",
            }),
            false,
        ));
    }
    const APT_LOCK_WAIT: &str = "-o DPkg::Lock::Timeout=300";
    let list = names(&todo);
    let command = match (manager, state) {
        // Another apt (unattended-upgrades, a second run) may hold dpkg's lock: wait for it.
        (Manager::Apt, PackageState::Absent) => format!("DEBIAN_FRONTEND=noninteractive apt-get {APT_LOCK_WAIT} remove -y -q {list}"),
        // An empty or day-old index is refreshed first, and only then.
        (Manager::Apt, _) => format!(
            "if [ -z \"$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)\" ]; then apt-get {APT_LOCK_WAIT} update -q; fi && \
             DEBIAN_FRONTEND=noninteractive apt-get {APT_LOCK_WAIT} install -y -q --no-install-recommends {list}"
        ),
        (Manager::Dnf(bin), PackageState::Absent) => format!("{bin} remove -y {list}"),
        (Manager::Dnf(bin), PackageState::Present) => format!("{bin} install -y {list}"),
        (Manager::Dnf(bin), PackageState::Latest) => format!("{bin} upgrade -y {list} || {bin} install -y {list}"),
        (Manager::Apk, PackageState::Absent) => format!("apk del {list}"),
        (Manager::Apk, PackageState::Present) => format!("apk add {list}"),
        (Manager::Apk, PackageState::Latest) => format!("apk add --upgrade {list}"),
    };
    session.act(&command)?;
    Ok(session.report(&format!("packages {verb}: {}", todo.join(" ")), true))
}

/// The wanted packages that are missing or have a newer version in the index.
fn outdated(
    session: &HostSession,
    manager: Manager,
    wanted: &[String],
    have: &Map<String, Value>,
) -> Result<Vec<String>, HostError> {
    let list = names(wanted);
    let (command, pick): (String, fn(&str) -> Option<String>) = match manager {
        Manager::Apt => (
            format!("apt-get -s -q install --only-upgrade {list} 2>/dev/null"),
            |l| {
                l.strip_prefix("Inst ")
                    .map(|r| r.split_whitespace().next().unwrap_or_default().to_string())
            },
        ),
        Manager::Dnf(bin) => (format!("{bin} -q check-update {list} 2>/dev/null"), |l| {
            l.split_whitespace()
                .next()
                .map(|n| n.rsplit_once('.').map_or(n, |(n, _)| n).to_string())
        }),
        Manager::Apk => (
            format!("apk version -l '<' {list} 2>/dev/null | tail -n +2"),
            |l| {
                l.split_whitespace()
                    .next()
                    .map(|n| n.split('-').next().unwrap_or(n).to_string())
            },
        ),
    };
    let out = session.probe(&command)?;
    let mut todo: Vec<String> = wanted
        .iter()
        .filter(|p| !have.contains_key(*p))
        .cloned()
        .collect();
    for name in out.stdout.lines().filter_map(pick) {
        if wanted.contains(&name) && !todo.contains(&name) {
            todo.push(name);
        }
    }
    Ok(todo)
}
