//! Integration tests: they drive the built `weft` binary against temporary projects.

mod app;
mod check;
mod ci;
mod fleet;
mod harness;

mod cloud;
mod cloud_parallel;
mod data;
mod deadlines;
mod diagnostics;
mod docs;
mod downloads;
mod editors;
mod ha;
mod init;
mod isolation;
mod layers;
mod limits;
mod lsp;
mod namespaces;
mod ops;
mod plugins;
mod project;
mod readme;
mod run_local;
mod spark;
mod ssh;
mod terminal;
mod watch;
mod webstack;
