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
