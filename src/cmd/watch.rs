//! `weft watch`: flags to watch settings, the env's lock, and the samples printed as a table
//! on a terminal, a plain line per machine otherwise, or one JSON event per sample.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use miette::Result;

use super::settings::{self, GoalFlags};
use super::Context;
use crate::cli::{FanoutArgs, WatchArgs};
use crate::exec::goals::GoalEngine;
use crate::exec::interrupt::{self, EXIT_INTERRUPTED};
use crate::exec::watch::lock::WatchLock;
use crate::exec::watch::policy::Decision;
use crate::exec::watch::sample::MachineSample;
use crate::exec::watch::{self, WatchSettings};
use crate::inventory::Selection;
use crate::script::engine;

/// Watches the env until Ctrl-C (or once); exit 1 when a machine gave no sample under `--once`.
pub fn watch(ctx: &Context, args: WatchArgs) -> Result<i32> {
    let (project, layers) = ctx.project()?;
    let selection = Selection::resolve(&project, &settings::filter(&args.select))?;
    let fanout = FanoutArgs {
        json: args.json,
        parallel: 32,
        serial: None,
        max_fail: None,
        become_root: false,
        become_user: "root".into(),
        ask_sudo_pass: false,
        command_timeout: 60,
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
    };
    let table = !args.json && std::io::stdout().is_terminal();
    let mut failed = false;
    let dry_run = args.dry_run;
    watch::watch(
        &context,
        &selection,
        &watch_settings,
        |samples, decisions| {
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
            for decision in decisions {
                print_decision(decision, args.json, dry_run);
            }
        },
    )?;
    Ok(if interrupt::interrupted() {
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

/// A decision, or a policy that failed; weft does not create or remove machines yet, so
/// outside `--dry-run` the line says it was not acted on.
fn print_decision(decision: &Result<Decision, String>, json: bool, dry_run: bool) {
    match (decision, json) {
        (Ok(d), true) => {
            let event = serde_json::json!({
                "event": "decision", "role": d.role, "from": d.from, "to": d.to,
                "reason": d.reason, "dry_run": dry_run, "acted": false,
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
            let note = if dry_run {
                " (dry run)"
            } else {
                " (not acted on: weft watch does not create or remove machines yet)"
            };
            outln!("scale {} from {} to {}{reason}{note}", d.role, d.from, d.to);
        }
        (Err(error), false) => eprintln!("policy failed: {error}"),
    }
}
