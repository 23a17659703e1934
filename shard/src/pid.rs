//! Process identifiers: plain data naming one incarnation of one slot.

use std::fmt;

/// Index of a shard within its runtime (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u16);

impl ShardId {
    /// The index as a `usize`, for indexing per-shard tables.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}", self.0)
    }
}

/// A process identifier: `(shard, slot, generation)`.
///
/// A `Pid` is plain data (`Copy`, `Send`, `Sync`) and owns nothing: holding
/// one keeps nothing alive. The generation names one incarnation of the
/// slot. When a process exits its slot's generation is bumped, so a `Pid`
/// kept after the exit is *stale*: every operation on it (message, signal,
/// wait, link, name) is refused with `NoProcess` and can never reach the
/// slot's next occupant.
///
/// Pids are meaningful only within the runtime that issued them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid {
    shard: u16,
    slot: u32,
    generation: u32,
}

impl Pid {
    /// Builds a pid from its parts. Useful in tests and for decoding pids
    /// that were printed or serialised; a made-up pid simply names no
    /// process.
    pub const fn from_parts(shard: ShardId, slot: u32, generation: u32) -> Self {
        Self {
            shard: shard.0,
            slot,
            generation,
        }
    }

    /// The shard that owns the process.
    #[inline]
    pub fn shard(self) -> ShardId {
        ShardId(self.shard)
    }

    /// The slot in the owning shard's process table.
    #[inline]
    pub fn slot(self) -> u32 {
        self.slot
    }

    /// The incarnation of the slot this pid names.
    #[inline]
    pub fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}.{}>", self.shard, self.slot, self.generation)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_plain<T: Copy + Send + Sync + Eq + std::hash::Hash + Ord + 'static>() {}

    #[test]
    fn pid_is_plain_data_and_displays_its_parts() {
        assert_plain::<Pid>();
        let pid = Pid::from_parts(ShardId(3), 17, 2);
        assert_eq!(pid.to_string(), "<3.17.2>");
        assert_eq!(format!("{pid:?}"), "<3.17.2>");
        assert_eq!(pid.shard(), ShardId(3));
        assert_ne!(pid, Pid::from_parts(ShardId(3), 17, 3));
        assert!(std::mem::size_of::<Pid>() <= 12);
    }
}
