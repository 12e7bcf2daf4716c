//! What scripts can call: the `Host` type and a few global functions, each documented.

/// Registers the form of a `Host` function without its trailing option map, calling the
/// declared form with `#{}`: the one way both arities are made. Its doc comment points to
/// the full form, whose doc and option keys (`options.rs`) say the rest.
macro_rules! short_form {
    ($module:expr, $script:literal, $api:ident :: $name:ident ($($arg:ident : $ty:ty),*)) => {
        short_form!($module, $script, $api::$name($($arg: $ty),*) -> bool)
    };
    ($module:expr, $script:literal, $api:ident :: $name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty) => {{
        use rhai::plugin::*;
        let full = concat!("host.", $script, "(", $(stringify!($arg), ", ",)* "options)");
        rhai::FuncRegistration::new($script)
            .with_namespace(rhai::FnNamespace::Global)
            .with_params_info([
                "host: &mut Host",
                $(concat!(stringify!($arg), ": ", stringify!($ty)),)*
                concat!("Result<", stringify!($ret), ", Box<EvalAltResult>>"),
            ])
            .with_comments([format!(
                "/// `{full}` with every option at its default."
            )])
            .set_into_module(
                $module,
                |ctx: NativeCallContext, host: &mut Host, $($arg: $ty),*| -> Result<$ret, Box<EvalAltResult>> {
                    $api::$name(ctx, host, $($arg,)* rhai::Map::new())
                },
            );
    }};
}

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
