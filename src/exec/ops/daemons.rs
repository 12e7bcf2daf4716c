//! Daemons driven by their own commands, for hosts without an init system (containers whose
//! first process is not systemd). The commands come from the script that runs the daemon
//! (`commands` of `service`, `service_running` and `notify`): each service script of the
//! stdlib declares its daemon's, as a user's own service script can.

/// The shell commands that drive one daemon without an init system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonCommands {
    /// Starts it in the background.
    pub start: String,
    /// Stops it, returning once it is gone.
    pub stop: String,
    /// Makes it read its config again.
    pub reload: String,
    /// Exits 0 when it runs.
    pub status: String,
}

/// The daemons `stdlib/lib/daemons.rhai` gives commands for: the service's name and the
/// constant that holds them, for the hint when a service without an init system has none.
pub const KNOWN: &[(&str, &str)] = &[
    ("nginx", "NGINX"),
    ("haproxy", "HAPROXY"),
    ("supervisor", "SUPERVISOR"),
    ("keepalived", "KEEPALIVED"),
    ("postgresql", "POSTGRESQL"),
    ("redis-server", "REDIS"),
];

/// How a script gives `name`'s commands: the constant of `lib/daemons` when the stdlib knows
/// the daemon, else the four commands to write.
pub fn hint(name: &str) -> String {
    match KNOWN.iter().find(|(service, _)| *service == name) {
        Some((_, constant)) => format!(
            "`import \"lib/daemons\" as daemons;` then pass `commands: daemons::{constant}`"
        ),
        None => {
            let known: Vec<String> = KNOWN.iter().map(|(_, c)| format!("`{c}`")).collect();
            format!(
                "pass `commands: #{{ start, stop, reload, status }}` (`lib/daemons` has them \
                 for {}: `import \"lib/daemons\" as daemons; ... commands: daemons::NGINX`)",
                known.join(", ")
            )
        }
    }
}
