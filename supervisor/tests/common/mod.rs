//! Shared test fixtures: a worker that can end every way and logs its
//! starts and stops, a log whose order is the causal order (one mutex),
//! and a recorder process that answers once the log satisfies a condition,
//! so that tests wait for events instead of sleeping.
#![allow(dead_code)]

use corelet_shard::{
    Addr, Context, ExitReason, HandlerResult, Pid, Process, ReplyTo, Runtime, ShardId,
};
use corelet_supervisor::{ChildSpec, ChildStatus, SupervisorRef};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn runtime(shards: usize) -> Runtime {
    Runtime::builder()
        .shards(shards)
        .pin(false)
        .build()
        .unwrap()
}

/// Something a worker did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// `init` ran for this incarnation.
    Start(String, Pid),
    /// The terminate hook ran (not for `Killed`).
    Stop(String, Pid, ExitReason),
}

type Condition = Box<dyn Fn(&[Ev]) -> bool + Send>;

/// Answers `WaitFor` once the log satisfies the condition.
pub struct Recorder {
    log: Arc<Mutex<Vec<Ev>>>,
    waiting: Vec<(Condition, ReplyTo<Vec<Ev>>)>,
}

pub enum RecMsg {
    Changed,
    WaitFor(Condition, ReplyTo<Vec<Ev>>),
}

impl Recorder {
    fn check(&mut self) {
        let log = self.log.lock().unwrap().clone();
        let mut i = 0;
        while i < self.waiting.len() {
            if (self.waiting[i].0)(&log) {
                let (_, reply) = self.waiting.swap_remove(i);
                reply.send(log.clone());
            } else {
                i += 1;
            }
        }
    }
}

impl Process for Recorder {
    type Msg = RecMsg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: RecMsg) -> HandlerResult {
        if let RecMsg::WaitFor(cond, reply) = msg {
            self.waiting.push((cond, reply));
        }
        self.check();
        Ok(())
    }
}

/// The log plus its recorder: cheap to clone into factories.
#[derive(Clone)]
pub struct Log {
    pub events: Arc<Mutex<Vec<Ev>>>,
    pub rec: Addr<Recorder>,
}

impl Log {
    /// Starts the recorder on the current shard.
    pub fn start() -> Log {
        let events = Arc::new(Mutex::new(Vec::new()));
        let rec = corelet_shard::spawn(Recorder {
            log: events.clone(),
            waiting: Vec::new(),
        })
        .unwrap();
        Log { events, rec }
    }

    pub fn push(&self, ev: Ev) {
        self.events.lock().unwrap().push(ev);
        let _ = self.rec.tell(RecMsg::Changed);
    }

    pub fn snapshot(&self) -> Vec<Ev> {
        self.events.lock().unwrap().clone()
    }

    /// Resolves with the log once `cond` holds (bounded: fails the test
    /// after a generous limit rather than hanging).
    pub async fn wait_for(&self, cond: impl Fn(&[Ev]) -> bool + Send + 'static) -> Vec<Ev> {
        let ask = self.rec.ask(|r| RecMsg::WaitFor(Box::new(cond), r));
        ask.timeout(LIMIT).await.expect("condition never held")
    }

    /// Waits for the `n`-th start of `id` and returns the pids of its
    /// starts so far.
    pub async fn starts(&self, id: &str, n: usize) -> Vec<Pid> {
        let id2 = id.to_owned();
        let log = self
            .wait_for(move |evs| starts_of(evs, &id2).len() >= n)
            .await;
        starts_of(&log, id)
    }

    pub fn stop_order(&self) -> Vec<String> {
        self.snapshot()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Stop(id, _, _) => Some(id),
                _ => None,
            })
            .collect()
    }

    pub fn start_order(&self) -> Vec<String> {
        self.snapshot()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Start(id, _) => Some(id),
                _ => None,
            })
            .collect()
    }
}

pub fn starts_of(evs: &[Ev], id: &str) -> Vec<Pid> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Start(i, pid) if i == id => Some(*pid),
            _ => None,
        })
        .collect()
}

/// A bound for things that must happen, so that a broken rule fails the
/// test instead of hanging it. Not a timing assertion.
pub const LIMIT: Duration = Duration::from_secs(60);

/// How a worker ends when told to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    Normal,
    Shutdown,
    Error,
    Panic,
}

/// Knobs shared by every incarnation of one worker spec.
#[derive(Clone, Default)]
pub struct Knobs {
    /// `init` fails while set.
    pub fail_init: Arc<AtomicBool>,
    /// The factory declines (OTP `ignore`) while set.
    pub ignore: Arc<AtomicBool>,
    /// The terminate hook waits this long (ms) first.
    pub slow_stop_ms: Arc<AtomicUsize>,
    /// The terminate hook panics while set.
    pub panic_in_stop: Arc<AtomicBool>,
    /// Each incarnation crashes on its first turn while set.
    pub crash_at_once: Arc<AtomicBool>,
}

pub struct Worker {
    pub id: String,
    pub log: Log,
    pub knobs: Knobs,
    pub handled: u64,
}

pub enum WMsg {
    Exit(How),
    Ping(ReplyTo<Pid>),
    Unlink(Pid, ReplyTo<()>),
    /// Awaits a long timer (so later messages queue).
    Sleep(Duration),
    Noop,
    Handled(ReplyTo<u64>),
}

#[derive(Debug)]
struct Failure(&'static str);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Failure {}

impl Process for Worker {
    type Msg = WMsg;

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        if self.knobs.fail_init.load(Ordering::SeqCst) {
            return Err(Box::new(Failure("init refused")));
        }
        self.log.push(Ev::Start(self.id.clone(), ctx.pid()));
        if self.knobs.crash_at_once.load(Ordering::SeqCst) {
            let _ = ctx.addr().tell_local(WMsg::Exit(How::Error));
        }
        Ok(())
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: WMsg) -> HandlerResult {
        match msg {
            WMsg::Exit(How::Normal) => ctx.stop(),
            WMsg::Exit(How::Shutdown) => ctx.stop_with(ExitReason::Shutdown),
            WMsg::Exit(How::Error) => return Err(Box::new(Failure("told to fail"))),
            WMsg::Exit(How::Panic) => panic!("told to panic"),
            WMsg::Ping(reply) => reply.send(ctx.pid()),
            WMsg::Unlink(pid, reply) => {
                ctx.unlink(pid);
                reply.send(());
            }
            WMsg::Sleep(d) => glommio::timer::sleep(d).await,
            WMsg::Noop => self.handled += 1,
            WMsg::Handled(reply) => reply.send(self.handled),
        }
        Ok(())
    }

    async fn terminate(&mut self, ctx: &mut Context<Self>, reason: &ExitReason) {
        let ms = self.knobs.slow_stop_ms.load(Ordering::SeqCst);
        if ms > 0 {
            glommio::timer::sleep(Duration::from_millis(ms as u64)).await;
        }
        if self.knobs.panic_in_stop.load(Ordering::SeqCst) {
            panic!("terminate hook panicked");
        }
        self.log
            .push(Ev::Stop(self.id.clone(), ctx.pid(), reason.clone()));
    }
}

/// A worker spec logging to `log`.
pub fn worker(id: &str, log: &Log) -> ChildSpec {
    worker_with(id, log, &Knobs::default())
}

pub fn worker_with(id: &str, log: &Log, knobs: &Knobs) -> ChildSpec {
    let (id2, log, knobs) = (id.to_owned(), log.clone(), knobs.clone());
    ChildSpec::worker_or_ignore(id, move || {
        if knobs.ignore.load(Ordering::SeqCst) {
            return None;
        }
        Some(Worker {
            id: id2.clone(),
            log: log.clone(),
            knobs: knobs.clone(),
            handled: 0,
        })
    })
}

pub fn addr(pid: Pid) -> Addr<Worker> {
    Addr::from_pid(pid)
}

/// Tells the worker `pid` to end `how`.
pub fn end(pid: Pid, how: How) {
    addr(pid).tell(WMsg::Exit(how)).unwrap();
}

/// The status of child `id`.
pub async fn status(sup: SupervisorRef, id: &str) -> Option<ChildStatus> {
    sup.which_children()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| c.status)
}

/// Asks until `check` holds (the supervisor handles the exit it waits for
/// in its own time; every ask is a round trip, no sleeping), bounded.
pub async fn until<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        if let Some(t) = check().await {
            return t;
        }
        assert!(std::time::Instant::now() < deadline, "condition never held");
        futures_lite::future::yield_now().await;
    }
}

/// Waits until child `id` no longer runs as `old`; returns its new status
/// (`None`: its spec is gone).
pub async fn after_exit(sup: SupervisorRef, id: &str, old: Pid) -> Option<ChildStatus> {
    until(|| async {
        match status(sup, id).await {
            Some(ChildStatus::Running(pid)) if pid == old => None,
            other => Some(other),
        }
    })
    .await
}

/// Runs `f` on shard 0 of `rt` and returns its output.
pub fn on0<F, Fut, T>(rt: &Runtime, f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    rt.block_on(ShardId(0), f).unwrap()
}

/// Every shard's alive count.
pub fn alive(rt: &Runtime) -> Vec<u64> {
    rt.stats().unwrap().iter().map(|s| s.alive).collect()
}
