//! Two real threads push 1,000,000 values through one ring: with the
//! consumer going to sleep on an eventfd whenever it runs dry, and with a
//! consumer that only ever learns of values by their slot stamps.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use corelet_cross_shard::{ring, Doorbell, EventFd, Notify};

const COUNT: u64 = 1_000_000;
const CAPACITY: usize = 1024;
const BATCH: usize = 16;

/// An eventfd notifier that also counts the notifications it sent.
struct CountingEventFd {
    fd: EventFd,
    sent: AtomicU64,
}

impl Notify for CountingEventFd {
    fn notify(&self) {
        // Relaxed: a statistic read after `join`, which orders it.
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.fd.notify();
    }
}

#[test]
fn million_values_in_order_with_sleeping_consumer() {
    let (mut tx, mut rx) = ring::<u64>(CAPACITY);
    let bell = Arc::new(Doorbell::new(CountingEventFd {
        fd: EventFd::new().expect("eventfd"),
        sent: AtomicU64::new(0),
    }));

    let sender_bell = Arc::clone(&bell);
    let producer = thread::spawn(move || {
        let mut publishes = 0u64;
        let mut publish = |tx: &mut corelet_cross_shard::Producer<u64>| {
            if tx.publish() > 0 {
                publishes += 1;
                sender_bell.ring();
            }
        };
        for value in 0..COUNT {
            let mut pending = value;
            loop {
                match tx.push(pending) {
                    Ok(()) => break,
                    Err(full) => {
                        // Ring full: hand over what we have and let the
                        // consumer run before trying again.
                        pending = full.into_inner();
                        publish(&mut tx);
                        thread::yield_now();
                    }
                }
            }
            if tx.unpublished() == BATCH {
                publish(&mut tx);
            }
        }
        publish(&mut tx);
        publishes
    });

    let mut expected = 0u64;
    let mut sum = 0u64;
    let mut sleeps = 0u64;
    let mut wakeups = 0u64;
    while expected < COUNT {
        let taken = rx.drain(usize::MAX, |value| {
            assert_eq!(value, expected, "out of order");
            expected += 1;
            sum += value;
        });
        if taken > 0 {
            continue;
        }
        bell.prepare_sleep();
        if !rx.is_empty() {
            bell.cancel_sleep();
            continue;
        }
        sleeps += 1;
        bell.notifier().fd.wait().expect("eventfd read");
        wakeups += 1;
        // The wake-up may have been spurious (a notification for an episode
        // we had cancelled); clear the flag either way and re-check.
        bell.cancel_sleep();
    }

    let publishes = producer.join().expect("producer panicked");
    let sent = bell.notifier().sent.load(Ordering::Relaxed);
    assert_eq!(expected, COUNT);
    assert_eq!(sum, COUNT * (COUNT - 1) / 2);
    assert_eq!(rx.pop(), None);
    assert!(rx.is_abandoned());
    assert!(publishes >= COUNT / BATCH as u64);
    assert!(
        sent <= publishes,
        "{sent} notifications for {publishes} publishes"
    );
    assert_eq!(sleeps, wakeups);
    eprintln!("publishes={publishes} notifications={sent} consumer sleeps={sleeps}");
}

/// The waiting consumer's path under real threads: batches of 1 to 17
/// values (so batch starts move around the ring every lap), taken by
/// `pop` and by `drain` with small limits after `is_empty` saw a stamp,
/// never by a spin on `tail` alone. Order, count and sum check that no
/// stale stamp from an earlier lap passed for a new batch and that no
/// batch was seen in part.
#[test]
fn million_values_taken_by_their_stamps() {
    let (mut tx, mut rx) = ring::<u64>(64);
    let producer = thread::spawn(move || {
        let mut batch = 1;
        for value in 0..COUNT {
            let mut pending = value;
            while let Err(full) = tx.push(pending) {
                pending = full.into_inner();
                tx.publish();
                thread::yield_now();
            }
            if tx.unpublished() >= batch {
                tx.publish();
                batch = batch % 17 + 1;
            }
        }
        tx.publish();
    });
    let (mut expected, mut sum, mut turn) = (0u64, 0u64, 0u64);
    while expected < COUNT {
        turn += 1;
        if rx.is_empty() {
            std::hint::spin_loop();
            continue;
        }
        if turn % 2 == 0 {
            let value = rx.pop().expect("is_empty said a value was there");
            assert_eq!(value, expected, "out of order");
            expected += 1;
            sum += value;
        } else {
            let taken = rx.drain((turn % 5 + 1) as usize, |value| {
                assert_eq!(value, expected, "out of order");
                expected += 1;
                sum += value;
            });
            assert!(taken > 0, "is_empty said a value was there");
        }
    }
    producer.join().expect("producer panicked");
    assert_eq!(sum, COUNT * (COUNT - 1) / 2);
    assert!(rx.is_empty());
    assert_eq!(rx.pop(), None);
}
