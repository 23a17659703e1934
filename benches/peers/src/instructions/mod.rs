//! `corelet-peers --instructions`: a deterministic cost view of the core
//! paths, for judging optimisations on a machine whose wall time is noisy.
//!
//! Each path (local tell, local ask round trip, spawn + message + exit,
//! cross-shard tell, cross-shard ask) runs on each runtime that has it in
//! a child process under `valgrind --tool=callgrind --instr-atstart=no`,
//! at two sizes. The child turns counting on around the timed part of the
//! workload only (a client request, see [`callgrind`]; the workloads'
//! [`crate::check::Window`]), so the count is of every thread's
//! instructions while it runs. Instructions per operation =
//! (Ir(large) − Ir(small)) / (large − small), so spawning the counter, the
//! final ask and every other fixed cost cancel.
//!
//! Valgrind runs one thread at a time, and a glommio executor that sleeps
//! blocks in `io_uring_enter`, which valgrind does not treat as blocking:
//! the sleeper keeps valgrind's lock and every other thread hangs
//! (glommio issue #582). So no executor may sleep while another thread
//! still has to run, and polling must not be counted. How each case is
//! handled (see [`child`]):
//! - **Same-shard paths** run inside one executor from start to end of the
//!   count. corelet's shard spins 100 ms before parking (long enough to
//!   receive its job), runs the path once to warm up, waits out the spin
//!   so that its pump sleeps (as it does natively during a long same-shard
//!   workload), counts the second run and ends the process from the shard.
//!   Raw glommio runs them as a job on its executor thread, which waits
//!   for jobs on a plain channel, not in the kernel's ring. Stakker is one
//!   thread. These counts are exact: two runs print the same numbers.
//! - **corelet's cross-shard paths** need both shards awake: each runs a
//!   hand-over task that, on every pass of its executor's queue, gives
//!   the CPU away (`sched_yield`, which valgrind honours by switching
//!   threads) and stays runnable, so neither shard sleeps and neither
//!   polls through a whole valgrind time slice. The count then includes,
//!   per pass, one poll of the hand-over task and, on an idle shard, one
//!   poll of its pump looking at empty rings: an upper bound that moves
//!   with the real cost. How many passes the shards make while waiting
//!   for each other still depends a little on timing (glommio's
//!   preemption timer), so two runs agree within about 3 %, not exactly.
//! - **Raw glommio's cross-executor paths are not counted**: a glommio
//!   executor notices `shared_channel` traffic from its idle polling loop
//!   (or at its preemption timer, when a task keeps it busy), and that
//!   loop holds the CPU for a whole valgrind time slice, so the count would
//!   measure valgrind's schedule (about 2.5 M instructions per ask), not
//!   glommio.
//!
//! Valgrind runs with `--fair-sched=yes`, so threads take turns in a fixed
//! order.

pub mod callgrind;
pub mod child;

use crate::check::{BenchError, Ctx, Result};
use crate::child::{run_command, ChildFailure, Limits};
use crate::workload::{Kind, Workload};
use serde_json::{json, Map, Value};
use std::fmt::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The environment variable naming a folder where callgrind's output
/// files are kept (`callgrind.<runtime>.<path>.<n>.out`, for
/// `callgrind_annotate`); without it they are deleted.
pub const KEEP_DIR: &str = "CORELET_PEERS_CALLGRIND_DIR";

/// The paths counted, in table order.
pub const PATHS: [Workload; 5] = [
    Workload::LocalTell,
    Workload::LocalAsk,
    Workload::SpawnExit,
    Workload::CrossTell,
    Workload::CrossAsk,
];

/// The runtimes counted.
pub const KINDS: [Kind; 3] = [Kind::Corelet, Kind::Glommio, Kind::Stakker];

/// Whether `kind` is counted on `path`: stakker has no cross-thread
/// paths, and raw glommio's are not counted (see the module docs).
pub fn counts(kind: Kind, path: Workload) -> bool {
    let cross = matches!(path, Workload::CrossTell | Workload::CrossAsk);
    KINDS.contains(&kind) && kind.runs(path) && !(kind == Kind::Glommio && cross)
}

/// Why `kind` has no count on `path`, for the table.
fn missing(kind: Kind, path: Workload) -> &'static str {
    if !kind.runs(path) {
        "n/a"
    } else if !counts(kind, path) {
        "not counted"
    } else {
        "—"
    }
}

/// Issue 7's ceiling for corelet on `path`, in instructions per
/// operation.
pub fn ceiling(path: Workload) -> Option<f64> {
    match path {
        Workload::LocalTell => Some(60.0),
        Workload::LocalAsk => Some(250.0),
        Workload::SpawnExit => Some(600.0),
        _ => None,
    }
}

/// The (small, large) operation counts of `path`: large enough that the
/// difference dwarfs any wobble, small enough that the slowest runtime's
/// large run takes seconds under callgrind. `tiny` is for the CLI test.
pub fn sizes(path: Workload, tiny: bool) -> (u64, u64) {
    let (small, large) = match path {
        Workload::LocalTell | Workload::CrossTell => (20_000, 100_000),
        Workload::LocalAsk => (10_000, 50_000),
        Workload::SpawnExit => (5_000, 25_000),
        _ => (4_000, 20_000),
    };
    if tiny {
        (small / 20, large / 20)
    } else {
        (small, large)
    }
}

/// What to count.
#[derive(Clone, Debug)]
pub struct Options {
    /// The runtimes (those of [`KINDS`]).
    pub kinds: Vec<Kind>,
    /// The paths (those of [`PATHS`]).
    pub paths: Vec<Workload>,
    /// Tiny sizes (a smoke test).
    pub tiny: bool,
}

/// One path on one runtime: the two totals and the slope.
#[derive(Clone, Debug, PartialEq)]
pub struct Count {
    /// The path.
    pub path: Workload,
    /// The runtime.
    pub kind: Kind,
    /// (small, large) operations.
    pub sizes: (u64, u64),
    /// Ir of the counted run at each size.
    pub ir: (u64, u64),
}

impl Count {
    /// Instructions per operation.
    pub fn per_op(&self) -> f64 {
        (self.ir.1 as f64 - self.ir.0 as f64) / (self.sizes.1 - self.sizes.0) as f64
    }
}

/// Whether valgrind answers on `PATH`.
pub fn valgrind_installed() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Counts every selected path on every selected runtime.
pub fn run(opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Vec<Count>> {
    if !callgrind::supported() {
        return Err(BenchError("--instructions needs an x86_64 build".into()));
    }
    if !valgrind_installed() {
        return Err(BenchError(
            "--instructions needs valgrind on PATH (apt-get install valgrind)".into(),
        ));
    }
    // Callgrind's output files are kept for `callgrind_annotate` when
    // KEEP_DIR names a folder, and removed otherwise.
    let kept = std::env::var_os(KEEP_DIR).map(PathBuf::from);
    let dir = kept.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("corelet-instructions-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).ctx("creating a folder for callgrind's output")?;
    let mut found = Vec::new();
    for &path in PATHS.iter().filter(|p| opts.paths.contains(p)) {
        for &kind in KINDS.iter().filter(|k| opts.kinds.contains(k)) {
            if !counts(kind, path) {
                continue;
            }
            let sizes = sizes(path, opts.tiny);
            progress(&format!(
                "callgrind: {kind} {path} at {} and {}",
                sizes.0, sizes.1
            ));
            let small = total(&dir, kind, path, sizes.0)?;
            let large = total(&dir, kind, path, sizes.1)?;
            found.push(Count {
                path,
                kind,
                sizes,
                ir: (small, large),
            });
        }
    }
    if kept.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(found)
}

/// The Ir of one counted run under callgrind.
fn total(dir: &std::path::Path, kind: Kind, path: Workload, n: u64) -> Result<u64> {
    let exe = std::env::current_exe().ctx("current_exe")?;
    let out: PathBuf = dir.join(format!("callgrind.{kind}.{path}.{n}.out"));
    let job = child::Job { kind, path, n };
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "-q",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--fair-sched=yes",
    ])
    .arg(format!("--callgrind-out-file={}", out.display()))
    .arg(exe)
    .arg("--instructions-child")
    .args(job.to_args());
    let what = format!("callgrind {kind} {path} {n}");
    run_command(cmd, Limits::new(Duration::from_secs(600)), &what).map_err(|f| match f {
        ChildFailure::Failed(e) => e,
        ChildFailure::Limit(why) => BenchError(format!("{what}: {why}")),
    })?;
    callgrind::total_ir(&out)
}

/// The counts as a table, corelet's ceilings beside its numbers.
pub fn text(counts: &[Count]) -> String {
    let mut out = String::from(
        "instructions per operation (callgrind; (Ir(large) - Ir(small)) / (large - small))\n",
    );
    let _ = writeln!(
        out,
        "{:<22} {:>10} {:>9} {:>13} {:>9}  sizes",
        "path", "corelet", "ceiling", "raw glommio", "stakker"
    );
    for path in PATHS {
        let row: Vec<_> = counts.iter().filter(|c| c.path == path).collect();
        let Some(first) = row.first() else {
            continue;
        };
        let cell = |k: Kind| {
            row.iter()
                .find(|c| c.kind == k)
                .map(|c| format!("{:.1}", c.per_op()))
                .unwrap_or_else(|| missing(k, path).to_owned())
        };
        let _ = writeln!(
            out,
            "{:<22} {:>10} {:>9} {:>13} {:>9}  {}/{}",
            path.title(),
            cell(Kind::Corelet),
            ceiling(path).map_or("—".to_owned(), |c| format!("{c:.0}")),
            cell(Kind::Glommio),
            cell(Kind::Stakker),
            first.sizes.0,
            first.sizes.1,
        );
    }
    out.push_str(
        "same-shard paths: exact; cross-shard: both shards kept awake by a hand-over task, \
         so the count includes one poll of it (and of an idle shard's pump) per pass, \
         within about 3 % from run to run; raw glommio's cross-executor paths are not \
         counted (its polling loop would be measured, see the crate docs)\n",
    );
    out
}

/// One JSON object per path: per-operation counts per runtime, corelet's
/// ceiling, the sizes and the raw totals.
pub fn json_lines(counts: &[Count]) -> Vec<String> {
    PATHS
        .iter()
        .filter_map(|&path| {
            let row: Vec<_> = counts.iter().filter(|c| c.path == path).collect();
            let first = row.first()?;
            let (mut per_op, mut ir) = (Map::new(), Map::new());
            for c in &row {
                per_op.insert(c.kind.name().to_owned(), json!(c.per_op()));
                ir.insert(c.kind.name().to_owned(), json!([c.ir.0, c.ir.1]));
            }
            Some(
                json!({
                    "path": path.name(),
                    "unit": "instructions per operation",
                    "per_op": Value::Object(per_op),
                    "ceiling": ceiling(path),
                    "sizes": [first.sizes.0, first.sizes.1],
                    "ir": Value::Object(ir),
                })
                .to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(kind: Kind, ir: (u64, u64)) -> Count {
        Count {
            path: Workload::LocalTell,
            kind,
            sizes: (1_000, 3_000),
            ir,
        }
    }

    #[test]
    fn fixed_costs_cancel_in_the_slope() {
        let c = count(
            Kind::Corelet,
            (1_000_000 + 400 * 1_000, 1_000_000 + 400 * 3_000),
        );
        assert_eq!(c.per_op(), 400.0);
    }

    #[test]
    fn table_and_json_show_ceilings_and_missing_runtimes() {
        let counts = [
            count(Kind::Corelet, (100_000, 220_000)),
            count(Kind::Stakker, (10_000, 50_000)),
        ];
        let t = text(&counts);
        assert!(t.contains("local tell"), "{t}");
        assert!(t.contains("60.0") && t.contains("20.0"), "{t}");
        assert!(t.contains(" 60 "), "{t}");
        let lines = json_lines(&counts);
        assert_eq!(lines.len(), 1);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["path"], "local_tell");
        assert_eq!(v["per_op"]["corelet"], 60.0);
        assert_eq!(v["ceiling"], 60.0);
        assert!(v["per_op"].get("glommio").is_none());
        assert_eq!(v["ir"]["stakker"][1], 50_000);
    }

    #[test]
    fn child_arguments_round_trip_and_bad_ones_fail() {
        let job = child::Job {
            kind: Kind::Glommio,
            path: Workload::CrossAsk,
            n: 7,
        };
        assert_eq!(child::Job::from_args(&job.to_args()).unwrap(), job);
        assert!(child::Job::from_args(&["glommio".into()]).is_err());
        let stakker_cross = child::Job {
            kind: Kind::Stakker,
            path: Workload::CrossTell,
            n: 7,
        };
        assert!(stakker_cross.run_here().is_err());
        assert!(!counts(Kind::Actix, Workload::LocalTell));
        assert!(!counts(Kind::Glommio, Workload::CrossAsk));
        assert!(counts(Kind::Corelet, Workload::CrossAsk));
        assert_eq!(missing(Kind::Glommio, Workload::CrossTell), "not counted");
        assert_eq!(missing(Kind::Stakker, Workload::CrossTell), "n/a");
    }
}
