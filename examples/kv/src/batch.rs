//! What travels between a connection and a partition: a batch of commands
//! (arguments as `Bytes` slices of the connection's read buffer, never
//! copied on the way) and the batch's replies (RESP bytes, one range each).

use crate::cmd::Cmd;
use bytes::Bytes;

/// Commands for one partition, in order.
#[derive(Debug, Default)]
pub struct Batch {
    args: Vec<Bytes>,
    cmds: Vec<(Cmd, u32)>,
}

impl Batch {
    /// Appends a command (`args[0]` is its name).
    pub fn push(&mut self, cmd: Cmd, args: impl IntoIterator<Item = Bytes>) {
        let before = self.args.len();
        self.args.extend(args);
        self.cmds.push((cmd, (self.args.len() - before) as u32));
    }

    /// Number of commands.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// Whether there are no commands.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// The commands with their arguments.
    pub fn iter(&self) -> impl Iterator<Item = (Cmd, &[Bytes])> {
        let mut at = 0;
        self.cmds.iter().map(move |&(cmd, n)| {
            let args = &self.args[at..at + n as usize];
            at += n as usize;
            (cmd, args)
        })
    }
}

/// The replies to a batch, in order.
#[derive(Debug, Default)]
pub struct Replies {
    buf: Vec<u8>,
    ends: Vec<u32>,
}

impl Replies {
    /// Room for `n` replies.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n * 8),
            ends: Vec::with_capacity(n),
        }
    }

    /// `n` copies of one error (a batch whose log write failed).
    pub fn errors(n: usize, msg: &str) -> Self {
        let mut r = Self::with_capacity(n);
        for _ in 0..n {
            r.error(msg);
        }
        r
    }

    /// Where the current reply is written.
    pub fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Ends the current reply.
    pub fn end(&mut self) {
        self.ends.push(self.buf.len() as u32);
    }

    /// Adds an error reply.
    pub fn error(&mut self, msg: &str) {
        crate::resp::error(&mut self.buf, msg);
        self.end();
    }

    /// Number of replies.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Reply `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.buf[start..self.ends[i] as usize]
    }
}
