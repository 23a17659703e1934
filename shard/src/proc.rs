//! A process is one allocation in its shard's table: header, mailbox,
//! state, context and the slot its suspended hook future lives in. This
//! module builds that allocation and runs it.
//!
//! # Rules
//!
//! 1. The allocation is created by `spawn`, runs only inside the shard's
//!    scheduler (`run` below) on the owning thread, and is freed only by
//!    its own exit path, after the terminate hook returned and the state
//!    was dropped (`table.rs`, rule 1).
//! 2. A hook future is created in place in the allocation's slot and polled
//!    there. It borrows the state and the context for as long as it lives;
//!    while one is alive nothing else creates a reference to either, and it
//!    is dropped before the state is dropped or the allocation freed. That
//!    is the whole argument for the `'static` borrows below.
//! 3. At most one hook future is alive at a time (`Header::fut` says which
//!    one): a process handles one message at a time.
//! 4. A message is first offered to `Process::handle_now`, a plain call
//!    with no future. A message it hands on becomes a `handle` future; one
//!    that completes without awaiting costs no waker clone and no task
//!    switch: the scheduler polls it once with a borrowed waker that
//!    points at the header. Only a future that returns `Pending` stays in
//!    the slot; its wake-up puts the process back on the ready queue.
//! 5. A small hook slot is part of the process allocation; a large one is
//!    allocated (from the shard's block cache) when a hook starts and freed
//!    when its future is dropped, and the process allocation ends before
//!    the slot field, which is then never touched.

use crate::context::Context;
use crate::exit::{panic_message, ExitReason};
use crate::pid::Pid;
use crate::process::{Handled, HandlerResult, Process};
use crate::shard::Shard;
use crate::table::{flags, Header, Item, Outcome, Run, Signal, System, VTable};
use corelet_mailbox::Mailbox;
use std::alloc::Layout;
use std::any::TypeId;
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::addr_of_mut;
use std::ptr::NonNull;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

/// Values of `Header::fut`.
mod fut {
    pub(super) const NONE: u8 = 0;
    /// `Slot::handle` holds a live `handle` future.
    pub(super) const HANDLE: u8 = 1;
    /// `Slot::term` holds a live terminate future (and its reason).
    pub(super) const TERM: u8 = 2;
    /// `Slot::boxed` holds a live `handle_exit` / `handle_down` future.
    pub(super) const BOXED: u8 = 3;
}

/// The hook futures of one process type, named through the zero-sized
/// function items that create them (`Process::handle` returns an opaque
/// type, which can only be named by inference).
pub(crate) trait Kind: 'static {
    type P: Process;
    type Handle: Future<Output = HandlerResult> + 'static;
    type Term: Future<Output = ()> + 'static;
    fn handle(
        &self,
        p: &'static mut Self::P,
        c: &'static mut Context<Self::P>,
        m: <Self::P as Process>::Msg,
    ) -> Self::Handle;
    fn terminate(
        &self,
        p: &'static mut Self::P,
        c: &'static mut Context<Self::P>,
        r: &'static ExitReason,
    ) -> Self::Term;
}

/// The [`Kind`] of `P`, holding `P::handle` and `P::terminate` (both
/// zero-sized function items).
pub(crate) struct KindOf<P, H, F, T, TF> {
    handle: H,
    terminate: T,
    _types: Types<P, F, TF>,
}

/// The types a [`KindOf`] names but does not hold.
type Types<P, F, TF> = PhantomData<fn() -> (P, F, TF)>;

impl<P, H, F, T, TF> Kind for KindOf<P, H, F, T, TF>
where
    P: Process,
    H: Fn(&'static mut P, &'static mut Context<P>, P::Msg) -> F + 'static,
    F: Future<Output = HandlerResult> + 'static,
    T: Fn(&'static mut P, &'static mut Context<P>, &'static ExitReason) -> TF + 'static,
    TF: Future<Output = ()> + 'static,
{
    type P = P;
    type Handle = F;
    type Term = TF;
    #[inline(always)]
    fn handle(&self, p: &'static mut P, c: &'static mut Context<P>, m: P::Msg) -> F {
        (self.handle)(p, c, m)
    }
    #[inline(always)]
    fn terminate(
        &self,
        p: &'static mut P,
        c: &'static mut Context<P>,
        r: &'static ExitReason,
    ) -> TF {
        (self.terminate)(p, c, r)
    }
}

/// A terminate future and the reason it borrows, side by side so that the
/// reason stays put while the future lives.
struct TermSlot<T> {
    reason: ExitReason,
    fut: MaybeUninit<T>,
}

type Boxed = Pin<Box<dyn Future<Output = HandlerResult>>>;

/// Room for whichever hook future is alive (rule 3). `repr(C)`: every
/// field starts at offset 0, so a pointer to the slot is a pointer to each.
#[repr(C)]
union Slot<F, T> {
    handle: ManuallyDrop<F>,
    term: ManuallyDrop<TermSlot<T>>,
    boxed: ManuallyDrop<Boxed>,
}

/// The part of a process allocation that does not depend on the process
/// type, only on its message type: what a delivery needs.
#[repr(C)]
pub(crate) struct ProcHead<M> {
    pub(crate) header: Header,
    /// Reached only on the owning thread, by short `&mut` accesses that
    /// never overlap (a push runs no user code; neither does a pop).
    pub(crate) mailbox: UnsafeCell<Mailbox<Item<M>, Signal>>,
}

/// One process: everything it owns, in one allocation.
///
/// The hook slot is the last field. When it is small (at most
/// [`INLINE_SLOT`] bytes: most handlers that do not await much) it is part
/// of the allocation; when it is large, the allocation stops before it and
/// a block from the shard's cache holds the future only while one is alive
/// (`slot_at`), so an idle process does not carry the memory of its
/// largest hook (rule 5).
#[repr(C)]
pub(crate) struct Proc<K: Kind> {
    head: ProcHead<<K::P as Process>::Msg>,
    state: UnsafeCell<ManuallyDrop<K::P>>,
    ctx: UnsafeCell<Context<K::P>>,
    kind: K,
    /// The external slot's block while a large hook future is alive.
    slot_at: Cell<*mut Slot<K::Handle, K::Term>>,
    /// Present in the allocation only if [`inline_slot`] holds for `K`.
    slot: UnsafeCell<MaybeUninit<Slot<K::Handle, K::Term>>>,
}

/// Largest hook slot kept inside the process allocation.
const INLINE_SLOT: usize = 96;

/// Whether `K`'s hook slot is part of its process allocation.
const fn inline_slot<K: Kind>() -> bool {
    std::mem::size_of::<Slot<K::Handle, K::Term>>() <= INLINE_SLOT
}

/// The layout of `K`'s process allocation (without the slot when it is
/// external).
fn proc_layout<K: Kind>() -> Layout {
    let full = Layout::new::<Proc<K>>();
    if inline_slot::<K>() {
        full
    } else {
        let size = std::mem::offset_of!(Proc<K>, slot);
        Layout::from_size_align(size, full.align()).expect("a prefix of a valid layout")
    }
}

/// The slot of `p` for a new hook future: the inline one, or a fresh block.
///
/// # Safety
/// `p` is a live `Proc<K>` with no hook future alive.
#[inline(always)]
unsafe fn new_slot<K: Kind>(p: *mut Proc<K>) -> *mut Slot<K::Handle, K::Term> {
    if inline_slot::<K>() {
        // SAFETY: the slot is part of the allocation (rule 5).
        unsafe { (*(*p).slot.get()).as_mut_ptr() }
    } else {
        let block = crate::block_cache::alloc_block(Layout::new::<Slot<K::Handle, K::Term>>());
        let at = block.as_ptr().cast::<Slot<K::Handle, K::Term>>();
        // SAFETY: `p` is live; `slot_at` is a plain cell.
        unsafe { (*p).slot_at.set(at) };
        at
    }
}

/// The slot holding `p`'s live hook future.
///
/// # Safety
/// `p` is a live `Proc<K>` with a hook future alive.
#[inline(always)]
unsafe fn slot<K: Kind>(p: *mut Proc<K>) -> *mut Slot<K::Handle, K::Term> {
    if inline_slot::<K>() {
        // SAFETY: the slot is part of the allocation (rule 5).
        unsafe { (*(*p).slot.get()).as_mut_ptr() }
    } else {
        // SAFETY: set by `new_slot` for the future that is alive.
        unsafe { (*p).slot_at.get() }
    }
}

/// Gives back an external slot's block once its future was dropped.
///
/// # Safety
/// `p` is a live `Proc<K>` whose hook future was just dropped.
#[inline(always)]
unsafe fn release_slot<K: Kind>(p: *mut Proc<K>) {
    if !inline_slot::<K>() {
        // SAFETY: the block came from `new_slot` and holds nothing now.
        unsafe {
            let at = (*p).slot_at.replace(std::ptr::null_mut());
            crate::block_cache::free_block(
                NonNull::new_unchecked(at.cast()),
                Layout::new::<Slot<K::Handle, K::Term>>(),
            );
        }
    }
}

/// The table of operations of `Proc<K>` (promoted to a `'static`).
struct Ops<K>(PhantomData<K>);

impl<K: Kind> Ops<K> {
    const VTABLE: VTable = VTable {
        msg_type: TypeId::of::<<K::P as Process>::Msg>(),
        run: run::<K>,
        recover: recover_run::<K>,
        signal: push_signal::<<K::P as Process>::Msg>,
        system: push_system::<<K::P as Process>::Msg>,
        discard: discard::<<K::P as Process>::Msg>,
        cancel: no_cancel,
    };
}

/// Processes are never cancelled from outside: they exit on their own run.
unsafe fn no_cancel(_: NonNull<Header>) {
    unreachable!("only tasks are cancelled");
}

/// The allocation behind `h`, typed.
///
/// # Safety
/// `h` must be the header of a live `Proc<K>`.
#[inline(always)]
unsafe fn this<K: Kind>(h: NonNull<Header>) -> *mut Proc<K> {
    h.as_ptr().cast()
}

/// The typed mailbox of the process whose header is `h`.
///
/// # Safety
/// `h` must be the header of a live process whose message type is `M`, and
/// no other reference to its mailbox may be alive while the result is used.
#[inline(always)]
pub(crate) unsafe fn mailbox<'a, M>(h: NonNull<Header>) -> &'a mut Mailbox<Item<M>, Signal> {
    let head = h.as_ptr().cast::<ProcHead<M>>();
    // SAFETY: by the caller's contract `h` starts a `ProcHead<M>` (every
    // `Proc<K>` starts with one, `repr(C)`), and the access is exclusive.
    unsafe { &mut *(*head).mailbox.get() }
}

unsafe fn push_signal<M: 'static>(h: NonNull<Header>, signal: Signal) {
    // SAFETY: the vtable of a `Proc` with message type `M` calls this with
    // its own header; no mailbox reference is alive during a push.
    let mailbox = unsafe { mailbox::<M>(h) };
    let signal = match signal {
        Signal::Shutdown(None) => Signal::Shutdown(Some(mailbox.len())),
        other => other,
    };
    mailbox.push_signal(signal);
    // SAFETY: `h` is live (caller's contract).
    unsafe { h.as_ref() }.set(flags::SIGNALED);
}

unsafe fn push_system<M: 'static>(h: NonNull<Header>, item: Box<System>) {
    // SAFETY: as in `push_signal`.
    unsafe { mailbox::<M>(h) }.push(Item::System(item));
}

unsafe fn discard<M: 'static>(h: NonNull<Header>) -> usize {
    // SAFETY: as in `push_signal`.
    let left = unsafe { mailbox::<M>(h) }.close();
    let users = left
        .messages
        .iter()
        .filter(|i| matches!(i, Item::User(_)))
        .count();
    drop(left); // no mailbox reference alive: may run reply handles' drops
    users
}

/// Builds the allocation of a new process and returns its header. The
/// state and context are in place; nothing runs yet.
pub(crate) fn allocate<P: Process>(state: P, pid: Pid, flags: u8) -> NonNull<Header> {
    fn with<P, H, F, T, TF>(state: P, pid: Pid, fl: u8, handle: H, terminate: T) -> NonNull<Header>
    where
        P: Process,
        H: Fn(&'static mut P, &'static mut Context<P>, P::Msg) -> F + 'static,
        F: Future<Output = HandlerResult> + 'static,
        T: Fn(&'static mut P, &'static mut Context<P>, &'static ExitReason) -> TF + 'static,
        TF: Future<Output = ()> + 'static,
    {
        let kind = KindOf::<P, H, F, T, TF> {
            handle,
            terminate,
            _types: PhantomData,
        };
        let vtable: &'static VTable = &Ops::<KindOf<P, H, F, T, TF>>::VTABLE;
        type Of<P, H, F, T, TF> = Proc<KindOf<P, H, F, T, TF>>;
        let layout = proc_layout::<KindOf<P, H, F, T, TF>>();
        let raw = crate::block_cache::alloc_block(layout).cast::<Of<P, H, F, T, TF>>();
        let header = raw.cast::<Header>();
        let p = raw.as_ptr();
        // SAFETY: a fresh block of the layout's size and alignment (see
        // `block_cache`); every field but the slot (left uninitialised, and
        // absent when external: rule 5) is written once, through field
        // pointers, before anything else can see it.
        unsafe {
            addr_of_mut!((*p).head).write(ProcHead {
                header: Header::new(vtable, pid, fl),
                mailbox: UnsafeCell::new(Mailbox::new()),
            });
            addr_of_mut!((*p).state).write(UnsafeCell::new(ManuallyDrop::new(state)));
            addr_of_mut!((*p).ctx).write(UnsafeCell::new(Context::new(header)));
            addr_of_mut!((*p).kind).write(kind);
            addr_of_mut!((*p).slot_at).write(Cell::new(std::ptr::null_mut()));
        }
        header
    }
    with(state, pid, flags, P::handle, P::terminate)
}

/// Runs `init` on a freshly allocated process, catching panics.
///
/// # Safety
/// `h` must be the header of a live process of type `P` that has never run.
pub(crate) unsafe fn init<P: Process>(h: NonNull<Header>) -> Result<(), ExitReason> {
    fn typed<P, H, F, T, TF>(
        h: NonNull<Header>,
        _handle: H,
        _terminate: T,
    ) -> Result<(), ExitReason>
    where
        P: Process,
        H: Fn(&'static mut P, &'static mut Context<P>, P::Msg) -> F + 'static,
        F: Future<Output = HandlerResult> + 'static,
        T: Fn(&'static mut P, &'static mut Context<P>, &'static ExitReason) -> TF + 'static,
        TF: Future<Output = ()> + 'static,
    {
        let p = h.as_ptr().cast::<Proc<KindOf<P, H, F, T, TF>>>();
        // SAFETY: `h` is this exact `Proc` (the kind is inferred from the
        // same function items as in `allocate`) and no hook future exists.
        let (state, ctx) = unsafe { (&mut *(*p).state.get(), &mut *(*p).ctx.get()) };
        match catch_unwind(AssertUnwindSafe(|| state.init(ctx))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ExitReason::Error(e.to_string())),
            Err(panic) => Err(ExitReason::Panicked(panic_message(&*panic))),
        }
    }
    typed::<P, _, _, _, _>(h, P::handle, P::terminate)
}

/// The exit path of a process whose `init` failed: like any exit (links,
/// monitors and names made by `init` hear of it), but no terminate hook.
///
/// # Safety
/// As for [`init`]; `h` is freed and must not be used afterwards.
pub(crate) unsafe fn exit_failed<P: Process>(
    h: NonNull<Header>,
    shard: &Rc<Shard>,
    reason: ExitReason,
) {
    fn typed<P, H, F, T, TF>(
        h: NonNull<Header>,
        shard: &Rc<Shard>,
        reason: ExitReason,
        _handle: H,
        _terminate: T,
    ) where
        P: Process,
        H: Fn(&'static mut P, &'static mut Context<P>, P::Msg) -> F + 'static,
        F: Future<Output = HandlerResult> + 'static,
        T: Fn(&'static mut P, &'static mut Context<P>, &'static ExitReason) -> TF + 'static,
        TF: Future<Output = ()> + 'static,
    {
        // SAFETY: forwarded from `exit_failed`'s contract.
        unsafe { exit::<KindOf<P, H, F, T, TF>>(h, shard, reason) };
    }
    typed::<P, _, _, _, _>(h, shard, reason, P::handle, P::terminate)
}

/// Frees `p` (its state was dropped already: it is `ManuallyDrop`).
///
/// # Safety
/// `p` is a live `Proc<K>` with no hook future alive, out of the table, not
/// queued, and never used again.
unsafe fn free<K: Kind>(p: *mut Proc<K>) {
    // SAFETY: the caller's contract: we own the allocation outright. The
    // state is `ManuallyDrop` (dropped, or not, by the caller), the slot is
    // empty (and maybe absent: rule 5), the context, kind and `slot_at`
    // have nothing to drop; so only the head is dropped, field by field
    // (never through a reference to the whole, possibly truncated, struct),
    // then the block goes back to the shard's cache.
    unsafe {
        std::ptr::drop_in_place(addr_of_mut!((*p).head));
        crate::block_cache::free_block(NonNull::new_unchecked(p.cast::<u8>()), proc_layout::<K>());
    }
}

// ---------------------------------------------------------------------------
// Running a process.

/// Runs the process `h` for up to the shard's budget of messages.
///
/// # Safety
/// `h` is the header of a live `Proc<K>` taken off the ready queue by the
/// scheduler of its own shard.
unsafe fn run<K: Kind>(h: NonNull<Header>, shard: &Rc<Shard>) -> Outcome {
    // SAFETY: the caller's contract.
    let header = unsafe { h.as_ref() };
    if header.has(flags::SPAN) {
        // SAFETY: forwarded.
        return unsafe { run_in_span::<K>(h, shard) };
    }
    // SAFETY: forwarded.
    unsafe { run_counted::<K>(h, shard) }
}

/// [`run`] inside the process's tracing span (kept out of the common path:
/// a span is made only when a subscriber wants one).
///
/// # Safety
/// As for [`run`].
#[cold]
#[inline(never)]
unsafe fn run_in_span<K: Kind>(h: NonNull<Header>, shard: &Rc<Shard>) -> Outcome {
    // SAFETY: the caller's contract.
    let header = unsafe { h.as_ref() };
    let span = header.extras_mut(|e| e.span.clone()).flatten();
    let _entered = span.as_ref().map(|s| s.enter());
    // SAFETY: forwarded.
    unsafe { run_counted::<K>(h, shard) }
}

/// The body of [`run`] around [`run_until`]: the polling mark, the run
/// state and the count of messages handled.
///
/// # Safety
/// As for [`run`].
#[inline(always)]
unsafe fn run_counted<K: Kind>(h: NonNull<Header>, shard: &Rc<Shard>) -> Outcome {
    // SAFETY: the caller's contract.
    let header = unsafe { h.as_ref() };
    // Also what `current_pid` reads, and restored however the run ends.
    let _polling = crate::waker::polling(h);
    header.run.set(Run::Running);
    let start = shard.budget();
    let mut budget = start;
    let mut system = 0;
    // A panic unwinds from here to the scheduler, which calls
    // `recover_run` (one `catch_unwind` per scheduler round, not per run).
    // SAFETY: forwarded.
    let outcome = unsafe { run_until::<K>(h, shard, &mut budget, &mut system) };
    // Every message taken spent one unit of budget; the user messages
    // among them are the ones counted as handled.
    shard.count_handled(u64::from(start - budget) - system);
    outcome
}

/// A hook panicked during [`run`]: see [`recover`]. A process that still
/// has its terminate hook to run goes back on the queue.
///
/// # Safety
/// As for [`run`]; `h` is the runnable whose run panicked.
unsafe fn recover_run<K: Kind>(
    h: NonNull<Header>,
    shard: &Rc<Shard>,
    panic: Box<dyn std::any::Any + Send>,
) -> Outcome {
    // SAFETY: forwarded.
    match unsafe { recover::<K>(h, shard, panic) } {
        Some(outcome) => outcome,
        None => {
            // SAFETY: still alive (`recover` returned no outcome).
            unsafe { h.as_ref() }.run.set(Run::Queued);
            Outcome::Requeue
        }
    }
}

/// Evaluates a `Result<(), Outcome>`; on `Err` the process has exited and
/// the run ends with that outcome.
macro_rules! or_exited {
    ($e:expr) => {
        if let Err(outcome) = $e {
            return outcome;
        }
    };
}

/// What a hook returned, once polled to completion.
enum Step {
    /// Go on with the next message.
    Next,
    /// The handler is suspended (the future stays in the slot).
    Suspend,
    /// Stop with this reason (runs the terminate hook unless `Killed`).
    Stop(ExitReason),
}

/// The body of [`run`]; a panic unwinds out of it to [`recover`].
///
/// The common case (no kill, no signal, no drain pending; a handler that
/// completes at once) stays in the inner `'messages` loop: a budget test,
/// a pop, the handler and one flags test per message. The future's tag
/// need not be read again there (`handle_now` leaves no future), and the
/// flags test covers everything [`between_messages`] and a `stop` act on.
/// `system` counts the system messages taken (each spends budget but is
/// not a handled user message).
///
/// # Safety
/// As for [`run`].
#[inline(always)] // into `run` (and the cold `run_in_span`): no call per run
unsafe fn run_until<K: Kind>(
    h: NonNull<Header>,
    shard: &Rc<Shard>,
    budget: &mut u32,
    system: &mut u64,
) -> Outcome {
    /// The flags that take a process off the inner loop between messages.
    const BETWEEN: u8 = flags::KILL | flags::SIGNALED | flags::DRAINING | flags::STOP;
    // SAFETY: `h` is a live `Proc<K>` (caller's contract).
    let (p, header) = unsafe { (this::<K>(h), h.as_ref()) };
    'run: loop {
        let step = match header.fut.get() {
            fut::NONE => {
                let mut draining = false;
                if header.flags.get() & (flags::KILL | flags::SIGNALED | flags::DRAINING) != 0 {
                    // SAFETY: no hook future alive.
                    match unsafe { between_messages::<K>(p, h, shard) } {
                        Between::Again => continue,
                        Between::Exited(outcome) => return outcome,
                        Between::Proceed { draining: d } => draining = d,
                    }
                }
                'messages: loop {
                    // SAFETY: a short exclusive mailbox access; no future
                    // alive (taken afresh each time: a handler may push to
                    // its own mailbox).
                    let mailbox = unsafe { mailbox::<<K::P as Process>::Msg>(h) };
                    if *budget == 0 {
                        return if mailbox.is_empty() {
                            header.run.set(Run::Idle);
                            Outcome::Parked
                        } else {
                            header.run.set(Run::Queued);
                            Outcome::Requeue
                        };
                    }
                    if mailbox.is_empty() {
                        header.run.set(Run::Idle);
                        return Outcome::Parked;
                    }
                    // SAFETY: not empty, just checked.
                    let item = unsafe { mailbox.pop_message_unchecked() };
                    *budget -= 1;
                    if draining {
                        header
                            .with_extras(|e| e.shutdown_after = e.shutdown_after.saturating_sub(1));
                    }
                    break match item {
                        Item::User(msg) => {
                            // SAFETY: no hook future alive, so nothing else
                            // borrows the state or the context; these
                            // borrows end with the call (rule 2 holds
                            // trivially).
                            let (state, ctx) = unsafe { borrow::<K>(p) };
                            match state.handle_now(ctx, msg) {
                                Handled::Done(Ok(())) => {
                                    if header.flags.get() & BETWEEN == 0 {
                                        // Nothing to do between messages:
                                        // in particular not draining.
                                        draining = false;
                                        continue 'messages;
                                    }
                                    Step::Next
                                }
                                Handled::Done(Err(e)) => {
                                    Step::Stop(ExitReason::Error(e.to_string()))
                                }
                                // SAFETY: no hook future alive, so the slot
                                // is free; then it holds the live `handle`
                                // future.
                                Handled::Later(msg) => unsafe {
                                    start_handle::<K>(p, h, msg);
                                    poll_handle::<K>(p, h)
                                },
                            }
                        }
                        Item::System(system_msg) => {
                            *system += 1;
                            // SAFETY: as above, for the boxed hook futures.
                            if !unsafe { start_system::<K>(p, h, *system_msg) } {
                                continue 'run;
                            }
                            // SAFETY: the slot now holds a live boxed future.
                            unsafe { poll_boxed::<K>(p, h) }
                        }
                    };
                }
            }
            fut::HANDLE | fut::BOXED | fut::TERM if header.has(flags::KILL) => {
                // SAFETY: the future belongs to this process; dropping it
                // mid-await is what a kill means.
                unsafe { drop_future::<K>(p) };
                // SAFETY: no hook future alive any more.
                return unsafe { exit::<K>(h, shard, ExitReason::Killed) };
            }
            // SAFETY: the tag says which union field is alive.
            fut::HANDLE => unsafe { poll_handle::<K>(p, h) },
            // SAFETY: as above.
            fut::BOXED => unsafe { poll_boxed::<K>(p, h) },
            // SAFETY: as above: a terminate future.
            _ => match unsafe { poll_term::<K>(p, h) } {
                Poll::Pending => Step::Suspend,
                // SAFETY: the terminate hook returned and was dropped.
                Poll::Ready(reason) => return unsafe { exit::<K>(h, shard, reason) },
            },
        };
        match step {
            // `Context::stop` takes effect when the hook that called it
            // returns (a stop requested by `init` waits for the first
            // message, as it always did).
            Step::Next if header.has(flags::STOP) => {
                header.clear(flags::STOP);
                let reason = header.extras_mut(|e| e.stop.take()).flatten();
                let reason = reason.unwrap_or(ExitReason::Normal);
                // SAFETY: no hook future alive (it just completed).
                or_exited!(unsafe { begin_terminate::<K>(p, h, shard, reason) });
            }
            Step::Next => {}
            Step::Suspend => return suspend(header),
            Step::Stop(reason) => {
                // SAFETY: no hook future is alive after a `Stop`.
                or_exited!(unsafe { begin_terminate::<K>(p, h, shard, reason) });
            }
        }
    }
}

/// What [`between_messages`] decided.
enum Between {
    /// Look again (a signal was taken, or a terminate hook started).
    Again,
    /// Go on and take the next message; `draining`: count it down.
    Proceed { draining: bool },
    /// The process exited.
    Exited(Outcome),
}

/// The slow path between two messages: a kill, a queued signal, or a
/// shutdown that has drained what it had to.
///
/// # Safety
/// `p` is a live `Proc<K>` with no hook future alive.
unsafe fn between_messages<K: Kind>(
    p: *mut Proc<K>,
    h: NonNull<Header>,
    shard: &Rc<Shard>,
) -> Between {
    // SAFETY: the caller's contract.
    let header = unsafe { h.as_ref() };
    if header.has(flags::KILL) {
        // SAFETY: no hook future alive.
        return Between::Exited(unsafe { exit::<K>(h, shard, ExitReason::Killed) });
    }
    if header.has(flags::SIGNALED) {
        // SAFETY: a short exclusive mailbox access.
        let signal = unsafe { mailbox::<<K::P as Process>::Msg>(h) }.take_signal();
        match signal {
            Some(Signal::Terminate(reason)) => {
                // SAFETY: no hook future alive.
                return match unsafe { begin_terminate::<K>(p, h, shard, reason) } {
                    Ok(()) => Between::Again,
                    Err(outcome) => Between::Exited(outcome),
                };
            }
            Some(Signal::Shutdown(after)) => {
                if !header.has(flags::DRAINING) {
                    header.set(flags::DRAINING);
                    header.with_extras(|e| e.shutdown_after = after.unwrap_or(0));
                }
                return Between::Again;
            }
            None => header.clear(flags::SIGNALED),
        }
    }
    if header.has(flags::DRAINING) && header.extras_mut(|e| e.shutdown_after == 0) == Some(true) {
        header.clear(flags::DRAINING);
        // SAFETY: no hook future alive.
        return match unsafe { begin_terminate::<K>(p, h, shard, ExitReason::Shutdown) } {
            Ok(()) => Between::Again,
            Err(outcome) => Between::Exited(outcome),
        };
    }
    Between::Proceed {
        draining: header.has(flags::DRAINING),
    }
}

/// The process's future returned `Pending`: keep it, unless it was woken
/// meanwhile (then it goes straight back on the queue).
fn suspend(header: &Header) -> Outcome {
    if header.has(flags::NOTIFIED) || header.has(flags::KILL) {
        header.clear(flags::NOTIFIED);
        header.run.set(Run::Queued);
        Outcome::Requeue
    } else {
        header.run.set(Run::Suspended);
        Outcome::Parked
    }
}

/// The references a hook future borrows (rule 2).
///
/// # Safety
/// `p` is a live `Proc<K>` with no hook future alive.
#[inline(always)]
unsafe fn borrow<K: Kind>(p: *mut Proc<K>) -> (&'static mut K::P, &'static mut Context<K::P>) {
    // SAFETY: rule 2: the future these references go into is dropped before
    // the state or the allocation, and nothing else borrows either field
    // while it lives.
    unsafe { (&mut *(*p).state.get(), &mut *(*p).ctx.get()) }
}

/// # Safety
/// `p` is a live `Proc<K>` whose slot is free.
#[inline(always)]
unsafe fn start_handle<K: Kind>(p: *mut Proc<K>, h: NonNull<Header>, msg: <K::P as Process>::Msg) {
    // SAFETY: the slot is free (caller's contract); rule 2. The future is
    // written straight into its union field (not through a whole `Slot`).
    unsafe {
        let (state, ctx) = borrow::<K>(p);
        let slot = new_slot::<K>(p).cast::<K::Handle>();
        slot.write((*p).kind.handle(state, ctx, msg));
        h.as_ref().fut.set(fut::HANDLE);
    }
}

/// # Safety
/// `p` is a live `Proc<K>` whose slot is free.
/// Returns `false` (and starts nothing) for a `Down` of a monitor that was
/// demonitored meanwhile.
unsafe fn start_system<K: Kind>(p: *mut Proc<K>, h: NonNull<Header>, system: System) -> bool {
    // SAFETY: the slot is free (caller's contract); rule 2.
    let (state, ctx) = unsafe { borrow::<K>(p) };
    let fut: Boxed = match system {
        System::Exit(from, reason) => Box::pin(state.handle_exit(ctx, from, reason)),
        System::Down(down) => {
            if !ctx.forget_monitor(&down.monitor) {
                return false; // demonitored: rule 3 of `link.rs`
            }
            Box::pin(state.handle_down(ctx, down))
        }
    };
    // SAFETY: the slot is free.
    unsafe {
        new_slot::<K>(p).write(Slot {
            boxed: ManuallyDrop::new(fut),
        });
        h.as_ref().fut.set(fut::BOXED);
    }
    true
}

/// Starts the terminate hook (or exits at once for `Killed`). Returns
/// `Err(Exited)` when the process is gone.
///
/// # Safety
/// `p` is a live `Proc<K>` with no hook future alive.
unsafe fn begin_terminate<K: Kind>(
    p: *mut Proc<K>,
    h: NonNull<Header>,
    shard: &Rc<Shard>,
    reason: ExitReason,
) -> Result<(), Outcome> {
    if reason == ExitReason::Killed {
        // SAFETY: forwarded.
        return Err(unsafe { exit::<K>(h, shard, reason) });
    }
    // Pending stop requests and drains are moot now.
    // SAFETY: `h` is live.
    let header = unsafe { h.as_ref() };
    header.clear(flags::STOP | flags::DRAINING);
    // SAFETY: the slot is free (caller's contract). The reason is written
    // first and never moves while the future that borrows it lives (rule 2).
    unsafe {
        let slot = new_slot::<K>(p);
        slot.write(Slot {
            term: ManuallyDrop::new(TermSlot {
                reason,
                fut: MaybeUninit::uninit(),
            }),
        });
        let term = &mut *(*slot).term;
        let reason: &'static ExitReason = &*std::ptr::addr_of!(term.reason);
        let (state, ctx) = borrow::<K>(p);
        term.fut.write((*p).kind.terminate(state, ctx, reason));
        header.fut.set(fut::TERM);
    }
    Ok(())
}

/// Polls with a borrowed waker that names this process (rule 4).
#[inline(always)]
fn waker_for<R>(h: NonNull<Header>, poll: impl FnOnce(&mut TaskContext<'_>) -> R) -> R {
    crate::waker::with_borrowed(h, poll)
}

/// # Safety
/// `p`'s slot holds a live `handle` future.
#[inline(always)]
unsafe fn poll_handle<K: Kind>(p: *mut Proc<K>, h: NonNull<Header>) -> Step {
    // SAFETY: the tag said `HANDLE`; the future never moves (rule 2).
    let polled = waker_for(h, |cx| unsafe {
        let fut = &mut *slot::<K>(p);
        Pin::new_unchecked(&mut *fut.handle).poll(cx)
    });
    match polled {
        Poll::Pending => Step::Suspend,
        Poll::Ready(result) => {
            // SAFETY: the future completed; dropping it ends its borrows.
            // The tag is cleared first so that a panicking drop is not
            // repeated by `recover`.
            unsafe {
                h.as_ref().fut.set(fut::NONE);
                ManuallyDrop::drop(&mut (*slot::<K>(p)).handle);
                release_slot::<K>(p);
            }
            match result {
                Ok(()) => Step::Next,
                Err(e) => Step::Stop(ExitReason::Error(e.to_string())),
            }
        }
    }
}

/// # Safety
/// `p`'s slot holds a live boxed future.
unsafe fn poll_boxed<K: Kind>(p: *mut Proc<K>, h: NonNull<Header>) -> Step {
    // SAFETY: the tag said `BOXED`.
    let polled = waker_for(h, |cx| unsafe {
        let fut = &mut *slot::<K>(p);
        fut.boxed.as_mut().poll(cx)
    });
    match polled {
        Poll::Pending => Step::Suspend,
        Poll::Ready(result) => {
            // SAFETY: the future completed.
            unsafe { drop_future::<K>(p) };
            match result {
                Ok(()) => Step::Next,
                Err(e) => Step::Stop(ExitReason::Error(e.to_string())),
            }
        }
    }
}

/// Polls the terminate future; when it is done, drops it and hands back
/// its reason.
///
/// # Safety
/// `p`'s slot holds a live terminate future.
unsafe fn poll_term<K: Kind>(p: *mut Proc<K>, h: NonNull<Header>) -> Poll<ExitReason> {
    // SAFETY: the tag said `TERM`; the future never moves.
    let polled = waker_for(h, |cx| unsafe {
        let slot = &mut *slot::<K>(p);
        Pin::new_unchecked(slot.term.fut.assume_init_mut()).poll(cx)
    });
    match polled {
        Poll::Pending => Poll::Pending,
        // SAFETY: the future completed; take the reason out after it.
        Poll::Ready(()) => Poll::Ready(unsafe { take_term::<K>(p, h) }),
    }
}

/// Drops the terminate future, then moves its reason out.
///
/// # Safety
/// `p`'s slot holds a live terminate future.
unsafe fn take_term<K: Kind>(p: *mut Proc<K>, h: NonNull<Header>) -> ExitReason {
    // SAFETY: the caller's contract; the tag is cleared first so that a
    // panic in the future's drop cannot lead to a second drop.
    unsafe {
        h.as_ref().fut.set(fut::NONE);
        let slot = &mut *slot::<K>(p);
        let term = &mut *slot.term;
        // If the future's drop panics, unwinding drops `reason` with it
        // (and the external block, if any, is leaked: a panicking drop).
        let reason = std::ptr::read(&term.reason);
        term.fut.assume_init_drop();
        release_slot::<K>(p);
        reason
    }
}

/// Drops whichever hook future is alive.
///
/// # Safety
/// `p` is a live `Proc<K>`; `Header::fut` tells the truth.
unsafe fn drop_future<K: Kind>(p: *mut Proc<K>) {
    // SAFETY: `p` is live; the tag names the live union field, and is
    // cleared before the drop so that a panicking drop is not repeated.
    unsafe {
        let header = &(*p).head.header;
        let tag = header.fut.replace(fut::NONE);
        if tag == fut::NONE {
            return;
        }
        let slot = &mut *slot::<K>(p);
        match tag {
            fut::HANDLE => ManuallyDrop::drop(&mut slot.handle),
            fut::BOXED => ManuallyDrop::drop(&mut slot.boxed),
            _ => {
                let term = &mut *slot.term;
                let _reason = std::ptr::read(&term.reason);
                term.fut.assume_init_drop();
            }
        }
        release_slot::<K>(p);
    }
}

/// A hook (or our own code) panicked mid-run. Drops the future that
/// panicked and decides what happens next: `Some` ends the run, `None`
/// runs the loop again (to run the terminate hook).
///
/// # Safety
/// As for [`run`].
unsafe fn recover<K: Kind>(
    h: NonNull<Header>,
    shard: &Rc<Shard>,
    panic: Box<dyn std::any::Any + Send>,
) -> Option<Outcome> {
    let message = panic_message(&*panic);
    drop_quietly(panic);
    // SAFETY: `h` is live (it exits only through `exit`, which does not
    // panic past the point where it frees the allocation).
    let (p, header) = unsafe { (this::<K>(h), h.as_ref()) };
    let was_terminating = header.fut.get() == fut::TERM;
    let dropped = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the tag tells which future is alive.
        unsafe { drop_future::<K>(p) }
    }));
    if let Err(again) = dropped {
        tracing::warn!(pid = %header.pid, panic = %panic_message(&*again), "dropping a panicked hook panicked");
        drop_quietly(again);
    }
    if was_terminating {
        tracing::warn!(pid = %header.pid, panic = %message, "terminate hook panicked");
        // SAFETY: no hook future is alive any more.
        return Some(unsafe { exit::<K>(h, shard, ExitReason::Panicked(message)) });
    }
    // SAFETY: no hook future is alive any more. `None`: run the loop again,
    // which polls the terminate hook.
    unsafe { begin_terminate::<K>(p, h, shard, ExitReason::Panicked(message)) }.err()
}

/// Drops a panic payload, whose own drop might panic.
fn drop_quietly(payload: Box<dyn std::any::Any + Send>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
}

/// The end of a process: timers and monitors, state, slot, then everybody
/// else (`table.rs` rule 2, DESIGN.md "termination on the owner").
///
/// # Safety
/// `h` is a live `Proc<K>` with no hook future alive; it is freed here and
/// must not be used afterwards.
unsafe fn exit<K: Kind>(h: NonNull<Header>, shard: &Rc<Shard>, reason: ExitReason) -> Outcome {
    // SAFETY: `h` is a live `Proc<K>` until `free` below.
    let (p, header) = unsafe { (this::<K>(h), h.as_ref()) };
    let pid = header.pid;
    // Timers die with their owner; its own monitors are dropped on their
    // targets' side; both before anybody hears of the exit.
    shard.release_context(header);
    // SAFETY: no hook future is alive, so nothing borrows the state.
    let dropped = catch_unwind(AssertUnwindSafe(|| unsafe {
        ManuallyDrop::drop(&mut *(*p).state.get())
    }));
    if let Err(panic) = dropped {
        tracing::warn!(%pid, panic = %panic_message(&*panic), "dropping process state panicked");
        drop_quietly(panic);
    }
    // SAFETY: a short exclusive access; nothing else touches the mailbox.
    let mailbox = unsafe { mailbox::<<K::P as Process>::Msg>(h) };
    let leftovers = (!mailbox.is_empty() || mailbox.signal_count() > 0).then(|| mailbox.close());
    // Dropping leftovers runs user code; a panic there must not unwind into
    // `recover`, which would run hooks on a state that is gone.
    let told = catch_unwind(AssertUnwindSafe(|| shard.exit(h, &reason, leftovers)));
    if let Err(panic) = told {
        tracing::warn!(%pid, panic = %panic_message(&*panic), "exit fan-out panicked");
        drop_quietly(panic);
    }
    reason.dispose();
    // SAFETY: out of the table, not queued (it is running), no future.
    unsafe { free::<K>(p) };
    Outcome::Exited
}
