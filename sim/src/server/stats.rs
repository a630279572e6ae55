//! What the server did, per connection, for tests and tools to read while it runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

/// Why a WebSocket session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnEnd {
    /// The client closed (Close frame or end of stream).
    ClientClosed,
    /// The scripted [`crate::server::Faults::close_after_frames`] fault dropped it.
    FaultClose,
    /// The server was stopped.
    ServerStopped,
    /// An I/O or protocol error (its text).
    Error(String),
}

/// Counters of one WebSocket session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Position among the server's accepted sessions, from 0 (0 is the "first connection" of the
    /// fault script).
    pub index: usize,
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// Frames sent, by message `type` (`subscribed`, `ok`, `error`, `unsubscribed`,
    /// `orderbook_snapshot`, `orderbook_delta`, `trade`, `fill`, `user_order`), plus `ping` (server heartbeats),
    /// `pong` (answers to client pings), `garbled` and `oversized` (faults).
    pub sent: BTreeMap<String, u64>,
    /// Data frames sent (snapshots, deltas, trades; not the private `fill` / `user_order`).
    pub data_frames: u64,
    /// Text frames received (commands, well-formed or not).
    pub commands: u64,
    /// Pings received from the client.
    pub pings_received: u64,
    /// How the session ended; `None` while it is open.
    pub end: Option<ConnEnd>,
    /// The session's replay has started and every recording event it serves has been written
    /// and flushed (its [`ConnStats::data_frames`] are final unless the client asks for
    /// snapshots).
    pub replay_done: bool,
}

impl ConnStats {
    /// Frames of `ty` sent (0 when none).
    pub fn sent(&self, ty: &str) -> u64 {
        self.sent.get(ty).copied().unwrap_or(0)
    }
}

#[derive(Default)]
struct Inner {
    conns: Vec<ConnStats>,
    rejected: Vec<String>,
    data_sent_ns: Vec<u64>,
}

/// Most wire stamps a server keeps ([`ServerStats::data_frame_times`],
/// [`super::RestServer::create_read_times`]); later ones are not kept.
pub const MAX_WIRE_STAMPS: usize = 1 << 20;

/// Monotonic nanoseconds since the first call in this process: the clock of the simulator's wire
/// stamps (a data frame written to its socket, a create request read), so that a client in the
/// same process can measure wire-to-wire latency with both ends on one clock.
pub fn wire_ns() -> u64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
}

/// Counters of the whole server, shared with its connection threads. Every read is a snapshot.
#[derive(Default)]
pub struct ServerStats {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ServerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.lock();
        f.debug_struct("ServerStats").field("conns", &g.conns).field("rejected", &g.rejected).finish()
    }
}

impl ServerStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every session so far, in accept order.
    pub fn connections(&self) -> Vec<ConnStats> {
        self.lock().conns.clone()
    }

    /// Session `index`, if it exists.
    pub fn connection(&self, index: usize) -> Option<ConnStats> {
        self.lock().conns.get(index).cloned()
    }

    /// Frames of `ty` sent on all sessions.
    pub fn total_sent(&self, ty: &str) -> u64 {
        self.lock().conns.iter().map(|c| c.sent(ty)).sum()
    }

    /// Handshakes refused or failed (before a session existed), with the reason of each: the
    /// authentication error for 401s.
    pub fn rejected(&self) -> Vec<String> {
        self.lock().rejected.clone()
    }

    /// Registers a new session and returns its index.
    pub(crate) fn open(&self, peer: Option<SocketAddr>) -> usize {
        let mut g = self.lock();
        let index = g.conns.len();
        g.conns.push(ConnStats { index, peer, ..Default::default() });
        index
    }

    pub(crate) fn reject(&self, reason: String) {
        self.lock().rejected.push(reason);
    }

    pub(crate) fn update(&self, index: usize, f: impl FnOnce(&mut ConnStats)) {
        if let Some(c) = self.lock().conns.get_mut(index) {
            f(c)
        }
    }

    /// When each data frame (`orderbook_snapshot`, `orderbook_delta`, `trade`, ...) of every
    /// session was handed to its socket, [`wire_ns`], in send order (at most
    /// [`MAX_WIRE_STAMPS`]).
    pub fn data_frame_times(&self) -> Vec<u64> {
        self.lock().data_sent_ns.clone()
    }

    pub(crate) fn stamp_data_frame(&self, ns: u64) {
        let mut g = self.lock();
        if g.data_sent_ns.len() < MAX_WIRE_STAMPS {
            g.data_sent_ns.push(ns);
        }
    }

    pub(crate) fn count_sent(&self, index: usize, ty: &str, data: bool) {
        self.update(index, |c| {
            match c.sent.get_mut(ty) {
                Some(n) => *n += 1,
                None => {
                    c.sent.insert(ty.to_string(), 1);
                }
            }
            if data {
                c.data_frames += 1;
            }
        })
    }
}
