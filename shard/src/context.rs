//! `Context`: a process's view of itself and its handle on the lifecycle
//! machinery (stop, links, monitors, timers, names).

use crate::addr::Addr;
use crate::exit::ExitReason;
use crate::link::MonitorRef;
use crate::pid::{Pid, ShardId};
use crate::process::Process;
use crate::shard::{with_current, Shard};
use crate::table::{flags, Header};
use crate::timer::TimerRef;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::rc::Rc;
use std::time::Duration;

/// A process's view of itself, passed to every hook.
///
/// It lives inside the process's allocation for as long as the process
/// does. What it holds (monitors, timers) lives in the process's control
/// block; timers it started are cancelled, and monitors it holds are
/// dropped on their targets' side, when the process exits, before anybody
/// hears of the exit.
pub struct Context<P> {
    /// The control block at the start of this process's allocation: the
    /// context lives in that allocation, so the header outlives it.
    header: NonNull<Header>,
    _process: PhantomData<fn() -> P>,
}

impl<P> Context<P> {
    pub(crate) fn new(header: NonNull<Header>) -> Self {
        Self {
            header,
            _process: PhantomData,
        }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the context lives inside the allocation the header starts,
        // so the header is alive whenever the context is reachable.
        unsafe { self.header.as_ref() }
    }
}

impl<P: Process> Context<P> {
    fn with_here<R>(&self, f: impl FnOnce(&Rc<Shard>) -> R) -> R {
        with_current(f).expect("a process's context is used on its own shard")
    }

    /// This process's pid.
    #[inline]
    pub fn pid(&self) -> Pid {
        self.header().pid
    }

    /// A typed address of this process.
    #[inline]
    pub fn addr(&self) -> Addr<P> {
        Addr::from_pid_unchecked(self.pid())
    }

    /// The shard this process runs on.
    pub fn shard(&self) -> ShardId {
        self.pid().shard()
    }

    /// Stops the process with [`ExitReason::Normal`] once the current hook
    /// returns.
    #[inline]
    pub fn stop(&mut self) {
        let header = self.header();
        header.set(flags::STOP);
        header.extras_mut(|e| e.stop = None);
    }

    /// Stops the process with `reason` once the current hook returns.
    pub fn stop_with(&mut self, reason: ExitReason) {
        if reason == ExitReason::Normal {
            return self.stop();
        }
        let header = self.header();
        header.set(flags::STOP);
        header.with_extras(|e| e.stop = Some(reason));
    }

    /// Links this process to `pid` (bidirectional, idempotent). If either
    /// exits abnormally, the other stops with `Linked { pid, reason }`
    /// unless it traps exits. Linking to a dead or stale pid delivers an
    /// exit signal with `NoProcess` at once.
    pub fn link(&mut self, pid: Pid) {
        let me = self.pid();
        self.with_here(|s| s.link(me, pid));
    }

    /// Removes the link to `pid`. Once this returns, no exit signal from
    /// that link reaches this process (one already queued as a trapped
    /// message stays queued).
    pub fn unlink(&mut self, pid: Pid) {
        let me = self.pid();
        self.with_here(|s| s.unlink(me, pid));
    }

    /// Turns exit signals from links into calls of
    /// [`Process::handle_exit`] (`true`) or back into stopping (`false`).
    pub fn trap_exits(&mut self, on: bool) {
        if on {
            self.header().set(flags::TRAP_EXITS);
        } else {
            self.header().clear(flags::TRAP_EXITS);
        }
    }

    /// Monitors `pid`: this process's [`Process::handle_down`] runs exactly
    /// once when it exits — at once, with `NoProcess`, if it is already
    /// gone. Monitors stack: each call is a separate monitor.
    pub fn monitor(&mut self, pid: Pid) -> MonitorRef {
        let watcher = self.pid();
        let monitor = self.header().with_extras(|e| {
            let monitor = MonitorRef::new(watcher, pid, e.next_monitor);
            e.next_monitor += 1;
            e.rare().watching.push(monitor);
            monitor
        });
        self.with_here(|s| s.monitor(monitor));
        monitor
    }

    /// Cancels a monitor: no `Down` for it is handled after this returns.
    /// Returns `false` if it had already delivered its `Down` or was not
    /// this process's.
    pub fn demonitor(&mut self, monitor: MonitorRef) -> bool {
        if monitor.watcher() != self.pid() || !self.forget_monitor(&monitor) {
            return false;
        }
        self.with_here(|s| s.demonitor(monitor));
        true
    }

    /// Forgets a monitor; `true` if it was still active.
    pub(crate) fn forget_monitor(&mut self, monitor: &MonitorRef) -> bool {
        self.header()
            .extras_mut(|e| {
                let watching = &mut e.rare.as_deref_mut()?.watching;
                let i = watching.iter().position(|m| m == monitor)?;
                watching.swap_remove(i);
                Some(())
            })
            .flatten()
            .is_some()
    }

    /// Sends `msg` to `to` after `after`. Cancelled by
    /// [`Context::cancel_timer`] or when this process exits.
    pub fn send_after<Q>(&mut self, to: Addr<Q>, msg: Q::Msg, after: Duration) -> TimerRef
    where
        Q: Process,
        Q::Msg: Send,
    {
        let mut msg = Some(msg);
        self.header().with_extras(|e| {
            e.rare().timers.start(after, None, move || {
                if let Some(m) = msg.take() {
                    let _ = to.tell(m);
                }
                false
            })
        })
    }

    /// Sends this process `msg` after `after`; the message need not be
    /// `Send`.
    pub fn send_self_after(&mut self, msg: P::Msg, after: Duration) -> TimerRef {
        let me = self.addr();
        let mut msg = Some(msg);
        self.header().with_extras(|e| {
            e.rare().timers.start(after, None, move || {
                if let Some(m) = msg.take() {
                    let _ = me.tell_local(m);
                }
                false
            })
        })
    }

    /// Sends `to` a message built by `make` every `every`, until cancelled,
    /// until this process exits, or until `to` is gone.
    pub fn send_interval<Q>(
        &mut self,
        to: Addr<Q>,
        every: Duration,
        mut make: impl FnMut() -> Q::Msg + 'static,
    ) -> TimerRef
    where
        Q: Process,
        Q::Msg: Send,
    {
        self.header().with_extras(|e| {
            e.rare().timers.start(every, Some(every), move || {
                !matches!(to.tell(make()), Err(crate::SendError::NoProcess(_)))
            })
        })
    }

    /// Cancels a timer. Returns `true` if it was still pending (so its
    /// message will now never be sent).
    pub fn cancel_timer(&mut self, timer: TimerRef) -> bool {
        self.header()
            .extras_mut(|e| e.rare.as_deref_mut().map(|r| r.timers.cancel(timer)))
            .flatten()
            .unwrap_or(false)
    }

    /// Runs `f` on this process's owned tasks (allocating the extras).
    pub(crate) fn with_owned<R>(&mut self, f: impl FnOnce(&mut crate::owned::Owned) -> R) -> R {
        self.header().with_extras(|e| f(&mut e.rare().owned))
    }

    /// Runs `f` on this process's owned tasks, if it has any extras.
    pub(crate) fn with_owned_if_any<R>(
        &self,
        f: impl FnOnce(&mut crate::owned::Owned) -> R,
    ) -> Option<R> {
        self.header()
            .extras_mut(|e| e.rare.as_deref_mut().map(|r| f(&mut r.owned)))
            .flatten()
    }

    /// Timers of this process that have not finished.
    pub fn pending_timers(&self) -> usize {
        self.header()
            .extras_mut(|e| e.rare.as_deref().map(|r| r.timers.pending()))
            .flatten()
            .unwrap_or(0)
    }
}
