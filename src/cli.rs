//! The command line: clap types stay here; the rest of weft sees validated values.

use std::path::PathBuf;

use clap::builder::RangedU64ValueParser;
use clap::{Args, FromArgMatches, Parser, Subcommand, ValueEnum};

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
    /// Show more: `-v` also lists operations that found a host as wanted, prints each host's
    /// changes and output in a goal over more than 10 hosts, and logs what weft, SSH and the
    /// AWS SDK do on stderr; `-vv` logs more. `RUST_LOG` sets the log alone.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Show only failures and the summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether the command prints JSON (`--json`), so its errors must be JSON too.
    pub fn json(&self) -> bool {
        match &self.command {
            Command::List { json, .. } | Command::Hosts { json, .. } => *json,
            Command::Run(args) => args.fanout.json,
            Command::Exec(args) => args.fanout.json,
            Command::Watch(args) => args.json,
            Command::Copy(args) => args.fanout.json,
            Command::Cloud { command } => match command {
                CloudCommand::Create { fanout, .. } | CloudCommand::Recreate { fanout, .. } => {
                    fanout.json
                }
                CloudCommand::List { json, .. } => *json,
                _ => false,
            },
            Command::Keys {
                command: KeysCommand::Sync { fanout, .. },
            } => fanout.json,
            _ => false,
        }
    }
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

impl Cli {
    /// Parses `args` (the program name first); on `--help`, `--version` or a usage error it
    /// prints clap's text and returns the exit code instead.
    pub fn parse_args(
        args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
    ) -> Result<Self, i32> {
        let fail = |err: clap::Error| {
            let _ = err.print();
            if err.use_stderr() {
                crate::error::EXIT_USAGE
            } else {
                crate::error::EXIT_OK
            }
        };
        let matches = Self::command_full()
            .try_get_matches_from(args)
            .map_err(fail)?;
        Cli::from_arg_matches(&matches).map_err(fail)
    }

    /// The command line with what derive cannot say: `weft init --help` lists the skeletons of
    /// the embedded stdlib, one line each.
    pub fn command_full() -> clap::Command {
        let skeletons = crate::layers::skeleton_abouts();
        let width = skeletons.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let lines: Vec<String> = skeletons
            .iter()
            .map(|(name, about)| format!("  {name:<width$}  {about}"))
            .collect();
        let help = format!("Skeletons (--skeleton NAME):\n{}", lines.join("\n"));
        <Cli as clap::CommandFactory>::command()
            .mut_subcommand("init", |init| init.after_help(help))
    }

    /// Whether diagnostics (stderr) are coloured: `--color`, else a terminal without `NO_COLOR`.
    pub fn colored(&self) -> bool {
        self.colored_on(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    }

    /// Whether a run's report (stdout) is coloured, by the same rule.
    pub fn colored_output(&self) -> bool {
        self.colored_on(std::io::IsTerminal::is_terminal(&std::io::stdout()))
    }

    fn colored_on(&self, terminal: bool) -> bool {
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && terminal
            }
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the goals you can run, with their layer and help: the project's first, then
    /// plugins', the user's and the stdlib's.
    List {
        /// Only goals whose name contains this (`weft list deploy`).
        filter: Option<String>,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a goal on the hosts of an env.
    ///
    /// A goal that passes a script limit ends with an error at its line (exit 1): the
    /// operation budget (`max_operations`), 64 MiB strings, 1,000,000 items in an array or
    /// map, arrays and maps nested 256 deep, and 512 MiB for all the values it holds.
    Run(RunArgs),
    /// Run one shell command on the hosts of an env, or on `-H user@addr:port` hosts.
    Exec(ExecArgs),
    /// Open a shell on one host, or run one command there.
    Ssh(SshArgs),
    /// Sample every machine of an env at an interval (load, CPU, memory, disk, haproxy's
    /// backend servers on lbs), scale each role to what its `<role>_scale` goal wants (scale_*
    /// goals: new machines get the current build and join the lbs; removed ones are drained
    /// first), and run `alert(event)` when `[env.X] alert_cpu`, `alert_mem`, `alert_disk` is
    /// crossed or a machine stops answering; one watcher per env, Ctrl-C after the current action.
    Watch(WatchArgs),
    /// Copy files to the selected hosts, or (with --pull) from them.
    Copy(CopyArgs),
    /// Make, list, start, stop, image, adopt and remove an env's machines, which live in the
    /// project's own namespace (`/<project>/`); `list --all` shows every project's.
    Cloud {
        #[command(subcommand)]
        command: CloudCommand,
    },
    /// Manage the SSH keys that may log in to an env's machines.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Keep an env's secrets encrypted in the project, for `{ secret = "NAME" }` in weft.toml.
    ///
    /// `secrets/<ENV>.age` holds `NAME=value` lines encrypted with age to
    /// `[env.ENV] secrets_recipients`. Your identity: the file WEFT_AGE_IDENTITY names, else $XDG_CONFIG_HOME/weft/age.key, else
    /// ~/.config/weft/age.key; and ~/.ssh/id_ed25519 without passphrase. Recipients: `age1...`
    /// or `ssh-ed25519 ...` public keys.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
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
        /// The skeleton to start from; `plugin` writes a plugin folder (`weft init --skeleton
        /// plugin NAME`) with a plugin.toml and a NAME_selftest goal instead of a project.
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
    /// Vendor plugins (folders of goals, roles and templates) into `plugins/` and check them.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Work with templates.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Show the reference of the functions scripts can call, and the vars of the project's
    /// plugins.
    Doc {
        /// A topic (`files`, `packages`, `users`, `services`, ...), a function name, a
        /// plugin var or a plugin's name (its vars); all of them when absent. A name weft does
        /// not register may be a goal or helper of the project's scripts (`app_settings`) or a
        /// function of Rhai's standard library (`parse_json`).
        name: Option<String>,
        /// Print Rhai definitions for editors instead (see editors/).
        #[arg(long, conflicts_with = "name")]
        definitions: bool,
        /// Print the whole reference as Markdown (docs/reference.md).
        #[arg(long, conflicts_with_all = ["name", "definitions"])]
        markdown: bool,
        /// Print the JSON schema of every function's option map (`#{...}`), by function
        /// name, made from the same types the functions read them with.
        #[arg(long, conflicts_with_all = ["name", "definitions", "markdown"])]
        schema: bool,
    },
    /// Serve the language server protocol on stdin and stdout, for editors (see editors/).
    Lsp,
    /// Inspect weft.toml's format.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `weft config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the JSON schema of weft.toml, generated from weft's config types and the app
    /// service's settings (for editors: see editors/vscode).
    Schema,
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
    /// Only this host (repeatable): a host of the env, or an address `user@addr:port`.
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
}

/// How SSH connections are made.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// An identity (private key) file to offer (repeatable).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// A known_hosts file checked before ~/.ssh/known_hosts; new keys are recorded here.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// What to do with a host whose key is not known yet.
    #[arg(long, value_enum, default_value_t = HostKeyPolicyArg::Strict)]
    pub host_key_policy: HostKeyPolicyArg,
    /// An OpenSSH config file to read instead of ~/.ssh/config.
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Seconds each connection attempt (TCP, handshake and login) may take, and the start of the
    /// kept shell and of SFTP; a step with no answer then fails, named. At most a year (31536000).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    pub connect_timeout: u64,
    /// The login user for addresses that name none (default: $USER).
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,
}

/// What to do with unknown host keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostKeyPolicyArg {
    /// Refuse hosts whose key is not in known_hosts.
    Strict,
    /// Record the key of a new host and go on (trust on first use); changed keys are refused.
    AcceptNew,
}

/// The most hosts `-p` runs at once: far above any fleet, and well below what a semaphore holds.
pub const MAX_PARALLEL: u64 = 100_000;

/// The longest timeout a flag takes, a year: longer is "never", which `0` says for commands.
pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// How a fan-out runs: parallelism, batches, failures, output and privileges.
#[derive(Debug, Args, Clone)]
pub struct FanoutArgs {
    /// One JSON event per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// How many hosts run at once (1 to 100000). Default: 32, and more when hosts are far
    /// away: 32 per 10 ms of the shortest round trip seen, up to 96.
    #[arg(short, long, value_name = "N",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_PARALLEL))]
    pub parallel: Option<usize>,
    /// Run in batches of N hosts, each batch finishing before the next (rolling work).
    #[arg(long, value_name = "N", value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub serial: Option<usize>,
    /// Stop starting new hosts once more than N (or P%) have failed.
    #[arg(long, value_name = "N|P%")]
    pub max_fail: Option<String>,
    /// Run every command through sudo (as root, or --become-user).
    #[arg(long = "become")]
    pub become_root: bool,
    /// The user --become runs commands as.
    #[arg(long, value_name = "USER", default_value = "root")]
    pub become_user: String,
    /// Ask once for the sudo password (else it is read from $WEFT_SUDO_PASSWORD, if set).
    #[arg(long)]
    pub ask_sudo_pass: bool,
    /// End a command that runs longer than this (TERM to it and what it started), its channel's
    /// opening included; 0: never; at most a year (31536000).
    #[arg(long, value_name = "SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    pub command_timeout: u64,
    /// Fail a host whose whole job (connection, goal, handlers) takes longer than this, naming
    /// the step it was in; the other hosts go on. 0: no limit (the default); at most a year.
    #[arg(long, value_name = "SECS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    pub host_timeout: u64,
}

/// `weft exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub select: Select,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub fanout: FanoutArgs,
    /// The command, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `weft watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub select: Select,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Seconds between the starts of two samples.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// Sample once, act on that sample's decisions, and exit (for cron and scripts).
    #[arg(long)]
    pub once: bool,
    /// One JSON event per sample, alert, scaling decision and action step instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print what each role's `<role>_scale` policy decides, with its reason, and act on none
    /// (`--once` acts on its decision without it).
    #[arg(long)]
    pub dry_run: bool,
}

/// `weft ssh`.
#[derive(Debug, Args)]
pub struct SshArgs {
    #[command(flatten)]
    pub target: CloudTarget,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// A command to run instead of a shell, after `--`; it reads weft's input, and its output
    /// comes back unchanged.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `weft copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Push: a local file or folder. Pull: a file or folder of the hosts.
    pub source: String,
    /// Push: the remote path. Pull: a local folder; each host's copy goes in DEST/<host>/.
    pub dest: String,
    /// Copy from the hosts to this machine: regular files and folders only. Links are
    /// skipped and reported (see --follow-links); devices, FIFOs and sockets are skipped.
    #[arg(long)]
    pub pull: bool,
    /// With --pull: copy what links point to (files and folders, anywhere on the host the
    /// login user can read); a link back into a folder already copied is still skipped.
    #[arg(long, requires = "pull")]
    pub follow_links: bool,
    /// With --pull: stop a host's download past this size (`500M`, `10G`; K, M, G, T are
    /// powers of 1024); the file in progress is removed.
    #[arg(long, value_name = "SIZE", default_value = "10G", value_parser = parse_max_size)]
    pub max_size: u64,
    #[command(flatten)]
    pub select: Select,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub fanout: FanoutArgs,
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
    /// Report what would change; change nothing, on the hosts or here (no file sums, host
    /// keys, virtual IP reservations, machines, downloads or dumps are written).
    #[arg(long)]
    pub check: bool,
    /// Show a unified diff of every file, template and line change.
    #[arg(long)]
    pub diff: bool,
    /// Take deploy locks held by other runs (left by a deploy that was killed).
    #[arg(long)]
    pub break_lock: bool,
    /// Make new builds even when a build of the same code and build settings exists (`NAME_deploy`,
    /// `NAME_build`, `env_up`; seen by goals as `env().rebuild`).
    #[arg(long)]
    pub rebuild: bool,
    /// Scrub the data `restore` loads (`<app>_scrub`) even when the backup comes from this
    /// same env; a backup of another env or project is always scrubbed.
    #[arg(long)]
    pub scrub: bool,
    /// Do not ask before terminating machines (`env_down`); without a terminal, weft
    /// refuses unless this is given.
    #[arg(long)]
    pub yes: bool,
    /// After the summary, show where time went: per operation kind and per goal (count,
    /// total, p50, p95, slowest host), connection setup included.
    #[arg(long)]
    pub timings: bool,
    /// Write a self-contained HTML page of where time went: a row per host with its
    /// connection and operations as bars on a time axis, and the `--timings` table.
    #[arg(long, value_name = "FILE")]
    pub timings_html: Option<std::path::PathBuf>,
    /// Set a variable over every layer, e.g. `--set apps.hello.ref=v2` (repeatable; the
    /// value is read as TOML when it parses, else as a string).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_assignment)]
    pub set: Vec<(String, String)>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub fanout: FanoutArgs,
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

/// `weft plugin ...`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Copy a plugin into `plugins/NAME/`, list it in weft.toml and record it in weft.lock.
    Add {
        /// A plugin folder, or a git URL or repo path with an optional `@REF` (tag, branch,
        /// commit).
        #[arg(value_name = "PATH | GIT-URL[@REF]")]
        source: String,
        /// Replace a plugin already in `plugins/NAME/`.
        #[arg(long)]
        force: bool,
    },
    /// The plugins weft.toml lists, with their version and source.
    List,
    /// Fetch a plugin again from the source and ref weft.lock recorded. A tag that now names
    /// another commit than the recorded one is refused (exit 2), naming both commits.
    Update {
        /// The plugin's name.
        name: String,
        /// Take a recorded tag that moved to another commit upstream.
        #[arg(long)]
        allow_moved_tag: bool,
    },
    /// Delete `plugins/NAME/` and its entries in weft.toml and weft.lock.
    Remove {
        /// The plugin's name.
        name: String,
    },
    /// Report every vendored file that changed since weft.lock recorded it, and every plugin
    /// whose files are not the tree of the commit weft.lock records (exit 1 if any).
    Verify,
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

/// One host or machine: a name (`web-1`), a provider id, a role with `-o ORDINAL`, or (for
/// `weft ssh`) an address `user@addr:port`.
#[derive(Debug, Args)]
pub struct CloudTarget {
    /// A name, id, role (with -o), or address.
    pub target: String,
    /// Which machine of the role: 0 is the first, -1 the last.
    #[arg(short, long, value_name = "ORDINAL", allow_hyphen_values = true)]
    pub ordinal: Option<i64>,
    /// The env.
    #[arg(short, long, value_name = "ENV")]
    pub env: Option<String>,
}

/// `weft cloud ...`.
#[derive(Debug, Subcommand)]
pub enum CloudCommand {
    /// Create machines of a role, wait until SSH answers, then run `<role>_provision` on them.
    Create {
        /// The role.
        role: String,
        /// How many machines.
        #[arg(short = 'n', long, default_value_t = 1)]
        count: u32,
        /// The env.
        #[arg(short, long, value_name = "ENV")]
        env: Option<String>,
        /// Start from this image instead of the role's.
        #[arg(long, value_name = "IMAGE")]
        image: Option<String>,
        /// A public key file that may log in (repeatable).
        #[arg(short = 'k', long = "key", value_name = "PUBKEY")]
        keys: Vec<String>,
        /// Skip the role's provisioning goal.
        #[arg(long)]
        no_provision: bool,
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        fanout: FanoutArgs,
    },
    /// List the env's machines with their role, ordinal, state and address; with --all, every
    /// machine weft made on this host, of every project.
    List {
        /// The env.
        #[arg(short, long, value_name = "ENV")]
        env: Option<String>,
        /// Every project's machines: on `local` (the default, no project needed) those of this
        /// data folder; with `-e ENV` of an ec2 env, every machine weft tagged in its region;
        /// of an openstack env, every server weft made in its project.
        /// Shows project, namespace, env, machine, state, age and image.
        #[arg(long)]
        all: bool,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move the env's machines from another namespace into the project's (`--from /`: those
    /// made before each project had its own namespace); they keep running, with their names,
    /// addresses and disks.
    Adopt {
        /// The env.
        #[arg(short, long, value_name = "ENV")]
        env: Option<String>,
        /// The namespace they are in now.
        #[arg(long, value_name = "NAMESPACE")]
        from: String,
    },
    /// Start a stopped machine.
    Start {
        #[command(flatten)]
        target: CloudTarget,
    },
    /// Stop a machine, keeping its disk.
    Stop {
        #[command(flatten)]
        target: CloudTarget,
    },
    /// Delete a machine and its disk.
    Terminate {
        #[command(flatten)]
        target: CloudTarget,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Save a machine's disk as an image.
    Image {
        #[command(flatten)]
        target: CloudTarget,
        /// The image's name.
        name: String,
    },
    /// Create machines of a role from an image.
    Recreate {
        /// The role.
        role: String,
        /// The image.
        #[arg(long, value_name = "IMAGE")]
        image: String,
        /// How many machines.
        #[arg(short = 'n', long, default_value_t = 1)]
        count: u32,
        /// The env.
        #[arg(short, long, value_name = "ENV")]
        env: Option<String>,
        /// Skip the role's provisioning goal.
        #[arg(long)]
        no_provision: bool,
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        fanout: FanoutArgs,
    },
    /// Import a public key (a file or the key itself) for machines created later.
    RegisterKey {
        /// The public key.
        key: String,
        /// Its name (default: the key's comment).
        #[arg(long)]
        name: Option<String>,
        /// The env.
        #[arg(short, long, value_name = "ENV")]
        env: Option<String>,
    },
    /// List the `local` provider's images on this host (size, age), or remove one.
    Images {
        /// Remove this image.
        #[arg(long, value_name = "IMAGE")]
        remove: Option<String>,
    },
    /// Delete everything the env owns: machines, keys, security groups, floating IPs; or, with
    /// --namespace, every local machine of a namespace (a deleted project's leftovers).
    Destroy {
        /// The env.
        #[arg(short, long, value_name = "ENV", conflicts_with = "namespace")]
        env: Option<String>,
        /// Every `local` machine of this namespace, of every env, with its keys; no project
        /// needed (`weft cloud list --all` shows the namespaces).
        #[arg(long, value_name = "NAMESPACE")]
        namespace: Option<String>,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

/// `weft keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make the login user's authorized_keys on every machine of the env hold exactly the
    /// env's `keys` (plus weft's own key), adding and removing, and report what changed.
    Sync {
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        fanout: FanoutArgs,
        /// Report what would change; change nothing.
        #[arg(long)]
        check: bool,
    },
}

/// `weft secrets ...`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Make your age identity (never over an existing one) and print its public key, to list
    /// in `secrets_recipients`.
    Keygen,
    /// Set secret NAME to the value read from standard input (asked without echo on a terminal),
    /// re-encrypting the file to the env's current recipients.
    Set {
        /// Letters, digits and `_`.
        name: String,
        /// The env (default: the user's or project's `default_env`, else `local`).
        #[arg(short, long, value_name = "ENV")]
        env: Option<String>,
    },
    /// Print the value of secret NAME.
    Get {
        /// The secret's name.
        name: String,
        /// The env (default: the user's or project's `default_env`, else `local`).
        #[arg(short, long, value_name = "ENV")]
        env: Option<String>,
    },
    /// List the names of the env's secrets, not their values.
    Ls {
        /// The env (default: the user's or project's `default_env`, else `local`).
        #[arg(short, long, value_name = "ENV")]
        env: Option<String>,
    },
    /// Edit the plaintext in $VISUAL or $EDITOR (default vi; a 0600 file in a private folder on /dev/shm or
    /// $XDG_RUNTIME_DIR, removed afterwards, also on Ctrl-C), then re-encrypt it.
    Edit {
        /// The env (default: the user's or project's `default_env`, else `local`).
        #[arg(short, long, value_name = "ENV")]
        env: Option<String>,
    },
    /// Re-encrypt the file to the env's current `secrets_recipients` (after adding or removing
    /// someone).
    Rekey {
        /// The env (default: the user's or project's `default_env`, else `local`).
        #[arg(short, long, value_name = "ENV")]
        env: Option<String>,
    },
}

/// Splits `KEY=VALUE` of `--set`; the key is a dotted path of names.
fn parse_assignment(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(format!(
            "`{key}` is not a variable name (names joined by dots)"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// `--max-size`: a size as `500M` or `10G`.
fn parse_max_size(text: &str) -> Result<u64, String> {
    crate::transport::download::parse_size(text)
}
