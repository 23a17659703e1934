//! The seed races: the three real bugs corelet exists to make impossible
//! (see ../shared/DESIGN.md), replayed as races with real threads and
//! shards. Shared by `examples/seed_races` and `tests/seed_races.rs`.
//!
//! Each scenario returns `Err(description)` if its outcome is wrong. A
//! use-after-free or double drop would show up as a crash, a wrong count,
//! or — under valgrind — an invalid read (see docs/lifecycle.md).

use corelet::{
    Addr, Context, Error, ExitReason, HandlerResult, Pid, Process, ReplyTo, Runtime, ShardId,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts terminate-hook runs and state drops, to prove each happens once.
#[derive(Clone, Default)]
pub struct Tally {
    hooks: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl Tally {
    fn take(&self) -> (usize, usize) {
        (
            self.hooks.swap(0, Ordering::SeqCst),
            self.drops.swap(0, Ordering::SeqCst),
        )
    }
}

/// A one-shot process: on `Go` it tells `notify` it is about to become idle,
/// then (if `stop_itself`) stops, racing with the terminate that follows.
pub struct OneShot {
    notify: Addr<Terminator>,
    stop_itself: bool,
    tally: Tally,
}

/// Messages of [`OneShot`].
pub enum Go {
    /// Do the one thing.
    Go,
}

impl Process for OneShot {
    type Msg = Go;
    async fn handle(&mut self, ctx: &mut Context<Self>, _msg: Go) -> HandlerResult {
        self.notify.tell(TerminateNow(ctx.pid()))?;
        if self.stop_itself {
            ctx.stop();
        }
        Ok(())
    }
    async fn terminate(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        self.tally.hooks.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for OneShot {
    fn drop(&mut self) {
        self.tally.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Terminates whatever pid it is told, the moment it is told.
pub struct Terminator;

/// Message of [`Terminator`].
pub struct TerminateNow(pub Pid);

impl Process for Terminator {
    type Msg = TerminateNow;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: TerminateNow) -> HandlerResult {
        // The target may already be gone (it may stop itself): that is the
        // race, and `NoProcess` is a fine answer.
        let _ = corelet::terminate(msg.0);
        Ok(())
    }
}

/// Waits, as a process, for another process.
#[derive(Default)]
pub struct Waiter {
    outcome: Option<Result<ExitReason, Error>>,
}

/// Messages of [`Waiter`].
pub enum WaitMsg {
    /// Wait for `pid`; answer `registered` as soon as the wait is in place.
    /// The handler then stays busy until `pid` exits.
    WaitFor(Pid, ReplyTo<()>),
    /// The outcome of the last wait (queued behind it, so answered after).
    Outcome(ReplyTo<Option<Result<ExitReason, Error>>>),
}

impl Process for Waiter {
    type Msg = WaitMsg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: WaitMsg) -> HandlerResult {
        match msg {
            WaitMsg::WaitFor(pid, registered) => {
                let wait = corelet::wait(pid); // registered now
                registered.send(());
                self.outcome = Some(wait.await);
            }
            WaitMsg::Outcome(reply) => reply.send(self.outcome.take()),
        }
        Ok(())
    }
}

/// The fixture every scenario shares: one runtime, a terminator on shard B,
/// a waiter on shard A.
pub struct Fixture {
    rt: Arc<Runtime>,
    workers: Workers,
    a: ShardId,
    b: ShardId,
    terminator: Addr<Terminator>,
    waiter: Addr<Waiter>,
    observer: Addr<Observer>,
    tally: Tally,
    round: usize,
    /// Processes per terminate storm.
    pub storm: usize,
}

impl Fixture {
    /// Builds the fixture on `rt` (at least two shards).
    pub fn new(rt: Runtime, storm: usize) -> Result<Self, Error> {
        assert!(rt.shard_count() >= 2, "the seed races need two shards");
        let (a, b) = (ShardId(0), ShardId(1));
        let terminator = rt.spawn_on(b, || Terminator)?;
        let waiter = rt.spawn_on(a, Waiter::default)?;
        let observer = rt.spawn_on(b, Observer::default)?;
        Ok(Self {
            workers: Workers::new(rt.shard_count() + 1),
            rt: Arc::new(rt),
            a,
            b,
            terminator,
            waiter,
            observer,
            tally: Tally::default(),
            round: 0,
            storm,
        })
    }

    /// Stops the helper threads and hands the runtime back.
    pub fn into_runtime(self) -> Runtime {
        self.workers.stop();
        Arc::try_unwrap(self.rt).unwrap_or_else(|_| panic!("runtime still shared"))
    }

    fn one_shot(&mut self) -> impl FnOnce() -> OneShot + Send + 'static {
        self.round += 1;
        let (notify, stop_itself, tally) =
            (self.terminator, self.round % 2 == 0, self.tally.clone());
        move || OneShot {
            notify,
            stop_itself,
            tally,
        }
    }

    fn check_once(&self, reason: &ExitReason) -> Result<(), String> {
        let (hooks, drops) = self.tally.take();
        if !matches!(reason, ExitReason::Normal | ExitReason::Shutdown) {
            return Err(format!("unexpected exit reason {reason}"));
        }
        if (hooks, drops) != (1, 1) {
            return Err(format!(
                "terminate hook ran {hooks}×, state dropped {drops}× (want 1, 1)"
            ));
        }
        Ok(())
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Latch, path 1 (libprocess `ProcessManager::resume`): a one-shot process
/// on shard A is waited on by an outside thread while shard B terminates it
/// the moment it becomes idle.
pub fn latch_outside(fx: &mut Fixture) -> Result<(), String> {
    let make = fx.one_shot();
    let p = fx.rt.spawn_on(fx.a, make).map_err(err)?;
    let watch = fx.rt.watch(p.pid()).map_err(err)?;
    fx.rt.tell(&p, Go::Go).map_err(err)?;
    let reason = watch.wait().map_err(err)?;
    fx.check_once(&reason)
}

/// Latch, path 2: the same, but the waiter is a process on shard A itself.
pub fn latch_on_shard(fx: &mut Fixture) -> Result<(), String> {
    let make = fx.one_shot();
    let waiter = fx.waiter;
    let outcome = fx
        .rt
        .block_on(fx.a, move || async move {
            let p = corelet::spawn(make())?;
            let registered = waiter.ask(|r| WaitMsg::WaitFor(p.pid(), r)).await;
            registered.map_err(|e| Error::Panicked(e.to_string()))?;
            p.tell(Go::Go).map_err(|_| Error::NoProcess(p.pid()))?;
            let outcome = waiter.ask(WaitMsg::Outcome).await;
            outcome
                .map_err(|e| Error::Panicked(e.to_string()))?
                .ok_or(Error::NotInRuntime)?
        })
        .map_err(err)?;
    let reason = outcome.map_err(err)?;
    fx.check_once(&reason)
}

/// Donate (libprocess): a handler spawns a child on its own shard,
/// terminates it and waits for it, all without leaving its shard.
pub fn donate(fx: &mut Fixture) -> Result<(), String> {
    let make = fx.one_shot();
    let reason = fx
        .rt
        .block_on(fx.b, move || async move {
            let child = corelet::spawn(make())?;
            let wait = corelet::wait(child.pid());
            corelet::terminate(child.pid())?;
            wait.await
        })
        .map_err(err)?
        .map_err(err)?;
    if reason != ExitReason::Shutdown {
        return Err(format!("donated child exited with {reason}, want shutdown"));
    }
    fx.check_once(&reason)
}

/// A process that can carry a name and counts the messages it gets.
#[derive(Default)]
pub struct Named {
    hits: u64,
}

/// Messages of [`Named`].
pub enum NamedMsg {
    /// Count one.
    Hit,
    /// How many so far?
    Hits(ReplyTo<u64>),
}

impl Process for Named {
    type Msg = NamedMsg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: NamedMsg) -> HandlerResult {
        match msg {
            NamedMsg::Hit => self.hits += 1,
            NamedMsg::Hits(reply) => reply.send(self.hits),
        }
        Ok(())
    }
}

/// Links to and monitors whatever it is told, trapping exits, and records
/// every exit signal and `Down` it receives.
#[derive(Default)]
pub struct Observer {
    exits: Vec<(Pid, ExitReason)>,
    downs: Vec<(Pid, ExitReason)>,
}

/// What an [`Observer`] saw: (exit signals, downs), as (pid, reason).
pub type Seen = (Vec<(Pid, ExitReason)>, Vec<(Pid, ExitReason)>);

/// Messages of [`Observer`]; each answers once its request is sent.
pub enum ObserverMsg {
    /// Link to the pid.
    Link(Pid, ReplyTo<()>),
    /// Monitor the pid.
    Monitor(Pid, ReplyTo<()>),
    /// Hand over (and forget) what was seen.
    Seen(ReplyTo<Seen>),
}

impl Process for Observer {
    type Msg = ObserverMsg;
    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        ctx.trap_exits(true);
        Ok(())
    }
    async fn handle(&mut self, ctx: &mut Context<Self>, msg: ObserverMsg) -> HandlerResult {
        match msg {
            ObserverMsg::Link(pid, done) => {
                ctx.link(pid);
                done.send(());
            }
            ObserverMsg::Monitor(pid, done) => {
                ctx.monitor(pid);
                done.send(());
            }
            ObserverMsg::Seen(reply) => reply.send((
                std::mem::take(&mut self.exits),
                std::mem::take(&mut self.downs),
            )),
        }
        Ok(())
    }
    async fn handle_exit(
        &mut self,
        _ctx: &mut Context<Self>,
        from: Pid,
        reason: ExitReason,
    ) -> HandlerResult {
        self.exits.push((from, reason));
        Ok(())
    }
    async fn handle_down(
        &mut self,
        _ctx: &mut Context<Self>,
        down: corelet::Down,
    ) -> HandlerResult {
        self.downs.push((down.pid, down.reason));
        Ok(())
    }
}

const NAME: &str = "seed-races/aba";

/// Name ABA (libprocess garbage collector): a named process is terminated
/// and the name re-registered by a new incarnation at once, while messages,
/// links, monitors and a terminate addressed to the old one are still in
/// flight. The new incarnation must be untouched.
pub fn name_aba(fx: &mut Fixture) -> Result<(), String> {
    let (a, observer) = (fx.a, fx.observer);
    fx.rt
        .block_on(
            fx.b,
            move || async move { name_aba_on_b(a, observer).await },
        )
        .map_err(err)?
}

async fn name_aba_on_b(a: ShardId, observer: Addr<Observer>) -> Result<(), String> {
    let old = corelet::spawn_on(a, Named::default).await.map_err(err)?;
    corelet::register(NAME, old.pid()).await.map_err(err)?;
    let watch = |pid: Pid| async move {
        observer
            .ask(|r| ObserverMsg::Link(pid, r))
            .await
            .map_err(err)?;
        observer
            .ask(|r| ObserverMsg::Monitor(pid, r))
            .await
            .map_err(err)
    };
    watch(old.pid()).await?;
    for _ in 0..4 {
        let _ = old.tell(NamedMsg::Hit);
    }
    let gone = corelet::wait(old.pid());
    corelet::terminate(old.pid()).map_err(err)?;
    // In flight while the old incarnation dies.
    for _ in 0..4 {
        let _ = old.tell(NamedMsg::Hit);
    }
    watch(old.pid()).await?;
    gone.await.map_err(err)?;
    // Re-register at once: the old holder's release may still be travelling.
    let new = corelet::spawn_on(a, Named::default).await.map_err(err)?;
    corelet::register(NAME, new.pid())
        .await
        .map_err(|e| format!("re-registering the name failed: {e}"))?;
    // Stale traffic after the new incarnation holds the name.
    for _ in 0..4 {
        let _ = old.tell(NamedMsg::Hit);
    }
    let _ = corelet::terminate(old.pid());
    watch(old.pid()).await?;
    // Everything above went B → A before this ask, so it has all arrived.
    let hits = new.ask(NamedMsg::Hits).await.map_err(err)?;
    if hits != 0 {
        return Err(format!(
            "new incarnation received {hits} messages meant for the old one"
        ));
    }
    let holder = corelet::whereis(NAME).await.map_err(err)?;
    if holder != Some(new.pid()) {
        return Err(format!("name held by {holder:?}, want {}", new.pid()));
    }
    let (exits, downs) = observer.ask(ObserverMsg::Seen).await.map_err(err)?;
    if let Some((pid, _)) = exits
        .iter()
        .chain(&downs)
        .find(|(pid, _)| *pid != old.pid())
    {
        return Err(format!("observer heard of {pid}, which it never watched"));
    }
    if downs.len() != 3 {
        return Err(format!(
            "{} downs for 3 monitors of the old incarnation",
            downs.len()
        ));
    }
    let done = corelet::wait(new.pid());
    corelet::terminate(new.pid()).map_err(err)?;
    match done.await.map_err(err)? {
        ExitReason::Shutdown => Ok(()),
        other => Err(format!("new incarnation exited with {other}")),
    }
}

/// A process of the storm: bounces pings to its peers until told to stop.
pub struct Chatter {
    peers: Arc<Vec<Addr<Chatter>>>,
    next: usize,
}

/// Message of [`Chatter`]: a ping with hops left.
pub struct Ping(pub u32);

impl Process for Chatter {
    type Msg = Ping;
    async fn handle(&mut self, _ctx: &mut Context<Self>, Ping(hops): Ping) -> HandlerResult {
        if hops > 0 && !self.peers.is_empty() {
            self.next = (self.next + 7) % self.peers.len();
            // The peer may be gone already: that is the storm.
            let _ = self.peers[self.next].tell(Ping(hops - 1));
        }
        Ok(())
    }
}

/// Terminate storm: `fx.storm` processes across every shard message each
/// other while they are terminated from every shard and from outside
/// threads at once. Every waiter gets exactly one exit reason and no
/// process is left behind.
pub fn storm(fx: &mut Fixture) -> Result<(), String> {
    let shards = fx.rt.shard_count();
    let per_shard = fx.storm.div_ceil(shards);
    // One trip into the runtime spawns them all, on every shard.
    let addrs = fx
        .rt
        .block_on(ShardId(0), move || async move {
            let mut addrs = Vec::with_capacity(per_shard * shards);
            for s in 0..shards {
                for _ in 0..per_shard {
                    let chatter = || Chatter {
                        peers: Arc::new(Vec::new()),
                        next: 0,
                    };
                    addrs.push(corelet::spawn_on(ShardId(s as u16), chatter).await?);
                }
            }
            Ok::<_, Error>(addrs)
        })
        .map_err(err)?
        .map_err(err)?;
    let watches = addrs
        .iter()
        .map(|a| fx.rt.watch(a.pid()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let peers = Arc::new(addrs.clone());
    let pids: Arc<Vec<Pid>> = Arc::new(addrs.iter().map(|a| a.pid()).collect());
    let jobs: Vec<Job> = (0..shards)
        .map(|s| {
            let (peers, pids) = (peers.clone(), pids.clone());
            // Every shard: start the chatter, then terminate everybody.
            let rt = fx.rt.clone();
            Box::new(move || {
                let _ = rt.block_on(ShardId(s as u16), move || async move {
                    for (i, p) in peers.iter().enumerate() {
                        if p.pid().shard().index() == s {
                            let _ = p.tell(Ping(8 + (i % 5) as u32));
                        }
                    }
                    for pid in pids.iter().rev() {
                        let _ = corelet::terminate(*pid);
                    }
                });
            }) as Job
        })
        .chain(std::iter::once({
            let rt = fx.rt.clone();
            let pids = pids.clone();
            Box::new(move || {
                // And an outside thread, terminating every 32nd process (each call
                // blocks until the owning shard answers).
                for pid in pids.iter().step_by(32) {
                    let _ = rt.terminate(*pid);
                }
            }) as Job
        }))
        .collect();
    fx.workers.run_all(jobs);
    for (watch, addr) in watches.into_iter().zip(&addrs) {
        match watch.wait() {
            Ok(ExitReason::Shutdown) => {}
            other => {
                return Err(format!(
                    "{}: waiter got {other:?}, want Ok(Shutdown)",
                    addr.pid()
                ))
            }
        }
    }
    let alive: u64 = fx.rt.stats().map_err(err)?.iter().map(|s| s.alive).sum();
    if alive != FIXTURE_PROCESSES {
        return Err(format!(
            "{alive} processes alive after the storm, want {FIXTURE_PROCESSES}"
        ));
    }
    Ok(())
}

type Job = Box<dyn FnOnce() + Send>;

/// Threads kept for the whole run, so that a storm costs no thread
/// creation: each runs one job per storm, all at once.
pub struct Workers {
    senders: Vec<std::sync::mpsc::Sender<(Job, std::sync::mpsc::Sender<()>)>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    fn new(n: usize) -> Self {
        let (senders, threads) = (0..n)
            .map(|_| {
                let (tx, rx) = std::sync::mpsc::channel::<(Job, std::sync::mpsc::Sender<()>)>();
                let thread = std::thread::spawn(move || {
                    while let Ok((job, done)) = rx.recv() {
                        job();
                        let _ = done.send(());
                    }
                });
                (tx, thread)
            })
            .unzip();
        Self { senders, threads }
    }

    fn run_all(&self, jobs: Vec<Job>) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let n = jobs.len();
        for (i, job) in jobs.into_iter().enumerate() {
            self.senders[i % self.senders.len()]
                .send((job, done_tx.clone()))
                .expect("worker alive");
        }
        for _ in 0..n {
            done_rx.recv().expect("worker finished its job");
        }
    }

    fn stop(self) {
        drop(self.senders);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Processes the fixture itself keeps alive (terminator, waiter, observer).
const FIXTURE_PROCESSES: u64 = 3;

/// A scenario: `Err` describes what went wrong.
pub type Scenario = fn(&mut Fixture) -> Result<(), String>;

/// Every scenario, by name.
pub const SCENARIOS: [(&str, Scenario); 5] = [
    ("latch, path 1 (outside waiter)", latch_outside),
    ("latch, path 2 (waiter on the shard)", latch_on_shard),
    ("name ABA", name_aba),
    ("donate", donate),
    ("terminate storm", storm),
];
