//! # corelet
//!
//! A thread-per-core process (actor) runtime for Linux.
//!
//! One shard per core, each a single-threaded glommio executor. A process
//! lives on exactly one shard, in that shard's table, under a generational
//! [`Pid`]; everything that touches it — running it, terminating it,
//! dropping it — happens on that shard's thread. Shards talk only through
//! single-producer single-consumer rings.
//!
//! ```no_run
//! use corelet::{Context, HandlerResult, Process, ReplyTo, Runtime, ShardId};
//!
//! struct Counter(u64);
//! enum Msg { Add(u64), Get(ReplyTo<u64>) }
//!
//! impl Process for Counter {
//!     type Msg = Msg;
//!     async fn handle(&mut self, _ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
//!         match msg {
//!             Msg::Add(n) => self.0 += n,
//!             Msg::Get(reply) => reply.send(self.0),
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let rt = Runtime::builder().shards(2).build().unwrap();
//! let total = rt.block_on(ShardId(0), || async {
//!     let counter = corelet::spawn_on(ShardId(1), || Counter(0)).await.unwrap();
//!     counter.tell(Msg::Add(40)).unwrap();
//!     counter.tell(Msg::Add(2)).unwrap();
//!     counter.ask(Msg::Get).await.unwrap()
//! }).unwrap();
//! assert_eq!(total, 42);
//! ```
//!
//! See the repository's `docs/architecture.md` for the design and
//! `examples/tour.rs` for a guided run.
#![deny(missing_docs)]

pub use corelet_shard::*;

/// Supervisors and supervision trees (OTP semantics); see the
/// `corelet-supervisor` crate.
pub use corelet_supervisor as supervisor;
