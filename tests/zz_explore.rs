use corelet::*;
struct P;
enum M {
    Boom,
    Get(ReplyTo<u32>),
}
impl Process for P {
    type Msg = M;
    async fn handle(&mut self, _c: &mut Context<Self>, m: M) -> HandlerResult {
        match m {
            M::Boom => {
                glommio::spawn_local(async {
                    futures_lite::future::yield_now().await;
                    panic!("boom")
                })
                .detach();
            }
            M::Get(r) => r.send(current_shard().unwrap().0 as u32),
        }
        Ok(())
    }
}
#[test]
fn explore() {
    let mut rt = Runtime::builder().shards(3).pin(false).build().unwrap();
    let a = rt.spawn_on(ShardId(0), || P).unwrap();
    let b = rt.spawn_on(ShardId(1), || P).unwrap();
    let c = rt.spawn_on(ShardId(2), || P).unwrap();
    let w = rt.watch(a.pid()).unwrap();
    rt.tell(&a, M::Boom).unwrap();
    eprintln!("ask a: {:?}", rt.ask(&a, M::Get));
    eprintln!("watch: {:?}", w.wait());
    eprintln!("ask b: {:?}", rt.ask(&b, M::Get));
    // cross shard ask from shard 2 to shard 0 (dead)
    let r = rt.block_on(ShardId(2), move || async move {
        a.ask(M::Get)
            .timeout(std::time::Duration::from_secs(2))
            .await
    });
    eprintln!("cross ask dead: {:?}", r);
    let r = rt.block_on(ShardId(2), move || async move { b.ask(M::Get).await });
    eprintln!("cross ask b: {:?}", r);
    let _ = c;
    eprintln!("stats: {:?}", rt.stats());
    eprintln!("shutdown: {:?}", rt.shutdown());
}
