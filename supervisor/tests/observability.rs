//! Observability: a tracing event per start, exit, restart, intensity trip
//! and auto-shutdown, naming the supervisor, the child and the reason;
//! the restart event carries the backoff delay (which goes back to the
//! base after a long enough run); counters and the printed tree.

mod common;

use common::*;
use corelet_shard::ShardId;
use corelet_supervisor::{
    self as supervisor, AutoShutdown, Backoff, ManualClock, Placement, Restart, Strategy,
    SupervisorSpec,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

#[derive(Clone, Debug)]
struct Event {
    message: String,
    fields: HashMap<String, String>,
}

struct Recorder(Arc<Mutex<Vec<Event>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "corelet::supervisor"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        self.0.lock().unwrap().push(Event { message, fields });
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn recorded() -> Arc<Mutex<Vec<Event>>> {
    static EVENTS: OnceLock<Arc<Mutex<Vec<Event>>>> = OnceLock::new();
    EVENTS
        .get_or_init(|| {
            let events = Arc::new(Mutex::new(Vec::new()));
            tracing::subscriber::set_global_default(Recorder(events.clone())).unwrap();
            events
        })
        .clone()
}

/// The events of one supervisor, as (message, child, reason).
fn of(sup: corelet_shard::Pid) -> Vec<(String, String, String)> {
    let sup = sup.to_string();
    recorded()
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.fields.get("supervisor") == Some(&sup))
        .map(|e| {
            let get = |k: &str| e.fields.get(k).cloned().unwrap_or_default();
            (e.message.clone(), get("child"), get("reason"))
        })
        .collect()
}

fn ev(message: &str, child: &str, reason: &str) -> (String, String, String) {
    (message.into(), child.into(), reason.into())
}

/// One test, one runtime: pids are unique within a runtime only, and the
/// subscriber is global to this binary.
#[test]
fn supervisors_leave_events_counters_and_a_tree() {
    let events = recorded();
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        events_of_a_life(&log).await;
        dynamic_escalation(&log).await;
        backoff_delays(&log).await;
        counters_and_tree(&log).await;
    });
    assert!(!events.lock().unwrap().is_empty());
}

async fn events_of_a_life(log: &Log) {
    {
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1, Duration::from_secs(3600))
            .child(worker("w", log).placement(Placement::Shard(ShardId(1))));
        let sup = supervisor::start(spec).await.unwrap();
        let waiting = corelet_shard::wait(sup.pid());
        let w1 = log.starts("w", 1).await[0];
        end(w1, How::Error);
        let w2 = log.starts("w", 2).await[1];
        end(w2, How::Panic);
        waiting.await.unwrap();
        assert_eq!(
            of(sup.pid()),
            [
                ev("child started", "w", ""),
                ev("child exited", "w", "error: told to fail"),
                ev("restarting child", "w", ""),
                ev("child started", "w", ""),
                ev("child exited", "w", "panicked: told to panic"),
                ev(
                    "restart intensity exceeded; shutting down",
                    "w",
                    "reached max restart intensity"
                ),
                ev("supervisor exited", "", "shutdown"),
            ]
        );
        // Auto-shutdown names the significant child.
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(
                worker("s", log)
                    .restart(Restart::Temporary)
                    .significant(true),
            );
        let sup = supervisor::start(spec).await.unwrap();
        let waiting = corelet_shard::wait(sup.pid());
        end(log.starts("s", 1).await[0], How::Normal);
        waiting.await.unwrap();
        assert!(of(sup.pid()).contains(&ev("auto-shutdown", "s", "significant child exited")));
    }
}

/// A dynamic supervisor that escalates stops its live children and
/// reports nothing unexpected (the child that just exited is not stopped
/// again).
async fn dynamic_escalation(log: &Log) {
    let log2 = log.clone();
    let template = corelet_supervisor::ChildSpec::template("dyn", move |id: String| Worker {
        id,
        log: log2.clone(),
        knobs: Knobs::default(),
        handled: 0,
    });
    let spec = corelet_supervisor::DynamicSpec::new(template).intensity(0, Duration::from_secs(60));
    let sup = supervisor::start_dynamic(spec).await.unwrap();
    let waiting = corelet_shard::wait(sup.pid());
    let keep = sup.start_child("keep".into()).await.unwrap().unwrap();
    let crash = sup.start_child("crash".into()).await.unwrap().unwrap();
    end(crash, How::Error);
    waiting.await.unwrap();
    assert!(
        corelet_shard::wait(keep).await.is_err(),
        "stopped with its supervisor"
    );
    let events = of(sup.pid());
    assert!(events.contains(&ev(
        "restart intensity exceeded; shutting down",
        "dyn",
        "reached max restart intensity"
    )));
    assert!(
        !events.iter().any(|e| e.0.contains("unexpected")),
        "{events:?}"
    );
}

/// The restart event carries the backoff delay, which goes back to the
/// base after a run of a whole period.
async fn backoff_delays(log: &Log) {
    let delays = {
        let clock = ManualClock::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(10))
            .clock(clock.clone())
            .child(worker("bo", log).backoff(Backoff::exponential(
                Duration::from_millis(1),
                Duration::from_secs(3600),
            )));
        let sup = supervisor::start(spec).await.unwrap();
        for n in 0..3 {
            end(log.starts("bo", n + 1).await[n], How::Error);
        }
        // This incarnation runs a whole period before it crashes.
        let pid = log.starts("bo", 4).await[3];
        clock.advance(Duration::from_secs(11));
        end(pid, How::Error);
        log.starts("bo", 5).await;
        let sup_pid = sup.pid().to_string();
        sup.stop().await.unwrap();
        recorded()
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                e.message == "restarting child" && e.fields.get("supervisor") == Some(&sup_pid)
            })
            .map(|e| e.fields["delay_ms"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(delays, ["1", "2", "4", "1"]);
}

async fn counters_and_tree(log: &Log) {
    {
        let sub = SupervisorSpec::new(Strategy::RestForOne)
            .label("inner")
            .child(worker("x", log).placement(Placement::Shard(ShardId(1))));
        let spec = SupervisorSpec::new(Strategy::OneForAll)
            .label("outer")
            .intensity(5, Duration::from_secs(3600))
            .child(worker("a", log))
            .child(corelet_supervisor::ChildSpec::supervisor("inner", sub));
        let sup = supervisor::start(spec).await.unwrap();
        end(log.starts("a", 1).await[0], How::Error);
        log.starts("x", 2).await;
        let tree = sup.tree().await.unwrap();
        let stats = tree.stats;
        assert_eq!((stats.starts, stats.exits, stats.restarts), (4, 1, 1));
        let printed = tree.to_string();
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines.len(), 4, "{printed}");
        assert!(lines[0].starts_with("outer <0."), "{printed}");
        assert!(lines[0].contains("[OneForAll]"), "{printed}");
        assert!(lines[1].starts_with("├─ a <0."), "{printed}");
        assert!(
            lines[1].ends_with("Worker (Permanent, restarts 1)"),
            "{printed}"
        );
        assert!(lines[2].starts_with("└─ inner <"), "{printed}");
        assert!(
            lines[2].contains("[RestForOne] (Permanent, restarts 1) starts 1"),
            "{printed}"
        );
        assert!(lines[3].starts_with("   └─ x <1."), "{printed}");
        sup.stop().await.unwrap();
    }
}
