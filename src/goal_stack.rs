//! The thread a host's job and its goal run on: a stack deep enough for what Rhai does
//! recursively with the values `script::limits` allows, reserved whole and taking memory only
//! as it is touched.

/// The stack a goal runs on (reserved; only what is used takes memory). Values are measured
/// every few thousand operations, and an operation nests a value one level deeper at most, so
/// a value is never much deeper than `script::limits`' depth limit plus the most operations
/// between two measures when Rhai copies, measures, prints or drops it, all recursively: a
/// goal nesting 16 levels per statement beside 200,000 other values, printing and converting
/// the value to JSON as it went, passed on a stack of 16 MiB.
pub const GOAL_STACK: usize = 64 * 1024 * 1024;

thread_local! {
    /// Set on a thread `spawn_on_goal_stack` started, until its first goal takes the stack.
    static FRESH_GOAL_STACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Starts `work` on a thread of its own with a stack of `GOAL_STACK`, inside `runtime`'s
/// context; the first goal it calls runs on that stack instead of another thread's. A host's
/// job runs so: one thread per host in flight, not a blocking thread waiting on a goal thread
/// (each kept some 170 KB of touched stack, 16 MB of a run at 96 hosts at once).
pub(crate) fn spawn_on_goal_stack<T: Send + 'static>(
    runtime: tokio::runtime::Handle,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<tokio::sync::oneshot::Receiver<T>> {
    let (done, outcome) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("host".into())
        .stack_size(GOAL_STACK)
        .spawn(move || {
            let _context = runtime.enter();
            FRESH_GOAL_STACK.with(|fresh| fresh.set(true));
            let _ = done.send(work());
        })?;
    Ok(outcome)
}

/// Runs `work` on a thread with a stack of `GOAL_STACK` (reserved, used only as it is
/// touched), and returns what it returns; a panic goes on in the caller. The first call on a
/// thread `spawn_on_goal_stack` started runs in place: the whole stack is still free.
pub(crate) fn on_goal_stack<T: Send>(work: impl FnOnce() -> T + Send) -> std::io::Result<T> {
    if FRESH_GOAL_STACK.with(|fresh| fresh.replace(false)) {
        return Ok(work());
    }
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("goal".into())
            .stack_size(GOAL_STACK)
            .spawn_scoped(scope, work)?;
        Ok(handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}
