//! Loom models of the doorbell's sleep/wake handshake (lost-wake-up
//! freedom), combined with the ring's publish and `is_empty` re-check.
//!
//! Negative check (done by hand, code left correct): deleting either
//! `fence(SeqCst)` (the one in `Doorbell::prepare_sleep` or the one in
//! `Doorbell::ring`) makes both models below fail within milliseconds:
//! `sleeping_receiver_is_notified` with "receiver slept but was never
//! notified", `two_senders_one_blocking_receiver` with a loom deadlock. Loom
//! finds the store-buffering execution in which the receiver's re-check
//! reads the old `tail` and the sender's load reads the old
//! `sleeping == false`.
//!
//! Loom treats `SeqCst` loads and stores like `AcqRel` ones (it does not
//! model their single total order) but does model `SeqCst` fences, which is
//! why the protocol's correctness is carried by fences alone. It also lets a
//! plain store slip between the read and the write of a concurrent `swap`
//! (tokio-rs/loom#254); with `swap(false)` in `Doorbell::ring` instead of
//! the compare-exchange, `two_senders_one_blocking_receiver` reports a
//! deadlock whose execution the C++ memory model forbids (the late sender's
//! load would have to read a value older than the receiver's `true`, whose
//! fence it follows).
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p corelet-cross-shard --release --target-dir target/loom`
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use corelet_cross_shard::{ring, Doorbell, Notify};

/// Mock notifier: counts calls.
#[derive(Default)]
struct CountNotify(AtomicUsize);

impl CountNotify {
    fn count(&self) -> usize {
        // Acquire: pairs with the Release increment in `notify`.
        self.0.load(Ordering::Acquire)
    }
}

impl Notify for CountNotify {
    fn notify(&self) {
        // Release: pairs with the Acquire load in `count`, so a receiver
        // that sees the notification also sees the sender's publish.
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// Model 4: one value, one sender, one receiver. If the receiver decides to
/// sleep (its re-check after `prepare_sleep` found the ring empty), the
/// sender must notify it; in every execution it notifies at most once.
#[test]
fn sleeping_receiver_is_notified() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::<u32>(2);
        let bell = Arc::new(Doorbell::new(CountNotify::default()));
        let sender_bell = Arc::clone(&bell);
        let sender = thread::spawn(move || {
            tx.push(7).unwrap();
            assert_eq!(tx.publish(), 1);
            sender_bell.ring();
        });

        let mut slept = false;
        if rx.pop().is_none() {
            bell.prepare_sleep();
            if rx.is_empty() {
                // Would block on the notifier here.
                slept = true;
            } else {
                bell.cancel_sleep();
                assert_eq!(rx.pop(), Some(7));
            }
        }

        sender.join().unwrap();
        let notified = bell.notifier().count();
        assert!(notified <= 1, "notified {notified} times");
        if slept {
            assert_eq!(notified, 1, "receiver slept but was never notified");
            // After the wake-up the value is there.
            assert_eq!(rx.pop(), Some(7));
        }
    });
}

/// Mock of an eventfd: a counter behind a loom mutex and condvar, so that
/// the receiver really blocks. `wait` returns once the counter is non-zero
/// and resets it, exactly like `EventFd::wait`.
#[derive(Default)]
struct MockEventFd {
    counter: Mutex<usize>,
    cond: Condvar,
    sent: AtomicUsize,
}

impl MockEventFd {
    fn wait(&self) {
        let mut counter = self.counter.lock().unwrap();
        while *counter == 0 {
            counter = self.cond.wait(counter).unwrap();
        }
        *counter = 0;
    }
}

impl Notify for MockEventFd {
    fn notify(&self) {
        // Relaxed: a statistic read after both senders are joined.
        self.sent.fetch_add(1, Ordering::Relaxed);
        *self.counter.lock().unwrap() += 1;
        self.cond.notify_one();
    }
}

/// Model 4b: two senders on two rings share one doorbell, and the receiver
/// really blocks on a mock eventfd, looping as a shard does. A lost wake-up
/// leaves the receiver blocked forever, which loom reports as a deadlock.
/// Also checks at most one notification per sleep episode.
#[test]
fn two_senders_one_blocking_receiver() {
    let mut builder = loom::model::Builder::new();
    // Three threads looping over a mutex and condvar are too many for an
    // exhaustive search (unbounded, it ran for over 20 minutes without
    // finishing), so bound preemptions to 4 unless LOOM_MAX_PREEMPTIONS says
    // otherwise. Bound 4 takes about 10 s in release mode; bound 3 already
    // finds the fence-less failures.
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(4);
    }
    builder.check(|| {
        let (tx_a, mut rx_a) = ring::<u32>(1);
        let (tx_b, mut rx_b) = ring::<u32>(1);
        let bell = Arc::new(Doorbell::new(MockEventFd::default()));
        let spawn_sender = |mut tx: corelet_cross_shard::Producer<u32>, value: u32| {
            let bell = Arc::clone(&bell);
            thread::spawn(move || {
                tx.push(value).unwrap();
                assert_eq!(tx.publish(), 1);
                bell.ring();
            })
        };
        let a = spawn_sender(tx_a, 1);
        let b = spawn_sender(tx_b, 2);

        let mut got = Vec::new();
        let mut episodes = 0;
        while got.len() < 2 {
            let taken =
                rx_a.drain(usize::MAX, |v| got.push(v)) + rx_b.drain(usize::MAX, |v| got.push(v));
            if taken > 0 {
                continue;
            }
            bell.prepare_sleep();
            episodes += 1;
            if !rx_a.is_empty() || !rx_b.is_empty() {
                bell.cancel_sleep();
                continue;
            }
            bell.notifier().wait();
            bell.cancel_sleep();
        }
        a.join().unwrap();
        b.join().unwrap();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        let sent = bell.notifier().sent.load(Ordering::Relaxed);
        assert!(
            sent <= episodes,
            "{sent} notifications for {episodes} episodes"
        );
    });
}
