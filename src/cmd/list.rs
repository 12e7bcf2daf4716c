//! `weft list`: the goals, their layer and the first line of their help.

use miette::Result;

use super::Context;
use crate::error::EXIT_OK;
use crate::layers::Layer;
use crate::script::engine;
use crate::script::Goal;

/// Where `goal` is listed: the project's own goals, then those of its `[apps.NAME]` (made in
/// the stdlib layer, but the project's as a reader sees it), plugins', the user's, the stdlib's.
fn rank(goal: &Goal) -> (u8, Layer) {
    let app = goal.file.starts_with("<generated>/apps/");
    let rank = match goal.layer {
        Layer::Project => 0,
        Layer::Stdlib if app => 1,
        Layer::Plugin(..) => 2,
        Layer::User => 3,
        Layer::Stdlib => 4,
    };
    (rank, goal.layer)
}

/// Prints the goals whose name contains `filter` (every goal without one): the project's
/// first, then the plugins', the user's and the stdlib's, so a project's own goals are not
/// lost below the stdlib's (issue 30).
pub fn list(ctx: &Context, filter: Option<&str>, json: bool) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    // The process ends after the list: its scripts are left to the exit rather than freed.
    let engine: &engine::ScriptEngine = Box::leak(Box::new(engine::load(&layers, &project)?));
    let mut goals: Vec<_> = engine
        .scripts()
        .goals()
        .filter(|g| filter.is_none_or(|f| g.name.to_lowercase().contains(&f.to_lowercase())))
        .collect();
    // Stable: goals of one rank keep their (alphabetical) order.
    goals.sort_by_key(|g| rank(g));
    if let (Some(filter), true) = (filter, goals.is_empty()) {
        eprintln!("no goal's name contains `{filter}`");
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&goals).unwrap_or_default()
        );
        return Ok(EXIT_OK);
    }
    let width = goals
        .iter()
        .map(|g| g.name.len() + g.usage().len())
        .max()
        .unwrap_or(0);
    for goal in goals {
        let usage = format!("{}{}", goal.name, goal.usage());
        let note = if goal.overrides.is_empty() {
            String::new()
        } else {
            format!(" (overrides {})", goal.overrides.join(", "))
        };
        outln!("{usage:<width$}  [{}] {}{note}", goal.layer, goal.summary());
    }
    Ok(EXIT_OK)
}
