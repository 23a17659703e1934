//! The doorbell's sleep/wake handshake under real threads, with sleep
//! episodes racing the peer's ring: two threads play ping-pong over a pair
//! of one-slot batches, and each polls for a varying while, then goes to
//! sleep on its eventfd whenever its ring is empty. A lost wake-up leaves both
//! threads asleep for good, so this test hangs (and CI times out) if the
//! barriers of `prepare_sleep` and `ring` stop pairing, whichever pair the
//! process uses (`membarrier` and a compiler fence, or two fences).
#![cfg(not(loom))]

use std::sync::Arc;
use std::thread;

use corelet_cross_shard::{asymmetric_barriers, ring, Consumer, Doorbell, EventFd, Producer};

const ROUNDS: u64 = 100_000;

/// How long a side polls before it goes to sleep in round `round`: from
/// not at all to about a round trip, so that over the run one side's
/// `ring` lands at every point of the other's `prepare_sleep` and re-check
/// (without the spin, a side is always long asleep when the other rings).
fn spin(round: u64, salt: u64) -> u64 {
    (round.wrapping_mul(2_654_435_761) ^ salt) % 97
}

/// One direction: the ring and the doorbell of its receiver.
struct Side {
    tx: Producer<u64>,
    rx: Consumer<u64>,
    /// Rung by the peer when it publishes to `rx`.
    mine: Arc<Doorbell<EventFd>>,
    /// Rung after publishing to `tx`.
    peer: Arc<Doorbell<EventFd>>,
    sleeps: u64,
}

impl Side {
    fn send(&mut self, value: u64) {
        self.tx.push(value).expect("one value in flight at a time");
        assert_eq!(self.tx.publish(), 1);
        self.peer.ring();
    }

    /// Takes the next value: polls the ring `spin` times, then sleeps
    /// whenever it is empty.
    fn receive(&mut self, spin: u64) -> u64 {
        for _ in 0..spin {
            if let Some(value) = self.rx.pop() {
                return value;
            }
            std::hint::spin_loop();
        }
        loop {
            if let Some(value) = self.rx.pop() {
                return value;
            }
            self.mine.prepare_sleep();
            if !self.rx.is_empty() {
                self.mine.cancel_sleep();
                continue;
            }
            self.sleeps += 1;
            self.mine.notifier().wait().expect("eventfd read");
            self.mine.cancel_sleep();
        }
    }
}

#[test]
fn ping_pong_with_a_sleep_per_message_loses_no_wake_up() {
    let (a_tx, b_rx) = ring::<u64>(4);
    let (b_tx, a_rx) = ring::<u64>(4);
    let a_bell = Arc::new(Doorbell::new(EventFd::new().expect("eventfd")));
    let b_bell = Arc::new(Doorbell::new(EventFd::new().expect("eventfd")));
    let mut a = Side {
        tx: a_tx,
        rx: a_rx,
        mine: a_bell.clone(),
        peer: b_bell.clone(),
        sleeps: 0,
    };
    let mut b = Side {
        tx: b_tx,
        rx: b_rx,
        mine: b_bell,
        peer: a_bell,
        sleeps: 0,
    };
    let echo = thread::spawn(move || {
        for round in 0..ROUNDS {
            let value = b.receive(spin(round, 0x5a));
            assert_eq!(value, round * 2, "out of order");
            b.send(value + 1);
        }
        b.sleeps
    });
    for round in 0..ROUNDS {
        a.send(round * 2);
        assert_eq!(a.receive(spin(round, 0)), round * 2 + 1, "wrong answer");
    }
    let echo_sleeps = echo.join().expect("echo side panicked");
    assert_eq!(a.rx.pop(), None);
    eprintln!(
        "rounds={ROUNDS} sleeps: {} + {echo_sleeps}; asymmetric barriers: {}",
        a.sleeps,
        asymmetric_barriers()
    );
    // The handshake was exercised, not bypassed by spinning.
    assert!(a.sleeps + echo_sleeps > 0);
}
