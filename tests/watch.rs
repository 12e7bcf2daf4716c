//! `weft watch` against real sshd hosts: one sample of every machine as JSON and as plain
//! lines, and one watcher per env.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::fleet::Fleet;
use crate::harness::Test;

fn watch_args<'a>(
    fleet: &'a Fleet,
    key: &'a str,
    known: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let _ = fleet;
    let mut argv = vec!["watch", "-e", "fleet", "-i", key, "--known-hosts", known];
    argv.extend_from_slice(extra);
    argv
}

#[test]
fn once_json_samples_every_machine() {
    let fleet = Fleet::start(2);
    let test = Test::with_config(&fleet.config());
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let out = test.run(&watch_args(&fleet, &key, &known, &["--once", "--json"]));
    out.status(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one event per sample\n{out:#?}");
    let event: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON event");
    assert_eq!(event["event"], "sample");
    let machines = event["machines"].as_array().expect("machines");
    let mut hosts: Vec<&str> = machines.iter().filter_map(|m| m["host"].as_str()).collect();
    hosts.sort();
    assert_eq!(hosts, ["host-0", "host-1"]);
    for machine in machines {
        assert!(machine["error"].is_null(), "{machine}");
        let load = machine["load"].as_array().expect("load");
        assert_eq!(load.len(), 3);
        assert!(
            load.iter().all(|v| v.as_f64().is_some_and(|v| v >= 0.0)),
            "{machine}"
        );
        for key in ["cpu", "mem", "disk"] {
            let value = machine[key].as_f64().unwrap_or(-1.0);
            assert!((0.0..=100.0).contains(&value), "{key} in {machine}");
        }
        // The fleet's hosts share this machine's memory: some of it is in use.
        assert!(machine["mem"].as_f64().unwrap_or(0.0) > 0.0, "{machine}");
    }
}

#[test]
fn once_without_a_terminal_prints_a_line_per_machine_and_reports_a_dead_one() {
    let fleet = Fleet::start(2);
    let test = Test::with_config(&fleet.config());
    fleet.stop_host(1);
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let out = test.run(&watch_args(&fleet, &key, &known, &["--once"]));
    out.status(1)
        .stdout_has("host-0 [")
        .stdout_has(" cpu=")
        .stdout_has(" disk=");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("host-1 [") && l.contains("error=")),
        "{out:#?}"
    );
}

/// Kills the watcher when the test ends, passed or not.
struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_second_watcher_on_the_env_is_refused_and_a_stale_lock_is_taken_over() {
    let fleet = Fleet::start(1);
    let test = Test::with_config(&fleet.config());
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let lock = test.path().join(".weft/watch-fleet.lock");
    let first = test
        .command(&watch_args(&fleet, &key, &known, &["--interval", "1"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("first watcher starts");
    let mut first = Watcher(first);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lock.exists() {
        assert!(
            Instant::now() < deadline,
            "the first watcher never took the lock"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = test.run(&watch_args(&fleet, &key, &known, &["--once"]));
    out.status(2)
        .stderr_has("already watched by process")
        .stderr_has(&first.0.id().to_string());

    // A watcher killed outright leaves its lock behind; the next one takes it over.
    let _ = first.0.kill();
    let _ = first.0.wait();
    assert!(lock.exists(), "a killed watcher leaves its lock");
    let out = test.run(&watch_args(&fleet, &key, &known, &["--once"]));
    out.status(0).stdout_has("host-0 [");
    assert!(!lock.exists(), "a watcher that ends removes its lock");
}

fn with_app_role(fleet: &Fleet) -> Test {
    let config = format!(
        "{}\nroles = {{ app = [\"host-0\"] }}\n",
        fleet.config().trim_end()
    );
    Test::with_config(&config)
}

#[test]
fn a_project_scale_goal_decides_and_dry_run_prints_its_decision() {
    let fleet = Fleet::start(1);
    let test = with_app_role(&fleet);
    let (key, known) = (fleet.key(), fleet.known_hosts());

    // The stdlib policy keeps a role without min/max at its count: no decision.
    let out = test.run(&watch_args(&fleet, &key, &known, &["--once", "--dry-run"]));
    out.status(0)
        .stdout_has("host-0 [app]")
        .stdout_lacks("scale app");

    test.write(
        "deploy/scale.rhai",
        "/// One more app machine than now, whatever the load.\nfn app_scale(metrics) {\n    #{ count: metrics.count + 1, reason: `policy saw ${metrics.machines.len()} machine(s), cpu ${metrics.cpu}` }\n}\n",
    );
    let out = test.run(&watch_args(&fleet, &key, &known, &["--once", "--dry-run"]));
    out.status(0)
        .stdout_has("scale app from 1 to 2: policy saw 1 machine(s), cpu ")
        .stdout_has("(dry run)");

    let out = test.run(&watch_args(
        &fleet,
        &key,
        &known,
        &["--once", "--dry-run", "--json"],
    ));
    out.status(0);
    let decision: serde_json::Value = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "decision")
        .expect("a decision event");
    assert_eq!(decision["role"], "app");
    assert_eq!(
        (decision["from"].as_u64(), decision["to"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(decision["acted"], false);
}

#[test]
fn the_stdlib_policy_scales_by_the_roles_cpu_thresholds() {
    let fleet = Fleet::start(1);
    // Any CPU is above -1%: the stdlib wants one more, up to max.
    let config = format!(
        "{}\nroles = {{ app = [\"host-0\"] }}\n[env.fleet.machines.app]\nmax = 2\nscale_up_cpu = -1.0\n",
        fleet.config().trim_end()
    );
    let test = Test::with_config(&config);
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let out = test.run(&watch_args(&fleet, &key, &known, &["--once", "--dry-run"]));
    out.status(0)
        .stdout_has("scale app from 1 to 2: cpu ")
        .stdout_has("% > -1.0% (dry run)");

    // At max, no decision.
    let test = Test::with_config(&config.replace("max = 2", "max = 1"));
    let out = test.run(&watch_args(&fleet, &key, &known, &["--once", "--dry-run"]));
    out.status(0).stdout_lacks("scale app");
}

/// What a watcher writes, one JSON event per line, read on a thread of its own.
struct Events {
    child: Watcher,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl Events {
    fn start(test: &Test, args: &[&str]) -> Self {
        let mut child = test
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("watcher starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "event": "text", "line": line }));
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Events {
            child: Watcher(child),
            lines,
            seen: Vec::new(),
        }
    }

    /// The first event from now on that `wanted` accepts, within `within`.
    fn wait(
        &mut self,
        what: &str,
        within: Duration,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(event) => {
                    let hit = wanted(&event);
                    self.seen.push(event.clone());
                    if ["decision", "action", "alert"]
                        .contains(&event["event"].as_str().unwrap_or(""))
                    {
                        eprintln!("watch: {event}");
                    }
                    if hit {
                        return event;
                    }
                }
                Err(_) => {
                    // What the watcher saw last: each machine's CPU in the last samples.
                    let cpus: Vec<String> = self
                        .seen
                        .iter()
                        .filter(|e| e["event"] == "sample")
                        .rev()
                        .take(5)
                        .map(|e| {
                            let machines = e["machines"].as_array().cloned().unwrap_or_default();
                            machines
                                .iter()
                                .map(|m| format!("{}={}", m["host"], m["cpu"]))
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .collect();
                    panic!("no {what} within {within:?}; last samples (newest first): {cpus:#?}")
                }
            }
        }
    }
}

fn action(event: &serde_json::Value, name: &str, state: &str) -> bool {
    event["event"] == "action" && event["action"] == name && event["state"] == state
}

/// The build `current` points at on `machine` of env dev.
fn current_build(test: &Test, machine: &str) -> String {
    let out = test.run(&[
        "exec",
        "-e",
        "dev",
        "-H",
        machine,
        "--",
        "readlink",
        "/opt/www/hello/current",
    ]);
    out.status(0);
    out.stdout
        .split("/opt/www/hello/builds/")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no current build on {machine}: {out:#?}"))
        .to_string()
}

/// GETs of the site every 50 ms (at most 10 000) until stopped: the bodies, and the failures.
struct Client {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<String>, Vec<String>)>,
}

impl Client {
    fn start(addr: &str) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (flag, addr) = (stop.clone(), addr.to_string());
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed) = (Vec::new(), Vec::new());
            while !flag.load(Ordering::Relaxed) && ok.len() + failed.len() < 10_000 {
                let timeout = Duration::from_secs(5);
                match crate::webstack::get_within(&addr, "/", timeout, timeout) {
                    Ok(body) => ok.push(body),
                    Err(e) => failed.push(e),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (ok, failed)
        });
        Client { stop, thread }
    }

    fn finish(self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("client")
    }
}

#[test]
fn the_watcher_scales_app_up_under_load_and_back_down_without_a_failed_request() {
    scales_app_up_and_down(crate::webstack::example(), "20.0", "8.0");
}

/// The same for a container app (issue 36): the machine `weft watch` adds gets the image the
/// others run, from this machine's archive, and leaves without a failed request. An idle
/// busybox httpd leaves the machines quieter than gunicorn does, so lower thresholds still
/// tell the busy loops from idling when other work crowds this host's CPUs.
#[test]
fn the_watcher_scales_a_container_app_up_and_down_without_a_failed_request() {
    scales_app_up_and_down(crate::container::example(), "8.0", "3.0");
}

/// examples/hello-wsgi or examples/hello-container in `test`, with one app machine that
/// `weft watch` scales to two under CPU load (mean above `up` percent) and back to one once
/// the load ends (below `down`).
fn scales_app_up_and_down(test: Test, up: &str, down: &str) {
    let config = test.read("weft.toml").replace(
        "[env.dev.machines.app]\ncount = 2",
        &format!("[env.dev.machines.app]\ncount = 1\nmin = 1\nmax = 2\nscale_up_cpu = {up}\nscale_down_cpu = {down}\ncooldown = 5"),
    );
    assert!(config.contains("cooldown = 5"), "{config}");
    test.write("weft.toml", &config);
    let (_machines, up) = crate::webstack::env_up(&test);
    let site = up
        .stdout
        .lines()
        .find_map(|l| l.split("hello answers at http://").nth(1))
        .expect("the site's address")
        .trim_end_matches('/')
        .to_string();
    let builds = || {
        std::fs::read_dir(test.path().join(".weft/build/dev/hello/dist"))
            .expect("dist")
            .count()
    };
    let built = builds();
    let deployed = current_build(&test, "app-0");

    // One sample as JSON: the lb's haproxy reports app-0, up.
    let once = test.run(&["watch", "-e", "dev", "--once", "--json"]);
    once.status(0);
    let sample: serde_json::Value = once
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON event"))
        .find(|e| e["event"] == "sample")
        .expect("a sample");
    let lb = sample["machines"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["host"] == "lb-0"))
        .expect("lb-0 sampled");
    assert!(
        lb["servers"].as_array().is_some_and(|s| s
            .iter()
            .any(|s| s["server"] == "app-0" && s["status"] == "UP")),
        "{lb}"
    );

    // Four busy loops on app-0 (half of this host's 2 CPUs even when other work competes for
    // them), each ended by `timeout` at the latest.
    let load = test.run(&[
        "exec",
        "-e",
        "dev",
        "-H",
        "app-0",
        "--",
        "for i in 1 2 3 4; do timeout 150 sh -c 'while :; do :; done' >/dev/null 2>&1 & echo \"busy $!\"; done",
    ]);
    load.status(0);
    let busy: Vec<String> = load
        .stdout
        .split("busy ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next().map(String::from))
        .collect();
    assert_eq!(busy.len(), 4, "{load:#?}");
    let loaded = Instant::now();

    // A deploy in progress (its lock held) pauses scaling until it ends.
    test.run(&["run", "hello_lock", "-e", "dev", "-H", "app-0"])
        .status(0);
    let mut events = Events::start(&test, &["watch", "-e", "dev", "--interval", "2", "--json"]);
    events.wait("a decision to scale up", Duration::from_secs(35), |e| {
        e["event"] == "decision" && e["role"] == "app" && e["from"] == 1 && e["to"] == 2
    });
    eprintln!(
        "scale-up decided {:?} after the load started",
        loaded.elapsed()
    );
    let paused = events.wait("a pause", Duration::from_secs(30), |e| {
        e["event"] == "action" && e["state"] != "started"
    });
    assert!(action(&paused, "scale_up", "paused"), "{paused}");
    test.run(&["run", "hello_unlock", "-e", "dev", "-H", "app-0"])
        .status(0);
    let done = events.wait("app-1 joining", Duration::from_secs(240), |e| {
        action(e, "scale_up", "done") || action(e, "scale_up", "failed")
    });
    assert!(action(&done, "scale_up", "done"), "{done}");
    assert_eq!(done["machine"], "app-1");

    // app-1 serves the build app-0 serves, through the lb; no new build was made.
    assert_eq!(current_build(&test, "app-1"), deployed);
    assert_eq!(builds(), built, "scaling made no new build");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !crate::webstack::answers(&site, 4)
        .iter()
        .any(|a| a.ends_with("app-1"))
    {
        assert!(
            Instant::now() < deadline,
            "app-1 does not answer through the lb"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // The load ends; a client asks the site meanwhile. Ctrl-C during the scale-down lets it
    // finish, then the watcher stops.
    let client = Client::start(&site);
    let mut kill = vec!["exec", "-e", "dev", "-H", "app-0", "--", "kill"];
    kill.extend(busy.iter().map(String::as_str));
    test.run(&kill).status(0);
    events.wait("a scale-down", Duration::from_secs(60), |e| {
        action(e, "scale_down", "started")
    });
    let pid = events.child.0.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let done = events.wait("app-1 leaving", Duration::from_secs(120), |e| {
        action(e, "scale_down", "done") || action(e, "scale_down", "failed")
    });
    assert!(action(&done, "scale_down", "done"), "{done}");
    assert_eq!(done["machine"], "app-1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = events.child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the watcher did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(!test.path().join(".weft/watch-dev.lock").exists());
    std::thread::sleep(Duration::from_secs(2));
    let (bodies, failed) = client.finish();
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    assert!(bodies.len() > 20, "{}", bodies.len());
    assert!(
        bodies.last().is_some_and(|b| b.ends_with("app-0")),
        "{bodies:?}"
    );
    let list = test.run(&["cloud", "list", "-e", "dev"]);
    list.status(0).stdout_lacks("app-1");
}

#[test]
fn a_project_alert_goal_runs_once_per_change_of_a_condition() {
    let fleet = Fleet::start(2);
    // Any disk is more than 0% used; no CPU is more than 100% busy.
    let config = format!(
        "{}\nalert_disk = 0.0\nalert_cpu = 100.0\n",
        fleet.config().trim_end()
    );
    let test = Test::with_config(&config);
    test.write(
        "deploy/alerts.rhai",
        r#"/// Keeps each alert in alerts.log.
fn alert(event) {
    let e = parse_json(event);
    controller().run(`printf '%s %s %s\n' ${quote(e.kind)} ${quote(e.state)} ${quote(e.host)} >> alerts.log`);
}
"#,
    );
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let args = watch_args(&fleet, &key, &known, &["--interval", "1", "--json"]);
    let mut events = Events::start(&test, &args);
    for _ in 0..3 {
        events.wait("a sample", Duration::from_secs(30), |e| {
            e["event"] == "sample"
        });
    }
    // Its kept connection is cut (while its sshd can still find it), then the host stops.
    fleet.drop_connections(1);
    fleet.stop_host(1);
    let down = events.wait("host-1 reported down", Duration::from_secs(60), |e| {
        e["event"] == "alert" && e["kind"] == "down"
    });
    assert_eq!(down["host"], "host-1");
    assert_eq!(down["state"], "firing");
    events.wait("a sample after that", Duration::from_secs(30), |e| {
        e["event"] == "sample"
    });
    events.wait("another sample", Duration::from_secs(30), |e| {
        e["event"] == "sample"
    });
    drop(events);
    let mut log: Vec<String> = test.read("alerts.log").lines().map(String::from).collect();
    log.sort();
    assert_eq!(
        log,
        [
            "disk firing host-0",
            "disk firing host-1",
            "down firing host-1"
        ],
        "one alert per change, not per sample"
    );
}

#[test]
fn a_machine_that_fails_to_provision_is_terminated_and_the_role_backs_off() {
    let test = Test::with_config(
        "[project]\nname = \"failing\"\n[env.dev]\nprovider = \"local\"\n[env.dev.machines.worker]\ncount = 1\ncooldown = 7\n",
    );
    let _machines = crate::harness::Destroy {
        test: &test,
        env: "dev",
    };
    test.write(
        "deploy/worker.rhai",
        r#"/// Provisioning works on worker-0 only.
fn worker_provision(host) {
    if host.name != "worker-0" {
        throw `no provisioning for ${host.name}`;
    }
}

/// One more worker than now.
fn worker_scale(metrics) {
    #{ count: metrics.count + 1, reason: "wants more" }
}
"#,
    );
    test.run(&["cloud", "create", "worker", "-e", "dev"])
        .status(0);
    let out = test.run(&["watch", "-e", "dev", "--once", "--json"]);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let failed = events
        .iter()
        .find(|e| action(e, "scale_up", "failed"))
        .unwrap_or_else(|| panic!("a failed scale-up: {out:#?}"));
    assert_eq!(failed["machine"], "worker-1");
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`worker_provision` failed on worker-1")
            && message.contains("worker-1 was terminated"),
        "{message}"
    );
    assert_eq!(failed["retry_in"], 7, "the first back-off is the cooldown");
    assert!(events.iter().any(|e| action(e, "scale_up", "created")));
    let list = test.run(&["cloud", "list", "-e", "dev"]);
    list.status(0)
        .stdout_has("worker-0")
        .stdout_lacks("worker-1");
}
