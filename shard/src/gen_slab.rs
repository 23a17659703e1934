//! A slab whose slots carry generations.
//!
//! # Invariants
//!
//! 1. `generations[k]` is the generation of the *current or next* occupant of
//!    slot `k`. It is bumped exactly once per removal, so a key handed out
//!    before a removal never matches again.
//! 2. A slot whose generation would wrap is retired: it stays occupied by a
//!    tombstone forever instead of returning to the free list, so a
//!    generation is never reused (no ABA even after 2³² reuses of a slot).
//! 3. Only the owning shard thread touches a `GenSlab` (it is not `Sync`
//!    and lives behind the shard's `RefCell`s).

use slab::Slab;

enum Occupant<T> {
    Live(T),
    Retired,
}

/// A slab of `T` addressed by `(slot, generation)` keys.
pub(crate) struct GenSlab<T> {
    slab: Slab<Occupant<T>>,
    generations: Vec<u32>,
    live: usize,
}

impl<T> GenSlab<T> {
    pub(crate) fn new() -> Self {
        Self {
            slab: Slab::new(),
            generations: Vec::new(),
            live: 0,
        }
    }

    /// Number of live entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// The key the next `insert` will return.
    #[allow(dead_code)] // kept with its test: the process table has its own
    pub(crate) fn next_key(&self) -> (u32, u32) {
        let slot = self.slab.vacant_key();
        (
            slot as u32,
            self.generations.get(slot).copied().unwrap_or(0),
        )
    }

    /// Inserts `value`, returning its `(slot, generation)` key.
    pub(crate) fn insert(&mut self, value: T) -> (u32, u32) {
        let slot = self.slab.insert(Occupant::Live(value));
        if slot == self.generations.len() {
            self.generations.push(0);
        }
        self.live += 1;
        (slot as u32, self.generations[slot])
    }

    #[inline]
    pub(crate) fn get(&self, slot: u32, generation: u32) -> Option<&T> {
        if self.generations.get(slot as usize) != Some(&generation) {
            return None;
        }
        match self.slab.get(slot as usize) {
            Some(Occupant::Live(value)) => Some(value),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: u32, generation: u32) -> Option<&mut T> {
        if self.generations.get(slot as usize) != Some(&generation) {
            return None;
        }
        match self.slab.get_mut(slot as usize) {
            Some(Occupant::Live(value)) => Some(value),
            _ => None,
        }
    }

    /// Removes the entry if `(slot, generation)` still names it, bumping the
    /// slot's generation.
    pub(crate) fn remove(&mut self, slot: u32, generation: u32) -> Option<T> {
        self.get(slot, generation)?;
        let index = slot as usize;
        let next = self.generations[index].wrapping_add(1);
        self.generations[index] = next;
        self.live -= 1;
        let old = if next == u32::MAX {
            // Retire the slot: keep it occupied so it is never handed out
            // again with a generation that already existed (invariant 2).
            std::mem::replace(&mut self.slab[index], Occupant::Retired)
        } else {
            self.slab.remove(index)
        };
        match old {
            Occupant::Live(value) => Some(value),
            Occupant::Retired => unreachable!("get() checked the slot is live"),
        }
    }

    /// Keys of every live entry.
    pub(crate) fn keys(&self) -> Vec<(u32, u32)> {
        self.slab
            .iter()
            .filter(|(_, occ)| matches!(occ, Occupant::Live(_)))
            .map(|(k, _)| (k as u32, self.generations[k]))
            .collect()
    }

    #[cfg(test)]
    fn force_generation(&mut self, slot: u32, generation: u32) {
        self.generations[slot as usize] = generation;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_key_is_rejected_after_reuse() {
        let mut s = GenSlab::new();
        let (slot, g0) = s.insert("first");
        assert_eq!(s.remove(slot, g0), Some("first"));
        let (slot2, g1) = s.insert("second");
        assert_eq!(slot2, slot, "slab reuses the freed slot");
        assert_ne!(g1, g0);
        assert_eq!(
            s.get(slot, g0),
            None,
            "stale key must not reach the new occupant"
        );
        assert_eq!(s.remove(slot, g0), None);
        assert_eq!(s.get(slot, g1), Some(&"second"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn slot_is_retired_instead_of_wrapping() {
        let mut s = GenSlab::new();
        let (slot, _) = s.insert(1);
        s.force_generation(slot, u32::MAX - 1);
        assert_eq!(s.remove(slot, u32::MAX - 1), Some(1));
        let (next, generation) = s.insert(2);
        assert_ne!(next, slot, "a retired slot is never handed out again");
        assert_eq!(generation, 0);
        assert_eq!(s.get(slot, u32::MAX), None);
    }

    #[test]
    fn keys_list_only_live_entries() {
        let mut s = GenSlab::new();
        let keys: Vec<_> = (0..5).map(|i| s.insert(i)).collect();
        s.remove(keys[2].0, keys[2].1);
        let mut live = s.keys();
        live.sort();
        let mut expected: Vec<_> = keys.iter().copied().filter(|k| *k != keys[2]).collect();
        expected.sort();
        assert_eq!(live, expected);
    }
}
