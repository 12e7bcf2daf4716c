//! Ctrl-C and SIGTERM during a run: the first one stops new commands on every host, lets the
//! ones in flight finish and lets goals clean up (deploy locks, a half-made switch); a second
//! one quits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use tokio::signal::unix::{signal, SignalKind};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// The exit code of a run that was interrupted, as shells report a SIGINT.
pub const EXIT_INTERRUPTED: i32 = 130;

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
                    if INTERRUPTED.swap(true, Ordering::SeqCst) {
                        std::process::exit(EXIT_INTERRUPTED);
                    }
                    eprintln!(
                        "interrupted: no new commands; finishing the ones running and cleaning up (again to quit now)"
                    );
                }
            });
        });
        // Signals sent right after this call must already find the handler.
        let _ = ready_rx.recv();
    });
}

/// Whether the run was interrupted.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
