//! Facts a host answers by asking something else: an HTTP status (`http`, with the host's
//! `curl`) and the commit a git checkout is at (`git_revision`). Read-only, run under
//! `--check` too.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::exec::session::{HostError, HostSession};
use crate::shell::quote;

use super::fail;

/// How `http` asks.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    /// The whole request's deadline, connecting included.
    pub timeout: Duration,
    /// `GET` unless said; `HEAD` asks for the headers only.
    pub method: String,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
}

impl Default for HttpSpec {
    fn default() -> Self {
        HttpSpec {
            timeout: Duration::from_secs(10),
            method: "GET".into(),
            headers: BTreeMap::new(),
        }
    }
}

/// Checks `method` as the method of a probe: `GET` or `HEAD`, which ask and change nothing,
/// so that `http` may run under `--check` too.
pub fn check_method(method: &str) -> Result<(), String> {
    match method {
        "GET" | "HEAD" => Ok(()),
        _ => Err(format!(
            "method `{method}`: http is a probe that runs under --check too, so it asks with GET or HEAD only"
        )),
    }
}

/// The `curl` command of `http`: the status alone on stdout, the body thrown away, redirects
/// not followed, HTTP and HTTPS only, no `~/.curlrc` (`-q`) and no globbing of the URL (`-g`).
/// The headers are read from stdin (`-H @-`, the lines of `http_headers`), out of the host's
/// process list.
pub fn http_command(url: &str, spec: &HttpSpec) -> String {
    let secs = spec.timeout.as_secs_f64().max(0.1);
    let mut words = vec![
        "curl".to_string(),
        "-q".into(),
        "-g".into(),
        "-sS".into(),
        "-o".into(),
        "/dev/null".into(),
        "-w".into(),
        "%{http_code}".into(),
        "--proto".into(),
        "=http,https".into(),
        "--max-time".into(),
        format!("{secs:.1}"),
    ];
    if spec.method == "HEAD" {
        words.push("-I".into());
    }
    if !spec.headers.is_empty() {
        words.push("-H".into());
        words.push("@-".into());
    }
    words.push("--url".into());
    words.push(url.into());
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// The header lines `http_command` reads from stdin.
pub fn http_headers(spec: &HttpSpec) -> String {
    spec.headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect()
}

/// The HTTP status `url` answers with, asked from the host (its `curl`, within
/// `spec.timeout`); 0 when nothing answered in time. A host without `curl` is an error.
pub fn http(session: &HostSession, url: &str, spec: &HttpSpec) -> Result<i64, HostError> {
    let out = session.probe_with_input(&http_command(url, spec), &http_headers(spec))?;
    let op = || format!("http {url}");
    if out.code == 127 {
        return Err(fail(&op(), "curl is not installed on the host"));
    }
    match out.stdout.trim().parse::<i64>() {
        Ok(status) => Ok(status),
        Err(_) if out.code != 0 => Ok(0),
        Err(_) => Err(fail(
            &op(),
            format!("curl printed no status: {}", out.stdout.trim()),
        )),
    }
}

/// The commit a git checkout is at, and whether its files differ from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The full commit id of `HEAD`.
    pub commit: String,
    /// Its abbreviation, `git rev-parse --short=8` (longer when 8 digits are ambiguous).
    pub short: String,
    /// Changes to tracked files, or untracked ones, under the folder asked about.
    pub dirty: bool,
}

/// The revision of the git checkout `dir` is in (`git rev-parse HEAD`), with `dirty` for
/// changes under `dir` only; `None` when `dir` is in no checkout with a commit, or git is
/// missing.
pub fn git_revision(session: &HostSession, dir: &str) -> Result<Option<Revision>, HostError> {
    let out = session.probe(&format!(
        "cd -- {} 2>/dev/null && c=$(git rev-parse --verify -q HEAD 2>/dev/null) || exit 3; \
         h=$(git rev-parse --short=8 HEAD) && s=$(git status --porcelain -- .) || exit 4; \
         printf '%s\\n%s\\n' \"$c\" \"$h\"; [ -z \"$s\" ] || echo dirty",
        quote(dir)
    ))?;
    match out.code {
        0 => {}
        3 => return Ok(None),
        code => {
            return Err(fail(
                &format!("git_revision {dir}"),
                format!("git status failed (exit {code}): {}", out.stderr.trim()),
            ))
        }
    }
    let mut lines = out.stdout.lines();
    let commit = lines.next().unwrap_or_default().trim().to_string();
    if commit.is_empty() {
        return Ok(None);
    }
    let rest: Vec<&str> = lines.map(str::trim).collect();
    let short = match rest.first() {
        Some(short) if !short.is_empty() && commit.starts_with(short) => short.to_string(),
        _ => commit.chars().take(8).collect(),
    };
    Ok(Some(Revision {
        commit,
        short,
        dirty: rest.contains(&"dirty"),
    }))
}
