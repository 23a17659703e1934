//! Private synchronisation facade, plus the cache-line padding helper.
//!
//! Every atomic, fence, `Arc` and interior-mutability cell used by this crate
//! is imported from here and never from `std` directly. Under `cfg(loom)` the
//! names resolve to loom's instrumented models, so the model checker sees (and
//! permutes) every shared-memory access; otherwise they resolve to `std` at no
//! cost.
//!
//! `std::cell::UnsafeCell` hands out raw pointers through `get`, which loom
//! cannot track. Both variants therefore expose the closure-style accessors
//! `with` (shared access, `*const T`) and `with_mut` (exclusive access,
//! `*mut T`). Under loom each call is recorded as a read or a write of the cell,
//! and loom fails the model if a write is not ordered (happens-before) with
//! every other access to the same cell.

#[cfg(loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    pub(crate) use loom::sync::Arc;
    // Re-exported for parity with the std side; the crate itself spawns no
    // threads.
    #[allow(unused_imports)]
    pub(crate) use loom::thread;
}

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    pub(crate) use std::sync::Arc;
    // Re-exported for parity with the loom side; the crate itself spawns no
    // threads.
    #[allow(unused_imports)]
    pub(crate) use std::thread;

    /// `std::cell::UnsafeCell` behind the same closure API as
    /// `loom::cell::UnsafeCell`, so one body of code compiles in both
    /// configurations.
    #[derive(Debug)]
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        /// Wraps `value`.
        #[inline]
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a pointer meant for reading only.
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with a pointer that may be written through.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

pub(crate) use imp::*;

/// Aligns (and so pads) its content to 128 bytes so that it never shares a
/// cache line with a neighbour written by another core.
///
/// 128 rather than 64 because on x86 the adjacent-line prefetcher pulls
/// 64-byte lines in pairs, so two hot fields 64 bytes apart still contend.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}
