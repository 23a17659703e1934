//! Shard threads: a process-wide pool of threads, each owning one glommio
//! executor for its whole life.
//!
//! Why a pool: glommio 0.9 does not drop a task's header when it frees the
//! task, so the `Arc` each header holds on its executor's sleep notifier is
//! never released, and every executor that has run a task leaks one
//! eventfd (and ~600 bytes) when it is dropped (upstream issue #448;
//! measured: +1 fd per executor, with or without tasks of our own). Keeping
//! executors alive and reusing them across runtimes bounds the cost at the
//! peak number of shards alive at once.
//!
//! # Rules
//!
//! 1. A pool thread runs at most one shard at a time; between shards it
//!    blocks on its assignment channel, owning nothing.
//! 2. A thread returns itself to the pool *before* it reports its shard
//!    finished, so a runtime built right after another was shut down
//!    reuses the same threads.
//! 3. A thread whose shard panicked is not reused (its executor may be in
//!    any state): it marks the shard dead, reports the panic, and exits.

use crate::envelope::Envelope;
use crate::pid::ShardId;
use crate::runtime::Shared;
use crate::shard::{set_current, take_current, Shard};
use corelet_cross_shard::{Consumer, Producer};
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

/// How a shard ended: `Err` carries a panic message.
pub(crate) type ShardExit = Result<(), String>;

/// Everything a thread needs to run one shard.
pub(crate) struct ShardStart {
    pub(crate) id: ShardId,
    pub(crate) shared: Arc<Shared>,
    pub(crate) inboxes: Vec<Consumer<Envelope>>,
    pub(crate) outboxes: Vec<Option<Producer<Envelope>>>,
    pub(crate) core: Option<core_affinity::CoreId>,
}

struct Assignment {
    start: ShardStart,
    done: Sender<ShardExit>,
}

static IDLE: Mutex<Vec<Sender<Assignment>>> = Mutex::new(Vec::new());

/// glommio's default reserves 10 MiB of I/O memory per executor; shards
/// that do heavy storage I/O can use more from the allocator.
const IO_MEMORY: usize = 256 << 10;

/// Hands `start` to an idle pool thread (or a new one) and returns the
/// channel on which the shard's end will be reported.
pub(crate) fn start_shard(start: ShardStart) -> Receiver<ShardExit> {
    let (done, exit) = channel();
    let mut assignment = Assignment { start, done };
    loop {
        let idle = IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(thread) => match thread.send(assignment) {
                Ok(()) => return exit,
                // That thread exited (its executor failed); try another.
                Err(returned) => assignment = returned.0,
            },
            None => {
                spawn_thread(assignment);
                return exit;
            }
        }
    }
}

fn spawn_thread(first: Assignment) {
    let (tx, rx) = channel::<Assignment>();
    let me = tx.clone();
    // Queued before the thread starts: `rx` is its first and only reader.
    tx.send(first)
        .expect("the receiver is alive until moved into the thread");
    let spawned = std::thread::Builder::new()
        .name("corelet-shard".into())
        .spawn(move || thread_main(me, rx));
    if let Err(e) = spawned {
        // The closure (and `rx`, holding `first`) is gone; `first.done` was
        // dropped with it, so the waiter sees a disconnected channel and
        // reports the shard as vanished.
        tracing::error!(error = %e, "cannot spawn shard thread");
    }
}

fn thread_main(me: Sender<Assignment>, rx: Receiver<Assignment>) {
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(IO_MEMORY)
        .make();
    let executor = match executor {
        Ok(ex) => ex,
        Err(e) => {
            // Report to whoever is waiting for the first assignment.
            if let Ok(a) = rx.recv() {
                let _ = a.done.send(Err(format!("cannot create executor: {e}")));
            }
            return;
        }
    };
    while let Ok(Assignment { start, done }) = rx.recv() {
        place(start.core);
        let shared = start.shared.clone();
        let id = start.id;
        let outcome = catch_unwind(AssertUnwindSafe(|| run_shard(&executor, start)));
        match outcome {
            Ok(()) => {
                set_current(None);
                IDLE.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(me.clone());
                let _ = done.send(Ok(()));
            }
            Err(panic) => {
                let shard = take_current();
                mark_dead(&shared, id);
                if let Some(shard) = shard {
                    // Without this, waiters and cross-shard askers of the
                    // shard's processes would wait forever.
                    if let Err(p) = catch_unwind(AssertUnwindSafe(|| shard.abandon())) {
                        let msg = crate::exit::panic_message(&*p);
                        tracing::error!(shard = id.0, panic = %msg, "abandoning shard panicked");
                    }
                }
                let _ = done.send(Err(crate::exit::panic_message(&*panic)));
                return;
            }
        }
    }
}

fn run_shard(executor: &LocalExecutor, start: ShardStart) {
    executor.run(async move {
        let ShardStart {
            id,
            shared,
            inboxes,
            outboxes,
            ..
        } = start;
        let shard = Rc::new(Shard::new(id, shared, inboxes, outboxes));
        set_current(Some(shard.clone()));
        crate::sched::scheduler(shard.clone()).await;
        shard.cancel_tasks();
        // Let the executor drop the cancelled tasks' futures now, while this
        // shard is still current, rather than at the start of the next run.
        for _ in 0..4 {
            futures_lite::future::yield_now().await;
        }
        set_current(None);
    });
}

fn mark_dead(shared: &Shared, id: ShardId) {
    let s = &shared.shards[id.index()];
    // SeqCst: pairs with the SeqCst load in `Shared::inject`.
    s.dead.store(true, Ordering::SeqCst);
    s.discard_queued();
}

/// Pins the thread to `core`, or lets it run anywhere.
fn place(core: Option<core_affinity::CoreId>) {
    match core {
        Some(core) => {
            if !core_affinity::set_for_current(core) {
                tracing::warn!(core = core.id, "could not pin shard thread");
            }
        }
        None => {
            let mut all = nix::sched::CpuSet::new();
            for id in core_affinity::get_core_ids().unwrap_or_default() {
                let _ = all.set(id.id);
            }
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &all);
        }
    }
}
