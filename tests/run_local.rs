//! Goals on the local connector: effects on disk, idempotence, --check, output and exit codes.

use crate::harness::Test;

const CONFIG: &str = "[project]\nname = \"t\"\n[vars]\nwho = \"world\"\n";

#[test]
fn color_always_colours_a_report_read_through_a_pipe_and_auto_does_not() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/c.rhai",
        "/// Logs a line.\nfn c_log(host) { log(\"hi\"); }\n",
    );
    // The harness reads stdout through a pipe, and sets NO_COLOR, which `always` overrides.
    test.run(&["run", "c_log", "--color", "always"])
        .status(0)
        .stdout_has("\u{1b}[");
    test.run(&["run", "c_log"])
        .status(0)
        .stdout_lacks("\u{1b}[");
}

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
    log("wrote the greeting");
}
"#,
    );
    // A check run counts what would change apart, and marks the goal's own messages.
    test.run(&["run", "files_write", "--check", "hi"])
        .status(0)
        .stdout_has("would change: file out/greeting.txt")
        .stdout_has("skipped under --check: mkdir -p out")
        .stdout_has("| [check] wrote the greeting")
        .stdout_has("summary (--check: nothing was changed): 0 ok, 1 would change, 0 failed")
        .stdout_has("would change  ");
    assert!(!test.path().join("out").exists(), "--check created out/");

    test.run(&["run", "files_write", "hi"])
        .status(0)
        .stdout_has("changed: file out/greeting.txt")
        .stdout_has("| wrote the greeting")
        .stdout_lacks("[check]")
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
    let r = host.run("exit 8", #{ allow_fail: true });
    log(`code ${r.code}`);
}
"#,
    );
    test.run(&["run", "q_echo", "a b; touch pwned $(id)"])
        .status(0)
        .stdout_has("local | [a b; touch pwned $(id)]")
        .stdout_has("local | <a b; touch pwned $(id)>")
        .stdout_has("local | code 7")
        .stdout_has("local | code 8")
        .stdout_has("`check: false` is deprecated: write `allow_fail: true`");
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

/// A template is compiled as it is first rendered (issue 38), with the templates it includes.
#[test]
fn templates_render_with_the_partials_they_name() {
    let test = Test::with_config(CONFIG);
    test.write("templates/t/head.hbs", "# {{who}}\n");
    test.write("templates/t/foot.hbs", "-- {{n}}\n");
    test.write(
        "templates/t/page.hbs",
        "{{> t/head.hbs}}{{#if n}}{{> t/foot.hbs}}{{/if}}{{#> t/none.hbs}}none{{/t/none.hbs}}\n",
    );
    test.write("templates/t/which.hbs", "{{> (lookup this \"part\")}}");
    test.write(
        "deploy/t.rhai",
        "/// Renders.\nfn t_page(host) {\n    host.template(\"t/which.hbs\", \"which.txt\", #{ part: \"t/foot.hbs\", n: 4 });\n    \
         host.template(\"t/page.hbs\", \"page.txt\", #{ n: 3 });\n}\n",
    );
    // The first run parses every template for its check; the second knows they parse.
    for _ in 0..2 {
        test.run(&["run", "t_page"]).status(0);
        assert_eq!(test.read("page.txt"), "# world\n-- 3\nnone\n");
        assert_eq!(test.read("which.txt"), "-- 4\n");
        for file in ["page.txt", "which.txt"] {
            std::fs::remove_file(test.path().join(file)).expect("remove the output");
        }
    }
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
        .stdout_has("controller | [check] local [\"local\"] true")
        .stdout_has("summary (--check: nothing was changed): 1 ok");
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
fn a_goal_run_goal_started_that_fails_is_an_op_error_at_the_call() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/f.rhai",
        r#"
/// Fails on every host.
fn f_inner(host) {
    host.run("exit 4");
}

/// Catches the failure of f_inner.
fn f_caught() {
    try {
        run_goal("f_inner", []);
        log("not reached");
    } catch (err) {
        log(`caught ${err.kind} at line ${err.line}: ${err.message}`);
    }
    let ok = run_goal("f_inner", [], #{ allow_fail: true });
    log(`allow_fail gives ${ok}`);
}

/// Lets it fail.
fn f_uncaught() {
    run_goal("f_inner", []);
    log("not reached");
}
"#,
    );
    let out = test.run(&["run", "f_caught"]);
    out.stdout_has("caught goal at line 10: run_goal: goal `f_inner` failed")
        .stdout_has("allow_fail gives false");
    assert!(!out.stdout.contains("not reached"), "{}", out.stdout);
    let out = test.run(&["run", "f_uncaught"]);
    out.status(1)
        .stderr_has("run_goal: goal `f_inner` failed")
        .stderr_has("deploy/f.rhai:21:5");
    assert!(!out.stdout.contains("not reached"), "{}", out.stdout);
}

#[test]
fn env_functions_in_a_host_goal_say_where_they_belong() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/w.rhai",
        "/// Misplaced.\nfn w_scale(host) {\n    create_machines(\"web\", 1);\n}\n",
    );
    test.run(&["run", "w_scale"])
        .status(1)
        .stderr_has("create_machines() acts on the whole env: call it from a controller goal")
        .stderr_has("deploy/w.rhai:3:5");
}

#[test]
fn option_maps_are_optional() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/o.rhai",
        "/// Plain calls.\nfn o_plain(host) {\n    host.directory(\"d\");\n    let made = host.file(\"d/empty.txt\");\n    log(`made ${made}`);\n    log(`again ${host.file(\"d/empty.txt\")}`);\n}\n",
    );
    test.run(&["run", "o_plain"])
        .status(0)
        .stdout_has("local | made true")
        .stdout_has("local | again false");
    assert_eq!(test.read("d/empty.txt"), "");
}

#[test]
fn nested_goals_are_phases_of_one_summary_and_quiet_shows_only_the_summary() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/p.rhai",
        r#"
/// Writes a marker.
fn p_inner(host) {
    host.write_file("phase.txt", "x\n");
}

/// Two phases.
fn p_outer() {
    run_goal("p_inner", []);
    run_goal("p_inner", []);
    log("outer done");
}
"#,
    );
    let out = test.run(&["run", "p_outer"]);
    out.status(0)
        .stdout_has("▸ p_inner on local")
        .stdout_has("▸ p_inner ")
        .stdout_has("changed: file phase.txt")
        .stdout_has("controller | outer done");
    assert_eq!(out.stdout.matches("summary:").count(), 1, "{}", out.stdout);
    // The summary holds every host of every phase: local changed once, then was as wanted.
    out.stdout_has("summary: 1 ok, 1 changed, 0 failed");
    let quiet = test.run(&["run", "p_outer", "-q"]);
    quiet
        .status(0)
        .stdout_lacks("▸")
        .stdout_lacks("outer done")
        .stdout_has("summary:");
}

#[test]
fn secrets_stay_masked_line_by_line_and_out_of_commands_environment() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/s.rhai",
        r#"
/// Prints a two-line secret and the environment of a command.
fn s_leak(host) {
    let key = secret("first-line-of-key\nsecond-line-of-key");
    host.run("printf '%s\n' " + quote(key));
    host.run("env > env.txt");
}
"#,
    );
    let out = test.run_with(
        &["run", "s_leak"],
        &[
            ("WEFT_SUDO_PASSWORD", "hunter2hunter2"),
            ("WEFT_SSH_PASSPHRASE", "pass-phrase-9"),
        ],
    );
    out.status(0)
        .stdout_lacks("first-line-of-key")
        .stdout_lacks("second-line-of-key")
        .stdout_has("********");
    let env = test.read("env.txt");
    assert!(
        !env.contains("hunter2hunter2"),
        "a command saw the sudo password"
    );
    assert!(
        !env.contains("pass-phrase-9"),
        "a command saw the key passphrase"
    );
    assert!(!env.contains("WEFT_SUDO_PASSWORD") && !env.contains("WEFT_SSH_PASSPHRASE"));
}

#[test]
fn a_private_key_is_never_taken_for_a_public_one() {
    let test = Test::with_config(
        "[project]\nname = \"k\"\n[env.fleet]\nhosts = { a = \"root@127.0.0.1:1\" }\nkeys = [\"id_test\"]\n",
    );
    test.write(
        "id_test",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    );
    test.run(&["keys", "sync", "-e", "fleet"])
        .status(2)
        .stderr_has("is not one public key");
}

#[test]
fn keys_sync_refuses_what_would_lock_people_out() {
    let test = Test::with_config(
        "[project]\nname = \"k\"\n[env.fleet]\nhosts = { a = \"root@127.0.0.1:1\" }\n",
    );
    let ssh = test.home().join(".ssh");
    std::fs::create_dir_all(&ssh).expect("~/.ssh");
    std::fs::write(
        ssh.join("authorized_keys"),
        "ssh-ed25519 AAAAmine me@laptop\n",
    )
    .expect("keys");
    // The local env is this machine: its authorized_keys are the user's own.
    test.run(&["keys", "sync"])
        .status(2)
        .stderr_has("runs on this machine")
        .stderr_has("rewrite your own `authorized_keys`");
    // An env without `keys` would keep only weft's key on every host.
    test.run(&["keys", "sync", "-e", "fleet"])
        .status(2)
        .stderr_has("env `fleet` lists no `keys`")
        .stderr_has("weft.toml:3:");
    assert_eq!(
        std::fs::read_to_string(ssh.join("authorized_keys")).expect("keys"),
        "ssh-ed25519 AAAAmine me@laptop\n"
    );
}

#[test]
fn a_goal_failing_on_a_missing_var_names_the_host_and_the_close_vars() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/greet.rhai",
        "/// Greets.\nfn greet(host) {\n    let name = host.vars.whoo;\n    host.run(\"echo \" + name.to_upper());\n}\n",
    );
    test.run(&["run", "greet"])
        .status(1)
        .stderr_has("`vars.whoo` is `()` on local: it has no var `whoo`; did you mean `who`?");
}

#[test]
fn secrets_come_from_the_environment_files_and_commands_and_are_masked() {
    let test = Test::with_config(
        "[project]\nname = \"t\"\n[vars]\nplain = \"visible\"\n\
         token = { env = \"WEFT_TEST_TOKEN\" }\n\
         filed = { file = \"~/token\" }\n\
         made = { command = [\"printf\", \"cmd-%s\", \"4711\"] }\n",
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

    // A missing one fails the step that uses it before the step runs, pointing into
    // weft.toml and at the script's line.
    std::fs::remove_file(test.path().join("seen.txt")).expect("rm");
    test.run_with(&["run", "s_use"], &secrets[1..])
        .status(1)
        .stderr_has("secret `{ env = \"WEFT_TEST_TOKEN\" }`: the environment variable `WEFT_TEST_TOKEN` is not set")
        .stderr_has("weft.toml:5:9)")
        .stderr_has("export WEFT_TEST_TOKEN before running weft")
        .stderr_has("deploy/s.rhai:5:");
    assert!(!test.path().join("seen.txt").exists());
    // A missing one asked for by a script names the script's line.
    test.run_with(&["run", "s_use"], &secrets[..1])
        .status(1)
        .stderr_has("secret_env: the environment variable `WEFT_TEST_OTHER` is not set")
        .stderr_has("deploy/s.rhai:5:");
}

#[test]
fn a_missing_secret_fails_only_the_goals_and_steps_that_use_it() {
    let test = Test::with_config(
        "[project]\nname = \"t\"\n[vars]\nplain = \"visible\"\n\
         token = { env = \"WEFT_TEST_TOKEN\" }\n",
    );
    test.write("templates/app/t.hbs", "t={{token}}\n");
    test.write(
        "deploy/s.rhai",
        r#"
/// Reads the vars, never the secret.
fn s_plain(host) {
    let v = host.vars;
    host.write_file("plain.txt", v.plain);
}
/// Runs a command with the secret in it, after a step without it.
fn s_run(host) {
    host.write_file("before.txt", "ok");
    host.run(`echo ${host.vars.token} > ran.txt`);
}
/// Marks it secret.
fn s_mark(host) {
    let t = secret(env().vars.token);
    host.write_file("marked.txt", "x");
}
/// Renders it into a file.
fn s_template(host) {
    host.template("app/t.hbs", "t.txt");
}
"#,
    );
    test.run(&["run", "s_plain"]).status(0);
    assert_eq!(test.read("plain.txt"), "visible");
    let unset = "the environment variable `WEFT_TEST_TOKEN` is not set";
    test.run(&["run", "s_run"])
        .status(1)
        .stderr_has(unset)
        .stderr_has("deploy/s.rhai:10:");
    assert!(test.path().join("before.txt").exists());
    assert!(!test.path().join("ran.txt").exists(), "the command ran");
    test.run(&["run", "s_mark"]).status(1).stderr_has(unset);
    assert!(!test.path().join("marked.txt").exists());
    test.run(&["run", "s_template"]).status(1).stderr_has(unset);
    assert!(!test.path().join("t.txt").exists());
    test.run_with(&["run", "s_template"], &[("WEFT_TEST_TOKEN", "tok")])
        .status(0);
    assert_eq!(test.read("t.txt"), "t=tok\n");
}

#[test]
fn a_failed_command_shows_no_secret_long_quoted_or_replaced() {
    let test =
        Test::with_config("[project]\nname = \"t\"\n[vars]\npw = { env = \"WEFT_TEST_PW\" }\n");
    test.write(
        "deploy/f.rhai",
        r#"
/// Fails with two secrets in its command.
fn f_fail(host) {
    host.run("echo " + quote(secret_env("WEFT_TEST_LONG")) + " " + quote(secret_env("WEFT_TEST_QUOTE")) + "; false");
}

/// Writes a file holding a secret.
fn f_file(host) {
    host.file("pw.conf", #{ content: "pw=" + env().vars.pw + "\nport=1\n" });
}
"#,
    );
    // Longer than a report's line, and one that quoting changes.
    let long = format!("tok{}", "Zq9x".repeat(30));
    let quoted = "it's hunter2";
    let secrets = [
        ("WEFT_TEST_LONG", long.as_str()),
        ("WEFT_TEST_QUOTE", quoted),
        ("WEFT_TEST_PW", "pw-unused"),
    ];
    for args in [
        &["run", "f_fail"][..],
        &["run", "f_fail", "-v", "--json"][..],
    ] {
        let out = test.run_with(args, &secrets);
        out.status(1).stderr_has("********");
        let all = format!("{}{}", out.stdout, out.stderr);
        for piece in long.as_bytes().chunks(16) {
            let piece = std::str::from_utf8(piece).expect("ascii");
            assert!(
                !all.contains(piece),
                "a piece of the long secret shows: {all}"
            );
        }
        assert!(!all.contains("hunter2"), "the quoted secret shows: {all}");
    }
    // Under --diff, the secret a file held before the new one is not shown either.
    test.run_with(&["run", "f_file"], &[("WEFT_TEST_PW", "old-pw-4711")])
        .status(0);
    test.run_with(
        &["run", "f_file", "--diff"],
        &[("WEFT_TEST_PW", "new-pw-0815")],
    )
    .status(0)
    .stdout_has("pw.conf: sensitive content, diff hidden")
    .stdout_lacks("old-pw-4711")
    .stdout_lacks("new-pw-0815");
    assert_eq!(test.read("pw.conf"), "pw=new-pw-0815\nport=1\n");
}

#[test]
fn a_short_secret_is_masked_as_a_whole_word_only_and_warned_about_once() {
    let test = Test::with_config(
        "[project]\nname = \"t\"\n[vars]\nredis_password = { env = \"REDIS_PASSWORD\" }\n\
         other = { env = \"WEFT_TEST_OTHER\" }\n",
    );
    test.write(
        "deploy/m.rhai",
        r#"
/// Shows a URL with a one-letter password among words that hold the letter.
fn m_show(host) {
    let v = env().vars;
    log(`every key, yes, is ${v.other}`);
    host.run(`echo "REDIS_URL=redis://:${v.redis_password}@cache:6379/0"`);
}
"#,
    );
    let out = test.run_with(
        &["run", "m_show"],
        &[("REDIS_PASSWORD", "y"), ("WEFT_TEST_OTHER", "z")],
    );
    out.status(0)
        .stdout_has("every key, yes, is ********")
        .stdout_has("REDIS_URL=redis://:********@cache:6379/0")
        .stdout_has("summary")
        .stdout_lacks("summar********");
    let warning = "a secret is shorter than 6 characters: it is weak";
    assert_eq!(out.stderr.matches(warning).count(), 1, "{}", out.stderr);
}

#[test]
fn verbose_logs_mask_secrets_in_the_commands_they_show() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/v.rhai",
        "/// Echoes a secret.\nfn v_echo(host) { host.run(\"echo \" + secret_env(\"WEFT_TEST_V\") + \" >/dev/null\"); }\n",
    );
    test.run_with(
        &["run", "v_echo", "-v"],
        &[("WEFT_TEST_V", "v-secret-5772")],
    )
    .status(0)
    .stderr_has("weft::run: local: echo ******** >/dev/null")
    .stderr_lacks("v-secret-5772");
}

#[test]
fn a_file_changes_only_when_its_validate_command_accepts_the_new_content() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/v.rhai",
        r#"
/// Writes a config that must start with `ok`.
fn v_write(host, text) {
    host.file("conf.txt", #{ content: text + "\n", validate: ["grep", "-q", "^ok", "%s"] });
}
"#,
    );
    test.run(&["run", "v_write", "ok one"]).status(0);
    assert_eq!(test.read("conf.txt"), "ok one\n");
    test.run(&["run", "v_write", "broken"])
        .status(1)
        .stdout_has(
            "the new `conf.txt` was rejected by validation (`grep -q ^ok %s`) and left as it was",
        )
        .stdout_lacks("exited with");
    assert_eq!(test.read("conf.txt"), "ok one\n");
    // Nothing staged is left behind.
    let staged = std::fs::read_dir("/tmp")
        .expect("/tmp")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with(".weft-check-")
                && e.path().join("conf.txt").exists()
        })
        .count();
    assert_eq!(staged, 0);
}

/// The rows of the `--timings` table in the text output: (section, name, count).
pub fn timing_rows(stdout: &str) -> Vec<(String, String, usize)> {
    let table = stdout
        .split("\ntimings:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no timings table:\n{stdout}"));
    table
        .lines()
        .skip(1)
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let count = words[2].parse().unwrap_or_else(|e| panic!("{line}: {e}"));
            (words[0].to_string(), words[1].to_string(), count)
        })
        .collect()
}

#[test]
fn timings_list_the_operations_and_the_goal() {
    let test = Test::with_config(CONFIG);
    test.write("payload.txt", "data\n");
    test.write(
        "deploy/t.rhai",
        r#"
/// Does a little of everything.
fn t_all(host) {
    host.run("true");
    host.run(["mkdir", "-p", "out"]);
    host.directory("out/dir");
    host.upload("payload.txt", "out/payload.txt");
    host.file("out/payload.txt", #{ mode: "0640" });
}
"#,
    );
    let out = test.run(&["run", "t_all", "--timings"]);
    out.status(0).stdout_has("summary: 0 ok, 1 changed");
    let summary = out.stdout.find("summary:").expect("summary");
    assert!(out.stdout.find("\ntimings:").expect("timings") > summary);
    let mut rows = timing_rows(&out.stdout);
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("goal".into(), "t_all".into(), 1),
            ("operation".into(), "connect".into(), 1),
            ("operation".into(), "directory".into(), 1),
            ("operation".into(), "file".into(), 1),
            ("operation".into(), "run".into(), 2),
            ("operation".into(), "upload".into(), 1),
        ]
    );
    // Without the flag, no table.
    test.run(&["run", "t_all"])
        .status(0)
        .stdout_lacks("timings:");

    let out = test.run(&["run", "t_all", "--timings", "--json"]);
    out.status(0);
    let last: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().expect("a line")).expect("json");
    assert_eq!(last["event"], "timings");
    let rows = last["rows"].as_array().expect("rows");
    let run = rows.iter().find(|r| r["name"] == "run").expect("a run row");
    assert_eq!(run["section"], "operation");
    assert_eq!(run["count"], 2);
    assert_eq!(run["slowest_host"], "local");
    for key in ["total", "p50", "p95", "slowest"] {
        assert!(run[key].is_f64(), "{key} in {run}");
    }
    assert!(rows
        .iter()
        .any(|r| r["section"] == "goal" && r["name"] == "t_all"));
}

/// The host names of a `--timings-html` page, one per row, in order.
pub fn page_hosts(html: &str) -> Vec<String> {
    html.split("<text class=\"name\"")
        .skip(1)
        .map(|t| {
            let shown = t.split("</title>").nth(1).expect("a title, then the name");
            shown.split("</text>").next().expect("</text>").to_string()
        })
        .collect()
}

#[test]
fn timings_html_writes_a_page_with_a_row_per_host_and_its_operations() {
    let test = Test::with_config(CONFIG);
    test.write("payload.txt", "data\n");
    test.write(
        "deploy/t.rhai",
        r#"
/// Does a little of everything.
fn t_all(host) {
    host.run("true");
    host.directory("out/dir");
    host.upload("payload.txt", "out/payload.txt");
    host.file("out/payload.txt", #{ mode: "0640" });
}
"#,
    );
    let page = test.path().join("timings.html");
    let page_arg = page.to_str().expect("utf-8 path");
    // The page alone: no table on stdout.
    test.run(&["run", "t_all", "--timings-html", page_arg])
        .status(0)
        .stdout_lacks("timings:");
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    // Self-contained: nothing to fetch.
    assert!(!html.contains("https://") && !html.contains("<link") && !html.contains("src="));
    assert_eq!(page_hosts(&html), ["local"]);
    // Each operation is a bar titled with the host, its kind and times, on the host's row.
    for kind in ["connect", "run", "directory", "upload", "file"] {
        assert!(
            html.contains(&format!("<title>local · {kind} · ")),
            "no {kind} bar:\n{html}"
        );
    }
    assert!(html.contains("<title>local · goal t_all · "));
    // The legend names each kind; the table has the rows `--timings` prints.
    let legend = html.split("<div class=\"legend\">").nth(1).expect("legend");
    let legend = legend.split("</div>").next().expect("legend end");
    for kind in ["connect", "run", "directory", "upload", "file"] {
        assert!(
            legend.contains(&format!("</i>{kind} ")),
            "{kind} in {legend}"
        );
    }
    let table = html.split("<tbody>").nth(1).expect("table");
    assert!(table.contains("<td>goal</td><td>t_all</td><td>1</td>"));
    assert_eq!(table.matches("<tr>").count(), 6);

    // With --timings as well, both; the page is written again after a failure.
    test.write(
        "deploy/f.rhai",
        "/// Fails.\nfn f_fail(host) { host.run(\"true\"); host.run(\"exit 3\"); }\n",
    );
    std::fs::remove_file(&page).expect("rm");
    let out = test.run(&["run", "f_fail", "--timings", "--timings-html", page_arg]);
    out.status(1).stdout_has("\ntimings:");
    let html = std::fs::read_to_string(&page).expect("the page after a failure");
    assert!(html.contains("<g class=\"host failed\">"));
    assert!(html.contains("<title>local · failed · "));

    // A page that cannot be written stops the run before it starts.
    test.run(&["run", "t_all", "--timings-html", "no/such/folder/t.html"])
        .status(2)
        .stderr_has("cannot write the timings page `no/such/folder/t.html`: there is no folder `no/such/folder`");
    test.run(&["run", "t_all", "--timings-html", "deploy"])
        .status(2)
        .stderr_has("it is a folder");
}

#[test]
fn a_run_skipped_under_check_has_no_exit_code() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/s.rhai",
        r#"
/// Reports how a changing command and a reading one came back.
fn s_probe(host) {
    let changing = host.run("touch made.txt", #{ allow_fail: true });
    let reading = host.run("true", #{ allow_fail: true, check_safe: true });
    log(`changing: skipped=${changing.skipped} code=${changing.code} (${type_of(changing.code)})`);
    log(`reading: skipped=${reading.skipped} code=${reading.code}`);
    if !changing.skipped && changing.code != 0 { throw "failed"; }
}
"#,
    );
    test.run(&["run", "s_probe", "--check"])
        .status(0)
        .stdout_has("changing: skipped=true code= (())")
        .stdout_has("reading: skipped=false code=0");
    assert!(!test.path().join("made.txt").exists());
    test.run(&["run", "s_probe"])
        .status(0)
        .stdout_has("changing: skipped=false code=0 (i64)");
    assert!(test.path().join("made.txt").exists());
}

#[test]
fn operations_with_always_run_after_ctrl_c_and_others_do_not() {
    let test = Test::with_config(CONFIG);
    test.write("one/x", "1\n").write("two/x", "2\n");
    test.write(
        "deploy/a.rhai",
        r#"
/// Switches `current` to two, waits, and switches back when interrupted.
fn a_switch(host) {
    host.link("current", "one");
    try {
        host.link("current", "two");
        host.run("touch waiting && sleep 5");
        host.write_file("done.txt", "not reached\n");
    } catch (err) {
        host.link("current", "one", #{ always: true });
        host.write_file("cleaned.txt", "yes\n", #{ always: true });
        host.absent("two", #{ always: true });
        host.write_file("skipped.txt", "no\n");
    }
}
"#,
    );
    let mut child = test
        .command(&["run", "a_switch"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("weft starts");
    let waiting = test.path().join("waiting");
    for _ in 0..200 {
        if waiting.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(waiting.exists(), "the goal never reached its sleep");
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("weft ends");
    assert_ne!(status.code(), Some(0));
    let current = std::fs::read_link(test.path().join("current")).expect("current is a link");
    assert_eq!(current, std::path::Path::new("one"));
    assert_eq!(test.read("cleaned.txt"), "yes\n");
    assert!(
        !test.path().join("two").exists(),
        "absent with always did not run"
    );
    assert!(
        !test.path().join("skipped.txt").exists(),
        "a step without always ran after Ctrl-C"
    );
    assert!(!test.path().join("done.txt").exists());
}

#[test]
fn a_script_catches_a_failed_step_as_a_typed_error() {
    let test = Test::with_config(CONFIG);
    test.write("adir/keep", "x\n");
    test.write(
        "deploy/e.rhai",
        r#"
/// Catches three kinds of failure and reads them.
fn e_catch(host) {
    try {
        host.run("echo no >&2; exit 3");
    } catch (err) {
        log(`command: kind=${err.kind} code=${err.code} host=${err.host} command=${err.command}`);
        log(`as text: ${err}`);
        log(`at: ${err.source}:${err.line}:${err.column}`);
    }
    try {
        host.file("c.txt", #{ content: "bad\n", validate: ["grep", "-q", "^ok", "%s"] });
    } catch (err) {
        log(`rejected: kind=${err.kind} code=${type_of(err.code)} command=${err.command}`);
    }
    try {
        host.link("adir", "elsewhere");
    } catch (err) {
        log(`operation: kind=${err.kind} command=${type_of(err.command)} ${err.message}`);
    }
    try {
        throw "plain";
    } catch (err) {
        log(`thrown: ${type_of(err)} ${err}`);
    }
}
"#,
    );
    test.run(&["run", "e_catch"])
        .status(0)
        .stdout_has("command: kind=command code=3 host=local command=echo no >&2; exit 3")
        .stdout_has("as text: `echo no >&2; exit 3` exited with 3: no")
        .stdout_has("at: deploy/e.rhai:5:14")
        .stdout_has("rejected: kind=rejected code=() command=grep -q ^ok %s")
        .stdout_has("operation: kind=operation command=() link adir: adir is a directory")
        .stdout_has("thrown: string plain");
}

#[test]
fn a_validate_rejection_reads_as_one_and_points_at_the_script_line() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/r.rhai",
        "/// Writes a config a validator rejects.\nfn r_write(host) {\n    host.file(\"conf.txt\", #{ content: \"bad\\n\", validate: [\"sh\", \"-c\", \"echo 'line 1: not ok' >&2; exit 1\"] });\n}\n",
    );
    test.run(&["run", "r_write"])
        .status(1)
        .stdout_has("was rejected by validation")
        .stdout_has("not ok")
        .stdout_lacks("exited with")
        .stderr_has("the new `conf.txt` was rejected by validation")
        .stderr_has("line 1: not ok")
        .stderr_has("deploy/r.rhai:3:10")
        .stderr_lacks("exited with");
    assert!(!test.path().join("conf.txt").exists());
}

fn mode_of(test: &Test, rel: &str) -> u32 {
    let meta = std::fs::metadata(test.path().join(rel)).expect("meta");
    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
}

#[test]
fn new_files_are_0644_and_replaced_ones_keep_their_mode_as_over_ssh() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/modes.rhai",
        r#"
/// Writes files without a mode.
fn m_write(host, text) {
    host.directory("www");
    host.write_file("www/index.html", text);
    host.file("www/page.txt", #{ content: text });
    host.write_file("kept.txt", text);
}
"#,
    );
    test.write("kept.txt", "old\n");
    std::fs::set_permissions(
        test.path().join("kept.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .expect("chmod");
    test.run(&["run", "m_write", "v1"]).status(0);
    // A web server (another user) must be able to read what a goal wrote.
    assert_eq!(mode_of(&test, "www/index.html"), 0o644);
    assert_eq!(mode_of(&test, "www/page.txt"), 0o644);
    assert_eq!(mode_of(&test, "kept.txt"), 0o640);
    assert_eq!(test.read("kept.txt"), "v1");
}

#[test]
fn weft_ssh_on_the_local_connector_passes_input_and_bytes_unchanged() {
    let test = Test::with_config("[project]\nname = \"x\"\n");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(256 * 40 + 3).collect();
    std::fs::write(test.path().join("all.bin"), &bytes).expect("write");
    let input = std::fs::File::open(test.path().join("all.bin")).expect("open");
    let out = test
        .command(&["ssh", "local", "--", "cat;", "exit", "3"])
        .stdin(input)
        .output()
        .expect("weft runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        out.stdout == bytes,
        "got {} bytes, not {}",
        out.stdout.len(),
        bytes.len()
    );
}
