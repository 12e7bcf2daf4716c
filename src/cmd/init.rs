//! `weft init`: a new project from a stdlib skeleton.

use std::path::PathBuf;

use miette::Result;

use super::Context;
use crate::error::{CommandError, EXIT_OK};
use crate::layers;
use crate::plugin::manifest::valid_name;
use crate::plugin::MANIFEST;
use crate::project::PROJECT_FILE;

/// The placeholder skeleton files use for the project's name.
const NAME_PLACEHOLDER: &str = "__PROJECT__";
/// The name as a Rhai identifier (`-` made `_`), in file paths and goal names.
const IDENT_PLACEHOLDER: &str = "__IDENT__";
/// This weft's `MAJOR.MINOR`, for a new plugin's weft range.
const WEFT_PLACEHOLDER: &str = "__WEFT__";
/// The skeleton that writes a plugin rather than a project.
const PLUGIN_SKELETON: &str = "plugin";

/// Writes the skeleton into `dir`, refusing to overwrite an existing project.
pub fn init(
    ctx: &Context,
    dir: Option<PathBuf>,
    skeleton: &str,
    name: Option<String>,
) -> Result<i32> {
    let Some(files) = layers::skeleton(skeleton) else {
        let names = layers::skeleton_names();
        let known: Vec<&str> = names.iter().map(String::as_str).collect();
        return Err(CommandError::Unknown {
            kind: "skeleton",
            name: skeleton.into(),
            help: crate::suggest::help("skeletons", skeleton, &known),
        }
        .into());
    };
    let dir = ctx.cwd.join(dir.unwrap_or_default());
    let plugin = skeleton == PLUGIN_SKELETON;
    let config = dir.join(if plugin { MANIFEST } else { PROJECT_FILE });
    if config.exists() {
        return Err(CommandError::Exists {
            path: config.display().to_string(),
            help: format!(
                "this folder is already a weft {}",
                if plugin { "plugin" } else { "project" }
            ),
        }
        .into());
    }
    let name = name
        .or_else(|| {
            let canonical = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            Some(canonical.file_name()?.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "demo".into());
    // The name starts Rhai names (`<name>_selftest`), which cannot start with a digit.
    if plugin
        && !(valid_name(&name) && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_'))
    {
        return Err(CommandError::Unknown {
            kind: "plugin name",
            name,
            help: Some(
                "a plugin name is lowercase letters, digits, `-` and `_`, starting with a \
                 letter or `_`"
                    .into(),
            ),
        }
        .into());
    }
    // Rhai names cannot hold `-`; the weft version the plugin starts out working with.
    let ident = name.replace('-', "_");
    let weft = env!("CARGO_PKG_VERSION")
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    // In TOML the name is a whole string written by the toml crate, so any name (`a"b`) stays
    // one valid string; plugin names, the only ones also used inside strings, need no escapes.
    let quoted_placeholder = format!("\"{NAME_PLACEHOLDER}\"");
    let quoted_name = toml::Value::String(name.clone()).to_string();
    let fill = |text: &str| {
        text.replace(&quoted_placeholder, &quoted_name)
            .replace(NAME_PLACEHOLDER, &name)
            .replace(IDENT_PLACEHOLDER, &ident)
            .replace(WEFT_PLACEHOLDER, &weft)
    };
    let mut next = "weft list".to_string();
    for (rel, text) in files {
        // `NEXT` is the skeleton's first command to try, shown, not written; `ABOUT` is its
        // line in `weft init --help`.
        if rel == "NEXT" {
            next = text.trim().to_string();
            continue;
        }
        if rel == "ABOUT" {
            continue;
        }
        let path = dir.join(fill(&rel));
        let io = |action, source| CommandError::Io {
            action,
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("create", e))?;
        }
        if path.exists() {
            continue;
        }
        std::fs::write(&path, fill(text)).map_err(|e| io("write", e))?;
        outln!(
            "created {}",
            path.strip_prefix(&ctx.cwd).unwrap_or(&path).display()
        );
    }
    let shown = dir.strip_prefix(&ctx.cwd).unwrap_or(&dir);
    if plugin {
        // A plugin is used from a project, not from its own folder.
        let dir = crate::shell::quote(&dir.display().to_string());
        outln!("\nnext: in a project, {next} {dir}");
    } else if shown.as_os_str().is_empty() {
        // Written into the working directory: there is nowhere to `cd`.
        outln!("\nnext: {next}");
    } else {
        let shown = crate::shell::quote(&shown.display().to_string());
        outln!("\nnext: cd {shown} && {next}");
    }
    Ok(EXIT_OK)
}
