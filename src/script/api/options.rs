//! Reading the `#{...}` option maps that registered functions take, rejecting unknown keys.

use std::time::Duration;

use rhai::{Dynamic, Map};

use super::ApiResult;

/// The keys of the option map each function takes, by the name scripts call it by: the one
/// list both the functions and editors (`weft lsp`) read.
pub const KEYS: &[(&str, &[&str])] = &[
    ("absent", &["always"]),
    (
        "acme_order",
        &[
            "domains",
            "out",
            "account_dir",
            "directory",
            "email",
            "ca",
            "timeout",
        ],
    ),
    ("archive", &["always"]),
    ("authorized_keys", &["state", "exclusive", "always"]),
    ("copy_tree", &["exclude", "always"]),
    ("cron", &["schedule", "command", "user", "state", "always"]),
    ("directory", &["mode", "owner", "group", "always"]),
    ("download", &["follow_links", "max_size"]),
    ("extract", &["always"]),
    (
        "file",
        &[
            "content",
            "mode",
            "owner",
            "group",
            "sensitive",
            "validate",
            "always",
        ],
    ),
    ("files", &["exclude"]),
    ("git", &["version", "key", "always"]),
    ("group", &["system", "state", "always"]),
    ("http", &["timeout", "method", "headers"]),
    ("line", &["regex", "sensitive", "always"]),
    ("link", &["always"]),
    ("list", &["order"]),
    ("lock", &["what", "wait", "force"]),
    ("load", &["into", "owner", "group", "mode"]),
    ("notify", &["manager", "config"]),
    ("packages", &["state", "always"]),
    ("pip", &["packages", "requirements", "always"]),
    ("rename", &["always"]),
    (
        "run",
        &[
            "allow_fail",
            "check",
            "check_safe",
            "quiet",
            "timeout",
            "stdin",
            "sudo",
            "always",
        ],
    ),
    ("run_goal", &["roles", "hosts"]),
    (
        "service",
        &[
            "state",
            "enabled",
            "manager",
            "config",
            "commands",
            "daemon_reload",
            "always",
        ],
    ),
    ("service_running", &["manager", "config", "commands"]),
    ("sync_dir", &["delete", "always"]),
    ("touch", &["always"]),
    ("tree_sum", &["exclude"]),
    (
        "template",
        &["mode", "owner", "group", "sensitive", "validate", "always"],
    ),
    ("unlock", &["force"]),
    ("upload", &["always"]),
    (
        "user",
        &[
            "shell", "home", "group", "groups", "system", "state", "always",
        ],
    ),
    ("virtualenv", &["python", "always"]),
    (
        "wait_until",
        &["timeout", "interval", "allow_fail", "check_safe"],
    ),
    ("write_file", &["mode", "always"]),
];

/// The option keys of `function` (none for a function without options).
pub fn keys(function: &str) -> &'static [&'static str] {
    KEYS.iter()
        .find(|(name, _)| *name == function)
        .map_or(&[], |(_, keys)| keys)
}

/// An option map whose keys were checked against the allowed ones.
pub struct Options {
    map: Map,
}

impl Options {
    /// Checks that `map` only has keys from `allowed`.
    pub fn new(map: Map, allowed: &[&str]) -> ApiResult<Self> {
        if let Some(bad) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "unknown option `{bad}`; options are {}",
                allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .into());
        }
        Ok(Options { map })
    }

    fn take(&mut self, key: &str) -> Option<Dynamic> {
        self.map.remove(key).filter(|v| !v.is_unit())
    }

    fn wrong(key: &str, wanted: &str, got: &Dynamic) -> Box<rhai::EvalAltResult> {
        format!("option `{key}` must be {wanted}, not {}", got.type_name()).into()
    }

    /// A boolean option.
    pub fn bool(&mut self, key: &str) -> ApiResult<Option<bool>> {
        self.take(key)
            .map(|v| {
                v.as_bool()
                    .map_err(|_| Self::wrong(key, "true or false", &v))
            })
            .transpose()
    }

    /// The `always` option every operation takes: run even after an interrupt.
    pub fn always(&mut self) -> ApiResult<bool> {
        Ok(self.bool("always")?.unwrap_or(false))
    }

    /// A string option.
    pub fn string(&mut self, key: &str) -> ApiResult<Option<String>> {
        self.take(key)
            .map(|v| {
                v.clone()
                    .into_string()
                    .map_err(|_| Self::wrong(key, "a string", &v))
            })
            .transpose()
    }

    /// A duration in seconds, integer or decimal.
    pub fn seconds(&mut self, key: &str) -> ApiResult<Option<Duration>> {
        self.take(key)
            .map(|v| {
                let secs = v
                    .as_int()
                    .map(|i| i as f64)
                    .or_else(|_| v.as_float())
                    .map_err(|_| Self::wrong(key, "a number of seconds", &v))?;
                Duration::try_from_secs_f64(secs)
                    .map_err(|_| Self::wrong(key, "a positive number of seconds", &v))
            })
            .transpose()
    }

    /// A file mode, written as an octal string (`"0644"`).
    pub fn mode(&mut self, key: &str) -> ApiResult<Option<u32>> {
        self.take(key)
            .map(|v| {
                let text = v
                    .clone()
                    .into_string()
                    .map_err(|_| Self::wrong(key, "an octal string such as \"0644\"", &v))?;
                u32::from_str_radix(&text, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| Self::wrong(key, "an octal string such as \"0644\"", &v))
            })
            .transpose()
    }

    /// A user to become: `true` is root, `false` nobody, a string names the user.
    pub fn user(&mut self, key: &str) -> ApiResult<Option<String>> {
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        if let Ok(flag) = value.as_bool() {
            return Ok(flag.then(|| "root".to_string()));
        }
        value
            .clone()
            .into_string()
            .map(Some)
            .map_err(|_| Self::wrong(key, "true, false or a user name", &value))
    }

    /// An array option.
    fn array(&mut self, key: &str) -> ApiResult<Option<rhai::Array>> {
        self.take(key)
            .map(|v| {
                v.clone()
                    .into_typed_array::<Dynamic>()
                    .map_err(|_| Self::wrong(key, "an array", &v))
            })
            .transpose()
    }

    /// A map-of-strings option.
    pub fn strings_map(
        &mut self,
        key: &str,
    ) -> ApiResult<Option<std::collections::BTreeMap<String, String>>> {
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        let map = value
            .clone()
            .try_cast::<Map>()
            .ok_or_else(|| Self::wrong(key, "a map", &value))?;
        map.into_iter()
            .map(|(k, v)| {
                v.clone()
                    .into_string()
                    .map(|text| (k.to_string(), text))
                    .map_err(|_| Self::wrong(&format!("{key}.{k}"), "a string", &v))
            })
            .collect::<ApiResult<_>>()
            .map(Some)
    }

    /// An array-of-strings option.
    pub fn strings(&mut self, key: &str) -> ApiResult<Option<Vec<String>>> {
        self.array(key)?
            .map(|list| strings(list, &format!("`{key}`")))
            .transpose()
    }
}

/// The items of `array` as strings; `what` names them in the error when one is not.
pub fn strings(array: rhai::Array, what: &str) -> ApiResult<Vec<String>> {
    array
        .into_iter()
        .map(|v| {
            v.clone()
                .into_string()
                .map_err(|_| format!("{what} must be strings, not {}", v.type_name()).into())
        })
        .collect()
}
