//! Provisioning new machines: run the role's `<role>_provision` goal on them, when it exists.

use std::sync::Arc;

use miette::Result;

use super::fanout::{self, Fanout, Selection};
use super::Context;
use crate::cloud::Machine;
use crate::exec::runner::Job;
use crate::inventory::Inventory;
use crate::project::Project;
use crate::script::engine;

/// Runs `<role>_provision` on `machines`; nothing when the role has no such goal. Returns the
/// exit code of the run.
pub fn provision(
    ctx: &Context,
    project: &Project,
    env: &str,
    role: &str,
    machines: &[Machine],
) -> Result<i32> {
    let layers = crate::layers::Layers::new(project);
    let engine = engine::load(&layers, project)?;
    let goal_name = format!("{role}_provision");
    let Ok(goal) = engine.scripts().goal(&goal_name) else {
        return Ok(crate::error::EXIT_OK);
    };
    let goal = goal.clone();
    let mut inventory = Inventory::resolve(project, env)?;
    inventory.hosts.clear();
    inventory.roles.clear();
    let section = super::cloud::cloud_env(project, env)?.section;
    inventory.add_machines(machines, &section);
    let hosts = inventory.hosts.clone();
    let selection = Selection { inventory, hosts };
    let connect = super::orchestrate::default_connect();
    let fan_args = super::orchestrate::default_fanout();
    let job = Job::Goal {
        engine: Arc::new(engine),
        goal,
        args: Vec::new(),
    };
    let fan = Fanout::new(ctx, project, layers, selection);
    let code = fanout::execute(fan, job, &connect, &fan_args)?;
    if code != crate::error::EXIT_OK {
        eprintln!("weft: `{goal_name}` failed on some new machines; they are left running for you to inspect");
    }
    Ok(code)
}
