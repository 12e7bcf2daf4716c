//! End to end: examples/hello-wsgi on three `local` machines (2 app, 1 lb) running real nginx,
//! gunicorn under supervisor and haproxy. Requests through the lb reach both app machines, a
//! deploy under load fails no request, rollback serves the previous version, and a deploy
//! interrupted half-way leaves every machine on a complete build with the site up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::harness::{Destroy, Test};

/// One GET of `/`: the body, or why there was none.
pub(crate) fn get(addr: &str) -> Result<String, String> {
    get_path(addr, "/")
}

/// One GET of `path` from `addr`: the body of a 200, or why there was none.
pub(crate) fn get_path(addr: &str, path: &str) -> Result<String, String> {
    get_within(addr, path, Duration::from_secs(5), Duration::from_secs(10))
}

/// One GET of `path` from `addr` by a client that gives up connecting after `connect` and
/// reading after `read`: the body of a 200, or why there was none.
pub(crate) fn get_within(
    addr: &str,
    path: &str,
    connect: Duration,
    read: Duration,
) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr.parse().map_err(|e| format!("{e}"))?, connect)
            .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(read))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: hello\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(head.lines().next().unwrap_or_default().to_string());
    }
    Ok(body.trim().to_string())
}

/// The example's weft.toml with one app machine and no lb role.
pub(crate) fn one_app_machine_no_lb(config: &str) -> String {
    let config = config
        .replace(
            "[env.dev.machines.app]\ncount = 2",
            "[env.dev.machines.app]\ncount = 1",
        )
        .replace(
            "[env.dev.machines.lb]\ncount = 1\npackages = [\"haproxy\", \"curl\"]\n",
            "",
        );
    assert!(!config.contains("machines.lb"), "{config}");
    config
}

/// The answers of `n` requests; panics on any failed one.
pub(crate) fn answers(addr: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| get(addr).unwrap_or_else(|e| panic!("request through the lb failed: {e}")))
        .collect()
}

/// A test project holding a copy of examples/hello-wsgi.
pub(crate) fn example() -> Test {
    let test = Test::new().with_env(vec![crate::app::pip_cache()]);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-wsgi"),
        test.path(),
    );
    test
}

/// Brings env dev up (machines, provisioning, deploy); its machines go when the guard drops.
pub(crate) fn env_up(test: &Test) -> (Destroy<'_>, crate::harness::Outcome) {
    let guard = Destroy { test, env: "dev" };
    let up = test.run(&["run", "env_up", "-e", "dev"]);
    up.status(0);
    (guard, up)
}

/// The `host:80` of machine `name` of env dev.
pub fn web_address(test: &Test, name: &str) -> String {
    web_address_in(test, "dev", name)
}

/// Machine `name` of `env`'s address on port 80.
pub fn web_address_in(test: &Test, env: &str, name: &str) -> String {
    let list = test.run(&["cloud", "list", "-e", env, "--json"]);
    let machines: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).expect("json");
    let address = machines
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["address"].as_str())
        .unwrap_or_else(|| panic!("{name} has an address"));
    let ip = address
        .trim_start_matches("root@")
        .split(':')
        .next()
        .expect("ip");
    format!("{ip}:80")
}

pub fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from)
        .into_iter()
        .filter_map(Result::ok)
    {
        let rel = entry.path().strip_prefix(from).expect("inside");
        if rel.starts_with(".weft") {
            continue;
        }
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

fn set_version(test: &Test, version: &str) {
    let text = test.read("app/pyproject.toml");
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("version = ") {
                format!("version = \"{version}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    test.write("app/pyproject.toml", &(text + "\n"));
}

/// On `machine`: where `current` points, the builds there, the locks, and the checksums of the
/// web configs: what a `--check` run must leave alone.
fn builds_and_configs(test: &Test, machine: &str) -> String {
    let out = test.ssh(
        "dev",
        machine,
        &[
            "readlink /opt/www/hello/current; ls -a /opt/www/hello /opt/www/hello/builds \
         /var/lib/weft/locks 2>&1; \
         cat /etc/nginx/sites-enabled/* /etc/haproxy/haproxy.cfg /etc/supervisor/conf.d/* \
         2>/dev/null | sha256sum",
        ],
    );
    out.status(0);
    out.stdout.clone()
}

/// On `machine`: the state of the build `current` points at, and whether the lock is gone.
fn machine_state(test: &Test, machine: &str) -> String {
    let out = test.ssh(
        "dev",
        machine,
        &["cat /opt/www/hello/current/.weft-build; \
         test -e /var/lib/weft/locks/app%20%2Fopt%2Fwww%2Fhello \
         -o -e /var/lib/weft/locks/deploy%20%2Fopt%2Fwww%2Fhello && echo locked || echo unlocked"],
    );
    out.status(0);
    out.stdout.clone()
}

#[test]
fn hello_wsgi_behind_haproxy_deploys_without_failed_requests_and_rolls_back() {
    let test = example();
    let (_cleanup, up) = env_up(&test);
    up.stdout_has("created app-1")
        .stdout_has("created lb-0")
        .stdout_has("deployed hello");
    let addr = web_address(&test, "lb-0");

    // Round robin: both app machines answer, with version 1.0.
    let first = answers(&addr, 10);
    assert!(
        first.iter().all(|a| a.starts_with("hello 1.0 from")),
        "{first:?}"
    );
    assert!(first.iter().any(|a| a.ends_with("app-0")), "{first:?}");
    assert!(first.iter().any(|a| a.ends_with("app-1")), "{first:?}");
    // Static files come from shared/static, served by nginx.
    let page = get_path(&addr, "/static/README.txt").expect("a static file");
    assert!(page.contains("static files go here"), "{page}");

    // --check of the running env and of a deploy of 2.0 reports and touches nothing: the
    // same build stays current on every machine, no build is added, no lock is left.
    set_version(&test, "2.0");
    let before: Vec<String> = ["app-0", "app-1", "lb-0"]
        .iter()
        .map(|m| builds_and_configs(&test, m))
        .collect();
    test.run(&["run", "env_up", "--check"])
        .status(0)
        .stdout_has("summary (--check: nothing was changed)");
    test.run(&["run", "hello_deploy", "--check"])
        .status(0)
        .stdout_has("would build hello and activate it")
        .stdout_has("summary (--check: nothing was changed)");
    // The service goals read the running daemons and change nothing either.
    for (goal, role) in [
        ("app_provision", "app"),
        ("nginx_setup", "app"),
        ("gunicorn_setup", "app"),
        ("haproxy_setup", "lb"),
        ("nginx_status", "app"),
    ] {
        test.run(&["run", goal, "-r", role, "--check"])
            .status(0)
            .stdout_has("summary (--check: nothing was changed)")
            .stdout_lacks("nginx: stopped");
    }
    let after: Vec<String> = ["app-0", "app-1", "lb-0"]
        .iter()
        .map(|m| builds_and_configs(&test, m))
        .collect();
    assert_eq!(before, after);
    // Without an init system a restart stops nginx and starts it again; the site answers.
    test.run(&["run", "nginx_restart", "-r", "app"])
        .status(0)
        .stdout_has("changed: service nginx (restart)");
    test.run(&["run", "nginx_status", "-r", "app"])
        .status(0)
        .stdout_has("app-0 | nginx: running")
        .stdout_has("app-1 | nginx: running");
    let checked = answers(&addr, 6);
    assert!(
        checked.iter().all(|a| a.starts_with("hello 1.0 from")),
        "{checked:?}"
    );

    // Deploy 2.0 while a client keeps asking: not one request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let new_answers = Arc::new(AtomicUsize::new(0));
    let client = {
        let (stop, new_answers, addr) = (stop.clone(), new_answers.clone(), addr.clone());
        std::thread::spawn(move || {
            let (mut seen, mut failed) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match get(&addr) {
                    Ok(body) => {
                        if body.starts_with("hello 2.0") {
                            new_answers.fetch_add(1, Ordering::Relaxed);
                        }
                        seen.push(body)
                    }
                    Err(e) => failed.push(e),
                }
            }
            (seen, failed)
        })
    };
    test.run(&["run", "hello_deploy"])
        .status(0)
        .stdout_has("deployed hello");
    // The client goes on until the new build has answered it a few times.
    crate::harness::wait_for("answers from 2.0", Duration::from_secs(30), || {
        new_answers.load(Ordering::Relaxed) >= 10
    });
    stop.store(true, Ordering::Relaxed);
    let (seen, failed) = client.join().expect("client");
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(seen.len() > 20, "only {} requests made", seen.len());
    assert!(seen.iter().any(|a| a.starts_with("hello 1.0")));
    assert!(seen.iter().any(|a| a.starts_with("hello 2.0")));
    let after = answers(&addr, 10);
    assert!(
        after.iter().all(|a| a.starts_with("hello 2.0 from")),
        "{after:?}"
    );
    assert!(
        after.iter().any(|a| a.ends_with("app-0")) && after.iter().any(|a| a.ends_with("app-1"))
    );

    // Rollback serves 1.0 again; the lb host has nothing to roll back.
    test.run(&["run", "hello_rollback"])
        .status(0)
        .stdout_has("rolled back from");
    let back = answers(&addr, 10);
    assert!(
        back.iter().all(|a| a.starts_with("hello 1.0 from")),
        "{back:?}"
    );

    // A deploy of 3.0 interrupted as the machines switch: each one ends on a complete build,
    // the site stays up and the deploy lock is released.
    set_version(&test, "3.0");
    let (mut child, reader) = deploy_until(&test, &["app-"], "link /opt/www/hello/current");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("weft ends");
    let output = reader.join().expect("reader").join("\n");
    assert_ne!(status.code(), Some(0), "{output}");
    for machine in ["app-0", "app-1"] {
        let state = machine_state(&test, machine);
        assert!(state.starts_with("good"), "{machine}: {state}\n{output}");
        assert!(state.contains("unlocked"), "{machine}: {state}\n{output}");
    }
    let up = answers(&addr, 10);
    assert!(up.iter().all(|a| a.starts_with("hello ")), "{up:?}");

    // The next deploy needs no unlocking.
    test.run(&["run", "hello_deploy"]).status(0);
    let last = answers(&addr, 4);
    assert!(
        last.iter().all(|a| a.starts_with("hello 3.0 from")),
        "{last:?}"
    );
    serves_again_after_stop_and_start(&test, &addr, "hello 3.0 from app-1");

    // A deploy of 4.0 SIGKILLed once both machines switched: nothing cleans up, no build is
    // marked good. The site still answers, the next deploy names the lock, and unlock +
    // rollback bring back 3.0.
    set_version(&test, "4.0");
    let (mut child, reader) =
        deploy_until(&test, &["app-0", "app-1"], "link /opt/www/hello/current");
    let killed = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = child.wait();
    drop(reader);
    let up = answers(&addr, 10);
    assert!(up.iter().all(|a| a.starts_with("hello ")), "{up:?}");
    test.run(&["run", "hello_deploy"])
        .status(1)
        .stdout_has("is locked by another deploy");
    test.run(&["run", "hello_unlock"])
        .status(0)
        .stdout_has("breaking the lock of");
    test.run(&["run", "hello_rollback"]).status(0);
    let restored = answers(&addr, 10);
    assert!(
        restored.iter().all(|a| a.starts_with("hello 3.0 from")),
        "{restored:?}"
    );
    for machine in ["app-0", "app-1"] {
        let state = machine_state(&test, machine);
        assert!(state.starts_with("good"), "{machine}: {state}");
    }

    test.run(&["run", "env_down", "--yes"])
        .status(0)
        .stdout_has("terminated lb-0");
}

/// Starts `weft run hello_deploy` and returns once, for each of `hosts`, a line of its output
/// names the host and contains `wanted`, with the reader of the rest of its output.
fn deploy_until(test: &Test, hosts: &[&str], wanted: &str) -> (Child, JoinHandle<Vec<String>>) {
    let mut child = test
        .command(&["run", "hello_deploy"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("weft starts");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            lines.push(line);
        }
        lines
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut waiting: Vec<&str> = hosts.to_vec();
    while !waiting.is_empty() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the deploy never printed `{wanted}` for {waiting:?}"));
        if line.contains(wanted) {
            waiting.retain(|h| !line.contains(h));
        }
    }
    (child, reader)
}

/// `cloud stop` then `cloud start` of app-1: its enabled services come back with the machine
/// and the lb answers from it again, with no redeploy.
fn serves_again_after_stop_and_start(test: &Test, addr: &str, wanted: &str) {
    test.run(&["cloud", "stop", "app", "-o", "1", "-e", "dev"])
        .status(0);
    test.run(&["cloud", "start", "app", "-o", "1", "-e", "dev"])
        .status(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match get(addr) {
            Ok(body) if body == wanted => return,
            Ok(body) => seen.push(body),
            Err(e) => seen.push(e),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "no `{wanted}` within 30 s of starting app-1 again; last answers: {:?}",
        &seen[seen.len().saturating_sub(5)..]
    );
}

#[test]
fn hello_wsgi_with_systemd_units_serves_and_comes_back_after_a_restart() {
    let test = example();
    let config = test
        .read("weft.toml")
        .replace(
            "lb_role = \"lb\"",
            "lb_role = \"lb\"\nmanager = \"systemd\"",
        )
        .replace("\"nginx\", \"supervisor\", ", "\"nginx\", ");
    assert!(config.contains("manager = \"systemd\""));
    assert!(!config.contains("supervisor"));
    test.write("weft.toml", &config);
    let (_cleanup, up) = env_up(&test);
    up.stdout_has("deployed hello");
    let addr = web_address(&test, "lb-0");
    let first = answers(&addr, 10);
    assert!(
        first.iter().any(|a| a == "hello 1.0 from app-0"),
        "{first:?}"
    );
    assert!(
        first.iter().any(|a| a == "hello 1.0 from app-1"),
        "{first:?}"
    );
    // gunicorn runs as the app's systemd unit, not under supervisor.
    test.ssh("dev", "app-1", &["systemctl", "is-active", "hello"])
        .status(0)
        .stdout_has("active");
    test.ssh(
        "dev",
        "app-1",
        &["test", "-e", "/etc/supervisor/conf.d/hello.conf"],
    )
    .status(1);
    // Provisioning installed no supervisor: no app of the machine needs it.
    test.ssh("dev", "app-1", &["dpkg", "-s", "supervisor"])
        .status(1);
    serves_again_after_stop_and_start(&test, &addr, "hello 1.0 from app-1");
}

#[test]
fn gunicorn_on_a_unix_socket_behind_nginx_serves_the_app() {
    let test = example();
    let config = one_app_machine_no_lb(&test.read("weft.toml").replace(
        "wsgi = \"hello:app\"",
        "bind = \"unix:/opt/www/hello/shared/run/gunicorn.sock\"\nworkers = 3\nwsgi = \"hello:app\"",
    ));
    test.write("weft.toml", &config);
    let (_cleanup, up) = env_up(&test);
    up.stdout_has("created app-0")
        .stdout_lacks("lb-0")
        .stdout_has("deployed hello");
    let addr = web_address(&test, "app-0");
    let answer = get(&addr).expect("nginx answers through the socket");
    assert_eq!(answer, "hello 1.0 from app-0");
    let sock = test.ssh("dev", "app-0", &["stat -c '%F %G %a' /opt/www/hello/shared/run/gunicorn.sock; ps -eo user=,comm= | awk '$2 == \"python\" {print \"python as \" $1}' | sort -u"]);
    // The socket is nginx's group's; gunicorn runs as the app's own user, not root.
    sock.status(0)
        .stdout_has("socket www-data 770")
        .stdout_has("python as hello\n")
        .stdout_lacks("python as root");
    // The master and `workers` workers, once the workers a reload replaced have finished.
    let count = "pgrep -fc 'gunicorn --bind unix:/opt/www/hello/shared/run/gunicorn.sock'";
    let settled = (0..20).any(|_| {
        let out = test.ssh("dev", "app-0", &[count]);
        if out.stdout.trim() == "4" {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        false
    });
    assert!(
        settled,
        "gunicorn does not settle at a master and 3 workers"
    );
    test.run(&["run", "gunicorn_status"])
        .status(0)
        .stdout_has("RUNNING");
    test.run(&["run", "gunicorn_test"]).status(0);
    test.run(&["run", "nginx_test"]).status(0);
    // A reload keeps serving.
    test.run(&["run", "gunicorn_reload"]).status(0);
    assert_eq!(get(&addr).expect("still serving"), "hello 1.0 from app-0");
    // supervisord (root) logs where only root writes: a link the app's user plants in its
    // own log folder makes root write nothing through it.
    let plant = "echo root-only > /root/weft-victim && chmod 600 /root/weft-victim && \
        su -s /bin/sh hello -c 'ln -sf /root/weft-victim /opt/www/hello/shared/log/gunicorn.log' && \
        supervisorctl restart hello >/dev/null && sleep 1 && curl -s -o /dev/null http://127.0.0.1/ ; \
        cat /root/weft-victim; test -s /var/log/supervisor/hello-gunicorn.log && echo logged";
    test.ssh("dev", "app-0", &[plant])
        .status(0)
        .stdout_has("root-only\nlogged");
    // A site nginx rejects never reaches the live folder, and the site keeps answering.
    test.write(
        "templates/nginx/site.conf.hbs",
        "server { listen {{port}}; bogus_directive on; }\n",
    );
    test.run(&["run", "nginx_setup"])
        .status(1)
        .stdout_has(
            "the new `/etc/nginx/sites-enabled/hello.conf` was rejected by validation (`nginx -t -q`)",
        )
        .stdout_has("unknown directive \"bogus_directive\"");
    test.ssh(
        "dev",
        "app-0",
        &["cat /etc/nginx/sites-enabled/hello.conf; ls -a /tmp /etc/nginx/sites-enabled"],
    )
    .status(0)
    .stdout_has("proxy_pass http://unix:/opt/www/hello/shared/run/gunicorn.sock")
    .stdout_lacks("bogus_directive")
    .stdout_lacks(".weft-");
    assert_eq!(get(&addr).expect("still serving"), "hello 1.0 from app-0");
}

#[test]
fn a_build_made_on_one_app_machine_is_copied_to_the_others() {
    let test = Test::with_config(
        "[project]\nname = \"shop\"\n\
         [apps.site]\nrepos = [{ name = \"site\", path = \"site\", install = false }]\n\
         build_on = \"app\"\ntests = \"grep -q v1 index.html\"\n\
         [env.dev]\nprovider = \"local\"\n[env.dev.machines.app]\ncount = 2\n",
    );
    test.write("site/index.html", "v1\n");
    // Provisioning is not what this test is about: only what a Python build needs.
    test.write(
        "deploy/roles.rhai",
        "/// What a Python build needs.\nfn app_provision(host) { host.packages([\"python3-venv\"]); }\n",
    );
    let (_cleanup, up) = env_up(&test);
    up.stdout_has("deployed site");
    assert!(
        up.stdout
            .lines()
            .any(|l| l.starts_with("app-0 ") && l.contains("| built site")),
        "the build did not run on app-0\n{}",
        up.stdout
    );
    for machine in ["app-0", "app-1"] {
        test.ssh(
            "dev",
            machine,
            &["cat /opt/www/site/current/BUILD /opt/www/site/current/src/site/index.html"],
        )
        .status(0)
        .stdout_has("built_on = app-0")
        .stdout_has("v1");
    }
    // The builder keeps its checkouts in the app's folder.
    test.ssh("dev", "app-0", &["cat /opt/www/site/repos/site/index.html"])
        .status(0)
        .stdout_has("v1");
    // app-0 runs but no longer answers: app-1 builds and holds the deploy lock instead of
    // blocking the deploy; activation fails on app-0 alone.
    test.ssh(
        "dev",
        "app-0",
        &["systemctl stop ssh.socket ssh.service; pkill -x sshd; true"],
    );
    test.write("site/index.html", "v1 again\n");
    let failed_over = test.run(&["run", "site_deploy", "-e", "dev"]);
    failed_over
        .status(1)
        .stdout_has("app-1 builds: app-0 does not answer")
        .stdout_has("app-1 holds the deploy lock: app-0 does not answer");
    test.ssh("dev", "app-1", &["cat /opt/www/site/current/BUILD /opt/www/site/current/src/site/index.html; ls -a /var/lib/weft/locks"])
    .status(0)
    .stdout_has("built_on = app-1")
    .stdout_has("v1 again")
    .stdout_lacks("deploy%20%2Fopt%2Fwww%2Fsite");
    // The build came back to the controller, with its checksum.
    let dist = test.path().join(".weft/build/dev/site/dist");
    let names: Vec<String> = std::fs::read_dir(&dist)
        .expect("dist")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with(".tar.gz.sha256")),
        "{names:?}"
    );
}

#[test]
fn env_up_keeps_a_rolled_back_release_and_rebuild_deploys_a_new_build() {
    let test = Test::with_config(
        "[project]\nname = \"shop\"\n\
         [apps.site]\nrepos = [{ name = \"site\", path = \"site\", install = false }]\n\
         [env.dev]\nprovider = \"local\"\n[env.dev.machines.app]\ncount = 1\n",
    );
    test.write("site/index.html", "v1\n");
    // A plain release needs nothing on the machine but tar.
    test.write(
        "deploy/roles.rhai",
        "/// Nothing to install.\nfn app_provision(host) { }\n",
    );
    let deployed = |out: &crate::harness::Outcome| {
        out.stdout
            .lines()
            .find_map(|l| l.split("deployed site ").nth(1))
            .unwrap_or_else(|| panic!("no deploy in\n{}", out.stdout))
            .trim()
            .to_string()
    };
    let (_cleanup, up) = env_up(&test);
    let v1 = deployed(&up);
    // Where `current` points, the history, the builds, and the page served.
    let state = || {
        let out = test.ssh(
            "dev",
            "app-0",
            &[
                "readlink /opt/www/site/current; cat /opt/www/site/history; \
               ls -1 /opt/www/site/builds; cat /opt/www/site/current/src/site/index.html",
            ],
        );
        out.status(0);
        out.stdout.clone()
    };
    let dist = || {
        let mut names: Vec<String> =
            std::fs::read_dir(test.path().join(".weft/build/dev/site/dist"))
                .expect("dist")
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
        names.sort();
        names
    };

    test.write("site/index.html", "v2\n");
    let v2 = deployed(test.run(&["run", "site_deploy", "-e", "dev"]).status(0));
    assert_ne!(v1, v2);
    test.run(&["run", "site_rollback", "-e", "dev"])
        .status(0)
        .stdout_has(&format!("rolled back from {v2} to {v1}"));
    let rolled_back = state();
    assert!(rolled_back.ends_with("v1\n"), "{rolled_back}");
    let archives = dist();

    // env_up with v2's code still in the folder: the rollback stands, nothing is built or switched.
    test.run(&["run", "env_up", "-e", "dev"])
        .status(0)
        .stdout_has(&format!("app-0 keeps {v1}"))
        .stdout_lacks("building site")
        .stdout_lacks("deployed site")
        .stdout_lacks("activated");
    assert_eq!(state(), rolled_back);
    assert_eq!(dist(), archives);

    // --rebuild makes a new build of v2's code and deploys it.
    let rebuilt = deployed(
        test.run(&["run", "env_up", "-e", "dev", "--rebuild"])
            .status(0)
            .stdout_has("building site"),
    );
    assert!(rebuilt.starts_with(&format!("{v2}-r")), "{rebuilt}");
    let now = state();
    assert!(
        now.starts_with(&format!("/opt/www/site/builds/{rebuilt}\n")),
        "{now}"
    );
    assert!(now.ends_with("v2\n"), "{now}");

    // And env_up on an env that runs the build of its code changes nothing.
    test.run(&["run", "env_up", "-e", "dev"])
        .status(0)
        .stdout_has(&format!("site {rebuilt} is deployed already"))
        .stdout_lacks("building site")
        .stdout_lacks("activated");
    assert_eq!(state(), now);
}
