//! The runtime: builder, shared per-runtime state, and the outside-thread
//! API (`block_on`, blocking `wait`, `shutdown`).

use crate::envelope::Envelope;
use crate::error::Error;
use crate::pid::ShardId;
use crate::pool::{self, ShardExit, ShardStart};
use crate::reply::Completion;
use corelet_cross_shard::{ring, Doorbell, Notify};
use crossbeam_queue::SegQueue;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::Waker;
use std::time::Duration;

/// Identifies a runtime within the process (pids are only meaningful in
/// the runtime that issued them). Never reused: `Builder::build` refuses
/// to make a runtime once the ids are spent (about four billion builds), so
/// a stale reply handle can never name a later runtime's reply slot. 32
/// bits rather than 64 keep a `ReplyTo` at 16 bytes, so that a request
/// carrying one is a word smaller in every mailbox and ring slot.
pub(crate) type RuntimeId = u32;

/// [`Builder::publish_batch`]'s default.
const DEFAULT_PUBLISH_BATCH: usize = 256;

/// Tunables, fixed when the runtime is built.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) ring_capacity: usize,
    pub(crate) overflow_limit: usize,
    pub(crate) shutdown_grace: Duration,
    pub(crate) spin_before_park: Duration,
    pub(crate) process_budget: u32,
    pub(crate) publish_batch: usize,
}

/// The notifier a shard's doorbell rings: the waker of the shard's pump
/// task, which glommio turns into an eventfd write only if the executor is
/// parked in the kernel.
#[derive(Default)]
pub(crate) struct PumpNotify(OnceLock<Waker>);

impl PumpNotify {
    /// Stores the pump's waker; the pump is one task for the shard's whole
    /// life, so the first value is the only one.
    pub(crate) fn set(&self, waker: &Waker) {
        if self.0.get().is_none() {
            let _ = self.0.set(waker.clone());
        }
    }
}

impl Notify for PumpNotify {
    fn notify(&self) {
        if let Some(waker) = self.0.get() {
            waker.wake_by_ref();
        }
    }
}

/// What other threads may touch of a shard: its doorbell and its injector.
pub(crate) struct ShardShared {
    pub(crate) doorbell: Doorbell<PumpNotify>,
    /// Envelopes from threads that are not shards of this runtime (MPSC,
    /// lock-free; not on the shard-to-shard path).
    pub(crate) injector: SegQueue<crate::envelope::Envelope>,
    /// Set when the shard's thread died of a panic, or when the runtime has
    /// shut down: nothing will drain the injector any more, so whoever
    /// pushes drains (dropping envelopes resolves their askers with an
    /// error instead of leaving them hanging).
    pub(crate) dead: AtomicBool,
    /// Set by a shard that has finished (and dropped its end of its inbound
    /// rings) for each of its peers: what they queued for it and it never
    /// took is theirs to reclaim (`Shard::reclaim_from_gone_peers`).
    pub(crate) peer_gone: AtomicBool,
}

impl ShardShared {
    /// Drops everything queued for a dead shard.
    pub(crate) fn discard_queued(&self) {
        while let Some(env) = self.injector.pop() {
            drop(env);
        }
    }
}

/// State shared by every shard of one runtime and by its handle.
pub(crate) struct Shared {
    pub(crate) id: RuntimeId,
    pub(crate) name: String,
    pub(crate) shards: Vec<ShardShared>,
    pub(crate) config: Config,
}

impl Shared {
    /// Queues an envelope for `shard` from any thread and rings its bell.
    pub(crate) fn inject(&self, shard: ShardId, env: Envelope) {
        let target = &self.shards[shard.index()];
        target.injector.push(env);
        target.doorbell.ring();
        // SeqCst: pairs with the SeqCst store in `pool::mark_dead`; either
        // we see the flag, or the dying thread's drain sees our push.
        if target.dead.load(Ordering::SeqCst) {
            target.discard_queued();
        }
    }
}

static NEXT_RUNTIME: AtomicU32 = AtomicU32::new(1);
static RUNTIMES: Mutex<Vec<(RuntimeId, Weak<Shared>)>> = Mutex::new(Vec::new());

/// Finds a live runtime by id (used to route replies from outside threads).
pub(crate) fn lookup_runtime(id: RuntimeId) -> Option<Arc<Shared>> {
    let runtimes = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    runtimes
        .iter()
        .find(|(rid, _)| *rid == id)
        .and_then(|(_, w)| w.upgrade())
}

fn register_runtime(shared: &Arc<Shared>) {
    let mut runtimes = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    runtimes.retain(|(_, w)| w.strong_count() > 0);
    runtimes.push((shared.id, Arc::downgrade(shared)));
}

fn unregister_runtime(id: RuntimeId) {
    let mut runtimes = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    runtimes.retain(|(rid, w)| *rid != id && w.strong_count() > 0);
}

/// Builds a [`Runtime`].
///
/// Defaults: one shard per available core, pinned (one shard per core via
/// `core_affinity`) when there are no more shards than cores. The
/// environment variables `CORELET_SHARDS` (a positive integer) and
/// `CORELET_PIN` (`0` or `1`) replace these defaults when set; a value set
/// on the builder wins over both.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    shards: Option<usize>,
    pin: Option<bool>,
    name: Option<String>,
    ring_capacity: Option<usize>,
    overflow_limit: Option<usize>,
    shutdown_grace: Option<Duration>,
    spin_before_park: Option<Duration>,
    process_budget: Option<u32>,
    publish_batch: Option<usize>,
    cores: Option<Vec<usize>>,
}

impl Builder {
    /// A builder with every setting at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of shards (threads). Zero is refused by [`Builder::build`].
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Pin each shard to its own core (`true`), or let the OS place the
    /// threads (`false`; needed for more shards than cores).
    pub fn pin(mut self, pin: bool) -> Self {
        self.pin = Some(pin);
        self
    }

    /// A name for logs and thread-placement diagnostics.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Slots per cross-shard ring (rounded up to a power of two; default
    /// 1024).
    pub fn ring_capacity(mut self, slots: usize) -> Self {
        self.ring_capacity = Some(slots);
        self
    }

    /// Envelopes a shard keeps per destination when that ring is full,
    /// before `tell` reports back-pressure with `SendError::Full` (default
    /// 65,536). Replies and signals are never refused.
    pub fn overflow_limit(mut self, envelopes: usize) -> Self {
        self.overflow_limit = Some(envelopes);
        self
    }

    /// How long shutdown lets processes run their terminate hooks before
    /// killing them (default 5 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = Some(grace);
        self
    }

    /// How long an idle shard keeps polling its inbound rings before it
    /// sleeps in the kernel (default 50 µs; zero never spins). Spinning
    /// trades idle CPU for latency of cross-shard request/response.
    pub fn spin_before_park(mut self, spin: Duration) -> Self {
        self.spin_before_park = Some(spin);
        self
    }

    /// Messages a process may handle in one turn before the scheduler
    /// moves on to the next ready process (default 100, as Pony's; zero is
    /// taken as one). Lower values interleave processes more finely; higher
    /// ones amortise scheduling over more messages.
    pub fn process_budget(mut self, messages: u32) -> Self {
        self.process_budget = Some(messages);
        self
    }

    /// Envelopes a shard pushes into a ring towards another shard before it
    /// publishes them in the middle of a scheduler round (default 256, at
    /// most a quarter of the ring's capacity; zero is taken as one). Every
    /// round ends by publishing whatever is pending, so this only matters
    /// for a shard that sends more than this to one peer within a round:
    /// a smaller batch lets that peer see the start of a long stream
    /// sooner; a larger one makes the peer's core fetch the ring's tail
    /// and batch stamps fewer times per message (a one-way stream between
    /// two shards moved about 50 M msg/s with 16, 57-66 with 64 and 67-85
    /// with 256 on the 2-core development VM, side by side).
    pub fn publish_batch(mut self, envelopes: usize) -> Self {
        self.publish_batch = Some(envelopes);
        self
    }

    /// Places the shards on these CPUs (ids as `core_affinity` and
    /// `/proc/cpuinfo` number them): shard `i` is pinned to
    /// `cores[i % cores.len()]`, so the host keeps its other CPUs. Implies
    /// pinning; the shard count defaults to the number of CPUs given.
    pub fn cores(mut self, cores: impl IntoIterator<Item = usize>) -> Self {
        self.cores = Some(cores.into_iter().collect());
        self
    }

    /// The CPU of each shard when [`Builder::cores`] is set.
    fn placement(&self, shards: usize) -> Result<Option<Vec<core_affinity::CoreId>>, Error> {
        let Some(list) = &self.cores else {
            return Ok(None);
        };
        if list.is_empty() {
            return Err(Error::Build("cores(): the CPU list is empty".into()));
        }
        let known = core_affinity::get_core_ids().unwrap_or_default();
        if let Some(bad) = list.iter().find(|&&c| !known.iter().any(|k| k.id == c)) {
            return Err(Error::Build(format!("cores(): CPU {bad} is not available")));
        }
        let ids = (0..shards).map(|i| core_affinity::CoreId {
            id: list[i % list.len()],
        });
        Ok(Some(ids.collect()))
    }

    fn resolve(&self) -> Result<(usize, bool), Error> {
        let cores = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(0);
        let available = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let shards = match self.shards.or(self.cores.as_ref().map(Vec::len)) {
            Some(n) => n,
            None => match env_var("CORELET_SHARDS")? {
                Some(v) => v
                    .parse::<usize>()
                    .map_err(|_| Error::Build(format!("CORELET_SHARDS={v:?} is not a number")))?,
                None => available,
            },
        };
        if shards == 0 {
            return Err(Error::Build("a runtime needs at least one shard".into()));
        }
        if shards > u16::MAX as usize {
            return Err(Error::Build(format!(
                "{shards} shards is more than {}",
                u16::MAX
            )));
        }
        let pin = match self.pin {
            Some(p) => p,
            None => match env_var("CORELET_PIN")?.as_deref() {
                Some("1") => true,
                Some("0") => false,
                Some(v) => return Err(Error::Build(format!("CORELET_PIN={v:?} is not 0 or 1"))),
                None => shards <= cores,
            },
        };
        if self.cores.is_some() {
            return Ok((shards, true));
        }
        if pin && shards > cores {
            return Err(Error::Build(format!(
                "{shards} pinned shards but {cores} cores: use pin(false) or CORELET_PIN=0"
            )));
        }
        Ok((shards, pin))
    }

    /// Starts the shards. Each shard is a single-threaded glommio executor;
    /// threads come from a process-wide pool (see `Runtime` docs).
    pub fn build(self) -> Result<Runtime, Error> {
        let (n, pin) = self.resolve()?;
        let placed = self.placement(n)?;
        let ring_capacity = self.ring_capacity.unwrap_or(1024).max(2);
        let config = Config {
            ring_capacity,
            overflow_limit: self.overflow_limit.unwrap_or(1 << 16).max(1),
            shutdown_grace: self.shutdown_grace.unwrap_or(Duration::from_secs(5)),
            spin_before_park: self.spin_before_park.unwrap_or(Duration::from_micros(50)),
            process_budget: self.process_budget.unwrap_or(100).max(1),
            publish_batch: self
                .publish_batch
                .unwrap_or(DEFAULT_PUBLISH_BATCH)
                .min(ring_capacity.next_power_of_two() / 4)
                .max(1),
        };
        // A unique number; orders nothing. `fetch_update` rather than
        // `fetch_add` so that the last id is never passed (no wrap, no reuse).
        let id = NEXT_RUNTIME
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |id| id.checked_add(1))
            .map_err(|_| Error::Build("runtime ids exhausted (2^32 - 1 runtimes built)".into()))?;
        let name = self.name.unwrap_or_else(|| format!("corelet-{id}"));
        let shared = Arc::new(Shared {
            id,
            name,
            shards: (0..n)
                .map(|_| ShardShared {
                    doorbell: Doorbell::new(PumpNotify::default()),
                    injector: SegQueue::new(),
                    dead: AtomicBool::new(false),
                    peer_gone: AtomicBool::new(false),
                })
                .collect(),
            config: config.clone(),
        });
        // One ring per ordered pair (i → j), i ≠ j.
        let mut inboxes: Vec<Vec<_>> = (0..n).map(|_| Vec::with_capacity(n)).collect();
        let mut outboxes: Vec<Vec<_>> = (0..n).map(|_| Vec::with_capacity(n)).collect();
        for (i, outs) in outboxes.iter_mut().enumerate() {
            for (j, ins) in inboxes.iter_mut().enumerate() {
                if i == j {
                    outs.push(None);
                } else {
                    let (p, c) = ring(config.ring_capacity);
                    outs.push(Some(p));
                    ins.push(c);
                }
            }
        }
        let cores = if let Some(placed) = placed {
            placed
        } else if pin {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        register_runtime(&shared);
        let mut exits = Vec::with_capacity(n);
        for (i, (ins, outs)) in inboxes.into_iter().zip(outboxes).enumerate() {
            let start = ShardStart {
                id: ShardId(i as u16),
                shared: shared.clone(),
                inboxes: ins,
                outboxes: outs,
                core: cores.get(i).copied(),
            };
            exits.push(pool::start_shard(start));
        }
        tracing::debug!(runtime = %shared.name, shards = n, pin, "runtime started");
        Ok(Runtime {
            shared,
            exits: Mutex::new(exits),
            stopped: false,
        })
    }
}

fn env_var(key: &str) -> Result<Option<String>, Error> {
    match std::env::var(key) {
        Ok(v) => Ok(Some(v.trim().to_owned())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(Error::Build(format!("{key}: {e}"))),
    }
}

/// A running set of shards.
///
/// Dropping a `Runtime` shuts it down (see [`Runtime::shutdown`]).
///
/// Shard threads and their glommio executors come from a process-wide pool
/// and return to it on shutdown. This is deliberate: glommio 0.9 never
/// frees a task header, so every executor that ran a task keeps its
/// wake-up eventfd open forever (upstream issue #448). Reusing executors
/// keeps a program that creates and drops many runtimes at a fixed number
/// of threads and file descriptors: at most as many as shards that were
/// ever alive at once.
pub struct Runtime {
    shared: Arc<Shared>,
    /// Behind a `Mutex` only so that `Runtime` is `Sync` (a `Receiver` is
    /// not) and outside threads can share `&Runtime`; `shutdown` takes
    /// `&mut self` and never locks it.
    exits: Mutex<Vec<std::sync::mpsc::Receiver<ShardExit>>>,
    stopped: bool,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("name", &self.shared.name)
            .field("shards", &self.shared.shards.len())
            .finish()
    }
}

impl Runtime {
    /// A builder with defaults (see [`Builder`]).
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shared.shards.len()
    }

    /// The runtime's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn check_shard(&self, shard: ShardId) -> Result<(), Error> {
        if shard.index() < self.shared.shards.len() {
            Ok(())
        } else {
            Err(Error::UnknownShard(shard))
        }
    }

    /// Runs `f()` to completion on `shard` and returns its output, blocking
    /// the calling thread. The future runs as a plain task (not a process)
    /// and may spawn processes, send, ask and wait.
    ///
    /// Errors: `BlockingOnShard` on a shard thread, `UnknownShard`,
    /// `Panicked` if the future panicked, `ShuttingDown` if the runtime
    /// stopped first.
    pub fn block_on<F, Fut, T>(&self, shard: ShardId, f: F) -> Result<T, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        not_on_shard()?;
        self.check_shard(shard)?;
        let completion = Completion::<Result<T, String>>::new();
        let reply = crate::reply::ReplyTo::to_thread(completion.clone());
        self.shared.inject(
            shard,
            Envelope::with_rc(move |s| {
                let fut = crate::process::CatchUnwind(f());
                s.run_task(async move { reply.send(fut.await) });
            }),
        );
        match completion.wait() {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(panic)) => Err(Error::Panicked(panic)),
            Err(_) => Err(Error::ShuttingDown),
        }
    }

    /// Counters of every shard (a consistent snapshot per shard, taken on
    /// that shard).
    pub fn stats(&self) -> Result<Vec<crate::ShardStats>, Error> {
        (0..self.shard_count())
            .map(|i| self.block_on(ShardId(i as u16), || async { crate::api::local_stats() }))
            .map(|r| r.and_then(|s| s.ok_or(Error::NotInRuntime)))
            .collect()
    }

    /// Stops the runtime: every process is terminated (its terminate hook
    /// runs; after the grace period, stragglers are killed), every shard
    /// finishes, and its thread returns to the pool. Returns an error
    /// naming any shard thread that panicked. Idempotent.
    pub fn shutdown(&mut self) -> Result<(), Error> {
        if self.stopped {
            return Ok(());
        }
        not_on_shard()?;
        self.stopped = true;
        for i in 0..self.shard_count() {
            self.shared.inject(
                ShardId(i as u16),
                Envelope::with_rc(|s| s.begin_stop_with_grace()),
            );
        }
        let mut first_error = None;
        let exits = std::mem::take(self.exits.get_mut().unwrap_or_else(|e| e.into_inner()));
        for (i, exit) in exits.into_iter().enumerate() {
            let outcome = exit
                .recv()
                .unwrap_or_else(|_| Err("shard thread vanished".to_owned()));
            if let Err(msg) = outcome {
                tracing::error!(shard = i, panic = %msg, "shard thread panicked");
                first_error.get_or_insert(Error::ShardPanicked(ShardId(i as u16), msg));
            }
        }
        unregister_runtime(self.shared.id);
        // Nothing drains the injectors any more: mark every shard dead, so
        // that later calls on this handle (`block_on`, `ask`, `watch`, …)
        // fail at once instead of waiting forever, and drop what is still
        // queued (sent by other shards as they stopped); reply handles in
        // there find no runtime and drop quietly.
        for s in &self.shared.shards {
            // SeqCst: pairs with the SeqCst load in `Shared::inject`.
            s.dead.store(true, Ordering::SeqCst);
            s.discard_queued();
        }
        tracing::debug!(runtime = %self.shared.name, "runtime stopped");
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if !self.stopped {
            if crate::shard::with_current(|_| ()).is_some() {
                tracing::error!("a Runtime dropped on a shard thread cannot be shut down there");
                return;
            }
            if let Err(e) = self.shutdown() {
                tracing::error!(error = %e, "runtime shutdown reported an error");
            }
        }
    }
}

/// Blocking calls are refused on shard threads.
pub(crate) fn not_on_shard() -> Result<(), Error> {
    match crate::shard::with_current(|s| s.id) {
        Some(id) => Err(Error::BlockingOnShard(id)),
        None => Ok(()),
    }
}
