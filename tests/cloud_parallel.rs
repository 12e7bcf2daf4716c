//! Parallel weft processes on one data folder (issue 29): four `weft cloud create`s at once on
//! a fresh folder all succeed (one machine key, every host key recorded, every machine its own
//! ordinal and address), and destroying releases every address and key; a create that fails
//! half-way releases what it reserved.

use std::path::Path;
use std::process::Stdio;

use crate::harness::{Destroy, Test};

/// The addresses reserved host-wide for machines of this data folder.
fn reserved_by(data: &Path) -> Vec<String> {
    let machines = data.join("machines").display().to_string();
    std::fs::read_dir("/run/weft/ips")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path()).is_ok_and(|owner| owner.starts_with(&machines))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn four_parallel_creates_on_a_fresh_data_folder_all_succeed_and_destroy_releases_everything() {
    let test = Test::with_config(
        "[project]\nname = \"par\"\n[env.dev]\nprovider = \"local\"\n[env.qa]\nprovider = \"local\"\n",
    );
    let _dev = Destroy {
        test: &test,
        env: "dev",
    };
    let _qa = Destroy {
        test: &test,
        env: "qa",
    };
    let data = test.home().join(".local/share/weft");
    assert!(!data.exists(), "the data folder is fresh");
    // Two creates of one role in one env, another role there, and another env: each process
    // makes the machine key, reserves an address and records a host key at the same time.
    let creates = [["web", "dev"], ["web", "dev"], ["db", "dev"], ["web", "qa"]];
    let children: Vec<_> = creates
        .iter()
        .map(|[role, env]| {
            test.command(&["cloud", "create", role, "-e", env, "--no-provision"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("weft starts")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("weft ends");
        assert!(
            out.status.success(),
            "a parallel create failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let list = |env: &str| -> Vec<String> {
        let out = test.run(&["cloud", "list", "-e", env, "--json"]);
        out.status(0);
        let machines: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
        let mut names: Vec<String> = machines
            .iter()
            .map(|m| m["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(list("dev"), ["db-0", "web-0", "web-1"]);
    assert_eq!(list("qa"), ["web-0"]);
    let known = std::fs::read_to_string(data.join("known_hosts")).expect("known_hosts");
    assert_eq!(known.lines().count(), 4, "{known}");
    let mut addresses = reserved_by(&data);
    addresses.sort();
    assert_eq!(addresses.len(), 4, "{addresses:?}");
    for address in &addresses {
        assert!(
            known.lines().any(|l| l.starts_with(&format!("{address} "))),
            "no host key for {address}: {known}"
        );
    }
    // Every machine answers with the key weft recorded (strict checking is the default).
    test.run(&["exec", "-e", "dev", "--", "true"])
        .status(0)
        .stdout_has("summary: 3 ok");
    test.run(&["exec", "-e", "qa", "--", "true"])
        .status(0)
        .stdout_has("summary: 1 ok");

    for env in ["dev", "qa"] {
        test.run(&["cloud", "destroy", "-e", env, "--yes"])
            .status(0);
    }
    assert_eq!(reserved_by(&data), Vec::<String>::new());
    let known = std::fs::read_to_string(data.join("known_hosts")).unwrap_or_default();
    assert_eq!(known.trim(), "", "host keys left: {known}");
    let left = machine_folders(&data);
    assert!(left.is_empty(), "machine folders left: {left:?}");
}

#[test]
fn a_failed_create_gives_back_its_address_and_leaves_no_machine_folder() {
    let test = Test::with_config("[project]\nname = \"fail\"\n[env.dev]\nprovider = \"local\"\n");
    let _dev = Destroy {
        test: &test,
        env: "dev",
    };
    let data = test.home().join(".local/share/weft");
    // A file where weft's key folder goes: the create fails after it reserved an address.
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("keys"), "not a folder\n").expect("keys");
    test.run(&["cloud", "create", "web", "-e", "dev", "--no-provision"])
        .status(2);
    assert_eq!(
        reserved_by(&data),
        Vec::<String>::new(),
        "an address leaked"
    );
    let left = machine_folders(&data);
    assert!(left.is_empty(), "machine folders left: {left:?}");
    // Once the cause is gone, the same create makes web-0.
    std::fs::remove_file(data.join("keys")).expect("rm");
    test.run(&["cloud", "create", "web", "-e", "dev", "--no-provision"])
        .status(0)
        .stdout_has("created web-0");
}

/// The machine folders under the data folder `data` (lock files left out).
fn machine_folders(data: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(data.join("machines"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}
