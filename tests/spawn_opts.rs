//! Spawning with options (`spawn_on_with`, `try_spawn_on_with`,
//! `spawn_with`) and reading another shard's counters (`shard_stats`).
//!
//! Sync points: a spawn request's reply travels the same ring as the link
//! (and any exit signal) the new process sends towards the spawner's
//! shard, so once `spawn_on_with` returns, an ask to a partner on the
//! spawner's shard is queued behind every exit signal already sent to it.

use corelet::{
    Context, Error, ExitReason, HandlerResult, Pid, Process, ReplyTo, Runtime, ShardId,
    SpawnOptions,
};
use std::time::Duration;

fn runtime(shards: usize) -> Runtime {
    Runtime::builder()
        .shards(shards)
        .pin(false)
        .build()
        .unwrap()
}

type Exits = Vec<(Pid, ExitReason)>;

/// Traps exits and reports the ones it received.
#[derive(Default)]
struct Partner {
    exits: Exits,
    waiting: Option<(usize, ReplyTo<Exits>)>,
}

enum PartnerMsg {
    /// Answered once this many exit signals have arrived.
    ExitsWhen(usize, ReplyTo<Exits>),
}

impl Partner {
    fn answer(&mut self) {
        if matches!(&self.waiting, Some((n, _)) if self.exits.len() >= *n) {
            let (_, reply) = self.waiting.take().unwrap();
            reply.send(self.exits.clone());
        }
    }
}

impl Process for Partner {
    type Msg = PartnerMsg;

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        ctx.trap_exits(true);
        Ok(())
    }

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: PartnerMsg) -> HandlerResult {
        let PartnerMsg::ExitsWhen(n, reply) = msg;
        self.waiting = Some((n, reply));
        self.answer();
        Ok(())
    }

    async fn handle_exit(
        &mut self,
        _ctx: &mut Context<Self>,
        from: Pid,
        reason: ExitReason,
    ) -> HandlerResult {
        self.exits.push((from, reason));
        self.answer();
        Ok(())
    }
}

/// Crashes on the message its own `init` queued: it dies on its very first
/// turn, before anything from outside can reach it.
struct Doomed {
    fail_init: bool,
}

enum DoomedMsg {
    Crash,
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

impl std::error::Error for Refused {}

impl Process for Doomed {
    type Msg = DoomedMsg;

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        if self.fail_init {
            return Err(Box::new(Refused));
        }
        let _ = ctx.addr().tell_local(DoomedMsg::Crash);
        Ok(())
    }

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: DoomedMsg) -> HandlerResult {
        let DoomedMsg::Crash = msg;
        panic!("first turn");
    }
}

/// A process that dies on its first turn is seen by its linked partner with
/// its real reason, from every shard to every shard (a link made after the
/// spawn returned would report `NoProcess` instead).
#[test]
fn a_linked_spawn_sees_a_crash_on_the_first_turn() {
    for shards in [2, 4] {
        let rt = runtime(shards);
        for from in 0..shards {
            for to in 0..shards {
                let (from, to) = (ShardId(from as u16), ShardId(to as u16));
                let exits = rt
                    .block_on(from, move || async move {
                        let partner = corelet::spawn(Partner::default()).unwrap();
                        let opts = SpawnOptions::new().link(partner.pid());
                        let child =
                            corelet::spawn_on_with(to, opts, || Doomed { fail_init: false })
                                .await
                                .unwrap();
                        // A bound, not a timing: without the link the
                        // exit never arrives and this fails instead of
                        // hanging.
                        let exits = partner
                            .ask(|r| PartnerMsg::ExitsWhen(1, r))
                            .timeout(Duration::from_secs(30))
                            .await
                            .unwrap();
                        corelet::terminate(partner.pid()).unwrap();
                        (child.pid(), exits)
                    })
                    .unwrap();
                let (child, exits) = exits;
                assert_eq!(child.shard(), to);
                assert_eq!(
                    exits,
                    vec![(child, ExitReason::Panicked("first turn".into()))],
                    "{from} -> {to}"
                );
            }
        }
    }
}

/// Declining, panicking and failing factories spawn nothing and link
/// nothing: the partner hears of no exit, and every shard's alive count is
/// back where it started.
#[test]
fn declined_or_failed_spawns_leave_nothing() {
    let rt = runtime(2);
    let before: Vec<u64> = rt.stats().unwrap().iter().map(|s| s.alive).collect();
    let outcome = rt
        .block_on(ShardId(0), || async {
            let partner = corelet::spawn(Partner::default()).unwrap();
            let opts = SpawnOptions::new().link(partner.pid());
            let mut results = Vec::new();
            for to in [ShardId(0), ShardId(1)] {
                let declined = corelet::try_spawn_on_with(to, opts, || None::<Doomed>).await;
                results.push(declined.map(|a| a.map(|a| a.pid())));
                let failed =
                    corelet::try_spawn_on_with(to, opts, || Some(Doomed { fail_init: true })).await;
                results.push(failed.map(|a| a.map(|a| a.pid())));
                let panicked = corelet::spawn_on_with(to, opts, || -> Doomed { panic!("factory") })
                    .await
                    .map(|a| Some(a.pid()));
                results.push(panicked);
            }
            // One real exit as a marker: it arrives after anything the
            // failed spawns could have sent.
            let marker = corelet::spawn_on_with(ShardId(1), opts, || Doomed { fail_init: false })
                .await
                .unwrap();
            let exits = partner.ask(|r| PartnerMsg::ExitsWhen(1, r)).await.unwrap();
            corelet::terminate(partner.pid()).unwrap();
            corelet::wait(partner.pid()).await.unwrap();
            (results, exits, marker.pid())
        })
        .unwrap();
    let (results, exits, marker) = outcome;
    for chunk in results.chunks(3) {
        assert_eq!(chunk[0], Ok(None), "a declining factory spawns nothing");
        assert_eq!(
            chunk[1],
            Err(Error::Init(ExitReason::Error("refused".into())))
        );
        assert_eq!(
            chunk[2],
            Err(Error::Init(ExitReason::Panicked("factory".into())))
        );
    }
    assert_eq!(
        exits,
        vec![(marker, ExitReason::Panicked("first turn".into()))]
    );
    let after: Vec<u64> = rt.stats().unwrap().iter().map(|s| s.alive).collect();
    assert_eq!(after, before);
}

/// Linking at spawn to a process that is gone stops the new process with
/// `Linked { NoProcess }` (it does not trap exits).
#[test]
fn a_spawn_linked_to_a_dead_pid_stops() {
    let rt = runtime(2);
    let reason = rt
        .block_on(ShardId(0), || async {
            let gone = corelet::spawn(Partner::default()).unwrap().pid();
            corelet::terminate(gone).unwrap();
            corelet::wait(gone).await.unwrap();
            let opts = SpawnOptions::new().link(gone);
            let child = corelet::spawn_on_with(ShardId(1), opts, Partner::default)
                .await
                .unwrap();
            // The partner traps exits: it keeps the NoProcess exit as a
            // message instead of stopping.
            let exits = child.ask(|r| PartnerMsg::ExitsWhen(1, r)).await.unwrap();
            corelet::terminate(child.pid()).unwrap();
            (gone, exits)
        })
        .unwrap();
    let (gone, exits) = reason;
    assert_eq!(exits, vec![(gone, ExitReason::NoProcess)]);
}

/// `spawn_with` links on the current shard; unknown shards and outside
/// threads are refused with typed errors.
#[test]
fn local_spawn_with_and_refusals() {
    let rt = runtime(2);
    let exits = rt
        .block_on(ShardId(1), || async {
            let partner = corelet::spawn(Partner::default()).unwrap();
            let opts = SpawnOptions::new().link(partner.pid());
            let child = corelet::spawn_with(opts, Doomed { fail_init: false }).unwrap();
            let exits = partner.ask(|r| PartnerMsg::ExitsWhen(1, r)).await.unwrap();
            let unknown = corelet::spawn_on_with(ShardId(9), opts, Partner::default).await;
            corelet::terminate(partner.pid()).unwrap();
            (child.pid(), exits, unknown.map(|a| a.pid()))
        })
        .unwrap();
    let (child, exits, unknown) = exits;
    assert_eq!(
        exits,
        vec![(child, ExitReason::Panicked("first turn".into()))]
    );
    assert_eq!(unknown, Err(Error::UnknownShard(ShardId(9))));
    let outside = futures_lite::future::block_on(corelet::spawn_on_with(
        ShardId(0),
        SpawnOptions::new(),
        Partner::default,
    ));
    assert_eq!(outside.map(|a| a.pid()), Err(Error::NotInRuntime));
    assert_eq!(
        corelet::spawn_with(SpawnOptions::new(), Partner::default()).map(|a| a.pid()),
        Err(Error::NotInRuntime)
    );
}

/// `shard_stats` reads every shard's counters from a shard thread; they
/// agree with the outside view, and each shard's alive count reflects the
/// processes placed there.
#[test]
fn shard_stats_reads_every_shard() {
    let rt = runtime(4);
    let seen = rt
        .block_on(ShardId(0), || async {
            let mut pids = Vec::new();
            for s in 0..4u16 {
                for _ in 0..=s {
                    let p = corelet::spawn_on(ShardId(s), Partner::default)
                        .await
                        .unwrap();
                    pids.push(p.pid());
                }
            }
            let mut alive = Vec::new();
            for s in 0..4u16 {
                let stats = corelet::shard_stats(ShardId(s)).await.unwrap();
                assert_eq!(stats.shard, s);
                alive.push(stats.alive);
            }
            let unknown = corelet::shard_stats(ShardId(4)).await;
            (pids, alive, unknown)
        })
        .unwrap();
    let (pids, alive, unknown) = seen;
    assert_eq!(alive, vec![1, 2, 3, 4]);
    assert_eq!(unknown, Err(Error::UnknownShard(ShardId(4))));
    let outside: Vec<u64> = rt.stats().unwrap().iter().map(|s| s.alive).collect();
    assert_eq!(outside, alive);
    for pid in pids {
        rt.terminate(pid).unwrap();
    }
    assert_eq!(
        futures_lite::future::block_on(corelet::shard_stats(ShardId(0))),
        Err(Error::NotInRuntime)
    );
}

/// Records `shutting_down()` as seen from its terminate hook.
struct Witness(std::sync::Arc<std::sync::Mutex<Vec<bool>>>);

impl Process for Witness {
    type Msg = ();
    async fn handle(&mut self, _ctx: &mut Context<Self>, _: ()) -> HandlerResult {
        Ok(())
    }
    async fn terminate(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        self.0.lock().unwrap().push(corelet::shutting_down());
    }
}

/// `shutting_down` is true on a shard only once the runtime stops it.
#[test]
fn shutting_down_is_true_only_during_runtime_shutdown() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut rt = runtime(2);
    let one = rt
        .spawn_on(ShardId(1), {
            let s = seen.clone();
            move || Witness(s)
        })
        .unwrap();
    let watch = rt.watch(one.pid()).unwrap();
    rt.terminate(one.pid()).unwrap();
    watch.wait().unwrap();
    rt.spawn_on(ShardId(0), {
        let s = seen.clone();
        move || Witness(s)
    })
    .unwrap();
    assert!(!corelet::shutting_down(), "off a shard thread");
    assert!(!rt
        .block_on(ShardId(0), || async { corelet::shutting_down() })
        .unwrap());
    rt.shutdown().unwrap();
    assert_eq!(*seen.lock().unwrap(), [false, true]);
}
