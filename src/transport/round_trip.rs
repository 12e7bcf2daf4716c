//! The shortest network round trip a run has seen: a TCP connection made, or a channel opened
//! through a jump host, each one round trip. The runner's default fan-out grows with it
//! (`exec::runner`), since on a distant fleet each host spends its time waiting, not working.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The shortest round trip seen by the connections that share it (one invocation's runs).
#[derive(Debug)]
pub struct RoundTrip {
    /// Microseconds; `u64::MAX` until the first one is seen.
    shortest_micros: AtomicU64,
}

impl Default for RoundTrip {
    fn default() -> Self {
        RoundTrip {
            shortest_micros: AtomicU64::new(u64::MAX),
        }
    }
}

impl RoundTrip {
    /// Records one round trip that took `took`.
    pub fn note(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX - 1);
        self.shortest_micros.fetch_min(micros, Ordering::Relaxed);
    }

    /// The shortest round trip seen so far, if any.
    pub fn shortest(&self) -> Option<Duration> {
        match self.shortest_micros.load(Ordering::Relaxed) {
            u64::MAX => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }
}
