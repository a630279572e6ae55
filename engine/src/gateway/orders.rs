//! Order state for the live gateway, keyed by `client_order_id` and `order_id`, correct whatever
//! the arrival order of the REST response, `user_order` and `fill` (`kalshi-protocol.md` §6
//! gotcha 8).
//!
//! ## The model
//! Each order is one [`OrderRecord`]. Three kinds of input describe it, in any order:
//! - **snapshots** of its counts at the venue: the REST create (or batch item, amend, decrease)
//!   response, a WebSocket `user_order`, an order found by reconciliation
//!   (`GET /portfolio/orders`) — each gives the cumulative filled count, usually the remaining
//!   count, often a status, and a time;
//! - **fills** (`fill` messages): one execution each, with price, fee and taker/maker;
//! - **outcomes** of our own requests: a reject, a cancel acknowledged, a timeout.
//!
//! The record keeps the newest snapshot (more filled wins; for the same filled count the later
//! timestamp), the sum of `fill` messages, and the venue status, where a terminal status
//! (`executed`, `canceled`) is sticky: a stale `resting` arriving late never revives an order.
//! After every input it *settles*: the filled quantity is the larger of the snapshot's count and
//! the sum of fills; whatever exceeds what was already reported goes out as one
//! [`ExecEvent::Fill`] (priced from the `fill` message when that is the input, else from the
//! response's average fill price or, for resting fills, the order's limit); then the status
//! (`Resting`, `Filled`, `Cancelled`, `Rejected`) is derived, and an [`ExecEvent::Update`] goes
//! out when it, the counts or the price changed. Nothing is reported after a terminal update
//! except fills the venue had already made. So every permutation of (response, `user_order`,
//! `fill`) ends in the same state with the same total filled, and exactly one terminal update.
//!
//! `fill` messages are not de-duplicated by `trade_id` (Kalshi does not replay them); a
//! snapshot reporting fills before their `fill` messages arrive makes those messages add
//! nothing, so a fill's exact price is used only when its message is first.
//!
//! ## Fees
//! Kalshi's `fill.fee_cost` is the fill's *trade fee*, rounded up to $0.0001; what the balance
//! pays is that plus a rounding fee to the account's precision, less the per-order
//! accumulator's refunds (`kalshi-protocol.md` §5, the SDK's [`OrderFeeAccumulator`]). So with
//! the fee rules known ([`OrderTable::set_fee_rules`]: each market's [`FeeSchedule`] and the
//! account's [`AccountPrecision`], as the live gateway sets them) every fill reported is charged
//! through the order's own accumulator, whichever input reported it first: the same fee as the
//! venue's ledger (the order's `*_fees_dollars`, the balance), not the message's `fee_cost`
//! (which is checked against the accumulator's trade fee: [`OrderTable::fee_mismatches`]) nor
//! the response's per-contract `average_fee_paid` (rounded). A fill first known from a create
//! response that swept several levels is charged at its average price, the only price known
//! then. Without fee rules the fee is the message's `fee_cost`, or the response's average fee
//! times the size.
//!
//! ## Phases
//! `PendingSend → Sent → Resting | Executed | Canceled | Rejected`, with `Reconciling` when a
//! create's outcome is unknown (no response within the timeout, connection lost, 5xx): the
//! gateway then looks the order up by `client_order_id` in `GET /portfolio/orders` and resends
//! it only if it is absent there and no `user_order`/`fill` has named it meanwhile.
//!
//! Allocation: the table and its two indexes are sized at construction; inserting, looking up
//! and settling do not allocate while the table is under its capacity. Terminal records are
//! kept for a grace period (late fills still find them) and then retired.

use super::encode::{client_order_id, CLIENT_ORDER_ID_LEN};
use super::http::{ApiError, InlineStr};
use crate::pipeline::events::ExecEvent;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use strike_sdk::book::BookSide;
use strike_sdk::fees::{AccountPrecision, FeeSchedule, Liquidity, OrderFeeAccumulator};
use strike_sdk::market::MarketId;
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::{Fill, OrderRef, OrderStatus, OrderUpdate, RejectReason, TimeInForce};

/// A `client_order_id` as the gateway generates it ([`client_order_id`]).
pub type ClientOrderId = [u8; CLIENT_ORDER_ID_LEN];

/// A Kalshi `order_id` (a UUID today), inline.
pub type OrderId = InlineStr<64>;

/// An order's status as the venue states it (`kalshi-protocol.md` §3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VenueStatus {
    /// `resting`.
    Resting,
    /// `executed`: fully filled.
    Executed,
    /// `canceled`: cancelled (by us, IoC/FoK expiry or the venue), possibly after fills.
    Canceled,
}

impl VenueStatus {
    /// Parses Kalshi's status string (`resting`, `executed`, `canceled`; `cancelled` also
    /// accepted). `pending` (removed 2025-11) and unknown values are `None`.
    pub fn parse(s: &str) -> Option<VenueStatus> {
        match s {
            "resting" => Some(VenueStatus::Resting),
            "executed" => Some(VenueStatus::Executed),
            "canceled" | "cancelled" => Some(VenueStatus::Canceled),
            _ => None,
        }
    }

    /// Executed or canceled.
    pub const fn is_terminal(self) -> bool {
        !matches!(self, VenueStatus::Resting)
    }
}

/// An order's counts at the venue at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The stated status; `None` when the source gives none (the create response: the status
    /// is then derived from the remaining count).
    pub status: Option<VenueStatus>,
    /// Cumulative filled, hundredths of a contract.
    pub filled: Qty,
    /// Still resting, hundredths; `None` when the source gives none.
    pub remaining: Option<Qty>,
    /// Venue time of the snapshot, unix ms (0 = unknown: oldest).
    pub ts_ms: i64,
    /// Average fill price, YES scale, when the source gives one.
    pub avg_price: Option<Price>,
    /// Average fee per contract, micro-dollars, when the source gives one.
    pub avg_fee: Option<Money>,
}

/// A parsed `user_order` message (private WebSocket channel `user_orders`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserOrderUpdate<'a> {
    /// Kalshi `order_id`.
    pub order_id: &'a str,
    /// `client_order_id` (empty when absent).
    pub client_order_id: &'a str,
    /// `status`.
    pub status: VenueStatus,
    /// `fill_count_fp`, hundredths.
    pub fill_count: Qty,
    /// `remaining_count_fp`, hundredths.
    pub remaining_count: Qty,
    /// `last_updated_ts_ms`, unix ms (0 = absent).
    pub ts_ms: i64,
}

/// A parsed `fill` message (private WebSocket channel `fill`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillReport<'a> {
    /// Kalshi `order_id`.
    pub order_id: &'a str,
    /// `client_order_id` (empty when absent).
    pub client_order_id: &'a str,
    /// `trade_id`.
    pub trade_id: &'a str,
    /// `yes_price_dollars`, YES scale.
    pub yes_price: Price,
    /// `count_fp`, hundredths, > 0.
    pub count: Qty,
    /// `fee_cost`, micro-dollars.
    pub fee: Money,
    /// `is_taker`.
    pub is_taker: bool,
    /// `post_position_fp`, hundredths (0 when absent; the trader recomputes it).
    pub post_position: Qty,
    /// `ts_ms`, unix ms (0 = absent).
    pub ts_ms: i64,
}

/// Which request an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `POST /portfolio/events/orders`.
    Create,
    /// `POST /portfolio/events/orders/batched`.
    BatchCreate,
    /// `DELETE /portfolio/events/orders/{id}`.
    Cancel,
    /// `DELETE /portfolio/events/orders/batched`.
    BatchCancel,
    /// `DELETE /portfolio/events/orders`.
    CancelAll,
    /// `POST /portfolio/events/orders/{id}/amend`.
    Amend,
    /// `POST /portfolio/events/orders/{id}/decrease`.
    Decrease,
    /// `GET /portfolio/orders` (reconciliation).
    GetOrders,
    /// `GET /portfolio/positions` (resync).
    GetPositions,
}

impl OpKind {
    /// Snake-case name.
    pub const fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::BatchCreate => "batch_create",
            OpKind::Cancel => "cancel",
            OpKind::BatchCancel => "batch_cancel",
            OpKind::CancelAll => "cancel_all",
            OpKind::Amend => "amend",
            OpKind::Decrease => "decrease",
            OpKind::GetOrders => "get_orders",
            OpKind::GetPositions => "get_positions",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the gateway reports. [`GatewayEvent::exec`] gives the pipeline's [`ExecEvent`] where
/// there is one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GatewayEvent {
    /// An order state change or fill, in the pipeline's terms (acks are `Update`s with status
    /// `Resting`; venue rejects are `Update`s with status `Rejected`).
    Exec(ExecEvent),
    /// A request left on a connection.
    Sent {
        /// The request.
        op: OpKind,
        /// Strategy slot of the order (the first order of a batch; 0 for cancel-all and reads).
        strategy: u16,
        /// The order (the first of a batch; `OrderRef(0)` for cancel-all and reads).
        order_ref: OrderRef,
        /// When it was written, unix ns.
        sent_ns: u64,
        /// Age of its signed `KALSHI-ACCESS-TIMESTAMP` when written, ns (`header_age_ns`).
        header_age_ns: u64,
        /// 1 for the first send, 2.. for retries after a 429 / 5xx and resends after
        /// reconciliation.
        attempt: u32,
    },
    /// The venue (or the gateway, status 0) refused a request, with Kalshi's code and message.
    /// A refused create is also reported as an `Exec` `Rejected` update; a refused cancel,
    /// amend or decrease leaves the order's state to later events.
    Failed {
        /// The request.
        op: OpKind,
        /// Strategy slot (0 for cancel-all and reads).
        strategy: u16,
        /// The order (`OrderRef(0)` for cancel-all and reads).
        order_ref: OrderRef,
        /// The error.
        error: ApiError,
    },
    /// A create whose outcome was unknown was looked up in `GET /portfolio/orders`.
    Reconciled {
        /// Strategy slot.
        strategy: u16,
        /// The order.
        order_ref: OrderRef,
        /// It was found there (its state was taken from the listing).
        found: bool,
        /// It was absent and has been queued to send again (same `client_order_id`).
        resent: bool,
    },
    /// `DELETE /portfolio/events/orders` (cancel all) was accepted.
    CancelledAll,
    /// A resync read the venue's position in a market of the universe
    /// (`GET /portfolio/positions`).
    Position {
        /// Market.
        market: MarketId,
        /// `position_fp`: hundredths of a contract, + YES / − NO.
        qty: Qty,
        /// `market_exposure_dollars`: what the position cost, micro-dollars (≥ 0).
        exposure: Money,
    },
    /// The last page of a positions read was handled: every `Position` of it is out.
    PositionsRead,
}

impl GatewayEvent {
    /// The pipeline event, for `Exec`.
    pub fn exec(&self) -> Option<ExecEvent> {
        match self {
            GatewayEvent::Exec(e) => Some(*e),
            _ => None,
        }
    }
}

/// Lifecycle of one order in the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Accepted by the gateway, queued (waiting for a connection or tokens).
    PendingSend,
    /// Written to a connection; no answer yet.
    Sent,
    /// The create's outcome is unknown; being looked up in `GET /portfolio/orders`.
    Reconciling,
    /// Acknowledged and resting on the book.
    Resting,
    /// Fully filled.
    Executed,
    /// Cancelled (possibly after partial fills).
    Canceled,
    /// Refused by the venue or the gateway.
    Rejected,
}

impl Phase {
    /// Executed, canceled or rejected.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Phase::Executed | Phase::Canceled | Phase::Rejected)
    }
}

/// A handle on a record: slot index and generation (a retired slot's handle goes stale).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderKey {
    idx: u32,
    gen: u32,
}

/// What the gateway knows about a new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Strategy slot.
    pub strategy: u16,
    /// The strategy's handle; with `strategy` it makes the `client_order_id`.
    pub order_ref: OrderRef,
    /// Market.
    pub market: MarketId,
    /// V2 book side.
    pub side: BookSide,
    /// Limit, YES scale.
    pub yes_price: Price,
    /// Size, hundredths.
    pub qty: Qty,
    /// Time in force.
    pub tif: TimeInForce,
    /// Post-only.
    pub post_only: bool,
    /// Strategy tag, reported with fills and updates.
    pub tag: u32,
    /// Shard of the market.
    pub exchange_index: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SnapState {
    filled: Qty,
    remaining: Option<Qty>,
    ts_ms: i64,
}

/// One order's state. Public fields are read-only views for callers; the table updates them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrderRecord {
    /// The order as submitted (price and size updated by amends and decreases).
    pub order: NewOrder,
    /// `client_order_id`.
    pub client_order_id: ClientOrderId,
    /// Kalshi's `order_id`, once any source named it.
    pub order_id: Option<OrderId>,
    /// Lifecycle phase.
    pub phase: Phase,
    /// Filled and reported in `Fill` events, hundredths.
    pub filled: Qty,
    /// Resting at the venue as last derived, hundredths (0 once terminal).
    pub remaining: Qty,
    /// First time the create was written, unix ns (0 = not yet).
    pub first_sent_ns: u64,
    /// Last time the create was written, unix ns.
    pub sent_ns: u64,
    /// Header age of the last create written, ns.
    pub header_age_ns: u64,
    /// Times the create was written (1 normally; more after 429s and reconciliation resends).
    pub sends: u32,
    /// When the record became terminal, unix ns (0 = not terminal).
    pub done_ns: u64,
    gen: u32,
    snap: Option<SnapState>,
    venue_status: Option<VenueStatus>,
    msg_filled: Qty,
    acked: bool,
    was_resting: bool,
    avg_price: Option<Price>,
    avg_fee: Option<Money>,
    rejected: Option<RejectReason>,
    last_update: Option<(OrderStatus, Qty, Qty, Price)>,
    /// The market's fee rules and the account's precision, when known.
    fee_rule: Option<(FeeSchedule, AccountPrecision)>,
    /// What this order has been charged so far.
    fees: OrderFeeAccumulator,
}

/// Why an order could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Its `client_order_id` is already in the table (an `order_ref` reused by its strategy).
    #[error("client_order_id already in use (order_ref reused)")]
    Duplicate,
    /// The table is at its capacity.
    #[error("order table full ({0} orders)")]
    Full(usize),
}

/// How a fill being reported should be priced.
#[derive(Clone, Copy, Debug)]
enum FillCtx {
    /// From a `fill` message.
    Msg { price: Price, fee: Money, count: Qty, taker: bool, post: Qty, ts_ns: u64 },
    /// From a snapshot; `creation` = the create response (taker fills at creation).
    Snapshot { creation: bool, ts_ns: u64 },
}

/// Every order the gateway tracks; see the module docs.
pub struct OrderTable {
    slots: Vec<Option<OrderRecord>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    by_client_id: HashMap<ClientOrderId, OrderKey>,
    by_order_id: HashMap<OrderId, OrderKey>,
    retiring: VecDeque<(OrderKey, u64)>,
    capacity: usize,
    session: u32,
    /// `user_order` / `fill` messages that named no order of this table.
    pub unknown_messages: u64,
    /// Rejects that arrived for an order the venue had already acknowledged (ignored).
    pub conflicting_rejects: u64,
    /// `fill` messages whose `fee_cost` is not the trade fee the fee rules give for the fill
    /// (the order is still charged per the rules; see the module docs, *Fees*).
    pub fee_mismatches: u64,
    /// Each market's fee rules (by [`MarketId`]) and the account's precision; empty: none known.
    fee_rules: Vec<FeeSchedule>,
    precision: AccountPrecision,
}

impl fmt::Debug for OrderTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderTable").field("live", &self.len()).field("capacity", &self.capacity).finish()
    }
}

impl OrderTable {
    /// A table for up to `capacity` orders at once (allocated now), session id 0.
    pub fn new(capacity: usize) -> OrderTable {
        OrderTable::with_session(capacity, 0)
    }

    /// A table whose `client_order_id`s carry `session` ([`super::encode::new_session_id`]).
    pub fn with_session(capacity: usize, session: u32) -> OrderTable {
        OrderTable {
            session,
            slots: Vec::with_capacity(capacity),
            gens: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            by_client_id: HashMap::with_capacity(capacity),
            by_order_id: HashMap::with_capacity(capacity),
            retiring: VecDeque::with_capacity(capacity),
            capacity,
            unknown_messages: 0,
            conflicting_rejects: 0,
            fee_mismatches: 0,
            fee_rules: Vec::new(),
            precision: AccountPrecision::Cent,
        }
    }

    /// Sets the fee rules: `schedules[m]` for [`MarketId`] `m`, and the account's balance
    /// precision. Orders inserted from now on are charged per the rules (module docs, *Fees*).
    /// Cold: call at setup.
    pub fn set_fee_rules(&mut self, schedules: Vec<FeeSchedule>, precision: AccountPrecision) {
        self.fee_rules = schedules;
        self.precision = precision;
    }

    /// Orders in the table (live and not yet retired).
    pub fn len(&self) -> usize {
        self.by_client_id.len()
    }

    /// True when no order is tracked.
    pub fn is_empty(&self) -> bool {
        self.by_client_id.is_empty()
    }

    /// Adds `o` in phase `PendingSend`.
    pub fn insert(&mut self, o: NewOrder) -> Result<OrderKey, TableError> {
        let coid = client_order_id(self.session, o.strategy, o.order_ref);
        if self.by_client_id.contains_key(&coid) {
            return Err(TableError::Duplicate);
        }
        let idx = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < self.capacity => {
                self.slots.push(None);
                self.gens.push(0);
                (self.slots.len() - 1) as u32
            }
            None => return Err(TableError::Full(self.capacity)),
        };
        let gen = self.gens[idx as usize];
        let key = OrderKey { idx, gen };
        self.slots[idx as usize] = Some(OrderRecord {
            order: o,
            client_order_id: coid,
            order_id: None,
            phase: Phase::PendingSend,
            filled: Qty::ZERO,
            remaining: o.qty,
            first_sent_ns: 0,
            sent_ns: 0,
            header_age_ns: 0,
            sends: 0,
            done_ns: 0,
            gen,
            snap: None,
            venue_status: None,
            msg_filled: Qty::ZERO,
            acked: false,
            was_resting: false,
            avg_price: None,
            avg_fee: None,
            rejected: None,
            last_update: None,
            fee_rule: self.fee_rules.get(o.market.0 as usize).map(|s| (*s, self.precision)),
            fees: OrderFeeAccumulator::new(),
        });
        self.by_client_id.insert(coid, key);
        Ok(key)
    }

    /// The record behind `key`, if it was not retired.
    #[inline]
    pub fn get(&self, key: OrderKey) -> Option<&OrderRecord> {
        self.slots.get(key.idx as usize)?.as_ref().filter(|r| r.gen == key.gen)
    }

    #[inline]
    fn get_mut(&mut self, key: OrderKey) -> Option<&mut OrderRecord> {
        self.slots.get_mut(key.idx as usize)?.as_mut().filter(|r| r.gen == key.gen)
    }

    /// The order with this `client_order_id`.
    pub fn find_client_id(&self, coid: &str) -> Option<OrderKey> {
        let k: ClientOrderId = coid.as_bytes().try_into().ok()?;
        self.by_client_id.get(&k).copied()
    }

    /// The order with this Kalshi `order_id`.
    pub fn find_order_id(&self, oid: &str) -> Option<OrderKey> {
        self.by_order_id.get(&OrderId::exact(oid)?).copied()
    }

    /// The session id in this table's `client_order_id`s.
    pub fn session(&self) -> u32 {
        self.session
    }

    /// The order `order_ref` of `strategy`.
    pub fn find_ref(&self, strategy: u16, order_ref: OrderRef) -> Option<OrderKey> {
        self.by_client_id.get(&client_order_id(self.session, strategy, order_ref)).copied()
    }

    fn find_msg(&self, coid: &str, oid: &str) -> Option<OrderKey> {
        if !coid.is_empty() {
            if let Some(k) = self.find_client_id(coid) {
                return Some(k);
            }
        }
        self.find_order_id(oid)
    }

    fn bind_order_id(&mut self, key: OrderKey, oid: &str) {
        let Some(id) = OrderId::exact(oid) else { return };
        if oid.is_empty() {
            return;
        }
        let Some(r) = self.get_mut(key) else { return };
        if r.order_id == Some(id) {
            return;
        }
        let old = r.order_id.replace(id);
        if let Some(old) = old {
            // An amend may hand back a new id: the old one no longer names this order.
            self.by_order_id.remove(&old);
        }
        self.by_order_id.insert(id, key);
    }

    /// Records that the create of `key` was written at `now_ns` with a header `header_age_ns`
    /// old; phase `Sent`.
    pub fn mark_sent(&mut self, key: OrderKey, now_ns: u64, header_age_ns: u64) {
        if let Some(r) = self.get_mut(key) {
            if r.first_sent_ns == 0 {
                r.first_sent_ns = now_ns;
            }
            r.sent_ns = now_ns;
            r.header_age_ns = header_age_ns;
            r.sends += 1;
            if matches!(r.phase, Phase::PendingSend | Phase::Reconciling) {
                r.phase = Phase::Sent;
            }
        }
    }

    /// The create of `key` has an unknown outcome. Returns true when it must be reconciled (no
    /// source has named it yet; phase `Reconciling`), false when its state is already known.
    pub fn mark_unknown(&mut self, key: OrderKey) -> bool {
        match self.get_mut(key) {
            Some(r) if !r.acked && r.rejected.is_none() => {
                r.phase = Phase::Reconciling;
                true
            }
            _ => false,
        }
    }

    /// True while `key` still awaits reconciliation and no source has named it since.
    pub fn needs_resend(&self, key: OrderKey) -> bool {
        self.get(key).is_some_and(|r| r.phase == Phase::Reconciling && !r.acked && r.order_id.is_none())
    }

    /// `key` was absent from the listing and will be sent again: phase `PendingSend`.
    pub fn mark_resend(&mut self, key: OrderKey) {
        if let Some(r) = self.get_mut(key) {
            r.phase = Phase::PendingSend;
        }
    }

    /// A snapshot of `key` from the create (or batch item) response (`creation` = true) or from
    /// a reconciliation listing (`creation` = false), naming `order_id`.
    pub fn on_snapshot(
        &mut self,
        key: OrderKey,
        order_id: &str,
        s: &Snapshot,
        creation: bool,
        now_ns: u64,
        out: &mut Vec<GatewayEvent>,
    ) {
        self.bind_order_id(key, order_id);
        if let Some(r) = self.get_mut(key) {
            apply_snapshot(r, s);
            settle(r, FillCtx::Snapshot { creation, ts_ns: now_ns }, out);
        }
        self.schedule_retire(key, now_ns);
    }

    /// A `user_order` message. Returns false when it names no order of this table.
    pub fn on_user_order(&mut self, u: &UserOrderUpdate<'_>, now_ns: u64, out: &mut Vec<GatewayEvent>) -> bool {
        let Some(key) = self.find_msg(u.client_order_id, u.order_id) else {
            self.unknown_messages += 1;
            return false;
        };
        self.bind_order_id(key, u.order_id);
        let s = Snapshot {
            status: Some(u.status),
            filled: u.fill_count,
            remaining: Some(u.remaining_count),
            ts_ms: u.ts_ms,
            avg_price: None,
            avg_fee: None,
        };
        if let Some(r) = self.get_mut(key) {
            apply_snapshot(r, &s);
            settle(r, FillCtx::Snapshot { creation: false, ts_ns: now_ns }, out);
        }
        self.schedule_retire(key, now_ns);
        true
    }

    /// A `fill` message. Returns false when it names no order of this table.
    pub fn on_fill(&mut self, f: &FillReport<'_>, now_ns: u64, out: &mut Vec<GatewayEvent>) -> bool {
        let Some(key) = self.find_msg(f.client_order_id, f.order_id) else {
            self.unknown_messages += 1;
            return false;
        };
        self.bind_order_id(key, f.order_id);
        if let Some(r) = self.get_mut(key) {
            r.msg_filled += f.count;
            // A fill proves the venue has the order; for a GTC the remainder rests.
            r.acked = true;
            let ctx = FillCtx::Msg {
                price: f.yes_price,
                fee: f.fee,
                count: f.count,
                taker: f.is_taker,
                post: f.post_position,
                ts_ns: now_ns,
            };
            if settle(r, ctx, out) {
                self.fee_mismatches += 1;
            }
        }
        self.schedule_retire(key, now_ns);
        true
    }

    /// The venue (or the gateway) refused the create of `key` for `reason`. Ignored (and
    /// counted) when a source has already shown the venue holds the order.
    pub fn on_reject(&mut self, key: OrderKey, reason: RejectReason, now_ns: u64, out: &mut Vec<GatewayEvent>) {
        let Some(r) = self.get_mut(key) else { return };
        if r.acked {
            self.conflicting_rejects += 1;
            return;
        }
        r.rejected = Some(reason);
        settle(r, FillCtx::Snapshot { creation: true, ts_ns: now_ns }, out);
        self.schedule_retire(key, now_ns);
    }

    /// A cancel of `key` was acknowledged (keyed by our request, not the response body, which
    /// Kalshi has been seen to get wrong, `kalshi-protocol.md` §3.6).
    pub fn on_cancelled(&mut self, key: OrderKey, now_ns: u64, out: &mut Vec<GatewayEvent>) {
        if let Some(r) = self.get_mut(key) {
            r.acked = true;
            if !r.venue_status.is_some_and(VenueStatus::is_terminal) {
                r.venue_status = Some(VenueStatus::Canceled);
            }
            settle(r, FillCtx::Snapshot { creation: false, ts_ns: now_ns }, out);
        }
        self.schedule_retire(key, now_ns);
    }

    /// An amend of `key` to `yes_price` and total size `total` was acknowledged; `s` holds the
    /// response's counts when it gave them, `order_id` its order id.
    #[allow(clippy::too_many_arguments)]
    pub fn on_amended(
        &mut self,
        key: OrderKey,
        order_id: &str,
        yes_price: Price,
        total: Qty,
        s: Option<&Snapshot>,
        now_ns: u64,
        out: &mut Vec<GatewayEvent>,
    ) {
        self.bind_order_id(key, order_id);
        let Some(r) = self.get_mut(key) else { return };
        r.order.yes_price = yes_price;
        r.order.qty = total;
        r.acked = true;
        match s {
            Some(s) => apply_snapshot(r, s),
            None => {
                let filled = r.filled;
                let snap = Snapshot {
                    status: None,
                    filled,
                    remaining: Some(Qty((total.0 - filled.0).max(0))),
                    ts_ms: r.snap.map_or(0, |p| p.ts_ms),
                    avg_price: None,
                    avg_fee: None,
                };
                apply_snapshot(r, &snap);
            }
        }
        settle(r, FillCtx::Snapshot { creation: false, ts_ns: now_ns }, out);
        self.schedule_retire(key, now_ns);
    }

    /// A decrease of `key` was acknowledged with `remaining` left resting (0 cancels it).
    pub fn on_decreased(
        &mut self,
        key: OrderKey,
        remaining: Qty,
        ts_ms: i64,
        now_ns: u64,
        out: &mut Vec<GatewayEvent>,
    ) {
        let Some(r) = self.get_mut(key) else { return };
        r.acked = true;
        let filled = r.snap.map_or(Qty::ZERO, |s| s.filled).max(r.msg_filled);
        let s = Snapshot {
            status: if remaining.0 <= 0 { Some(VenueStatus::Canceled) } else { None },
            filled,
            remaining: Some(remaining),
            ts_ms: ts_ms.max(r.snap.map_or(0, |p| p.ts_ms)),
            avg_price: None,
            avg_fee: None,
        };
        apply_snapshot(r, &s);
        settle(r, FillCtx::Snapshot { creation: false, ts_ns: now_ns }, out);
        self.schedule_retire(key, now_ns);
    }

    /// Retires records that became terminal more than `retain_ns` before `now_ns` (late
    /// `fill`s still find an order that long after it ended); returns how many were retired.
    pub fn retire(&mut self, now_ns: u64, retain_ns: u64) -> usize {
        let mut n = 0;
        while let Some(&(key, at)) = self.retiring.front() {
            if at.saturating_add(retain_ns) > now_ns {
                break;
            }
            self.retiring.pop_front();
            let Some(r) = self.get(key) else { continue };
            let (coid, oid) = (r.client_order_id, r.order_id);
            self.by_client_id.remove(&coid);
            if let Some(oid) = oid {
                if self.by_order_id.get(&oid) == Some(&key) {
                    self.by_order_id.remove(&oid);
                }
            }
            self.slots[key.idx as usize] = None;
            self.gens[key.idx as usize] = self.gens[key.idx as usize].wrapping_add(1);
            self.free.push(key.idx);
            n += 1;
        }
        n
    }

    /// Schedules `key` for retirement if it is terminal and not yet scheduled (every input
    /// method does this itself).
    pub fn schedule_retire(&mut self, key: OrderKey, now_ns: u64) {
        if let Some(r) = self.get_mut(key) {
            if r.phase.is_terminal() && r.done_ns == 0 {
                r.done_ns = now_ns.max(1);
                self.retiring.push_back((key, now_ns));
            }
        }
    }

    /// Every key in the table (cold path: reports, tests).
    pub fn keys(&self) -> Vec<OrderKey> {
        self.by_client_id.values().copied().collect()
    }
}

/// Merges `s` into `r`: counts from the newer snapshot, terminal status sticky.
fn apply_snapshot(r: &mut OrderRecord, s: &Snapshot) {
    let newer = match r.snap {
        None => true,
        Some(c) => s.filled > c.filled || (s.filled == c.filled && s.ts_ms >= c.ts_ms),
    };
    // The status the snapshot states, or derives from its counts.
    let total = r.order.qty;
    let status = s.status.or_else(|| {
        s.remaining.map(|rem| match () {
            _ if rem.0 > 0 => VenueStatus::Resting,
            _ if s.filled >= total => VenueStatus::Executed,
            _ => VenueStatus::Canceled,
        })
    });
    if newer {
        r.snap = Some(SnapState { filled: s.filled, remaining: s.remaining, ts_ms: s.ts_ms });
        if let (Some(VenueStatus::Resting), Some(rem)) = (status, s.remaining) {
            // A resting order's size is filled + remaining (amends, decreases).
            r.order.qty = s.filled + rem;
        }
    }
    match (r.venue_status, status) {
        (Some(cur), _) if cur.is_terminal() => {}
        (_, Some(st)) if st.is_terminal() => r.venue_status = Some(st),
        (_, Some(VenueStatus::Resting)) if newer || r.venue_status.is_none() => {
            r.venue_status = Some(VenueStatus::Resting);
        }
        _ => {}
    }
    r.acked = true;
    if s.avg_price.is_some() {
        r.avg_price = s.avg_price;
        r.avg_fee = s.avg_fee;
    }
}

/// Reports what changed in `r` since the last report: fills first, then the status.
/// Returns true when a `fill` message's `fee_cost` disagreed with the fee rules.
fn settle(r: &mut OrderRecord, ctx: FillCtx, out: &mut Vec<GatewayEvent>) -> bool {
    let o = r.order;
    let venue_filled = r.snap.map_or(Qty::ZERO, |s| s.filled);
    let filled = venue_filled.max(r.msg_filled);
    let mut mismatch = false;
    if filled > r.filled {
        let q = filled - r.filled;
        let (yes_price, fee, liquidity, post_position, ts_ns) = match ctx {
            FillCtx::Msg { price, fee, count, taker, post, ts_ns } => {
                let fee = if count.0 > 0 && q != count { Money(fee.0 * q.0 / count.0) } else { fee };
                (price, fee, if taker { Liquidity::Taker } else { Liquidity::Maker }, post, ts_ns)
            }
            FillCtx::Snapshot { creation, ts_ns } => {
                let taker = creation || !r.was_resting;
                // A resting (maker) fill executes at the order's own limit.
                let price = if taker { r.avg_price.unwrap_or(o.yes_price) } else { o.yes_price };
                let fee = r.avg_fee.map_or(Money::ZERO, |f| Money(f.0 * q.0 / Qty::ONE_CONTRACT));
                (price, fee, if taker { Liquidity::Taker } else { Liquidity::Maker }, Qty::ZERO, ts_ns)
            }
        };
        let fee = match r.fee_rule {
            Some((sched, precision)) => {
                let f = if sched.is_waived((ts_ns / 1_000_000) as i64) {
                    Default::default()
                } else {
                    r.fees.on_fill(&sched, liquidity, yes_price, q, precision)
                };
                if let FillCtx::Msg { fee: fee_cost, count, .. } = ctx {
                    mismatch = q == count && f.trade_fee != fee_cost;
                }
                f.charged
            }
            None => fee,
        };
        out.push(GatewayEvent::Exec(ExecEvent::Fill {
            strategy: o.strategy,
            fill: Fill {
                order_ref: o.order_ref,
                market: o.market,
                side: o.side,
                liquidity,
                yes_price,
                qty: q,
                fee,
                post_position,
                ts_ns,
                tag: o.tag,
            },
        }));
        r.filled = filled;
    }
    let status = if r.rejected.is_some() {
        Some(OrderStatus::Rejected)
    } else {
        match r.venue_status {
            Some(VenueStatus::Executed) => Some(OrderStatus::Filled),
            Some(VenueStatus::Canceled) => Some(OrderStatus::Cancelled),
            _ if o.qty.0 > 0 && filled >= o.qty => Some(OrderStatus::Filled),
            Some(VenueStatus::Resting) => Some(OrderStatus::Resting),
            // Only a GTC rests: an IoC/FoK with fills but no status yet waits for one.
            None if r.acked && o.tif == TimeInForce::Gtc => Some(OrderStatus::Resting),
            None => None,
        }
    };
    let remaining = match status {
        Some(OrderStatus::Resting) => match r.snap {
            Some(SnapState { filled: sf, remaining: Some(rem), .. }) => {
                Qty((rem.0 - (r.msg_filled.0 - sf.0).max(0)).max(0))
            }
            _ => Qty((o.qty.0 - filled.0).max(0)),
        },
        Some(_) => Qty::ZERO,
        None => r.remaining,
    };
    r.remaining = remaining;
    r.phase = match status {
        Some(OrderStatus::Resting) => {
            r.was_resting = true;
            Phase::Resting
        }
        Some(OrderStatus::Filled) => Phase::Executed,
        Some(OrderStatus::Cancelled) => Phase::Canceled,
        Some(OrderStatus::Rejected) => Phase::Rejected,
        None => r.phase,
    };
    let Some(status) = status else { return mismatch };
    if r.last_update.is_some_and(|(s, ..)| s != OrderStatus::Resting) {
        return mismatch; // terminal already reported
    }
    let key = (status, filled, remaining, o.yes_price);
    if r.last_update == Some(key) {
        return mismatch;
    }
    r.last_update = Some(key);
    out.push(GatewayEvent::Exec(ExecEvent::Update {
        strategy: o.strategy,
        update: OrderUpdate {
            order_ref: o.order_ref,
            market: o.market,
            status,
            reason: r.rejected.unwrap_or(RejectReason::Venue),
            filled,
            remaining,
            tag: o.tag,
        },
        side: o.side,
        yes_price: o.yes_price,
    }));
    mismatch
}

// ---------------------------------------------------------------------------------------------
// JSON readers for the WebSocket messages (cold helpers for wiring and tests) and the counts in
// REST bodies.

/// A fixed-point value from JSON: a string (`"10.00"`, Kalshi's form) or a number, inline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Num(pub InlineStr<32>);

impl<'de> serde::Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal string or number")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Num, E> {
                InlineStr::exact(s).map(Num).ok_or_else(|| E::custom("decimal string too long"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Num, E> {
                let mut s = InlineStr::default();
                let _ = fmt::Write::write_fmt(&mut s, format_args!("{v}"));
                Ok(Num(s))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Num, E> {
                let mut s = InlineStr::default();
                let _ = fmt::Write::write_fmt(&mut s, format_args!("{v}"));
                Ok(Num(s))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Num, E> {
                let mut s = InlineStr::default();
                let _ = fmt::Write::write_fmt(&mut s, format_args!("{v:.6}"));
                Ok(Num(s))
            }
        }
        d.deserialize_any(V)
    }
}

impl Num {
    /// As a count, hundredths (decimals past the second must be zeros).
    pub fn qty(&self) -> Option<Qty> {
        Qty::parse(self.0.as_str()).ok()
    }

    /// As a price, YES scale, truncated past 4 decimals (averages carry more).
    pub fn price(&self) -> Option<Price> {
        let v = parse_truncated(self.0.as_str(), 4)?;
        (0..=i64::from(Price::ONE)).contains(&v).then_some(Price(v as u16))
    }

    /// As dollars, micro-dollars, truncated past 6 decimals.
    pub fn money(&self) -> Option<Money> {
        parse_truncated(self.0.as_str(), 6).map(Money)
    }
}

/// `s` scaled by `10^scale`, decimals past `scale` dropped.
fn parse_truncated(s: &str, scale: usize) -> Option<i64> {
    let t = match s.split_once('.') {
        Some((int, frac)) => &s[..int.len() + 1 + frac.len().min(scale)],
        None => s,
    };
    strike_sdk::num::parse_fixed(t.as_bytes(), scale as u32, true).ok()
}

#[derive(serde::Deserialize)]
struct Frame<T> {
    msg: T,
}

#[derive(serde::Deserialize)]
struct UserOrderJson<'a> {
    #[serde(borrow)]
    order_id: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    client_order_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    status: std::borrow::Cow<'a, str>,
    fill_count_fp: Num,
    remaining_count_fp: Num,
    #[serde(default)]
    last_updated_ts_ms: Option<i64>,
}

#[derive(serde::Deserialize)]
struct FillJson<'a> {
    #[serde(borrow)]
    order_id: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    client_order_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    trade_id: Option<std::borrow::Cow<'a, str>>,
    yes_price_dollars: Num,
    count_fp: Num,
    #[serde(default)]
    fee_cost: Option<Num>,
    is_taker: bool,
    #[serde(default)]
    post_position_fp: Option<Num>,
    #[serde(default)]
    ts_ms: Option<i64>,
}

fn cow_str<'a>(c: &'a std::borrow::Cow<'a, str>) -> &'a str {
    c.as_ref()
}

/// Parses a WebSocket `user_order` frame (`{"type":"user_order","sid":..,"msg":{..}}`) and hands
/// the update to `f` (the strings borrow from the frame, or from a temporary when escaped).
/// Cold helper: the feed's own tape parser is the hot path.
pub fn parse_user_order<R>(frame: &[u8], f: impl FnOnce(&UserOrderUpdate<'_>) -> R) -> Result<R, String> {
    let m: Frame<UserOrderJson<'_>> = serde_json::from_slice(frame).map_err(|e| format!("user_order: {e}"))?;
    let m = m.msg;
    let u = UserOrderUpdate {
        order_id: cow_str(&m.order_id),
        client_order_id: m.client_order_id.as_ref().map_or("", cow_str),
        status: VenueStatus::parse(&m.status).ok_or_else(|| format!("user_order: unknown status {:?}", m.status))?,
        fill_count: m.fill_count_fp.qty().ok_or("user_order: bad fill_count_fp")?,
        remaining_count: m.remaining_count_fp.qty().ok_or("user_order: bad remaining_count_fp")?,
        ts_ms: m.last_updated_ts_ms.unwrap_or(0),
    };
    Ok(f(&u))
}

/// Parses a WebSocket `fill` frame and hands the report to `f`; see [`parse_user_order`].
pub fn parse_fill<R>(frame: &[u8], f: impl FnOnce(&FillReport<'_>) -> R) -> Result<R, String> {
    let m: Frame<FillJson<'_>> = serde_json::from_slice(frame).map_err(|e| format!("fill: {e}"))?;
    let m = m.msg;
    let r = FillReport {
        order_id: cow_str(&m.order_id),
        client_order_id: m.client_order_id.as_ref().map_or("", cow_str),
        trade_id: m.trade_id.as_ref().map_or("", cow_str),
        yes_price: m.yes_price_dollars.price().ok_or("fill: bad yes_price_dollars")?,
        count: m.count_fp.qty().ok_or("fill: bad count_fp")?,
        fee: m.fee_cost.and_then(|n| n.money()).unwrap_or(Money::ZERO),
        is_taker: m.is_taker,
        post_position: m.post_position_fp.and_then(|n| n.qty()).unwrap_or(Qty::ZERO),
        ts_ms: m.ts_ms.unwrap_or(0),
    };
    Ok(f(&r))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "3b23c1c7-0000-4000-8000-000000000001";

    fn order(tif: TimeInForce, qty: i64) -> NewOrder {
        NewOrder {
            strategy: 1,
            order_ref: OrderRef(7),
            market: MarketId(0),
            side: BookSide::Bid,
            yes_price: Price(5600),
            qty: Qty::contracts(qty),
            tif,
            post_only: false,
            tag: 42,
            exchange_index: 0,
        }
    }

    fn coid() -> String {
        String::from_utf8(client_order_id(0, 1, OrderRef(7)).to_vec()).unwrap()
    }

    #[derive(Clone, Copy, Debug)]
    enum Input {
        /// The create response: filled, remaining (contracts).
        Response(i64, i64),
        /// A user_order: status, filled, remaining, ts.
        UserOrder(VenueStatus, i64, i64, i64),
        /// A fill message: contracts, taker.
        Fill(i64, bool),
    }

    struct Run {
        events: Vec<GatewayEvent>,
        rec: OrderRecord,
    }

    fn run(tif: TimeInForce, qty: i64, inputs: &[Input]) -> Run {
        let mut t = OrderTable::new(8);
        let key = t.insert(order(tif, qty)).unwrap();
        t.mark_sent(key, 1_000, 5);
        let mut out = Vec::new();
        let c = coid();
        for (i, inp) in inputs.iter().enumerate() {
            let now = 2_000 + i as u64;
            match *inp {
                Input::Response(f, r) => {
                    let s = Snapshot {
                        status: None,
                        filled: Qty::contracts(f),
                        remaining: Some(Qty::contracts(r)),
                        ts_ms: 100,
                        avg_price: (f > 0).then_some(Price(5500)),
                        avg_fee: (f > 0).then_some(Money(17_500)),
                    };
                    t.on_snapshot(key, OID, &s, true, now, &mut out);
                }
                Input::UserOrder(st, f, r, ts) => {
                    let u = UserOrderUpdate {
                        order_id: OID,
                        client_order_id: &c,
                        status: st,
                        fill_count: Qty::contracts(f),
                        remaining_count: Qty::contracts(r),
                        ts_ms: ts,
                    };
                    assert!(t.on_user_order(&u, now, &mut out));
                }
                Input::Fill(n, taker) => {
                    let f = FillReport {
                        order_id: OID,
                        client_order_id: &c,
                        trade_id: "t1",
                        yes_price: Price(5500),
                        count: Qty::contracts(n),
                        fee: Money(17_500 * n),
                        is_taker: taker,
                        post_position: Qty::contracts(n),
                        ts_ms: 101,
                    };
                    assert!(t.on_fill(&f, now, &mut out));
                }
            }
        }
        Run { events: out, rec: *t.get(key).unwrap() }
    }

    fn permutations(items: &[Input]) -> Vec<Vec<Input>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut all = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first);
                all.push(p);
            }
        }
        all
    }

    fn fills(events: &[GatewayEvent]) -> Vec<Fill> {
        events
            .iter()
            .filter_map(|e| match e {
                GatewayEvent::Exec(ExecEvent::Fill { fill, .. }) => Some(*fill),
                _ => None,
            })
            .collect()
    }

    fn updates(events: &[GatewayEvent]) -> Vec<OrderUpdate> {
        events
            .iter()
            .filter_map(|e| match e {
                GatewayEvent::Exec(ExecEvent::Update { update, .. }) => Some(*update),
                _ => None,
            })
            .collect()
    }

    /// Checks the invariants every arrival order must give.
    fn check(r: &Run, what: &str, status: OrderStatus, filled: i64, remaining: i64) {
        let fl = fills(&r.events);
        let total: i64 = fl.iter().map(|f| f.qty.0).sum();
        assert_eq!(total, Qty::contracts(filled).0, "{what}: total filled {:?}", r.events);
        assert!(fl.iter().all(|f| f.qty.0 > 0 && f.order_ref == OrderRef(7) && f.tag == 42), "{what}");
        let ups = updates(&r.events);
        let last = ups.last().unwrap_or_else(|| panic!("{what}: no update"));
        assert_eq!(
            (last.status, last.filled, last.remaining),
            (status, Qty::contracts(filled), Qty::contracts(remaining)),
            "{what}"
        );
        let terminal = ups.iter().filter(|u| u.status != OrderStatus::Resting).count();
        assert_eq!(terminal, usize::from(status != OrderStatus::Resting), "{what}: terminal updates {ups:?}");
        // No update after the terminal one, and every fill precedes the terminal update's
        // filled count.
        if let Some(i) = ups.iter().position(|u| u.status != OrderStatus::Resting) {
            assert_eq!(i, ups.len() - 1, "{what}");
        }
        assert_eq!(r.rec.order_id.unwrap().as_str(), OID, "{what}");
        assert_eq!(r.rec.filled, Qty::contracts(filled), "{what}");
        assert_eq!(r.rec.remaining, Qty::contracts(remaining), "{what}");
    }

    #[test]
    fn create_that_fills_every_arrival_order() {
        // A marketable order for 10 that fills at once: response, user_order, fill, in all six
        // orders, for GTC, IoC and FoK.
        for tif in [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok] {
            let items =
                [Input::Response(10, 0), Input::UserOrder(VenueStatus::Executed, 10, 0, 101), Input::Fill(10, true)];
            let perms = permutations(&items);
            assert_eq!(perms.len(), 6);
            for p in perms {
                let r = run(tif, 10, &p);
                let what = format!("{tif:?} {p:?}");
                check(&r, &what, OrderStatus::Filled, 10, 0);
                assert_eq!(r.rec.phase, Phase::Executed, "{what}");
                // When the fill message comes first its exact fee and taker flag are used.
                if let Input::Fill(..) = p[0] {
                    let f = fills(&r.events)[0];
                    assert_eq!((f.fee, f.liquidity, f.yes_price), (Money(175_000), Liquidity::Taker, Price(5500)));
                }
                // Updates other than the terminal one can only be Resting with the fill seen.
                assert!(updates(&r.events).len() <= 2, "{what}: {:?}", r.events);
            }
        }
    }

    #[test]
    fn create_that_partly_fills_and_rests_every_arrival_order() {
        let items = [Input::Response(4, 6), Input::UserOrder(VenueStatus::Resting, 4, 6, 101), Input::Fill(4, true)];
        for p in permutations(&items) {
            let r = run(TimeInForce::Gtc, 10, &p);
            check(&r, &format!("{p:?}"), OrderStatus::Resting, 4, 6);
            assert_eq!(r.rec.phase, Phase::Resting);
        }
    }

    #[test]
    fn ioc_partial_fill_every_arrival_order() {
        // IoC for 10, 4 fill, the rest is cancelled: the response's remaining 0 with fill 4
        // means cancelled.
        let items = [Input::Response(4, 0), Input::UserOrder(VenueStatus::Canceled, 4, 0, 101), Input::Fill(4, true)];
        for p in permutations(&items) {
            let r = run(TimeInForce::Ioc, 10, &p);
            check(&r, &format!("{p:?}"), OrderStatus::Cancelled, 4, 0);
            assert_eq!(r.rec.phase, Phase::Canceled);
        }
    }

    #[test]
    fn fill_before_the_order_is_known_resting_then_filled_later() {
        // GTC rests, then two maker fills of 4 and 6, with snapshots interleaved late.
        let items = [
            Input::Response(0, 10),
            Input::Fill(4, false),
            Input::UserOrder(VenueStatus::Resting, 4, 6, 150),
            Input::Fill(6, false),
            Input::UserOrder(VenueStatus::Executed, 10, 0, 200),
        ];
        for p in permutations(&items) {
            let r = run(TimeInForce::Gtc, 10, &p);
            check(&r, &format!("{p:?}"), OrderStatus::Filled, 10, 0);
        }
    }

    #[test]
    fn with_fee_rules_every_arrival_order_books_the_accumulators_charge() {
        // FoK for 7 at 0.55 on a `quadratic` market, cent precision: exact fee
        // 0.07 × 7 × 0.55 × 0.45 = 0.121275; trade fee (the message's fee_cost) 0.1213; charged
        // 0.13. The response's average fee is 0.13 / 7 = 0.018571 per contract (floored).
        let sched = strike_sdk::fees::FeeSchedule::default();
        let want = OrderFeeAccumulator::new().on_fill(
            &sched,
            Liquidity::Taker,
            Price(5500),
            Qty::contracts(7),
            AccountPrecision::Cent,
        );
        assert_eq!((want.trade_fee, want.charged), (Money(121_300), Money(130_000)));
        let c = coid();
        let booked = |rules: bool, message_first: bool, fee_cost: Money| {
            let mut t = OrderTable::new(4);
            if rules {
                t.set_fee_rules(vec![sched], AccountPrecision::Cent);
            }
            let key = t.insert(order(TimeInForce::Fok, 7)).unwrap();
            t.mark_sent(key, 1_000, 5);
            let mut out = Vec::new();
            let snap = Snapshot {
                status: None,
                filled: Qty::contracts(7),
                remaining: Some(Qty::ZERO),
                ts_ms: 100,
                avg_price: Some(Price(5500)),
                avg_fee: Some(Money(18_571)),
            };
            let fill = FillReport {
                order_id: OID,
                client_order_id: &c,
                trade_id: "t1",
                yes_price: Price(5500),
                count: Qty::contracts(7),
                fee: fee_cost,
                is_taker: true,
                post_position: Qty::contracts(7),
                ts_ms: 101,
            };
            for step in [message_first, !message_first] {
                if step {
                    assert!(t.on_fill(&fill, 2_000, &mut out));
                } else {
                    t.on_snapshot(key, OID, &snap, true, 2_001, &mut out);
                }
            }
            let f = fills(&out);
            assert_eq!(f.len(), 1);
            (f[0].fee, t.fee_mismatches)
        };
        for message_first in [true, false] {
            assert_eq!(booked(true, message_first, Money(121_300)), (Money(130_000), 0), "{message_first}");
        }
        // Without rules the booked fee depended on which input came first.
        assert_eq!(booked(false, true, Money(121_300)).0, Money(121_300));
        assert_eq!(booked(false, false, Money(121_300)).0, Money(129_997));
        // A fee_cost the rules do not give is counted; the order is still charged per the rules.
        assert_eq!(booked(true, true, Money(200_000)), (Money(130_000), 1));
    }

    #[test]
    fn stale_resting_never_revives_a_terminal_order() {
        let r =
            run(TimeInForce::Gtc, 10, &[Input::UserOrder(VenueStatus::Canceled, 0, 0, 300), Input::Response(0, 10)]);
        check(&r, "cancel first", OrderStatus::Cancelled, 0, 0);
        assert_eq!(updates(&r.events).len(), 1);
    }

    #[test]
    fn reject_and_conflicting_reject() {
        let mut t = OrderTable::new(4);
        let mut out = Vec::new();
        let k = t.insert(order(TimeInForce::Gtc, 10)).unwrap();
        t.mark_sent(k, 1, 0);
        t.on_reject(k, RejectReason::PostOnlyCross, 2, &mut out);
        let ups = updates(&out);
        assert_eq!(ups.len(), 1);
        assert_eq!((ups[0].status, ups[0].reason), (OrderStatus::Rejected, RejectReason::PostOnlyCross));
        assert_eq!(t.get(k).unwrap().phase, Phase::Rejected);

        // A reject for an order a user_order already showed resting is ignored.
        let mut o2 = order(TimeInForce::Gtc, 10);
        o2.order_ref = OrderRef(8);
        let k2 = t.insert(o2).unwrap();
        let c2 = String::from_utf8(client_order_id(0, 1, OrderRef(8)).to_vec()).unwrap();
        out.clear();
        t.on_user_order(
            &UserOrderUpdate {
                order_id: "o2",
                client_order_id: &c2,
                status: VenueStatus::Resting,
                fill_count: Qty::ZERO,
                remaining_count: Qty::contracts(10),
                ts_ms: 5,
            },
            3,
            &mut out,
        );
        t.on_reject(k2, RejectReason::Venue, 4, &mut out);
        assert_eq!(t.conflicting_rejects, 1);
        assert_eq!(t.get(k2).unwrap().phase, Phase::Resting);
        assert_eq!(t.find_order_id("o2"), Some(k2));
    }

    #[test]
    fn cancel_amend_decrease_and_unknown_messages() {
        let mut t = OrderTable::new(4);
        let mut out = Vec::new();
        let k = t.insert(order(TimeInForce::Gtc, 10)).unwrap();
        t.mark_sent(k, 1, 0);
        let rest = Snapshot {
            status: None,
            filled: Qty::ZERO,
            remaining: Some(Qty::contracts(10)),
            ts_ms: 10,
            avg_price: None,
            avg_fee: None,
        };
        t.on_snapshot(k, OID, &rest, true, 2, &mut out);
        t.on_amended(k, OID, Price(5700), Qty::contracts(12), None, 3, &mut out);
        let u = *updates(&out).last().unwrap();
        assert_eq!((u.status, u.remaining), (OrderStatus::Resting, Qty::contracts(12)));
        assert!(matches!(out.last(), Some(GatewayEvent::Exec(ExecEvent::Update { yes_price: Price(5700), .. }))));
        t.on_decreased(k, Qty::contracts(5), 20, 4, &mut out);
        assert_eq!(updates(&out).last().unwrap().remaining, Qty::contracts(5));
        assert_eq!(t.get(k).unwrap().order.qty, Qty::contracts(5));
        t.on_cancelled(k, 5, &mut out);
        let u = *updates(&out).last().unwrap();
        assert_eq!((u.status, u.remaining), (OrderStatus::Cancelled, Qty::ZERO));
        let n = updates(&out).len();
        // A late user_order saying it rests changes nothing.
        let c = coid();
        t.on_user_order(
            &UserOrderUpdate {
                order_id: OID,
                client_order_id: &c,
                status: VenueStatus::Resting,
                fill_count: Qty::ZERO,
                remaining_count: Qty::contracts(5),
                ts_ms: 25,
            },
            6,
            &mut out,
        );
        assert_eq!(updates(&out).len(), n);
        // Messages about orders we never sent are counted, not applied.
        let u = UserOrderUpdate {
            order_id: "someone-else",
            client_order_id: "",
            status: VenueStatus::Resting,
            fill_count: Qty::ZERO,
            remaining_count: Qty::contracts(1),
            ts_ms: 1,
        };
        assert!(!t.on_user_order(&u, 7, &mut out));
        assert_eq!(t.unknown_messages, 1);
    }

    #[test]
    fn decrease_to_zero_cancels() {
        let mut t = OrderTable::new(2);
        let mut out = Vec::new();
        let k = t.insert(order(TimeInForce::Gtc, 10)).unwrap();
        t.mark_sent(k, 1, 0);
        t.on_decreased(k, Qty::ZERO, 5, 2, &mut out);
        assert_eq!(updates(&out).last().unwrap().status, OrderStatus::Cancelled);
    }

    #[test]
    fn reconciliation_bookkeeping() {
        let mut t = OrderTable::new(4);
        let mut out = Vec::new();
        let k = t.insert(order(TimeInForce::Gtc, 10)).unwrap();
        t.mark_sent(k, 1_000, 7);
        assert!(t.mark_unknown(k));
        assert!(t.needs_resend(k));
        assert_eq!(t.get(k).unwrap().phase, Phase::Reconciling);
        // A user_order naming it while the lookup is in flight: no resend.
        let c = coid();
        let u = UserOrderUpdate {
            order_id: OID,
            client_order_id: &c,
            status: VenueStatus::Resting,
            fill_count: Qty::ZERO,
            remaining_count: Qty::contracts(10),
            ts_ms: 1,
        };
        t.on_user_order(&u, 2_000, &mut out);
        assert!(!t.needs_resend(k));
        assert!(!t.mark_unknown(k), "known orders need no reconciliation");
        // Resend bookkeeping keeps the first send time.
        let mut o2 = order(TimeInForce::Gtc, 1);
        o2.order_ref = OrderRef(9);
        let k2 = t.insert(o2).unwrap();
        t.mark_sent(k2, 5_000, 1);
        assert!(t.mark_unknown(k2));
        t.mark_resend(k2);
        assert_eq!(t.get(k2).unwrap().phase, Phase::PendingSend);
        t.mark_sent(k2, 9_000, 2);
        let r = t.get(k2).unwrap();
        assert_eq!((r.first_sent_ns, r.sent_ns, r.sends, r.phase), (5_000, 9_000, 2, Phase::Sent));
    }

    #[test]
    fn duplicates_capacity_and_retirement() {
        let mut t = OrderTable::new(2);
        let mut out = Vec::new();
        let k = t.insert(order(TimeInForce::Gtc, 1)).unwrap();
        assert_eq!(t.insert(order(TimeInForce::Gtc, 1)), Err(TableError::Duplicate));
        let mut o2 = order(TimeInForce::Gtc, 1);
        o2.order_ref = OrderRef(8);
        t.insert(o2).unwrap();
        let mut o3 = order(TimeInForce::Gtc, 1);
        o3.order_ref = OrderRef(9);
        assert_eq!(t.insert(o3), Err(TableError::Full(2)));
        t.on_reject(k, RejectReason::Venue, 10, &mut out);
        t.schedule_retire(k, 10);
        assert_eq!(t.retire(15, 10), 0, "kept for the grace period");
        assert_eq!(t.retire(20, 10), 1);
        assert!(t.get(k).is_none(), "stale handle");
        let k3 = t.insert(o3).unwrap();
        assert_ne!(k3, k);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn websocket_messages_parse() {
        let c = coid();
        let uo = format!(
            r#"{{"type":"user_order","sid":3,"msg":{{"order_id":"{OID}","client_order_id":"{c}","ticker":"X","status":"executed","book_side":"bid","yes_price_dollars":"0.5600","fill_count_fp":"10.00","remaining_count_fp":"0.00","last_updated_ts_ms":1715793600123,"exchange_index":0}}}}"#
        );
        let got = parse_user_order(uo.as_bytes(), |u| {
            (u.order_id.to_string(), u.client_order_id.to_string(), u.status, u.fill_count, u.ts_ms)
        })
        .unwrap();
        assert_eq!(got, (OID.to_string(), c.clone(), VenueStatus::Executed, Qty::contracts(10), 1715793600123));
        let fill = r#"{"type":"fill","sid":2,"msg":{"trade_id":"50e1","order_id":"e38f","market_ticker":"X","is_taker":true,"yes_price_dollars":"0.1700","count_fp":"5.52","fee_cost":"0.054600","post_position_fp":"5.52","book_side":"bid","ts_ms":1782873388379}}"#;
        let got =
            parse_fill(fill.as_bytes(), |f| (f.order_id.to_string(), f.yes_price, f.count, f.fee, f.is_taker, f.ts_ms))
                .unwrap();
        assert_eq!(got, ("e38f".to_string(), Price(1700), Qty(552), Money(54_600), true, 1782873388379));
        assert!(parse_user_order(
            br#"{"msg":{"order_id":"a","status":"pending","fill_count_fp":"0","remaining_count_fp":"1"}}"#,
            |_| ()
        )
        .is_err());
    }

    #[test]
    fn numbers_from_strings_and_json_numbers() {
        let n: Num = serde_json::from_str("\"0.56123\"").unwrap();
        assert_eq!(n.price(), Some(Price(5612)));
        let n: Num = serde_json::from_str("10").unwrap();
        assert_eq!(n.qty(), Some(Qty::contracts(10)));
        let n: Num = serde_json::from_str("0.0175").unwrap();
        assert_eq!(n.money(), Some(Money(17_500)));
        let n: Num = serde_json::from_str("\".5\"").unwrap();
        assert_eq!(n.price(), Some(Price(5000)));
        let n: Num = serde_json::from_str("\"1.5\"").unwrap();
        assert_eq!(n.price(), None, "above $1");
    }
}
