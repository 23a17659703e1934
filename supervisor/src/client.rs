//! Starting supervisors and talking to them: [`SupervisorRef`] for static
//! supervisors, [`DynamicRef`] for dynamic ones. Both are plain data (a
//! pid) and work from any shard; each call is one `ask`.

use crate::config::{DynamicSpec, SupervisorSpec};
use crate::error::{ChildError, StartError};
use crate::info::{ChildCounts, ChildInfo, SupervisorStats, Tree};
use crate::server::{launch, Description, Request, SupMsg, Supervisor};
use crate::spec::{ChildKind, ChildSpec};
use corelet_shard::{Addr, Error, ExitReason, Pid, ReplyTo, ShardId};
use std::any::TypeId;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

fn here() -> Result<ShardId, StartError> {
    corelet_shard::current_shard().ok_or(StartError::Runtime(Error::NotInRuntime))
}

/// Starts a static supervisor on the current shard and waits until all its
/// children have started (in order). If one fails, those already started
/// are stopped again and the error names the child.
pub async fn start(spec: SupervisorSpec) -> Result<SupervisorRef, StartError> {
    start_on(here()?, spec).await
}

/// [`start`] on another shard (its children go where their placements
/// say).
pub async fn start_on(shard: ShardId, spec: SupervisorSpec) -> Result<SupervisorRef, StartError> {
    let pid = launch(shard, spec.into_config(), None).await?;
    Ok(SupervisorRef::from_pid(pid))
}

/// Starts a dynamic supervisor on the current shard.
pub async fn start_dynamic<A: Clone + Send + Sync + 'static>(
    spec: DynamicSpec<A>,
) -> Result<DynamicRef<A>, StartError> {
    start_dynamic_on(here()?, spec).await
}

/// [`start_dynamic`] on another shard.
pub async fn start_dynamic_on<A: Clone + Send + Sync + 'static>(
    shard: ShardId,
    spec: DynamicSpec<A>,
) -> Result<DynamicRef<A>, StartError> {
    let pid = launch(shard, spec.into_config(), None).await?;
    Ok(DynamicRef::from_pid(pid))
}

/// The address of a supervisor (either kind), with OTP's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SupervisorRef {
    addr: Addr<Supervisor>,
}

impl SupervisorRef {
    /// The supervisor running as `pid` (for instance a child supervisor
    /// found with `which_children`). A pid that is not a supervisor makes
    /// every call fail with [`ChildError::Supervisor`].
    pub fn from_pid(pid: Pid) -> Self {
        Self {
            addr: Addr::from_pid(pid),
        }
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> Pid {
        self.addr.pid()
    }

    async fn call<T: Send + 'static>(
        &self,
        make: impl FnOnce(ReplyTo<T>) -> Request,
    ) -> Result<T, ChildError> {
        Ok(self.addr.ask(|r| SupMsg(make(r))).await?)
    }

    /// Adds `spec` after the existing children and starts it. `Ok(None)`:
    /// its factory declined (the spec is kept unless temporary). Errors:
    /// `AlreadyStarted`, `AlreadyPresent`, `Start` (invalid spec, failed
    /// start: the spec is not kept), `Dynamic`, `Supervisor`.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Option<Pid>, ChildError> {
        self.call(|r| Request::StartChild(spec.core, r)).await?
    }

    /// Stops the child by its shutdown policy and keeps its spec (a
    /// temporary child's spec goes). Never restarts anything and never
    /// triggers auto-shutdown; cancels a pending restart; idempotent.
    /// Errors: `NotFound`, `Dynamic`, `Supervisor`.
    pub async fn terminate_child(&self, id: &str) -> Result<(), ChildError> {
        let id = id.to_owned();
        self.call(|r| Request::TerminateChild(id, r)).await?
    }

    /// Starts a stopped child again. Errors: `NotFound`, `Running`,
    /// `Restarting`, `Start`, `Dynamic`, `Supervisor`.
    pub async fn restart_child(&self, id: &str) -> Result<Option<Pid>, ChildError> {
        let id = id.to_owned();
        self.call(|r| Request::RestartChild(id, r)).await?
    }

    /// Forgets the spec of a child that is not running, cancelling a
    /// pending restart. Errors: `NotFound`, `Running`, `Dynamic`,
    /// `Supervisor`.
    pub async fn delete_child(&self, id: &str) -> Result<(), ChildError> {
        let id = id.to_owned();
        self.call(|r| Request::DeleteChild(id, r)).await?
    }

    /// Every child in start order: id, current pid (or restarting /
    /// undefined), kind.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, ChildError> {
        self.call(Request::WhichChildren).await
    }

    /// OTP's `count_children`.
    pub async fn count_children(&self) -> Result<ChildCounts, ChildError> {
        self.call(Request::CountChildren).await
    }

    /// The supervisor's counters.
    pub async fn stats(&self) -> Result<SupervisorStats, ChildError> {
        Ok(self.call(Request::Describe).await?.stats)
    }

    /// The tree below this supervisor: its children, and recursively those
    /// of its running child supervisors (wherever they run).
    pub fn tree(&self) -> Pin<Box<dyn Future<Output = Result<Tree, ChildError>> + '_>> {
        Box::pin(async move {
            let Description {
                pid,
                mode,
                label,
                stats,
                children,
            } = self.call(Request::Describe).await?;
            let mut out = Vec::with_capacity(children.len());
            for info in children {
                let sub = match (info.kind, info.status.pid()) {
                    (ChildKind::Supervisor, Some(child)) => {
                        // It may exit meanwhile: then it has no subtree.
                        SupervisorRef::from_pid(child).tree().await.ok()
                    }
                    _ => None,
                };
                out.push((info, sub));
            }
            Ok(Tree {
                pid,
                mode,
                label,
                stats,
                children: out,
            })
        })
    }

    /// Stops the supervisor (its children first, in reverse start order)
    /// and waits for it to exit.
    pub async fn stop(&self) -> Result<ExitReason, Error> {
        let waiting = corelet_shard::wait(self.pid());
        corelet_shard::terminate(self.pid())?;
        waiting.await
    }
}

/// The address of a dynamic supervisor whose children start with an `A`.
pub struct DynamicRef<A> {
    inner: SupervisorRef,
    _arg: PhantomData<fn(A)>,
}

impl<A> Clone for DynamicRef<A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A> Copy for DynamicRef<A> {}

impl<A> std::fmt::Debug for DynamicRef<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DynamicRef({})", self.inner.pid())
    }
}

impl<A: Clone + Send + Sync + 'static> DynamicRef<A> {
    /// The dynamic supervisor running as `pid`. A wrong `A` makes
    /// `start_child` fail with [`ChildError::WrongArgument`].
    pub fn from_pid(pid: Pid) -> Self {
        Self {
            inner: SupervisorRef::from_pid(pid),
            _arg: PhantomData,
        }
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> Pid {
        self.inner.pid()
    }

    /// The same supervisor, for the calls both kinds share
    /// (`which_children`, `count_children`, `stats`, `tree`, `stop`).
    pub fn as_supervisor(&self) -> SupervisorRef {
        self.inner
    }

    /// Starts a child from the template with `arg`. `Ok(None)`: the
    /// factory declined (nothing is kept). Errors: `Start`,
    /// `WrongArgument`, `NotDynamic`, `Supervisor`.
    pub async fn start_child(&self, arg: A) -> Result<Option<Pid>, ChildError> {
        let arg: crate::spec::Arg = Arc::new(arg);
        let ty = TypeId::of::<A>();
        self.inner
            .call(|r| Request::StartDynamic(arg, ty, r))
            .await?
    }

    /// Stops the child running as `pid` and forgets it. Errors:
    /// `NotFound`, `NotDynamic`, `Supervisor`.
    pub async fn terminate_child(&self, pid: Pid) -> Result<(), ChildError> {
        self.inner
            .call(|r| Request::TerminateDynamic(pid, r))
            .await?
    }

    /// Every child, in start order.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, ChildError> {
        self.inner.which_children().await
    }

    /// OTP's `count_children`.
    pub async fn count_children(&self) -> Result<ChildCounts, ChildError> {
        self.inner.count_children().await
    }

    /// The supervisor's counters.
    pub async fn stats(&self) -> Result<SupervisorStats, ChildError> {
        self.inner.stats().await
    }

    /// Stops the supervisor (all children at once) and waits for it.
    pub async fn stop(&self) -> Result<ExitReason, Error> {
        self.inner.stop().await
    }
}
