//! Asymmetric memory barriers for the doorbell's store-buffering handshake.
//!
//! The doorbell (see [`mod@crate::doorbell`]) needs a full barrier on both
//! sides: between a sender's stamp store and its load of `sleeping`, and
//! between the receiver's store of `sleeping` and its re-check of the
//! stamps. The sender pays its barrier once per published batch, and on
//! x86 that barrier (a locked instruction) waits until every store ahead
//! of it has reached the cache: the batch's envelope stores, each on a
//! line the receiver just read. `perf annotate` of a cross-shard tell
//! stream put about a tenth of all samples on that one instruction.
//!
//! The receiver pays its barrier only when it is about to sleep, which is
//! rare while there is work. So the cost is moved there, as Seastar,
//! liburcu and folly do: the frequent side ([`light`]) is a compiler-only
//! fence, and the rare side ([`heavy`]) is Linux's
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every other
//! running thread of this process execute a full memory barrier before
//! the call returns (threads not running pass one when they are switched
//! back in). For the handshake that is as good as a fence on each side:
//! the sender's stamp store and its load of `sleeping` are each either
//! before or after the barrier forced on its CPU, so either the sender's
//! load sees the receiver's `true` or the receiver's re-check sees the
//! sender's stamp, never neither.
//!
//! # Invariants
//!
//! 1. The mode is chosen once per process, by [`enable`], and never
//!    changes after: `MEMBARRIER` if the kernel registered the process for
//!    expedited private barriers, `FENCES` otherwise (a kernel older than
//!    4.14, or a seccomp filter that refuses the call). Valgrind passes
//!    the call through to the kernel, so it runs in `MEMBARRIER` mode too.
//! 2. [`enable`] runs before any doorbell exists (it is called by
//!    `Doorbell::new`), and a doorbell reaches its senders and receiver
//!    only through synchronisation (a thread spawn, an `Arc` sent over a
//!    channel), so both sides of every doorbell read the same mode.
//! 3. In `MEMBARRIER` mode, [`light`] is a compiler fence and [`heavy`] a
//!    `membarrier` call that must succeed (the process is registered; a
//!    failure is a broken invariant and panics rather than lose a wake-up).
//!    In `FENCES` mode both are `SeqCst` fences, as before.
//!
//! Under `cfg(loom)` both are `SeqCst` fences: loom cannot model
//! `membarrier`, and a pair of fences is what the asymmetric pair
//! guarantees for this handshake, so the models check the protocol the
//! barriers are used in.

#[cfg(not(loom))]
mod imp {
    use std::sync::atomic::{compiler_fence, fence, AtomicU8, Ordering};
    use std::sync::Once;

    /// [`MODE`] before [`enable`] ran: treated as `FENCES`.
    const UNKNOWN: u8 = 0;
    /// Compiler fence on the light side, `membarrier` on the heavy side.
    const MEMBARRIER: u8 = 1;
    /// A `SeqCst` fence on each side.
    const FENCES: u8 = 2;

    /// The mode of invariant 1.
    static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);
    static ENABLE: Once = Once::new();

    // From <linux/membarrier.h>.
    const MEMBARRIER_CMD_QUERY: libc::c_int = 0;
    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    fn membarrier(cmd: libc::c_int) -> libc::c_long {
        // SAFETY: `membarrier(cmd, flags, cpu_id)` reads and writes no
        // memory of ours; an unknown command fails with `EINVAL` and a
        // kernel without the call with `ENOSYS`.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_uint,
                0 as libc::c_int,
            )
        }
    }

    /// Chooses the mode (invariant 1); later calls return at once.
    pub(crate) fn enable() {
        ENABLE.call_once(|| {
            let supported = membarrier(MEMBARRIER_CMD_QUERY);
            let wanted =
                MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED;
            let mode = if supported >= 0
                && (supported as libc::c_int) & wanted == wanted
                && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0
            {
                MEMBARRIER
            } else {
                FENCES
            };
            // Relaxed: invariant 2: every reader is ordered after this
            // store by the way it got its doorbell (`Once` also orders it
            // for every later `enable` caller).
            MODE.store(mode, Ordering::Relaxed);
        });
    }

    /// Whether the process uses `membarrier` (for diagnostics and tests).
    pub(crate) fn uses_membarrier() -> bool {
        // Relaxed: invariant 2.
        MODE.load(Ordering::Relaxed) == MEMBARRIER
    }

    /// The frequent side's barrier (a sender, once per published batch).
    #[inline(always)]
    pub(crate) fn light() {
        if uses_membarrier() {
            // The heavy side makes this CPU execute a full barrier; this
            // only keeps the compiler from moving the stamp store and the
            // load of `sleeping` across each other.
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// The rare side's barrier (a receiver about to sleep).
    pub(crate) fn heavy() {
        if uses_membarrier() {
            // A compiler fence on this side too: the store of `sleeping`
            // stays before the call and the re-check after it; the call
            // itself is a full barrier on this thread as well.
            compiler_fence(Ordering::SeqCst);
            let done = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
            assert!(
                done == 0,
                "membarrier failed after registration: {}",
                std::io::Error::last_os_error()
            );
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }
}

#[cfg(loom)]
mod imp {
    use loom::sync::atomic::{fence, Ordering};

    pub(crate) fn enable() {}

    pub(crate) fn uses_membarrier() -> bool {
        false
    }

    pub(crate) fn light() {
        fence(Ordering::SeqCst);
    }

    pub(crate) fn heavy() {
        fence(Ordering::SeqCst);
    }
}

pub(crate) use imp::{enable, heavy, light, uses_membarrier};
