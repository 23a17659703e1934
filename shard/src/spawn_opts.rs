//! Spawning with options: a process linked to another one before it
//! handles anything, and factories that may decline to start a process.
//!
//! `spawn_on(shard, factory)` followed by `ctx.link(pid)` leaves a window:
//! the new process may run (and crash) before the link request reaches it,
//! and whoever links then learns only `NoProcess`, not the real reason. A
//! supervisor must see every crash of its children, so the link has to be
//! made on the child's shard as part of the spawn.
//!
//! # Rules
//!
//! 1. The factory and `init` run on the target shard; the link is made
//!    there right after `init` returns, in the same synchronous step, before
//!    the scheduler runs the process for the first time. Nothing of the new
//!    process runs between its `init` and the link, so every exit it makes
//!    is seen by the partner.
//! 2. The link is an ordinary link (`Shard::link` from the new process):
//!    the partner's half travels the target shard's ring towards the
//!    partner, ahead of any exit signal the new process can send later.
//!    If the partner is already gone, the new process gets the usual
//!    `NoProcess` exit signal (and stops unless it traps exits).
//! 3. A failed `init` (or a panicking factory) returns `Error::Init` and
//!    makes no link: the caller learns the reason from the result.
//! 4. A factory that returns `None` declines: no process, no slot, no link,
//!    and the call returns `Ok(None)` (OTP's `ignore`).

use crate::addr::Addr;
use crate::envelope::Envelope;
use crate::error::Error;
use crate::exit::{panic_message, ExitReason};
use crate::pid::{Pid, ShardId};
use crate::process::Process;
use crate::shard::{Priority, Shard};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

/// What to attach to a process as it is spawned (see
/// [`spawn_on_with`]).
///
/// ```
/// use corelet_shard::{Pid, ShardId, SpawnOptions};
/// let partner = Pid::from_parts(ShardId(0), 1, 0);
/// let opts = SpawnOptions::new().link(partner);
/// assert_eq!(opts.linked_to(), Some(partner));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpawnOptions {
    link: Option<Pid>,
}

impl SpawnOptions {
    /// No options: a plain spawn.
    pub fn new() -> Self {
        Self::default()
    }

    /// Links the new process to `pid` before it handles anything (rule 1).
    pub fn link(mut self, pid: Pid) -> Self {
        self.link = Some(pid);
        self
    }

    /// The pid the new process will be linked to, if any.
    pub fn linked_to(&self) -> Option<Pid> {
        self.link
    }
}

impl Shard {
    /// Runs `factory` here and spawns what it builds with `opts`.
    pub(crate) fn spawn_with_opts<P: Process>(
        self: &Rc<Self>,
        opts: SpawnOptions,
        factory: impl FnOnce() -> Option<P>,
    ) -> Result<Option<Addr<P>>, Error> {
        let state = match catch_unwind(AssertUnwindSafe(factory)) {
            Ok(Some(state)) => state,
            Ok(None) => return Ok(None),
            Err(panic) => return Err(Error::Init(ExitReason::Panicked(panic_message(&*panic)))),
        };
        let addr = self.spawn(state)?;
        if let Some(partner) = opts.link {
            // Rule 1: `init` has returned; the process runs only when the
            // scheduler takes its first message, after this returns.
            self.link(addr.pid(), partner);
        }
        Ok(Some(addr))
    }
}

/// Spawns a process on the current shard with `opts` (see
/// [`spawn_on_with`]). The state need not be `Send`.
pub fn spawn_with<P: Process>(opts: SpawnOptions, state: P) -> Result<Addr<P>, Error> {
    let here = crate::api::here()?;
    here.spawn_with_opts(opts, || Some(state))
        .map(|addr| addr.expect("a present state always spawns"))
}

/// Spawns a process on `shard` with `opts`: `factory` builds the state
/// there, `init` runs, and the options are applied before the process
/// handles anything. With [`SpawnOptions::link`] the partner sees every
/// exit of the new process, even one from its very first message.
pub async fn spawn_on_with<P, F>(
    shard: ShardId,
    opts: SpawnOptions,
    factory: F,
) -> Result<Addr<P>, Error>
where
    P: Process,
    F: FnOnce() -> P + Send + 'static,
{
    try_spawn_on_with(shard, opts, move || Some(factory()))
        .await
        .map(|addr| addr.expect("a factory that always builds always spawns"))
}

/// Like [`spawn_on_with`], for a factory that may decline: `None` from the
/// factory spawns nothing and resolves with `Ok(None)`.
pub async fn try_spawn_on_with<P, F>(
    shard: ShardId,
    opts: SpawnOptions,
    factory: F,
) -> Result<Option<Addr<P>>, Error>
where
    P: Process,
    F: FnOnce() -> Option<P> + Send + 'static,
{
    let here = crate::api::here()?;
    if shard == here.id {
        return here.spawn_with_opts(opts, factory);
    }
    if shard.index() >= here.shared.shards.len() {
        return Err(Error::UnknownShard(shard));
    }
    let (reply_to, reply) = here.reply_slot::<Result<Option<Pid>, Error>>();
    let env = Envelope::with_rc(move |there| {
        let spawned = there.spawn_with_opts(opts, factory);
        reply_to.send(spawned.map(|a| a.map(|a| a.pid())));
    });
    let _ = here.send_remote(shard, env, Priority::System);
    match reply.await {
        Ok(result) => result.map(|pid| pid.map(Addr::from_pid_unchecked)),
        Err(_) => Err(Error::ShuttingDown),
    }
}
