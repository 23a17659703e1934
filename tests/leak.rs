//! Creating and dropping many runtimes leaks no threads and no file
//! descriptors: shard threads (and their glommio executors) come from a
//! process-wide pool and are reused.
//!
//! One test only: it counts the threads and descriptors of the whole test
//! process, so nothing else may run beside it.

use corelet::{Context, HandlerResult, Process, ReplyTo, Runtime, ShardId};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

struct Echo;

enum Msg {
    Where(ReplyTo<Option<ShardId>>),
}

impl Process for Echo {
    type Msg = Msg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        let Msg::Where(reply) = msg;
        reply.send(corelet::current_shard());
        Ok(())
    }
}

/// Builds a runtime, makes every shard run tasks (a process, an ask from
/// outside, a cross-shard ask), and drops it.
fn use_and_drop(shards: usize) {
    let rt = Runtime::builder()
        .shards(shards)
        .pin(false)
        .build()
        .unwrap();
    let mut addrs = Vec::new();
    for s in 0..shards {
        let shard = ShardId(s as u16);
        let a = rt.spawn_on(shard, || Echo).unwrap();
        assert_eq!(rt.ask(&a, Msg::Where).unwrap(), Some(shard));
        addrs.push(a);
    }
    let last = *addrs.last().unwrap();
    let answer = rt
        .block_on(
            ShardId(0),
            move || async move { last.ask(Msg::Where).await },
        )
        .unwrap();
    assert_eq!(answer, Ok(Some(ShardId(shards as u16 - 1))));
    drop(rt);
}

#[test]
fn dropping_runtimes_leaks_no_threads_and_no_fds() {
    const MIX: [usize; 3] = [1, 2, 4];
    // Warm the pool up to the largest runtime of the mix.
    use_and_drop(4);
    let (threads_before, fds_before) = (threads(), fds());
    for i in 0..200 {
        use_and_drop(MIX[i % MIX.len()]);
    }
    assert_eq!(threads(), threads_before, "shard threads are reused");
    assert_eq!(fds(), fds_before, "no descriptor leaks per runtime");
}
