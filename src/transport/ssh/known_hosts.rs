//! `known_hosts` files: plain, hashed, `[host]:port`, wildcard and negated patterns,
//! `@cert-authority` (skipped: weft does not trust host certificates) and `@revoked`.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use russh::keys::ssh_key::PublicKey;

use super::ssh_config::matches_patterns;

/// One usable line of a known_hosts file.
#[derive(Debug, Clone)]
struct Entry {
    file: PathBuf,
    line: usize,
    revoked: bool,
    patterns: String,
    key: PublicKey,
}

/// What the files say about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A line lists this host with this key.
    Known,
    /// No line lists this host.
    Unknown,
    /// Lines list this host, with other keys; the first such line.
    Changed { file: PathBuf, line: usize },
    /// The key is marked `@revoked`.
    Revoked { file: PathBuf, line: usize },
}

/// The known_hosts files of a run, read once.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    files: Vec<PathBuf>,
    entries: Vec<Entry>,
    /// New keys are kept for this run only, never written (`--check` changes no file).
    memory_only: bool,
}

/// The name known_hosts uses for a host: `host`, or `[host]:port` off port 22.
pub fn host_key_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

fn hashed_matches(pattern: &str, name: &str) -> bool {
    let Some(rest) = pattern.strip_prefix("|1|") else {
        return false;
    };
    let Some((salt, hash)) = rest.split_once('|') else {
        return false;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Whether a host field (hashed, or a comma-separated pattern list) matches `name`.
fn patterns_match(patterns: &str, name: &str) -> bool {
    if patterns.starts_with("|1|") {
        return hashed_matches(patterns, name);
    }
    matches_patterns(patterns.split(','), name)
}

impl KnownHosts {
    /// Reads `files` in order; missing files are empty. The first file is where new keys go.
    pub fn load(files: Vec<PathBuf>) -> std::io::Result<Self> {
        let mut entries = Vec::new();
        for file in &files {
            let text = match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            for (index, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let mut words = line.split_whitespace();
                let mut first = words.next().unwrap_or_default();
                let mut revoked = false;
                if first.starts_with('@') {
                    match first {
                        "@revoked" => revoked = true,
                        // Host certificates are not trusted by weft; such lines never match.
                        _ => continue,
                    }
                    first = words.next().unwrap_or_default();
                }
                let (Some(kind), Some(data)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(key) = PublicKey::from_openssh(&format!("{kind} {data}")) else {
                    continue;
                };
                entries.push(Entry {
                    file: file.clone(),
                    line: index + 1,
                    revoked,
                    patterns: first.to_string(),
                    key,
                });
            }
        }
        Ok(KnownHosts {
            files,
            entries,
            memory_only: false,
        })
    }

    /// The files, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Checks `key` for `host` on `port`.
    pub fn verify(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = host_key_name(host, port);
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.revoked && e.key.key_data() == key.key_data())
        {
            return Verdict::Revoked {
                file: e.file.clone(),
                line: e.line,
            };
        }
        let mut mismatch = None;
        for entry in self
            .entries
            .iter()
            .filter(|e| !e.revoked && patterns_match(&e.patterns, &name))
        {
            if entry.key.key_data() == key.key_data() {
                return Verdict::Known;
            }
            mismatch.get_or_insert((entry.file.clone(), entry.line));
        }
        match mismatch {
            Some((file, line)) => Verdict::Changed { file, line },
            None => Verdict::Unknown,
        }
    }

    /// The key algorithms already known for `host`, so negotiation asks for those first.
    pub fn algorithms_for(&self, host: &str, port: u16) -> Vec<russh::keys::Algorithm> {
        let name = host_key_name(host, port);
        let mut algs: Vec<russh::keys::Algorithm> = Vec::new();
        for entry in self
            .entries
            .iter()
            .filter(|e| !e.revoked && patterns_match(&e.patterns, &name))
        {
            let alg = entry.key.algorithm();
            if !algs.contains(&alg) {
                algs.push(alg);
            }
        }
        algs
    }

    /// Keeps keys learnt from now on for this run only, writing no file.
    pub fn keep_in_memory(&mut self) {
        self.memory_only = true;
    }

    /// Records `key` for `host` in the first file (trust on first use).
    pub fn learn(&mut self, host: &str, port: u16, key: &PublicKey) -> std::io::Result<PathBuf> {
        let file = self
            .files
            .first()
            .cloned()
            .ok_or_else(|| std::io::Error::other("no known_hosts file to record the key in"))?;
        if self.memory_only {
            self.entries.push(Entry {
                file: file.clone(),
                line: 0,
                revoked: false,
                patterns: host_key_name(host, port),
                key: key.clone(),
            });
            return Ok(file);
        }
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = key
            .to_openssh()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut fields = text.split_whitespace();
        let line = format!(
            "{} {} {}\n",
            host_key_name(host, port),
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default()
        );
        // Under the file's lock, as weft's own edits of its known_hosts (which replace the
        // file by a rename): an append racing one would land in the replaced file and be lost.
        let _lock = crate::lockfile::FileLock::beside(&file)?;
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&file)?;
        // A file edited by hand may lack its final newline; appending straight onto that last
        // line would merge two entries and make the host it listed unknown.
        let mut prefix = "";
        if out.metadata()?.len() > 0 {
            let mut last = [0u8; 1];
            out.seek(std::io::SeekFrom::End(-1))?;
            out.read_exact(&mut last)?;
            if last[0] != b'\n' {
                prefix = "\n";
            }
        }
        // One write, so a reader never sees the separator without the entry.
        out.write_all(format!("{prefix}{line}").as_bytes())?;
        let count = std::fs::read_to_string(&file)
            .map(|t| t.lines().count())
            .unwrap_or(1);
        self.entries.push(Entry {
            file: file.clone(),
            line: count,
            revoked: false,
            patterns: host_key_name(host, port),
            key: key.clone(),
        });
        Ok(file)
    }
}

/// The command that forgets a host's key, for the error that reports a changed one.
pub fn forget_command(file: &Path, host: &str, port: u16) -> String {
    format!(
        "ssh-keygen -f {} -R {}",
        crate::shell::quote(&file.display().to_string()),
        crate::shell::quote(&host_key_name(host, port))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).expect("key")
    }

    fn known(text: &str) -> (tempfile::TempDir, KnownHosts) {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, text).expect("write");
        let hosts = KnownHosts::load(vec![file]).expect("load");
        (dir, hosts)
    }

    #[test]
    fn plain_port_wildcard_and_changed() {
        let (_d, hosts) = known(&format!(
            "# comment\n[127.0.0.1]:2201 {KEY_A}\n*.example.com,!evil.example.com {KEY_A}\n@cert-authority * {KEY_B}\n"
        ));
        assert_eq!(hosts.verify("127.0.0.1", 2201, &key(KEY_A)), Verdict::Known);
        assert!(matches!(
            hosts.verify("127.0.0.1", 2201, &key(KEY_B)),
            Verdict::Changed { line: 2, .. }
        ));
        assert_eq!(hosts.verify("127.0.0.1", 22, &key(KEY_A)), Verdict::Unknown);
        assert_eq!(
            hosts.verify("web.example.com", 22, &key(KEY_A)),
            Verdict::Known
        );
        assert_eq!(
            hosts.verify("evil.example.com", 22, &key(KEY_A)),
            Verdict::Unknown
        );
        assert_eq!(hosts.verify("other", 22, &key(KEY_B)), Verdict::Unknown);
    }

    #[test]
    fn hashed_and_revoked() {
        // `ssh-keygen -H` output for "[127.0.0.1]:2201" with a fixed salt.
        let salt = [7u8; 20];
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt).expect("mac");
        mac.update(b"[127.0.0.1]:2201");
        let b64 = base64::engine::general_purpose::STANDARD;
        let line = format!(
            "|1|{}|{} {KEY_A}\n@revoked * {KEY_B}\n",
            b64.encode(salt),
            b64.encode(mac.finalize().into_bytes())
        );
        let (_d, hosts) = known(&line);
        assert_eq!(hosts.verify("127.0.0.1", 2201, &key(KEY_A)), Verdict::Known);
        assert_eq!(
            hosts.verify("127.0.0.2", 2201, &key(KEY_A)),
            Verdict::Unknown
        );
        assert!(matches!(
            hosts.verify("x", 22, &key(KEY_B)),
            Verdict::Revoked { line: 2, .. }
        ));
    }

    #[test]
    fn learning_appends_and_is_then_known() {
        let (dir, mut hosts) = known("");
        hosts.learn("127.0.0.1", 2202, &key(KEY_B)).expect("learn");
        assert_eq!(hosts.verify("127.0.0.1", 2202, &key(KEY_B)), Verdict::Known);
        let text = std::fs::read_to_string(dir.path().join("known_hosts")).expect("read");
        assert!(text.starts_with("[127.0.0.1]:2202 ssh-ed25519 "), "{text}");
        let reloaded = KnownHosts::load(vec![dir.path().join("known_hosts")]).expect("load");
        assert_eq!(
            reloaded.verify("127.0.0.1", 2202, &key(KEY_B)),
            Verdict::Known
        );
    }

    #[test]
    fn learning_after_a_last_line_without_newline_keeps_that_line() {
        let (dir, mut hosts) = known(&format!("[127.0.0.1]:2201 {KEY_A}"));
        hosts.learn("127.0.0.1", 2202, &key(KEY_B)).expect("learn");
        let text = std::fs::read_to_string(dir.path().join("known_hosts")).expect("read");
        assert_eq!(text.lines().count(), 2, "{text}");
        let reloaded = KnownHosts::load(vec![dir.path().join("known_hosts")]).expect("load");
        assert_eq!(
            reloaded.verify("127.0.0.1", 2201, &key(KEY_A)),
            Verdict::Known
        );
        assert_eq!(
            reloaded.verify("127.0.0.1", 2202, &key(KEY_B)),
            Verdict::Known
        );
    }
}
