//! The binary end to end at tiny sizes: every runtime, every workload
//! (the fresh-process ones through `--child`), JSON out.

use std::process::Command;

fn peers() -> Command {
    Command::new(env!("CARGO_BIN_EXE_corelet-peers"))
}

#[test]
fn tiny_run_prints_one_json_object_per_workload() {
    let out = peers()
        .args(["--sizes", "tiny", "--rounds", "1", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 13, "{stdout}");
    for v in &lines {
        assert!(v["corelet"].as_f64().unwrap() > 0.0 || v["workload"] == "idle_memory");
        assert_eq!(v["peers"].as_object().unwrap().len(), 3, "{v}");
        assert!(v["ratio"].is_number(), "{v}");
        let unit = if v["workload"] == "idle_memory" {
            "bytes"
        } else {
            "ns"
        };
        assert_eq!(v["unit"], unit);
    }
}

#[test]
fn child_reports_a_result_or_fails_with_status_2() {
    let ok = peers()
        .args(["--child", "ractor", "skynet", "tiny"])
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("result "));
    let bad = peers()
        .args(["--child", "corelet", "skynet", "no-such-profile"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn unknown_arguments_fail() {
    let out = peers().arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}
