//! Per-shard counters and their snapshot.

use crate::exit::ExitReason;
use std::cell::Cell;

/// Per-shard counters. Plain `Cell`s: only the shard thread writes or reads
/// them; other threads ask the shard for a [`ShardStats`] snapshot.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) spawned: Cell<u64>,
    pub(crate) messages: Cell<u64>,
    pub(crate) dead_letters: Cell<u64>,
    pub(crate) cross_sent: Cell<u64>,
    pub(crate) cross_received: Cell<u64>,
    pub(crate) late_replies: Cell<u64>,
    pub(crate) wakeups_sent: Cell<u64>,
    pub(crate) overflowed: Cell<u64>,
    pub(crate) exits: [Cell<u64>; 6],
}

pub(crate) fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

pub(crate) fn add(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

fn reason_index(reason: &ExitReason) -> usize {
    match reason {
        ExitReason::Normal => 0,
        ExitReason::Shutdown => 1,
        ExitReason::Killed => 2,
        ExitReason::Panicked(_) => 3,
        // A process can only exit with `NoProcess` if its code chose to.
        ExitReason::Error(_) | ExitReason::NoProcess => 4,
        ExitReason::Linked { .. } => 5,
    }
}

impl Counters {
    pub(crate) fn count_exit(&self, reason: &ExitReason) {
        bump(&self.exits[reason_index(reason)]);
    }
}

/// Exits of one shard's processes, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitCounts {
    /// [`ExitReason::Normal`].
    pub normal: u64,
    /// [`ExitReason::Shutdown`].
    pub shutdown: u64,
    /// [`ExitReason::Killed`].
    pub killed: u64,
    /// [`ExitReason::Panicked`].
    pub panicked: u64,
    /// [`ExitReason::Error`] (and `NoProcess`, if a process chose it).
    pub error: u64,
    /// [`ExitReason::Linked`].
    pub linked: u64,
}

impl ExitCounts {
    /// All exits.
    pub fn total(&self) -> u64 {
        self.normal + self.shutdown + self.killed + self.panicked + self.error + self.linked
    }
}

/// A snapshot of one shard's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// The shard.
    pub shard: u16,
    /// Processes alive now.
    pub alive: u64,
    /// Processes spawned since the shard started, including those whose
    /// `init` failed (each of those also counts as an exit under its
    /// reason), so that `spawned - exited == alive`.
    pub spawned: u64,
    /// Processes that exited (the sum of `exits`).
    pub exited: u64,
    /// Exits by reason.
    pub exits: ExitCounts,
    /// User messages handled.
    pub messages: u64,
    /// Messages (and signals) addressed to dead, stale or unknown pids, or
    /// left in a mailbox when its process exited.
    pub dead_letters: u64,
    /// Envelopes this shard pushed to other shards.
    pub cross_sent: u64,
    /// Envelopes this shard received from other shards and outside threads.
    pub cross_received: u64,
    /// Replies that arrived after their asker gave up (timeout, drop).
    pub late_replies: u64,
    /// Doorbell notifications this shard sent to sleeping shards.
    pub wakeups_sent: u64,
    /// Envelopes this shard sent that found the ring towards their shard
    /// full (or others already waiting) and waited in the overflow queue:
    /// back-pressure that `tell` absorbed. [`crate::Addr::send`] waits for
    /// ring room instead, so its messages never count here.
    pub overflowed: u64,
    /// Names registered on this shard's part of the registry.
    pub names: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self, shard: u16, alive: u64, names: u64) -> ShardStats {
        let e = |i: usize| self.exits[i].get();
        let exits = ExitCounts {
            normal: e(0),
            shutdown: e(1),
            killed: e(2),
            panicked: e(3),
            error: e(4),
            linked: e(5),
        };
        ShardStats {
            shard,
            alive,
            spawned: self.spawned.get(),
            exited: exits.total(),
            exits,
            messages: self.messages.get(),
            dead_letters: self.dead_letters.get(),
            cross_sent: self.cross_sent.get(),
            cross_received: self.cross_received.get(),
            late_replies: self.late_replies.get(),
            wakeups_sent: self.wakeups_sent.get(),
            overflowed: self.overflowed.get(),
            names,
        }
    }
}
