//! The loopback Kalshi-compatible REST order-entry server (V2, `kalshi-protocol.md` §3).
//!
//! [`RestServer::start`] binds `127.0.0.1:0` and serves `https://localhost:<port>/trade-api/v2`
//! ([`RestServer::url`]) over TLS with the server's [`TestCert`] (as [`crate::server::WsServer`]
//! does; clients trust [`TestCert::cert_der`]). An accept thread hands each TCP connection to a
//! thread of its own: blocking `std` sockets, rustls [`StreamOwned`], requests parsed with
//! `httparse`. HTTP/1.1 keep-alive: a connection serves requests one after the other until the
//! client sends `Connection: close` (answered, then closed), an HTTP/1.0 request without
//! `Connection: keep-alive`, closes, or stays idle for [`RestServerConfig::idle_timeout`].
//! Bodies are `Content-Length` only (`Transfer-Encoding` is refused with 411); no pipelining
//! beyond reading requests in order.
//!
//! ## Authentication
//! Every request must carry Kalshi's signing headers; [`verify_request`] checks them against
//! [`RestServerConfig::api_key`] over `timestamp + METHOD + path` (the path from `/trade-api/`,
//! query cut off). Failures are answered `401` with [`crate::server::AuthError::error_body`]
//! (`{"code":"invalid_signature",...}`; nested under `error` with [`ErrorShape::Nested`]) and
//! counted in [`RestStats::auth_failures`]; the connection stays open.
//!
//! ## Endpoints (paths under `/trade-api/v2`)
//! | Method, path | Success | Body |
//! |---|---|---|
//! | `POST /portfolio/events/orders` | 201 | create response |
//! | `POST /portfolio/events/orders/batched` | 201 | `{"orders":[create response + "error"]}` |
//! | `DELETE /portfolio/events/orders/{order_id}` | 200 | `{order_id, client_order_id, reduced_by, ts_ms}` |
//! | `DELETE /portfolio/events/orders/batched` | 200 | `{"orders":[cancel response + "error"]}` |
//! | `DELETE /portfolio/events/orders` | 204 | — (cancels every resting order) |
//! | `POST /portfolio/events/orders/{order_id}/amend` | 200 | amend response |
//! | `POST /portfolio/events/orders/{order_id}/decrease` | 200 | decrease response |
//! | `GET /portfolio/orders` | 200 | `{"orders":[order], "cursor": ""}` |
//! | `GET /portfolio/orders/{order_id}` | 200 | `{"order": order}` |
//! | `GET /portfolio/positions` | 200 | `{"market_positions":[…], "event_positions":[…], "cursor":""}` |
//! | `GET /portfolio/balance` | 200 | `{"balance", "balance_dollars", "portfolio_value", "updated_ts"}` |
//!
//! The trading model, validation and the exact shapes are in [`super::exchange`]'s docs. Unknown
//! paths answer 404 `not_found`, known paths with another method 405 `method_not_allowed`.
//!
//! ## Faults
//! [`RestFaults`] (initial script in [`RestServerConfig::faults`], replaced at run time with
//! [`RestServer::set_faults`]): answer the next N requests (optionally only under a path prefix)
//! with `429 {"error":"too many requests"}`; accept-and-never-answer the N-th create (the order is
//! applied to the book and the order table, no response is written, the connection stays open
//! until the client closes it); refuse the next creates with scripted `(status, code, message)`
//! errors in either error shape; close every connection abruptly after it has answered N
//! requests; delay every response; lose the next N private messages
//! ([`RestFaults::drop_private_next`]); publish private messages before the response (the
//! default), right after it, or later ([`RestFaults::private_timing`], [`PrivateTiming`]).
//!
//! ## Time and latency
//! The exchange runs on one clock, unix nanoseconds read from a monotonic clock anchored to the
//! system clock at start, and its [`super::exchange`] feeds the [`crate::matching::Matcher`]
//! in that clock's order (`crate::matching::latency`, *Driving the matcher in time order*),
//! with the delays of [`RestServerConfig::latency`] (zero by default):
//! - an order command (create, batch create, cancel, batch cancel, cancel-all, amend,
//!   decrease) read at `t` arrives at `t + entry`: its thread waits until then and until every
//!   command that arrived earlier has been applied, applies the market data stamped at or
//!   before its arrival, and is applied itself at its arrival time: an order meets the book as
//!   it was when it reached the exchange. Its response is written `response` after that (plus
//!   [`RestFaults::response_delay`]). Reads (`GET`) see the exchange as it is when read;
//! - market data of a linked WebSocket replay ([`ExchangeLink`]) is published by the exchange
//!   when the replay releases it, `t_md`, and applied then, unless a command that arrived
//!   earlier is still in flight (market data is never applied past the arrival of a command
//!   not yet applied; that command's thread, or the exchange's clock thread, applies it
//!   after). Its frame reaches the client at `t_md + feed`: the WebSocket session holds it, and
//!   every later frame of the connection, that long (`crate::matching::latency`: the client
//!   sees the book `feed` late, and an order it sends on what it saw meets a book at least
//!   `feed + entry` newer).
//!
//! Without a linked replay the book is the recording's opening book (each market's first
//! snapshot) and moves only with the account's own orders and the test hooks
//! ([`RestServer::set_book`], [`RestServer::external_trade`]). The private messages of fills
//! that market data causes (maker fills) are published when the exchange applies it.
//!
//! ## Private messages
//! With [`RestServerConfig::private`] set, the exchange renders a `fill` per execution and a
//! `user_order` per changed order (shapes and order in [`super::exchange`]'s docs) and the
//! server publishes them into that [`PrivateFeed`] while still holding the exchange lock, so
//! the bus has the exchange's order; by default before the HTTP response is written. Orders
//! filled by [`RestServer::external_trade`] publish before it returns. Counted in
//! [`RestStats::private_published`].

use super::auth::{unix_now_ms, verify_request, ApiKey, AuthError, AuthHeaders, DEFAULT_MAX_SKEW};
use super::exchange::{ApiError, ErrorShape, Exchange, ExchangeConfig, ExchangeCounters, ExchangeFill, FokKill, Reply};
use super::private::{Draft, PrivateFeed, PrivateTiming};
use super::tls::TestCert;
use crate::matching::{LatencyKind, LatencyModel, MarketData, QueueModelKind};
use crate::recording::Recording;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strike_sdk::book::BookSide;
use strike_sdk::fees::AccountPrecision;
use strike_sdk::num::{Money, Price, Qty};

pub use super::exchange::BookLevels;

/// The path prefix of every REST endpoint (and of the signed path): `/trade-api/v2`.
pub const REST_BASE_PATH: &str = "/trade-api/v2";

/// The default keep-alive idle timeout: 60 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default largest batch (create or cancel): 20 orders.
pub const DEFAULT_MAX_BATCH: usize = 20;

/// The body of every 429 (`kalshi-protocol.md` §3.7).
pub const TOO_MANY_REQUESTS_BODY: &str = r#"{"error":"too many requests"}"#;

/// Largest request head (request line + headers), bytes.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body, bytes.
const MAX_BODY: usize = 1 << 20;
/// How long a connection thread blocks on a read before checking the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// A blocked write longer than this drops the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `stop` lets connection threads finish before shutting their sockets.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// One scripted error answer for a create ([`RestFaults::reject_creates`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptedReject {
    /// HTTP status (e.g. 400, 409, 500, 503).
    pub status: u16,
    /// Kalshi error `code`.
    pub code: String,
    /// `message`.
    pub message: String,
    /// `details` (empty by default).
    pub details: String,
    /// Flat `{"code",...}` or nested `{"error":{...}}`.
    pub shape: ErrorShape,
}

impl ScriptedReject {
    /// A flat-shaped error `(status, code, message)` with empty `details`.
    pub fn new(status: u16, code: &str, message: &str) -> ScriptedReject {
        ScriptedReject {
            status,
            code: code.into(),
            message: message.into(),
            details: String::new(),
            shape: ErrorShape::Flat,
        }
    }

    /// The same error in the nested `{"error":{...}}` shape.
    pub fn nested(mut self) -> ScriptedReject {
        self.shape = ErrorShape::Nested;
        self
    }

    /// Sets `details`.
    pub fn with_details(mut self, details: &str) -> ScriptedReject {
        self.details = details.into();
        self
    }
}

/// The REST fault script; [`RestFaults::none`] (the default) breaks nothing. Counting starts
/// when the script is installed (at start, or by [`RestServer::set_faults`]). Build with the
/// chained setters: `RestFaults::none().rate_limit(2).never_answer_create(3)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestFaults {
    /// Answer the next N authenticated requests (matching [`RestFaults::rate_limit_prefix`])
    /// with `429` and [`TOO_MANY_REQUESTS_BODY`]; nothing is applied. Decremented per 429.
    pub rate_limit_next: u64,
    /// Only requests whose path after `/trade-api/v2` (no query) starts with this are
    /// rate-limited, e.g. `/portfolio/events/orders`; `None` = every path.
    pub rate_limit_prefix: Option<String>,
    /// The N-th `POST /portfolio/events/orders` from now (1 = the next) is processed as usual
    /// (a valid order is on the book and in `GET /portfolio/orders`) but never answered: the
    /// connection's thread writes nothing and holds the connection open, discarding input,
    /// until the client closes it or the server stops. One-shot.
    pub never_answer_create: Option<u64>,
    /// Errors for the next `POST /portfolio/events/orders`, one per create, in order; a
    /// refused create is not applied.
    pub reject_creates: Vec<ScriptedReject>,
    /// Every connection is closed abruptly (TCP shutdown, no `Connection: close`, no TLS
    /// `close_notify`) right after writing its N-th response.
    pub close_after_requests: Option<u64>,
    /// Sleep this long before writing each response.
    pub response_delay: Option<Duration>,
    /// The next N private messages (`fill` or `user_order`, counted one by one in the order
    /// the exchange produces them) are not published: no session ever sees them (counted in
    /// [`RestStats::private_dropped`]). Decremented per dropped message. Needs
    /// [`RestServerConfig::private`].
    pub drop_private_next: u64,
    /// When a request's private messages are published relative to its response
    /// ([`PrivateTiming::BeforeResponse`]). [`RestServer::external_trade`] has no response: its
    /// messages are published before it returns, or later with [`PrivateTiming::Delayed`].
    pub private_timing: PrivateTiming,
}

impl RestFaults {
    /// No faults.
    pub fn none() -> RestFaults {
        RestFaults::default()
    }

    /// 429 for the next `n` requests on any path.
    pub fn rate_limit(mut self, n: u64) -> RestFaults {
        self.rate_limit_next = n;
        self.rate_limit_prefix = None;
        self
    }

    /// 429 for the next `n` requests whose path (after `/trade-api/v2`) starts with `prefix`.
    pub fn rate_limit_path(mut self, n: u64, prefix: &str) -> RestFaults {
        self.rate_limit_next = n;
        self.rate_limit_prefix = Some(prefix.strip_prefix(REST_BASE_PATH).unwrap_or(prefix).to_string());
        self
    }

    /// Sets [`RestFaults::never_answer_create`] (`n` ≥ 1; 1 = the next create).
    pub fn never_answer_create(mut self, n: u64) -> RestFaults {
        self.never_answer_create = Some(n.max(1));
        self
    }

    /// Appends one scripted create error.
    pub fn reject_next_create(mut self, r: ScriptedReject) -> RestFaults {
        self.reject_creates.push(r);
        self
    }

    /// Sets [`RestFaults::close_after_requests`].
    pub fn close_after(mut self, n: u64) -> RestFaults {
        self.close_after_requests = Some(n.max(1));
        self
    }

    /// Sets [`RestFaults::response_delay`].
    pub fn delay_each(mut self, d: Duration) -> RestFaults {
        self.response_delay = Some(d);
        self
    }

    /// Sets [`RestFaults::drop_private_next`]: the next `n` private messages are lost.
    pub fn drop_private(mut self, n: u64) -> RestFaults {
        self.drop_private_next = n;
        self
    }

    /// Sets [`RestFaults::private_timing`].
    pub fn private_timing(mut self, t: PrivateTiming) -> RestFaults {
        self.private_timing = t;
        self
    }
}

/// A snapshot of what the REST server did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestStats {
    /// Requests received, by `"METHOD /template"` (`"POST /portfolio/events/orders"`,
    /// `"DELETE /portfolio/events/orders/{order_id}"`, `"GET /portfolio/orders"`, ...; paths
    /// without the `/trade-api/v2` prefix; unknown paths as `"METHOD (unknown)"`). Every request
    /// counts, refused or not.
    pub requests: BTreeMap<String, u64>,
    /// Requests read on each connection, in the order the connections sent their first complete
    /// request (connections that never did are not listed).
    pub connections: Vec<u64>,
    /// Orders created (single creates and batch items, swallowed creates included).
    pub creates: u64,
    /// Fill events (one per level taken, or per resting order hit by
    /// [`RestServer::external_trade`]).
    pub fills: u64,
    /// Contracts filled in all fills.
    pub filled: Qty,
    /// Of [`RestStats::fills`], those of resting orders (maker fills).
    pub maker_fills: u64,
    /// Orders cancelled: cancel, batch-cancel items, cancel-all, decreases to zero,
    /// self-trade-prevention maker cancels (not IoC/FoK remainders).
    pub cancels: u64,
    /// Successful amends.
    pub amends: u64,
    /// Successful decreases.
    pub decreases: u64,
    /// Error answers: validation, 404, 405, 409, ..., and the per-item errors of batches (not
    /// 401s, 429s, scripted rejects or malformed HTTP, which have their own counters).
    pub rejections: u64,
    /// [`RestStats::rejections`] by error `code`.
    pub rejections_by_code: BTreeMap<String, u64>,
    /// Writes without `exchange_index` (create, batch items, cancel query, batch-cancel items,
    /// amend, decrease): accepted (auto-routed), counted here.
    pub missing_exchange_index: u64,
    /// [`RestStats::missing_exchange_index`] by `"METHOD /template"`.
    pub missing_exchange_index_by: BTreeMap<String, u64>,
    /// Creates (or amends' `updated_client_order_id`) refused 409 `order_already_exists`.
    pub duplicates_refused: u64,
    /// 401 answers.
    pub auth_failures: u64,
    /// The reason of each 401 (`"invalid_signature: ..."`).
    pub auth_failure_reasons: Vec<String>,
    /// 429 answers of the rate-limit fault.
    pub rate_limited: u64,
    /// Creates refused by [`RestFaults::reject_creates`].
    pub scripted_rejects: u64,
    /// Creates accepted and never answered ([`RestFaults::never_answer_create`]).
    pub never_answered: u64,
    /// Connections closed by [`RestFaults::close_after_requests`].
    pub fault_closes: u64,
    /// Malformed HTTP requests (answered 400/411/413/431 and closed).
    pub bad_requests: u64,
    /// Private messages (`fill`, `user_order`) handed to the [`PrivateFeed`] (or scheduled,
    /// with [`PrivateTiming::Delayed`]).
    pub private_published: u64,
    /// Private messages lost to [`RestFaults::drop_private_next`].
    pub private_dropped: u64,
    /// Market-data inputs the exchange's matcher applied: the first snapshots at start, the
    /// frames of a linked WebSocket replay, [`RestServer::set_book`] and
    /// [`RestServer::external_trade`] prints.
    pub market_data_applied: u64,
    /// Market-data inputs the matcher refused (a crossed snapshot, an off-grid price) and
    /// skipped.
    pub market_data_refused: u64,
}

impl RestStats {
    /// Requests of `method` on `template` (`stats.requests_to("POST", "/portfolio/events/orders")`).
    pub fn requests_to(&self, method: &str, template: &str) -> u64 {
        self.requests.get(&format!("{method} {template}")).copied().unwrap_or(0)
    }

    /// Total requests received.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// How a [`RestServer`] behaves.
#[derive(Clone)]
pub struct RestServerConfig {
    /// The markets (header) and their starting books (each market's first
    /// `orderbook_snapshot`).
    pub recording: Arc<Recording>,
    /// The one API key accepted.
    pub api_key: ApiKey,
    /// The account's starting balance (micro-dollars).
    pub balance: Money,
    /// Largest accepted distance of `KALSHI-ACCESS-TIMESTAMP` from the server clock (30 s).
    pub max_clock_skew: Duration,
    /// Scripted faults ([`RestFaults::none`]).
    pub faults: RestFaults,
    /// The TLS identity; `None` generates a fresh one ([`RestServer::cert`] returns it). Pass a
    /// [`crate::server::WsServer`]'s to serve both with one certificate.
    pub cert: Option<Arc<TestCert>>,
    /// The shape of every error body the server writes ([`ErrorShape::Flat`]); scripted
    /// rejects carry their own.
    pub error_shape: ErrorShape,
    /// How an unfillable fill-or-kill is answered ([`FokKill::CanceledOrder`]).
    pub fok_kill: FokKill,
    /// Fee and balance precision of the account ([`AccountPrecision::Cent`]).
    pub account_precision: AccountPrecision,
    /// The queue-position model of resting orders ([`QueueModelKind::RiskAverse`]; see
    /// [`crate::matching::queue`]).
    pub queue_model: QueueModelKind,
    /// The latency model ([`LatencyKind::default`]: zero delays). Order commands (create,
    /// batches, cancel, cancel-all, amend, decrease) meet the matcher at the time their request
    /// was read plus the entry delay, and are answered the response delay after that; market
    /// data of a linked WebSocket replay meets it when the replay releases it, and its frame
    /// reaches the client the feed delay later. See the module docs, *Time and latency*.
    pub latency: LatencyKind,
    /// Keep-alive idle timeout ([`DEFAULT_IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
    /// Largest batch create or cancel ([`DEFAULT_MAX_BATCH`]).
    pub max_batch: usize,
    /// The bus the account's `fill` and `user_order` messages are published into (share it
    /// with [`crate::server::WsServerConfig::private`], or use
    /// [`crate::server::LinkedServers`]); `None` (the default) renders none.
    pub private: Option<PrivateFeed>,
    /// The address to listen on (`127.0.0.1:0`: loopback, an ephemeral port).
    pub bind: SocketAddr,
}

impl std::fmt::Debug for RestServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestServerConfig")
            .field("markets", &self.recording.header.markets.len())
            .field("api_key", &self.api_key)
            .field("balance", &self.balance)
            .field("faults", &self.faults)
            .field("error_shape", &self.error_shape)
            .field("fok_kill", &self.fok_kill)
            .field("queue_model", &self.queue_model)
            .field("latency", &self.latency)
            .field("private", &self.private)
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

impl RestServerConfig {
    /// Serves `recording`'s markets to clients signing with `api_key`, the account holding
    /// `balance`, every other setting at its default.
    pub fn new(recording: Arc<Recording>, api_key: ApiKey, balance: Money) -> RestServerConfig {
        RestServerConfig {
            recording,
            api_key,
            balance,
            max_clock_skew: DEFAULT_MAX_SKEW,
            faults: RestFaults::none(),
            cert: None,
            error_shape: ErrorShape::Flat,
            fok_kill: FokKill::CanceledOrder,
            account_precision: AccountPrecision::Cent,
            queue_model: QueueModelKind::RiskAverse,
            latency: LatencyKind::default(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_batch: DEFAULT_MAX_BATCH,
            private: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

#[derive(Default)]
struct HttpCounters {
    requests: BTreeMap<String, u64>,
    connections: Vec<u64>,
    auth_failures: u64,
    auth_failure_reasons: Vec<String>,
    rate_limited: u64,
    scripted_rejects: u64,
    never_answered: u64,
    fault_closes: u64,
    bad_requests: u64,
    private_published: u64,
    private_dropped: u64,
}

/// The exchange clock: unix nanoseconds, read from a monotonic clock anchored once to the
/// system clock (so it never goes backwards).
struct Clock {
    origin: Instant,
    origin_unix_ns: u64,
}

impl Clock {
    fn new() -> Clock {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        Clock { origin: Instant::now(), origin_unix_ns: unix }
    }

    fn now_ns(&self) -> u64 {
        self.origin_unix_ns.saturating_add(self.origin.elapsed().as_nanos() as u64)
    }
}

struct State {
    ex: Exchange,
    http: HttpCounters,
    faults: RestFaults,
    latency: LatencyKind,
    /// Order commands read but not yet applied: `(arrival time, number)`.
    in_flight: BTreeSet<(u64, u64)>,
    next_command: u64,
    /// [`super::stats::wire_ns`] when each create request had been read (before its signature
    /// was checked).
    create_read_ns: Vec<u64>,
}

impl State {
    /// How far market data may be applied at wall time `now_ns`: up to now, but not past the
    /// arrival of a command still in flight (it must meet the book as it was then).
    fn horizon(&self, now_ns: u64) -> u64 {
        self.in_flight.first().map_or(now_ns, |c| c.0.min(now_ns))
    }
}

struct Shared {
    tls: Arc<ServerConfig>,
    api_key: ApiKey,
    max_skew: Duration,
    error_shape: ErrorShape,
    idle_timeout: Duration,
    stop: AtomicBool,
    state: Mutex<State>,
    /// Signalled when a command leaves the flight, market data is queued, or the server stops.
    wake: Condvar,
    clock: Clock,
    private: Option<PrivateFeed>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits on [`Shared::wake`] at most `d`, giving the lock back meanwhile.
    fn wait<'a>(&self, g: MutexGuard<'a, State>, d: Duration) -> MutexGuard<'a, State> {
        match self.wake.wait_timeout(g, d) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    /// Applies the market data due at the current wall time and publishes what it produced
    /// (maker fills): now, or later with [`PrivateTiming::Delayed`].
    fn catch_up(&self, st: &mut State) {
        let h = st.horizon(self.clock.now_ns());
        st.ex.advance(h);
        let timing = match st.faults.private_timing {
            PrivateTiming::Delayed(d) => PrivateTiming::Delayed(d),
            _ => PrivateTiming::BeforeResponse,
        };
        let later = self.route_private(st, timing);
        self.publish_later(later);
    }

    /// Takes the exchange's private messages and applies the drop fault; publishes them now
    /// (`timing` [`PrivateTiming::BeforeResponse`], called under the state lock so the bus
    /// keeps the exchange's order) or schedules them ([`PrivateTiming::Delayed`]); returns
    /// those to publish after the response ([`PrivateTiming::AfterResponse`]).
    fn route_private(&self, st: &mut State, timing: PrivateTiming) -> Vec<Draft> {
        let drafts = st.ex.take_private();
        let Some(feed) = &self.private else { return Vec::new() };
        let mut keep = Vec::with_capacity(drafts.len());
        for d in drafts {
            if st.faults.drop_private_next > 0 {
                st.faults.drop_private_next -= 1;
                st.http.private_dropped += 1;
            } else {
                keep.push(d);
            }
        }
        st.http.private_published += keep.len() as u64;
        match timing {
            PrivateTiming::BeforeResponse => {
                for d in keep {
                    feed.publish_draft(d);
                }
                Vec::new()
            }
            PrivateTiming::AfterResponse => keep,
            PrivateTiming::Delayed(d) => {
                if !keep.is_empty() {
                    let feed = feed.clone();
                    let spawned = std::thread::Builder::new().name("strike-sim-rest-private".into()).spawn(move || {
                        std::thread::sleep(d);
                        for m in keep {
                            feed.publish_draft(m);
                        }
                    });
                    // Without a thread the messages are lost, as with a dropped connection.
                    drop(spawned);
                }
                Vec::new()
            }
        }
    }

    /// Publishes messages held back until after the response.
    fn publish_later(&self, later: Vec<Draft>) {
        if let Some(feed) = &self.private {
            for d in later {
                feed.publish_draft(d);
            }
        }
    }
}

struct ConnHandle {
    sock: Option<TcpStream>,
    thread: JoinHandle<()>,
}

/// A running REST server; see the module docs. Dropping it stops it.
pub struct RestServer {
    addr: SocketAddr,
    cert: Arc<TestCert>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    clock_thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestServer").field("addr", &self.addr).finish()
    }
}

impl RestServer {
    /// Builds the exchange from the recording (errors `InvalidData` for an unusable header or a
    /// malformed or crossed snapshot), binds [`RestServerConfig::bind`] (`127.0.0.1:0` by
    /// default) and starts accepting.
    pub fn start(cfg: RestServerConfig) -> io::Result<RestServer> {
        let clock = Clock::new();
        let ex = Exchange::new(
            &cfg.recording,
            ExchangeConfig {
                balance: cfg.balance,
                precision: cfg.account_precision,
                queue: cfg.queue_model,
                fok_kill: cfg.fok_kill,
                max_batch: cfg.max_batch,
                private: cfg.private.is_some(),
            },
            clock.now_ns(),
        )?;
        let cert = match cfg.cert {
            Some(c) => c,
            None => Arc::new(TestCert::generate()?),
        };
        let tls = cert.server_config()?;
        let listener = TcpListener::bind(cfg.bind)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            tls,
            api_key: cfg.api_key,
            max_skew: cfg.max_clock_skew,
            error_shape: cfg.error_shape,
            idle_timeout: cfg.idle_timeout,
            stop: AtomicBool::new(false),
            state: Mutex::new(State {
                ex,
                http: HttpCounters::default(),
                faults: cfg.faults,
                latency: cfg.latency,
                in_flight: BTreeSet::new(),
                next_command: 0,
                create_read_ns: Vec::new(),
            }),
            wake: Condvar::new(),
            clock,
            private: cfg.private,
        });
        let sh = Arc::clone(&shared);
        let clock_thread =
            std::thread::Builder::new().name("strike-sim-rest-clock".into()).spawn(move || clock_loop(&sh))?;
        let sh = Arc::clone(&shared);
        let accept = match std::thread::Builder::new()
            .name("strike-sim-rest-accept".into())
            .spawn(move || accept_loop(listener, sh))
        {
            Ok(a) => a,
            Err(e) => {
                shared.stop.store(true, Ordering::SeqCst);
                shared.wake.notify_all();
                let _ = clock_thread.join();
                return Err(e);
            }
        };
        Ok(RestServer { addr, cert, shared, accept: Some(accept), clock_thread: Some(clock_thread) })
    }

    /// The handle a [`crate::server::WsServer`] replay uses to drive this exchange's book
    /// ([`crate::server::WsServerConfig::exchange`]; [`crate::server::LinkedServers`] sets it).
    pub fn link(&self) -> ExchangeLink {
        ExchangeLink { shared: Arc::clone(&self.shared) }
    }

    /// The bound address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL: `https://localhost:<port>/trade-api/v2`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}{REST_BASE_PATH}", self.addr.port())
    }

    /// The TLS identity; clients trust [`TestCert::cert_der`].
    pub fn cert(&self) -> &Arc<TestCert> {
        &self.cert
    }

    /// When each create request (`POST /portfolio/events/orders`) had been read, in
    /// [`super::stats::wire_ns`] (at most [`super::stats::MAX_WIRE_STAMPS`]): with the WebSocket
    /// server's [`super::ServerStats::data_frame_times`], the wire-to-wire latency of a client in
    /// this process.
    pub fn create_read_times(&self) -> Vec<u64> {
        self.shared.lock().create_read_ns.clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> RestStats {
        let g = self.shared.lock();
        let h = &g.http;
        let ExchangeCounters {
            creates,
            fills,
            filled,
            maker_fills,
            cancels,
            amends,
            decreases,
            rejections,
            rejections_by_code,
            missing_exchange_index,
            missing_exchange_index_by,
            duplicates_refused,
            market_data_applied,
            market_data_refused,
        } = g.ex.counters.clone();
        RestStats {
            requests: h.requests.clone(),
            connections: h.connections.clone(),
            creates,
            fills,
            filled,
            maker_fills,
            cancels,
            amends,
            decreases,
            rejections,
            rejections_by_code,
            missing_exchange_index,
            missing_exchange_index_by,
            duplicates_refused,
            auth_failures: h.auth_failures,
            auth_failure_reasons: h.auth_failure_reasons.clone(),
            rate_limited: h.rate_limited,
            scripted_rejects: h.scripted_rejects,
            never_answered: h.never_answered,
            fault_closes: h.fault_closes,
            bad_requests: h.bad_requests,
            private_published: h.private_published,
            private_dropped: h.private_dropped,
            market_data_applied,
            market_data_refused,
        }
    }

    /// Replaces the fault script (counting restarts now).
    pub fn set_faults(&self, faults: RestFaults) {
        self.shared.lock().faults = faults;
    }

    /// What is left of the fault script.
    pub fn faults(&self) -> RestFaults {
        self.shared.lock().faults.clone()
    }

    /// Every order so far, in creation order, as the §3.5 JSON objects `GET /portfolio/orders`
    /// serves.
    pub fn orders(&self) -> Vec<Value> {
        self.shared.lock().ex.all_orders()
    }

    /// The account balance (exact, micro-dollars).
    pub fn balance(&self) -> Money {
        self.shared.lock().ex.balance()
    }

    /// The position in `ticker` (+ YES, − NO), `None` for an unknown market.
    pub fn position(&self, ticker: &str) -> Option<Qty> {
        self.shared.lock().ex.position(ticker)
    }

    /// Every execution of the account's orders so far, in execution order, with the
    /// `fee_cost` its `fill` message carried and what the balance was charged.
    pub fn fills(&self) -> Vec<ExchangeFill> {
        self.shared.lock().ex.fills().to_vec()
    }

    /// The server's book of `ticker` as a client sees it: the matcher's view of the outside
    /// liquidity (the market data applied so far, less what the account took) plus the
    /// account's resting orders, level by level.
    pub fn book(&self, ticker: &str) -> Option<BookLevels> {
        let mut g = self.shared.lock();
        self.shared.catch_up(&mut g);
        g.ex.book_levels(ticker)
    }

    /// Replaces the outside liquidity of `ticker` with `bids` / `asks` (YES scale), now: a
    /// snapshot for the matcher. The account's resting orders stay; those the new book crosses
    /// fill as makers (published as for [`RestServer::external_trade`]). Errors: unknown market,
    /// off-grid or negative levels, a crossed book.
    pub fn set_book(&self, ticker: &str, bids: &[(Price, Qty)], asks: &[(Price, Qty)]) -> io::Result<()> {
        let mut g = self.shared.lock();
        self.shared.catch_up(&mut g);
        let now = self.shared.clock.now_ns();
        let r = g.ex.set_book(ticker, bids, asks, now);
        self.shared.catch_up(&mut g);
        r
    }

    /// An outside taker trades up to `qty` against `side` of `ticker` (`Bid`: sells into bids
    /// priced ≥ `limit`; `Ask`: buys asks priced ≤ `limit`), now, best level first. Each level
    /// is a trade print for the matcher (its whole displayed size, up to what is left of `qty`),
    /// so outside liquidity queued ahead of the account's resting orders goes first and those
    /// fill as makers by their queue position; each maker fill publishes a `fill` with
    /// `is_taker: false`, then the order's `user_order`, before this returns (or later with
    /// [`PrivateTiming::Delayed`]). Returns the quantity traded.
    pub fn external_trade(&self, ticker: &str, side: BookSide, limit: Price, qty: Qty) -> io::Result<Qty> {
        let mut g = self.shared.lock();
        self.shared.catch_up(&mut g);
        let now = self.shared.clock.now_ns();
        let r = g.ex.external_trade(ticker, side, limit, qty, now);
        self.shared.catch_up(&mut g);
        r
    }

    /// The bus this server publishes the account's private messages into, if configured.
    pub fn private_feed(&self) -> Option<&PrivateFeed> {
        self.shared.private.as_ref()
    }

    /// Stops accepting, closes every connection and joins all threads. Idempotent.
    pub fn stop(&mut self) {
        let Some(accept) = self.accept.take() else { return };
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = accept.join();
        if let Some(t) = self.clock_thread.take() {
            let _ = t.join();
        }
    }
}

/// Longest the clock thread sleeps without market data due.
const CLOCK_IDLE: Duration = Duration::from_millis(50);

/// The exchange's clock thread: applies queued market data when its exchange time comes (the
/// feed delay may put it in the future), so resting orders fill from the replay even when no
/// request arrives.
fn clock_loop(shared: &Shared) {
    let mut g = shared.lock();
    while !shared.stop.load(Ordering::SeqCst) {
        shared.catch_up(&mut g);
        let now = shared.clock.now_ns();
        let wait = match g.ex.next_pending_ns() {
            // Due but held back by a command in flight: that command's thread moves it.
            Some(t) if t <= now => CLOCK_IDLE,
            Some(t) => Duration::from_nanos(t - now).min(CLOCK_IDLE),
            None => CLOCK_IDLE,
        };
        g = shared.wait(g, wait);
    }
}

/// A [`RestServer`]'s exchange as seen by the WebSocket replay that drives it
/// ([`crate::server::WsServerConfig::exchange`], set by [`crate::server::LinkedServers`]):
/// every `orderbook_snapshot`, `orderbook_delta` and (non-block) `trade` the replay releases is
/// handed to the exchange's matcher when released; the feed delay of
/// [`RestServerConfig::latency`] is then how long its frame takes to reach the client. Cheap to
/// clone; keeps the exchange alive, not its listener.
#[derive(Clone)]
pub struct ExchangeLink {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ExchangeLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeLink").finish_non_exhaustive()
    }
}

impl ExchangeLink {
    /// One market-data input of market `market` (the recording header's index), published by
    /// the exchange now: queued for now and applied at once unless a command that arrived
    /// earlier is still in flight (maker fills published). Returns the feed delay drawn for it,
    /// ns: how long its frame takes to reach the client.
    pub(crate) fn market_data(&self, market: usize, md: MarketData) -> u64 {
        let mut g = self.shared.lock();
        let now = self.shared.clock.now_ns();
        let feed = g.latency.feed_ns();
        g.ex.enqueue_market_data(now, market, md);
        self.shared.catch_up(&mut g);
        drop(g);
        self.shared.wake.notify_all();
        feed
    }
}

impl Drop for RestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns: Vec<ConnHandle> = Vec::new();
    let mut n = 0u64;
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let sock = match accepted {
            Ok((s, _)) => s,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        let clone = sock.try_clone().ok();
        let sh = Arc::clone(&shared);
        n += 1;
        let spawned =
            std::thread::Builder::new().name(format!("strike-sim-rest-conn-{n}")).spawn(move || serve(&sh, sock));
        let (done, live): (Vec<_>, Vec<_>) = conns.drain(..).partition(|c| c.thread.is_finished());
        conns = live;
        for c in done {
            let _ = c.thread.join();
        }
        if let Ok(thread) = spawned {
            conns.push(ConnHandle { sock: clone, thread });
        }
    }
    drop(listener);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline && conns.iter().any(|c| !c.thread.is_finished()) {
        std::thread::sleep(Duration::from_millis(2));
    }
    for c in conns {
        if !c.thread.is_finished() {
            if let Some(s) = &c.sock {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let _ = c.thread.join();
    }
}

type Tls = StreamOwned<ServerConnection, TcpStream>;

/// One request, read whole.
struct Request {
    method: String,
    /// The request target as sent (path and query).
    target: String,
    body: Vec<u8>,
    /// The client asked to close after this request.
    close: bool,
    auth: Result<(), AuthError>,
    /// [`super::stats::wire_ns`] once the whole request had been read and parsed, before its
    /// signature was checked.
    read_wire_ns: u64,
}

enum Read1 {
    Request(Request),
    /// The client closed, went idle, or the server stops.
    End,
    /// A malformed request: answer `(status, message)` and close.
    Bad(u16, String),
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

fn header<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Option<&'a str> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).and_then(|h| std::str::from_utf8(h.value).ok())
}

/// Reads the next request from `tls`, `buf` holding bytes already received.
fn read_request(shared: &Shared, tls: &mut Tls, buf: &mut Vec<u8>) -> Read1 {
    let mut last_progress = Instant::now();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if !buf.is_empty() {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut hs);
            match req.parse(buf) {
                Ok(httparse::Status::Complete(head)) => {
                    let headers: &[httparse::Header<'_>] = req.headers;
                    if header(headers, "transfer-encoding").is_some() {
                        return Read1::Bad(411, "Transfer-Encoding is not supported: send Content-Length".into());
                    }
                    let len = match header(headers, "content-length").map(str::trim) {
                        None => 0,
                        Some(v) => match v.parse::<usize>() {
                            Ok(n) => n,
                            Err(_) => return Read1::Bad(400, format!("bad Content-Length {v:?}")),
                        },
                    };
                    if len > MAX_BODY {
                        return Read1::Bad(413, format!("body of {len} bytes exceeds {MAX_BODY}"));
                    }
                    if buf.len() >= head + len {
                        let read_wire_ns = super::stats::wire_ns();
                        let method = req.method.unwrap_or("").to_string();
                        let target = req.path.unwrap_or("").to_string();
                        let conn_hdr = header(headers, "connection").unwrap_or("").to_ascii_lowercase();
                        let close = conn_hdr.split(',').any(|t| t.trim() == "close")
                            || (req.version == Some(0) && !conn_hdr.split(',').any(|t| t.trim() == "keep-alive"));
                        let auth = verify_request(
                            &shared.api_key,
                            &AuthHeaders::from_httparse(headers),
                            &method,
                            &target,
                            unix_now_ms(),
                            shared.max_skew,
                        );
                        let body = buf[head..head + len].to_vec();
                        buf.drain(..head + len);
                        return Read1::Request(Request { method, target, body, close, auth, read_wire_ns });
                    }
                }
                Ok(httparse::Status::Partial) => {
                    if buf.len() > MAX_HEAD {
                        return Read1::Bad(431, format!("request head exceeds {MAX_HEAD} bytes"));
                    }
                }
                Err(e) => return Read1::Bad(400, format!("malformed HTTP request: {e}")),
            }
        }
        if shared.stop.load(Ordering::SeqCst) {
            return Read1::End;
        }
        match tls.read(&mut chunk) {
            Ok(0) => return Read1::End,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                last_progress = Instant::now();
            }
            Err(e) if is_timeout(&e) => {
                if last_progress.elapsed() >= shared.idle_timeout {
                    return Read1::End;
                }
            }
            Err(_) => return Read1::End,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_response(tls: &mut Tls, reply: &Reply, close: bool) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    if let Some(b) = &reply.body {
        out.push_str("Content-Type: application/json\r\n");
        out.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    if let Some(b) = &reply.body {
        out.push_str(b);
    }
    tls.write_all(out.as_bytes())?;
    tls.flush()
}

/// Ends the connection cleanly: TLS `close_notify`, then TCP shutdown.
fn finish_tls(tls: &mut Tls) {
    let _ = tls.sock.set_write_timeout(Some(Duration::from_millis(200)));
    tls.conn.send_close_notify();
    while tls.conn.wants_write() {
        if !matches!(tls.conn.write_tls(&mut tls.sock), Ok(n) if n > 0) {
            break;
        }
    }
    let _ = tls.sock.shutdown(Shutdown::Both);
}

/// Reads and discards until the client closes or the server stops (the never-answer fault).
fn hold(shared: &Shared, tls: &mut Tls) {
    let mut chunk = [0u8; 4096];
    while !shared.stop.load(Ordering::SeqCst) {
        match tls.read(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return,
        }
    }
}

fn serve(shared: &Shared, sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(POLL));
    let _ = sock.set_write_timeout(Some(WRITE_TIMEOUT));
    let conn = match ServerConnection::new(Arc::clone(&shared.tls)) {
        Ok(c) => c,
        Err(_) => return,
    };
    let mut tls = StreamOwned::new(conn, sock);
    let mut buf = Vec::new();
    let mut index: Option<usize> = None;
    let mut answered = 0u64;
    loop {
        let req = match read_request(shared, &mut tls, &mut buf) {
            Read1::Request(r) => r,
            Read1::End => break,
            Read1::Bad(status, msg) => {
                shared.lock().http.bad_requests += 1;
                let e = ApiError::new(status, "bad_request", msg);
                let _ = write_response(&mut tls, &Reply::error(&e, shared.error_shape), true);
                break;
            }
        };
        let i = *index.get_or_insert_with(|| {
            let mut g = shared.lock();
            g.http.connections.push(0);
            g.http.connections.len() - 1
        });
        shared.lock().http.connections[i] += 1;
        let Handled { reply, swallow, delay, later } = handle(shared, &req);
        if swallow {
            // Applied but never answered: the private messages still go out.
            shared.publish_later(later);
            hold(shared, &mut tls);
            break;
        }
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let written = write_response(&mut tls, &reply, req.close);
        shared.publish_later(later);
        if written.is_err() {
            return;
        }
        answered += 1;
        if req.close {
            break;
        }
        let close_after = shared.lock().faults.close_after_requests;
        if close_after.is_some_and(|n| answered >= n) {
            shared.lock().http.fault_closes += 1;
            let _ = tls.sock.shutdown(Shutdown::Both);
            return;
        }
    }
    finish_tls(&mut tls);
}

/// The routes, by path segments after `/trade-api/v2`.
enum Route<'a> {
    Create,
    BatchCreate,
    Cancel(&'a str),
    BatchCancel,
    CancelAll,
    Amend(&'a str),
    Decrease(&'a str),
    Orders,
    Order(&'a str),
    Positions,
    Balance,
}

/// The template of paths no route knows.
const UNKNOWN: &str = "(unknown)";

/// `(route, template)` or the error status (404 unknown path, 405 wrong method) and template.
fn route<'a>(method: &str, path: &'a str) -> Result<(Route<'a>, &'static str), (u16, &'static str)> {
    let rest = match path.strip_prefix(REST_BASE_PATH) {
        Some(r) if r.starts_with('/') => r,
        _ => return Err((404, UNKNOWN)),
    };
    let segs: Vec<&'a str> = rest.trim_end_matches('/').split('/').skip(1).collect();
    let (template, found): (&'static str, Option<Route<'a>>) = match segs.as_slice() {
        ["portfolio", "events", "orders"] => (
            "/portfolio/events/orders",
            match method {
                "POST" => Some(Route::Create),
                "DELETE" => Some(Route::CancelAll),
                _ => None,
            },
        ),
        ["portfolio", "events", "orders", "batched"] => (
            "/portfolio/events/orders/batched",
            match method {
                "POST" => Some(Route::BatchCreate),
                "DELETE" => Some(Route::BatchCancel),
                _ => None,
            },
        ),
        ["portfolio", "events", "orders", id] => {
            ("/portfolio/events/orders/{order_id}", (method == "DELETE").then_some(Route::Cancel(id)))
        }
        ["portfolio", "events", "orders", id, "amend"] => {
            ("/portfolio/events/orders/{order_id}/amend", (method == "POST").then_some(Route::Amend(id)))
        }
        ["portfolio", "events", "orders", id, "decrease"] => {
            ("/portfolio/events/orders/{order_id}/decrease", (method == "POST").then_some(Route::Decrease(id)))
        }
        ["portfolio", "orders"] => ("/portfolio/orders", (method == "GET").then_some(Route::Orders)),
        ["portfolio", "orders", id] => ("/portfolio/orders/{order_id}", (method == "GET").then_some(Route::Order(id))),
        ["portfolio", "positions"] => ("/portfolio/positions", (method == "GET").then_some(Route::Positions)),
        ["portfolio", "balance"] => ("/portfolio/balance", (method == "GET").then_some(Route::Balance)),
        _ => return Err((404, UNKNOWN)),
    };
    found.map(|r| (r, template)).ok_or((405, template))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(400, "invalid_order", "a JSON request body is required"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, "invalid_order", format!("request body is not valid JSON: {e}")))
}

/// What [`handle`] decided for one request.
struct Handled {
    reply: Reply,
    /// Never answer ([`RestFaults::never_answer_create`]).
    swallow: bool,
    /// Sleep before writing the reply ([`RestFaults::response_delay`]).
    delay: Option<Duration>,
    /// Private messages to publish once the reply is written ([`PrivateTiming::AfterResponse`]).
    later: Vec<Draft>,
}

impl Handled {
    fn now(reply: Reply, delay: Option<Duration>) -> Handled {
        Handled { reply, swallow: false, delay, later: Vec::new() }
    }
}

/// Answers one request.
fn handle(shared: &Shared, req: &Request) -> Handled {
    let shape = shared.error_shape;
    let (path, query) = req.target.split_once('?').unwrap_or((req.target.as_str(), ""));
    let routed = route(&req.method, path);
    let template = match &routed {
        Ok((_, t)) | Err((_, t)) => *t,
    };
    let mut g = shared.lock();
    let st = &mut *g;
    if matches!(routed, Ok((Route::Create, _))) && st.create_read_ns.len() < super::stats::MAX_WIRE_STAMPS {
        st.create_read_ns.push(req.read_wire_ns);
    }
    *st.http.requests.entry(format!("{} {template}", req.method)).or_default() += 1;
    let delay = st.faults.response_delay;
    if let Err(e) = &req.auth {
        st.http.auth_failures += 1;
        st.http.auth_failure_reasons.push(format!("{}: {e}", e.code()));
        let body = match shape {
            ErrorShape::Flat => e.error_body(),
            ErrorShape::Nested => shape.body(e.code(), &e.to_string(), "authentication failed"),
        };
        return Handled::now(Reply { status: 401, body: Some(body) }, delay);
    }
    if st.faults.rate_limit_next > 0 {
        let rel = path.strip_prefix(REST_BASE_PATH).unwrap_or(path);
        if st.faults.rate_limit_prefix.as_deref().is_none_or(|p| rel.starts_with(p)) {
            st.faults.rate_limit_next -= 1;
            st.http.rate_limited += 1;
            let reply = Reply { status: 429, body: Some(TOO_MANY_REQUESTS_BODY.into()) };
            return Handled::now(reply, delay);
        }
    }
    let (route, _) = match routed {
        Ok(r) => r,
        Err((status, _)) => {
            let e = if status == 405 {
                ApiError::new(405, "method_not_allowed", format!("{} is not allowed on {path}", req.method))
            } else {
                ApiError::new(404, "not_found", format!("no endpoint at {path}"))
            };
            st.ex.count_error(&e);
            return Handled::now(Reply::error(&e, shape), delay);
        }
    };
    let q = parse_query(query);
    let mut swallow = false;
    if matches!(route, Route::Create) {
        if !st.faults.reject_creates.is_empty() {
            let r = st.faults.reject_creates.remove(0);
            st.http.scripted_rejects += 1;
            let e = ApiError { status: r.status, code: r.code, message: r.message, details: r.details };
            return Handled::now(Reply::error(&e, r.shape), delay);
        }
        if let Some(n) = st.faults.never_answer_create {
            if n <= 1 {
                st.faults.never_answer_create = None;
                st.http.never_answered += 1;
                swallow = true;
            } else {
                st.faults.never_answer_create = Some(n - 1);
            }
        }
    }
    // Order commands meet the matcher at their arrival (read time + entry delay), in arrival
    // order; reads see the exchange as it is now.
    let is_command = matches!(
        route,
        Route::Create
            | Route::BatchCreate
            | Route::Cancel(_)
            | Route::BatchCancel
            | Route::CancelAll
            | Route::Amend(_)
            | Route::Decrease(_)
    );
    let read_ns = shared.clock.now_ns();
    let (at, flight, respond_after) = if is_command {
        let entry = st.latency.entry_ns();
        let response = st.latency.response_ns();
        let at = read_ns.saturating_add(entry);
        let flight = (at, st.next_command);
        st.next_command += 1;
        st.in_flight.insert(flight);
        (at, Some(flight), Duration::from_nanos(response))
    } else {
        (read_ns, None, Duration::ZERO)
    };
    if let Some(flight) = flight {
        // Until the arrival time has come and every command that arrived earlier is applied.
        loop {
            let now = shared.clock.now_ns();
            if now >= at && g.in_flight.first() == Some(&flight) {
                break;
            }
            let wait = if now < at { Duration::from_nanos(at - now) } else { Duration::from_millis(1) };
            g = shared.wait(g, wait.min(POLL));
        }
    }
    let st = &mut *g;
    // The market data that reached the exchange before this request did (its fills published
    // as market-data fills), then the request itself at its arrival time.
    let h = st.horizon(at);
    st.ex.advance(h);
    {
        let timing = match st.faults.private_timing {
            PrivateTiming::Delayed(d) => PrivateTiming::Delayed(d),
            _ => PrivateTiming::BeforeResponse,
        };
        let later = shared.route_private(st, timing);
        shared.publish_later(later);
    }
    let ex = &mut st.ex;
    let result: Result<Reply, ApiError> = match route {
        Route::Create => json_body(&req.body).and_then(|b| ex.create(&b, at)),
        Route::BatchCreate => json_body(&req.body).and_then(|b| ex.batch_create(&b, at)),
        Route::Cancel(id) => {
            let xi = match q.get("exchange_index").map(String::as_str) {
                None | Some("") => Ok(None),
                Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
                    ApiError::new(400, "invalid_order", format!("`exchange_index` {s:?} is not an integer"))
                }),
            };
            let ticker = q.get("market_ticker").map(String::as_str).filter(|t| !t.is_empty());
            xi.and_then(|xi| ex.cancel(id, ticker, xi, at))
        }
        Route::BatchCancel => json_body(&req.body).and_then(|b| ex.batch_cancel(&b, at)),
        Route::CancelAll => Ok(ex.cancel_all(at)),
        Route::Amend(id) => json_body(&req.body).and_then(|b| ex.amend(id, &b, at)),
        Route::Decrease(id) => json_body(&req.body).and_then(|b| ex.decrease(id, &b, at)),
        Route::Orders => ex.get_orders(&q, at),
        Route::Order(id) => ex.get_order(id, at),
        Route::Positions => ex.get_positions(&q, at),
        Route::Balance => Ok(ex.get_balance(at)),
    };
    let reply = match result {
        Ok(r) => r,
        Err(e) => {
            ex.count_error(&e);
            Reply::error(&e, shape)
        }
    };
    let timing = st.faults.private_timing;
    let later = shared.route_private(st, timing);
    if let Some(flight) = flight {
        st.in_flight.remove(&flight);
        shared.wake.notify_all();
    }
    let delay = match (delay, respond_after.is_zero()) {
        (d, true) => d,
        (None, false) => Some(respond_after),
        (Some(d), false) => Some(d + respond_after),
    };
    Handled { reply, swallow, delay, later }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_templates() {
        let r = |m: &str, p: &str| match route(m, p) {
            Ok((_, t)) => (200, t),
            Err(e) => e,
        };
        assert_eq!(r("POST", "/trade-api/v2/portfolio/events/orders"), (200, "/portfolio/events/orders"));
        assert_eq!(r("DELETE", "/trade-api/v2/portfolio/events/orders"), (200, "/portfolio/events/orders"));
        assert_eq!(r("GET", "/trade-api/v2/portfolio/events/orders"), (405, "/portfolio/events/orders"));
        assert_eq!(
            r("DELETE", "/trade-api/v2/portfolio/events/orders/batched"),
            (200, "/portfolio/events/orders/batched")
        );
        assert_eq!(
            r("DELETE", "/trade-api/v2/portfolio/events/orders/abc"),
            (200, "/portfolio/events/orders/{order_id}")
        );
        assert_eq!(
            r("POST", "/trade-api/v2/portfolio/events/orders/abc/amend"),
            (200, "/portfolio/events/orders/{order_id}/amend")
        );
        assert_eq!(r("GET", "/trade-api/v2/portfolio/orders/abc"), (200, "/portfolio/orders/{order_id}"));
        assert_eq!(r("GET", "/trade-api/v2/portfolio/balance/"), (200, "/portfolio/balance"));
        assert_eq!(r("GET", "/trade-api/v2/markets"), (404, "(unknown)"));
        assert_eq!(r("GET", "/other/portfolio/balance"), (404, "(unknown)"));
        assert_eq!(r("GET", "/trade-api/v2x/portfolio/balance"), (404, "(unknown)"));
    }

    #[test]
    fn query_strings_are_decoded() {
        let q = parse_query("ticker=KX%2DA+B&limit=5&flag&cursor=");
        assert_eq!(q["ticker"], "KX-A B");
        assert_eq!(q["limit"], "5");
        assert_eq!(q["flag"], "");
        assert_eq!(q["cursor"], "");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn fault_builders() {
        let f = RestFaults::none()
            .rate_limit_path(2, "/trade-api/v2/portfolio/events/orders")
            .never_answer_create(0)
            .reject_next_create(ScriptedReject::new(503, "EXCHANGE_UNAVAILABLE", "try later").nested())
            .close_after(3);
        assert_eq!(f.rate_limit_prefix.as_deref(), Some("/portfolio/events/orders"));
        assert_eq!(f.never_answer_create, Some(1));
        assert_eq!(f.reject_creates[0].shape, ErrorShape::Nested);
        assert_eq!(f.close_after_requests, Some(3));
        assert_eq!(RestFaults::none(), RestFaults::default());
    }
}
