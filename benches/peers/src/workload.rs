//! What is measured: the runtimes, the workloads, their units and sizes.

use std::fmt;

/// One of the runtimes compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// corelet: glommio shards, one thread each.
    Corelet,
    /// Raw glommio 0.9: `spawn_local` tasks reading local channels,
    /// `shared_channel` between two executor threads.
    Glommio,
    /// stakker 0.2: single-threaded actors (local workloads only).
    Stakker,
    /// actix 0.13 on actix-rt (a `System`, plus `Arbiter` threads).
    Actix,
    /// ractor 0.16 on a two-worker tokio runtime.
    Ractor,
    /// kameo 0.22 on a two-worker tokio runtime.
    Kameo,
    /// Go: goroutines and channels (`benches/go/`, run when `go` is
    /// installed).
    Go,
}

impl Kind {
    /// Every runtime, corelet first.
    pub const ALL: [Kind; 7] = [
        Kind::Corelet,
        Kind::Glommio,
        Kind::Stakker,
        Kind::Actix,
        Kind::Ractor,
        Kind::Kameo,
        Kind::Go,
    ];
    /// The general-purpose peers corelet's ratio is taken against (the
    /// best of them per workload).
    pub const PEERS: [Kind; 4] = [Kind::Actix, Kind::Ractor, Kind::Kameo, Kind::Go];

    /// Lower-case name, as used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Corelet => "corelet",
            Kind::Glommio => "glommio",
            Kind::Stakker => "stakker",
            Kind::Actix => "actix",
            Kind::Ractor => "ractor",
            Kind::Kameo => "kameo",
            Kind::Go => "go",
        }
    }

    /// How tables and the page name it.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Glommio => "raw glommio",
            Kind::Go => "Go",
            other => other.name(),
        }
    }

    /// Parses [`Kind::name`].
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Whether the runtime can express `workload` at all: stakker runs
    /// on one thread, so the cross-thread workloads do not apply to it.
    pub fn runs(self, workload: Workload) -> bool {
        !(self == Kind::Stakker && matches!(workload, Workload::CrossTell | Workload::CrossAsk))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The unit of a workload's result; lower is better for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds (per message, per process, or for the whole run).
    Ns,
    /// Bytes per process.
    Bytes,
}

impl Unit {
    /// The JSON spelling.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Bytes => "bytes",
        }
    }
}

/// A workload: the same job written idiomatically for every runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// N fire-and-forget messages to one actor, then one ask (ns/message).
    LocalTell,
    /// Request/reply to an actor on the same thread or shard (ns/ask).
    LocalAsk,
    /// Spawn, one message, the actor stops itself, wait for its exit
    /// (ns/process, one at a time).
    SpawnExit,
    /// Resident memory per idle actor, 100,000 of them, in a fresh process
    /// (bytes/process).
    IdleMemory,
    /// A sender actor on one thread to a receiver on another (ns/message).
    CrossTell,
    /// Request/reply to an actor on another thread (ns/ask).
    CrossAsk,
    /// Savina PingPong: two actors bounce a ball N times (ns/message).
    PingPong,
    /// Savina Counting: a producer actor sends N increments, then asks
    /// (ns/message).
    Counting,
    /// Savina ForkJoin throughput: K workers, N messages each, round-robin
    /// (ns/message).
    ForkJoinThroughput,
    /// Savina ForkJoin create: N actors, each handles one message and
    /// exits (ns/actor).
    ForkJoinCreate,
    /// Savina ThreadRing: a token makes T hops around a ring of R actors
    /// (ns/hop).
    ThreadRing,
    /// Savina Big: actors ping random neighbours, which reply
    /// (ns/message).
    Big,
    /// Skynet: 1,111,111 actors in a 10-ary tree sum their numbers
    /// (ns for the whole run, in a fresh process).
    Skynet,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 13] = [
        Workload::LocalTell,
        Workload::LocalAsk,
        Workload::SpawnExit,
        Workload::IdleMemory,
        Workload::CrossTell,
        Workload::CrossAsk,
        Workload::PingPong,
        Workload::Counting,
        Workload::ForkJoinThroughput,
        Workload::ForkJoinCreate,
        Workload::ThreadRing,
        Workload::Big,
        Workload::Skynet,
    ];

    /// The key used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::LocalTell => "local_tell",
            Workload::LocalAsk => "local_ask",
            Workload::SpawnExit => "spawn_msg_exit",
            Workload::IdleMemory => "idle_memory",
            Workload::CrossTell => "cross_tell",
            Workload::CrossAsk => "cross_ask",
            Workload::PingPong => "savina_pingpong",
            Workload::Counting => "savina_counting",
            Workload::ForkJoinThroughput => "savina_fj_throughput",
            Workload::ForkJoinCreate => "savina_fj_create",
            Workload::ThreadRing => "savina_threadring",
            Workload::Big => "savina_big",
            Workload::Skynet => "skynet",
        }
    }

    /// Parses [`Workload::name`].
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    /// A short human title for tables and plots.
    pub fn title(self) -> &'static str {
        match self {
            Workload::LocalTell => "local tell",
            Workload::LocalAsk => "local ask",
            Workload::SpawnExit => "spawn + msg + exit",
            Workload::IdleMemory => "idle process memory",
            Workload::CrossTell => "cross-shard tell",
            Workload::CrossAsk => "cross-shard ask",
            Workload::PingPong => "Savina PingPong",
            Workload::Counting => "Savina Counting",
            Workload::ForkJoinThroughput => "Savina ForkJoin thru.",
            Workload::ForkJoinCreate => "Savina ForkJoin create",
            Workload::ThreadRing => "Savina ThreadRing",
            Workload::Big => "Savina Big",
            Workload::Skynet => "skynet (1.1 M procs)",
        }
    }

    /// What one unit of the result is.
    pub fn per(self) -> &'static str {
        match self {
            Workload::LocalTell
            | Workload::CrossTell
            | Workload::PingPong
            | Workload::Counting
            | Workload::ForkJoinThroughput
            | Workload::Big => "per message",
            Workload::LocalAsk | Workload::CrossAsk => "per ask",
            Workload::SpawnExit | Workload::IdleMemory | Workload::ForkJoinCreate => "per process",
            Workload::ThreadRing => "per hop",
            Workload::Skynet => "whole run",
        }
    }

    /// The unit of the result.
    pub fn unit(self) -> Unit {
        match self {
            Workload::IdleMemory => Unit::Bytes,
            _ => Unit::Ns,
        }
    }

    /// Workloads measured in a fresh child process (a re-exec of this
    /// binary), one per runtime and round.
    pub fn in_child(self) -> bool {
        matches!(self, Workload::IdleMemory | Workload::Skynet)
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How big each workload is. Every runtime gets the same sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Messages in [`Workload::LocalTell`].
    pub local_tell: u64,
    /// Asks in [`Workload::LocalAsk`].
    pub local_ask: u64,
    /// Processes in [`Workload::SpawnExit`].
    pub spawn_exit: u64,
    /// Idle processes in [`Workload::IdleMemory`].
    pub idle: u64,
    /// Messages in [`Workload::CrossTell`].
    pub cross_tell: u64,
    /// Asks in [`Workload::CrossAsk`].
    pub cross_ask: u64,
    /// Round trips in [`Workload::PingPong`] (two messages each).
    pub ping_pong: u64,
    /// Increments in [`Workload::Counting`].
    pub counting: u64,
    /// Workers in [`Workload::ForkJoinThroughput`].
    pub fj_workers: u64,
    /// Messages per worker in [`Workload::ForkJoinThroughput`].
    pub fj_messages: u64,
    /// Actors in [`Workload::ForkJoinCreate`].
    pub fj_create: u64,
    /// Actors in the ring of [`Workload::ThreadRing`].
    pub ring_actors: u64,
    /// Hops of the token in [`Workload::ThreadRing`].
    pub ring_hops: u64,
    /// Actors in [`Workload::Big`].
    pub big_actors: u64,
    /// Pings each actor sends in [`Workload::Big`].
    pub big_pings: u64,
    /// Leaves of the skynet tree (a power of ten; 10^6 gives 1,111,111
    /// processes).
    pub skynet_leaves: u64,
}

impl Sizes {
    /// The sizes of a normal run.
    pub fn full() -> Sizes {
        Sizes {
            local_tell: 1_000_000,
            local_ask: 200_000,
            spawn_exit: 100_000,
            idle: 100_000,
            cross_tell: 2_000_000,
            cross_ask: 100_000,
            ping_pong: 200_000,
            counting: 1_000_000,
            fj_workers: 16,
            fj_messages: 50_000,
            fj_create: 100_000,
            ring_actors: 100,
            ring_hops: 1_000_000,
            big_actors: 100,
            big_pings: 2_000,
            skynet_leaves: 1_000_000,
        }
    }

    /// The sizes of `--quick`: every workload a few times smaller, except
    /// idle memory and skynet, whose sizes are part of their definition.
    pub fn quick() -> Sizes {
        Sizes {
            local_tell: 200_000,
            local_ask: 40_000,
            spawn_exit: 20_000,
            idle: 100_000,
            cross_tell: 400_000,
            cross_ask: 20_000,
            ping_pong: 40_000,
            counting: 200_000,
            fj_workers: 16,
            fj_messages: 10_000,
            fj_create: 20_000,
            ring_actors: 100,
            ring_hops: 200_000,
            big_actors: 100,
            big_pings: 400,
            skynet_leaves: 1_000_000,
        }
    }

    /// Tiny sizes for the unit tests: every check runs, in milliseconds.
    pub fn tiny() -> Sizes {
        Sizes {
            local_tell: 1_000,
            local_ask: 100,
            spawn_exit: 50,
            idle: 500,
            cross_tell: 1_000,
            cross_ask: 100,
            ping_pong: 100,
            counting: 1_000,
            fj_workers: 4,
            fj_messages: 100,
            fj_create: 100,
            ring_actors: 10,
            ring_hops: 1_000,
            big_actors: 10,
            big_pings: 20,
            skynet_leaves: 1_000,
        }
    }

    /// A tenth of these sizes (at least 1; the skynet tree one level
    /// shallower, idle memory unchanged), for warm-up rounds.
    pub fn warm_up(&self) -> Sizes {
        let tenth = |n: u64| (n / 10).max(1);
        Sizes {
            local_tell: tenth(self.local_tell),
            local_ask: tenth(self.local_ask),
            spawn_exit: tenth(self.spawn_exit),
            idle: self.idle,
            cross_tell: tenth(self.cross_tell),
            cross_ask: tenth(self.cross_ask),
            ping_pong: tenth(self.ping_pong),
            counting: tenth(self.counting),
            fj_workers: self.fj_workers,
            fj_messages: tenth(self.fj_messages),
            fj_create: tenth(self.fj_create),
            ring_actors: self.ring_actors,
            ring_hops: tenth(self.ring_hops),
            big_actors: self.big_actors,
            big_pings: tenth(self.big_pings),
            skynet_leaves: tenth(self.skynet_leaves),
        }
    }

    /// The sizes as a JSON object keyed by field name (what the Go peer
    /// reads).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "local_tell": self.local_tell,
            "local_ask": self.local_ask,
            "spawn_exit": self.spawn_exit,
            "idle": self.idle,
            "cross_tell": self.cross_tell,
            "cross_ask": self.cross_ask,
            "ping_pong": self.ping_pong,
            "counting": self.counting,
            "fj_workers": self.fj_workers,
            "fj_messages": self.fj_messages,
            "fj_create": self.fj_create,
            "ring_actors": self.ring_actors,
            "ring_hops": self.ring_hops,
            "big_actors": self.big_actors,
            "big_pings": self.big_pings,
            "skynet_leaves": self.skynet_leaves,
        })
        .to_string()
    }

    /// Looks a profile up by name (`full`, `quick`, `tiny`).
    pub fn by_name(name: &str) -> Option<Sizes> {
        match name {
            "full" => Some(Sizes::full()),
            "quick" => Some(Sizes::quick()),
            "tiny" => Some(Sizes::tiny()),
            _ => None,
        }
    }
}

/// The sum 0 + 1 + … + (n − 1): what a workload that sends the numbers
/// below `n` must add up to.
pub fn sum_below(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// The number of processes of a skynet tree with `leaves` leaves.
pub fn skynet_processes(leaves: u64) -> u64 {
    let mut total = 0;
    let mut level = leaves;
    while level >= 1 {
        total += level;
        if level == 1 {
            break;
        }
        level /= 10;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()), Some(w));
        }
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()), Some(k));
        }
    }

    #[test]
    fn skynet_arithmetic() {
        assert_eq!(skynet_processes(1_000_000), 1_111_111);
        assert_eq!(sum_below(1_000_000), 499_999_500_000);
        assert_eq!(skynet_processes(1_000), 1_111);
    }
}
