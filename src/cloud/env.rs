//! An env's machines: its provider and scope from `weft.toml`, and the env-level actions the
//! CLI and controller goals share (list, find by role and ordinal, create, terminate).

use std::collections::BTreeMap;

use miette::Diagnostic;
use thiserror::Error;

use super::local::LocalProvider;
use super::{CloudError, Machine, MachineSpec, Provider, Scope};
use crate::config::{EnvSection, ProviderKind};
use crate::project::Project;

/// An env action that cannot go on.
#[derive(Debug, Error, Diagnostic)]
pub enum CloudEnvError {
    /// The env has no provider.
    #[error("env `{env}` has no provider")]
    #[diagnostic(
        code(weft::cloud::no_provider),
        help("add `provider = \"local\"` (or \"ec2\", \"openstack\") to [env.{env}] in weft.toml")
    )]
    NoProvider { env: String },
    /// The provider failed.
    #[error("{0}")]
    #[diagnostic(code(weft::cloud::provider))]
    Provider(#[from] CloudError),
    /// The target names no machine.
    #[error("no machine `{target}` in env `{env}`")]
    #[diagnostic(code(weft::cloud::unknown_machine))]
    UnknownMachine {
        target: String,
        env: String,
        #[help]
        help: Option<String>,
    },
    /// A key file could not be read.
    #[error("cannot read the public key `{path}`: {message}")]
    #[diagnostic(code(weft::cloud::key))]
    Key { path: String, message: String },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    #[diagnostic(code(weft::run::runtime))]
    Runtime(String),
}

/// An env's provider and where its resources live.
pub struct CloudEnv {
    /// The provider.
    pub provider: Box<dyn Provider>,
    /// Namespace and env.
    pub scope: Scope,
    /// The project's name (`[project] name`, else its folder's).
    pub project: String,
    /// The project's folder.
    project_dir: std::path::PathBuf,
    /// The env's config section.
    pub section: EnvSection,
    runtime: tokio::runtime::Runtime,
}

/// The item at a CGCloud-style ordinal: 0 is the first, -1 the last.
pub fn by_ordinal<T>(items: &[T], ordinal: i64) -> Option<&T> {
    let index = if ordinal < 0 {
        items.len() as i64 + ordinal
    } else {
        ordinal
    };
    usize::try_from(index).ok().and_then(|i| items.get(i))
}

/// The namespace of an env's machines: its `namespace`, else the project's own
/// (`/<project>/`, see `config::project_namespace`).
pub fn namespace(project: &Project, section: &EnvSection) -> String {
    section
        .namespace
        .clone()
        .unwrap_or_else(|| crate::config::project_namespace(&project.name()))
}

/// The namespace machines lived in before namespaces held the project.
pub const OLD_DEFAULT_NAMESPACE: &str = "/";

impl CloudEnv {
    /// The provider of env `name`, or `None` when the env has none.
    pub fn of(project: &Project, name: &str) -> Result<Option<Self>, CloudEnvError> {
        let section = project.config.as_ref().and_then(|c| c.file.env.get(name));

        let Some(section) = section.filter(|s| s.provider.is_some()) else {
            return Ok(None);
        };
        let provider: Box<dyn Provider> = match section.provider {
            #[cfg(feature = "ec2")]
            Some(ProviderKind::Ec2) => {
                Box::new(super::ec2::Ec2Provider::new(super::ec2::Ec2Settings {
                    region: section.region.clone(),
                    profile: section.profile.clone(),
                    ssh_cidr: section.ssh_cidr.clone(),
                })?)
            }
            #[cfg(not(feature = "ec2"))]
            Some(ProviderKind::Ec2) => {
                return Err(super::CloudError::Unsupported(
                    "this weft was built without the `ec2` feature (cargo build \
                     --no-default-features); build it with the default features for ec2 envs"
                        .into(),
                )
                .into())
            }
            #[cfg(feature = "openstack")]
            Some(ProviderKind::Openstack) => Box::new(super::openstack::OpenstackProvider::new(
                super::openstack::OpenstackSettings {
                    cloud: section.cloud.clone(),
                    region: section.region.clone(),
                    network: section.network.clone(),
                    ssh_cidr: section.ssh_cidr.clone(),
                    floating_network: section.floating_network.clone(),
                    api_timeout: section.api_timeout.map(std::time::Duration::from_secs),
                },
            )?),
            #[cfg(not(feature = "openstack"))]
            Some(ProviderKind::Openstack) => {
                return Err(super::CloudError::Unsupported(
                    "this weft was built without the `openstack` feature; build it with the \
                     default features for openstack envs"
                        .into(),
                )
                .into())
            }
            _ => Box::new(LocalProvider::new()?),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CloudEnvError::Runtime(e.to_string()))?;
        Ok(Some(CloudEnv {
            provider,
            scope: Scope {
                namespace: namespace(project, section),
                env: name.to_string(),
            },
            project: project.name(),
            project_dir: project.root.clone(),
            section: section.clone(),
            runtime,
        }))
    }

    /// The provider of env `name`, or an error when it has none.
    pub fn open(project: &Project, name: &str) -> Result<Self, CloudEnvError> {
        Self::of(project, name)?.ok_or_else(|| CloudEnvError::NoProvider { env: name.into() })
    }

    /// Waits for one provider call.
    pub fn block_on<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, CloudError>>,
    ) -> Result<T, CloudEnvError> {
        Ok(self.runtime.block_on(call)?)
    }

    /// The env's machines.
    pub fn list(&self) -> Result<Vec<Machine>, CloudEnvError> {
        self.block_on(self.provider.list(&self.scope))
    }

    /// Whose machines these are, for questions and listings: `project `shop`, namespace
    /// `/shop/`, env `dev``.
    pub fn describe(&self) -> String {
        format!(
            "project `{}`, namespace `{}`, env `{}`",
            self.project, self.scope.namespace, self.scope.env
        )
    }

    /// The tags that say which project a machine belongs to.
    fn project_tags(&self) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        tags.insert(super::tags::PROJECT.to_string(), self.project.clone());
        // The project's folder means something only for machines on this host.
        if !matches!(
            self.section.provider,
            Some(ProviderKind::Ec2 | ProviderKind::Openstack)
        ) {
            tags.insert(
                super::tags::PROJECT_DIR.to_string(),
                self.project_dir.display().to_string(),
            );
        }
        tags
    }

    /// The machines of this env's name left in namespace `/` by a weft that did not put the
    /// project in the namespace; none when the env names its namespace (then `/` may be
    /// another project's choice) or lives in `/`.
    pub fn old_default_machines(&self) -> Result<Vec<Machine>, CloudEnvError> {
        if self.section.namespace.is_some() || self.scope.namespace == OLD_DEFAULT_NAMESPACE {
            return Ok(Vec::new());
        }
        let old = Scope {
            namespace: OLD_DEFAULT_NAMESPACE.into(),
            env: self.scope.env.clone(),
        };
        self.block_on(self.provider.list(&old))
    }

    /// A note when `old_default_machines` finds any: what they are and the command that
    /// takes them over.
    pub fn old_default_note(&self) -> Result<Option<String>, CloudEnvError> {
        let old = self.old_default_machines()?;
        if old.is_empty() {
            return Ok(None);
        }
        let names: Vec<&str> = old.iter().map(|m| m.name.as_str()).collect();
        Ok(Some(format!(
            "note: namespace `/` holds machines of an env `{env}` ({names}), made before each \
             project had its own namespace; if they are this project's, `weft cloud adopt -e \
             {env} --from /` moves them into `{ns}`",
            env = self.scope.env,
            names = names.join(", "),
            ns = self.scope.namespace
        )))
    }

    /// Moves the machines of this env's name in namespace `from` into the env's namespace,
    /// tagged as the project's; returns them.
    pub fn adopt(&self, from: &str) -> Result<Vec<Machine>, CloudEnvError> {
        let from = Scope {
            namespace: from.to_string(),
            env: self.scope.env.clone(),
        };
        self.block_on(
            self.provider
                .adopt(&from, &self.scope, &self.project_tags()),
        )
    }

    /// The env's virtual IP and VRRP router id (`wanted`, or one the provider picks).
    pub fn virtual_ip(
        &self,
        wanted: Option<std::net::Ipv4Addr>,
    ) -> Result<super::VirtualIp, CloudEnvError> {
        self.block_on(self.provider.virtual_ip(&self.scope, wanted))
    }

    /// What `virtual_ip` would return, reserving nothing (for `--check`).
    pub fn peek_virtual_ip(
        &self,
        wanted: Option<std::net::Ipv4Addr>,
    ) -> Result<super::VirtualIp, CloudEnvError> {
        self.block_on(self.provider.peek_virtual_ip(&self.scope, wanted))
    }

    /// The machine named `target` or with that id, or the `ordinal`th machine of the role
    /// `target` (0 when not given).
    pub fn find(
        &self,
        machines: &[Machine],
        target: &str,
        ordinal: Option<i64>,
    ) -> Result<Machine, CloudEnvError> {
        let exact = machines.iter().find(|m| m.name == target || m.id == target);
        let by_role: Vec<&Machine> = machines.iter().filter(|m| m.role == target).collect();
        let found = match exact {
            Some(machine) => Some(machine.clone()),
            None => by_ordinal(&by_role, ordinal.unwrap_or(0)).map(|m| (*m).clone()),
        };
        found.ok_or_else(|| {
            let names: Vec<&str> = machines.iter().map(|m| m.name.as_str()).collect();
            CloudEnvError::UnknownMachine {
                target: target.to_string(),
                env: self.scope.env.clone(),
                help: crate::suggest::help("machines", target, &names),
            }
        })
    }

    /// Terminates the machine named (or with id) `name`; returns it.
    pub fn terminate(&self, name: &str) -> Result<Machine, CloudEnvError> {
        let machines = self.list()?;
        let machine = self.find(&machines, name, None)?;
        self.block_on(self.provider.terminate(&self.scope, &machine.id))?;
        Ok(machine)
    }

    /// Makes `count` new machines of `role` after the highest ordinal in use, telling
    /// `on_made` about each as soon as it answers.
    pub fn create(
        &self,
        role: &str,
        count: u32,
        image: Option<String>,
        keys: Vec<String>,
        on_made: &mut dyn FnMut(&Machine),
    ) -> Result<Vec<Machine>, CloudEnvError> {
        let existing = self.list()?;
        let next = existing
            .iter()
            .filter(|m| m.role == role)
            .map(|m| m.ordinal + 1)
            .max()
            .unwrap_or(0);
        let entry = self.section.machines.get(role);
        let mut all_keys = keys;
        if let Some(entry) = entry {
            all_keys.extend(read_keys(&entry.keys)?);
        }
        all_keys.extend(read_keys(&self.section.keys)?);
        let mut tags = BTreeMap::new();
        if let Some(entry) = entry {
            tags.extend(entry.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        // After the role's own tags: a role cannot claim another project's name.
        tags.extend(self.project_tags());
        if let Some(entry) = entry {
            if let Some(user) = &entry.user {
                tags.insert("weft:ssh-user".into(), user.clone());
            }
        }
        let mut made = Vec::new();
        for ordinal in next..next + count {
            let spec = MachineSpec {
                role: role.to_string(),
                ordinal,
                image: image
                    .clone()
                    .or_else(|| entry.and_then(|e| e.image.clone())),
                size: entry.and_then(|e| e.size.clone()),
                keys: all_keys.clone(),
                user_data: entry.and_then(|e| e.user_data.clone()),
                packages: entry.map(|e| e.packages.clone()).unwrap_or_default(),
                disk: entry.and_then(|e| e.disk_bytes()),
                tags: tags.clone(),
            };
            let machine = self.block_on(self.provider.create(&self.scope, &spec))?;
            on_made(&machine);
            made.push(machine);
        }
        Ok(made)
    }
}

/// Public keys from key files (`~` allowed) or keys written out; anything that is not one
/// public key (a private key file given by mistake) is refused before it goes anywhere.
pub fn read_keys(files: &[String]) -> Result<Vec<String>, CloudEnvError> {
    files
        .iter()
        .map(|f| {
            let (text, path) = if looks_public(f) {
                (f.clone(), "the key written out".to_string())
            } else {
                let path =
                    crate::config::expand_home(std::path::Path::new("."), std::path::Path::new(f));
                let text = std::fs::read_to_string(&path).map_err(|e| CloudEnvError::Key {
                    path: f.clone(),
                    message: e.to_string(),
                })?;
                (text.trim().to_string(), f.clone())
            };
            if text.contains("PRIVATE KEY") || !looks_public(&text) || text.lines().count() != 1 {
                return Err(CloudEnvError::Key {
                    path,
                    message: "this is not one public key (`ssh-ed25519 AAAA... comment`): a private key is never sent to a machine; give the `.pub` file".into(),
                });
            }
            Ok(text)
        })
        .collect()
}

/// Whether `text` starts like an OpenSSH public key line.
fn looks_public(text: &str) -> bool {
    let kind = text.split_whitespace().next().unwrap_or_default();
    ["ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-"]
        .iter()
        .any(|p| kind.starts_with(p))
        && text.split_whitespace().nth(1).is_some()
}

/// Every machine one provider made, whatever its project: `weft cloud list --all` and the
/// removal of a deleted project's leftovers.
pub struct AllMachines {
    provider: Box<dyn Provider>,
    runtime: tokio::runtime::Runtime,
}

/// A machine's namespace and env, from its tags.
pub fn scope_of(machine: &Machine) -> Scope {
    let tag = |key: &str| machine.tags.get(key).cloned().unwrap_or_default();
    Scope {
        namespace: tag(super::tags::NAMESPACE),
        env: tag(super::tags::ENV),
    }
}

impl AllMachines {
    /// The `local` provider's machines on this host (this data folder).
    pub fn local() -> Result<Self, CloudEnvError> {
        let provider: Box<dyn Provider> = Box::new(LocalProvider::new()?);
        Self::over(provider)
    }

    /// The machines of env `env`'s provider (its region and account, on ec2).
    pub fn of_env(env: CloudEnv) -> Result<Self, CloudEnvError> {
        Self::over(env.provider)
    }

    fn over(provider: Box<dyn Provider>) -> Result<Self, CloudEnvError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CloudEnvError::Runtime(e.to_string()))?;
        Ok(AllMachines { provider, runtime })
    }

    /// Every machine, by namespace, env, role and ordinal.
    pub fn list(&self) -> Result<Vec<Machine>, CloudEnvError> {
        Ok(self.runtime.block_on(self.provider.list_all())?)
    }

    /// Terminates `machine` in its own namespace and env.
    pub fn terminate(&self, machine: &Machine) -> Result<(), CloudEnvError> {
        let scope = scope_of(machine);
        Ok(self
            .runtime
            .block_on(self.provider.terminate(&scope, &machine.id))?)
    }

    /// Deletes what env `scope` owns besides machines (keys, the env's network number).
    pub fn destroy_resources(&self, scope: &Scope) -> Result<Vec<String>, CloudEnvError> {
        Ok(self
            .runtime
            .block_on(self.provider.destroy_resources(scope))?)
    }
}
