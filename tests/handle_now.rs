//! `Process::handle_now`, the synchronous fast path of a message:
//!
//! - a message it handles never reaches `handle`; one it hands on
//!   (`Handled::Later`) does, and the two kinds keep their order;
//! - `Err` from it stops the process with that error, a panic with
//!   `Panicked`, and in both cases the terminate hook runs once;
//! - `Context::stop` called from it takes effect when it returns, and the
//!   messages queued behind it are never handled;
//! - a process that hands a message on without implementing `handle`
//!   stops with an error that says so, instead of losing the message
//!   silently;
//! - a message handled there may ask, tell and spawn like any handler;
//! - a terminate, kill or shutdown a handler sends to its own process there
//!   takes effect before the next queued message (the run loop's inner
//!   loop re-checks the header's flags after each message: each test fails
//!   or hangs if its flag is left out of that check).

use corelet::{Context, ExitReason, Handled, HandlerResult, Process, ReplyTo, Runtime, ShardId};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

fn runtime(shards: usize) -> Runtime {
    Runtime::builder()
        .shards(shards)
        .pin(false)
        .build()
        .unwrap()
}

/// Where each message was handled, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Now(u32),
    Later(u32),
}

#[derive(Default)]
struct Mixed {
    log: Rc<RefCell<Vec<Seen>>>,
    terminated: Rc<RefCell<u32>>,
}

enum MixedMsg {
    /// Handled in `handle_now`.
    Fast(u32),
    /// Handed on to `handle`, which awaits a timer first.
    Slow(u32),
    /// `handle_now` returns this error.
    Fail,
    /// `handle_now` panics.
    Panic,
    /// `handle_now` calls `ctx.stop()`.
    Stop,
    /// Answers the log so far.
    Log(ReplyTo<Vec<Seen>>),
}

impl Process for Mixed {
    type Msg = MixedMsg;

    fn handle_now(&mut self, ctx: &mut Context<Self>, msg: MixedMsg) -> Handled<MixedMsg> {
        match msg {
            MixedMsg::Fast(n) => self.log.borrow_mut().push(Seen::Now(n)),
            MixedMsg::Fail => return Handled::Done(Err("refused at once".into())),
            MixedMsg::Panic => panic!("panicked at once"),
            MixedMsg::Stop => ctx.stop(),
            MixedMsg::Log(reply) => reply.send(self.log.borrow().clone()),
            slow @ MixedMsg::Slow(_) => return Handled::Later(slow),
        }
        Ok(()).into()
    }

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: MixedMsg) -> HandlerResult {
        match msg {
            MixedMsg::Slow(n) => {
                // Really suspends: the fast messages behind it must wait.
                glommio::timer::sleep(Duration::from_millis(1)).await;
                self.log.borrow_mut().push(Seen::Later(n));
                Ok(())
            }
            _ => Err("handle_now handed on a message it should have handled".into()),
        }
    }

    async fn terminate(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        *self.terminated.borrow_mut() += 1;
    }
}

#[test]
fn fast_and_handed_on_messages_keep_their_order() {
    let mut rt = runtime(1);
    let log = rt
        .block_on(ShardId(0), || async {
            let addr = corelet::spawn(Mixed::default()).unwrap();
            for n in 0..20 {
                let msg = if n % 3 == 1 {
                    MixedMsg::Slow(n)
                } else {
                    MixedMsg::Fast(n)
                };
                addr.tell(msg).unwrap();
            }
            addr.ask(MixedMsg::Log).await.unwrap()
        })
        .unwrap();
    let want: Vec<Seen> = (0..20)
        .map(|n| {
            if n % 3 == 1 {
                Seen::Later(n)
            } else {
                Seen::Now(n)
            }
        })
        .collect();
    assert_eq!(log, want);
    rt.shutdown().unwrap();
}

/// Spawns a `Mixed`, tells it `first` then `Fast(99)`, and returns its exit
/// reason, what it logged and how often its terminate hook ran.
fn exit_after(first: fn() -> MixedMsg) -> (ExitReason, Vec<Seen>, u32) {
    let mut rt = runtime(1);
    let out = rt
        .block_on(ShardId(0), move || async move {
            let state = Mixed::default();
            let (log, terminated) = (state.log.clone(), state.terminated.clone());
            let addr = corelet::spawn(state).unwrap();
            let exited = corelet::wait(addr.pid());
            addr.tell(MixedMsg::Fast(1)).unwrap();
            addr.tell(first()).unwrap();
            addr.tell(MixedMsg::Fast(99)).unwrap();
            let reason = exited.await.unwrap();
            let seen = log.borrow().clone();
            let runs = *terminated.borrow();
            (reason, seen, runs)
        })
        .unwrap();
    rt.shutdown().unwrap();
    out
}

#[test]
fn an_error_from_handle_now_stops_the_process_with_it() {
    let (reason, seen, terminated) = exit_after(|| MixedMsg::Fail);
    assert_eq!(reason, ExitReason::Error("refused at once".into()));
    assert_eq!(
        seen,
        vec![Seen::Now(1)],
        "nothing after the failure is handled"
    );
    assert_eq!(terminated, 1);
}

#[test]
fn a_panic_in_handle_now_stops_the_process_as_panicked() {
    let (reason, seen, terminated) = exit_after(|| MixedMsg::Panic);
    match reason {
        ExitReason::Panicked(text) => assert!(text.contains("panicked at once"), "{text}"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(seen, vec![Seen::Now(1)]);
    assert_eq!(terminated, 1);
}

#[test]
fn stop_from_handle_now_takes_effect_when_it_returns() {
    let (reason, seen, terminated) = exit_after(|| MixedMsg::Stop);
    assert_eq!(reason, ExitReason::Normal);
    assert_eq!(
        seen,
        vec![Seen::Now(1)],
        "the message behind the stop is not handled"
    );
    assert_eq!(terminated, 1);
}

/// Handles `0` at once and hands everything else on, with no `handle`.
struct NoHandle;

impl Process for NoHandle {
    type Msg = u32;

    fn handle_now(&mut self, _ctx: &mut Context<Self>, msg: u32) -> Handled<u32> {
        if msg == 0 {
            Handled::Done(Ok(()))
        } else {
            Handled::Later(msg)
        }
    }
}

#[test]
fn handing_on_with_no_handle_stops_with_a_clear_error() {
    let mut rt = runtime(1);
    let reason = rt
        .block_on(ShardId(0), || async {
            let addr = corelet::spawn(NoHandle).unwrap();
            let exited = corelet::wait(addr.pid());
            addr.tell(0).unwrap();
            addr.tell(7).unwrap();
            exited.await.unwrap()
        })
        .unwrap();
    match reason {
        ExitReason::Error(text) => {
            assert!(
                text.contains("does not implement Process::handle"),
                "{text}"
            )
        }
        other => panic!("expected an Error exit, got {other:?}"),
    }
    rt.shutdown().unwrap();
}

/// Forwards each number, plus one, to the next process by `ask`, from
/// `handle_now`: the reply arrives later, as a message to itself.
struct Relay {
    next: Option<corelet::Addr<Relay>>,
    got: Rc<RefCell<Vec<u64>>>,
}

enum RelayMsg {
    Num(u64),
    Double(u64, ReplyTo<u64>),
}

impl Process for Relay {
    type Msg = RelayMsg;

    fn handle_now(&mut self, _ctx: &mut Context<Self>, msg: RelayMsg) -> Handled<RelayMsg> {
        match msg {
            RelayMsg::Num(n) => {
                self.got.borrow_mut().push(n);
                if let Some(next) = self.next {
                    if let Err(e) = next.tell(RelayMsg::Num(n + 1)) {
                        return Handled::Done(Err(e.to_string().into()));
                    }
                }
            }
            RelayMsg::Double(n, reply) => reply.send(n * 2),
        }
        Handled::Done(Ok(()))
    }
}

#[test]
fn handle_now_tells_and_answers_across_shards() {
    let mut rt = runtime(3);
    let (got, doubled) = rt
        .block_on(ShardId(0), || async {
            let got = Rc::new(RefCell::new(Vec::new()));
            let last = corelet::spawn(Relay {
                next: None,
                got: got.clone(),
            })
            .unwrap();
            let first = corelet::spawn(Relay {
                next: Some(last),
                got: got.clone(),
            })
            .unwrap();
            first.tell(RelayMsg::Num(10)).unwrap();
            // Once `first` answers, it has handled `Num(10)` and told
            // `last` `Num(11)`, which `last` handles before this ask.
            assert_eq!(first.ask(|r| RelayMsg::Double(1, r)).await.unwrap(), 2);
            let doubled = last.ask(|r| RelayMsg::Double(21, r)).await.unwrap();
            let seen = got.borrow().clone();
            (seen, doubled)
        })
        .unwrap();
    assert_eq!(got, vec![10, 11]);
    assert_eq!(doubled, 42);
    // And from another shard: the reply crosses back through the ring.
    let doubled = rt
        .block_on(ShardId(1), || async {
            let d = corelet::spawn_on(ShardId(2), || Relay {
                next: None,
                got: Rc::default(),
            })
            .await
            .unwrap();
            d.ask(|r| RelayMsg::Double(50, r)).await.unwrap()
        })
        .unwrap();
    assert_eq!(doubled, 100);
    rt.shutdown().unwrap();
}

// ---------------------------------------------------------------------------
// Signals a handler sends to its own process take effect before the next
// queued message, also when the run loop stays in its inner loop.

/// Logs the numbers it is sent; signals itself on request.
struct SelfSignal {
    log: Vec<u32>,
}

enum SelfMsg {
    Count(u32),
    TerminateMe,
    KillMe,
    ShutdownMe,
    Log(ReplyTo<Vec<u32>>),
}

impl Process for SelfSignal {
    type Msg = SelfMsg;

    fn handle_now(&mut self, ctx: &mut Context<Self>, msg: SelfMsg) -> Handled<SelfMsg> {
        match msg {
            SelfMsg::Count(n) => self.log.push(n),
            SelfMsg::TerminateMe => corelet::terminate(ctx.pid()).unwrap(),
            SelfMsg::KillMe => corelet::kill(ctx.pid()).unwrap(),
            SelfMsg::ShutdownMe => corelet::shutdown(ctx.pid()).unwrap(),
            SelfMsg::Log(reply) => reply.send(self.log.clone()),
        }
        Handled::Done(Ok(()))
    }
}

/// Queues `Count(1)`, `signal`, `Count(2)`, `Count(3)` and a `Log` request
/// in one turn (the process runs only after), then returns the answer to
/// the `Log`, the process's exit reason, and whether a `Count` told after
/// the answer was still taken.
fn self_signal(signal: SelfMsg) -> (Result<Vec<u32>, corelet::AskError>, ExitReason, bool) {
    runtime(1)
        .block_on(ShardId(0), move || async move {
            let p = corelet::spawn(SelfSignal { log: Vec::new() }).unwrap();
            // Registered now, resolved when it exits (later, its exit
            // would be `NoProcess`).
            let exited = corelet::wait(p.pid());
            p.tell(SelfMsg::Count(1)).unwrap();
            p.tell(signal).unwrap();
            p.tell(SelfMsg::Count(2)).unwrap();
            p.tell(SelfMsg::Count(3)).unwrap();
            let log = p.ask(SelfMsg::Log).await;
            let late = p.tell(SelfMsg::Count(4)).is_ok();
            let reason = exited.await.unwrap();
            (log, reason, late)
        })
        .unwrap()
}

#[test]
fn a_terminate_sent_to_itself_overtakes_the_queued_messages() {
    let (log, reason, late) = self_signal(SelfMsg::TerminateMe);
    assert!(log.is_err(), "the queued request was answered: {log:?}");
    assert_eq!(reason, ExitReason::Shutdown);
    assert!(!late, "a message was taken after the exit");
}

#[test]
fn a_kill_sent_to_itself_stops_it_before_the_next_message() {
    let (log, reason, late) = self_signal(SelfMsg::KillMe);
    assert!(log.is_err(), "the queued request was answered: {log:?}");
    assert_eq!(reason, ExitReason::Killed);
    assert!(!late, "a message was taken after the exit");
}

#[test]
fn a_shutdown_sent_to_itself_drains_what_was_queued_and_then_stops() {
    let (log, reason, late) = self_signal(SelfMsg::ShutdownMe);
    assert_eq!(log, Ok(vec![1, 2, 3]), "everything queued before it");
    assert_eq!(reason, ExitReason::Shutdown);
    assert!(!late, "a message told after the drain was taken");
}
