//! A slab whose slots carry generations.
//!
//! # Invariants
//!
//! 1. A slot's `generation` is that of its *current or next* occupant. It
//!    is bumped exactly once per removal, so a key handed out before a
//!    removal never matches again.
//! 2. A slot whose generation would wrap is retired: it never returns to the
//!    free list, so a generation is never reused (no ABA even after 2³²
//!    reuses of a slot).
//! 3. Only the owning shard thread touches a `GenSlab` (it is not `Sync`
//!    and lives behind the shard's `RefCell`s).

/// One slot: its generation, and its value or its place in the free list.
struct Entry<T> {
    generation: u32,
    next_free: u32,
    value: Option<T>,
}

/// No next free slot.
const NONE: u32 = u32::MAX;

/// A slab of `T` addressed by `(slot, generation)` keys: one vector, the
/// generation next to the value (one cache line per lookup), a free list
/// threaded through the vacant slots.
pub(crate) struct GenSlab<T> {
    entries: Vec<Entry<T>>,
    free: u32,
    live: usize,
}

impl<T> GenSlab<T> {
    pub(crate) fn new() -> Self {
        Self {
            entries: Vec::new(),
            free: NONE,
            live: 0,
        }
    }

    /// Number of live entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Inserts `value`, returning its `(slot, generation)` key.
    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> (u32, u32) {
        self.insert_with(|| value)
    }

    /// Inserts `make()`, made once the slot is known, so that a value built
    /// from constants is written straight into the entry rather than built
    /// on the stack and copied (an ask's reply slot: the copy's 16-byte
    /// loads of a value just written in smaller pieces stalled on store
    /// forwarding, 10 % of the local ask's samples under `perf`).
    #[inline(always)]
    pub(crate) fn insert_with(&mut self, make: impl FnOnce() -> T) -> (u32, u32) {
        self.live += 1;
        if self.free != NONE {
            let slot = self.free;
            let entry = &mut self.entries[slot as usize];
            self.free = entry.next_free;
            entry.value = Some(make());
            return (slot, entry.generation);
        }
        let value = make();
        let slot = u32::try_from(self.entries.len()).expect("more than 2^32 slots");
        assert!(slot != NONE, "slab full");
        self.entries.push(Entry {
            generation: 0,
            next_free: NONE,
            value: Some(value),
        });
        (slot, 0)
    }

    #[inline]
    pub(crate) fn get(&self, slot: u32, generation: u32) -> Option<&T> {
        let entry = self.entries.get(slot as usize)?;
        if entry.generation != generation {
            return None;
        }
        entry.value.as_ref()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: u32, generation: u32) -> Option<&mut T> {
        let entry = self.entries.get_mut(slot as usize)?;
        if entry.generation != generation {
            return None;
        }
        entry.value.as_mut()
    }

    /// Removes the entry if `(slot, generation)` still names it, bumping the
    /// slot's generation (invariant 1); a slot whose generation would wrap
    /// is retired instead of freed (invariant 2).
    #[inline]
    pub(crate) fn remove(&mut self, slot: u32, generation: u32) -> Option<T> {
        let entry = self.entries.get_mut(slot as usize)?;
        if entry.generation != generation {
            return None;
        }
        let value = entry.value.take()?;
        entry.generation = generation.wrapping_add(1);
        if entry.generation != u32::MAX {
            entry.next_free = self.free;
            self.free = slot;
        }
        self.live -= 1;
        Some(value)
    }

    /// The live entry `(slot, generation)` names, as a handle that reads
    /// it and can remove it without looking the key up a second time (an
    /// ask's reply slot: read, then freed, in one borrow).
    #[inline]
    pub(crate) fn occupied(&mut self, slot: u32, generation: u32) -> Option<Occupied<'_, T>> {
        let entry = self.entries.get_mut(slot as usize)?;
        if entry.generation != generation || entry.value.is_none() {
            return None;
        }
        Some(Occupied {
            entry,
            free: &mut self.free,
            live: &mut self.live,
            slot,
        })
    }

    /// Keys of every live entry.
    pub(crate) fn keys(&self) -> Vec<(u32, u32)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.value.is_some())
            .map(|(i, e)| (i as u32, e.generation))
            .collect()
    }

    #[cfg(test)]
    fn force_generation(&mut self, slot: u32, generation: u32) {
        self.entries[slot as usize].generation = generation;
    }
}

/// A live entry of a [`GenSlab`] (see [`GenSlab::occupied`]).
pub(crate) struct Occupied<'a, T> {
    entry: &'a mut Entry<T>,
    free: &'a mut u32,
    live: &'a mut usize,
    slot: u32,
}

impl<T> Occupied<'_, T> {
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.entry
            .value
            .as_mut()
            .expect("an occupied entry holds a value until removed")
    }

    /// Removes the entry, as [`GenSlab::remove`] does.
    #[inline]
    pub(crate) fn remove(self) -> T {
        let value = self
            .entry
            .value
            .take()
            .expect("an occupied entry holds a value until removed");
        self.entry.generation = self.entry.generation.wrapping_add(1);
        if self.entry.generation != u32::MAX {
            self.entry.next_free = *self.free;
            *self.free = self.slot;
        }
        *self.live -= 1;
        value
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
    fn an_occupied_entry_is_read_and_removed_as_by_key() {
        let mut s = GenSlab::new();
        let (slot, g0) = s.insert(String::from("first"));
        let mut entry = s.occupied(slot, g0).expect("live");
        entry.get_mut().push('!');
        assert_eq!(entry.remove(), "first!");
        assert_eq!(s.len(), 0);
        assert!(s.occupied(slot, g0).is_none(), "removed, so stale");
        let (slot2, g1) = s.insert(String::from("second"));
        assert_eq!(slot2, slot, "the removal freed the slot");
        assert_ne!(g1, g0, "and bumped its generation");
        assert!(s.occupied(slot, g0).is_none());
        assert!(s.occupied(slot + 1, 0).is_none(), "no such slot");
        assert_eq!(
            s.occupied(slot, g1).map(|mut e| e.get_mut().clone()),
            Some("second".into())
        );
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
