//! What a supervisor reports: its children, their counts, its counters,
//! and the whole tree below it.

use crate::config::Mode;
use crate::spec::{ChildKind, Restart};
use corelet_shard::Pid;
use std::fmt;

/// A child's current incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildStatus {
    /// Running under this pid.
    Running(Pid),
    /// Waiting for a (delayed or retried) restart.
    Restarting,
    /// Not running: terminated by `terminate_child`, exited for good
    /// (`Transient`), or its start declined (OTP's `undefined`).
    Undefined,
}

impl ChildStatus {
    /// The pid, if running.
    pub fn pid(&self) -> Option<Pid> {
        match self {
            ChildStatus::Running(pid) => Some(*pid),
            _ => None,
        }
    }
}

/// One entry of `which_children`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    /// The spec's id (a dynamic supervisor's children share the template's).
    pub id: String,
    /// The current incarnation.
    pub status: ChildStatus,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// The restart type.
    pub restart: Restart,
    /// How many times this child was restarted.
    pub restarts: u64,
    /// Whether it is significant.
    pub significant: bool,
}

/// `count_children` (OTP's four counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildCounts {
    /// Children in the table, running or not (a dynamic supervisor: its
    /// children, running or restarting).
    pub specs: usize,
    /// Children running now.
    pub active: usize,
    /// Children of kind `Supervisor`, running or not.
    pub supervisors: usize,
    /// Children of kind `Worker`, running or not.
    pub workers: usize,
}

/// A supervisor's counters since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SupervisorStats {
    /// Child incarnations started (first starts and restarts).
    pub starts: u64,
    /// Starts that failed (the factory panicked, `init` failed, the name
    /// was taken, the spawn was refused).
    pub failed_starts: u64,
    /// Children that exited by themselves (not stopped by the supervisor).
    pub exits: u64,
    /// Restarts decided; each counts against the intensity (a group
    /// restart counts once, a failed attempt counts again).
    pub restarts: u64,
    /// Restarts put on a timer (backoff or retry of a failed start).
    pub delayed_restarts: u64,
    /// Delayed restarts cancelled by `terminate_child` or `delete_child`.
    pub cancelled_restarts: u64,
    /// Children that exited with an unexpected reason while being stopped
    /// (OTP's `shutdown_error`).
    pub shutdown_errors: u64,
    /// Intensity trips reported by child supervisors just before they
    /// exited (this supervisor's own trip ends it: it is logged).
    pub child_intensity_trips: u64,
    /// Restart times inside the intensity window now.
    pub window: usize,
    /// Timers the supervisor holds now (pending delayed restarts).
    pub pending_timers: usize,
    /// Entries in the child table now (specs of a static supervisor,
    /// children of a dynamic one), running or not.
    pub table: usize,
}

/// A supervisor and everything below it, as `SupervisorRef::tree` found
/// it. `Display` prints it as an indented tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    /// The supervisor.
    pub pid: Pid,
    /// Static (with its strategy) or dynamic.
    pub mode: Mode,
    /// Its label, if its spec set one.
    pub label: Option<String>,
    /// Its counters.
    pub stats: SupervisorStats,
    /// Its children in start order, each with its own subtree if it is a
    /// running supervisor.
    pub children: Vec<(ChildInfo, Option<Tree>)>,
}

impl Tree {
    /// Every pid in the tree, supervisors included, depth first.
    pub fn pids(&self) -> Vec<Pid> {
        let mut out = vec![self.pid];
        for (info, sub) in &self.children {
            match sub {
                Some(tree) => out.extend(tree.pids()),
                None => out.extend(info.status.pid()),
            }
        }
        out
    }

    /// The supervisor's own line: `name pid [mode] counters`, then
    /// `extra` (what its parent knows of it).
    fn header(&self, f: &mut fmt::Formatter<'_>, name: &str, extra: &str) -> fmt::Result {
        let mode = match self.mode {
            Mode::Static(s) => format!("{s:?}"),
            Mode::Dynamic => "Dynamic".to_owned(),
        };
        let s = &self.stats;
        writeln!(
            f,
            "{name} {} [{mode}]{extra} starts {} restarts {} exits {} child trips {}",
            self.pid, s.starts, s.restarts, s.exits, s.child_intensity_trips,
        )
    }

    fn write_children(&self, f: &mut fmt::Formatter<'_>, indent: &str) -> fmt::Result {
        let n = self.children.len();
        for (i, (info, sub)) in self.children.iter().enumerate() {
            let (branch, more) = if i + 1 == n {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            write!(f, "{indent}{branch}")?;
            let extra = format!(" ({:?}, restarts {})", info.restart, info.restarts);
            match sub {
                Some(tree) => {
                    tree.header(f, &info.id, &extra)?;
                    tree.write_children(f, &format!("{indent}{more}"))?;
                }
                None => {
                    let status = match info.status {
                        ChildStatus::Running(pid) => pid.to_string(),
                        ChildStatus::Restarting => "restarting".to_owned(),
                        ChildStatus::Undefined => "undefined".to_owned(),
                    };
                    writeln!(f, "{} {status} {:?}{extra}", info.id, info.kind)?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.header(f, self.label.as_deref().unwrap_or("supervisor"), "")?;
        self.write_children(f, "")
    }
}
