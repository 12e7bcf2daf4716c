//! The ACME exchange itself (the `acme` feature): instant-acme over the hyper, hyper-rustls
//! and rustls the AWS SDK builds, with rustls's aws-lc-rs provider, which that build has
//! already; a build without the feature (`--no-default-features`) leaves all of it out.

use std::future::Future;
use std::path::Path;
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

use super::{account_file, directory_url, write_private, AcmeError, CertRequest, Challenge, Stop};

/// Each request to the ACME server, its answer read whole, within this.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// The certificate, once the order is finalized, within this.
const ISSUE_DEADLINE: Duration = Duration::from_secs(60);

/// Orders a certificate for `request.domains`: calls `publish` with the challenges every lb
/// must answer (none when the server remembers the domains as validated), asks the server to
/// validate them, and writes the chain and a new key to `request.out` only when all passed,
/// so a failed order leaves the certificate in use where it is.
pub fn order(
    request: &CertRequest,
    mut stop: Stop,
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
        move |source: instant_acme::Error| AcmeError::Server {
            directory,
            step,
            source: source.into(),
        }
    };
    let account = until_stopped(&runtime, &mut stop, account(request, &directory, http))?;
    let identifiers: Vec<Identifier> = request
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let (mut order, challenges) = until_stopped(&runtime, &mut stop, async {
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
            challenges.push(Challenge::checked(
                domain,
                &challenge.token,
                account.key_thumbprint(),
            )?);
        }
        Ok::<_, AcmeError>((order, challenges))
    })?;
    publish(&challenges).map_err(AcmeError::Publish)?;
    let (chain, key) = until_stopped(&runtime, &mut stop, async {
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

/// The account of `directory`, from its file in `account_dir`, else a new one saved there.
async fn account(request: &CertRequest, directory: &str, http: Http) -> Result<Account, AcmeError> {
    let server = |step: &'static str| {
        move |source: instant_acme::Error| AcmeError::Server {
            directory: directory.to_string(),
            step,
            source: source.into(),
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

/// The HTTPS client the ACME exchange runs over: the system's roots, or only those of `ca`.
/// Runs one exchange with the server to its end, or until `stop` (Ctrl-C) comes first.
fn until_stopped<T>(
    runtime: &tokio::runtime::Runtime,
    stop: &mut Stop,
    exchange: impl Future<Output = Result<T, AcmeError>>,
) -> Result<T, AcmeError> {
    runtime.block_on(async {
        tokio::select! {
            biased;
            () = stop.as_mut() => Err(AcmeError::Interrupted),
            done = exchange => done,
        }
    })
}

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
    use std::time::{Duration, Instant};

    use super::*;

    /// Ctrl-C ends an order whose server stalls at once, not at the request's 30 s deadline,
    /// and nothing is written.
    #[test]
    fn a_stop_ends_an_order_stalled_on_the_server() {
        let dir = tempfile::tempdir().expect("dir");
        // Takes the connection and never answers the TLS handshake.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let request = CertRequest {
            directory: format!("https://127.0.0.1:{port}/dir"),
            ca: None,
            account_dir: dir.path().join("acme"),
            email: String::new(),
            domains: vec!["site.test".into()],
            out: dir.path().join("site.pem"),
            validation_deadline: Duration::from_secs(120),
        };
        let stop: Stop = Box::pin(async { tokio::time::sleep(Duration::from_millis(200)).await });
        let started = Instant::now();
        let result = order(&request, stop, |_| Ok(()));
        assert!(matches!(result, Err(AcmeError::Interrupted)), "{result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(!request.out.exists());
        drop(listener);
    }
}
