//! Diagnostics of an open document: Rhai syntax errors and checks of scripts (option keys,
//! `host.` members, goals' `host` parameter), the errors of `weft.toml`
//! (the same messages as the command line, with their spans as ranges).

use lsp_types::{Diagnostic, DiagnosticSeverity, NumberOrString, Uri};

use super::text;
use crate::config::{ConfigError, ProjectConfig};
use crate::project::PROJECT_FILE;
use crate::script::check;

/// The problems of `text`, the content of `uri`.
pub fn check(uri: &Uri, text: &str) -> Vec<Diagnostic> {
    let path = uri.as_str();
    if path.ends_with(".rhai") {
        // Public functions of `lib/` files are helpers for imports, never goals (`layers`).
        let in_lib =
            text::path_of(uri).is_some_and(|p| p.parent().is_some_and(|dir| dir.ends_with("lib")));
        script(text, !in_lib)
    } else if path.ends_with(&format!("/{PROJECT_FILE}")) {
        config(uri, text)
    } else {
        Vec::new()
    }
}

fn diagnostic(range: lsp_types::Range, code: &str, message: String) -> Diagnostic {
    // A name weft does not know may still resolve at run time: a warning, not an error.
    // So may a goal's odd use of `host`: it is legal Rhai, only likely to fail when run.
    let severity = if code == "weft::script::unknown_function" || code == "weft::script::host_param"
    {
        DiagnosticSeverity::WARNING
    } else {
        DiagnosticSeverity::ERROR
    };
    Diagnostic {
        range,
        severity: Some(severity),
        code: Some(NumberOrString::String(code.to_string())),
        source: Some("weft".into()),
        message,
        ..Diagnostic::default()
    }
}

fn script(source: &str, defines_goals: bool) -> Vec<Diagnostic> {
    check::check_source(source, defines_goals)
        .into_iter()
        .map(|p| {
            diagnostic(
                text::word_range(source, p.line, p.column),
                p.code,
                p.message,
            )
        })
        .collect()
}

fn config(uri: &Uri, source: &str) -> Vec<Diagnostic> {
    let path = text::path_of(uri).unwrap_or_else(|| PROJECT_FILE.into());
    let Err(err) = ProjectConfig::parse(path, source.to_string()) else {
        return Vec::new();
    };
    let range = |span: Option<miette::SourceSpan>| {
        let (start, len) = span.map_or((0, 0), |s| (s.offset(), s.len()));
        lsp_types::Range::new(
            text::position(source, start),
            text::position(source, start + len),
        )
    };
    let found = match err {
        ConfigError::Syntax { message, span, .. } => {
            diagnostic(range(span), "weft::config::syntax", message)
        }
        ConfigError::Invalid {
            message,
            span,
            help,
            ..
        } => {
            let message = match help {
                Some(help) => format!("{message}\nhelp: {help}"),
                None => message,
            };
            diagnostic(range(Some(span)), "weft::config::invalid", message)
        }
        ConfigError::Read { .. } => return Vec::new(),
    };
    vec![found]
}
