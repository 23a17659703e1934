//! The process table: generational pids. A freed slot is reused, but a pid
//! of its previous occupant (a *stale* pid) never reaches the new one — not
//! a message, not a signal, not a wait.

use corelet::{
    AskError, Context, Error, ExitReason, HandlerResult, Pid, Process, ReplyTo, Runtime, SendError,
    ShardId,
};
use std::collections::HashSet;

/// Counts the `Hit`s it receives.
struct Counter {
    hits: u64,
}

enum Msg {
    Hit,
    Get(ReplyTo<u64>),
    Stop,
}

impl Process for Counter {
    type Msg = Msg;

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        match msg {
            Msg::Hit => self.hits += 1,
            Msg::Get(reply) => reply.send(self.hits),
            Msg::Stop => ctx.stop(),
        }
        Ok(())
    }
}

fn counter() -> Counter {
    Counter { hits: 0 }
}

fn dead_letters(rt: &Runtime, shard: ShardId) -> u64 {
    rt.stats().unwrap()[shard.index()].dead_letters
}

#[test]
fn stale_pid_never_reaches_the_slots_next_occupant() {
    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();

    // On the owning shard: exit, reuse the slot, then poke the stale pid.
    let (old, new) = rt
        .block_on(ShardId(1), || async {
            let old = corelet::spawn(counter()).unwrap();
            let exited = corelet::wait(old.pid());
            corelet::terminate(old.pid()).unwrap();
            assert_eq!(exited.await, Ok(ExitReason::Shutdown));

            let new = corelet::spawn(counter()).unwrap();
            assert_eq!(new.pid().shard(), old.pid().shard());
            assert_eq!(
                new.pid().slot(),
                old.pid().slot(),
                "the freed slot is reused"
            );
            assert_ne!(new.pid().generation(), old.pid().generation());
            assert_ne!(new.pid(), old.pid());
            assert_ne!(new, old);

            let stale = old.pid();
            assert!(matches!(
                old.tell(Msg::Hit),
                Err(SendError::NoProcess(Msg::Hit))
            ));
            assert!(matches!(
                old.tell_local(Msg::Hit),
                Err(SendError::NoProcess(Msg::Hit))
            ));
            assert_eq!(corelet::terminate(stale), Err(Error::NoProcess(stale)));
            assert_eq!(corelet::kill(stale), Err(Error::NoProcess(stale)));
            // `wait` on a stale local pid is answered at once: the first poll
            // already has the outcome.
            let at_once = futures_lite::future::poll_once(corelet::wait(stale)).await;
            assert_eq!(at_once, Some(Err(Error::NoProcess(stale))));
            assert!(matches!(old.ask(Msg::Get).await, Err(AskError::Send(_))));
            assert!(matches!(
                old.ask_local(Msg::Get).await,
                Err(AskError::Send(_))
            ));

            // A wait on the new incarnation is not satisfied by the old one's
            // exit: it is still pending.
            let waiting = futures_lite::future::poll_once(corelet::wait(new.pid())).await;
            assert!(waiting.is_none(), "the new occupant is alive");

            // Nothing of the above reached the new occupant, and it is alive.
            assert_eq!(new.ask(Msg::Get).await, Ok(0));
            (old, new)
        })
        .unwrap();

    // From another shard: fire-and-forget calls are accepted (the target
    // shard decides), but nothing reaches the new occupant.
    rt.block_on(ShardId(0), move || async move {
        old.tell(Msg::Hit).unwrap();
        old.send(Msg::Hit).await.unwrap();
        corelet::terminate(old.pid()).unwrap();
        corelet::kill(old.pid()).unwrap();
        assert_eq!(
            corelet::wait(old.pid()).await,
            Err(Error::NoProcess(old.pid()))
        );
        assert_eq!(old.ask(Msg::Get).await, Err(AskError::NoReply));
        // Same ring as everything above, so it arrives after all of it.
        assert_eq!(new.ask(Msg::Get).await, Ok(0));
    })
    .unwrap();

    // From an outside thread.
    let stale = old.pid();
    let before = dead_letters(&rt, ShardId(1));
    for _ in 0..3 {
        rt.tell(&old, Msg::Hit).unwrap();
    }
    // `stats` reaches shard 1 through the same injector, after the tells.
    assert_eq!(
        dead_letters(&rt, ShardId(1)),
        before + 3,
        "each message to a stale pid is a counted dead letter"
    );
    assert_eq!(rt.terminate(stale), Err(Error::NoProcess(stale)));
    assert_eq!(rt.kill(stale), Err(Error::NoProcess(stale)));
    assert_eq!(rt.wait(stale), Err(Error::NoProcess(stale)));
    assert_eq!(
        rt.watch(stale).unwrap().wait(),
        Err(Error::NoProcess(stale))
    );
    assert_eq!(rt.ask(&old, Msg::Get), Err(AskError::NoReply));
    assert_eq!(rt.ask(&new, Msg::Get), Ok(0), "no stale message arrived");

    // The new occupant survived every stale terminate and kill: it exits
    // only now, with its own reason.
    let watch = rt.watch(new.pid()).unwrap();
    rt.tell(&new, Msg::Stop).unwrap();
    assert_eq!(watch.wait(), Ok(ExitReason::Normal));
    let stats = rt.stats().unwrap();
    assert_eq!(stats[1].alive, 0);
    assert_eq!(stats[1].spawned, 2);
    assert_eq!(stats[1].exited, 2);
}

#[test]
fn pid_display_names_shard_slot_and_generation() {
    let pid = Pid::from_parts(ShardId(3), 17, 2);
    assert_eq!(pid.to_string(), "<3.17.2>");
    assert_eq!(format!("{pid:?}"), "<3.17.2>");
    assert_eq!(
        (pid.shard(), pid.slot(), pid.generation()),
        (ShardId(3), 17, 2)
    );

    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    let addr = rt.spawn_on(ShardId(1), counter).unwrap();
    let pid = addr.pid();
    assert_eq!(pid.shard(), ShardId(1));
    assert_eq!(
        pid.to_string(),
        format!("<1.{}.{}>", pid.slot(), pid.generation())
    );
    assert_eq!(
        Pid::from_parts(ShardId(1), pid.slot(), pid.generation()),
        pid
    );
    assert_eq!(format!("{addr:?}"), format!("Addr{pid}"));
}

#[test]
fn spawn_exit_cycles_reuse_slots_and_leave_nothing_alive() {
    const CYCLES: usize = 500;
    const BATCH: usize = 64;
    const ROUNDS: usize = 8;
    let rt = Runtime::builder().shards(8).pin(false).build().unwrap();

    for shard in 0..8u16 {
        let (pids, max_slot) = rt
            .block_on(ShardId(shard), || async move {
                // One at a time: the single slot is reused every cycle, with a
                // fresh generation each time.
                let mut pids = Vec::with_capacity(CYCLES);
                for _ in 0..CYCLES {
                    let a = corelet::spawn(counter()).unwrap();
                    let exited = corelet::wait(a.pid());
                    a.tell(Msg::Stop).unwrap();
                    assert_eq!(exited.await, Ok(ExitReason::Normal));
                    pids.push(a.pid());
                }
                // In batches: the table never grows past the batch size.
                let mut max_slot = 0;
                for _ in 0..ROUNDS {
                    let batch: Vec<_> = (0..BATCH)
                        .map(|_| corelet::spawn(counter()).unwrap())
                        .collect();
                    let waits: Vec<_> = batch.iter().map(|a| corelet::wait(a.pid())).collect();
                    for a in &batch {
                        max_slot = max_slot.max(a.pid().slot());
                        a.tell(Msg::Stop).unwrap();
                    }
                    for w in waits {
                        assert_eq!(w.await, Ok(ExitReason::Normal));
                    }
                }
                let stats = corelet::local_stats().unwrap();
                assert_eq!(stats.alive, 0);
                assert_eq!(stats.spawned, (CYCLES + BATCH * ROUNDS) as u64);
                assert_eq!(stats.exited, stats.spawned);
                (pids, max_slot)
            })
            .unwrap();
        let distinct: HashSet<Pid> = pids.iter().copied().collect();
        assert_eq!(distinct.len(), CYCLES, "every incarnation has its own pid");
        let slots: HashSet<u32> = pids.iter().map(|p| p.slot()).collect();
        assert_eq!(slots.len(), 1, "sequential cycles reuse one slot");
        assert!(pids.iter().all(|p| p.shard() == ShardId(shard)));
        assert!((max_slot as usize) < BATCH, "freed slots are reused");
    }

    for s in rt.stats().unwrap() {
        assert_eq!(s.alive, 0, "{s:?}");
        assert_eq!(s.spawned, s.exited, "{s:?}");
    }
}
