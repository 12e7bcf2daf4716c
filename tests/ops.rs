//! Idempotent operations: each runs twice (changed, then unchanged), `--check` touches nothing,
//! `--diff` shows template changes, and sensitive values never reach the output.

use std::path::Path;
use std::process::Command;

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

    // Twice: nothing left to do.
    let out = run("v1", &[]);
    out.status(0)
        .stdout_has("summary: 1 ok, 0 changed")
        .stdout_has("ok: file")
        .stdout_lacks("changed: ");

    // --diff shows the template change; the sensitive file's content never appears.
    let out = run("v2", &["--diff"]);
    out.status(0)
        .stdout_has("-")
        .stdout_has("serves v1")
        .stdout_has("+")
        .stdout_has("serves v2")
        .stdout_lacks("hunter2");
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

#[test]
fn users_groups_and_authorized_keys_over_ssh() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let suffix = std::process::id();
    let (user, group) = (format!("weftop{suffix}"), format!("weftog{suffix}"));
    let key_a =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice";
    let key_b =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti bob";
    test.write(
        "deploy/users.rhai",
        &format!(
            "/// Users.\nfn users_setup(host, keys) {{\n    host.group(\"{group}\", #{{}});\n    host.user(\"{user}\", #{{ shell: \"/bin/sh\", groups: [\"{group}\"] }});\n    host.authorized_keys(\"{user}\", keys.split(\",\"), #{{ exclusive: true }});\n}}\n"
        ),
    );
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let flags = [
        "-e",
        "fleet",
        "-i",
        key.as_str(),
        "--known-hosts",
        known.as_str(),
    ];
    let both = format!("{key_a},{key_b}");
    let mut args = vec![both.as_str()];
    args.extend(flags);
    twice(&test, "users_setup", &args);
    let home = format!("/home/{user}");
    let keys = std::fs::read_to_string(format!("{home}/.ssh/authorized_keys")).expect("keys");
    assert_eq!(keys.lines().count(), 2, "{keys}");
    let groups = Command::new("id")
        .args(["-nG", &user])
        .output()
        .expect("id");
    assert!(String::from_utf8_lossy(&groups.stdout).contains(&group));
    // Exclusive: a key left out of the set is removed.
    let mut args = vec![key_a];
    args.extend(flags);
    let mut argv = vec!["run", "users_setup"];
    argv.extend(&args);
    test.run(&argv).status(0).stdout_has("changed: file");
    let keys = std::fs::read_to_string(format!("{home}/.ssh/authorized_keys")).expect("keys");
    assert!(keys.contains("alice") && !keys.contains("bob"), "{keys}");
    let _ = Command::new("userdel").args(["-r", &user]).output();
    let _ = Command::new("groupdel").arg(&group).output();
}

#[test]
fn cron_archive_and_extract_on_the_local_connector() {
    let test = Test::with_config("[project]\nname = \"ops\"\n");
    let name = format!("t{}", std::process::id());
    test.write("work/src/app.py", "print('hi')\n");
    test.write(
        "deploy/misc.rhai",
        &format!(
            "/// Misc.\nfn misc_all(host) {{\n    host.cron(\"{name}\", #{{ schedule: \"*/5 * * * *\", command: \"true\" }});\n    host.archive(\"work/src\", \"work/app.tar.gz\");\n    host.extract(\"work/app.tar.gz\", \"work/out\", \"app.py\");\n}}\n"
        ),
    );
    twice(&test, "misc_all", &[]);
    let cron_file = format!("/etc/cron.d/weft-{name}");
    assert!(std::fs::read_to_string(&cron_file)
        .expect("cron")
        .contains("*/5 * * * * root true"));
    assert_eq!(test.read("work/out/app.py"), "print('hi')\n");
    test.write(
        "deploy/misc.rhai",
        &format!(
            "/// Misc.\nfn misc_all(host) {{ host.cron(\"{name}\", #{{ state: \"absent\" }}); }}\n"
        ),
    );
    test.run(&["run", "misc_all"])
        .status(0)
        .stdout_has("changed: absent");
    assert!(!Path::new(&cron_file).exists());
}

#[test]
fn git_checkouts_follow_tags() {
    let test = Test::with_config("[project]\nname = \"ops\"\n");
    let repo = test.path().join("upstream");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
        &format!("/// Checks out.\nfn g_checkout(host, version) {{ host.git(\"{repo_text}\", \"checkout\", #{{ version: version }}); }}\n"),
    );
    twice(&test, "g_checkout", &["v1"]);
    assert_eq!(test.read("checkout/VERSION"), "1\n");
    test.run(&["run", "g_checkout", "v2"])
        .status(0)
        .stdout_has("changed: git");
    assert_eq!(test.read("checkout/VERSION"), "2\n");
    test.run(&["run", "g_checkout", "v9"])
        .status(1)
        .stdout_has("`v9` is not a branch, tag or commit");
}

#[test]
fn virtualenv_and_pip() {
    let test = Test::with_config("[project]\nname = \"ops\"\n");
    test.write(
        "deploy/py.rhai",
        "/// Python.\nfn py_env(host) {\n    host.virtualenv(\"venv\", #{ python: \"/usr/bin/python3\" });\n    host.pip(\"venv\", #{ packages: [\"six==1.16.0\"] });\n}\n",
    );
    twice(&test, "py_env", &[]);
    let out = Command::new(test.path().join("venv/bin/python"))
        .args(["-c", "import six; print(six.__version__)"])
        .output()
        .expect("python");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.16.0");
}

#[test]
fn packages_install_and_remove_with_apt() {
    let test = Test::with_config("[project]\nname = \"ops\"\n");
    test.write(
        "deploy/p.rhai",
        "/// Packages.\nfn p_sl(host, state) { host.packages([\"sl\"], #{ state: state }); }\n",
    );
    test.run(&["run", "p_sl", "absent"]).status(0);
    test.run(&["run", "p_sl", "present", "--check"])
        .status(0)
        .stdout_has("would change: packages install: sl");
    assert!(
        !Path::new("/usr/games/sl").exists(),
        "--check installed a package"
    );
    twice(&test, "p_sl", &["present"]);
    assert!(Path::new("/usr/games/sl").exists());
    twice(&test, "p_sl", &["absent"]);
    assert!(!Path::new("/usr/games/sl").exists());
}

#[test]
fn the_python_role_applies_twice_with_nothing_left_the_second_time() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let argv = [
        "run",
        "python_setup",
        "-e",
        "fleet",
        "-i",
        key.as_str(),
        "--known-hosts",
        known.as_str(),
    ];
    test.run(&argv).status(0);
    test.run(&argv)
        .status(0)
        .stdout_has("summary: 1 ok, 0 changed")
        .stdout_has("ok: packages present");
}

#[test]
fn facts_describe_the_host() {
    let test = Test::with_config("[project]\nname = \"ops\"\n");
    test.write(
        "deploy/f.rhai",
        "/// Facts.\nfn f_show(host) {\n    let f = host.facts;\n    log(`${f.os} ${f.package_manager} ${f.cpus > 0} ${f.uid}`);\n    let users = host.fact(\"users\");\n    log(`root:${users.filter(|u| u.name == \"root\").len()}`);\n    host.template(\"f.hbs\", \"facts.txt\");\n}\n",
    );
    test.write("templates/f.hbs", "{{facts.os}} {{facts.distro}}\n");
    test.run(&["run", "f_show"])
        .status(0)
        .stdout_has("local | Linux apt true 0")
        .stdout_has("local | root:1");
    assert_eq!(test.read("facts.txt"), "Linux debian\n");
}

#[test]
fn services_under_supervisor_and_handlers_run_once_at_the_end() {
    let test = Test::with_config("[project]\nname = \"ops\"\n");
    let root = test.path().display().to_string();
    // A private supervisord: supervisorctl finds ./supervisord.conf in the working directory.
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
        .arg(test.path().join("supervisord.conf"))
        .status()
        .expect("supervisord");
    assert!(started.success());
    std::thread::sleep(std::time::Duration::from_millis(500));
    test.write(
        "deploy/s.rhai",
        "/// Service.\nfn s_run(host, state) { host.service(\"sleeper\", #{ state: state, manager: \"supervisor\" }); }\n\
         /// Config change with a handler.\nfn s_conf(host, text) {\n    if host.file(\"sleeper.conf\", #{ content: text }) { host.notify(\"sleeper\", \"restart\"); host.notify(\"sleeper\", \"restart\"); }\n}\n",
    );
    twice(&test, "s_run", &["started"]);
    let pid = |t: &Test| {
        let out = Command::new("supervisorctl")
            .arg("pid")
            .arg("sleeper")
            .current_dir(t.path())
            .output()
            .expect("ctl");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let first = pid(&test);
    // A change notifies a restart, run once even when asked twice.
    let out = test.run(&["run", "s_conf", "a"]);
    out.status(0)
        .stdout_has("changed: service sleeper (restart)");
    assert_eq!(out.stdout.matches("(restart)").count(), 1, "{}", out.stdout);
    let second = pid(&test);
    assert_ne!(first, second, "the handler did not restart the service");
    test.run(&["run", "s_conf", "a"])
        .status(0)
        .stdout_lacks("restart");
    assert_eq!(pid(&test), second);
    twice(&test, "s_run", &["stopped"]);
    let _ = Command::new("supervisorctl")
        .arg("shutdown")
        .current_dir(test.path())
        .output();
}
