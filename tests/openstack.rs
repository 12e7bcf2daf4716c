//! The `openstack` provider against a real OpenStack: Debian 12's keystone, glance, placement,
//! nova (fake compute driver) and neutron-server in a `local` machine that
//! `scripts/openstack.sh up` makes once per host. The fake driver boots nothing, so, as the
//! EC2 tests do with moto, a stand-in sshd (a fleet host) takes each new server's SSH endpoint
//! with the host key weft put in the server's user data.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

use crate::fleet::Fleet;
use crate::harness::{Destroy, Test};

/// `scripts/openstack.sh ARGS` with this build's weft: its stdout, or why it failed.
fn try_openstack_sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/openstack.sh"))
        .args(args)
        .env("WEFT", env!("CARGO_BIN_EXE_weft"))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        // The ends only: CI shows the last lines of a failing run, and a whole configuration's
        // output would push the reason out of them.
        return Err(format!(
            "scripts/openstack.sh {args:?} failed:\n{}\n{}\n(scripts/test.sh's first `up` logs to $TMPDIR/weft-openstack-up.log)",
            last_lines(&String::from_utf8_lossy(&out.stdout), 15),
            last_lines(&String::from_utf8_lossy(&out.stderr), 60)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last `n` lines of `text`.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `scripts/openstack.sh ARGS`: its stdout; panics on failure.
fn openstack_sh(args: &[&str]) -> String {
    try_openstack_sh(args).unwrap_or_else(|e| panic!("{e}"))
}

/// The test OpenStack, up: its clouds.yaml.
fn openstack_up() -> String {
    openstack_sh(&["up"]);
    openstack_sh(&["clouds"]).trim().to_string()
}

/// `openstack ARGS -f json` inside the OpenStack machine, as the test project's user.
fn cli_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["cli"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-f", "json"]);
    let out = openstack_sh(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("openstack {args:?}: {e}: {out}"))
}

/// The host private key weft put in a server's user data (its cloud-config part).
fn host_key_of(user_data: &str) -> Option<String> {
    let line = user_data.lines().find(|l| l.starts_with('{'))?;
    let config: serde_json::Value = serde_json::from_str(line).ok()?;
    config["ssh_keys"]["ed25519_private"]
        .as_str()
        .map(str::to_string)
}

fn sshd_pid(dir: &str) -> Option<String> {
    std::fs::read_to_string(format!("{dir}/sshd.pid"))
        .ok()
        .map(|p| p.trim().to_string())
        .filter(|p| Path::new(&format!("/proc/{p}")).exists())
}

/// Stops the sshd serving a fleet host folder (the server behind it went away).
fn stop_sshd(dir: &str) {
    if let Some(pid) = sshd_pid(dir) {
        let _ = Command::new("kill").arg(&pid).status();
        crate::harness::wait_for("the stand-in sshd to stop", Duration::from_secs(5), || {
            sshd_pid(dir).is_none()
        });
    }
}

/// Stands in for booting: each new active server whose `weft:ssh-endpoint` is one of the
/// fleet's hosts gets that host's sshd restarted with the key of the server's user data, as
/// cloud-init would. Remembers every user data it saw.
struct Standins {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    dirs: Vec<String>,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Standins {
    fn start(fleet: &Fleet, hosts: &[usize]) -> Self {
        let ports: Vec<(String, String)> = hosts
            .iter()
            .map(|&i| {
                let dir = fleet.path(&format!("host-{i}"));
                stop_sshd(&dir);
                (fleet.address(i, "root"), dir)
            })
            .collect();
        let dirs = ports.iter().map(|(_, d)| d.clone()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (flag, record) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let mut served = HashSet::new();
            while !flag.load(Ordering::Relaxed) {
                // A failed look-up is tried again on the next round.
                let listing = try_openstack_sh(&["user-data"]).unwrap_or_default();
                for line in listing.lines() {
                    let fields: Vec<&str> = line.split('\t').collect();
                    let [id, vm_state, endpoint, encoded] = fields[..] else {
                        continue;
                    };
                    let Some((_, dir)) = ports.iter().find(|(a, _)| a == endpoint) else {
                        continue;
                    };
                    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
                        continue;
                    };
                    let user_data = String::from_utf8_lossy(&raw).into_owned();
                    let Some(key) = host_key_of(&user_data) else {
                        continue;
                    };
                    if vm_state != "active" || !served.insert(id.to_string()) {
                        continue;
                    }
                    record
                        .lock()
                        .expect("seen")
                        .push((id.to_string(), user_data));
                    stop_sshd(dir);
                    let path = format!("{dir}/ssh_host_ed25519_key");
                    let _ = std::fs::remove_file(format!("{path}.pub"));
                    std::fs::write(&path, key).expect("host key");
                    let _ = Command::new("chmod").args(["600", &path]).status();
                    let status = Command::new("/usr/sbin/sshd")
                        .args([
                            "-f",
                            &format!("{dir}/sshd_config"),
                            "-E",
                            &format!("{dir}/sshd.log"),
                        ])
                        .status()
                        .expect("sshd");
                    assert!(status.success(), "sshd with the server's key");
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        Standins {
            stop,
            thread: Some(thread),
            dirs,
            seen,
        }
    }

    /// The user data of server `id`, once a stand-in took it.
    fn user_data(&self, id: &str) -> Option<String> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, u)| u.clone())
    }
}

impl Drop for Standins {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        for dir in &self.dirs {
            stop_sshd(dir);
        }
    }
}

/// The name weft gives env `env` of namespace `ns`'s key pairs and security group (and the
/// prefix of the keys `register-key` imports for it): `weft-` and a digest of both.
fn scope_tag(ns: &str, env: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{ns}\n{env}").as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("weft-{hex}")
}

/// The project's key pairs of env `env` of namespace `ns` (other test runs share the cloud).
fn keypairs_of(ns: &str, env: &str) -> BTreeSet<String> {
    let tag = scope_tag(ns, env);
    names(&cli_json(&["keypair", "list"]))
        .into_iter()
        .filter(|k| *k == tag || k.starts_with(&format!("{tag}-")))
        .collect()
}

/// The names of a `-f json` listing.
fn names(listing: &serde_json::Value) -> BTreeSet<String> {
    listing
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["Name"].as_str().map(str::to_string))
        .collect()
}

/// The machines of `env` (`cloud list --json`).
fn machines(test: &Test, env: &str) -> Vec<serde_json::Value> {
    let list = test.run(&["cloud", "list", "-e", env, "--json"]);
    list.status(0);
    serde_json::from_str(&list.stdout).expect("json")
}

/// The secrets of the test cloud's clouds.yaml: the password and the application credential's.
fn secrets_of(clouds: &str) -> Vec<String> {
    let text = std::fs::read_to_string(clouds).expect("clouds.yaml");
    text.lines()
        .filter_map(|l| {
            let (key, value) = l.trim().split_once(": ")?;
            ["password", "application_credential_secret"]
                .contains(&key)
                .then(|| value.trim().to_string())
        })
        .collect()
}

#[test]
fn openstack_machines_against_a_real_openstack() {
    let clouds = openstack_up();
    let fleet = Fleet::start(2);
    let (endpoint, other) = (fleet.address(0, "root"), fleet.address(1, "root"));
    // A namespace of this run's own: the OpenStack outlives test runs. The test cloud shares
    // two cores with the whole suite, where Nova took more than the default 60 s to answer.
    let ns = format!("/os-{:08x}/", fastrand::u32(..));
    let config = format!(
        "[project]\nname = \"stack\"\n\
         [env.a]\nprovider = \"openstack\"\napi_timeout = 300\ncloud = \"weft-test\"\nnetwork = \"weft-net\"\nnamespace = \"{ns}\"\nssh_cidr = \"198.51.100.0/24\"\n\
         [env.a.machines.web]\nimage = \"weft-test\"\nsize = \"weft.small\"\npackages = [\"nginx\"]\ntags = {{ \"weft:ssh-endpoint\" = \"{endpoint}\" }}\n\
         [env.b]\nprovider = \"openstack\"\napi_timeout = 300\ncloud = \"weft-test-appcred\"\nnetwork = \"weft-net\"\nnamespace = \"{ns}\"\n\
         [env.b.machines.web]\nimage = \"weft-test\"\nsize = \"weft.small\"\ntags = {{ \"weft:ssh-endpoint\" = \"{other}\" }}\n\
         [env.b.machines.odd]\nimage = \"weft-test\"\nsize = \"weft.small\"\nuser_data = \"echo no interpreter line\"\n\
         [env.b.machines.nosuch]\nimage = \"weft-no-such-image\"\nsize = \"weft.small\"\n"
    );
    let test = Test::with_config(&config).with_env(vec![
        ("OS_CLIENT_CONFIG_FILE".into(), clouds.clone()),
        ("WEFT_TEST_SSH_ENDPOINTS".into(), "1".into()),
    ]);
    let _destroy_a = Destroy {
        test: &test,
        env: "a",
    };
    let _destroy_b = Destroy {
        test: &test,
        env: "b",
    };
    test.write(
        "deploy/web.rhai",
        "/// Provisions a new web machine.\nfn web_provision(host) { host.run(\"echo provisioned on $(hostname)\"); }\n\
         /// Prints the env's virtual IP.\nfn show_vip() { let v = virtual_ip(\"\"); log(`vip ${v.address} router ${v.router_id}`); }\n",
    );
    std::fs::create_dir_all(test.home().join(".ssh")).expect("ssh dir");
    std::fs::copy(fleet.key(), test.home().join(".ssh/id_ed25519")).expect("key");
    // The OpenStack is shared by every test run on this host: this run looks at its own
    // key pairs (named for its envs) and its own image only.
    let golden = format!("golden-{}", ns.trim_matches('/'));
    let standins = Standins::start(&fleet, &[0, 1]);

    // Bad input is refused before anything is made.
    test.run(&["cloud", "create", "odd", "-e", "b", "--no-provision"])
        .status(2)
        .stderr_has("user_data must start with `#!`");
    test.run(&["cloud", "create", "nosuch", "-e", "b", "--no-provision"])
        .status(2)
        .stderr_has("no image `weft-no-such-image`");
    assert!(machines(&test, "b").is_empty());

    // create waits until the server answers SSH with the host key weft made, then provisions
    // it; -vv logs the API calls and never a credential.
    let create = test.run(&["-vv", "cloud", "create", "web", "-e", "a"]);
    create
        .status(0)
        .stdout_has("created web-0")
        .stdout_has("web-0 | provisioned on")
        .stderr_has("POST http://")
        .stderr_has("/servers ->");
    for secret in secrets_of(&clouds) {
        create.stderr_lacks(&secret).stdout_lacks(&secret);
    }
    let a = machines(&test, "a");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["name"], "web-0");
    assert_eq!(a[0]["state"], "running");
    assert_eq!(a[0]["tags"]["weft:namespace"], ns.as_str());
    assert_eq!(a[0]["tags"]["weft:env"], "a");
    let id_a = a[0]["id"].as_str().expect("id").to_string();
    let user_data = standins
        .user_data(&id_a)
        .expect("the stand-in saw its user data");
    assert!(user_data.contains("OPENSSH PRIVATE KEY"), "{user_data}");
    assert!(user_data.contains(r#""packages":["nginx"]"#), "{user_data}");
    let known = std::fs::read_to_string(test.home().join(".local/share/weft/known_hosts"))
        .expect("weft's known_hosts");
    assert!(known.contains(&format!("weft:{id_a}")), "{known}");
    assert!(
        !keypairs_of(&ns, "a").is_empty(),
        "env a's key pair is missing"
    );
    // Nova holds the server with a port that has an address, and the env's security group
    // opens SSH to the configured CIDR only.
    let ports = cli_json(&["port", "list", "--server", &id_a]);
    assert_eq!(ports.as_array().map(Vec::len), Some(1), "{ports}");
    assert!(ports.to_string().contains("10.99.0."), "{ports}");
    let groups = cli_json(&["security", "group", "list"]);
    let group = groups
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["Description"] == format!("weft env a in namespace {ns}").as_str())
        .expect("env a's security group")
        .clone();
    let rules = cli_json(&[
        "security",
        "group",
        "rule",
        "list",
        group["ID"].as_str().expect("group id"),
    ]);
    let ingress: Vec<String> = rules
        .as_array()
        .into_iter()
        .flatten()
        // The rule between the env's own machines names their group, not an address range.
        .filter(|r| r["Direction"] == "ingress" && r["Remote Security Group"].is_null())
        .map(|r| format!("{}/{}", r["IP Range"], r["Port Range"]))
        .collect();
    assert!(
        ingress.contains(&"\"198.51.100.0/24\"/\"22:22\"".to_string()),
        "{rules}"
    );
    assert!(!ingress.iter().any(|r| r.contains("0.0.0.0/0")), "{rules}");

    // A goal reaches it over SSH with strict host key checking.
    test.run(&["run", "system_info", "-e", "a"])
        .status(0)
        .stdout_has("web-0 | hostname:");

    // Env b in the same project and namespace, with an application credential, stays apart.
    let create = test.run(&["-vv", "cloud", "create", "web", "-e", "b", "--no-provision"]);
    create.status(0).stdout_has("created web-0");
    for secret in secrets_of(&clouds) {
        create.stderr_lacks(&secret).stdout_lacks(&secret);
    }
    let b = machines(&test, "b");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_ne!(b[0]["id"], id_a.as_str());
    let a = machines(&test, "a");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["id"], id_a.as_str());

    // b's virtual IP: an address of the network that b's server port may carry (Neutron's
    // allowed address pairs), the same on a second call; a's port carries none.
    let vip_of = |out: &crate::harness::Outcome| {
        let text = format!("{}{}", out.stdout, out.stderr);
        text.split("vip ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no vip in {text}"))
            .to_string()
    };
    let vip = test.run(&["run", "show_vip", "-e", "b"]);
    let address = vip_of(vip.status(0));
    assert!(address.starts_with("10.99.0."), "{address}");
    assert_eq!(
        vip_of(test.run(&["run", "show_vip", "-e", "b"]).status(0)),
        address
    );
    let pairs = |server: &str| {
        let ports = cli_json(&["port", "list", "--server", server]);
        let port = ports[0]["ID"].as_str().expect("a port").to_string();
        cli_json(&["port", "show", &port])["allowed_address_pairs"].to_string()
    };
    let b_pairs = pairs(b[0]["id"].as_str().expect("id"));
    assert!(b_pairs.contains(&address), "{b_pairs}");
    let a_pairs = pairs(&id_a);
    assert!(!a_pairs.contains(&address), "{a_pairs}");

    // Stop and start.
    test.run(&["cloud", "stop", "web-0", "-e", "a"]).status(0);
    assert_eq!(machines(&test, "a")[0]["state"], "stopped");
    test.run(&["cloud", "start", "web-0", "-e", "a"]).status(0);
    assert_eq!(machines(&test, "a")[0]["state"], "running");
    assert_eq!(machines(&test, "b")[0]["state"], "running");

    // An image of the machine, then a new machine from it after the old one is gone.
    let image = test.run(&["cloud", "image", "web", "-o", "0", "-e", "a", &golden]);
    image.status(0);
    let image_id = image
        .stdout
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    let shown = cli_json(&["image", "show", &image_id]);
    assert_eq!(shown["status"], "active", "{shown}");
    test.run(&["cloud", "terminate", "web-0", "-e", "a", "--yes"])
        .status(0);
    assert!(machines(&test, "a").is_empty());
    // The old server's stand-in goes with it, before the new one comes at the same endpoint.
    stop_sshd(&fleet.path("host-0"));
    test.run(&[
        "cloud",
        "recreate",
        "web",
        "--image",
        &golden,
        "-e",
        "a",
        "--no-provision",
    ])
    .status(0)
    .stdout_has("created web-");
    let a = machines(&test, "a");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["image"], image_id.as_str());

    // destroy leaves nothing of env a: no server, port, security group, key pair or image;
    // env b keeps its machine.
    let id_a2 = a[0]["id"].as_str().expect("id").to_string();
    test.run(&[
        "cloud",
        "terminate",
        a[0]["name"].as_str().expect("name"),
        "-e",
        "a",
        "--yes",
    ])
    .status(0);
    test.run(&["cloud", "destroy", "-e", "a", "--yes"])
        .status(0)
        .stdout_has("security group");
    assert!(machines(&test, "a").is_empty());
    assert_eq!(machines(&test, "b").len(), 1);
    let servers = cli_json(&["server", "list"]).to_string();
    assert!(
        !servers.contains(&id_a) && !servers.contains(&id_a2),
        "{servers}"
    );
    let ports = cli_json(&["port", "list", "--long"]).to_string();
    assert!(!ports.contains(&id_a2), "{ports}");
    let groups = cli_json(&["security", "group", "list"]).to_string();
    assert!(
        !groups.contains(&format!("weft env a in namespace {ns}")),
        "{groups}"
    );
    assert!(
        groups.contains(&format!("weft env b in namespace {ns}")),
        "{groups}"
    );
    let images = cli_json(&["image", "list"]).to_string();
    assert!(!images.contains(&golden), "{images}");

    test.run(&["cloud", "terminate", "web-0", "-e", "b", "--yes"])
        .status(0);
    test.run(&["cloud", "destroy", "-e", "b", "--yes"])
        .status(0)
        .stdout_has(&format!("virtual IP {address}"));
    let ports = cli_json(&["port", "list"]).to_string();
    assert!(!ports.contains(&format!("\"{address}\"")), "{ports}");
    assert!(keypairs_of(&ns, "a").is_empty() && keypairs_of(&ns, "b").is_empty());
    drop(standins);
    // Terminated machines leave no host key behind.
    let known = std::fs::read_to_string(test.home().join(".local/share/weft/known_hosts"))
        .unwrap_or_default();
    assert!(!known.contains(&format!("weft:{id_a}")), "{known}");
}

/// The floating IPs whose description marks them as env `env`'s of namespace `ns`: their
/// addresses.
fn floating_ips_of(env: &str, ns: &str) -> BTreeSet<String> {
    let description = format!("weft env {env} in namespace {ns}");
    cli_json(&["floating", "ip", "list", "--long"])
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["Description"] == description.as_str())
        .filter_map(|f| f["Floating IP Address"].as_str().map(str::to_string))
        .collect()
}

/// A new ed25519 public key, with `comment`.
fn new_public_key(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen");
    assert!(status.success(), "ssh-keygen");
    format!("{}.pub", path.display())
}

#[test]
fn openstack_floating_ips_keys_and_checks_against_a_real_openstack() {
    let clouds = openstack_up();
    let fleet = Fleet::start(2);
    let (endpoint, other) = (fleet.address(0, "root"), fleet.address(1, "root"));
    let ns = format!("/osf-{:08x}/", fastrand::u32(..));
    let config = format!(
        "[project]\nname = \"stack\"\n\
         [env.f]\nprovider = \"openstack\"\napi_timeout = 300\ncloud = \"weft-test\"\nnetwork = \"weft-net\"\nfloating_network = \"public\"\nnamespace = \"{ns}\"\nssh_cidr = \"198.51.100.0/24\"\n\
         [env.f.machines.web]\nimage = \"weft-test\"\nsize = \"weft.small\"\ntags = {{ \"weft:ssh-endpoint\" = \"{endpoint}\" }}\n\
         [env.g]\nprovider = \"openstack\"\napi_timeout = 300\ncloud = \"weft-test-appcred\"\nnetwork = \"weft-net\"\nfloating_network = \"public\"\nnamespace = \"{ns}\"\nssh_cidr = \"198.51.100.0/24\"\n\
         [env.g.machines.web]\nimage = \"weft-test\"\nsize = \"weft.small\"\ntags = {{ \"weft:ssh-endpoint\" = \"{other}\" }}\n\
         [env.bad]\nprovider = \"openstack\"\napi_timeout = 300\ncloud = \"weft-test\"\nnetwork = \"weft-net\"\nfloating_network = \"weft-net\"\nnamespace = \"{ns}\"\nssh_cidr = \"198.51.100.0/24\"\n\
         [env.bad.machines.web]\nimage = \"weft-test\"\nsize = \"weft.small\"\n"
    );
    let test = Test::with_config(&config).with_env(vec![
        ("OS_CLIENT_CONFIG_FILE".into(), clouds.clone()),
        ("WEFT_TEST_SSH_ENDPOINTS".into(), "1".into()),
    ]);
    let _destroy_f = Destroy {
        test: &test,
        env: "f",
    };
    let _destroy_g = Destroy {
        test: &test,
        env: "g",
    };
    test.write(
        "deploy/web.rhai",
        "/// Prints the env's virtual IP.\nfn show_vip() { let v = virtual_ip(\"\"); log(`vip ${v.address} router ${v.router_id}`); }\n",
    );
    std::fs::create_dir_all(test.home().join(".ssh")).expect("ssh dir");
    std::fs::copy(fleet.key(), test.home().join(".ssh/id_ed25519")).expect("key");

    // A floating network that is not an external one is refused before anything is made.
    test.run(&["cloud", "create", "web", "-e", "bad", "--no-provision"])
        .status(2)
        .stderr_has("no external network `weft-net` for floating IPs")
        .stderr_has("public");
    let groups = cli_json(&["security", "group", "list"]).to_string();
    assert!(
        !groups.contains(&format!("weft env bad in namespace {ns}")),
        "{groups}"
    );

    // --check of an env without a virtual IP says what a run would make, and makes nothing.
    let check = test.run(&["run", "show_vip", "-e", "f", "--check"]);
    check
        .status(0)
        .stderr_has("has no virtual IP yet: a run makes Neutron port `weft-")
        .stderr_has("on network `weft-net`");
    let port_name = check
        .stderr
        .split("Neutron port `")
        .nth(1)
        .and_then(|r| r.split('`').next())
        .expect("the port's name")
        .to_string();
    assert!(port_name.ends_with("-vip"), "{port_name}");
    let ports = cli_json(&["port", "list", "--name", &port_name]);
    assert_eq!(ports.as_array().map(Vec::len), Some(0), "{ports}");

    // register-key makes the key pair under the env's prefix; the same key again is fine,
    // another key under the same name is refused and the first stays.
    let keys = tempfile::tempdir().expect("keys");
    let bob = new_public_key(keys.path(), "bob");
    let mallory = new_public_key(keys.path(), "mallory");
    test.run(&["cloud", "register-key", &bob, "-e", "f"])
        .status(0)
        .stdout_has("registered key bob for env f");
    let made: Vec<String> = keypairs_of(&ns, "f").into_iter().collect();
    assert_eq!(made, [format!("{}-bob", scope_tag(&ns, "f"))]);
    let shown = cli_json(&["keypair", "show", &made[0]]);
    let fingerprint = shown["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    test.run(&["cloud", "register-key", &bob, "-e", "f"])
        .status(0);
    test.run(&[
        "cloud",
        "register-key",
        &mallory,
        "--name",
        "bob",
        "-e",
        "f",
    ])
    .status(2)
    .stderr_has(&format!("key pair `{}` already holds another key", made[0]))
    .stderr_has("--name");
    assert_eq!(
        cli_json(&["keypair", "show", &made[0]])["fingerprint"],
        fingerprint.as_str()
    );

    // Each machine gets a floating IP of `public`, which weft lists as its address.
    let standins = Standins::start(&fleet, &[0, 1]);
    test.run(&["cloud", "create", "web", "-e", "f", "--no-provision"])
        .status(0)
        .stdout_has("created web-0");
    test.run(&["cloud", "create", "web", "-e", "g", "--no-provision"])
        .status(0)
        .stdout_has("created web-0");
    let f_ips = floating_ips_of("f", &ns);
    let g_ips = floating_ips_of("g", &ns);
    assert_eq!((f_ips.len(), g_ips.len()), (1, 1), "{f_ips:?} {g_ips:?}");
    let f = machines(&test, "f");
    let f_ip = f_ips.iter().next().expect("f's").clone();
    assert_eq!(
        f[0]["tags"]["weft:address"],
        format!("root@{f_ip}:22").as_str(),
        "{f:?}"
    );
    assert!(f_ip.starts_with("192.0.2."), "{f_ip}");
    let id_f = f[0]["id"].as_str().expect("id").to_string();
    let port_f = cli_json(&["port", "list", "--server", &id_f])[0]["ID"]
        .as_str()
        .expect("port")
        .to_string();
    let fip = cli_json(&["floating", "ip", "show", &f_ip]);
    assert_eq!(fip["port_id"], port_f.as_str(), "{fip}");
    // The env's machines reach each other at their floating IPs: the env's group lets them in.
    let group_f = cli_json(&["security", "group", "list"])
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["Description"] == format!("weft env f in namespace {ns}").as_str())
        .and_then(|g| g["ID"].as_str().map(str::to_string))
        .expect("env f's security group");
    let rules_f = || cli_json(&["security", "group", "rule", "list", &group_f]).to_string();
    assert!(rules_f().contains(&format!("{f_ip}/32")), "{}", rules_f());

    // A floating IP whose rule is missing (a create that failed between the two) gets it
    // back on the env's next create.
    let rule_of = |prefix: &str| {
        cli_json(&["security", "group", "rule", "list", &group_f])
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r.to_string().contains(prefix))
            .and_then(|r| r["ID"].as_str().map(str::to_string))
    };
    let rule = rule_of(&format!("\"{f_ip}/32\"")).expect("f's rule");
    openstack_sh(&["cli", "security", "group", "rule", "delete", &rule]);
    assert!(!rules_f().contains(&format!("{f_ip}/32")), "{}", rules_f());
    test.run(&["cloud", "create", "web", "-e", "f", "--no-provision"])
        .status(0)
        .stdout_has("created web-1");
    let f_ips_now = floating_ips_of("f", &ns);
    assert_eq!(f_ips_now.len(), 2, "{f_ips_now:?}");
    let f1_ip = f_ips_now
        .iter()
        .find(|ip| **ip != f_ip)
        .expect("web-1's")
        .clone();
    for ip in [&f_ip, &f1_ip] {
        assert!(
            rules_f().contains(&format!("{ip}/32")),
            "{ip}: {}",
            rules_f()
        );
    }
    // A rule of the env's whose address the env no longer holds (a release that failed
    // between the two) would let a later owner of that address in: terminate removes it.
    openstack_sh(&[
        "cli",
        "security",
        "group",
        "rule",
        "create",
        "--ingress",
        "--ethertype",
        "IPv4",
        "--remote-ip",
        "198.18.0.77/32",
        "--description",
        &format!("weft env f in namespace {ns}"),
        &group_f,
    ]);
    assert!(rules_f().contains("198.18.0.77/32"), "{}", rules_f());

    // terminate releases the machine's floating IP, not the other env's or machine's.
    test.run(&["cloud", "terminate", "web-0", "-e", "f", "--yes"])
        .status(0);
    assert_eq!(floating_ips_of("f", &ns), BTreeSet::from([f1_ip.clone()]));
    assert!(!rules_f().contains(&format!("{f_ip}/32")), "{}", rules_f());
    assert!(!rules_f().contains("198.18.0.77/32"), "{}", rules_f());
    assert!(rules_f().contains(&format!("{f1_ip}/32")), "{}", rules_f());
    assert_eq!(floating_ips_of("g", &ns), g_ips);

    // destroy releases every floating IP weft made for the env, one a terminate left behind
    // too, and leaves no port, security group or key pair of it; env g keeps its own.
    let left = cli_json(&[
        "floating",
        "ip",
        "create",
        "public",
        "--description",
        &format!("weft env f in namespace {ns}"),
    ]);
    let left = left["floating_ip_address"]
        .as_str()
        .expect("address")
        .to_string();
    test.run(&["cloud", "destroy", "-e", "f", "--yes"])
        .status(0)
        .stdout_has(&format!("floating IP {left}"))
        .stdout_has("security group")
        .stdout_has(&format!("key pair {}", made[0]));
    assert!(floating_ips_of("f", &ns).is_empty());
    assert_eq!(floating_ips_of("g", &ns), g_ips);
    let ports = cli_json(&["port", "list", "--long"]).to_string();
    assert!(!ports.contains(&port_f), "{ports}");
    let groups = cli_json(&["security", "group", "list"]).to_string();
    assert!(
        !groups.contains(&format!("weft env f in namespace {ns}")),
        "{groups}"
    );
    assert!(
        groups.contains(&format!("weft env g in namespace {ns}")),
        "{groups}"
    );
    assert!(keypairs_of(&ns, "f").is_empty());
    assert_eq!(machines(&test, "g").len(), 1);

    // env_down releases them as terminate does.
    test.run(&["run", "env_down", "-e", "g", "--yes"]).status(0);
    assert!(machines(&test, "g").is_empty());
    assert!(floating_ips_of("g", &ns).is_empty());
    test.run(&["cloud", "destroy", "-e", "g", "--yes"])
        .status(0);
    assert!(keypairs_of(&ns, "g").is_empty());
    drop(standins);
}
