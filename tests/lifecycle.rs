//! Process lifecycle: terminate and kill from anywhere, on the owner, in
//! order (hook, drop, then notify); contained panics and errors; waiting
//! without donation; blocking calls refused on shard threads; a storm of
//! concurrent terminates.

use corelet::{
    AskError, Context, Error, ExitReason, ExitWatch, HandlerResult, Pid, Process, ReplyTo, Runtime,
    ShardId,
};
use futures_lite::future::yield_now;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// An event ("terminate(<reason>)", "drop") and the shard it ran on.
type Event = (String, Option<ShardId>);

/// What happened to a probe, recorded from its hooks and its `Drop`.
#[derive(Clone, Default)]
struct Log {
    terminated: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Log {
    fn terminated(&self) -> usize {
        self.terminated.load(Ordering::SeqCst)
    }
    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

#[derive(Clone, Default)]
enum Init {
    #[default]
    Ok,
    Panic,
    Fail,
}

/// A process that records its hooks and can be told to misbehave.
struct Probe {
    log: Log,
    init: Init,
    panic_in_terminate: bool,
    woke_up: Arc<AtomicUsize>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.log.dropped.fetch_add(1, Ordering::SeqCst);
        self.log
            .events
            .lock()
            .unwrap()
            .push(("drop".into(), corelet::current_shard()));
    }
}

enum Msg {
    Ping(ReplyTo<ShardId>),
    /// Tells `entered`, then sleeps for an hour inside the handler.
    Sleep(mpsc::Sender<()>),
    Panic(&'static str),
    /// Panics while holding a reply handle.
    PanicHolding(ReplyTo<()>),
    Fail(&'static str),
    Stop,
    WaitSelf(ReplyTo<Result<ExitReason, Error>>),
}

#[derive(Debug)]
struct Failure(&'static str);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Failure {}

impl Process for Probe {
    type Msg = Msg;

    fn init(&mut self, _ctx: &mut Context<Self>) -> HandlerResult {
        match self.init {
            Init::Ok => Ok(()),
            Init::Panic => panic!("init boom"),
            Init::Fail => Err(Box::new(Failure("init refused"))),
        }
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        match msg {
            Msg::Ping(reply) => reply.send(corelet::current_shard().unwrap()),
            Msg::Sleep(entered) => {
                entered.send(()).unwrap();
                glommio::timer::sleep(Duration::from_secs(3600)).await;
                self.woke_up.fetch_add(1, Ordering::SeqCst);
            }
            Msg::Panic(text) => panic!("{text}"),
            Msg::PanicHolding(_reply) => panic!("panic holding a reply"),
            Msg::Fail(text) => return Err(Box::new(Failure(text))),
            Msg::Stop => ctx.stop(),
            Msg::WaitSelf(reply) => reply.send(corelet::wait(ctx.pid()).await),
        }
        Ok(())
    }

    async fn terminate(&mut self, _ctx: &mut Context<Self>, reason: &ExitReason) {
        self.log.terminated.fetch_add(1, Ordering::SeqCst);
        self.log
            .events
            .lock()
            .unwrap()
            .push((format!("terminate({reason})"), corelet::current_shard()));
        if self.panic_in_terminate {
            panic!("terminate boom");
        }
    }
}

fn probe(log: &Log) -> Probe {
    Probe {
        log: log.clone(),
        init: Init::Ok,
        panic_in_terminate: false,
        woke_up: Arc::default(),
    }
}

/// A probe whose log nobody reads.
fn quiet() -> Probe {
    probe(&Log::default())
}

fn with_init(log: &Log, init: Init) -> Probe {
    let mut p = probe(log);
    p.init = init;
    p
}

fn sleeper(log: &Log, woke_up: &Arc<AtomicUsize>) -> Probe {
    let mut p = probe(log);
    p.woke_up = woke_up.clone();
    p
}

fn runtime(shards: usize) -> Runtime {
    Runtime::builder()
        .shards(shards)
        .pin(false)
        .build()
        .unwrap()
}

#[test]
fn terminate_from_outside_runs_hook_once_drops_state_then_notifies() {
    let rt = runtime(2);
    let log = Log::default();
    let l = log.clone();
    let a = rt.spawn_on(ShardId(1), move || probe(&l)).unwrap();
    let watch = rt.watch(a.pid()).unwrap();
    rt.terminate(a.pid()).unwrap();
    assert_eq!(watch.wait(), Ok(ExitReason::Shutdown));
    // By the time anybody learns of the exit, the hook has run and the
    // state is gone, both on the owning shard.
    assert_eq!(log.terminated(), 1);
    assert_eq!(log.dropped(), 1);
    assert_eq!(
        log.events(),
        [
            ("terminate(shutdown)".to_string(), Some(ShardId(1))),
            ("drop".to_string(), Some(ShardId(1))),
        ]
    );
    // A second terminate finds nobody; nothing runs twice.
    assert_eq!(rt.terminate(a.pid()), Err(Error::NoProcess(a.pid())));
    assert_eq!(rt.wait(a.pid()), Err(Error::NoProcess(a.pid())));
    assert_eq!(log.terminated(), 1);
    assert_eq!(log.dropped(), 1);
    assert_eq!(rt.stats().unwrap()[1].alive, 0);
}

thread_local! {
    /// A `wait` registered by the test on the shard's thread, polled from
    /// inside an [`Observer`]'s hooks.
    static EARLY: std::cell::RefCell<Option<corelet::Wait>> =
        const { std::cell::RefCell::new(None) };
}

/// Polls the stored `wait` once: whether the exit is already observable.
fn exit_already_visible() -> Option<bool> {
    EARLY.with(|early| {
        let mut early = early.borrow_mut();
        let wait = early.as_mut()?;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        Some(std::future::Future::poll(std::pin::Pin::new(wait), &mut cx).is_ready())
    })
}

/// A hook ("terminate" or "drop") and whether the exit was already
/// observable when it ran.
type Sighting = (&'static str, Option<bool>);

/// Records, from its terminate hook and its `Drop`, whether its exit was
/// already observable at that moment.
struct Observer(Arc<Mutex<Vec<Sighting>>>);

impl Drop for Observer {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap()
            .push(("drop", exit_already_visible()));
    }
}

impl Process for Observer {
    type Msg = ();

    async fn handle(&mut self, _ctx: &mut Context<Self>, _msg: ()) -> HandlerResult {
        Ok(())
    }

    async fn terminate(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        self.0
            .lock()
            .unwrap()
            .push(("terminate", exit_already_visible()));
    }
}

#[test]
fn nobody_observes_the_exit_before_hook_and_drop_have_run() {
    use std::future::Future;
    let rt = runtime(2);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    rt.block_on(ShardId(1), move || async move {
        let p = corelet::spawn(Observer(s)).unwrap();
        let exited = corelet::wait(p.pid());
        EARLY.with(|early| *early.borrow_mut() = Some(corelet::wait(p.pid())));
        corelet::terminate(p.pid()).unwrap();
        assert_eq!(exited.await, Ok(ExitReason::Shutdown));
        let early = EARLY.with(|early| early.borrow_mut().take()).unwrap();
        // And once it is observable, it is the right reason.
        let mut early = std::pin::pin!(early);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert_eq!(
            early.as_mut().poll(&mut cx),
            std::task::Poll::Ready(Ok(ExitReason::Shutdown))
        );
    })
    .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [("terminate", Some(false)), ("drop", Some(false))]
    );
}

#[test]
fn terminate_from_another_shard_runs_on_the_owner() {
    let rt = runtime(8);
    let log = Log::default();
    let l = log.clone();
    let a = rt.spawn_on(ShardId(5), move || probe(&l)).unwrap();
    let l = log.clone();
    rt.block_on(ShardId(2), move || async move {
        let exited = corelet::wait(a.pid());
        corelet::terminate(a.pid()).unwrap();
        assert_eq!(exited.await, Ok(ExitReason::Shutdown));
        assert_eq!((l.terminated(), l.dropped()), (1, 1));
        assert_eq!(corelet::wait(a.pid()).await, Err(Error::NoProcess(a.pid())));
    })
    .unwrap();
    assert_eq!(
        log.events(),
        [
            ("terminate(shutdown)".to_string(), Some(ShardId(5))),
            ("drop".to_string(), Some(ShardId(5))),
        ]
    );
}

#[test]
fn terminate_overtakes_queued_messages() {
    let rt = runtime(2);
    let log = Log::default();
    let l = log.clone();
    rt.block_on(ShardId(1), move || async move {
        let a = corelet::spawn(probe(&l)).unwrap();
        // Queued before the process gets to run: each would stop it with
        // `Normal`, but the terminate signal goes first.
        for _ in 0..10 {
            a.tell(Msg::Stop).unwrap();
        }
        let exited = corelet::wait(a.pid());
        corelet::terminate(a.pid()).unwrap();
        assert_eq!(exited.await, Ok(ExitReason::Shutdown));
    })
    .unwrap();
    assert_eq!((log.terminated(), log.dropped()), (1, 1));
    // The ten messages left in the mailbox are counted as dead letters.
    assert_eq!(rt.stats().unwrap()[1].dead_letters, 10);
}

#[test]
fn kill_interrupts_a_handler_sleeping_for_an_hour() {
    let rt = runtime(2);

    // From an outside thread.
    let log = Log::default();
    let woke_up = Arc::new(AtomicUsize::new(0));
    let (l, w) = (log.clone(), woke_up.clone());
    let a = rt.spawn_on(ShardId(1), move || sleeper(&l, &w)).unwrap();
    let (entered_tx, entered) = mpsc::channel();
    rt.tell(&a, Msg::Sleep(entered_tx)).unwrap();
    entered.recv().unwrap();
    let watch = rt.watch(a.pid()).unwrap();
    rt.kill(a.pid()).unwrap();
    assert_eq!(watch.wait(), Ok(ExitReason::Killed));
    assert_eq!(log.terminated(), 0, "kill skips the terminate hook");
    assert_eq!(log.dropped(), 1, "the state is dropped");
    assert_eq!(woke_up.load(Ordering::SeqCst), 0, "the sleep was cut short");
    assert_eq!(log.events(), [("drop".to_string(), Some(ShardId(1)))]);

    // From another shard, and while terminate is already pending (the
    // handler would otherwise finish first, an hour later).
    let log = Log::default();
    let (l, w) = (log.clone(), woke_up.clone());
    let b = rt.spawn_on(ShardId(1), move || sleeper(&l, &w)).unwrap();
    let (entered_tx, entered) = mpsc::channel();
    rt.tell(&b, Msg::Sleep(entered_tx)).unwrap();
    entered.recv().unwrap();
    rt.block_on(ShardId(0), move || async move {
        let exited = corelet::wait(b.pid());
        corelet::terminate(b.pid()).unwrap();
        corelet::kill(b.pid()).unwrap();
        assert_eq!(exited.await, Ok(ExitReason::Killed));
    })
    .unwrap();
    assert_eq!((log.terminated(), log.dropped()), (0, 1));
    assert_eq!(woke_up.load(Ordering::SeqCst), 0);

    // An idle process.
    let log = Log::default();
    let l = log.clone();
    let c = rt.spawn_on(ShardId(0), move || probe(&l)).unwrap();
    let watch = rt.watch(c.pid()).unwrap();
    rt.kill(c.pid()).unwrap();
    assert_eq!(watch.wait(), Ok(ExitReason::Killed));
    assert_eq!((log.terminated(), log.dropped()), (0, 1));
    for s in rt.stats().unwrap() {
        assert_eq!(s.alive, 0);
    }
}

#[test]
fn panics_are_contained_and_reported() {
    let rt = runtime(2);
    let neighbour = rt.spawn_on(ShardId(1), quiet).unwrap();

    // Panic in init: the spawn fails, the hook does not run, the state is
    // dropped once.
    let log = Log::default();
    let l = log.clone();
    let outcome = rt.spawn_on(ShardId(1), move || with_init(&l, Init::Panic));
    assert_eq!(
        outcome.map(|a| a.pid()),
        Err(Error::Init(ExitReason::Panicked("init boom".into())))
    );
    assert_eq!((log.terminated(), log.dropped()), (0, 1));
    // Panic in the factory that builds the state.
    let outcome = rt.spawn_on(ShardId(1), || -> Probe { panic!("factory boom") });
    assert_eq!(
        outcome.map(|a| a.pid()),
        Err(Error::Init(ExitReason::Panicked("factory boom".into())))
    );
    // Same through the shard-side spawn.
    let l = log.clone();
    let outcome = rt
        .block_on(ShardId(1), move || async move {
            corelet::spawn(with_init(&l, Init::Panic)).map(|a| a.pid())
        })
        .unwrap();
    assert_eq!(
        outcome,
        Err(Error::Init(ExitReason::Panicked("init boom".into())))
    );
    assert_eq!((log.terminated(), log.dropped()), (0, 2));

    // Panic in a handler: the process exits with the message, its hook
    // runs, the asker is told no reply is coming.
    let log = Log::default();
    let l = log.clone();
    let a = rt.spawn_on(ShardId(1), move || probe(&l)).unwrap();
    let watch = rt.watch(a.pid()).unwrap();
    rt.tell(&a, Msg::Panic("handler boom")).unwrap();
    assert_eq!(
        watch.wait(),
        Ok(ExitReason::Panicked("handler boom".into()))
    );
    assert_eq!((log.terminated(), log.dropped()), (1, 1));
    assert_eq!(log.events()[0].0, "terminate(panicked: handler boom)");
    let b = rt.spawn_on(ShardId(1), quiet).unwrap();
    let watch = rt.watch(b.pid()).unwrap();
    assert_eq!(rt.ask(&b, Msg::PanicHolding), Err(AskError::NoReply));
    assert_eq!(
        watch.wait(),
        Ok(ExitReason::Panicked("panic holding a reply".into()))
    );

    // Panic in the terminate hook.
    let log = Log::default();
    let l = log.clone();
    let c = rt
        .spawn_on(ShardId(1), move || {
            let mut p = probe(&l);
            p.panic_in_terminate = true;
            p
        })
        .unwrap();
    let watch = rt.watch(c.pid()).unwrap();
    rt.terminate(c.pid()).unwrap();
    assert_eq!(
        watch.wait(),
        Ok(ExitReason::Panicked("terminate boom".into()))
    );
    assert_eq!((log.terminated(), log.dropped()), (1, 1));

    // The shard and its other processes are unaffected.
    assert_eq!(rt.ask(&neighbour, Msg::Ping), Ok(ShardId(1)));
    rt.block_on(ShardId(0), move || async move {
        assert_eq!(neighbour.ask(Msg::Ping).await, Ok(ShardId(1)));
    })
    .unwrap();
    let stats = rt.stats().unwrap();
    assert_eq!(stats[1].alive, 1);
}

#[test]
fn errors_and_stop_give_their_reasons() {
    let rt = runtime(2);

    // `init` returning an error.
    let log = Log::default();
    let l = log.clone();
    let outcome = rt.spawn_on(ShardId(0), move || with_init(&l, Init::Fail));
    assert_eq!(
        outcome.map(|a| a.pid()),
        Err(Error::Init(ExitReason::Error("init refused".into())))
    );
    assert_eq!((log.terminated(), log.dropped()), (0, 1));

    // `handle` returning an error.
    let log = Log::default();
    let l = log.clone();
    let a = rt.spawn_on(ShardId(1), move || probe(&l)).unwrap();
    let watch = rt.watch(a.pid()).unwrap();
    rt.tell(&a, Msg::Fail("bad input")).unwrap();
    assert_eq!(watch.wait(), Ok(ExitReason::Error("bad input".into())));
    assert_eq!((log.terminated(), log.dropped()), (1, 1));
    assert_eq!(log.events()[0].0, "terminate(error: bad input)");

    // `ctx.stop()`.
    let log = Log::default();
    let l = log.clone();
    let b = rt.spawn_on(ShardId(1), move || probe(&l)).unwrap();
    let watch = rt.watch(b.pid()).unwrap();
    rt.tell(&b, Msg::Stop).unwrap();
    assert_eq!(watch.wait(), Ok(ExitReason::Normal));
    assert_eq!((log.terminated(), log.dropped()), (1, 1));
    assert!(ExitReason::Normal.is_normal() && ExitReason::Shutdown.is_normal());
    assert!(!ExitReason::Killed.is_normal());
}

// ---------------------------------------------------------------------------
// Waiting never donates the thread.

/// Spawns children on its own shard and waits for them inside handlers.
struct Parent;

enum ParentMsg {
    /// Spawn a child here, terminate it, wait for it; reply with the reason
    /// and the child's hook/drop counts at that moment.
    TerminateChild(ReplyTo<(Result<ExitReason, Error>, usize, usize)>),
    /// Spawn a child here and wait until it stops by itself, which needs
    /// this very shard to run it while we wait.
    AwaitChild(ReplyTo<Result<ExitReason, Error>>),
    /// The same with a child on another shard.
    AwaitRemoteChild(ShardId, ReplyTo<Result<ExitReason, Error>>),
    Ping(ReplyTo<()>),
}

impl Process for Parent {
    type Msg = ParentMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: ParentMsg) -> HandlerResult {
        match msg {
            ParentMsg::TerminateChild(reply) => {
                let log = Log::default();
                let child = corelet::spawn(probe(&log))?;
                assert_eq!(child.pid().shard(), corelet::current_shard().unwrap());
                for _ in 0..5 {
                    child.tell(Msg::Stop).unwrap();
                }
                let exited = corelet::wait(child.pid());
                corelet::terminate(child.pid())?;
                let reason = exited.await;
                reply.send((reason, log.terminated(), log.dropped()));
            }
            ParentMsg::AwaitChild(reply) => {
                let child = corelet::spawn(quiet())?;
                let exited = corelet::wait(child.pid());
                child.tell(Msg::Stop).unwrap();
                reply.send(exited.await);
            }
            ParentMsg::AwaitRemoteChild(shard, reply) => {
                let child = corelet::spawn_on(shard, quiet).await?;
                let exited = corelet::wait(child.pid());
                child.tell(Msg::Stop).unwrap();
                reply.send(exited.await);
            }
            ParentMsg::Ping(reply) => reply.send(()),
        }
        Ok(())
    }
}

#[test]
fn waiting_for_a_child_on_the_same_shard_does_not_deadlock() {
    let rt = runtime(2);
    let parent = rt.spawn_on(ShardId(0), || Parent).unwrap();
    for _ in 0..10 {
        assert_eq!(
            rt.ask(&parent, ParentMsg::TerminateChild),
            Ok((Ok(ExitReason::Shutdown), 1, 1))
        );
        assert_eq!(
            rt.ask(&parent, ParentMsg::AwaitChild),
            Ok(Ok(ExitReason::Normal))
        );
        assert_eq!(
            rt.ask(&parent, |r| ParentMsg::AwaitRemoteChild(ShardId(1), r)),
            Ok(Ok(ExitReason::Normal))
        );
    }
    assert_eq!(rt.ask(&parent, ParentMsg::Ping), Ok(()));
    let stats = rt.stats().unwrap();
    assert_eq!(
        stats[0].alive + stats[1].alive,
        1,
        "only the parent is left"
    );
}

#[test]
fn a_process_cannot_wait_for_itself() {
    let rt = runtime(2);
    let a = rt.spawn_on(ShardId(1), quiet).unwrap();
    assert_eq!(
        rt.ask(&a, Msg::WaitSelf),
        Ok(Err(Error::WaitOnSelf(a.pid())))
    );
    assert_eq!(rt.ask(&a, Msg::Ping), Ok(ShardId(1)), "still alive");
}

// ---------------------------------------------------------------------------
// Blocking calls on a shard thread.

/// What each blocking call returned on a shard thread.
#[derive(Debug)]
struct BlockingOutcomes {
    wait: Result<ExitReason, Error>,
    watch: Result<(), Error>,
    exit_watch: Result<ExitReason, Error>,
    block_on: Result<(), Error>,
    ask: Result<ShardId, AskError>,
    terminate: Result<(), Error>,
    kill: Result<(), Error>,
    spawn_on: Result<(), Error>,
    stats: Result<(), Error>,
}

fn blocking_calls(
    rt: Arc<Runtime>,
    victim: corelet::Addr<Probe>,
    watch: ExitWatch,
) -> BlockingOutcomes {
    let pid = victim.pid();
    let outcomes = BlockingOutcomes {
        wait: rt.wait(pid),
        watch: rt.watch(pid).map(drop),
        exit_watch: watch.wait(),
        block_on: rt.block_on(ShardId(1), || async {}),
        ask: rt.ask(&victim, Msg::Ping),
        terminate: rt.terminate(pid),
        kill: rt.kill(pid),
        spawn_on: rt.spawn_on(ShardId(1), quiet).map(drop),
        stats: rt.stats().map(drop),
    };
    // Not the last handle: the runtime must be shut down from outside.
    drop(rt);
    outcomes
}

fn assert_all_refused(o: &BlockingOutcomes, shard: ShardId) {
    let refused = Err(Error::BlockingOnShard(shard));
    assert_eq!(o.wait, Err(Error::BlockingOnShard(shard)), "{o:?}");
    assert_eq!(o.watch, refused, "{o:?}");
    assert_eq!(o.exit_watch, Err(Error::BlockingOnShard(shard)), "{o:?}");
    assert_eq!(o.block_on, refused, "{o:?}");
    assert!(matches!(o.ask, Err(AskError::Send(_))), "{o:?}");
    assert_eq!(o.terminate, refused, "{o:?}");
    assert_eq!(o.kill, refused, "{o:?}");
    assert_eq!(o.spawn_on, refused, "{o:?}");
    assert_eq!(o.stats, refused, "{o:?}");
}

/// Runs the blocking calls inside a handler.
struct Blocker;

type Check = (Arc<Runtime>, corelet::Addr<Probe>, ExitWatch);

enum BlockerMsg {
    Check(Check, mpsc::Sender<BlockingOutcomes>),
}

impl Process for Blocker {
    type Msg = BlockerMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: BlockerMsg) -> HandlerResult {
        let BlockerMsg::Check(args, done) = msg;
        let (rt, victim, watch) = args;
        done.send(blocking_calls(rt, victim, watch)).unwrap();
        Ok(())
    }
}

#[test]
fn blocking_calls_on_a_shard_thread_are_refused_not_deadlocked() {
    let rt = Arc::new(runtime(2));
    let victim = rt.spawn_on(ShardId(1), quiet).unwrap();

    // From a block_on task on shard 0 (same and other shard as the victim).
    for shard in [ShardId(0), ShardId(1)] {
        let watch = rt.watch(victim.pid()).unwrap();
        let rt2 = rt.clone();
        let outcomes = rt
            .block_on(
                shard,
                move || async move { blocking_calls(rt2, victim, watch) },
            )
            .unwrap();
        assert_all_refused(&outcomes, shard);
    }

    // From inside a process's handler.
    let blocker = rt.spawn_on(ShardId(1), || Blocker).unwrap();
    let (tx, rx) = mpsc::channel();
    let args = (rt.clone(), victim, rt.watch(victim.pid()).unwrap());
    rt.tell(&blocker, BlockerMsg::Check(args, tx)).unwrap();
    assert_all_refused(&rx.recv().unwrap(), ShardId(1));

    // None of those calls did anything to the victim.
    assert_eq!(rt.ask(&victim, Msg::Ping), Ok(ShardId(1)));
    let mut rt = Arc::try_unwrap(rt).expect("shards dropped their handles");
    let watch = rt.watch(victim.pid()).unwrap();
    rt.shutdown().unwrap();
    assert_eq!(watch.wait(), Ok(ExitReason::Shutdown));
}

// ---------------------------------------------------------------------------
// Many concurrent terminates.

/// A victim whose hook yields a few times, so that duplicate terminates
/// arrive while it is stopping.
struct Victim {
    id: usize,
    hooks: Arc<Vec<AtomicUsize>>,
    drops: Arc<Vec<AtomicUsize>>,
}

impl Drop for Victim {
    fn drop(&mut self) {
        self.drops[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

enum VictimMsg {
    Noise,
}

impl Process for Victim {
    type Msg = VictimMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: VictimMsg) -> HandlerResult {
        let VictimMsg::Noise = msg;
        yield_now().await;
        Ok(())
    }

    async fn terminate(&mut self, _ctx: &mut Context<Self>, reason: &ExitReason) {
        assert_eq!(*reason, ExitReason::Shutdown);
        for _ in 0..3 {
            yield_now().await;
        }
        self.hooks[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

/// Terminates a list of pids from a shard.
struct Killer;

enum KillerMsg {
    /// Replies (accepted, refused as NoProcess).
    Terminate(Vec<Pid>, ReplyTo<(usize, usize)>),
}

impl Process for Killer {
    type Msg = KillerMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: KillerMsg) -> HandlerResult {
        let KillerMsg::Terminate(pids, reply) = msg;
        let (mut ok, mut gone) = (0, 0);
        for (i, pid) in pids.into_iter().enumerate() {
            match corelet::terminate(pid) {
                Ok(()) => ok += 1,
                Err(Error::NoProcess(p)) if p == pid => gone += 1,
                Err(e) => panic!("terminate({pid}): {e}"),
            }
            if i % 16 == 0 {
                yield_now().await;
            }
        }
        reply.send((ok, gone));
        Ok(())
    }
}

#[test]
fn terminate_storm_from_threads_and_processes() {
    const SHARDS: usize = 8;
    const PER_SHARD: usize = 50;
    const N: usize = SHARDS * PER_SHARD;
    const THREADS: usize = 3;
    let rt = runtime(SHARDS);
    let hooks: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
    let drops: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());

    let victims: Vec<corelet::Addr<Victim>> = (0..N)
        .map(|id| {
            let (hooks, drops) = (hooks.clone(), drops.clone());
            rt.spawn_on(ShardId((id % SHARDS) as u16), move || Victim {
                id,
                hooks,
                drops,
            })
            .unwrap()
        })
        .collect();
    let pids: Vec<Pid> = victims.iter().map(|v| v.pid()).collect();
    // Two watches per victim, registered before any terminate.
    let watches: Vec<(ExitWatch, ExitWatch)> = pids
        .iter()
        .map(|&p| (rt.watch(p).unwrap(), rt.watch(p).unwrap()))
        .collect();
    let killers: Vec<corelet::Addr<Killer>> = (0..SHARDS)
        .map(|s| rt.spawn_on(ShardId(s as u16), || Killer).unwrap())
        .collect();

    std::thread::scope(|scope| {
        let rt = &rt;
        let pids = &pids;
        // Processes on every shard, each terminating every victim.
        for (k, killer) in killers.iter().enumerate() {
            let mut order = pids.clone();
            order.rotate_left(k * N / SHARDS);
            scope.spawn(move || {
                let (ok, gone) = rt.ask(killer, |r| KillerMsg::Terminate(order, r)).unwrap();
                assert_eq!(ok + gone, N);
            });
        }
        // Outside threads, each terminating every victim.
        for t in 0..THREADS {
            scope.spawn(move || {
                let mut order = pids.clone();
                if t % 2 == 1 {
                    order.reverse();
                }
                for pid in order {
                    match rt.terminate(pid) {
                        Ok(()) | Err(Error::NoProcess(_)) => {}
                        Err(e) => panic!("terminate({pid}): {e}"),
                    }
                }
            });
        }
        // Noise: messages racing with the terminates.
        scope.spawn(move || {
            for v in &victims {
                rt.tell(v, VictimMsg::Noise).unwrap();
            }
        });
    });

    for (i, (a, b)) in watches.into_iter().enumerate() {
        assert_eq!(a.wait(), Ok(ExitReason::Shutdown), "victim {i}");
        assert_eq!(b.wait(), Ok(ExitReason::Shutdown), "victim {i}");
    }
    for i in 0..N {
        assert_eq!(hooks[i].load(Ordering::SeqCst), 1, "hook of victim {i}");
        assert_eq!(drops[i].load(Ordering::SeqCst), 1, "drop of victim {i}");
    }
    for k in &killers {
        let watch = rt.watch(k.pid()).unwrap();
        rt.terminate(k.pid()).unwrap();
        assert_eq!(watch.wait(), Ok(ExitReason::Shutdown));
    }
    for s in rt.stats().unwrap() {
        assert_eq!(s.alive, 0, "{s:?}");
        assert_eq!(s.spawned, s.exited, "{s:?}");
    }
}

/// Fails, with its message as the error, when told to.
struct Failer;

impl Process for Failer {
    type Msg = &'static str;

    async fn handle(&mut self, _ctx: &mut Context<Self>, why: &'static str) -> HandlerResult {
        Err(why.into())
    }
}

/// The first exit waiter of a process is kept apart from the others (in
/// the process's header, the rest in its context lists): whichever kind of
/// waiter comes first, and whether or not it gives up, every waiter that
/// is still waiting hears the same reason.
#[test]
fn every_waiter_hears_the_exit_reason_whoever_came_first() {
    let rt = runtime(2);
    let boom = || ExitReason::Error("boom".into());

    // An outside thread's watch first; then three waiters on the shard,
    // the first of which gives up before the exit.
    let p = rt.spawn_on(ShardId(0), || Failer).unwrap();
    let watch = rt.watch(p.pid()).unwrap();
    let heard = rt
        .block_on(ShardId(0), move || async move {
            let gave_up = corelet::wait(p.pid());
            let (second, third) = (corelet::wait(p.pid()), corelet::wait(p.pid()));
            drop(gave_up);
            p.tell("boom").unwrap();
            (second.await, third.await)
        })
        .unwrap();
    assert_eq!(heard, (Ok(boom()), Ok(boom())));
    assert_eq!(watch.wait(), Ok(boom()));

    // A waiter on the process's own shard first, which gives up; then one
    // on another shard (registered through the ring) and one more here.
    let q = rt.spawn_on(ShardId(0), || Failer).unwrap();
    let out = Arc::new(Mutex::new(None));
    let o = out.clone();
    let kept = rt
        .block_on(ShardId(0), move || async move {
            let gave_up = corelet::wait(q.pid());
            let afar = corelet::spawn_on(ShardId(1), move || WaitFor(o))
                .await
                .unwrap();
            // Answered after its `wait` was sent, on the same ring: so the
            // registration has reached this shard when the answer has.
            afar.ask(|registered| (q.pid(), registered)).await.unwrap();
            let kept = corelet::wait(q.pid());
            drop(gave_up);
            q.tell("boom").unwrap();
            let kept = kept.await;
            assert_eq!(corelet::wait(afar.pid()).await, Ok(ExitReason::Normal));
            kept
        })
        .unwrap();
    assert_eq!(kept, Ok(boom()));
    assert_eq!(out.lock().unwrap().take(), Some(Ok(boom())));
}

/// Waits for the process it is told about, acknowledges that it is
/// waiting, stores the outcome and stops.
struct WaitFor(Arc<Mutex<Option<Result<ExitReason, Error>>>>);

impl Process for WaitFor {
    type Msg = (Pid, ReplyTo<()>);

    async fn handle(
        &mut self,
        ctx: &mut Context<Self>,
        (pid, registered): (Pid, ReplyTo<()>),
    ) -> HandlerResult {
        let exited = corelet::wait(pid);
        registered.send(());
        *self.0.lock().unwrap() = Some(exited.await);
        ctx.stop();
        Ok(())
    }
}
