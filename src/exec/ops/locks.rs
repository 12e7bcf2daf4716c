//! Named locks on a host (`host.lock`, `host.unlock`), with who holds each and since when.
//!
//! A lock is a folder made with `mkdir` (atomic: of two runs, one makes it) inside a folder
//! only the login user can enter, mode 0700: `/var/lib/weft/locks` for root, else
//! `~/.local/state/weft/locks`. No other account of the host can plant a lock there, or swap
//! one for a link. The lock's `owner` file says who took it: the controller's `user@host:pid`,
//! the run (so a pid the kernel gave again is never taken for the old run), when (the host's
//! clock) and for what.

use std::time::{Duration, Instant};

use crate::exec::session::{HostError, HostSession};
use crate::shell::quote;

use super::{fail, waits, OpResult};

/// Who asks for a lock: this run, as the owner file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// `user@host:pid` of the controller's weft process (`env().runner`).
    pub runner: String,
    /// This process's run id: a pid given again by the kernel is a new run.
    pub run: String,
    /// What the lock is taken for, e.g. the goal.
    pub what: String,
}

/// How `lock` behaves when another run holds the lock.
#[derive(Debug, Clone, Default)]
pub struct LockSpec {
    /// Wait this long for the holder to release it (checked every second); `None` fails at once.
    pub wait: Option<Duration>,
    /// Take it over (`--break-lock`): the broken lock is logged, and recorded on the host.
    pub force: bool,
}

/// Who holds a lock, as its owner file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `user@host:pid`, or what an unreadable owner file held.
    pub runner: String,
    /// The holder's run id.
    pub run: String,
    /// What it was taken for.
    pub what: String,
    /// The host's clock when it was taken (unix seconds).
    pub since: Option<i64>,
    /// How long it has been held, by the host's clock.
    pub age: Option<Duration>,
}

impl Owner {
    /// Whether `holder`'s run holds it.
    pub fn is(&self, holder: &Holder) -> bool {
        self.runner == holder.runner && self.run == holder.run
    }

    /// `alice@ci:42 (site_deploy), 3m 5s old`, for messages.
    pub fn describe(&self) -> String {
        let mut text = self.runner.clone();
        if !self.what.is_empty() {
            text.push_str(&format!(" ({})", self.what));
        }
        match self.age {
            Some(age) => text.push_str(&format!(", {} old", waits::human(age))),
            None => text.push_str(", age unknown"),
        }
        text
    }
}

/// The shell prelude that sets `$d` to the lock folder, making it when missing, and fails
/// unless it is the login user's own folder and not a link.
const FOLDER: &str = concat!(
    "umask 077; d=/var/lib/weft/locks; ",
    "[ \"$(id -u)\" = 0 ] || d=\"$HOME/.local/state/weft/locks\"; ",
    "[ -d \"$d\" ] || mkdir -p -m 0700 -- \"$d\" || exit 3; ",
    "if [ -L \"$d\" ] || [ ! -O \"$d\" ]; then echo \"$d is not the login user's own folder\" >&2; exit 3; fi"
);

/// `FOLDER` for reading: a missing folder holds no lock, and is not made (`--check`).
const READ_FOLDER: &str = concat!(
    "d=/var/lib/weft/locks; ",
    "[ \"$(id -u)\" = 0 ] || d=\"$HOME/.local/state/weft/locks\"; ",
    "[ -d \"$d\" ] || exit 0; ",
    "if [ -L \"$d\" ] || [ ! -O \"$d\" ]; then echo \"$d is not the login user's own folder\" >&2; exit 3; fi"
);

/// The file name of lock `name` in the folder: letters, digits, `_`, `-` and `.` (but not a
/// leading one) as they are, every other byte as `%XX`, so a name is never a path.
pub fn file_name(name: &str) -> String {
    let mut out = String::new();
    for (i, byte) in name.bytes().enumerate() {
        let plain = byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-';
        if plain || (byte == b'.' && i > 0) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Refuses a name that cannot be a lock: empty, or too long for a file name once encoded.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a lock needs a name".into());
    }
    if file_name(name).len() > 240 {
        return Err(format!("the lock name `{name}` is too long"));
    }
    Ok(())
}

/// The lines of the owner file `holder` writes (the time is the host's, filled in there).
fn owner_lines(holder: &Holder) -> String {
    [
        quote(&format!("runner={}", holder.runner)),
        quote(&format!("run={}", holder.run)),
        "\"since=$(date +%s)\"".to_string(),
        quote(&format!("what={}", one_line(&holder.what))),
    ]
    .join(" ")
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Writes `$l/owner` through a fresh name and a rename: a reader never sees half of it.
fn write_owner(holder: &Holder) -> String {
    format!(
        "printf '%s\\n' {} > \"$l/owner.new\" && mv -f -- \"$l/owner.new\" \"$l/owner\"",
        owner_lines(holder)
    )
}

/// Reads an owner file printed after `held`, with the host's `now=` line last.
fn parse_owner(text: &str) -> Owner {
    let mut owner = Owner {
        runner: String::new(),
        run: String::new(),
        what: String::new(),
        since: None,
        age: None,
    };
    let mut now = None;
    let mut other = Vec::new();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("runner", v)) => owner.runner = v.to_string(),
            Some(("run", v)) => owner.run = v.to_string(),
            Some(("what", v)) => owner.what = v.to_string(),
            Some(("since", v)) => owner.since = v.trim().parse().ok(),
            Some(("now", v)) => now = v.trim().parse::<i64>().ok(),
            _ if !line.trim().is_empty() => other.push(line.trim()),
            _ => {}
        }
    }
    if owner.runner.is_empty() {
        // Not an owner file weft wrote (or none yet): say what it holds.
        owner.runner = if other.is_empty() {
            "an unknown run".into()
        } else {
            other.join(" ")
        };
    }
    if let (Some(since), Some(now)) = (owner.since, now) {
        owner.age = Some(Duration::from_secs(now.saturating_sub(since).max(0) as u64));
    }
    owner
}

/// The command that prints `held`, the owner file and the host's clock when lock `name` is
/// held, and nothing when it is free.
fn read_command(name: &str) -> String {
    format!(
        "{READ_FOLDER}; l=\"$d\"/{}; if [ -d \"$l\" ]; then echo held; cat -- \"$l/owner\" 2>/dev/null; echo; echo \"now=$(date +%s)\"; fi",
        quote(&file_name(name))
    )
}

/// Who holds lock `name` on the host, if anyone (read also under `--check`).
pub fn owner(session: &HostSession, name: &str) -> Result<Option<Owner>, HostError> {
    let out = session.probe(&read_command(name))?;
    if out.code != 0 {
        return Err(folder_error(name, &out.stderr));
    }
    Ok(out.stdout.strip_prefix("held\n").map(parse_owner))
}

fn folder_error(name: &str, stderr: &str) -> HostError {
    fail(
        &format!("lock {name}"),
        format!("cannot use the lock folder: {}", stderr.trim()),
    )
}

/// Runs a step of a lock, quietly, whatever its exit code: `--check` was handled before.
fn quiet(session: &HostSession, command: &str) -> Result<crate::transport::ExecOutput, HostError> {
    let options = crate::exec::session::RunOptions {
        check_safe: true,
        quiet: true,
        fail_on_error: false,
        ..Default::default()
    };
    Ok(session.run(command, &options)?.unwrap_or_default())
}

/// Appends to the folder's `breaks.log` that `holder` broke lock `name` held by `owner`.
fn record_break(name: &str, holder: &Holder, owner: &Owner) -> String {
    let line = one_line(&format!(
        "{} broke {name}, held by {}",
        holder.runner,
        owner.describe()
    ));
    format!(
        "printf '%s %s\\n' \"$(date -u +%FT%TZ)\" {} >> \"$d/breaks.log\"",
        quote(&line)
    )
}

/// Takes lock `name` for `holder`: `true` when taken now, `false` when this run holds it
/// already. Held by another run, it waits up to `spec.wait`, then fails naming the holder
/// and its age, unless `spec.force` takes it over. Under `--check` it takes nothing and says
/// whether it could.
pub fn lock(session: &HostSession, name: &str, holder: &Holder, spec: &LockSpec) -> OpResult {
    check_name(name).map_err(|why| fail(&format!("lock {name}"), why))?;
    let step = format!("lock {name}");
    if session.is_check() {
        if let Some(owner) = owner(session, name)? {
            if !owner.is(holder) {
                session.log(&format!(
                    "{name} is locked by {}: the run would {}",
                    owner.describe(),
                    if spec.force {
                        "break it"
                    } else {
                        "wait or fail"
                    }
                ));
            }
        }
        return Ok(session.report(&step, true));
    }
    let take = format!(
        "{FOLDER}; l=\"$d\"/{}; if mkdir -- \"$l\" 2>/dev/null; then {} && echo taken; else echo held; cat -- \"$l/owner\" 2>/dev/null; echo; echo \"now=$(date +%s)\"; fi",
        quote(&file_name(name)),
        write_owner(holder)
    );
    let started = Instant::now();
    loop {
        let out = quiet(session, &take)?;
        if out.code != 0 {
            return Err(folder_error(name, &out.stderr));
        }
        let Some(held) = out.stdout.strip_prefix("held\n") else {
            return Ok(session.report(&step, true));
        };
        let owner = parse_owner(held);
        if owner.is(holder) {
            return Ok(session.report(&format!("{step} (held by this run)"), false));
        }
        if spec.force {
            session.log(&format!(
                "breaking the lock of {} (`{name}`)",
                owner.describe()
            ));
            let command = format!(
                "{FOLDER}; l=\"$d\"/{}; mkdir -p -- \"$l\" && {} && {}",
                quote(&file_name(name)),
                write_owner(holder),
                record_break(name, holder, &owner)
            );
            session.act(&command)?;
            return Ok(session.report(&format!("{step} (broken)"), true));
        }
        let waited = started.elapsed();
        match spec.wait {
            Some(limit) if waited < limit => {
                waits::pause(session, Duration::from_secs(1).min(limit - waited), &step)?;
            }
            Some(limit) => {
                return Err(fail(
                    &step,
                    format!(
                        "still held by {}, after waiting {}",
                        owner.describe(),
                        waits::human(limit)
                    ),
                ))
            }
            None => return Err(fail(&step, format!("held by {}", owner.describe()))),
        }
    }
}

/// Releases lock `name` when `holder`'s run holds it (in one command, so a lock another run
/// took over meanwhile stays theirs): `true` when it removed it. With `force`, removes it
/// whoever holds it, and records whose it was in the folder's `breaks.log`. Under `--check`
/// nothing was taken, so nothing is released.
pub fn unlock(session: &HostSession, name: &str, holder: &Holder, force: bool) -> OpResult {
    check_name(name).map_err(|why| fail(&format!("unlock {name}"), why))?;
    let step = format!("unlock {name}");
    if session.is_check() {
        return Ok(false);
    }
    let mine = format!(
        "grep -qxF -- {} \"$l/owner\" 2>/dev/null && grep -qxF -- {} \"$l/owner\"",
        quote(&format!("runner={}", holder.runner)),
        quote(&format!("run={}", holder.run))
    );
    let command = format!(
        "{FOLDER}; l=\"$d\"/{}; if [ ! -d \"$l\" ]; then echo free; elif {mine}; then rm -rf -- \"$l\" && echo released; else echo held; cat -- \"$l/owner\" 2>/dev/null; echo; echo \"now=$(date +%s)\"; fi",
        quote(&file_name(name))
    );
    let out = session.always(true, || quiet(session, &command))?;
    if out.code != 0 {
        return Err(folder_error(name, &out.stderr));
    }
    match out.stdout.lines().next() {
        Some("released") => Ok(session.report(&step, true)),
        Some("held") if force => {
            let owner = parse_owner(out.stdout.strip_prefix("held\n").unwrap_or_default());
            let command = format!(
                "{FOLDER}; l=\"$d\"/{}; rm -rf -- \"$l\" && {}",
                quote(&file_name(name)),
                record_break(name, holder, &owner)
            );
            session.always(true, || session.act(&command))?;
            Ok(session.report(
                &format!("{step} (broken, held by {})", owner.describe()),
                true,
            ))
        }
        Some("held") => {
            let owner = parse_owner(out.stdout.strip_prefix("held\n").unwrap_or_default());
            session.log(&format!(
                "{name} is held by {}, not this run: left alone",
                owner.describe()
            ));
            Ok(session.report(&step, false))
        }
        _ => Ok(session.report(&format!("{step} (not locked)"), false)),
    }
}
