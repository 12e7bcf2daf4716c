//! The JSON schema of `weft.toml` (`weft config schema`): derived from the types `weft.toml`
//! is read into, with the settings of `[apps.NAME]` that the app service declares.

use serde_json::{json, Map, Value};

use super::ConfigFile;

/// One setting an app service declares (`app_settings()` in `lib/app.rhai`).
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Its key.
    pub name: String,
    /// What it is for.
    pub doc: String,
    /// Its default, when it has one.
    pub default: Option<Value>,
}

/// The settings of `[apps.NAME]` and of each of its `repos`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppSettings {
    /// Of `[apps.NAME]`.
    pub app: Vec<Setting>,
    /// Of each table in its `repos`.
    pub repo: Vec<Setting>,
}

/// A table that takes exactly `settings`.
fn table_of(settings: &[Setting]) -> Value {
    let properties: Map<String, Value> = settings
        .iter()
        .map(|s| {
            let mut property = json!({ "description": s.doc });
            if let Some(default) = &s.default {
                property["default"] = default.clone();
            }
            (s.name.clone(), property)
        })
        .collect();
    json!({ "type": "object", "properties": properties, "additionalProperties": false })
}

/// The JSON schema of `weft.toml`; `[apps.NAME]` tables take the settings of `apps` when
/// given, else any keys (weft checks them against the app service when it loads a project).
/// `vars` (the vars the project's plugins read) are described under `[vars]`, which still
/// takes any other key.
pub fn schema(apps: Option<&AppSettings>, vars: &[Setting]) -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(ConfigFile)).unwrap_or_default();
    if let Some(apps) = apps {
        let mut app = table_of(&apps.app);
        if let Some(repos) = app["properties"].get_mut("repos") {
            repos["type"] = json!("array");
            repos["items"] = table_of(&apps.repo);
        }
        schema["properties"]["apps"]["additionalProperties"] = app;
    }
    if !vars.is_empty() {
        let mut described = table_of(vars);
        described["additionalProperties"] = json!(true);
        for key in ["type", "properties", "additionalProperties"] {
            schema["properties"]["vars"][key] = described[key].take();
        }
    }
    schema
}
