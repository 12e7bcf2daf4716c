//! The command line: clap types stay here; the rest of weft sees validated values.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Provision machines, run commands on them, render templates and deploy — driven by Rhai.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, max_term_width = 100)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', id = "directory", value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,
    /// When to colour output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When writing to a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the goals you can run, with their layer and help.
    List {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a goal on the hosts of an env.
    Run(RunArgs),
    /// Show the resolved inventory of an env.
    Hosts {
        #[command(flatten)]
        select: Select,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a project skeleton with a working `local` env and goals.
    Init {
        /// The folder to create (default: the current one).
        dir: Option<PathBuf>,
        /// The skeleton to start from.
        #[arg(long, default_value = "default")]
        skeleton: String,
        /// The project's name (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Inspect the stdlib and copy its files into the project.
    Stdlib {
        #[command(subcommand)]
        command: StdlibCommand,
    },
    /// Work with templates.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Show the reference of the functions scripts can call.
    Doc {
        /// A function name; all of them when absent.
        name: Option<String>,
        /// Print Rhai definitions for editors instead (see editors/).
        #[arg(long, conflicts_with = "name")]
        definitions: bool,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Which hosts of which env.
#[derive(Debug, Args)]
pub struct Select {
    /// The env (default: the user's or project's `default_env`, else `local`).
    #[arg(short, long, value_name = "ENV")]
    pub env: Option<String>,
    /// Only hosts in this role (repeatable).
    #[arg(short, long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// Only this host (repeatable).
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
}

/// `weft run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The goal, e.g. `hello_deploy`.
    pub goal: String,
    /// The goal's arguments (after `--` when one starts with `-`).
    pub args: Vec<String>,
    #[command(flatten)]
    pub select: Select,
    /// Report what would change; change nothing.
    #[arg(long)]
    pub check: bool,
    /// One JSON event per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// How many hosts run at once.
    #[arg(short, long, value_name = "N", default_value_t = 16)]
    pub parallel: usize,
}

/// `weft stdlib ...`.
#[derive(Debug, Subcommand)]
pub enum StdlibCommand {
    /// Every stdlib script and template, and the layer that wins it.
    List,
    /// Print the winning file at PATH (e.g. `services/system.rhai`).
    Show {
        /// The logical path.
        path: String,
    },
    /// Copy the stdlib file at PATH into the project, to edit it there.
    Eject {
        /// The logical path.
        path: String,
        /// Replace a project file already there.
        #[arg(long)]
        force: bool,
    },
}

/// `weft template ...`.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Render a template to standard output with an env's (or a host's) variables.
    Render {
        /// The template's path under `templates/`, e.g. `hello/index.html.hbs`.
        name: String,
        /// The env whose variables are used.
        #[arg(short, long, value_name = "ENV")]
        env: Option<String>,
        /// Use this host's variables.
        #[arg(short = 'H', long = "host", value_name = "HOST")]
        host: Option<String>,
        /// Set a variable (repeatable): `--var version=v2`.
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// List the templates and the layer each comes from.
    List,
}
