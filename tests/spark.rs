//! The spark plugin of this repo (`plugins/spark`), added from a git tag, makes a cluster of
//! one master and two workers on local machines that counts the words of a file.

use std::collections::BTreeMap;
use std::path::Path;

use crate::harness::{git, Destroy, Test};
use crate::webstack::{copy_dir, get_path};

/// What every Spark machine starts with, as the plugin's README suggests: the image has Java.
const PACKAGES: &str = "[\"openjdk-17-jre-headless\", \"python3-venv\", \"procps\", \"curl\"]";

/// A git repo holding a copy of `plugins/NAME` of this repo, tagged `v1`.
pub(crate) fn plugin_repo(name: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("temp dir");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plugins")
            .join(name),
        repo.path(),
    );
    git(repo.path(), &["init", "--quiet"]);
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "--quiet", "-m", "release"]);
    git(repo.path(), &["tag", "v1"]);
    repo
}

/// The bare address of machine `name` of env dev.
fn ip_of(test: &Test, name: &str) -> String {
    let list = test.run(&["cloud", "list", "-e", "dev", "--json"]);
    let machines: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).expect("json");
    let address = machines
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["address"].as_str())
        .unwrap_or_else(|| panic!("{name} has an address: {}", list.stdout));
    let ip = address.trim_start_matches("root@").split(':').next();
    ip.expect("an ip").to_string()
}

/// Some lines of words drawn from a small vocabulary, different on every run.
fn input_text() -> String {
    const WORDS: [&str; 9] = [
        "spark", "weft", "warp", "loom", "shuttle", "heddle", "reed", "bobbin", "treadle",
    ];
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .subsec_nanos() as u64
        | 1;
    let mut text = String::new();
    for _ in 0..200 {
        let words = (0..7).map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            WORDS[(seed >> 33) as usize % WORDS.len()]
        });
        text.push_str(&words.collect::<Vec<_>>().join(" "));
        text.push('\n');
    }
    text
}

const WORDCOUNT: &str = r#"import socket
from operator import add

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("wordcount").getOrCreate()
sc = spark.sparkContext
with open("input.txt") as f:
    lines = f.read().splitlines()
counts = sc.parallelize(lines, 6).flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(add)
for word, n in sorted(counts.collect()):
    print(f"COUNT {word} {n}", flush=True)
ran_on = sc.parallelize(range(12), 12).map(lambda _: socket.gethostname()).distinct()
for name in sorted(ran_on.collect()):
    print(f"RAN-ON {name}", flush=True)
spark.stop()
"#;

#[test]
fn spark_plugin_from_a_tag_counts_words_on_a_two_worker_cluster() {
    let repo = plugin_repo("spark");
    let test = Test::with_config(&format!(
        "[project]\nname = \"sparky\"\ndefault_env = \"dev\"\n\n[env.dev]\nprovider = \"local\"\n\n\
         [env.dev.machines.sparkmaster]\ncount = 0\npackages = {PACKAGES}\n\n\
         [env.dev.machines.sparkworker]\ncount = 0\npackages = {PACKAGES}\n"
    ));
    let source = format!("{}@v1", repo.path().display());
    test.run(&["plugin", "add", &source])
        .status(0)
        .stdout_has("added plugin spark 1.0.0");
    test.run(&["list"])
        .status(0)
        .stdout_has("[plugin:spark]")
        .stdout_has("spark_cluster_up");

    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    let up = test.run(&["run", "spark_cluster_up", "2"]);
    up.status(0)
        .stdout_has("created sparkmaster-0")
        .stdout_has("created sparkworker-1")
        .stdout_has("2 worker(s) alive; web UI at http://");

    // The master's own status lists both workers, by their private addresses.
    let master = ip_of(&test, "sparkmaster-0");
    let status = get_path(&format!("{master}:8080"), "/json/").expect("the master's web UI");
    let status: serde_json::Value = serde_json::from_str(&status).expect("json status");
    let mut alive: Vec<String> = status["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter(|w| w["state"] == "ALIVE")
        .map(|w| w["host"].as_str().expect("host").to_string())
        .collect();
    alive.sort();
    alive.dedup();
    let mut workers = vec![ip_of(&test, "sparkworker-0"), ip_of(&test, "sparkworker-1")];
    workers.sort();
    assert_eq!(alive, workers, "{status}");
    assert!(
        up.stdout
            .contains(&format!("web UI at http://{master}:8080/")),
        "{}",
        up.stdout
    );

    let input = input_text();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for word in input.split_whitespace() {
        *expected.entry(word.to_string()).or_default() += 1;
    }
    test.write("jobs/wordcount/input.txt", &input);
    test.write("jobs/wordcount/main.py", WORDCOUNT);
    let job = test.run(&["run", "spark_submit", "jobs/wordcount"]);
    job.status(0);
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    let mut ran_on = Vec::new();
    for line in job.stdout.lines() {
        let Some((_, text)) = line.split_once(" | ") else {
            continue;
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        match fields.as_slice() {
            ["COUNT", word, n] => {
                counted.insert(word.to_string(), n.parse().expect("a count"));
            }
            ["RAN-ON", name] => ran_on.push(name.to_string()),
            _ => {}
        }
    }
    assert_eq!(counted, expected, "{}", job.stdout);
    // The tasks ran on the workers, not on the master that submitted them.
    assert!(!ran_on.is_empty(), "{}", job.stdout);
    assert!(
        ran_on.iter().all(|n| n.starts_with("sparkworker-")),
        "{ran_on:?}"
    );

    test.run(&["run", "spark_cluster_down", "--yes"])
        .status(0)
        .stdout_has("sparkworker-1");
    let left = test.run(&["cloud", "list", "-e", "dev", "--json"]);
    let left: Vec<serde_json::Value> = serde_json::from_str(&left.stdout).expect("json");
    assert!(left.is_empty(), "{left:?}");
}
