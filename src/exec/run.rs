//! One run's shared state (issue 32): what every host's session of a run reads alike, built
//! once when the run starts (`exec::launch`) and shared by `Arc`; a `HostSession` keeps only
//! what belongs to its host.

use std::path::PathBuf;
use std::sync::Arc;

use super::hashes::LocalHashes;
use super::interrupt::Interrupt;
use super::output::Output;
use super::remote_sums::RemoteSums;
use super::settings::RunSettings;
use super::timings::Timings;
use crate::template::Templates;
use crate::transport::round_trip::RoundTrip;

/// The settings and shared handles of one run, the same for every host.
pub struct Run {
    /// How the run behaves: `--check`, `--diff`, privileges, timeouts, fan-out.
    pub settings: Arc<RunSettings>,
    /// Where events go.
    pub output: Arc<Output>,
    /// Templates for `template` and `render`.
    pub templates: Arc<Templates>,
    /// The project folder: local paths (uploads) are taken from here.
    pub root: PathBuf,
    /// Where time went, under `--timings`.
    pub timings: Option<Arc<Timings>>,
    /// Sums of the local files uploaded so far, each file read once per run.
    pub hashes: LocalHashes,
    /// Sums of the files weft wrote on hosts, kept between runs.
    pub sums: RemoteSums,
    /// The shortest round trip the run's connections have seen, for the fan-out.
    pub round_trip: Arc<RoundTrip>,
    /// Ctrl-C and SIGTERM: whether and when the run was interrupted.
    pub interrupt: Arc<Interrupt>,
}

impl Run {
    /// What the run knows of the files on its hosts: the sums kept in the user's cache
    /// folder, read but never written under `--check`.
    pub fn cached_sums(check: bool) -> RemoteSums {
        if check {
            RemoteSums::read_only()
        } else {
            RemoteSums::default()
        }
    }
}
