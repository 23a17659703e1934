//! A watchdog for the workloads that run inside the harness's own process.
//!
//! A workload in a child process is killed at its time limit (`child.rs`),
//! but one that runs in-process cannot be stopped from outside: a runtime
//! that loses a wake-up hangs the whole comparison with no word of where
//! (one full run hung in ractor's ForkJoin create, every actor idle and
//! tokio parked). The watchdog turns such a hang into a clear failure: it
//! is armed around each in-process run with a deadline and a name; if the
//! deadline passes while the same run is still armed, it prints which
//! runtime and workload hung and ends the process with exit status
//! [`HUNG`].

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Exit status of a process the watchdog ended (as `timeout(1)` uses).
pub const HUNG: i32 = 124;

#[derive(Default)]
struct State {
    /// Bumped at each arm, so a late wake-up never fires for a later run.
    generation: u64,
    armed: Option<(Instant, String)>,
    stop: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// The watchdog thread and its state.
pub struct Watchdog {
    shared: Shared,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Disarms the watchdog when the guarded run returns (or unwinds).
pub struct Armed<'a> {
    dog: &'a Watchdog,
    generation: u64,
}

impl Watchdog {
    /// Starts the watchdog thread; `on_hang` runs (on that thread) when a
    /// deadline passes, with the run's name, and the process then exits
    /// with [`HUNG`]. Tests pass a hook that does not return.
    pub fn start() -> Watchdog {
        Self::with_hook(|what| {
            eprintln!("corelet-peers: watchdog: {what}; ending the run (exit {HUNG})");
            std::process::exit(HUNG);
        })
    }

    /// [`Watchdog::start`] with a chosen hook (for tests).
    pub fn with_hook(on_hang: impl Fn(&str) + Send + 'static) -> Watchdog {
        let shared: Shared = Arc::default();
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("corelet-peers-watchdog".into())
            .spawn(move || watch(&theirs, on_hang))
            .expect("spawning the watchdog thread");
        Watchdog {
            shared,
            thread: Some(thread),
        }
    }

    /// Arms the watchdog for one run named `what`, for at most `limit`.
    pub fn arm(&self, what: String, limit: Duration) -> Armed<'_> {
        let (lock, wake) = &*self.shared;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        state.generation += 1;
        state.armed = Some((Instant::now() + limit, what));
        wake.notify_all();
        Armed {
            dog: self,
            generation: state.generation,
        }
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        let (lock, wake) = &*self.dog.shared;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        if state.generation == self.generation {
            state.armed = None;
            wake.notify_all();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        {
            let (lock, wake) = &*self.shared;
            let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
            state.stop = true;
            wake.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch(shared: &Shared, on_hang: impl Fn(&str)) {
    let (lock, wake) = &**shared;
    let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if state.stop {
            return;
        }
        let Some((deadline, what)) = state.armed.clone() else {
            state = wake.wait(state).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        let now = Instant::now();
        if now < deadline {
            state = wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        // Still armed for the same run past its deadline.
        state.armed = None;
        drop(state);
        on_hang(&format!("{what} did not finish within its limit"));
        state = lock.lock().unwrap_or_else(|e| e.into_inner());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_run_past_its_deadline_is_named() {
        let (tx, rx) = mpsc::channel();
        let dog = Watchdog::with_hook(move |what| {
            let _ = tx.send(what.to_owned());
        });
        let _armed = dog.arm("ractor fork_join_create".into(), Duration::from_millis(1));
        // Waits until the watchdog fires: the run never disarms it. (The
        // bound only turns a broken watchdog into a failure, not a hang.)
        let said = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the watchdog fires");
        assert!(said.contains("ractor fork_join_create"), "{said}");
    }

    #[test]
    fn a_disarmed_run_is_never_reported() {
        let (tx, rx) = mpsc::channel();
        let dog = Watchdog::with_hook(move |what| {
            let _ = tx.send(what.to_owned());
        });
        for i in 0..100 {
            let armed = dog.arm(format!("run {i}"), Duration::from_secs(3600));
            drop(armed);
        }
        // Arm a last run that does hang, and check that it is the only one
        // ever reported (the disarmed ones left nothing behind).
        let _last = dog.arm("the last run".into(), Duration::from_millis(1));
        assert_eq!(
            rx.recv().expect("the watchdog fires"),
            "the last run did not finish within its limit"
        );
        drop(_last);
        drop(dog); // joins the thread: no further report can come
        assert!(rx.try_recv().is_err());
    }
}
