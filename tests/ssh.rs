//! The SSH connector against real OpenSSH sshd hosts: fan-out, host keys, unreachable hosts,
//! big uploads, sudo, ProxyJump and dropped connections.

use std::process::Command;

use crate::fleet::Fleet;
use crate::harness::{Outcome, Test};

fn ssh_flags(fleet: &Fleet) -> Vec<String> {
    vec![
        "-i".into(),
        fleet.key(),
        "--known-hosts".into(),
        fleet.known_hosts(),
    ]
}

fn args<'a>(base: &[&'a str], extra: &'a [String]) -> Vec<&'a str> {
    base.iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .collect()
}

#[test]
fn exec_without_a_project_prints_one_prefixed_line_per_host() {
    let fleet = Fleet::start(3);
    let test = Test::new();
    let flags = ssh_flags(&fleet);
    let addresses: Vec<String> = (0..3).map(|i| fleet.address(i, "root")).collect();
    let mut argv = vec!["exec"];
    for a in &addresses {
        argv.extend(["-H", a.as_str()]);
    }
    let mut argv = args(&argv, &flags);
    argv.extend(["--", "echo", "up:$(id -u)"]);
    let out = test.run(&argv);
    out.status(0).stdout_has("summary: 3 ok");
    for a in &addresses {
        out.stdout_has(&format!("{a} | up:0"));
    }
}

#[test]
fn a_goal_runs_on_every_host_of_the_env() {
    let fleet = Fleet::start(3);
    let test = Test::with_config(&fleet.config());
    let out_dir = test.path().join("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    test.write(
        "deploy/mark.rhai",
        &format!(
            "/// Marks each host.\nfn mark_host(host, text) {{\n    host.write_file(`{}/${{host.name}}.txt`, text);\n    host.run(\"hostname\");\n}}\n",
            out_dir.display()
        ),
    );
    let flags = ssh_flags(&fleet);
    let out = test.run(&args(&["run", "mark_host", "hello", "-e", "fleet"], &flags));
    out.status(0)
        .stdout_has("summary: 0 ok, 3 changed, 0 failed");
    for host in &fleet.hosts {
        assert_eq!(
            std::fs::read_to_string(out_dir.join(format!("{}.txt", host.name))).expect("marker"),
            "hello"
        );
        out.stdout_has(&format!("{} | changed: file", host.name));
    }
    // Idempotent over SSH too.
    test.run(&args(&["run", "mark_host", "hello", "-e", "fleet"], &flags))
        .status(0)
        .stdout_has("summary: 3 ok, 0 changed");
}

#[test]
fn a_changed_host_key_stops_that_host_only() {
    let fleet = Fleet::start(3);
    let test = Test::with_config(&fleet.config());
    // Give host-1 someone else's key in a known_hosts file of our own.
    let known = std::fs::read_to_string(fleet.known_hosts()).expect("known_hosts");
    let lines: Vec<&str> = known.lines().collect();
    let foreign_key = lines[0].split_once(' ').expect("key").1;
    let port1 = fleet.hosts[1].port;
    let tampered = format!(
        "{}\n[127.0.0.1]:{port1} {foreign_key}\n{}\n",
        lines[0], lines[2]
    );
    test.write("known_hosts", &tampered);
    let known_path = test.path().join("known_hosts").display().to_string();
    let marker_dir = test.path().join("ran");
    std::fs::create_dir_all(&marker_dir).expect("dir");
    test.write(
        "deploy/m.rhai",
        &format!(
            "/// Marks.\nfn m_mark(host) {{ host.write_file(`{}/${{host.name}}`, \"x\"); }}\n",
            marker_dir.display()
        ),
    );
    let key = fleet.key();
    let out = test.run(&[
        "run",
        "m_mark",
        "-e",
        "fleet",
        "-i",
        &key,
        "--known-hosts",
        &known_path,
    ]);
    out.status(1)
        .stdout_has("summary: 0 ok, 2 changed, 0 failed, 1 unreachable")
        .stderr_has(&format!("does not match the one in {known_path}:2"))
        .stderr_has(&format!(
            "ssh-keygen -f {known_path} -R '[127.0.0.1]:{port1}'"
        ));
    assert!(marker_dir.join("host-0").exists() && marker_dir.join("host-2").exists());
    assert!(
        !marker_dir.join("host-1").exists(),
        "the goal ran on a host with a changed key"
    );
}

#[test]
fn unknown_keys_are_refused_unless_accept_new_records_them() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let key = fleet.key();
    let address = fleet.address(0, "root");
    let empty = test.path().join("known_hosts").display().to_string();
    test.run(&[
        "exec",
        "-H",
        &address,
        "-i",
        &key,
        "--known-hosts",
        &empty,
        "--",
        "true",
    ])
    .status(1)
    .stderr_has("is not known")
    .stderr_has("--host-key-policy accept-new");
    test.run(&[
        "exec",
        "-H",
        &address,
        "-i",
        &key,
        "--known-hosts",
        &empty,
        "--host-key-policy",
        "accept-new",
        "--",
        "true",
    ])
    .status(0);
    let recorded = std::fs::read_to_string(&empty).expect("recorded");
    assert!(
        recorded.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", fleet.hosts[0].port)),
        "{recorded}"
    );
    test.run(&[
        "exec",
        "-H",
        &address,
        "-i",
        &key,
        "--known-hosts",
        &empty,
        "--",
        "true",
    ])
    .status(0);
}

#[test]
fn accept_new_keeps_a_known_hosts_last_line_that_lacks_its_newline() {
    let fleet = Fleet::start(2);
    let test = Test::new();
    let key = fleet.key();
    // host-0's line as a hand edit may leave it: no final newline.
    let port0 = format!("[127.0.0.1]:{} ", fleet.hosts[0].port);
    let known = std::fs::read_to_string(fleet.known_hosts()).expect("known_hosts");
    let line = known
        .lines()
        .find(|l| l.starts_with(&port0))
        .expect("host-0 line");
    let file = test.path().join("known_hosts");
    std::fs::write(&file, line.trim_end()).expect("write known_hosts");
    let file = file.display().to_string();
    let (first, second) = (fleet.address(0, "root"), fleet.address(1, "root"));
    let base = ["exec", "-i", &key, "--known-hosts", &file];
    test.run(&args(
        &base,
        &[
            "-H".into(),
            second.clone(),
            "--host-key-policy".into(),
            "accept-new".into(),
            "--".into(),
            "true".into(),
        ],
    ))
    .status(0);
    test.run(&args(
        &base,
        &[
            "-H".into(),
            first,
            "-H".into(),
            second,
            "--".into(),
            "true".into(),
        ],
    ))
    .status(0);
}

#[test]
fn an_unreachable_host_does_not_stop_the_others() {
    let fleet = Fleet::start(2);
    let test = Test::new();
    let flags = ssh_flags(&fleet);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let dead = format!(
        "root@127.0.0.1:{}",
        closed.local_addr().expect("addr").port()
    );
    drop(closed);
    let (a, b) = (fleet.address(0, "root"), fleet.address(1, "root"));
    let mut argv = args(
        &[
            "exec",
            "-H",
            &a,
            "-H",
            &dead,
            "-H",
            &b,
            "--connect-timeout",
            "2",
        ],
        &flags,
    );
    argv.extend(["--", "echo", "alive"]);
    let out = test.run(&argv);
    out.status(1)
        .stdout_has("summary: 2 ok, 0 changed, 0 failed, 1 unreachable")
        .stdout_has(&format!("{a} | alive"))
        .stdout_has(&format!("{b} | alive"))
        .stdout_has("Connection refused");
}

#[test]
fn max_fail_stops_starting_hosts() {
    let fleet = Fleet::start(3);
    let test = Test::with_config(&fleet.config());
    let flags = ssh_flags(&fleet);
    let mut argv = args(
        &["exec", "-e", "fleet", "-p", "1", "--max-fail", "0"],
        &flags,
    );
    argv.extend(["--", "false"]);
    test.run(&argv).status(1).stdout_has("1 failed, 2 skipped");
}

#[test]
fn a_64_mib_upload_arrives_whole_and_is_skipped_when_unchanged() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let data: Vec<u8> = (0..64u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(test.path().join("big.bin"), &data).expect("write");
    let dest = test.path().join("remote");
    std::fs::create_dir_all(&dest).expect("dest");
    let dest_file = dest.join("big.bin").display().to_string();
    let flags = ssh_flags(&fleet);
    let address = fleet.address(0, "root");
    let argv = args(&["copy", "big.bin", &dest_file, "-H", &address], &flags);
    test.run(&argv).status(0).stdout_has("changed: file");
    let sum = |path: &str| {
        let out = Command::new("sha256sum")
            .arg(path)
            .output()
            .expect("sha256sum");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        sum(&dest_file),
        sum(&test.path().join("big.bin").display().to_string())
    );
    test.run(&argv)
        .status(0)
        .stdout_has("summary: 1 ok, 0 changed");
}

#[test]
fn a_dropped_connection_never_leaves_a_partial_file() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let big = test.path().join("huge.bin");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(1024 * 1024 * 1024).expect("sparse file");
    let dest = test.path().join("remote");
    std::fs::create_dir_all(&dest).expect("dest");
    std::fs::write(dest.join("huge.bin"), "previous release\n").expect("old");
    let dest_file = dest.join("huge.bin").display().to_string();
    let flags = ssh_flags(&fleet);
    let address = fleet.address(0, "root");
    let argv = args(&["copy", "huge.bin", &dest_file, "-H", &address], &flags);
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(&argv)
        .current_dir(test.path())
        .env("HOME", test.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("weft starts");
    // Wait until the temporary file is being written, then cut the connection.
    let started = std::time::Instant::now();
    loop {
        let writing = std::fs::read_dir(&dest)
            .expect("list")
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".huge.bin.weft-")
                    && e.metadata().is_ok_and(|m| m.len() > 0)
            });
        if writing {
            break;
        }
        assert!(started.elapsed().as_secs() < 30, "the upload never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    fleet.drop_connections(0);
    let status = child.wait().expect("weft ends");
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&dest_file).expect("target"),
        "previous release\n"
    );
    // The next upload to the same place finishes and leaves nothing else behind.
    std::fs::write(&big, "new release\n").expect("small");
    test.run(&argv).status(0);
    assert_eq!(
        std::fs::read_to_string(&dest_file).expect("target"),
        "new release\n"
    );
    let names: Vec<String> = std::fs::read_dir(&dest)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["huge.bin"]);
}

#[test]
fn sudo_runs_as_root_and_the_password_is_masked() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let flags = ssh_flags(&fleet);
    let password = fleet.sudo_password();
    let address = fleet.address(0, "weft-test");
    let mut argv = args(&["exec", "-H", &address, "--become"], &flags);
    argv.extend(["--", "echo", "uid=$(id -u)", &password]);
    let out = test.run_with(&argv, &[("WEFT_SUDO_PASSWORD", &password)]);
    out.status(0).stdout_has("uid=0 ********");
    assert!(
        !out.stdout.contains(&password),
        "the sudo password was printed: {}",
        out.stdout
    );

    // Under --become, files are read and written as root too, in places the login cannot.
    let target = format!("/root/weft-become-{}.txt", std::process::id());
    test.write("weft.toml", "[project]\nname = \"b\"\n");
    test.write(
        "deploy/b.rhai",
        &format!("/// Root file.\nfn b_root(host) {{ host.file(\"{target}\", #{{ content: \"secret plan\\n\", mode: \"0600\" }}); host.upload(\"weft.toml\", \"{target}.toml\"); }}\n"),
    );
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let become_argv = [
        "run",
        "b_root",
        "-H",
        &address,
        "--become",
        "-i",
        &key,
        "--known-hosts",
        &known,
    ];
    let run_become = || test.run_with(&become_argv, &[("WEFT_SUDO_PASSWORD", &password)]);
    run_become().status(0).stdout_has("changed: file");
    assert_eq!(
        std::fs::read_to_string(&target).expect("root file"),
        "secret plan\n"
    );
    let meta = std::fs::metadata(&target).expect("meta");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    run_become()
        .status(0)
        .stdout_has("summary: 1 ok, 0 changed");
    let uploaded = std::fs::metadata(format!("{target}.toml")).expect("uploaded under --become");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&uploaded), 0);
    let _ = std::fs::remove_file(&target);
    let _ = std::fs::remove_file(format!("{target}.toml"));

    // Without --become the same login is a plain user.
    let mut argv = args(&["exec", "-H", &address], &flags);
    argv.extend(["--", "id", "-u"]);
    let out = test.run(&argv);
    out.status(0).stdout_lacks(&format!("{address} | 0\n"));
}

#[test]
fn proxy_jump_reaches_a_host_through_another() {
    let fleet = Fleet::start(2);
    let test = Test::new();
    let (jump, target) = (fleet.hosts[0].port, fleet.hosts[1].port);
    test.write(
        "ssh_config",
        &format!(
            "Host inner\n  HostName 127.0.0.1\n  Port {target}\n  User root\n  ProxyJump root@127.0.0.1:{jump}\n"
        ),
    );
    exec_with_config(&test, &fleet, "root@inner", "via-jump")
        .status(0)
        .stdout_has("root@inner | via-jump");
    // Without the jump host the target cannot be reached this way.
    fleet.stop_host(0);
    exec_with_config(&test, &fleet, "root@inner", "via-jump")
        .status(1)
        .stdout_has("1 unreachable");
}

/// `weft exec -H host -- echo word` with the test's `ssh_config` and the fleet's key.
fn exec_with_config(test: &Test, fleet: &Fleet, host: &str, word: &str) -> Outcome {
    let config = test.path().join("ssh_config").display().to_string();
    let (key, known) = (fleet.key(), fleet.known_hosts());
    test.run(&[
        "exec",
        "-H",
        host,
        "-F",
        &config,
        "-i",
        &key,
        "--known-hosts",
        &known,
        "--",
        "echo",
        word,
    ])
}

#[test]
fn kex_algorithms_and_ciphers_from_the_ssh_config_are_what_weft_offers() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let port = fleet.hosts[0].port;
    let exec = |lines: &str| {
        test.write(
            "ssh_config",
            &format!("Host box\n  HostName 127.0.0.1\n  Port {port}\n{lines}"),
        );
        exec_with_config(&test, &fleet, "root@box", "in")
    };
    // What OpenSSH 9.2's sshd accepts: the login works.
    exec("  KexAlgorithms ecdh-sha2-nistp256\n  Ciphers aes128-ctr\n")
        .status(0)
        .stdout_has("root@box | in");
    // Algorithms this sshd no longer accepts: offering only them fails the login, which shows
    // weft offered what the config says (its defaults would have worked).
    exec("  KexAlgorithms diffie-hellman-group14-sha1\n")
        .status(1)
        .stdout_has("1 unreachable");
    exec("  Ciphers aes128-cbc\n")
        .status(1)
        .stdout_has("1 unreachable");
    exec("  Ciphers -aes*\n")
        .status(0)
        .stdout_has("root@box | in");
    // A name weft does not implement stops the run before any host, naming the line's keyword.
    let out = exec("  KexAlgorithms sntrup4591761x25519-sha512@tinyssh.org\n");
    assert_ne!(out.code, 0);
    out.stderr_has("KexAlgorithms")
        .stderr_has("sntrup4591761x25519-sha512@tinyssh.org")
        .stderr_has("ssh_config")
        .stdout_lacks("root@box | in");
}

#[test]
fn targets_behind_one_jump_host_share_one_connection_to_it() {
    let fleet = Fleet::start(3);
    let test = Test::new();
    let jump = fleet.hosts[0].port;
    // Eight targets (four names for each of two hosts) behind one bastion.
    let mut config = String::new();
    let mut hosts = Vec::new();
    for i in 0..8 {
        let port = fleet.hosts[1 + i % 2].port;
        config.push_str(&format!(
            "Host inner{i}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  ProxyJump root@127.0.0.1:{jump}\n"
        ));
        hosts.push(format!("root@inner{i}"));
    }
    test.write("ssh_config", &config);
    let config = test.path().join("ssh_config").display().to_string();
    let key = fleet.key();
    let known = fleet.known_hosts();
    let mut argv = vec!["-v", "exec"];
    for host in &hosts {
        argv.extend(["-H", host.as_str()]);
    }
    argv.extend([
        "-F",
        &config,
        "-i",
        &key,
        "--known-hosts",
        &known,
        "--",
        "echo",
        "via-jump",
    ]);
    let out = test.run(&argv);
    out.status(0).stdout_has("8 ok");
    let to_jump = format!("connecting to root@127.0.0.1:{jump}");
    assert_eq!(
        out.stderr.matches(&to_jump).count(),
        1,
        "one connection to the bastion for all eight targets:\n{}",
        out.stderr
    );
}

/// Over a real link (issue 33): hosts in a network namespace 40 ms away, losing 1% of packets
/// each way, behind one jump host. A goal on all of them succeeds everywhere, and the jump
/// host's own sshd log shows one connection for the whole run.
#[test]
fn hosts_behind_a_jump_host_over_a_lossy_link_are_all_reached_through_one_connection() {
    let fleet = Fleet::start_behind_jump_host(24, 40, 1);
    let test = Test::with_config(&fleet.config());
    // The hosts share this machine's files: each writes its own file into the test's folder.
    let folder = test.path().join("written");
    std::fs::create_dir(&folder).expect("folder");
    test.write(
        "deploy/probe.rhai",
        &format!(
            "/// Probe.\nfn probe(host) {{ host.run(\"uname -s\"); host.file(\"{}/\" + host.name, #{{ content: \"x\" }}); }}\n",
            folder.display()
        ),
    );
    let (key, known, config) = (fleet.key(), fleet.known_hosts(), fleet.path("ssh_config"));
    let out = test.run(&[
        "run",
        "probe",
        "-e",
        "fleet",
        "-i",
        &key,
        "--known-hosts",
        &known,
        "-F",
        &config,
    ]);
    out.status(0)
        .stdout_has("summary: 0 ok, 24 changed, 0 failed");
    assert_eq!(std::fs::read_dir(&folder).expect("folder").count(), 24);
    assert_eq!(fleet.jump_connections(), 1, "{}", out.stdout);
}

#[test]
fn weft_ssh_runs_one_command_and_returns_its_code() {
    let fleet = Fleet::start(2);
    let config = fleet.config() + "roles = { web = [\"host-0\", \"host-1\"] }\n";
    let test = Test::with_config(&config);
    let key = fleet.key();
    let known = fleet.known_hosts();
    let out = test.run(&[
        "ssh",
        "web",
        "-o",
        "-1",
        "-e",
        "fleet",
        "-i",
        &key,
        "--known-hosts",
        &known,
        "--",
        "echo",
        "last;",
        "exit",
        "3",
    ]);
    out.status(3).stdout_has("last");
    test.run(&["ssh", "web", "-o", "5", "-e", "fleet", "--", "true"])
        .status(2)
        .stderr_has("ordinal 5 is out of range");
}

/// Runs `weft args` with `input` on its standard input; returns the exit code, stdout, stderr.
fn run_fed(test: &Test, args: &[&str], input: &[u8]) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    use std::io::Write;
    let mut child = test
        .command(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("weft starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Fed from a thread: the output is read meanwhile, so no pipe fills up both ways.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("weft ends");
    feeder.join().expect("feeder");
    (out.status.code(), out.stdout, out.stderr)
}

#[test]
fn weft_ssh_passes_input_to_the_command_and_bytes_back_unchanged() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let flags = ssh_flags(&fleet);
    let base = ["ssh", "host-0", "-e", "fleet"];
    // Every byte value, several times over, with no newline at the end.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(256 * 400 + 7).collect();
    let mut argv = args(&base, &flags);
    argv.extend(["--", "cat"]);
    let (code, stdout, _) = run_fed(&test, &argv, &bytes);
    assert_eq!(code, Some(0));
    assert!(
        stdout == bytes,
        "cat returned {} bytes, not the {} sent",
        stdout.len(),
        bytes.len()
    );
    // Standard error comes back as bytes too, and the exit code still passes through.
    let mut argv = args(&base, &flags);
    argv.extend(["--", "cat", ">&2;", "exit", "4"]);
    let (code, stdout, stderr) = run_fed(&test, &argv, &bytes);
    assert_eq!(code, Some(4));
    assert!(stdout.is_empty());
    assert!(
        stderr == bytes,
        "stderr had {} bytes, not {}",
        stderr.len(),
        bytes.len()
    );
    // Input reaches a command that reads a line; one that reads none is no error.
    let mut argv = args(&base, &flags);
    argv.extend(["--", "read", "l;", "echo", "got:$l"]);
    let (code, stdout, _) = run_fed(&test, &argv, b"hi\n");
    assert_eq!((code, stdout.as_slice()), (Some(0), &b"got:hi\n"[..]));
    let mut argv = args(&base, &flags);
    argv.extend(["--", "echo", "done"]);
    let (code, stdout, _) = run_fed(&test, &argv, &bytes);
    assert_eq!((code, stdout.as_slice()), (Some(0), &b"done\n"[..]));
}

/// Makes a key pair of `kind` in `dir`, optionally encrypted, and lets it log in to the fleet.
fn authorize_new_key(fleet: &Fleet, dir: &std::path::Path, kind: &str, passphrase: &str) -> String {
    let key = dir.join(format!("id_{kind}"));
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let mut authorized = std::fs::OpenOptions::new()
        .append(true)
        .open(fleet.path("authorized_keys"))
        .expect("authorized_keys");
    std::io::Write::write_all(&mut authorized, public.as_bytes()).expect("append");
    key.display().to_string()
}

#[test]
fn rsa_ecdsa_and_encrypted_keys_log_in() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let address = fleet.address(0, "root");
    let known = fleet.known_hosts();
    for kind in ["rsa", "ecdsa"] {
        let key = authorize_new_key(&fleet, test.path(), kind, "");
        test.run(&[
            "exec",
            "-H",
            &address,
            "-i",
            &key,
            "--known-hosts",
            &known,
            "--",
            "echo",
            kind,
        ])
        .status(0)
        .stdout_has(&format!("| {kind}"));
    }
    let key = authorize_new_key(&fleet, test.path(), "ed25519", "sesame");
    let unlock = [
        "exec",
        "-H",
        &address,
        "-i",
        &key,
        "--known-hosts",
        &known,
        "--",
        "echo",
        "unlocked",
    ];
    test.run_with(&unlock, &[("WEFT_SSH_PASSPHRASE", "sesame")])
        .status(0)
        .stdout_has("| unlocked");
    test.run_with(&unlock, &[("WEFT_SSH_PASSPHRASE", "wrong")])
        .status(2)
        .stderr_has("cannot load the identity");
}

#[test]
fn keys_held_by_ssh_agent_log_in() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let key = authorize_new_key(&fleet, test.path(), "ed25519", "");
    let (socket_text, agent_pid) = start_agent(test.path());
    let added = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket_text)
        .output()
        .expect("ssh-add");
    assert!(added.status.success());
    std::fs::remove_file(&key).expect("only the agent holds the key now");
    let address = fleet.address(0, "root");
    let known = fleet.known_hosts();
    let out = test.run_with(
        &[
            "exec",
            "-H",
            &address,
            "--known-hosts",
            &known,
            "--",
            "echo",
            "agent-ok",
        ],
        &[("SSH_AUTH_SOCK", &socket_text)],
    );
    let _ = Command::new("kill").arg(&agent_pid).status();
    out.status(0).stdout_has("| agent-ok");
}

#[test]
fn copy_pull_fetches_a_file_from_every_host() {
    let fleet = Fleet::start(2);
    let test = Test::with_config(&fleet.config());
    let source = test.path().join("remote-report.txt");
    std::fs::write(&source, "report\n").expect("write");
    let flags = ssh_flags(&fleet);
    let source_text = source.display().to_string();
    test.run(&args(
        &["copy", "--pull", &source_text, "fetched", "-e", "fleet"],
        &flags,
    ))
    .status(0)
    .stdout_has("downloaded");
    for host in &fleet.hosts {
        assert_eq!(
            test.read(&format!("fetched/{}/remote-report.txt", host.name)),
            "report\n"
        );
    }
}

#[test]
fn serial_batches_finish_before_the_next_starts_and_json_masks_secrets() {
    let fleet = Fleet::start(4);
    let test = Test::with_config(&fleet.config());
    let flags = ssh_flags(&fleet);
    let mut argv = args(&["exec", "-e", "fleet", "--serial", "2", "--json"], &flags);
    argv.extend([
        "--",
        "echo",
        "start $(date +%s%N); sleep 0.3; echo end $(date +%s%N); printf 's3cr\\042et\\n'",
    ]);
    let out = test.run_with(&argv, &[("WEFT_SUDO_PASSWORD", "s3cr\"et")]);
    out.status(0);
    let stdout = &out.stdout;
    // The secret `s3cr"et`, as JSON writes it, is never there; its mask is.
    assert!(
        !stdout.contains("s3cr\\\"et"),
        "a secret reached the JSON output: {stdout}"
    );
    assert!(stdout.contains(r#""line":"********""#), "{stdout}");
    let mut spans: Vec<(String, u128, u128)> = Vec::new();
    for host in &fleet.hosts {
        let times: Vec<u128> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["host"] == host.name.as_str() && e["event"] == "output")
            .filter_map(|e| e["line"].as_str()?.split_whitespace().nth(1)?.parse().ok())
            .collect();
        assert_eq!(times.len(), 2, "{stdout}");
        spans.push((host.name.clone(), times[0], times[1]));
    }
    // host-0 and host-1 form the first batch: both end before host-2 or host-3 starts.
    let first_end = spans[..2].iter().map(|s| s.2).max().unwrap_or_default();
    let second_start = spans[2..].iter().map(|s| s.1).min().unwrap_or_default();
    assert!(first_end <= second_start, "batches overlapped: {spans:?}");
}

#[test]
fn the_sudo_password_never_reaches_a_command_that_sudo_did_not_ask_it_for() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let flags = ssh_flags(&fleet);
    let password = fleet.sudo_password();
    // root's sudo does not prompt: the password must not become the command's input.
    let sink = format!("/tmp/weft-sudo-input-{}", std::process::id());
    let address = fleet.address(0, "root");
    let mut argv = args(
        &[
            "exec",
            "-H",
            &address,
            "--become",
            "--become-user",
            "nobody",
        ],
        &flags,
    );
    let command = format!("cat > {sink}; echo done");
    argv.extend(["--", command.as_str()]);
    test.run_with(&argv, &[("WEFT_SUDO_PASSWORD", &password)])
        .status(0)
        .stdout_has("done");
    let got = std::fs::read_to_string(&sink).expect("the command ran");
    let _ = std::fs::remove_file(&sink);
    assert!(
        !got.contains(&password),
        "the command read the sudo password"
    );
    // A sudo that prompts still gets it, and the command still gets its own input.
    test.write("weft.toml", "[project]\nname = \"s\"\n");
    test.write(
        "deploy/s.rhai",
        "/// Input.\nfn s_input(host) { let r = host.run(\"cat; echo uid=$(id -u)\", #{ stdin: \"mine\\n\" }); log(r.stdout); }\n",
    );
    let login = fleet.address(0, "weft-test");
    let run_argv = args(&["run", "s_input", "-H", &login, "--become"], &flags);
    let out = test.run_with(&run_argv, &[("WEFT_SUDO_PASSWORD", &password)]);
    // The command read its own input, and ran as root (`--become`), not as the login user.
    out.status(0).stdout_has("mine").stdout_has("uid=0");
    assert!(!out.stdout.contains(&password));
}

/// A new key pair in the test's folder (`stranger`), which no host accepts.
fn stranger_key(test: &Test) -> std::path::PathBuf {
    let key = test.path().join("stranger");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    key
}

#[test]
fn a_refused_login_names_the_host_once_as_written() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    // A key the host does not know.
    let stranger = stranger_key(&test);
    let address = fleet.address(0, "root");
    let out = test.run(&[
        "exec",
        "-H",
        &address,
        "-i",
        &stranger.display().to_string(),
        "--known-hosts",
        &fleet.known_hosts(),
        "--",
        "true",
    ]);
    out.status(1)
        .stdout_has(&format!("{address} refused every key offered"))
        .stdout_lacks("root@root@")
        .stdout_lacks("[127.0.0.1]");
}

#[test]
fn a_hundred_megabytes_of_output_stream_through_and_a_bounded_tail_is_kept() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    test.write(
        "deploy/big.rhai",
        "/// Floods.\nfn big_output(host) {\n    let r = host.run(\"head -c 100000000 /dev/zero; echo; echo last-line\", #{ quiet: true });\n    log(`kept ${r.stdout.len()} ends ${r.stdout.ends_with(\"last-line\\n\")} dropped ${r.stdout.starts_with(\"[weft: the first\")}`);\n}\n",
    );
    let flags = ssh_flags(&fleet);
    let out = test.run(&args(&["run", "big_output", "-e", "fleet"], &flags));
    out.status(0).stdout_has("ends true dropped true");
    let kept: usize = out
        .stdout
        .split("kept ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(kept < 17 * 1024 * 1024, "kept {kept} bytes");
}

#[test]
fn a_command_that_outlives_the_command_timeout_ends_and_its_session_closes() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let flags = ssh_flags(&fleet);
    let address = fleet.address(0, "root");
    let marker = format!("weft-timeout-{}", std::process::id());
    // A shell with a child: both must end, not only the top process.
    let nap = format!("sleep {}", 3000 + std::process::id() % 1000);
    let command = format!("sh -c '{nap}; :' {marker}");
    let started = std::time::Instant::now();
    let mut argv = args(&["exec", "-H", &address, "--command-timeout", "2"], &flags);
    argv.extend(["--", command.as_str()]);
    test.run(&argv).status(1).stdout_has("timed out after 2s");
    assert!(
        started.elapsed().as_secs() < 60,
        "the run did not end at the timeout"
    );
    // The command got TERM with its channel closed: nothing is left running on the host.
    assert!(ends(&marker), "the timed-out command is still running");
    assert!(ends(&nap), "the timed-out command's child is still running");
}

/// Whether no process matching `pattern` runs within 5 seconds.
fn ends(pattern: &str) -> bool {
    for _ in 0..50 {
        let left = Command::new("pgrep")
            .args(["-f", pattern])
            .output()
            .expect("pgrep");
        if !left.status.success() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[test]
fn a_script_timeout_beyond_the_clock_is_no_deadline() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    // 1e19 s is a valid duration, but past the latest instant the clock can hold.
    test.write(
        "deploy/far.rhai",
        "/// Waits forever, nearly.\nfn far_run(host) { host.run(\"echo far-done\", #{ timeout: 1e19 }); }\n",
    );
    let flags = ssh_flags(&fleet);
    test.run(&args(&["run", "far_run", "-e", "fleet"], &flags))
        .status(0)
        .stdout_has("far-done")
        .stderr_lacks("panicked");
}

#[test]
fn a_timeout_ends_the_command_but_not_what_an_earlier_command_left_running() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let id = std::process::id() % 1000;
    let (survivor, victim) = (
        format!("sleep {}", 5000 + id),
        format!("sleep {}", 6000 + id),
    );
    test.write(
        "deploy/nap.rhai",
        &format!(
            "/// Leaves one process running, then times out in another.\n\
             fn nap(host) {{\n\
             \x20   host.run(\"nohup {survivor} >/dev/null 2>&1 &\");\n\
             \x20   host.run(\"{victim}\", #{{ timeout: 2 }});\n\
             }}\n"
        ),
    );
    let flags = ssh_flags(&fleet);
    test.run(&args(&["run", "nap", "-e", "fleet"], &flags))
        .status(1)
        .stdout_has("timed out after 2s");
    assert!(ends(&victim), "the timed-out command is still running");
    let alive = Command::new("pgrep")
        .args(["-f", &survivor])
        .status()
        .expect("pgrep");
    let _ = Command::new("pkill").args(["-f", &survivor]).status();
    assert!(
        alive.success(),
        "a timeout ended what an earlier command started"
    );
}

/// Stops the sshd process serving the command's channel (the command's parent) from inside the
/// command, as a host that hangs mid-command would, and returns the file holding its pid.
fn stopping_command(fleet: &Fleet, name: &str) -> (String, String) {
    let pid_file = fleet.path(name);
    let command = format!("echo $PPID > {pid_file}; kill -STOP $PPID; echo after-stop");
    (command, pid_file)
}

/// Kills the stopped sshd process so the fleet can stop cleanly.
fn kill_stopped(pid_file: &str) {
    if let Ok(pid) = std::fs::read_to_string(pid_file) {
        let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
    }
}

#[test]
fn a_host_whose_sshd_session_is_stopped_ends_in_the_command_timeout() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let flags = ssh_flags(&fleet);
    let address = fleet.address(0, "root");
    let (command, pid_file) = stopping_command(&fleet, "stopped-pid");
    let started = std::time::Instant::now();
    let mut argv = args(&["exec", "-H", &address, "--command-timeout", "3"], &flags);
    argv.extend(["--", command.as_str()]);
    let out = test.run(&argv);
    let elapsed = started.elapsed();
    kill_stopped(&pid_file);
    out.status(1).stdout_has("timed out after 3s");
    assert!(
        std::path::Path::new(&pid_file).exists(),
        "the command never ran"
    );
    assert!(elapsed.as_secs() < 60, "the run did not end at the timeout");
}

#[test]
fn a_host_whose_sshd_session_is_stopped_is_given_up_by_keepalives() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let flags = ssh_flags(&fleet);
    let (command, pid_file) = stopping_command(&fleet, "stopped-pid");
    // A command first: the kept shell's answer to its greeting must reach weft before sshd
    // stops, or the host fails at the shell's start instead (the first command goes out with
    // the greeting and could stop sshd before it relays the answer).
    test.write(
        "deploy/stop.rhai",
        &format!(
            "/// Starts the shell, then stops sshd under it.\nfn stop_sshd(host) {{\n    host.run(\"true\");\n    host.run(\"{command}\");\n}}\n"
        ),
    );
    let started = std::time::Instant::now();
    // No --command-timeout: the default hour would stall the run; unanswered keepalives end it.
    let argv = args(&["run", "stop_sshd", "-e", "fleet"], &flags);
    let out = test.run(&argv);
    let elapsed = started.elapsed();
    kill_stopped(&pid_file);
    assert!(
        !out.stdout.contains("| after-stop"),
        "the stopped session relayed output: {}",
        out.stdout
    );
    out.status(1).stdout_has("lost while running");
    assert!(elapsed.as_secs() < 180, "the run did not end on keepalives");
}

#[test]
fn every_command_after_a_dropped_connection_fails_naming_the_host() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    // The first command cuts its own connection (as in the test below); the goal catches that
    // and goes on, so the next command meets a connection that is gone.
    test.write(
        "deploy/cut.rhai",
        &format!(
            "/// Goes on after a cut.\nfn cut_on(host) {{\n    try {{ host.run({cut:?}); }} catch (e) {{ log(\"caught\"); }}\n    host.run(\"echo after\");\n}}\n",
            cut = CUT_OWN_CONNECTION
        ),
    );
    let flags = ssh_flags(&fleet);
    let address = fleet.address(0, "root");
    test.run(&args(&["run", "cut_on", "-e", "fleet"], &flags))
        .status(1)
        .stdout_has("caught")
        .stdout_has(&format!(
            "connection to {address} is lost (it ended during an earlier step); `echo after` did \
             not run"
        ))
        .stdout_has("1 failed")
        .stdout_lacks("Channel send error")
        .stderr_lacks("Channel send error");
}

/// A command that kills the sshd process serving its own connection: the nearest ancestor
/// named sshd (the listening daemon, further up, stays).
const CUT_OWN_CONNECTION: &str = "p=$$; while [ \"$p\" -gt 1 ]; do case $(ps -o comm= -p \"$p\") in sshd*) kill -9 \"$p\"; break;; esac; p=$(ps -o ppid= -p \"$p\" | tr -d ' '); done; sleep 2";

#[test]
fn a_command_whose_connection_drops_says_so_and_that_it_may_still_run() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let flags = ssh_flags(&fleet);
    let address = fleet.address(0, "root");
    let argv = args(&["exec", "-H", &address], &flags);
    let mut argv = argv;
    argv.extend(["--", CUT_OWN_CONNECTION]);
    test.run(&argv)
        .status(1)
        .stdout_has(&format!("connection to {address} lost while running"))
        .stdout_has("may still be running")
        .stdout_lacks("exited with -1");
}

/// Starts ssh-agent on a socket in `dir`; returns the socket and the agent's pid.
fn start_agent(dir: &std::path::Path) -> (String, String) {
    let socket = dir.join("agent.sock");
    let agent = Command::new("ssh-agent")
        .arg("-a")
        .arg(&socket)
        .output()
        .expect("ssh-agent");
    assert!(agent.status.success());
    let pid = String::from_utf8_lossy(&agent.stdout)
        .split("SSH_AGENT_PID=")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or_default()
        .to_string();
    (socket.display().to_string(), pid)
}

#[test]
fn an_encrypted_default_key_held_by_the_agent_needs_no_terminal() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let ssh_dir = test.home().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).expect("~/.ssh");
    let key = authorize_new_key(&fleet, &ssh_dir, "ed25519", "");
    let (socket, agent_pid) = start_agent(test.path());
    let added = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .expect("ssh-add");
    assert!(added.status.success());
    // The file on disk is encrypted now; only the agent holds the key in clear.
    let encrypted = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", "sesame", "-f", &key])
        .status()
        .expect("ssh-keygen -p");
    assert!(encrypted.success());
    let address = fleet.address(0, "root");
    let known = fleet.known_hosts();
    let exec = [
        "exec",
        "-H",
        &address,
        "--known-hosts",
        &known,
        "--",
        "echo",
        "agent-ok",
    ];
    let with_agent = test.run_with(&exec, &[("SSH_AUTH_SOCK", &socket)]);
    let _ = Command::new("kill").arg(&agent_pid).status();
    with_agent
        .status(0)
        .stdout_has("| agent-ok")
        .stderr_lacks("passphrase");
    // Without the agent and without a terminal, the key is skipped with a note, and the host
    // is unreachable instead of the whole run failing to start.
    test.run(&exec)
        .status(1)
        .stderr_has("note: skipping identity")
        .stderr_has("there is no terminal to ask for its passphrase")
        .stdout_has("(encrypted, skipped)");
}

#[test]
fn interactive_weft_ssh_reaches_an_env_host_through_a_terminal_with_its_strict_key() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    // A known_hosts path with a space: OpenSSH must get it as one file.
    let known = test.path().join("my keys/known hosts");
    std::fs::create_dir_all(known.parent().expect("parent")).expect("mkdir");
    std::fs::copy(fleet.known_hosts(), &known).expect("copy known_hosts");
    let known = known.display().to_string();
    let key = fleet.key();
    let port = fleet.hosts[0].port;
    // The port the shell's server side sees, and a sum only the remote shell works out.
    let typed = "echo \"at:${SSH_CONNECTION##* } sum:$((6*7))\"; exit 3\n";
    test.run_in_terminal(
        &[
            "ssh",
            "host-0",
            "-e",
            "fleet",
            "-i",
            &key,
            "--known-hosts",
            &known,
        ],
        typed,
    )
    .status(3)
    .stdout_has(&format!("at:{port} sum:42"));
    // Strict checking: without the host's key weft's shell refuses, as `-- CMD` does.
    let empty = test.path().join("empty_known_hosts");
    std::fs::write(&empty, "").expect("empty known_hosts");
    test.run_in_terminal(
        &[
            "ssh",
            "host-0",
            "-e",
            "fleet",
            "-i",
            &key,
            "--known-hosts",
            &empty.display().to_string(),
        ],
        typed,
    )
    .status(255)
    .stdout_has("Host key verification failed")
    .stdout_lacks("sum:42");
}

#[test]
fn verbose_logs_show_the_ssh_handshake_of_a_failed_login_and_no_secret() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    // A key the host does not accept.
    let key = stranger_key(&test);
    let address = fleet.address(0, "root");
    let known = fleet.known_hosts();
    let key = key.display().to_string();
    let password = "sudo-pw-27182818";
    let exec = [
        "exec",
        "-H",
        &address,
        "-i",
        &key,
        "--known-hosts",
        &known,
        "--become",
        "--",
        "true",
    ];
    let quiet = test.run_with(&exec, &[("WEFT_SUDO_PASSWORD", password)]);
    quiet.status(1).stderr_lacks("russh");
    let out = test.run_with(
        &[&["-vv"][..], &exec[..]].concat(),
        &[("WEFT_SUDO_PASSWORD", password)],
    );
    out.status(1)
        .stderr_has("weft::ssh: connecting to root@127.0.0.1:")
        .stderr_has("russh::")
        .stderr_has("userauth_failure")
        .stderr_has(&format!("refused key {key}"))
        .stderr_lacks(password)
        .stdout_lacks(password);
    // RUST_LOG picks the same logs without -v.
    test.run_with(
        &exec,
        &[
            ("WEFT_SUDO_PASSWORD", password),
            ("RUST_LOG", "russh=debug"),
        ],
    )
    .status(1)
    .stderr_has("userauth_failure")
    .stderr_lacks("weft::ssh");
}

#[test]
fn timings_over_ssh_count_every_host_and_the_connections() {
    let fleet = Fleet::start(3);
    let test = Test::with_config(&fleet.config());
    let out_dir = test.path().join("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    test.write("payload.txt", "data\n");
    test.write(
        "deploy/t.rhai",
        &format!(
            "/// Times a little work.\nfn t_host(host) {{\n    let dir = `{}/${{host.name}}`;\n    host.run([\"mkdir\", \"-p\", dir]);\n    host.directory(dir + \"/d\");\n    host.upload(\"payload.txt\", dir + \"/payload.txt\");\n}}\n",
            out_dir.display()
        ),
    );
    let flags = ssh_flags(&fleet);
    let page = test.path().join("t.html");
    let page_arg = page.to_str().expect("utf-8");
    let out = test.run(&args(
        &[
            "run",
            "t_host",
            "-e",
            "fleet",
            "--timings",
            "--timings-html",
            page_arg,
        ],
        &flags,
    ));
    out.status(0).stdout_has("summary: 0 ok, 3 changed");
    // The page has a row per host, each with its connection, operations and upload.
    let html = std::fs::read_to_string(&page).expect("the page");
    let mut hosts = crate::run_local::page_hosts(&html);
    hosts.sort();
    assert_eq!(hosts, ["host-0", "host-1", "host-2"]);
    for host in &hosts {
        for kind in ["connect", "run", "directory", "upload"] {
            assert!(
                html.contains(&format!("<title>{host} · {kind} · ")),
                "{host} {kind}"
            );
        }
    }
    let mut rows = crate::run_local::timing_rows(&out.stdout);
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("goal".into(), "t_host".into(), 3),
            ("operation".into(), "connect".into(), 3),
            ("operation".into(), "directory".into(), 3),
            ("operation".into(), "run".into(), 3),
            ("operation".into(), "upload".into(), 3),
        ]
    );
    let out = test.run(&args(
        &["run", "t_host", "-e", "fleet", "--timings", "--json"],
        &flags,
    ));
    out.status(0);
    let last: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().expect("a line")).expect("json");
    assert_eq!(last["event"], "timings");
    let connect = last["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["name"] == "connect")
        .expect("a connect row");
    assert_eq!(connect["count"], 3);
    let slowest = connect["slowest_host"].as_str().expect("host");
    assert!(fleet.hosts.iter().any(|h| h.name == slowest), "{slowest}");
}

#[test]
fn the_progress_bar_on_a_terminal_shows_running_failed_hosts_and_uploads() {
    let fleet = Fleet::start(3);
    // A terminal as a person has one: without TERM, nothing draws a bar.
    let test = Test::with_config(&fleet.config()).with_env(vec![("TERM".into(), "xterm".into())]);
    let out_dir = test.path().join("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    std::fs::write(test.path().join("big.bin"), vec![7u8; 40_000_000]).expect("big file");
    test.write(
        "deploy/p.rhai",
        &format!(
            "/// Fails on host-0, copies a big file and waits on the others.\n\
             fn p_go(host) {{\n    if host.name == \"host-0\" {{ throw \"host-0 gives up\"; }}\n    \
             host.upload(\"big.bin\", \"{}/\" + host.name + \".bin\");\n    log(\"step two: waiting\");\n    host.run(\"sleep 2\");\n}}\n",
            out_dir.display()
        ),
    );
    let key = fleet.key();
    let known = fleet.known_hosts();
    let seen = test.run_in_terminal(
        &[
            "run",
            "p_go",
            "-e",
            "fleet",
            "-i",
            &key,
            "--known-hosts",
            &known,
        ],
        "",
    );
    assert_eq!(seen.code, 1, "{}", seen.stdout);
    // What the terminal showed, bar redraws included.
    seen.stdout_has("p_go")
        .stdout_has("1 failed")
        .stdout_has("running")
        .stdout_has("uploading 38.1 MiB to host-")
        // The goal's latest message is its current step.
        .stdout_has(": step two: waiting")
        .stdout_has("hosts");
    // Uploads went through whole.
    for host in ["host-1", "host-2"] {
        let copied = std::fs::metadata(out_dir.join(format!("{host}.bin"))).expect("copied");
        assert_eq!(copied.len(), 40_000_000);
    }
}

/// A goal that prints what each command of a host sees: whether the last one's variable or
/// folder leaked, output without a final newline, a failing command's code and stderr, and
/// the shell's PID (`$$`), which tells whether the commands shared one shell.
const SHELL_PROBE: &str = r#"/// Commands one after another.
fn probe_shell(host) {
    let a = host.run("weft_x=1; cd /; echo $$", #{ quiet: true });
    let b = host.run("echo \"${weft_x-unset} $(pwd) $$\"", #{ quiet: true });
    let c = host.run("printf 'no newline'", #{ quiet: true });
    let d = host.run("echo oops >&2; exit 3", #{ quiet: true, allow_fail: true });
    print(`first=${a.stdout}`);
    print(`second=${b.stdout}`);
    print(`third=[${c.stdout}]`);
    print(`fourth=${d.code} [${d.stderr}]`);
}
"#;

/// The two PIDs the probe printed, and whether everything else came out as with one shell per
/// command.
fn shell_pids(stdout: &str, home: &str) -> (String, String) {
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| {
                l.split_once(&format!("| {key}="))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
    };
    let first = field("first");
    let second = field("second");
    let (leaked, pid) = second
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("no pid in:\n{stdout}"));
    assert_eq!(leaked, format!("unset {home}"), "a command's state leaked");
    assert_eq!(field("third"), "[no newline]");
    assert_eq!(field("fourth"), "3 [oops");
    (first, pid.to_string())
}

#[test]
fn a_process_left_in_the_background_does_not_break_the_commands_after_it() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    test.write(
        "deploy/bg.rhai",
        r#"/// Leaves a chatty process behind, then runs many commands.
fn bg_chatty(host) {
    host.run("(for i in $(seq 3000); do echo spam; sleep 0.001; done) &", #{ quiet: true });
    let n = 0;
    for i in 0..500 {
        n += host.run("echo $((1 + 2))", #{ quiet: true }).stdout.len();
    }
    let last = host.run("echo 3; exit 4", #{ quiet: true, allow_fail: true });
    print(`ran=${n} code=${last.code}`);
}
"#,
    );
    let flags = ssh_flags(&fleet);
    let argv = args(&["run", "bg_chatty", "-e", "fleet"], &flags);
    test.run(&argv).status(0).stdout_has("code=4");
}

#[test]
fn commands_of_a_host_share_one_kept_shell_but_no_state_and_a_forced_command_gets_channels() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    test.write("deploy/probe.rhai", SHELL_PROBE);
    let flags = ssh_flags(&fleet);
    let argv = args(&["run", "probe_shell", "-e", "fleet"], &flags);
    let out = test.run(&argv);
    out.status(0);
    let (first, second) = shell_pids(&out.stdout, "/root");
    assert_eq!(first, second, "the commands did not share a shell");

    // A login that runs commands only through a forced command with no input (a gateway):
    // the kept shell cannot start there, and every command gets its own channel.
    let config = fleet.path("host-0/sshd_config");
    let mut text = std::fs::read_to_string(&config).expect("sshd_config");
    text.push_str("ForceCommand sh -c \"$SSH_ORIGINAL_COMMAND\" </dev/null\n");
    std::fs::write(&config, text).expect("sshd_config");
    // On SIGHUP sshd starts again in place, and writes its pid file anew once it listens.
    let pid_file = fleet.path("host-0/sshd.pid");
    let written = || std::fs::metadata(&pid_file).and_then(|m| m.modified()).ok();
    let before = written();
    let pid = std::fs::read_to_string(&pid_file).expect("pid");
    Command::new("kill")
        .args(["-HUP", pid.trim()])
        .status()
        .expect("kill");
    crate::harness::wait_for(
        "sshd to read its config again",
        std::time::Duration::from_secs(10),
        || written().is_some_and(|now| Some(now) != before),
    );
    let out = test.run(&argv);
    out.status(0);
    let (first, second) = shell_pids(&out.stdout, "/root");
    assert_ne!(first, second, "a forced command cannot keep a shell");
}

#[test]
fn a_forced_shell_that_reads_its_input_never_runs_a_command_sent_to_the_kept_shell() {
    // The first command goes out with the kept shell's greeting, before the shell answers
    // (issue 33). A login whose forced command is a shell reading its input (here plain `sh`)
    // must stop at the greeting's `exit 0` and never run it; the command then goes to a
    // channel of its own, where the forced `sh` reads no input and runs nothing either.
    let fleet = Fleet::start_with(1, &[(0, "ForceCommand sh\n")]);
    let test = Test::with_config(&fleet.config());
    let mark = test.path().join("ran");
    test.write(
        "deploy/forced.rhai",
        &format!(
            "/// Two commands that leave a mark when they run.\nfn leave_marks(host) {{\n    host.run(\"echo first >> {0}\", #{{ quiet: true }});\n    host.run(\"echo second >> {0}\", #{{ quiet: true }});\n}}\n",
            mark.display()
        ),
    );
    let flags = ssh_flags(&fleet);
    let argv = args(&["run", "leave_marks", "-e", "fleet"], &flags);
    test.run(&argv).status(0);
    assert!(
        !mark.exists(),
        "the forced shell ran a command from its input: {:?}",
        std::fs::read_to_string(&mark)
    );
}

/// Runs `argv` while reading the host's process list (the fleet runs on this machine) until
/// weft ends; panics if any process's argv ever held `secret`, or if `running` (a word of the
/// command that proves it ran) never showed. Returns weft's outcome.
pub(crate) fn watch_process_list(
    test: &Test,
    argv: &[&str],
    env: &[(&str, &str)],
    secret: &str,
    running: &str,
) -> Outcome {
    let mut child = test
        .command(argv)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("weft starts");
    let mut seen_running = false;
    loop {
        let ps = Command::new("ps")
            .args(["-ww", "-eo", "args"])
            .output()
            .expect("ps");
        let list = String::from_utf8_lossy(&ps.stdout);
        let leaked: Vec<&str> = list.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            leaked.is_empty(),
            "the secret is in a process's argv: {leaked:?}"
        );
        seen_running |= list.lines().any(|l| l.contains(running));
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("weft ends");
    assert!(seen_running, "`{running}` never showed in the process list");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_secret_in_a_command_never_shows_in_the_hosts_process_list() {
    let fleet = Fleet::start(1);
    let test = Test::with_config("[project]\nname = \"s\"\n");
    let secret = format!("S3cr3t-{}-tok", std::process::id());
    test.write(
        "deploy/s.rhai",
        r#"
/// Sleeps with a secret in the command, then shows its input and the secret's length.
fn s_sleep(host, pause, how) {
    let t = secret_env("WEFT_T");
    let opts = if how == "sudo" { #{ sudo: true } } else { #{ stdin: "fed\n" } };
    let r = host.run(`sleep ${pause}; cat; printf '%s' "${t}" | wc -c`, opts);
    log(`out: ${r.stdout}`);
}
"#,
    );
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let (root, plain) = (fleet.address(0, "root"), fleet.address(0, "weft-test"));
    let password = fleet.sudo_password();
    let length = secret.len().to_string();
    // sudo as root (no password: the kept shell's path), a command with input on a channel
    // of its own, and --become with the sudo password.
    let cases: [(&str, &str, &[&str], &str, &str); 3] = [
        ("sudo", "3.01", &[], &root, ""),
        ("stdin", "3.02", &[], &root, ""),
        ("stdin", "3.03", &["--become"], &plain, &password),
    ];
    for (how, pause, extra, address, password) in cases {
        let mut argv = vec![
            "run",
            "s_sleep",
            pause,
            how,
            "-H",
            address,
            "-i",
            &key,
            "--known-hosts",
            &known,
        ];
        argv.extend(extra);
        let mut env = vec![("WEFT_T", secret.as_str())];
        if !password.is_empty() {
            env.push(("WEFT_SUDO_PASSWORD", password));
        }
        let out = watch_process_list(&test, &argv, &env, &secret, &format!("sleep {pause}"));
        out.status(0).stdout_has(&length);
        if how == "stdin" {
            out.stdout_has("out: fed");
        }
    }
}

#[test]
fn the_sum_of_a_file_that_holds_a_secret_is_not_kept_on_the_controller() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let secret = format!("S3cr3t-{}-sum", std::process::id());
    let dir = test.path().join("remote");
    std::fs::create_dir_all(&dir).expect("dir");
    test.write(
        "deploy/f.rhai",
        "/// Two files, one holding a secret.\nfn f_two(host, dir) {\n    host.file(dir + \"/plain.conf\", #{ content: \"port 80\\n\" });\n    host.file(dir + \"/token.env\", #{ content: \"TOKEN=\" + secret_env(\"WEFT_T\") + \"\\n\" });\n}\n",
    );
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let dir_text = dir.display().to_string();
    let argv = [
        "run",
        "f_two",
        &dir_text,
        "-e",
        "fleet",
        "-i",
        &key,
        "--known-hosts",
        &known,
    ];
    for _ in 0..2 {
        test.run_with(&argv, &[("WEFT_T", &secret)]).status(0);
    }
    let sums = test.home().join(".cache/weft/remote-sums");
    let kept: String = std::fs::read_dir(&sums)
        .expect("the cache of sums")
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).expect("sums"))
        .collect();
    assert!(kept.contains("plain.conf"), "no sum is kept at all: {kept}");
    let token_sum = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("TOKEN={secret}\n").as_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(
        !kept.contains("token.env") && !kept.contains(&token_sum),
        "the sum of a file holding a secret was kept: {kept}"
    );
}

#[test]
fn many_hosts_read_as_groups_live_and_in_the_summary_and_json_keeps_each_host() {
    let fleet = Fleet::start(2);
    // Twelve hosts on loopback ports nobody listens on: refused at once, all alike.
    let closed: Vec<u16> = (0..12)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("port"))
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect();
    let mut config = String::from("[project]\nname = \"many\"\n[env.many.hosts]\n");
    for i in 0..2 {
        config.push_str(&format!("ok-{i} = \"{}\"\n", fleet.address(i, "root")));
    }
    for (i, port) in closed.iter().enumerate() {
        config.push_str(&format!("far-{i} = \"root@127.0.0.1:{port}\"\n"));
    }
    let test = Test::with_config(&config);
    let out_dir = test.path().join("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    test.write(
        "deploy/mark.rhai",
        &format!(
            "/// Marks each host.\nfn mark_all(host) {{\n    host.write_file(`{}/${{host.name}}.txt`, \"x\");\n    host.run(\"echo said-$((6*7))\");\n    log(\"marked\");\n}}\n",
            out_dir.display()
        ),
    );
    let flags = ssh_flags(&fleet);
    let base = ["run", "mark_all", "-e", "many", "--connect-timeout", "2"];
    let out = test.run(&args(&base, &flags));
    out.status(1)
        .stdout_has("mark_all on 14 hosts: failures show as they happen, each host's changes and output with -v")
        .stdout_has("summary: 0 ok, 2 changed, 0 failed, 12 unreachable")
        .stdout_has("\n  2 changed (")
        .stdout_has("\n  12 unreachable: cannot connect to <host>: Connection refused (os error 111)\n")
        // Held back: no line per host per operation, nor the goal's output or messages.
        .stdout_lacks("| changed:")
        .stdout_lacks("said-42")
        .stdout_lacks("| marked")
        // Failures still show as they happen.
        .stderr_has("far-3  | unreachable:");
    let summary = out.stdout.split("summary:").nth(1).expect("summary");
    // Each group: its line, then its hosts' names, wrapped.
    let mut groups: Vec<Vec<String>> = Vec::new();
    for line in summary.lines().skip(1) {
        match line.strip_prefix("      ") {
            Some(names) => groups
                .last_mut()
                .expect("a group before its names")
                .extend(names.split(", ").map(str::to_string)),
            None => groups.push(Vec::new()),
        }
    }
    assert_eq!(groups.len(), 2, "{summary}");
    let mut changed = groups[0].clone();
    changed.sort();
    assert_eq!(changed, ["ok-0", "ok-1"]);
    let mut unreachable = groups[1].clone();
    unreachable.sort();
    let mut far: Vec<String> = (0..12).map(|i| format!("far-{i}")).collect();
    far.sort();
    assert_eq!(unreachable, far, "{summary}");
    // One line per host only where it is the group's: never `far-3  unreachable  1.52s ...`.
    assert!(!summary.contains("  unreachable  "), "{summary}");
    assert!(summary.lines().all(|l| l.len() <= 100), "{summary}");

    // -v prints each host's lines again; the summary stays grouped.
    let out = test.run(&args(&[&base[..], &["-v"]].concat(), &flags));
    out.status(1)
        .stdout_has("ok-0   | said-42")
        .stdout_has("ok-1   | marked")
        .stdout_lacks("failures show as they happen")
        .stdout_has("\n  12 unreachable: ");

    // --json: one finish event per host and every host in the summary event.
    let out = test.run(&args(&[&base[..], &["--json"]].concat(), &flags));
    out.status(1);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let finished = events.iter().filter(|e| e["event"] == "finish").count();
    assert_eq!(finished, 14);
    assert!(events
        .iter()
        .any(|e| e["event"] == "output" && e["line"] == "said-42"));
    let summary = events.last().expect("an event");
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["hosts"].as_array().expect("hosts").len(), 14);
    assert_eq!(summary["unreachable"], 12);
}

#[test]
fn a_first_command_stopped_when_the_login_is_slower_than_the_connect_timeout_never_runs_later() {
    // The first command goes out with the kept shell's greeting (issue 33). A login slower
    // than --connect-timeout (PAM, an automounted home, a heavy .bashrc), emulated by a forced
    // command that waits before running what was asked, used to run it seconds after weft
    // reported it failed. The step after it keeps the connection open past that moment.
    let fleet = Fleet::start_with(
        1,
        &[(
            0,
            "ForceCommand sleep 3; exec sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
        )],
    );
    let test = Test::with_config(&fleet.config());
    let mark = test.path().join("ran");
    test.write(
        "deploy/slow.rhai",
        &format!(
            "/// A step that stalls, caught, then another step.\nfn slow_login(host) {{\n    try {{ host.run(\"echo first >> {0}\", #{{ quiet: true }}); log(\"first ran\"); }} catch (e) {{ log(`first failed: ${{e}}`); }}\n    host.run(\"sleep 3\", #{{ stdin: \"x\", quiet: true }});\n    log(\"second ran\");\n}}\n",
            mark.display()
        ),
    );
    let mut flags = ssh_flags(&fleet);
    flags.extend(["--connect-timeout".into(), "1".into()]);
    let argv = args(&["run", "slow_login", "-e", "fleet"], &flags);
    test.run(&argv)
        .status(0)
        .stdout_has("first failed:")
        .stdout_has("no answer to the start of the kept shell within 1s; `echo first")
        .stdout_has(
            "was stopped and did not run, unless the shell started just as the time ran out or \
             its answer was lost on the way",
        )
        .stdout_has("second ran");
    assert!(
        !mark.exists(),
        "a command weft reported as not run ran on the host: {:?}",
        std::fs::read_to_string(&mark)
    );
}
