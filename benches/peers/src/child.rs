//! Workloads measured in a fresh process: this binary re-executes itself
//! with the hidden `--child` subcommand, under a time and memory limit.

use crate::check::{BenchError, Ctx, Result};
use crate::harness::Session;
use crate::on_corelet;
use crate::rss;
use crate::workload::{Kind, Sizes, Workload};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the child is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildJob {
    /// The runtime.
    pub kind: Kind,
    /// The workload.
    pub workload: Workload,
    /// The size profile (`full`, `quick`, `tiny`).
    pub profile: String,
    /// Pin corelet's shards.
    pub pin: bool,
    /// corelet's shard count for skynet (scaling); 2 otherwise.
    pub shards: usize,
}

impl ChildJob {
    /// The arguments after `--child`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            self.kind.name().to_owned(),
            self.workload.name().to_owned(),
            self.profile.clone(),
            "--shards".to_owned(),
            self.shards.to_string(),
        ];
        if self.pin {
            args.push("--pin".to_owned());
        }
        args
    }

    /// Parses [`ChildJob::to_args`].
    pub fn from_args(args: &[String]) -> Result<ChildJob> {
        let bad = || BenchError(format!("bad --child arguments: {args:?}"));
        let kind = args.first().and_then(|s| Kind::parse(s)).ok_or_else(bad)?;
        let workload = args
            .get(1)
            .and_then(|s| Workload::parse(s))
            .ok_or_else(bad)?;
        let profile = args.get(2).cloned().ok_or_else(bad)?;
        let mut job = ChildJob {
            kind,
            workload,
            profile,
            pin: false,
            shards: 2,
        };
        let mut rest = args[3..].iter();
        while let Some(a) = rest.next() {
            match a.as_str() {
                "--pin" => job.pin = true,
                "--shards" => {
                    job.shards = rest
                        .next()
                        .and_then(|s| s.parse().ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(bad)?;
                }
                _ => return Err(bad()),
            }
        }
        Ok(job)
    }

    /// Runs the job in this process and returns the result in the
    /// workload's unit.
    pub fn run_here(&self) -> Result<f64> {
        let sizes = Sizes::by_name(&self.profile).ctx("size profile")?;
        if self.kind == Kind::Corelet && self.workload == Workload::Skynet && self.shards != 2 {
            let rt = on_corelet::build(self.shards, self.pin)?;
            return on_corelet::skynet(&rt, sizes.skynet_leaves).map(|t| t.per_unit());
        }
        let session = Session::new(self.kind, self.pin)?;
        session
            .run(self.workload, &sizes)?
            .ok_or_else(|| BenchError(format!("{} cannot run {}", self.kind, self.workload)))
    }
}

/// How a child run ended without a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildFailure {
    /// It hit a limit (time, memory) or was killed by a signal, such as
    /// the kernel's out-of-memory killer: the runtime is left out, with
    /// the reason.
    Limit(String),
    /// It failed (a wrong answer, an error): the whole run aborts.
    Failed(BenchError),
}

/// The limits a child runs under.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall time.
    pub time: Duration,
    /// Resident memory.
    pub memory: u64,
}

impl Limits {
    /// `time`, and three quarters of the memory available now.
    pub fn new(time: Duration) -> Limits {
        let available = rss::available_bytes().unwrap_or(8 << 30);
        Limits {
            time,
            memory: available / 4 * 3,
        }
    }
}

/// Runs `job` in a fresh copy of this binary and returns its result.
pub fn run(job: &ChildJob, limits: Limits) -> std::result::Result<f64, ChildFailure> {
    let exe = std::env::current_exe()
        .ctx("current_exe")
        .map_err(ChildFailure::Failed)?;
    let mut cmd = Command::new(exe);
    cmd.arg("--child").args(job.to_args());
    let what = format!("{} {}", job.kind, job.workload);
    let out = run_command(cmd, limits, &what)?;
    parse_result(&out).map_err(ChildFailure::Failed)
}

/// Runs `cmd` (stdin closed, stderr inherited) under `limits` and returns
/// its standard output; `what` names it in errors.
pub fn run_command(
    mut cmd: Command,
    limits: Limits,
    what: &str,
) -> std::result::Result<String, ChildFailure> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ctx("starting a child process")
        .map_err(ChildFailure::Failed)?;
    // Read stdout on a thread, so that a chatty child never blocks on a
    // full pipe while we wait for it.
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_string(&mut out);
        }
        out
    });
    let started = Instant::now();
    let mut peak = 0;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(ChildFailure::Failed(BenchError(format!("waiting: {e}")))),
        }
        peak = peak.max(rss::resident_bytes_of(child.id()).unwrap_or(0));
        let over = if started.elapsed() > limits.time {
            Some(format!("took more than {} s", limits.time.as_secs()))
        } else if peak > limits.memory {
            Some(format!(
                "used more than {:.1} GiB",
                limits.memory as f64 / (1u64 << 30) as f64
            ))
        } else {
            None
        };
        if let Some(why) = over {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ChildFailure::Limit(why));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(match status.code() {
            Some(code) => ChildFailure::Failed(BenchError(format!(
                "{what} in a child process failed (exit {code})"
            ))),
            None => ChildFailure::Limit(format!(
                "killed by a signal after {:.0} s at {:.1} GiB (out of memory?)",
                started.elapsed().as_secs_f64(),
                peak as f64 / (1u64 << 30) as f64
            )),
        });
    }
    Ok(out)
}

/// The line a child prints on success.
pub fn result_line(value: f64) -> String {
    format!("result {value}")
}

fn parse_result(out: &str) -> Result<f64> {
    out.lines()
        .find_map(|l| l.strip_prefix("result "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| BenchError(format!("no result from the child: {out:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_arguments_round_trip() {
        let job = ChildJob {
            kind: Kind::Kameo,
            workload: Workload::Skynet,
            profile: "tiny".into(),
            pin: true,
            shards: 8,
        };
        assert_eq!(ChildJob::from_args(&job.to_args()).unwrap(), job);
        assert!(ChildJob::from_args(&["nope".into()]).is_err());
    }

    #[test]
    fn result_lines_parse() {
        assert_eq!(parse_result(&result_line(12.5)).unwrap(), 12.5);
        assert!(parse_result("garbage").is_err());
    }

    #[test]
    fn corelet_skynet_on_four_shards() {
        let job = ChildJob {
            kind: Kind::Corelet,
            workload: Workload::Skynet,
            profile: "tiny".into(),
            pin: false,
            shards: 4,
        };
        assert!(job.run_here().unwrap() > 0.0);
    }
}
