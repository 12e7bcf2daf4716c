//! `weft hosts`: the resolved inventory of an env.

use miette::Result;

use super::Context;
use crate::cli::Select;
use crate::error::EXIT_OK;
use crate::inventory::env_inventory;

/// Prints the selected hosts with their roles and variables.
pub fn hosts(ctx: &Context, select: &Select, json: bool) -> Result<i32> {
    let (project, _) = ctx.project()?;
    let inventory = env_inventory(&project, select.env.as_deref())?;
    let hosts = inventory.select(&select.roles, &select.hosts)?;
    // A provider env's machines are the project's, in its namespace: say which.
    let namespace = project
        .config
        .as_ref()
        .and_then(|c| c.file.env.get(&inventory.env))
        .filter(|section| section.provider.is_some())
        .map(|section| crate::cloud::env::namespace(&project, section));
    if json {
        let doc = serde_json::json!({
            "env": inventory.env,
            "project": project.name(),
            "namespace": namespace,
            "connector": inventory.connector.as_str(),
            "hosts": hosts,
        });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(EXIT_OK);
    }
    match &namespace {
        Some(namespace) => outln!(
            "env `{}` of project `{}`, namespace `{namespace}` ({} connector)",
            inventory.env,
            project.name(),
            inventory.connector.as_str()
        ),
        None => outln!(
            "env `{}` ({} connector)",
            inventory.env,
            inventory.connector.as_str()
        ),
    }
    let width = hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let addr_width = hosts.iter().map(|h| h.address.len()).max().unwrap_or(0);
    for host in &hosts {
        let roles = if host.roles.is_empty() {
            "-".to_string()
        } else {
            host.roles.join(",")
        };
        outln!(
            "{:<width$}  {:<addr_width$}  {roles}",
            host.name,
            host.address
        );
        for (key, value) in &host.vars {
            outln!("{:<width$}    {key} = {value}", "");
        }
    }
    Ok(EXIT_OK)
}
