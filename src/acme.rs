//! ACME certificates (RFC 8555, issue 35) ordered from the controller: the account, the order,
//! HTTP-01 challenges handed to the caller to publish on every lb, and the certificate chain
//! and its new key written to a root-only PEM here. Neither key ever leaves this module except
//! into files of mode 0600.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType,
    HttpClient, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Let's Encrypt's production directory, what `acme_directory = "production"` stands for.
pub const PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory, what `acme_directory = "staging"` stands for.
pub const STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Each request to the ACME server, its answer read whole, within this.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// The certificate, once the order is finalized, within this.
const ISSUE_DEADLINE: Duration = Duration::from_secs(60);

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
        source: instant_acme::Error,
    },
    /// Some domains did not validate.
    #[error("{}", invalid_message(.0))]
    Invalid(Vec<(String, String)>),
    /// The challenges could not be put on the lbs.
    #[error("the challenges could not be put on the load balancers: {0}")]
    Publish(String),
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
/// cannot: a wildcard (proved over DNS only), a port, a path, or no host name at all.
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
    let name = name.strip_suffix('.').unwrap_or(name);
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
    if !plain(local) || domain_problem(domain).is_some() {
        return Some("is not an email address such as \"ops@example.org\"");
    }
    None
}

/// Orders a certificate for `request.domains`: calls `publish` with the challenges every lb
/// must answer (none when the server remembers the domains as validated), asks the server to
/// validate them, and writes the chain and a new key to `request.out` only when all passed,
/// so a failed order leaves the certificate in use where it is.
pub fn order(
    request: &CertRequest,
    publish: impl FnOnce(&[Challenge]) -> Result<(), String>,
) -> Result<(), AcmeError> {
    let directory = directory_url(&request.directory)?;
    let http = http_client(request.ca.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AcmeError::Runtime)?;
    let server = |step: &'static str| {
        let directory = directory.clone();
        move |source| AcmeError::Server {
            directory,
            step,
            source,
        }
    };
    let account = runtime.block_on(account(request, &directory, http))?;
    let identifiers: Vec<Identifier> = request
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let (mut order, challenges) = runtime.block_on(async {
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(server("new order"))?;
        let mut challenges = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(server("authorization"))?;
            if authorization.status != AuthorizationStatus::Pending {
                continue;
            }
            let domain = authorization.identifier().to_string();
            let Some(challenge) = authorization.challenge(ChallengeType::Http01) else {
                return Err(AcmeError::Invalid(vec![(
                    domain,
                    "the server offers no HTTP-01 challenge".into(),
                )]));
            };
            challenges.push(Challenge {
                domain,
                token: challenge.token.clone(),
                key_authorization: challenge.key_authorization().as_str().to_string(),
            });
        }
        Ok::<_, AcmeError>((order, challenges))
    })?;
    publish(&challenges).map_err(AcmeError::Publish)?;
    let (chain, key) = runtime.block_on(async {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(server("authorization"))?;
            if authorization.status != AuthorizationStatus::Pending {
                continue;
            }
            if let Some(mut challenge) = authorization.challenge(ChallengeType::Http01) {
                challenge.set_ready().await.map_err(server("challenge"))?;
            }
        }
        let retries = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(request.validation_deadline);
        let status = order.poll_ready(&retries).await;
        if !matches!(status, Ok(OrderStatus::Ready)) {
            let mut failed = Vec::new();
            let mut authorizations = order.authorizations();
            while let Some(authorization) = authorizations.next().await {
                let mut authorization = authorization.map_err(server("authorization"))?;
                let state = authorization
                    .refresh()
                    .await
                    .map_err(server("authorization"))?;
                if state.status == AuthorizationStatus::Valid {
                    continue;
                }
                let why = state
                    .challenges
                    .iter()
                    .find_map(|c| c.error.as_ref())
                    .and_then(|p| p.detail.clone())
                    .unwrap_or_else(|| format!("{:?}", state.status).to_lowercase());
                failed.push((state.identifier().to_string(), why));
            }
            if !failed.is_empty() {
                return Err(AcmeError::Invalid(failed));
            }
            return Err(server("validation")(match status {
                Err(err) => err,
                Ok(other) => instant_acme::Error::Str(if other == OrderStatus::Invalid {
                    "the order is invalid"
                } else {
                    "the order is not ready"
                }),
            }));
        }
        let key = order.finalize().await.map_err(server("finalize"))?;
        let chain = order
            .poll_certificate(&RetryPolicy::new().timeout(ISSUE_DEADLINE))
            .await
            .map_err(server("certificate"))?;
        Ok::<_, AcmeError>((chain, key))
    })?;
    let mut pem = chain.trim_end().to_string();
    pem.push('\n');
    pem.push_str(key.trim_end());
    pem.push('\n');
    write_private(&request.out, pem.as_bytes())
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
    let cert = match CertificateDer::pem_slice_iter(pem).next() {
        Some(Ok(der)) => match Validity::of(&der) {
            Some(validity) => validity,
            None => return due("its certificate does not parse".into()),
        },
        Some(Err(err)) => return due(format!("its certificate does not parse: {err}")),
        None => return due("the file holds no certificate".into()),
    };
    let mut have = cert.names.clone();
    have.sort();
    have.dedup();
    let mut want = domains.to_vec();
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
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `seconds` since 1970 as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_date(seconds: i64) -> String {
    let (days, time) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        time / 3600,
        time % 3600 / 60
    )
}

/// The account of `directory`, from its file in `account_dir`, else a new one saved there.
async fn account(request: &CertRequest, directory: &str, http: Http) -> Result<Account, AcmeError> {
    let server = |step: &'static str| {
        move |source| AcmeError::Server {
            directory: directory.to_string(),
            step,
            source,
        }
    };
    let path = account_file(&request.account_dir, directory);
    match std::fs::read(&path) {
        Ok(text) => {
            let credentials: AccountCredentials =
                serde_json::from_slice(&text).map_err(|e| AcmeError::File {
                    path: path.clone(),
                    source: std::io::Error::other(e),
                })?;
            return Account::builder_with_http(Box::new(http))
                .from_credentials(credentials)
                .await
                .map_err(server("account"));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(AcmeError::File { path, source }),
    }
    let contact = format!("mailto:{}", request.email);
    let contacts: Vec<&str> = if request.email.is_empty() {
        Vec::new()
    } else {
        vec![contact.as_str()]
    };
    let (account, credentials) = Account::builder_with_http(Box::new(http))
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.to_string(),
            None,
        )
        .await
        .map_err(server("new account"))?;
    let text = serde_json::to_vec(&credentials).map_err(|e| AcmeError::File {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    write_private(&path, &text)?;
    Ok(account)
}

/// The account's file: one per directory, so staging and production keep their own.
pub fn account_file(account_dir: &Path, directory: &str) -> PathBuf {
    let digest = Sha256::digest(directory.as_bytes());
    let name: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    account_dir.join(format!("account-{name}.json"))
}

/// Writes `text` to `path` readable by its owner alone, through a fresh sibling and a rename.
fn write_private(path: &Path, text: &[u8]) -> Result<(), AcmeError> {
    let file = |source| AcmeError::File {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(file)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)).map_err(file)?;
    }
    crate::lockfile::replace(path, text, 0o600).map_err(file)
}

/// The HTTPS client the ACME exchange runs over: the system's roots, or only those of `ca`.
fn http_client(ca: Option<&Path>) -> Result<Http, AcmeError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let bad_ca = |path: &Path, reason: String| AcmeError::Ca {
        path: path.to_path_buf(),
        reason,
    };
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs =
                CertificateDer::pem_file_iter(path).map_err(|e| bad_ca(path, e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| bad_ca(path, e.to_string()))?;
                roots.add(cert).map_err(|e| bad_ca(path, e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad_ca(path, "holds no certificate".into()));
            }
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| bad_ca(path, e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(config)
        }
        None => builder
            .with_provider_and_native_roots(provider)
            .map_err(|e| bad_ca(Path::new("(the system's roots)"), e.to_string()))?,
    };
    let connector = builder.https_only().enable_http1().build();
    Ok(Http {
        client: Client::builder(TokioExecutor::new()).build(connector),
    })
}

/// instant-acme's HTTP over hyper, each request and its answer within `REQUEST_DEADLINE`.
struct Http {
    client: Client<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
}

impl HttpClient for Http {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let response = self.client.request(req);
        Box::pin(async move {
            let whole = async {
                let response = response
                    .await
                    .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
                let (parts, body) = response.into_parts();
                let body = body
                    .collect()
                    .await
                    .map_err(|e| instant_acme::Error::Other(Box::new(e)))?
                    .to_bytes();
                Ok(BytesResponse {
                    parts,
                    body: Box::new(body),
                })
            };
            tokio::time::timeout(REQUEST_DEADLINE, whole)
                .await
                .unwrap_or(Err(instant_acme::Error::Str("no answer within 30 s")))
        })
    }
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
        assert_eq!(domain_problem("www.site-1.example.org."), None);
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
        days_from_civil(year, month, day) * 86_400
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
}
