//! Talking to callgrind: client requests from inside the measured program
//! (the instruction sequence of valgrind's `callgrind.h`, a no-op outside
//! valgrind) and reading the instruction total of its output file.

use crate::check::{BenchError, Ctx, Result};
use std::path::Path;

/// Callgrind's client requests (`callgrind.h`: tool base `'C' 'T'`, then
/// in order DUMP_STATS, ZERO_STATS, TOGGLE_COLLECT, DUMP_STATS_AT,
/// START_INSTRUMENTATION, STOP_INSTRUMENTATION).
const TOOL_BASE: u64 = ((b'C' as u64) << 24) | ((b'T' as u64) << 16);
const START_INSTRUMENTATION: u64 = TOOL_BASE + 4;
const STOP_INSTRUMENTATION: u64 = TOOL_BASE + 5;

/// Sends client request `request` (no arguments) to valgrind. Natively
/// the sequence rotates `rdi` by 128 bits in all (back to its value) and
/// swaps `rbx` with itself: nothing happens.
#[cfg(target_arch = "x86_64")]
fn client_request(request: u64) {
    let args: [u64; 6] = [request, 0, 0, 0, 0, 0];
    // SAFETY: the asm reads the six words of `args` (alive for the whole
    // block) and changes no register but `rdx` (declared as an output) and
    // the flags; `rdi` and `rbx` end where they began (four rotations by
    // 3 + 13 + 61 + 51 = 128 bits, and `xchg rbx, rbx`). Under valgrind the
    // sequence is a client request: valgrind reads `args` and writes the
    // answer into `rdx`.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") 0u64 => _,
            options(nostack),
        );
    }
}

/// Client requests exist only on x86_64 here; elsewhere the mode refuses
/// to run (see [`supported`]).
#[cfg(not(target_arch = "x86_64"))]
fn client_request(_request: u64) {}

/// Whether this build can talk to callgrind.
pub fn supported() -> bool {
    cfg!(target_arch = "x86_64")
}

/// Starts counting instructions (all threads), under callgrind run with
/// `--instr-atstart=no`.
pub fn start() {
    client_request(START_INSTRUMENTATION);
}

/// Stops counting instructions.
pub fn stop() {
    client_request(STOP_INSTRUMENTATION);
}

/// The `Ir` total of a callgrind output file (its `totals:` or
/// `summary:` line).
pub fn total_ir(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path).ctx("reading callgrind's output")?;
    parse_total(&text).ok_or_else(|| BenchError(format!("no totals line in {}", path.display())))
}

fn parse_total(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_harmless_natively() {
        let before = std::hint::black_box(41u64);
        start();
        stop();
        assert_eq!(std::hint::black_box(before) + 1, 42);
    }

    #[test]
    fn totals_are_read_from_either_line() {
        assert_eq!(
            parse_total("events: Ir\nfl=x\n1 2\ntotals: 12345\n"),
            Some(12345)
        );
        assert_eq!(parse_total("events: Ir\nsummary: 99\n"), Some(99));
        assert_eq!(parse_total("events: Ir\n"), None);
    }
}
