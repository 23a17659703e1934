//! The README's supervision example (examples/supervised_restart.rs) on
//! two unpinned shards: a supervised process crashes, is restarted under a
//! new pid, and its name follows it.

#[path = "../examples/supervised_restart.rs"]
#[allow(dead_code)] // the example's `main` is not used here
mod supervised_restart;

use corelet::{Runtime, ShardId};

#[test]
fn a_supervised_process_is_restarted() {
    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    let (first, second) = rt
        .block_on(ShardId(1), || async {
            supervised_restart::crash_and_restart()
                .await
                .map_err(|e| e.to_string())
        })
        .unwrap()
        .unwrap();
    assert_ne!(first, second);
    assert_eq!((first.shard(), second.shard()), (ShardId(1), ShardId(1)));
}
