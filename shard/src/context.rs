//! `Context`: a process's view of itself and its handle on the lifecycle
//! machinery (stop, links, monitors, timers, names).

use crate::addr::Addr;
use crate::exit::ExitReason;
use crate::link::MonitorRef;
use crate::pid::{Pid, ShardId};
use crate::process::Process;
use crate::shard::{current, Shard};
use crate::timer::{TimerRef, Timers};
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

/// A process's view of itself, passed to every hook. It lives as long as
/// the process: timers it started are cancelled when it is dropped, at the
/// process's exit.
pub struct Context<P> {
    pid: Pid,
    stop: Option<ExitReason>,
    /// Allocated on first use, so that a process that never monitors or
    /// starts a timer pays one pointer for them (idle memory matters).
    extras: Option<Box<Extras>>,
    _process: PhantomData<fn() -> P>,
}

/// The parts of a context most processes never use.
#[derive(Default)]
struct Extras {
    /// This process's monitors that have not delivered their `Down` and
    /// were not demonitored. Cancelled on the targets' side when the
    /// context is dropped (the process exited).
    monitors: Vec<MonitorRef>,
    next_monitor: u64,
    timers: Timers,
    /// Owned tasks and streams (`owned.rs`), dropped with the context.
    owned: crate::owned::Owned,
}

impl<P: Process> Context<P> {
    pub(crate) fn new(pid: Pid) -> Self {
        Self {
            pid,
            stop: None,
            extras: None,
            _process: PhantomData,
        }
    }

    fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Default::default)
    }

    fn timers(&mut self) -> &mut Timers {
        &mut self.extras().timers
    }

    pub(crate) fn owned(&mut self) -> &mut crate::owned::Owned {
        &mut self.extras().owned
    }

    pub(crate) fn owned_ref(&self) -> Option<&crate::owned::Owned> {
        self.extras.as_ref().map(|e| &e.owned)
    }

    fn here(&self) -> Rc<Shard> {
        current().expect("a process's context is used on its own shard")
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

    pub(crate) fn take_stop(&mut self) -> Option<ExitReason> {
        self.stop.take()
    }

    /// Links this process to `pid` (bidirectional, idempotent). If either
    /// exits abnormally, the other stops with `Linked { pid, reason }`
    /// unless it traps exits. Linking to a dead or stale pid delivers an
    /// exit signal with `NoProcess` at once.
    pub fn link(&mut self, pid: Pid) {
        self.here().link(self.pid, pid);
    }

    /// Removes the link to `pid`. Once this returns, no exit signal from
    /// that link reaches this process (one already queued as a trapped
    /// message stays queued).
    pub fn unlink(&mut self, pid: Pid) {
        self.here().unlink(self.pid, pid);
    }

    /// Turns exit signals from links into calls of
    /// [`Process::handle_exit`] (`true`) or back into stopping (`false`).
    pub fn trap_exits(&mut self, on: bool) {
        self.here().set_trap_exits(self.pid, on);
    }

    /// Monitors `pid`: this process's [`Process::handle_down`] runs exactly
    /// once when it exits — at once, with `NoProcess`, if it is already
    /// gone. Monitors stack: each call is a separate monitor.
    pub fn monitor(&mut self, pid: Pid) -> MonitorRef {
        let watcher = self.pid;
        let extras = self.extras();
        let monitor = MonitorRef::new(watcher, pid, extras.next_monitor);
        extras.next_monitor += 1;
        extras.monitors.push(monitor);
        self.here().monitor(monitor);
        monitor
    }

    /// Cancels a monitor: no `Down` for it is handled after this returns.
    /// Returns `false` if it had already delivered its `Down` or was not
    /// this process's.
    pub fn demonitor(&mut self, monitor: MonitorRef) -> bool {
        if monitor.watcher() != self.pid || !self.forget_monitor(&monitor) {
            return false;
        }
        self.here().demonitor(monitor);
        true
    }

    /// Forgets a monitor; `true` if it was still active.
    pub(crate) fn forget_monitor(&mut self, monitor: &MonitorRef) -> bool {
        let Some(extras) = self.extras.as_mut() else {
            return false;
        };
        match extras.monitors.iter().position(|m| m == monitor) {
            Some(i) => {
                extras.monitors.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Sends `msg` to `to` after `after`. Cancelled by
    /// [`Context::cancel_timer`] or when this process exits.
    pub fn send_after<Q>(&mut self, to: Addr<Q>, msg: Q::Msg, after: Duration) -> TimerRef
    where
        Q: Process,
        Q::Msg: Send,
    {
        let mut msg = Some(msg);
        self.timers().start(after, None, move || {
            if let Some(m) = msg.take() {
                let _ = to.tell(m);
            }
            false
        })
    }

    /// Sends this process `msg` after `after`; the message need not be
    /// `Send`.
    pub fn send_self_after(&mut self, msg: P::Msg, after: Duration) -> TimerRef {
        let me = self.addr();
        let mut msg = Some(msg);
        self.timers().start(after, None, move || {
            if let Some(m) = msg.take() {
                let _ = me.tell_local(m);
            }
            false
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
        self.timers().start(every, Some(every), move || {
            !matches!(to.tell(make()), Err(crate::SendError::NoProcess(_)))
        })
    }

    /// Cancels a timer. Returns `true` if it was still pending (so its
    /// message will now never be sent).
    pub fn cancel_timer(&mut self, timer: TimerRef) -> bool {
        self.extras.as_mut().is_some_and(|e| e.timers.cancel(timer))
    }

    /// Timers of this process that have not finished.
    pub fn pending_timers(&self) -> usize {
        self.extras.as_ref().map_or(0, |e| e.timers.pending())
    }
}

impl<P> Drop for Context<P> {
    /// The process exited: its monitors that are still active are dropped
    /// on their targets' side too, so that a long-lived target does not keep
    /// (and eventually send `Down`s for) monitors of dead watchers.
    fn drop(&mut self) {
        let Some(extras) = self.extras.as_mut() else {
            return;
        };
        if extras.monitors.is_empty() {
            return;
        }
        if let Some(shard) = current() {
            for monitor in extras.monitors.drain(..) {
                shard.demonitor(monitor);
            }
        }
    }
}
