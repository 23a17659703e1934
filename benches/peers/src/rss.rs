//! Resident memory of this process and of a child, from `/proc`.

use crate::check::{BenchError, Ctx, Result};

/// The `VmRSS` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// This process's resident set size in bytes (`VmRSS` of
/// `/proc/self/status`).
pub fn resident_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ctx("reading /proc/self/status")?;
    parse_vm_rss(&status).ok_or_else(|| BenchError("no VmRSS in /proc/self/status".into()))
}

/// The resident set size of process `pid` in bytes, if it can be read.
pub fn resident_bytes_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

/// Available memory of the machine in bytes (`MemAvailable`), if known.
pub fn available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Growth from `before` to `after`, per item.
pub fn per_item(before: u64, after: u64, items: u64) -> f64 {
    (after as f64 - before as f64) / items.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_rss() {
        assert!(resident_bytes().unwrap() > 0);
        assert_eq!(parse_vm_rss("Name: x\nVmRSS:\t  12 kB\n"), Some(12 * 1024));
    }
}
