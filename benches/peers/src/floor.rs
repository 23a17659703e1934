//! Cross-shard ask against the hardware, on the same two shard threads at
//! the same time (`corelet-peers --floor`).
//!
//! On a VM the cost of moving a cache line between two vCPUs depends on
//! where the hypervisor runs them, and that changes from one minute to the
//! next (on the 2-vCPU development VM a spinning cache-line round trip has
//! measured 87 ns and 620 ns in the same quarter of an hour). A
//! cross-shard ask measured on its own therefore says little about
//! corelet's own cost. This probe alternates, in blocks, corelet's
//! cross-shard ask with a bare round trip over two of corelet's own SPSC
//! rings (`corelet_cross_shard::ring`, the same 56-byte values and stamps
//! that carry envelopes), run by the very threads of the two shards: the
//! echo spins inside a process handler on shard 1, the asker inside a task
//! on shard 0. A block of each takes a few milliseconds, so the pair of
//! blocks sees the same placement, and the difference is what corelet's
//! scheduler, tables and mailboxes add to the rings.
//!
//! A module of the `corelet-peers` binary, not of the library that holds
//! the workloads: in the same crate, its process types and asks changed
//! how the compiler split and inlined the workloads' code, and with it
//! their instruction counts (`--instructions`: spawn + message + exit
//! 1,176 -> 1,230, local ask 497 -> 500).

use corelet::{Context, Handled, Process, ReplyTo, Runtime, ShardId};
use corelet_cross_shard::{ring, Consumer, Producer};
use corelet_peers::check::{check_eq, BenchError, Ctx, Result};
use corelet_peers::on_corelet::stop_all;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A value the size of an envelope: with its stamp, one 64-byte slot.
#[derive(Clone, Copy)]
struct Line([u64; 7]);

/// Ends an echo's loop.
const STOP: u64 = u64::MAX;

/// One pair of blocks: ns per bare ring round trip and per corelet ask.
#[derive(Clone, Copy, Debug)]
pub struct FloorBlock {
    /// ns per round trip over the two bare rings.
    pub ring_ns: f64,
    /// ns per cross-shard `ask` of a [`Tally`] on shard 1.
    pub ask_ns: f64,
}

/// Counts the asks it answers: the asked side of the probe's `ask`s.
///
#[derive(Default)]
struct Tally(u64);

/// The one message of [`Tally`]: count one and answer the count.
struct Inc(ReplyTo<u64>);

impl Process for Tally {
    type Msg = Inc;

    fn handle_now(&mut self, _ctx: &mut Context<Self>, Inc(reply): Inc) -> Handled<Inc> {
        self.0 += 1;
        reply.send(self.0);
        Handled::Done(Ok(()))
    }
}

/// Echoes every line it pops from a bare ring, spinning in its handler
/// (so on shard 1's thread, with that shard's scheduler held) until it
/// pops [`STOP`] or the pinger's end of the ring is gone.
#[derive(Default)]
struct RingEcho;

/// The one message of [`RingEcho`]: the rings to echo over, and a flag to
/// raise once the loop runs.
struct Echo(Consumer<Line>, Producer<Line>, Arc<AtomicBool>);

impl Process for RingEcho {
    type Msg = Echo;

    fn handle_now(&mut self, _ctx: &mut Context<Self>, msg: Echo) -> Handled<Echo> {
        let Echo(mut requests, mut replies, started) = msg;
        // Release: the pinger's Acquire load sees the flag; nothing else
        // rides on it.
        started.store(true, Ordering::Release);
        let mut idle = 0u32;
        loop {
            match requests.pop() {
                Some(line) if line.0[0] == STOP => break,
                Some(line) => {
                    // One request in flight at a time: there is always room.
                    if replies.push(line).is_err() {
                        break;
                    }
                    replies.publish();
                    idle = 0;
                }
                None => {
                    idle = idle.wrapping_add(1);
                    // A pinger that failed drops its producer: stop then.
                    if idle % 4096 == 0 && requests.is_abandoned() && requests.is_empty() {
                        break;
                    }
                    std::hint::spin_loop();
                }
            }
        }
        Handled::Done(Ok(()))
    }
}

/// `blocks` pairs of blocks, each of `per_block` round trips: a block of
/// bare ring round trips between shard 0's task and a [`RingEcho`] on shard
/// 1, then a block of cross-shard asks of a [`Tally`] on shard 1.
///
/// Each round trip is checked (the echo returns the value sent, the
/// counter the count), so a wrong answer aborts.
pub fn ask_against_ring(rt: &Runtime, blocks: usize, per_block: u64) -> Result<Vec<FloorBlock>> {
    let shards = rt.shard_count();
    if shards < 2 {
        return Err(BenchError(format!(
            "the floor probe needs two shards, the runtime has {shards}"
        )));
    }
    let counter = rt.spawn_on(ShardId(1), Tally::default).ctx("spawn_on")?;
    let echo = rt.spawn_on(ShardId(1), RingEcho::default).ctx("spawn_on")?;
    rt.block_on(ShardId(0), move || async move {
        let mut asked = 0u64;
        // Warm both paths once, untimed.
        ring_block(echo, per_block.min(1_000)).await?;
        for _ in 0..per_block.min(1_000) {
            asked = counter.ask(Inc).await.ctx("ask")?;
        }
        let mut out = Vec::with_capacity(blocks);
        for _ in 0..blocks {
            let ring_ns = ring_block(echo, per_block).await?;
            let started = Instant::now();
            for _ in 0..per_block {
                asked = counter.ask(Inc).await.ctx("ask")?;
            }
            let ask_ns = started.elapsed().as_nanos() as f64 / per_block.max(1) as f64;
            out.push(FloorBlock { ring_ns, ask_ns });
        }
        check_eq(
            "asks answered",
            asked,
            per_block.min(1_000) + blocks as u64 * per_block,
        )?;
        stop_all([counter.pid(), echo.pid()]).await?;
        Ok(out)
    })
    .ctx("corelet block_on")?
}

/// Hands [`RingEcho`] a fresh pair of rings, waits until its loop runs,
/// then times `n` round trips over them; returns ns per round trip.
async fn ring_block(echo: corelet::Addr<RingEcho>, n: u64) -> Result<f64> {
    let (mut requests, theirs_in) = ring::<Line>(1024);
    let (theirs_out, mut replies) = ring::<Line>(1024);
    let started = Arc::new(AtomicBool::new(false));
    echo.tell(Echo(theirs_in, theirs_out, started.clone()))
        .map_err(|e| BenchError(format!("telling the echo: {e}")))?;
    // The tell leaves this shard when its scheduler round ends: give the
    // thread back (a timer, not a busy yield) until the echo has started.
    let waiting = Instant::now();
    // Acquire: pairs with the echo's Release store.
    while !started.load(Ordering::Acquire) {
        if waiting.elapsed() > Duration::from_secs(10) {
            return Err(BenchError("the ring echo did not start".into()));
        }
        glommio::timer::sleep(Duration::from_micros(1)).await;
    }
    let mut line = Line([0; 7]);
    let timed = Instant::now();
    let mut failed = None;
    for i in 0..n {
        line.0[0] = i;
        if requests.push(line).is_err() {
            failed = Some(format!("request {i}: ring full"));
            break;
        }
        requests.publish();
        let back = loop {
            if let Some(back) = replies.pop() {
                break back;
            }
            std::hint::spin_loop();
        };
        if back.0[0] != i {
            failed = Some(format!("request {i} echoed as {}", back.0[0]));
            break;
        }
    }
    let ns = timed.elapsed().as_nanos() as f64 / n.max(1) as f64;
    line.0[0] = STOP;
    // On a failure above, dropping `requests` (publishing) also ends the
    // echo; the STOP is for the normal end.
    let _ = requests.push(line);
    requests.publish();
    match failed {
        Some(why) => Err(BenchError(format!("bare ring round trip: {why}"))),
        None => Ok(ns),
    }
}

/// The median of `xs` (NaN when empty).
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

/// The text `corelet-peers --floor` prints: every pair of blocks, then
/// the medians of the ring, the ask, their difference and their ratio.
pub fn floor_text(blocks: &[FloorBlock], per_block: u64, pinned: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "cross-shard ask against a bare ring round trip, on the same two shard threads \
         ({}, {} blocks of {per_block} each, alternated)",
        if pinned { "pinned" } else { "unpinned" },
        blocks.len()
    );
    let _ = writeln!(
        s,
        "{:>5} {:>12} {:>12} {:>12} {:>7}",
        "block", "ring ns", "ask ns", "ask - ring", "ratio"
    );
    for (i, b) in blocks.iter().enumerate() {
        let _ = writeln!(
            s,
            "{:>5} {:>12.1} {:>12.1} {:>12.1} {:>7.2}",
            i + 1,
            b.ring_ns,
            b.ask_ns,
            b.ask_ns - b.ring_ns,
            b.ask_ns / b.ring_ns
        );
    }
    let col = |f: &dyn Fn(&FloorBlock) -> f64| median(blocks.iter().map(f).collect());
    let _ = writeln!(
        s,
        "{:>5} {:>12.1} {:>12.1} {:>12.1} {:>7.2}",
        "med",
        col(&|b| b.ring_ns),
        col(&|b| b.ask_ns),
        col(&|b| b.ask_ns - b.ring_ns),
        col(&|b| b.ask_ns / b.ring_ns)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_shards() -> Runtime {
        Runtime::builder()
            .shards(2)
            .pin(false)
            .build()
            .expect("runtime")
    }

    /// Every block is measured, every answer checked, and shard 1 is free
    /// again afterwards: the echo's loop ended on its STOP.
    #[test]
    fn every_block_is_measured_and_the_echo_lets_its_shard_go() {
        let rt = two_shards();
        let blocks = ask_against_ring(&rt, 3, 200).expect("probe");
        assert_eq!(blocks.len(), 3);
        for b in &blocks {
            assert!(b.ring_ns.is_finite() && b.ring_ns > 0.0, "{b:?}");
            assert!(b.ask_ns.is_finite() && b.ask_ns > 0.0, "{b:?}");
        }
        let answer = rt
            .block_on(ShardId(0), || async {
                let counter = corelet::spawn_on(ShardId(1), Tally::default).await?;
                let n = counter.ask(Inc).await;
                corelet::terminate(counter.pid())?;
                Ok::<_, corelet::Error>(n)
            })
            .expect("block_on")
            .expect("spawn");
        assert_eq!(answer, Ok(1));
    }

    #[test]
    fn one_shard_is_refused_with_a_reason() {
        let rt = Runtime::builder()
            .shards(1)
            .pin(false)
            .build()
            .expect("runtime");
        let err = ask_against_ring(&rt, 1, 10).expect_err("one shard");
        assert!(err.to_string().contains("two shards"), "{err}");
    }

    #[test]
    fn the_text_ends_with_the_medians_of_each_column() {
        let blocks = [
            FloorBlock {
                ring_ns: 100.0,
                ask_ns: 400.0,
            },
            FloorBlock {
                ring_ns: 200.0,
                ask_ns: 500.0,
            },
            FloorBlock {
                ring_ns: 150.0,
                ask_ns: 450.0,
            },
        ];
        let text = floor_text(&blocks, 10, true);
        let last = text.lines().last().expect("lines");
        let cols: Vec<&str> = last.split_whitespace().collect();
        // ring 150, ask 450, difference 300, ratio median of 4, 2.5, 3.
        assert_eq!(cols, ["med", "150.0", "450.0", "300.0", "3.00"]);
        assert!(text.contains("pinned, 3 blocks of 10 each"), "{text}");
        assert!(median(Vec::new()).is_nan());
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
