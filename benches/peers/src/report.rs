//! The results page, `docs/benchmarks.md`: the machine, the commit, the
//! commands, the tables, the goals (see [`crate::goals`]), the plots.

use crate::check::{Ctx, Result};
use crate::goals::{side_by_side_markdown, targets_markdown, why_missed};
use crate::harness::{Options, Results, ScalePoint};
use crate::plot;
use crate::table::{self, human};
use crate::workload::Sizes;
use serde_json::json;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
/// Where and how the results were taken.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// Logical cores available to this process.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Total memory.
    pub memory: String,
    /// `rustc --version`.
    pub rustc: String,
    /// `git rev-parse --short HEAD`, with `-dirty` for uncommitted changes.
    pub commit: String,
    /// The date (UTC).
    pub date: String,
    /// The command that produced the page.
    pub command: String,
    /// The options of the run.
    pub opts: Options,
    /// How long the whole run took.
    pub elapsed: Duration,
    /// The load averages (1, 5, 15 min) when the run started and ended:
    /// other work on the machine shows here.
    pub load: (String, String),
    /// ns per blocking round trip between two plain threads (see
    /// [`thread_round_trip_ns`]).
    pub wake_ns: f64,
    /// ns per round trip of a cache line between two spinning threads (see
    /// [`line_round_trip_ns`]).
    pub line_ns: f64,
    /// ns per item of a bare queue flooded and drained (see
    /// [`bare_queue_ns`]).
    pub queue_ns: f64,
    /// M msg/s through corelet's bare ring (see [`bare_ring_mmsgs`]).
    pub ring_mmsgs: f64,
    /// `go version`, if Go is installed.
    pub go: Option<String>,
    /// Cross-shard ask against the bare rings on the same shard threads
    /// (`corelet-peers --floor`), when the run measured it.
    pub floor: Option<FloorSummary>,
}

/// Medians of a `--floor` run: corelet's cross-shard ask and a bare round
/// trip over two of its rings, alternated in blocks on the same two shard
/// threads.
#[derive(Clone, Copy, Debug)]
pub struct FloorSummary {
    /// ns per round trip over the two bare rings.
    pub ring_ns: f64,
    /// ns per corelet cross-shard ask.
    pub ask_ns: f64,
    /// Median over the pairs of blocks of `ask - ring`.
    pub added_ns: f64,
    /// How many pairs of blocks.
    pub pairs: usize,
}

impl FloorSummary {
    /// The report's bullet for it, or a note that it was not measured.
    pub fn markdown(floor: Option<&FloorSummary>, pinned: bool) -> String {
        match floor {
            Some(f) => format!(
                "- **Cross-shard ask over the bare rings:** alternated in blocks on the same \
                 two {} shard threads (`-- --floor`), a round trip over two of corelet's bare \
                 rings took {:.0} ns and corelet's cross-shard ask {:.0} ns (medians of {} \
                 pairs of blocks): corelet's own work adds {:.0} ns, the rest is what the \
                 machine's cores cost at that moment\n",
                if pinned { "pinned" } else { "unpinned" },
                f.ring_ns,
                f.ask_ns,
                f.pairs,
                f.added_ns
            ),
            None => String::new(),
        }
    }
}

/// ns per round trip of a value between two threads over blocking std
/// channels: the price of waking a parked thread, twice. A runtime whose
/// threads park as soon as they are idle pays about this per
/// cross-thread ask.
pub fn thread_round_trip_ns(round_trips: u32) -> f64 {
    use std::sync::mpsc::sync_channel;
    let (to_echo, echo_in) = sync_channel::<u32>(1);
    let (echo_out, back) = sync_channel::<u32>(1);
    let echo = std::thread::spawn(move || {
        while let Ok(v) = echo_in.recv() {
            if echo_out.send(v).is_err() {
                break;
            }
        }
    });
    let started = std::time::Instant::now();
    for i in 0..round_trips {
        if to_echo.send(i).is_err() || back.recv() != Ok(i) {
            break;
        }
    }
    let ns = started.elapsed().as_nanos() as f64 / f64::from(round_trips.max(1));
    drop(to_echo);
    let _ = echo.join();
    ns
}

/// ns per round trip of a value between two threads that never sleep:
/// each spins on a cache line the other writes. This is the hardware's
/// floor for any cross-thread request and reply (a cross-shard ask moves at
/// least this much: the request's line there, the reply's line back), and
/// on a VM it depends on where the hypervisor put the two vCPUs.
pub fn line_round_trip_ns(round_trips: u64) -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    /// A counter alone on its cache lines (128 B: adjacent-line prefetch).
    #[repr(align(128))]
    struct Line(AtomicU64);
    const STOP: u64 = u64::MAX;
    // Two spinning threads on one CPU would each wait out a time slice.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return f64::NAN;
    }
    let lines = std::sync::Arc::new([Line(AtomicU64::new(0)), Line(AtomicU64::new(0))]);
    let theirs = lines.clone();
    let echo = std::thread::spawn(move || loop {
        // Acquire/Release: the echo sees the ping before it answers, as a
        // reply reads its request.
        let v = theirs[0].0.load(Ordering::Acquire);
        if v == STOP {
            break;
        }
        if theirs[1].0.load(Ordering::Relaxed) != v {
            theirs[1].0.store(v, Ordering::Release);
        }
        std::hint::spin_loop();
    });
    let started = std::time::Instant::now();
    let mut done = 0;
    for i in 1..=round_trips {
        lines[0].0.store(i, Ordering::Release);
        while lines[1].0.load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
        done = i;
        // A busy machine makes every round trip a time slice: stop early.
        if i % 1024 == 0 && started.elapsed() > std::time::Duration::from_millis(500) {
            break;
        }
    }
    let ns = started.elapsed().as_nanos() as f64 / done.max(1) as f64;
    lines[0].0.store(STOP, Ordering::Release);
    let _ = echo.join();
    ns
}

/// ns per item of a bare queue flooded, then drained: `n` 16-byte items
/// pushed into a `VecDeque` that starts empty (and grows by doubling), then
/// all popped and summed; the median of 5 rounds, a fresh queue each round.
/// There is no runtime in it at all: it is the memory traffic of the local
/// tell workload (which queues every message before the counter runs) on
/// this machine, and so that workload's floor.
pub fn bare_queue_ns(n: u64) -> f64 {
    use std::collections::VecDeque;
    use std::hint::black_box;
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let mut queue = VecDeque::new();
            let started = std::time::Instant::now();
            for i in 0..n {
                queue.push_back(black_box((1u64, i)));
            }
            let mut sum = 0u64;
            while let Some((a, b)) = queue.pop_front() {
                sum = sum.wrapping_add(a).wrapping_add(b);
            }
            black_box(sum);
            started.elapsed().as_nanos() as f64 / n.max(1) as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

/// Millions of messages per second through corelet's own SPSC ring
/// (`corelet_cross_shard::ring`, 1,024 slots) between two spinning
/// threads: 56-byte values (an envelope's size; with its stamp one 64-byte
/// slot), published every 256 as
/// the shards do by default (`Builder::publish_batch`), the consumer
/// draining in batches and reading each value.
/// No mailbox, table or process: the ring's own pace on this machine, the
/// floor of cross-shard tell.
pub fn bare_ring_mmsgs(n: u64) -> f64 {
    /// An envelope's size: one cache line of ring slot with its stamp.
    #[derive(Clone, Copy)]
    struct Line([u64; 7]);
    if std::thread::available_parallelism().map_or(1, |p| p.get()) < 2 {
        return f64::NAN;
    }
    let (mut tx, mut rx) = corelet_cross_shard::ring::<Line>(1024);
    let reader = std::thread::spawn(move || {
        let (mut got, mut sum) = (0u64, 0u64);
        let started = std::time::Instant::now();
        while got < n {
            let taken = rx.drain(256, |line| sum = sum.wrapping_add(line.0[0]));
            got += taken as u64;
            if taken == 0 {
                if rx.is_abandoned() && rx.is_empty() {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        std::hint::black_box(sum);
        (got, started.elapsed())
    });
    let mut line = Line([0; 7]);
    for i in 0..n {
        line.0[0] = i;
        while let Err(full) = tx.push(line) {
            line = full.into_inner();
            tx.publish();
            std::hint::spin_loop();
        }
        if tx.unpublished() >= 256 {
            tx.publish();
        }
    }
    tx.publish();
    drop(tx);
    let (got, elapsed) = reader.join().unwrap_or((0, std::time::Duration::ZERO));
    got as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn command_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl RunInfo {
    /// Reads the machine's description and the repository's commit;
    /// `load_at_start` is [`load_average`] from when the run began.
    pub fn collect(
        opts: &Options,
        args: &[String],
        elapsed: Duration,
        load_at_start: String,
    ) -> RunInfo {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or("unknown".to_owned(), |s| s.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or("unknown".to_owned(), |kib| {
                format!("{:.1} GiB", kib / (1u64 << 20) as f64)
            });
        let dir = env!("CARGO_MANIFEST_DIR");
        let commit = command_output("git", &["-C", dir, "rev-parse", "--short", "HEAD"])
            .unwrap_or_else(|| "unknown".to_owned());
        let dirty = command_output(
            "git",
            &["-C", dir, "status", "--porcelain", "--untracked-files=no"],
        )
        .is_some_and(|s| !s.is_empty());
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let (y, m, d) = civil_date(secs.div_euclid(86_400));
        let mut command = "cargo run --release -p corelet-peers --".to_owned();
        for a in args {
            command.push(' ');
            command.push_str(a);
        }
        RunInfo {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or("unknown".to_owned(), |s| s.trim().to_owned()),
            memory,
            rustc: command_output("rustc", &["--version"]).unwrap_or_else(|| "unknown".to_owned()),
            commit: if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            },
            date: format!("{y:04}-{m:02}-{d:02}"),
            command,
            opts: opts.clone(),
            elapsed,
            load: (load_at_start, load_average()),
            wake_ns: thread_round_trip_ns(10_000),
            line_ns: line_round_trip_ns(200_000),
            queue_ns: bare_queue_ns(1_000_000),
            ring_mmsgs: bare_ring_mmsgs(20_000_000),
            go: command_output("go", &["version"]),
            floor: None,
        }
    }
}
/// The scaling table in Markdown.
pub fn scaling_markdown(points: &[ScalePoint], cores: usize) -> String {
    let mut out = format!(
        "The machine has {cores} cores; shard counts above that share them \
         (unpinned). Throughput is of all senders together; \"per pair\" divides \
         it by the number of pairs.\n\n\
         | shards | pinned | pairs (one-way), all | per pair | ring (all send), all | skynet |\n\
         |---:|---|---:|---:|---:|---:|\n"
    );
    for p in points {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} M msg/s | {:.1} M msg/s | {:.1} M msg/s | {} |",
            p.shards,
            if p.pinned { "yes" } else { "no" },
            p.pairs_mmsgs(),
            p.pairs_mmsgs() / crate::harness::pairs(p.shards).len() as f64,
            p.ring_mmsgs(),
            p.skynet_ns
                .map_or("—".to_owned(), |ns| human(ns, crate::Unit::Ns)),
        );
    }
    out
}

/// The scaling results as plain text.
pub fn scaling_text(points: &[ScalePoint], cores: usize) -> String {
    let mut out = format!(
        "corelet scaling on a {cores}-core machine (throughput of all senders together)\n\
         {:>6} {:>6} {:>18} {:>18} {:>12}\n",
        "shards", "pinned", "pairs (one-way)", "ring (all send)", "skynet"
    );
    for p in points {
        let _ = writeln!(
            out,
            "{:>6} {:>6} {:>12.1} M/s {:>14.1} M/s {:>12}",
            p.shards,
            if p.pinned { "yes" } else { "no" },
            p.pairs_mmsgs(),
            p.ring_mmsgs(),
            p.skynet_ns
                .map_or("—".to_owned(), |ns| human(ns, crate::Unit::Ns)),
        );
    }
    out
}

/// The scaling results as JSON lines.
pub fn scaling_json(points: &[ScalePoint]) -> Vec<String> {
    points
        .iter()
        .map(|p| {
            json!({
                "scaling": "corelet",
                "shards": p.shards,
                "pinned": p.pinned,
                "pairs_ns": p.pairs_ns,
                "pairs_mmsgs": p.pairs_mmsgs(),
                "ring_ns": p.ring_ns,
                "ring_mmsgs": p.ring_mmsgs(),
                "skynet_ns": p.skynet_ns,
            })
            .to_string()
        })
        .collect()
}

fn sizes_markdown(s: &Sizes) -> String {
    format!(
        "local tell {} messages; local ask {} asks; spawn + msg + exit {} processes; \
         idle memory {} processes; cross-shard tell {} messages; cross-shard ask {} asks; \
         PingPong {} round trips; Counting {} messages; ForkJoin throughput {} workers × {} \
         messages; ForkJoin create {} actors; ThreadRing {} actors, {} hops; Big {} actors × {} \
         pings; skynet {} leaves ({} processes).",
        s.local_tell,
        s.local_ask,
        s.spawn_exit,
        s.idle,
        s.cross_tell,
        s.cross_ask,
        s.ping_pong,
        s.counting,
        s.fj_workers,
        s.fj_messages,
        s.fj_create,
        s.ring_actors,
        s.ring_hops,
        s.big_actors,
        s.big_pings,
        s.skynet_leaves,
        crate::workload::skynet_processes(s.skynet_leaves),
    )
}

/// How the peers added for issue 7 are written, and what favours or
/// handicaps each.
const NEW_PEERS: &str = "\
Raw glommio 0.9 (what a thread-per-core user writes instead of an actor runtime): a \
process is a `spawn_local` task reading an unbounded `local_channel`; an address is the \
channel's sender (in an `Rc` where shared); an ask is a request carrying a \
`tokio::sync::oneshot` sender (glommio has no oneshot); tasks are wired together when they \
start (Big sends peer indexes, not addresses). It runs on two executor threads of its own, \
the local workloads on the first; across them one `shared_channel` of 1,024 slots per \
direction, replies on their own channel. Its executors are pinned to CPUs 0 and 1 and \
spin 50 µs before parking (glommio spins only for pinned executors; corelet's shards spin \
as long, and are pinned too unless the run line above says unpinned: then glommio is \
favoured on cross-thread asks). \
Skynet: the root's ten subtrees are split five and five between the executors (corelet \
spreads its top two levels), every node a task with a channel for its children's sums. \
stakker 0.2 (default features, one `Stakker` on the harness's thread, driven by \
`Stakker::run` until its queue is empty): there are no mailboxes, a call is a closure in \
one queue, so local tell queues every call before running them; an ask answers through a \
`Ret` (a boxed callback) into the asker's method; spawn + msg + exit waits for the actor's \
stop notification. Cross-thread workloads do not apply (n/a) and skynet runs on one \
thread where the others have two. Go (goroutines and channels, `benches/go/`, built with \
the `go` on PATH and skipped with a note when there is none): one fresh process per \
workload (build and start-up not timed), `GOMAXPROCS=1` for the single-thread workloads \
and 2 for the cross-thread ones and skynet; a mailbox is a buffered channel of 1,024 \
(Go has no unbounded channel, so a fast sender blocks where the actor peers' do not); an \
ask sends a fresh reply channel of capacity 1; idle memory includes each goroutine's \
stack.";

/// The "Instructions per operation" section: how to get the numbers.
const INSTRUCTIONS_SECTION: &str = "
## Instructions per operation

Wall time on this shared VM moves by tens of percent from run to run; instruction counts \
do not. `cargo run --release -p corelet-peers -- --instructions` (needs valgrind; \
`--json` for one object per line; `CORELET_PEERS_CALLGRIND_DIR=DIR` keeps callgrind's \
files for `callgrind_annotate`) runs each core path — local tell, local ask round trip, \
spawn + message + exit, cross-shard tell, cross-shard ask — in a child process under \
`valgrind --tool=callgrind` at two sizes and prints instructions per operation = \
(Ir(large) − Ir(small)) / (large − small), counting only the timed part of the \
workload, so start-up and every other fixed cost cancels. The same-shard paths are exact \
(two runs print the same numbers within a couple of instructions) and are counted for \
raw glommio and stakker too. The cross-shard paths keep both shards awake with a task \
that hands the CPU over on every pass (a glommio executor that sleeps hangs valgrind), \
so they include that task and the idle shard's polling per pass: an upper bound, within \
about 3 % from run to run; raw glommio's cross-executor paths are not counted (its idle \
polling loop cannot be told apart from work). `benches/peers/src/instructions/mod.rs` \
explains each choice. Issue 7's ceilings for corelet: tell 60, ask round trip 250, \
spawn + message + exit 600 instructions.
";

/// The whole page.
pub fn markdown(
    info: &RunInfo,
    results: &Results,
    points: &[ScalePoint],
    previous: &str,
) -> String {
    let o = &info.opts;
    let sizes = o.sizes().map(|s| sizes_markdown(&s)).unwrap_or_default();
    let mut page = String::new();
    let _ = write!(
        page,
        "# corelet benchmarks: side by side with raw glommio, stakker, actix, ractor, kameo and Go\n\n\
         Generated by `corelet-peers` (`benches/peers/`); regenerate with the command \
         below. Everything but the lines of \"Why targets are missed\" is overwritten.\n\n\
         ## Where and how\n\n\
         - **Machine:** {cpu}, {cores} cores, {memory}, Linux {kernel}\n\
         - **Load average** (1/5/15 min) at start {load0}, at end {load1} ({cores} would \
         mean both cores busy with other work)\n\
         - **Thread wake-up:** a blocking round trip between two plain threads (std \
         channels) takes {wake:.1} µs here: about what a cross-thread ask costs when both \
         sides park in the kernel as soon as they are idle\n\
         - **Cache-line round trip:** two threads spinning on a value the other writes \
         take {line:.0} ns per round trip here: the hardware's floor for a cross-thread \
         request and reply, which no cross-shard ask can beat\n\
         - **Bare queue:** a million 16-byte items pushed into an empty `VecDeque`, then \
         popped, with no runtime, take {queue:.1} ns per item here: the memory traffic of \
         the local tell workload (it queues every message before the counter runs), and so \
         its floor\n\
         - **Bare ring:** corelet's SPSC ring alone, 56-byte values (one slot line each) between two spinning \
         threads, published every 256, moves {ring:.0} M msg/s here: the floor of \
         cross-shard tell (no mailbox, table or process)\n\
         {floor}\
         - **Toolchain:** {rustc}; {go}\n\
         - **Commit:** `{commit}`, {date}\n\
         - **This page:** `{command}` ({secs:.0} s)\n\
         - **Other commands:** `cargo run --release -p corelet-peers -- --quick` (table), \
         `-- --json` (one JSON object per workload), `-- --scaling` (corelet on 1–8 shards), \
         `-- --instructions` (instructions per operation under callgrind, below), \
         `-- --floor` (cross-shard ask against the bare rings on the same shard threads); \
         `cargo bench` (criterion: corelet's core paths, the Savina workloads and skynet)\n\n\
         Method: one warm-up round at a tenth of the sizes, then {rounds} rounds; in each \
         round every runtime in turn builds its runtime once and runs every workload, the \
         order of runtimes rotating by one each round; a cell is the median of the rounds. \
         Time is taken with `Instant` inside the runtime, around the workload only \
         (runtime start-up is never measured). Every workload checks its answer (counts, \
         sums, hops) and a wrong answer aborts the run. Idle memory (growth of `VmRSS` over \
         100,000 idle actors, including the 8–16 B handle the test keeps for each) and \
         skynet run in a fresh process each, under a limit of {limit} s and three quarters \
         of the available memory; a runtime that hits it is left out and named below.\n\n\
         Runtimes: corelet with {pin} shards, one shard for local workloads and two for \
         cross-shard ones and skynet (skynet spreads the children of its top two levels over \
         the shards; below them a node spawns and tells on its own shard in `handle_now`, \
         with no future, as every Savina workload does where nothing awaits); actix 0.13 on its `System` thread for the local workloads and on two \
         `Arbiter` threads (the counterpart of two shards; the `System` thread only waits) \
         for the cross-thread ones and skynet; ractor 0.16 and kameo 0.22 (default features) on \
         a tokio multi-thread runtime with 2 workers, workloads running as tasks on the \
         workers. Mailboxes are unbounded everywhere (actix `do_send`, kameo \
         `mailbox::unbounded()`); corelet's cross-shard sender uses `send().await`. \
         For ractor and kameo \"local\" and \"cross-shard\" are the same code: tokio places \
         the tasks. Idle threads wait differently: corelet's shards poll for 50 µs before \
         sleeping (`Builder::spin_before_park`), tokio often runs a woken task on the \
         worker that woke it (so a ractor or kameo ask need not cross threads at all), \
         actix's arbiters sleep at once; compare cross-thread asks with the thread wake-up \
         above.\n\n\
         {peers}\n\n\
         Sizes ({profile}): {sizes}\n\n",
        peers = NEW_PEERS,
        cpu = info.cpu,
        cores = info.cores,
        memory = info.memory,
        kernel = info.kernel,
        rustc = info.rustc,
        go = info.go.as_deref().unwrap_or("Go not installed (left out)"),
        load0 = info.load.0,
        wake = info.wake_ns / 1e3,
        line = info.line_ns,
        queue = info.queue_ns,
        ring = info.ring_mmsgs,
        floor = FloorSummary::markdown(info.floor.as_ref(), o.pin),
        load1 = info.load.1,
        commit = info.commit,
        date = info.date,
        command = info.command,
        secs = info.elapsed.as_secs_f64(),
        rounds = o.rounds,
        limit = o.child_time.as_secs(),
        pin = if o.pin { "pinned" } else { "unpinned" },
        profile = o.profile,
    );
    page.push_str(
        "## Results\n\nMedians. \"corelet / best\" is corelet over the best of actix, ractor, \
         kameo and Go; \"corelet / raw glommio\" is corelet over hand-written glommio tasks \
         and channels; lower is better for both. n/a: the runtime cannot express the \
         workload.\n\n",
    );
    page.push_str(&table::markdown(results));
    let notes = table::notes(results);
    if !notes.is_empty() {
        page.push('\n');
        for line in notes.lines() {
            let _ = writeln!(page, "- {line}");
        }
    }
    page.push_str("\n![corelet against each peer, per workload](benchmarks.svg)\n\n");
    page.push_str("## Against the targets of DESIGN.md\n\n");
    page.push_str(&targets_markdown(results));
    page.push_str("\n## Side-by-side goals (issue 7)\n\n");
    page.push_str(&side_by_side_markdown(results));
    page.push_str(INSTRUCTIONS_SECTION);
    page.push_str("\n## Scaling (corelet alone)\n\n");
    page.push_str(
        "Cross-shard tell two ways: disjoint one-way pairs (shard 2i sends to a counter on \
         shard 2i + 1; two shards is the comparison's workload) and a ring (every shard sends \
         to a counter on the next, so each shard both sends and receives); on one shard the \
         counter is on the same shard. The messages (as many as in the comparison's \
         cross-shard tell) are split evenly between the senders. Skynet spreads the children of its top two levels \
         over all shards.\n\n",
    );
    page.push_str(&scaling_markdown(points, info.cores));
    page.push_str("\n![corelet on 1, 2, 4 and 8 shards](scaling.svg)\n\n");
    page.push_str("## Why targets are missed\n\n");
    page.push_str(&why_missed(results, previous));
    page
}

/// Writes `benchmarks.md`, `benchmarks.svg`, `scaling.svg` and
/// `benchmarks.jsonl` into `docs` and returns their paths.
pub fn write(
    docs: &Path,
    info: &RunInfo,
    results: &Results,
    points: &[ScalePoint],
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(docs).ctx("creating the docs folder")?;
    let md = docs.join("benchmarks.md");
    let previous = std::fs::read_to_string(&md).unwrap_or_default();
    let svg = docs.join("benchmarks.svg");
    let scaling_svg = docs.join("scaling.svg");
    let jsonl = docs.join("benchmarks.jsonl");
    plot::comparison(&svg, results)?;
    plot::scaling(&scaling_svg, points, info.cores)?;
    let mut lines = table::json_lines(results);
    lines.extend(scaling_json(points));
    std::fs::write(&jsonl, lines.join("\n") + "\n").ctx("writing benchmarks.jsonl")?;
    std::fs::write(&md, markdown(info, results, points, &previous)).ctx("writing benchmarks.md")?;
    Ok(vec![md, svg, scaling_svg, jsonl])
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Kind, Workload};

    fn results() -> Results {
        let mut r = Results::default();
        r.samples
            .insert((Workload::LocalAsk, Kind::Corelet), vec![120.0]);
        r.samples
            .insert((Workload::LocalAsk, Kind::Actix), vec![450.0]);
        r.samples
            .insert((Workload::LocalTell, Kind::Corelet), vec![8.0]);
        r.samples
            .insert((Workload::CrossTell, Kind::Corelet), vec![50.0]);
        r
    }

    #[test]
    fn line_round_trip_is_measured_and_ends() {
        let ns = line_round_trip_ns(2_000);
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            assert!(ns.is_nan());
        } else {
            assert!(ns.is_finite() && ns > 0.0, "{ns}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
        assert_eq!(civil_date(20_513), (2026, 3, 1));
    }

    #[test]
    fn writes_the_page_and_plots() {
        let dir = std::env::temp_dir().join(format!("corelet-peers-{}", std::process::id()));
        let mut r = results();
        r.samples
            .insert((Workload::LocalAsk, Kind::Kameo), vec![700.0]);
        let points = vec![
            ScalePoint {
                shards: 1,
                pinned: false,
                pairs_ns: 20.0,
                ring_ns: 20.0,
                skynet_ns: Some(3e8),
            },
            ScalePoint {
                shards: 2,
                pinned: false,
                pairs_ns: 15.0,
                ring_ns: 40.0,
                skynet_ns: None,
            },
        ];
        let info = RunInfo::collect(
            &Options::new(true),
            &["--report".into()],
            Duration::from_secs(1),
            load_average(),
        );
        let written = write(&dir, &info, &r, &points).unwrap();
        let page = std::fs::read_to_string(&written[0]).unwrap();
        assert!(page.contains("## Why targets are missed"));
        assert!(page.contains("cargo run --release -p corelet-peers -- --report"));
        let svg = std::fs::read_to_string(&written[1]).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("kameo"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_floor_bullet_names_both_medians_and_the_difference() {
        let f = FloorSummary {
            ring_ns: 145.2,
            ask_ns: 420.6,
            added_ns: 275.4,
            pairs: 8,
        };
        let md = FloorSummary::markdown(Some(&f), true);
        for part in [
            "pinned shard threads",
            "took 145 ns",
            "ask 421 ns",
            "medians of 8",
            "adds 275 ns",
        ] {
            assert!(md.contains(part), "{part:?} not in {md}");
        }
        assert!(
            md.starts_with("- **Cross-shard ask over the bare rings:**"),
            "{md}"
        );
        assert!(md.ends_with('\n'), "{md}");
        assert_eq!(FloorSummary::markdown(None, true), "");
    }

    #[test]
    fn the_floor_probes_measure_something() {
        let queue = bare_queue_ns(10_000);
        assert!(queue.is_finite() && queue > 0.0, "{queue}");
        let ring = bare_ring_mmsgs(100_000);
        // NaN on a one-CPU machine, where two spinning threads cannot both
        // run; otherwise a positive rate (the reader counted every value).
        assert!(ring.is_nan() || ring > 0.0, "{ring}");
    }
}
