//! Envelopes: the unit that crosses shards.
//!
//! An envelope is a `Send` closure run on the receiving shard's thread with
//! that shard in hand: delivering a message, a signal, a reply, a spawn
//! request. It is 56 bytes, a function pointer and 48 bytes of payload, so
//! that with the ring's stamp it fills one 64-byte slot (the consumer learns
//! of it and reads it from one cache line). A closure that fits (a reply,
//! a signal) is stored *inline*, so it costs no allocation; a larger one
//! is boxed and the box is stored instead. A user message of up to 32
//! bytes is not a closure at all: the payload is the message and its pid
//! ([`Envelope::message`]), moved from the slot into the mailbox.
//!
//! # Invariants
//!
//! 1. `payload` holds exactly one live value of the type that `call` was
//!    instantiated for (a closure inline or as a `Box` of it, or a
//!    `Posted` message), from
//!    construction until `call` consumes it: by running it (`run`) or by
//!    dropping it (`Drop`). `run` forgets the envelope first, so the
//!    closure is consumed exactly once.
//! 2. Only values that are `Send + 'static` are stored, so moving an
//!    envelope to another thread moves nothing that may not go there.

use crate::pid::Pid;
use crate::shard::Shard;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::rc::Rc;

/// Payload bytes stored inline.
const INLINE: usize = 48;

/// Runs (`Some(shard)`) or drops (`None`) the closure in `payload`.
type Call = unsafe fn(*mut u8, Option<&Rc<Shard>>);

/// Work for another shard: 56 bytes (one ring slot of 64 with its stamp),
/// no allocation when the closure fits in it.
#[repr(C)]
pub(crate) struct Envelope {
    call: Call,
    payload: MaybeUninit<[u64; INLINE / 8]>,
}

// SAFETY: invariant 2: the payload is a `Send` closure (or a box of one);
// `call` is a plain function pointer.
unsafe impl Send for Envelope {}

impl Envelope {
    /// An envelope running `f` with the destination shard.
    #[inline]
    pub(crate) fn new(f: impl FnOnce(&Shard) + Send + 'static) -> Self {
        Self::with_rc(move |s: &Rc<Shard>| f(s))
    }

    /// For envelopes that need the `Rc` (to spawn tasks that keep the shard).
    #[inline]
    pub(crate) fn with_rc<F: FnOnce(&Rc<Shard>) + Send + 'static>(f: F) -> Self {
        let mut payload = MaybeUninit::<[u64; INLINE / 8]>::uninit();
        let at = payload.as_mut_ptr().cast::<u8>();
        if size_of::<F>() <= INLINE && align_of::<F>() <= 8 {
            // SAFETY: `F` fits in the payload and the payload is 8-aligned.
            unsafe { at.cast::<F>().write(f) };
            Self {
                call: call_inline::<F>,
                payload,
            }
        } else {
            // SAFETY: a pointer fits in the payload.
            unsafe { at.cast::<*mut F>().write(Box::into_raw(Box::new(f))) };
            Self {
                call: call_boxed::<F>,
                payload,
            }
        }
    }

    /// An envelope delivering the user message `msg` to `pid` on the
    /// destination shard. The message and the pid are the payload itself
    /// (no closure): the receiving shard moves the message from the ring
    /// slot straight into the mailbox, where running a closure first moved
    /// the whole closure onto the stack and copied the message from there
    /// again (callgrind, receiving side of a cross-shard tell). A message
    /// too large for the payload goes in a boxed closure, as any envelope.
    #[inline(always)]
    pub(crate) fn message<M: Send + 'static>(pid: Pid, msg: M) -> Self {
        if size_of::<Posted<M>>() <= INLINE && align_of::<Posted<M>>() <= 8 {
            let mut payload = MaybeUninit::<[u64; INLINE / 8]>::uninit();
            // SAFETY: a `Posted<M>` fits in the payload, which is 8-aligned.
            unsafe {
                payload
                    .as_mut_ptr()
                    .cast::<Posted<M>>()
                    .write(Posted { msg, pid })
            };
            Self {
                call: call_message::<M>,
                payload,
            }
        } else {
            Self::new(move |there: &Shard| {
                // `deliver` counts the dead letter on the receiving shard.
                let _ = there.deliver(pid, msg);
            })
        }
    }

    /// Runs the envelope on its destination shard. A panic (a user factory
    /// or a user value's `Drop`) unwinds to the caller, which contains it.
    /// Runs the envelope where it lies (a ring slot), without copying it
    /// out first.
    ///
    /// # Safety
    /// `at` points to a valid envelope that the caller owns and never uses
    /// again: this call consumes it.
    #[inline]
    pub(crate) unsafe fn run_at(at: *mut Envelope, shard: &Rc<Shard>) {
        // SAFETY: the caller's contract; `call` consumes the payload.
        unsafe { ((*at).call)(std::ptr::addr_of_mut!((*at).payload).cast(), Some(shard)) }
    }

    #[inline]
    pub(crate) fn run(self, shard: &Rc<Shard>) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: invariant 1; `this` is never dropped, so the closure is
        // consumed only here.
        unsafe { (this.call)(this.payload.as_mut_ptr().cast(), Some(shard)) }
    }
}

impl Drop for Envelope {
    fn drop(&mut self) {
        // SAFETY: invariant 1: an envelope that was not run still holds its
        // closure; this drops it.
        unsafe { (self.call)(self.payload.as_mut_ptr().cast(), None) }
    }
}

/// The payload of [`Envelope::message`].
#[repr(C)]
struct Posted<M> {
    msg: M,
    pid: Pid,
}

/// # Safety
/// `payload` holds a live `Posted<M>` (invariant 1), consumed here.
unsafe fn call_message<M: 'static>(payload: *mut u8, shard: Option<&Rc<Shard>>) {
    let posted = payload.cast::<Posted<M>>();
    match shard {
        // SAFETY: the caller's contract: the payload is a live
        // `Posted<M>`, whose message `deliver_from` moves out (or drops)
        // and whose pid is plain data.
        Some(shard) => unsafe {
            shard.deliver_from((*posted).pid, std::ptr::addr_of_mut!((*posted).msg))
        },
        // SAFETY: as above; dropped once, here.
        None => unsafe { std::ptr::drop_in_place(posted) },
    }
}

/// # Safety
/// `payload` holds a live `F` (invariant 1), consumed here.
unsafe fn call_inline<F: FnOnce(&Rc<Shard>)>(payload: *mut u8, shard: Option<&Rc<Shard>>) {
    // SAFETY: the caller's contract.
    let f = unsafe { payload.cast::<F>().read() };
    match shard {
        Some(shard) => f(shard),
        None => drop(f),
    }
}

/// # Safety
/// `payload` holds a live `Box<F>` pointer (invariant 1), consumed here.
unsafe fn call_boxed<F: FnOnce(&Rc<Shard>)>(payload: *mut u8, shard: Option<&Rc<Shard>>) {
    // SAFETY: the caller's contract: the pointer came from `Box::into_raw`.
    let f = unsafe { Box::from_raw(payload.cast::<*mut F>().read()) };
    match shard {
        Some(shard) => f(shard),
        None => drop(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn an_envelope_fills_one_cache_line_of_ring() {
        assert_eq!(size_of::<Envelope>(), 56);
        assert_eq!(corelet_cross_shard::ring::slot_size::<Envelope>(), 64);
    }

    #[test]
    fn unrun_message_envelopes_drop_their_message_once_inline_or_boxed() {
        let drops = Arc::new(AtomicUsize::new(0));
        let pid = Pid::from_parts(crate::pid::ShardId(1), 7, 3);
        // A message that fits beside its pid, and one that does not (it
        // goes in a boxed closure).
        assert!(size_of::<Posted<Counted>>() <= INLINE);
        assert!(size_of::<Posted<(Counted, [u64; 6])>>() > INLINE);
        let small = Envelope::message(pid, Counted(drops.clone()));
        let big = Envelope::message(pid, (Counted(drops.clone()), [0u64; 6]));
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop((small, big));
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn unrun_envelopes_drop_their_closure_once_inline_or_boxed() {
        let drops = Arc::new(AtomicUsize::new(0));
        let small = Counted(drops.clone());
        let big = (Counted(drops.clone()), [0u64; 16]);
        let a = Envelope::new(move |_| drop(small));
        let b = Envelope::new(move |_| drop(big));
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop((a, b));
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }
}
