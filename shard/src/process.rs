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

    /// Handles one message at once, if it can, without awaiting: return
    /// [`Handled::Done`] with the handler's result, or hand the message on
    /// with [`Handled::Later`] and [`Process::handle`] runs it as a future
    /// that may await. The default hands every message on.
    ///
    /// This is the fast path of a message: a message handled here costs no
    /// future (nothing written into the process's hook slot, polled and
    /// dropped), which is about a quarter of a same-shard tell. The rules
    /// are those of `handle`: `Err` or a panic stops the process, and
    /// [`Context::stop`] takes effect when it returns. A process can decide
    /// per message, handling the cheap ones here and passing on those that
    /// wait for I/O or an answer:
    ///
    /// ```
    /// use corelet_shard::{Context, Handled, HandlerResult, Process, ReplyTo};
    ///
    /// struct Counter(u64);
    /// enum Msg { Add(u64), Get(ReplyTo<u64>), Flush }
    ///
    /// impl Process for Counter {
    ///     type Msg = Msg;
    ///     fn handle_now(&mut self, _ctx: &mut Context<Self>, msg: Msg) -> Handled<Msg> {
    ///         match msg {
    ///             Msg::Add(n) => self.0 += n,
    ///             Msg::Get(reply) => reply.send(self.0),
    ///             later => return Handled::Later(later),
    ///         }
    ///         Handled::Done(Ok(()))
    ///     }
    ///     async fn handle(&mut self, _ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
    ///         if let Msg::Flush = msg {
    ///             // ... await a write here ...
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    #[inline(always)]
    fn handle_now(&mut self, ctx: &mut Context<Self>, msg: Self::Msg) -> Handled<Self::Msg> {
        let _ = ctx;
        Handled::Later(msg)
    }

    /// Handles one message that [`Process::handle_now`] handed on (with the
    /// default `handle_now`, every message). Returning `Err` (or panicking)
    /// stops the process; call [`Context::stop`] to stop normally.
    ///
    /// A process that handles everything in `handle_now` need not write
    /// this: the default stops the process with an [`ExitReason::Error`]
    /// saying that a message was handed on with no `handle` to take it.
    fn handle(
        &mut self,
        ctx: &mut Context<Self>,
        msg: Self::Msg,
    ) -> impl Future<Output = HandlerResult> {
        let _ = (ctx, msg);
        async {
            Err(concat!(
                "handle_now handed a message on (Handled::Later), ",
                "but this process does not implement Process::handle"
            )
            .into())
        }
    }

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

/// What [`Process::handle_now`] did with a message.
#[derive(Debug)]
#[must_use = "a message handed back with `Later` is lost unless returned"]
pub enum Handled<M> {
    /// Handled to the end, with this result (`Err` stops the process, as
    /// from `handle`).
    Done(HandlerResult),
    /// Not handled here: [`Process::handle`] runs it.
    Later(M),
}

impl<M> From<HandlerResult> for Handled<M> {
    fn from(result: HandlerResult) -> Self {
        Handled::Done(result)
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
