//! Criterion benches of corelet's core paths (one shard unless stated).
//! Every workload checks its result before its time counts.
//!
//! ```text
//! cargo bench --bench core
//! ```

use corelet::{Context, HandlerResult, Process, ReplyTo, Runtime, ShardId};
use criterion::{criterion_main, Criterion, Throughput};
use std::time::Instant;

/// Counts what it is told; answers with the count.
#[derive(Default)]
struct Sink(u64);

enum SinkMsg {
    Add,
    Count(ReplyTo<u64>),
}

impl Process for Sink {
    type Msg = SinkMsg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: SinkMsg) -> HandlerResult {
        match msg {
            SinkMsg::Add => self.0 += 1,
            SinkMsg::Count(reply) => reply.send(self.0),
        }
        Ok(())
    }
}

/// Handles one message, then stops.
struct OneShot;

impl Process for OneShot {
    type Msg = ();
    async fn handle(&mut self, ctx: &mut Context<Self>, _msg: ()) -> HandlerResult {
        ctx.stop();
        Ok(())
    }
}

fn runtime(shards: usize) -> Runtime {
    Runtime::builder()
        .shards(shards)
        .pin(false)
        .build()
        .expect("runtime")
}

fn local(c: &mut Criterion) {
    let rt = runtime(1);
    let mut g = c.benchmark_group("local");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tell", |b| {
        b.iter_custom(|iters| {
            rt.block_on(ShardId(0), move || async move {
                let sink = corelet::spawn(Sink::default()).unwrap();
                let start = Instant::now();
                for _ in 0..iters {
                    sink.tell_local(SinkMsg::Add).unwrap();
                }
                let count = sink.ask_local(SinkMsg::Count).await.unwrap();
                let elapsed = start.elapsed();
                assert_eq!(count, iters, "every tell arrived");
                corelet::terminate(sink.pid()).unwrap();
                elapsed
            })
            .unwrap()
        })
    });
    g.bench_function("ask", |b| {
        b.iter_custom(|iters| {
            rt.block_on(ShardId(0), move || async move {
                let sink = corelet::spawn(Sink::default()).unwrap();
                let start = Instant::now();
                for i in 0..iters {
                    let n = sink.ask_local(SinkMsg::Count).await.unwrap();
                    assert_eq!(n, 0, "ask {i} answered");
                }
                let elapsed = start.elapsed();
                corelet::terminate(sink.pid()).unwrap();
                elapsed
            })
            .unwrap()
        })
    });
    g.bench_function("spawn_message_exit", |b| {
        b.iter_custom(|iters| {
            rt.block_on(ShardId(0), move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let p = corelet::spawn(OneShot).unwrap();
                    let exit = corelet::wait(p.pid());
                    p.tell_local(()).unwrap();
                    assert_eq!(exit.await.unwrap(), corelet::ExitReason::Normal);
                }
                start.elapsed()
            })
            .unwrap()
        })
    });
    g.finish();
}

fn cross_shard(c: &mut Criterion) {
    let rt = runtime(2);
    let mut g = c.benchmark_group("cross_shard");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tell", |b| {
        b.iter_custom(|iters| {
            rt.block_on(ShardId(0), move || async move {
                let sink = corelet::spawn_on(ShardId(1), Sink::default).await.unwrap();
                let start = Instant::now();
                for _ in 0..iters {
                    sink.send(SinkMsg::Add).await.unwrap();
                }
                let count = sink.ask(SinkMsg::Count).await.unwrap();
                let elapsed = start.elapsed();
                assert_eq!(count, iters, "every message crossed");
                corelet::terminate(sink.pid()).unwrap();
                elapsed
            })
            .unwrap()
        })
    });
    g.bench_function("ask", |b| {
        b.iter_custom(|iters| {
            rt.block_on(ShardId(0), move || async move {
                let sink = corelet::spawn_on(ShardId(1), Sink::default).await.unwrap();
                let start = Instant::now();
                for _ in 0..iters {
                    assert_eq!(sink.ask(SinkMsg::Count).await.unwrap(), 0);
                }
                let elapsed = start.elapsed();
                corelet::terminate(sink.pid()).unwrap();
                elapsed
            })
            .unwrap()
        })
    });
    g.finish();
}

/// The criterion entry points (the macro's functions carry no docs).
#[allow(missing_docs)]
mod entry {
    use super::{cross_shard, local};
    use criterion::{criterion_group, Criterion};
    use std::time::Duration;

    criterion_group! {
        name = benches;
        config = Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        targets = local, cross_shard
    }
}
criterion_main!(entry::benches);
