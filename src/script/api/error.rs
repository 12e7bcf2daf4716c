//! A failed host step as scripts catch it: `err.kind`, `err.code`, `err.host`, `err.command`,
//! `err.message`, with its type kept up to the diagnostic instead of flattened to a string.

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, Position};

use crate::exec::orchestrator::OrchestrateError;
use crate::exec::session::{HostError, HostSession};

/// What a host step that failed leaves for the script (`catch (err)`) and for the diagnostic.
#[derive(Debug, Clone)]
pub struct OpError {
    /// `command`, `rejected`, `operation`, `transport`, `interrupted`, `host_timeout`,
    /// `template`, `dump`, `local_read`, `secret` (a secret of weft.toml that could not be
    /// resolved), `env` (an env action of a controller goal), or `goal` (a goal `run_goal`
    /// started failed).
    pub kind: &'static str,
    /// The whole message, as the run report shows it.
    pub message: String,
    /// A failed command's exit code.
    pub code: Option<i32>,
    /// The host it failed on.
    pub host: String,
    /// The command that failed, or the validator that rejected a file.
    pub command: Option<String>,
    /// The script file of the call that failed, when known.
    pub source: Option<String>,
    /// Its line and column in that file, when known.
    pub line: Option<(u16, u16)>,
}

impl OpError {
    /// The script error for `err` on `session`'s host.
    pub fn new(session: &HostSession, err: &HostError) -> Self {
        OpError {
            kind: err.kind(),
            message: err.to_string(),
            code: err.code(),
            host: session.spec.name.clone(),
            command: err.command().map(str::to_string),
            source: None,
            line: None,
        }
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// `err` of `session`'s host as a script error: a runtime error carrying an [`OpError`], which
/// `catch (err)` receives and the diagnostic renders (its position is the call's).
pub fn host_error(session: &HostSession, err: HostError) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(OpError::new(session, &err)),
        Position::NONE,
    ))
}

/// `err` of a step on this machine, outside any host session (verifying a dump), as a script
/// error of the controller.
pub fn controller_error(err: HostError) -> Box<EvalAltResult> {
    let error = OpError {
        kind: err.kind(),
        message: err.to_string(),
        code: err.code(),
        host: crate::exec::runner::CONTROLLER.to_string(),
        command: err.command().map(str::to_string),
        source: None,
        line: None,
    };
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(error),
        Position::NONE,
    ))
}

/// A failure of a controller step, `kind` (such as `goal`), as a script error at the call
/// (`err.source`, `err.line`, `err.column`).
pub fn controller_error_at(
    ctx: &NativeCallContext,
    kind: &'static str,
    message: String,
) -> Box<EvalAltResult> {
    let at = ctx.call_position();
    let error = OpError {
        kind,
        message,
        code: None,
        host: crate::exec::runner::CONTROLLER.to_string(),
        command: None,
        source: ctx.call_source().map(str::to_string),
        line: at
            .line()
            .map(|l| (l as u16, at.position().unwrap_or(0) as u16)),
    };
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(error), at))
}

/// An env action's failure as a script error on the controller, so `catch (err)` reads
/// `err.kind == "env"` and the diagnostic its message.
impl From<OrchestrateError> for Box<EvalAltResult> {
    fn from(err: OrchestrateError) -> Self {
        let error = OpError {
            kind: "env",
            message: err.to_string(),
            code: None,
            host: crate::exec::runner::CONTROLLER.to_string(),
            command: None,
            source: None,
            line: None,
        };
        Box::new(EvalAltResult::ErrorRuntime(
            Dynamic::from(error),
            Position::NONE,
        ))
    }
}

/// `err` of `session`'s host as a script error that also knows the script line of the call
/// (`err.source`, `err.line`, `err.column`).
pub fn host_error_at(
    ctx: &NativeCallContext,
    session: &HostSession,
    err: HostError,
) -> Box<EvalAltResult> {
    let mut error = OpError::new(session, &err);
    let at = ctx.call_position();
    error.source = ctx.call_source().map(str::to_string);
    error.line = at
        .line()
        .map(|l| (l as u16, at.position().unwrap_or(0) as u16));
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(error), at))
}

/// The [`OpError`] an error carries, if it is one.
pub fn op_error(value: &Dynamic) -> Option<OpError> {
    value.read_lock::<OpError>().map(|e| e.clone())
}

/// Properties of `OpError`, the value `catch (err)` receives when a host step failed.
#[export_module]
pub mod error_api {
    /// A host step that failed, as `catch (err)` receives it.
    pub type OpError = super::OpError;

    /// What failed: `command` (a command exited non-zero), `rejected` (a `validate` command
    /// refused new content), `operation` (an operation refused, e.g. a directory where a
    /// link should be), `transport`, `interrupted` (Ctrl-C), `host_timeout` (the host's
    /// `--host-timeout` passed), `template`, `dump`, `local_read`, `secret` (a secret of
    /// weft.toml that could not be resolved was about to be used), `env` (an env action of
    /// a controller goal, such as `create_machines`), or `goal` (a goal `run_goal` started
    /// failed on some host).
    ///
    /// ```rhai
    /// try { host.run("false"); } catch (err) { if err.kind == "command" { log(err.code); } }
    /// ```
    #[rhai_fn(get = "kind", pure)]
    pub fn kind(err: &mut OpError) -> String {
        err.kind.to_string()
    }

    /// The whole message, as the run report would show it.
    #[rhai_fn(get = "message", pure)]
    pub fn message(err: &mut OpError) -> String {
        err.message.clone()
    }

    /// A failed command's exit code; `()` when no command failed.
    #[rhai_fn(get = "code", pure)]
    pub fn code(err: &mut OpError) -> Dynamic {
        err.code
            .map_or(Dynamic::UNIT, |c| Dynamic::from_int(c.into()))
    }

    /// The name of the host the step failed on.
    #[rhai_fn(get = "host", pure)]
    pub fn host(err: &mut OpError) -> String {
        err.host.clone()
    }

    /// The command that failed, or the validator that rejected a file; `()` otherwise.
    #[rhai_fn(get = "command", pure)]
    pub fn command(err: &mut OpError) -> Dynamic {
        err.command.clone().map_or(Dynamic::UNIT, Dynamic::from)
    }

    /// The script file of the call that failed (as `weft` names it, e.g. `deploy/site.rhai`);
    /// `()` when not known.
    #[rhai_fn(get = "source", pure)]
    pub fn source(err: &mut OpError) -> Dynamic {
        err.source.clone().map_or(Dynamic::UNIT, Dynamic::from)
    }

    /// The line of the call that failed in `source`; `()` when not known.
    #[rhai_fn(get = "line", pure)]
    pub fn line(err: &mut OpError) -> Dynamic {
        err.line
            .map_or(Dynamic::UNIT, |(l, _)| Dynamic::from_int(l.into()))
    }

    /// The column of the call that failed on its `line`; `()` when not known.
    #[rhai_fn(get = "column", pure)]
    pub fn column(err: &mut OpError) -> Dynamic {
        err.line
            .map_or(Dynamic::UNIT, |(_, c)| Dynamic::from_int(c.into()))
    }

    /// The message, for `${err}` and `log(err)`.
    #[rhai_fn(name = "to_string", pure)]
    pub fn to_string(err: &mut OpError) -> String {
        err.message.clone()
    }

    /// The message, for `print` and `debug`.
    #[rhai_fn(name = "to_debug", pure)]
    pub fn to_debug(err: &mut OpError) -> String {
        err.message.clone()
    }
}
