//! An env's encrypted secrets file, `secrets/<env>.age` in the project (issue 37): `NAME=value`
//! lines encrypted with age to the env's `secrets_recipients`, decrypted with the identity of
//! the person running weft (`WEFT_AGE_IDENTITY`, else `$XDG_CONFIG_HOME/weft/age.key`, else
//! `~/.config/weft/age.key`; age keys or an SSH ed25519/RSA private key without passphrase) and
//! `~/.ssh/id_ed25519` when it has no passphrase. Recipients are age public keys (`age1...`)
//! or SSH public keys (`ssh-ed25519 ...`, `ssh-rsa ...`). Files are replaced through a sibling
//! and a rename.
//!
//! The plaintext: one `NAME=value` a line; `NAME` is letters, digits and `_`, not starting with
//! a digit; the value is the rest of the line as it is (no quotes, no escapes, one line). Blank
//! lines and lines starting with `#` are comments.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use miette::Diagnostic;
use thiserror::Error;

/// The secrets of one env: name → value.
pub type Entries = BTreeMap<String, String>;

/// What goes wrong with a secrets file or an identity.
#[derive(Debug, Error, Diagnostic)]
pub enum VaultError {
    /// No identity file.
    #[error("no age identity: {}", .where_.describe())]
    #[diagnostic(
        code(weft::secrets::no_identity),
        help("make one with `weft secrets keygen`, then ask a teammate to add its public key to the env's `secrets_recipients` and run `weft secrets rekey -e ENV`")
    )]
    NoIdentity {
        /// Where it was looked for.
        where_: IdentitySource,
    },
    /// The identity file cannot be read or parsed.
    #[error("cannot use the age identity `{}`: {message}", .path.display())]
    #[diagnostic(code(weft::secrets::identity))]
    BadIdentity {
        /// The identity file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The person's identity is not one of the file's recipients.
    #[error(
        "cannot decrypt `{}`: your identity {identity} ({public}) is not one of its recipients",
        .file.display()
    )]
    #[diagnostic(
        code(weft::secrets::not_a_recipient),
        help("ask someone who can decrypt it to add your public key to `[env.{env}] secrets_recipients` in weft.toml and run `weft secrets rekey -e {env}`")
    )]
    NotRecipient {
        /// The secrets file.
        file: PathBuf,
        /// The env it belongs to.
        env: String,
        /// The identity files used.
        identity: String,
        /// Its public keys.
        public: String,
    },
    /// The file is not a valid age file, or its plaintext is not `NAME=value` lines.
    #[error("cannot read `{}`: {message}", .file.display())]
    #[diagnostic(code(weft::secrets::file))]
    File {
        /// The secrets file.
        file: PathBuf,
        /// Why.
        message: String,
    },
    /// A recipient in weft.toml that is not an age public key.
    #[error(
        "`[env.{env}] secrets_recipients`: `{recipient}` is not an age public key ({message})"
    )]
    #[diagnostic(
        code(weft::secrets::recipient),
        help("recipients are age public keys, `age1...` (`weft secrets keygen` prints one), or SSH public keys, `ssh-ed25519 AAAA...`")
    )]
    BadRecipient {
        /// The env.
        env: String,
        /// The key as written.
        recipient: String,
        /// Why.
        message: String,
    },
    /// An env without recipients cannot get a secrets file.
    #[error("env `{env}` lists no `secrets_recipients`: nobody could decrypt its secrets file")]
    #[diagnostic(
        code(weft::secrets::no_recipients),
        help("list the age public keys of those who may read the env's secrets: [env.{env}] secrets_recipients = [\"age1...\"] (`weft secrets keygen` prints yours)")
    )]
    NoRecipients {
        /// The env.
        env: String,
    },
    /// A plaintext line that is not `NAME=value`.
    #[error("line {line}: {message}")]
    #[diagnostic(code(weft::secrets::syntax))]
    Syntax {
        /// 1-based.
        line: usize,
        /// Why.
        message: String,
    },
    /// Writing failed.
    #[error("cannot write `{}`: {source}", .path.display())]
    #[diagnostic(code(weft::secrets::write))]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the identity comes from.
#[derive(Debug, Clone)]
pub struct IdentitySource {
    /// The file.
    pub path: PathBuf,
    /// Whether `WEFT_AGE_IDENTITY` names it.
    pub from_env: bool,
}

impl IdentitySource {
    /// `WEFT_AGE_IDENTITY` when set, else `$XDG_CONFIG_HOME/weft/age.key`, else
    /// `~/.config/weft/age.key`.
    pub fn find() -> Self {
        if let Some(path) = std::env::var_os("WEFT_AGE_IDENTITY").filter(|p| !p.is_empty()) {
            return IdentitySource {
                path: path.into(),
                from_env: true,
            };
        }
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))
            .unwrap_or_else(|| PathBuf::from(".config"));
        IdentitySource {
            path: config.join("weft").join("age.key"),
            from_env: false,
        }
    }

    fn describe(&self) -> String {
        if self.from_env {
            format!(
                "`{}` (WEFT_AGE_IDENTITY) does not exist",
                self.path.display()
            )
        } else {
            format!(
                "WEFT_AGE_IDENTITY is unset and `{}` does not exist",
                self.path.display()
            )
        }
    }
}

/// One key of the person running weft.
enum Key {
    Age(age::x25519::Identity),
    Ssh(age::ssh::Identity),
}

impl Key {
    fn as_identity(&self) -> &dyn age::Identity {
        match self {
            Key::Age(key) => key,
            Key::Ssh(key) => key,
        }
    }
}

/// The identities of the person running weft, loaded once.
pub struct Identity {
    /// The files they come from.
    pub files: Vec<PathBuf>,
    keys: Vec<Key>,
    /// Their public keys, as recipients are written (an SSH key's when its `.pub` is beside it).
    public: Vec<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.describe())
    }
}

/// The public key in `<path>.pub`, type and key without the comment.
fn ssh_public(path: &Path) -> String {
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    std::fs::read_to_string(&pub_path)
        .ok()
        .and_then(|text| {
            let mut words = text.split_whitespace();
            Some(format!("{} {}", words.next()?, words.next()?))
        })
        .unwrap_or_else(|| "an SSH key".into())
}

/// An SSH private key without passphrase in `text`; `Err` says why not.
fn ssh_key(text: &str, path: &Path) -> Result<age::ssh::Identity, String> {
    match age::ssh::Identity::from_buffer(text.as_bytes(), Some(path.display().to_string())) {
        Ok(key @ age::ssh::Identity::Unencrypted(_)) => Ok(key),
        Ok(age::ssh::Identity::Encrypted(_)) => {
            Err("an SSH key with a passphrase is not supported yet".into())
        }
        Ok(age::ssh::Identity::Unsupported(_)) => {
            Err("this kind of SSH key is not supported".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

impl Identity {
    /// Loads the identity file of `IdentitySource::find` (`AGE-SECRET-KEY-1...` lines, `#`
    /// comments and blank lines; or an SSH private key) and `~/.ssh/id_ed25519` when it has no
    /// passphrase.
    pub fn load() -> Result<Self, VaultError> {
        let source = IdentitySource::find();
        let mut identity = Identity {
            files: Vec::new(),
            keys: Vec::new(),
            public: Vec::new(),
        };
        match std::fs::read_to_string(&source.path) {
            Ok(text) => identity.add_file(&source.path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(VaultError::BadIdentity {
                    path: source.path,
                    message: e.to_string(),
                })
            }
        }
        if let Some(home) = std::env::var_os("HOME") {
            let path = Path::new(&home).join(".ssh").join("id_ed25519");
            let key = std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| ssh_key(&text, &path).ok());
            if let Some(key) = key.filter(|_| !identity.files.contains(&path)) {
                identity.public.push(ssh_public(&path));
                identity.keys.push(Key::Ssh(key));
                identity.files.push(path);
            }
        }
        if identity.keys.is_empty() {
            return Err(VaultError::NoIdentity { where_: source });
        }
        Ok(identity)
    }

    /// Adds the keys of the identity file `path`, whose content is `text`.
    fn add_file(&mut self, path: &Path, text: &str) -> Result<(), VaultError> {
        let bad = |message: String| VaultError::BadIdentity {
            path: path.to_path_buf(),
            message,
        };
        if text.trim_start().starts_with("-----BEGIN") {
            let key = ssh_key(text, path).map_err(bad)?;
            self.public.push(ssh_public(path));
            self.keys.push(Key::Ssh(key));
            self.files.push(path.to_path_buf());
            return Ok(());
        }
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = age::x25519::Identity::from_str(line).map_err(|_| {
                bad(format!(
                    "line {} is not an age secret key (`AGE-SECRET-KEY-1...`) and the file is no SSH private key",
                    n + 1
                ))
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(bad("it holds no key".into()));
        }
        for key in keys {
            self.public.push(key.to_public().to_string());
            self.keys.push(Key::Age(key));
        }
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// The public keys (recipients) of this identity, comma-separated.
    pub fn public(&self) -> String {
        self.public.join(", ")
    }

    /// The identity files, as people read them.
    pub fn describe(&self) -> String {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|f| format!("`{}`", f.display()))
            .collect();
        files.join(" and ")
    }

    /// Decrypts the secrets file `file` of `env` into its plaintext.
    pub fn decrypt(&self, file: &Path, env: &str) -> Result<String, VaultError> {
        let bad = |message: String| VaultError::File {
            file: file.to_path_buf(),
            message,
        };
        let data = std::fs::read(file).map_err(|e| bad(e.to_string()))?;
        let decryptor =
            age::Decryptor::new_buffered(data.as_slice()).map_err(|e| bad(e.to_string()))?;
        let identities = self.keys.iter().map(Key::as_identity);
        let mut reader = decryptor.decrypt(identities).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => VaultError::NotRecipient {
                file: file.to_path_buf(),
                env: env.to_string(),
                identity: self.describe(),
                public: self.public(),
            },
            e => bad(e.to_string()),
        })?;
        let mut plain = Vec::new();
        reader
            .read_to_end(&mut plain)
            .map_err(|e| bad(e.to_string()))?;
        String::from_utf8(plain).map_err(|_| bad("its plaintext is not UTF-8".into()))
    }

    /// Decrypts and parses the secrets file `file` of `env`.
    pub fn read(&self, file: &Path, env: &str) -> Result<Entries, VaultError> {
        let text = self.decrypt(file, env)?;
        parse(&text).map_err(|e| VaultError::File {
            file: file.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// Makes a new identity file at `IdentitySource::find`'s path (0600, never over an existing
/// one); returns its path and public key.
pub fn keygen() -> Result<(PathBuf, String), VaultError> {
    use age::secrecy::ExposeSecret;
    let path = IdentitySource::find().path;
    let key = age::x25519::Identity::generate();
    let public = key.to_public().to_string();
    let text = format!(
        "# weft secrets identity: keep it private, never in git\n# public key: {public}\n{}\n",
        key.to_string().expose_secret()
    );
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    write().map_err(|source| VaultError::Write {
        path: path.clone(),
        source,
    })?;
    Ok((path, public))
}

/// The secrets file of `env` in the project folder `root`.
pub fn file(root: &Path, env: &str) -> PathBuf {
    root.join("secrets").join(format!("{env}.age"))
}

/// A recipient: an age or SSH public key.
pub type Recipient = Box<dyn age::Recipient + Send>;

/// The recipients of `env`, checked: age public keys (`age1...`) and SSH public keys
/// (`ssh-ed25519 ...`, `ssh-rsa ...`, a comment after them allowed).
pub fn recipients(env: &str, keys: &[String]) -> Result<Vec<Recipient>, VaultError> {
    if keys.is_empty() {
        return Err(VaultError::NoRecipients {
            env: env.to_string(),
        });
    }
    keys.iter()
        .map(|key| {
            let bad = |message: String| VaultError::BadRecipient {
                env: env.to_string(),
                recipient: key.clone(),
                message,
            };
            let key = key.trim();
            if key.starts_with("ssh-") {
                // Type and key; a comment after them is not part of the key.
                let bare: Vec<&str> = key.split_whitespace().take(2).collect();
                age::ssh::Recipient::from_str(&bare.join(" "))
                    .map(|r| Box::new(r) as Recipient)
                    .map_err(|e| bad(format!("{e:?}")))
            } else {
                age::x25519::Recipient::from_str(key)
                    .map(|r| Box::new(r) as Recipient)
                    .map_err(|e| bad(e.to_string()))
            }
        })
        .collect()
}

/// Encrypts `plain` to `recipients` and replaces `file` with it (through a sibling and a
/// rename; the `secrets/` folder is made when missing).
pub fn write(file: &Path, plain: &str, recipients: &[Recipient]) -> Result<(), VaultError> {
    let failed = |source: std::io::Error| VaultError::Write {
        path: file.to_path_buf(),
        source,
    };
    let encryptor = age::Encryptor::with_recipients(
        recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
    )
    .map_err(|e| failed(std::io::Error::other(e.to_string())))?;
    let mut data = Vec::new();
    let mut writer = encryptor.wrap_output(&mut data).map_err(failed)?;
    writer.write_all(plain.as_bytes()).map_err(failed)?;
    writer.finish().map_err(failed)?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    crate::lockfile::replace(file, &data, 0o644).map_err(failed)
}

/// Whether `name` may name a secret: letters, digits and `_`, not starting with a digit.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The entries of a plaintext; a line that is not `NAME=value`, or a name given twice, is an
/// error naming the line.
pub fn parse(text: &str) -> Result<Entries, VaultError> {
    let mut entries = Entries::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let syntax = |message: String| VaultError::Syntax {
            line: n + 1,
            message,
        };
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| syntax("not `NAME=value`".into()))?;
        let name = name.trim();
        if !valid_name(name) {
            return Err(syntax(format!(
                "`{name}` is not a secret name (letters, digits and `_`)"
            )));
        }
        if entries
            .insert(name.to_string(), value.to_string())
            .is_some()
        {
            return Err(syntax(format!("`{name}` is given twice")));
        }
    }
    Ok(entries)
}

/// `text` with `name` set to `value`: its line replaced where it has one, else appended.
pub fn set(text: &str, name: &str, value: &str) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        let is_it = line
            .split_once('=')
            .is_some_and(|(n, _)| n.trim() == name && !line.trim_start().starts_with('#'));
        if is_it {
            if !done {
                out.push_str(&format!("{name}={value}\n"));
                done = true;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        out.push_str(&format!("{name}={value}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_name_value_lines() {
        let entries = parse("# db\nDB_PASSWORD=a=b c \n\n  TOKEN=x\n").expect("parses");
        assert_eq!(entries["DB_PASSWORD"], "a=b c ");
        assert_eq!(entries["TOKEN"], "x");
        let err = parse("A=1\nnope\n").unwrap_err().to_string();
        assert_eq!(err, "line 2: not `NAME=value`");
        let err = parse("A=1\nA=2\n").unwrap_err().to_string();
        assert_eq!(err, "line 2: `A` is given twice");
        assert!(parse("1A=2").is_err());
    }

    #[test]
    fn set_replaces_or_appends_and_keeps_comments() {
        let text = "# keep\nA=1\nB=2\n";
        assert_eq!(set(text, "A", "x"), "# keep\nA=x\nB=2\n");
        assert_eq!(set(text, "C", "3"), "# keep\nA=1\nB=2\nC=3\n");
        assert_eq!(set("", "C", "3"), "C=3\n");
    }

    #[test]
    fn round_trip_and_a_stranger_is_told_they_are_not_a_recipient() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let file = file(dir.path(), "prod");
        let keys = vec![me.to_public().to_string()];
        write(&file, "A=1\n", &recipients("prod", &keys).expect("keys")).expect("writes");
        let mine = Identity {
            files: vec!["me.key".into()],
            public: vec![me.to_public().to_string()],
            keys: vec![Key::Age(me)],
        };
        assert_eq!(mine.read(&file, "prod").expect("reads")["A"], "1");
        let theirs = Identity {
            files: vec!["other.key".into()],
            public: vec![other.to_public().to_string()],
            keys: vec![Key::Age(other)],
        };
        let err = theirs.read(&file, "prod").unwrap_err();
        assert!(matches!(err, VaultError::NotRecipient { .. }), "{err}");
        assert!(err.to_string().contains("is not one of its recipients"));
        assert!(recipients("prod", &[]).is_err());
        assert!(recipients("prod", &["ssh-ed25519 AAAA".into()]).is_err());
        assert!(recipients("prod", &["age1nope".into()]).is_err());
    }
}
