//! The loopback Kalshi-compatible WebSocket server.
//!
//! [`WsServer::start`] binds `127.0.0.1:0`, and an accept thread hands each TCP connection to a
//! thread of its own: blocking `std` sockets, rustls [`StreamOwned`], a tungstenite server
//! [`WebSocket`]. This is the exchange side of tests and replays, not the engine's hot path, so it
//! is written for clarity: one thread per connection, a mutex around the stats.
//!
//! ## Handshake
//! TLS with the server's [`TestCert`], then the HTTP upgrade on [`WS_PATH`] (any other path:
//! 404). The upgrade request must carry Kalshi's signing headers, checked by
//! [`verify_request`] against the configured [`ApiKey`] over `timestamp + "GET" + WS_PATH`;
//! failures are answered `401` with the JSON body of [`crate::server::AuthError::error_body`]
//! and counted in [`ServerStats::rejected`].
//!
//! ## Session
//! Commands follow Kalshi (`kalshi-protocol.md` §1.3–1.8): `subscribe` (one `subscribed` ack per
//! channel, `sid`s unique per connection from 1), `update_subscription` (`add_markets` and
//! `delete_markets` answered `ok` with the full market set; `get_snapshot`), `unsubscribe`
//! (`unsubscribed`), `list_subscriptions`, and Kalshi's error codes (1 bad JSON, 2 params,
//! 3 channels, 4 sids, 5 unknown command, 7 unknown sid, 8 unknown channel, 11 invalid parameter,
//! 12 exactly one sid, 13 unsupported action, 14 market ticker required, 15 action required,
//! 16 market not found). Subscribing twice makes a second subscription with its own sid. The
//! server sends a Ping with payload `heartbeat` every [`WsServerConfig::ping_interval`] and
//! answers client Pings with Pongs. When the recording is exhausted the connection stays open
//! and idle until the client closes or the server stops.
//!
//! ## Replay model
//! Each session replays the recording from its start; the replay clock starts at the session's
//! first `subscribe` to a streaming channel (`orderbook_delta` or `trade`). (A linked server
//! shares one clock among its sessions instead: *Linked replay* below.) The session keeps its
//! own copy of every market's book ([`strike_sdk::book::Book`]), updated by every orderbook frame
//! of the recording whether or not a subscription covers the market: the exchange's state at the
//! replay time.
//!
//! An `orderbook_delta` subscription covering market M gets M's snapshot, then M's deltas: if M's
//! book exists when M joins (at `subscribe` or `add_markets`), a snapshot of the current book is
//! sent at once; otherwise the recording's snapshot is forwarded when the replay reaches it.
//! Deltas of M are forwarded only after that. Every frame is re-addressed to the subscription's
//! `sid` with the next `seq` of that sid (one counter for all its markets). `get_snapshot` sends
//! the current book of each listed market (which must belong to the sid) as an
//! `orderbook_snapshot` taking the next `seq`. `ok` and `unsubscribed` acks of an orderbook sid
//! carry and consume a `seq` too, as in the prod capture (`ws_prod_mlb_wnba_2026-08-07`);
//! `subscribed` acks do not. `use_yes_price: true` puts NO levels and `side:"no"` deltas on the
//! YES scale, false or absent at NO prices, converted from the recording's `yes_price_scale`;
//! generated snapshots list levels in ascending price, empty sides omitted. `trade` subscriptions
//! get the recording's trades (every market when no tickers were given), without `seq`. The
//! other channels Kalshi knows are acknowledged and stay silent (`ticker`, `market_positions`,
//! lifecycle, order groups, ...); `orderbook_delta` requires tickers. A recording's frames other
//! than snapshots, deltas and trades are not served.
//!
//! ## Linked replay
//! With [`WsServerConfig::exchange`] (set by [`crate::server::LinkedServers`]) the server is
//! one exchange's market-data feed, so it replays the recording once: the sessions share one
//! replay clock, started by the first streaming `subscribe` of any session, and one position in
//! the recording. The first session to send an event *releases* it: the event is handed to the
//! exchange (an [`ExchangeLink`], which applies it now) and its frames are written the feed
//! delay of the exchange's latency model later (zero by default). A connection keeps its frames
//! in order: while a frame is held for the feed delay, everything after it on that connection
//! (command answers, private messages) waits behind it. A session whose replay starts later (a second client, or a client
//! reconnecting after a drop) first moves its books silently to the released position, so its
//! snapshots show the book as it stands on the shared clock, then sends what it has not yet
//! sent of the released events at once and the rest when due; with
//! [`Pacing::AsFastAsPossible`] the fastest session drives the clock. So a reconnecting client
//! resumes from where the exchange is, and no event reaches the exchange twice. Before the
//! replay starts the exchange shows the recording's opening book.
//!
//! ## Private channels
//! `fill` and `user_orders` carry the account's own executions and order changes, published by
//! a [`crate::server::RestServer`] into the [`PrivateFeed`] of [`WsServerConfig::private`]
//! (shapes in [`crate::server::exchange`]'s docs, *Private messages*). Each subscription gets
//! its own `sid`; frames are `{"type":"fill"|"user_order","sid":N,"msg":{...}}`, without `seq`
//! (Kalshi sequences neither channel), for the markets of `market_tickers` if given at
//! subscribe (or added by `add_markets`; every market otherwise). A subscription gets what is
//! published after its `subscribe` was read: earlier messages, and messages published while a
//! session has no matching subscription, are lost for it, as on Kalshi. They do not start the
//! replay clock and are not data frames for [`Faults`] or
//! [`ConnStats::data_frames`](super::ConnStats::data_frames) (they are counted in
//! [`ConnStats::sent`](super::ConnStats::sent) under `fill` / `user_order`). Without a feed the
//! two channels are acknowledged and silent.
//!
//! ## Loop of a connection thread
//! Wait for a client frame until the next replay frame or ping is due (at most
//! [`POLL_INTERVAL`]), answer the commands read (first forwarding the private messages already
//! received, under the subscriptions as they were), forward the private messages published
//! since the last turn, send the ping if due, then send the replay frames that are due (at most
//! [`BATCH`] per turn so commands are never starved), flush. A private message thus leaves
//! within about one [`POLL_INTERVAL`] of its publication, interleaved with the replay. Reads use the
//! socket's read timeout, or non-blocking mode while frames are due; writes are blocking.

use super::auth::{unix_now_ms, verify_request, ApiKey, AuthHeaders, DEFAULT_MAX_SKEW};
use super::faults::{oversized_frame, Faults, GARBLED_FRAME};
use super::private::{PrivateFeed, PrivateMsg};
use super::replay::ReplayData;
use super::rest::ExchangeLink;
use super::session::{OutFrame, Session};
use super::stats::{ConnEnd, ServerStats};
use super::tls::TestCert;
use crate::recording::Recording;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Bytes, Message, WebSocket};

/// The WebSocket path Kalshi serves and signs (`/trade-api/ws/v2`).
pub const WS_PATH: &str = "/trade-api/ws/v2";

/// The default heartbeat interval (Kalshi: 10 s).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(10);

/// The heartbeat Ping payload.
pub const PING_PAYLOAD: &[u8] = b"heartbeat";

/// The default largest frame (and message) accepted from a client: 1 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 1 << 20;

/// The longest a connection thread blocks on a read: the stop flag is checked at least this often.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The most replay events sent per loop turn before the thread looks for commands again.
pub const BATCH: usize = 64;

/// How long the TLS and HTTP handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocked write longer than this drops the connection (the client stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long `stop` lets connection threads close gracefully before shutting their sockets.
const STOP_GRACE: Duration = Duration::from_secs(2);

type Tls = StreamOwned<ServerConnection, TcpStream>;
type Ws = WebSocket<Tls>;

/// When the recording's frames are sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pacing {
    /// Each frame as soon as the previous one is written.
    AsFastAsPossible,
    /// At the recorded gaps divided by `speed` (1.0 = real time, 10.0 = ten times faster),
    /// measured from the session's first streaming `subscribe`. `speed` must be finite and > 0.
    Recorded {
        /// Replay speed factor.
        speed: f64,
    },
}

/// How a [`WsServer`] behaves.
#[derive(Clone)]
pub struct WsServerConfig {
    /// The recording to serve (its `orderbook_snapshot`, `orderbook_delta` and `trade` frames;
    /// its header lists the markets that may be subscribed).
    pub recording: Arc<Recording>,
    /// The one API key accepted on the upgrade request.
    pub api_key: ApiKey,
    /// Largest accepted distance of `KALSHI-ACCESS-TIMESTAMP` from the server clock (30 s).
    pub max_clock_skew: Duration,
    /// Replay pacing ([`Pacing::AsFastAsPossible`]).
    pub pacing: Pacing,
    /// Heartbeat Ping interval; `None` sends none ([`DEFAULT_PING_INTERVAL`]).
    pub ping_interval: Option<Duration>,
    /// Largest frame and message accepted from a client, bytes ([`DEFAULT_MAX_FRAME_SIZE`]).
    pub max_frame_size: usize,
    /// Scripted faults ([`Faults::none`]).
    pub faults: Faults,
    /// The TLS identity; `None` generates a fresh one ([`WsServer::cert`] returns it).
    pub cert: Option<Arc<TestCert>>,
    /// The bus of the account's private messages, fed by a [`crate::server::RestServer`]
    /// sharing it ([`crate::server::RestServerConfig::private`],
    /// [`crate::server::LinkedServers`]): sessions forward them to their `fill` and
    /// `user_orders` subscriptions. `None` (the default): those channels stay silent.
    pub private: Option<PrivateFeed>,
    /// The exchange this replay drives ([`crate::server::RestServer::link`]; set by
    /// [`crate::server::LinkedServers`]): the sessions share one replay clock and every
    /// orderbook and trade frame released on it is handed to the exchange's matcher (module
    /// docs, *Linked replay*). `None` (the default): every session replays the recording on its
    /// own.
    pub exchange: Option<ExchangeLink>,
    /// The address to listen on (`127.0.0.1:0`: loopback, an ephemeral port).
    pub bind: SocketAddr,
}

impl std::fmt::Debug for WsServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsServerConfig")
            .field(
                "recording",
                &format_args!(
                    "{} frames, {} markets",
                    self.recording.frames.len(),
                    self.recording.header.markets.len()
                ),
            )
            .field("api_key", &self.api_key)
            .field("max_clock_skew", &self.max_clock_skew)
            .field("pacing", &self.pacing)
            .field("ping_interval", &self.ping_interval)
            .field("max_frame_size", &self.max_frame_size)
            .field("faults", &self.faults)
            .field("private", &self.private)
            .field("exchange", &self.exchange)
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

impl WsServerConfig {
    /// Serves `recording` to clients signing with `api_key`, with every other setting at its
    /// default.
    pub fn new(recording: Arc<Recording>, api_key: ApiKey) -> WsServerConfig {
        WsServerConfig {
            recording,
            api_key,
            max_clock_skew: DEFAULT_MAX_SKEW,
            pacing: Pacing::AsFastAsPossible,
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            faults: Faults::none(),
            cert: None,
            private: None,
            exchange: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// The replay clock the sessions of a linked server share (module docs, *Linked replay*).
#[derive(Default)]
struct Timeline {
    /// `(instant, recv_ns)` the shared replay clock started at (the first streaming
    /// `subscribe` of any session).
    base: Option<(Instant, u64)>,
    /// Recording events released so far: events `0..released` have been sent by some session
    /// and handed to the exchange.
    released: usize,
}

/// What every connection thread shares.
struct Shared {
    data: Arc<ReplayData>,
    tls: Arc<ServerConfig>,
    api_key: ApiKey,
    max_skew: Duration,
    pacing: Pacing,
    ping_interval: Option<Duration>,
    ws_config: WebSocketConfig,
    faults: Faults,
    stop: AtomicBool,
    stats: Arc<ServerStats>,
    private: Option<PrivateFeed>,
    exchange: Option<ExchangeLink>,
    timeline: Mutex<Timeline>,
}

impl Shared {
    fn timeline(&self) -> std::sync::MutexGuard<'_, Timeline> {
        self.timeline.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct ConnHandle {
    sock: Option<TcpStream>,
    thread: JoinHandle<()>,
}

/// A running server; see the module docs. Dropping it stops it.
pub struct WsServer {
    addr: SocketAddr,
    cert: Arc<TestCert>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsServer").field("addr", &self.addr).finish()
    }
}

impl WsServer {
    /// Prepares the recording (errors `InvalidData` if a frame the server would serve is
    /// malformed or a market's metadata is unusable), binds [`WsServerConfig::bind`]
    /// (`127.0.0.1:0` by default) and starts accepting.
    pub fn start(cfg: WsServerConfig) -> io::Result<WsServer> {
        if let Pacing::Recorded { speed } = cfg.pacing {
            if !(speed.is_finite() && speed > 0.0) {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("replay speed {speed} must be > 0")));
            }
        }
        let data = Arc::new(ReplayData::new(&cfg.recording)?);
        let cert = match cfg.cert {
            Some(c) => c,
            None => Arc::new(TestCert::generate()?),
        };
        let tls = cert.server_config()?;
        let listener = TcpListener::bind(cfg.bind)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            data,
            tls,
            api_key: cfg.api_key,
            max_skew: cfg.max_clock_skew,
            pacing: cfg.pacing,
            ping_interval: cfg.ping_interval.filter(|d| !d.is_zero()),
            ws_config: WebSocketConfig::default()
                .max_frame_size(Some(cfg.max_frame_size))
                .max_message_size(Some(cfg.max_frame_size)),
            faults: cfg.faults,
            stop: AtomicBool::new(false),
            stats: Arc::new(ServerStats::default()),
            private: cfg.private,
            exchange: cfg.exchange,
            timeline: Mutex::new(Timeline::default()),
        });
        let sh = Arc::clone(&shared);
        let accept =
            std::thread::Builder::new().name("strike-sim-ws-accept".into()).spawn(move || accept_loop(listener, sh))?;
        Ok(WsServer { addr, cert, shared, accept: Some(accept) })
    }

    /// The bound address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL clients connect to: `wss://localhost:<port>/trade-api/ws/v2`.
    pub fn url(&self) -> String {
        format!("wss://localhost:{}{WS_PATH}", self.addr.port())
    }

    /// The TLS identity; clients trust [`TestCert::cert_der`].
    pub fn cert(&self) -> &Arc<TestCert> {
        &self.cert
    }

    /// The live counters.
    pub fn stats(&self) -> &Arc<ServerStats> {
        &self.shared.stats
    }

    /// Stops accepting, closes every session (a Close frame where the connection still takes
    /// writes, then the socket) and joins all threads. Idempotent.
    pub fn stop(&mut self) {
        let Some(accept) = self.accept.take() else { return };
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread's blocking `accept`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = accept.join();
    }
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let conns: Arc<Mutex<Vec<ConnHandle>>> = Arc::default();
    let mut n = 0u64;
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let (sock, peer) = match accepted {
            Ok(a) => a,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        let clone = sock.try_clone().ok();
        let sh = Arc::clone(&shared);
        n += 1;
        let spawned = std::thread::Builder::new()
            .name(format!("strike-sim-ws-conn-{n}"))
            .spawn(move || serve_connection(&sh, sock, peer));
        let mut list = conns.lock().unwrap_or_else(|p| p.into_inner());
        // Reap finished connections.
        let (done, live): (Vec<_>, Vec<_>) = list.drain(..).partition(|c| c.thread.is_finished());
        *list = live;
        for c in done {
            let _ = c.thread.join();
        }
        if let Ok(thread) = spawned {
            list.push(ConnHandle { sock: clone, thread });
        }
    }
    drop(listener);
    let list: Vec<ConnHandle> = std::mem::take(&mut *conns.lock().unwrap_or_else(|p| p.into_inner()));
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline && list.iter().any(|c| !c.thread.is_finished()) {
        std::thread::sleep(Duration::from_millis(2));
    }
    for c in list {
        if !c.thread.is_finished() {
            if let Some(s) = &c.sock {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let _ = c.thread.join();
    }
}

/// A 401/404 answer with a JSON body.
fn error_response(status: u16, body: String) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(body.clone()));
    *r.status_mut() =
        tungstenite::http::StatusCode::from_u16(status).unwrap_or(tungstenite::http::StatusCode::UNAUTHORIZED);
    let h = r.headers_mut();
    h.insert("Content-Type", tungstenite::http::HeaderValue::from_static("application/json"));
    h.insert("Content-Length", tungstenite::http::HeaderValue::from(body.len()));
    h.insert("Connection", tungstenite::http::HeaderValue::from_static("close"));
    r
}

fn handshake(shared: &Shared, sock: TcpStream) -> Result<Ws, String> {
    let conn = ServerConnection::new(Arc::clone(&shared.tls)).map_err(|e| format!("TLS: {e}"))?;
    let stream = StreamOwned::new(conn, sock);
    let mut rejection: Option<String> = None;
    // The signature is tungstenite's `Callback`; its error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let path = req.uri().path();
        if path != WS_PATH {
            rejection = Some(format!("404: no WebSocket at {path}"));
            let body = serde_json::json!({"code": "not_found", "message": format!("no WebSocket endpoint at {path}"), "details": WS_PATH});
            return Err(error_response(404, body.to_string()));
        }
        let headers = AuthHeaders::from_http(req.headers());
        match verify_request(&shared.api_key, &headers, "GET", path, unix_now_ms(), shared.max_skew) {
            Ok(()) => Ok(resp),
            Err(e) => {
                rejection = Some(format!("401 {}: {e}", e.code()));
                Err(error_response(401, e.error_body()))
            }
        }
    };
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut attempt = tungstenite::accept_hdr_with_config(stream, callback, Some(shared.ws_config));
    loop {
        match attempt {
            Ok(ws) => return Ok(ws),
            Err(HandshakeError::Interrupted(mid)) => {
                if shared.stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                    return Err("handshake timed out".into());
                }
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => {
                return Err(rejection.take().unwrap_or_else(|| format!("handshake failed: {e}")));
            }
        }
    }
}

fn serve_connection(shared: &Shared, sock: TcpStream, peer: SocketAddr) {
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = sock.set_write_timeout(Some(WRITE_TIMEOUT));
    // The accept thread keeps a clone of the socket (to unblock it on `stop`), so closing it
    // takes an explicit shutdown: dropping this thread's handle alone leaves it open.
    let raw = sock.try_clone().ok();
    let ws = match handshake(shared, sock) {
        Ok(ws) => ws,
        Err(reason) => {
            if let Some(r) = &raw {
                let _ = r.shutdown(Shutdown::Both);
            }
            // A stop wake-up connection is not a rejection.
            if !shared.stop.load(Ordering::SeqCst) {
                shared.stats.reject(reason);
            }
            return;
        }
    };
    // Registered before the first command: no message published after the subscription
    // can be missed.
    let private = shared.private.as_ref().map(PrivateFeed::receiver);
    let index = shared.stats.open(Some(peer));
    let first = index == 0;
    let skip = if first { shared.faults.skip_seq } else { None };
    let mut conn = Conn {
        ws,
        shared,
        index,
        first,
        session: Session::new(Arc::clone(&shared.data), skip),
        data_sent: 0,
        replay_base: None,
        next_ping: shared.ping_interval.map(|d| Instant::now() + d),
        private,
        held: VecDeque::new(),
    };
    let end = match conn.run() {
        Ok(end) => end,
        Err(e) => ConnEnd::Error(e.to_string()),
    };
    if end != ConnEnd::FaultClose {
        conn.finish_tls();
    }
    shared.stats.update(index, |c| c.end = Some(end));
}

/// How a step of the loop left the connection.
enum Flow {
    Continue,
    End(ConnEnd),
}

struct Conn<'a> {
    ws: Ws,
    shared: &'a Shared,
    index: usize,
    /// The first session: the one-shot faults apply.
    first: bool,
    session: Session,
    data_sent: u64,
    /// `(instant, recv_ns)` the replay clock started at.
    replay_base: Option<(Instant, u64)>,
    next_ping: Option<Instant>,
    /// This session's receiver on the server's [`PrivateFeed`].
    private: Option<Receiver<Arc<PrivateMsg>>>,
    /// Frames on their way to the client (a linked replay's feed delay), in order, with the
    /// time each is due.
    held: VecDeque<(Instant, OutFrame)>,
}

fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

impl Conn<'_> {
    fn sock(&self) -> &TcpStream {
        &self.ws.get_ref().sock
    }

    fn run(&mut self) -> tungstenite::Result<ConnEnd> {
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                self.close_gracefully();
                return Ok(ConnEnd::ServerStopped);
            }
            let now = Instant::now();
            let mut next = now + POLL_INTERVAL;
            if let Some(due) = self.next_frame_due() {
                next = next.min(due);
            }
            if let Some((due, _)) = self.held.front() {
                next = next.min(*due);
            }
            if let Some(p) = self.next_ping {
                next = next.min(p);
            }
            if let Flow::End(e) = self.pump_reads(next.saturating_duration_since(now))? {
                return Ok(e);
            }
            if let Flow::End(e) = self.pump_private()? {
                return Ok(e);
            }
            if let Some(p) = self.next_ping {
                if Instant::now() >= p {
                    self.ws.write(Message::Ping(Bytes::from_static(PING_PAYLOAD)))?;
                    self.shared.stats.count_sent(self.index, "ping", false);
                    // On schedule; after a stall, one interval from now rather than a burst.
                    self.next_ping = self.shared.ping_interval.map(|d| {
                        let now = Instant::now();
                        if p + d <= now {
                            now + d
                        } else {
                            p + d
                        }
                    });
                }
            }
            if let Flow::End(e) = self.send_held()? {
                return Ok(e);
            }
            let mut n = 0;
            while n < BATCH && self.next_frame_due().is_some_and(|d| d <= Instant::now()) {
                if self.shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let mut out = Vec::new();
                let idx = self.session.cursor();
                self.session.step(&mut out);
                let feed = self.release(idx);
                if let Flow::End(e) = self.emit(out, feed)? {
                    return Ok(e);
                }
                n += 1;
            }
            self.ws.flush()?;
            if self.replay_base.is_some() && self.session.next_event_ns().is_none() && self.held.is_empty() {
                self.shared.stats.update(self.index, |c| c.replay_done = true);
            }
        }
    }

    /// Linked replay: the first session to send event `idx` releases it to the exchange (under
    /// the timeline lock, so the exchange takes the events in order). Returns how long its
    /// frames travel to the client: the feed delay drawn by the exchange's latency model for a
    /// released event; zero for an event another session released (catching up) and without a
    /// link.
    fn release(&self, idx: usize) -> Duration {
        let Some(link) = &self.shared.exchange else { return Duration::ZERO };
        let mut tl = self.shared.timeline();
        if idx != tl.released {
            return Duration::ZERO;
        }
        tl.released += 1;
        match self.shared.data.events.get(idx).and_then(|e| e.market_data()) {
            Some((m, md)) => Duration::from_nanos(link.market_data(m, md)),
            None => Duration::ZERO,
        }
    }

    /// Sends `out` after `delay` (the feed delay of a linked replay), keeping the connection's
    /// frames in order: once a frame is held, every later one queues behind it.
    fn emit(&mut self, out: Vec<OutFrame>, delay: Duration) -> tungstenite::Result<Flow> {
        if delay.is_zero() && self.held.is_empty() {
            return self.send_all(out);
        }
        let mut due = Instant::now() + delay;
        if let Some((last, _)) = self.held.back() {
            due = due.max(*last);
        }
        self.held.extend(out.into_iter().map(|f| (due, f)));
        Ok(Flow::Continue)
    }

    /// Sends the held frames whose time has come.
    fn send_held(&mut self) -> tungstenite::Result<Flow> {
        let now = Instant::now();
        let mut out = Vec::new();
        while self.held.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, f)) = self.held.pop_front() {
                out.push(f);
            }
        }
        self.send_all(out)
    }

    /// When the next recording event is due, if the replay runs and has events left.
    fn next_frame_due(&self) -> Option<Instant> {
        let (t0, ns0) = self.replay_base?;
        let ns = self.session.next_event_ns()?;
        if self.shared.exchange.is_some() && self.session.cursor() < self.shared.timeline().released {
            // Already released by another session: catching up.
            return Some(t0);
        }
        Some(match self.shared.pacing {
            Pacing::AsFastAsPossible => t0,
            Pacing::Recorded { speed } => t0 + Duration::from_secs_f64(ns.saturating_sub(ns0) as f64 / 1e9 / speed),
        })
    }

    /// Forwards the private messages published since the last turn.
    fn pump_private(&mut self) -> tungstenite::Result<Flow> {
        let Some(rx) = &self.private else { return Ok(Flow::Continue) };
        let msgs: Vec<Arc<PrivateMsg>> = rx.try_iter().collect();
        let mut out = Vec::new();
        for m in &msgs {
            self.session.private(m, &mut out);
        }
        self.emit(out, Duration::ZERO)
    }

    /// Reads what the client sent, waiting at most `wait` for the first frame, then answers it.
    fn pump_reads(&mut self, wait: Duration) -> tungstenite::Result<Flow> {
        let mut texts = Vec::new();
        let mut closed = false;
        if wait.is_zero() {
            self.sock().set_nonblocking(true)?;
        } else {
            self.sock().set_read_timeout(Some(wait))?;
        }
        let res = loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => texts.push(t.as_str().to_string()),
                Ok(Message::Ping(_)) => {
                    // Counted before the next `read` writes tungstenite's queued Pong.
                    self.shared.stats.update(self.index, |c| {
                        c.pings_received += 1;
                        *c.sent.entry("pong".into()).or_default() += 1;
                    });
                }
                Ok(Message::Close(_)) => {
                    closed = true;
                    break Ok(());
                }
                Ok(_) => {}
                Err(e) if would_block(&e) => break Ok(()),
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    closed = true;
                    break Ok(());
                }
                Err(e) => break Err(e),
            }
            // Something arrived: drain the rest without waiting.
            self.sock().set_nonblocking(true)?;
        };
        self.sock().set_nonblocking(false)?;
        if closed {
            // Flush tungstenite's Close reply; the connection is over either way.
            let _ = self.ws.flush();
            return Ok(Flow::End(ConnEnd::ClientClosed));
        }
        if let Err(e) = res {
            if matches!(&e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof || io.kind() == io::ErrorKind::ConnectionReset)
            {
                return Ok(Flow::End(ConnEnd::ClientClosed));
            }
            return Err(e);
        }
        self.ws.flush()?;
        if !texts.is_empty() && self.shared.exchange.is_some() && !self.session.started() {
            // A session joining a linked replay under way starts from the shared clock.
            let released = self.shared.timeline().released;
            self.session.skip_to(released);
        }
        if !texts.is_empty() {
            // Deliver what was published before these commands under the old subscriptions,
            // then mark where new private subscriptions start.
            if let Flow::End(e) = self.pump_private()? {
                return Ok(Flow::End(e));
            }
            if let Some(feed) = &self.shared.private {
                self.session.set_private_mark(feed.published());
            }
        }
        for t in texts {
            self.shared.stats.update(self.index, |c| c.commands += 1);
            let mut out = Vec::new();
            self.session.handle_command(&t, &mut out);
            if let Flow::End(e) = self.emit(out, Duration::ZERO)? {
                return Ok(Flow::End(e));
            }
            if self.replay_base.is_none() && self.session.started() {
                let base = (Instant::now(), self.session.origin_ns());
                self.replay_base = Some(match self.shared.exchange {
                    Some(_) => *self.shared.timeline().base.get_or_insert(base),
                    None => base,
                });
                if let Flow::End(e) = self.after_data_frame()? {
                    return Ok(Flow::End(e));
                }
            }
        }
        Ok(Flow::Continue)
    }

    fn send_all(&mut self, out: Vec<OutFrame>) -> tungstenite::Result<Flow> {
        for f in out {
            if f.data {
                if let Some(d) = self.shared.faults.frame_delay {
                    self.ws.flush()?;
                    std::thread::sleep(d);
                }
            }
            let data = f.data;
            self.ws.write(Message::text(f.text))?;
            if data {
                // the frame goes out on the flush right after this batch
                self.ws.flush()?;
                self.shared.stats.stamp_data_frame(super::stats::wire_ns());
            }
            self.shared.stats.count_sent(self.index, f.ty, f.data);
            if f.data {
                self.data_sent += 1;
                if let Flow::End(e) = self.after_data_frame()? {
                    return Ok(Flow::End(e));
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// Fires the one-shot faults scripted for this many data frames (first session only).
    fn after_data_frame(&mut self) -> tungstenite::Result<Flow> {
        if !self.first {
            return Ok(Flow::Continue);
        }
        let n = Some(self.data_sent);
        let f = &self.shared.faults;
        if f.garbled_after_frames == n {
            self.ws.write(Message::text(GARBLED_FRAME))?;
            self.shared.stats.count_sent(self.index, "garbled", false);
        }
        if f.oversized_after_frames == n {
            self.ws.write(Message::text(oversized_frame(f.oversized_bytes)))?;
            self.shared.stats.count_sent(self.index, "oversized", false);
        }
        if f.close_after_frames == n {
            self.ws.flush()?;
            let _ = self.sock().shutdown(Shutdown::Both);
            return Ok(Flow::End(ConnEnd::FaultClose));
        }
        Ok(Flow::Continue)
    }

    /// On stop: a Close frame (1001, "server stopping"); the TLS and TCP close follow in
    /// [`Conn::finish_tls`].
    fn close_gracefully(&mut self) {
        let _ = self.sock().set_write_timeout(Some(Duration::from_millis(200)));
        let _ = self.ws.close(Some(CloseFrame { code: CloseCode::Away, reason: "server stopping".into() }));
        let _ = self.ws.flush();
    }

    /// Ends the connection cleanly: TLS `close_notify`, then TCP shutdown.
    fn finish_tls(&mut self) {
        let _ = self.sock().set_nonblocking(false);
        let _ = self.sock().set_write_timeout(Some(Duration::from_millis(200)));
        let tls = self.ws.get_mut();
        tls.conn.send_close_notify();
        while tls.conn.wants_write() {
            if !matches!(tls.conn.write_tls(&mut tls.sock), Ok(n) if n > 0) {
                break;
            }
        }
        let _ = tls.sock.shutdown(Shutdown::Both);
    }
}
