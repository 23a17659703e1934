//! Savina workloads and skynet on raw glommio: tasks wired together with
//! local channels when they start (a hand-written program knows its
//! topology), where the actor peers pass addresses in messages.

use super::{ask, spawn_counter, spawn_once, tell, CounterMsg, Executors};
use crate::check::{check_eq, BenchError, Ctx, Result, Timed, XorShift};
use crate::workload::sum_below;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel;
use glommio::Task;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;
use tokio::sync::oneshot;

/// Waits for every task in `tasks` (their senders must be gone).
async fn join_all(tasks: Vec<Task<()>>) {
    for t in tasks {
        t.await;
    }
}

pub(super) async fn ping_pong(rounds: u64) -> Result<Timed> {
    let (to_ping, ping_rx) = local_channel::new_unbounded::<()>();
    let (to_pong, pong_rx) = local_channel::new_unbounded::<()>();
    let (done, hits) = oneshot::channel::<u64>();
    let pings = Rc::new(Cell::new(0u64));
    // The ponger answers every ping; it stops when the pinger is gone.
    let counted = pings.clone();
    let ponger = glommio::spawn_local(async move {
        while pong_rx.recv().await.is_some() {
            counted.set(counted.get() + 1);
            if to_ping.try_send(()).is_err() {
                break;
            }
        }
    });
    // The pinger serves, then returns the ball until the rally is over.
    let pinger = glommio::spawn_local(async move {
        let mut hits = 0;
        if to_pong.try_send(()).is_err() {
            return;
        }
        while ping_rx.recv().await.is_some() {
            hits += 1;
            if hits == rounds {
                break;
            }
            if to_pong.try_send(()).is_err() {
                return;
            }
        }
        let _ = done.send(hits);
    });
    let started = Instant::now();
    let hits = hits.await.ctx("pingpong")?;
    let elapsed = started.elapsed();
    join_all(vec![pinger, ponger]).await;
    check_eq("pingpong pongs", hits, rounds)?;
    check_eq("pingpong pings", pings.get(), rounds)?;
    Ok(Timed::new(elapsed, 2 * rounds))
}

pub(super) async fn counting(n: u64) -> Result<Timed> {
    let (counter, counter_task) = spawn_counter();
    let (done, totals) = oneshot::channel();
    let started = Instant::now();
    // The producer: sends the numbers below `n`, then asks for the totals.
    let producer = glommio::spawn_local(async move {
        for i in 0..n {
            tell(&counter, CounterMsg::Add(i))?;
        }
        let got = ask(&counter, CounterMsg::Get).await;
        let _ = done.send(got);
        Ok::<_, BenchError>(())
    });
    let (count, sum) = totals.await.ctx("counting")??;
    let elapsed = started.elapsed();
    producer.await?;
    counter_task.await;
    check_eq("counting count", count, n)?;
    check_eq("counting sum", sum, sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

pub(super) async fn fork_join_throughput(workers: u64, per_worker: u64) -> Result<Timed> {
    let (pool, tasks): (Vec<_>, Vec<_>) = (0..workers).map(|_| spawn_counter()).unzip();
    let total = workers * per_worker;
    let started = Instant::now();
    for i in 0..total {
        tell(&pool[(i % workers) as usize], CounterMsg::Add(i))?;
    }
    let mut sum = 0;
    for w in &pool {
        let (count, s) = ask(w, CounterMsg::Get).await?;
        check_eq("fork-join per-worker count", count, per_worker)?;
        sum += s;
    }
    let elapsed = started.elapsed();
    drop(pool);
    join_all(tasks).await;
    check_eq("fork-join sum", sum, sum_below(total))?;
    Ok(Timed::new(elapsed, total))
}

pub(super) async fn fork_join_create(n: u64) -> Result<Timed> {
    let total = Rc::new(Cell::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (tx, task) = spawn_once(&total);
        tell(&tx, i)?;
        tasks.push(task);
    }
    join_all(tasks).await;
    let elapsed = started.elapsed();
    check_eq("fork-join create sum", total.get(), sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// The ThreadRing token: hops still to make, hops made, who to tell.
struct Token {
    left: u64,
    hops: u64,
    done: oneshot::Sender<(u64, u64)>,
}

pub(super) async fn thread_ring(actors: u64, hops: u64) -> Result<Timed> {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..actors)
        .map(|_| local_channel::new_unbounded::<Token>())
        .unzip();
    let senders: Vec<_> = senders.into_iter().map(Rc::new).collect();
    let mut tasks = Vec::with_capacity(actors as usize);
    for (index, rx) in receivers.into_iter().enumerate() {
        let next = senders[(index + 1) % senders.len()].clone();
        tasks.push(glommio::spawn_local(async move {
            while let Some(t) = rx.recv().await {
                if t.left == 0 {
                    let _ = t.done.send((index as u64, t.hops));
                    // The ring is done: dropping `next` lets it stop.
                    break;
                }
                let token = Token {
                    left: t.left - 1,
                    hops: t.hops + 1,
                    done: t.done,
                };
                if next.try_send(token).is_err() {
                    break;
                }
            }
        }));
    }
    let (done, result) = oneshot::channel();
    let started = Instant::now();
    tell(
        &senders[0],
        Token {
            left: hops,
            hops: 0,
            done,
        },
    )?;
    let (last, made) = result.await.ctx("threadring")?;
    let elapsed = started.elapsed();
    drop(senders);
    join_all(tasks).await;
    check_eq("threadring hops", made, hops)?;
    check_eq("threadring last holder", last, hops % actors)?;
    Ok(Timed::new(elapsed, hops))
}

/// Messages of a Big task.
enum BigMsg {
    /// Send the first ping.
    Start,
    /// A ping from the task with this index: answer it.
    Ping(usize),
    /// The answer to one of this task's pings.
    Pong,
    /// Stop (the peers hold each other's senders, a cycle).
    Stop,
}

pub(super) async fn big(actors: u64, pings: u64) -> Result<Timed> {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..actors)
        .map(|_| local_channel::new_unbounded::<BigMsg>())
        .unzip();
    let peers = Rc::new(senders);
    let (to_sink, sink_rx) = local_channel::new_unbounded::<u64>();
    let to_sink = Rc::new(to_sink);
    let mut tasks = Vec::with_capacity(actors as usize);
    for (index, rx) in receivers.into_iter().enumerate() {
        let (peers, sink) = (peers.clone(), to_sink.clone());
        tasks.push(glommio::spawn_local(async move {
            let mut rng = XorShift::new(index as u64);
            let (mut left, mut pongs) = (pings, 0u64);
            let mut ping = |left: &mut u64| {
                *left -= 1;
                let to = rng.neighbour(index, peers.len());
                let _ = peers[to].try_send(BigMsg::Ping(index));
            };
            while let Some(msg) = rx.recv().await {
                match msg {
                    BigMsg::Start => ping(&mut left),
                    BigMsg::Ping(from) => {
                        let _ = peers[from].try_send(BigMsg::Pong);
                    }
                    BigMsg::Pong => {
                        pongs += 1;
                        if left > 0 {
                            ping(&mut left);
                        } else {
                            let _ = sink.try_send(pongs);
                        }
                    }
                    BigMsg::Stop => break,
                }
            }
        }));
    }
    drop(to_sink);
    // The sink adds up the reports and answers once all have come in.
    let (done, result) = oneshot::channel();
    let sink = glommio::spawn_local(async move {
        let mut total = 0;
        for _ in 0..actors {
            match sink_rx.recv().await {
                Some(pongs) => total += pongs,
                None => return,
            }
        }
        let _ = done.send(total);
    });
    let started = Instant::now();
    for p in peers.iter() {
        tell(p, BigMsg::Start)?;
    }
    let pongs = result.await.ctx("big")?;
    let elapsed = started.elapsed();
    for p in peers.iter() {
        tell(p, BigMsg::Stop)?;
    }
    drop(peers);
    tasks.push(sink);
    join_all(tasks).await;
    check_eq("big pongs", pongs, actors * pings)?;
    Ok(Timed::new(elapsed, 2 * actors * pings))
}

/// A skynet node as a task: a leaf sends its number to its parent; an
/// inner node spawns ten children, adds up the ten sums they send on its
/// channel and sends the total to its parent.
async fn node(num: u64, size: u64, parent: Rc<LocalSender<u64>>) {
    if size == 1 {
        let _ = parent.try_send(num);
        return;
    }
    let (tx, rx) = local_channel::new_bounded(10);
    let tx = Rc::new(tx);
    let child = size / 10;
    for i in 0..10 {
        glommio::spawn_local(node(num + i * child, child, tx.clone())).detach();
    }
    drop(tx);
    let mut sum = 0;
    while let Some(v) = rx.recv().await {
        sum += v;
    }
    let _ = parent.try_send(sum);
}

/// The subtrees of the root with these indexes (of ten, each of
/// `leaves / 10` leaves), run as task trees on this executor; returns
/// their sum.
async fn subtrees(leaves: u64, which: impl Iterator<Item = u64>) -> Result<u64> {
    let (tx, rx) = local_channel::new_unbounded();
    let tx = Rc::new(tx);
    let child = leaves / 10;
    for i in which {
        glommio::spawn_local(node(i * child, child, tx.clone())).detach();
    }
    drop(tx);
    let mut sum = 0;
    while let Some(v) = rx.recv().await {
        sum += v;
    }
    Ok(sum)
}

/// Skynet on two executors: the root (on executor 0) tells executor 1 to
/// start, runs the even-numbered of its ten subtrees while executor 1 runs
/// the odd-numbered ones, and adds the two partial sums. Every other node
/// is a task on its subtree's executor. The result is the whole run.
pub(super) fn skynet(ex: &Executors, leaves: u64) -> Result<Timed> {
    if leaves < 10 {
        return Err(BenchError("skynet needs at least 10 leaves".into()));
    }
    let (go_tx, go_rx) = shared_channel::new_bounded::<()>(1);
    let (part_tx, part_rx) = shared_channel::new_bounded::<u64>(1);
    let (timed, ()) = ex.run_pair(
        move || async move {
            let go = go_tx.connect().await;
            let part = part_rx.connect().await;
            let started = Instant::now();
            go.send(())
                .await
                .map_err(|_| BenchError("skynet: executor 1 gone".into()))?;
            let mine = subtrees(leaves, (0..10).step_by(2)).await?;
            let theirs = part.recv().await.ctx("skynet partial sum")?;
            let elapsed = started.elapsed();
            check_eq("skynet sum", mine + theirs, sum_below(leaves))?;
            Ok(Timed::new(elapsed, 1))
        },
        move || async move {
            let go = go_rx.connect().await;
            let part = part_tx.connect().await;
            go.recv().await.ctx("skynet start")?;
            let sum = subtrees(leaves, (1..10).step_by(2)).await?;
            part.send(sum)
                .await
                .map_err(|_| BenchError("skynet: executor 0 gone".into()))?;
            Ok(())
        },
    )?;
    Ok(timed)
}
