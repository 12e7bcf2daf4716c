//! `--check` changes nothing on the controller: every stdlib goal runs under `--check` (host
//! goals on a real sshd host, controller goals on a `local` provider env without machines),
//! and the controller's state folders are the same before and after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fleet::Fleet;
use crate::harness::Test;

/// What a folder holds: each entry's kind, size, modification time and content.
fn snapshot(root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        let path = entry.path().display().to_string();
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let kind = meta.file_type();
        let state = if kind.is_symlink() {
            format!("link to {:?}", std::fs::read_link(entry.path()).ok())
        } else if kind.is_dir() {
            format!("folder, modified {mtime}")
        } else {
            let content = std::fs::read(entry.path()).unwrap_or_default();
            format!(
                "file of {} bytes, modified {mtime}, mode {:o}: {}",
                meta.len(),
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()),
                String::from_utf8_lossy(&content)
            )
        };
        out.insert(path, state);
    }
}

/// The files of `/run/weft` (reservations shared by every weft on this machine) that name
/// `mine`: other tests running meanwhile keep theirs there too.
fn run_weft(mine: &Path, out: &mut BTreeMap<String, String>) {
    let mine = mine.display().to_string();
    for entry in walkdir::WalkDir::new("/run/weft") {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_file() {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if text.contains(&mine) {
            out.insert(entry.path().display().to_string(), text);
        }
    }
}

/// Every line that differs between two snapshots.
fn differences(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, state) in before {
        match after.get(path) {
            None => out.push(format!("removed {path} ({state})")),
            Some(now) if now != state => out.push(format!("changed {path}: {state} -> {now}")),
            Some(_) => {}
        }
    }
    for (path, state) in after {
        if !before.contains_key(path) {
            out.push(format!("added {path} ({state})"));
        }
    }
    out
}

/// A placeholder for a goal's parameter: paths inside the project, numbers for counts.
fn argument(param: &str) -> String {
    match param {
        "dir" | "path" | "file" | "backup" => "out/check".to_string(),
        "keep" => "3".to_string(),
        _ => "x".to_string(),
    }
}

#[test]
fn a_check_of_every_stdlib_goal_changes_nothing_on_the_controller() {
    let fleet = Fleet::start(1);
    let test = Test::new();
    crate::webstack::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-wsgi/app"),
        &test.path().join("app"),
    );
    let port = fleet.hosts[0].port;
    let key = fleet.key();
    // A build without ACME refuses `domains` at load.
    let acme = if cfg!(feature = "acme") {
        "domains = [\"site.test\"]\nacme_email = \"ops@site.test\"\n"
    } else {
        ""
    };
    test.write(
        "weft.toml",
        &format!(
            "[project]\nname = \"checked\"\ndefault_env = \"fleet\"\n\n\
             [apps.hello]\nrepos = [{{ name = \"hello\", path = \"app\" }}]\nwsgi = \"hello:app\"\n\
             python = \"/usr/bin/python3\"\nhealth = \"/health\"\nrole = \"app\"\nlb_role = \"lb\"\ntls = true\n\
             {acme}\
             db_role = \"db\"\ncache_role = \"cache\"\n\n\
             [vars]\nredis_password = \"check-only\"\n\n\
             [env.fleet]\nhosts = {{ host-0 = \"root@127.0.0.1:{port}\" }}\n\
             keys = [\"{key}.pub\"]\n\
             roles = {{ app = [\"host-0\"], lb = [\"host-0\"], db = [\"host-0\"], cache = [\"host-0\"] }}\n\n\
             [env.vm]\nprovider = \"local\"\n\n[env.vm.machines.app]\ncount = 2\n\n\
             [env.vm.machines.lb]\ncount = 2\n"
        ),
    );
    // The repro of the VIP reservation, as a controller goal of the project.
    test.write(
        "deploy/vip.rhai",
        "/// The env's virtual IP.\nfn vip_show() {\n    let vip = virtual_ip(\"\");\n    log(`vip ${vip.address} router ${vip.router_id}`);\n}\n",
    );
    let listed = test.run(&["list", "--json"]);
    listed.status(0);
    let goals: Vec<serde_json::Value> = serde_json::from_str(&listed.stdout).expect("goal list");

    let roots: Vec<PathBuf> = vec![test.home(), test.user_dir(), test.path().to_path_buf()];
    let state = || {
        let mut out = BTreeMap::new();
        for root in &roots {
            snapshot(root, &mut out);
        }
        run_weft(&test.home(), &mut out);
        out
    };
    let before = state();

    let mut runs = Vec::new();
    for goal in &goals {
        let name = goal["name"].as_str().unwrap_or_default().to_string();
        let layer = goal["layer"].as_str().unwrap_or_default();
        if !(layer.starts_with("stdlib") || name == "vip_show") {
            continue;
        }
        let host = goal["takes_host"].as_bool().unwrap_or(false);
        let mut args = vec!["run".to_string(), name.clone()];
        args.extend(
            goal["params"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| argument(p.as_str().unwrap_or_default())),
        );
        // Host goals on the sshd host; controller goals on the provider env, whose actions
        // (machines, virtual IPs) are those a check must not carry out. That env has no
        // machines (booting some is minutes of work): the goals that act on one
        // (`scale_join`, `hello_drain`, ...) stop at "not a machine", and host goals run
        // there on none, so keepalived's VIP is asked for by `vip_show`, through the same
        // `virtual_ip()`.
        let env = if host { "fleet" } else { "vm" };
        args.extend(
            [
                "--check",
                "-e",
                env,
                "-i",
                &key,
                "--host-key-policy",
                "accept-new",
            ]
            .map(String::from),
        );
        runs.push((name, args));
    }
    assert!(runs.len() > 80, "every stdlib goal: {}", runs.len());
    // `weft keys sync --check` too, which keeps weft's machine key on every host.
    runs.push((
        "keys sync".to_string(),
        [
            "keys",
            "sync",
            "--check",
            "-e",
            "fleet",
            "-i",
            &key,
            "--host-key-policy",
            "accept-new",
        ]
        .map(String::from)
        .to_vec(),
    ));
    assert!(runs.iter().any(|(n, _)| n == "keepalived_setup"));

    // A few at a time: most of a run is waiting on SSH.
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((name, args)) = runs.get(i) else {
                    break;
                };
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = test.run(&args);
                // Goals may fail under --check (nothing is installed here); none may crash.
                if !matches!(out.code, 0..=2) {
                    failures.lock().unwrap().push(format!("{name}: {out:?}"));
                }
                if name == "vip_show" {
                    assert!(out.stdout.contains("vip 10.77."), "{out:?}");
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{failures:#?}");

    let changed = differences(&before, &state());
    assert!(
        changed.is_empty(),
        "--check changed the controller's state:\n{}",
        changed.join("\n")
    );
}

#[test]
fn a_cold_check_writes_no_goal_index() {
    let test = Test::with_config("[project]\nname = \"cold\"\n");
    let cache = test.home().join("cold-cache");
    std::fs::create_dir_all(&cache).expect("cache folder");
    let test = test.with_env(vec![("XDG_CACHE_HOME".into(), cache.display().to_string())]);
    test.run(&["run", "system_info", "--check"]).status(0);
    let left: Vec<_> = walkdir::WalkDir::new(&cache)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().display().to_string())
        .collect();
    assert!(
        left.is_empty(),
        "--check wrote in the cache folder: {left:#?}"
    );
    // Without --check the same run keeps its index there: the check above looks where it is.
    test.run(&["run", "system_info"]).status(0);
    assert!(cache.join("weft/index").is_dir());
}
