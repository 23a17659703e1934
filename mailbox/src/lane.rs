//! [`Lane`]: the FIFO a mailbox keeps its messages in.
//!
//! A growable ring buffer with a power-of-two capacity and free-running
//! `u32` positions, so that a push is a compare, a masked store and an
//! increment, and a pop the same in reverse (measured with callgrind on the
//! tell path: about half the instructions of `VecDeque`'s wrap-around
//! arithmetic).
//!
//! # Invariants
//!
//! 1. `cap` is the capacity: zero (no buffer yet) or a power of two, and
//!    `mask` is `cap - 1`. For zero-sized `T` no buffer is ever allocated
//!    and the capacity is taken as `u32::MAX` (`mask` then masks nothing).
//! 2. `tail - head` (wrapping) is the number of values, at most the
//!    capacity; the values live in the slots `head & mask .. tail & mask`
//!    (wrapping around the end of the buffer), oldest first. Every other
//!    slot is uninitialised.
//! 3. Each value is moved out exactly once: by `pop` (which advances `head`
//!    past it) or by `Drop`.

use std::alloc::{self, Layout};
use std::marker::PhantomData;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::ptr::NonNull;

/// A single-threaded FIFO queue (see the module docs).
pub struct Lane<T> {
    buf: NonNull<MaybeUninit<T>>,
    cap: u32,
    mask: u32,
    head: u32,
    tail: u32,
    _owns: PhantomData<T>,
}

// SAFETY: a `Lane` owns its values like a `Vec` does; moving it to another
// thread moves them, which is sound when `T: Send`.
unsafe impl<T: Send> Send for Lane<T> {}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Lane<T> {
    /// An empty lane; allocates nothing until the first push.
    pub const fn new() -> Self {
        Self {
            buf: NonNull::dangling(),
            cap: if size_of::<T>() == 0 { u32::MAX } else { 0 },
            mask: u32::MAX,
            head: 0,
            tail: 0,
            _owns: PhantomData,
        }
    }

    /// Number of values queued.
    #[inline]
    pub fn len(&self) -> usize {
        self.tail.wrapping_sub(self.head) as usize
    }

    /// Whether no value is queued.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    #[inline]
    fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// Queues `value` behind every other value.
    #[inline]
    pub fn push(&mut self, value: T) {
        if self.len() == self.capacity() {
            self.grow();
        }
        // SAFETY: after `grow` there is a free slot at `tail` (invariant 2),
        // inside the buffer because the index is masked.
        let slot = unsafe { self.buf.as_ptr().add((self.tail & self.mask) as usize) };
        // SAFETY: `slot` is a free slot of the buffer, valid for a write.
        unsafe { write_by_words(slot.cast::<T>(), value) };
        self.tail = self.tail.wrapping_add(1);
    }

    /// Takes the oldest value.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.head == self.tail {
            return None;
        }
        // SAFETY: not empty, just checked.
        Some(unsafe { self.pop_unchecked() })
    }

    /// Takes the oldest value of a lane known not to be empty. Unlike
    /// `pop`, the value is not wrapped in an `Option` that the caller
    /// unwraps again: for a value type whose `Option` uses a niche, that
    /// would test the niche of a value just read (two instructions per
    /// message on the receive path).
    ///
    /// # Safety
    /// The lane is not empty.
    #[inline]
    pub unsafe fn pop_unchecked(&mut self) -> T {
        debug_assert!(!self.is_empty());
        // SAFETY: the lane is not empty (caller's contract), so the slot at
        // `head` holds the oldest value (invariant 2); advancing `head`
        // right after means it is never read again (invariant 3).
        let value = unsafe {
            self.buf
                .as_ptr()
                .add((self.head & self.mask) as usize)
                .read()
                .assume_init()
        };
        self.head = self.head.wrapping_add(1);
        value
    }

    /// Iterates over the queued values, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        (0..self.tail.wrapping_sub(self.head)).map(move |i| {
            let at = (self.head.wrapping_add(i) & self.mask) as usize;
            // SAFETY: slots between `head` and `tail` hold values
            // (invariant 2), borrowed as long as `self` is.
            unsafe { (*self.buf.as_ptr().add(at)).assume_init_ref() }
        })
    }

    /// Doubles the capacity (at least 4), keeping the order.
    ///
    /// The buffer is grown with `realloc`, which extends it in place or
    /// remaps its pages when it can, so a flood that grows a mailbox to
    /// millions of messages does not copy them at every doubling (measured
    /// with callgrind on the tell path at 100,000 queued messages: the
    /// copies were 23 of the 196 instructions per message). Only the
    /// values that had wrapped around to the start of the old buffer are
    /// moved, to just past its old end.
    #[cold]
    fn grow(&mut self) {
        assert!(size_of::<T>() != 0, "more than 2^32 - 1 queued values");
        let old_cap = self.capacity();
        let new_cap = (old_cap * 2).max(4);
        assert!(new_cap <= 1 << 31, "lane capacity overflow");
        let layout = Layout::array::<MaybeUninit<T>>(new_cap).expect("lane capacity overflow");
        let raw = if old_cap == 0 {
            // SAFETY: `layout` has a non-zero size (`T` is not zero-sized
            // and `new_cap >= 4`).
            unsafe { alloc::alloc(layout) }
        } else {
            let old = Layout::array::<MaybeUninit<T>>(old_cap).expect("valid before");
            // SAFETY: the buffer was allocated with `old` (by `alloc` or an
            // earlier `realloc` here); the new size is non-zero and, being
            // a valid array layout's, does not overflow `isize`.
            unsafe { alloc::realloc(self.buf.as_ptr().cast(), old, layout.size()) }
        };
        let Some(buf) = NonNull::new(raw.cast::<MaybeUninit<T>>()) else {
            alloc::handle_alloc_error(layout)
        };
        // `realloc` kept the old contents (and freed the old buffer if it
        // moved). The values sit in at most two runs: `start..old_cap`,
        // which stays where it is, then `0..wrapped`, which moves to
        // `old_cap..old_cap + wrapped` so that the run is contiguous again
        // under the new mask.
        let len = self.len();
        let start = if old_cap == 0 {
            0
        } else {
            (self.head & self.mask) as usize
        };
        let wrapped = len - len.min(old_cap - start);
        if wrapped > 0 {
            // SAFETY: `0..wrapped` are live values of the old buffer
            // (invariant 2), now at the start of the new one;
            // `old_cap..old_cap + wrapped` is fresh room (`wrapped <= start
            // <= old_cap` and the new capacity is `2 * old_cap`), so the
            // ranges do not overlap. Each value is moved once and its old
            // slot is treated as uninitialised from here on.
            unsafe {
                std::ptr::copy_nonoverlapping(buf.as_ptr(), buf.as_ptr().add(old_cap), wrapped);
            }
        }
        self.buf = buf;
        self.cap = new_cap as u32;
        self.mask = (new_cap - 1) as u32;
        // Positions `start..start + len` now index the live run directly.
        self.head = start as u32;
        self.tail = (start + len) as u32;
    }

    /// Frees the buffer (not the values).
    fn free_buffer(&mut self) {
        if size_of::<T>() != 0 && self.cap != 0 {
            let layout = Layout::array::<MaybeUninit<T>>(self.capacity()).expect("valid before");
            // SAFETY: the buffer was allocated by `grow` with this layout.
            unsafe { alloc::dealloc(self.buf.as_ptr().cast(), layout) };
            self.buf = NonNull::dangling();
            self.cap = 0;
            self.mask = u32::MAX;
        }
    }

    /// Moves every value out, oldest first, and frees the buffer.
    pub fn take(&mut self) -> std::collections::VecDeque<T> {
        let mut out = std::collections::VecDeque::with_capacity(self.len());
        while let Some(value) = self.pop() {
            out.push_back(value);
        }
        self.free_buffer();
        self.head = 0;
        self.tail = 0;
        out
    }
}

impl<T> Drop for Lane<T> {
    /// Inline when there is nothing to drop or free (a process that only
    /// ever held one message at a time never allocates a buffer), so that
    /// dropping an unused lane costs a test, not a call.
    #[inline]
    fn drop(&mut self) {
        if self.head != self.tail || (size_of::<T>() != 0 && self.cap != 0) {
            self.drop_values_and_buffer();
        }
    }
}

impl<T> Lane<T> {
    #[inline(never)]
    fn drop_values_and_buffer(&mut self) {
        while let Some(value) = self.pop() {
            drop(value);
        }
        self.free_buffer();
    }
}

/// Moves `value` to `dst`, 8 bytes at a time when its layout allows
/// (the layouts [`copy_by_words`] copies by words).
///
/// Unlike `copy_by_words` the *stores* are volatile and the loads plain:
/// the compiler keeps a value it has just built in registers and stores
/// each word straight into the slot, so no load of a fresh narrow store
/// is left to stall, and none of the value's trip through a stack
/// temporary either (callgrind, same-shard tell: 91.1 to 86.1
/// instructions, with the volatile loads of `copy_by_words` here; the
/// stores stay 8 bytes wide, which is what keeps the compiler from
/// merging them into the 16-byte copy of a stack temporary that stalled).
///
/// # Safety
/// `dst` is valid for a write of a `T` and aligned for it.
#[inline(always)]
pub(crate) unsafe fn write_by_words<T>(dst: *mut T, value: T) {
    const WORD: usize = size_of::<u64>();
    // `ManuallyDrop` keeps the original from being dropped: the value is
    // moved bit for bit, one value, one owner.
    let value = ManuallyDrop::new(value);
    if align_of::<T>() >= WORD && size_of::<T>() % WORD == 0 && size_of::<T>() <= 8 * WORD {
        let src = (&*value as *const T).cast::<MaybeUninit<u64>>();
        let dst = dst.cast::<MaybeUninit<u64>>();
        for i in 0..size_of::<T>() / WORD {
            // SAFETY: as in `copy_by_words`.
            unsafe { dst.add(i).write_volatile(src.add(i).read()) };
        }
    } else {
        // SAFETY: `value` is a live `T` on the stack, `dst` is the caller's.
        unsafe { std::ptr::copy_nonoverlapping(&*value, dst, 1) };
    }
}

/// Moves the value at `src` out, reading it 8 bytes at a time when its
/// layout allows (see [`copy_by_words`]).
///
/// # Safety
/// As for `ptr::read`: `src` is valid for reads of a `T` and aligned, and
/// the caller treats the value there as moved out.
#[inline(always)]
pub unsafe fn read_by_words<T>(src: *const T) -> T {
    let mut out = MaybeUninit::<T>::uninit();
    // SAFETY: the caller's contract for `src`; `out` is a fresh `T`-sized
    // slot, and after the copy it holds every byte of the `T` at `src`.
    unsafe {
        copy_by_words(src, out.as_mut_ptr());
        out.assume_init()
    }
}

/// Copies the `T` at `src` to `dst` with 8-byte loads, one per word, when
/// `T` is 8-aligned, a whole number of words and at most 64 bytes; with a
/// plain copy otherwise. It copies bits; ownership is the caller's affair.
///
/// Why: a message is usually built field by field (8-byte stores) in a
/// stack slot just before it is queued, and the compiler copies such a
/// slot with 16-byte loads. A load that spans two recent stores cannot be
/// forwarded from the store buffer: it waits until they reach the cache,
/// behind every older store. On the same-shard tell path that wait was
/// about half of a tell, and on the cross-shard sender the two hottest
/// instructions (`perf annotate`). Loads of exactly the width of those
/// stores are forwarded. Volatile loads keep the compiler from merging
/// them back; the stores are ordinary.
///
/// # Safety
/// `src` is valid for reads and `dst` for writes of a `T`, both aligned,
/// and they do not overlap.
#[inline(always)]
pub unsafe fn copy_by_words<T>(src: *const T, dst: *mut T) {
    const WORD: usize = size_of::<u64>();
    if align_of::<T>() >= WORD && size_of::<T>() % WORD == 0 && size_of::<T>() <= 8 * WORD {
        let src = src.cast::<MaybeUninit<u64>>();
        let dst = dst.cast::<MaybeUninit<u64>>();
        for i in 0..size_of::<T>() / WORD {
            // SAFETY: `T` is a whole number of 8-aligned words, so word
            // `i` lies inside both `*src` and `*dst`, both aligned for
            // `u64`; `MaybeUninit` may hold any bytes, padding included.
            unsafe { dst.add(i).write(src.add(i).read_volatile()) };
        }
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(src, dst, 1) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_by_words_moves_word_sized_and_odd_values_intact() {
        // Word path: 8-aligned, whole words, a `String` (owner) inside.
        let words = ManuallyDrop::new((7u64, String::from("owned"), u64::MAX));
        // SAFETY: read once; `words` is never dropped (ManuallyDrop), so
        // the `String` has one owner.
        let moved = unsafe { read_by_words(&*words) };
        assert_eq!(moved, (7, "owned".to_string(), u64::MAX));
        // Fallback path: not a whole number of words.
        let odd = (3u8, 0xbeefu16, -5i32);
        // SAFETY: `Copy` data, valid and aligned.
        assert_eq!(unsafe { read_by_words(&odd) }, odd);
        // Too large for the word path (72 bytes).
        let big = [9u64; 9];
        // SAFETY: as above.
        assert_eq!(unsafe { read_by_words(&big) }, big);
    }
    use std::rc::Rc;

    #[test]
    fn values_of_every_layout_move_intact_and_drop_once() {
        // Word-copied: 8-aligned, a whole number of words, with a `Drop`
        // (24 bytes), and with padding (a 1-byte field in a 16-byte
        // value). Copied plainly: smaller alignment, and too large.
        let drops = Rc::new(());
        let mut strings = Lane::new();
        let mut padded = Lane::new();
        let mut bytes = Lane::new();
        let mut large = Lane::new();
        for i in 0..100u64 {
            strings.push((i.to_string(), Rc::clone(&drops)));
            padded.push((i as u8, i));
            bytes.push([i as u8; 3]);
            large.push([i; 9]);
        }
        assert_eq!(Rc::strong_count(&drops), 101);
        for i in 0..100u64 {
            let (s, rc) = strings.pop().unwrap();
            assert_eq!(s, i.to_string());
            drop(rc);
            assert_eq!(padded.pop(), Some((i as u8, i)));
            assert_eq!(bytes.pop(), Some([i as u8; 3]));
            assert_eq!(large.pop(), Some([i; 9]));
        }
        assert_eq!(Rc::strong_count(&drops), 1, "each value dropped once");
    }

    #[test]
    fn fifo_across_growth_and_wrap_around() {
        let mut lane = Lane::new();
        let (mut next_in, mut next_out) = (0u64, 0u64);
        for round in 0..1000 {
            for _ in 0..(round % 7 + 1) {
                lane.push(next_in);
                next_in += 1;
            }
            for _ in 0..(round % 5 + 1) {
                if let Some(v) = lane.pop() {
                    assert_eq!(v, next_out);
                    next_out += 1;
                }
            }
            assert_eq!(lane.len() as u64, next_in - next_out);
        }
        while let Some(v) = lane.pop() {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, next_in);
        assert!(lane.is_empty());
    }

    #[test]
    fn positions_wrap_past_u32_max() {
        let mut lane = Lane::new();
        lane.head = u32::MAX - 2;
        lane.tail = u32::MAX - 2;
        for i in 0..10 {
            lane.push(i);
        }
        assert_eq!(
            lane.iter().copied().collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        for i in 0..10 {
            assert_eq!(lane.pop(), Some(i));
        }
        assert_eq!(lane.pop(), None);
    }

    #[test]
    fn every_value_dropped_exactly_once() {
        let token = Rc::new(());
        {
            let mut lane = Lane::new();
            for _ in 0..37 {
                lane.push(token.clone());
            }
            drop(lane.pop());
            let taken = lane.take();
            assert_eq!(taken.len(), 36);
            for _ in 0..5 {
                lane.push(token.clone());
            }
            assert_eq!(Rc::strong_count(&token), 42);
        }
        assert_eq!(Rc::strong_count(&token), 1);
    }

    #[test]
    fn growing_a_wrapped_lane_keeps_the_order() {
        // Fill to capacity with the live run wrapped around the end of the
        // buffer at every possible offset, then grow.
        for offset in 0..16u64 {
            let mut lane = Lane::new();
            for i in 0..16u64 {
                lane.push(i);
            }
            for i in 0..offset {
                assert_eq!(lane.pop(), Some(i));
            }
            for i in 16..16 + offset {
                lane.push(i);
            }
            assert_eq!(lane.len(), 16);
            lane.push(16 + offset); // grows: 16 -> 32
            lane.push(17 + offset);
            let expected: Vec<u64> = (offset..18 + offset).collect();
            assert_eq!(lane.iter().copied().collect::<Vec<_>>(), expected);
            for v in expected {
                assert_eq!(lane.pop(), Some(v));
            }
            assert!(lane.is_empty());
        }
    }

    #[test]
    fn zero_sized_values() {
        let mut lane = Lane::new();
        for _ in 0..1000 {
            lane.push(());
        }
        assert_eq!(lane.len(), 1000);
        assert_eq!(lane.iter().count(), 1000);
        while lane.pop().is_some() {}
        assert!(lane.is_empty());
    }

    #[test]
    fn an_empty_lane_is_small() {
        assert!(size_of::<Lane<[u64; 4]>>() <= 24);
    }
}
