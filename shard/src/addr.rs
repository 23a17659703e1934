//! Typed addresses and the messaging calls: `tell`, `send`, `ask`.

use crate::envelope::Envelope;
use crate::error::{AskError, SendError};
use crate::pid::Pid;
use crate::process::Process;
use crate::reply::{Reply, ReplyTo};
use crate::shard::{Priority, Refused, Shard};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The typed address of a process: its [`Pid`] plus the message type.
///
/// Like `Pid` it is plain data (`Copy`, `Send`, `Sync`) and keeps nothing
/// alive. Messaging calls made from a shard thread go through that shard;
/// from outside threads use the `Runtime` methods.
pub struct Addr<P> {
    pid: Pid,
    _process: PhantomData<fn() -> P>,
}

impl<P> Clone for Addr<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for Addr<P> {}
impl<P> PartialEq for Addr<P> {
    fn eq(&self, other: &Self) -> bool {
        self.pid == other.pid
    }
}
impl<P> Eq for Addr<P> {}
impl<P> std::hash::Hash for Addr<P> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pid.hash(state)
    }
}
impl<P> fmt::Debug for Addr<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Addr{}", self.pid)
    }
}

impl<P> Addr<P> {
    /// Only spawn and `Context::addr` build typed addresses, so the message
    /// type always matches (a mismatch would be refused with `WrongType`
    /// anyway).
    pub(crate) fn from_pid_unchecked(pid: Pid) -> Self {
        Self {
            pid,
            _process: PhantomData,
        }
    }

    /// The untyped pid, for lifecycle calls.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

/// Routes `msg` to `pid` from the current shard.
#[inline(always)]
pub(crate) fn route<M: Send + 'static>(
    here: &Shard,
    pid: Pid,
    msg: M,
    priority: Priority,
) -> Result<(), SendError<M>> {
    if pid.shard() == here.id {
        return here.deliver(pid, msg);
    }
    route_remote(here, pid, msg, priority)
}

/// [`route`] to another shard: through the ring.
#[inline(always)]
fn route_remote<M: Send + 'static>(
    here: &Shard,
    pid: Pid,
    msg: M,
    priority: Priority,
) -> Result<(), SendError<M>> {
    let mut msg = ManuallyDrop::new(msg);
    // SAFETY: `msg` is a live message owned here; on `Ok` it was moved
    // out (and `msg` is never used again; being `ManuallyDrop`, it is not
    // dropped either, also if anything after the hand-over panics).
    match unsafe { route_remote_in_place(here, pid, &mut *msg, priority) } {
        Ok(()) => Ok(()),
        // SAFETY: refused, so the message is still in place, and this is
        // the one place that takes it back.
        Err(refused) => Err(refused.with(unsafe { ManuallyDrop::take(&mut msg) })),
    }
}

/// [`route_remote`] for a message that stays where it lies until a ring
/// slot (or the overflow queue) takes it: it is read once, straight into
/// the envelope. Moving a message just built through temporaries on the
/// way cost a store-forwarding stall per send (a wide reload of narrow
/// stores; `perf annotate` put 40% of a sender's time on one such load).
///
/// # Safety
/// `src` points to a live `M` the caller owns. On `Ok` the message has
/// been moved out and the caller must not use or drop it again; on `Err`
/// it is untouched and still the caller's.
#[inline(always)]
unsafe fn route_remote_in_place<M: Send + 'static>(
    here: &Shard,
    pid: Pid,
    src: *mut M,
    priority: Priority,
) -> Result<(), SendError<()>> {
    if pid.shard().index() >= here.shared.shards.len() {
        here.count_dead_letter();
        return Err(SendError::UnknownShard(()));
    }
    let deliver = move |src: *mut M| {
        // Read in 8-byte words: see `corelet_mailbox::copy_by_words`.
        // SAFETY: this runs only when the outbox takes the message, once
        // (`send_remote_with` calls it at most once); the caller's contract
        // makes `src` live and gives up the message on `Ok`.
        let msg = unsafe { corelet_mailbox::read_by_words(src) };
        Envelope::message(pid, msg)
    };
    match here.send_remote_with(pid.shard(), src, priority, deliver) {
        Ok(()) => Ok(()),
        Err((Refused::Full, _)) => Err(SendError::Full(())),
        // The destination shard has finished: counted as a dead letter.
        Err((Refused::Closed, _)) => Err(SendError::NoProcess(())),
    }
}

impl<P: Process> Addr<P> {
    /// Fire-and-forget. Works on any shard thread; the message must be
    /// `Send` because the target may live on another shard. An error hands
    /// the message back (dead letters are also counted).
    #[inline(always)]
    pub fn tell(&self, msg: P::Msg) -> Result<(), SendError<P::Msg>>
    where
        P::Msg: Send,
    {
        match crate::shard::current_ref() {
            Some(here) => route(here, self.pid, msg, Priority::User),
            None => Err(SendError::NotInRuntime(msg)),
        }
    }

    /// Fire-and-forget to a process on the *current* shard; the message
    /// need not be `Send`. Same-shard delivery allocates nothing and uses
    /// no atomics.
    #[inline]
    pub fn tell_local(&self, msg: P::Msg) -> Result<(), SendError<P::Msg>> {
        match crate::shard::current_ref() {
            Some(here) if here.id == self.pid.shard() => here.deliver(self.pid, msg),
            Some(_) => Err(SendError::NotLocal(msg)),
            None => Err(SendError::NotInRuntime(msg)),
        }
    }

    /// Like [`Addr::tell`], but waits for room instead of failing with
    /// `Full` when the ring towards the target's shard is backed up.
    pub fn send(&self, msg: P::Msg) -> Sending<P>
    where
        P::Msg: Send,
    {
        Sending {
            pid: self.pid,
            msg: ManuallyDrop::new(msg),
            sent: false,
        }
    }

    /// Request/reply: builds the request around a [`ReplyTo`] and awaits the
    /// answer. Resolves with an error (never hangs) if the request cannot
    /// be delivered or the target exits, or drops the handle, unanswered.
    /// Unlike `tell`, an ask is never refused with `Full`: the request
    /// waits in the overflow queue when the ring is backed up.
    #[inline(always)]
    pub fn ask<R: Send + 'static>(&self, make: impl FnOnce(ReplyTo<R>) -> P::Msg) -> Ask<R>
    where
        P::Msg: Send,
    {
        self.ask_with(make, |here, pid, msg| {
            // An asker waits for its answer, so its own rate is bounded by
            // round trips: requests are not refused for back-pressure (a
            // full ring queues them in the overflow queue instead).
            route(here, pid, msg, Priority::System).map_err(AskError::from)
        })
    }

    /// [`Addr::ask`] for a target on the current shard with a non-`Send`
    /// message type.
    pub fn ask_local<R: Send + 'static>(&self, make: impl FnOnce(ReplyTo<R>) -> P::Msg) -> Ask<R> {
        self.ask_with(make, |here, pid, msg| {
            if pid.shard() == here.id {
                here.deliver(pid, msg).map_err(AskError::from)
            } else {
                Err(AskError::from(SendError::NotLocal(())))
            }
        })
    }

    #[inline(always)]
    fn ask_with<R: Send + 'static>(
        &self,
        make: impl FnOnce(ReplyTo<R>) -> P::Msg,
        send: impl FnOnce(&Shard, Pid, P::Msg) -> Result<(), AskError>,
    ) -> Ask<R> {
        // The shard is borrowed, not cloned: the one `Rc` the ask keeps is
        // the `Reply`'s.
        let Some(here) = crate::shard::current_borrowed() else {
            return Ask::failed(AskError::Send("not called from a shard thread"));
        };
        let (reply_to, reply) = here.reply_slot::<R>();
        match send(&here, self.pid, make(reply_to)) {
            // The failed message (and its ReplyTo) is already dropped; the
            // slot holds `NoReply`, but the delivery error is more precise.
            Err(e) => Ask::failed(e),
            Ok(()) => Ask::pending(reply.asking(self.pid)),
        }
    }
}

/// The future of an [`Addr::ask`].
#[must_use = "futures do nothing unless polled"]
pub struct Ask<R> {
    state: AskState<R>,
}

enum AskState<R> {
    Failed(Option<AskError>),
    Pending(Reply<R>),
}

impl<R> fmt::Debug for Ask<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ask")
    }
}

impl<R: 'static> Ask<R> {
    fn failed(e: AskError) -> Self {
        Self {
            state: AskState::Failed(Some(e)),
        }
    }

    fn pending(reply: Reply<R>) -> Self {
        Self {
            state: AskState::Pending(reply),
        }
    }

    /// Gives up with [`AskError::Timeout`] if no reply arrives within
    /// `timeout`. A reply arriving later is dropped and counted.
    pub async fn timeout(self, timeout: Duration) -> Result<R, AskError> {
        let timer = glommio::timer::Timer::new(timeout);
        let this = std::pin::pin!(self);
        let timer = std::pin::pin!(timer);
        First { a: this, b: timer }.await
    }
}

impl<R: 'static> Future for Ask<R> {
    type Output = Result<R, AskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            AskState::Failed(e) => Poll::Ready(Err(e.take().expect("Ask polled after completion"))),
            AskState::Pending(reply) => Pin::new(reply).poll(cx),
        }
    }
}

impl<R> Unpin for Ask<R> {}

/// Resolves with the ask's outcome, or `Timeout` if the timer fires first.
struct First<'a, R> {
    a: Pin<&'a mut Ask<R>>,
    b: Pin<&'a mut glommio::timer::Timer>,
}

impl<R: 'static> Future for First<'_, R> {
    type Output = Result<R, AskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = self.a.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        match self.b.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(Err(AskError::Timeout)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The future of [`Addr::send`]: resolves once the message is handed over
/// (or refused for good), yielding to the shard while the ring towards
/// the target's shard is backed up. Sends nothing unless polled.
///
/// A named future rather than an `async fn`: an `async fn` copied the
/// message from its argument into its body's local on the first poll, a
/// copy that stalled on store forwarding on every cross-shard `send` (seen
/// with `perf annotate`).
#[must_use = "futures do nothing unless polled"]
pub struct Sending<P: Process> {
    pid: Pid,
    /// Live until `sent`; read in place by the ring (see
    /// [`route_remote_in_place`]).
    msg: ManuallyDrop<P::Msg>,
    /// The message has been handed over (or handed back with the result).
    sent: bool,
}

impl<P: Process> fmt::Debug for Sending<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sending{}", self.pid)
    }
}

// The message is never pinned: it is moved out by value.
impl<P: Process> Unpin for Sending<P> {}

impl<P: Process> Drop for Sending<P> {
    fn drop(&mut self) {
        if !self.sent {
            // SAFETY: not sent, so the message is live and still ours.
            unsafe { ManuallyDrop::drop(&mut self.msg) }
        }
    }
}

impl<P: Process> Sending<P> {
    /// Takes the message out, for delivery or to hand it back, and marks
    /// it sent so that it is neither read nor dropped again.
    ///
    /// # Safety
    /// The message was not taken before (`sent` is false).
    unsafe fn take_msg(&mut self) -> P::Msg {
        self.sent = true;
        // SAFETY: the caller's contract: the message is live.
        unsafe { ManuallyDrop::take(&mut self.msg) }
    }
}

impl<P: Process> Future for Sending<P>
where
    P::Msg: Send,
{
    type Output = Result<(), SendError<P::Msg>>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        assert!(!this.sent, "`Sending` polled after it completed");
        let Some(here) = crate::shard::current_ref() else {
            // SAFETY: not sent (checked above).
            let msg = unsafe { this.take_msg() };
            return Poll::Ready(Err(SendError::NotInRuntime(msg)));
        };
        // Cooperative budget (`Shard::spend_ready`): a loop of sends that
        // always find room gives its shard back after `process_budget` of
        // them in one turn.
        if !here.spend_ready() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this.pid.shard() == here.id {
            // SAFETY: not sent (checked above).
            let msg = unsafe { this.take_msg() };
            return Poll::Ready(here.deliver(this.pid, msg));
        }
        // Marked sent before the hand-over: should anything after it panic
        // (waking the destination), the message, already in its slot, must
        // not be dropped here too. A refusal leaves it in place.
        this.sent = true;
        // SAFETY: the message is live and ours (it was not sent); on `Ok` it
        // was moved out, and `sent` says so.
        match unsafe { route_remote_in_place(here, this.pid, &mut *this.msg, Priority::Wait) } {
            Ok(()) => Poll::Ready(Ok(())),
            Err(SendError::Full(())) => {
                this.sent = false;
                // Try again on the next turn, after the shard has run its
                // other work (and the receiver, perhaps, drained the ring);
                // the scheduler offers its core meanwhile (`note_no_room`).
                here.note_no_room();
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            // SAFETY: refused, so the message is still in place, and `sent`
            // (still set) keeps it from being taken or dropped again.
            Err(refused) => Poll::Ready(Err(
                refused.with(unsafe { ManuallyDrop::take(&mut this.msg) })
            )),
        }
    }
}
