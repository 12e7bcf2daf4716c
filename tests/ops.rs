//! Idempotent operations: each runs twice (changed, then unchanged), `--check` touches nothing,
//! `--diff` shows template changes, and sensitive values never reach the output.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::fleet::Fleet;
use crate::harness::{Outcome, Test};

const FILES_GOAL: &str = r#"
/// Every file operation once.
fn files_all(host, base, version) {
    host.directory(base + "/etc", #{ mode: "0750" });
    host.file(base + "/etc/app.conf", #{ content: "port = 80\n", mode: "0640" });
    host.file(base + "/etc/empty", #{});
    host.link(base + "/current", base + "/etc");
    host.line(base + "/hosts", "10.0.0.5 db");
    host.line(base + "/hosts", "PermitRootLogin no", #{ regex: "^#?PermitRootLogin" });
    host.template("app/page.hbs", base + "/page.txt", #{ version: version });
    host.absent(base + "/old");
    host.sync_dir("static", base + "/static", #{ delete: true });
    host.file(base + "/etc/secret.env", #{ content: "TOKEN=hunter2-s3cret\n", sensitive: true });
}
"#;

fn files_project(test: &Test, base: &Path) {
    test.write("deploy/files.rhai", FILES_GOAL);
    test.write(
        "templates/app/page.hbs",
        "{{host.name}} serves {{version}}\n",
    );
    test.write("static/a.css", "a {}\n")
        .write("static/img/logo.txt", "logo\n");
    std::fs::create_dir_all(base.join("old/deep")).expect("old");
    std::fs::create_dir_all(base.join("static")).expect("static");
    std::fs::write(base.join("static/stale.txt"), "stale\n").expect("stale");
    std::fs::write(
        base.join("hosts"),
        "127.0.0.1 localhost\n#PermitRootLogin yes\n",
    )
    .expect("hosts");
}

fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).expect("meta").permissions())
        & 0o7777
}

fn check_files_cycle(test: &Test, base: &Path, extra: &[&str]) {
    let base_text = base.display().to_string();
    let run = |version: &str, flags: &[&str]| -> Outcome {
        let mut argv = vec!["run", "files_all", base_text.as_str(), version];
        argv.extend(flags);
        argv.extend(extra);
        test.run(&argv)
    };
    // --check on a fresh host: reports changes, touches nothing.
    let out = run("v1", &["--check"]);
    out.status(0)
        .stdout_has("would change: directory")
        .stdout_lacks("hunter2");
    assert!(!base.join("etc").exists(), "--check created a directory");
    assert!(base.join("old").exists(), "--check removed a directory");

    let out = run("v1", &[]);
    out.status(0)
        .stdout_has("changed: file")
        .stdout_lacks("hunter2");
    assert_eq!(
        std::fs::read_to_string(base.join("etc/app.conf")).expect("conf"),
        "port = 80\n"
    );
    assert_eq!(mode(&base.join("etc/app.conf")), 0o640);
    assert_eq!(mode(&base.join("etc")), 0o750);
    assert!(base.join("etc/empty").exists());
    assert_eq!(
        std::fs::read_link(base.join("current")).expect("link"),
        base.join("etc")
    );
    assert_eq!(
        std::fs::read_to_string(base.join("hosts")).expect("hosts"),
        "127.0.0.1 localhost\nPermitRootLogin no\n10.0.0.5 db\n"
    );
    assert!(std::fs::read_to_string(base.join("page.txt"))
        .expect("page")
        .ends_with("serves v1\n"));
    assert!(!base.join("old").exists());
    assert!(!base.join("static/stale.txt").exists());
    assert_eq!(
        std::fs::read_to_string(base.join("static/img/logo.txt")).expect("logo"),
        "logo\n"
    );

    // Twice: nothing left to do; what was already as wanted shows with -v only.
    run("v1", &[])
        .status(0)
        .stdout_has("summary: 1 ok, 0 changed")
        .stdout_lacks("ok: file")
        .stdout_lacks("changed: ");
    run("v1", &["-v"])
        .status(0)
        .stdout_has("ok: file")
        .stdout_lacks("changed: ");

    // --diff shows the template change, as a unified diff of the file under the host's
    // prefix; the sensitive file's content never appears.
    let out = run("v2", &["--diff"]);
    out.status(0)
        .stdout_has(&format!("| --- {base_text}/page.txt (before)"))
        .stdout_has(&format!("| +++ {base_text}/page.txt (after)"))
        .stdout_lacks("hunter2");
    let diff_line = |sign: char, version: &str| {
        out.stdout.lines().any(|line| {
            line.split_once(" | ").is_some_and(|(_, shown)| {
                shown.starts_with(sign) && shown.ends_with(&format!(" serves {version}"))
            })
        })
    };
    assert!(
        diff_line('-', "v1") && diff_line('+', "v2"),
        "--diff did not show the line going from v1 to v2:\n{}",
        out.stdout
    );
    let out = run("v2", &["--diff", "--check"]);
    out.status(0).stdout_lacks("serves v1");
}

#[test]
fn file_operations_on_the_local_connector() {
    let test = Test::with_config("[project]\nname = \"ops\"\n");
    let base = test.path().join("host");
    std::fs::create_dir_all(&base).expect("base");
    files_project(&test, &base);
    check_files_cycle(&test, &base, &[]);
}

#[test]
fn file_operations_over_ssh() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let base = test.path().join("remote");
    std::fs::create_dir_all(&base).expect("base");
    files_project(&test, &base);
    let (key, known) = (fleet.key(), fleet.known_hosts());
    check_files_cycle(
        &test,
        &base,
        &["-e", "fleet", "-i", &key, "--known-hosts", &known],
    );
}

/// Access and modification time of `path`, with nanoseconds.
fn times(path: &Path) -> ((i64, i64), (i64, i64)) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).expect("meta");
    (
        (meta.atime(), meta.atime_nsec()),
        (meta.mtime(), meta.mtime_nsec()),
    )
}

/// Sets the mtime of `path` to `secs` (whole seconds), as `touch -d` or `cp -p` would.
fn set_mtime(path: &Path, secs: i64) {
    let status = Command::new("touch")
        .args(["-m", "-d", &format!("@{secs}")])
        .arg(path)
        .status()
        .expect("touch");
    assert!(status.success());
}

#[test]
fn a_file_weft_wrote_is_not_read_again_until_something_changes_it() {
    let (fleet, test, base) = fleet_and_folder(
        "deploy/put.rhai",
        "/// Puts two files.\nfn put_all(host, base) {\n    host.upload(\"payload.bin\", base + \"/payload.bin\");\n    host.file(base + \"/app.conf\", #{ content: \"port = 80\\n\" });\n}\n\
         /// Uploads onto a folder.\nfn put_taken(host, base) { host.upload(\"payload.bin\", base + \"/taken\"); }\n",
    );
    let payload: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(test.path().join("payload.bin"), &payload).expect("payload");
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let base_text = base.display().to_string();
    let run_goal =
        |goal: &str| test.run(&[&["run", goal, &base_text][..], &args_of(&key, &known)].concat());
    let run = || run_goal("put_all");
    let files = [base.join("payload.bin"), base.join("app.conf")];
    // Nothing is known yet: each file gets its own check.
    // A check is a `stat` with its quoted format (the writes run `stat -c %d:%i` of their own).
    let stats = |out: &Outcome| out.stderr.matches("stat -c '").count();
    let first = test.run(
        &[
            &["-v", "run", "put_all", &base_text][..],
            &args_of(&key, &known),
        ]
        .concat(),
    );
    first.status(0).stdout_has("changed: file");
    assert_eq!(stats(&first), 2, "{}", first.stderr);
    // The check of an unchanged file reads only its stat, one `stat` for both files: neither
    // file's atime moves from the whole-second stamp weft gave both times.
    for round in 0..2 {
        let out = test.run(
            &[
                &["-v", "run", "put_all", &base_text][..],
                &args_of(&key, &known),
            ]
            .concat(),
        );
        out.status(0)
            .stdout_has("summary: 1 ok, 0 changed")
            .stdout_lacks("changed: ");
        assert_eq!(stats(&out), 1, "round {round}: {}", out.stderr);
        for file in &files {
            let (atime, mtime) = times(file);
            assert_eq!(mtime.1, 0, "{} has no whole-second stamp", file.display());
            assert_eq!(
                atime,
                mtime,
                "round {round}: the check read {}",
                file.display()
            );
        }
    }
    // Something else rewrites both files at the same size and puts their mtime back, as
    // `cp -p` would: the next run sees it (their ctime moved) and restores them.
    let stamps: Vec<i64> = files.iter().map(|f| times(f).1 .0).collect();
    let mut tampered = payload.clone();
    tampered[1000] ^= 0xff;
    std::fs::write(&files[0], &tampered).expect("tamper");
    std::fs::write(&files[1], "port = 81\n").expect("tamper");
    for (file, stamp) in files.iter().zip(&stamps) {
        set_mtime(file, *stamp);
    }
    run()
        .status(0)
        .stdout_has("summary: 0 ok, 1 changed")
        .stdout_has("changed: file ")
        .stdout_has("payload.bin\n")
        .stdout_has("app.conf (content)");
    assert_eq!(std::fs::read(&files[0]).expect("payload"), payload);
    assert_eq!(
        std::fs::read_to_string(&files[1]).expect("conf"),
        "port = 80\n"
    );
    run().status(0).stdout_has("summary: 1 ok, 0 changed");
    // A known file that someone deleted is missing from the shared `stat`: it comes back.
    std::fs::remove_file(&files[1]).expect("delete");
    run().status(0).stdout_has("summary: 0 ok, 1 changed");
    assert_eq!(
        std::fs::read_to_string(&files[1]).expect("conf"),
        "port = 80\n"
    );
    // The sums live in one file for this host under the user's cache. Without it the check
    // hashes the files on the host again and still finds nothing to change; that read moves
    // the atime, which shows that this filesystem records reads (the checks above could fail).
    let cache = test.home().join(".cache/weft/remote-sums");
    let saved: Vec<_> = std::fs::read_dir(&cache).expect("cache").collect();
    assert_eq!(saved.len(), 1, "one file per host in {}", cache.display());
    std::fs::remove_dir_all(&cache).expect("forget");
    run().status(0).stdout_has("summary: 1 ok, 0 changed");
    let (atime, mtime) = times(&files[0]);
    assert_ne!(atime, mtime, "without its sums weft did not read the file");
    // An upload onto a folder says so before anything is sent.
    std::fs::create_dir_all(base.join("taken")).expect("folder");
    let out = run_goal("put_taken");
    assert_ne!(out.code, 0);
    out.stdout_has("taken is a directory, not a file");
}

#[test]
fn a_file_already_right_is_hashed_until_it_has_been_left_alone_then_only_stat_ed() {
    let (fleet, test, base) = fleet_and_folder(
        "deploy/conf.rhai",
        "/// Puts one file.\nfn conf_put(host, base) {\n    host.file(base + \"/app.conf\", #{ content: \"port = 80\\n\" });\n}\n",
    );
    // Something other than weft put the right content there.
    let conf = base.join("app.conf");
    std::fs::write(&conf, "port = 80\n").expect("conf");
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let base_text = base.display().to_string();
    let run = || {
        let argv = [
            &["-v", "run", "conf_put", &base_text][..],
            &args_of(&key, &known),
        ]
        .concat();
        let out = test.run(&argv);
        out.status(0).stdout_has("summary: 1 ok, 0 changed");
        out.stderr.matches("sha256sum --").count()
    };
    assert_eq!(run(), 1, "nothing is known: the check hashes the file");
    // A sum is kept only for a file left alone for a few seconds (a write in the same clock
    // tick as the one before the check would not move the ctime). Once kept, a check is a
    // `stat` alone. The host's clock is known to weft in whole seconds and never ahead of the
    // truth, so the file must be up to two seconds older than the 3-second margin.
    std::thread::sleep(std::time::Duration::from_millis(5100));
    assert!(run() <= 1);
    assert_eq!(run(), 0, "left alone, the file is no longer hashed");
    // A change at the same size is still seen, and undone.
    std::fs::write(&conf, "port = 81\n").expect("tamper");
    let argv = [&["run", "conf_put", &base_text][..], &args_of(&key, &known)].concat();
    test.run(&argv).status(0).stdout_has("app.conf (content)");
    assert_eq!(std::fs::read_to_string(&conf).expect("conf"), "port = 80\n");
}

/// A one-host fleet, a project with `script` at `path`, and an empty folder to put files in.
fn fleet_and_folder(path: &str, script: &str) -> (Fleet, Test, std::path::PathBuf) {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let base = test.path().join("remote");
    std::fs::create_dir_all(&base).expect("base");
    test.write(path, script);
    (fleet, test, base)
}

/// The arguments that run a goal on the test fleet's env.
fn args_of<'a>(key: &'a str, known: &'a str) -> [&'a str; 6] {
    ["-e", "fleet", "-i", key, "--known-hosts", known]
}

/// Runs `goal` twice with `args`: the first run changes something, the second nothing.
fn twice(test: &Test, goal: &str, args: &[&str]) {
    let mut argv = vec!["run", goal];
    argv.extend(args);
    test.run(&argv).status(0).stdout_has("changed: ");
    test.run(&argv)
        .status(0)
        .stdout_has("summary: 1 ok, 0 changed")
        .stdout_lacks("changed: ");
}

/// Where a test runs its goals: the local connector, then an SSH test host (this same machine
/// through sshd, so absolute paths mean the same on both).
struct Targets {
    fleet: Fleet,
    test: Test,
}

impl Targets {
    fn new() -> Self {
        let fleet = Fleet::start(1);
        let test = Test::with_config(&fleet.config());
        Targets { fleet, test }
    }

    /// The flags of each target, with a short label for names that must differ.
    fn each(&self) -> Vec<(&'static str, Vec<String>)> {
        vec![
            ("local", vec!["-e".into(), "local".into()]),
            (
                "ssh",
                vec![
                    "-e".into(),
                    "fleet".into(),
                    "-i".into(),
                    self.fleet.key(),
                    "--known-hosts".into(),
                    self.fleet.known_hosts(),
                ],
            ),
        ]
    }
}

fn with(args: &[&str], flags: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string())
        .chain(flags.iter().cloned())
        .collect()
}

fn twice_on(test: &Test, goal: &str, args: &[String]) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    twice(test, goal, &args);
}

#[test]
fn users_groups_and_authorized_keys() {
    let targets = Targets::new();
    let test = &targets.test;
    let key_a =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice";
    let key_b =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti bob";
    test.write(
        "deploy/users.rhai",
        "/// Users.\nfn users_setup(host, user, group, keys) {\n    host.group(group, #{});\n    host.user(user, #{ shell: \"/bin/sh\", groups: [group] });\n    host.authorized_keys(user, keys.split(\",\"), #{ exclusive: true });\n}\n",
    );
    for (label, flags) in targets.each() {
        let suffix = format!("{label}{}", std::process::id());
        let (user, group) = (format!("weftop{suffix}"), format!("weftog{suffix}"));
        let both = format!("{key_a},{key_b}");
        twice_on(test, "users_setup", &with(&[&user, &group, &both], &flags));
        let home = format!("/home/{user}");
        let keys = std::fs::read_to_string(format!("{home}/.ssh/authorized_keys")).expect("keys");
        assert_eq!(keys.lines().count(), 2, "{keys}");
        let groups = Command::new("id")
            .args(["-nG", &user])
            .output()
            .expect("id");
        assert!(String::from_utf8_lossy(&groups.stdout).contains(&group));
        // Exclusive: a key left out of the set is removed.
        let argv = with(&["run", "users_setup", &user, &group, key_a], &flags);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        test.run(&argv).status(0).stdout_has("changed: file");
        let keys = std::fs::read_to_string(format!("{home}/.ssh/authorized_keys")).expect("keys");
        assert!(keys.contains("alice") && !keys.contains("bob"), "{keys}");
        let _ = Command::new("userdel").args(["-r", &user]).output();
        let _ = Command::new("groupdel").arg(&group).output();
    }
}

#[test]
fn cron_archive_and_extract() {
    let targets = Targets::new();
    let test = &targets.test;
    test.write(
        "deploy/misc.rhai",
        "/// Misc.\nfn misc_all(host, base, name) {\n    host.cron(name, #{ schedule: \"*/5 * * * *\", command: \"true\" });\n    host.archive(base + \"/src\", base + \"/app.tar.gz\");\n    host.extract(base + \"/app.tar.gz\", base + \"/out\", \"app.py\");\n}\n\
         /// Removes the cron entry.\nfn misc_clean(host, name) { host.cron(name, #{ state: \"absent\" }); }\n",
    );
    for (label, flags) in targets.each() {
        let name = format!("t{label}{}", std::process::id());
        let base = test.path().join(label);
        std::fs::create_dir_all(base.join("src")).expect("src");
        std::fs::write(base.join("src/app.py"), "print('hi')\n").expect("app");
        let base_text = base.display().to_string();
        twice_on(test, "misc_all", &with(&[&base_text, &name], &flags));
        let cron_file = format!("/etc/cron.d/weft-{name}");
        assert!(std::fs::read_to_string(&cron_file)
            .expect("cron")
            .contains("*/5 * * * * root true"));
        assert_eq!(
            std::fs::read_to_string(base.join("out/app.py")).expect("out"),
            "print('hi')\n"
        );
        let argv = with(&["run", "misc_clean", &name], &flags);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        test.run(&argv).status(0).stdout_has("changed: absent");
        assert!(!Path::new(&cron_file).exists());
    }
}

#[test]
fn git_checkouts_follow_tags() {
    let targets = Targets::new();
    let test = &targets.test;
    let repo = test.path().join("upstream");
    let git = |args: &[&str]| {
        crate::harness::git(&repo, args);
    };
    std::fs::create_dir_all(&repo).expect("repo");
    git(&["init", "-q"]);
    std::fs::write(repo.join("VERSION"), "1\n").expect("write");
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    git(&["tag", "v1"]);
    std::fs::write(repo.join("VERSION"), "2\n").expect("write");
    git(&["commit", "-q", "-am", "two"]);
    git(&["tag", "v2"]);
    let repo_text = repo.display().to_string();
    test.write(
        "deploy/g.rhai",
        &format!("/// Checks out.\nfn g_checkout(host, dest, version) {{ host.git(\"{repo_text}\", dest, #{{ version: version }}); }}\n"),
    );
    for (label, flags) in targets.each() {
        let dest = test.path().join(format!("checkout-{label}"));
        let dest_text = dest.display().to_string();
        twice_on(test, "g_checkout", &with(&[&dest_text, "v1"], &flags));
        assert_eq!(
            std::fs::read_to_string(dest.join("VERSION")).expect("v"),
            "1\n"
        );
        let run = |version: &str| {
            let argv = with(&["run", "g_checkout", &dest_text, version], &flags);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            test.run(&argv)
        };
        run("v2").status(0).stdout_has("changed: git");
        assert_eq!(
            std::fs::read_to_string(dest.join("VERSION")).expect("v"),
            "2\n"
        );
        run("v9")
            .status(1)
            .stdout_has("`v9` is not a branch, tag or commit");
    }
}

#[test]
fn virtualenv_and_pip() {
    let targets = Targets::new();
    let test = &targets.test;
    test.write(
        "deploy/py.rhai",
        "/// Python.\nfn py_env(host, venv) {\n    host.virtualenv(venv, #{ python: \"/usr/bin/python3\" });\n    host.pip(venv, #{ packages: [\"six==1.16.0\"] });\n}\n",
    );
    for (label, flags) in targets.each() {
        let venv = test.path().join(format!("venv-{label}"));
        twice_on(
            test,
            "py_env",
            &with(&[&venv.display().to_string()], &flags),
        );
        let out = Command::new(venv.join("bin/python"))
            .args(["-c", "import six; print(six.__version__)"])
            .output()
            .expect("python");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.16.0");
    }
}

#[test]
fn packages_install_and_remove_with_apt() {
    let targets = Targets::new();
    let test = &targets.test;
    test.write(
        "deploy/p.rhai",
        "/// Packages.\nfn p_sl(host, state) { host.packages([\"sl\"], #{ state: state }); }\n",
    );
    for (_, flags) in targets.each() {
        let run = |args: &[&str]| {
            let argv = with(args, &flags);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            test.run(&argv)
        };
        run(&["run", "p_sl", "absent"]).status(0);
        run(&["run", "p_sl", "present", "--check"])
            .status(0)
            .stdout_has("would change: packages install: sl");
        assert!(
            !Path::new("/usr/games/sl").exists(),
            "--check installed a package"
        );
        twice_on(test, "p_sl", &with(&["present"], &flags));
        assert!(Path::new("/usr/games/sl").exists());
        twice_on(test, "p_sl", &with(&["absent"], &flags));
        assert!(!Path::new("/usr/games/sl").exists());
    }
}

#[test]
fn the_python_role_applies_twice_with_nothing_left_the_second_time() {
    let targets = Targets::new();
    for (_, flags) in targets.each() {
        let argv = with(&["run", "python_setup", "-v"], &flags);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        targets.test.run(&argv).status(0);
        targets
            .test
            .run(&argv)
            .status(0)
            .stdout_has("summary: 1 ok, 0 changed")
            .stdout_has("ok: packages present");
    }
}

#[test]
fn facts_describe_the_host() {
    let targets = Targets::new();
    let test = &targets.test;
    test.write(
        "deploy/f.rhai",
        "/// Facts.\nfn f_show(host, out) {\n    let f = host.facts;\n    log(`${f.os} ${f.package_manager} ${f.cpus > 0} ${f.uid}`);\n    let users = host.fact(\"users\");\n    log(`root:${users.filter(|u| u.name == \"root\").len()}`);\n    host.template(\"f.hbs\", out);\n}\n",
    );
    test.write("templates/f.hbs", "{{facts.os}} {{facts.distro}}\n");
    for (label, flags) in targets.each() {
        let out = test.path().join(format!("facts-{label}.txt"));
        let argv = with(&["run", "f_show", &out.display().to_string()], &flags);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        test.run(&argv)
            .status(0)
            .stdout_has("Linux apt true 0")
            .stdout_has("| root:1");
        assert_eq!(
            std::fs::read_to_string(&out).expect("facts"),
            "Linux debian\n"
        );
    }
}
#[test]
fn services_under_supervisor_and_handlers_run_once_at_the_end() {
    let targets = Targets::new();
    let test = &targets.test;
    let root = test.path().display().to_string();
    let conf = format!("{root}/supervisord.conf");
    // A private supervisord, named by `config` on every call.
    test.write(
        "supervisord.conf",
        &format!(
            "[unix_http_server]\nfile={root}/supervisor.sock\n[supervisord]\nlogfile={root}/supervisord.log\npidfile={root}/supervisord.pid\n\
             [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\
             [supervisorctl]\nserverurl=unix://{root}/supervisor.sock\n\
             [program:sleeper]\ncommand=sleep 600\nautostart=false\n"
        ),
    );
    let started = Command::new("supervisord")
        .arg("-c")
        .arg(&conf)
        .status()
        .expect("supervisord");
    assert!(started.success());
    // supervisord forks: it answers on its socket once it is ready.
    crate::harness::wait_for("supervisord to answer", Duration::from_secs(10), || {
        Command::new("supervisorctl")
            .args(["-c", &conf, "pid"])
            .output()
            .is_ok_and(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse::<u32>()
                    .is_ok()
            })
    });
    test.write(
        "deploy/s.rhai",
        "/// Service.\nfn s_run(host, state, conf) { host.service(\"sleeper\", #{ state: state, manager: \"supervisor\", config: conf }); }\n\
         /// Config change with a handler.\nfn s_conf(host, text, conf) {\n    if host.file(conf + \".app\", #{ content: text }) {\n        host.notify(\"sleeper\", \"restart\", #{ manager: \"supervisor\", config: conf });\n        host.notify(\"sleeper\", \"restart\", #{ manager: \"supervisor\", config: conf });\n    }\n}\n",
    );
    let pid = || {
        let out = Command::new("supervisorctl")
            .args(["-c", &conf, "pid", "sleeper"])
            .output()
            .expect("ctl");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    for (label, flags) in targets.each() {
        twice_on(test, "s_run", &with(&["started", &conf], &flags));
        let first = pid();
        // A change notifies a restart, run once even when asked twice.
        let text = format!("a {label}");
        let argv = with(&["run", "s_conf", &text, &conf], &flags);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = test.run(&argv);
        out.status(0)
            .stdout_has("changed: service sleeper (restart)");
        assert_eq!(out.stdout.matches("(restart)").count(), 1, "{}", out.stdout);
        let second = pid();
        assert_ne!(first, second, "the handler did not restart the service");
        test.run(&argv).status(0).stdout_lacks("restart");
        assert_eq!(pid(), second);
        twice_on(test, "s_run", &with(&["stopped", &conf], &flags));
    }
    let _ = Command::new("supervisorctl")
        .args(["-c", &conf, "shutdown"])
        .output();
}

#[test]
fn links_planted_beside_a_target_are_never_written_through() {
    let targets = Targets::new();
    let test = &targets.test;
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice";
    test.write(
        "deploy/plant.rhai",
        "/// Keys.\nfn plant_keys(host, user, key) {\n    host.authorized_keys(user, [key]);\n}\n",
    );
    let mut cases = targets.each();
    // Through sudo: the login user stages the file, root puts it in place.
    let login = targets.fleet.address(0, "weft-test");
    cases.push((
        "become",
        vec![
            "-H".into(),
            login,
            "--become".into(),
            "-i".into(),
            targets.fleet.key(),
            "--known-hosts".into(),
            targets.fleet.known_hosts(),
        ],
    ));
    let password = targets.fleet.sudo_password();
    for (label, flags) in cases {
        let user = format!("weftpl{label}{}", std::process::id());
        let made = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", &user])
            .status()
            .expect("useradd");
        assert!(made.success());
        let home = format!("/home/{user}");
        let victim = test.path().join(format!("victim-{label}"));
        std::fs::write(&victim, "root's own file\n").expect("victim");
        // What the user can do in a folder of their own: links under every name weft
        // might pick for its temporary file, as the issue reproduced.
        let ssh = format!("{home}/.ssh");
        let script = format!(
            "mkdir -p {ssh} && ln -s {v} {ssh}/.authorized_keys.weft-upload && ln -s {v} {ssh}/authorized_keys.weft-new && ln -s {v} {ssh}/.authorized_keys.weft-{pid}.tmp",
            v = victim.display(),
            pid = std::process::id(),
        );
        let planted = Command::new("su")
            .args([&user, "-c", &script])
            .status()
            .expect("su");
        assert!(planted.success());
        let argv = with(&["run", "plant_keys", &user, key], &flags);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        test.run_with(&argv, &[("WEFT_SUDO_PASSWORD", &password)])
            .status(0)
            .stdout_has("changed: file");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "root's own file\n",
            "{label}: weft wrote through a planted link"
        );
        let keys = format!("{ssh}/authorized_keys");
        let meta = std::fs::symlink_metadata(&keys).expect("authorized_keys");
        assert!(
            meta.file_type().is_file(),
            "{label}: authorized_keys is not a plain file"
        );
        assert!(std::fs::read_to_string(&keys)
            .expect("keys")
            .contains("alice"));
        let _ = Command::new("userdel").args(["-r", &user]).output();
    }
}

#[test]
fn a_daemon_on_a_host_without_an_init_system_is_driven_by_its_own_commands() {
    let targets = Targets::new();
    let test = &targets.test;
    test.write(
        "deploy/d.rhai",
        r#"
/// A daemon weft knows only by the commands given.
fn d_run(host, state, pid) {
    let p = quote(pid);
    let commands = #{
        start: `sleep 600 >/dev/null 2>&1 & echo $! > ${p}`,
        // Ends with `exit`, as nginx's own stop does once nginx is gone.
        stop: `kill "$(cat ${p})"; rm -f ${p}; exit 0`,
        reload: "true",
        status: `test -s ${p} && kill -0 "$(cat ${p})"`,
    };
    host.service("sleeper", #{ state: state, commands: commands });
    log(`running: ${host.service_running("sleeper", #{ commands: commands })}`);
}
"#,
    );
    let read_pid = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    for (label, flags) in targets.each() {
        let pid = test.path().join(format!("sleeper-{label}.pid"));
        let pid_text = pid.display().to_string();
        let args = with(&["started", &pid_text], &flags);
        twice_on(test, "d_run", &args);
        let first = read_pid(&pid);
        assert!(!first.trim().is_empty(), "{label}: no pid file");
        // A restart stops and starts it: a new process, running.
        let argv = with(&["run", "d_run", "restarted", &pid_text], &flags);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        test.run(&argv)
            .status(0)
            .stdout_has("changed: service sleeper (restart)")
            .stdout_has("running: true");
        let second = read_pid(&pid);
        assert!(
            !second.trim().is_empty() && second != first,
            "{label}: {first} -> {second}"
        );
        // --check reads the state and changes nothing.
        let argv = with(&["run", "d_run", "stopped", &pid_text, "--check"], &flags);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        test.run(&argv)
            .status(0)
            .stdout_has("would change: service sleeper (stopped)");
        assert_eq!(read_pid(&pid), second);
        twice_on(test, "d_run", &with(&["stopped", &pid_text], &flags));
        assert!(!pid.exists(), "{label}: the stop left its pid file");
    }
}

/// A plain user with a home folder of their own, removed when dropped: the owner of a folder
/// where weft works as root, who plants links there.
pub(crate) struct PlainUser {
    pub(crate) name: String,
}

impl PlainUser {
    pub(crate) fn new(prefix: &str, label: &str) -> Self {
        let name = format!("{prefix}{label}{}", std::process::id());
        let made = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", &name])
            .status()
            .expect("useradd");
        assert!(made.success(), "useradd {name}");
        PlainUser { name }
    }

    pub(crate) fn home(&self) -> String {
        format!("/home/{}", self.name)
    }

    /// Runs `script` as this user; panics when it fails.
    pub(crate) fn sh(&self, script: &str) {
        let done = Command::new("su")
            .args([&self.name, "-c", script])
            .status()
            .expect("su");
        assert!(done.success(), "as {}: {script}", self.name);
    }

    pub(crate) fn ids(&self) -> (u32, u32) {
        let meta = std::fs::metadata(self.home()).expect("home");
        (
            std::os::unix::fs::MetadataExt::uid(&meta),
            std::os::unix::fs::MetadataExt::gid(&meta),
        )
    }
}

impl Drop for PlainUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").args(["-r", &self.name]).output();
    }
}

/// The targets of `Targets::each` and a login as the plain user `weft-test` that becomes root
/// through sudo (its password in `WEFT_SUDO_PASSWORD`).
fn each_with_become(targets: &Targets) -> Vec<(&'static str, Vec<String>)> {
    let mut cases = targets.each();
    cases.push((
        "become",
        vec![
            "-H".into(),
            targets.fleet.address(0, "weft-test"),
            "--become".into(),
            "-i".into(),
            targets.fleet.key(),
            "--known-hosts".into(),
            targets.fleet.known_hosts(),
        ],
    ));
    cases
}

fn owner_and_mode(path: &str) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

#[test]
fn line_refuses_a_planted_link_and_keeps_the_owner_group_and_mode_of_the_file() {
    let targets = Targets::new();
    let test = &targets.test;
    test.write(
        "deploy/line.rhai",
        "/// A line.\nfn add_line(host, path) {\n    host.line(path, \"include /etc/weft.conf\");\n}\n\
         /// A mode.\nfn set_mode(host, path) {\n    host.file(path, #{ mode: \"0600\" });\n}\n",
    );
    let password = targets.fleet.sudo_password();
    for (label, flags) in each_with_become(&targets) {
        let user = PlainUser::new("weftln", label);
        let victim = test.path().join(format!("shadow-{label}"));
        std::fs::write(&victim, "root:$y$j9T$only-root-reads-this:19000::::::\n").expect("victim");
        std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        // The service user's config folder, set-group-id as Debian's /etc/redis is; the
        // user swaps the config for a link to a root-only file.
        let conf_dir = format!("{}/conf", user.home());
        user.sh(&format!(
            "mkdir -m 2775 {conf_dir} && ln -s {} {conf_dir}/redis.conf",
            victim.display()
        ));
        let run = |path: &str, extra: &[&str]| {
            let mut argv = with(&["run", "add_line", path], &flags);
            argv.extend(extra.iter().map(|a| a.to_string()));
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            test.run_with(&argv, &[("WEFT_SUDO_PASSWORD", &password)])
        };
        let linked = format!("{conf_dir}/redis.conf");
        let out = run(&linked, &["--diff"]);
        out.status(1).stderr_has("symbolic link");
        for shown in [&out.stdout, &out.stderr] {
            assert!(
                !shown.contains("only-root-reads-this"),
                "{label}: the linked file's content was shown\n{out:?}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "root:$y$j9T$only-root-reads-this:19000::::::\n",
            "{label}: the linked file changed"
        );
        assert_eq!(owner_and_mode(&victim.display().to_string()), (0, 0, 0o600));
        assert!(
            std::fs::symlink_metadata(&linked)
                .expect("link")
                .file_type()
                .is_symlink(),
            "{label}: the link was replaced by a file holding the linked file's lines"
        );

        // A regular file keeps its owner, its group (not the folder's set-group-id one) and
        // its mode: weft does not hand it to root.
        let conf = format!("{conf_dir}/app.conf");
        user.sh(&format!(
            "printf 'port 6379\\n' > {conf} && chmod 0640 {conf}"
        ));
        let (uid, _) = user.ids();
        std::os::unix::fs::chown(&conf, Some(uid), Some(0)).expect("chown");
        run(&conf, &[]).status(0).stdout_has("changed: line in");
        assert_eq!(
            std::fs::read_to_string(&conf).expect("conf"),
            "port 6379\ninclude /etc/weft.conf\n"
        );
        assert_eq!(
            owner_and_mode(&conf),
            (uid, 0, 0o640),
            "{label}: the rewritten file lost its owner, group or mode"
        );
        run(&conf, &[]).status(0).stdout_lacks("changed:");

        // A mode alone is set through a handle of the file (never `chmod` by name, which
        // follows a link swapped in after the check); the owner stays.
        let argv = with(&["run", "set_mode", &conf], &flags);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        test.run_with(&argv, &[("WEFT_SUDO_PASSWORD", &password)])
            .status(0)
            .stdout_has("(mode 0600)");
        assert_eq!(owner_and_mode(&conf), (uid, 0, 0o600), "{label}");
        let argv = with(&["run", "set_mode", &linked], &flags);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        test.run_with(&argv, &[("WEFT_SUDO_PASSWORD", &password)])
            .status(1);
        assert_eq!(owner_and_mode(&victim.display().to_string()), (0, 0, 0o600));
    }
}

#[test]
fn a_folder_planted_at_the_old_staging_name_never_becomes_the_link() {
    let targets = Targets::new();
    let test = &targets.test;
    test.write(
        "deploy/link.rhai",
        "/// A link.\nfn point(host, path, target) {\n    host.link(path, target);\n}\n",
    );
    let password = targets.fleet.sudo_password();
    for (label, flags) in each_with_become(&targets) {
        let user = PlainUser::new("weftlk", label);
        let app = format!("{}/app", user.home());
        // The user owns the app's folder and fills the name weft used to stage the link at.
        user.sh(&format!(
            "mkdir -p {app}/releases/v1 {app}/current.weft-link && echo planted > {app}/current.weft-link/index.html"
        ));
        let (current, target) = (format!("{app}/current"), format!("{app}/releases/v1"));
        let argv = with(&["run", "point", &current, &target], &flags);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        test.run_with(&argv, &[("WEFT_SUDO_PASSWORD", &password)])
            .status(0)
            .stdout_has("changed: link");
        let meta = std::fs::symlink_metadata(&current).expect("current");
        assert!(
            meta.file_type().is_symlink(),
            "{label}: the planted folder became {current}"
        );
        assert_eq!(
            std::fs::read_link(&current).expect("link"),
            Path::new(&target)
        );
        // The planted folder is the user's own business; weft left nothing of its own.
        let left: Vec<String> = std::fs::read_dir(&app)
            .expect("app")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".weft"))
            .collect();
        assert!(left.is_empty(), "{label}: {left:?}");
        test.run_with(&argv, &[("WEFT_SUDO_PASSWORD", &password)])
            .status(0)
            .stdout_lacks("changed:");
    }
}

#[test]
fn a_link_planted_on_the_way_never_leads_a_root_change_elsewhere() {
    use std::os::unix::fs::MetadataExt;
    let targets = Targets::new();
    let test = &targets.test;
    test.write(
        "deploy/way.rhai",
        "/// Removes.\nfn gone(host, path) {\n    host.absent(path);\n}\n\
         /// A folder.\nfn folder(host, path, owner) {\n    host.directory(path, #{ mode: \"0777\", owner: owner });\n}\n\
         /// A file's mode and owner.\nfn attrs(host, path, owner) {\n    host.file(path, #{ mode: \"0666\", owner: owner });\n}\n\
         /// A file's content.\nfn content(host, path) {\n    host.file(path, #{ content: \"planted\\n\" });\n}\n\
         /// A file given to a user.\nfn owned(host, path, text, owner) {\n    host.file(path, #{ content: text, owner: owner, group: owner, mode: \"0640\" });\n}\n",
    );
    let password = targets.fleet.sudo_password();
    for (label, flags) in each_with_become(&targets) {
        let user = PlainUser::new("weftway", label);
        // Root's own folder, with a root-only file and a folder in it.
        let victims = test.path().join(format!("victims-{label}"));
        std::fs::create_dir(&victims).expect("victims");
        let secret = victims.join("secret");
        std::fs::write(&secret, "root's own file\n").expect("secret");
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let kept = victims.join("kept");
        std::fs::create_dir(&kept).expect("kept");
        std::fs::set_permissions(&kept, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        // The user makes a folder of their own, that weft manages, a link to root's folder:
        // every name weft takes under it would lead there.
        let way = format!("{}/app", user.home());
        user.sh(&format!("ln -s {} {way}", victims.display()));
        let run = |goal: &str, args: &[&str]| {
            let mut argv = vec!["run".to_string(), goal.to_string()];
            argv.extend(args.iter().map(|a| a.to_string()));
            argv.extend(flags.iter().cloned());
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            test.run_with(&argv, &[("WEFT_SUDO_PASSWORD", &password)])
        };
        let (secret_via, kept_via) = (format!("{way}/secret"), format!("{way}/kept"));
        let inode = |p: &Path| std::fs::metadata(p).expect("stat").ino();
        let secret_inode = inode(&secret);
        let refused = "symbolic link of user";

        run("gone", &[&secret_via]).status(1).stderr_has(refused);
        assert!(
            secret.exists(),
            "{label}: absent removed a file through a planted link"
        );

        run("attrs", &[&secret_via, &user.name])
            .status(1)
            .stderr_has(refused);
        run("content", &[&secret_via]).status(1).stderr_has(refused);
        assert_eq!(
            std::fs::read_to_string(&secret).expect("secret"),
            "root's own file\n",
            "{label}: a file was written through a planted link"
        );
        assert_eq!(
            inode(&secret),
            secret_inode,
            "{label}: the file was replaced"
        );
        assert_eq!(
            owner_and_mode(&secret.display().to_string()),
            (0, 0, 0o600),
            "{label}: a file's owner or mode was changed through a planted link"
        );

        run("folder", &[&kept_via, &user.name])
            .status(1)
            .stderr_has(refused);
        assert_eq!(
            owner_and_mode(&kept.display().to_string()),
            (0, 0, 0o755),
            "{label}: a folder's owner or mode was changed through a planted link"
        );
        let made_via = format!("{way}/made");
        run("folder", &[&made_via, &user.name])
            .status(1)
            .stderr_has(refused);
        assert!(
            !victims.join("made").exists(),
            "{label}: a folder was made through a planted link"
        );
        // A new file too: nothing is at its path, so nothing is replaced, but it must not
        // appear where the link leads.
        run("content", &[&format!("{way}/fresh")])
            .status(1)
            .stderr_has(refused);
        assert!(
            !victims.join("fresh").exists(),
            "{label}: a new file was made through a planted link"
        );
        let left: Vec<String> = std::fs::read_dir(&victims)
            .expect("victims")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(
            left.is_empty(),
            "{label}: weft left {left:?} in root's folder"
        );

        // Without the link, the same steps do their work, from inside each folder.
        user.sh(&format!(
            "rm {way} && mkdir {way} && echo mine > {way}/secret && mkdir {way}/kept"
        ));
        let (uid, gid) = user.ids();
        run("attrs", &[&secret_via, &user.name])
            .status(0)
            .stdout_has("(mode 0666)");
        assert_eq!(owner_and_mode(&secret_via), (uid, gid, 0o666), "{label}");
        run("folder", &[&kept_via, "root"])
            .status(0)
            .stdout_has("changed: directory");
        assert_eq!(owner_and_mode(&kept_via), (0, gid, 0o777), "{label}");
        run("folder", &[&made_via, &user.name])
            .status(0)
            .stdout_has("created");
        assert_eq!(owner_and_mode(&made_via), (uid, 0, 0o777), "{label}");
        run("folder", &[&made_via, &user.name])
            .status(0)
            .stdout_lacks("changed:");
        run("gone", &[&secret_via])
            .status(0)
            .stdout_has("changed: absent");
        assert!(!Path::new(&secret_via).exists());
    }
}

#[test]
fn small_text_files_and_line_edits_need_no_sftp_server_and_an_upload_without_one_fails_naming_it() {
    // A host whose SFTP subsystem exits at once: config files still arrive, each in one
    // command, with their mode kept on the second write; only the upload needs SFTP.
    let fleet = Fleet::start_with(1, &[(0, "Subsystem sftp /bin/false\n")]);
    let test = Test::with_config(&fleet.config());
    let base = test.path().join("remote");
    std::fs::create_dir_all(&base).expect("base");
    test.write("templates/site.conf.hbs", "server {{host.name}};\n");
    test.write(
        "deploy/configs.rhai",
        "/// Config files.\nfn configs(host, base, port) {\n    host.file(base + \"/app.conf\", #{ content: \"port = \" + port + \"\\n\" });\n    host.template(\"site.conf.hbs\", base + \"/site.conf\");\n}\n\
         /// An upload.\nfn big(host, base) { host.upload(\"big.bin\", base + \"/big.bin\"); }\n\
         /// A line.\nfn edit(host, base) { host.line(base + \"/app.conf\", \"include extra;\"); }\n",
    );
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let base_text = base.display().to_string();
    let run = |goal: &str, extra: &[&str]| {
        test.run(
            &[
                &["run", goal, &base_text][..],
                extra,
                &args_of(&key, &known),
            ]
            .concat(),
        )
    };
    run("configs", &["80"])
        .status(0)
        .stdout_has("changed: file");
    let app = base.join("app.conf");
    assert_eq!(
        std::fs::read_to_string(&app).expect("app.conf"),
        "port = 80\n"
    );
    assert_eq!(
        std::fs::read_to_string(base.join("site.conf")).expect("site.conf"),
        "server host-0;\n"
    );
    std::fs::set_permissions(&app, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("mode");
    run("configs", &["81"])
        .status(0)
        .stdout_has("changed: file");
    assert_eq!(
        std::fs::read_to_string(&app).expect("app.conf"),
        "port = 81\n"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&app).expect("meta").permissions(),
    ) & 0o7777;
    assert_eq!(mode, 0o600, "the file replaced keeps its mode");
    // A line edit reads the file it edits by a command too.
    run("edit", &[]).status(0).stdout_has("changed: line in");
    assert_eq!(
        std::fs::read_to_string(&app).expect("app.conf"),
        "port = 81\ninclude extra;\n"
    );

    // In a set-group-id folder a new file takes the folder's group, as one made there would.
    let shared = base.join("shared");
    std::fs::create_dir(&shared).expect("shared");
    std::os::unix::fs::chown(&shared, None, Some(65534)).expect("chgrp");
    std::fs::set_permissions(
        &shared,
        std::os::unix::fs::PermissionsExt::from_mode(0o2775),
    )
    .expect("setgid");
    let shared_text = shared.display().to_string();
    test.run(
        &[
            &["run", "configs", &shared_text, "82"][..],
            &args_of(&key, &known),
        ]
        .concat(),
    )
    .status(0);
    let gid = std::os::unix::fs::MetadataExt::gid(
        &std::fs::metadata(shared.join("app.conf")).expect("meta"),
    );
    assert_eq!(gid, 65534, "the folder's group");

    std::fs::write(test.path().join("big.bin"), vec![7u8; 64 * 1024]).expect("big");
    run("big", &[]).status(1).stdout_has("file transfer");
    assert!(!base.join("big.bin").exists());
}

#[test]
fn a_line_edit_of_a_file_too_long_for_a_command_keeps_every_byte_of_it() {
    // Over 4 MiB a file is read through SFTP instead (a command's output keeps only its tail
    // past 16 MiB, and the edit writes back what was read).
    let (fleet, test, base) = fleet_and_folder(
        "deploy/edit.rhai",
        "/// A line.\nfn edit(host, path) { host.line(path, \"last = yes\"); }\n",
    );
    let log = base.join("long.conf");
    // Longer than the 16 MiB a command's output keeps, too.
    let text: String = (0..1_100_000).map(|i| format!("key{i} = {i}\n")).collect();
    assert!(text.len() > 16 * 1024 * 1024);
    std::fs::write(&log, &text).expect("long");
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let path = log.display().to_string();
    test.run(&[&["run", "edit", &path][..], &args_of(&key, &known)].concat())
        .status(0)
        .stdout_has("changed: line in");
    let after = std::fs::read_to_string(&log).expect("long");
    assert_eq!(after.len(), text.len() + "last = yes\n".len());
    assert!(after.starts_with(&text) && after.ends_with("last = yes\n"));
}
