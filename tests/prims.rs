//! The primitives of issue 32 on a real host over SSH (a test fleet's sshd): named locks
//! between two weft processes, `wait_until` against a condition another process makes true,
//! its deadline and Ctrl-C, and the facts of paths on a real file system; `touch`, `rename`
//! and `copy_tree` in a folder another user owns and plants links in.

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

/// Touches PATH.
fn t_touch(host, path) {
    host.touch(path);
}

/// Renames FROM to TO.
fn t_rename(host, from, to) {
    host.rename(from, to);
}

/// Copies what FROM holds into TO.
fn t_copy(host, from, to) {
    host.copy_tree(from, to, #{ exclude: [".git"] });
}

/// The facts of the folder DIR.
fn t_tree(host, dir) {
    log(`files: ${host.files(dir, #{ exclude: [".git"] })}`);
    log(`sum: ${host.tree_sum(dir, #{ exclude: [".git"] })}`);
    log(`realpath: ${host.realpath(dir + "/../src/./a.txt")}`);
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

/// `touch`, `rename` and `copy_tree` as root in a folder a plain user owns: every link the user
/// planted is touched, replaced or refused, never written through, and a folder the user
/// swapped for a link is never entered; a copy done is unchanged the second time.
#[test]
fn touch_rename_and_copy_tree_never_follow_what_a_user_plants() {
    use std::os::unix::fs::MetadataExt;
    let (_fleet, test, conn) = project();
    let user = crate::ops::PlainUser::new("weftch", "");
    let home = user.home();
    let root_dir = test.path().join("root-only");
    std::fs::create_dir(&root_dir).expect("root-only");
    let victim = root_dir.join("victim");
    std::fs::write(&victim, "root only\n").expect("victim");
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(&victim)
        .and_then(|f| f.set_modified(old))
        .expect("mtime");
    let (v, r) = (victim.display(), root_dir.display());
    user.sh(&format!(
        "mkdir {home}/w && ln -s {v} {home}/w/stamp && ln -s {r}/made {home}/w/dangling && \
         ln -s {r} {home}/w/swapped && echo mine > {home}/w/from && ln -s {v} {home}/w/to && \
         mkdir {home}/w/out && ln -s {v} {home}/w/out/a.txt"
    ));
    let untouched = |what: &str| {
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "root only\n",
            "{what}: written through a planted link"
        );
        let meta = std::fs::metadata(&victim).expect("victim");
        assert_eq!(
            (meta.uid(), meta.modified().expect("mtime")),
            (0, old),
            "{what}: the linked file was touched or handed over"
        );
        let made: Vec<_> = std::fs::read_dir(&root_dir)
            .expect("root-only")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            made,
            [std::ffi::OsString::from("victim")],
            "{what}: made in root-only"
        );
    };
    let w = format!("{home}/w");

    // touch: a link is touched itself; a dangling one makes nothing where it points; a new
    // file appears; a path through the user's link is refused.
    test.run(&argv("t_touch", &format!("{w}/stamp"), &conn))
        .status(0)
        .stdout_has(&format!("changed: touch {w}/stamp"));
    untouched("touch of a link");
    test.run(&argv("t_touch", &format!("{w}/dangling"), &conn))
        .status(0);
    untouched("touch of a dangling link");
    test.run(&argv("t_touch", &format!("{w}/fresh"), &conn))
        .status(0);
    assert!(std::fs::symlink_metadata(format!("{w}/fresh"))
        .expect("fresh")
        .is_file());
    test.run(&argv("t_touch", &format!("{w}/swapped/made"), &conn))
        .status(1);
    untouched("touch through a swapped folder");

    // rename: the planted link at `to` is replaced, not followed; done is done.
    let mut args = argv("t_rename", &w, &conn);
    let (from, to) = (format!("{w}/from"), format!("{w}/to"));
    args.splice(2..3, [from.as_str(), to.as_str()]);
    test.run(&args)
        .status(0)
        .stdout_has(&format!("changed: rename {from} -> {to}"));
    untouched("rename over a link");
    assert_eq!(std::fs::read_to_string(&to).expect("to"), "mine\n");
    assert!(std::fs::symlink_metadata(&to).expect("to").is_file());
    test.run(&args)
        .status(0)
        .stdout_has("0 changed, 1 unchanged");
    let (a, b) = (format!("{w}/swapped/victim"), format!("{w}/swapped/moved"));
    args.splice(2..4, [a.as_str(), b.as_str()]);
    test.run(&args).status(1);
    untouched("rename through a swapped folder");

    // copy_tree as root from a user's tree, its folders 0777: the copy is root's and nobody
    // else can write it; `.git` stays out; the second copy finds it alike. A target the user
    // owns (holding a planted link) or holding a folder the user can write is refused.
    user.sh(&format!(
        "umask 000 && mkdir -p {home}/src/.git {home}/src/css && echo alpha > {home}/src/a.txt && \
         echo 'body {{}}' > {home}/src/css/site.css && echo ref > {home}/src/.git/HEAD"
    ));
    let s = format!("{home}/src");
    let mut args = argv("t_copy", &s, &conn);
    let user_out = format!("{w}/out");
    args.insert(3, user_out.as_str());
    test.run(&args)
        .status(1)
        .stdout_has("is owned or writable by a user other than root");
    untouched("copy into a user's folder");
    let out = test.path().join("copy").display().to_string();
    args[3] = out.as_str();
    test.run(&args)
        .status(0)
        .stdout_has(&format!("changed: copy_tree {s} -> {out}"));
    for made in ["", "/css", "/a.txt", "/css/site.css"] {
        let meta = std::fs::symlink_metadata(format!("{out}{made}")).expect("copied");
        assert_eq!(meta.uid(), 0, "{out}{made} is not root's");
        assert_eq!(
            meta.mode() & 0o7022,
            0,
            "{out}{made}: mode {:o}",
            meta.mode()
        );
    }
    assert_eq!(
        std::fs::read_to_string(format!("{out}/a.txt")).expect("a"),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{out}/css/site.css")).expect("css"),
        "body {}\n"
    );
    assert!(!std::path::Path::new(&format!("{out}/.git")).exists());
    test.run(&args)
        .status(0)
        .stdout_has("0 changed, 1 unchanged");
    let shared = test.path().join("shared");
    std::fs::create_dir_all(shared.join("css")).expect("shared");
    std::fs::set_permissions(
        shared.join("css"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let shared = shared.display().to_string();
    args[3] = shared.as_str();
    test.run(&args)
        .status(1)
        .stdout_has(&format!("{shared}/css is owned or writable"));
    assert!(!std::path::Path::new(&format!("{shared}/a.txt")).exists());
    let into = format!("{w}/swapped/copy");
    args[3] = into.as_str();
    test.run(&args).status(1);
    untouched("copy through a swapped folder");

    // The facts of the copy and its source: the same files, the same sum.
    let sum_of = |stdout: &str| {
        let line = stdout
            .lines()
            .find(|l| l.contains("sum: "))
            .unwrap_or_default();
        line.rsplit(' ').next().unwrap_or_default().to_string()
    };
    let copy = test.run(&argv("t_tree", &out, &conn));
    copy.status(0)
        .stdout_has("files: [\"a.txt\", \"css/site.css\"]")
        .stdout_has("realpath: \n");
    let source = test.run(&argv("t_tree", &s, &conn));
    source
        .status(0)
        .stdout_has("files: [\"a.txt\", \"css/site.css\"]")
        .stdout_has(&format!("realpath: {s}/a.txt"));
    let sum = sum_of(&copy.stdout);
    assert_eq!(sum.len(), 64, "{}", copy.stdout);
    assert_eq!(sum, sum_of(&source.stdout));
}
