//! The crash test: 20 SIGKILL/restart cycles of the server binary under
//! concurrent acknowledged writes (see `src/crashtest.rs`).

use corelet_kv::crashtest::{remove, run, temp_dir, CrashConfig};
use std::time::Duration;

#[test]
fn twenty_kill_restart_cycles_lose_nothing_acknowledged() {
    let seed = corelet_kv::now_ms();
    let cfg = CrashConfig {
        binary: env!("CARGO_BIN_EXE_corelet-kv").into(),
        dir: temp_dir("crash-test"),
        shards: 3,
        clients: 4,
        max_run: Duration::from_millis(200),
        seed,
    };
    let mut failures = Vec::new();
    let (passed, failed) = run(&cfg, 20, |line| failures.push(line.to_owned()));
    remove(&cfg.dir);
    println!("{passed} passed, {failed} failed");
    assert_eq!((passed, failed), (20, 0), "seed {seed}: {failures:#?}");
}
