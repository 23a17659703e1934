//! The runtime: building, shard placement, `block_on`, shutdown (with its
//! grace period) and shard-thread panics.

use corelet::{
    AskError, Context, Error, ExitReason, HandlerResult, Pid, Process, ReplyTo, Runtime, SendError,
    ShardId,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::ThreadId;
use std::time::Duration;

/// Where a process runs, as seen from inside its handler.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    shard: Option<ShardId>,
    shard_count: Option<usize>,
    self_pid: Option<Pid>,
    thread: ThreadId,
}

fn here() -> Place {
    Place {
        shard: corelet::current_shard(),
        shard_count: corelet::shard_count(),
        self_pid: corelet::self_pid(),
        thread: std::thread::current().id(),
    }
}

/// Counts terminate hooks and drops; can sleep forever in a handler or
/// make its shard's executor panic.
struct Worker {
    hooks: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

enum Msg {
    Where(ReplyTo<Place>),
    /// Tells the sender, then sleeps "forever" inside the handler.
    SleepForever(mpsc::Sender<()>),
    /// Spawns a task on the shard's executor that panics when it next runs.
    PanicTheShard,
}

impl Process for Worker {
    type Msg = Msg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        match msg {
            Msg::Where(reply) => reply.send(here()),
            Msg::SleepForever(entered) => {
                entered.send(()).unwrap();
                glommio::timer::sleep(Duration::from_secs(24 * 3600)).await;
            }
            Msg::PanicTheShard => {
                // glommio runs a new task right away when it can; the yield
                // makes the panic happen on a later poll, from the
                // executor's own run loop, outside any process.
                glommio::spawn_local(async {
                    futures_lite::future::yield_now().await;
                    panic!("boom");
                })
                .detach();
            }
        }
        Ok(())
    }

    async fn terminate(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        self.hooks.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Default)]
struct Counts {
    hooks: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl Counts {
    fn worker(&self) -> impl FnOnce() -> Worker + Send + 'static {
        let (hooks, drops) = (self.hooks.clone(), self.drops.clone());
        move || Worker { hooks, drops }
    }
    fn get(&self) -> (usize, usize) {
        (
            self.hooks.load(Ordering::SeqCst),
            self.drops.load(Ordering::SeqCst),
        )
    }
}

#[test]
fn handles_are_plain_data_and_the_runtime_is_shared_by_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Runtime>();
    send_sync::<Pid>();
    send_sync::<corelet::Addr<Worker>>();
    fn send<T: Send>() {}
    send::<corelet::ExitWatch>();
    send::<ReplyTo<Place>>();

    // `&Runtime` from several threads at once.
    let rt = Runtime::builder().shards(4).pin(false).build().unwrap();
    let counts = Counts::default();
    std::thread::scope(|scope| {
        for t in 0..4u16 {
            let (rt, counts) = (&rt, &counts);
            scope.spawn(move || {
                for _ in 0..25 {
                    let a = rt.spawn_on(ShardId(t), counts.worker()).unwrap();
                    assert_eq!(rt.ask(&a, Msg::Where).unwrap().shard, Some(ShardId(t)));
                    let watch = rt.watch(a.pid()).unwrap();
                    rt.terminate(a.pid()).unwrap();
                    assert_eq!(watch.wait(), Ok(ExitReason::Shutdown));
                }
            });
        }
    });
    assert_eq!(counts.get(), (100, 100));
}

#[test]
fn building_with_zero_shards_fails() {
    assert!(matches!(
        Runtime::builder().shards(0).pin(false).build(),
        Err(Error::Build(_))
    ));
    assert!(matches!(
        Runtime::builder().shards(0).build(),
        Err(Error::Build(_))
    ));
    assert!(matches!(
        Runtime::builder()
            .shards(u16::MAX as usize + 1)
            .pin(false)
            .build(),
        Err(Error::Build(_))
    ));
}

#[test]
fn unknown_shards_are_refused() {
    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    assert_eq!(rt.shard_count(), 2);
    assert_eq!(
        rt.block_on(ShardId(2), || async { 1 }),
        Err(Error::UnknownShard(ShardId(2)))
    );
    let counts = Counts::default();
    assert_eq!(
        rt.spawn_on(ShardId(2), counts.worker()).map(|a| a.pid()),
        Err(Error::UnknownShard(ShardId(2)))
    );
    let worker = counts.worker();
    let outcome = rt
        .block_on(ShardId(1), move || async move {
            corelet::spawn_on(ShardId(9), worker).await.map(|a| a.pid())
        })
        .unwrap();
    assert_eq!(outcome, Err(Error::UnknownShard(ShardId(9))));
    // Nothing was spawned; the refused factories were dropped unrun.
    assert_eq!(counts.get(), (0, 0));
    for s in rt.stats().unwrap() {
        assert_eq!(s.spawned, 0);
    }
}

#[test]
fn shard_side_calls_need_a_shard_thread() {
    let counts = Counts::default();
    assert_eq!(
        corelet::spawn(counts.worker()()).map(|a| a.pid()),
        Err(Error::NotInRuntime)
    );
    let pid = Pid::from_parts(ShardId(0), 0, 0);
    assert_eq!(corelet::terminate(pid), Err(Error::NotInRuntime));
    assert_eq!(corelet::kill(pid), Err(Error::NotInRuntime));
    assert_eq!(
        futures_lite::future::block_on(corelet::wait(pid)),
        Err(Error::NotInRuntime)
    );
    assert_eq!(corelet::current_shard(), None);
    assert_eq!(corelet::self_pid(), None);
    assert_eq!(corelet::local_stats(), None);
}

#[test]
fn eight_unpinned_shards_each_run_processes_on_their_own_thread() {
    const SHARDS: usize = 8;
    let rt = Runtime::builder()
        .shards(SHARDS)
        .pin(false)
        .build()
        .unwrap();
    assert_eq!(rt.shard_count(), SHARDS);
    let counts = Counts::default();
    let mut threads = HashSet::new();
    for i in 0..SHARDS {
        let shard = ShardId(i as u16);
        let a = rt.spawn_on(shard, counts.worker()).unwrap();
        assert_eq!(a.pid().shard(), shard);
        let place = rt.ask(&a, Msg::Where).unwrap();
        assert_eq!(place.shard, Some(shard));
        assert_eq!(place.shard_count, Some(SHARDS));
        assert_eq!(place.self_pid, Some(a.pid()));
        // A block_on task runs on the same thread, as no process.
        let task = rt.block_on(shard, || async { here() }).unwrap();
        assert_eq!(task.shard, Some(shard));
        assert_eq!(task.self_pid, None);
        assert_eq!(task.thread, place.thread);
        assert_ne!(place.thread, std::thread::current().id());
        threads.insert(place.thread);
    }
    assert_eq!(threads.len(), SHARDS, "one thread per shard");
    let stats = rt.stats().unwrap();
    assert_eq!(stats.len(), SHARDS);
    for (i, s) in stats.iter().enumerate() {
        assert_eq!(s.shard as usize, i);
        assert_eq!(s.alive, 1);
    }
}

#[test]
fn shutdown_terminates_every_process() {
    const SHARDS: usize = 8;
    const PER_SHARD: usize = 8;
    let mut rt = Runtime::builder()
        .shards(SHARDS)
        .pin(false)
        .build()
        .unwrap();
    let counts = Counts::default();
    let mut watches = Vec::new();
    for i in 0..SHARDS * PER_SHARD {
        let a = rt
            .spawn_on(ShardId((i % SHARDS) as u16), counts.worker())
            .unwrap();
        watches.push(rt.watch(a.pid()).unwrap());
    }
    assert_eq!(rt.shutdown(), Ok(()));
    assert_eq!(counts.get(), (SHARDS * PER_SHARD, SHARDS * PER_SHARD));
    for w in watches {
        assert_eq!(w.wait(), Ok(ExitReason::Shutdown));
    }
    assert_eq!(rt.shutdown(), Ok(()), "idempotent");
}

#[test]
fn calls_after_shutdown_fail_instead_of_hanging() {
    let mut rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    let counts = Counts::default();
    let a = rt.spawn_on(ShardId(1), counts.worker()).unwrap();
    rt.shutdown().unwrap();
    assert_eq!(counts.get(), (1, 1));
    assert_eq!(
        rt.block_on(ShardId(0), || async { 1 }),
        Err(Error::ShuttingDown)
    );
    assert!(rt.spawn_on(ShardId(1), counts.worker()).is_err());
    assert!(rt.ask(&a, Msg::Where).is_err());
    assert!(rt.terminate(a.pid()).is_err());
    assert!(rt.wait(a.pid()).is_err());
    assert!(rt.stats().is_err());
    assert!(matches!(
        rt.tell(&a, Msg::PanicTheShard),
        Err(SendError::ShuttingDown(_))
    ));
    assert_eq!(counts.get(), (1, 1), "nothing ran, nothing was spawned");
}

#[test]
fn shutdown_kills_a_process_that_outlives_the_grace_period() {
    let mut rt = Runtime::builder()
        .shards(2)
        .pin(false)
        .shutdown_grace(Duration::from_millis(50))
        .build()
        .unwrap();
    let sleeper_counts = Counts::default();
    let sleeper = rt.spawn_on(ShardId(1), sleeper_counts.worker()).unwrap();
    let other_counts = Counts::default();
    let others: Vec<_> = (0..4)
        .map(|i| rt.spawn_on(ShardId(i % 2), other_counts.worker()).unwrap())
        .collect();
    let (entered_tx, entered) = mpsc::channel();
    rt.tell(&sleeper, Msg::SleepForever(entered_tx)).unwrap();
    entered.recv().unwrap();
    let sleeper_watch = rt.watch(sleeper.pid()).unwrap();
    let other_watches: Vec<_> = others.iter().map(|a| rt.watch(a.pid()).unwrap()).collect();

    assert_eq!(rt.shutdown(), Ok(()));
    assert_eq!(sleeper_watch.wait(), Ok(ExitReason::Killed));
    assert_eq!(
        sleeper_counts.get(),
        (0, 1),
        "killed: no hook, state dropped"
    );
    for w in other_watches {
        assert_eq!(w.wait(), Ok(ExitReason::Shutdown));
    }
    assert_eq!(other_counts.get(), (4, 4));
}

/// Waits (from a shard) for a pid and reports the outcome on a channel.
struct Watcher;

enum WatcherMsg {
    /// Registers a wait for `target`, makes sure the registration reached
    /// the target's shard (a round trip behind it), says so on `ready`,
    /// then reports the wait's outcome on `outcome`.
    Watch {
        target: corelet::Addr<Worker>,
        ready: mpsc::Sender<()>,
        outcome: mpsc::Sender<Result<ExitReason, Error>>,
    },
}

impl Process for Watcher {
    type Msg = WatcherMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: WatcherMsg) -> HandlerResult {
        let WatcherMsg::Watch {
            target,
            ready,
            outcome,
        } = msg;
        let exited = corelet::wait(target.pid());
        target.ask(Msg::Where).await.unwrap();
        ready.send(()).unwrap();
        outcome.send(exited.await).unwrap();
        Ok(())
    }
}

#[test]
fn a_panicking_shard_is_reported_and_the_others_keep_working() {
    const SHARDS: usize = 4;
    const DOOMED: ShardId = ShardId(1);
    let mut rt = Runtime::builder()
        .shards(SHARDS)
        .pin(false)
        .build()
        .unwrap();
    let counts = Counts::default();
    let doomed = rt.spawn_on(DOOMED, counts.worker()).unwrap();
    let healthy: Vec<_> = [0, 2, 3]
        .map(|s| rt.spawn_on(ShardId(s), counts.worker()).unwrap())
        .to_vec();

    // Waiters for the doomed process: an outside thread and a process on
    // another shard, both registered before the panic.
    let watch = rt.watch(doomed.pid()).unwrap();
    let watcher = rt.spawn_on(ShardId(2), || Watcher).unwrap();
    let (ready_tx, ready) = mpsc::channel();
    let (outcome_tx, outcome) = mpsc::channel();
    rt.tell(
        &watcher,
        WatcherMsg::Watch {
            target: doomed,
            ready: ready_tx,
            outcome: outcome_tx,
        },
    )
    .unwrap();
    ready.recv().unwrap();

    rt.tell(&doomed, Msg::PanicTheShard).unwrap();

    // Nobody waits forever for the dead shard's processes.
    assert_eq!(watch.wait(), Err(Error::ShuttingDown));
    assert_eq!(outcome.recv().unwrap(), Err(Error::ShuttingDown));
    assert_eq!(rt.ask(&doomed, Msg::Where), Err(AskError::NoReply));
    assert!(matches!(
        rt.tell(&doomed, Msg::PanicTheShard),
        Err(SendError::ShuttingDown(_))
    ));
    assert_eq!(
        rt.block_on(DOOMED, || async { 1 }),
        Err(Error::ShuttingDown)
    );
    assert!(rt.spawn_on(DOOMED, counts.worker()).is_err());
    rt.block_on(ShardId(0), move || async move {
        assert!(doomed.ask(Msg::Where).await.is_err());
        assert!(matches!(
            doomed.tell(Msg::PanicTheShard),
            Err(SendError::NoProcess(_))
        ));
        assert!(corelet::wait(doomed.pid()).await.is_err());
    })
    .unwrap();

    // The other shards work, between themselves too.
    for a in &healthy {
        assert_eq!(rt.ask(a, Msg::Where).unwrap().shard, Some(a.pid().shard()));
    }
    let (h0, h3) = (healthy[0], healthy[2]);
    let place = rt
        .block_on(ShardId(2), move || async move {
            (
                h0.ask(Msg::Where).await.unwrap(),
                h3.ask(Msg::Where).await.unwrap(),
            )
        })
        .unwrap();
    assert_eq!(
        (place.0.shard, place.1.shard),
        (Some(ShardId(0)), Some(ShardId(3)))
    );

    let healthy_watches: Vec<_> = healthy.iter().map(|a| rt.watch(a.pid()).unwrap()).collect();
    assert_eq!(
        rt.shutdown(),
        Err(Error::ShardPanicked(DOOMED, "boom".into()))
    );
    for w in healthy_watches {
        assert_eq!(w.wait(), Ok(ExitReason::Shutdown));
    }

    // The pool replaces the dead thread: a new runtime of the same size
    // works on every shard.
    let rt = Runtime::builder()
        .shards(SHARDS)
        .pin(false)
        .build()
        .unwrap();
    for s in 0..SHARDS {
        let a = rt.spawn_on(ShardId(s as u16), counts.worker()).unwrap();
        assert_eq!(
            rt.ask(&a, Msg::Where).unwrap().shard,
            Some(ShardId(s as u16))
        );
    }
}

/// `Builder::cores` pins shard `i` to `cores[i % len]`; two runtimes on
/// disjoint CPU sets run side by side while a host thread calls into both.
mod cores {
    use corelet::{Context, HandlerResult, Process, ReplyTo, Runtime, ShardId};

    /// Answers with the CPUs its thread may run on.
    struct Where;
    impl Process for Where {
        type Msg = ReplyTo<Vec<usize>>;
        async fn handle(&mut self, _ctx: &mut Context<Self>, reply: Self::Msg) -> HandlerResult {
            let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))?;
            let cpus = (0..nix::sched::CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .collect();
            reply.send(cpus);
            Ok(())
        }
    }

    fn placement(rt: &Runtime) -> Vec<Vec<usize>> {
        (0..rt.shard_count())
            .map(|i| {
                let w = rt.spawn_on(ShardId(i as u16), || Where).unwrap();
                rt.ask(&w, |r| r).unwrap()
            })
            .collect()
    }

    #[test]
    fn shards_run_on_the_chosen_cpus() {
        let cpus = core_affinity::get_core_ids().unwrap();
        let last = cpus.last().unwrap().id;
        let rt = Runtime::builder().cores([last]).shards(3).build().unwrap();
        assert_eq!(placement(&rt), vec![vec![last]; 3]);
        assert!(Runtime::builder().cores([usize::MAX]).build().is_err());
        assert!(Runtime::builder().cores(Vec::new()).build().is_err());
    }

    #[test]
    fn two_runtimes_on_disjoint_cores_and_a_host_thread_calling_in() {
        let cpus = core_affinity::get_core_ids().unwrap();
        let a_cpu = cpus[0].id;
        let b_cpu = cpus[cpus.len() - 1].id;
        let a = Runtime::builder()
            .cores([a_cpu])
            .shards(2)
            .name("a")
            .build()
            .unwrap();
        let b = Runtime::builder()
            .cores([b_cpu])
            .shards(2)
            .name("b")
            .build()
            .unwrap();
        assert_eq!(placement(&a), vec![vec![a_cpu]; 2]);
        assert_eq!(placement(&b), vec![vec![b_cpu]; 2]);
        // The host thread calls into both while they serve each other's
        // callers: block_on on one, asks on the other, from two threads.
        std::thread::scope(|s| {
            let ta = s.spawn(|| {
                (0..200u64)
                    .map(|i| {
                        a.block_on(ShardId((i % 2) as u16), move || async move { i * 2 })
                            .unwrap()
                    })
                    .sum::<u64>()
            });
            let w = b.spawn_on(ShardId(1), || Where).unwrap();
            let asked: usize = (0..200).map(|_| b.ask(&w, |r| r).unwrap().len()).sum();
            assert_eq!(asked, 200);
            assert_eq!(ta.join().unwrap(), (0..200u64).map(|i| i * 2).sum::<u64>());
        });
    }
}
