//! Savina workloads and skynet on stakker, on one thread.

use super::{answer, counter, run_queue, take, Counter, Once};
use crate::check::{check_eq, BenchError, Result, Timed, XorShift};
use crate::workload::{skynet_processes, sum_below};
use stakker::{actor, call, ret_nop, ret_some_do};
use stakker::{Actor, ActorOwn, Ret, Stakker, StopCause, CX};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

/// PingPong: serves, then returns the ball until the rally is over.
struct Pinger {
    pong: Actor<Ponger>,
    left: u64,
    hits: u64,
    done: Option<Ret<u64>>,
}

impl Pinger {
    fn init(_: CX![], pong: Actor<Ponger>) -> Option<Self> {
        Some(Pinger {
            pong,
            left: 0,
            hits: 0,
            done: None,
        })
    }

    fn start(&mut self, cx: CX![], rounds: u64, done: Ret<u64>) {
        self.left = rounds;
        self.done = Some(done);
        call!([self.pong], ping(cx.this().clone()));
    }

    fn pong(&mut self, cx: CX![]) {
        self.hits += 1;
        self.left -= 1;
        if self.left == 0 {
            if let Some(done) = self.done.take() {
                done.ret(self.hits);
            }
        } else {
            call!([self.pong], ping(cx.this().clone()));
        }
    }
}

/// PingPong: answers every ping.
struct Ponger {
    pings: u64,
}

impl Ponger {
    fn init(_: CX![]) -> Option<Self> {
        Some(Ponger { pings: 0 })
    }

    fn ping(&mut self, _: CX![], from: Actor<Pinger>) {
        self.pings += 1;
        call!([from], pong());
    }

    fn count(&self, _: CX![], ret: Ret<u64>) {
        ret.ret(self.pings);
    }
}

pub(super) fn ping_pong(s: &mut Stakker, rounds: u64) -> Result<Timed> {
    let pong = actor!(s, Ponger::init(), ret_nop!());
    let ping = actor!(s, Pinger::init(pong.clone()), ret_nop!());
    run_queue(s);
    let (done, hits) = answer();
    let started = Instant::now();
    call!([ping], start(rounds, done));
    run_queue(s);
    let elapsed = started.elapsed();
    let (ret, pings) = answer();
    call!([pong], count(ret));
    run_queue(s);
    drop((ping, pong));
    run_queue(s);
    check_eq("pingpong pongs", take(&hits, "pingpong")?, rounds)?;
    check_eq("pingpong pings", take(&pings, "pingpong count")?, rounds)?;
    Ok(Timed::new(elapsed, 2 * rounds))
}

/// Counting: sends the numbers below `n` to a counter, then asks it for
/// its totals on behalf of the driver.
struct Producer {
    to: Actor<Counter>,
}

impl Producer {
    fn init(_: CX![], to: Actor<Counter>) -> Option<Self> {
        Some(Producer { to })
    }

    fn run(&mut self, _: CX![], n: u64, done: Ret<(u64, u64)>) {
        for i in 0..n {
            call!([self.to], add(i));
        }
        call!([self.to], get(done));
    }
}

pub(super) fn counting(s: &mut Stakker, n: u64) -> Result<Timed> {
    let c = counter(s);
    let producer = actor!(s, Producer::init(c.clone()), ret_nop!());
    run_queue(s);
    let (done, totals) = answer();
    let started = Instant::now();
    call!([producer], run(n, done));
    run_queue(s);
    let elapsed = started.elapsed();
    drop((producer, c));
    run_queue(s);
    let (count, sum) = take(&totals, "counting")?;
    check_eq("counting count", count, n)?;
    check_eq("counting sum", sum, sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

pub(super) fn fork_join_throughput(
    s: &mut Stakker,
    workers: u64,
    per_worker: u64,
) -> Result<Timed> {
    let pool: Vec<_> = (0..workers).map(|_| counter(s)).collect();
    let total = workers * per_worker;
    let started = Instant::now();
    for i in 0..total {
        call!([pool[(i % workers) as usize]], add(i));
    }
    let slots: Vec<_> = pool
        .iter()
        .map(|w| {
            let (ret, slot) = answer();
            call!([w], get(ret));
            slot
        })
        .collect();
    run_queue(s);
    let elapsed = started.elapsed();
    drop(pool);
    run_queue(s);
    let mut sum = 0;
    for slot in &slots {
        let (count, part) = take(slot, "fork-join")?;
        check_eq("fork-join per-worker count", count, per_worker)?;
        sum += part;
    }
    check_eq("fork-join sum", sum, sum_below(total))?;
    Ok(Timed::new(elapsed, total))
}

pub(super) fn fork_join_create(s: &mut Stakker, n: u64) -> Result<Timed> {
    let total = Rc::new(Cell::new(0));
    let stopped = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let mut all = Vec::with_capacity(n as usize);
    for i in 0..n {
        let count = stopped.clone();
        let once = actor!(
            s,
            Once::init(total.clone()),
            ret_some_do!(move |cause: StopCause| {
                if matches!(cause, StopCause::Stopped) {
                    count.set(count.get() + 1);
                }
            })
        );
        call!([once], hit(i));
        all.push(once);
    }
    run_queue(s);
    let elapsed = started.elapsed();
    drop(all);
    run_queue(s);
    check_eq("fork-join create stopped", stopped.get(), n)?;
    check_eq("fork-join create sum", total.get(), sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// ThreadRing: passes the token on until it has no hops left.
struct RingNode {
    index: u64,
    next: Option<Actor<RingNode>>,
}

impl RingNode {
    fn init(_: CX![], index: u64) -> Option<Self> {
        Some(RingNode { index, next: None })
    }

    fn set_next(&mut self, _: CX![], next: Actor<RingNode>) {
        self.next = Some(next);
    }

    /// The token: hops still to make, hops made, who to tell at the end.
    fn token(&mut self, _: CX![], left: u64, hops: u64, done: Ret<(u64, u64)>) {
        match &self.next {
            Some(next) if left > 0 => call!([next], token(left - 1, hops + 1, done)),
            // The end (or a ring never closed, which the check catches).
            _ => done.ret((self.index, hops)),
        }
    }
}

pub(super) fn thread_ring(s: &mut Stakker, actors: u64, hops: u64) -> Result<Timed> {
    let ring: Vec<_> = (0..actors)
        .map(|index| actor!(s, RingNode::init(index), ret_nop!()))
        .collect();
    for (i, node) in ring.iter().enumerate() {
        let next: Actor<RingNode> = (*ring[(i + 1) % ring.len()]).clone();
        call!([node], set_next(next));
    }
    run_queue(s);
    let (done, result) = answer();
    let started = Instant::now();
    call!([ring[0]], token(hops, 0, done));
    run_queue(s);
    let elapsed = started.elapsed();
    drop(ring);
    run_queue(s);
    let (last, made) = take(&result, "threadring")?;
    check_eq("threadring hops", made, hops)?;
    check_eq("threadring last holder", last, hops % actors)?;
    Ok(Timed::new(elapsed, hops))
}

/// Big: pings random neighbours, answers their pings, reports to the sink
/// once all its own pings are answered.
struct BigActor {
    index: usize,
    left: u64,
    pongs: u64,
    rng: XorShift,
    peers: Option<Rc<Vec<Actor<BigActor>>>>,
    sink: Actor<Sink>,
}

impl BigActor {
    fn init(_: CX![], index: usize, pings: u64, sink: Actor<Sink>) -> Option<Self> {
        Some(BigActor {
            index,
            left: pings,
            pongs: 0,
            rng: XorShift::new(index as u64),
            peers: None,
            sink,
        })
    }

    fn set_peers(&mut self, _: CX![], peers: Rc<Vec<Actor<BigActor>>>) {
        self.peers = Some(peers);
    }

    fn start(&mut self, cx: CX![]) {
        self.send_ping(cx);
    }

    fn send_ping(&mut self, cx: CX![]) {
        if let Some(peers) = &self.peers {
            self.left -= 1;
            let to = self.rng.neighbour(self.index, peers.len());
            call!([peers[to]], ping(cx.this().clone()));
        }
    }

    fn ping(&mut self, _: CX![], from: Actor<BigActor>) {
        call!([from], pong());
    }

    fn pong(&mut self, cx: CX![]) {
        self.pongs += 1;
        if self.left > 0 {
            self.send_ping(cx);
        } else {
            call!([self.sink], done(self.pongs));
        }
    }
}

/// Big: adds up the reports and answers once all have come in.
struct Sink {
    reports: u64,
    total: u64,
    expect: u64,
    reply: Option<Ret<u64>>,
}

impl Sink {
    fn init(_: CX![], expect: u64, reply: Ret<u64>) -> Option<Self> {
        Some(Sink {
            reports: 0,
            total: 0,
            expect,
            reply: Some(reply),
        })
    }

    fn done(&mut self, _: CX![], pongs: u64) {
        self.reports += 1;
        self.total += pongs;
        if self.reports == self.expect {
            if let Some(reply) = self.reply.take() {
                reply.ret(self.total);
            }
        }
    }
}

pub(super) fn big(s: &mut Stakker, actors: u64, pings: u64) -> Result<Timed> {
    let (reply, result) = answer();
    let sink = actor!(s, Sink::init(actors, reply), ret_nop!());
    let all: Vec<_> = (0..actors as usize)
        .map(|index| {
            let sink: Actor<Sink> = (*sink).clone();
            actor!(s, BigActor::init(index, pings, sink), ret_nop!())
        })
        .collect();
    let peers: Rc<Vec<Actor<BigActor>>> = Rc::new(all.iter().map(|a| (**a).clone()).collect());
    for a in &all {
        call!([a], set_peers(peers.clone()));
    }
    drop(peers);
    run_queue(s);
    let started = Instant::now();
    for a in &all {
        call!([a], start());
    }
    run_queue(s);
    let elapsed = started.elapsed();
    drop((all, sink));
    run_queue(s);
    check_eq("big pongs", take(&result, "big")?, actors * pings)?;
    Ok(Timed::new(elapsed, 2 * actors * pings))
}

/// Skynet: a node spawns ten children (or, as a leaf, reports its
/// number), adds up their reports and passes the sum up. A node owns its
/// children (`ActorOwn`) until it reports.
struct Node {
    parent: Option<Actor<Node>>,
    reply: Option<Ret<u64>>,
    children: Vec<ActorOwn<Node>>,
    sum: u64,
    pending: u32,
}

impl Node {
    fn init(
        cx: CX![],
        num: u64,
        size: u64,
        parent: Option<Actor<Node>>,
        reply: Option<Ret<u64>>,
        spawned: Rc<Cell<u64>>,
    ) -> Option<Self> {
        spawned.set(spawned.get() + 1);
        let mut node = Node {
            parent,
            reply,
            children: Vec::new(),
            sum: 0,
            pending: 0,
        };
        if size == 1 {
            node.report(cx, num);
            return Some(node);
        }
        let child = size / 10;
        node.children.reserve_exact(10);
        for i in 0..10 {
            let me = Some(cx.this().clone());
            let spawned = spawned.clone();
            node.children.push(actor!(
                cx,
                Node::init(num + i * child, child, me, None, spawned),
                ret_nop!()
            ));
        }
        node.pending = 10;
        Some(node)
    }

    fn report(&mut self, cx: CX![], value: u64) {
        if let Some(parent) = &self.parent {
            call!([parent], value(value));
        } else if let Some(reply) = self.reply.take() {
            reply.ret(value);
        }
        cx.stop();
    }

    fn value(&mut self, cx: CX![], v: u64) {
        self.sum += v;
        self.pending -= 1;
        if self.pending == 0 {
            self.children.clear();
            self.report(cx, self.sum);
        }
    }
}

/// Skynet on one thread (stakker has no other). The result is the whole
/// run.
pub(super) fn skynet(s: &mut Stakker, leaves: u64) -> Result<Timed> {
    let spawned = Rc::new(Cell::new(0));
    let (reply, result) = answer();
    let started = Instant::now();
    let root = actor!(
        s,
        Node::init(0, leaves, None, Some(reply), spawned.clone()),
        ret_nop!()
    );
    run_queue(s);
    let elapsed = started.elapsed();
    drop(root);
    run_queue(s);
    let sum = take(&result, "skynet")?;
    check_eq("skynet sum", sum, sum_below(leaves))?;
    if spawned.get() != skynet_processes(leaves) {
        return Err(BenchError(format!("skynet: {} actors", spawned.get())));
    }
    Ok(Timed::new(elapsed, 1))
}
