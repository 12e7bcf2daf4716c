//! What a person sees: weft driven through a real pseudo-terminal (and through a pipe, where no
//! bar is drawn), asserting on the screen rather than on the bytes: prompts that stay up,
//! messages on lines of their own, counters that add up, and runs that stop in one line.

use std::time::{Duration, Instant};

use crate::fleet::Fleet;
use crate::harness::{Screen, Terminal, Test};

const CONFIG: &str = "[project]\nname = \"t\"\n";

/// Goals on the local connector: a host step, and controller goals that nest it.
const GOALS: &str = r#"
/// A short step on the host.
fn step(host) { log("stepping"); host.run("sleep 0.3"); log("stepped"); }

/// A step that waits until it is stopped.
fn hang(host) { log("hanging on"); host.run("sleep 60"); log("never"); }

/// A step, then a question, asked from a helper as the stdlib asks.
fn ask() {
    run_goal("step", []);
    drop_all(["db", "cache"]);
    log("dropped");
}

private fn drop_all(what) {
    confirm("drop everything?", what);
}

/// A step, then one that hangs.
fn stall() {
    run_goal("step", []);
    run_goal("hang", []);
}

/// Waits on the controller inside a goal started by `run_goal`.
fn outer() { run_goal("inner", []); }

/// Waits on the controller.
fn inner() { controller().run(["sleep", "2"]); }

/// A step longer than the 5 s between progress lines.
fn long_step(host) { host.run("sleep 7"); }
"#;

fn project() -> Test {
    let test = Test::with_config(CONFIG);
    test.write("deploy/goals.rhai", GOALS);
    test
}

/// Whether `line` holds a frame of the progress bar (its spinner is braille).
fn has_frame(line: &str) -> bool {
    line.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c))
}

/// Every `DONE/TOTAL hosts` the terminal was sent, bar frames included.
fn counters(raw: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    for (at, _) in raw.match_indices(" hosts") {
        let head = &raw[..at];
        let start = head
            .rfind(|c: char| !(c.is_ascii_digit() || c == '/'))
            .map_or(0, |i| i + 1);
        if let Some((done, total)) = head[start..].split_once('/') {
            if let (Ok(done), Ok(total)) = (done.parse(), total.parse()) {
                found.push((done, total));
            }
        }
    }
    found
}

/// The bar never counts more hosts done than its run has, nor shows a run of no hosts, and no
/// frame was left on a line a message was written onto.
#[track_caller]
fn readable(raw: &str) {
    let counts = counters(raw);
    for (done, total) in &counts {
        assert!(
            *total > 0 && done <= total,
            "the bar showed {done}/{total} hosts:\n{raw}"
        );
    }
    let screen = Screen::of(raw);
    for line in &screen.lines {
        assert!(
            !has_frame(line),
            "a message shares a line with a progress frame: {line:?}\n{}",
            screen.text()
        );
    }
}

/// What the terminal shows after `at` (the lines below the first one containing it).
fn after<'a>(screen: &'a Screen, at: &str) -> Vec<&'a str> {
    let from = screen
        .lines
        .iter()
        .position(|l| l.contains(at))
        .unwrap_or_else(|| panic!("no {at:?} on the screen:\n{}", screen.text()));
    screen.lines[from + 1..]
        .iter()
        .map(String::as_str)
        .collect()
}

#[test]
fn a_question_stays_on_screen_until_answered_and_no_ends_in_one_line() {
    let test = project();
    let mut terminal: Terminal = test.start_in_terminal(&["run", "ask"]);
    terminal.wait_until(Duration::from_secs(60), |s| s.last_line() == "go on? [y/N]");
    // The bar turns every 120 ms; for many of its turns the question stays the last line.
    let asked = Instant::now();
    while asked.elapsed() < Duration::from_millis(1500) {
        let screen = terminal.screen();
        assert_eq!(
            screen.last_line(),
            "go on? [y/N]",
            "the question was drawn over:\n{}",
            screen.text()
        );
        std::thread::sleep(Duration::from_millis(30));
    }
    let screen = terminal.screen();
    let question = screen
        .lines
        .iter()
        .position(|l| l == "weft: drop everything?")
        .unwrap_or_else(|| panic!("no question:\n{}", screen.text()));
    assert_eq!(
        screen.lines[question + 1..question + 3],
        ["  db", "  cache"],
        "{}",
        screen.text()
    );
    terminal.type_keys("n\n");
    let seen = terminal.finish();
    // A refusal is a usage matter: exit 2, as documented.
    seen.status(2);
    readable(&seen.stdout);
    let screen = Screen::of(&seen.stdout);
    assert_eq!(
        screen.last_line(),
        "weft: not confirmed: nothing was done; pass --yes to confirm without a prompt",
        "{}",
        screen.text()
    );
    // After the answer: the summary (the step ran, the question did not pass) and the one
    // line; no diagnostic, no chain of calls through the helper.
    let rest = after(&screen, "go on? [y/N] n").join("\n");
    assert!(!rest.contains("drop_all"), "{rest}");
    assert!(!rest.contains("weft::script"), "{rest}");
    assert!(!rest.contains("│"), "{rest}");
    assert!(
        rest.contains("summary: 1 ok, 0 changed, 1 failed"),
        "{rest}"
    );
    assert!(!rest.contains("dropped"), "{rest}");
}

#[test]
fn ctrl_c_ends_in_one_line_that_says_which_hosts_finished_and_which_stopped() {
    let test = project();
    let mut terminal = test.start_in_terminal(&["run", "stall"]);
    terminal.wait_until(Duration::from_secs(60), |s| {
        s.lines.iter().any(|l| l.ends_with("| hanging on"))
    });
    // Ctrl-C as typed: the terminal sends SIGINT to weft.
    terminal.type_keys("\u{3}");
    let seen = terminal.finish();
    seen.status(130);
    readable(&seen.stdout);
    let screen = Screen::of(&seen.stdout);
    let last = screen.last_line();
    // The controller goal stops at the `run_goal` the interrupt failed, as at any step.
    assert!(
        last.starts_with(
            "weft: interrupted: of 2 hosts, 0 finished, 2 stopped (local, controller)"
        ),
        "{}",
        screen.text()
    );
    let rest = after(&screen, "| hanging on").join("\n");
    assert!(!rest.contains("weft::script"), "{rest}");
    assert!(!rest.contains("│"), "{rest}");
    assert!(!rest.contains("never"), "{rest}");
    // The summary still says what each host did.
    assert!(
        rest.contains("summary: 0 ok, 0 changed, 2 failed"),
        "{rest}"
    );
    // The local command was stopped by weft, not by the terminal's SIGINT: its row says so.
    assert!(rest.contains("interrupted during `sleep 60`"), "{rest}");
    assert!(rest.contains("interrupted during goal `hang`"), "{rest}");
    assert!(!rest.contains("exited with"), "{rest}");
}

/// Whether a process whose command line holds `marker` runs.
fn running(marker: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("pgrep")
        .status
        .success()
}

#[test]
fn ctrl_c_also_ends_what_a_local_command_started_in_the_background() {
    let marker = format!("weft-orphan-{}-{}", std::process::id(), fastrand::u64(..));
    let test = project();
    // A non-interactive shell starts its background jobs with SIGINT ignored, and `nohup`
    // ignores the SIGHUP of the terminal closing: only weft's TERM to the command's group
    // ends this one.
    test.write(
        "deploy/orphan.rhai",
        &format!(
            "/// Leaves a child in the background, then waits.
             fn orphan(host) {{ log(\"started\"); host.run(\"nohup sh -c 'sleep 600; :' {marker} >/dev/null 2>&1 & sleep 60\"); }}\n"
        ),
    );
    let mut terminal = test.start_in_terminal(&["run", "orphan"]);
    terminal.wait_until(Duration::from_secs(60), |s| {
        s.lines.iter().any(|l| l.ends_with("| started"))
    });
    let start = Instant::now();
    while !running(&marker) {
        assert!(start.elapsed() < Duration::from_secs(30), "no {marker}");
        std::thread::sleep(Duration::from_millis(50));
    }
    terminal.type_keys("\u{3}");
    let seen = terminal.finish();
    seen.status(130);
    let ended = Instant::now();
    while running(&marker) {
        if ended.elapsed() > Duration::from_secs(10) {
            // By pid: only the processes of this test's marker.
            let pids = std::process::Command::new("pgrep")
                .args(["-f", &marker])
                .output()
                .expect("pgrep");
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = std::process::Command::new("kill").arg(pid).status();
            }
            panic!("Ctrl-C left {marker} running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_summary_gives_the_controller_its_wall_time_once() {
    let test = project();
    let started = Instant::now();
    let out = test.run(&["run", "outer"]);
    let wall = started.elapsed();
    out.status(0);
    let row = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("controller "))
        .unwrap_or_else(|| panic!("no controller row:\n{}", out.stdout));
    let seconds: f64 = row
        .split_whitespace()
        .find_map(|w| w.strip_suffix('s').and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no time in {row:?}"));
    // `inner` ran inside `outer` on the same controller: 2 s, not 4.
    assert!(
        seconds >= 2.0 && seconds <= wall.as_secs_f64(),
        "controller {seconds}s in a run of {wall:?}:\n{}",
        out.stdout
    );
}

#[test]
fn without_a_terminal_a_long_step_prints_progress_lines_on_stderr() {
    let test = project();
    let out = test.run(&["run", "long_step"]);
    out.status(0);
    let lines: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("… ")).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("long_step · 0/1 hosts · 1 running")),
        "no progress line in a 7 s step:\n{}",
        out.stderr
    );
    // Progress is for people: stdout, which scripts read, has none of it.
    out.stdout_lacks("… ");
}

#[test]
fn the_bar_counts_hosts_of_each_phase_and_watch_shows_no_empty_bar() {
    let fleet = Fleet::start(2);
    let test = Test::with_config(&fleet.config());
    test.write(
        "deploy/fan.rhai",
        r#"
/// A step on a host.
fn mark(host) { host.run("sleep 0.5"); log("marked"); }

/// Phases over both hosts, then over one.
fn fan() {
    run_goal("mark", []);
    run_goal("mark", [], #{ hosts: ["host-0"] });
    run_goal("mark", []);
}
"#,
    );
    let key = fleet.key();
    let known = fleet.known_hosts();
    let auth = ["-e", "fleet", "-i", &key, "--known-hosts", &known];
    let mut args = vec!["run", "fan"];
    args.extend(auth);
    let seen = test.start_in_terminal(&args).finish();
    seen.status(0);
    readable(&seen.stdout);
    let counts = counters(&seen.stdout);
    assert!(counts.contains(&(2, 2)), "{counts:?}");
    assert!(counts.contains(&(1, 1)), "{counts:?}");
    let screen = Screen::of(&seen.stdout);
    assert!(
        screen
            .lines
            .iter()
            .any(|l| l.starts_with("summary: 3 ok, 0 changed, 0 failed")),
        "{}",
        screen.text()
    );

    // `weft watch` samples without a run of goals: no bar of zero hosts.
    let mut args = vec!["watch", "--once"];
    args.extend(auth);
    let seen = test.start_in_terminal(&args).finish();
    seen.status(0);
    readable(&seen.stdout);
    assert!(
        !seen.stdout.chars().any(|c| has_frame(&c.to_string())),
        "{}",
        seen.stdout
    );
}

#[test]
fn ctrl_c_at_the_question_is_a_no() {
    let test = project();
    let mut terminal = test.start_in_terminal(&["run", "ask"]);
    terminal.wait_until(Duration::from_secs(60), |s| s.last_line() == "go on? [y/N]");
    terminal.type_keys("\u{3}");
    let seen = terminal.finish();
    seen.status(2);
    readable(&seen.stdout);
    let screen = Screen::of(&seen.stdout);
    assert_eq!(
        screen.last_line(),
        "weft: not confirmed: nothing was done; pass --yes to confirm without a prompt",
        "{}",
        screen.text()
    );
    assert!(!screen.text().contains("dropped"), "{}", screen.text());
}
