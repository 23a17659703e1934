//! A static supervisor's children: an ordered table of specs, the
//! strategies, and the operations on children.
//!
//! # Rules
//!
//! 1. The table is in start order: boot order, then `start_child` order.
//!    Children start in that order and stop in reverse.
//! 2. A child's state is `Running(pid)`, `Restarting` (a restart is
//!    pending, on a timer) or `Stopped` (OTP's `undefined`). Only
//!    `Running` holds a pid; a `Temporary` child leaves the table whenever
//!    it stops, for any reason.
//! 3. A restart counts once against the intensity, whatever the size of
//!    its group: the child alone (one for one), everyone (one for all), or
//!    the child and those started after it (rest for one). The group's
//!    running members stop last-started first; `Temporary` members leave;
//!    the others start again in start order.
//! 4. A start that fails during a restart is a new restart of the failed
//!    child (counted), tried again after the retry delay; it never loops
//!    inside one handler. An immediate restart first yields to the shard
//!    (`Core::breathe`).
//! 5. A pending restart is a token, its members and a timer. Terminating
//!    or deleting a member takes it out (`delete_child` refuses only a
//!    running child); a pending restart with no members
//!    left is cancelled.

use crate::config::{check_child, Strategy};
use crate::error::{ChildError, SpecError, StartError};
use crate::events;
use crate::info::{ChildCounts, ChildInfo, ChildStatus};
use crate::server::{no_arg, Core, Request, SupMsg, Supervisor};
use crate::spec::{ChildKind, Restart, SpecCore};
use crate::stop::{expected, stop_one};
use corelet_shard::{Context, ExitReason, Pid, TimerRef};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running(Pid),
    Restarting,
    Stopped,
}

struct Child {
    spec: SpecCore,
    state: State,
    /// Successful restarts of this child.
    restarts: u64,
    /// Consecutive restarts, for backoff (reset by a long enough run).
    consecutive: u32,
    /// When the current incarnation started (supervisor clock).
    started_at: Duration,
}

struct Pending {
    token: u64,
    members: Vec<String>,
    timer: TimerRef,
}

pub(crate) struct StaticTable {
    strategy: Strategy,
    children: Vec<Child>,
    pending: Vec<Pending>,
}

impl StaticTable {
    pub(crate) fn new(strategy: Strategy, specs: Vec<SpecCore>) -> Self {
        let children = specs
            .into_iter()
            .map(|spec| Child {
                spec,
                state: State::Stopped,
                restarts: 0,
                consecutive: 0,
                started_at: Duration::ZERO,
            })
            .collect();
        Self {
            strategy,
            children,
            pending: Vec::new(),
        }
    }

    pub(crate) fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.spec.id == id)
    }

    /// Starts every child in order; on a failure, stops those already
    /// started (in reverse) and reports which child failed.
    pub(crate) async fn boot(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
    ) -> Result<(), StartError> {
        let ids: Vec<String> = self.children.iter().map(|c| c.spec.id.clone()).collect();
        for id in ids {
            if let Err(error) = self.start(core, ctx, &id).await {
                self.stop_all(core, ctx).await;
                let error = Box::new(error);
                return Err(StartError::Child { id, error });
            }
        }
        Ok(())
    }

    /// Starts child `id` once. Running on success; a declined start leaves
    /// it `Stopped` (or removes it, if temporary); a failure leaves the
    /// state to the caller.
    async fn start(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        id: &str,
    ) -> Result<Option<Pid>, StartError> {
        let Some(i) = self.index(id) else {
            return Ok(None);
        };
        let spec = self.children[i].spec.clone();
        let started = core.start_incarnation(ctx, &spec, &no_arg()).await?;
        // The table did not change meanwhile: `self` was borrowed.
        let child = &mut self.children[i];
        match started {
            Some(pid) => {
                child.state = State::Running(pid);
                child.started_at = core.now();
            }
            None if child.spec.restart == Restart::Temporary => {
                self.children.remove(i);
            }
            None => child.state = State::Stopped,
        }
        Ok(started)
    }

    /// Stops child `i` if it runs (rule 3 of `server.rs`), reporting an
    /// unexpected exit reason, and leaves it `Stopped`.
    async fn stop_child(&mut self, core: &mut Core, ctx: &mut Context<Supervisor>, i: usize) {
        let State::Running(pid) = self.children[i].state else {
            return;
        };
        let (policy, restart) = (
            self.children[i].spec.shutdown,
            self.children[i].spec.restart,
        );
        ctx.unlink(pid);
        let reason = stop_one(pid, policy).await;
        if !expected(policy, restart, &reason) {
            core.stats.shutdown_errors += 1;
            events::shutdown_error(core.me, &self.children[i].spec.id, pid, &reason);
        }
        self.children[i].state = State::Stopped;
    }

    /// Supervisor shutdown: every running child, last started first; every
    /// pending restart dropped.
    pub(crate) async fn stop_all(&mut self, core: &mut Core, ctx: &mut Context<Supervisor>) {
        for p in std::mem::take(&mut self.pending) {
            ctx.cancel_timer(p.timer);
        }
        for i in (0..self.children.len()).rev() {
            self.stop_child(core, ctx, i).await;
        }
        self.children
            .retain(|c| c.spec.restart != Restart::Temporary);
        for child in &mut self.children {
            child.state = State::Stopped;
        }
    }

    /// A linked process exited: restart it per its restart type, or let it
    /// go and check for auto-shutdown.
    pub(crate) async fn child_exited(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        pid: Pid,
        reason: ExitReason,
    ) {
        let Some(i) = self
            .children
            .iter()
            .position(|c| c.state == State::Running(pid))
        else {
            events::unknown_exit(core.me, pid, &reason);
            return;
        };
        core.stats.exits += 1;
        let now = core.now();
        let child = &mut self.children[i];
        events::exited(core.me, &child.spec.id, pid, &reason);
        child.state = State::Stopped;
        if now.saturating_sub(child.started_at) >= core.flags.period {
            child.consecutive = 0;
        }
        let id = child.spec.id.clone();
        if child.spec.restart.restarts_after(&reason) {
            self.restart(core, ctx, id, Duration::ZERO).await;
            return;
        }
        let significant = child.spec.significant;
        if child.spec.restart == Restart::Temporary {
            self.children.remove(i);
        }
        if significant {
            self.auto_shutdown(core, ctx, &id);
        }
    }

    /// OTP 24: a significant child exited by itself and will not come back.
    fn auto_shutdown(&self, core: &mut Core, ctx: &mut Context<Supervisor>, id: &str) {
        use crate::config::AutoShutdown::*;
        let shut = match core.flags.auto_shutdown {
            Never => false,
            AnySignificant => true,
            AllSignificant => !self
                .children
                .iter()
                .any(|c| c.spec.significant && c.state != State::Stopped),
        };
        if shut {
            events::auto_shutdown(core.me, id);
            core.stop_self(ctx);
        }
    }

    /// The ids a restart of child `i` covers, in start order (rule 3).
    fn group(&self, i: usize) -> Vec<String> {
        let range = match self.strategy {
            Strategy::OneForOne => i..i + 1,
            Strategy::OneForAll => 0..self.children.len(),
            Strategy::RestForOne => i..self.children.len(),
        };
        self.children[range]
            .iter()
            .map(|c| c.spec.id.clone())
            .collect()
    }

    /// Restarts `culprit` and its group (rules 3 and 4).
    async fn restart(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        mut culprit: String,
        mut min_delay: Duration,
    ) {
        loop {
            if !core.record_restart(ctx, &culprit) {
                return; // escalated
            }
            let Some(ci) = self.index(&culprit) else {
                return;
            };
            let group = self.group(ci);
            self.unpend(core, ctx, &group, false);
            for id in group.iter().rev() {
                if let Some(i) = self.index(id) {
                    self.stop_child(core, ctx, i).await;
                }
            }
            // Temporary bystanders are not restarted and leave no trace.
            self.children
                .retain(|c| !(c.spec.restart == Restart::Temporary && group.contains(&c.spec.id)));
            let members: Vec<String> = group
                .into_iter()
                .filter(|id| self.index(id).is_some())
                .collect();
            for id in &members {
                let i = self.index(id).expect("kept above");
                self.children[i].state = State::Restarting;
            }
            let ci = self
                .index(&culprit)
                .expect("the culprit is never temporary");
            let child = &mut self.children[ci];
            let delay = child
                .spec
                .backoff
                .delay(child.consecutive, &mut core.rng)
                .max(min_delay);
            child.consecutive = child.consecutive.saturating_add(1);
            events::restarting(core.me, &culprit, members.len(), delay);
            if !delay.is_zero() {
                let token = core.token();
                let timer = ctx.send_self_after(SupMsg(Request::RestartDue(token)), delay);
                core.stats.delayed_restarts += 1;
                self.pending.push(Pending {
                    token,
                    members,
                    timer,
                });
                return;
            }
            core.breathe().await;
            match self.start_members(core, ctx, &members).await {
                Ok(()) => return,
                Err(failed) => {
                    culprit = failed;
                    min_delay = core.flags.retry_delay;
                }
            }
        }
    }

    /// Starts the members still waiting, in order; stops at the first
    /// failure and names it.
    async fn start_members(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        members: &[String],
    ) -> Result<(), String> {
        for id in members {
            if core.stopping {
                return Ok(());
            }
            match self.index(id) {
                Some(i) if self.children[i].state == State::Restarting => {}
                _ => continue,
            }
            match self.start(core, ctx, id).await {
                Ok(Some(_)) => {
                    let i = self.index(id).expect("running children stay");
                    self.children[i].restarts += 1;
                }
                Ok(None) => {}
                Err(_) => return Err(id.clone()),
            }
        }
        Ok(())
    }

    /// A delayed restart's timer fired (a stale or cancelled token does
    /// nothing).
    pub(crate) async fn restart_due(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        token: u64,
    ) {
        let Some(k) = self.pending.iter().position(|p| p.token == token) else {
            return;
        };
        let pending = self.pending.remove(k);
        if let Err(failed) = self.start_members(core, ctx, &pending.members).await {
            let retry = core.flags.retry_delay;
            self.restart(core, ctx, failed, retry).await;
        }
    }

    /// Takes `ids` out of every pending restart (rule 5).
    fn unpend(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        ids: &[String],
        cancel: bool,
    ) {
        let mut emptied = Vec::new();
        for p in &mut self.pending {
            let before = p.members.len();
            p.members.retain(|m| !ids.contains(m));
            if cancel && p.members.len() < before {
                core.stats.cancelled_restarts += 1;
                for id in ids {
                    events::cancelled(core.me, id);
                }
            }
            if p.members.is_empty() {
                emptied.push(p.token);
            }
        }
        self.pending.retain(|p| {
            if emptied.contains(&p.token) {
                ctx.cancel_timer(p.timer);
                false
            } else {
                true
            }
        });
    }

    /// `start_child`: adds a spec at the end and starts it.
    pub(crate) async fn start_child(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        spec: SpecCore,
    ) -> Result<Option<Pid>, ChildError> {
        if let Some(i) = self.index(&spec.id) {
            return Err(match self.children[i].state {
                State::Running(pid) => ChildError::AlreadyStarted(pid),
                _ => ChildError::AlreadyPresent,
            });
        }
        check_child(&spec, core.flags.auto_shutdown)
            .map_err(|e: SpecError| ChildError::Start(StartError::Invalid(e)))?;
        let id = spec.id.clone();
        self.children.push(Child {
            spec,
            state: State::Stopped,
            restarts: 0,
            consecutive: 0,
            started_at: Duration::ZERO,
        });
        match self.start(core, ctx, &id).await {
            Ok(started) => Ok(started),
            Err(error) => {
                // OTP: a spec whose first start failed is not kept.
                if let Some(i) = self.index(&id) {
                    self.children.remove(i);
                }
                Err(ChildError::Start(error))
            }
        }
    }

    /// `terminate_child`: stops the child (or cancels its pending restart)
    /// and never restarts it. Idempotent; a temporary child's spec goes.
    pub(crate) async fn terminate_child(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        id: &str,
    ) -> Result<(), ChildError> {
        let i = self.index(id).ok_or(ChildError::NotFound)?;
        match self.children[i].state {
            State::Running(_) => self.stop_child(core, ctx, i).await,
            State::Restarting => {
                self.unpend(core, ctx, &[id.to_owned()], true);
                self.children[i].state = State::Stopped;
            }
            State::Stopped => {}
        }
        if self.children[i].spec.restart == Restart::Temporary {
            self.children.remove(i);
        }
        Ok(())
    }

    /// `restart_child`: starts a stopped child again (not counted against
    /// the intensity).
    pub(crate) async fn restart_child(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        id: &str,
    ) -> Result<Option<Pid>, ChildError> {
        let i = self.index(id).ok_or(ChildError::NotFound)?;
        match self.children[i].state {
            State::Running(pid) => Err(ChildError::Running(pid)),
            State::Restarting => Err(ChildError::Restarting),
            State::Stopped => self.start(core, ctx, id).await.map_err(ChildError::Start),
        }
    }

    /// `delete_child`: forgets a child that is not running; a pending
    /// restart is cancelled.
    pub(crate) fn delete_child(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        id: &str,
    ) -> Result<(), ChildError> {
        let i = self.index(id).ok_or(ChildError::NotFound)?;
        match self.children[i].state {
            State::Running(pid) => return Err(ChildError::Running(pid)),
            State::Restarting => self.unpend(core, ctx, &[id.to_owned()], true),
            State::Stopped => {}
        }
        let i = self.index(id).expect("unpend keeps the table");
        self.children.remove(i);
        Ok(())
    }

    pub(crate) fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .iter()
            .map(|c| ChildInfo {
                id: c.spec.id.clone(),
                status: match c.state {
                    State::Running(pid) => ChildStatus::Running(pid),
                    State::Restarting => ChildStatus::Restarting,
                    State::Stopped => ChildStatus::Undefined,
                },
                kind: c.spec.kind,
                restart: c.spec.restart,
                restarts: c.restarts,
                significant: c.spec.significant,
            })
            .collect()
    }

    pub(crate) fn count_children(&self) -> ChildCounts {
        let mut counts = ChildCounts {
            specs: self.children.len(),
            ..ChildCounts::default()
        };
        for c in &self.children {
            if matches!(c.state, State::Running(_)) {
                counts.active += 1;
            }
            match c.spec.kind {
                ChildKind::Worker => counts.workers += 1,
                ChildKind::Supervisor => counts.supervisors += 1,
            }
        }
        counts
    }
}
