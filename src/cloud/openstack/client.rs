//! A small typed REST client for the OpenStack services weft uses (Keystone, Nova, Neutron,
//! Glance), on hyper with rustls: a Keystone v3 token and its catalog, then JSON requests to
//! the catalog's endpoints, each within a deadline. The token is hidden from every log line.

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

fn http_client() -> Result<Http, CloudError> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_DEADLINE));
    connector.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|e| CloudError::Io(format!("cannot read this host's CA certificates: {e}")))?
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
            .map_err(|e| CloudError::Io(format!("{what}: {e}")))?;
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
        let http = http_client()?;
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
        let mut request = Request::builder()
            .method(method)
            .uri(&url)
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
