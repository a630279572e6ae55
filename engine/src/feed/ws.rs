//! The live market-data source: Kalshi's WebSocket v2 over TLS, non-blocking, driven by the feed
//! stage's `poll`.
//!
//! Transport: a `mio` TCP socket (non-blocking connect), `rustls` on top of it ([`TlsStream`],
//! webpki roots in production, a single pinned root for loopback tests), and `tungstenite` on
//! top of that with a 4 KiB read buffer (its 128 KiB default zero-fills its spare capacity on
//! every read: ~560 ns per frame on the dev VM, perf-notes finding 1) and a maximum frame size.
//!
//! Session (`kalshi-protocol.md` §1): the upgrade request carries the signed
//! `KALSHI-ACCESS-*` headers ([`WsAuth`], re-signed on every connect); once open the client sends
//! one `subscribe` for the configured channels and markets with `use_yes_price: true` stated
//! explicitly, answers every Ping with a Pong (tungstenite queues it, [`WsSource`] flushes it),
//! and turns resnapshot requests from the feed into one `update_subscription` /
//! `get_snapshot` per sid. A closed or failed connection is reported once as
//! [`SourcePoll::Disconnected`] (the feed marks every market stale and forgets every sid), then
//! the client reconnects after a jittered exponential backoff and subscribes again: new sids,
//! fresh snapshots.
//!
//! The hot path is [`WsSource::next_frame`] on an open connection: one non-blocking read, no
//! allocation beyond what tungstenite does per message. Connecting, DNS and command encoding are
//! cold.
//!
//! ## Name resolution
//! The host is resolved at construction (a failure there is an error: the URL or the network is
//! wrong before anything started) and the addresses are cached; connects go round-robin over
//! them. After [`RERESOLVE_AFTER_FAILURES`] connection attempts in a row that never reached an
//! open WebSocket, and again after every further that many, the host is resolved anew: the
//! exchange may have moved (failover, a load balancer's addresses rotating) while we kept
//! dialling the old address. `std`'s resolver (`to_socket_addrs`, i.e. `getaddrinfo`) blocks, for
//! seconds when DNS is slow, so it runs on a short-lived background thread started at the
//! failure; the next connect attempt picks up its answer if it has arrived and otherwise keeps
//! the cached addresses. It never runs while a connection is open, and never on the hot path. A
//! failed resolution is a counted fault ([`WsStats::resolve_failures`]), not an error: the cached
//! addresses stay in use and the next round of failures tries again. With
//! [`WsFeedConfig::connect_addr`] set (loopback tests) nothing is ever resolved.

use super::{FrameSource, SourcePoll};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strike_sdk::market::MarketId;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// The path every Kalshi WebSocket handshake signs (`kalshi-protocol.md` §1.2).
pub const WS_PATH: &str = "/trade-api/ws/v2";
/// An open connection with no message and no Ping for this long is dead (Kalshi pings every
/// 10 s, §1.4).
pub const SILENCE_TIMEOUT: Duration = Duration::from_secs(25);
/// A TLS + upgrade handshake not complete after this long is abandoned.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection open this long counts as healthy: the reconnect backoff starts over after it.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// Connection attempts in a row that never reach an open WebSocket before the host name is
/// resolved again (and again after every further this many); see the module docs.
pub const RERESOLVE_AFTER_FAILURES: u32 = 3;

/// Resolves `(host, port)` to socket addresses; blocking. The default is `std`'s
/// `to_socket_addrs`; unit tests substitute their own.
type Resolver = Arc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync>;

/// `std`'s blocking resolver (`getaddrinfo`).
fn std_resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok((host, port).to_socket_addrs()?.collect())
}

/// Supplies the signed handshake headers (`KALSHI-ACCESS-KEY`, `-TIMESTAMP`, `-SIGNATURE`).
/// Called on every connect (cold path).
pub trait WsAuth: Send {
    /// `(name, value)` pairs to add to the upgrade request, or why they cannot be made.
    fn headers(&mut self) -> Result<Vec<(String, String)>, String>;
}

/// No authentication (servers that do not require it; tests of refusals).
pub struct NoAuth;

impl WsAuth for NoAuth {
    fn headers(&mut self) -> Result<Vec<(String, String)>, String> {
        Ok(Vec::new())
    }
}

/// Handshake headers from the background signer: the `GET /trade-api/ws/v2` header it keeps
/// fresh, so a (re)connect never waits on RSA-PSS.
pub struct SignerAuth {
    /// The API key id (`KALSHI-ACCESS-KEY`).
    pub key_id: String,
    /// The signer's published headers.
    pub headers: crate::auth::HeaderReader,
}

impl WsAuth for SignerAuth {
    fn headers(&mut self) -> Result<Vec<(String, String)>, String> {
        let h = self.headers.latest(crate::auth::FixedPath::WsHandshake);
        Ok(vec![
            ("KALSHI-ACCESS-KEY".into(), self.key_id.clone()),
            ("KALSHI-ACCESS-TIMESTAMP".into(), h.ts_ms.to_string()),
            ("KALSHI-ACCESS-SIGNATURE".into(), h.signature_b64_str().to_string()),
        ])
    }
}

/// rustls client session over a non-blocking `mio` socket, as `Read + Write` for tungstenite.
///
/// `read` returns `WouldBlock` until a whole TLS record of application data is available;
/// `write` queues plaintext in rustls and pushes as many TLS bytes as the socket takes.
pub struct TlsStream {
    tls: rustls::ClientConnection,
    sock: mio::net::TcpStream,
}

impl TlsStream {
    /// A client session `tls` over `sock` (non-blocking; its connect may still be in progress).
    /// Shared with the REST order gateway (`gateway::rest`).
    pub(crate) fn new(tls: rustls::ClientConnection, sock: mio::net::TcpStream) -> TlsStream {
        TlsStream { tls, sock }
    }

    /// True until the TLS handshake has completed.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Pushes buffered TLS bytes to the socket until it would block.
    fn write_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                // a non-blocking connect may still be in progress
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            self.write_tls()?;
            match self.tls.read_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {
                    self.tls.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Err(io::ErrorKind::WouldBlock.into()),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tls.writer().write(buf)?;
        self.write_tls()?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tls.writer().flush()?;
        self.write_tls()?;
        if self.tls.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}

/// Where and how to connect.
pub struct WsFeedConfig {
    /// `wss://host[:port]/trade-api/ws/v2`.
    pub url: String,
    /// Connect here instead of resolving the URL's host (loopback tests); the URL's host is still
    /// the TLS server name and the `Host` header.
    pub connect_addr: Option<SocketAddr>,
    /// TLS configuration (trust roots).
    pub tls: Arc<rustls::ClientConfig>,
    /// Channels to subscribe (`orderbook_delta`, `trade`, `ticker`, `fill`, `user_orders`,
    /// `market_lifecycle_v2`).
    pub channels: Vec<String>,
    /// Market tickers, indexed by [`MarketId`].
    pub tickers: Vec<String>,
    /// Largest frame accepted, bytes; a larger one is a fault and drops the connection.
    pub max_frame: usize,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Seed of the backoff jitter.
    pub seed: u64,
}

impl WsFeedConfig {
    /// TLS trusting the webpki roots (production and demo hosts).
    pub fn webpki_tls() -> Arc<rustls::ClientConfig> {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    /// TLS trusting only `cert_der` (a loopback test server's self-signed certificate).
    pub fn pinned_tls(cert_der: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(cert_der.to_vec()))
            .map_err(|e| format!("test root certificate refused: {e}"))?;
        Ok(Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ))
    }
}

/// What the WebSocket source counted.
#[derive(Clone, Debug, Default)]
pub struct WsStats {
    /// Connections attempted.
    pub connects: u64,
    /// Connections that completed the handshake.
    pub opened: u64,
    /// Connections lost or refused.
    pub disconnects: u64,
    /// Text frames delivered.
    pub frames: u64,
    /// Binary frames ignored (Kalshi sends text).
    pub binary_ignored: u64,
    /// Pings received (each answered with a Pong).
    pub pings: u64,
    /// Frames over the size limit (the connection is dropped).
    pub oversized: u64,
    /// `subscribe` commands sent.
    pub subscribes: u64,
    /// `get_snapshot` commands sent.
    pub snapshot_requests: u64,
    /// Host-name resolutions started: the one at construction, then one after every
    /// [`RERESOLVE_AFTER_FAILURES`] failed connection attempts in a row (0 with
    /// [`WsFeedConfig::connect_addr`]).
    pub resolves: u64,
    /// Resolutions that failed or found no address (counted faults: the cached addresses stay in
    /// use).
    pub resolve_failures: u64,
    /// Connection attempts in a row that did not reach an open WebSocket (0 while open).
    pub failures_in_row: u32,
    /// The last resolution error (`cannot resolve HOST: ...`).
    pub last_resolve_error: Option<String>,
    /// The last connection error, for the report (never contains key material).
    pub last_error: Option<String>,
}

enum State {
    Waiting { retry_at: Instant },
    Handshaking(Box<MidHandshake<ClientHandshake<TlsStream>>>),
    Open(Box<WebSocket<TlsStream>>),
}

/// The WebSocket [`FrameSource`]; see the module docs.
pub struct WsSource {
    cfg: WsFeedConfig,
    auth: Box<dyn WsAuth>,
    addrs: Vec<SocketAddr>,
    /// Index into `addrs` of the next connect.
    next_addr: usize,
    host: String,
    port: u16,
    resolver: Resolver,
    /// Failed attempts since the last resolution started (or the last open connection).
    failures_since_resolve: u32,
    /// A background resolution's answer, until the next connect picks it up.
    // lock-ok: the resolver thread answers once, read only on the reconnect path after failures
    resolving: Option<std::sync::mpsc::Receiver<io::Result<Vec<SocketAddr>>>>,
    state: State,
    msg: Option<tungstenite::Utf8Bytes>,
    attempt: u32,
    rng: u64,
    next_id: u64,
    subscribed: bool,
    pending_snapshots: Vec<(u32, MarketId)>,
    report_disconnect: bool,
    phase_since: Instant,
    last_rx: Instant,
    /// Counters.
    pub stats: WsStats,
}

impl WsSource {
    /// A source for `cfg`, authenticating with `auth`. Resolves the host now (cold). The first
    /// connection attempt happens on the first poll.
    pub fn new(cfg: WsFeedConfig, auth: Box<dyn WsAuth>) -> Result<WsSource, String> {
        let uri: tungstenite::http::Uri =
            cfg.url.parse().map_err(|e| format!("bad WebSocket URL {:?}: {e}", cfg.url))?;
        if uri.scheme_str() != Some("wss") {
            return Err(format!("WebSocket URL {:?} must start with wss://", cfg.url));
        }
        let host = uri.host().ok_or_else(|| format!("WebSocket URL {:?} has no host", cfg.url))?.to_string();
        let port = uri.port_u16().unwrap_or(443);
        let mut stats = WsStats::default();
        let addrs = match cfg.connect_addr {
            Some(a) => vec![a],
            None => {
                stats.resolves += 1;
                std_resolve(&host, port)
                    .map_err(|e| format!("cannot resolve {host}: {e}; check the venue URL and the network (DNS)"))?
            }
        };
        if addrs.is_empty() {
            return Err(format!("{host} resolved to no address; check the venue URL and the network (DNS)"));
        }
        let seed = cfg.seed | 1;
        Ok(WsSource {
            cfg,
            auth,
            addrs,
            next_addr: 0,
            host,
            port,
            resolver: Arc::new(std_resolve),
            failures_since_resolve: 0,
            resolving: None,
            state: State::Waiting { retry_at: Instant::now() },
            msg: None,
            attempt: 0,
            rng: seed,
            next_id: 1,
            subscribed: false,
            pending_snapshots: Vec::with_capacity(1024),
            report_disconnect: false,
            phase_since: Instant::now(),
            last_rx: Instant::now(),
            stats,
        })
    }

    /// The addresses connects currently go to (round-robin).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Starts resolving the host again on a background thread (cold; see the module docs).
    fn start_resolve(&mut self) {
        if self.cfg.connect_addr.is_some() || self.resolving.is_some() {
            return;
        }
        self.stats.resolves += 1;
        // lock-ok: the resolver thread answers once, read only on the reconnect path after failures
        let (tx, rx) = std::sync::mpsc::channel();
        let (resolver, host, port) = (self.resolver.clone(), self.host.clone(), self.port);
        let spawned = std::thread::Builder::new().name("strike-ws-resolve".into()).spawn(move || {
            let _ = tx.send(resolver(&host, port));
        });
        match spawned {
            Ok(_) => self.resolving = Some(rx),
            Err(e) => self.resolve_failed(format!("cannot start the resolver thread: {e}")),
        }
    }

    fn resolve_failed(&mut self, why: String) {
        self.stats.resolve_failures += 1;
        let msg = format!("cannot resolve {}: {why}; still trying {:?}", self.host, self.addrs);
        self.stats.last_resolve_error = Some(msg.clone());
        self.stats.last_error = Some(msg);
    }

    /// Takes a finished background resolution's answer, if any (never waits).
    fn poll_resolve(&mut self) {
        let Some(rx) = self.resolving.as_ref() else { return };
        let answer = match rx.try_recv() {
            Ok(a) => a,
            // lock-ok: the resolver thread answers once, read only on the reconnect path after failures
            Err(std::sync::mpsc::TryRecvError::Empty) => return,
            // lock-ok: as above
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                Err(io::Error::other("the resolver thread ended without an answer"))
            }
        };
        self.resolving = None;
        match answer {
            Ok(addrs) if !addrs.is_empty() => {
                self.addrs = addrs;
                self.next_addr = 0;
            }
            Ok(_) => self.resolve_failed("no address".into()),
            Err(e) => self.resolve_failed(e.to_string()),
        }
    }

    /// True while the WebSocket is open.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    fn jitter(&mut self) -> f64 {
        // xorshift64*: reproducible for a seed, good enough for spreading reconnects
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545F4914F6CDD1D);
        0.5 + (x >> 11) as f64 / (1u64 << 53) as f64 * 0.5
    }

    /// Backoff before attempt `n` (n ≥ 1): `min · 2^(n−1)`, capped at `max`, times a jitter in
    /// [0.5, 1).
    pub fn backoff(&mut self, n: u32) -> Duration {
        let base = self.cfg.backoff_min.saturating_mul(1u32 << n.saturating_sub(1).min(20));
        base.min(self.cfg.backoff_max).mul_f64(self.jitter())
    }

    fn fail(&mut self, why: String) {
        self.stats.disconnects += 1;
        self.stats.last_error = Some(why);
        if !self.is_open() {
            // an attempt that never opened: after enough in a row, ask DNS again
            self.stats.failures_in_row += 1;
            self.failures_since_resolve += 1;
            if self.failures_since_resolve >= RERESOLVE_AFTER_FAILURES {
                self.failures_since_resolve = 0;
                self.start_resolve();
            }
        }
        // Backoff restarts only after a connection that stayed healthy: a server that accepts
        // and then drops us (terminal errors, maintenance) must not be hammered.
        if self.is_open() && self.phase_since.elapsed() >= HEALTHY_AFTER {
            self.attempt = 0;
        }
        self.attempt += 1;
        let wait = self.backoff(self.attempt);
        self.state = State::Waiting { retry_at: Instant::now() + wait };
        self.subscribed = false;
        self.msg = None;
        self.report_disconnect = true;
        self.pending_snapshots.clear();
    }

    fn connect(&mut self) {
        self.stats.connects += 1;
        self.poll_resolve();
        let addr = self.addrs[self.next_addr % self.addrs.len()];
        self.next_addr = (self.next_addr + 1) % self.addrs.len();
        let sock = match mio::net::TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return self.fail(format!("connect {addr}: {e}")),
        };
        let _ = sock.set_nodelay(true);
        let name = match rustls_pki_types::ServerName::try_from(self.host.clone()) {
            Ok(n) => n,
            Err(e) => return self.fail(format!("bad TLS server name {}: {e}", self.host)),
        };
        let tls = match rustls::ClientConnection::new(self.cfg.tls.clone(), name) {
            Ok(t) => t,
            Err(e) => return self.fail(format!("TLS setup: {e}")),
        };
        let mut req = match self.cfg.url.as_str().into_client_request() {
            Ok(r) => r,
            Err(e) => return self.fail(format!("bad request: {e}")),
        };
        let headers = match self.auth.headers() {
            Ok(h) => h,
            Err(e) => return self.fail(format!("cannot sign the handshake: {e}")),
        };
        for (k, v) in headers {
            match (
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()),
                tungstenite::http::HeaderValue::from_str(&v),
            ) {
                (Ok(k), Ok(v)) => {
                    req.headers_mut().insert(k, v);
                }
                _ => return self.fail(format!("invalid handshake header {k}")),
            }
        }
        let ws_cfg = WebSocketConfig::default()
            .read_buffer_size(4096)
            .max_frame_size(Some(self.cfg.max_frame))
            .max_message_size(Some(self.cfg.max_frame));
        match tungstenite::client::client_with_config(req, TlsStream { tls, sock }, Some(ws_cfg)) {
            Ok((ws, _)) => self.opened(ws),
            Err(HandshakeError::Interrupted(mid)) => {
                self.phase_since = Instant::now();
                self.state = State::Handshaking(Box::new(mid))
            }
            Err(HandshakeError::Failure(e)) => self.fail(handshake_error(e)),
        }
    }

    fn opened(&mut self, ws: WebSocket<TlsStream>) {
        self.stats.opened += 1;
        self.stats.failures_in_row = 0;
        self.failures_since_resolve = 0;
        self.phase_since = Instant::now();
        self.last_rx = Instant::now();
        self.state = State::Open(Box::new(ws));
    }

    fn send_text(&mut self, text: String) -> bool {
        let State::Open(ws) = &mut self.state else { return false };
        match ws.send(Message::text(text)) {
            Ok(()) => true,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => true, // queued
            Err(e) => {
                self.fail(format!("send: {e}"));
                false
            }
        }
    }

    fn subscribe(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        let cmd = serde_json::json!({
            "id": id,
            "cmd": "subscribe",
            "params": {
                "channels": self.cfg.channels,
                "market_tickers": self.cfg.tickers,
                "use_yes_price": true,
            }
        });
        if self.send_text(cmd.to_string()) {
            self.stats.subscribes += 1;
            self.subscribed = true;
        }
    }

    fn flush_snapshot_requests(&mut self) {
        while let Some(&(sid, _)) = self.pending_snapshots.first() {
            let mut tickers = Vec::new();
            self.pending_snapshots.retain(|&(s, m)| {
                if s == sid {
                    if let Some(t) = self.cfg.tickers.get(m.idx()) {
                        tickers.push(t.clone());
                    }
                    false
                } else {
                    true
                }
            });
            if tickers.is_empty() {
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            let cmd = serde_json::json!({
                "id": id,
                "cmd": "update_subscription",
                "params": { "sids": [sid], "action": "get_snapshot", "market_tickers": tickers }
            });
            if !self.send_text(cmd.to_string()) {
                return;
            }
            self.stats.snapshot_requests += 1;
        }
    }
}

fn handshake_error(e: tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(resp) => {
            let body = resp.body().as_deref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
            format!("handshake refused: HTTP {} {}", resp.status(), body.trim())
        }
        other => format!("handshake failed: {other}"),
    }
}

impl FrameSource for WsSource {
    fn next_frame(&mut self) -> SourcePoll<'_> {
        if self.report_disconnect {
            self.report_disconnect = false;
            return SourcePoll::Disconnected;
        }
        loop {
            match &mut self.state {
                State::Waiting { retry_at } => {
                    if Instant::now() < *retry_at {
                        return SourcePoll::Idle;
                    }
                    self.connect();
                    if !self.is_open() {
                        return if self.report_disconnect { self.next_frame() } else { SourcePoll::Idle };
                    }
                }
                State::Handshaking(_) => {
                    let State::Handshaking(mid) =
                        std::mem::replace(&mut self.state, State::Waiting { retry_at: Instant::now() })
                    else {
                        unreachable!()
                    };
                    match mid.handshake() {
                        Ok((ws, _)) => self.opened(ws),
                        Err(HandshakeError::Interrupted(m)) => {
                            self.state = State::Handshaking(Box::new(m));
                            if self.phase_since.elapsed() >= HANDSHAKE_TIMEOUT {
                                self.fail(format!("handshake not complete after {HANDSHAKE_TIMEOUT:?}"));
                                return self.next_frame();
                            }
                            return SourcePoll::Idle;
                        }
                        Err(HandshakeError::Failure(e)) => {
                            self.fail(handshake_error(e));
                            return self.next_frame();
                        }
                    }
                }
                State::Open(_) => {
                    if !self.subscribed {
                        self.subscribe();
                    }
                    if !self.pending_snapshots.is_empty() {
                        self.flush_snapshot_requests();
                    }
                    let State::Open(ws) = &mut self.state else { return self.next_frame() };
                    match ws.read() {
                        Ok(Message::Text(t)) => {
                            self.stats.frames += 1;
                            self.last_rx = Instant::now();
                            let recv_ns = unix_ns();
                            self.msg = Some(t);
                            let bytes = self.msg.as_ref().map(|m| m.as_bytes()).unwrap_or(&[]);
                            return SourcePoll::Frame { recv_ns, bytes };
                        }
                        Ok(Message::Binary(_)) => self.stats.binary_ignored += 1,
                        Ok(Message::Ping(_)) => {
                            // tungstenite queued the Pong; push it out now
                            self.stats.pings += 1;
                            self.last_rx = Instant::now();
                            let _ = ws.flush();
                        }
                        Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {}
                        Ok(Message::Close(c)) => {
                            self.fail(format!("server closed the connection: {c:?}"));
                            return self.next_frame();
                        }
                        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                            let _ = ws.flush();
                            // Kalshi pings every 10 s: silence this long is a dead connection
                            // (NAT timeout, partition without RST), not a quiet market.
                            if self.last_rx.elapsed() >= SILENCE_TIMEOUT {
                                self.fail(format!("no message or ping for {SILENCE_TIMEOUT:?}"));
                                return self.next_frame();
                            }
                            return SourcePoll::Idle;
                        }
                        Err(tungstenite::Error::Capacity(e)) => {
                            self.stats.oversized += 1;
                            self.fail(format!("frame over the {} byte limit: {e}", self.cfg.max_frame));
                            return self.next_frame();
                        }
                        Err(e) => {
                            self.fail(format!("connection lost: {e}"));
                            return self.next_frame();
                        }
                    }
                }
            }
        }
    }

    fn request_snapshot(&mut self, sid: u32, market: MarketId) {
        if self.pending_snapshots.len() < self.pending_snapshots.capacity()
            && !self.pending_snapshots.contains(&(sid, market))
        {
            self.pending_snapshots.push((sid, market));
        }
    }

    fn reconnect(&mut self) {
        if self.is_open() {
            self.fail("resubscribing after a terminal subscription error".into());
        }
    }
}

/// Wall-clock receive time, unix ns.
#[inline]
fn unix_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback port nothing listens on: bound, then released.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    fn cfg() -> WsFeedConfig {
        let port = closed_port();
        WsFeedConfig {
            url: format!("wss://localhost:{port}/trade-api/ws/v2"),
            connect_addr: Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
            tls: WsFeedConfig::webpki_tls(),
            channels: vec!["orderbook_delta".into()],
            tickers: vec!["A".into()],
            max_frame: 1 << 20,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            seed: 7,
        }
    }

    #[test]
    fn backoff_grows_jittered_and_capped() {
        let mut s = WsSource::new(cfg(), Box::new(NoAuth)).unwrap();
        let mut prev = Duration::ZERO;
        for n in 1..=8 {
            let d = s.backoff(n);
            let base = Duration::from_millis(100).saturating_mul(1 << (n - 1)).min(Duration::from_secs(10));
            assert!(d >= base / 2 && d < base, "attempt {n}: {d:?} vs base {base:?}");
            if n <= 6 {
                assert!(d > prev / 2);
            }
            prev = d;
        }
        assert!(s.backoff(40) < Duration::from_secs(10));
    }

    #[test]
    fn refused_connections_are_reported_once_and_retried() {
        // a released loopback port: connection refused
        let mut s = WsSource::new(cfg(), Box::new(NoAuth)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut disconnects = 0;
        while Instant::now() < deadline && disconnects < 2 {
            if let SourcePoll::Disconnected = s.next_frame() {
                disconnects += 1;
            }
        }
        assert_eq!(disconnects, 2, "{:?}", s.stats);
        assert!(s.stats.connects >= 2);
        assert!(s.stats.last_error.as_deref().unwrap_or("").contains("refused"), "{:?}", s.stats.last_error);
        // with connect_addr set, the address is used as is: never resolved, however many failures
        while Instant::now() < deadline && s.stats.failures_in_row < 2 * RERESOLVE_AFTER_FAILURES {
            let _ = s.next_frame();
        }
        assert!(s.stats.failures_in_row >= 2 * RERESOLVE_AFTER_FAILURES, "{:?}", s.stats);
        assert_eq!((s.stats.resolves, s.stats.resolve_failures), (0, 0));
    }

    #[test]
    fn repeated_failures_re_resolve_the_host_and_a_failed_resolve_is_only_counted() {
        use std::sync::atomic::{AtomicU32, Ordering};
        // where the exchange "moved" to: a plain TCP listener (the TLS handshake then fails, which
        // is fine: we only need to see the new address dialled)
        let moved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        moved.set_nonblocking(true).unwrap();
        let new_addr = moved.local_addr().unwrap();
        let mut c = cfg();
        c.url = "wss://localhost:1/trade-api/ws/v2".into(); // resolves to loopback port 1: refused
        c.connect_addr = None;
        c.backoff_min = Duration::from_millis(1);
        c.backoff_max = Duration::from_millis(4);
        let mut s = WsSource::new(c, Box::new(NoAuth)).unwrap();
        assert_eq!(s.stats.resolves, 1, "resolved once at construction");
        assert!(s.addrs().iter().all(|a| a.port() == 1 && a.ip().is_loopback()), "{:?}", s.addrs());
        // the first re-resolution fails (a counted fault), the second finds the new address
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        s.resolver = Arc::new(move |host: &str, port: u16| {
            assert_eq!((host, port), ("localhost", 1));
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(io::Error::other("SERVFAIL (test)"))
            } else {
                Ok(vec![new_addr])
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut accepted = false;
        while Instant::now() < deadline && !accepted {
            let _ = s.next_frame();
            accepted = moved.accept().is_ok();
        }
        assert!(accepted, "the re-resolved address was never dialled: {:?}", s.stats);
        // construction + the failed one + the good one (a slow thread may have delayed the pickup
        // past another round of failures, which starts no second resolution meanwhile)
        assert!(s.stats.resolves >= 3, "{:?}", s.stats);
        assert_eq!(calls.load(Ordering::SeqCst) as u64, s.stats.resolves - 1);
        assert_eq!(s.stats.resolve_failures, 1, "{:?}", s.stats);
        let why = s.stats.last_resolve_error.clone().unwrap_or_default();
        assert!(why.contains("cannot resolve localhost") && why.contains("SERVFAIL"), "{why}");
        assert_eq!(s.addrs(), [new_addr]);
        assert_eq!(s.stats.opened, 0);
        assert!(s.stats.connects > 2 * RERESOLVE_AFTER_FAILURES as u64, "{:?}", s.stats);
    }

    #[test]
    fn urls_are_checked() {
        let mut c = cfg();
        c.url = "ws://localhost/trade-api/ws/v2".into();
        assert!(WsSource::new(c, Box::new(NoAuth)).err().unwrap().contains("wss://"));
    }
}
