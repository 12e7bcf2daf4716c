//! The process's allocator, counting the bytes it holds: a goal's memory budget
//! (`script::limits`) looks at its data when this count has grown, not at every step.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// The system allocator, keeping a count of the bytes allocated and not yet freed.
pub struct Counting;

/// Bytes held, process-wide, give or take `FLUSH` per thread.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// A thread adds its allocations to `LIVE` once they pass this, so that the shared counter is
/// touched rarely and threads do not contend for it.
const FLUSH: isize = 256 * 1024;

thread_local! {
    // `const` with no destructor: usable inside the allocator, even while a thread exits.
    static PENDING: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    PENDING.with(|pending| {
        let now = pending.get() + delta;
        if now.abs() >= FLUSH {
            LIVE.fetch_add(now, Ordering::Relaxed);
            pending.set(0);
        } else {
            pending.set(now);
        }
    });
}

fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

/// Bytes the process holds now (within a few hundred KiB per thread).
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            note(signed(layout.size()));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            note(signed(layout.size()));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is the system's.
        unsafe { System.dealloc(ptr, layout) };
        note(-signed(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; the old block stays valid when this fails.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            note(signed(new_size) - signed(layout.size()));
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_allocation_shows_in_the_count_until_it_is_freed() {
        let before = live_bytes();
        let block = vec![1u8; 64 * 1024 * 1024];
        let held = live_bytes() - before;
        assert!(held >= 60 * 1024 * 1024, "held {held}");
        drop(block);
        let after = live_bytes() - before;
        assert!(after < 16 * 1024 * 1024, "after {after}");
    }
}
