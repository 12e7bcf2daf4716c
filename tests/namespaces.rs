//! Projects never share machines: each project's provider envs live in its own namespace, old
//! machines of namespace `/` are adopted only on request, every project's machines are listed
//! together, and a deleted project's leftovers can be removed (issue 30).

use std::path::{Path, PathBuf};

use crate::harness::{write, Outcome, Test};

/// A project whose env `dev` has one `app` machine on `local`, provisioned by a goal that only
/// writes a file (no app, no packages: env_up stays light).
fn app_project(name: &str) -> String {
    format!(
        "[project]\nname = \"{name}\"\n[env.dev]\nprovider = \"local\"\n\
         [env.dev.machines.app]\ncount = 1\n"
    )
}

const ROLES: &str = "/// App.\nfn app_provision(host) { host.file(\"/root/provisioned\", #{ content: \"yes\\n\" }); }\n";

/// Removes what the named namespaces still hold when the test ends, pass or fail; from the
/// home folder, which needs no project.
struct Leftovers<'a> {
    test: &'a Test,
    namespaces: &'a [&'a str],
}

impl Drop for Leftovers<'_> {
    fn drop(&mut self) {
        for namespace in self.namespaces {
            let _ = self.test.run_in(
                &self.test.home(),
                &["cloud", "destroy", "--namespace", namespace, "--yes"],
            );
        }
    }
}

/// The machines `cloud list -e dev --json` shows in `dir`.
fn listed(test: &Test, dir: &Path) -> Vec<serde_json::Value> {
    let list = test.run_in(dir, &["cloud", "list", "-e", "dev", "--json"]);
    list.status(0);
    serde_json::from_str(&list.stdout).expect("json")
}

/// `cloud list --all --json` run from `dir`.
fn everything(test: &Test, dir: &Path) -> Vec<serde_json::Value> {
    let list = test.run_in(dir, &["cloud", "list", "--all", "--json"]);
    list.status(0);
    serde_json::from_str(&list.stdout).expect("json")
}

/// A second project folder beside the test's own.
fn sibling(test: &Test, name: &str, config: &str) -> PathBuf {
    let dir = test.path().parent().expect("parent").join(name);
    write(&dir.join("weft.toml"), config);
    dir
}

#[track_caller]
fn has_all(outcome: &Outcome, texts: &[&str]) {
    for text in texts {
        outcome.stderr_has(text);
    }
}

#[test]
fn two_projects_with_the_same_env_and_role_keep_their_own_machines() {
    let test = Test::with_config(&app_project("alpha"));
    test.write("deploy/roles.rhai", ROLES);
    let alpha = test.path().to_path_buf();
    let beta = sibling(&test, "beta", &app_project("beta"));
    write(&beta.join("deploy/roles.rhai"), ROLES);
    let _cleanup = Leftovers {
        test: &test,
        namespaces: &["/alpha/", "/beta/"],
    };

    // Each project's env_up makes its own machine: the other's is not found, not deployed to.
    for dir in [&alpha, &beta] {
        test.run_in(dir, &["run", "env_up", "-e", "dev"])
            .status(0)
            .stdout_has("created app-0");
    }
    for (dir, name) in [(&alpha, "alpha"), (&beta, "beta")] {
        let machines = listed(&test, dir);
        assert_eq!(machines.len(), 1, "{machines:?}");
        assert_eq!(machines[0]["tags"]["weft:namespace"], format!("/{name}/"));
        assert_eq!(machines[0]["tags"]["weft:project"], name);
        test.run_in(dir, &["hosts", "-e", "dev"])
            .status(0)
            .stdout_has(&format!("project `{name}`, namespace `/{name}/`"))
            .stdout_has("app-0");
        test.run_in(dir, &["cloud", "list", "-e", "dev"])
            .status(0)
            .stdout_has(&format!(
                "machines of project `{name}`, namespace `/{name}/`, env `dev`"
            ));
    }
    let alpha_id = listed(&test, &alpha)[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let beta_id = listed(&test, &beta)[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_ne!(alpha_id, beta_id);

    // `cloud list --all` shows both, from anywhere.
    let all = everything(&test, &test.home());
    let owners: Vec<(String, String, String)> = all
        .iter()
        .map(|m| {
            (
                m["project"].as_str().unwrap_or_default().to_string(),
                m["namespace"].as_str().unwrap_or_default().to_string(),
                m["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        owners,
        [
            ("alpha".into(), "/alpha/".into(), "app-0".into()),
            ("beta".into(), "/beta/".into(), "app-0".into())
        ]
    );
    test.run_in(&test.home(), &["cloud", "list", "--all"])
        .status(0)
        .stdout_has("project")
        .stdout_has("/alpha/")
        .stdout_has("/beta/");

    // The questions before anything goes name the project, the namespace, the env and the
    // machines; without a terminal and --yes nothing goes.
    let asked = test.run_in(&beta, &["run", "env_down", "-e", "dev"]);
    asked.status(2);
    has_all(
        &asked,
        &[
            "terminate these machines of project `beta`, namespace `/beta/`, env `dev`",
            "  app-0",
        ],
    );
    let asked = test.run_in(&beta, &["cloud", "terminate", "app-0", "-e", "dev"]);
    asked.status(2);
    has_all(
        &asked,
        &[
            "this deletes, of project `beta`, namespace `/beta/`, env `dev`:",
            &format!("machine app-0 ({beta_id})"),
        ],
    );
    let asked = test.run_in(&beta, &["cloud", "destroy", "-e", "dev"]);
    asked.status(2);
    has_all(
        &asked,
        &[
            "this deletes, of project `beta`, namespace `/beta/`, env `dev`:",
            &format!("machine app-0 ({beta_id})"),
        ],
    );

    // env_down in one project leaves the other's machine running.
    test.run_in(&beta, &["run", "env_down", "-e", "dev", "--yes"])
        .status(0)
        .stdout_has("terminated app-0");
    assert!(listed(&test, &beta).is_empty());
    let left = listed(&test, &alpha);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["state"], "running");
    test.run_in(
        &alpha,
        &[
            "ssh",
            "app-0",
            "-e",
            "dev",
            "--",
            "cat",
            "/root/provisioned",
        ],
    )
    .status(0)
    .stdout_has("yes");

    // A project's folder goes; its machine is a leftover that `cloud list --all` points out
    // and `cloud destroy --namespace` removes, after naming it.
    std::fs::remove_dir_all(&alpha).expect("remove the project");
    let all = everything(&test, &beta);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["folder_gone"], true);
    test.run_in(&beta, &["cloud", "list", "--all"])
        .status(0)
        .stdout_has("alpha (folder gone)");
    test.run_in(&beta, &["cloud", "destroy", "--namespace", "/nope/"])
        .status(2)
        .stderr_has("no local machine is in namespace `/nope/`");
    let asked = test.run_in(&beta, &["cloud", "destroy", "--namespace", "alpha"]);
    asked.status(2);
    has_all(
        &asked,
        &[
            "this deletes, of namespace `/alpha/` (project `alpha`, folder",
            "gone)",
            &format!("env `dev`: machine app-0 ({alpha_id})"),
        ],
    );
    assert_eq!(everything(&test, &beta).len(), 1);
    test.run_in(
        &beta,
        &["cloud", "destroy", "--namespace", "/alpha/", "--yes"],
    )
    .status(0)
    .stdout_has(&format!("terminated app-0 ({alpha_id})"));
    assert!(everything(&test, &beta).is_empty());
}

#[test]
fn machines_of_the_old_namespace_are_adopted_only_on_request() {
    // What an older weft made: env `dev` in namespace `/`.
    let test = Test::with_config(
        "[project]\nname = \"shop\"\n[env.dev]\nprovider = \"local\"\nnamespace = \"/\"\n",
    );
    let _cleanup = Leftovers {
        test: &test,
        namespaces: &["/", "/shop/"],
    };
    test.run(&["cloud", "create", "app", "-e", "dev", "--no-provision"])
        .status(0)
        .stdout_has("created app-0 (root.dev.app-0)");
    test.write(
        "weft.toml",
        "[project]\nname = \"shop\"\n[env.dev]\nprovider = \"local\"\n",
    );

    // The project's own namespace holds nothing of it; weft says where the old machine is.
    let old = listed(&test, test.path());
    assert!(old.is_empty(), "{old:?}");
    test.run(&["cloud", "list", "-e", "dev"])
        .status(0)
        .stderr_has("namespace `/` holds machines of an env `dev` (app-0)")
        .stderr_has("weft cloud adopt -e dev --from /");
    // A machine of the project's env, made before the adoption: another env on the network.
    test.run(&["cloud", "create", "web", "-e", "dev", "--no-provision"])
        .status(0)
        .stdout_has("created web-0 (shop.dev.web-0)");
    let app0_ip = {
        let config = test.read("weft.toml");
        test.write(
            "weft.toml",
            "[project]\nname = \"shop\"\n[env.dev]\nprovider = \"local\"\nnamespace = \"/\"\n",
        );
        let address = listed(&test, test.path())[0]["address"]
            .as_str()
            .expect("address")
            .to_string();
        test.write("weft.toml", &config);
        address
            .trim_start_matches("root@")
            .trim_end_matches(":22")
            .to_string()
    };
    test.ssh("dev", "web-0", &[&reach(&app0_ip)])
        .status(0)
        .stdout_has("blocked");
    test.run(&["cloud", "adopt", "-e", "dev", "--from", "/shop/"])
        .status(2)
        .stderr_has("env `dev` is in namespace `/shop/` already");

    test.run(&["cloud", "adopt", "-e", "dev", "--from", "/"])
        .status(0)
        .stdout_has(
            "adopted app-0 (root.dev.app-0) from namespace `/` into project `shop`, namespace \
             `/shop/`, env `dev`",
        );
    let machines = listed(&test, test.path());
    assert_eq!(machines.len(), 2, "{machines:?}");
    assert_eq!(machines[0]["name"], "app-0");
    assert_eq!(machines[0]["state"], "running");
    assert_eq!(machines[0]["tags"]["weft:namespace"], "/shop/");
    assert_eq!(machines[0]["tags"]["weft:project"], "shop");
    test.run(&["cloud", "list", "-e", "dev"])
        .status(0)
        .stderr_lacks("holds machines");
    test.run(&["cloud", "adopt", "-e", "dev", "--from", "/"])
        .status(0)
        .stdout_has("nothing to adopt");

    // It keeps running and answering, and the network filter moved it into the project's
    // env: the machine made there before reaches it now, as does a new one, which takes the
    // next ordinal.
    test.ssh("dev", "app-0", &["hostname"])
        .status(0)
        .stdout_has("app-0");
    test.run(&["cloud", "create", "app", "-e", "dev", "--no-provision"])
        .status(0)
        .stdout_has("created app-1 (shop.dev.app-1)");
    for from in ["web-0", "app-1"] {
        test.ssh("dev", from, &[&reach(&app0_ip)])
            .status(0)
            .stdout_has("reached");
    }
}

/// A command that says whether a machine reaches `ip`'s SSH port within 3 seconds.
fn reach(ip: &str) -> String {
    format!(
        "if timeout 3 bash -c 'echo > /dev/tcp/{ip}/22'; then echo reached; else echo blocked; fi"
    )
}

/// Makes an instance in moto with weft's tags, as another project or an older weft would
/// have; returns its id.
#[cfg(feature = "ec2")]
fn moto_instance(moto: &Moto, ami: &str, tags: &[(&str, &str)]) -> String {
    let script = r#"
import json, sys, boto3
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
tags = [{"Key": k, "Value": v} for k, v in json.loads(sys.argv[3]).items()]
out = ec2.run_instances(ImageId=sys.argv[2], MinCount=1, MaxCount=1,
    TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
print(out["Instances"][0]["InstanceId"])
"#;
    let tags: serde_json::Map<String, serde_json::Value> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let out = std::process::Command::new(crate::cloud::test_python())
        .args([
            "-c",
            script,
            &format!("http://127.0.0.1:{}", moto.port),
            ami,
            &serde_json::Value::Object(tags).to_string(),
        ])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[cfg(feature = "ec2")]
use crate::cloud::{moto_ami, Moto};

#[cfg(feature = "ec2")]
#[test]
fn ec2_envs_default_to_the_projects_namespace_and_adopt_old_machines_on_request() {
    let moto = Moto::start();
    let ami = moto_ami();
    let weft_tags = |namespace: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut tags = vec![
            ("weft:namespace", namespace),
            ("weft:env", "dev"),
            ("weft:role", "web"),
            ("weft:ordinal", "0"),
            ("weft:created-by", "weft"),
        ];
        tags.extend_from_slice(extra);
        tags
    };
    // An older weft's machine in `/`, and another project's in its own namespace.
    let old = moto_instance(&moto, &ami, &weft_tags("/", &[]));
    let theirs = moto_instance(
        &moto,
        &ami,
        &weft_tags("/beta/", &[("weft:project", "beta")]),
    );
    let test = Test::with_config(
        "[project]\nname = \"alpha\"\n[env.dev]\nprovider = \"ec2\"\nregion = \"us-east-1\"\n",
    )
    .with_env(moto.env());

    test.run(&["cloud", "list", "-e", "dev", "--json"])
        .status(0)
        .stdout_has("[]")
        .stderr_has("weft cloud adopt -e dev --from /");
    let all = test.run(&["cloud", "list", "--all", "-e", "dev", "--json"]);
    all.status(0);
    let all: Vec<serde_json::Value> = serde_json::from_str(&all.stdout).expect("json");
    let namespaces: Vec<&str> = all.iter().filter_map(|m| m["namespace"].as_str()).collect();
    assert_eq!(namespaces, ["/", "/beta/"]);

    test.run(&["cloud", "adopt", "-e", "dev", "--from", "/"])
        .status(0)
        .stdout_has(&format!("adopted web-0 ({old})"));
    let list = test.run(&["cloud", "list", "-e", "dev", "--json"]);
    list.status(0);
    let mine: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).expect("json");
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["id"], old.as_str());
    assert_eq!(mine[0]["tags"]["weft:namespace"], "/alpha/");
    assert_eq!(mine[0]["tags"]["weft:project"], "alpha");

    // Destroying the env names whose it is, and never reaches the other project's machine.
    test.run(&["cloud", "destroy", "-e", "dev"])
        .status(2)
        .stderr_has("this deletes, of project `alpha`, namespace `/alpha/`, env `dev`:")
        .stderr_has(&format!("machine web-0 ({old})"))
        .stderr_lacks(&theirs);
    test.run(&["cloud", "destroy", "-e", "dev", "--yes"])
        .status(0)
        .stdout_has("terminated web-0");
    let left = moto_describe(moto.port);
    let running: Vec<&str> = left["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["state"] == "running")
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(running, [theirs.as_str()]);
}

#[cfg(feature = "ec2")]
use crate::cloud::moto_describe;
