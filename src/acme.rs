//! ACME certificates (RFC 8555, issue 35) ordered from the controller: the account, the order,
//! HTTP-01 challenges handed to the caller to publish on every lb, and the certificate chain
//! and its new key written to a root-only PEM here. Neither key ever leaves this module except
//! into files of mode 0600.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use thiserror::Error;

#[cfg(feature = "acme")]
mod client;
#[cfg(feature = "acme")]
pub use client::order;

/// What ends an order early (the run's Ctrl-C): a future that completes then.
pub type Stop = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Let's Encrypt's production directory, what `acme_directory = "production"` stands for.
pub const PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory, what `acme_directory = "staging"` stands for.
pub const STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Why a certificate could not be had.
#[derive(Debug, Error)]
pub enum AcmeError {
    /// `acme_ca` could not be read or holds no certificate.
    #[error("acme_ca `{path}`: {reason}")]
    Ca {
        /// The bundle.
        path: PathBuf,
        /// Why it is of no use.
        reason: String,
    },
    /// The directory is neither a shortcut nor an https URL.
    #[error("acme_directory `{0}` is not \"production\", \"staging\" or an https:// URL")]
    Directory(String),
    /// The ACME server refused a step or did not answer.
    #[error("ACME server {directory}: {step}: {source}")]
    Server {
        /// The directory URL.
        directory: String,
        /// What weft asked.
        step: &'static str,
        /// Its answer.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server sent a challenge token that is not base64url (RFC 8555 §8.3): it would go
    /// into haproxy's runtime API and a map file, so it is refused, not passed on.
    #[error(
        "ACME server sent a challenge token for `{domain}` that is not base64url (RFC 8555 \
         §8.3): {token:?}; weft refuses to put it on the load balancers"
    )]
    Token {
        /// The domain it was for.
        domain: String,
        /// The token, at most its first 64 characters.
        token: String,
    },
    /// This weft was built without the `acme` feature.
    #[error(
        "this weft was built without the `acme` feature (cargo build --no-default-features); \
         build it with the default features to get certificates over ACME"
    )]
    Unsupported,
    /// Some domains did not validate.
    #[error("{}", invalid_message(.0))]
    Invalid(Vec<(String, String)>),
    /// The challenges could not be put on the lbs.
    #[error("the challenges could not be put on the load balancers: {0}")]
    Publish(String),
    /// Ctrl-C ended the order before a certificate came; the one in use stays.
    #[error("interrupted: no certificate was ordered, the one in use stays")]
    Interrupted,
    /// The async runtime the exchange runs on could not start.
    #[error("cannot start the ACME client's runtime: {0}")]
    Runtime(std::io::Error),
    /// A file here could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn invalid_message(failed: &[(String, String)]) -> String {
    let names: Vec<String> = failed.iter().map(|(d, _)| format!("`{d}`")).collect();
    let details: Vec<String> = failed
        .iter()
        .map(|(d, why)| format!("{d}: {why}"))
        .collect();
    format!(
        "the ACME server could not validate {} ({}); check that each domain resolves to the load \
         balancers (their VIP) and that port 80 reaches them",
        names.join(", "),
        details.join("; ")
    )
}

/// What to order.
#[derive(Debug, Clone)]
pub struct CertRequest {
    /// The directory URL, or `production` / `staging`.
    pub directory: String,
    /// A PEM of roots to trust for the ACME server instead of the system's (Pebble's CA).
    pub ca: Option<PathBuf>,
    /// The folder that keeps the account, one file per directory.
    pub account_dir: PathBuf,
    /// The account's contact, or empty.
    pub email: String,
    /// The names of the certificate; the first is its subject.
    pub domains: Vec<String>,
    /// Where the chain, then the key, are written (mode 0600).
    pub out: PathBuf,
    /// How long the ACME server may take to validate every domain.
    pub validation_deadline: Duration,
}

/// One HTTP-01 challenge: the lbs answer `/.well-known/acme-challenge/<token>` with
/// `key_authorization`.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The domain it proves.
    pub domain: String,
    /// The last path segment asked.
    pub token: String,
    /// The body to answer (public by design: the ACME server reads it over plain HTTP).
    pub key_authorization: String,
}

/// The URL `directory` stands for.
pub fn directory_url(directory: &str) -> Result<String, AcmeError> {
    match directory {
        "" | "production" => Ok(PRODUCTION.to_string()),
        "staging" => Ok(STAGING.to_string()),
        url if url.starts_with("https://") => Ok(url.to_string()),
        other => Err(AcmeError::Directory(other.to_string())),
    }
}

/// Why `name` cannot be one of the `domains` weft gets a certificate for over HTTP-01, if it
/// cannot: a wildcard (proved over DNS only), a port, a path, no host name at all, or a name
/// written otherwise than the certificate will name it (capitals, a trailing dot), which
/// renewal would never find in it.
pub fn domain_problem(name: &str) -> Option<&'static str> {
    if name.contains('*') {
        return Some(
            "is a wildcard, which ACME proves over DNS only; weft answers HTTP-01: list each name",
        );
    }
    if name.contains(':') {
        return Some(
            "has a port: ACME validates every name over HTTP on port 80; give the name alone",
        );
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.ends_with('.') && name.len() > 1 {
        return Some("ends with a dot: give the name without it, as the certificate names it");
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(
            "has capital letters: write it in lowercase, as the certificate names it (DNS \
             names are the same in any case)",
        );
    }
    if name.len() > 253 || !name.contains('.') || !name.split('.').all(label_ok) {
        return Some("is not a domain name such as \"example.org\"");
    }
    None
}

/// Why `email` cannot be an ACME account's contact, if it cannot (the server refuses it, or
/// its `mailto:` URL would carry more than one address).
pub fn email_problem(email: &str) -> Option<&'static str> {
    if email.starts_with("mailto:") {
        return Some("starts with `mailto:`, which weft adds: give the address alone");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Some("is not an email address: it has no `@`");
    };
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_graphic() && !"@,;<>()[]\\\"".contains(c))
    };
    if !plain(local) || domain_problem(&domain.to_ascii_lowercase()).is_some() {
        return Some("is not an email address such as \"ops@example.org\"");
    }
    None
}

/// Without the `acme` feature there is no ACME client: every order says so.
#[cfg(not(feature = "acme"))]
pub fn order(
    _request: &CertRequest,
    _stop: Stop,
    _publish: impl FnOnce(&[Challenge]) -> Result<(), String>,
) -> Result<(), AcmeError> {
    Err(AcmeError::Unsupported)
}

impl Challenge {
    /// The challenge for `domain` with the server's `token`, answered with the key
    /// authorization built here from the account key's `thumbprint` (RFC 8555 §8.1). The
    /// token must be base64url (§8.3): it goes into a URL path, haproxy's runtime API (where
    /// `;` separates commands) and a map file (one line each).
    pub fn checked(domain: String, token: &str, thumbprint: &str) -> Result<Challenge, AcmeError> {
        let base64url = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !base64url(token) || !base64url(thumbprint) {
            return Err(AcmeError::Token {
                domain,
                token: token.chars().take(64).collect(),
            });
        }
        Ok(Challenge {
            domain,
            token: token.to_string(),
            key_authorization: format!("{token}.{thumbprint}"),
        })
    }
}

/// Whether a certificate is due for renewal, and when it would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// Why it is due: none yet, other names, expired or less than a third of its lifetime
    /// left; empty when it is not.
    pub reason: String,
    /// When it expires, in seconds since 1970 (0 when there is none).
    pub ends: i64,
    /// When two thirds of its lifetime have passed, from which it is due (0 when there is none).
    pub renew_at: i64,
}

/// Whether the certificate at the head of `pem` (none: `None`) must be renewed at `now`
/// (seconds since 1970) for `domains`: when there is none, it does not parse, its names are
/// not `domains`, or less than a third of its lifetime is left. A third of Let's Encrypt's
/// 90 days is 30: a daily run that fails for weeks still renews in time.
pub fn renewal(pem: Option<&[u8]>, domains: &[String], now: i64) -> Renewal {
    let due = |reason: String| Renewal {
        reason,
        ends: 0,
        renew_at: 0,
    };
    let Some(pem) = pem else {
        return due("no certificate yet".into());
    };
    let cert = match first_certificate(pem) {
        Some(Some(der)) => match Validity::of(&der) {
            Some(validity) => validity,
            None => return due("its certificate does not parse".into()),
        },
        Some(None) => return due("its certificate is not valid base64".into()),
        None => return due("the file holds no certificate".into()),
    };
    let mut have = cert.names.clone();
    have.sort();
    have.dedup();
    // Certificates name domains in lowercase and without the root's dot; DNS compares names
    // in any case.
    let mut want: Vec<String> = domains
        .iter()
        .map(|d| d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase())
        .collect();
    want.sort();
    want.dedup();
    if have != want {
        return due(format!("it names {have:?}, domains names {want:?}"));
    }
    let renew_at = cert.not_after - (cert.not_after - cert.not_before) / 3;
    let reason = if now >= cert.not_after {
        format!("it expired on {}", utc_date(cert.not_after))
    } else if now >= renew_at {
        format!(
            "{} days left, less than a third of its lifetime",
            (cert.not_after - now) / 86_400
        )
    } else {
        String::new()
    };
    Renewal {
        reason,
        ends: cert.not_after,
        renew_at,
    }
}

/// The DER of the first `CERTIFICATE` block of `pem`: `None` when there is none, `Some(None)`
/// when its base64 does not decode.
fn first_certificate(pem: &[u8]) -> Option<Option<Vec<u8>>> {
    use base64::Engine;
    let text = String::from_utf8_lossy(pem);
    let (_, rest) = text.split_once("-----BEGIN CERTIFICATE-----")?;
    let (body, _) = rest.split_once("-----END CERTIFICATE-----")?;
    let body: String = body.split_whitespace().collect();
    Some(base64::engine::general_purpose::STANDARD.decode(body).ok())
}

/// What renewal reads of a certificate: its DNS names and the bounds of its validity.
struct Validity {
    names: Vec<String>,
    not_before: i64,
    not_after: i64,
}

impl Validity {
    /// Reads `der` (RFC 5280): the validity of the TBSCertificate and the dNSNames of its
    /// subjectAltName extension; `None` when it is not such a certificate.
    fn of(der: &[u8]) -> Option<Validity> {
        let (_, cert, _) = der_item(der, 0x30)?;
        let (_, tbs, _) = der_item(cert, 0x30)?;
        let mut rest = tbs;
        if rest.first() == Some(&0xa0) {
            rest = der_next(rest)?.2;
        }
        let (_, _serial, rest) = der_item(rest, 0x02)?;
        let (_, _signature, rest) = der_item(rest, 0x30)?;
        let (_, _issuer, rest) = der_item(rest, 0x30)?;
        let (_, validity, rest) = der_item(rest, 0x30)?;
        let (tag, start, after) = der_next(validity)?;
        let not_before = der_time(tag, start)?;
        let (tag, end, _) = der_next(after)?;
        let not_after = der_time(tag, end)?;
        let (_, _subject, rest) = der_item(rest, 0x30)?;
        let (_, _key, mut rest) = der_item(rest, 0x30)?;
        let mut names = Vec::new();
        while let Some((tag, content, next)) = der_next(rest) {
            rest = next;
            if tag != 0xa3 {
                continue;
            }
            let (_, mut extensions, _) = der_item(content, 0x30)?;
            while let Some((_, extension, next)) = der_item(extensions, 0x30) {
                extensions = next;
                let (_, oid, mut value) = der_item(extension, 0x06)?;
                if oid != [0x55, 0x1d, 0x11] {
                    continue;
                }
                if value.first() == Some(&0x01) {
                    value = der_next(value)?.2;
                }
                let (_, octets, _) = der_item(value, 0x04)?;
                let (_, mut general, _) = der_item(octets, 0x30)?;
                while let Some((tag, name, next)) = der_next(general) {
                    general = next;
                    if tag == 0x82 {
                        names.push(String::from_utf8_lossy(name).to_ascii_lowercase());
                    }
                }
            }
        }
        Some(Validity {
            names,
            not_before,
            not_after,
        })
    }
}

/// The first DER item of `input`: its tag, its content and what follows it.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let bytes = usize::from(first & 0x7f);
        if bytes == 0 || bytes > 4 || rest.len() < bytes {
            return None;
        }
        let len = rest[..bytes]
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (len, &rest[bytes..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The first DER item of `input` when its tag is `tag`.
fn der_item(input: &[u8], tag: u8) -> Option<(u8, &[u8], &[u8])> {
    der_next(input).filter(|(t, _, _)| *t == tag)
}

/// A UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, tag 0x18) in
/// seconds since 1970.
fn der_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if text.len() == 12 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        0x18 if text.len() == 14 => (text.get(..4)?.parse().ok()?, &text[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |at: usize| rest[at..at + 2].parse::<i64>().ok();
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    Some(
        crate::calendar::days_from_civil(year, month, day) * 86_400
            + hour * 3600
            + minute * 60
            + second,
    )
}

/// `seconds` since 1970 as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_date(seconds: i64) -> String {
    let (days, time) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = crate::calendar::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        time / 3600,
        time % 3600 / 60
    )
}

/// The account's file: one per directory, so staging and production keep their own.
pub fn account_file(account_dir: &Path, directory: &str) -> PathBuf {
    let digest = Sha256::digest(directory.as_bytes());
    let name: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    account_dir.join(format!("account-{name}.json"))
}

/// Writes `text` to `path` readable by its owner alone, through a fresh sibling and a rename.
/// Folders missing on the way are made readable by their owner alone; folders that exist keep
/// their mode, which is not weft's to change (`path` lies in `.weft/secrets`: see
/// `secrets_path`).
#[cfg_attr(not(feature = "acme"), allow(dead_code))]
fn write_private(path: &Path, text: &[u8]) -> Result<(), AcmeError> {
    use std::os::unix::fs::DirBuilderExt;
    let file = |source| AcmeError::File {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(file)?;
    }
    crate::lockfile::replace(path, text, 0o600).map_err(file)
}

/// Where `path` (relative to the project `root`, or absolute) is, when it lies inside the
/// project's `.weft/secrets`, the one folder of this machine where weft keeps private keys;
/// `None` for any other place, or a path that climbs with `..`.
pub fn secrets_path(root: &Path, path: &str) -> Option<PathBuf> {
    let secrets = root.join(".weft").join("secrets");
    let full = root.join(path);
    let climbs = Path::new(path)
        .components()
        .any(|c| matches!(c, Component::ParentDir));
    (!climbs && full.starts_with(&secrets) && full != secrets).then_some(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_shortcuts() {
        assert_eq!(directory_url("").unwrap(), PRODUCTION);
        assert_eq!(directory_url("production").unwrap(), PRODUCTION);
        assert_eq!(directory_url("staging").unwrap(), STAGING);
        assert_eq!(
            directory_url("https://localhost:14000/dir").unwrap(),
            "https://localhost:14000/dir"
        );
        assert!(directory_url("http://plain/dir").is_err());
    }

    #[test]
    fn accounts_are_kept_per_directory() {
        let dir = Path::new("/x");
        assert_ne!(account_file(dir, PRODUCTION), account_file(dir, STAGING));
        assert_eq!(account_file(dir, STAGING), account_file(dir, STAGING));
    }

    #[test]
    fn domains_are_names_http_01_can_prove() {
        assert_eq!(domain_problem("example.org"), None);
        assert_eq!(domain_problem("www.site-1.example.org"), None);
        assert!(domain_problem("*.example.org")
            .unwrap()
            .contains("wildcard"));
        assert!(domain_problem("example.org:8443").unwrap().contains("port"));
        for bad in [
            "",
            "localhost",
            "exa mple.org",
            "example.org/x",
            "-a.org",
            "a..org",
            ".",
        ] {
            assert!(domain_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn contacts_are_one_address() {
        assert_eq!(email_problem("ops@example.org"), None);
        assert_eq!(email_problem("ops+acme@mail.example.org"), None);
        assert!(email_problem("mailto:ops@example.org")
            .unwrap()
            .contains("mailto:"));
        for bad in [
            "ops",
            "ops at example.org",
            "@example.org",
            "ops@localhost",
            "a,b@x.org",
        ] {
            assert!(email_problem(bad).is_some(), "{bad:?}");
        }
    }

    /// A PEM certificate for `names`, valid from `start` to `end` (year, month, day).
    fn certificate(names: &[&str], start: (i32, u8, u8), end: (i32, u8, u8)) -> Vec<u8> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        params.not_before = rcgen::date_time_ymd(start.0, start.1, start.2);
        params.not_after = rcgen::date_time_ymd(end.0, end.1, end.2);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").pem().into_bytes()
    }

    fn at(year: i64, month: i64, day: i64) -> i64 {
        crate::calendar::days_from_civil(year, month, day) * 86_400
    }

    #[test]
    fn a_certificate_is_due_once_a_third_of_its_lifetime_is_left() {
        let domains = vec!["site.test".to_string(), "www.site.test".to_string()];
        // 30 days, from 1 to 31 January: due from the 21st.
        let pem = certificate(&["www.site.test", "site.test"], (2026, 1, 1), (2026, 1, 31));
        let fresh = renewal(Some(&pem), &domains, at(2026, 1, 2));
        assert_eq!(fresh.reason, "", "{fresh:?}");
        assert_eq!(utc_date(fresh.ends), "2026-01-31 00:00 UTC");
        assert_eq!(utc_date(fresh.renew_at), "2026-01-21 00:00 UTC");
        assert_eq!(renewal(Some(&pem), &domains, fresh.renew_at - 1).reason, "");
        assert_eq!(
            renewal(Some(&pem), &domains, fresh.renew_at).reason,
            "10 days left, less than a third of its lifetime"
        );
        assert_eq!(
            renewal(Some(&pem), &domains, at(2026, 1, 29)).reason,
            "2 days left, less than a third of its lifetime"
        );
        assert_eq!(
            renewal(Some(&pem), &domains, at(2026, 2, 3)).reason,
            "it expired on 2026-01-31 00:00 UTC"
        );
        // Let's Encrypt's 90 days: due with 30 left, not with 31.
        let long = certificate(&["site.test"], (2026, 3, 1), (2026, 5, 30));
        let one = vec!["site.test".to_string()];
        assert_eq!(renewal(Some(&long), &one, at(2026, 4, 29)).reason, "");
        assert!(renewal(Some(&long), &one, at(2026, 4, 30))
            .reason
            .starts_with("30 days left"));
    }

    #[test]
    fn a_certificate_for_other_names_or_none_is_due() {
        let domains = vec!["site.test".to_string()];
        let now = at(2026, 1, 2);
        assert_eq!(renewal(None, &domains, now).reason, "no certificate yet");
        let pem = certificate(&["site.test", "old.test"], (2026, 1, 1), (2026, 12, 31));
        assert_eq!(
            renewal(Some(&pem), &domains, now).reason,
            "it names [\"old.test\", \"site.test\"], domains names [\"site.test\"]"
        );
        assert!(!renewal(Some(b"junk"), &domains, now).reason.is_empty());
    }

    #[test]
    fn dates_read_both_der_time_forms() {
        assert_eq!(der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(
            der_time(0x18, b"20260131120000Z"),
            Some(at(2026, 1, 31) + 43_200)
        );
        assert_eq!(der_time(0x17, b"490101000000Z"), Some(at(2049, 1, 1)));
        assert_eq!(der_time(0x17, b"4901010000Z"), None);
        assert_eq!(utc_date(at(2000, 2, 29) + 3_660), "2000-02-29 01:01 UTC");
    }

    #[test]
    fn invalid_names_every_domain() {
        let err = AcmeError::Invalid(vec![("bad.test".into(), "NXDOMAIN".into())]);
        assert!(err.to_string().contains("`bad.test`"), "{err}");
        assert!(err.to_string().contains("NXDOMAIN"), "{err}");
    }

    #[test]
    fn names_load_accepts_are_found_in_the_certificate_and_others_are_refused() {
        // The certificate names `site.test`: a name written otherwise was due on every run,
        // one order a day, up to the CA's duplicate-certificate limit.
        let now = at(2026, 1, 2);
        let pem = certificate(&["site.test"], (2026, 1, 1), (2026, 12, 31));
        assert!(domain_problem("Site.test").unwrap().contains("lowercase"));
        assert!(domain_problem("site.test.").unwrap().contains("dot"));
        assert_eq!(email_problem("ops@Site.test"), None);
        // acme_renewal, which a goal may call with any names, compares as DNS does.
        for written in ["site.test", "Site.test", "SITE.TEST", "site.test."] {
            let due = renewal(Some(&pem), &[written.to_string()], now);
            assert_eq!(due.reason, "", "{written}: {due:?}");
        }
    }

    #[test]
    fn challenge_tokens_that_are_not_base64url_are_refused() {
        let thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        let good = Challenge::checked(
            "site.test".into(),
            "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
            thumbprint,
        )
        .expect("a token of RFC 8555's alphabet");
        assert_eq!(
            good.key_authorization,
            format!("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.{thumbprint}")
        );
        for bad in [
            "",
            "x; set server app/s1 addr 1.2.3.4",
            "x\nadd map /etc/haproxy/other.map a b",
            "abc=",
            "a/b",
            "a.b",
        ] {
            let err = Challenge::checked("site.test".into(), bad, thumbprint)
                .expect_err(&format!("{bad:?} refused"));
            assert!(err.to_string().contains("not base64url"), "{err}");
            assert!(err.to_string().contains("`site.test`"), "{err}");
        }
    }

    #[test]
    fn private_files_go_inside_weft_secrets_only_and_leave_existing_folders_as_they_are() {
        use std::os::unix::fs::PermissionsExt;
        let project = tempfile::tempdir().expect("tempdir");
        let root = project.path();
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        for outside in [
            "site.pem",
            "/etc/x.pem",
            ".weft/secrets",
            ".weft/secrets/../site.pem",
            ".weft/other/site.pem",
        ] {
            assert_eq!(secrets_path(root, outside), None, "{outside}");
        }
        let inside = secrets_path(root, ".weft/secrets/prod/site-acme.pem").expect("inside");
        assert_eq!(inside, root.join(".weft/secrets/prod/site-acme.pem"));
        let absolute = root.join(".weft/secrets/prod/acme").display().to_string();
        assert!(secrets_path(root, &absolute).is_some());

        // A folder that exists (made by the person, open to a group) keeps its mode; the
        // folders weft makes for a key are its owner's alone.
        let shared = root.join(".weft/secrets/shared");
        std::fs::create_dir_all(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).expect("chmod");
        write_private(&shared.join("site.pem"), b"key").expect("written");
        assert_eq!(mode(&shared), 0o750);
        assert_eq!(mode(&shared.join("site.pem")), 0o600);
        write_private(&inside, b"key").expect("written");
        assert_eq!(mode(&root.join(".weft/secrets/prod")), 0o700);
        assert_eq!(mode(&inside), 0o600);
    }
}
