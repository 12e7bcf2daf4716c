//! Pulled copies (`weft copy --pull`, `host.download`) take regular files and folders only
//! (issue 29): a host's plain user plants links to a device and to root's secret, a link that
//! loops and a FIFO, and none of them reaches the controller; a size limit and one Ctrl-C stop
//! a download, leaving no partial file. Over SSH against a real sshd, and on `local`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fleet::Fleet;
use crate::harness::Test;

/// A folder of the plain user `weft-test` (made by the fleet), filled by that user: `ok.log`,
/// `sub/inner.log`, `z.log -> /dev/zero`, `v.log -> ` a root-only secret, `loop -> .` and a
/// FIFO. Removed, with the secret, when dropped.
struct Planted {
    _base: tempfile::TempDir,
    dir: String,
    secret: PathBuf,
}

impl Planted {
    fn new(tag: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let unique = format!("{tag}-{}-{:x}", std::process::id(), nanos());
        let secret = PathBuf::from(format!("/root/weft-secret-{unique}"));
        std::fs::write(&secret, "root only\n").expect("secret");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("0600");
        // The user's own folder (as their home would be), in a folder every user can enter.
        let base = tempfile::Builder::new()
            .prefix("weft-planted")
            .tempdir()
            .expect("base");
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755))
            .expect("0755");
        let dir = base.path().join(format!("logs-{unique}"));
        std::fs::create_dir(&dir).expect("dir");
        let owned = Command::new("chown")
            .args(["weft-test:"])
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(owned.success());
        let dir = dir.display().to_string();
        let script = format!(
            "set -e; mkdir -p {dir}/sub; cd {dir}; printf 'fine\\n' > ok.log; \
             printf 'deep\\n' > sub/inner.log; ln -s /dev/zero z.log; ln -s {} v.log; \
             ln -s . loop; mkfifo fifo",
            secret.display()
        );
        as_plain_user(&script);
        Planted {
            _base: base,
            dir,
            secret,
        }
    }

    /// The folder's name, as the download names its copy.
    fn name(&self) -> &str {
        self.dir.rsplit('/').next().unwrap_or_default()
    }
}

impl Drop for Planted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.secret);
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn as_plain_user(script: &str) {
    let out = Command::new("runuser")
        .args(["-u", "weft-test", "--", "sh", "-c", script])
        .output()
        .expect("runuser");
    assert!(
        out.status.success(),
        "as weft-test: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ssh_flags(fleet: &Fleet) -> Vec<String> {
    vec![
        "-i".into(),
        fleet.key(),
        "--known-hosts".into(),
        fleet.known_hosts(),
    ]
}

fn pull(test: &Test, fleet: &Fleet, source: &str, extra: &[&str]) -> crate::harness::Outcome {
    let flags = ssh_flags(fleet);
    let mut argv = vec!["copy", "--pull", source, "out", "-e", "fleet"];
    argv.extend_from_slice(extra);
    argv.extend(flags.iter().map(String::as_str));
    test.run(&argv)
}

/// Every file under `dir`, relative, hidden temporary files included.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap_or(&p).display().to_string())
        .collect();
    found.sort();
    found
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let kind = entry.file_type().expect("type");
        if kind.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_pull_copies_files_and_folders_only_and_says_what_it_skips() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let planted = Planted::new("pull");
    // A set-user-id file and a folder anyone can write, on the host: on the controller, where
    // root writes them, neither bit survives.
    as_plain_user(&format!(
        "chmod 4775 {d}/ok.log && chmod 0777 {d}/sub",
        d = planted.dir
    ));
    let out = pull(&test, &fleet, &planted.dir, &[]);
    out.status(0)
        .stdout_has(&format!(
            "skipped {}/z.log: it is a link to /dev/zero: not followed",
            planted.dir
        ))
        .stdout_has(&format!(
            "skipped {}/v.log: it is a link to {}: not followed",
            planted.dir,
            planted.secret.display()
        ))
        .stdout_has(&format!("skipped {}/loop: it is a link to .", planted.dir))
        .stdout_has(&format!(
            "skipped {}/fifo: it is a FIFO: not copied",
            planted.dir
        ))
        .stdout_has("(2 files, 10 B, 4 skipped)");
    let copy = test.path().join("out/host-0").join(planted.name());
    assert_eq!(files_under(&copy), ["ok.log", "sub/inner.log"]);
    assert_eq!(
        test.read(&format!("out/host-0/{}/ok.log", planted.name())),
        "fine\n"
    );
    let mode = |p: std::path::PathBuf| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).expect("stat").permissions())
            & 0o7777
    };
    assert_eq!(
        mode(copy.join("ok.log")),
        0o755,
        "set-user-id or group write kept"
    );
    assert_eq!(mode(copy.join("sub")), 0o755, "a folder anyone can write");

    // A link named as the source itself is refused, with the way to opt in.
    let link = format!("{}/v.log", planted.dir);
    pull(&test, &fleet, &link, &[])
        .status(1)
        .stdout_has("is a link to")
        .stdout_has("--follow-links");
    assert!(!test.path().join("out/host-0/v.log").exists());

    // --follow-links opts in: the secret comes (root logs in here), the device and the FIFO
    // still do not, and the loop is cut after one round.
    let fresh = Test::with_config(&fleet.config());
    let out = pull(&fresh, &fleet, &planted.dir, &["--follow-links"]);
    out.status(0)
        .stdout_has(&format!(
            "skipped {}/z.log: it is a character device: not copied",
            planted.dir
        ))
        .stdout_has(&format!(
            "skipped {}/loop: it leads back to {}",
            planted.dir, planted.dir
        ))
        .stdout_has(&format!("skipped {}/fifo: it is a FIFO", planted.dir));
    let copy = fresh.path().join("out/host-0").join(planted.name());
    assert_eq!(files_under(&copy), ["ok.log", "sub/inner.log", "v.log"]);
}

#[test]
fn max_size_stops_a_pull_and_leaves_no_partial_file() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let planted = Planted::new("size");
    as_plain_user(&format!(
        "head -c 3000000 /dev/urandom > {}/sub/big.bin",
        planted.dir
    ));
    let out = pull(&test, &fleet, &planted.dir, &["--max-size", "1M"]);
    out.status(1)
        .stdout_has("more than 1 MiB from this host (--max-size");
    let copy = test.path().join("out/host-0").join(planted.name());
    let left = files_under(&copy);
    assert!(
        !left.iter().any(|f| f.contains("big.bin")),
        "a partial file stayed: {left:?}"
    );
    pull(&test, &fleet, &planted.dir, &["--max-size", "ten"])
        .status(2)
        .stderr_has("no size");
}

#[test]
fn one_ctrl_c_stops_a_pull_at_once_and_leaves_no_partial_file() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let planted = Planted::new("int");
    // 40 GiB of holes: nothing on the host's disk, an endless stream to the controller.
    as_plain_user(&format!("truncate -s 40G {}/sub/huge.bin", planted.dir));
    let flags = ssh_flags(&fleet);
    let mut argv = vec![
        "copy",
        "--pull",
        planted.dir.as_str(),
        "out",
        "-e",
        "fleet",
        "--max-size",
        "100G",
    ];
    argv.extend(flags.iter().map(String::as_str));
    let mut child = test
        .command(&argv)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("weft starts");
    let copy = test.path().join("out/host-0").join(planted.name());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !files_under(&copy)
        .iter()
        .any(|f| f.contains(".huge.bin.weft-"))
    {
        assert!(Instant::now() < deadline, "the big file never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "one Ctrl-C did not stop the download"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stdout).expect("stdout");
    }
    assert_ne!(status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("interrupted"), "{stdout}");
    let left = files_under(&copy);
    assert!(
        !left.iter().any(|f| f.contains("huge.bin")),
        "a partial file stayed: {left:?}"
    );
}

#[test]
fn a_local_pull_skips_links_and_fifos_too() {
    let test = Test::with_config("[project]\nname = \"t\"\n");
    let host = tempfile::tempdir().expect("dir");
    let logs = host.path().join("logs");
    std::fs::create_dir_all(logs.join("sub")).expect("dir");
    std::fs::write(logs.join("ok.log"), "fine\n").expect("ok");
    std::fs::write(logs.join("sub/inner.log"), "deep\n").expect("inner");
    let secret = host.path().join("secret");
    std::fs::write(&secret, "root only\n").expect("secret");
    std::os::unix::fs::symlink("/dev/zero", logs.join("z.log")).expect("z");
    std::os::unix::fs::symlink(&secret, logs.join("v.log")).expect("v");
    std::os::unix::fs::symlink(".", logs.join("loop")).expect("loop");
    let fifo = Command::new("mkfifo")
        .arg(logs.join("fifo"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    let source = logs.display().to_string();
    let out = test.run(&["copy", "--pull", &source, "out"]);
    out.status(0)
        .stdout_has("z.log: it is a link to /dev/zero: not followed")
        .stdout_has("v.log: it is a link to")
        .stdout_has("fifo: it is a FIFO: not copied")
        .stdout_has("4 skipped");
    let copied: Vec<PathBuf> = walk(&test.path().join("out"));
    let mut names: Vec<String> = copied
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["inner.log", "ok.log"], "{out:#?}");

    let out = test.run(&["copy", "--pull", &source, "all", "--follow-links"]);
    out.status(0)
        .stdout_has("z.log: it is a character device: not copied")
        .stdout_has("loop: it leads back to");
    assert!(walk(&test.path().join("all"))
        .iter()
        .any(|p| p.ends_with("v.log")
            && std::fs::read_to_string(p).ok().as_deref() == Some("root only\n")));

    std::fs::write(logs.join("sub/big.bin"), vec![7u8; 3_000_000]).expect("big");
    test.run(&["copy", "--pull", &source, "capped", "--max-size", "1M"])
        .status(1)
        .stdout_has("more than 1 MiB");
    assert!(!walk(&test.path().join("capped"))
        .iter()
        .any(|p| p.to_string_lossy().contains("big.bin")));
}
