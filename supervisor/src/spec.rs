//! Child specifications: inert recipes for starting a child.
//!
//! A [`ChildSpec`] holds an id, a `Send + Sync` factory and policies — no
//! process, pid or handle. The supervisor runs the factory itself, on the
//! shard the placement picks, every time it (re)starts the child; dropping
//! a spec drops nothing but the recipe. This is the fix for Cloud
//! Haskell's DPP-84, where a spec held a live "starter" process that
//! leaked on every start/terminate/delete cycle.

use crate::backoff::Backoff;
use crate::config::Config;
use crate::error::StartError;
use corelet_shard::{Error, ExitReason, Pid, Process, ShardId, SpawnOptions};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// When a child that exited is restarted (OTP's restart types).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Restart {
    /// Always restarted.
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit: not after `Normal` or
    /// `Shutdown`.
    Transient,
    /// Never restarted; its spec is dropped when it exits for any reason.
    Temporary,
}

impl Restart {
    /// The decision table: does a child of this type that exited with
    /// `reason` get restarted?
    ///
    /// | restart type | `Normal` | `Shutdown` | any other reason |
    /// |---|---|---|---|
    /// | `Permanent` | yes | yes | yes |
    /// | `Transient` | no | no | yes |
    /// | `Temporary` | no | no | no |
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match (self, reason.is_normal()) {
            (Restart::Permanent, _) => true,
            (Restart::Transient, normal) => !normal,
            (Restart::Temporary, _) => false,
        }
    }
}

/// How a child is stopped (OTP's shutdown values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// Killed at once: its terminate hook does not run.
    BrutalKill,
    /// Asked to stop (its terminate hook runs); killed if it has not exited
    /// after this long.
    Timeout(Duration),
    /// Asked to stop, and waited for however long it takes (the default
    /// for supervisors, whose subtrees stop first).
    Infinity,
}

impl Shutdown {
    /// OTP's default for workers: `Timeout(5 s)`.
    pub const WORKER_DEFAULT: Shutdown = Shutdown::Timeout(Duration::from_secs(5));
}

/// Whether a child is a worker or a supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildKind {
    /// Any process that is not a supervisor.
    Worker,
    /// A supervisor started by a [`ChildSpec::supervisor`] or
    /// [`ChildSpec::dynamic_supervisor`] spec.
    Supervisor,
}

/// Which shard a child is started on, decided at every (re)start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Placement {
    /// The supervisor's own shard.
    #[default]
    Supervisor,
    /// This shard (an unknown shard makes the start fail).
    Shard(ShardId),
    /// The next shard in turn (one cursor per supervisor).
    RoundRobin,
    /// The shard with the fewest live processes, asked at start time
    /// (ties go to the lowest shard index).
    LeastLoaded,
}

/// The argument a child is started with, type-erased.
pub(crate) type Arg = Arc<dyn Any + Send + Sync>;

/// What starting one incarnation yields: its pid, or `None` if the
/// factory declined (OTP's `ignore`).
pub(crate) type StartFuture = Pin<Box<dyn Future<Output = Result<Option<Pid>, StartError>>>>;

/// Starts one incarnation of a child on `shard`, linked to `parent` before
/// it handles anything (`corelet::SpawnOptions::link`).
pub(crate) trait Starter: Send + Sync + 'static {
    fn start(&self, shard: ShardId, parent: Pid, arg: &Arg) -> StartFuture;
    /// The configuration of a child supervisor, for validation and the
    /// tree.
    fn nested(&self) -> Option<&Config> {
        None
    }
}

/// A worker factory, with or without an argument.
struct Factory<A, P, F> {
    factory: Arc<F>,
    _types: PhantomData<fn(A) -> P>,
}

impl<A, P, F> Starter for Factory<A, P, F>
where
    A: Clone + Send + Sync + 'static,
    P: Process,
    F: Fn(A) -> Option<P> + Send + Sync + 'static,
{
    fn start(&self, shard: ShardId, parent: Pid, arg: &Arg) -> StartFuture {
        let factory = self.factory.clone();
        let arg = arg.clone().downcast::<A>();
        Box::pin(async move {
            // The spec and the argument were typed together; a mismatch
            // would be a bug here, reported as a failed start.
            let arg =
                arg.map_err(|_| StartError::Init(ExitReason::Error("argument type".into())))?;
            let opts = SpawnOptions::new().link(parent);
            let spawned =
                corelet_shard::try_spawn_on_with(shard, opts, move || factory((*arg).clone()))
                    .await;
            match spawned {
                Ok(addr) => Ok(addr.map(|a| a.pid())),
                Err(Error::Init(reason)) => Err(StartError::Init(reason)),
                Err(e) => Err(StartError::Runtime(e)),
            }
        })
    }
}

/// The untyped part of a spec, as the supervisor keeps it.
#[derive(Clone)]
pub(crate) struct SpecCore {
    pub(crate) id: String,
    pub(crate) starter: Arc<dyn Starter>,
    pub(crate) placement: Placement,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) kind: ChildKind,
    pub(crate) significant: bool,
    pub(crate) name: Option<String>,
    pub(crate) backoff: Backoff,
}

impl fmt::Debug for SpecCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("placement", &self.placement)
            .field("significant", &self.significant)
            .field("name", &self.name)
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// A child specification: an inert, cloneable recipe.
///
/// `ChildSpec` (that is, `ChildSpec<()>`) is a static supervisor's child.
/// `ChildSpec<A>` built with [`ChildSpec::template`] is a dynamic
/// supervisor's template, started with an argument of type `A`.
///
/// Defaults follow OTP: `Permanent`; `Timeout(5 s)` for workers and
/// `Infinity` for supervisors; not significant; placed on the supervisor's
/// shard; no name; no backoff.
///
/// ```
/// use corelet_shard::{Context, HandlerResult, Process};
/// use corelet_supervisor::{ChildSpec, Placement, Restart, Shutdown};
/// use std::time::Duration;
///
/// struct Worker;
/// impl Process for Worker {
///     type Msg = ();
///     async fn handle(&mut self, _: &mut Context<Self>, _: ()) -> HandlerResult { Ok(()) }
/// }
///
/// let spec = ChildSpec::worker("cache", || Worker)
///     .restart(Restart::Transient)
///     .shutdown(Shutdown::Timeout(Duration::from_millis(500)))
///     .placement(Placement::RoundRobin)
///     .name("cache");
/// assert_eq!(spec.id(), "cache");
/// ```
pub struct ChildSpec<A = ()> {
    pub(crate) core: SpecCore,
    _arg: PhantomData<fn(A)>,
}

impl<A> Clone for ChildSpec<A> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            _arg: PhantomData,
        }
    }
}

impl<A> fmt::Debug for ChildSpec<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl<A> ChildSpec<A> {
    pub(crate) fn from_core(core: SpecCore) -> Self {
        Self {
            core,
            _arg: PhantomData,
        }
    }

    fn with_starter(id: impl Into<String>, starter: Arc<dyn Starter>, kind: ChildKind) -> Self {
        let shutdown = match kind {
            ChildKind::Worker => Shutdown::WORKER_DEFAULT,
            ChildKind::Supervisor => Shutdown::Infinity,
        };
        Self::from_core(SpecCore {
            id: id.into(),
            starter,
            placement: Placement::Supervisor,
            restart: Restart::Permanent,
            shutdown,
            kind,
            significant: false,
            name: None,
            backoff: Backoff::None,
        })
    }

    /// The child's id, unique within its supervisor.
    pub fn id(&self) -> &str {
        &self.core.id
    }

    /// The restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.core.restart = restart;
        self
    }

    /// The shutdown policy.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.core.shutdown = shutdown;
        self
    }

    /// Where the child is started.
    pub fn placement(mut self, placement: Placement) -> Self {
        self.core.placement = placement;
        self
    }

    /// Marks the child significant for the supervisor's `auto_shutdown`
    /// (only `Transient` and `Temporary` children may be).
    pub fn significant(mut self, significant: bool) -> Self {
        self.core.significant = significant;
        self
    }

    /// Registers every incarnation under `name`, so that `whereis(name)`
    /// finds the current one.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.core.name = Some(name.into());
        self
    }

    /// Waits before each restart (beyond OTP; see [`Backoff`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.core.backoff = backoff;
        self
    }
}

impl ChildSpec {
    /// A worker built by `factory` on the child's shard (so the state need
    /// not be `Send`). The factory runs again for every incarnation.
    pub fn worker<P, F>(id: impl Into<String>, factory: F) -> Self
    where
        P: Process,
        F: Fn() -> P + Send + Sync + 'static,
    {
        Self::worker_or_ignore(id, move || Some(factory()))
    }

    /// A worker whose factory may decline to start (OTP's `ignore`):
    /// `None` leaves the child not running, its spec kept unless the child
    /// is `Temporary`.
    pub fn worker_or_ignore<P, F>(id: impl Into<String>, factory: F) -> Self
    where
        P: Process,
        F: Fn() -> Option<P> + Send + Sync + 'static,
    {
        let factory = move |()| factory();
        let starter = Factory::<(), P, _> {
            factory: Arc::new(factory),
            _types: PhantomData,
        };
        Self::with_starter(id, Arc::new(starter), ChildKind::Worker)
    }

    pub(crate) fn supervisor_from(id: impl Into<String>, starter: Arc<dyn Starter>) -> Self {
        Self::with_starter(id, starter, ChildKind::Supervisor)
    }
}

impl<A: Clone + Send + Sync + 'static> ChildSpec<A> {
    /// A dynamic supervisor's template: every child is built by `factory`
    /// from the argument given to `start_child`, and restarted with a
    /// clone of the same argument.
    pub fn template<P, F>(id: impl Into<String>, factory: F) -> Self
    where
        P: Process,
        F: Fn(A) -> P + Send + Sync + 'static,
    {
        Self::template_or_ignore(id, move |a| Some(factory(a)))
    }

    /// A template whose factory may decline to start a child.
    pub fn template_or_ignore<P, F>(id: impl Into<String>, factory: F) -> Self
    where
        P: Process,
        F: Fn(A) -> Option<P> + Send + Sync + 'static,
    {
        let starter = Factory::<A, P, F> {
            factory: Arc::new(factory),
            _types: PhantomData,
        };
        Self::with_starter(id, Arc::new(starter), ChildKind::Worker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restart_decision_table() {
        use ExitReason::*;
        let reasons = [
            Normal,
            Shutdown,
            Error("e".into()),
            Panicked("p".into()),
            Killed,
        ];
        let expect = [
            (Restart::Permanent, [true, true, true, true, true]),
            (Restart::Transient, [false, false, true, true, true]),
            (Restart::Temporary, [false, false, false, false, false]),
        ];
        for (restart, row) in expect {
            for (reason, want) in reasons.iter().zip(row) {
                assert_eq!(restart.restarts_after(reason), want, "{restart:?} {reason}");
            }
        }
    }

    struct Idle;
    impl Process for Idle {
        type Msg = ();
        async fn handle(
            &mut self,
            _: &mut corelet_shard::Context<Self>,
            _: (),
        ) -> corelet_shard::HandlerResult {
            Ok(())
        }
    }

    #[test]
    fn specs_are_inert_send_sync_recipes_with_otp_defaults() {
        fn send_sync<T: Send + Sync + Clone + 'static>() {}
        send_sync::<ChildSpec>();
        send_sync::<ChildSpec<String>>();
        let spec = ChildSpec::worker("w", || Idle);
        assert_eq!(
            spec.core.shutdown,
            Shutdown::Timeout(Duration::from_secs(5))
        );
        assert_eq!(spec.core.restart, Restart::Permanent);
        assert_eq!(spec.core.kind, ChildKind::Worker);
        assert_eq!(spec.core.placement, Placement::Supervisor);
        assert!(!spec.core.significant);
        let t = ChildSpec::template("t", |_: String| Idle).restart(Restart::Temporary);
        assert_eq!(t.core.restart, Restart::Temporary);
    }
}
