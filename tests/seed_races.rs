//! The seed races (examples/seed_races) at a small iteration count, on two
//! and on eight unpinned shards. The full run is
//! `cargo run --release --example seed_races -- --iterations 100000`.

#[path = "../examples/seed_races/scenarios.rs"]
#[allow(dead_code)]
mod scenarios;

use corelet::Runtime;
use scenarios::{Fixture, SCENARIOS};

fn run(shards: usize, iterations: usize, storm: usize) {
    let rt = Runtime::builder()
        .shards(shards)
        .pin(false)
        .build()
        .unwrap();
    let mut fx = Fixture::new(rt, storm).unwrap();
    for i in 0..iterations {
        for (name, scenario) in SCENARIOS {
            if let Err(why) = scenario(&mut fx) {
                panic!("iteration {i} on {shards} shards: {name}: {why}");
            }
        }
    }
    fx.into_runtime().shutdown().unwrap();
}

#[test]
fn seed_races_on_two_shards() {
    run(2, 200, 64);
}

#[test]
fn seed_races_on_eight_shards() {
    run(8, 50, 256);
}

#[test]
fn terminate_storm_with_thousands_of_processes() {
    let rt = Runtime::builder().shards(4).pin(false).build().unwrap();
    let mut fx = Fixture::new(rt, 4096).unwrap();
    for _ in 0..3 {
        scenarios::storm(&mut fx).unwrap();
    }
    fx.into_runtime().shutdown().unwrap();
}
