//! `weft list`: the goals, their layer and the first line of their help.

use miette::Result;

use super::Context;
use crate::error::EXIT_OK;
use crate::script::engine;

/// Prints every goal.
pub fn list(ctx: &Context, json: bool) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    let engine = engine::load(&layers, &project)?;
    let goals: Vec<_> = engine.scripts().goals().collect();
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
