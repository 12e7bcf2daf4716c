//! The generic `app` service on this machine (the `local` env): builds from project folders
//! and git repos, checksums, atomic switches, rollback to good builds only, checks, the deploy
//! lock and pruning. The web stack on real machines is in `webstack.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{git, Test};

/// Shared by every test: pip's downloads (setuptools for the builds) are fetched once.
pub fn pip_cache() -> (String, String) {
    (
        "PIP_CACHE_DIR".into(),
        "/var/tmp/weft-test-pip-cache".into(),
    )
}

/// A project whose app `site` is the folder `site/`, installed to `<tmp>/www/site`.
fn project() -> (Test, PathBuf) {
    let test = Test::new().with_env(vec![pip_cache()]);
    let www = test.path().join("www");
    test.write(
        "weft.toml",
        &format!(
            "[project]\nname = \"shop\"\n\
             [apps.site]\nroot = \"{}\"\nrepos = [{{ name = \"site\", path = \"site\", install = false }}]\n\
             keep = 2\ncheck = \"grep -qx ok src/site/health.txt\"\n",
            www.display()
        ),
    );
    test.write("site/health.txt", "ok\n");
    (test, www.join("site"))
}

/// Where `host.lock` keeps the app's lock `kind` (`app`: the machine's own, `deploy`: the
/// env's deploy lock) for the app at `base`: the lock folder of root, the name percent-encoded.
fn lock_dir(base: &Path, kind: &str) -> PathBuf {
    let name = format!("{kind} {}", base.display());
    let mut file = String::new();
    for (i, byte) in name.bytes().enumerate() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || (byte == b'.' && i > 0) {
            file.push(byte as char);
        } else {
            file.push_str(&format!("%{byte:02X}"));
        }
    }
    Path::new("/var/lib/weft/locks").join(file)
}

/// Plants lock `kind` of the app at `base` as a killed run of `runner` would have left it.
fn plant_lock(base: &Path, kind: &str, runner: &str, what: &str) {
    let dir = lock_dir(base, kind);
    std::fs::create_dir_all(&dir).expect("lock");
    std::fs::write(
        dir.join("owner"),
        format!("runner={runner}\nrun=1\nsince=1764000000\nwhat={what}\n"),
    )
    .expect("owner");
}

fn serving(base: &Path) -> String {
    std::fs::read_to_string(base.join("current/src/site/index.html")).unwrap_or_default()
}

/// The build archives in a `dist/` folder, oldest first (by when they were made or reused:
/// ids name the content, not the time).
fn archives(dist: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dist)
        .expect("dist")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .map(|p| {
            (
                std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .expect("mtime"),
                p,
            )
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

#[test]
fn deploys_switch_atomically_and_roll_back_to_good_builds_only() {
    let (test, base) = project();
    test.write("site/index.html", "v1\n");
    test.run(&["run", "site_deploy", "--check"])
        .status(0)
        .stdout_has("would build site");
    assert!(!base.exists() && !test.path().join(".weft").exists());
    // A build alone under --check writes nothing on the controller either.
    test.run(&["run", "site_build", "--check"])
        .status(0)
        .stdout_has("would build site on controller")
        .stdout_lacks("would change:");
    assert!(!test.path().join(".weft").exists());
    test.run(&["run", "site_deploy"])
        .status(0)
        .stdout_has("activated")
        .stdout_has("deployed site");
    assert_eq!(serving(&base), "v1\n");
    test.write("site/index.html", "v2\n");
    test.run(&["run", "site_deploy"]).status(0);
    assert_eq!(serving(&base), "v2\n");
    test.run(&["run", "site_rollback"])
        .status(0)
        .stdout_has("rolled back");
    assert_eq!(serving(&base), "v1\n");

    // A build that fails its check is never activated, and never rolled back to.
    test.write("site/index.html", "v3\n")
        .write("site/health.txt", "failing\n");
    test.run(&["run", "site_deploy"])
        .status(1)
        .stdout_has("the check of");
    assert_eq!(serving(&base), "v1\n");
    test.run(&["run", "site_status"])
        .status(0)
        .stdout_has("(bad)")
        .stdout_has("* ");
    test.run(&["run", "site_rollback"]).status(0);
    assert_eq!(serving(&base), "v2\n");

    // Prune keeps `keep` builds and the active one.
    test.write("site/health.txt", "ok\n")
        .write("site/index.html", "v4\n");
    test.run(&["run", "site_deploy"]).status(0);
    let builds = std::fs::read_dir(base.join("builds"))
        .expect("builds")
        .count();
    assert!(builds <= 2, "{builds} builds kept");
    assert_eq!(serving(&base), "v4\n");
    assert!(
        !lock_dir(&base, "app").exists(),
        "the lock outlived the deploy"
    );
    assert!(
        !lock_dir(&base, "deploy").exists(),
        "the deploy lock outlived the deploy"
    );
}

#[test]
fn each_env_builds_in_its_own_folder() {
    let (test, base) = project();
    let config = test.read("weft.toml") + "[env.other]\nconnector = \"local\"\n";
    test.write("weft.toml", &config);
    test.write("site/index.html", "v1\n");
    test.run(&["run", "site_deploy"]).status(0);
    assert_eq!(serving(&base), "v1\n");
    assert_eq!(
        archives(&test.path().join(".weft/build/local/site/dist")).len(),
        1
    );
    // Another env sees none of those builds, so its deploy can only ship one it made.
    test.run(&["run", "site_builds", "-e", "other"])
        .status(0)
        .stdout_has("no builds yet");
    assert!(!test.path().join(".weft/build/other").exists());
}

#[test]
fn a_project_goal_replaces_the_generated_one_of_the_same_name() {
    let (test, _) = project();
    test.write(
        "deploy/site.rhai",
        "/// Our own status.\nfn site_status(host) { log(\"our status\"); }\n",
    );
    test.run(&["list"])
        .status(0)
        .stdout_has("[project] Our own status.")
        .stdout_has("overrides <generated>/apps/site.rhai");
    test.run(&["run", "site_status"])
        .status(0)
        .stdout_has("our status");
}

#[test]
fn the_deploy_lock_stops_a_second_deploy_until_broken() {
    let (test, base) = project();
    test.write("site/index.html", "v1\n");
    plant_lock(&base, "app", "alice@ci", "site_activate");
    test.run(&["run", "site_deploy"])
        .status(1)
        .stdout_has("is locked by another deploy (alice@ci");
    assert!(!base.join("current").exists());
    test.run(&["run", "site_unlock"])
        .status(0)
        .stdout_has("breaking the lock of alice@ci");
    test.run(&["run", "site_deploy"]).status(0);
    assert_eq!(serving(&base), "v1\n");

    // The env's deploy lock, left by a killed deploy, is broken only when asked to.
    plant_lock(&base, "deploy", "bob@laptop:42", "site_deploy");
    test.write("site/index.html", "v2\n");
    test.run(&["run", "site_deploy"])
        .status(1)
        .stdout_has("is locked by another deploy (bob@laptop:42")
        .stdout_has("--break-lock");
    assert_eq!(serving(&base), "v1\n");
    test.run(&["run", "site_deploy", "--break-lock"])
        .status(0)
        .stdout_has("breaking the lock of bob@laptop:42");
    assert_eq!(serving(&base), "v2\n");
    assert!(
        !lock_dir(&base, "deploy").exists(),
        "the env lock outlived the deploy"
    );
    assert!(
        !lock_dir(&base, "app").exists(),
        "the machine lock outlived the deploy"
    );
}

/// Builds `site` and returns the id of the build it made or found.
fn build_id(test: &Test, args: &[&str]) -> String {
    let out = test.run(&[&["run", "site_build"], args].concat());
    out.status(0);
    let line = out
        .stdout
        .lines()
        .find_map(|l| {
            l.split("built site ")
                .nth(1)
                .or_else(|| l.split("| site ").nth(1))
        })
        .unwrap_or_else(|| panic!("no build id in\n{}", out.stdout));
    line.split_whitespace().next().expect("an id").to_string()
}

#[test]
fn a_builds_id_comes_from_its_code_and_build_settings_and_rebuild_makes_another() {
    let (test, _) = project();
    let dist = test.path().join(".weft/build/local/site/dist");
    test.write("site/index.html", "v1\n");
    let v1 = build_id(&test, &[]);
    assert!(
        v1.len() == 12 && v1.chars().all(|c| c.is_ascii_hexdigit()),
        "{v1}"
    );
    test.write("site/index.html", "v2\n");
    let v2 = build_id(&test, &[]);
    assert_ne!(v1, v2, "two builds of different code look alike");
    // The same code again: no new build, the same id.
    test.run(&["run", "site_build"])
        .status(0)
        .stdout_has(&format!("site {v2} is built already"))
        .stdout_lacks("building site");
    assert_eq!(archives(&dist).len(), 2);
    // A build setting is part of the content; git metadata of the project is not.
    let config = test
        .read("weft.toml")
        .replace("keep = 2", "keep = 3\ntests = \"true\"");
    test.write("weft.toml", &config);
    let tested = build_id(&test, &[]);
    assert_ne!(tested, v2);
    test.write(".gitignore", ".weft/\nwww/\n");
    git(test.path(), &["init", "-q"]);
    git(test.path(), &["add", "."]);
    git(test.path(), &["commit", "-qm", "v2"]);
    assert_eq!(build_id(&test, &[]), tested);
    // --rebuild makes a new build of the same code, named after it.
    let rebuilt = build_id(&test, &["--rebuild"]);
    assert!(rebuilt.starts_with(&format!("{tested}-r")), "{rebuilt}");
    assert_eq!(archives(&dist).len(), 3);
    let newest = archives(&dist).pop().expect("an archive");
    assert!(newest.ends_with(format!("{rebuilt}.tar.gz")), "{newest:?}");
}

#[test]
fn a_deploy_of_unchanged_code_switches_nothing_and_after_a_rollback_activates_it_again() {
    let (test, base) = project();
    test.write("site/index.html", "v1\n");
    test.run(&["run", "site_deploy"]).status(0);
    let history = || std::fs::read_to_string(base.join("history")).expect("history");
    let first = history();
    test.run(&["run", "site_deploy"])
        .status(0)
        .stdout_has("is active already")
        .stdout_has("is deployed already on")
        .stdout_lacks("building site")
        .stdout_lacks("activated");
    assert_eq!(
        history(),
        first,
        "a deploy of the same code changed the history"
    );
    // Back to v1 after a rollback; a deploy of v2's code activates v2's build again, without
    // building it.
    test.write("site/index.html", "v2\n");
    test.run(&["run", "site_deploy"]).status(0);
    test.run(&["run", "site_rollback"]).status(0);
    assert_eq!(serving(&base), "v1\n");
    test.run(&["run", "site_deploy"])
        .status(0)
        .stdout_has("is built already")
        .stdout_has("activated")
        .stdout_lacks("building site");
    assert_eq!(serving(&base), "v2\n");
}

#[test]
fn a_deploy_whose_lock_another_run_broke_leaves_that_runs_lock_alone() {
    let (test, base) = project();
    test.write("site/index.html", "v1\n");
    // While the deploy runs, another run breaks its env lock (as --break-lock does).
    let takeover = format!(
        "printf '%s\\\\n' runner=carol@elsewhere:7 run=7 since=1764000000 what=site_deploy > '{}/owner'",
        lock_dir(&base, "deploy").display()
    );
    let config = test.read("weft.toml").replace(
        "check = \"grep -qx ok src/site/health.txt\"",
        &format!("check = \"{takeover}\""),
    );
    test.write("weft.toml", &config);
    test.run(&["run", "site_deploy"]).status(0);
    assert_eq!(serving(&base), "v1\n");
    let owner = std::fs::read_to_string(lock_dir(&base, "deploy").join("owner"))
        .expect("the other run's lock is still there");
    assert!(owner.starts_with("runner=carol@elsewhere:7\n"), "{owner}");
    // Breaking it by hand is recorded.
    test.run(&["run", "site_unlock"])
        .status(0)
        .stdout_has("breaking the lock of carol@elsewhere:7");
    let log = std::fs::read_to_string("/var/lib/weft/locks/breaks.log").expect("breaks.log");
    let broken = format!("broke deploy {}, held by carol@elsewhere:7", base.display());
    assert!(log.lines().any(|l| l.contains(&broken)), "{log}");
    assert!(!lock_dir(&base, "deploy").exists());
}

#[test]
fn a_build_that_does_not_match_its_checksum_is_refused() {
    let (test, base) = project();
    test.write("site/index.html", "v1\n");
    test.run(&["run", "site_deploy"]).status(0);
    test.write("site/index.html", "v2\n");
    test.run(&["run", "site_build"]).status(0);
    let dist = test.path().join(".weft/build/local/site/dist");
    let archive = archives(&dist).pop().expect("an archive");
    let id = archive
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.gz"))
        .expect("id")
        .to_string();
    let mut bytes = std::fs::read(&archive).expect("archive");
    bytes.push(0);
    std::fs::write(&archive, bytes).expect("corrupt");
    test.run(&["run", "site_activate", &id])
        .status(1)
        .stdout_has("does not match its checksum");
    assert_eq!(serving(&base), "v1\n");
    assert!(!base.join("builds").join(&id).exists());
}

#[test]
fn builds_check_out_git_repos_at_their_refs_install_them_and_stop_on_failed_tests() {
    let test = Test::new().with_env(vec![pip_cache()]);
    let repos = test.path().join("repos");
    // `lib`: a Python package with a tag v1 and a later commit on main.
    let lib = repos.join("lib");
    test.write("repos/lib/pyproject.toml", "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n[project]\nname = \"weftlib\"\nversion = \"1.0\"\n[tool.setuptools]\npackages = [\"weftlib\"]\n");
    test.write("repos/lib/weftlib/__init__.py", "VERSION = 'one'\n");
    git(&lib, &["init", "-q"]);
    git(&lib, &["add", "."]);
    git(&lib, &["commit", "-qm", "one"]);
    git(&lib, &["tag", "v1"]);
    let v1 = git(&lib, &["rev-parse", "--short=8", "HEAD"]);
    test.write("repos/lib/weftlib/__init__.py", "VERSION = 'two'\n");
    git(&lib, &["commit", "-qam", "two"]);
    // `conf`: plain files at a pinned commit, then a later one.
    let conf = repos.join("conf");
    test.write("repos/conf/settings.txt", "pinned\n");
    git(&conf, &["init", "-q"]);
    git(&conf, &["add", "."]);
    git(&conf, &["commit", "-qm", "pinned"]);
    let pinned = git(&conf, &["rev-parse", "HEAD"]);
    test.write("repos/conf/settings.txt", "later\n");
    git(&conf, &["commit", "-qam", "later"]);

    let config = |tests: &str| {
        format!(
            "[project]\nname = \"shop\"\n[apps.api]\ntests = \"{tests}\"\n\
             post_build = [\"echo built > post.txt\"]\n\
             repos = [{{ name = \"lib\", url = \"{}\" }}, {{ name = \"conf\", url = \"{}\", ref = \"{pinned}\", install = false }}]\n",
            lib.display(),
            conf.display()
        )
    };
    test.write(
        "weft.toml",
        &config("python -c 'import weftlib; assert weftlib.VERSION == \\\"one\\\"'"),
    );
    // main has VERSION 'two': the tests stop that build; `--set` picks the tag instead.
    test.run(&["run", "api_build"])
        .status(1)
        .stdout_has("the tests of api failed");
    test.run(&["run", "api_build", "--set", "apps.api.ref=v1"])
        .status(0)
        .stdout_has(&format!("built api {v1}-"));
    let listed = test.run(&["run", "api_builds"]);
    listed.status(0).stdout_has(&format!("| {v1}-"));
    let dist = test.path().join(".weft/build/local/api/dist");
    let archive = archives(&dist).pop().expect("an archive");
    let sum = std::fs::read_to_string(format!("{}.sha256", archive.display())).expect("checksum");
    let check = Command::new("sha256sum")
        .args(["--check", "--quiet"])
        .arg(format!("{}.sha256", archive.display()))
        .current_dir(&dist)
        .output()
        .expect("sha256sum");
    assert!(check.status.success(), "checksum {sum} does not match");
    let unpacked = test.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).expect("dir");
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .expect("tar");
    assert!(tar.success());
    let build = std::fs::read_to_string(unpacked.join("BUILD")).expect("BUILD");
    assert!(build.contains(&format!("repo.lib = {v1}")), "{build}");
    assert!(
        build.contains(&format!("repo.conf = {}", &pinned[..8])),
        "{build}"
    );
    assert_eq!(
        std::fs::read_to_string(unpacked.join("src/conf/settings.txt")).expect("conf"),
        "pinned\n"
    );
    assert_eq!(
        std::fs::read_to_string(unpacked.join("post.txt")).expect("post-build ran"),
        "built\n"
    );
    // The package was built and installed into the build's own virtualenv.
    let python = unpacked.join("venv/bin/python");
    let import = Command::new(&python)
        .args(["-c", "import weftlib; print(weftlib.VERSION)"])
        .current_dir(&unpacked)
        .output()
        .expect("venv python");
    assert_eq!(String::from_utf8_lossy(&import.stdout).trim(), "one");

    // Failing tests stop the build: no new archive.
    test.write("weft.toml", &config("false"));
    test.run(&["run", "api_build", "--set", "apps.api.ref=v1"])
        .status(1)
        .stdout_has("the tests of api failed");
    assert_eq!(archives(&dist).len(), 1);
}

#[test]
fn of_two_deploys_started_together_exactly_one_proceeds() {
    let (test, base) = project();
    test.write("site/index.html", "v1\n");
    let spawn = || {
        test.command(&["run", "site_deploy"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("weft starts")
    };
    let (first, second) = (spawn(), spawn());
    let outputs = [first, second].map(|c| c.wait_with_output().expect("weft ends"));
    let won = outputs.iter().filter(|o| o.status.success()).count();
    let text: Vec<String> = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .collect();
    assert_eq!(won, 1, "{text:?}");
    assert!(
        text.iter()
            .any(|t| t.contains("is locked by another deploy")),
        "{text:?}"
    );
    assert_eq!(serving(&base), "v1\n");
    // The loser left no lock: the next deploy needs no unlocking.
    test.write("site/index.html", "v2\n");
    test.run(&["run", "site_deploy"]).status(0);
    assert_eq!(serving(&base), "v2\n");
}

#[test]
fn a_deploy_killed_after_its_upload_leaves_the_site_and_a_lock_that_unlock_clears() {
    let (test, base) = project();
    test.write("site/index.html", "v1\n");
    test.run(&["run", "site_deploy"]).status(0);
    test.write("site/index.html", "v2\n");
    let mut child = test
        .command(&["run", "site_deploy", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("weft starts");
    let stdout = child.stdout.take().expect("stdout");
    // The archive reached the machine: kill weft there, with no chance to clean up.
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
        if line.contains("\"event\":\"change\"")
            && line.contains("step\":\"file ")
            && line.contains(".tar.gz.sha256")
        {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    // Whatever step the kill cut, the site serves a whole build.
    let served = serving(&base);
    assert!(served == "v1\n" || served == "v2\n", "{served:?}");
    test.run(&["run", "site_deploy"])
        .status(1)
        .stdout_has("is locked by another deploy");
    test.run(&["run", "site_unlock"]).status(0);
    test.run(&["run", "site_deploy"]).status(0);
    assert_eq!(serving(&base), "v2\n");
    // No half-unpacked build is left beside the builds.
    let leftovers: Vec<_> = std::fs::read_dir(base.join("builds"))
        .expect("builds")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
