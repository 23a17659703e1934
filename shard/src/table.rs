//! The process table's entries and the shard-side half of a process's
//! life: delivery, signals, waiters, and the exit fan-out.
//!
//! # Rules
//!
//! 1. An entry is inserted by `spawn` and removed only by [`Shard::exit`],
//!    which the process's own task calls after its terminate hook ran and
//!    its state was dropped (or by `spawn` itself when `init` fails).
//! 2. Removal bumps the slot's generation *before* anybody is told: the
//!    order is waiters, monitors, links, names. So whoever learns of an exit
//!    can only reach the slot's next occupant with a new pid.
//! 3. Everything in an entry is plain data (pids, references, reply
//!    handles) except the process cell, which only this thread touches.

use crate::exit::ExitReason;
use crate::link::{Down, MonitorRef};
use crate::pid::Pid;
use crate::reply::ReplyTo;
use crate::shard::Shard;
use crate::stats::add;
use corelet_mailbox::{Mailbox, Next};
use std::any::Any;
use std::rc::Rc;

/// System signals, delivered ahead of user messages.
#[derive(Debug)]
pub(crate) enum Signal {
    /// Stop after the current message, dropping queued ones; run the
    /// terminate hook. Also how an untrapped linked exit arrives.
    Terminate(ExitReason),
    /// Handle the messages queued so far, then stop with `Shutdown`.
    /// Senders build it as `Shutdown(None)`; on arrival the owner stamps it
    /// with the mailbox's message count (`ProcCell::signal`), so that the
    /// messages queued *before the request* are handled and later ones are
    /// not, however long the process takes to get to the signal.
    Shutdown(Option<u64>),
    /// Stop at once, even mid-handler; skip the terminate hook.
    Kill,
}

/// What travels in a process's message lane, in order.
pub(crate) enum Item<M> {
    /// A user message.
    User(M),
    /// A linked process exited and this process traps exits.
    Exit { from: Pid, reason: ExitReason },
    /// A monitored process exited.
    Down(Down),
}

/// What the process's task and the table share: the mailbox and the
/// process's tracing span. Two `Rc`s, one thread.
pub(crate) struct ProcCell<M> {
    pub(crate) mailbox: Mailbox<Item<M>, Signal>,
    pub(crate) span: tracing::Span,
}

/// The table's type-erased view of a [`ProcCell`].
pub(crate) trait AnyCell {
    fn as_any(&self) -> &dyn Any;
    fn signal(&self, signal: Signal) -> Result<(), Signal>;
    fn push_exit(&self, from: Pid, reason: ExitReason) -> bool;
    fn push_down(&self, down: Down) -> bool;
    fn span(&self) -> &tracing::Span;
    /// Drops everything queued, returning how many user messages that was.
    /// Leaves the registered waker alone (see `Shard::abandon`).
    fn discard(&self) -> usize;
}

impl<M: 'static> AnyCell for ProcCell<M> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn signal(&self, signal: Signal) -> Result<(), Signal> {
        let signal = match signal {
            Signal::Shutdown(None) => Signal::Shutdown(Some(self.mailbox.pushed())),
            other => other,
        };
        self.mailbox.push_signal(signal)
    }
    fn push_exit(&self, from: Pid, reason: ExitReason) -> bool {
        self.mailbox.push(Item::Exit { from, reason }).is_ok()
    }
    fn push_down(&self, down: Down) -> bool {
        self.mailbox.push(Item::Down(down)).is_ok()
    }
    fn span(&self) -> &tracing::Span {
        &self.span
    }
    fn discard(&self) -> usize {
        let mut messages = 0;
        while let Some(next) = self.mailbox.try_next() {
            if matches!(next, Next::Message(Item::User(_))) {
                messages += 1;
            }
            drop(next); // no borrow held: may run a reply handle's drop
        }
        messages
    }
}

/// A process's control block in the table. Kept small (an idle process
/// costs its entry plus its task): the rarely used lists live behind one
/// optional box.
pub(crate) struct Entry {
    pub(crate) cell: Rc<dyn AnyCell>,
    pub(crate) trap_exits: bool,
    pub(crate) extras: Option<Box<Extras>>,
}

/// Who to tell when the process exits, and what it holds.
#[derive(Default)]
pub(crate) struct Extras {
    pub(crate) waiters: Vec<ReplyTo<Option<ExitReason>>>,
    pub(crate) links: Vec<Pid>,
    /// Monitors *of* this process (watchers to send `Down` to).
    pub(crate) monitors: Vec<MonitorRef>,
    pub(crate) names: Vec<String>,
}

impl Entry {
    pub(crate) fn new(cell: Rc<dyn AnyCell>) -> Self {
        Self {
            cell,
            trap_exits: false,
            extras: None,
        }
    }

    pub(crate) fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Default::default)
    }
}

impl Shard {
    /// Delivers a user message to a process of this shard.
    #[inline]
    pub(crate) fn deliver<M: 'static>(&self, pid: Pid, msg: M) -> Result<(), crate::SendError<M>> {
        let procs = self.procs.borrow();
        let Some(entry) = procs.get(pid.slot(), pid.generation()) else {
            drop(procs);
            self.count_dead_letter();
            return Err(crate::SendError::NoProcess(msg));
        };
        let Some(cell) = entry.cell.as_any().downcast_ref::<ProcCell<M>>() else {
            drop(procs);
            self.count_dead_letter();
            return Err(crate::SendError::WrongType(msg));
        };
        // `push` only wakes a glommio task (it runs no user code), so the
        // table borrow may be held across it.
        match cell.mailbox.push(Item::User(msg)) {
            Ok(()) => Ok(()),
            Err(Item::User(msg)) => {
                drop(procs);
                self.count_dead_letter();
                Err(crate::SendError::NoProcess(msg))
            }
            Err(_) => unreachable!("push hands back what it was given"),
        }
    }

    /// Sends a signal to a process of this shard.
    pub(crate) fn signal(&self, pid: Pid, signal: Signal) -> Result<(), Signal> {
        let procs = self.procs.borrow();
        match procs.get(pid.slot(), pid.generation()) {
            Some(entry) => entry.cell.signal(signal),
            None => Err(signal),
        }
    }

    /// Registers `waiter` to learn `pid`'s exit reason, or answers at once
    /// with `None` (no such process) if `pid` is not alive here.
    pub(crate) fn add_waiter(&self, pid: Pid, waiter: ReplyTo<Option<ExitReason>>) {
        let rejected = {
            let mut procs = self.procs.borrow_mut();
            match procs.get_mut(pid.slot(), pid.generation()) {
                Some(entry) => {
                    entry.extras().waiters.push(waiter);
                    None
                }
                None => Some(waiter),
            }
        };
        if let Some(waiter) = rejected {
            waiter.send(None);
        }
    }

    /// The last step of a process's life, run by its own task: close the
    /// mailbox, free the slot (bumping its generation), then tell waiters,
    /// monitors, links and the registry, in that order.
    pub(crate) fn exit<M: 'static>(&self, pid: Pid, cell: &ProcCell<M>, reason: ExitReason) {
        let leftovers = cell.mailbox.close();
        let entry = self.procs.borrow_mut().remove(pid.slot(), pid.generation());
        let entry = entry.expect("a process's slot is freed only by its own task");
        self.counters.count_exit(&reason);
        let dead = leftovers
            .messages
            .iter()
            .filter(|item| matches!(item, Item::User(_)))
            .count();
        add(&self.counters.dead_letters, dead as u64);
        tracing::debug!(parent: &cell.span, %pid, %reason, "process exited");
        // Dropped here, outside every borrow: undelivered requests tell
        // their askers that no reply is coming.
        drop(leftovers);
        if let Some(extras) = entry.extras {
            self.fan_out_exit(pid, &reason, *extras);
        }
        if self.is_stopping() && self.procs.borrow().len() == 0 {
            self.wake_pump();
        }
    }

    fn fan_out_exit(&self, pid: Pid, reason: &ExitReason, extras: Extras) {
        let Extras {
            waiters,
            links,
            monitors,
            names,
        } = extras;
        for waiter in waiters {
            waiter.send(Some(reason.clone()));
        }
        for monitor in monitors {
            self.send_down(Down {
                monitor,
                pid,
                reason: reason.clone(),
            });
        }
        for linked in links {
            self.send_link_exit(linked, pid, reason.clone());
        }
        for name in names {
            self.release_name(name, pid);
        }
    }
}
