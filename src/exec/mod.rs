//! Running jobs: the run context and settings of an invocation, the fan-out over hosts,
//! sessions on hosts, live output and the report, and the env actions of controller goals.

pub mod dump;
pub mod goals;
pub mod hashes;
pub mod interrupt;
pub mod launch;
pub mod ops;
pub mod orchestrate;
pub mod orchestrator;
pub mod output;
pub mod remote_sums;
pub mod run;
pub mod runner;
pub mod session;
pub mod settings;
pub mod stage;
pub mod stat_lines;
pub mod step;
pub mod summary;
#[cfg(test)]
pub(crate) mod test_host;
#[cfg(test)]
mod tests;
pub mod timings;
pub mod timings_page;
pub mod watch;
