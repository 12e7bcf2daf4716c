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
            let path = entry.expect("entry").path().join("weft.toml");
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
    let bad = "[project]\nnmae = \"x\"\n\n[env.a]\nconnector = \"telnet\"\nhosts = { h = 5 }\n\n[env.b.machines.app]\ncount = \"two\"\n";
    let found = errors(&validator, bad);
    assert_eq!(found.len(), 4, "{found:#?}");
    for place in ["/project", "/env/a/connector", "/env/a/hosts/h", "/env/b/machines/app/count"] {
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
