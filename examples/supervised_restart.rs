//! A supervised process is restarted after it crashes; its name follows
//! the new incarnation. (Shown in the README.)

use corelet::supervisor::{self, ChildSpec, Strategy, SupervisorSpec};
use corelet::{Addr, Context, HandlerResult, Pid, Process, ReplyTo, Runtime, ShardId};

/// Answers pings; crashes when told to.
pub struct Flaky;

/// What a `Flaky` understands.
pub enum Msg {
    /// Reply with this incarnation's pid.
    Ping(ReplyTo<Pid>),
    /// Fail.
    Crash,
}

impl Process for Flaky {
    type Msg = Msg;
    async fn handle(&mut self, ctx: &mut Context<Self>, msg: Msg) -> HandlerResult {
        match msg {
            Msg::Ping(reply) => reply.send(ctx.pid()),
            Msg::Crash => return Err("boom".into()),
        }
        Ok(())
    }
}

/// Any error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Supervises a `Flaky`, crashes it, and returns the pids of the first
/// and the restarted incarnation.
pub async fn crash_and_restart() -> Result<(Pid, Pid), BoxError> {
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(ChildSpec::worker("flaky", || Flaky).name("flaky"));
    let sup = supervisor::start(spec).await?;
    let find = || async { Ok::<_, BoxError>(corelet::whereis("flaky").await?.ok_or("unnamed")?) };
    let first = find().await?;
    let exited = corelet::wait(first);
    Addr::<Flaky>::from_pid(first).tell(Msg::Crash)?;
    println!("flaky {first} exited: {}", exited.await?);
    let second = loop {
        // The supervisor has seen the exit, or will shortly: ask it.
        match sup.which_children().await?[0].status.pid() {
            Some(pid) if pid != first => break pid,
            _ => continue,
        }
    };
    assert_eq!(
        find().await?,
        second,
        "the name follows the new incarnation"
    );
    assert_eq!(
        Addr::<Flaky>::from_pid(second).ask(Msg::Ping).await?,
        second
    );
    println!("restarted as {second}, still registered as \"flaky\"");
    sup.stop().await?;
    Ok((first, second))
}

fn main() -> Result<(), BoxError> {
    let rt = Runtime::builder().build()?;
    rt.block_on(ShardId(0), crash_and_restart)??;
    Ok(())
}
