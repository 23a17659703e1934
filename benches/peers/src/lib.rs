//! Side-by-side benchmarks of corelet against raw glommio, stakker,
//! actix, ractor, kameo and Go.
//!
//! Each workload is written idiomatically for each runtime and checks its
//! own answer; the harness runs the runtimes alternately, several rounds,
//! in one process, and reports medians, the ratio of corelet to the best
//! of actix, ractor, kameo and Go, and the ratio of corelet to raw
//! glommio (hand-written tasks and channels on the same executor). See
//! `docs/benchmarks.md` in the repository for results and
//! `cargo run --release -p corelet-peers -- --help` for the commands.
//!
//! The runtimes: corelet ([`on_corelet`]); raw glommio ([`on_glommio`]:
//! `spawn_local` tasks reading local channels, `shared_channel` between two
//! executors), the floor an actor runtime on glommio should reach; stakker
//! ([`on_stakker`]: single-threaded actors, local workloads only), the
//! floor for single-threaded actor calls; actix, ractor and kameo
//! ([`on_actix`], [`on_ractor`], [`on_kameo`]); and Go ([`on_go`]:
//! goroutines and channels in `benches/go/`, built and run when `go` is on
//! `PATH`, left out with a note otherwise).
//!
//! The modes:
//!
//! ```text
//! corelet-peers [--quick] [--json] [--runtimes corelet,glommio,...]   # the comparison
//! corelet-peers --report [--docs DIR]      # the comparison, scaling, docs/benchmarks.md
//! corelet-peers --scaling                  # corelet on 1, 2, 4 and 8 shards
//! corelet-peers --instructions [--json]    # instructions per operation (callgrind)
//! ```
//!
//! `--instructions` ([`instructions`]) is the deterministic view: each core
//! path (local tell, local ask round trip, spawn + message + exit,
//! cross-shard tell and ask) runs under `valgrind --tool=callgrind` at two
//! sizes, and the difference of the two instruction counts divided by the
//! difference of the sizes is printed per operation, beside issue 7's
//! ceilings for corelet (tell 60, ask 250, spawn + message + exit 600).
//! The same-shard counts repeat exactly; the cross-shard ones within a few
//! percent (the module docs say why, and what is counted).

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
pub mod watchdog;
pub mod workload;

pub use check::{BenchError, Result};
pub use harness::Session;
pub use workload::{Kind, Sizes, Unit, Workload};
