//! `wait_until`: a command tried until it succeeds, the deadline's error, `allow_fail`, and
//! `--check`, which waits for nothing.

use std::time::{Duration, Instant};

use crate::exec::ops::waits::{self, WaitSpec};
use crate::exec::test_host::TestHost;
use crate::transport::fake::FakeTransport;

fn spec(timeout_ms: u64) -> WaitSpec {
    WaitSpec {
        timeout: Duration::from_millis(timeout_ms),
        interval: Duration::from_millis(20),
        ..WaitSpec::default()
    }
}

#[test]
fn a_command_is_tried_until_it_succeeds() {
    let fake = FakeTransport::new()
        .once("pg_isready", 1, "")
        .once("pg_isready", 1, "")
        .on("pg_isready", 0, "");
    let host = TestHost::new(fake);
    assert!(waits::command(&host.session, "pg_isready -q", &spec(5000)).expect("waited"));
    assert_eq!(host.commands(), ["pg_isready -q"; 3]);
    assert_eq!(host.logs().len(), 1, "{:?}", host.logs());
    assert!(host.logs()[0].starts_with("waited "), "{:?}", host.logs());
    assert!(host.changes().is_empty());
    // Each try is bounded by what is left of the wait.
    let ran = host.fake.ran();
    assert!(ran
        .iter()
        .all(|r| r.timeout.is_some_and(|t| t <= Duration::from_secs(5))));
}

#[test]
fn a_command_that_succeeds_at_once_is_run_once_and_says_nothing() {
    let host = TestHost::new(FakeTransport::new());
    assert!(waits::command(&host.session, "true", &spec(1000)).expect("waited"));
    assert_eq!(host.commands(), ["true"]);
    assert!(host.logs().is_empty());
}

#[test]
fn the_deadline_fails_naming_what_was_waited_for_and_how_long() {
    let host = TestHost::new(FakeTransport::new().on("redis-cli PING", 1, ""));
    let started = Instant::now();
    let err = waits::command(&host.session, "redis-cli PING", &spec(200)).expect_err("timed out");
    assert!(started.elapsed() >= Duration::from_millis(200));
    let text = err.to_string();
    assert!(
        text.starts_with("wait_until: `redis-cli PING` succeeds: still not so after 0.2s ("),
        "{text}"
    );
    assert!(host.commands().len() >= 2, "{:?}", host.commands());

    let host = TestHost::new(FakeTransport::new().on("redis-cli PING", 1, ""));
    let allowed = WaitSpec {
        allow_fail: true,
        ..spec(100)
    };
    assert!(!waits::command(&host.session, "redis-cli PING", &allowed).expect("no error"));
}

#[test]
fn under_check_nothing_is_waited_for_unless_it_only_reads() {
    let host = TestHost::check(FakeTransport::new().on("curl", 1, ""));
    assert!(
        waits::command(&host.session, "curl -fsS http://127.0.0.1/", &spec(1000)).expect("skipped")
    );
    assert!(host.commands().is_empty());
    assert_eq!(
        host.logs(),
        ["would wait until `curl -fsS http://127.0.0.1/` succeeds (at most 1s)"]
    );

    let host = TestHost::check(FakeTransport::new());
    let reads = WaitSpec {
        check_safe: true,
        ..spec(1000)
    };
    assert!(waits::command(&host.session, "test -e /run/x", &reads).expect("ran"));
    assert_eq!(host.commands(), ["test -e /run/x"]);
}

#[test]
fn durations_read_as_people_write_them() {
    let cases = [
        (Duration::from_millis(300), "0.3s"),
        (Duration::from_secs(5), "5s"),
        (Duration::from_secs(45), "45s"),
        (Duration::from_secs(185), "3m 5s"),
        (Duration::from_secs(7260), "2h 1m"),
        (Duration::from_secs(90_000), "1d 1h"),
    ];
    for (duration, text) in cases {
        assert_eq!(waits::human(duration), text);
    }
}
