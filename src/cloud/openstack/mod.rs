//! The `openstack` provider: Nova servers, Neutron security groups and ports, Glance images
//! and Nova key pairs of one project, through the small REST client of `client.rs` with the
//! credentials of `credentials.rs`. Every server carries weft's metadata (namespace, env,
//! role, ordinal) and a tag derived from its namespace and env, which Nova filters on; the
//! env's security group and key pairs are named by that tag, so two envs in one project never
//! see each other's resources.

pub mod client;
pub mod credentials;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use self::client::{Client, Service};
use super::userdata;
use super::{
    hostkey, machine_key, record, tags, CloudError, Machine, MachineSpec, Provider, Scope,
};

/// How long a server or image may take to reach a state.
const STATE_WAIT: Duration = Duration::from_secs(600);

/// Metadata naming the SSH endpoint of a server, for test clouds whose compute driver boots
/// nothing: honoured only when Keystone is on loopback or `WEFT_TEST_SSH_ENDPOINTS=1`.
pub const SSH_ENDPOINT_TAG: &str = "weft:ssh-endpoint";

/// The tag that keeps, when `SSH_ENDPOINT_TAG` stands in for a server's address, the address
/// weft would have reached it at (its floating IP, else its fixed one).
pub const ADDRESS_TAG: &str = "weft:address";

/// An env's OpenStack settings from `weft.toml`.
#[derive(Debug, Clone, Default)]
pub struct OpenstackSettings {
    /// The cloud of clouds.yaml; else `OS_CLOUD`, else the `OS_*` variables.
    pub cloud: Option<String>,
    /// The region, over the credentials' own.
    pub region: Option<String>,
    /// The network (name or id) servers attach to; else the project's only network.
    pub network: Option<String>,
    /// Who may reach SSH; every address when unset.
    pub ssh_cidr: Option<String>,
    /// The external network (name or id) each server gets a floating IP of, which weft then
    /// reaches it at; none when unset.
    pub floating_network: Option<String>,
    /// How long one API request may take; 60 s when unset.
    pub api_timeout: Option<std::time::Duration>,
}

/// One OpenStack project.
pub struct OpenstackProvider {
    settings: OpenstackSettings,
    client: OnceCell<Client>,
    /// Whether the SSH endpoint test hook is honoured.
    test_endpoints: OnceCell<bool>,
}

/// The tag of the scope's servers and the name of its security group and key pair:
/// `weft-` and a digest of namespace and env (Nova tags take neither `/` nor `,`).
fn scope_tag(scope: &Scope) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{}\n{}", scope.namespace, scope.env).as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("weft-{hex}")
}

/// `text` for a URL's query.
fn query(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Whether `text` looks like an OpenStack id (a UUID).
fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.chars().enumerate().all(|(i, c)| {
            matches!(i, 8 | 13 | 18 | 23) == (c == '-') && (c == '-' || c.is_ascii_hexdigit())
        })
}

/// Whether `url`'s host is a loopback address.
fn on_loopback(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    host == "localhost" || host.starts_with("127.")
}

/// weft's state name for a Nova status.
fn state(status: &str) -> String {
    match status {
        "ACTIVE" => "running",
        "SHUTOFF" => "stopped",
        "BUILD" | "REBUILD" | "REBOOT" | "HARD_REBOOT" => "pending",
        "ERROR" => "error",
        "DELETED" | "SOFT_DELETED" => "terminated",
        other => return other.to_ascii_lowercase(),
    }
    .to_string()
}

/// The server's metadata as tags.
fn metadata(server: &Value) -> BTreeMap<String, String> {
    server["metadata"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The server's first IPv4 address, a floating one before a fixed one.
fn server_ip(server: &Value) -> Option<String> {
    let addresses: Vec<&Value> = server["addresses"]
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter(|a| a["version"] == 4)
        .collect();
    addresses
        .iter()
        .find(|a| a["OS-EXT-IPS:type"] == "floating")
        .or(addresses.first())
        .and_then(|a| a["addr"].as_str().map(str::to_string))
}

/// Whether `server` belongs to `scope` by its metadata (the tag alone is a digest).
fn in_scope(server: &Value, scope: &Scope) -> bool {
    let meta = metadata(server);
    meta.get(tags::NAMESPACE) == Some(&scope.namespace)
        && meta.get(tags::ENV) == Some(&scope.env)
        && !matches!(server["status"].as_str(), Some("DELETED" | "SOFT_DELETED"))
}

/// Waits (1 s, growing to 5 s) until `done` says yes, for at most `limit`.
async fn poll<T, F, Fut>(what: &str, limit: Duration, mut done: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, CloudError>>,
{
    let start = Instant::now();
    let mut pause = Duration::from_secs(1);
    loop {
        if let Some(found) = done().await? {
            return Ok(found);
        }
        if start.elapsed() + pause > limit {
            return Err(CloudError::Io(format!(
                "{what} within {} s",
                limit.as_secs()
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

impl OpenstackProvider {
    /// A provider with an env's settings; authenticates on first use.
    pub fn new(settings: OpenstackSettings) -> Result<Self, CloudError> {
        if let Some(cidr) = &settings.ssh_cidr {
            super::check_cidr(cidr)?;
        }
        Ok(OpenstackProvider {
            settings,
            client: OnceCell::new(),
            test_endpoints: OnceCell::new(),
        })
    }

    async fn client(&self) -> Result<&Client, CloudError> {
        self.client
            .get_or_try_init(|| async {
                let mut creds = credentials::load(self.settings.cloud.as_deref())?;
                if let Some(region) = &self.settings.region {
                    creds.region = Some(region.clone());
                }
                let honour = on_loopback(&creds.auth_url)
                    || std::env::var("WEFT_TEST_SSH_ENDPOINTS").is_ok_and(|v| v == "1");
                let _ = self.test_endpoints.set(honour);
                let deadline = self
                    .settings
                    .api_timeout
                    .unwrap_or(client::REQUEST_DEADLINE);
                Client::connect(&creds, deadline).await
            })
            .await
    }

    /// The machine of `server`, reached at `floating` when it has a floating IP.
    fn machine(&self, server: &Value, floating: Option<&str>) -> Machine {
        let mut tags = metadata(server);
        let role = tags.get(tags::ROLE).cloned().unwrap_or_default();
        let ordinal = tags
            .get(tags::ORDINAL)
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let user = tags
            .get("weft:ssh-user")
            .cloned()
            .unwrap_or_else(|| "root".into());
        let honour = self.test_endpoints.get().copied().unwrap_or(false);
        let own = floating
            .map(str::to_string)
            .or_else(|| server_ip(server))
            .map(|ip| format!("{user}@{ip}:22"));
        let address = match tags.get(SSH_ENDPOINT_TAG).filter(|_| honour).cloned() {
            Some(endpoint) => {
                if let Some(own) = own {
                    tags.insert(ADDRESS_TAG.into(), own);
                }
                Some(endpoint)
            }
            None => own,
        };
        Machine {
            id: server["id"].as_str().unwrap_or_default().to_string(),
            name: format!("{role}-{ordinal}"),
            role,
            ordinal,
            state: state(server["status"].as_str().unwrap_or("UNKNOWN")),
            address,
            image: server["image"]["id"].as_str().map(str::to_string),
            tags,
            created: None,
        }
    }

    /// The servers of `scope`, found by its tag and checked by their metadata.
    async fn servers(&self, scope: &Scope) -> Result<Vec<Value>, CloudError> {
        let path = format!("/servers/detail?tags={}", query(&scope_tag(scope)));
        let found = self
            .client()
            .await?
            .get_all(Service::Compute, &path, "servers")
            .await?;
        Ok(found.into_iter().filter(|s| in_scope(s, scope)).collect())
    }

    async fn find(&self, scope: &Scope, id: &str) -> Result<Value, CloudError> {
        self.servers(scope)
            .await?
            .into_iter()
            .find(|s| s["id"] == id || self.machine(s, None).name == id)
            .ok_or_else(|| {
                CloudError::NotFound(format!("no machine `{id}` in env `{}`", scope.env))
            })
    }

    async fn server(&self, id: &str) -> Result<Option<Value>, CloudError> {
        Ok(self
            .client()
            .await?
            .get(Service::Compute, &format!("/servers/{id}"))
            .await?
            .map(|v| v["server"].clone()))
    }

    /// Waits until server `id` has status `wanted`; an ERROR status fails with Nova's fault.
    async fn wait_status(&self, id: &str, wanted: &str) -> Result<Value, CloudError> {
        poll(
            &format!("server {id} did not become {wanted}"),
            STATE_WAIT,
            move || async move {
                let server = self
                    .server(id)
                    .await?
                    .ok_or_else(|| CloudError::NotFound(format!("server {id} is gone")))?;
                match server["status"].as_str() {
                    Some(status) if status == wanted => Ok(Some(server)),
                    Some("ERROR") => Err(CloudError::Api {
                        code: "ERROR".into(),
                        message: format!(
                            "server {id} failed: {}",
                            server["fault"]["message"]
                                .as_str()
                                .unwrap_or("no reason given")
                        ),
                    }),
                    _ => Ok(None),
                }
            },
        )
        .await
    }

    /// Glance's id of image `name_or_id` (a weft image's name, or any image's id or name).
    async fn image_id(&self, name_or_id: &str) -> Result<String, CloudError> {
        let client = self.client().await?;
        if is_uuid(name_or_id)
            && client
                .get(Service::Image, &format!("/images/{name_or_id}"))
                .await?
                .is_some()
        {
            return Ok(name_or_id.to_string());
        }
        let found = client
            .get_all(
                Service::Image,
                &format!("/images?name={}", query(name_or_id)),
                "images",
            )
            .await?;
        let ids: Vec<&str> = found.iter().filter_map(|i| i["id"].as_str()).collect();
        match ids.as_slice() {
            [id] => Ok((*id).to_string()),
            [] => Err(CloudError::NotFound(format!(
                "the cloud has no image `{name_or_id}` (`openstack image list` shows those there are)"
            ))),
            _ => Err(CloudError::Config(format!(
                "the cloud has {} images named `{name_or_id}`: name one by its id",
                ids.len()
            ))),
        }
    }

    /// Nova's id of flavor `name_or_id`.
    async fn flavor_id(&self, name_or_id: &str) -> Result<String, CloudError> {
        let found = self
            .client()
            .await?
            .get_found(Service::Compute, "/flavors/detail")
            .await?;
        let flavors = found["flavors"].as_array().cloned().unwrap_or_default();
        flavors
            .iter()
            .find(|f| f["id"] == name_or_id)
            .or_else(|| flavors.iter().find(|f| f["name"] == name_or_id))
            .and_then(|f| f["id"].as_str().map(str::to_string))
            .ok_or_else(|| {
                let names: Vec<&str> = flavors.iter().filter_map(|f| f["name"].as_str()).collect();
                CloudError::NotFound(format!(
                    "the cloud has no flavor `{name_or_id}` (it has: {})",
                    names.join(", ")
                ))
            })
    }

    /// Neutron's id of the network servers attach to.
    async fn network_id(&self) -> Result<String, CloudError> {
        let found = self
            .client()
            .await?
            .get_found(Service::Network, "/networks")
            .await?;
        let networks = found["networks"].as_array().cloned().unwrap_or_default();
        let names: Vec<&str> = networks.iter().filter_map(|n| n["name"].as_str()).collect();
        let chosen = match &self.settings.network {
            Some(wanted) => networks
                .iter()
                .find(|n| n["id"] == wanted.as_str())
                .or_else(|| networks.iter().find(|n| n["name"] == wanted.as_str()))
                .ok_or_else(|| {
                    CloudError::NotFound(format!(
                        "the cloud has no network `{wanted}` (it has: {})",
                        names.join(", ")
                    ))
                })?,
            None if networks.len() == 1 => &networks[0],
            None => {
                return Err(CloudError::Config(format!(
                    "the project sees {} networks ({}): set `network` in the env's section of \
                     weft.toml",
                    networks.len(),
                    names.join(", ")
                )))
            }
        };
        Ok(chosen["id"].as_str().unwrap_or_default().to_string())
    }

    /// The env's security groups (by name, checked by description).
    async fn security_groups(&self, scope: &Scope) -> Result<Vec<Value>, CloudError> {
        let name = scope_tag(scope);
        let found = self
            .client()
            .await?
            .get_found(
                Service::Network,
                &format!("/security-groups?name={}", query(&name)),
            )
            .await?;
        let description = group_description(scope);
        Ok(found["security_groups"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|g| g["description"] == description.as_str())
            .collect())
    }

    /// The env's security group: SSH from `cidr`, anything between the env's machines.
    async fn security_group(&self, scope: &Scope, cidr: &str) -> Result<String, CloudError> {
        if let Some(id) = self
            .security_groups(scope)
            .await?
            .first()
            .and_then(|g| g["id"].as_str())
        {
            return Ok(id.to_string());
        }
        let client = self.client().await?;
        let made = client
            .post(
                Service::Network,
                "/security-groups",
                &json!({ "security_group": {
                    "name": scope_tag(scope),
                    "description": group_description(scope),
                }}),
            )
            .await?;
        let id = made["security_group"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for rule in [
            json!({ "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                    "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": cidr }),
            json!({ "direction": "ingress", "ethertype": "IPv4", "remote_group_id": id }),
        ] {
            let mut rule = rule;
            rule["security_group_id"] = json!(id);
            client
                .post(
                    Service::Network,
                    "/security-group-rules",
                    &json!({ "security_group_rule": rule }),
                )
                .await?;
        }
        Ok(id)
    }

    /// The env's virtual IP port (a port of the network no server holds), if it has one.
    async fn vip_port(&self, scope: &Scope) -> Result<Option<Value>, CloudError> {
        let name = format!("{}-vip", scope_tag(scope));
        let found = self
            .client()
            .await?
            .get_found(Service::Network, &format!("/ports?name={}", query(&name)))
            .await?;
        let description = group_description(scope);
        Ok(found["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["description"] == description.as_str())
            .cloned())
    }

    /// Lets the ports of `servers` carry `address` too (Neutron's allowed address pairs), so
    /// whichever holds it under VRRP gets its traffic.
    async fn allow_address(&self, servers: &[String], address: &str) -> Result<(), CloudError> {
        let client = self.client().await?;
        for server in servers {
            let ports = client
                .get_found(
                    Service::Network,
                    &format!("/ports?device_id={}", query(server)),
                )
                .await?;
            for port in ports["ports"].as_array().into_iter().flatten() {
                let mut pairs = port["allowed_address_pairs"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if pairs.iter().any(|p| p["ip_address"] == address) {
                    continue;
                }
                pairs.push(json!({ "ip_address": address }));
                let id = port["id"].as_str().unwrap_or_default();
                client
                    .put(
                        Service::Network,
                        &format!("/ports/{id}"),
                        &json!({ "port": { "allowed_address_pairs": pairs } }),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Neutron's id of the env's `floating_network`, an external network; none when unset.
    async fn floating_network_id(&self) -> Result<Option<String>, CloudError> {
        let Some(wanted) = &self.settings.floating_network else {
            return Ok(None);
        };
        let networks = self
            .client()
            .await?
            .get_all(
                Service::Network,
                "/networks?router:external=true",
                "networks",
            )
            .await?;
        networks
            .iter()
            .find(|n| n["id"] == wanted.as_str())
            .or_else(|| networks.iter().find(|n| n["name"] == wanted.as_str()))
            .and_then(|n| n["id"].as_str().map(str::to_string))
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<&str> = networks.iter().filter_map(|n| n["name"].as_str()).collect();
                CloudError::NotFound(format!(
                    "the cloud has no external network `{wanted}` for floating IPs (it has: {})",
                    names.join(", ")
                ))
            })
    }

    /// Every floating IP of the project; none when Neutron has no L3 extension (its
    /// `/floatingips` answers 404), so envs that never use them work on such clouds.
    async fn all_floating_ips(&self) -> Result<Vec<Value>, CloudError> {
        Ok(self
            .client()
            .await?
            .get_all_found(Service::Network, "/floatingips", "floatingips")
            .await?
            .unwrap_or_default())
    }

    /// Every floating IP weft made for the env, found by the description it gave them.
    async fn floating_ips(&self, scope: &Scope) -> Result<Vec<Value>, CloudError> {
        let description = group_description(scope);
        Ok(self
            .all_floating_ips()
            .await?
            .into_iter()
            .filter(|f| f["description"] == description.as_str())
            .collect())
    }

    /// Port id → the server holding it, for the ports `floating` IPs are on. Read from the
    /// ports themselves: a floating IP's `port_details` comes only with Neutron's
    /// fip-port-details extension.
    async fn port_servers(
        &self,
        floating: &[Value],
    ) -> Result<BTreeMap<String, String>, CloudError> {
        let ports: Vec<&str> = floating
            .iter()
            .filter_map(|f| f["port_id"].as_str())
            .collect();
        let mut servers = BTreeMap::new();
        // A few ids per request keep the URL short.
        for chunk in ports.chunks(40) {
            let ids: Vec<String> = chunk.iter().map(|p| format!("id={}", query(p))).collect();
            let found = self
                .client()
                .await?
                .get_all(
                    Service::Network,
                    &format!("/ports?{}", ids.join("&")),
                    "ports",
                )
                .await?;
            for port in found {
                if let (Some(id), Some(device)) = (port["id"].as_str(), port["device_id"].as_str())
                {
                    servers.insert(id.to_string(), device.to_string());
                }
            }
        }
        Ok(servers)
    }

    /// Server id → its floating address, of `floating` IPs.
    async fn floating_of_servers(
        &self,
        floating: &[Value],
    ) -> Result<BTreeMap<String, String>, CloudError> {
        let ports = self.port_servers(floating).await?;
        Ok(floating
            .iter()
            .filter_map(|f| {
                Some((
                    server_of(f, &ports)?,
                    f["floating_ip_address"].as_str()?.to_string(),
                ))
            })
            .collect())
    }

    /// Server id → its floating address, for an env with `floating_network` (no call without).
    async fn floating_by_server(
        &self,
        scope: &Scope,
    ) -> Result<BTreeMap<String, String>, CloudError> {
        if self.settings.floating_network.is_none() {
            return Ok(BTreeMap::new());
        }
        let floating = self.floating_ips(scope).await?;
        self.floating_of_servers(&floating).await
    }

    /// Allocates a floating IP of `network` to server `id`'s port, marked as the env's.
    async fn add_floating_ip(
        &self,
        scope: &Scope,
        id: &str,
        network: &str,
    ) -> Result<String, CloudError> {
        let client = self.client().await?;
        let ports = client
            .get_all(
                Service::Network,
                &format!("/ports?device_id={}", query(id)),
                "ports",
            )
            .await?;
        let port = ports
            .first()
            .and_then(|p| p["id"].as_str())
            .ok_or_else(|| CloudError::Io(format!("server {id} has no port for a floating IP")))?;
        let made = client
            .post(
                Service::Network,
                "/floatingips",
                &json!({ "floatingip": {
                    "floating_network_id": network,
                    "port_id": port,
                    "description": group_description(scope),
                }}),
            )
            .await
            .map_err(|e| {
                CloudError::Config(format!(
                    "cannot give server {id} a floating IP of `{}`: {e} (the env's network \
                     reaches the floating network only through a router: `openstack router \
                     add subnet` and `openstack router set --external-gateway`)",
                    self.settings.floating_network.as_deref().unwrap_or(network)
                ))
            })?;
        let address = made["floatingip"]["floating_ip_address"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                CloudError::Io("Neutron made a floating IP without an address".into())
            })?;
        self.reconcile_floating_rules(scope).await?;
        Ok(address)
    }

    /// Makes the env's security group let in exactly the env's floating IPs: a rule (marked
    /// with the env's description) for each, and none for an address the env no longer holds,
    /// which a later owner of that address could otherwise use. The env's machines reach each
    /// other at the addresses weft lists, the floating ones: traffic sent there comes from the
    /// sender's floating IP, which the group's rule for its own members (their fixed
    /// addresses) does not let in.
    async fn reconcile_floating_rules(&self, scope: &Scope) -> Result<(), CloudError> {
        let client = self.client().await?;
        let description = group_description(scope);
        let wanted: std::collections::BTreeSet<String> = self
            .floating_ips(scope)
            .await?
            .iter()
            .filter_map(|f| f["floating_ip_address"].as_str().map(|a| format!("{a}/32")))
            .collect();
        let (groups, rules) = self.group_rules(scope).await?;
        let mut held = std::collections::BTreeSet::new();
        for rule in rules {
            let Some(prefix) = rule["remote_ip_prefix"].as_str() else {
                continue;
            };
            if rule["description"] != description.as_str() || !prefix.ends_with("/32") {
                continue;
            }
            if wanted.contains(prefix) {
                held.insert(prefix.to_string());
            } else {
                self.delete_rule(&rule).await?;
            }
        }
        let Some(group) = groups.first() else {
            return Ok(());
        };
        for prefix in wanted.difference(&held) {
            client
                .post(
                    Service::Network,
                    "/security-group-rules",
                    &json!({ "security_group_rule": {
                        "security_group_id": group["id"],
                        "direction": "ingress",
                        "ethertype": "IPv4",
                        "remote_ip_prefix": prefix,
                        "description": description,
                    }}),
                )
                .await?;
        }
        Ok(())
    }

    /// The env's security groups and every rule of them.
    async fn group_rules(&self, scope: &Scope) -> Result<(Vec<Value>, Vec<Value>), CloudError> {
        let client = self.client().await?;
        let groups = self.security_groups(scope).await?;
        let mut rules = Vec::new();
        for group in &groups {
            let Some(id) = group["id"].as_str() else {
                continue;
            };
            rules.extend(
                client
                    .get_all(
                        Service::Network,
                        &format!("/security-group-rules?security_group_id={}", query(id)),
                        "security_group_rules",
                    )
                    .await?,
            );
        }
        Ok((groups, rules))
    }

    /// Deletes one security group rule.
    async fn delete_rule(&self, rule: &Value) -> Result<(), CloudError> {
        if let Some(id) = rule["id"].as_str() {
            self.client()
                .await?
                .delete(Service::Network, &format!("/security-group-rules/{id}"))
                .await?;
        }
        Ok(())
    }

    /// Deletes the env's security group rules that let floating IP `address` in.
    async fn forget_floating_ip(&self, scope: &Scope, address: &str) -> Result<(), CloudError> {
        let prefix = format!("{address}/32");
        for rule in self.group_rules(scope).await?.1 {
            if rule["remote_ip_prefix"] == prefix.as_str() {
                self.delete_rule(&rule).await?;
            }
        }
        Ok(())
    }

    /// Releases the env's floating IPs on server `id` (all of them when `id` is `None`), each
    /// after the rule that lets it in, so no rule outlives its address; then removes the rules
    /// of addresses the env no longer holds. The names of those released.
    async fn release_floating_ips(
        &self,
        scope: &Scope,
        id: Option<&str>,
    ) -> Result<Vec<String>, CloudError> {
        let client = self.client().await?;
        let floating = self.floating_ips(scope).await?;
        let ports = match id {
            Some(_) => self.port_servers(&floating).await?,
            None => BTreeMap::new(),
        };
        let mut gone = Vec::new();
        for ip in &floating {
            let address = ip["floating_ip_address"].as_str().unwrap_or_default();
            if id.is_some_and(|id| server_of(ip, &ports).as_deref() != Some(id)) {
                continue;
            }
            if let Some(fip) = ip["id"].as_str() {
                if !address.is_empty() {
                    self.forget_floating_ip(scope, address).await?;
                }
                client
                    .delete(Service::Network, &format!("/floatingips/{fip}"))
                    .await?;
                gone.push(format!(
                    "floating IP {}",
                    if address.is_empty() { fip } else { address }
                ));
            }
        }
        self.reconcile_floating_rules(scope).await?;
        Ok(gone)
    }

    /// Imports `public_key` as key pair `name` unless the project has it; with `refuse_other`,
    /// a key pair of that name holding another key is an error rather than kept.
    async fn key_pair(
        &self,
        name: &str,
        public_key: &str,
        refuse_other: bool,
    ) -> Result<(), CloudError> {
        let client = self.client().await?;
        if let Some(found) = client
            .get(Service::Compute, &format!("/os-keypairs/{}", query(name)))
            .await?
        {
            // The type and the key itself; the comment may differ.
            let key_of = |k: &str| k.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            let held = found["keypair"]["public_key"].as_str().unwrap_or_default();
            if refuse_other && key_of(held) != key_of(public_key) {
                return Err(CloudError::Config(format!(
                    "key pair `{name}` already holds another key ({}): register this one \
                     under another --name, or delete the old one first (`openstack keypair \
                     delete {name}`)",
                    found["keypair"]["fingerprint"]
                        .as_str()
                        .unwrap_or("no fingerprint")
                )));
            }
            return Ok(());
        }
        client
            .post(
                Service::Compute,
                "/os-keypairs",
                &json!({ "keypair": { "name": name, "public_key": public_key.trim() } }),
            )
            .await?;
        Ok(())
    }
}

/// The server floating IP `ip` is on, by its port (`ports`: port id → server), else by its
/// `port_details` where Neutron gives them.
fn server_of(ip: &Value, ports: &BTreeMap<String, String>) -> Option<String> {
    ip["port_id"]
        .as_str()
        .and_then(|p| ports.get(p).cloned())
        .or_else(|| ip["port_details"]["device_id"].as_str().map(str::to_string))
}

/// The VIP of port `port` with its VRRP router id: the address's value spread over 1..=255,
/// so envs whose VIPs are within 255 addresses of each other (a /24) never share an id.
fn vip_of(port: &Value) -> Result<super::VirtualIp, CloudError> {
    let address: std::net::Ipv4Addr = port["fixed_ips"][0]["ip_address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| CloudError::Io("the virtual IP's port has no IPv4 address".into()))?;
    Ok(super::VirtualIp {
        address,
        router_id: router_id(address),
    })
}

fn router_id(address: std::net::Ipv4Addr) -> u8 {
    u8::try_from(u32::from(address) % 255 + 1).unwrap_or(1)
}

/// The description that marks a security group (or the VIP's port) as the env's.
fn group_description(scope: &Scope) -> String {
    format!("weft env {} in namespace {}", scope.env, scope.namespace)
}

#[async_trait]
impl Provider for OpenstackProvider {
    async fn create(&self, scope: &Scope, spec: &MachineSpec) -> Result<Machine, CloudError> {
        let ordinal = spec.ordinal.to_string();
        // A retried create finds the machine the first attempt made.
        if let Some(existing) = self.servers(scope).await?.iter().find(|s| {
            let meta = metadata(s);
            meta.get(tags::ROLE) == Some(&spec.role) && meta.get(tags::ORDINAL) == Some(&ordinal)
        }) {
            let id = existing["id"].as_str().unwrap_or_default();
            let mut floating = self.floating_by_server(scope).await?.remove(id);
            if let Some(network) = self.floating_network_id().await? {
                match floating {
                    // A first attempt that failed after the address may have left it unlet in.
                    Some(_) => self.reconcile_floating_rules(scope).await?,
                    None => floating = Some(self.add_floating_ip(scope, id, &network).await?),
                }
            }
            return Ok(self.machine(existing, floating.as_deref()));
        }
        // Everything the user wrote is checked before anything is made.
        let user_part = userdata::user_part(spec)?;
        let missing = |what: &str, example: &str| {
            CloudError::Config(format!(
                "role `{}` names no {what}: set `{what} = \"{example}\"` in [env.{}.machines.{}]",
                spec.role, scope.env, spec.role
            ))
        };
        let image = spec
            .image
            .clone()
            .ok_or_else(|| missing("image", "debian-12"))?;
        let size = spec
            .size
            .clone()
            .ok_or_else(|| missing("size", "m1.small"))?;
        let image = self.image_id(&image).await?;
        let flavor = self.flavor_id(&size).await?;
        let network = self.network_id().await?;
        let floating_network = self.floating_network_id().await?;
        let cidr = match &self.settings.ssh_cidr {
            Some(cidr) => cidr.clone(),
            None => {
                crate::logging::note(&format!(
                    "warning: env `{}` opens SSH to every address (set `ssh_cidr` to narrow it)",
                    scope.env
                ));
                "0.0.0.0/0".into()
            }
        };
        self.security_group(scope, &cidr).await?;
        let (_, weft_key) = machine_key()?;
        let key_name = scope_tag(scope);
        self.key_pair(&key_name, &weft_key, false).await?;
        let (host_key, user_data) = userdata::for_machine(&weft_key, spec, user_part)?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_data);
        crate::logging::hide(&encoded);
        let name = format!("{}-{}", spec.role, spec.ordinal);
        let mut meta: BTreeMap<String, String> = spec.tags.clone();
        meta.insert(tags::NAMESPACE.into(), scope.namespace.clone());
        meta.insert(tags::ENV.into(), scope.env.clone());
        meta.insert(tags::ROLE.into(), spec.role.clone());
        meta.insert(tags::ORDINAL.into(), ordinal.clone());
        meta.insert(tags::CREATED_BY.into(), "weft".into());
        let made = self
            .client()
            .await?
            .post(
                Service::Compute,
                "/servers",
                &json!({ "server": {
                    "name": format!("{name}.{}", scope.env),
                    "imageRef": image,
                    "flavorRef": flavor,
                    "key_name": key_name,
                    "user_data": encoded,
                    "metadata": meta,
                    "tags": [scope_tag(scope)],
                    "networks": [{ "uuid": network }],
                    "security_groups": [{ "name": scope_tag(scope) }],
                }}),
            )
            .await?;
        let id = made["server"]["id"]
            .as_str()
            .ok_or_else(|| CloudError::Io("Nova made a server without an id".into()))?
            .to_string();
        let server = self.wait_status(&id, "ACTIVE").await?;
        // A machine made after the env's VIP may hold it too.
        if let Some(vip) = self.vip_port(scope).await? {
            self.allow_address(
                std::slice::from_ref(&id),
                &vip_of(&vip)?.address.to_string(),
            )
            .await?;
        }
        let floating = match &floating_network {
            Some(network) => Some(self.add_floating_ip(scope, &id, network).await?),
            None => None,
        };
        let machine = self.machine(&server, floating.as_deref());
        // Only a machine that proved it holds the key weft gave it is admitted.
        record::admit(scope, &machine, &host_key).await?;
        Ok(machine)
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<Machine>, CloudError> {
        let floating = self.floating_by_server(scope).await?;
        let mut machines: Vec<Machine> = self
            .servers(scope)
            .await?
            .iter()
            .map(|s| {
                let id = s["id"].as_str().unwrap_or_default();
                self.machine(s, floating.get(id).map(String::as_str))
            })
            .collect();
        machines.sort_by(|a, b| a.role.cmp(&b.role).then(a.ordinal.cmp(&b.ordinal)));
        Ok(machines)
    }

    async fn start(&self, scope: &Scope, id: &str) -> Result<(), CloudError> {
        let server = self.find(scope, id).await?;
        let id = server["id"].as_str().unwrap_or_default().to_string();
        if server["status"] != "ACTIVE" {
            self.client()
                .await?
                .post(
                    Service::Compute,
                    &format!("/servers/{id}/action"),
                    &json!({ "os-start": null }),
                )
                .await?;
        }
        let server = self.wait_status(&id, "ACTIVE").await?;
        let floating = self.floating_by_server(scope).await?.remove(&id);
        if let Some(address) = self.machine(&server, floating.as_deref()).address {
            let (host, port) = hostkey::host_port(&address);
            hostkey::readdress(&id, &host, port)?;
        }
        Ok(())
    }

    async fn stop(&self, scope: &Scope, id: &str) -> Result<(), CloudError> {
        let server = self.find(scope, id).await?;
        let id = server["id"].as_str().unwrap_or_default().to_string();
        if server["status"] != "SHUTOFF" {
            self.client()
                .await?
                .post(
                    Service::Compute,
                    &format!("/servers/{id}/action"),
                    &json!({ "os-stop": null }),
                )
                .await?;
        }
        self.wait_status(&id, "SHUTOFF").await?;
        Ok(())
    }

    async fn terminate(&self, scope: &Scope, id: &str) -> Result<(), CloudError> {
        let server = self.find(scope, id).await?;
        let id = server["id"].as_str().unwrap_or_default().to_string();
        let id = id.as_str();
        // Deleting the server leaves its floating IPs allocated: they go first.
        self.release_floating_ips(scope, Some(id)).await?;
        self.client()
            .await?
            .delete(Service::Compute, &format!("/servers/{id}"))
            .await?;
        // Gone, ports and all, before the env's security group can go.
        poll(
            &format!("server {id} was not deleted"),
            STATE_WAIT,
            || async { Ok(self.server(id).await?.is_none().then_some(())) },
        )
        .await?;
        hostkey::forget(id)?;
        record::remove(scope, id)?;
        Ok(())
    }

    async fn list_all(&self) -> Result<Vec<Machine>, CloudError> {
        let found = self
            .client()
            .await?
            .get_all(Service::Compute, "/servers/detail", "servers")
            .await?;
        let ours: Vec<&Value> = found
            .iter()
            .filter(|s| metadata(s).get(tags::CREATED_BY).map(String::as_str) == Some("weft"))
            .collect();
        // As `list` shows them: the floating IPs weft made for each server's env.
        let floating: Vec<Value> = if ours.is_empty() {
            Vec::new()
        } else {
            self.all_floating_ips()
                .await?
                .into_iter()
                .filter(|f| {
                    f["description"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("weft env "))
                })
                .collect()
        };
        let by_server = self.floating_of_servers(&floating).await?;
        let mut machines: Vec<Machine> = ours
            .iter()
            .map(|s| {
                let meta = metadata(s);
                let scope = Scope {
                    namespace: meta.get(tags::NAMESPACE).cloned().unwrap_or_default(),
                    env: meta.get(tags::ENV).cloned().unwrap_or_default(),
                };
                let id = s["id"].as_str().unwrap_or_default();
                // Only an address made for this server's own env.
                let address = by_server.get(id).filter(|address| {
                    floating.iter().any(|f| {
                        f["floating_ip_address"] == address.as_str()
                            && f["description"] == group_description(&scope).as_str()
                    })
                });
                self.machine(s, address.map(String::as_str))
            })
            .collect();
        Machine::sort_by_place(&mut machines);
        Ok(machines)
    }

    fn admits(&self, scope: &Scope, machine: &Machine) -> bool {
        record::contains(scope, &machine.id)
    }

    async fn image(&self, scope: &Scope, id: &str, name: &str) -> Result<String, CloudError> {
        let server = self.find(scope, id).await?;
        let id = server["id"].as_str().unwrap_or_default().to_string();
        let client = self.client().await?;
        let made = client
            .post(
                Service::Compute,
                &format!("/servers/{id}/action"),
                &json!({ "createImage": { "name": name, "metadata": {
                    tags::NAMESPACE: scope.namespace,
                    tags::ENV: scope.env,
                    tags::CREATED_BY: "weft",
                }}}),
            )
            .await?;
        let image = made["image_id"]
            .as_str()
            .ok_or_else(|| CloudError::Io("Nova made an image without an id".into()))?
            .to_string();
        // Usable once Glance holds its data: a recreate right after must find it active.
        poll(
            &format!("image {name} ({image}) did not become active"),
            STATE_WAIT,
            || async {
                let found = client
                    .get(Service::Image, &format!("/images/{image}"))
                    .await?;
                match found.as_ref().and_then(|i| i["status"].as_str()) {
                    Some("active") => Ok(Some(())),
                    Some("killed" | "deleted") | None => Err(CloudError::Api {
                        code: "image".into(),
                        message: format!("image {name} ({image}) failed"),
                    }),
                    _ => Ok(None),
                }
            },
        )
        .await?;
        Ok(image)
    }

    async fn virtual_ip(
        &self,
        scope: &Scope,
        wanted: Option<std::net::Ipv4Addr>,
    ) -> Result<super::VirtualIp, CloudError> {
        let port = match self.vip_port(scope).await? {
            Some(port) => port,
            None => {
                let network = self.network_id().await?;
                let mut port = json!({
                    "network_id": network,
                    "name": format!("{}-vip", scope_tag(scope)),
                    "description": group_description(scope),
                });
                if let Some(address) = wanted {
                    port["fixed_ips"] = json!([{ "ip_address": address.to_string() }]);
                }
                self.client()
                    .await?
                    .post(Service::Network, "/ports", &json!({ "port": port }))
                    .await?["port"]
                    .clone()
            }
        };
        let vip = vip_of(&port)?;
        if let Some(address) = wanted.filter(|a| *a != vip.address) {
            return Err(CloudError::Config(format!(
                "env `{}` already has the virtual IP {}, not {address}: `weft cloud destroy` \
                 the env to change it",
                scope.env, vip.address
            )));
        }
        let servers: Vec<String> = self
            .servers(scope)
            .await?
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        self.allow_address(&servers, &vip.address.to_string())
            .await?;
        Ok(vip)
    }

    async fn peek_virtual_ip(
        &self,
        scope: &Scope,
        wanted: Option<std::net::Ipv4Addr>,
    ) -> Result<super::VirtualIp, CloudError> {
        match (self.vip_port(scope).await?, wanted) {
            (Some(port), _) => vip_of(&port),
            (None, Some(address)) => Ok(super::VirtualIp {
                address,
                router_id: router_id(address),
            }),
            (None, None) => {
                // Only reads: the network's name for the message.
                self.network_id().await?;
                let network = match &self.settings.network {
                    Some(name) => format!("network `{name}`"),
                    None => "the project's only network".into(),
                };
                crate::logging::note(&format!(
                    "check: env `{}` has no virtual IP yet: a run makes Neutron port `{}-vip` on \
                     {network}, lets the ports of the env's servers carry its address \
                     and uses the address Neutron gives it (0.0.0.0 stands in for it here)",
                    scope.env,
                    scope_tag(scope)
                ));
                Ok(super::VirtualIp {
                    address: std::net::Ipv4Addr::UNSPECIFIED,
                    router_id: router_id(std::net::Ipv4Addr::UNSPECIFIED),
                })
            }
        }
    }

    async fn register_key(
        &self,
        scope: &Scope,
        name: &str,
        public_key: &str,
    ) -> Result<(), CloudError> {
        // Key pairs belong to the user, not the project: the env's prefix keeps them apart.
        self.key_pair(&format!("{}-{name}", scope_tag(scope)), public_key, true)
            .await
    }

    async fn destroy_resources(&self, scope: &Scope) -> Result<Vec<String>, CloudError> {
        let mut gone = Vec::new();
        // Security groups can only go once their machines' ports are gone.
        poll(
            &format!("the machines of env `{}` were not deleted", scope.env),
            STATE_WAIT,
            || async { Ok(self.servers(scope).await?.is_empty().then_some(())) },
        )
        .await?;
        // Those of machines already gone, or of a terminate that stopped half way.
        gone.extend(self.release_floating_ips(scope, None).await?);
        let client = self.client().await?;
        let prefix = scope_tag(scope);
        let keys = client
            .get_all(Service::Compute, "/os-keypairs", "keypairs")
            .await?;
        for key in keys {
            let Some(name) = key["keypair"]["name"].as_str() else {
                continue;
            };
            if name == prefix || name.starts_with(&format!("{prefix}-")) {
                client
                    .delete(Service::Compute, &format!("/os-keypairs/{}", query(name)))
                    .await?;
                gone.push(format!("key pair {name}"));
            }
        }
        if let Some(port) = self.vip_port(scope).await? {
            if let Some(id) = port["id"].as_str() {
                client
                    .delete(Service::Network, &format!("/ports/{id}"))
                    .await?;
                gone.push(format!("virtual IP {}", vip_of(&port)?.address));
            }
        }
        for group in self.security_groups(scope).await? {
            let Some(id) = group["id"].as_str() else {
                continue;
            };
            // Ports someone left on the group (their server gone) would keep it.
            let ports = client
                .get_all(
                    Service::Network,
                    &format!("/ports?security_groups={id}"),
                    "ports",
                )
                .await?;
            for port in ports {
                if let Some(port_id) = port["id"].as_str() {
                    client
                        .delete(Service::Network, &format!("/ports/{port_id}"))
                        .await?;
                    gone.push(format!("port {port_id}"));
                }
            }
            client
                .delete(Service::Network, &format!("/security-groups/{id}"))
                .await?;
            gone.push(format!("security group {prefix}"));
        }
        let images = client
            .get_all(
                Service::Image,
                &format!(
                    "/images?{}={}&{}={}",
                    query(tags::NAMESPACE),
                    query(&scope.namespace),
                    query(tags::ENV),
                    query(&scope.env)
                ),
                "images",
            )
            .await?;
        for image in images {
            if image[tags::NAMESPACE] != scope.namespace.as_str()
                || image[tags::ENV] != scope.env.as_str()
            {
                continue;
            }
            if let Some(id) = image["id"].as_str() {
                client
                    .delete(Service::Image, &format!("/images/{id}"))
                    .await?;
                gone.push(format!("image {}", image["name"].as_str().unwrap_or(id)));
            }
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(namespace: &str, env: &str) -> Scope {
        Scope {
            namespace: namespace.into(),
            env: env.into(),
        }
    }

    #[test]
    fn envs_get_tags_nova_accepts_and_never_share_one() {
        let a = scope_tag(&scope("/shop/", "dev"));
        let b = scope_tag(&scope("/shop/", "prod"));
        let c = scope_tag(&scope("/shop/dev/", ""));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert!(!a.contains('/') && !a.contains(',') && a.len() <= 60, "{a}");
    }

    #[test]
    fn a_server_of_another_env_with_a_colliding_tag_is_not_in_scope() {
        let server = json!({ "status": "ACTIVE", "metadata": {
            "weft:namespace": "/shop/", "weft:env": "prod" } });
        assert!(in_scope(&server, &scope("/shop/", "prod")));
        assert!(!in_scope(&server, &scope("/shop/", "dev")));
        assert!(!in_scope(&server, &scope("/other/", "prod")));
    }

    #[test]
    fn a_floating_address_is_reached_before_a_fixed_one() {
        let server = json!({ "addresses": { "net": [
            { "version": 6, "addr": "2001:db8::5", "OS-EXT-IPS:type": "fixed" },
            { "version": 4, "addr": "10.0.0.5", "OS-EXT-IPS:type": "fixed" },
            { "version": 4, "addr": "203.0.113.9", "OS-EXT-IPS:type": "floating" },
        ]}});
        assert_eq!(server_ip(&server).as_deref(), Some("203.0.113.9"));
        assert_eq!(server_ip(&json!({})), None);
    }

    #[test]
    fn ids_and_queries() {
        assert!(is_uuid("51d1ef9b-9b05-4c1c-8ab3-4b942b68bfe1"));
        assert!(!is_uuid("debian-12"));
        assert_eq!(query("weft:env"), "weft%3Aenv");
        assert_eq!(query("/a b/"), "%2Fa%20b%2F");
        assert!(on_loopback("http://127.0.0.1:5000/v3"));
        assert!(!on_loopback("http://10.77.0.2:5000/v3"));
    }

    /// A provider of env settings `settings` whose cloud is `served`.
    fn served_provider(
        served: &client::served::Served,
        settings: OpenstackSettings,
    ) -> OpenstackProvider {
        let provider = OpenstackProvider::new(settings).expect("provider");
        assert!(provider
            .client
            .set(Client::for_test(&served.url(), "token"))
            .is_ok());
        provider
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn a_cloud_without_floating_ips_has_none_to_release() {
        // Neutron without its L3 extension: no /floatingips at all.
        let served = client::served::Served::start(|_, path| {
            if path.starts_with("/v2.0/security-groups?") {
                (200, json!({ "security_groups": [] }))
            } else {
                (404, json!({ "NeutronError": { "message": "not found" } }))
            }
        });
        let provider = served_provider(&served, OpenstackSettings::default());
        let env = scope("/shop/", "dev");
        let gone = block_on(provider.release_floating_ips(&env, Some("srv"))).expect("terminate");
        assert!(gone.is_empty(), "{gone:?}");
        let gone = block_on(provider.release_floating_ips(&env, None)).expect("destroy");
        assert!(gone.is_empty(), "{gone:?}");
        let asked: Vec<String> = served.requests().into_iter().map(|r| r.path).collect();
        assert!(asked.iter().any(|p| p == "/v2.0/floatingips"), "{asked:?}");
        assert!(
            served.requests().iter().all(|r| r.method == "GET"),
            "{asked:?}"
        );
    }

    /// A cloud with server `srv` of env dev (namespace /shop/) on port `p1`, floating IP
    /// 203.0.113.7 of that env on `p1` and 203.0.113.8 of another env on `p2` (of server
    /// `other`); no `port_details` on them (Neutron without fip-port-details).
    fn cloud_with_floating_ips() -> client::served::Served {
        client::served::Served::start(|method, path| {
            let dev = group_description(&scope("/shop/", "dev"));
            let prod = group_description(&scope("/shop/", "prod"));
            match (method, path) {
                ("GET", "/v2.1/servers/detail") => (
                    200,
                    json!({ "servers": [{ "id": "srv", "status": "ACTIVE",
                        "addresses": { "net": [{ "version": 4, "addr": "10.0.0.5" }] },
                        "metadata": { "weft:namespace": "/shop/", "weft:env": "dev",
                            "weft:role": "web", "weft:ordinal": "0",
                            "weft:created-by": "weft" } }] }),
                ),
                ("GET", "/v2.0/floatingips") => (
                    200,
                    json!({ "floatingips": [
                        { "id": "f1", "port_id": "p1", "description": dev,
                          "floating_ip_address": "203.0.113.7" },
                        { "id": "f2", "port_id": "p2", "description": prod,
                          "floating_ip_address": "203.0.113.8" }] }),
                ),
                ("GET", p) if p.starts_with("/v2.0/ports?") => {
                    let ports: Vec<Value> = [("p1", "srv"), ("p2", "other")]
                        .iter()
                        .filter(|(id, _)| p.contains(&format!("id={id}")))
                        .map(|(id, device)| json!({ "id": id, "device_id": device }))
                        .collect();
                    (200, json!({ "ports": ports }))
                }
                ("GET", p) if p.starts_with("/v2.0/security-groups?") => {
                    (200, json!({ "security_groups": [] }))
                }
                ("DELETE", _) => (204, Value::Null),
                _ => (404, json!({})),
            }
        })
    }

    #[test]
    fn floating_ips_are_matched_to_servers_by_their_port() {
        let served = cloud_with_floating_ips();
        let provider = served_provider(
            &served,
            OpenstackSettings {
                floating_network: Some("public".into()),
                ..OpenstackSettings::default()
            },
        );
        let found = block_on(provider.floating_by_server(&scope("/shop/", "dev"))).expect("ips");
        assert_eq!(
            found,
            BTreeMap::from([("srv".to_string(), "203.0.113.7".to_string())])
        );
        // terminate of srv releases its address and no other.
        let gone = block_on(provider.release_floating_ips(&scope("/shop/", "dev"), Some("srv")))
            .expect("released");
        assert_eq!(gone, ["floating IP 203.0.113.7"]);
        let deleted: Vec<String> = served
            .requests()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.path)
            .collect();
        assert_eq!(deleted, ["/v2.0/floatingips/f1"]);
    }

    #[test]
    fn list_all_shows_the_floating_address_list_shows() {
        let served = cloud_with_floating_ips();
        let provider = served_provider(&served, OpenstackSettings::default());
        let all = block_on(provider.list_all()).expect("list_all");
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].address.as_deref(), Some("root@203.0.113.7:22"));
    }
}
