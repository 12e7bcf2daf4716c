//! The README is true: every shell command of its Quickstart and of its hello-wsgi example runs
//! as written on a clean copy, one after another as a reader would type them, and does what
//! the README's comments say it does.
//!
//! Three commands are not run as written, each for a stated reason (`skip` and `substitute`):
//! the build (`cargo install`, `cargo run`: the test runs the binary cargo built for it), the
//! test command itself (`scripts/test.sh`), and the placeholder `<URL>`, which stands for the
//! URL `env_up` printed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::harness::{Outcome, Test};

const README: &str = include_str!("../README.md");

/// A fenced block of the README: its language and its text.
struct Block {
    lang: String,
    text: String,
}

/// The fenced blocks of the README section under `heading`, up to the next heading of the same
/// or a higher level (lines inside blocks, such as `# comment` in a shell block, are no heading).
fn section_blocks(heading: &str) -> Vec<Block> {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut lines = README.lines().skip_while(|l| *l != heading);
    assert!(
        lines.next().is_some(),
        "the README has no section {heading:?}"
    );
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for line in lines {
        if let Some(block) = open.as_mut() {
            if line.trim_start().starts_with("```") {
                blocks.extend(open.take());
            } else {
                block.text.push_str(line);
                block.text.push('\n');
            }
        } else if let Some(lang) = line.strip_prefix("```") {
            open = Some(Block {
                lang: lang.trim().to_string(),
                text: String::new(),
            });
        } else {
            let hashes = line.chars().take_while(|&c| c == '#').count();
            if hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
                break;
            }
        }
    }
    blocks
}

/// One command of a shell block and the comment the README puts beside it (with the comment
/// lines that follow it).
#[derive(Debug)]
struct Step {
    line: String,
    comment: String,
}

/// The commands of a shell block.
fn steps(block: &Block) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for raw in block.text.lines() {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(more) = trimmed.strip_prefix('#') {
            if let Some(last) = steps.last_mut() {
                last.comment.push(' ');
                last.comment.push_str(more.trim());
            }
            continue;
        }
        let (line, comment) = split_comment(trimmed);
        steps.push(Step {
            line: line.trim().to_string(),
            comment: comment.trim().to_string(),
        });
    }
    steps
}

/// A shell line split at its comment: a `#` after a blank, outside quotes.
fn split_comment(line: &str) -> (&str, &str) {
    let mut quote = None;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return (&line[..at], &line[at + 1..]),
            _ => {}
        }
        previous = c;
    }
    (line, "")
}

/// Why a README command is not run, when it is not.
fn skip(line: &str) -> Option<&'static str> {
    if line.starts_with("cargo install --path .") {
        return Some("the test runs the weft cargo built for it, on PATH as `weft`");
    }
    if line.starts_with("scripts/test.sh") {
        return Some("it is the test command itself, which runs this test");
    }
    None
}

/// A reader's walk through the README: a clean copy of the clone, the built weft on PATH,
/// the folder the last command left the reader in, and what earlier commands printed.
struct Walk<'t> {
    test: &'t Test,
    root: PathBuf,
    bin: PathBuf,
    cwd: PathBuf,
    url: Option<String>,
    /// The machine that answered the last `curl`.
    last_answer: Option<String>,
    runs: HashMap<String, usize>,
}

impl<'t> Walk<'t> {
    /// The test's project folder is the clone's root; examples/hello-wsgi is copied into it
    /// from the files git tracks, so nothing a developer left there (a `.weft`, builds) comes
    /// along.
    fn new(test: &'t Test) -> Self {
        let root = test.path().to_path_buf();
        let source = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = crate::harness::git(source, &["ls-files", "-z", "examples/hello-wsgi"]);
        let files: Vec<&str> = files.split('\0').filter(|f| !f.is_empty()).collect();
        assert!(files.len() > 3, "git lists examples/hello-wsgi: {files:?}");
        for file in files {
            let to = root.join(file);
            std::fs::create_dir_all(to.parent().expect("a folder")).expect("mkdir");
            std::fs::copy(source.join(file), &to).expect("copy");
        }
        let bin = root.parent().expect("the test folder").join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir bin");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_weft"), bin.join("weft")).expect("link");
        Walk {
            test,
            cwd: root.clone(),
            root,
            bin,
            url: None,
            last_answer: None,
            runs: HashMap::new(),
        }
    }

    /// Runs a shell block from the clone's root, command by command, and checks the output
    /// that the `text` block after it documents against its last command.
    fn block(&mut self, block: &Block, documented: Option<&Block>) {
        self.cwd = self.root.clone();
        let mut last = None;
        for step in steps(block) {
            if let Some(reason) = skip(&step.line) {
                eprintln!("readme: not run: `{}`: {reason}", step.line);
                continue;
            }
            last = Some(self.step(&step));
        }
        if let (Some(text), Some(out)) = (documented, last) {
            documented_output(&text.text, &out);
        }
    }

    /// One command: run as a reader would (a command that asks runs in a terminal, where the
    /// reader answers `y`), then its exit code and what its comment says are checked.
    fn step(&mut self, step: &Step) -> Outcome {
        let line = self.substitute(&step.line);
        let nth = {
            let n = self.runs.entry(line.clone()).or_insert(0);
            *n += 1;
            *n
        };
        eprintln!("readme: $ {line}");
        let before = snapshot(&self.cwd);
        let sed_file = line
            .starts_with("sed -i ")
            .then(|| self.cwd.join(line.rsplit(' ').next().unwrap_or_default()));
        let sed_before = sed_file
            .as_ref()
            .map(|f| std::fs::read(f).unwrap_or_default());
        let watcher = step
            .comment
            .contains("no request fails")
            .then(|| Watcher::start(self.lb_address()));
        // A reader types these in a terminal, where the commands that destroy ask first.
        let asks =
            (step.comment.contains("asks") || line.contains("env_down")) && !line.contains("--yes");
        let out = self.run(&line, asks);
        let failed = watcher.map(Watcher::stop);
        assert_eq!(
            out.code,
            0,
            "the README's `{}` failed (run #{nth}, in {})\n{out:#?}",
            step.line,
            self.cwd.display()
        );
        if let Some((served, failed)) = failed {
            assert!(
                served > 0 && failed.is_empty(),
                "`{line}`: the README says no request fails; {served} answered, these failed: {failed:?}"
            );
        }
        if let (Some(file), Some(before)) = (sed_file, sed_before) {
            assert_ne!(
                std::fs::read(&file).unwrap_or_default(),
                before,
                "`{line}` changed nothing in {}",
                file.display()
            );
        }
        self.check(step, &line, &out, &before);
        out
    }

    /// The README's placeholders and commands made runnable: `cargo run -q --` is the built
    /// weft, `<URL>` the URL `env_up` printed.
    fn substitute(&self, line: &str) -> String {
        let line = line.replace("cargo run -q --", "weft");
        if line.contains("<URL>") {
            let url = self
                .url
                .as_deref()
                .unwrap_or_else(|| panic!("`{line}` needs the URL env_up printed, and none was"));
            return line.replace("<URL>", url);
        }
        line
    }

    /// Runs `line` with bash in the reader's folder, in a terminal when it asks, and records
    /// the folder it leaves the reader in.
    fn run(&mut self, line: &str, terminal: bool) -> Outcome {
        let cwd_file = self.bin.with_file_name("cwd");
        let script = r#"cd "$1" && eval "$2"; rc=$?; pwd > "$3"; exit $rc"#;
        let argv = [
            "bash",
            "-c",
            script,
            "bash",
            &self.cwd.display().to_string(),
            line,
            &cwd_file.display().to_string(),
        ];
        let mut command = if terminal {
            let joined: Vec<String> = argv.iter().map(|a| quote(a)).collect();
            let mut script = Command::new("script");
            script.args(["-qec", &joined.join(" "), "/dev/null"]);
            script
        } else {
            let mut bash = Command::new(argv[0]);
            bash.args(&argv[1..]);
            bash
        };
        command.env_clear().current_dir(&self.cwd);
        let weft = self.test.command(&[]);
        for (key, value) in weft.get_envs() {
            if let Some(value) = value {
                command.env(key, value);
            }
        }
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", self.bin.display()));
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash starts");
        if let Some(mut stdin) = child.stdin.take() {
            if terminal {
                std::io::Write::write_all(&mut stdin, b"y\n").expect("answer y");
            }
        }
        let output = child.wait_with_output().expect("bash ends");
        if let Ok(cwd) = std::fs::read_to_string(&cwd_file) {
            self.cwd = PathBuf::from(cwd.trim());
        }
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// What the README says a command does, checked against what it did.
    fn check(&mut self, step: &Step, line: &str, out: &Outcome, before: &Files) {
        let comment = step.comment.as_str();
        if line.starts_with("weft init ") {
            assert!(self.cwd.join("weft.toml").is_file(), "`{line}`: {out:#?}");
            assert!(
                std::fs::read_to_string(self.cwd.join(".gitignore"))
                    .unwrap_or_default()
                    .contains(".weft/"),
                "`{line}` writes a .gitignore for .weft/"
            );
        }
        if comment.contains("the project's first") {
            let first = out.stdout.lines().next().unwrap_or_default();
            assert!(first.contains("[project]"), "`{line}`: {out:#?}");
        }
        if comment.contains("renders templates/hello/index.html.hbs into www/") {
            let page = std::fs::read_to_string(self.cwd.join("www/index.html"));
            let version = line.rsplit(' ').next().unwrap_or_default();
            assert!(
                page.as_deref()
                    .is_ok_and(|p| p.contains(&format!("version {version}"))),
                "`{line}` renders www/index.html: {page:?}\n{out:#?}"
            );
        }
        if comment.contains("nothing changes") {
            out.stdout_has(" 0 changed, 0 failed")
                .stdout_lacks("changed: ");
            assert_eq!(&snapshot(&self.cwd), before, "`{line}` changed files");
        }
        if comment.contains("changes nothing") {
            assert_eq!(&snapshot(&self.cwd), before, "`{line}` changed files");
        }
        if comment.contains("shows what would change") {
            out.stdout_has("would change: file ");
        }
        if let Some(what) = comment.strip_prefix("serving ") {
            out.stdout_has(&format!("serving {what}"));
        }
        if comment.contains("prints the lb's URL") || comment.contains("the lb's URL:") {
            let url = regex::Regex::new(r"answers at (http://\S+)")
                .expect("regex")
                .captures(&out.stdout)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_string());
            assert!(url.is_some(), "`{line}` prints no URL\n{out:#?}");
            self.url = url;
        }
        if line.starts_with("curl ") {
            self.check_curl(step, line, out);
        }
        let serves = regex::Regex::new(r"(?:builds|serves) (\d+\.\d+)").expect("regex");
        if let Some(version) = serves.captures(comment).and_then(|c| c.get(1)) {
            // Both app machines: a round-robin lb alternates between them.
            for answer in crate::webstack::answers(&self.lb_address(), 4) {
                assert!(
                    answer.starts_with(&format!("hello {} from app-", version.as_str())),
                    "after `{line}` the lb answers {answer:?}"
                );
            }
        }
        if comment.contains("asks") && !line.contains("--yes") {
            out.stdout_has("[y/N]");
        }
        if comment.contains("terminates the three machines") {
            let list = self.test.run_in(&self.cwd, &["cloud", "list", "--json"]);
            list.status(0);
            let machines: Vec<serde_json::Value> =
                serde_json::from_str(&list.stdout).expect("json");
            assert!(machines.is_empty(), "after `{line}`: {machines:#?}");
        }
    }

    /// A `curl` of the lb: the answer its comment gives (`hello 1.0 from app-0 (or app-1)`),
    /// and, for "the other app machine", not the machine of the `curl` before it.
    fn check_curl(&mut self, step: &Step, line: &str, out: &Outcome) {
        let comment = step.comment.as_str();
        // A fixed address is right only by chance: the provider picks a free one.
        assert!(
            step.line.contains("<URL>"),
            "`{}`: the lb's address varies; the README must write <URL>, the URL env_up printed",
            step.line
        );
        let answer = out.stdout.trim();
        let machine = answer.rsplit(' ').next().unwrap_or_default().to_string();
        let said = regex::Regex::new(r"(hello \S+ from )").expect("regex");
        let said = said
            .captures(comment)
            .and_then(|c| c.get(1))
            .unwrap_or_else(|| panic!("`{line}`: the README says no answer: {comment:?}"));
        assert!(
            answer.starts_with(said.as_str()) && machine.starts_with("app-"),
            "`{line}` answers {answer:?}; the README says {comment:?}"
        );
        if comment.contains("the other app machine") {
            assert_ne!(
                self.last_answer.as_deref(),
                Some(machine.as_str()),
                "`{line}`: the same machine answered twice in a row"
            );
        }
        self.last_answer = Some(machine);
    }

    /// The lb's `address:port`, from the URL `env_up` printed.
    fn lb_address(&self) -> String {
        let url = self.url.as_deref().expect("env_up printed the lb's URL");
        url.trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }
}

/// Asks the lb for `/` until stopped (or dropped, when the walk fails meanwhile): how many
/// answered, and the errors of those that did not.
struct Watcher {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<(usize, Vec<String>)>>,
}

impl Watcher {
    fn start(address: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut served, mut failed) = (0, Vec::new());
            while !flag.load(Ordering::SeqCst) {
                match crate::webstack::get(&address) {
                    Ok(_) => served += 1,
                    Err(e) => failed.push(e),
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (served, failed)
        });
        Watcher {
            stop,
            handle: Some(handle),
        }
    }

    fn stop(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let handle = self.handle.take().expect("a running watcher");
        handle.join().expect("the watcher ends")
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Every file under a folder (but weft's own `.weft`) with its content.
type Files = BTreeMap<PathBuf, Vec<u8>>;

fn snapshot(dir: &Path) -> Files {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".weft")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let content = std::fs::read(e.path()).unwrap_or_default();
            (e.into_path(), content)
        })
        .collect()
}

/// The output a ```text block shows, against what the command printed: a `host | key: value`
/// line's `host | key: ` (values differ from host to host), the summary line exactly, and a
/// host's summary line by its name and state.
fn documented_output(text: &str, out: &Outcome) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with("summary:") {
            out.stdout_has(&format!("{line}\n"));
        } else if let Some((key, _)) = line.split_once(": ").filter(|_| line.contains(" | ")) {
            out.stdout_has(&format!("{key}: "));
        } else {
            let words: Vec<&str> = line.split_whitespace().take(2).collect();
            assert!(
                out.stdout
                    .lines()
                    .any(|l| l.split_whitespace().take(2).eq(words.iter().copied())),
                "no line starts like {line:?}\n{out:#?}"
            );
        }
    }
}

/// A word for `sh -c`, in single quotes.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The shell blocks of a section that bring machines up, or those that do not, each with the
/// ```text block that follows it.
fn walkthrough(heading: &str, machines: bool) -> Vec<(Block, Option<Block>)> {
    let mut blocks = section_blocks(heading).into_iter().peekable();
    let mut walk = Vec::new();
    while let Some(block) = blocks.next() {
        if block.lang != "sh" {
            continue;
        }
        let documented = blocks.next_if(|b| b.lang == "text");
        if block.text.contains("env_up") == machines {
            walk.push((block, documented));
        }
    }
    walk
}

/// Brings the hello-wsgi copy's machines down, however the walk ended.
struct Down<'t> {
    test: &'t Test,
    dir: PathBuf,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self.test.run_in(&self.dir, &["run", "env_down", "--yes"]);
        let _ = self.test.run_in(&self.dir, &["cloud", "destroy", "--yes"]);
    }
}

#[test]
fn the_quickstart_runs_as_written() {
    let test = Test::new();
    let mut walk = Walk::new(&test);
    let blocks = walkthrough("## Quickstart", false);
    assert!(
        blocks.len() >= 2 && blocks.iter().any(|(_, text)| text.is_some()),
        "the Quickstart lost its blocks or its documented output"
    );
    for (block, documented) in &blocks {
        walk.block(block, documented.as_ref());
    }
    assert!(
        walk.runs.contains_key("weft run system_info") && walk.runs.contains_key("weft list"),
        "{:?}",
        walk.runs
    );
}

/// Boots the hello-wsgi machines twice (the Quickstart's block, then the example's): run it
/// alone, it takes minutes.
#[test]
fn the_hello_wsgi_walkthrough_runs_as_written() {
    let test = Test::new().with_env(vec![crate::app::pip_cache()]);
    let mut walk = Walk::new(&test);
    let _down = Down {
        test: &test,
        dir: walk.root.join("examples/hello-wsgi"),
    };
    let mut blocks = walkthrough("## Quickstart", true);
    blocks.extend(walkthrough(
        "### Example: hello-wsgi on three machines",
        true,
    ));
    assert_eq!(
        blocks.len(),
        2,
        "the Quickstart and the example each bring the machines up"
    );
    for (block, documented) in &blocks {
        walk.url = None;
        walk.last_answer = None;
        walk.block(block, documented.as_ref());
    }
    assert_eq!(
        walk.runs.get("weft run env_up"),
        Some(&2),
        "{:?}",
        walk.runs
    );
}
