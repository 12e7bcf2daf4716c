//! The script engine: the only part of weft that knows Rhai.

pub mod api;
mod call;
pub mod check;
pub mod diagnostic;
pub mod docs;
pub mod engine;
mod limits;
pub mod set;

pub use api::global::ScriptContext;
pub use api::host::Host;
pub use diagnostic::ScriptError;
pub use engine::ScriptEngine;
pub use set::{Goal, ScriptSet};
