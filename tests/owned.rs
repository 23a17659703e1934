//! Process-owned tasks and streams (`Context::spawn_owned`,
//! `attach_stream`, `grant`, `cancel_owned`): results arrive as messages in
//! order, credit bounds what a stream delivers, and everything owned is
//! dropped when the owner exits or cancels it.

use corelet::{Context, HandlerResult, OwnedRef, Process, ReplyTo, Runtime, ShardId, StreamEvent};
use futures_lite::stream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn runtime(shards: usize) -> Runtime {
    Runtime::builder()
        .shards(shards)
        .pin(false)
        .build()
        .unwrap()
}

/// Sets a flag when dropped (what an owned stream holds: a socket, a file).
struct DropFlag(Arc<AtomicUsize>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        // Relaxed: read by the test thread only after the owner's exit was
        // reported through the runtime, which synchronises.
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Collects what its owned work delivers.
#[derive(Default)]
struct Collector {
    got: Vec<u64>,
    ended: bool,
    stream: Option<OwnedRef>,
}

/// What arrived, whether the stream ended, owned tasks still running.
type Snapshot = (Vec<u64>, bool, usize);

enum Msg {
    Event(StreamEvent<u64>),
    Done(u64),
    /// Starts an endless stream with the given window; it holds `DropFlag`.
    Attach(u64, Arc<AtomicUsize>),
    /// Starts a one-shot owned task whose output is `n * 2`.
    Spawn(u64),
    /// Starts a task that never completes and holds a `DropFlag`.
    SpawnForever(Arc<AtomicUsize>, ReplyTo<OwnedRef>),
    Grant(u64),
    Cancel(OwnedRef, ReplyTo<bool>),
    /// Yields the shard `n` times (letting owned tasks run and queue what
    /// they deliver), then queues a `Report` behind what they delivered.
    Settle(u32, ReplyTo<Snapshot>),
    /// Answers with what arrived and how many owned tasks still run.
    Report(ReplyTo<Snapshot>),
}

impl Process for Collector {
    type Msg = Msg;

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        match msg {
            Msg::Event(StreamEvent::Item(n)) | Msg::Done(n) => self.got.push(n),
            Msg::Event(StreamEvent::End) => self.ended = true,
            Msg::Attach(window, flag) => {
                let guard = DropFlag(flag);
                let items = stream::iter(0u64..).map(move |n| {
                    let _hold = &guard;
                    n
                });
                self.stream = Some(ctx.attach_stream(items, window, Msg::Event));
            }
            Msg::Spawn(n) => {
                ctx.spawn_owned(async move { n * 2 }, Msg::Done);
            }
            Msg::SpawnForever(flag, reply) => {
                let guard = DropFlag(flag);
                let r = ctx.spawn_owned(
                    async move {
                        let _hold = guard;
                        std::future::pending::<u64>().await
                    },
                    Msg::Done,
                );
                reply.send(r);
            }
            Msg::Grant(n) => {
                let r = self.stream.expect("attached");
                ctx.grant(r, n);
            }
            Msg::Cancel(r, reply) => reply.send(ctx.cancel_owned(r)),
            Msg::Settle(n, reply) => {
                for _ in 0..n {
                    futures_lite::future::yield_now().await;
                }
                let _ = ctx.addr().tell_local(Msg::Report(reply));
            }
            Msg::Report(reply) => {
                reply.send((self.got.clone(), self.ended, ctx.owned_pending()));
            }
        }
        Ok(())
    }
}

use futures_lite::StreamExt as _;

#[test]
fn owned_task_output_arrives_as_a_message_in_order() {
    let rt = runtime(2);
    let c = rt.spawn_on(ShardId(1), Collector::default).unwrap();
    for n in 1..=5 {
        rt.tell(&c, Msg::Spawn(n)).unwrap();
    }
    // Each task completes on its first poll; a settle that yields lets
    // them all run and deliver.
    let (got, _, pending) = rt.ask(&c, |r| Msg::Settle(8, r)).unwrap();
    assert_eq!(got, vec![2, 4, 6, 8, 10]);
    assert_eq!(pending, 0);
}

#[test]
fn stream_delivers_only_what_is_granted() {
    let rt = runtime(2);
    let dropped = Arc::new(AtomicUsize::new(0));
    let c = rt.spawn_on(ShardId(0), Collector::default).unwrap();
    rt.tell(&c, Msg::Attach(3, dropped.clone())).unwrap();
    // The stream is always ready, so without the window it would deliver
    // an item on every turn of the executor; 64 turns are plenty.
    let (got, ended, pending) = rt.ask(&c, |r| Msg::Settle(64, r)).unwrap();
    assert_eq!(got, vec![0, 1, 2], "the window bounds delivery");
    assert!(!ended);
    assert_eq!(pending, 1);
    rt.tell(&c, Msg::Grant(4)).unwrap();
    let (got, _, _) = rt.ask(&c, |r| Msg::Settle(64, r)).unwrap();
    assert_eq!(got, (0..7).collect::<Vec<_>>(), "granted items, in order");
    assert_eq!(dropped.load(Ordering::Relaxed), 0);
    let exit = rt.watch(c.pid()).unwrap();
    rt.terminate(c.pid()).unwrap();
    exit.wait().unwrap();
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        1,
        "the owner's exit dropped the stream before the exit was reported"
    );
}

/// What a finite stream's owner has seen.
struct Finite {
    seen: u64,
    done: Option<ReplyTo<u64>>,
}

enum FiniteMsg {
    Start(ReplyTo<u64>),
    Event(StreamEvent<u64>),
}

/// Grants one unit per handled item, like a connection reading a socket.
struct Paced(Finite, Option<OwnedRef>);

impl Process for Paced {
    type Msg = FiniteMsg;
    async fn handle(&mut self, ctx: &mut Context<Self>, msg: FiniteMsg) -> HandlerResult {
        match msg {
            FiniteMsg::Start(reply) => {
                self.0.done = Some(reply);
                let r = ctx.attach_stream(stream::iter(1u64..=100), 1, FiniteMsg::Event);
                self.1 = Some(r);
            }
            FiniteMsg::Event(StreamEvent::Item(n)) => {
                assert_eq!(n, self.0.seen + 1, "items arrive in order");
                self.0.seen = n;
                ctx.grant(self.1.unwrap(), 1);
            }
            FiniteMsg::Event(StreamEvent::End) => {
                if let Some(reply) = self.0.done.take() {
                    reply.send(self.0.seen);
                }
            }
        }
        Ok(())
    }
}

#[test]
fn a_paced_stream_delivers_everything_then_its_end() {
    let rt = runtime(2);
    for shard in [ShardId(0), ShardId(1)] {
        let p = rt
            .spawn_on(shard, || {
                Paced(
                    Finite {
                        seen: 0,
                        done: None,
                    },
                    None,
                )
            })
            .unwrap();
        assert_eq!(rt.ask(&p, FiniteMsg::Start).unwrap(), 100);
    }
}

#[test]
fn cancel_drops_an_owned_task_and_exit_drops_the_rest() {
    let rt = runtime(2);
    let c = rt.spawn_on(ShardId(1), Collector::default).unwrap();
    let first = Arc::new(AtomicUsize::new(0));
    let second = Arc::new(AtomicUsize::new(0));
    let r1 = rt.ask(&c, |r| Msg::SpawnForever(first.clone(), r)).unwrap();
    let _r2 = rt
        .ask(&c, |r| Msg::SpawnForever(second.clone(), r))
        .unwrap();
    let (_, _, pending) = rt.ask(&c, |r| Msg::Settle(4, r)).unwrap();
    assert_eq!(pending, 2);
    assert!(rt.ask(&c, |r| Msg::Cancel(r1, r)).unwrap(), "was pending");
    assert_eq!(
        first.load(Ordering::Relaxed),
        1,
        "cancel dropped the future"
    );
    assert!(!rt.ask(&c, |r| Msg::Cancel(r1, r)).unwrap(), "already gone");
    let (_, _, pending) = rt.ask(&c, |r| Msg::Settle(1, r)).unwrap();
    assert_eq!(pending, 1);
    assert_eq!(second.load(Ordering::Relaxed), 0);
    let exit = rt.watch(c.pid()).unwrap();
    rt.terminate(c.pid()).unwrap();
    exit.wait().unwrap();
    assert_eq!(second.load(Ordering::Relaxed), 1, "exit dropped the rest");
}
