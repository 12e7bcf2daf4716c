//! weft: provision machines, run commands on them, render templates and deploy, driven by Rhai.
//!
//! `run` is the whole program; `main` only hands it the arguments. See `src/README.md` for the
//! map of modules.

// Diagnostics carry their source snippet and span so they can point at the user's file; they
// are built once on a cold path, so their size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod acme;
#[cfg(any(feature = "ec2", feature = "aws-secrets"))]
pub mod aws;
pub mod calendar;
pub mod cli;
pub mod cloud;
mod cmd;
pub mod config;
pub mod error;
pub mod exec;
pub mod goal_stack;
pub mod heap;
pub mod index;
pub mod inventory;
pub mod layers;
pub mod lockfile;
pub mod logging;
pub mod lsp;
#[cfg(test)]
mod map;
pub mod mask;
pub mod plugin;
pub mod project;
pub mod script;
pub mod shell;
pub mod source;
pub mod suggest;
pub mod template;
pub mod transport;
pub mod vault;

use std::ffi::OsString;

/// The system allocator with a count of the bytes held, for the memory budget of goals.
#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

use cli::Cli;

/// Runs weft with `args` (the program name first) and returns the exit code.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> i32 {
    let cli = match Cli::parse_args(args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let color = cli.colored();
    error::install_hook(color);
    logging::init(cli.verbose);
    let json = cli.json();
    match start(cli) {
        Ok(code) => code,
        // With --json, stdout carries JSON only: the fatal error is one `error` event there
        // too, and people watching still read it rendered on stderr.
        Err(report) if json => {
            println!("{}", error::json_event(&report));
            eprintln!("{report:?}");
            error::EXIT_USAGE
        }
        Err(report) => {
            eprintln!("{report:?}");
            error::EXIT_USAGE
        }
    }
}

fn start(cli: Cli) -> miette::Result<i32> {
    let cwd = std::env::current_dir()
        .map_err(|err| miette::miette!("cannot read the working directory: {err}"))?;
    let cwd = match &cli.directory {
        Some(dir) if !cwd.join(dir).is_dir() => {
            miette::bail!("-C {}: no such directory", dir.display())
        }
        Some(dir) => cwd.join(dir),
        None => cwd,
    };
    let ctx = cmd::Context {
        cwd,
        color_output: cli.colored_output(),
        verbose: cli.verbose,
        quiet: cli.quiet,
    };
    cmd::dispatch(cli, &ctx)
}
