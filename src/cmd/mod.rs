//! One thin module per subcommand: flags to settings, confirmation prompts, printing; each
//! gets the loaded context and returns an exit code. `settings.rs` maps the shared flags.

/// `print!` to standard output, where a closed pipe (`weft doc | head`) ends weft quietly, as
/// it ends any Unix filter, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cmd::write_out(format_args!($($arg)*))
    };
}

/// `println!` to standard output, with `out!`'s closed-pipe rule.
macro_rules! outln {
    () => {
        $crate::cmd::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cmd::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod cloud;
mod config;
mod copy;
mod doc;
mod exec;
mod hosts;
mod init;
mod keys;
mod list;
mod lsp;
mod plugin;
mod run;
mod secrets;
mod settings;
mod ssh;
mod stdlib;
mod template;
mod watch;

use std::path::PathBuf;

use miette::Result;

use crate::cli::{Cli, Command};
use crate::layers::Layers;
use crate::plugin::Plugin;
use crate::project::Project;

/// What every command may need: the project, its layers and the output style.
#[derive(Debug, Clone)]
pub struct Context {
    /// The working directory (after `-C`).
    pub cwd: PathBuf,
    /// Whether a run's report on stdout is coloured (`--color always` also into a pipe).
    pub color_output: bool,
    /// `-v` given this many times.
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
}

impl Context {
    /// Finds the project and its layers.
    pub fn project(&self) -> Result<(Project, Layers)> {
        let (project, _, layers) = self.project_with_plugins()?;
        Ok((project, layers))
    }

    /// Finds the project, its plugins and its layers.
    pub fn project_with_plugins(&self) -> Result<(Project, Vec<Plugin>, Layers)> {
        let mut project = Project::discover(&self.cwd)?;
        let plugins = crate::plugin::load(&mut project)?;
        let layers =
            Layers::new(&project).with_plugins(plugins.iter().map(|p| (p.layer, p.root.clone())));
        Ok((project, plugins, layers))
    }
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli, ctx: &Context) -> Result<i32> {
    match cli.command {
        Command::List { filter, json } => list::list(ctx, filter.as_deref(), json),
        Command::Run(args) => run::run(ctx, args),
        Command::Exec(args) => exec::exec(ctx, args),
        Command::Ssh(args) => ssh::ssh(ctx, args),
        Command::Watch(args) => watch::watch(ctx, args),
        Command::Copy(args) => copy::copy(ctx, args),
        Command::Cloud { command } => cloud::cloud(ctx, command),
        Command::Keys { command } => keys::keys(ctx, command),
        Command::Secrets { command } => secrets::secrets(ctx, command),
        Command::Hosts { select, json } => hosts::hosts(ctx, &select, json),
        Command::Init {
            dir,
            skeleton,
            name,
        } => init::init(ctx, dir, &skeleton, name),
        Command::Stdlib { command } => stdlib::stdlib(ctx, command),
        Command::Plugin { command } => plugin::plugin(ctx, command),
        Command::Template { command } => template::template(ctx, command),
        Command::Doc {
            name,
            definitions,
            markdown,
            schema,
        } => doc::doc(ctx, name.as_deref(), definitions, markdown, schema),
        Command::Lsp => lsp::lsp(ctx),
        Command::Config { command } => config::config(ctx, command),
        Command::Completions { shell } => {
            let mut command = Cli::command_full();
            // clap_complete panics when its writer fails; written through `write_out`, a closed
            // pipe (`weft completions bash | head`) ends weft quietly instead.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "weft", &mut script);
            write_out(format_args!("{}", String::from_utf8_lossy(&script)));
            Ok(crate::error::EXIT_OK)
        }
    }
}

/// Writes `text` to standard output; a reader that went away ends the process with exit 0.
pub fn write_out(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_fmt(text).and_then(|()| out.flush()) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}
