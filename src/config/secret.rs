//! Secrets kept outside the project: a value `{ env = "NAME" }`, `{ file = "path" }`,
//! `{ command = ["prog", "arg"] }`, `{ secret = "NAME" }` or `{ aws_secret = "name" }` in
//! `weft.toml` stands for the variable, file, program output, entry of the env's encrypted
//! `secrets/<env>.age` (`crate::vault`) or AWS Secrets Manager secret it names, resolved when
//! a run uses it (never at load, so `weft list` needs none of them; the secrets file is
//! decrypted once per run, when a first value of it is used).
//! A reference that cannot be resolved does not stop a run that never uses it (`env_down`,
//! `env_status`): its value becomes a placeholder (`missing`), and a step that would send the
//! placeholder to a host, write it into a file or mark it `secret()` fails with the reason
//! (`find_missing`) before it runs (issue 30).
//! A command or an AWS secret is not even read before then (issue 37): a run's vars hold a
//! stand-in (`lazy`), which the step that sends, writes or marks it replaces by the value,
//! read on first use (`reveal`), so a run that never uses a password manager never starts it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde_json::Value;
use thiserror::Error;

use super::ProjectConfig;
use crate::vault::{self, Entries, Identity, VaultError};

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    /// An environment variable of the weft process.
    Env(String),
    /// A file's content, without its final newline (`~` is the home folder; a relative path is
    /// taken from the project folder).
    File(String),
    /// The standard output of a program run on this machine in the project folder, without a
    /// shell, its input closed, without its final newline; stopped after `timeout` seconds.
    Command {
        /// The program and its arguments.
        argv: Vec<String>,
        /// Seconds it may take.
        timeout: u64,
    },
    /// An entry of the env's encrypted secrets file, `secrets/<env>.age` (`weft secrets`).
    Secret(String),
    /// A secret of AWS Secrets Manager, read with the env's AWS profile and region; with `key`,
    /// that key of the JSON object it holds.
    Aws {
        /// The secret's name or ARN.
        name: String,
        /// The key of its JSON object.
        key: Option<String>,
        /// Seconds it may take.
        timeout: u64,
    },
}

/// How long a `{ command = [..] }` may run, and an `{ aws_secret = .. }` may take
/// (connecting and retrying included), unless its `timeout` says otherwise.
pub const DEFAULT_TIMEOUT: u64 = 30;

/// The sources of a reference, each with the options its table may hold.
const SOURCES: &[(&str, &[&str])] = &[
    ("env", &[]),
    ("file", &[]),
    ("command", &["timeout"]),
    ("secret", &[]),
    ("aws_secret", &["key", "timeout"]),
];

/// The env's AWS settings a `{ aws_secret = .. }` is read with, as the ec2 provider uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AwsEnv {
    /// `[env.X] profile`.
    pub profile: Option<String>,
    /// `[env.X] region`.
    pub region: Option<String>,
}

impl AwsEnv {
    /// The settings of env `env` in `config`.
    pub fn of(config: Option<&ProjectConfig>, env: &str) -> Self {
        let section = config.and_then(|c| c.file.env.get(env));
        AwsEnv {
            profile: section.and_then(|s| s.profile.clone()),
            region: section.and_then(|s| s.region.clone()),
        }
    }
}

/// A secret that cannot be resolved, pointing at where it was asked for.
#[derive(Debug, Error, Diagnostic)]
#[error("secret {reference}: {message}")]
#[diagnostic(code(weft::config::secret))]
pub struct SecretError {
    /// The reference as written.
    pub reference: String,
    /// What went wrong.
    pub message: String,
    /// Where it is asked for, when it comes from `weft.toml`.
    #[label("asked for here")]
    pub span: Option<SourceSpan>,
    /// The file it is asked for in.
    #[source_code]
    pub src: Option<NamedSource<String>>,
    /// How to fix it.
    #[help]
    pub help: Option<String>,
}

impl SecretRef {
    /// The reference `value` stands for: a table with one source key (`env`, `file`,
    /// `command`, `secret`, `aws_secret`) and only that source's options.
    pub fn parse(value: &Value) -> Option<Self> {
        Self::read(value)?.ok()
    }

    /// Like `parse`, but a table shaped as a reference whose values are wrong (a command as
    /// one string, an empty argv, a `timeout` that is not a number of seconds) is an error
    /// saying how to write it.
    pub fn read(value: &Value) -> Option<Result<Self, String>> {
        let map = value.as_object()?;
        let (source, options) = SOURCES.iter().find(|(k, _)| map.contains_key(*k))?;
        if map
            .keys()
            .any(|k| k != source && !options.contains(&k.as_str()))
        {
            return None;
        }
        let arg = &map[*source];
        let text = |v: &Value| v.as_str().map(str::to_string);
        Some(match *source {
            "env" => Ok(SecretRef::Env(text(arg)?)),
            "file" => Ok(SecretRef::File(text(arg)?)),
            "secret" => Ok(SecretRef::Secret(text(arg)?)),
            "command" => command_ref(arg, map.get("timeout")),
            _ => aws_ref(arg, map.get("key"), map.get("timeout")),
        })
    }

    /// The value it stands for; `root` is the project folder, `env` the env whose secrets file
    /// a `{ secret = .. }` reads (an `{ aws_secret = .. }` is read with the standard AWS
    /// settings: see `resolve_for`).
    pub fn resolve(&self, root: &Path, env: &str) -> Result<String, Failure> {
        self.resolve_for(root, env, &AwsEnv::default())
    }

    /// `resolve`, an `{ aws_secret = .. }` read with `aws`.
    pub fn resolve_for(&self, root: &Path, env: &str, aws: &AwsEnv) -> Result<String, Failure> {
        self.resolve_until(root, env, aws, None)
    }

    /// `resolve_for`, a program or AWS read given up when `stop` comes (Ctrl-C).
    fn resolve_until(
        &self,
        root: &Path,
        env: &str,
        aws: &AwsEnv,
        stop: Option<&dyn Stop>,
    ) -> Result<String, Failure> {
        match self {
            SecretRef::Secret(name) => {
                let identity = Identity::load().map_err(|e| explain(&e))?;
                let entries = read_vault(&identity, root, env)?;
                lookup(&entries, root, env, name)
            }
            SecretRef::Env(name) => std::env::var(name).map_err(|_| {
                (
                    format!("the environment variable `{name}` is not set"),
                    format!("export {name} before running weft"),
                )
            }),
            SecretRef::File(path) => {
                let full = super::expand_home(root, Path::new(path));
                std::fs::read_to_string(&full)
                    .map(trim_newline)
                    .map_err(|e| {
                        (
                            format!("cannot read `{}`: {e}", full.display()),
                            "create the file, or fix its path".into(),
                        )
                    })
            }
            SecretRef::Command { argv, timeout } => {
                run_command(argv, Duration::from_secs(*timeout), root, stop)
            }
            SecretRef::Aws { name, key, timeout } => {
                let value = aws_secret(name, aws, Duration::from_secs(*timeout), stop)?;
                match key {
                    Some(key) => json_key(&value, name, key),
                    None => Ok(value),
                }
            }
        }
    }

    /// Whether it is read only when a step uses it: it starts a program or goes to the
    /// network, which a run that does not need it must not do.
    fn is_lazy(&self) -> bool {
        matches!(self, SecretRef::Command { .. } | SecretRef::Aws { .. })
    }
}

/// `{ command = .. }`: an argv of strings, and a timeout of whole seconds.
fn command_ref(arg: &Value, timeout: Option<&Value>) -> Result<SecretRef, String> {
    let argv = match arg {
        Value::String(line) => {
            let words: Vec<&str> = line.split_whitespace().collect();
            let plain = |w: &&str| {
                w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
            };
            let argv: Vec<String> = if !words.is_empty() && words.iter().all(plain) {
                words.iter().map(|w| w.to_string()).collect()
            } else {
                vec!["sh".into(), "-c".into(), line.clone()]
            };
            return Err(format!(
                "a command is the program and its arguments as an array, run without a shell: \
                 write `command = {}`",
                toml_array(&argv)
            ));
        }
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or("every item of `command` must be a string: the program, then its arguments")?,
        _ => return Err("`command` takes an array: the program, then its arguments".into()),
    };
    if argv.first().is_none_or(|p| p.is_empty()) {
        return Err(
            "`command` needs a program: `command = [\"op\", \"read\", \"op://..\"]`".into(),
        );
    }
    let timeout = seconds(timeout)?;
    Ok(SecretRef::Command { argv, timeout })
}

/// A reference's `timeout`: whole seconds, `DEFAULT_TIMEOUT` when absent.
fn seconds(timeout: Option<&Value>) -> Result<u64, String> {
    match timeout {
        None => Ok(DEFAULT_TIMEOUT),
        Some(t) => t
            .as_u64()
            .filter(|t| (1..=3600).contains(t))
            .ok_or_else(|| "`timeout` is a whole number of seconds, from 1 to 3600".into()),
    }
}

/// `{ aws_secret = .. }`: a name, the key of a JSON secret, and a timeout of whole seconds.
fn aws_ref(arg: &Value, key: Option<&Value>, timeout: Option<&Value>) -> Result<SecretRef, String> {
    let name = arg
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or("`aws_secret` takes the secret's name or ARN, a string")?;
    let key = match key {
        None => None,
        Some(k) => Some(
            k.as_str()
                .filter(|k| !k.is_empty())
                .ok_or("`key` names a key of the secret's JSON object, a string")?
                .to_string(),
        ),
    };
    Ok(SecretRef::Aws {
        name: name.to_string(),
        key,
        timeout: seconds(timeout)?,
    })
}

/// `argv` as a TOML array.
fn toml_array(argv: &[String]) -> String {
    let items: Vec<String> = argv
        .iter()
        .map(|a| Value::String(a.clone()).to_string())
        .collect();
    format!("[{}]", items.join(", "))
}

/// What ends a read early: Ctrl-C (the run's `transport::Cancel`, which `exec` makes one).
pub trait Stop: Sync {
    /// Resolves when the read must end; never when nothing stops it.
    fn wait(&self) -> Pin<Box<dyn Future<Output = ()> + '_>>;
    /// Whether it came: a read it ended is no value, and is not kept.
    fn came(&self) -> bool;
}

/// Resolves when `stop` comes; never without one.
async fn stopped(stop: Option<&dyn Stop>) {
    match stop {
        Some(stop) => stop.wait().await,
        None => std::future::pending().await,
    }
}

/// The output of `argv` run in `root` without a shell, its input closed, killed after
/// `timeout` or when `stop` comes. It runs in weft's process group, so that a password
/// manager that asks on the terminal (a passphrase, an MFA code) can: a background group
/// would be stopped by the terminal at its first prompt. A thread of its own with a runtime
/// of its own: it may be asked for from async code, and a password manager may take seconds.
fn run_command(
    argv: &[String],
    timeout: Duration,
    root: &Path,
    stop: Option<&dyn Stop>,
) -> Result<String, Failure> {
    let shown = crate::shell::join(argv);
    let program = argv.first().map(String::as_str).unwrap_or_default();
    on_own_runtime(&format!("cannot run `{shown}`"), || async {
        let mut command = tokio::process::Command::new(program);
        command
            .args(&argv[1..])
            .current_dir(root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            // Dropped unfinished (timeout, Ctrl-C), the child is killed.
            .kill_on_drop(true);
        let child = command.spawn().map_err(|e| {
            let help = if e.kind() == std::io::ErrorKind::NotFound {
                format!("install `{program}`, or give its full path in `command`")
            } else {
                String::new()
            };
            (format!("cannot run `{program}` (`{shown}`): {e}"), help)
        })?;
        tokio::select! {
            done = tokio::time::timeout(timeout, child.wait_with_output()) => match done {
                Ok(Ok(out)) => command_output(&shown, out),
                Ok(Err(e)) => Err((format!("`{shown}` failed: {e}"), String::new())),
                Err(_) => Err((
                    format!(
                        "`{shown}` did not finish within {} s and was stopped",
                        timeout.as_secs()
                    ),
                    "run it yourself to see where it waits, or allow it longer: \
                     `timeout = SECONDS` in the reference"
                        .into(),
                )),
            },
            () = stopped(stop) => Err((
                format!("interrupted while `{shown}` ran"),
                String::new(),
            )),
        }
    })
}

/// Runs `work` to its end on a thread and a runtime of its own: a secret may be asked for
/// from async code, where blocking on a future is refused. `what` says what could not start.
fn on_own_runtime<F>(what: &str, work: impl FnOnce() -> F + Send) -> Result<String, Failure>
where
    F: std::future::Future<Output = Result<String, Failure>>,
{
    let run = || -> Result<String, Failure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| (format!("{what}: {e}"), String::new()))?;
        runtime.block_on(work())
    };
    std::thread::scope(|s| s.spawn(run).join())
        .unwrap_or_else(|_| Err((what.to_string(), String::new())))
}

/// The value a finished command printed, or why it is none.
fn command_output(shown: &str, out: std::process::Output) -> Result<String, Failure> {
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim_end();
        let said = if stderr.is_empty() {
            String::new()
        } else {
            format!(": {stderr}")
        };
        return Err((
            format!("`{shown}` failed ({}){said}", out.status),
            "run it yourself to see why".into(),
        ));
    }
    String::from_utf8(out.stdout)
        .map(trim_newline)
        .map_err(|_| {
            (
                format!("`{shown}` printed bytes that are not UTF-8"),
                "a secret is text: print it as such (base64, for binary data)".into(),
            )
        })
}

/// The value of `key` in the JSON object `value` holds (secret `name`).
fn json_key(value: &str, name: &str, key: &str) -> Result<String, Failure> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(value) else {
        return Err((
            format!("AWS secret `{name}` is not a JSON object, so it has no key `{key}`"),
            "remove `key` to use the whole value, or store the secret as JSON".into(),
        ));
    };
    match map.get(key) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Ok(other.to_string()),
        None => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            Err((
                format!("AWS secret `{name}` has no key `{key}`"),
                if keys.is_empty() {
                    "its JSON object is empty".into()
                } else {
                    format!("its keys are `{}`", keys.join("`, `"))
                },
            ))
        }
    }
}

/// The text of AWS secret `name`, within `timeout`.
#[cfg(feature = "aws-secrets")]
fn aws_secret(
    name: &str,
    aws: &AwsEnv,
    timeout: Duration,
    stop: Option<&dyn Stop>,
) -> Result<String, Failure> {
    on_own_runtime(&format!("cannot read AWS secret `{name}`"), || async {
        let read = tokio::time::timeout(
            timeout,
            super::aws_secret::read(name, aws.profile.as_deref(), aws.region.as_deref()),
        );
        let done = tokio::select! {
            done = read => done,
            () = stopped(stop) => {
                return Err((
                    format!("interrupted while AWS secret `{name}` was read"),
                    String::new(),
                ))
            }
        };
        match done {
            Ok(result) => result,
            Err(_) => Err((
                format!(
                    "AWS Secrets Manager did not answer for `{name}` within {} s",
                    timeout.as_secs()
                ),
                "check the network and the endpoint (AWS_ENDPOINT_URL, \
                     AWS_ENDPOINT_URL_SECRETS_MANAGER), or allow it longer: \
                     `timeout = SECONDS` in the reference"
                    .into(),
            )),
        }
    })
}

/// Without the `aws-secrets` feature, an AWS secret cannot be read.
#[cfg(not(feature = "aws-secrets"))]
fn aws_secret(
    name: &str,
    _aws: &AwsEnv,
    _timeout: Duration,
    _stop: Option<&dyn Stop>,
) -> Result<String, Failure> {
    Err((
        format!("cannot read AWS secret `{name}`: this weft is built without AWS Secrets Manager"),
        "build weft with the `aws-secrets` feature (a default one)".into(),
    ))
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted = |s: &str| Value::String(s.to_string()).to_string();
        match self {
            SecretRef::Env(a) => write!(f, "`{{ env = {} }}`", quoted(a)),
            SecretRef::File(a) => write!(f, "`{{ file = {} }}`", quoted(a)),
            SecretRef::Secret(a) => write!(f, "`{{ secret = {} }}`", quoted(a)),
            SecretRef::Command { argv, .. } => write!(f, "`{{ command = {} }}`", toml_array(argv)),
            SecretRef::Aws {
                name, key: None, ..
            } => {
                write!(f, "`{{ aws_secret = {} }}`", quoted(name))
            }
            SecretRef::Aws {
                name,
                key: Some(key),
                ..
            } => write!(
                f,
                "`{{ aws_secret = {}, key = {} }}`",
                quoted(name),
                quoted(key)
            ),
        }
    }
}

/// Opens and closes the placeholder of a secret that could not be resolved. NUL never occurs
/// in a value read from the environment or a file name, nor in a command line, so the
/// placeholder cannot be mistaken for a value, nor run.
const MISSING_MARK: &str = "\u{0}weft-missing-secret\u{0}";

/// The placeholder that stands for a secret that could not be resolved: it carries the reason,
/// which `find_missing` recovers from any text it ends up in.
pub fn missing(reason: &str) -> String {
    format!("{MISSING_MARK}{reason}{MISSING_MARK}")
}

/// Why a secret that `text` holds (a placeholder of `missing`) could not be resolved.
pub fn find_missing(text: &str) -> Option<&str> {
    let start = text.find(MISSING_MARK)? + MISSING_MARK.len();
    let len = text[start..]
        .find(MISSING_MARK)
        .unwrap_or(text.len() - start);
    Some(&text[start..start + len])
}

/// `find_missing` over bytes (file contents).
pub fn find_missing_bytes(data: &[u8]) -> Option<String> {
    let mark = MISSING_MARK.as_bytes();
    let at = data.windows(mark.len()).position(|w| w == mark)?;
    let text = String::from_utf8_lossy(&data[at..]);
    find_missing(&text).map(str::to_string)
}

fn trim_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Why a secret cannot be had, and how to fix it.
pub type Failure = (String, String);

/// A reference read on first use (`lazy`), and what reading it needs.
struct Pending {
    reference: SecretRef,
    root: PathBuf,
    env: String,
    aws: AwsEnv,
    /// Where `weft.toml` asks for it, as `one_line` says it.
    asked_at: String,
    /// Its value or why there is none, once read; a read that `stop` ended is not kept.
    value: Mutex<Option<Result<String, String>>>,
}

impl Pending {
    /// Its value, read once by whichever step first needs it; the others wait for it.
    fn value(&self, stop: Option<&dyn Stop>) -> Result<String, String> {
        let mut value = self.value.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = &*value {
            return value.clone();
        }
        let read = self
            .reference
            .resolve_until(&self.root, &self.env, &self.aws, stop)
            .map_err(|(message, help)| {
                let mut line = format!("secret {}: {message}{}", self.reference, self.asked_at);
                if !help.is_empty() {
                    line.push_str(&format!("; {help}"));
                }
                line
            });
        if read.is_ok() || !stop.is_some_and(|s| s.came()) {
            *value = Some(read.clone());
        }
        read
    }
}

/// The stand-ins of one process: each names its place in `pending`.
struct StandIns {
    /// What starts every stand-in: random, so that no text a user writes is one. Letters,
    /// digits and `-` only: shell quoting, JSON and templates leave a stand-in as it is.
    prefix: String,
    pending: Mutex<Vec<Arc<Pending>>>,
    /// Whether any stand-in was made: until one is, no text can hold one (the prefix is this
    /// process's own), so the commands and files of a run without lazy secrets are not scanned.
    made: std::sync::atomic::AtomicBool,
}

static STAND_INS: LazyLock<StandIns> = LazyLock::new(|| StandIns {
    prefix: format!("weft-secret-{:016x}-", fastrand::u64(..)),
    pending: Mutex::new(Vec::new()),
    made: std::sync::atomic::AtomicBool::new(false),
});

/// The stand-in of `reference` (a command or an AWS secret of env `env`), which `reveal`
/// replaces by its value; one per reference, so its value is read once per invocation.
fn lazy(reference: &SecretRef, root: &Path, env: &str, config: Option<&ProjectConfig>) -> String {
    let stand_ins = &*STAND_INS;
    let mut pending = stand_ins.pending.lock().unwrap_or_else(|e| e.into_inner());
    let found = pending
        .iter()
        .position(|p| p.reference == *reference && p.root == root && p.env == env);
    let index = found.unwrap_or_else(|| {
        stand_ins
            .made
            .store(true, std::sync::atomic::Ordering::Release);
        pending.push(Arc::new(Pending {
            reference: reference.clone(),
            root: root.to_path_buf(),
            env: env.to_string(),
            aws: AwsEnv::of(config, env),
            asked_at: asked_at(config, config.and_then(|c| c.locate(reference))),
            value: Mutex::new(None),
        }));
        pending.len() - 1
    });
    format!("{}{index}-", stand_ins.prefix)
}

/// `text` with every stand-in replaced by its value, read now if no step has read it yet,
/// and the values it put in (for the caller to mask); the reason, on one line, when one
/// cannot be read. `stop` (Ctrl-C) ends a read under way.
pub fn reveal<'a>(
    text: &'a str,
    stop: Option<&dyn Stop>,
) -> Result<(Cow<'a, str>, Vec<String>), String> {
    match reveal_bytes(text.as_bytes(), stop)? {
        (Cow::Borrowed(_), values) => Ok((Cow::Borrowed(text), values)),
        // Text with UTF-8 values put in place of ASCII stand-ins is UTF-8.
        (Cow::Owned(bytes), values) => Ok((
            Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
            values,
        )),
    }
}

/// Whether `data` holds a stand-in: what `reveal` would put a value in place of.
pub fn has_stand_in(data: &[u8]) -> bool {
    if !STAND_INS.made.load(std::sync::atomic::Ordering::Acquire) {
        return false;
    }
    let prefix = STAND_INS.prefix.as_bytes();
    data.windows(prefix.len()).any(|w| w == prefix)
}

/// `reveal` for bytes (a file's content).
pub fn reveal_bytes<'a>(
    data: &'a [u8],
    stop: Option<&dyn Stop>,
) -> Result<(Cow<'a, [u8]>, Vec<String>), String> {
    if !has_stand_in(data) {
        return Ok((Cow::Borrowed(data), Vec::new()));
    }
    let prefix = STAND_INS.prefix.as_bytes();
    let find = |hay: &[u8]| hay.windows(prefix.len()).position(|w| w == prefix);
    let (mut out, mut values, mut rest) = (Vec::with_capacity(data.len()), Vec::new(), data);
    while let Some(at) = find(rest) {
        out.extend_from_slice(&rest[..at]);
        let after = &rest[at + prefix.len()..];
        let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
        let index = std::str::from_utf8(&after[..digits])
            .ok()
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|_| after.get(digits) == Some(&b'-'));
        let pending = index.and_then(|i| {
            let all = STAND_INS.pending.lock().unwrap_or_else(|e| e.into_inner());
            all.get(i).cloned()
        });
        match pending {
            Some(pending) => {
                let value = pending.value(stop)?;
                out.extend_from_slice(value.as_bytes());
                values.push(value);
                rest = &after[digits + 1..];
            }
            None => {
                out.extend_from_slice(prefix);
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest);
    Ok((Cow::Owned(out), values))
}

/// `text` with every stand-in of a secret not read yet replaced by `hidden`: what output shows
/// of a value a goal printed before any step read it.
pub fn hide_stand_ins(text: &str, hidden: &str) -> String {
    let prefix = &STAND_INS.prefix;
    if !text.contains(prefix.as_str()) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix.as_str()) {
        out.push_str(&rest[..at]);
        let after = &rest[at + prefix.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with('-') {
            out.push_str(hidden);
            rest = &after[digits + 1..];
        } else {
            out.push_str(prefix);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// ` (asked for at weft.toml:ROW:COL)` for a span of `config`, or nothing.
fn asked_at(config: Option<&ProjectConfig>, span: Option<std::ops::Range<usize>>) -> String {
    let (Some(config), Some(span)) = (config, span) else {
        return String::new();
    };
    let text = config.source.text();
    let at = span.start.min(text.len());
    let row = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!(" (asked for at {}:{row}:{column})", config.source.name())
}

/// An error of the secrets file as a message and a fix.
fn explain(err: &VaultError) -> Failure {
    let help = Diagnostic::help(err)
        .map(|h| h.to_string())
        .unwrap_or_default();
    (err.to_string(), help)
}

/// The entries of `env`'s secrets file, decrypted with `identity`.
fn read_vault(identity: &Identity, root: &Path, env: &str) -> Result<Entries, Failure> {
    let file = vault::file(root, env);
    if !file.exists() {
        return Err((
            format!("env `{env}` has no secrets file `{}`", file.display()),
            format!("add the secret: weft secrets set NAME -e {env}"),
        ));
    }
    identity.read(&file, env).map_err(|e| explain(&e))
}

/// The value of `name` in `env`'s `entries`.
fn lookup(entries: &Entries, root: &Path, env: &str, name: &str) -> Result<String, Failure> {
    entries.get(name).cloned().ok_or_else(|| {
        (
            format!("`{name}` is not in `{}`", vault::file(root, env).display()),
            format!("add it: weft secrets set {name} -e {env}"),
        )
    })
}

/// The secrets one invocation resolved, so nested runs resolve (and run commands) once; each
/// env's secrets file is decrypted once, with the identity loaded once.
#[derive(Debug, Default)]
pub struct Secrets {
    /// By reference, and env for `{ secret = .. }` (empty for the others).
    resolved: Mutex<HashMap<(SecretRef, String), String>>,
    identity: OnceLock<Result<Arc<Identity>, Failure>>,
    vaults: Mutex<HashMap<String, Result<Arc<Entries>, Failure>>>,
}

impl Secrets {
    /// Replaces every secret reference inside `value` by what it stands for, and returns the
    /// values so that output masks them. `config` locates a failing reference in `weft.toml`.
    pub fn resolve_in(
        &self,
        value: &mut Value,
        root: &Path,
        env: &str,
        config: Option<&ProjectConfig>,
    ) -> Result<Vec<String>, SecretError> {
        let mut found = Vec::new();
        self.walk_with(value, (root, env), config, &mut found, &mut None)?;
        Ok(found)
    }

    /// Like `resolve_in`, but a reference that cannot be resolved becomes the placeholder of
    /// `missing`, so that only a step that uses it fails.
    pub fn resolve_when_used_in(
        &self,
        value: &mut Value,
        root: &Path,
        env: &str,
        config: Option<&ProjectConfig>,
    ) -> Vec<String> {
        let mut found = Vec::new();
        let mut defer = |err: SecretError| Value::String(missing(&err.one_line(config)));
        // Without a fallback no walk fails.
        let _ = self.walk_with(
            value,
            (root, env),
            config,
            &mut found,
            &mut Some(&mut defer),
        );
        found
    }

    /// Replaces the references inside `value`; one that fails is replaced by what `fallback`
    /// makes of its error when there is a fallback, and ends the walk otherwise.
    fn walk_with(
        &self,
        value: &mut Value,
        at: (&Path, &str),
        config: Option<&ProjectConfig>,
        found: &mut Vec<String>,
        fallback: &mut Option<&mut dyn FnMut(SecretError) -> Value>,
    ) -> Result<(), SecretError> {
        if let Some(reference) = SecretRef::parse(value) {
            // A run reads a command or an AWS secret when a step first uses it.
            if fallback.is_some() && reference.is_lazy() {
                *value = Value::String(lazy(&reference, at.0, at.1, config));
                return Ok(());
            }
            match (self.get(&reference, at, config), fallback) {
                (Ok(secret), _) => {
                    found.push(secret.clone());
                    *value = Value::String(secret);
                }
                (Err(err), Some(fallback)) => *value = fallback(err),
                (Err(err), None) => return Err(err),
            }
            return Ok(());
        }
        match value {
            Value::Object(map) => map
                .values_mut()
                .try_for_each(|v| self.walk_with(v, at, config, found, fallback)),
            Value::Array(items) => items
                .iter_mut()
                .try_for_each(|v| self.walk_with(v, at, config, found, fallback)),
            _ => Ok(()),
        }
    }

    fn get(
        &self,
        reference: &SecretRef,
        (root, env): (&Path, &str),
        config: Option<&ProjectConfig>,
    ) -> Result<String, SecretError> {
        let key = match reference {
            SecretRef::Secret(_) | SecretRef::Aws { .. } => (reference.clone(), env.to_string()),
            _ => (reference.clone(), String::new()),
        };
        let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(secret) = resolved.get(&key) {
            return Ok(secret.clone());
        }
        let secret = match reference {
            SecretRef::Secret(name) => self
                .vault(root, env)
                .and_then(|entries| lookup(&entries, root, env, name)),
            _ => reference.resolve_for(root, env, &AwsEnv::of(config, env)),
        };
        let secret = secret.map_err(|(message, help)| {
            let span = config.and_then(|c| c.locate(reference));
            SecretError {
                reference: reference.to_string(),
                message,
                src: span.as_ref().and(config).map(|c| c.source.named()),
                span: span.map(Into::into),
                help: (!help.is_empty()).then_some(help),
            }
        })?;
        resolved.insert(key, secret.clone());
        Ok(secret)
    }

    /// The entries of `env`'s secrets file, decrypted on first use.
    fn vault(&self, root: &Path, env: &str) -> Result<Arc<Entries>, Failure> {
        let mut vaults = self.vaults.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entries) = vaults.get(env) {
            return entries.clone();
        }
        let identity = self
            .identity
            .get_or_init(|| Identity::load().map(Arc::new).map_err(|e| explain(&e)))
            .clone();
        let entries = identity.and_then(|i| read_vault(&i, root, env).map(Arc::new));
        vaults.insert(env.to_string(), entries.clone());
        entries
    }
}

impl SecretError {
    /// The error on one line, with where `weft.toml` asks for the secret and the fix:
    /// what a step that uses the secret fails with.
    pub fn one_line(&self, config: Option<&ProjectConfig>) -> String {
        let span = self.span.map(|s| s.offset()..s.offset() + s.len());
        let mut line = format!("{self}{}", asked_at(config, span));
        if let Some(help) = &self.help {
            line.push_str(&format!("; {help}"));
        }
        line
    }
}

impl ProjectConfig {
    /// Where `reference` is written in the file: the first inline table that stands for it.
    pub fn locate(&self, reference: &SecretRef) -> Option<std::ops::Range<usize>> {
        self.inline_table_where(|v| SecretRef::parse(v).as_ref() == Some(reference))
    }

    /// The first inline table `{ .. }` of the file whose value `wanted` accepts.
    fn inline_table_where(
        &self,
        wanted: impl Fn(&Value) -> bool,
    ) -> Option<std::ops::Range<usize>> {
        let text = self.source.text();
        text.match_indices('{').find_map(|(start, _)| {
            let end = start + inline_table_len(&text[start..])?;
            let parsed: toml::Table = toml::from_str(&format!("x = {}", &text[start..end])).ok()?;
            let value = serde_json::to_value(parsed.get("x")?).ok()?;
            wanted(&value).then_some(start..end)
        })
    }

    /// Refuses a reference written wrongly (a command as one shell string, an empty argv, a
    /// `timeout` that is not seconds) anywhere in the file, pointing at it, before anything
    /// runs.
    pub(super) fn check_references(&self) -> Result<(), (std::ops::Range<usize>, String)> {
        // Only these sources can be written wrongly (another table with an `env` that is not
        // a string is data): most files need no second parse at start-up.
        let text = self.source.text();
        if !text.contains("command") && !text.contains("aws_secret") {
            return Ok(());
        }
        let Ok(whole) = toml::from_str::<toml::Table>(text) else {
            return Ok(());
        };
        let Ok(whole) = serde_json::to_value(whole) else {
            return Ok(());
        };
        let Some((bad, message)) = first_malformed(&whole) else {
            return Ok(());
        };
        let span = self.inline_table_where(|v| v == bad).unwrap_or(0..0);
        Err((span, message))
    }
}

/// The first table inside `value` shaped as a secret reference but written wrongly, and why.
fn first_malformed(value: &Value) -> Option<(&Value, String)> {
    if let Some(Err(why)) = SecretRef::read(value) {
        return Some((value, why));
    }
    match value {
        Value::Object(map) => map.values().find_map(first_malformed),
        Value::Array(items) => items.iter().find_map(first_malformed),
        _ => None,
    }
}

/// The length of the inline table `text` starts with (at its `{`), through its `}`, skipping
/// strings and nested tables and arrays.
fn inline_table_len(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            '"' => loop {
                match chars.next()?.1 {
                    '\\' => {
                        chars.next()?;
                    }
                    '"' => break,
                    '\n' => return None,
                    _ => {}
                }
            },
            '\'' => loop {
                match chars.next()?.1 {
                    '\'' => break,
                    '\n' => return None,
                    _ => {}
                }
            },
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_one_source_tables_and_are_found_in_the_file() {
        let text =
            "[vars]\nenv = \"TOKEN\"\nother = { env = \"NOPE\", x = 1 }\ntoken = {env=\"TOKEN\"}\n\
             pw = { command = [\"op\", \"read\", \"op://v/i/f\"], timeout = 5 }\n";
        let config = ProjectConfig::parse("weft.toml".into(), text.into()).expect("parses");
        let reference = SecretRef::Env("TOKEN".into());
        let span = config.locate(&reference).expect("found");
        assert_eq!(&text[span], "{env=\"TOKEN\"}");
        assert_eq!(SecretRef::parse(&json!({"env": "TOKEN"})), Some(reference));
        assert_eq!(SecretRef::parse(&json!({"env": "A", "x": 1})), None);
        assert_eq!(SecretRef::parse(&json!({"env": 1})), None);
        assert_eq!(
            SecretRef::parse(&json!({"secret": "DB"})),
            Some(SecretRef::Secret("DB".into()))
        );
        let command = SecretRef::Command {
            argv: vec!["op".into(), "read".into(), "op://v/i/f".into()],
            timeout: 5,
        };
        let span = config.locate(&command).expect("found");
        assert!(text[span].starts_with("{ command = [\"op\""));
        assert_eq!(
            command.to_string(),
            "`{ command = [\"op\", \"read\", \"op://v/i/f\"] }`"
        );
        assert_eq!(
            SecretRef::parse(&json!({"command": ["op"]})),
            Some(SecretRef::Command {
                argv: vec!["op".into()],
                timeout: DEFAULT_TIMEOUT
            })
        );
        assert_eq!(
            SecretRef::parse(&json!({"aws_secret": "db", "key": "password"})),
            Some(SecretRef::Aws {
                name: "db".into(),
                key: Some("password".into()),
                timeout: DEFAULT_TIMEOUT
            })
        );
        // Another tool's table that happens to have a `command` is no reference.
        assert_eq!(
            SecretRef::read(&json!({"command": "weft", "args": ["lsp"]})),
            None
        );
    }

    #[test]
    fn a_command_as_a_shell_string_is_refused_at_load_with_its_array_form() {
        let text = "[vars]\na = 1\nkey = { command = \"pass show prod/key\" }\n";
        let err = ProjectConfig::parse("weft.toml".into(), text.into()).expect_err("refused");
        let shown = format!("{:?}", miette::Report::new(err));
        assert!(
            shown.contains("write `command = [\"pass\", \"show\", \"prod/key\"]`"),
            "{shown}"
        );
        assert!(shown.contains("weft.toml:3:7"), "{shown}");
        let shell = SecretRef::read(&json!({"command": "pass show x | head -1"}));
        assert!(
            matches!(shell, Some(Err(m)) if m.contains("[\"sh\", \"-c\", \"pass show x | head -1\"]"))
        );
        for (bad, why) in [
            (json!({"command": []}), "needs a program"),
            (json!({"command": ["op", 1]}), "must be a string"),
            (json!({"command": ["op"], "timeout": 0}), "from 1 to 3600"),
            (json!({"command": ["op"], "timeout": "5"}), "from 1 to 3600"),
            (json!({"aws_secret": ""}), "name or ARN"),
            (json!({"aws_secret": "db", "key": 3}), "`key` names a key"),
        ] {
            let read = SecretRef::read(&bad);
            assert!(
                matches!(&read, Some(Err(m)) if m.contains(why)),
                "{bad}: {read:?}"
            );
        }
    }

    fn command(argv: &[&str], timeout: u64) -> SecretRef {
        SecretRef::Command {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            timeout,
        }
    }

    #[test]
    fn a_command_runs_without_a_shell_and_its_failures_say_why() {
        let dir = std::env::temp_dir();
        let value = command(&["printf", "%s-%s\\n", "a b", "$HOME"], 5).resolve(&dir, "dev");
        assert_eq!(value, Ok("a b-$HOME".to_string()));
        let failed = command(&["sh", "-c", "echo locked vault >&2; exit 3"], 5)
            .resolve(&dir, "dev")
            .expect_err("fails");
        assert!(
            failed.0.contains("exit status: 3): locked vault"),
            "{failed:?}"
        );
        let missing = command(&["weft-no-such-manager", "read"], 5)
            .resolve(&dir, "dev")
            .expect_err("fails");
        assert!(
            missing.0.contains("cannot run `weft-no-such-manager`"),
            "{missing:?}"
        );
        assert!(missing.1.contains("install `weft-no-such-manager`"));
        let bytes = command(&["printf", "\\377"], 5)
            .resolve(&dir, "dev")
            .expect_err("fails");
        assert!(bytes.0.contains("not UTF-8"), "{bytes:?}");
        let started = std::time::Instant::now();
        let slow = command(&["sh", "-c", "sleep 30; echo late"], 1)
            .resolve(&dir, "dev")
            .expect_err("stopped");
        assert!(slow.0.contains("did not finish within 1 s"), "{slow:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_command_is_run_when_a_step_first_reveals_it_and_once() {
        let dir = std::env::temp_dir().join(format!("weft-lazy-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut vars =
            json!({"pw": {"command": ["sh", "-c", "echo ran >> runs; printf lazy-value-77"]}});
        let secrets = Secrets::default();
        let found = secrets.resolve_when_used_in(&mut vars, &dir, "dev", None);
        assert!(found.is_empty());
        assert!(!dir.join("runs").exists(), "not run before it is used");
        let stand_in = vars["pw"].as_str().expect("a stand-in").to_string();
        assert!(!stand_in.contains("lazy-value"));
        assert_eq!(hide_stand_ins(&format!("pw={stand_in}."), "***"), "pw=***.");
        let line = format!("echo {stand_in} {stand_in}");
        let (text, values) = reveal(&line, None).expect("revealed");
        assert_eq!(text, "echo lazy-value-77 lazy-value-77");
        assert_eq!(values, ["lazy-value-77", "lazy-value-77"]);
        let (bytes, _) = reveal_bytes(stand_in.as_bytes(), None).expect("revealed");
        assert_eq!(&*bytes, b"lazy-value-77");
        assert_eq!(
            std::fs::read_to_string(dir.join("runs")).expect("ran"),
            "ran\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_key_of_a_json_secret() {
        let value = r#"{"user": "app", "password": "pw-1", "port": 5432}"#;
        assert_eq!(json_key(value, "db", "password"), Ok("pw-1".to_string()));
        assert_eq!(json_key(value, "db", "port"), Ok("5432".to_string()));
        let absent = json_key(value, "db", "pass").expect_err("absent");
        assert_eq!(absent.0, "AWS secret `db` has no key `pass`");
        assert!(
            absent.1.contains("`password`, `port`, `user`"),
            "{absent:?}"
        );
        let plain = json_key("hunter2", "db", "password").expect_err("not JSON");
        assert!(plain.0.contains("is not a JSON object"), "{plain:?}");
    }
}
