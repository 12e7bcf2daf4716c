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

/// The same env written inline and as TOML table headers (with no `[env.fleet]` of its own).
const INLINE: &str = r#"
[project]
name = "forms"
[env.fleet]
hosts = { app-0 = "root@127.0.0.1:2201", app-1 = { address = "root@127.0.0.1:2202", vars = { slot = 2 } } }
roles = { web = ["app-0"], db = { hosts = ["app-1"], vars = { port = 5432 } } }
vars = { greeting = "hi" }
"#;

const HEADERS: &str = r#"
[project]
name = "forms"

[env.fleet.hosts]
app-0 = "root@127.0.0.1:2201"

[env.fleet.hosts.app-1]
address = "root@127.0.0.1:2202"

[env.fleet.hosts.app-1.vars]
slot = 2

[env.fleet.roles]
web = ["app-0"]

[env.fleet.roles.db]
hosts = ["app-1"]

[env.fleet.roles.db.vars]
port = 5432

[env.fleet.vars]
greeting = "hi"
"#;

#[test]
fn every_table_reads_the_same_inline_and_as_table_headers() {
    let inline = Test::with_config(INLINE);
    let headers = Test::with_config(HEADERS);
    let a = inline.run(&["hosts", "-e", "fleet", "--json"]);
    let b = headers.run(&["hosts", "-e", "fleet", "--json"]);
    a.status(0);
    b.status(0);
    assert_eq!(a.stdout, b.stdout);
    b.stdout_has("\"slot\": 2").stdout_has("\"port\": 5432");

    // machines and apps: tables made implicitly by a deeper header, and arrays of tables.
    let machines = Test::with_config(
        "[project]\nname = \"m\"\n[env.dev.machines.web]\ncount = 2\n[env.dev.machines.web.vars]\nsize = \"big\"\n",
    );
    machines.run(&["list"]).status(0);
    let apps = Test::with_config(
        "[project]\nname = \"a\"\n[[apps.site.repos]]\nname = \"site\"\npath = \"site\"\n",
    );
    apps.run(&["list"]).status(0).stdout_has("site_deploy");
    let typo = Test::with_config(
        "[project]\nname = \"a\"\n[[apps.site.repos]]\nname = \"site\"\npth = \"site\"\n",
    );
    typo.run(&["list"])
        .status(2)
        .stderr_has("`pth` is not a setting of a repo of [apps.site]")
        .stderr_has("weft.toml:5:1");
}

#[test]
fn type_errors_say_what_was_expected() {
    let test = Test::with_config(
        "[project]\nname = \"t\"\n[env.fleet]\nhosts = { app-0 = \"root@127.0.0.1:2201\" }\nroles = { web = \"app-0\" }\n",
    );
    test.run(&["hosts", "-e", "fleet"])
        .status(2)
        .stderr_has("a list of host names")
        .stderr_has("weft.toml:5");
    let test = Test::with_config("[project]\nname = \"t\"\n[env.fleet.hosts]\napp-0 = 7\n");
    test.run(&["hosts", "-e", "fleet"])
        .status(2)
        .stderr_has("an address such as");
}

#[test]
fn a_weft_toml_in_a_folder_others_can_write_is_never_picked_up() {
    use std::os::unix::fs::PermissionsExt;
    let test = Test::with_config("[project]\nname = \"planted\"\n");
    test.write(
        "deploy/evil.rhai",
        "/// Planted.\nfn planted_goal() { log(\"pwned\"); }\n",
    );
    let sub = test.path().join("work/inner");
    std::fs::create_dir_all(&sub).expect("sub");
    // Trusted: the folders above are the user's own, so the project is found, and named.
    test.run_in(&sub, &["list"])
        .status(0)
        .stdout_has("planted_goal")
        .stderr_has("weft: using ")
        .stderr_has("weft.toml");
    // The project folder becomes writable by anyone (as /tmp is): the climb stops below it.
    std::fs::set_permissions(test.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = test.run_in(&sub, &["list"]);
    std::fs::set_permissions(test.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    out.status(0).stdout_lacks("planted_goal");
}
