//! The fan-out over fake hosts: host order, failures, `--max-fail`, `--serial`, unreachable
//! hosts and a job that changes files.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Barrier;

use crate::exec::output::{HostOutcome, Status};
use crate::exec::runner::Job;
use crate::exec::settings::FanoutLimits;
use crate::exec::settings::MaxFail;
use crate::exec::test_host::{limits, run_job};
use crate::transport::fake::FakeTransport;

/// Runs `job` over `hosts` with `limits`, no project; the outcomes in host order.
fn run(job: Job, hosts: &[Option<&Arc<FakeTransport>>], limits: FanoutLimits) -> Vec<HostOutcome> {
    run_job(job, hosts, limits, false, Path::new("/nonexistent")).0
}

fn statuses(outcomes: &[HostOutcome]) -> Vec<(&str, Status)> {
    outcomes
        .iter()
        .map(|o| (o.host.as_str(), o.status))
        .collect()
}

fn hosts(n: usize) -> Vec<Arc<FakeTransport>> {
    (0..n).map(|_| Arc::new(FakeTransport::new())).collect()
}

fn failing() -> Arc<FakeTransport> {
    Arc::new(FakeTransport::new().on("uptime", 1, ""))
}

#[test]
fn every_host_runs_the_job_at_once_and_outcomes_come_in_host_order() {
    // Each command waits until all three run at the same time (else it fails with 124).
    let gate = Arc::new(Barrier::new(3));
    let fakes: Vec<Arc<FakeTransport>> = (0..3)
        .map(|i| {
            let code = if i == 1 { 1 } else { 0 };
            Arc::new(
                FakeTransport::new()
                    .on("uptime", code, " 10:00:00 up 1 day\n")
                    .gate(gate.clone()),
            )
        })
        .collect();
    let refs: Vec<Option<&Arc<FakeTransport>>> = fakes.iter().map(Some).collect();
    let outcomes = run(Job::Command("uptime".into()), &refs, limits(3, None, None));
    assert_eq!(
        statuses(&outcomes),
        [
            ("app-0", Status::Ok),
            ("app-1", Status::Failed),
            ("app-2", Status::Ok)
        ]
    );
    assert_eq!(outcomes[1].error.as_deref(), Some("`uptime` exited with 1"));
    for fake in &fakes {
        assert_eq!(fake.commands(), ["uptime"]);
    }
}

#[test]
fn max_fail_stops_starting_hosts_once_exceeded() {
    use MaxFail::{Count, Percent};
    use Status::{Failed as F, Ok as O, Skipped as S};
    // (hosts that fail, --max-fail, how each of the four ends)
    let cases: [(&[usize], Option<MaxFail>, [Status; 4]); 6] = [
        (&[0], Some(Count(0)), [F, S, S, S]),
        (&[0], Some(Count(1)), [F, O, O, O]),
        (&[0, 1], Some(Count(1)), [F, F, S, S]),
        (&[0], Some(Percent(25.0)), [F, O, O, O]),
        (&[0, 1], Some(Percent(25.0)), [F, F, S, S]),
        (&[0, 1, 2, 3], None, [F, F, F, F]),
    ];
    for (failing_hosts, max_fail, expected) in cases {
        let fakes: Vec<Arc<FakeTransport>> = (0..4)
            .map(|i| {
                if failing_hosts.contains(&i) {
                    failing()
                } else {
                    Arc::new(FakeTransport::new())
                }
            })
            .collect();
        let refs: Vec<Option<&Arc<FakeTransport>>> = fakes.iter().map(Some).collect();
        // One at a time, in host order: batches of one, or `-p 1` alone.
        for serial in [Some(1), None] {
            let outcomes = run(
                Job::Command("uptime".into()),
                &refs,
                limits(1, serial, max_fail),
            );
            let got: Vec<Status> = outcomes.iter().map(|o| o.status).collect();
            assert_eq!(
                got, expected,
                "{failing_hosts:?} with {max_fail:?}, --serial {serial:?}"
            );
        }
        let outcomes = run(
            Job::Command("uptime".into()),
            &refs,
            limits(1, None, max_fail),
        );
        for (outcome, fake) in outcomes.iter().zip(&fakes) {
            if outcome.status == Status::Skipped {
                assert!(fake.commands().is_empty(), "{} ran", outcome.host);
                assert_eq!(
                    outcome.error.as_deref(),
                    Some("not started: --max-fail was exceeded")
                );
            }
        }
    }
}

#[test]
fn serial_batches_end_before_the_next_starts() {
    // `--serial 2` with room for four at once: app-0 and app-1 form the first batch (their
    // commands wait until both run), app-0 fails, and with `--max-fail 0` the second batch,
    // which starts only after the first ended, never starts. Without batches app-2 and app-3
    // would have started beside the first two, before the failure.
    let gate = Arc::new(Barrier::new(2));
    let first = Arc::new(FakeTransport::new().on("uptime", 1, "").gate(gate.clone()));
    let second = Arc::new(FakeTransport::new().gate(gate));
    let rest = hosts(2);
    let outcomes = run(
        Job::Command("uptime".into()),
        &[Some(&first), Some(&second), Some(&rest[0]), Some(&rest[1])],
        limits(4, Some(2), Some(MaxFail::Count(0))),
    );
    assert_eq!(
        statuses(&outcomes),
        [
            ("app-0", Status::Failed),
            ("app-1", Status::Ok),
            ("app-2", Status::Skipped),
            ("app-3", Status::Skipped)
        ]
    );
    assert!(rest.iter().all(|fake| fake.commands().is_empty()));
}

#[test]
fn an_unreachable_host_is_reported_and_the_others_run() {
    let fakes = hosts(2);
    let outcomes = run(
        Job::Command("uptime".into()),
        &[Some(&fakes[0]), None, Some(&fakes[1])],
        limits(3, None, None),
    );
    assert_eq!(
        statuses(&outcomes),
        [
            ("app-0", Status::Ok),
            ("app-1", Status::Unreachable),
            ("app-2", Status::Ok)
        ]
    );
    assert_eq!(
        outcomes[1].error.as_deref(),
        Some("no fake host at fake-app-1")
    );
    assert!(fakes.iter().all(|f| f.commands() == ["uptime"]));
}

#[test]
fn a_copy_changes_the_hosts_that_lacked_the_file_and_counts_it() {
    let local = tempfile::tempdir().expect("temp dir");
    std::fs::write(local.path().join("motd"), "welcome\n").expect("write");
    let fakes = hosts(2);
    let refs: Vec<Option<&Arc<FakeTransport>>> = fakes.iter().map(Some).collect();
    let job = Job::Upload {
        local: local.path().join("motd").display().to_string(),
        remote: "/etc/motd".into(),
    };
    let outcomes = run(job, &refs, limits(2, None, None));
    for (outcome, fake) in outcomes.iter().zip(&fakes) {
        assert_eq!(outcome.status, Status::Changed, "{outcome:?}");
        assert_eq!(outcome.changes, 1);
        assert_eq!(fake.content("/etc/motd").as_deref(), Some("welcome\n"));
    }
}

#[test]
fn max_fail_is_a_count_or_a_percentage() {
    assert_eq!(MaxFail::parse("3"), Ok(MaxFail::Count(3)));
    assert_eq!(MaxFail::parse("25%"), Ok(MaxFail::Percent(25.0)));
    for bad in ["150%", "-1", "some", "%"] {
        let err = MaxFail::parse(bad).expect_err(bad);
        assert!(
            err.contains("is not a count (`3`) or a percentage (`25%`)"),
            "{err}"
        );
    }
}
