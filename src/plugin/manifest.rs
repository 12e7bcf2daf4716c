//! `plugin.toml`: what a plugin is, which weft it works with and the vars it reads.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// The name of the file that makes a folder a plugin.
pub const MANIFEST: &str = "plugin.toml";

/// The content of `plugin.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name: its goals show as `[plugin:NAME]`.
    pub name: Spanned<String>,
    /// The plugin's own version.
    pub version: String,
    /// One line about what it does.
    #[serde(default)]
    pub description: String,
    /// The weft versions it works with, e.g. `">=0.1, <0.3"`.
    pub weft: Spanned<String>,
    /// The vars its scripts read.
    #[serde(default)]
    pub vars: IndexMap<String, Spanned<VarSpec>>,
}

/// One var a plugin reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VarSpec {
    /// Its value when no layer of weft.toml sets it; without one, the project must set it.
    pub default: Option<toml::Value>,
    /// What it means.
    #[serde(default)]
    pub doc: String,
}

/// Whether `name` can be a plugin's name: it names a folder and a TOML key unquoted.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}
