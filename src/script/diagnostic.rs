//! Turns Rhai errors into miette diagnostics with the script's source, a span and the call chain.

use std::collections::HashMap;

use miette::{Diagnostic, NamedSource, SourceSpan};
use rhai::{EvalAltResult, ParseError, Position};
use thiserror::Error;

use crate::source::SourceFile;

/// What can go wrong loading or running scripts.
#[derive(Debug, Error, Diagnostic)]
pub enum ScriptError {
    /// `weft.toml` does not fit what the scripts declare (an unknown app setting).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A script does not compile.
    #[error("syntax error in `{file}`: {message}")]
    #[diagnostic(code(weft::script::syntax))]
    Syntax {
        file: String,
        message: String,
        #[label("{message}")]
        span: SourceSpan,
        #[source_code]
        src: NamedSource<String>,
    },
    /// A script file could not be read.
    #[error("cannot read `{file}`: {message}")]
    #[diagnostic(code(weft::script::read))]
    Read { file: String, message: String },
    /// Two files of one layer define the same goal.
    #[error("goal `{goal}` is defined twice: in `{first}` and in `{second}`")]
    #[diagnostic(
        code(weft::script::duplicate_goal),
        help("rename one, or make it a `private fn` helper")
    )]
    DuplicateGoal {
        goal: String,
        first: String,
        second: String,
    },
    /// Two plugins define the same goal or ship the same script.
    #[error("{what} is defined by two plugins: in `{first}` and in `{second}`")]
    #[diagnostic(
        code(weft::plugin::conflict),
        help("remove one of the two plugins from [plugins] of weft.toml")
    )]
    PluginConflict {
        what: String,
        first: String,
        second: String,
    },
    /// The command line names no goal.
    #[error("unknown goal `{name}`")]
    #[diagnostic(code(weft::script::unknown_goal))]
    UnknownGoal {
        name: String,
        #[help]
        help: Option<String>,
    },
    /// The command line gives the wrong number of arguments.
    #[error("goal `{goal}` takes {expected}, {given} given")]
    #[diagnostic(code(weft::script::arguments), help("usage: weft run {goal}{usage}"))]
    Arguments {
        goal: String,
        expected: String,
        given: usize,
        usage: String,
    },
    /// A goal failed while running.
    #[error("{message}")]
    #[diagnostic(code(weft::script::runtime))]
    Runtime {
        message: String,
        #[label("{label}")]
        span: Option<SourceSpan>,
        label: String,
        #[source_code]
        src: Option<NamedSource<String>>,
        #[help]
        help: Option<String>,
    },
}

/// The byte span of a Rhai position in `source`: the word that starts there.
fn span_at(source: &SourceFile, pos: Position) -> Option<SourceSpan> {
    let (line, column) = (pos.line()?, pos.position().unwrap_or(1));
    let start = source.offset(line, column);
    let len = source.text()[start..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum::<usize>()
        .max(1);
    Some(SourceSpan::from((start, len)))
}

fn pos_text(pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{l}:{c}"),
        (Some(l), None) => format!("{l}"),
        _ => "?".into(),
    }
}

/// A parse error in `source`.
pub fn syntax(source: &SourceFile, err: &ParseError) -> ScriptError {
    let message = err.0.to_string();
    ScriptError::Syntax {
        file: format!("{}:{}", source.name(), pos_text(err.1)),
        span: span_at(source, err.1).unwrap_or_else(|| SourceSpan::from((0, 0))),
        message,
        src: source.named(),
    }
}

/// Where a goal is defined, for errors that carry no position (operation limits).
pub struct GoalSite<'a> {
    /// The goal's name.
    pub goal: &'a str,
    /// The file it is defined in.
    pub source: &'a SourceFile,
}

/// A runtime error of a goal, following calls into functions and modules down to the
/// statement that failed.
pub fn runtime(
    err: &EvalAltResult,
    site: &GoalSite<'_>,
    sources: &HashMap<String, SourceFile>,
    module_source: impl Fn(&str) -> Option<String>,
) -> ScriptError {
    let mut current = site.source.name().to_string();
    let mut chain = Vec::new();
    let mut err = err;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                chain.push(format!(
                    "in `{name}`, called at {current}:{}",
                    pos_text(*pos)
                ));
                if !src.is_empty() {
                    current = src.clone();
                }
                err = inner;
            }
            EvalAltResult::ErrorInModule(path, inner, pos) => {
                chain.push(format!(
                    "in module `{path}`, imported at {current}:{}",
                    pos_text(*pos)
                ));
                if let Some(name) = module_source(path) {
                    current = name;
                }
                err = inner;
            }
            _ => break,
        }
    }
    let pos = err.position();
    let mut message = match err {
        // A host step's typed error reads as its message; anything else the script threw, as
        // Rhai shows the value.
        EvalAltResult::ErrorRuntime(value, _) => {
            super::api::error::op_error(value).map_or_else(|| value.to_string(), |e| e.message)
        }
        other => {
            let text = other.to_string();
            match text.strip_suffix(&format!(" ({pos})")) {
                Some(bare) => bare.to_string(),
                None => text,
            }
        }
    };
    let mut help = None;
    if let Some((limit, why)) = super::limits::help(&message) {
        message = limit;
        help = Some(why);
    }
    if matches!(err, EvalAltResult::ErrorDataRace(..)) {
        // rhai's words for a closure that captured the `host` whose method it is given to:
        // the method holds that host while it runs.
        help = Some(
            "a function handed to a method of `host` cannot use that `host`, which the method \
             holds while it runs: take the host as the function's argument, as in \
             `host.wait_until(|h| h.service_running(\"nginx\"))`"
                .to_string(),
        );
    }
    if matches!(err, EvalAltResult::ErrorDataTooLarge(..)) {
        help = Some(format!(
            "a value grew past weft's limits ({} MiB strings, {} items in an array or map): a loop that never ends?",
            super::limits::MAX_STRING_BYTES / (1024 * 1024),
            super::limits::MAX_COLLECTION_ITEMS
        ));
    }
    let (source, pos) = if pos.is_none() {
        // Limits carry no position: point at the goal itself.
        if matches!(err, EvalAltResult::ErrorTooManyOperations(_)) {
            message = format!("goal `{}` ran too many operations", site.goal);
            help = Some(
                "a loop that never ends? raise `max_operations` in [project] if the work is real"
                    .to_string(),
            );
        }
        let text = site.source.text();
        let at = text.find(&format!("fn {}", site.goal)).map_or(0, |i| i + 3);
        let line = text[..at].matches('\n').count() + 1;
        let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
        (
            Some(site.source.clone()),
            Position::new(line as u16, column as u16),
        )
    } else {
        (sources.get(&current).cloned(), pos)
    };
    let location = format!("{current}:{}", pos_text(pos));
    if !chain.is_empty() {
        chain.reverse();
        let chain = chain.join("\n");
        help = Some(match help {
            Some(h) => format!("{h}\n{chain}"),
            None => chain,
        });
    }
    ScriptError::Runtime {
        label: "failed here".into(),
        message: format!("{message}\n  at {location}"),
        span: source.as_ref().and_then(|s| span_at(s, pos)),
        src: source.map(|s| s.named()),
        help,
    }
}

/// Adds to a goal's runtime error the `vars.NAME` that `host` lacks (they read as `()` and fail
/// further on, far from the typo), with the closest names it has: those of the failing
/// function up to the failing line.
pub fn missing_vars(err: ScriptError, host: &str, vars: &[&str]) -> ScriptError {
    let ScriptError::Runtime {
        message,
        span,
        label,
        src,
        help,
    } = err
    else {
        return err;
    };
    let region = match (&span, &src) {
        (Some(span), Some(src)) => {
            let text = src.inner();
            let at = span.offset().min(text.len());
            let start = ["\nfn ", "\nprivate fn "]
                .iter()
                .filter_map(|f| text[..at].rfind(f))
                .max()
                .map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            text[start..end].to_string()
        }
        _ => String::new(),
    };
    let mut notes: Vec<String> = Vec::new();
    for (i, _) in region.match_indices("vars.") {
        let name: String = region[i + 5..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let note_for = format!("`vars.{name}`");
        if name.is_empty()
            || vars.contains(&name.as_str())
            || notes.iter().any(|n| n.contains(&note_for))
        {
            continue;
        }
        let mut note = format!("{note_for} is `()` on {host}: it has no var `{name}`");
        if let Some(suggestion) = crate::suggest::help("vars", &name, vars) {
            note.push_str(&format!("; {suggestion}"));
        }
        notes.push(note);
    }
    let help = match (help, notes.is_empty()) {
        (help, true) => help,
        (None, false) => Some(notes.join("\n")),
        (Some(h), false) => Some(format!("{}\n{h}", notes.join("\n"))),
    };
    ScriptError::Runtime {
        message,
        span,
        label,
        src,
        help,
    }
}
