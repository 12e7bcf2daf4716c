//! The schema of `weft.toml` and its parsing into spanned values.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use crate::source::SourceFile;
use crate::transport::ssh::Target;

/// A parsed `weft.toml`, with the text it came from for diagnostics.
#[derive(Debug)]
pub struct ProjectConfig {
    /// The file as read, named by its path.
    pub source: SourceFile,
    /// The parsed content.
    pub file: ConfigFile,
}

/// The top level of `weft.toml`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[project]`: name and defaults.
    #[serde(default)]
    pub project: ProjectSection,
    /// `[vars]`: the lowest layer of variables, shared by every env.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    #[serde(default)]
    pub vars: toml::Table,
    /// `[env.NAME]`: the environments.
    #[serde(default)]
    pub env: IndexMap<String, EnvSection>,
    /// `[apps.NAME]`: apps built and deployed by the stdlib `app` service. Each one gets the
    /// goals `NAME_build`, `NAME_deploy` ...; scripts see the tables as the var `apps`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, serde_json::Map<String, serde_json::Value>>")]
    pub apps: IndexMap<String, toml::Table>,
    /// `[plugins]`: NAME = { path = "plugins/NAME" }, most specific first; their files sit
    /// between the project's and the user's.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, PluginEntry>")]
    pub plugins: IndexMap<String, Spanned<PluginEntry>>,
}

/// One `[plugins]` entry.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// The plugin's folder, relative to the project.
    pub path: String,
}

/// `[project]`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    /// The project's name, available to scripts and templates as `project`.
    pub name: Option<String>,
    /// The env used when `-e` is not given.
    #[schemars(with = "Option<String>")]
    pub default_env: Option<Spanned<String>>,
    /// The Rhai operation budget of one goal call on one host (at least 1).
    #[schemars(with = "Option<u64>")]
    pub max_operations: Option<Spanned<u64>>,
}

/// How weft reaches the hosts of an env.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// This machine, commands run by `sh -c` without SSH.
    Local,
    /// Remote hosts over SSH.
    Ssh,
}

impl ConnectorKind {
    /// The name used in `weft.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Local => "local",
            ConnectorKind::Ssh => "ssh",
        }
    }
}

/// Where an env's machines come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Sandbox machines on this Linux host.
    Local,
    /// AWS EC2.
    Ec2,
    /// An OpenStack cloud (Nova, Neutron, Glance, Keystone v3).
    Openstack,
}

/// `[env.NAME.machines.ROLE]`: what `weft cloud create ROLE` and `env_up` make.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineEntry {
    /// How many machines of the role `env_up` makes.
    #[serde(default = "one")]
    pub count: u32,
    /// The fewest machines `env_up_min` makes, and `weft watch` scales down to.
    pub min: Option<u32>,
    /// The most machines `weft watch` scales up to.
    pub max: Option<u32>,
    /// Mean CPU percent of the role's machines above which `<role>_scale` adds one.
    pub scale_up_cpu: Option<f64>,
    /// Mean CPU percent below which `<role>_scale` removes one.
    pub scale_down_cpu: Option<f64>,
    /// Seconds after a scaling decision before the next one for the role.
    pub cooldown: Option<u64>,
    /// Seconds `weft watch` waits for a drained machine's connections to end before it
    /// terminates it anyway (default 60).
    pub drain_timeout: Option<u64>,
    /// The image (an AMI id for ec2, a weft image name for local).
    pub image: Option<String>,
    /// The instance size (`t3.micro`).
    pub size: Option<String>,
    /// The size of each machine's disk on the local provider, such as "10G" (K, M, G or T;
    /// default 10G): a machine that fills it gets "No space left on device", and the host
    /// gives only what it stores.
    pub disk: Option<String>,
    /// Debian packages every machine of the role starts with: baked into a cached image on
    /// the local provider, installed at first boot by cloud-init on ec2.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Public key files (or keys) that may log in.
    #[serde(default)]
    pub keys: Vec<String>,
    /// A first-boot script, where the provider supports it.
    pub user_data: Option<String>,
    /// The user weft logs in as (default `root`).
    pub user: Option<String>,
    /// Extra tags on the role's machines.
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    /// Variables of the role's machines.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    #[serde(default)]
    pub vars: toml::Table,
}

fn one() -> u32 {
    1
}

/// The smallest `disk` a machine may have: room for its filesystem and a first install.
pub const MIN_DISK: u64 = 256 << 20;

/// The bytes of a disk size such as `10G` or `512M` (binary units K, M, G, T, optionally
/// followed by `iB`); why not, for a size that is not one or is below `MIN_DISK`.
pub fn disk_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let unitless = text
        .strip_suffix("iB")
        .or_else(|| text.strip_suffix('B'))
        .unwrap_or(text);
    let digits = unitless.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &unitless[digits.len()..];
    let shift = match unit.to_ascii_uppercase().as_str() {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("`{text}` is not a disk size")),
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("`{text}` is not a disk size"))?;
    if bytes < MIN_DISK {
        return Err(format!(
            "disk `{text}` is below the smallest a machine may have, 256M"
        ));
    }
    Ok(bytes)
}

impl MachineEntry {
    /// The role's `disk` in bytes (checked when `weft.toml` was read).
    pub fn disk_bytes(&self) -> Option<u64> {
        self.disk.as_deref().and_then(|d| disk_bytes(d).ok())
    }
}

/// Whether `name` is a Debian package name (Debian policy 5.6.1), optionally with an
/// architecture (`:amd64`).
pub fn debian_package_name(name: &str) -> bool {
    let name = name.split_once(':').map_or(name, |(n, arch)| {
        if !arch.is_empty() && arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            n
        } else {
            ""
        }
    });
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// The longest project slug a default namespace holds: machine ids, folder names and EC2
/// resource names (`weft-<namespace>-<env>`) stay well inside their limits.
const NAMESPACE_SLUG_MAX: usize = 24;

/// The default namespace of a project's provider envs: `/<slug>/`, the slug of the project's
/// name (lowercase ASCII letters, digits and `-`; anything else becomes `-`). A slug longer than
/// 24 characters is cut and given a digest of the whole name, so it stays the same for the same
/// name and two long names that share a start still differ. `/root/` would share machine ids
/// with the old default `/` (whose ids start with `root.`), so that slug is `project-root`.
pub fn project_namespace(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_matches('-').to_string();
    if slug.is_empty() {
        slug = "project".into();
    }
    if slug.len() > NAMESPACE_SLUG_MAX {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(name.as_bytes());
        let hex: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
        slug.truncate(NAMESPACE_SLUG_MAX - hex.len() - 1);
        slug = format!("{}-{hex}", slug.trim_end_matches('-'));
    }
    if slug == "root" {
        slug = "project-root".into();
    }
    format!("/{slug}/")
}

/// Why `name` cannot be one path component (a folder named after a host), if it cannot.
fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty: a name is needed")
    } else if name == "." || name == ".." {
        Some("would name the folder itself or its parent")
    } else if name.contains('/') {
        Some("contains `/`")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    }
}

/// `[env.NAME]`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvSection {
    /// `local` or `ssh`; defaults to `ssh` when hosts are listed or a provider makes them.
    pub connector: Option<ConnectorKind>,
    /// The provider whose machines are the env's hosts (dynamic inventory).
    pub provider: Option<ProviderKind>,
    /// The cloud region (ec2, openstack).
    pub region: Option<String>,
    /// The cloud of `clouds.yaml` whose credentials the env uses (openstack); else
    /// `OS_CLOUD`, else the `OS_*` variables of an openrc.
    pub cloud: Option<String>,
    /// The network (name or id) the env's servers attach to (openstack); else the project's
    /// only network.
    pub network: Option<String>,
    /// The external network (name or id) whose floating IP each of the env's servers gets
    /// (openstack): weft reaches them at it, and releases it with the server; none when unset.
    pub floating_network: Option<String>,
    /// Seconds weft waits for one answer of the cloud's API (openstack; 60 when unset): a
    /// busy private cloud may need more.
    pub api_timeout: Option<u64>,
    /// The AWS profile (`~/.aws/config`) whose credentials and region the env uses (ec2).
    pub profile: Option<String>,
    /// Who may reach the env's machines over SSH (ec2 and openstack security group), e.g.
    /// `203.0.113.0/24`; on ec2 the controller's address when absent, on openstack every
    /// address.
    pub ssh_cidr: Option<String>,
    /// The namespace the env's resources live in; `/<project>/` when absent (the slug of
    /// `[project] name`, see `project_namespace`): envs in different namespaces never see each
    /// other's machines.
    pub namespace: Option<String>,
    /// What each role's machines look like.
    #[serde(default)]
    pub machines: IndexMap<String, MachineEntry>,
    /// The public keys (files or keys) that may log in to the env's machines: the set
    /// `weft keys sync` enforces.
    #[serde(default)]
    pub keys: Vec<String>,
    /// The age public keys (`age1...`) that `secrets/<ENV>.age` is encrypted to: those who may
    /// read the env's `{ secret = "NAME" }` values (`weft secrets rekey` after a change).
    #[serde(default)]
    pub secrets_recipients: Vec<String>,
    /// Host name → address (`user@addr:port`) or a table with `address` and `vars`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, HostEntry>")]
    pub hosts: IndexMap<String, Spanned<HostEntry>>,
    /// Role name → host names, or a table with `hosts` and `vars`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, RoleEntry>")]
    pub roles: IndexMap<String, Spanned<RoleEntry>>,
    /// Variables of every host of this env.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    #[serde(default)]
    pub vars: toml::Table,
    /// `weft watch` runs the `alert` goal when a machine's CPU percent goes above this.
    pub alert_cpu: Option<f64>,
    /// `weft watch` runs the `alert` goal when a machine's memory in use goes above this percent.
    pub alert_mem: Option<f64>,
    /// `weft watch` runs the `alert` goal when a machine's disk `/` goes above this percent used.
    pub alert_disk: Option<f64>,
}

/// One host: its address alone, or an address with host variables.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(
    untagged,
    expecting = "an address such as \"root@10.0.0.5:22\", or a table with `address` and `vars`"
)]
pub enum HostEntry {
    /// `app-0 = "root@127.0.0.1:2201"`
    Address(String),
    /// `app-0 = { address = "...", vars = { ... } }`
    Table {
        /// `user@addr:port`
        address: String,
        /// Variables of this host alone.
        #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
        #[serde(default)]
        vars: toml::Table,
    },
}

/// One role: its hosts alone, or hosts with role variables.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(
    untagged,
    expecting = "a list of host names such as [\"app-0\"], or a table with `hosts` and `vars`"
)]
pub enum RoleEntry {
    /// `web = ["app-0", "app-1"]`
    Hosts(Vec<String>),
    /// `web = { hosts = [...], vars = { ... } }`
    Table {
        /// The hosts that play this role.
        hosts: Vec<String>,
        /// Variables of every host in this role.
        #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
        #[serde(default)]
        vars: toml::Table,
    },
}

impl HostEntry {
    /// The host's address as written.
    pub fn address(&self) -> &str {
        match self {
            HostEntry::Address(a) | HostEntry::Table { address: a, .. } => a,
        }
    }
    /// The host's own variables.
    pub fn vars(&self) -> Option<&toml::Table> {
        match self {
            HostEntry::Address(_) => None,
            HostEntry::Table { vars, .. } => Some(vars),
        }
    }
}

impl RoleEntry {
    /// The host names listed for the role.
    pub fn hosts(&self) -> &[String] {
        match self {
            RoleEntry::Hosts(h) | RoleEntry::Table { hosts: h, .. } => h,
        }
    }
    /// The role's variables.
    pub fn vars(&self) -> Option<&toml::Table> {
        match self {
            RoleEntry::Hosts(_) => None,
            RoleEntry::Table { vars, .. } => Some(vars),
        }
    }
}

impl ProjectConfig {
    /// Reads and validates `weft.toml` at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path.to_path_buf(), text)
    }

    /// Parses and validates config text that came from `path`.
    pub fn parse(path: PathBuf, text: String) -> Result<Self, ConfigError> {
        let source = SourceFile::new(path.display().to_string(), text);
        let file: ConfigFile = match toml::from_str(source.text()) {
            Ok(file) => file,
            Err(err) => {
                return Err(ConfigError::Syntax {
                    message: err.message().to_string(),
                    span: err.span().map(Into::into),
                    src: source.named(),
                })
            }
        };
        let config = ProjectConfig { source, file };
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: roles name known hosts, the default env exists.
    fn validate(&self) -> Result<(), ConfigError> {
        if let Err((span, message)) = self.check_references() {
            return Err(self.invalid(
                span,
                message,
                Some(
                    "a secret reference is `{ env = .. }`, `{ file = .. }`, `{ command = [..] }`, \
                     `{ secret = .. }` or `{ aws_secret = .. }` (see README, Secrets)"
                        .into(),
                ),
            ));
        }
        for (env_name, env) in &self.file.env {
            let env_ref = env;
            // Host names and machine roles (which name the machines, and so their hosts)
            // become folder names: `weft copy --pull` writes under `DIR/<host>/`, and the local
            // provider keeps each machine in a folder named after it.
            let names = env_ref
                .hosts
                .keys()
                .map(|name| ("hosts", "host name", name))
                .chain(
                    env_ref
                        .machines
                        .keys()
                        .map(|name| ("machines", "machine role", name)),
                );
            for (table, what, name) in names {
                if let Some(why) = unsafe_name(name) {
                    return Err(self.invalid(
                        self.narrow_quoted(
                            self.section_span(&format!("env.{env_name}.{table}")),
                            name,
                        ),
                        format!("{what} `{}` {why}", name.escape_debug()),
                        Some(format!(
                            "{what}s become folder names: give a name without `/` or control \
                             characters, other than `.` and `..`, such as `app-0`"
                        )),
                    ));
                }
            }
            // Checked with the parser that connects, so an address that cannot work stops
            // weft here, pointing at it, and not later when a run is about to reach it.
            for (name, entry) in &env_ref.hosts {
                let address = entry.get_ref().address();
                let problem = if address.is_empty() {
                    Some("is empty".to_string())
                } else {
                    Target::parse(address)
                        .err()
                        .map(|why| format!("is unusable: {why}"))
                };
                if let Some(problem) = problem {
                    return Err(self.invalid(
                        self.narrow_quoted(entry.span(), address),
                        format!("the address of host `{name}` {problem}"),
                        Some(
                            "write `[user@]host[:port]`, with an IPv6 address in brackets, such \
                             as \"root@10.0.0.5:22\" or \"[::1]:2222\""
                                .into(),
                        ),
                    ));
                }
            }
            for role in env_ref.roles.values() {
                for host in role.get_ref().hosts() {
                    if !env_ref.hosts.contains_key(host) {
                        let known: Vec<&str> = env_ref.hosts.keys().map(String::as_str).collect();
                        return Err(self.invalid(
                            self.narrow(role.span(), host),
                            format!("role lists `{host}`, which is not a host of env `{env_name}`"),
                            crate::suggest::help("hosts", host, &known),
                        ));
                    }
                }
            }
            for (role, entry) in &env_ref.machines {
                if let Some(Err(why)) = entry.disk.as_deref().map(disk_bytes) {
                    let disk = entry.disk.as_deref().unwrap_or_default();
                    return Err(self.invalid(
                        self.narrow_quoted(
                            self.section_span(&format!("env.{env_name}.machines.{role}")),
                            disk,
                        ),
                        why,
                        Some(
                            "write a size with its unit, K, M, G or T (powers of 1024), such \
                             as \"10G\" or \"512M\"; at least 256M"
                                .into(),
                        ),
                    ));
                }
                // Package names reach apt-get and cloud-init: refuse anything that is not one.
                if let Some(bad) = entry.packages.iter().find(|p| !debian_package_name(p)) {
                    return Err(self.invalid(
                        self.narrow(
                            self.section_span(&format!("env.{env_name}.machines.{role}")),
                            bad,
                        ),
                        format!("`{bad}` is not a Debian package name"),
                        Some(
                            "package names are lowercase letters, digits and `+ - .`, such as \
                             `nginx` or `python3-venv`"
                                .into(),
                        ),
                    ));
                }
            }
            // Only Neutron has floating IPs: elsewhere the setting would silently do nothing.
            if let (Some(network), false) = (
                &env_ref.floating_network,
                env_ref.provider == Some(ProviderKind::Openstack),
            ) {
                return Err(self.invalid(
                    self.narrow_quoted(self.section_span(&format!("env.{env_name}")), network),
                    format!(
                        "`floating_network` needs `provider = \"openstack\"` in env `{env_name}`"
                    ),
                    Some("floating IPs are OpenStack's: remove `floating_network` here".into()),
                ));
            }
            if let Some(seconds) = env_ref.api_timeout {
                let span =
                    self.narrow_key(self.section_span(&format!("env.{env_name}")), "api_timeout");
                if env_ref.provider != Some(ProviderKind::Openstack) {
                    return Err(self.invalid(
                        span,
                        format!(
                            "`api_timeout` needs `provider = \"openstack\"` in env `{env_name}`"
                        ),
                        Some(
                            "only the openstack provider reads it: remove `api_timeout` here"
                                .into(),
                        ),
                    ));
                }
                if seconds == 0 {
                    return Err(self.invalid(
                        span,
                        format!("`api_timeout` of env `{env_name}` is 0 seconds"),
                        Some("give the seconds one API request may take, such as 120".into()),
                    ));
                }
            }
            if env_ref.connector == Some(ConnectorKind::Local) && env_ref.hosts.len() > 1 {
                return Err(self.invalid(
                    self.section_span(&format!("env.{env_name}")),
                    format!("env `{env_name}` uses the local connector, which has one host: this machine"),
                    Some("remove `hosts`, or use `connector = \"ssh\"`".into()),
                ));
            }
        }
        for name in self.file.apps.keys() {
            let mut chars = name.chars();
            let ident = chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ident {
                return Err(self.invalid(
                    self.section_span(&format!("apps.{name}")),
                    format!("app name `{name}` cannot start goal names such as `{name}_deploy`"),
                    Some("use lowercase letters, digits and `_`, starting with a letter".into()),
                ));
            }
        }
        if let Some(max) = &self.file.project.max_operations {
            if *max.get_ref() == 0 {
                return Err(self.invalid(
                    max.span(),
                    "`max_operations = 0` would let a goal run without any limit".into(),
                    Some("give a budget, e.g. 1000000000; the default is 50000000".into()),
                ));
            }
        }
        if let Some(default) = &self.file.project.default_env {
            let name = default.get_ref();
            if name != super::LOCAL_ENV && !self.file.env.contains_key(name) {
                let known = self.env_names();
                return Err(self.invalid(
                    default.span(),
                    format!("default env `{name}` is not defined"),
                    crate::suggest::help("envs", name, &known),
                ));
            }
        }
        Ok(())
    }

    /// The names of the envs defined in the file.
    pub fn env_names(&self) -> Vec<&str> {
        self.file.env.keys().map(String::as_str).collect()
    }

    /// Every key of every `[apps.NAME]` (and of its repos) is one the app service declares
    /// (`app_settings()` and `repo_settings()` of `lib/app.rhai`, whichever layer wins it), so
    /// a typo stops weft instead of being ignored.
    pub fn check_app_keys(&self, app_keys: &[&str], repo_keys: &[&str]) -> Result<(), ConfigError> {
        for (name, app) in &self.file.apps {
            self.check_app(name, app, app_keys, repo_keys)?;
        }
        Ok(())
    }

    fn check_app(
        &self,
        name: &str,
        app: &toml::Table,
        app_keys: &[&str],
        repo_keys: &[&str],
    ) -> Result<(), ConfigError> {
        let span = self.section_span(&format!("apps.{name}"));
        let mut tables = vec![(app, app_keys, format!("[apps.{name}]"))];
        if let Some(toml::Value::Array(repos)) = app.get("repos") {
            for repo in repos.iter().filter_map(toml::Value::as_table) {
                tables.push((repo, repo_keys, format!("a repo of [apps.{name}]")));
            }
        }
        for (table, known, what) in tables {
            if let Some(key) = table.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(self.invalid(
                    self.narrow_key(span.clone(), key),
                    format!("`{key}` is not a setting of {what}"),
                    crate::suggest::help("settings", key, known),
                ));
            }
        }
        if let Some(vip) = app.get("vip").and_then(toml::Value::as_str) {
            if !vip.is_empty() && vip.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(self.invalid(
                    self.narrow(span.clone(), vip),
                    format!("`vip` of [apps.{name}] is `{vip}`, not an IPv4 address"),
                    Some(
                        "give the address the load balancers share (such as \"10.77.0.200\"), \
                         or leave `vip` out"
                            .into(),
                    ),
                ));
            }
        }
        self.check_acme(name, app, span.clone())?;
        self.check_container(name, app, span.clone())?;
        if let Some(manager) = app.get("manager").and_then(toml::Value::as_str) {
            if !["supervisor", "systemd"].contains(&manager) {
                return Err(self.invalid(
                    self.narrow(span, manager),
                    format!("`manager` of [apps.{name}] is `{manager}`"),
                    Some("use \"supervisor\" or \"systemd\"".into()),
                ));
            }
        }
        Ok(())
    }

    /// The settings of a container app (issue 36: `image`, `app_port`, `env`, `volumes`,
    /// `cmd`) are ones podman takes, so a bad one stops weft at its line before any host is
    /// touched.
    fn check_container(
        &self,
        name: &str,
        app: &toml::Table,
        span: std::ops::Range<usize>,
    ) -> Result<(), ConfigError> {
        let at = |key: &str| self.narrow_key(span.clone(), key);
        let bad = |key: &str, message: String, help: &str| {
            Err(self.invalid(at(key), message, Some(help.to_string())))
        };
        if let Some(image) = app.get("image") {
            let text = image.as_str().unwrap_or_default();
            let tail = text.rsplit('/').next().unwrap_or_default();
            let fine = image.is_str()
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_/:".contains(c))
                && !text.starts_with(['-', '/', ':'])
                && tail.split(':').count() <= 2
                && !text.ends_with([':', '/']);
            if !fine {
                return bad(
                    "image",
                    format!("`image` of [apps.{name}] is not an image name: {image}"),
                    "name the image with letters, digits and . - _ /, and an optional :tag, \
                     such as \"localhost/hello\" or \"registry.example/hello:1.2\"",
                );
            }
        }
        if app
            .get("image")
            .and_then(toml::Value::as_str)
            .is_some_and(|i| !i.is_empty())
        {
            for key in ["wsgi", "migrate", "repos"] {
                if app.contains_key(key) {
                    return bad(
                        key,
                        format!("[apps.{name}] has an `image` and `{key}`, which container apps do not use"),
                        "leave it out: the image holds the app and its command (`cmd` overrides it)",
                    );
                }
            }
        }
        if let Some(port) = app.get("app_port") {
            if !port.as_integer().is_some_and(|p| (1..=65534).contains(&p)) {
                return bad(
                    "app_port",
                    format!("`app_port` of [apps.{name}] is {port}, not a port from 1 to 65534"),
                    "give the port the container listens on (PORT); the next one is the \
                     second slot's, used during a switch",
                );
            }
        }
        if let Some(env) = app.get("env") {
            let names_fine = env.as_table().is_some_and(|t| {
                t.iter().all(|(k, v)| {
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                        && !v.is_array()
                })
            });
            if !names_fine {
                return bad(
                    "env",
                    format!("`env` of [apps.{name}] is not a table of variables: {env}"),
                    "use env = { NAME = \"value\", TOKEN = { env = \"TOKEN\" } }, names of \
                     letters, digits and _",
                );
            }
        }
        if let Some(volumes) = app.get("volumes") {
            let mount_fine = |v: &toml::Value| {
                let parts: Vec<&str> = v.as_str().unwrap_or_default().split(':').collect();
                (2..=3).contains(&parts.len())
                    && parts[0].starts_with('/')
                    && parts[1].starts_with('/')
                    && parts
                        .get(2)
                        .is_none_or(|o| ["ro", "rw", "z", "Z"].contains(o))
            };
            if !volumes.as_array().is_some_and(|a| a.iter().all(mount_fine)) {
                return bad(
                    "volumes",
                    format!("`volumes` of [apps.{name}] is not a list of mounts: {volumes}"),
                    "use volumes = [\"/srv/data:/data\", \"/etc/app:/config:ro\"], both \
                     paths absolute",
                );
            }
        }
        if let Some(cmd) = app.get("cmd") {
            if !cmd
                .as_array()
                .is_some_and(|a| a.iter().all(toml::Value::is_str))
            {
                return bad(
                    "cmd",
                    format!("`cmd` of [apps.{name}] is not a list of strings: {cmd}"),
                    "use cmd = [\"/bin/app\", \"--serve\"]",
                );
            }
        }
        Ok(())
    }

    /// The ACME settings of app `name` (`domains`, `acme_*`) can work: each domain a name
    /// HTTP-01 proves, on `lb_port` 80, without `tls_cert`; a directory that is a shortcut or
    /// an https URL; an `acme_ca` that is a file of the project; an `acme_email` that is an
    /// address. Refused here, at load, nothing has touched a host yet.
    fn check_acme(
        &self,
        name: &str,
        app: &toml::Table,
        span: std::ops::Range<usize>,
    ) -> Result<(), ConfigError> {
        let what = format!("[apps.{name}]");
        let at_key = |key: &str| self.narrow_key(span.clone(), key);
        let at_value = |value: &str| self.narrow_quoted(span.clone(), value);
        let text = |key: &str| {
            app.get(key)
                .and_then(toml::Value::as_str)
                .unwrap_or_default()
        };
        if let Some(directory) = app.get("acme_directory").and_then(toml::Value::as_str) {
            if let Err(err) = crate::acme::directory_url(directory) {
                return Err(self.invalid(
                    at_value(directory),
                    format!("{what}: {err}"),
                    Some(
                        "\"staging\" while trying things out, \"production\" (the default) for \
                         certificates browsers trust, or the https:// URL of another ACME \
                         server's directory"
                            .into(),
                    ),
                ));
            }
        }
        let ca = text("acme_ca");
        if !ca.is_empty() {
            let root = Path::new(self.source.name())
                .parent()
                .unwrap_or(Path::new("."));
            if !root.join(ca).is_file() {
                return Err(self.invalid(
                    at_value(ca),
                    format!("{what}: acme_ca `{ca}` is no file of the project"),
                    Some(
                        "give the path, from the project's folder, of a PEM with the roots that \
                         sign the ACME server's HTTPS certificate, or leave acme_ca out to trust \
                         the system's"
                            .into(),
                    ),
                ));
            }
        }
        let email = text("acme_email");
        if let Some(why) = (!email.is_empty())
            .then(|| crate::acme::email_problem(email))
            .flatten()
        {
            return Err(self.invalid(
                at_value(email),
                format!("{what}: acme_email `{email}` {why}"),
                Some("the ACME server writes there about certificates that expire".into()),
            ));
        }
        let Some(domains) = app.get("domains") else {
            return Ok(());
        };
        let list_help =
            || Some("write a list of names, such as domains = [\"example.org\"]".into());
        let Some(domains) = domains.as_array() else {
            return Err(self.invalid(
                at_key("domains"),
                format!("{what}: `domains` is not a list of names"),
                list_help(),
            ));
        };
        for domain in domains {
            let Some(domain) = domain.as_str() else {
                return Err(self.invalid(
                    at_key("domains"),
                    format!("{what}: `domains` holds {domain}, which is not a name"),
                    list_help(),
                ));
            };
            if let Some(why) = crate::acme::domain_problem(domain) {
                return Err(self.invalid(
                    at_value(domain),
                    format!("{what}: domain `{domain}` {why}"),
                    None,
                ));
            }
        }
        if domains.is_empty() {
            return Ok(());
        }
        if !cfg!(feature = "acme") {
            return Err(self.invalid(
                at_key("domains"),
                format!(
                    "{what} sets domains, and this weft was built without the `acme` feature \
                     (cargo build --no-default-features)"
                ),
                Some(
                    "build weft with the default features to get certificates over ACME, or \
                     remove domains"
                        .into(),
                ),
            ));
        }
        if !text("tls_cert").is_empty() {
            return Err(self.invalid(
                at_key("tls_cert"),
                format!(
                    "{what} sets both tls_cert and domains: the certificate comes from one of them"
                ),
                Some(
                    "remove tls_cert to get certificates over ACME, or domains to serve tls_cert"
                        .into(),
                ),
            ));
        }
        if let Some(port) = app.get("lb_port").and_then(toml::Value::as_integer) {
            if port != 80 {
                return Err(self.invalid(
                    at_key("lb_port"),
                    format!(
                        "{what}: ACME validates domains over HTTP on port 80, and lb_port is {port}"
                    ),
                    Some("remove lb_port or set it to 80".into()),
                ));
            }
        }
        Ok(())
    }

    /// The span of `key = ` inside `span`, else `span` itself.
    fn narrow_key(&self, span: std::ops::Range<usize>, key: &str) -> std::ops::Range<usize> {
        let text = self.source.text().get(span.clone()).unwrap_or_default();
        let at = text.match_indices(key).find(|(at, _)| {
            let before = text[..*at].chars().next_back();
            let after = text[at + key.len()..].trim_start();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after.starts_with('=')
        });
        match at {
            Some((at, _)) => span.start + at..span.start + at + key.len(),
            None => span,
        }
    }

    /// The span of the quoted `word` inside `span`, else `span` itself.
    /// Where the table at `dotted` (`env.dev`) starts, to the end of the file: its header
    /// (`[env.dev]`, `[env.dev.hosts]`, `[[apps.x.repos]]`), else its key inside a parent
    /// table. Tables made implicitly by a deeper header carry no span of their own, so
    /// errors find them in the text.
    fn section_span(&self, dotted: &str) -> std::ops::Range<usize> {
        let text = self.source.text();
        let (parent, last) = dotted.rsplit_once('.').unwrap_or(("", dotted));
        let headers = [
            format!("[{dotted}]"),
            format!("[{dotted}."),
            format!("[[{dotted}."),
        ];
        let start = headers
            .iter()
            .filter_map(|h| text.find(h.as_str()))
            .min()
            .or_else(|| {
                let after = text.find(&format!("[{parent}]")).unwrap_or(0);
                text[after..]
                    .find(&format!("{last} ="))
                    .or_else(|| text[after..].find(&format!("{last}=")))
                    .map(|at| after + at)
            })
            .unwrap_or(0);
        start..text.len()
    }

    fn narrow(&self, span: std::ops::Range<usize>, word: &str) -> std::ops::Range<usize> {
        let text = self.source.text().get(span.clone()).unwrap_or_default();
        let quoted = format!("\"{word}\"");
        match text.find(&quoted) {
            Some(at) => span.start + at..span.start + at + quoted.len(),
            None => span,
        }
    }

    /// An error about env `env` of this file, pointing at its section.
    pub fn env_error(&self, env: &str, message: String, help: Option<String>) -> ConfigError {
        self.invalid(self.section_span(&format!("env.{env}")), message, help)
    }

    /// The span of `word` as a quoted TOML string (`"…"`, `'…'`, or with escapes such as `\t`)
    /// inside `span`, else `span` itself.
    fn narrow_quoted(&self, span: std::ops::Range<usize>, word: &str) -> std::ops::Range<usize> {
        let text = self.source.text().get(span.clone()).unwrap_or_default();
        let escaped = toml::Value::String(word.to_string()).to_string();
        let found = [format!("\"{word}\""), format!("'{word}'"), escaped]
            .into_iter()
            .filter_map(|quoted| text.find(&quoted).map(|at| (at, quoted.len())))
            .min();
        match found {
            Some((at, len)) => span.start + at..span.start + at + len,
            None => span,
        }
    }

    fn invalid(
        &self,
        span: std::ops::Range<usize>,
        message: String,
        help: Option<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            message,
            span: span.into(),
            help,
            src: self.source.named(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProjectConfig, ConfigError> {
        ProjectConfig::parse("weft.toml".into(), text.to_string())
    }

    #[test]
    fn a_floating_network_outside_openstack_is_refused_where_it_is_written() {
        let text = "[project]\nname = \"p\"\n[env.dev]\nprovider = \"local\"\n\
                    floating_network = \"public\"\n";
        let Err(ConfigError::Invalid { message, span, .. }) = parse(text) else {
            panic!("not refused");
        };
        assert!(message.contains("provider = \"openstack\""), "{message}");
        assert_eq!(
            &text[span.offset()..span.offset() + span.len()],
            "\"public\""
        );
        assert!(parse(&text.replace("\"local\"", "\"openstack\"")).is_ok());
    }

    #[test]
    fn an_api_timeout_is_openstacks_and_more_than_zero_refused_where_it_is_written() {
        let text = "[project]\nname = \"p\"\n[env.dev]\nprovider = \"local\"\napi_timeout = 0\n";
        let refused = |text: &str| {
            let Err(ConfigError::Invalid { message, span, .. }) = parse(text) else {
                panic!("not refused: {text}");
            };
            assert!(
                text[span.offset()..].starts_with("api_timeout"),
                "{message} at {span:?}"
            );
            message
        };
        assert!(refused(text).contains("provider = \"openstack\""));
        let openstack = text.replace("\"local\"", "\"openstack\"");
        assert!(refused(&openstack).contains("is 0 seconds"));
        assert!(parse(&openstack.replace("= 0", "= 120")).is_ok());
    }

    #[test]
    fn a_projects_namespace_is_a_stable_slug_of_its_name() {
        assert_eq!(project_namespace("shop"), "/shop/");
        assert_eq!(project_namespace("My Shop_2.0"), "/my-shop-2-0/");
        assert_eq!(project_namespace("Café!"), "/caf/");
        assert_eq!(project_namespace("///"), "/project/");
        assert_eq!(project_namespace("root"), "/project-root/");
        let long = project_namespace("a-very-long-project-name-for-the-shop-one");
        let other = project_namespace("a-very-long-project-name-for-the-shop-two");
        assert_eq!(
            long,
            project_namespace("a-very-long-project-name-for-the-shop-one")
        );
        assert_ne!(long, other);
        assert_eq!(long.len(), 24 + 2, "{long}");
        assert!(long.starts_with("/a-very-long-proje-"), "{long}");
    }

    #[test]
    fn short_and_long_forms_parse() {
        let config = parse(
            r#"
            [project]
            name = "demo"
            [env.fleet]
            hosts = { app-0 = "root@127.0.0.1:2201", app-1 = { address = "127.0.0.2", vars = { a = 1 } } }
            roles = { web = ["app-0"], db = { hosts = ["app-1"], vars = { b = 2 } } }
            "#,
        )
        .expect("valid config");
        let fleet = &config.file.env["fleet"];
        assert_eq!(fleet.hosts["app-1"].get_ref().address(), "127.0.0.2");
        assert_eq!(fleet.roles["db"].get_ref().hosts()[0], "app-1");
    }

    #[test]
    fn role_with_unknown_host_points_at_it() {
        let text = "[env.fleet]\nhosts = { app-0 = \"a\" }\nroles = { web = [\"app-1\"] }\n";
        let Err(ConfigError::Invalid { span, help, .. }) = parse(text) else {
            panic!("expected an invalid-config error");
        };
        assert_eq!(
            &text[span.offset()..span.offset() + span.len()],
            "\"app-1\""
        );
        assert!(help.unwrap_or_default().contains("app-0"));
    }

    #[test]
    fn disk_sizes_take_binary_units_and_a_floor() {
        assert_eq!(disk_bytes("10G"), Ok(10 << 30));
        assert_eq!(disk_bytes("512M"), Ok(512 << 20));
        assert_eq!(disk_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(disk_bytes("1t"), Ok(1 << 40));
        for bad in ["10", "1.5G", "ten G", "10GBB", "10X", ""] {
            let why = disk_bytes(bad).unwrap_err();
            assert!(why.contains("is not a disk size"), "{bad}: {why}");
        }
        assert!(disk_bytes("100M").unwrap_err().contains("256M"));
        assert!(disk_bytes("99999999999T").is_err());
    }

    #[test]
    fn a_disk_that_is_not_a_size_points_at_it() {
        let text = "[env.dev]\nprovider = \"local\"\n[env.dev.machines.web]\ndisk = \"10 gigs\"\n";
        let Err(ConfigError::Invalid { span, help, .. }) = parse(text) else {
            panic!("expected an invalid-config error");
        };
        assert_eq!(
            &text[span.offset()..span.offset() + span.len()],
            "\"10 gigs\""
        );
        assert!(help.unwrap_or_default().contains("\"10G\""));
    }
}
