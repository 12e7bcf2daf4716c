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

use super::userdata;
use super::{
    hostkey, machine_key, record, tags, CloudError, Machine, MachineSpec, Provider, Scope,
};

/// How long a new machine may take to answer SSH with its host key.
/// How long an instance may take to reach a state.
const STATE_WAIT: Duration = Duration::from_secs(600);

/// A tag naming the SSH endpoint of a machine, for test clouds (moto) that boot nothing:
/// honoured only when the API endpoint is on loopback.
pub const SSH_ENDPOINT_TAG: &str = "weft:ssh-endpoint";

/// EC2 in one region.
pub struct Ec2Provider {
    settings: Ec2Settings,
    client: OnceCell<Client>,
}

/// An env's EC2 settings from `weft.toml`.
#[derive(Debug, Clone, Default)]
pub struct Ec2Settings {
    /// The region; else the profile's or the standard configuration's.
    pub region: Option<String>,
    /// The AWS profile whose credentials (SSO, `credential_process`, keys) and region are used.
    pub profile: Option<String>,
    /// Who may reach SSH; else the controller's address.
    pub ssh_cidr: Option<String>,
}

/// The controller's address as a /32, for the security group (127.0.0.1 for a loopback API).
async fn controller_cidr() -> Result<String, CloudError> {
    if loopback_endpoint() {
        return Ok("127.0.0.1/32".into());
    }
    let out = tokio::process::Command::new("curl")
        .args(["-fsS", "--max-time", "10", "https://checkip.amazonaws.com"])
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    let address = out
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse::<std::net::IpAddr>().ok());
    match address {
        Some(std::net::IpAddr::V4(ip)) => Ok(format!("{ip}/32")),
        _ => Err(CloudError::Config(
            "cannot find this controller's public address (https://checkip.amazonaws.com) to \
             open SSH to it: set `ssh_cidr` in the env's section of weft.toml"
                .into(),
        )),
    }
}

fn api<E: ProvideErrorMetadata + std::fmt::Debug>(err: E) -> CloudError {
    CloudError::Api {
        code: err.code().unwrap_or("Unknown").to_string(),
        message: err
            .message()
            .map_or_else(|| format!("{err:?}"), str::to_string),
    }
}

fn waiter<E: std::error::Error + 'static>(id: &str, state: &str, err: E) -> CloudError {
    CloudError::Io(format!(
        "{id} did not become {state}: {}",
        aws_sdk_ec2::error::DisplayErrorContext(err)
    ))
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
    /// A provider with an env's settings; connects on first use.
    pub fn new(settings: Ec2Settings) -> Result<Self, CloudError> {
        if let Some(cidr) = &settings.ssh_cidr {
            super::check_cidr(cidr)?;
        }
        Ok(Ec2Provider {
            settings,
            client: OnceCell::new(),
        })
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let config = crate::aws::sdk_config(
                    self.settings.profile.as_deref(),
                    self.settings.region.as_deref(),
                )
                .await;
                Client::new(&config)
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
        self.instances_where(filters).await
    }

    /// The instances that are not terminated and match `filters`.
    async fn instances_where(&self, mut filters: Vec<Filter>) -> Result<Vec<Instance>, CloudError> {
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
            created: instance
                .launch_time()
                .and_then(|t| u64::try_from(t.secs()).ok()),
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

    /// Waits with the SDK's waiter until instance `id` runs, then describes it.
    async fn wait_running(&self, scope: &Scope, id: &str) -> Result<Instance, CloudError> {
        use aws_sdk_ec2::client::Waiters as _;
        self.client()
            .await
            .wait_until_instance_running()
            .instance_ids(id)
            .wait(STATE_WAIT)
            .await
            .map_err(|e| waiter(id, "running", e))?;
        self.find(scope, id).await
    }

    /// Waits with the SDK's waiter until instance `id` is stopped.
    async fn wait_stopped(&self, id: &str) -> Result<(), CloudError> {
        use aws_sdk_ec2::client::Waiters as _;
        self.client()
            .await
            .wait_until_instance_stopped()
            .instance_ids(id)
            .wait(STATE_WAIT)
            .await
            .map_err(|e| waiter(id, "stopped", e))?;
        Ok(())
    }

    async fn security_group(&self, scope: &Scope, cidr: &str) -> Result<String, CloudError> {
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
            .cidr_ip(cidr)
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
        // Everything the user wrote is checked before anything is made.
        let user_part = userdata::user_part(spec)?;
        let image = spec.image.clone().ok_or_else(|| {
            CloudError::NotFound(format!(
                "role `{}` names no image: set `image` in [env.{}.machines.{}]",
                spec.role, scope.env, spec.role
            ))
        })?;
        let cidr = match &self.settings.ssh_cidr {
            Some(cidr) => cidr.clone(),
            None => controller_cidr().await?,
        };
        if cidr == "0.0.0.0/0" {
            crate::logging::note(&format!(
                "warning: env `{}` opens SSH to every address (ssh_cidr = \"0.0.0.0/0\")",
                scope.env
            ));
        }
        let group = self.security_group(scope, &cidr).await?;
        let (_, weft_key) = machine_key()?;
        let key_name = resource_name(scope);
        self.key_pair(scope, &key_name, &weft_key).await?;
        let (host_key, user_data) = userdata::for_machine(&weft_key, spec, user_part)?;
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
        let instance = self.wait_running(scope, &id).await?;
        let machine = Self::machine(&instance);
        // Only a machine that proved it holds the key weft gave it is admitted.
        record::admit(scope, &machine, &host_key).await?;
        Ok(machine)
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
        let instance = self.wait_running(scope, &id).await?;
        if let Some(address) = Self::machine(&instance).address {
            let (host, port) = hostkey::host_port(&address);
            hostkey::readdress(&id, &host, port)?;
        }
        Ok(())
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
        self.wait_stopped(&id).await
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
        hostkey::forget(&id)?;
        record::remove(scope, &id)?;
        Ok(())
    }

    async fn list_all(&self) -> Result<Vec<Machine>, CloudError> {
        let made_by_weft = Filter::builder()
            .name(format!("tag:{}", tags::CREATED_BY))
            .values("weft")
            .build();
        let mut machines: Vec<Machine> = self
            .instances_where(vec![made_by_weft])
            .await?
            .iter()
            .map(Self::machine)
            .collect();
        Machine::sort_by_place(&mut machines);
        Ok(machines)
    }

    async fn adopt(
        &self,
        from: &Scope,
        to: &Scope,
        extra: &BTreeMap<String, String>,
    ) -> Result<Vec<Machine>, CloudError> {
        let moving: Vec<Machine> = self.list(from).await?;
        let taken: Vec<String> = self.list(to).await?.into_iter().map(|m| m.name).collect();
        super::refuse_name_clash(moving.iter().map(|m| m.name.as_str()), &taken, from, to)?;
        if moving.is_empty() {
            return Ok(moving);
        }
        let client = self.client().await;
        // The env's security group and key pair move too, so `cloud destroy` of the new
        // namespace removes them once their machines are gone.
        let groups = client
            .describe_security_groups()
            .set_filters(Some(scope_filters(from)))
            .send()
            .await
            .map_err(api)?;
        let mut resources: Vec<String> = moving.iter().map(|m| m.id.clone()).collect();
        resources.extend(
            groups
                .security_groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_string)),
        );
        let mut tagging = client
            .create_tags()
            .set_resources(Some(resources))
            .tags(tag(tags::NAMESPACE, &to.namespace));
        for (key, value) in extra {
            tagging = tagging.tags(tag(key, value));
        }
        tagging.send().await.map_err(api)?;
        for machine in &moving {
            // Admitted before, admitted after: the record follows the machine.
            if record::contains(from, &machine.id) {
                record::add(to, &machine.id)?;
                record::remove(from, &machine.id)?;
            }
        }
        self.list(to).await.map(|all| {
            all.into_iter()
                .filter(|m| moving.iter().any(|old| old.id == m.id))
                .collect()
        })
    }

    fn admits(&self, scope: &Scope, machine: &Machine) -> bool {
        record::contains(scope, &machine.id)
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

    async fn virtual_ip(
        &self,
        _scope: &Scope,
        _wanted: Option<std::net::Ipv4Addr>,
    ) -> Result<super::VirtualIp, CloudError> {
        Err(CloudError::Config(
            "a virtual IP (`vip`) needs VRRP, which an EC2 VPC does not carry (no multicast, \
             and an address moves between instances only through the EC2 API): remove `vip` \
             and give the site an Elastic IP, or put an AWS load balancer (ALB or NLB) in front \
             of the lbs"
                .into(),
        ))
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
