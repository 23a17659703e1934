//! `Addr::from_pid`: a typed address for a pid found elsewhere (here: by
//! `whereis`) reaches the process when the type is right and is refused,
//! never misdelivered, when it is wrong.

use corelet::{Addr, AskError, Context, HandlerResult, Process, ReplyTo, Runtime, ShardId};

struct Counter(u64);

enum CounterMsg {
    Add(u64),
    Get(ReplyTo<u64>),
}

impl Process for Counter {
    type Msg = CounterMsg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: CounterMsg) -> HandlerResult {
        match msg {
            CounterMsg::Add(n) => self.0 += n,
            CounterMsg::Get(reply) => reply.send(self.0),
        }
        Ok(())
    }
}

/// A process with a different message type.
struct Other;

impl Process for Other {
    type Msg = ReplyTo<u64>;
    async fn handle(&mut self, _ctx: &mut Context<Self>, reply: ReplyTo<u64>) -> HandlerResult {
        reply.send(7);
        Ok(())
    }
}

#[test]
fn a_pid_found_by_name_can_be_messaged_with_the_right_type_only() {
    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    let counter = rt.spawn_on(ShardId(1), || Counter(0)).unwrap();
    rt.register("counter", counter.pid()).unwrap();
    let dead_before = rt.stats().unwrap()[1].dead_letters;
    let (total, remote_wrong, local_wrong) = rt
        .block_on(ShardId(0), || async {
            let pid = corelet::whereis("counter").await.unwrap().unwrap();
            let typed = Addr::<Counter>::from_pid(pid);
            typed.tell(CounterMsg::Add(40)).unwrap();
            typed.tell(CounterMsg::Add(2)).unwrap();
            let total = typed.ask(CounterMsg::Get).await.unwrap();
            // The wrong type across shards: dropped (with its reply handle)
            // and counted there, so the ask fails instead of hanging.
            let remote_wrong = Addr::<Other>::from_pid(pid).ask(|r| r).await;
            // The wrong type on the target's own shard: refused at once.
            let local = corelet::spawn(Counter(0)).unwrap();
            let local_wrong = Addr::<Other>::from_pid(local.pid()).ask(|r| r).await;
            (total, remote_wrong, local_wrong)
        })
        .unwrap();
    assert_eq!(total, 42);
    assert_eq!(remote_wrong, Err(AskError::NoReply));
    assert_eq!(
        local_wrong,
        Err(AskError::Send("process has a different message type"))
    );
    assert_eq!(rt.stats().unwrap()[1].dead_letters, dead_before + 1);
}

/// An address returned by a spawn is checked like any other: on another
/// runtime the same pid may name a process of another type. (A guard for
/// any shortcut that trusts a spawned address's type: one was tried, see
/// the stamp in docs/architecture.md.)
#[test]
fn an_address_from_another_runtime_is_checked_where_its_pid_names_another_process() {
    let first = Runtime::builder().shards(1).pin(false).build().unwrap();
    let second = Runtime::builder().shards(1).pin(false).build().unwrap();
    let counter = first.spawn_on(ShardId(0), || Counter(0)).unwrap();
    let other = second.spawn_on(ShardId(0), || Other).unwrap();
    assert_eq!(
        counter.pid(),
        other.pid(),
        "the test needs one pid naming two processes"
    );
    let (told, asked) = second
        .block_on(ShardId(0), move || async move {
            let told = counter.tell(CounterMsg::Add(1)).map_err(|e| e.to_string());
            let asked = counter.ask(CounterMsg::Get).await;
            (told, asked)
        })
        .unwrap();
    assert_eq!(told, Err("process has a different message type".into()));
    assert_eq!(
        asked,
        Err(AskError::Send("process has a different message type"))
    );
    // On its own runtime the same address delivers.
    let total = first
        .block_on(ShardId(0), move || async move {
            counter.tell(CounterMsg::Add(5)).unwrap();
            counter.ask(CounterMsg::Get).await.unwrap()
        })
        .unwrap();
    assert_eq!(total, 5);
}

#[test]
fn an_address_is_as_small_as_a_pid() {
    assert_eq!(std::mem::size_of::<Addr<Counter>>(), 12);
    assert_eq!(
        std::mem::size_of::<Addr<Counter>>(),
        std::mem::size_of::<corelet::Pid>()
    );
}
