//! Socket readiness for client connections: one epoll instance per shard.
//!
//! # Why not glommio's `TcpStream`
//!
//! glommio 0.9 reads a socket with a non-blocking `recv` and, after every
//! short read, arms an io_uring poll on it. The poll completes in the
//! network softirq on whichever CPU the client's packet arrived, and
//! reaches the shard thread as io_uring task work, delivered by an
//! inter-processor interrupt: one interrupt per unpipelined request, about a
//! quarter of the shard's time at 60 k requests/s. Redis instead asks epoll
//! which sockets are ready and gets many per call, with no interrupt while
//! it is busy. This module does the same inside a shard.
//!
//! # How it works
//!
//! Every connection socket of a shard is registered, edge-triggered
//! (`EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET`), with one epoll instance
//! per shard thread. A [`Socket`] keeps two flags, *readable* and
//! *writable*, both set at first. A read or write calls `recv`/`send`
//! directly (`MSG_DONTWAIT`) while its flag is set; when the kernel answers
//! `EAGAIN`, or a read comes back short (see below), the flag is cleared;
//! a task that finds its flag clear stores its waker and waits. Only the shard's *driver* sets flags
//! again: it calls `epoll_wait` with a zero timeout, sets the flags of the
//! sockets it reports and wakes their wakers.
//!
//! The driver is a task owned by a small process per shard ([`Poller`],
//! spawned with the shard's first socket), so it is a runnable of the
//! shard's own scheduler, queued behind the connections it woke. While
//! `epoll_wait` keeps finding sockets, or for [`SPIN`] after it last found
//! one, the driver yields and polls again; no interrupt is involved, and
//! under load one `epoll_wait` serves many requests. After [`SPIN`] without
//! an event it parks: it waits until the epoll descriptor itself is
//! readable, through glommio's reactor (see [`epoll_readable`]), and the
//! shard may sleep.
//!
//! # Why no readiness is lost
//!
//! Everything runs on the shard thread, so a flag and a stored waker never
//! race with the driver. Edge-triggered epoll queues a socket on the
//! instance's ready list at every arrival of data (or space, or a hang-up)
//! after the `epoll_wait` that last reported it. A flag is cleared only
//! after a `recv` that returned `EAGAIN` or less than asked, which ran
//! after that `epoll_wait`: whatever data arrived before the `recv` was read
//! by it (TCP's `recv` takes everything queued up to the buffer's size;
//! data still in the socket's backlog is queued, with a wake-up, when
//! `recv` releases the socket), and whatever arrives after it queues the
//! socket again. A short read is not proof of a drained socket in three
//! cases: a FIN or an error already queued behind the data (the next `recv`
//! returns 0 or the error) and urgent data (`recv` stops at the mark).
//! epoll reports each of them in the mask of the `epoll_wait` that
//! follows their arrival (`EPOLLRDHUP`, `EPOLLHUP`/`EPOLLERR`,
//! `EPOLLPRI`; it computes the mask when it reports, and a socket that was
//! ready when registered is on the ready list from the start), and from
//! then on the socket's short reads no longer clear the flag: only
//! `EAGAIN` does. An epoll descriptor is readable exactly while its ready list holds
//! a socket that is still ready, so a socket that becomes ready while the
//! driver is between its last `epoll_wait` and parking makes the park
//! return at once.

use bytes::BytesMut;
use corelet::{Context, HandlerResult, Process};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How long the driver keeps polling (yielding between polls) after its
/// last event before it parks. Like the scheduler's own spin before it
/// parks: an unpipelined client answers within tens of microseconds, and
/// a parked driver costs an interrupt and a wake-up to restart.
pub const SPIN: Duration = Duration::from_micros(50);

/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;

/// One registered socket's state.
#[derive(Default)]
struct Entry {
    /// Bumped when the entry is freed, so that a token names one
    /// registration only.
    generation: u32,
    live: bool,
    readable: bool,
    writable: bool,
    /// epoll reported a hang-up, an error or urgent data: a short read
    /// no longer shows that the socket is drained.
    tail: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// A shard's epoll instance and its sockets.
struct Reactor {
    epoll: io::Result<OwnedFd>,
    entries: RefCell<Vec<Entry>>,
    free: RefCell<Vec<u32>>,
    /// Whether a driver is running on this shard.
    driving: Cell<bool>,
}

thread_local! {
    static REACTOR: Reactor = Reactor::new();
}

fn token(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

impl Reactor {
    fn new() -> Self {
        // SAFETY: epoll_create1 takes no pointers.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) });
        Self {
            // SAFETY: a descriptor just returned by epoll_create1, owned by
            // nobody else.
            epoll: fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            entries: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            driving: Cell::new(false),
        }
    }

    fn epfd(&self) -> io::Result<RawFd> {
        match &self.epoll {
            Ok(fd) => Ok(fd.as_raw_fd()),
            Err(e) => Err(io::Error::new(e.kind(), format!("epoll_create1: {e}"))),
        }
    }

    fn register(&self, fd: RawFd) -> io::Result<u64> {
        let epfd = self.epfd()?;
        let mut entries = self.entries.borrow_mut();
        let index = match self.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                entries.push(Entry::default());
                (entries.len() - 1) as u32
            }
        };
        let e = &mut entries[index as usize];
        e.live = true;
        e.readable = true;
        e.writable = true;
        let tok = token(index, e.generation);
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN
                | libc::EPOLLOUT
                | libc::EPOLLRDHUP
                | libc::EPOLLPRI
                | libc::EPOLLET) as u32,
            u64: tok,
        };
        // SAFETY: `ev` is a valid epoll_event for the call's duration; the
        // descriptors are open (the caller owns `fd`).
        if let Err(e) = cvt(unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) }) {
            drop(entries);
            self.release(index);
            return Err(e);
        }
        Ok(tok)
    }

    fn release(&self, index: u32) {
        let mut entries = self.entries.borrow_mut();
        let e = &mut entries[index as usize];
        *e = Entry {
            generation: e.generation.wrapping_add(1),
            ..Entry::default()
        };
        self.free.borrow_mut().push(index);
    }

    /// Runs `f` on the live entry named by `tok`.
    fn with<R>(&self, tok: u64, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let mut entries = self.entries.borrow_mut();
        let e = entries.get_mut((tok & 0xffff_ffff) as usize)?;
        (e.live && u64::from(e.generation) == tok >> 32).then(|| f(e))
    }

    /// Polls epoll once without blocking and wakes the sockets it reports.
    /// Returns how many it reported.
    fn poll_events(&self, events: &mut [libc::epoll_event]) -> usize {
        let Ok(epfd) = self.epfd() else { return 0 };
        // SAFETY: `events` is writable for `events.len()` entries.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as i32, 0) };
        if n <= 0 {
            // EINTR (or nothing): the caller polls again.
            return 0;
        }
        let mut wake = Vec::new();
        for ev in &events[..n as usize] {
            // Copies: the struct is packed on x86-64.
            let (bits, tok) = (ev.events, ev.u64);
            let hup = bits & (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) as u32 != 0;
            let tail = hup || bits & libc::EPOLLPRI as u32 != 0;
            let read = tail || bits & libc::EPOLLIN as u32 != 0;
            let write = hup || bits & libc::EPOLLOUT as u32 != 0;
            self.with(tok, |e| {
                e.tail |= tail;
                if read {
                    e.readable = true;
                    wake.extend(e.reader.take());
                }
                if write {
                    e.writable = true;
                    wake.extend(e.writer.take());
                }
            });
        }
        // Woken outside the borrow: a waker may run arbitrary code.
        for w in wake {
            w.wake();
        }
        n as usize
    }

    /// Wakes every waiting socket (the driver stopped: each retries, and
    /// starts a new driver or fails).
    fn wake_all(&self) {
        let mut wake = Vec::new();
        for e in self.entries.borrow_mut().iter_mut() {
            wake.extend(e.reader.take());
            wake.extend(e.writer.take());
        }
        for w in wake {
            w.wake();
        }
    }

    /// Starts this shard's driver if none is running.
    fn ensure_driver(&self) -> io::Result<()> {
        if self.driving.get() {
            return Ok(());
        }
        corelet::spawn(Poller { _private: () })
            .map_err(|e| io::Error::other(format!("no readiness driver on this shard: {e}")))?;
        self.driving.set(true);
        Ok(())
    }
}

/// A connected socket registered with its shard's epoll instance. Reads and
/// writes go straight to the kernel; a task that must wait is woken by the
/// shard's driver. Dropping it deregisters and closes the socket. It
/// belongs to the shard thread that created it.
pub struct Socket {
    fd: OwnedFd,
    token: u64,
    /// Registered with this thread's epoll instance: not `Send`.
    _shard: PhantomData<Rc<()>>,
}

impl Socket {
    /// Registers `fd` (a connected, non-blocking stream socket) with this
    /// shard, starting the shard's driver if needed. Must run on a shard.
    pub fn new(fd: OwnedFd) -> io::Result<Socket> {
        REACTOR.with(|r| {
            r.ensure_driver()?;
            let token = r.register(fd.as_raw_fd())?;
            Ok(Socket {
                fd,
                token,
                _shard: PhantomData,
            })
        })
    }

    /// Takes the descriptor of a glommio stream (which is dropped: its
    /// pending poll, if any, is cancelled) and registers a duplicate.
    pub fn from_glommio(stream: glommio::net::TcpStream) -> io::Result<Socket> {
        // SAFETY: F_DUPFD_CLOEXEC on a descriptor `stream` keeps open.
        let fd = cvt(unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
        drop(stream);
        // SAFETY: a descriptor fcntl just created, owned by nobody else.
        Socket::new(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        let v: libc::c_int = on.into();
        // SAFETY: `v` outlives the call; the length is its size.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })
        .map(drop)
    }

    /// Parks the calling task until the driver reports the socket again.
    fn wait(&self, cx: &mut std::task::Context<'_>, write: bool) -> Poll<io::Result<usize>> {
        let stored = REACTOR.with(|r| {
            let stored = r.with(self.token, |e| {
                let slot = if write { &mut e.writer } else { &mut e.reader };
                match slot {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *slot = Some(cx.waker().clone()),
                }
            });
            stored.is_some().then(|| r.ensure_driver())
        });
        match stored {
            Some(Ok(())) => Poll::Pending,
            Some(Err(e)) => Poll::Ready(Err(e)),
            None => Poll::Ready(Err(io::Error::other("socket not registered"))),
        }
    }

    fn flag(&self, write: bool) -> bool {
        REACTOR
            .with(|r| r.with(self.token, |e| if write { e.writable } else { e.readable }))
            .unwrap_or(true)
    }

    fn clear(&self, write: bool) {
        REACTOR.with(|r| {
            r.with(self.token, |e| {
                if write {
                    e.writable = false;
                } else {
                    e.readable = false;
                }
            })
        });
    }

    /// After a short read: clears the readable flag unless epoll has seen
    /// something a short read does not consume (module docs).
    fn clear_if_drained(&self) {
        REACTOR.with(|r| {
            r.with(self.token, |e| {
                if !e.tail {
                    e.readable = false;
                }
            })
        });
    }

    /// Reads into `buf`'s spare capacity (at least one byte of it; the
    /// caller reserves). `Ok(0)` is the end of the stream.
    pub fn poll_read_buf(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        loop {
            if !self.flag(false) {
                return self.wait(cx, false);
            }
            let spare = buf.spare_capacity_mut();
            let want = spare.len();
            // SAFETY: `spare` is writable for `want` bytes; recv writes at
            // most that many.
            let r = cvt_size(unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    spare.as_mut_ptr().cast(),
                    want,
                    libc::MSG_DONTWAIT,
                )
            });
            match r {
                Ok(n) => {
                    // SAFETY: recv initialised the first `n` spare bytes.
                    unsafe { buf.set_len(buf.len() + n) };
                    if n > 0 && n < want {
                        // Short: the socket is drained (module docs).
                        self.clear_if_drained();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Writes some of `buf`; returns how much.
    pub fn poll_write(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if !self.flag(true) {
                return self.wait(cx, true);
            }
            // SAFETY: `buf` is readable for its length.
            let r = cvt_size(unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            });
            match r {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Writes all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = std::future::poll_fn(|cx| self.poll_write(cx, buf)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // `try_with`: the thread may be tearing its locals down.
        let _ = REACTOR.try_with(|r| {
            if r.with(self.token, |_| ()).is_none() {
                return;
            }
            if let Ok(epfd) = r.epfd() {
                // SAFETY: both descriptors are open; DEL ignores the event.
                unsafe {
                    libc::epoll_ctl(
                        epfd,
                        libc::EPOLL_CTL_DEL,
                        self.fd.as_raw_fd(),
                        std::ptr::null_mut(),
                    )
                };
            }
            r.release((self.token & 0xffff_ffff) as u32);
        });
        // `fd` closes as the field drops.
    }
}

/// A future that is ready on its second poll: queues the calling task
/// behind what is already runnable.
fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Waits until the epoll descriptor `epfd` is readable (its ready list
/// holds a ready socket), through glommio's reactor, so that the shard can
/// sleep meanwhile.
///
/// glommio 0.9 has no public "wait until this descriptor is readable". Its
/// `UnixStream::from_raw_fd` arms an io_uring read-readiness poll on the
/// descriptor as it is built (`NonBufferedStream::init`), and `poll_read`
/// leaves the descriptor alone while that poll is pending; once the poll
/// completes, `poll_read` calls `recv`, which fails on an epoll descriptor
/// with `ENOTSOCK`. So a wrapper around a duplicate of `epfd`, read once,
/// is pending exactly until `epfd` is readable and then returns an error,
/// which here means "ready". Dropping the wrapper closes only the
/// duplicate (the epoll instance lives on through `epfd`) and cancels a
/// poll that is still pending.
///
/// If a later glommio skipped the initial poll or checked the descriptor's
/// type, the read would complete (with an error) at once, or the wrapper
/// could not be built: either way this returns at once and the driver
/// degrades to polling `epoll_wait` in a loop — a busy shard, never a hang.
async fn epoll_readable(epfd: RawFd) {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor the shard's reactor keeps
    // open.
    let dup = unsafe { libc::fcntl(epfd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        yield_now().await;
        return;
    }
    // SAFETY: `dup` is a descriptor just created and owned by nobody else;
    // the wrapper takes ownership and closes it when dropped. It is not a
    // socket, which glommio only finds out when it calls `recv` on it (an
    // error, handled as "ready"; see above).
    let mut wrapper = unsafe { glommio::net::UnixStream::from_raw_fd(dup) };
    let mut byte = [0u8; 1];
    let _ = std::future::poll_fn(|cx| {
        futures_lite::AsyncRead::poll_read(Pin::new(&mut wrapper), cx, &mut byte)
    })
    .await;
}

/// The driver loop (module docs).
async fn drive() {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
    let Ok(epfd) = REACTOR.with(|r| r.epfd()) else {
        return;
    };
    let mut last_event = Instant::now();
    loop {
        let n = REACTOR.with(|r| r.poll_events(&mut events));
        if n > 0 {
            last_event = Instant::now();
        } else if last_event.elapsed() >= SPIN {
            epoll_readable(epfd).await;
            last_event = Instant::now();
            continue;
        }
        yield_now().await;
    }
}

/// The process that owns a shard's driver task. Spawned with the shard's
/// first [`Socket`]; when it exits (the runtime stops), the sockets still
/// waiting are woken so that they start another or fail.
pub struct Poller {
    _private: (),
}

/// What a [`Poller`] receives: only the end of its driver.
pub enum PollerMsg {
    /// The driver returned (the shard has no epoll instance).
    DriverEnded,
}

impl Process for Poller {
    type Msg = PollerMsg;

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        ctx.spawn_owned(drive(), |()| PollerMsg::DriverEnded);
        Ok(())
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: PollerMsg) -> HandlerResult {
        match msg {
            PollerMsg::DriverEnded => ctx.stop(),
        }
        Ok(())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        let _ = REACTOR.try_with(|r| {
            r.driving.set(false);
            r.wake_all();
        });
    }
}
