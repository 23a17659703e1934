//! `corelet-peers`: corelet side by side with actix, ractor and kameo.
//!
//! ```text
//! cargo run --release -p corelet-peers -- [--quick] [--json] [--pin|--no-pin]
//! cargo run --release -p corelet-peers -- --scaling [--quick]
//! cargo run --release -p corelet-peers -- --report [--quick]   # writes docs/benchmarks.md
//! cargo run --release -p corelet-peers -- --instructions [--json] # callgrind, needs valgrind
//! cargo run --release -p corelet-peers -- --floor [--quick]       # cross ask vs the bare ring
//! ```

mod floor;

use corelet_peers::child::{self, ChildJob};
use corelet_peers::harness::{self, Options};
use corelet_peers::instructions;
use corelet_peers::report::{self, RunInfo};
use corelet_peers::{table, BenchError, Kind, Result, Workload};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
corelet-peers: corelet side by side with raw glommio 0.9, stakker 0.2, actix 0.13,
ractor 0.16, kameo 0.22 and Go (when `go` is installed)

usage: corelet-peers [--quick] [--json] [--pin|--no-pin] [--rounds N] [--sizes S]
                     [--only WORKLOAD,...] [--runtimes NAME,...]
       corelet-peers --scaling [--quick] [--json] [--pin|--no-pin]
       corelet-peers --report [--quick] [--pin|--no-pin] [--docs DIR]
       corelet-peers --instructions [--json] [--sizes tiny] [--only PATH,...]
                     [--runtimes corelet,glommio,stakker]
       corelet-peers --floor [--quick] [--sizes tiny] [--pin|--no-pin]

  --quick      smaller workloads and 3 rounds instead of 5 (about two minutes)
  --json       one JSON object per workload (per shard count with --scaling)
  --pin        pin corelet's shards to cores (the default with two CPUs or
               more, as raw glommio's executors are pinned)
  --no-pin     leave corelet's shards to the OS scheduler
  --scaling    corelet alone on 1, 2, 4 and 8 shards: cross-shard tell, skynet
  --instructions  instructions per operation of local_tell, local_ask,
               spawn_msg_exit, cross_tell and cross_ask, counted under valgrind's
               callgrind at two sizes (deterministic, unlike wall time)
  --floor      corelet's cross-shard ask alternated, in blocks, with a bare
               round trip over two of its SPSC rings on the same two shard
               threads: what corelet adds to the rings, whatever the VM's
               placement of the two cores costs at the moment
  --report     the comparison and the scaling run, then write DIR/benchmarks.md,
               benchmarks.svg, scaling.svg and benchmarks.json (DIR: docs/)
  --rounds N   measured rounds per runtime
  --sizes S    size profile: full, quick or tiny (tiny: a smoke test, seconds)
  --only       workloads to run (names as in the JSON output)
  --runtimes   runtimes to run (corelet,glommio,stakker,actix,ractor,kameo,go)

A wrong answer in any workload aborts with exit status 1.";

/// The parsed command line.
struct Cli {
    opts: Options,
    json: bool,
    scaling: bool,
    report: bool,
    instructions: bool,
    floor: bool,
    docs: PathBuf,
    args: Vec<String>,
}

fn parse(args: Vec<String>) -> Result<Cli> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut opts = Options::new(quick);
    // Pinned where raw glommio is (two CPUs or more), so that the default
    // comparison is like for like: unpinned, where the OS put the two
    // shards' threads decided cross-shard asks (905 ns against 371-433
    // pinned, the same day).
    opts.pin = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let mut cli = Cli {
        opts,
        json: false,
        scaling: false,
        report: false,
        instructions: false,
        floor: false,
        docs: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs")),
        args: args.clone(),
    };
    let mut it = args.into_iter();
    let value = |it: &mut std::vec::IntoIter<String>, flag: &str| {
        it.next()
            .ok_or_else(|| BenchError(format!("{flag} needs a value")))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => {}
            "--json" => cli.json = true,
            "--pin" => cli.opts.pin = true,
            "--no-pin" => cli.opts.pin = false,
            "--scaling" => cli.scaling = true,
            "--report" => cli.report = true,
            "--instructions" => cli.instructions = true,
            "--floor" => cli.floor = true,
            "--docs" => cli.docs = PathBuf::from(value(&mut it, "--docs")?),
            "--sizes" => {
                let profile = value(&mut it, "--sizes")?;
                if corelet_peers::Sizes::by_name(&profile).is_none() {
                    return Err(BenchError(format!("no size profile {profile:?}")));
                }
                // Only the full profile's skynet needs minutes in a child;
                // a hung child of a smaller one is not waited on as long.
                if profile != "full" {
                    cli.opts.child_time = std::time::Duration::from_secs(60);
                }
                cli.opts.profile = profile;
            }
            "--rounds" => {
                cli.opts.rounds = value(&mut it, "--rounds")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| BenchError("--rounds needs a positive number".into()))?;
            }
            "--only" => {
                cli.opts.workloads = value(&mut it, "--only")?
                    .split(',')
                    .map(|s| {
                        Workload::parse(s).ok_or_else(|| BenchError(format!("no workload {s:?}")))
                    })
                    .collect::<Result<_>>()?;
            }
            "--runtimes" => {
                let kinds: Vec<Kind> = value(&mut it, "--runtimes")?
                    .split(',')
                    .map(|s| Kind::parse(s).ok_or_else(|| BenchError(format!("no runtime {s:?}"))))
                    .collect::<Result<_>>()?;
                cli.opts.kinds = kinds;
            }
            other => return Err(BenchError(format!("unknown argument {other:?}\n\n{USAGE}"))),
        }
    }
    Ok(cli)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child_main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("--instructions-child") {
        return match instructions::child::Job::from_args(&args[1..]).and_then(|j| j.run_here()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("corelet-peers instructions child: {e}");
                ExitCode::from(2)
            }
        };
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match parse(args).and_then(|cli| run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corelet-peers: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The hidden subcommand: one workload in this fresh process.
fn child_main(args: &[String]) -> ExitCode {
    match ChildJob::from_args(args).and_then(|job| job.run_here()) {
        Ok(v) => {
            println!("{}", child::result_line(v));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corelet-peers child: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    let started = Instant::now();
    let load_at_start = report::load_average();
    let mut progress = |msg: &str| {
        eprintln!("[{:6.1} s] {msg}", started.elapsed().as_secs_f64());
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cli.instructions {
        return run_instructions(cli, &mut progress);
    }
    if cli.floor {
        return run_floor(cli, &mut progress);
    }
    if cli.scaling && !cli.report {
        let points = harness::scaling(&cli.opts, &mut progress)?;
        if cli.json {
            for line in report::scaling_json(&points) {
                println!("{line}");
            }
        } else {
            print!("{}", report::scaling_text(&points, cores));
        }
        return Ok(());
    }
    let results = harness::run(&cli.opts, &mut progress)?;
    if cli.json {
        for line in table::json_lines(&results) {
            println!("{line}");
        }
    } else {
        print!("{}", table::text(&results));
    }
    if cli.report {
        let points = harness::scaling(&cli.opts, &mut progress)?;
        print!("{}", report::scaling_text(&points, cores));
        let mut info = RunInfo::collect(&cli.opts, &cli.args, started.elapsed(), load_at_start);
        progress("the floor probe (cross-shard ask against the bare rings)");
        info.floor = Some(measure_floor(cli, 8, 10_000)?);
        let written = report::write(&cli.docs, &info, &results, &points)?;
        for path in written {
            eprintln!("wrote {}", path.display());
        }
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `--instructions`: the callgrind counts, as a table or JSON lines.
fn run_instructions(cli: &Cli, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let opts = instructions::Options {
        kinds: cli
            .opts
            .kinds
            .iter()
            .copied()
            .filter(|k| instructions::KINDS.contains(k))
            .collect(),
        paths: cli.opts.workloads.clone(),
        tiny: cli.opts.profile == "tiny",
    };
    if opts.kinds.is_empty() {
        return Err(BenchError(
            "--instructions counts corelet, glommio and stakker only".into(),
        ));
    }
    let counts = instructions::run(&opts, progress)?;
    if cli.json {
        for line in instructions::json_lines(&counts) {
            println!("{line}");
        }
    } else {
        print!("{}", instructions::text(&counts));
    }
    Ok(())
}

/// `--floor`: cross-shard ask against the bare ring, alternated on the
/// same two shard threads (see `floor`).
fn run_floor(cli: &Cli, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let (blocks, per_block) = match cli.opts.profile.as_str() {
        "tiny" => (2, 200),
        _ if cli.args.iter().any(|a| a == "--quick") => (8, 10_000),
        _ => (20, 20_000),
    };
    progress(&format!(
        "floor probe: {blocks} blocks of {per_block} ring round trips and asks"
    ));
    let rt = corelet_peers::on_corelet::build(2, cli.opts.pin)?;
    let measured = floor::ask_against_ring(&rt, blocks, per_block)?;
    print!("{}", floor::floor_text(&measured, per_block, cli.opts.pin));
    Ok(())
}

/// The floor probe's medians for the report.
fn measure_floor(cli: &Cli, blocks: usize, per_block: u64) -> Result<report::FloorSummary> {
    let rt = corelet_peers::on_corelet::build(2, cli.opts.pin)?;
    let measured = floor::ask_against_ring(&rt, blocks, per_block)?;
    let col =
        |f: &dyn Fn(&floor::FloorBlock) -> f64| floor::median(measured.iter().map(f).collect());
    Ok(report::FloorSummary {
        ring_ns: col(&|b| b.ring_ns),
        ask_ns: col(&|b| b.ask_ns),
        added_ns: col(&|b| b.ask_ns - b.ring_ns),
        pairs: measured.len(),
    })
}
