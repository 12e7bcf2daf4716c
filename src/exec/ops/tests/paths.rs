//! The facts of paths (`exists`, `readlink`, `list`) and checksums (`checksum`, `verify`):
//! what the host prints in, what scripts get out; all read under `--check` too.

use super::{stat_answer, FILE_CHECK};
use crate::exec::ops::paths::{self, Order};
use crate::exec::test_host::TestHost;
use crate::transport::fake::FakeTransport;

#[test]
fn exists_table() {
    for (code, expected) in [(0, true), (1, false)] {
        let host = TestHost::check(FakeTransport::new().on("[ -e '/a b' ]", code, ""));
        assert_eq!(
            paths::exists(&host.session, "/a b").expect("exists"),
            expected
        );
        assert_eq!(host.commands(), ["[ -e '/a b' ] || [ -L '/a b' ]"]);
    }
}

#[test]
fn readlink_table() {
    let cases = [
        (0, "/srv/app/builds/v2\n", Some("/srv/app/builds/v2")),
        // A target that ends in a newline keeps it: only readlink's own goes.
        (0, "odd\n\n", Some("odd\n")),
        (1, "", None),
    ];
    for (code, printed, expected) in cases {
        let host = TestHost::check(FakeTransport::new().on("readlink", code, printed));
        let target = paths::readlink(&host.session, "/srv/app/current").expect("readlink");
        assert_eq!(target.as_deref(), expected);
        assert_eq!(
            host.commands(),
            ["[ -L /srv/app/current ] && exec readlink -- /srv/app/current"]
        );
    }
}

#[test]
fn list_table() {
    struct Case {
        order: Order,
        code: i32,
        printed: &'static str,
        expected: Result<&'static [&'static str], &'static str>,
        flags: &'static str,
    }
    let cases = [
        Case {
            order: Order::Name,
            code: 0,
            printed: "b\n.hidden\na\n",
            expected: Ok(&[".hidden", "a", "b"]),
            flags: "exec ls -1A;",
        },
        Case {
            order: Order::Time,
            code: 0,
            printed: "new\nold\n",
            expected: Ok(&["new", "old"]),
            flags: "exec ls -1Atr;",
        },
        Case {
            order: Order::Name,
            code: 0,
            printed: "",
            expected: Ok(&[]),
            flags: "exec ls -1A;",
        },
        Case {
            order: Order::Name,
            code: 3,
            printed: "",
            expected: Err("list /srv/x: /srv/x is not a folder"),
            flags: "exec ls -1A;",
        },
    ];
    for case in cases {
        let host = TestHost::check(FakeTransport::new().on("ls -1A", case.code, case.printed));
        let result = paths::list(&host.session, "/srv/x", case.order);
        match case.expected {
            Ok(names) => assert_eq!(result.expect("list"), names),
            Err(message) => assert_eq!(result.expect_err("refused").to_string(), message),
        }
        let ran = host.commands();
        assert_eq!(ran.len(), 1);
        assert!(ran[0].contains(case.flags), "{}", ran[0]);
        assert!(
            ran[0].starts_with("if [ -d /srv/x ]; then cd -- /srv/x &&"),
            "{}",
            ran[0]
        );
    }
    assert!(Order::parse("size").is_err());
}

#[test]
fn checksum_and_verify_table() {
    let sum = crate::transport::sha256_bytes(b"v1\n");
    let file = stat_answer("regular file", "644", Some("v1\n"));
    let folder = stat_answer("directory", "755", None);
    // A file: its sum, and verify compares it in any case.
    let host = TestHost::check(FakeTransport::new().on(FILE_CHECK, 0, &file));
    assert_eq!(
        paths::checksum(&host.session, "/d/app.tar.gz").expect("sum"),
        Some(sum.clone())
    );
    assert!(host.commands()[0].contains("sha256sum -- /d/app.tar.gz"));
    assert!(paths::verify(&host.session, "/d/app.tar.gz", &sum.to_uppercase()).expect("verify"));
    assert!(!paths::verify(&host.session, "/d/app.tar.gz", &"0".repeat(64)).expect("verify"));
    // Nothing there: no sum, and it does not verify.
    let host = TestHost::check(FakeTransport::new().on(FILE_CHECK, 1, ""));
    assert_eq!(
        paths::checksum(&host.session, "/d/gone").expect("sum"),
        None
    );
    assert!(!paths::verify(&host.session, "/d/gone", &sum).expect("verify"));
    // A folder is refused, as is a sum that is not one (before the host is asked).
    let host = TestHost::new(FakeTransport::new().on(FILE_CHECK, 0, &folder));
    let err = paths::checksum(&host.session, "/d").expect_err("a folder");
    assert_eq!(
        err.to_string(),
        "checksum /d: /d is a directory, not a file"
    );
    let host = TestHost::new(FakeTransport::new());
    let err = paths::verify(&host.session, "/d/app.tar.gz", "abc").expect_err("bad sum");
    assert!(err.to_string().contains("`abc` is not a SHA-256"), "{err}");
    assert!(host.commands().is_empty());
}
