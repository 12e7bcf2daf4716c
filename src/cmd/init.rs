//! `weft init`: a new project from a stdlib skeleton.

use std::path::PathBuf;

use miette::Result;

use super::Context;
use crate::error::{CommandError, EXIT_OK};
use crate::layers;
use crate::project::PROJECT_FILE;

/// The placeholder skeleton files use for the project's name.
const NAME_PLACEHOLDER: &str = "__PROJECT__";

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
    let config = dir.join(PROJECT_FILE);
    if config.exists() {
        return Err(CommandError::Exists {
            path: config.display().to_string(),
            help: "this folder is already a weft project".into(),
        }
        .into());
    }
    let name = name
        .or_else(|| {
            let canonical = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            Some(canonical.file_name()?.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "demo".into());
    let mut next = "weft list".to_string();
    for (rel, text) in files {
        // `NEXT` is the skeleton's first command to try, shown, not written.
        if rel == "NEXT" {
            next = text.trim().to_string();
            continue;
        }
        let path = dir.join(&rel);
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
        std::fs::write(&path, text.replace(NAME_PLACEHOLDER, &name)).map_err(|e| io("write", e))?;
        outln!(
            "created {}",
            path.strip_prefix(&ctx.cwd).unwrap_or(&path).display()
        );
    }
    outln!(
        "\nnext: cd {} && {next}",
        dir.strip_prefix(&ctx.cwd).unwrap_or(&dir).display()
    );
    Ok(EXIT_OK)
}
