//! A temporary project and the built `weft` binary, in the style of just's `Test` builder.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A temporary folder to run `weft` in, isolated from the user's config.
pub struct Test {
    dir: TempDir,
    cwd: PathBuf,
    env: Vec<(String, String)>,
}

/// What one `weft` invocation did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn status(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{self:#?}");
        self
    }

    /// Asserts that standard output contains `text`.
    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}\n{self:#?}"
        );
        self
    }

    /// Asserts that standard error contains `text`.
    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}\n{self:#?}"
        );
        self
    }

    /// Asserts that standard output does not contain `text`.
    #[track_caller]
    pub fn stdout_lacks(&self, text: &str) -> &Self {
        assert!(
            !self.stdout.contains(text),
            "stdout has {text:?}\n{self:#?}"
        );
        self
    }

    /// Asserts that standard error does not contain `text`.
    #[track_caller]
    pub fn stderr_lacks(&self, text: &str) -> &Self {
        assert!(
            !self.stderr.contains(text),
            "stderr has {text:?}\n{self:#?}"
        );
        self
    }
}

impl Test {
    /// An empty folder.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("weft-test")
            .tempdir()
            .expect("temp dir");
        let cwd = dir.path().join("project");
        std::fs::create_dir_all(&cwd).expect("project dir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home dir");
        let env = vec![
            ("HOME".into(), home.display().to_string()),
            (
                "XDG_CONFIG_HOME".into(),
                dir.path().join("xdg").display().to_string(),
            ),
            ("NO_COLOR".into(), "1".into()),
        ];
        Test { dir, cwd, env }
    }

    /// A folder with `weft.toml` holding `config`.
    pub fn with_config(config: &str) -> Self {
        let test = Self::new();
        test.write("weft.toml", config);
        test
    }

    /// The project folder.
    pub fn path(&self) -> &Path {
        &self.cwd
    }

    /// The fake home folder.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Adds environment variables to every run.
    pub fn with_env(mut self, vars: Vec<(String, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    /// The user's config folder (`$XDG_CONFIG_HOME/weft`).
    pub fn user_dir(&self) -> PathBuf {
        self.dir.path().join("xdg").join("weft")
    }

    /// Writes `text` to `rel` under the project folder, creating folders.
    pub fn write(&self, rel: &str, text: &str) -> &Self {
        write(&self.cwd.join(rel), text);
        self
    }

    /// Reads `rel` under the project folder.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.cwd.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Runs `weft args` in the project folder.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_in(&self.cwd, args)
    }

    /// Runs `weft args` in the project folder with `extra` environment variables.
    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Outcome {
        self.run_full(&self.cwd, args, extra)
    }

    /// Runs `weft ssh MACHINE -e ENV -- COMMAND...`: one command on one machine of an env.
    pub fn ssh(&self, env: &str, machine: &str, command: &[&str]) -> Outcome {
        let mut args = vec!["ssh", machine, "-e", env, "--"];
        args.extend_from_slice(command);
        self.run(&args)
    }

    /// Runs `weft args` in `dir`.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Outcome {
        self.run_full(dir, args, &[])
    }

    /// `weft args` in the project folder with the test's environment, not started yet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
        command
            .args(args)
            .current_dir(&self.cwd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // The machine image cache is shared by every test and kept between CI runs.
            .envs(std::env::var("WEFT_IMAGE_CACHE").map(|v| ("WEFT_IMAGE_CACHE", v)))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// Runs `weft args` in a real pseudo-terminal (util-linux `script`), typing `input`;
    /// stdout holds everything the terminal showed, and the status is weft's exit code.
    pub fn run_in_terminal(&self, args: &[&str], input: &str) -> Outcome {
        let weft = self.command(args);
        let line: Vec<String> = std::iter::once(weft.get_program())
            .chain(weft.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''")))
            .collect();
        let mut script = Command::new("script");
        script
            .args(["-qec", &line.join(" "), "/dev/null"])
            .current_dir(&self.cwd)
            .env_clear()
            .stdin(std::process::Stdio::piped());
        for (key, value) in weft.get_envs() {
            if let Some(value) = value {
                script.env(key, value);
            }
        }
        let mut child = script
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("script runs");
        if let Some(mut stdin) = child.stdin.take() {
            std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("type input");
        }
        let output = child.wait_with_output().expect("script ends");
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn run_full(&self, dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Outcome {
        let output = self
            .command(args)
            .current_dir(dir)
            .envs(extra.iter().copied())
            .output()
            .expect("weft runs");
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs git in `dir` as a test user with `main` as the default branch; panics when it fails.
/// Returns its standard output, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Destroys an env's machines even when a test fails half-way.
pub struct Destroy<'a> {
    /// The project.
    pub test: &'a Test,
    /// The env.
    pub env: &'a str,
}

impl Drop for Destroy<'_> {
    fn drop(&mut self) {
        let _ = self
            .test
            .run(&["cloud", "destroy", "-e", self.env, "--yes"]);
    }
}

/// Waits until `ready` holds, asking every 20 ms, at most `limit`; panics naming `what` when it
/// never does. For a condition a test must see before going on, in place of a fixed sleep.
#[track_caller]
pub fn wait_for(what: &str, limit: std::time::Duration, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Writes `text` to `path`, creating its folders.
pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dirs");
    }
    std::fs::write(path, text).expect("write file");
}

/// A `weft` running in a real pseudo-terminal (util-linux `script`), watched while it runs:
/// what it wrote so far, the screen a person sees, and keys typed at a moment of the test's
/// choosing.
pub struct Terminal {
    child: std::process::Child,
    keys: Option<std::process::ChildStdin>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Test {
    /// Starts `weft args` in a pseudo-terminal of 120 columns with `TERM=xterm`, as a person
    /// runs it.
    pub fn start_in_terminal(&self, args: &[&str]) -> Terminal {
        let weft = self.command(args);
        let line: Vec<String> = std::iter::once(weft.get_program())
            .chain(weft.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''")))
            .collect();
        // A pty made by `script` without a terminal around it has no size.
        let shell = format!("stty cols 120 rows 40; exec {}", line.join(" "));
        let mut script = Command::new("script");
        script
            .args(["-qefc", &shell, "/dev/null"])
            .current_dir(&self.cwd)
            .env_clear()
            .env("TERM", "xterm")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        for (key, value) in weft.get_envs() {
            if let Some(value) = value {
                script.env(key, value);
            }
        }
        let mut child = script.spawn().expect("script runs");
        let keys = child.stdin.take();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut out = child.stdout.take().expect("stdout");
        let sink = seen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match std::io::Read::read(&mut out, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => sink.lock().expect("seen").extend_from_slice(&buf[..n]),
                }
            }
        });
        Terminal {
            child,
            keys,
            seen,
            reader: Some(reader),
        }
    }
}

impl Terminal {
    /// Everything the terminal was sent so far, escape sequences included.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().expect("seen")).into_owned()
    }

    /// The screen as a person sees it now.
    pub fn screen(&self) -> Screen {
        Screen::of(&self.raw())
    }

    /// Waits until the screen satisfies `ready` (at most `limit`); panics with the screen when
    /// it never does.
    #[track_caller]
    pub fn wait_until(&self, limit: std::time::Duration, ready: impl Fn(&Screen) -> bool) {
        let start = std::time::Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "the terminal never showed what was awaited:\n{}",
                screen.text()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Types `keys` (`"n\n"`, `"\u{3}"` for Ctrl-C).
    pub fn type_keys(&mut self, keys: &str) {
        let stdin = self.keys.as_mut().expect("the terminal is open");
        std::io::Write::write_all(stdin, keys.as_bytes()).expect("type");
        std::io::Write::flush(stdin).expect("flush");
    }

    /// Waits for weft to end; its exit code and everything the terminal showed (stdout).
    pub fn finish(mut self) -> Outcome {
        let status = self.child.wait().expect("script ends");
        drop(self.keys.take());
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: self.raw(),
            stderr: String::new(),
        }
    }
}

/// A terminal's screen rebuilt from what was sent to it: text, carriage returns, newlines,
/// line erasing and cursor moves up and down (what a progress bar uses); colours are dropped.
#[derive(Debug, Default)]
pub struct Screen {
    /// Every line the terminal has shown, scrolled-off ones included, as they stand now.
    pub lines: Vec<String>,
}

impl Screen {
    /// The screen after `sent`.
    pub fn of(sent: &str) -> Screen {
        let mut lines: Vec<Vec<char>> = vec![Vec::new()];
        let (mut row, mut col) = (0usize, 0usize);
        let mut chars = sent.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => col = 0,
                '\n' => {
                    row += 1;
                    if lines.len() <= row {
                        lines.push(Vec::new());
                    }
                }
                '\u{8}' => col = col.saturating_sub(1),
                '\u{1b}' => {
                    if chars.peek() != Some(&'[') {
                        chars.next();
                        continue;
                    }
                    chars.next();
                    let mut params = String::new();
                    let mut command = ' ';
                    for p in chars.by_ref() {
                        if p.is_ascii_alphabetic() || p == '@' || p == '~' {
                            command = p;
                            break;
                        }
                        params.push(p);
                    }
                    let n: usize = params.trim_start_matches('?').parse().unwrap_or(0);
                    let line = &mut lines[row];
                    match (command, params.as_str()) {
                        ('K', "2") => line.clear(),
                        ('K', "1") => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                        ('K', _) => line.truncate(col),
                        ('J', "" | "0") => {
                            line.truncate(col);
                            lines.truncate(row + 1);
                        }
                        ('A', _) => row = row.saturating_sub(n.max(1)),
                        ('B', _) => {
                            row += n.max(1);
                            while lines.len() <= row {
                                lines.push(Vec::new());
                            }
                        }
                        ('G', _) => col = n.max(1) - 1,
                        _ => {}
                    }
                }
                c if c.is_control() => {}
                c => {
                    let line = &mut lines[row];
                    while line.len() < col {
                        line.push(' ');
                    }
                    if col < line.len() {
                        line[col] = c;
                    } else {
                        line.push(c);
                    }
                    col += 1;
                }
            }
        }
        Screen {
            lines: lines
                .into_iter()
                .map(|l| l.into_iter().collect::<String>().trim_end().to_string())
                .collect(),
        }
    }

    /// The last line with text on it.
    pub fn last_line(&self) -> &str {
        self.lines
            .iter()
            .rev()
            .find(|l| !l.is_empty())
            .map_or("", String::as_str)
    }

    /// The whole screen, one line per line.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}
