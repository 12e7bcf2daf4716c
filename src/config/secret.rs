//! Secrets kept outside the project: a value `{ env = "NAME" }`, `{ file = "path" }`,
//! `{ command = "..." }` or `{ secret = "NAME" }` in `weft.toml` stands for the variable, file,
//! command output or entry of the env's encrypted `secrets/<env>.age` (`crate::vault`) it
//! names, resolved when a run uses it (never at load, so `weft list` needs none of them; the
//! secrets file is decrypted once per run, when a first value of it is used).
//! A reference that cannot be resolved does not stop a run that never uses it (`env_down`,
//! `env_status`): its value becomes a placeholder (`missing`), and a step that would send the
//! placeholder to a host, write it into a file or mark it `secret()` fails with the reason
//! (`find_missing`) before it runs (issue 30).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

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
    /// The standard output of a shell command run on this machine in the project folder,
    /// without its final newline.
    Command(String),
    /// An entry of the env's encrypted secrets file, `secrets/<env>.age` (`weft secrets`).
    Secret(String),
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
    /// The reference `value` stands for: a table with one key, `env`, `file`, `command` or
    /// `secret`, whose value is a string.
    pub fn parse(value: &Value) -> Option<Self> {
        let map = value.as_object()?;
        if map.len() != 1 {
            return None;
        }
        let (key, arg) = map.iter().next()?;
        let arg = arg.as_str()?.to_string();
        match key.as_str() {
            "env" => Some(SecretRef::Env(arg)),
            "file" => Some(SecretRef::File(arg)),
            "command" => Some(SecretRef::Command(arg)),
            "secret" => Some(SecretRef::Secret(arg)),
            _ => None,
        }
    }

    fn key_and_arg(&self) -> (&'static str, &str) {
        match self {
            SecretRef::Env(a) => ("env", a),
            SecretRef::File(a) => ("file", a),
            SecretRef::Command(a) => ("command", a),
            SecretRef::Secret(a) => ("secret", a),
        }
    }

    /// The value it stands for; `root` is the project folder, `env` the env whose secrets file
    /// a `{ secret = .. }` reads.
    pub fn resolve(&self, root: &Path, env: &str) -> Result<String, (String, String)> {
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
            SecretRef::Command(command) => {
                let out = std::process::Command::new("sh")
                    .args(["-c", command])
                    .current_dir(root)
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .output()
                    .map_err(|e| (format!("cannot run `sh`: {e}"), String::new()))?;
                if !out.status.success() {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    return Err((
                        format!("`{command}` failed ({}): {}", out.status, stderr.trim_end()),
                        "run the command yourself to see why".into(),
                    ));
                }
                String::from_utf8(out.stdout)
                    .map(trim_newline)
                    .map_err(|_| {
                        (
                            format!("`{command}` printed bytes that are not UTF-8"),
                            String::new(),
                        )
                    })
            }
        }
    }
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (key, arg) = self.key_and_arg();
        write!(f, "`{{ {key} = {arg:?} }}`")
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
type Failure = (String, String);

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
            SecretRef::Secret(_) => (reference.clone(), env.to_string()),
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
            _ => reference.resolve(root, env),
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
        let mut line = self.to_string();
        if let (Some(span), Some(config)) = (self.span, config) {
            let text = config.source.text();
            let at = span.offset().min(text.len());
            let row = text[..at].matches('\n').count() + 1;
            let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
            line.push_str(&format!(
                " (asked for at {}:{row}:{column})",
                config.source.name()
            ));
        }
        if let Some(help) = &self.help {
            line.push_str(&format!("; {help}"));
        }
        line
    }
}

impl ProjectConfig {
    /// Where `reference` is written in the file: the first `key = "arg"` inside braces.
    pub fn locate(&self, reference: &SecretRef) -> Option<std::ops::Range<usize>> {
        let (key, arg) = reference.key_and_arg();
        let text = self.source.text();
        let quoted = [format!("{arg:?}"), format!("'{arg}'")];
        let mut from = 0;
        while let Some(at) = text[from..].find(key).map(|i| i + from) {
            from = at + key.len();
            let before = text[..at].trim_end();
            let after = text[from..].trim_start();
            let Some(rest) = after.strip_prefix('=') else {
                continue;
            };
            let rest = rest.trim_start();
            let opened = before.ends_with('{') || before.ends_with(',');
            if let Some(q) = quoted.iter().find(|q| rest.starts_with(q.as_str())) {
                if opened {
                    let start = before.rfind('{').unwrap_or(at);
                    let end = text.len() - rest.len() + q.len();
                    let close = text[end..].find('}').map_or(end, |i| end + i + 1);
                    return Some(start..close);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_one_key_tables_and_are_found_in_the_file() {
        let text =
            "[vars]\nenv = \"TOKEN\"\nother = { env = \"NOPE\", x = 1 }\ntoken = {env=\"TOKEN\"}\n";
        let config = ProjectConfig::parse("weft.toml".into(), text.into()).expect("parses");
        let reference = SecretRef::Env("TOKEN".into());
        let span = config.locate(&reference).expect("found");
        assert_eq!(&text[span], "{env=\"TOKEN\"}");
        assert_eq!(
            SecretRef::parse(&serde_json::json!({"env": "TOKEN"})),
            Some(reference)
        );
        assert_eq!(
            SecretRef::parse(&serde_json::json!({"env": "A", "x": 1})),
            None
        );
        assert_eq!(SecretRef::parse(&serde_json::json!({"env": 1})), None);
        assert_eq!(
            SecretRef::parse(&serde_json::json!({"secret": "DB"})),
            Some(SecretRef::Secret("DB".into()))
        );
    }
}
