//! A goal's session on a fake host (`transport::fake`), for unit tests of operations, facts
//! and the session: what reached the host is read from the fake, what weft reported (changes,
//! diffs, logs) from an output that records its events.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::interrupt::Interrupt;
use super::output::{HostOutcome, Output};
use super::remote_sums::RemoteSums;
use super::run::Run;
use super::runner::{Job, RunPlan};
use super::session::{HostSession, Privilege};
use super::settings::MaxFail;
use super::settings::{Confirm, FanoutLimits, RunSettings};
use crate::inventory::{HostSpec, Inventory};
use crate::project::Project;
use crate::template::Templates;
use crate::transport::fake::FakeTransport;
use crate::transport::Connector;

/// How the session runs: the flags a user would pass.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--check`.
    pub check: bool,
    /// `--diff`.
    pub diff: bool,
    /// `--become` and the sudo password.
    pub privilege: Privilege,
    /// The project folder uploads are taken from.
    pub local_root: Option<PathBuf>,
    /// `--host-timeout`, counted from the session's start.
    pub host_timeout: Option<std::time::Duration>,
}

/// One host, `web-1`, reached through a fake transport.
pub struct TestHost {
    /// What the host answers and what reached it.
    pub fake: Arc<FakeTransport>,
    /// The session operations run in.
    pub session: HostSession,
    output: Arc<Output>,
    _runtime: tokio::runtime::Runtime,
}

impl TestHost {
    /// A session without flags on `fake`.
    pub fn new(fake: FakeTransport) -> Self {
        Self::with(fake, Flags::default())
    }

    /// A session under `--check` on `fake`.
    pub fn check(fake: FakeTransport) -> Self {
        Self::with(
            fake,
            Flags {
                check: true,
                ..Flags::default()
            },
        )
    }

    /// A session with `flags` on `fake`.
    pub fn with(fake: FakeTransport, flags: Flags) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let fake = Arc::new(fake);
        let output = Output::recording(flags.check);
        let root = flags.local_root.unwrap_or_else(|| "/nonexistent".into());
        let templates = templates(&project(&root));
        let mut settings = test_settings(limits(1, None, None), flags.check);
        settings.diff = flags.diff;
        settings.privilege = flags.privilege;
        let run = Arc::new(Run {
            settings: Arc::new(settings),
            output: output.clone(),
            templates,
            root,
            timings: None,
            hashes: Default::default(),
            // In memory: a test never reads or writes the user's cache.
            sums: RemoteSums::at(None),
            round_trip: Default::default(),
            interrupt: Interrupt::new(),
        });
        let spec = HostSpec {
            name: "web-1".into(),
            address: "fake-web-1".into(),
            roles: Vec::new(),
            vars: Default::default(),
        };
        let deadline = super::session::HostDeadline::from_now(flags.host_timeout);
        let session = HostSession::new(run, runtime.handle().clone(), spec, fake.clone())
            .with_deadline(deadline);
        TestHost {
            fake,
            session,
            output,
            _runtime: runtime,
        }
    }

    /// The command lines that reached the host, in order.
    pub fn commands(&self) -> Vec<String> {
        self.fake.commands()
    }

    /// The steps reported as changed (or, under `--check`, as would change).
    pub fn changes(&self) -> Vec<String> {
        self.field_of("change", "step")
    }

    /// The steps reported as already as wanted.
    pub fn unchanged(&self) -> Vec<String> {
        self.field_of("unchanged", "step")
    }

    /// The unified diffs shown (`--diff`).
    pub fn diffs(&self) -> Vec<String> {
        self.field_of("diff", "diff")
    }

    /// The messages logged under the host's prefix.
    pub fn logs(&self) -> Vec<String> {
        self.field_of("log", "message")
    }

    /// The lines commands printed that reached the output.
    pub fn lines(&self) -> Vec<String> {
        self.field_of("output", "line")
    }

    /// Every `change` event was marked as a `--check` one.
    pub fn all_changes_checked(&self) -> bool {
        self.output
            .recorded()
            .iter()
            .filter(|e| e["event"] == "change")
            .all(|e| e["check"] == true)
    }

    fn field_of(&self, event: &str, field: &str) -> Vec<String> {
        self.output
            .recorded()
            .iter()
            .filter(|e| e["event"] == event && e["host"] == "web-1")
            .filter_map(|e| e.get(field).and_then(Value::as_str).map(String::from))
            .collect()
    }
}

/// The project at `root`: its `weft.toml` when there is one, else none (the stdlib alone).
pub fn project(root: &Path) -> Project {
    let file = root.join(crate::project::PROJECT_FILE);
    Project {
        root: root.to_path_buf(),
        config: file
            .exists()
            .then(|| crate::config::ProjectConfig::load(&file).expect("weft.toml")),
        user: crate::config::UserConfig::default(),
    }
}

/// The templates of `project`'s layers.
pub fn templates(project: &Project) -> Arc<Templates> {
    Arc::new(Templates::new(crate::layers::Layers::new(project)))
}

/// The fan-out limits `-p`, `--serial` and `--max-fail` set.
pub fn limits(parallel: usize, serial: Option<usize>, max_fail: Option<MaxFail>) -> FanoutLimits {
    FanoutLimits {
        parallel,
        grow: false,
        serial,
        max_fail,
        command_timeout: None,
        host_timeout: None,
    }
}

/// The settings of a run with `limits`, under `--check` when `check`, and no other flag.
pub fn test_settings(limits: FanoutLimits, check: bool) -> RunSettings {
    RunSettings {
        connect: crate::transport::ssh::ConnectOptions {
            identities: Vec::new(),
            config_identity: None,
            machine_identity: None,
            known_hosts: Vec::new(),
            policy: crate::transport::ssh::HostKeyPolicy::Strict,
            ssh_config: None,
            connect_timeout: Duration::from_secs(5),
            user: None,
        },
        limits,
        privilege: Privilege::default(),
        check,
        diff: false,
        json: true,
        color: false,
        verbosity: super::output::Verbosity::Verbose,
        vars: Default::default(),
        break_lock: false,
        rebuild: false,
        scrub: false,
        timings: false,
        timings_html: None,
        confirm: Confirm::yes(),
    }
}

/// Runs `job` on the hosts `app-0`, `app-1`, ... of env `test`, reached through `hosts`
/// (`None`: a host with no fake, which is unreachable), in the project at `root`, under
/// `--check` when `check`. Returns the outcomes in host order and the recorded output.
pub fn run_job(
    job: Job,
    hosts: &[Option<&Arc<FakeTransport>>],
    limits: FanoutLimits,
    check: bool,
    root: &Path,
) -> (Vec<HostOutcome>, Arc<Output>) {
    run_job_with(job, hosts, limits, check, root, Interrupt::new())
}

/// `run_job` with the run's Ctrl-C handle, `interrupt`, for a test that interrupts it.
pub fn run_job_with(
    job: Job,
    hosts: &[Option<&Arc<FakeTransport>>],
    limits: FanoutLimits,
    check: bool,
    root: &Path,
    interrupt: Arc<Interrupt>,
) -> (Vec<HostOutcome>, Arc<Output>) {
    let specs: Vec<HostSpec> = (0..hosts.len())
        .map(|i| HostSpec {
            name: format!("app-{i}"),
            address: format!("fake-app-{i}"),
            roles: Vec::new(),
            vars: Default::default(),
        })
        .collect();
    let fakes: HashMap<String, Arc<FakeTransport>> = specs
        .iter()
        .zip(hosts)
        .filter_map(|(spec, fake)| fake.map(|f| (spec.address.clone(), f.clone())))
        .collect();
    let settings = test_settings(limits, check);
    let output = Output::recording(check);
    let plan = RunPlan {
        job,
        inventory: Inventory {
            env: "test".into(),
            connector: crate::config::ConnectorKind::Ssh,
            vars: Default::default(),
            hosts: specs.clone(),
            roles: Default::default(),
            provider: false,
        },
        hosts: specs,
        connector: Connector::Fake(fakes),
        run: Arc::new(Run {
            settings: Arc::new(settings),
            output: output.clone(),
            templates: templates(&project(root)),
            root: root.to_path_buf(),
            timings: None,
            hashes: Default::default(),
            // In memory: a test never reads or writes the user's cache.
            sums: RemoteSums::at(None),
            round_trip: Default::default(),
            interrupt,
        }),
        orchestrator: None,
    };
    (super::runner::run(plan).expect("runtime"), output)
}

/// The part every file check's probe holds: `stat` with weft's format.
pub const FILE_CHECK: &str = "stat -c '%F|%a|%U|%G";

/// What a file check's probe prints for a `kind` (`regular file`, `directory`...) with `mode`
/// owned by root; with `content`, the SHA-256 of that content and the host's clock follow, as
/// for a check that hashes.
pub fn stat_answer(kind: &str, mode: &str, content: Option<&str>) -> String {
    stat_answer_owned(kind, mode, "root", content)
}

/// `stat_answer` for a path owned by `owner` (user and group).
pub fn stat_answer_owned(kind: &str, mode: &str, owner: &str, content: Option<&str>) -> String {
    let size = content.map_or(0, str::len);
    let time = "2023-11-14 22:13:20.000000000 +0000";
    let mut answer =
        format!("{kind}|{mode}|{owner}|{owner}|{size}|1700000000|{time}|{time}|2049|1234\n");
    if let Some(content) = content {
        answer.push_str(&format!(
            "{}  file\n1700000100\n",
            crate::transport::sha256_bytes(content.as_bytes())
        ));
    }
    answer
}

/// Asserts that the commands that reached the host are, in order, ones containing each of
/// `expected` (the whole command where it is short, its telling part where weft wraps it in a
/// longer script), and no others.
#[track_caller]
pub fn assert_ran(host: &TestHost, expected: &[&str]) {
    assert_ran_in("", host, expected);
}

/// `assert_ran` for one `case` of a table, named when it fails.
#[track_caller]
pub fn assert_ran_in(case: &str, host: &TestHost, expected: &[&str]) {
    let ran = host.commands();
    let fits = ran.len() == expected.len()
        && ran
            .iter()
            .zip(expected)
            .all(|(command, part)| command.contains(part));
    assert!(
        fits,
        "{case}: the host got other commands than expected\nexpected (parts, in order):\n  {}\ngot:\n  {}",
        expected.join("\n  "),
        ran.join("\n  ")
    );
}
