//! The `ec2` provider: AWS EC2 through aws-sdk-ec2, with the standard credential chain,
//! profiles, region and endpoint variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_EC2`).
//! Every resource carries weft's tags; look-ups filter by namespace and env, so envs in
//! different namespaces never see each other.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    Filter, Instance, InstanceStateName, InstanceType, ResourceType, Tag, TagSpecification,
};
use aws_sdk_ec2::Client;
use base64::Engine as _;
use tokio::sync::OnceCell;

use super::{machine_key, tags, CloudError, Machine, MachineSpec, Provider, Scope};

/// A tag naming the SSH endpoint of a machine, for test clouds (moto) that boot nothing:
/// honoured only when the API endpoint is on loopback.
pub const SSH_ENDPOINT_TAG: &str = "weft:ssh-endpoint";

/// EC2 in one region.
pub struct Ec2Provider {
    region: Option<String>,
    client: OnceCell<Client>,
}

fn api<E: ProvideErrorMetadata + std::fmt::Debug>(err: E) -> CloudError {
    CloudError::Api {
        code: err.code().unwrap_or("Unknown").to_string(),
        message: err
            .message()
            .map_or_else(|| format!("{err:?}"), str::to_string),
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn tag_spec(kind: ResourceType, scope: &Scope, extra: &[(&str, &str)]) -> TagSpecification {
    let mut spec = TagSpecification::builder()
        .resource_type(kind)
        .tags(tag(tags::NAMESPACE, &scope.namespace))
        .tags(tag(tags::ENV, &scope.env))
        .tags(tag(tags::CREATED_BY, "weft"));
    for (k, v) in extra {
        spec = spec.tags(tag(k, v));
    }
    spec.build()
}

fn scope_filters(scope: &Scope) -> Vec<Filter> {
    vec![
        Filter::builder()
            .name(format!("tag:{}", tags::NAMESPACE))
            .values(&scope.namespace)
            .build(),
        Filter::builder()
            .name(format!("tag:{}", tags::ENV))
            .values(&scope.env)
            .build(),
    ]
}

/// The name of the env's security group and weft's key pair.
fn resource_name(scope: &Scope) -> String {
    let ns: String = scope
        .namespace
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("weft{}-{}", ns.trim_end_matches('-'), scope.env)
}

fn loopback_endpoint() -> bool {
    ["AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|var| {
            std::env::var(var).is_ok_and(|url| {
                let host = url
                    .split("://")
                    .nth(1)
                    .unwrap_or(&url)
                    .split(['/', ':'])
                    .next()
                    .unwrap_or("")
                    .to_string();
                host == "localhost" || host.starts_with("127.")
            })
        })
}

impl Ec2Provider {
    /// A provider for `region` (else the standard AWS configuration's); connects on first use.
    pub fn new(region: Option<String>) -> Result<Self, CloudError> {
        Ok(Ec2Provider {
            region,
            client: OnceCell::new(),
        })
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(region) = &self.region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                Client::new(&loader.load().await)
            })
            .await
    }

    async fn instances(
        &self,
        scope: &Scope,
        extra: Vec<Filter>,
    ) -> Result<Vec<Instance>, CloudError> {
        let mut filters = scope_filters(scope);
        filters.extend(extra);
        filters.push(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .build(),
        );
        let out = self
            .client()
            .await
            .describe_instances()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(api)?;
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances().to_vec())
            .collect())
    }

    fn machine(instance: &Instance) -> Machine {
        let tags: BTreeMap<String, String> = instance
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect();
        let role = tags.get(tags::ROLE).cloned().unwrap_or_default();
        let ordinal = tags
            .get(tags::ORDINAL)
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let user = tags
            .get("weft:ssh-user")
            .cloned()
            .unwrap_or_else(|| "root".into());
        let address = match tags.get(SSH_ENDPOINT_TAG).filter(|_| loopback_endpoint()) {
            Some(endpoint) => Some(endpoint.clone()),
            None => instance
                .public_ip_address()
                .or(instance.private_ip_address())
                .map(|ip| format!("{user}@{ip}:22")),
        };
        Machine {
            id: instance.instance_id().unwrap_or_default().to_string(),
            name: format!("{role}-{ordinal}"),
            role,
            ordinal,
            state: instance
                .state()
                .and_then(|s| s.name())
                .map_or("unknown", InstanceStateName::as_str)
                .to_string(),
            address,
            image: instance.image_id().map(str::to_string),
            tags,
        }
    }

    async fn find(&self, scope: &Scope, id: &str) -> Result<Instance, CloudError> {
        let all = self.instances(scope, Vec::new()).await?;
        all.into_iter()
            .find(|i| i.instance_id() == Some(id) || Self::machine(i).name == id)
            .ok_or_else(|| {
                CloudError::NotFound(format!("no machine `{id}` in env `{}`", scope.env))
            })
    }

    /// The instance id of the machine named (or with id) `id`.
    async fn instance_id(&self, scope: &Scope, id: &str) -> Result<String, CloudError> {
        let instance = self.find(scope, id).await?;
        Ok(instance.instance_id().unwrap_or_default().to_string())
    }

    /// Polls until the instance reaches `state` (short polls, up to ten minutes).
    async fn wait_for(&self, scope: &Scope, id: &str, state: &str) -> Result<Instance, CloudError> {
        for _ in 0..600 {
            let instance = self.find(scope, id).await?;
            if Self::machine(&instance).state == state {
                return Ok(instance);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(CloudError::Io(format!(
            "{id} did not become {state} in time"
        )))
    }

    async fn security_group(&self, scope: &Scope) -> Result<String, CloudError> {
        let client = self.client().await;
        let name = resource_name(scope);
        let mut filters = scope_filters(scope);
        filters.push(Filter::builder().name("group-name").values(&name).build());
        let found = client
            .describe_security_groups()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(api)?;
        if let Some(id) = found.security_groups().first().and_then(|g| g.group_id()) {
            return Ok(id.to_string());
        }
        let made = client
            .create_security_group()
            .group_name(&name)
            .description(format!(
                "weft env {} in namespace {}",
                scope.env, scope.namespace
            ))
            .tag_specifications(tag_spec(ResourceType::SecurityGroup, scope, &[]))
            .send()
            .await
            .map_err(api)?;
        let id = made.group_id().unwrap_or_default().to_string();
        client
            .authorize_security_group_ingress()
            .group_id(&id)
            .ip_protocol("tcp")
            .from_port(22)
            .to_port(22)
            .cidr_ip("0.0.0.0/0")
            .send()
            .await
            .map_err(api)?;
        Ok(id)
    }

    async fn key_pair(
        &self,
        scope: &Scope,
        name: &str,
        public_key: &str,
    ) -> Result<(), CloudError> {
        let client = self.client().await;
        let mut filters = scope_filters(scope);
        filters.push(Filter::builder().name("key-name").values(name).build());
        let found = client
            .describe_key_pairs()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(api)?;
        if !found.key_pairs().is_empty() {
            return Ok(());
        }
        client
            .import_key_pair()
            .key_name(name)
            .public_key_material(aws_sdk_ec2::primitives::Blob::new(
                public_key.trim().as_bytes().to_vec(),
            ))
            .tag_specifications(tag_spec(ResourceType::KeyPair, scope, &[]))
            .send()
            .await
            .map_err(api)?;
        Ok(())
    }
}

#[async_trait]
impl Provider for Ec2Provider {
    async fn create(&self, scope: &Scope, spec: &MachineSpec) -> Result<Machine, CloudError> {
        let ordinal = spec.ordinal.to_string();
        let mine = vec![
            Filter::builder()
                .name(format!("tag:{}", tags::ROLE))
                .values(&spec.role)
                .build(),
            Filter::builder()
                .name(format!("tag:{}", tags::ORDINAL))
                .values(&ordinal)
                .build(),
        ];
        // A retried create finds the machine the first attempt made.
        if let Some(existing) = self.instances(scope, mine).await?.first() {
            return Ok(Self::machine(existing));
        }
        let image = spec.image.clone().ok_or_else(|| {
            CloudError::NotFound(format!(
                "role `{}` names no image: set `image` in [env.{}.machines.{}]",
                spec.role, scope.env, spec.role
            ))
        })?;
        let group = self.security_group(scope).await?;
        let (_, weft_key) = machine_key()?;
        let key_name = resource_name(scope);
        self.key_pair(scope, &key_name, &weft_key).await?;
        let mut user_data = String::from("#cloud-config\nssh_authorized_keys:\n");
        for key in std::iter::once(&weft_key).chain(&spec.keys) {
            user_data.push_str(&format!("  - {}\n", key.trim()));
        }
        if let Some(extra) = &spec.user_data {
            user_data.push_str(extra);
        }
        let name = format!("{}-{}", spec.role, spec.ordinal);
        let mut extra_tags = vec![
            ("Name", name.as_str()),
            (tags::ROLE, spec.role.as_str()),
            (tags::ORDINAL, ordinal.as_str()),
        ];
        extra_tags.extend(spec.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let token = format!("weft-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let out = self
            .client()
            .await
            .run_instances()
            .image_id(&image)
            .instance_type(InstanceType::from(
                spec.size.as_deref().unwrap_or("t3.micro"),
            ))
            .min_count(1)
            .max_count(1)
            .key_name(&key_name)
            .security_group_ids(group)
            .user_data(base64::engine::general_purpose::STANDARD.encode(user_data))
            .client_token(token)
            .tag_specifications(tag_spec(ResourceType::Instance, scope, &extra_tags))
            .send()
            .await
            .map_err(api)?;
        let id = out
            .instances()
            .first()
            .and_then(|i| i.instance_id())
            .ok_or_else(|| CloudError::Io("RunInstances returned no instance".into()))?
            .to_string();
        let instance = self.wait_for(scope, &id, "running").await?;
        Ok(Self::machine(&instance))
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<Machine>, CloudError> {
        let mut machines: Vec<Machine> = self
            .instances(scope, Vec::new())
            .await?
            .iter()
            .map(Self::machine)
            .collect();
        machines.sort_by(|a, b| a.role.cmp(&b.role).then(a.ordinal.cmp(&b.ordinal)));
        Ok(machines)
    }

    async fn start(&self, scope: &Scope, id: &str) -> Result<(), CloudError> {
        let id = self.instance_id(scope, id).await?;
        self.client()
            .await
            .start_instances()
            .instance_ids(&id)
            .send()
            .await
            .map_err(api)?;
        self.wait_for(scope, &id, "running").await.map(|_| ())
    }

    async fn stop(&self, scope: &Scope, id: &str) -> Result<(), CloudError> {
        let id = self.instance_id(scope, id).await?;
        self.client()
            .await
            .stop_instances()
            .instance_ids(&id)
            .send()
            .await
            .map_err(api)?;
        self.wait_for(scope, &id, "stopped").await.map(|_| ())
    }

    async fn terminate(&self, scope: &Scope, id: &str) -> Result<(), CloudError> {
        let id = self.instance_id(scope, id).await?;
        self.client()
            .await
            .terminate_instances()
            .instance_ids(&id)
            .send()
            .await
            .map_err(api)?;
        Ok(())
    }

    async fn image(&self, scope: &Scope, id: &str, name: &str) -> Result<String, CloudError> {
        let instance = self.find(scope, id).await?;
        let out = self
            .client()
            .await
            .create_image()
            .instance_id(instance.instance_id().unwrap_or_default())
            .name(name)
            .tag_specifications(tag_spec(ResourceType::Image, scope, &[]))
            .send()
            .await
            .map_err(api)?;
        Ok(out.image_id().unwrap_or_default().to_string())
    }

    async fn register_key(
        &self,
        scope: &Scope,
        name: &str,
        public_key: &str,
    ) -> Result<(), CloudError> {
        self.key_pair(scope, name, public_key).await
    }

    async fn destroy_resources(&self, scope: &Scope) -> Result<Vec<String>, CloudError> {
        let client = self.client().await;
        let mut gone = Vec::new();
        // Security groups can only go once their machines are gone.
        for _ in 0..120 {
            if self.instances(scope, Vec::new()).await?.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let keys = client
            .describe_key_pairs()
            .set_filters(Some(scope_filters(scope)))
            .send()
            .await
            .map_err(api)?;
        for key in keys.key_pairs() {
            if let Some(name) = key.key_name() {
                client
                    .delete_key_pair()
                    .key_name(name)
                    .send()
                    .await
                    .map_err(api)?;
                gone.push(format!("key pair {name}"));
            }
        }
        let groups = client
            .describe_security_groups()
            .set_filters(Some(scope_filters(scope)))
            .send()
            .await
            .map_err(api)?;
        for group in groups.security_groups() {
            if let Some(id) = group.group_id() {
                client
                    .delete_security_group()
                    .group_id(id)
                    .send()
                    .await
                    .map_err(api)?;
                gone.push(format!(
                    "security group {}",
                    group.group_name().unwrap_or(id)
                ));
            }
        }
        let images = client
            .describe_images()
            .owners("self")
            .set_filters(Some(scope_filters(scope)))
            .send()
            .await
            .map_err(api)?;
        for image in images.images() {
            if let Some(id) = image.image_id() {
                client
                    .deregister_image()
                    .image_id(id)
                    .send()
                    .await
                    .map_err(api)?;
                gone.push(format!("image {id}"));
            }
        }
        Ok(gone)
    }
}
