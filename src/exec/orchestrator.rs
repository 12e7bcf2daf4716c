//! What controller goals (goals without a host) may ask of weft itself: the env's machines,
//! and running other goals. Implemented by the command layer, plain Rust for the script API.

use thiserror::Error;

/// Why an env action of a controller goal failed.
#[derive(Debug, Error)]
pub enum OrchestrateError {
    /// The action failed (the provider, the inventory, a nested run): its diagnostic.
    #[error("{0}")]
    Failed(miette::Report),
    /// The thread of the action panicked.
    #[error("internal error: an env action panicked")]
    Panicked,
    /// The person running weft did not confirm.
    #[error("not confirmed{why}: nothing was {undone}; pass --yes to confirm without a prompt")]
    NotConfirmed {
        /// Empty, or why nobody could be asked.
        why: &'static str,
        /// What was not done: `done`, or `terminated (NAMES)`.
        undone: String,
    },
    /// A `vip` that is not an IPv4 address.
    #[error("vip `{0}` is not an IPv4 address (such as 10.77.0.200)")]
    BadVip(String),
}

/// A machine as controller goals see it.
#[derive(Debug, Clone)]
pub struct MachineInfo {
    /// `<role>-<ordinal>`.
    pub name: String,
    /// Its role.
    pub role: String,
    /// Its ordinal.
    pub ordinal: u32,
    /// `running`, `stopped`, ...
    pub state: String,
    /// Its SSH address, when it has one.
    pub address: String,
    /// The provider's id.
    pub id: String,
}

/// How many machines of a role the env's spec asks for.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    /// The role.
    pub role: String,
    /// `count`.
    pub count: u32,
    /// `min`, else `count`.
    pub min: u32,
}

/// An env's virtual IP, as `virtual_ip()` returns it.
#[derive(Debug, Clone)]
pub struct VipInfo {
    /// The address.
    pub address: String,
    /// The VRRP virtual router id.
    pub router_id: u8,
}

/// The env-level actions a controller goal can take.
pub trait Orchestrator: Send + Sync {
    /// The env's machines.
    fn machines(&self) -> Result<Vec<MachineInfo>, OrchestrateError>;
    /// Makes and provisions `count` machines of `role`.
    fn create(&self, role: &str, count: u32) -> Result<Vec<MachineInfo>, OrchestrateError>;
    /// Terminates the machines `names`, once the run's confirmation allows it.
    fn terminate(&self, names: &[String]) -> Result<(), OrchestrateError>;
    /// The env's machine spec, by role.
    fn spec(&self) -> Vec<RoleSpec>;
    /// Whether a goal of that name exists.
    fn goal_exists(&self, goal: &str) -> bool;
    /// Runs `goal` with `args` on the env's current hosts, or only on those of `roles` and
    /// `hosts` when either is given; whether it succeeded everywhere.
    fn run_goal(
        &self,
        goal: &str,
        args: Vec<String>,
        roles: Vec<String>,
        hosts: Vec<String>,
    ) -> Result<bool, OrchestrateError>;
    /// The env's hosts that answer over SSH.
    fn reachable(&self) -> Result<Vec<String>, OrchestrateError>;
    /// Asks the person running weft `question` about `items` (once per invocation; `--yes`
    /// answers it); an error saying nothing was done when the answer is not yes.
    fn confirm(&self, question: &str, items: &[String]) -> Result<(), OrchestrateError>;
    /// The env's virtual IP: `wanted` (an IPv4 address) or, when it is empty, one the
    /// provider reserves; the same on every call.
    fn virtual_ip(&self, wanted: &str) -> Result<VipInfo, OrchestrateError>;
}
