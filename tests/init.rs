//! `weft init` and the skeleton it writes.

use crate::harness::Test;

#[test]
fn init_creates_a_project_whose_goals_list_and_run() {
    let test = Test::new();
    test.run(&["init", "demo"])
        .status(0)
        .stdout_has("created demo/weft.toml");
    let demo = test.path().join("demo");
    let list = test.run_in(&demo, &["list"]);
    list.status(0)
        .stdout_has("hello_deploy <version>")
        .stdout_has("[project] Deploy the hello page")
        .stdout_lacks("anon$")
        .stdout_has("system_info");
    test.run_in(&demo, &["run", "hello_deploy", "v1", "-e", "local"])
        .status(0)
        .stdout_has("changed: file www/index.html");
    let page = std::fs::read_to_string(demo.join("www/index.html")).expect("page");
    assert!(page.contains("<h1>hello from local</h1>"), "{page}");
    assert!(page.contains("version v1"), "{page}");
    assert!(page.contains("<title>demo</title>"), "{page}");
    // A web server running as another user serves it.
    let meta = std::fs::metadata(demo.join("www/index.html")).expect("meta");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o644
    );
}

#[test]
fn init_refuses_an_existing_project_and_unknown_skeletons() {
    let test = Test::new();
    test.run(&["init"]).status(0);
    test.run(&["init"]).status(2).stderr_has("already exists");
    test.run(&["init", "x", "--skeleton", "defualt"])
        .status(2)
        .stderr_has("did you mean `default`?");
}

/// Writes skeleton `name` as project `project` and checks each file equals the example's.
fn skeleton_matches_example(
    test: &Test,
    name: &str,
    project: &str,
    example: &str,
) -> std::path::PathBuf {
    test.run(&["init", project, "--skeleton", name])
        .status(0)
        .stdout_has("weft run env_up");
    let made = test.path().join(project);
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(example);
    for entry in walkdir::WalkDir::new(&made)
        .into_iter()
        .filter_map(Result::ok)
    {
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(&made).expect("inside");
        let theirs = std::fs::read_to_string(example.join(rel))
            .unwrap_or_else(|_| panic!("{} lacks {}", example.display(), rel.display()));
        let ours = std::fs::read_to_string(entry.path()).expect("read");
        assert_eq!(
            ours,
            theirs,
            "{}/{} differs from the skeleton",
            example.display(),
            rel.display()
        );
    }
    made
}

#[test]
fn the_python_wsgi_skeleton_is_the_hello_wsgi_example_and_lists_the_app_goals() {
    let test = Test::new();
    let made = skeleton_matches_example(&test, "python-wsgi", "hello-wsgi", "examples/hello-wsgi");
    assert!(made.join("app/hello/__init__.py").exists());
    test.run_in(&made, &["list"])
        .status(0)
        .stdout_has("hello_deploy ")
        .stdout_has("hello_activate <id>")
        .stdout_has("hello_rollback ")
        .stdout_has("nginx_reload ")
        .stdout_has("haproxy_setup ")
        .stdout_has("[project] Show what each machine answers");
}

#[test]
fn the_container_skeleton_is_the_hello_container_example_and_lists_the_app_goals() {
    let test = Test::new();
    let made = skeleton_matches_example(
        &test,
        "container",
        "hello-container",
        "examples/hello-container",
    );
    assert!(made.join("app/Containerfile").exists());
    test.run_in(&made, &["list"])
        .status(0)
        .stdout_has("hello_deploy ")
        .stdout_has("hello_rollback ")
        .stdout_has("hello_prune ")
        .stdout_has("podman_setup ")
        .stdout_has("[project] Fetch Debian's busybox-static");
}

#[test]
fn the_python_postgres_skeleton_is_the_notes_example_with_data_goals() {
    let test = Test::new();
    let made = skeleton_matches_example(&test, "python-postgres", "notes", "examples/notes");
    assert!(made.join("app/notes/__init__.py").exists());
    let listed = test.run_in(&made, &["list"]);
    listed
        .status(0)
        .stdout_has("notes_deploy ")
        .stdout_has("postgres_dump <dir>")
        .stdout_has("redis_load <dir>")
        .stdout_has("uploads_dump <dir>")
        .stdout_has("restore <backup>")
        .stdout_has("backup_prune <keep>");
    // The example's own scrub hook, from the project layer.
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with("notes_scrub ") && l.contains("[project]")),
        "{}",
        listed.stdout
    );
}

#[test]
fn a_name_with_a_quote_is_written_as_one_toml_string() {
    let test = Test::new();
    test.run(&["init", "x", "--name", "a\"b"]).status(0);
    let x = test.path().join("x");
    let config: toml::Table = test.read("x/weft.toml").parse().expect("weft.toml parses");
    assert_eq!(config["project"]["name"].as_str(), Some("a\"b"));
    test.run_in(&x, &["list"]).status(0);
    // A folder's name is the default name; the `cd` hint quotes it for the shell.
    test.run(&["init", "q\"d"])
        .status(0)
        .stdout_has("next: cd 'q\"d' && weft list");
    let config: toml::Table = test
        .read("q\"d/weft.toml")
        .parse()
        .expect("weft.toml parses");
    assert_eq!(config["project"]["name"].as_str(), Some("q\"d"));
}

#[test]
fn init_in_the_working_folder_suggests_no_cd() {
    let test = Test::new();
    test.run(&["init"])
        .status(0)
        .stdout_has("next: weft list")
        .stdout_lacks("cd ");
    test.run(&["init", "sub"])
        .status(0)
        .stdout_has("next: cd sub && weft list");
}

#[test]
fn a_plugin_name_that_cannot_start_a_rhai_name_is_refused() {
    let test = Test::new();
    test.run(&["init", "--skeleton", "plugin", "1greet"])
        .status(2)
        .stderr_has("`1greet`")
        .stderr_has("starting with a letter or `_`");
    assert!(!test.path().join("1greet").exists());
    test.run(&["init", "--skeleton", "plugin", "greet1"])
        .status(0);
    assert!(test
        .read("greet1/services/greet1.rhai")
        .contains("fn greet1_selftest(host)"));
}

#[test]
fn init_help_lists_every_skeleton_with_its_line() {
    let test = Test::new();
    let help = test.run(&["init", "--help"]);
    help.status(0).stdout_has("Skeletons (--skeleton NAME):");
    let skeletons = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("stdlib/skeletons");
    let mut seen = 0;
    for entry in std::fs::read_dir(skeletons).expect("skeletons") {
        let dir = entry.expect("entry").path();
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let about = std::fs::read_to_string(dir.join("ABOUT"))
            .unwrap_or_else(|_| panic!("skeleton {name} has no ABOUT line"));
        let line = help
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("`weft init --help` lacks {name}\n{}", help.stdout));
        assert!(line.ends_with(about.trim()), "{line:?} is not {about:?}");
        seen += 1;
    }
    assert!(seen >= 4, "{seen} skeletons");
}

#[test]
fn every_project_skeleton_ignores_weft_state_and_backups_in_git() {
    let test = Test::new();
    for name in ["default", "python-wsgi", "python-postgres", "container"] {
        test.run(&["init", name, "--skeleton", name])
            .status(0)
            .stdout_has(&format!("created {name}/.gitignore"));
        let ignored = test.read(&format!("{name}/.gitignore"));
        let lines: Vec<&str> = ignored.lines().collect();
        for wanted in [".weft/", "backups/"] {
            assert!(lines.contains(&wanted), "{name}: {ignored}");
        }
        // The skeleton's notes for weft itself are not written.
        for note in ["ABOUT", "NEXT"] {
            assert!(!test.path().join(name).join(note).exists(), "{name}/{note}");
        }
    }
}
