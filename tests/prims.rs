//! The primitives of issue 32 on a real host over SSH (a test fleet's sshd): named locks
//! between two weft processes, `wait_until` against a condition another process makes true,
//! its deadline and Ctrl-C, and the facts of paths on a real file system.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fleet::Fleet;
use crate::harness::Test;

const GOALS: &str = r#"
/// Takes lock NAME for this goal.
fn t_take(host, name) {
    host.lock(name, #{ what: "t_take" });
}

/// Takes lock NAME, waiting for it at most 60 s.
fn t_wait(host, name) {
    host.lock(name, #{ what: "t_wait", wait: 60 });
    host.unlock(name);
}

/// Removes lock NAME whoever holds it.
fn t_break(host, name) {
    host.unlock(name, #{ force: true });
}

/// Waits until FILE exists, at most a minute.
fn t_until(host, file) {
    host.wait_until(["test", "-e", file], #{ timeout: 60, interval: 0.2 });
}

/// A wait that cannot end well.
fn t_never(host, secs) {
    log("waiting");
    host.wait_until("false", #{ timeout: parse_float(secs), interval: 0.2 });
}

/// The facts of the paths in DIR.
fn t_paths(host, dir) {
    log(`exists: ${host.exists(dir + "/a.txt")} ${host.exists(dir + "/gone")} ${host.exists(dir + "/dangling")}`);
    log(`readlink: ${host.readlink(dir + "/link")} ${host.readlink(dir + "/a.txt")}`);
    log(`list: ${host.list(dir)}`);
    log(`missing: ${host.list(dir + "/nothing")}`);
    log(`checksum: ${host.checksum(dir + "/a.txt")}`);
    log(`verify: ${host.verify(dir + "/a.txt", host.checksum(dir + "/a.txt"))} ${host.verify(dir + "/b.txt", host.checksum(dir + "/a.txt"))}`);
}

/// list of a file.
fn t_list_file(host, file) {
    host.list(file);
}
"#;

fn project() -> (Fleet, Test, Vec<String>) {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    test.write("deploy/t.rhai", GOALS);
    let args = vec![
        "-e".to_string(),
        "fleet".into(),
        "-i".into(),
        fleet.key(),
        "--known-hosts".into(),
        fleet.known_hosts(),
    ];
    (fleet, test, args)
}

fn argv<'a>(goal: &'a str, arg: &'a str, conn: &'a [String]) -> Vec<&'a str> {
    let mut argv = vec!["run", goal, arg];
    argv.extend(conn.iter().map(String::as_str));
    argv
}

#[test]
fn a_lock_held_by_one_run_stops_another_until_released_or_broken() {
    let (_fleet, test, conn) = project();
    // Unique on this machine: other tests and projects share root's lock folder.
    let name = format!("weft test {}", test.path().display());
    test.run(&argv("t_take", &name, &conn))
        .status(0)
        .stdout_has(&format!("changed: lock {name}"));
    let folder = std::path::Path::new("/var/lib/weft/locks");
    let meta = std::fs::metadata(folder).expect("the lock folder");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o700
    );
    // A second run is refused with the holder, what it took the lock for, and its age.
    let refused = test.run(&argv("t_take", &name, &conn));
    refused
        .status(1)
        .stdout_has(&format!("lock {name}: held by "))
        .stdout_has("(t_take), ");
    assert!(refused.stdout.contains("s old"), "{}", refused.stdout);
    // A run that waits gets it once another breaks it.
    let waiter = test
        .command(&argv("t_wait", &name, &conn))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    test.run(&argv("t_break", &name, &conn))
        .status(0)
        .stdout_has("(broken, held by ");
    let waited = waiter.wait_with_output().expect("weft ends");
    let out = String::from_utf8_lossy(&waited.stdout);
    assert!(waited.status.success(), "{out}");
    assert!(out.contains(&format!("changed: lock {name}")), "{out}");
    // It released the lock as it ended; the break is on record.
    test.run(&argv("t_take", &name, &conn)).status(0);
    test.run(&argv("t_break", &name, &conn)).status(0);
    let log = std::fs::read_to_string(folder.join("breaks.log")).expect("breaks.log");
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("broke {name}, held by "))),
        "{log}"
    );
}

#[test]
fn wait_until_waits_for_a_condition_gives_up_at_its_deadline_and_stops_at_ctrl_c() {
    let (_fleet, test, conn) = project();
    let file = test.path().join("ready").display().to_string();
    let waiter = test
        .command(&argv("t_until", &file, &conn))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    std::fs::write(&file, "").expect("ready");
    let waited = waiter.wait_with_output().expect("weft ends");
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stdout)
    );

    let started = Instant::now();
    test.run(&argv("t_never", "1.5", &conn))
        .status(1)
        .stdout_has("`false` succeeds: still not so after 1.5s (");
    assert!(started.elapsed() >= Duration::from_millis(1500));

    // Ctrl-C ends a wait of a minute at once (sent once the goal is waiting: before, weft
    // has no handler yet and the signal would simply kill it).
    let mut child = test
        .command(&argv("t_never", "60", &conn))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("weft starts");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        child.stdout.take().expect("stdout"),
    ));
    let waiting = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.ends_with("| waiting"));
    assert!(waiting, "the goal never started waiting");
    let started = Instant::now();
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("weft ends");
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
}

#[test]
fn path_facts_read_a_real_file_system() {
    let (_fleet, test, conn) = project();
    let dir = test.path().join("tree");
    std::fs::create_dir_all(&dir).expect("tree");
    std::fs::write(dir.join("a.txt"), "alpha\n").expect("a");
    std::fs::write(dir.join("b.txt"), "beta\n").expect("b");
    std::fs::write(dir.join(".hidden"), "").expect("hidden");
    std::os::unix::fs::symlink("a.txt", dir.join("link")).expect("link");
    std::os::unix::fs::symlink("gone", dir.join("dangling")).expect("dangling");
    let sum = Command::new("sha256sum")
        .arg(dir.join("a.txt"))
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let dir_text = dir.display().to_string();
    test.run(&argv("t_paths", &dir_text, &conn))
        .status(0)
        .stdout_has("exists: true false true")
        .stdout_has("readlink: a.txt \n")
        .stdout_has("list: [\".hidden\", \"a.txt\", \"b.txt\", \"dangling\", \"link\"]")
        .stdout_has("missing: []")
        .stdout_has(&format!("checksum: {sum}"))
        .stdout_has("verify: true false");
    test.run(&argv("t_list_file", &format!("{dir_text}/a.txt"), &conn))
        .status(1)
        .stdout_has(&format!("{dir_text}/a.txt is not a folder"));
}
