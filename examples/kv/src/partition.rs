//! The partition process: the one owner of a shard's keys and log.
//!
//! Every shard runs one `Partition`. It runs command batches in arrival
//! order, one message at a time, without awaiting anything: its I/O (log
//! writes, syncs, the rewrite) runs in tasks it owns (`spawn_owned`), whose
//! completions come back as messages. So the partition keeps serving while
//! a sync is in flight, and the records of every client that arrive
//! meanwhile go to disk together in the next write (group commit).
//!
//! Cross-shard transactions (multi-shard MSET, MGET, DEL, EXISTS,
//! FLUSHALL) lock whole partitions in ascending shard order (see
//! `txn.rs`); while this partition is locked, everything but the holder's
//! own messages waits in `deferred`, in order.

use crate::batch::{Batch, Replies};
use crate::cmd::Cmd;
use crate::config::{Fsync, ShardConfig};
use crate::db::Db;
use crate::exec::{exec, Env};
use crate::log::Log;
use bytes::Bytes;
use corelet::{Context, Down, HandlerResult, MonitorRef, Pid, Process, ReplyTo};
use std::collections::VecDeque;
use std::time::Duration;

/// Reply bytes after which a batch stops (the rest is sent again by the
/// connection once it has written these out): what bounds the memory a
/// slow reader can pin. A transaction's commit always runs whole.
const REPLY_BUDGET: usize = 64 << 10;

/// Identifies one cross-shard transaction: its coordinator and a number.
pub type TxId = (Pid, u64);

/// Figures a partition reports for INFO.
#[derive(Clone, Debug, Default)]
pub struct PartStats {
    /// Keys held.
    pub keys: u64,
    /// Keys with an expiry time.
    pub expires: u64,
    /// Approximate bytes held.
    pub used: u64,
    /// Commands run.
    pub commands: u64,
    /// Keys expired since start.
    pub expired: u64,
    /// Log size in bytes.
    pub aof_size: u64,
    /// Log rewrites completed.
    pub rewrites: u64,
    /// Whether a rewrite is running.
    pub rewriting: bool,
    /// The last log write error, if writes are failing.
    pub aof_error: Option<String>,
}

/// What a partition understands.
pub enum PartMsg {
    /// Replays the shard's log; answered once the partition is ready.
    Load(ReplyTo<Result<String, String>>),
    /// Runs single-shard commands in order.
    Exec(Batch, ReplyTo<Replies>),
    /// Locks this partition for a cross-shard transaction.
    Lock {
        /// The transaction.
        tx: TxId,
        /// Answered once the lock is held: whether this shard is past its
        /// memory budget (the coordinator then refuses the command).
        reply: ReplyTo<bool>,
    },
    /// Runs the transaction's commands here and releases the lock.
    Commit(TxId, Batch, ReplyTo<Replies>),
    /// Releases the lock without running anything.
    Unlock(TxId),
    /// One step of a SCAN: cursor, count, MATCH pattern, TYPE.
    Scan(
        usize,
        usize,
        Option<Bytes>,
        Option<Bytes>,
        ReplyTo<(usize, Vec<Vec<u8>>)>,
    ),
    /// Figures for INFO.
    Stats(ReplyTo<PartStats>),
    /// Writes and syncs everything logged so far (shutdown).
    Sync(ReplyTo<Result<(), String>>),
    /// A log write finished (from an owned task).
    Flushed(std::io::Result<()>, u64),
    /// A rewrite's snapshot is on disk (from an owned task, which left the
    /// file with the log: a file handle cannot travel in a `Send` message).
    RewriteWritten(std::io::Result<()>),
    /// The active expiry cycle and the once-a-second sync.
    Tick,
}

/// The owner of one shard's keys.
pub struct Partition {
    cfg: ShardConfig,
    db: Db,
    log: Option<Log>,
    rng: fastrand::Rng,
    commands: u64,
    /// The transaction holding this partition, and the monitor on its
    /// coordinator (a coordinator that dies releases its locks).
    lock: Option<(TxId, MonitorRef)>,
    deferred: VecDeque<PartMsg>,
}

impl Partition {
    /// A partition with an empty keyspace; `Load` fills it.
    pub fn new(cfg: ShardConfig) -> Self {
        Self {
            cfg,
            db: Db::default(),
            log: None,
            rng: fastrand::Rng::new(),
            commands: 0,
            lock: None,
            deferred: VecDeque::new(),
        }
    }

    fn over_budget(&self) -> bool {
        self.cfg.budget > 0 && self.db.used as u64 > self.cfg.budget
    }

    /// Runs a batch, logging its effects; returns the replies and whether
    /// anything was logged. `check_oom` is off for a transaction's commit
    /// (its coordinator checked every shard under the locks).
    fn run(&mut self, batch: &Batch, check_oom: bool) -> (Replies, bool) {
        let now = crate::now_ms();
        let mut replies = Replies::with_capacity(batch.len());
        let log = self.log.as_mut().expect("loaded before serving");
        let before = log.appended();
        for (cmd, args) in batch.iter() {
            if check_oom && replies.buf_mut().len() >= REPLY_BUDGET {
                break; // the connection sends the rest again
            }
            if let Some(e) = log.error() {
                if cmd.is_write() {
                    replies.error(&format!("MISCONF Errors writing to the AOF file: {e}"));
                    continue;
                }
            }
            let oom = check_oom && self.cfg.budget > 0 && self.db.used as u64 > self.cfg.budget;
            let mut env = Env {
                now,
                log: Some(log.buffer()),
                oom,
                rng: &mut self.rng,
            };
            exec(&mut self.db, &mut env, cmd, args, replies.buf_mut());
            replies.end();
            for key in self.db.expired.drain(..) {
                crate::aof::append_record(log.buffer(), &[b"DEL", &key]);
            }
            self.commands += 1;
        }
        let wrote = log.appended() > before;
        (replies, wrote)
    }

    /// Answers a batch now, or once its records are durable (`always`).
    fn answer(
        &mut self,
        ctx: &mut Context<Self>,
        batch: Batch,
        reply: ReplyTo<Replies>,
        check_oom: bool,
    ) {
        let (replies, wrote) = self.run(&batch, check_oom);
        let log = self.log.as_mut().expect("loaded");
        if wrote && self.cfg.fsync == Fsync::Always {
            log.hold(reply, replies);
        } else {
            reply.send(replies);
        }
        log.kick(ctx);
    }

    fn handle_now(&mut self, ctx: &mut Context<Self>, msg: PartMsg) {
        match msg {
            PartMsg::Exec(batch, reply) => self.answer(ctx, batch, reply, true),
            PartMsg::Lock { tx, reply } => {
                let monitor = ctx.monitor(tx.0);
                self.lock = Some((tx, monitor));
                reply.send(self.over_budget());
            }
            PartMsg::Commit(tx, batch, reply) => {
                if self.release(ctx, tx) {
                    self.answer(ctx, batch, reply, false);
                }
            }
            PartMsg::Unlock(tx) => {
                self.release(ctx, tx);
            }
            PartMsg::Scan(cursor, count, pattern, kind, reply) => {
                reply.send(self.scan(cursor, count, pattern, kind));
            }
            PartMsg::Stats(reply) => reply.send(self.stats()),
            PartMsg::Sync(reply) => {
                let log = self.log.as_mut().expect("loaded");
                log.sync_when_done(reply);
                log.kick(ctx);
            }
            PartMsg::Flushed(outcome, upto) => {
                let log = self.log.as_mut().expect("loaded");
                log.flushed(outcome, upto);
                log.kick(ctx);
                self.maybe_rewrite(ctx);
            }
            PartMsg::RewriteWritten(outcome) => {
                let log = self.log.as_mut().expect("loaded");
                log.rewrite_written(outcome);
                log.kick(ctx);
            }
            PartMsg::Tick => self.tick(ctx),
            PartMsg::Load(reply) => {
                reply.send(Err("already loaded".into()));
            }
        }
    }

    /// Releases the lock if `tx` holds it; whether it did.
    fn release(&mut self, ctx: &mut Context<Self>, tx: TxId) -> bool {
        match &self.lock {
            Some((holder, monitor)) if *holder == tx => {
                ctx.demonitor(*monitor);
                self.lock = None;
                true
            }
            _ => false,
        }
    }

    /// Handles what waited for the lock, in order, until somebody takes it
    /// again.
    fn drain_deferred(&mut self, ctx: &mut Context<Self>) {
        while self.lock.is_none() {
            let Some(msg) = self.deferred.pop_front() else {
                break;
            };
            self.handle_now(ctx, msg);
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = crate::now_ms();
        let expired = self.db.expire_cycle(now, 1000);
        if let Some(log) = self.log.as_mut() {
            for key in self.db.expired.drain(..) {
                crate::aof::append_record(log.buffer(), &[b"DEL", &key]);
            }
            log.tick(ctx);
        }
        // Keep going at once while a backlog of expired keys remains.
        let next = if expired == 1000 { 1 } else { 100 };
        ctx.send_self_after(PartMsg::Tick, Duration::from_millis(next));
    }

    fn maybe_rewrite(&mut self, ctx: &mut Context<Self>) {
        if self.lock.is_some() {
            return;
        }
        let log = self.log.as_mut().expect("loaded");
        if log.wants_rewrite(self.db.used as u64, self.cfg.rewrite_min) {
            let snapshot = crate::log::snapshot(&self.db, self.cfg.shard, self.cfg.shards);
            log.start_rewrite(ctx, snapshot);
        }
    }

    fn scan(
        &mut self,
        cursor: usize,
        count: usize,
        pattern: Option<Bytes>,
        kind: Option<Bytes>,
    ) -> (usize, Vec<Vec<u8>>) {
        let now = crate::now_ms();
        let mut keys = Vec::new();
        let next = self.db.scan(cursor, count, |it| {
            let live = it.exp == 0 || it.exp > now;
            let matches = pattern
                .as_ref()
                .is_none_or(|p| crate::db::glob_match(p, &it.key));
            let typed = kind
                .as_ref()
                .is_none_or(|t| t.eq_ignore_ascii_case(it.val.type_name().as_bytes()));
            if live && matches && typed {
                keys.push(it.key.to_vec());
            }
        });
        (next, keys)
    }

    fn stats(&self) -> PartStats {
        let log = self.log.as_ref();
        PartStats {
            keys: self.db.len() as u64,
            expires: self.db.expires_len() as u64,
            used: self.db.used as u64,
            commands: self.commands,
            expired: self.db.expired_total,
            aof_size: log.map_or(0, Log::size),
            rewrites: log.map_or(0, Log::rewrites),
            rewriting: log.is_some_and(Log::rewriting),
            aof_error: log.and_then(|l| l.error().map(str::to_owned)),
        }
    }

    async fn load(&mut self, ctx: &mut Context<Self>) -> Result<String, String> {
        let (log, report) = Log::open(&self.cfg, &mut self.db).await?;
        self.log = Some(log);
        ctx.send_self_after(PartMsg::Tick, Duration::from_millis(100));
        Ok(report)
    }
}

impl Process for Partition {
    type Msg = PartMsg;

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: PartMsg) -> HandlerResult {
        if let PartMsg::Load(reply) = msg {
            if self.log.is_some() {
                reply.send(Err("already loaded".into()));
            } else {
                reply.send(self.load(ctx).await);
            }
            return Ok(());
        }
        let waits = match (&self.lock, &msg) {
            (None, _) => false,
            (Some((holder, _)), PartMsg::Commit(tx, ..) | PartMsg::Unlock(tx)) => holder != tx,
            (Some(_), PartMsg::Exec(..) | PartMsg::Lock { .. } | PartMsg::Scan(..)) => true,
            (Some(_), _) => false,
        };
        if waits
            || (!self.deferred.is_empty()
                && matches!(msg, PartMsg::Exec(..) | PartMsg::Lock { .. }))
        {
            self.deferred.push_back(msg);
            return Ok(());
        }
        let was_locked = self.lock.is_some();
        self.handle_now(ctx, msg);
        if was_locked && self.lock.is_none() {
            self.drain_deferred(ctx);
        }
        Ok(())
    }

    async fn handle_down(&mut self, ctx: &mut Context<Self>, down: Down) -> HandlerResult {
        if matches!(&self.lock, Some((_, m)) if *m == down.monitor) {
            self.lock = None;
            self.drain_deferred(ctx);
        }
        Ok(())
    }

    async fn terminate(&mut self, _ctx: &mut Context<Self>, _reason: &corelet::ExitReason) {
        if let Some(log) = self.log.as_mut() {
            if let Err(e) = log.final_sync().await {
                eprintln!(
                    "corelet-kv: shard {}: final log sync failed: {e}",
                    self.cfg.shard
                );
            }
        }
    }
}

/// Runs a replayed record (used by `Log::open`).
pub fn replay(db: &mut Db, rng: &mut fastrand::Rng, args: &[&[u8]]) -> Result<(), String> {
    let name = args.first().ok_or("empty record")?;
    let cmd = if name.eq_ignore_ascii_case(b"FLUSHALL") {
        Cmd::Flushall
    } else {
        Cmd::lookup(name)
            .ok_or_else(|| format!("unknown record {:?}", String::from_utf8_lossy(name)))?
    };
    let mut env = Env {
        now: crate::now_ms(),
        log: None,
        oom: false,
        rng,
    };
    let mut out = Vec::new();
    exec(db, &mut env, cmd, args, &mut out);
    db.expired.clear();
    if out.first() == Some(&b'-') {
        return Err(String::from_utf8_lossy(&out).trim_end().to_owned());
    }
    Ok(())
}
