//! The shard side of a process's life: delivery of messages and signals,
//! exit waiters, and the exit fan-out.
//!
//! # Rules
//!
//! 1. A delivery looks the pid up in the table (slot *and* generation) and
//!    checks the message type against the process's before it touches the
//!    typed mailbox; a stale, dead or mistyped pid is a counted dead letter
//!    and the message is handed back.
//! 2. The exit path (`Shard::exit`, called by the process's own run after
//!    its state was dropped) frees the slot, bumping its generation, before
//!    it tells anybody: waiters, then monitors, links, names.
//! 3. Values that may run user code when dropped (undelivered messages,
//!    reply handles) are dropped with no borrow of the shard held.

use crate::error::SendError;
use crate::exit::ExitReason;
use crate::link::Down;
use crate::pid::Pid;
use crate::proc::mailbox;
use crate::reply::ReplyTo;
use crate::shard::Shard;
use crate::stats::add;
use crate::table::{flags, Extras, Header, Item, Signal, System};
use corelet_mailbox::Leftovers;
use std::any::TypeId;
use std::ptr::NonNull;

impl Shard {
    /// Delivers a user message to a process of this shard (rule 1).
    #[inline(always)]
    pub(crate) fn deliver<M: 'static>(&self, pid: Pid, msg: M) -> Result<(), SendError<M>> {
        match self.procs.get(pid.slot(), pid.generation()) {
            // SAFETY: found in the table, so alive (table rule 1).
            Some(h) if unsafe { h.as_ref() }.vtable.msg_type == TypeId::of::<M>() => {
                // SAFETY: a live process whose message type is `M` (just
                // checked); nothing else holds its mailbox during this push.
                unsafe { mailbox::<M>(h) }.push_message(Item::User(msg));
                // SAFETY: alive, of this shard.
                unsafe { self.on_message(h) };
                Ok(())
            }
            found => self.refuse(found.is_some(), msg),
        }
    }

    /// [`Shard::deliver`] of a message that lies at `src` (a ring slot's
    /// envelope, [`Envelope::message`](crate::envelope::Envelope::message)):
    /// read from there only once it is known to be wanted, straight into
    /// the mailbox. A refused message is a counted dead letter, dropped
    /// here.
    ///
    /// # Safety
    /// `src` holds a live `M` that the caller gives up: this call moves it
    /// out, and the caller never uses or drops it again.
    #[inline(always)]
    pub(crate) unsafe fn deliver_from<M: 'static>(&self, pid: Pid, src: *mut M) {
        match self.procs.get(pid.slot(), pid.generation()) {
            // SAFETY: found in the table, so alive (table rule 1).
            Some(h) if unsafe { h.as_ref() }.vtable.msg_type == TypeId::of::<M>() => {
                // SAFETY: the caller's contract for `src` (moved out once);
                // a live process whose message type is `M`, and nothing
                // else holds its mailbox during this push. (A read by
                // words kept it in registers but cost more instructions in
                // saved registers and spills than the copy it saved.)
                unsafe { mailbox::<M>(h).push_message(Item::User(src.read())) };
                // SAFETY: alive, of this shard.
                unsafe { self.on_message(h) };
            }
            // SAFETY: the caller's contract; the refused message is
            // dropped here, with no borrow of the shard held (rule 3).
            found => drop(self.refuse(found.is_some(), unsafe { src.read() })),
        }
    }

    /// The slow path of [`Shard::deliver`]: a counted dead letter.
    #[cold]
    #[inline(never)]
    fn refuse<M>(&self, wrong_type: bool, msg: M) -> Result<(), SendError<M>> {
        self.count_dead_letter();
        Err(if wrong_type {
            SendError::WrongType(msg)
        } else {
            SendError::NoProcess(msg)
        })
    }

    /// Sends a signal to a process of this shard.
    pub(crate) fn signal(&self, pid: Pid, signal: Signal) -> Result<(), Signal> {
        let Some(h) = self.procs.get(pid.slot(), pid.generation()) else {
            return Err(signal);
        };
        // SAFETY: found in the table, so alive; the vtable matches the
        // allocation.
        unsafe {
            (h.as_ref().vtable.signal)(h, signal);
            self.on_signal(h, false);
        }
        Ok(())
    }

    /// Kills a process of this shard: it stops at once, even mid-handler.
    pub(crate) fn kill(&self, pid: Pid) -> Result<(), ()> {
        let Some(h) = self.procs.get(pid.slot(), pid.generation()) else {
            return Err(());
        };
        // SAFETY: found in the table, so alive.
        unsafe {
            h.as_ref().set(flags::KILL);
            self.on_signal(h, true);
        }
        Ok(())
    }

    /// Queues a trapped exit or a `Down` for `pid`; `false` if it is gone.
    pub(crate) fn push_system(&self, pid: Pid, item: System) -> bool {
        let Some(h) = self.procs.get(pid.slot(), pid.generation()) else {
            return false;
        };
        // SAFETY: found in the table, so alive; the vtable matches.
        unsafe {
            (h.as_ref().vtable.system)(h, Box::new(item));
            self.on_message(h);
        }
        true
    }

    /// The live header of `pid`, if any.
    #[inline]
    pub(crate) fn header(&self, pid: Pid) -> Option<&Header> {
        let h = self.procs.get(pid.slot(), pid.generation())?;
        // SAFETY: alive while in the table; the reference is used only
        // within the caller's short access (no exit can run meanwhile: an
        // exit runs only from the scheduler, never from these callers).
        Some(unsafe { &*h.as_ptr() })
    }

    /// Registers `waiter` to learn `pid`'s exit reason, or answers at once
    /// with `None` (no such process) if `pid` is not alive here.
    #[inline]
    pub(crate) fn add_waiter(&self, pid: Pid, waiter: ReplyTo<Option<ExitReason>>) {
        match self.header(pid) {
            Some(header) => match header.waiter.take() {
                None => header.waiter.set(Some(waiter)),
                Some(first) => {
                    header.waiter.set(Some(first));
                    header.with_extras(|e| e.rare().waiters.push(waiter));
                }
            },
            None => waiter.send(None),
        }
    }

    /// Releases what a process's context holds, before its state is
    /// dropped: its timers and owned tasks are cancelled and its own
    /// monitors are dropped on their targets' side.
    pub(crate) fn release_context(&self, header: &Header) {
        // Most processes have no extras at all: a test, and the rest out
        // of line (its register saves cost as much as the test).
        if header.extras.borrow().is_some() {
            self.release_context_lists(header);
        }
    }

    #[inline(never)]
    fn release_context_lists(&self, header: &Header) {
        let parts = header.extras_mut(|e| {
            // Most processes have none of the three: nothing to move out.
            let r = e.rare.as_deref_mut()?;
            if r.timers.is_empty() && r.owned.is_empty() && r.watching.is_empty() {
                return None;
            }
            Some((
                std::mem::take(&mut r.timers),
                std::mem::take(&mut r.owned),
                std::mem::take(&mut r.watching),
            ))
        });
        let Some(Some((timers, owned, watching))) = parts else {
            return;
        };
        drop(timers); // cancels: no timer outlives its process
        drop(owned); // drops every owned future (and what it holds) now
        for monitor in watching {
            self.demonitor(monitor);
        }
    }

    /// The last step of a process's life, run by its own run after its
    /// state was dropped: free the slot (bumping its generation), then tell
    /// waiters, monitors, links and the registry, in that order (rule 2).
    pub(crate) fn exit<M>(
        &self,
        h: NonNull<Header>,
        reason: &ExitReason,
        leftovers: Option<Leftovers<Item<M>, Signal>>,
    ) {
        // SAFETY: the caller (the process's own exit) keeps `h` alive until
        // this returns.
        let header = unsafe { h.as_ref() };
        let pid = header.pid;
        let removed = self.procs.remove(pid.slot(), pid.generation());
        debug_assert_eq!(
            removed,
            Some(h),
            "a process's slot is freed only by its own exit"
        );
        self.counters.count_exit(reason);
        if let Some(leftovers) = &leftovers {
            let dead = leftovers
                .messages
                .iter()
                .filter(|item| matches!(item, Item::User(_)))
                .count();
            add(&self.counters.dead_letters, dead as u64);
        }
        let waiter = header.waiter.take();
        let extras = header.extras.borrow_mut().take();
        match extras.as_ref().and_then(|e| e.span.as_ref()) {
            Some(span) => tracing::debug!(parent: span, %pid, %reason, "process exited"),
            None => tracing::debug!(%pid, %reason, "process exited"),
        }
        // Dropped here, outside every borrow: undelivered requests tell
        // their askers that no reply is coming (rule 3).
        if let Some(leftovers) = leftovers {
            drop_leftovers(leftovers);
        }
        if let Some(waiter) = waiter {
            waiter.send_on(self, Some(reason.clone()));
        }
        if let Some(mut extras) = extras {
            self.fan_out_exit(pid, reason, &mut extras);
        }
        if self.is_stopping() && self.procs.len() == 0 {
            self.wake_scheduler();
        }
    }

    fn fan_out_exit(&self, pid: Pid, reason: &ExitReason, extras: &mut Extras) {
        // Taken field by field rather than moving the whole (large)
        // struct, and only when not empty (most exits have nothing here:
        // no iterator to set up and drop).
        let Some(rare) = extras.rare.as_deref_mut() else {
            return;
        };
        if !rare.waiters.is_empty() {
            for waiter in std::mem::take(&mut rare.waiters) {
                waiter.send(Some(reason.clone()));
            }
        }
        if !rare.monitors.is_empty() {
            for monitor in std::mem::take(&mut rare.monitors) {
                self.send_down(Down {
                    monitor,
                    pid,
                    reason: reason.clone(),
                });
            }
        }
        if !rare.links.is_empty() {
            for linked in std::mem::take(&mut rare.links) {
                self.send_link_exit(linked, pid, reason.clone());
            }
        }
        if !rare.names.is_empty() {
            for name in std::mem::take(&mut rare.names) {
                self.release_name(name, pid);
            }
        }
    }
}

/// Drops what a process left in its mailbox, out of line: most processes
/// leave nothing, and then the exit path costs a test, not a call into the
/// drop of an `Option<Leftovers>` (15 instructions per exit, callgrind).
#[inline(never)]
fn drop_leftovers<M>(leftovers: Leftovers<Item<M>, Signal>) {
    drop(leftovers);
}
