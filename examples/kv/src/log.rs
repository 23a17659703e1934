//! A shard's log writer: group commit, `appendfsync`, recovery on open,
//! and rewrite without stopping service. Owned by the partition process;
//! its I/O runs in tasks the partition owns (`spawn_owned`), reporting
//! back with `PartMsg::Flushed` / `PartMsg::RewriteWritten`.
//!
//! # Group commit
//!
//! Commands append records to `pending`. At most one write is in flight.
//! When it completes, everything that piled up meanwhile — the records of
//! every client of the shard — goes out in the next write, with one
//! `fdatasync` under `always`. A batch with records is answered (under
//! `always`) only once a synced write covering its last byte completed.
//!
//! Direct I/O writes whole 4 KiB blocks: each write starts at the block
//! holding the end of the data (`tail_pos`), rewriting that partial block
//! with the new records appended.
//!
//! # Rewrite
//!
//! When the log is past `--aof-rewrite-min-size` and twice the live data,
//! the partition serialises its keys (a point-in-time snapshot, taken in
//! one step between two messages) and a task writes and syncs it to
//! `shard-N.aof.rewrite` while service goes on; records logged from then on
//! go to the old log *and* to a side buffer. Once the snapshot is on disk
//! and no write is in flight, the writer switches: the side buffer becomes
//! the new file's pending data, and its first write syncs, renames the file
//! over `shard-N.aof` and syncs the directory *before* any reply waiting
//! for it is released. Until the rename, the old log holds every
//! acknowledged record; after it, the new one does.

use crate::aof::{self, Flush, BLOCK};
use crate::batch::Replies;
use crate::config::{Fsync, ShardConfig};
use crate::db::{Db, Value};
use crate::partition::PartMsg;
use crate::partition::Partition;
use corelet::{Context, ReplyTo};
use glommio::io::DmaFile;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Pending bytes that trigger a write without waiting for a sync.
const WRITE_AT: usize = 1 << 20;

struct Rewrite {
    /// Records logged since the snapshot.
    tail: Vec<u8>,
    /// The snapshot's last partial block and its length.
    snap_tail: Vec<u8>,
    snap_len: u64,
    /// The snapshot file, left here by the task that wrote it.
    file: Rc<RefCell<Option<DmaFile>>>,
    /// Whether the snapshot is on disk.
    ready: bool,
}

/// One shard's log writer.
pub struct Log {
    cfg: ShardConfig,
    file: Rc<DmaFile>,
    pending: Vec<u8>,
    /// Bytes of `pending` already counted in `appended` (and mirrored).
    mark: usize,
    tail: Vec<u8>,
    tail_pos: u64,
    appended: u64,
    synced: u64,
    in_flight: Option<bool>,
    held: VecDeque<(u64, ReplyTo<Replies>, Replies)>,
    sync_waiters: Vec<ReplyTo<Result<(), String>>>,
    last_sync: Instant,
    force: bool,
    error: Option<String>,
    rewrite: Option<Rewrite>,
    renaming: bool,
    rewrites: u64,
    /// Set by the flush task itself when its I/O finished (for the final
    /// sync, which cannot receive the completion message).
    idle: Rc<std::cell::Cell<bool>>,
}

impl Log {
    /// Where commands append their records.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.pending
    }

    /// Bytes ever appended (records are numbered by their end).
    pub fn appended(&self) -> u64 {
        self.appended + (self.pending.len() - self.mark) as u64
    }

    /// Logical size of the current file.
    pub fn size(&self) -> u64 {
        self.tail_pos + self.tail.len() as u64 + self.pending.len() as u64
    }

    /// Rewrites completed.
    pub fn rewrites(&self) -> u64 {
        self.rewrites
    }

    /// Whether a rewrite is running.
    pub fn rewriting(&self) -> bool {
        self.rewrite.is_some() || self.renaming
    }

    /// The write error that stopped logging, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Holds a reply until what was appended so far is on disk.
    pub fn hold(&mut self, reply: ReplyTo<Replies>, replies: Replies) {
        let upto = self.appended();
        self.held.push_back((upto, reply, replies));
    }

    /// Answers `reply` once everything appended so far is synced.
    pub fn sync_when_done(&mut self, reply: ReplyTo<Result<(), String>>) {
        self.sync_waiters.push(reply);
    }

    /// Counts new records (and copies them for a running rewrite).
    fn mirror(&mut self) {
        let new = &self.pending[self.mark..];
        self.appended += new.len() as u64;
        if let Some(rw) = self.rewrite.as_mut() {
            rw.tail.extend_from_slice(new);
        }
        self.mark = self.pending.len();
    }

    /// Starts a write if one is due and none is in flight.
    pub fn kick(&mut self, ctx: &mut Context<Partition>) {
        self.mirror();
        if self.in_flight.is_some() || self.error.is_some() {
            return;
        }
        if self.rewrite.as_ref().is_some_and(|rw| rw.ready) {
            self.switch();
        }
        let unsynced = self.synced < self.appended;
        let late = self.last_sync.elapsed() >= Duration::from_secs(1);
        let sync = match self.cfg.fsync {
            Fsync::Always => true,
            Fsync::Everysec => late,
            Fsync::No => false,
        } || self.renaming
            || !self.sync_waiters.is_empty();
        let due = !self.pending.is_empty()
            && (self.cfg.fsync == Fsync::Always || self.pending.len() >= WRITE_AT || self.force);
        if due || self.renaming || (sync && (unsynced || !self.pending.is_empty())) {
            self.start(ctx, sync);
        } else if !self.sync_waiters.is_empty() {
            for w in self.sync_waiters.drain(..) {
                w.send(Ok(()));
            }
        }
    }

    fn start(&mut self, ctx: &mut Context<Partition>, sync: bool) {
        let mut bytes = std::mem::take(&mut self.tail);
        bytes.extend_from_slice(&self.pending);
        self.pending.clear();
        self.mark = 0;
        let pos = self.tail_pos;
        let end = pos + bytes.len() as u64;
        self.tail_pos = end / BLOCK * BLOCK;
        self.tail = bytes[(self.tail_pos - pos) as usize..].to_vec();
        let upto = self.appended;
        self.in_flight = Some(sync);
        self.force = false;
        let rename_to = self
            .renaming
            .then(|| aof::log_path(&self.cfg.dir, self.cfg.shard));
        let flush = Flush {
            file: self.file.clone(),
            pos,
            bytes,
            sync,
            rename_to,
        };
        let idle = self.idle.clone();
        idle.set(false);
        ctx.spawn_owned(
            async move {
                let outcome = flush.run().await;
                idle.set(true);
                outcome
            },
            move |outcome| PartMsg::Flushed(outcome, upto),
        );
    }

    /// A write finished.
    pub fn flushed(&mut self, outcome: std::io::Result<()>, upto: u64) {
        let synced = self.in_flight.take().unwrap_or(false);
        if let Err(e) = outcome {
            eprintln!(
                "corelet-kv: shard {}: log write failed: {e}",
                self.cfg.shard
            );
            let msg = e.to_string();
            for (_, reply, replies) in self.held.drain(..) {
                let n = replies.len();
                reply.send(Replies::errors(
                    n,
                    &format!("MISCONF Errors writing to the AOF file: {msg}"),
                ));
            }
            for w in self.sync_waiters.drain(..) {
                w.send(Err(msg.clone()));
            }
            self.error = Some(msg);
            return;
        }
        if synced {
            self.synced = upto;
            self.last_sync = Instant::now();
            if self.renaming {
                self.renaming = false;
                self.rewrites += 1;
            }
        }
        while self
            .held
            .front()
            .is_some_and(|(at, _, _)| *at <= self.synced)
        {
            let (_, reply, replies) = self.held.pop_front().expect("checked");
            reply.send(replies);
        }
        if !self.sync_waiters.is_empty() && self.synced >= self.appended() {
            for w in self.sync_waiters.drain(..) {
                w.send(Ok(()));
            }
        }
    }

    /// The periodic duties: a write under `no`, a sync under `everysec`
    /// (both at most once a second).
    pub fn tick(&mut self, ctx: &mut Context<Partition>) {
        if self.cfg.fsync == Fsync::No && self.last_sync.elapsed() >= Duration::from_secs(1) {
            self.force = true;
            self.last_sync = Instant::now(); // `no` never syncs: this paces its writes
        }
        self.kick(ctx);
    }

    /// Whether the log has grown enough to be rewritten.
    pub fn wants_rewrite(&self, live: u64, min: u64) -> bool {
        self.rewrite.is_none()
            && !self.renaming
            && self.error.is_none()
            && self.size() >= min
            && self.size() >= 2 * live
    }

    /// Starts writing `snapshot` to the rewrite file in an owned task.
    pub fn start_rewrite(&mut self, ctx: &mut Context<Partition>, snapshot: Vec<u8>) {
        self.mirror();
        let snap_len = snapshot.len() as u64;
        let cut = (snap_len / BLOCK * BLOCK) as usize;
        self.rewrite = Some(Rewrite {
            tail: Vec::new(),
            snap_tail: snapshot[cut..].to_vec(),
            snap_len,
            file: Rc::new(RefCell::new(None)),
            ready: false,
        });
        let slot = self
            .rewrite
            .as_ref()
            .map(|rw| rw.file.clone())
            .expect("just set");
        let path = aof::rewrite_path(&self.cfg.dir, self.cfg.shard);
        ctx.spawn_owned(
            async move {
                let file = aof::open(&path).await?;
                file.truncate(0).await.map_err(std::io::Error::from)?;
                aof::write_blocks(&file, 0, &snapshot, true).await?;
                *slot.borrow_mut() = Some(file);
                Ok(())
            },
            PartMsg::RewriteWritten,
        );
    }

    /// The snapshot is on disk (or failed: the rewrite is abandoned and
    /// the old log goes on).
    pub fn rewrite_written(&mut self, outcome: std::io::Result<()>) {
        match outcome {
            Ok(()) => {
                if let Some(rw) = self.rewrite.as_mut() {
                    rw.ready = true;
                }
            }
            Err(e) => {
                eprintln!(
                    "corelet-kv: shard {}: log rewrite failed: {e}",
                    self.cfg.shard
                );
                self.rewrite = None;
            }
        }
    }

    /// Moves writing to the rewritten file (no write in flight).
    fn switch(&mut self) {
        let Some(rw) = self.rewrite.take() else {
            return;
        };
        let Some(file) = rw.file.borrow_mut().take() else {
            return;
        };
        self.mirror();
        self.file = Rc::new(file);
        self.tail_pos = rw.snap_len / BLOCK * BLOCK;
        self.tail = rw.snap_tail;
        self.pending = rw.tail;
        self.mark = self.pending.len();
        self.renaming = true;
    }

    /// Writes and syncs what is left (the partition is terminating; no
    /// completion message will be handled any more).
    pub async fn final_sync(&mut self) -> std::io::Result<()> {
        while !self.idle.get() {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        if self.error.is_some()
            || (self.pending.is_empty() && self.synced >= self.appended() && !self.renaming)
        {
            return Ok(());
        }
        self.mirror();
        let mut bytes = std::mem::take(&mut self.tail);
        bytes.extend_from_slice(&self.pending);
        self.pending.clear();
        let rename_to = self
            .renaming
            .then(|| aof::log_path(&self.cfg.dir, self.cfg.shard));
        Flush {
            file: self.file.clone(),
            pos: self.tail_pos,
            bytes,
            sync: true,
            rename_to,
        }
        .run()
        .await
    }

    /// Opens shard `cfg.shard`'s log, replays it into `db`, and returns the
    /// writer with a one-line report.
    pub async fn open(cfg: &ShardConfig, db: &mut Db) -> Result<(Log, String), String> {
        let path = aof::log_path(&cfg.dir, cfg.shard);
        let shown = path.display().to_string();
        let _ = std::fs::remove_file(aof::rewrite_path(&cfg.dir, cfg.shard));
        let file = aof::open(&path)
            .await
            .map_err(|e| format!("{shown}: {e}"))?;
        let data = aof::read_all(&file)
            .await
            .map_err(|e| format!("{shown}: {e}"))?;
        let scan = aof::scan(&data).map_err(|c| {
            format!(
                "corrupt record in {shown} at offset {}: refusing to start",
                c.offset
            )
        })?;
        let mut rng = fastrand::Rng::new();
        for (i, &(a, b)) in scan.records.iter().enumerate() {
            let args = aof::decode_payload(&data[a..b]).expect("scan checked it");
            if i == 0 {
                check_header(&args, cfg).map_err(|e| format!("{shown}: {e}"))?;
                continue;
            }
            crate::partition::replay(db, &mut rng, &args)
                .map_err(|e| format!("{shown}: record at offset {}: {e}", a - 8))?;
        }
        let mut report = format!(
            "shard {}: {} records replayed from {shown}, {} keys",
            cfg.shard,
            scan.records.len().saturating_sub(1),
            db.len()
        );
        let end = scan.end as u64;
        if let Some(torn) = scan.torn {
            eprintln!(
                "corelet-kv: warning: {shown}: dropping a torn last record at offset {end} ({torn} bytes)"
            );
            report.push_str(&format!(" (torn tail of {torn} bytes dropped)"));
        }
        if data.len() as u64 != end {
            file.truncate(end)
                .await
                .map_err(|e| format!("{shown}: {e}"))?;
            file.fdatasync()
                .await
                .map_err(|e| format!("{shown}: {e}"))?;
        }
        let tail_pos = end / BLOCK * BLOCK;
        let mut log = Log {
            cfg: cfg.clone(),
            file: Rc::new(file),
            pending: Vec::new(),
            mark: 0,
            tail: data[tail_pos as usize..end as usize].to_vec(),
            tail_pos,
            appended: 0,
            synced: 0,
            in_flight: None,
            held: VecDeque::new(),
            sync_waiters: Vec::new(),
            last_sync: Instant::now(),
            force: false,
            error: None,
            rewrite: None,
            renaming: false,
            rewrites: 0,
            idle: Rc::new(std::cell::Cell::new(true)),
        };
        if scan.records.is_empty() {
            log.pending = aof::header(cfg.shard, cfg.shards);
        }
        Ok((log, report))
    }
}

fn check_header(args: &[&[u8]], cfg: &ShardConfig) -> Result<(), String> {
    if args.len() != 4 || args[0] != aof::HEADER_TAG || args[1] != b"1" {
        return Err("not a corelet-kv log (bad header)".into());
    }
    let num = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
    };
    let (shard, shards) = (num(args[2]), num(args[3]));
    if shards != Some(cfg.shards) || shard != Some(cfg.shard) {
        return Err(format!(
            "written by shard {:?} of {:?} shards, but this is shard {} of {}: start with CORELET_SHARDS={}",
            shard,
            shards,
            cfg.shard,
            cfg.shards,
            shards.unwrap_or(0)
        ));
    }
    Ok(())
}

/// Serialises a partition as log records (the rewrite's snapshot).
pub fn snapshot(db: &Db, shard: usize, shards: usize) -> Vec<u8> {
    let mut buf = aof::header(shard, shards);
    const CHUNK: usize = 64;
    for it in db.iter() {
        let key = &*it.key;
        match &it.val {
            Value::Str(s) => aof::append_record(&mut buf, &[b"SET", key, s]),
            Value::List(l) => {
                let items: Vec<&[u8]> = l.iter().map(Vec::as_slice).collect();
                for chunk in items.chunks(CHUNK) {
                    let mut rec: Vec<&[u8]> = vec![b"RPUSH", key];
                    rec.extend_from_slice(chunk);
                    aof::append_record(&mut buf, &rec);
                }
            }
            Value::Hash(h) => {
                let pairs: Vec<(&Vec<u8>, &Vec<u8>)> = h.iter().collect();
                for chunk in pairs.chunks(CHUNK) {
                    let mut rec: Vec<&[u8]> = vec![b"HSET", key];
                    for (f, v) in chunk {
                        rec.push(f);
                        rec.push(v);
                    }
                    aof::append_record(&mut buf, &rec);
                }
            }
            Value::Set(s) => {
                let members: Vec<&[u8]> = s.iter().map(Vec::as_slice).collect();
                for chunk in members.chunks(CHUNK) {
                    let mut rec: Vec<&[u8]> = vec![b"SADD", key];
                    rec.extend_from_slice(chunk);
                    aof::append_record(&mut buf, &rec);
                }
            }
        }
        if it.exp != 0 {
            let t = it.exp.to_string();
            aof::append_record(&mut buf, &[b"PEXPIREAT", key, t.as_bytes()]);
        }
    }
    buf
}
