//! The runner's interface to scripts (`exec::goals::GoalEngine`), implemented by the engine:
//! goals are looked up and called here.

use super::api::global::ScriptContext;
use super::api::host::Host;
use super::engine::ScriptEngine;
use crate::exec::goals::{GoalCall, GoalEngine, GoalFailure, GoalInfo};
use crate::template::{TemplateError, Templates};

/// The helper a file of goals defines to name the roles whose machines its host goals run on.
const RUNS_ON: &str = "runs_on";

impl GoalEngine for ScriptEngine {
    fn goal(&self, name: &str) -> Result<GoalInfo, miette::Report> {
        let goal = self.scripts().goal(name)?;
        // Compiled here, before any host is touched and once for all of them.
        self.scripts().ast(self.scripts().script_of(goal))?;
        // Rhai's modules too, on this thread: glibc grows the malloc arena of a thread the run
        // starts a page (and a system call) at a time, the main thread's by 128 KiB.
        ScriptEngine::modules();
        Ok(GoalInfo {
            name: goal.name.clone(),
            takes_host: goal.takes_host,
        })
    }

    fn check_arguments(&self, goal: &GoalInfo, args: &[String]) -> Result<(), miette::Report> {
        let goal = self.scripts().goal(&goal.name)?;
        Ok(ScriptEngine::check_arguments(goal, args)?)
    }

    fn check_templates(&self, templates: &Templates) -> Result<(), TemplateError> {
        ScriptEngine::check_templates(self, templates)
    }

    fn call(&self, call: GoalCall<'_>, color: bool) -> Result<(), GoalFailure> {
        let failure = |err: super::ScriptError| GoalFailure {
            message: err
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
            report: crate::error::render(&err, color),
        };
        let goal = self.scripts().goal(&call.goal.name).map_err(failure)?;
        let context = ScriptContext {
            root: call.env.root.clone(),
            prefix: call.prefix,
            output: call.output,
            env: call.env.clone(),
            orchestrator: call.orchestrator,
            controller: call.controller.map(Host),
        };
        let rhai = self.engine(Some(context));
        ScriptEngine::call(self, &rhai, goal, call.host.map(Host), call.args)
            .map(|_| ())
            .map_err(failure)
    }

    fn runs_on(
        &self,
        goal: &GoalInfo,
        vars: &crate::inventory::Vars,
    ) -> Result<Option<Vec<String>>, miette::Report> {
        let goal = self.scripts().goal(&goal.name)?;
        let script = self.scripts().script_of(goal);
        // From the outline: deciding where a goal runs compiles nothing.
        let declared = script
            .functions
            .iter()
            .any(|f| f.name == RUNS_ON && f.params.len() == 1);
        if !declared || !goal.takes_host {
            return Ok(None);
        }
        let mut helper = goal.clone();
        helper.name = RUNS_ON.to_string();
        let vars = super::api::to_dynamic(&serde_json::Value::Object(vars.clone()));
        let rhai = self.engine(None);
        let value = ScriptEngine::call_with(self, &rhai, &helper, None, vec![vars])?;
        let roles = value
            .into_typed_array::<rhai::ImmutableString>()
            .map_err(|kind| {
                miette::miette!(
                    code = "weft::script::runs_on",
                    "`{RUNS_ON}` of {} returned {kind}, not an array of role names",
                    goal.file
                )
            })?;
        Ok(Some(roles.into_iter().map(|r| r.to_string()).collect()))
    }

    fn decide(
        &self,
        name: &str,
        input: &serde_json::Value,
        color: bool,
    ) -> Result<serde_json::Value, GoalFailure> {
        let failure = |message: String, report: String| GoalFailure { message, report };
        let goal = self
            .scripts()
            .goal(name)
            .map_err(|err| failure(err.to_string(), crate::error::render(&err, color)))?;
        let argument = rhai::serde::to_dynamic(input)
            .map_err(|err| failure(err.to_string(), err.to_string()))?;
        let rhai = self.engine(None);
        let result =
            ScriptEngine::call_with(self, &rhai, goal, None, vec![argument]).map_err(|err| {
                let first = err
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                failure(first, crate::error::render(&err, color))
            })?;
        rhai::serde::from_dynamic(&result).map_err(|err| {
            let message = format!("`{name}` returned a value that is not data: {err}");
            failure(message.clone(), message)
        })
    }
}
