//! A goal's session on a fake host (`transport::fake`), for unit tests of operations, facts
//! and the session: what reached the host is read from the fake, what weft reported (changes,
//! diffs, logs) from an output that records its events.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::output::Output;
use super::remote_sums::RemoteSums;
use super::session::{HostSession, Privilege, SessionSetup};
use crate::inventory::HostSpec;
use crate::transport::fake::FakeTransport;

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
        let templates =
            crate::template::Templates::new(crate::layers::Layers::new(&crate::project::Project {
                root: root.clone(),
                config: None,
                user: crate::config::UserConfig::default(),
            }));
        let setup = SessionSetup {
            runtime: runtime.handle().clone(),
            output: output.clone(),
            templates: Arc::new(templates),
            local_root: root,
            check: flags.check,
            diff: flags.diff,
            privilege: flags.privilege,
            command_timeout: None,
            timings: None,
            hashes: Arc::default(),
            // In memory: a test never reads or writes the user's cache.
            sums: Arc::new(RemoteSums::at(None)),
        };
        let spec = HostSpec {
            name: "web-1".into(),
            address: "fake-web-1".into(),
            roles: Vec::new(),
            vars: Default::default(),
        };
        let deadline = super::session::HostDeadline::from_now(flags.host_timeout);
        let session = HostSession::new(spec, fake.clone(), &setup).with_deadline(deadline);
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
