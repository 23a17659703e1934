//! Two real threads push 1,000,000 values through one ring, with the
//! consumer going to sleep on an eventfd whenever it runs dry.
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
