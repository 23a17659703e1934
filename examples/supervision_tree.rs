//! A two-level supervision tree across every shard, crashed on purpose.
//!
//! ```sh
//! cargo run --release --example supervision_tree
//! ```
//!
//! The root supervisor (shard 0) has one `pool` supervisor per shard, each
//! with two workers on its shard, and a `fragile` one-for-all group with a
//! low restart intensity. The run crashes pool workers (restarted after an
//! exponential backoff: watch the gaps), then crashes `fragile` twice
//! within its period so that it gives up and the root restarts the whole
//! group, then prints the tree and counters and stops everything.

use corelet::supervisor::{
    self, Backoff, ChildSpec, Placement, Strategy, SupervisorRef, SupervisorSpec,
};
use corelet::{Addr, Context, HandlerResult, Pid, Process, ReplyTo, Runtime, ShardId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A worker that crashes when told to, and announces each start.
struct Worker {
    id: String,
    starts: Addr<Starts>,
}

enum WorkerMsg {
    Crash,
}

impl Process for Worker {
    type Msg = WorkerMsg;

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        self.starts
            .tell(StartsMsg::Started(self.id.clone(), ctx.pid()))?;
        Ok(())
    }

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: WorkerMsg) -> HandlerResult {
        let WorkerMsg::Crash = msg;
        Err("simulated fault".into())
    }
}

/// Collects worker starts; answers "the n-th start of id" when it happens.
struct Starts {
    t0: Instant,
    seen: HashMap<String, Vec<Pid>>,
    waiting: Vec<(String, usize, ReplyTo<Pid>)>,
}

enum StartsMsg {
    Started(String, Pid),
    Nth(String, usize, ReplyTo<Pid>),
}

impl Process for Starts {
    type Msg = StartsMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: StartsMsg) -> HandlerResult {
        match msg {
            StartsMsg::Started(id, pid) => {
                let at = self.t0.elapsed().as_secs_f64() * 1e3;
                println!("{at:>9.1} ms  {id} started as {pid}");
                self.seen.entry(id).or_default().push(pid);
            }
            StartsMsg::Nth(id, n, reply) => self.waiting.push((id, n, reply)),
        }
        let seen = &self.seen;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(id, n, _)| seen.get(id).is_some_and(|v| v.len() >= *n));
        self.waiting = waiting;
        for (id, n, reply) in ready {
            reply.send(seen[&id][n - 1]);
        }
        Ok(())
    }
}

fn worker(id: String, starts: Addr<Starts>, shard: u16) -> ChildSpec {
    ChildSpec::worker(id.clone(), move || Worker {
        id: id.clone(),
        starts,
    })
    .placement(Placement::Shard(ShardId(shard)))
}

fn tree_spec(shards: u16, starts: Addr<Starts>) -> SupervisorSpec {
    let backoff = Backoff::exponential(Duration::from_millis(20), Duration::from_millis(160));
    let pools = (0..shards).map(|s| {
        let pool = SupervisorSpec::new(Strategy::OneForOne)
            .label(format!("pool-{s}"))
            .intensity(10, Duration::from_secs(10))
            .children(
                (0..2).map(|k| worker(format!("worker-{s}.{k}"), starts, s).backoff(backoff)),
            );
        ChildSpec::supervisor(format!("pool-{s}"), pool).placement(Placement::Shard(ShardId(s)))
    });
    let fragile = SupervisorSpec::new(Strategy::OneForAll)
        .label("fragile")
        .intensity(1, Duration::from_secs(60))
        .child(worker("fragile.a".into(), starts, 0))
        .child(worker("fragile.b".into(), starts, shards - 1));
    SupervisorSpec::new(Strategy::OneForOne)
        .label("root")
        .intensity(5, Duration::from_secs(10))
        .children(pools)
        .child(ChildSpec::supervisor("fragile", fragile).placement(Placement::RoundRobin))
}

/// The pid of child `id` of `sup`.
async fn child(sup: SupervisorRef, id: &str) -> Pid {
    let children = sup.which_children().await.expect("supervisor answers");
    let info = children
        .into_iter()
        .find(|c| c.id == id)
        .expect("child listed");
    info.status.pid().expect("child running")
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    events::print();
    let rt = Runtime::builder().pin(false).build()?;
    let shards = rt.shard_count() as u16;
    println!("a supervision tree on {shards} shards\n");
    rt.block_on(ShardId(0), move || async move {
        let starts = corelet::spawn(Starts {
            t0: Instant::now(),
            seen: HashMap::new(),
            waiting: Vec::new(),
        })?;
        let nth = |id: &str, n| starts.ask(move |r| StartsMsg::Nth(id.to_owned(), n, r));
        let root = supervisor::start(tree_spec(shards, starts)).await?;
        println!("\n{}", root.tree().await?);

        println!("crashing worker-0.0 three times (backoff 20, 40, 80 ms):");
        for n in 1..=3 {
            let pid = nth("worker-0.0", n).await?;
            Addr::<Worker>::from_pid(pid).tell(WorkerMsg::Crash)?;
        }
        nth("worker-0.0", 4).await?;
        println!("crashing worker-{}.1 (on the last shard):", shards - 1);
        let last = format!("worker-{}.1", shards - 1);
        let pid = nth(&last, 1).await?;
        Addr::<Worker>::from_pid(pid).tell(WorkerMsg::Crash)?;
        nth(&last, 2).await?;

        println!("\ncrashing fragile.b twice: its group gives up, the root restarts it:");
        let fragile_before = child(root, "fragile").await;
        let pid = nth("fragile.b", 1).await?;
        Addr::<Worker>::from_pid(pid).tell(WorkerMsg::Crash)?;
        let pid = nth("fragile.b", 2).await?;
        Addr::<Worker>::from_pid(pid).tell(WorkerMsg::Crash)?;
        nth("fragile.b", 3).await?;
        let fragile_after = child(root, "fragile").await;
        println!("fragile: {fragile_before} -> {fragile_after}");
        assert_ne!(fragile_before, fragile_after);

        let tree = root.tree().await?;
        println!("\n{tree}");
        let stats = tree.stats;
        println!(
            "root counters: starts {} restarts {} exits {} child intensity trips {}",
            stats.starts, stats.restarts, stats.exits, stats.child_intensity_trips
        );
        assert_eq!(stats.child_intensity_trips, 1);
        root.stop().await?;
        corelet::terminate(starts.pid())?;
        Ok::<(), BoxError>(())
    })??;
    Ok(())
}

/// Prints the supervisor's own events (restarts with their delay, the
/// intensity trip) as they happen: a minimal `tracing` subscriber.
mod events {
    use std::fmt::Write;

    struct Printer;

    struct Fields(String);

    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.0, "{value:?}");
            } else {
                let _ = write!(self.0, " {}={value:?}", field.name());
            }
        }
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }

    impl tracing::Subscriber for Printer {
        fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
            metadata.target() == "corelet::supervisor" && *metadata.level() <= tracing::Level::INFO
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            println!("             [{}] {}", event.metadata().level(), fields.0);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// Installs the printer for the whole program.
    pub fn print() {
        let _ = tracing::subscriber::set_global_default(Printer);
    }
}
