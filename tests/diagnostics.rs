//! Every bad input: a clear message pointing at the source, exit 2, and nothing run.

use crate::harness::Test;

const CONFIG: &str = "[project]\nname = \"diag\"\n[env.fleet]\nhosts = { app-0 = \"root@127.0.0.1:2201\" }\nroles = { web = [\"app-0\"] }\n";

/// A goal whose effect shows whether anything ran.
const MARKER: &str =
    "/// Leaves a marker.\nfn mark_it(host) { host.write_file(\"ran.txt\", \"x\"); }\n";

#[test]
fn toml_errors_point_at_the_span() {
    let test = Test::with_config("[project]\nname = \"x\"\n[env.a]\nconnector = \"telnet\"\n");
    test.run(&["list"])
        .status(2)
        .stderr_has("weft.toml:4:13")
        .stderr_has("unknown variant `telnet`")
        .stderr_has("4 │ connector = \"telnet\"");
    let test = Test::with_config("[project\n");
    test.run(&["list"])
        .status(2)
        .stderr_has("invalid table header");
    let test = Test::with_config("[env.a]\nhosts = { h = \"x\" }\nroles = { w = [\"hh\"] }\n");
    test.run(&["hosts"])
        .status(2)
        .stderr_has("role lists `hh`, which is not a host of env `a`")
        .stderr_has("weft.toml:3:16")
        .stderr_has("did you mean `h`?");
    // A package name that apt would read as an option is refused where it is written.
    let test = Test::with_config(
        "[env.a]\nprovider = \"local\"\n[env.a.machines.web]\npackages = [\"nginx\", \"--allow-unauthenticated\"]\n",
    );
    test.run(&["cloud", "create", "web", "-e", "a"])
        .status(2)
        .stderr_has("`--allow-unauthenticated` is not a Debian package name")
        .stderr_has("weft.toml:4:22");
}

#[test]
fn a_syntax_error_stops_everything_with_file_and_line() {
    let test = Test::with_config(CONFIG);
    test.write("deploy/mark.rhai", MARKER);
    test.write(
        "deploy/broken.rhai",
        "/// Broken.\nfn broken_goal(host) {\n    let x = ;\n}\n",
    );
    test.run(&["run", "mark_it"])
        .status(2)
        .stderr_has("syntax error in `deploy/broken.rhai:3:13`")
        .stderr_has("3 │     let x = ;");
    assert!(
        !test.path().join("ran.txt").exists(),
        "a goal ran despite a syntax error"
    );
}

/// The files of weft's index of script outlines in the test's cache folder.
fn index_files(test: &Test) -> Vec<std::path::PathBuf> {
    let dir = test.home().join(".cache/weft/index");
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default()
}

/// Commands compile only what they run, from an index kept in the cache folder (issue 38);
/// no edit is hidden by it, and a broken index is only a slower start.
#[test]
fn the_kept_index_of_goals_never_hides_an_edit() {
    let test = Test::with_config("[project]\nname = \"idx\"\n");
    test.write("deploy/lib/helper.rhai", "fn twice(s) { s + s }\n");
    let goal = "import \"helper\" as h;\n/// Leaves a doubled marker.\n\
                fn mark_it(host) { host.write_file(\"ran.txt\", h::twice(\"x\")); }\n";
    test.write("deploy/mark.rhai", goal);
    let listed = test.run(&["list"]).status(0).stdout.clone();
    assert!(listed.contains("Leaves a doubled marker."), "{listed}");
    assert_eq!(index_files(&test).len(), 1, "no index was kept");

    // From the index: the goal's file and the module it imports are compiled as it runs.
    assert_eq!(test.run(&["list"]).status(0).stdout, listed);
    test.run(&["run", "mark_it"]).status(0);
    assert_eq!(test.read("ran.txt"), "xx");

    test.write(
        "deploy/mark.rhai",
        &goal.replace("doubled", "twice-written"),
    );
    test.run(&["list"])
        .status(0)
        .stdout_has("Leaves a twice-written marker.");

    // A syntax error is found as before, in the goal's file and in a module it imports.
    std::fs::remove_file(test.path().join("ran.txt")).expect("remove ran.txt");
    test.write("deploy/mark.rhai", &goal.replace("h::twice", "h::twice("));
    test.run(&["list"])
        .status(2)
        .stderr_has("syntax error in `deploy/mark.rhai:3:");
    test.write("deploy/mark.rhai", goal);
    test.write("deploy/lib/helper.rhai", "fn twice(s) { s + }\n");
    test.run(&["run", "mark_it"])
        .status(2)
        .stderr_has("syntax error in `deploy/lib/helper.rhai:1:");
    assert!(
        !test.path().join("ran.txt").exists(),
        "a goal ran despite a syntax error"
    );

    // Back to a text the index knows, then an index that is not one: both list as before.
    test.write("deploy/lib/helper.rhai", "fn twice(s) { s + s }\n");
    assert_eq!(test.run(&["list"]).status(0).stdout, listed);
    for file in index_files(&test) {
        std::fs::write(file, "{ not an index").expect("spoil the index");
    }
    assert_eq!(test.run(&["list"]).status(0).stdout, listed);
    test.run(&["run", "mark_it"]).status(0);
    assert_eq!(test.read("ran.txt"), "xx");
}

#[test]
fn unknown_names_suggest_the_closest() {
    let test = Test::with_config(CONFIG);
    test.write("deploy/mark.rhai", MARKER);
    test.run(&["run", "mark_ti"])
        .status(2)
        .stderr_has("unknown goal `mark_ti`")
        .stderr_has("did you mean `mark_it`?");
    test.run(&["run", "mark_it", "-e", "flet"])
        .status(2)
        .stderr_has("unknown env `flet`")
        .stderr_has("did you mean `fleet`?");
    test.run(&["run", "mark_it", "-e", "fleet", "-r", "wbe"])
        .status(2)
        .stderr_has("did you mean `web`?");
    test.run(&["run", "mark_it", "-e", "fleet", "-H", "app0"])
        .status(2)
        .stderr_has("did you mean `app-0`?");
    test.run(&["run", "mark_it", "extra"])
        .status(2)
        .stderr_has("takes no arguments, 1 given");
    assert!(!test.path().join("ran.txt").exists());
}

#[test]
fn runtime_errors_show_the_line_and_the_call_chain() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/deep.rhai",
        "/// Fails two calls down.\nfn deep_fail(host) {\n    step(host);\n}\n\nprivate fn step(host) {\n    let n = 1;\n    throw `step ${n} broke`;\n}\n",
    );
    test.run(&["run", "deep_fail"])
        .status(1)
        .stderr_has("step 1 broke")
        .stderr_has("at deploy/deep.rhai:8:5")
        .stderr_has("8 │     throw `step ${n} broke`;")
        .stderr_has("in `step`, called at deploy/deep.rhai:3:5");
}

#[test]
fn errors_inside_imported_modules_point_into_the_module() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/lib/helper.rhai",
        "fn explode() {\n    let a = [1];\n    a[5]\n}\n",
    );
    test.write(
        "deploy/m.rhai",
        "import \"helper\" as h;\n/// Uses a module.\nfn m_go() { h::explode(); }\n",
    );
    test.run(&["run", "m_go"])
        .status(1)
        .stderr_has("deploy/lib/helper.rhai:3:")
        .stderr_has("3 │     a[5]");
}

#[test]
fn runaway_loops_end_with_a_clear_error() {
    let test = Test::with_config("[project]\nname = \"x\"\nmax_operations = 100000\n");
    test.write(
        "deploy/spin.rhai",
        "/// Spins.\nfn spin_forever() {\n    loop { }\n}\n",
    );
    test.run(&["run", "spin_forever"])
        .status(1)
        .stderr_has("goal `spin_forever` ran too many operations")
        .stderr_has("deploy/spin.rhai:2:4")
        .stderr_has("max_operations");
}

#[test]
fn template_errors_name_the_template_and_line() {
    let test = Test::with_config(CONFIG);
    test.write("templates/app/conf.hbs", "a\nport = {{prot}}\n");
    test.run(&["template", "render", "app/conf.hbs"])
        .status(2)
        .stderr_has("templates/app/conf.hbs:2:")
        .stderr_has("variable `prot` is not set")
        .stderr_has("2 │ port = {{prot}}");
    test.write(
        "deploy/t.rhai",
        "/// Renders.\nfn t_conf(host) { host.template(\"app/conf.hbs\", \"conf\"); }\n",
    );
    test.run(&["run", "t_conf"])
        .status(1)
        .stdout_has("variable `prot` is not set")
        .stderr_has("deploy/t.rhai:2:");
    test.run(&["template", "render", "app/cnof.hbs"])
        .status(2)
        .stderr_has("did you mean `app/conf.hbs`?");
    test.run(&["template", "render", "app/conf.hbs", "--var", "prot=80"])
        .status(0)
        .stdout_has("port = 80");
}

#[test]
fn a_template_that_does_not_parse_stops_the_run_before_anything_runs() {
    let test = Test::with_config(CONFIG);
    test.write("templates/app/bad.hbs", "x\n{{#if a}}\n");
    test.write(
        "deploy/w.rhai",
        "/// Writes a file, renders no template.\nfn w_file(host) { host.write_file(\"w.txt\", \"w\"); }\n",
    );
    test.run(&["run", "w_file"])
        .status(2)
        .stderr_has("templates/app/bad.hbs:");
    assert!(!test.path().join("w.txt").exists(), "the goal ran");
    test.write("templates/app/bad.hbs", "x\n{{#if a}}y{{/if}}\n");
    test.run(&["run", "w_file"]).status(0);
    assert_eq!(test.read("w.txt"), "w");

    // The index knows which texts parse (issue 38): an edit that breaks one is still found
    // before anything runs, and so is one in a template the goal never renders.
    test.run(&["run", "w_file"]).status(0);
    std::fs::remove_file(test.path().join("w.txt")).expect("remove w.txt");
    test.write("templates/app/bad.hbs", "x\n{{#each a}}\n");
    test.write("templates/app/ok.hbs", "fine\n");
    test.run(&["run", "w_file"])
        .status(2)
        .stderr_has("templates/app/bad.hbs:");
    test.run(&["run", "w_file"])
        .status(2)
        .stderr_has("templates/app/bad.hbs:");
    test.write("templates/app/bad.hbs", "x\n");
    test.write("templates/app/ok.hbs", "{{/if}}\n");
    test.run(&["run", "w_file"])
        .status(2)
        .stderr_has("templates/app/ok.hbs:");
    assert!(!test.path().join("w.txt").exists(), "the goal ran");
}

#[test]
fn a_template_preview_resolves_secrets_and_masks_them() {
    let test =
        Test::with_config("[project]\nname = \"x\"\n[vars]\npw = { env = \"WEFT_TEST_PW\" }\n");
    test.write("templates/app/pw.hbs", "pw={{pw}}\n");
    test.run_with(
        &["template", "render", "app/pw.hbs"],
        &[("WEFT_TEST_PW", "pw-2718")],
    )
    .status(0)
    .stdout_has("pw=********")
    .stdout_lacks("pw-2718")
    .stdout_lacks("[object]");
    // A secret that cannot be resolved is an error pointing into weft.toml, as for a run.
    test.run(&["template", "render", "app/pw.hbs"])
        .status(2)
        .stderr_has("the environment variable `WEFT_TEST_PW` is not set")
        .stderr_has("weft.toml:4:");
}

#[test]
fn two_definitions_of_a_goal_in_one_layer_are_an_error() {
    let test = Test::with_config(CONFIG);
    test.write("deploy/a.rhai", "/// A.\nfn twin_goal(host) {}\n");
    test.write("deploy/b.rhai", "/// B.\nfn twin_goal(host) {}\n");
    test.run(&["list"])
        .status(2)
        .stderr_has("goal `twin_goal` is defined twice: in `deploy/a.rhai` and in `deploy/b.rhai`");
}

#[test]
fn bad_options_fail_with_the_valid_ones_named() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/o.rhai",
        "/// Typo.\nfn o_typo(host) { host.run(\"true\", #{ chekc: false }); }\n",
    );
    test.run(&["run", "o_typo"])
        .status(1)
        .stderr_has("unknown option `chekc`; options are `allow_fail`, `check`, `check_safe`");
}

#[test]
fn errors_inside_stdlib_scripts_show_the_stdlib_source() {
    let test = Test::with_config(CONFIG);
    test.run(&["run", "system_report", "missing/dir/report.txt"])
        .status(1)
        .stderr_has("cannot write `missing/dir/report.txt`")
        .stderr_has("<stdlib>/services/system.rhai:")
        .stderr_has("host.template(\"system/report.txt.hbs\", path, facts)");
}

#[test]
fn app_config_errors_name_the_app_and_the_fix() {
    let test = Test::with_config("[apps.my-site]\nrepos = []\n");
    test.run(&["list"])
        .status(2)
        .stderr_has("app name `my-site` cannot start goal names")
        .stderr_has("weft.toml:");
    // An app without repos fails its build before anything is touched.
    let test = Test::with_config("[apps.site]\nroot = \"www\"\n");
    test.run(&["run", "site_deploy"])
        .status(1)
        .stdout_has("[apps.site] lists no repos");
    assert!(!test.path().join("www").exists());
    test.run(&["run", "site_deploy", "--set", "apps.site.repos"])
        .status(2)
        .stderr_has("is not KEY=VALUE");
}

#[test]
fn unknown_app_settings_are_named_with_the_closest_ones() {
    let test = Test::with_config(
        "[apps.site]\nrepos = [{ name = \"site\", path = \"site\" }]\nwrokers = 4\n",
    );
    test.run(&["list"])
        .status(2)
        .stderr_has("`wrokers` is not a setting of [apps.site]")
        .stderr_has("weft.toml:3:1")
        .stderr_has("did you mean `workers`?");
    let test = Test::with_config("[apps.site]\nrepos = [{ name = \"site\", pth = \"site\" }]\n");
    test.run(&["list"])
        .status(2)
        .stderr_has("`pth` is not a setting of a repo of [apps.site]")
        .stderr_has("did you mean `path`?");
    let test = Test::with_config("[apps.site]\nmanager = \"runit\"\n");
    test.run(&["list"])
        .status(2)
        .stderr_has("`manager` of [apps.site] is `runit`");
}

/// Container apps (issue 36): a setting podman could not take stops weft at its line.
#[test]
fn bad_container_settings_stop_weft_at_their_line() {
    for (setting, message, help) in [
        (
            "image = \"Hello World\"",
            "`image` of [apps.site] is not an image name",
            "such as \"localhost/hello\"",
        ),
        (
            "image = \"localhost/site\"\napp_port = 70000",
            "`app_port` of [apps.site] is 70000, not a port from 1 to 65534",
            "the next one is the",
        ),
        (
            "image = \"localhost/site\"\nvolumes = [\"data:/data\"]",
            "`volumes` of [apps.site] is not a list of mounts",
            "both paths absolute",
        ),
        (
            "image = \"localhost/site\"\nenv = { \"1X\" = \"a\" }",
            "`env` of [apps.site] is not a table of variables",
            "names of letters, digits and _",
        ),
        (
            "image = \"localhost/site\"\ncmd = \"/bin/app --serve\"",
            "`cmd` of [apps.site] is not a list of strings",
            "cmd = [\"/bin/app\", \"--serve\"]",
        ),
    ] {
        let test = Test::with_config(&format!("[apps.site]\n{setting}\n"));
        let line = setting.lines().count() + 1;
        test.run(&["list"])
            .status(2)
            .stderr_has(message)
            .stderr_has(help)
            .stderr_has(&format!("weft.toml:{line}:1"));
    }
    // A good one loads, and lists the container app's goals.
    let test = Test::with_config(
        "[apps.site]\nimage = \"registry.example/site:1.2\"\napp_port = 9000\n\
         env = { LOG = \"info\", TOKEN = { env = \"SITE_TOKEN\" } }\n\
         volumes = [\"/srv/site:/data:ro\"]\ncmd = [\"/bin/site\"]\n",
    );
    test.run(&["list"]).status(0).stdout_has("site_deploy ");
}

#[test]
fn an_ejected_app_service_declares_new_settings() {
    let config = "[apps.site]\nrepos = [{ name = \"site\", path = \"site\" }]\nreplicas = 3\n";
    let test = Test::with_config(config);
    test.run(&["list"])
        .status(2)
        .stderr_has("`replicas` is not a setting of [apps.site]");
    test.run(&["stdlib", "eject", "lib/app.rhai"]).status(0);
    let ejected = test.read("deploy/lib/app.rhai");
    let declared = ejected.replacen(
        "        keep: #{",
        "        replicas: #{ value: 1, doc: \"copies per machine\" },\n        keep: #{",
        1,
    );
    assert_ne!(
        declared, ejected,
        "app_settings() has no `keep` to add beside"
    );
    test.write("deploy/lib/app.rhai", &declared);
    test.run(&["list"]).status(0).stdout_has("site_deploy");
}

#[test]
fn a_value_that_grows_without_end_stops_at_a_limit_with_a_clear_error() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/grow.rhai",
        "/// Doubles a string forever.\nfn grow_forever() {\n    let s = \"x\";\n    loop { s += s; }\n}\n",
    );
    test.run(&["run", "grow_forever"])
        .status(1)
        .stderr_has("Length of string too large")
        .stderr_has("deploy/grow.rhai:2")
        .stderr_has("a value grew past weft's limits");
    let zero = Test::with_config("[project]\nname = \"x\"\nmax_operations = 0\n");
    zero.run(&["list"])
        .status(2)
        .stderr_has("`max_operations = 0` would let a goal run without any limit")
        .stderr_has("weft.toml:3");
}

/// The one JSON document `out` holds, which must be an `error` event.
fn error_event(out: &str) -> serde_json::Value {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is not one JSON line: {out}");
    let event: serde_json::Value = serde_json::from_str(lines[0]).expect("stdout is JSON");
    assert_eq!(event["event"], "error", "{out}");
    event
}

#[test]
fn fatal_errors_under_json_are_one_error_event_on_stdout() {
    let test = Test::with_config(CONFIG);
    test.write("deploy/mark.rhai", MARKER);
    let out = test.run(&["run", "mark_ti", "--json"]);
    out.status(2);
    let event = error_event(&out.stdout);
    assert_eq!(event["code"], "weft::script::unknown_goal");
    assert_eq!(event["message"], "unknown goal `mark_ti`");
    assert!(event["help"]
        .as_str()
        .is_some_and(|h| h.contains("`mark_it`")));
    assert!(event["location"].is_null());

    test.write(
        "deploy/broken.rhai",
        "/// Broken.\nfn broken_goal(host) {\n    let x = ;\n}\n",
    );
    let out = test.run(&["run", "mark_it", "--json"]);
    out.status(2);
    let event = error_event(&out.stdout);
    assert_eq!(event["code"], "weft::script::syntax");
    assert_eq!(
        event["location"],
        serde_json::json!({"file": "deploy/broken.rhai", "line": 3, "column": 13})
    );
    assert!(!test.path().join("ran.txt").exists());
}

#[test]
fn host_names_that_are_not_folder_names_are_refused_before_anything_connects() {
    let test = Test::with_config(
        "[project]\nname = \"diag\"\n[env.x]\nhosts = { \"../../esc\" = \"root@127.0.0.1:2201\" }\n",
    );
    test.run(&["copy", "--pull", "/etc/hostname", "DIR", "-e", "x"])
        .status(2)
        .stderr_has("host name `../../esc` contains `/`")
        .stderr_has("weft.toml:4:11")
        .stderr_has("4 │ hosts = { \"../../esc\" = \"root@127.0.0.1:2201\" }")
        .stderr_has("become folder names");
    assert!(!test.path().join("DIR").exists());
    for (name, why) in [
        ("..", "would name the folder itself or its parent"),
        (".", "would name the folder itself or its parent"),
        ("", "is empty"),
        ("a\\tb", "contains a control character"),
    ] {
        let test = Test::with_config(&format!(
            "[env.x.hosts]\nok = \"root@127.0.0.1:2201\"\n\"{name}\" = \"root@127.0.0.1:2202\"\n"
        ));
        test.run(&["hosts", "-e", "x"])
            .status(2)
            .stderr_has(why)
            .stderr_has("weft.toml:3:1");
    }
    // Machine roles name the provider's machines, their hosts and their folders.
    let test = Test::with_config(
        "[env.a]\nprovider = \"local\"\n[env.a.machines.\"../web\"]\ncount = 1\n",
    );
    test.run(&["hosts", "-e", "a"])
        .status(2)
        .stderr_has("machine role `../web` contains `/`")
        .stderr_has("weft.toml:3:17");
}

#[test]
fn copy_of_a_missing_local_source_stops_before_connecting() {
    let test = Test::with_config(CONFIG);
    test.run(&["copy", "missing.txt", "/tmp/missing.txt", "-e", "fleet"])
        .status(2)
        .stderr_has("cannot copy `missing.txt`: No such file or directory")
        .stderr_has("add --pull")
        .stderr_lacks("app-0")
        .stdout_lacks("summary");
}

#[test]
fn out_of_range_numbers_are_usage_errors_not_panics() {
    let test = Test::new();
    for flags in [
        ["--command-timeout", "18446744073709551615"],
        ["--command-timeout", "31536001"],
        ["--connect-timeout", "18446744073709551615"],
        ["-p", "2305843009213693952"],
        ["-p", "100001"],
        ["-p", "0"],
        ["--serial", "0"],
    ] {
        let mut args = vec!["exec", "-H", "root@127.0.0.1:1"];
        args.extend(flags);
        args.extend(["--", "true"]);
        test.run(&args)
            .status(2)
            .stderr_has(&format!("invalid value '{}' for '", flags[1]))
            .stderr_has("is not in")
            .stderr_lacks("panicked")
            .stderr_lacks("unreachable");
    }
}

#[test]
fn an_unusable_host_address_is_refused_where_it_is_written() {
    // Each address alone, so each error is shown: weft stops at the first one.
    let cases = [
        (
            "hosts = { a = \"root@127.0.0.1:notaport\" }",
            "the address of host `a` is unusable: `notaport` in `root@127.0.0.1:notaport` is not a port",
            "weft.toml:2:15",
        ),
        (
            "hosts = { b = \"\" }",
            "the address of host `b` is empty",
            "weft.toml:2:15",
        ),
        (
            "hosts = { c = \"root@[::1\" }",
            "the address of host `c` is unusable: `root@[::1` opens `[` without closing it",
            "weft.toml:2:15",
        ),
        (
            "hosts = { d = { address = \"@10.0.0.5\", vars = { x = 1 } } }",
            "the address of host `d` is unusable: `@10.0.0.5` has an empty user before `@`",
            "weft.toml:2:27",
        ),
    ];
    for (hosts, message, location) in cases {
        let test = Test::with_config(&format!("[env.fleet]\n{hosts}\n"));
        test.write("deploy/mark.rhai", MARKER);
        for argv in [
            &["hosts", "-e", "fleet"][..],
            &["run", "mark_it", "-e", "fleet"],
        ] {
            test.run(argv)
                .status(2)
                .stderr_has(message)
                .stderr_has(location)
                .stderr_has(&format!("2 │ {hosts}"))
                .stderr_has("[user@]host[:port]");
        }
        assert!(!test.path().join("ran.txt").exists());
    }
}

#[test]
fn no_hosts_in_a_provider_env_suggests_env_up() {
    let test = Test::with_config(
        "[project]\nname = \"empty\"\n[env.dev]\nprovider = \"local\"\n\
         [env.dev.machines.app]\ncount = 1\n\
         [env.fleet]\nhosts = { a = \"root@127.0.0.1:1\" }\nroles = { web = [] }\n",
    );
    // No machine is up yet: whichever role is asked for, the fix is to make them.
    for args in [
        &["run", "system_info", "-e", "dev"][..],
        &["run", "system_info", "-e", "dev", "-r", "app"],
        &["exec", "-e", "dev", "--", "true"],
    ] {
        test.run(args)
            .status(2)
            .stderr_has("no hosts selected in env `dev`")
            .stderr_has("`weft run env_up -e dev`");
    }
    // Hosts listed in weft.toml: env_up would not add any.
    test.run(&["run", "system_info", "-e", "fleet", "-r", "web"])
        .status(2)
        .stderr_has("no hosts selected in env `fleet`")
        .stderr_has("`weft hosts -e fleet`")
        .stderr_lacks("env_up");
}
