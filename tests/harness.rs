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

/// Writes `text` to `path`, creating its folders.
pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dirs");
    }
    std::fs::write(path, text).expect("write file");
}
