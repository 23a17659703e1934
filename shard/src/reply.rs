//! Reply handles (`ReplyTo<R>`) and the per-shard table of pending replies.
//!
//! An asker allocates a slot in its own shard's reply table and sends the
//! target a [`ReplyTo`]: plain data naming `(runtime, shard, slot,
//! generation)`. Whoever holds the handle answers with [`ReplyTo::send`]; if
//! the handle is dropped unanswered (the target exited with the request
//! still queued, a handler panicked, or simply forgot) the asker is told
//! [`AskError::NoReply`]. So an ask never hangs while its target is gone.
//!
//! A reply travels like any message: written straight into the slot when
//! the replier runs on the asker's shard, through the ring to the asker's
//! shard otherwise (the envelope carries the value inline when it is
//! small, and the pump writes it into the slot), and through the shard's
//! injector queue from outside threads. A slot is freed by its asker (on
//! completion or when the ask future is dropped); a late reply finds the
//! generation bumped and is counted and dropped.
//!
//! Slots are typed without boxing: a reply of up to [`INLINE`] bytes is
//! stored in the slot itself (a larger one in a box), and the asker's
//! [`Reply<R>`] knows `R`, so it reads the value back with no `Any`. An
//! asker that is a process or task of the same shard is remembered by its
//! key, not by a cloned waker.

use crate::envelope::Envelope;
use crate::error::AskError;
use crate::pid::{Pid, ShardId};
use crate::runtime::{lookup_runtime, RuntimeId};
use crate::shard::{Priority, Shard};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

/// Bytes of a reply stored in the slot itself.
pub(crate) const INLINE: usize = 32;

/// Storage for one reply value: inline when it fits, else a box.
#[repr(C, align(8))]
struct Storage(MaybeUninit<[u8; INLINE]>);

/// Whether `R` is stored inline.
const fn inline<R>() -> bool {
    std::mem::size_of::<R>() <= INLINE && std::mem::align_of::<R>() <= 8
}

impl Storage {
    /// # Safety
    /// The storage holds no value.
    unsafe fn put<R>(&mut self, value: R) {
        let at = self.0.as_mut_ptr().cast::<u8>();
        if inline::<R>() {
            // SAFETY: `R` fits and is suitably aligned (`align(8)`), and the
            // storage is empty (caller's contract).
            unsafe { at.cast::<R>().write(value) };
        } else {
            // SAFETY: a pointer fits in the storage.
            unsafe { at.cast::<*mut R>().write(Box::into_raw(Box::new(value))) };
        }
    }

    /// # Safety
    /// The storage holds a value of type `R` put there by `put::<R>`; it is
    /// empty afterwards.
    unsafe fn take<R>(&mut self) -> R {
        let at = self.0.as_mut_ptr().cast::<u8>();
        if inline::<R>() {
            // SAFETY: the caller's contract.
            unsafe { at.cast::<R>().read() }
        } else {
            // SAFETY: the caller's contract: a pointer from `Box::into_raw`.
            unsafe { *Box::from_raw(at.cast::<*mut R>().read()) }
        }
    }
}

/// Drops the `R` in `storage`.
///
/// # Safety
/// As for [`Storage::take`].
unsafe fn drop_stored<R>(storage: &mut Storage) {
    // SAFETY: forwarded.
    drop(unsafe { storage.take::<R>() });
}

/// Who to wake when the reply arrives.
enum Waiter {
    Nobody,
    /// A process or task of this shard, by key (no pointer, no refcount).
    Local(Pid, bool),
    Waker(Waker),
}

/// Drops the value a slot holds (it knows the value's type).
type DropValue = unsafe fn(&mut Storage);

/// A pending reply in the asker's shard.
///
/// A slot is answered at most once, with a value or with
/// [`AskError::NoReply`] (the only error a `ReplyTo` reports: delivery
/// errors and timeouts are the `Ask`'s own). So the answer is a flag and
/// the value's drop function, not an `Option<Result<_, AskError>>`: the
/// slot stays small and an answer is two stores (measured with callgrind:
/// this and the single-borrow poll below took 18 instructions off the
/// local ask round trip).
pub(crate) struct ReplySlot {
    waiter: Waiter,
    /// Whether an answer arrived (then `drop_value` says which).
    answered: bool,
    /// `Some` exactly while `value` holds an answer's value: the function
    /// that drops it (the slot does not know its type).
    drop_value: Option<DropValue>,
    value: Storage,
}

impl Default for ReplySlot {
    fn default() -> Self {
        Self {
            waiter: Waiter::Nobody,
            answered: false,
            drop_value: None,
            value: Storage(MaybeUninit::uninit()),
        }
    }
}

impl Drop for ReplySlot {
    fn drop(&mut self) {
        if let Some(drop_value) = self.drop_value.take() {
            // SAFETY: `drop_value` is `Some` exactly while `value` holds the
            // value it was made for.
            unsafe { drop_value(&mut self.value) };
        }
    }
}

/// Where a reply goes.
enum Target<R> {
    /// A slot in a shard's reply table.
    Shard {
        runtime: RuntimeId,
        shard: ShardId,
        slot: u32,
        generation: u32,
    },
    /// An outside thread blocked on a completion.
    Thread(Arc<Completion<R>>),
}

/// The right (and duty) to answer one request.
///
/// `ReplyTo` is `Send` when `R` is, so it can travel inside a cross-shard
/// message. Answer with [`ReplyTo::send`]; dropping it unanswered resolves
/// the asker with [`AskError::NoReply`].
pub struct ReplyTo<R: Send + 'static> {
    /// Never dropped as a field: `send` or `drop` hands it to `deliver`,
    /// which moves out what it owns.
    target: std::mem::ManuallyDrop<Option<Target<R>>>,
    _reply: PhantomData<fn(R)>,
}

impl<R: Send + 'static> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.target {
            Some(Target::Shard { shard, slot, .. }) => {
                write!(f, "ReplyTo({shard}, slot {slot})")
            }
            Some(Target::Thread(_)) => f.write_str("ReplyTo(thread)"),
            None => f.write_str("ReplyTo(answered)"),
        }
    }
}

impl<R: Send + 'static> ReplyTo<R> {
    pub(crate) fn to_thread(completion: Arc<Completion<R>>) -> Self {
        Self {
            target: std::mem::ManuallyDrop::new(Some(Target::Thread(completion))),
            _reply: PhantomData,
        }
    }

    /// Answers the request. Never fails: if the asker is gone the value is
    /// dropped (and counted as a late reply on the asker's shard).
    #[inline]
    pub fn send(self, value: R) {
        // Moved out whole rather than with `Option::take`: writing `None`
        // over the tag and reading the fields back stalled the ask path on
        // store forwarding (seen with `perf annotate`).
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used again and never dropped, so what the
        // target owns (a thread's `Arc`) is moved out exactly once.
        unsafe { deliver(&this.target, Some(value)) };
    }
}

impl<R: Send + 'static> ReplyTo<R> {
    /// [`ReplyTo::send`] from code that runs on shard `here` and has it at
    /// hand (a process's exit telling its waiters): an answer for a slot of
    /// `here` is stored directly, without finding the current shard again.
    #[inline]
    pub(crate) fn send_on(self, here: &Shard, value: R) {
        if let Some(Target::Shard {
            runtime,
            shard,
            slot,
            generation,
        }) = &*self.target
        {
            if *runtime == here.shared.id && *shard == here.id {
                let (slot, generation) = (*slot, *generation);
                // A shard target owns nothing: forgetting the handle drops
                // nothing and answers nobody twice.
                std::mem::forget(self);
                here.fulfil(slot, generation, Some(value));
                return;
            }
        }
        self.send(value);
    }
}

impl<R: Send + 'static> Drop for ReplyTo<R> {
    fn drop(&mut self) {
        // SAFETY: `self` is being dropped and its target (a `ManuallyDrop`
        // field) is never read or dropped again.
        unsafe { deliver(&self.target, None) };
    }
}

/// Hands `answer` (`None`: the handle was dropped unanswered) to the
/// asker.
///
/// The target is read field by field through the reference, not moved as
/// a whole: copying the enum's 14-byte payload took two overlapping loads
/// that stalled on store forwarding on every local ask.
///
/// # Safety
/// `target` is never read again after this call (its `Arc`, if any, is
/// moved out here).
#[inline]
unsafe fn deliver<R: Send + 'static>(target: &Option<Target<R>>, answer: Option<R>) {
    let (runtime, shard, slot, generation) = match target {
        None => return,
        Some(Target::Thread(completion)) => {
            // SAFETY: the caller's contract: moved out once.
            let completion = unsafe { std::ptr::read(completion) };
            completion.complete(answer.ok_or(AskError::NoReply));
            return;
        }
        Some(Target::Shard {
            runtime,
            shard,
            slot,
            generation,
        }) => (*runtime, *shard, *slot, *generation),
    };
    let fill = move |home: &Shard| home.fulfil(slot, generation, answer);
    // On a shard of the same runtime: directly, or through the ring (one
    // thread-local access, no `Rc` clone: this is the ask path).
    let unsent = crate::shard::with_current_or(
        fill,
        |here, fill| {
            if here.shared.id != runtime {
                return Some(fill);
            }
            if here.id == shard {
                fill(here);
            } else {
                // System priority: never refused for back-pressure. It can
                // only fail if the asker's shard has finished, and then the
                // asker is gone too.
                let _ = here.send_remote(shard, Envelope::new(fill), Priority::System);
            }
            None
        },
        Some,
    );
    let Some(fill) = unsent else {
        return;
    };
    // From an outside thread (or another runtime's shard): the injector.
    if let Some(shared) = lookup_runtime(runtime) {
        shared.inject(shard, Envelope::new(fill));
    }
}

impl<R> Reply<R> {
    /// Names the process asked, for the hand-off at the first poll.
    pub(crate) fn asking(mut self, target: Pid) -> Self {
        self.target = Some(target);
        self
    }
}

impl Shard {
    /// Allocates a reply slot for an ask made on this shard.
    #[inline(always)]
    pub(crate) fn reply_slot<R: Send + 'static>(self: &Rc<Self>) -> (ReplyTo<R>, Reply<R>) {
        let (slot, generation) = self.replies.borrow_mut().insert_with(ReplySlot::default);
        let to = ReplyTo {
            target: std::mem::ManuallyDrop::new(Some(Target::Shard {
                runtime: self.shared.id,
                shard: self.id,
                slot,
                generation,
            })),
            _reply: PhantomData,
        };
        let reply = Reply {
            shard: self.clone(),
            slot,
            generation,
            done: false,
            target: None,
            _reply: PhantomData,
        };
        (to, reply)
    }

    /// Stores a reply (`None`: the handle was dropped unanswered) and wakes
    /// its asker. A reply for a freed slot is late.
    pub(crate) fn fulfil<R: 'static>(&self, slot: u32, generation: u32, answer: Option<R>) {
        let (waiter, late) = {
            let mut replies = self.replies.borrow_mut();
            match replies.get_mut(slot, generation) {
                Some(s) if !s.answered => {
                    s.answered = true;
                    if let Some(value) = answer {
                        // SAFETY: not answered yet, so the storage is empty.
                        unsafe { s.value.put(value) };
                        s.drop_value = Some(drop_stored::<R> as DropValue);
                    }
                    (std::mem::replace(&mut s.waiter, Waiter::Nobody), None)
                }
                _ => (Waiter::Nobody, Some(answer)),
            }
        };
        match waiter {
            Waiter::Nobody => {}
            Waiter::Local(key, task) => self.wake_key(key, task),
            Waiter::Waker(w) => w.wake(),
        }
        if let Some(outcome) = late {
            self.count_late_reply();
            drop(outcome); // outside the borrow: may run user drops
        }
    }
}

/// The asker's side of a request: resolves to the reply, or to an error if
/// the request could not be delivered or the replier dropped its handle.
#[must_use = "futures do nothing unless polled"]
pub struct Reply<R> {
    shard: Rc<Shard>,
    slot: u32,
    generation: u32,
    done: bool,
    /// The process asked, until the first poll: a hand-off candidate
    /// (rule 6 of `sched.rs`).
    target: Option<Pid>,
    _reply: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for Reply<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply(slot {}, done {})", self.slot, self.done)
    }
}

/// What [`Reply::poll_into`] found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Polled {
    Pending,
    /// The answer was written to the `out` pointer.
    Answered,
    NoReply,
}

impl<R: 'static> Reply<R> {
    /// The body of `poll`, out of line, with the answer written through
    /// `out` and a one-byte verdict returned in a register. Returning the
    /// whole `Poll<Result<R, AskError>>` (24 bytes for a `u64`) went
    /// through memory: `poll` stored the value with an 8-byte store and the
    /// caller's `.await` reloaded it with a 16-byte load, which the CPU
    /// cannot forward from the store buffer; `perf annotate` put a third
    /// of the local-ask benchmark's time on that one load in some builds.
    ///
    /// # Safety
    /// `out` is valid for writing an `R`; it is written exactly when the
    /// result is `Answered`.
    #[inline(never)]
    unsafe fn poll_into(&mut self, cx: &mut Context<'_>, out: *mut R) -> Polled {
        assert!(!self.done, "Reply polled after completion");
        let this = self;
        if let Some(target) = this.target.take() {
            // The first poll of an ask of a process of this shard: if the
            // request made it the next to run, run it now (it may answer).
            this.shard.hand_off(target);
        }
        // One borrow and one lookup per poll, also the one that frees the
        // slot.
        let mut replies = this.shard.replies.borrow_mut();
        let mut entry = replies
            .occupied(this.slot, this.generation)
            .expect("a reply slot lives until its Reply is done or dropped");
        let slot = entry.get_mut();
        // Cooperative budget (`Shard::spend_ready`): past it, the reply
        // waits in its slot for the runnable's next turn.
        if slot.answered && !this.shard.spend_ready() {
            drop(replies);
            cx.waker().wake_by_ref();
            return Polled::Pending;
        }
        if !slot.answered {
            match crate::waker::local_key(cx.waker()) {
                Some((key, task)) => slot.waiter = Waiter::Local(key, task),
                None => match &slot.waiter {
                    Waiter::Waker(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waiter = Waiter::Waker(cx.waker().clone()),
                },
            }
            return Polled::Pending;
        }
        let outcome = match slot.drop_value.take() {
            Some(_) => {
                // SAFETY: `fulfil::<R>` put an `R` there (a `Reply<R>` and
                // its `ReplyTo<R>` share the slot); `drop_value` is `None`
                // now, so the slot's drop will not drop it again. `out` is
                // writable (the caller's contract).
                unsafe { out.write(slot.value.take::<R>()) };
                Polled::Answered
            }
            None => Polled::NoReply,
        };
        // `fulfil` took the waiter and the value is taken: the slot owns
        // nothing now, so it is forgotten rather than dropped (a drop would
        // test both again: 13 instructions per ask, measured).
        debug_assert!(matches!(slot.waiter, Waiter::Nobody) && slot.drop_value.is_none());
        let slot = entry.remove();
        drop(replies);
        std::mem::forget(slot);
        this.done = true;
        outcome
    }
}

impl<R: 'static> Future for Reply<R> {
    type Output = Result<R, AskError>;

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut out = MaybeUninit::<R>::uninit();
        // SAFETY: `out` is a local of the right type, read below only when
        // `poll_into` says it wrote it.
        match unsafe { self.poll_into(cx, out.as_mut_ptr()) } {
            Polled::Pending => Poll::Pending,
            // SAFETY: `Answered` means `out` was written.
            Polled::Answered => Poll::Ready(Ok(unsafe { out.assume_init() })),
            Polled::NoReply => Poll::Ready(Err(AskError::NoReply)),
        }
    }
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        if !self.done {
            let slot = self
                .shard
                .replies
                .borrow_mut()
                .remove(self.slot, self.generation);
            drop(slot); // outside the borrow
        }
    }
}

/// A one-shot completion an outside thread blocks on. It owns nothing of
/// any process: only the value (or error) handed to it.
pub(crate) struct Completion<R> {
    value: Mutex<Option<Result<R, AskError>>>,
    ready: Condvar,
}

impl<R> Completion<R> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            value: Mutex::new(None),
            ready: Condvar::new(),
        })
    }

    fn complete(&self, outcome: Result<R, AskError>) {
        let mut value = self.value.lock().unwrap_or_else(|e| e.into_inner());
        if value.is_none() {
            *value = Some(outcome);
            self.ready.notify_all();
        }
    }

    /// Blocks until completed.
    pub(crate) fn wait(&self) -> Result<R, AskError> {
        let mut value = self.value.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(outcome) = value.take() {
                return outcome;
            }
            value = self.ready.wait(value).unwrap_or_else(|e| e.into_inner());
        }
    }
}
