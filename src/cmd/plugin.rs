//! `weft plugin add|list|update|remove|verify`: vendored plugins and their lock file.

use miette::Result;

use super::Context;
use crate::cli::PluginCommand;
use crate::error::EXIT_OK;
use crate::plugin::lock::LockFile;
use crate::plugin::vendor::{self, Source};
use crate::plugin::PluginError;
use crate::project::Project;

/// Runs a `weft plugin` subcommand.
pub fn plugin(ctx: &Context, command: PluginCommand) -> Result<i32> {
    let project = Project::discover(&ctx.cwd)?;
    if project.config.is_none() {
        return Err(PluginError::State {
            message: "no weft.toml here or above: plugins belong to a project".into(),
            help: Some("`weft init` makes a project".into()),
        }
        .into());
    }
    let root = &project.root;
    match command {
        PluginCommand::Add { source, force } => {
            let entry = vendor::add(root, &Source::parse(&source, &ctx.cwd), force)?;
            outln!(
                "added plugin {} {} to plugins/{}{}",
                entry.name,
                entry.version,
                entry.name,
                entry
                    .commit
                    .map(|c| format!(" (commit {c})"))
                    .unwrap_or_default()
            );
        }
        PluginCommand::Update {
            name,
            allow_moved_tag,
        } => {
            let updated = vendor::update(root, &name, allow_moved_tag)?;
            let entry = updated.entry;
            let commit = match (&entry.commit, &updated.previous) {
                (Some(now), Some(was)) if now != was => format!(" (commit {now}, was {was})"),
                (Some(now), _) => format!(" (commit {now})"),
                _ => String::new(),
            };
            outln!("updated plugin {} to {}{commit}", entry.name, entry.version);
        }
        PluginCommand::Remove { name } => {
            vendor::remove(root, &name)?;
            outln!("removed plugin {name}");
        }
        PluginCommand::List => {
            let lock = LockFile::load(root)?;
            let listed = project
                .config
                .as_ref()
                .map(|c| c.file.plugins.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            for name in listed {
                match lock.plugin.iter().find(|e| e.name == name) {
                    Some(e) => outln!(
                        "{:<16} {:<10} {}{}{}",
                        e.name,
                        e.version,
                        e.source,
                        e.git_ref
                            .as_ref()
                            .map(|r| format!("@{r}"))
                            .unwrap_or_default(),
                        e.commit
                            .as_ref()
                            .map(|c| format!(" ({})", &c[..c.len().min(12)]))
                            .unwrap_or_default()
                    ),
                    None => outln!("{name:<16} {:<10} (not vendored: not in weft.lock)", "-"),
                }
            }
        }
        PluginCommand::Verify => {
            let changes = LockFile::load(root)?.changes(root)?;
            for change in &changes {
                outln!("{change}");
            }
            if !changes.is_empty() {
                return Ok(crate::error::EXIT_FAILED);
            }
            outln!("every vendored plugin file matches weft.lock");
        }
    }
    Ok(EXIT_OK)
}
