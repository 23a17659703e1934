//! The results as a text table, as JSON lines, and as a Markdown table.

use crate::harness::Results;
use crate::workload::{Kind, Unit, Workload};
use serde_json::{json, Map, Value};
use std::fmt::Write;

/// A value in its unit, scaled for reading: `12.3 ns`, `4.56 µs`,
/// `245.1 ms`, `851 B`.
pub fn human(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Bytes => format!("{value:.0} B"),
        Unit::Ns if value >= 1e6 => format!("{:.1} ms", value / 1e6),
        Unit::Ns if value >= 1e3 => format!("{:.2} µs", value / 1e3),
        Unit::Ns => format!("{value:.1} ns"),
    }
}

/// One runtime's cell: the median, or why it is missing (`n/a`: the
/// runtime cannot express the workload; `skipped`: it hit a limit;
/// `absent`: not installed; `—`: not run).
fn cell(results: &Results, w: Workload, k: Kind) -> String {
    match (results.median(w, k), results.skipped.get(&(w, k))) {
        (Some(v), _) => human(v, w.unit()),
        (None, Some(_)) => "skipped".to_owned(),
        (None, None) if !k.runs(w) => "n/a".to_owned(),
        (None, None) if results.absent.contains_key(&k) => "absent".to_owned(),
        (None, None) => "—".to_owned(),
    }
}

/// The workloads that have any result, in table order.
fn measured(results: &Results) -> Vec<Workload> {
    Workload::ALL
        .into_iter()
        .filter(|w| {
            Kind::ALL.iter().any(|k| {
                results.samples.contains_key(&(*w, *k)) || results.skipped.contains_key(&(*w, *k))
            })
        })
        .collect()
}

/// A ratio cell, three decimals, or `—`.
fn ratio_cell(r: Option<f64>) -> String {
    r.map_or("—".to_owned(), |r| format!("{r:.3}"))
}

/// A plain-text table of medians, best peer and ratios, one row per
/// workload, followed by notes (derived throughput, runtimes left out).
pub fn text(results: &Results) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<36}", "workload (median)");
    for k in Kind::ALL {
        let _ = write!(out, " {:>11}", k.title());
    }
    let _ = writeln!(out, "  {:<7} {:>8} {:>10}", "best", "ratio", "vs glommio");
    for w in measured(results) {
        let best = results.best_peer(w).map_or("—", |(k, _)| k.name());
        let _ = write!(out, "{:<36}", format!("{}, {}", w.title(), w.per()));
        for k in Kind::ALL {
            let _ = write!(out, " {:>11}", cell(results, w, k));
        }
        let _ = writeln!(
            out,
            "  {:<7} {:>8} {:>10}",
            best,
            ratio_cell(results.ratio(w)),
            ratio_cell(results.glommio_ratio(w)),
        );
    }
    out.push_str(
        "ratio = corelet / best of actix, ractor, kameo and Go; \
         vs glommio = corelet / raw glommio (lower is better for both)\n",
    );
    out.push_str(&notes(results));
    out
}

/// Notes below the tables: derived cross-shard throughput and the
/// runtimes left out of a workload or of the whole run.
pub fn notes(results: &Results) -> String {
    let mut out = String::new();
    if let Some(ns) = results.median(Workload::CrossTell, Kind::Corelet) {
        let _ = write!(
            out,
            "cross-shard tell: corelet {:.1} M msg/s (2 shards, one pair)",
            1e3 / ns
        );
        if let Some(v) = results.median(Workload::CrossTell, Kind::Glommio) {
            let _ = write!(out, "; raw glommio {:.1} M msg/s", 1e3 / v);
        }
        if let Some((k, v)) = results.best_peer(Workload::CrossTell) {
            let _ = write!(out, "; best peer {k} {:.1} M msg/s", 1e3 / v);
        }
        out.push('\n');
    }
    for (k, why) in &results.absent {
        let _ = writeln!(out, "{k} left out of this run: {why}");
    }
    for ((w, k), why) in &results.skipped {
        let _ = writeln!(out, "{k} left out of {w}: {why}");
    }
    out
}

/// One JSON object per workload: workload, unit, corelet, peers (every
/// other runtime measured, raw glommio and stakker included), best_peer
/// and ratio (of actix, ractor, kameo and Go), glommio_ratio, and
/// left_out: each runtime whose run in a child hit a limit, with why.
pub fn json_lines(results: &Results) -> Vec<String> {
    measured(results)
        .into_iter()
        .map(|w| {
            let mut peers = Map::new();
            for k in Kind::ALL.into_iter().filter(|k| *k != Kind::Corelet) {
                if let Some(v) = results.median(w, k) {
                    peers.insert(k.name().to_owned(), json!(v));
                }
            }
            let left_out: Map<String, Value> = Kind::ALL
                .into_iter()
                .filter_map(|k| {
                    let why = results.skipped.get(&(w, k))?;
                    Some((k.name().to_owned(), json!(why)))
                })
                .collect();
            let line = json!({
                "workload": w.name(),
                "unit": w.unit().name(),
                "corelet": results.median(w, Kind::Corelet),
                "peers": Value::Object(peers),
                "best_peer": results.best_peer(w).map(|(k, _)| k.name()),
                "ratio": results.ratio(w),
                "glommio_ratio": results.glommio_ratio(w),
                "left_out": Value::Object(left_out),
                "pinned": results.pinned,
            });
            line.to_string()
        })
        .collect()
}

/// The same table in Markdown.
pub fn markdown(results: &Results) -> String {
    let mut out = String::from("| workload | unit |");
    for k in Kind::ALL {
        let _ = write!(out, " {} |", k.title());
    }
    out.push_str(
        " best of actix, ractor, kameo, Go | corelet / best | corelet / raw glommio |\n|---|---|",
    );
    out.push_str(&"---:|".repeat(Kind::ALL.len()));
    out.push_str("---|---:|---:|\n");
    for w in measured(results) {
        let best = results.best_peer(w).map_or("—", |(k, _)| k.title());
        let _ = write!(out, "| {} | {} |", w.title(), w.per());
        for k in Kind::ALL {
            let _ = write!(out, " {} |", cell(results, w, k));
        }
        let _ = writeln!(
            out,
            " {best} | {} | {} |",
            ratio_cell(results.ratio(w)),
            ratio_cell(results.glommio_ratio(w)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Results {
        let mut r = Results::default();
        r.samples
            .insert((Workload::LocalAsk, Kind::Corelet), vec![50.0]);
        r.samples
            .insert((Workload::LocalAsk, Kind::Actix), vec![400.0]);
        r.samples
            .insert((Workload::LocalAsk, Kind::Ractor), vec![700.0]);
        r.samples
            .insert((Workload::LocalAsk, Kind::Glommio), vec![100.0]);
        r.absent.insert(Kind::Go, "`go` not found on PATH".into());
        r.skipped.insert(
            (Workload::Skynet, Kind::Ractor),
            "took more than 60 s".into(),
        );
        r.samples
            .insert((Workload::Skynet, Kind::Corelet), vec![2e8]);
        r
    }

    #[test]
    fn json_has_the_fields_of_the_spec() {
        let lines = json_lines(&sample());
        assert_eq!(lines.len(), 2);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["workload"], "local_ask");
        assert_eq!(v["unit"], "ns");
        assert_eq!(v["corelet"], 50.0);
        assert_eq!(v["peers"]["actix"], 400.0);
        assert!(v["peers"].get("kameo").is_none());
        assert_eq!(v["best_peer"], "actix");
        assert_eq!(v["ratio"], 0.125);
        assert_eq!(v["glommio_ratio"], 0.5);
        assert_eq!(v["peers"]["glommio"], 100.0);
        let skynet: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(skynet["best_peer"], Value::Null);
        assert!(skynet["peers"].as_object().unwrap().is_empty());
        assert_eq!(skynet["left_out"]["ractor"], "took more than 60 s");
        assert!(v["left_out"].as_object().unwrap().is_empty());
        assert_eq!(v["pinned"], false);
    }

    #[test]
    fn text_mentions_skips_and_units() {
        let t = text(&sample());
        assert!(t.contains("50.0 ns") && t.contains("200.0 ms"));
        assert!(t.contains("ractor left out of skynet: took more than 60 s"));
        assert!(t.contains("go left out of this run: `go` not found on PATH"));
        assert!(t.contains("absent"));
        let md = markdown(&sample());
        assert!(md.contains("| local ask | per ask | 50.0 ns | 100.0 ns | — |"));
        assert!(md.contains("| 0.125 | 0.500 |"));
        assert_eq!(human(851.0, Unit::Bytes), "851 B");
        assert_eq!(human(12_345.0, Unit::Ns), "12.35 µs");
    }
}
