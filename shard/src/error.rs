//! Errors returned by corelet operations.

use crate::exit::ExitReason;
use crate::pid::{Pid, ShardId};
use std::fmt;

/// Why a message could not be delivered. The message is handed back when
/// the failure is known at the call site.
#[derive(PartialEq, Eq)]
pub enum SendError<M> {
    /// The target pid names no live process (never existed, exited, or a
    /// stale incarnation).
    NoProcess(M),
    /// The pid's shard does not exist in this runtime.
    UnknownShard(M),
    /// The target is on another shard but the call needs a local target
    /// (`tell_local` with a non-`Send` message).
    NotLocal(M),
    /// The outgoing ring to the target's shard and its overflow queue are
    /// full: back-pressure. Retry later or use the async `send`.
    Full(M),
    /// Called from a thread that is not a shard of a running runtime.
    NotInRuntime(M),
    /// The pid names a process whose message type is not `M`.
    WrongType(M),
    /// The runtime is shutting down.
    ShuttingDown(M),
}

impl<M> SendError<M> {
    /// Recovers the undelivered message.
    pub fn into_inner(self) -> M {
        match self {
            SendError::NoProcess(m)
            | SendError::UnknownShard(m)
            | SendError::NotLocal(m)
            | SendError::Full(m)
            | SendError::NotInRuntime(m)
            | SendError::WrongType(m)
            | SendError::ShuttingDown(m) => m,
        }
    }

    /// The same error around another message.
    #[inline(always)]
    pub(crate) fn with<N>(self, msg: N) -> SendError<N> {
        match self {
            SendError::NoProcess(_) => SendError::NoProcess(msg),
            SendError::UnknownShard(_) => SendError::UnknownShard(msg),
            SendError::NotLocal(_) => SendError::NotLocal(msg),
            SendError::Full(_) => SendError::Full(msg),
            SendError::NotInRuntime(_) => SendError::NotInRuntime(msg),
            SendError::WrongType(_) => SendError::WrongType(msg),
            SendError::ShuttingDown(_) => SendError::ShuttingDown(msg),
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            SendError::NoProcess(_) => "no such process",
            SendError::UnknownShard(_) => "unknown shard",
            SendError::NotLocal(_) => "target is not on the current shard",
            SendError::Full(_) => "cross-shard queue full (back-pressure)",
            SendError::NotInRuntime(_) => "not called from a shard thread",
            SendError::WrongType(_) => "process has a different message type",
            SendError::ShuttingDown(_) => "runtime is shutting down",
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SendError({})", self.describe())
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl<M> std::error::Error for SendError<M> {}

/// Why an `ask` produced no reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AskError {
    /// The request could not be delivered (see [`SendError`]); the message
    /// was dropped, along with its reply handle.
    Send(&'static str),
    /// The target exited, or dropped the reply handle, without replying.
    NoReply,
    /// No reply arrived within the timeout.
    Timeout,
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::Send(why) => write!(f, "request not delivered: {why}"),
            AskError::NoReply => {
                f.write_str("target exited or dropped the reply without answering")
            }
            AskError::Timeout => f.write_str("no reply within the timeout"),
        }
    }
}

impl std::error::Error for AskError {}

impl<M> From<SendError<M>> for AskError {
    fn from(e: SendError<M>) -> Self {
        AskError::Send(e.describe())
    }
}

/// Errors of lifecycle calls (`spawn`, `terminate`, `wait`, `block_on`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The pid names no live process.
    NoProcess(Pid),
    /// The shard does not exist in this runtime.
    UnknownShard(ShardId),
    /// A process tried to wait for itself.
    WaitOnSelf(Pid),
    /// A blocking call was made on a shard thread, where it would stall
    /// every process of the shard (and possibly deadlock).
    BlockingOnShard(ShardId),
    /// The call needs a shard thread (an async API used outside the
    /// runtime): use the `Runtime` methods from outside threads.
    NotInRuntime,
    /// `init` failed; the process never started.
    Init(ExitReason),
    /// The runtime is shutting down or gone, so the operation was dropped.
    ShuttingDown,
    /// A future run with `block_on` panicked.
    Panicked(String),
    /// A shard thread panicked; reported by `shutdown`.
    ShardPanicked(ShardId, String),
    /// Building the runtime failed.
    Build(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoProcess(pid) => write!(f, "no such process {pid}"),
            Error::UnknownShard(s) => write!(f, "unknown {s}"),
            Error::WaitOnSelf(pid) => write!(f, "process {pid} cannot wait for itself"),
            Error::BlockingOnShard(s) => {
                write!(
                    f,
                    "blocking call on {s}'s thread would stall it; use the async API"
                )
            }
            Error::NotInRuntime => f.write_str("not called from a shard thread"),
            Error::Init(reason) => write!(f, "init failed: {reason}"),
            Error::ShuttingDown => f.write_str("runtime is shutting down"),
            Error::Panicked(msg) => write!(f, "panicked: {msg}"),
            Error::ShardPanicked(s, msg) => write!(f, "{s} panicked: {msg}"),
            Error::Build(msg) => write!(f, "cannot build runtime: {msg}"),
        }
    }
}

impl std::error::Error for Error {}
