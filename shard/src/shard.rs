//! One shard: its process table, its scheduler state, its rings, its
//! counters.
//!
//! # Ownership rules
//!
//! 1. A `Shard` lives on exactly one thread, behind an `Rc`, reachable from
//!    that thread's `CURRENT` thread-local and from its scheduler task.
//!    Nothing in it is `Send`; other threads reach it only by pushing an
//!    [`Envelope`] into a ring or into its injector queue.
//! 2. The process table (`procs`) is the only owner of a process: its one
//!    allocation holds state, mailbox, context and suspended hook future
//!    (`proc.rs`), created, run and freed on this thread only, by the
//!    scheduler (`sched.rs`).
//! 3. Only a process's own exit path removes its entry: after the
//!    terminate hook ran and the state was dropped. Removal bumps the
//!    slot's generation, *then* waiters are told (`delivery.rs`).
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
use crate::sched::ReadyQueue;
use crate::stats::{add, bump, Counters, ShardStats};
use crate::table::{Header, ProcTable, Signal};
use corelet_cross_shard::{Consumer, Producer};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

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

impl Outbox {
    /// Moves overflow into the ring, oldest first, as far as it has room,
    /// then publishes everything pushed; returns how many became visible.
    fn refill(&mut self) -> usize {
        while let Some(env) = self.overflow.pop_front() {
            if let Err(full) = self.producer.push(env) {
                self.overflow.push_front(full.0);
                break;
            }
        }
        self.producer.publish()
    }
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
    /// A user message from [`crate::Addr::send`], which waits for room:
    /// refused with `Full` as soon as the ring has none, so that a sender
    /// that waits never queues in the overflow (measured: a `send` loop
    /// that kept 65,536 envelopes, 4 MiB, in the overflow queue spent more
    /// time copying them through it than the receiver spent delivering).
    Wait,
    /// Replies, signals, bookkeeping: never refused.
    System,
}

pub(crate) struct Shard {
    pub(crate) id: ShardId,
    pub(crate) shared: Arc<Shared>,
    pub(crate) procs: ProcTable,
    /// Tasks (`block_on` futures and the shard's own helpers) by key.
    pub(crate) tasks: RefCell<GenSlab<NonNull<Header>>>,
    pub(crate) ready: ReadyQueue,
    /// A runnable's turn is in progress (rule 5 of `sched.rs`: what it
    /// readies goes onto the work-first stack).
    pub(crate) in_turn: Cell<bool>,
    /// A hand-off is running its target (rule 6 of `sched.rs`): no second
    /// one nests inside it.
    pub(crate) handing_off: Cell<bool>,
    /// Hand-offs made in the current turn (rule 6 of `sched.rs`: at most
    /// the process budget per turn).
    pub(crate) handoffs: Cell<u32>,
    /// The runtime's futures found ready at their poll in the current turn
    /// (replies, sends): the cooperative budget of `Reply::poll` and
    /// `Sending::poll` (see `Shard::spend_ready`).
    pub(crate) ready_at_once: Cell<u32>,
    /// A `send().await` found no room in a ring this round (see
    /// `Shard::note_no_room`).
    waited_for_room: Cell<bool>,
    /// This shard's part of the name registry.
    pub(crate) names: RefCell<Names>,
    pub(crate) replies: RefCell<GenSlab<ReplySlot>>,
    outboxes: RefCell<Vec<Option<Outbox>>>,
    inboxes: RefCell<Vec<Consumer<Envelope>>>,
    /// Outboxes holding unpublished or overflowing envelopes.
    dirty: Cell<bool>,
    scheduler_waker: RefCell<Option<Waker>>,
    scheduler_parked: Cell<bool>,
    stopping: Cell<bool>,
    budget: u32,
    /// Envelopes pushed to a ring before a mid-round publish
    /// (`Builder::publish_batch`).
    publish_batch: usize,
    pub(crate) counters: Counters,
    /// Blocks for process and task allocations (see `block_cache.rs`).
    pub(crate) blocks: crate::block_cache::BlockCache,
}

thread_local! {
    /// This thread's shard: a strong reference leaked into a raw pointer
    /// by `set_current` and taken back by `take_current` (a plain pointer,
    /// so that reading it is one load: it is on every `tell`). Written only
    /// by the shard thread's setup and teardown (`pool.rs`), never while a
    /// `with_current` closure runs.
    static CURRENT: Cell<*const Shard> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with this thread's shard, if this is a shard thread.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Rc<Shard>) -> R) -> Option<R> {
    let current = CURRENT.get();
    if current.is_null() {
        return None;
    }
    // SAFETY: `current` came from `Rc::into_raw` in `set_current` and its
    // strong count is held until `take_current`, which no code running
    // inside `f` calls; `ManuallyDrop` leaves that count alone.
    let shard = ManuallyDrop::new(unsafe { Rc::from_raw(current) });
    Some(f(&shard))
}

/// Runs `on_shard(shard, value)` on a shard thread, or `elsewhere(value)`:
/// one thread-local load, and the value is handed back either way.
#[inline]
pub(crate) fn with_current_or<T, R>(
    value: T,
    on_shard: impl FnOnce(&Rc<Shard>, T) -> R,
    elsewhere: impl FnOnce(T) -> R,
) -> R {
    let current = CURRENT.get();
    if current.is_null() {
        return elsewhere(value);
    }
    // SAFETY: as in `with_current`.
    let shard = ManuallyDrop::new(unsafe { Rc::from_raw(current) });
    on_shard(&shard, value)
}

/// This thread's shard, borrowed for the duration of a call that does not
/// replace it (see `CURRENT`): the hot paths use this rather than a closure
/// so that a message is not moved through extra frames.
#[inline(always)]
pub(crate) fn current_ref<'a>() -> Option<&'a Shard> {
    let current = CURRENT.get();
    // SAFETY: as in `with_current`: the shard outlives every call made on
    // its thread between `set_current` and `take_current`, and the callers
    // (`Addr::tell` and friends) use the reference only within the call.
    unsafe { current.as_ref() }
}

/// This thread's shard as an `Rc` that is not counted: no increment now,
/// no decrement when it goes (it is never dropped). For a call that needs
/// an `&Rc<Shard>` and keeps no reference past its return (what `CURRENT`
/// guarantees, see `with_current`).
#[inline(always)]
pub(crate) fn current_borrowed() -> Option<ManuallyDrop<Rc<Shard>>> {
    let current = CURRENT.get();
    // SAFETY: as in `with_current`: `current` came from `Rc::into_raw` and
    // its count is held until `take_current`; `ManuallyDrop` leaves the
    // count alone, and callers only borrow from it.
    (!current.is_null()).then(|| ManuallyDrop::new(unsafe { Rc::from_raw(current) }))
}

/// This thread's shard, if any.
#[inline]
pub(crate) fn current() -> Option<Rc<Shard>> {
    with_current(Rc::clone)
}

pub(crate) fn set_current(shard: Option<Rc<Shard>>) {
    drop(take_current());
    CURRENT.set(shard.map_or(std::ptr::null(), Rc::into_raw));
}

/// Takes this thread's shard out of `CURRENT`.
pub(crate) fn take_current() -> Option<Rc<Shard>> {
    let current = CURRENT.replace(std::ptr::null());
    // SAFETY: a non-null `current` came from `Rc::into_raw` in
    // `set_current`, and this takes its count back exactly once.
    (!current.is_null()).then(|| unsafe { Rc::from_raw(current) })
}

/// The pid of the process whose hook is running on this thread: the
/// runnable the scheduler marked as being run (`waker::polling`), unless it
/// is a task. One thread-local serves both (a separate `Option<Pid>` cell,
/// set and restored around every turn, cost a store-forwarding stall per
/// turn: 5 % of spawn + message + exit's samples under `perf`).
pub(crate) fn current_pid() -> Option<Pid> {
    crate::waker::polling_pid()
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
            shared: shared.clone(),
            procs: ProcTable::new(),
            tasks: RefCell::new(GenSlab::new()),
            ready: ReadyQueue::default(),
            in_turn: Cell::new(false),
            handing_off: Cell::new(false),
            handoffs: Cell::new(0),
            ready_at_once: Cell::new(0),
            waited_for_room: Cell::new(false),
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
            scheduler_waker: RefCell::new(None),
            scheduler_parked: Cell::new(false),
            stopping: Cell::new(false),
            budget: shared.config.process_budget,
            publish_batch: shared.config.publish_batch,
            counters: Counters::default(),
            blocks: Default::default(),
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    pub(crate) fn count_handled(&self, n: u64) {
        add(&self.counters.messages, n);
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

    /// Messages a process may handle per turn (rule 3 of `sched.rs`).
    #[inline]
    pub(crate) fn budget(&self) -> u32 {
        self.budget
    }

    /// The cooperative budget of the runtime's own futures. A loop of
    /// requests answered at once (a local `whereis`, asks answered by
    /// hand-offs) or of sends that always find room (to a process of this
    /// shard, or to a ring drained as fast as it fills) would never
    /// suspend, and nothing else would run on the shard. Each such future,
    /// found ready during a turn, spends one unit; past `process_budget` in
    /// one turn this returns `false` and the future asks to be polled again
    /// on the runnable's next turn, as a flooded process waits after its
    /// budget of messages.
    #[inline]
    pub(crate) fn spend_ready(&self) -> bool {
        if !self.in_turn.get() {
            return true;
        }
        let ready = self.ready_at_once.get() + 1;
        self.ready_at_once.set(ready);
        ready <= self.budget
    }

    /// Records that a `send().await` found the ring towards its target
    /// full and will retry on its next turn.
    #[inline]
    pub(crate) fn note_no_room(&self) {
        self.waited_for_room.set(true);
    }

    /// Whether a `send().await` waited for room since the last call.
    #[inline]
    pub(crate) fn take_waited_for_room(&self) -> bool {
        self.waited_for_room.replace(false)
    }

    pub(crate) fn stats(&self) -> ShardStats {
        let alive = self.procs.len() as u64;
        let names = self.names.borrow().len() as u64;
        self.counters.snapshot(self.id.0, alive, names)
    }

    /// Pushes an envelope towards shard `to`; see [`Shard::send_remote_with`].
    /// Out of line: its callers (replies, signals, spawn requests) keep
    /// their local paths small; only user messages inline the push.
    #[inline(never)]
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
    #[inline(always)]
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
        let refuse = match priority {
            Priority::User => outbox.overflow.len() >= self.shared.config.overflow_limit,
            // Room in the ring now, and nothing queued ahead (FIFO).
            Priority::Wait => !outbox.overflow.is_empty() || !outbox.producer.has_room(),
            Priority::System => false,
        };
        if refuse {
            return Err((Refused::Full, payload));
        }
        bump(&self.counters.cross_sent);
        if !outbox.overflow.is_empty() {
            // FIFO per pair: once anything waits, everything waits behind it.
            outbox.overflow.push_back(envelope(payload));
            bump(&self.counters.overflowed);
        } else if let Err(make) = outbox.producer.push_with(|| envelope(payload)) {
            // Built only now, and straight into its slot when there is room
            // (`push_with`): no copy of a freshly built envelope.
            outbox.overflow.push_back(make());
            bump(&self.counters.overflowed);
        } else if outbox.producer.unpublished() >= self.publish_batch {
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
            self.wake_scheduler();
        }
    }

    /// Wakes the scheduler task if it is parked.
    #[inline]
    pub(crate) fn wake_scheduler(&self) {
        if self.scheduler_parked.replace(false) {
            if let Some(w) = self.scheduler_waker.borrow().as_ref() {
                w.wake_by_ref();
            }
        }
    }

    /// Publishes every outbox and moves overflow into rings where room
    /// appeared. Returns whether anything is still waiting to go out.
    #[inline(never)] // a stable symbol for profilers
    pub(crate) fn flush_outbound(&self) -> bool {
        if !self.dirty.get() {
            return false;
        }
        let mut pending = false;
        {
            let mut outboxes = self.outboxes.borrow_mut();
            for (i, slot) in outboxes.iter_mut().enumerate() {
                let Some(outbox) = slot else { continue };
                if outbox.refill() > 0 {
                    // Rung with the outboxes borrowed: ringing touches only
                    // the peer's doorbell (and its waker), never an outbox.
                    // No list of shards to ring is built: that was an
                    // allocation per flush on the ask path.
                    self.ring(ShardId(i as u16));
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
        self.dirty.set(pending);
        pending
    }

    /// Drains every inbound ring and the injector, running each envelope as
    /// it is taken (delivering into mailboxes, mostly: no process runs
    /// until everything waiting has been delivered). Returns how many ran.
    #[inline(never)] // a stable symbol for profilers
    pub(crate) fn drain_inbound(self: &Rc<Self>) -> usize {
        let mut n = 0;
        let sources = self.inboxes.borrow().len();
        for i in 0..sources {
            loop {
                // A panic in an envelope (a user value's drop, say) ends
                // this drain; the ring has released what was taken, so
                // the loop picks up behind it.
                let drained = catch_unwind(AssertUnwindSafe(|| {
                    let mut inboxes = self.inboxes.borrow_mut();
                    let mut taken = 0;
                    if let Some(consumer) = inboxes.get_mut(i) {
                        // SAFETY: `run_at` consumes each envelope, in
                        // its slot, exactly once.
                        taken = unsafe {
                            consumer.drain_in_place(DRAIN_LIMIT, |env| Envelope::run_at(env, self))
                        };
                    }
                    taken
                }));
                match drained {
                    Ok(taken) => {
                        n += taken;
                        break;
                    }
                    Err(panic) => {
                        n += 1;
                        let msg = crate::exit::panic_message(&*panic);
                        tracing::error!(shard = self.id.0, panic = %msg, "envelope panicked");
                    }
                }
            }
        }
        let injector = &self.shared.shards[self.id.index()].injector;
        for _ in 0..DRAIN_LIMIT {
            // `is_empty` first: `SegQueue::pop` on an empty queue runs a
            // `SeqCst` fence (an `mfence`, which waits for every store
            // this core still has in flight, such as a ring slot or `tail`
            // just published), and almost every round finds the injector
            // empty. An envelope pushed after this look is found by the
            // next round, or by the sleep protocol's re-check
            // (`inbound_ready`, after the doorbell's barrier), which reads
            // `is_empty` too.
            if injector.is_empty() {
                break;
            }
            let Some(env) = injector.pop() else { break };
            n += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| env.run(self))) {
                let msg = crate::exit::panic_message(&*panic);
                tracing::error!(shard = self.id.0, panic = %msg, "envelope panicked");
            }
        }
        add(&self.counters.cross_received, n as u64);
        n
    }

    /// The shard has finished: run what is still waiting in its inbound
    /// rings (deliveries to processes that are gone become dead letters,
    /// requests answer with errors), then drop its ends of the rings, so
    /// that senders see them abandoned, and tell every peer to reclaim
    /// whatever it pushed after that last drain.
    pub(crate) fn close_inbound(self: &Rc<Self>) {
        self.drain_inbound();
        let inboxes = std::mem::take(&mut *self.inboxes.borrow_mut());
        drop(inboxes); // each `Consumer`'s drop marks its ring abandoned
        for (i, peer) in self.shared.shards.iter().enumerate() {
            if i != self.id.index() {
                // Release: pairs with the Acquire swap in
                // `reclaim_from_gone_peers`; the consumers' drops (their
                // Release stores of `consumer_alive`) come before it.
                peer.peer_gone.store(true, Ordering::Release);
                peer.doorbell.ring();
            }
        }
    }

    /// A peer has finished: takes back, and drops, what this shard queued
    /// for it that it will never take (from the ring and from the overflow
    /// queue). Dropping a request drops its reply handle, so its asker is
    /// told `NoReply` at once instead of waiting for the shutdown grace.
    pub(crate) fn reclaim_from_gone_peers(&self) {
        let me = &self.shared.shards[self.id.index()];
        // Relaxed first: one load per scheduler round in the common case.
        if !me.peer_gone.load(Ordering::Relaxed) || !me.peer_gone.swap(false, Ordering::Acquire) {
            return;
        }
        let mut doomed = Vec::new();
        {
            let mut outboxes = self.outboxes.borrow_mut();
            for outbox in outboxes.iter_mut().flatten() {
                if outbox.producer.is_abandoned() {
                    outbox.producer.reclaim(|env| doomed.push(env));
                    doomed.extend(outbox.overflow.drain(..));
                }
            }
        }
        add(&self.counters.dead_letters, doomed.len() as u64);
        drop(doomed); // outside the borrow: drops may re-enter the shard
    }

    /// Whether anything is waiting: inbound envelopes, ready runnables,
    /// outbound envelopes, or the end of the shard.
    pub(crate) fn has_work(&self) -> bool {
        self.inbound_ready() || !self.ready.is_empty() || self.dirty.get() || self.finished()
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
        for pid in self.procs.pids(self.id) {
            let _ = self.signal(pid, Signal::Terminate(ExitReason::Shutdown));
        }
        self.wake_scheduler();
    }

    /// Kills every process still alive (shutdown grace period expired).
    pub(crate) fn kill_all(&self) {
        for pid in self.procs.pids(self.id) {
            let _ = self.kill(pid);
        }
    }

    /// Polls the inbound rings for a short while before the shard goes to
    /// sleep. A sleeping shard costs its senders an eventfd write and itself
    /// a trip through the kernel (tens of µs on a VM), so a request/response
    /// exchange stays much faster when the peer's answer arrives within the
    /// spin. Only other threads can make work appear meanwhile (nothing else
    /// runs on this one), so only the inbound sources are polled. Returns
    /// whether work arrived.
    pub(crate) fn spin_for_work(&self) -> bool {
        let spin = self.shared.config.spin_before_park;
        if spin.is_zero() {
            return false;
        }
        let deadline = std::time::Instant::now() + spin;
        loop {
            for _ in 0..64 {
                if self.inbound_ready() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            // With more runnable threads than cores (more shards than cores,
            // or a busy machine), the peer this shard waits for may need
            // this very core: offer it. On a dedicated core this returns at
            // once (measured under load: cross-shard asks at 16-220 µs with
            // a pure spin, the peer descheduled behind the spinner).
            std::thread::yield_now();
        }
    }

    pub(crate) fn finished(&self) -> bool {
        self.stopping.get() && self.procs.len() == 0
    }

    /// Runs `fut` as a task of this shard that shutdown will cancel if it
    /// is still running then.
    pub(crate) fn run_task(&self, fut: impl Future<Output = ()> + 'static) {
        let _ = self.spawn_task(fut);
    }

    /// Run on the shard's thread after its executor panicked (with
    /// `CURRENT` cleared, so replies dropped here travel through injectors
    /// like an outside thread's): nothing of this shard will run again.
    /// Its tasks and process allocations are leaked (see below).
    ///
    /// Closes the inbound rings, so that other shards' sends fail from now
    /// on, and drops what was waiting in them; hands outbound envelopes on
    /// (the ring's by publishing, the overflow's through the destination's
    /// injector); empties the process table, dropping queued requests and
    /// exit waiters. So every asker and waiter gets an error instead of
    /// waiting forever.
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
        self.ready.clear();
        for pid in self.procs.pids(self.id) {
            let Some(h) = self.procs.remove(pid.slot(), pid.generation()) else {
                continue;
            };
            // SAFETY: the table held it, so it is a live process of this
            // shard; nothing runs it any more. Its allocation (and state)
            // is leaked on purpose: the executor died mid-run, so its
            // futures may be in any state, and dropping them could run user
            // code against a shard that no longer exists.
            let lost = unsafe { (h.as_ref().vtable.discard)(h) } as u64;
            add(&self.counters.dead_letters, lost);
            // SAFETY: as above.
            let header = unsafe { h.as_ref() };
            let (waiter, extras) = (header.waiter.take(), header.extras.borrow_mut().take());
            drop((waiter, extras)); // its waiters learn that no exit reason is coming
        }
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
            if shard.procs.len() > 0 {
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

impl Shard {
    /// Publishes the scheduler task's waker, so that a sender that sees the
    /// shard asleep always has somebody to wake.
    pub(crate) async fn publish_scheduler_waker(&self) {
        let doorbell = &self.shared.shards[self.id.index()].doorbell;
        std::future::poll_fn(|cx| {
            *self.scheduler_waker.borrow_mut() = Some(cx.waker().clone());
            doorbell.notifier().set(cx.waker());
            Poll::Ready(())
        })
        .await;
    }

    /// Parks the scheduler until a local or remote wake.
    pub(crate) fn park(&self) -> Park<'_> {
        Park {
            shard: self,
            polled: false,
        }
    }
}

/// Parks the scheduler until a local or remote wake.
pub(crate) struct Park<'a> {
    shard: &'a Shard,
    polled: bool,
}

impl Future for Park<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.polled {
            self.shard.scheduler_parked.set(false);
            return Poll::Ready(());
        }
        self.polled = true;
        // The scheduler is one task for its whole life, so the waker stored
        // at its start is still the right one.
        debug_assert!(self
            .shard
            .scheduler_waker
            .borrow()
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker())));
        self.shard.scheduler_parked.set(true);
        Poll::Pending
    }
}
