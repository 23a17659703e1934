//! The calls a process (or a `block_on` future) makes on its own shard:
//! spawn, signal, wait, introspection. They use the calling thread's shard,
//! so they fail with `NotInRuntime` on other threads; outside threads use
//! the `Runtime` methods of the same names.

use crate::addr::Addr;
use crate::envelope::Envelope;
use crate::error::Error;
use crate::exit::ExitReason;
use crate::pid::{Pid, ShardId};
use crate::process::Process;
use crate::registry::RegistryError;
use crate::reply::{Completion, ReplyTo};
use crate::runtime::{not_on_shard, Runtime};
use crate::shard::{current, current_pid, with_current, Priority, Shard};
use crate::stats::ShardStats;
use crate::table::{flags, Signal};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

/// A stop request routed to a process's shard.
#[derive(Debug)]
pub(crate) enum Control {
    /// A queued signal (terminate, shutdown).
    Signal(Signal),
    /// Stop at once, even mid-handler.
    Kill,
}

impl Shard {
    /// Inserts and initialises a process on this shard. It runs when its
    /// first message arrives.
    #[inline]
    pub(crate) fn spawn<P: Process>(self: &Rc<Self>, state: P) -> Result<Addr<P>, Error> {
        if self.is_stopping() {
            return Err(Error::ShuttingDown);
        }
        let (slot, generation) = self.procs.next_key();
        let pid = Pid::from_parts(self.id, slot, generation);
        let h = crate::proc::allocate(state, pid, 0);
        let key = self.procs.insert(h);
        debug_assert_eq!(key, (slot, generation));
        self.count_spawned();
        // SAFETY: just allocated and inserted; nothing runs it yet.
        let header = unsafe { h.as_ref() };
        // A span only when a subscriber wants one at this level: an idle
        // process pays nothing for tracing otherwise.
        let span = tracing::debug_span!("process", %pid, name = tracing::field::Empty);
        if !span.is_disabled() {
            header.set(flags::SPAN);
            header.with_extras(|e| e.span = Some(span.clone()));
        }
        // `init` runs marked as this process, so that it sees its own pid.
        let init = {
            let _running = crate::waker::polling(h);
            // SAFETY: a freshly allocated `P` that has never run.
            unsafe { crate::proc::init::<P>(h) }
        };
        if let Err(reason) = init {
            tracing::debug!(parent: &span, %pid, %reason, "init failed");
            // Links, monitors and names made by `init` hear of the failure.
            // SAFETY: as above; `h` is not used after this.
            unsafe { crate::proc::exit_failed::<P>(h, self, reason.clone()) };
            return Err(Error::Init(reason));
        }
        tracing::debug!(parent: &span, %pid, "process spawned");
        Ok(Addr::from_pid_unchecked(pid))
    }

    /// Spawns from a factory, treating a panicking factory like a failed
    /// `init`.
    pub(crate) fn spawn_from<P: Process>(
        self: &Rc<Self>,
        factory: impl FnOnce() -> P,
    ) -> Result<Addr<P>, Error> {
        match catch_unwind(AssertUnwindSafe(factory)) {
            Ok(state) => self.spawn(state),
            Err(panic) => Err(Error::Init(ExitReason::Panicked(
                crate::exit::panic_message(&*panic),
            ))),
        }
    }

    /// Applies a stop request to a process of this shard.
    pub(crate) fn control(&self, pid: Pid, control: Control) -> Result<(), ()> {
        match control {
            Control::Signal(signal) => self.signal(pid, signal).map_err(drop),
            Control::Kill => self.kill(pid),
        }
    }

    /// Sends a stop request to `pid` from this shard, wherever `pid` lives.
    fn control_from(&self, pid: Pid, control: Control) -> Result<(), Error> {
        if pid.shard() == self.id {
            return self.control(pid, control).map_err(|_| {
                self.count_dead_letter();
                Error::NoProcess(pid)
            });
        }
        if pid.shard().index() >= self.shared.shards.len() {
            return Err(Error::UnknownShard(pid.shard()));
        }
        let env = Envelope::new(move |there: &Shard| {
            if there.control(pid, control).is_err() {
                there.count_dead_letter();
            }
        });
        // System priority: signals are never refused for back-pressure.
        let _ = self.send_remote(pid.shard(), env, Priority::System);
        Ok(())
    }

    /// Registers a waiter for `pid` from this shard, wherever `pid` lives.
    fn wait_from(&self, pid: Pid, waiter: ReplyTo<Option<ExitReason>>) {
        if pid.shard() == self.id {
            self.add_waiter(pid, waiter);
        } else {
            let env = Envelope::new(move |there: &Shard| there.add_waiter(pid, waiter));
            let _ = self.send_remote(pid.shard(), env, Priority::System);
        }
    }
}

use std::future::Future;

pub(crate) fn here() -> Result<Rc<Shard>, Error> {
    // Not `ok_or`: see `here_borrowed`.
    match current() {
        Some(here) => Ok(here),
        None => Err(Error::NotInRuntime),
    }
}

/// [`here`] without touching the `Rc`'s count, for calls that keep no
/// reference to the shard past their return (not for `async fn`s).
#[inline(always)]
fn here_borrowed() -> Result<std::mem::ManuallyDrop<Rc<Shard>>, Error> {
    // A `match`, not `ok_or(Error::NotInRuntime)`: `ok_or` builds the error
    // on every call and drops it on success, which is a call to `Error`'s
    // drop glue (16 instructions per spawn + wait, callgrind).
    match crate::shard::current_borrowed() {
        Some(here) => Ok(here),
        None => Err(Error::NotInRuntime),
    }
}

/// Spawns a process on the current shard. `init` runs before this returns;
/// its failure is returned as [`Error::Init`]. The state need not be `Send`.
pub fn spawn<P: Process>(state: P) -> Result<Addr<P>, Error> {
    here_borrowed()?.spawn(state)
}

/// Spawns a process on `shard`: `factory` (which must be `Send`) builds the
/// state there, so the state itself need not be `Send`.
pub async fn spawn_on<P, F>(shard: ShardId, factory: F) -> Result<Addr<P>, Error>
where
    P: Process,
    F: FnOnce() -> P + Send + 'static,
{
    let here = here()?;
    if shard == here.id {
        return here.spawn_from(factory);
    }
    if shard.index() >= here.shared.shards.len() {
        return Err(Error::UnknownShard(shard));
    }
    let (reply_to, reply) = here.reply_slot::<Result<Pid, Error>>();
    let env = Envelope::with_rc(move |there| {
        reply_to.send(there.spawn_from(factory).map(|a| a.pid()));
    });
    let _ = here.send_remote(shard, env, Priority::System);
    match reply.await {
        Ok(result) => result.map(Addr::from_pid_unchecked),
        Err(_) => Err(Error::ShuttingDown),
    }
}

/// Asks `pid` to stop: the signal overtakes queued messages, the process
/// finishes its current message, runs its terminate hook and exits with
/// [`ExitReason::Shutdown`]. Works for any shard. A dead or stale local pid
/// is `NoProcess`; for a remote pid the signal is sent and, if the process
/// is gone, counted there as a dead letter.
pub fn terminate(pid: Pid) -> Result<(), Error> {
    here()?.control_from(
        pid,
        Control::Signal(Signal::Terminate(ExitReason::Shutdown)),
    )
}

/// Asks `pid` to stop once it has handled every message queued before this
/// call; it then exits with [`ExitReason::Shutdown`] (its terminate hook
/// runs). Messages arriving after the request are dead letters.
pub fn shutdown(pid: Pid) -> Result<(), Error> {
    here()?.control_from(pid, Control::Signal(Signal::Shutdown(None)))
}

/// Registers `name` for `pid`. Names are unique: `Taken` if a live process
/// holds it. The name is released when the process exits; a new
/// incarnation may then register it, and nothing addressed to the old one
/// (a late release included) affects the new one.
pub async fn register(name: impl Into<String>, pid: Pid) -> Result<(), RegistryError> {
    let here = here().map_err(RegistryError::Runtime)?;
    let (answer, reply) = here.reply_slot();
    here.register(name.into(), pid, answer);
    reply
        .await
        .unwrap_or(Err(RegistryError::Runtime(Error::ShuttingDown)))
}

/// The pid registered under `name`, if any.
pub async fn whereis(name: impl Into<String>) -> Result<Option<Pid>, Error> {
    let here = here()?;
    let (answer, reply) = here.reply_slot();
    here.whereis(name.into(), answer);
    reply.await.map_err(|_| Error::ShuttingDown)
}

/// Removes `name` from the registry; returns the pid that held it.
pub async fn unregister(name: impl Into<String>) -> Result<Option<Pid>, Error> {
    let here = here()?;
    let (answer, reply) = here.reply_slot();
    here.unregister(name.into(), answer);
    reply.await.map_err(|_| Error::ShuttingDown)
}

/// Stops `pid` at once, even mid-handler (the handler future is dropped);
/// the terminate hook does not run (one already running is cut short); the
/// reason is [`ExitReason::Killed`].
pub fn kill(pid: Pid) -> Result<(), Error> {
    here()?.control_from(pid, Control::Kill)
}

/// Waits for `pid` to exit and returns why.
///
/// The waiter is registered when `wait` is *called*, not when the future is
/// first polled, so `let w = wait(pid); terminate(pid)?; w.await` cannot
/// miss the exit. Resolves with `NoProcess` at once for an unknown or
/// stale pid and `WaitOnSelf` if a process waits for itself. The calling
/// task yields its shard while waiting; nothing runs on its behalf.
pub fn wait(pid: Pid) -> Wait {
    let state = match here_borrowed() {
        Err(e) => Err(Some(e)),
        Ok(_) if current_pid() == Some(pid) => Err(Some(Error::WaitOnSelf(pid))),
        Ok(here) if pid.shard().index() >= here.shared.shards.len() => {
            Err(Some(Error::UnknownShard(pid.shard())))
        }
        Ok(here) => {
            let (waiter, reply) = here.reply_slot::<Option<ExitReason>>();
            here.wait_from(pid, waiter);
            // Awaiting a process of this shard that is next to run runs its
            // turn at once (the ask hand-off, rule 6 of `sched.rs`): a
            // process told to finish and then waited for exits inside the
            // waiter's first poll.
            Ok(reply.asking(pid))
        }
    };
    Wait { pid, state }
}

/// The future returned by [`wait`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Wait {
    pid: Pid,
    /// The reply slot the exit reason arrives in (which knows when it has
    /// completed), or the error to resolve with at once (`None` once
    /// taken). Left in place on completion rather than replaced: its drop
    /// comes with the `Wait`'s.
    state: Result<crate::reply::Reply<Option<ExitReason>>, Option<Error>>,
}

impl Future for Wait {
    type Output = Result<ExitReason, Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let pid = self.pid;
        let outcome = match &mut self.state {
            Err(e) => Err(e.take().expect("Wait polled after completion")),
            Ok(reply) => match std::pin::Pin::new(reply).poll(cx) {
                std::task::Poll::Pending => return std::task::Poll::Pending,
                std::task::Poll::Ready(Ok(Some(reason))) => Ok(reason),
                std::task::Poll::Ready(Ok(None)) => Err(Error::NoProcess(pid)),
                std::task::Poll::Ready(Err(_)) => Err(Error::ShuttingDown),
            },
        };
        std::task::Poll::Ready(outcome)
    }
}

/// The pid of the process currently running on this thread, if any.
pub fn self_pid() -> Option<Pid> {
    current_pid()
}

/// The shard this thread runs, if it is a shard thread.
pub fn current_shard() -> Option<ShardId> {
    with_current(|s| s.id)
}

/// Number of shards of the runtime this thread belongs to.
pub fn shard_count() -> Option<usize> {
    with_current(|s| s.shared.shards.len())
}

/// Counters of the current shard.
pub fn local_stats() -> Option<ShardStats> {
    with_current(|s| s.stats())
}

/// Outside-thread (blocking) versions of the lifecycle and messaging calls.
/// Each is refused with [`Error::BlockingOnShard`] on a shard thread.
impl Runtime {
    fn call<T: Send + 'static>(
        &self,
        shard: ShardId,
        job: impl FnOnce(&Rc<Shard>, ReplyTo<T>) + Send + 'static,
    ) -> Result<T, Error> {
        not_on_shard()?;
        self.check_shard(shard)?;
        let completion = Completion::new();
        let reply = ReplyTo::to_thread(completion.clone());
        self.shared()
            .inject(shard, Envelope::with_rc(move |s| job(s, reply)));
        completion.wait().map_err(|_| Error::ShuttingDown)
    }

    /// Spawns a process on `shard` from an outside thread (blocking until
    /// `init` has run there).
    pub fn spawn_on<P, F>(&self, shard: ShardId, factory: F) -> Result<Addr<P>, Error>
    where
        P: Process,
        F: FnOnce() -> P + Send + 'static,
    {
        self.call(shard, move |s, reply| {
            reply.send(s.spawn_from(factory).map(|a| a.pid()))
        })?
        .map(Addr::from_pid_unchecked)
    }

    /// Sends a message from an outside thread. Delivery is FIFO per sending
    /// thread; a message for a dead pid is counted as a dead letter on the
    /// target shard.
    pub fn tell<P: Process>(
        &self,
        addr: &Addr<P>,
        msg: P::Msg,
    ) -> Result<(), crate::SendError<P::Msg>>
    where
        P::Msg: Send,
    {
        let pid = addr.pid();
        if self.check_shard(pid.shard()).is_err() {
            return Err(crate::SendError::UnknownShard(msg));
        }
        // Relaxed: a hint only; a shard dying right after this check drops
        // the message with its queue.
        let target = &self.shared().shards[pid.shard().index()];
        if target.dead.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(crate::SendError::ShuttingDown(msg));
        }
        self.shared().inject(
            pid.shard(),
            Envelope::new(move |s: &Shard| {
                let _ = s.deliver(pid, msg);
            }),
        );
        Ok(())
    }

    /// Request/reply from an outside thread, blocking until the answer (or
    /// an error: the target is gone or dropped the request).
    pub fn ask<P: Process, R: Send + 'static>(
        &self,
        addr: &Addr<P>,
        make: impl FnOnce(ReplyTo<R>) -> P::Msg,
    ) -> Result<R, crate::AskError>
    where
        P::Msg: Send,
    {
        not_on_shard().map_err(|_| crate::AskError::Send("blocking ask on a shard thread"))?;
        let pid = addr.pid();
        if self.check_shard(pid.shard()).is_err() {
            return Err(crate::AskError::Send("unknown shard"));
        }
        let completion = Completion::new();
        let msg = make(ReplyTo::to_thread(completion.clone()));
        self.shared().inject(
            pid.shard(),
            Envelope::new(move |s: &Shard| {
                let _ = s.deliver(pid, msg);
            }),
        );
        completion.wait()
    }

    /// [`terminate`] from an outside thread.
    pub fn terminate(&self, pid: Pid) -> Result<(), Error> {
        self.control(
            pid,
            Control::Signal(Signal::Terminate(ExitReason::Shutdown)),
        )
    }

    /// [`shutdown`] (handle what is queued, then stop) from an outside
    /// thread. Not to be confused with [`Runtime::shutdown`], which stops
    /// the whole runtime.
    pub fn shutdown_process(&self, pid: Pid) -> Result<(), Error> {
        self.control(pid, Control::Signal(Signal::Shutdown(None)))
    }

    /// [`register`] from an outside thread (blocking).
    pub fn register(&self, name: impl Into<String>, pid: Pid) -> Result<(), RegistryError> {
        let name = name.into();
        let owner = crate::registry::owner_of(&name, self.shard_count());
        self.call(owner, move |s, answer| s.register(name, pid, answer))
            .map_err(RegistryError::Runtime)?
    }

    /// [`whereis`] from an outside thread (blocking).
    pub fn whereis(&self, name: impl Into<String>) -> Result<Option<Pid>, Error> {
        let name = name.into();
        let owner = crate::registry::owner_of(&name, self.shard_count());
        self.call(owner, move |s, answer| s.whereis(name, answer))
    }

    /// [`unregister`] from an outside thread (blocking).
    pub fn unregister(&self, name: impl Into<String>) -> Result<Option<Pid>, Error> {
        let name = name.into();
        let owner = crate::registry::owner_of(&name, self.shard_count());
        self.call(owner, move |s, answer| s.unregister(name, answer))
    }

    /// [`kill`] from an outside thread.
    pub fn kill(&self, pid: Pid) -> Result<(), Error> {
        self.control(pid, Control::Kill)
    }

    fn control(&self, pid: Pid, control: Control) -> Result<(), Error> {
        self.call(pid.shard(), move |s, reply| {
            let outcome = s.control(pid, control).map_err(|_| {
                s.count_dead_letter();
                Error::NoProcess(pid)
            });
            reply.send(outcome)
        })?
    }

    /// Registers interest in `pid`'s exit now and returns a handle to
    /// block on later: `let w = rt.watch(pid)?; rt.terminate(pid)?;
    /// w.wait()` cannot miss the exit (calls from one thread reach a shard
    /// in order).
    pub fn watch(&self, pid: Pid) -> Result<ExitWatch, Error> {
        not_on_shard()?;
        self.check_shard(pid.shard())?;
        let completion = Completion::new();
        let waiter = ReplyTo::to_thread(completion.clone());
        self.shared().inject(
            pid.shard(),
            Envelope::new(move |s: &Shard| s.add_waiter(pid, waiter)),
        );
        Ok(ExitWatch { pid, completion })
    }

    /// Blocks the calling (outside) thread until `pid` exits. The thread
    /// waits on a completion that owns nothing of the process. `NoProcess`
    /// if `pid` is unknown or stale when the request reaches its shard.
    pub fn wait(&self, pid: Pid) -> Result<ExitReason, Error> {
        self.watch(pid)?.wait()
    }
}

/// A registered interest in one process's exit, for outside threads (see
/// [`Runtime::watch`]).
pub struct ExitWatch {
    pid: Pid,
    completion: std::sync::Arc<Completion<Option<ExitReason>>>,
}

impl std::fmt::Debug for ExitWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExitWatch({})", self.pid)
    }
}

impl ExitWatch {
    /// Blocks until the process exits; refused on shard threads.
    pub fn wait(self) -> Result<ExitReason, Error> {
        not_on_shard()?;
        match self.completion.wait() {
            Ok(Some(reason)) => Ok(reason),
            Ok(None) => Err(Error::NoProcess(self.pid)),
            Err(_) => Err(Error::ShuttingDown),
        }
    }
}
