//! The ask hand-off (rule 6 of the scheduler, `shard/src/sched.rs`): a
//! runnable awaiting the reply to an ask of an idle process of its own
//! shard runs that process's turn at once instead of suspending. It must be
//! invisible except in speed: hand-offs never nest (a long chain of asks
//! does not grow the stack), a target that panics is the one that exits,
//! a target that suspends still answers later, and nothing runs before the
//! asker's `.await`.

use corelet::{Addr, AskError, Context, ExitReason, HandlerResult, Process, ReplyTo, Runtime};
use std::cell::Cell;
use std::rc::Rc;

fn runtime(shards: usize) -> Runtime {
    Runtime::builder()
        .shards(shards)
        .pin(false)
        .build()
        .unwrap()
}

/// Link `i` of a chain: asks the next link and answers with its answer
/// plus one; the last link answers 0.
struct Link {
    next: Option<Addr<Link>>,
}

enum LinkMsg {
    Depth(ReplyTo<u64>),
}

impl Process for Link {
    type Msg = LinkMsg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: LinkMsg) -> HandlerResult {
        let LinkMsg::Depth(reply) = msg;
        let depth = match &self.next {
            Some(next) => next.ask(LinkMsg::Depth).await? + 1,
            None => 0,
        };
        reply.send(depth);
        Ok(())
    }
}

/// 100,000 processes each asking the next one, all on one shard. Were
/// hand-offs allowed to nest, each link's turn would run inside the
/// previous one's poll and the shard thread's stack would overflow long
/// before the end of the chain.
#[test]
fn a_chain_of_local_asks_does_not_nest_hand_offs() {
    const LINKS: u64 = 100_000;
    let rt = runtime(1);
    let depth = rt
        .block_on(corelet::ShardId(0), || async {
            let mut next = None;
            for _ in 0..LINKS {
                next = Some(corelet::spawn(Link { next }).unwrap());
            }
            next.unwrap().ask(LinkMsg::Depth).await.unwrap()
        })
        .unwrap();
    assert_eq!(depth, LINKS - 1);
}

/// Panics on `Boom`; answers `Ping`.
struct Fragile;

enum FragileMsg {
    Boom(ReplyTo<()>),
}

impl Process for Fragile {
    type Msg = FragileMsg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: FragileMsg) -> HandlerResult {
        let FragileMsg::Boom(_reply) = msg;
        panic!("boom in a handed-off turn");
    }
}

/// Asks a [`Fragile`] to blow up when told to, and remembers what it saw.
struct Asker {
    target: Addr<Fragile>,
    seen: Option<Result<(), AskError>>,
}

enum AskerMsg {
    Provoke,
    Seen(ReplyTo<Option<Result<(), AskError>>>),
}

impl Process for Asker {
    type Msg = AskerMsg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: AskerMsg) -> HandlerResult {
        match msg {
            AskerMsg::Provoke => self.seen = Some(self.target.ask(FragileMsg::Boom).await),
            AskerMsg::Seen(reply) => reply.send(self.seen.clone()),
        }
        Ok(())
    }
}

/// The target's panic unwinds inside the asker's poll; it must be caught
/// there and charged to the target, whether the asker is a process or a
/// `block_on` task.
#[test]
fn a_target_that_panics_during_a_hand_off_is_the_one_that_exits() {
    let rt = runtime(1);
    let (from_task, from_process, exits) = rt
        .block_on(corelet::ShardId(0), || async {
            // A task asks directly.
            let fragile = corelet::spawn(Fragile).unwrap();
            let exit = corelet::wait(fragile.pid());
            let from_task = fragile.ask(FragileMsg::Boom).await;
            let first = exit.await.unwrap();
            // A process asks, in a turn of its own (told, not asked, so
            // that its ask is not itself inside a hand-off).
            let fragile = corelet::spawn(Fragile).unwrap();
            let asker = corelet::spawn(Asker {
                target: fragile,
                seen: None,
            })
            .unwrap();
            let exit = corelet::wait(fragile.pid());
            asker.tell(AskerMsg::Provoke).unwrap();
            let second = exit.await.unwrap();
            let from_process = asker.ask(AskerMsg::Seen).await.unwrap();
            (from_task, from_process, [first, second])
        })
        .expect("the task itself did not panic");
    assert_eq!(from_task, Err(AskError::NoReply));
    assert_eq!(from_process, Some(Err(AskError::NoReply)));
    for exit in exits {
        assert!(
            matches!(exit, ExitReason::Panicked(ref m) if m.contains("boom")),
            "the target exits with its panic, got {exit:?}"
        );
    }
    let stats = rt.stats().unwrap();
    assert_eq!(stats[0].exits.panicked, 2, "only the two targets panicked");
    assert_eq!(stats[0].alive, 1, "the asker is alive");
}

/// Answers only after asking a process on another shard (so its handler
/// suspends in the middle of a handed-off turn).
struct Relay {
    far: Addr<Counter>,
}

enum RelayMsg {
    Get(ReplyTo<u64>),
}

impl Process for Relay {
    type Msg = RelayMsg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: RelayMsg) -> HandlerResult {
        let RelayMsg::Get(reply) = msg;
        reply.send(self.far.ask(CounterMsg::Inc).await? * 10);
        Ok(())
    }
}

#[derive(Default)]
struct Counter {
    count: u64,
    seen: Option<Rc<Cell<u64>>>,
}

enum CounterMsg {
    Inc(ReplyTo<u64>),
}

impl Process for Counter {
    type Msg = CounterMsg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: CounterMsg) -> HandlerResult {
        let CounterMsg::Inc(reply) = msg;
        self.count += 1;
        if let Some(seen) = &self.seen {
            seen.set(self.count);
        }
        reply.send(self.count);
        Ok(())
    }
}

#[test]
fn a_handed_off_target_that_suspends_still_answers() {
    let rt = runtime(2);
    let far = rt.spawn_on(corelet::ShardId(1), Counter::default).unwrap();
    let answers = rt
        .block_on(corelet::ShardId(0), move || async move {
            let relay = corelet::spawn(Relay { far }).unwrap();
            let mut answers = Vec::new();
            for _ in 0..100 {
                answers.push(relay.ask(RelayMsg::Get).await.unwrap());
            }
            answers
        })
        .unwrap();
    assert_eq!(answers, (1..=100).map(|i| i * 10).collect::<Vec<_>>());
}

/// `ask()` only sends: the target runs no earlier than the asker's
/// `.await` (a process's code between two awaits runs alone on its shard).
#[test]
fn nothing_runs_between_ask_and_its_await() {
    let rt = runtime(1);
    let (before, after, answer) = rt
        .block_on(corelet::ShardId(0), || async {
            let seen = Rc::new(Cell::new(0));
            let counter = corelet::spawn(Counter {
                count: 0,
                seen: Some(seen.clone()),
            })
            .unwrap();
            let pending = counter.ask(CounterMsg::Inc);
            let before = seen.get();
            let answer = pending.await.unwrap();
            (before, seen.get(), answer)
        })
        .unwrap();
    assert_eq!((before, after, answer), (0, 1, 1));
}

/// Sets a flag when it handles anything.
struct Flagger(Rc<Cell<bool>>);

impl Process for Flagger {
    type Msg = ();
    async fn handle(&mut self, _ctx: &mut Context<Self>, _msg: ()) -> HandlerResult {
        self.0.set(true);
        Ok(())
    }
}

/// Asks after which the loop below gives up, so that a starvation bug
/// fails the test instead of hanging it.
const SAFETY_LIMIT: u64 = 2_000_000;

/// A loop of asks of an idle local process is answered by hand-offs, so it
/// would never suspend; it must still give the shard back now and then
/// (here: a process readied before the loop gets to run while the loop
/// goes on).
#[test]
fn a_loop_of_local_asks_does_not_starve_its_shard() {
    let rt = runtime(1);
    let asked = rt
        .block_on(corelet::ShardId(0), || async {
            let flag = Rc::new(Cell::new(false));
            let flagger = corelet::spawn(Flagger(flag.clone())).unwrap();
            let counter = corelet::spawn(Counter::default()).unwrap();
            flagger.tell(()).unwrap();
            let mut asked = 0;
            while !flag.get() && asked < SAFETY_LIMIT {
                counter.ask(CounterMsg::Inc).await.unwrap();
                asked += 1;
            }
            asked
        })
        .unwrap();
    assert!(
        asked < SAFETY_LIMIT,
        "the flagger never ran while the loop asked"
    );
}
