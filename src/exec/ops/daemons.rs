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
