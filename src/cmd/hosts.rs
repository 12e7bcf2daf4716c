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
    if json {
        let doc = serde_json::json!({
            "env": inventory.env,
            "connector": inventory.connector.as_str(),
            "hosts": hosts,
        });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(EXIT_OK);
    }
    outln!(
        "env `{}` ({} connector)",
        inventory.env,
        inventory.connector.as_str()
    );
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
