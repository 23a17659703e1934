//! The name registry, partitioned by shard: a name is owned by the shard its
//! hash picks, so there is no global lock and no global table.
//!
//! # Protocol
//!
//! `register(name, pid)` goes to the name's shard Y, which *claims* it
//! (records `name → pid`) and asks pid's shard X to *attach* the name to the
//! process's entry. X answers the caller: `Ok` if the process is alive
//! (from then on its exit releases the name), `NoProcess` if not (and X
//! releases the claim).
//!
//! A name is released by `release(name, pid)`, which removes it only if it
//! still maps to exactly `pid`, the full `(shard, slot, generation)`. So a
//! release sent by an old incarnation can never remove the name from a new
//! one — the libprocess garbage-collector ABA cannot happen here.
//!
//! `whereis(name)` answers only with a live holder: a holder found on Y is
//! confirmed alive on its own shard first (same race as below).
//!
//! A claim for a name held by another pid may race with that holder's exit:
//! the waiter that learned of the exit can re-register before the holder's
//! release reaches Y (they travel different rings). Y therefore probes the
//! holder's shard; if the holder is gone the claim succeeds, and the late
//! release finds a different pid and does nothing.

use crate::error::Error;
use crate::pid::{Pid, ShardId};
use crate::reply::ReplyTo;
use crate::shard::Shard;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

/// Why a registration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryError {
    /// The name is held by this (live) process.
    Taken(Pid),
    /// The process to register is not alive.
    NoProcess(Pid),
    /// The runtime stopped before answering, or the call was made off a
    /// shard thread.
    Runtime(Error),
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryError::Taken(pid) => write!(f, "name already registered by {pid}"),
            RegistryError::NoProcess(pid) => write!(f, "no such process {pid}"),
            RegistryError::Runtime(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RegistryError {}

/// One shard's part of the registry.
#[derive(Default)]
pub(crate) struct Names {
    map: HashMap<String, Pid>,
}

impl Names {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// The shard that owns `name` among `shards`.
pub(crate) fn owner_of(name: &str, shards: usize) -> ShardId {
    // `DefaultHasher::new()` uses fixed keys: the same name picks the same
    // shard on every thread of the process.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    ShardId((h.finish() % shards as u64) as u16)
}

type Answer = ReplyTo<Result<(), RegistryError>>;

impl Shard {
    fn name_owner(&self, name: &str) -> ShardId {
        owner_of(name, self.shared.shards.len())
    }

    /// Starts `register(name, pid)` from this shard; `answer` gets the
    /// outcome.
    pub(crate) fn register(&self, name: String, pid: Pid, answer: Answer) {
        if pid.shard().index() >= self.shared.shards.len() {
            // No shard owns it, so it names no process (and a claim for it
            // could never be attached, probed or released).
            answer.send(Err(RegistryError::NoProcess(pid)));
            return;
        }
        let owner = self.name_owner(&name);
        self.on_shard_rc(owner, move |s| s.claim(name, pid, answer));
    }

    /// On the name's shard.
    fn claim(self: &Rc<Self>, name: String, pid: Pid, answer: Answer) {
        let holder = self.names.borrow().map.get(&name).copied();
        match holder {
            None => self.grant(name, pid, answer),
            Some(h) if h == pid => self.confirm(pid, answer),
            Some(h) => {
                // Is the holder still alive? Ask its shard.
                let (probe, alive) = self.reply_slot::<bool>();
                self.on_owner(h, move |s| probe.send(s.is_alive(h)));
                let me = self.clone();
                self.run_task(async move {
                    let alive = alive.await.unwrap_or(true);
                    let now = me.names.borrow().map.get(&name).copied();
                    match now {
                        None => me.grant(name, pid, answer),
                        Some(cur) if cur == pid => me.confirm(pid, answer),
                        Some(cur) if cur == h && !alive => me.grant(name, pid, answer),
                        Some(cur) => answer.send(Err(RegistryError::Taken(cur))),
                    }
                });
            }
        }
    }

    /// On the name's shard, which maps the name to `pid` already: `Ok` if
    /// `pid` is alive. The entry may be stale (`pid` exited, or its
    /// `attach` failed, and the release is on its way), so ask pid's shard.
    fn confirm(&self, pid: Pid, answer: Answer) {
        self.on_owner(pid, move |s| {
            answer.send(if s.is_alive(pid) {
                Ok(())
            } else {
                Err(RegistryError::NoProcess(pid))
            })
        });
    }

    /// On the name's shard: record the claim, then attach on pid's shard.
    fn grant(&self, name: String, pid: Pid, answer: Answer) {
        self.names.borrow_mut().map.insert(name.clone(), pid);
        self.on_owner(pid, move |s| s.attach(name, pid, answer));
    }

    /// On pid's shard: tie the name to the live process, or undo the claim.
    fn attach(&self, name: String, pid: Pid, answer: Answer) {
        let attached = self.header(pid).is_some_and(|header| {
            header.with_extras(|e| {
                if let Some(span) = &e.span {
                    span.record("name", name.as_str());
                }
                e.rare().names.push(name.clone());
            });
            true
        });
        if attached {
            tracing::debug!(%pid, name = %name, "name registered");
            answer.send(Ok(()));
        } else {
            self.release_name(name, pid);
            answer.send(Err(RegistryError::NoProcess(pid)));
        }
    }

    /// Removes `name` if it still maps to exactly `pid`.
    pub(crate) fn release_name(&self, name: String, pid: Pid) {
        let owner = self.name_owner(&name);
        self.on_shard(owner, move |s| {
            let mut names = s.names.borrow_mut();
            if names.map.get(&name) == Some(&pid) {
                names.map.remove(&name);
            }
        });
    }

    /// Looks `name` up from this shard.
    ///
    /// A holder's release may still be on its way to the name's shard when
    /// somebody who already learned of the holder's exit (a waiter, a
    /// monitor, a failed `register`) looks the name up. So a holder found
    /// here is confirmed alive on its own shard, which freed its slot before
    /// telling anybody: whoever knows of the exit never gets the dead pid.
    pub(crate) fn whereis(&self, name: String, answer: ReplyTo<Option<Pid>>) {
        let owner = self.name_owner(&name);
        self.on_shard(owner, move |s| {
            let holder = s.names.borrow().map.get(&name).copied();
            match holder {
                None => answer.send(None),
                Some(h) => s.on_owner(h, move |there| answer.send(there.is_alive(h).then_some(h))),
            }
        });
    }

    /// Removes `name` whoever holds it; answers with the former holder.
    pub(crate) fn unregister(&self, name: String, answer: ReplyTo<Option<Pid>>) {
        let owner = self.name_owner(&name);
        self.on_shard(owner, move |s| {
            let removed = s.names.borrow_mut().map.remove(&name);
            answer.send(removed)
        });
    }

    /// Like `on_shard`, for work that needs the shard's `Rc` (to start tasks).
    fn on_shard_rc(&self, to: ShardId, f: impl FnOnce(&Rc<Shard>) + Send + 'static) {
        if to == self.id {
            let me = crate::shard::current().expect("a shard runs on its own thread");
            f(&me);
        } else {
            let env = crate::envelope::Envelope::with_rc(f);
            // A refusal (the shard has finished) is counted by `send_remote`.
            let _ = self.send_remote(to, env, crate::shard::Priority::System);
        }
    }
}
