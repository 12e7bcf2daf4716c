//! End to end: examples/hello-container (issue 36) on three `local` machines (2 app, 1 lb):
//! an image built with podman on an app machine from Debian's static busybox, streamed to the
//! other, run under systemd behind nginx and haproxy. Under four clients, image 1.0, then 2.0,
//! then a rollback to 1.0 fail no request; a 3.0 that fails its health check leaves every
//! machine on the image it ran.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::harness::{Destroy, Test};

/// A test project holding a copy of examples/hello-container, with `app/busybox` fetched by
/// the example's own `busybox_fetch` goal.
pub(crate) fn example() -> Test {
    let test = Test::new();
    crate::webstack::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-container"),
        test.path(),
    );
    test.run(&["run", "busybox_fetch"]).status(0);
    assert!(test.path().join("app/busybox").exists());
    test
}

/// Four clients asking the site until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<(Vec<String>, Vec<String>)>>,
}

impl Load {
    fn start(addr: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..4)
            .map(|_| {
                let (stop, addr) = (stop.clone(), addr.to_string());
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
        Load { stop, clients }
    }

    /// Stops the clients: every answer, and every failure.
    fn finish(self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut seen, mut failed) = (Vec::new(), Vec::new());
        for client in self.clients {
            let (s, f) = client.join().expect("client");
            seen.extend(s);
            failed.extend(f);
        }
        (seen, failed)
    }
}

/// What `current` points at on each app machine.
fn current_images(test: &Test) -> Vec<String> {
    ["app-0", "app-1"]
        .iter()
        .map(|m| {
            let out = test.ssh("dev", m, &["readlink /opt/www/hello/current"]);
            out.status(0);
            out.stdout.trim().to_string()
        })
        .collect()
}

/// Waits until every one of 10 answers through the lb starts with `wanted`.
fn until_all(addr: &str, wanted: &str) {
    crate::harness::wait_for(wanted, Duration::from_secs(30), || {
        crate::webstack::answers(addr, 10)
            .iter()
            .all(|a| a.starts_with(wanted))
    });
}

#[test]
fn a_container_app_deploys_and_rolls_back_under_load_and_a_failed_health_check_switches_nothing() {
    let test = example();
    // A machine with Debian's docker-registry, for the last deploy.
    let config = test.read("weft.toml")
        + "\n[env.dev.machines.registry]\ncount = 1\npackages = [\"docker-registry\", \"curl\"]\n";
    test.write("weft.toml", &config);
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    let up = test.run(&["run", "env_up"]);
    up.status(0)
        .stdout_has("created app-1")
        .stdout_has("built localhost/hello:")
        .stdout_has("deployed hello localhost/hello:");
    let addr = crate::webstack::web_address(&test, "lb-0");
    let first = crate::webstack::answers(&addr, 10);
    assert!(
        first.iter().all(|a| a.starts_with("hello 1.0 from app-")),
        "{first:?}"
    );
    assert!(first.iter().any(|a| a.ends_with("app-0")), "{first:?}");
    assert!(first.iter().any(|a| a.ends_with("app-1")), "{first:?}");
    // The image was built once, on app-0, and streamed to app-1 (which has no build context).
    test.ssh("dev", "app-1", &["test ! -e /opt/www/hello/context"])
        .status(0);
    let v1 = current_images(&test);

    // --check --diff of 2.0 shows the unit files it would write and touches nothing.
    test.write("app/VERSION", "2.0\n");
    test.run(&["run", "hello_deploy", "--check", "--diff"])
        .status(0)
        .stdout_has("would build localhost/hello:")
        .stdout_has("+++ /etc/systemd/system/hello-b.service (after)")
        .stdout_has("+exec /usr/bin/podman run --replace --name hello-b --network host")
        .stdout_has("summary (--check: nothing was changed)");
    assert_eq!(current_images(&test), v1);

    // 2.0, then back to 1.0, under four clients: not one request fails.
    let load = Load::start(&addr);
    test.run(&["run", "hello_deploy"])
        .status(0)
        .stdout_has("in slot b (port 8001)");
    until_all(&addr, "hello 2.0 from");
    let v2 = current_images(&test);
    assert_ne!(v2, v1);
    test.run(&["run", "hello_rollback"])
        .status(0)
        .stdout_has("rolled back from")
        // A rollback copies no image: 1.0 is still on each machine.
        .stdout_lacks("/opt/www/hello/dist/");
    until_all(&addr, "hello 1.0 from");
    assert_eq!(current_images(&test), v1);

    // 3.0 answers 404 on /health: each machine stops it and keeps 1.0.
    test.write("app/VERSION", "3.0\n");
    std::fs::remove_file(test.path().join("app/www/health")).expect("rm health");
    test.run(&["run", "hello_deploy"])
        .status(1)
        .stdout_has("did not answer /health on port 8001")
        .stderr_has("failed on some machines; each one that failed still runs its previous image");
    let (seen, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(seen.len() > 40, "only {} requests made", seen.len());
    assert!(seen.iter().any(|a| a.starts_with("hello 2.0")));
    assert!(!seen.iter().any(|a| a.starts_with("hello 3.0")));
    assert_eq!(current_images(&test), v1);
    for machine in ["app-0", "app-1"] {
        let units = test.ssh(
            "dev",
            machine,
            &["systemctl is-active hello-a; systemctl is-active hello-b; true"],
        );
        assert_eq!(units.stdout.trim(), "active\ninactive", "{machine}");
    }
    let after = crate::webstack::answers(&addr, 10);
    assert!(
        after.iter().all(|a| a.starts_with("hello 1.0 from")),
        "{after:?}"
    );

    // Pruning to one image keeps the newest (3.0, bad) and the active one (1.0); 2.0 goes,
    // from podman and from disk.
    test.run(&[
        "run",
        "hello_prune",
        "-r",
        "app",
        "--set",
        "apps.hello.keep=1",
    ])
    .status(0)
    .stdout_has("pruned localhost/hello:");
    let id = |path: &str| path.rsplit('/').next().expect("an id").to_string();
    let (active, gone) = (id(&v1[0]), id(&v2[0]));
    for machine in ["app-0", "app-1"] {
        let left = test.ssh(
            "dev",
            machine,
            &["ls /opt/www/hello/builds; podman images --format '{{.Tag}}' localhost/hello"],
        );
        left.status(0);
        let left: Vec<&str> = left.stdout.split_whitespace().collect();
        assert_eq!(left.len(), 4, "{machine}: {left:?}");
        assert_eq!(
            left.iter().filter(|l| **l == active).count(),
            2,
            "{machine}: {left:?}"
        );
        assert!(!left.contains(&gone.as_str()), "{machine}: {left:?}");
    }
    let still = crate::webstack::answers(&addr, 4);
    assert!(
        still.iter().all(|a| a.starts_with("hello 1.0 from")),
        "{still:?}"
    );

    // Through the env's registry: 4.0 is pushed by the builder and pulled by each machine,
    // with no archive through this machine, and still no failed request.
    test.write("app/www/health", "ok\n");
    test.write("app/VERSION", "4.0\n");
    let config = test.read("weft.toml").replace(
        "image = \"localhost/hello\"",
        "image = \"localhost/hello\"\nregistry = \"registry\"",
    );
    assert!(config.contains("registry = \"registry\""), "{config}");
    test.write("weft.toml", &config);
    let load = Load::start(&addr);
    let pushed = test.run(&["run", "hello_deploy"]);
    pushed
        .status(0)
        .stdout_has("and pushed it to 10.77.")
        .stdout_has(":5000/hello:")
        .stdout_has("app-1      | pulled 10.77.");
    until_all(&addr, "hello 4.0 from");
    let (seen, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(seen.len() > 10, "only {} requests made", seen.len());
    let v4 = id(&current_images(&test)[0]);
    let archive = format!(".weft/build/dev/hello/dist/{v4}.tar.gz");
    assert!(!test.path().join(archive).exists());
}
