//! A per-shard cache of small memory blocks, so that spawning and exiting
//! processes does not go to the global allocator every time.
//!
//! A process allocation (and its lazily allocated extras) is freed on its
//! shard's thread and, typically, a block of the same size is wanted again
//! soon (a supervisor restarting a child, a tree of short-lived workers).
//! Measured with callgrind on spawn + message + exit: glibc's `free` costs
//! about 100 instructions per block (its tcache path still runs
//! `_int_free`'s checks) and `malloc` about 40, four blocks per process;
//! a hit in this cache costs a handful. (Seastar gives each shard its own
//! allocator for the same reason.)
//!
//! # Rules
//!
//! 1. Blocks come from the global allocator with the layout of their size
//!    class (size rounded up to [`GRAIN`], alignment [`GRAIN`]) and go back
//!    to it with that same layout, whether or not they passed through a
//!    cache; so a block may be freed through any shard's cache, or none.
//! 2. A cache holds at most [`PER_CLASS`] blocks per class (bounded memory:
//!    at most `PER_CLASS * MAX_CACHED` bytes per class) and frees them all
//!    when its shard is dropped.
//! 3. Layouts larger than [`MAX_CACHED`] or more aligned than [`GRAIN`]
//!    bypass the cache entirely (plain global allocation).
//! 4. Only the shard's thread touches its cache.

use std::alloc::{self, Layout};
use std::cell::UnsafeCell;
use std::ptr::NonNull;

/// Size-class granularity and the alignment of every cached block.
const GRAIN: usize = 16;
/// Largest block size that is cached (a large hook future, skynet's for
/// one, is just over 512 bytes).
const MAX_CACHED: usize = 1024;
const CLASSES: usize = MAX_CACHED / GRAIN;
/// Most blocks kept per class.
const PER_CLASS: usize = 256;

/// The size class of `layout`, if it is cached (rule 3).
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() == 0 || layout.size() > MAX_CACHED || layout.align() > GRAIN {
        return None;
    }
    Some((layout.size() - 1) / GRAIN)
}

/// The layout every block of `class` is allocated with (rule 1).
#[inline]
fn class_layout(class: usize) -> Layout {
    // SAFETY: a non-zero multiple of `GRAIN`, a power of two, and far below
    // `isize::MAX`.
    unsafe { Layout::from_size_align_unchecked((class + 1) * GRAIN, GRAIN) }
}

/// One shard's cache.
pub(crate) struct BlockCache {
    classes: UnsafeCell<[Vec<NonNull<u8>>; CLASSES]>,
}

impl Default for BlockCache {
    fn default() -> Self {
        Self {
            classes: UnsafeCell::new(std::array::from_fn(|_| Vec::new())),
        }
    }
}

impl BlockCache {
    /// A block for `layout` (never null; aborts on allocation failure like
    /// `Box` does).
    #[inline]
    pub(crate) fn alloc(&self, layout: Layout) -> NonNull<u8> {
        let Some(class) = class_of(layout) else {
            return global_alloc(layout);
        };
        // SAFETY: rule 4; a short access that calls out to nothing.
        let cached = unsafe { (*self.classes.get())[class].pop() };
        match cached {
            Some(block) => block,
            None => global_alloc(class_layout(class)),
        }
    }

    /// Returns a block from [`BlockCache::alloc`] (of any shard's cache, or
    /// from [`free_block`]'s global fallback) for `layout`.
    ///
    /// # Safety
    /// `block` was allocated for `layout` by a `BlockCache` (or
    /// [`alloc_block`]), is not used afterwards, and holds no live value.
    #[inline]
    pub(crate) unsafe fn free(&self, block: NonNull<u8>, layout: Layout) {
        let Some(class) = class_of(layout) else {
            // SAFETY: bypassed blocks were allocated with `layout` itself.
            return unsafe { alloc::dealloc(block.as_ptr(), layout) };
        };
        // SAFETY: rule 4; a short access that calls out to nothing.
        let list = unsafe { &mut (*self.classes.get())[class] };
        if list.len() < PER_CLASS {
            list.push(block);
        } else {
            // SAFETY: rule 1: allocated with its class layout.
            unsafe { alloc::dealloc(block.as_ptr(), class_layout(class)) };
        }
    }
}

impl Drop for BlockCache {
    fn drop(&mut self) {
        for (class, list) in self.classes.get_mut().iter_mut().enumerate() {
            for block in list.drain(..) {
                // SAFETY: rule 1: cached blocks have their class layout and
                // hold no value.
                unsafe { alloc::dealloc(block.as_ptr(), class_layout(class)) };
            }
        }
    }
}

fn global_alloc(layout: Layout) -> NonNull<u8> {
    // SAFETY: every layout handed here has a non-zero size (callers
    // allocate real values; zero-sized ones never reach the cache).
    let raw = unsafe { alloc::alloc(layout) };
    NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// A block for `layout` from this thread's shard cache, or from the global
/// allocator off shard threads.
#[inline]
pub(crate) fn alloc_block(layout: Layout) -> NonNull<u8> {
    crate::shard::with_current(|s| s.blocks.alloc(layout))
        .unwrap_or_else(|| global_alloc(class_of(layout).map_or(layout, class_layout)))
}

/// Frees a block from [`alloc_block`] into this thread's shard cache, or to
/// the global allocator off shard threads.
///
/// # Safety
/// As for [`BlockCache::free`].
#[inline]
pub(crate) unsafe fn free_block(block: NonNull<u8>, layout: Layout) {
    let cached = crate::shard::with_current(|s| {
        // SAFETY: forwarded.
        unsafe { s.blocks.free(block, layout) }
    });
    if cached.is_none() {
        // SAFETY: rule 1: the block's layout is its class layout (or
        // `layout` itself when bypassed).
        unsafe {
            alloc::dealloc(
                block.as_ptr(),
                class_of(layout).map_or(layout, class_layout),
            )
        };
    }
}

/// A `Box` whose block comes from the shard's cache.
pub(crate) struct CachedBox<T> {
    ptr: NonNull<T>,
}

impl<T> CachedBox<T> {
    /// A box holding `make()`. The value is made after the block is taken,
    /// so that a large value can be built in place rather than on the stack
    /// and then copied (the process extras: 64 instructions of `memcpy` per
    /// first use, measured with callgrind on spawn + wait).
    #[inline(always)]
    pub(crate) fn new_with(make: impl FnOnce() -> T) -> Self {
        let ptr = alloc_block(Layout::new::<T>()).cast::<T>();
        // SAFETY: a fresh block of `T`'s size and alignment (class blocks
        // are `GRAIN`-aligned, and larger alignments bypass the cache).
        unsafe { ptr.as_ptr().write(make()) };
        Self { ptr }
    }
}

impl<T> std::ops::Deref for CachedBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the box owns a live `T` until it is dropped.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> std::ops::DerefMut for CachedBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` is exclusive.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for CachedBox<T> {
    fn drop(&mut self) {
        // SAFETY: the box owns the value and the block; neither is used
        // again.
        unsafe {
            std::ptr::drop_in_place(self.ptr.as_ptr());
            free_block(self.ptr.cast(), Layout::new::<T>());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_by_class_and_bounded() {
        let cache = BlockCache::default();
        let layout = Layout::from_size_align(40, 8).unwrap();
        let a = cache.alloc(layout);
        // SAFETY: from `alloc` above with this layout, unused.
        unsafe { cache.free(a, layout) };
        let same_class = Layout::from_size_align(48, 16).unwrap();
        assert_eq!(cache.alloc(same_class), a, "a freed block is reused");
        let blocks: Vec<_> = (0..PER_CLASS + 10).map(|_| cache.alloc(layout)).collect();
        for b in blocks {
            // SAFETY: as above.
            unsafe { cache.free(b, layout) };
        }
        // SAFETY: test-only look at the class list.
        let kept = unsafe { (*cache.classes.get())[class_of(layout).unwrap()].len() };
        assert_eq!(kept, PER_CLASS);
    }

    #[test]
    fn big_or_overaligned_layouts_bypass_the_cache() {
        assert_eq!(
            class_of(Layout::from_size_align(MAX_CACHED + 1, 8).unwrap()),
            None
        );
        assert_eq!(class_of(Layout::from_size_align(64, 64).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(1, 1).unwrap()), Some(0));
        let cache = BlockCache::default();
        let big = Layout::from_size_align(4096, 8).unwrap();
        let b = cache.alloc(big);
        // SAFETY: from `alloc` with this layout.
        unsafe { cache.free(b, big) };
    }

    #[test]
    fn cached_box_drops_its_value_once() {
        let token = std::rc::Rc::new(());
        let boxed = CachedBox::new_with(|| token.clone());
        assert_eq!(std::rc::Rc::strong_count(&token), 2);
        drop(boxed);
        assert_eq!(std::rc::Rc::strong_count(&token), 1);
    }
}
