//! `weft secrets`: keygen, set, get, ls, edit and rekey of an env's `secrets/<env>.age`
//! (`crate::vault`). Values come from standard input, never the command line; `edit` keeps the
//! plaintext in a private folder on a tmpfs and removes it whatever happens, Ctrl-C included.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use miette::{Diagnostic, Result};
use thiserror::Error;

use super::Context;
use crate::cli::SecretsCommand;
use crate::error::EXIT_OK;
use crate::inventory::Inventory;
use crate::project::Project;
use crate::vault::{self, Identity};

/// The exit code of an edit ended by a signal, as shells report a SIGINT.
const EXIT_INTERRUPTED: i32 = 130;

/// What `weft secrets` refuses.
#[derive(Debug, Error, Diagnostic)]
enum SecretsError {
    #[error("`{0}` is not a secret name")]
    #[diagnostic(
        code(weft::secrets::name),
        help("names are letters, digits and `_`, not starting with a digit")
    )]
    Name(String),
    #[error("the value of `{0}` holds a line break or NUL: a secret is one line")]
    #[diagnostic(code(weft::secrets::value))]
    Value(String),
    #[error("`{name}` is not in `{}`", .file.display())]
    #[diagnostic(
        code(weft::secrets::unknown),
        help("`weft secrets ls -e {env}` lists the names")
    )]
    Unknown {
        name: String,
        file: PathBuf,
        env: String,
    },
    #[error("env `{env}` has no secrets file `{}`", .file.display())]
    #[diagnostic(
        code(weft::secrets::no_file),
        help("make it: weft secrets set NAME -e {env}, or weft secrets edit -e {env}")
    )]
    NoFile { file: PathBuf, env: String },
    #[error("{0}")]
    #[diagnostic(code(weft::secrets::io))]
    Io(String),
    #[error("the editor `{editor}` failed ({status}): `{}` is unchanged", .file.display())]
    #[diagnostic(code(weft::secrets::editor))]
    Editor {
        editor: String,
        status: String,
        file: PathBuf,
    },
    #[error("the edited text is not `NAME=value` lines: {source}; `{}` is unchanged and the edit was discarded", .file.display())]
    #[diagnostic(code(weft::secrets::syntax))]
    Edited {
        file: PathBuf,
        source: vault::VaultError,
    },
}

/// Runs a `weft secrets` subcommand.
pub fn secrets(ctx: &Context, command: SecretsCommand) -> Result<i32> {
    if let SecretsCommand::Keygen = command {
        let (path, public) = vault::keygen()?;
        crate::logging::note(&format!(
            "wrote `{}`: keep it private; list its public key in `secrets_recipients`",
            path.display()
        ));
        outln!("{public}");
        return Ok(EXIT_OK);
    }
    let (project, _) = ctx.project()?;
    match command {
        SecretsCommand::Keygen => Ok(EXIT_OK),
        SecretsCommand::Set { name, env } => {
            let env = Inventory::env_name(&project, env.as_deref());
            if !vault::valid_name(&name) {
                return Err(SecretsError::Name(name).into());
            }
            let value = read_value(&name)?;
            let file = vault::file(&project.root, &env);
            let recipients = vault::recipients(&env, &recipients_of(&project, &env))?;
            let text = if file.exists() {
                Identity::load()?.decrypt(&file, &env)?
            } else {
                String::new()
            };
            let text = vault::set(&text, &name, &value);
            vault::write(&file, &text, &recipients)?;
            crate::logging::note(&format!("set `{name}` in `{}`", shown(&project, &file)));
            Ok(EXIT_OK)
        }
        SecretsCommand::Get { name, env } => {
            let env = Inventory::env_name(&project, env.as_deref());
            let file = existing(&project, &env)?;
            let entries = Identity::load()?.read(&file, &env)?;
            let value = entries
                .get(&name)
                .ok_or(SecretsError::Unknown { name, file, env })?;
            outln!("{value}");
            Ok(EXIT_OK)
        }
        SecretsCommand::Ls { env } => {
            let env = Inventory::env_name(&project, env.as_deref());
            let file = existing(&project, &env)?;
            for name in Identity::load()?.read(&file, &env)?.keys() {
                outln!("{name}");
            }
            Ok(EXIT_OK)
        }
        SecretsCommand::Rekey { env } => {
            let env = Inventory::env_name(&project, env.as_deref());
            let file = existing(&project, &env)?;
            let keys = recipients_of(&project, &env);
            let recipients = vault::recipients(&env, &keys)?;
            let text = Identity::load()?.decrypt(&file, &env)?;
            vault::write(&file, &text, &recipients)?;
            crate::logging::note(&format!(
                "re-encrypted `{}` to {} recipient(s)",
                shown(&project, &file),
                keys.len()
            ));
            Ok(EXIT_OK)
        }
        SecretsCommand::Edit { env } => {
            let env = Inventory::env_name(&project, env.as_deref());
            edit(&project, &env)
        }
    }
}

/// `secrets_recipients` of `env` in weft.toml.
fn recipients_of(project: &Project, env: &str) -> Vec<String> {
    project
        .config
        .as_ref()
        .and_then(|c| c.file.env.get(env))
        .map(|s| s.secrets_recipients.clone())
        .unwrap_or_default()
}

/// The secrets file of `env`, which must exist.
fn existing(project: &Project, env: &str) -> Result<PathBuf, SecretsError> {
    let file = vault::file(&project.root, env);
    if file.exists() {
        Ok(file)
    } else {
        Err(SecretsError::NoFile {
            file,
            env: env.to_string(),
        })
    }
}

/// `file` relative to the project, as people name it.
fn shown(project: &Project, file: &Path) -> String {
    file.strip_prefix(&project.root)
        .unwrap_or(file)
        .display()
        .to_string()
}

/// The value of `name`: asked without echo on a terminal, else all of standard input without
/// its final newline.
fn read_value(name: &str) -> Result<String, SecretsError> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("value of {name}: "))
            .map_err(|e| SecretsError::Io(format!("cannot read the value: {e}")))?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| SecretsError::Io(format!("cannot read standard input: {e}")))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        text
    };
    if value.contains(['\n', '\r', '\0']) {
        return Err(SecretsError::Value(name.to_string()));
    }
    Ok(value)
}

/// Set by the signal handler while the editor runs.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and SIGHUP caught (so weft lives to remove the plaintext) until dropped,
/// which puts the previous handlers back.
struct CatchSignals {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl CatchSignals {
    fn install() -> Self {
        SIGNALLED.store(false, Ordering::SeqCst);
        let mut previous = Vec::new();
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe; the
            // structs are zeroed C structs filled before use.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut old) == 0 {
                    previous.push((signal, old));
                }
            }
        }
        CatchSignals { previous }
    }
}

impl Drop for CatchSignals {
    fn drop(&mut self) {
        for (signal, old) in &self.previous {
            // SAFETY: restores an action sigaction returned.
            unsafe {
                libc::sigaction(*signal, old, std::ptr::null_mut());
            }
        }
    }
}

/// A private folder (0700) for the plaintext, removed with all it holds when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    /// On `/dev/shm` when there is one, else in `$XDG_RUNTIME_DIR`, else the temporary folder:
    /// memory-backed first, so the plaintext never reaches a disk.
    fn new() -> Result<Self, SecretsError> {
        use std::os::unix::fs::DirBuilderExt;
        let bases = [
            Some(PathBuf::from("/dev/shm")),
            std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
            Some(std::env::temp_dir()),
        ];
        let mut last = String::from("no temporary folder");
        for base in bases.into_iter().flatten().filter(|b| b.is_dir()) {
            let dir = base.join(format!("weft-secrets-{:016x}", fastrand::u64(..)));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(PrivateDir(dir)),
                Err(e) => last = format!("cannot make `{}`: {e}", dir.display()),
            }
        }
        Err(SecretsError::Io(last))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `weft secrets edit`: decrypt into a private file, run `$EDITOR` on it, re-encrypt what
/// changed; the plaintext is removed on every path out, a signal included.
fn edit(project: &Project, env: &str) -> Result<i32> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let file = vault::file(&project.root, env);
    let recipients = vault::recipients(env, &recipients_of(project, env))?;
    let before = if file.exists() {
        Identity::load()?.decrypt(&file, env)?
    } else {
        format!("# secrets of env `{env}`: NAME=value, one a line\n")
    };
    let signals = CatchSignals::install();
    let dir = PrivateDir::new()?;
    let plain = dir.0.join(format!("{env}.env"));
    let io = |e: std::io::Error| SecretsError::Io(format!("`{}`: {e}", plain.display()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&plain)
        .and_then(|mut f| f.write_all(before.as_bytes()))
        .map_err(io)?;
    let editor = std::env::var("VISUAL")
        .ok()
        .or_else(|| std::env::var("EDITOR").ok())
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    // As git runs it: `$EDITOR` may hold arguments.
    let mut child = std::process::Command::new("sh")
        .args(["-c", &format!("exec {editor} \"$1\""), "sh"])
        .arg(&plain)
        .spawn()
        .map_err(|e| SecretsError::Io(format!("cannot run `{editor}`: {e}")))?;
    let status = wait(&mut child).map_err(|e| SecretsError::Io(format!("`{editor}`: {e}")))?;
    let Some(status) = status.filter(|_| !SIGNALLED.load(Ordering::SeqCst)) else {
        drop(dir);
        drop(signals);
        crate::logging::note(&format!(
            "interrupted: the plaintext was removed; `{}` is unchanged",
            shown(project, &file)
        ));
        return Ok(EXIT_INTERRUPTED);
    };
    if !status.success() {
        return Err(SecretsError::Editor {
            editor,
            status: status.to_string(),
            file,
        }
        .into());
    }
    let after = std::fs::read_to_string(&plain).map_err(io)?;
    drop(dir);
    drop(signals);
    if after == before {
        crate::logging::note(&format!("no change: `{}`", shown(project, &file)));
        return Ok(EXIT_OK);
    }
    if let Err(source) = vault::parse(&after) {
        return Err(SecretsError::Edited { file, source }.into());
    }
    vault::write(&file, &after, &recipients)?;
    crate::logging::note(&format!("encrypted `{}`", shown(project, &file)));
    Ok(EXIT_OK)
}

/// Waits for the editor; `None` when a signal came first, after ending it (TERM, then KILL
/// a second later).
fn wait(child: &mut std::process::Child) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if SIGNALLED.load(Ordering::SeqCst) {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: signals our own child, which has not been reaped yet.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            for _ in 0..20 {
                if child.try_wait()?.is_some() {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
