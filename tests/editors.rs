//! What editors read besides `weft lsp`: the JSON schema of `weft.toml` (`weft config
//! schema`) and the VS Code extension's manifest, grammar and language configuration.

use std::path::Path;

use serde_json::{json, Value};

use crate::harness::Test;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn schema_validator() -> jsonschema::Validator {
    let out = Test::new().run(&["config", "schema"]);
    out.status(0);
    let schema: Value = serde_json::from_str(&out.stdout).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON schema")
}

fn errors(validator: &jsonschema::Validator, toml_text: &str) -> Vec<String> {
    let config: toml::Table = toml::from_str(toml_text).expect("the example parses");
    let config = serde_json::to_value(config).expect("TOML as JSON");
    validator
        .iter_errors(&config)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[test]
fn config_schema_accepts_every_example_and_refuses_typos() {
    let validator = schema_validator();
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README");
    let example = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the first TOML block of the README is the weft.toml example");
    assert!(example.contains("[env.fleet]"), "{example}");
    assert_eq!(errors(&validator, example), Vec::<String>::new());
    // The example projects and the skeletons `weft init` copies.
    let mut checked = 0;
    for folder in ["examples", "stdlib/skeletons"] {
        for entry in std::fs::read_dir(Path::new(ROOT).join(folder)).expect(folder) {
            let dir = entry.expect("entry").path();
            // The plugin skeleton is a plugin folder, with plugin.toml instead.
            if dir.join("plugin.toml").exists() {
                continue;
            }
            let path = dir.join("weft.toml");
            let text = std::fs::read_to_string(&path).expect("weft.toml");
            assert_eq!(
                errors(&validator, &text),
                Vec::<String>::new(),
                "{}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} weft.toml files");
    // The schema is not an accept-all: what `weft` itself refuses is refused, where it is.
    let bad = "[project]\nnmae = \"x\"\n\n[env.a]\nconnector = \"telnet\"\nhosts = { h = 5 }\n\n[env.b.machines.app]\ncount = \"two\"\n\n[apps.web]\nwsgii = \"x\"\nrepos = [{ name = \"a\", pth = \"b\" }]\n";
    let found = errors(&validator, bad);
    assert_eq!(found.len(), 6, "{found:#?}");
    for place in [
        "/project",
        "/env/a/connector",
        "/env/a/hosts/h",
        "/env/b/machines/app/count",
        "/apps/web",
        "/apps/web/repos/0",
    ] {
        assert!(
            found.iter().any(|e| e.ends_with(&format!(" at {place}"))),
            "nothing at {place}: {found:#?}"
        );
    }
    // And weft refuses the same file, so the schema says what weft says.
    let test = Test::with_config(bad);
    test.run(&["list"]).status(2).stderr_has("nmae");
}

#[test]
fn config_schema_carries_the_doc_comments() {
    let out = Test::new().run(&["config", "schema"]);
    let schema: Value = serde_json::from_str(&out.stdout).expect("the schema is JSON");
    // App settings come from the app service's `app_settings()`, doc and default included.
    let app = &schema["properties"]["apps"]["additionalProperties"]["properties"];
    assert!(
        app["wsgi"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("WSGI")),
        "{app:#}"
    );
    assert_eq!(app["workers"]["default"], json!(2), "{app:#}");
    assert!(app["user"].get("default").is_none(), "{app:#}");
    let env = &schema["definitions"]["EnvSection"]["properties"];
    assert!(
        env["namespace"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("namespace")),
        "{env:#}"
    );
    assert_eq!(
        schema["properties"]["project"]["allOf"][0]["$ref"],
        json!("#/definitions/ProjectSection"),
        "{schema:#}"
    );
}

/// `scripts/build-vscode.sh` makes the extension from the committed files (npm packages from
/// the registry at the lock file's versions, the extension's own tests run by npm) into a
/// .vsix that holds the manifest, grammar, client and the schema of this weft.
#[test]
fn the_vscode_extension_builds_into_a_vsix() {
    let test = Test::new();
    let vsix = test.path().join("weft.vsix");
    let out = std::process::Command::new(Path::new(ROOT).join("scripts/build-vscode.sh"))
        .arg(env!("CARGO_BIN_EXE_weft"))
        .arg(&vsix)
        .output()
        .expect("scripts/build-vscode.sh runs (npm: scripts/test.sh installs it)");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    // npm test's report: every test of the extension passed.
    assert!(
        log.contains("# fail 0") && !log.contains("# pass 0"),
        "{log}"
    );
    // The .vsix is a zip: list it and read the schema back with Python's zipfile.
    let read = |member: &str| {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print('\\n'.join(z.namelist()) if sys.argv[2] == '-' else z.read(sys.argv[2]).decode())",
            ])
            .arg(&vsix)
            .arg(member)
            .output()
            .expect("python3");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let names = read("-");
    for wanted in [
        "extension/package.json",
        "extension/extension.js",
        "extension/language-configuration.json",
        "extension/syntaxes/rhai.tmLanguage.json",
        "extension/weft.schema.json",
        "extension/node_modules/vscode-languageclient/node.js",
    ] {
        assert!(
            names.lines().any(|n| n == wanted),
            "{wanted} not in\n{names}"
        );
    }
    // Build tools and tests stay out of it.
    for unwanted in ["@vscode/vsce", "vscode-textmate", "extension/test/"] {
        assert!(!names.contains(unwanted), "{unwanted} in\n{names}");
    }
    let packaged: Value = serde_json::from_str(&read("extension/weft.schema.json")).expect("JSON");
    let schema: Value =
        serde_json::from_str(&test.run(&["config", "schema"]).stdout).expect("JSON");
    assert_eq!(packaged, schema);
    let manifest: Value = serde_json::from_str(&read("extension/package.json")).expect("JSON");
    assert_eq!(
        manifest["contributes"]["tomlValidation"][0]["url"],
        json!("./weft.schema.json")
    );
}

#[test]
fn config_schema_follows_a_project_s_own_app_service() {
    let test = Test::with_config("[project]\nname = \"own\"\n");
    test.write(
        "deploy/lib/app.rhai",
        "fn app_settings() {\n    #{ colour: #{ value: \"blue\", doc: \"the colour\" } }\n}\nfn repo_settings() {\n    #{ name: #{ doc: \"its name\" } }\n}\n",
    );
    let out = test.run(&["config", "schema"]);
    out.status(0);
    let schema: Value = serde_json::from_str(&out.stdout).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON schema");
    assert_eq!(
        errors(&validator, "[apps.a]\ncolour = \"red\"\n"),
        Vec::<String>::new()
    );
    assert_eq!(errors(&validator, "[apps.a]\nwsgi = \"a:b\"\n").len(), 1);
    // A project whose scripts do not compile gets weft's error, not a schema.
    test.write("deploy/broken.rhai", "fn x( {");
    test.run(&["config", "schema"])
        .status(2)
        .stderr_has("broken.rhai");
}
