//! The README example: a counter process, told and asked across shards.
//!
//! ```text
//! cargo run --release --example counter
//! ```

use corelet::{Context, HandlerResult, Process, ReplyTo, Runtime, ShardId};

/// Adds up what it is told.
pub struct Counter(pub u64);

/// What a `Counter` understands.
pub enum Msg {
    /// Add to the total.
    Add(u64),
    /// Answer with the total.
    Get(ReplyTo<u64>),
}

impl Process for Counter {
    type Msg = Msg;
    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        match msg {
            Msg::Add(n) => self.0 += n,
            Msg::Get(reply) => reply.send(self.0),
        }
        Ok(())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let rt = Runtime::builder().build()?; // one shard per core
    let last = ShardId(rt.shard_count() as u16 - 1);
    let total = rt.block_on(ShardId(0), move || async move {
        // The factory runs on `last`, so Counter need not be Send.
        let counter = corelet::spawn_on(last, || Counter(0)).await?;
        counter.tell(Msg::Add(40))?; // fire-and-forget
        counter.tell(Msg::Add(2))?;
        Ok::<u64, BoxError>(counter.ask(Msg::Get).await?) // request/reply
    })??;
    assert_eq!(total, 42);
    Ok(())
}
