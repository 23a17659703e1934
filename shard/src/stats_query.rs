//! Reading another shard's counters, and the current shard's state, from a
//! shard thread.
//!
//! [`crate::local_stats`] reads the current shard; outside threads use the
//! blocking `Runtime::stats`. A process that places work by load (a
//! supervisor's least-loaded placement) needs the other shards' counters
//! without blocking its shard: [`shard_stats`] asks the shard through the
//! ring and awaits the snapshot, which that shard takes on its own thread.

use crate::envelope::Envelope;
use crate::error::Error;
use crate::pid::ShardId;
use crate::shard::{with_current, Priority};
use crate::stats::ShardStats;

/// A snapshot of `shard`'s counters, taken on that shard. Awaiting it
/// yields the calling shard. `UnknownShard` for a shard the runtime does
/// not have, `ShuttingDown` if that shard has finished.
pub async fn shard_stats(shard: ShardId) -> Result<ShardStats, Error> {
    let here = crate::api::here()?;
    if shard == here.id {
        return Ok(here.stats());
    }
    if shard.index() >= here.shared.shards.len() {
        return Err(Error::UnknownShard(shard));
    }
    let (reply_to, reply) = here.reply_slot::<ShardStats>();
    let env = Envelope::new(move |there| reply_to.send(there.stats()));
    let _ = here.send_remote(shard, env, Priority::System);
    reply.await.map_err(|_| Error::ShuttingDown)
}

/// Whether the current shard is shutting down: it refuses new processes
/// and has asked each of its processes to stop (the runtime is stopping).
/// `false` off shard threads.
///
/// A process's terminate hook can use it to skip work that only makes
/// sense while the runtime runs, such as waiting for processes on other
/// shards, which may already have finished.
pub fn shutting_down() -> bool {
    with_current(|s| s.is_stopping()).unwrap_or(false)
}
