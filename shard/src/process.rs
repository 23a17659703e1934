//! The `Process` trait, its `Context`, and the task that drives one process.

use crate::addr::Addr;
use crate::exit::{panic_message, ExitReason};
use crate::pid::{Pid, ShardId};
use crate::shard::{Shard, Signal};
use corelet_mailbox::{Mailbox, Next};
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

/// What `init` and `handle` return: `Err` stops the process with
/// [`ExitReason::Error`] carrying the error's `Display` text.
pub type HandlerResult = Result<(), Box<dyn std::error::Error>>;

/// A process: private state plus hooks, run one message at a time on the
/// shard that owns it.
///
/// The state need not be `Send`: it is created on (or moved to) its shard
/// and never leaves it. Handlers may await glommio timers and I/O; while a
/// handler awaits, the process receives nothing else (messages queue), but
/// other processes of the shard keep running.
///
/// ```
/// use corelet_shard::{Context, HandlerResult, Process, ReplyTo};
///
/// struct Counter(u64);
/// enum Msg { Add(u64), Get(ReplyTo<u64>) }
///
/// impl Process for Counter {
///     type Msg = Msg;
///     async fn handle(&mut self, _ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
///         match msg {
///             Msg::Add(n) => self.0 += n,
///             Msg::Get(reply) => reply.send(self.0),
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Process: Sized + 'static {
    /// The messages this process accepts. Messages sent across shards must
    /// also be `Send`.
    type Msg: 'static;

    /// Runs once, synchronously, on the owning shard before the process
    /// receives anything. An error or panic here makes the spawn fail with
    /// [`crate::Error::Init`]; the process never runs and `terminate` is not
    /// called.
    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        let _ = ctx;
        Ok(())
    }

    /// Handles one message. Returning `Err` (or panicking) stops the
    /// process; call [`Context::stop`] to stop normally.
    fn handle(
        &mut self,
        ctx: &mut Context<Self>,
        msg: Self::Msg,
    ) -> impl Future<Output = HandlerResult>;

    /// Runs exactly once when the process stops for any reason but
    /// [`ExitReason::Killed`] (and a failed `init`), on the owning shard,
    /// before the state is dropped and before anybody observes the exit.
    fn terminate(
        &mut self,
        ctx: &mut Context<Self>,
        reason: &ExitReason,
    ) -> impl Future<Output = ()> {
        let _ = (ctx, reason);
        async {}
    }
}

/// A process's view of itself, passed to every hook.
pub struct Context<P> {
    pid: Pid,
    stop: Option<ExitReason>,
    _process: PhantomData<fn() -> P>,
}

impl<P: Process> Context<P> {
    pub(crate) fn new(pid: Pid) -> Self {
        Self {
            pid,
            stop: None,
            _process: PhantomData,
        }
    }

    /// This process's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// A typed address of this process.
    pub fn addr(&self) -> Addr<P> {
        Addr::from_pid_unchecked(self.pid)
    }

    /// The shard this process runs on.
    pub fn shard(&self) -> ShardId {
        self.pid.shard()
    }

    /// Stops the process with [`ExitReason::Normal`] once the current hook
    /// returns.
    pub fn stop(&mut self) {
        self.stop_with(ExitReason::Normal);
    }

    /// Stops the process with `reason` once the current hook returns.
    pub fn stop_with(&mut self, reason: ExitReason) {
        self.stop = Some(reason);
    }
}

/// Polls a future, turning a panic into `Err(message)`.
pub(crate) struct CatchUnwind<F>(pub(crate) F);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        // SAFETY: `CatchUnwind` is a plain wrapper; the inner future is never
        // moved out of `self`, so projecting the pin to it is structural.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(panic_message(&*payload))),
        }
    }
}

/// How one handler invocation ended.
enum Handled {
    Continue,
    Stop(ExitReason),
}

/// Runs `handle` for one message, but stops polling it if the process is
/// killed meanwhile (the handler future is dropped mid-await).
struct Interruptible<'a, F, M> {
    handler: Pin<&'a mut CatchUnwind<F>>,
    mailbox: &'a Mailbox<M, Signal>,
    killed: &'a mut bool,
}

impl<F: Future<Output = HandlerResult>, M> Future for Interruptible<'_, F, M> {
    type Output = Result<HandlerResult, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if take_kill(this.mailbox) {
            *this.killed = true;
            return Poll::Ready(Ok(Ok(())));
        }
        // Keep the waker registered while busy so that a kill signal (which
        // always wakes) gets this task polled even mid-await.
        this.mailbox.register(cx.waker());
        this.handler.as_mut().poll(cx)
    }
}

/// Removes a pending `Kill` from the signal queue, leaving other signals
/// (a `Terminate` waits for the handler to finish) and waking nobody.
fn take_kill<M>(mailbox: &Mailbox<M, Signal>) -> bool {
    mailbox.signal_count() > 0
        && mailbox
            .take_signal_if(|s| matches!(s, Signal::Kill))
            .is_some()
}

async fn handle_one<P: Process>(
    state: &mut P,
    ctx: &mut Context<P>,
    mailbox: &Mailbox<P::Msg, Signal>,
    msg: P::Msg,
) -> Handled {
    let mut killed = false;
    let outcome = {
        let handler = std::pin::pin!(CatchUnwind(state.handle(ctx, msg)));
        Interruptible {
            handler,
            mailbox,
            killed: &mut killed,
        }
        .await
    };
    if killed {
        return Handled::Stop(ExitReason::Killed);
    }
    match outcome {
        Ok(Ok(())) => match ctx.stop.take() {
            Some(reason) => Handled::Stop(reason),
            None => Handled::Continue,
        },
        Ok(Err(e)) => Handled::Stop(ExitReason::Error(e.to_string())),
        Err(panic) => Handled::Stop(ExitReason::Panicked(panic)),
    }
}

/// The body of a process's task: receive, handle, repeat; then terminate,
/// drop the state, free the slot, and only then tell waiters.
pub(crate) async fn drive<P: Process>(
    shard: Rc<Shard>,
    pid: Pid,
    mut state: P,
    mailbox: Rc<Mailbox<P::Msg, Signal>>,
) {
    let mut ctx = Context::<P>::new(pid);
    let reason = loop {
        match mailbox.next().await {
            Next::Signal(Signal::Terminate(reason)) => break reason,
            Next::Signal(Signal::Kill) => break ExitReason::Killed,
            Next::Message(msg) => {
                shard.count_handled();
                match handle_one(&mut state, &mut ctx, &mailbox, msg).await {
                    Handled::Continue => {}
                    Handled::Stop(reason) => break reason,
                }
            }
        }
    };
    let reason = if reason == ExitReason::Killed {
        reason
    } else {
        let hook = CatchUnwind(state.terminate(&mut ctx, &reason)).await;
        match hook {
            Ok(()) => reason,
            Err(panic) => {
                tracing::warn!(%pid, %panic, "terminate hook panicked");
                ExitReason::Panicked(panic)
            }
        }
    };
    if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(state))) {
        tracing::warn!(%pid, panic = %panic_message(&*panic), "dropping process state panicked");
    }
    shard.exit(pid, &*mailbox, reason);
}

/// Runs `init` for a freshly inserted process, catching panics.
pub(crate) fn run_init<P: Process>(state: &mut P, pid: Pid) -> Result<(), ExitReason> {
    let mut ctx = Context::<P>::new(pid);
    match catch_unwind(AssertUnwindSafe(|| state.init(&mut ctx))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ExitReason::Error(e.to_string())),
        Err(panic) => Err(ExitReason::Panicked(panic_message(&*panic))),
    }
}
