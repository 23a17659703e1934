//! The process table: slots with generations, each owning one process
//! allocation (see `proc.rs`), and the control block every process
//! allocation starts with ([`Header`]).
//!
//! # Rules
//!
//! 1. A slot owns at most one process allocation. The allocation is created
//!    by `spawn`, inserted here, and removed and freed only by the process's
//!    own run on this thread (`proc.rs`, the exit path), after its terminate
//!    hook ran and its state was dropped; or leaked by `Shard::abandon`
//!    when the shard's executor died.
//! 2. Removal bumps the slot's generation *before* anybody is told of the
//!    exit, so whoever learns of an exit can only reach the slot's next
//!    occupant with a new pid. A slot whose generation would wrap is
//!    retired for good.
//! 3. Only the shard's thread touches the table. Each method does one short
//!    access and calls no user code, so no access can overlap another (this
//!    is what makes the `UnsafeCell` below sound without a borrow flag).
//! 4. A [`Header`] is reachable from the table, from the shard's ready
//!    queue while it is queued, and from a borrowed waker while its process
//!    is being polled. Other threads never see a pointer to it: they name a
//!    process by its `Pid` and route through rings.

use crate::block_cache::CachedBox;
use crate::exit::ExitReason;
use crate::link::{Down, MonitorRef};
use crate::pid::Pid;
use crate::reply::ReplyTo;
use crate::timer::Timers;
use std::any::TypeId;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::ptr::NonNull;

/// System signals, delivered ahead of user messages. (A kill is not queued:
/// it is the [`flags::KILL`] bit, which overtakes everything.)
#[derive(Debug)]
pub(crate) enum Signal {
    /// Stop after the current message, dropping queued ones; run the
    /// terminate hook. Also how an untrapped linked exit arrives.
    Terminate(ExitReason),
    /// Handle the messages queued so far, then stop with `Shutdown`.
    /// Senders build it as `Shutdown(None)`; on arrival the owner stamps it
    /// with the number of items queued in the process's lane at that
    /// moment, so that exactly the messages queued *before the request* are
    /// handled, however long the process takes to get to the signal.
    Shutdown(Option<usize>),
}

/// Things that travel in a process's message lane, in order with its
/// messages, other than the messages themselves. Boxed so that a lane slot
/// is as small as the process's message type.
pub(crate) enum System {
    /// A linked process exited and this process traps exits.
    Exit(Pid, ExitReason),
    /// A monitored process exited.
    Down(Down),
}

/// One item of a process's message lane.
pub(crate) enum Item<M> {
    /// A user message.
    User(M),
    /// A trapped exit or a `Down`.
    System(Box<System>),
}

/// Bits of [`Header::flags`].
pub(crate) mod flags {
    /// A kill is pending: stop at once, even mid-handler.
    pub(crate) const KILL: u8 = 1;
    /// The mailbox's signal queue is not empty.
    pub(crate) const SIGNALED: u8 = 1 << 1;
    /// `Context::stop` was called (reason in `Extras::stop`, else `Normal`).
    pub(crate) const STOP: u8 = 1 << 2;
    /// Woken while running: poll again instead of suspending.
    pub(crate) const NOTIFIED: u8 = 1 << 3;
    /// Exit signals from links arrive as messages.
    pub(crate) const TRAP_EXITS: u8 = 1 << 4;
    /// A `Shutdown` is counting down `Extras::shutdown_after`.
    pub(crate) const DRAINING: u8 = 1 << 5;
    /// This header belongs to a task (a `block_on` future), not a process.
    pub(crate) const TASK: u8 = 1 << 6;
    /// `Extras::span` holds a tracing span to enter while running.
    pub(crate) const SPAN: u8 = 1 << 7;
}

/// Where a runnable is in the shard's scheduling (see `sched.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Run {
    /// Nothing to do; not in the ready queue.
    Idle,
    /// In the ready queue.
    Queued,
    /// Being run by the scheduler right now.
    Running,
    /// Its future is pending, waiting for a wake-up; not in the ready queue.
    Suspended,
}

/// What a process's or task's `run` reports to the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Budget spent with work left: put it back at the end of the queue.
    Requeue,
    /// Idle or suspended: it will be queued again by a message or a wake.
    Parked,
    /// It exited and its allocation is freed: forget the pointer.
    Exited,
}

/// See [`VTable::recover`].
pub(crate) type Recover = unsafe fn(
    NonNull<Header>,
    &std::rc::Rc<crate::shard::Shard>,
    Box<dyn std::any::Any + Send>,
) -> Outcome;

/// The type-specific operations of a process or task allocation.
pub(crate) struct VTable {
    /// `TypeId` of the process's message type (of `()` for tasks): a
    /// delivery checks it before it touches the typed mailbox.
    pub(crate) msg_type: TypeId,
    /// Runs up to a budget of work; see `proc::run`. A panic unwinds out
    /// of it to the scheduler, which hands it to `recover`.
    pub(crate) run: unsafe fn(NonNull<Header>, &std::rc::Rc<crate::shard::Shard>) -> Outcome,
    /// Cleans up after a panic escaped `run` (a hook panicked).
    pub(crate) recover: Recover,
    /// Queues a signal in the typed mailbox.
    pub(crate) signal: unsafe fn(NonNull<Header>, Signal),
    /// Queues a trapped exit or a `Down` in the typed mailbox.
    pub(crate) system: unsafe fn(NonNull<Header>, Box<System>),
    /// Empties the mailbox (dropping its contents) and returns how many user
    /// messages it held. Used by `Shard::abandon` only.
    pub(crate) discard: unsafe fn(NonNull<Header>) -> usize,
    /// Frees a task's allocation, dropping its future (tasks only).
    pub(crate) cancel: unsafe fn(NonNull<Header>),
}

/// The control block at the start of every process (and task) allocation.
/// `repr(C)` so that a pointer to the allocation is a pointer to its header.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) vtable: &'static VTable,
    /// The process's pid; for a task, its key in the shard's task table.
    pub(crate) pid: Pid,
    pub(crate) run: Cell<Run>,
    pub(crate) flags: Cell<u8>,
    /// Which hook future, if any, is alive in the allocation (`proc::Fut`).
    pub(crate) fut: Cell<u8>,
    /// Next in the ready queue (meaningful only while `Queued`).
    pub(crate) next: Cell<Option<NonNull<Header>>>,
    /// The first exit waiter (`wait`), told the exit reason first; others
    /// wait in `Rare::waiters`. Here rather than in the extras, so that
    /// the commonest life (spawn, message, exit, waited for) allocates no
    /// extras at all.
    pub(crate) waiter: Cell<Option<ReplyTo<Option<ExitReason>>>>,
    /// Everything most processes never use, allocated on first use.
    pub(crate) extras: RefCell<Option<CachedBox<Extras>>>,
}

impl Header {
    pub(crate) fn new(vtable: &'static VTable, pid: Pid, flags: u8) -> Self {
        Self {
            vtable,
            pid,
            run: Cell::new(Run::Idle),
            flags: Cell::new(flags),
            fut: Cell::new(0),
            next: Cell::new(None),
            waiter: Cell::new(None),
            extras: RefCell::new(None),
        }
    }

    #[inline]
    pub(crate) fn has(&self, bit: u8) -> bool {
        self.flags.get() & bit != 0
    }

    #[inline]
    pub(crate) fn set(&self, bit: u8) {
        self.flags.set(self.flags.get() | bit);
    }

    #[inline]
    pub(crate) fn clear(&self, bit: u8) {
        self.flags.set(self.flags.get() & !bit);
    }

    /// Runs `f` on the extras, allocating them first if needed.
    pub(crate) fn with_extras<R>(&self, f: impl FnOnce(&mut Extras) -> R) -> R {
        let mut extras = self.extras.borrow_mut();
        f(extras.get_or_insert_with(|| CachedBox::new_with(Extras::default)))
    }

    /// Runs `f` on the extras if they exist.
    pub(crate) fn extras_mut<R>(&self, f: impl FnOnce(&mut Extras) -> R) -> Option<R> {
        self.extras.borrow_mut().as_deref_mut().map(f)
    }
}

/// The rarely used parts of a process: the stop reason, the cached waker,
/// the tracing span; and, behind one more box, the context lists. The split
/// is by cost: a process that only suspends or stops with a reason
/// allocates and drops the small part alone (measured with callgrind:
/// dropping the whole struct, every empty list checked, was 85
/// instructions of the 1,568 of spawn + message + exit + wait), and one
/// that is only waited for allocates neither (its waiter is in the
/// [`Header`]).
#[derive(Default)]
pub(crate) struct Extras {
    pub(crate) next_monitor: u64,
    /// The reason given to `Context::stop_with`, if not `Normal`.
    pub(crate) stop: Option<ExitReason>,
    /// Lane items still to handle before a `Shutdown` takes effect.
    pub(crate) shutdown_after: usize,
    /// An owned, thread-safe waker for this runnable (see `waker.rs`),
    /// made on the first clone of its borrowed waker and reused.
    pub(crate) waker: Option<std::task::Waker>,
    pub(crate) span: Option<tracing::Span>,
    /// Links, monitors, names, timers, owned tasks: allocated on first use.
    pub(crate) rare: Option<RareBox>,
}

/// The context lists of a process (see [`Extras`]).
#[derive(Default)]
pub(crate) struct Rare {
    /// Exit waiters after the first (which is `Header::waiter`).
    pub(crate) waiters: Vec<ReplyTo<Option<ExitReason>>>,
    pub(crate) links: Vec<Pid>,
    /// Monitors *of* this process (watchers to send `Down` to).
    pub(crate) monitors: Vec<MonitorRef>,
    pub(crate) names: Vec<String>,
    /// This process's own monitors that have not delivered their `Down`
    /// and were not demonitored (the watcher side, `Context::monitor`).
    pub(crate) watching: Vec<MonitorRef>,
    pub(crate) timers: Timers,
    /// Owned tasks and streams (`owned.rs`), dropped with the timers.
    pub(crate) owned: crate::owned::Owned,
}

impl Extras {
    /// The context lists, allocated if needed.
    pub(crate) fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(RareBox::default)
    }
}

/// The box of a [`Rare`]. Its drop is out of line, so that the drop of an
/// `Option<RareBox>` that is `None` (most processes) is a test inlined
/// into its owner's, not a call into the drop of every list in `Rare`.
#[derive(Default)]
pub(crate) struct RareBox(std::mem::ManuallyDrop<Box<Rare>>);

impl std::ops::Deref for RareBox {
    type Target = Rare;
    fn deref(&self) -> &Rare {
        &self.0
    }
}

impl std::ops::DerefMut for RareBox {
    fn deref_mut(&mut self) -> &mut Rare {
        &mut self.0
    }
}

impl Drop for RareBox {
    #[inline(never)]
    fn drop(&mut self) {
        // SAFETY: the box is taken once, here, and the field is not used
        // again (this is the `RareBox`'s own drop).
        drop(unsafe { std::mem::ManuallyDrop::take(&mut self.0) });
    }
}

/// One slot of the table.
struct Slot {
    generation: u32,
    /// Next free slot (`NONE` if last); meaningful while `proc` is `None`.
    next_free: u32,
    proc: Option<NonNull<Header>>,
}

const NONE: u32 = u32::MAX;

/// The table of a shard's processes: slot and generation to allocation.
pub(crate) struct ProcTable {
    slots: UnsafeCell<Vec<Slot>>,
    free: Cell<u32>,
    live: Cell<usize>,
}

impl ProcTable {
    pub(crate) fn new() -> Self {
        Self {
            slots: UnsafeCell::new(Vec::new()),
            free: Cell::new(NONE),
            live: Cell::new(0),
        }
    }

    /// Number of live processes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.live.get()
    }

    /// The allocation `(slot, generation)` names, if it is alive.
    #[inline]
    pub(crate) fn get(&self, slot: u32, generation: u32) -> Option<NonNull<Header>> {
        // SAFETY: rule 3: a short shared access on the owning thread; no
        // `&mut` to the vector exists while this one does (every method
        // ends its access before returning and calls out to nothing).
        let slots = unsafe { &*self.slots.get() };
        let s = slots.get(slot as usize)?;
        if s.generation == generation {
            s.proc
        } else {
            None
        }
    }

    /// The key the next [`ProcTable::insert`] will use.
    pub(crate) fn next_key(&self) -> (u32, u32) {
        // SAFETY: as in `get`.
        let slots = unsafe { &*self.slots.get() };
        match self.free.get() {
            NONE => (slots.len() as u32, 0),
            free => (free, slots[free as usize].generation),
        }
    }

    /// Stores `proc` in the slot [`ProcTable::next_key`] named.
    pub(crate) fn insert(&self, proc: NonNull<Header>) -> (u32, u32) {
        // SAFETY: rule 3: the only access alive during this call.
        let slots = unsafe { &mut *self.slots.get() };
        self.live.set(self.live.get() + 1);
        match self.free.get() {
            NONE => {
                let slot = u32::try_from(slots.len()).expect("more than 2^32 process slots");
                assert!(slot != NONE, "process table full");
                slots.push(Slot {
                    generation: 0,
                    next_free: NONE,
                    proc: Some(proc),
                });
                (slot, 0)
            }
            free => {
                let s = &mut slots[free as usize];
                self.free.set(s.next_free);
                s.proc = Some(proc);
                (free, s.generation)
            }
        }
    }

    /// Empties the slot if `(slot, generation)` still names it, bumping its
    /// generation (rule 2), and returns what it held.
    pub(crate) fn remove(&self, slot: u32, generation: u32) -> Option<NonNull<Header>> {
        // SAFETY: rule 3: the only access alive during this call.
        let slots = unsafe { &mut *self.slots.get() };
        let s = slots.get_mut(slot as usize)?;
        if s.generation != generation || s.proc.is_none() {
            return None;
        }
        let proc = s.proc.take();
        s.generation = generation.wrapping_add(1);
        if s.generation != u32::MAX {
            s.next_free = self.free.get();
            self.free.set(slot);
        }
        // else: retired, never handed out again (no generation reuse).
        self.live.set(self.live.get() - 1);
        proc
    }

    /// Pids of every live process.
    pub(crate) fn pids(&self, shard: crate::pid::ShardId) -> Vec<Pid> {
        // SAFETY: as in `get`.
        let slots = unsafe { &*self.slots.get() };
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.proc.is_some())
            .map(|(i, s)| Pid::from_parts(shard, i as u32, s.generation))
            .collect()
    }

    #[cfg(test)]
    fn force_generation(&self, slot: u32, generation: u32) {
        // SAFETY: test only; the only access alive.
        unsafe { (&mut *self.slots.get())[slot as usize].generation = generation };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(n: usize) -> NonNull<Header> {
        NonNull::new(n as *mut Header).unwrap()
    }

    #[test]
    fn stale_key_is_rejected_after_reuse() {
        let t = ProcTable::new();
        let (slot, g0) = t.insert(fake(8));
        assert_eq!(t.remove(slot, g0), Some(fake(8)));
        assert_eq!(t.next_key(), (slot, g0 + 1));
        let (slot2, g1) = t.insert(fake(16));
        assert_eq!(slot2, slot, "the freed slot is reused");
        assert_ne!(g1, g0);
        assert_eq!(
            t.get(slot, g0),
            None,
            "a stale key never reaches the new occupant"
        );
        assert_eq!(t.remove(slot, g0), None);
        assert_eq!(t.get(slot, g1), Some(fake(16)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn slot_is_retired_instead_of_wrapping() {
        let t = ProcTable::new();
        let (slot, _) = t.insert(fake(8));
        t.force_generation(slot, u32::MAX - 1);
        assert_eq!(t.remove(slot, u32::MAX - 1), Some(fake(8)));
        let (next, generation) = t.insert(fake(16));
        assert_ne!(next, slot, "a retired slot is never handed out again");
        assert_eq!(generation, 0);
        assert_eq!(t.get(slot, u32::MAX), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn pids_list_only_live_entries() {
        let t = ProcTable::new();
        let shard = crate::pid::ShardId(3);
        let keys: Vec<_> = (1..=5).map(|i| t.insert(fake(8 * i))).collect();
        t.remove(keys[2].0, keys[2].1);
        let live = t.pids(shard);
        let expected: Vec<_> = keys
            .iter()
            .filter(|k| **k != keys[2])
            .map(|&(s, g)| Pid::from_parts(shard, s, g))
            .collect();
        assert_eq!(live, expected);
    }
}
#[cfg(test)]
mod sizes {
    use crate::reply::ReplyTo;
    use std::mem::size_of;

    #[test]
    fn a_request_with_a_reply_handle_is_three_words_in_a_mailbox() {
        // A reply handle is 16 bytes (runtime ids are 32 bits); a message
        // enum carrying one, or a plain word, is 24; the mailbox item adds
        // nothing (it uses the message's spare tag values).
        #[allow(dead_code)]
        enum Msg {
            Add(u64),
            Get(ReplyTo<(u64, u64)>),
            Inc(ReplyTo<u64>),
        }
        assert_eq!(size_of::<ReplyTo<u64>>(), 16);
        assert_eq!(size_of::<super::Item<Msg>>(), 24);
        assert_eq!(size_of::<Option<super::Item<Msg>>>(), 24);
    }
}
