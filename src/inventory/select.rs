//! Choosing the hosts of a run: `-r` and `-H` over an env, where `-H` values that are no host
//! of the env but look like addresses become ad hoc SSH hosts, so weft works without weft.toml.

use super::{HostSpec, Inventory, SelectError, Vars};
use crate::config::ConnectorKind;
use crate::project::Project;
use crate::transport::ssh::Target;

/// Which hosts a run is about: an env (else the default one), roles and host names.
#[derive(Debug, Clone, Default)]
pub struct HostFilter {
    /// The env; the default env when `None`.
    pub env: Option<String>,
    /// Only hosts in these roles.
    pub roles: Vec<String>,
    /// Only these hosts (names in the env, or addresses).
    pub hosts: Vec<String>,
}

impl HostFilter {
    /// Whether it narrows the env down (by role or host).
    fn narrows(&self) -> bool {
        !self.roles.is_empty() || !self.hosts.is_empty()
    }
}

/// The hosts a command runs on and the env they belong to.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The env (or an ad hoc env of addresses).
    pub inventory: Inventory,
    /// The selected hosts.
    pub hosts: Vec<HostSpec>,
}

impl Selection {
    /// The selected hosts of the env `filter` names, with its provider machines.
    pub fn resolve(project: &Project, filter: &HostFilter) -> miette::Result<Self> {
        let inventory = super::env_inventory(project, filter.env.as_deref())?;
        Ok(Self::within(inventory, filter)?)
    }

    /// Like `resolve`, but an env with no hosts yet is fine (controller goals make machines).
    pub fn for_controller(project: &Project, filter: &HostFilter) -> miette::Result<Self> {
        let inventory = super::env_inventory(project, filter.env.as_deref())?;
        if filter.narrows() {
            return Ok(Self::within(inventory, filter)?);
        }
        let hosts = inventory.hosts.clone();
        Ok(Selection { inventory, hosts })
    }

    /// Applies `-r/-H` of `filter` (its env aside) to an inventory already resolved.
    pub fn within(mut inventory: Inventory, filter: &HostFilter) -> Result<Self, SelectError> {
        let (named, addresses): (Vec<String>, Vec<String>) =
            filter.hosts.iter().cloned().partition(|h| {
                inventory.hosts.iter().any(|known| &known.name == h)
                    || !Target::looks_like_address(h)
            });
        if addresses.is_empty() {
            let hosts = inventory.select(&filter.roles, &named)?;
            return Ok(Selection { inventory, hosts });
        }
        if inventory.connector == ConnectorKind::Local
            && (!named.is_empty() || !filter.roles.is_empty())
        {
            return Err(SelectError::Mixed {
                address: addresses[0].clone(),
                env: inventory.env.clone(),
            });
        }
        let mut hosts = if named.is_empty() && filter.roles.is_empty() {
            Vec::new()
        } else {
            inventory.select(&filter.roles, &named)?
        };
        for address in addresses {
            hosts.push(HostSpec {
                name: address.clone(),
                address,
                roles: Vec::new(),
                vars: inventory.vars.clone(),
            });
        }
        inventory.connector = ConnectorKind::Ssh;
        Ok(Selection { inventory, hosts })
    }

    /// Puts `vars` over every layer: the env's and each host's.
    pub fn set_vars(&mut self, vars: &Vars) {
        if vars.is_empty() {
            return;
        }
        let hosts = self.hosts.iter_mut().chain(self.inventory.hosts.iter_mut());
        for vars_of in hosts.map(|h| &mut h.vars).chain([&mut self.inventory.vars]) {
            super::merge(vars_of, vars.clone());
        }
    }
}
