//! A small typed REST client for the OpenStack services weft uses (Keystone, Nova, Neutron,
//! Glance), on hyper with rustls: a Keystone v3 token and its catalog, then JSON requests to
//! the catalog's endpoints, each within a deadline. The token is hidden from every log line.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::credentials::{Credentials, Method as AuthMethod};
use crate::cloud::CloudError;

/// How long one request may take, connecting included.
const REQUEST_DEADLINE: Duration = Duration::from_secs(60);
/// How long connecting may take.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// The Nova microversion weft speaks: server tags at create and in list filters (2.52).
const NOVA_VERSION: &str = "2.52";

type Http =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An OpenStack service weft calls, by its catalog type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Nova.
    Compute,
    /// Neutron.
    Network,
    /// Glance.
    Image,
}

impl Service {
    fn catalog_type(self) -> &'static str {
        match self {
            Service::Compute => "compute",
            Service::Network => "network",
            Service::Image => "image",
        }
    }
}

/// A session with one cloud: a token and the endpoints of its catalog.
pub struct Client {
    http: Http,
    token: String,
    compute: String,
    network: String,
    image: String,
}

/// A failed call's error from the status and body OpenStack answered with.
fn api_error(what: &str, status: StatusCode, body: &[u8]) -> CloudError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    // Nova: {"itemNotFound": {"message": ..}}; Neutron: {"NeutronError": {"message": ..}};
    // Keystone: {"error": {"message": ..}}; Glance answers HTML or text.
    let message = parsed
        .as_ref()
        .and_then(|v| v.as_object())
        .and_then(|o| o.values().find_map(|inner| inner.get("message")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(300)
                .collect()
        });
    CloudError::Api {
        code: format!("{} ({what})", status.as_u16()),
        message,
    }
}

/// The TLS settings that trust only the certificates of PEM file `cacert`, as openstacksdk
/// does with a cloud's `cacert`.
fn tls_with_ca(cacert: &Path) -> Result<rustls::ClientConfig, CloudError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let unreadable = |e: &dyn std::fmt::Display| {
        CloudError::Config(format!(
            "cannot read the CA certificates of `cacert` {}: {e}",
            cacert.display()
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cacert).map_err(|e| unreadable(&e))? {
        roots
            .add(cert.map_err(|e| unreadable(&e))?)
            .map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(unreadable(&"it holds no PEM certificate"));
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| CloudError::Io(format!("TLS: {e}")))
    .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

fn http_client(cacert: Option<&Path>) -> Result<Http, CloudError> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_DEADLINE));
    connector.enforce_http(false);
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match cacert {
        Some(path) => builder.with_tls_config(tls_with_ca(path)?),
        None => builder
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| CloudError::Io(format!("cannot read this host's CA certificates: {e}")))?,
    };
    let https = builder
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    // No idle connections kept: OpenStack's WSGI servers close them at will, and a request on
    // one they closed fails; weft's calls are few, so each gets its own.
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(https),
    )
}

/// `err` with the errors under it: hyper says only "client error (Connect)", the TLS or
/// network error that says why sits below.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// One request: the status, headers and body, within `REQUEST_DEADLINE`.
async fn send(
    http: &Http,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, hyper::HeaderMap, Bytes), CloudError> {
    let what = format!("{} {}", request.method(), request.uri());
    tracing::debug!("openstack: {what}");
    let call = async {
        let response = http
            .request(request)
            .await
            .map_err(|e| CloudError::Io(format!("{what}: {}", with_causes(&e))))?;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| CloudError::Io(format!("{what}: {e}")))?
            .to_bytes();
        Ok::<_, CloudError>((parts.status, parts.headers, bytes))
    };
    let (status, headers, body) = tokio::time::timeout(REQUEST_DEADLINE, call)
        .await
        .map_err(|_| {
            CloudError::Io(format!(
                "{what}: no answer within {}s",
                REQUEST_DEADLINE.as_secs()
            ))
        })??;
    tracing::debug!("openstack: {what} -> {}", status.as_u16());
    Ok((status, headers, body))
}

/// A page of a list: a path under the service's versioned base, or a whole URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Page {
    Path(String),
    Url(String),
}

/// The page after `answer` of a list under `key`: Glance names it in `next`, a path from
/// its root (`/v2/images?marker=..`); Nova and Neutron in `<key>_links` with `rel` `next`, a URL.
fn next_page(answer: &Value, key: &str) -> Option<Page> {
    if let Some(next) = answer["next"].as_str() {
        let path = next.strip_prefix("/v2").unwrap_or(next);
        return Some(Page::Path(path.to_string()));
    }
    answer[format!("{key}_links")]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == "next")
        .and_then(|l| l["href"].as_str())
        .map(|href| Page::Url(href.to_string()))
}

/// The items under `key` of the list at `first` and the pages after it, each read by `fetch`;
/// stops at an empty page or one already read, so a server that repeats itself ends it.
async fn pages<F, Fut>(first: &str, key: &str, mut fetch: F) -> Result<Vec<Value>, CloudError>
where
    F: FnMut(Page) -> Fut,
    Fut: std::future::Future<Output = Result<Value, CloudError>>,
{
    let mut all = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut page = Page::Path(first.to_string());
    loop {
        seen.insert(page.clone());
        let answer = fetch(page).await?;
        let items = answer[key].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return Ok(all);
        }
        all.extend(items);
        match next_page(&answer, key) {
            Some(next) if !seen.contains(&next) => page = next,
            _ => return Ok(all),
        }
    }
}

/// Keystone's request body for `method`.
fn auth_body(method: &AuthMethod) -> Value {
    match method {
        AuthMethod::Password {
            user,
            user_id,
            user_domain,
            password,
            project,
            project_id,
            project_domain,
        } => {
            let user = if *user_id {
                json!({ "id": user, "password": password })
            } else {
                json!({ "name": user, "domain": { "name": user_domain }, "password": password })
            };
            let project = if *project_id {
                json!({ "id": project })
            } else {
                json!({ "name": project, "domain": { "name": project_domain } })
            };
            json!({ "auth": {
                "identity": { "methods": ["password"], "password": { "user": user } },
                "scope": { "project": project },
            }})
        }
        AuthMethod::ApplicationCredential { id, secret } => json!({ "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": { "id": id, "secret": secret },
            },
        }}),
    }
}

/// The URL of service `kind` in `catalog` for `interface` and `region` (any region when
/// none is named).
fn endpoint(catalog: &Value, kind: &str, interface: &str, region: Option<&str>) -> Option<String> {
    catalog
        .as_array()?
        .iter()
        .filter(|s| s["type"] == kind)
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .find(|e| {
            e["interface"] == interface
                && region.is_none_or(|r| e["region_id"] == r || e["region"] == r)
        })
        .and_then(|e| {
            e["url"]
                .as_str()
                .map(|u| u.trim_end_matches('/').to_string())
        })
}

impl Client {
    /// Authenticates with Keystone and reads the endpoints of the catalog.
    pub async fn connect(creds: &Credentials) -> Result<Client, CloudError> {
        let http = http_client(creds.cacert.as_deref())?;
        let body = serde_json::to_vec(&auth_body(&creds.method))
            .map_err(|e| CloudError::Io(e.to_string()))?;
        let request = Request::post(format!("{}/auth/tokens", creds.auth_url))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CloudError::Config(format!("bad auth_url `{}`: {e}", creds.auth_url)))?;
        let (status, headers, body) = send(&http, request).await?;
        if !status.is_success() {
            let err = api_error("keystone", status, &body);
            return Err(CloudError::Config(format!(
                "Keystone at {} refused the credentials of {}: {err}",
                creds.auth_url, creds.origin
            )));
        }
        let token = headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| CloudError::Io("Keystone answered without a token".into()))?
            .to_string();
        crate::logging::hide(&token);
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|e| CloudError::Io(format!("Keystone's answer is not JSON: {e}")))?;
        let catalog = &answer["token"]["catalog"];
        let find = |service: Service| {
            endpoint(
                catalog,
                service.catalog_type(),
                &creds.interface,
                creds.region.as_deref(),
            )
            .ok_or_else(|| {
                CloudError::Config(format!(
                    "the catalog of {} has no {} {} endpoint{}",
                    creds.auth_url,
                    creds.interface,
                    service.catalog_type(),
                    creds
                        .region
                        .as_deref()
                        .map(|r| format!(" in region `{r}`"))
                        .unwrap_or_default()
                ))
            })
        };
        Ok(Client {
            compute: find(Service::Compute)?,
            network: find(Service::Network)?,
            image: find(Service::Image)?,
            http,
            token,
        })
    }

    fn base(&self, service: Service) -> String {
        match service {
            Service::Compute => self.compute.clone(),
            // Neutron's and Glance's catalog entries name no version.
            Service::Network => format!("{}/v2.0", self.network.trim_end_matches("/v2.0")),
            Service::Image => format!("{}/v2", self.image.trim_end_matches("/v2")),
        }
    }

    /// A request to `path` of `service` with `body`; the answer's JSON (`Null` when empty), or
    /// `None` for a 404.
    async fn call(
        &self,
        method: Method,
        service: Service,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, CloudError> {
        let url = format!("{}{path}", self.base(service));
        self.call_url(method, service, &url, body).await
    }

    /// A request to `url` of `service`, as `call`.
    async fn call_url(
        &self,
        method: Method,
        service: Service,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, CloudError> {
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .header("x-auth-token", &self.token)
            .header("accept", "application/json");
        if service == Service::Compute {
            request = request
                .header("openstack-api-version", format!("compute {NOVA_VERSION}"))
                .header("x-openstack-nova-api-version", NOVA_VERSION);
        }
        let body = match body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(
                    serde_json::to_vec(value).map_err(|e| CloudError::Io(e.to_string()))?,
                ))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request
            .body(body)
            .map_err(|e| CloudError::Config(format!("bad URL `{url}`: {e}")))?;
        let (status, _, answer) = send(&self.http, request).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(api_error(service.catalog_type(), status, &answer));
        }
        if answer.is_empty() {
            return Ok(Some(Value::Null));
        }
        serde_json::from_slice(&answer).map(Some).map_err(|e| {
            CloudError::Io(format!("{url} answered with something else than JSON: {e}"))
        })
    }

    /// GET; `None` when there is no such thing.
    pub async fn get(&self, service: Service, path: &str) -> Result<Option<Value>, CloudError> {
        self.call(Method::GET, service, path, None).await
    }

    /// GET of something that must exist.
    pub async fn get_found(&self, service: Service, path: &str) -> Result<Value, CloudError> {
        self.get(service, path).await?.ok_or_else(|| {
            CloudError::NotFound(format!("{} has no {path}", service.catalog_type()))
        })
    }

    /// Every item under `key` of list `path`, following the pages: Glance's `next` and Nova's
    /// and Neutron's `<key>_links`.
    pub async fn get_all(
        &self,
        service: Service,
        path: &str,
        key: &str,
    ) -> Result<Vec<Value>, CloudError> {
        let base = self.base(service);
        pages(path, key, |page| {
            let url = match page {
                Page::Path(path) => format!("{base}{path}"),
                Page::Url(url) => url,
            };
            async move {
                self.call_url(Method::GET, service, &url, None)
                    .await?
                    .ok_or_else(|| CloudError::NotFound(format!("{url} is not there")))
            }
        })
        .await
    }

    /// POST of `body`.
    pub async fn post(
        &self,
        service: Service,
        path: &str,
        body: &Value,
    ) -> Result<Value, CloudError> {
        self.call(Method::POST, service, path, Some(body))
            .await?
            .ok_or_else(|| {
                CloudError::NotFound(format!("{} has no {path}", service.catalog_type()))
            })
    }

    /// PUT of `body`.
    pub async fn put(
        &self,
        service: Service,
        path: &str,
        body: &Value,
    ) -> Result<Value, CloudError> {
        self.call(Method::PUT, service, path, Some(body))
            .await?
            .ok_or_else(|| {
                CloudError::NotFound(format!("{} has no {path}", service.catalog_type()))
            })
    }

    /// DELETE; `false` when it was already gone.
    pub async fn delete(&self, service: Service, path: &str) -> Result<bool, CloudError> {
        Ok(self
            .call(Method::DELETE, service, path, None)
            .await?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_catalog_gives_the_endpoint_of_the_interface_and_region() {
        let catalog = json!([
            { "type": "compute", "endpoints": [
                { "interface": "internal", "region_id": "One", "url": "http://in:8774/v2.1" },
                { "interface": "public", "region_id": "Two", "url": "http://two:8774/v2.1/" },
                { "interface": "public", "region_id": "One", "url": "http://one:8774/v2.1" },
            ]},
        ]);
        assert_eq!(
            endpoint(&catalog, "compute", "public", Some("One")).as_deref(),
            Some("http://one:8774/v2.1")
        );
        assert_eq!(
            endpoint(&catalog, "compute", "public", None).as_deref(),
            Some("http://two:8774/v2.1")
        );
        assert_eq!(endpoint(&catalog, "network", "public", None), None);
    }

    /// The pages of `served` (page → answer) as `pages` reads them: the items and the pages
    /// asked for.
    fn read_pages(first: &str, key: &str, served: &[(Page, Value)]) -> (Vec<Value>, Vec<Page>) {
        let asked = std::sync::Mutex::new(Vec::new());
        let items = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(pages(first, key, |page| {
                asked.lock().expect("asked").push(page.clone());
                let answer = served
                    .iter()
                    .find(|(p, _)| *p == page)
                    .map(|(_, a)| a.clone())
                    .ok_or_else(|| CloudError::NotFound(format!("{page:?}")));
                async move { answer }
            }))
            .expect("pages");
        (items, asked.into_inner().expect("asked"))
    }

    #[test]
    fn glance_lists_are_read_to_their_last_page() {
        let path = |p: &str| Page::Path(p.to_string());
        // Glance's first page, then the `next` paths it names from its root.
        let served = [
            (
                path("/images?name=golden"),
                json!({ "images": [{ "id": "1" }, { "id": "2" }],
                        "next": "/v2/images?name=golden&marker=2" }),
            ),
            (
                path("/images?name=golden&marker=2"),
                json!({ "images": [{ "id": "3" }], "next": "/v2/images?name=golden&marker=3" }),
            ),
            (
                path("/images?name=golden&marker=3"),
                json!({ "images": [] }),
            ),
        ];
        let (items, asked) = read_pages("/images?name=golden", "images", &served);
        let ids: Vec<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert_eq!(asked.len(), 3, "{asked:?}");
    }

    #[test]
    fn nova_and_neutron_lists_follow_their_next_links_and_a_loop_ends() {
        let next = "http://nova:8774/v2.1/servers/detail?marker=b";
        let served = [
            (
                Page::Path("/servers/detail".into()),
                json!({ "servers": [{ "id": "a" }], "servers_links": [
                    { "rel": "previous", "href": "http://nova/elsewhere" },
                    { "rel": "next", "href": next }] }),
            ),
            (
                Page::Url(next.into()),
                // A server that names the same page again.
                json!({ "servers": [{ "id": "b" }], "servers_links": [
                    { "rel": "next", "href": next }] }),
            ),
        ];
        let (items, asked) = read_pages("/servers/detail", "servers", &served);
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(asked.len(), 2, "{asked:?}");
        // A list with no links is one page.
        let (items, _) = read_pages(
            "/ports",
            "ports",
            &[(
                Page::Path("/ports".into()),
                json!({ "ports": [{ "id": "p" }] }),
            )],
        );
        assert_eq!(items.len(), 1);
    }

    /// A Keystone stand-in on loopback speaking HTTPS with a certificate of its own CA: it
    /// refuses every token request with 401. Its port and the CA's PEM.
    fn https_keystone(connections: usize) -> (u16, String) {
        use std::io::{Read, Write};
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .expect("server config");
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for _ in 0..connections {
                let Ok((tcp, _)) = listener.accept() else {
                    return;
                };
                let conn = rustls::ServerConnection::new(config.clone()).expect("conn");
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers and the small JSON body; a client that refused the handshake ends it.
                while !String::from_utf8_lossy(&request).contains("}}") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"error": {"message": "The request you have made requires authentication.", "code": 401}}"#;
                let _ = write!(
                    tls,
                    "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
            }
        });
        (port, cert.pem())
    }

    #[test]
    fn an_https_keystone_is_trusted_through_cacert_and_only_then() {
        let dir = tempfile::tempdir().expect("dir");
        let (port, pem) = https_keystone(2);
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, pem).expect("write");
        let creds = |cacert: Option<PathBuf>| Credentials {
            auth_url: format!("https://localhost:{port}/v3"),
            method: AuthMethod::ApplicationCredential {
                id: "id".into(),
                secret: "s3cret-of-the-test".into(),
            },
            region: None,
            interface: "public".into(),
            origin: "the test".into(),
            cacert,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // With the CA, the TLS session stands and Keystone's own answer comes back.
        let err = runtime
            .block_on(Client::connect(&creds(Some(ca))))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("refused the credentials") && err.contains("requires authentication"),
            "{err}"
        );
        // Without it, this host's CAs do not know the certificate.
        let err = runtime
            .block_on(Client::connect(&creds(None)))
            .err()
            .expect("untrusted")
            .to_string();
        assert!(!err.contains("refused the credentials"), "{err}");
        assert!(err.to_lowercase().contains("certificate"), "{err}");
    }

    #[test]
    fn a_cacert_file_is_the_only_trust_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["keystone.test".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, cert.pem()).expect("write");
        assert!(tls_with_ca(&good).is_ok());
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = tls_with_ca(&empty).expect_err("no certificate").to_string();
        assert!(
            err.contains("empty.pem") && err.contains("no PEM certificate"),
            "{err}"
        );
        let err = tls_with_ca(&dir.path().join("missing.pem"))
            .expect_err("missing")
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }

    #[test]
    fn errors_carry_openstacks_message() {
        let err = api_error(
            "compute",
            StatusCode::BAD_REQUEST,
            br#"{"badRequest": {"message": "Invalid flavorRef", "code": 400}}"#,
        );
        assert_eq!(err.to_string(), "400 (compute): Invalid flavorRef");
    }
}
