//! DESIGN.md: a same-shard message costs no allocation. A counting global
//! allocator (so this file is its own test binary, with one test) counts
//! the allocations made on the shard thread while it sends and handles
//! thousands of messages: the count must not grow with the number of
//! messages.

use corelet::{Context, HandlerResult, Process, ReplyTo, Runtime, ShardId};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every call to `System`; the thread-local counter is a
// const-initialised `Cell` (no allocation, no destructor), read with
// `try_with` so a call during thread teardown is simply not counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours, passed through unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours, passed through unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(|c| c.get())
}

#[derive(Default)]
struct Sink(u64);

enum Msg {
    Add(u64),
    Total(ReplyTo<u64>),
}

impl Process for Sink {
    type Msg = Msg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        match msg {
            Msg::Add(n) => self.0 += n,
            Msg::Total(reply) => reply.send(self.0),
        }
        Ok(())
    }
}

#[test]
fn same_shard_messages_do_not_allocate() {
    const N: u64 = 10_000;
    let rt = Runtime::builder().shards(1).pin(false).build().unwrap();
    let (send_only, round) = rt
        .block_on(ShardId(0), || async {
            let sink = corelet::spawn(Sink::default()).unwrap();
            // Warm up: the mailbox queue grows to N once.
            for i in 0..N {
                sink.tell_local(Msg::Add(i)).unwrap();
            }
            assert_eq!(sink.ask_local(Msg::Total).await.unwrap(), N * (N - 1) / 2);

            // Sending N messages allocates nothing.
            let before = allocations();
            for i in 0..N {
                sink.tell_local(Msg::Add(i)).unwrap();
            }
            let send_only = allocations() - before;

            // Handling them (plus one ask to know they were handled) costs
            // a constant number of allocations, not one per message.
            let before = allocations();
            let total = sink.ask_local(Msg::Total).await.unwrap();
            let round = allocations() - before;
            assert_eq!(total, N * (N - 1));
            (send_only, round)
        })
        .unwrap();
    assert_eq!(send_only, 0, "same-shard tells allocated");
    assert!(round < 8, "handling {N} messages made {round} allocations");
}
