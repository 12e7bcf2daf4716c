//! Facts of paths on a host (`exists`, `readlink`, `list`) and file checksums (`checksum`,
//! `verify`): each one read-only command, run also under `--check`.

use crate::exec::session::{HostError, HostSession};
use crate::shell::quote;

use super::fail;
use super::files::{require_file, stat_and_sum};

/// Whether anything is at `path`: a file, a folder, a link (even one whose target is gone).
pub fn exists(session: &HostSession, path: &str) -> Result<bool, HostError> {
    let q = quote(path);
    Ok(session.probe(&format!("[ -e {q} ] || [ -L {q} ]"))?.code == 0)
}

/// Whether a folder (`folder`) or a regular file (not) is at `path`, links followed, as
/// `test -d` / `test -f`.
pub fn is_kind(session: &HostSession, path: &str, folder: bool) -> Result<bool, HostError> {
    let test = if folder { "-d" } else { "-f" };
    Ok(session.probe(&format!("[ {test} {} ]", quote(path)))?.code == 0)
}

/// Where the link at `path` points, as it was made (not resolved); `None` when `path` is not a
/// link or is missing.
pub fn readlink(session: &HostSession, path: &str) -> Result<Option<String>, HostError> {
    let q = quote(path);
    let out = session.probe(&format!("[ -L {q} ] && exec readlink -- {q}"))?;
    if out.code != 0 {
        return Ok(None);
    }
    let target = out.stdout.strip_suffix('\n').unwrap_or(&out.stdout);
    Ok(Some(target.to_string()))
}

/// How `list` orders names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// By name, byte by byte.
    #[default]
    Name,
    /// By modification time, oldest first.
    Time,
}

impl Order {
    /// Parses `name` or `time`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "name" => Ok(Order::Name),
            "time" => Ok(Order::Time),
            other => Err(format!("order `{other}` is not `name` or `time`")),
        }
    }
}

/// The names in folder `dir` (hidden ones too, never `.` or `..`), in `order`; empty when
/// `dir` does not exist; an error when it is something else than a folder (or a link to one).
pub fn list(session: &HostSession, dir: &str, order: Order) -> Result<Vec<String>, HostError> {
    let q = quote(dir);
    let flags = match order {
        Order::Name => "-1A",
        Order::Time => "-1Atr",
    };
    let out = session.probe(&format!(
        "if [ -d {q} ]; then cd -- {q} && exec ls {flags}; \
         elif [ -e {q} ] || [ -L {q} ]; then exit 3; fi"
    ))?;
    match out.code {
        0 => {}
        3 => {
            return Err(fail(
                &format!("list {dir}"),
                format!("{dir} is not a folder"),
            ))
        }
        code => {
            return Err(fail(
                &format!("list {dir}"),
                format!("cannot list {dir} (exit {code}): {}", out.stderr.trim()),
            ))
        }
    }
    let mut names: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if order == Order::Name {
        names.sort();
    }
    Ok(names)
}

/// The SHA-256 (lowercase hex) of the file at `path`; `None` when nothing is there. Anything
/// but a regular file (a folder, a link, a device) is an error, as is a file it cannot read.
pub fn checksum(session: &HostSession, path: &str) -> Result<Option<String>, HostError> {
    let op = || format!("checksum {path}");
    // Not kept between runs: the file may hold a secret, and its sum would let a reader of
    // the controller's cache test guesses of it.
    let (state, sum) = stat_and_sum(session, path, true, false)?;
    let Some(state) = state else {
        return Ok(None);
    };
    require_file(Some(&state), path).map_err(|e| fail(&op(), strip_op(&e)))?;
    sum.map(Some)
        .ok_or_else(|| fail(&op(), format!("cannot read {path}")))
}

fn strip_op(err: &HostError) -> String {
    match err {
        HostError::Operation { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Checks `sha256` as a SHA-256 written in hex, and returns it in lowercase.
pub fn sha256_text(sha256: &str) -> Result<String, String> {
    let sum = sha256.trim();
    if sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(sum.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{sha256}` is not a SHA-256: 64 hex digits are wanted"
        ))
    }
}

/// Whether the file at `path` has SHA-256 `sha256`: `false` when it differs or is missing;
/// an error when `sha256` is not a SHA-256 or `path` is not a regular file.
pub fn verify(session: &HostSession, path: &str, sha256: &str) -> Result<bool, HostError> {
    let wanted = sha256_text(sha256).map_err(|why| fail(&format!("verify {path}"), why))?;
    Ok(checksum(session, path)?.is_some_and(|sum| sum == wanted))
}
