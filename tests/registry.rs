//! The name registry: register / whereis / unregister from outside threads
//! and from processes; `Taken` and `NoProcess`; names released at exit;
//! a new incarnation re-registering right after the old one's exit (the
//! registry's liveness probe), untouched by the old one's traffic; names
//! spread over many shards.

use corelet::{
    Addr, Context, Down, Error, ExitReason, HandlerResult, Pid, Process, RegistryError, ReplyTo,
    Runtime, ShardId,
};

const SHARDS: usize = 8;

fn runtime() -> Runtime {
    Runtime::builder()
        .shards(SHARDS)
        .pin(false)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// A process that can be named, counts hits, and uses the registry itself.

#[derive(Default)]
struct Named {
    hits: u64,
}

type Registered = Result<(), RegistryError>;

enum Msg {
    Hit,
    Hits(ReplyTo<u64>),
    /// Registers this process under the name.
    RegisterSelf(String, ReplyTo<Registered>),
    Register(String, Pid, ReplyTo<Registered>),
    Whereis(String, ReplyTo<Result<Option<Pid>, Error>>),
    Unregister(String, ReplyTo<Result<Option<Pid>, Error>>),
    Stop,
    Panic,
}

impl Process for Named {
    type Msg = Msg;

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        match msg {
            Msg::Hit => self.hits += 1,
            Msg::Hits(reply) => reply.send(self.hits),
            Msg::RegisterSelf(name, reply) => reply.send(corelet::register(name, ctx.pid()).await),
            Msg::Register(name, pid, reply) => reply.send(corelet::register(name, pid).await),
            Msg::Whereis(name, reply) => reply.send(corelet::whereis(name).await),
            Msg::Unregister(name, reply) => reply.send(corelet::unregister(name).await),
            Msg::Stop => ctx.stop(),
            Msg::Panic => panic!("boom"),
        }
        Ok(())
    }
}

/// Stops `pid` from an outside thread and waits for its exit.
fn stop(rt: &Runtime, pid: Pid) {
    let exited = rt.watch(pid).unwrap();
    rt.terminate(pid).unwrap();
    assert_eq!(exited.wait(), Ok(ExitReason::Shutdown));
}

/// The shard that owns `name`, found through the public counters: the one
/// whose `names` grows when the name is registered.
fn owner_of(rt: &Runtime, name: &str) -> ShardId {
    let p = rt.spawn_on(ShardId(0), Named::default).unwrap();
    let before = rt.stats().unwrap();
    rt.register(name, p.pid()).unwrap();
    let after = rt.stats().unwrap();
    assert_eq!(rt.unregister(name), Ok(Some(p.pid())));
    stop(rt, p.pid());
    let grown: Vec<usize> = (0..SHARDS)
        .filter(|&i| after[i].names == before[i].names + 1)
        .collect();
    assert_eq!(grown.len(), 1, "exactly one shard holds {name:?}");
    ShardId(grown[0] as u16)
}

/// A name owned by a shard other than `not`.
fn name_not_owned_by(rt: &Runtime, prefix: &str, not: ShardId) -> (String, ShardId) {
    for i in 0.. {
        let name = format!("{prefix}-{i}");
        let owner = owner_of(rt, &name);
        if owner != not {
            return (name, owner);
        }
    }
    unreachable!()
}

fn total_names(rt: &Runtime) -> u64 {
    rt.stats().unwrap().iter().map(|s| s.names).sum()
}

// ---------------------------------------------------------------------------

#[test]
fn register_whereis_unregister_from_an_outside_thread() {
    let rt = runtime();
    let p = rt.spawn_on(ShardId(2), Named::default).unwrap();
    let q = rt.spawn_on(ShardId(5), Named::default).unwrap();
    assert_eq!(rt.whereis("alpha"), Ok(None));
    assert_eq!(rt.register("alpha", p.pid()), Ok(()));
    assert_eq!(total_names(&rt), 1);
    assert_eq!(rt.register("alpha", p.pid()), Ok(()), "same pid again");
    assert_eq!(total_names(&rt), 1);
    assert_eq!(rt.whereis("alpha"), Ok(Some(p.pid())));
    assert_eq!(
        rt.register("alpha", q.pid()),
        Err(RegistryError::Taken(p.pid()))
    );
    // One process may hold several names.
    assert_eq!(rt.register("beta", p.pid()), Ok(()));
    assert_eq!(rt.whereis("beta"), Ok(Some(p.pid())));
    assert_eq!(rt.unregister("alpha"), Ok(Some(p.pid())));
    assert_eq!(rt.whereis("alpha"), Ok(None));
    assert_eq!(rt.unregister("alpha"), Ok(None));
    assert_eq!(rt.register("alpha", q.pid()), Ok(()));
    assert_eq!(rt.whereis("alpha"), Ok(Some(q.pid())));
    assert_eq!(rt.whereis("beta"), Ok(Some(p.pid())));
    assert_eq!(total_names(&rt), 2);
    // Registration names the process: a tell through the looked-up pid
    // reaches it.
    let found = rt.whereis("alpha").unwrap().unwrap();
    assert_eq!(found, q.pid());
    rt.tell(&q, Msg::Hit).unwrap();
    assert_eq!(rt.ask(&q, Msg::Hits), Ok(1));
}

#[test]
fn register_whereis_unregister_from_processes() {
    let rt = runtime();
    // Processes on three shards use the registry from their handlers.
    let a = rt.spawn_on(ShardId(1), Named::default).unwrap();
    let b = rt.spawn_on(ShardId(4), Named::default).unwrap();
    let c = rt.spawn_on(ShardId(7), Named::default).unwrap();
    let name = || "gamma".to_string();
    assert_eq!(rt.ask(&a, |r| Msg::RegisterSelf(name(), r)), Ok(Ok(())));
    assert_eq!(
        rt.ask(&b, |r| Msg::RegisterSelf(name(), r)),
        Ok(Err(RegistryError::Taken(a.pid())))
    );
    assert_eq!(
        rt.ask(&c, |r| Msg::Register(name(), b.pid(), r)),
        Ok(Err(RegistryError::Taken(a.pid())))
    );
    for p in [&a, &b, &c] {
        assert_eq!(
            rt.ask(p, |r| Msg::Whereis(name(), r)),
            Ok(Ok(Some(a.pid())))
        );
    }
    // Somebody else may unregister it.
    assert_eq!(
        rt.ask(&c, |r| Msg::Unregister(name(), r)),
        Ok(Ok(Some(a.pid())))
    );
    assert_eq!(rt.ask(&a, |r| Msg::Whereis(name(), r)), Ok(Ok(None)));
    // A process registers another.
    assert_eq!(
        rt.ask(&c, |r| Msg::Register(name(), b.pid(), r)),
        Ok(Ok(()))
    );
    assert_eq!(rt.whereis(name()), Ok(Some(b.pid())));

    // From a task on every shard.
    for s in 0..SHARDS {
        let bp = b.pid();
        let (found, taken) = rt
            .block_on(ShardId(s as u16), move || async move {
                (
                    corelet::whereis("gamma").await,
                    corelet::register("gamma", a.pid()).await,
                )
            })
            .unwrap();
        assert_eq!(found, Ok(Some(bp)), "shard {s}");
        assert_eq!(taken, Err(RegistryError::Taken(bp)), "shard {s}");
    }
    // And the shard-side calls need a shard.
    assert!(matches!(
        rt.block_on(ShardId(0), || async { corelet::whereis("x").await }),
        Ok(Ok(None))
    ));
}

#[test]
fn registering_nobody_is_no_process_and_leaves_the_name_free() {
    let rt = runtime();
    let mut nobodies = Vec::new();
    for s in [ShardId(2), ShardId(6)] {
        let p = rt.spawn_on(s, Named::default).unwrap();
        stop(&rt, p.pid());
        nobodies.push(p.pid());
    }
    nobodies.push(Pid::from_parts(ShardId(3), 100_000, 0));
    nobodies.push(Pid::from_parts(ShardId(SHARDS as u16 + 2), 0, 0));
    let live = rt.spawn_on(ShardId(1), Named::default).unwrap();
    for (i, &nobody) in nobodies.iter().enumerate() {
        // Several names, so that some are owned by the dead pid's shard and
        // some by others.
        for k in 0..8 {
            let name = format!("ghost-{i}-{k}");
            assert_eq!(
                rt.register(name.as_str(), nobody),
                Err(RegistryError::NoProcess(nobody)),
                "{name} {nobody}"
            );
            assert_eq!(rt.whereis(name.as_str()), Ok(None), "{name} {nobody}");
            // From a process too.
            let n = name.clone();
            assert_eq!(
                rt.ask(&live, |r| Msg::Register(n, nobody, r)),
                Ok(Err(RegistryError::NoProcess(nobody)))
            );
            // The failed claims left the name free.
            assert_eq!(rt.register(name.as_str(), live.pid()), Ok(()), "{name}");
            assert_eq!(rt.whereis(name.as_str()), Ok(Some(live.pid())));
        }
    }
}

#[test]
fn a_name_is_released_when_its_process_exits() {
    let rt = runtime();
    let x = ShardId(3);
    let (name, owner) = name_not_owned_by(&rt, "released", x);
    assert_ne!(owner, x);
    for round in 0..100 {
        let p = rt.spawn_on(x, Named::default).unwrap();
        rt.register(name.as_str(), p.pid()).unwrap();
        let exited = rt.watch(p.pid()).unwrap();
        let reason = match round % 4 {
            0 => {
                rt.tell(&p, Msg::Stop).unwrap();
                ExitReason::Normal
            }
            1 => {
                rt.terminate(p.pid()).unwrap();
                ExitReason::Shutdown
            }
            2 => {
                rt.kill(p.pid()).unwrap();
                ExitReason::Killed
            }
            _ => {
                rt.tell(&p, Msg::Panic).unwrap();
                ExitReason::Panicked("boom".into())
            }
        };
        assert_eq!(exited.wait(), Ok(reason));
        assert_eq!(rt.whereis(name.as_str()), Ok(None), "round {round}");
    }
    // Through the shard-side calls, from a third shard.
    let third = (0..SHARDS as u16)
        .map(ShardId)
        .find(|s| *s != x && *s != owner)
        .unwrap();
    let n = name.clone();
    rt.block_on(third, move || async move {
        for round in 0..100 {
            let p = corelet::spawn_on(x, Named::default).await.unwrap();
            corelet::register(n.as_str(), p.pid()).await.unwrap();
            let exited = corelet::wait(p.pid());
            corelet::kill(p.pid()).unwrap();
            assert_eq!(exited.await, Ok(ExitReason::Killed));
            assert_eq!(
                corelet::whereis(n.as_str()).await,
                Ok(None),
                "round {round}"
            );
        }
    })
    .unwrap();
}

// ---------------------------------------------------------------------------
// A new incarnation under the old name.

/// Links to and monitors pids (trapping exits) and reports what came back.
#[derive(Default)]
struct Observer {
    exits: Vec<(Pid, ExitReason)>,
    downs: Vec<Down>,
    waiting: Option<(usize, ReplyTo<Seen>)>,
}

type Seen = (Vec<(Pid, ExitReason)>, Vec<Down>);

enum ObserverMsg {
    LinkAndMonitor(Pid),
    /// Answered once this many exit signals and `Down`s came in.
    SeenWhen(usize, ReplyTo<Seen>),
}

impl Observer {
    fn answer(&mut self) {
        if matches!(&self.waiting, Some((n, _)) if self.exits.len() + self.downs.len() >= *n) {
            let (_, reply) = self.waiting.take().unwrap();
            reply.send((self.exits.clone(), self.downs.clone()));
        }
    }
}

impl Process for Observer {
    type Msg = ObserverMsg;

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        ctx.trap_exits(true);
        Ok(())
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: ObserverMsg) -> HandlerResult {
        match msg {
            ObserverMsg::LinkAndMonitor(pid) => {
                ctx.link(pid);
                ctx.monitor(pid);
            }
            ObserverMsg::SeenWhen(n, reply) => {
                self.waiting = Some((n, reply));
                self.answer();
            }
        }
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

    async fn handle_down(&mut self, _ctx: &mut Context<Self>, down: Down) -> HandlerResult {
        self.downs.push(down);
        self.answer();
        Ok(())
    }
}

#[test]
fn a_new_incarnation_registers_right_after_the_old_one_exits() {
    const ROUNDS: usize = 200;
    let rt = runtime();
    let x = ShardId(4);
    let (name, owner) = name_not_owned_by(&rt, "incarnation", x);
    assert_ne!(owner, x);
    let observer = rt.spawn_on(ShardId(6), Observer::default).unwrap();
    let mut seen = 0;
    let mut old = rt.spawn_on(x, Named::default).unwrap();
    rt.register(name.as_str(), old.pid()).unwrap();
    let dead_before = rt.stats().unwrap()[x.index()].dead_letters;
    for round in 0..ROUNDS {
        // Alternate between the ways the old one goes.
        let exited = rt.watch(old.pid()).unwrap();
        if round % 2 == 0 {
            rt.terminate(old.pid()).unwrap();
        } else {
            rt.kill(old.pid()).unwrap();
        }
        exited.wait().unwrap();
        let new = rt.spawn_on(x, Named::default).unwrap();
        assert_eq!(
            new.pid().slot(),
            old.pid().slot(),
            "round {round}: slot reused"
        );
        assert_ne!(new.pid(), old.pid());
        // Right after the exit: the old holder's release may not have
        // reached the name's shard yet; the registry must see it is gone.
        assert_eq!(
            rt.register(name.as_str(), new.pid()),
            Ok(()),
            "round {round}"
        );
        assert_eq!(rt.whereis(name.as_str()), Ok(Some(new.pid())));

        // The old incarnation's traffic reaches nobody.
        rt.tell(&old, Msg::Hit).unwrap();
        assert_eq!(rt.terminate(old.pid()), Err(Error::NoProcess(old.pid())));
        assert_eq!(rt.kill(old.pid()), Err(Error::NoProcess(old.pid())));
        if round % 20 == 0 {
            rt.tell(&observer, ObserverMsg::LinkAndMonitor(old.pid()))
                .unwrap();
            seen += 2;
            let (exits, downs) = rt
                .ask(&observer, |r| ObserverMsg::SeenWhen(seen, r))
                .unwrap();
            assert_eq!(exits.last(), Some(&(old.pid(), ExitReason::NoProcess)));
            let down = downs.last().unwrap();
            assert_eq!(
                (down.pid, &down.reason),
                (old.pid(), &ExitReason::NoProcess)
            );
        }
        assert_eq!(rt.ask(&new, Msg::Hits), Ok(0), "round {round}");
        assert_eq!(rt.whereis(name.as_str()), Ok(Some(new.pid())));
        old = new;
    }
    // Every stale `Hit`, `terminate` and `kill` was a dead letter on the
    // old incarnations' shard (and reached nobody else).
    let dead = rt.stats().unwrap()[x.index()].dead_letters - dead_before;
    assert_eq!(dead, 3 * ROUNDS as u64);
    // The last incarnation is still registered and alive.
    assert_eq!(rt.whereis(name.as_str()), Ok(Some(old.pid())));
    assert_eq!(rt.ask(&old, Msg::Hits), Ok(0));
}

#[test]
fn a_new_incarnation_re_registers_from_a_process_on_a_third_shard() {
    const ROUNDS: usize = 200;
    let rt = runtime();
    let x = ShardId(2);
    let (name, owner) = name_not_owned_by(&rt, "third", x);
    let third = (0..SHARDS as u16)
        .map(ShardId)
        .find(|s| *s != x && *s != owner)
        .unwrap();
    let n = name.clone();
    let last = rt
        .block_on(third, move || async move {
            let mut old = corelet::spawn_on(x, Named::default).await.unwrap();
            corelet::register(n.as_str(), old.pid()).await.unwrap();
            for round in 0..ROUNDS {
                let exited = corelet::wait(old.pid());
                corelet::terminate(old.pid()).unwrap();
                exited.await.unwrap();
                let new = corelet::spawn_on(x, Named::default).await.unwrap();
                assert_eq!(new.pid().slot(), old.pid().slot());
                assert_eq!(
                    corelet::register(n.as_str(), new.pid()).await,
                    Ok(()),
                    "round {round}"
                );
                // Stale traffic, from this shard.
                old.tell(Msg::Hit).unwrap(); // remote: counted there
                corelet::terminate(old.pid()).unwrap(); // likewise
                assert_eq!(new.ask(Msg::Hits).await, Ok(0), "round {round}");
                assert_eq!(corelet::whereis(n.as_str()).await, Ok(Some(new.pid())));
                old = new;
            }
            old
        })
        .unwrap();
    assert_eq!(rt.whereis(name.as_str()), Ok(Some(last.pid())));
    assert_eq!(rt.ask(&last, Msg::Hits), Ok(0));
}

#[test]
fn names_spread_over_the_shards_and_are_all_released() {
    const PER_SHARD: usize = 8;
    const N: usize = SHARDS * PER_SHARD;
    let rt = runtime();
    let procs: Vec<Addr<Named>> = (0..N)
        .map(|i| {
            rt.spawn_on(ShardId((i % SHARDS) as u16), Named::default)
                .unwrap()
        })
        .collect();
    let name = |i: usize| format!("svc-{i}");
    for (i, p) in procs.iter().enumerate() {
        if i % 2 == 0 {
            rt.register(name(i), p.pid()).unwrap();
        } else {
            let n = name(i);
            assert_eq!(rt.ask(p, |r| Msg::RegisterSelf(n, r)), Ok(Ok(())));
        }
    }
    let stats = rt.stats().unwrap();
    assert_eq!(stats.iter().map(|s| s.names).sum::<u64>(), N as u64);
    let holding = stats.iter().filter(|s| s.names > 0).count();
    assert!(
        holding > 1,
        "names are partitioned: {holding} shard(s) hold them"
    );
    for (i, p) in procs.iter().enumerate() {
        assert_eq!(rt.whereis(name(i)), Ok(Some(p.pid())));
    }
    // Unregister a quarter, then stop everyone.
    for i in (0..N).step_by(4) {
        assert_eq!(rt.unregister(name(i)), Ok(Some(procs[i].pid())));
    }
    assert_eq!(total_names(&rt), (N - N / 4) as u64);
    for p in &procs {
        stop(&rt, p.pid());
    }
    // From every shard, look every name up: these lookups travel the same
    // rings as the releases the exits sent, so they come after them.
    for s in 0..SHARDS {
        let found = rt
            .block_on(ShardId(s as u16), move || async move {
                let mut found = Vec::new();
                for i in 0..N {
                    found.push(corelet::whereis(format!("svc-{i}")).await.unwrap());
                }
                found
            })
            .unwrap();
        assert_eq!(found, vec![None; N], "from shard {s}");
    }
    assert_eq!(total_names(&rt), 0);
}
