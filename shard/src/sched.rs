//! The shard's scheduler: one glommio task per shard that moves envelopes
//! between rings and mailboxes and runs the processes (and `block_on`
//! tasks) that have work, out of the process table, without a glommio task
//! per process.
//!
//! # Rules
//!
//! 1. A runnable (process or task) is in the ready queue at most once: it
//!    is pushed only on its `Idle`/`Suspended` → `Queued` transition, by
//!    [`Shard::schedule`], and popped only by the scheduler.
//! 2. A message makes an idle process ready; it never wakes a suspended
//!    handler (that one is waiting for something else). A kill does. A
//!    wake-up makes a suspended runnable ready and is ignored by an idle one
//!    (it is stale: the future that registered it has completed).
//! 3. A process runs at most `Builder::process_budget` messages per turn,
//!    then goes to the back of the queue; a scheduler round runs at most
//!    [`ROUND`] turns before it drains the rings again. So a flooded process
//!    cannot starve its neighbours, and an always-ready one cannot keep the
//!    rings from being drained.
//! 4. The scheduler gives glommio back the thread whenever glommio asks for
//!    it (`need_preempt`, set by the executor's preemption timer and by
//!    latency-ring completions) and after [`YIELD_QUANTUM`] of busy rounds
//!    (looking at the clock every [`YIELD_EVERY`] rounds), so glommio
//!    timers, I/O and other glommio tasks never starve under a message
//!    flood. It yields by sleeping on a glommio timer that is already
//!    due, never by waking itself: see [`let_glommio_run`].
//! 5. Work first: a process made ready by a message sent during a turn on
//!    this shard (by the process or task running) goes onto a *stack*, and
//!    a round runs that stack first; a message from another shard or from
//!    outside the runtime queues at the back as before. So a process that
//!    spawns and messages children has them run next, depth first (as
//!    glommio's `spawn_local` runs a new task at once), and a reply is
//!    handled while the sender's data is still in cache (as tokio's LIFO
//!    slot does). A tree of processes keeps a small live set in warm
//!    memory instead of spawning a whole level before the level above
//!    reports (skynet, 1.1 M processes on one shard: at most 48 alive and
//!    6 MB peak RSS, against 760,000 and 190 MB first in, first out).
//!    Bounds, so that the stack cannot starve anybody: a round gives the
//!    stack at most [`LIFO_TURNS`] turns while the queue has work, so the
//!    queue advances by at least `ROUND - LIFO_TURNS` every round; the
//!    stack holds at most [`LIFO_CAP`] runnables (more go to the back of
//!    the queue); and once every [`LIFO_AGE`] rounds, if the oldest
//!    runnable on the stack has waited that long, the round's first stack
//!    turn goes to it, so none waits there for more than about
//!    `LIFO_CAP × LIFO_AGE` rounds however busy the top is. (Taking the
//!    oldest every round instead breaks depth-first order: each round
//!    would open another subtree, and skynet went back to 500,000 alive.)
//! 6. Hand-off: a runnable that awaits the reply to an ask it just made of
//!    a process of its own shard, where that process is the top of the
//!    work-first stack (it was idle, and the request readied it), runs that
//!    process's turn at once, inside its own poll ([`Shard::hand_off`]),
//!    instead of suspending, going through the scheduler and being woken
//!    by the reply. The turn is the one rule 5 would run next anyway; only
//!    the switch to it and back is saved (measured with callgrind: the
//!    local ask round trip from 863 to 619 instructions). It happens only
//!    at an `.await` of the ask (never inside `ask()`, so no other process
//!    runs between two awaits of the asker), only during a scheduler turn,
//!    never nested (the target's own asks take the ordinary path, so the
//!    stack depth is bounded), at most `Builder::process_budget` times per
//!    turn (a loop of asks would otherwise never suspend, and nothing else
//!    would run on the shard: the ordinary path then gives the scheduler
//!    its turn back, as rule 3 does for a flood), and a panic in the
//!    target is the target's: it is caught and recovered here, as the
//!    scheduler would.

use crate::shard::Shard;
use crate::table::{flags, Header, Outcome, Run, VTable};
use std::any::TypeId;
use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Turns (runs of one runnable) per scheduler round, between two drains
/// of the inbound rings.
pub(crate) const ROUND: usize = 256;

/// Turns per round that go to the work-first stack first (rule 5); the
/// rest go to the first-in, first-out queue while it has work.
pub(crate) const LIFO_TURNS: usize = ROUND / 2;

/// Runnables the work-first stack holds at most (rule 5).
pub(crate) const LIFO_CAP: usize = 1024;

/// Rounds after which the oldest runnable on the work-first stack is taken
/// first, and rounds between two such turns (rule 5).
pub(crate) const LIFO_AGE: u32 = 64;

/// Busy rounds between two looks at the clock for [`YIELD_QUANTUM`].
pub(crate) const YIELD_EVERY: u32 = 64;

/// Busy time after which the scheduler yields to glommio's other tasks,
/// timers and I/O even if glommio did not ask (rule 4): Seastar's default
/// task quota. Yielding every 64 busy rounds instead stalled a
/// cross-shard stream several hundred times per second per shard (timed
/// then at 17-65 µs per yield; rechecked later at 8-13 µs, 35-39 yields
/// per shard in a 40 ms stream: `docs/architecture.md`, "Yielding to
/// glommio").
pub(crate) const YIELD_QUANTUM: std::time::Duration = std::time::Duration::from_micros(500);

/// The ready queue: an intrusive FIFO through `Header::next`, and the
/// work-first stack through the same field (rule 5; a runnable is in at
/// most one of them).
#[derive(Default)]
pub(crate) struct ReadyQueue {
    head: Cell<Option<NonNull<Header>>>,
    tail: Cell<Option<NonNull<Header>>>,
    /// Top of the work-first stack.
    top: Cell<Option<NonNull<Header>>>,
    /// Runnables on the stack.
    depth: Cell<usize>,
    /// Rounds run so far (wrapping).
    round: Cell<u32>,
    /// The round since which the stack's bottom has been at the bottom.
    bottom_since: Cell<u32>,
    /// The last round whose first stack turn went to the bottom.
    bottom_round: Cell<u32>,
    /// This round's first stack turn goes to the bottom (the oldest).
    bottom_due: Cell<bool>,
}

impl ReadyQueue {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.get().is_none() && self.top.get().is_none()
    }

    /// # Safety
    /// `h` is a live runnable of this shard that is not in the queue.
    #[inline]
    unsafe fn push(&self, h: NonNull<Header>) {
        // SAFETY: the caller's contract; headers in the queue are alive
        // (rule 1 of `table.rs`: they are freed only by their own run,
        // which happens after they leave the queue).
        unsafe {
            h.as_ref().next.set(None);
            match self.tail.get() {
                Some(tail) => tail.as_ref().next.set(Some(h)),
                None => self.head.set(Some(h)),
            }
        }
        self.tail.set(Some(h));
    }

    /// Pushes onto the work-first stack, or the back of the queue if the
    /// stack is full (rule 5).
    ///
    /// # Safety
    /// `h` is a live runnable of this shard that is not in the queue.
    #[inline]
    unsafe fn push_lifo(&self, h: NonNull<Header>) {
        let depth = self.depth.get();
        if depth >= LIFO_CAP {
            // SAFETY: the caller's contract.
            return unsafe { self.push(h) };
        }
        if depth == 0 {
            self.bottom_since.set(self.round.get());
        }
        self.depth.set(depth + 1);
        // SAFETY: the caller's contract; see `push`.
        unsafe { h.as_ref().next.set(self.top.get()) };
        self.top.set(Some(h));
    }

    #[inline]
    fn pop_lifo(&self) -> Option<NonNull<Header>> {
        let h = self.top.get()?;
        // SAFETY: queued headers are alive (see `push`).
        self.top.set(unsafe { h.as_ref() }.next.get());
        self.depth.set(self.depth.get() - 1);
        Some(h)
    }

    /// Takes the stack's bottom: a walk of at most [`LIFO_CAP`] links, once
    /// every [`LIFO_AGE`] rounds at most.
    fn pop_bottom(&self) -> Option<NonNull<Header>> {
        let top = self.top.get()?;
        let mut above: Option<NonNull<Header>> = None;
        let mut h = top;
        // SAFETY: queued headers are alive (see `push`).
        while let Some(next) = unsafe { h.as_ref() }.next.get() {
            above = Some(h);
            h = next;
        }
        match above {
            // SAFETY: as above.
            Some(above) => unsafe { above.as_ref() }.next.set(None),
            None => self.top.set(None),
        }
        self.depth.set(self.depth.get() - 1);
        // The runnable above is the bottom from now on.
        self.bottom_since.set(self.round.get());
        Some(h)
    }

    /// Called at the start of a round.
    #[inline]
    fn start_round(&self) {
        let round = self.round.get().wrapping_add(1);
        self.round.set(round);
        let due = self.top.get().is_some()
            && round.wrapping_sub(self.bottom_since.get()) >= LIFO_AGE
            && round.wrapping_sub(self.bottom_round.get()) >= LIFO_AGE;
        if due {
            self.bottom_round.set(round);
        }
        self.bottom_due.set(due);
    }

    /// The next runnable of a round that has given the stack `lifo_turns`
    /// turns so far (rule 5).
    #[inline]
    fn next(&self, lifo_turns: &mut usize) -> Option<NonNull<Header>> {
        if *lifo_turns < LIFO_TURNS || self.head.get().is_none() {
            let h = if self.bottom_due.replace(false) {
                self.pop_bottom()
            } else {
                self.pop_lifo()
            };
            if h.is_some() {
                *lifo_turns += 1;
                return h;
            }
        }
        self.pop()
    }

    #[inline]
    fn pop(&self) -> Option<NonNull<Header>> {
        let h = self.head.get()?;
        // SAFETY: queued headers are alive (see `push`).
        let next = unsafe { h.as_ref() }.next.get();
        self.head.set(next);
        if next.is_none() {
            self.tail.set(None);
        }
        Some(h)
    }

    /// Forgets every queued pointer (the shard is going away).
    pub(crate) fn clear(&self) {
        self.head.set(None);
        self.tail.set(None);
        self.top.set(None);
        self.depth.set(0);
    }
}

impl Shard {
    /// Puts `h` on the ready queue if it is idle or suspended (rule 1).
    ///
    /// # Safety
    /// `h` is a live runnable of this shard.
    #[inline]
    pub(crate) unsafe fn schedule(&self, h: NonNull<Header>) {
        // SAFETY: the caller's contract.
        let header = unsafe { h.as_ref() };
        header.run.set(Run::Queued);
        // SAFETY: it was idle or suspended, so not in the queue.
        unsafe { self.ready.push(h) };
        self.wake_scheduler();
    }

    /// A message arrived for `h` (rule 2).
    ///
    /// # Safety
    /// `h` is a live process of this shard.
    #[inline]
    pub(crate) unsafe fn on_message(&self, h: NonNull<Header>) {
        // SAFETY: the caller's contract.
        let header = unsafe { h.as_ref() };
        if header.run.get() != Run::Idle {
            return;
        }
        if self.in_turn.get() {
            // Sent by the runnable in its turn: work first (rule 5).
            header.run.set(Run::Queued);
            // SAFETY: idle, so not in the queue (rule 1).
            unsafe { self.ready.push_lifo(h) };
        } else {
            // SAFETY: forwarded.
            unsafe { self.schedule(h) };
        }
    }

    /// A signal arrived for `h` (rule 2): a kill interrupts a suspended
    /// handler, other signals wait for it.
    ///
    /// # Safety
    /// `h` is a live process of this shard.
    pub(crate) unsafe fn on_signal(&self, h: NonNull<Header>, kill: bool) {
        // SAFETY: the caller's contract.
        let run = unsafe { h.as_ref() }.run.get();
        if run == Run::Idle || (kill && run == Run::Suspended) {
            // SAFETY: forwarded.
            unsafe { self.schedule(h) };
        }
    }

    /// A wake-up for `h` (rule 2).
    ///
    /// # Safety
    /// `h` is a live runnable of this shard.
    pub(crate) unsafe fn on_wake(&self, h: NonNull<Header>) {
        // SAFETY: the caller's contract.
        let header = unsafe { h.as_ref() };
        match header.run.get() {
            // SAFETY: forwarded.
            Run::Suspended => unsafe { self.schedule(h) },
            Run::Running => header.set(flags::NOTIFIED),
            Run::Idle | Run::Queued => {}
        }
    }

    /// Wakes the runnable named by `key` (a process pid, or a task key), if
    /// it still exists.
    pub(crate) fn wake_key(&self, key: crate::pid::Pid, task: bool) {
        let h = if task {
            self.tasks
                .borrow()
                .get(key.slot(), key.generation())
                .copied()
        } else {
            self.procs.get(key.slot(), key.generation())
        };
        if let Some(h) = h {
            // SAFETY: found in its table, so alive and of this shard.
            unsafe { self.on_wake(h) };
        }
    }

    /// Rule 6: runs the turn of process `pid` now, inside the current
    /// runnable's turn, if `pid` is the top of the work-first stack. Returns
    /// whether it ran.
    pub(crate) fn hand_off(self: &Rc<Self>, pid: crate::pid::Pid) -> bool {
        if !self.in_turn.get() || self.handing_off.get() || pid.shard() != self.id {
            return false;
        }
        let made = self.handoffs.get();
        if made >= self.budget() {
            return false;
        }
        let Some(h) = self.procs.get(pid.slot(), pid.generation()) else {
            return false;
        };
        if self.ready.top.get() != Some(h) {
            return false;
        }
        let popped = self.ready.pop_lifo();
        debug_assert_eq!(popped, Some(h));
        self.handoffs.set(made + 1);
        /// Clears `handing_off` however the turn ends.
        struct Nested<'a>(&'a Cell<bool>);
        impl Drop for Nested<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        self.handing_off.set(true);
        let _nested = Nested(&self.handing_off);
        // SAFETY: `h` was queued (the top of the stack), so it is a live
        // process of this shard that is not running; now it is out of the
        // queue, as `run` requires. `run` and `recover` are its vtable's.
        let outcome = match catch_unwind(AssertUnwindSafe(|| unsafe {
            (h.as_ref().vtable.run)(h, self)
        })) {
            Ok(outcome) => outcome,
            // SAFETY: the panic unwound out of `h`'s own run.
            Err(panic) => unsafe { (h.as_ref().vtable.recover)(h, self, panic) },
        };
        if outcome == Outcome::Requeue {
            // SAFETY: it left the queue above and is still alive.
            unsafe { self.ready.push(h) };
        }
        true
    }

    /// Runs up to [`ROUND`] turns from the ready queue; returns how many.
    /// One `catch_unwind` for the whole round: a panic out of a runnable's
    /// run is handed to that runnable's `recover`, and the round goes on.
    #[inline(never)] // a stable symbol for profilers
    fn run_ready(self: &Rc<Self>) -> usize {
        self.ready.start_round();
        let mut turns = 0;
        let mut lifo_turns = 0;
        let running: Cell<Option<NonNull<Header>>> = Cell::new(None);
        loop {
            let round = catch_unwind(AssertUnwindSafe(|| {
                self.run_turns(&mut turns, &mut lifo_turns, &running)
            }));
            let Err(panic) = round else {
                return turns;
            };
            self.in_turn.set(false);
            let Some(h) = running.take() else {
                // Not a runnable's: the scheduler's own code panicked.
                std::panic::resume_unwind(panic);
            };
            // SAFETY: `h` was being run (so alive and of this shard) when
            // the panic unwound out of its `run`.
            let outcome = unsafe { (h.as_ref().vtable.recover)(h, self, panic) };
            if outcome == Outcome::Requeue {
                // SAFETY: it was running, so not queued; still alive.
                unsafe { self.ready.push(h) };
            }
        }
    }

    #[inline(always)]
    fn run_turns(
        self: &Rc<Self>,
        turns: &mut usize,
        lifo_turns: &mut usize,
        running: &Cell<Option<NonNull<Header>>>,
    ) {
        while *turns < ROUND {
            let Some(h) = self.ready.next(lifo_turns) else {
                break;
            };
            *turns += 1;
            running.set(Some(h));
            self.in_turn.set(true);
            self.handoffs.set(0);
            self.ready_at_once.set(0);
            // SAFETY: queued runnables are alive and belong to this shard;
            // `run` is the vtable's, matching the allocation's type.
            let outcome = unsafe { (h.as_ref().vtable.run)(h, self) };
            self.in_turn.set(false);
            running.set(None);
            if outcome == Outcome::Requeue {
                // SAFETY: it just left the queue and is still alive.
                unsafe { self.ready.push(h) };
            }
        }
    }

    /// Runs `fut` on this shard as a task: polled by the scheduler like a
    /// process, but with no pid, no mailbox, and cancelled (dropped) if it
    /// is still running when the shard stops.
    /// Returns the task's key (for [`Shard::wake_key`]).
    pub(crate) fn spawn_task(&self, fut: impl Future<Output = ()> + 'static) -> crate::pid::Pid {
        let h = allocate_task(fut);
        let (slot, generation) = self.tasks.borrow_mut().insert(h);
        let key = crate::pid::Pid::from_parts(self.id, slot, generation);
        // SAFETY: just allocated, not shared yet.
        unsafe {
            (*h.as_ptr()).pid = key;
            self.schedule(h);
        }
        key
    }

    /// Drops every task still running (the shard is stopping).
    pub(crate) fn cancel_tasks(&self) {
        let tasks: Vec<NonNull<Header>> = {
            let mut table = self.tasks.borrow_mut();
            let keys = table.keys();
            keys.into_iter()
                .filter_map(|(s, g)| table.remove(s, g))
                .collect()
        };
        self.ready.clear();
        for h in tasks {
            // SAFETY: out of the table and the queue; nothing refers to it.
            let cancelled = catch_unwind(AssertUnwindSafe(|| unsafe {
                (h.as_ref().vtable.cancel)(h)
            }));
            if cancelled.is_err() {
                tracing::warn!(shard = self.id.0, "dropping a cancelled task panicked");
            }
        }
    }
}

/// A task: a future polled by the scheduler.
#[repr(C)]
struct Task<F> {
    header: Header,
    fut: F,
}

struct TaskOps<F>(std::marker::PhantomData<F>);

impl<F: Future<Output = ()> + 'static> TaskOps<F> {
    const VTABLE: VTable = VTable {
        msg_type: TypeId::of::<()>(),
        run: run_task::<F>,
        recover: recover_task::<F>,
        signal: |_, _| unreachable!("tasks get no signals"),
        system: |_, _| unreachable!("tasks get no messages"),
        discard: |_| 0,
        cancel: free_task::<F>,
    };
}

fn allocate_task<F: Future<Output = ()> + 'static>(fut: F) -> NonNull<Header> {
    let layout = std::alloc::Layout::new::<Task<F>>();
    let task = crate::block_cache::alloc_block(layout).cast::<Task<F>>();
    // SAFETY: a fresh block of the right size and alignment.
    unsafe {
        task.as_ptr().write(Task {
            header: Header::new(
                &TaskOps::<F>::VTABLE,
                crate::pid::Pid::from_parts(crate::pid::ShardId(0), 0, 0),
                flags::TASK,
            ),
            fut,
        })
    };
    task.cast()
}

/// # Safety
/// `h` is a `Task<F>`, out of the task table and the ready queue.
unsafe fn free_task<F>(h: NonNull<Header>) {
    let task = h.cast::<Task<F>>();
    // SAFETY: the caller's contract: we own the allocation outright; the
    // task is dropped once and its block returned.
    unsafe {
        std::ptr::drop_in_place(task.as_ptr());
        crate::block_cache::free_block(h.cast(), std::alloc::Layout::new::<Task<F>>());
    }
}

/// # Safety
/// `h` is a live `Task<F>` of `shard`, just taken off the ready queue.
unsafe fn run_task<F: Future<Output = ()>>(h: NonNull<Header>, shard: &Rc<Shard>) -> Outcome {
    // SAFETY: the caller's contract.
    let header = unsafe { h.as_ref() };
    header.run.set(Run::Running);
    header.clear(flags::NOTIFIED);
    let task = h.as_ptr().cast::<Task<F>>();
    let polled = {
        let _polling = crate::waker::polling(h);
        crate::waker::with_borrowed(h, |cx: &mut Context<'_>| {
            // SAFETY: the future lives in the task's allocation and never
            // moves until it is dropped with it.
            unsafe { Pin::new_unchecked(&mut (*task).fut) }.poll(cx)
        })
    };
    match polled {
        Poll::Pending if header.has(flags::NOTIFIED) => {
            header.clear(flags::NOTIFIED);
            header.run.set(Run::Queued);
            Outcome::Requeue
        }
        Poll::Pending => {
            header.run.set(Run::Suspended);
            Outcome::Parked
        }
        // SAFETY: done; it was running, so not queued.
        Poll::Ready(()) => unsafe { finish_task::<F>(h, shard) },
    }
}

/// A task's poll panicked: log it and drop the task.
///
/// # Safety
/// As for [`run_task`]; `h` is the task whose poll panicked.
unsafe fn recover_task<F>(
    h: NonNull<Header>,
    shard: &Rc<Shard>,
    panic: Box<dyn std::any::Any + Send>,
) -> Outcome {
    let msg = crate::exit::panic_message(&*panic);
    let _ = catch_unwind(AssertUnwindSafe(move || drop(panic)));
    tracing::error!(shard = shard.id.0, panic = %msg, "task panicked");
    // SAFETY: forwarded.
    unsafe { finish_task::<F>(h, shard) }
}

/// Takes a finished (or failed) task out of the table and frees it.
///
/// # Safety
/// `h` is a live `Task<F>` of `shard`, not queued.
unsafe fn finish_task<F>(h: NonNull<Header>, shard: &Rc<Shard>) -> Outcome {
    // SAFETY: the caller's contract.
    let key = unsafe { h.as_ref() }.pid;
    shard
        .tasks
        .borrow_mut()
        .remove(key.slot(), key.generation());
    // SAFETY: out of the table and not queued: nothing refers to it.
    let freed = catch_unwind(AssertUnwindSafe(|| unsafe { free_task::<F>(h) }));
    if freed.is_err() {
        tracing::warn!(shard = shard.id.0, "dropping a finished task panicked");
    }
    Outcome::Exited
}

/// Gives the thread back to glommio until its reactor has run once: the
/// scheduler sleeps on a timer that is due at once, so glommio must poll
/// its rings (firing timers, completing I/O) and may run its other tasks
/// before the scheduler runs again.
///
/// Why not `yield_now`: a task that wakes itself stays runnable, and glommio
/// 0.9 can park the executor with a runnable task queue when its preemption
/// timer has fired before the queue was looked at (`run_task_queues` then
/// reports "nothing ran" and the executor sleeps in `io_uring_enter` for
/// good; fixed upstream in glommio/glommio#53, not released). A shard thread
/// descheduled for longer than the preemption period (100 ms by default;
/// seen here within minutes at 1 ms with 8 shards on 2 cores) hit it. A task
/// waiting on a timer is not runnable, and a parked executor always wakes
/// for its next timer, so this yield cannot strand the scheduler.
async fn let_glommio_run() {
    glommio::timer::sleep(std::time::Duration::from_micros(1)).await;
}

/// The scheduler: the one glommio task per shard. Returns when the shard
/// has stopped and has no process left.
pub(crate) async fn scheduler(shard: Rc<Shard>) {
    shard.publish_scheduler_waker().await;
    let doorbell = &shard.shared.shards[shard.id.index()].doorbell;
    let mut busy_rounds = 0u32;
    let mut last_yield = std::time::Instant::now();
    loop {
        shard.reclaim_from_gone_peers();
        let delivered = shard.drain_inbound();
        let ran = shard.run_ready();
        let pending = shard.flush_outbound();
        if shard.finished() {
            break;
        }
        if shard.take_waited_for_room() && delivered == 0 {
            // A sender waits for a peer to drain its ring, and nothing came
            // in: offer the core, which that peer may need (more shards than
            // cores). Without this, senders retrying a full ring used their
            // whole time slices while their receivers waited for a CPU
            // (`perf`: 8 shards on 2 cores moved 1-4 M msg/s, the senders'
            // retry loop on top). On a core of its own, the call returns at
            // once.
            std::thread::yield_now();
        }
        if delivered > 0 || ran > 0 || !shard.ready.is_empty() {
            busy_rounds += 1;
            let asked = glommio::executor().need_preempt();
            if asked || busy_rounds >= YIELD_EVERY {
                busy_rounds = 0;
                if asked || last_yield.elapsed() >= YIELD_QUANTUM {
                    let_glommio_run().await;
                    last_yield = std::time::Instant::now();
                }
            }
            continue;
        }
        busy_rounds = 0;
        if pending {
            // Only envelopes waiting for room in a full ring: the peer is
            // draining it (it was rung when the ring filled). Nothing will
            // wake this shard when room appears, so it must not park; it
            // offers its core instead, which the peer may need (more shards
            // than cores: measured 0.5 M msg/s on 4 shards over 2 cores
            // with a pure spin here).
            std::thread::yield_now();
            continue;
        }
        if shard.spin_for_work() {
            continue;
        }
        doorbell.prepare_sleep();
        if shard.has_work() {
            doorbell.cancel_sleep();
            continue;
        }
        shard.park().await;
        doorbell.cancel_sleep();
    }
    // A last flush so that replies and exit notices reach other shards,
    // then nothing more comes in.
    shard.flush_outbound();
    shard.close_inbound();
    shard.flush_outbound();
}
