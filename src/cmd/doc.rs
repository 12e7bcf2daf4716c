//! `weft doc`: the reference of the functions scripts can call.

use miette::Result;

use super::Context;
use crate::error::{CommandError, EXIT_OK};
use crate::plugin::PluginVar;
use crate::script::docs;

/// Prints the reference of a topic, a function, all of them, Markdown, editor definitions or
/// the option maps' JSON schema; in a project with plugins, also the vars they read (all of
/// them, one plugin's or one var).
pub fn doc(
    ctx: &Context,
    name: Option<&str>,
    definitions: bool,
    markdown: bool,
    schema: bool,
) -> Result<i32> {
    if schema {
        let text = serde_json::to_string_pretty(&docs::options_schema())
            .map_err(|e| miette::miette!("cannot print the options' schema: {e}"))?;
        out!("{text}\n");
        return Ok(EXIT_OK);
    }
    if definitions {
        out!("{}", docs::definitions());
        return Ok(EXIT_OK);
    }
    if markdown {
        out!("{}", docs::markdown());
        return Ok(EXIT_OK);
    }
    // Outside a project, or in one that does not load, there are only the functions.
    let vars = ctx
        .project_with_plugins()
        .map(|(_, plugins, _)| crate::plugin::vars(&plugins))
        .unwrap_or_default();
    if let Some(n) = name {
        let picked: Vec<&PluginVar> = vars
            .iter()
            .filter(|v| v.name == n || v.plugin == n)
            .collect();
        if !picked.is_empty() {
            print_vars(&picked);
            return Ok(EXIT_OK);
        }
    }
    let all = docs::functions();
    let is_topic = name.is_some_and(|n| docs::TOPICS.iter().any(|(t, _)| *t == n));
    let shown: Vec<_> = all
        .iter()
        .filter(|f| match name {
            None => true,
            Some(n) if is_topic => docs::topic_of(f) == n,
            Some(n) => f.name == n,
        })
        .collect();
    if let (Some(n), true) = (name, shown.is_empty()) {
        if print_others(ctx, n) {
            return Ok(EXIT_OK);
        }
    }
    if shown.is_empty() {
        let mut names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
        names.extend(docs::TOPICS.iter().map(|(t, _)| *t));
        names.extend(vars.iter().map(|v| v.name.as_str()));
        names.sort_unstable();
        names.dedup();
        let wanted = name.unwrap_or_default();
        return Err(CommandError::Unknown {
            kind: "function or topic",
            name: wanted.to_string(),
            help: crate::suggest::help("functions", wanted, &names),
        }
        .into());
    }
    if name.is_none() {
        let topics: Vec<&str> = docs::TOPICS.iter().map(|(t, _)| *t).collect();
        outln!("topics (weft doc TOPIC): {}\n", topics.join(", "));
    }
    for f in shown {
        outln!("{}\n", f.signature);
        for line in f.doc.lines() {
            outln!("    {line}");
        }
        outln!();
    }
    if name.is_none() && !vars.is_empty() {
        outln!("vars of the project's plugins (set them in [vars] of weft.toml):\n");
        print_vars(&vars.iter().collect::<Vec<_>>());
    }
    Ok(EXIT_OK)
}

/// Prints the script functions called `name` in the project's layers (a goal, a `lib/` helper
/// such as `app_settings`), else the functions of Rhai's standard library (`parse_json`);
/// whether there were any.
fn print_others(ctx: &Context, name: &str) -> bool {
    // Outside a project, or in one whose scripts do not compile, there are only Rhai's own.
    let scripts = ctx
        .project()
        .ok()
        .and_then(|(project, layers)| crate::script::engine::load(&layers, &project).ok());
    let defined = scripts
        .as_ref()
        .map(|s| docs::script_functions(s.scripts(), name))
        .unwrap_or_default();
    for (f, file) in &defined {
        outln!(
            "{}
",
            f.signature
        );
        for line in f.doc.lines() {
            outln!("    {line}");
        }
        outln!("    (a script function: {file}; `weft stdlib show` prints a stdlib file)\n");
    }
    if !defined.is_empty() {
        return true;
    }
    let standard = docs::standard(name);
    for f in &standard {
        outln!(
            "{}
",
            f.signature
        );
        for line in f.doc.lines() {
            outln!("    {line}");
        }
        outln!();
    }
    !standard.is_empty()
}

/// Each var with its plugin, default (or that weft.toml must set it) and doc.
fn print_vars(vars: &[&PluginVar]) {
    for v in vars {
        let default = match &v.default {
            Some(value) => format!("default {value}"),
            None => "no default: weft.toml must set it".to_string(),
        };
        outln!("{} (plugin {}; {default})\n", v.name, v.plugin);
        for line in v.doc.lines() {
            outln!("    {line}");
        }
        outln!();
    }
}
