//! Fairness and flood behaviour of the per-shard scheduler (issue 7, item
//! 6), asserted through order and bounds, never through timing:
//!
//! - a flooded process runs at most `process_budget` messages per turn, so
//!   its shard's other processes make progress between its batches;
//! - a glommio timer, a process timer and glommio I/O still complete on a
//!   shard whose processes are always ready;
//! - an always-ready process cannot keep the scheduler from draining the
//!   rings: messages and asks from other shards and from outside threads
//!   still arrive;
//! - work first (what a turn readies runs next, from a stack) cannot starve
//!   what waits lower on that stack;
//! - a loop of requests answered at once (a local `whereis`) still gives
//!   the shard back, and so does a loop of `send().await` that always
//!   finds room (the cooperative budget of the runtime's futures).

use corelet::{Context, HandlerResult, Process, ReplyTo, Runtime, ShardId};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// Counts what it is told into a shared cell.
struct Flooded {
    handled: Rc<Cell<u64>>,
}

impl Process for Flooded {
    type Msg = ();
    async fn handle(&mut self, _ctx: &mut Context<Self>, _msg: ()) -> HandlerResult {
        self.handled.set(self.handled.get() + 1);
        Ok(())
    }
}

/// Keeps itself busy, noting how far the flooded process had got each time
/// it ran, until the flood is over.
struct Observer {
    flooded: Rc<Cell<u64>>,
    target: u64,
    seen: Vec<u64>,
    done: Option<ReplyTo<Vec<u64>>>,
}

enum ObserverMsg {
    Start(ReplyTo<Vec<u64>>),
    Tick,
}

impl Process for Observer {
    type Msg = ObserverMsg;
    async fn handle(&mut self, ctx: &mut Context<Self>, msg: ObserverMsg) -> HandlerResult {
        if let ObserverMsg::Start(done) = msg {
            self.done = Some(done);
        }
        let now = self.flooded.get();
        self.seen.push(now);
        if now >= self.target {
            if let Some(done) = self.done.take() {
                done.send(std::mem::take(&mut self.seen));
            }
            ctx.stop();
        } else {
            ctx.addr().tell_local(ObserverMsg::Tick)?;
        }
        Ok(())
    }
}

#[test]
fn a_flooded_process_does_not_starve_its_neighbours() {
    const FLOOD: u64 = 200_000;
    const BUDGET: u32 = 50;
    let rt = Runtime::builder()
        .shards(1)
        .pin(false)
        .process_budget(BUDGET)
        .build()
        .unwrap();
    let seen = rt
        .block_on(ShardId(0), || async {
            let handled = Rc::new(Cell::new(0));
            let flooded = corelet::spawn(Flooded {
                handled: handled.clone(),
            })
            .unwrap();
            // The whole flood is queued before either process runs.
            for _ in 0..FLOOD {
                flooded.tell_local(()).unwrap();
            }
            let observer = corelet::spawn(Observer {
                flooded: handled,
                target: FLOOD,
                seen: Vec::new(),
                done: None,
            })
            .unwrap();
            let seen = observer.ask_local(ObserverMsg::Start).await.unwrap();
            corelet::terminate(flooded.pid()).unwrap();
            seen
        })
        .unwrap();
    assert_eq!(seen.last(), Some(&FLOOD));
    // Between two turns of the observer the flooded process handled at
    // most one budget of messages: it never ran the flood to its end.
    let largest_step = seen.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        largest_step <= u64::from(BUDGET),
        "the flooded process ran {largest_step} messages in one turn (budget {BUDGET})"
    );
    let turns_seen = seen.iter().filter(|&&n| n < FLOOD).count() as u64;
    assert!(
        turns_seen >= FLOOD / u64::from(BUDGET),
        "the observer ran only {turns_seen} times during the flood"
    );
}

/// Always ready: sends itself a message from every handler, forever.
struct Spinner;

impl Process for Spinner {
    type Msg = ();
    async fn handle(&mut self, ctx: &mut Context<Self>, _msg: ()) -> HandlerResult {
        ctx.addr().tell_local(())?;
        Ok(())
    }
}

/// Reports a timer of its own firing.
struct Sleeper {
    fired: Option<ReplyTo<()>>,
}

enum SleeperMsg {
    Arm(ReplyTo<()>),
    Fire,
}

impl Process for Sleeper {
    type Msg = SleeperMsg;
    async fn handle(&mut self, ctx: &mut Context<Self>, msg: SleeperMsg) -> HandlerResult {
        match msg {
            SleeperMsg::Arm(reply) => {
                self.fired = Some(reply);
                ctx.send_self_after(SleeperMsg::Fire, Duration::from_millis(5));
            }
            SleeperMsg::Fire => {
                if let Some(reply) = self.fired.take() {
                    reply.send(());
                }
            }
        }
        Ok(())
    }
}

/// Reads a file with glommio's io_uring I/O inside its handler.
struct Reader;

impl Process for Reader {
    type Msg = (std::path::PathBuf, ReplyTo<Vec<u8>>);
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: Self::Msg) -> HandlerResult {
        let (path, reply) = msg;
        let file = glommio::io::BufferedFile::open(&path).await?;
        let bytes = file.read_at(0, 64).await?;
        file.close().await?;
        reply.send(bytes.to_vec());
        Ok(())
    }
}

#[test]
fn timers_and_io_complete_on_a_shard_whose_processes_are_always_ready() {
    let rt = Runtime::builder().shards(1).pin(false).build().unwrap();
    let dir = std::env::temp_dir().join(format!("corelet-fairness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("data");
    std::fs::write(&path, b"read under a flood").unwrap();
    let read = rt
        .block_on(ShardId(0), move || async move {
            let spinners: Vec<_> = (0..4)
                .map(|_| {
                    let s = corelet::spawn(Spinner).unwrap();
                    s.tell_local(()).unwrap();
                    s
                })
                .collect();
            // A glommio timer awaited by this (scheduler-run) task.
            glommio::timer::sleep(Duration::from_millis(5)).await;
            // A process timer.
            let sleeper = corelet::spawn(Sleeper { fired: None }).unwrap();
            sleeper.ask_local(SleeperMsg::Arm).await.unwrap();
            // io_uring I/O awaited inside a process's handler.
            let reader = corelet::spawn(Reader).unwrap();
            let read = reader.ask_local(|r| (path, r)).await.unwrap();
            for s in spinners {
                corelet::kill(s.pid()).unwrap();
            }
            read
        })
        .unwrap();
    assert_eq!(read, b"read under a flood");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[derive(Default)]
struct Counter(u64);

enum CounterMsg {
    Add,
    Get(ReplyTo<u64>),
}

impl Process for Counter {
    type Msg = CounterMsg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: CounterMsg) -> HandlerResult {
        match msg {
            CounterMsg::Add => self.0 += 1,
            CounterMsg::Get(reply) => reply.send(self.0),
        }
        Ok(())
    }
}

#[test]
fn an_always_ready_process_cannot_keep_the_rings_from_being_drained() {
    const N: u64 = 10_000;
    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    // Shard 1 is busy for good with spinners.
    rt.block_on(ShardId(1), || async {
        for _ in 0..4 {
            corelet::spawn(Spinner).unwrap().tell_local(()).unwrap();
        }
    })
    .unwrap();
    let counter = rt.spawn_on(ShardId(1), Counter::default).unwrap();
    // From the other shard, through the ring...
    let counted = rt
        .block_on(ShardId(0), move || async move {
            for _ in 0..N {
                counter.send(CounterMsg::Add).await.unwrap();
            }
            counter.ask(CounterMsg::Get).await.unwrap()
        })
        .unwrap();
    assert_eq!(counted, N);
    // ...and from this thread, through the injector.
    for _ in 0..N {
        rt.tell(&counter, CounterMsg::Add).unwrap();
    }
    assert_eq!(rt.ask(&counter, CounterMsg::Get).unwrap(), 2 * N);
}

/// One half of a ping-pong pair that bounces until `stop` is set (or a
/// safety limit, so that a starvation bug fails the test instead of
/// hanging it).
struct Bouncer {
    peer: Option<corelet::Addr<Bouncer>>,
    bounces: Rc<Cell<u64>>,
    stop: Rc<Cell<bool>>,
}

/// Bounces after which the pair gives up.
const SAFETY_LIMIT: u64 = 20_000_000;

enum BounceMsg {
    Peer(corelet::Addr<Bouncer>),
    Ball,
}

impl Process for Bouncer {
    type Msg = BounceMsg;
    async fn handle(&mut self, ctx: &mut Context<Self>, msg: BounceMsg) -> HandlerResult {
        match msg {
            BounceMsg::Peer(peer) => self.peer = Some(peer),
            BounceMsg::Ball => {
                self.bounces.set(self.bounces.get() + 1);
                if self.stop.get() || self.bounces.get() >= SAFETY_LIMIT {
                    ctx.stop();
                } else if let Some(peer) = &self.peer {
                    peer.tell_local(BounceMsg::Ball)?;
                }
            }
        }
        Ok(())
    }
}

/// Notes how many bounces had happened when it first ran, and stops the
/// pair.
struct Latecomer {
    bounces: Rc<Cell<u64>>,
    stop: Rc<Cell<bool>>,
}

impl Process for Latecomer {
    type Msg = ReplyTo<u64>;
    async fn handle(&mut self, ctx: &mut Context<Self>, reply: ReplyTo<u64>) -> HandlerResult {
        self.stop.set(true);
        reply.send(self.bounces.get());
        ctx.stop();
        Ok(())
    }
}

/// Work first (rule 5 of the scheduler): what a turn readies runs next,
/// from a stack. A local ping-pong pair keeps the top of that stack busy
/// forever; a process readied before it, lower on the stack, must still
/// get its turn.
#[test]
fn a_ping_pong_pair_does_not_starve_what_waits_below_it_on_the_stack() {
    let rt = Runtime::builder().shards(1).pin(false).build().unwrap();
    let seen = rt
        .block_on(ShardId(0), || async {
            let bounces = Rc::new(Cell::new(0));
            let stop = Rc::new(Cell::new(false));
            let bouncer = || Bouncer {
                peer: None,
                bounces: bounces.clone(),
                stop: stop.clone(),
            };
            let a = corelet::spawn(bouncer()).unwrap();
            let b = corelet::spawn(bouncer()).unwrap();
            let late = corelet::spawn(Latecomer {
                bounces: bounces.clone(),
                stop: stop.clone(),
            })
            .unwrap();
            // The latecomer is readied first (the bottom of the stack), then
            // the pair on top of it.
            let seen = late.ask_local(|r| r);
            a.tell_local(BounceMsg::Peer(b)).unwrap();
            b.tell_local(BounceMsg::Peer(a)).unwrap();
            a.tell_local(BounceMsg::Ball).unwrap();
            seen.await.unwrap()
        })
        .unwrap();
    assert!(
        seen < SAFETY_LIMIT,
        "the latecomer ran only when the pair gave up ({seen} bounces)"
    );
}

/// Sets a flag when it handles anything.
struct Flag(Rc<Cell<bool>>);

impl Process for Flag {
    type Msg = ();
    async fn handle(&mut self, _ctx: &mut Context<Self>, _msg: ()) -> HandlerResult {
        self.0.set(true);
        Ok(())
    }
}

/// Lookups after which the loop gives up, so that a starvation bug fails
/// the test instead of hanging it.
const LOOKUP_LIMIT: u64 = 2_000_000;

/// `whereis` of a name on this shard is answered before its reply is first
/// polled, so a loop of lookups is always ready; a process readied before
/// the loop must still run while the loop goes on.
#[test]
fn a_loop_of_lookups_answered_at_once_does_not_starve_its_shard() {
    let rt = Runtime::builder().shards(1).pin(false).build().unwrap();
    let looked_up = rt
        .block_on(ShardId(0), || async {
            let flag = Rc::new(Cell::new(false));
            let flagger = corelet::spawn(Flag(flag.clone())).unwrap();
            corelet::register("flagger", flagger.pid()).await.unwrap();
            flagger.tell(()).unwrap();
            let mut looked_up = 0;
            while !flag.get() && looked_up < LOOKUP_LIMIT {
                let found = corelet::whereis("flagger").await.unwrap();
                assert_eq!(found, Some(flagger.pid()));
                looked_up += 1;
            }
            looked_up
        })
        .unwrap();
    assert!(
        looked_up < LOOKUP_LIMIT,
        "the flagger never ran while the loop looked up"
    );
}

/// A `send` to a process of the same shard always finds room, so a loop of
/// `send().await` is always ready: a process readied before the loop must
/// still run while the loop goes on.
#[test]
fn a_loop_of_sends_that_always_find_room_does_not_starve_its_shard() {
    let rt = Runtime::builder().shards(1).pin(false).build().unwrap();
    let sent = rt
        .block_on(ShardId(0), || async {
            let flag = Rc::new(Cell::new(false));
            let flagger = corelet::spawn(Flag(flag.clone())).unwrap();
            let sink = corelet::spawn(Flooded {
                handled: Rc::default(),
            })
            .unwrap();
            flagger.tell(()).unwrap();
            let mut sent = 0;
            while !flag.get() && sent < LOOKUP_LIMIT {
                sink.send(()).await.unwrap();
                sent += 1;
            }
            sent
        })
        .unwrap();
    assert!(
        sent < LOOKUP_LIMIT,
        "the flagger never ran while the loop sent"
    );
}
