//! The resolved inventory of an env: its hosts, their roles and their merged variables;
//! selection by role and host (`select.rs`) and the machines of provider envs (`discover.rs`).

mod discover;
mod select;

pub use discover::env_inventory;
pub use select::{HostFilter, Selection};

use indexmap::IndexMap;
use miette::Diagnostic;
use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::config::{ConnectorKind, EnvSection};
use crate::project::Project;
use crate::suggest;

pub use crate::config::LOCAL_ENV;

/// Variables as scripts and templates see them.
pub type Vars = Map<String, Value>;

/// Selection errors: names on the command line that the inventory does not know.
#[derive(Debug, Error, Diagnostic)]
pub enum SelectError {
    /// `-e` names no env.
    #[error("unknown env `{name}`")]
    #[diagnostic(code(weft::select::unknown_env))]
    UnknownEnv {
        name: String,
        #[help]
        help: Option<String>,
    },
    /// `-r` names no role of the env.
    #[error("env `{env}` has no role `{name}`")]
    #[diagnostic(code(weft::select::unknown_role))]
    UnknownRole {
        env: String,
        name: String,
        #[help]
        help: Option<String>,
    },
    /// `-H` names no host of the env.
    #[error("env `{env}` has no host `{name}`")]
    #[diagnostic(code(weft::select::unknown_host))]
    UnknownHost {
        env: String,
        name: String,
        #[help]
        help: Option<String>,
    },
    /// Addresses were mixed with the hosts of a local env.
    #[error("`-H {address}` is an SSH address, but env `{env}` uses the local connector")]
    #[diagnostic(
        code(weft::connect::mixed),
        help("give only addresses, or pick an env with SSH hosts")
    )]
    Mixed { address: String, env: String },
    /// The selection is empty.
    #[error("no hosts selected in env `{env}`")]
    #[diagnostic(code(weft::select::empty))]
    Empty {
        env: String,
        /// `weft run env_up` when a provider makes the env's machines, else `weft hosts`.
        #[help]
        help: String,
    },
}

/// One host with everything scripts know about it.
#[derive(Debug, Clone, Serialize)]
pub struct HostSpec {
    /// Its name in the env.
    pub name: String,
    /// How to reach it (`user@addr:port`, or `localhost` for the local connector).
    pub address: String,
    /// The roles it plays, in config order.
    pub roles: Vec<String>,
    /// Variables merged project → env → role → host.
    pub vars: Vars,
}

/// An env with its hosts resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// The env's name.
    pub env: String,
    /// How its hosts are reached.
    #[serde(serialize_with = "connector_name")]
    pub connector: ConnectorKind,
    /// Project and env variables, without role or host layers.
    pub vars: Vars,
    /// Its hosts, in config order.
    pub hosts: Vec<HostSpec>,
    /// Role name → host names.
    pub roles: IndexMap<String, Vec<String>>,
    /// Whether a provider makes the env's machines (`env_up`), rather than weft.toml listing them.
    #[serde(skip)]
    pub provider: bool,
}

fn connector_name<S: serde::Serializer>(kind: &ConnectorKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

impl Inventory {
    /// The env to use: `-e`, else the user's default, else the project's, else `local`.
    pub fn env_name(project: &Project, wanted: Option<&str>) -> String {
        wanted
            .map(String::from)
            .or_else(|| project.user.default_env.clone())
            .or_else(|| {
                let config = project.config.as_ref()?;
                Some(config.file.project.default_env.as_ref()?.get_ref().clone())
            })
            .unwrap_or_else(|| LOCAL_ENV.to_string())
    }

    /// Resolves the env `name` of `project`.
    pub fn resolve(project: &Project, name: &str) -> Result<Self, SelectError> {
        let config = project.config.as_ref().map(|c| &c.file);
        let mut vars = Vars::new();
        if let Some(config) = config {
            if !config.apps.is_empty() {
                let apps: toml::Table = config
                    .apps
                    .iter()
                    .map(|(name, app)| (name.clone(), toml::Value::Table(app.clone())))
                    .collect();
                vars.insert("apps".into(), Value::Object(to_vars(&apps)));
            }
            merge(&mut vars, to_vars(&config.vars));
        }
        vars.insert("project".into(), Value::String(project.name()));
        vars.insert("env".into(), Value::String(name.to_string()));
        let section = config.and_then(|c| c.env.get(name));
        let section = match section {
            Some(section) => section,
            None if name == LOCAL_ENV => {
                return Ok(Self::local(name, vars, &EnvSection::default()));
            }
            None => {
                let mut known = config
                    .map(|c| c.env.keys().map(String::as_str).collect::<Vec<_>>())
                    .unwrap_or_default();
                if !known.contains(&LOCAL_ENV) {
                    known.push(LOCAL_ENV);
                }
                return Err(SelectError::UnknownEnv {
                    name: name.into(),
                    help: suggest::help("envs", name, &known),
                });
            }
        };
        merge(&mut vars, to_vars(&section.vars));
        let connector = section.connector.unwrap_or(
            if section.hosts.is_empty() && section.provider.is_none() {
                ConnectorKind::Local
            } else {
                ConnectorKind::Ssh
            },
        );
        if connector == ConnectorKind::Local {
            return Ok(Self::local(name, vars, section));
        }
        let roles: IndexMap<String, Vec<String>> = section
            .roles
            .iter()
            .map(|(role, entry)| {
                let hosts = entry.get_ref().hosts().iter().cloned();
                (role.clone(), hosts.collect())
            })
            .collect();
        let hosts = section
            .hosts
            .iter()
            .map(|(host_name, entry)| {
                let entry = entry.get_ref();
                let mut host_vars = vars.clone();
                let mut host_roles = Vec::new();
                for (role, members) in &roles {
                    if members.contains(host_name) {
                        host_roles.push(role.clone());
                        if let Some(role_vars) = section.roles[role].get_ref().vars() {
                            merge(&mut host_vars, to_vars(role_vars));
                        }
                    }
                }
                if let Some(own) = entry.vars() {
                    merge(&mut host_vars, to_vars(own));
                }
                HostSpec {
                    name: host_name.clone(),
                    address: entry.address().to_string(),
                    roles: host_roles,
                    vars: host_vars,
                }
            })
            .collect();
        Ok(Inventory {
            env: name.to_string(),
            connector,
            vars,
            hosts,
            roles,
            provider: section.provider.is_some(),
        })
    }

    /// A local env: one host, this machine, in every role the env lists.
    fn local(name: &str, vars: Vars, section: &EnvSection) -> Self {
        let roles: IndexMap<String, Vec<String>> = section
            .roles
            .keys()
            .map(|role| (role.clone(), vec![LOCAL_ENV.to_string()]))
            .collect();
        let mut host_vars = vars.clone();
        for entry in section.roles.values() {
            if let Some(role_vars) = entry.get_ref().vars() {
                merge(&mut host_vars, to_vars(role_vars));
            }
        }
        Inventory {
            env: name.to_string(),
            connector: ConnectorKind::Local,
            vars,
            hosts: vec![HostSpec {
                name: LOCAL_ENV.to_string(),
                address: "localhost".into(),
                roles: roles.keys().cloned().collect(),
                vars: host_vars,
            }],
            roles,
            provider: false,
        }
    }

    /// Adds machines a provider reported as hosts: named `<role>-<ordinal>`, in their role,
    /// with the role's machine vars over the env's.
    pub fn add_machines(&mut self, machines: &[crate::cloud::Machine], section: &EnvSection) {
        for machine in machines {
            let Some(address) = &machine.address else {
                continue;
            };
            let mut vars = self.vars.clone();
            if let Some(entry) = section.machines.get(&machine.role) {
                merge(&mut vars, to_vars(&entry.vars));
            }
            self.hosts.push(HostSpec {
                name: machine.name.clone(),
                address: address.clone(),
                roles: vec![machine.role.clone()],
                vars,
            });
            self.roles
                .entry(machine.role.clone())
                .or_default()
                .push(machine.name.clone());
        }
    }

    /// The hosts in any of `roles` or named in `hosts`; every host when both are empty.
    pub fn select(&self, roles: &[String], hosts: &[String]) -> Result<Vec<HostSpec>, SelectError> {
        // A provider env with no machine running has no roles or hosts yet either: the fix is
        // to make them, whichever role or host was asked for.
        if self.provider && self.hosts.is_empty() {
            return Err(self.empty());
        }
        for role in roles {
            if !self.roles.contains_key(role) {
                let known: Vec<&str> = self.roles.keys().map(String::as_str).collect();
                return Err(SelectError::UnknownRole {
                    env: self.env.clone(),
                    name: role.clone(),
                    help: suggest::help("roles", role, &known),
                });
            }
        }
        for host in hosts {
            if !self.hosts.iter().any(|h| &h.name == host) {
                let known: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
                return Err(SelectError::UnknownHost {
                    env: self.env.clone(),
                    name: host.clone(),
                    help: suggest::help("hosts", host, &known),
                });
            }
        }
        let everything = roles.is_empty() && hosts.is_empty();
        let selected: Vec<HostSpec> = self
            .hosts
            .iter()
            .filter(|h| {
                everything || hosts.contains(&h.name) || h.roles.iter().any(|r| roles.contains(r))
            })
            .cloned()
            .collect();
        if selected.is_empty() {
            return Err(self.empty());
        }
        Ok(selected)
    }

    /// The error of an empty selection, with the command that fills it.
    fn empty(&self) -> SelectError {
        let env = &self.env;
        let help = if self.provider {
            format!(
                "the env's provider makes its machines: `weft run env_up -e {env}` makes and \
                 deploys them; `weft cloud list -e {env}` shows those there are"
            )
        } else {
            format!("list the env's hosts with `weft hosts -e {env}`")
        };
        SelectError::Empty {
            env: env.clone(),
            help,
        }
    }
}

/// The variables `--set key.path=value` pairs make: the value is TOML when it parses as a
/// value (`3`, `true`, `[1, 2]`), else the string as given.
pub fn assignments(pairs: &[(String, String)]) -> Vars {
    let mut vars = Vars::new();
    for (key, text) in pairs {
        let value = toml::from_str::<toml::Table>(&format!("v = {text}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or_else(|| Value::String(text.clone()));
        let mut nested = value;
        for name in key.rsplit('.') {
            let mut map = Vars::new();
            map.insert(name.to_string(), nested);
            nested = Value::Object(map);
        }
        if let Value::Object(map) = nested {
            merge(&mut vars, map);
        }
    }
    vars
}

/// Converts a TOML table to variables.
pub fn to_vars(table: &toml::Table) -> Vars {
    match serde_json::to_value(table) {
        Ok(Value::Object(map)) => map,
        _ => Vars::new(),
    }
}

/// Merges `over` into `base`: tables merge key by key, anything else replaces.
pub fn merge(base: &mut Vars, over: Vars) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(inner)), Value::Object(over_inner)) => merge(inner, over_inner),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod assignment_tests {
    use super::*;

    #[test]
    fn set_pairs_nest_by_dots_and_read_toml_values() {
        let vars = assignments(&[
            ("apps.hello.ref".into(), "v2".into()),
            ("apps.hello.workers".into(), "4".into()),
            ("debug".into(), "true".into()),
        ]);
        assert_eq!(vars["apps"]["hello"]["ref"], "v2");
        assert_eq!(vars["apps"]["hello"]["workers"], 4);
        assert_eq!(vars["debug"], true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProjectConfig, UserConfig};

    fn project(text: &str) -> Project {
        Project {
            root: "/demo".into(),
            config: Some(ProjectConfig::parse("weft.toml".into(), text.into()).expect("config")),
            user: UserConfig::default(),
        }
    }

    const FLEET: &str = r#"
        [project]
        name = "demo"
        [vars]
        greeting = "hi"
        nested = { a = 1, b = 2 }
        [env.fleet]
        hosts = { app-0 = "root@127.0.0.1:2201", app-1 = { address = "root@127.0.0.1:2202", vars = { greeting = "yo" } } }
        roles = { web = { hosts = ["app-0", "app-1"], vars = { port = 80, nested = { b = 3 } } }, db = ["app-1"] }
        vars = { greeting = "hello" }
    "#;

    #[test]
    fn vars_merge_project_env_role_host() {
        let inv = Inventory::resolve(&project(FLEET), "fleet").expect("env");
        let app0 = &inv.hosts[0];
        let app1 = &inv.hosts[1];
        assert_eq!(app0.vars["greeting"], "hello");
        assert_eq!(app1.vars["greeting"], "yo");
        assert_eq!(app0.vars["port"], 80);
        assert_eq!(app0.vars["nested"], serde_json::json!({"a": 1, "b": 3}));
        assert_eq!(app1.roles, ["web", "db"]);
        assert_eq!(app0.vars["project"], "demo");
    }

    #[test]
    fn selection_by_role_and_host_and_typos() {
        let inv = Inventory::resolve(&project(FLEET), "fleet").expect("env");
        let names = |v: Vec<HostSpec>| v.into_iter().map(|h| h.name).collect::<Vec<_>>();
        assert_eq!(
            names(inv.select(&["db".into()], &[]).expect("db")),
            ["app-1"]
        );
        assert_eq!(
            names(inv.select(&[], &["app-0".into()]).expect("h")),
            ["app-0"]
        );
        let err = inv.select(&["wbe".into()], &[]).expect_err("typo");
        assert!(
            matches!(err, SelectError::UnknownRole { help: Some(h), .. } if h.contains("`web`"))
        );
        let err = Inventory::resolve(&project(FLEET), "flet").expect_err("typo");
        assert!(
            matches!(err, SelectError::UnknownEnv { help: Some(h), .. } if h.contains("`fleet`"))
        );
    }

    #[test]
    fn local_env_exists_without_config() {
        let inv =
            Inventory::resolve(&project("[project]\nname = \"x\"\n"), LOCAL_ENV).expect("local");
        assert_eq!(inv.connector, ConnectorKind::Local);
        assert_eq!(inv.hosts.len(), 1);
    }
}
