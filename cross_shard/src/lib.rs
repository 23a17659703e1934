//! Cross-shard plumbing for corelet: the SPSC rings that carry messages
//! between shards and the doorbell that wakes a sleeping shard.
//!
//! Every shard (one thread) owns one ring per ordered pair of shards: it is
//! the single [`Producer`] on its outgoing rings and the single [`Consumer`]
//! of its incoming ones. Payloads are type-erased envelopes upstream; this
//! crate is generic over the value type `T`.
//!
//! - [`ring()`] builds a bounded ring; producers stage values with
//!   [`Producer::push`] and make a batch visible with one release store,
//!   [`Producer::publish`].
//! - [`Doorbell`] implements the sleep/wake handshake: the receiver calls
//!   [`Doorbell::prepare_sleep`], re-checks its rings with
//!   [`Consumer::is_empty`], then cancels or waits; a sender calls
//!   [`Doorbell::ring`] after each non-empty publish. The module docs of
//!   [`doorbell`] argue why no wake-up is lost.
//! - [`EventFd`] is a [`Notify`] for receivers that block a thread.
//!
//! The crate depends on no executor so that all of its synchronisation can be
//! model-checked with loom: build with `RUSTFLAGS="--cfg loom"` and every
//! atomic, fence, `Arc` and `UnsafeCell` is swapped for loom's model (see
//! `tests/loom_*.rs` and the crate README).
//!
//! ```no_run
//! # // `no_run`: the loom run (`--cfg loom`) links doctests against loom's
//! # // atomics, which panic outside a model. Unit tests cover the same steps.
//! use corelet_cross_shard::{ring, Doorbell, Notify};
//!
//! struct NoOp;
//! impl Notify for NoOp {
//!     fn notify(&self) {}
//! }
//!
//! let (mut tx, mut rx) = ring::<&str>(8);
//! let bell = Doorbell::new(NoOp);
//!
//! // Sender: push a batch, publish it, ring once.
//! tx.push("hello").unwrap();
//! tx.push("world").unwrap();
//! if tx.publish() > 0 {
//!     bell.ring();
//! }
//!
//! // Receiver: drain; when idle, announce sleep and re-check before waiting.
//! let mut got = Vec::new();
//! rx.drain(usize::MAX, |m| got.push(m));
//! assert_eq!(got, ["hello", "world"]);
//! bell.prepare_sleep();
//! if rx.is_empty() {
//!     // A real receiver would now wait on its notifier.
//! }
//! bell.cancel_sleep();
//! ```

mod barrier;
mod sync;

pub mod doorbell;
#[cfg(not(loom))]
pub mod eventfd;
pub mod ring;

pub use doorbell::{asymmetric_barriers, Doorbell, Notify};
#[cfg(not(loom))]
pub use eventfd::EventFd;
pub use ring::{ring, slot_size, Consumer, Full, Producer};
