//! The Go peer: `benches/go/` (goroutines and channels), built with the
//! `go` on `PATH` once per run and run once per workload in a fresh
//! process. Single-thread workloads run with `GOMAXPROCS=1`, the
//! cross-thread ones and skynet with `GOMAXPROCS=2` (the counterpart of
//! corelet's one and two shards). Without `go` the harness leaves Go out
//! and says so.

use crate::check::{BenchError, Ctx, Result};
use crate::child::{self, ChildFailure, Limits};
use crate::workload::{Sizes, Workload};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The Go program's sources.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../go")
}

/// Whether a `go` toolchain answers on `PATH`.
pub fn installed() -> bool {
    Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Builds the Go program (once per process) and returns the binary, or
/// why it cannot be run.
pub fn binary() -> std::result::Result<PathBuf, String> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> std::result::Result<PathBuf, String> {
    if !installed() {
        return Err(
            "`go` not found on PATH (install Go, e.g. `apt-get install golang-go`, \
                    to include it)"
                .to_owned(),
        );
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = exe
        .parent()
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    let out = dir.join("corelet-peers-go");
    let mut cmd = Command::new("go");
    cmd.args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(source_dir())
        // Standard library only: never reach for the network.
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod");
    if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
        cmd.env("GOCACHE", dir.join("go-build-cache"));
    }
    let built = cmd.output().map_err(|e| format!("running go build: {e}"))?;
    if !built.status.success() {
        return Err(format!(
            "go build failed: {}",
            String::from_utf8_lossy(&built.stderr).trim()
        ));
    }
    Ok(out)
}

/// `GOMAXPROCS` for `workload`: two for the cross-thread workloads and
/// skynet, one otherwise.
pub fn gomaxprocs(workload: Workload) -> u32 {
    match workload {
        Workload::CrossTell | Workload::CrossAsk | Workload::Skynet => 2,
        _ => 1,
    }
}

/// The Go peer's session: the built binary and the limits of each run.
pub struct Session {
    binary: PathBuf,
    limits: Limits,
}

impl Session {
    /// Builds the Go program (or fails saying why it cannot run).
    pub fn new() -> Result<Session> {
        Ok(Session {
            binary: binary().map_err(BenchError)?,
            limits: Limits::new(Duration::from_secs(300)),
        })
    }

    /// Runs one workload in a fresh Go process; the result is in the
    /// workload's unit.
    pub fn run(&self, workload: Workload, sizes: &Sizes) -> Result<Option<f64>> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(["-workload", workload.name(), "-sizes", &sizes.to_json()])
            .env("GOMAXPROCS", gomaxprocs(workload).to_string());
        let what = format!("go {workload}");
        let out = child::run_command(cmd, self.limits, &what).map_err(|f| match f {
            ChildFailure::Failed(e) => e,
            ChildFailure::Limit(why) => BenchError(format!("{what}: {why}")),
        })?;
        parse(&out, workload).map(Some)
    }
}

/// The value of the Go program's JSON line for `workload`.
fn parse(out: &str, workload: Workload) -> Result<f64> {
    let line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .ctx("the Go peer's JSON line")?;
    let v: serde_json::Value = serde_json::from_str(line).ctx("the Go peer's JSON")?;
    if v["workload"] != workload.name() || v["unit"] != workload.unit().name() {
        return Err(BenchError(format!("the Go peer answered {line}")));
    }
    v["value"]
        .as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| BenchError(format!("no value in {line}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_go_line_and_rejects_a_mismatch() {
        let line = r#"{"workload":"skynet","unit":"ns","value":8.5e8,"gomaxprocs":2}"#;
        assert_eq!(parse(line, Workload::Skynet).unwrap(), 8.5e8);
        assert!(parse(line, Workload::LocalTell).is_err());
        assert!(parse("garbage", Workload::Skynet).is_err());
        assert_eq!(gomaxprocs(Workload::PingPong), 1);
        assert_eq!(gomaxprocs(Workload::CrossAsk), 2);
    }
}
