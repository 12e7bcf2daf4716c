//! The `#{...}` option maps registered functions take, one Rust struct per function: the
//! functions read them with `rhai::serde::from_dynamic`, and the option keys the checks and
//! editors complete, `weft doc` and the JSON schema (`weft doc --schema`) are made from the
//! same types.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use rhai::{Dynamic, EvalAltResult, LexError, Map, ParseErrorType};
use schemars::gen::SchemaGenerator;
use schemars::schema::{InstanceType, Schema, SchemaObject};
use schemars::JsonSchema;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use super::ApiResult;

/// The options of one function: read from a script's map, described by its schema.
pub trait OptionSet: DeserializeOwned + JsonSchema {
    /// The function that takes them, as scripts call it.
    const FUNCTION: &'static str;

    /// Rules across keys that the types cannot say; the message names the keys.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Reads `map` as the options of `T::FUNCTION`: an unknown key, a value of the wrong type or
/// a broken rule is an error naming the key and the function (a `()` value is no value).
pub fn read<T: OptionSet>(map: Map) -> ApiResult<T> {
    let function = T::FUNCTION;
    let allowed = keys(function);
    if let Some(bad) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        let help = crate::suggest::closest(bad, allowed)
            .first()
            .map_or_else(String::new, |close| format!("; did you mean `{close}`?"));
        return Err(format!(
            "{function}: unknown option `{bad}`; options are {}{help}",
            backticked(allowed)
        )
        .into());
    }
    let map: Map = map.into_iter().filter(|(_, v)| !v.is_unit()).collect();
    let options: T = match rhai::serde::from_dynamic(&Dynamic::from_map(map.clone())) {
        Ok(options) => options,
        Err(whole) => return Err(type_error::<T>(&map, &whole).into()),
    };
    options
        .check()
        .map_err(|why| format!("{function}: {why}"))?;
    Ok(options)
}

/// The key of `map` whose value `T` cannot take, with why: each key is tried alone, since
/// serde's errors do not say which field failed; a key in a nested map is named by its path
/// (`commands.status`).
fn type_error<T: OptionSet>(map: &Map, whole: &EvalAltResult) -> String {
    let function = T::FUNCTION;
    let fields = keys(function);
    let is_missing_field = |message: &str| {
        fields
            .iter()
            .any(|f| message.contains(&format!("missing field `{f}`")))
    };
    let try_alone = |key: &str, value: Dynamic| {
        let alone: Map = std::iter::once((key.into(), value)).collect();
        rhai::serde::from_dynamic::<T>(&Dynamic::from_map(alone)).map(|_| ())
    };
    for (key, value) in map {
        if let Err(e) = try_alone(key, value.clone()) {
            let why = reason(&e);
            if !is_missing_field(&why) {
                let (path, e) = match value.read_lock::<Map>() {
                    Some(nested) => {
                        let inside = |m: Map| try_alone(key, Dynamic::from_map(m));
                        match nested_error(&nested, &inside) {
                            Some((path, inner)) => (format!("{key}.{path}"), inner),
                            None => (key.to_string(), e),
                        }
                    }
                    None => (key.to_string(), e),
                };
                let why = reason(&e);
                return match &*e {
                    EvalAltResult::ErrorMismatchOutputType(wanted, got, _) => format!(
                        "{function}: option `{path}` must be {}, not {}",
                        wanted_type(wanted),
                        script_type(got)
                    ),
                    _ if why.starts_with("must be") => {
                        format!("{function}: option `{path}` {why}")
                    }
                    _ => format!("{function}: option `{path}`: {why}"),
                };
            }
        }
    }
    format!("{function}: {}", reason(whole))
}

/// The key of a nested map `read` refuses, with its error: each key tried alone inside the
/// map (`read` puts it back in its place), a missing field being only the keys left out.
fn nested_error(
    map: &Map,
    read: &dyn Fn(Map) -> Result<(), Box<EvalAltResult>>,
) -> Option<(String, Box<EvalAltResult>)> {
    for (key, value) in map {
        let alone: Map = std::iter::once((key.clone(), value.clone())).collect();
        let Err(e) = read(alone) else { continue };
        if reason(&e).starts_with("missing field `") {
            continue;
        }
        if let Some(nested) = value.read_lock::<Map>() {
            let key_ = key.clone();
            let inside = move |m: Map| {
                let alone: Map = std::iter::once((key_.clone(), Dynamic::from_map(m))).collect();
                read(alone)
            };
            if let Some((path, inner)) = nested_error(&nested, &inside) {
                return Some((format!("{key}.{path}"), inner));
            }
        }
        return Some((key.to_string(), e));
    }
    None
}

/// A Rust type serde asked for, as a script writes its values: an enum of the options is
/// its values, from the schema.
fn wanted_type(rust: &str) -> String {
    if rust.contains("Vec<") || rust == "array" {
        "an array of strings".into()
    } else if rust.contains("String") || rust.contains("str") {
        "a string".into()
    } else if rust == "bool" {
        "true or false".into()
    } else if rust.contains("Map") || rust == "map" {
        "a map".into()
    } else if let Some(values) = enum_values(rust.rsplit("::").next().unwrap_or(rust)) {
        format!("one of {}", backticked(&values))
    } else {
        rust.into()
    }
}

/// The values of the options' enum `name`, as the schema lists them.
fn enum_values(name: &str) -> Option<Vec<&'static str>> {
    static SCHEMA: LazyLock<serde_json::Value> = LazyLock::new(schema);
    let definition = SCHEMA.get("definitions")?.get(name)?;
    let one = |v: &'static serde_json::Value| -> Vec<&'static str> {
        v.get("enum")
            .and_then(|e| e.as_array())
            .map(|values| values.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default()
    };
    let values: Vec<&str> = match definition.get("oneOf").and_then(|o| o.as_array()) {
        Some(variants) => variants.iter().flat_map(one).collect(),
        None => one(definition),
    };
    (!values.is_empty()).then_some(values)
}

/// A value's type as scripts name it.
fn script_type(rhai: &str) -> &str {
    match rhai {
        "i64" | "i32" => "int",
        "f64" | "f32" => "float",
        other => other,
    }
}

/// The message of a serde error raised while reading a script value.
fn reason(error: &EvalAltResult) -> String {
    match error {
        EvalAltResult::ErrorParsing(
            ParseErrorType::BadInput(LexError::ImproperSymbol(_, why)),
            _,
        ) => why.clone(),
        other => other.to_string(),
    }
}

fn backticked(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The field names of a struct `T` reads, in declaration order: serde passes them to
/// `deserialize_struct`, where this deserializer stops with them.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    #[derive(Debug)]
    struct Found(&'static [&'static str]);
    impl std::fmt::Display for Found {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "fields {:?}", self.0)
        }
    }
    impl std::error::Error for Found {}
    impl serde::de::Error for Found {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Found(&[])
        }
    }
    struct Fields;
    impl<'de> Deserializer<'de> for Fields {
        type Error = Found;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(&[]))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found(fields))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    match T::deserialize(Fields) {
        Err(Found(fields)) => fields,
        Ok(_) => &[],
    }
}

/// One option key as `weft doc` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyDoc {
    /// The key.
    pub name: &'static str,
    /// Its doc comment.
    pub doc: String,
}

/// The options one function takes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FunctionOptions {
    /// The function, as scripts call it.
    pub function: &'static str,
    /// Its keys in declaration order.
    pub keys: Vec<&'static str>,
    /// Each key with its doc comment.
    pub docs: Vec<KeyDoc>,
}

fn describe<T: OptionSet>(generator: &mut SchemaGenerator) -> (FunctionOptions, Schema) {
    let root = generator.root_schema_for::<T>();
    let properties = root
        .schema
        .object
        .as_ref()
        .map(|o| o.properties.clone())
        .unwrap_or_default();
    let keys = field_names::<T>().to_vec();
    let docs = keys
        .iter()
        .map(|name| KeyDoc {
            name,
            doc: match properties.get(*name) {
                Some(Schema::Object(o)) => o
                    .metadata
                    .as_ref()
                    .and_then(|m| m.description.clone())
                    .unwrap_or_default(),
                _ => String::new(),
            },
        })
        .collect();
    let schema = generator.subschema_for::<T>();
    let options = FunctionOptions {
        function: T::FUNCTION,
        keys,
        docs,
    };
    (options, schema)
}

/// Lists every option struct once: the table, the docs and the schema all come from here.
macro_rules! option_sets {
    ($($t:ty),* $(,)?) => {
        fn describe_all(generator: &mut SchemaGenerator) -> Vec<(FunctionOptions, Schema)> {
            vec![$(describe::<$t>(generator)),*]
        }
    };
}

option_sets![
    AbsentOptions,
    ExistsOptions,
    AcmeOrderOptions,
    ArchiveOptions,
    AuthorizedKeysOptions,
    CopyTreeOptions,
    CronOptions,
    DirectoryOptions,
    DownloadOptions,
    ExtractOptions,
    FileOptions,
    FilesOptions,
    GitOptions,
    GroupOptions,
    HttpOptions,
    LineOptions,
    LinkOptions,
    ListOptions,
    LoadOptions,
    LockOptions,
    NotifyOptions,
    PackagesOptions,
    PipOptions,
    RenameOptions,
    RunCommandOptions,
    RunGoalOptions,
    ServiceOptions,
    ServiceRunningOptions,
    SyncDirOptions,
    TemplateOptions,
    TouchOptions,
    TreeSumOptions,
    UnlockOptions,
    UploadOptions,
    UserOptions,
    VirtualenvOptions,
    WaitUntilOptions,
    WriteFileOptions,
];

static TABLE: LazyLock<Vec<FunctionOptions>> = LazyLock::new(|| {
    describe_all(&mut SchemaGenerator::default())
        .into_iter()
        .map(|(options, _)| options)
        .collect()
});

/// Every function's options, by function name.
pub fn table() -> &'static [FunctionOptions] {
    &TABLE
}

/// The option keys of `function` (none for a function without options).
pub fn keys(function: &str) -> &'static [&'static str] {
    TABLE
        .iter()
        .find(|o| o.function == function)
        .map_or(&[], |o| o.keys.as_slice())
}

/// The options of `function` with their docs, when it takes any.
pub fn of(function: &str) -> Option<&'static FunctionOptions> {
    TABLE.iter().find(|o| o.function == function)
}

/// The JSON schema of every function's option map: `properties` by function name, the
/// shared types under `definitions` (`weft doc --schema`).
pub fn schema() -> serde_json::Value {
    let mut generator = SchemaGenerator::default();
    let functions: BTreeMap<&str, Schema> = describe_all(&mut generator)
        .into_iter()
        .map(|(options, schema)| (options.function, schema))
        .collect();
    let definitions = generator.definitions().clone();
    serde_json::json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "weft script options",
        "description": "The option map (`#{...}`) of each function weft registers for scripts, by function name.",
        "type": "object",
        "properties": functions,
        "definitions": definitions,
    })
}

// ---- value types shared by several functions ----

/// A file mode, written as an octal string (`"0644"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wrong = |got: &str| {
            D::Error::custom(format!(
                "must be an octal string such as \"0644\", not {got}"
            ))
        };
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(text) => u32::from_str_radix(&text, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .map(Mode)
                .ok_or_else(|| wrong(&format!("\"{text}\""))),
            other => Err(wrong(json_type(&other))),
        }
    }
}

impl JsonSchema for Mode {
    fn schema_name() -> String {
        "Mode".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut schema = SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            ..Default::default()
        };
        schema.string().pattern = Some("^[0-7]{1,4}$".into());
        schema.metadata().description = Some("A file mode in octal, such as \"0644\".".into());
        schema.into()
    }
}

/// A duration in seconds, integer or decimal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        value
            .as_f64()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .map(Seconds)
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "must be a positive number of seconds, not {}",
                    json_type(&value)
                ))
            })
    }
}

impl JsonSchema for Seconds {
    fn schema_name() -> String {
        "Seconds".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut schema = SchemaObject {
            instance_type: Some(InstanceType::Number.into()),
            ..Default::default()
        };
        schema.number().minimum = Some(0.0);
        schema.metadata().description = Some("Seconds, integer or decimal.".into());
        schema.into()
    }
}

/// A user to become: `true` is root, `false` nobody, a string names the user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Become(pub Option<String>);

impl<'de> Deserialize<'de> for Become {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(flag) => Ok(Become(flag.then(|| "root".to_string()))),
            serde_json::Value::String(name) => Ok(Become(Some(name))),
            other => Err(D::Error::custom(format!(
                "must be true, false or a user name, not {}",
                json_type(&other)
            ))),
        }
    }
}

impl JsonSchema for Become {
    fn schema_name() -> String {
        "Become".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut schema = SchemaObject {
            instance_type: Some(vec![InstanceType::Boolean, InstanceType::String].into()),
            ..Default::default()
        };
        schema.metadata().description =
            Some("`true` for root, `false` for nobody, or a user name.".into());
        schema.into()
    }
}

/// How a script names a JSON value's type, in errors.
fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "()",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(n) if n.is_f64() => "float",
        serde_json::Value::Number(_) => "int",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "map",
    }
}

/// `present` or `absent`: packages, users, groups, cron entries, authorized keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// It exists.
    #[default]
    Present,
    /// It does not.
    Absent,
}

/// What packages should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackagesState {
    /// Installed, any version.
    #[default]
    Present,
    /// Not installed.
    Absent,
    /// Installed at the newest version the index knows.
    Latest,
}

/// What a service should be, or do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Running.
    Started,
    /// Not running.
    Stopped,
    /// Restarted now (started if it was not running).
    Restarted,
    /// Made to read its config again now.
    Reloaded,
}

/// What `exists` asks to be at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    /// A regular file, or a link to one (`test -f`).
    File,
    /// A folder, or a link to one (`test -d`).
    Folder,
}

/// The options of `exists`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExistsOptions {
    /// `file` or `folder`: true only when that is there (links followed); anything by default.
    #[serde(default)]
    pub kind: Option<PathKind>,
}

/// The order `list` returns names in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListOrder {
    /// By name, byte by byte.
    #[default]
    Name,
    /// By modification time, oldest first.
    Time,
}

/// The shell commands that drive a daemon on a host without an init system.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DaemonCommandsOption {
    /// Starts it in the background.
    pub start: String,
    /// Stops it, returning once it is gone.
    pub stop: String,
    /// Makes it read its config again.
    pub reload: String,
    /// Exits 0 when it runs.
    pub status: String,
}

// ---- one struct per function ----

/// Declares the options of functions whose one option is `always`.
macro_rules! always_only {
    ($($name:ident => $function:literal),* $(,)?) => {$(
        #[doc = concat!("The options of `", $function, "`.")]
        #[derive(Debug, Default, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Run even after Ctrl-C, for cleanup such as switching a link back.
            #[serde(default)]
            pub always: bool,
        }
        impl OptionSet for $name {
            const FUNCTION: &'static str = $function;
        }
    )*};
}

always_only![
    AbsentOptions => "absent",
    ArchiveOptions => "archive",
    ExtractOptions => "extract",
    LinkOptions => "link",
    RenameOptions => "rename",
    TouchOptions => "touch",
    UploadOptions => "upload",
];

/// Implements `OptionSet` for each struct, naming its function.
macro_rules! functions {
    ($($name:ident => $function:literal),* $(,)?) => {$(
        impl OptionSet for $name {
            const FUNCTION: &'static str = $function;
        }
    )*};
}

functions![
    AcmeOrderOptions => "acme_order",
    AuthorizedKeysOptions => "authorized_keys",
    DirectoryOptions => "directory",
    DownloadOptions => "download",
    FileOptions => "file",
    GitOptions => "git",
    GroupOptions => "group",
    LineOptions => "line",
    ListOptions => "list",
    ExistsOptions => "exists",
    LockOptions => "lock",
    LoadOptions => "load",
    NotifyOptions => "notify",
    PackagesOptions => "packages",
    PipOptions => "pip",
    RunCommandOptions => "run",
    RunGoalOptions => "run_goal",
    ServiceOptions => "service",
    ServiceRunningOptions => "service_running",
    SyncDirOptions => "sync_dir",
    TemplateOptions => "template",
    UnlockOptions => "unlock",
    UserOptions => "user",
    VirtualenvOptions => "virtualenv",
    WaitUntilOptions => "wait_until",
    WriteFileOptions => "write_file",
];

/// The options of `file`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileOptions {
    /// The exact text; without it an existing file's content is kept and a missing one is
    /// created empty.
    pub content: Option<String>,
    /// The file's mode, such as `"0644"`.
    pub mode: Option<Mode>,
    /// The owning user.
    pub owner: Option<String>,
    /// The owning group.
    pub group: Option<String>,
    /// Never show the content, in diffs or logs.
    #[serde(default)]
    pub sensitive: bool,
    /// A command, as an array, that must accept the new content before it replaces the file:
    /// `%s` in it is the path of a staged copy; without `%s` the command runs where the
    /// file's folder looks as it will, in a mount namespace of its own.
    pub validate: Option<Vec<String>>,
    /// Write it even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `template` (with `vars`): those of `file` but `content`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateOptions {
    /// The file's mode, such as `"0644"`.
    pub mode: Option<Mode>,
    /// The owning user.
    pub owner: Option<String>,
    /// The owning group.
    pub group: Option<String>,
    /// Never show the rendered text, in diffs or logs.
    #[serde(default)]
    pub sensitive: bool,
    /// The daemon's config check, as for `file`: a command (an array) that must accept the
    /// new file before it replaces the live one.
    pub validate: Option<Vec<String>>,
    /// Write it even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `directory`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryOptions {
    /// The folder's mode, such as `"0755"`.
    pub mode: Option<Mode>,
    /// The owning user.
    pub owner: Option<String>,
    /// The owning group.
    pub group: Option<String>,
    /// Make it even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `line`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineOptions {
    /// The first line matching this regular expression is replaced.
    pub regex: Option<String>,
    /// Never show the line, in diffs or logs.
    #[serde(default)]
    pub sensitive: bool,
    /// Write it even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `sync_dir`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncDirOptions {
    /// Also remove the files the local folder does not have (default `false`).
    #[serde(default)]
    pub delete: bool,
    /// Copy even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `write_file`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileOptions {
    /// The file's mode, such as `"0644"`.
    pub mode: Option<Mode>,
    /// Write it even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `download`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DownloadOptions {
    /// Copy what links point to, anywhere the login user can read; a link back into a folder
    /// already copied is still skipped.
    pub follow_links: Option<bool>,
    /// The most this download copies, such as `"500M"` or `"20G"` (10 GiB by default).
    pub max_size: Option<String>,
}

/// The options of `load`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadOptions {
    /// A path on the host that what the command leaves as `new` replaces.
    pub into: Option<String>,
    /// The user that owns what replaces `into`.
    pub owner: Option<String>,
    /// The group that owns what replaces `into`.
    pub group: Option<String>,
    /// The mode of what replaces `into`, such as `"0660"`.
    pub mode: Option<Mode>,
}

/// The options of `packages`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackagesOptions {
    /// `present` (default), `absent` or `latest`.
    #[serde(default)]
    pub state: PackagesState,
    /// Install them even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `user`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserOptions {
    /// The login shell.
    pub shell: Option<String>,
    /// The home folder.
    pub home: Option<String>,
    /// The primary group.
    pub group: Option<String>,
    /// Supplementary groups, added to those the user has.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A system account.
    #[serde(default)]
    pub system: bool,
    /// `present` (default) or `absent`.
    #[serde(default)]
    pub state: Presence,
    /// Make it even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `group`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupOptions {
    /// A system group.
    #[serde(default)]
    pub system: bool,
    /// `present` (default) or `absent`.
    #[serde(default)]
    pub state: Presence,
    /// Make it even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `authorized_keys`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedKeysOptions {
    /// `present` (default) or `absent`.
    #[serde(default)]
    pub state: Presence,
    /// The keys are the whole set: others are removed.
    #[serde(default)]
    pub exclusive: bool,
    /// Write them even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `service`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceOptions {
    /// `started`, `stopped`, `restarted` or `reloaded`.
    pub state: Option<ServiceState>,
    /// Start it at boot (left alone without an init system, where nothing starts at boot).
    pub enabled: Option<bool>,
    /// `systemd`, `supervisor`, `runit` or `direct` (the daemon's own `commands`, on hosts
    /// without an init system); when absent, systemd if the `init` fact says so, else
    /// `direct` when `commands` are given, else supervisor or runit.
    pub manager: Option<String>,
    /// Supervisor's config file, when it is not where `supervisorctl` looks.
    pub config: Option<String>,
    /// `#{ start, stop, reload, status }`: the daemon's own shell commands, used without an
    /// init system.
    pub commands: Option<DaemonCommandsOption>,
    /// systemd: run `systemctl daemon-reload` first when systemd says the unit's files
    /// changed since it read them, or it has not loaded the unit yet; other managers ignore
    /// it.
    #[serde(default)]
    pub daemon_reload: bool,
    /// Act even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `service_running`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceRunningOptions {
    /// The manager to ask, as for `service`.
    pub manager: Option<String>,
    /// Supervisor's config file, as for `service`.
    pub config: Option<String>,
    /// The daemon's own commands, as for `service` (its `status` answers).
    pub commands: Option<DaemonCommandsOption>,
}

/// The options of `notify`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyOptions {
    /// The manager that runs the action, as for `service`.
    pub manager: Option<String>,
    /// Supervisor's config file, as for `service`.
    pub config: Option<String>,
    /// The daemon's own commands, as for `service`, on hosts without an init system.
    pub commands: Option<DaemonCommandsOption>,
    /// Run the action at the end of the goal even after Ctrl-C, the host's deadline or an
    /// earlier action's failure.
    #[serde(default)]
    pub always: bool,
}

/// The options of `cron`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CronOptions {
    /// When it runs: five fields (`"15 3 * * *"`) or `@daily` and its kin; required unless
    /// `state` is `absent`.
    pub schedule: Option<String>,
    /// The shell command it runs; required unless `state` is `absent`.
    pub command: Option<String>,
    /// The user it runs as (default `root`).
    pub user: Option<String>,
    /// `present` (default) or `absent`.
    #[serde(default)]
    pub state: Presence,
    /// Write it even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

impl OptionSet for CronOptions {
    const FUNCTION: &'static str = "cron";

    fn check(&self) -> Result<(), String> {
        let missing = cron_missing(
            self.state == Presence::Absent,
            self.schedule.as_deref().is_some_and(|s| !s.is_empty()),
            self.command.as_deref().is_some_and(|c| !c.is_empty()),
        );
        match missing.as_slice() {
            [] => Ok(()),
            [key] => Err(format!(
                "option `{key}` is required (unless `state: \"absent\"`)"
            )),
            keys => Err(format!(
                "options {} are required (unless `state: \"absent\"`)",
                backticked(keys).replace(", ", " and ")
            )),
        }
    }
}

/// The keys a `cron` call lacks: `schedule` and `command` unless the entry is to be absent.
/// The script checks (`check.rs`) ask it too, to report a call before it runs.
pub fn cron_missing(absent: bool, schedule: bool, command: bool) -> Vec<&'static str> {
    if absent {
        return Vec::new();
    }
    [("schedule", schedule), ("command", command)]
        .into_iter()
        .filter(|(_, given)| !given)
        .map(|(key, _)| key)
        .collect()
}

/// The options of `git`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitOptions {
    /// The branch, tag or commit (default `main`).
    pub version: Option<String>,
    /// A deploy key file on the host.
    pub key: Option<String>,
    /// Check it out even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `virtualenv`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VirtualenvOptions {
    /// The Python that makes it (default `python3`).
    pub python: Option<String>,
    /// Make it even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `pip`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipOptions {
    /// Requirement strings, or paths on the host of a project folder, sdist or wheel (which
    /// are always installed).
    #[serde(default)]
    pub packages: Vec<String>,
    /// A requirements file on the host.
    pub requirements: Option<String>,
    /// Install even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

/// The options of `run`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCommandOptions {
    /// `false` (default): a non-zero exit fails the goal; `true` returns it.
    pub allow_fail: Option<bool>,
    /// Deprecated: `check: false` is `allow_fail: true`.
    pub check: Option<bool>,
    /// The command only reads, so it also runs under `--check` (default `false`).
    pub check_safe: Option<bool>,
    /// Hide the output (default `false`).
    pub quiet: Option<bool>,
    /// Seconds the command may take.
    pub timeout: Option<Seconds>,
    /// Text to feed it.
    pub stdin: Option<String>,
    /// `true` for root, or a user name: run it through sudo as that user.
    pub sudo: Option<Become>,
    /// Run it even after Ctrl-C, for cleanup such as a lock (default `false`).
    pub always: Option<bool>,
}

/// The options of `wait_until`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitUntilOptions {
    /// Seconds to wait in all (default 30).
    pub timeout: Option<Seconds>,
    /// Seconds between tries (default 1).
    pub interval: Option<Seconds>,
    /// Return `false` when the time is up, instead of failing the goal.
    #[serde(default)]
    pub allow_fail: bool,
    /// The check only reads: try it under `--check` too.
    #[serde(default)]
    pub check_safe: bool,
}

/// The options of `lock`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockOptions {
    /// What it is taken for, shown to whoever finds it held (default empty).
    pub what: Option<String>,
    /// Seconds to wait for the holder to release it, checked every second (default 0: fail
    /// at once).
    pub wait: Option<Seconds>,
    /// Take it even from another run, as `--break-lock` does: the holder is logged, and
    /// recorded with the time in `breaks.log` of the lock folder.
    #[serde(default)]
    pub force: bool,
}

/// The options of `unlock`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockOptions {
    /// Remove it whoever holds it, recording whose it was in `breaks.log` of the lock folder.
    #[serde(default)]
    pub force: bool,
}

/// The options of `list`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListOptions {
    /// `name` (default) or `time` (by modification time, oldest first).
    #[serde(default)]
    pub order: ListOrder,
}

/// The options of `run_goal`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunGoalOptions {
    /// Run it on the hosts of these roles, as `-r` does.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Run it on these hosts, as `-H` does.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Return `false` when it failed somewhere, instead of throwing an `OpError`.
    #[serde(default)]
    pub allow_fail: bool,
}

/// The options of `acme_order`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcmeOrderOptions {
    /// The names to certify, lowercase.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Where the chain, then the new key, are written (mode 0600), inside the project's
    /// `.weft/secrets`; required.
    pub out: Option<String>,
    /// Where the account is kept, one file per directory (mode 0600), inside the project's
    /// `.weft/secrets`; required.
    pub account_dir: Option<String>,
    /// `"production"`, `"staging"` or an https URL of an ACME directory.
    pub directory: Option<String>,
    /// The account's contact address.
    pub email: Option<String>,
    /// A PEM of the roots to trust for the ACME server instead of the system's.
    pub ca: Option<String>,
    /// Seconds the server may take to validate (default 120).
    pub timeout: Option<Seconds>,
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

/// The options of `copy_tree`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyTreeOptions {
    /// Names of files or folders left out at any depth, such as `[".git"]`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Copy even after Ctrl-C.
    #[serde(default)]
    pub always: bool,
}

impl OptionSet for CopyTreeOptions {
    const FUNCTION: &'static str = "copy_tree";

    fn check(&self) -> Result<(), String> {
        check_exclude(&self.exclude)
    }
}

/// The options of `tree_sum`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TreeSumOptions {
    /// Names of files or folders left out of the sum at any depth, such as `[".git"]`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Names of files or folders left out only directly in the folder, such as `[".git"]`
    /// (a `.git` deeper down is summed).
    #[serde(default)]
    pub exclude_top: Vec<String>,
    /// Text hashed before the files' lines, so that one sum covers it and the files.
    #[serde(default)]
    pub header: String,
}

impl OptionSet for TreeSumOptions {
    const FUNCTION: &'static str = "tree_sum";

    fn check(&self) -> Result<(), String> {
        check_exclude(&self.exclude)?;
        check_exclude(&self.exclude_top).map_err(|e| e.replacen("exclude:", "exclude_top:", 1))?;
        if self.header.contains('\0') {
            return Err("header: a NUL cannot be hashed on the host".into());
        }
        Ok(())
    }
}

/// The options of `files`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesOptions {
    /// Names of files or folders left out at any depth, such as `[".git"]`.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl OptionSet for FilesOptions {
    const FUNCTION: &'static str = "files";

    fn check(&self) -> Result<(), String> {
        check_exclude(&self.exclude)
    }
}

/// An `exclude` name that is not a file name (empty, or with `/` or NUL in it): the names
/// are matched at any depth, so a path could never match.
fn check_exclude(names: &[String]) -> Result<(), String> {
    match names
        .iter()
        .find(|n| n.is_empty() || n.contains('/') || n.contains('\0'))
    {
        Some(bad) => Err(format!("exclude: `{bad}` is not a file name (no `/`)")),
        None => Ok(()),
    }
}

/// The options of `http`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpOptions {
    /// Seconds the whole request may take, connecting included (default 10).
    pub timeout: Option<Seconds>,
    /// The HTTP method, `"GET"` (the default) or `"HEAD"` (the headers only): a probe asks,
    /// it changes nothing.
    pub method: Option<String>,
    /// Request headers, a map of names to one-line values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl OptionSet for HttpOptions {
    const FUNCTION: &'static str = "http";

    fn check(&self) -> Result<(), String> {
        if let Some(method) = &self.method {
            crate::exec::ops::probes::check_method(&method.to_ascii_uppercase())?;
        }
        if self.timeout.is_some_and(|t| t.0.is_zero()) {
            return Err("option `timeout` must be more than 0 seconds".into());
        }
        let multiline = |t: &str| t.contains(['\r', '\n']);
        match self
            .headers
            .iter()
            .find(|(n, v)| n.is_empty() || n.contains(':') || multiline(n) || multiline(v))
        {
            Some((name, _)) => Err(format!(
                "headers: `{name}` is not a header name with a one-line value"
            )),
            None => Ok(()),
        }
    }
}
