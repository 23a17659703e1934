//! Reply handles (`ReplyTo<R>`) and the per-shard table of pending replies.
//!
//! An asker allocates a slot in its own shard's reply table and sends the
//! target a [`ReplyTo`]: plain data naming `(runtime, shard, slot,
//! generation)`. Whoever holds the handle answers with [`ReplyTo::send`]; if
//! the handle is dropped unanswered (the target exited with the request
//! still queued, a handler panicked, or simply forgot) the asker is told
//! [`AskError::NoReply`]. So an ask never hangs while its target is gone.
//!
//! A reply travels like any message: written straight into the slot when
//! the replier runs on the asker's shard, through the ring to the asker's
//! shard otherwise, and through the shard's injector queue from outside
//! threads. A slot is freed by its asker (on completion or when the ask
//! future is dropped); a late reply finds the generation bumped and is
//! counted and dropped.

use crate::envelope::Envelope;
use crate::error::AskError;
use crate::pid::ShardId;
use crate::runtime::{lookup_runtime, RuntimeId};
use crate::shard::{Priority, Shard};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

type Outcome = Result<Box<dyn Any>, AskError>;

/// A pending reply in the asker's shard.
#[derive(Default)]
pub(crate) struct ReplySlot {
    waker: Option<Waker>,
    outcome: Option<Outcome>,
}

/// Where a reply goes.
enum Target<R> {
    /// A slot in a shard's reply table.
    Shard {
        runtime: RuntimeId,
        shard: ShardId,
        slot: u32,
        generation: u32,
    },
    /// An outside thread blocked on a completion.
    Thread(Arc<Completion<R>>),
}

/// The right (and duty) to answer one request.
///
/// `ReplyTo` is `Send` when `R` is, so it can travel inside a cross-shard
/// message. Answer with [`ReplyTo::send`]; dropping it unanswered resolves
/// the asker with [`AskError::NoReply`].
pub struct ReplyTo<R: Send + 'static> {
    target: Option<Target<R>>,
    _reply: PhantomData<fn(R)>,
}

impl<R: Send + 'static> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(Target::Shard { shard, slot, .. }) => {
                write!(f, "ReplyTo({shard}, slot {slot})")
            }
            Some(Target::Thread(_)) => f.write_str("ReplyTo(thread)"),
            None => f.write_str("ReplyTo(answered)"),
        }
    }
}

impl<R: Send + 'static> ReplyTo<R> {
    pub(crate) fn to_thread(completion: Arc<Completion<R>>) -> Self {
        Self {
            target: Some(Target::Thread(completion)),
            _reply: PhantomData,
        }
    }

    /// Answers the request. Never fails: if the asker is gone the value is
    /// dropped (and counted as a late reply on the asker's shard).
    pub fn send(mut self, value: R) {
        if let Some(target) = self.target.take() {
            deliver(target, Ok(value));
        }
    }
}

impl<R: Send + 'static> Drop for ReplyTo<R> {
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            deliver(target, Err(AskError::NoReply));
        }
    }
}

fn deliver<R: Send + 'static>(target: Target<R>, outcome: Result<R, AskError>) {
    let (runtime, shard, slot, generation) = match target {
        Target::Thread(completion) => {
            completion.complete(outcome);
            return;
        }
        Target::Shard {
            runtime,
            shard,
            slot,
            generation,
        } => (runtime, shard, slot, generation),
    };
    let fill = move |home: &Shard| {
        home.fulfil(
            slot,
            generation,
            outcome.map(|v| Box::new(v) as Box<dyn Any>),
        );
    };
    // On a shard of the same runtime: directly, or through the ring (one
    // thread-local access, no `Rc` clone: this is the ask path).
    let unsent = crate::shard::with_current_or(
        fill,
        |here, fill| {
            if here.shared.id != runtime {
                return Some(fill);
            }
            if here.id == shard {
                fill(here);
            } else {
                // System priority: never refused for back-pressure. It can
                // only fail if the asker's shard has finished, and then the
                // asker is gone too.
                let _ = here.send_remote(shard, Envelope::new(fill), Priority::System);
            }
            None
        },
        Some,
    );
    let Some(fill) = unsent else {
        return;
    };
    // From an outside thread (or another runtime's shard): the injector.
    if let Some(shared) = lookup_runtime(runtime) {
        shared.inject(shard, Envelope::new(fill));
    }
}

impl Shard {
    /// Allocates a reply slot for an ask made on this shard.
    pub(crate) fn reply_slot<R: Send + 'static>(self: &Rc<Self>) -> (ReplyTo<R>, Reply<R>) {
        let (slot, generation) = self.replies.borrow_mut().insert(ReplySlot::default());
        let to = ReplyTo {
            target: Some(Target::Shard {
                runtime: self.shared.id,
                shard: self.id,
                slot,
                generation,
            }),
            _reply: PhantomData,
        };
        let reply = Reply {
            shard: self.clone(),
            slot,
            generation,
            done: false,
            _reply: PhantomData,
        };
        (to, reply)
    }

    /// Stores a reply and wakes its asker. A reply for a freed slot is late.
    pub(crate) fn fulfil(&self, slot: u32, generation: u32, outcome: Outcome) {
        let late = {
            let mut replies = self.replies.borrow_mut();
            match replies.get_mut(slot, generation) {
                Some(s) if s.outcome.is_none() => {
                    s.outcome = Some(outcome);
                    if let Some(w) = s.waker.take() {
                        w.wake();
                    }
                    None
                }
                _ => Some(outcome),
            }
        };
        if let Some(outcome) = late {
            self.count_late_reply();
            drop(outcome); // outside the borrow: may run user drops
        }
    }
}

/// The asker's side of a request: resolves to the reply, or to an error if
/// the request could not be delivered or the replier dropped its handle.
#[must_use = "futures do nothing unless polled"]
pub struct Reply<R> {
    shard: Rc<Shard>,
    slot: u32,
    generation: u32,
    done: bool,
    _reply: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for Reply<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply(slot {}, done {})", self.slot, self.done)
    }
}

impl<R: 'static> Future for Reply<R> {
    type Output = Result<R, AskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(!self.done, "Reply polled after completion");
        let taken = {
            let mut replies = self.shard.replies.borrow_mut();
            let slot = replies
                .get_mut(self.slot, self.generation)
                .expect("a reply slot lives until its Reply is done or dropped");
            match slot.outcome.take() {
                Some(outcome) => {
                    replies.remove(self.slot, self.generation);
                    Some(outcome)
                }
                None => {
                    if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        slot.waker = Some(cx.waker().clone());
                    }
                    None
                }
            }
        };
        match taken {
            Some(outcome) => {
                self.done = true;
                Poll::Ready(outcome.map(|b| {
                    *b.downcast::<R>()
                        .expect("a reply slot only receives its ReplyTo's type")
                }))
            }
            None => Poll::Pending,
        }
    }
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        if !self.done {
            let slot = self
                .shard
                .replies
                .borrow_mut()
                .remove(self.slot, self.generation);
            drop(slot); // outside the borrow
        }
    }
}

/// A one-shot completion an outside thread blocks on. It owns nothing of
/// any process: only the value (or error) handed to it.
pub(crate) struct Completion<R> {
    value: Mutex<Option<Result<R, AskError>>>,
    ready: Condvar,
}

impl<R> Completion<R> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            value: Mutex::new(None),
            ready: Condvar::new(),
        })
    }

    fn complete(&self, outcome: Result<R, AskError>) {
        let mut value = self.value.lock().unwrap_or_else(|e| e.into_inner());
        if value.is_none() {
            *value = Some(outcome);
            self.ready.notify_all();
        }
    }

    /// Blocks until completed.
    pub(crate) fn wait(&self) -> Result<R, AskError> {
        let mut value = self.value.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(outcome) = value.take() {
                return outcome;
            }
            value = self.ready.wait(value).unwrap_or_else(|e| e.into_inner());
        }
    }
}
