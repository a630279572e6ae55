//! The REST server's exchange: one account trading with Kalshi's V2 order-entry semantics
//! (`kalshi-protocol.md` §3.3–3.7) against the books of a recording, matched by the
//! simulator's [`Matcher`]. I/O-free and clock-free: the `Exchange` takes parsed JSON requests
//! and market data, each stamped with its exchange time, and returns replies (status + JSON
//! body); [`super::rest`] does HTTP, authentication, latency and faults.
//!
//! ## What it owns, what the matcher owns
//! The exchange is Kalshi's wire layer around the [`Matcher`]: request validation, error codes
//! and bodies, order ids and `client_order_id`s, order statuses and the §3.5 order objects, the
//! account's balance and positions, and the private `fill` / `user_order` messages. Everything
//! about matching is the matcher's (see [`crate::matching`]'s module docs): the displayed book of
//! outside liquidity and our view of it, taking (FOK / IoC / GTC, post-only, self-trade
//! prevention), queue positions of resting orders under the configured
//! [`QueueModelKind`], maker fills from trade prints, level decreases and crossing liquidity,
//! amend / decrease priority rules, and the exact fee of every fill (the SDK's
//! [`OrderFeeAccumulator`](strike_sdk::fees::OrderFeeAccumulator) per order at the configured
//! [`AccountPrecision`]). Maker vs taker and fees are taken from the matcher's events.
//!
//! ## Books and time
//! The matcher starts with every market's first `orderbook_snapshot` of the recording (NO levels
//! converted per the header's `yes_price_scale`; no snapshot: an empty book), applied when the
//! exchange is built: the opening book. After that the book moves only with the market data it
//! is given: `Exchange::enqueue_market_data` queues a snapshot, delta or trade print for its
//! exchange time and `Exchange::advance` applies, in time order, what is due (the REST server
//! feeds it the frames its linked WebSocket replay releases, see [`super::rest`]). Test hooks
//! replace a book ([`super::RestServer::set_book`]: a snapshot) or print an outside trade
//! ([`super::RestServer::external_trade`]). Inputs the matcher refuses (a crossed snapshot, an
//! off-grid price) are counted and skipped. Every input and command carries its exchange time in
//! unix nanoseconds; one that would be earlier than the last is applied at the last (the
//! exchange is FIFO).
//!
//! Order ids: the matcher's [`OrderId`] of an order is its index in the exchange's order table.
//! Resting orders with an `expiration_time` are cancelled once it passes, checked before every
//! request and every market-data input.
//!
//! ## Money
//! Amounts are exact [`Money`] (micro-dollars) inside; JSON `*_dollars` amounts are rendered with
//! 6 decimals as in live captures (`"4.950000"`), prices with 4 (`"0.5600"`), counts with 2
//! (`"10.00"`). A `bid` fill of `n` at `p` costs `n·p`; an `ask` fill costs `n·(1 − p)` (buying NO),
//! except that fills reducing an open position pay out instead (closing `n` YES by an ask
//! receives `n·p`; closing `n` NO by a bid receives `n·(1 − p)`), realising P&L against the
//! position's average cost. Fees are what the matcher charged (the market's fee schedule:
//! `quadratic` by default, takers pay `0.07·C·P·(1−P)`, makers nothing) and are debited from the
//! balance. The balance is not reduced by resting orders; a create whose full size could cost
//! more than the balance (`count × price` for bids, `count × (1 − price)` for asks, position
//! offsets ignored) is refused with 400 `insufficient_balance`.
//!
//! ## Validation (create; amend and decrease alike where the field exists)
//! Checked in this order, first failure answered. Body not a JSON object, `ticker` / `side` /
//! `count` / `price` / `time_in_force` / `self_trade_prevention_type` missing or of the wrong
//! JSON type, `side` not `bid`|`ask`, `count` not a string of 0–2 decimals or ≤ 0, `price` not a
//! dollar string of ≤ 4 decimals, unknown `time_in_force` or `self_trade_prevention_type`,
//! `subaccount` outside 0–63: 400 `invalid_order`. Unknown ticker: 404 `market_not_found`.
//! `exchange_index` absent: accepted (auto-route) and counted; present but not the market's
//! shard: 400 `invalid_order`. Price 0, ≥ 1 or off the market's grid: 400 `invalid_order`.
//! `expiration_time` with IoC ("Cannot specify both immediate_or_cancel and expiration_ts"),
//! with FoK, or not in the future ("Expiration timestamp must be in the future"): 400
//! `invalid_order`; `reduce_only` without IoC: 400 `invalid_order`. Then: an open (resting)
//! order with the same `client_order_id`: 409 `order_already_exists`; balance: 400
//! `insufficient_balance`; then the matcher: post-only cross: 400 `POST_ONLY_CROSS` (`code`,
//! not `invalid_order` + a message, so a client can tell it from other invalid orders; `details`
//! names the best crossed level, own resting orders included); unfillable FoK per [`FokKill`].
//! A `reduce_only` IoC is capped at the position it reduces (nothing to reduce: recorded as
//! `canceled` without fills).
//!
//! ## Wire shapes
//! Errors: `{"code","message","details"}` or, with [`ErrorShape::Nested`],
//! `{"error":{"code","message","details"}}`. Codes served: `invalid_order`,
//! `market_not_found` (404), `not_found` (404: unknown order id, or an order that is no longer
//! resting, for cancel / amend / decrease), `order_already_exists` (409),
//! `order_ticker_mismatch`, `order_side_mismatch`, `order_id_and_client_order_id_mismatch`,
//! `insufficient_balance` (400), `POST_ONLY_CROSS` (400), `FOK_INSUFFICIENT_VOLUME` (400, only
//! with [`FokKill::Reject`]), `method_not_allowed` (405), `bad_request` (malformed HTTP).
//!
//! ```text
//! create 201   {"order_id":"3b23c1c7-…","client_order_id":"c1"|null,"fill_count":"12.00",
//!               "remaining_count":"0.00","average_fill_price":"0.461666",
//!               "average_fee_paid":"0.017500","ts_ms":1786085188416}
//!              (average_* only when fill_count > 0; remaining_count is what rests: 0 for
//!               IoC/FoK and for a GTC stopped by self-trade prevention)
//! batch create 201 {"orders":[{…create fields, average_* null without fills…,"error":null},
//!               {"order_id":null,"client_order_id":…,"fill_count":null,"remaining_count":null,
//!                "average_fill_price":null,"average_fee_paid":null,"ts_ms":null,
//!                "error":{"code","message","details"}}]}
//! cancel 200   {"order_id","client_order_id","reduced_by":"3.00","ts_ms"}
//! batch cancel 200 {"orders":[{order_id, client_order_id, reduced_by, ts_ms, "error":null|{…}}]}
//! cancel all   204, no body
//! amend 200    {"order_id","client_order_id","remaining_count":"3.00","fill_count":"5.00",
//!               "average_fill_price":"0.450000"|null,"average_fee_paid":"…"|null,"ts_ms"}
//! decrease 200 {"order_id","client_order_id","remaining_count":"7.00","ts_ms"}
//! orders 200   {"orders":[Order…],"cursor":""}   newest first; cursor "" on the last page
//! order 200    {"order":Order}
//! Order        {"order_id","user_id","client_order_id" ("" if none),"ticker",
//!               "outcome_side":"yes"|"no","book_side":"bid"|"ask","side":"yes"|"no",
//!               "action":"buy","type":"limit","status":"resting"|"canceled"|"executed",
//!               "yes_price_dollars":"0.4500","no_price_dollars":"0.5500",
//!               "initial_count_fp","fill_count_fp","remaining_count_fp",
//!               "taker_fill_cost_dollars","maker_fill_cost_dollars","taker_fees_dollars",
//!               "maker_fees_dollars" (6 dp),"created_time","last_update_time" (RFC 3339 ms),
//!               "expiration_time" (RFC 3339 or null),"self_trade_prevention_type",
//!               "order_group_id" (string or null),"cancel_order_on_pause","subaccount_number",
//!               "exchange_index"}
//!              (`ask` orders: outcome_side/side "no", action "buy", as in live `fill`s)
//! positions 200 {"market_positions":[{"ticker","position_fp":"2.00",
//!               "total_traded_dollars","market_exposure_dollars","position_cost_dollars",
//!               "realized_pnl_dollars","fees_paid_dollars","volume_fp",
//!               "resting_orders_count":0,"last_updated_ts":"…Z"}],
//!               "event_positions":[{"event_ticker","total_cost_dollars","total_cost_shares_fp",
//!               "event_exposure_dollars","realized_pnl_dollars","fees_paid_dollars"}],
//!               "cursor":""}
//! balance 200  {"balance":99772 (cents, floor),"balance_dollars":"997.7200" (4 dp, floor),
//!               "portfolio_value":90 (cents: cost of open positions),"updated_ts":1786085188}
//! ```
//!
//! ## Private messages (`fill`, `user_order`; `kalshi-protocol.md` §1.6–1.7)
//! With a [`super::PrivateFeed`] configured, every change of one of the account's orders and
//! every execution is rendered into an outbox that the REST server publishes (see
//! [`super::private`]): the `msg` objects below, which a WebSocket session wraps as
//! `{"type":"fill"|"user_order","sid":N,"msg":{...}}` (no `seq`).
//!
//! - One `fill` per execution of one of the account's orders (the matcher's fill events: per
//!   level taken by a taker; per trade print, level decrease or crossing order that fills a
//!   resting order), in execution order.
//! - One `user_order` per order a step changed, with the order's state after the step:
//!   created (resting, or already executed / canceled for an immediate order), partially or
//!   fully filled (taker or maker), canceled (cancel, batch cancel, cancel-all, decrease to zero,
//!   IoC/FoK remainder or kill, `taker_at_cross` stop, cancelled as the maker of a `maker`
//!   self-trade prevention, `expiration_time` passed), amended, decreased.
//! - A step is one command (one create, one batch item, one cancel, ...) or one market-data
//!   input. Order within a step: its fills first, then the `user_order`s (orders changed on the
//!   way, e.g. cancelled makers of self-trade prevention or resting orders filled by a print, in
//!   the order they changed; the commanded order last). The protocol documents no order between
//!   the two channels (§6, gotcha 8); fill-before-order is the simulator's choice. Across steps:
//!   the order in which the exchange applied them.
//!
//! `fee_cost` is the fill's **trade fee** (the exact fee rounded up to $0.0001, Kalshi's
//! per-fill `fee_cost`, as in the demo capture `ws_demo_mm_session_2026-07-01`), while the
//! order's `*_fees_dollars`, the create response's `average_fee_paid` and the balance carry what
//! was charged at the account's precision through the per-order accumulator: replaying the
//! fills' prices and counts through the SDK's accumulator reproduces them exactly. Dollar
//! amounts have 6 decimals (as `fee_cost` live and the REST amounts; the AsyncAPI example shows
//! 4, which cannot hold every cost of a fractional count), prices 4, counts 2 (`post_position_fp`
//! signed: + YES, − NO). An `ask` order is `outcome_side`/`side`/`purchased_side` `"no"`,
//! `action` `"buy"`, `is_yes` false, as in live `fill`s; `yes_price_dollars` is always the YES
//! price. `trade_id` is a fresh UUID per fill (the simulator has no counterparty's side).
//!
//! ```text
//! fill        {"trade_id":"f7bc6346-…","order_id":"584b9838-…","client_order_id":"my-order-1"
//!              (absent when the order has none),"market_ticker":"KXP-A","exchange_index":0,
//!              "is_taker":true,"side":"yes","action":"buy","purchased_side":"yes",
//!              "outcome_side":"yes","book_side":"bid","yes_price_dollars":"0.4500",
//!              "count_fp":"5.00","fee_cost":"0.086700","post_position_fp":"5.00",
//!              "subaccount":0,"ts":1795261204,"ts_ms":1795261204484}
//! user_order  {"order_id":"584b9838-…","user_id":"strike-sim-user","ticker":"KXP-A",
//!              "client_order_id":"my-order-1" ("" if none),"status":"executed",
//!              "outcome_side":"yes","book_side":"bid","side":"yes","is_yes":true,
//!              "yes_price_dollars":"0.4700","initial_count_fp":"12.00","fill_count_fp":"12.00",
//!              "remaining_count_fp":"0.00","taker_fill_cost_dollars":"5.540000",
//!              "maker_fill_cost_dollars":"0.000000","taker_fees_dollars":"0.210000",
//!              "maker_fees_dollars":"0.000000","order_group_id" (only when set),
//!              "self_trade_prevention_type":"taker_at_cross","created_ts_ms":1795261204484,
//!              "last_updated_ts_ms":1795261204484,"expiration_ts_ms" (only when set),
//!              "subaccount_number":0,"exchange_index":0}
//!             (`remaining_count_fp` is the live size: 0 once executed or canceled)
//! ```

use super::private::{Draft, PrivateChannel};
use super::replay::{json_str, EventKind, ReplayData};
use crate::matching::{
    CancelReason, Command, FillInfo, MarketData, MarketSpec, MatchEvent, MatchEventKind, Matcher, MatcherConfig,
    NewOrder, OrderId, QueueModelKind, Reduce, RejectCode, SelfTradePrevention,
};
use crate::recording::Recording;
use crate::universe::UniverseData;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io;
use strike_sdk::book::BookSide;
use strike_sdk::fees::{AccountPrecision, Liquidity};
use strike_sdk::grid::PriceGrid;
use strike_sdk::market::MarketId;
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::TimeInForce;

/// How a `fill_or_kill` order that cannot fill completely is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FokKill {
    /// 201 with `fill_count: "0.00"`, `remaining_count: "0.00"`; the order is recorded with
    /// status `canceled` (the V2 create response describes the final state, as for IoC). The
    /// default.
    #[default]
    CanceledOrder,
    /// 400 `{"code":"FOK_INSUFFICIENT_VOLUME","message":"fill-or-kill order could not be fully
    /// filled","details":"<fillable> of <count> fillable"}` (the FIX reject reason as the code);
    /// no order is recorded.
    Reject,
}

/// Which JSON shape error bodies take (`kalshi-protocol.md` §3.7: clients must accept both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"code": "...", "message": "...", "details": "..."}` (the OpenAPI shape; the default).
    #[default]
    Flat,
    /// `{"error": {"code": "...", "message": "...", "details": "..."}}` (seen live).
    Nested,
}

impl ErrorShape {
    /// The error body in this shape.
    pub fn body(self, code: &str, message: &str, details: &str) -> String {
        let inner = json!({"code": code, "message": message, "details": details});
        match self {
            ErrorShape::Flat => inner.to_string(),
            ErrorShape::Nested => json!({ "error": inner }).to_string(),
        }
    }
}

/// An API error: HTTP status and Kalshi's `{code, message, details}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: String,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.into(), message: message.into(), details: String::new() }
    }

    fn details(mut self, d: &str) -> ApiError {
        self.details = d.into();
        self
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid_order", message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }

    fn object(&self) -> Value {
        json!({"code": self.code, "message": self.message, "details": self.details})
    }
}

/// One answer: status and body (`None` for 204).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<String>,
}

impl Reply {
    fn json(status: u16, v: Value) -> Reply {
        Reply { status, body: Some(v.to_string()) }
    }

    pub(crate) fn error(e: &ApiError, shape: ErrorShape) -> Reply {
        Reply { status: e.status, body: Some(shape.body(&e.code, &e.message, &e.details)) }
    }
}

/// Kalshi's order statuses (`kalshi-protocol.md` §3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Resting,
    Canceled,
    Executed,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Resting => "resting",
            Status::Canceled => "canceled",
            Status::Executed => "executed",
        }
    }
}

/// The outcome a side buys: `bid` buys YES, `ask` buys NO.
fn outcome_name(s: BookSide) -> &'static str {
    match s {
        BookSide::Bid => "yes",
        BookSide::Ask => "no",
    }
}

fn side_name(s: BookSide) -> &'static str {
    match s {
        BookSide::Bid => "bid",
        BookSide::Ask => "ask",
    }
}

struct Market {
    ticker: String,
    event_ticker: String,
    exchange_index: u8,
    grid: PriceGrid,
}

/// One of the account's orders as Kalshi shows it (the matcher holds its matching state).
struct Order {
    id: String,
    client_order_id: Option<String>,
    market: usize,
    side: BookSide,
    price: Price,
    initial: Qty,
    filled: Qty,
    /// Live (unfilled, not cancelled) size; 0 once the order is done.
    remaining: Qty,
    status: Status,
    stp: SelfTradePrevention,
    subaccount: i64,
    cancel_order_on_pause: bool,
    order_group_id: Option<String>,
    expiration_s: Option<i64>,
    taker_cost: Money,
    maker_cost: Money,
    taker_fees: Money,
    maker_fees: Money,
    created_ms: i64,
    updated_ms: i64,
}

#[derive(Clone, Copy, Default)]
struct Position {
    position: Qty,
    /// Cost of the open position (what was paid for the contracts held).
    cost: Money,
    realized: Money,
    fees_paid: Money,
    traded: Money,
    volume: Qty,
    updated_ms: i64,
    touched: bool,
}

/// Counters the exchange keeps (merged into the server's stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExchangeCounters {
    pub creates: u64,
    pub fills: u64,
    pub filled: Qty,
    pub maker_fills: u64,
    pub cancels: u64,
    pub amends: u64,
    pub decreases: u64,
    pub rejections: u64,
    pub rejections_by_code: BTreeMap<String, u64>,
    pub missing_exchange_index: u64,
    pub missing_exchange_index_by: BTreeMap<String, u64>,
    pub duplicates_refused: u64,
    pub market_data_applied: u64,
    pub market_data_refused: u64,
}

/// One execution of one of the account's orders, as the exchange booked it
/// ([`super::RestServer::fills`]): what its `fill` message says, plus what the balance paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeFill {
    /// The order's `order_id`.
    pub order_id: String,
    /// The order's `client_order_id` at the time of the fill, if any.
    pub client_order_id: Option<String>,
    /// The market.
    pub ticker: String,
    /// The order's book side (`Bid` buys YES, `Ask` buys NO).
    pub side: BookSide,
    /// Execution price, YES scale.
    pub price: Price,
    /// Size, hundredths of a contract.
    pub qty: Qty,
    /// Taker (while the order was entered or amended) or maker (while it rested).
    pub liquidity: Liquidity,
    /// The fill message's `fee_cost`: the trade fee rounded up to $0.0001 (micro-dollars).
    pub fee_cost: Money,
    /// What the balance was debited for this fill through the order's fee accumulator at the
    /// account's precision (micro-dollars); an order's charges sum to its `*_fees_dollars`.
    pub fee_charged: Money,
    /// Exchange time of the fill, unix ms (the fill message's `ts_ms`).
    pub ts_ms: i64,
}

/// The result of a create that produced an order (for the create response).
struct Created {
    order: usize,
    filled: Qty,
    /// Σ price × qty of this request's fills, YES price (micro-dollars).
    yes_notional: Money,
    fees: Money,
    ts_ms: i64,
}

/// What one matcher call did to the commanded order.
#[derive(Default)]
struct Outcome {
    filled: Qty,
    /// Σ price × qty of its fills, YES price.
    yes_notional: Money,
    /// Σ fees charged for its fills.
    fees: Money,
    /// Cancelled (why, how much).
    cancelled: Option<(CancelReason, Qty)>,
}

/// Levels of one market's book, best first on both sides, YES scale.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookLevels {
    /// YES bids, highest first.
    pub bids: Vec<(Price, Qty)>,
    /// YES asks (NO bids at `1 − price`), lowest first.
    pub asks: Vec<(Price, Qty)>,
}

/// Settings of the exchange model.
pub(crate) struct ExchangeConfig {
    pub balance: Money,
    pub precision: AccountPrecision,
    pub queue: QueueModelKind,
    pub fok_kill: FokKill,
    pub max_batch: usize,
    /// Render the private messages (`fill`, `user_order`) into the outbox.
    pub private: bool,
}

/// The account, the matcher and the order table.
pub(crate) struct Exchange {
    markets: Vec<Market>,
    index: HashMap<String, usize>,
    matcher: Matcher,
    orders: Vec<Order>,
    by_id: HashMap<String, usize>,
    /// `client_order_id` → resting order.
    open_cids: HashMap<String, usize>,
    resting: BTreeSet<usize>,
    positions: Vec<Position>,
    balance: Money,
    balance_updated_ms: i64,
    fok_kill: FokKill,
    max_batch: usize,
    pub counters: ExchangeCounters,
    /// Whether the private messages are rendered at all.
    private: bool,
    /// Private messages rendered since the server last took them, in order.
    outbox: Vec<Draft>,
    /// Every fill so far, in execution order.
    fills: Vec<ExchangeFill>,
    /// Market data waiting for its exchange time: `(ts_ns, arrival number)` → `(market, data)`.
    pending: BTreeMap<(u64, u64), (usize, MarketData)>,
    pending_seq: u64,
    /// The latest time given to queued market data (the feed is FIFO).
    last_md_ns: u64,
    /// Orders the step in progress changed, in order (their `user_order` messages).
    changed: Vec<usize>,
}

/// The user id served in order objects.
pub const USER_ID: &str = "strike-sim-user";

/// Greatest `limit` of the list endpoints (`GET /portfolio/orders` allows 1–200, positions
/// 1–1000).
const MAX_ORDERS_LIMIT: usize = 200;
const MAX_POSITIONS_LIMIT: usize = 1000;

/// A random version-4 UUID (order and trade ids).
fn new_order_id() -> String {
    let r: u128 = rand::random();
    let b = (r & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (b >> 96) as u32,
        (b >> 80) as u16,
        (b >> 64) as u16,
        (b >> 48) as u16,
        (b & 0xffff_ffff_ffff) as u64
    )
}

/// A dollar amount with 6 decimals (`"4.950000"`).
fn dollars(m: Money) -> String {
    m.to_fixed_str().to_string()
}

fn count_s(q: Qty) -> String {
    q.to_fixed_str().to_string()
}

fn price_s(p: Price) -> String {
    p.to_fixed_str().to_string()
}

/// RFC 3339 UTC with milliseconds (`"2026-08-12T10:00:00.123Z"`).
pub(crate) fn rfc3339_ms(ms: i64) -> Value {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        None => Value::Null,
    }
}

/// `a × b / c` exactly, floor.
fn mul_div(a: i64, b: i64, c: i64) -> i64 {
    if c == 0 {
        return 0;
    }
    ((a as i128 * b as i128).div_euclid(c as i128)) as i64
}

/// Per-contract average of `total` over `qty`: micro-dollars per contract, floor.
fn per_contract(total: Money, qty: Qty) -> Money {
    Money(mul_div(total.0, Qty::ONE_CONTRACT, qty.0))
}

// ---- request field helpers ----

fn obj(v: &Value) -> Result<&Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| ApiError::invalid("the request body must be a JSON object"))
}

/// A string field: `Ok(None)` when absent or null.
fn opt_str<'a>(o: &'a Map<String, Value>, k: &str) -> Result<Option<&'a str>, ApiError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::invalid(format!("`{k}` must be a string, got {other}"))),
    }
}

fn req_str<'a>(o: &'a Map<String, Value>, k: &str) -> Result<&'a str, ApiError> {
    match opt_str(o, k)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::invalid(format!("`{k}` is required"))),
    }
}

fn opt_bool(o: &Map<String, Value>, k: &str) -> Result<bool, ApiError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ApiError::invalid(format!("`{k}` must be a boolean, got {other}"))),
    }
}

fn opt_int(o: &Map<String, Value>, k: &str) -> Result<Option<i64>, ApiError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| ApiError::invalid(format!("`{k}` must be an integer, got {v}"))),
    }
}

fn parse_side(s: &str) -> Result<BookSide, ApiError> {
    match s {
        "bid" => Ok(BookSide::Bid),
        "ask" => Ok(BookSide::Ask),
        _ => Err(ApiError::invalid(format!("`side` must be \"bid\" or \"ask\", got {s:?}"))),
    }
}

/// A positive fixed-point count with 0–2 decimals.
fn parse_count(k: &str, s: &str) -> Result<Qty, ApiError> {
    let q = Qty::parse(s).map_err(|e| {
        ApiError::new(400, "invalid_order", format!("`{k}` {s:?} is not a fixed-point count with 0–2 decimals: {e}"))
    })?;
    if q.0 <= 0 {
        return Err(ApiError::invalid(format!("`{k}` {s:?} must be at least 0.01")));
    }
    Ok(q)
}

fn req_count(o: &Map<String, Value>, k: &str) -> Result<Qty, ApiError> {
    match o.get(k) {
        Some(Value::String(s)) => parse_count(k, s),
        None | Some(Value::Null) => Err(ApiError::invalid(format!("`{k}` is required"))),
        Some(other) => {
            Err(ApiError::invalid(format!("`{k}` must be a fixed-point string like \"10.00\", got {other}")))
        }
    }
}

fn opt_count_allow_zero(o: &Map<String, Value>, k: &str) -> Result<Option<Qty>, ApiError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let q = Qty::parse(s).map_err(|e| {
                ApiError::invalid(format!("`{k}` {s:?} is not a fixed-point count with 0–2 decimals: {e}"))
            })?;
            if q.0 < 0 {
                return Err(ApiError::invalid(format!("`{k}` {s:?} must not be negative")));
            }
            Ok(Some(q))
        }
        Some(other) => {
            Err(ApiError::invalid(format!("`{k}` must be a fixed-point string like \"10.00\", got {other}")))
        }
    }
}

fn parse_tif(s: &str) -> Result<TimeInForce, ApiError> {
    match s {
        "fill_or_kill" => Ok(TimeInForce::Fok),
        "good_till_canceled" => Ok(TimeInForce::Gtc),
        "immediate_or_cancel" => Ok(TimeInForce::Ioc),
        _ => Err(ApiError::invalid(format!(
            "`time_in_force` must be fill_or_kill, good_till_canceled or immediate_or_cancel, got {s:?}"
        ))),
    }
}

fn parse_stp(s: &str) -> Result<SelfTradePrevention, ApiError> {
    SelfTradePrevention::from_name(s).ok_or_else(|| {
        ApiError::invalid(format!("`self_trade_prevention_type` must be taker_at_cross or maker, got {s:?}"))
    })
}

/// Exchange time in unix ms from unix ns.
fn ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

fn mid(m: usize) -> MarketId {
    MarketId(m as u32)
}

fn oid(o: usize) -> OrderId {
    OrderId(o as u64)
}

/// A parsed `CreateOrderV2Request`.
struct CreateReq {
    market: usize,
    client_order_id: Option<String>,
    side: BookSide,
    count: Qty,
    price: Price,
    tif: TimeInForce,
    stp: SelfTradePrevention,
    post_only: bool,
    reduce_only: bool,
    cancel_order_on_pause: bool,
    subaccount: i64,
    order_group_id: Option<String>,
    expiration_s: Option<i64>,
}

impl Exchange {
    /// Markets from the recording header, each book from the market's first snapshot, applied
    /// to the matcher at exchange time `now_ns`. Errors `InvalidData` for an unusable header or
    /// a first snapshot the matcher refuses (crossed, off the grid).
    pub(crate) fn new(rec: &Recording, cfg: ExchangeConfig, now_ns: u64) -> io::Result<Exchange> {
        let data = ReplayData::new(rec)?;
        let u = UniverseData::from_header(&rec.header).map_err(|errs| {
            let list: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            io::Error::new(io::ErrorKind::InvalidData, format!("recording header: {}", list.join("; ")))
        })?;
        let mut matcher = Matcher::new(MatcherConfig { queue: cfg.queue, precision: cfg.precision });
        let mut markets = Vec::with_capacity(u.markets.len());
        for (i, (m, r)) in u.markets.iter().zip(&rec.header.markets).enumerate() {
            matcher
                .add_market(mid(i), MarketSpec { grid: m.grid, fees: m.fees })
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("market {}: {e}", r.ticker)))?;
            markets.push(Market {
                ticker: r.ticker.clone(),
                event_ticker: r.event_ticker.clone(),
                exchange_index: m.exchange_index,
                grid: m.grid,
            });
        }
        let mut seen = vec![false; markets.len()];
        for e in &data.events {
            if let EventKind::Snapshot { market, bids, asks, .. } = &e.kind {
                if !std::mem::replace(&mut seen[*market], true) {
                    let md = MarketData::Snapshot { bids: bids.clone(), asks: asks.clone() };
                    matcher.on_market_data(now_ns, mid(*market), &md).map_err(|f| {
                        let t = &markets[*market].ticker;
                        io::Error::new(io::ErrorKind::InvalidData, format!("first snapshot of {t}: {f}"))
                    })?;
                }
            }
        }
        let index = markets.iter().enumerate().map(|(i, m)| (m.ticker.clone(), i)).collect();
        let n = markets.len();
        Ok(Exchange {
            markets,
            index,
            matcher,
            orders: Vec::new(),
            by_id: HashMap::new(),
            open_cids: HashMap::new(),
            resting: BTreeSet::new(),
            positions: vec![Position::default(); n],
            balance: cfg.balance,
            balance_updated_ms: ms(now_ns),
            fok_kill: cfg.fok_kill,
            max_batch: cfg.max_batch.max(1),
            counters: ExchangeCounters::default(),
            private: cfg.private,
            outbox: Vec::new(),
            fills: Vec::new(),
            pending: BTreeMap::new(),
            pending_seq: 0,
            last_md_ns: 0,
            changed: Vec::new(),
        })
    }

    fn market_of(&self, ticker: &str) -> Result<usize, ApiError> {
        self.index
            .get(ticker)
            .copied()
            .ok_or_else(|| ApiError::new(404, "market_not_found", format!("market {ticker:?} not found")))
    }

    /// Counts one error answer (the server counts whole-request errors, the exchange the
    /// per-item errors of batches).
    pub(crate) fn count_error(&mut self, e: &ApiError) {
        self.counters.rejections += 1;
        *self.counters.rejections_by_code.entry(e.code.clone()).or_default() += 1;
    }

    fn note_exchange_index(&mut self, op: &str, v: Option<i64>, market: Option<usize>) -> Result<(), ApiError> {
        match v {
            None => {
                self.counters.missing_exchange_index += 1;
                *self.counters.missing_exchange_index_by.entry(op.to_string()).or_default() += 1;
                Ok(())
            }
            Some(x) => {
                if x < 0 {
                    return Err(ApiError::invalid(format!("`exchange_index` {x} must not be negative")));
                }
                if let Some(m) = market {
                    let want = self.markets[m].exchange_index as i64;
                    if x != want {
                        return Err(ApiError::invalid(format!(
                            "exchange_index {x} does not match market {}'s shard {want}",
                            self.markets[m].ticker
                        )));
                    }
                }
                Ok(())
            }
        }
    }

    // ---- time and market data ----

    /// The matcher time of an input stamped `ns`: never before the last input (FIFO).
    fn at(&self, ns: u64) -> u64 {
        ns.max(self.matcher.last_ns())
    }

    /// Queues one market-data input of market `m` (header index) for exchange time `ts_ns`
    /// (never before the last queued one: the feed is FIFO). Applied by [`Exchange::advance`].
    pub(crate) fn enqueue_market_data(&mut self, ts_ns: u64, m: usize, md: MarketData) {
        let ts = ts_ns.max(self.last_md_ns);
        self.last_md_ns = ts;
        self.pending.insert((ts, self.pending_seq), (m, md));
        self.pending_seq += 1;
    }

    /// The exchange time of the earliest queued market-data input.
    pub(crate) fn next_pending_ns(&self) -> Option<u64> {
        self.pending.keys().next().map(|k| k.0)
    }

    /// Applies the queued market data stamped at or before `horizon_ns`, in time order (each a
    /// step of its own: maker fills, then `user_order`s).
    pub(crate) fn advance(&mut self, horizon_ns: u64) {
        while let Some(e) = self.pending.first_entry() {
            if e.key().0 > horizon_ns {
                break;
            }
            let ((ts, _), (m, md)) = e.remove_entry();
            self.apply_market_data(ts, m, &md);
        }
    }

    fn apply_market_data(&mut self, ts_ns: u64, m: usize, md: &MarketData) {
        let ts = self.at(ts_ns);
        self.sweep_expired(ts);
        match self.matcher.on_market_data(ts, mid(m), md) {
            Ok(events) => {
                self.counters.market_data_applied += 1;
                self.absorb(&events, ts, None);
                self.flush_user_orders(None);
            }
            Err(_) => self.counters.market_data_refused += 1,
        }
    }

    // ---- matcher events ----

    /// Runs one command through the matcher at exchange time `ts` (already clamped by
    /// [`Exchange::at`]); the only matcher error, time going backwards, cannot happen then.
    fn run(&mut self, ts: u64, cmd: &Command) -> Vec<MatchEvent> {
        self.matcher.on_command(ts, cmd).unwrap_or_default()
    }

    /// The rejection of order `o` among `events`, if any.
    fn rejection(events: &[MatchEvent], o: usize) -> Option<RejectCode> {
        events.iter().find_map(|e| match e.kind {
            MatchEventKind::Rejected { code } if e.order == oid(o) => Some(code),
            _ => None,
        })
    }

    /// Books the matcher's events at exchange time `ts` onto the order table, the positions,
    /// the balance and the private outbox (fills now, `user_order`s at
    /// [`Exchange::flush_user_orders`]). Returns what happened to order `cmd`.
    fn absorb(&mut self, events: &[MatchEvent], ts: u64, cmd: Option<usize>) -> Outcome {
        let now = ms(ts);
        let mut out = Outcome::default();
        for e in events {
            let o = e.order.0 as usize;
            if o >= self.orders.len() {
                continue; // a rejected create: not in the table
            }
            match e.kind {
                MatchEventKind::Accepted { .. } | MatchEventKind::Rejected { .. } => continue,
                MatchEventKind::Fill(f) => {
                    self.book_fill(o, &f, now);
                    if cmd == Some(o) {
                        out.filled += f.qty;
                        out.yes_notional += Money::notional(f.price, f.qty);
                        out.fees += f.fee.charged;
                    }
                    if f.leaves.0 <= 0 {
                        self.finish(o, now, Status::Executed);
                    }
                }
                MatchEventKind::Resting { price, remaining, .. } => {
                    let ord = &mut self.orders[o];
                    ord.price = price;
                    ord.remaining = remaining;
                    ord.status = Status::Resting;
                    ord.updated_ms = now;
                    if let Some(cid) = ord.client_order_id.clone() {
                        self.open_cids.insert(cid, o);
                    }
                    self.resting.insert(o);
                }
                MatchEventKind::Amended { price, remaining, .. } => {
                    let ord = &mut self.orders[o];
                    ord.price = price;
                    ord.remaining = remaining;
                    ord.updated_ms = now;
                }
                MatchEventKind::Decreased { remaining } => {
                    let ord = &mut self.orders[o];
                    ord.remaining = remaining;
                    ord.updated_ms = now;
                }
                MatchEventKind::Cancelled { reason, qty } => {
                    self.finish(o, now, Status::Canceled);
                    if reason == CancelReason::SelfTradeMaker {
                        self.counters.cancels += 1;
                    }
                    if cmd == Some(o) {
                        out.cancelled = Some((reason, qty));
                    }
                }
            }
            self.touch(o);
        }
        out
    }

    /// Notes that order `o` changed in the step in progress.
    fn touch(&mut self, o: usize) {
        if !self.changed.contains(&o) {
            self.changed.push(o);
        }
    }

    /// Ends the step in progress: one `user_order` per changed order, in order of change, the
    /// commanded order `cmd` last.
    fn flush_user_orders(&mut self, cmd: Option<usize>) {
        let changed = std::mem::take(&mut self.changed);
        for &o in changed.iter().filter(|&&o| Some(o) != cmd) {
            self.note_order(o);
        }
        if let Some(c) = cmd.filter(|c| changed.contains(c)) {
            self.note_order(c);
        }
    }

    /// Ends order `o` with `status`: off the resting set, its `client_order_id` freed.
    fn finish(&mut self, o: usize, now: i64, status: Status) {
        self.resting.remove(&o);
        let ord = &mut self.orders[o];
        if let Some(cid) = &ord.client_order_id {
            if self.open_cids.get(cid) == Some(&o) {
                self.open_cids.remove(cid);
            }
        }
        ord.remaining = Qty::ZERO;
        ord.status = status;
        ord.updated_ms = now;
    }

    /// Books one fill of order `o` on the order, the position, the balance, the fill log and the
    /// outbox.
    fn book_fill(&mut self, o: usize, f: &FillInfo, now: i64) {
        let (m, side) = (self.orders[o].market, self.orders[o].side);
        let (price, qty, fee) = (f.price, f.qty, f.fee.charged);
        let notional = match side {
            BookSide::Bid => Money::notional(price, qty),
            BookSide::Ask => Money::notional(price.complement(), qty),
        };
        {
            let ord = &mut self.orders[o];
            ord.filled += qty;
            ord.remaining = f.leaves;
            ord.updated_ms = now;
            match f.liquidity {
                Liquidity::Taker => {
                    ord.taker_cost += notional;
                    ord.taker_fees += fee;
                }
                Liquidity::Maker => {
                    ord.maker_cost += notional;
                    ord.maker_fees += fee;
                }
            }
        }
        let pos = &mut self.positions[m];
        let held = pos.position.0;
        // Contracts of this fill that close the opposite position, and their payout per contract.
        let (closing, payout_price) = match side {
            BookSide::Bid if held < 0 => (qty.0.min(-held), price.complement()),
            BookSide::Ask if held > 0 => (qty.0.min(held), price),
            _ => (0, price),
        };
        let opening = qty.0 - closing;
        let open_price = match side {
            BookSide::Bid => price,
            BookSide::Ask => price.complement(),
        };
        if closing > 0 {
            let proceeds = Money::notional(payout_price, Qty(closing));
            let removed =
                if closing == held.abs() { pos.cost } else { Money(mul_div(pos.cost.0, closing, held.abs())) };
            pos.cost -= removed;
            pos.realized += proceeds - removed;
            self.balance += proceeds;
        }
        if opening > 0 {
            let cost = Money::notional(open_price, Qty(opening));
            pos.cost += cost;
            self.balance -= cost;
        }
        pos.position.0 += match side {
            BookSide::Bid => qty.0,
            BookSide::Ask => -qty.0,
        };
        pos.fees_paid += fee;
        pos.traded += notional;
        pos.volume += qty;
        pos.updated_ms = now;
        pos.touched = true;
        self.balance -= fee;
        self.balance_updated_ms = now;
        self.counters.fills += 1;
        self.counters.filled += qty;
        if f.liquidity == Liquidity::Maker {
            self.counters.maker_fills += 1;
        }
        let ord = &self.orders[o];
        self.fills.push(ExchangeFill {
            order_id: ord.id.clone(),
            client_order_id: ord.client_order_id.clone(),
            ticker: self.markets[m].ticker.clone(),
            side,
            price,
            qty,
            liquidity: f.liquidity,
            fee_cost: f.fee.trade_fee,
            fee_charged: fee,
            ts_ms: now,
        });
        if self.private {
            let post = self.positions[m].position;
            let msg = self.fill_msg(o, price, qty, f.liquidity, f.fee.trade_fee, post, now);
            self.outbox.push(Draft { channel: PrivateChannel::Fill, ticker: self.markets[m].ticker.clone(), msg });
        }
    }

    /// The best price of the opposite side for an order on `side` in market `m`: outside
    /// liquidity or the account's own resting orders.
    fn best_opposite(&self, m: usize, side: BookSide) -> Option<Price> {
        let opp = side.opposite();
        let outside = self.matcher.best(mid(m), opp).map(|(p, _)| p);
        let own = self
            .resting
            .iter()
            .map(|&o| &self.orders[o])
            .filter(|o| o.market == m && o.side == opp)
            .map(|o| o.price)
            .reduce(|a, b| if (opp == BookSide::Bid) == (b > a) { b } else { a });
        match (outside, own) {
            (Some(a), Some(b)) => Some(if (opp == BookSide::Bid) == (b > a) { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// The answer to a command the matcher refused.
    fn refusal(&self, code: RejectCode, m: usize, side: BookSide, count: Qty) -> ApiError {
        match code {
            RejectCode::PostOnlyCross => {
                let best = self.best_opposite(m, side).map(price_s).unwrap_or_default();
                let what = match side {
                    BookSide::Bid => "ask",
                    BookSide::Ask => "bid",
                };
                ApiError::new(400, "POST_ONLY_CROSS", "post only order would cross the book")
                    .details(&format!("best {what} {best}"))
            }
            RejectCode::FokInsufficientVolume { fillable } => {
                ApiError::new(400, "FOK_INSUFFICIENT_VOLUME", "fill-or-kill order could not be fully filled")
                    .details(&format!("{} of {} fillable", count_s(fillable), count_s(count)))
            }
            RejectCode::InvalidOrder => ApiError::invalid("the matching engine refused the order as invalid"),
            RejectCode::MarketNotFound => {
                ApiError::new(404, "market_not_found", format!("market {:?} not found", self.markets[m].ticker))
            }
            RejectCode::OrderAlreadyExists => ApiError::new(409, "order_already_exists", "the order already exists"),
            RejectCode::NotFound => ApiError::not_found("no resting order with this id"),
        }
    }

    // ---- private messages ----

    /// Queues the `user_order` message of order `o`'s current state.
    fn note_order(&mut self, o: usize) {
        if !self.private {
            return;
        }
        let msg = self.user_order_msg(o);
        let ticker = self.markets[self.orders[o].market].ticker.clone();
        self.outbox.push(Draft { channel: PrivateChannel::UserOrders, ticker, msg });
    }

    /// The private messages rendered since the last call, in order.
    pub(crate) fn take_private(&mut self) -> Vec<Draft> {
        std::mem::take(&mut self.outbox)
    }

    /// The `msg` of a `fill` (see the module docs): one execution of order `o`, `fee` its trade
    /// fee, `post` the position after it.
    #[allow(clippy::too_many_arguments)]
    fn fill_msg(&self, o: usize, price: Price, qty: Qty, liq: Liquidity, fee: Money, post: Qty, now: i64) -> String {
        let ord = &self.orders[o];
        let mk = &self.markets[ord.market];
        let outcome = outcome_name(ord.side);
        let mut s = String::with_capacity(512);
        let _ = write!(s, "{{\"trade_id\":\"{}\",\"order_id\":{}", new_order_id(), json_str(&ord.id));
        if let Some(cid) = &ord.client_order_id {
            let _ = write!(s, ",\"client_order_id\":{}", json_str(cid));
        }
        let _ = write!(
            s,
            ",\"market_ticker\":{},\"exchange_index\":{},\"is_taker\":{},\"side\":\"{outcome}\",\"action\":\"buy\",\
             \"purchased_side\":\"{outcome}\",\"outcome_side\":\"{outcome}\",\"book_side\":\"{}\",\
             \"yes_price_dollars\":\"{}\",\"count_fp\":\"{}\",\"fee_cost\":\"{}\",\"post_position_fp\":\"{}\",\
             \"subaccount\":{},\"ts\":{},\"ts_ms\":{now}}}",
            json_str(&mk.ticker),
            mk.exchange_index,
            liq == Liquidity::Taker,
            side_name(ord.side),
            price_s(price),
            count_s(qty),
            dollars(fee),
            count_s(post),
            ord.subaccount,
            now.div_euclid(1000),
        );
        s
    }

    /// The `msg` of a `user_order` (see the module docs): order `o` as it stands.
    fn user_order_msg(&self, o: usize) -> String {
        let ord = &self.orders[o];
        let mk = &self.markets[ord.market];
        let outcome = outcome_name(ord.side);
        let mut s = String::with_capacity(768);
        let _ = write!(
            s,
            "{{\"order_id\":{},\"user_id\":{},\"ticker\":{},\"client_order_id\":{},\"status\":\"{}\",\
             \"outcome_side\":\"{outcome}\",\"book_side\":\"{}\",\"side\":\"{outcome}\",\"is_yes\":{},\
             \"yes_price_dollars\":\"{}\",\"initial_count_fp\":\"{}\",\"fill_count_fp\":\"{}\",\
             \"remaining_count_fp\":\"{}\",\"taker_fill_cost_dollars\":\"{}\",\"maker_fill_cost_dollars\":\"{}\",\
             \"taker_fees_dollars\":\"{}\",\"maker_fees_dollars\":\"{}\"",
            json_str(&ord.id),
            json_str(USER_ID),
            json_str(&mk.ticker),
            json_str(ord.client_order_id.as_deref().unwrap_or_default()),
            ord.status.name(),
            side_name(ord.side),
            ord.side == BookSide::Bid,
            price_s(ord.price),
            count_s(ord.initial),
            count_s(ord.filled),
            count_s(ord.remaining),
            dollars(ord.taker_cost),
            dollars(ord.maker_cost),
            dollars(ord.taker_fees),
            dollars(ord.maker_fees),
        );
        if let Some(g) = &ord.order_group_id {
            let _ = write!(s, ",\"order_group_id\":{}", json_str(g));
        }
        let _ = write!(
            s,
            ",\"self_trade_prevention_type\":\"{}\",\"created_ts_ms\":{},\"last_updated_ts_ms\":{}",
            ord.stp.kalshi_name(),
            ord.created_ms,
            ord.updated_ms
        );
        if let Some(e) = ord.expiration_s {
            let _ = write!(s, ",\"expiration_ts_ms\":{}", e.saturating_mul(1000));
        }
        let _ = write!(s, ",\"subaccount_number\":{},\"exchange_index\":{}}}", ord.subaccount, mk.exchange_index);
        s
    }

    /// Cancels resting orders whose `expiration_time` has passed by exchange time `now_ns`
    /// (one step each).
    pub(crate) fn sweep_expired(&mut self, now_ns: u64) {
        let ts = self.at(now_ns);
        let now = ms(ts);
        let due: Vec<usize> = self
            .resting
            .iter()
            .copied()
            .filter(|&i| self.orders[i].expiration_s.is_some_and(|s| s.saturating_mul(1000) <= now))
            .collect();
        for o in due {
            let events = self.run(ts, &Command::Cancel { id: oid(o) });
            self.absorb(&events, ts, Some(o));
            self.flush_user_orders(Some(o));
        }
    }

    // ---- create ----

    fn parse_create(&mut self, v: &Value, op: &str, now_ns: u64) -> Result<CreateReq, ApiError> {
        let o = obj(v)?;
        let ticker = req_str(o, "ticker")?;
        let side = parse_side(req_str(o, "side")?)?;
        let count = req_count(o, "count")?;
        let price_s = match o.get("price") {
            Some(Value::String(s)) => s.as_str(),
            None | Some(Value::Null) => return Err(ApiError::invalid("`price` is required")),
            Some(other) => {
                return Err(ApiError::invalid(format!("`price` must be a dollar string like \"0.5600\", got {other}")))
            }
        };
        let price = Price::parse(price_s).map_err(|e| {
            ApiError::invalid(format!("`price` {price_s:?} is not a dollar price with up to 4 decimals: {e}"))
        })?;
        let tif = parse_tif(req_str(o, "time_in_force")?)?;
        let stp = parse_stp(req_str(o, "self_trade_prevention_type")?)?;
        let post_only = opt_bool(o, "post_only")?;
        let reduce_only = opt_bool(o, "reduce_only")?;
        let cancel_order_on_pause = opt_bool(o, "cancel_order_on_pause")?;
        let subaccount = opt_int(o, "subaccount")?.unwrap_or(0);
        if !(0..=63).contains(&subaccount) {
            return Err(ApiError::invalid(format!("`subaccount` {subaccount} must be 0–63")));
        }
        let client_order_id = opt_str(o, "client_order_id")?.filter(|s| !s.is_empty()).map(str::to_string);
        let order_group_id = opt_str(o, "order_group_id")?.map(str::to_string);
        let expiration_s = opt_int(o, "expiration_time")?;
        let exchange_index = opt_int(o, "exchange_index")?;
        let market = self.market_of(ticker)?;
        self.note_exchange_index(op, exchange_index, Some(market))?;
        let grid = &self.markets[market].grid;
        if price.0 == 0 || price.0 >= Price::ONE || !grid.contains(price) {
            return Err(ApiError::invalid(format!(
                "`price` {price_s:?} is not a valid price of {ticker} (on its price grid, strictly between 0 and 1)"
            )));
        }
        if let Some(exp) = expiration_s {
            if tif == TimeInForce::Ioc {
                return Err(ApiError::invalid("Cannot specify both immediate_or_cancel and expiration_ts"));
            }
            if tif != TimeInForce::Gtc {
                return Err(ApiError::invalid("`expiration_time` is only allowed with good_till_canceled"));
            }
            if exp.saturating_mul(1000) <= ms(now_ns) {
                return Err(ApiError::invalid("Expiration timestamp must be in the future"));
            }
        }
        if reduce_only && tif != TimeInForce::Ioc {
            return Err(ApiError::invalid("reduce_only orders must be immediate_or_cancel"));
        }
        Ok(CreateReq {
            market,
            client_order_id,
            side,
            count,
            price,
            tif,
            stp,
            post_only,
            reduce_only,
            cancel_order_on_pause,
            subaccount,
            order_group_id,
            expiration_s,
        })
    }

    fn create_inner(&mut self, v: &Value, op: &str, now_ns: u64) -> Result<Created, ApiError> {
        let req = self.parse_create(v, op, now_ns)?;
        if let Some(cid) = &req.client_order_id {
            if self.open_cids.contains_key(cid) {
                self.counters.duplicates_refused += 1;
                return Err(ApiError::new(
                    409,
                    "order_already_exists",
                    format!("an open order with client_order_id {cid:?} already exists"),
                ));
            }
        }
        let m = req.market;
        let mut count = req.count;
        if req.reduce_only {
            let held = self.positions[m].position.0;
            let cap = match req.side {
                BookSide::Bid if held < 0 => -held,
                BookSide::Ask if held > 0 => held,
                _ => 0,
            };
            count = Qty(count.0.min(cap));
        }
        let unit = match req.side {
            BookSide::Bid => req.price,
            BookSide::Ask => req.price.complement(),
        };
        let max_cost = Money::notional(unit, count);
        if max_cost > self.balance {
            return Err(ApiError::new(
                400,
                "insufficient_balance",
                format!(
                    "order could cost {} but the available balance is {}",
                    dollars(max_cost),
                    dollars(self.balance)
                ),
            ));
        }
        let ts = self.at(now_ns);
        let now = ms(ts);
        let idx = self.orders.len();
        let id = new_order_id();
        self.orders.push(Order {
            id: id.clone(),
            client_order_id: req.client_order_id.clone(),
            market: m,
            side: req.side,
            price: req.price,
            initial: req.count,
            filled: Qty::ZERO,
            remaining: count,
            status: Status::Resting,
            stp: req.stp,
            subaccount: req.subaccount,
            cancel_order_on_pause: req.cancel_order_on_pause,
            order_group_id: req.order_group_id,
            expiration_s: req.expiration_s,
            taker_cost: Money::ZERO,
            maker_cost: Money::ZERO,
            taker_fees: Money::ZERO,
            maker_fees: Money::ZERO,
            created_ms: now,
            updated_ms: now,
        });
        let mut out = Outcome::default();
        if count.0 == 0 {
            // A reduce-only order with nothing to reduce.
            self.finish(idx, now, Status::Canceled);
            self.touch(idx);
        } else {
            let n = NewOrder {
                id: oid(idx),
                market: mid(m),
                side: req.side,
                price: req.price,
                qty: count,
                tif: req.tif,
                post_only: req.post_only,
                stp: req.stp,
            };
            let events = self.run(ts, &Command::New(n));
            match Self::rejection(&events, idx) {
                None => out = self.absorb(&events, ts, Some(idx)),
                Some(RejectCode::FokInsufficientVolume { .. }) if self.fok_kill == FokKill::CanceledOrder => {
                    // Killed: recorded as a cancelled order without fills.
                    self.finish(idx, now, Status::Canceled);
                    self.touch(idx);
                }
                Some(code) => {
                    self.orders.pop();
                    return Err(self.refusal(code, m, req.side, count));
                }
            }
        }
        self.by_id.insert(id, idx);
        self.counters.creates += 1;
        self.flush_user_orders(Some(idx));
        Ok(Created { order: idx, filled: out.filled, yes_notional: out.yes_notional, fees: out.fees, ts_ms: now })
    }

    /// The create response fields (`kalshi-protocol.md` §3.3); `average_*` only with fills
    /// (`null_averages`: present as `null` without fills, the batch item shape).
    fn created_json(&self, c: &Created, null_averages: bool) -> Map<String, Value> {
        let o = &self.orders[c.order];
        let mut m = Map::new();
        m.insert("order_id".into(), json!(o.id));
        match &o.client_order_id {
            Some(cid) => m.insert("client_order_id".into(), json!(cid)),
            None => m.insert("client_order_id".into(), Value::Null),
        };
        m.insert("fill_count".into(), json!(count_s(c.filled)));
        m.insert("remaining_count".into(), json!(count_s(o.remaining)));
        if c.filled.0 > 0 {
            m.insert("average_fill_price".into(), json!(dollars(per_contract(c.yes_notional, c.filled))));
            m.insert("average_fee_paid".into(), json!(dollars(per_contract(c.fees, c.filled))));
        } else if null_averages {
            m.insert("average_fill_price".into(), Value::Null);
            m.insert("average_fee_paid".into(), Value::Null);
        }
        m.insert("ts_ms".into(), json!(c.ts_ms));
        m
    }

    /// `POST /portfolio/events/orders`.
    pub(crate) fn create(&mut self, body: &Value, now_ns: u64) -> Result<Reply, ApiError> {
        self.sweep_expired(now_ns);
        self.create_inner(body, "POST /portfolio/events/orders", now_ns)
            .map(|c| Reply::json(201, Value::Object(self.created_json(&c, false))))
    }

    fn batch_items<'a>(&self, body: &'a Value) -> Result<&'a Vec<Value>, ApiError> {
        let items = obj(body)?
            .get("orders")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::invalid("`orders` must be an array"))?;
        if items.is_empty() {
            return Err(ApiError::invalid("`orders` must not be empty"));
        }
        if items.len() > self.max_batch {
            return Err(ApiError::invalid(format!(
                "batch of {} orders exceeds the maximum of {}",
                items.len(),
                self.max_batch
            )));
        }
        Ok(items)
    }

    /// `POST /portfolio/events/orders/batched`: each item as a create; per-item `error`.
    pub(crate) fn batch_create(&mut self, body: &Value, now_ns: u64) -> Result<Reply, ApiError> {
        self.sweep_expired(now_ns);
        let items = self.batch_items(body)?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match self.create_inner(item, "POST /portfolio/events/orders/batched", now_ns) {
                Ok(c) => {
                    let mut m = self.created_json(&c, true);
                    m.insert("error".into(), Value::Null);
                    out.push(Value::Object(m));
                }
                Err(e) => {
                    self.count_error(&e);
                    let cid = item.get("client_order_id").cloned().unwrap_or(Value::Null);
                    out.push(json!({
                        "order_id": null, "client_order_id": cid, "fill_count": null, "remaining_count": null,
                        "average_fill_price": null, "average_fee_paid": null, "ts_ms": null, "error": e.object(),
                    }));
                }
            }
        }
        Ok(Reply::json(201, json!({ "orders": out })))
    }

    // ---- cancel, decrease, amend ----

    fn find(&self, order_id: &str) -> Result<usize, ApiError> {
        self.by_id.get(order_id).copied().ok_or_else(|| ApiError::not_found(format!("order {order_id:?} not found")))
    }

    fn find_resting(&self, order_id: &str) -> Result<usize, ApiError> {
        let o = self.find(order_id)?;
        if self.orders[o].status != Status::Resting {
            return Err(ApiError::not_found(format!(
                "order {order_id:?} is {}, not resting",
                self.orders[o].status.name()
            )));
        }
        Ok(o)
    }

    fn check_ticker(&self, o: usize, ticker: Option<&str>) -> Result<(), ApiError> {
        match ticker {
            Some(t) if t != self.markets[self.orders[o].market].ticker => Err(ApiError::new(
                400,
                "order_ticker_mismatch",
                format!("order {} is on {}, not {t}", self.orders[o].id, self.markets[self.orders[o].market].ticker),
            )),
            _ => Ok(()),
        }
    }

    /// Cancels resting order `o` through the matcher (one step); returns the size cancelled.
    fn cancel_order(&mut self, o: usize, now_ns: u64) -> Qty {
        let ts = self.at(now_ns);
        let events = self.run(ts, &Command::Cancel { id: oid(o) });
        let out = self.absorb(&events, ts, Some(o));
        self.flush_user_orders(Some(o));
        self.counters.cancels += 1;
        out.cancelled.map_or(Qty::ZERO, |c| c.1)
    }

    fn cancel_inner(
        &mut self,
        order_id: &str,
        ticker: Option<&str>,
        exchange_index: Option<i64>,
        op: &str,
        now_ns: u64,
    ) -> Result<Value, ApiError> {
        let market = self.by_id.get(order_id).map(|&o| self.orders[o].market);
        self.note_exchange_index(op, exchange_index, market)?;
        let o = self.find_resting(order_id)?;
        self.check_ticker(o, ticker)?;
        let reduced = self.cancel_order(o, now_ns);
        let ord = &self.orders[o];
        Ok(json!({
            "order_id": ord.id,
            "client_order_id": ord.client_order_id,
            "reduced_by": count_s(reduced),
            "ts_ms": ord.updated_ms,
        }))
    }

    /// `DELETE /portfolio/events/orders/{order_id}?exchange_index=&market_ticker=`.
    pub(crate) fn cancel(
        &mut self,
        order_id: &str,
        ticker: Option<&str>,
        exchange_index: Option<i64>,
        now_ns: u64,
    ) -> Result<Reply, ApiError> {
        self.sweep_expired(now_ns);
        self.cancel_inner(order_id, ticker, exchange_index, "DELETE /portfolio/events/orders/{order_id}", now_ns)
            .map(|v| Reply::json(200, v))
    }

    /// `DELETE /portfolio/events/orders/batched`: `{"orders":[{order_id, exchange_index?,
    /// market_ticker?, subaccount?}]}` → per-item results with `error`.
    pub(crate) fn batch_cancel(&mut self, body: &Value, now_ns: u64) -> Result<Reply, ApiError> {
        self.sweep_expired(now_ns);
        let items = self.batch_items(body)?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let r = (|| {
                let o = obj(item)?;
                let id = req_str(o, "order_id")?;
                let ticker = opt_str(o, "market_ticker")?;
                let xi = opt_int(o, "exchange_index")?;
                self.cancel_inner(id, ticker, xi, "DELETE /portfolio/events/orders/batched", now_ns)
            })();
            match r {
                Ok(mut v) => {
                    v["error"] = Value::Null;
                    out.push(v);
                }
                Err(e) => {
                    self.count_error(&e);
                    let id = item.get("order_id").cloned().unwrap_or(Value::Null);
                    let cid = item
                        .get("order_id")
                        .and_then(Value::as_str)
                        .and_then(|id| self.by_id.get(id))
                        .map(|&o| json!(self.orders[o].client_order_id))
                        .unwrap_or(Value::Null);
                    out.push(json!({
                        "order_id": id, "client_order_id": cid, "reduced_by": null, "ts_ms": null,
                        "error": e.object(),
                    }));
                }
            }
        }
        Ok(Reply::json(200, json!({ "orders": out })))
    }

    /// `DELETE /portfolio/events/orders`: cancels every resting order; 204.
    pub(crate) fn cancel_all(&mut self, now_ns: u64) -> Reply {
        self.sweep_expired(now_ns);
        let all: Vec<usize> = self.resting.iter().copied().collect();
        for o in all {
            self.cancel_order(o, now_ns);
        }
        Reply { status: 204, body: None }
    }

    fn decrease_inner(&mut self, order_id: &str, body: &Value, now_ns: u64) -> Result<Value, ApiError> {
        let o_body = obj(body)?;
        let by = opt_count_allow_zero(o_body, "reduce_by")?;
        let to = opt_count_allow_zero(o_body, "reduce_to")?;
        let ticker = opt_str(o_body, "market_ticker")?;
        let xi = opt_int(o_body, "exchange_index")?;
        let market = self.by_id.get(order_id).map(|&o| self.orders[o].market);
        self.note_exchange_index("POST /portfolio/events/orders/{order_id}/decrease", xi, market)?;
        let o = self.find_resting(order_id)?;
        self.check_ticker(o, ticker)?;
        let rem = self.orders[o].remaining;
        let reduce = match (by, to) {
            (Some(b), None) => {
                if b.0 == 0 {
                    return Err(ApiError::invalid("`reduce_by` must be at least 0.01"));
                }
                Reduce::By(b)
            }
            (None, Some(t)) => {
                if t > rem {
                    return Err(ApiError::invalid(format!(
                        "`reduce_to` {} exceeds the remaining count {}",
                        count_s(t),
                        count_s(rem)
                    )));
                }
                Reduce::To(t)
            }
            _ => return Err(ApiError::invalid("exactly one of `reduce_by` and `reduce_to` is required")),
        };
        let ts = self.at(now_ns);
        let events = self.run(ts, &Command::Decrease { id: oid(o), reduce });
        if let Some(code) = Self::rejection(&events, o) {
            let (m, side) = (self.orders[o].market, self.orders[o].side);
            return Err(self.refusal(code, m, side, rem));
        }
        self.counters.decreases += 1;
        let out = self.absorb(&events, ts, Some(o));
        if out.cancelled.is_some() {
            self.counters.cancels += 1;
        }
        self.flush_user_orders(Some(o));
        let ord = &self.orders[o];
        Ok(json!({
            "order_id": ord.id,
            "client_order_id": ord.client_order_id,
            "remaining_count": count_s(ord.remaining),
            "ts_ms": ms(ts),
        }))
    }

    /// `POST /portfolio/events/orders/{order_id}/decrease`.
    pub(crate) fn decrease(&mut self, order_id: &str, body: &Value, now_ns: u64) -> Result<Reply, ApiError> {
        self.sweep_expired(now_ns);
        self.decrease_inner(order_id, body, now_ns).map(|v| Reply::json(200, v))
    }

    fn amend_inner(&mut self, order_id: &str, body: &Value, now_ns: u64) -> Result<Value, ApiError> {
        let ob = obj(body)?;
        let ticker = req_str(ob, "ticker")?;
        let side = parse_side(req_str(ob, "side")?)?;
        let count = req_count(ob, "count")?;
        let price_s = req_str(ob, "price")?;
        let price = Price::parse(price_s).map_err(|e| {
            ApiError::invalid(format!("`price` {price_s:?} is not a dollar price with up to 4 decimals: {e}"))
        })?;
        let cid = opt_str(ob, "client_order_id")?;
        let new_cid = opt_str(ob, "updated_client_order_id")?.filter(|s| !s.is_empty());
        let xi = opt_int(ob, "exchange_index")?;
        let expiration = opt_int(ob, "expiration_time")?;
        let market = self.by_id.get(order_id).map(|&o| self.orders[o].market);
        self.note_exchange_index("POST /portfolio/events/orders/{order_id}/amend", xi, market)?;
        let o = self.find_resting(order_id)?;
        self.check_ticker(o, Some(ticker))?;
        let m = self.orders[o].market;
        if side != self.orders[o].side {
            return Err(ApiError::new(
                400,
                "order_side_mismatch",
                format!("order {order_id} is a {}, not a {}", side_name(self.orders[o].side), side_name(side)),
            ));
        }
        if let Some(c) = cid {
            if self.orders[o].client_order_id.as_deref() != Some(c) {
                return Err(ApiError::new(
                    400,
                    "order_id_and_client_order_id_mismatch",
                    format!("order {order_id} does not have client_order_id {c:?}"),
                ));
            }
        }
        if price.0 == 0 || price.0 >= Price::ONE || !self.markets[m].grid.contains(price) {
            return Err(ApiError::invalid(format!("`price` {price_s:?} is not a valid price of {ticker}")));
        }
        let filled = self.orders[o].filled;
        if count <= filled {
            return Err(ApiError::invalid(format!(
                "`count` {} must exceed the filled count {} (it is the new total)",
                count_s(count),
                count_s(filled)
            )));
        }
        if let Some(nc) = new_cid {
            if self.open_cids.get(nc).is_some_and(|&other| other != o) {
                self.counters.duplicates_refused += 1;
                return Err(ApiError::new(
                    409,
                    "order_already_exists",
                    format!("an open order with client_order_id {nc:?} already exists"),
                ));
            }
        }
        let ts = self.at(now_ns);
        if let Some(exp) = expiration {
            if exp != 0 && exp.saturating_mul(1000) <= ms(ts) {
                return Err(ApiError::invalid("Expiration timestamp must be in the future"));
            }
        }
        let events = self.run(ts, &Command::Amend { id: oid(o), price, count });
        if let Some(code) = Self::rejection(&events, o) {
            // Nothing changed (a post-only order that would cross keeps resting as it was).
            return Err(self.refusal(code, m, side, count - filled));
        }
        // The new client order id and expiry first: the fills of this amend carry them.
        if let Some(nc) = new_cid {
            if let Some(old) = self.orders[o].client_order_id.take() {
                self.open_cids.remove(&old);
            }
            self.orders[o].client_order_id = Some(nc.to_string());
            self.open_cids.insert(nc.to_string(), o);
        }
        if let Some(exp) = expiration {
            self.orders[o].expiration_s = (exp != 0).then_some(exp);
        }
        self.orders[o].initial = count;
        self.counters.amends += 1;
        let out = self.absorb(&events, ts, Some(o));
        self.flush_user_orders(Some(o));
        let ord = &self.orders[o];
        let (avg_p, avg_f) = if out.filled.0 > 0 {
            (
                json!(dollars(per_contract(out.yes_notional, out.filled))),
                json!(dollars(per_contract(out.fees, out.filled))),
            )
        } else {
            (Value::Null, Value::Null)
        };
        Ok(json!({
            "order_id": ord.id, "client_order_id": ord.client_order_id, "remaining_count": count_s(ord.remaining),
            "fill_count": count_s(out.filled), "average_fill_price": avg_p, "average_fee_paid": avg_f, "ts_ms": ms(ts),
        }))
    }

    /// `POST /portfolio/events/orders/{order_id}/amend`.
    pub(crate) fn amend(&mut self, order_id: &str, body: &Value, now_ns: u64) -> Result<Reply, ApiError> {
        self.sweep_expired(now_ns);
        self.amend_inner(order_id, body, now_ns).map(|v| Reply::json(200, v))
    }

    // ---- reads ----

    /// The §3.5 order object.
    fn order_json(&self, o: usize) -> Value {
        let ord = &self.orders[o];
        let mk = &self.markets[ord.market];
        let (outcome, legacy_side) = match ord.side {
            BookSide::Bid => ("yes", "yes"),
            BookSide::Ask => ("no", "no"),
        };
        json!({
            "order_id": ord.id,
            "user_id": USER_ID,
            "client_order_id": ord.client_order_id.clone().unwrap_or_default(),
            "ticker": mk.ticker,
            "outcome_side": outcome,
            "book_side": side_name(ord.side),
            "side": legacy_side,
            "action": "buy",
            "type": "limit",
            "status": ord.status.name(),
            "yes_price_dollars": price_s(ord.price),
            "no_price_dollars": price_s(ord.price.complement()),
            "initial_count_fp": count_s(ord.initial),
            "fill_count_fp": count_s(ord.filled),
            "remaining_count_fp": count_s(ord.remaining),
            "taker_fill_cost_dollars": dollars(ord.taker_cost),
            "maker_fill_cost_dollars": dollars(ord.maker_cost),
            "taker_fees_dollars": dollars(ord.taker_fees),
            "maker_fees_dollars": dollars(ord.maker_fees),
            "created_time": rfc3339_ms(ord.created_ms),
            "last_update_time": rfc3339_ms(ord.updated_ms),
            "expiration_time": ord.expiration_s.map_or(Value::Null, |s| rfc3339_ms(s.saturating_mul(1000))),
            "self_trade_prevention_type": ord.stp.kalshi_name(),
            "order_group_id": ord.order_group_id,
            "cancel_order_on_pause": ord.cancel_order_on_pause,
            "subaccount_number": ord.subaccount,
            "exchange_index": mk.exchange_index,
        })
    }

    /// Every order, in creation order, as §3.5 objects.
    pub(crate) fn all_orders(&self) -> Vec<Value> {
        (0..self.orders.len()).map(|o| self.order_json(o)).collect()
    }

    /// `GET /portfolio/orders/{order_id}` → `{"order": {...}}`.
    pub(crate) fn get_order(&mut self, order_id: &str, now_ns: u64) -> Result<Reply, ApiError> {
        self.sweep_expired(now_ns);
        self.find(order_id).map(|o| Reply::json(200, json!({ "order": self.order_json(o) })))
    }

    /// `GET /portfolio/orders?ticker=&event_ticker=&status=&min_ts=&max_ts=&exchange_index=
    /// &limit=&cursor=`, newest first; `cursor` is the offset of the next page ("" at the end).
    pub(crate) fn get_orders(&mut self, q: &HashMap<String, String>, now_ns: u64) -> Result<Reply, ApiError> {
        self.sweep_expired(now_ns);
        self.get_orders_inner(q)
    }

    fn get_orders_inner(&self, q: &HashMap<String, String>) -> Result<Reply, ApiError> {
        let status = match q.get("status").map(String::as_str) {
            None | Some("") => None,
            Some(s @ ("resting" | "canceled" | "executed")) => Some(s),
            Some(s) => {
                return Err(ApiError::invalid(format!("`status` must be resting, canceled or executed, got {s:?}")))
            }
        };
        let int = |k: &str| -> Result<Option<i64>, ApiError> {
            match q.get(k).map(String::as_str) {
                None | Some("") => Ok(None),
                Some(s) => s.parse().map(Some).map_err(|_| ApiError::invalid(format!("`{k}` {s:?} is not an integer"))),
            }
        };
        let min_ts = int("min_ts")?;
        let max_ts = int("max_ts")?;
        let xi = int("exchange_index")?;
        let limit = int("limit")?.unwrap_or(100);
        if !(1..=MAX_ORDERS_LIMIT as i64).contains(&limit) {
            return Err(ApiError::invalid(format!("`limit` {limit} must be 1–{MAX_ORDERS_LIMIT}")));
        }
        let offset = parse_cursor(q)?;
        let ticker = q.get("ticker").filter(|t| !t.is_empty());
        let events: Option<Vec<&str>> = q.get("event_ticker").filter(|t| !t.is_empty()).map(|s| s.split(',').collect());
        let all: Vec<usize> = (0..self.orders.len())
            .rev()
            .filter(|&o| {
                let ord = &self.orders[o];
                let mk = &self.markets[ord.market];
                ticker.is_none_or(|t| *t == mk.ticker)
                    && events.as_ref().is_none_or(|ev| ev.contains(&mk.event_ticker.as_str()))
                    && status.is_none_or(|s| s == ord.status.name())
                    && min_ts.is_none_or(|t| ord.created_ms >= t.saturating_mul(1000))
                    && max_ts.is_none_or(|t| ord.created_ms <= t.saturating_mul(1000))
                    && xi.is_none_or(|x| x == mk.exchange_index as i64)
            })
            .collect();
        let page: Vec<Value> = all.iter().skip(offset).take(limit as usize).map(|&o| self.order_json(o)).collect();
        let next = offset + page.len();
        let cursor = if next < all.len() { next.to_string() } else { String::new() };
        Ok(Reply::json(200, json!({"orders": page, "cursor": cursor})))
    }

    /// `GET /portfolio/positions?ticker=&event_ticker=&count_filter=&limit=&cursor=`.
    pub(crate) fn get_positions(&mut self, q: &HashMap<String, String>, now_ns: u64) -> Result<Reply, ApiError> {
        self.sweep_expired(now_ns);
        self.get_positions_inner(q)
    }

    fn get_positions_inner(&self, q: &HashMap<String, String>) -> Result<Reply, ApiError> {
        let limit: i64 = match q.get("limit").map(String::as_str) {
            None | Some("") => 100,
            Some(s) => s.parse().map_err(|_| ApiError::invalid(format!("`limit` {s:?} is not an integer")))?,
        };
        if !(1..=MAX_POSITIONS_LIMIT as i64).contains(&limit) {
            return Err(ApiError::invalid(format!("`limit` {limit} must be 1–{MAX_POSITIONS_LIMIT}")));
        }
        let offset = parse_cursor(q)?;
        let ticker = q.get("ticker").filter(|t| !t.is_empty());
        let events: Option<Vec<&str>> = q.get("event_ticker").filter(|t| !t.is_empty()).map(|s| s.split(',').collect());
        let filters: Vec<&str> =
            q.get("count_filter").map(|s| s.split(',').filter(|f| !f.is_empty()).collect()).unwrap_or_default();
        let resting_count = |m: usize| self.resting.iter().filter(|&&o| self.orders[o].market == m).count();
        let list: Vec<usize> = (0..self.markets.len())
            .filter(|&m| {
                let p = &self.positions[m];
                let mk = &self.markets[m];
                (p.touched || resting_count(m) > 0)
                    && ticker.is_none_or(|t| *t == mk.ticker)
                    && events.as_ref().is_none_or(|ev| ev.contains(&mk.event_ticker.as_str()))
                    && (filters.is_empty()
                        || filters.iter().any(|f| match *f {
                            "position" => p.position.0 != 0,
                            "total_traded" => p.traded.0 != 0,
                            _ => true,
                        }))
            })
            .collect();
        let page: Vec<usize> = list.iter().copied().skip(offset).take(limit as usize).collect();
        let market_positions: Vec<Value> = page
            .iter()
            .map(|&m| {
                let p = &self.positions[m];
                json!({
                    "ticker": self.markets[m].ticker,
                    "position_fp": count_s(p.position),
                    "total_traded_dollars": dollars(p.traded),
                    "market_exposure_dollars": dollars(p.cost),
                    "position_cost_dollars": dollars(p.cost),
                    "realized_pnl_dollars": dollars(p.realized),
                    "fees_paid_dollars": dollars(p.fees_paid),
                    "volume_fp": count_s(p.volume),
                    "resting_orders_count": resting_count(m),
                    "last_updated_ts": rfc3339_ms(p.updated_ms),
                })
            })
            .collect();
        // Event aggregates over the markets of this page.
        let mut by_event: BTreeMap<&str, (Money, Qty, Money, Money, Money)> = BTreeMap::new();
        for &m in &page {
            let p = &self.positions[m];
            let e = by_event.entry(self.markets[m].event_ticker.as_str()).or_default();
            e.0 += p.traded;
            e.1 += p.volume;
            e.2 += p.cost;
            e.3 += p.realized;
            e.4 += p.fees_paid;
        }
        let event_positions: Vec<Value> = by_event
            .iter()
            .filter(|(e, _)| !e.is_empty())
            .map(|(e, v)| {
                json!({
                    "event_ticker": e,
                    "total_cost_dollars": dollars(v.0),
                    "total_cost_shares_fp": count_s(v.1),
                    "event_exposure_dollars": dollars(v.2),
                    "realized_pnl_dollars": dollars(v.3),
                    "fees_paid_dollars": dollars(v.4),
                })
            })
            .collect();
        let next = offset + page.len();
        let cursor = if next < list.len() { next.to_string() } else { String::new() };
        Ok(Reply::json(
            200,
            json!({"market_positions": market_positions, "event_positions": event_positions, "cursor": cursor}),
        ))
    }

    /// `GET /portfolio/balance`: `balance` whole cents (floor), `balance_dollars` with 4
    /// decimals (floor to the centicent), `portfolio_value` cents of the open positions' cost,
    /// `updated_ts` unix seconds.
    pub(crate) fn get_balance(&mut self, now_ns: u64) -> Reply {
        self.sweep_expired(now_ns);
        let value: Money = self.positions.iter().map(|p| p.cost).fold(Money::ZERO, |a, b| a + b);
        let cc = self.balance.0.div_euclid(Money::PER_CENTICENT);
        Reply::json(
            200,
            json!({
                "balance": self.balance.0.div_euclid(Money::PER_CENT),
                "balance_dollars": strike_sdk::num::FixedStr::new(cc, 4).to_string(),
                "portfolio_value": value.0.div_euclid(Money::PER_CENT),
                "updated_ts": self.balance_updated_ms.div_euclid(1000),
            }),
        )
    }

    // ---- test hooks ----

    pub(crate) fn balance(&self) -> Money {
        self.balance
    }

    pub(crate) fn position(&self, ticker: &str) -> Option<Qty> {
        self.index.get(ticker).map(|&m| self.positions[m].position)
    }

    /// Every fill so far, in execution order.
    pub(crate) fn fills(&self) -> &[ExchangeFill] {
        &self.fills
    }

    /// The book of `ticker` as a client would see it: the matcher's view of the outside
    /// liquidity plus the account's resting orders, level by level.
    pub(crate) fn book_levels(&self, ticker: &str) -> Option<BookLevels> {
        let m = *self.index.get(ticker)?;
        let mut sides: [BTreeMap<Price, Qty>; 2] = Default::default();
        for (i, side) in [BookSide::Bid, BookSide::Ask].into_iter().enumerate() {
            for (p, q) in self.matcher.levels(mid(m), side) {
                *sides[i].entry(p).or_default() += q;
            }
        }
        for o in self.matcher.open_orders(mid(m)) {
            let i = if o.side == BookSide::Bid { 0 } else { 1 };
            *sides[i].entry(o.price).or_default() += o.remaining;
        }
        let [bids, asks] = sides;
        Some(BookLevels { bids: bids.into_iter().rev().collect(), asks: asks.into_iter().collect() })
    }

    /// Replaces the outside liquidity of a market (a snapshot to the matcher at `now_ns`): the
    /// account's resting orders stay, and any that the new book crosses fill as makers.
    /// Errors: unknown market, off-grid or negative levels, a crossed book.
    pub(crate) fn set_book(
        &mut self,
        ticker: &str,
        bids: &[(Price, Qty)],
        asks: &[(Price, Qty)],
        now_ns: u64,
    ) -> io::Result<()> {
        let m = *self
            .index
            .get(ticker)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no market {ticker:?}")))?;
        let ts = self.at(now_ns);
        self.sweep_expired(ts);
        let md = MarketData::Snapshot { bids: bids.to_vec(), asks: asks.to_vec() };
        let events = self
            .matcher
            .on_market_data(ts, mid(m), &md)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{ticker}: {e}")))?;
        self.absorb(&events, ts, None);
        self.flush_user_orders(None);
        Ok(())
    }

    /// An outside taker takes up to `qty` from `side` of `ticker` (bids at or above `limit`, or
    /// asks at or below it), best level first, at exchange time `now_ns`. At each level it
    /// takes what is displayed there, outside liquidity and the account's resting orders
    /// together, fed to the matcher as a trade print of that size at that price (the resting
    /// orders fill as makers by their queue position: outside liquidity ahead of them goes
    /// first) followed by the delta that removes the outside part from the book. Returns the
    /// quantity taken.
    pub(crate) fn external_trade(
        &mut self,
        ticker: &str,
        side: BookSide,
        limit: Price,
        qty: Qty,
        now_ns: u64,
    ) -> io::Result<Qty> {
        let m = *self
            .index
            .get(ticker)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no market {ticker:?}")))?;
        let ts = self.at(now_ns);
        self.sweep_expired(ts);
        let inside = |p: Price| match side {
            BookSide::Bid => p >= limit,
            BookSide::Ask => p <= limit,
        };
        let levels: Vec<(Price, Qty)> = self.book_levels(ticker).map_or_else(Vec::new, |b| match side {
            BookSide::Bid => b.bids,
            BookSide::Ask => b.asks,
        });
        let mut left = qty;
        for (p, total) in levels.into_iter().filter(|l| inside(l.0)) {
            if left.0 <= 0 {
                break;
            }
            let take = Qty(total.0.min(left.0));
            let print = MarketData::Trade { taker_side: side.opposite(), price: p, qty: take };
            let events = self
                .matcher
                .on_market_data(ts, mid(m), &print)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{ticker}: {e}")))?;
            let ours: i64 = events
                .iter()
                .filter_map(|e| match e.kind {
                    MatchEventKind::Fill(f) if f.price == p => Some(f.qty.0),
                    _ => None,
                })
                .sum();
            self.absorb(&events, ts, None);
            self.flush_user_orders(None);
            let outside = take.0 - ours;
            if outside > 0 {
                let gone = MarketData::Delta { side, price: p, delta: Qty(-outside) };
                let events = self
                    .matcher
                    .on_market_data(ts, mid(m), &gone)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{ticker}: {e}")))?;
                self.absorb(&events, ts, None);
                self.flush_user_orders(None);
            }
            left -= take;
        }
        Ok(qty - left)
    }
}

fn parse_cursor(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("cursor").map(String::as_str) {
        None | Some("") => Ok(0),
        Some(c) => {
            c.parse().map_err(|_| ApiError::invalid(format!("`cursor` {c:?} is not a cursor this server issued")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_look_like_v4_uuids() {
        let a = new_order_id();
        let b = new_order_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'), "{a}");
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'), "{a}");
    }

    #[test]
    fn shapes_and_formats() {
        assert_eq!(dollars(Money(4_950_000)), "4.950000");
        assert_eq!(per_contract(Money(1_750_000), Qty(10_000)), Money(17_500));
        assert_eq!(rfc3339_ms(1_786_085_188_416), json!("2026-08-07T06:46:28.416Z"));
        let nested: Value = serde_json::from_str(&ErrorShape::Nested.body("c", "m", "d")).unwrap();
        assert_eq!(nested, json!({"error": {"code": "c", "message": "m", "details": "d"}}));
        let flat: Value = serde_json::from_str(&ErrorShape::Flat.body("c", "m", "")).unwrap();
        assert_eq!(flat, json!({"code": "c", "message": "m", "details": ""}));
    }
}
