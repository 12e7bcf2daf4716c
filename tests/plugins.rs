//! Plugins: folders with a plugin.toml layered between the project and the user, vendored from
//! a path or a git repo and checked before anything runs.

use crate::harness::{git, write, Test};

/// A plugin.toml for `name` that works with any weft, reading `greeting` with a default.
fn manifest(name: &str, weft: &str) -> String {
    format!(
        "name = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"test plugin\"\nweft = \"{weft}\"\n\n\
         [vars.greeting]\ndefault = \"hello from {name}\"\ndoc = \"What hello says\"\n"
    )
}

const HELLO: &str =
    "/// Says the plugin's greeting.\nfn hello(host) { log(host.vars.greeting); }\n";

fn config(plugins: &[&str]) -> String {
    let mut text = String::from("[project]\nname = \"plugged\"\n\n[plugins]\n");
    for name in plugins {
        text.push_str(&format!("{name} = {{ path = \"plugins/{name}\" }}\n"));
    }
    text
}

#[test]
fn a_listed_plugin_adds_its_goals_and_var_defaults() {
    let test = Test::with_config(&config(&["greet"]));
    test.write("plugins/greet/plugin.toml", &manifest("greet", ">=0.1, <1"));
    test.write("plugins/greet/services/greet.rhai", HELLO);
    test.write(
        "plugins/greet/templates/greet/note.txt.hbs",
        "plugin note\n",
    );
    test.run(&["list"])
        .status(0)
        .stdout_has("[plugin:greet] Says the plugin's greeting.");
    test.run(&["run", "hello"])
        .status(0)
        .stdout_has("local | hello from greet");
    test.run(&["stdlib", "show", "services/greet.rhai"])
        .status(0)
        .stdout_has("host.vars.greeting")
        .stderr_has("plugins/greet/services/greet.rhai (plugin:greet)");
    test.run(&["stdlib", "eject", "templates/greet/note.txt.hbs"])
        .status(0)
        .stdout_has("(plugin:greet)");
    assert_eq!(test.read("templates/greet/note.txt.hbs"), "plugin note\n");

    // A var set in weft.toml beats the plugin's default.
    let mut text = config(&["greet"]);
    text.push_str("\n[vars]\ngreeting = \"hello from the project\"\n");
    test.write("weft.toml", &text);
    test.run(&["run", "hello"])
        .status(0)
        .stdout_has("local | hello from the project");
}

#[test]
fn plugin_vars_are_in_weft_doc_and_the_config_schema() {
    let test = Test::with_config(&config(&["greet"]));
    test.write("plugins/greet/plugin.toml", &manifest("greet", "*"));
    test.write("plugins/greet/services/greet.rhai", HELLO);
    test.run(&["doc"])
        .status(0)
        .stdout_has("quote(arg: string) -> string")
        .stdout_has("vars of the project's plugins")
        .stdout_has("greeting (plugin greet; default \"hello from greet\")")
        .stdout_has("    What hello says");
    test.run(&["doc", "greet"])
        .status(0)
        .stdout_has("greeting (plugin greet;")
        .stdout_lacks("quote(");
    // Outside the project there are only the functions.
    test.run_in(&test.home(), &["doc"])
        .status(0)
        .stdout_lacks("vars of the project's plugins");

    let schema = test.run(&["config", "schema"]);
    schema.status(0);
    let schema: serde_json::Value = serde_json::from_str(&schema.stdout).expect("json schema");
    let greeting = &schema["properties"]["vars"]["properties"]["greeting"];
    assert_eq!(greeting["default"], "hello from greet", "{greeting}");
    assert_eq!(
        greeting["description"], "plugin `greet`: What hello says",
        "{greeting}"
    );
    assert_eq!(schema["properties"]["vars"]["additionalProperties"], true);
}

#[test]
fn the_project_overrides_a_plugin_file_of_the_same_path() {
    let test = Test::with_config(&config(&["greet"]));
    test.write("plugins/greet/plugin.toml", &manifest("greet", "*"));
    test.write("plugins/greet/services/greet.rhai", HELLO);
    test.write(
        "deploy/services/greet.rhai",
        "/// The project's hello.\nfn hello(host) { log(\"project wins\"); }\n",
    );
    test.run(&["list"])
        .status(0)
        .stdout_has("[project] The project's hello. (overrides plugins/greet/services/greet.rhai (plugin:greet))");
    test.run(&["run", "hello"])
        .status(0)
        .stdout_has("local | project wins");
}

#[test]
fn two_plugins_defining_one_goal_are_refused_naming_both() {
    let test = Test::with_config(&config(&["one", "two"]));
    for name in ["one", "two"] {
        test.write(&format!("plugins/{name}/plugin.toml"), &manifest(name, "*"));
        test.write(&format!("plugins/{name}/deploy/{name}.rhai"), HELLO);
    }
    test.run(&["list"])
        .status(2)
        .stderr_has("goal `hello` is defined by two plugins")
        .stderr_has("plugins/one/deploy/one.rhai (plugin:one)")
        .stderr_has("plugins/two/deploy/two.rhai (plugin:two)");
    test.run(&["run", "hello"])
        .status(2)
        .stdout_lacks("hello from");
}

#[test]
fn two_plugins_shipping_one_template_are_refused_naming_both() {
    let test = Test::with_config(&config(&["one", "two"]));
    for name in ["one", "two"] {
        test.write(&format!("plugins/{name}/plugin.toml"), &manifest(name, "*"));
        test.write(
            &format!("plugins/{name}/templates/shared/motd.hbs"),
            &format!("from {name}\n"),
        );
    }
    test.write("deploy/hello.rhai", HELLO);
    test.run(&["list"])
        .status(2)
        .stderr_has("template `templates/shared/motd.hbs` is defined by two plugins")
        .stderr_has("in `plugins/one/templates/")
        .stderr_has("motd.hbs (plugin:one)")
        .stderr_has("plugins/two/templates/shared/motd.hbs (plugin:two)");
    test.run(&["run", "hello"])
        .status(2)
        .stdout_lacks("hello from");

    // A project template of that path settles it: the project's wins over both.
    test.write("templates/shared/motd.hbs", "from the project\n");
    test.run(&["run", "hello"])
        .status(0)
        .stdout_has("local | hello from one");
}

#[test]
fn a_plugin_whose_weft_range_excludes_this_weft_is_refused() {
    let test = Test::with_config(&config(&["old"]));
    test.write("plugins/old/plugin.toml", &manifest("old", ">=0.0.1, <0.1"));
    test.write("plugins/old/services/old.rhai", HELLO);
    test.run(&["run", "hello"])
        .status(2)
        .stderr_has("plugin `old` works with weft >=0.0.1, <0.1, this is weft")
        .stderr_has("plugins/old/plugin.toml:4")
        .stdout_lacks("hello from");
}

#[test]
fn a_missing_manifest_or_var_is_refused_before_running() {
    let test = Test::with_config(&config(&["bare"]));
    write(&test.path().join("plugins/bare/services/bare.rhai"), HELLO);
    test.run(&["run", "hello"])
        .status(2)
        .stderr_has("plugin `bare`: `plugins/bare` has no plugin.toml")
        .stderr_has("weft.toml:5");

    test.write(
        "plugins/bare/plugin.toml",
        "name = \"bare\"\nversion = \"0.1.0\"\nweft = \"*\"\n[vars.token]\ndoc = \"The API token\"\n",
    );
    test.run(&["run", "hello"])
        .status(2)
        .stderr_has("plugin `bare` needs var `token`, which has no default")
        .stderr_has("The API token")
        .stdout_lacks("hello from");
}

/// A git repo holding the `greet` plugin, tagged `v1`, with a later commit on main that the
/// tag must not pick up.
fn greet_repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("temp dir");
    let dir = repo.path();
    git(dir, &["init", "--quiet"]);
    write(&dir.join("plugin.toml"), &manifest("greet", ">=0.1"));
    write(&dir.join("services/greet.rhai"), HELLO);
    git(dir, &["add", "."]);
    git(dir, &["commit", "--quiet", "-m", "v1"]);
    git(dir, &["tag", "v1"]);
    write(
        &dir.join("services/greet.rhai"),
        "/// Newer.\nfn hello(host) { log(\"unreleased\"); }\n",
    );
    git(dir, &["commit", "--quiet", "-am", "after v1"]);
    repo
}

#[test]
fn a_plugin_added_from_a_git_tag_lists_and_runs_its_goals() {
    let repo = greet_repo();
    let tagged = git(repo.path(), &["rev-parse", "v1"]);
    let test = Test::with_config("[project]\nname = \"plugged\"\n");
    let source = format!("{}@v1", repo.path().display());
    test.run(&["plugin", "add", &source])
        .status(0)
        .stdout_has(&format!(
            "added plugin greet 1.0.0 to plugins/greet (commit {tagged})"
        ));
    assert!(test
        .read("weft.toml")
        .contains("[plugins]\ngreet = { path = \"plugins/greet\" }"));
    let lock = test.read("weft.lock");
    assert!(lock.contains("ref = \"v1\""), "{lock}");
    assert!(lock.contains(&format!("commit = \"{tagged}\"")), "{lock}");
    assert!(!test.path().join("plugins/greet/.git").exists());

    test.run(&["plugin", "list"])
        .status(0)
        .stdout_has("greet")
        .stdout_has(&format!("@v1 ({})", &tagged[..12]));
    test.run(&["list"])
        .status(0)
        .stdout_has("[plugin:greet] Says the plugin's greeting.");
    test.run(&["run", "hello"])
        .status(0)
        .stdout_has("local | hello from greet")
        .stdout_lacks("unreleased");
    test.run(&["plugin", "verify"])
        .status(0)
        .stdout_has("every vendored plugin file matches weft.lock");

    test.run(&["plugin", "remove", "greet"])
        .status(0)
        .stdout_has("removed plugin greet");
    assert!(!test.path().join("plugins/greet").exists());
    assert!(!test.read("weft.toml").contains("greet ="));
    test.run(&["list"]).status(0).stdout_lacks("plugin:greet");
}

#[test]
fn plugin_add_and_remove_edit_weft_toml_keeping_its_comments() {
    let repo = greet_repo();
    // A header with a comment after it, and a table after [plugins]: text edits get both wrong.
    let original = "# the shop\n[project]\nname = \"plugged\" # short\n\n\
                    [plugins]   # vendored with weft plugin add\n\
                    # none yet\n\n\
                    [vars]\ngreeting = \"from the project\"\n";
    let test = Test::with_config(original);
    let source = format!("{}@v1", repo.path().display());
    test.run(&["plugin", "add", &source]).status(0);
    let text = test.read("weft.toml");
    assert!(
        text.contains(
            "[plugins]   # vendored with weft plugin add\ngreet = { path = \"plugins/greet\" }\n"
        ),
        "{text}"
    );
    assert!(text.contains("# none yet\n"), "{text}");
    assert!(text.contains("name = \"plugged\" # short\n"), "{text}");
    assert_eq!(text.matches("[plugins]").count(), 1, "{text}");
    test.run(&["run", "hello"])
        .status(0)
        .stdout_has("local | from the project");

    test.run(&["plugin", "remove", "greet"]).status(0);
    let text = test.read("weft.toml");
    assert!(!text.contains("greet ="), "{text}");
    assert!(text.contains("# the shop\n[project]\n"), "{text}");
    assert!(
        text.contains("[vars]\ngreeting = \"from the project\"\n"),
        "{text}"
    );
}

#[test]
fn a_modified_vendored_file_is_reported_by_verify_and_by_run() {
    let repo = greet_repo();
    let test = Test::with_config("[project]\nname = \"plugged\"\n");
    let source = format!("{}@v1", repo.path().display());
    test.run(&["plugin", "add", &source]).status(0);
    test.write(
        "plugins/greet/services/greet.rhai",
        "/// Tampered.\nfn hello(host) { log(\"tampered\"); }\n",
    );
    test.write("plugins/greet/services/extra.rhai", "fn extra(host) {}\n");
    test.run(&["plugin", "verify"])
        .status(1)
        .stdout_has("greet: modified plugins/greet/services/greet.rhai")
        .stdout_has("greet: added plugins/greet/services/extra.rhai");
    test.run(&["run", "hello"])
        .status(2)
        .stderr_has("vendored plugin files changed since they were recorded in weft.lock")
        .stderr_has("greet: modified plugins/greet/services/greet.rhai")
        .stdout_lacks("tampered");

    // Fetching it again from the recorded tag puts the recorded files back.
    test.run(&["plugin", "update", "greet"]).status(0);
    test.run(&["plugin", "verify"]).status(0);
    test.run(&["run", "hello"])
        .status(0)
        .stdout_has("local | hello from greet");
}

#[test]
fn a_plugin_skeleton_adds_and_runs_its_test_goal() {
    let test = Test::with_config("[project]\nname = \"plugged\"\n");
    test.run(&["init", "--skeleton", "plugin", "work/my-tool"])
        .status(0)
        .stdout_has("created work/my-tool/plugin.toml")
        .stdout_has("created work/my-tool/services/my_tool.rhai")
        .stdout_has("weft plugin add");
    assert!(test
        .read("work/my-tool/plugin.toml")
        .contains("name = \"my-tool\""));
    test.run(&["plugin", "add", "work/my-tool"])
        .status(0)
        .stdout_has("added plugin my-tool 0.1.0 to plugins/my-tool");
    test.run(&["list"])
        .status(0)
        .stdout_has("my_tool_selftest")
        .stdout_has("[plugin:my-tool]");
    test.run(&["run", "my_tool_selftest"])
        .status(0)
        .stdout_has("local | hello from the my-tool plugin on local");
    test.run(&["init", "--skeleton", "plugin", "work/my-tool"])
        .status(2)
        .stderr_has("already a weft plugin");
}

/// The commit a plugin's weft.lock entry records.
fn locked_commit(test: &Test) -> String {
    let lock = test.read("weft.lock");
    lock.lines()
        .find_map(|l| l.strip_prefix("commit = \""))
        .map(|c| c.trim_end_matches('"').to_string())
        .unwrap_or_else(|| panic!("no commit in weft.lock:\n{lock}"))
}

#[test]
fn an_update_to_a_tag_that_moved_is_refused_unless_allowed() {
    let repo = greet_repo();
    let old = git(repo.path(), &["rev-parse", "v1"]);
    let test = Test::with_config("[project]\nname = \"plugged\"\n");
    let source = format!("{}@v1", repo.path().display());
    test.run(&["plugin", "add", &source]).status(0);

    // Upstream moves the release tag onto other code.
    write(
        &repo.path().join("services/greet.rhai"),
        "/// Moved.\nfn hello(host) { log(\"moved tag code\"); }\n",
    );
    git(repo.path(), &["commit", "--quiet", "-am", "not v1"]);
    git(repo.path(), &["tag", "-f", "v1"]);
    let new = git(repo.path(), &["rev-parse", "v1"]);
    assert_ne!(old, new);

    test.run(&["plugin", "update", "greet"])
        .status(2)
        .stderr_has("tag `v1` of plugin `greet` moved")
        .stderr_has(&old)
        .stderr_has(&new)
        .stderr_has("--allow-moved-tag")
        .stdout_lacks("updated");
    assert_eq!(locked_commit(&test), old, "weft.lock kept the old commit");
    test.run(&["plugin", "verify"]).status(0);
    test.run(&["run", "hello"])
        .status(0)
        .stdout_has("local | hello from greet")
        .stdout_lacks("moved tag code");

    test.run(&["plugin", "update", "greet", "--allow-moved-tag"])
        .status(0)
        .stdout_has(&format!(
            "updated plugin greet to 1.0.0 (commit {new}, was {old})"
        ));
    assert_eq!(locked_commit(&test), new);
    test.run(&["plugin", "verify"]).status(0);
    test.run(&["run", "hello"])
        .status(0)
        .stdout_has("local | moved tag code");
}

#[test]
fn an_update_that_follows_a_branch_is_no_moved_tag() {
    let repo = greet_repo();
    let test = Test::with_config("[project]\nname = \"plugged\"\n");
    let source = format!("{}@main", repo.path().display());
    test.run(&["plugin", "add", &source]).status(0);
    write(
        &repo.path().join("services/greet.rhai"),
        "/// Newest.\nfn hello(host) { log(\"newest\"); }\n",
    );
    git(repo.path(), &["commit", "--quiet", "-am", "newest"]);
    test.run(&["plugin", "update", "greet"])
        .status(0)
        .stdout_has("updated plugin greet");
    test.run(&["run", "hello"])
        .status(0)
        .stdout_has("local | newest");
}

/// The SHA-256 of `path`, as sha256sum prints it.
fn sha256(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn verify_checks_the_vendored_files_against_the_recorded_commit() {
    let repo = greet_repo();
    let test = Test::with_config("[project]\nname = \"plugged\"\n");
    let source = format!("{}@v1", repo.path().display());
    test.run(&["plugin", "add", &source]).status(0);
    let lock = test.read("weft.lock");
    assert!(lock.contains("commit_object = "), "{lock}");

    // A changed file whose new sum is written into weft.lock too: the file sums agree, the
    // commit does not.
    let file = test.path().join("plugins/greet/services/greet.rhai");
    let before = sha256(&file);
    test.write(
        "plugins/greet/services/greet.rhai",
        "/// Swapped.\nfn hello(host) { log(\"swapped\"); }\n",
    );
    test.write("weft.lock", &lock.replace(&before, &sha256(&file)));
    let commit = locked_commit(&test);
    test.run(&["plugin", "verify"])
        .status(1)
        .stdout_has(&format!(
            "greet: the vendored files are not commit {commit}"
        ));
    test.run(&["run", "hello"])
        .status(2)
        .stderr_has("the vendored files are not commit")
        .stdout_lacks("swapped");

    // The files put back, and the commit in weft.lock changed to another one.
    test.run(&["plugin", "update", "greet"]).status(0);
    test.run(&["plugin", "verify"]).status(0);
    let other = git(repo.path(), &["rev-parse", "main"]);
    let lock = test.read("weft.lock");
    test.write(
        "weft.lock",
        &lock.replace(
            &format!("commit = \"{commit}\""),
            &format!("commit = \"{other}\""),
        ),
    );
    test.run(&["plugin", "verify"])
        .status(1)
        .stdout_has(&format!(
            "the commit content weft.lock records is not commit {other}"
        ));
}

#[test]
fn a_plugin_holding_a_symlink_is_refused_and_the_linked_file_never_shown() {
    let test = Test::with_config("[project]\nname = \"plugged\"\n");
    // A file of the controller that a plugin must never read.
    let secret = test.home().join("secret.toml");
    write(&secret, "name = \"SECRET-LINE-ONE\"\nSECRET-LINE-TWO\n");

    let folder = test.path().join("work/linked");
    write(&folder.join("services/greet.rhai"), HELLO);
    std::os::unix::fs::symlink(&secret, folder.join("plugin.toml")).expect("link");
    test.run(&["plugin", "add", "work/linked"])
        .status(2)
        .stderr_has("`plugin.toml` is a symbolic link")
        .stderr_lacks("SECRET-LINE");
    assert!(!test.path().join("plugins/greet").exists());
    assert!(!test.path().join("weft.lock").exists());

    // The same from git, with the link further down.
    let repo = tempfile::tempdir().expect("temp dir");
    let dir = repo.path();
    git(dir, &["init", "--quiet"]);
    write(&dir.join("plugin.toml"), &manifest("greet", ">=0.1"));
    write(&dir.join("services/greet.rhai"), HELLO);
    std::os::unix::fs::symlink(&secret, dir.join("services/extra.rhai")).expect("link");
    git(dir, &["add", "."]);
    git(dir, &["commit", "--quiet", "-m", "v1"]);
    git(dir, &["tag", "v1"]);
    let source = format!("{}@v1", dir.display());
    test.run(&["plugin", "add", &source])
        .status(2)
        .stderr_has("`services/extra.rhai` is a symbolic link")
        .stderr_lacks("SECRET-LINE");
    assert!(!test.path().join("plugins/greet").exists());

    // A vendored plugin.toml replaced by a link is refused before it is read.
    std::fs::remove_file(dir.join("services/extra.rhai")).expect("rm");
    git(dir, &["commit", "--quiet", "-am", "no link"]);
    git(dir, &["tag", "v2"]);
    let source = format!("{}@v2", dir.display());
    test.run(&["plugin", "add", &source]).status(0);
    let manifest_path = test.path().join("plugins/greet/plugin.toml");
    std::fs::remove_file(&manifest_path).expect("rm");
    std::os::unix::fs::symlink(&secret, &manifest_path).expect("link");
    test.run(&["run", "hello"])
        .status(2)
        .stderr_has("plugins/greet/plugin.toml` is a symbolic link")
        .stderr_lacks("SECRET-LINE");
    test.run(&["plugin", "verify"])
        .status(1)
        .stdout_has("greet: a link at plugins/greet/plugin.toml");
}

/// The `run_goal` calls of the plugins weft ships (`plugins/`) whose result a script tests.
/// A failed goal throws unless `allow_fail` is given, so `if !run_goal(..) { throw .. }`
/// without it would never reach its own message.
#[test]
fn the_shipped_plugins_test_a_nested_goals_result_only_with_allow_fail() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let mut scripts = Vec::new();
    let mut folders = vec![root];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("plugins/ reads") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rhai") {
                scripts.push(path);
            }
        }
    }
    let mut tested = 0;
    let mut wrong = Vec::new();
    for script in &scripts {
        let text = std::fs::read_to_string(script).expect("a script reads");
        for (n, line) in text.lines().enumerate() {
            let uses_result = line.contains("!run_goal(")
                || line.contains("= run_goal(")
                || line.contains("return run_goal(");
            if uses_result {
                tested += 1;
                if !line.contains("allow_fail: true") {
                    wrong.push(format!("{}:{}: {}", script.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(tested > 0, "no run_goal result is tested in {scripts:?}");
    assert!(
        wrong.is_empty(),
        "without allow_fail:\n{}",
        wrong.join("\n")
    );
}
