//! Docs are code: the function reference, editor definitions and stdlib goal docs stay true.

use crate::harness::Test;

#[test]
fn every_registered_function_has_a_doc_comment() {
    let test = Test::new();
    let out = test.run(&["doc"]);
    out.status(0)
        .stdout_has("run(host: Host, command: string) -> map");
    // Signatures start in column 0; their doc follows, indented.
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("topics "))
        .collect();
    let signatures: Vec<usize> = (0..lines.len())
        .filter(|&i| !lines[i].starts_with(' '))
        .collect();
    assert!(signatures.len() >= 10, "too few functions: {}", out.stdout);
    for i in signatures {
        let doc = lines.get(i + 1).copied().unwrap_or_default();
        assert!(doc.starts_with("    "), "{} has no doc comment", lines[i]);
    }
    test.run(&["doc", "quote"])
        .status(0)
        .stdout_has("quote(arg: string) -> string");
    test.run(&["doc", "qoute"])
        .status(2)
        .stderr_has("did you mean `quote`?");
}

/// The types a script can see, in the one vocabulary the reference uses.
const TYPES: &[&str] = &[
    "string", "int", "float", "bool", "map", "array", "Host", "OpError", "Dynamic", "()", "Fn",
];

/// Whether `sig` is `name(param: type, ...) -> type` with known types only.
fn valid_signature(sig: &str) -> Result<(), String> {
    let (head, ret) = sig.rsplit_once(") -> ").ok_or("no `) -> type`")?;
    if !TYPES.contains(&ret) {
        return Err(format!("unknown return type `{ret}`"));
    }
    let (name, params) = head.split_once('(').ok_or("no parameter list")?;
    let name = name.strip_prefix("get ").unwrap_or(name);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("bad name `{name}`"));
    }
    for param in params.split(", ").filter(|p| !p.is_empty()) {
        let (pname, ty) = param.split_once(": ").ok_or(format!("untyped `{param}`"))?;
        if pname.is_empty() || !TYPES.contains(&ty) {
            return Err(format!("bad parameter `{param}`"));
        }
    }
    Ok(())
}

#[test]
fn every_definition_and_reference_line_is_a_valid_signature() {
    let test = Test::new();
    let defs = test.run(&["doc", "--definitions"]);
    defs.status(0);
    let mut count = 0;
    for line in defs.stdout.lines().filter(|l| l.starts_with("fn ")) {
        let sig = line["fn ".len()..].strip_suffix(';').unwrap_or(line);
        valid_signature(sig).unwrap_or_else(|e| panic!("{line}: {e}"));
        count += 1;
    }
    assert!(count >= 40, "too few definitions: {count}");
    let markdown = test.run(&["doc", "--markdown"]);
    markdown.status(0);
    for line in markdown.stdout.lines().filter(|l| l.starts_with("### `")) {
        let sig = line.trim_start_matches("### `").trim_end_matches('`');
        // Properties read `Host.name -> type` (or `OpError.code -> type`).
        let property = sig
            .split_once('.')
            .filter(|(owner, _)| TYPES.contains(owner))
            .and_then(|(owner, p)| p.split_once(" -> ").map(|(prop, ty)| (owner, prop, ty)));
        let sig = match property {
            Some((owner, prop, ty)) => format!("get {prop}(it: {owner}) -> {ty}"),
            None => sig.to_string(),
        };
        valid_signature(&sig).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}

#[test]
fn editor_definitions_match_the_api() {
    let test = Test::new();
    let out = test.run(&["doc", "--definitions"]);
    out.status(0);
    let committed = include_str!("../editors/weft.d.rhai");
    assert_eq!(
        out.stdout, committed,
        "editors/weft.d.rhai is stale: regenerate it with `weft doc --definitions > editors/weft.d.rhai`"
    );
}

#[test]
fn the_markdown_reference_matches_the_api() {
    let test = Test::new();
    let out = test.run(&["doc", "--markdown"]);
    out.status(0)
        .stdout_has("## files")
        .stdout_has("### `packages(host: Host, names: array) -> bool`");
    assert_eq!(
        out.stdout,
        include_str!("../docs/reference.md"),
        "docs/reference.md is stale: regenerate it with `weft doc --markdown > docs/reference.md`"
    );
    test.run(&["doc", "users"])
        .status(0)
        .stdout_has("authorized_keys(")
        .stdout_lacks("packages(");
}

#[test]
fn every_stdlib_goal_has_help() {
    let test = Test::new();
    let out = test.run(&["list", "--json"]);
    out.status(0);
    let goals: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    assert!(!goals.is_empty());
    for goal in goals {
        assert!(
            !goal["doc"].as_str().unwrap_or_default().is_empty(),
            "{goal} has no doc comment"
        );
    }
}

#[test]
fn readme_rhai_blocks_compile() {
    let readme = include_str!("../README.md");
    let test = Test::with_config("[project]\nname = \"readme\"\n");
    let mut count = 0;
    for (index, block) in readme.split("```rhai").skip(1).enumerate() {
        let code = block.split("```").next().unwrap_or_default();
        test.write(&format!("deploy/readme_{index}.rhai"), code);
        count += 1;
    }
    assert!(count > 0, "the README has no rhai examples");
    test.run(&["list"]).status(0);
}

#[test]
fn readme_app_settings_are_valid_settings() {
    let readme = include_str!("../README.md");
    let blocks: Vec<&str> = readme
        .split("```toml")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter(|b| b.contains("[apps."))
        .collect();
    assert!(!blocks.is_empty(), "the README shows no [apps.NAME]");
    for block in blocks {
        let app = block
            .split("[apps.")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .expect("an app name");
        let test = Test::with_config(&format!("[project]\nname = \"readme\"\n{block}"));
        test.run(&["list"])
            .status(0)
            .stdout_has(&format!("{app}_deploy"));
    }
}

#[test]
fn output_into_a_pipe_closed_early_ends_quietly() {
    let test = Test::new();
    // Both write their whole text at once; completions through clap_complete's generator.
    for args in [&["doc", "--markdown"][..], &["completions", "bash"][..]] {
        let mut child = test
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("weft starts");
        // The reader goes away before weft writes, as `head` does once it has its lines.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("weft ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    test.run(&["completions", "bash"])
        .status(0)
        .stdout_has("_weft()");
}

#[test]
fn weft_doc_knows_every_function_the_readme_calls() {
    let readme = include_str!("../README.md");
    // Names written as calls in the README's code spans and blocks: `name(`, `host.name(`.
    let code = regex::Regex::new(r"(?s)```.*?```|`[^`\n]+`").expect("regex");
    let call = regex::Regex::new(r"(?:^|[^A-Za-z0-9_<>])([a-z_][a-z0-9_]*)\(").expect("regex");
    // Functions the README defines itself (`fn site_setup(host)`) are examples of what a user
    // writes, as is the default skeleton's `hello_deploy`; `<role>_scale` reads as `_scale(`.
    let defines = regex::Regex::new(r"fn ([a-z_][a-z0-9_]*)\(").expect("regex");
    let mut examples: Vec<&str> = defines
        .captures_iter(readme)
        .filter_map(|c| c.get(1).map(|n| n.as_str()))
        .collect();
    examples.push("hello_deploy");
    let mut names: Vec<&str> = code
        .find_iter(readme)
        .flat_map(|m| call.captures_iter(m.as_str()))
        .filter_map(|c| c.get(1).map(|n| n.as_str()))
        .filter(|n| !examples.contains(n) && !n.starts_with('_'))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(
        names.len() >= 30 && names.contains(&"parse_json"),
        "{names:?}"
    );
    // In a project, `weft doc` also knows the stdlib's goals and helpers.
    let test = Test::with_config("[project]\nname = \"readme\"\n");
    let unknown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| test.run(&["doc", name]).code != 0)
        .collect();
    assert!(unknown.is_empty(), "`weft doc` does not know {unknown:?}");
    test.run(&["doc", "parse_json"])
        .status(0)
        .stdout_has("parse_json(json: string) -> Dynamic")
        .stdout_has("(Rhai's standard library)");
    test.run(&["doc", "app_settings"])
        .status(0)
        .stdout_has("The settings of `[apps.NAME]`")
        .stdout_has("<stdlib>/lib/app.rhai");
}
