//! weft: provision machines, run commands on them, render templates and deploy, driven by Rhai.
//!
//! `run` is the whole program; `main` only hands it the arguments. See `src/README.md` for the
//! map of modules.

// Diagnostics carry their source snippet and span so they can point at the user's file; they
// are built once on a cold path, so their size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod cloud;
mod cmd;
pub mod config;
pub mod error;
pub mod exec;
pub mod inventory;
pub mod layers;
pub mod lsp;
pub mod project;
pub mod script;
pub mod shell;
pub mod source;
pub mod suggest;
pub mod template;
pub mod transport;

use std::ffi::OsString;

use cli::Cli;

/// Runs weft with `args` (the program name first) and returns the exit code.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> i32 {
    let cli = match Cli::parse_args(args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let color = cli.colored();
    error::install_hook(color);
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(err) => {
            eprintln!("weft: cannot read the working directory: {err}");
            return error::EXIT_USAGE;
        }
    };
    let cwd = match &cli.directory {
        Some(dir) if !cwd.join(dir).is_dir() => {
            eprintln!("weft: -C {}: no such directory", dir.display());
            return error::EXIT_USAGE;
        }
        Some(dir) => cwd.join(dir),
        None => cwd,
    };
    let ctx = cmd::Context {
        cwd,
        color,
        verbose: cli.verbose,
        quiet: cli.quiet,
    };
    match cmd::dispatch(cli, &ctx) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            error::EXIT_USAGE
        }
    }
}
