//! The corelet shard layer: executor per shard, process table, pids,
//! spawn, messaging, terminate and wait.
//!
//! Most users want the `corelet` facade crate, which re-exports this one.
//! See docs/architecture.md in the repository for how the pieces fit.

mod addr;
mod api;
mod envelope;
mod error;
mod exit;
mod gen_slab;
mod pid;
mod pool;
mod process;
mod reply;
mod runtime;
mod shard;

pub use addr::{Addr, Ask};
pub use api::{
    current_shard, kill, local_stats, self_pid, shard_count, spawn, spawn_on, terminate, wait,
    ExitWatch, Wait,
};
pub use error::{AskError, Error, SendError};
pub use exit::ExitReason;
pub use pid::{Pid, ShardId};
pub use process::{Context, HandlerResult, Process};
pub use reply::{Reply, ReplyTo};
pub use runtime::{Builder, Runtime};
pub use shard::ShardStats;
