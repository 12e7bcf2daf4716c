//! The key exchanges and ciphers weft offers a host: its defaults, or what `KexAlgorithms` and
//! `Ciphers` in the ssh config say, read as OpenSSH reads them (`+` appends to the defaults,
//! `-` removes from them, wildcards allowed, `^` puts first; a plain list replaces them).

use std::borrow::Cow;

use russh::{cipher, kex};

use super::ssh_config::{wildcard, HostConfig};

/// The algorithm lists for one host, checked against what weft implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Algorithms {
    /// Key exchanges, best first.
    pub kex: Vec<kex::Name>,
    /// Ciphers, best first.
    pub ciphers: Vec<cipher::Name>,
}

impl Default for Algorithms {
    fn default() -> Self {
        Algorithms {
            kex: russh::Preferred::default().kex.to_vec(),
            ciphers: default_ciphers().to_vec(),
        }
    }
}

impl Algorithms {
    /// The lists `config` asks for; an error names the keyword and what is wrong with it.
    pub fn for_host(config: &HostConfig) -> Result<Self, String> {
        let defaults = russh::Preferred::default();
        let kex = resolve(
            "KexAlgorithms",
            config.kex_algorithms.as_deref(),
            &defaults.kex,
            kex::ALL_KEX_ALGORITHMS,
            is_extension,
        )?;
        let ciphers = resolve(
            "Ciphers",
            config.ciphers.as_deref(),
            default_ciphers(),
            cipher::ALL_CIPHERS,
            |_| false,
        )?;
        Ok(Algorithms { kex, ciphers })
    }

    /// russh's preferences with these lists in them.
    pub fn preferred(&self) -> russh::Preferred {
        russh::Preferred {
            kex: Cow::Owned(self.kex.clone()),
            cipher: Cow::Owned(self.ciphers.clone()),
            ..russh::Preferred::default()
        }
    }
}

/// The names in the key exchange list that announce protocol extensions rather than name an
/// algorithm: strict key exchange (against the Terrapin attack) and `ext-info` (which offers
/// rsa-sha2 signatures). They stay whatever the config says.
fn is_extension(name: &str) -> bool {
    name.starts_with("ext-info-") || name.starts_with("kex-strict-")
}

/// Applies `spec` (a keyword's value, if any) to `defaults`, keeping only names in `known`;
/// the defaults that are `pinned` stay at the end whatever `spec` says.
fn resolve<N>(
    keyword: &str,
    spec: Option<&str>,
    defaults: &[N],
    known: &[&N],
    pinned: fn(&str) -> bool,
) -> Result<Vec<N>, String>
where
    N: Copy + AsRef<str>,
{
    let Some(spec) = spec else {
        return Ok(defaults.to_vec());
    };
    let (kept, defaults): (Vec<N>, Vec<N>) = defaults.iter().partition(|n| pinned(n.as_ref()));
    let known: Vec<&N> = known
        .iter()
        .copied()
        .filter(|n| !pinned(n.as_ref()))
        .collect();
    let find = |name: &str| known.iter().find(|n| n.as_ref() == name).map(|n| **n);
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let exact = |list: &str| -> Result<Vec<N>, String> {
        names(list)
            .iter()
            .map(|name| {
                find(name).ok_or_else(|| {
                    format!("{keyword} names `{name}`, which weft does not implement")
                })
            })
            .collect()
    };
    let mut chosen = if let Some(rest) = spec.strip_prefix('+') {
        let mut list = defaults.to_vec();
        for name in exact(rest)? {
            if !list.iter().any(|n| n.as_ref() == name.as_ref()) {
                list.push(name);
            }
        }
        list
    } else if let Some(rest) = spec.strip_prefix('-') {
        let patterns = names(rest);
        defaults
            .iter()
            .copied()
            .filter(|n| !patterns.iter().any(|p| wildcard(p, n.as_ref())))
            .collect()
    } else if let Some(rest) = spec.strip_prefix('^') {
        let mut list = exact(rest)?;
        for name in &defaults {
            if !list.iter().any(|n| n.as_ref() == name.as_ref()) {
                list.push(*name);
            }
        }
        list
    } else {
        exact(spec)?
    };
    if chosen.is_empty() {
        return Err(format!("{keyword} `{spec}` leaves nothing to offer"));
    }
    chosen.extend(kept);
    Ok(chosen)
}

/// The ciphers weft offers by default, best first. Where this CPU has AES instructions
/// AES-GCM comes first, as in Go's SSH and TLS stacks: hosts nearly always have them too, and
/// then both ends move bulk data (uploads, dumps) in hardware, while OpenSSH's
/// ChaCha20-Poly1305 uses its own portable Poly1305 (a 1 MiB upload costs sshd about a tenth
/// more CPU with it).
fn default_ciphers() -> &'static [cipher::Name] {
    use cipher::{AES_128_CTR, AES_128_GCM, AES_256_CTR, AES_256_GCM, CHACHA20_POLY1305};
    const AES_FIRST: &[cipher::Name] = &[
        AES_256_GCM,
        AES_128_GCM,
        CHACHA20_POLY1305,
        AES_256_CTR,
        AES_128_CTR,
    ];
    const CHACHA_FIRST: &[cipher::Name] = &[
        CHACHA20_POLY1305,
        AES_256_GCM,
        AES_128_GCM,
        AES_256_CTR,
        AES_128_CTR,
    ];
    if has_aes_instructions() {
        AES_FIRST
    } else {
        CHACHA_FIRST
    }
}

fn has_aes_instructions() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(target_arch = "aarch64")]
    return std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull");
    #[allow(unreachable_code)]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(kex: Option<&str>, ciphers: Option<&str>) -> Result<Algorithms, String> {
        Algorithms::for_host(&HostConfig {
            kex_algorithms: kex.map(String::from),
            ciphers: ciphers.map(String::from),
            ..HostConfig::default()
        })
    }

    fn names<N: AsRef<str>>(list: &[N]) -> Vec<&str> {
        list.iter().map(AsRef::as_ref).collect()
    }

    #[test]
    fn defaults_are_russh_s_key_exchanges_and_an_aead_first() {
        let algs = with(None, None).unwrap();
        assert_eq!(algs.kex, russh::Preferred::default().kex.to_vec());
        for name in &algs.ciphers {
            assert!(cipher::ALL_CIPHERS.contains(&name), "{name:?}");
        }
        let first = algs.ciphers[0].as_ref();
        assert!(
            first.contains("gcm") || first.contains("poly1305"),
            "{first}"
        );
    }

    #[test]
    fn lists_replace_append_remove_and_lead_as_in_openssh() {
        // Strict kex and ext-info stay announced whatever the list says.
        let defaults = russh::Preferred::default();
        let extensions: Vec<&str> = names(&defaults.kex)
            .into_iter()
            .filter(|n| is_extension(n))
            .collect();
        assert!(extensions.iter().any(|n| n.starts_with("kex-strict-c")));
        let plain = with(Some("ecdh-sha2-nistp256,curve25519-sha256"), None).unwrap();
        let wanted = [
            &["ecdh-sha2-nistp256", "curve25519-sha256"][..],
            &extensions,
        ]
        .concat();
        assert_eq!(names(&plain.kex), wanted);
        let first = with(Some("^ecdh-sha2-nistp256"), None).unwrap();
        assert_eq!(names(&first.kex)[0], "ecdh-sha2-nistp256");
        assert_eq!(first.kex.len(), russh::Preferred::default().kex.len() + 1);
        let none_left = with(Some("-*"), None).unwrap_err();
        assert!(none_left.contains("nothing"), "{none_left}");
        let fewer = with(None, Some("-chacha20*,aes128-*")).unwrap();
        assert_eq!(names(&fewer.ciphers).len(), 2);
        assert!(names(&fewer.ciphers)
            .iter()
            .all(|c| c.starts_with("aes256")));
        let more = with(None, Some("+aes128-cbc")).unwrap();
        assert_eq!(names(&more.ciphers).last(), Some(&"aes128-cbc"));
    }

    #[test]
    fn unknown_names_and_empty_lists_are_errors_that_name_the_keyword() {
        let err = with(Some("sntrup4591761x25519-sha512@tinyssh.org"), None).unwrap_err();
        assert!(
            err.contains("KexAlgorithms") && err.contains("sntrup4591761"),
            "{err}"
        );
        let err = with(None, Some("-*")).unwrap_err();
        assert!(err.contains("Ciphers") && err.contains("nothing"), "{err}");
    }
}
