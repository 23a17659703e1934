//! A Linux eventfd as a [`Notify`] implementation, for receivers that block
//! a whole thread (threads outside the runtime, tests).
//!
//! The eventfd's kernel counter carries the wake-up: [`EventFd::notify`] adds
//! 1, [`EventFd::wait`] blocks until the counter is non-zero and resets it to
//! 0. Notifications sent while nobody waits are therefore not lost; several
//! of them collapse into one wake-up. The write and the read go through the
//! kernel's lock on the counter, which gives the happens-before edge the
//! [doorbell protocol](crate::doorbell) requires of a notifier.
//!
//! Not available under `cfg(loom)`: loom cannot model system calls.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd as NixEventFd};

use crate::doorbell::Notify;

/// An owned, blocking, close-on-exec eventfd; closed when dropped.
#[derive(Debug)]
pub struct EventFd {
    fd: NixEventFd,
}

impl EventFd {
    /// Creates an eventfd with counter 0, in blocking mode, with
    /// `EFD_CLOEXEC`.
    ///
    /// # Errors
    ///
    /// Fails when the process or system is out of file descriptors or
    /// memory (`EMFILE`, `ENFILE`, `ENOMEM`, `ENODEV`).
    pub fn new() -> nix::Result<Self> {
        let fd = NixEventFd::from_flags(EfdFlags::EFD_CLOEXEC)?;
        Ok(Self { fd })
    }

    /// Adds 1 to the counter, waking a thread blocked in [`wait`](Self::wait)
    /// or making the next `wait` return at once.
    ///
    /// Cannot fail in practice: the descriptor is owned (no `EBADF`), the
    /// value written is 1 (no `EINVAL`), and a write could only block (the fd
    /// is blocking, so never `EAGAIN`) if the counter already stood at
    /// `u64::MAX - 1`, which would take about 1.8e19 notifications nobody
    /// waited for. An interrupted write (`EINTR`) is retried. Any other error
    /// is a bug and trips a debug assertion; release builds ignore it.
    pub fn notify(&self) {
        loop {
            match self.fd.write(1) {
                Err(Errno::EINTR) => continue,
                result => {
                    debug_assert!(result.is_ok(), "eventfd write failed: {result:?}");
                    return;
                }
            }
        }
    }

    /// Blocks until the counter is non-zero, resets it to 0 and returns the
    /// value it had (the number of notifications since the previous wait).
    ///
    /// Interrupted reads (`EINTR`) are retried. A return does not imply that
    /// there is work: the caller re-checks its sources.
    ///
    /// # Errors
    ///
    /// Returns the `read(2)` error; with an owned blocking eventfd none is
    /// expected.
    pub fn wait(&self) -> nix::Result<u64> {
        loop {
            match self.fd.read() {
                Err(Errno::EINTR) => continue,
                result => return result,
            }
        }
    }
}

impl Notify for EventFd {
    fn notify(&self) {
        EventFd::notify(self);
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_accumulate_until_wait() {
        let fd = EventFd::new().unwrap();
        fd.notify();
        fd.notify();
        Notify::notify(&fd);
        assert_eq!(fd.wait().unwrap(), 3);
        fd.notify();
        assert_eq!(fd.wait().unwrap(), 1);
        assert!(fd.as_raw_fd() >= 0);
    }

    #[test]
    fn wait_blocks_until_notified_from_another_thread() {
        let fd = std::sync::Arc::new(EventFd::new().unwrap());
        let waker = std::sync::Arc::clone(&fd);
        let t = std::thread::spawn(move || waker.notify());
        // Blocks until the other thread's write; no timing involved.
        assert_eq!(fd.wait().unwrap(), 1);
        t.join().unwrap();
    }
}
