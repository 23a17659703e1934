//! The supervisor process: an ordinary corelet [`Process`] built on the
//! public API (trapped exits and links, waiters, timers, the registry),
//! the way OTP's supervisor is an ordinary gen_server.
//!
//! # Rules
//!
//! 1. Every child is spawned linked to the supervisor before it handles
//!    anything (`SpawnOptions::link`), and the supervisor traps exits, so
//!    every exit of a child reaches `handle_exit` with its real reason,
//!    from any shard.
//! 2. The supervisor handles one thing at a time. Starting and stopping
//!    children happen inside its handlers (OTP's supervisor blocks the
//!    same way), so the child table is never seen half-changed.
//! 3. A child is stopped by unlinking it, registering a waiter, then
//!    signalling it (`stop.rs`); the supervisor continues only once the
//!    child has fully exited. So a new incarnation never overlaps the old.
//! 4. Restarts that wait (backoff, or retrying a start that failed) wait on
//!    a timer of the supervisor, carrying a token; a cancelled or stale
//!    token does nothing. Between attempts the supervisor returns to its
//!    mailbox, so `terminate_child`, `delete_child` and shutdown always get
//!    their turn, and the shard runs its other processes.
//! 5. An exit signal from the parent (the supervisor that started this
//!    one) stops this supervisor with the same reason, after its children.

use crate::backoff::Rng;
use crate::config::{Children, Config, Flags, Mode};
use crate::dynamic::DynamicTable;
use crate::error::{ChildError, StartError};
use crate::events;
use crate::info::{ChildCounts, ChildInfo, SupervisorStats};
use crate::intensity::{RestartWindow, Verdict};
use crate::spec::{Arg, Placement, Shutdown, SpecCore, StartFuture, Starter};
use crate::static_table::StaticTable;
use crate::stop::stop_one;
use corelet_shard::{
    Addr, Context, Error, ExitReason, HandlerResult, Pid, Process, ReplyTo, ShardId, SpawnOptions,
};
use std::any::TypeId;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A supervisor process (static or dynamic). Start one with
/// [`crate::start`] or [`crate::start_dynamic`]; talk to it through a
/// [`crate::SupervisorRef`] or [`crate::DynamicRef`].
pub struct Supervisor {
    pub(crate) core: Core,
    table: Table,
    booted: bool,
}

enum Table {
    Static(StaticTable),
    Dynamic(Box<DynamicTable>),
}

/// A message for a [`Supervisor`]. Built by the `SupervisorRef` and
/// `DynamicRef` calls; its contents are private.
pub struct SupMsg(pub(crate) Request);

pub(crate) type Answer<T> = ReplyTo<Result<T, ChildError>>;

/// What a supervisor is asked to do.
pub(crate) enum Request {
    Boot(ReplyTo<Result<(), StartError>>),
    StartChild(SpecCore, Answer<Option<Pid>>),
    StartDynamic(Arg, TypeId, Answer<Option<Pid>>),
    TerminateChild(String, Answer<()>),
    TerminateDynamic(Pid, Answer<()>),
    RestartChild(String, Answer<Option<Pid>>),
    DeleteChild(String, Answer<()>),
    WhichChildren(ReplyTo<Vec<ChildInfo>>),
    CountChildren(ReplyTo<ChildCounts>),
    Describe(ReplyTo<Description>),
    /// A delayed restart is due (rule 4).
    RestartDue(u64),
    /// A child supervisor reports that it exceeded its restart intensity.
    ChildTripped(Pid),
}

/// A supervisor's own part of a tree.
pub(crate) struct Description {
    pub(crate) pid: Pid,
    pub(crate) mode: Mode,
    pub(crate) label: Option<String>,
    pub(crate) stats: SupervisorStats,
    pub(crate) children: Vec<ChildInfo>,
}

/// What both kinds of child table share: settings, the intensity window,
/// counters, placement state.
pub(crate) struct Core {
    pub(crate) flags: Flags,
    pub(crate) parent: Option<Pid>,
    pub(crate) me: Pid,
    pub(crate) window: RestartWindow,
    pub(crate) stats: SupervisorStats,
    pub(crate) rng: Rng,
    /// Set once the supervisor is on its way out (escalation,
    /// auto-shutdown, shutdown): nothing is restarted any more.
    pub(crate) stopping: bool,
    round_robin: usize,
    next_token: u64,
    /// When an immediate restart last waited for the event loop.
    last_breath: Instant,
}

impl Core {
    fn new(flags: Flags, parent: Option<Pid>) -> Self {
        Self {
            window: RestartWindow::new(flags.intensity, flags.period),
            flags,
            parent,
            me: Pid::from_parts(ShardId(0), 0, 0),
            stats: SupervisorStats::default(),
            rng: Rng::new(0),
            stopping: false,
            round_robin: 0,
            next_token: 0,
            last_breath: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Duration {
        self.flags.clock.0.now()
    }

    pub(crate) fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Counts one restart against the intensity; on `Exceeded`, escalates
    /// and returns `false`.
    pub(crate) fn record_restart(&mut self, ctx: &mut Context<Supervisor>, id: &str) -> bool {
        if self.stopping || corelet_shard::shutting_down() {
            // Nothing is restarted while the runtime stops everything.
            return false;
        }
        match self.window.record(self.now()) {
            Verdict::Allowed => {
                self.stats.restarts += 1;
                true
            }
            Verdict::Exceeded => {
                self.escalate(ctx, id);
                false
            }
        }
    }

    /// Too many restarts: stop every child and exit with `Shutdown`, for
    /// the parent to decide (OTP's behaviour).
    fn escalate(&mut self, ctx: &mut Context<Supervisor>, id: &str) {
        events::intensity_trip(self.me, id, self.flags.intensity, self.flags.period);
        if let Some(parent) = self.parent {
            let me = self.me;
            // The parent is a supervisor (only supervisors set it). The
            // note travels ahead of this supervisor's exit signal.
            let _ = Addr::<Supervisor>::from_pid(parent).tell(SupMsg(Request::ChildTripped(me)));
        }
        self.stop_self(ctx);
    }

    /// Leaves with `Shutdown` once the current handler returns; the
    /// terminate hook stops the children.
    pub(crate) fn stop_self(&mut self, ctx: &mut Context<Supervisor>) {
        self.stopping = true;
        ctx.stop_with(ExitReason::Shutdown);
    }

    /// The shard a new incarnation goes to.
    async fn place(&mut self, placement: Placement) -> Result<ShardId, StartError> {
        let shards = corelet_shard::shard_count().unwrap_or(1).max(1);
        match placement {
            Placement::Supervisor => Ok(self.me.shard()),
            Placement::Shard(shard) => Ok(shard),
            Placement::RoundRobin => {
                let shard = self.round_robin % shards;
                self.round_robin = (shard + 1) % shards;
                Ok(ShardId(shard as u16))
            }
            Placement::LeastLoaded => {
                let mut best = (u64::MAX, 0u16);
                for i in 0..shards as u16 {
                    let stats = corelet_shard::shard_stats(ShardId(i))
                        .await
                        .map_err(StartError::Runtime)?;
                    if stats.alive < best.0 {
                        best = (stats.alive, i);
                    }
                }
                Ok(ShardId(best.1))
            }
        }
    }

    /// Starts one incarnation of `spec`: place it, spawn it linked, and
    /// register its name. `Ok(None)`: the factory declined.
    pub(crate) async fn start_incarnation(
        &mut self,
        ctx: &mut Context<Supervisor>,
        spec: &SpecCore,
        arg: &Arg,
    ) -> Result<Option<Pid>, StartError> {
        let outcome = self.try_start(ctx, spec, arg).await;
        match &outcome {
            Ok(Some(pid)) => {
                self.stats.starts += 1;
                events::started(self.me, &spec.id, *pid);
            }
            Ok(None) => events::ignored(self.me, &spec.id),
            Err(error) => {
                self.stats.failed_starts += 1;
                events::start_failed(self.me, &spec.id, error);
            }
        }
        outcome
    }

    async fn try_start(
        &mut self,
        ctx: &mut Context<Supervisor>,
        spec: &SpecCore,
        arg: &Arg,
    ) -> Result<Option<Pid>, StartError> {
        let shard = self.place(spec.placement).await?;
        let Some(pid) = spec.starter.start(shard, self.me, arg).await? else {
            return Ok(None);
        };
        if let Some(name) = &spec.name {
            if let Err(error) = corelet_shard::register(name.clone(), pid).await {
                // Not a child after all: take it back down, quietly.
                ctx.unlink(pid);
                stop_one(pid, Shutdown::BrutalKill).await;
                let name = name.clone();
                return Err(StartError::Name { name, error });
            }
        }
        Ok(Some(pid))
    }
}

/// How often, at most, an immediate restart waits for a turn of the
/// shard's event loop (see [`Core::breathe`]).
const BREATH_EVERY: Duration = Duration::from_millis(2);

impl Core {
    /// Lets the rest of the shard run before an immediate restart.
    ///
    /// A child on the supervisor's shard that crashes on its first turn
    /// keeps the shard busy with nothing but that child and its supervisor:
    /// restart, crash, exit signal, restart. The shard then polls for
    /// events (timers, I/O, wake-ups from other shards) only at its
    /// scheduling boundaries — glommio's preemption tick (100 ms), or the
    /// scheduler's budget — so everything that waits on an event slows to
    /// that pace until the intensity runs out. (Measured: 200 pings from
    /// another shard to a bystander took 74 s without this pause.) So every
    /// immediate restart first yields, and at least every [`BREATH_EVERY`]
    /// waits on a timer, which parks the supervisor until the event loop
    /// has polled for events. A lone restart pays one event-loop turn; a
    /// restart loop is held to one turn per 2 ms.
    pub(crate) async fn breathe(&mut self) {
        futures_lite::future::yield_now().await;
        if self.last_breath.elapsed() >= BREATH_EVERY {
            glommio::timer::sleep(Duration::from_micros(10)).await;
            self.last_breath = Instant::now();
        }
    }
}

/// The argument of a static child (which takes none).
pub(crate) fn no_arg() -> Arg {
    static UNIT: std::sync::OnceLock<Arg> = std::sync::OnceLock::new();
    UNIT.get_or_init(|| Arc::new(())).clone()
}

impl Supervisor {
    fn new(config: Config, parent: Option<Pid>) -> Self {
        let Config { flags, children } = config;
        let table = match children {
            Children::Static(strategy, specs) => Table::Static(StaticTable::new(strategy, specs)),
            Children::Dynamic { template, arg } => {
                Table::Dynamic(Box::new(DynamicTable::new(template, arg)))
            }
        };
        Self {
            core: Core::new(flags, parent),
            table,
            booted: false,
        }
    }

    fn mode(&self) -> Mode {
        match &self.table {
            Table::Static(t) => Mode::Static(t.strategy()),
            Table::Dynamic(_) => Mode::Dynamic,
        }
    }

    async fn boot(&mut self, ctx: &mut Context<Self>, reply: ReplyTo<Result<(), StartError>>) {
        if std::mem::replace(&mut self.booted, true) {
            reply.send(Ok(()));
            return;
        }
        let result = match &mut self.table {
            Table::Static(t) => t.boot(&mut self.core, ctx).await,
            Table::Dynamic(_) => Ok(()),
        };
        let failed = result.is_err();
        reply.send(result);
        if failed {
            self.core.stop_self(ctx);
        }
    }

    fn describe(&self, ctx: &Context<Self>) -> Description {
        Description {
            pid: self.core.me,
            mode: self.mode(),
            label: self.core.flags.label.clone(),
            stats: self.stats(ctx),
            children: self.which_children(),
        }
    }

    fn stats(&self, ctx: &Context<Self>) -> SupervisorStats {
        let mut stats = self.core.stats;
        stats.window = self.core.window.len();
        stats.pending_timers = ctx.pending_timers();
        stats.table = match &self.table {
            Table::Static(t) => t.len(),
            Table::Dynamic(t) => t.len(),
        };
        stats
    }

    fn which_children(&self) -> Vec<ChildInfo> {
        match &self.table {
            Table::Static(t) => t.which_children(),
            Table::Dynamic(t) => t.which_children(),
        }
    }

    fn count_children(&self) -> ChildCounts {
        match &self.table {
            Table::Static(t) => t.count_children(),
            Table::Dynamic(t) => t.count_children(),
        }
    }

    async fn dispatch(&mut self, ctx: &mut Context<Self>, request: Request) {
        let request = match request {
            Request::Boot(reply) => return self.boot(ctx, reply).await,
            Request::WhichChildren(reply) => return reply.send(self.which_children()),
            Request::CountChildren(reply) => return reply.send(self.count_children()),
            Request::Describe(reply) => return reply.send(self.describe(ctx)),
            other => other,
        };
        let core = &mut self.core;
        match (request, &mut self.table) {
            (Request::StartChild(spec, reply), Table::Static(t)) => {
                reply.send(t.start_child(core, ctx, spec).await)
            }
            (Request::StartDynamic(arg, ty, reply), Table::Dynamic(t)) => {
                reply.send(t.start_child(core, ctx, arg, ty).await)
            }
            (Request::TerminateChild(id, reply), Table::Static(t)) => {
                reply.send(t.terminate_child(core, ctx, &id).await)
            }
            (Request::TerminateDynamic(pid, reply), Table::Dynamic(t)) => {
                reply.send(t.terminate_child(core, ctx, pid).await)
            }
            (Request::RestartChild(id, reply), Table::Static(t)) => {
                reply.send(t.restart_child(core, ctx, &id).await)
            }
            (Request::DeleteChild(id, reply), Table::Static(t)) => {
                reply.send(t.delete_child(core, ctx, &id))
            }
            (Request::RestartDue(token), Table::Static(t)) => t.restart_due(core, ctx, token).await,
            (Request::RestartDue(token), Table::Dynamic(t)) => {
                t.restart_due(core, ctx, token).await
            }
            (Request::ChildTripped(pid), _) => {
                core.stats.child_intensity_trips += 1;
                events::child_tripped(core.me, pid);
            }
            // The operations that belong to the other kind of supervisor.
            (Request::StartChild(_, r), Table::Dynamic(_))
            | (Request::RestartChild(_, r), Table::Dynamic(_)) => r.send(Err(ChildError::Dynamic)),
            (Request::TerminateChild(_, r), Table::Dynamic(_))
            | (Request::DeleteChild(_, r), Table::Dynamic(_)) => r.send(Err(ChildError::Dynamic)),
            (Request::StartDynamic(_, _, r), Table::Static(_)) => {
                r.send(Err(ChildError::NotDynamic))
            }
            (Request::TerminateDynamic(_, r), Table::Static(_)) => {
                r.send(Err(ChildError::NotDynamic))
            }
            (
                Request::Boot(_)
                | Request::WhichChildren(_)
                | Request::CountChildren(_)
                | Request::Describe(_),
                _,
            ) => unreachable!("answered above"),
        }
    }
}

impl Process for Supervisor {
    type Msg = SupMsg;

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        ctx.trap_exits(true);
        self.core.me = ctx.pid();
        let pid = ctx.pid();
        let seed = (u64::from(pid.slot()) << 32 | u64::from(pid.generation()))
            ^ (u64::from(pid.shard().0) << 48)
            ^ self.core.now().as_nanos() as u64;
        self.core.rng = Rng::new(seed);
        Ok(())
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: SupMsg) -> HandlerResult {
        self.dispatch(ctx, msg.0).await;
        Ok(())
    }

    async fn handle_exit(
        &mut self,
        ctx: &mut Context<Self>,
        from: Pid,
        reason: ExitReason,
    ) -> HandlerResult {
        if Some(from) == self.core.parent {
            // Rule 5.
            events::parent_exited(self.core.me, from, &reason);
            self.core.stopping = true;
            ctx.stop_with(reason);
            return Ok(());
        }
        match &mut self.table {
            Table::Static(t) => t.child_exited(&mut self.core, ctx, from, reason).await,
            Table::Dynamic(t) => t.child_exited(&mut self.core, ctx, from, reason).await,
        }
        Ok(())
    }

    async fn terminate(&mut self, ctx: &mut Context<Self>, reason: &ExitReason) {
        self.core.stopping = true;
        match &mut self.table {
            Table::Static(t) => t.stop_all(&mut self.core, ctx).await,
            Table::Dynamic(t) => t.stop_all(&mut self.core, ctx).await,
        }
        let stats = self.stats(ctx);
        events::supervisor_exited(self.core.me, reason, &stats);
    }
}

/// Spawns a supervisor on `shard` (linked to `parent`, if any) and waits
/// until it has started its children.
pub(crate) async fn launch(
    shard: ShardId,
    config: Config,
    parent: Option<Pid>,
) -> Result<Pid, StartError> {
    config.validate()?;
    let opts = match parent {
        Some(parent) => SpawnOptions::new().link(parent),
        None => SpawnOptions::new(),
    };
    let spawned =
        corelet_shard::spawn_on_with(shard, opts, move || Supervisor::new(config, parent)).await;
    let addr = spawned.map_err(|e| match e {
        Error::Init(reason) => StartError::Init(reason),
        other => StartError::Runtime(other),
    })?;
    let error = match addr.ask(|r| SupMsg(Request::Boot(r))).await {
        Ok(Ok(())) => return Ok(addr.pid()),
        Ok(Err(error)) => error,
        Err(_) => StartError::Exited,
    };
    // It stops by itself after a failed boot; let it finish, so that
    // nothing of it is left when the caller retries.
    let _ = corelet_shard::wait(addr.pid()).await;
    Err(error)
}

/// Starts a child supervisor: the recipe a parent's spec holds.
struct SupervisorStarter {
    config: Config,
}

impl Starter for SupervisorStarter {
    fn start(&self, shard: ShardId, parent: Pid, _arg: &Arg) -> StartFuture {
        let config = self.config.clone();
        Box::pin(async move { launch(shard, config, Some(parent)).await.map(Some) })
    }

    fn nested(&self) -> Option<&Config> {
        Some(&self.config)
    }
}

pub(crate) fn starter(config: Config) -> Arc<dyn Starter> {
    Arc::new(SupervisorStarter { config })
}
