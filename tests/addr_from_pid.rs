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
