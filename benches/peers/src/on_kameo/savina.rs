//! Savina workloads and skynet on kameo.

use super::{run_sender, spawn, Add, Counter, Get, Hit, Once, Sender};
use crate::check::{check_eq, Ctx, Result, Timed, XorShift};
use crate::workload::sum_below;
use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// PingPong: serves, then returns the ball until the rally is over.
#[derive(Actor, Default)]
struct Pinger {
    left: u64,
    hits: u64,
    pong: Option<ActorRef<Ponger>>,
    done: Option<oneshot::Sender<u64>>,
}

struct Start {
    rounds: u64,
    pong: ActorRef<Ponger>,
    done: oneshot::Sender<u64>,
}

struct Pong;

impl Message<Start> for Pinger {
    type Reply = ();
    async fn handle(&mut self, msg: Start, ctx: &mut Context<Self, ()>) {
        self.left = msg.rounds;
        self.done = Some(msg.done);
        let _ = msg.pong.tell(Ping(ctx.actor_ref().clone())).await;
        self.pong = Some(msg.pong);
    }
}

impl Message<Pong> for Pinger {
    type Reply = ();
    async fn handle(&mut self, _msg: Pong, ctx: &mut Context<Self, ()>) {
        self.hits += 1;
        self.left -= 1;
        if self.left == 0 {
            if let Some(done) = self.done.take() {
                let _ = done.send(self.hits);
            }
        } else if let Some(pong) = &self.pong {
            let _ = pong.tell(Ping(ctx.actor_ref().clone())).await;
        }
    }
}

/// PingPong: answers every ping.
#[derive(Actor, Default)]
struct Ponger {
    pings: u64,
}

struct Ping(ActorRef<Pinger>);
struct Count;

impl Message<Ping> for Ponger {
    type Reply = ();
    async fn handle(&mut self, Ping(from): Ping, _ctx: &mut Context<Self, ()>) {
        self.pings += 1;
        let _ = from.tell(Pong).await;
    }
}

impl Message<Count> for Ponger {
    type Reply = u64;
    async fn handle(&mut self, _msg: Count, _ctx: &mut Context<Self, u64>) -> u64 {
        self.pings
    }
}

pub(super) async fn ping_pong(rounds: u64) -> Result<Timed> {
    let pong = spawn(Ponger::default());
    let ping = spawn(Pinger::default());
    let (done, hits) = oneshot::channel();
    let started = Instant::now();
    ping.tell(Start {
        rounds,
        pong: pong.clone(),
        done,
    })
    .await
    .ctx("tell")?;
    let hits = hits.await.ctx("pingpong")?;
    let elapsed = started.elapsed();
    let pings = pong.ask(Count).await.ctx("ask")?;
    ping.kill();
    pong.kill();
    check_eq("pingpong pongs", hits, rounds)?;
    check_eq("pingpong pings", pings, rounds)?;
    Ok(Timed::new(elapsed, 2 * rounds))
}

pub(super) async fn counting(n: u64) -> Result<Timed> {
    let counter = spawn(Counter::default());
    let producer = spawn(Sender {
        to: counter.clone(),
    });
    let started = Instant::now();
    run_sender(&producer, n, "counting").await?;
    let elapsed = started.elapsed();
    producer.kill();
    counter.kill();
    Ok(Timed::new(elapsed, n))
}

pub(super) async fn fork_join_throughput(workers: u64, per_worker: u64) -> Result<Timed> {
    let pool: Vec<_> = (0..workers).map(|_| spawn(Counter::default())).collect();
    let total = workers * per_worker;
    let started = Instant::now();
    for i in 0..total {
        pool[(i % workers) as usize]
            .tell(Add(i))
            .await
            .ctx("tell")?;
    }
    let mut sum = 0;
    for w in &pool {
        let [count, s] = w.ask(Get).await.ctx("ask")?;
        check_eq("fork-join per-worker count", count, per_worker)?;
        sum += s;
    }
    let elapsed = started.elapsed();
    for w in &pool {
        w.kill();
    }
    check_eq("fork-join sum", sum, sum_below(total))?;
    Ok(Timed::new(elapsed, total))
}

pub(super) async fn fork_join_create(n: u64) -> Result<Timed> {
    let total = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut all = Vec::with_capacity(n as usize);
    for i in 0..n {
        let once = spawn(Once {
            total: total.clone(),
        });
        once.tell(Hit(i)).await.ctx("tell")?;
        all.push(once);
    }
    for once in &all {
        once.wait_for_shutdown().await;
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
#[derive(Actor)]
struct RingNode {
    index: u64,
    next: Option<ActorRef<RingNode>>,
}

struct Next(ActorRef<RingNode>);

/// The token: hops still to make, hops made, and who to tell at the end.
struct Token {
    left: u64,
    hops: u64,
    done: oneshot::Sender<(u64, u64)>,
}

impl Message<Next> for RingNode {
    type Reply = ();
    async fn handle(&mut self, Next(next): Next, _ctx: &mut Context<Self, ()>) {
        self.next = Some(next);
    }
}

impl Message<Token> for RingNode {
    type Reply = ();
    async fn handle(&mut self, t: Token, _ctx: &mut Context<Self, ()>) {
        match &self.next {
            Some(next) if t.left > 0 => {
                let _ = next
                    .tell(Token {
                        left: t.left - 1,
                        hops: t.hops + 1,
                        done: t.done,
                    })
                    .await;
            }
            // The end (or a ring never closed, which the check catches).
            _ => {
                let _ = t.done.send((self.index, t.hops));
            }
        }
    }
}

pub(super) async fn thread_ring(actors: u64, hops: u64) -> Result<Timed> {
    let ring: Vec<_> = (0..actors)
        .map(|index| spawn(RingNode { index, next: None }))
        .collect();
    for (i, node) in ring.iter().enumerate() {
        node.tell(Next(ring[(i + 1) % ring.len()].clone()))
            .await
            .ctx("tell")?;
    }
    let (done, result) = oneshot::channel();
    let started = Instant::now();
    ring[0]
        .tell(Token {
            left: hops,
            hops: 0,
            done,
        })
        .await
        .ctx("tell")?;
    let (last, made) = result.await.ctx("threadring")?;
    let elapsed = started.elapsed();
    for node in &ring {
        node.kill();
    }
    check_eq("threadring hops", made, hops)?;
    check_eq("threadring last holder", last, hops % actors)?;
    Ok(Timed::new(elapsed, hops))
}

/// Big: pings random neighbours, answers their pings, reports to the sink
/// once all its own pings are answered.
#[derive(Actor)]
struct BigActor {
    index: usize,
    pings_left: u64,
    pongs: u64,
    rng: XorShift,
    peers: Option<Arc<Vec<ActorRef<BigActor>>>>,
    sink: ActorRef<Sink>,
}

enum BigMsg {
    Peers(Arc<Vec<ActorRef<BigActor>>>),
    Start,
    Ping(ActorRef<BigActor>),
    Pong,
}

impl BigActor {
    async fn ping(&mut self, me: &ActorRef<BigActor>) {
        if let Some(peers) = &self.peers {
            self.pings_left -= 1;
            let to = self.rng.neighbour(self.index, peers.len());
            let _ = peers[to].tell(BigMsg::Ping(me.clone())).await;
        }
    }
}

impl Message<BigMsg> for BigActor {
    type Reply = ();
    async fn handle(&mut self, msg: BigMsg, ctx: &mut Context<Self, ()>) {
        match msg {
            BigMsg::Peers(peers) => self.peers = Some(peers),
            BigMsg::Start => self.ping(ctx.actor_ref()).await,
            BigMsg::Ping(from) => {
                let _ = from.tell(BigMsg::Pong).await;
            }
            BigMsg::Pong => {
                self.pongs += 1;
                if self.pings_left > 0 {
                    self.ping(ctx.actor_ref()).await;
                } else {
                    let _ = self.sink.tell(Done(self.pongs)).await;
                }
            }
        }
    }
}

/// Big: adds up the reports and answers once all have come in.
#[derive(Actor)]
struct Sink {
    reports: u64,
    total: u64,
    expect: u64,
    done: Option<oneshot::Sender<u64>>,
}

struct Done(u64);

impl Message<Done> for Sink {
    type Reply = ();
    async fn handle(&mut self, Done(pongs): Done, _ctx: &mut Context<Self, ()>) {
        self.reports += 1;
        self.total += pongs;
        if self.reports == self.expect {
            if let Some(done) = self.done.take() {
                let _ = done.send(self.total);
            }
        }
    }
}

pub(super) async fn big(actors: u64, pings: u64) -> Result<Timed> {
    let (done, result) = oneshot::channel();
    let sink = spawn(Sink {
        reports: 0,
        total: 0,
        expect: actors,
        done: Some(done),
    });
    let all: Vec<_> = (0..actors as usize)
        .map(|index| {
            spawn(BigActor {
                index,
                pings_left: pings,
                pongs: 0,
                rng: XorShift::new(index as u64),
                peers: None,
                sink: sink.clone(),
            })
        })
        .collect();
    let peers = Arc::new(all.clone());
    for a in &all {
        a.tell(BigMsg::Peers(peers.clone())).await.ctx("tell")?;
    }
    let started = Instant::now();
    for a in &all {
        a.tell(BigMsg::Start).await.ctx("tell")?;
    }
    let pongs = result.await.ctx("big")?;
    let elapsed = started.elapsed();
    for a in &all {
        a.kill();
    }
    sink.kill();
    check_eq("big pongs", pongs, actors * pings)?;
    Ok(Timed::new(elapsed, 2 * actors * pings))
}

/// Skynet: a node spawns ten children (or, as a leaf, reports its
/// number), adds up their reports and passes the sum up.
#[derive(Actor)]
struct Node {
    num: u64,
    size: u64,
    parent: Option<ActorRef<Node>>,
    reply: Option<oneshot::Sender<u64>>,
    sum: u64,
    pending: u32,
}

struct Go;
struct Value(u64);

impl Node {
    fn new(num: u64, size: u64, parent: Option<ActorRef<Node>>) -> Node {
        Node {
            num,
            size,
            parent,
            reply: None,
            sum: 0,
            pending: 0,
        }
    }

    async fn report(&mut self, ctx: &mut Context<Self, ()>, value: u64) {
        if let Some(parent) = &self.parent {
            let _ = parent.tell(Value(value)).await;
        } else if let Some(reply) = self.reply.take() {
            let _ = reply.send(value);
        }
        ctx.stop();
    }
}

impl Message<Go> for Node {
    type Reply = ();
    async fn handle(&mut self, _msg: Go, ctx: &mut Context<Self, ()>) {
        if self.size == 1 {
            return self.report(ctx, self.num).await;
        }
        let child_size = self.size / 10;
        for i in 0..10 {
            let child = Node::new(
                self.num + i * child_size,
                child_size,
                Some(ctx.actor_ref().clone()),
            );
            let _ = spawn(child).tell(Go).await;
        }
        self.pending = 10;
    }
}

impl Message<Value> for Node {
    type Reply = ();
    async fn handle(&mut self, Value(v): Value, ctx: &mut Context<Self, ()>) {
        self.sum += v;
        self.pending -= 1;
        if self.pending == 0 {
            self.report(ctx, self.sum).await;
        }
    }
}

/// Skynet on the two-worker runtime; tokio spreads the tasks.
pub(super) async fn skynet(leaves: u64) -> Result<Timed> {
    let (reply, result) = oneshot::channel();
    let started = Instant::now();
    let mut root = Node::new(0, leaves, None);
    root.reply = Some(reply);
    let root = spawn(root);
    root.tell(Go).await.ctx("tell")?;
    let sum = result.await.ctx("skynet")?;
    let elapsed = started.elapsed();
    check_eq("skynet sum", sum, sum_below(leaves))?;
    Ok(Timed::new(elapsed, 1))
}
