//! Loom models of the SPSC ring: every interleaving and every permitted stale
//! read of `head`/`tail` and of the slot stamps is explored, and loom's `UnsafeCell` fails the model
//! if a slot is accessed by both endpoints without a happens-before edge.
//!
//! Negative checks (done by hand, code left correct): weakening the Release
//! store of the stamp in `Producer::publish` to Relaxed fails the models
//! that wait on stamps (`push_pop_through_full_ring`,
//! `batches_seen_by_their_stamps`, `reclaim_after_the_consumer_is_gone`)
//! with a causality violation on a slot's `UnsafeCell`; weakening the
//! Release store of `tail` there fails the ones that drain by `tail`
//! (`drain_one_batch`, `drain_then_reuse_slot`); weakening the head store
//! in `Consumer::pop`
//! fails `push_pop_through_full_ring`, and the one in the drain guard fails
//! `drain_then_reuse_slot`. Letting `Consumer::refresh_tail` move its cache
//! back to a `tail` that trails the stamp fails
//! `batches_seen_by_their_stamps`.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p corelet-cross-shard --release --target-dir target/loom`
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use corelet_cross_shard::{ring, Full};

/// Model 1: three values through a two-slot ring, so the producer must see
/// `Full` and wait for the consumer to free a slot (and the indices wrap).
#[test]
fn push_pop_through_full_ring() {
    // Kept to 3 values and 2 slots (not the stress test's sizes) so loom's
    // exhaustive search stays within its branch limits.
    const VALUES: u32 = 3;
    loom::model(|| {
        let (mut tx, mut rx) = ring::<u32>(2);
        let producer = thread::spawn(move || {
            for value in 0..VALUES {
                let mut pending = value;
                while let Err(Full(back)) = tx.push(pending) {
                    pending = back;
                    tx.publish();
                    thread::yield_now();
                }
                tx.publish();
            }
        });
        let mut got = Vec::new();
        while got.len() < VALUES as usize {
            match rx.pop() {
                Some(value) => got.push(value),
                None => thread::yield_now(),
            }
        }
        assert_eq!(got, [0, 1, 2]);
        producer.join().unwrap();
        assert_eq!(rx.pop(), None);
    });
}

/// Model 2: one publish of two values, taken by `drain` (one tail load, one
/// head store), possibly split over several calls.
#[test]
fn drain_one_batch() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::<u32>(2);
        let producer = thread::spawn(move || {
            tx.push(10).unwrap();
            tx.push(11).unwrap();
            assert_eq!(tx.publish(), 2);
        });
        let mut got = Vec::new();
        while got.len() < 2 {
            if rx.drain(usize::MAX, |value| got.push(value)) == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(got, [10, 11]);
        producer.join().unwrap();
    });
}

/// Model 2b: a drained slot is reused by the producer, so the drain's single
/// head store must order the consumer's read before the producer's rewrite.
#[test]
fn drain_then_reuse_slot() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::<u32>(1);
        let producer = thread::spawn(move || {
            for value in 0..2 {
                let mut pending = value;
                while let Err(Full(back)) = tx.push(pending) {
                    pending = back;
                    thread::yield_now();
                }
                tx.publish();
            }
        });
        let mut got = Vec::new();
        while got.len() < 2 {
            if rx.drain(1, |value| got.push(value)) == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(got, [0, 1]);
        producer.join().unwrap();
    });
}

/// Counts its drops in a loom atomic shared by the model.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        // Relaxed: read only after both threads are joined.
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Model 3: values left in the ring (published and unpublished) when the two
/// endpoints are dropped on different threads are dropped exactly once, by
/// whichever thread drops last.
#[test]
fn leftovers_dropped_exactly_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = ring::<Tracked>(4);
        let producer_drops = Arc::clone(&drops);
        let producer = thread::spawn(move || {
            tx.push(Tracked(Arc::clone(&producer_drops))).unwrap();
            tx.push(Tracked(Arc::clone(&producer_drops))).unwrap();
            tx.publish();
            // Left unpublished: the producer's drop must publish it.
            tx.push(Tracked(producer_drops)).unwrap();
            drop(tx);
        });
        let consumer = thread::spawn(move || {
            // Takes zero or one value depending on the interleaving.
            drop(rx.pop());
            drop(rx);
        });
        producer.join().unwrap();
        consumer.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    });
}

/// Model: the consumer drains some values and is dropped while the producer
/// keeps pushing; once it sees the consumer gone, the producer reclaims the
/// rest. Every value is taken exactly once (by the consumer or by
/// `reclaim`), none is dropped by the ring itself, and the slots touched by
/// `reclaim` never race with the consumer's last accesses.
#[test]
fn reclaim_after_the_consumer_is_gone() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::<u32>(2);
        let consumer = thread::spawn(move || {
            let mut got = Vec::new();
            if let Some(v) = rx.pop() {
                got.push(v);
            }
            got // `rx` dropped here: the consumer is gone
        });
        let mut pushed = 0;
        for value in 0..3u32 {
            if tx.push(value).is_ok() {
                pushed += 1;
            }
            tx.publish();
        }
        let got = consumer.join().unwrap();
        let mut reclaimed = Vec::new();
        assert!(tx.is_abandoned());
        tx.reclaim(|v| reclaimed.push(v));
        let mut all = got.clone();
        all.extend(&reclaimed);
        assert_eq!(all.len(), pushed, "taken once each: {got:?} {reclaimed:?}");
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "nothing taken twice");
        assert_eq!(tx.reclaim(|_| unreachable!()), 0);
    });
}

/// Model: `reclaim` while the consumer is alive takes nothing.
#[test]
fn reclaim_while_the_consumer_lives_takes_nothing() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::<u32>(2);
        tx.push(1).unwrap();
        tx.publish();
        let consumer = thread::spawn(move || rx.pop());
        let taken = tx.reclaim(|_| {});
        let popped = consumer.join().unwrap();
        // Either the consumer took the value (and reclaim, seeing it alive or
        // gone, found nothing left), or reclaim ran after the consumer was
        // gone without popping... which cannot happen: the consumer pops
        // before it drops.
        assert_eq!(popped, Some(1));
        assert_eq!(taken, 0);
    });
}

/// Model: a waiting consumer learns of batches from the stamp of their
/// first slot (`is_empty`), not from `tail`, and takes them with `drain`
/// and `pop`; the producer publishes batches of two and one through a
/// two-slot ring, so slots and stamps are reused across laps while `tail`
/// may trail `head`. Every value comes out once, in order, a batch never
/// in part before it is published, and each slot's reuse is ordered after
/// its read (loom's cell checks).
#[test]
fn batches_seen_by_their_stamps() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::<u32>(2);
        let producer = thread::spawn(move || {
            for batch in [&[0u32, 1][..], &[2][..]] {
                for &value in batch {
                    let mut pending = value;
                    while let Err(Full(back)) = tx.push(pending) {
                        pending = back;
                        thread::yield_now();
                    }
                }
                tx.publish();
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            if rx.is_empty() {
                // `tail` may trail what the stamp showed: `len` must not
                // count back past what was taken.
                assert!(rx.len() <= 3 - got.len(), "len counted back");
                thread::yield_now();
                continue;
            }
            if got.len() == 1 {
                got.extend(rx.pop());
            } else {
                rx.drain(usize::MAX, |value| got.push(value));
            }
            // The first batch is published whole: never 0 without 1.
            assert_ne!(got, [0], "half a batch");
        }
        assert_eq!(got, [0, 1, 2]);
        producer.join().unwrap();
        assert!(rx.is_empty());
        assert_eq!(rx.len(), 0);
    });
}
