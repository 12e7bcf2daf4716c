//! `weft template render|list`: preview a template with an env's variables.

use miette::Result;
use serde_json::Value;

use super::Context;
use crate::cli::TemplateCommand;
use crate::config::secret::Secrets;
use crate::error::{CommandError, EXIT_OK};
use crate::inventory::{self, Inventory};
use crate::layers::Kind;
use crate::mask::Mask;
use crate::template::Templates;

/// Runs a `weft template` subcommand.
pub fn template(ctx: &Context, command: TemplateCommand) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    match command {
        TemplateCommand::List => {
            for resolved in layers.resolve_all(Kind::Template) {
                let name = resolved.winner.logical.trim_start_matches("templates/");
                outln!("{name:<48} {}", resolved.winner.layer);
            }
        }
        TemplateCommand::Render {
            name,
            env,
            host,
            vars,
        } => {
            let env = Inventory::env_name(&project, env.as_deref());
            let inventory = Inventory::resolve(&project, &env)?;
            // One host (the local env) needs no `-H` for `host.*` to render.
            let host = host.or_else(|| match inventory.hosts.as_slice() {
                [only] => Some(only.name.clone()),
                _ => None,
            });
            let mut all = match &host {
                Some(host) => {
                    let spec = inventory.select(&[], std::slice::from_ref(host))?.remove(0);
                    let mut all = spec.vars.clone();
                    all.insert(
                        "host".into(),
                        serde_json::json!({"name": spec.name, "address": spec.address, "roles": spec.roles}),
                    );
                    all
                }
                None => inventory.vars.clone(),
            };
            let mut overrides = inventory::Vars::new();
            for var in vars {
                let (key, value) = var
                    .split_once('=')
                    .ok_or_else(|| CommandError::BadVar(var.clone()))?;
                overrides.insert(key.to_string(), Value::String(value.to_string()));
            }
            inventory::merge(&mut all, overrides);
            // Rendered with the secrets' values, as a run would, and shown with them masked.
            let (secrets, mask) = (Secrets::default(), Mask::new());
            for value in all.values_mut() {
                for secret in secrets.resolve_in(
                    value,
                    &project.root,
                    &inventory.env,
                    project.config.as_ref(),
                )? {
                    mask.add(&secret);
                }
            }
            let text = Templates::new(layers).render(&name, &all)?;
            out!("{}", mask.apply(&text));
        }
    }
    Ok(EXIT_OK)
}
