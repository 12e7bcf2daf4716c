//! `lock`, `unlock` and `owner`: who holds a lock, what a held lock says, waiting, breaking,
//! and `--check`, which takes nothing.

use std::time::Duration;

use super::{changed, refused, unchanged};
use crate::exec::ops::locks::{self, Holder, LockSpec};
use crate::exec::test_host::TestHost;
use crate::transport::fake::FakeTransport;

fn me() -> Holder {
    Holder {
        runner: "alice@ci:42".into(),
        run: "r1".into(),
        what: "site_deploy".into(),
    }
}

/// What the host prints for a lock another run took at unix time 1000, read at `now`.
fn held_by_bob(now: i64) -> String {
    format!("held\nrunner=bob@laptop:7\nrun=r9\nsince=1000\nwhat=site_activate\n\nnow={now}\n")
}

#[test]
fn lock_names_become_file_names_that_are_never_paths() {
    let cases = [
        ("deploy", "deploy"),
        ("site.v2_x-y", "site.v2_x-y"),
        ("/opt/www/site deploy", "%2Fopt%2Fwww%2Fsite%20deploy"),
        ("..", "%2E."),
        (".hidden", "%2Ehidden"),
        ("a/../b", "a%2F..%2Fb"),
    ];
    for (name, file) in cases {
        assert_eq!(locks::file_name(name), file, "{name}");
    }
    assert!(locks::check_name("").is_err());
    assert!(locks::check_name(&"/".repeat(90)).is_err());
}

#[test]
fn lock_table() {
    struct Case {
        name: &'static str,
        /// What the take command prints.
        answer: String,
        spec: LockSpec,
        /// `Ok(report)` for a change, `Err(message)` for a refusal.
        expected: Result<&'static str, &'static str>,
        /// The commands after the take, in order.
        then: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "free: taken",
            answer: "taken\n".into(),
            spec: LockSpec::default(),
            expected: Ok("lock deploy"),
            then: &[],
        },
        Case {
            name: "held by another run: refused, naming it and its age",
            answer: held_by_bob(1185),
            spec: LockSpec::default(),
            expected: Err("lock deploy: held by bob@laptop:7 (site_activate), 3m 5s old"),
            then: &[],
        },
        Case {
            name: "held by another run, --break-lock: taken over and recorded",
            answer: held_by_bob(1010),
            spec: LockSpec {
                force: true,
                ..LockSpec::default()
            },
            expected: Ok("lock deploy (broken)"),
            then: &["mkdir -p -- \"$l\" && printf"],
        },
        Case {
            name: "an owner file weft did not write is shown as it is",
            answer: "held\nalice@ci 2026-11-22T10:00:00Z site_activate\n\nnow=5\n".into(),
            spec: LockSpec::default(),
            expected: Err("held by alice@ci 2026-11-22T10:00:00Z site_activate, age unknown"),
            then: &[],
        },
    ];
    for case in cases {
        let fake = FakeTransport::new().on("if mkdir --", 0, &case.answer);
        let host = TestHost::new(fake);
        let result = locks::lock(&host.session, "deploy", &me(), &case.spec);
        match case.expected {
            Ok(report) => changed(&host, result, report),
            Err(message) => refused(&host, result, message),
        }
        let commands = host.commands();
        assert!(
            commands[0].contains("mkdir -- \"$l\"")
                && commands[0].contains("d=/var/lib/weft/locks"),
            "{}: {commands:?}",
            case.name
        );
        // The owner is written through a fresh name, with the host's clock.
        assert!(
            commands[0]
                .contains("runner=alice@ci:42 run=r1 \"since=$(date +%s)\" what=site_deploy >"),
            "{}: {}",
            case.name,
            commands[0]
        );
        assert_eq!(
            commands.len(),
            1 + case.then.len(),
            "{}: {commands:?}",
            case.name
        );
        for (ran, part) in commands[1..].iter().zip(case.then) {
            assert!(ran.contains(part), "{}: {ran}", case.name);
            assert!(ran.contains("broke deploy, held by bob@laptop:7 (site_activate), 10s old"));
            assert!(ran.contains(">> \"$d/breaks.log\""));
        }
    }
}

#[test]
fn a_lock_this_run_holds_is_taken_again_without_a_change() {
    let fake = FakeTransport::new().on(
        "if mkdir --",
        0,
        "held\nrunner=alice@ci:42\nrun=r1\nsince=1000\nwhat=x\n\nnow=1001\n",
    );
    let host = TestHost::new(fake);
    let result = locks::lock(&host.session, "deploy", &me(), &LockSpec::default());
    unchanged(&host, result, "lock deploy (held by this run)");
}

#[test]
fn the_same_pid_of_another_run_does_not_hold_the_lock() {
    let fake = FakeTransport::new().on(
        "if mkdir --",
        0,
        "held\nrunner=alice@ci:42\nrun=r0\nsince=1000\nwhat=x\n\nnow=1001\n",
    );
    let host = TestHost::new(fake);
    let result = locks::lock(&host.session, "deploy", &me(), &LockSpec::default());
    refused(&host, result, "held by alice@ci:42 (x), 1s old");
}

#[test]
fn a_waiting_lock_is_taken_once_the_holder_lets_go() {
    let fake = FakeTransport::new()
        .once("if mkdir --", 0, &held_by_bob(1001))
        .on("if mkdir --", 0, "taken\n");
    let host = TestHost::new(fake);
    let spec = LockSpec {
        wait: Some(Duration::from_secs(5)),
        ..LockSpec::default()
    };
    let result = locks::lock(&host.session, "deploy", &me(), &spec);
    changed(&host, result, "lock deploy");
    assert_eq!(host.commands().len(), 2, "tried twice");
}

#[test]
fn a_waiting_lock_still_held_at_the_deadline_names_the_holder() {
    let fake = FakeTransport::new().on("if mkdir --", 0, &held_by_bob(1001));
    let host = TestHost::new(fake);
    let spec = LockSpec {
        wait: Some(Duration::from_millis(300)),
        ..LockSpec::default()
    };
    let result = locks::lock(&host.session, "deploy", &me(), &spec);
    refused(
        &host,
        result,
        "still held by bob@laptop:7 (site_activate), 1s old, after waiting 0.3s",
    );
}

#[test]
fn a_lock_folder_that_is_not_ours_is_refused() {
    let fake = FakeTransport::new().answer(
        "if mkdir --",
        crate::transport::fake::Answer {
            code: 3,
            stdout: String::new(),
            stderr: "/var/lib/weft/locks is not the login user's own folder\n".into(),
        },
    );
    let host = TestHost::new(fake);
    let result = locks::lock(&host.session, "deploy", &me(), &LockSpec::default());
    refused(
        &host,
        result,
        "cannot use the lock folder: /var/lib/weft/locks is not",
    );
}

#[test]
fn under_check_no_lock_is_taken_and_a_held_one_is_named() {
    let fake = FakeTransport::new().on("if [ -d \"$l\" ]; then echo held", 0, &held_by_bob(1060));
    let host = TestHost::check(fake);
    let result = locks::lock(&host.session, "deploy", &me(), &LockSpec::default());
    changed(&host, result, "lock deploy");
    assert!(host.all_changes_checked());
    let commands = host.commands();
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert!(!commands[0].contains("mkdir --"), "{}", commands[0]);
    assert_eq!(
        host.logs(),
        ["deploy is locked by bob@laptop:7 (site_activate), 1m 0s old: the run would wait or fail"]
    );

    let host = TestHost::check(FakeTransport::new());
    assert_eq!(
        locks::unlock(&host.session, "deploy", &me(), false).ok(),
        Some(false)
    );
    assert!(host.commands().is_empty(), "{:?}", host.commands());
}

#[test]
fn unlock_table() {
    let cases = [
        (
            "ours: released",
            "released\n",
            false,
            true,
            "unlock deploy",
            1,
        ),
        (
            "nobody's",
            "free\n",
            false,
            false,
            "unlock deploy (not locked)",
            1,
        ),
        (
            "another run's: left alone",
            "held\nrunner=bob@laptop:7\nrun=r9\nsince=1000\nwhat=x\n\nnow=1000\n",
            false,
            false,
            "unlock deploy",
            1,
        ),
        (
            "another run's, forced: broken and recorded",
            "held\nrunner=bob@laptop:7\nrun=r9\nsince=1000\nwhat=x\n\nnow=1000\n",
            true,
            true,
            "unlock deploy (broken, held by bob@laptop:7 (x), 0s old)",
            2,
        ),
        ("ours, forced", "released\n", true, true, "unlock deploy", 1),
    ];
    for (name, answer, force, expected, report, commands) in cases {
        let host = TestHost::new(FakeTransport::new().on("if [ ! -d \"$l\" ]", 0, answer));
        let result = locks::unlock(&host.session, "deploy", &me(), force);
        if expected {
            changed(&host, result, report);
        } else {
            unchanged(&host, result, report);
        }
        let ran = host.commands();
        assert_eq!(ran.len(), commands, "{name}: {ran:?}");
        // Only a lock whose owner file names this run is removed by the first command.
        assert!(
            ran[0].contains("grep -qxF -- runner=alice@ci:42 \"$l/owner\" 2>/dev/null && grep -qxF -- run=r1 \"$l/owner\"; then rm -rf -- \"$l\""),
            "{name}: {}",
            ran[0]
        );
        if commands == 2 {
            assert!(
                ran[1].contains("rm -rf -- \"$l\" && printf"),
                "{name}: {}",
                ran[1]
            );
            assert!(ran[1].contains("alice@ci:42 broke deploy, held by bob@laptop:7 (x), 0s old"));
        }
    }
}

#[test]
fn owner_reads_who_holds_a_lock() {
    let host = TestHost::new(FakeTransport::new().on("echo held", 0, &held_by_bob(1100)));
    let owner = locks::owner(&host.session, "deploy")
        .expect("read")
        .expect("held");
    assert_eq!(owner.runner, "bob@laptop:7");
    assert_eq!(owner.run, "r9");
    assert_eq!(owner.what, "site_activate");
    assert_eq!(owner.since, Some(1000));
    assert_eq!(owner.age, Some(Duration::from_secs(100)));
    assert!(!owner.is(&me()));

    let host = TestHost::check(FakeTransport::new());
    assert_eq!(locks::owner(&host.session, "deploy").expect("read"), None);
    assert_eq!(host.commands().len(), 1, "read under --check too");
}
