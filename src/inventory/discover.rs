//! Dynamic inventory: the running machines of a provider env become hosts of the env.

use super::Inventory;
use crate::cloud::env::CloudEnv;
use crate::project::Project;

/// The env's inventory (`env`, else the default env), with a provider's running machines.
pub fn env_inventory(project: &Project, env: Option<&str>) -> miette::Result<Inventory> {
    let env = Inventory::env_name(project, env);
    let mut inventory = Inventory::resolve(project, &env)?;
    let Some(cloud) = CloudEnv::of(project, &env)? else {
        return Ok(inventory);
    };
    let running: Vec<_> = cloud
        .list()?
        .into_iter()
        .filter(|m| m.state == "running")
        .filter(|m| {
            // A machine with the env's tags that weft did not make gets no deploys or secrets.
            let admitted = cloud.provider.admits(&cloud.scope, m);
            if !admitted {
                crate::logging::note(&format!(
                    "warning: skipping {} ({}): it carries env `{}`'s tags but weft did not make it",
                    m.name, m.id, cloud.scope.env
                ));
            }
            admitted
        })
        .collect();
    inventory.add_machines(&running, &cloud.section);
    Ok(inventory)
}
