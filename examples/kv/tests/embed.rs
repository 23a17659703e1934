//! Embedding: the server inside a host program. The host thread calls
//! into the runtime (`block_on`, asks) while clients are being served,
//! and the server runs on a chosen CPU set (`Builder::cores`) next to a
//! second runtime on other CPUs.

mod common;
use common::{config, q, TempDir};
use corelet::{Runtime, ShardId};
use corelet_kv::batch::Batch;
use corelet_kv::cmd::Cmd;
use corelet_kv::partition::PartMsg;
use corelet_kv::route::shard_of;
use corelet_kv::Server;

#[test]
fn a_host_thread_calls_in_while_clients_are_served() {
    let dir = TempDir::new("embed");
    let cpus = core_affinity_ids();
    let server = Server::start(
        config(dir.path()),
        Runtime::builder().cores([cpus[0]]).shards(2).name("kv"),
    )
    .unwrap();
    // A second runtime, elsewhere, alive at the same time.
    let other = Runtime::builder()
        .cores([*cpus.last().unwrap()])
        .shards(1)
        .name("host")
        .build()
        .unwrap();
    let port = server.port();
    let parts = server.shared().parts.clone();
    std::thread::scope(|s| {
        let clients = s.spawn(move || {
            let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .unwrap()
                .get_connection()
                .unwrap();
            for i in 0..500 {
                assert_eq!(
                    q::<String>(&mut con, &["SET", &format!("c{i}"), &i.to_string()]),
                    Ok("OK".into())
                );
            }
        });
        // Meanwhile the host asks the partitions directly, from outside
        // (Runtime::ask) and from a future on a shard (block_on + ask).
        let rt = server.runtime();
        for round in 0..100 {
            let key = format!("host{round}");
            let owner = shard_of(key.as_bytes(), parts.len());
            let mut set = Batch::default();
            set.push(Cmd::Set, ["SET".into(), key.clone().into(), "h".into()]);
            let replies = rt.ask(&parts[owner], |r| PartMsg::Exec(set, r)).unwrap();
            assert_eq!(replies.get(0), b"+OK\r\n");
            let part = parts[owner];
            let got = rt
                .block_on(ShardId(((owner + 1) % 2) as u16), move || async move {
                    let mut get = Batch::default();
                    get.push(Cmd::Get, ["GET".into(), key.into()]);
                    let r = part.ask(|reply| PartMsg::Exec(get, reply)).await.unwrap();
                    r.get(0).to_vec()
                })
                .unwrap();
            assert_eq!(got, b"$1\r\nh\r\n");
            assert_eq!(
                other
                    .block_on(ShardId(0), move || async move { round * 2 })
                    .unwrap(),
                round * 2
            );
        }
        clients.join().unwrap();
    });
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]), Ok(600));
    server.shutdown().unwrap();
}

fn core_affinity_ids() -> Vec<usize> {
    let set = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = set
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap();
    corelet_kv::config::parse_cpus(line.split(':').nth(1).unwrap().trim())
        .unwrap()
        .0
}
