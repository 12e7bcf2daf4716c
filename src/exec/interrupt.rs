//! Ctrl-C and SIGTERM during a run: the first one stops new commands on every host, ends the
//! ones in flight (they get TERM, as at their timeout) and stops waiting on every other network
//! step, then lets goals clean up (deploy locks, a half-made switch), each cleanup step for at
//! most `CLEANUP_GRACE` and all of them within `CLEANUP_CAP`; a second one quits at once. A long-running command (`weft watch`) may ask that the first one
//! only request a stop, so the action in progress runs to its end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::transport::Cancel;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();
/// The first signal only requests a stop (see `defer_first`).
static DEFER: AtomicBool = AtomicBool::new(false);
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

/// The exit code of a run that was interrupted, as shells report a SIGINT.
pub const EXIT_INTERRUPTED: i32 = 130;

/// How long a cleanup step (`always`) may still take after an interrupt (or after its start,
/// when later): a lock released or a link switched back over a working connection takes
/// milliseconds, a host that stalls must not hold the run.
pub const CLEANUP_GRACE: Duration = Duration::from_secs(2);

/// How long after an interrupt every cleanup step has ended, however many a goal runs; a run
/// with nothing to clean up ends at once.
pub const CLEANUP_CAP: Duration = Duration::from_secs(5);

/// When the run was interrupted, for the network steps waiting on it.
fn since() -> &'static watch::Sender<Option<Instant>> {
    static SINCE: OnceLock<watch::Sender<Option<Instant>>> = OnceLock::new();
    SINCE.get_or_init(|| watch::channel(None).0)
}

/// Marks the run interrupted: steps still waiting on a host end now (cleanup steps a moment
/// later). Returns whether it already was.
fn interrupt() -> bool {
    let already = INTERRUPTED.swap(true, Ordering::SeqCst);
    if !already {
        since().send_replace(Some(Instant::now()));
    }
    already
}

/// What ends a step starting now once the run is interrupted: at once, or for `cleanup` (an
/// `always` step) `CLEANUP_GRACE` later, within `CLEANUP_CAP`.
pub fn cancel(cleanup: bool) -> Cancel {
    let (grace, cap) = if cleanup {
        (CLEANUP_GRACE, CLEANUP_CAP)
    } else {
        (Duration::ZERO, Duration::ZERO)
    };
    Cancel::new(since().subscribe(), Instant::now(), grace, cap)
}

/// Starts listening for SIGINT and SIGTERM, once per process.
pub fn install() {
    INSTALL.call_once(|| {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                let _ = ready_tx.send(());
                return;
            };
            runtime.block_on(async move {
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    let _ = ready_tx.send(());
                    return;
                };
                let _ = ready_tx.send(());
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    if DEFER.load(Ordering::SeqCst) && !STOP_REQUESTED.swap(true, Ordering::SeqCst) {
                        notify("stopping after the current action (again to stop its commands and clean up)");
                        continue;
                    }
                    if interrupt() {
                        std::process::exit(EXIT_INTERRUPTED);
                    }
                    notify("interrupted: no new commands; the ones running get TERM, then goals clean up (again to quit now)");
                }
            });
        });
        // Signals sent right after this call must already find the handler.
        let _ = ready_rx.recv();
    });
}

/// Says `message` on stderr from a thread of its own: the line waits while a prompt holds the
/// progress bar still, and this handler must stay free for the second Ctrl-C.
fn notify(message: &'static str) {
    std::thread::spawn(move || crate::logging::note(message));
}

/// Makes the first Ctrl-C or SIGTERM only request a stop (`stop_requested`), leaving runs
/// in progress untouched; the second then interrupts as usual.
pub fn defer_first() {
    DEFER.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested, or the run interrupted.
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst) || interrupted()
}

/// Whether the run was interrupted.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
