//! Typed addresses from plain pids.
//!
//! A pid found by `whereis`, kept by a supervisor or read from a child list
//! is untyped; to message it, a caller names the process type it expects.
//! Nothing is trusted: the target's shard compares the message type on
//! delivery, and a mismatch is refused (`SendError::WrongType` when the
//! target is on the caller's shard, a counted dead letter otherwise, and
//! `AskError` for an `ask`), exactly like a message for a dead pid.

use crate::addr::Addr;
use crate::pid::Pid;
use crate::process::Process;

impl<P: Process> Addr<P> {
    /// The address of `pid`, assumed to run a `P`. Delivery checks the
    /// assumption (see the module docs), so a wrong guess loses nothing
    /// silently.
    ///
    /// ```
    /// use corelet_shard::{Addr, Context, HandlerResult, Pid, Process, ShardId};
    /// struct Echo;
    /// impl Process for Echo {
    ///     type Msg = ();
    ///     async fn handle(&mut self, _: &mut Context<Self>, _: ()) -> HandlerResult { Ok(()) }
    /// }
    /// let pid = Pid::from_parts(ShardId(0), 3, 1);
    /// assert_eq!(Addr::<Echo>::from_pid(pid).pid(), pid);
    /// ```
    pub fn from_pid(pid: Pid) -> Self {
        Self::from_pid_unchecked(pid)
    }
}
