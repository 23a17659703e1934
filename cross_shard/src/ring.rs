//! Bounded single-producer/single-consumer ring with explicit publication.
//!
//! [`ring()`] returns a [`Producer`] and a [`Consumer`] sharing one buffer of
//! `capacity` slots (rounded up to a power of two). The producer stages values
//! with [`Producer::push`] and makes a whole batch visible at once in
//! [`Producer::publish`]: a release store of the batch's end into the stamp
//! of its first slot, then one of `tail`. The consumer takes values with
//! [`Consumer::pop`] or, batched, with [`Consumer::drain`]; one that waits
//! for work ([`Consumer::is_empty`]) polls the stamp, which lies in the
//! cache line of the first value it will read.
//!
//! # Invariants
//!
//! The shared state holds two counters, `head` and `tail`. They count values
//! ever consumed and ever published; they are never reduced modulo the
//! capacity and wrap only at `usize::MAX` (all arithmetic on them is
//! `wrapping_*`). A counter `i` names slot `i & mask`.
//!
//! 1. **`tail` is written only by the producer** (in `publish`, which `Drop`
//!    also calls). The producer keeps a private `write` counter, with
//!    `tail <= write` (in wrapping order): values in `[tail, write)` are
//!    pushed but not yet published. The first of them (`tail`, when any)
//!    waits in the producer's own `staged` field and the rest in their
//!    slots; `publish` moves it into its slot just before stamping that
//!    slot, so the one line a waiting consumer polls (invariant 7) is
//!    written once per batch, all at once.
//! 2. **`head` is written only by the consumer** (and, once the consumer is
//!    gone for good, by [`Producer::reclaim`], which then owns every slot). The consumer keeps a private
//!    `read` counter which equals `head` whenever none of its methods is
//!    running (`pop` stores after each value; `drain` stores once at the end,
//!    from a drop guard so that a panicking callback cannot skip it).
//! 3. `0 <= write - head <= capacity`. `push` checks this against a cached
//!    copy of `head`; the cache can only lag, which makes the ring look
//!    fuller than it is, never emptier. Likewise the consumer's cached `tail`
//!    can only lag the stamps (invariant 7), which makes the ring look
//!    emptier, never fuller.
//! 4. **Slot ownership.** Slots in `[head, tail)` hold initialised values and
//!    belong to the consumer; slots in `[tail, head + capacity)` belong to
//!    the producer, of which `[tail, write)` hold initialised values. A slot
//!    moves from producer to consumer by the release store of `tail`
//!    (acquired by the consumer's load of `tail`, or of the slot's stamp,
//!    invariant 7) and back by the release
//!    store of `head` (acquired by the producer's load of `head`). Neither side
//!    ever touches a slot it does not own, so no slot is accessed by two
//!    threads without a happens-before edge between them (under loom the
//!    `UnsafeCell` accessors check exactly this).
//! 5. **Each value is moved out at most once.** The consumer moves a value out
//!    of its slot and advances `read` before it hands the value to anyone, so
//!    the slot is never read again even if the receiver of the value panics.
//! 6. **Who frees what.** A value taken by `pop`/`drain` belongs to the caller.
//!    Values still in the ring when the last endpoint goes are dropped by the
//!    shared state's `Drop`, on whichever thread released the last `Arc`
//!    reference. Because the producer publishes in its own `Drop`, every value
//!    ever pushed is in `[head, tail)` by then and is dropped exactly once; the
//!    slot array itself is freed right after.
//! 7. **Stamps.** Each slot also holds a stamp, written only by the producer,
//!    in `publish`: the first slot of each published batch `[published,
//!    write)` gets the stamp `write` (the batch's end), with a release store,
//!    before `tail` is stored. The consumer reads a stamp only at `read ==
//!    cached_tail`, which is always where a batch starts (`cached_tail` only
//!    ever holds batch ends, from `tail` or from a stamp, or the initial 0).
//!    A stamp left in that slot from an earlier lap is the end of a batch
//!    that started at least a capacity earlier and so is at most `read`;
//!    the current one is ahead of `read` by 1 to `capacity`. So a consumer
//!    that acquires a stamp ahead of `read` knows the batch up to it is
//!    published, with its writes visible: it owns those slots as if `tail`
//!    had passed them (invariant 4) and moves `cached_tail` to the stamp.
//!    Because the stamp is stored first, `tail` may for a moment trail
//!    `cached_tail` and even `head`; the consumer never moves `cached_tail`
//!    back on loading `tail`, the producer counts free slots from `write`
//!    and `head` only, and by the time both endpoints are gone the
//!    producer's last publish has stored the final `tail`, so invariant 6
//!    holds as written. A batch still becomes visible all at once.
//!
//!    Why: a waiting consumer polls the stamp ([`Consumer::is_empty`],
//!    [`Consumer::pop`]), which shares a cache line with the batch's first
//!    value, so a message crosses from one core to the other in one
//!    cache-line transfer instead of two in turn (`tail`, then the slot).
//!    With the first value staged (invariant 1), cross-shard ask round
//!    trips went from 479-536 to 363-377 ns here, side by side. A busy
//!    consumer reads `tail` ([`Consumer::drain`]): it learns of every
//!    published batch at once.

use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

use crate::sync::{Arc, AtomicBool, AtomicUsize, CachePadded, Ordering, UnsafeCell};

/// State shared by the two endpoints.
struct Inner<T> {
    /// Counter of values consumed; stored only by the consumer (invariant 2).
    head: CachePadded<AtomicUsize>,
    /// Counter of values published; stored only by the producer (invariant 1).
    tail: CachePadded<AtomicUsize>,
    /// `capacity` slots; see invariant 4 for which side may touch which.
    slots: Box<[Slot<T>]>,
    /// `capacity - 1`; capacity is a power of two.
    mask: usize,
    /// Cleared when the `Producer` is dropped (after its final publish).
    producer_alive: AtomicBool,
    /// Cleared when the `Consumer` is dropped.
    consumer_alive: AtomicBool,
}

// SAFETY: the only non-`Sync` parts of `Inner` are the slot cells. They are
// shared between exactly two endpoints, each of which touches only the slots
// it owns per invariant 4, with ownership handed over by release/acquire pairs
// on `head` and `tail`. Values of type `T` cross threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Inner<T> {}
// SAFETY: `Inner` owns `T` values and may drop them on whichever thread drops
// the last reference, which is sound when `T: Send`.
unsafe impl<T: Send> Send for Inner<T> {}

impl<T> Inner<T> {
    #[inline(always)]
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// The slot counter `index` names (invariants: `index & mask`).
    ///
    /// Unchecked: a bounds check here was three instructions per use, and
    /// a cross-shard send uses it two or three times (the slot it writes,
    /// the one it prefetches, the stamp at a publish); callgrind put 23 of
    /// a sender's 99 instructions per message on this line.
    #[inline(always)]
    fn slot(&self, index: usize) -> &Slot<T> {
        let at = index & self.mask;
        debug_assert!(at < self.slots.len());
        // SAFETY: `ring()` makes `slots` exactly `mask + 1` long (a power
        // of two) and neither ever changes, so `index & mask <= mask` is
        // in bounds.
        unsafe { self.slots.get_unchecked(at) }
    }
}

/// One slot: a value and a stamp, in one cache line when the value fits
/// beside the stamp (56 bytes on 64-bit targets), so a consumer learns that
/// a batch is published from the line it reads the batch's first value
/// from (invariant 7).
#[repr(C, align(64))]
struct Slot<T> {
    /// `i + 1` (wrapping) once value `i` in this slot is published.
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// How many slots ahead of the one it writes the producer prefetches (one
/// publication batch of the shards). Measured side by side on the
/// cross-shard tell: 8, 16, 32 and 64 all took 18.8-22.3 ns per message,
/// against 21.8-24.7 ns without the prefetch.
const PREFETCH_AHEAD: usize = 16;

/// Hints the CPU to fetch the cache line at `at` in a state it can write
/// (`prefetchw`). A hint only: no architectural effect, no fault, and a
/// no-op under loom and off x86-64.
#[inline(always)]
fn prefetch_for_write<T>(at: *const T) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    // SAFETY: `prefetchw` reads and writes no memory that Rust can observe,
    // cannot fault (an invalid address is ignored), and changes no
    // registers or flags; it only moves a cache line.
    unsafe {
        std::arch::asm!(
            "prefetchw [{0}]",
            in(reg) at,
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = at;
}

/// Bytes one slot of a ring of `T` takes: the value, its stamp, and padding
/// to a whole number of cache lines. A value of up to 56 bytes (and
/// alignment up to 8) gets a slot of one 64-byte line.
pub const fn slot_size<T>() -> usize {
    std::mem::size_of::<Slot<T>>()
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        if !std::mem::needs_drop::<T>() {
            return;
        }
        // Relaxed (both loads): `&mut self` means both endpoints are gone; the
        // partner is the release/acquire pair inside the `Arc` reference
        // count, which already ordered their last stores before this point.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let mut index = head;
        while index != tail {
            self.slot(index).value.with_mut(|slot| {
                // SAFETY: by invariants 4 and 6 every slot in `[head, tail)`
                // holds an initialised value that nobody moved out, and we
                // have exclusive access, so dropping it in place is the one
                // and only drop of that value.
                unsafe { (*slot).assume_init_drop() }
            });
            index = index.wrapping_add(1);
        }
    }
}

/// Creates a bounded SPSC ring holding at least `capacity` values.
///
/// The capacity is rounded up to the next power of two; read it back with
/// [`Producer::capacity`]. The two endpoints may be moved to different
/// threads. Values are freed exactly once: by whoever takes them out, or,
/// for values still inside, when the second of the two endpoints is dropped.
///
/// # Panics
///
/// Panics if `capacity` is 0, or if rounding it up to a power of two
/// overflows `usize`.
///
/// # Example
///
/// ```no_run
/// # // `no_run`: the loom run (`--cfg loom`) links doctests against loom's
/// # // atomics, which panic outside a model. Unit tests cover the same steps.
/// let (mut tx, mut rx) = corelet_cross_shard::ring::<u32>(3);
/// assert_eq!(tx.capacity(), 4);
/// tx.push(1).unwrap();
/// tx.push(2).unwrap();
/// assert_eq!(rx.pop(), None); // not published yet
/// assert_eq!(tx.publish(), 2);
/// assert_eq!(rx.pop(), Some(1));
/// assert_eq!(rx.pop(), Some(2));
/// ```
pub fn ring<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    assert!(capacity > 0, "ring capacity must be at least 1");
    let capacity = capacity
        .checked_next_power_of_two()
        .expect("ring capacity overflows usize when rounded to a power of two");
    let slots = (0..capacity)
        .map(|_| Slot {
            stamp: AtomicUsize::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        })
        .collect();
    let inner = Arc::new(Inner {
        head: CachePadded(AtomicUsize::new(0)),
        tail: CachePadded(AtomicUsize::new(0)),
        slots,
        mask: capacity - 1,
        producer_alive: AtomicBool::new(true),
        consumer_alive: AtomicBool::new(true),
    });
    let producer = Producer {
        inner: Arc::clone(&inner),
        write: 0,
        published: 0,
        cached_head: 0,
        staged: MaybeUninit::uninit(),
        _not_sync: PhantomData,
    };
    let consumer = Consumer {
        inner,
        read: 0,
        cached_tail: 0,
        _not_sync: PhantomData,
    };
    (producer, consumer)
}

/// Error returned by [`Producer::push`] when the ring has no free slot; it
/// hands the rejected value back.
///
/// `Debug` prints `Full(..)` and does not require `T: Debug`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> Full<T> {
    /// Returns the value that could not be pushed.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ring is full")
    }
}

impl<T> std::error::Error for Full<T> {}

/// The writing end of a [`ring()`].
///
/// `Send` when `T: Send`, but not `Sync` and not `Clone`: exactly one thread
/// produces. Dropping the producer publishes anything still unpublished.
///
/// ```compile_fail
/// fn shared<S: Sync>() {}
/// shared::<corelet_cross_shard::Producer<u8>>();
/// ```
// Aligned to 128 bytes (two cache lines: the adjacent-line prefetcher
// fetches pairs): the endpoint's counters are written on every push or
// publish, and an endpoint kept in a `Vec` beside another thread's
// endpoint shared its line with it (see `Consumer`).
#[repr(align(128))]
pub struct Producer<T> {
    inner: Arc<Inner<T>>,
    /// Next counter to write; `published <= write` (invariant 1).
    write: usize,
    /// The producer's own copy of `tail` (it is the only writer).
    published: usize,
    /// Last value loaded from `head`; never ahead of it (invariant 3).
    cached_head: usize,
    /// The first value of the batch being pushed: initialised exactly when
    /// `write != published` (invariant 1).
    staged: MaybeUninit<T>,
    /// `Cell` is `Send` but not `Sync`: this keeps the endpoint `!Sync`.
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl<T> Producer<T> {
    /// Number of slots (the requested capacity rounded up to a power of two).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Reloads the consumer's `head` into the cache.
    #[inline]
    fn refresh_head(&mut self) {
        // Acquire: pairs with the Release stores of `head` in `Consumer::pop`
        // and `DrainGuard::drop`; the consumer's moves out of those slots
        // happen before our next writes into them.
        self.cached_head = self.inner.head.load(Ordering::Acquire);
    }

    /// Writes `value` into the next free slot without publishing it.
    ///
    /// The value becomes visible to the consumer only at the next
    /// [`publish`](Self::publish) (or when the producer is dropped). If the
    /// ring is full even after re-reading the consumer's position, the value
    /// is handed back in [`Full`]; it is never dropped here.
    pub fn push(&mut self, value: T) -> Result<(), Full<T>> {
        // One code path for both ways in, so the loom models of `push`
        // cover `push_with`.
        self.push_with(|| value).map_err(|make| Full(make()))
    }

    /// Like [`push`](Self::push), but builds the value only once a slot is
    /// known to be free, and builds it straight where it waits (its slot,
    /// or for the first value of a batch the producer's staging field,
    /// invariant 1): `make` runs at most once, and a value assembled from fields just written is not
    /// copied through a temporary (a wide reload of narrow stores that the
    /// CPU cannot forward stalls it, seen with `perf annotate` on the
    /// cross-shard send path). If the ring is full, `make` is handed back
    /// unrun.
    #[inline(always)]
    pub fn push_with<F: FnOnce() -> T>(&mut self, make: F) -> Result<(), F> {
        let capacity = self.capacity();
        if self.write.wrapping_sub(self.cached_head) == capacity {
            self.refresh_head();
            if self.write.wrapping_sub(self.cached_head) == capacity {
                return Err(make);
            }
        }
        if self.write == self.published {
            // The first value of a batch waits here until `publish`
            // (invariant 1): nothing is initialised in `staged` now, and
            // if `make` panics nothing is written and `write` stays.
            self.staged.write(make());
            self.write = self.write.wrapping_add(1);
            return Ok(());
        }
        // Ask for the line of a slot a batch ahead, for writing, if it is
        // already free: the consumer's core holds it (it read it a lap
        // ago), and a store that has to fetch it first stalls the producer
        // once the store buffer fills (half of a cross-shard sender's
        // samples were on one such store). Not for a slot the consumer
        // still owns: taking its line away would slow the consumer.
        let ahead = self.write.wrapping_add(PREFETCH_AHEAD);
        if ahead.wrapping_sub(self.cached_head) < capacity {
            prefetch_for_write(self.inner.slot(ahead));
        }
        self.inner.slot(self.write).value.with_mut(|slot| {
            // SAFETY: as in `push`: the slot lies in `[write, head +
            // capacity)`, owned by the producer and holding no live value
            // (invariant 4). If `make` panics nothing was written and
            // `write` has not moved, so the slot stays free.
            unsafe { (*slot).write(make()) };
        });
        self.write = self.write.wrapping_add(1);
        Ok(())
    }

    /// Makes every value pushed so far visible to the consumer at once (a
    /// release store of the batch's end into its first slot's stamp, then
    /// one of `tail`) and returns how many became visible.
    ///
    /// Returns 0 and stores nothing when there was nothing to publish. After
    /// a non-zero return, a sender that shares a [`Doorbell`] with the
    /// consumer should call [`Doorbell::ring`].
    ///
    /// [`Doorbell`]: crate::Doorbell
    /// [`Doorbell::ring`]: crate::Doorbell::ring
    pub fn publish(&mut self) -> usize {
        let count = self.write.wrapping_sub(self.published);
        if count != 0 {
            self.inner.slot(self.published).value.with_mut(|slot| {
                // SAFETY: `write != published`, so `staged` holds the
                // batch's first value (invariant 1), read out once here;
                // its slot, at `published` = `tail`, is the producer's
                // and free (invariant 4). `published` moves below, so
                // `staged` counts as empty again.
                unsafe { (*slot).write(self.staged.assume_init_read()) };
            });
            // The batch's first slot gets the batch's end as its stamp
            // (invariant 7), before `tail`: the stamp is what a waiting
            // consumer polls, and on x86 (stores become visible in order)
            // a stamp stored after `tail` would wait for the `tail` line,
            // which a busy consumer reads, to come back.
            // Release: pairs with the Acquire load in `Consumer::stamped`;
            // the batch's writes happen before the consumer reads them.
            self.inner
                .slot(self.published)
                .stamp
                .store(self.write, Ordering::Release);
            // Release: pairs with the Acquire load of `tail` in
            // `Consumer::refresh_tail`; our slot writes happen before the
            // consumer reads them.
            self.inner.tail.store(self.write, Ordering::Release);
            self.published = self.write;
        }
        count
    }

    /// Whether a [`push`](Self::push) would succeed now. Re-reads the
    /// consumer's position only when the cached one shows the ring full
    /// (as `push` does), so it costs no cache miss while there is room.
    pub fn has_room(&mut self) -> bool {
        let capacity = self.capacity();
        if self.write.wrapping_sub(self.cached_head) == capacity {
            self.refresh_head();
        }
        self.write.wrapping_sub(self.cached_head) < capacity
    }

    /// Number of values pushed but not yet published.
    #[inline]
    pub fn unpublished(&self) -> usize {
        self.write.wrapping_sub(self.published)
    }

    /// Number of values that can be pushed right now without getting
    /// [`Full`], counting unpublished values as occupying their slots.
    ///
    /// Re-reads the consumer's position when the cached one shows any slot
    /// in use, so the answer is as fresh as one load can make it.
    pub fn free_slots(&mut self) -> usize {
        if self.write != self.cached_head {
            self.refresh_head();
        }
        self.capacity() - self.write.wrapping_sub(self.cached_head)
    }

    /// Returns `true` once the [`Consumer`] has been dropped; pushed values
    /// will then never be taken (they are dropped with the ring).
    pub fn is_abandoned(&self) -> bool {
        // Acquire: pairs with the Release store in `Consumer::drop`, so the
        // consumer's final `head` is visible after we observe it gone.
        !self.inner.consumer_alive.load(Ordering::Acquire)
    }

    /// Once the [`Consumer`] is gone ([`is_abandoned`](Self::is_abandoned)),
    /// takes back every value it never took, published or not, oldest
    /// first, calling `f` on each; returns how many. Returns 0 (and takes
    /// nothing) while the consumer is alive.
    ///
    /// This lets a sender learn at once that what it queued for a receiver
    /// that has finished will never run (and drop it where it chooses),
    /// instead of waiting for the ring itself to be dropped.
    pub fn reclaim(&mut self, mut f: impl FnMut(T)) -> usize {
        if !self.is_abandoned() {
            return 0;
        }
        // Every value into its slot first (invariant 1); no one reads the
        // stamp or `tail` any more.
        self.publish();
        // Acquire: `is_abandoned` above acquired the consumer's final
        // `consumer_alive` store, which follows its last `head` store; this
        // load (of a value nobody writes any more) reads that last store.
        let head = self.inner.head.load(Ordering::Acquire);
        let count = self.write.wrapping_sub(head);
        let mut index = head;
        while index != self.write {
            let value = self.inner.slot(index).value.with(|slot| {
                // SAFETY: the consumer is gone (invariant 6: it touches no
                // slot after its `Drop`, whose store we acquired), so every
                // slot is the producer's; slots in `[head, write)` hold the
                // values it pushed and nobody took (invariant 4), each read
                // exactly once here as `index` advances (invariant 5).
                unsafe { (*slot).assume_init_read() }
            });
            index = index.wrapping_add(1);
            // Move `head` past the value before handing it out, so that if
            // `f` panics the ring's `Drop` does not drop it a second time.
            // Relaxed: the consumer is gone; the partner of the shared
            // state's `Drop` is the `Arc`'s release/acquire.
            self.inner.head.store(index, Ordering::Relaxed);
            self.cached_head = index;
            f(value);
        }
        // Nothing is left to publish: the slots are the producer's again.
        // Release for symmetry with `publish` (no reader remains).
        self.inner.tail.store(self.write, Ordering::Release);
        self.published = self.write;
        count
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Publish first so the shared state's `Drop` sees (and drops) every
        // value ever pushed (invariant 6).
        self.publish();
        // Release: pairs with the Acquire load in `Consumer::is_abandoned`;
        // the final `tail` store above is visible to a consumer that sees
        // the producer gone.
        self.inner.producer_alive.store(false, Ordering::Release);
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("write", &self.write)
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

/// The reading end of a [`ring()`].
///
/// `Send` when `T: Send`, but not `Sync` and not `Clone`: exactly one thread
/// consumes.
///
/// ```compile_fail
/// fn shared<S: Sync>() {}
/// shared::<corelet_cross_shard::Consumer<u8>>();
/// ```
// Aligned to 128 bytes (two cache lines: the adjacent-line prefetcher
// fetches pairs): `read` and `cached_tail` are written on every take, and
// a runtime builds every shard's list of consumers on one thread, so two
// shards' consumers sat in one cache line and each drain took it from
// the other core (`perf annotate`: a quarter of `drain_inbound`'s samples
// on loading them, on a cross-shard ask's critical path).
#[repr(align(128))]
pub struct Consumer<T> {
    inner: Arc<Inner<T>>,
    /// Next counter to read; equals `head` between method calls (invariant 2).
    read: usize,
    /// Last value loaded from `tail`; never ahead of it (invariant 3).
    cached_tail: usize,
    /// `Cell` is `Send` but not `Sync`: this keeps the endpoint `!Sync`.
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// Publishes the consumer's `read` counter as `head` when dropped, so that
/// [`Consumer::drain`] releases the slots it took even if its callback
/// panics.
struct DrainGuard<'a, T>(&'a mut Consumer<T>);

impl<T> Drop for DrainGuard<'_, T> {
    fn drop(&mut self) {
        // Release: pairs with the Acquire load in `Producer::refresh_head`;
        // our moves out of the drained slots happen before the producer
        // reuses them.
        self.0.inner.head.store(self.0.read, Ordering::Release);
    }
}

impl<T> Consumer<T> {
    /// Number of slots (the requested capacity rounded up to a power of two).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Reloads the producer's `tail` into the cache.
    #[inline]
    fn refresh_tail(&mut self) {
        // Acquire: pairs with the Release store of `tail` in
        // `Producer::publish`; the producer's slot writes happen before our
        // reads of them.
        let tail = self.inner.tail.load(Ordering::Acquire);
        // `publish` stores the stamp before `tail` (invariant 7), so `tail`
        // may trail what the stamps already showed: never move the cache
        // back. Both distances are at most the capacity, so the signed
        // comparison is exact.
        if tail.wrapping_sub(self.read) as isize > self.cached_tail.wrapping_sub(self.read) as isize
        {
            self.cached_tail = tail;
        }
    }

    /// Whether a batch starting at `read` is published, judged by the stamp
    /// of its first slot (invariant 7): the line the first value will be
    /// read from, so a consumer that waits for work polls that line and no
    /// other. On `true`, `cached_tail` moves to the batch's end. Called only
    /// with `read == cached_tail`, which is always where a batch starts.
    #[inline(always)]
    fn stamped(&mut self) -> bool {
        let read = self.read;
        // Acquire: pairs with the Release store of the stamp in
        // `Producer::publish`; the batch's writes happen before our reads.
        let end = self.inner.slot(read).stamp.load(Ordering::Acquire);
        // A stamp left from an earlier lap is at most `read`; this lap's is
        // the end of the batch starting here, ahead of `read` by at most
        // the capacity, so the signed distance tells them apart.
        let there = end.wrapping_sub(read) as isize > 0;
        if there {
            self.cached_tail = end;
        }
        there
    }

    /// Moves the value at `read` out of the ring and advances `read`.
    ///
    /// # Safety
    ///
    /// `read != cached_tail` must hold, i.e. the slot at `read` lies in
    /// `[head, tail)` as of a `tail` value obtained by `refresh_tail` or a
    /// stamp read by `stamped`.
    #[inline]
    unsafe fn take(&mut self) -> T {
        let value = self.inner.slot(self.read).value.with(|slot| {
            // SAFETY: the caller guarantees the slot is in `[head, tail)`,
            // which the consumer owns and which holds an initialised value
            // whose write happened before our Acquire load of `tail` or of
            // the slot's stamp (invariants 4 and 7). Advancing `read` right
            // below means this value is never read again (invariant 5).
            unsafe { (*slot).assume_init_read() }
        });
        self.read = self.read.wrapping_add(1);
        value
    }

    /// Takes the oldest published value, or returns `None` if there is none.
    ///
    /// Frees the slot for the producer immediately (one release store per
    /// value); prefer [`drain`](Self::drain) for batches.
    pub fn pop(&mut self) -> Option<T> {
        if self.read == self.cached_tail && !self.stamped() {
            return None;
        }
        // SAFETY: `read != cached_tail` was just established.
        let value = unsafe { self.take() };
        // Release: pairs with the Acquire load in `Producer::refresh_head`;
        // our move out of the slot happens before the producer reuses it.
        self.inner.head.store(self.read, Ordering::Release);
        Some(value)
    }

    /// Takes up to `max` published values in FIFO order, calling `f` on each,
    /// and returns how many were taken.
    ///
    /// Takes what the consumer already knows to be published (from `tail`,
    /// or a stamp that [`is_empty`](Self::is_empty) read) and loads `tail`
    /// only when that is nothing; frees all taken slots with one release
    /// store at the end. If `f` panics, the values already
    /// handed to `f` (including the one it panicked on) count as taken: their
    /// slots are still released, and the remaining values stay in the ring,
    /// in order, for a later call. No value is dropped twice or leaked.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(T)) -> usize {
        // SAFETY: the callback moves each value out of its slot exactly
        // once, at once, and keeps no pointer.
        unsafe { self.drain_in_place(max, |at| f(at.read())) }
    }

    /// [`drain`](Self::drain), but `f` is handed a pointer to each value in
    /// its slot instead of the value: a consumer that runs what it takes
    /// (a closure stored inline, say) runs it where it lies, with no copy
    /// of the slot first. Same ordering, batching and panic rules as
    /// `drain`: the value `f` panicked on counts as taken.
    ///
    /// # Safety
    ///
    /// `f` takes ownership of the value behind the pointer: it moves it out
    /// or drops it in place, exactly once, before it returns (or panics),
    /// and keeps no copy of the pointer. A value it never takes is leaked,
    /// never dropped twice.
    pub unsafe fn drain_in_place(&mut self, max: usize, mut f: impl FnMut(*mut T)) -> usize {
        let mut available = self.cached_tail.wrapping_sub(self.read);
        if available == 0 {
            self.refresh_tail();
            available = self.cached_tail.wrapping_sub(self.read);
        }
        let count = available.min(max);
        if count == 0 {
            return 0;
        }
        let guard = DrainGuard(self);
        for _ in 0..count {
            let read = guard.0.read;
            // Advanced first: the value counts as taken even if `f` panics.
            guard.0.read = read.wrapping_add(1);
            guard.0.inner.slot(read).value.with_mut(|slot| {
                // SAFETY: fewer than `count <= cached_tail - read` values
                // were taken so far, so the slot at `read` lies in
                // `[head, tail)`: the consumer owns it and it holds an
                // initialised value whose write happened before our Acquire
                // load of `tail` or of its stamp (invariants 4 and 7). `f`
                // takes the value (the caller's contract) and `read` has
                // moved past it, so it is never read again (invariant 5).
                f(unsafe { (*slot).as_mut_ptr() })
            });
        }
        drop(guard);
        count
    }

    /// Returns `true` if no published value is waiting: reads (with acquire
    /// ordering) the stamp of the next slot when the cache shows none.
    ///
    /// This is the re-check of the sleep protocol: call it for every source
    /// after [`Doorbell::prepare_sleep`](crate::Doorbell::prepare_sleep).
    pub fn is_empty(&mut self) -> bool {
        self.read == self.cached_tail && !self.stamped()
    }

    /// Number of published values waiting, re-reading the producer's position.
    pub fn len(&mut self) -> usize {
        self.refresh_tail();
        self.cached_tail.wrapping_sub(self.read)
    }

    /// Returns `true` once the [`Producer`] has been dropped. Its final
    /// publish is then visible: once this returns `true` and
    /// [`is_empty`](Self::is_empty) returns `true`, no value will ever
    /// arrive.
    pub fn is_abandoned(&self) -> bool {
        // Acquire: pairs with the Release store in `Producer::drop`, which
        // follows the producer's final publish of `tail`.
        !self.inner.producer_alive.load(Ordering::Acquire)
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Release: pairs with the Acquire load in `Producer::is_abandoned`.
        self.inner.consumer_alive.store(false, Ordering::Release);
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    fn assert_send<S: Send>() {}

    #[test]
    fn endpoints_are_send() {
        assert_send::<Producer<String>>();
        assert_send::<Consumer<String>>();
    }

    /// Endpoints kept side by side (a runtime keeps every shard's
    /// consumers in lists built on one thread) never share a 128-byte
    /// block, so two threads' counters never share a cache line or an
    /// adjacent-line prefetch pair.
    #[test]
    fn endpoints_side_by_side_never_share_a_cache_line_pair() {
        let block = |addr: usize| addr / 128;
        let (tx_a, rx_a) = ring::<u64>(4);
        let (tx_b, rx_b) = ring::<u64>(4);
        let consumers = [rx_a, rx_b];
        let producers = [tx_a, tx_b];
        for pair in [
            [
                &consumers[0] as *const _ as usize,
                &consumers[1] as *const _ as usize,
            ],
            [
                &producers[0] as *const _ as usize,
                &producers[1] as *const _ as usize,
            ],
        ] {
            assert_ne!(block(pair[0]), block(pair[1]), "{pair:x?}");
            // Whole blocks: nothing else starts inside an endpoint's block.
            assert_eq!(pair[0] % 128, 0, "{pair:x?}");
            assert_eq!(pair[1] % 128, 0, "{pair:x?}");
        }
        assert_eq!(std::mem::size_of::<Consumer<u64>>() % 128, 0);
        assert_eq!(std::mem::size_of::<Producer<u64>>() % 128, 0);
    }

    #[test]
    fn capacity_rounds_up_to_power_of_two() {
        for (asked, got) in [(1, 1), (2, 2), (3, 4), (5, 8), (1000, 1024), (1024, 1024)] {
            let (tx, rx) = ring::<u8>(asked);
            assert_eq!(tx.capacity(), got, "asked for {asked}");
            assert_eq!(rx.capacity(), got, "asked for {asked}");
        }
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn zero_capacity_panics() {
        let _ = ring::<u8>(0);
    }

    #[test]
    fn has_room_agrees_with_push() {
        let (mut tx, mut rx) = ring::<u32>(4);
        for i in 0..4 {
            assert!(tx.has_room());
            tx.push(i).unwrap();
        }
        assert!(!tx.has_room(), "full, published or not");
        tx.publish();
        assert!(!tx.has_room());
        assert_eq!(rx.pop(), Some(0));
        assert!(tx.has_room(), "a taken value frees its slot");
        tx.push(4).unwrap();
        assert!(!tx.has_room());
        assert!(tx.push(5).is_err());
    }

    #[test]
    fn push_until_full_hands_value_back() {
        let (mut tx, mut rx) = ring::<String>(4);
        for i in 0..4 {
            tx.push(i.to_string()).unwrap();
        }
        assert_eq!(tx.free_slots(), 0);
        let Full(back) = tx.push("x".to_string()).unwrap_err();
        assert_eq!(back, "x");
        assert_eq!(format!("{:?}", Full(back)), "Full(..)");
        // Publishing frees nothing; only the consumer taking a value does.
        tx.publish();
        assert_eq!(tx.free_slots(), 0);
        assert_eq!(rx.pop().as_deref(), Some("0"));
        assert_eq!(tx.free_slots(), 1);
        tx.push("4".to_string()).unwrap();
        assert!(tx.push("5".to_string()).is_err());
    }

    #[test]
    fn push_with_builds_only_into_a_free_slot() {
        let (mut tx, mut rx) = ring::<String>(2);
        let built = std::cell::Cell::new(0);
        let build = |s: &str| {
            built.set(built.get() + 1);
            s.to_string()
        };
        assert!(tx.push_with(|| build("0")).is_ok());
        assert!(tx.push_with(|| build("1")).is_ok());
        let Err(make) = tx.push_with(|| build("x")) else {
            panic!("a full ring took a value")
        };
        assert_eq!(built.get(), 2, "not built when there is no room");
        assert_eq!(make(), "x", "handed back unrun");
        tx.publish();
        assert_eq!(rx.pop().as_deref(), Some("0"));
        assert_eq!(rx.pop().as_deref(), Some("1"));
    }

    #[test]
    fn nothing_visible_before_publish() {
        let (mut tx, mut rx) = ring::<u32>(8);
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        assert_eq!(tx.unpublished(), 2);
        assert!(rx.is_empty());
        assert_eq!(rx.len(), 0);
        assert_eq!(rx.pop(), None);
        assert_eq!(rx.drain(usize::MAX, |_| unreachable!()), 0);
        assert_eq!(tx.publish(), 2);
        assert_eq!(tx.unpublished(), 0);
        assert_eq!(tx.publish(), 0);
        assert!(!rx.is_empty());
        assert_eq!(rx.len(), 2);
        assert_eq!(rx.pop(), Some(1));
        assert_eq!(rx.pop(), Some(2));
        assert_eq!(rx.pop(), None);
    }

    #[test]
    fn a_waiting_consumer_takes_whole_batches_by_their_stamps() {
        // Batches of 1 to 4 values through a 4-slot ring, each seen by
        // `is_empty` (the stamp of its first slot, not `tail`) and taken
        // by `drain`: the whole batch, never a stale stamp from an earlier
        // lap, and `len` never moved back by a `tail` that trails.
        let (mut tx, mut rx) = ring::<u64>(4);
        let (mut next_in, mut next_out) = (0u64, 0u64);
        for round in 0..400 {
            let batch = [3, 1, 4, 2][round % 4];
            for _ in 0..batch {
                tx.push(next_in).unwrap();
                next_in += 1;
            }
            assert!(rx.is_empty(), "round {round}: unpublished");
            assert_eq!(tx.publish(), batch);
            assert!(!rx.is_empty(), "round {round}: published");
            let mut got = Vec::new();
            assert_eq!(rx.drain(usize::MAX, |v| got.push(v)), batch);
            let want: Vec<u64> = (next_out..next_out + batch as u64).collect();
            assert_eq!(got, want, "round {round}");
            next_out += batch as u64;
            assert!(rx.is_empty(), "round {round}: drained");
            assert_eq!(rx.len(), 0);
        }
    }

    #[test]
    fn fifo_and_wrap_around() {
        let (mut tx, mut rx) = ring::<u64>(4);
        let mut next_in = 0u64;
        let mut next_out = 0u64;
        // 1000 laps around a 4-slot buffer, with batch sizes 1..=4.
        for round in 0..4000 {
            let batch = round % 4 + 1;
            for _ in 0..batch {
                tx.push(next_in).unwrap();
                next_in += 1;
            }
            assert_eq!(tx.publish(), batch);
            while let Some(v) = rx.pop() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
        }
        assert_eq!(next_out, next_in);
    }

    #[test]
    fn drain_respects_max_and_order() {
        let (mut tx, mut rx) = ring::<u32>(8);
        for i in 0..7 {
            tx.push(i).unwrap();
        }
        tx.publish();
        let mut seen = Vec::new();
        assert_eq!(rx.drain(3, |v| seen.push(v)), 3);
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!(rx.drain(0, |v| seen.push(v)), 0);
        assert_eq!(rx.len(), 4);
        assert_eq!(rx.drain(100, |v| seen.push(v)), 4);
        assert_eq!(seen, [0, 1, 2, 3, 4, 5, 6]);
        // All 8 slots were released by the drains.
        assert_eq!(tx.free_slots(), 8);
    }

    #[test]
    fn drain_panic_releases_taken_items_and_keeps_the_rest() {
        let (mut tx, mut rx) = ring::<Box<u32>>(8);
        for i in 0..6 {
            tx.push(Box::new(i)).unwrap();
        }
        tx.publish();
        let mut seen = Vec::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            rx.drain(usize::MAX, |v| {
                if *v == 2 {
                    panic!("callback failure");
                }
                seen.push(*v);
            })
        }));
        assert!(result.is_err());
        assert_eq!(seen, [0, 1]);
        // Values 0, 1 and 2 were taken; their slots are free again.
        assert_eq!(tx.free_slots(), 8 - 3);
        assert_eq!(rx.pop().as_deref(), Some(&3));
        assert_eq!(rx.drain(usize::MAX, |v| seen.push(*v)), 2);
        assert_eq!(seen, [0, 1, 4, 5]);
    }

    /// Counts its own drops in a shared counter.
    struct DropCounter<'a>(&'a AtomicUsize);

    impl Drop for DropCounter<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn leftovers_dropped_exactly_once_in_either_drop_order() {
        for producer_last in [true, false] {
            let drops = AtomicUsize::new(0);
            // 6 pushed, 1 popped: 2 published and 3 unpublished values remain.
            let (mut tx, mut rx) = ring(8);
            for i in 0..6 {
                tx.push(DropCounter(&drops)).unwrap();
                if i == 2 {
                    tx.publish();
                    drop(rx.pop().unwrap());
                }
            }
            assert_eq!(drops.load(Ordering::Relaxed), 1);
            if producer_last {
                drop(rx);
                assert!(tx.is_abandoned());
                drop(tx);
            } else {
                assert!(!rx.is_abandoned());
                drop(tx);
                assert!(rx.is_abandoned());
                // The producer's drop published its 3 unpublished values.
                assert_eq!(rx.len(), 5);
                drop(rx);
            }
            assert_eq!(
                drops.load(Ordering::Relaxed),
                6,
                "producer_last={producer_last}"
            );
        }
    }

    #[test]
    fn leftovers_dropped_after_wrap_around() {
        let drops = AtomicUsize::new(0);
        let (mut tx, mut rx) = ring(2);
        for _ in 0..5 {
            tx.push(DropCounter(&drops)).unwrap();
            tx.publish();
            drop(rx.pop());
        }
        tx.push(DropCounter(&drops)).unwrap();
        tx.push(DropCounter(&drops)).unwrap();
        drop((tx, rx));
        assert_eq!(drops.load(Ordering::Relaxed), 7);
    }

    #[test]
    fn reclaim_takes_back_what_a_gone_consumer_never_took() {
        let drops = AtomicUsize::new(0);
        let (mut tx, mut rx) = ring(4);
        for _ in 0..3 {
            tx.push(DropCounter(&drops)).unwrap();
        }
        tx.publish();
        assert_eq!(tx.reclaim(|_| unreachable!()), 0, "consumer alive");
        drop(rx.pop().unwrap());
        drop(rx);
        tx.push(DropCounter(&drops)).unwrap(); // pushed, never published
        let mut back = 0;
        assert_eq!(
            tx.reclaim(|v| {
                back += 1;
                drop(v)
            }),
            3
        );
        assert_eq!(back, 3);
        assert_eq!(drops.load(Ordering::Relaxed), 4);
        assert_eq!(tx.free_slots(), 4, "every slot is the producer's again");
        drop(tx);
        assert_eq!(drops.load(Ordering::Relaxed), 4, "nothing dropped twice");
    }

    #[test]
    fn zero_sized_values() {
        let (mut tx, mut rx) = ring::<()>(2);
        for _ in 0..10 {
            tx.push(()).unwrap();
            tx.push(()).unwrap();
            assert!(tx.push(()).is_err());
            tx.publish();
            assert_eq!(rx.len(), 2);
            assert_eq!(rx.drain(usize::MAX, |()| {}), 2);
        }
        assert_eq!(rx.pop(), None);
    }
}
