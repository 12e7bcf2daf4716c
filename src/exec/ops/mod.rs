//! Idempotent operations: each reads the host's state, compares it with the wanted state, does
//! the least needed (nothing under `--check`), and reports changed or unchanged with a reason.

pub mod daemons;
pub mod facts;
pub mod files;
pub mod locks;
pub mod packages;
pub mod paths;
pub mod probes;
pub mod services;
pub mod system;
#[cfg(test)]
mod tests;
pub mod trees;
pub mod waits;

use super::session::HostError;

/// The result of every operation: whether it changed (or would change) the host.
pub type OpResult = Result<bool, HostError>;

/// Fails operation `what` with a message: a refusal, not a failed command.
pub fn fail(what: &str, message: impl Into<String>) -> HostError {
    HostError::Operation {
        op: what.to_string(),
        message: message.into(),
    }
}
