//! Table tests of the operations and facts in pyinfra's style (issue 32): the host's answers
//! in, the commands that reach it and what weft reports out, with `--check` and `--diff`. Each
//! host is a `transport::fake::FakeTransport`; nothing here needs root, sshd or a network.

mod facts;
mod files;
mod locks;
mod packages;
mod paths;
mod probes;
mod services;
mod system;
mod trees;
mod waits;

use crate::exec::test_host::TestHost;
pub(super) use crate::exec::test_host::{stat_answer, stat_answer_owned, FILE_CHECK};

/// The operation's result, with what a test asserts about the report.
#[track_caller]
fn changed(host: &TestHost, result: Result<bool, crate::exec::session::HostError>, step: &str) {
    match result {
        Ok(true) => {}
        other => panic!("`{step}` should have changed the host: {other:?}"),
    }
    assert_eq!(host.changes(), [step], "what was reported as changed");
    assert!(host.unchanged().is_empty(), "{:?}", host.unchanged());
}

/// The operation found the host as wanted and said so, naming `step`.
#[track_caller]
fn unchanged(host: &TestHost, result: Result<bool, crate::exec::session::HostError>, step: &str) {
    match result {
        Ok(false) => {}
        other => panic!("`{step}` should have found the host as wanted: {other:?}"),
    }
    assert_eq!(host.unchanged(), [step], "what was reported as unchanged");
    assert!(host.changes().is_empty(), "{:?}", host.changes());
}

/// The operation refused with a message holding `message`, and reported nothing.
#[track_caller]
fn refused(host: &TestHost, result: Result<bool, crate::exec::session::HostError>, message: &str) {
    match result {
        Err(err) => assert!(
            err.to_string().contains(message),
            "the error `{err}` lacks `{message}`"
        ),
        Ok(changed) => panic!("expected a refusal with `{message}`, got Ok({changed})"),
    }
    assert!(host.changes().is_empty(), "{:?}", host.changes());
}
