//! Goals on the local connector: effects on disk, idempotence, --check, output and exit codes.

use crate::harness::Test;

const CONFIG: &str = "[project]\nname = \"t\"\n[vars]\nwho = \"world\"\n";

#[test]
fn second_run_changes_nothing_and_check_touches_nothing() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/files.rhai",
        r#"
/// Writes a greeting.
fn files_write(host, text) {
    host.run(["mkdir", "-p", "out"]);
    host.write_file("out/greeting.txt", text + "\n", #{ mode: "0600" });
}
"#,
    );
    test.run(&["run", "files_write", "--check", "hi"])
        .status(0)
        .stdout_has("would change: file out/greeting.txt")
        .stdout_has("skipped under --check: mkdir -p out");
    assert!(!test.path().join("out").exists(), "--check created out/");

    test.run(&["run", "files_write", "hi"])
        .status(0)
        .stdout_has("changed: file out/greeting.txt")
        .stdout_has("summary: 0 ok, 1 changed, 0 failed");
    assert_eq!(test.read("out/greeting.txt"), "hi\n");
    let mode = std::fs::metadata(test.path().join("out/greeting.txt")).expect("meta");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    test.run(&["run", "files_write", "hi"])
        .status(0)
        .stdout_lacks("changed: file")
        .stdout_has("summary: 1 ok, 0 changed, 0 failed");
    test.run(&["run", "files_write", "--check", "bye"])
        .status(0)
        .stdout_has("would change: file out/greeting.txt");
    assert_eq!(test.read("out/greeting.txt"), "hi\n");
}

#[test]
fn arguments_are_quoted_and_output_is_prefixed() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/q.rhai",
        r#"
/// Echoes an argument through the shell, quoted.
fn q_echo(host, arg) {
    host.run(["printf", "[%s]\n", arg]);
    host.run("printf '<%s>\n' " + quote(arg));
    let r = host.run("exit 7", #{ check: false });
    log(`code ${r.code}`);
}
"#,
    );
    test.run(&["run", "q_echo", "a b; touch pwned $(id)"])
        .status(0)
        .stdout_has("local | [a b; touch pwned $(id)]")
        .stdout_has("local | <a b; touch pwned $(id)>")
        .stdout_has("local | code 7");
    assert!(!test.path().join("pwned").exists());
}

#[test]
fn failed_command_fails_the_goal_with_exit_1() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/f.rhai",
        "/// Fails.\nfn f_fail(host) {\n    host.run(\"echo boom >&2; exit 3\");\n    host.write_file(\"after.txt\", \"x\");\n}\n",
    );
    test.run(&["run", "f_fail"])
        .status(1)
        .stdout_has("local | boom")
        .stdout_has("summary: 0 ok, 0 changed, 1 failed")
        .stdout_has("exited with 3: boom")
        .stderr_has("deploy/f.rhai:3:10");
    assert!(
        !test.path().join("after.txt").exists(),
        "the goal went on after a failure"
    );
}

#[test]
fn json_events_are_one_per_line() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/j.rhai",
        "/// Echoes.\nfn j_echo(host) { host.run(\"echo hi\"); log(\"done\"); }\n",
    );
    let out = test.run(&["run", "j_echo", "--json"]);
    out.status(0);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, ["start", "output", "log", "finish", "summary"]);
    assert_eq!(events[1]["line"], "hi");
    assert_eq!(events[1]["host"], "local");
    assert_eq!(events[4]["ok"], 1);
}

#[test]
fn templates_see_vars_host_and_goal_vars() {
    let test = Test::with_config(CONFIG);
    test.write(
        "templates/t/page.hbs",
        "{{who}} {{host.name}} {{n}} {{project}} {{env}}\n",
    );
    test.write(
        "deploy/t.rhai",
        "/// Renders.\nfn t_page(host) { host.template(\"t/page.hbs\", \"page.txt\", #{ n: 3 }); }\n",
    );
    test.run(&["run", "t_page"]).status(0);
    assert_eq!(test.read("page.txt"), "world local 3 t local\n");
}

#[test]
fn controller_goals_run_once_and_see_the_env() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/c.rhai",
        "/// Orchestrates.\nfn c_plan() { let e = env(); log(`${e.name} ${e.hosts} ${e.check}`); }\n",
    );
    test.run(&["run", "c_plan", "--check"])
        .status(0)
        .stdout_has("controller | local [\"local\"] true")
        .stdout_has("summary: 1 ok");
}

#[test]
fn upload_copies_a_folder_and_skips_what_is_equal() {
    let test = Test::with_config(CONFIG);
    test.write("site/a.txt", "a\n")
        .write("site/sub/b.txt", "b\n");
    test.write(
        "deploy/u.rhai",
        "/// Uploads.\nfn u_site(host) { host.upload(\"site\", \"dest\"); }\n",
    );
    test.run(&["run", "u_site"])
        .status(0)
        .stdout_has("changed: directory dest/sub")
        .stdout_has("changed: file dest/sub/b.txt");
    assert_eq!(test.read("dest/sub/b.txt"), "b\n");
    test.run(&["run", "u_site"])
        .status(0)
        .stdout_has("summary: 1 ok, 0 changed");
}

#[test]
fn goals_started_by_run_goal_keep_the_runs_flags() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/n.rhai",
        r#"
/// Writes a marker on every host.
fn n_inner(host) {
    host.write_file("marker.txt", "inner\n");
}

/// Starts n_inner.
fn n_outer() {
    if !run_goal("n_inner", []) { throw "n_inner failed"; }
    log("outer done");
}
"#,
    );
    // --check reaches the nested run: it reports and changes nothing.
    test.run(&["run", "n_outer", "--check"])
        .status(0)
        .stdout_has("would change: file marker.txt");
    assert!(
        !test.path().join("marker.txt").exists(),
        "a goal started by run_goal ignored --check"
    );

    // --json reaches the nested run: every line is one JSON event, both summaries included.
    let out = test.run(&["run", "n_outer", "--json"]);
    out.status(0);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let changes: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "change").collect();
    assert_eq!(changes.len(), 1, "{events:#?}");
    assert_eq!(changes[0]["host"], "local");
    assert!(events.iter().any(|e| e["message"] == "outer done"));
    assert_eq!(test.read("marker.txt"), "inner\n");
}

#[test]
fn secrets_come_from_the_environment_files_and_commands_and_are_masked() {
    let test = Test::with_config(
        "[project]\nname = \"t\"\n[vars]\nplain = \"visible\"\n\
         token = { env = \"WEFT_TEST_TOKEN\" }\n\
         filed = { file = \"~/token\" }\n\
         made = { command = \"printf 'cmd-%s' 4711\" }\n",
    );
    std::fs::write(test.home().join("token"), "file-secret-2718\n").expect("token file");
    test.write(
        "deploy/s.rhai",
        r#"
/// Uses every kind of secret.
fn s_use(host) {
    let v = env().vars;
    host.write_file("seen.txt", `${v.token} ${v.filed} ${v.made} ${secret_env("WEFT_TEST_OTHER")} ${secret_file("~/token")}`);
    log(`token ${v.token}, ${v.plain}`);
    host.run(`echo ${v.made}; echo ${secret_env("WEFT_TEST_OTHER")}`);
}
"#,
    );
    let secrets = [
        ("WEFT_TEST_TOKEN", "env-secret-31415"),
        ("WEFT_TEST_OTHER", "other-secret-1618"),
    ];
    for json in [false, true] {
        let args: &[&str] = if json {
            &["run", "s_use", "--json"]
        } else {
            &["run", "s_use"]
        };
        let out = test.run_with(args, &secrets);
        out.status(0)
            .stdout_has("token ********, visible")
            .stdout_lacks("31415")
            .stdout_lacks("2718")
            .stdout_lacks("cmd-4711")
            .stdout_lacks("1618");
    }
    // The goal got the real values.
    assert_eq!(
        test.read("seen.txt"),
        "env-secret-31415 file-secret-2718 cmd-4711 other-secret-1618 file-secret-2718"
    );

    // A missing one stops the run before anything runs, pointing into weft.toml.
    std::fs::remove_file(test.path().join("seen.txt")).expect("rm");
    test.run_with(&["run", "s_use"], &secrets[1..])
        .status(2)
        .stderr_has("secret `{ env = \"WEFT_TEST_TOKEN\" }`: the environment variable `WEFT_TEST_TOKEN` is not set")
        .stderr_has("weft.toml:5:9]")
        .stderr_has("asked for here");
    assert!(!test.path().join("seen.txt").exists());
    // A missing one asked for by a script names the script's line.
    test.run_with(&["run", "s_use"], &secrets[..1])
        .status(1)
        .stderr_has("secret_env: the environment variable `WEFT_TEST_OTHER` is not set")
        .stderr_has("deploy/s.rhai:5:");
}
