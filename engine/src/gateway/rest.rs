//! The live order gateway: Kalshi REST V2 over a small pool of keep-alive TLS connections,
//! driven by a non-blocking [`RestGateway::poll`].
//!
//! ## What it does
//! - **Connections.** `pool_size` (default 2) HTTP/1.1 keep-alive connections, each rustls
//!   over a non-blocking `mio` socket (the feed's [`TlsStream`]), connected and handshaken ahead
//!   of use. One request in flight per connection (no pipelining). A connection the server
//!   closed is noticed within `idle_check` (an idle connection is probed with one non-blocking
//!   read at that interval, not on every poll: a read costs ~3.5 µs on the dev VM) and
//!   re-established at once; one that failed is retried after an exponential backoff.
//! - **Requests.** Written into the connection's pre-allocated buffer: the create body from
//!   [`OrderEncoder`], the head with the pre-signed `KALSHI-ACCESS-*` lines of the
//!   [`FixedPath`] from the background signer ([`HeaderReader::latest`],
//!   [`write_auth_headers`]), `Host`, `Content-Type`, `Content-Length`. Paths with an order id
//!   (cancel, amend, decrease) and the reconciliation read are signed when sent ([`sign_now`]).
//!   `exchange_index` is on every write. Each send records the signed header's age
//!   ([`header_age_ns`]) in the order and in a [`GatewayEvent::Sent`].
//! - **Rate limits.** A [`RateLimiter`] for the configured [`Tier`] bills every request
//!   before it is sent ([`cost`]: create 10, cancel 2, batches per item on the unscoped Write
//!   bucket, reads on the Read bucket). A request that does not fit waits in the queue, FIFO per
//!   bucket, until the bucket refills; a batch larger than the bucket's capacity is refused.
//! - **Responses.** Parsed with `httparse` ([`super::http`]); bodies with serde on borrowed
//!   fields. Errors in every Kalshi shape become one [`ApiError`]. A 429 drains the bucket and
//!   retries the same request after an exponential backoff (same `client_order_id`, so never a
//!   second order). 5xx: creates are reconciled (the outcome is unknown), other requests
//!   retried.
//! - **Order state** ([`OrderTable`]): keyed by `client_order_id` and `order_id`, fed by the
//!   REST responses and by the WebSocket's `user_order` and `fill` messages
//!   ([`RestGateway::on_user_order`], [`RestGateway::on_fill`]) in any order.
//! - **Reconciliation.** A create with no response within `request_timeout` (default 5 s), or
//!   whose connection died under it, or that got a 5xx or `order_already_exists`, has an unknown
//!   outcome. Its connection is closed (a late answer must not be read as the next request's),
//!   and the gateway reads `GET /portfolio/orders?ticker=…&min_ts=…` (following `cursor`),
//!   matching by `client_order_id`: found, its state is taken from the listing; absent (and not
//!   named by a `user_order`/`fill` meanwhile), the same create is sent again. Never a blind
//!   duplicate. Cancels, amends, `reduce_to` decreases and reads are idempotent and simply
//!   retried; a `reduce_by` decrease with an unknown outcome is reported failed, not repeated.
//!
//! ## Driving it
//! ```text
//! let mut gw = RestGateway::new(cfg, &metas, signer.reader(), key)?;
//! loop {
//!     let now = unix_now_ns();
//!     while let Ok(req) = orders.pop() { gw.submit(&req, now)?; }   // writes at once if it can
//!     for ev in gw.poll(now) { if let Some(e) = ev.exec() { exec.push(e) } }
//! }
//! ```
//! All times are unix nanoseconds (the reconciliation's `min_ts` and the header age need the
//! wall clock; the token buckets and timeouts use the same value). [`RestGateway::poll`] never
//! blocks: it makes at most one read per busy connection and one per idle connection every
//! `idle_check`, writes what the sockets take, and sends what the buckets allow.
//!
//! ## Allocation
//! On the create path (submit → encode → write) Strike's code does not allocate: the order
//! table, the queue, the event buffer and the write buffers are sized at construction. rustls
//! allocates the TLS record it encrypts the request into. Batches, cancels by id, amends,
//! decreases, errors and reconciliation allocate (small `Vec`s, serde on error bodies).

use super::encode::{NewOrderFields, OrderEncoder};
use super::http::{parse_response, put_head, put_query_value, put_u64, ApiError, InlineStr};
use super::orders::{
    GatewayEvent, NewOrder, Num, OpKind, OrderKey, OrderRecord, OrderTable, Phase, Snapshot, TableError,
    UserOrderUpdate, VenueStatus,
};
use super::ratelimit::{cost, Bucket, RateLimiter, Tier};
use crate::auth::{header_age_ns, sign_now, write_auth_headers, FixedPath, HeaderReader, SignedHeader, SigningKey};
use crate::feed::ws::TlsStream;
use crate::pipeline::events::{ExecEvent, OrderRequest};
use crate::telemetry::{Clock, Hop, Latency};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use strike_sdk::book::BookSide;
use strike_sdk::fees::AccountPrecision;
use strike_sdk::market::{MarketId, MarketMeta, Ticker};
use strike_sdk::num::{Price, Qty};
use strike_sdk::order::{OrderRef, OrderStatus, OrderUpdate, RejectReason};

pub use super::orders::FillReport;

/// The path every REST V2 endpoint (and every signed path) starts with.
pub const REST_BASE_PATH: &str = "/trade-api/v2";

const ORDERS_PATH: &str = "/trade-api/v2/portfolio/events/orders";
const LIST_PATH: &str = "/trade-api/v2/portfolio/orders";
const POSITIONS_PATH: &str = "/trade-api/v2/portfolio/positions";

/// Positions per page (`GET /portfolio/positions` allows 1–1000).
const POSITIONS_LIMIT: u64 = 1000;

/// Orders per reconciliation page (`GET /portfolio/orders` allows 1–200).
const LIST_LIMIT: u64 = 200;

/// Capacity of the auth header lines (key id + timestamp + an RSA signature), bytes.
const AUTH_CAP: usize = 768;

/// How the gateway connects and behaves.
#[derive(Clone)]
pub struct RestConfig {
    /// `https://host[:port]/trade-api/v2` (prod: `https://external-api.kalshi.com/trade-api/v2`).
    pub base_url: String,
    /// Connect here instead of resolving the URL's host (loopback tests); the host stays the TLS
    /// server name and the `Host` header.
    pub connect_addr: Option<SocketAddr>,
    /// TLS configuration (trust roots): `WsFeedConfig::webpki_tls()` in production,
    /// `WsFeedConfig::pinned_tls(cert)` for a loopback server.
    pub tls: Arc<rustls::ClientConfig>,
    /// The API key id (`KALSHI-ACCESS-KEY`).
    pub key_id: String,
    /// Keep-alive connections (default 2); one request in flight on each.
    pub pool_size: usize,
    /// A request with no complete response after this long has an unknown outcome (default
    /// 5 s): its connection is closed and it is reconciled or retried.
    pub request_timeout: Duration,
    /// Longest TCP connect + TLS handshake (default 5 s).
    pub connect_timeout: Duration,
    /// The account's rate-limit tier (default [`Tier::Basic`]).
    pub tier: Tier,
    /// Highest shard with its own Write bucket (default 3; `kalshi-protocol.md` §3.9).
    pub max_shard: u8,
    /// First delay of the 429 / 5xx / reconnect backoff (default 50 ms); doubles per attempt.
    pub backoff_min: Duration,
    /// Longest backoff delay (default 2 s).
    pub backoff_max: Duration,
    /// Retries of one request after 429s, 5xx or lost connections before it is reported
    /// failed (default 8).
    pub max_retries: u32,
    /// How often an idle connection is probed for a close by the server (default 1 ms).
    pub idle_check: Duration,
    /// Orders tracked at once (default 65,536), allocated up front.
    pub max_orders: usize,
    /// How long a finished order stays findable for late `fill`s (default 60 s).
    pub retain_terminal: Duration,
    /// Largest batch create or cancel sent (default 20); longer batches are split.
    pub max_batch: usize,
    /// Largest response accepted, bytes (default 4 MiB).
    pub max_response: usize,
    /// Requests queued before the queue grows (default 4,096).
    pub queue_capacity: usize,
    /// The session id in every `client_order_id` ([`super::encode::new_session_id`], drawn
    /// by [`RestConfig::new`]): keeps this run's ids apart from an earlier run's on the key.
    pub session_id: u32,
    /// The account's balance precision (default [`AccountPrecision::Cent`], non-direct
    /// members): fills are charged through each order's fee accumulator at this precision with
    /// the markets' fee schedules (`orders` module docs, *Fees*).
    pub account_precision: AccountPrecision,
}

impl fmt::Debug for RestConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestConfig")
            .field("base_url", &self.base_url)
            .field("connect_addr", &self.connect_addr)
            .field("pool_size", &self.pool_size)
            .field("request_timeout", &self.request_timeout)
            .field("tier", &self.tier)
            .finish_non_exhaustive()
    }
}

impl RestConfig {
    /// `base_url` with `tls` and `key_id`, every other setting at its default.
    pub fn new(base_url: &str, tls: Arc<rustls::ClientConfig>, key_id: &str) -> RestConfig {
        RestConfig {
            base_url: base_url.to_string(),
            connect_addr: None,
            tls,
            key_id: key_id.to_string(),
            pool_size: 2,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            tier: Tier::Basic,
            max_shard: 3,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            max_retries: 8,
            idle_check: Duration::from_millis(1),
            max_orders: 1 << 16,
            retain_terminal: Duration::from_secs(60),
            max_batch: 20,
            max_response: 4 << 20,
            queue_capacity: 4096,
            session_id: super::encode::new_session_id(),
            account_precision: AccountPrecision::Cent,
        }
    }
}

/// How a decrease is stated (`kalshi-protocol.md` §3.6: exactly one of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decrease {
    /// `reduce_by`: take this much off the resting size (not repeated when its outcome is
    /// unknown).
    By(Qty),
    /// `reduce_to`: leave this much resting (0 cancels).
    To(Qty),
}

/// Why a request was not accepted by [`RestGateway`]. Each is also reported as an event (a
/// `Rejected` update for creates, [`GatewayEvent::Failed`] otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The market id is not in the gateway's universe.
    #[error("unknown market id {0}")]
    UnknownMarket(u32),
    /// No order with this strategy slot and order ref is tracked (never sent, or retired).
    #[error("no order {order_ref:?} of strategy {strategy}")]
    UnknownOrder {
        /// Strategy slot.
        strategy: u16,
        /// The order.
        order_ref: OrderRef,
    },
    /// The order table refused it.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A batch costs more than its bucket holds: it could never be sent whole.
    #[error("a batch of {orders} costs {cost} tokens, more than the bucket's {capacity}")]
    BatchTooLarge {
        /// Orders in the batch.
        orders: usize,
        /// Its cost, tokens.
        cost: u32,
        /// The bucket's capacity, tokens.
        capacity: u32,
    },
}

/// What the gateway counted.
#[derive(Clone, Debug, Default)]
pub struct RestStats {
    /// Requests written (every attempt).
    pub requests: u64,
    /// Complete responses read.
    pub responses: u64,
    /// Create requests written, single and batched (every attempt, per order).
    pub creates_sent: u64,
    /// Creates sent again after reconciliation found them absent.
    pub resends: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// Requests retried (429, 5xx, lost connection on an idempotent request).
    pub retries: u64,
    /// Requests that waited in the queue for tokens at least once.
    pub token_waits: u64,
    /// Requests timed out (no complete response within `request_timeout`).
    pub timeouts: u64,
    /// Connections lost with a request in flight (not counting timeouts).
    pub lost_in_flight: u64,
    /// Connection attempts.
    pub connects: u64,
    /// Connections that completed the TLS handshake.
    pub connected: u64,
    /// Idle connections found closed by the server (re-established).
    pub server_closes: u64,
    /// Connection failures (refused, reset, TLS error, handshake timeout).
    pub connection_failures: u64,
    /// Orders that went through reconciliation.
    pub reconciliations: u64,
    /// Reconciliation reads written.
    pub reconciliation_reads: u64,
    /// Cancel requests for an order whose cancel was already queued or in flight (not sent).
    pub cancels_coalesced: u64,
    /// Resyncs started ([`RestGateway::resync`]).
    pub resyncs: u64,
    /// Acknowledged orders a resync listing did not show (their state kept as last reported).
    pub resync_missing: u64,
    /// `GET /portfolio/positions` pages requested.
    pub position_reads: u64,
    /// Requests the venue refused (4xx other than 429), per request.
    pub rejects: u64,
    /// Age of the last signed header written, ns.
    pub header_age_last_ns: u64,
    /// Oldest signed header written, ns.
    pub header_age_max_ns: u64,
    /// The last connection error, for the report (never key material).
    pub last_error: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Requests

#[derive(Debug)]
enum Op {
    Create(OrderKey),
    BatchCreate(Vec<OrderKey>),
    Cancel(OrderKey),
    BatchCancel(Vec<OrderKey>),
    /// The orders resting when the request was written (filled in at encode time).
    CancelAll(Vec<OrderKey>),
    Amend {
        key: OrderKey,
        yes_price: Price,
        total: Qty,
    },
    Decrease {
        key: OrderKey,
        by: Decrease,
    },
    GetOrders {
        market: MarketId,
        min_ts_s: u64,
        cursor: Option<String>,
        orders: Vec<OrderKey>,
        /// An order absent from the listing is sent again (a create whose outcome is unknown);
        /// false for a resync of acknowledged orders.
        resend_missing: bool,
    },
    /// `GET /portfolio/positions` (a resync), following `cursor`.
    GetPositions {
        cursor: Option<String>,
    },
}

impl Op {
    fn kind(&self) -> OpKind {
        match self {
            Op::Create(_) => OpKind::Create,
            Op::BatchCreate(_) => OpKind::BatchCreate,
            Op::Cancel(_) => OpKind::Cancel,
            Op::BatchCancel(_) => OpKind::BatchCancel,
            Op::CancelAll(_) => OpKind::CancelAll,
            Op::Amend { .. } => OpKind::Amend,
            Op::Decrease { .. } => OpKind::Decrease,
            Op::GetOrders { .. } => OpKind::GetOrders,
            Op::GetPositions { .. } => OpKind::GetPositions,
        }
    }

    /// The order the request is about (the first of a batch).
    fn first_key(&self) -> Option<OrderKey> {
        match self {
            Op::Create(k) | Op::Cancel(k) | Op::Amend { key: k, .. } | Op::Decrease { key: k, .. } => Some(*k),
            Op::BatchCreate(ks) | Op::BatchCancel(ks) | Op::GetOrders { orders: ks, .. } => ks.first().copied(),
            Op::CancelAll(_) | Op::GetPositions { .. } => None,
        }
    }

    /// A read (reconciliation or resync).
    fn is_read(&self) -> bool {
        matches!(self, Op::GetOrders { .. } | Op::GetPositions { .. })
    }
}

#[derive(Debug)]
struct Req {
    op: Op,
    /// Retries so far (429, 5xx, lost connection).
    retries: u32,
    /// Not before this time, unix ns (backoff).
    not_before_ns: u64,
    /// Counted in `token_waits` already.
    waited: bool,
    /// Raw TSC stamp of the frame that triggered a create (0: none); tick-to-trade ends when
    /// its bytes are written.
    t0: u64,
}

impl Req {
    fn new(op: Op) -> Req {
        Req { op, retries: 0, not_before_ns: 0, waited: false, t0: 0 }
    }
}

/// Why a request in flight got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lost {
    Timeout,
    Connection,
}

#[derive(Clone, Copy, Debug)]
struct MarketInfo {
    ticker: Ticker,
    exchange_index: u8,
}

// ---------------------------------------------------------------------------------------------
// Response bodies (borrowed where the JSON allows).

#[derive(serde::Deserialize)]
struct CreateResp<'a> {
    #[serde(borrow, default)]
    order_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    client_order_id: Option<Cow<'a, str>>,
    #[serde(default, alias = "fill_count_fp")]
    fill_count: Option<Num>,
    #[serde(default, alias = "remaining_count_fp")]
    remaining_count: Option<Num>,
    #[serde(default)]
    average_fill_price: Option<Num>,
    #[serde(default)]
    average_fee_paid: Option<Num>,
    #[serde(default)]
    ts_ms: Option<i64>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

impl CreateResp<'_> {
    fn snapshot(&self) -> Option<Snapshot> {
        Some(Snapshot {
            status: None,
            filled: self.fill_count.as_ref().map_or(Some(Qty::ZERO), Num::qty)?,
            remaining: Some(self.remaining_count.as_ref()?.qty()?),
            ts_ms: self.ts_ms.unwrap_or(0),
            avg_price: self.average_fill_price.as_ref().and_then(Num::price),
            avg_fee: self.average_fee_paid.as_ref().and_then(Num::money),
        })
    }

    fn item_error(&self) -> Option<ApiError> {
        match self.error.as_ref()? {
            serde_json::Value::Null => None,
            v => Some(ApiError::from_body(400, v.to_string().as_bytes())),
        }
    }
}

#[derive(serde::Deserialize)]
struct BatchResp<'a> {
    #[serde(borrow)]
    orders: Vec<CreateResp<'a>>,
}

#[derive(serde::Deserialize)]
struct OrderObj<'a> {
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    #[serde(borrow, default)]
    client_order_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    fill_count_fp: Option<Num>,
    #[serde(default)]
    remaining_count_fp: Option<Num>,
}

#[derive(serde::Deserialize)]
struct OrdersPage<'a> {
    #[serde(borrow, default)]
    orders: Vec<OrderObj<'a>>,
    #[serde(borrow, default)]
    cursor: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct PositionsPage<'a> {
    #[serde(borrow, default)]
    market_positions: Vec<PositionObj<'a>>,
    #[serde(borrow, default)]
    cursor: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct PositionObj<'a> {
    #[serde(borrow)]
    ticker: Cow<'a, str>,
    position_fp: Num,
    #[serde(default)]
    market_exposure_dollars: Option<Num>,
}

// ---------------------------------------------------------------------------------------------
// The I/O-free core: queue, limiter, orders, encoding, response handling.

struct Core {
    host: String,
    key_id: String,
    headers: HeaderReader,
    key: Arc<SigningKey>,
    markets: Vec<MarketInfo>,
    limiter: RateLimiter,
    orders: OrderTable,
    queue: VecDeque<Req>,
    events: Vec<GatewayEvent>,
    returned: usize,
    encoder: OrderEncoder,
    auth: [u8; AUTH_CAP],
    scratch: Vec<u8>,
    backoff_min_ns: u64,
    backoff_max_ns: u64,
    max_retries: u32,
    max_batch: usize,
    retain_ns: u64,
    stats: RestStats,
}

/// The bit of `b` in `take_sendable`'s blocked-bucket mask (shards above 62 share one).
fn bucket_bit(b: Bucket) -> u64 {
    match b {
        Bucket::Read => 1,
        Bucket::Write(i) => 2u64 << (i.min(62)),
    }
}

impl Core {
    fn backoff_ns(&self, attempt: u32) -> u64 {
        let mult = 1u64 << attempt.saturating_sub(1).min(30);
        self.backoff_min_ns.saturating_mul(mult).min(self.backoff_max_ns)
    }

    fn market(&self, m: MarketId) -> Option<MarketInfo> {
        self.markets.get(m.idx()).copied()
    }

    /// Drops the events returned by the previous poll (their slice is dead once the gateway is
    /// called again). `submit`, the WebSocket inputs and `poll` all start with this, so events
    /// made between two polls are returned once, by the next poll.
    fn begin_poll(&mut self) {
        if self.returned > 0 {
            self.events.drain(..self.returned);
            self.returned = 0;
        }
    }

    fn failed(&mut self, op: OpKind, key: Option<OrderKey>, error: ApiError) {
        let (strategy, order_ref) =
            key.and_then(|k| self.orders.get(k)).map_or((0, OrderRef(0)), |r| (r.order.strategy, r.order.order_ref));
        self.events.push(GatewayEvent::Failed { op, strategy, order_ref, error });
    }

    /// A create refused before it reached the table: a `Rejected` update for the pipeline.
    fn reject_unrecorded(&mut self, o: &NewOrder, reason: RejectReason) {
        self.events.push(GatewayEvent::Exec(ExecEvent::Update {
            strategy: o.strategy,
            update: OrderUpdate {
                order_ref: o.order_ref,
                market: o.market,
                status: OrderStatus::Rejected,
                reason,
                filled: Qty::ZERO,
                remaining: Qty::ZERO,
                tag: o.tag,
            },
            side: o.side,
            yes_price: o.yes_price,
        }));
    }

    fn new_order(&mut self, req: &OrderRequest) -> Option<Result<OrderKey, SubmitError>> {
        let OrderRequest::New { strategy, order_ref, market, side, yes_price, qty, tif, post_only, tag, .. } = *req
        else {
            return None;
        };
        let Some(m) = self.market(market) else {
            let o =
                NewOrder { strategy, order_ref, market, side, yes_price, qty, tif, post_only, tag, exchange_index: 0 };
            self.reject_unrecorded(&o, RejectReason::UnknownMarket);
            return Some(Err(SubmitError::UnknownMarket(market.0)));
        };
        let o = NewOrder {
            strategy,
            order_ref,
            market,
            side,
            yes_price,
            qty,
            tif,
            post_only,
            tag,
            exchange_index: m.exchange_index,
        };
        Some(self.orders.insert(o).map_err(|e| {
            match e {
                TableError::Full(_) => self.reject_unrecorded(&o, RejectReason::Venue),
                TableError::Duplicate => self.failed(
                    OpKind::Create,
                    None,
                    ApiError::local("duplicate_order_ref", "order_ref already used by this strategy"),
                ),
            }
            SubmitError::Table(e)
        }))
    }

    fn find(&mut self, op: OpKind, strategy: u16, order_ref: OrderRef) -> Result<OrderKey, SubmitError> {
        self.orders.find_ref(strategy, order_ref).ok_or_else(|| {
            self.events.push(GatewayEvent::Failed {
                op,
                strategy,
                order_ref,
                error: ApiError::local("unknown_order", "no such order in the gateway"),
            });
            SubmitError::UnknownOrder { strategy, order_ref }
        })
    }

    /// A cancel of an order still queued and never sent: drop the create, report it cancelled.
    fn cancel_unsent(&mut self, key: OrderKey, now_ns: u64) -> bool {
        let unsent = self.orders.get(key).is_some_and(|r| r.phase == Phase::PendingSend && r.sends == 0);
        if !unsent {
            return false;
        }
        let Some(i) = self.queue.iter().position(|r| matches!(r.op, Op::Create(k) if k == key)) else {
            return false;
        };
        self.queue.remove(i);
        self.orders.on_cancelled(key, now_ns, &mut self.events);
        true
    }

    /// The bucket and cost of `op`.
    fn billing(&self, op: &Op) -> (Bucket, u32) {
        let shard = |k: &OrderKey| self.orders.get(*k).map_or(0, |r| r.order.exchange_index);
        match op {
            Op::Create(k) => (Bucket::write(shard(k)), cost::CREATE),
            Op::Cancel(k) => (Bucket::write(shard(k)), cost::CANCEL),
            Op::Amend { key, .. } => (Bucket::write(shard(key)), cost::AMEND),
            Op::Decrease { key, .. } => (Bucket::write(shard(key)), cost::DECREASE),
            Op::BatchCreate(ks) => (Bucket::BATCH, cost::BATCH_CREATE_PER_ORDER * ks.len() as u32),
            Op::BatchCancel(ks) => (Bucket::BATCH, cost::BATCH_CANCEL_PER_ORDER * ks.len() as u32),
            Op::CancelAll(_) => (Bucket::write(0), cost::CANCEL_ALL),
            Op::GetOrders { .. } | Op::GetPositions { .. } => (Bucket::Read, cost::READ),
        }
    }

    /// Whether `op` can be written now: `Some(true)` yes, `Some(false)` not yet (waiting for an
    /// order id), `None` never (drop it; reported already if it needs to be).
    fn ready(&mut self, op: &mut Op) -> Option<bool> {
        match op {
            // Sent: a retry after a 429 or 5xx. Anything else was answered meanwhile (or is being
            // reconciled, which queues its own resend).
            Op::Create(k) => {
                self.orders.get(*k).filter(|r| matches!(r.phase, Phase::PendingSend | Phase::Sent)).map(|_| true)
            }
            Op::BatchCreate(ks) => {
                ks.retain(|k| self.orders.get(*k).is_some_and(|r| matches!(r.phase, Phase::PendingSend | Phase::Sent)));
                (!ks.is_empty()).then_some(true)
            }
            Op::Cancel(k) => live_order(&self.orders, *k).map(|r| r.order_id.is_some()),
            Op::BatchCancel(ks) => {
                ks.retain(|k| live_order(&self.orders, *k).is_some());
                if ks.is_empty() {
                    return None;
                }
                Some(ks.iter().all(|k| self.orders.get(*k).is_some_and(|r| r.order_id.is_some())))
            }
            Op::Amend { key, .. } | Op::Decrease { key, .. } => {
                let key = *key;
                match live_order(&self.orders, key) {
                    Some(r) => Some(r.order_id.is_some()),
                    None => {
                        let kind = op.kind();
                        self.failed(kind, Some(key), ApiError::local("order_not_live", "the order is no longer live"));
                        None
                    }
                }
            }
            Op::CancelAll(_) | Op::GetOrders { .. } | Op::GetPositions { .. } => Some(true),
        }
    }

    /// Takes the first queued request that may be sent at `now_ns` and bills it. FIFO per
    /// bucket: once a request waits for tokens (or a backoff), later ones on its bucket wait too.
    fn take_sendable(&mut self, now_ns: u64) -> Option<Req> {
        let mut blocked = 0u64;
        let mut i = 0;
        while i < self.queue.len() {
            let (bucket, price) = self.billing(&self.queue[i].op);
            let bit = bucket_bit(bucket);
            if blocked & bit != 0 {
                i += 1;
                continue;
            }
            if self.queue[i].not_before_ns > now_ns {
                blocked |= bit;
                i += 1;
                continue;
            }
            let mut op = std::mem::replace(&mut self.queue[i].op, Op::CancelAll(Vec::new()));
            let ready = self.ready(&mut op);
            self.queue[i].op = op;
            match ready {
                None => {
                    self.queue.remove(i);
                    continue;
                }
                Some(false) => {
                    i += 1;
                    continue;
                }
                Some(true) => {}
            }
            // The batch may have shrunk: bill what is left.
            let (bucket, price) = if matches!(self.queue[i].op, Op::BatchCreate(_) | Op::BatchCancel(_)) {
                self.billing(&self.queue[i].op)
            } else {
                (bucket, price)
            };
            if self.limiter.try_take(bucket, price, now_ns) {
                return self.queue.remove(i);
            }
            if self.limiter.wait_ns(bucket, price, now_ns).is_none() {
                let r = self.queue.remove(i).expect("index in range");
                let capacity = self.limiter.capacity(bucket);
                self.refuse(
                    r,
                    ApiError::local("batch_too_large", &format!("costs {price} tokens, bucket holds {capacity}")),
                    now_ns,
                );
                continue;
            }
            if !self.queue[i].waited {
                self.queue[i].waited = true;
                self.stats.token_waits += 1;
            }
            blocked |= bit;
            i += 1;
        }
        None
    }

    /// Earliest time a queued request could become sendable by itself (backoff or refill),
    /// unix ns; `None` when nothing waits on time.
    fn next_wake_ns(&mut self, now_ns: u64) -> Option<u64> {
        let mut best: Option<u64> = None;
        for i in 0..self.queue.len() {
            if self.waits_for_order_id(&self.queue[i].op) {
                continue;
            }
            let (b, c) = self.billing(&self.queue[i].op);
            let nb = self.queue[i].not_before_ns;
            let t = if nb > now_ns { nb } else { now_ns + self.limiter.wait_ns(b, c, now_ns).unwrap_or(0) };
            best = Some(best.map_or(t, |x| x.min(t)));
        }
        best
    }

    /// True when `op` needs an order id not yet known (it waits on an event, not the clock).
    fn waits_for_order_id(&self, op: &Op) -> bool {
        let no_id = |k: &OrderKey| self.orders.get(*k).is_some_and(|r| r.order_id.is_none());
        match op {
            Op::Cancel(k) | Op::Amend { key: k, .. } | Op::Decrease { key: k, .. } => no_id(k),
            Op::BatchCancel(ks) => ks.iter().any(no_id),
            _ => false,
        }
    }

    /// Reports `r` as refused locally (never sent) with `e`.
    fn refuse(&mut self, r: Req, e: ApiError, now_ns: u64) {
        let kind = r.op.kind();
        match r.op {
            Op::Create(k) => {
                self.orders.on_reject(k, e.reject_reason(), now_ns, &mut self.events);
                self.failed(kind, Some(k), e);
            }
            Op::BatchCreate(ks) => {
                for k in ks {
                    self.orders.on_reject(k, e.reject_reason(), now_ns, &mut self.events);
                    self.failed(kind, Some(k), e);
                }
            }
            Op::BatchCancel(ks) => {
                for k in ks {
                    self.failed(kind, Some(k), e);
                }
            }
            op => {
                let key = op.first_key();
                self.failed(kind, key, e);
            }
        }
    }

    fn put_fixed_head(&mut self, p: FixedPath, body_len: usize, now_ns: u64, out: &mut Vec<u8>) -> Option<u64> {
        let h = self.headers.latest(p);
        self.put_signed_head(p.method(), &[p.path().as_bytes()], &h, body_len, now_ns, out)
    }

    fn put_signed_head(
        &mut self,
        method: &str,
        path_and_query: &[&[u8]],
        h: &SignedHeader,
        body_len: usize,
        now_ns: u64,
        out: &mut Vec<u8>,
    ) -> Option<u64> {
        let n = write_auth_headers(&self.key_id, h, &mut self.auth).ok()?;
        let len = (method != "GET").then_some(body_len);
        put_head(out, method, path_and_query, &self.host, &self.auth[..n], len);
        let age = header_age_ns(h, now_ns);
        self.stats.header_age_last_ns = age;
        self.stats.header_age_max_ns = self.stats.header_age_max_ns.max(age);
        Some(age)
    }

    fn new_fields(&self, r: &OrderRecord) -> Option<(MarketInfo, NewOrder)> {
        Some((self.market(r.order.market)?, r.order))
    }

    /// Writes `req` as an HTTP request into `out` and records the send. Returns false (after
    /// reporting it) when it cannot be written.
    fn encode(&mut self, req: &mut Req, now_ns: u64, out: &mut Vec<u8>) -> bool {
        out.clear();
        let kind = req.op.kind();
        let attempt = req.retries + 1;
        let session = self.orders.session();
        let age = match &mut req.op {
            Op::Create(k) => {
                let key = *k;
                let Some((m, o)) = self.orders.get(key).and_then(|r| self.new_fields(r)) else { return false };
                let body = self.encoder.encode(&order_fields(&m, &o, session));
                let body_len = body.len();
                let h = self.headers.latest(FixedPath::CreateOrder);
                let Some(n) = write_auth_headers(&self.key_id, &h, &mut self.auth).ok() else { return false };
                put_head(out, "POST", &[ORDERS_PATH.as_bytes()], &self.host, &self.auth[..n], Some(body_len));
                out.extend_from_slice(body);
                let age = header_age_ns(&h, now_ns);
                self.stats.header_age_last_ns = age;
                self.stats.header_age_max_ns = self.stats.header_age_max_ns.max(age);
                self.orders.mark_sent(key, now_ns, age);
                self.stats.creates_sent += 1;
                let sends = self.orders.get(key).map_or(1, |r| r.sends);
                self.stats.requests += 1;
                self.events.push(GatewayEvent::Sent {
                    op: kind,
                    strategy: o.strategy,
                    order_ref: o.order_ref,
                    sent_ns: now_ns,
                    header_age_ns: age,
                    attempt: sends.max(attempt),
                });
                return true;
            }
            Op::BatchCreate(ks) => {
                self.scratch.clear();
                self.scratch.extend_from_slice(b"{\"orders\":[");
                for (i, k) in ks.iter().enumerate() {
                    let Some((m, o)) = self.orders.get(*k).and_then(|r| self.new_fields(r)) else { continue };
                    if i > 0 {
                        self.scratch.push(b',');
                    }
                    let body = self.encoder.encode(&order_fields(&m, &o, session));
                    self.scratch.extend_from_slice(body);
                }
                self.scratch.extend_from_slice(b"]}");
                let len = self.scratch.len();
                let Some(age) = self.put_fixed_head(FixedPath::BatchCreate, len, now_ns, out) else { return false };
                out.extend_from_slice(&self.scratch);
                for k in ks.iter() {
                    self.orders.mark_sent(*k, now_ns, age);
                    self.stats.creates_sent += 1;
                }
                age
            }
            Op::BatchCancel(ks) => {
                self.scratch.clear();
                self.scratch.extend_from_slice(b"{\"orders\":[");
                for (i, k) in ks.iter().enumerate() {
                    let Some(r) = self.orders.get(*k) else { continue };
                    let (Some(oid), Some(m)) = (r.order_id, self.market(r.order.market)) else { continue };
                    if i > 0 {
                        self.scratch.push(b',');
                    }
                    self.scratch.extend_from_slice(b"{\"order_id\":\"");
                    self.scratch.extend_from_slice(oid.as_str().as_bytes());
                    self.scratch.extend_from_slice(b"\",\"exchange_index\":");
                    put_u64(&mut self.scratch, u64::from(m.exchange_index));
                    self.scratch.extend_from_slice(b",\"market_ticker\":\"");
                    self.scratch.extend_from_slice(m.ticker.as_str().as_bytes());
                    self.scratch.extend_from_slice(b"\"}");
                }
                self.scratch.extend_from_slice(b"]}");
                let len = self.scratch.len();
                let Some(age) = self.put_fixed_head(FixedPath::BatchCancel, len, now_ns, out) else { return false };
                out.extend_from_slice(&self.scratch);
                age
            }
            Op::Cancel(k) => {
                let key = *k;
                let Some(r) = self.orders.get(key) else { return false };
                let (Some(oid), Some(m)) = (r.order_id, self.market(r.order.market)) else { return false };
                let path = id_path(oid.as_str(), "");
                self.scratch.clear();
                self.scratch.extend_from_slice(b"?exchange_index=");
                put_u64(&mut self.scratch, u64::from(m.exchange_index));
                self.scratch.extend_from_slice(b"&market_ticker=");
                put_query_value(&mut self.scratch, m.ticker.as_str().as_bytes());
                let Some(h) = self.sign("DELETE", path.as_str(), kind, Some(key), now_ns) else { return false };
                let q = std::mem::take(&mut self.scratch);
                let age = self.put_signed_head("DELETE", &[path.as_str().as_bytes(), &q], &h, 0, now_ns, out);
                self.scratch = q;
                let Some(age) = age else { return false };
                age
            }
            Op::CancelAll(resting) => {
                resting.clear();
                resting.extend(self.orders.keys().into_iter().filter(|k| {
                    self.orders.get(*k).is_some_and(|r| r.phase == Phase::Resting && r.order_id.is_some())
                }));
                let Some(h) = self.sign("DELETE", ORDERS_PATH, kind, None, now_ns) else { return false };
                let Some(age) = self.put_signed_head("DELETE", &[ORDERS_PATH.as_bytes()], &h, 0, now_ns, out) else {
                    return false;
                };
                age
            }
            Op::Amend { key, yes_price, total } => {
                let key = *key;
                let Some(r) = self.orders.get(key) else { return false };
                let (Some(oid), Some(m)) = (r.order_id, self.market(r.order.market)) else { return false };
                let coid = r.client_order_id;
                let side = r.order.side;
                let path = id_path(oid.as_str(), "/amend");
                self.scratch.clear();
                self.scratch.extend_from_slice(b"{\"ticker\":\"");
                self.scratch.extend_from_slice(m.ticker.as_str().as_bytes());
                self.scratch.extend_from_slice(match side {
                    BookSide::Bid => b"\",\"side\":\"bid\",\"price\":\"",
                    BookSide::Ask => b"\",\"side\":\"ask\",\"price\":\"",
                });
                self.scratch.extend_from_slice(yes_price.to_fixed_str().as_bytes());
                self.scratch.extend_from_slice(b"\",\"count\":\"");
                self.scratch.extend_from_slice(total.to_fixed_str().as_bytes());
                self.scratch.extend_from_slice(b"\",\"client_order_id\":\"");
                self.scratch.extend_from_slice(&coid);
                self.scratch.extend_from_slice(b"\",\"exchange_index\":");
                put_u64(&mut self.scratch, u64::from(m.exchange_index));
                self.scratch.push(b'}');
                let Some(age) = self.signed_body("POST", path.as_str(), kind, key, now_ns, out) else { return false };
                age
            }
            Op::Decrease { key, by } => {
                let key = *key;
                let Some(r) = self.orders.get(key) else { return false };
                let (Some(oid), Some(m)) = (r.order_id, self.market(r.order.market)) else { return false };
                let path = id_path(oid.as_str(), "/decrease");
                self.scratch.clear();
                let (field, q) = match *by {
                    Decrease::By(q) => (&b"{\"reduce_by\":\""[..], q),
                    Decrease::To(q) => (&b"{\"reduce_to\":\""[..], q),
                };
                self.scratch.extend_from_slice(field);
                self.scratch.extend_from_slice(q.to_fixed_str().as_bytes());
                self.scratch.extend_from_slice(b"\",\"exchange_index\":");
                put_u64(&mut self.scratch, u64::from(m.exchange_index));
                self.scratch.extend_from_slice(b",\"market_ticker\":\"");
                self.scratch.extend_from_slice(m.ticker.as_str().as_bytes());
                self.scratch.extend_from_slice(b"\"}");
                let Some(age) = self.signed_body("POST", path.as_str(), kind, key, now_ns, out) else { return false };
                age
            }
            Op::GetOrders { market, min_ts_s, cursor, orders, .. } => {
                let Some(m) = self.market(*market) else { return false };
                let first = orders.first().copied();
                self.scratch.clear();
                self.scratch.extend_from_slice(b"?ticker=");
                put_query_value(&mut self.scratch, m.ticker.as_str().as_bytes());
                self.scratch.extend_from_slice(b"&min_ts=");
                put_u64(&mut self.scratch, *min_ts_s);
                self.scratch.extend_from_slice(b"&limit=");
                put_u64(&mut self.scratch, LIST_LIMIT);
                if let Some(c) = cursor.as_deref().filter(|c| !c.is_empty()) {
                    self.scratch.extend_from_slice(b"&cursor=");
                    put_query_value(&mut self.scratch, c.as_bytes());
                }
                let Some(h) = self.sign("GET", LIST_PATH, kind, first, now_ns) else { return false };
                let q = std::mem::take(&mut self.scratch);
                let age = self.put_signed_head("GET", &[LIST_PATH.as_bytes(), &q], &h, 0, now_ns, out);
                self.scratch = q;
                self.stats.reconciliation_reads += 1;
                let Some(age) = age else { return false };
                age
            }
            Op::GetPositions { cursor } => {
                self.scratch.clear();
                self.scratch.extend_from_slice(b"?limit=");
                put_u64(&mut self.scratch, POSITIONS_LIMIT);
                if let Some(c) = cursor.as_deref().filter(|c| !c.is_empty()) {
                    self.scratch.extend_from_slice(b"&cursor=");
                    put_query_value(&mut self.scratch, c.as_bytes());
                }
                let Some(h) = self.sign("GET", POSITIONS_PATH, kind, None, now_ns) else { return false };
                let q = std::mem::take(&mut self.scratch);
                let age = self.put_signed_head("GET", &[POSITIONS_PATH.as_bytes(), &q], &h, 0, now_ns, out);
                self.scratch = q;
                self.stats.position_reads += 1;
                let Some(age) = age else { return false };
                age
            }
        };
        self.stats.requests += 1;
        let (strategy, order_ref) = req
            .op
            .first_key()
            .and_then(|k| self.orders.get(k))
            .map_or((0, OrderRef(0)), |r| (r.order.strategy, r.order.order_ref));
        self.events.push(GatewayEvent::Sent {
            op: kind,
            strategy,
            order_ref,
            sent_ns: now_ns,
            header_age_ns: age,
            attempt,
        });
        true
    }

    /// Signs `METHOD path` now; a failure is reported against `key`.
    fn sign(
        &mut self,
        method: &str,
        path: &str,
        op: OpKind,
        key: Option<OrderKey>,
        now_ns: u64,
    ) -> Option<SignedHeader> {
        match sign_now(&self.key, method, path, now_ns / 1_000_000) {
            Ok(h) => Some(h),
            Err(e) => {
                self.failed(op, key, ApiError::local("signing_failed", &e.to_string()));
                None
            }
        }
    }

    /// Head (signed now) + the JSON body in `scratch`.
    fn signed_body(
        &mut self,
        method: &str,
        path: &str,
        op: OpKind,
        key: OrderKey,
        now_ns: u64,
        out: &mut Vec<u8>,
    ) -> Option<u64> {
        let h = self.sign(method, path, op, Some(key), now_ns)?;
        let body = std::mem::take(&mut self.scratch);
        let age = self.put_signed_head(method, &[path.as_bytes()], &h, body.len(), now_ns, out);
        out.extend_from_slice(&body);
        self.scratch = body;
        age
    }

    // ---- answers ----

    fn on_response(&mut self, mut req: Req, status: u16, body: &[u8], now_ns: u64) {
        self.stats.responses += 1;
        if status == 429 {
            self.stats.rate_limited += 1;
            let (bucket, _) = self.billing(&req.op);
            self.limiter.drain(bucket, now_ns);
            req.retries += 1;
            if req.retries > self.max_retries {
                self.refuse(req, ApiError::from_body(status, body), now_ns);
            } else {
                self.stats.retries += 1;
                req.not_before_ns = now_ns + self.backoff_ns(req.retries);
                // Same request, same client_order_id, ahead of everything queued after it.
                self.queue.push_front(req);
            }
            return;
        }
        let ok = (200..300).contains(&status);
        let kind = req.op.kind();
        if !ok && status < 500 {
            self.stats.rejects += 1;
        }
        match req.op {
            Op::Create(key) => {
                if ok {
                    match serde_json::from_slice::<CreateResp<'_>>(body).ok().and_then(|r| {
                        let s = r.snapshot()?;
                        Some((r.order_id.map(|o| OrderIdBuf::truncated(o.as_ref())).unwrap_or_default(), s))
                    }) {
                        Some((oid, s)) => {
                            self.orders.on_snapshot(key, oid.as_str(), &s, true, now_ns, &mut self.events)
                        }
                        None => self.reconcile(&[key], now_ns),
                    }
                    return;
                }
                let e = ApiError::from_body(status, body);
                if status >= 500 || (status == 409 && e.code_is("order_already_exists")) {
                    // Applied or not: look it up rather than guess.
                    self.failed(kind, Some(key), e);
                    self.reconcile(&[key], now_ns);
                } else {
                    self.orders.on_reject(key, e.reject_reason(), now_ns, &mut self.events);
                    self.failed(kind, Some(key), e);
                }
            }
            Op::BatchCreate(keys) => {
                if !ok {
                    let e = ApiError::from_body(status, body);
                    if status >= 500 {
                        self.failed(kind, keys.first().copied(), e);
                        self.reconcile(&keys, now_ns);
                    } else {
                        for k in keys {
                            self.orders.on_reject(k, e.reject_reason(), now_ns, &mut self.events);
                            self.failed(kind, Some(k), e);
                        }
                    }
                    return;
                }
                let Ok(resp) = serde_json::from_slice::<BatchResp<'_>>(body) else {
                    self.reconcile(&keys, now_ns);
                    return;
                };
                let mut unanswered = Vec::new();
                for (i, k) in keys.iter().enumerate() {
                    let coid = self.orders.get(*k).map(|r| r.client_order_id);
                    let item = resp
                        .orders
                        .iter()
                        .find(|it| it.client_order_id.as_deref().map(str::as_bytes) == coid.as_ref().map(|c| &c[..]))
                        .or_else(|| resp.orders.get(i).filter(|it| it.client_order_id.is_none()));
                    match item {
                        Some(it) => {
                            if let Some(e) = it.item_error() {
                                if e.code_is("order_already_exists") {
                                    unanswered.push(*k);
                                } else {
                                    self.orders.on_reject(*k, e.reject_reason(), now_ns, &mut self.events);
                                    self.failed(kind, Some(*k), e);
                                }
                            } else if let Some(s) = it.snapshot() {
                                let oid = it.order_id.as_deref().unwrap_or("");
                                self.orders.on_snapshot(*k, oid, &s, true, now_ns, &mut self.events);
                            } else {
                                unanswered.push(*k);
                            }
                        }
                        None => unanswered.push(*k),
                    }
                }
                if !unanswered.is_empty() {
                    self.reconcile(&unanswered, now_ns);
                }
            }
            Op::Cancel(key) => {
                if ok {
                    self.orders.on_cancelled(key, now_ns, &mut self.events);
                } else {
                    self.retry_or_fail(Req { op: Op::Cancel(key), ..req }, status, body, now_ns);
                }
            }
            Op::BatchCancel(keys) => {
                if !ok {
                    self.retry_or_fail(Req { op: Op::BatchCancel(keys), ..req }, status, body, now_ns);
                    return;
                }
                let items: Vec<(String, Option<ApiError>)> = serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.get("orders").and_then(|o| o.as_array()).cloned())
                    .unwrap_or_default()
                    .iter()
                    .map(|it| {
                        let id = it.get("order_id").and_then(|v| v.as_str()).unwrap_or("").to_string();
                        let err = it
                            .get("error")
                            .filter(|e| !e.is_null())
                            .map(|e| ApiError::from_body(400, e.to_string().as_bytes()));
                        (id, err)
                    })
                    .collect();
                for k in keys {
                    let oid = self.orders.get(k).and_then(|r| r.order_id);
                    let item = oid.and_then(|o| items.iter().find(|(id, _)| id == o.as_str()));
                    match item {
                        Some((_, None)) => self.orders.on_cancelled(k, now_ns, &mut self.events),
                        Some((_, Some(e))) => self.failed(kind, Some(k), *e),
                        None => self.failed(kind, Some(k), ApiError::local("no_item", "order missing from the answer")),
                    }
                }
            }
            Op::CancelAll(resting) => {
                if ok {
                    for k in resting {
                        self.orders.on_cancelled(k, now_ns, &mut self.events);
                    }
                    self.events.push(GatewayEvent::CancelledAll);
                } else {
                    self.retry_or_fail(Req { op: Op::CancelAll(resting), ..req }, status, body, now_ns);
                }
            }
            Op::Amend { key, yes_price, total } => {
                if !ok {
                    self.retry_or_fail(Req { op: Op::Amend { key, yes_price, total }, ..req }, status, body, now_ns);
                    return;
                }
                let r = serde_json::from_slice::<CreateResp<'_>>(body).ok();
                let oid = r.as_ref().and_then(|r| r.order_id.as_deref()).map(OrderIdBuf::truncated).unwrap_or_default();
                // `count` is the new total (fills included): whatever does not rest has filled.
                let snap = r.as_ref().and_then(|r| {
                    let rem = r.remaining_count.as_ref()?.qty()?;
                    Some(Snapshot {
                        status: None,
                        filled: Qty((total.0 - rem.0).max(0)),
                        remaining: Some(rem),
                        ts_ms: r.ts_ms.unwrap_or(0),
                        avg_price: r.average_fill_price.as_ref().and_then(Num::price),
                        avg_fee: r.average_fee_paid.as_ref().and_then(Num::money),
                    })
                });
                // The body may describe the wrong order (`kalshi-protocol.md` §3.6): trust an
                // order id only if it is this order's.
                let same = self.orders.get(key).and_then(|r| r.order_id).is_some_and(|o| o.as_str() == oid.as_str());
                let oid = if same { oid.as_str() } else { "" };
                self.orders.on_amended(key, oid, yes_price, total, snap.as_ref(), now_ns, &mut self.events);
            }
            Op::Decrease { key, by } => {
                if !ok {
                    self.retry_or_fail(Req { op: Op::Decrease { key, by }, ..req }, status, body, now_ns);
                    return;
                }
                let r = serde_json::from_slice::<CreateResp<'_>>(body).ok();
                match r.as_ref().and_then(|r| Some((r.remaining_count.as_ref()?.qty()?, r.ts_ms.unwrap_or(0)))) {
                    Some((rem, ts)) => self.orders.on_decreased(key, rem, ts, now_ns, &mut self.events),
                    None => self.failed(kind, Some(key), ApiError::local("bad_response", "decrease answer unreadable")),
                }
            }
            Op::GetPositions { cursor } => {
                if !ok {
                    self.retry_or_fail(Req { op: Op::GetPositions { cursor }, ..req }, status, body, now_ns);
                    return;
                }
                match serde_json::from_slice::<PositionsPage<'_>>(body) {
                    Ok(page) => self.on_positions(&page),
                    Err(e) => {
                        let msg = format!("unreadable positions: {e}");
                        self.retry_or_fail(Req { op: Op::GetPositions { cursor }, ..req }, 0, msg.as_bytes(), now_ns);
                    }
                }
            }
            Op::GetOrders { market, min_ts_s, cursor, orders, resend_missing } => {
                if !ok {
                    let op = Op::GetOrders { market, min_ts_s, cursor, orders, resend_missing };
                    self.retry_or_fail(Req { op, ..req }, status, body, now_ns);
                    return;
                }
                match serde_json::from_slice::<OrdersPage<'_>>(body) {
                    Ok(page) => self.on_listing(market, min_ts_s, &page, orders, resend_missing, now_ns),
                    Err(e) => {
                        let op = Op::GetOrders { market, min_ts_s, cursor, orders, resend_missing };
                        let msg = format!("unreadable order listing: {e}");
                        self.retry_or_fail(Req { op, ..req }, 0, msg.as_bytes(), now_ns);
                    }
                }
            }
        }
    }

    /// A non-create request failed with `status`: 5xx (and local failures, status 0) are
    /// retried after a backoff, 4xx reported.
    fn retry_or_fail(&mut self, mut req: Req, status: u16, body: &[u8], now_ns: u64) {
        let e = if status == 0 {
            ApiError::local("bad_response", std::str::from_utf8(body).unwrap_or(""))
        } else {
            ApiError::from_body(status, body)
        };
        let retriable = status == 0 || status >= 500;
        if retriable && req.retries < self.max_retries {
            req.retries += 1;
            self.stats.retries += 1;
            req.not_before_ns = now_ns + self.backoff_ns(req.retries);
            self.queue.push_front(req);
        } else {
            self.give_up(req, e);
        }
    }

    fn give_up(&mut self, req: Req, e: ApiError) {
        let kind = req.op.kind();
        match req.op {
            Op::BatchCancel(ks) | Op::GetOrders { orders: ks, .. } => {
                for k in ks {
                    self.failed(kind, Some(k), e);
                }
            }
            op => self.failed(kind, op.first_key(), e),
        }
    }

    /// A request in flight got no answer.
    fn on_lost(&mut self, req: Req, why: Lost, now_ns: u64) {
        match why {
            Lost::Timeout => self.stats.timeouts += 1,
            Lost::Connection => self.stats.lost_in_flight += 1,
        }
        let what = match why {
            Lost::Timeout => "no response within the request timeout",
            Lost::Connection => "connection lost before the response",
        };
        match req.op {
            Op::Create(k) => self.reconcile(&[k], now_ns),
            Op::BatchCreate(ks) => self.reconcile(&ks, now_ns),
            Op::Decrease { key, by: Decrease::By(_) } => {
                // Not idempotent: its effect is unknown and a repeat could take off twice.
                self.failed(OpKind::Decrease, Some(key), ApiError::local("outcome_unknown", what));
            }
            _ => self.retry_or_fail(req, 0, what.as_bytes(), now_ns),
        }
    }

    /// Looks up creates whose outcome is unknown (see the module docs).
    fn reconcile(&mut self, keys: &[OrderKey], now_ns: u64) {
        for &k in keys {
            if !self.orders.mark_unknown(k) {
                continue;
            }
            self.stats.reconciliations += 1;
            self.list_order(k, now_ns, true);
        }
    }

    /// Queues `GET /portfolio/orders` for order `k`'s market since just before it was first
    /// sent, joining a listing of the same market and kind that is queued and not yet on its way.
    fn list_order(&mut self, k: OrderKey, now_ns: u64, resend_missing: bool) {
        let Some(r) = self.orders.get(k) else { return };
        let market = r.order.market;
        // Kalshi's min_ts is in seconds; 2 s of slack for clock differences.
        let sent_s = (if r.first_sent_ns > 0 { r.first_sent_ns } else { now_ns }) / 1_000_000_000;
        let min_ts = sent_s.saturating_sub(2);
        let joined = self.queue.iter_mut().any(|q| match &mut q.op {
            Op::GetOrders { market: m, min_ts_s, cursor: None, orders, resend_missing: rm }
                if *m == market && *rm == resend_missing =>
            {
                orders.push(k);
                *min_ts_s = (*min_ts_s).min(min_ts);
                true
            }
            _ => false,
        });
        if !joined {
            self.queue.push_back(Req::new(Op::GetOrders {
                market,
                min_ts_s: min_ts,
                cursor: None,
                orders: vec![k],
                resend_missing,
            }));
        }
    }

    fn on_listing(
        &mut self,
        market: MarketId,
        min_ts_s: u64,
        page: &OrdersPage<'_>,
        orders: Vec<OrderKey>,
        resend_missing: bool,
        now_ns: u64,
    ) {
        let mut missing = Vec::new();
        for k in orders {
            let Some(r) = self.orders.get(k) else { continue };
            let (coid, strategy, order_ref) = (r.client_order_id, r.order.strategy, r.order.order_ref);
            let found = page.orders.iter().find(|o| o.client_order_id.as_deref().map(str::as_bytes) == Some(&coid[..]));
            match found {
                Some(o) => {
                    let snap = Snapshot {
                        status: o.status.as_deref().and_then(VenueStatus::parse),
                        filled: o.fill_count_fp.as_ref().and_then(Num::qty).unwrap_or(Qty::ZERO),
                        remaining: o.remaining_count_fp.as_ref().and_then(Num::qty),
                        ts_ms: 0,
                        avg_price: None,
                        avg_fee: None,
                    };
                    self.orders.on_snapshot(k, o.order_id.as_ref(), &snap, false, now_ns, &mut self.events);
                    self.events.push(GatewayEvent::Reconciled { strategy, order_ref, found: true, resent: false });
                }
                None => missing.push(k),
            }
        }
        if missing.is_empty() {
            return;
        }
        if let Some(c) = page.cursor.as_deref().filter(|c| !c.is_empty()) {
            self.queue.push_back(Req::new(Op::GetOrders {
                market,
                min_ts_s,
                cursor: Some(c.to_string()),
                orders: missing,
                resend_missing,
            }));
            return;
        }
        if !resend_missing {
            // A resync of acknowledged orders: absent means the venue no longer lists it under
            // this ticker and time; its state stays as last reported.
            for k in missing {
                let Some(r) = self.orders.get(k) else { continue };
                let (strategy, order_ref) = (r.order.strategy, r.order.order_ref);
                self.stats.resync_missing += 1;
                self.events.push(GatewayEvent::Reconciled { strategy, order_ref, found: false, resent: false });
            }
            return;
        }
        for k in missing {
            // Absent from the listing; resend only if nothing named it meanwhile.
            if !self.orders.needs_resend(k) {
                continue;
            }
            let Some(r) = self.orders.get(k) else { continue };
            let (strategy, order_ref) = (r.order.strategy, r.order.order_ref);
            self.orders.mark_resend(k);
            self.stats.resends += 1;
            self.queue.push_back(Req::new(Op::Create(k)));
            self.events.push(GatewayEvent::Reconciled { strategy, order_ref, found: false, resent: true });
        }
    }
}

impl Core {
    /// Queues a listing of every order that is not terminal, by market, without resends: the
    /// private stream had a hole, so each order's state is read from the venue. Orders whose
    /// create is still unanswered or being reconciled are left to that machinery. Returns the
    /// orders listed.
    fn resync(&mut self, now_ns: u64) -> usize {
        self.stats.resyncs += 1;
        let mut n = 0;
        for k in self.orders.keys() {
            let Some(r) = self.orders.get(k) else { continue };
            if r.phase.is_terminal() || r.order_id.is_none() {
                continue;
            }
            n += 1;
            self.list_order(k, now_ns, false);
        }
        n
    }

    fn on_positions(&mut self, page: &PositionsPage<'_>) {
        for p in &page.market_positions {
            let Some(i) = self.markets.iter().position(|m| m.ticker.as_str() == p.ticker.as_ref()) else { continue };
            let Some(qty) = p.position_fp.qty() else { continue };
            let exposure =
                p.market_exposure_dollars.as_ref().and_then(Num::money).unwrap_or(strike_sdk::num::Money::ZERO);
            self.events.push(GatewayEvent::Position { market: MarketId(i as u32), qty, exposure });
        }
        match page.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => self.queue.push_back(Req::new(Op::GetPositions { cursor: Some(c.to_string()) })),
            None => self.events.push(GatewayEvent::PositionsRead),
        }
    }
}

/// The record of `k` if it is not terminal.
fn live_order(t: &OrderTable, k: OrderKey) -> Option<&OrderRecord> {
    t.get(k).filter(|r| !r.phase.is_terminal())
}

/// An order id held inline (the `Cow` from a response body does not outlive it).
type OrderIdBuf = InlineStr<64>;

/// `/trade-api/v2/portfolio/events/orders/{id}{suffix}`.
fn id_path(order_id: &str, suffix: &str) -> InlineStr<192> {
    let mut p = InlineStr::<192>::default();
    let _ = fmt::Write::write_str(&mut p, ORDERS_PATH);
    let _ = fmt::Write::write_str(&mut p, "/");
    let _ = fmt::Write::write_str(&mut p, order_id);
    let _ = fmt::Write::write_str(&mut p, suffix);
    p
}

// ---------------------------------------------------------------------------------------------
// Connections

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    /// Not connected; connect at or after this time, unix ns.
    Down { retry_at_ns: u64 },
    /// TCP connect / TLS handshake in progress since this time.
    Connecting { since_ns: u64 },
    /// Ready for a request.
    Idle,
    /// A request is in flight.
    Busy,
}

struct Conn {
    state: ConnState,
    stream: Option<TlsStream>,
    wbuf: Vec<u8>,
    wpos: usize,
    rbuf: Vec<u8>,
    rlen: usize,
    req: Option<Req>,
    sent_ns: u64,
    /// Raw TSC stamp of the moment the request's bytes were handed to the socket.
    written_raw: u64,
    last_check_ns: u64,
    failures: u32,
    served: u64,
}

/// Outcome of reading a busy connection.
enum Pump {
    Waiting,
    Done { status: u16, head_len: usize, body_len: usize, close: bool, extra: bool },
    Failed(String),
}

/// The gateway; see the module docs.
pub struct RestGateway {
    core: Core,
    conns: Vec<Conn>,
    addrs: Vec<SocketAddr>,
    server_name: rustls_pki_types::ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
    request_timeout_ns: u64,
    connect_timeout_ns: u64,
    idle_check_ns: u64,
    max_response: usize,
    clock: Clock,
    /// `tick_to_trade` of each create (trigger frame read → request bytes handed to the
    /// socket) and `order_round_trip` (bytes handed to the socket → response read), ns.
    pub latency: Latency,
}

impl fmt::Debug for RestGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestGateway")
            .field("host", &self.core.host)
            .field("connections_ready", &self.connections_ready())
            .field("queued", &self.queued())
            .field("orders", &self.core.orders.len())
            .finish_non_exhaustive()
    }
}

/// Splits `https://host[:port]/trade-api/v2` into (host, port, Host header value).
fn parse_base_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("https://").ok_or_else(|| format!("REST URL {url:?} must start with https://"))?;
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let path = format!("/{}", path.trim_end_matches('/'));
    if path != REST_BASE_PATH {
        return Err(format!("REST URL {url:?} must end in {REST_BASE_PATH} (signed paths start there)"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h.to_string(), p.parse::<u16>().map_err(|_| format!("bad port in REST URL {url:?}"))?)
        }
        _ => (authority.to_string(), 443),
    };
    if host.is_empty() {
        return Err(format!("REST URL {url:?} has no host"));
    }
    let host_header = if port == 443 { host.clone() } else { format!("{host}:{port}") };
    Ok((host, port, host_header))
}

impl RestGateway {
    /// A gateway for `cfg` trading `markets` (indexed by [`MarketId`]; tickers and shards from
    /// there), with pre-signed headers from `headers` and `key` for the paths signed at send
    /// time. Resolves the host now (cold); connections open on the first [`RestGateway::poll`].
    pub fn new(
        cfg: RestConfig,
        markets: &[MarketMeta],
        headers: HeaderReader,
        key: Arc<SigningKey>,
    ) -> Result<RestGateway, String> {
        let (host, port, host_header) = parse_base_url(&cfg.base_url)?;
        if cfg.pool_size == 0 {
            return Err("the REST connection pool needs at least one connection".into());
        }
        if cfg.max_batch == 0 {
            return Err("max_batch must be at least 1".into());
        }
        if cfg.key_id.is_empty() || !cfg.key_id.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err("invalid Kalshi key id (printable ASCII, no spaces)".into());
        }
        let addrs: Vec<SocketAddr> = match cfg.connect_addr {
            Some(a) => vec![a],
            None => {
                (host.as_str(), port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?.collect()
            }
        };
        if addrs.is_empty() {
            return Err(format!("{host} resolved to no address"));
        }
        let server_name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("bad TLS server name {host}: {e}"))?;
        let ns = |d: Duration| d.as_nanos().min(u64::MAX as u128) as u64;
        let core = Core {
            host: host_header,
            key_id: cfg.key_id.clone(),
            headers,
            key,
            markets: markets
                .iter()
                .map(|m| MarketInfo { ticker: m.ticker, exchange_index: m.exchange_index })
                .collect(),
            limiter: RateLimiter::new(cfg.tier, cfg.max_shard, 0),
            orders: {
                let mut t = OrderTable::with_session(cfg.max_orders, cfg.session_id);
                t.set_fee_rules(markets.iter().map(|m| m.fees).collect(), cfg.account_precision);
                t
            },
            queue: VecDeque::with_capacity(cfg.queue_capacity),
            events: Vec::with_capacity(1024),
            returned: 0,
            encoder: OrderEncoder::default(),
            auth: [0; AUTH_CAP],
            scratch: Vec::with_capacity(64 * 1024),
            backoff_min_ns: ns(cfg.backoff_min),
            backoff_max_ns: ns(cfg.backoff_max),
            max_retries: cfg.max_retries,
            max_batch: cfg.max_batch,
            retain_ns: ns(cfg.retain_terminal),
            stats: RestStats::default(),
        };
        let conns = (0..cfg.pool_size)
            .map(|_| Conn {
                state: ConnState::Down { retry_at_ns: 0 },
                stream: None,
                wbuf: Vec::with_capacity(64 * 1024),
                wpos: 0,
                rbuf: vec![0; 16 * 1024],
                rlen: 0,
                req: None,
                sent_ns: 0,
                written_raw: 0,
                last_check_ns: 0,
                failures: 0,
                served: 0,
            })
            .collect();
        Ok(RestGateway {
            core,
            conns,
            addrs,
            server_name,
            tls: cfg.tls,
            request_timeout_ns: ns(cfg.request_timeout),
            connect_timeout_ns: ns(cfg.connect_timeout),
            idle_check_ns: ns(cfg.idle_check),
            max_response: cfg.max_response.max(1024),
            clock: Clock::default(),
            latency: Latency::default(),
        })
    }

    /// Stamps with `clock` (the pipeline's, so its raw stamps compare with the trigger's).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    // ---- submitting ----

    /// Takes one pipeline request: `New` → a V2 create, `Cancel` → a V2 cancel (held until the
    /// order's id is known; a create still queued and never sent is dropped and reported
    /// cancelled instead). Writes it at once when a connection is idle and its bucket allows.
    /// An error is also reported as an event (see [`SubmitError`]).
    pub fn submit(&mut self, req: &OrderRequest, now_ns: u64) -> Result<(), SubmitError> {
        self.core.begin_poll();
        match *req {
            OrderRequest::New { t0, .. } => {
                let key = self.core.new_order(req).expect("a New request")?;
                self.core.queue.push_back(Req { t0, ..Req::new(Op::Create(key)) });
            }
            OrderRequest::Cancel { strategy, order_ref } => {
                let key = self.core.find(OpKind::Cancel, strategy, order_ref)?;
                let is_this = |r: &Req| matches!(r.op, Op::Cancel(k) if k == key);
                let pending = self.core.queue.iter().any(is_this)
                    || self.conns.iter().any(|c| c.req.as_ref().is_some_and(is_this));
                if pending {
                    // one cancel per order at a time: a second would only earn a 404
                    self.core.stats.cancels_coalesced += 1;
                } else if !self.core.cancel_unsent(key, now_ns) {
                    self.core.queue.push_back(Req::new(Op::Cancel(key)));
                }
            }
        }
        self.dispatch(now_ns);
        Ok(())
    }

    /// Takes several pipeline requests as batches: the `New`s as batched creates and the
    /// `Cancel`s as batched cancels, each split into batches of at most `max_batch`, billed to
    /// the unscoped Write bucket at 10 / 2 tokens per order. Refused when one batch costs more
    /// than the bucket holds. Requests that fail individually are reported as events and
    /// skipped.
    pub fn submit_batch(&mut self, reqs: &[OrderRequest], now_ns: u64) -> Result<(), SubmitError> {
        self.core.begin_poll();
        let chunk = self.core.max_batch;
        let cap = self.core.limiter.capacity(Bucket::BATCH);
        let creates = reqs.iter().filter(|r| matches!(r, OrderRequest::New { .. })).count().min(chunk);
        let cancels = reqs.iter().filter(|r| matches!(r, OrderRequest::Cancel { .. })).count().min(chunk);
        for (n, per) in [(creates, cost::BATCH_CREATE_PER_ORDER), (cancels, cost::BATCH_CANCEL_PER_ORDER)] {
            if n as u32 * per > cap {
                return Err(SubmitError::BatchTooLarge { orders: n, cost: n as u32 * per, capacity: cap });
            }
        }
        let mut batch = Vec::with_capacity(chunk);
        for r in reqs.iter().filter(|r| matches!(r, OrderRequest::New { .. })) {
            if let Some(Ok(k)) = self.core.new_order(r) {
                batch.push(k);
            }
            if batch.len() == chunk {
                self.core.queue.push_back(Req::new(Op::BatchCreate(std::mem::take(&mut batch))));
            }
        }
        if !batch.is_empty() {
            self.core.queue.push_back(Req::new(Op::BatchCreate(std::mem::take(&mut batch))));
        }
        for r in reqs {
            if let OrderRequest::Cancel { strategy, order_ref } = *r {
                if let Ok(k) = self.core.find(OpKind::BatchCancel, strategy, order_ref) {
                    batch.push(k);
                }
            }
            if batch.len() == chunk {
                self.core.queue.push_back(Req::new(Op::BatchCancel(std::mem::take(&mut batch))));
            }
        }
        if !batch.is_empty() {
            self.core.queue.push_back(Req::new(Op::BatchCancel(batch)));
        }
        self.dispatch(now_ns);
        Ok(())
    }

    /// Amends order `order_ref` of `strategy` to `yes_price` and a new **total** size `total`
    /// (filled + desired resting, hundredths; `kalshi-protocol.md` §3.6). Held until the order's
    /// id is known.
    pub fn amend(
        &mut self,
        strategy: u16,
        order_ref: OrderRef,
        yes_price: Price,
        total: Qty,
        now_ns: u64,
    ) -> Result<(), SubmitError> {
        self.core.begin_poll();
        let key = self.core.find(OpKind::Amend, strategy, order_ref)?;
        self.core.queue.push_back(Req::new(Op::Amend { key, yes_price, total }));
        self.dispatch(now_ns);
        Ok(())
    }

    /// Decreases order `order_ref` of `strategy` ([`Decrease::By`] or [`Decrease::To`],
    /// hundredths). Held until the order's id is known.
    pub fn decrease(
        &mut self,
        strategy: u16,
        order_ref: OrderRef,
        by: Decrease,
        now_ns: u64,
    ) -> Result<(), SubmitError> {
        self.core.begin_poll();
        let key = self.core.find(OpKind::Decrease, strategy, order_ref)?;
        self.core.queue.push_back(Req::new(Op::Decrease { key, by }));
        self.dispatch(now_ns);
        Ok(())
    }

    /// Cancels every resting order of the account (`DELETE /portfolio/events/orders`, all
    /// shards). Orders the gateway knew resting when it was written are reported cancelled on
    /// success; the rest is left to `user_order` messages.
    pub fn cancel_all(&mut self, now_ns: u64) {
        self.core.begin_poll();
        self.core.queue.push_back(Req::new(Op::CancelAll(Vec::new())));
        self.dispatch(now_ns);
    }

    /// A `user_order` from the WebSocket (parse one with
    /// [`super::orders::parse_user_order`]). Returns false when it names no tracked order.
    pub fn on_user_order(&mut self, u: &UserOrderUpdate<'_>, now_ns: u64) -> bool {
        self.core.begin_poll();
        self.core.orders.on_user_order(u, now_ns, &mut self.core.events)
    }

    /// A `fill` from the WebSocket (parse one with [`super::orders::parse_fill`]). Returns
    /// false when it names no tracked order.
    pub fn on_fill(&mut self, f: &FillReport<'_>, now_ns: u64) -> bool {
        self.core.begin_poll();
        self.core.orders.on_fill(f, now_ns, &mut self.core.events)
    }

    // ---- driving ----

    /// Drives every connection without blocking (connects, handshakes, writes, reads, probes
    /// idle connections every `idle_check`, times out requests), sends what the token buckets
    /// allow, retires finished orders, and returns the events since the previous call
    /// (including those produced by `submit`, `on_user_order`, ... in between). The slice is
    /// valid until the next call on the gateway.
    pub fn poll(&mut self, now_ns: u64) -> &[GatewayEvent] {
        self.core.begin_poll();
        for i in 0..self.conns.len() {
            self.drive(i, now_ns);
        }
        self.dispatch(now_ns);
        self.core.orders.retire(now_ns, self.core.retain_ns);
        self.core.returned = self.core.events.len();
        &self.core.events
    }

    /// The state of order `order_ref` of `strategy`.
    pub fn order(&self, strategy: u16, order_ref: OrderRef) -> Option<&OrderRecord> {
        self.core.orders.get(self.core.orders.find_ref(strategy, order_ref)?)
    }

    /// Counters.
    pub fn stats(&self) -> &RestStats {
        &self.core.stats
    }

    /// Connections handshaken and ready or busy.
    pub fn connections_ready(&self) -> usize {
        self.conns.iter().filter(|c| matches!(c.state, ConnState::Idle | ConnState::Busy)).count()
    }

    /// Requests waiting to be written (for tokens, a connection, an order id or a backoff).
    pub fn queued(&self) -> usize {
        self.core.queue.len()
    }

    /// Requests written and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.conns.iter().filter(|c| c.req.is_some()).count()
    }

    /// Earliest time a queued request becomes sendable by the clock alone (a backoff ending or
    /// tokens refilling), unix ns; `None` when nothing waits on time.
    pub fn next_wake_ns(&mut self, now_ns: u64) -> Option<u64> {
        self.core.next_wake_ns(now_ns)
    }

    /// After a hole in the private stream (a reconnect): lists every acknowledged order that is
    /// not terminal (`GET /portfolio/orders` per market, no resends), so fills and cancels the
    /// stream missed come out as [`GatewayEvent::Exec`] events; each listed order ends in one
    /// [`GatewayEvent::Reconciled`] (or `Failed`). Returns how many orders are listed.
    pub fn resync(&mut self, now_ns: u64) -> usize {
        self.core.resync(now_ns)
    }

    /// Reads the account's positions (`GET /portfolio/positions`, every page): one
    /// [`GatewayEvent::Position`] per market of the universe the venue lists, then
    /// [`GatewayEvent::PositionsRead`] (or a `Failed` with [`OpKind::GetPositions`]).
    pub fn read_positions(&mut self) {
        self.core.queue.push_back(Req::new(Op::GetPositions { cursor: None }));
    }

    /// Markets in the universe the gateway trades.
    pub fn markets(&self) -> usize {
        self.core.markets.len()
    }

    /// Reads (listings, positions) queued or in flight.
    pub fn reads_outstanding(&self) -> usize {
        self.core.queue.iter().filter(|r| r.op.is_read()).count()
            + self.conns.iter().filter(|c| c.req.as_ref().is_some_and(|r| r.op.is_read())).count()
    }

    /// True when an order of ours in `market` is not terminal.
    pub fn has_live_orders(&self, market: MarketId) -> bool {
        self.core
            .orders
            .keys()
            .into_iter()
            .any(|k| live_order(&self.core.orders, k).is_some_and(|r| r.order.market == market))
    }

    /// Whole tokens in `bucket` at `now_ns`.
    pub fn tokens(&mut self, bucket: Bucket, now_ns: u64) -> u32 {
        self.core.limiter.available(bucket, now_ns)
    }

    /// Writes what can be written: queued requests onto idle connections. A connection not
    /// probed within `idle_check` (no poll for a while) is probed first, so a request is not
    /// written into a connection the server has already closed.
    fn dispatch(&mut self, now_ns: u64) {
        loop {
            let Some(i) = self.conns.iter().position(|c| c.state == ConnState::Idle) else { return };
            if self.core.queue.is_empty() {
                return;
            }
            if now_ns.saturating_sub(self.conns[i].last_check_ns) >= self.idle_check_ns {
                self.drive(i, now_ns);
                if self.conns[i].state != ConnState::Idle {
                    continue;
                }
            }
            let Some(mut req) = self.core.take_sendable(now_ns) else { return };
            let c = &mut self.conns[i];
            c.wpos = 0;
            if !self.core.encode(&mut req, now_ns, &mut c.wbuf) {
                continue;
            }
            c.sent_ns = now_ns;
            c.state = ConnState::Busy;
            stamp_write(c, &req, &self.clock, &mut self.latency);
            c.req = Some(req);
            if let Err(e) = write_pending(c) {
                self.fail(i, now_ns, format!("write: {e}"));
            }
        }
    }

    fn connect(&mut self, i: usize, now_ns: u64) {
        self.core.stats.connects += 1;
        let addr = self.addrs[(self.core.stats.connects as usize - 1) % self.addrs.len()];
        let sock = match mio::net::TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return self.fail(i, now_ns, format!("connect {addr}: {e}")),
        };
        let _ = sock.set_nodelay(true);
        let tls = match rustls::ClientConnection::new(self.tls.clone(), self.server_name.clone()) {
            Ok(t) => t,
            Err(e) => return self.fail(i, now_ns, format!("TLS setup: {e}")),
        };
        let c = &mut self.conns[i];
        c.stream = Some(TlsStream::new(tls, sock));
        c.state = ConnState::Connecting { since_ns: now_ns };
        c.rlen = 0;
    }

    /// Closes connection `i` after a failure; a request in flight is lost.
    fn fail(&mut self, i: usize, now_ns: u64, why: String) {
        self.core.stats.connection_failures += 1;
        self.core.stats.last_error = Some(why);
        let c = &mut self.conns[i];
        c.failures += 1;
        let retry = now_ns + self.core.backoff_ns(c.failures);
        self.close(i, retry, Lost::Connection, now_ns);
    }

    /// Closes connection `i` (reconnect at `retry_at_ns`); a request in flight is lost for
    /// `why`.
    fn close(&mut self, i: usize, retry_at_ns: u64, why: Lost, now_ns: u64) {
        let c = &mut self.conns[i];
        c.stream = None;
        c.state = ConnState::Down { retry_at_ns };
        c.rlen = 0;
        c.wpos = 0;
        c.wbuf.clear();
        if let Some(req) = c.req.take() {
            self.core.on_lost(req, why, now_ns);
        }
    }

    fn drive(&mut self, i: usize, now_ns: u64) {
        match self.conns[i].state {
            ConnState::Down { retry_at_ns } => {
                if now_ns >= retry_at_ns {
                    self.connect(i, now_ns);
                }
            }
            ConnState::Connecting { since_ns } => {
                let c = &mut self.conns[i];
                let Some(s) = c.stream.as_mut() else { return self.fail(i, now_ns, "no stream".into()) };
                let r = match s.flush() {
                    Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
                    _ => probe(s, &mut c.rbuf),
                };
                match r {
                    Ok(()) if !s.is_handshaking() => {
                        c.state = ConnState::Idle;
                        c.failures = 0;
                        c.last_check_ns = now_ns;
                        self.core.stats.connected += 1;
                    }
                    Ok(()) if now_ns.saturating_sub(since_ns) > self.connect_timeout_ns => {
                        self.fail(i, now_ns, "TLS handshake timed out".into());
                    }
                    Ok(()) => {}
                    Err(e) => self.fail(i, now_ns, format!("TLS handshake: {e}")),
                }
            }
            ConnState::Idle => {
                let c = &mut self.conns[i];
                if now_ns.saturating_sub(c.last_check_ns) < self.idle_check_ns {
                    return;
                }
                c.last_check_ns = now_ns;
                let Some(s) = c.stream.as_mut() else { return self.fail(i, now_ns, "no stream".into()) };
                if probe(s, &mut c.rbuf).is_err() {
                    // The server closed the keep-alive connection (or sent what we never asked
                    // for): open a new one now, before it is needed.
                    self.core.stats.server_closes += 1;
                    self.close(i, now_ns, Lost::Connection, now_ns);
                    self.connect(i, now_ns);
                }
            }
            ConnState::Busy => self.pump(i, now_ns),
        }
    }

    fn pump(&mut self, i: usize, now_ns: u64) {
        let max = self.max_response;
        let c = &mut self.conns[i];
        if let Err(e) = write_pending(c) {
            return self.fail(i, now_ns, format!("write: {e}"));
        }
        let outcome = read_response(c, max);
        match outcome {
            Pump::Waiting => {
                if now_ns.saturating_sub(self.conns[i].sent_ns) > self.request_timeout_ns {
                    // Close it: a late answer must not be taken for the next request's.
                    self.core.stats.last_error = Some("request timed out".into());
                    self.close(i, now_ns, Lost::Timeout, now_ns);
                }
            }
            Pump::Failed(why) => self.fail(i, now_ns, why),
            Pump::Done { status, head_len, body_len, close, extra } => {
                let c = &mut self.conns[i];
                let req = c.req.take().expect("a busy connection has a request");
                if matches!(req.op, Op::Create(_) | Op::BatchCreate(_)) && c.written_raw != 0 {
                    self.latency.record(Hop::OrderRoundTrip, self.clock.ns(c.written_raw, self.clock.raw()));
                }
                c.served += 1;
                c.rlen = 0;
                c.state = ConnState::Idle;
                c.last_check_ns = now_ns;
                let body = &c.rbuf[head_len..head_len + body_len];
                self.core.on_response(req, status, body, now_ns);
                if close || extra {
                    self.close(i, now_ns, Lost::Connection, now_ns);
                    self.connect(i, now_ns);
                }
            }
        }
    }
}

/// Stamps the moment a request's bytes go to the socket and, for a create, records its
/// tick-to-trade. Stamped as the write starts, not when the call returns: on a shared core the
/// exchange thread the write wakes may preempt the writer inside the syscall and answer before
/// it resumes, which would make the round trip look shorter than the wire.
#[inline]
fn stamp_write(c: &mut Conn, req: &Req, clock: &Clock, latency: &mut Latency) {
    c.written_raw = clock.raw();
    if req.t0 != 0 && matches!(req.op, Op::Create(_)) {
        latency.record(Hop::TickToTrade, clock.ns(req.t0, c.written_raw));
    }
}

/// Writes what is left of the connection's request.
fn write_pending(c: &mut Conn) -> io::Result<()> {
    let Some(s) = c.stream.as_mut() else { return Err(io::ErrorKind::NotConnected.into()) };
    while c.wpos < c.wbuf.len() {
        match s.write(&c.wbuf[c.wpos..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => c.wpos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    match s.flush() {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(()),
    }
}

/// One non-blocking read on a connection that expects nothing: `Ok` when there is nothing to
/// read, `Err` on EOF, an error or unexpected bytes.
fn probe(s: &mut TlsStream, buf: &mut [u8]) -> io::Result<()> {
    match s.read(buf) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
        Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
        Ok(_) => Err(io::Error::new(io::ErrorKind::InvalidData, "unsolicited bytes from the server")),
    }
}

/// Reads what has arrived and parses it.
fn read_response(c: &mut Conn, max: usize) -> Pump {
    let Some(s) = c.stream.as_mut() else { return Pump::Failed("no stream".into()) };
    loop {
        if c.rlen == c.rbuf.len() {
            if c.rbuf.len() >= max {
                return Pump::Failed(format!("response over {max} bytes"));
            }
            let n = (c.rbuf.len() * 2).min(max);
            c.rbuf.resize(n, 0);
        }
        match s.read(&mut c.rbuf[c.rlen..]) {
            Ok(0) => return Pump::Failed("connection closed by the server".into()),
            Ok(n) => c.rlen += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Pump::Waiting,
            Err(e) => return Pump::Failed(format!("read: {e}")),
        }
        match parse_response(&c.rbuf[..c.rlen], max) {
            Ok(Some(r)) => {
                return Pump::Done {
                    status: r.status,
                    head_len: r.head_len,
                    body_len: r.body_len,
                    close: r.close,
                    extra: c.rlen > r.total_len(),
                }
            }
            Ok(None) => {}
            Err(e) => return Pump::Failed(e.to_string()),
        }
    }
}

/// The V2 create-order fields of order `o` in market `m` (single and batched creates alike).
#[inline]
fn order_fields<'a>(m: &'a MarketInfo, o: &NewOrder, session: u32) -> NewOrderFields<'a> {
    NewOrderFields {
        ticker: m.ticker.as_str(),
        session,
        slot: o.strategy,
        order_ref: o.order_ref,
        side: o.side,
        count: o.qty,
        price: o.yes_price,
        tif: o.tif,
        post_only: o.post_only,
        exchange_index: o.exchange_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::BackgroundSigner;
    use strike_sdk::order::TimeInForce;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;
    const T0: u64 = 1_800_000_000 * S;

    fn key() -> Arc<SigningKey> {
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Arc::new(SigningKey::Ed25519(ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()))
    }

    fn metas() -> Vec<MarketMeta> {
        let mut a = MarketMeta::bare(MarketId(0), Ticker::new("KXHIGHNY-26AUG12-T90").unwrap());
        a.exchange_index = 0;
        let mut b = MarketMeta::bare(MarketId(1), Ticker::new("KXBTC-26AUG12-B100000").unwrap());
        b.exchange_index = 2;
        vec![a, b]
    }

    /// A gateway whose core is driven by hand (no connection is ever made).
    struct Rig {
        gw: RestGateway,
        _signer: BackgroundSigner,
    }

    fn rig(tier: Tier) -> Rig {
        let k = key();
        let signer = BackgroundSigner::spawn(Arc::clone(&k), Duration::from_secs(3600)).unwrap();
        let mut cfg =
            RestConfig::new("https://localhost:9/trade-api/v2", crate::feed::ws::WsFeedConfig::webpki_tls(), "key-1");
        cfg.connect_addr = Some("127.0.0.1:9".parse().unwrap());
        cfg.session_id = 0xabcd_0001;
        cfg.tier = tier;
        cfg.backoff_min = Duration::from_millis(100);
        cfg.backoff_max = Duration::from_secs(1);
        cfg.max_retries = 3;
        let gw = RestGateway::new(cfg, &metas(), signer.reader(), k).unwrap();
        Rig { gw, _signer: signer }
    }

    fn new_req(order_ref: u64, market: u32, qty: i64) -> OrderRequest {
        OrderRequest::New {
            strategy: 3,
            order_ref: OrderRef(order_ref),
            market: MarketId(market),
            side: BookSide::Bid,
            yes_price: Price(5600),
            qty: Qty::contracts(qty),
            tif: TimeInForce::Gtc,
            post_only: false,
            tag: 9,
            recv_ns: 0,
            t0: 0,
        }
    }

    impl Rig {
        /// Queues `req` (connections are all down, so nothing is written).
        fn submit(&mut self, req: OrderRequest, now: u64) {
            self.gw.submit(&req, now).unwrap();
        }

        /// Takes and encodes the next sendable request, as a connection would.
        fn send(&mut self, now: u64) -> Option<(Req, String)> {
            let mut req = self.gw.core.take_sendable(now)?;
            let mut out = Vec::new();
            assert!(self.gw.core.encode(&mut req, now, &mut out));
            Some((req, String::from_utf8(out).unwrap()))
        }

        fn answer(&mut self, req: Req, status: u16, body: &str, now: u64) {
            self.gw.core.on_response(req, status, body.as_bytes(), now);
        }

        fn events(&mut self) -> Vec<GatewayEvent> {
            let e = self.gw.core.events.clone();
            self.gw.core.events.clear();
            e
        }
    }

    fn body_of(http: &str) -> serde_json::Value {
        serde_json::from_str(http.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    }

    fn head_line(http: &str) -> &str {
        http.lines().next().unwrap()
    }

    fn updates(ev: &[GatewayEvent]) -> Vec<OrderUpdate> {
        ev.iter()
            .filter_map(|e| match e.exec() {
                Some(ExecEvent::Update { update, .. }) => Some(update),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_base_url("https://external-api.kalshi.com/trade-api/v2").unwrap(),
            ("external-api.kalshi.com".into(), 443, "external-api.kalshi.com".into())
        );
        assert_eq!(
            parse_base_url("https://localhost:8443/trade-api/v2/").unwrap(),
            ("localhost".into(), 8443, "localhost:8443".into())
        );
        assert!(parse_base_url("http://localhost/trade-api/v2").is_err());
        assert!(parse_base_url("https://localhost/trade-api/v1").is_err());
        assert!(parse_base_url("https://localhost:x/trade-api/v2").is_err());
    }

    #[test]
    fn create_request_is_the_v2_shape_with_presigned_headers() {
        let mut r = rig(Tier::Basic);
        r.submit(new_req(1, 1, 10), T0);
        let (req, http) = r.send(T0).unwrap();
        assert!(matches!(req.op, Op::Create(_)));
        assert_eq!(head_line(&http), "POST /trade-api/v2/portfolio/events/orders HTTP/1.1");
        for h in [
            "Host: localhost:9\r\n",
            "KALSHI-ACCESS-KEY: key-1\r\n",
            "KALSHI-ACCESS-TIMESTAMP: ",
            "KALSHI-ACCESS-SIGNATURE: ",
            "Content-Type: application/json\r\n",
        ] {
            assert!(http.contains(h), "{h:?} missing in {http}");
        }
        let body = body_of(&http);
        assert_eq!(body["exchange_index"], 2);
        assert_eq!(body["client_order_id"], "strk-abcd0001-03-0000000000000001");
        assert_eq!(body["count"], "10.00");
        let len: usize = http.split("Content-Length: ").nth(1).unwrap().split("\r\n").next().unwrap().parse().unwrap();
        assert_eq!(len, http.split("\r\n\r\n").nth(1).unwrap().len());
        let ev = r.events();
        let sent = ev.iter().find_map(|e| match e {
            GatewayEvent::Sent { op: OpKind::Create, header_age_ns, attempt, .. } => Some((*header_age_ns, *attempt)),
            _ => None,
        });
        assert_eq!(sent.map(|s| s.1), Some(1));
        let rec = r.gw.order(3, OrderRef(1)).unwrap();
        assert_eq!((rec.phase, rec.sends, rec.sent_ns), (Phase::Sent, 1, T0));
        assert_eq!(rec.header_age_ns, sent.unwrap().0);
        // The created answer acks it.
        r.answer(
            req,
            201,
            r#"{"order_id":"o-1","client_order_id":"strk-abcd0001-03-0000000000000001","fill_count":"0.00","remaining_count":"10.00","ts_ms":1}"#,
            T0 + MS,
        );
        let u = updates(&r.events());
        assert_eq!((u[0].status, u[0].remaining), (OrderStatus::Resting, Qty::contracts(10)));
        assert_eq!(r.gw.order(3, OrderRef(1)).unwrap().order_id.unwrap().as_str(), "o-1");
    }

    #[test]
    fn cancel_waits_for_the_order_id_then_is_signed_now() {
        let mut r = rig(Tier::Basic);
        r.submit(new_req(1, 1, 10), T0);
        let (create, _) = r.send(T0).unwrap();
        r.submit(OrderRequest::Cancel { strategy: 3, order_ref: OrderRef(1) }, T0);
        assert!(r.send(T0).is_none(), "no order id yet");
        r.answer(create, 201, r#"{"order_id":"o-1","fill_count":"0.00","remaining_count":"10.00","ts_ms":1}"#, T0);
        let (cancel, http) = r.send(T0 + MS).unwrap();
        assert_eq!(
            head_line(&http),
            "DELETE /trade-api/v2/portfolio/events/orders/o-1?exchange_index=2&market_ticker=KXBTC-26AUG12-B100000 HTTP/1.1"
        );
        assert!(http.contains("Content-Length: 0\r\n"));
        assert!(http.contains(&format!("KALSHI-ACCESS-TIMESTAMP: {}\r\n", (T0 + MS) / MS)));
        r.events();
        r.answer(
            cancel,
            200,
            r#"{"order_id":"o-1","client_order_id":null,"reduced_by":"10.00","ts_ms":2}"#,
            T0 + 2 * MS,
        );
        let u = updates(&r.events());
        assert_eq!(u.last().unwrap().status, OrderStatus::Cancelled);
    }

    #[test]
    fn cancel_of_a_create_never_sent_drops_it() {
        let mut r = rig(Tier::Basic);
        // Drain the shard-0 bucket so the create waits.
        while r.gw.core.limiter.try_take(Bucket::write(0), 10, T0) {}
        r.submit(new_req(1, 0, 1), T0);
        assert!(r.send(T0).is_none());
        r.submit(OrderRequest::Cancel { strategy: 3, order_ref: OrderRef(1) }, T0);
        assert_eq!(r.gw.queued(), 0);
        assert_eq!(updates(&r.events()).last().unwrap().status, OrderStatus::Cancelled);
        assert_eq!(r.gw.stats().creates_sent, 0);
    }

    #[test]
    fn orders_that_do_not_fit_are_held_until_tokens_refill() {
        // Basic: 100 write tokens/s, capacity 100 (1 s): ten creates at once, the eleventh
        // waits 100 ms; another shard is not held up.
        let mut r = rig(Tier::Basic);
        for i in 0..12 {
            r.submit(new_req(i + 1, 0, 1), T0);
        }
        r.submit(new_req(100, 1, 1), T0);
        let mut sent = Vec::new();
        while let Some((req, _)) = r.send(T0) {
            sent.push(req);
        }
        assert_eq!(sent.len(), 11, "10 on shard 0 + 1 on shard 2");
        assert_eq!(r.gw.queued(), 2);
        assert_eq!(r.gw.stats().token_waits, 1, "the queue head waits, FIFO behind it");
        assert_eq!(r.gw.next_wake_ns(T0), Some(T0 + 100 * MS));
        assert!(r.send(T0 + 99 * MS).is_none());
        assert!(r.send(T0 + 100 * MS).is_some());
        assert!(r.send(T0 + 100 * MS).is_none());
        assert!(r.send(T0 + 200 * MS).is_some());
        assert_eq!(r.gw.queued(), 0);
        // Nothing was refused: held, never sent to be rejected.
        assert!(updates(&r.events()).is_empty());
    }

    #[test]
    fn rate_limited_create_is_retried_with_the_same_client_order_id_and_backoff() {
        let mut r = rig(Tier::Premier);
        r.submit(new_req(1, 0, 1), T0);
        let (req, first) = r.send(T0).unwrap();
        r.answer(req, 429, r#"{"error":"too many requests"}"#, T0 + MS);
        assert_eq!(r.gw.stats().rate_limited, 1);
        // Backoff 100 ms, and our bucket was drained (10 tokens at 1000/s take 10 ms).
        assert!(r.send(T0 + 50 * MS).is_none());
        let (req, second) = r.send(T0 + 101 * MS).unwrap();
        assert_eq!(body_of(&first)["client_order_id"], body_of(&second)["client_order_id"]);
        r.answer(req, 429, r#"{"error":"too many requests"}"#, T0 + 102 * MS);
        assert!(r.send(T0 + 250 * MS).is_none(), "second backoff is 200 ms");
        let (req, _) = r.send(T0 + 303 * MS).unwrap();
        r.answer(
            req,
            201,
            r#"{"order_id":"o-1","fill_count":"0.00","remaining_count":"1.00","ts_ms":1}"#,
            T0 + 304 * MS,
        );
        let ev = r.events();
        let attempts: Vec<u32> = ev
            .iter()
            .filter_map(|e| match e {
                GatewayEvent::Sent { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .collect();
        assert_eq!(attempts, [1, 2, 3]);
        assert_eq!(updates(&ev).last().unwrap().status, OrderStatus::Resting);
        assert_eq!(r.gw.order(3, OrderRef(1)).unwrap().sends, 3);
    }

    #[test]
    fn rate_limited_past_the_retry_limit_is_a_rate_limit_reject() {
        let mut r = rig(Tier::Prestige);
        r.submit(new_req(1, 0, 1), T0);
        let mut now = T0;
        for _ in 0..4 {
            now += 2 * S;
            let (req, _) = r.send(now).unwrap();
            r.answer(req, 429, r#"{"error":"too many requests"}"#, now);
        }
        let ev = r.events();
        let u = updates(&ev);
        assert_eq!((u[0].status, u[0].reason), (OrderStatus::Rejected, RejectReason::RateLimit));
        assert!(ev.iter().any(|e| matches!(e, GatewayEvent::Failed { error, .. } if error.status == 429)));
    }

    #[test]
    fn error_shapes_become_rejects_with_kalshi_code_and_message() {
        let mut r = rig(Tier::Basic);
        let bodies = [
            (
                400,
                r#"{"code":"invalid_order","message":"post only order would cross the book","details":"POST_ONLY_CROSS"}"#,
            ),
            (400, r#"{"error":{"code":"insufficient_balance","message":"order could cost too much"}}"#),
        ];
        for (i, (status, body)) in bodies.iter().enumerate() {
            r.submit(new_req(i as u64 + 1, 0, 1), T0);
            let (req, _) = r.send(T0).unwrap();
            r.answer(req, *status, body, T0);
        }
        let ev = r.events();
        let fails: Vec<ApiError> = ev
            .iter()
            .filter_map(|e| match e {
                GatewayEvent::Failed { op: OpKind::Create, error, .. } => Some(*error),
                _ => None,
            })
            .collect();
        assert_eq!(fails[0].code.as_str(), "invalid_order");
        assert_eq!(fails[0].details.as_str(), "POST_ONLY_CROSS");
        assert_eq!(fails[1].code.as_str(), "insufficient_balance");
        assert_eq!(fails[1].message.as_str(), "order could cost too much");
        let u = updates(&ev);
        assert_eq!(u.iter().map(|u| u.status).collect::<Vec<_>>(), [OrderStatus::Rejected; 2]);
        assert_eq!(u[1].reason, RejectReason::Exposure);
    }

    #[test]
    fn timeout_reconciles_and_resends_only_when_absent() {
        let mut r = rig(Tier::Basic);
        r.submit(new_req(1, 0, 5), T0);
        r.submit(new_req(2, 0, 5), T0);
        let (a, _) = r.send(T0).unwrap();
        let (b, _) = r.send(T0).unwrap();
        // Both get no answer: one was applied by the exchange, the other never arrived.
        r.gw.core.on_lost(a, Lost::Timeout, T0 + 5 * S);
        r.gw.core.on_lost(b, Lost::Connection, T0 + 5 * S);
        assert_eq!(r.gw.order(3, OrderRef(1)).unwrap().phase, Phase::Reconciling);
        // One listing for the market, signed now, GET with the query outside the signature.
        let (get, http) = r.send(T0 + 5 * S).unwrap();
        assert!(r.send(T0 + 5 * S).is_none(), "one read covers both orders");
        let want = format!(
            "GET /trade-api/v2/portfolio/orders?ticker=KXHIGHNY-26AUG12-T90&min_ts={}&limit=200 HTTP/1.1",
            T0 / S - 2
        );
        assert_eq!(head_line(&http), want);
        assert!(!http.contains("Content-Length"));
        // A first page with neither, and a cursor: the search goes on.
        r.answer(
            get,
            200,
            r#"{"orders":[{"order_id":"x","client_order_id":"someone-else","status":"resting"}],"cursor":"1"}"#,
            T0 + 5 * S,
        );
        let (get, http) = r.send(T0 + 5 * S + MS).unwrap();
        assert!(head_line(&http).contains("&cursor=1 HTTP/1.1"), "{http}");
        r.answer(
            get,
            200,
            r#"{"orders":[{"order_id":"o-1","client_order_id":"strk-abcd0001-03-0000000000000001","status":"resting","fill_count_fp":"2.00","remaining_count_fp":"3.00"}],"cursor":""}"#,
            T0 + 5 * S + 2 * MS,
        );
        let ev = r.events();
        assert!(ev.contains(&GatewayEvent::Reconciled {
            strategy: 3,
            order_ref: OrderRef(1),
            found: true,
            resent: false
        }));
        assert!(ev.contains(&GatewayEvent::Reconciled {
            strategy: 3,
            order_ref: OrderRef(2),
            found: false,
            resent: true
        }));
        let one = r.gw.order(3, OrderRef(1)).unwrap();
        assert_eq!((one.phase, one.filled, one.remaining), (Phase::Resting, Qty::contracts(2), Qty::contracts(3)));
        assert_eq!(one.sends, 1, "found: never sent again");
        // The absent one goes again with the same client_order_id.
        let (again, http) = r.send(T0 + 6 * S).unwrap();
        assert!(matches!(again.op, Op::Create(_)));
        assert_eq!(body_of(&http)["client_order_id"], "strk-abcd0001-03-0000000000000002");
        assert_eq!(r.gw.stats().resends, 1);
        assert_eq!(r.gw.order(3, OrderRef(2)).unwrap().sends, 2);
    }

    #[test]
    fn no_resend_when_a_user_order_named_it_during_reconciliation() {
        let mut r = rig(Tier::Basic);
        r.submit(new_req(1, 0, 5), T0);
        let (a, _) = r.send(T0).unwrap();
        r.gw.core.on_lost(a, Lost::Timeout, T0 + 5 * S);
        let (get, _) = r.send(T0 + 5 * S).unwrap();
        let u = UserOrderUpdate {
            order_id: "o-1",
            client_order_id: "strk-abcd0001-03-0000000000000001",
            status: VenueStatus::Resting,
            fill_count: Qty::ZERO,
            remaining_count: Qty::contracts(5),
            ts_ms: 1,
        };
        assert!(r.gw.on_user_order(&u, T0 + 5 * S));
        // REST lags: the listing does not show it yet. No resend.
        r.answer(get, 200, r#"{"orders":[],"cursor":""}"#, T0 + 5 * S + MS);
        assert!(r.send(T0 + 6 * S).is_none());
        assert_eq!(r.gw.stats().resends, 0);
        assert_eq!(r.gw.order(3, OrderRef(1)).unwrap().phase, Phase::Resting);
    }

    #[test]
    fn server_errors_and_duplicates_reconcile_instead_of_rejecting() {
        let mut r = rig(Tier::Basic);
        r.submit(new_req(1, 0, 5), T0);
        r.submit(new_req(2, 0, 5), T0);
        let (a, _) = r.send(T0).unwrap();
        let (b, _) = r.send(T0).unwrap();
        r.answer(a, 503, r#"{"code":"EXCHANGE_UNAVAILABLE","message":"try later"}"#, T0);
        r.answer(b, 409, r#"{"error":{"code":"order_already_exists","message":"dup"}}"#, T0);
        assert!(updates(&r.events()).is_empty(), "neither is rejected");
        let (get, _) = r.send(T0 + MS).unwrap();
        assert!(matches!(&get.op, Op::GetOrders { orders, .. } if orders.len() == 2));
    }

    #[test]
    fn batches_bill_the_unscoped_bucket_and_match_items_by_client_order_id() {
        let mut r = rig(Tier::Basic);
        let reqs: Vec<OrderRequest> = (1..=3).map(|i| new_req(i, 1, 1)).collect();
        r.gw.submit_batch(&reqs, T0).unwrap();
        let (batch, http) = r.send(T0).unwrap();
        assert_eq!(head_line(&http), "POST /trade-api/v2/portfolio/events/orders/batched HTTP/1.1");
        let body = body_of(&http);
        assert_eq!(body["orders"].as_array().unwrap().len(), 3);
        assert!(body["orders"].as_array().unwrap().iter().all(|o| o["exchange_index"] == 2));
        assert_eq!(r.gw.tokens(Bucket::BATCH, T0), 70);
        assert_eq!(r.gw.tokens(Bucket::write(2), T0), 100);
        // Items answered out of order; one refused.
        r.answer(
            batch,
            201,
            r#"{"orders":[
              {"order_id":"o-3","client_order_id":"strk-abcd0001-03-0000000000000003","fill_count":"1.00","remaining_count":"0.00","average_fill_price":"0.5500","average_fee_paid":"0.0200","ts_ms":5,"error":null},
              {"order_id":null,"client_order_id":"strk-abcd0001-03-0000000000000002","error":{"code":"invalid_order","message":"bad"}},
              {"order_id":"o-1","client_order_id":"strk-abcd0001-03-0000000000000001","fill_count":"0.00","remaining_count":"1.00","ts_ms":5,"error":null}]}"#,
            T0 + MS,
        );
        let ev = r.events();
        let st: Vec<(u64, OrderStatus)> = updates(&ev).iter().map(|u| (u.order_ref.0, u.status)).collect();
        assert!(st.contains(&(1, OrderStatus::Resting)));
        assert!(st.contains(&(2, OrderStatus::Rejected)));
        assert!(st.contains(&(3, OrderStatus::Filled)));
        let fill = ev.iter().find_map(|e| match e.exec() {
            Some(ExecEvent::Fill { fill, .. }) => Some(fill),
            _ => None,
        });
        assert_eq!(fill.map(|f| (f.yes_price, f.fee)), Some((Price(5500), strike_sdk::num::Money(20_000))));
        // Batched cancel of the resting one.
        r.gw.submit_batch(&[OrderRequest::Cancel { strategy: 3, order_ref: OrderRef(1) }], T0 + 2 * MS).unwrap();
        let (bc, http) = r.send(T0 + 2 * MS).unwrap();
        assert_eq!(head_line(&http), "DELETE /trade-api/v2/portfolio/events/orders/batched HTTP/1.1");
        assert_eq!(
            body_of(&http),
            serde_json::json!({"orders":[{"order_id":"o-1","exchange_index":2,"market_ticker":"KXBTC-26AUG12-B100000"}]})
        );
        r.answer(bc, 200, r#"{"orders":[{"order_id":"o-1","client_order_id":"strk-abcd0001-03-0000000000000001","reduced_by":"1.00","ts_ms":6,"error":null}]}"#, T0 + 3 * MS);
        assert_eq!(updates(&r.events()).last().unwrap().status, OrderStatus::Cancelled);
    }

    #[test]
    fn a_batch_larger_than_the_bucket_is_refused() {
        let mut r = rig(Tier::Basic);
        r.gw.core.max_batch = 50;
        let reqs: Vec<OrderRequest> = (1..=11).map(|i| new_req(i, 0, 1)).collect();
        assert_eq!(
            r.gw.submit_batch(&reqs, T0),
            Err(SubmitError::BatchTooLarge { orders: 11, cost: 110, capacity: 100 })
        );
    }

    #[test]
    fn amend_and_decrease_requests() {
        let mut r = rig(Tier::Basic);
        r.submit(new_req(1, 0, 10), T0);
        let (c, _) = r.send(T0).unwrap();
        r.answer(c, 201, r#"{"order_id":"o-1","fill_count":"0.00","remaining_count":"10.00","ts_ms":1}"#, T0);
        r.gw.amend(3, OrderRef(1), Price(5700), Qty::contracts(12), T0 + MS).unwrap();
        let (a, http) = r.send(T0 + MS).unwrap();
        assert_eq!(head_line(&http), "POST /trade-api/v2/portfolio/events/orders/o-1/amend HTTP/1.1");
        assert_eq!(
            body_of(&http),
            serde_json::json!({"ticker":"KXHIGHNY-26AUG12-T90","side":"bid","price":"0.5700","count":"12.00",
                               "client_order_id":"strk-abcd0001-03-0000000000000001","exchange_index":0})
        );
        r.answer(a, 200, r#"{"order_id":"o-1","client_order_id":"strk-abcd0001-03-0000000000000001","remaining_count":"12.00","fill_count":"0.00","ts_ms":2}"#, T0 + 2 * MS);
        let ev = r.events();
        assert!(ev.iter().any(|e| matches!(e.exec(), Some(ExecEvent::Update { yes_price: Price(5700), update, .. }) if update.remaining == Qty::contracts(12))));
        r.gw.decrease(3, OrderRef(1), Decrease::By(Qty::contracts(2)), T0 + 3 * MS).unwrap();
        let (d, http) = r.send(T0 + 3 * MS).unwrap();
        assert_eq!(head_line(&http), "POST /trade-api/v2/portfolio/events/orders/o-1/decrease HTTP/1.1");
        assert_eq!(
            body_of(&http),
            serde_json::json!({"reduce_by":"2.00","exchange_index":0,"market_ticker":"KXHIGHNY-26AUG12-T90"})
        );
        // A reduce_by whose answer is lost is not repeated.
        r.gw.core.on_lost(d, Lost::Timeout, T0 + 6 * S);
        assert!(r.send(T0 + 7 * S).is_none());
        assert!(r.events().iter().any(|e| matches!(e, GatewayEvent::Failed { op: OpKind::Decrease, error, .. } if error.code.as_str() == "outcome_unknown")));
        // reduce_to is repeated.
        r.gw.decrease(3, OrderRef(1), Decrease::To(Qty::contracts(4)), T0 + 8 * S).unwrap();
        let (d, _) = r.send(T0 + 8 * S).unwrap();
        r.gw.core.on_lost(d, Lost::Connection, T0 + 8 * S);
        let (d, http) = r.send(T0 + 9 * S).unwrap();
        assert!(http.contains("\"reduce_to\":\"4.00\""));
        r.answer(
            d,
            200,
            r#"{"order_id":"o-1","client_order_id":"strk-abcd0001-03-0000000000000001","remaining_count":"4.00","ts_ms":9}"#,
            T0 + 9 * S,
        );
        assert_eq!(updates(&r.events()).last().unwrap().remaining, Qty::contracts(4));
    }

    #[test]
    fn unknown_market_and_order_are_reported() {
        let mut r = rig(Tier::Basic);
        assert_eq!(r.gw.submit(&new_req(1, 7, 1), T0), Err(SubmitError::UnknownMarket(7)));
        let u = updates(&r.events());
        assert_eq!((u[0].status, u[0].reason), (OrderStatus::Rejected, RejectReason::UnknownMarket));
        assert!(matches!(
            r.gw.submit(&OrderRequest::Cancel { strategy: 3, order_ref: OrderRef(5) }, T0),
            Err(SubmitError::UnknownOrder { .. })
        ));
        assert!(matches!(r.events()[0], GatewayEvent::Failed { op: OpKind::Cancel, .. }));
    }
}
