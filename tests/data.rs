//! Data services end to end (issue 14): examples/notes on `local` machines running real
//! PostgreSQL and Redis from Debian's packages. Notes, view counts and uploads written through
//! the app survive `backup`, `env_down`, a fresh `env_up` and `restore`; a truncated dump is
//! refused before anything is touched; a dump killed half-way leaves no complete-looking file.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{Destroy, Test};

/// One HTTP/1.0 request to `addr`: the status line and the body.
fn request(addr: &str, method: &str, path: &str, body: &[u8], kind: &str) -> (String, String) {
    let mut stream =
        TcpStream::connect_timeout(&addr.parse().expect("addr"), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: notes\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body).expect("send body");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("answer");
    let answer = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

fn get(addr: &str, path: &str) -> String {
    let (status, body) = request(addr, "GET", path, b"", "text/plain");
    assert!(status.contains(" 200 "), "GET {path}: {status}\n{body}");
    body
}

fn add_note(addr: &str, text: &str) {
    let (status, body) = request(
        addr,
        "POST",
        "/notes",
        format!("text={text}").as_bytes(),
        "application/x-www-form-urlencoded",
    );
    assert!(status.contains(" 201 "), "{status}\n{body}");
}

fn upload(addr: &str, name: &str, content: &[u8]) {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let (status, answer) = request(
        addr,
        "POST",
        "/upload",
        &body,
        "multipart/form-data; boundary=XyZ",
    );
    assert!(status.contains(" 201 "), "{status}\n{answer}");
}

/// The project: examples/notes with one machine of each role but the lb and the files machine,
/// so it stays quick.
fn notes() -> Test {
    let test = notes_as_written();
    // The example's stage, without its lb too.
    let lb = "[env.stage.machines.lb]\ncount = 1\npackages = [\"haproxy\", \"curl\"]\n";
    let config = test.read("weft.toml");
    assert!(config.contains(lb), "{config}");
    let config = crate::webstack::one_app_machine_no_lb(&config.replace(lb, ""));
    // With one app machine, its shared/uploads: the other way uploads are kept.
    let files = "[env.stage.machines.files]\ncount = 1\npackages = [\"nginx\", \"curl\"]\n";
    let kept = "files = true";
    assert!(config.contains(files) && config.contains(kept), "{config}");
    let config = config
        .replace(files, "")
        .replace(&files.replace("stage", "dev"), "")
        .replace(kept, "files = false");
    test.write("weft.toml", &config);
    test
}

/// A copy of examples/notes as it is (2 app machines, an lb, a db and a cache machine), with
/// its secrets set.
fn notes_as_written() -> Test {
    let test = Test::new().with_env(vec![
        crate::app::pip_cache(),
        ("NOTES_DB_PASSWORD".into(), "n0tes p@ss'word".into()),
        ("REDIS_PASSWORD".into(), "r3dis \"pass\"".into()),
    ]);
    crate::webstack::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/notes"),
        test.path(),
    );
    test
}

/// On each app machine of env dev: the build `current` points at.
fn current_builds(test: &Test) -> Vec<String> {
    ["app-0", "app-1"]
        .iter()
        .map(|m| {
            let out = test.ssh("dev", m, &["readlink /opt/www/notes/current"]);
            out.status(0);
            out.stdout.trim().to_string()
        })
        .collect()
}

/// Migrations (issue 31, item 2), on examples/notes as written: env_up makes the schema
/// before the first request, on one machine; a deploy of the running build runs none;
/// `--check` names the migration and runs nothing; a migration that fails stops the deploy
/// with both app machines on the old build, and the lb fails no request of 4 clients.
#[test]
fn notes_migrates_before_it_serves_and_a_failed_migration_switches_nothing() {
    let test = notes_as_written();
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    let up = test.run(&["run", "env_up"]);
    up.status(0).stdout_has("deployed notes");
    let migrated: Vec<&str> = up
        .stdout
        .lines()
        .filter(|l| l.contains("ran migration `python -m notes.migrate`"))
        .collect();
    assert!(
        migrated.len() == 1 && migrated[0].starts_with("app-0 "),
        "{}",
        up.stdout
    );
    // The schema is there before any request reached the app.
    let schema = "runuser -u postgres -- psql -tA notes -c \
        \"SELECT to_regclass('notes'), (SELECT max(version) FROM schema_version)\"";
    test.ssh("dev", "db-0", &[schema])
        .status(0)
        .stdout_has("notes|1");

    // Deploying the running build again runs no migration.
    test.run(&["run", "notes_deploy"])
        .status(0)
        .stdout_has("is deployed already")
        .stdout_lacks("ran migration");

    uploads_are_kept_once_and_served_by_every_app_machine(&test);

    // New code, and a migration that leaves a mark, then fails.
    let before = current_builds(&test);
    let code = test.read("app/notes/__init__.py");
    let changed = code.replace("f\"views: {views}\\n\"", "f\"views: {views} (v2)\\n\"");
    assert_ne!(code, changed);
    test.write("app/notes/__init__.py", &changed);
    let config = test.read("weft.toml").replace(
        "migrate = \"python -m notes.migrate\"",
        "migrate = \"echo \\\"$WEFT_BUILD $(id -un)\\\" >> /tmp/migrations; exit 1\"",
    );
    assert!(config.contains("/tmp/migrations"), "{config}");
    test.write("weft.toml", &config);
    let marks = |machine: &str| {
        test.ssh("dev", machine, &["cat /tmp/migrations 2>/dev/null; true"])
            .stdout
            .clone()
    };

    test.run(&["run", "notes_deploy", "--check"])
        .status(0)
        .stdout_has("would run migration `echo ")
        .stdout_has("on app-0 before any machine switches")
        .stdout_has("summary (--check: nothing was changed)");
    assert_eq!(marks("app-0"), "");
    assert_eq!(current_builds(&test), before);

    let addr = crate::webstack::web_address(&test, "lb-0");
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, addr) = (stop.clone(), addr.clone());
            std::thread::spawn(move || {
                let (mut seen, mut failed) = (Vec::new(), Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match crate::webstack::get(&addr) {
                        Ok(body) => seen.push(body),
                        Err(e) => failed.push(e),
                    }
                }
                (seen, failed)
            })
        })
        .collect();
    let failed_deploy = test.run(&["run", "notes_deploy"]);
    stop.store(true, Ordering::Relaxed);
    let (mut seen, mut failed) = (Vec::new(), Vec::new());
    for client in clients {
        let (s, f) = client.join().expect("client");
        seen.extend(s);
        failed.extend(f);
    }
    failed_deploy
        .status(1)
        .stderr_has("failed on app-0; no machine switched to");
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(seen.len() > 20, "only {} requests made", seen.len());
    assert!(
        seen.iter()
            .all(|page| page.starts_with("views: ") && !page.contains("(v2)")),
        "{:?}",
        seen.iter().find(|p| p.contains("(v2)"))
    );
    assert_eq!(current_builds(&test), before);
    // It ran once, on app-0, with the new build, as the app's user.
    let mark = marks("app-0");
    assert_eq!(mark.lines().count(), 1, "{mark}");
    assert!(mark.ends_with(" notes\n"), "{mark}");
    assert!(
        !before[0].ends_with(mark.split(' ').next().unwrap_or("?")),
        "{mark}"
    );
    assert_eq!(marks("app-1"), "");
}

/// Shared uploads (issue 31, item 1), on examples/notes as written: a file uploaded through
/// the lb is served on 20 of 20 requests through it, whichever app machine answers, and by an
/// app machine made after the upload; nobody writes through an app machine's nginx, and the
/// files machine takes writes from the app machines only; `uploads_dump` takes the one copy.
fn uploads_are_kept_once_and_served_by_every_app_machine(test: &Test) {
    let lb = crate::webstack::web_address(test, "lb-0");
    let content = b"\x00one copy for all\xff";
    let shown = "\u{0}one copy for all\u{fffd}";
    upload(&lb, "shared.bin", content);
    let served = |addr: &str, times: usize| {
        let answers: Vec<String> = (0..times)
            .map(|_| {
                let (status, body) = request(addr, "GET", "/uploads/shared.bin", b"", "text/plain");
                format!("{status} {body}")
            })
            .collect();
        let good = answers
            .iter()
            .filter(|a| a.contains(" 200 ") && a.ends_with(shown))
            .count();
        assert_eq!(good, times, "{answers:?}");
    };
    served(&lb, 20);
    for machine in ["app-0", "app-1"] {
        served(&crate::webstack::web_address(test, machine), 1);
    }
    // The files machine holds the only copy; the app machines hold none.
    test.ssh(
        "dev",
        "files-0",
        &["cat /var/lib/weft-files/notes/shared.bin"],
    )
    .status(0)
    .stdout_has("one copy for all");
    let local = test.ssh(
        "dev",
        "app-0",
        &["ls -A /opt/www/notes/shared/uploads | wc -l"],
    );
    local.status(0);
    assert_eq!(local.stdout.trim(), "0", "{}", local.stdout);

    // Writes: refused through the lb (an app machine's nginx passes reads only) and, on the
    // files machine, from a machine that is not the app's.
    let (status, _) = request(
        &lb,
        "PUT",
        "/uploads/shared.bin",
        b"overwritten",
        "text/plain",
    );
    assert!(status.contains(" 403 "), "{status}");
    let files = crate::webstack::web_address(test, "files-0");
    let files = files
        .rsplit_once(':')
        .map_or(files.as_str(), |(host, _)| host);
    let outsider = test.ssh(
        "dev",
        "lb-0",
        &[&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' -X PUT --data x http://{files}:8090/notes/shared.bin"
        )],
    );
    outsider.status(0);
    assert_eq!(outsider.stdout.trim(), "403", "{}", outsider.stdout);
    served(&lb, 1);

    // A machine made after the upload serves it once deployed to, and joins the lb.
    test.run(&["cloud", "create", "app"]).status(0);
    test.run(&["run", "notes_deploy"])
        .status(0)
        .stdout_has("deployed notes");
    served(&crate::webstack::web_address(test, "app-2"), 1);
    served(&lb, 20);

    // One archive of the uploads, from the files machine.
    let dumped = test.run(&["run", "uploads_dump", "u"]);
    dumped.status(0);
    let mut names: Vec<String> = std::fs::read_dir(test.path().join("u"))
        .expect("u")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "uploads.notes.files-0.tar.gz",
            "uploads.notes.files-0.tar.gz.sha256"
        ],
        "{}",
        dumped.stdout
    );
}

/// The backup folders of env dev, by name.
fn backups(test: &Test) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(test.path().join("backups/dev"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn notes_counts_and_uploads_survive_backup_and_restore_into_another_env() {
    let test = notes();
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    let _stage = Destroy {
        test: &test,
        env: "stage",
    };
    test.run(&["run", "env_up"])
        .status(0)
        .stdout_has("deployed notes");
    let addr = crate::webstack::web_address(&test, "app-0");

    // A backup of the fresh env comes back into it as it was: dev's own data is not scrubbed,
    // and a scrub asked for finds nothing to scrub and succeeds (issue 31).
    let fresh = test.run(&["run", "backup"]);
    fresh.status(0).stdout_lacks("REPLCONF");
    let fresh = format!("backups/dev/{}", backups(&test).pop().expect("a backup"));
    test.run(&["run", "restore", &fresh, "--yes"])
        .status(0)
        .stdout_has("not scrubbed:")
        .stdout_has(&format!("restored {fresh} into env dev\n"))
        .stdout_lacks("notes_scrub");
    test.run(&["run", "restore", &fresh, "--yes", "--scrub"])
        .status(0)
        .stdout_has("and scrubbed it (notes_scrub)");

    add_note(&addr, "first");
    add_note(&addr, "mail bob@example.com");
    upload(&addr, "photo.bin", b"\x00\x01binary upload\xff");
    get(&addr, "/");
    let page = get(&addr, "/");
    assert!(page.starts_with("views: 2\n"), "{page}");
    assert!(
        page.contains("note: first\nnote: mail bob@example.com\n"),
        "{page}"
    );
    assert_eq!(
        get(&addr, "/uploads/photo.bin"),
        "\u{0}\u{1}binary upload\u{fffd}"
    );

    // The app reads its URLs from shared/env, which only its user can read.
    test.run(&[
        "ssh",
        "app-0",
        "--",
        "stat -c '%a %U' /opt/www/notes/shared/env",
    ])
    .status(0)
    .stdout_has("600 notes");

    let done = test.run(&["run", "backup"]);
    done.status(0)
        .stdout_has("backed up env dev into backups/dev/")
        .stdout_lacks("REPLCONF");
    let stamp = backups(&test).pop().expect("a backup");
    let dir = format!("backups/dev/{stamp}");
    let manifest: serde_json::Value =
        serde_json::from_str(&test.read(&format!("{dir}/manifest.json"))).expect("json");
    assert_eq!(manifest["env"], "dev");
    assert_eq!(manifest["project"], "notes");
    assert_eq!(
        manifest["services"],
        serde_json::json!(["postgres", "redis", "uploads"])
    );
    let files: Vec<&str> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["file"].as_str().expect("name"))
        .collect();
    for wanted in [
        "postgres.notes.sql.gz",
        "redis.rdb.gz",
        "uploads.notes.app-0.tar.gz",
    ] {
        assert!(files.contains(&wanted), "{files:?}");
        assert!(test
            .path()
            .join(&dir)
            .join(format!("{wanted}.sha256"))
            .exists());
    }
    assert!(
        manifest["builds"]["notes@app-0"]
            .as_str()
            .is_some_and(|b| !b.is_empty()),
        "{manifest}"
    );
    test.run(&["run", "backups"]).status(0).stdout_has(&stamp);

    // A copy with a truncated dump is refused before any machine is touched.
    let bad = format!("backups/dev/{stamp}-bad");
    crate::webstack::copy_dir(&test.path().join(&dir), &test.path().join(&bad));
    let dump = test.path().join(&bad).join("postgres.notes.sql.gz");
    let len = std::fs::metadata(&dump).expect("dump").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&dump)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    test.run(&["run", "restore", &bad, "--yes"])
        .status(1)
        .stderr_has("corrupt or truncated");
    assert!(
        get(&addr, "/").contains("note: first"),
        "the data is untouched"
    );
    std::fs::remove_dir_all(test.path().join(&bad)).expect("rm");

    let dev_addr = addr;
    test.run(&["run", "env_up", "-e", "stage"])
        .status(0)
        .stdout_has("deployed notes");
    let addr = crate::webstack::web_address_in(&test, "stage", "app-0");
    assert!(get(&addr, "/").starts_with("views: 1\n"), "a fresh env");

    // The redis user (who owns Redis's folder) plants a link to a root-only file at the name
    // weft once wrote the snapshot under as root, and chowned to redis (issue 29).
    test.ssh(
        "stage",
        "cache-0",
        &[
            "printf 'root only\\n' > /etc/weft-victim && chmod 600 /etc/weft-victim && \
           runuser -u redis -- ln -s /etc/weft-victim /var/lib/redis/dump.rdb.weft-load",
        ],
    )
    .status(0);

    // Without --yes and without a terminal, nothing is loaded.
    test.run(&["run", "restore", &dir, "-e", "stage"])
        .status(2)
        .stderr_has("not confirmed");
    test.run(&["run", "restore", &dir, "-e", "stage", "--yes"])
        .status(0)
        .stdout_has(&format!("restored {dir} into env stage and scrubbed it"));
    let page = get(&addr, "/");
    // The count goes on from the backup's; notes_scrub anonymised the address.
    assert!(page.starts_with("views: 3\n"), "{page}");
    assert!(page.contains("note: first\nnote: scrubbed\n"), "{page}");
    assert_eq!(
        get(&addr, "/uploads/photo.bin"),
        "\u{0}\u{1}binary upload\u{fffd}"
    );
    // The planted link was never written through, nor its target handed to redis.
    test.ssh(
        "stage",
        "cache-0",
        &["stat -c '%U %a' /etc/weft-victim && cat /etc/weft-victim && stat -c '%U %a' /var/lib/redis/dump.rdb"],
    )
    .status(0)
    .stdout_has("root 600\nroot only\nredis 660");

    // dev keeps its own data: the scrub ran on stage only.
    let dev_page = get(&dev_addr, "/");
    assert!(
        dev_page.contains("note: mail bob@example.com"),
        "{dev_page}"
    );

    // dev's own backup back into dev keeps its notes as they were; --scrub scrubs them.
    test.run(&["run", "restore", &dir, "--yes"])
        .status(0)
        .stdout_has("not scrubbed:");
    assert!(get(&dev_addr, "/").contains("note: mail bob@example.com"));
    test.run(&["run", "restore", &dir, "--yes", "--scrub"])
        .status(0)
        .stdout_has("scrubbed 1 notes");
    let dev_page = get(&dev_addr, "/");
    assert!(
        dev_page.contains("note: first\nnote: scrubbed\n"),
        "{dev_page}"
    );

    // A dump goal runs on the machines of its service's role only.
    let all = test.run(&["run", "redis_dump", "all"]);
    all.status(0);
    assert!(
        all.stdout.lines().any(|l| l.starts_with("cache-0 "))
            && !all.stdout.lines().any(|l| l.starts_with("app-0 ")),
        "{}",
        all.stdout
    );
    let mut dumped: Vec<String> = std::fs::read_dir(test.path().join("all"))
        .expect("all")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dumped.sort();
    assert_eq!(dumped, ["redis.rdb.gz", "redis.rdb.gz.sha256"]);

    killed_dump_leaves_no_complete_file(&test);
}

/// `postgres_dump` of a large table, killed half-way: no file under the dump's name, and no
/// checksum of it.
fn killed_dump_leaves_no_complete_file(test: &Test) {
    let fill = "cd / && runuser -u postgres -- psql -q notes -c \
        \"CREATE TABLE big AS SELECT g, md5(g::text) || md5((g+1)::text) AS t FROM generate_series(1, 3000000) g\"";
    test.run(&["ssh", "db-0", "--", fill]).status(0);
    let mut child = test
        .command(&["run", "postgres_dump", "killed"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("weft starts");
    let folder = test.path().join("killed");
    let deadline = Instant::now() + Duration::from_secs(120);
    // Killed once the hidden temporary file holds some of the stream.
    loop {
        let growing = std::fs::read_dir(&folder).ok().is_some_and(|d| {
            d.filter_map(Result::ok).any(|e| {
                e.file_name().to_string_lossy().starts_with('.')
                    && e.metadata().is_ok_and(|m| m.len() > 1_000_000)
            })
        });
        if growing {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dump never started streaming"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = child.wait();
    assert!(!folder.join("postgres.notes.sql.gz").exists());
    assert!(!folder.join("postgres.notes.sql.gz.sha256").exists());
    test.run(&["run", "backups"]).status(0);
}

/// `host.dump` and `host.load` over SSH (a real sshd on loopback): 48 MiB each way, whole;
/// a failing dump command leaves no file, not even a hidden one; a load whose command stops
/// reading fails (gzip on the host gets SIGPIPE); a truncated dump is refused before its
/// command starts.
#[test]
fn dumps_stream_over_ssh_whole_and_fail_without_leaving_files() {
    let fleet = crate::fleet::Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let data: Vec<u8> = (0..48u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    let source = test.path().join("source.bin");
    std::fs::write(&source, &data).expect("write");
    let (back, marker) = (test.path().join("back.bin"), test.path().join("ran"));
    test.write(
        "deploy/d.rhai",
        "/// Dump.\nfn d_dump(host, cmd, to) { let d = host.dump(cmd, to); log(`bytes=${d.bytes}`); }\n\
         /// Load.\nfn d_load(host, from, cmd) { host.load(from, cmd); }\n",
    );
    let flags = [
        "-i".to_string(),
        fleet.key(),
        "--known-hosts".to_string(),
        fleet.known_hosts(),
        "-e".to_string(),
        "fleet".to_string(),
    ];
    let run = |argv: &[&str]| {
        let all: Vec<&str> = argv
            .iter()
            .copied()
            .chain(flags.iter().map(String::as_str))
            .collect();
        test.run(&all)
    };
    let cat = format!("cat {}", source.display());
    run(&["run", "d_dump", &cat, "out/source.gz"])
        .status(0)
        .stdout_has("dumped ");
    let unpacked = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc {}/out/source.gz | cmp - {}",
            test.path().display(),
            source.display()
        ))
        .status()
        .expect("gzip");
    assert!(
        unpacked.success(),
        "the dump is the command's output, gzip-compressed"
    );
    let recorded = test.read("out/source.gz.sha256");
    assert!(recorded.ends_with("  source.gz\n"), "{recorded}");

    run(&[
        "run",
        "d_load",
        "out/source.gz",
        &format!("cat > {}", back.display()),
    ])
    .status(0);
    assert_eq!(std::fs::read(&back).expect("loaded"), data);

    // A dump command that fails part-way: the goal fails and nothing is left in out/.
    let failing = format!("{cat}; exit 3");
    run(&["run", "d_dump", &failing, "out/failed.gz"])
        .status(1)
        .stderr_has(&format!("`{failing}` exited with 3"));
    let left: Vec<String> = std::fs::read_dir(test.path().join("out"))
        .expect("out")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");

    // A load command that stops reading does not pass for a load.
    run(&["run", "d_load", "out/source.gz", "head -c 10 >/dev/null"])
        .status(1)
        .stderr_has("`head -c 10 >/dev/null` exited with 141");

    // A truncated dump: refused, and its command never starts.
    let dump = test.path().join("out/source.gz");
    let len = std::fs::metadata(&dump).expect("dump").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&dump)
        .and_then(|f| f.set_len(len - 1))
        .expect("truncate");
    run(&[
        "run",
        "d_load",
        "out/source.gz",
        &format!("touch {}; cat >/dev/null", marker.display()),
    ])
    .status(1)
    .stderr_has("corrupt or truncated");
    assert!(!marker.exists(), "the load command ran");
}

/// Writes a file of a fake backup with its `.sha256`; returns its manifest entry.
fn backup_file(test: &Test, dir: &str, name: &str, service: &str) -> serde_json::Value {
    let path = test.path().join(dir).join(name);
    crate::harness::write(&path, "data\n");
    let out = Command::new("sha256sum")
        .arg(&path)
        .output()
        .expect("sha256sum");
    let real = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a sum")
        .to_string();
    crate::harness::write(
        &test.path().join(dir).join(format!("{name}.sha256")),
        &format!("{real}  {name}\n"),
    );
    serde_json::json!({ "file": name, "service": service, "host": "db-0", "bytes": 5, "sha256": real })
}

/// Writes a complete fake backup of env `env` at `stamp` holding `service`.
fn fake_backup(test: &Test, env: &str, stamp: &str, service: &str) -> String {
    let dir = format!("backups/{env}/{stamp}");
    let file = backup_file(test, &dir, &format!("{service}.gz"), service);
    let manifest = serde_json::json!({
        "format": 1, "env": "prod", "created": stamp, "weft_version": "0",
        "services": [service], "hosts": ["db-0"], "files": [file], "builds": {},
    });
    test.write(&format!("{dir}/manifest.json"), &manifest.to_string());
    dir
}

/// `backups` lists complete and incomplete backups, `backup_prune` keeps the newest N, and
/// `restore` refuses a folder without a manifest and a backup whose services the env lacks,
/// before any host is touched. On the `local` env, with no machines.
#[test]
fn backups_are_listed_pruned_and_bad_restores_are_refused() {
    let test = Test::with_config("[project]\nname = \"shop\"\n");
    for stamp in ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z"] {
        fake_backup(&test, "local", stamp, "redis");
    }
    // A dump that was interrupted: no manifest.
    test.write(
        "backups/local/20260102T120000Z/.redis.rdb.gz.weft-0123456789abcdef",
        "part",
    );
    test.run(&["run", "backups"])
        .status(0)
        .stdout_has("20260101T000000Z  [\"redis\"]  1 files  5 bytes  (from env prod)")
        .stdout_has("20260102T120000Z  incomplete (no manifest.json)");

    test.run(&["run", "restore", "backups/local/20260102T120000Z"])
        .status(1)
        .stderr_has("is not a complete backup: it has no manifest.json");
    test.run(&["run", "restore", "backups/local/20260103T000000Z", "--yes"])
        .status(1)
        .stderr_has("holds redis data, but env local has no redis");
    // A dump that differs from what the manifest lists is refused too.
    test.write("backups/local/20260103T000000Z/redis.gz", "other\n");
    test.run(&["run", "restore", "backups/local/20260103T000000Z", "--yes"])
        .status(1)
        .stderr_has("corrupt or truncated");

    test.run(&["run", "backup_prune", "none"]).status(1);
    test.run(&["run", "backup_prune", "2"])
        .status(0)
        .stdout_has("removed backups/local/20260101T000000Z")
        .stdout_has("removed backups/local/20260102T120000Z");
    let left: Vec<String> = std::fs::read_dir(test.path().join("backups/local"))
        .expect("backups")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, ["20260102T000000Z", "20260103T000000Z"]);

    // An env with no data services has nothing to back up, and says so.
    test.run(&["run", "backup"])
        .status(1)
        .stderr_has("env local has no data services to back up");
}

/// `host.load` with `into`, as `redis_load` and `uploads_load` use it, over SSH into a folder
/// that a plain user owns (as the redis user owns /var/lib/redis): links the user planted are
/// never written through; the file and the folder loaded get the owner and mode asked for;
/// and a private folder that the user swaps for a link while the load runs fails the load,
/// with nothing handed to the user (issue 29).
#[test]
fn loads_into_a_users_folder_stage_privately_and_never_follow_what_the_user_plants() {
    let fleet = crate::fleet::Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let user = crate::ops::PlainUser::new("weftld", "");
    let (uid, gid) = user.ids();
    let data = format!("{}/data", user.home());
    let victim = test.path().join("victim");
    std::fs::write(&victim, "root only\n").expect("victim");
    std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let v = victim.display();
    user.sh(&format!(
        "mkdir {data} && ln -s {v} {data}/dump.rdb.weft-load && ln -s {v} {data}/new && \
         mkdir -p {data}/uploads && echo stale > {data}/uploads/stale.txt"
    ));
    test.write(
        "deploy/l.rhai",
        "/// Dump.\nfn l_dump(host, cmd, to) { host.dump(cmd, to); }\n\
         /// Load into.\nfn l_into(host, from, cmd, into, owner) { host.load(from, cmd, #{ into: into, owner: owner, group: owner, mode: \"0660\" }); }\n\
         /// Load a folder.\nfn l_tree(host, a, b, into, owner) { host.load([a, b], \"mkdir -p new && tar -x --no-same-owner -C new -f - --strip-components=1\", #{ into: into, owner: owner, mode: \"0755\" }); }\n",
    );
    let flags = [
        "-i".to_string(),
        fleet.key(),
        "--known-hosts".to_string(),
        fleet.known_hosts(),
        "-e".to_string(),
        "fleet".to_string(),
    ];
    let argv = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|a| a.to_string())
            .chain(flags.iter().cloned())
            .collect()
    };
    let run = |args: &[&str]| {
        let all = argv(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        test.run(&all)
    };
    let untouched = |what: &str| {
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "root only\n",
            "{what}: written through a planted link"
        );
        let meta = std::fs::metadata(&victim).expect("victim");
        assert_eq!(
            (
                std::os::unix::fs::MetadataExt::uid(&meta),
                std::os::unix::fs::MetadataExt::mode(&meta) & 0o7777
            ),
            (0, 0o600),
            "{what}: the linked file was handed over"
        );
    };
    let stages = || -> Vec<String> {
        std::fs::read_dir(&data)
            .expect("data")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".weft-stage."))
            .collect()
    };

    // A file, as redis_load puts Redis's snapshot in place.
    run(&["run", "l_dump", "printf snapshot-1", "d/s.gz"]).status(0);
    let rdb = format!("{data}/dump.rdb");
    run(&["run", "l_into", "d/s.gz", "cat > new", &rdb, &user.name])
        .status(0)
        .stdout_has("changed: loaded");
    untouched("a file");
    assert_eq!(std::fs::read_to_string(&rdb).expect("rdb"), "snapshot-1");
    let meta = std::fs::symlink_metadata(&rdb).expect("rdb");
    assert!(meta.file_type().is_file());
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&meta),
            std::os::unix::fs::MetadataExt::gid(&meta),
            std::os::unix::fs::MetadataExt::mode(&meta) & 0o7777
        ),
        (uid, gid, 0o660)
    );
    assert!(stages().is_empty(), "{:?}", stages());

    // A folder from two archives, as uploads_load replaces an app's uploads.
    for (name, file) in [("a", "a.txt"), ("b", "b.txt")] {
        let src = test.path().join(format!("src-{name}/uploads"));
        std::fs::create_dir_all(&src).expect("src");
        std::fs::write(src.join(file), name).expect("file");
        let cmd = format!(
            "tar -C {} -cf - uploads",
            src.parent().expect("parent").display()
        );
        run(&["run", "l_dump", &cmd, &format!("d/{name}.tar.gz")]).status(0);
    }
    let uploads = format!("{data}/uploads");
    run(&[
        "run",
        "l_tree",
        "d/a.tar.gz",
        "d/b.tar.gz",
        &uploads,
        &user.name,
    ])
    .status(0);
    untouched("a folder");
    let mut names: Vec<String> = std::fs::read_dir(&uploads)
        .expect("uploads")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a.txt", "b.txt"]);
    let meta = std::fs::metadata(format!("{uploads}/b.txt")).expect("b");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), uid);
    assert!(stages().is_empty(), "{:?}", stages());

    // The user swaps weft's private folder for a link to a root-only folder while the load
    // runs: the load fails, and nothing there is handed to the user.
    let decoy = test.path().join("decoy");
    std::fs::create_dir(&decoy).expect("decoy");
    std::fs::set_permissions(&decoy, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    std::fs::write(decoy.join("new"), "root's\n").expect("decoy file");
    let swapped = test.path().join("swapped");
    let wait = format!(
        "cat > new && while [ ! -e {} ]; do sleep 0.05; done",
        swapped.display()
    );
    run(&["run", "l_dump", "printf snapshot-2", "d/s2.gz"]).status(0);
    let all = argv(&["run", "l_into", "d/s2.gz", &wait, &rdb, &user.name]);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let child = test
        .command(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let stage = loop {
        if let Some(stage) = stages().pop() {
            break stage;
        }
        assert!(Instant::now() < deadline, "no private folder appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    user.sh(&format!(
        "mv {data}/{stage} {data}/moved && ln -s {} {data}/{stage}",
        decoy.display()
    ));
    std::fs::write(&swapped, "").expect("flag");
    let out = child.wait_with_output().expect("weft ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("was replaced"), "{stderr}");
    let listing = std::process::Command::new("ls")
        .args(["-laR", &data, &decoy.display().to_string()])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let meta = std::fs::metadata(decoy.join("new"))
        .unwrap_or_else(|e| panic!("decoy file: {e}\nweft said: {stderr}\n{listing}"));
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&meta),
            std::os::unix::fs::MetadataExt::mode(&meta) & 0o7777
        ),
        (0, 0o644),
        "the file in the folder linked to was handed over"
    );
    assert_eq!(
        std::fs::read_to_string(decoy.join("new")).expect("decoy"),
        "root's\n"
    );
    assert_eq!(std::fs::read_to_string(&rdb).expect("rdb"), "snapshot-1");
    untouched("a swap");
}

/// `postgres_*` and `redis_*` run on the machines of their roles only (issue 31): on an env of
/// an app machine and a db machine, `postgres_status` reports from the db machine alone, a
/// role that runs neither selects nothing (exit 2, before any host is touched), and a host
/// named with `-H` is run on as asked.
#[test]
fn data_service_goals_run_on_their_roles_machines_only() {
    let fleet = crate::fleet::Fleet::start(2);
    let (app, db) = (fleet.hosts[0].port, fleet.hosts[1].port);
    let test = Test::with_config(&format!(
        "[project]\nname = \"roles\"\ndefault_env = \"fleet\"\n\n\
         [apps.notes]\nwsgi = \"notes:app\"\nrole = \"app\"\ndatabase = \"notes\"\n\
         database_password = \"not-used-here\"\ncache = true\n\n\
         [vars]\nredis_password = \"not-used-either\"\n\n\
         [env.fleet]\nhosts = {{ app-0 = \"root@127.0.0.1:{app}\", db-0 = \"root@127.0.0.1:{db}\" }}\n\
         roles = {{ app = [\"app-0\"], db = [\"db-0\"] }}\n"
    ));
    let flags = [
        "-i".to_string(),
        fleet.key(),
        "--known-hosts".to_string(),
        fleet.known_hosts(),
    ];
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(flags.iter().map(String::as_str));
        test.run(&all)
    };
    let out = run(&["run", "postgres_status"]);
    out.status(0);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("db-0 ") && l.contains("| postgresql: ")),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("app-0 ")),
        "{}",
        out.stdout
    );
    run(&["run", "postgres_status", "-r", "app"])
        .status(2)
        .stderr_has(
        "`postgres_status` runs on the machines of role `db`, and env `fleet` selects none of them",
    );
    // No machine plays the cache role: redis goals have nowhere to run.
    run(&["run", "redis_status"])
        .status(2)
        .stderr_has("runs on the machines of role `cache`");
    let named = run(&["run", "postgres_status", "-H", "app-0"]);
    named.status(0);
    assert!(
        named.stdout.lines().any(|l| l.starts_with("app-0 ")),
        "{}",
        named.stdout
    );

    // `restore` over the same two machines, with the services' loads replaced by the
    // project (its deploy/services/*.rhai hide the stdlib's): which backups are
    // scrubbed, and what a restore that fails half-way says.
    test.write(
        "deploy/services/postgres.rhai",
        "/// Load.\nfn postgres_load(host, dir) { log(`postgres loaded on ${host.name}`); }\n",
    );
    test.write(
        "deploy/services/uploads.rhai",
        "/// Load.\nfn uploads_load(host, dir) { if host.vars.uploads_break == \"yes\" { throw \"uploads broke\"; } log(\"uploads loaded\"); }\n",
    );
    test.write(
        "deploy/notes.rhai",
        "/// Scrub.\nfn notes_scrub(host) { log(`scrubbing on ${host.name}`); }\n",
    );
    let backup = |env: &str, project: &str| -> String {
        let dir = format!("backups/{env}/20260101T000000Z-{project}");
        let files = [
            backup_file(&test, &dir, "postgres.notes.sql.gz", "postgres"),
            backup_file(&test, &dir, "uploads.notes.app-0.tar.gz", "uploads"),
        ];
        let manifest = serde_json::json!({
            "format": 1, "env": env, "project": project, "created": "20260101T000000Z",
            "weft_version": "0", "services": ["postgres", "uploads"], "hosts": ["db-0", "app-0"],
            "files": files, "builds": {},
        });
        test.write(&format!("{dir}/manifest.json"), &manifest.to_string());
        dir
    };
    let own = backup("fleet", "roles");
    let restored = run(&["run", "restore", &own, "--yes"]);
    restored
        .status(0)
        .stdout_has("postgres loaded on db-0")
        .stdout_has("uploads loaded")
        .stdout_has(&format!("not scrubbed: {own} is a backup of this env (env fleet of project roles); --scrub scrubs it anyway"))
        .stdout_has(&format!("restored {own} into env fleet\n"))
        .stdout_lacks("scrubbing on");
    run(&["run", "restore", &own, "--yes", "--scrub"])
        .status(0)
        .stdout_has("scrubbing, as --scrub asks")
        .stdout_has("scrubbing on app-0")
        .stdout_has("and scrubbed it (notes_scrub)");
    for (env, project) in [("prod", "roles"), ("fleet", "shop")] {
        let other = backup(env, project);
        run(&["run", "restore", &other, "--yes"])
            .status(0)
            .stdout_has(&format!(
                "scrubbing: {other} is a backup of env {env} of project {project}, not of this env"
            ))
            .stdout_has("scrubbing on app-0");
    }
    run(&[
        "run",
        "restore",
        &own,
        "--yes",
        "--set",
        "uploads_break=yes",
    ])
    .status(1)
    .stderr_has("uploads_load failed on role app: env fleet holds part of")
    .stderr_has("Loaded: postgres; uploads may be partly replaced; not loaded: none.");
}
