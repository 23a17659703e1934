//! Links: the exit-signal matrix {normal, abnormal exit} × {partner traps,
//! does not trap}, in both directions, on one shard and across shards;
//! links to dead, stale and made-up pids; unlink; chains.
//!
//! Sync points: a trapping partner answers `ExitsWhen(n)` once it has
//! handled `n` exit signals; "nothing happened" is checked with an ask sent
//! from the dead process's shard after its exit is known, which travels the
//! same ring as (so arrives after) any exit signal that exit sent.

use corelet::{
    Addr, Context, Error, ExitReason, HandlerResult, Pid, Process, ReplyTo, Runtime, ShardId,
};
use std::sync::{Arc, Mutex};

const SHARDS: usize = 8;

fn runtime() -> Runtime {
    Runtime::builder()
        .shards(SHARDS)
        .pin(false)
        .build()
        .unwrap()
}

type Exits = Vec<(Pid, ExitReason)>;

/// What happened to a node: trapped exit signals and terminate hooks.
#[derive(Clone, Default)]
struct Log {
    exits: Arc<Mutex<Exits>>,
    hooks: Arc<Mutex<Vec<ExitReason>>>,
}

impl Log {
    fn exits(&self) -> Exits {
        self.exits.lock().unwrap().clone()
    }
    fn hooks(&self) -> Vec<ExitReason> {
        self.hooks.lock().unwrap().clone()
    }
}

struct Node {
    log: Log,
    trap: bool,
    /// Linked to from `init`.
    link_in_init: Option<Pid>,
    /// An `ExitsWhen` waiting for enough exit signals.
    waiting: Option<(usize, ReplyTo<Exits>)>,
}

fn node(log: &Log, trap: bool) -> Node {
    Node {
        log: log.clone(),
        trap,
        link_in_init: None,
        waiting: None,
    }
}

enum Msg {
    /// Links to the node, then asks it for a `Ping`: once that is answered,
    /// the other side of the link is in place too.
    Link(Addr<Node>, ReplyTo<()>),
    /// Links to any pid (no sync: it may name nobody).
    LinkPid(Pid, ReplyTo<()>),
    /// Unlinks, then syncs with the other side like `Link`.
    Unlink(Addr<Node>, ReplyTo<()>),
    Ping(ReplyTo<()>),
    /// `ctx.stop()`: a normal exit.
    Stop,
    /// The handler returns an error.
    Fail,
    Panic,
    /// Answered once this many exit signals were handled.
    ExitsWhen(usize, ReplyTo<Exits>),
}

#[derive(Debug)]
struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fail")
    }
}

impl std::error::Error for Failure {}

impl Node {
    fn answer_waiting(&mut self) {
        let ready =
            matches!(&self.waiting, Some((n, _)) if self.log.exits.lock().unwrap().len() >= *n);
        if ready {
            let (_, reply) = self.waiting.take().unwrap();
            reply.send(self.log.exits());
        }
    }
}

impl Process for Node {
    type Msg = Msg;

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        ctx.trap_exits(self.trap);
        if let Some(pid) = self.link_in_init {
            ctx.link(pid);
        }
        Ok(())
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        match msg {
            Msg::Link(other, reply) => {
                ctx.link(other.pid());
                other.ask(Msg::Ping).await?;
                reply.send(());
            }
            Msg::LinkPid(pid, reply) => {
                ctx.link(pid);
                reply.send(());
            }
            Msg::Unlink(other, reply) => {
                ctx.unlink(other.pid());
                other.ask(Msg::Ping).await?;
                reply.send(());
            }
            Msg::Ping(reply) => reply.send(()),
            Msg::Stop => ctx.stop(),
            Msg::Fail => return Err(Box::new(Failure)),
            Msg::Panic => panic!("boom"),
            Msg::ExitsWhen(n, reply) => {
                self.waiting = Some((n, reply));
                self.answer_waiting();
            }
        }
        Ok(())
    }

    async fn handle_exit(
        &mut self,
        _ctx: &mut Context<Self>,
        from: Pid,
        reason: ExitReason,
    ) -> HandlerResult {
        self.log.exits.lock().unwrap().push((from, reason));
        self.answer_waiting();
        Ok(())
    }

    async fn terminate(&mut self, _ctx: &mut Context<Self>, reason: &ExitReason) {
        self.log.hooks.lock().unwrap().push(reason.clone());
    }
}

/// How the first process dies.
#[derive(Clone, Copy, Debug)]
enum Cause {
    /// `ctx.stop()`.
    Stop,
    /// `terminate` from outside.
    Terminate,
    /// The handler returns an error.
    Fail,
    /// The handler panics.
    Panic,
    /// `kill` from outside.
    Kill,
}

const NORMAL: [Cause; 2] = [Cause::Stop, Cause::Terminate];
const ABNORMAL: [Cause; 3] = [Cause::Fail, Cause::Panic, Cause::Kill];

impl Cause {
    fn reason(self) -> ExitReason {
        match self {
            Cause::Stop => ExitReason::Normal,
            Cause::Terminate => ExitReason::Shutdown,
            Cause::Fail => ExitReason::Error("fail".into()),
            Cause::Panic => ExitReason::Panicked("boom".into()),
            Cause::Kill => ExitReason::Killed,
        }
    }

    fn apply(self, rt: &Runtime, addr: &Addr<Node>) {
        match self {
            Cause::Stop => rt.tell(addr, Msg::Stop).unwrap(),
            Cause::Terminate => rt.terminate(addr.pid()).unwrap(),
            Cause::Fail => rt.tell(addr, Msg::Fail).unwrap(),
            Cause::Panic => rt.tell(addr, Msg::Panic).unwrap(),
            Cause::Kill => rt.kill(addr.pid()).unwrap(),
        }
    }
}

/// Same shard, and two different shards.
const PLACEMENTS: [(ShardId, ShardId); 2] = [(ShardId(2), ShardId(2)), (ShardId(1), ShardId(6))];

/// One pair: the linker (it calls `link`) and the linkee, linked and synced.
struct Pair {
    dier: Addr<Node>,
    partner: Addr<Node>,
    partner_log: Log,
}

/// Spawns a linker on `placement.0` and a linkee on `placement.1`, links
/// them, and says which one will die (`linker_dies`) and whether the other
/// traps exits.
fn linked_pair(
    rt: &Runtime,
    placement: (ShardId, ShardId),
    linker_dies: bool,
    partner_traps: bool,
) -> Pair {
    let partner_log = Log::default();
    let (linker_trap, linkee_trap) = if linker_dies {
        (false, partner_traps)
    } else {
        (partner_traps, false)
    };
    let (l1, l2) = if linker_dies {
        (Log::default(), partner_log.clone())
    } else {
        (partner_log.clone(), Log::default())
    };
    let linker = rt
        .spawn_on(placement.0, move || node(&l1, linker_trap))
        .unwrap();
    let linkee = rt
        .spawn_on(placement.1, move || node(&l2, linkee_trap))
        .unwrap();
    rt.ask(&linker, |r| Msg::Link(linkee, r)).unwrap();
    // Linking is idempotent: a second link (from either side) changes
    // nothing; the partner still hears of the exit exactly once.
    rt.ask(&linker, |r| Msg::Link(linkee, r)).unwrap();
    rt.ask(&linkee, |r| Msg::Link(linker, r)).unwrap();
    let (dier, partner) = if linker_dies {
        (linker, linkee)
    } else {
        (linkee, linker)
    };
    Pair {
        dier,
        partner,
        partner_log,
    }
}

/// Asks `target` for its exit signals from `from`'s shard: the answer
/// covers every signal `from`'s shard sent `target` before.
fn exits_seen_from(rt: &Runtime, from: Pid, target: Addr<Node>) -> Exits {
    rt.block_on(from.shard(), move || async move {
        target.ask(|r| Msg::ExitsWhen(0, r)).await.unwrap()
    })
    .unwrap()
}

/// Every (cause, direction, placement) in `causes`, with a partner that
/// does or does not trap.
fn each_case(causes: &[Cause], mut f: impl FnMut(Cause, bool, (ShardId, ShardId), String)) {
    for &cause in causes {
        for linker_dies in [true, false] {
            for placement in PLACEMENTS {
                let ctx = format!("{cause:?}, linker dies: {linker_dies}, {placement:?}");
                f(cause, linker_dies, placement, ctx);
            }
        }
    }
}

#[test]
fn abnormal_exit_stops_a_partner_that_does_not_trap() {
    let rt = runtime();
    each_case(&ABNORMAL, |cause, linker_dies, placement, ctx| {
        let p = linked_pair(&rt, placement, linker_dies, false);
        let dier_exit = rt.watch(p.dier.pid()).unwrap();
        let partner_exit = rt.watch(p.partner.pid()).unwrap();
        cause.apply(&rt, &p.dier);
        assert_eq!(dier_exit.wait(), Ok(cause.reason()), "{ctx}");
        let linked = ExitReason::Linked {
            pid: p.dier.pid(),
            reason: Box::new(cause.reason()),
        };
        assert_eq!(partner_exit.wait(), Ok(linked.clone()), "{ctx}");
        assert!(!linked.is_normal());
        assert_eq!(p.partner_log.hooks(), [linked], "{ctx}: hook ran once");
        assert_eq!(p.partner_log.exits(), [], "{ctx}: not trapped");
    });
    let stats = rt.stats().unwrap();
    let linked: u64 = stats.iter().map(|s| s.exits.linked).sum();
    assert_eq!(linked, (ABNORMAL.len() * 2 * PLACEMENTS.len()) as u64);
}

/// A trapping partner sees each cause's exit exactly once, through
/// `handle_exit`, and lives on.
fn assert_trapped(rt: &Runtime, causes: &[Cause]) {
    each_case(causes, |cause, linker_dies, placement, ctx| {
        let p = linked_pair(rt, placement, linker_dies, true);
        let dier_exit = rt.watch(p.dier.pid()).unwrap();
        cause.apply(rt, &p.dier);
        assert_eq!(dier_exit.wait(), Ok(cause.reason()), "{ctx}");
        let expected = vec![(p.dier.pid(), cause.reason())];
        assert_eq!(
            rt.ask(&p.partner, |r| Msg::ExitsWhen(1, r)),
            Ok(expected.clone()),
            "{ctx}"
        );
        // Exactly once, and the partner lives on.
        assert_eq!(
            exits_seen_from(rt, p.dier.pid(), p.partner),
            expected,
            "{ctx}"
        );
        assert_eq!(rt.ask(&p.partner, Msg::Ping), Ok(()), "{ctx}");
        assert_eq!(p.partner_log.hooks(), [], "{ctx}");
    });
}

#[test]
fn abnormal_exit_is_handle_exit_for_a_trapping_partner() {
    assert_trapped(&runtime(), &ABNORMAL);
}

#[test]
fn normal_exit_leaves_a_partner_that_does_not_trap_alone() {
    let rt = runtime();
    each_case(&NORMAL, |cause, linker_dies, placement, ctx| {
        let p = linked_pair(&rt, placement, linker_dies, false);
        let dier_exit = rt.watch(p.dier.pid()).unwrap();
        cause.apply(&rt, &p.dier);
        assert_eq!(dier_exit.wait(), Ok(cause.reason()), "{ctx}");
        // The exit signal has reached the partner by now (same ring) and
        // was ignored: no hook call, no exit, and it still answers.
        assert_eq!(exits_seen_from(&rt, p.dier.pid(), p.partner), [], "{ctx}");
        assert_eq!(rt.ask(&p.partner, Msg::Ping), Ok(()), "{ctx}");
        assert_eq!(p.partner_log.hooks(), [], "{ctx}");
        assert_eq!(p.partner_log.exits(), [], "{ctx}");
    });
    let stats = rt.stats().unwrap();
    assert_eq!(stats.iter().map(|s| s.exits.linked).sum::<u64>(), 0);
}

#[test]
fn normal_exit_is_handle_exit_for_a_trapping_partner() {
    assert_trapped(&runtime(), &NORMAL);
}

/// Pids that name nobody: a dead process's (on the linker's shard and on
/// another), a slot never used, and a shard that does not exist.
fn nobodies(rt: &Runtime, linker_shard: ShardId) -> Vec<Pid> {
    let mut pids = Vec::new();
    for shard in [linker_shard, ShardId(5)] {
        let gone = rt.spawn_on(shard, || node(&Log::default(), false)).unwrap();
        let watch = rt.watch(gone.pid()).unwrap();
        rt.terminate(gone.pid()).unwrap();
        watch.wait().unwrap();
        pids.push(gone.pid());
    }
    pids.push(Pid::from_parts(ShardId(5), 100_000, 0));
    pids.push(Pid::from_parts(ShardId(SHARDS as u16 + 3), 0, 0));
    pids
}

#[test]
fn linking_to_nobody_is_an_immediate_no_process_exit_signal() {
    let rt = runtime();
    let shard = ShardId(3);
    for nobody in nobodies(&rt, shard) {
        // Not trapping: the linker stops.
        let log = Log::default();
        let l = log.clone();
        let a = rt.spawn_on(shard, move || node(&l, false)).unwrap();
        let exited = rt.watch(a.pid()).unwrap();
        // The handler answers before the exit signal is handled.
        assert_eq!(rt.ask(&a, |r| Msg::LinkPid(nobody, r)), Ok(()));
        let linked = ExitReason::Linked {
            pid: nobody,
            reason: Box::new(ExitReason::NoProcess),
        };
        assert_eq!(exited.wait(), Ok(linked.clone()), "{nobody}");
        assert_eq!(log.hooks(), [linked], "{nobody}");

        // Trapping: one `handle_exit` with `NoProcess`, and it lives on.
        let log = Log::default();
        let l = log.clone();
        let b = rt.spawn_on(shard, move || node(&l, true)).unwrap();
        assert_eq!(rt.ask(&b, |r| Msg::LinkPid(nobody, r)), Ok(()));
        assert_eq!(
            rt.ask(&b, |r| Msg::ExitsWhen(1, r)),
            Ok(vec![(nobody, ExitReason::NoProcess)]),
            "{nobody}"
        );
        assert_eq!(rt.ask(&b, Msg::Ping), Ok(()));
        assert_eq!(log.hooks(), []);
    }
}

#[test]
fn linking_to_nobody_from_init_stops_the_new_process() {
    let rt = runtime();
    let shard = ShardId(4);
    for nobody in nobodies(&rt, shard) {
        let log = Log::default();
        let l = log.clone();
        let reason = rt
            .block_on(shard, move || async move {
                let mut n = node(&l, false);
                n.link_in_init = Some(nobody);
                let a = corelet::spawn(n).expect("init succeeds");
                // `spawn` polls the new process once before it returns, so
                // with the exit signal already queued it may be gone by now.
                match corelet::wait(a.pid()).await {
                    Err(Error::NoProcess(p)) if p == a.pid() => None,
                    other => Some(other.unwrap()),
                }
            })
            .unwrap();
        let linked = ExitReason::Linked {
            pid: nobody,
            reason: Box::new(ExitReason::NoProcess),
        };
        if let Some(reason) = reason {
            assert_eq!(reason, linked, "{nobody}");
        }
        // Either way the process is gone, and its hook ran before that was
        // observable.
        assert_eq!(log.hooks(), [linked], "{nobody}");
    }
}

#[test]
fn after_unlink_the_partners_exit_does_not_reach_us() {
    let rt = runtime();
    for placement in PLACEMENTS {
        for unlinker_is_linker in [true, false] {
            for survivor_traps in [false, true] {
                let ctx = format!(
                    "{placement:?} linker unlinks: {unlinker_is_linker}, traps: {survivor_traps}"
                );
                let log = Log::default();
                let l = log.clone();
                let a = rt
                    .spawn_on(placement.0, move || node(&l, survivor_traps))
                    .unwrap();
                let b = rt
                    .spawn_on(placement.1, || node(&Log::default(), false))
                    .unwrap();
                rt.ask(&a, |r| Msg::Link(b, r)).unwrap();
                if unlinker_is_linker {
                    rt.ask(&a, |r| Msg::Unlink(b, r)).unwrap();
                } else {
                    rt.ask(&b, |r| Msg::Unlink(a, r)).unwrap();
                }
                let exited = rt.watch(b.pid()).unwrap();
                rt.kill(b.pid()).unwrap();
                assert_eq!(exited.wait(), Ok(ExitReason::Killed), "{ctx}");
                assert_eq!(exits_seen_from(&rt, b.pid(), a), [], "{ctx}");
                assert_eq!(rt.ask(&a, Msg::Ping), Ok(()), "{ctx}");
                assert_eq!(log.hooks(), [], "{ctx}");
                assert_eq!(log.exits(), [], "{ctx}");
            }
        }
    }
}

#[test]
fn unlinked_side_survives_our_abnormal_exit_too() {
    let rt = runtime();
    for placement in PLACEMENTS {
        let log = Log::default();
        let l = log.clone();
        let a = rt
            .spawn_on(placement.0, || node(&Log::default(), false))
            .unwrap();
        let b = rt.spawn_on(placement.1, move || node(&l, false)).unwrap();
        rt.ask(&a, |r| Msg::Link(b, r)).unwrap();
        rt.ask(&a, |r| Msg::Unlink(b, r)).unwrap();
        let exited = rt.watch(a.pid()).unwrap();
        rt.tell(&a, Msg::Panic).unwrap();
        assert_eq!(
            exited.wait(),
            Ok(ExitReason::Panicked("boom".into())),
            "{placement:?}"
        );
        assert_eq!(exits_seen_from(&rt, a.pid(), b), []);
        assert_eq!(rt.ask(&b, Msg::Ping), Ok(()), "{placement:?}");
        assert_eq!(log.hooks(), [], "{placement:?}");
    }
}

/// The expected reason of chain node `i` when node `dead` died of `root`:
/// each node between names its neighbour towards `dead`.
fn chain_reason(pids: &[Pid], dead: usize, i: usize, root: &ExitReason) -> ExitReason {
    if i == dead {
        return root.clone();
    }
    let next = if i < dead { i + 1 } else { i - 1 };
    ExitReason::Linked {
        pid: pids[next],
        reason: Box::new(chain_reason(pids, dead, next, root)),
    }
}

/// A chain of nodes, one per shard, each linked to the next.
fn chain(rt: &Runtime, len: usize) -> (Vec<Addr<Node>>, Vec<Log>) {
    let logs: Vec<Log> = (0..len).map(|_| Log::default()).collect();
    let nodes: Vec<Addr<Node>> = logs
        .iter()
        .enumerate()
        .map(|(i, log)| {
            let l = log.clone();
            rt.spawn_on(ShardId((i % SHARDS) as u16), move || node(&l, false))
                .unwrap()
        })
        .collect();
    for w in nodes.windows(2) {
        let next = w[1];
        rt.ask(&w[0], |r| Msg::Link(next, r)).unwrap();
    }
    (nodes, logs)
}

#[test]
fn a_three_link_chain_dies_from_its_end() {
    let rt = runtime();
    let (nodes, logs) = chain(&rt, 3);
    let pids: Vec<Pid> = nodes.iter().map(|n| n.pid()).collect();
    let watches: Vec<_> = pids.iter().map(|&p| rt.watch(p).unwrap()).collect();
    rt.kill(pids[2]).unwrap();
    for (i, w) in watches.into_iter().enumerate() {
        let expected = chain_reason(&pids, 2, i, &ExitReason::Killed);
        assert_eq!(w.wait(), Ok(expected.clone()), "node {i}");
        if i != 2 {
            assert_eq!(logs[i].hooks(), [expected], "node {i}");
        }
    }
    assert_eq!(
        chain_reason(&pids, 2, 0, &ExitReason::Killed),
        ExitReason::Linked {
            pid: pids[1],
            reason: Box::new(ExitReason::Linked {
                pid: pids[2],
                reason: Box::new(ExitReason::Killed),
            }),
        }
    );
}

#[test]
fn a_chain_over_every_shard_dies_both_ways_from_the_middle() {
    let rt = runtime();
    let (nodes, _logs) = chain(&rt, 2 * SHARDS);
    let pids: Vec<Pid> = nodes.iter().map(|n| n.pid()).collect();
    let watches: Vec<_> = pids.iter().map(|&p| rt.watch(p).unwrap()).collect();
    let dead = 5;
    rt.tell(&nodes[dead], Msg::Fail).unwrap();
    let root = ExitReason::Error("fail".into());
    for (i, w) in watches.into_iter().enumerate() {
        assert_eq!(
            w.wait(),
            Ok(chain_reason(&pids, dead, i, &root)),
            "node {i}"
        );
    }
    for s in rt.stats().unwrap() {
        assert_eq!(s.alive, 0, "{s:?}");
    }
}

#[test]
fn a_trapping_node_stops_the_chain() {
    let rt = runtime();
    // a (shard 1) – b (shard 4, traps) – c (shard 7)
    let logs: Vec<Log> = (0..3).map(|_| Log::default()).collect();
    let (la, lb, lc) = (logs[0].clone(), logs[1].clone(), logs[2].clone());
    let a = rt.spawn_on(ShardId(1), move || node(&la, false)).unwrap();
    let b = rt.spawn_on(ShardId(4), move || node(&lb, true)).unwrap();
    let c = rt.spawn_on(ShardId(7), move || node(&lc, false)).unwrap();
    rt.ask(&a, |r| Msg::Link(b, r)).unwrap();
    rt.ask(&b, |r| Msg::Link(c, r)).unwrap();
    let exited = rt.watch(c.pid()).unwrap();
    rt.kill(c.pid()).unwrap();
    assert_eq!(exited.wait(), Ok(ExitReason::Killed));
    assert_eq!(
        rt.ask(&b, |r| Msg::ExitsWhen(1, r)),
        Ok(vec![(c.pid(), ExitReason::Killed)])
    );
    assert_eq!(rt.ask(&a, Msg::Ping), Ok(()));
    assert_eq!(rt.ask(&b, Msg::Ping), Ok(()));
    assert_eq!(logs[0].hooks(), []);
    assert_eq!(logs[1].hooks(), []);
    // The link a–b still holds: b's abnormal exit now takes a down.
    let exited = rt.watch(a.pid()).unwrap();
    rt.tell(&b, Msg::Panic).unwrap();
    assert_eq!(
        exited.wait(),
        Ok(ExitReason::Linked {
            pid: b.pid(),
            reason: Box::new(ExitReason::Panicked("boom".into())),
        })
    );
}
