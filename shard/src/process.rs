//! The `Process` trait, its `Context`, and the task that drives one process.

use crate::context::Context;
use crate::exit::{panic_message, ExitReason};
use crate::link::Down;
use crate::pid::Pid;
use crate::shard::Shard;
use crate::table::{Item, ProcCell, Signal};
use corelet_mailbox::{Mailbox, Next};
use std::future::Future;
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

    /// A linked process exited while this process traps exits
    /// ([`Context::trap_exits`]). Called in message order. The default
    /// ignores it.
    fn handle_exit(
        &mut self,
        ctx: &mut Context<Self>,
        from: Pid,
        reason: ExitReason,
    ) -> impl Future<Output = HandlerResult> {
        let _ = (ctx, from, reason);
        async { Ok(()) }
    }

    /// A process this one monitors exited ([`Context::monitor`]). Called
    /// exactly once per monitor, never after [`Context::demonitor`]. The
    /// default ignores it.
    fn handle_down(
        &mut self,
        ctx: &mut Context<Self>,
        down: Down,
    ) -> impl Future<Output = HandlerResult> {
        let _ = (ctx, down);
        async { Ok(()) }
    }

    /// Runs exactly once when the process stops for any reason but
    /// [`ExitReason::Killed`] (and a failed `init`), on the owning shard,
    /// before the state is dropped and before anybody observes the exit.
    /// A kill while it runs cuts it short (its future is dropped) and the
    /// process exits with `Killed`.
    fn terminate(
        &mut self,
        ctx: &mut Context<Self>,
        reason: &ExitReason,
    ) -> impl Future<Output = ()> {
        let _ = (ctx, reason);
        async {}
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

/// How one hook invocation ended.
enum Handled {
    Continue,
    Stop(ExitReason),
}

/// Runs one hook future, but stops polling it if the process is killed
/// meanwhile (the hook's future is dropped mid-await).
struct Interruptible<'a, F, M> {
    hook: Pin<&'a mut CatchUnwind<F>>,
    mailbox: &'a Mailbox<Item<M>, Signal>,
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
        this.hook.as_mut().poll(cx)
    }
}

/// Removes a pending `Kill` from the signal queue, leaving other signals
/// (a `Terminate` waits for the handler to finish) and waking nobody.
fn take_kill<M>(mailbox: &Mailbox<Item<M>, Signal>) -> bool {
    mailbox.signal_count() > 0
        && mailbox
            .take_signal_if(|s| matches!(s, Signal::Kill))
            .is_some()
}

/// Awaits one hook, turning errors, panics and kills into the process's
/// exit. (`ctx.stop()` is checked by the caller once the hook's borrow of
/// the context has ended.)
async fn run_hook<M>(
    mailbox: &Mailbox<Item<M>, Signal>,
    hook: impl Future<Output = HandlerResult>,
) -> Handled {
    let mut killed = false;
    let outcome = {
        let hook = std::pin::pin!(CatchUnwind(hook));
        Interruptible {
            hook,
            mailbox,
            killed: &mut killed,
        }
        .await
    };
    if killed {
        return Handled::Stop(ExitReason::Killed);
    }
    match outcome {
        Ok(Ok(())) => Handled::Continue,
        Ok(Err(e)) => Handled::Stop(ExitReason::Error(e.to_string())),
        Err(panic) => Handled::Stop(ExitReason::Panicked(panic)),
    }
}

/// The body of a process's task: receive, handle, repeat; then terminate,
/// drop the state, free the slot, and only then tell anybody.
pub(crate) async fn drive<P: Process>(
    shard: Rc<Shard>,
    pid: Pid,
    mut state: P,
    mut ctx: Context<P>,
    cell: Rc<ProcCell<P::Msg>>,
) {
    let mailbox = &cell.mailbox;
    // Set by `Shutdown`: stop once this many messages have been taken.
    let mut drain_until: Option<u64> = None;
    let reason = loop {
        if drain_until.is_some_and(|mark| mailbox.popped() >= mark) {
            break ExitReason::Shutdown;
        }
        let handled = match mailbox.next().await {
            Next::Signal(Signal::Terminate(reason)) => break reason,
            Next::Signal(Signal::Kill) => break ExitReason::Killed,
            Next::Signal(Signal::Shutdown(after)) => {
                drain_until.get_or_insert(after.unwrap_or_else(|| mailbox.pushed()));
                continue;
            }
            Next::Message(Item::User(msg)) => {
                shard.count_handled();
                run_hook(mailbox, state.handle(&mut ctx, msg)).await
            }
            Next::Message(Item::Exit { from, reason }) => {
                run_hook(mailbox, state.handle_exit(&mut ctx, from, reason)).await
            }
            Next::Message(Item::Down(down)) => {
                if !ctx.forget_monitor(&down.monitor) {
                    continue; // demonitored: rule 3 of `link.rs`
                }
                run_hook(mailbox, state.handle_down(&mut ctx, down)).await
            }
        };
        match handled {
            Handled::Stop(reason) => break reason,
            Handled::Continue => {
                if let Some(reason) = ctx.take_stop() {
                    break reason;
                }
            }
        }
    };
    let reason = if reason == ExitReason::Killed {
        reason
    } else {
        // Interruptible like any hook: a kill stops a terminate hook that
        // hangs (this is what the shutdown grace period relies on).
        let hook = async {
            state.terminate(&mut ctx, &reason).await;
            Ok(())
        };
        match run_hook(mailbox, hook).await {
            Handled::Continue => reason,
            Handled::Stop(ExitReason::Panicked(panic)) => {
                tracing::warn!(%pid, %panic, "terminate hook panicked");
                ExitReason::Panicked(panic)
            }
            // `Killed`: the hook was cut short.
            Handled::Stop(other) => other,
        }
    };
    // Timers die with their owner, before anybody hears of the exit.
    drop(ctx);
    if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(state))) {
        tracing::warn!(%pid, panic = %panic_message(&*panic), "dropping process state panicked");
    }
    shard.exit(pid, &cell, reason);
}

/// Runs `init` for a freshly inserted process, catching panics. Links,
/// monitors and timers made by `init` live in `ctx`, which the process's
/// task then takes over.
pub(crate) fn run_init<P: Process>(state: &mut P, ctx: &mut Context<P>) -> Result<(), ExitReason> {
    match catch_unwind(AssertUnwindSafe(|| state.init(ctx))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ExitReason::Error(e.to_string())),
        Err(panic) => Err(ExitReason::Panicked(panic_message(&*panic))),
    }
}
