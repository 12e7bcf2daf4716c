//! `user`, `group`, `authorized_keys`, `cron`, `git`, `virtualenv`, `pip`, `extract` and
//! `archive`.

use super::{changed, refused, stat_answer_owned, unchanged, FILE_CHECK};
use crate::exec::ops::system::{self, UserSpec};
use crate::exec::test_host::{assert_ran, assert_ran_in, Flags, TestHost};
use crate::transport::fake::{FakeTransport, Written};

const DEPLOY: &str = "deploy:x:1000:1000::/home/deploy:/bin/bash\n";

#[test]
fn user_table() {
    const GETENT: &str = "getent passwd deploy";
    struct Case {
        name: &'static str,
        host: FakeTransport,
        spec: UserSpec,
        check: bool,
        expected: &'static [&'static str],
        /// `None`: nothing to change.
        report: Option<&'static str>,
    }
    let cases = [
        Case {
            name: "missing: created with its shell, home, group and groups",
            host: FakeTransport::new()
                .on(GETENT, 2, "")
                .on("id -nG -- deploy", 0, "deploy\n"),
            spec: UserSpec {
                shell: Some("/bin/bash".into()),
                home: Some("/srv/deploy".into()),
                group: Some("staff".into()),
                groups: vec!["sudo".into(), "adm".into()],
                system: true,
                absent: false,
            },
            check: false,
            expected: &[
                GETENT,
                "useradd -m --system -s /bin/bash -d /srv/deploy -g staff -- deploy",
                "id -nG -- deploy 2>/dev/null",
                "usermod -aG sudo,adm -- deploy",
            ],
            report: Some("user deploy (created, groups +sudo,adm)"),
        },
        Case {
            name: "missing, under --check: only read",
            host: FakeTransport::new().on(GETENT, 2, ""),
            spec: UserSpec {
                groups: vec!["sudo".into()],
                ..UserSpec::default()
            },
            check: true,
            expected: &[GETENT, "id -nG -- deploy 2>/dev/null"],
            report: Some("user deploy (created, groups +sudo)"),
        },
        Case {
            name: "present with another shell, home and primary group",
            host: FakeTransport::new()
                .on(GETENT, 0, "deploy:x:1000:1000::/home/deploy:/bin/sh\n")
                .on("getent group staff", 0, "staff:x:50:\n"),
            spec: UserSpec {
                shell: Some("/bin/bash".into()),
                home: Some("/srv/deploy".into()),
                group: Some("staff".into()),
                ..UserSpec::default()
            },
            check: false,
            expected: &[
                GETENT,
                "usermod -s /bin/bash -- deploy",
                "usermod -d /srv/deploy -m -- deploy",
                "getent group staff",
                "usermod -g staff -- deploy",
            ],
            report: Some("user deploy (shell /bin/bash, home /srv/deploy, group staff)"),
        },
        Case {
            name: "present as wanted, in the groups already",
            host: FakeTransport::new()
                .on(GETENT, 0, DEPLOY)
                .on("getent group deploy", 0, "deploy:x:1000:\n")
                .on("id -nG -- deploy", 0, "deploy sudo\n"),
            spec: UserSpec {
                shell: Some("/bin/bash".into()),
                group: Some("deploy".into()),
                groups: vec!["sudo".into()],
                ..UserSpec::default()
            },
            check: false,
            expected: &[GETENT, "getent group deploy", "id -nG -- deploy"],
            report: None,
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
        let result = system::user(&host.session, "deploy", &case.spec);
        assert_ran_in(case.name, &host, case.expected);
        assert_eq!(host.commands().len(), case.expected.len(), "{}", case.name);
        match case.report {
            Some(step) => {
                assert!(matches!(result, Ok(true)), "{}: {result:?}", case.name);
                assert_eq!(host.changes(), [step], "{}", case.name);
            }
            None => {
                assert!(matches!(result, Ok(false)), "{}: {result:?}", case.name);
                assert_eq!(host.unchanged(), ["user deploy"], "{}", case.name);
            }
        }
    }
}

#[test]
fn user_and_group_absent() {
    let host = TestHost::new(FakeTransport::new().on(
        "getent passwd old",
        0,
        "old:x:1001:1001::/home/old:/bin/sh\n",
    ));
    let spec = UserSpec {
        absent: true,
        ..UserSpec::default()
    };
    let result = system::user(&host.session, "old", &spec);
    changed(&host, result, "user old absent");
    assert_eq!(host.commands(), ["getent passwd old", "userdel -- old"]);

    let host = TestHost::new(FakeTransport::new().on("getent passwd old", 2, ""));
    let result = system::user(&host.session, "old", &spec);
    unchanged(&host, result, "user old absent");
    assert_eq!(host.commands(), ["getent passwd old"]);

    let host = TestHost::new(FakeTransport::new().on("getent group web", 0, "web:x:999:\n"));
    let result = system::group(&host.session, "web", false, true);
    changed(&host, result, "group web absent");
    assert_eq!(host.commands(), ["getent group web", "groupdel -- web"]);
}

#[test]
fn group_is_added_once() {
    let host = TestHost::new(FakeTransport::new().on("getent group web", 2, ""));
    let result = system::group(&host.session, "web", true, false);
    changed(&host, result, "group web");
    assert_eq!(
        host.commands(),
        ["getent group web", "groupadd --system -- web"]
    );

    let host = TestHost::new(FakeTransport::new().on("getent group web", 0, "web:x:999:\n"));
    let result = system::group(&host.session, "web", true, false);
    unchanged(&host, result, "group web");
    assert_eq!(host.commands(), ["getent group web"]);
}

/// A host where `deploy`'s `.ssh` is as `authorized_keys` wants it, holding `keys`.
fn keys_host(keys: &str) -> FakeTransport {
    FakeTransport::new()
        .on("getent passwd deploy", 0, DEPLOY)
        // Before the file's own check, which this probe's text contains too.
        .on("echo \"$(id -u -- deploy", 0, "1000:1000\n")
        .on(
            "-- /home/deploy/.ssh 2>/dev/null",
            0,
            &stat_answer_owned("directory", "700", "deploy", None),
        )
        .on(
            "-- /home/deploy/.ssh/authorized_keys 2>/dev/null",
            0,
            &stat_answer_owned("regular file", "600", "deploy", Some(keys)),
        )
        .file("/home/deploy/.ssh/authorized_keys", keys)
}

#[test]
fn authorized_keys_compare_by_key_not_comment() {
    let host = TestHost::new(keys_host("ssh-ed25519 AAAA alice@laptop\n"));
    let keys = ["ssh-ed25519 AAAA alice@desktop".to_string()];
    let result = system::authorized_keys(&host.session, "deploy", &keys, false, false);
    unchanged(&host, result, "authorized_keys deploy");
    assert_eq!(host.commands(), ["getent passwd deploy"]);
}

#[test]
fn authorized_keys_exclusive_keeps_only_the_keys_given_and_the_comments() {
    let before = "# team keys\nssh-ed25519 AAAA alice@laptop\nssh-rsa BBBB bob@old\n";
    let host = TestHost::new(keys_host(before));
    let keys = [
        "ssh-ed25519 AAAA alice@laptop".to_string(),
        "ssh-ed25519 CCCC carol@new".to_string(),
    ];
    let result = system::authorized_keys(&host.session, "deploy", &keys, false, true);
    assert!(matches!(result, Ok(true)), "{result:?}");
    assert_eq!(
        host.fake.written(),
        [Written {
            path: "/home/deploy/.ssh/authorized_keys".into(),
            data: b"# team keys\nssh-ed25519 AAAA alice@laptop\nssh-ed25519 CCCC carol@new\n"
                .to_vec(),
            mode: Some(0o600),
            owner: Some((1000, 1000)),
        }]
    );
    assert_eq!(
        host.changes(),
        ["file /home/deploy/.ssh/authorized_keys (content)"]
    );
    assert_eq!(host.unchanged(), ["directory /home/deploy/.ssh"]);
}

#[test]
fn authorized_keys_absent_removes_the_key_and_an_unknown_user_is_refused() {
    let host = TestHost::new(keys_host("ssh-ed25519 AAAA alice\nssh-rsa BBBB bob\n"));
    let keys = ["ssh-rsa BBBB".to_string()];
    let result = system::authorized_keys(&host.session, "deploy", &keys, true, false);
    assert!(matches!(result, Ok(true)), "{result:?}");
    assert_eq!(
        host.fake
            .content("/home/deploy/.ssh/authorized_keys")
            .as_deref(),
        Some("ssh-ed25519 AAAA alice\n")
    );

    let host = TestHost::new(FakeTransport::new().on("getent passwd ghost", 2, ""));
    let result = system::authorized_keys(&host.session, "ghost", &keys, false, false);
    refused(&host, result, "no user `ghost`");
    assert!(host.fake.written().is_empty());
}

#[test]
fn cron_writes_its_entry_in_cron_d() {
    let fake = FakeTransport::new().on(FILE_CHECK, 1, "");
    let host = TestHost::new(fake);
    let result = system::cron(
        &host.session,
        "backup",
        "15 3 * * *",
        "/usr/local/bin/backup --all",
        "postgres",
        false,
    );
    changed(&host, result, "file /etc/cron.d/weft-backup (created)");
    assert_ran(&host, &["test -d /etc/cron.d", FILE_CHECK]);
    assert_eq!(
        host.fake.written(),
        [Written {
            path: "/etc/cron.d/weft-backup".into(),
            data: b"# managed by weft: backup\n15 3 * * * postgres /usr/local/bin/backup --all\n"
                .to_vec(),
            mode: Some(0o644),
            owner: None,
        }]
    );
}

#[test]
fn cron_refusals_and_removal() {
    // (name, schedule, has /etc/cron.d, message, commands that ran)
    let cases: [(&str, &str, bool, &str, usize); 3] = [
        (
            "back up",
            "@daily",
            true,
            "may only hold letters, digits",
            0,
        ),
        (
            "backup",
            "15 3 * *",
            true,
            "needs five fields or an @word",
            1,
        ),
        ("backup", "@daily", false, "install cron first", 1),
    ];
    for (name, schedule, cron_d, message, commands) in cases {
        let fake = FakeTransport::new().on("test -d /etc/cron.d", i32::from(!cron_d), "");
        let host = TestHost::new(fake);
        let result = system::cron(&host.session, name, schedule, "true", "root", false);
        refused(&host, result, message);
        assert_eq!(host.commands().len(), commands, "{name} {schedule}");
        assert!(host.fake.written().is_empty());
    }

    let host = TestHost::new(FakeTransport::new());
    let result = system::cron(&host.session, "backup", "", "", "root", true);
    changed(&host, result, "absent /etc/cron.d/weft-backup");
    assert_ran(
        &host,
        &[
            "test -e /etc/cron.d/weft-backup",
            "weft_enter /etc/cron.d && rm -rf -- weft-backup",
        ],
    );
}

const REPO: &str = "https://example.com/app.git";
const HEAD: &str = "git -C /srv/app/repo rev-parse HEAD";
const RESOLVE: &str = "git -C /srv/app/repo rev-parse --verify --quiet origin/v2^{commit}";
const ONE: &str = "1111111111111111111111111111111111111111";
const TWO: &str = "2222222222222222222222222222222222222222";

fn checkout(existing: bool, head: &str, wanted: &str) -> FakeTransport {
    FakeTransport::new()
        .on("test -d /srv/app/repo/.git", i32::from(!existing), "")
        .on(
            "git -C /srv/app/repo config --get remote.origin.url",
            0,
            &format!("{REPO}\n"),
        )
        .on(HEAD, 0, &format!("{head}\n"))
        .on(RESOLVE, 0, &format!("{wanted}\n"))
}

#[test]
fn git_table() {
    struct Case {
        name: &'static str,
        host: FakeTransport,
        check: bool,
        expected: &'static [&'static str],
        changed: bool,
    }
    let cases = [
        Case {
            name: "no checkout: cloned, then the version checked out",
            host: checkout(false, ONE, TWO),
            check: false,
            expected: &[
                "test -d /srv/app/repo/.git",
                "git clone --quiet --no-checkout -- https://example.com/app.git /srv/app/repo",
                HEAD,
                RESOLVE,
                "git -C /srv/app/repo checkout --quiet --force 2222222222222222222222222222222222222222 --",
            ],
            changed: true,
        },
        Case {
            name: "at the version after a fetch",
            host: checkout(true, TWO, TWO),
            check: false,
            expected: &[
                "test -d /srv/app/repo/.git",
                "remote.origin.url",
                HEAD,
                RESOLVE,
                "git -C /srv/app/repo fetch --quiet --tags origin",
                RESOLVE,
            ],
            changed: false,
        },
        Case {
            name: "behind the version",
            host: checkout(true, ONE, TWO),
            check: false,
            expected: &[
                "test -d /srv/app/repo/.git",
                "remote.origin.url",
                HEAD,
                RESOLVE,
                "fetch --quiet --tags origin",
                RESOLVE,
                "checkout --quiet --force 2222222222222222222222222222222222222222 --",
            ],
            changed: true,
        },
        Case {
            name: "behind the version, under --check: neither fetch nor checkout",
            host: checkout(true, ONE, TWO),
            check: true,
            expected: &["test -d /srv/app/repo/.git", "remote.origin.url", HEAD, RESOLVE],
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
        let result = system::git(&host.session, REPO, "/srv/app/repo", "v2", None);
        assert_ran_in(case.name, &host, case.expected);
        assert_eq!(result.ok(), Some(case.changed), "{}", case.name);
        let reported = if case.changed {
            host.changes()
        } else {
            host.unchanged()
        };
        assert_eq!(reported, ["git /srv/app/repo @ v2"], "{}", case.name);
    }
}

#[test]
fn git_refuses_another_repo_and_an_unknown_version() {
    let fake = FakeTransport::new()
        .on("test -d /srv/app/repo/.git", 0, "")
        .on("remote.origin.url", 0, "https://example.com/other.git\n");
    let host = TestHost::new(fake);
    let result = system::git(&host.session, REPO, "/srv/app/repo", "v2", None);
    refused(
        &host,
        result,
        "/srv/app/repo is a checkout of https://example.com/other.git, not https://example.com/app.git",
    );
    assert_eq!(host.commands().len(), 2);

    let host = TestHost::new(checkout(true, ONE, ""));
    let result = system::git(&host.session, REPO, "/srv/app/repo", "v2", None);
    refused(&host, result, "`v2` is not a branch, tag or commit of");
    assert!(!host.commands().iter().any(|c| c.contains("checkout")));
}

#[test]
fn git_with_a_deploy_key_clones_through_it() {
    let host = TestHost::new(checkout(false, ONE, TWO));
    let result = system::git(
        &host.session,
        REPO,
        "/srv/app/repo",
        "v2",
        Some("/etc/app/deploy key"),
    );
    assert!(matches!(result, Ok(true)), "{result:?}");
    assert_eq!(
        host.commands()[1],
        "GIT_SSH_COMMAND='ssh -i '\\''/etc/app/deploy key'\\'' -o IdentitiesOnly=yes' \
         git clone --quiet --no-checkout -- https://example.com/app.git /srv/app/repo"
    );
}

#[test]
fn virtualenv_is_made_once() {
    let fake = FakeTransport::new().on("test -x /srv/app/venv/bin/python", 1, "");
    let host = TestHost::new(fake);
    let result = system::virtualenv(&host.session, "/srv/app/venv", Some("python3.11"));
    changed(&host, result, "virtualenv /srv/app/venv");
    assert_eq!(
        host.commands(),
        [
            "test -x /srv/app/venv/bin/python",
            "python3.11 -m venv -- /srv/app/venv"
        ]
    );

    let host = TestHost::new(FakeTransport::new());
    let result = system::virtualenv(&host.session, "/srv/app/venv", None);
    unchanged(&host, result, "virtualenv /srv/app/venv");
    assert_eq!(host.commands(), ["test -x /srv/app/venv/bin/python"]);
}

#[test]
fn pip_installs_only_what_its_dry_run_would() {
    const PIP: &str = "/srv/app/venv/bin/pip --disable-pip-version-check";
    let dry = format!("{PIP} install --dry-run --quiet --report - flask==3.0 -r /srv/app/requirements.txt 2>/dev/null");
    let packages = ["flask==3.0".to_string()];

    let would = r#"{"install": [{"download_info": {"url": "https://files.example/flask.whl"}}]}"#;
    let host = TestHost::new(FakeTransport::new().on(&dry, 0, would));
    let result = system::pip(
        &host.session,
        "/srv/app/venv/",
        &packages,
        Some("/srv/app/requirements.txt"),
    );
    changed(
        &host,
        result,
        "pip /srv/app/venv/: flask==3.0 -r /srv/app/requirements.txt",
    );
    assert_eq!(
        host.commands(),
        [
            dry.clone(),
            format!("{PIP} install --quiet flask==3.0 -r /srv/app/requirements.txt")
        ]
    );

    let host = TestHost::new(FakeTransport::new().on(&dry, 0, r#"{"install": []}"#));
    let result = system::pip(
        &host.session,
        "/srv/app/venv/",
        &packages,
        Some("/srv/app/requirements.txt"),
    );
    assert!(matches!(result, Ok(false)), "{result:?}");
    assert_eq!(host.commands(), [dry]);

    // A package on the host is always installed: no dry run could tell it changed.
    let host = TestHost::new(FakeTransport::new());
    let local = ["/srv/app/build/app-1.0.tar.gz".to_string()];
    let result = system::pip(&host.session, "/srv/app/venv", &local, None);
    assert!(matches!(result, Ok(true)), "{result:?}");
    assert_eq!(
        host.commands(),
        [format!(
            "{PIP} install --quiet /srv/app/build/app-1.0.tar.gz"
        )]
    );

    let host = TestHost::new(FakeTransport::new());
    let result = system::pip(&host.session, "/srv/app/venv", &[], None);
    refused(&host, result, "nothing to install");
    assert!(host.commands().is_empty());
}

#[test]
fn extract_and_archive_run_once() {
    let marker = "test -e /srv/app/releases/3/.extracted";
    let host = TestHost::new(FakeTransport::new().on(marker, 1, ""));
    let result = system::extract(
        &host.session,
        "/tmp/app.tar.gz",
        "/srv/app/releases/3/",
        ".extracted",
    );
    changed(
        &host,
        result,
        "extract /tmp/app.tar.gz into /srv/app/releases/3/",
    );
    assert_eq!(
        host.commands(),
        [
            marker,
            "mkdir -p -- /srv/app/releases/3/ && tar --no-same-owner -xzf /tmp/app.tar.gz -C /srv/app/releases/3/"
        ]
    );
    let host = TestHost::new(FakeTransport::new().on(marker, 0, ""));
    let result = system::extract(
        &host.session,
        "/tmp/app.tar.gz",
        "/srv/app/releases/3",
        ".extracted",
    );
    unchanged(
        &host,
        result,
        "extract /tmp/app.tar.gz into /srv/app/releases/3",
    );

    let host = TestHost::new(FakeTransport::new().on("test -e /tmp/app.tar.gz", 1, ""));
    let result = system::archive(&host.session, "/srv/app/build", "/tmp/app.tar.gz");
    changed(&host, result, "archive /srv/app/build into /tmp/app.tar.gz");
    assert_eq!(
        host.commands(),
        [
            "test -e /tmp/app.tar.gz",
            "tar -czf /tmp/app.tar.gz -C /srv/app/build ."
        ]
    );
    let host = TestHost::check(FakeTransport::new().on("test -e /tmp/app.tar.gz", 1, ""));
    let result = system::archive(&host.session, "/srv/app/build", "/tmp/app.tar.gz");
    changed(&host, result, "archive /srv/app/build into /tmp/app.tar.gz");
    assert_eq!(host.commands(), ["test -e /tmp/app.tar.gz"]);
}
