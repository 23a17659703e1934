//! Side-by-side benchmarks of corelet against raw glommio, stakker,
//! actix, ractor, kameo and Go.
//!
//! Each workload is written idiomatically for each runtime and checks its
//! own answer; the harness runs the runtimes alternately, several rounds,
//! in one process, and reports medians, the ratio of corelet to the best
//! of actix, ractor, kameo and Go, and the ratio of corelet to raw
//! glommio (hand-written tasks and channels on the same executor). See `docs/benchmarks.md` in the repository for results and
//! `cargo run --release -p corelet-peers -- --help` for the commands.

pub mod check;
pub mod child;
pub mod goals;
pub mod harness;
pub mod instructions;
pub mod on_actix;
pub mod on_corelet;
pub mod on_glommio;
pub mod on_go;
pub mod on_kameo;
pub mod on_ractor;
pub mod on_stakker;
pub mod plot;
pub mod report;
pub mod rss;
pub mod table;
pub mod tokio_rt;
pub mod workload;

pub use check::{BenchError, Result};
pub use harness::Session;
pub use workload::{Kind, Sizes, Unit, Workload};
