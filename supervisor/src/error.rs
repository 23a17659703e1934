//! Typed errors: bad specifications, failed starts, refused operations.

use corelet_shard::{AskError, Error, ExitReason, Pid, RegistryError};
use std::fmt;

/// Why a supervisor or child specification was rejected. Checked when a
/// supervisor starts (for its whole tree) and on `start_child`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecError {
    /// Two children of one supervisor share an id.
    DuplicateId(String),
    /// A significant child must be `Transient` or `Temporary` (OTP: a
    /// permanent child that exits is always restarted, so it could never
    /// trigger an automatic shutdown).
    SignificantPermanent(String),
    /// A significant child needs a supervisor whose `auto_shutdown` is not
    /// `Never`.
    SignificantWithoutAutoShutdown(String),
    /// A dynamic supervisor cannot shut down automatically, and its
    /// template cannot be significant.
    AutoShutdownOnDynamic,
    /// Backoff with jitter outside `0..=1` or a base above its cap.
    InvalidBackoff(String),
    /// A template (a spec that needs a start argument) used as a static
    /// child, or a plain spec given to a dynamic supervisor.
    WrongKindOfSpec(String),
    /// The intensity period is zero.
    ZeroPeriod,
    /// A child supervisor's own specification is invalid.
    Nested {
        /// The child supervisor's id.
        id: String,
        /// What is wrong with its specification.
        error: Box<SpecError>,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::DuplicateId(id) => write!(f, "duplicate child id {id:?}"),
            SpecError::SignificantPermanent(id) => {
                write!(f, "child {id:?} is significant and permanent")
            }
            SpecError::SignificantWithoutAutoShutdown(id) => write!(
                f,
                "child {id:?} is significant but the supervisor's auto_shutdown is never"
            ),
            SpecError::AutoShutdownOnDynamic => {
                f.write_str("a dynamic supervisor has no significant children or auto_shutdown")
            }
            SpecError::InvalidBackoff(id) => write!(f, "child {id:?} has an invalid backoff"),
            SpecError::WrongKindOfSpec(id) => write!(
                f,
                "child {id:?}: templates belong to dynamic supervisors, plain specs to static ones"
            ),
            SpecError::ZeroPeriod => f.write_str("the restart intensity period is zero"),
            SpecError::Nested { id, error } => write!(f, "in child supervisor {id:?}: {error}"),
        }
    }
}

impl std::error::Error for SpecError {}

/// Why a child (or a supervisor) did not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The specification is invalid.
    Invalid(SpecError),
    /// The factory panicked or `init` failed.
    Init(ExitReason),
    /// The child started but its name could not be registered; the child
    /// was stopped again.
    Name {
        /// The name.
        name: String,
        /// Why registration failed (`Taken` names the holder).
        error: RegistryError,
    },
    /// The runtime refused the spawn (unknown shard, shutting down).
    Runtime(Error),
    /// A supervisor's child failed to start while the supervisor booted;
    /// the children already started were stopped again.
    Child {
        /// The child that failed.
        id: String,
        /// Why.
        error: Box<StartError>,
    },
    /// A supervisor exited (it was killed, or its parent died) before it
    /// finished starting.
    Exited,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Invalid(e) => write!(f, "invalid specification: {e}"),
            StartError::Init(reason) => write!(f, "init failed: {reason}"),
            StartError::Name { name, error } => write!(f, "cannot register {name:?}: {error}"),
            StartError::Runtime(e) => write!(f, "spawn refused: {e}"),
            StartError::Child { id, error } => write!(f, "child {id:?} failed to start: {error}"),
            StartError::Exited => f.write_str("the supervisor exited while starting"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<SpecError> for StartError {
    fn from(e: SpecError) -> Self {
        StartError::Invalid(e)
    }
}

/// Why a child operation was refused. Each operation documents which of
/// these it returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildError {
    /// No child with that id (or pid, for a dynamic supervisor).
    NotFound,
    /// `start_child`: a child with that id is running.
    AlreadyStarted(Pid),
    /// `start_child`: a child with that id exists but is not running.
    AlreadyPresent,
    /// `restart_child` / `delete_child`: the child is running.
    Running(Pid),
    /// `restart_child`: the child is waiting to be restarted.
    Restarting,
    /// The operation does not exist for a dynamic supervisor (OTP's
    /// `simple_one_for_one` error).
    Dynamic,
    /// The operation exists only for a dynamic supervisor.
    NotDynamic,
    /// A dynamic supervisor got a start argument of the wrong type.
    WrongArgument,
    /// The child did not start.
    Start(StartError),
    /// The supervisor could not be reached, or exited before answering.
    Supervisor(AskError),
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::NotFound => f.write_str("no such child"),
            ChildError::AlreadyStarted(pid) => write!(f, "child already started as {pid}"),
            ChildError::AlreadyPresent => f.write_str("child already present"),
            ChildError::Running(pid) => write!(f, "child is running as {pid}"),
            ChildError::Restarting => f.write_str("child is restarting"),
            ChildError::Dynamic => f.write_str("not available on a dynamic supervisor"),
            ChildError::NotDynamic => f.write_str("only available on a dynamic supervisor"),
            ChildError::WrongArgument => f.write_str("start argument of the wrong type"),
            ChildError::Start(e) => write!(f, "start failed: {e}"),
            ChildError::Supervisor(e) => write!(f, "supervisor unreachable: {e}"),
        }
    }
}

impl std::error::Error for ChildError {}

impl From<AskError> for ChildError {
    fn from(e: AskError) -> Self {
        ChildError::Supervisor(e)
    }
}
