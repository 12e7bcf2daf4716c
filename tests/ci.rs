//! The ci plugin of this repo (`plugins/ci`): a buildbot master on the controller builds
//! examples/hello-wsgi on a worker machine it starts through weft for the build, and the
//! machine is terminated afterwards.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Destroy, Test};

/// Stops the project's buildbot master (and terminates its workers) even when a test fails.
struct StopMaster<'a>(&'a Test);

impl Drop for StopMaster<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["run", "ci_master_down", "--yes"]);
    }
}

/// A TCP port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// The names of env dev's machines.
fn machine_names(test: &Test) -> Vec<String> {
    let list = test.run(&["cloud", "list", "-e", "dev", "--json"]);
    list.status(0);
    let machines: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).expect("json");
    machines
        .iter()
        .map(|m| m["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn ci_plugin_builds_hello_wsgi_on_a_worker_machine_made_for_the_build() {
    let test = crate::webstack::example();
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/ci");
    test.run(&["plugin", "add", &plugin.display().to_string()])
        .status(0)
        .stdout_has("added plugin ci 1.0.0");
    let mut config = test.read("weft.toml");
    // Ports of their own, so a second run of the suite on this host does not collide.
    let (web, workers) = (free_port(), free_port());
    config.push_str(&format!(
        "\n[env.dev.machines.ciworker]\ncount = 0\npackages = [\"python3-venv\", \"git\"]\n\n\
         [vars]\nci_weft = \"{}\"\nci_web_port = {web}\nci_worker_port = {workers}\n",
        env!("CARGO_BIN_EXE_weft")
    ));
    test.write("weft.toml", &config);

    let _machines = Destroy {
        test: &test,
        env: "dev",
    };
    let _master = StopMaster(&test);
    test.run(&["run", "ci_master_up"])
        .status(0)
        .stdout_has(&format!(
            "buildbot master up: web UI and REST API at http://127.0.0.1:{web}/, workers connect to port {workers}"
        ));
    // The master runs on; no worker machine exists before a build waits for one.
    assert!(machine_names(&test).is_empty());

    let build = test.run(&["run", "ci_force", "hello-wsgi"]);
    build
        .status(0)
        .stdout_has("step install: success")
        .stdout_has("step test: success")
        .stdout_has("build 1 of hello-wsgi on worker weft-");
    assert!(build.stdout.contains(": success\n"), "{}", build.stdout);
    let machine = build
        .stdout
        .lines()
        .find_map(|l| {
            l.split_once("ran on machine ")
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| panic!("the build names its machine: {}", build.stdout));
    assert!(machine.starts_with("ciworker-"), "{machine}");

    // After the build the master terminates the worker's machine through weft.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let names = machine_names(&test);
        if !names.contains(&machine) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{machine} still exists 3 minutes after its build: {names:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(
        std::fs::read_dir(test.path().join(".weft/ci/workers"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "a worker record is left"
    );
}
