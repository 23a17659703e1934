//! One shard: its process table, its rings, its pump, its counters.
//!
//! # Ownership rules
//!
//! 1. A `Shard` lives on exactly one thread, behind an `Rc`, reachable from
//!    that thread's `CURRENT` thread-local and from the tasks it runs.
//!    Nothing in it is `Send`; other threads reach it only by pushing an
//!    [`Envelope`] into a ring or into its injector queue.
//! 2. The process table (`procs`) is the only owner of a process's control
//!    block (mailbox handle, waiters). The process state itself lives in the
//!    process's glommio task, spawned on this shard's executor: it is
//!    created, polled and dropped on this thread only.
//! 3. Only [`Shard::exit`], run by the process's own task on this thread,
//!    removes a live entry: after the terminate hook ran and the state was
//!    dropped. Removal bumps the slot's generation, *then* waiters are told.
//! 4. No `RefCell` borrow is held while user code runs or while a user
//!    value is dropped (a message's drop may run a reply handle's drop,
//!    which re-enters the shard).
//! 5. Every envelope popped from a ring is run on this thread, in ring
//!    order; every envelope pushed is either in a ring, in the outbox's
//!    overflow queue, or handed back to the caller as `Full`.

use crate::envelope::Envelope;
use crate::exit::ExitReason;
use crate::gen_slab::GenSlab;
use crate::pid::{Pid, ShardId};
use crate::registry::Names;
use crate::reply::ReplySlot;
use crate::runtime::Shared;
use crate::stats::{add, bump, Counters, ShardStats};
use crate::table::{Entry, Signal};
use corelet_cross_shard::{Consumer, Producer};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Messages published to a ring in one batch before the pump's end-of-turn
/// flush (Seastar batches 16 items the same way).
pub(crate) const BATCH: usize = 16;

/// Most envelopes taken from one inbound source per pump round, so that a
/// flooding peer cannot starve the shard's processes.
const DRAIN_LIMIT: usize = 4096;

/// This shard's producer end towards one other shard.
pub(crate) struct Outbox {
    producer: Producer<Envelope>,
    /// Envelopes that did not fit in the ring, oldest first. Once non-empty,
    /// every later envelope for this destination queues here too, so FIFO
    /// per pair holds.
    overflow: VecDeque<Envelope>,
}

/// Why an outbox refused a payload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Refused {
    /// The overflow queue is at its limit: back-pressure (user messages).
    Full,
    /// The destination shard has finished (or does not exist).
    Closed,
}

/// Whether a push may be refused for back-pressure.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// A user message: refused with `Full` past the overflow limit.
    User,
    /// Replies, signals, bookkeeping: never refused.
    System,
}

/// A `run_task` task and the flag it sets when it completes.
type TrackedTask = (glommio::Task<()>, Rc<Cell<bool>>);

pub(crate) struct Shard {
    pub(crate) id: ShardId,
    pub(crate) shared: Arc<Shared>,
    pub(crate) procs: RefCell<GenSlab<Entry>>,
    /// This shard's part of the name registry.
    pub(crate) names: RefCell<Names>,
    pub(crate) replies: RefCell<GenSlab<ReplySlot>>,
    outboxes: RefCell<Vec<Option<Outbox>>>,
    inboxes: RefCell<Vec<Consumer<Envelope>>>,
    /// Outboxes holding unpublished or overflowing envelopes.
    dirty: Cell<bool>,
    pump_waker: RefCell<Option<Waker>>,
    pump_parked: Cell<bool>,
    stopping: Cell<bool>,
    pub(crate) counters: Counters,
    /// Tasks started by `block_on` (and the shutdown timer), with a flag
    /// each sets when it completes; cancelled when the shard stops.
    tasks: RefCell<Vec<TrackedTask>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Shard>>> = const { RefCell::new(None) };
    static CURRENT_PID: Cell<Option<Pid>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's shard, if this is a shard thread.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Rc<Shard>) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow().as_ref().map(f))
}

/// Runs `on_shard(shard, value)` on a shard thread, or `elsewhere(value)`:
/// one thread-local access, and the value is handed back either way.
#[inline]
pub(crate) fn with_current_or<T, R>(
    value: T,
    on_shard: impl FnOnce(&Rc<Shard>, T) -> R,
    elsewhere: impl FnOnce(T) -> R,
) -> R {
    CURRENT.with(|c| match c.borrow().as_ref() {
        Some(shard) => on_shard(shard, value),
        None => elsewhere(value),
    })
}

/// This thread's shard, if any.
pub(crate) fn current() -> Option<Rc<Shard>> {
    CURRENT.with(|c| c.borrow().clone())
}

pub(crate) fn set_current(shard: Option<Rc<Shard>>) {
    CURRENT.with(|c| *c.borrow_mut() = shard);
}

/// Takes this thread's shard out of `CURRENT`.
pub(crate) fn take_current() -> Option<Rc<Shard>> {
    CURRENT.with(|c| c.borrow_mut().take())
}

/// The pid of the process whose task is being polled on this thread.
pub(crate) fn current_pid() -> Option<Pid> {
    CURRENT_PID.with(|c| c.get())
}

/// Runs `f` with [`current_pid`] naming `pid` (used around `init`).
pub(crate) fn with_pid<T>(pid: Pid, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Pid>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT_PID.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT_PID.with(|c| c.replace(Some(pid))));
    f()
}

/// Wraps a process's task so that [`current_pid`] names it while it runs.
pub(crate) struct WithPid<F, M> {
    pub(crate) pid: Pid,
    /// The process's cell, for its tracing span (a pointer here rather than
    /// a second 40-byte `Span`: idle memory matters).
    pub(crate) cell: Rc<crate::table::ProcCell<M>>,
    pub(crate) inner: F,
}

impl<F: Future, M> Future for WithPid<F, M> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: structural pin projection; `inner` is never moved out.
        let this = unsafe { self.get_unchecked_mut() };
        let _entered = this.cell.span.enter();
        let previous = CURRENT_PID.with(|c| c.replace(Some(this.pid)));
        // SAFETY: `this` came from a pinned reference and `inner` is not
        // moved for the rest of its life.
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        let out = inner.poll(cx);
        CURRENT_PID.with(|c| c.set(previous));
        out
    }
}

impl Shard {
    pub(crate) fn new(
        id: ShardId,
        shared: Arc<Shared>,
        inboxes: Vec<Consumer<Envelope>>,
        outboxes: Vec<Option<Producer<Envelope>>>,
    ) -> Self {
        Self {
            id,
            shared,
            procs: RefCell::new(GenSlab::new()),
            names: RefCell::new(Names::default()),
            replies: RefCell::new(GenSlab::new()),
            outboxes: RefCell::new(
                outboxes
                    .into_iter()
                    .map(|p| {
                        p.map(|producer| Outbox {
                            producer,
                            overflow: VecDeque::new(),
                        })
                    })
                    .collect(),
            ),
            inboxes: RefCell::new(inboxes),
            dirty: Cell::new(false),
            pump_waker: RefCell::new(None),
            pump_parked: Cell::new(false),
            stopping: Cell::new(false),
            counters: Counters::default(),
            tasks: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    pub(crate) fn count_handled(&self) {
        bump(&self.counters.messages);
    }

    pub(crate) fn count_dead_letter(&self) {
        bump(&self.counters.dead_letters);
    }

    pub(crate) fn count_spawned(&self) {
        bump(&self.counters.spawned);
    }

    pub(crate) fn count_late_reply(&self) {
        bump(&self.counters.late_replies);
    }

    pub(crate) fn stats(&self) -> ShardStats {
        let alive = self.procs.borrow().len() as u64;
        let names = self.names.borrow().len() as u64;
        self.counters.snapshot(self.id.0, alive, names)
    }

    /// Pushes an envelope towards shard `to`; see [`Shard::send_remote_with`].
    pub(crate) fn send_remote(
        &self,
        to: ShardId,
        envelope: Envelope,
        priority: Priority,
    ) -> Result<(), Envelope> {
        self.send_remote_with(to, envelope, priority, |env| env)
            .map_err(|(_, env)| env)
    }

    /// Checks the outbox towards shard `to` and, if it takes the payload,
    /// turns it into an envelope and pushes it — one borrow, one check, so
    /// a refused payload (a user message) is handed back intact. Refused
    /// with `Closed` if that shard has finished (counted as a dead letter)
    /// and, for user messages, `Full` past the overflow limit.
    pub(crate) fn send_remote_with<T>(
        &self,
        to: ShardId,
        payload: T,
        priority: Priority,
        envelope: impl FnOnce(T) -> Envelope,
    ) -> Result<(), (Refused, T)> {
        let mut outboxes = self.outboxes.borrow_mut();
        let outbox = match outboxes.get_mut(to.index()) {
            Some(Some(outbox)) if !outbox.producer.is_abandoned() => outbox,
            _ => {
                drop(outboxes);
                self.count_dead_letter();
                return Err((Refused::Closed, payload));
            }
        };
        if priority == Priority::User && outbox.overflow.len() >= self.shared.config.overflow_limit
        {
            return Err((Refused::Full, payload));
        }
        let envelope = envelope(payload);
        bump(&self.counters.cross_sent);
        if !outbox.overflow.is_empty() {
            // FIFO per pair: once anything waits, everything waits behind it.
            outbox.overflow.push_back(envelope);
        } else if let Err(full) = outbox.producer.push(envelope) {
            outbox.overflow.push_back(full.0);
        } else if outbox.producer.unpublished() >= BATCH {
            let _ = outbox.producer.publish();
            drop(outboxes);
            self.ring(to);
        }
        self.mark_dirty();
        Ok(())
    }

    fn ring(&self, to: ShardId) {
        if self.shared.shards[to.index()].doorbell.ring() {
            bump(&self.counters.wakeups_sent);
        }
    }

    fn mark_dirty(&self) {
        if !self.dirty.replace(true) {
            self.wake_pump();
        }
    }

    pub(crate) fn wake_pump(&self) {
        if self.pump_parked.replace(false) {
            if let Some(w) = self.pump_waker.borrow().as_ref() {
                w.wake_by_ref();
            }
        }
    }

    /// Publishes every outbox and moves overflow into rings where room
    /// appeared. Returns whether anything is still waiting to go out.
    fn flush_outbound(&self) -> bool {
        if !self.dirty.get() {
            return false;
        }
        let mut pending = false;
        let mut to_ring = Vec::new();
        {
            let mut outboxes = self.outboxes.borrow_mut();
            for (i, slot) in outboxes.iter_mut().enumerate() {
                let Some(outbox) = slot else { continue };
                while let Some(env) = outbox.overflow.pop_front() {
                    if let Err(full) = outbox.producer.push(env) {
                        outbox.overflow.push_front(full.0);
                        break;
                    }
                }
                if outbox.producer.publish() > 0 {
                    to_ring.push(i);
                }
                if !outbox.overflow.is_empty() {
                    if outbox.producer.is_abandoned() {
                        let lost = outbox.overflow.len() as u64;
                        add(&self.counters.dead_letters, lost);
                        // Dropped below, outside the borrow.
                        to_drop_later(&mut outbox.overflow);
                    } else {
                        pending = true;
                    }
                }
            }
        }
        for i in to_ring {
            self.ring(ShardId(i as u16));
        }
        self.dirty.set(pending);
        pending
    }

    /// Drains every inbound ring and the injector into `batch`, then runs
    /// the batch. Returns how many envelopes ran.
    fn drain_inbound(self: &Rc<Self>, batch: &mut Vec<Envelope>) -> usize {
        {
            let mut inboxes = self.inboxes.borrow_mut();
            for consumer in inboxes.iter_mut() {
                consumer.drain(DRAIN_LIMIT, |env| batch.push(env));
            }
        }
        let injector = &self.shared.shards[self.id.index()].injector;
        for _ in 0..DRAIN_LIMIT {
            match injector.pop() {
                Some(env) => batch.push(env),
                None => break,
            }
        }
        let n = batch.len();
        add(&self.counters.cross_received, n as u64);
        for env in batch.drain(..) {
            env.run(self);
        }
        n
    }

    fn inbound_ready(&self) -> bool {
        let mut inboxes = self.inboxes.borrow_mut();
        inboxes.iter_mut().any(|c| !c.is_empty())
            || !self.shared.shards[self.id.index()].injector.is_empty()
    }

    /// Begins shutdown: refuse new spawns, ask every process to stop.
    pub(crate) fn begin_stop(&self) {
        if self.stopping.replace(true) {
            return;
        }
        let keys = self.procs.borrow().keys();
        for (slot, generation) in keys {
            let pid = Pid::from_parts(self.id, slot, generation);
            let _ = self.signal(pid, Signal::Terminate(ExitReason::Shutdown));
        }
        self.wake_pump();
    }

    /// Kills every process still alive (shutdown grace period expired).
    pub(crate) fn kill_all(&self) {
        let keys = self.procs.borrow().keys();
        for (slot, generation) in keys {
            let _ = self.signal(Pid::from_parts(self.id, slot, generation), Signal::Kill);
        }
    }

    /// Polls the inbound rings for a short while before the shard goes to
    /// sleep, yielding to the shard's other tasks between polls. A sleeping
    /// shard costs its senders an eventfd write and itself a trip through
    /// the kernel (tens of µs on a VM), so a request/response exchange
    /// stays much faster when the peer's answer arrives within the spin.
    /// Returns whether work arrived.
    async fn spin_for_work(&self) -> bool {
        let spin = self.shared.config.spin_before_park;
        if spin.is_zero() {
            return false;
        }
        let deadline = std::time::Instant::now() + spin;
        loop {
            futures_lite::future::yield_now().await;
            if self.inbound_ready() || self.dirty.get() || self.finished() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
        }
    }

    fn finished(&self) -> bool {
        self.stopping.get() && self.procs.borrow().len() == 0
    }

    /// Runs `fut` as a task of this shard that shutdown will cancel if it
    /// is still running then.
    pub(crate) fn run_task(&self, fut: impl Future<Output = ()> + 'static) {
        let done = Rc::new(Cell::new(false));
        let flag = done.clone();
        let task = glommio::spawn_local(async move {
            fut.await;
            flag.set(true);
        });
        let mut tasks = self.tasks.borrow_mut();
        let finished: Vec<_> = {
            let (finished, running) = std::mem::take(&mut *tasks)
                .into_iter()
                .partition(|(_, done)| done.get());
            *tasks = running;
            finished
        };
        tasks.push((task, done));
        drop(tasks);
        drop(finished); // dropping a completed task's handle cancels nothing
    }

    /// Run on the shard's thread after its executor panicked (with
    /// `CURRENT` cleared, so replies dropped here travel through injectors
    /// like an outside thread's): nothing of this shard will run again.
    ///
    /// Closes the inbound rings, so that other shards' sends fail from now
    /// on, and drops what was waiting in them; hands outbound envelopes on
    /// (the ring's by publishing, the overflow's through the destination's
    /// injector); empties the process table, dropping queued requests and
    /// exit waiters. So every asker and waiter gets an error instead of
    /// waiting forever. The process states stay with their tasks, and no
    /// glommio waker is dropped here: releasing a task's last waker
    /// reschedules the task, which panics outside the executor's `run`.
    pub(crate) fn abandon(&self) {
        self.stopping.set(true);
        let inboxes = std::mem::take(&mut *self.inboxes.borrow_mut());
        let mut doomed = Vec::new();
        for mut inbox in inboxes {
            inbox.drain(usize::MAX, |env| doomed.push(env));
            // Dropping the consumer marks the ring abandoned.
        }
        drop(doomed);
        let outboxes = std::mem::take(&mut *self.outboxes.borrow_mut());
        for (to, outbox) in outboxes.into_iter().enumerate() {
            let Some(Outbox { producer, overflow }) = outbox else {
                continue;
            };
            drop(producer); // publishes what it staged
            for env in overflow {
                self.shared.inject(ShardId(to as u16), env);
            }
        }
        let keys = self.procs.borrow().keys();
        for (slot, generation) in keys {
            let entry = self.procs.borrow_mut().remove(slot, generation);
            if let Some(entry) = entry {
                let lost = entry.cell.discard() as u64;
                add(&self.counters.dead_letters, lost);
                drop(entry); // its waiters learn that no exit reason is coming
            }
        }
    }

    /// Cancels the tasks started by `run_task` that are still running.
    pub(crate) fn cancel_tasks(&self) {
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        drop(tasks);
    }

    /// Shutdown, with a deadline: processes still alive after the grace
    /// period are killed (their handler futures dropped mid-await).
    pub(crate) fn begin_stop_with_grace(self: &Rc<Self>) {
        if self.stopping.get() {
            return;
        }
        self.begin_stop();
        let shard = self.clone();
        let grace = self.shared.config.shutdown_grace;
        self.run_task(async move {
            glommio::timer::sleep(grace).await;
            if shard.procs.borrow().len() > 0 {
                tracing::warn!(
                    shard = shard.id.0,
                    "shutdown grace expired; killing stragglers"
                );
                shard.kill_all();
            }
        });
    }
}

fn to_drop_later(queue: &mut VecDeque<Envelope>) {
    // Envelopes hold user values whose drop may re-enter the shard; defer
    // it to a fresh task so that no borrow is held.
    let doomed = std::mem::take(queue);
    glommio::spawn_local(async move { drop(doomed) }).detach();
}

/// The pump: the one task per shard that moves envelopes between rings and
/// mailboxes. Returns when the shard has stopped and has no process left.
pub(crate) async fn pump(shard: Rc<Shard>) {
    let mut batch = Vec::with_capacity(256);
    let doorbell = &shard.shared.shards[shard.id.index()].doorbell;
    // Publish this task's waker before the first `prepare_sleep`, so that a
    // sender that sees the shard asleep always has somebody to wake.
    std::future::poll_fn(|cx| {
        *shard.pump_waker.borrow_mut() = Some(cx.waker().clone());
        doorbell.notifier().set(cx.waker());
        Poll::Ready(())
    })
    .await;
    let mut park = Park {
        shard: &shard,
        polled: false,
    };
    loop {
        let ran = shard.drain_inbound(&mut batch);
        let pending = shard.flush_outbound();
        if shard.finished() {
            break;
        }
        if ran > 0 || pending {
            futures_lite::future::yield_now().await;
            continue;
        }
        if shard.spin_for_work().await {
            continue;
        }
        doorbell.prepare_sleep();
        if shard.inbound_ready() {
            doorbell.cancel_sleep();
            continue;
        }
        (&mut park).await;
        park.polled = false;
        doorbell.cancel_sleep();
    }
    // A last flush so that replies and exit notices reach other shards.
    shard.flush_outbound();
}

/// Parks the pump until a local or remote wake.
struct Park<'a> {
    shard: &'a Rc<Shard>,
    polled: bool,
}

impl Future for &mut Park<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.polled {
            self.shard.pump_parked.set(false);
            return Poll::Ready(());
        }
        self.polled = true;
        // The pump is one task for its whole life, so the waker stored at
        // its start is still the right one.
        debug_assert!(self
            .shard
            .pump_waker
            .borrow()
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker())));
        self.shard.pump_parked.set(true);
        Poll::Pending
    }
}
