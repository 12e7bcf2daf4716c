//! Every network step has a deadline (issue 29): a host that stalls after login, in the SFTP
//! subsystem, on a channel, or a listener that never speaks SSH fails naming the step, the
//! other hosts go on, `--host-timeout` bounds a host's whole job, and one SIGINT ends a run.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A command that sleeps for good, as a script whose path no other process has in its command
/// line (`pgrep -f` finds it alone, whatever else runs on the machine); what it left running is
/// ended when dropped (a fleet's sshd stops with the fleet, a forced command it ran does not).
struct Stall {
    /// The command, for a `ForceCommand`, a `Subsystem` or a script.
    command: String,
    /// The script's path.
    marker: String,
}

impl Stall {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let marker = std::env::temp_dir()
            .join(format!(
                "weft-stall-{name}-{}-{nanos}.sh",
                std::process::id()
            ))
            .display()
            .to_string();
        std::fs::write(&marker, "sleep 600\n").expect("stall script");
        Stall {
            command: format!("/bin/sh {marker}"),
            marker,
        }
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        let found = Command::new("pgrep")
            .args(["-f", &self.marker])
            .output()
            .expect("pgrep");
        for pid in String::from_utf8_lossy(&found.stdout).split_whitespace() {
            for kill in [vec!["pkill", "-P", pid], vec!["kill", pid]] {
                let _ = Command::new(kill[0])
                    .args(&kill[1..])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = std::fs::remove_file(&self.marker);
    }
}

/// The child's output once it exits; kills it and fails when it runs past `limit` (the old
/// code hung for the whole stall).
fn finish(mut child: Child, limit: Duration) -> (Outcome, Duration) {
    let started = Instant::now();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "weft was still running after {limit:?}\nstdout: {}\nstderr: {}",
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = started.elapsed();
    let outcome = Outcome {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    (outcome, elapsed)
}

/// Runs `weft args`, failing the test when it runs past `limit`.
fn run_within(test: &Test, args: &[&str], limit: Duration) -> (Outcome, Duration) {
    let child = test
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    finish(child, limit)
}

/// Waits until a process matching `pattern` runs (the stalled session exists on the host).
fn wait_for_process(pattern: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let found = Command::new("pgrep")
            .args(["-f", pattern])
            .output()
            .expect("pgrep");
        if found.status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no process `{pattern}` appeared");
}

/// Whether no process matching `pattern` runs within 10 seconds.
fn gone(pattern: &str) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let found = Command::new("pgrep")
            .args(["-f", pattern])
            .status()
            .expect("pgrep");
        if !found.success() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_host_whose_login_stalls_fails_naming_the_shell_start_and_the_others_succeed() {
    // The repro: a forced command that never reads its input (here `sleep`) held weft for
    // the whole 600 s, whatever --command-timeout said.
    let stall = Stall::new("login");
    let nap = &stall.command;
    let fleet = Fleet::start_with(3, &[(1, &format!("ForceCommand {nap}\n"))]);
    let test = Test::new();
    let flags = ssh_flags(&fleet);
    let addresses: Vec<String> = (0..3).map(|i| fleet.address(i, "root")).collect();
    let mut argv = vec!["exec", "--connect-timeout", "2", "--command-timeout", "5"];
    for address in &addresses {
        argv.extend(["-H", address.as_str()]);
    }
    argv.extend(flags.iter().map(String::as_str));
    argv.extend(["--", "echo", "up"]);
    let (out, _) = run_within(&test, &argv, Duration::from_secs(60));
    out.status(1)
        .stdout_has(&format!(
            "{}: no answer to the start of the kept shell within 2s",
            addresses[1]
        ))
        .stdout_has("summary: 2 ok, 0 changed, 1 failed");
    for address in [&addresses[0], &addresses[2]] {
        out.stdout_has(&format!("{address} | up"));
    }
}

#[test]
fn an_upload_to_a_host_whose_sftp_stalls_fails_naming_the_file_transfer() {
    let stall = Stall::new("sftp");
    let nap = &stall.command;
    let fleet = Fleet::start_with(1, &[(0, &format!("Subsystem sftp {nap}\n"))]);
    let test = Test::new();
    test.write("payload.txt", "data\n");
    let flags = ssh_flags(&fleet);
    let address = fleet.address(0, "root");
    let target = fleet.path("payload.txt");
    let mut argv = vec![
        "copy",
        "payload.txt",
        &target,
        "-H",
        &address,
        "--connect-timeout",
        "2",
    ];
    argv.extend(flags.iter().map(String::as_str));
    let (out, _) = run_within(&test, &argv, Duration::from_secs(60));
    out.status(1).stdout_has(&format!(
        "{address}: no answer to the start of the file transfer (SFTP) within 2s"
    ));
    assert!(
        !std::path::Path::new(&target).exists(),
        "the file arrived through a stalled subsystem"
    );
}

#[test]
fn a_command_whose_channel_never_answers_ends_at_the_command_timeout() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let pid_file = fleet.path("stopped-pid");
    // The first command stops the sshd process serving the connection: from then on no
    // channel opens. The second command (with input, so on a channel of its own) must end at
    // its timeout, not wait for the keepalives to give up on the connection.
    test.write(
        "deploy/stall.rhai",
        &format!(
            "/// Stalls its own connection, then runs a command.\n\
             fn stall_then_run(host) {{\n\
             \x20   try {{ host.run(\"echo $PPID > {pid_file}; kill -STOP $PPID\", #{{ timeout: 2 }}); }}\n\
             \x20   catch (err) {{ log(`first: ${{err}}`); }}\n\
             \x20   host.run(\"echo second\", #{{ stdin: \"x\", timeout: 2 }});\n\
             }}\n"
        ),
    );
    let flags = ssh_flags(&fleet);
    let mut argv = vec!["run", "stall_then_run", "-e", "fleet"];
    argv.extend(flags.iter().map(String::as_str));
    let (out, elapsed) = run_within(&test, &argv, Duration::from_secs(40));
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
    }
    out.status(1)
        .stdout_has("first: ")
        .stdout_has("`echo second` timed out after 2s")
        .stdout_lacks("lost while running");
    // Keepalives give up after 45 s; the two timeouts and a TERM that cannot be sent take 9.
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
}

#[test]
fn host_timeout_fails_the_slow_host_naming_its_step_and_ends_the_command() {
    let fleet = Fleet::start(2);
    let test = Test::with_config(&fleet.config());
    let stall = Stall::new("host-timeout");
    let (nap, marker) = (&stall.command, &stall.marker);
    // The goal catches the error: the host fails all the same, and cleanup still runs.
    test.write(
        "deploy/slow.rhai",
        &format!(
            "/// Slow on host-1 only.\n\
             fn slow_one(host) {{\n\
             \x20   if host.name == \"host-1\" {{\n\
             \x20       try {{ host.run(\"{nap}\"); }} catch (err) {{ log(`caught: ${{err.kind}}`); }}\n\
             \x20       host.run(\"echo cleaned\", #{{ always: true }});\n\
             \x20   }}\n\
             \x20   host.run(\"echo done\");\n\
             }}\n"
        ),
    );
    let flags = ssh_flags(&fleet);
    let mut argv = vec!["run", "slow_one", "-e", "fleet", "--host-timeout", "3"];
    argv.extend(flags.iter().map(String::as_str));
    let (out, _) = run_within(&test, &argv, Duration::from_secs(60));
    out.status(1)
        .stdout_has(&format!("--host-timeout (3s) passed during `{nap}`"))
        .stdout_has("caught: host_timeout")
        .stdout_has("host-1 | cleaned")
        .stdout_has("host-0 | done")
        .stdout_lacks("host-1 | done")
        .stdout_has("summary: 1 ok, 0 changed, 1 failed");
    assert!(
        gone(marker),
        "the command the deadline ended is still running"
    );
}

#[test]
fn a_listener_that_never_speaks_ssh_fails_at_the_handshake_within_the_connect_timeout() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accepts and holds every connection, and never writes a byte.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let silent = format!("root@127.0.0.1:{port}");
    let healthy = fleet.address(0, "root");
    let flags = ssh_flags(&fleet);
    let mut argv = vec![
        "exec",
        "-H",
        &silent,
        "-H",
        &healthy,
        "--connect-timeout",
        "2",
    ];
    argv.extend(flags.iter().map(String::as_str));
    argv.extend(["--", "echo", "up"]);
    let (out, elapsed) = run_within(&test, &argv, Duration::from_secs(60));
    out.status(1)
        .stdout_has(&format!(
            "{silent}: no answer to the SSH handshake within 2s"
        ))
        .stdout_has(&format!("{healthy} | up"))
        .stdout_has("1 unreachable");
    // Two attempts, not three: a host that accepted the connection and then stalled gets one
    // more chance (a busy sshd may miss one handshake), not every retry.
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
}

#[test]
fn one_sigint_ends_a_run_stuck_on_a_stalled_host() {
    let stall = Stall::new("sigint");
    let (nap, marker) = (&stall.command, &stall.marker);
    let fleet = Fleet::start_with(1, &[(0, &format!("ForceCommand {nap}\n"))]);
    let test = Test::new();
    let flags = ssh_flags(&fleet);
    let address = fleet.address(0, "root");
    // Deadlines far away: only the interrupt can end this run.
    let mut argv = vec![
        "exec",
        "-H",
        &address,
        "--connect-timeout",
        "600",
        "--command-timeout",
        "600",
    ];
    argv.extend(flags.iter().map(String::as_str));
    argv.extend(["--", "true"]);
    let child = test
        .command(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    wait_for_process(marker);
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    let (out, elapsed) = finish(child, Duration::from_secs(20));
    // One Ctrl-C ends a run within 2 s; the bound is loose for a loaded CI machine.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    out.status(130)
        .stderr_has("interrupted")
        .stdout_has("interrupted during")
        .stdout_has("1 failed");
}

#[test]
fn after_one_sigint_cleanup_still_runs_on_a_working_host_also_in_a_run_it_starts() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let stall = Stall::new("cleanup");
    let (nap, marker) = (&stall.command, &stall.marker);
    let (started, cleaned, released) = (
        fleet.path("started"),
        fleet.path("cleaned"),
        fleet.path("released"),
    );
    // As a deploy does: a host goal that cleans up when cut short, then a run that releases.
    test.write(
        "deploy/hold.rhai",
        &format!(
            "/// Holds the host, and cleans up when cut short.\n\
             fn hold_host(host) {{\n\
             \x20   try {{ host.run(\"touch {started}; {nap}\"); }}\n\
             \x20   catch (err) {{ host.run(\"touch {cleaned}\", #{{ always: true }}); throw err; }}\n\
             }}\n\
             /// Releases the host.\n\
             fn release_host(host) {{ host.run(\"touch {released}\", #{{ always: true }}); }}\n\
             /// Holds, then releases.\n\
             fn hold_all() {{\n\
             \x20   run_goal(\"hold_host\", [], #{{ hosts: [\"host-0\"], allow_fail: true }});\n\
             \x20   run_goal(\"release_host\", [], #{{ hosts: [\"host-0\"] }});\n\
             }}\n"
        ),
    );
    let flags = ssh_flags(&fleet);
    let mut argv = vec!["run", "hold_all", "-e", "fleet"];
    argv.extend(flags.iter().map(String::as_str));
    let child = test
        .command(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    wait_for_process(marker);
    assert!(std::path::Path::new(&started).exists());
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    let (out, elapsed) = finish(child, Duration::from_secs(20));
    out.status(130);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(
        std::path::Path::new(&cleaned).exists(),
        "the cleanup step did not run\n{out:#?}"
    );
    assert!(
        std::path::Path::new(&released).exists(),
        "the run started for cleanup did not run\n{out:#?}"
    );
    assert!(gone(marker), "the command in flight did not get TERM");
}

/// The staging files of `--become` writes in /tmp (and the temporary files they are written
/// through), with their sizes.
fn staging_files() -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(".weft-stage-") || name.starts_with("..weft-stage-")
        })
        .filter_map(|e| Some((e.path().display().to_string(), e.metadata().ok()?.len())))
        .collect()
}

#[test]
fn ctrl_c_during_an_upload_under_become_leaves_no_staging_file() {
    let fleet = Fleet::start(1);
    let test = Test::with_config("[project]\nname = \"big\"\n");
    // Big enough that the upload is still going when the interrupt comes; sparse here.
    let big = std::fs::File::create(test.path().join("big.bin")).expect("big file");
    big.set_len(4 << 30).expect("size");
    let target = format!("/tmp/weft-big-{}", std::process::id());
    test.write(
        "deploy/big.rhai",
        &format!("/// A big upload.\nfn big(host) {{ host.upload(\"big.bin\", \"{target}\"); }}\n"),
    );
    let address = fleet.address(0, "weft-test");
    let mut argv = vec!["run", "big", "-H", &address, "--become"];
    let flags = ssh_flags(&fleet);
    argv.extend(flags.iter().map(String::as_str));
    let password = fleet.sudo_password();
    let before: Vec<String> = staging_files().into_iter().map(|(p, _)| p).collect();
    let mut child = test
        .command(&argv)
        .env("WEFT_SUDO_PASSWORD", &password)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    // Ours is the one that grows past a megabyte (other tests stage small files).
    let started = Instant::now();
    let staging = loop {
        let found = staging_files()
            .into_iter()
            .find(|(p, size)| *size > 1 << 20 && !before.contains(p));
        if let Some((path, _)) = found {
            break path;
        }
        if child.try_wait().expect("wait").is_some() || started.elapsed() > Duration::from_secs(60)
        {
            let _ = child.kill();
            let (out, _) = finish(child, Duration::from_secs(10));
            panic!("no staging file grew: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    let (out, _) = finish(child, Duration::from_secs(60));
    let _ = std::fs::remove_file(&target);
    out.status(130).stdout_has("interrupted");
    let left = std::path::Path::new(&staging).exists();
    let _ = std::fs::remove_file(&staging);
    assert!(
        !left,
        "Ctrl-C left {staging} (part of the upload) on the host"
    );
}
