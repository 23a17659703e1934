//! The corelet shard layer: executor per shard, process table, pids,
//! spawn, messaging, terminate and wait.
//!
//! Most users want the `corelet` facade crate, which re-exports this one.
//! See docs/architecture.md in the repository for how the pieces fit.

mod addr;
mod addr_from_pid;
mod api;
mod block_cache;
mod context;
mod delivery;
mod envelope;
mod error;
mod exit;
mod gen_slab;
mod link;
mod owned;
mod pid;
mod pool;
mod proc;
mod process;
mod registry;
mod reply;
mod runtime;
mod sched;
mod shard;
mod spawn_opts;
mod stats;
mod stats_query;
mod table;
mod timer;
mod waker;

pub use addr::{Addr, Ask, Sending};
pub use api::{
    current_shard, kill, local_stats, register, self_pid, shard_count, shutdown, spawn, spawn_on,
    terminate, unregister, wait, whereis, ExitWatch, Wait,
};
pub use context::Context;
pub use error::{AskError, Error, SendError};
pub use exit::ExitReason;
pub use link::{Down, MonitorRef};
pub use owned::{OwnedRef, StreamEvent};
pub use pid::{Pid, ShardId};
pub use process::{Handled, HandlerResult, Process};
pub use registry::RegistryError;
pub use reply::{Reply, ReplyTo};
pub use runtime::{Builder, Runtime};
pub use spawn_opts::{spawn_on_with, spawn_with, try_spawn_on_with, SpawnOptions};
pub use stats::{ExitCounts, ShardStats};
pub use stats_query::{shard_stats, shutting_down};
pub use timer::TimerRef;
