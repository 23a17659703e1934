//! Savina workloads and skynet on ractor.

use super::{call, run_sender, spawn, Counter, CounterMsg, Once, Sender};
use crate::check::{check_eq, Ctx, Result, Timed, XorShift};
use crate::workload::sum_below;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

type Handled = std::result::Result<(), ActorProcessingErr>;

/// PingPong: serves, then returns the ball until the rally is over.
struct Pinger;

#[derive(Default)]
struct PingerState {
    left: u64,
    hits: u64,
    pong: Option<ActorRef<PongerMsg>>,
    done: Option<RpcReplyPort<u64>>,
}

enum PingerMsg {
    Start {
        rounds: u64,
        pong: ActorRef<PongerMsg>,
        done: RpcReplyPort<u64>,
    },
    Pong,
}

impl Actor for Pinger {
    type Msg = PingerMsg;
    type State = PingerState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _me: ActorRef<PingerMsg>,
        _args: (),
    ) -> std::result::Result<PingerState, ActorProcessingErr> {
        Ok(PingerState::default())
    }

    async fn handle(
        &self,
        me: ActorRef<PingerMsg>,
        msg: PingerMsg,
        s: &mut PingerState,
    ) -> Handled {
        match msg {
            PingerMsg::Start { rounds, pong, done } => {
                s.left = rounds;
                s.done = Some(done);
                pong.cast(PongerMsg::Ping(me))?;
                s.pong = Some(pong);
            }
            PingerMsg::Pong => {
                s.hits += 1;
                s.left -= 1;
                if s.left == 0 {
                    if let Some(done) = s.done.take() {
                        done.send(s.hits)?;
                    }
                } else if let Some(pong) = &s.pong {
                    pong.cast(PongerMsg::Ping(me))?;
                }
            }
        }
        Ok(())
    }
}

/// PingPong: answers every ping.
struct Ponger;

enum PongerMsg {
    Ping(ActorRef<PingerMsg>),
    Count(RpcReplyPort<u64>),
}

impl Actor for Ponger {
    type Msg = PongerMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(
        &self,
        _me: ActorRef<PongerMsg>,
        _args: (),
    ) -> std::result::Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(&self, _me: ActorRef<PongerMsg>, msg: PongerMsg, pings: &mut u64) -> Handled {
        match msg {
            PongerMsg::Ping(from) => {
                *pings += 1;
                from.cast(PingerMsg::Pong)?;
            }
            PongerMsg::Count(reply) => reply.send(*pings)?,
        }
        Ok(())
    }
}

pub(super) async fn ping_pong(rounds: u64) -> Result<Timed> {
    let pong = spawn(Ponger, ()).await?;
    let ping = spawn(Pinger, ()).await?;
    let started = Instant::now();
    let hits = call(&ping, |done| PingerMsg::Start {
        rounds,
        pong: pong.clone(),
        done,
    })
    .await?;
    let elapsed = started.elapsed();
    let pings = call(&pong, PongerMsg::Count).await?;
    ping.stop(None);
    pong.stop(None);
    check_eq("pingpong pongs", hits, rounds)?;
    check_eq("pingpong pings", pings, rounds)?;
    Ok(Timed::new(elapsed, 2 * rounds))
}

pub(super) async fn counting(n: u64) -> Result<Timed> {
    let counter = spawn(Counter, ()).await?;
    let producer = spawn(Sender, counter.clone()).await?;
    let started = Instant::now();
    run_sender(&producer, n, "counting").await?;
    let elapsed = started.elapsed();
    producer.stop(None);
    counter.stop(None);
    Ok(Timed::new(elapsed, n))
}

pub(super) async fn fork_join_throughput(workers: u64, per_worker: u64) -> Result<Timed> {
    let mut pool = Vec::with_capacity(workers as usize);
    for _ in 0..workers {
        pool.push(spawn(Counter, ()).await?);
    }
    let total = workers * per_worker;
    let started = Instant::now();
    for i in 0..total {
        pool[(i % workers) as usize]
            .cast(CounterMsg::Add(i))
            .ctx("cast")?;
    }
    let mut sum = 0;
    for w in &pool {
        let (count, s) = call(w, CounterMsg::Get).await?;
        check_eq("fork-join per-worker count", count, per_worker)?;
        sum += s;
    }
    let elapsed = started.elapsed();
    for w in &pool {
        w.stop(None);
    }
    check_eq("fork-join sum", sum, sum_below(total))?;
    Ok(Timed::new(elapsed, total))
}

pub(super) async fn fork_join_create(n: u64) -> Result<Timed> {
    let total = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut exits = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (once, handle) = Actor::spawn(None, Once, total.clone()).await.ctx("spawn")?;
        once.cast(i).ctx("cast")?;
        exits.push(handle);
    }
    for h in exits {
        h.await.ctx("join")?;
    }
    let elapsed = started.elapsed();
    check_eq(
        "fork-join create sum",
        total.load(Ordering::SeqCst),
        sum_below(n),
    )?;
    Ok(Timed::new(elapsed, n))
}

/// ThreadRing: passes the token on until it has no hops left.
struct RingNode;

enum RingMsg {
    Next(ActorRef<RingMsg>),
    /// The token: hops still to make, hops made, and who to tell at the
    /// end.
    Token {
        left: u64,
        hops: u64,
        done: RpcReplyPort<(u64, u64)>,
    },
}

impl Actor for RingNode {
    type Msg = RingMsg;
    type State = (u64, Option<ActorRef<RingMsg>>);
    type Arguments = u64;

    async fn pre_start(
        &self,
        _me: ActorRef<RingMsg>,
        index: u64,
    ) -> std::result::Result<Self::State, ActorProcessingErr> {
        Ok((index, None))
    }

    async fn handle(&self, _me: ActorRef<RingMsg>, msg: RingMsg, s: &mut Self::State) -> Handled {
        match msg {
            RingMsg::Next(next) => s.1 = Some(next),
            RingMsg::Token {
                left: 0,
                hops,
                done,
            } => done.send((s.0, hops))?,
            RingMsg::Token { left, hops, done } => {
                let next = s.1.as_ref().ok_or("token before the ring was closed")?;
                next.cast(RingMsg::Token {
                    left: left - 1,
                    hops: hops + 1,
                    done,
                })?;
            }
        }
        Ok(())
    }
}

pub(super) async fn thread_ring(actors: u64, hops: u64) -> Result<Timed> {
    let mut ring = Vec::with_capacity(actors as usize);
    for index in 0..actors {
        ring.push(spawn(RingNode, index).await?);
    }
    for (i, node) in ring.iter().enumerate() {
        node.cast(RingMsg::Next(ring[(i + 1) % ring.len()].clone()))
            .ctx("cast")?;
    }
    let started = Instant::now();
    let (last, made) = call(&ring[0], |done| RingMsg::Token {
        left: hops,
        hops: 0,
        done,
    })
    .await?;
    let elapsed = started.elapsed();
    for node in &ring {
        node.stop(None);
    }
    check_eq("threadring hops", made, hops)?;
    check_eq("threadring last holder", last, hops % actors)?;
    Ok(Timed::new(elapsed, hops))
}

/// Big: pings random neighbours, answers their pings, reports to the sink
/// once all its own pings are answered.
struct BigActor;

struct BigState {
    index: usize,
    pings_left: u64,
    pongs: u64,
    rng: XorShift,
    peers: Option<Arc<Vec<ActorRef<BigMsg>>>>,
    sink: ActorRef<SinkMsg>,
}

enum BigMsg {
    Peers(Arc<Vec<ActorRef<BigMsg>>>),
    Start,
    Ping(ActorRef<BigMsg>),
    Pong,
}

impl BigState {
    fn ping(&mut self, me: ActorRef<BigMsg>) -> Handled {
        let peers = self.peers.as_ref().ok_or("started before peers")?;
        self.pings_left -= 1;
        let to = self.rng.neighbour(self.index, peers.len());
        peers[to].cast(BigMsg::Ping(me))?;
        Ok(())
    }
}

impl Actor for BigActor {
    type Msg = BigMsg;
    type State = BigState;
    type Arguments = BigState;

    async fn pre_start(
        &self,
        _me: ActorRef<BigMsg>,
        state: BigState,
    ) -> std::result::Result<BigState, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(&self, me: ActorRef<BigMsg>, msg: BigMsg, s: &mut BigState) -> Handled {
        match msg {
            BigMsg::Peers(peers) => s.peers = Some(peers),
            BigMsg::Start => s.ping(me)?,
            BigMsg::Ping(from) => from.cast(BigMsg::Pong)?,
            BigMsg::Pong => {
                s.pongs += 1;
                if s.pings_left > 0 {
                    s.ping(me)?;
                } else {
                    s.sink.cast(SinkMsg::Done(s.pongs))?;
                }
            }
        }
        Ok(())
    }
}

/// Big: adds up the reports and answers once all have come in.
struct Sink;

#[derive(Default)]
struct SinkState {
    reports: u64,
    total: u64,
    expect: Option<(u64, RpcReplyPort<u64>)>,
}

enum SinkMsg {
    Expect(u64, RpcReplyPort<u64>),
    Done(u64),
}

impl Actor for Sink {
    type Msg = SinkMsg;
    type State = SinkState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _me: ActorRef<SinkMsg>,
        _args: (),
    ) -> std::result::Result<SinkState, ActorProcessingErr> {
        Ok(SinkState::default())
    }

    async fn handle(&self, _me: ActorRef<SinkMsg>, msg: SinkMsg, s: &mut SinkState) -> Handled {
        match msg {
            SinkMsg::Expect(n, reply) => s.expect = Some((n, reply)),
            SinkMsg::Done(pongs) => {
                s.reports += 1;
                s.total += pongs;
            }
        }
        if s.expect.as_ref().is_some_and(|(n, _)| *n == s.reports) {
            if let Some((_, reply)) = s.expect.take() {
                reply.send(s.total)?;
            }
        }
        Ok(())
    }
}

pub(super) async fn big(actors: u64, pings: u64) -> Result<Timed> {
    let sink = spawn(Sink, ()).await?;
    let mut all = Vec::with_capacity(actors as usize);
    for index in 0..actors as usize {
        let state = BigState {
            index,
            pings_left: pings,
            pongs: 0,
            rng: XorShift::new(index as u64),
            peers: None,
            sink: sink.clone(),
        };
        all.push(spawn(BigActor, state).await?);
    }
    let peers = Arc::new(all.clone());
    for a in &all {
        a.cast(BigMsg::Peers(peers.clone())).ctx("cast")?;
    }
    let started = Instant::now();
    let (done, result) = tokio::sync::oneshot::channel();
    sink.cast(SinkMsg::Expect(actors, done.into()))
        .ctx("cast")?;
    for a in &all {
        a.cast(BigMsg::Start).ctx("cast")?;
    }
    let pongs = result.await.ctx("big")?;
    let elapsed = started.elapsed();
    for a in all.iter() {
        a.stop(None);
    }
    sink.stop(None);
    check_eq("big pongs", pongs, actors * pings)?;
    Ok(Timed::new(elapsed, 2 * actors * pings))
}

/// Skynet: a node spawns ten children (or, as a leaf, reports its
/// number), adds up their reports and passes the sum up.
struct Node;

struct NodeState {
    num: u64,
    size: u64,
    parent: Option<ActorRef<NodeMsg>>,
    reply: Option<RpcReplyPort<u64>>,
    sum: u64,
    pending: u32,
}

enum NodeMsg {
    /// Start the root; the sum goes to the caller.
    Run(RpcReplyPort<u64>),
    /// Start a node.
    Go,
    /// A child's sum.
    Value(u64),
}

impl NodeState {
    fn new(num: u64, size: u64, parent: Option<ActorRef<NodeMsg>>) -> NodeState {
        NodeState {
            num,
            size,
            parent,
            reply: None,
            sum: 0,
            pending: 0,
        }
    }

    async fn go(&mut self, me: ActorRef<NodeMsg>) -> Handled {
        if self.size == 1 {
            return self.report(me, self.num);
        }
        let child_size = self.size / 10;
        for i in 0..10 {
            let state = NodeState::new(self.num + i * child_size, child_size, Some(me.clone()));
            let (child, _handle) = Actor::spawn(None, Node, state).await?;
            child.cast(NodeMsg::Go)?;
        }
        self.pending = 10;
        Ok(())
    }

    fn report(&mut self, me: ActorRef<NodeMsg>, value: u64) -> Handled {
        if let Some(parent) = &self.parent {
            parent.cast(NodeMsg::Value(value))?;
        } else if let Some(reply) = self.reply.take() {
            reply.send(value)?;
        }
        me.stop(None);
        Ok(())
    }
}

impl Actor for Node {
    type Msg = NodeMsg;
    type State = NodeState;
    type Arguments = NodeState;

    async fn pre_start(
        &self,
        _me: ActorRef<NodeMsg>,
        state: NodeState,
    ) -> std::result::Result<NodeState, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(&self, me: ActorRef<NodeMsg>, msg: NodeMsg, s: &mut NodeState) -> Handled {
        match msg {
            NodeMsg::Run(reply) => {
                s.reply = Some(reply);
                s.go(me).await
            }
            NodeMsg::Go => s.go(me).await,
            NodeMsg::Value(v) => {
                s.sum += v;
                s.pending -= 1;
                if s.pending == 0 {
                    s.report(me, s.sum)
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Skynet on the two-worker runtime; tokio spreads the tasks.
pub(super) async fn skynet(leaves: u64) -> Result<Timed> {
    let started = Instant::now();
    let root = spawn(Node, NodeState::new(0, leaves, None)).await?;
    let sum = call(&root, NodeMsg::Run).await?;
    let elapsed = started.elapsed();
    check_eq("skynet sum", sum, sum_below(leaves))?;
    Ok(Timed::new(elapsed, 1))
}
