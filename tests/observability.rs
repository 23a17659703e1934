//! Observability: exit counters by reason for a known mix of exits on
//! every shard (`spawned - exited == alive`), and the tracing a process
//! leaves: a `process` span carrying its pid (and its registered name),
//! with `process spawned` and `process exited` events inside it.

use corelet::{
    Addr, Context, ExitCounts, ExitReason, HandlerResult, Process, ReplyTo, Runtime, ShardId,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

const SHARDS: usize = 8;

fn runtime() -> Runtime {
    Runtime::builder()
        .shards(SHARDS)
        .pin(false)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// A process that can end every way.

struct Mortal {
    fail_init: bool,
}

enum Msg {
    Stop,
    Fail,
    Panic,
    /// Links, then pings the other side: once answered, the link is in
    /// place on both sides.
    Link(Addr<Mortal>, ReplyTo<()>),
    Ping(ReplyTo<()>),
}

#[derive(Debug)]
struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fail")
    }
}

impl std::error::Error for Failure {}

impl Process for Mortal {
    type Msg = Msg;

    fn init(&mut self, _ctx: &mut Context<Self>) -> HandlerResult {
        if self.fail_init {
            return Err(Box::new(Failure));
        }
        Ok(())
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        match msg {
            Msg::Stop => ctx.stop(),
            Msg::Fail => return Err(Box::new(Failure)),
            Msg::Panic => panic!("boom"),
            Msg::Link(other, reply) => {
                ctx.link(other.pid());
                other.ask(Msg::Ping).await?;
                reply.send(());
            }
            Msg::Ping(reply) => reply.send(()),
        }
        Ok(())
    }
}

fn mortal() -> Mortal {
    Mortal { fail_init: false }
}

/// Ends `p` one way from an outside thread, waits, and counts the exit in
/// `expected` (indexed by shard).
fn end(rt: &Runtime, p: &Addr<Mortal>, how: usize, expected: &mut [ExitCounts]) {
    let exited = rt.watch(p.pid()).unwrap();
    let e = &mut expected[p.pid().shard().index()];
    let reason = match how {
        0 => {
            rt.tell(p, Msg::Stop).unwrap();
            e.normal += 1;
            ExitReason::Normal
        }
        1 => {
            rt.terminate(p.pid()).unwrap();
            e.shutdown += 1;
            ExitReason::Shutdown
        }
        2 => {
            rt.shutdown_process(p.pid()).unwrap();
            e.shutdown += 1;
            ExitReason::Shutdown
        }
        3 => {
            rt.kill(p.pid()).unwrap();
            e.killed += 1;
            ExitReason::Killed
        }
        4 => {
            rt.tell(p, Msg::Panic).unwrap();
            e.panicked += 1;
            ExitReason::Panicked("boom".into())
        }
        _ => {
            rt.tell(p, Msg::Fail).unwrap();
            e.error += 1;
            ExitReason::Error("fail".into())
        }
    };
    assert_eq!(exited.wait(), Ok(reason));
}

#[test]
fn exit_counters_add_up_by_reason_on_every_shard() {
    install();
    let rt = runtime();
    let mut expected = vec![ExitCounts::default(); SHARDS];
    let mut spawned = [0u64; SHARDS];
    let mut survivors = Vec::new();
    for s in 0..SHARDS {
        let shard = ShardId(s as u16);
        // A different mix on every shard: shard s ends 1 + (s + how) % 3
        // processes each way.
        for how in 0..6 {
            for _ in 0..1 + (s + how) % 3 {
                let p = rt.spawn_on(shard, mortal).unwrap();
                spawned[s] += 1;
                end(&rt, &p, how, &mut expected);
            }
        }
        // A failed `init` counts as spawned and as an exit with its error.
        assert!(rt.spawn_on(shard, || Mortal { fail_init: true }).is_err());
        spawned[s] += 1;
        expected[s].error += 1;
        // A process stopped by a linked process's death, which is on the
        // next shard and killed.
        let linked = rt.spawn_on(shard, mortal).unwrap();
        let partner = rt
            .spawn_on(ShardId(((s + 1) % SHARDS) as u16), mortal)
            .unwrap();
        spawned[s] += 1;
        spawned[(s + 1) % SHARDS] += 1;
        rt.ask(&linked, |r| Msg::Link(partner, r)).unwrap();
        let linked_exit = rt.watch(linked.pid()).unwrap();
        end(&rt, &partner, 3, &mut expected);
        assert_eq!(
            linked_exit.wait(),
            Ok(ExitReason::Linked {
                pid: partner.pid(),
                reason: Box::new(ExitReason::Killed),
            })
        );
        expected[s].linked += 1;
        // And `s` that stay alive.
        for _ in 0..s {
            survivors.push(rt.spawn_on(shard, mortal).unwrap());
            spawned[s] += 1;
        }
    }
    let stats = rt.stats().unwrap();
    for (s, st) in stats.iter().enumerate() {
        assert_eq!(st.shard as usize, s);
        assert_eq!(st.exits, expected[s], "shard {s}");
        assert_eq!(st.exited, expected[s].total(), "shard {s}");
        assert_eq!(st.spawned, spawned[s], "shard {s}");
        assert_eq!(st.alive, s as u64, "shard {s}");
        assert_eq!(st.spawned - st.exited, st.alive, "shard {s}");
    }
    // The survivors still answer; the counters are per shard, not global.
    for p in &survivors {
        assert_eq!(rt.ask(p, Msg::Ping), Ok(()));
    }
}

// ---------------------------------------------------------------------------
// A minimal `tracing` subscriber that records spans and events.

#[derive(Clone, Debug)]
struct SpanRecord {
    name: &'static str,
    fields: HashMap<String, String>,
}

#[derive(Clone, Debug)]
struct EventRecord {
    message: String,
    fields: HashMap<String, String>,
    /// The explicit parent, else the span entered on the emitting thread.
    parent: Option<u64>,
}

#[derive(Default)]
struct Recorded {
    next_id: Mutex<u64>,
    spans: Mutex<HashMap<u64, SpanRecord>>,
    events: Mutex<Vec<EventRecord>>,
}

struct Recorder(Arc<Recorded>);

thread_local! {
    static ENTERED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Collects every field as text.
struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _metadata: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let id = {
            let mut next = self.0.next_id.lock().unwrap();
            *next += 1;
            *next
        };
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.0.spans.lock().unwrap().insert(
            id,
            SpanRecord {
                name: attrs.metadata().name(),
                fields,
            },
        );
        tracing::span::Id::from_u64(id)
    }

    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        if let Some(s) = self.0.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut s.fields));
        }
    }

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let parent = match event.parent() {
            Some(id) => Some(id.into_u64()),
            None if event.is_contextual() => ENTERED.with(|e| e.borrow().last().copied()),
            None => None,
        };
        self.0.events.lock().unwrap().push(EventRecord {
            message: fields.remove("message").unwrap_or_default(),
            fields,
            parent,
        });
    }

    fn enter(&self, span: &tracing::span::Id) {
        ENTERED.with(|e| e.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &tracing::span::Id) {
        ENTERED.with(|e| {
            let mut e = e.borrow_mut();
            if let Some(i) = e.iter().rposition(|id| *id == span.into_u64()) {
                e.remove(i);
            }
        });
    }
}

/// Installs the recorder as the global subscriber (shard threads are not
/// this thread) once for this test binary.
fn install() -> Arc<Recorded> {
    static RECORDED: OnceLock<Arc<Recorded>> = OnceLock::new();
    RECORDED
        .get_or_init(|| {
            let recorded = Arc::new(Recorded::default());
            tracing::subscriber::set_global_default(Recorder(recorded.clone()))
                .expect("no other global subscriber in this test binary");
            recorded
        })
        .clone()
}

#[test]
fn a_process_leaves_a_span_with_spawned_and_exited_events() {
    let recorded = install();
    let rt = runtime();
    let p = rt.spawn_on(ShardId(5), mortal).unwrap();
    let pid = p.pid();
    // Pids repeat across runtimes (other tests in this binary run
    // meanwhile): a name nobody else uses picks out this process's span.
    rt.register("traced-process", pid).unwrap();
    let exited = rt.watch(pid).unwrap();
    rt.terminate(pid).unwrap();
    assert_eq!(exited.wait(), Ok(ExitReason::Shutdown));

    let spans = recorded.spans.lock().unwrap().clone();
    let ours: Vec<u64> = spans
        .iter()
        .filter(|(_, s)| {
            s.name == "process"
                && s.fields.get("name").map(String::as_str) == Some("traced-process")
        })
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(ours.len(), 1, "one process span named traced-process");
    let span = &spans[&ours[0]];
    assert_eq!(span.fields.get("pid"), Some(&pid.to_string()), "{span:?}");

    let events: Vec<EventRecord> = recorded
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.parent == Some(ours[0]))
        .cloned()
        .collect();
    let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        ["process spawned", "process exited"],
        "{events:?}"
    );
    for e in &events {
        assert_eq!(e.fields.get("pid"), Some(&pid.to_string()), "{e:?}");
    }
    assert_eq!(
        events[1].fields.get("reason").map(String::as_str),
        Some("shutdown")
    );
    // The registration is logged too (outside the span: the registry runs
    // on the shard, not in the process).
    let registered = recorded
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            e.message == "name registered"
                && e.fields.get("name").map(String::as_str) == Some("traced-process")
        })
        .count();
    assert_eq!(registered, 1);
}
