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
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(60);
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
    /// How long one request may take (the env's `api_timeout`).
    deadline: Duration,
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

/// One request: the status, headers and body, within `deadline`.
async fn send(
    http: &Http,
    request: Request<Full<Bytes>>,
    deadline: Duration,
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
    let (status, headers, body) = tokio::time::timeout(deadline, call).await.map_err(|_| {
        CloudError::Io(format!(
            "{what}: no answer within {}s (the env's `api_timeout`)",
            deadline.as_secs()
        ))
    })??;
    tracing::debug!("openstack: {what} -> {}", status.as_u16());
    Ok((status, headers, body))
}

/// The most pages weft reads of one list: a server that keeps naming new pages never ends
/// its list.
const MAX_PAGES: usize = 1000;

/// `link` (a whole URL, or a path from the root) as a URL under `base`, the service's catalog
/// endpoint: only its path and query are kept, so the token goes to no other scheme, host or
/// port than the catalog's, whatever the server names. The path is placed after `base`'s own
/// path, or after its last segment (the version) when a proxy in front rewrote the prefix;
/// `None` when it is under neither.
fn rebase(base: &str, link: &str) -> Option<String> {
    let link: hyper::Uri = link.parse().ok()?;
    let base_uri: hyper::Uri = base.parse().ok()?;
    let base_path = base_uri.path().trim_end_matches('/');
    let path = link.path();
    let rest = match path.strip_prefix(base_path) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => {
            let version = base_path.rsplit('/').next().filter(|v| !v.is_empty())?;
            let marker = format!("/{version}/");
            let at = path.find(&marker)?;
            &path[at + marker.len() - 1..]
        }
    };
    let query = link.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("{}{rest}{query}", base.trim_end_matches('/')))
}

/// The page after `answer` of a list under `key`, a URL under `base`: Glance names it in
/// `next` (a path from its root, `/v2/images?marker=..`), Nova and Neutron in `<key>_links`
/// with `rel` `next` (a URL); a link that cannot be placed under `base` is an error.
fn next_page(base: &str, answer: &Value, key: &str) -> Result<Option<String>, CloudError> {
    let link = answer["next"].as_str().or_else(|| {
        answer[format!("{key}_links")]
            .as_array()?
            .iter()
            .find(|l| l["rel"] == "next")
            .and_then(|l| l["href"].as_str())
    });
    let Some(link) = link else {
        return Ok(None);
    };
    rebase(base, link).map(Some).ok_or_else(|| CloudError::Api {
        code: "pagination".into(),
        message: format!("the next page of `{key}`, `{link}`, is not under endpoint {base}"),
    })
}

/// What tells an item of a list from the others: its `id`, else (key pairs) its name, else
/// the whole item.
fn item_key(item: &Value) -> String {
    item["id"]
        .as_str()
        .or_else(|| item["keypair"]["name"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| item.to_string())
}

/// The items under `key` of the list at `base` + `first` and the pages after it, each read by
/// `fetch` (`None`: the first page is not there). Stops at an empty page, at a page already
/// read or one that adds no new item, so a server that repeats itself ends it; more than
/// `MAX_PAGES` pages is an error.
async fn pages<F, Fut>(
    base: &str,
    first: &str,
    key: &str,
    mut fetch: F,
) -> Result<Option<Vec<Value>>, CloudError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Value>, CloudError>>,
{
    let mut all = Vec::new();
    let mut seen_pages = std::collections::HashSet::new();
    let mut seen_items = std::collections::HashSet::new();
    let mut page = format!("{}{first}", base.trim_end_matches('/'));
    for read in 0.. {
        if read == MAX_PAGES {
            return Err(CloudError::Api {
                code: "pagination".into(),
                message: format!("the list of `{key}` goes on past {MAX_PAGES} pages"),
            });
        }
        seen_pages.insert(page.clone());
        let Some(answer) = fetch(page.clone()).await? else {
            if read == 0 {
                return Ok(None);
            }
            return Err(CloudError::NotFound(format!("{page} is not there")));
        };
        let items = answer[key].as_array().cloned().unwrap_or_default();
        let before = seen_items.len();
        for item in items {
            if seen_items.insert(item_key(&item)) {
                all.push(item);
            }
        }
        if seen_items.len() == before {
            break;
        }
        match next_page(base, &answer, key)? {
            Some(next) if !seen_pages.contains(&next) => page = next,
            _ => break,
        }
    }
    Ok(Some(all))
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
    /// Authenticates with Keystone and reads the endpoints of the catalog; each request may
    /// take up to `deadline`.
    pub async fn connect(creds: &Credentials, deadline: Duration) -> Result<Client, CloudError> {
        let http = http_client(creds.cacert.as_deref())?;
        let body = serde_json::to_vec(&auth_body(&creds.method))
            .map_err(|e| CloudError::Io(e.to_string()))?;
        let request = Request::post(format!("{}/auth/tokens", creds.auth_url))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CloudError::Config(format!("bad auth_url `{}`: {e}", creds.auth_url)))?;
        let (status, headers, body) = send(&http, request, deadline).await?;
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
            deadline,
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
        let (status, _, answer) = send(&self.http, request, self.deadline).await?;
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
        self.get_all_found(service, path, key)
            .await?
            .ok_or_else(|| {
                CloudError::NotFound(format!("{} has no {path}", service.catalog_type()))
            })
    }

    /// As `get_all`, but `None` when the list itself is not there (a 404: the service lacks
    /// the extension that serves it).
    pub async fn get_all_found(
        &self,
        service: Service,
        path: &str,
        key: &str,
    ) -> Result<Option<Vec<Value>>, CloudError> {
        let base = self.base(service);
        pages(&base, path, key, |url| async move {
            self.call_url(Method::GET, service, &url, None).await
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
impl Client {
    /// A client of a cloud whose services all live at `url` (Nova at `url/v2.1`), as a
    /// served-JSON test stands one up.
    pub(crate) fn for_test(url: &str, token: &str) -> Client {
        Client {
            http: http_client(None).expect("http client"),
            deadline: REQUEST_DEADLINE,
            token: token.into(),
            compute: format!("{url}/v2.1"),
            network: url.into(),
            image: url.into(),
        }
    }
}

/// A cloud stand-in for unit tests: plain HTTP on loopback, answering each request with what
/// a handler makes of its method and path, and remembering what it was asked.
#[cfg(test)]
pub(crate) mod served {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    /// One request as the stand-in got it.
    #[derive(Debug, Clone)]
    pub(crate) struct Asked {
        pub method: String,
        pub path: String,
        pub token: Option<String>,
    }

    /// A running stand-in; its thread ends with the test.
    pub(crate) struct Served {
        pub port: u16,
        asked: Arc<Mutex<Vec<Asked>>>,
    }

    impl Served {
        /// Serves `answer(method, path and query)` → (status, JSON body).
        pub(crate) fn start(
            answer: impl Fn(&str, &str) -> (u16, Value) + Send + 'static,
        ) -> Served {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let asked = Arc::new(Mutex::new(Vec::new()));
            let record = asked.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { return };
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        continue;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_string();
                    let path = parts.next().unwrap_or_default().to_string();
                    let (mut token, mut length) = (None, 0usize);
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            match name.trim().to_ascii_lowercase().as_str() {
                                "x-auth-token" => token = Some(value.trim().to_string()),
                                "content-length" => length = value.trim().parse().unwrap_or(0),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    let _ = reader.read_exact(&mut body);
                    record.lock().expect("asked").push(Asked {
                        method: method.clone(),
                        path: path.clone(),
                        token,
                    });
                    let (status, json) = answer(&method, &path);
                    let text = json.to_string();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{text}",
                        text.len()
                    );
                }
            });
            Served { port, asked }
        }

        /// Its URL.
        pub(crate) fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        /// What it was asked so far.
        pub(crate) fn requests(&self) -> Vec<Asked> {
            self.asked.lock().expect("asked").clone()
        }
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

    /// The pages of `served` (URL → answer) as `pages` reads them from `base` + `first`: the
    /// items and the URLs asked for.
    fn read_pages(
        base: &str,
        first: &str,
        key: &str,
        served: &[(&str, Value)],
    ) -> Result<(Vec<Value>, Vec<String>), CloudError> {
        let asked = std::sync::Mutex::new(Vec::new());
        let items = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(pages(base, first, key, |url| {
                asked.lock().expect("asked").push(url.clone());
                let answer = served
                    .iter()
                    .find(|(u, _)| *u == url)
                    .map(|(_, a)| a.clone());
                async move { Ok(answer) }
            }))?
            .unwrap_or_default();
        Ok((items, asked.into_inner().expect("asked")))
    }

    #[test]
    fn glance_lists_are_read_to_their_last_page() {
        let base = "http://glance:9292/v2";
        // Glance's first page, then the `next` paths it names from its root.
        let served = [
            (
                "http://glance:9292/v2/images?name=golden",
                json!({ "images": [{ "id": "1" }, { "id": "2" }],
                        "next": "/v2/images?name=golden&marker=2" }),
            ),
            (
                "http://glance:9292/v2/images?name=golden&marker=2",
                json!({ "images": [{ "id": "3" }], "next": "/v2/images?name=golden&marker=3" }),
            ),
            (
                "http://glance:9292/v2/images?name=golden&marker=3",
                json!({ "images": [] }),
            ),
        ];
        let (items, asked) =
            read_pages(base, "/images?name=golden", "images", &served).expect("pages");
        let ids: Vec<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert_eq!(asked.len(), 3, "{asked:?}");
    }

    #[test]
    fn nova_and_neutron_lists_follow_their_next_links_and_a_loop_ends() {
        let base = "http://nova:8774/v2.1";
        let next = "http://nova:8774/v2.1/servers/detail?marker=b";
        let served = [
            (
                "http://nova:8774/v2.1/servers/detail",
                json!({ "servers": [{ "id": "a" }], "servers_links": [
                    { "rel": "previous", "href": "http://nova/elsewhere" },
                    { "rel": "next", "href": next }] }),
            ),
            (
                next,
                // A server that names the same page again.
                json!({ "servers": [{ "id": "b" }], "servers_links": [
                    { "rel": "next", "href": next }] }),
            ),
        ];
        let (items, asked) =
            read_pages(base, "/servers/detail", "servers", &served).expect("pages");
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(asked.len(), 2, "{asked:?}");
        // A link back to the first page, named as a whole URL, is not read again.
        let served = [(
            "http://nova:8774/v2.1/servers/detail",
            json!({ "servers": [{ "id": "a" }], "servers_links": [
                { "rel": "next", "href": "http://nova:8774/v2.1/servers/detail" }] }),
        )];
        let (items, asked) =
            read_pages(base, "/servers/detail", "servers", &served).expect("pages");
        assert_eq!((items.len(), asked.len()), (1, 1), "{asked:?}");
        // A list with no links is one page.
        let (items, _) = read_pages(
            "http://neutron:9696/v2.0",
            "/ports",
            "ports",
            &[(
                "http://neutron:9696/v2.0/ports",
                json!({ "ports": [{ "id": "p" }] }),
            )],
        )
        .expect("pages");
        assert_eq!(items.len(), 1);
    }

    /// `pages` over a server that answers every URL with `answer(n)`, n counting the calls:
    /// the items, or the error, and how many pages were read.
    fn endless(answer: impl Fn(usize) -> Value) -> (Result<usize, CloudError>, usize) {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let got = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(pages("http://nova/v2.1", "/servers", "servers", |_| {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let page = answer(n);
                async move { Ok(Some(page)) }
            }))
            .map(|items| items.unwrap_or_default().len());
        (got, calls.into_inner())
    }

    #[test]
    fn a_server_whose_next_link_keeps_changing_ends_its_list() {
        // The same items under a new marker each time: the second page adds nothing.
        let (got, calls) = endless(|n| {
            json!({ "servers": [{ "id": "a" }, { "id": "b" }], "servers_links": [
                { "rel": "next", "href": format!("http://nova/v2.1/servers?marker={n}") }] })
        });
        assert_eq!((got.expect("items"), calls), (2, 2));
        // New items forever: stopped at the cap, with an error rather than half a list.
        let (got, calls) = endless(|n| {
            json!({ "servers": [{ "id": n.to_string() }], "servers_links": [
                { "rel": "next", "href": format!("http://nova/v2.1/servers?marker={n}") }] })
        });
        let err = got.expect_err("endless").to_string();
        assert!(err.contains("past 1000 pages"), "{err}");
        assert_eq!(calls, MAX_PAGES);
    }

    #[test]
    fn next_links_keep_only_their_path_and_query_under_the_catalogs_endpoint() {
        let nova = "https://cloud.example:8774/v2.1";
        for link in [
            "http://evil.example:8774/v2.1/servers?marker=a",
            "https://cloud.example:9999/v2.1/servers?marker=a",
            "/v2.1/servers?marker=a",
        ] {
            assert_eq!(
                rebase(nova, link).as_deref(),
                Some("https://cloud.example:8774/v2.1/servers?marker=a"),
                "{link}"
            );
        }
        // A proxy that serves the API under a prefix the service does not know of.
        assert_eq!(
            rebase(
                "https://cloud.example/compute/v2.1",
                "http://10.0.0.5:8774/v2.1/servers"
            )
            .as_deref(),
            Some("https://cloud.example/compute/v2.1/servers")
        );
        assert_eq!(rebase(nova, "http://evil.example/steal"), None);
        let err = next_page(
            nova,
            &json!({ "servers_links": [{ "rel": "next", "href": "http://evil.example/x" }] }),
            "servers",
        )
        .expect_err("refused")
        .to_string();
        assert!(err.contains("not under endpoint"), "{err}");
    }

    #[test]
    fn the_token_never_goes_to_the_host_a_next_link_names() {
        let elsewhere = served::Served::start(|_, _| (200, json!({ "servers": [] })));
        let link = format!(
            "http://127.0.0.1:{}/v2.1/servers/detail?marker=a",
            elsewhere.port
        );
        let cloud = served::Served::start(move |_, path| match path {
            "/v2.1/servers/detail" => (
                200,
                json!({ "servers": [{ "id": "a" }], "servers_links": [
                    { "rel": "next", "href": link }] }),
            ),
            "/v2.1/servers/detail?marker=a" => (200, json!({ "servers": [{ "id": "b" }] })),
            _ => (404, json!({})),
        });
        let client = Client::for_test(&cloud.url(), "the-token");
        let items = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(client.get_all(Service::Compute, "/servers/detail", "servers"))
            .expect("listed");
        assert_eq!(items.len(), 2, "{items:?}");
        assert!(
            elsewhere.requests().is_empty(),
            "{:?}",
            elsewhere.requests()
        );
        let asked = cloud.requests();
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert!(
            asked
                .iter()
                .all(|r| r.token.as_deref() == Some("the-token")),
            "{asked:?}"
        );
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
            .block_on(Client::connect(&creds(Some(ca)), REQUEST_DEADLINE))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("refused the credentials") && err.contains("requires authentication"),
            "{err}"
        );
        // Without it, this host's CAs do not know the certificate.
        let err = runtime
            .block_on(Client::connect(&creds(None), REQUEST_DEADLINE))
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
