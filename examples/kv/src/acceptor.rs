//! The acceptor: one process per shard owning that shard's listening
//! socket (all bound to the same port with SO_REUSEPORT, so the kernel
//! spreads connections over the shards). Accepted connections arrive as
//! messages from a stream the acceptor owns; each becomes a `Conn`
//! process on this shard, monitored so the acceptor knows its live
//! connections.
//!
//! Stopping the acceptor (`terminate`) is the graceful stop of its shard's
//! front end: its terminate hook drops the listener (no more accepts),
//! terminates every connection — each finishes the commands it is running
//! and writes their replies first — and waits for them, killing any still
//! alive after the grace period (a client that stopped reading).

use crate::conn::Conn;
use crate::server::Shared;
use corelet::{Context, Down, ExitReason, HandlerResult, OwnedRef, Pid, Process, StreamEvent};
use futures_lite::AsyncWriteExt;
use glommio::net::{TcpListener, TcpStream};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What an acceptor receives.
pub enum AccMsg {
    /// A connection came in (or accepting failed).
    Accepted(StreamEvent<glommio::Result<TcpStream, ()>>),
}

/// One shard's listener.
pub struct Acceptor {
    srv: Arc<Shared>,
    shard: usize,
    port: u16,
    incoming: Option<OwnedRef>,
    conns: HashSet<Pid>,
    grace: Duration,
}

impl Acceptor {
    /// An acceptor for `shard`, binding `port` when it starts.
    pub fn new(srv: Arc<Shared>, shard: usize, port: u16) -> Self {
        Self {
            srv,
            shard,
            port,
            incoming: None,
            conns: HashSet::new(),
            grace: Duration::from_secs(5),
        }
    }

    async fn accepted(&mut self, ctx: &mut Context<Self>, mut stream: TcpStream) {
        // Relaxed: a counter; the limit is approximate under races by at
        // most the number of shards accepting at the same instant.
        let clients = self.srv.clients.fetch_add(1, Ordering::Relaxed);
        self.srv.shard_clients[self.shard].fetch_add(1, Ordering::Relaxed);
        let id = self.srv.connections_total.fetch_add(1, Ordering::Relaxed) + 1;
        if clients >= self.srv.cfg.maxclients {
            self.srv.rejected.fetch_add(1, Ordering::Relaxed);
            self.srv.clients.fetch_sub(1, Ordering::Relaxed);
            self.srv.shard_clients[self.shard].fetch_sub(1, Ordering::Relaxed);
            let _ = stream
                .write_all(b"-ERR max number of clients reached\r\n")
                .await;
            return;
        }
        match corelet::spawn(Conn::new(stream, self.srv.clone(), self.shard, id)) {
            Ok(addr) => {
                ctx.monitor(addr.pid());
                self.conns.insert(addr.pid());
            }
            Err(e) => eprintln!(
                "corelet-kv: shard {}: connection not started: {e}",
                self.shard
            ),
        }
    }
}

impl Process for Acceptor {
    type Msg = AccMsg;

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        let listener = TcpListener::bind((self.srv.cfg.bind.as_str(), self.port))?;
        self.port = listener.local_addr()?.port();
        // Relaxed: read by the thread that spawned this acceptor after the
        // spawn (which synchronises) returned.
        self.srv.port.store(self.port, Ordering::Relaxed);
        // The stream owns the listener: cancelling it closes the socket.
        let incoming = futures_lite::stream::unfold(listener, |l| async move {
            let r = l.accept().await;
            Some((r, l))
        });
        self.incoming = Some(ctx.attach_stream(incoming, 1, AccMsg::Accepted));
        Ok(())
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: AccMsg) -> HandlerResult {
        match msg {
            AccMsg::Accepted(StreamEvent::Item(Ok(stream))) => self.accepted(ctx, stream).await,
            AccMsg::Accepted(StreamEvent::Item(Err(e))) => {
                eprintln!("corelet-kv: shard {}: accept failed: {e}", self.shard);
                // Out of descriptors, usually: let connections close first.
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            AccMsg::Accepted(StreamEvent::End) => return Ok(()),
        }
        if let Some(r) = self.incoming {
            ctx.grant(r, 1);
        }
        Ok(())
    }

    async fn handle_down(&mut self, _ctx: &mut Context<Self>, down: Down) -> HandlerResult {
        self.conns.remove(&down.pid);
        Ok(())
    }

    async fn terminate(&mut self, ctx: &mut Context<Self>, _reason: &ExitReason) {
        if let Some(r) = self.incoming.take() {
            ctx.cancel_owned(r);
        }
        let conns: Vec<Pid> = self.conns.drain().collect();
        let waits: Vec<_> = conns.iter().map(|&p| (p, corelet::wait(p))).collect();
        for &p in &conns {
            let _ = corelet::terminate(p);
        }
        let deadline = std::time::Instant::now() + self.grace;
        for (pid, wait) in waits {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let timed = futures_lite::future::or(async { Some(wait.await) }, async {
                glommio::timer::sleep(left).await;
                None
            });
            if timed.await.is_none() {
                let _ = corelet::kill(pid);
            }
        }
    }
}
