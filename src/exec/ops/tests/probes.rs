//! `http` and `git_revision`: what the host prints in, what scripts get out; both read under
//! `--check` too.

use std::time::Duration;

use crate::exec::ops::probes::{self, HttpSpec, Revision};
use crate::exec::test_host::TestHost;
use crate::transport::fake::FakeTransport;

#[test]
fn http_table() {
    // (name, curl's exit code, printed, expected)
    let cases: [(&str, i32, &str, Expected<i64>); 5] = [
        ("an answer", 0, "200", Ok(200)),
        ("an error status is a status", 0, "503", Ok(503)),
        ("nothing listens", 7, "000", Ok(0)),
        ("the time is up", 28, "", Ok(0)),
        ("no curl", 127, "", Err("curl is not installed")),
    ];
    for (name, code, printed, expected) in cases {
        let host = TestHost::check(FakeTransport::new().on("curl", code, printed));
        let got = probes::http(&host.session, "http://127.0.0.1/", &HttpSpec::default());
        match (got, expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{name}"),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
        }
        assert_eq!(
            host.commands(),
            ["curl -q -g -sS -o /dev/null -w '%{http_code}' --proto =http,https --max-time 10.0 --url http://127.0.0.1/"],
            "{name}"
        );
    }
}

/// HEAD with headers: every word quoted, no ~/.curlrc and no URL globbing, the headers fed
/// on stdin so that they are not in the host's process list.
#[test]
fn http_head_with_headers_sends_them_on_stdin() {
    let mut spec = HttpSpec {
        timeout: Duration::from_millis(2500),
        method: "HEAD".into(),
        ..HttpSpec::default()
    };
    spec.headers
        .insert("Accept".into(), "application/json; q=1".into());
    spec.headers
        .insert("Authorization".into(), "Bearer s3cret".into());
    let command =
        "curl -q -g -sS -o /dev/null -w '%{http_code}' --proto =http,https --max-time 2.5 -I \
         -H @- --url 'http://r:5000/v2/a b/manifests/[1]'";
    assert_eq!(
        probes::http_command("http://r:5000/v2/a b/manifests/[1]", &spec),
        command
    );
    let host = TestHost::check(FakeTransport::new().on("curl", 0, "200"));
    let got = probes::http(&host.session, "http://r:5000/v2/a b/manifests/[1]", &spec);
    assert_eq!(got.expect("status"), 200);
    let ran = host.fake.ran();
    assert!(!ran[0].command.contains("s3cret"), "{}", ran[0].command);
    let input = String::from_utf8_lossy(ran[0].stdin.as_deref().unwrap_or_default()).to_string();
    assert!(
        input.ends_with("Accept: application/json; q=1\nAuthorization: Bearer s3cret\n"),
        "{input:?}"
    );
}

/// Only methods that ask and change nothing: http runs under --check too.
#[test]
fn http_methods_are_get_and_head_only() {
    for ok in ["GET", "HEAD"] {
        assert!(probes::check_method(ok).is_ok(), "{ok}");
    }
    for refused in ["POST", "DELETE", "PUT", "GET; rm", ""] {
        let said = probes::check_method(refused).expect_err(refused);
        assert!(said.contains("GET or HEAD only"), "{said}");
    }
}

/// What a fact is expected to give: a value, or an error holding the text.
type Expected<T> = Result<T, &'static str>;

/// (name, exit code, printed, expected dirty, expected short)
type RevisionCase<'a> = (&'a str, i32, &'a str, Expected<Option<bool>>, &'a str);

#[test]
fn git_revision_table() {
    const COMMIT: &str = "4f2a9c1d0e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49";
    let clean = format!("{COMMIT}\n4f2a9c1d\n");
    let dirty = format!("{COMMIT}\n4f2a9c1d\ndirty\n");
    // git lengthens the short form when 8 digits name more than one object.
    let ambiguous = format!("{COMMIT}\n4f2a9c1d0e\n");
    // (name, exit code, printed, expected, short)
    let cases: [RevisionCase; 5] = [
        ("clean", 0, &clean, Ok(Some(false)), "4f2a9c1d"),
        ("changed files", 0, &dirty, Ok(Some(true)), "4f2a9c1d"),
        (
            "ambiguous short",
            0,
            &ambiguous,
            Ok(Some(false)),
            "4f2a9c1d0e",
        ),
        ("no checkout", 3, "", Ok(None), ""),
        ("git status fails", 4, "", Err("git status failed"), ""),
    ];
    for (name, code, printed, expected, short) in cases {
        let host = TestHost::check(FakeTransport::new().on("git rev-parse", code, printed));
        let got = probes::git_revision(&host.session, "/srv/my app");
        match (got, expected) {
            (Ok(got), Ok(want)) => assert_eq!(
                got,
                want.map(|dirty| Revision {
                    commit: COMMIT.into(),
                    short: short.into(),
                    dirty
                }),
                "{name}"
            ),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
        }
        let commands = host.commands();
        assert!(
            commands[0].starts_with("cd -- '/srv/my app' 2>/dev/null && "),
            "{commands:?}"
        );
        assert!(
            commands[0].contains("git status --porcelain -- .")
                && commands[0].contains("git rev-parse --short=8 HEAD"),
            "{commands:?}"
        );
    }
}
