//! Finding the project, envs and hosts.

use crate::harness::Test;

const FLEET: &str = r#"
[project]
name = "demo"

[vars]
greeting = "hello"

[env.local]
connector = "local"

[env.fleet]
hosts = { app-0 = "root@127.0.0.1:2201", app-1 = { address = "root@127.0.0.1:2202", vars = { greeting = "yo" } } }
roles = { web = ["app-0", "app-1"], db = { hosts = ["app-1"], vars = { port = 5432 } } }
vars  = { greeting = "hi" }
"#;

const GOAL: &str = r#"
/// Says which project it found.
fn where_am_i() { log(`project ${env().vars.project}`); }
"#;

#[test]
fn project_is_found_from_a_subfolder_and_with_dash_c() {
    let test = Test::with_config(FLEET);
    test.write("deploy/where.rhai", GOAL);
    let sub = test.path().join("src/deep/er");
    std::fs::create_dir_all(&sub).expect("subdir");
    test.run_in(&sub, &["run", "where_am_i"])
        .status(0)
        .stdout_has("project demo");
    let outside = test.path().parent().expect("parent").to_path_buf();
    test.run_in(&outside, &["-C", "project/src", "list"])
        .status(0)
        .stdout_has("where_am_i");
    test.run_in(&outside, &["-C", "nowhere", "list"])
        .status(2)
        .stderr_has("nowhere");
}

#[test]
fn hosts_show_merged_vars_and_role_selection() {
    let test = Test::with_config(FLEET);
    let out = test.run(&["hosts", "-e", "fleet", "--json"]);
    out.status(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let hosts = doc["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0]["vars"]["greeting"], "hi");
    assert_eq!(hosts[1]["vars"]["greeting"], "yo");
    assert_eq!(hosts[1]["vars"]["port"], 5432);
    assert_eq!(hosts[1]["roles"], serde_json::json!(["web", "db"]));

    let out = test.run(&["hosts", "-e", "fleet", "-r", "db"]);
    out.status(0).stdout_has("app-1").stdout_lacks("app-0");
}

#[test]
fn default_env_comes_from_user_then_project() {
    let config = FLEET.replace(
        "name = \"demo\"",
        "name = \"demo\"\ndefault_env = \"fleet\"",
    );
    let test = Test::with_config(&config);
    test.run(&["hosts"]).status(0).stdout_has("env `fleet`");
    crate::harness::write(
        &test.user_dir().join("config.toml"),
        "default_env = \"local\"\n",
    );
    test.run(&["hosts"]).status(0).stdout_has("env `local`");
}

#[test]
fn no_project_still_has_the_local_env_and_stdlib() {
    let test = Test::new();
    test.run(&["hosts"]).status(0).stdout_has("local connector");
    test.run(&["run", "system_info"])
        .status(0)
        .stdout_has("local | kernel: ")
        .stdout_has("summary: 1 ok");
}
