//! The sleep/wake handshake between a receiving shard and its senders.
//!
//! A receiver that finds all of its incoming rings empty wants to block, and
//! a sender that has just published wants to wake the receiver only if it is
//! (about to be) blocked: a notification costs a syscall or an executor
//! wake-up, so sending one per published batch to a busy receiver would be
//! wasteful. The [`Doorbell`] is the one flag that lets both sides agree,
//! without a lock and without losing a wake-up.
//!
//! # Invariants
//!
//! 1. A doorbell belongs to **one receiver** (the consumer of every ring it
//!    guards); any number of senders (producers) may ring it.
//! 2. **Only the receiver sets `sleeping` to `true`** ([`Doorbell::prepare_sleep`]).
//!    It is set back to `false` either by the receiver
//!    ([`Doorbell::cancel_sleep`]) or by the one sender whose
//!    compare-exchange in [`Doorbell::ring`] took the `true`.
//! 3. **Only the sender that took the `true` calls the notifier**, so each
//!    sleep episode (one `prepare_sleep`) produces at most one notification,
//!    and a receiver that never flags itself asleep gets none.
//! 4. The notifier must make everything before `notify()` happen before the
//!    receiver's return from waiting (eventfd write/read through the kernel,
//!    `Waker::wake` through the executor's queue both do).
//! 5. The doorbell owns no messages and frees nothing but its notifier; the
//!    values live in the rings and are freed as described in [`mod@crate::ring`].
//!
//! # Protocol
//!
//! ```text
//! receiver                                 sender
//! --------                                 ------
//! drain every source; if any work, loop    push .. push
//! R1  sleeping.store(true)                 S1  stamp.store(end, Release)    (publish)
//! R2  heavy barrier                        S2  light barrier                (ring)
//! R3  re-check every source (load the      S3  if sleeping.load() && sleeping
//!     next slot's stamp)
//!     non-empty -> cancel_sleep, loop            .compare_exchange(true, false)
//!                                                .is_ok() { notify() }
//!     all empty -> wait for the notifier,
//!                  then cancel_sleep, loop
//! ```
//!
//! R2 and S2 are a pair of asymmetric barriers (see `src/barrier.rs`):
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` on the receiver, which
//! sleeps rarely, and a compiler fence on the sender, which rings once per
//! batch; or a `SeqCst` fence on each side where `membarrier` is not
//! available. The argument below is written for the fences; the barrier
//! pair gives the same guarantee for this handshake (R2 forces a full
//! barrier on the sender's CPU, which S1 and S3 are each on one side of),
//! and the loom models check the protocol with fences.
//!
//! **Why no wake-up is lost.** The two `SeqCst` fences R2 and S2 are ordered
//! one way or the other in the single total order of `SeqCst` operations.
//! - If R2 comes first, the sender's load S3 (after S2) must see the
//!   receiver's store R1 (before R2) or a later write to `sleeping`. Seeing
//!   R1's `true`, the sender takes it and notifies. A later write is a
//!   `false` from the receiver's `cancel_sleep` or from another sender's take
//!   (which notified; invariant 4). Either way the receiver is, or will be,
//!   awake, and before it can wait again it must repeat R1'/R2'/R3'. Our S3
//!   read a value older than R1', so S2 precedes R2' in the total order, and
//!   the re-check R3' sees our S1.
//! - If S2 comes first, the receiver's re-check R3 (after R2) must see the
//!   sender's stamp store S1 (before S2), so it finds the ring non-empty
//!   and does not wait.
//!
//! The lost wake-up would need S3 to miss R1 *and* R3 to miss S1 at once: the
//! store-buffering (Dekker) outcome that a pair of `SeqCst` fences forbids.
//! Dropping either fence allows it, and `tests/loom_doorbell.rs` finds it.
//!
//! Spurious wake-ups are possible (a sender may take the `true` just before
//! the receiver cancels), so a receiver must treat every return from waiting
//! as "re-check", never as "there is work".

use crate::barrier;
use crate::sync::{AtomicBool, CachePadded, Ordering};

/// Whether this process pairs the doorbell's barriers asymmetrically
/// (`membarrier` when a receiver goes to sleep, a compiler fence when a
/// sender rings) rather than with a `SeqCst` fence on each side. Decided
/// when the first doorbell is made; `false` before that and on kernels
/// without expedited private `membarrier`.
pub fn asymmetric_barriers() -> bool {
    barrier::uses_membarrier()
}

/// Something that can wake a sleeping receiver.
///
/// `notify` may be called from any sender thread, so implementors are
/// `Send + Sync`. It must establish happens-before from the call to the
/// receiver's return from waiting (invariant 4 in the [module docs](self)).
pub trait Notify: Send + Sync {
    /// Wakes the receiver, or makes its next wait return immediately.
    fn notify(&self);
}

impl Notify for std::task::Waker {
    fn notify(&self) {
        self.wake_by_ref();
    }
}

impl<N: Notify + ?Sized> Notify for std::sync::Arc<N> {
    fn notify(&self) {
        (**self).notify();
    }
}

/// The sleep flag of one receiver plus the means to wake it.
///
/// See the [module docs](self) for the protocol and why it cannot lose a
/// wake-up. Share it between the receiver and its senders (for example in an
/// `Arc`).
#[derive(Debug)]
pub struct Doorbell<N> {
    /// `true` while the receiver is in a sleep episode; on its own cache line
    /// because every sender reads it after each published batch.
    sleeping: CachePadded<AtomicBool>,
    notifier: N,
}

impl<N: Notify> Doorbell<N> {
    /// Creates a doorbell for an awake receiver, woken through `notifier`.
    pub fn new(notifier: N) -> Self {
        // Invariant 2 of `barrier`: the mode is chosen before any doorbell
        // exists.
        barrier::enable();
        Self {
            sleeping: CachePadded(AtomicBool::new(false)),
            notifier,
        }
    }

    /// The notifier; the receiver waits on it (e.g. [`EventFd::wait`]).
    ///
    /// [`EventFd::wait`]: crate::EventFd::wait
    pub fn notifier(&self) -> &N {
        &self.notifier
    }

    /// Receiver side: announces that the receiver is about to sleep.
    ///
    /// After this call the receiver **must** re-check every source it drains
    /// (with [`Consumer::is_empty`](crate::Consumer::is_empty)) and then
    /// either call [`cancel_sleep`](Self::cancel_sleep), if it found work, or
    /// really wait for the notifier. Waiting without the re-check can sleep
    /// through a batch published just before this call.
    pub fn prepare_sleep(&self) {
        // SeqCst: the fence below is what pairs with the fence in `ring`;
        // SeqCst on the store additionally keeps it in the same total order
        // and is paid only when going to sleep.
        self.sleeping.store(true, Ordering::SeqCst);
        // The heavy barrier: pairs with the light one in `ring`; orders the
        // store above before the loads of slot stamps in the caller's
        // re-check (store->load, which acquire/release cannot order). A
        // `membarrier` call, or a SeqCst fence (`barrier` module docs).
        barrier::heavy();
    }

    /// Receiver side: ends a sleep episode without waiting (work was found
    /// by the re-check), or clears the flag after waking.
    ///
    /// After this, senders stop notifying until the next
    /// [`prepare_sleep`](Self::prepare_sleep).
    pub fn cancel_sleep(&self) {
        // Relaxed: no partner needed. The store only saves senders a
        // notification; correctness of the next episode rests on the SeqCst
        // store and fence in `prepare_sleep`, and a sender that still reads
        // `true` sends one spurious (harmless) notification.
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Whether the receiver is currently flagged asleep. Advisory only: the
    /// answer may be stale by the time it is used.
    pub fn is_sleeping(&self) -> bool {
        // Relaxed: no partner; a diagnostic snapshot that orders nothing.
        self.sleeping.load(Ordering::Relaxed)
    }

    /// Sender side: wakes the receiver if it flagged itself asleep.
    ///
    /// Call it after [`Producer::publish`](crate::Producer::publish) returned
    /// a non-zero count, once per published batch. Returns `true` if this
    /// call sent the notification (at most one sender does so per sleep
    /// episode).
    pub fn ring(&self) -> bool {
        // The light barrier: pairs with the heavy one in `prepare_sleep`
        // (Dekker-style store->load ordering between our stamp store and
        // our load of `sleeping`). Paid once per published batch: a
        // compiler fence when the receiver's side is a `membarrier` call,
        // else a SeqCst fence (`barrier` module docs: the fence waited for
        // the whole batch's stores to reach the cache, a tenth of a
        // cross-shard stream's time).
        barrier::light();
        // Relaxed: ordered by the barriers (pairs with `prepare_sleep`'s);
        // a cheap read that keeps the cache line shared while the
        // receiver is awake.
        if !self.sleeping.load(Ordering::Relaxed) {
            return false;
        }
        // AcqRel on success: the Acquire half pairs with the SeqCst store in
        // `prepare_sleep` (the receiver's writes before announcing sleep
        // happen before our notify); the Release half has no partner, as the
        // flag carries no data. Relaxed on failure: someone else cleared the
        // flag, and we neither notify nor publish anything. Lost-wake-up
        // freedom rests on the two fences, not on these orderings.
        //
        // Being one atomic read-modify-write is what lets only one sender
        // take `true`. A compare-exchange rather than `swap(false)` because
        // it writes nothing when another sender or the receiver's
        // `cancel_sleep` got there first, and because loom 0.7 mis-models a
        // `swap` racing with a plain store (tokio-rs/loom#254): with `swap`,
        // `tests/loom_doorbell.rs` reports a deadlock that the C++ memory
        // model forbids.
        if self
            .sleeping
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.notifier.notify();
            true
        } else {
            false
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::Arc as StdArc;
    use std::task::{Wake, Waker};

    #[derive(Default)]
    struct Count(StdAtomicUsize);

    impl Count {
        fn get(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    impl Notify for Count {
        fn notify(&self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    impl Wake for Count {
        fn wake(self: StdArc<Self>) {
            self.notify();
        }
    }

    #[test]
    fn awake_receiver_gets_no_notification() {
        let bell = Doorbell::new(Count::default());
        assert!(!bell.is_sleeping());
        assert!(!bell.ring());
        assert!(!bell.ring());
        assert_eq!(bell.notifier().get(), 0);
    }

    #[test]
    fn one_notification_per_sleep_episode() {
        let bell = Doorbell::new(Count::default());
        bell.prepare_sleep();
        assert!(bell.is_sleeping());
        assert!(bell.ring());
        assert!(!bell.is_sleeping());
        assert!(!bell.ring());
        assert_eq!(bell.notifier().get(), 1);
        bell.prepare_sleep();
        assert!(bell.ring());
        assert_eq!(bell.notifier().get(), 2);
    }

    #[test]
    fn cancelled_sleep_gets_no_notification() {
        let bell = Doorbell::new(Count::default());
        bell.prepare_sleep();
        bell.cancel_sleep();
        assert!(!bell.ring());
        assert_eq!(bell.notifier().get(), 0);
    }

    #[test]
    fn waker_and_arc_notifiers() {
        let count = StdArc::new(Count::default());
        let bell = Doorbell::new(Waker::from(StdArc::clone(&count)));
        bell.prepare_sleep();
        assert!(bell.ring());
        assert_eq!(count.get(), 1);

        let bell = Doorbell::new(StdArc::clone(&count));
        bell.prepare_sleep();
        assert!(bell.ring());
        assert_eq!(count.get(), 2);
    }
}
