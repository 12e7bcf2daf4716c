//! The one place a secret of weft.toml read on first use (`{ command = [..] }`,
//! `{ aws_secret = .. }`) becomes its value: every string a script hands to a host's function
//! (a command, an argv, a path, a key, a line, an option) is revealed here, read now if no
//! step has read it, and masked from then on. Past this boundary weft only sees values, so
//! it quotes, compares and hashes the value, never the stand-in the script held
//! (`config::secret::lazy`); a run that hands none to weft reads none.

use rhai::{Array, Dynamic, Map, NativeCallContext};

use super::error::host_error_at;
use super::ApiResult;
use crate::exec::session::{HostError, HostSession};

/// `text` with its secrets put in.
pub fn text(ctx: &NativeCallContext, host: &HostSession, text: &str) -> ApiResult<String> {
    host.reveal(text)
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| host_error_at(ctx, host, e))
}

/// `map` with the secrets of every string in it put in, however deep.
pub fn map(ctx: &NativeCallContext, host: &HostSession, map: Map) -> ApiResult<Map> {
    map.into_iter()
        .map(|(k, v)| Ok((k, dynamic(host, v)?)))
        .collect::<Result<Map, HostError>>()
        .map_err(|e| host_error_at(ctx, host, e))
}

/// `array` with the secrets of every string in it put in, however deep.
pub fn array(ctx: &NativeCallContext, host: &HostSession, array: Array) -> ApiResult<Array> {
    array
        .into_iter()
        .map(|v| dynamic(host, v))
        .collect::<Result<Array, HostError>>()
        .map_err(|e| host_error_at(ctx, host, e))
}

/// `value` with the secrets of every string in it put in, however deep.
pub fn value(ctx: &NativeCallContext, host: &HostSession, value: Dynamic) -> ApiResult<Dynamic> {
    dynamic(host, value).map_err(|e| host_error_at(ctx, host, e))
}

fn dynamic(host: &HostSession, value: Dynamic) -> Result<Dynamic, HostError> {
    if value.is_string() {
        let text = value.into_immutable_string().unwrap_or_default();
        return Ok(match host.reveal(&text)? {
            std::borrow::Cow::Borrowed(_) => text.into(),
            std::borrow::Cow::Owned(revealed) => revealed.into(),
        });
    }
    if value.is_array() {
        let items = value.into_array().unwrap_or_default();
        return items
            .into_iter()
            .map(|v| dynamic(host, v))
            .collect::<Result<Array, _>>()
            .map(Dynamic::from_array);
    }
    if value.is_map() {
        let entries = value.cast::<Map>();
        return entries
            .into_iter()
            .map(|(k, v)| Ok((k, dynamic(host, v)?)))
            .collect::<Result<Map, _>>()
            .map(Dynamic::from_map);
    }
    Ok(value)
}

/// Shadows each `&str` argument named by the string with its secrets put in.
macro_rules! reveal_str {
    ($ctx:expr, $host:expr; $($name:ident),+) => {$(
        let revealed = $crate::script::api::reveal::text(&$ctx, $host, $name)?;
        let $name: &str = &revealed;
    )+};
}
pub(crate) use reveal_str;
