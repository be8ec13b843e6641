//! A counting global allocator that charges each allocation to the actor running.
//!
//! [`CountingAlloc`] wraps the system allocator. While a managed actor's handler is
//! polled, a thread-local points at its counters; every allocation and deallocation on
//! that thread adds to them (the running actor is their only writer, so no locked
//! instruction is needed). Outside handlers nothing is charged.
//!
//! What `memory_bytes` means: bytes the current incarnation's handlers allocated minus
//! bytes they freed — what the actor keeps for itself: a growing state, a leak. Data
//! that crosses actors is kept out of it where it can be: sending ([`Mailbox::cast`],
//! and anything run in [`uncharged`], like a bus publish) is charged to no one, and
//! frees never exceed the incarnation's allocations, so dropping messages it received
//! cannot build up a credit that would hide a leak. What still drifts: heap data a
//! handler builds and hands over inside a message stays charged to it.
//!
//! [`Mailbox::cast`]: super::Mailbox::cast
//!
//! Install it in the binary: `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;

use super::Counters;

thread_local! {
    /// The counters of the actor whose handler this thread is polling, or null.
    static CURRENT: Cell<*const Counters> = const { Cell::new(ptr::null()) };
}

/// Sets the current actor for the life of the guard (restored on drop, also on unwind).
pub(crate) struct Enter {
    previous: *const Counters,
}

impl Enter {
    /// Charges this thread's allocations to `counters` until the guard drops.
    ///
    /// The caller keeps `counters` alive for the guard's life (it holds the `Arc`).
    #[inline]
    pub(crate) fn new(counters: &Counters) -> Self {
        let previous = CURRENT
            .try_with(|c| c.replace(counters as *const Counters))
            .unwrap_or(ptr::null());
        Self { previous }
    }
}

impl Drop for Enter {
    #[inline]
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(self.previous));
    }
}

/// Runs `f` without charging its allocations to the running actor: for work done on
/// behalf of others (building and sending messages).
pub fn uncharged<R>(f: impl FnOnce() -> R) -> R {
    let previous = CURRENT
        .try_with(|c| c.replace(ptr::null()))
        .unwrap_or(ptr::null());
    let _restore = Enter { previous };
    f()
}

/// The counters of the actor running on this thread, if any (for [`super::Mailbox`]).
pub(crate) fn current() -> *const Counters {
    CURRENT.try_with(Cell::get).unwrap_or(ptr::null())
}

fn charge(allocated: usize, freed: usize) {
    let _ = CURRENT.try_with(|c| {
        let p = c.get();
        if !p.is_null() {
            // SAFETY: `p` was set by `Enter::new` from a live `&Counters` whose `Arc` the
            // polling `Managed` holds until the guard drops; the guard restores the
            // previous value before that borrow ends.
            unsafe { (*p).charge_memory(allocated, freed) };
        }
    });
}

/// The system allocator, counting per actor. See the [module docs](self).
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// bookkeeping never allocates (a const thread-local `Cell` and plain counters).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            charge(layout.size(), 0);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            charge(layout.size(), 0);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        charge(0, layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            charge(new_size, layout.size());
        }
        p
    }
}
