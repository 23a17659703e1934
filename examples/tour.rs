//! A guided run of corelet: processes on every shard, cross-shard
//! ping-pong, an ask, a terminate and wait, then per-shard counters.
//!
//! ```text
//! cargo run --release --example tour
//! CORELET_SHARDS=8 CORELET_PIN=0 cargo run --release --example tour
//! ```

use corelet::{Addr, Context, ExitReason, HandlerResult, Process, ReplyTo, Runtime, ShardId};
use std::time::Instant;

/// Bounces a ball with a partner until the rally is over.
struct Player {
    hits: u64,
}

enum Ball {
    /// Serve to `partner`: start a rally of `rounds` hits.
    Serve { partner: Addr<Player>, rounds: u64 },
    /// The ball, with the hits left and who sent it.
    Hit { left: u64, from: Addr<Player> },
    /// How many hits has this player made?
    Hits(ReplyTo<u64>),
}

impl Process for Player {
    type Msg = Ball;

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: Ball) -> HandlerResult {
        match msg {
            Ball::Serve { partner, rounds } => {
                partner.tell(Ball::Hit {
                    left: rounds,
                    from: ctx.addr(),
                })?;
            }
            Ball::Hit { left, from } => {
                self.hits += 1;
                if left > 1 {
                    from.tell(Ball::Hit {
                        left: left - 1,
                        from: ctx.addr(),
                    })?;
                }
            }
            Ball::Hits(reply) => reply.send(self.hits),
        }
        Ok(())
    }

    async fn terminate(&mut self, ctx: &mut Context<Self>, reason: &ExitReason) {
        println!("  {} stops ({reason}) after {} hits", ctx.pid(), self.hits);
    }
}

const ROUNDS: u64 = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rt = Runtime::builder().name("tour").build()?;
    let n = rt.shard_count();
    println!("corelet tour: {n} shards");

    // One player per shard, each built on its own shard.
    let players: Vec<Addr<Player>> = (0..n)
        .map(|i| rt.spawn_on(ShardId(i as u16), || Player { hits: 0 }))
        .collect::<Result<_, _>>()?;
    for p in &players {
        println!("  spawned {}", p.pid());
    }

    // Each player serves to the player on the next shard: a ring of
    // cross-shard rallies, all running at once.
    let started = Instant::now();
    let rally = players.clone();
    let total: u64 = rt.block_on(ShardId(0), move || async move {
        for (i, p) in rally.iter().enumerate() {
            let partner = rally[(i + 1) % rally.len()];
            p.tell(Ball::Serve {
                partner,
                rounds: ROUNDS,
            })
            .expect("player is alive");
        }
        // Ask every player for its count until all rallies are over.
        loop {
            let mut sum = 0;
            for p in &rally {
                sum += p.ask(Ball::Hits).await.expect("player answers");
            }
            if sum == ROUNDS * rally.len() as u64 {
                break sum;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
    })?;
    let elapsed = started.elapsed();
    println!(
        "ping-pong: {total} hits in {:.1} ms ({:.0} ns per cross-shard message)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / total as f64
    );

    // An ask from outside the runtime.
    let hits = rt.ask(&players[0], Ball::Hits)?;
    println!(
        "ask from main thread: {} made {hits} hits",
        players[0].pid()
    );

    // Terminate one player and wait for it; a message to it afterwards is
    // a dead letter, and its pid stays stale forever.
    let last = players[n - 1];
    let watch = rt.watch(last.pid())?;
    rt.terminate(last.pid())?;
    let reason = watch.wait()?;
    println!("terminated {} -> {reason}", last.pid());
    let late = rt.ask(&last, Ball::Hits);
    println!("ask to the terminated player: {late:?}");
    assert!(late.is_err());
    assert!(matches!(
        rt.wait(last.pid()),
        Err(corelet::Error::NoProcess(_))
    ));

    println!("\nshard  alive  spawned  exited  handled  cross-sent  cross-recv  dead-letters");
    for s in rt.stats()? {
        println!(
            "{:>5}  {:>5}  {:>7}  {:>6}  {:>7}  {:>10}  {:>10}  {:>12}",
            s.shard,
            s.alive,
            s.spawned,
            s.exited,
            s.messages,
            s.cross_sent,
            s.cross_received,
            s.dead_letters
        );
    }
    rt.shutdown()?;
    println!("\nshutdown complete");
    Ok(())
}
