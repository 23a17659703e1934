//! Why a process stopped.

use crate::pid::Pid;
use std::fmt;

/// The reason a process exited.
///
/// `Normal` and `Shutdown` are *normal* exits; every other reason is
/// abnormal (see [`ExitReason::is_normal`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
