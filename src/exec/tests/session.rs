//! A goal's session on one host: commands, `--check`, sudo and `--become`, secrets, the
//! host's deadline, and files.

use std::time::Duration;

use crate::exec::session::{HostError, Privilege, RunOptions};
use crate::exec::test_host::{stat_answer, Flags, TestHost, FILE_CHECK};
use crate::transport::fake::{Answer, FakeTransport};

fn become_app(password: Option<&str>) -> Flags {
    Flags {
        privilege: Privilege {
            become_user: Some("app".into()),
            sudo_password: password.map(String::from),
        },
        ..Flags::default()
    }
}

#[test]
fn a_command_shows_its_output_and_a_failure_names_the_command_and_its_last_words() {
    let fake = FakeTransport::new()
        .on("./migrate", 0, "applied 3 migrations\n")
        .answer(
            "./deploy.sh",
            Answer {
                code: 2,
                stdout: String::new(),
                stderr: "step 1\nstep 2\nno space left on device\nabort\n".into(),
            },
        );
    let host = TestHost::new(fake);
    let out = host
        .session
        .run("./migrate", &RunOptions::default())
        .expect("runs");
    assert_eq!(
        out.map(|o| o.stdout).as_deref(),
        Some("applied 3 migrations\n")
    );
    assert_eq!(host.lines(), ["applied 3 migrations"]);

    let err = host
        .session
        .run("./deploy.sh", &RunOptions::default())
        .expect_err("exit 2 fails");
    assert_eq!(
        err.to_string(),
        "`./deploy.sh` exited with 2: step 2 / no space left on device / abort"
    );
    assert_eq!((err.kind(), err.code()), ("command", Some(2)));

    // Allowed to fail: the script gets the code.
    let allowed = RunOptions {
        fail_on_error: false,
        quiet: true,
        ..RunOptions::default()
    };
    let out = host.session.run("./deploy.sh", &allowed).expect("allowed");
    assert_eq!(out.map(|o| o.code), Some(2));
    // Quiet: its lines went to the script only.
    assert_eq!(
        host.lines(),
        [
            "applied 3 migrations",
            "step 1",
            "step 2",
            "no space left on device",
            "abort"
        ]
    );
}

#[test]
fn under_check_only_commands_that_read_reach_the_host() {
    let host = TestHost::check(FakeTransport::new().on("cat /etc/hostname", 0, "web-1\n"));
    let skipped = host
        .session
        .run("systemctl restart nginx", &RunOptions::default())
        .expect("skipped, not failed");
    assert!(skipped.is_none());
    let read = RunOptions {
        check_safe: true,
        ..RunOptions::default()
    };
    let out = host.session.run("cat /etc/hostname", &read).expect("runs");
    assert_eq!(out.map(|o| o.stdout).as_deref(), Some("web-1\n"));
    host.session.act("rm -rf /srv/old").expect("skipped");
    assert_eq!(host.commands(), ["cat /etc/hostname"]);
    assert_eq!(
        host.logs(),
        ["skipped under --check: systemctl restart nginx"]
    );
}

#[test]
fn become_runs_every_command_through_sudo_as_that_user() {
    let host = TestHost::with(FakeTransport::new(), become_app(None));
    host.session
        .run("whoami && id -u", &RunOptions::default())
        .expect("runs");
    assert_eq!(
        host.commands(),
        ["sudo -n -u app -- sh -c 'whoami && id -u'"]
    );
}

#[test]
fn the_sudo_password_goes_on_standard_input_never_in_the_command_line() {
    let host = TestHost::with(FakeTransport::new(), become_app(Some("hunter2-pw")));
    host.session
        .run("systemctl reload nginx", &RunOptions::default())
        .expect("runs");
    let ran = host.fake.ran();
    assert_eq!(ran.len(), 1);
    assert!(!ran[0].command.contains("hunter2-pw"), "{}", ran[0].command);
    assert!(!ran[0].command.contains("systemctl"), "{}", ran[0].command);
    let stdin = String::from_utf8(ran[0].stdin.clone().unwrap_or_default()).expect("text");
    assert!(
        stdin.starts_with("hunter2-pw\nsystemctl reload nginx\n"),
        "{stdin:?}"
    );
}

#[test]
fn a_command_holding_a_secret_is_carried_on_standard_input() {
    let host = TestHost::new(FakeTransport::new());
    host.session.add_secret("tok-7f3a9c2e51");
    host.session
        .run(
            "curl -fsS -H 'Authorization: tok-7f3a9c2e51' https://example.com/hook",
            &RunOptions::default(),
        )
        .expect("runs");
    let ran = host.fake.ran();
    assert!(
        !ran[0].command.contains("tok-7f3a9c2e51"),
        "the secret stood in argv: {}",
        ran[0].command
    );
    let stdin = String::from_utf8(ran[0].stdin.clone().unwrap_or_default()).expect("text");
    assert!(stdin.contains("tok-7f3a9c2e51"), "{stdin:?}");
}

#[test]
fn a_secret_that_could_not_be_resolved_stops_the_step_before_it_runs() {
    let host = TestHost::new(FakeTransport::new());
    let placeholder = crate::config::secret::missing("`DB_PASSWORD` is not set");
    let err = host
        .session
        .run(
            &format!("psql -c 'ALTER ROLE app PASSWORD {placeholder}'"),
            &RunOptions::default(),
        )
        .expect_err("refused");
    assert_eq!(err.kind(), "secret");
    assert!(
        err.to_string().contains("`DB_PASSWORD` is not set"),
        "{err}"
    );
    let err = host
        .session
        .put_file("/etc/app.env", placeholder.as_bytes(), None, true, false)
        .expect_err("refused");
    assert_eq!(err.kind(), "secret");
    assert!(host.commands().is_empty() && host.fake.written().is_empty());
}

#[test]
fn a_secret_read_on_first_use_reaches_the_host_in_place_of_its_stand_in_masked() {
    let host = TestHost::new(FakeTransport::new());
    let mut vars = serde_json::json!({"pw": {"command": ["printf", "lazy-pw-8128"]}});
    let secrets = crate::config::secret::Secrets::default();
    secrets.resolve_when_used_in(&mut vars, &std::env::temp_dir(), "dev", None);
    let stand_in = vars["pw"].as_str().expect("a stand-in").to_string();
    assert!(!stand_in.contains("lazy-pw"));
    host.session
        .run(&format!("set-password {stand_in}"), &RunOptions::default())
        .expect("runs");
    host.session
        .put_file(
            "/etc/app.env",
            format!("PW={stand_in}\n").as_bytes(),
            None,
            true,
            false,
        )
        .expect("written");
    let ran = host.fake.ran();
    // The value, now a known secret, is kept out of argv.
    assert!(
        !ran[0].command.contains("lazy-pw-8128"),
        "{}",
        ran[0].command
    );
    let stdin = String::from_utf8(ran[0].stdin.clone().unwrap_or_default()).expect("text");
    assert!(stdin.contains("set-password lazy-pw-8128"), "{stdin:?}");
    assert!(host.session.holds_secret("lazy-pw-8128"));
    let written = host.fake.written();
    assert!(
        written.iter().any(|w| w.data == b"PW=lazy-pw-8128\n"),
        "{written:?}"
    );
}

#[test]
fn a_command_gets_its_timeout_and_the_hosts_deadline_bounds_it() {
    let host = TestHost::with(
        FakeTransport::new(),
        Flags {
            host_timeout: Some(Duration::from_secs(3600)),
            ..Flags::default()
        },
    );
    let five = RunOptions {
        timeout: Some(Duration::from_secs(5)),
        ..RunOptions::default()
    };
    host.session.run("sleep 1", &five).expect("runs");
    host.session
        .run("sleep 2", &RunOptions::default())
        .expect("runs");
    let ran = host.fake.ran();
    assert_eq!(ran[0].timeout, Some(Duration::from_secs(5)));
    // No timeout of its own: what is left of the host's hour.
    let left = ran[1].timeout.expect("bounded by the deadline");
    assert!(
        left <= Duration::from_secs(3600) && left > Duration::from_secs(3500),
        "{left:?}"
    );
}

#[test]
fn a_host_past_its_deadline_runs_nothing_more_and_remembers_why() {
    let host = TestHost::with(
        FakeTransport::new(),
        Flags {
            host_timeout: Some(Duration::ZERO),
            ..Flags::default()
        },
    );
    let err = host
        .session
        .run("apt-get upgrade -y", &RunOptions::default())
        .expect_err("out of time");
    assert!(matches!(err, HostError::HostTimeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "--host-timeout (0s) passed before `apt-get upgrade -y`"
    );
    assert_eq!(host.session.expired(), Some(err.to_string()));
    assert!(host.commands().is_empty());
}

#[test]
fn under_become_a_file_is_staged_then_installed_by_that_user_and_the_stage_removed() {
    let host = TestHost::with(FakeTransport::new(), become_app(None));
    host.session
        .put_file("/etc/motd", b"hi\n", Some(0o644), true, false)
        .expect("written");
    let written = host.fake.written();
    assert_eq!(written.len(), 1);
    let staging = &written[0].path;
    assert!(staging.starts_with("/tmp/.weft-stage-"), "{staging}");
    assert_eq!(written[0].mode, Some(0o600), "the staged copy is private");
    assert_eq!(written[0].data, b"hi\n");
    let commands = host.commands();
    assert_eq!(commands.len(), 2, "{commands:#?}");
    assert!(commands[0].starts_with("sudo -n -u app -- sh -c "));
    assert!(
        commands[0].contains(&format!(
            "install -p -m 644 -T -- {staging} new && mv -f -T -- new ../motd"
        )),
        "{}",
        commands[0]
    );
    // The login user wrote the staged copy, and removes it (with what a write cut short left).
    assert!(
        commands[1].starts_with(&format!("rm -f -- {staging} ")),
        "{}",
        commands[1]
    );
}

#[test]
fn under_become_a_small_text_file_goes_in_one_command_of_that_user_its_text_on_stdin() {
    let host = TestHost::with(
        FakeTransport::new()
            .by_command()
            .on("printf %s", 0, "weft-stamped\n"),
        become_app(None),
    );
    host.session
        .put_file("/etc/motd", b"welcome to app-1\n", Some(0o644), true, true)
        .expect("written");
    assert!(host.fake.written().is_empty(), "no staged copy");
    let ran = host.fake.ran();
    assert_eq!(ran.len(), 1, "{:#?}", host.commands());
    // sudo's shell reads the command: the text is in no process's arguments on the host.
    assert!(ran[0].command.starts_with("sudo -n -u app -- sh -c "));
    assert!(!ran[0].command.contains("welcome"), "{}", ran[0].command);
    let stdin = String::from_utf8(ran[0].stdin.clone().unwrap_or_default()).expect("text");
    assert!(
        stdin.contains("umask 133 && printf %s 'welcome to app-1\n' > new")
            && stdin.contains("mv -f -T -- new ../motd"),
        "{stdin}"
    );
}

#[test]
fn under_become_a_file_is_read_by_that_user() {
    let fake = FakeTransport::new()
        .on("cat -- /etc/app/secret.key", 0, "k3y\n")
        .on("cat -- /etc/app/none", 3, "");
    let host = TestHost::with(fake, become_app(None));
    let read = host.session.read_file("/etc/app/secret.key").expect("read");
    assert_eq!(read.as_deref(), Some(&b"k3y\n"[..]));
    assert_eq!(host.session.read_file("/etc/app/none").expect("read"), None);
    assert!(host
        .commands()
        .iter()
        .all(|c| c.starts_with("sudo -n -u app -- sh -c ")));
}

#[test]
fn an_upload_of_the_same_bytes_and_mode_changes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let local = tempfile::tempdir().expect("temp dir");
    let path = local.path().join("app.conf");
    std::fs::write(&path, "listen 80;\n").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("mode");
    let flags = || Flags {
        local_root: Some(local.path().to_path_buf()),
        ..Flags::default()
    };
    let same = stat_answer("regular file", "640", Some("listen 80;\n"));
    let host = TestHost::with(FakeTransport::new().on(FILE_CHECK, 0, &same), flags());
    assert!(
        !crate::exec::ops::files::upload(&host.session, "app.conf", "/etc/nginx/app.conf")
            .expect("upload")
    );
    assert!(host.fake.written().is_empty());
    assert_eq!(host.session.unchanged(), 1);

    let other = stat_answer("regular file", "640", Some("listen 81;\n"));
    let host = TestHost::with(FakeTransport::new().on(FILE_CHECK, 0, &other), flags());
    assert!(
        crate::exec::ops::files::upload(&host.session, "app.conf", "/etc/nginx/app.conf")
            .expect("upload")
    );
    let written = host.fake.written();
    assert_eq!(written.len(), 1);
    assert_eq!(
        (
            written[0].path.as_str(),
            written[0].mode,
            written[0].data.as_slice()
        ),
        (
            "/etc/nginx/app.conf",
            Some(0o640),
            b"listen 80;\n".as_slice()
        )
    );
    assert_eq!(host.changes(), ["file /etc/nginx/app.conf"]);
}

#[test]
fn a_download_lands_under_the_hosts_name_and_check_only_says_it_would() {
    let local = tempfile::tempdir().expect("temp dir");
    let flags = |check| Flags {
        check,
        local_root: Some(local.path().to_path_buf()),
        ..Flags::default()
    };
    let limits = crate::transport::download::DownloadLimits {
        follow_links: false,
        max_bytes: 1 << 20,
    };
    let fake = || FakeTransport::new().file("/var/log/app.log", "started\n");

    let host = TestHost::with(fake(), flags(true));
    let target = host
        .session
        .download("/var/log/app.log", std::path::Path::new("logs"), limits)
        .expect("download");
    assert_eq!(target, std::path::Path::new("logs/web-1/app.log"));
    assert!(!local.path().join("logs").exists(), "--check wrote a file");
    assert_eq!(
        host.logs()[0],
        format!(
            "would download /var/log/app.log to {}",
            local.path().join("logs/web-1/app.log").display()
        )
    );

    let host = TestHost::with(fake(), flags(false));
    host.session
        .download("/var/log/app.log", std::path::Path::new("logs"), limits)
        .expect("download");
    let copied = std::fs::read_to_string(local.path().join("logs/web-1/app.log")).expect("copy");
    assert_eq!(copied, "started\n");
    assert!(
        host.logs()
            .iter()
            .any(|l| l.starts_with("downloaded /var/log/app.log to ")
                && l.ends_with("(1 file, 8 B)")),
        "{:?}",
        host.logs()
    );
}

#[test]
fn a_dump_streams_into_a_file_with_its_checksum_and_loads_back_only_when_it_matches() {
    let local = tempfile::tempdir().expect("temp dir");
    let flags = |check| Flags {
        check,
        local_root: Some(local.path().to_path_buf()),
        ..Flags::default()
    };
    let data = "\u{1f}\u{8b} compressed rows\n";
    // What the host's pipeline (the command, then gzip) prints is the dump.
    let fake = FakeTransport::new().on("pg_dump app", 0, data);
    let host = TestHost::with(fake, flags(false));
    let dumped = crate::exec::dump::dump(&host.session, "pg_dump app", "backups/app.sql.gz")
        .expect("dump")
        .expect("not under --check");
    let file = local.path().join("backups/app.sql.gz");
    assert_eq!(std::fs::read_to_string(&file).expect("dump"), data);
    let sum = crate::transport::sha256_bytes(data.as_bytes());
    assert_eq!(dumped.sha256, sum);
    assert_eq!(
        std::fs::read_to_string(local.path().join("backups/app.sql.gz.sha256")).expect("sum"),
        format!("{sum}  app.sql.gz\n")
    );
    let pipeline = &host.commands()[0];
    assert!(
        pipeline.contains("( pg_dump app\n )") && pipeline.contains("gzip -c"),
        "{pipeline}"
    );

    // Loaded back: the command gets the dump's bytes on its input, through gzip -d.
    let host = TestHost::with(FakeTransport::new(), flags(false));
    let loaded = crate::exec::dump::load(&host.session, "backups/app.sql.gz", "psql app");
    assert!(matches!(loaded, Ok(true)), "{loaded:?}");
    let ran = host.fake.ran();
    assert_eq!(ran.len(), 1);
    assert!(ran[0].command.contains("gzip -dc"), "{}", ran[0].command);
    assert_eq!(ran[0].stdin.as_deref(), Some(data.as_bytes()));

    // A dump that changed since is refused before anything reaches the host.
    std::fs::write(&file, "truncated").expect("tamper");
    let host = TestHost::with(FakeTransport::new(), flags(false));
    let err = crate::exec::dump::load(&host.session, "backups/app.sql.gz", "psql app")
        .expect_err("corrupt");
    assert!(
        err.to_string().contains("does not match its checksum"),
        "{err}"
    );
    assert!(host.commands().is_empty());

    // Under --check, a dump only says what it would do.
    let host = TestHost::with(FakeTransport::new(), flags(true));
    let none = crate::exec::dump::dump(&host.session, "pg_dump app", "backups/other.sql.gz");
    assert!(matches!(none, Ok(None)), "{none:?}");
    assert!(host.commands().is_empty());
    assert!(!local.path().join("backups/other.sql.gz").exists());
}

#[test]
fn a_failed_dump_leaves_no_file_behind() {
    let local = tempfile::tempdir().expect("temp dir");
    let fake = FakeTransport::new().answer(
        "pg_dump",
        Answer {
            code: 1,
            stdout: "partial".into(),
            stderr: "pg_dump: error: connection refused\n".into(),
        },
    );
    let host = TestHost::with(
        fake,
        Flags {
            local_root: Some(local.path().to_path_buf()),
            ..Flags::default()
        },
    );
    let err =
        crate::exec::dump::dump(&host.session, "pg_dump app", "app.sql.gz").expect_err("fails");
    assert_eq!(
        err.to_string(),
        "`pg_dump app` exited with 1: pg_dump: error: connection refused"
    );
    let left: Vec<_> = std::fs::read_dir(local.path())
        .expect("folder")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_small_text_file_goes_in_one_command_and_a_secret_or_a_large_one_through_the_transport() {
    let host = TestHost::new(FakeTransport::new().by_command().on(
        "printf %s",
        0,
        "weft-stamped\n",
    ));
    host.session
        .put_file("/etc/app/site.conf", b"listen 80;\n", None, true, true)
        .expect("written");
    host.session
        .put_file_owned(
            "/etc/app/env",
            b"A=1\n",
            Some(0o640),
            Some((33, 34)),
            false,
            true,
        )
        .expect("written");
    let commands = host.commands();
    assert_eq!(commands.len(), 2, "{commands:#?}");
    assert!(
        commands[0]
            .contains("umask 133 && printf %s 'listen 80;\n' > new && { [ ! -g .. ] || chown")
            && !commands[0].contains("chmod 644 new")
            && commands[0].contains("mv -f -T -- new ../site.conf"),
        "{}",
        commands[0]
    );
    assert!(
        commands[1].contains("umask 137 && printf %s 'A=1\n' > new && chown -- 33:34 new && {")
            && !commands[1].contains("chmod 640 new"),
        "{}",
        commands[1]
    );
    assert!(host.fake.written().is_empty(), "no transfer for small text");
    // A stamped file is trusted by its next check; the sum of what was sent is kept.
    let known = host
        .session
        .remote_sums()
        .known_paths(&host.session.spec.address);
    assert!(
        known.contains(&"/etc/app/site.conf".to_string()),
        "{known:?}"
    );

    // Content that may hold a secret (no sum kept), or past the size, goes by the transport.
    host.session
        .put_file("/etc/app/secret.env", b"PW=x\n", None, true, false)
        .expect("written");
    let big = vec![b'x'; super::super::stage::SMALL_WRITE + 1];
    host.session
        .put_file("/etc/app/big", &big, None, true, true)
        .expect("written");
    let written: Vec<String> = host.fake.written().into_iter().map(|w| w.path).collect();
    assert_eq!(written, ["/etc/app/secret.env", "/etc/app/big"]);
    assert_eq!(host.commands().len(), 2, "no command for those");
}

#[test]
fn a_file_an_operation_edits_is_read_by_one_command_that_never_reads_through_a_link() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().expect("tmp");
    let at = |name: &str| dir.path().join(name);
    let read = |name: &str| {
        let script = crate::exec::session::read_regular_command(&at(name).display().to_string());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh");
        (out.status.code(), out.stdout)
    };
    // Byte for byte, a missing last newline included.
    std::fs::write(at("app.conf"), "a = 1\n\nb = 'two' $x\n no newline").expect("file");
    assert_eq!(
        read("app.conf"),
        (Some(0), b"a = 1\n\nb = 'two' $x\n no newline".to_vec())
    );
    assert_eq!(read("missing"), (Some(3), Vec::new()));
    assert_eq!(read("no-folder/missing"), (Some(3), Vec::new()));
    // A link, even to a readable regular file, is refused before anything is opened.
    std::fs::write(at("secret"), "precious\n").expect("secret");
    symlink(at("secret"), at("linked.conf")).expect("link");
    assert_eq!(read("linked.conf"), (Some(4), Vec::new()));
    // A folder, or a FIFO (whose open would wait for a writer), is no regular file.
    std::fs::create_dir(at("folder")).expect("folder");
    assert_eq!(read("folder"), (Some(5), Vec::new()));
    let fifo = std::process::Command::new("mkfifo")
        .arg(at("fifo"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    assert_eq!(read("fifo"), (Some(5), Vec::new()));
}

#[test]
fn over_a_transport_that_prefers_commands_an_edited_file_is_read_by_command() {
    let host = TestHost::new(FakeTransport::new().by_command().answer(
        "exec head -c",
        Answer {
            code: 4,
            stdout: String::new(),
            stderr: String::new(),
        },
    ));
    let err = host
        .session
        .read_regular_file("/etc/app/app.conf")
        .expect_err("a link");
    assert!(err.to_string().contains("it is a symbolic link"), "{err}");
    let commands = host.commands();
    assert_eq!(commands.len(), 1, "{commands:#?}");
    assert!(commands[0].contains("weft_enter /etc/app || {"));
    assert!(commands[0].contains("if [ -L ./app.conf ]; then exit 4;"));
}

#[test]
fn a_file_too_long_for_a_command_is_read_through_the_transport_or_refused_under_become() {
    let long = "x".repeat(crate::exec::session::READ_BY_COMMAND + 1);
    let fake = || {
        FakeTransport::new()
            .by_command()
            .file("/var/log/app.log", "from the transport")
            .on("exec head -c", 0, &long)
    };
    let host = TestHost::new(fake());
    let read = host
        .session
        .read_regular_file("/var/log/app.log")
        .expect("read");
    assert_eq!(read.as_deref(), Some(&b"from the transport"[..]));
    let host = TestHost::with(fake(), become_app(None));
    let err = host
        .session
        .read_regular_file("/var/log/app.log")
        .expect_err("too long");
    assert!(err.to_string().contains("over 4 MiB or not text"), "{err}");
}
