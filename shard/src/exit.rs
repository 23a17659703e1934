//! Why a process stopped.

use crate::pid::Pid;
use std::fmt;

/// The reason a process exited.
///
/// `Normal` and `Shutdown` are *normal* exits; every other reason is
/// abnormal (see [`ExitReason::is_normal`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// The process stopped itself (`Context::stop`) or finished its work.
    Normal,
    /// The process was asked to stop (`terminate`, runtime shutdown).
    Shutdown,
    /// The process was killed: it stopped at once, without running its
    /// terminate hook.
    Killed,
    /// A hook (`init`, `handle` or `terminate`) panicked; the payload's
    /// message is kept.
    Panicked(String),
    /// `init` or `handle` returned an error; its `Display` text is kept.
    Error(String),
    /// The process did not exist (unknown or stale pid).
    NoProcess,
    /// A linked process exited abnormally and this one did not trap exits.
    Linked {
        /// The linked process that exited first.
        pid: Pid,
        /// Why it exited.
        reason: Box<ExitReason>,
    },
}

/// Cloning a reason without data (every exit but the abnormal ones) is a
/// test and a store, inlined where an exit is fanned out to its waiters;
/// the reasons that own a `String` or a box are cloned out of line.
impl Clone for ExitReason {
    #[inline]
    fn clone(&self) -> Self {
        match self {
            Self::Normal => Self::Normal,
            Self::Shutdown => Self::Shutdown,
            Self::Killed => Self::Killed,
            Self::NoProcess => Self::NoProcess,
            with_data => with_data.clone_with_data(),
        }
    }
}

impl ExitReason {
    #[inline(never)]
    fn clone_with_data(&self) -> Self {
        match self {
            Self::Panicked(message) => Self::Panicked(message.clone()),
            Self::Error(message) => Self::Error(message.clone()),
            Self::Linked { pid, reason } => Self::Linked {
                pid: *pid,
                reason: reason.clone(),
            },
            Self::Normal => Self::Normal,
            Self::Shutdown => Self::Shutdown,
            Self::Killed => Self::Killed,
            Self::NoProcess => Self::NoProcess,
        }
    }

    /// Drops the reason; one without data costs a test, not a call into
    /// the drop of the whole enum.
    #[inline(always)]
    pub(crate) fn dispose(self) {
        if matches!(
            self,
            Self::Normal | Self::Shutdown | Self::Killed | Self::NoProcess
        ) {
            // Nothing to drop in these variants.
            std::mem::forget(self);
        } else {
            drop(self);
        }
    }
}

impl ExitReason {
    /// Whether this is a normal exit (`Normal` or `Shutdown`), which does
    /// not propagate along links.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal | ExitReason::Shutdown)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::Panicked(msg) => write!(f, "panicked: {msg}"),
            ExitReason::Error(msg) => write!(f, "error: {msg}"),
            ExitReason::NoProcess => f.write_str("no such process"),
            ExitReason::Linked { pid, reason } => write!(f, "linked {pid} exited ({reason})"),
        }
    }
}

/// Turns a panic payload into the message kept in [`ExitReason::Panicked`].
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::ExitReason;
    use crate::pid::{Pid, ShardId};

    fn every_reason() -> Vec<ExitReason> {
        vec![
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::Killed,
            ExitReason::NoProcess,
            ExitReason::Panicked("boom".into()),
            ExitReason::Error("bad input".into()),
            ExitReason::Linked {
                pid: Pid::from_parts(ShardId(1), 7, 3),
                reason: Box::new(ExitReason::Linked {
                    pid: Pid::from_parts(ShardId(0), 2, 9),
                    reason: Box::new(ExitReason::Error("first".into())),
                }),
            },
        ]
    }

    #[test]
    fn a_clone_is_equal_and_owns_its_data() {
        for reason in every_reason() {
            let copy = reason.clone();
            assert_eq!(copy, reason);
            // The clone outlives the original (no shared buffer).
            drop(reason);
            assert_eq!(format!("{copy:?}"), format!("{:?}", copy.clone()));
        }
        let ExitReason::Error(original) = ExitReason::Error("text".into()) else {
            unreachable!()
        };
        let reason = ExitReason::Error(original);
        let ExitReason::Error(copied) = reason.clone() else {
            panic!("a clone changed the variant");
        };
        let ExitReason::Error(kept) = &reason else {
            unreachable!()
        };
        assert_ne!(copied.as_ptr(), kept.as_ptr(), "the text is copied");
    }
}
