//! `weft watch`: flags to watch settings, the env's lock, and what the watcher sees and does
//! printed: samples as a table on a terminal, a plain line per machine otherwise; alerts,
//! decisions and actions as one line each; or one JSON event for each of them.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use miette::Result;

use super::settings::{self, GoalFlags};
use super::Context;
use crate::cli::{FanoutArgs, WatchArgs};
use crate::exec::goals::GoalEngine;
use crate::exec::interrupt::EXIT_INTERRUPTED;
use crate::exec::watch::act::ActionEvent;
use crate::exec::watch::alert::Alert;
use crate::exec::watch::lock::WatchLock;
use crate::exec::watch::policy::Decision;
use crate::exec::watch::sample::MachineSample;
use crate::exec::watch::{self, Event, WatchSettings};
use crate::inventory::Selection;
use crate::script::engine;

/// Watches the env until Ctrl-C (or once); exit 1 when a machine gave no sample under `--once`.
pub fn watch(ctx: &Context, args: WatchArgs) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    let filter = settings::filter(&args.select);
    let selection = Selection::resolve(&project, &filter)?;
    let fanout = FanoutArgs {
        json: args.json,
        parallel: Some(32),
        serial: None,
        max_fail: None,
        become_root: false,
        become_user: "root".into(),
        ask_sudo_pass: false,
        command_timeout: 3600,
        host_timeout: 0,
    };
    let run_settings =
        settings::run_settings(ctx, &project, &args.connect, &fanout, GoalFlags::default())?;
    let _lock = WatchLock::take(&project.root, &selection.inventory.env)?;
    let engine: Arc<dyn GoalEngine> = Arc::new(engine::load(&layers, &project)?);
    let context = settings::run_context(project, layers, Some(engine), run_settings);
    let watch_settings = WatchSettings {
        interval: Duration::from_secs(args.interval),
        once: args.once,
        policy: true,
        act: !args.dry_run,
    };
    let table = !args.json && std::io::stdout().is_terminal();
    let mut failed = false;
    let dry_run = args.dry_run;
    watch::watch(
        &context,
        &filter,
        selection,
        &watch_settings,
        |event| match event {
            Event::Sample(samples) => {
                failed = samples.iter().any(|s| s.error.is_some());
                if args.json {
                    let event = serde_json::json!({ "event": "sample", "machines": samples });
                    outln!("{event}");
                } else if table {
                    print_table(samples);
                } else {
                    for sample in samples {
                        outln!("{}", plain_line(sample));
                    }
                }
            }
            Event::Alert(alert, goal) => print_alert(alert, args.json, goal),
            Event::Decision(decision) => print_decision(decision, args.json, dry_run),
            Event::Action(action) => print_action(action, args.json),
        },
    )?;
    Ok(if context.interrupt.stop_requested() {
        EXIT_INTERRUPTED
    } else if failed && args.once {
        crate::error::EXIT_FAILED
    } else {
        crate::error::EXIT_OK
    })
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1}%"))
}

fn load(sample: &MachineSample) -> String {
    sample.load.map_or_else(
        || "-".into(),
        |l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]),
    )
}

/// The lb's view of its backend servers, `server=STATUS rate/s q=N 5xx=N` each.
fn servers(sample: &MachineSample) -> String {
    sample
        .servers
        .iter()
        .map(|s| {
            format!(
                "{}/{}={} {}/s q={} 5xx={}",
                s.backend, s.server, s.status, s.rate, s.queue, s.errors_5xx
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `host roles load=.. cpu=.. mem=.. disk=.. [servers]`, or the machine's error.
fn plain_line(sample: &MachineSample) -> String {
    let head = format!("{} [{}]", sample.host, sample.roles.join(","));
    if let Some(error) = &sample.error {
        return format!("{head} error={error}");
    }
    let mut line = format!(
        "{head} load={} cpu={} mem={} disk={}",
        load(sample).replace(' ', "/"),
        percent(sample.cpu),
        percent(sample.mem),
        percent(sample.disk)
    );
    if !sample.servers.is_empty() {
        line.push_str(&format!(" servers: {}", servers(sample)));
    }
    line
}

fn print_table(samples: &[MachineSample]) {
    let width = samples
        .iter()
        .map(|s| s.host.len())
        .max()
        .unwrap_or(4)
        .max(4);
    outln!();
    outln!(
        "{:width$}  {:10}  {:14}  {:>6}  {:>6}  {:>6}  lb servers",
        "host",
        "roles",
        "load 1/5/15",
        "cpu",
        "mem",
        "disk"
    );
    for sample in samples {
        let roles = sample.roles.join(",");
        if let Some(error) = &sample.error {
            outln!("{:width$}  {roles:10}  no answer: {error}", sample.host);
            continue;
        }
        outln!(
            "{:width$}  {roles:10}  {:14}  {:>6}  {:>6}  {:>6}  {}",
            sample.host,
            load(sample),
            percent(sample.cpu),
            percent(sample.mem),
            percent(sample.disk),
            servers(sample)
        );
    }
}

/// A decision, or a policy that failed; under `--dry-run` the line says so, else the actions
/// that follow tell what came of it.
fn print_decision(decision: &Result<Decision, String>, json: bool, dry_run: bool) {
    match (decision, json) {
        (Ok(d), true) => {
            let event = serde_json::json!({
                "event": "decision", "role": d.role, "from": d.from, "to": d.to,
                "reason": d.reason, "dry_run": dry_run, "acted": !dry_run,
            });
            outln!("{event}");
        }
        (Err(error), true) => {
            outln!(
                "{}",
                serde_json::json!({ "event": "policy_error", "message": error })
            );
        }
        (Ok(d), false) => {
            let reason = if d.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", d.reason)
            };
            let note = if dry_run { " (dry run)" } else { "" };
            outln!("scale {} from {} to {}{reason}{note}", d.role, d.from, d.to);
        }
        (Err(error), false) => eprintln!("policy failed: {error}"),
    }
}

/// `scale_up app: started: adding a machine of role app (cpu 93% > 80%)`, or its JSON event.
fn print_action(action: &ActionEvent, json: bool) {
    if json {
        let mut event = serde_json::json!({ "event": "action" });
        if let (Some(map), Ok(serde_json::Value::Object(fields))) =
            (event.as_object_mut(), serde_json::to_value(action))
        {
            map.extend(fields);
        }
        outln!("{event}");
        return;
    }
    let reason = if action.state == "started" && !action.reason.is_empty() {
        format!(" ({})", action.reason)
    } else {
        String::new()
    };
    let retry = action
        .retry_in
        .map(|s| format!("; next try in {s} s"))
        .unwrap_or_default();
    outln!(
        "{} {}: {}: {}{reason}{retry}",
        action.action,
        action.role,
        action.state,
        action.message
    );
}

/// `alert firing: app-0: disk 91.0% > 90.0% (alert_disk)`, or its JSON event; without
/// `--json`, only when no `alert` goal runs for it (the stdlib's prints that line itself).
fn print_alert(alert: &Alert, json: bool, goal: bool) {
    if json {
        let mut event = serde_json::json!({ "event": "alert" });
        if let (Some(map), Ok(serde_json::Value::Object(fields))) =
            (event.as_object_mut(), serde_json::to_value(alert))
        {
            map.extend(fields);
        }
        outln!("{event}");
    } else if !goal {
        outln!("alert {}: {}", alert.state, alert.message);
    }
}
