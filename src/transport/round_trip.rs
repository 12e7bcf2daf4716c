//! The shortest network round trip this process has seen: a TCP connection made, or a channel
//! opened through a jump host, each one round trip. The runner's default fan-out grows with it
//! (`exec::runner`), since on a distant fleet each host spends its time waiting, not working.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Microseconds; `u64::MAX` until the first one is seen.
static SHORTEST_MICROS: AtomicU64 = AtomicU64::new(u64::MAX);

/// Records one round trip that took `took`.
pub fn note(took: Duration) {
    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX - 1);
    SHORTEST_MICROS.fetch_min(micros, Ordering::Relaxed);
}

/// The shortest round trip seen so far, if any.
pub fn shortest() -> Option<Duration> {
    match SHORTEST_MICROS.load(Ordering::Relaxed) {
        u64::MAX => None,
        micros => Some(Duration::from_micros(micros)),
    }
}
