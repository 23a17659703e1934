//! Messaging: FIFO per sender across shards under load, back-pressure
//! without loss, ask/reply (timeouts, late replies, targets that die),
//! dead letters, and non-`Send` messages on one shard.

use corelet::{
    Addr, AskError, Context, Error, ExitReason, HandlerResult, Process, ReplyTo, Runtime,
    SendError, ShardId,
};
use futures_lite::future::yield_now;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

// ---------------------------------------------------------------------------
// A sink that checks per-sender sequence numbers.

/// Per-sender counts and ordering violations seen by a [`Sink`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Report {
    total: u64,
    per_sender: Vec<u64>,
    out_of_order: u64,
}

/// Receives numbered messages and checks that each sender's numbers come
/// strictly consecutively (FIFO per sender, nothing lost or duplicated).
struct Sink {
    next: Vec<u64>,
    report: Report,
}

impl Sink {
    fn new(senders: usize) -> Self {
        Sink {
            next: vec![0; senders],
            report: Report {
                per_sender: vec![0; senders],
                ..Report::default()
            },
        }
    }
}

enum SinkMsg {
    Data {
        from: usize,
        seq: u64,
    },
    /// Answered after everything the asker sent before it (same route).
    Sync(ReplyTo<()>),
    Report(ReplyTo<Report>),
}

impl Process for Sink {
    type Msg = SinkMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: SinkMsg) -> HandlerResult {
        match msg {
            SinkMsg::Data { from, seq } => {
                if seq != self.next[from] {
                    self.report.out_of_order += 1;
                }
                self.next[from] = seq + 1;
                self.report.per_sender[from] += 1;
                self.report.total += 1;
            }
            SinkMsg::Sync(reply) => reply.send(()),
            SinkMsg::Report(reply) => reply.send(self.report.clone()),
        }
        Ok(())
    }
}

/// Sends `n` numbered messages to a sink with back-pressure (`send`), then
/// syncs with the sink so that all of them have been handled.
struct Source {
    id: usize,
    sink: Addr<Sink>,
}

enum SourceMsg {
    Run { n: u64, done: ReplyTo<u64> },
}

impl Process for Source {
    type Msg = SourceMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: SourceMsg) -> HandlerResult {
        let SourceMsg::Run { n, done } = msg;
        for seq in 0..n {
            self.sink
                .send(SinkMsg::Data { from: self.id, seq })
                .await
                .expect("sink is alive");
        }
        self.sink.ask(SinkMsg::Sync).await.expect("sink answers");
        done.send(n);
        Ok(())
    }
}

#[test]
fn a_million_cross_shard_messages_arrive_in_order_per_sender() {
    const SHARD_SENDERS: usize = 4;
    const OUTSIDE_SENDERS: usize = 2;
    const PER_SHARD_SENDER: u64 = 200_000;
    const PER_OUTSIDE_SENDER: u64 = 100_000;
    const SENDERS: usize = SHARD_SENDERS + OUTSIDE_SENDERS;
    const TOTAL: u64 =
        SHARD_SENDERS as u64 * PER_SHARD_SENDER + OUTSIDE_SENDERS as u64 * PER_OUTSIDE_SENDER;
    assert_eq!(TOTAL, 1_000_000);

    let rt = Runtime::builder().shards(8).pin(false).build().unwrap();
    let sink = rt.spawn_on(ShardId(0), || Sink::new(SENDERS)).unwrap();
    // Sources on shards 1, 3, 5, 7: four different rings into shard 0.
    let sources: Vec<Addr<Source>> = (0..SHARD_SENDERS)
        .map(|id| {
            rt.spawn_on(ShardId(1 + 2 * id as u16), move || Source { id, sink })
                .unwrap()
        })
        .collect();

    std::thread::scope(|scope| {
        let rt = &rt;
        for &source in &sources {
            scope.spawn(move || {
                let sent = rt
                    .ask(&source, |done| SourceMsg::Run {
                        n: PER_SHARD_SENDER,
                        done,
                    })
                    .unwrap();
                assert_eq!(sent, PER_SHARD_SENDER);
            });
        }
        for k in 0..OUTSIDE_SENDERS {
            scope.spawn(move || {
                let from = SHARD_SENDERS + k;
                for seq in 0..PER_OUTSIDE_SENDER {
                    rt.tell(&sink, SinkMsg::Data { from, seq }).unwrap();
                }
                rt.ask(&sink, SinkMsg::Sync).unwrap();
            });
        }
    });

    let report = rt.ask(&sink, SinkMsg::Report).unwrap();
    assert_eq!(report.out_of_order, 0, "per-sender FIFO violated");
    assert_eq!(report.total, TOTAL);
    let mut expected = vec![PER_SHARD_SENDER; SHARD_SENDERS];
    expected.extend([PER_OUTSIDE_SENDER; OUTSIDE_SENDERS]);
    assert_eq!(report.per_sender, expected);
    assert_eq!(rt.stats().unwrap()[0].dead_letters, 0);
}

#[test]
fn full_ring_hands_the_message_back_and_loses_nothing() {
    const RING: usize = 4;
    const OVERFLOW: usize = 8;
    const N: u64 = 5_000;
    let rt = Runtime::builder()
        .shards(2)
        .pin(false)
        .ring_capacity(RING)
        .overflow_limit(OVERFLOW)
        .build()
        .unwrap();
    let sink = rt.spawn_on(ShardId(1), || Sink::new(1)).unwrap();

    let (burst, fulls) = rt
        .block_on(ShardId(0), move || async move {
            // A burst without yielding: the ring and then the overflow queue
            // fill up, and the next tell is refused with the message handed
            // back.
            let mut seq = 0;
            let burst = loop {
                match sink.tell(SinkMsg::Data { from: 0, seq }) {
                    Ok(()) => seq += 1,
                    Err(SendError::Full(SinkMsg::Data { from: 0, seq: back })) => {
                        assert_eq!(back, seq, "the refused message is handed back");
                        break seq;
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
                assert!(seq <= (RING + OVERFLOW) as u64, "no back-pressure");
            };
            // Keep going with tell: on Full, yield (the shard flushes its
            // outbox) and retry the very message handed back.
            let mut fulls = 1;
            while seq < N / 2 {
                match sink.tell(SinkMsg::Data { from: 0, seq }) {
                    Ok(()) => seq += 1,
                    Err(SendError::Full(SinkMsg::Data { from: 0, seq: back })) => {
                        assert_eq!(back, seq);
                        fulls += 1;
                        yield_now().await;
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            // And with send, which waits for room by itself.
            while seq < N {
                sink.send(SinkMsg::Data { from: 0, seq }).await.unwrap();
                seq += 1;
            }
            // The ask travels the same ring (and may meet back-pressure too).
            let mut tries = 0;
            let report = loop {
                match sink.ask(SinkMsg::Report).await {
                    Ok(report) => break report,
                    Err(AskError::Send(_)) if tries < 1_000_000 => {
                        tries += 1;
                        yield_now().await;
                    }
                    Err(e) => panic!("ask failed: {e:?}"),
                }
            };
            assert_eq!(report.out_of_order, 0, "order kept through the overflow");
            assert_eq!(report.total, N, "every accepted message arrived");
            (burst, fulls)
        })
        .unwrap();
    assert!(
        burst >= OVERFLOW as u64 && burst <= (RING + OVERFLOW) as u64,
        "a burst is accepted up to ring + overflow limit, got {burst}"
    );
    assert!(fulls > 1, "the ring kept pushing back");
    let stats = rt.stats().unwrap();
    assert_eq!(stats[0].dead_letters + stats[1].dead_letters, 0);
}

// ---------------------------------------------------------------------------
// Ask/reply.

/// A general-purpose test process.
#[derive(Default)]
struct Server {
    value: u64,
    /// Requests kept unanswered until `Release`.
    kept: Vec<ReplyTo<u64>>,
    /// A gate: `Hold` blocks the handler until this process's `Release`.
    gate: Option<Addr<Server>>,
}

enum ServerMsg {
    Get(ReplyTo<u64>),
    /// Keeps the reply handle (never answers unless released).
    Keep(ReplyTo<u64>),
    /// Answers every kept request.
    Release,
    /// Drops the reply handle unanswered.
    Drop(ReplyTo<u64>),
    /// Keeps the reply handle in the state, then stops.
    KeepAndStop(ReplyTo<u64>),
    Stop,
    /// Blocks inside the handler until `gate` is released; tells `entered`
    /// first (if given). Holds `reply` meanwhile (if given).
    Hold {
        entered: Option<mpsc::Sender<()>>,
        reply: Option<ReplyTo<u64>>,
    },
}

impl Process for Server {
    type Msg = ServerMsg;

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: ServerMsg) -> HandlerResult {
        match msg {
            ServerMsg::Get(reply) => reply.send(self.value),
            ServerMsg::Keep(reply) => self.kept.push(reply),
            ServerMsg::Release => {
                for reply in self.kept.drain(..) {
                    reply.send(self.value);
                }
            }
            ServerMsg::Drop(reply) => drop(reply),
            ServerMsg::KeepAndStop(reply) => {
                self.kept.push(reply);
                ctx.stop();
            }
            ServerMsg::Stop => ctx.stop(),
            ServerMsg::Hold { entered, reply } => {
                if let Some(entered) = entered {
                    entered.send(()).unwrap();
                }
                let gate = self.gate.expect("Hold needs a gate");
                gate.ask(ServerMsg::Keep).await?;
                if let Some(reply) = reply {
                    reply.send(self.value);
                }
            }
        }
        Ok(())
    }
}

fn server(value: u64) -> Server {
    Server {
        value,
        ..Server::default()
    }
}

#[test]
fn ask_same_shard_cross_shard_local_and_from_outside() {
    let rt = Runtime::builder().shards(8).pin(false).build().unwrap();
    let here = rt.spawn_on(ShardId(2), || server(2)).unwrap();
    let there = rt.spawn_on(ShardId(7), || server(7)).unwrap();
    rt.block_on(ShardId(2), move || async move {
        assert_eq!(here.ask(ServerMsg::Get).await, Ok(2));
        assert_eq!(here.ask_local(ServerMsg::Get).await, Ok(2));
        assert_eq!(there.ask(ServerMsg::Get).await, Ok(7));
        assert_eq!(
            there
                .ask(ServerMsg::Get)
                .timeout(Duration::from_secs(600))
                .await,
            Ok(7)
        );
        // Many asks in flight at once, across shards, each gets its answer.
        let asks: Vec<_> = (0..100)
            .map(|i| if i % 2 == 0 { here } else { there })
            .map(|a| a.ask(ServerMsg::Get))
            .collect();
        for (i, ask) in asks.into_iter().enumerate() {
            assert_eq!(ask.await, Ok(if i % 2 == 0 { 2 } else { 7 }));
        }
        // ask_local cannot reach another shard.
        assert!(matches!(
            there.ask_local(ServerMsg::Get).await,
            Err(AskError::Send(_))
        ));
    })
    .unwrap();
    assert_eq!(rt.ask(&here, ServerMsg::Get), Ok(2));
    assert_eq!(rt.ask(&there, ServerMsg::Get), Ok(7));
}

#[test]
fn ask_timeout_and_late_reply_is_counted() {
    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    let local = rt.spawn_on(ShardId(0), || server(1)).unwrap();
    let remote = rt.spawn_on(ShardId(1), || server(2)).unwrap();
    rt.block_on(ShardId(0), move || async move {
        for target in [local, remote] {
            let before = corelet::local_stats().unwrap().late_replies;
            // The target keeps the request: the deadline passes.
            let outcome = target
                .ask(ServerMsg::Keep)
                .timeout(Duration::from_millis(20))
                .await;
            assert_eq!(outcome, Err(AskError::Timeout));
            // Now it answers; the reply finds its asker gone.
            target.tell(ServerMsg::Release).unwrap();
            // A reply from the same target to this shard travels the same
            // route, after the late one.
            assert!(target.ask(ServerMsg::Get).await.is_ok());
            let after = corelet::local_stats().unwrap().late_replies;
            assert_eq!(after, before + 1, "the late reply is counted and dropped");
        }
    })
    .unwrap();
}

#[test]
fn ask_resolves_no_reply_when_target_exits_or_drops_the_handle() {
    let rt = Runtime::builder().shards(3).pin(false).build().unwrap();
    let gate = rt.spawn_on(ShardId(2), || server(0)).unwrap();

    // Same shard.
    rt.block_on(ShardId(1), move || async move {
        let a = corelet::spawn(server(1)).unwrap();
        assert_eq!(a.ask(ServerMsg::Drop).await, Err(AskError::NoReply));
        // A request queued behind a message that stops the process.
        a.tell(ServerMsg::Stop).unwrap();
        let queued = a.ask(ServerMsg::Get);
        assert_eq!(queued.await, Err(AskError::NoReply));

        // A request queued when terminate arrives (the signal overtakes it).
        let b = corelet::spawn(server(2)).unwrap();
        let queued = b.ask(ServerMsg::Get);
        corelet::terminate(b.pid()).unwrap();
        assert_eq!(queued.await, Err(AskError::NoReply));

        // A request kept in the state when the process stops.
        let c = corelet::spawn(server(3)).unwrap();
        assert_eq!(c.ask(ServerMsg::KeepAndStop).await, Err(AskError::NoReply));
    })
    .unwrap();

    // Cross-shard: asker on shard 0, target on shard 1, gate on shard 2.
    rt.block_on(ShardId(0), move || async move {
        let t = corelet::spawn_on(ShardId(1), move || Server {
            gate: Some(gate),
            ..server(1)
        })
        .await
        .unwrap();
        assert_eq!(t.ask(ServerMsg::Drop).await, Err(AskError::NoReply));
        assert_eq!(t.ask(ServerMsg::KeepAndStop).await, Err(AskError::NoReply));

        let t = corelet::spawn_on(ShardId(1), move || Server {
            gate: Some(gate),
            ..server(1)
        })
        .await
        .unwrap();
        let exited = corelet::wait(t.pid());
        // Busy in a handler (or about to be) while a request queues up and
        // terminate arrives; then the handler is let go.
        t.tell(ServerMsg::Hold {
            entered: None,
            reply: None,
        })
        .unwrap();
        let queued = t.ask(ServerMsg::Get);
        corelet::terminate(t.pid()).unwrap();
        gate.tell(ServerMsg::Release).unwrap();
        assert_eq!(queued.await, Err(AskError::NoReply));
        assert_eq!(exited.await, Ok(ExitReason::Shutdown));
    })
    .unwrap();

    // Outside threads.
    let t = rt.spawn_on(ShardId(1), || server(1)).unwrap();
    assert_eq!(rt.ask(&t, ServerMsg::Drop), Err(AskError::NoReply));
    assert_eq!(rt.ask(&t, ServerMsg::KeepAndStop), Err(AskError::NoReply));
    // The process is gone now: the next ask is not delivered.
    assert_eq!(rt.ask(&t, ServerMsg::Get), Err(AskError::NoReply));

    // Killed while its handler holds the request.
    let t = rt
        .spawn_on(ShardId(1), move || Server {
            gate: Some(gate),
            ..server(1)
        })
        .unwrap();
    let (entered_tx, entered) = mpsc::channel();
    std::thread::scope(|scope| {
        let rt = &rt;
        let asker = scope.spawn(move || {
            rt.ask(&t, |reply| ServerMsg::Hold {
                entered: Some(entered_tx),
                reply: Some(reply),
            })
        });
        entered.recv().unwrap();
        let watch = rt.watch(t.pid()).unwrap();
        rt.kill(t.pid()).unwrap();
        assert_eq!(watch.wait(), Ok(ExitReason::Killed));
        assert_eq!(asker.join().unwrap(), Err(AskError::NoReply));
    });
}

// ---------------------------------------------------------------------------
// Dead letters and unknown shards.

#[test]
fn tell_to_dead_pid_is_an_error_and_a_counted_dead_letter() {
    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    let dead = rt
        .block_on(ShardId(1), || async {
            let a = corelet::spawn(server(0)).unwrap();
            let exited = corelet::wait(a.pid());
            a.tell(ServerMsg::Stop).unwrap();
            assert_eq!(exited.await, Ok(ExitReason::Normal));
            let before = corelet::local_stats().unwrap().dead_letters;
            assert!(matches!(
                a.tell(ServerMsg::Release),
                Err(SendError::NoProcess(ServerMsg::Release))
            ));
            assert!(matches!(
                a.tell_local(ServerMsg::Release),
                Err(SendError::NoProcess(ServerMsg::Release))
            ));
            assert_eq!(corelet::local_stats().unwrap().dead_letters, before + 2);
            a
        })
        .unwrap();

    // From another shard the owner decides: the tell is accepted, and the
    // owner counts it (and drops the ask's request, answering NoReply).
    let before = rt.stats().unwrap()[1].dead_letters;
    rt.block_on(ShardId(0), move || async move {
        dead.tell(ServerMsg::Release).unwrap();
        assert_eq!(dead.ask(ServerMsg::Get).await, Err(AskError::NoReply));
    })
    .unwrap();
    assert_eq!(rt.stats().unwrap()[1].dead_letters, before + 2);

    // From outside.
    rt.tell(&dead, ServerMsg::Release).unwrap();
    assert_eq!(rt.stats().unwrap()[1].dead_letters, before + 3);

    // Messages still queued when a process exits are dead letters too.
    let before = rt.stats().unwrap()[1].dead_letters;
    rt.block_on(ShardId(1), || async {
        let a = corelet::spawn(server(0)).unwrap();
        let exited = corelet::wait(a.pid());
        a.tell(ServerMsg::Stop).unwrap();
        for _ in 0..3 {
            a.tell(ServerMsg::Release).unwrap();
        }
        assert_eq!(exited.await, Ok(ExitReason::Normal));
    })
    .unwrap();
    assert_eq!(rt.stats().unwrap()[1].dead_letters, before + 3);
}

#[test]
fn pid_of_an_unknown_shard_is_refused_everywhere() {
    let big = Runtime::builder().shards(8).pin(false).build().unwrap();
    let far = big.spawn_on(ShardId(7), || server(7)).unwrap();
    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    let pid = far.pid();

    assert!(matches!(
        rt.tell(&far, ServerMsg::Release),
        Err(SendError::UnknownShard(ServerMsg::Release))
    ));
    assert!(matches!(
        rt.ask(&far, ServerMsg::Get),
        Err(AskError::Send(_))
    ));
    assert_eq!(rt.terminate(pid), Err(Error::UnknownShard(ShardId(7))));
    assert_eq!(rt.kill(pid), Err(Error::UnknownShard(ShardId(7))));
    assert_eq!(rt.wait(pid), Err(Error::UnknownShard(ShardId(7))));
    assert!(matches!(
        rt.watch(pid),
        Err(Error::UnknownShard(ShardId(7)))
    ));

    rt.block_on(ShardId(0), move || async move {
        let before = corelet::local_stats().unwrap().dead_letters;
        assert!(matches!(
            far.tell(ServerMsg::Release),
            Err(SendError::UnknownShard(ServerMsg::Release))
        ));
        assert!(matches!(
            far.send(ServerMsg::Release).await,
            Err(SendError::UnknownShard(ServerMsg::Release))
        ));
        assert!(matches!(
            far.ask(ServerMsg::Get).await,
            Err(AskError::Send(_))
        ));
        assert_eq!(
            corelet::terminate(pid),
            Err(Error::UnknownShard(ShardId(7)))
        );
        assert_eq!(corelet::kill(pid), Err(Error::UnknownShard(ShardId(7))));
        assert_eq!(
            corelet::wait(pid).await,
            Err(Error::UnknownShard(ShardId(7)))
        );
        assert!(corelet::local_stats().unwrap().dead_letters > before);
    })
    .unwrap();

    // The process in the runtime that owns the pid was never touched.
    assert_eq!(big.ask(&far, ServerMsg::Get), Ok(7));
    assert_eq!(big.stats().unwrap()[7].alive, 1);
}

// ---------------------------------------------------------------------------
// Non-`Send` messages.

/// State and messages hold `Rc`s: neither is `Send`.
#[derive(Default)]
struct LocalCounter {
    total: Rc<Cell<u64>>,
}

enum LocalMsg {
    /// Adds the cell's value and zeroes the cell (the sender sees it).
    Add(Rc<Cell<u64>>),
    Get(ReplyTo<u64>),
}

impl Process for LocalCounter {
    type Msg = LocalMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: LocalMsg) -> HandlerResult {
        match msg {
            LocalMsg::Add(cell) => {
                self.total.set(self.total.get() + cell.replace(0));
            }
            LocalMsg::Get(reply) => reply.send(self.total.get()),
        }
        Ok(())
    }
}

#[test]
fn non_send_messages_travel_on_one_shard_only() {
    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    let remote = rt
        .block_on(ShardId(0), || async {
            let local = corelet::spawn(LocalCounter::default()).unwrap();
            let cell = Rc::new(Cell::new(5));
            local.tell_local(LocalMsg::Add(cell.clone())).unwrap();
            local
                .tell_local(LocalMsg::Add(Rc::new(Cell::new(2))))
                .unwrap();
            assert_eq!(local.ask_local(LocalMsg::Get).await, Ok(7));
            assert_eq!(cell.get(), 0, "the handler got this very Rc");
            assert_eq!(Rc::strong_count(&cell), 1, "the message was dropped");

            let remote = corelet::spawn_on(ShardId(1), LocalCounter::default)
                .await
                .unwrap();
            let cell = Rc::new(Cell::new(9));
            match remote.tell_local(LocalMsg::Add(cell.clone())) {
                Err(SendError::NotLocal(LocalMsg::Add(back))) => {
                    assert!(Rc::ptr_eq(&back, &cell), "handed back intact")
                }
                Err(e) => panic!("expected NotLocal, got {e:?}"),
                Ok(()) => panic!("a non-Send message crossed shards"),
            }
            assert_eq!(cell.get(), 9);
            assert!(matches!(
                remote.ask_local(LocalMsg::Get).await,
                Err(AskError::Send(_))
            ));
            remote
        })
        .unwrap();

    // Not from outside threads either.
    assert!(matches!(
        remote.tell_local(LocalMsg::Add(Rc::new(Cell::new(1)))),
        Err(SendError::NotInRuntime(_))
    ));
    // The remote process received nothing, and works on its own shard.
    rt.block_on(ShardId(1), move || async move {
        assert_eq!(remote.ask_local(LocalMsg::Get).await, Ok(0));
        remote
            .tell_local(LocalMsg::Add(Rc::new(Cell::new(4))))
            .unwrap();
        assert_eq!(remote.ask_local(LocalMsg::Get).await, Ok(4));
    })
    .unwrap();
}

/// `send` waits for room in the ring itself: a long loop of sends, with
/// no other yield, never parks a message in the overflow queue (where a
/// burst of `tell`s does), and loses or reorders nothing.
#[test]
fn send_waits_for_ring_room_and_never_uses_the_overflow() {
    const N: u64 = 20_000;
    let rt = Runtime::builder()
        .shards(2)
        .pin(false)
        .ring_capacity(4)
        .overflow_limit(1 << 16)
        .build()
        .unwrap();
    let sink = rt.spawn_on(ShardId(1), || Sink::new(1)).unwrap();
    let (overflowed, report) = rt
        .block_on(ShardId(0), move || async move {
            for seq in 0..N {
                sink.send(SinkMsg::Data { from: 0, seq }).await.unwrap();
            }
            // Read before the ask: an ask is never refused, so it may wait
            // in the overflow itself.
            let overflowed = corelet::shard_stats(ShardId(0)).await.unwrap().overflowed;
            (overflowed, sink.ask(SinkMsg::Report).await.unwrap())
        })
        .unwrap();
    assert_eq!(report.total, N, "every message arrived");
    assert_eq!(report.out_of_order, 0, "in order");
    assert_eq!(overflowed, 0, "send never queued in the overflow");
    // The same loop with tell (a burst with no yield) does use it: the
    // counter sees what the assertion above relies on.
    let sink = rt.spawn_on(ShardId(1), || Sink::new(1)).unwrap();
    rt.block_on(ShardId(0), move || async move {
        for seq in 0..64 {
            sink.tell(SinkMsg::Data { from: 0, seq }).unwrap();
        }
    })
    .unwrap();
    assert!(
        rt.stats().unwrap()[0].overflowed > 0,
        "tell bursts overflow"
    );
}

/// An ask is never refused for back-pressure: with the ring and the
/// overflow queue full of tells, a cross-shard ask still gets through.
#[test]
fn ask_is_not_refused_under_back_pressure() {
    let rt = Runtime::builder()
        .shards(2)
        .pin(false)
        .ring_capacity(2)
        .overflow_limit(2)
        .build()
        .unwrap();
    let answered = rt
        .block_on(ShardId(0), || async {
            let target = corelet::spawn_on(ShardId(1), BackPressureCounter::default)
                .await
                .unwrap();
            let mut refused = 0;
            for _ in 0..64 {
                if target.tell(BpMsg::Add).is_err() {
                    refused += 1;
                }
            }
            assert!(refused > 0, "the burst must hit back-pressure");
            let count = target
                .ask(BpMsg::Count)
                .await
                .expect("ask waits, never Full");
            (count, refused)
        })
        .unwrap();
    assert_eq!(
        answered.0 + answered.1,
        64,
        "accepted tells all arrived before the ask"
    );
}

#[derive(Default)]
struct BackPressureCounter(u64);

enum BpMsg {
    Add,
    Count(corelet::ReplyTo<u64>),
}

impl corelet::Process for BackPressureCounter {
    type Msg = BpMsg;
    async fn handle(
        &mut self,
        _ctx: &mut corelet::Context<Self>,
        msg: BpMsg,
    ) -> corelet::HandlerResult {
        match msg {
            BpMsg::Add => self.0 += 1,
            BpMsg::Count(reply) => reply.send(self.0),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Every message is dropped exactly once, sent or not.

/// A message that counts its drops.
struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Blocks its shard's thread on `Block` until the test releases it, and
/// counts the `Item`s it handles (and drops).
#[derive(Default)]
struct Gate {
    items: u64,
}

enum GateMsg {
    Block(mpsc::Receiver<()>),
    Item(Counted),
    Count(ReplyTo<u64>),
}

impl Process for Gate {
    type Msg = GateMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: GateMsg) -> HandlerResult {
        match msg {
            GateMsg::Block(release) => release.recv().map_err(|e| e.to_string())?,
            GateMsg::Item(item) => {
                self.items += 1;
                drop(item);
            }
            GateMsg::Count(reply) => reply.send(self.items),
        }
        Ok(())
    }
}

/// `send` keeps its message in place until a ring slot takes it: a
/// `Sending` dropped unpolled, or dropped while it waits for room, drops
/// its message once; one handed over is dropped once, by the receiver;
/// a `tell` refused with `Full` hands it back. Nothing is dropped twice
/// and nothing leaks.
#[test]
fn every_message_is_dropped_once_whether_sent_refused_or_abandoned() {
    use futures_lite::future::poll_once;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let rt = Runtime::builder()
        .shards(2)
        .pin(false)
        .ring_capacity(4)
        .overflow_limit(4)
        .build()
        .unwrap();
    let gate = rt.spawn_on(ShardId(1), Gate::default).unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let (release, blocked) = mpsc::channel();
    let made = {
        let drops = drops.clone();
        rt.block_on(ShardId(0), move || async move {
            let item = || GateMsg::Item(Counted(drops.clone()));
            let mut made = 0usize;
            // Abandoned before its first poll: nothing was sent.
            drop(gate.send(item()));
            made += 1;
            assert_eq!(
                drops.load(Ordering::SeqCst),
                1,
                "unpolled send drops its message"
            );
            // Shard 1 blocks in a handler, so the ring and the overflow
            // queue towards it fill up.
            gate.tell(GateMsg::Block(blocked)).unwrap();
            loop {
                made += 1;
                match gate.tell(item()) {
                    Ok(()) => {}
                    Err(SendError::Full(back)) => {
                        assert!(matches!(back, GateMsg::Item(_)), "handed back");
                        break;
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
                assert!(made < 1_000, "no back-pressure");
            }
            // The refused message was dropped by the handing back.
            assert_eq!(drops.load(Ordering::SeqCst), 2);
            // A send that waits for room, abandoned while it waits.
            let mut waiting = gate.send(item());
            made += 1;
            assert!(poll_once(&mut waiting).await.is_none(), "no room: it waits");
            assert_eq!(
                drops.load(Ordering::SeqCst),
                2,
                "a waiting send keeps its message"
            );
            drop(waiting);
            assert_eq!(drops.load(Ordering::SeqCst), 3, "abandoned: dropped once");
            made
        })
        .unwrap()
    };
    release.send(()).unwrap();
    // Everything accepted is handled (and dropped) by the receiver: made
    // minus the three dropped on the sender's side. Asked from shard 0, so
    // that the ask queues behind them (FIFO per pair of shards).
    let handled = rt
        .block_on(ShardId(0), move || async move {
            gate.ask(GateMsg::Count).await.unwrap()
        })
        .unwrap();
    assert_eq!(handled as usize, made - 3);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        made,
        "each message dropped exactly once"
    );
}

/// Counts the messages it handles where another thread can see them.
struct Tally(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Process for Tally {
    type Msg = u64;
    async fn handle(&mut self, _ctx: &mut Context<Self>, _msg: u64) -> HandlerResult {
        // Release: pairs with the sender's Acquire load below.
        self.0.fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(())
    }
}

/// A sender that pushes `publish_batch` envelopes towards one shard within
/// a single turn has them published at once, without waiting for the end
/// of its round: the sender here never yields until the receiver has
/// counted them, so it would wait forever if the batch were held back.
#[test]
fn a_full_publish_batch_goes_out_in_the_middle_of_a_round() {
    batch_published_mid_round(8, Runtime::builder().publish_batch(8));
}

/// The batch is at most a quarter of the ring: asked for 100 on a ring of
/// 8 slots, a shard publishes every 2 (else this would wait forever, the
/// two envelopes never published).
#[test]
fn the_publish_batch_is_clamped_to_a_quarter_of_the_ring() {
    batch_published_mid_round(2, Runtime::builder().ring_capacity(8).publish_batch(100));
}

/// Sends `BATCH` messages from shard 0 to shard 1 within one turn, then
/// spins in that turn until shard 1 has handled them all.
fn batch_published_mid_round(batch: usize, builder: corelet::Builder) {
    let rt = builder.shards(2).pin(false).build().unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tally = {
        let seen = seen.clone();
        rt.spawn_on(ShardId(1), move || Tally(seen)).unwrap()
    };
    let counted = rt
        .block_on(ShardId(0), move || async move {
            for i in 0..batch as u64 {
                tally.tell(i).unwrap();
            }
            // No await: this turn (and this shard's round) does not end
            // until shard 1 has handled the whole batch.
            loop {
                let n = seen.load(std::sync::atomic::Ordering::Acquire);
                if n == batch as u64 {
                    break n;
                }
                std::hint::spin_loop();
                std::thread::yield_now();
            }
        })
        .unwrap();
    assert_eq!(counted, batch as u64);
}
