//! The script API over fake hosts (issue 32): goals written as a user writes them, run by the
//! runner on `transport::fake` hosts, so what is checked is what a goal's call sends to the
//! host, how its options are read, and what the run reports.

use std::sync::Arc;

use serde_json::Value;

use crate::exec::goals::GoalEngine;
use crate::exec::interrupt::Interrupt;
use crate::exec::output::{HostOutcome, Output, Status};
use crate::exec::runner::Job;
use crate::exec::test_host::{limits, project, run_job_with, FILE_CHECK};
use crate::transport::fake::FakeTransport;

/// The probe of the basic facts.
const FACTS: &str = "set -- $(uname -snrm)";

/// A host whose init is systemd.
fn systemd() -> FakeTransport {
    FakeTransport::new().on(FACTS, 0, "os=Linux\ninit=systemd\n")
}

/// Runs goal `goal` with `args`, from a project whose `deploy/goals.rhai` holds `script`, on
/// one host.
fn run(script: &str, goal: &str, args: &[&str], host: &Arc<FakeTransport>, check: bool) -> Ran {
    run_with(&[("deploy/goals.rhai", script)], goal, args, host, check)
}

/// `run` in a project holding `files` (path, text) beside its `weft.toml`.
fn run_with(
    files: &[(&str, &str)],
    goal: &str,
    args: &[&str],
    host: &Arc<FakeTransport>,
    check: bool,
) -> Ran {
    run_interruptible(files, goal, args, host, check, Interrupt::new())
}

/// `run_with` whose Ctrl-C is `interrupt`.
fn run_interruptible(
    files: &[(&str, &str)],
    goal: &str,
    args: &[&str],
    host: &Arc<FakeTransport>,
    check: bool,
    interrupt: Arc<Interrupt>,
) -> Ran {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("folder")).expect("folder");
        std::fs::write(path, text).expect("write");
    };
    write("weft.toml", "[project]\nname = \"t\"\n");
    for (rel, text) in files {
        write(rel, text);
    }
    let project = project(dir.path());
    let layers = crate::layers::Layers::new(&project);
    let engine = crate::script::engine::load_read_only(&layers, &project).expect("scripts");
    let info = engine.goal(goal).expect("goal");
    let job = Job::Goal {
        engine: Arc::new(engine),
        goal: info,
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    let (outcomes, output) = run_job_with(
        job,
        &[Some(host)],
        limits(1, None, None),
        check,
        dir.path(),
        interrupt,
    );
    let outcome = outcomes.into_iter().next().expect("one outcome");
    Ran {
        outcome,
        output,
        _dir: dir,
    }
}

/// How a goal's run on one host ended, and what it printed.
struct Ran {
    outcome: HostOutcome,
    output: Arc<Output>,
    _dir: tempfile::TempDir,
}

impl Ran {
    fn events(&self, event: &str, field: &str) -> Vec<String> {
        self.output
            .recorded()
            .iter()
            .filter(|e| e["event"] == event)
            .filter_map(|e| e.get(field).and_then(Value::as_str).map(String::from))
            .collect()
    }

    #[track_caller]
    fn failed_with(&self, message: &str) {
        assert_eq!(self.outcome.status, Status::Failed, "{:?}", self.outcome);
        let error = self.outcome.error.as_deref().unwrap_or_default();
        assert!(error.contains(message), "`{error}` lacks `{message}`");
    }
}

#[test]
fn service_restarted_restarts_now_through_the_hosts_manager() {
    let host = Arc::new(systemd());
    let script = "/// Restarts nginx.\nfn web_restart(host) {\n    host.service(\"nginx\", #{ state: \"restarted\" });\n}\n";
    let ran = run(script, "web_restart", &[], &host, false);
    assert_eq!(ran.outcome.status, Status::Changed, "{:?}", ran.outcome);
    let commands = host.commands();
    assert_eq!(commands.len(), 2, "{commands:#?}");
    assert!(commands[0].contains(FACTS));
    assert_eq!(commands[1], "systemctl restart -- nginx");
    assert_eq!(ran.events("change", "step"), ["service nginx (restart)"]);
}

const NOTIFY: &str = r#"
/// Writes the site's config and asks nginx to reload, twice.
fn web_conf(host) {
    if host.file("/etc/nginx/conf.d/app.conf", #{ content: "server {}\n" }) {
        host.notify("nginx", "reload");
        host.notify("nginx", "reload");
    }
    host.run("echo configured");
}

/// Asks for a reload, then fails.
fn web_broken(host) {
    host.notify("nginx", "reload");
    host.run("exit 3");
}
"#;

#[test]
fn a_reload_asked_twice_runs_once_when_the_goal_ends() {
    let host = Arc::new(systemd().on(FILE_CHECK, 1, ""));
    let ran = run(NOTIFY, "web_conf", &[], &host, false);
    assert_eq!(ran.outcome.status, Status::Changed, "{:?}", ran.outcome);
    let commands = host.commands();
    assert_eq!(commands.len(), 4, "{commands:#?}");
    assert!(commands[0].contains(FILE_CHECK));
    assert_eq!(commands[1], "echo configured");
    assert!(commands[2].contains(FACTS));
    assert_eq!(commands[3], "systemctl reload -- nginx");
    assert_eq!(
        host.content("/etc/nginx/conf.d/app.conf").as_deref(),
        Some("server {}\n")
    );
}

#[test]
fn a_goal_that_fails_runs_none_of_the_reloads_it_asked_for() {
    let host = Arc::new(systemd().on("exit 3", 3, ""));
    let ran = run(NOTIFY, "web_broken", &[], &host, false);
    ran.failed_with("`exit 3` exited with 3");
    assert_eq!(host.commands(), ["exit 3"]);
}

#[test]
fn option_maps_are_read_strictly_before_anything_reaches_the_host() {
    // (the goal's body, what the failure says)
    let cases = [
        (
            "host.file(\"/etc/x\", #{ contnet: \"a\" });",
            "file: unknown option `contnet`; options are `content`, `mode`, `owner`, `group`, \
             `sensitive`, `validate`, `always`; did you mean `content`?",
        ),
        (
            "host.directory(\"/srv/x\", #{ mode: 755 });",
            "directory: option `mode` must be an octal string such as \"0644\", not int",
        ),
        (
            "host.link(\"/a\", \"/b\", #{ always: \"yes\" });",
            "link: option `always` must be true or false, not string",
        ),
        (
            "host.run(\"true\", #{ timeout: \"5s\" });",
            "run: option `timeout` must be a positive number of seconds, not string",
        ),
        (
            "host.user(\"app\", #{ groups: \"web\" });",
            "user: option `groups` must be an array of strings, not string",
        ),
        (
            "host.cron(\"backup\", #{ schedule: \"@daily\" });",
            "cron: option `command` is required (unless `state: \"absent\"`)",
        ),
        (
            "host.cron(\"backup\", #{});",
            "cron: options `schedule` and `command` are required",
        ),
        (
            "host.packages([\"curl\"], #{ state: \"gone\" });",
            "packages: option `state`: unknown variant `gone`, expected one of `present`, `absent`, `latest`",
        ),
        (
            "host.service(\"nginx\", #{ commands: #{ start: \"x\" } });",
            "service: option `commands`: missing field `stop`",
        ),
        // An enum option of the wrong type lists its values, not a Rust type.
        (
            "host.packages([\"x\"], #{ state: true });",
            "packages: option `state` must be one of `present`, `absent`, `latest`, not bool",
        ),
        (
            "host.service(\"nginx\", #{ state: 1 });",
            "service: option `state` must be one of `started`, `stopped`, `restarted`, \
             `reloaded`, not int",
        ),
        // A key of a nested map is named by its path.
        (
            "host.service(\"nginx\", #{ commands: #{ start: \"a\", stop: \"b\", reload: \"c\", status: 0 } });",
            "service: option `commands.status` must be a string, not int",
        ),
        (
            "host.service_running(\"nginx\", #{ commands: #{ start: \"a\", stop: \"b\", reload: \"c\", status: \"d\", restart: \"e\" } });",
            "service_running: option `commands.restart`: unknown field `restart`",
        ),
        (
            "host.service(\"nginx\", #{ state: \"started\", manager: \"upstart\" });",
            "manager `upstart` is not `systemd`, `supervisor`, `runit` or `direct`",
        ),
        (
            "host.notify(\"nginx\", \"bounce\");",
            "notify: action `bounce` is not `reload` or `restart`",
        ),
    ];
    for (body, message) in cases {
        let host = Arc::new(FakeTransport::new());
        let script = format!("/// A mistake.\nfn oops(host) {{\n    {body}\n}}\n");
        let ran = run(&script, "oops", &[], &host, false);
        ran.failed_with(message);
        assert!(host.commands().is_empty(), "{body}: {:?}", host.commands());
        assert!(host.written().is_empty(), "{body}");
    }
}

#[test]
fn file_options_reach_the_file_written() {
    let host = Arc::new(FakeTransport::new().on(FILE_CHECK, 1, ""));
    let script = r#"
/// Writes the app's env.
fn app_env(host, token) {
    host.file("/etc/app.env", #{ content: "TOKEN=" + token + "\n", mode: "0600", sensitive: true });
}
"#;
    let ran = run(script, "app_env", &["t0k3n-9f8e7d"], &host, false);
    assert_eq!(ran.outcome.status, Status::Changed, "{:?}", ran.outcome);
    let written = host.written();
    assert_eq!(written.len(), 1);
    assert_eq!(
        (written[0].path.as_str(), written[0].mode),
        ("/etc/app.env", Some(0o600))
    );
    assert_eq!(written[0].data, b"TOKEN=t0k3n-9f8e7d\n");
    // Sensitive content is a secret from then on: masked in everything printed.
    let printed = ran
        .output
        .recorded()
        .iter()
        .map(Value::to_string)
        .collect::<String>();
    assert!(!printed.contains("t0k3n-9f8e7d"), "{printed}");
}

#[test]
fn under_check_a_goal_sees_it_and_only_reads_the_host() {
    let host = Arc::new(FakeTransport::new().on(FILE_CHECK, 1, ""));
    let script = r#"
/// Prepares the app's folder.
fn app_prepare(host) {
    log(`check=${env().check}`);
    host.run("useradd app");
    host.directory("/srv/app", #{ mode: "0750", owner: "app" });
}
"#;
    let ran = run(script, "app_prepare", &[], &host, true);
    assert_eq!(ran.outcome.status, Status::Changed, "{:?}", ran.outcome);
    let commands = host.commands();
    assert_eq!(commands.len(), 1, "{commands:#?}");
    assert!(commands[0].contains(FILE_CHECK));
    assert_eq!(
        ran.events("log", "message"),
        ["check=true", "skipped under --check: useradd app"]
    );
    assert_eq!(
        ran.events("change", "step"),
        ["directory /srv/app (created, mode 0750, owner app)"]
    );
}

#[test]
fn facts_reach_the_script_as_maps_and_arrays() {
    let host = Arc::new(
        FakeTransport::new()
            .on("getent passwd", 0, "root:x:0:0:root:/root:/bin/bash\n")
            .on(FACTS, 0, "os=Linux\ncpus=4\npackage_manager=apt\n"),
    );
    let script = r#"
/// Says who is there.
fn who(host) {
    let users = host.fact("users");
    log(`${users[0].name}:${users[0].uid} on ${host.facts.os} with ${host.facts.cpus * 2} threads`);
}
"#;
    let ran = run(script, "who", &[], &host, false);
    assert_eq!(ran.outcome.status, Status::Ok, "{:?}", ran.outcome);
    assert_eq!(
        ran.events("log", "message"),
        ["root:0 on Linux with 8 threads"]
    );
}

#[test]
fn git_defaults_to_main_and_a_changed_line_reports_it() {
    let host = Arc::new(
        FakeTransport::new()
            .on("test -d /srv/app/repo/.git", 1, "")
            .on("rev-parse --verify --quiet origin/main", 0, "abc1234\n")
            .on(
                "stat -c '%F|%a|%u|%g' -- /etc/hosts",
                0,
                "regular file|644|0|0\n",
            )
            .file("/etc/hosts", "127.0.0.1 localhost\n"),
    );
    let script = r#"
/// Checks out the app and names its database host.
fn app_code(host) {
    host.git("https://example.com/app.git", "/srv/app/repo");
    host.line("/etc/hosts", "10.0.0.5 db", #{ regex: " db$" });
}
"#;
    let ran = run(script, "app_code", &[], &host, false);
    assert_eq!(ran.outcome.status, Status::Changed, "{:?}", ran.outcome);
    assert!(host
        .commands()
        .iter()
        .any(|c| c == "git -C /srv/app/repo checkout --quiet --force abc1234 --"));
    assert_eq!(
        host.content("/etc/hosts").as_deref(),
        Some("127.0.0.1 localhost\n10.0.0.5 db\n")
    );
    assert_eq!(
        ran.events("change", "step"),
        ["git /srv/app/repo @ main", "line in /etc/hosts"]
    );
    assert_eq!(ran.outcome.changes, 2);
}

#[test]
fn a_template_renders_the_hosts_vars_into_the_file() {
    let host = Arc::new(FakeTransport::new().on(FILE_CHECK, 1, ""));
    let script = "/// Configures the app.\nfn app_conf(host) {\n    host.template(\"app.conf.hbs\", \"/etc/app.conf\", #{ port: 8080 });\n}\n";
    let files = [
        ("deploy/goals.rhai", script),
        (
            "templates/app.conf.hbs",
            "host={{host.name}} port={{port}}\n",
        ),
    ];
    let ran = run_with(&files, "app_conf", &[], &host, false);
    assert_eq!(ran.outcome.status, Status::Changed, "{:?}", ran.outcome);
    assert_eq!(
        host.content("/etc/app.conf").as_deref(),
        Some("host=app-0 port=8080\n")
    );
    assert_eq!(
        ran.events("change", "step"),
        ["file /etc/app.conf (created)"]
    );
}

const PRIMITIVES: &str = r#"
/// Locks, waits and reads paths as the stdlib does.
fn web_prims(host) {
    if !host.lock("site deploy", #{ what: "web_prims" }) { throw "not taken"; }
    let held = host.lock_owner("site deploy");
    log(`held by ${held.runner}, ours: ${held.ours}, age ${held.age}`);
    host.wait_until(["pg_isready", "-q"], #{ timeout: 5, interval: 0.01 });
    let tries = 0;
    host.wait_until(|| { tries += 1; tries >= 2 }, #{ timeout: 5, interval: 0.01 });
    log(`tries: ${tries}`);
    log(`exists: ${host.exists("/srv/app")}`);
    log(`current: ${host.readlink("/srv/app/current")}`);
    log(`builds: ${host.list("/srv/app/builds", #{ order: "time" })}`);
    log(`verified: ${host.verify("/srv/app/a.tar.gz", "0000000000000000000000000000000000000000000000000000000000000000")}`);
    host.unlock("site deploy");
}

/// A wait that cannot succeed.
fn web_wait(host) {
    host.wait_until("redis-cli PING", #{ timeout: 0.1, interval: 0.02 });
}

/// A bad option.
fn web_bad(host) {
    host.wait_until("true", #{ every: 1 });
}

/// A check that captured the host that is waiting.
fn web_captured(host) {
    host.wait_until(|| host.exists("/srv/app"), #{ timeout: 1, interval: 0.01 });
}
"#;

#[test]
fn locks_waits_and_path_facts_from_a_goal() {
    let host = Arc::new(
        FakeTransport::new()
            .on("if mkdir --", 0, "taken\n")
            .on("if [ ! -d \"$l\" ]", 0, "released\n")
            .on(
                "echo held;",
                0,
                "held\nrunner=x\nrun=y\nsince=10\nwhat=w\n\nnow=12\n",
            )
            .once("pg_isready", 1, "")
            .on("[ -e /srv/app ]", 0, "")
            .on("readlink", 0, "builds/v2\n")
            .on("ls -1Atr", 0, "v1\nv2\n")
            .on(FILE_CHECK, 1, ""),
    );
    let ran = run(PRIMITIVES, "web_prims", &[], &host, false);
    assert_eq!(ran.outcome.status, Status::Changed, "{:?}", ran.outcome);
    let logs = ran.events("log", "message");
    for line in [
        "held by x, ours: false, age 2",
        "tries: 2",
        "exists: true",
        "current: builds/v2",
        "builds: [\"v1\", \"v2\"]",
        "verified: false",
    ] {
        assert!(logs.iter().any(|l| l == line), "`{line}` not in {logs:#?}");
    }
    // The lock's owner names this run (env().runner and run_id).
    let take = &host.commands()[0];
    assert!(take.contains("what=web_prims"), "{take}");
    assert!(take.contains("runner=") && take.contains(&format!(":{}", std::process::id())));
    assert_eq!(
        ran.events("change", "step"),
        ["lock site deploy", "unlock site deploy"]
    );
    assert_eq!(
        host.commands()
            .iter()
            .filter(|c| c.contains("pg_isready"))
            .count(),
        2
    );

    let host = Arc::new(FakeTransport::new().on("redis-cli", 1, ""));
    run(PRIMITIVES, "web_wait", &[], &host, false)
        .failed_with("`redis-cli PING` succeeds: still not so after 0.1s");

    // The waiting host is busy: rhai's "data race" becomes what to write instead.
    let host = Arc::new(FakeTransport::new().on("[ -e /srv/app ]", 0, ""));
    let ran = run(PRIMITIVES, "web_captured", &[], &host, false);
    ran.failed_with("Data race");
    let report = ran.outcome.report.as_deref().unwrap_or_default();
    assert!(
        report.contains("take the host as the function's argument"),
        "{report}"
    );

    let host = Arc::new(FakeTransport::new());
    let ran = run(PRIMITIVES, "web_bad", &[], &host, false);
    ran.failed_with(
        "unknown option `every`; options are `timeout`, `interval`, `allow_fail`, `check_safe`",
    );
    assert!(host.commands().is_empty());
}

#[test]
fn under_check_a_goal_takes_no_lock_and_waits_for_nothing() {
    let host = Arc::new(
        FakeTransport::new()
            .on(
                "echo held;",
                0,
                "held\nrunner=x\nrun=y\nsince=10\nwhat=w\n\nnow=12\n",
            )
            .on("[ -e /srv/app ]", 1, "")
            .on("readlink", 1, "")
            .on("ls -1Atr", 0, "")
            .on(FILE_CHECK, 1, ""),
    );
    let ran = run(PRIMITIVES, "web_prims", &[], &host, true);
    assert_eq!(ran.outcome.status, Status::Changed, "{:?}", ran.outcome);
    let commands = host.commands();
    assert!(
        commands
            .iter()
            .all(|c| !c.contains("mkdir --") && !c.contains("pg_isready") && !c.contains("rm -rf")),
        "{commands:#?}"
    );
}

/// The stand-in a run's vars hold for `{ command = [..] }` printing `value` (issue 37's
/// lazily read secrets), as a goal receives it.
fn lazy_secret(value: &str) -> String {
    let mut vars = serde_json::json!({ "v": { "command": ["printf", "%s", value] } });
    crate::config::secret::Secrets::default().resolve_when_used_in(
        &mut vars,
        &std::env::temp_dir(),
        "dev",
        None,
    );
    let stand_in = vars["v"].as_str().expect("a stand-in").to_string();
    assert_ne!(stand_in, value, "read before a step used it");
    stand_in
}

#[test]
fn a_lazy_secret_quoted_or_in_an_argv_reaches_the_host_as_one_intact_argument() {
    let value = "it's a b;id $HOME";
    let stand_in = lazy_secret(value);
    let host = Arc::new(FakeTransport::new());
    let script = "/// Uses a password.\nfn pw(host, pw) {\n    host.run(\"echo \" + quote(pw));\n    host.run(\"echo \" + quote([\"-n\", pw]));\n    host.run([\"htpasswd\", \"-b\", \"/etc/pw\", \"u\", pw]);\n    host.wait_until([\"check-pw\", pw], #{ timeout: 1 });\n}\n";
    let ran = run(script, "pw", &[&stand_in], &host, false);
    assert_eq!(ran.outcome.error, None);
    let quoted = crate::shell::quote(value);
    // A command holding a secret travels on the command's input, never on its command line.
    let carried: Vec<String> = host
        .ran()
        .iter()
        .map(|r| {
            let input = String::from_utf8_lossy(r.stdin.as_deref().unwrap_or_default());
            input.lines().next().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(
        carried,
        [
            format!("echo {quoted}"),
            format!("echo -n {quoted}"),
            format!("htpasswd -b /etc/pw u {quoted}"),
            format!("check-pw {quoted}"),
        ]
    );
    assert_eq!(quoted, r#"'it'\''s a b;id $HOME'"#);
}

/// A lazy secret in an `http` header is read and sent, on curl's stdin: not the stand-in, and
/// not on the command line (the host's process list).
#[test]
fn a_lazy_secret_in_an_http_header_is_revealed_on_stdin() {
    let value = "Bearer t0ken";
    let stand_in = lazy_secret(value);
    let host = Arc::new(FakeTransport::new().on("curl", 0, "200"));
    let script = "/// Probes with a token.\nfn probe(host, token) {\n    log(`status: ${host.http(\"http://127.0.0.1/\", #{ headers: #{ Authorization: token } })}`);\n}\n";
    let ran = run(script, "probe", &[&stand_in], &host, false);
    assert_eq!(ran.outcome.error, None);
    let curl = host.ran().into_iter().find(|r| {
        r.command.contains("curl") || {
            let input = String::from_utf8_lossy(r.stdin.as_deref().unwrap_or_default());
            input.contains("curl")
        }
    });
    let curl = curl.expect("curl ran");
    let input = String::from_utf8_lossy(curl.stdin.as_deref().unwrap_or_default()).to_string();
    assert!(input.contains("Authorization: Bearer t0ken\n"), "{input:?}");
    assert!(!curl.command.contains("t0ken"), "{}", curl.command);
    assert!(!input.contains(&stand_in), "{input:?}");
}

/// `exists` with a kind asks `test -d` / `test -f` (a file where a folder is wanted is not
/// there), without one anything at the path counts.
#[test]
fn exists_of_a_kind_tests_what_is_there() {
    let host = Arc::new(
        FakeTransport::new()
            .on("[ -d /srv/static ]", 1, "")
            .on("[ -f /srv/Containerfile ]", 0, "")
            .on("[ -e /srv/static ]", 0, ""),
    );
    let script = "/// Kinds.\nfn kinds(host) {\n    log(`folder: ${host.exists(\"/srv/static\", #{ kind: \"folder\" })}`);\n    log(`file: ${host.exists(\"/srv/Containerfile\", #{ kind: \"file\" })}`);\n    log(`any: ${host.exists(\"/srv/static\")}`);\n}\n";
    let ran = run(script, "kinds", &[], &host, false);
    assert_eq!(ran.outcome.error, None);
    let logs = ran.events("log", "message");
    for line in ["folder: false", "file: true", "any: true"] {
        assert!(logs.iter().any(|l| l == line), "`{line}` not in {logs:#?}");
    }
    let bad = "/// Bad.\nfn bad(host) {\n    host.exists(\"/srv\", #{ kind: \"dir\" });\n}\n";
    let host = Arc::new(FakeTransport::new());
    run(bad, "bad", &[], &host, false).failed_with("kind");
    assert!(host.commands().is_empty(), "{:?}", host.commands());
}

/// A host where `deploy`'s `.ssh` is as `authorized_keys` wants it, holding `keys`.
fn keys_host(keys: &str) -> FakeTransport {
    use crate::exec::test_host::stat_answer_owned;
    FakeTransport::new()
        .on(
            "getent passwd deploy",
            0,
            "deploy:x:1000:1000::/home/deploy:/bin/bash\n",
        )
        .on("echo \"$(id -u -- deploy", 0, "1000:1000\n")
        .on(
            "-- /home/deploy/.ssh 2>/dev/null",
            0,
            &stat_answer_owned("directory", "700", "deploy", None),
        )
        .on(
            "-- /home/deploy/.ssh/authorized_keys 2>/dev/null",
            0,
            &stat_answer_owned("regular file", "600", "deploy", Some(keys)),
        )
        .file("/home/deploy/.ssh/authorized_keys", keys)
}

const KEYS: &str = "/// Gives deploy a key.\nfn keys(host, key, state) {\n    host.authorized_keys(\"deploy\", [key], #{ state: state });\n}\n";

#[test]
fn a_lazy_key_already_authorized_is_not_appended_again() {
    let key = "ssh-ed25519 AAAA alice@laptop";
    let host = Arc::new(keys_host(&format!("{key}\n")));
    let ran = run(KEYS, "keys", &[&lazy_secret(key), "present"], &host, false);
    assert_eq!(ran.outcome.status, Status::Ok, "{:?}", ran.outcome);
    assert!(host.written().is_empty(), "{:?}", host.written());
}

#[test]
fn a_lazy_key_to_revoke_is_removed() {
    let key = "ssh-ed25519 BBBB bob@old";
    let host = Arc::new(keys_host(&format!(
        "ssh-ed25519 AAAA alice@laptop\n{key}\n"
    )));
    let ran = run(KEYS, "keys", &[&lazy_secret(key), "absent"], &host, false);
    assert_eq!(ran.outcome.status, Status::Changed, "{:?}", ran.outcome);
    assert_eq!(
        host.content("/home/deploy/.ssh/authorized_keys").as_deref(),
        Some("ssh-ed25519 AAAA alice@laptop\n")
    );
}

const CHORES: &str = r#"
/// Marks, moves and probes as the stdlib does.
fn web_chores(host) {
    host.touch("/srv/app/builds/v2");
    host.rename("/srv/app/builds/.v3.part", "/srv/app/builds/v3");
    host.copy_tree("/srv/repo", "/srv/stage/src", #{ exclude: [".git"] });
    log(`status: ${host.http("http://127.0.0.1:8000/health", #{ timeout: 2 })}`);
    // A check that asks the host takes it as its argument.
    host.wait_until(|h| h.http("http://127.0.0.1:8000/health") == 204, #{ timeout: 5, interval: 0.01 });
    let rev = host.git_revision("/srv/repo");
    log(`rev: ${rev.short} ${rev.dirty}`);
    log(`count: ${host.files("/srv/files").len()}`);
}

/// A mistake in the options of a chore.
fn web_oops(host, which) {
    switch which {
        "http" => host.http("http://x/", #{ timout: 5 }),
        "method" => host.http("http://x/", #{ method: "GET /; rm" }),
        "header" => host.http("http://x/", #{ headers: #{ "X-A": "1\r\nX-B: 2" } }),
        "exclude" => host.copy_tree("/a", "/b", #{ exclude: ["x/.git"] }),
        "tree" => host.tree_sum("/a", #{ exclude: "x" }),
    }
}
"#;

/// A host with a build to rename, a copy to make, a site that answers and a git checkout.
fn chores_host() -> FakeTransport {
    FakeTransport::new()
        .on("then echo from; fi", 0, "from\n")
        .on("tar -df -", 1, "")
        .on("curl", 0, "204")
        .on(
            "git rev-parse",
            0,
            "4f2a9c1d0e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49\n4f2a9c1d\ndirty\n",
        )
        .on("find . -type f -print0", 0, "./a\0./b/c\0")
}

#[test]
fn chores_from_a_goal_act_and_report_and_read_under_check_only() {
    let host = Arc::new(chores_host());
    let ran = run(CHORES, "web_chores", &[], &host, false);
    assert_eq!(ran.outcome.status, Status::Changed, "{:?}", ran.outcome);
    assert_eq!(
        ran.events("change", "step"),
        [
            "touch /srv/app/builds/v2",
            "rename /srv/app/builds/.v3.part -> /srv/app/builds/v3",
            "copy_tree /srv/repo -> /srv/stage/src",
        ]
    );
    let logs = ran.events("log", "message");
    for line in ["status: 204", "rev: 4f2a9c1d true", "count: 2"] {
        assert!(logs.iter().any(|l| l == line), "`{line}` not in {logs:#?}");
    }
    let commands = host.commands();
    assert!(commands
        .iter()
        .any(|c| c.contains("mv -f -T -- .v3.part v3")));
    assert!(commands.iter().any(|c| c.contains("--max-time 2.0")));
    assert_eq!(
        commands.iter().filter(|c| c.starts_with("curl ")).count(),
        2
    );

    // Under --check: the same report, the facts read, nothing touched, moved or copied.
    let host = Arc::new(chores_host());
    let ran = run(CHORES, "web_chores", &[], &host, true);
    assert_eq!(ran.outcome.status, Status::Changed, "{:?}", ran.outcome);
    assert_eq!(ran.events("change", "step").len(), 3);
    let commands = host.commands();
    assert!(
        commands
            .iter()
            .all(|c| !c.contains("touch -c") && !c.contains("mv -f -T") && !c.contains("tar -xpf")),
        "{commands:#?}"
    );
    assert!(commands.iter().any(|c| c.starts_with("curl ")));
}

#[test]
fn chore_options_are_read_strictly_before_anything_reaches_the_host() {
    let cases = [
        (
            "http",
            "unknown option `timout`; options are `timeout`, `method`, `headers`",
        ),
        ("method", "GET or HEAD only"),
        ("header", "is not a header name with a one-line value"),
        ("exclude", "exclude: `x/.git` is not a file name"),
        ("tree", "option `exclude` must be an array"),
    ];
    for (which, message) in cases {
        let host = Arc::new(FakeTransport::new());
        run(CHORES, "web_oops", &[which], &host, false).failed_with(message);
        assert!(host.commands().is_empty(), "{which}: {:?}", host.commands());
    }
}

#[test]
fn utc_stamp_is_the_controllers_clock_in_utc() {
    use super::chores::stamp_of;
    assert_eq!(stamp_of(0), "19700101000000");
    assert_eq!(stamp_of(1_000_000_000), "20010909014640");
    assert_eq!(stamp_of(951_782_400 + 86_399), "20000229235959");
}

#[test]
fn every_option_map_can_be_left_out_and_both_forms_do_the_same() {
    // Each pair: the short form, and the same call with an empty map.
    let pairs = [
        ("host.run(\"echo one\");", "host.run(\"echo one\", #{});"),
        (
            "host.run([\"echo\", \"two\"]);",
            "host.run([\"echo\", \"two\"], #{});",
        ),
        (
            "host.absent(\"/srv/old\");",
            "host.absent(\"/srv/old\", #{});",
        ),
        (
            "host.write_file(\"/etc/motd\", \"hi\\n\");",
            "host.write_file(\"/etc/motd\", \"hi\\n\", #{});",
        ),
        ("host.lock(\"deploy\");", "host.lock(\"deploy\", #{});"),
        ("host.unlock(\"deploy\");", "host.unlock(\"deploy\", #{});"),
        ("host.list(\"/srv\");", "host.list(\"/srv\", #{});"),
        (
            "host.wait_until(\"ready\");",
            "host.wait_until(\"ready\", #{});",
        ),
        (
            "host.service_running(\"tick\");",
            "host.service_running(\"tick\", #{});",
        ),
        (
            "host.touch(\"/srv/mark\");",
            "host.touch(\"/srv/mark\", #{});",
        ),
        ("host.files(\"/srv\");", "host.files(\"/srv\", #{});"),
        (
            "host.http(\"http://127.0.0.1/\");",
            "host.http(\"http://127.0.0.1/\", #{});",
        ),
    ];
    for (short, long) in pairs {
        let sent = |body: &str| {
            // A site that answers, for `http`.
            let host = Arc::new(systemd().on("curl", 0, "200"));
            let script = format!("/// One call.\nfn one(host) {{\n    {body}\n}}\n");
            let ran = run(&script, "one", &[], &host, false);
            assert_eq!(ran.outcome.error, None, "{body}");
            (host.commands(), host.written().len())
        };
        let (short_sent, long_sent) = (sent(short), sent(long));
        assert!(!short_sent.0.is_empty(), "{short} sent nothing");
        assert_eq!(short_sent, long_sent, "{short} and {long} differ");
    }
}

#[test]
fn the_options_of_a_call_change_what_reaches_the_host() {
    let host = Arc::new(FakeTransport::new());
    let script = "/// Modes.\nfn modes(host) {\n    host.write_file(\"/etc/a\", \"x\", #{ mode: \"0600\" });\n    host.run(\"false\", #{ allow_fail: true });\n}\n";
    let ran = run(script, "modes", &[], &host, false);
    assert_eq!(ran.outcome.error, None);
    let written = host.written();
    assert_eq!(written.len(), 1);
    assert_eq!(
        (written[0].path.as_str(), written[0].mode),
        ("/etc/a", Some(0o600))
    );
}

#[test]
fn a_cron_entry_without_its_schedule_fails_under_check_too_before_the_host_is_asked() {
    let host = Arc::new(FakeTransport::new());
    let script = "/// Backup.\nfn backup(host) {\n    host.cron(\"backup\", #{ command: \"/usr/local/bin/backup\" });\n}\n";
    let ran = run(script, "backup", &[], &host, true);
    ran.failed_with("cron: option `schedule` is required");
    assert!(host.commands().is_empty(), "{:?}", host.commands());
    // The editor's check finds it on the line of the call, before any run.
    let problems = crate::script::check::check_source(script, true);
    let problem = problems
        .iter()
        .find(|p| p.message.contains("`cron` needs option `schedule`"))
        .expect("a problem for the missing schedule");
    assert_eq!(problem.line, 3);
}

/// A host without an init system (a container whose first process is not systemd).
fn init_less() -> FakeTransport {
    FakeTransport::new().on(FACTS, 0, "os=Linux\ninit=other\n")
}

const OWN_DAEMON: &str = r#"
/// Configures a daemon weft knows nothing of, driven by its own commands.
fn tick_conf(host) {
    host.notify("tick", "reload", #{ commands: #{
        start: "tickd --start", stop: "tickd --stop", reload: "tickd --reload", status: "tickd --status",
    } });
    host.run("echo configured");
}

/// The same, asked with `always`, then a step that hangs until Ctrl-C.
fn tick_slow(host) {
    host.notify("tick", "reload", #{ always: true, commands: #{
        start: "tickd --start", stop: "tickd --stop", reload: "tickd --reload", status: "tickd --status",
    } });
    host.notify("other", "restart", #{ commands: #{
        start: "otherd --start", stop: "otherd --stop", reload: "otherd --reload", status: "otherd --status",
    } });
    host.run("deploy --slow");
}
"#;

#[test]
fn notify_drives_a_daemon_by_the_commands_the_script_gives_on_a_host_without_init() {
    let host = Arc::new(init_less());
    let ran = run(OWN_DAEMON, "tick_conf", &[], &host, false);
    assert_eq!(ran.outcome.error, None);
    let commands = host.commands();
    assert_eq!(
        commands.first().map(String::as_str),
        Some("echo configured")
    );
    assert!(
        commands.iter().any(|c| c.contains("tickd --reload")),
        "{commands:#?}"
    );
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("systemctl") || c.contains("supervisorctl")),
        "{commands:#?}"
    );
}

#[test]
fn a_notify_with_always_still_runs_when_ctrl_c_ends_the_goal_and_the_others_do_not() {
    let host = Arc::new(init_less().hang("deploy --slow"));
    let interrupt = Interrupt::new();
    let run = {
        let (host, interrupt) = (host.clone(), interrupt.clone());
        std::thread::spawn(move || {
            let files = [("deploy/goals.rhai", OWN_DAEMON)];
            run_interruptible(&files, "tick_slow", &[], &host, false, interrupt).outcome
        })
    };
    assert!(host.wait_held(1), "the goal never reached its slow step");
    interrupt.signal();
    let outcome = run.join().expect("the run's thread");
    assert_eq!(outcome.status, Status::Failed, "{outcome:?}");
    let commands = host.commands();
    assert!(
        commands.iter().any(|c| c.contains("tickd --reload")),
        "{commands:#?}"
    );
    assert!(
        !commands.iter().any(|c| c.contains("otherd")),
        "{commands:#?}"
    );
}

#[test]
fn a_known_daemon_without_commands_on_a_host_without_init_says_which_constant_to_pass() {
    // supervisor is installed: it used to be asked, and answered "no such process".
    let host = Arc::new(init_less().on("command -v supervisorctl", 0, "supervisor\n"));
    let script = "/// Starts nginx.\nfn web_start(host) {\n    host.service(\"nginx\", #{ state: \"started\" });\n}\n";
    let ran = run(script, "web_start", &[], &host, false);
    ran.failed_with("`import \"lib/daemons\" as daemons;` then pass `commands: daemons::NGINX`");
    assert!(
        !host.commands().iter().any(|c| c.contains("supervisorctl")),
        "{:#?}",
        host.commands()
    );
}
