//! What scripts can call: the `Host` type and a few global functions, each documented.

pub mod chores;
pub mod cloud;
pub mod error;
pub mod global;
pub mod host;
pub mod ops;
pub mod options;
pub mod reveal;
#[cfg(test)]
mod tests;
pub mod waits;

use rhai::{Dynamic, EvalAltResult, Map};

use crate::inventory::Vars;

/// The result type of every registered function that can fail.
pub type ApiResult<T> = Result<T, Box<EvalAltResult>>;

/// A JSON value as a script value.
pub fn to_dynamic(value: &serde_json::Value) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}

/// A script map as template variables.
pub fn vars_from_map(map: Map) -> ApiResult<Vars> {
    let value: serde_json::Value = rhai::serde::from_dynamic(&Dynamic::from_map(map))?;
    match value {
        serde_json::Value::Object(vars) => Ok(vars),
        _ => Err("variables must be a map".into()),
    }
}
