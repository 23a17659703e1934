//! Wakers for processes and tasks run by the shard's scheduler.
//!
//! # Rules
//!
//! 1. While the scheduler polls a runnable it hands the future a *borrowed*
//!    waker: a pointer to the runnable's header and a static vtable. Making
//!    it costs nothing and it is never reference-counted. It is valid only
//!    during that poll, on the owning thread; waking it marks the runnable
//!    "notified" (poll again rather than suspend).
//! 2. A future that keeps the waker clones it. The clone is an *owned*
//!    waker: an `Arc` that names the runnable by runtime, shard and key
//!    (slot and generation) and holds no pointer into the shard. One is made
//!    per runnable, on its first clone, and cached in the header's extras;
//!    later clones share it.
//! 3. An owned waker woken on the owning shard's thread schedules the
//!    runnable directly; from anywhere else it sends a wake-up envelope
//!    through the shard's injector. A wake-up for a runnable that has since
//!    exited finds the generation bumped and does nothing, so an owned
//!    waker can outlive its process (in a glommio timer, say) harmlessly.
//! 4. Using a borrowed waker from another thread during a poll (without
//!    cloning it) is refused with a panic rather than touching the shard
//!    from a thread that does not own it.

use crate::envelope::Envelope;
use crate::pid::{Pid, ShardId};
use crate::runtime::{RuntimeId, Shared};
use crate::table::{flags, Header};
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::{Arc, Weak};
use std::task::{Context, RawWaker, RawWakerVTable, Waker};

thread_local! {
    /// The runnable this thread is polling right now, if any.
    static POLLING: Cell<Option<NonNull<Header>>> = const { Cell::new(None) };
}

/// Marks `h` as the runnable this thread is running until the guard is
/// dropped: its borrowed wakers are valid meanwhile (rule 1).
#[inline(always)]
pub(crate) fn polling(h: NonNull<Header>) -> Polling {
    Polling(POLLING.replace(Some(h)))
}

/// The pid of the runnable marked by [`polling`], if it is a process (a
/// task has no pid of its own).
#[inline]
pub(crate) fn polling_pid() -> Option<Pid> {
    let h = POLLING.get()?;
    // SAFETY: a marked runnable is alive while its mark stands: the mark is
    // restored when its run returns, and a run frees the allocation only
    // as its last step (after which no code that could read the mark runs
    // before the guard is dropped).
    let header = unsafe { h.as_ref() };
    (!header.has(flags::TASK)).then_some(header.pid)
}

/// Restores the previous [`polling`] mark.
pub(crate) struct Polling(Option<NonNull<Header>>);

impl Drop for Polling {
    #[inline(always)]
    fn drop(&mut self) {
        POLLING.set(self.0);
    }
}

/// Polls through `poll` with the borrowed waker of `h` (rule 1). The
/// caller holds `h`'s [`polling`] guard.
#[inline(always)]
pub(crate) fn with_borrowed<R>(h: NonNull<Header>, poll: impl FnOnce(&mut Context<'_>) -> R) -> R {
    debug_assert_eq!(POLLING.get(), Some(h));
    let raw = RawWaker::new(h.as_ptr() as *const (), &BORROWED);
    // SAFETY: the vtable's functions uphold `RawWaker`'s contract for this
    // data pointer for as long as the waker is used during this poll (rule
    // 1); `ManuallyDrop` because a borrowed waker owns nothing to drop.
    let waker = std::mem::ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
    let mut cx = Context::from_waker(&waker);
    poll(&mut cx)
}

/// If `waker` is the borrowed waker of a runnable of this thread's shard,
/// that runnable's key (`pid`, and whether it is a task). Lets reply slots
/// remember a local waiter without cloning its waker.
#[inline]
pub(crate) fn local_key(waker: &Waker) -> Option<(Pid, bool)> {
    if !std::ptr::eq(waker.vtable(), &BORROWED) {
        return None;
    }
    let h = NonNull::new(waker.data() as *mut Header)?;
    if POLLING.get() != Some(h) {
        return None;
    }
    // SAFETY: `h` is the runnable being polled on this thread right now,
    // so it is alive (rule 1).
    let header = unsafe { h.as_ref() };
    Some((header.pid, header.has(flags::TASK)))
}

static BORROWED: RawWakerVTable =
    RawWakerVTable::new(borrowed_clone, borrowed_wake, borrowed_wake, borrowed_drop);

/// The header behind a borrowed waker, checked to be the one this thread
/// is polling (rule 4).
fn polled(data: *const ()) -> NonNull<Header> {
    let h = NonNull::new(data as *mut Header).expect("a borrowed waker is never null");
    assert!(
        POLLING.get() == Some(h),
        "a corelet waker borrowed during a poll was used outside that poll \
         (another thread, or after it returned); clone it to keep it"
    );
    h
}

unsafe fn borrowed_clone(data: *const ()) -> RawWaker {
    let h = polled(data);
    // SAFETY: `polled` checked that `h` is being polled on this thread.
    let header = unsafe { h.as_ref() };
    let owned = header.with_extras(|e| e.waker.get_or_insert_with(|| owned_for(header)).clone());
    let owned = std::mem::ManuallyDrop::new(owned);
    RawWaker::new(owned.data(), owned.vtable())
}

unsafe fn borrowed_wake(data: *const ()) {
    let h = polled(data);
    // SAFETY: as in `borrowed_clone`.
    unsafe { h.as_ref() }.set(flags::NOTIFIED);
}

unsafe fn borrowed_drop(_data: *const ()) {}

/// What an owned waker knows: how to find the runnable again (rule 2).
struct Owned {
    runtime: RuntimeId,
    shard: ShardId,
    key: Pid,
    task: bool,
    shared: Weak<Shared>,
}

impl std::task::Wake for Owned {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let (key, task) = (self.key, self.task);
        let here = crate::shard::with_current(|s| {
            if s.shared.id == self.runtime && s.id == self.shard {
                s.wake_key(key, task);
                true
            } else {
                false
            }
        });
        if here != Some(true) {
            if let Some(shared) = self.shared.upgrade() {
                shared.inject(
                    self.shard,
                    Envelope::new(move |s: &crate::shard::Shard| s.wake_key(key, task)),
                );
            }
        }
    }
}

/// Makes the owned waker of the runnable `header` (on its own thread).
fn owned_for(header: &Header) -> Waker {
    let (runtime, shard, shared) =
        crate::shard::with_current(|s| (s.shared.id, s.id, Arc::downgrade(&s.shared)))
            .expect("runnables are polled on their shard's thread");
    Waker::from(Arc::new(Owned {
        runtime,
        shard,
        key: header.pid,
        task: header.has(flags::TASK),
        shared,
    }))
}
