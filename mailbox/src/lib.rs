//! The per-process mailbox of corelet.
//!
//! A mailbox belongs to exactly one process, and therefore to exactly one
//! shard thread. It is single-threaded by construction (`!Send`, `!Sync`:
//! it holds `Cell`s and `RefCell`s), so nothing on its path is atomic.
//!
//! # Invariants
//!
//! 1. Only the owning shard thread touches a mailbox. The shard's process
//!    table and the process's own task hold the two `Rc`s to it.
//! 2. System signals (terminate, kill, exit, down) are kept in their own
//!    queue and are always delivered before user messages that were queued
//!    earlier: a signal overtakes messages, never the other way round.
//! 3. Messages are delivered in the order they were pushed (FIFO); so are
//!    signals.
//! 4. Once [`Mailbox::close`] has run, every push hands its value back to the
//!    caller (who counts it as a dead letter); nothing is accepted and then
//!    silently dropped.
//! 5. The consumer's waker is woken only on the idle → ready transition
//!    (`idle` is set by [`Mailbox::poll_next`] when it returns `Pending`),
//!    so a burst of pushes to a busy process costs no wake-ups at all.
//!    Signals always wake, so that a process that is busy awaiting inside a
//!    handler can notice a kill.
//!
//! The mailbox is unbounded: back-pressure in corelet is applied where a
//! message crosses shards (see the `cross_shard` crate), not per process.
#![deny(missing_docs)]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// What [`Mailbox::poll_next`] hands to the process: a signal first, if any.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<M, S> {
    /// A system signal; signals overtake queued messages.
    Signal(S),
    /// A user message.
    Message(M),
}

/// A single-threaded mailbox with a priority lane for system signals.
pub struct Mailbox<M, S> {
    messages: RefCell<VecDeque<M>>,
    signals: RefCell<VecDeque<S>>,
    waker: RefCell<Option<Waker>>,
    /// The consumer returned `Pending` from `poll_next` and has not been
    /// woken since.
    idle: Cell<bool>,
    closed: Cell<bool>,
    /// User messages accepted / taken so far (see [`Mailbox::pushed`]).
    pushed: Cell<u64>,
    popped: Cell<u64>,
}

impl<M, S> Default for Mailbox<M, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M, S> fmt::Debug for Mailbox<M, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("messages", &self.messages.borrow().len())
            .field("signals", &self.signals.borrow().len())
            .field("idle", &self.idle.get())
            .field("closed", &self.closed.get())
            .finish()
    }
}

impl<M, S> Mailbox<M, S> {
    /// An empty, open mailbox. Allocates nothing until the first push.
    pub const fn new() -> Self {
        Self {
            messages: RefCell::new(VecDeque::new()),
            signals: RefCell::new(VecDeque::new()),
            waker: RefCell::new(None),
            idle: Cell::new(false),
            closed: Cell::new(false),
            pushed: Cell::new(0),
            popped: Cell::new(0),
        }
    }

    /// Queues a user message. Hands it back if the mailbox is closed.
    #[inline]
    pub fn push(&self, message: M) -> Result<(), M> {
        if self.closed.get() {
            return Err(message);
        }
        self.messages.borrow_mut().push_back(message);
        self.pushed.set(self.pushed.get() + 1);
        if self.idle.replace(false) {
            self.wake();
        }
        Ok(())
    }

    /// Queues a system signal ahead of all user messages. Hands it back if
    /// the mailbox is closed. Always wakes a registered consumer, even a
    /// busy one, so that it can check for signals mid-handler.
    pub fn push_signal(&self, signal: S) -> Result<(), S> {
        if self.closed.get() {
            return Err(signal);
        }
        self.signals.borrow_mut().push_back(signal);
        self.idle.set(false);
        self.wake();
        Ok(())
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.borrow().as_ref() {
            waker.wake_by_ref();
        }
    }

    /// Takes the next item: the oldest signal if there is one, else the
    /// oldest message. Registers `cx`'s waker and returns `Pending` when
    /// both queues are empty.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Next<M, S>> {
        if let Some(item) = self.try_next() {
            return Poll::Ready(item);
        }
        self.register(cx.waker());
        self.idle.set(true);
        Poll::Pending
    }

    /// Takes the next item without registering interest.
    #[inline]
    pub fn try_next(&self) -> Option<Next<M, S>> {
        if let Some(signal) = self.take_signal() {
            return Some(Next::Signal(signal));
        }
        let message = self.messages.borrow_mut().pop_front()?;
        self.popped.set(self.popped.get() + 1);
        Some(Next::Message(message))
    }

    /// How many user messages were ever accepted. With [`Mailbox::popped`]
    /// this lets a consumer stop after exactly the messages queued before
    /// some moment ("handle what is queued, then stop").
    pub fn pushed(&self) -> u64 {
        self.pushed.get()
    }

    /// How many user messages were ever taken.
    pub fn popped(&self) -> u64 {
        self.popped.get()
    }

    /// Takes the oldest signal, if any, leaving user messages untouched.
    #[inline]
    pub fn take_signal(&self) -> Option<S> {
        let mut signals = self.signals.borrow_mut();
        if signals.is_empty() {
            None
        } else {
            signals.pop_front()
        }
    }

    /// Removes the oldest signal for which `wanted` returns true, leaving
    /// every other signal and message in place. Wakes nobody.
    pub fn take_signal_if(&self, mut wanted: impl FnMut(&S) -> bool) -> Option<S> {
        let mut signals = self.signals.borrow_mut();
        let index = signals.iter().position(&mut wanted)?;
        signals.remove(index)
    }

    /// Registers the consumer's waker without waiting: used by a process
    /// that is busy inside a handler so that a signal still wakes it.
    pub fn register(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        match slot.as_ref() {
            // The same task polls a mailbox for its whole life, so this is
            // the common case and costs no clone.
            Some(current) if current.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// A future resolving to the next item (see [`Mailbox::poll_next`]).
    pub fn next(&self) -> NextItem<'_, M, S> {
        NextItem { mailbox: self }
    }

    /// Number of queued user messages.
    pub fn len(&self) -> usize {
        self.messages.borrow().len()
    }

    /// Whether no user message is queued.
    pub fn is_empty(&self) -> bool {
        self.messages.borrow().is_empty()
    }

    /// Number of queued signals.
    pub fn signal_count(&self) -> usize {
        self.signals.borrow().len()
    }

    /// Whether [`Mailbox::close`] has run.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Closes the mailbox: later pushes are refused. Returns everything
    /// still queued so that the owner can count it and drop it where it
    /// chooses (dropping a message may run user code, for instance a reply
    /// handle telling its asker that no answer is coming). Also drops the
    /// registered waker.
    pub fn close(&self) -> Leftovers<M, S> {
        self.closed.set(true);
        self.waker.borrow_mut().take();
        Leftovers {
            messages: std::mem::take(&mut *self.messages.borrow_mut()),
            signals: std::mem::take(&mut *self.signals.borrow_mut()),
        }
    }
}

/// What was still queued when a mailbox closed.
#[derive(Debug)]
pub struct Leftovers<M, S> {
    /// Undelivered user messages, oldest first.
    pub messages: VecDeque<M>,
    /// Undelivered signals, oldest first.
    pub signals: VecDeque<S>,
}

/// Future returned by [`Mailbox::next`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct NextItem<'a, M, S> {
    mailbox: &'a Mailbox<M, S>,
}

impl<M, S> Future for NextItem<'_, M, S> {
    type Output = Next<M, S>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.mailbox.poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<CountingWaker>, Waker) {
        let w = Arc::new(CountingWaker(AtomicUsize::new(0)));
        (w.clone(), Waker::from(w))
    }

    #[test]
    fn messages_are_fifo() {
        let mb: Mailbox<u32, ()> = Mailbox::new();
        for i in 0..100 {
            mb.push(i).unwrap();
        }
        for i in 0..100 {
            assert_eq!(mb.try_next(), Some(Next::Message(i)));
        }
        assert_eq!(mb.try_next(), None);
    }

    #[test]
    fn signals_overtake_queued_messages() {
        let mb: Mailbox<u32, &str> = Mailbox::new();
        mb.push(1).unwrap();
        mb.push(2).unwrap();
        mb.push_signal("stop").unwrap();
        mb.push_signal("again").unwrap();
        assert_eq!(mb.try_next(), Some(Next::Signal("stop")));
        assert_eq!(mb.try_next(), Some(Next::Signal("again")));
        assert_eq!(mb.try_next(), Some(Next::Message(1)));
        assert_eq!(mb.try_next(), Some(Next::Message(2)));
    }

    #[test]
    fn wakes_only_on_idle_to_ready() {
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        let mb: Mailbox<u32, ()> = Mailbox::new();
        assert!(mb.poll_next(&mut cx).is_pending());
        mb.push(1).unwrap();
        mb.push(2).unwrap();
        mb.push(3).unwrap();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "one wake per idle period"
        );
        assert_eq!(mb.poll_next(&mut cx), Poll::Ready(Next::Message(1)));
        mb.push(4).unwrap();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "busy consumer is not woken"
        );
    }

    #[test]
    fn signals_wake_a_busy_consumer() {
        let (count, w) = waker();
        let mb: Mailbox<u32, ()> = Mailbox::new();
        mb.register(&w);
        mb.push_signal(()).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn take_signal_if_removes_only_the_match_and_wakes_nobody() {
        let (count, w) = waker();
        let mb: Mailbox<u32, u8> = Mailbox::new();
        mb.push_signal(1).unwrap();
        mb.push_signal(2).unwrap();
        mb.push_signal(3).unwrap();
        mb.register(&w);
        assert_eq!(mb.take_signal_if(|s| *s == 2), Some(2));
        assert_eq!(mb.take_signal_if(|s| *s == 9), None);
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert_eq!(mb.take_signal(), Some(1));
        assert_eq!(mb.take_signal(), Some(3));
    }

    #[test]
    fn pushed_and_popped_count_user_messages_only() {
        let mb: Mailbox<u32, ()> = Mailbox::new();
        mb.push(1).unwrap();
        mb.push(2).unwrap();
        mb.push_signal(()).unwrap();
        let mark = mb.pushed();
        mb.push(3).unwrap();
        let mut seen = Vec::new();
        while mb.popped() < mark {
            if let Some(Next::Message(m)) = mb.try_next() {
                seen.push(m);
            }
        }
        assert_eq!(seen, [1, 2], "exactly the messages queued before the mark");
        assert_eq!((mb.pushed(), mb.popped()), (3, 2));
    }

    #[test]
    fn closed_mailbox_hands_values_back_and_returns_leftovers() {
        let mb: Mailbox<String, u8> = Mailbox::new();
        mb.push("a".into()).unwrap();
        mb.push_signal(7).unwrap();
        let left = mb.close();
        assert_eq!(left.messages, ["a".to_string()]);
        assert_eq!(left.signals, [7]);
        assert_eq!(mb.push("b".into()), Err("b".to_string()));
        assert_eq!(mb.push_signal(8), Err(8));
        assert!(mb.is_closed());
    }

    #[test]
    fn nothing_dropped_twice_or_leaked() {
        let token = Rc::new(());
        {
            let mb: Mailbox<Rc<()>, Rc<()>> = Mailbox::new();
            for _ in 0..10 {
                mb.push(token.clone()).unwrap();
                mb.push_signal(token.clone()).unwrap();
            }
            let _ = mb.try_next();
            assert_eq!(Rc::strong_count(&token), 20);
            let left = mb.close();
            assert_eq!(left.messages.len() + left.signals.len(), 19);
        }
        assert_eq!(Rc::strong_count(&token), 1);
    }
}
