//! Timers owned by a process: `send_after` and `send_interval`.
//!
//! A timer is a glommio task on the owner's shard. The owner's `Context`
//! holds its handle, so a timer is cancelled by `cancel_timer` or, at the
//! latest, when the owner exits and its context is dropped: no timer
//! outlives its process. Cancelling drops the task before it can fire
//! again; a message it already sent stays sent.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

/// Names one timer of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerRef(u64);

/// The timers a process owns.
#[derive(Default)]
pub(crate) struct Timers {
    next: u64,
    live: Vec<(u64, glommio::Task<()>, Rc<Cell<bool>>)>,
}

impl Timers {
    /// Whether no timer was ever started (or all were forgotten).
    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Starts a timer: after `after`, then (for intervals) every `every`,
    /// call `fire`; stop when it returns `false`.
    pub(crate) fn start(
        &mut self,
        after: Duration,
        every: Option<Duration>,
        mut fire: impl FnMut() -> bool + 'static,
    ) -> TimerRef {
        self.live.retain(|(_, _, done)| !done.get());
        let id = self.next;
        self.next += 1;
        let done = Rc::new(Cell::new(false));
        let finished = done.clone();
        let body = async move {
            glommio::timer::Timer::new(after).await;
            if fire() {
                if let Some(every) = every {
                    loop {
                        glommio::timer::Timer::new(every).await;
                        if !fire() {
                            break;
                        }
                    }
                }
            }
            finished.set(true);
        };
        self.live.push((id, spawn(body), done));
        TimerRef(id)
    }

    /// Cancels a timer; `true` if it had not finished yet.
    pub(crate) fn cancel(&mut self, timer: TimerRef) -> bool {
        match self.live.iter().position(|(id, _, _)| *id == timer.0) {
            Some(i) => {
                let (_, task, done) = self.live.swap_remove(i);
                let pending = !done.get();
                drop(task); // cancels: the future is never polled again
                pending
            }
            None => false,
        }
    }

    /// Timers that have not fired (or, for intervals, not stopped) yet.
    pub(crate) fn pending(&self) -> usize {
        self.live.iter().filter(|(_, _, done)| !done.get()).count()
    }
}

fn spawn(body: impl Future<Output = ()> + 'static) -> glommio::Task<()> {
    glommio::spawn_local(body)
}
