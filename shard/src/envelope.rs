//! Envelopes: the unit that crosses shards.
//!
//! An envelope is a `Send` closure run on the receiving shard's thread with
//! that shard in hand: delivering a message, a signal, a reply, a spawn
//! request. Boxing it costs one allocation per cross-shard message; an
//! inline small-closure representation is the planned optimisation (see
//! docs/architecture.md).

use crate::shard::Shard;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

/// The closure inside an envelope.
type Job = Box<dyn FnOnce(&Rc<Shard>) + Send>;

/// Work for another shard.
pub(crate) struct Envelope(Job);

impl Envelope {
    pub(crate) fn new(f: impl FnOnce(&Shard) + Send + 'static) -> Self {
        Self(Box::new(move |s: &Rc<Shard>| f(s)))
    }

    /// For envelopes that need the `Rc` (to spawn tasks that keep the shard).
    pub(crate) fn with_rc(f: impl FnOnce(&Rc<Shard>) + Send + 'static) -> Self {
        Self(Box::new(f))
    }

    /// Runs the envelope on its destination shard. A panic (a user factory
    /// or a user value's `Drop`) is contained and logged: it must not take
    /// the shard down.
    pub(crate) fn run(self, shard: &Rc<Shard>) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (self.0)(shard))) {
            let msg = crate::exit::panic_message(&*panic);
            tracing::error!(shard = shard.id.0, panic = %msg, "envelope panicked");
        }
    }
}
