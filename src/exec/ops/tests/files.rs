//! `file`, `directory`, `link`, `absent`, `line` and `sync`.

use super::{changed, refused, stat_answer, unchanged, FILE_CHECK};
use crate::exec::ops::files::{self, FileSpec};
use crate::exec::test_host::{assert_ran, assert_ran_in, Flags, TestHost};
use crate::transport::fake::{FakeTransport, Written};

fn content(text: &str) -> FileSpec {
    FileSpec {
        content: Some(text.as_bytes().to_vec()),
        ..FileSpec::default()
    }
}

fn diffing() -> Flags {
    Flags {
        diff: true,
        ..Flags::default()
    }
}

fn check_and_diff() -> Flags {
    Flags {
        check: true,
        diff: true,
        ..Flags::default()
    }
}

/// The probe that reads the owner ids a rewritten file keeps.
const OWNER_IDS: &str = "echo \"$(stat -c %u";

#[test]
fn file_is_created_with_its_content_and_mode() {
    let host = TestHost::new(FakeTransport::new().on(FILE_CHECK, 1, ""));
    let spec = FileSpec {
        mode: Some(0o640),
        ..content("hello\n")
    };
    let result = files::file(&host.session, "/etc/motd", &spec);
    changed(&host, result, "file /etc/motd (created)");
    assert_ran(&host, &[FILE_CHECK]);
    assert_eq!(
        host.fake.written(),
        [Written {
            path: "/etc/motd".into(),
            data: b"hello\n".to_vec(),
            mode: Some(0o640),
            owner: None,
        }]
    );
}

#[test]
fn file_with_the_same_content_and_mode_is_left_alone_without_reading_it() {
    let fake = FakeTransport::new().on(
        FILE_CHECK,
        0,
        &stat_answer("regular file", "644", Some("hello\n")),
    );
    let host = TestHost::new(fake);
    let spec = FileSpec {
        mode: Some(0o644),
        ..content("hello\n")
    };
    let result = files::file(&host.session, "/etc/motd", &spec);
    unchanged(&host, result, "file /etc/motd");
    // The sum said it all: no read (the fake holds no such file, a read would find nothing
    // and rewrite it), no write, no second command.
    assert_ran(&host, &[FILE_CHECK]);
    assert!(host.fake.written().is_empty());
}

#[test]
fn file_with_other_content_is_replaced_keeping_its_owner_and_shows_a_diff() {
    let fake = FakeTransport::new()
        .on(
            FILE_CHECK,
            0,
            &stat_answer("regular file", "600", Some("old\n")),
        )
        .on(OWNER_IDS, 0, "0:4\n")
        .file("/etc/app.conf", "old\n");
    let host = TestHost::with(fake, diffing());
    let result = files::file(&host.session, "/etc/app.conf", &content("new\n"));
    changed(&host, result, "file /etc/app.conf (content)");
    assert_ran(&host, &[FILE_CHECK, OWNER_IDS]);
    // The mode it had, and its owner and group, go on the new file before the rename.
    assert_eq!(
        host.fake.written(),
        [Written {
            path: "/etc/app.conf".into(),
            data: b"new\n".to_vec(),
            mode: Some(0o600),
            owner: Some((0, 4)),
        }]
    );
    let diffs = host.diffs();
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(
        diffs[0].contains("\n-old\n+new\n"),
        "the diff should remove `old` and add `new`:\n{}",
        diffs[0]
    );
}

#[test]
fn file_under_check_reports_the_change_and_its_diff_but_writes_nothing() {
    let fake = FakeTransport::new()
        .on(
            FILE_CHECK,
            0,
            &stat_answer("regular file", "644", Some("old\n")),
        )
        .file("/etc/app.conf", "old\n");
    let host = TestHost::with(fake, check_and_diff());
    let result = files::file(&host.session, "/etc/app.conf", &content("new\n"));
    changed(&host, result, "file /etc/app.conf (content)");
    assert!(host.all_changes_checked());
    // Only the check reached the host: not even the owner probe of a write.
    assert_ran(&host, &[FILE_CHECK]);
    assert!(host.fake.written().is_empty());
    assert_eq!(host.fake.content("/etc/app.conf").as_deref(), Some("old\n"));
    assert!(
        host.diffs()[0].contains("\n-old\n+new\n"),
        "{:?}",
        host.diffs()
    );
}

#[test]
fn a_sensitive_file_never_shows_its_content_in_a_diff() {
    let fake = FakeTransport::new()
        .on(
            FILE_CHECK,
            0,
            &stat_answer("regular file", "600", Some("TOKEN=a\n")),
        )
        .on(OWNER_IDS, 0, "0:0\n")
        .file("/etc/app.env", "TOKEN=a\n");
    let host = TestHost::with(fake, diffing());
    let spec = FileSpec {
        sensitive: true,
        ..content("TOKEN=b\n")
    };
    let result = files::file(&host.session, "/etc/app.env", &spec);
    changed(&host, result, "file /etc/app.env (content)");
    assert!(host.diffs().is_empty(), "{:?}", host.diffs());
    assert_eq!(
        host.logs(),
        ["--- /etc/app.env: sensitive content, diff hidden"]
    );
}

#[test]
fn file_mode_and_owner_are_set_on_the_file_checked_when_only_they_differ() {
    let fake = FakeTransport::new().on(FILE_CHECK, 0, &stat_answer("regular file", "644", None));
    let host = TestHost::new(fake);
    let spec = FileSpec {
        mode: Some(0o600),
        owner: Some("app".into()),
        ..FileSpec::default()
    };
    let result = files::file(&host.session, "/srv/app/.env", &spec);
    changed(&host, result, "file /srv/app/.env (mode 0600, owner app)");
    // The owner goes first (it clears set-user-id bits), on a second name of the file made
    // in a private folder, checked to be the file looked at (device:inode 2049:1234).
    assert_ran(&host, &[FILE_CHECK, "ln -P -- ../.env f"]);
    let fix = &host.commands()[1];
    assert!(fix.contains("= 2049:1234 ]"), "{fix}");
    let (chown, chmod) = (fix.find("chown -- app f"), fix.find("chmod 600 f"));
    assert!(
        chown.is_some() && chown < chmod,
        "chown, then chmod, on `f`: {fix}"
    );
    assert!(host.fake.written().is_empty());
}

#[test]
fn file_refuses_a_directory_in_its_place() {
    let fake = FakeTransport::new().on(FILE_CHECK, 0, &stat_answer("directory", "755", None));
    let host = TestHost::new(fake);
    let result = files::file(&host.session, "/etc/app", &content("x"));
    refused(&host, result, "/etc/app is a directory, not a file");
    assert!(host.fake.written().is_empty());
}

#[test]
fn directory_table() {
    struct Case {
        name: &'static str,
        found: Option<&'static str>,
        mode: Option<u32>,
        owner: Option<&'static str>,
        check: bool,
        /// The parts of the commands after the first, the check.
        then: &'static [&'static str],
        report: Option<&'static str>,
    }
    let cases = [
        Case {
            name: "missing: made by name, from its parent entered",
            found: None,
            mode: None,
            owner: None,
            check: false,
            then: &["weft_enter /srv/app make"],
            report: Some("directory /srv/app/releases (created)"),
        },
        Case {
            name: "missing with a mode and owner: made aside with both, then renamed in",
            found: None,
            mode: Some(0o750),
            owner: Some("deploy"),
            check: false,
            then: &["mkdir new && { [ ! -g .. ] || { chown -- \":$(stat -c %g ..)\" new && chmod g+s new; }; } && chown -- deploy new && chmod 750 new && mv -T -- new ../releases"],
            report: Some("directory /srv/app/releases (created, mode 0750, owner deploy)"),
        },
        Case {
            name: "missing under --check: nothing made",
            found: None,
            mode: Some(0o750),
            owner: None,
            check: true,
            then: &[],
            report: Some("directory /srv/app/releases (created, mode 0750)"),
        },
        Case {
            name: "present as wanted",
            found: Some("755"),
            mode: Some(0o755),
            owner: None,
            check: false,
            then: &[],
            report: None,
        },
        Case {
            name: "present with another mode: chmod from inside it",
            found: Some("700"),
            mode: Some(0o755),
            owner: None,
            check: false,
            then: &["chmod 755 ."],
            report: Some("directory /srv/app/releases (mode 0755)"),
        },
        Case {
            name: "present with another mode under --check",
            found: Some("700"),
            mode: Some(0o755),
            owner: None,
            check: true,
            then: &[],
            report: Some("directory /srv/app/releases (mode 0755)"),
        },
    ];
    for case in cases {
        let answer = case
            .found
            .map_or_else(String::new, |mode| stat_answer("directory", mode, None));
        let fake = FakeTransport::new().on(FILE_CHECK, i32::from(case.found.is_none()), &answer);
        let host = TestHost::with(
            fake,
            Flags {
                check: case.check,
                ..Flags::default()
            },
        );
        let result = files::directory(
            &host.session,
            "/srv/app/releases",
            case.mode,
            case.owner,
            None,
        );
        let mut expected = vec![FILE_CHECK];
        expected.extend(case.then);
        assert_ran_in(case.name, &host, &expected);
        match case.report {
            Some(step) => {
                assert!(matches!(result, Ok(true)), "{}: {result:?}", case.name);
                assert_eq!(host.changes(), [step], "{}", case.name);
            }
            None => {
                assert!(matches!(result, Ok(false)), "{}: {result:?}", case.name);
                assert_eq!(host.unchanged(), ["directory /srv/app/releases"]);
            }
        }
    }
}

#[test]
fn directory_refuses_a_file_in_its_place() {
    let fake = FakeTransport::new().on(FILE_CHECK, 0, &stat_answer("regular file", "644", None));
    let host = TestHost::new(fake);
    let result = files::directory(&host.session, "/srv/app", None, None, None);
    refused(&host, result, "/srv/app is a regular file, not a directory");
    assert_ran(&host, &[FILE_CHECK]);
}

#[test]
fn link_table() {
    const READLINK: &str = "readlink -- /srv/app/current";
    struct Case {
        name: &'static str,
        host: FakeTransport,
        check: bool,
        expected: &'static [&'static str],
        changed: bool,
    }
    let cases = [
        Case {
            name: "already pointing there",
            host: FakeTransport::new().on(READLINK, 0, "/srv/app/releases/3\n"),
            check: false,
            expected: &[READLINK],
            changed: false,
        },
        Case {
            name: "pointing elsewhere: a new link renamed over it",
            host: FakeTransport::new().on(READLINK, 0, "/srv/app/releases/2\n"),
            check: false,
            expected: &[
                READLINK,
                "ln -s -- /srv/app/releases/3 new && mv -f -T -- new ../current",
            ],
            changed: true,
        },
        Case {
            name: "missing: checked for a folder in the way, then made",
            host: FakeTransport::new()
                .on(READLINK, 1, "")
                .on(FILE_CHECK, 1, ""),
            check: false,
            expected: &[
                READLINK,
                FILE_CHECK,
                "ln -s -- /srv/app/releases/3 new && mv -f -T -- new ../current",
            ],
            changed: true,
        },
        Case {
            name: "pointing elsewhere, under --check",
            host: FakeTransport::new().on(READLINK, 0, "/srv/app/releases/2\n"),
            check: true,
            expected: &[READLINK],
            changed: true,
        },
    ];
    for case in cases {
        let host = TestHost::with(
            case.host,
            Flags {
                check: case.check,
                ..Flags::default()
            },
        );
        let result = files::link(&host.session, "/srv/app/current", "/srv/app/releases/3");
        assert_ran_in(case.name, &host, case.expected);
        let step = "link /srv/app/current -> /srv/app/releases/3";
        assert_eq!(result.ok(), Some(case.changed), "{}", case.name);
        let reported = if case.changed {
            host.changes()
        } else {
            host.unchanged()
        };
        assert_eq!(reported, [step], "{}", case.name);
    }
}

#[test]
fn link_refuses_a_directory_in_its_place() {
    let fake = FakeTransport::new().on("readlink", 1, "").on(
        FILE_CHECK,
        0,
        &stat_answer("directory", "755", None),
    );
    let host = TestHost::new(fake);
    let result = files::link(&host.session, "/srv/app/current", "/srv/app/releases/3");
    refused(&host, result, "/srv/app/current is a directory");
    assert_eq!(host.commands().len(), 2, "{:#?}", host.commands());
}

#[test]
fn absent_table() {
    const PROBE: &str = "test -e /srv/old || test -L /srv/old";
    // (name, probe's exit code, --check, expected command parts, changed)
    let cases: [(&str, i32, bool, &[&str], bool); 3] = [
        ("already gone", 1, false, &[PROBE], false),
        (
            "present: removed by name from inside its folder",
            0,
            false,
            &[PROBE, "weft_enter /srv && rm -rf -- old"],
            true,
        ),
        ("present, under --check", 0, true, &[PROBE], true),
    ];
    for (name, code, check, expected, change) in cases {
        let host = TestHost::with(
            FakeTransport::new().on(PROBE, code, ""),
            Flags {
                check,
                ..Flags::default()
            },
        );
        let result = files::absent(&host.session, "/srv/old");
        assert_ran_in(name, &host, expected);
        assert_eq!(result.ok(), Some(change), "{name}");
        let reported = if change {
            host.changes()
        } else {
            host.unchanged()
        };
        assert_eq!(reported, ["absent /srv/old"], "{name}");
    }
}

#[test]
fn absent_refuses_a_path_that_names_no_file() {
    let host = TestHost::new(FakeTransport::new());
    let result = files::absent(&host.session, "/");
    refused(&host, result, "names no file or folder to remove");
    // Only the probe ran: no `rm` of anything.
    assert_eq!(host.commands().len(), 1);
}

/// The probe of the file a `line` edits.
const LINE_STAT: &str = "stat -c '%F|%a|%u|%g' -- /etc/ssh/sshd_config";

#[test]
fn line_already_present_changes_nothing() {
    let fake = FakeTransport::new()
        .on(LINE_STAT, 0, "regular file|644|0|0\n")
        .file(
            "/etc/ssh/sshd_config",
            "Port 22\nPasswordAuthentication no\n",
        );
    let host = TestHost::new(fake);
    let result = files::line(
        &host.session,
        "/etc/ssh/sshd_config",
        "PasswordAuthentication no",
        Some("^#?PasswordAuthentication "),
        false,
    );
    unchanged(&host, result, "line in /etc/ssh/sshd_config");
    assert!(host.fake.written().is_empty());
}

#[test]
fn line_replaces_the_first_match_keeping_mode_and_owner() {
    let fake = FakeTransport::new()
        .on(LINE_STAT, 0, "regular file|640|0|4\n")
        .file(
            "/etc/ssh/sshd_config",
            "Port 22\n#PasswordAuthentication yes\nUsePAM yes\n",
        );
    let host = TestHost::with(fake, diffing());
    let result = files::line(
        &host.session,
        "/etc/ssh/sshd_config",
        "PasswordAuthentication no",
        Some("^#?PasswordAuthentication "),
        false,
    );
    changed(&host, result, "line in /etc/ssh/sshd_config");
    assert_ran(&host, &[LINE_STAT]);
    assert_eq!(
        host.fake.written(),
        [Written {
            path: "/etc/ssh/sshd_config".into(),
            data: b"Port 22\nPasswordAuthentication no\nUsePAM yes\n".to_vec(),
            mode: Some(0o640),
            owner: Some((0, 4)),
        }]
    );
    assert!(
        host.diffs()[0].contains("\n-#PasswordAuthentication yes\n+PasswordAuthentication no\n"),
        "{:?}",
        host.diffs()
    );
}

#[test]
fn line_without_a_match_is_appended_and_a_missing_file_is_created() {
    let fake = FakeTransport::new().on("stat -c '%F|%a|%u|%g' -- /etc/hosts.allow", 3, "");
    let host = TestHost::new(fake);
    let result = files::line(
        &host.session,
        "/etc/hosts.allow",
        "sshd: 10.0.0.0/8",
        None,
        false,
    );
    changed(&host, result, "line in /etc/hosts.allow");
    let written = host.fake.written();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].data, b"sshd: 10.0.0.0/8\n");
    assert_eq!((written[0].mode, written[0].owner), (None, None));
}

#[test]
fn line_under_check_writes_nothing() {
    let fake = FakeTransport::new()
        .on(LINE_STAT, 0, "regular file|644|0|0\n")
        .file("/etc/ssh/sshd_config", "Port 22\n");
    let host = TestHost::with(fake, check_and_diff());
    let result = files::line(
        &host.session,
        "/etc/ssh/sshd_config",
        "Port 2222",
        Some("^Port "),
        false,
    );
    changed(&host, result, "line in /etc/ssh/sshd_config");
    assert!(host.all_changes_checked());
    assert!(host.fake.written().is_empty());
    assert!(host.diffs()[0].contains("\n-Port 22\n+Port 2222\n"));
}

#[test]
fn line_never_edits_through_a_link_nor_takes_a_bad_pattern() {
    let fake = FakeTransport::new().on(LINE_STAT, 0, "symbolic link|777|0|0\n");
    let host = TestHost::new(fake);
    let result = files::line(
        &host.session,
        "/etc/ssh/sshd_config",
        "Port 22",
        None,
        false,
    );
    refused(&host, result, "is a symbolic link");
    assert!(host.fake.written().is_empty());

    let host = TestHost::new(FakeTransport::new());
    let result = files::line(&host.session, "/etc/x", "a", Some("("), false);
    refused(&host, result, "bad pattern");
    assert!(host.commands().is_empty(), "{:?}", host.commands());
}

#[test]
fn sync_uploads_what_differs_and_removes_what_the_local_folder_lacks() {
    let local = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(local.path().join("site")).expect("site");
    std::fs::write(local.path().join("site/index.html"), "<h1>hi</h1>\n").expect("index");
    let fake = FakeTransport::new()
        // The folder exists; index.html does not yet.
        .on(
            "-- /srv/www 2>/dev/null",
            0,
            &stat_answer("directory", "755", None),
        )
        .on("-- /srv/www/index.html", 1, "")
        .on(
            "cd /srv/www 2>/dev/null && find . -type f",
            0,
            "./index.html\n./old.html\n",
        )
        .on("test -e /srv/www/old.html", 0, "");
    let host = TestHost::with(
        fake,
        Flags {
            local_root: Some(local.path().to_path_buf()),
            ..Flags::default()
        },
    );
    let result = files::sync(&host.session, "site", "/srv/www", true);
    assert!(matches!(result, Ok(true)), "{result:?}");
    let written = host.fake.written();
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(
        (written[0].path.as_str(), written[0].data.as_slice()),
        ("/srv/www/index.html", b"<h1>hi</h1>\n".as_slice())
    );
    assert!(
        host.commands()
            .iter()
            .any(|c| c.contains("weft_enter /srv/www && rm -rf -- old.html")),
        "{:#?}",
        host.commands()
    );
    assert!(!host
        .commands()
        .iter()
        .any(|c| c.contains("rm -rf -- index.html")));
    assert_eq!(
        host.changes(),
        ["file /srv/www/index.html", "absent /srv/www/old.html"]
    );
    assert_eq!(host.unchanged(), ["directory /srv/www"]);
}
