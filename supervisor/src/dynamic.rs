//! A dynamic supervisor's children (OTP's `simple_one_for_one`): many
//! children from one template, each started with its own argument.
//!
//! # Rules
//!
//! 1. A child is in the table while it runs or waits for a restart, and
//!    not a moment longer: an exit for good (temporary, or transient with a
//!    normal reason), `terminate_child`, or a declined start leaves no
//!    entry, no pid and no argument behind.
//! 2. Each child restarts on its own (one for one) with a clone of its
//!    argument, counted against the supervisor's intensity; delays and
//!    failed starts use the same timer-and-token scheme as static children.
//! 3. Shutdown stops every child at once: all waiters registered, all
//!    signals sent, then one timer for the whole set.

use crate::error::ChildError;
use crate::events;
use crate::info::{ChildCounts, ChildInfo, ChildStatus};
use crate::server::{Core, Request, SupMsg, Supervisor};
use crate::spec::{Arg, ChildKind, SpecCore};
use crate::stop::{expected, stop_many, stop_one};
use corelet_shard::{Context, ExitReason, Pid, TimerRef};
use std::any::TypeId;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

enum State {
    Running(Pid),
    /// Exited, to be started again: on a timer (`Some`), or right now.
    Restarting(Option<TimerRef>),
}

struct DynChild {
    arg: Arg,
    state: State,
    restarts: u64,
    consecutive: u32,
    started_at: Duration,
}

pub(crate) struct DynamicTable {
    template: SpecCore,
    arg_type: TypeId,
    /// By start sequence number, so listings come out in start order.
    children: BTreeMap<u64, DynChild>,
    by_pid: HashMap<Pid, u64>,
    /// Pending restarts: token → child key.
    pending: HashMap<u64, u64>,
    next_key: u64,
}

impl DynamicTable {
    pub(crate) fn new(template: SpecCore, arg_type: TypeId) -> Self {
        Self {
            template,
            arg_type,
            children: BTreeMap::new(),
            by_pid: HashMap::new(),
            pending: HashMap::new(),
            next_key: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    /// `start_child(arg)`.
    pub(crate) async fn start_child(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        arg: Arg,
        arg_type: TypeId,
    ) -> Result<Option<Pid>, ChildError> {
        if arg_type != self.arg_type {
            return Err(ChildError::WrongArgument);
        }
        let started = core
            .start_incarnation(ctx, &self.template, &arg)
            .await
            .map_err(ChildError::Start)?;
        if let Some(pid) = started {
            let key = self.next_key;
            self.next_key += 1;
            self.insert(key, pid, arg, core.now());
        }
        Ok(started)
    }

    fn insert(&mut self, key: u64, pid: Pid, arg: Arg, now: Duration) {
        self.by_pid.insert(pid, key);
        let child = self.children.entry(key).or_insert(DynChild {
            arg,
            state: State::Running(pid),
            restarts: 0,
            consecutive: 0,
            started_at: now,
        });
        child.state = State::Running(pid);
        child.started_at = now;
    }

    /// A linked process exited.
    pub(crate) async fn child_exited(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        pid: Pid,
        reason: ExitReason,
    ) {
        let Some(key) = self.by_pid.remove(&pid) else {
            events::unknown_exit(core.me, pid, &reason);
            return;
        };
        core.stats.exits += 1;
        events::exited(core.me, &self.template.id, pid, &reason);
        if !self.template.restart.restarts_after(&reason) {
            self.children.remove(&key); // rule 1
            return;
        }
        let now = core.now();
        if let Some(child) = self.children.get_mut(&key) {
            child.state = State::Restarting(None);
            if now.saturating_sub(child.started_at) >= core.flags.period {
                child.consecutive = 0;
            }
        }
        self.restart(core, ctx, key, Duration::ZERO).await;
    }

    /// Restarts child `key` (rule 2); it is not running.
    async fn restart(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        key: u64,
        mut min_delay: Duration,
    ) {
        loop {
            let id = &self.template.id;
            if !core.record_restart(ctx, id) {
                return; // escalated
            }
            let Some(child) = self.children.get_mut(&key) else {
                return;
            };
            let delay = self
                .template
                .backoff
                .delay(child.consecutive, &mut core.rng)
                .max(min_delay);
            child.consecutive = child.consecutive.saturating_add(1);
            events::restarting(core.me, id, 1, delay);
            if !delay.is_zero() {
                let token = core.token();
                let timer = ctx.send_self_after(SupMsg(Request::RestartDue(token)), delay);
                child.state = State::Restarting(Some(timer));
                self.pending.insert(token, key);
                core.stats.delayed_restarts += 1;
                return;
            }
            core.breathe().await;
            if self.attempt(core, ctx, key).await {
                return;
            }
            min_delay = core.flags.retry_delay;
        }
    }

    /// Starts child `key` again; `false` if the start failed (the child
    /// stays, waiting for a retry).
    async fn attempt(&mut self, core: &mut Core, ctx: &mut Context<Supervisor>, key: u64) -> bool {
        let Some(arg) = self.children.get(&key).map(|c| c.arg.clone()) else {
            return true;
        };
        match core.start_incarnation(ctx, &self.template, &arg).await {
            Ok(Some(pid)) => {
                self.insert(key, pid, arg, core.now());
                if let Some(child) = self.children.get_mut(&key) {
                    child.restarts += 1;
                }
                true
            }
            Ok(None) => {
                self.children.remove(&key); // rule 1
                true
            }
            Err(_) => false,
        }
    }

    /// A delayed restart's timer fired.
    pub(crate) async fn restart_due(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        token: u64,
    ) {
        let Some(key) = self.pending.remove(&token) else {
            return;
        };
        if core.stopping || self.attempt(core, ctx, key).await {
            return;
        }
        let retry = core.flags.retry_delay;
        self.restart(core, ctx, key, retry).await;
    }

    /// `terminate_child(pid)`: stops the child and forgets it.
    pub(crate) async fn terminate_child(
        &mut self,
        core: &mut Core,
        ctx: &mut Context<Supervisor>,
        pid: Pid,
    ) -> Result<(), ChildError> {
        let key = self.by_pid.remove(&pid).ok_or(ChildError::NotFound)?;
        self.children.remove(&key);
        ctx.unlink(pid);
        let reason = stop_one(pid, self.template.shutdown).await;
        self.report(core, pid, &reason);
        Ok(())
    }

    fn report(&self, core: &mut Core, pid: Pid, reason: &ExitReason) {
        if !expected(self.template.shutdown, self.template.restart, reason) {
            core.stats.shutdown_errors += 1;
            events::shutdown_error(core.me, &self.template.id, pid, reason);
        }
    }

    /// Supervisor shutdown: every child at once under one timer (rule 3).
    pub(crate) async fn stop_all(&mut self, core: &mut Core, ctx: &mut Context<Supervisor>) {
        let mut pids = Vec::with_capacity(self.by_pid.len());
        for child in std::mem::take(&mut self.children).into_values() {
            match child.state {
                State::Running(pid) => pids.push(pid),
                State::Restarting(timer) => {
                    if let Some(timer) = timer {
                        ctx.cancel_timer(timer);
                    }
                }
            }
        }
        self.by_pid.clear();
        self.pending.clear();
        for pid in &pids {
            ctx.unlink(*pid);
        }
        for (pid, reason) in stop_many(&pids, self.template.shutdown).await {
            self.report(core, pid, &reason);
        }
    }

    pub(crate) fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .values()
            .map(|c| ChildInfo {
                id: self.template.id.clone(),
                status: match c.state {
                    State::Running(pid) => ChildStatus::Running(pid),
                    State::Restarting(_) => ChildStatus::Restarting,
                },
                kind: self.template.kind,
                restart: self.template.restart,
                restarts: c.restarts,
                significant: false,
            })
            .collect()
    }

    pub(crate) fn count_children(&self) -> ChildCounts {
        let specs = self.children.len();
        let (supervisors, workers) = match self.template.kind {
            ChildKind::Supervisor => (specs, 0),
            ChildKind::Worker => (0, specs),
        };
        ChildCounts {
            specs,
            active: self.by_pid.len(),
            supervisors,
            workers,
        }
    }
}
