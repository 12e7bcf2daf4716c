//! The edge where errors become what the user reads, and exit codes.

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, MietteHandlerOpts};
use thiserror::Error;

/// Every host succeeded.
pub const EXIT_OK: i32 = 0;
/// The goal failed on some host.
pub const EXIT_FAILED: i32 = 1;
/// Bad input: usage, config, scripts, names. Nothing ran anywhere.
pub const EXIT_USAGE: i32 = 2;

/// Plain I/O errors of weft's own commands (writing a skeleton, ejecting a file).
#[derive(Debug, Error, Diagnostic)]
pub enum CommandError {
    /// A file weft was asked to write is in the way.
    #[error("`{path}` already exists")]
    #[diagnostic(code(weft::command::exists), help("{help}"))]
    Exists { path: String, help: String },
    /// Reading or writing a file failed.
    #[error("cannot {action} `{path}`: {source}")]
    #[diagnostic(code(weft::command::io))]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A name given on the command line does not exist.
    #[error("no {kind} `{name}`")]
    #[diagnostic(code(weft::command::unknown))]
    Unknown {
        kind: &'static str,
        name: String,
        #[help]
        help: Option<String>,
    },
    /// A `--var` is not `key=value`.
    #[error("`{0}` is not `key=value`")]
    #[diagnostic(code(weft::command::var))]
    BadVar(String),
}

fn theme(color: bool) -> GraphicalTheme {
    if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    }
}

/// Installs the report style used for fatal errors.
pub fn install_hook(color: bool) {
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            MietteHandlerOpts::new()
                .color(color)
                .unicode(true)
                .terminal_links(false)
                .width(100)
                .wrap_lines(false)
                .build(),
        )
    }));
}

/// A fatal error as one `--json` event: `{"event": "error", "code", "message", "help",
/// "location": {"file", "line", "column"}}`, where `location` (1-based) is where the first
/// label points, and `null` when the error has no source.
pub fn json_event(report: &miette::Report) -> serde_json::Value {
    let location = report
        .source_code()
        .zip(report.labels().and_then(|mut labels| labels.next()))
        .and_then(|(source, label)| source.read_span(label.inner(), 0, 0).ok())
        .map(|span| {
            serde_json::json!({
                "file": span.name(),
                "line": span.line() + 1,
                "column": span.column() + 1,
            })
        });
    serde_json::json!({
        "event": "error",
        "code": report.code().map(|c| c.to_string()),
        "message": report.to_string(),
        "help": report.help().map(|h| h.to_string()),
        "location": location,
    })
}

/// A diagnostic rendered as the user will read it, for per-host failures in the run report.
pub fn render(diag: &dyn Diagnostic, color: bool) -> String {
    let mut out = String::new();
    let handler = GraphicalReportHandler::new_themed(theme(color))
        .with_width(100)
        // A wrapped line could split a secret, which the mask then no longer finds whole.
        .with_wrap_lines(false)
        .with_links(false);
    if handler.render_report(&mut out, diag).is_err() {
        return diag.to_string();
    }
    out
}
