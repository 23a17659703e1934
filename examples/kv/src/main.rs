//! `corelet-kv`: the server binary (see `--help`).

use clap::Parser;
use corelet_kv::{Args, Config, Server};

fn main() {
    let args = Args::parse();
    let cfg = Config::from_args(&args);
    let mut builder = corelet::Runtime::builder().name("corelet-kv");
    if let Some(cpus) = &args.cores {
        builder = builder.cores(cpus.0.iter().copied());
    }
    if let Some(n) = args.shards {
        builder = builder.shards(n);
    }
    let server = match Server::start(cfg.clone(), builder) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corelet-kv: cannot start: {e}");
            std::process::exit(1);
        }
    };
    for line in &server.load_report {
        println!("corelet-kv: {line}");
    }
    let stop = server.stopper();
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    println!("corelet-kv: signal {sig}: shutting down");
                    let _ = stop.send(());
                }
            });
        }
        Err(e) => eprintln!("corelet-kv: cannot catch signals: {e}"),
    }
    println!(
        "corelet-kv: {} shards, appendfsync {}, ready to accept connections on {}:{}",
        server.runtime().shard_count(),
        cfg.fsync.name(),
        cfg.bind,
        server.port()
    );
    server.wait_for_stop();
    match server.shutdown() {
        Ok(()) => println!("corelet-kv: logs synced, bye"),
        Err(e) => {
            eprintln!("corelet-kv: shutdown: {e}");
            std::process::exit(1);
        }
    }
}
