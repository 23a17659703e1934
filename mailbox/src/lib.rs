//! The per-process mailbox of corelet.
//!
//! A mailbox belongs to exactly one process, and therefore to exactly one
//! shard thread. It is a plain single-threaded data structure: no atomics,
//! no interior mutability, no waker. Scheduling is not its business: the
//! shard's scheduler decides when a process runs, from the process's own
//! run state, and the mailbox only reports what a push did
//! ([`Pushed`]) so that the caller can make that decision without a second
//! look.
//!
//! # Invariants
//!
//! 1. Only the owning shard thread touches a mailbox (it is `!Sync` through
//!    its `&mut self` API; the shard keeps it inside the process's one
//!    allocation and reaches it only on its own thread).
//! 2. System signals (terminate, shutdown, kill) are kept in their own
//!    queue and are always taken before user messages that were queued
//!    earlier: a signal overtakes messages, never the other way round.
//! 3. Messages are taken in the order they were pushed (FIFO); so are
//!    signals.
//! 4. [`Mailbox::close`] hands back everything still queued, so that the
//!    owner can count it and drop it where it chooses (dropping a message may
//!    run user code). The owner guarantees that nobody pushes afterwards
//!    (corelet frees the process's slot at the same moment, so no pid can
//!    reach the mailbox again).
//! 5. A mailbox that never received a signal allocates nothing for the
//!    signal queue; one that never received a message allocates nothing at
//!    all.
//!
//! The mailbox is unbounded: back-pressure in corelet is applied where a
//! message crosses shards (see the `cross_shard` crate), not per process.
#![deny(missing_docs)]

mod lane;

pub use lane::{copy_by_words, read_by_words, Lane};
use std::collections::VecDeque;
use std::fmt;
use std::mem::ManuallyDrop;

/// What [`Mailbox::pop`] hands to the process: a signal first, if any.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<M, S> {
    /// A system signal; signals overtake queued messages.
    Signal(S),
    /// A user message (or anything else that travels in message order).
    Message(M),
}

/// What a push did to the mailbox, so that the caller can decide whether
/// the owning process needs scheduling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The mailbox was empty (no message and no signal) before this push.
    WasEmpty,
    /// Something was already queued: whoever put it there already made
    /// sure the process will look at its mailbox.
    Queued,
}

/// A single-threaded mailbox with a priority lane for system signals.
pub struct Mailbox<M, S> {
    /// The oldest message, when the lane was empty as it arrived: a process
    /// that only ever holds one message at a time (most of them) never
    /// allocates a lane buffer. Everything in `messages` is newer.
    first: Option<M>,
    messages: Lane<M>,
    /// Allocated on the first signal: most processes never get one before
    /// they exit. Boxed so that an idle mailbox spends 8 bytes on it, not 32.
    /// `ManuallyDrop` so that dropping a mailbox that never had one costs
    /// a test in [`Mailbox`]'s own `Drop`, not a call into the drop of an
    /// `Option<Box<VecDeque>>` (9 instructions per process exit).
    #[allow(clippy::box_collection)]
    signals: Option<ManuallyDrop<Box<VecDeque<S>>>>,
}

impl<M, S> Drop for Mailbox<M, S> {
    #[inline]
    fn drop(&mut self) {
        if self.signals.is_some() {
            self.drop_signals();
        }
    }
}

impl<M, S> Default for Mailbox<M, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M, S> fmt::Debug for Mailbox<M, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("messages", &self.messages.len())
            .field("signals", &self.signal_count())
            .finish()
    }
}

impl<M, S> Mailbox<M, S> {
    /// An empty mailbox. Allocates nothing until the first push.
    pub const fn new() -> Self {
        Self {
            first: None,
            messages: Lane::new(),
            signals: None,
        }
    }

    /// Queues a message behind every other message.
    #[inline]
    pub fn push(&mut self, message: M) -> Pushed {
        let was_empty = self.is_empty() && self.signal_count() == 0;
        self.push_message(message);
        if was_empty {
            Pushed::WasEmpty
        } else {
            Pushed::Queued
        }
    }

    /// Queues a system signal ahead of every user message (behind earlier
    /// signals).
    pub fn push_signal(&mut self, signal: S) -> Pushed {
        let was_empty = self.is_empty() && self.signal_count() == 0;
        self.signals
            .get_or_insert_with(|| ManuallyDrop::new(Box::default()))
            .push_back(signal);
        if was_empty {
            Pushed::WasEmpty
        } else {
            Pushed::Queued
        }
    }

    /// Takes the next item: the oldest signal if there is one, else the
    /// oldest message.
    #[inline]
    pub fn pop(&mut self) -> Option<Next<M, S>> {
        if let Some(signal) = self.take_signal() {
            return Some(Next::Signal(signal));
        }
        self.pop_message().map(Next::Message)
    }

    /// Takes the oldest message, ignoring signals (the caller has checked
    /// that none is queued).
    #[inline]
    pub fn pop_message(&mut self) -> Option<M> {
        if self.first.is_some() {
            return self.first.take();
        }
        self.messages.pop()
    }

    /// Takes the oldest message of a mailbox that holds one (the caller
    /// has checked [`Mailbox::is_empty`]). The hot receive loop uses this
    /// rather than [`Mailbox::pop_message`]: an `Option` of a message type
    /// with a niche would have its niche tested again after the two places
    /// a message can come from merge (see `Lane::pop_unchecked`).
    ///
    /// # Safety
    /// A message is queued.
    #[inline]
    pub unsafe fn pop_message_unchecked(&mut self) -> M {
        debug_assert!(!self.is_empty());
        if self.first.is_some() {
            // SAFETY: `Some`, just checked.
            unsafe { self.first.take().unwrap_unchecked() }
        } else {
            // SAFETY: `first` is empty and a message is queued (caller's
            // contract), so it is in the lane.
            unsafe { self.messages.pop_unchecked() }
        }
    }

    /// Queues a message without reporting whether the mailbox was empty
    /// (the fast path: the caller tracks scheduling itself).
    #[inline]
    pub fn push_message(&mut self, message: M) {
        if self.first.is_none() && self.messages.is_empty() {
            self.first = Some(message);
        } else {
            self.messages.push(message);
        }
    }

    /// Iterates over the queued messages, oldest first.
    pub fn messages(&self) -> impl Iterator<Item = &M> + '_ {
        self.first.iter().chain(self.messages.iter())
    }

    /// Takes the oldest signal, if any, leaving messages untouched.
    #[inline]
    pub fn take_signal(&mut self) -> Option<S> {
        self.signals.as_mut()?.pop_front()
    }

    /// Removes the oldest signal for which `wanted` returns true, leaving
    /// every other signal and message in place.
    pub fn take_signal_if(&mut self, mut wanted: impl FnMut(&S) -> bool) -> Option<S> {
        let signals = self.signals.as_mut()?;
        let index = signals.iter().position(&mut wanted)?;
        signals.remove(index)
    }

    /// Number of queued messages.
    #[inline]
    pub fn len(&self) -> usize {
        self.messages.len() + usize::from(self.first.is_some())
    }

    /// Whether no message is queued (signals are not counted).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.messages.is_empty()
    }

    #[inline(never)]
    fn drop_signals(&mut self) {
        if let Some(signals) = self.signals.take() {
            drop(ManuallyDrop::into_inner(signals));
        }
    }

    /// Number of queued signals.
    #[inline]
    pub fn signal_count(&self) -> usize {
        self.signals.as_ref().map_or(0, |s| s.len())
    }

    /// Empties the mailbox, returning everything that was queued so that
    /// the owner can count it and drop it where it chooses. Frees the
    /// queues' memory.
    pub fn close(&mut self) -> Leftovers<M, S> {
        let mut messages = self.messages.take();
        if let Some(first) = self.first.take() {
            messages.push_front(first);
        }
        Leftovers {
            messages,
            signals: self
                .signals
                .take()
                .map(|s| *ManuallyDrop::into_inner(s))
                .unwrap_or_default(),
        }
    }
}

/// What was still queued when a mailbox closed.
#[derive(Debug)]
pub struct Leftovers<M, S> {
    /// Undelivered messages, oldest first.
    pub messages: VecDeque<M>,
    /// Undelivered signals, oldest first.
    pub signals: VecDeque<S>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn messages_are_fifo() {
        let mut mb: Mailbox<u32, ()> = Mailbox::new();
        for i in 0..100 {
            mb.push(i);
        }
        for i in 0..100 {
            assert_eq!(mb.pop(), Some(Next::Message(i)));
        }
        assert_eq!(mb.pop(), None);
    }

    #[test]
    fn signals_overtake_queued_messages() {
        let mut mb: Mailbox<u32, &str> = Mailbox::new();
        mb.push(1);
        mb.push(2);
        mb.push_signal("stop");
        mb.push_signal("again");
        assert_eq!(mb.pop(), Some(Next::Signal("stop")));
        assert_eq!(mb.pop(), Some(Next::Signal("again")));
        assert_eq!(mb.pop(), Some(Next::Message(1)));
        assert_eq!(mb.pop_message(), Some(2));
        assert_eq!(mb.pop(), None);
    }

    #[test]
    fn push_reports_the_empty_to_queued_transition_only() {
        let mut mb: Mailbox<u32, ()> = Mailbox::new();
        assert_eq!(mb.push(1), Pushed::WasEmpty);
        assert_eq!(mb.push(2), Pushed::Queued);
        assert_eq!(mb.push_signal(()), Pushed::Queued);
        while mb.pop().is_some() {}
        assert_eq!(mb.push_signal(()), Pushed::WasEmpty);
        assert_eq!(mb.push(3), Pushed::Queued, "a queued signal counts");
    }

    #[test]
    fn take_signal_if_removes_only_the_match() {
        let mut mb: Mailbox<u32, u8> = Mailbox::new();
        assert_eq!(mb.take_signal_if(|_| true), None, "no signal queue yet");
        mb.push_signal(1);
        mb.push_signal(2);
        mb.push_signal(3);
        mb.push(9);
        assert_eq!(mb.take_signal_if(|s| *s == 2), Some(2));
        assert_eq!(mb.take_signal_if(|s| *s == 7), None);
        assert_eq!(mb.signal_count(), 2);
        assert_eq!(mb.take_signal(), Some(1));
        assert_eq!(mb.take_signal(), Some(3));
        assert_eq!(mb.take_signal(), None);
        assert_eq!(mb.len(), 1);
    }

    #[test]
    fn close_returns_leftovers_and_frees_the_queues() {
        let mut mb: Mailbox<String, u8> = Mailbox::new();
        mb.push("a".into());
        mb.push_signal(7);
        let left = mb.close();
        assert_eq!(left.messages, ["a".to_string()]);
        assert_eq!(left.signals, [7]);
        assert!(mb.is_empty());
        assert_eq!(mb.signal_count(), 0);
        let left = mb.close();
        assert!(left.messages.is_empty() && left.signals.is_empty());
    }

    #[test]
    fn nothing_dropped_twice_or_leaked() {
        let token = Rc::new(());
        {
            let mut mb: Mailbox<Rc<()>, Rc<()>> = Mailbox::new();
            for _ in 0..10 {
                mb.push(token.clone());
                mb.push_signal(token.clone());
            }
            let _ = mb.pop();
            assert_eq!(Rc::strong_count(&token), 20);
            let left = mb.close();
            assert_eq!(left.messages.len() + left.signals.len(), 19);
        }
        assert_eq!(Rc::strong_count(&token), 1);
    }

    #[test]
    fn a_first_message_is_kept_inline_and_order_holds_around_it() {
        let mut mb: Mailbox<u32, ()> = Mailbox::new();
        mb.push_message(1);
        mb.push_message(2);
        assert_eq!(mb.pop_message(), Some(1));
        mb.push_message(3); // behind 2, not inline ahead of it
        assert_eq!(mb.len(), 2);
        assert_eq!(mb.messages().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(mb.pop_message(), Some(2));
        assert_eq!(mb.pop_message(), Some(3));
        mb.push_message(4);
        mb.push_message(5);
        let left = mb.close();
        assert_eq!(left.messages, [4, 5]);
    }

    #[test]
    fn pop_unchecked_takes_the_inline_first_message_before_the_lane() {
        let mut mb: Mailbox<String, ()> = Mailbox::new();
        let mut taken = Vec::new();
        for round in 0..50u32 {
            for i in 0..round % 4 + 1 {
                mb.push_message(format!("{round}.{i}"));
            }
            // Take all but one, so that the next round's first push goes
            // to the lane behind it, not inline ahead of it.
            while mb.len() > 1 {
                // SAFETY: not empty (`len` > 1).
                taken.push(unsafe { mb.pop_message_unchecked() });
            }
        }
        while !mb.is_empty() {
            // SAFETY: not empty, just checked.
            taken.push(unsafe { mb.pop_message_unchecked() });
        }
        let pushed: Vec<String> = (0..50u32)
            .flat_map(|round| (0..round % 4 + 1).map(move |i| format!("{round}.{i}")))
            .collect();
        assert_eq!(taken, pushed, "FIFO across the inline slot and the lane");
    }

    #[test]
    fn an_unused_mailbox_is_small_and_allocates_nothing() {
        let mb: Mailbox<u64, u64> = Mailbox::new();
        assert!(std::mem::size_of_val(&mb) <= 48);
        assert_eq!(mb.len(), 0);
        assert_eq!(mb.signal_count(), 0);
    }
}
