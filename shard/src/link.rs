//! Links and monitors, the shard side.
//!
//! *Links* are bidirectional (Erlang semantics). Each side keeps the other's
//! pid in its entry. When a process exits, every linked process gets an exit
//! signal: a trapping process receives it as a message (its `handle_exit`
//! hook); a non-trapping one stops with `Linked { pid, reason }` if the
//! reason is abnormal, and ignores it if normal.
//!
//! *Monitors* are one-way and stackable. The target's entry keeps a
//! [`MonitorRef`] per monitor; on exit it sends each watcher one [`Down`].
//!
//! # Rules
//!
//! 1. Every link or monitor operation runs on the shard that owns the pid it
//!    changes; requests to another shard travel through the ring from the
//!    requester's shard, so they are ordered with everything else that shard
//!    sends there (a link request always reaches the target before the
//!    linker's own exit signal).
//! 2. An exit signal is acted on only if the receiving side still lists the
//!    sender as linked. `unlink` removes the pid locally at once, so after
//!    `unlink` returns no exit signal from that link can reach the caller.
//! 3. A `Down` is handed to the watcher only if the watcher's context still
//!    holds the monitor, and the context forgets it as it does so: a `Down`
//!    arrives at most once, and never after `demonitor`.
//! 4. Linking to or monitoring a dead or stale pid answers at once with
//!    `NoProcess`: an exit signal, or a `Down`.

use crate::envelope::Envelope;
use crate::exit::ExitReason;
use crate::pid::{Pid, ShardId};
use crate::shard::{Priority, Shard};
use crate::table::{flags, Signal, System};

/// Names one monitor: who watches whom, and which of the watcher's monitors
/// it is. Plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MonitorRef {
    watcher: Pid,
    target: Pid,
    id: u64,
}

impl MonitorRef {
    pub(crate) fn new(watcher: Pid, target: Pid, id: u64) -> Self {
        Self {
            watcher,
            target,
            id,
        }
    }

    /// The monitoring process.
    pub fn watcher(&self) -> Pid {
        self.watcher
    }

    /// The monitored process.
    pub fn target(&self) -> Pid {
        self.target
    }
}

/// A monitored process exited (or never existed: `reason` is `NoProcess`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Down {
    /// The monitor this answers.
    pub monitor: MonitorRef,
    /// The process that exited.
    pub pid: Pid,
    /// Why.
    pub reason: ExitReason,
}

/// What a link's exit signal does to a live receiver.
enum OnExit {
    Trap,
    Stop,
    Ignore,
}

impl Shard {
    /// Runs `f` on the shard that owns `pid`: now if that is this shard,
    /// else through the ring (system priority: never refused). A pid on a
    /// shard that does not exist is dropped and counted.
    pub(crate) fn on_owner(&self, pid: Pid, f: impl FnOnce(&Shard) + Send + 'static) {
        self.on_shard(pid.shard(), f);
    }

    /// Runs `f` on shard `to` (see [`Shard::on_owner`]).
    pub(crate) fn on_shard(&self, to: ShardId, f: impl FnOnce(&Shard) + Send + 'static) {
        if to == self.id {
            f(self);
        } else if to.index() < self.shared.shards.len() {
            // A refusal (the shard has finished) is counted by `send_remote`.
            let _ = self.send_remote(to, Envelope::new(f), Priority::System);
        } else {
            self.count_dead_letter();
        }
    }

    pub(crate) fn is_alive(&self, pid: Pid) -> bool {
        self.procs.get(pid.slot(), pid.generation()).is_some()
    }

    /// `from`, a process of this shard, links to `to`.
    pub(crate) fn link(&self, from: Pid, to: Pid) {
        if from == to {
            return;
        }
        let Some(header) = self.header(from) else {
            return;
        };
        header.with_extras(|e| {
            let links = &mut e.rare().links;
            if !links.contains(&to) {
                links.push(to);
            }
        });
        if to.shard().index() >= self.shared.shards.len() {
            // Rule 4: no shard owns `to`, so it names no process.
            self.send_link_exit(from, to, ExitReason::NoProcess);
            return;
        }
        self.on_owner(to, move |s| s.accept_link(to, from));
    }

    fn accept_link(&self, pid: Pid, from: Pid) {
        let alive = self.header(pid).map(|header| {
            header.with_extras(|e| {
                let links = &mut e.rare().links;
                if !links.contains(&from) {
                    links.push(from);
                }
            })
        });
        if alive.is_none() {
            self.send_link_exit(from, pid, ExitReason::NoProcess);
        }
    }

    /// `from`, a process of this shard, removes its link to `to`.
    pub(crate) fn unlink(&self, from: Pid, to: Pid) {
        self.forget_link(from, to);
        self.on_owner(to, move |s| {
            s.forget_link(to, from);
        });
    }

    fn forget_link(&self, pid: Pid, other: Pid) -> bool {
        let Some(header) = self.header(pid) else {
            return false;
        };
        header
            .extras_mut(|e| {
                let links = &mut e.rare.as_deref_mut()?.links;
                let i = links.iter().position(|p| *p == other)?;
                links.swap_remove(i);
                Some(())
            })
            .flatten()
            .is_some()
    }

    /// Sends `from`'s exit signal to the linked process `to`.
    pub(crate) fn send_link_exit(&self, to: Pid, from: Pid, reason: ExitReason) {
        self.on_owner(to, move |s| s.link_exit(to, from, reason));
    }

    fn link_exit(&self, pid: Pid, from: Pid, reason: ExitReason) {
        // Rule 2: only a link the receiver still holds has any effect.
        if !self.forget_link(pid, from) {
            return;
        }
        let Some(header) = self.header(pid) else {
            return;
        };
        let action = if header.has(flags::TRAP_EXITS) {
            OnExit::Trap
        } else if reason.is_normal() {
            OnExit::Ignore
        } else {
            OnExit::Stop
        };
        match action {
            OnExit::Trap => {
                self.push_system(pid, System::Exit(from, reason));
            }
            OnExit::Stop => {
                let _ = self.signal(
                    pid,
                    Signal::Terminate(ExitReason::Linked {
                        pid: from,
                        reason: Box::new(reason),
                    }),
                );
            }
            OnExit::Ignore => {}
        }
    }

    /// Asks `monitor.target`'s shard to watch it for `monitor.watcher`.
    pub(crate) fn monitor(&self, monitor: MonitorRef) {
        if monitor.target.shard().index() >= self.shared.shards.len() {
            // Rule 4: no shard owns the target, so it names no process.
            self.send_down(Down {
                monitor,
                pid: monitor.target,
                reason: ExitReason::NoProcess,
            });
            return;
        }
        self.on_owner(monitor.target, move |s| s.accept_monitor(monitor));
    }

    fn accept_monitor(&self, monitor: MonitorRef) {
        let target = monitor.target;
        let alive = self
            .header(target)
            .map(|header| header.with_extras(|e| e.rare().monitors.push(monitor)));
        if alive.is_none() {
            self.send_down(Down {
                monitor,
                pid: target,
                reason: ExitReason::NoProcess,
            });
        }
    }

    /// Drops the target's side of a monitor (the watcher already forgot it).
    pub(crate) fn demonitor(&self, monitor: MonitorRef) {
        if monitor.target.shard().index() >= self.shared.shards.len() {
            return; // no shard holds it
        }
        self.on_owner(monitor.target, move |s| {
            if let Some(header) = s.header(monitor.target) {
                header.extras_mut(|e| {
                    if let Some(r) = e.rare.as_deref_mut() {
                        r.monitors.retain(|m| *m != monitor);
                    }
                });
            }
        });
    }

    pub(crate) fn send_down(&self, down: Down) {
        let watcher = down.monitor.watcher;
        self.on_owner(watcher, move |s| {
            if !s.push_system(watcher, System::Down(down)) {
                s.count_dead_letter();
            }
        });
    }
}
