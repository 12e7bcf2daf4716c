//! Machines: the `local` sandbox provider for real, and the `ec2` provider against moto.

#[cfg(feature = "ec2")]
use std::net::TcpListener;
use std::path::Path;
#[cfg(feature = "ec2")]
use std::process::{Child, Command, Stdio};

#[cfg(feature = "ec2")]
use crate::fleet::Fleet;
use crate::harness::{Destroy, Outcome, Test};

/// Two `web` machines in env `dev`, made without provisioning; destroyed when the guard drops.
fn two_bare_web_machines(test: &Test) -> (Destroy<'_>, Outcome) {
    let guard = Destroy { test, env: "dev" };
    let made = test.run(&[
        "cloud",
        "create",
        "web",
        "-n",
        "2",
        "-e",
        "dev",
        "--no-provision",
    ]);
    made.status(0);
    (guard, made)
}

#[test]
fn local_machines_have_their_own_hostname_and_disk_and_survive_image_and_destroy() {
    let test = Test::with_config("[project]\nname = \"cloud\"\n[env.dev]\nprovider = \"local\"\n");
    let (_cleanup, made) = two_bare_web_machines(&test);
    made.stdout_has("created web-1");
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
    test.ssh("dev", "web-0", &["touch", &marker]).status(0);
    test.ssh("dev", "web-0", &["test", "-e", &marker]).status(0);
    test.ssh("dev", "web-1", &["test", "-e", &marker]).status(1);
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
    test.ssh("dev", "web-0", &["test", "-e", &marker]).status(0);

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
    test.ssh("dev", "web-2", &["test", "-e", &marker]).status(0);
    test.ssh("dev", "web-2", &["hostname"])
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

#[test]
fn a_machine_sees_nothing_of_the_host_nor_of_other_machines() {
    let test = Test::with_config("[project]\nname = \"iso\"\n[env.dev]\nprovider = \"local\"\n");
    let (_cleanup, _) = two_bare_web_machines(&test);
    // A secret in root's ~/.ssh on the host and weft's own machine key stay on the host.
    let planted = format!("/root/.ssh/weft-planted-{}", std::process::id());
    std::fs::create_dir_all("/root/.ssh").expect("root's .ssh");
    std::fs::write(&planted, "host secret\n").expect("plant");
    let key = test.home().join(".local/share/weft/keys/id_ed25519");
    assert!(key.exists(), "weft made its machine key");
    let key = key.display().to_string();
    for path in [planted.as_str(), key.as_str()] {
        test.ssh("dev", "web-0", &["cat", path]).status(1);
    }
    let _ = std::fs::remove_file(&planted);
    // The machine's root filesystem is Debian's own, with systemd as PID 1.
    test.ssh("dev", "web-0", &["cat", "/proc/1/comm"])
        .status(0)
        .stdout_has("systemd");
    // A file written in one machine is neither in the other nor on the host.
    let marker = format!("/etc/weft-written-in-web-1-{}", std::process::id());
    test.ssh("dev", "web-1", &["touch", &marker]).status(0);
    test.ssh("dev", "web-0", &["test", "-e", &marker]).status(1);
    assert!(!Path::new(&marker).exists(), "a machine wrote to the host");
}

#[test]
fn a_machine_made_under_umask_077_still_lets_every_user_read_etc() {
    let test = Test::with_config("[project]\nname = \"mask\"\n[env.dev]\nprovider = \"local\"\n");
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    // The same weft command, started by a shell with a private umask (twistd, cron jobs).
    let weft = test.command(&["cloud", "create", "web", "-e", "dev", "--no-provision"]);
    let mut masked = std::process::Command::new("sh");
    masked
        .args(["-c", "umask 077; exec \"$0\" \"$@\""])
        .arg(weft.get_program())
        .args(weft.get_args())
        .current_dir(test.path())
        .env_clear()
        .envs(weft.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    let made = masked.output().expect("weft runs");
    assert!(made.status.success(), "{made:?}");
    test.ssh(
        "dev",
        "web-0",
        &["runuser", "-u", "nobody", "--", "cat", "/etc/hostname"],
    )
    .status(0)
    .stdout_has("web-0");
    // root's own keys stay root's.
    test.ssh(
        "dev",
        "web-0",
        &["stat", "-c", "%a", "/root/.ssh/authorized_keys"],
    )
    .status(0)
    .stdout_has("600");
}

#[test]
fn packages_install_from_the_mirror_inside_a_fresh_machine() {
    let test = Test::with_config("[project]\nname = \"pkg\"\n[env.dev]\nprovider = \"local\"\n");
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    test.write(
        "deploy/redis.rhai",
        "/// Installs redis.\nfn redis(host) { host.packages([\"redis-server\"]); }\n",
    );
    test.run(&["cloud", "create", "db", "-e", "dev", "--no-provision"])
        .status(0);
    test.ssh("dev", "db-0", &["test", "-e", "/usr/bin/redis-server"])
        .status(1);
    test.run(&["run", "redis", "-e", "dev"]).status(0);
    test.ssh("dev", "db-0", &["systemctl", "is-active", "redis-server"])
        .status(0)
        .stdout_has("active");
    test.ssh("dev", "db-0", &["redis-cli", "ping"])
        .status(0)
        .stdout_has("PONG");
}

#[test]
fn a_roles_packages_are_baked_into_an_image_its_machines_boot_with() {
    let test = Test::with_config(
        "[project]\nname = \"baked\"\n[env.dev]\nprovider = \"local\"\n\
         [env.dev.machines.tool]\npackages = [\"sl\"]\n\
         [env.dev.machines.bad]\npackages = [\"weft-no-such-package\"]\n",
    );
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    // A package apt does not know: an error with apt's words, and no machine or image made.
    test.run(&["cloud", "create", "bad", "-e", "dev", "--no-provision"])
        .status(2)
        .stderr_has("installing weft-no-such-package into image debian-12+")
        .stderr_has("Unable to locate package weft-no-such-package");
    test.run(&["cloud", "list", "-e", "dev"])
        .status(0)
        .stdout_lacks("bad-0");
    // The machine starts with the package: nothing was installed after boot.
    test.run(&["cloud", "create", "tool", "-e", "dev", "--no-provision"])
        .status(0);
    has_sl(&test);
    let images = test.run(&["cloud", "images"]);
    images.status(0);
    // Named by its package list, so every role asking for the same packages shares it.
    use sha2::Digest;
    let digest = sha2::Sha256::digest(b"sl");
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let name = format!("debian-12+{hex}");
    images.stdout_has(&name);
    // The image cannot go while a machine boots from it.
    test.run(&["cloud", "images", "--remove", &name])
        .status(2)
        .stderr_has("1 machine(s) boot from image");
    // Restarted, the machine boots from the same image.
    test.run(&["cloud", "stop", "tool-0", "-e", "dev"])
        .status(0);
    test.run(&["cloud", "start", "tool-0", "-e", "dev"])
        .status(0);
    has_sl(&test);
}

/// tool-0 has the `sl` package's program.
fn has_sl(test: &Test) {
    test.ssh("dev", "tool-0", &["test", "-x", "/usr/games/sl"])
        .status(0);
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

/// The python of the tests' own virtualenv, where `scripts/test.sh` installs moto.
#[cfg(feature = "ec2")]
pub(crate) fn test_python() -> String {
    std::env::var("WEFT_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "WEFT_TEST_PYTHON is not set: run the tests with scripts/test.sh, which makes the \
             virtualenv with moto and sets it"
        )
    })
}

/// moto's EC2 server on a free loopback port, stopped when dropped.
#[cfg(feature = "ec2")]
pub(crate) struct Moto {
    child: Child,
    pub(crate) port: u16,
}

#[cfg(feature = "ec2")]
impl Moto {
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// moto with `env` set (`INITIAL_NO_AUTH_ACTION_COUNT` makes it check IAM).
    pub(crate) fn start_with(env: &[(&str, &str)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let mut child = Command::new(test_python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("MOTO_ENABLE_AMI_VALIDATION", "true")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts from the tests' virtualenv (scripts/test.sh makes it)");
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

    pub(crate) fn env(&self) -> Vec<(String, String)> {
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

#[cfg(feature = "ec2")]
impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An AMI moto knows.
#[cfg(feature = "ec2")]
pub(crate) fn moto_ami() -> String {
    let out = Command::new(test_python())
        .args(["-c", "import json, os, moto; print(json.load(open(os.path.join(os.path.dirname(moto.__file__), 'ec2/resources/amis.json')))[0]['ami_id'])"])
        .output()
        .expect("the tests' python");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[cfg(feature = "ec2")]
/// moto's view of the instances (id, state, tags, decoded user data) and security groups.
pub(crate) fn moto_describe(port: u16) -> serde_json::Value {
    let script = r#"
import base64, email, json, sys, boto3
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
out = {"instances": [], "groups": ec2.describe_security_groups()["SecurityGroups"]}
for r in ec2.describe_instances()["Reservations"]:
    for i in r["Instances"]:
        data = ec2.describe_instance_attribute(InstanceId=i["InstanceId"], Attribute="userData")
        raw = data.get("UserData", {}).get("Value", "")
        text = base64.b64decode(raw).decode() if raw else ""
        # Parts as cloud-init's MIME parser (Python's email) sees them.
        parts = [[p.get_content_type(), p.get_payload()]
                 for p in email.message_from_string(text).walk() if not p.is_multipart()]
        out["instances"].append({"id": i["InstanceId"], "state": i["State"]["Name"],
            "tags": {t["Key"]: t["Value"] for t in i.get("Tags", [])},
            "user_data": text, "parts": parts})
print(json.dumps(out, default=str))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &format!("http://127.0.0.1:{port}")])
        .output()
        .expect("python3");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "moto describe: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[cfg(feature = "ec2")]
/// The host private key weft put in an instance's user data (its cloud-config part).
fn host_key_of(user_data: &str) -> Option<String> {
    let line = user_data.lines().find(|l| l.starts_with('{'))?;
    let config: serde_json::Value = serde_json::from_str(line).ok()?;
    config["ssh_keys"]["ed25519_private"]
        .as_str()
        .map(str::to_string)
}

#[cfg(feature = "ec2")]
/// Stands in for booting: each new instance's SSH endpoint (a fleet host's port) gets an sshd
/// started with the host key weft put in the instance's user data, as cloud-init would.
struct Standins {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    dirs: Vec<String>,
}

#[cfg(feature = "ec2")]
fn sshd_pid(dir: &str) -> Option<String> {
    std::fs::read_to_string(format!("{dir}/sshd.pid"))
        .ok()
        .map(|p| p.trim().to_string())
        .filter(|p| Path::new(&format!("/proc/{p}")).exists())
}

#[cfg(feature = "ec2")]
/// Stops the sshd serving a fleet host folder (the machine behind it went away).
fn stop_sshd(dir: &str) {
    if let Some(pid) = sshd_pid(dir) {
        let _ = Command::new("kill").arg(&pid).status();
        for _ in 0..50 {
            if sshd_pid(dir).is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[cfg(feature = "ec2")]
impl Standins {
    fn start(moto: &Moto, fleet: &Fleet, hosts: &[usize]) -> Self {
        let ports: Vec<(String, String)> = hosts
            .iter()
            .map(|&i| {
                let dir = fleet.path(&format!("host-{i}"));
                stop_sshd(&dir);
                (fleet.address(i, "root"), dir)
            })
            .collect();
        let dirs = ports.iter().map(|(_, d)| d.clone()).collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let port = moto.port;
        let thread = std::thread::spawn(move || {
            let mut served = std::collections::HashSet::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let now = moto_describe(port);
                for instance in now["instances"].as_array().into_iter().flatten() {
                    let id = instance["id"].as_str().unwrap_or_default().to_string();
                    let endpoint = instance["tags"]["weft:ssh-endpoint"].as_str().unwrap_or("");
                    let Some((_, dir)) = ports.iter().find(|(a, _)| a == endpoint) else {
                        continue;
                    };
                    let Some(key) = host_key_of(instance["user_data"].as_str().unwrap_or(""))
                    else {
                        continue;
                    };
                    if instance["state"] != "running" || !served.insert(id) {
                        continue;
                    }
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
                    assert!(status.success(), "sshd with the instance's key");
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        Standins {
            stop,
            thread: Some(thread),
            dirs,
        }
    }
}

#[cfg(feature = "ec2")]
impl Drop for Standins {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        for dir in &self.dirs {
            stop_sshd(dir);
        }
    }
}

#[cfg(feature = "ec2")]
#[test]
fn ec2_machines_against_moto() {
    let moto = Moto::start();
    let fleet = Fleet::start(2);
    let ami = moto_ami();
    let endpoint = fleet.address(0, "root");
    let stranger = fleet.address(1, "root");
    let config = format!(
        "[project]\nname = \"cloud\"\n\
         [env.prod]\nprovider = \"ec2\"\nregion = \"us-east-1\"\nnamespace = \"/prod/\"\nssh_cidr = \"198.51.100.0/24\"\n\
         [env.prod.machines.web]\nimage = \"{ami}\"\nsize = \"t3.micro\"\npackages = [\"nginx\"]\nuser_data = \"#!/bin/sh\\necho from the user's script\\n\"\ntags = {{ \"weft:ssh-endpoint\" = \"{endpoint}\" }}\n\
         [env.prod.machines.db]\nimage = \"{ami}\"\ntags = {{ \"weft:ssh-endpoint\" = \"{stranger}\" }}\n\
         [env.stage]\nprovider = \"ec2\"\nregion = \"us-east-1\"\nnamespace = \"/stage/\"\nssh_cidr = \"0.0.0.0/0\"\n\
         [env.stage.machines.web]\nimage = \"ami-00000000deadbeef0\"\n\
         [env.stage.machines.odd]\nimage = \"{ami}\"\nuser_data = \"echo no interpreter line\"\n"
    );
    let test = Test::with_config(&config).with_env(moto.env());
    test.write(
        "deploy/web.rhai",
        "/// Provisions a new web machine.\nfn web_provision(host) { host.run(\"echo provisioned on $(hostname)\"); }\n",
    );
    // Only weft's login key: no host key is copied anywhere by hand.
    std::fs::create_dir_all(test.home().join(".ssh")).expect("ssh dir");
    std::fs::copy(fleet.key(), test.home().join(".ssh/id_ed25519")).expect("key");
    let standins = Standins::start(&moto, &fleet, &[0]);

    // create waits until the machine answers with the host key weft made, then provisions it.
    test.run(&["cloud", "create", "web", "-e", "prod"])
        .status(0)
        .stdout_has("created web-0")
        .stdout_has("web-0 | provisioned on");
    let known = std::fs::read_to_string(test.home().join(".local/share/weft/known_hosts"))
        .expect("weft's known_hosts");
    let moto_view = moto_describe(moto.port);
    let web0 = &moto_view["instances"][0];
    let user_data = web0["user_data"].as_str().expect("user data");
    let key = host_key_of(user_data).expect("a host key in the user data");
    assert!(key.contains("OPENSSH PRIVATE KEY"));
    assert!(
        known.contains(&format!("weft:{}", web0["id"].as_str().expect("id"))),
        "{known}"
    );
    // The user's script is its own MIME part, unchanged, beside weft's cloud-config; a
    // boot command removes the user data from cloud-init's files.
    let parts = web0["parts"].as_array().expect("MIME parts");
    assert_eq!(parts.len(), 2, "{user_data}");
    assert_eq!(parts[0][0], "text/cloud-config");
    // The role's packages are cloud-init's to install at first boot.
    let weft_part = parts[0][1].as_str().expect("weft's cloud-config");
    assert!(weft_part.contains(r#""packages":["nginx"]"#), "{weft_part}");
    assert_eq!(parts[1][0], "text/x-shellscript");
    assert_eq!(parts[1][1], "#!/bin/sh\necho from the user's script\n");
    assert!(user_data.contains("rm -f /var/lib/cloud/instance/user-data.txt"));
    // SSH is open to the configured CIDR only.
    let ingress = moto_view["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["Tags"].to_string().contains("weft:env"))
        .map(|g| g["IpPermissions"].to_string())
        .expect("weft's security group");
    assert!(ingress.contains("198.51.100.0/24"), "{ingress}");
    assert!(!ingress.contains("0.0.0.0/0"), "{ingress}");

    // A machine answering with another key is refused and never admitted.
    test.run(&["cloud", "create", "db", "-e", "prod", "--no-provision"])
        .status(2)
        .stderr_has("db-0")
        .stderr_has("another host key");
    test.run(&["cloud", "list", "-e", "prod"])
        .status(0)
        .stdout_has("db-0");
    // -vv shows the AWS SDK's requests; credentials never reach the log.
    let secret = "sk-3b9f0c2e7d1a4e58";
    test.run_with(
        &["-vv", "cloud", "list", "-e", "prod"],
        &[
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_SESSION_TOKEN", secret),
        ],
    )
    .status(0)
    .stdout_has("db-0")
    .stderr_has("aws_smithy_runtime")
    .stderr_has("DescribeInstances")
    .stderr_lacks(secret);
    test.run(&["run", "system_info", "-e", "prod"])
        .status(0)
        .stdout_has("web-0 | hostname:")
        .stdout_lacks("db-0 |")
        .stderr_has("skipping db-0");
    test.run(&["cloud", "terminate", "db-0", "-e", "prod", "--yes"])
        .status(0);

    let list = test.run(&["cloud", "list", "-e", "prod", "--json"]);
    list.status(0);
    let machines: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).expect("json");
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0]["tags"]["weft:namespace"], "/prod/");
    // Another namespace sees none of them.
    test.run(&["cloud", "list", "-e", "stage", "--json"])
        .status(0)
        .stdout_has("[]");
    // A bad AMI is one readable line with the AWS error code; SSH open to all is warned about.
    test.run(&["cloud", "create", "web", "-e", "stage", "--no-provision"])
        .status(2)
        .stderr_has("warning: env `stage` opens SSH to every address")
        .stderr_has("InvalidAMIID");
    // user_data that cloud-init would not run is refused before anything is made.
    test.run(&["cloud", "create", "odd", "-e", "stage", "--no-provision"])
        .status(2)
        .stderr_has("user_data must start with `#!`");

    test.run(&["cloud", "stop", "web-0", "-e", "prod"])
        .status(0);
    test.run(&["cloud", "list", "-e", "prod"])
        .status(0)
        .stdout_has("stopped");
    test.run(&["cloud", "start", "web-0", "-e", "prod"])
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
    // The old machine goes away before the new one comes at the same test endpoint.
    stop_sshd(&fleet.path("host-0"));
    test.run(&[
        "cloud",
        "recreate",
        "web",
        "--image",
        &ami_id,
        "-e",
        "prod",
        "--no-provision",
    ])
    .status(0)
    .stdout_has("created web-1");
    test.run(&["cloud", "terminate", "web-1", "-e", "prod", "--yes"])
        .status(0);
    test.run(&["cloud", "destroy", "-e", "prod", "--yes"])
        .status(0)
        .stdout_has("deleted security group");
    test.run(&["cloud", "list", "-e", "prod", "--json"])
        .status(0)
        .stdout_has("[]");
    drop(standins);
    // Terminated machines leave no host key behind.
    let known = std::fs::read_to_string(test.home().join(".local/share/weft/known_hosts"))
        .unwrap_or_default();
    assert!(!known.contains("weft:i-"), "{known}");
}

#[cfg(feature = "ec2")]
#[test]
fn ec2_uses_the_envs_aws_profile() {
    let moto = Moto::start();
    let test = Test::with_config(
        "[project]\nname = \"cloud\"\n\
         [env.prod]\nprovider = \"ec2\"\nregion = \"us-east-1\"\nprofile = \"beta\"\n",
    );
    let dir = test.home().join("aws");
    std::fs::create_dir_all(&dir).expect("aws dir");
    let mut config = String::new();
    for name in ["alpha", "beta"] {
        let script = dir.join(format!("creds-{name}.sh"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ntouch {marker}\necho '{{\"Version\": 1, \"AccessKeyId\": \"AKIA{upper}\", \"SecretAccessKey\": \"s\"}}'\n",
                marker = dir.join(format!("used-{name}")).display(),
                upper = name.to_uppercase()
            ),
        )
        .expect("script");
        let _ = Command::new("chmod")
            .args(["755", &script.display().to_string()])
            .status();
        config.push_str(&format!(
            "[profile {name}]\ncredential_process = {}\n",
            script.display()
        ));
    }
    let config_file = dir.join("config");
    std::fs::write(&config_file, config).expect("aws config");
    // Keys in the environment too: the env's profile wins over them.
    let test = test.with_env(moto.env()).with_env(vec![(
        "AWS_CONFIG_FILE".into(),
        config_file.display().to_string(),
    )]);
    test.run(&["cloud", "list", "-e", "prod", "--json"])
        .status(0)
        .stdout_has("[]");
    assert!(
        dir.join("used-beta").exists(),
        "the profile's credential_process ran"
    );
    assert!(!dir.join("used-alpha").exists(), "another profile was used");
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
fn env_status_env_down_and_cloud_list_need_none_of_the_apps_secrets() {
    let test = Test::new();
    test.run(&[
        "init",
        "--skeleton",
        "python-postgres",
        "--name",
        "nosecrets",
    ])
    .status(0);
    // NOTES_DB_PASSWORD and REDIS_PASSWORD are unset: these never use them.
    for args in [
        &["run", "env_status", "-e", "dev"][..],
        &["run", "env_down", "-e", "dev", "--yes"],
        &["cloud", "list", "-e", "dev"],
    ] {
        test.run(args).status(0).stderr_lacks("is not set");
    }
}

#[test]
fn env_down_terminates_nothing_under_check_or_without_confirmation() {
    let test = Test::with_config("[project]\nname = \"shop\"\n[env.dev]\nprovider = \"local\"\n");
    let (_cleanup, _) = two_bare_web_machines(&test);
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
        .stderr_has("terminate these machines of project `shop`, namespace `/shop/`, env `dev`")
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
        test.ssh("dev", name, &["cat", "/root/deployed"])
            .status(0)
            .stdout_has(name);
    }
    test.ssh("dev", "lb-0", &["cat", "/root/provisioned"])
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
    let keys = |t: &Test| t.ssh("dev", "web-0", &["cat", "/root/.ssh/authorized_keys"]);
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

/// A VIP on EC2 is refused before anything is made, saying why and what to use instead.
#[cfg(feature = "ec2")]
#[test]
fn an_ec2_env_refuses_a_virtual_ip_and_says_why() {
    let moto = Moto::start();
    let test = Test::with_config(
        "[project]\nname = \"shop\"\n\
         [apps.site]\nrepos = [{ name = \"site\", path = \"site\", install = false }]\nvip = \"10.0.0.50\"\n\
         [env.prod]\nprovider = \"ec2\"\nregion = \"us-east-1\"\nssh_cidr = \"198.51.100.0/24\"\n\
         [env.prod.machines.lb]\ncount = 2\n",
    )
    .with_env(moto.env());
    test.write("site/index.html", "v1\n");
    test.run(&["run", "site_deploy", "-e", "prod"])
        .status(1)
        .stderr_has("a virtual IP (`vip`) needs VRRP, which an EC2 VPC does not carry")
        .stderr_has("Elastic IP")
        .stdout_lacks("site_lock")
        .stdout_lacks("building");
    assert_eq!(
        moto_describe(moto.port)["instances"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

/// A folder for PATH holding links to `tools` and a `python3` that cannot make a virtualenv,
/// as on a host without python3-venv.
fn bin_without(test: &Test, tools: &[&str]) -> String {
    let bin = test.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for tool in tools {
        let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .map(|dir| Path::new(dir).join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} is installed"));
        std::os::unix::fs::symlink(found, bin.join(tool)).expect("link");
    }
    test.write(
        "bin/python3",
        "#!/bin/sh\necho 'No module named ensurepip' >&2\nexit 1\n",
    );
    std::fs::set_permissions(
        bin.join("python3"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    bin.display().to_string()
}

#[test]
fn env_up_names_every_missing_debian_package_before_making_anything() {
    let config = "[project]\nname = \"prereq\"\n\
                  [apps.site]\nrepos = [{ name = \"site\", path = \"site\", install = false }]\n\
                  [env.prereq]\nprovider = \"local\"\n[env.prereq.machines.app]\ncount = 1\n";
    // No nft, and a python3 without venv: one diagnostic names both packages.
    let lacking = Test::with_config(config);
    let bin = bin_without(&lacking, &["systemd-nspawn", "debootstrap", "ip"]);
    let lacking = lacking.with_env(vec![("PATH".into(), bin.clone())]);
    lacking.write("site/index.html", "v1\n");
    lacking
        .run(&["run", "env_up", "-e", "prereq"])
        .status(2)
        .stderr_has("`nft` (package nftables)")
        .stderr_has("`python3 -m venv` (package python3-venv)")
        .stderr_has("apt-get install nftables python3-venv")
        .stderr_lacks("debootstrap (");
    // Every tool there but python3-venv: env_up names it before any machine is made.
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    let no_venv = Test::with_config(config).with_env(vec![("PATH".into(), path)]);
    no_venv.write("site/index.html", "v1\n");
    no_venv
        .run(&["run", "env_up", "-e", "prereq"])
        .status(1)
        .stdout_has("python3 cannot make a virtualenv: install the Debian package python3-venv")
        .stdout_lacks("created");
    // Neither run made a machine (both projects name the same env under the same namespace).
    no_venv
        .run(&["cloud", "list", "-e", "prereq", "--json"])
        .status(0)
        .stdout_has("[]");
}
