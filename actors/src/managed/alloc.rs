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
use std::marker::PhantomData;
use std::ptr;
use std::sync::Arc;

use super::Counters;

thread_local! {
    /// The counters of the actor whose handler this thread is polling, or null. Only
    /// [`Enter::new`] sets a non-null value, and only from `Arc::as_ptr` of an
    /// `&Arc<Counters>`: every non-null value points into a live `Arc` allocation, which
    /// is what [`current`]'s `Arc::from_raw` (behind [`super::Mailbox::own`]) relies on.
    static CURRENT: Cell<*const Counters> = const { Cell::new(ptr::null()) };
}

/// Sets the current actor for the life of the guard (restored on drop, also on unwind).
///
/// The guard borrows the `Arc` it was made from, so the compiler keeps that `Arc` (and
/// the counters `CURRENT` points at) alive until the previous value is restored.
/// Guards nest (they live on the stack of the code they time) and are never
/// `mem::forget`-ed: the one thing here no type can rule out, so nothing else in the
/// crate makes one.
pub(crate) struct Enter<'a> {
    previous: *const Counters,
    _counters: PhantomData<&'a Arc<Counters>>,
}

impl<'a> Enter<'a> {
    /// Charges this thread's allocations to `counters` until the guard drops.
    ///
    /// It takes the `Arc`, not a bare `&Counters`: the pointer it publishes must point
    /// into an `Arc` allocation (see [`current`]), and the borrow keeps that `Arc` alive
    /// for the guard's life (the guard borrows it).
    #[inline]
    pub(crate) fn new(counters: &'a Arc<Counters>) -> Self {
        let previous = CURRENT
            .try_with(|c| c.replace(Arc::as_ptr(counters)))
            .unwrap_or(ptr::null());
        Self {
            previous,
            _counters: PhantomData,
        }
    }
}

impl Drop for Enter<'_> {
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
    let _restore = Enter {
        previous,
        _counters: PhantomData,
    };
    f()
}

/// The counters of the actor running on this thread, if any (for
/// [`super::Mailbox::own`]): one more strong reference to the `Arc<Counters>` that an
/// [`Enter`] guard on this thread's stack borrows.
///
/// The `Arc::from_raw` is here, next to the only code that sets `CURRENT`, so the
/// invariant it relies on is kept within this module and by `Enter::new`'s signature.
pub(crate) fn current() -> Option<Arc<Counters>> {
    let p = CURRENT.try_with(Cell::get).unwrap_or(ptr::null());
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null `CURRENT` was set by `Enter::new`, which only takes an
    // `&Arc<Counters>` and publishes `Arc::as_ptr` of it while the guard borrows that `Arc`
    // (the guard restores the previous value when it drops, and `uncharged` only restores
    // values an outer `Enter` set). So `p` is what `Arc::into_raw` would return for an
    // `Arc` alive now: one more strong count first makes the returned `Arc` own it.
    unsafe {
        Arc::increment_strong_count(p);
        Some(Arc::from_raw(p))
    }
}

fn charge(allocated: usize, freed: usize) {
    let _ = CURRENT.try_with(|c| {
        let p = c.get();
        if !p.is_null() {
            // SAFETY: a non-null `p` was set by `Enter::new` from an `&Arc<Counters>` that
            // the guard borrows (the borrow checker keeps the `Arc` alive while the guard
            // lives), and the guard restores the previous value when it drops, so `p`
            // points to live counters. `uncharged`'s guard only ever restores a value
            // that an outer `Enter` set.
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
