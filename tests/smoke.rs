//! Smoke test: spawn, tell, ask and terminate across two shards.

use corelet::{Context, HandlerResult, Process, ReplyTo, Runtime, ShardId};

struct Counter(u64);
enum Msg {
    Add(u64),
    Get(ReplyTo<u64>),
}

impl Process for Counter {
    type Msg = Msg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        match msg {
            Msg::Add(n) => self.0 += n,
            Msg::Get(reply) => reply.send(self.0),
        }
        Ok(())
    }
}

#[test]
fn smoke() {
    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    let total = rt
        .block_on(ShardId(0), || async {
            let counter = corelet::spawn_on(ShardId(1), || Counter(0)).await.unwrap();
            counter.tell(Msg::Add(40)).unwrap();
            counter.tell(Msg::Add(2)).unwrap();
            counter.ask(Msg::Get).await.unwrap()
        })
        .unwrap();
    assert_eq!(total, 42);
    let c = rt.spawn_on(ShardId(1), || Counter(5)).unwrap();
    rt.tell(&c, Msg::Add(1)).unwrap();
    assert_eq!(rt.ask(&c, Msg::Get).unwrap(), 6);
    let watch = rt.watch(c.pid()).unwrap();
    rt.terminate(c.pid()).unwrap();
    assert_eq!(watch.wait().unwrap(), corelet::ExitReason::Shutdown);
    println!("{:?}", rt.stats().unwrap());
}
