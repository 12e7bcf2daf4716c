//! Users, groups, `authorized_keys` entries, cron entries, git checkouts, virtualenvs and
//! tar archives.

use crate::exec::session::{HostError, HostSession};
use crate::shell::quote;

use super::files::{self, FileSpec};
use super::{fail, OpResult};

/// What a user should look like; unset fields are left alone.
#[derive(Debug, Clone, Default)]
pub struct UserSpec {
    /// Login shell.
    pub shell: Option<String>,
    /// Home folder (created with the user).
    pub home: Option<String>,
    /// The primary group (else a group of the user's own name, as `useradd` makes).
    pub group: Option<String>,
    /// Supplementary groups the user must be in.
    pub groups: Vec<String>,
    /// A system account.
    pub system: bool,
    /// Remove the user instead.
    pub absent: bool,
}

fn getent(session: &HostSession, db: &str, name: &str) -> Result<Option<Vec<String>>, HostError> {
    let out = session.probe(&format!("getent {db} {}", quote(name)))?;
    Ok((out.code == 0).then(|| out.stdout.trim().split(':').map(String::from).collect()))
}

/// Makes user `name` exist as `spec` says (or not exist, with `absent`).
pub fn user(session: &HostSession, name: &str, spec: &UserSpec) -> OpResult {
    let entry = getent(session, "passwd", name)?;
    let q = quote(name);
    if spec.absent {
        if entry.is_some() {
            session.act(&format!("userdel -- {q}"))?;
        }
        return Ok(session.report(&format!("user {name} absent"), entry.is_some()));
    }
    let mut reasons = Vec::new();
    match &entry {
        None => {
            let mut command = String::from("useradd -m");
            if spec.system {
                command.push_str(" --system");
            }
            if let Some(shell) = &spec.shell {
                command.push_str(&format!(" -s {}", quote(shell)));
            }
            if let Some(home) = &spec.home {
                command.push_str(&format!(" -d {}", quote(home)));
            }
            if let Some(group) = &spec.group {
                command.push_str(&format!(" -g {}", quote(group)));
            }
            session.act(&format!("{command} -- {q}"))?;
            reasons.push("created".to_string());
        }
        Some(fields) => {
            if let Some(shell) = spec.shell.as_ref().filter(|s| fields.get(6) != Some(*s)) {
                session.act(&format!("usermod -s {} -- {q}", quote(shell)))?;
                reasons.push(format!("shell {shell}"));
            }
            if let Some(home) = spec.home.as_ref().filter(|h| fields.get(5) != Some(*h)) {
                session.act(&format!("usermod -d {} -m -- {q}", quote(home)))?;
                reasons.push(format!("home {home}"));
            }
            if let Some(group) = &spec.group {
                let gid = getent(session, "group", group)?.and_then(|g| g.get(2).cloned());
                if gid.is_none() || fields.get(3) != gid.as_ref() {
                    session.act(&format!("usermod -g {} -- {q}", quote(group)))?;
                    reasons.push(format!("group {group}"));
                }
            }
        }
    }
    if !spec.groups.is_empty() {
        let out = session.probe(&format!("id -nG -- {q} 2>/dev/null"))?;
        let current: Vec<&str> = out.stdout.split_whitespace().collect();
        let missing: Vec<&String> = spec
            .groups
            .iter()
            .filter(|g| !current.contains(&g.as_str()))
            .collect();
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(",");
            session.act(&format!("usermod -aG {} -- {q}", quote(&list)))?;
            reasons.push(format!("groups +{list}"));
        }
    }
    let step = if reasons.is_empty() {
        format!("user {name}")
    } else {
        format!("user {name} ({})", reasons.join(", "))
    };
    Ok(session.report(&step, !reasons.is_empty()))
}

/// Makes group `name` exist (or not, with `absent`).
pub fn group(session: &HostSession, name: &str, system: bool, absent: bool) -> OpResult {
    let exists = getent(session, "group", name)?.is_some();
    let q = quote(name);
    if absent {
        if exists {
            session.act(&format!("groupdel -- {q}"))?;
        }
        return Ok(session.report(&format!("group {name} absent"), exists));
    }
    if !exists {
        session.act(&format!(
            "groupadd {}-- {q}",
            if system { "--system " } else { "" }
        ))?;
    }
    Ok(session.report(&format!("group {name}"), !exists))
}

/// Makes `key` present in (or, with `absent`, gone from) `user`'s `~/.ssh/authorized_keys`.
/// With `exclusive`, `keys` is the whole set and every other key is removed.
pub fn authorized_keys(
    session: &HostSession,
    user: &str,
    keys: &[String],
    absent: bool,
    exclusive: bool,
) -> OpResult {
    let home = getent(session, "passwd", user)?
        .and_then(|f| f.get(5).cloned())
        .ok_or_else(|| {
            fail(
                &format!("authorized_keys {user}"),
                format!("no user `{user}`"),
            )
        })?;
    let dir = format!("{home}/.ssh");
    let path = format!("{dir}/authorized_keys");
    let current = session.read_regular_file(&path)?;
    let text = current
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default()
        .into_owned();
    // Keys compare by type and data, not by comment.
    let id = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let wanted: Vec<String> = keys.iter().map(|k| id(k)).collect();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let before = lines.clone();
    if absent {
        lines.retain(|l| !wanted.contains(&id(l)));
    } else {
        if exclusive {
            lines.retain(|l| l.trim().is_empty() || l.starts_with('#') || wanted.contains(&id(l)));
        }
        for key in keys {
            if !lines.iter().any(|l| id(l) == id(key)) {
                lines.push(key.trim().to_string());
            }
        }
    }
    let step = format!("authorized_keys {user}");
    if lines == before {
        return Ok(session.report(&step, false));
    }
    let owner = Some(user.to_string());
    files::directory(session, &dir, Some(0o700), owner.as_deref(), None)?;
    let mut content = lines.join("\n");
    content.push('\n');
    let spec = FileSpec {
        content: Some(content.into_bytes()),
        mode: Some(0o600),
        owner,
        ..FileSpec::default()
    };
    files::file(session, &path, &spec)
}

/// Makes a cron entry named `name` run `command` on `schedule` (`*/5 * * * *`) for `user`,
/// in `/etc/cron.d/weft-<name>`; with `absent`, removes it.
pub fn cron(
    session: &HostSession,
    name: &str,
    schedule: &str,
    command: &str,
    user: &str,
    absent: bool,
) -> OpResult {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(fail(
            "cron",
            format!("cron name `{name}` may only hold letters, digits, `-` and `_`"),
        ));
    }
    let path = format!("/etc/cron.d/weft-{name}");
    if absent {
        return files::absent(session, &path);
    }
    if session.probe("test -d /etc/cron.d")?.code != 0 {
        return Err(fail(
            "cron",
            "this host has no /etc/cron.d: install cron first",
        ));
    }
    if schedule.split_whitespace().count() != 5 && !schedule.starts_with('@') {
        return Err(fail(
            "cron",
            format!("schedule `{schedule}` needs five fields or an @word"),
        ));
    }
    let content = format!("# managed by weft: {name}\n{schedule} {user} {command}\n");
    files::file(
        session,
        &path,
        &FileSpec {
            content: Some(content.into_bytes()),
            mode: Some(0o644),
            ..FileSpec::default()
        },
    )
}

/// Makes `dest` a git checkout of `repo` at `version` (a branch, tag or commit), optionally
/// fetching with a deploy key file on the host.
pub fn git(
    session: &HostSession,
    repo: &str,
    dest: &str,
    version: &str,
    key: Option<&str>,
) -> OpResult {
    // A URL with a token read on first use is compared with the checkout's as it is.
    let repo = &*session.reveal(repo)?;
    let ssh = key
        .map(|k| {
            format!(
                "GIT_SSH_COMMAND={} ",
                quote(&format!("ssh -i {} -o IdentitiesOnly=yes", quote(k)))
            )
        })
        .unwrap_or_default();
    let d = quote(dest);
    let exists = session.probe(&format!("test -d {d}/.git"))?.code == 0;
    let step = format!("git {dest} @ {version}");
    if exists {
        let origin = session.probe(&format!("git -C {d} config --get remote.origin.url"))?;
        if origin.stdout.trim() != repo {
            return Err(fail(
                &step,
                format!(
                    "{dest} is a checkout of {}, not {repo}",
                    origin.stdout.trim()
                ),
            ));
        }
    } else {
        session.act(&format!(
            "{ssh}git clone --quiet --no-checkout -- {} {d}",
            quote(repo)
        ))?;
    }
    let head = session
        .probe(&format!("git -C {d} rev-parse HEAD 2>/dev/null"))?
        .stdout
        .trim()
        .to_string();
    // What `version` names now: a local commit, else what the remote has after a fetch.
    let resolve = |session: &HostSession| -> Result<String, HostError> {
        let v = quote(version);
        let out = session.probe(&format!(
            "git -C {d} rev-parse --verify --quiet origin/{v}^{{commit}} || git -C {d} rev-parse --verify --quiet {v}^{{commit}}"
        ))?;
        Ok(out
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string())
    };
    let mut wanted = resolve(session)?;
    let is_commit = version.len() >= 7
        && version.chars().all(|c| c.is_ascii_hexdigit())
        && wanted.starts_with(version);
    if exists && !is_commit && !session.is_check() {
        session.act(&format!("{ssh}git -C {d} fetch --quiet --tags origin"))?;
        wanted = resolve(session)?;
    }
    // A fresh clone has HEAD set but no files (`--no-checkout`): it always checks out.
    if exists && !wanted.is_empty() && wanted == head {
        return Ok(session.report(&step, false));
    }
    if wanted.is_empty() && !session.is_check() {
        return Err(fail(
            &step,
            format!("`{version}` is not a branch, tag or commit of {repo}"),
        ));
    }
    session.act(&format!(
        "git -C {d} checkout --quiet --force {} --",
        quote(if wanted.is_empty() { version } else { &wanted })
    ))?;
    Ok(session.report(&step, true))
}

/// Makes `path` a Python virtualenv made with `python` (default `python3`).
pub fn virtualenv(session: &HostSession, path: &str, python: Option<&str>) -> OpResult {
    let p = quote(path);
    let exists = session.probe(&format!("test -x {p}/bin/python"))?.code == 0;
    if !exists {
        session.act(&format!(
            "{} -m venv -- {p}",
            quote(python.unwrap_or("python3"))
        ))?;
    }
    Ok(session.report(&format!("virtualenv {path}"), !exists))
}

/// Installs into the virtualenv at `venv`: `packages` (pip requirement strings, or paths of an
/// sdist or wheel on the host) and the requirements file `requirements`, when given.
pub fn pip(
    session: &HostSession,
    venv: &str,
    packages: &[String],
    requirements: Option<&str>,
) -> OpResult {
    let pip = format!("{}/bin/pip", venv.trim_end_matches('/'));
    let mut args: Vec<String> = packages.to_vec();
    if let Some(req) = requirements {
        args.push("-r".into());
        args.push(req.to_string());
    }
    if args.is_empty() {
        return Err(fail(
            "pip",
            "nothing to install: give packages or a requirements file",
        ));
    }
    let list = crate::shell::join(&args);
    let pip = format!("{} --disable-pip-version-check", quote(&pip));
    let step = format!("pip {venv}: {}", args.join(" "));
    // pip's resolver in dry-run mode says what it would install; nothing means satisfied. A
    // project folder or archive on the host is always installed: pip cannot tell whether its
    // files changed, and a dry run would build it once more for nothing.
    let local = packages.iter().any(|p| p.contains('/'));
    if !local {
        let dry = session.probe(&format!(
            "{pip} install --dry-run --quiet --report - {list} 2>/dev/null"
        ))?;
        if dry.code == 0 && !dry.stdout.contains("\"download_info\"") {
            return Ok(session.report(&step, false));
        }
    }
    session.act(&format!("{pip} install --quiet {list}"))?;
    Ok(session.report(&step, true))
}

/// Extracts the tar.gz `archive` (on the host) into `dest` unless `dest/<marker>` exists. The
/// files belong to whoever extracts them, not to the uid that made the archive.
pub fn extract(session: &HostSession, archive: &str, dest: &str, marker: &str) -> OpResult {
    let done = session.probe(&format!(
        "test -e {}",
        quote(&format!("{}/{marker}", dest.trim_end_matches('/')))
    ))?;
    let step = format!("extract {archive} into {dest}");
    if done.code == 0 {
        return Ok(session.report(&step, false));
    }
    session.act(&format!(
        "mkdir -p -- {d} && tar --no-same-owner -xzf {} -C {d}",
        quote(archive),
        d = quote(dest)
    ))?;
    Ok(session.report(&step, true))
}

/// Packs the folder `source` (on the host) into the tar.gz `archive` unless it exists.
pub fn archive(session: &HostSession, source: &str, archive: &str) -> OpResult {
    let exists = session.probe(&format!("test -e {}", quote(archive)))?.code == 0;
    let step = format!("archive {source} into {archive}");
    if exists {
        return Ok(session.report(&step, false));
    }
    session.act(&format!(
        "tar -czf {} -C {} .",
        quote(archive),
        quote(source)
    ))?;
    Ok(session.report(&step, true))
}
