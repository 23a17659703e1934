//! `kv-bench`: redis-benchmark against redis-server and corelet-kv, side
//! by side, on loopback.
//!
//! For each persistence setting (off, everysec) and pipeline depth (1,
//! 16), the servers are measured in alternation — redis-server, then
//! corelet-kv on each shard count — for `--rounds` rounds; the median of
//! each is kept. Results go to docs/kv.md (between the `kv-bench` markers)
//! with a plot, docs/kv-bench.svg.
//!
//! ```sh
//! cargo run --release -p corelet-kv --bin kv-bench               # -n 1000000
//! cargo run --release -p corelet-kv --bin kv-bench -- -n 100000  # quick
//! ```

mod plot;

use clap::Parser;
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Benchmark corelet-kv against redis-server with redis-benchmark.
#[derive(Parser, Debug)]
struct Args {
    /// Requests per test (redis-benchmark -n).
    #[arg(short = 'n', long, default_value_t = 1_000_000)]
    requests: u64,
    /// Concurrent clients (redis-benchmark -c).
    #[arg(short = 'c', long, default_value_t = 50)]
    clients: u32,
    /// Tests (redis-benchmark -t).
    #[arg(
        short = 't',
        long,
        default_value = "set,get,incr,lpush,lpop,sadd,hset,mset"
    )]
    tests: String,
    /// Pipeline depths (redis-benchmark -P), comma-separated.
    #[arg(long, default_value = "1,16")]
    pipelines: String,
    /// corelet-kv shard counts, comma-separated.
    #[arg(long, default_value = "1,2")]
    shards: String,
    /// Random keyspace size (redis-benchmark -r; 0: one key per test, as
    /// without -r, which puts every request on one shard).
    #[arg(short = 'r', long, default_value_t = 100_000)]
    keyspace: u64,
    /// Rounds of alternation; the median is kept.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Persistence settings to run: off, everysec.
    #[arg(long, default_value = "off,everysec")]
    persistence: String,
    /// Where the results page is updated.
    #[arg(long, default_value = "docs/kv.md")]
    out: PathBuf,
}

/// One server configuration.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Server {
    Redis,
    Kv(usize),
}

impl Server {
    fn label(&self) -> String {
        match self {
            Server::Redis => "redis-server".into(),
            Server::Kv(n) => format!("corelet-kv ×{n}"),
        }
    }
}

/// One redis-benchmark result line.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    rps: f64,
    p50: f64,
    p99: f64,
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!(
            "kv-bench: {tool} not found. Install the Debian packages: \
             apt-get install -y redis-server redis-tools"
        );
        std::process::exit(2);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_listening(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(10)); // a child process starting up
    }
    panic!("server did not listen on {port}");
}

fn start(server: &Server, persistence: &str, port: u16, dir: &Path, kv: &Path) -> Child {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut cmd = match server {
        Server::Redis => {
            let mut c = Command::new("taskset");
            c.args([
                "-c",
                "0",
                "redis-server",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ]);
            c.args(["--dir", dir.to_str().unwrap()]);
            if persistence == "off" {
                c.args(["--appendonly", "no"]);
            } else {
                c.args(["--appendonly", "yes", "--appendfsync", persistence]);
            }
            c
        }
        Server::Kv(n) => {
            let mut c = Command::new(kv);
            let cores: Vec<String> = (0..*n).map(|i| i.to_string()).collect();
            c.args(["--port", &port.to_string(), "--cores", &cores.join(",")]);
            c.args(["--dir", dir.to_str().unwrap()]);
            // corelet-kv always logs; "off" is its closest: never synced.
            let fsync = if persistence == "off" {
                "no"
            } else {
                persistence
            };
            c.args(["--appendfsync", fsync, "--maxclients", "100000"]);
            c
        }
    };
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    wait_listening(port, &mut child);
    child
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

fn run_benchmark(args: &Args, port: u16, pipeline: u32) -> BTreeMap<String, Sample> {
    // The client gets the last CPU to itself (unless a corelet-kv shard
    // runs there too, as ×2 does on a 2-CPU machine).
    let last = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &last.to_string(), "redis-benchmark"]);
    cmd.args(["-p", &port.to_string(), "-t", &args.tests, "--csv"]);
    cmd.args([
        "-n",
        &args.requests.to_string(),
        "-c",
        &args.clients.to_string(),
    ]);
    cmd.args(["-P", &pipeline.to_string()]);
    if args.keyspace > 0 {
        cmd.args(["-r", &args.keyspace.to_string()]);
    }
    let out = cmd.output().expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut samples = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').map(|s| s.trim_matches('"')).collect();
        if f.len() < 7 {
            continue;
        }
        let num = |i: usize| f[i].parse::<f64>().unwrap_or(0.0);
        let name = f[0]
            .split_whitespace()
            .next()
            .unwrap_or(f[0])
            .to_lowercase();
        samples.insert(
            name,
            Sample {
                rps: num(1),
                p50: num(4),
                p99: num(6),
            },
        );
    }
    samples
}

fn median(mut v: Vec<Sample>) -> Sample {
    v.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    v.get(v.len() / 2).cloned().unwrap_or_default()
}

/// (persistence, pipeline, server, test) → median sample.
pub type Results = BTreeMap<(String, u32, String, String), Sample>;

fn main() {
    let args = Args::parse();
    need("redis-server");
    need("redis-benchmark");
    let kv = std::env::current_exe()
        .unwrap()
        .with_file_name("corelet-kv");
    if !kv.exists() {
        eprintln!(
            "kv-bench: {} not found: cargo build --release -p corelet-kv",
            kv.display()
        );
        std::process::exit(2);
    }
    let list = |s: &str| -> Vec<String> { s.split(',').map(|p| p.trim().to_owned()).collect() };
    let pipelines: Vec<u32> = list(&args.pipelines)
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    let mut servers = vec![Server::Redis];
    servers.extend(
        list(&args.shards)
            .iter()
            .map(|s| Server::Kv(s.parse().unwrap())),
    );
    let tests = list(&args.tests);
    let dir = std::env::temp_dir().join(format!("kv-bench-{}", std::process::id()));
    let mut raw: BTreeMap<(String, u32, String, String), Vec<Sample>> = BTreeMap::new();
    for persistence in list(&args.persistence) {
        for &p in &pipelines {
            for round in 0..args.rounds {
                for server in &servers {
                    let port = free_port();
                    let child = start(server, &persistence, port, &dir, &kv);
                    let started = Instant::now();
                    let samples = run_benchmark(&args, port, p);
                    stop(child);
                    eprintln!(
                        "kv-bench: {persistence} -P {p} round {} {}: {:.1}s {:?}",
                        round + 1,
                        server.label(),
                        started.elapsed().as_secs_f64(),
                        samples
                            .iter()
                            .map(|(t, s)| (t.as_str(), s.rps as u64))
                            .collect::<Vec<_>>()
                    );
                    for (test, s) in samples {
                        raw.entry((persistence.clone(), p, server.label(), test))
                            .or_default()
                            .push(s);
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let results: Results = raw.into_iter().map(|(k, v)| (k, median(v))).collect();
    let svg = args.out.with_file_name("kv-bench.svg");
    if let Err(e) = plot::throughput(
        &svg,
        &results,
        &tests,
        &servers.iter().map(Server::label).collect::<Vec<_>>(),
    ) {
        eprintln!("kv-bench: plot: {e}");
    }
    let page = report(&args, &results, &tests, &servers, &pipelines);
    write_section(&args.out, &page);
    println!("{page}");
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} CPUs ({cpu})")
}

fn report(
    args: &Args,
    r: &Results,
    tests: &[String],
    servers: &[Server],
    pipelines: &[u32],
) -> String {
    let mut s = String::new();
    let redis_version = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(2)
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    s.push_str(&format!(
        "Measured by `cargo run --release -p corelet-kv --bin kv-bench -- -n {} -r {} --rounds {}` on {}; \
         redis-server {redis_version} pinned to CPU 0 (`taskset`), corelet-kv ×N on CPUs 0..N-1 (`--cores`), \
         redis-benchmark `-c {} -t {}` pinned to the last CPU. Requests per second (median of the rounds) and \
         p50/p99 latency in ms as redis-benchmark reports them. \"off\": redis-server without AOF or \
         RDB; corelet-kv always logs, so \"off\" runs it with `--appendfsync no`.\n\n",
        args.requests, args.keyspace, args.rounds, machine(), args.clients, args.tests
    ));
    let kv1 = Server::Kv(1).label();
    let redis = Server::Redis.label();
    let persistences: Vec<String> = {
        let mut v: Vec<String> = r.keys().map(|k| k.0.clone()).collect();
        v.dedup();
        v
    };
    for persistence in &persistences {
        for &p in pipelines {
            s.push_str(&format!(
                "### persistence {persistence}, pipeline {p}\n\n| test |"
            ));
            for srv in servers {
                s.push_str(&format!(" {} rps (p50/p99 ms) |", srv.label()));
            }
            s.push_str(" ×1 / redis |");
            for srv in servers
                .iter()
                .filter(|x| matches!(x, Server::Kv(n) if *n > 1))
            {
                s.push_str(&format!(" {} / ×1 |", srv.label()));
            }
            s.push_str("\n|---|");
            let extra = servers
                .iter()
                .filter(|x| matches!(x, Server::Kv(n) if *n > 1))
                .count();
            s.push_str(&"---:|".repeat(servers.len() + 1 + extra));
            s.push('\n');
            for test in tests {
                let get =
                    |srv: &str| r.get(&(persistence.clone(), p, srv.to_owned(), test.clone()));
                s.push_str(&format!("| {test} |"));
                for srv in servers {
                    match get(&srv.label()) {
                        Some(x) => {
                            s.push_str(&format!(" {:.0} ({:.3}/{:.3}) |", x.rps, x.p50, x.p99))
                        }
                        None => s.push_str(" – |"),
                    }
                }
                let ratio = |a: Option<&Sample>, b: Option<&Sample>| match (a, b) {
                    (Some(a), Some(b)) if b.rps > 0.0 => format!(" {:.2} |", a.rps / b.rps),
                    _ => " – |".into(),
                };
                s.push_str(&ratio(get(&kv1), get(&redis)));
                for srv in servers
                    .iter()
                    .filter(|x| matches!(x, Server::Kv(n) if *n > 1))
                {
                    s.push_str(&ratio(get(&srv.label()), get(&kv1)));
                }
                s.push('\n');
            }
            s.push('\n');
        }
    }
    s.push_str("![throughput](kv-bench.svg)\n");
    s
}

const BEGIN: &str = "<!-- kv-bench:begin (written by kv-bench; edits here are replaced) -->";
const END: &str = "<!-- kv-bench:end -->";

/// Replaces the results between the markers of `path` (appending them if
/// the page has none).
fn write_section(path: &Path, body: &str) {
    let page = std::fs::read_to_string(path).unwrap_or_default();
    let section = format!("{BEGIN}\n{body}{END}");
    let new = match (page.find(BEGIN), page.find(END)) {
        (Some(a), Some(b)) if a < b => format!("{}{section}{}", &page[..a], &page[b + END.len()..]),
        _ => format!("{page}\n## Benchmark results\n\n{section}\n"),
    };
    if let Err(e) = std::fs::write(path, new) {
        eprintln!("kv-bench: cannot write {}: {e}", path.display());
    }
}
