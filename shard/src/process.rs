//! The `Process` trait, and a future wrapper that turns panics into errors.

use crate::context::Context;
use crate::exit::{panic_message, ExitReason};
use crate::link::Down;
use crate::pid::Pid;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
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
