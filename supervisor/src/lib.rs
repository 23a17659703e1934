//! # corelet-supervisor
//!
//! OTP-style supervision for corelet: supervisors that restart failed
//! processes, with Erlang/OTP's semantics (OTP 24+, significant children
//! included), across shards, leaking nothing.
//!
//! A supervisor is an ordinary corelet process. It starts its children
//! from inert [`ChildSpec`] recipes on the shards their placement picks,
//! linked to it before they handle anything, traps their exits, and
//! restarts them per their [`Restart`] type and its [`Strategy`] — within
//! its restart intensity (OTP's sliding window), beyond which it stops its
//! children and exits so that its own supervisor decides.
//!
//! ```no_run
//! use corelet_shard::{Context, HandlerResult, Process, Runtime, ShardId};
//! use corelet_supervisor::{self as supervisor, ChildSpec, Strategy, SupervisorSpec};
//! use std::time::Duration;
//!
//! struct Worker;
//! impl Process for Worker {
//!     type Msg = ();
//!     async fn handle(&mut self, _: &mut Context<Self>, _: ()) -> HandlerResult {
//!         Err("crash".into()) // every message crashes it
//!     }
//! }
//!
//! let rt = Runtime::builder().build().unwrap();
//! rt.block_on(ShardId(0), || async {
//!     let spec = SupervisorSpec::new(Strategy::OneForOne)
//!         .intensity(3, Duration::from_secs(5))
//!         .child(ChildSpec::worker("worker", || Worker));
//!     let sup = supervisor::start(spec).await.unwrap();
//!     let children = sup.which_children().await.unwrap();
//!     println!("{children:?}");
//! }).unwrap();
//! ```
//!
//! See `docs/supervision.md` in the repository for the rules, the
//! differences from OTP and from other Rust actor libraries, and a worked
//! example.

mod backoff;
mod client;
mod clock;
mod config;
mod dynamic;
mod error;
mod events;
mod info;
mod intensity;
mod server;
mod spec;
mod static_table;
mod stop;

pub use backoff::Backoff;
pub use client::{start, start_dynamic, start_dynamic_on, start_on, DynamicRef, SupervisorRef};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{AutoShutdown, DynamicSpec, Mode, Strategy, SupervisorSpec, DEFAULT_RETRY_DELAY};
pub use error::{ChildError, SpecError, StartError};
pub use info::{ChildCounts, ChildInfo, ChildStatus, SupervisorStats, Tree};
pub use server::{SupMsg, Supervisor};
pub use spec::{ChildKind, ChildSpec, Placement, Restart, Shutdown};
