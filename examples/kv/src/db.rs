//! One shard's partition of the keyspace: values, expiry times, memory.
//!
//! Entries live in a slab (`slots`) and a hash table maps a key to its slot
//! index. A slot index is stable for as long as its key lives, which gives
//! `SCAN` Redis's guarantee (a key present for the whole scan is returned)
//! and keeps the expiry index small (`(time, slot)` pairs).
//!
//! The `Db` is owned by its shard's partition process and touched by no
//! other thread: no locks, no shared maps.

use hashbrown::HashTable;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;

/// The hasher of fields and members inside hashes and sets.
pub type Hasher = foldhash::fast::RandomState;

/// A value of one of the supported types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string (integers are strings that parse).
    Str(Vec<u8>),
    /// A list.
    List(VecDeque<Vec<u8>>),
    /// A hash.
    Hash(HashMap<Vec<u8>, Vec<u8>, Hasher>),
    /// A set.
    Set(HashSet<Vec<u8>, Hasher>),
}

impl Value {
    /// The name `TYPE` prints.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
        }
    }

    /// Approximate bytes held (for `--maxmemory` and INFO).
    pub fn mem(&self) -> usize {
        match self {
            Value::Str(s) => s.capacity(),
            Value::List(l) => l.iter().map(|e| e.len() + ELEM_OVERHEAD).sum(),
            Value::Hash(h) => h
                .iter()
                .map(|(k, v)| k.len() + v.len() + ELEM_OVERHEAD)
                .sum(),
            Value::Set(s) => s.iter().map(|e| e.len() + ELEM_OVERHEAD).sum(),
        }
    }
}

/// Approximate bookkeeping bytes per key (slot, table entry, headers).
pub const KEY_OVERHEAD: usize = 64;
/// Approximate bookkeeping bytes per collection element.
pub const ELEM_OVERHEAD: usize = 32;

/// One key and its value.
#[derive(Debug)]
pub struct Item {
    /// The key.
    pub key: Box<[u8]>,
    /// The value.
    pub val: Value,
    /// Expiry time in Unix milliseconds; 0 = never.
    pub exp: u64,
}

/// One shard's keys.
pub struct Db {
    table: HashTable<u32>,
    slots: Vec<Option<Item>>,
    free: Vec<u32>,
    hasher: foldhash::fast::FixedState,
    expires: BTreeSet<(u64, u32)>,
    /// Approximate bytes held.
    pub used: usize,
    /// Keys removed because they expired (lazily or by the active cycle)
    /// and not yet logged: the partition turns each into a `DEL` record.
    pub expired: Vec<Box<[u8]>>,
    /// Keys expired since start (INFO).
    pub expired_total: u64,
}

impl Default for Db {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            hasher: foldhash::fast::FixedState::with_seed(fastrand::u64(..)),
            expires: BTreeSet::new(),
            used: 0,
            expired: Vec::new(),
            expired_total: 0,
        }
    }
}

impl Db {
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Number of keys (expired ones not yet collected included).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Keys with an expiry time.
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        self.table
            .find(self.hash(key), |&i| {
                slots[i as usize].as_ref().is_some_and(|it| &*it.key == key)
            })
            .copied()
    }

    /// The slot of a live key; an expired key is removed (and queued for a
    /// `DEL` record) and reported absent.
    pub fn lookup(&mut self, key: &[u8], now: u64) -> Option<u32> {
        let idx = self.find(key)?;
        let exp = self.item(idx).exp;
        if exp != 0 && exp <= now {
            let it = self.remove(idx);
            self.expired.push(it.key);
            self.expired_total += 1;
            return None;
        }
        Some(idx)
    }

    /// The entry in slot `idx` (from `lookup` or `insert`).
    pub fn item(&self, idx: u32) -> &Item {
        self.slots[idx as usize].as_ref().expect("live slot")
    }

    /// The entry in slot `idx`, mutably.
    pub fn item_mut(&mut self, idx: u32) -> &mut Item {
        self.slots[idx as usize].as_mut().expect("live slot")
    }

    /// Adds a key that is not present.
    pub fn insert(&mut self, key: &[u8], val: Value) -> u32 {
        self.used += key.len() + val.mem() + KEY_OVERHEAD;
        let item = Item {
            key: key.into(),
            val,
            exp: 0,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(item);
                i
            }
            None => {
                self.slots.push(Some(item));
                (self.slots.len() - 1) as u32
            }
        };
        let hash = self.hash(key);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.table.insert_unique(hash, idx, |&i| {
            hasher.hash_one(&*slots[i as usize].as_ref().expect("live slot").key)
        });
        idx
    }

    /// Removes the entry in slot `idx`.
    pub fn remove(&mut self, idx: u32) -> Item {
        let hash = self.hash(&self.item(idx).key);
        if let Ok(entry) = self.table.find_entry(hash, |&i| i == idx) {
            entry.remove();
        }
        let item = self.slots[idx as usize].take().expect("live slot");
        if item.exp != 0 {
            self.expires.remove(&(item.exp, idx));
        }
        self.free.push(idx);
        self.used = self
            .used
            .saturating_sub(item.key.len() + item.val.mem() + KEY_OVERHEAD);
        item
    }

    /// Removes `key` if present; whether it was.
    pub fn delete(&mut self, key: &[u8], now: u64) -> bool {
        match self.lookup(key, now) {
            Some(idx) => {
                self.remove(idx);
                true
            }
            None => false,
        }
    }

    /// Sets (or clears, with 0) the expiry time of slot `idx`.
    pub fn set_expire(&mut self, idx: u32, exp: u64) {
        let old = std::mem::replace(&mut self.item_mut(idx).exp, exp);
        if old != 0 {
            self.expires.remove(&(old, idx));
        }
        if exp != 0 {
            self.expires.insert((exp, idx));
        }
    }

    /// Replaces the value in slot `idx`, keeping memory accounts.
    pub fn replace(&mut self, idx: u32, val: Value) -> Value {
        let new = val.mem();
        let old = std::mem::replace(&mut self.item_mut(idx).val, val);
        self.used = (self.used + new).saturating_sub(old.mem());
        old
    }

    /// Removes up to `limit` keys whose time has come; returns how many.
    pub fn expire_cycle(&mut self, now: u64, limit: usize) -> usize {
        let mut n = 0;
        while n < limit {
            let Some(&(exp, idx)) = self.expires.first() else {
                break;
            };
            if exp > now {
                break;
            }
            let it = self.remove(idx);
            self.expired.push(it.key);
            self.expired_total += 1;
            n += 1;
        }
        n
    }

    /// Drops every key.
    pub fn clear(&mut self) {
        *self = Db {
            expired_total: self.expired_total,
            ..Db::default()
        };
    }

    /// Live entries from slot `cursor` on, until `count` slots were looked
    /// at; returns the next cursor (0 when done).
    pub fn scan(&self, cursor: usize, count: usize, mut f: impl FnMut(&Item)) -> usize {
        let end = (cursor + count.max(1)).min(self.slots.len());
        for it in self.slots[cursor.min(end)..end].iter().flatten() {
            f(it);
        }
        if end >= self.slots.len() {
            0
        } else {
            end
        }
    }

    /// Every live entry (for `KEYS` and the log rewrite).
    pub fn iter(&self) -> impl Iterator<Item = &Item> {
        self.slots.iter().flatten()
    }
}

/// Redis-style glob matching: `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
pub fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let (mut star_p, mut star_i) = (usize::MAX, 0);
    while i < s.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star_p = p;
                    star_i = i;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(pattern, p, s[i]) {
                        if matched {
                            p = next;
                            i += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == s[i] => {
                    p += 2;
                    i += 1;
                    continue;
                }
                b'\\' if p + 1 < pattern.len() => {}
                c if c == s[i] => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        if star_p == usize::MAX {
            return false;
        }
        p = star_p + 1;
        star_i += 1;
        i = star_i;
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[p] == '['`; returns
/// whether it matched and where the pattern continues.
fn class_match(pattern: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = p + 1;
    let negate = pattern.get(j) == Some(&b'^');
    if negate {
        j += 1;
    }
    let mut matched = false;
    while j < pattern.len() && pattern[j] != b']' {
        if pattern[j] == b'\\' && j + 1 < pattern.len() {
            matched |= pattern[j + 1] == c;
            j += 2;
        } else if j + 2 < pattern.len() && pattern[j + 1] == b'-' && pattern[j + 2] != b']' {
            let (lo, hi) = (
                pattern[j].min(pattern[j + 2]),
                pattern[j].max(pattern[j + 2]),
            );
            matched |= (lo..=hi).contains(&c);
            j += 3;
        } else {
            matched |= pattern[j] == c;
            j += 1;
        }
    }
    if j >= pattern.len() {
        return None; // unterminated: no match, as a literal '[' would need
    }
    Some((matched != negate, j + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_lookups_follow() {
        let mut db = Db::default();
        let a = db.insert(b"a", Value::Str(b"1".to_vec()));
        let b = db.insert(b"b", Value::Str(b"2".to_vec()));
        assert_eq!(db.lookup(b"a", 0), Some(a));
        db.remove(a);
        assert_eq!(db.lookup(b"a", 0), None);
        let c = db.insert(b"c", Value::Str(vec![]));
        assert_eq!(c, a, "freed slot reused");
        assert_eq!(db.lookup(b"b", 0), Some(b));
        assert_eq!(db.len(), 2);
        db.remove(b);
        db.remove(c);
        assert_eq!(db.used, 0, "memory accounts return to zero");
    }

    #[test]
    fn expiry_lazy_and_active() {
        let mut db = Db::default();
        for (k, exp) in [(b"x", 10), (b"y", 20), (b"z", 0)] {
            let i = db.insert(k, Value::Str(vec![]));
            db.set_expire(i, exp);
        }
        assert_eq!(db.lookup(b"x", 10), None, "expired at its time");
        assert_eq!(db.expired, vec![Box::from(&b"x"[..])]);
        assert_eq!(db.expire_cycle(15, 100), 0);
        assert_eq!(db.expire_cycle(25, 100), 1);
        assert!(db.lookup(b"z", u64::MAX).is_some());
        assert_eq!(db.expires_len(), 0);
    }

    #[test]
    fn glob() {
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"h?llo", b"hello"));
        assert!(glob_match(b"h*llo", b"heeeello"));
        assert!(glob_match(b"h[ae]llo", b"hallo"));
        assert!(!glob_match(b"h[^e]llo", b"hello"));
        assert!(glob_match(b"h[a-b]llo", b"hbllo"));
        assert!(glob_match(b"a\\*b", b"a*b"));
        assert!(!glob_match(b"a*c", b"abd"));
        assert!(glob_match(b"key:*", b"key:1"));
    }
}
