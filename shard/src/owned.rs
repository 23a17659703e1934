//! Process-owned tasks and streams: work that runs beside a process and
//! reports to it by message (Erlang's "active" sockets, generalised).
//!
//! A process's handler runs one message at a time, so a handler that awaited
//! a socket read would leave the process deaf to everything else — other
//! messages queue, and a `terminate` waits for a read that may never
//! complete. Instead, the process hands the future or stream to its
//! [`Context`], which polls it in a task of its own on the same shard and
//! delivers each result to the process as an ordinary message, in order
//! with the process's other messages. The process stays idle between
//! messages, so signals reach it at once.
//!
//! # Rules
//!
//! 1. An owned task runs on its owner's shard, as a task of the shard's
//!    scheduler (so a process that yields lets it run, like any other
//!    runnable); the future need not be `Send`, nor its output.
//! 2. Its results are delivered with [`Addr::tell_local`]: no allocation, no
//!    atomics, FIFO with the owner's other same-shard messages.
//! 3. An owned task lives no longer than its owner: the owner's exit drops
//!    its context, which drops every owned task (and with it the future or
//!    stream and whatever it holds — a socket, a file) before anybody hears
//!    of the exit. [`Context::cancel_owned`] drops one earlier.
//! 4. A stream is flow-controlled by *credit*: it is polled for its next
//!    item only while the owner has granted credit, one unit per item (as
//!    Erlang's `{active, N}`). An owner that grants one unit per handled
//!    item bounds what waits in its mailbox to the window it started with.

use crate::addr::Addr;
use crate::context::Context;
use crate::pid::Pid;
use crate::process::Process;
use futures_lite::stream::{Stream, StreamExt};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// Names one owned task or stream of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OwnedRef(u64);

/// What an attached stream delivers to its owner.
#[derive(Debug)]
pub enum StreamEvent<T> {
    /// The next item.
    Item(T),
    /// The stream ended; nothing follows.
    End,
}

/// What an owned task and its owner share (same thread only): the credit
/// of a stream, and the future itself, so that cancelling drops it at once
/// rather than whenever the executor gets to the cancelled task.
#[derive(Default)]
struct Slot {
    units: Cell<u64>,
    waker: Cell<Option<Waker>>,
    body: RefCell<Option<Pin<Box<dyn Future<Output = ()>>>>>,
}

impl Slot {
    fn done(&self) -> bool {
        // Never borrowed across a poll by anyone but the task itself, and
        // the task does not call back into its owner's context.
        self.body.try_borrow().is_ok_and(|b| b.is_none())
    }

    fn grant(&self, n: u64) {
        self.units.set(self.units.get().saturating_add(n));
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Waits for one unit of credit and takes it.
    async fn take(&self) {
        std::future::poll_fn(|cx| {
            let units = self.units.get();
            if units > 0 {
                self.units.set(units - 1);
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    /// Drops the body now (it is never polled again).
    fn cancel(&self) -> bool {
        let body = self.body.borrow_mut().take();
        let pending = body.is_some();
        drop(body);
        pending
    }
}

/// The owned tasks of one process (kept in its context; dropping it
/// cancels them all).
#[derive(Default)]
pub(crate) struct Owned {
    next: u64,
    /// Id, the scheduler task's key, and the shared slot.
    live: Vec<(u64, Pid, Rc<Slot>)>,
}

impl Owned {
    /// Whether nothing is owned (or everything owned has finished).
    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    fn start(&mut self, slot: Rc<Slot>, body: impl Future<Output = ()> + 'static) -> OwnedRef {
        self.live.retain(|(_, _, s)| !s.done());
        let id = self.next;
        self.next += 1;
        *slot.body.borrow_mut() = Some(Box::pin(body));
        let polled = slot.clone();
        let task = spawn_task(std::future::poll_fn(move |cx| {
            let mut body = polled.body.borrow_mut();
            let Some(fut) = body.as_mut() else {
                return Poll::Ready(()); // cancelled
            };
            match fut.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    *body = None;
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            }
        }));
        self.live.push((id, task, slot));
        OwnedRef(id)
    }

    fn find(&self, r: OwnedRef) -> Option<&Rc<Slot>> {
        self.live
            .iter()
            .find(|(id, _, _)| *id == r.0)
            .map(|(_, _, s)| s)
    }

    fn take(&mut self, r: OwnedRef) -> Option<(Pid, Rc<Slot>)> {
        let i = self.live.iter().position(|(id, _, _)| *id == r.0)?;
        let (_, task, slot) = self.live.swap_remove(i);
        Some((task, slot))
    }

    fn pending(&self) -> usize {
        self.live.iter().filter(|(_, _, s)| !s.done()).count()
    }
}

impl Drop for Owned {
    /// The owner exited: every owned future is dropped here, on the owner's
    /// shard, before the owner's exit is reported.
    fn drop(&mut self) {
        if self.live.is_empty() {
            return; // most processes never own a task: no drain to set up
        }
        for (_, task, slot) in self.live.drain(..) {
            slot.cancel();
            finish(task);
        }
    }
}

/// Runs `body` as a task of this thread's shard; returns its key.
fn spawn_task(body: impl Future<Output = ()> + 'static) -> Pid {
    crate::shard::with_current(|s| s.spawn_task(body))
        .expect("owned tasks are started by a process, on its shard")
}

/// Wakes the task `key` after its body was dropped, so that it completes
/// (finding no body) and is freed.
fn finish(key: Pid) {
    crate::shard::with_current(|s| s.wake_key(key, true));
}

impl<P: Process> Context<P> {
    /// Runs `fut` beside this process, on its shard; when it completes, its
    /// output arrives as the message `into(output)`. The future need not be
    /// `Send`. It is dropped unfinished by [`Context::cancel_owned`] or
    /// when this process exits.
    pub fn spawn_owned<F>(
        &mut self,
        fut: F,
        into: impl FnOnce(F::Output) -> P::Msg + 'static,
    ) -> OwnedRef
    where
        F: Future + 'static,
    {
        let me: Addr<P> = self.addr();
        let slot = Rc::new(Slot::default());
        self.with_owned(|o| {
            o.start(slot, async move {
                let out = fut.await;
                let _ = me.tell_local(into(out));
            })
        })
    }

    /// Polls `stream` beside this process and delivers each item as the
    /// message `into(StreamEvent::Item(item))`, then `into(StreamEvent::End)`
    /// when it ends. At most `window` items are taken from the stream
    /// before the process grants more with [`Context::grant`]; granting one
    /// unit per handled item keeps at most `window` items queued. The
    /// stream is dropped when it ends, by [`Context::cancel_owned`], or when
    /// this process exits.
    pub fn attach_stream<S>(
        &mut self,
        stream: S,
        window: u64,
        mut into: impl FnMut(StreamEvent<S::Item>) -> P::Msg + 'static,
    ) -> OwnedRef
    where
        S: Stream + 'static,
    {
        let me: Addr<P> = self.addr();
        let slot = Rc::new(Slot::default());
        slot.units.set(window);
        // A weak handle: the slot owns the body, so a strong one would be a
        // cycle; the body only runs while the slot is alive.
        let units = Rc::downgrade(&slot);
        self.with_owned(|o| {
            o.start(slot, async move {
                let mut stream = std::pin::pin!(stream);
                loop {
                    let Some(slot) = units.upgrade() else { break };
                    slot.take().await;
                    drop(slot);
                    let event = match stream.next().await {
                        Some(item) => StreamEvent::Item(item),
                        None => StreamEvent::End,
                    };
                    let end = matches!(event, StreamEvent::End);
                    if me.tell_local(into(event)).is_err() || end {
                        break; // the owner is gone (cannot happen while we live) or done
                    }
                }
            })
        })
    }

    /// Lets the stream `r` deliver `n` more items. Does nothing for a
    /// finished, cancelled or unknown stream.
    pub fn grant(&mut self, r: OwnedRef, n: u64) {
        // Granting may wake the stream's task: done outside the borrow.
        let slot = self.with_owned_if_any(|o| o.find(r).cloned()).flatten();
        if let Some(slot) = slot {
            slot.grant(n);
        }
    }

    /// Drops an owned task or stream now. Returns `true` if it had not
    /// finished (so nothing more arrives from it; what it already delivered
    /// stays queued).
    pub fn cancel_owned(&mut self, r: OwnedRef) -> bool {
        // The future is dropped outside the borrow of the process's extras:
        // its drop may run arbitrary code.
        let taken = self.with_owned_if_any(|o| o.take(r)).flatten();
        taken.is_some_and(|(task, slot)| {
            let pending = slot.cancel();
            finish(task);
            pending
        })
    }

    /// Owned tasks and streams of this process that have not finished.
    pub fn owned_pending(&self) -> usize {
        self.with_owned_if_any(|o| o.pending()).unwrap_or(0)
    }
}
