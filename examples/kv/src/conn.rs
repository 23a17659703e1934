//! A client connection: one corelet process per socket, on the shard that
//! accepted it.
//!
//! The process owns the socket, registered with its shard's readiness
//! reactor ([`crate::readiness`]: plain non-blocking `recv`/`send`, one
//! `epoll_wait` per shard round for the sockets that must wait). Reads run
//! in a stream the process owns (`Context::attach_stream`) and arrive as
//! `ConnMsg::Read` messages, one at a time: the process grants the next read only after it has answered
//! everything in the previous one. So the process is idle while a read is
//! pending — a shutdown's `terminate` reaches it at once — and a client
//! that pipelines faster than it reads its replies is throttled by TCP
//! rather than buffered here.
//!
//! A read lands in spare capacity of a buffer shared by successive reads,
//! and becomes the connection's input without a copy. One read's commands
//! are parsed without copying (arguments are slices of one frozen buffer) and grouped by owning shard into one batch per
//! shard, sent as asks; the replies are written back in command order.
//! Multi-shard and whole-keyspace commands are barriers: the batches
//! before them are answered first.

use crate::batch::{Batch, Replies};
use crate::cmd::{Cmd, Route};
use crate::partition::PartMsg;
use crate::readiness::Socket;
use crate::resp::{self, Arg, ProtoError};
use crate::route::shard_of;
use crate::server::Shared;
use bytes::{Bytes, BytesMut};
use corelet::{Context, HandlerResult, OwnedRef, Process, StreamEvent};
use glommio::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Replies buffered before they are written out (the bound on what a
/// connection holds for a slow reader, plus one reply).
const OUT_LIMIT: usize = 64 << 10;
/// Commands per round of batches.
const PLAN_LIMIT: usize = 512;
/// Bytes allocated at a time for reads (successive reads fill one
/// allocation).
const READ_SIZE: usize = 16 << 10;
/// A read asks for at least this much room (a new allocation if less is
/// left).
const READ_MIN: usize = 4 << 10;

/// What a connection receives.
pub enum ConnMsg {
    /// The next read from the socket (or its end).
    Read(StreamEvent<std::io::Result<BytesMut>>),
}

/// One client connection.
pub struct Conn {
    sock: Option<Rc<Socket>>,
    srv: Arc<Shared>,
    shard: usize,
    id: u64,
    inbuf: BytesMut,
    out: Vec<u8>,
    reader: Option<OwnedRef>,
    name: Option<Vec<u8>>,
    tx_seq: u64,
}

/// Replies waiting for one round of batches, in command order.
#[derive(Default)]
struct Plan {
    batches: Vec<Batch>,
    slots: Vec<Slot>,
    local: Vec<u8>,
}

/// Where one command's reply comes from.
#[derive(Clone, Copy)]
enum Slot {
    /// Reply `index` of shard `shard`'s batch, for command `cmd` (an
    /// index into the parsed commands, to send it again if the shard
    /// stopped before it).
    Shard {
        shard: u32,
        index: u32,
        cmd: Cmd,
        at: u32,
    },
    /// Bytes `start..end` of `Plan::local`.
    Local { start: u32, end: u32 },
}

impl Plan {
    fn push_shard(&mut self, shard: usize, cmd: Cmd, args: &[Bytes], at: usize) {
        if self.batches.len() <= shard {
            self.batches.resize_with(shard + 1, Batch::default);
        }
        let b = &mut self.batches[shard];
        self.slots.push(Slot::Shard {
            shard: shard as u32,
            index: b.len() as u32,
            cmd,
            at: at as u32,
        });
        b.push(cmd, args.iter().cloned());
    }

    fn push_local(&mut self, reply: &[u8]) {
        let start = self.local.len() as u32;
        self.local.extend_from_slice(reply);
        let end = self.local.len() as u32;
        self.slots.push(Slot::Local { start, end });
    }

    fn count(&self) -> usize {
        self.slots.len()
    }
}

/// The commands of one read: arguments, and where each command ends.
struct Parsed {
    args: Vec<Bytes>,
    bounds: Vec<usize>,
}

impl Parsed {
    fn command(&self, i: usize) -> &[Bytes] {
        let start = if i == 0 { 0 } else { self.bounds[i - 1] };
        &self.args[start..self.bounds[i]]
    }
}

/// The socket's read side as a stream of chunks. Each chunk is split off
/// one buffer whose spare capacity the next read fills.
fn reads(sock: Rc<Socket>) -> impl futures_lite::Stream<Item = std::io::Result<BytesMut>> {
    futures_lite::stream::unfold((sock, BytesMut::new()), |(sock, mut buf)| async move {
        if buf.capacity() - buf.len() < READ_MIN {
            buf.reserve(READ_SIZE);
        }
        let n = std::future::poll_fn(|cx| sock.poll_read_buf(cx, &mut buf)).await;
        match n {
            Ok(0) => None,
            Ok(_) => {
                let chunk = buf.split();
                Some((Ok(chunk), (sock, buf)))
            }
            Err(e) => Some((Err(e), (sock, buf))),
        }
    })
}

impl Conn {
    /// A connection on `shard` over `stream`, which moves to the shard's
    /// readiness reactor (run on that shard). A socket that cannot be
    /// registered is closed, and the connection stops as it starts.
    pub fn new(stream: TcpStream, srv: Arc<Shared>, shard: usize, id: u64) -> Self {
        let _ = stream.set_nodelay(true);
        let sock = match Socket::from_glommio(stream) {
            Ok(s) => Some(Rc::new(s)),
            Err(e) => {
                eprintln!("corelet-kv: shard {shard}: connection not registered: {e}");
                None
            }
        };
        Self {
            sock,
            srv,
            shard,
            id,
            inbuf: BytesMut::new(),
            out: Vec::new(),
            reader: None,
            name: None,
            tx_seq: 0,
        }
    }

    async fn write_out(&mut self) -> std::io::Result<()> {
        if let Some(sock) = &self.sock {
            sock.write_all(&self.out).await?;
        }
        self.out.clear();
        Ok(())
    }

    /// Sends the round's batches, waits for every shard, and appends the
    /// replies to `out` in command order. A partition stops a batch once
    /// its replies pass a budget (so a slow reader's connection never holds
    /// more than about that much per shard); the replies so far are
    /// written out and the rest is sent again.
    async fn run_plan(&mut self, plan: &mut Plan, parsed: &Parsed) -> Result<(), ()> {
        while plan.count() > 0 {
            let asks: Vec<_> = std::mem::take(&mut plan.batches)
                .into_iter()
                .enumerate()
                .filter(|(_, b)| !b.is_empty())
                .map(|(s, b)| {
                    let n = b.len();
                    (s, n, self.srv.parts[s].ask(move |r| PartMsg::Exec(b, r)))
                })
                .collect();
            let mut replies: Vec<Option<Replies>> = Vec::new();
            for (s, n, ask) in asks {
                let r = ask.await.unwrap_or_else(|e| {
                    Replies::errors(n, &format!("ERR shard {s} unavailable: {e}"))
                });
                if replies.len() <= s {
                    replies.resize_with(s + 1, || None);
                }
                replies[s] = Some(r);
            }
            let done = |slot: &Slot| match *slot {
                Slot::Local { .. } => true,
                Slot::Shard { shard, index, .. } => replies[shard as usize]
                    .as_ref()
                    .is_some_and(|r| (index as usize) < r.len()),
            };
            let ready = plan.slots.iter().take_while(|s| done(s)).count();
            for slot in &plan.slots[..ready] {
                self.out.extend_from_slice(reply_of(slot, plan, &replies));
            }
            if ready == plan.slots.len() {
                *plan = Plan::default();
                break;
            }
            // A shard stopped early: write what is answered, then send the
            // unanswered commands again (keeping replies already made).
            self.write_out().await.map_err(|_| ())?;
            let mut next = Plan::default();
            for slot in &plan.slots[ready..] {
                match *slot {
                    Slot::Shard { shard, cmd, at, .. } if !done(slot) => next.push_shard(
                        shard as usize,
                        cmd,
                        parsed.command(at as usize),
                        at as usize,
                    ),
                    _ => next.push_local(reply_of(slot, plan, &replies)),
                }
            }
            *plan = next;
        }
        Ok(())
    }

    /// Parses what is buffered into commands (arguments as slices of one
    /// frozen chunk) and a protocol error, if the input went bad.
    fn parse(&mut self) -> (Parsed, Option<ProtoError>) {
        let mut parsed: Vec<Arg> = Vec::new();
        let mut bounds = Vec::new();
        let mut consumed = 0;
        let mut error = None;
        loop {
            let before = parsed.len();
            match resp::parse(&self.inbuf[consumed..], &self.srv.cfg.limits, &mut parsed) {
                Ok(None) => break,
                Ok(Some(n)) => {
                    for a in &mut parsed[before..] {
                        if let Arg::Range(s, e) = a {
                            *s += consumed;
                            *e += consumed;
                        }
                    }
                    consumed += n;
                    if parsed.len() > before {
                        bounds.push(parsed.len());
                    }
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let frame = self.inbuf.split_to(consumed).freeze();
        let args = parsed
            .into_iter()
            .map(|a| match a {
                Arg::Range(s, e) => frame.slice(s..e),
                Arg::Owned(v) => Bytes::from(v),
            })
            .collect();
        (Parsed { args, bounds }, error)
    }

    /// Answers everything in the input buffer. `Err` closes the connection.
    async fn serve(&mut self, ctx: &mut Context<Self>) -> Result<(), ()> {
        let (parsed, error) = self.parse();
        let mut plan = Plan::default();
        let mut quit = false;
        for i in 0..parsed.bounds.len() {
            self.command(ctx, &mut plan, &parsed, i, &mut quit).await?;
            if quit {
                break;
            }
            if plan.count() >= PLAN_LIMIT {
                self.run_plan(&mut plan, &parsed).await?;
            }
            if self.out.len() >= OUT_LIMIT {
                self.write_out().await.map_err(|_| ())?;
            }
        }
        self.run_plan(&mut plan, &parsed).await?;
        if let Some(e) = &error {
            if !quit {
                resp::error(&mut self.out, &format!("ERR {e}"));
            }
        }
        self.write_out().await.map_err(|_| ())?;
        if quit || error.is_some() {
            return Err(());
        }
        Ok(())
    }

    async fn command(
        &mut self,
        ctx: &mut Context<Self>,
        plan: &mut Plan,
        parsed: &Parsed,
        at: usize,
        quit: &mut bool,
    ) -> Result<(), ()> {
        let args = parsed.command(at);
        let Some(cmd) = Cmd::lookup(&args[0]) else {
            plan.push_local(&unknown_command(args));
            return Ok(());
        };
        if !cmd.arity_ok(args.len()) {
            let mut r = Vec::new();
            resp::error(
                &mut r,
                &format!("ERR wrong number of arguments for '{}' command", cmd.name()),
            );
            plan.push_local(&r);
            return Ok(());
        }
        let n = self.srv.parts.len();
        match cmd.route() {
            Route::Key => plan.push_shard(shard_of(&args[1], n), cmd, args, at),
            Route::Keys { step } => {
                let first = shard_of(&args[1], n);
                let one_shard = args[1..]
                    .iter()
                    .step_by(step)
                    .all(|k| shard_of(k, n) == first);
                if one_shard {
                    plan.push_shard(first, cmd, args, at);
                } else {
                    self.run_plan(plan, parsed).await?;
                    self.tx_seq += 1;
                    let tx = (ctx.pid(), self.tx_seq);
                    let reply = crate::txn::multi(&self.srv, tx, cmd, args, step).await;
                    self.out.extend_from_slice(&reply);
                }
            }
            Route::Conn => match cmd {
                Cmd::Quit => {
                    self.run_plan(plan, parsed).await?;
                    resp::ok(&mut self.out);
                    *quit = true;
                }
                Cmd::Shutdown => {
                    self.run_plan(plan, parsed).await?;
                    // Redis answers nothing: the connection closes as the
                    // server stops.
                    let _ = self.srv.stop.send(());
                }
                Cmd::Info => {
                    self.run_plan(plan, parsed).await?;
                    let text = crate::info::info(&self.srv, args.get(1)).await;
                    resp::bulk(&mut self.out, text.as_bytes());
                }
                _ => {
                    let reply = self.local(cmd, args);
                    plan.push_local(&reply);
                }
            },
            Route::All => {
                self.run_plan(plan, parsed).await?;
                self.tx_seq += 1;
                let tx = (ctx.pid(), self.tx_seq);
                let reply = crate::txn::all(&self.srv, tx, cmd, args).await;
                self.out.extend_from_slice(&reply);
            }
        }
        Ok(())
    }

    /// Commands answered by the connection itself.
    fn local(&mut self, cmd: Cmd, args: &[Bytes]) -> Vec<u8> {
        let mut out = Vec::new();
        let sub = args.get(1).map(|a| a.to_ascii_uppercase());
        match (cmd, sub.as_deref()) {
            (Cmd::Ping, None) => resp::simple(&mut out, "PONG"),
            (Cmd::Ping, Some(_)) if args.len() == 2 => resp::bulk(&mut out, &args[1]),
            (Cmd::Ping, _) => {
                resp::error(&mut out, "ERR wrong number of arguments for 'ping' command")
            }
            (Cmd::Echo, _) => resp::bulk(&mut out, &args[1]),
            (Cmd::Select, _) => match crate::exec::parse_int(&args[1]) {
                Some(0) => resp::ok(&mut out),
                Some(_) => resp::error(&mut out, "ERR DB index is out of range"),
                None => resp::error(&mut out, crate::exec::err::NOT_INT),
            },
            (Cmd::Client, Some(b"SETNAME")) if args.len() == 3 => {
                if args[2].iter().any(|&c| c <= b' ' || c > b'~') {
                    resp::error(
                        &mut out,
                        "ERR Client names cannot contain spaces, newlines or special characters.",
                    );
                } else {
                    self.name = (!args[2].is_empty()).then(|| args[2].to_vec());
                    resp::ok(&mut out);
                }
            }
            (Cmd::Client, Some(b"GETNAME")) => match &self.name {
                Some(n) => resp::bulk(&mut out, n),
                None => resp::nil(&mut out),
            },
            (Cmd::Client, Some(b"ID")) => resp::int(&mut out, self.id as i64),
            (Cmd::Client, Some(b"SETINFO")) => resp::ok(&mut out),
            (Cmd::Client, Some(b"LIST" | b"INFO")) => {
                let name = self
                    .name
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                let line = format!("id={} name={} db=0 shard={}\n", self.id, name, self.shard);
                resp::bulk(&mut out, line.as_bytes());
            }
            (Cmd::Client, _) => resp::error(
                &mut out,
                &format!(
                    "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                    String::from_utf8_lossy(&args[1])
                ),
            ),
            (Cmd::Command, _) => crate::info::command(&mut out, args),
            (Cmd::Config, _) => crate::info::config(&mut out, &self.srv, args),
            _ => resp::error(&mut out, "ERR unsupported here"),
        }
        out
    }
}

/// The reply bytes of a finished slot.
fn reply_of<'a>(slot: &Slot, plan: &'a Plan, replies: &'a [Option<Replies>]) -> &'a [u8] {
    match *slot {
        Slot::Local { start, end } => &plan.local[start as usize..end as usize],
        Slot::Shard { shard, index, .. } => replies[shard as usize]
            .as_ref()
            .map_or(&[][..], |r| r.get(index as usize)),
    }
}

/// Redis's reply to an unknown command.
fn unknown_command(args: &[Bytes]) -> Vec<u8> {
    let shown: String = args[1..]
        .iter()
        .take(3)
        .map(|a| format!("'{}' ", String::from_utf8_lossy(&a[..a.len().min(128)])))
        .collect();
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]).into_owned();
    let mut out = Vec::new();
    resp::error(
        &mut out,
        &format!("ERR unknown command '{name}', with args beginning with: {shown}"),
    );
    out
}

impl Process for Conn {
    type Msg = ConnMsg;

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        let sock = self.sock.clone().ok_or("socket not registered")?;
        let r = ctx.attach_stream(reads(sock), 1, ConnMsg::Read);
        self.reader = Some(r);
        Ok(())
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: ConnMsg) -> HandlerResult {
        match msg {
            ConnMsg::Read(StreamEvent::Item(Ok(chunk))) => {
                // O(1) when the chunk follows the unparsed rest in memory
                // (successive reads share a buffer); a copy otherwise.
                if self.inbuf.is_empty() {
                    self.inbuf = chunk;
                } else {
                    self.inbuf.unsplit(chunk);
                }
                match self.serve(ctx).await {
                    Ok(()) => {
                        if let Some(r) = self.reader {
                            ctx.grant(r, 1);
                        }
                    }
                    Err(()) => ctx.stop(),
                }
            }
            ConnMsg::Read(_) => ctx.stop(),
        }
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Relaxed: statistics only; nothing is published through them.
        self.srv.clients.fetch_sub(1, Ordering::Relaxed);
        self.srv.shard_clients[self.shard].fetch_sub(1, Ordering::Relaxed);
    }
}
