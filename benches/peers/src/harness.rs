//! Running the workloads: sessions per runtime, rounds, medians, and the
//! child processes that measure memory and skynet in a fresh process.

use crate::check::{BenchError, Result};
use crate::child::{self, ChildFailure, ChildJob, Limits};
use crate::workload::{Kind, Sizes, Workload};
use crate::{on_actix, on_corelet, on_glommio, on_go, on_kameo, on_ractor, on_stakker};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One runtime's state for a round: its runtime(s), built once and used
/// for every workload of the round.
pub enum Session {
    /// corelet: a one-shard and a two-shard runtime.
    Corelet(on_corelet::Session),
    /// actix: a system and one more arbiter.
    Actix(on_actix::Session),
    /// ractor: a two-worker tokio runtime.
    Ractor(on_ractor::Session),
    /// kameo: a two-worker tokio runtime.
    Kameo(on_kameo::Session),
    /// raw glommio: two executor threads.
    Glommio(on_glommio::Session),
    /// stakker: one `Stakker` on this thread.
    Stakker(Box<on_stakker::Session>),
    /// Go: the built program, one process per workload.
    Go(on_go::Session),
}

impl Session {
    /// Builds the runtime(s) of `kind`. `pin` applies to corelet.
    pub fn new(kind: Kind, pin: bool) -> Result<Session> {
        Ok(match kind {
            Kind::Corelet => Session::Corelet(on_corelet::Session::new(pin)?),
            Kind::Actix => Session::Actix(on_actix::Session::new()?),
            Kind::Ractor => Session::Ractor(on_ractor::Session::new()?),
            Kind::Kameo => Session::Kameo(on_kameo::Session::new()?),
            Kind::Glommio => Session::Glommio(on_glommio::Session::new()?),
            Kind::Stakker => Session::Stakker(Box::new(on_stakker::Session::new()?)),
            Kind::Go => Session::Go(on_go::Session::new()?),
        })
    }

    /// Runs one workload, checked; `None` if the runtime cannot express
    /// it.
    pub fn run(&self, workload: Workload, sizes: &Sizes) -> Result<Option<f64>> {
        match self {
            Session::Corelet(s) => s.run(workload, sizes),
            Session::Actix(s) => s.run(workload, sizes),
            Session::Ractor(s) => s.run(workload, sizes),
            Session::Kameo(s) => s.run(workload, sizes),
            Session::Glommio(s) => s.run(workload, sizes),
            Session::Stakker(s) => s.run(workload, sizes),
            Session::Go(s) => s.run(workload, sizes),
        }
    }
}

/// Whether `kind` can run on this machine; if not, why (Go needs `go`).
pub fn available(kind: Kind) -> std::result::Result<(), String> {
    match kind {
        Kind::Go => on_go::binary().map(|_| ()),
        _ => Ok(()),
    }
}

/// Whether `kind` runs every workload in a fresh process of its own
/// already (the Go peer), so the fresh-process workloads need no child.
fn own_process(kind: Kind) -> bool {
    kind == Kind::Go
}

/// What to run and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// Size profile: `full`, `quick` or `tiny`.
    pub profile: String,
    /// Measured rounds per runtime (after one warm-up round).
    pub rounds: usize,
    /// Pin corelet's shards to cores.
    pub pin: bool,
    /// The runtimes, in the order of the first round.
    pub kinds: Vec<Kind>,
    /// The workloads.
    pub workloads: Vec<Workload>,
    /// Wall-time limit of one child run (skynet, idle memory).
    pub child_time: Duration,
}

impl Options {
    /// The options of a normal run (`quick`: of `--quick`).
    pub fn new(quick: bool) -> Options {
        Options {
            profile: if quick { "quick" } else { "full" }.to_owned(),
            rounds: if quick { 3 } else { 5 },
            pin: false,
            kinds: Kind::ALL.to_vec(),
            workloads: Workload::ALL.to_vec(),
            child_time: Duration::from_secs(if quick { 60 } else { 300 }),
        }
    }

    /// The workload sizes of the profile.
    pub fn sizes(&self) -> Result<Sizes> {
        Sizes::by_name(&self.profile)
            .ok_or_else(|| BenchError(format!("unknown size profile {:?}", self.profile)))
    }
}

/// Everything measured in a run.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// Per (workload, runtime): one value per measured round.
    pub samples: BTreeMap<(Workload, Kind), Vec<f64>>,
    /// Per (workload, runtime) left out: why.
    pub skipped: BTreeMap<(Workload, Kind), String>,
    /// Runtimes left out of the whole run (not installed): why.
    pub absent: BTreeMap<Kind, String>,
    /// Wall time of the whole run.
    pub wall: Duration,
    /// Whether corelet's shards were pinned to cores.
    pub pinned: bool,
}

impl Results {
    /// The median of the rounds of `workload` on `kind`.
    pub fn median(&self, workload: Workload, kind: Kind) -> Option<f64> {
        self.samples.get(&(workload, kind)).and_then(|v| median(v))
    }

    /// The peer with the lowest median for `workload`, and that median.
    pub fn best_peer(&self, workload: Workload) -> Option<(Kind, f64)> {
        Kind::PEERS
            .into_iter()
            .filter_map(|k| self.median(workload, k).map(|v| (k, v)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// corelet's median over the best peer's (lower is better).
    pub fn ratio(&self, workload: Workload) -> Option<f64> {
        let corelet = self.median(workload, Kind::Corelet)?;
        let (_, best) = self.best_peer(workload)?;
        Some(corelet / best)
    }

    /// corelet's median over raw glommio's (lower is better; at most 1
    /// means the actor runtime costs nothing over hand-written tasks).
    pub fn glommio_ratio(&self, workload: Workload) -> Option<f64> {
        let corelet = self.median(workload, Kind::Corelet)?;
        Some(corelet / self.median(workload, Kind::Glommio)?)
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// The runtimes in the order of round `round`: rotated by one each
/// round, so no runtime always runs first (or right after another).
pub fn order(kinds: &[Kind], round: usize) -> Vec<Kind> {
    let mut v = kinds.to_vec();
    if !v.is_empty() {
        let n = v.len();
        v.rotate_left(round % n);
    }
    v
}

/// Runs every workload on every runtime: one warm-up round at a tenth of
/// the sizes (not recorded), then `rounds` measured rounds. In each round
/// each runtime in turn builds its session and runs the in-process
/// workloads; the fresh-process ones (idle memory, skynet) then run in a
/// child each. A wrong answer anywhere aborts with an error; a child that
/// hits its time or memory limit leaves that runtime out of that workload.
pub fn run(opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Results> {
    let sizes = opts.sizes()?;
    let warm = sizes.warm_up();
    let limits = Limits::new(opts.child_time);
    let mut results = Results {
        pinned: opts.pin,
        ..Results::default()
    };
    let mut kinds = Vec::new();
    for &kind in &opts.kinds {
        match available(kind) {
            Ok(()) => kinds.push(kind),
            Err(why) => {
                progress(&format!("{kind} left out: {why}"));
                results.absent.insert(kind, why);
            }
        }
    }
    let started = Instant::now();
    // In-process workloads cannot be killed at a limit as children are:
    // a hang ends the run with a message naming it instead.
    let dog = crate::watchdog::Watchdog::start();
    for round in 0..=opts.rounds {
        for kind in order(&kinds, round) {
            let label = if round == 0 {
                "warm-up".to_owned()
            } else {
                format!("round {round}/{}", opts.rounds)
            };
            progress(&format!("{label}: {kind}"));
            let session = Session::new(kind, opts.pin)?;
            let in_session = |w: &&Workload| !w.in_child() || own_process(kind);
            for &w in opts.workloads.iter().filter(in_session) {
                let armed = dog.arm(format!("{kind} {w} ({label})"), opts.child_time);
                let value = session
                    .run(w, if round == 0 { &warm } else { &sizes })
                    .map_err(|e| BenchError(format!("{kind} {w}: {e}")))?;
                drop(armed);
                if let (Some(v), true) = (value, round > 0) {
                    results.samples.entry((w, kind)).or_default().push(v);
                }
            }
            drop(session);
            if round == 0 || own_process(kind) {
                continue;
            }
            for &w in opts.workloads.iter().filter(|w| w.in_child()) {
                if results.skipped.contains_key(&(w, kind)) || !kind.runs(w) {
                    continue;
                }
                let job = ChildJob {
                    kind,
                    workload: w,
                    profile: opts.profile.clone(),
                    pin: opts.pin,
                    shards: 2,
                };
                match child::run(&job, limits) {
                    Ok(v) => results.samples.entry((w, kind)).or_default().push(v),
                    Err(ChildFailure::Limit(why)) => {
                        progress(&format!("{kind} {w}: left out, {why}"));
                        results.skipped.insert((w, kind), why);
                    }
                    Err(ChildFailure::Failed(e)) => return Err(e),
                }
            }
        }
    }
    results.wall = started.elapsed();
    Ok(results)
}

/// corelet on one shard count, for the scaling table.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalePoint {
    /// Shards.
    pub shards: usize,
    /// Whether the shards were pinned.
    pub pinned: bool,
    /// Median ns per message, all senders together, with disjoint pairs
    /// (shard 2i sends to shard 2i + 1; see [`pairs`]).
    pub pairs_ns: f64,
    /// Median ns per message, all senders together, with every shard
    /// sending to the next (see [`ring`]).
    pub ring_ns: f64,
    /// Median skynet run, ns.
    pub skynet_ns: Option<f64>,
}

impl ScalePoint {
    /// Disjoint pairs, all senders together, in M messages per second.
    pub fn pairs_mmsgs(&self) -> f64 {
        1e3 / self.pairs_ns
    }

    /// Every shard sending, all senders together, in M messages per second.
    pub fn ring_mmsgs(&self) -> f64 {
        1e3 / self.ring_ns
    }
}

/// Disjoint one-way pairs: shard 2i sends to shard 2i + 1 (one shard:
/// to itself). Two shards give the comparison's cross-shard tell.
pub fn pairs(shards: usize) -> Vec<(usize, usize)> {
    (0..shards)
        .step_by(2)
        .map(|i| (i, (i + 1) % shards))
        .collect()
}

/// A ring: every shard sends to the next, so each both sends and
/// receives.
pub fn ring(shards: usize) -> Vec<(usize, usize)> {
    (0..shards).map(|i| (i, (i + 1) % shards)).collect()
}

/// Shard counts of the scaling run.
pub const SCALING_SHARDS: [usize; 4] = [1, 2, 4, 8];

/// corelet on 1, 2, 4 and 8 shards: cross-shard tell over disjoint
/// pairs and over a ring (`cross_tell` messages in all, split evenly
/// between the senders), and
/// skynet (in a child each round). Shards are pinned only if asked and
/// there are enough cores.
pub fn scaling(opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Vec<ScalePoint>> {
    let sizes = opts.sizes()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limits = Limits::new(opts.child_time);
    let mut points = Vec::new();
    let dog = crate::watchdog::Watchdog::start();
    for shards in SCALING_SHARDS {
        let pinned = opts.pin && shards <= cores;
        progress(&format!("scaling: {shards} shards"));
        let armed = dog.arm(
            format!("corelet cross-shard scaling on {shards} shards"),
            opts.child_time,
        );
        let rt = on_corelet::build(shards, pinned)?;
        let (pairs, ring) = (pairs(shards), ring(shards));
        // The same number of messages in all, however many senders.
        let each = |routes: &[(usize, usize)], total: u64| (total / routes.len() as u64).max(1);
        let warm = sizes.warm_up().cross_tell;
        on_corelet::cross_tell_routes(&rt, &pairs, each(&pairs, warm))?;
        let (mut by_pairs, mut by_ring) = (Vec::new(), Vec::new());
        for _ in 0..opts.rounds {
            let t = on_corelet::cross_tell_routes(&rt, &pairs, each(&pairs, sizes.cross_tell))?;
            by_pairs.push(t.per_unit());
            let t = on_corelet::cross_tell_routes(&rt, &ring, each(&ring, sizes.cross_tell))?;
            by_ring.push(t.per_unit());
        }
        drop(rt);
        drop(armed);
        let mut skynet = Vec::new();
        if opts.workloads.contains(&Workload::Skynet) {
            for _ in 0..opts.rounds {
                let job = ChildJob {
                    kind: Kind::Corelet,
                    workload: Workload::Skynet,
                    profile: opts.profile.clone(),
                    pin: pinned,
                    shards,
                };
                match child::run(&job, limits) {
                    Ok(v) => skynet.push(v),
                    Err(ChildFailure::Limit(why)) => {
                        progress(&format!("scaling skynet on {shards} shards: {why}"));
                        break;
                    }
                    Err(ChildFailure::Failed(e)) => return Err(e),
                }
            }
        }
        points.push(ScalePoint {
            shards,
            pinned,
            pairs_ns: median(&by_pairs).unwrap_or(f64::NAN),
            ring_ns: median(&by_ring).unwrap_or(f64::NAN),
            skynet_ns: median(&skynet),
        });
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every workload, every runtime, tiny sizes: the checks run and pass;
    /// a workload the runtime cannot express answers `None`.
    fn run_all(kind: Kind) {
        let sizes = Sizes::tiny();
        let session = Session::new(kind, false).unwrap();
        for w in Workload::ALL {
            let v = session
                .run(w, &sizes)
                .unwrap_or_else(|e| panic!("{kind} {w}: {e}"));
            if !kind.runs(w) {
                assert_eq!(v, None, "{kind} {w}");
                continue;
            }
            let v = v.unwrap_or_else(|| panic!("{kind} {w}: not expressed"));
            assert!(v.is_finite(), "{kind} {w}: {v}");
        }
    }

    #[test]
    fn medians_and_order() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let kinds = Kind::ALL;
        assert_eq!(order(&kinds, 1)[0], Kind::Glommio);
        assert_eq!(order(&kinds, 7), kinds.to_vec());
    }

    #[test]
    fn routes() {
        assert_eq!(pairs(1), vec![(0, 0)]);
        assert_eq!(pairs(2), vec![(0, 1)]);
        assert_eq!(pairs(8), vec![(0, 1), (2, 3), (4, 5), (6, 7)]);
        assert_eq!(ring(2), vec![(0, 1), (1, 0)]);
        assert_eq!(ring(1), vec![(0, 0)]);
    }

    #[test]
    fn corelet_scaling_routes_check_out() {
        let rt = on_corelet::build(4, false).unwrap();
        for routes in [pairs(4), ring(4)] {
            let t = on_corelet::cross_tell_routes(&rt, &routes, 200).unwrap();
            assert_eq!(t.units, 200 * routes.len() as u64);
        }
    }

    #[test]
    fn best_peer_and_ratio() {
        let mut r = Results::default();
        r.samples
            .insert((Workload::LocalAsk, Kind::Corelet), vec![50.0]);
        r.samples
            .insert((Workload::LocalAsk, Kind::Actix), vec![400.0, 500.0, 450.0]);
        r.samples
            .insert((Workload::LocalAsk, Kind::Kameo), vec![700.0]);
        assert_eq!(r.best_peer(Workload::LocalAsk), Some((Kind::Actix, 450.0)));
        assert_eq!(r.ratio(Workload::LocalAsk), Some(50.0 / 450.0));
        assert_eq!(r.ratio(Workload::Big), None);
    }

    #[test]
    fn corelet_workloads_check_out() {
        run_all(Kind::Corelet);
    }

    #[test]
    fn actix_workloads_check_out() {
        run_all(Kind::Actix);
    }

    #[test]
    fn ractor_workloads_check_out() {
        run_all(Kind::Ractor);
    }

    #[test]
    fn kameo_workloads_check_out() {
        run_all(Kind::Kameo);
    }

    #[test]
    fn glommio_workloads_check_out() {
        run_all(Kind::Glommio);
    }

    /// The only test of this binary that makes a `Stakker` (stakker's
    /// default features allow one at a time per process).
    #[test]
    fn stakker_workloads_check_out() {
        run_all(Kind::Stakker);
    }

    #[test]
    fn go_workloads_check_out_when_go_is_installed() {
        if !on_go::installed() {
            eprintln!("go not installed: the Go peer is not checked");
            return;
        }
        run_all(Kind::Go);
    }

    #[test]
    fn glommio_ratio_is_corelet_over_glommio() {
        let mut r = Results::default();
        r.samples
            .insert((Workload::LocalTell, Kind::Corelet), vec![30.0]);
        r.samples
            .insert((Workload::LocalTell, Kind::Glommio), vec![20.0]);
        r.samples
            .insert((Workload::LocalTell, Kind::Go), vec![25.0]);
        assert_eq!(r.glommio_ratio(Workload::LocalTell), Some(1.5));
        assert_eq!(r.best_peer(Workload::LocalTell), Some((Kind::Go, 25.0)));
        assert_eq!(r.glommio_ratio(Workload::Big), None);
    }
}
