//! Savina workloads and skynet on actix.

use super::{run_sender, Counter, Get, Hit, Once, Sender};
use crate::check::{check_eq, Ctx, Result, Timed, XorShift};
use crate::workload::sum_below;
use actix::prelude::*;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// Stops an actor that would otherwise be kept alive by a cycle of
/// addresses (a ring, a peer list).
struct Stop;
impl Message for Stop {
    type Result = ();
}

/// PingPong: serves, then returns the ball until the rally is over.
#[derive(Default)]
struct Pinger {
    left: u64,
    hits: u64,
    pong: Option<Addr<Ponger>>,
    done: Option<oneshot::Sender<u64>>,
}

impl Actor for Pinger {
    type Context = Context<Self>;
}

struct Start {
    rounds: u64,
    pong: Addr<Ponger>,
    done: oneshot::Sender<u64>,
}
impl Message for Start {
    type Result = ();
}

struct Pong;
impl Message for Pong {
    type Result = ();
}

impl Handler<Start> for Pinger {
    type Result = ();
    fn handle(&mut self, msg: Start, ctx: &mut Context<Self>) {
        self.left = msg.rounds;
        self.done = Some(msg.done);
        msg.pong.do_send(Ping(ctx.address()));
        self.pong = Some(msg.pong);
    }
}

impl Handler<Pong> for Pinger {
    type Result = ();
    fn handle(&mut self, _msg: Pong, ctx: &mut Context<Self>) {
        self.hits += 1;
        self.left -= 1;
        if self.left == 0 {
            if let Some(done) = self.done.take() {
                let _ = done.send(self.hits);
            }
        } else if let Some(pong) = &self.pong {
            pong.do_send(Ping(ctx.address()));
        }
    }
}

/// PingPong: answers every ping.
#[derive(Default)]
struct Ponger {
    pings: u64,
}

impl Actor for Ponger {
    type Context = Context<Self>;
}

struct Ping(Addr<Pinger>);
impl Message for Ping {
    type Result = ();
}

struct Count;
impl Message for Count {
    type Result = u64;
}

impl Handler<Ping> for Ponger {
    type Result = ();
    fn handle(&mut self, Ping(from): Ping, _ctx: &mut Context<Self>) {
        self.pings += 1;
        from.do_send(Pong);
    }
}

impl Handler<Count> for Ponger {
    type Result = u64;
    fn handle(&mut self, _msg: Count, _ctx: &mut Context<Self>) -> u64 {
        self.pings
    }
}

pub(super) async fn ping_pong(rounds: u64) -> Result<Timed> {
    let pong = Ponger::default().start();
    let ping = Pinger::default().start();
    let (done, hits) = oneshot::channel();
    let started = Instant::now();
    ping.do_send(Start {
        rounds,
        pong: pong.clone(),
        done,
    });
    let hits = hits.await.ctx("pingpong")?;
    let elapsed = started.elapsed();
    let pings = pong.send(Count).await.ctx("send")?;
    check_eq("pingpong pongs", hits, rounds)?;
    check_eq("pingpong pings", pings, rounds)?;
    Ok(Timed::new(elapsed, 2 * rounds))
}

pub(super) async fn counting(n: u64) -> Result<Timed> {
    let counter = Counter::default().start();
    let producer = Sender { to: counter }.start();
    let started = Instant::now();
    run_sender(&producer, n, "counting").await?;
    Ok(Timed::new(started.elapsed(), n))
}

pub(super) async fn fork_join_throughput(workers: u64, per_worker: u64) -> Result<Timed> {
    let pool: Vec<_> = (0..workers).map(|_| Counter::default().start()).collect();
    let total = workers * per_worker;
    let started = Instant::now();
    for i in 0..total {
        pool[(i % workers) as usize].do_send(super::Add(i));
    }
    let mut sum = 0;
    for w in &pool {
        let (count, s) = w.send(Get).await.ctx("send")?;
        check_eq("fork-join per-worker count", count, per_worker)?;
        sum += s;
    }
    let elapsed = started.elapsed();
    check_eq("fork-join sum", sum, sum_below(total))?;
    Ok(Timed::new(elapsed, total))
}

pub(super) async fn fork_join_create(n: u64) -> Result<Timed> {
    let total = Rc::new(Cell::new(0));
    let started = Instant::now();
    let mut exits = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (tx, rx) = oneshot::channel();
        Once {
            total: total.clone(),
            exited: Some(tx),
        }
        .start()
        .do_send(Hit(i));
        exits.push(rx);
    }
    for rx in exits {
        rx.await.ctx("waiting for an exit")?;
    }
    let elapsed = started.elapsed();
    check_eq("fork-join create sum", total.get(), sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// ThreadRing: passes the token on until it has no hops left.
struct RingNode {
    index: u64,
    next: Option<Addr<RingNode>>,
}

impl Actor for RingNode {
    type Context = Context<Self>;
}

struct Next(Addr<RingNode>);
impl Message for Next {
    type Result = ();
}

/// The token: hops still to make, hops made, and who to tell at the end.
struct Token {
    left: u64,
    hops: u64,
    done: oneshot::Sender<(u64, u64)>,
}
impl Message for Token {
    type Result = ();
}

impl Handler<Next> for RingNode {
    type Result = ();
    fn handle(&mut self, Next(next): Next, _ctx: &mut Context<Self>) {
        self.next = Some(next);
    }
}

impl Handler<Token> for RingNode {
    type Result = ();
    fn handle(&mut self, t: Token, _ctx: &mut Context<Self>) {
        match &self.next {
            Some(next) if t.left > 0 => next.do_send(Token {
                left: t.left - 1,
                hops: t.hops + 1,
                done: t.done,
            }),
            // The end (or a ring never closed, which the check catches).
            _ => {
                let _ = t.done.send((self.index, t.hops));
            }
        }
    }
}

impl Handler<Stop> for RingNode {
    type Result = ();
    fn handle(&mut self, _msg: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

pub(super) async fn thread_ring(actors: u64, hops: u64) -> Result<Timed> {
    let ring: Vec<_> = (0..actors)
        .map(|index| RingNode { index, next: None }.start())
        .collect();
    for (i, node) in ring.iter().enumerate() {
        node.do_send(Next(ring[(i + 1) % ring.len()].clone()));
    }
    let (done, result) = oneshot::channel();
    let started = Instant::now();
    ring[0].do_send(Token {
        left: hops,
        hops: 0,
        done,
    });
    let (last, made) = result.await.ctx("threadring")?;
    let elapsed = started.elapsed();
    for node in &ring {
        node.do_send(Stop);
    }
    check_eq("threadring hops", made, hops)?;
    check_eq("threadring last holder", last, hops % actors)?;
    Ok(Timed::new(elapsed, hops))
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

impl Actor for BigActor {
    type Context = Context<Self>;
}

enum BigMsg {
    Peers(Arc<Vec<Addr<BigActor>>>),
    Start,
    Ping(Addr<BigActor>),
    Pong,
}
impl Message for BigMsg {
    type Result = ();
}

impl BigActor {
    fn ping(&mut self, ctx: &mut Context<Self>) {
        if let Some(peers) = &self.peers {
            self.pings_left -= 1;
            let to = self.rng.neighbour(self.index, peers.len());
            peers[to].do_send(BigMsg::Ping(ctx.address()));
        }
    }
}

impl Handler<BigMsg> for BigActor {
    type Result = ();
    fn handle(&mut self, msg: BigMsg, ctx: &mut Context<Self>) {
        match msg {
            BigMsg::Peers(peers) => self.peers = Some(peers),
            BigMsg::Start => self.ping(ctx),
            BigMsg::Ping(from) => from.do_send(BigMsg::Pong),
            BigMsg::Pong => {
                self.pongs += 1;
                if self.pings_left > 0 {
                    self.ping(ctx);
                } else {
                    self.sink.do_send(Done(self.pongs));
                }
            }
        }
    }
}

impl Handler<Stop> for BigActor {
    type Result = ();
    fn handle(&mut self, _msg: Stop, ctx: &mut Context<Self>) {
        self.peers = None;
        ctx.stop();
    }
}

/// Big: adds up the reports and answers once all have come in.
struct Sink {
    reports: u64,
    total: u64,
    expect: u64,
    done: Option<oneshot::Sender<u64>>,
}

impl Actor for Sink {
    type Context = Context<Self>;
}

struct Done(u64);
impl Message for Done {
    type Result = ();
}

impl Handler<Done> for Sink {
    type Result = ();
    fn handle(&mut self, Done(pongs): Done, _ctx: &mut Context<Self>) {
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
    let sink = Sink {
        reports: 0,
        total: 0,
        expect: actors,
        done: Some(done),
    }
    .start();
    let all: Vec<_> = (0..actors as usize)
        .map(|index| {
            BigActor {
                index,
                pings_left: pings,
                pongs: 0,
                rng: XorShift::new(index as u64),
                peers: None,
                sink: sink.clone(),
            }
            .start()
        })
        .collect();
    let peers = Arc::new(all.clone());
    for a in &all {
        a.do_send(BigMsg::Peers(peers.clone()));
    }
    let started = Instant::now();
    for a in &all {
        a.do_send(BigMsg::Start);
    }
    let pongs = result.await.ctx("big")?;
    let elapsed = started.elapsed();
    for a in &all {
        a.do_send(Stop);
    }
    check_eq("big pongs", pongs, actors * pings)?;
    Ok(Timed::new(elapsed, 2 * actors * pings))
}

/// Levels of the skynet tree whose children are spread over the
/// arbiters; deeper nodes start their children on their own arbiter.
const SPREAD_LEVELS: u32 = 2;

/// Skynet: a node starts ten children (or, as a leaf, reports its
/// number), adds up their reports and passes the sum up.
struct Node {
    num: u64,
    size: u64,
    depth: u32,
    arbiters: Arc<Vec<ArbiterHandle>>,
    parent: Option<Addr<Node>>,
    reply: Option<oneshot::Sender<u64>>,
    sum: u64,
    pending: u32,
}

impl Actor for Node {
    type Context = Context<Self>;
}

struct Go;
impl Message for Go {
    type Result = ();
}

struct Value(u64);
impl Message for Value {
    type Result = ();
}

impl Node {
    fn report(&mut self, ctx: &mut Context<Self>, value: u64) {
        if let Some(parent) = &self.parent {
            parent.do_send(Value(value));
        } else if let Some(reply) = self.reply.take() {
            let _ = reply.send(value);
        }
        ctx.stop();
    }
}

impl Handler<Go> for Node {
    type Result = ();
    fn handle(&mut self, _msg: Go, ctx: &mut Context<Self>) {
        if self.size == 1 {
            return self.report(ctx, self.num);
        }
        let me = ctx.address();
        let child_size = self.size / 10;
        for i in 0..10 {
            let num = self.num + i * child_size;
            let child = Node {
                num,
                size: child_size,
                depth: self.depth + 1,
                arbiters: self.arbiters.clone(),
                parent: Some(me.clone()),
                reply: None,
                sum: 0,
                pending: 0,
            };
            let spread = self.depth < SPREAD_LEVELS && self.arbiters.len() > 1;
            let addr = if spread {
                let arbiter =
                    &self.arbiters[((num / child_size) % self.arbiters.len() as u64) as usize];
                Node::start_in_arbiter(arbiter, move |_| child)
            } else {
                child.start()
            };
            addr.do_send(Go);
        }
        self.pending = 10;
    }
}

impl Handler<Value> for Node {
    type Result = ();
    fn handle(&mut self, Value(v): Value, ctx: &mut Context<Self>) {
        self.sum += v;
        self.pending -= 1;
        if self.pending == 0 {
            self.report(ctx, self.sum);
        }
    }
}

/// Skynet over `arbiters`: the root starts on the first, the children of
/// the top levels go round-robin over them (like corelet's shards), the
/// rest stay on their parent's arbiter.
pub(super) async fn skynet(arbiters: Vec<ArbiterHandle>, leaves: u64) -> Result<Timed> {
    let (reply, result) = oneshot::channel();
    let home = arbiters.first().cloned().ctx("an arbiter")?;
    let started = Instant::now();
    let root = Node {
        num: 0,
        size: leaves,
        depth: 0,
        arbiters: Arc::new(arbiters),
        parent: None,
        reply: Some(reply),
        sum: 0,
        pending: 0,
    };
    let root = Node::start_in_arbiter(&home, move |_| root);
    root.do_send(Go);
    let sum = result.await.ctx("skynet")?;
    let elapsed = started.elapsed();
    check_eq("skynet sum", sum, sum_below(leaves))?;
    Ok(Timed::new(elapsed, 1))
}
