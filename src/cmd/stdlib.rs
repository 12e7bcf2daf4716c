//! `weft stdlib list|show|eject`: see which layer wins each file and take a copy to edit.

use miette::Result;

use super::Context;
use crate::cli::StdlibCommand;
use crate::error::{CommandError, EXIT_OK};
use crate::layers::{Kind, Layer, Layers};

/// Runs a `weft stdlib` subcommand.
pub fn stdlib(ctx: &Context, command: StdlibCommand) -> Result<i32> {
    let (_, layers) = ctx.project()?;
    match command {
        StdlibCommand::List => {
            for kind in [Kind::Script, Kind::Template] {
                for resolved in layers.resolve_all(kind) {
                    let stdlib = std::iter::once(&resolved.winner)
                        .chain(&resolved.hidden)
                        .any(|f| matches!(f.layer, Layer::Stdlib | Layer::Plugin(..)));
                    if !stdlib {
                        continue;
                    }
                    let winner = &resolved.winner;
                    let note = match winner.layer {
                        Layer::Stdlib | Layer::Plugin(..) => String::new(),
                        _ => format!("  (overridden by {})", winner.display_name()),
                    };
                    outln!("{:<48} {}{note}", winner.logical, winner.layer);
                }
            }
        }
        StdlibCommand::Show { path } => {
            let file = find(&layers, &path)?;
            let source = file.read().map_err(|source| CommandError::Io {
                action: "read",
                path: file.display_name(),
                source,
            })?;
            eprintln!("# {} ({})", file.display_name(), file.layer);
            out!("{}", source.text());
        }
        StdlibCommand::Eject { path, force } => {
            let logical = path.trim_start_matches('/');
            let Some(file) = layers.find_shipped(Layers::kind_of(logical), logical) else {
                return Err(unknown(&layers, logical).into());
            };
            let target = layers.project_path(Layers::kind_of(logical), logical);
            if target.exists() && !force {
                return Err(CommandError::Exists {
                    path: target.display().to_string(),
                    help: "pass --force to replace it with the stdlib version".into(),
                }
                .into());
            }
            let io = |action, source| CommandError::Io {
                action,
                path: target.display().to_string(),
                source,
            };
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io("create", e))?;
            }
            let source = file.read().map_err(|e| io("read", e))?;
            std::fs::write(&target, source.text()).map_err(|e| io("write", e))?;
            outln!("ejected {logical} ({}) to {}", file.layer, target.display());
        }
    }
    Ok(EXIT_OK)
}

fn find(layers: &Layers, path: &str) -> Result<crate::layers::LayerFile, CommandError> {
    let logical = path.trim_start_matches('/');
    layers
        .find(Layers::kind_of(logical), logical)
        .ok_or_else(|| unknown(layers, logical))
}

fn unknown(layers: &Layers, logical: &str) -> CommandError {
    let all: Vec<String> = [Kind::Script, Kind::Template]
        .into_iter()
        .flat_map(|k| layers.resolve_all(k))
        .map(|r| r.winner.logical)
        .collect();
    let known: Vec<&str> = all.iter().map(String::as_str).collect();
    CommandError::Unknown {
        kind: "stdlib file",
        name: logical.to_string(),
        help: crate::suggest::help("files", logical, &known),
    }
}
