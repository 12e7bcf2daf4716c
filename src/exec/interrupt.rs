//! Ctrl-C and SIGTERM during a run: the first one stops new commands on every host, ends the
//! ones in flight (they get TERM, as at their timeout) and stops waiting on every other network
//! step, then lets goals clean up (deploy locks, a half-made switch), each cleanup step for at
//! most `CLEANUP_GRACE` and all of them within `CLEANUP_CAP`; a second one quits at once. A
//! long-running command (`weft watch`) may ask that the first one only request a stop, so the
//! action in progress runs to its end.
//!
//! The state is a run's own (`Interrupt`, held by the invocation's `RunContext` and each of its
//! runs' `Run`): the process's signal handler triggers the handles of the runs in progress, and a
//! unit test interrupts one run by calling `Interrupt::signal` without sending a signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::transport::Cancel;

static INSTALL: Once = Once::new();

/// The exit code of a run that was interrupted, as shells report a SIGINT.
pub const EXIT_INTERRUPTED: i32 = 130;

/// How long a cleanup step (`always`) may still take after an interrupt (or after its start,
/// when later): a lock released or a link switched back over a working connection takes
/// milliseconds, a host that stalls must not hold the run.
pub const CLEANUP_GRACE: Duration = Duration::from_secs(2);

/// How long after an interrupt every cleanup step has ended, however many a goal runs; a run
/// with nothing to clean up ends at once.
pub const CLEANUP_CAP: Duration = Duration::from_secs(5);

/// Whether and when the runs of one invocation were interrupted, or asked to stop.
#[derive(Debug)]
pub struct Interrupt {
    interrupted: AtomicBool,
    /// The first signal only requests a stop (see `defer_first`).
    defer: AtomicBool,
    stop_requested: AtomicBool,
    /// When the run was interrupted, for the network steps waiting on it.
    since: watch::Sender<Option<Instant>>,
}

/// What one Ctrl-C or SIGTERM did to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signalled {
    /// The first one under `defer_first`: a stop was requested, the run goes on untouched.
    StopRequested,
    /// The run is interrupted: no new commands, those running get TERM, goals clean up.
    Interrupted,
    /// It already was: the process quits at once.
    Quit,
}

impl Interrupt {
    /// A handle no signal reaches, for a run a test interrupts by calling `signal`.
    pub fn new() -> Arc<Self> {
        Arc::new(Interrupt {
            interrupted: AtomicBool::new(false),
            defer: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            since: watch::channel(None).0,
        })
    }

    /// A handle that Ctrl-C and SIGTERM trigger (once `install` listens) for as long as it
    /// is held.
    pub fn watched() -> Arc<Self> {
        let handle = Self::new();
        let mut live = live().lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|h| h.strong_count() > 0);
        live.push(Arc::downgrade(&handle));
        handle
    }

    /// What a Ctrl-C or SIGTERM does: under `defer_first` the first one only requests a
    /// stop; then the run is interrupted; once it was, the process must quit.
    pub fn signal(&self) -> Signalled {
        if self.defer.load(Ordering::SeqCst) && !self.stop_requested.swap(true, Ordering::SeqCst) {
            return Signalled::StopRequested;
        }
        if self.interrupt() {
            Signalled::Quit
        } else {
            Signalled::Interrupted
        }
    }

    /// Marks the run interrupted: steps still waiting on a host end now (cleanup steps a
    /// moment later). Returns whether it already was.
    fn interrupt(&self) -> bool {
        let already = self.interrupted.swap(true, Ordering::SeqCst);
        if !already {
            self.since.send_replace(Some(Instant::now()));
        }
        already
    }

    /// What ends a step starting now once the run is interrupted: at once, or for `cleanup`
    /// (an `always` step) `CLEANUP_GRACE` later, within `CLEANUP_CAP`.
    pub fn cancel(&self, cleanup: bool) -> Cancel {
        let (grace, cap) = if cleanup {
            (CLEANUP_GRACE, CLEANUP_CAP)
        } else {
            (Duration::ZERO, Duration::ZERO)
        };
        Cancel::new(self.since.subscribe(), Instant::now(), grace, cap)
    }

    /// Makes the first Ctrl-C or SIGTERM only request a stop (`stop_requested`), leaving
    /// runs in progress untouched; the second then interrupts as usual.
    pub fn defer_first(&self) {
        self.defer.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested, or the run interrupted.
    pub fn stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::SeqCst) || self.interrupted()
    }

    /// Whether the run was interrupted.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

/// The handles signals reach: those of the invocations in progress (one, but for tests).
fn live() -> &'static Mutex<Vec<Weak<Interrupt>>> {
    static LIVE: OnceLock<Mutex<Vec<Weak<Interrupt>>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

/// The handles signals reach that are still held.
fn watched_now() -> Vec<Arc<Interrupt>> {
    let live = live().lock().unwrap_or_else(|e| e.into_inner());
    live.iter().filter_map(Weak::upgrade).collect()
}

/// Whether a run in progress was interrupted: a question on the terminal then stops waiting.
pub fn any_interrupted() -> bool {
    watched_now().iter().any(|h| h.interrupted())
}

/// What ends a step starting now at Ctrl-C, for code that holds no run (a script's global
/// functions): the invocation in progress's `cancel`.
pub fn cancel_now() -> Option<Cancel> {
    watched_now().first().map(|h| h.cancel(false))
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
                    let done: Vec<Signalled> = watched_now().iter().map(|h| h.signal()).collect();
                    // No run in progress has anything to clean up.
                    if done.is_empty() || done.contains(&Signalled::Quit) {
                        std::process::exit(EXIT_INTERRUPTED);
                    }
                    if done.contains(&Signalled::Interrupted) {
                        notify("interrupted: no new commands; the ones running get TERM, then goals clean up (again to quit now)");
                    } else {
                        notify("stopping after the current action (again to stop its commands and clean up)");
                    }
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
