//! `weft config schema`: the JSON schema of `weft.toml`, for editors.

use std::io::Write;

use miette::Result;

use super::Context;
use crate::cli::ConfigCommand;
use crate::config::Setting;
use crate::error::EXIT_OK;
use crate::script::ScriptEngine;

/// Prints what the `weft config` subcommand asks for.
pub fn config(ctx: &Context, command: ConfigCommand) -> Result<i32> {
    match command {
        ConfigCommand::Schema => {
            // The settings of `[apps.NAME]` are the app service's: the stdlib's, or the
            // project's own `lib/app.rhai` when it has one.
            let (_, plugins, layers) = ctx.project_with_plugins()?;
            let apps = ScriptEngine::load(&layers, None)?.declared_app_settings()?;
            let vars: Vec<Setting> = crate::plugin::vars(&plugins)
                .into_iter()
                .map(|v| Setting {
                    doc: format!("plugin `{}`: {}", v.plugin, v.doc),
                    default: v.default.and_then(|d| serde_json::to_value(d).ok()),
                    name: v.name,
                })
                .collect();
            let schema = crate::config::schema(apps.as_ref(), &vars);
            // `{:#}` is serde_json's pretty printing; a reader that stops early (`| head`) is
            // not an error.
            let _ = writeln!(std::io::stdout().lock(), "{schema:#}");
        }
    }
    Ok(EXIT_OK)
}
