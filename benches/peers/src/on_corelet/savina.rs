//! Savina workloads and skynet on corelet.

use super::{on, run_sender, stop_all, Counter, CounterMsg, Once, Sender};
use crate::check::{check_eq, BenchError, Ctx, Result, Timed, XorShift};
use crate::workload::{skynet_processes, sum_below};
use corelet::{Addr, Context, Handled, HandlerResult, Process, ReplyTo, Runtime, ShardId};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// PingPong: serves, then returns the ball until the rally is over.
struct Pinger {
    left: u64,
    hits: u64,
    pong: Option<Addr<Ponger>>,
    done: Option<ReplyTo<u64>>,
}

enum PingerMsg {
    Start {
        rounds: u64,
        pong: Addr<Ponger>,
        done: ReplyTo<u64>,
    },
    Pong,
}

impl Process for Pinger {
    type Msg = PingerMsg;

    // Nothing here awaits: handled at once, with no future.
    fn handle_now(&mut self, ctx: &mut Context<Self>, msg: PingerMsg) -> Handled<PingerMsg> {
        let result = (|| -> HandlerResult {
            match msg {
                PingerMsg::Start { rounds, pong, done } => {
                    self.left = rounds;
                    self.pong = Some(pong);
                    self.done = Some(done);
                    pong.tell(PongerMsg::Ping(ctx.addr()))?;
                }
                PingerMsg::Pong => {
                    self.hits += 1;
                    self.left -= 1;
                    match (self.left, self.pong) {
                        (0, _) => {
                            if let Some(done) = self.done.take() {
                                done.send(self.hits);
                            }
                        }
                        (_, Some(pong)) => pong.tell(PongerMsg::Ping(ctx.addr()))?,
                        (_, None) => return Err("pong before start".into()),
                    }
                }
            }
            Ok(())
        })();
        Handled::Done(result)
    }
}

/// PingPong: answers every ping.
#[derive(Default)]
struct Ponger {
    pings: u64,
}

enum PongerMsg {
    Ping(Addr<Pinger>),
    Count(ReplyTo<u64>),
}

impl Process for Ponger {
    type Msg = PongerMsg;

    // Nothing here awaits: handled at once, with no future.
    fn handle_now(&mut self, _ctx: &mut Context<Self>, msg: PongerMsg) -> Handled<PongerMsg> {
        let result = (|| -> HandlerResult {
            match msg {
                PongerMsg::Ping(from) => {
                    self.pings += 1;
                    from.tell(PingerMsg::Pong)?;
                }
                PongerMsg::Count(reply) => reply.send(self.pings),
            }
            Ok(())
        })();
        Handled::Done(result)
    }
}

pub(super) fn ping_pong(rt: &Runtime, rounds: u64) -> Result<Timed> {
    on(rt, 0, move || async move {
        let pong = corelet::spawn(Ponger::default()).ctx("spawn")?;
        let ping = corelet::spawn(Pinger {
            left: 0,
            hits: 0,
            pong: None,
            done: None,
        })
        .ctx("spawn")?;
        let started = Instant::now();
        let hits = ping
            .ask(|done| PingerMsg::Start { rounds, pong, done })
            .await
            .ctx("ask")?;
        let elapsed = started.elapsed();
        let pings = pong.ask(PongerMsg::Count).await.ctx("ask")?;
        stop_all([ping.pid(), pong.pid()]).await?;
        check_eq("pingpong pongs", hits, rounds)?;
        check_eq("pingpong pings", pings, rounds)?;
        Ok(Timed::new(elapsed, 2 * rounds))
    })
}

pub(super) fn counting(rt: &Runtime, n: u64) -> Result<Timed> {
    on(rt, 0, move || async move {
        let counter = corelet::spawn(Counter::default()).ctx("spawn")?;
        let producer = corelet::spawn(Sender {
            to: counter,
            wait_for_room: false,
        })
        .ctx("spawn")?;
        let started = Instant::now();
        run_sender(producer, n, "counting").await?;
        let elapsed = started.elapsed();
        stop_all([producer.pid(), counter.pid()]).await?;
        Ok(Timed::new(elapsed, n))
    })
}

pub(super) fn fork_join_throughput(rt: &Runtime, workers: u64, per_worker: u64) -> Result<Timed> {
    on(rt, 0, move || async move {
        let pool = (0..workers)
            .map(|_| corelet::spawn(Counter::default()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("spawn")?;
        let total = workers * per_worker;
        let started = Instant::now();
        for i in 0..total {
            pool[(i % workers) as usize]
                .tell(CounterMsg::Add(i))
                .ctx("tell")?;
        }
        let mut sum = 0;
        for w in &pool {
            let (count, s) = w.ask(CounterMsg::Get).await.ctx("ask")?;
            check_eq("fork-join per-worker count", count, per_worker)?;
            sum += s;
        }
        let elapsed = started.elapsed();
        stop_all(pool.iter().map(|w| w.pid())).await?;
        check_eq("fork-join sum", sum, sum_below(total))?;
        Ok(Timed::new(elapsed, total))
    })
}

pub(super) fn fork_join_create(rt: &Runtime, n: u64) -> Result<Timed> {
    on(rt, 0, move || async move {
        let total = Rc::new(Cell::new(0));
        let started = Instant::now();
        let mut waits = Vec::with_capacity(n as usize);
        for i in 0..n {
            let once = corelet::spawn(Once {
                total: total.clone(),
            })
            .ctx("spawn")?;
            once.tell(i).ctx("tell")?;
            waits.push(corelet::wait(once.pid()));
        }
        for w in waits {
            w.await.ctx("wait")?;
        }
        let elapsed = started.elapsed();
        check_eq("fork-join create sum", total.get(), sum_below(n))?;
        Ok(Timed::new(elapsed, n))
    })
}

/// ThreadRing: passes the token on until it has no hops left.
struct RingNode {
    index: u64,
    next: Option<Addr<RingNode>>,
}

enum RingMsg {
    Next(Addr<RingNode>),
    /// The token: hops still to make, hops made, and who to tell at the end
    /// (the index of the last holder and the hops made).
    Token {
        left: u64,
        hops: u64,
        done: ReplyTo<(u64, u64)>,
    },
}

impl Process for RingNode {
    type Msg = RingMsg;

    // Nothing here awaits: handled at once, with no future.
    fn handle_now(&mut self, _ctx: &mut Context<Self>, msg: RingMsg) -> Handled<RingMsg> {
        let result = (|| -> HandlerResult {
            match msg {
                RingMsg::Next(next) => self.next = Some(next),
                RingMsg::Token {
                    left: 0,
                    hops,
                    done,
                } => done.send((self.index, hops)),
                RingMsg::Token { left, hops, done } => {
                    let next = self.next.ok_or("token before the ring was closed")?;
                    next.tell(RingMsg::Token {
                        left: left - 1,
                        hops: hops + 1,
                        done,
                    })?;
                }
            }
            Ok(())
        })();
        Handled::Done(result)
    }
}

pub(super) fn thread_ring(rt: &Runtime, actors: u64, hops: u64) -> Result<Timed> {
    on(rt, 0, move || async move {
        let ring = (0..actors)
            .map(|index| corelet::spawn(RingNode { index, next: None }))
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("spawn")?;
        for (i, node) in ring.iter().enumerate() {
            node.tell(RingMsg::Next(ring[(i + 1) % ring.len()]))
                .ctx("tell")?;
        }
        let started = Instant::now();
        let (last, made) = ring[0]
            .ask(|done| RingMsg::Token {
                left: hops,
                hops: 0,
                done,
            })
            .await
            .ctx("ask")?;
        let elapsed = started.elapsed();
        stop_all(ring.iter().map(|n| n.pid())).await?;
        check_eq("threadring hops", made, hops)?;
        check_eq("threadring last holder", last, hops % actors)?;
        Ok(Timed::new(elapsed, hops))
    })
}

/// Big: pings random neighbours, answers their pings, reports to the sink
/// once all its own pings are answered.
struct BigActor {
    index: usize,
    pings_left: u64,
    pongs: u64,
    rng: XorShift,
    peers: Option<Arc<Vec<Addr<BigActor>>>>,
    sink: Addr<Sink>,
}

enum BigMsg {
    Peers(Arc<Vec<Addr<BigActor>>>),
    Start,
    Ping(Addr<BigActor>),
    Pong,
}

impl BigActor {
    fn ping(&mut self, me: Addr<BigActor>) -> HandlerResult {
        let peers = self.peers.as_ref().ok_or("started before peers")?;
        self.pings_left -= 1;
        let to = self.rng.neighbour(self.index, peers.len());
        peers[to].tell(BigMsg::Ping(me))?;
        Ok(())
    }
}

impl Process for BigActor {
    type Msg = BigMsg;

    // Nothing here awaits: handled at once, with no future.
    fn handle_now(&mut self, ctx: &mut Context<Self>, msg: BigMsg) -> Handled<BigMsg> {
        let result = (|| -> HandlerResult {
            match msg {
                BigMsg::Peers(peers) => self.peers = Some(peers),
                BigMsg::Start => self.ping(ctx.addr())?,
                BigMsg::Ping(from) => from.tell(BigMsg::Pong)?,
                BigMsg::Pong => {
                    self.pongs += 1;
                    if self.pings_left > 0 {
                        self.ping(ctx.addr())?;
                    } else {
                        self.sink.tell(SinkMsg::Done(self.pongs))?;
                    }
                }
            }
            Ok(())
        })();
        Handled::Done(result)
    }
}

/// Big: adds up the reports and answers once all have come in.
#[derive(Default)]
struct Sink {
    reports: u64,
    total: u64,
    expect: Option<(u64, ReplyTo<u64>)>,
}

enum SinkMsg {
    Expect(u64, ReplyTo<u64>),
    Done(u64),
}

impl Process for Sink {
    type Msg = SinkMsg;

    // Nothing here awaits: handled at once, with no future.
    fn handle_now(&mut self, _ctx: &mut Context<Self>, msg: SinkMsg) -> Handled<SinkMsg> {
        match msg {
            SinkMsg::Expect(n, reply) => self.expect = Some((n, reply)),
            SinkMsg::Done(pongs) => {
                self.reports += 1;
                self.total += pongs;
            }
        }
        if self
            .expect
            .as_ref()
            .is_some_and(|(n, _)| *n == self.reports)
        {
            if let Some((_, reply)) = self.expect.take() {
                reply.send(self.total);
            }
        }
        Handled::Done(Ok(()))
    }
}

pub(super) fn big(rt: &Runtime, actors: u64, pings: u64) -> Result<Timed> {
    on(rt, 0, move || async move {
        let sink = corelet::spawn(Sink::default()).ctx("spawn")?;
        let all = (0..actors as usize)
            .map(|index| {
                corelet::spawn(BigActor {
                    index,
                    pings_left: pings,
                    pongs: 0,
                    rng: XorShift::new(index as u64),
                    peers: None,
                    sink,
                })
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("spawn")?;
        let peers = Arc::new(all.clone());
        for a in &all {
            a.tell(BigMsg::Peers(peers.clone())).ctx("tell")?;
        }
        let started = Instant::now();
        let done = sink.ask(|r| SinkMsg::Expect(actors, r));
        for a in &all {
            a.tell(BigMsg::Start).ctx("tell")?;
        }
        let pongs = done.await.ctx("ask")?;
        let elapsed = started.elapsed();
        stop_all(all.iter().map(|a| a.pid()).chain([sink.pid()])).await?;
        check_eq("big pongs", pongs, actors * pings)?;
        Ok(Timed::new(elapsed, 2 * actors * pings))
    })
}

/// Levels of the skynet tree whose children are spread over the shards;
/// deeper nodes spawn their children on their own shard.
const SPREAD_LEVELS: u32 = 2;

/// Skynet: a node spawns ten children (or, as a leaf, reports its
/// number), adds up their reports and passes the sum up.
struct Node {
    num: u64,
    size: u64,
    depth: u32,
    shards: u16,
    parent: Option<Addr<Node>>,
    reply: Option<ReplyTo<u64>>,
    sum: u64,
    pending: u32,
}

enum NodeMsg {
    /// Start the root; the sum goes to the asker.
    Run(ReplyTo<u64>),
    /// Start a node.
    Go,
    /// A child's sum.
    Value(u64),
}

impl Node {
    fn new(num: u64, size: u64, depth: u32, shards: u16, parent: Option<Addr<Node>>) -> Node {
        Node {
            num,
            size,
            depth,
            shards,
            parent,
            reply: None,
            sum: 0,
            pending: 0,
        }
    }

    /// The `i`th of this node's ten children.
    fn child(&self, ctx: &Context<Self>, i: u64) -> Node {
        let size = self.size / 10;
        let num = self.num + i * size;
        Node::new(num, size, self.depth + 1, self.shards, Some(ctx.addr()))
    }

    async fn go(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        if self.size == 1 {
            return self.report(ctx, self.num).await;
        }
        for i in 0..10 {
            let child = self.child(ctx, i);
            let addr = if self.depth < SPREAD_LEVELS && self.shards > 1 {
                let shard = ShardId(((child.num / child.size) % self.shards as u64) as u16);
                corelet::spawn_on(shard, move || child).await?
            } else {
                corelet::spawn(child)?
            };
            addr.send(NodeMsg::Go).await?;
        }
        self.pending = 10;
        Ok(())
    }

    async fn report(&mut self, ctx: &mut Context<Self>, value: u64) -> HandlerResult {
        match (self.parent, self.reply.take()) {
            (Some(parent), _) => parent.send(NodeMsg::Value(value)).await?,
            (None, Some(reply)) => reply.send(value),
            (None, None) => return Err("a root without an asker".into()),
        }
        ctx.stop();
        Ok(())
    }
}

impl Node {
    /// Whether this node's parent is on its own shard (true below the
    /// levels whose children are spread).
    fn parent_is_local(&self) -> bool {
        self.depth > SPREAD_LEVELS || self.shards == 1
    }

    /// [`Node::report`] for a node whose parent is on its own shard (or
    /// the root, which answers its asker): a same-shard `tell` never
    /// waits, so nothing here awaits.
    fn report_now(&mut self, ctx: &mut Context<Self>, value: u64) -> Handled<NodeMsg> {
        match (self.parent, self.reply.take()) {
            (Some(parent), _) => {
                if let Err(e) = parent.tell(NodeMsg::Value(value)) {
                    return Handled::Done(Err(e.to_string().into()));
                }
            }
            (None, Some(reply)) => reply.send(value),
            (None, None) => return Handled::Done(Err("a root without an asker".into())),
        }
        ctx.stop();
        Handled::Done(Ok(()))
    }
}

impl Process for Node {
    type Msg = NodeMsg;

    /// Every node below the spread levels handles its messages here, with
    /// no future: it spawns and tells on its own shard only (the
    /// convention of every Savina workload: `handle_now` where nothing
    /// awaits). The spread levels and the root await (`spawn_on`, a
    /// cross-shard `send`) in `handle`.
    fn handle_now(&mut self, ctx: &mut Context<Self>, msg: NodeMsg) -> Handled<NodeMsg> {
        match msg {
            NodeMsg::Go if self.size == 1 && self.parent_is_local() => {
                self.report_now(ctx, self.num)
            }
            NodeMsg::Go if self.size > 1 && (self.depth >= SPREAD_LEVELS || self.shards == 1) => {
                for i in 0..10 {
                    let sent = corelet::spawn(self.child(ctx, i))
                        .map_err(|e| e.to_string())
                        .and_then(|addr| addr.tell(NodeMsg::Go).map_err(|e| e.to_string()));
                    if let Err(e) = sent {
                        return Handled::Done(Err(e.into()));
                    }
                }
                self.pending = 10;
                Handled::Done(Ok(()))
            }
            NodeMsg::Value(v)
                if self.pending > 1 || self.parent_is_local() || self.parent.is_none() =>
            {
                self.sum += v;
                self.pending -= 1;
                if self.pending == 0 {
                    self.report_now(ctx, self.sum)
                } else {
                    Handled::Done(Ok(()))
                }
            }
            later => Handled::Later(later),
        }
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: NodeMsg) -> HandlerResult {
        match msg {
            NodeMsg::Run(reply) => {
                self.reply = Some(reply);
                self.go(ctx).await
            }
            NodeMsg::Go => self.go(ctx).await,
            NodeMsg::Value(v) => {
                self.sum += v;
                self.pending -= 1;
                if self.pending == 0 {
                    self.report(ctx, self.sum).await
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Skynet on every shard of `rt`: the children of the top
/// [`SPREAD_LEVELS`] levels go round-robin over the shards, the rest stay
/// on their parent's shard. The result is the whole run (units: 1).
pub fn skynet(rt: &Runtime, leaves: u64) -> Result<Timed> {
    let shards = rt.shard_count() as u16;
    on(rt, 0, move || async move {
        let before = corelet::local_stats().ctx("stats")?.spawned;
        let started = Instant::now();
        let root = corelet::spawn(Node::new(0, leaves, 0, shards, None)).ctx("spawn")?;
        let sum = root.ask(NodeMsg::Run).await.ctx("skynet ask")?;
        let elapsed = started.elapsed();
        check_eq("skynet sum", sum, sum_below(leaves))?;
        // Shard 0's spawn counter sees only its own processes; the sum
        // already proves every leaf reported once.
        let spawned = corelet::local_stats().ctx("stats")?.spawned - before;
        if spawned == 0 || spawned > skynet_processes(leaves) {
            return Err(BenchError(format!("skynet: {spawned} spawns on shard 0")));
        }
        Ok(Timed::new(elapsed, 1))
    })
}
