//! Running a goal: sessions on hosts, live output, the report.

pub mod interrupt;
pub mod ops;
pub mod orchestrator;
pub mod output;
pub mod runner;
pub mod session;
