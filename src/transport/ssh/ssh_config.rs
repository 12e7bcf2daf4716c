//! The subset of OpenSSH's `ssh_config` weft honours: Host patterns, HostName, User, Port,
//! IdentityFile, ProxyJump, KexAlgorithms and Ciphers. The first value found for a keyword
//! wins, as in OpenSSH.

use std::path::{Path, PathBuf};

/// What the config says about one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// `HostName`: the real address.
    pub hostname: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `IdentityFile`s, in order.
    pub identity_files: Vec<PathBuf>,
    /// `ProxyJump`: jump hosts, first hop first; `none` clears it.
    pub proxy_jump: Option<Vec<String>>,
    /// `KexAlgorithms`, as written (see `algorithms`).
    pub kex_algorithms: Option<String>,
    /// `Ciphers`, as written.
    pub ciphers: Option<String>,
}

#[derive(Debug, Clone)]
struct Block {
    patterns: Vec<String>,
    entries: Vec<(String, String)>,
}

/// A parsed `ssh_config` file.
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    blocks: Vec<Block>,
}

impl SshConfig {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(err),
        }
    }

    /// Parses config text; unknown keywords are ignored, as OpenSSH ignores what it may not use.
    pub fn parse(text: &str) -> Self {
        let mut blocks = vec![Block {
            patterns: vec!["*".into()],
            entries: Vec::new(),
        }];
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
                Some((k, v)) => (
                    k,
                    v.trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                        .trim(),
                ),
                None => continue,
            };
            let key = key.to_ascii_lowercase();
            let value = value.trim_matches('"').to_string();
            if key == "host" {
                blocks.push(Block {
                    patterns: value.split_whitespace().map(String::from).collect(),
                    entries: Vec::new(),
                });
            } else if key == "match" {
                // `Match` blocks need conditions weft does not evaluate: never apply them.
                blocks.push(Block {
                    patterns: Vec::new(),
                    entries: Vec::new(),
                });
            } else if let Some(block) = blocks.last_mut() {
                block.entries.push((key, value));
            }
        }
        SshConfig { blocks }
    }

    /// The settings for `host` (the name as given, before `HostName`).
    pub fn resolve(&self, host: &str) -> HostConfig {
        let mut out = HostConfig::default();
        for block in self
            .blocks
            .iter()
            .filter(|b| matches_patterns(b.patterns.iter().map(String::as_str), host))
        {
            for (key, value) in &block.entries {
                match key.as_str() {
                    "hostname" if out.hostname.is_none() => {
                        out.hostname = Some(value.replace("%h", host));
                    }
                    "user" if out.user.is_none() => out.user = Some(value.clone()),
                    "port" if out.port.is_none() => out.port = value.parse().ok(),
                    "identityfile" => {
                        out.identity_files.push(expand_tilde(value));
                    }
                    "kexalgorithms" if out.kex_algorithms.is_none() => {
                        out.kex_algorithms = Some(value.clone());
                    }
                    "ciphers" if out.ciphers.is_none() => out.ciphers = Some(value.clone()),
                    "proxyjump" if out.proxy_jump.is_none() => {
                        out.proxy_jump = Some(if value.eq_ignore_ascii_case("none") {
                            Vec::new()
                        } else {
                            value.split(',').map(|s| s.trim().to_string()).collect()
                        });
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

fn expand_tilde(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// OpenSSH pattern lists (config `Host` lines, known_hosts host fields): `*` and `?`
/// wildcards, and `!` negation, where a negated match excludes whatever else matched.
pub fn matches_patterns<'a>(patterns: impl IntoIterator<Item = &'a str>, host: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(negated, host) {
                return false;
            }
        } else if wildcard(pattern, host) {
            matched = true;
        }
    }
    matched
}

/// Glob matching with `*` (any run) and `?` (one character), case-insensitive like OpenSSH.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_and_patterns_match() {
        let config = SshConfig::parse(
            "Host web-*\n  HostName 10.0.0.%h\n  User deploy\n  ProxyJump bastion,jump2:2222\n\
             Host *.internal !secret.internal\n  Port 2200\nHost *\n  User root\n  Port 22\n  IdentityFile ~/.ssh/id_x\n",
        );
        let web = config.resolve("web-1");
        assert_eq!(web.user.as_deref(), Some("deploy"));
        assert_eq!(web.hostname.as_deref(), Some("10.0.0.web-1"));
        assert_eq!(web.port, Some(22));
        assert_eq!(
            web.proxy_jump,
            Some(vec!["bastion".into(), "jump2:2222".into()])
        );
        assert_eq!(config.resolve("a.internal").port, Some(2200));
        assert_eq!(config.resolve("secret.internal").port, Some(22));
        assert_eq!(config.resolve("other").identity_files.len(), 1);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.example.com", "a.example.com"));
        assert!(wildcard("10.0.0.?", "10.0.0.7"));
        assert!(!wildcard("10.0.0.?", "10.0.0.17"));
        assert!(wildcard("*", ""));
    }
}
