//! The reference of every registered function, from its doc comment: for `weft doc` and editors.

use rhai::Engine;

use super::engine::ScriptEngine;

/// The topics of `weft doc TOPIC`, each with the functions it covers, in reading order.
pub const TOPICS: &[(&str, &[&str])] = &[
    ("host", &["name", "address", "roles", "vars", "run"]),
    (
        "facts",
        &[
            "facts",
            "refresh_facts",
            "fact",
            "exists",
            "readlink",
            "list",
            "checksum",
            "verify",
            "tree_sum",
            "files",
            "realpath",
            "http",
            "git_revision",
        ],
    ),
    ("locks", &["lock", "unlock", "lock_owner", "wait_until"]),
    (
        "files",
        &[
            "file",
            "directory",
            "link",
            "absent",
            "line",
            "template",
            "render",
            "read_file",
            "write_file",
            "upload",
            "download",
            "sync_dir",
            "touch",
            "rename",
            "copy_tree",
        ],
    ),
    ("dumps", &["dump", "load", "verify_dump", "list_local"]),
    ("packages", &["packages"]),
    ("users", &["user", "group", "authorized_keys"]),
    ("services", &["service", "service_running", "notify"]),
    ("cron", &["cron"]),
    ("git", &["git"]),
    ("python", &["virtualenv", "pip"]),
    ("archives", &["archive", "extract"]),
    (
        "errors",
        &[
            "kind",
            "message",
            "code",
            "host",
            "command",
            "source",
            "line",
            "column",
            "to_string",
            "to_debug",
        ],
    ),
    (
        "global",
        &[
            "quote",
            "log",
            "env",
            "secret",
            "secret_env",
            "secret_file",
            "controller",
            "sha256",
            "utc_stamp",
        ],
    ),
    (
        "env",
        &[
            "machines",
            "create_machines",
            "terminate_machine",
            "terminate_machines",
            "env_spec",
            "goal_exists",
            "run_goal",
            "reachable",
            "confirm",
            "virtual_ip",
            "acme_order",
            "acme_renewal",
        ],
    ),
];

/// What holds across the API, at the top of the reference.
const CONVENTIONS: &str = "
## Conventions

- **The one rule of the API**: positional arguments name the thing (`host.file(path)`,
  `host.service(name)`, `host.cron(name)`), and the option map says the state wanted of it
  (`#{ content, mode }`, `#{ state: \"started\" }`, `#{ schedule, command }`). Options
  shared by many functions keep one name and one meaning everywhere: `always` (run even
  after Ctrl-C), `timeout` and `interval` (seconds), `quiet` (hide the output),
  `check_safe` (it only reads, so it runs under `--check` too), `allow_fail` (return
  `false` or the exit code instead of failing the goal), `state` (see below), and `manager`,
  `config` and `commands` (how a service is driven, for `service`, `service_running` and
  `notify`). Each function's keys are listed with it, below, and `weft doc --schema`
  prints them all as a JSON schema. A key the function does not take, or a value of the
  wrong type, fails the call on its line, naming the key, the function and the keys it
  takes, before anything reaches the host; a key the call requires (`cron`'s `schedule`
  and `command`) is checked there too, also under `--check`.
- **Types** read as scripts see them: `string`, `int`, `float`, `bool`, `map`, `array`,
  `Host`, `OpError` (a failed step, see Errors), `Fn` (a closure, `|x| ...`), `()`
  (nothing), `Dynamic` (any).
  Properties read `Host.name -> type`.
- **Option maps can be left out** wherever every option has a default (`host.file(path)`,
  `host.group(name)`, `host.git(repo, dest)`, ...): the short form is the same call with
  `#{}`. `service`, `cron` and `pip` need theirs, because they say what to do.
- **Operations return `true` when they changed the host** (under `--check`: when they would
  change it), `false` when it already was as wanted.
- **`--check`** runs nothing that changes a host: operations report `would change`, and
  `run` skips commands unless the option `check_safe: true` says they only read. A skipped
  `run` returns `#{ skipped: true, code: (), stdout: \"\", stderr: \"\" }`: no exit code, so
  it never reads as a success; test `r.skipped` before `r.code` (`if !r.skipped && r.code != 0`).
- **A failed command fails the goal**; `run(cmd, #{ allow_fail: true })` returns
  `#{stdout, stderr, code, skipped}` instead. The old spelling `check: false` still works for
  this release, with a deprecation warning.
- **`always: true`** is an option of `run` and of every operation (`file`, `link`, `absent`,
  `extract`, `service`, `upload`, ...): it runs even after Ctrl-C, for cleanup such as
  switching a link back or releasing a lock.
- **`state` values** by family: packages, users, groups, cron entries and authorized keys take
  `present`/`absent` (packages also `latest`); services take `started`, `stopped`,
  `restarted`, `reloaded`; `notify` takes the verbs `reload`/`restart`.
- **Facts** are read once per goal: `host.facts` costs one round trip, later reads none;
  `host.refresh_facts()` reads them again.
- **Controller functions** (`machines`, `create_machines`, `terminate_machine`, `env_spec`,
  `goal_exists`, `run_goal`, `reachable`, `controller`, `acme_order`) work in goals without a `host`
  parameter; called from a host goal they fail with a message that says so. `virtual_ip`
  works in both.
- **Errors**: a host step that fails (a command exiting non-zero, a `validate` command
  rejecting a file, an operation refusing) throws an `OpError`; `catch (err)` reads
  `err.kind` (`command`, `rejected`, `operation`, ...), `err.message`, `err.code` (the exit
  code, `()` when no command failed), `err.host`, `err.command` and where the failed call is
  (`err.source`, `err.line`, `err.column`), and `${err}` is the message. What a script
  `throw`s is caught as thrown.
- **`env()`** is weft's env (name, vars, hosts, roles), not the process environment.
";

/// The topic a function belongs to: `errors` for what `OpError` has (its `line` is not
/// `host.line`), else the first topic naming it.
pub fn topic_of(f: &FnDoc) -> &'static str {
    let of_error = f.signature.starts_with("OpError.") || f.signature.contains("(err: OpError");
    TOPICS
        .iter()
        .filter(|(topic, _)| (*topic == "errors") == of_error)
        .find(|(_, names)| names.contains(&f.name.as_str()))
        .map_or("other", |(topic, _)| topic)
}

/// The JSON schema of every function's option map, by function name (`weft doc --schema`).
pub fn options_schema() -> serde_json::Value {
    super::api::options::schema()
}

/// The whole reference as Markdown, by topic (`docs/reference.md`).
pub fn markdown() -> String {
    let all = functions();
    let mut out = String::from(
        "# weft script reference\n\nGenerated by `weft doc --markdown` from the doc comments of the registered\nfunctions; `weft doc TOPIC` prints one topic.\n",
    );
    out.push_str(CONVENTIONS);
    for (topic, names) in TOPICS {
        out.push_str(&format!("\n## {topic}\n"));
        for name in *names {
            for f in all
                .iter()
                .filter(|f| f.name == *name && topic_of(f) == *topic)
            {
                out.push_str(&format!("\n### `{}`\n\n{}\n", f.signature, f.doc));
            }
        }
    }
    out
}

/// One registered function, as `weft doc` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FnDoc {
    /// Its name (`run`, or `get$name` shown as the property `name`).
    pub name: String,
    /// Its signature with parameter types.
    pub signature: String,
    /// Its doc comment without the slashes.
    pub doc: String,
}

fn api_engine() -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(ScriptEngine::api_module());
    engine
}

/// Every function weft registers, sorted by name then signature.
pub fn functions() -> Vec<FnDoc> {
    let engine = api_engine();
    let mut docs = engine.collect_fn_metadata(
        None,
        |info| {
            let meta = info.metadata;
            let signature = meta.gen_signature(|t| t.into());
            let name = meta.name.to_string();
            let mut signature = readable_types(&signature);
            // Every signature says what it returns, `()` included, as the definitions do.
            if !signature.contains(" -> ") {
                signature.push_str(" -> ()");
            }
            let (name, signature) = match name.strip_prefix("get$") {
                Some(prop) => {
                    let returns = signature.rsplit_once(" -> ").map_or("Dynamic", |(_, r)| r);
                    // The property's owner is the type of its one parameter.
                    let owner = signature
                        .split_once(": ")
                        .and_then(|(_, rest)| rest.split([')', ',']).next())
                        .map_or("Host", |t| t.trim_start_matches("&mut ").trim());
                    (prop.to_string(), format!("{owner}.{prop} -> {returns}"))
                }
                None => (name, signature),
            };
            let doc = meta
                .comments
                .iter()
                .flat_map(|c| c.lines())
                .map(|l| {
                    let l = l.trim().trim_start_matches("///");
                    l.strip_prefix(' ').unwrap_or(l).to_string()
                })
                .collect::<Vec<_>>()
                .join("\n");
            let mut doc = doc.trim().to_string();
            if signature.contains("options: map") {
                doc.push_str(&options_doc(&name));
            }
            Some(FnDoc {
                name,
                signature,
                doc,
            })
        },
        false,
    );
    docs.sort_by(|a, b| a.name.cmp(&b.name).then(a.signature.cmp(&b.signature)));
    docs
}

/// The option keys of `function` with their docs, from its option struct
/// (`api/options.rs`), as the lines that end its doc.
fn options_doc(function: &str) -> String {
    let Some(options) = super::api::options::of(function) else {
        return String::new();
    };
    let mut out = String::from("\n\nOptions:");
    for key in &options.docs {
        let doc = key.doc.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push_str(&format!("\n- `{}`: {doc}", key.name));
    }
    out
}

/// What `print(value)` does in weft: Rhai's `print` is a keyword, with no doc comment of its
/// own to read; the engine sends it to the goal's log (`engine.rs`, `on_print`).
const PRINT_DOC: &str = "Prints a value under the current host's prefix (or `controller`), like `log`.\n\n```rhai\nprint(`deploying ${version}`);\n```\n(Rhai's `print`, which weft sends to the goal's log)";

/// The functions of Rhai's standard library called `name` (`parse_json`, `to_json`, `len`,
/// ...), which every script may call too, each with its doc comment and where it comes from.
pub fn standard(name: &str) -> Vec<FnDoc> {
    if name == "print" {
        return vec![FnDoc {
            name: name.into(),
            signature: "print(value: Dynamic) -> ()".into(),
            doc: PRINT_DOC.into(),
        }];
    }
    let engine = Engine::new();
    let mut docs = engine.collect_fn_metadata(
        None,
        |info| {
            let meta = info.metadata;
            if meta.name != name {
                return None;
            }
            let mut signature = readable_types(&meta.gen_signature(|t| t.into()));
            if !signature.contains(" -> ") {
                signature.push_str(" -> ()");
            }
            Some(FnDoc {
                name: meta.name.to_string(),
                signature,
                doc: format!(
                    "{}\n(Rhai's standard library)",
                    super::set::doc_text(
                        &meta
                            .comments
                            .iter()
                            .map(AsRef::as_ref)
                            .collect::<Vec<&str>>(),
                    )
                ),
            })
        },
        true,
    );
    docs.sort_by(|a, b| a.signature.cmp(&b.signature));
    docs.dedup_by(|a, b| a.signature == b.signature);
    docs
}

/// The script functions called `name` in the project's layers (goals and the helpers of
/// `lib/`, such as `app_settings`), each with its doc comment and the file that defines it.
pub fn script_functions(scripts: &super::ScriptSet, name: &str) -> Vec<(FnDoc, String)> {
    let mut found = Vec::new();
    for script in scripts.all() {
        for f in script.functions.iter().filter(|f| f.name == name) {
            let doc = FnDoc {
                name: name.to_string(),
                signature: format!("{name}({})", f.params.join(", ")),
                doc: f.doc.clone(),
            };
            found.push((doc, script.file.display_name()));
        }
    }
    found
}

/// Rhai definition files for editors and language servers (`editors/weft.d.rhai`).
pub fn definitions() -> String {
    let text = api_engine()
        .definitions()
        .include_standard_packages(false)
        .single_file();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        // Only signatures: doc comments keep their words.
        if let Some(rest) = line.strip_prefix("fn ") {
            if line.contains("options: Map") || line.contains("options: map") {
                let name = rest.split('(').next().unwrap_or_default();
                for doc_line in options_doc(name).lines() {
                    out.push_str(format!("/// {doc_line}").trim_end());
                    out.push('\n');
                }
            }
            out.push_str(&readable_types(line));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Shows types as scripts see them, in one vocabulary: fallible functions by what they return
/// (`Result<T, Box<EvalAltResult>>` is `T`), Rust paths by their last name, and Rhai's own
/// names for its types (`string`, `int`, `float`, `bool`, `map`, `array`, `Fn`; an untyped `?` is
/// `Dynamic`).
fn readable_types(text: &str) -> String {
    let unwrapped = unwrap_results(text);
    let mut out = String::with_capacity(unwrapped.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            let last = word.rsplit("::").next().unwrap_or(word.as_str());
            out.push_str(match last {
                "Map" => "map",
                "Array" => "array",
                "String" | "ImmutableString" | "str" => "string",
                "i64" | "INT" => "int",
                "f64" | "FLOAT" => "float",
                "FnPtr" => "Fn",
                other => other,
            });
            word.clear();
        }
    };
    for c in unwrapped.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out.replace("&mut ", "")
        .replace('&', "")
        .replace("-> ?", "-> Dynamic")
        .replace(": ?", ": Dynamic")
}

/// `Result<T, E>` → `T`, for any spelling of the error type and nested generics in `T`.
fn unwrap_results(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("Result<") {
        out.push_str(&rest[..at]);
        let inner = &rest[at + "Result<".len()..];
        let (mut depth, mut comma, mut end) = (0usize, None, None);
        for (i, c) in inner.char_indices() {
            match c {
                '<' => depth += 1,
                '>' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                '>' => depth -= 1,
                ',' if depth == 0 && comma.is_none() => comma = Some(i),
                _ => {}
            }
        }
        match (comma, end) {
            (Some(comma), Some(end)) => {
                out.push_str(&unwrap_results(inner[..comma].trim()));
                rest = &inner[end + 1..];
            }
            _ => {
                out.push_str("Result<");
                rest = inner;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{functions, readable_types, topic_of, TOPICS};

    #[test]
    fn every_registered_function_has_a_doc_comment_and_a_topic() {
        let all = functions();
        assert!(all.len() > 50, "only {} functions", all.len());
        let undocumented: Vec<&str> = all
            .iter()
            .filter(|f| f.doc.trim().is_empty())
            .map(|f| f.signature.as_str())
            .collect();
        assert!(
            undocumented.is_empty(),
            "registered without a doc comment: {undocumented:#?}"
        );
        let homeless: Vec<&str> = all
            .iter()
            .filter(|f| topic_of(f) == "other")
            .map(|f| f.name.as_str())
            .collect();
        assert!(
            homeless.is_empty(),
            "in no topic of docs::TOPICS, so left out of docs/reference.md: {homeless:?}"
        );
        // And no topic names a function that is not registered.
        for (topic, names) in TOPICS {
            for name in *names {
                assert!(
                    all.iter().any(|f| f.name == *name),
                    "topic `{topic}` names `{name}`, which is not registered"
                );
            }
        }
    }

    #[test]
    fn a_function_with_an_option_map_lists_its_keys_with_their_docs() {
        let all = functions();
        let file = all
            .iter()
            .find(|f| f.name == "file" && f.signature.contains("options: map"))
            .expect("file with options");
        assert!(
            file.doc.contains("\n- `mode`: The file's mode"),
            "{}",
            file.doc
        );
        assert!(
            super::definitions().contains("/// - `content`: The exact text"),
            "the editor definitions lack the option docs"
        );
    }

    #[test]
    fn types_read_as_scripts_see_them() {
        assert_eq!(
            readable_types("controller() -> Result<crate::script::Host,Box<rhai::EvalAltResult>>"),
            "controller() -> Host"
        );
        assert_eq!(
            readable_types("f(a: &str, b: Map) -> Result<Array, Box<EvalAltResult>>"),
            "f(a: string, b: map) -> array"
        );
        assert_eq!(
            readable_types("g(x: &mut Host) -> ?"),
            "g(x: Host) -> Dynamic"
        );
    }
}
