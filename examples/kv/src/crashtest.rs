//! The crash test, shared by `tests/crash.rs` (20 cycles) and the
//! `kv-crash` binary (as many as asked).
//!
//! One cycle: start the server binary as a child (`--appendfsync always`,
//! several shards, a small rewrite threshold so that rewrites happen and
//! get interrupted too), let client threads write while recording every
//! acknowledged write, SIGKILL the server at a random moment, restart it
//! on the same directory and check:
//!
//! - every acknowledged write is there with its value;
//! - the write each client had in flight (unacknowledged) is wholly there
//!   or wholly absent;
//! - keys acknowledged with a 1 ms expiry stay expired.
//!
//! Each client owns its keys (so the expected state is exact): a string
//! key it overwrites, a counter it increments, a list it appends to.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the checker knows about one client's keys.
#[derive(Clone, Debug, Default)]
struct Model {
    value: Option<String>,
    counter: i64,
    list: i64,
    expiring: Vec<String>,
}

/// An operation a client sends.
#[derive(Clone, Debug)]
enum Op {
    Set(String),
    Incr,
    Push(i64),
    SetExpiring(String),
}

/// Settings of a crash run.
#[derive(Clone, Debug)]
pub struct CrashConfig {
    /// The server binary.
    pub binary: PathBuf,
    /// Data directory (kept across cycles).
    pub dir: PathBuf,
    /// Shards.
    pub shards: usize,
    /// Client threads.
    pub clients: usize,
    /// Longest time before the kill.
    pub max_run: Duration,
    /// Random seed.
    pub seed: u64,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(cfg: &CrashConfig, port: u16) -> Result<Child, String> {
    let child = Command::new(&cfg.binary)
        .args(["--port", &port.to_string(), "--appendfsync", "always"])
        .args([
            "--shards",
            &cfg.shards.to_string(),
            "--aof-rewrite-min-size",
            "32kb",
        ])
        .arg("--dir")
        .arg(&cfg.dir)
        .env("CORELET_PIN", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", cfg.binary.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(5)); // waiting for a child process to listen
    }
    Err("server did not start".into())
}

/// A minimal blocking RESP client (requests as arrays, replies parsed).
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> std::io::Result<Self> {
        let w = TcpStream::connect(("127.0.0.1", port))?;
        w.set_nodelay(true)?;
        w.set_read_timeout(Some(Duration::from_secs(30)))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Self { w, r })
    }

    fn call(&mut self, args: &[&str]) -> std::io::Result<String> {
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.w.write_all(&crate::resp::encode_request(&refs))?;
        self.reply()
    }

    /// A reply flattened to text: `+OK`→`OK`, `:3`→`3`, bulk→its text,
    /// nil→`(nil)`, arrays→elements joined by `,`.
    fn reply(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end().to_owned();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" | ":" => Ok(rest.to_owned()),
            "-" => Ok(format!("ERROR {rest}")),
            "$" if rest == "-1" => Ok("(nil)".into()),
            "$" => {
                let n: usize = rest.parse().map_err(std::io::Error::other)?;
                let mut buf = vec![0; n + 2];
                std::io::Read::read_exact(&mut self.r, &mut buf)?;
                Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
            }
            "*" => {
                let n: i64 = rest.parse().map_err(std::io::Error::other)?;
                let items: Result<Vec<String>, _> = (0..n.max(0)).map(|_| self.reply()).collect();
                Ok(items?.join(","))
            }
            _ => Err(std::io::Error::other(format!("bad reply {line:?}"))),
        }
    }
}

/// Runs one client until the server dies; returns its model and the op
/// that was in flight (sent, not acknowledged).
fn write_until_killed(port: u16, id: usize, mut model: Model, seed: u64) -> (Model, Option<Op>) {
    let Ok(mut c) = Client::connect(port) else {
        return (model, None);
    };
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut seq = 0u64;
    loop {
        seq += 1;
        let op = match rng.u8(..10) {
            0..=3 => Op::Set(format!("v{id}-{seq}-{}", "x".repeat(rng.usize(..200)))),
            4..=5 => Op::Incr,
            6..=8 => Op::Push(model.list + 1),
            _ => Op::SetExpiring(format!("exp:{id}:{seq}")),
        };
        let reply = match &op {
            Op::Set(v) => c.call(&["SET", &format!("str:{id}"), v]),
            Op::Incr => c.call(&["INCR", &format!("ctr:{id}")]),
            Op::Push(n) => c.call(&["RPUSH", &format!("list:{id}"), &n.to_string()]),
            Op::SetExpiring(k) => c.call(&["SET", k, "gone", "PX", "1"]),
        };
        match reply {
            Ok(r) if r.starts_with("ERROR") => panic!("server error for {op:?}: {r}"),
            Ok(_) => match op {
                Op::Set(v) => model.value = Some(v),
                Op::Incr => model.counter += 1,
                Op::Push(n) => model.list = n,
                Op::SetExpiring(k) => model.expiring.push(k),
            },
            Err(_) => return (model, Some(op)),
        }
    }
}

/// Checks one client's keys after a restart and returns the model
/// updated to what is there (an unacknowledged write that made it).
fn verify(c: &mut Client, id: usize, mut m: Model, inflight: Option<Op>) -> Result<Model, String> {
    let io = |e: std::io::Error| e.to_string();
    let value = c.call(&["GET", &format!("str:{id}")]).map_err(io)?;
    let want = m.value.clone().unwrap_or_else(|| "(nil)".into());
    match &inflight {
        Some(Op::Set(v)) if value == *v => m.value = Some(v.clone()),
        _ if value == want => {}
        _ => {
            return Err(format!(
                "client {id}: str is {value:.40}, acknowledged {want:.40}"
            ))
        }
    }
    let ctr = c.call(&["GET", &format!("ctr:{id}")]).map_err(io)?;
    let ctr: i64 = if ctr == "(nil)" {
        0
    } else {
        ctr.parse().map_err(|_| format!("ctr {ctr}"))?
    };
    match &inflight {
        Some(Op::Incr) if ctr == m.counter + 1 => m.counter += 1,
        _ if ctr == m.counter => {}
        _ => {
            return Err(format!(
                "client {id}: counter {ctr}, acknowledged {}",
                m.counter
            ))
        }
    }
    let list = c
        .call(&["LRANGE", &format!("list:{id}"), "0", "-1"])
        .map_err(io)?;
    let expect = |n: i64| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    match &inflight {
        Some(Op::Push(n)) if list == expect(*n) => m.list = *n,
        _ if list == expect(m.list) => {}
        _ => {
            return Err(format!(
                "client {id}: list {list:.60}, acknowledged 1..={}",
                m.list
            ))
        }
    }
    let mut keys: Vec<String> = std::mem::take(&mut m.expiring);
    if let Some(Op::SetExpiring(k)) = inflight {
        keys.push(k);
    }
    for k in keys {
        let v = c.call(&["GET", &k]).map_err(io)?;
        if v != "(nil)" {
            return Err(format!("expired key {k} came back"));
        }
    }
    Ok(m)
}

/// Runs `cycles` kill/restart cycles; returns (passed, failed) and prints a
/// line per failure.
pub fn run(cfg: &CrashConfig, cycles: usize, mut log: impl FnMut(&str)) -> (usize, usize) {
    let _ = std::fs::remove_dir_all(&cfg.dir);
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    let mut models = vec![Model::default(); cfg.clients];
    let (mut passed, mut failed) = (0, 0);
    for cycle in 0..cycles {
        match one_cycle(cfg, &mut rng, &mut models) {
            Ok(()) => passed += 1,
            Err(e) => {
                failed += 1;
                log(&format!("cycle {cycle} (seed {}): {e}", cfg.seed));
                models = vec![Model::default(); cfg.clients];
                let _ = std::fs::remove_dir_all(&cfg.dir);
            }
        }
    }
    (passed, failed)
}

fn one_cycle(
    cfg: &CrashConfig,
    rng: &mut fastrand::Rng,
    models: &mut [Model],
) -> Result<(), String> {
    let port = free_port();
    let mut child = start(cfg, port)?;
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = models
            .iter()
            .enumerate()
            .map(|(id, m)| {
                let (m, seed) = (m.clone(), rng.u64(..));
                s.spawn(move || write_until_killed(port, id, m, seed))
            })
            .collect();
        let run = rng.u64(..cfg.max_run.as_micros() as u64);
        std::thread::sleep(Duration::from_micros(run)); // the random moment of the crash
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    let port = free_port();
    let mut child = start(cfg, port)?;
    let outcome = (|| -> Result<(), String> {
        let mut c = Client::connect(port).map_err(|e| e.to_string())?;
        for (id, r) in results.into_iter().enumerate() {
            let (m, inflight) = r.map_err(|_| format!("client {id} panicked"))?;
            models[id] = verify(&mut c, id, m, inflight)?;
        }
        Ok(())
    })();
    // Stop gracefully: SIGTERM, exit status 0 expected.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().map_err(|e| e.to_string())?;
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    outcome.map_err(|e| format!("{e}\nserver stderr:\n{stderr}"))?;
    if !status.success() {
        return Err(format!("graceful stop exited with {status}: {stderr}"));
    }
    Ok(())
}

/// A data directory under the system's temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("corelet-kv-{tag}-{}", std::process::id()))
}

/// Removes a directory, ignoring errors.
pub fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
