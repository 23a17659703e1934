//! Smoke test: spawn, tell, ask and terminate across two shards.

//! It runs the README example's `Counter` (examples/counter.rs), so the
//! example the README shows is the one tested.

#[path = "../examples/counter.rs"]
#[allow(dead_code)] // the example's `main` is not used here
mod counter;

use corelet::{Runtime, ShardId};
use counter::{Counter, Msg};

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
