//! Machines: the `local` sandbox provider for real, and the `ec2` provider against moto.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::fleet::Fleet;
use crate::harness::{Destroy, Test};

#[test]
fn local_machines_have_their_own_hostname_and_disk_and_survive_image_and_destroy() {
    let test = Test::with_config("[project]\nname = \"cloud\"\n[env.dev]\nprovider = \"local\"\n");
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    test.run(&[
        "cloud",
        "create",
        "web",
        "-n",
        "2",
        "-e",
        "dev",
        "--no-provision",
    ])
    .status(0)
    .stdout_has("created web-1");
    let list = test.run(&["cloud", "list", "-e", "dev", "--json"]);
    list.status(0);
    let machines: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).expect("json");
    assert_eq!(machines.len(), 2);
    assert_eq!(machines[1]["role"], "web");
    assert_eq!(machines[1]["ordinal"], 1);
    assert_eq!(machines[1]["state"], "running");
    test.run(&["cloud", "list", "-e", "dev"])
        .status(0)
        .stdout_has("web-0")
        .stdout_has("running");

    // Own hostname, reached by role and ordinal.
    test.run(&["ssh", "web", "-o", "1", "-e", "dev", "--", "hostname"])
        .status(0)
        .stdout_has("web-1");
    // Own disk: a file written on one machine is on neither the other nor this host.
    let marker = format!("/root/weft-only-on-web-0-{}", std::process::id());
    test.run(&["ssh", "web-0", "-e", "dev", "--", "touch", &marker])
        .status(0);
    test.run(&["ssh", "web-0", "-e", "dev", "--", "test", "-e", &marker])
        .status(0);
    test.run(&["ssh", "web-1", "-e", "dev", "--", "test", "-e", &marker])
        .status(1);
    assert!(
        !Path::new(&marker).exists(),
        "a machine wrote to the host's disk"
    );
    // Goals run on the env's machines, found by the provider.
    test.run(&["run", "system_info", "-e", "dev"])
        .status(0)
        .stdout_has("web-0 | hostname: web-0")
        .stdout_has("summary: 2 ok");

    // Stop and start keep the disk.
    test.run(&["cloud", "stop", "web", "-o", "0", "-e", "dev"])
        .status(0);
    test.run(&["cloud", "list", "-e", "dev"])
        .status(0)
        .stdout_has("stopped");
    test.run(&["cloud", "start", "web-0", "-e", "dev"])
        .status(0);
    test.run(&["ssh", "web-0", "-e", "dev", "--", "test", "-e", &marker])
        .status(0);

    // An image of web-0 makes a new machine that holds the file.
    test.run(&["cloud", "image", "web", "-o", "0", "-e", "dev", "golden"])
        .status(0);
    test.run(&[
        "cloud",
        "recreate",
        "web",
        "--image",
        "golden",
        "-e",
        "dev",
        "--no-provision",
    ])
    .status(0)
    .stdout_has("created web-2");
    test.run(&["ssh", "web-2", "-e", "dev", "--", "test", "-e", &marker])
        .status(0);
    test.run(&["ssh", "web-2", "-e", "dev", "--", "hostname"])
        .status(0)
        .stdout_has("web-2");

    // Destroy leaves nothing running and no folder behind.
    let pids: Vec<u64> = machines_pids(&test);
    test.run(&["cloud", "destroy", "-e", "dev"])
        .status(2)
        .stderr_has("--yes");
    test.run(&["cloud", "destroy", "-e", "dev", "--yes"])
        .status(0)
        .stdout_has("terminated web-2");
    test.run(&["cloud", "list", "-e", "dev", "--json"])
        .status(0)
        .stdout_has("[]");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || zombie(pid),
            "machine process {pid} still runs"
        );
    }
    let machines_dir = test.home().join(".local/share/weft/machines");
    let left: Vec<_> = std::fs::read_dir(&machines_dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "machine folders left behind: {left:?}");
}

fn machines_pids(test: &Test) -> Vec<u64> {
    let dir = test.home().join(".local/share/weft/machines");
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path().join("meta.json")).ok())
                .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .filter_map(|m| m["pid"].as_u64())
                .collect()
        })
        .unwrap_or_default()
}

fn zombie(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn the_local_provider_names_what_is_wrong() {
    let test = Test::with_config("[project]\nname = \"cloud\"\n[env.dev]\nprovider = \"local\"\n[env.plain]\nhosts = { a = \"root@127.0.0.1:1\" }\n");
    test.run(&["cloud", "list", "-e", "plain"])
        .status(2)
        .stderr_has("env `plain` has no provider");
    test.run(&["cloud", "list", "-e", "dve"])
        .status(2)
        .stderr_has("did you mean `dev`?");
    test.run(&["cloud", "start", "web-7", "-e", "dev"])
        .status(2)
        .stderr_has("no machine `web-7`");
}

/// moto's EC2 server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let mut child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("MOTO_ENABLE_AMI_VALIDATION", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts (pip install 'moto[server]')");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Moto { child, port };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto did not start");
    }

    fn env(&self) -> Vec<(String, String)> {
        [
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An AMI moto knows.
fn moto_ami() -> String {
    let out = Command::new("python3")
        .args(["-c", "import json, os, moto; print(json.load(open(os.path.join(os.path.dirname(moto.__file__), 'ec2/resources/amis.json')))[0]['ami_id'])"])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn ec2_machines_against_moto() {
    let moto = Moto::start();
    let fleet = Fleet::start(1);
    let ami = moto_ami();
    let endpoint = fleet.address(0, "root");
    let config = format!(
        "[project]\nname = \"cloud\"\n\
         [env.prod]\nprovider = \"ec2\"\nregion = \"us-east-1\"\nnamespace = \"/prod/\"\n\
         [env.prod.machines.web]\nimage = \"{ami}\"\nsize = \"t3.micro\"\ntags = {{ \"weft:ssh-endpoint\" = \"{endpoint}\" }}\n\
         [env.stage]\nprovider = \"ec2\"\nregion = \"us-east-1\"\nnamespace = \"/stage/\"\n\
         [env.stage.machines.web]\nimage = \"ami-00000000deadbeef0\"\n"
    );
    let test = Test::with_config(&config).with_env(moto.env());
    test.write(
        "deploy/web.rhai",
        "/// Provisions a new web machine.\nfn web_provision(host) { host.run(\"echo provisioned on $(hostname)\"); }\n",
    );
    let known = fleet.known_hosts();
    std::fs::create_dir_all(test.home().join(".ssh")).expect("ssh dir");
    std::fs::copy(&known, test.home().join(".ssh/known_hosts")).expect("known_hosts");
    std::fs::copy(fleet.key(), test.home().join(".ssh/id_ed25519")).expect("key");

    // create waits for the machine, then provisions it over SSH.
    test.run(&["cloud", "create", "web", "-n", "2", "-e", "prod"])
        .status(0)
        .stdout_has("created web-1")
        .stdout_has("web-0 | provisioned on");
    let list = test.run(&["cloud", "list", "-e", "prod", "--json"]);
    list.status(0);
    let machines: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).expect("json");
    assert_eq!(machines.len(), 2);
    assert_eq!(machines[0]["tags"]["weft:namespace"], "/prod/");
    assert_eq!(machines[1]["name"], "web-1");
    // Another namespace sees none of them.
    test.run(&["cloud", "list", "-e", "stage", "--json"])
        .status(0)
        .stdout_has("[]");
    // A bad AMI is one readable line with the AWS error code.
    test.run(&["cloud", "create", "web", "-e", "stage", "--no-provision"])
        .status(2)
        .stderr_has("InvalidAMIID");

    test.run(&["cloud", "stop", "web-1", "-e", "prod"])
        .status(0);
    test.run(&["cloud", "list", "-e", "prod"])
        .status(0)
        .stdout_has("stopped");
    test.run(&["cloud", "start", "web-1", "-e", "prod"])
        .status(0);
    let image = test.run(&["cloud", "image", "web", "-o", "0", "-e", "prod", "golden"]);
    image.status(0);
    let ami_id = image
        .stdout
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(ami_id.starts_with("ami-"), "{}", image.stdout);
    test.run(&["cloud", "recreate", "web", "--image", &ami_id, "-e", "prod"])
        .status(0)
        .stdout_has("created web-2");
    test.run(&["cloud", "terminate", "web-2", "-e", "prod", "--yes"])
        .status(0);
    test.run(&["cloud", "destroy", "-e", "prod", "--yes"])
        .status(0)
        .stdout_has("terminated web-0")
        .stdout_has("deleted security group");
    test.run(&["cloud", "list", "-e", "prod", "--json"])
        .status(0)
        .stdout_has("[]");
}

#[test]
fn interactive_weft_ssh_reaches_a_local_machine_through_a_terminal() {
    let test = Test::with_config("[project]\nname = \"shop\"\n[env.dev]\nprovider = \"local\"\n");
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    test.run(&["cloud", "create", "web", "-e", "dev", "--no-provision"])
        .status(0);
    // Nothing but weft's own known_hosts and machine key lets OpenSSH in, strictly.
    test.run_in_terminal(
        &["ssh", "web", "-o", "0", "-e", "dev"],
        "echo \"on:$(hostname) sum:$((6*7))\"; exit 4\n",
    )
    .status(4)
    .stdout_has("on:web-0 sum:42");
}

#[test]
fn env_down_terminates_nothing_under_check_or_without_confirmation() {
    let test = Test::with_config("[project]\nname = \"shop\"\n[env.dev]\nprovider = \"local\"\n");
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    test.run(&[
        "cloud",
        "create",
        "web",
        "-n",
        "2",
        "-e",
        "dev",
        "--no-provision",
    ])
    .status(0);
    let running = |test: &Test| {
        let list = test.run(&["cloud", "list", "-e", "dev", "--json"]);
        let machines: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).expect("json");
        machines
            .iter()
            .filter(|m| m["state"] == "running")
            .map(|m| m["name"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    test.run(&["run", "env_down", "-e", "dev", "--check"])
        .status(0)
        .stdout_has("would terminate machine web-0")
        .stdout_has("would terminate machine web-1")
        .stdout_lacks("terminated");
    assert_eq!(running(&test), ["web-0", "web-1"]);
    // No terminal to ask on and no --yes: the question names the env and the machines, and
    // weft refuses with exit 2.
    test.run(&["run", "env_down", "-e", "dev"])
        .status(2)
        .stderr_has("terminate these machines of env `dev`")
        .stderr_has("  web-1")
        .stdout_has("not confirmed (no terminal to ask on): nothing was terminated (web-0, web-1)");
    assert_eq!(running(&test), ["web-0", "web-1"]);
    test.run(&["run", "env_down", "-e", "dev", "--yes"])
        .status(0)
        .stdout_has("terminated web-1");
    assert!(running(&test).is_empty());
}

#[test]
fn env_lifecycle_goals_bring_an_env_up_and_down() {
    let test = Test::with_config(
        "[project]\nname = \"shop\"\n[env.dev]\nprovider = \"local\"\n\
         [env.dev.machines.web]\ncount = 2\nmin = 1\n[env.dev.machines.lb]\ncount = 1\n",
    );
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    // Light provisioning for the test, overriding the stdlib roles; and the app's deploy.
    test.write(
        "deploy/roles.rhai",
        "/// Web.\nfn web_provision(host) { host.file(\"/root/provisioned\", #{ content: \"web\\n\" }); }\n\
         /// Lb.\nfn lb_provision(host) { host.file(\"/root/provisioned\", #{ content: \"lb\\n\" }); }\n\
         /// Deploy.\nfn shop_deploy(host) { host.file(\"/root/deployed\", #{ content: host.name + \"\\n\" }); }\n",
    );
    test.run(&["run", "env_up_min", "-e", "dev"])
        .status(0)
        .stdout_has("created web-0")
        .stdout_has("created lb-0");
    test.run(&["run", "env_status", "-e", "dev"])
        .status(0)
        .stdout_has("web-0  running")
        .stdout_lacks("web-1");
    test.run(&["run", "env_up", "-e", "dev"])
        .status(0)
        .stdout_has("created web-1")
        .stdout_has("lb: 1 machine(s), 1 wanted");
    for name in ["web-0", "web-1", "lb-0"] {
        test.run(&["ssh", name, "-e", "dev", "--", "cat", "/root/deployed"])
            .status(0)
            .stdout_has(name);
    }
    test.run(&["ssh", "lb-0", "-e", "dev", "--", "cat", "/root/provisioned"])
        .status(0)
        .stdout_has("lb");
    test.run(&["run", "hosts_filter", "-e", "dev"])
        .status(0)
        .stdout_has("web-1: answers");
    test.run(&["run", "env_down", "-e", "dev", "--yes"])
        .status(0)
        .stdout_has("terminated lb-0");
    test.run(&["cloud", "list", "-e", "dev", "--json"])
        .status(0)
        .stdout_has("[]");
}

#[test]
fn keys_sync_makes_every_machine_hold_exactly_the_env_keys() {
    let test = Test::new();
    let alice =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice";
    let bob =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti bob";
    test.write("alice.pub", alice).write("bob.pub", bob);
    test.write(
        "weft.toml",
        "[project]\nname = \"keys\"\n[env.dev]\nprovider = \"local\"\nkeys = [\"bob.pub\"]\n",
    );
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    test.run(&["cloud", "register-key", "alice.pub", "-e", "dev"])
        .status(0)
        .stdout_has("registered key alice");
    test.run(&["cloud", "create", "web", "-e", "dev", "--no-provision"])
        .status(0);
    let keys = |t: &Test| {
        t.run(&[
            "ssh",
            "web-0",
            "-e",
            "dev",
            "--",
            "cat",
            "/root/.ssh/authorized_keys",
        ])
    };
    // Created with the registered key and the env's key.
    keys(&test).status(0).stdout_has("alice").stdout_has("bob");
    // Alice leaves the team: the env's set no longer has her.
    test.run(&["keys", "sync", "-e", "dev", "--check"])
        .status(0)
        .stdout_has("would change: file /root/.ssh/authorized_keys");
    keys(&test).status(0).stdout_has("alice");
    test.run(&["keys", "sync", "-e", "dev"])
        .status(0)
        .stdout_has("changed: file /root/.ssh/authorized_keys");
    keys(&test)
        .status(0)
        .stdout_lacks("alice")
        .stdout_has("bob")
        .stdout_has("weft-machines");
    test.run(&["keys", "sync", "-e", "dev"])
        .status(0)
        .stdout_has("summary: 1 ok, 0 changed");
}
