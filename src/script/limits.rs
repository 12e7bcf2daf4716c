//! Limits on a goal's data: the sizes the engine has Rhai enforce (`MAX_STRING_BYTES`,
//! `MAX_COLLECTION_ITEMS`), and those Rhai's own do not cover: how deep arrays and maps nest,
//! and how much memory the values a goal holds may take. Rhai measures sizes after some steps
//! only (a map grown by `m[k] = v` escapes it) and recursively, so a value nested a hundred
//! thousand deep overflowed the stack and aborted weft. Here a goal's variables are measured
//! without deep recursion, often enough that neither can run far, and a goal past either
//! limit ends with an error at the line that touched the value.

use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, EvalContext, Position};

/// The largest string a script may build (command output passed in counts too).
pub const MAX_STRING_BYTES: usize = 64 * 1024 * 1024;
/// The most items an array, and the most entries a map, may hold.
pub const MAX_COLLECTION_ITEMS: usize = 1_000_000;
/// How deep arrays and maps may nest in one value.
pub const MAX_DATA_DEPTH: usize = 256;
/// How much the values a goal holds in its variables may take, strings, arrays and maps.
pub const MEMORY_BUDGET: usize = 512 * 1024 * 1024;

/// The fewest and most operations between two measures; in between, as many as an eighth of
/// the values measured last time, so that measuring stays a small part of the work.
const MIN_OPS_BETWEEN: u64 = 1024;
const MAX_OPS_BETWEEN: u64 = 16 * 1024;
/// The process's heap may grow this much before a goal's values are measured again.
const HEAP_STEP: isize = 32 * 1024 * 1024;

/// What starts the errors of these limits, so that diagnostics can tell them from Rhai's.
pub(crate) const PREFIX: &str = "weft limit: ";

/// When one engine's values are measured next.
struct Watch {
    /// The operation count of the last measure.
    last_ops: AtomicU64,
    /// Operations until the next measure.
    gap: AtomicU64,
    /// The heap size that triggers the next measure.
    next_heap: AtomicIsize,
}

/// Measures a goal's variables as it runs, whenever a variable is read or written, every few
/// thousand operations or after the heap grew.
pub(crate) fn install(engine: &mut Engine) {
    let watch = Arc::new(Watch {
        last_ops: AtomicU64::new(0),
        gap: AtomicU64::new(0),
        next_heap: AtomicIsize::new(crate::heap::live_bytes().saturating_add(HEAP_STEP)),
    });
    #[allow(deprecated)] // Rhai marks the variable hook volatile, not deprecated.
    engine.on_var(move |_, _, context| watch.check(&context).map(|()| None));
}

thread_local! {
    /// The limit error of the goal running on this thread, once one was raised: every later
    /// read or write of a variable raises it again, and a goal that caught it still fails.
    static TRIPPED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    /// The bytes each function of the goal's call chain held when last measured, by call
    /// level: a function sees only its own variables, and its callers' count too.
    static FRAMES: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Watch {
    fn check(&self, context: &EvalContext) -> Result<(), Box<EvalAltResult>> {
        if let Some(message) = tripped() {
            return Err(raise(message));
        }
        let ops = context.global_runtime_state().num_operations();
        let heap = crate::heap::live_bytes();
        let last = self.last_ops.load(Ordering::Relaxed);
        // A new call of the same engine counts its operations from zero again.
        let due = ops < last
            || ops - last >= self.gap.load(Ordering::Relaxed)
            || heap >= self.next_heap.load(Ordering::Relaxed);
        if !due {
            return Ok(());
        }
        let mut tally = Tally::default();
        let mut largest = ("", 0);
        let values = context
            .scope()
            .iter_raw()
            .map(|(name, _, value)| (name, value))
            .chain(context.this_ptr().map(|this| ("this", this)));
        for (name, value) in values {
            let before = tally.bytes;
            measure(value, 0, &mut tally).map_err(|Depth| trip(depth_message(name)))?;
            if tally.bytes - before > largest.1 {
                largest = (name, tally.bytes - before);
            }
        }
        let total = FRAMES.with(|frames| {
            let mut frames = frames.borrow_mut();
            // Deeper levels have returned; callers that were never measured hold nothing yet.
            frames.resize(context.call_level(), 0);
            let callers: usize = frames.iter().sum();
            frames.push(tally.bytes);
            callers.saturating_add(tally.bytes)
        });
        if total > MEMORY_BUDGET {
            return Err(trip(memory_message(&format!("`{}`", largest.0), total)));
        }
        self.last_ops.store(ops, Ordering::Relaxed);
        let gap = u64::try_from(tally.nodes / 8).unwrap_or(u64::MAX);
        self.gap.store(
            gap.clamp(MIN_OPS_BETWEEN, MAX_OPS_BETWEEN),
            Ordering::Relaxed,
        );
        self.next_heap
            .store(heap.saturating_add(HEAP_STEP), Ordering::Relaxed);
        Ok(())
    }
}

/// The limit error raised on this thread, if any.
fn tripped() -> Option<String> {
    TRIPPED.with(|t| t.borrow().clone())
}

/// Records `message` as this thread's limit error and returns it raised.
fn trip(message: String) -> Box<EvalAltResult> {
    TRIPPED.with(|t| {
        t.borrow_mut().get_or_insert_with(|| message.clone());
    });
    raise(message)
}

/// The error of a limit: a runtime error, so that it keeps the line of the variable that was
/// read (Rhai's own limit errors lose it at the function's edge). A `try` may catch it, but
/// not get on: the next variable read raises it again, and the goal fails in the end.
fn raise(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        format!("{PREFIX}{message}").into(),
        Position::NONE,
    ))
}

fn depth_message(name: &str) -> String {
    let what = match name {
        "" => "the value it returns".to_string(),
        name => format!("`{name}`"),
    };
    format!(
        "{what} nests arrays and maps deeper than {MAX_DATA_DEPTH} levels, the nesting limit \
         of a goal's data"
    )
}

fn memory_message(largest: &str, bytes: usize) -> String {
    let mib = |b: usize| b / (1024 * 1024);
    format!(
        "the goal's values passed its memory budget of {} MiB: they hold {} MiB, most of it \
         in {largest}",
        mib(MEMORY_BUDGET),
        mib(bytes)
    )
}

/// Runs one goal call on this thread: a limit error its script caught still fails it.
pub(crate) fn guard<T>(
    call: impl FnOnce() -> Result<T, Box<EvalAltResult>>,
) -> Result<T, Box<EvalAltResult>> {
    TRIPPED.with(|t| t.borrow_mut().take());
    FRAMES.with(|f| f.borrow_mut().clear());
    let result = call();
    let tripped = TRIPPED.with(|t| t.borrow_mut().take());
    match (result, tripped) {
        (Ok(_), Some(message)) => Err(raise(message)),
        (result, _) => result,
    }
}

/// The message and help of an error of these limits, given its text; `None` for another.
pub(crate) fn help(text: &str) -> Option<(String, String)> {
    let message = text.strip_prefix(PREFIX)?;
    let help = if message.contains("nests arrays and maps") {
        format!(
            "a value that wraps itself in a loop (`a = [a]`)? weft ends the goal there, before \
             copying or freeing so deep a value could overflow its stack ({MAX_DATA_DEPTH} \
             levels at most)"
        )
    } else {
        format!(
            "a loop that never ends? a goal's strings, arrays and maps may hold {} MiB in all, \
             so that one goal cannot exhaust the controller's memory",
            MEMORY_BUDGET / (1024 * 1024)
        )
    };
    Some((message.to_string(), help))
}

/// What a measure found so far.
#[derive(Default)]
pub(crate) struct Tally {
    bytes: usize,
    nodes: usize,
}

/// A value nests deeper than `MAX_DATA_DEPTH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Depth;

/// Measures `value` into `tally`, stopping at a value nested too deep. It recurses only into
/// arrays and maps, and no deeper than `MAX_DATA_DEPTH`, so it cannot overflow the stack
/// itself.
pub(crate) fn measure(value: &Dynamic, depth: usize, tally: &mut Tally) -> Result<(), Depth> {
    tally.nodes += 1;
    tally.bytes += std::mem::size_of::<Dynamic>();
    if value.is_shared() {
        // A variable a closure captured. One locked by the step running now is skipped: it
        // was measured before it was locked and will be again.
        if !value.is_locked() {
            if let Some(inner) = value.read_lock::<Dynamic>() {
                if !inner.is_shared() {
                    measure(&inner, depth, tally)?;
                }
            }
        }
    } else if value.is_string() {
        if let Ok(text) = value.as_immutable_string_ref() {
            tally.bytes += text.len();
        }
    } else if value.is_blob() {
        if let Ok(blob) = value.as_blob_ref() {
            tally.bytes += blob.len();
        }
    } else if value.is_array() {
        if depth >= MAX_DATA_DEPTH {
            return Err(Depth);
        }
        if let Ok(items) = value.as_array_ref() {
            tally.bytes += items.capacity() * std::mem::size_of::<Dynamic>();
            for item in items.iter() {
                measure(item, depth + 1, tally)?;
            }
        }
    } else if value.is_map() {
        if depth >= MAX_DATA_DEPTH {
            return Err(Depth);
        }
        if let Ok(map) = value.as_map_ref() {
            for (key, item) in map.iter() {
                // A key and the map's own node, roughly.
                tally.bytes += key.len() + 32;
                measure(item, depth + 1, tally)?;
            }
        }
    }
    Ok(())
}

/// Checks a goal's result before it leaves the goal's thread.
pub(crate) fn check_result(value: &Dynamic) -> Result<(), Box<EvalAltResult>> {
    let mut tally = Tally::default();
    measure(value, 0, &mut tally).map_err(|Depth| trip(depth_message("")))?;
    if tally.bytes > MEMORY_BUDGET {
        return Err(trip(memory_message("the value it returns", tally.bytes)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Dynamic {
        let mut value = Dynamic::from_array(Vec::new());
        for _ in 1..levels {
            value = Dynamic::from_array(vec![value]);
        }
        value
    }

    #[test]
    fn values_nested_past_the_limit_stop_the_measure() {
        let ok = nested(MAX_DATA_DEPTH);
        assert_eq!(measure(&ok, 0, &mut Tally::default()), Ok(()));
        let deep = nested(MAX_DATA_DEPTH + 1);
        assert_eq!(measure(&deep, 0, &mut Tally::default()), Err(Depth));
    }

    #[test]
    fn strings_count_toward_the_budget_wherever_they_are() {
        let text: Dynamic = "x".repeat(1024 * 1024).into();
        let mut map = rhai::Map::new();
        for i in 0..(MEMORY_BUDGET / (1024 * 1024)) + 1 {
            map.insert(i.to_string().into(), text.clone());
        }
        let value = Dynamic::from_map(map);
        let mut tally = Tally::default();
        assert_eq!(measure(&value, 0, &mut tally), Ok(()));
        assert!(tally.bytes > MEMORY_BUDGET, "{}", tally.bytes);
    }
}
