//! Matching of **our** orders against a replayed or generated book: the simulator's fill model.
//!
//! This module owns [`Matcher`], an I/O-free, clock-free state machine for one account trading in
//! one or more markets, with its queue-position models ([`queue`]) and latency models
//! ([`latency`]). It is fed, in exchange-time order, the market data of a recording or generator
//! ([`MarketData`]: snapshot, delta, trade print) and our order commands ([`Command`]: new,
//! cancel, amend, decrease), and answers each input with the [`MatchEvent`]s it caused (accepted,
//! fills with their exact fee, resting with its queue position, amended, decreased, cancelled,
//! rejected with Kalshi's codes). The REST exchange ([`crate::server`]) and the engine's paper
//! venue are meant to sit on top of it; it knows nothing of JSON, tickers or sockets.
//!
//! Units everywhere: prices [`Price`] in centicents on the YES scale, sizes [`Qty`] in hundredths
//! of a contract, money [`Money`] in micro-dollars, times in nanoseconds on the exchange clock
//! (unix ns in replays: fee waivers compare `ts_ns / 10⁶` with
//! [`FeeSchedule::waived_until_ms`]). Nothing here is floating point except the probabilistic
//! queue model's share ([`queue`]).
//!
//! ## The book: outside liquidity only, our own view of it
//! Each market keeps the displayed book of the feed, **outside liquidity only** (our orders are
//! never in it; the recording never saw them), as price → size per side. It starts empty and is
//! replaced by every [`MarketData::Snapshot`]. On top of it, our own activity changes *our view*:
//! - liquidity our taker orders take (and crossing liquidity our resting orders absorb, below) is
//!   removed from the view, so a second order cannot take it again;
//! - a later [`MarketData::Delta`] is applied to the view as `size = max(0, size + delta)`: a
//!   delta never takes a level below zero. Increases are new outside orders and add in full; a
//!   decrease removes what is left of the level first. So the view is never above the recorded
//!   level and never more than what we took below it, and it is uncrossed whenever the recording
//!   is;
//! - the next snapshot resets the view to the recording (what we took is forgotten).
//!
//! ## Taking: new orders and amends that cross
//! A bid at limit `p` walks the asks priced `≤ p` (an ask walks bids `≥ p`), best first, each
//! fill at the level's price, as **taker**. At a level where we have our own resting orders on
//! the other side, the walk reaches the outside quantity ahead of our first order there, then
//! our order: a self-trade. [`SelfTradePrevention::TakerAtCross`] stops the taker there (fills so
//! far stand, the rest is cancelled, even for GTC: [`CancelReason::SelfTradeTaker`]);
//! [`SelfTradePrevention::Maker`] cancels our resting orders of that level
//! ([`CancelReason::SelfTradeMaker`]) and continues through the level's outside quantity. Then by
//! time in force: FOK fills everything or is rejected with no side effect
//! ([`RejectCode::FokInsufficientVolume`], also when a `taker_at_cross` stop is what makes it
//! short); IoC keeps its fills and cancels the rest ([`CancelReason::ImmediateOrCancel`]); GTC
//! rests the rest at its limit. A post-only order (any time in force) that would cross the
//! displayed book or one of our resting orders is rejected ([`RejectCode::PostOnlyCross`]).
//!
//! ## Resting: queue position and maker fills
//! A resting order's queue position `ahead` starts at the displayed outside size at its price on
//! its side and moves by the rules in [`queue`] (the selected [`QueueModel`] for decreases). It
//! fills as **maker**, at its own price:
//! - by a trade print at its price: the print consumes `ahead`, then our order, then behind
//!   ([`queue::allocate_trade`]);
//! - by a trade print *through* its price (a taker sold at `p` while our bid was above `p`): the
//!   taker would have met us first, so we fill up to the printed size without a queue, and the
//!   outside quantity at our level is taken as gone (`ahead = 0`);
//! - by crossing liquidity: when a delta or snapshot puts outside liquidity on the other side at
//!   or through our price, that order would have executed against us; we fill up to its size and
//!   it is removed from the view (a post-only outside order would not have, which the feed
//!   cannot tell).
//!
//! A trade print does not change the view itself: the feed's `orderbook_delta` that removes what
//! the trade took follows the print (Kalshi; the synthetic generator does the same). So a print
//! of `T` at a level is remembered as *pending* there and netted against the level's next
//! decreases; only the rest of a decrease goes to the queue model (hftbacktest's
//! `cum_trade_qty`). Pending is capped at the level's displayed size and cleared by a snapshot. A
//! feed that sent the delta before the print would make us net a later, unrelated decrease:
//! the queue then advances less, the conservative error. Block trades are not book trades: the
//! caller does not pass them.
//!
//! ## Amend, decrease, cancel (Kalshi V2, `kalshi-protocol.md` §3.6)
//! [`Command::Amend`]'s `count` is the new **total** (filled + resting). A size decrease at the
//! same price keeps the order's place (and `ahead`); a price change or a size increase loses it:
//! the order leaves its level, may cross and fill as taker at the new price, and rests at the
//! back (`ahead` = the displayed size there). A post-only order's amend that would cross is
//! rejected and the order is left as it was. [`Command::Decrease`] keeps priority; to zero it
//! cancels ([`CancelReason::DecreasedToZero`]). Only resting orders can be amended, decreased or
//! cancelled ([`RejectCode::NotFound`] otherwise).
//!
//! ## Fees and P&L
//! Every order has its own [`OrderFeeAccumulator`] (the SDK's exact ledger) at the configured
//! [`AccountPrecision`], charged with the market's [`FeeSchedule`]: a fill is [`Liquidity::Taker`]
//! when it happened while the order was being entered or amended, [`Liquidity::Maker`] when the
//! order was resting. Fills inside a fee waiver cost nothing and are not booked on the
//! accumulator. Each market keeps a [`MarketLedger`] on the YES scale: a bid fill of `q` at `p`
//! is `+q` contracts and `−p·q` cash, an ask fill `−q` and `+p·q` (selling YES ≡ buying NO at
//! `1 − p`: the same money once the contract settles), fees as charged.
//!
//! ## Time
//! Inputs must come in non-decreasing `ts_ns` (exchange time); an earlier one is refused with
//! [`MatchError::TimeWentBackwards`]. How a driver orders market data and commands with a
//! latency model is in [`latency`].
//!
//! ## Errors
//! Bad commands are answered, never panicked on: a [`MatchEventKind::Rejected`] event with
//! Kalshi's code. Bad market data (unknown market, off-grid price, negative or oversized size,
//! a crossed snapshot) is a [`MatchError`] and leaves the matcher unchanged. Orders that are
//! done (filled, cancelled, rejected) are forgotten: [`Matcher::order`] shows live orders only.

pub mod latency;
pub mod queue;

pub use latency::{Constant, LatencyError, LatencyKind, LatencyModel, OrderTiming, Recorded};
pub use queue::{ProbFn, Probabilistic, QueueModel, QueueModelKind, RiskAverse};

use queue::QueueSlot;
use std::collections::{BTreeMap, HashMap};
use strike_sdk::book::BookSide;
use strike_sdk::fees::{AccountPrecision, FeeSchedule, FillFee, Liquidity, OrderFeeAccumulator};
use strike_sdk::grid::PriceGrid;
use strike_sdk::market::MarketId;
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::TimeInForce;

/// The market id reported on a rejection that names no known order or market
/// (`MarketId(u32::MAX)`).
pub const NO_MARKET: MarketId = MarketId(u32::MAX);

/// Our id for one of our orders, chosen by the caller (a client order id), unique among live
/// orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OrderId(pub u64);

/// Kalshi `self_trade_prevention_type`: what happens when our taker would meet our own resting
/// order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SelfTradePrevention {
    /// `taker_at_cross`: the taker is cancelled there; fills before it stand.
    #[default]
    TakerAtCross,
    /// `maker`: the resting order is cancelled and the taker continues.
    Maker,
}

impl SelfTradePrevention {
    /// Kalshi's name.
    pub const fn kalshi_name(self) -> &'static str {
        match self {
            SelfTradePrevention::TakerAtCross => "taker_at_cross",
            SelfTradePrevention::Maker => "maker",
        }
    }
    /// Parses Kalshi's name.
    pub fn from_name(s: &str) -> Option<SelfTradePrevention> {
        match s {
            "taker_at_cross" => Some(SelfTradePrevention::TakerAtCross),
            "maker" => Some(SelfTradePrevention::Maker),
            _ => None,
        }
    }
}

/// What the matcher needs to know about one market: its price grid (valid order and book
/// prices) and its resolved fee rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MarketSpec {
    /// Valid prices (centicents).
    pub grid: PriceGrid,
    /// Fee rules.
    pub fees: FeeSchedule,
}

/// Matcher settings.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct MatcherConfig {
    /// The queue-position model for resting orders.
    pub queue: QueueModelKind,
    /// The account's balance precision (whole cents for non-direct members).
    pub precision: AccountPrecision,
}

/// One market-data input, YES scale (NO levels converted by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarketData {
    /// The whole displayed book (`orderbook_snapshot`): `(price, size)` levels; zero sizes are
    /// ignored, a repeated price keeps its last size.
    Snapshot {
        /// YES bids.
        bids: Vec<(Price, Qty)>,
        /// YES asks (NO bids at `1 − q`).
        asks: Vec<(Price, Qty)>,
    },
    /// A signed change of one level's size (`orderbook_delta`), hundredths.
    Delta {
        /// The level's side.
        side: BookSide,
        /// The level's price.
        price: Price,
        /// Signed size change.
        delta: Qty,
    },
    /// A trade print (`trade`, not a block trade): the taker's side, the price (the resting
    /// maker's), the size, hundredths, > 0.
    Trade {
        /// `Bid` = the taker bought YES (it hit asks); `Ask` = it sold YES (it hit bids).
        taker_side: BookSide,
        /// Trade price.
        price: Price,
        /// Traded size.
        qty: Qty,
    },
}

/// A new order of ours (Kalshi V2 create).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Our id for it.
    pub id: OrderId,
    /// Its market.
    pub market: MarketId,
    /// `Bid` buys YES, `Ask` sells YES (buys NO at `1 − price`).
    pub side: BookSide,
    /// Limit, YES scale, on the market's grid, strictly inside (0, 1).
    pub price: Price,
    /// Size, hundredths, `1..=Qty::MAX_ABS`.
    pub qty: Qty,
    /// Time in force.
    pub tif: TimeInForce,
    /// Rejected instead of crossing.
    pub post_only: bool,
    /// Self-trade prevention.
    pub stp: SelfTradePrevention,
}

/// How a [`Command::Decrease`] reduces a resting order (Kalshi: exactly one of the two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// `reduce_by`: remove this many hundredths (> 0; more than what rests cancels it).
    By(Qty),
    /// `reduce_to`: leave this many hundredths resting (0 ≤ to ≤ what rests; 0 cancels it).
    To(Qty),
}

/// One order command of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Create an order.
    New(NewOrder),
    /// Cancel a resting order.
    Cancel {
        /// The order.
        id: OrderId,
    },
    /// Amend a resting order: new limit and new **total** count (filled + resting), hundredths.
    Amend {
        /// The order.
        id: OrderId,
        /// New limit, YES scale.
        price: Price,
        /// New total count, > what has filled.
        count: Qty,
    },
    /// Decrease a resting order, keeping its queue position.
    Decrease {
        /// The order.
        id: OrderId,
        /// By how much.
        reduce: Reduce,
    },
}

/// Why a command was refused, as Kalshi answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectCode {
    /// 400 `invalid_order`: zero/negative/oversized size, price off the grid or not inside
    /// (0, 1), an amend count not above the filled count, a bad decrease.
    InvalidOrder,
    /// 404 `market_not_found`.
    MarketNotFound,
    /// 409 `order_already_exists`: a live order has this id.
    OrderAlreadyExists,
    /// 404 `not_found`: no resting order with this id.
    NotFound,
    /// 400 `POST_ONLY_CROSS`.
    PostOnlyCross,
    /// 400 `FOK_INSUFFICIENT_VOLUME`: only `fillable` hundredths could have filled.
    FokInsufficientVolume {
        /// What could have filled, hundredths.
        fillable: Qty,
    },
}

impl RejectCode {
    /// Kalshi's error `code`.
    pub const fn kalshi_code(self) -> &'static str {
        match self {
            RejectCode::InvalidOrder => "invalid_order",
            RejectCode::MarketNotFound => "market_not_found",
            RejectCode::OrderAlreadyExists => "order_already_exists",
            RejectCode::NotFound => "not_found",
            RejectCode::PostOnlyCross => "POST_ONLY_CROSS",
            RejectCode::FokInsufficientVolume { .. } => "FOK_INSUFFICIENT_VOLUME",
        }
    }
    /// The HTTP status Kalshi answers it with.
    pub const fn http_status(self) -> u16 {
        match self {
            RejectCode::MarketNotFound | RejectCode::NotFound => 404,
            RejectCode::OrderAlreadyExists => 409,
            _ => 400,
        }
    }
}

/// Why an order (or what was left of it) was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// We cancelled it.
    Requested,
    /// A decrease took it to zero.
    DecreasedToZero,
    /// IoC remainder (FIX `IMMEDIATE_OR_CANCELLED`).
    ImmediateOrCancel,
    /// Our taker met our own resting order with `taker_at_cross` (FIX
    /// `TAKER_CANCEL_FOR_SELF_TRADE_PREVENTION`).
    SelfTradeTaker,
    /// Our resting order was met by our own taker with `maker` (FIX
    /// `MAKER_CANCEL_FOR_SELF_TRADE_PREVENTION`).
    SelfTradeMaker,
}

impl CancelReason {
    /// Snake-case name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            CancelReason::Requested => "requested",
            CancelReason::DecreasedToZero => "decreased_to_zero",
            CancelReason::ImmediateOrCancel => "immediate_or_cancel",
            CancelReason::SelfTradeTaker => "self_trade_taker",
            CancelReason::SelfTradeMaker => "self_trade_maker",
        }
    }
}

/// One execution of one of our orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillInfo {
    /// The order's side.
    pub side: BookSide,
    /// Execution price, YES scale (the resting side's price).
    pub price: Price,
    /// Filled size, hundredths, > 0.
    pub qty: Qty,
    /// Taker (while entered or amended) or maker (while resting).
    pub liquidity: Liquidity,
    /// The fill's fee from the order's accumulator: `trade_fee` is Kalshi's `fee_cost`,
    /// `charged` what the balance pays (micro-dollars).
    pub fee: FillFee,
    /// What is left of the order after this fill, hundredths (0: fully filled, done).
    pub leaves: Qty,
    /// The market's YES position after the fill, hundredths (+ YES, − NO).
    pub position_after: Qty,
}

/// What happened to one order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchEventKind {
    /// A new order passed validation (the create is acknowledged); its fills and final state
    /// follow.
    Accepted {
        /// Side.
        side: BookSide,
        /// Limit.
        price: Price,
        /// Size, hundredths.
        qty: Qty,
    },
    /// An execution.
    Fill(FillInfo),
    /// The order now rests: `remaining` hundredths at `price`, `ahead` hundredths of outside
    /// liquidity in front of it.
    Resting {
        /// Its price.
        price: Price,
        /// What rests, hundredths.
        remaining: Qty,
        /// Queue position: outside quantity ahead, hundredths.
        ahead: Qty,
    },
    /// An amend was applied: new price and what rests before any crossing fills.
    Amended {
        /// New price.
        price: Price,
        /// New resting size, hundredths.
        remaining: Qty,
        /// True when it kept its place in the queue (same price, size not increased).
        kept_priority: bool,
    },
    /// A decrease was applied; the order keeps its place.
    Decreased {
        /// New resting size, hundredths.
        remaining: Qty,
    },
    /// The order (or its remainder) was cancelled; `qty` hundredths were cancelled.
    Cancelled {
        /// Why.
        reason: CancelReason,
        /// Cancelled size, hundredths.
        qty: Qty,
    },
    /// The command was refused; nothing changed.
    Rejected {
        /// Kalshi's answer.
        code: RejectCode,
    },
}

/// One output of the matcher, stamped with the exchange time of the input that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchEvent {
    /// Exchange time, ns.
    pub ts_ns: u64,
    /// The market ([`NO_MARKET`] on a rejection naming no known order or market).
    pub market: MarketId,
    /// The order.
    pub order: OrderId,
    /// What happened.
    pub kind: MatchEventKind,
}

/// Refused market data or a misuse of the matcher. The matcher is left unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchError {
    /// No such market was added.
    UnknownMarket(MarketId),
    /// [`Matcher::add_market`] twice for one id.
    DuplicateMarket(MarketId),
    /// An input's time is before the last input's, ns.
    TimeWentBackwards {
        /// The last accepted time.
        last_ns: u64,
        /// The refused time.
        ts_ns: u64,
    },
    /// A price not on the market's grid.
    OffGrid {
        /// The market.
        market: MarketId,
        /// The price.
        price: Price,
    },
    /// A size out of range: a negative snapshot level, a trade of ≤ 0, anything beyond
    /// [`Qty::MAX_ABS`].
    BadSize {
        /// The market.
        market: MarketId,
        /// The size.
        qty: Qty,
    },
    /// A snapshot whose best bid is at or above its best ask.
    CrossedSnapshot {
        /// The market.
        market: MarketId,
        /// Best bid.
        bid: Price,
        /// Best ask.
        ask: Price,
    },
}

impl std::fmt::Display for MatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatchError::UnknownMarket(m) => write!(f, "unknown market {}", m.0),
            MatchError::DuplicateMarket(m) => write!(f, "market {} added twice", m.0),
            MatchError::TimeWentBackwards { last_ns, ts_ns } => {
                write!(f, "input at {ts_ns} ns is before the last input at {last_ns} ns")
            }
            MatchError::OffGrid { market, price } => write!(f, "market {}: price {price} is off the grid", market.0),
            MatchError::BadSize { market, qty } => write!(f, "market {}: size {qty} out of range", market.0),
            MatchError::CrossedSnapshot { market, bid, ask } => {
                write!(f, "market {}: crossed snapshot, bid {bid} >= ask {ask}", market.0)
            }
        }
    }
}

impl std::error::Error for MatchError {}

/// Our position, cash and fees in one market, YES scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MarketLedger {
    /// Net contracts, hundredths: + YES, − NO.
    pub position: Qty,
    /// Cash from fills before fees, micro-dollars: `−p·q` per bid fill, `+p·q` per ask fill.
    pub cash: Money,
    /// Fees charged (after rounding and rebates), micro-dollars.
    pub fees: Money,
    /// Contracts traded, hundredths.
    pub volume: Qty,
    /// Number of fills.
    pub fills: u64,
}

impl MarketLedger {
    /// P&L after fees with the position valued at `mark` (YES price; `Price::MAX` or
    /// `Price::ZERO` at settlement), micro-dollars: `cash + position·mark − fees`.
    pub fn mark_to_market(&self, mark: Price) -> Money {
        let value = (mark.0 as i64).saturating_mul(self.position.0);
        Money(self.cash.0.saturating_add(value).saturating_sub(self.fees.0))
    }
}

/// A live order as the matcher holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    /// Our id.
    pub id: OrderId,
    /// Its market.
    pub market: MarketId,
    /// Side.
    pub side: BookSide,
    /// Current limit, YES scale.
    pub price: Price,
    /// Time in force.
    pub tif: TimeInForce,
    /// Post-only.
    pub post_only: bool,
    /// Self-trade prevention.
    pub stp: SelfTradePrevention,
    /// Total count (filled + resting), hundredths.
    pub count: Qty,
    /// Filled so far, hundredths.
    pub filled: Qty,
    /// Resting, hundredths.
    pub remaining: Qty,
    /// Queue position: outside quantity ahead, hundredths.
    pub ahead: Qty,
    /// Fees charged to this order so far, micro-dollars.
    pub fees_charged: Money,
}

#[derive(Clone, Debug)]
struct Order {
    market: MarketId,
    side: BookSide,
    price: Price,
    tif: TimeInForce,
    post_only: bool,
    stp: SelfTradePrevention,
    count: Qty,
    filled: Qty,
    remaining: Qty,
    ahead: Qty,
    fees: OrderFeeAccumulator,
}

#[derive(Debug)]
struct Market {
    spec: MarketSpec,
    /// Outside displayed size per side (index `BookSide as usize`), only levels > 0.
    outside: [BTreeMap<Price, Qty>; 2],
    /// Traded quantity per level not yet seen in the level's decreases, only levels > 0.
    pending: [BTreeMap<Price, Qty>; 2],
    /// Our resting orders per level, in priority order, only non-empty levels.
    own: [BTreeMap<Price, Vec<OrderId>>; 2],
    ledger: MarketLedger,
}

const fn si(side: BookSide) -> usize {
    side as usize
}

/// True when `p` is at or better than `limit` for a taker on `side` (asks ≤ limit for a bid).
fn crosses_limit(side: BookSide, p: Price, limit: Price) -> bool {
    match side {
        BookSide::Bid => p <= limit,
        BookSide::Ask => p >= limit,
    }
}

/// The best price of a per-level map of `side`: the highest bid, the lowest ask.
fn best_price<V>(m: &BTreeMap<Price, V>, side: BookSide) -> Option<Price> {
    match side {
        BookSide::Bid => m.keys().next_back().copied(),
        BookSide::Ask => m.keys().next().copied(),
    }
}

#[derive(Debug)]
enum Step {
    Fill(Price, Qty),
    CancelMakers(Price),
}

#[derive(Debug, Default)]
struct Plan {
    steps: Vec<Step>,
    filled: Qty,
    stopped: bool,
}

/// One call's working state: the market touched, the orders, the output.
struct Ctx<'a> {
    model: &'a dyn QueueModel,
    precision: AccountPrecision,
    ts: u64,
    id: MarketId,
    mkt: &'a mut Market,
    orders: &'a mut HashMap<OrderId, Order>,
    out: &'a mut Vec<MatchEvent>,
}

impl Ctx<'_> {
    fn emit(&mut self, order: OrderId, kind: MatchEventKind) {
        self.out.push(MatchEvent { ts_ns: self.ts, market: self.id, order, kind });
    }

    fn outside(&self, side: BookSide, p: Price) -> Qty {
        self.mkt.outside[si(side)].get(&p).copied().unwrap_or_default()
    }

    fn set_outside(&mut self, side: BookSide, p: Price, q: Qty) {
        if q.0 > 0 {
            self.mkt.outside[si(side)].insert(p, q);
        } else {
            self.mkt.outside[si(side)].remove(&p);
        }
        self.cap_pending(side, p, q);
    }

    fn cap_pending(&mut self, side: BookSide, p: Price, level: Qty) {
        let map = &mut self.mkt.pending[si(side)];
        if let Some(v) = map.get_mut(&p) {
            v.0 = v.0.min(level.0);
            if v.0 <= 0 {
                map.remove(&p);
            }
        }
    }

    fn own_ids(&self, side: BookSide, p: Price) -> Vec<OrderId> {
        self.mkt.own[si(side)].get(&p).cloned().unwrap_or_default()
    }

    /// Outside liquidity taken from the front of a level: the view shrinks and every own order
    /// there has that much less ahead of it.
    fn consume_front(&mut self, side: BookSide, p: Price, q: Qty) {
        let new = Qty((self.outside(side, p).0 - q.0).max(0));
        self.set_outside(side, p, new);
        for id in self.own_ids(side, p) {
            if let Some(o) = self.orders.get_mut(&id) {
                o.ahead = Qty((o.ahead.0 - q.0).max(0).min(new.0));
            }
        }
    }

    /// Books one fill of order `id` and emits it.
    fn fill(&mut self, id: OrderId, price: Price, qty: Qty, liq: Liquidity) {
        let ts_ms = (self.ts / 1_000_000) as i64;
        let sched = self.mkt.spec.fees;
        let Some(o) = self.orders.get_mut(&id) else { return };
        let fee = if sched.is_waived(ts_ms) {
            FillFee::default()
        } else {
            o.fees.on_fill(&sched, liq, price, qty, self.precision)
        };
        o.filled += qty;
        o.remaining -= qty;
        let side = o.side;
        let leaves = o.remaining;
        // Saturating: absurd sizes from a bad script must not overflow (and panic) the ledger.
        let l = &mut self.mkt.ledger;
        let notional = Money::notional(price, qty).0;
        let (dq, dc) = match side {
            BookSide::Bid => (qty.0, -notional),
            BookSide::Ask => (-qty.0, notional),
        };
        l.position = Qty(l.position.0.saturating_add(dq));
        l.cash = Money(l.cash.0.saturating_add(dc));
        l.fees = Money(l.fees.0.saturating_add(fee.charged.0));
        l.volume = Qty(l.volume.0.saturating_add(qty.0));
        l.fills += 1;
        let position_after = l.position;
        self.emit(id, MatchEventKind::Fill(FillInfo { side, price, qty, liquidity: liq, fee, leaves, position_after }));
    }

    /// Takes order `id` off its level (it stays in the order map).
    fn unrest(&mut self, id: OrderId) {
        let Some(o) = self.orders.get(&id) else { return };
        let (side, p) = (o.side, o.price);
        let map = &mut self.mkt.own[si(side)];
        if let Some(v) = map.get_mut(&p) {
            v.retain(|&x| x != id);
            if v.is_empty() {
                map.remove(&p);
            }
        }
    }

    /// A resting order filled completely: off the book and forgotten.
    fn retire_if_done(&mut self, id: OrderId) {
        if self.orders.get(&id).is_some_and(|o| o.remaining.0 <= 0) {
            self.unrest(id);
            self.orders.remove(&id);
        }
    }

    fn cancel_resting(&mut self, id: OrderId, reason: CancelReason) {
        let Some(rem) = self.orders.get(&id).map(|o| o.remaining) else { return };
        self.unrest(id);
        self.orders.remove(&id);
        self.emit(id, MatchEventKind::Cancelled { reason, qty: rem });
    }

    /// Would an order on `side` at `limit` cross the displayed book or one of our resting
    /// orders?
    fn crosses(&self, side: BookSide, limit: Price) -> bool {
        let opp = side.opposite();
        best_price(&self.mkt.outside[si(opp)], opp).is_some_and(|p| crosses_limit(side, p, limit))
            || best_price(&self.mkt.own[si(opp)], opp).is_some_and(|p| crosses_limit(side, p, limit))
    }

    /// The levels a taker on `side` at `limit` may reach (outside or own), best first.
    fn crossing_prices(&self, side: BookSide, limit: Price) -> Vec<Price> {
        let opp = si(side.opposite());
        let mut v: Vec<Price> = match side {
            BookSide::Bid => self.mkt.outside[opp]
                .range(..=limit)
                .map(|(p, _)| *p)
                .chain(self.mkt.own[opp].range(..=limit).map(|(p, _)| *p))
                .collect(),
            BookSide::Ask => self.mkt.outside[opp]
                .range(limit..)
                .map(|(p, _)| *p)
                .chain(self.mkt.own[opp].range(limit..).map(|(p, _)| *p))
                .collect(),
        };
        v.sort_unstable();
        v.dedup();
        if side == BookSide::Ask {
            v.reverse();
        }
        v
    }

    /// What a taker would do, without doing it.
    fn plan_take(&self, side: BookSide, limit: Price, qty: Qty, stp: SelfTradePrevention) -> Plan {
        let opp = side.opposite();
        let mut plan = Plan::default();
        let mut left = qty.0;
        for p in self.crossing_prices(side, limit) {
            if left == 0 {
                break;
            }
            let outside = self.outside(opp, p).0;
            let own = self.mkt.own[si(opp)].get(&p);
            let first_ahead =
                own.and_then(|v| v.first()).and_then(|id| self.orders.get(id)).map(|o| o.ahead.0.min(outside));
            match first_ahead {
                None => {
                    let take = outside.min(left);
                    if take > 0 {
                        plan.steps.push(Step::Fill(p, Qty(take)));
                        left -= take;
                    }
                }
                Some(ahead) => {
                    let take1 = ahead.min(left);
                    if take1 > 0 {
                        plan.steps.push(Step::Fill(p, Qty(take1)));
                        left -= take1;
                    }
                    if left == 0 {
                        break;
                    }
                    match stp {
                        SelfTradePrevention::TakerAtCross => {
                            plan.stopped = true;
                            break;
                        }
                        SelfTradePrevention::Maker => {
                            plan.steps.push(Step::CancelMakers(p));
                            let take2 = (outside - take1).min(left);
                            if take2 > 0 {
                                plan.steps.push(Step::Fill(p, Qty(take2)));
                                left -= take2;
                            }
                        }
                    }
                }
            }
        }
        plan.filled = Qty(qty.0 - left);
        plan
    }

    /// Runs a plan for taker order `id` (already in the order map, not resting).
    fn execute(&mut self, id: OrderId, plan: &Plan) {
        let Some(opp) = self.orders.get(&id).map(|o| o.side.opposite()) else { return };
        for step in &plan.steps {
            match *step {
                Step::Fill(p, q) => {
                    self.consume_front(opp, p, q);
                    self.fill(id, p, q, Liquidity::Taker);
                }
                Step::CancelMakers(p) => {
                    for m in self.own_ids(opp, p) {
                        self.cancel_resting(m, CancelReason::SelfTradeMaker);
                    }
                }
            }
        }
    }

    /// After taking: forget a filled order, cancel a stopped or IoC/FoK remainder, rest a GTC one.
    fn conclude(&mut self, id: OrderId, stopped: bool) {
        let Some(o) = self.orders.get(&id) else { return };
        let (rem, tif, side, price) = (o.remaining, o.tif, o.side, o.price);
        if rem.0 <= 0 {
            self.orders.remove(&id);
            return;
        }
        let reason = if stopped {
            CancelReason::SelfTradeTaker
        } else if tif == TimeInForce::Gtc {
            let ahead = self.outside(side, price);
            if let Some(o) = self.orders.get_mut(&id) {
                o.ahead = ahead;
            }
            self.mkt.own[si(side)].entry(price).or_default().push(id);
            self.emit(id, MatchEventKind::Resting { price, remaining: rem, ahead });
            return;
        } else {
            CancelReason::ImmediateOrCancel
        };
        self.orders.remove(&id);
        self.emit(id, MatchEventKind::Cancelled { reason, qty: rem });
    }

    /// Validates a price for an order of this market.
    fn price_ok(&self, p: Price) -> bool {
        p.0 > 0 && p.0 < Price::ONE && self.mkt.spec.grid.contains(p)
    }

    fn new_order(&mut self, n: &NewOrder) {
        let reject = |c: &mut Self, code| c.emit(n.id, MatchEventKind::Rejected { code });
        if self.orders.contains_key(&n.id) {
            return reject(self, RejectCode::OrderAlreadyExists);
        }
        if n.qty.0 <= 0 || n.qty.0 > Qty::MAX_ABS || !self.price_ok(n.price) {
            return reject(self, RejectCode::InvalidOrder);
        }
        if n.post_only && self.crosses(n.side, n.price) {
            return reject(self, RejectCode::PostOnlyCross);
        }
        let plan = self.plan_take(n.side, n.price, n.qty, n.stp);
        if n.tif == TimeInForce::Fok && plan.filled < n.qty {
            return reject(self, RejectCode::FokInsufficientVolume { fillable: plan.filled });
        }
        self.emit(n.id, MatchEventKind::Accepted { side: n.side, price: n.price, qty: n.qty });
        self.orders.insert(
            n.id,
            Order {
                market: n.market,
                side: n.side,
                price: n.price,
                tif: n.tif,
                post_only: n.post_only,
                stp: n.stp,
                count: n.qty,
                filled: Qty::ZERO,
                remaining: n.qty,
                ahead: Qty::ZERO,
                fees: OrderFeeAccumulator::new(),
            },
        );
        self.execute(n.id, &plan);
        self.conclude(n.id, plan.stopped);
    }

    fn cancel(&mut self, id: OrderId) {
        self.cancel_resting(id, CancelReason::Requested);
    }

    fn amend(&mut self, id: OrderId, price: Price, count: Qty) {
        let Some(o) = self.orders.get(&id).cloned() else { return };
        if count.0 <= o.filled.0 || count.0 > Qty::MAX_ABS || !self.price_ok(price) {
            return self.emit(id, MatchEventKind::Rejected { code: RejectCode::InvalidOrder });
        }
        let new_rem = count - o.filled;
        if price == o.price && new_rem <= o.remaining {
            if let Some(o) = self.orders.get_mut(&id) {
                o.count = count;
                o.remaining = new_rem;
            }
            return self.emit(id, MatchEventKind::Amended { price, remaining: new_rem, kept_priority: true });
        }
        // The order's own level is on its own side, so it never counts as crossing itself.
        if o.post_only && self.crosses(o.side, price) {
            return self.emit(id, MatchEventKind::Rejected { code: RejectCode::PostOnlyCross });
        }
        self.unrest(id);
        if let Some(o) = self.orders.get_mut(&id) {
            o.price = price;
            o.count = count;
            o.remaining = new_rem;
            o.ahead = Qty::ZERO;
        }
        self.emit(id, MatchEventKind::Amended { price, remaining: new_rem, kept_priority: false });
        let plan = self.plan_take(o.side, price, new_rem, o.stp);
        self.execute(id, &plan);
        self.conclude(id, plan.stopped);
    }

    fn decrease(&mut self, id: OrderId, reduce: Reduce) {
        let Some(rem) = self.orders.get(&id).map(|o| o.remaining) else { return };
        let new_rem = match reduce {
            Reduce::By(b) if b.0 > 0 => Qty((rem.0 - b.0).max(0)),
            Reduce::To(t) if t.0 >= 0 && t <= rem => t,
            _ => return self.emit(id, MatchEventKind::Rejected { code: RejectCode::InvalidOrder }),
        };
        if new_rem.0 == 0 {
            return self.cancel_resting(id, CancelReason::DecreasedToZero);
        }
        if let Some(o) = self.orders.get_mut(&id) {
            o.count -= rem - new_rem;
            o.remaining = new_rem;
        }
        self.emit(id, MatchEventKind::Decreased { remaining: new_rem });
    }

    /// The outside size at our level fell from `before` to `after`; `model_d` of it is not
    /// explained by trades already counted and goes to the queue model.
    fn level_decreased(&mut self, side: BookSide, p: Price, before: Qty, model_d: Qty, after: Qty) {
        let ids = self.own_ids(side, p);
        let mut floor = 0i64;
        for id in ids {
            let Some(o) = self.orders.get_mut(&id) else { continue };
            let lb = before.0.max(after.0 + model_d.0);
            let a = o.ahead.0.clamp(0, lb);
            let mut na = a;
            if model_d.0 > 0 {
                let m = self.model.ahead_after_decrease(Qty(a), Qty(lb), model_d).0;
                let lo = (a - model_d.0).max(0);
                let hi = a.min(lb - model_d.0).max(lo);
                na = m.clamp(lo, hi);
            }
            // Never more than what is displayed; never less than the order in front of us.
            na = na.min(after.0).max(floor);
            o.ahead = Qty(na);
            floor = na;
        }
    }

    fn snapshot(&mut self, bids: BTreeMap<Price, Qty>, asks: BTreeMap<Price, Qty>) {
        for side in [BookSide::Bid, BookSide::Ask] {
            let new = if side == BookSide::Bid { &bids } else { &asks };
            let levels: Vec<Price> = self.mkt.own[si(side)].keys().copied().collect();
            for p in levels {
                let before = self.outside(side, p);
                let after = new.get(&p).copied().unwrap_or_default();
                if after < before {
                    self.level_decreased(side, p, before, before - after, after);
                }
            }
        }
        self.mkt.outside = [bids, asks];
        self.mkt.pending = [BTreeMap::new(), BTreeMap::new()];
        self.sweep_crossed();
    }

    fn delta(&mut self, side: BookSide, p: Price, new: Qty) {
        let before = self.outside(side, p);
        self.set_outside(side, p, new);
        if new < before {
            let d = before - new;
            let pend = self.mkt.pending[si(side)].get(&p).copied().unwrap_or_default();
            let net = Qty(pend.0.min(d.0));
            if net.0 > 0 {
                let rest = pend - net;
                if rest.0 > 0 {
                    self.mkt.pending[si(side)].insert(p, rest);
                } else {
                    self.mkt.pending[si(side)].remove(&p);
                }
            }
            self.level_decreased(side, p, before - net, d - net, new);
            self.cap_pending(side, p, new);
        }
        self.sweep_crossed();
    }

    fn trade(&mut self, taker_side: BookSide, price: Price, qty: Qty) {
        let rside = taker_side.opposite();
        let level = self.outside(rside, price);
        if level.0 > 0 {
            let e = self.mkt.pending[si(rside)].entry(price).or_default();
            e.0 = (e.0 + qty.0).min(level.0);
        }
        // Our resting orders the taker reaches at or before the print price, best first.
        let levels: Vec<Price> = match rside {
            BookSide::Bid => self.mkt.own[si(rside)].range(price..).rev().map(|(p, _)| *p).collect(),
            BookSide::Ask => self.mkt.own[si(rside)].range(..=price).map(|(p, _)| *p).collect(),
        };
        let mut left = qty.0;
        for p in levels {
            let ids = self.own_ids(rside, p);
            if p != price {
                // Traded through: the outside liquidity at our level is gone; we come first.
                for &id in &ids {
                    let Some(o) = self.orders.get_mut(&id) else { continue };
                    o.ahead = Qty::ZERO;
                    let f = o.remaining.0.min(left);
                    if f > 0 {
                        left -= f;
                        self.fill(id, p, Qty(f), Liquidity::Maker);
                        self.retire_if_done(id);
                    }
                }
                continue;
            }
            if left == 0 {
                break;
            }
            let mut slots: Vec<QueueSlot> = ids
                .iter()
                .filter_map(|id| self.orders.get(id))
                .map(|o| QueueSlot { ahead: o.ahead, remaining: o.remaining })
                .collect();
            if slots.len() != ids.len() {
                continue; // cannot happen: every resting id is in the order map
            }
            let fills = queue::allocate_trade(&mut slots, Qty(left));
            for ((&id, s), f) in ids.iter().zip(&slots).zip(fills) {
                if let Some(o) = self.orders.get_mut(&id) {
                    o.ahead = s.ahead;
                }
                if f.0 > 0 {
                    left -= f.0;
                    self.fill(id, p, f, Liquidity::Maker);
                    self.retire_if_done(id);
                }
            }
        }
    }

    /// Outside liquidity at or through one of our resting orders' prices executes against it.
    fn sweep_crossed(&mut self) {
        for side in [BookSide::Bid, BookSide::Ask] {
            let opp = side.opposite();
            let mut levels: Vec<Price> = self.mkt.own[si(side)].keys().copied().collect();
            if side == BookSide::Bid {
                levels.reverse();
            }
            for p in levels {
                loop {
                    let best = match opp {
                        BookSide::Ask => self.mkt.outside[si(opp)].first_key_value(),
                        BookSide::Bid => self.mkt.outside[si(opp)].last_key_value(),
                    };
                    let Some((&bp, &bq)) = best else { break };
                    if !crosses_limit(side, bp, p) {
                        break;
                    }
                    let Some(&id) = self.mkt.own[si(side)].get(&p).and_then(|v| v.first()) else { break };
                    let Some(rem) = self.orders.get(&id).map(|o| o.remaining) else { break };
                    let f = Qty(rem.0.min(bq.0));
                    if f.0 <= 0 {
                        break;
                    }
                    self.consume_front(opp, bp, f);
                    if let Some(o) = self.orders.get_mut(&id) {
                        o.ahead = Qty::ZERO;
                    }
                    self.fill(id, p, f, Liquidity::Maker);
                    self.retire_if_done(id);
                }
            }
        }
    }
}

/// Matches our orders against replayed books; see the module docs.
#[derive(Debug)]
pub struct Matcher {
    config: MatcherConfig,
    model: Box<dyn QueueModel>,
    markets: BTreeMap<MarketId, Market>,
    orders: HashMap<OrderId, Order>,
    last_ns: u64,
}

impl Matcher {
    /// A matcher with no markets, the queue model of `config.queue`.
    pub fn new(config: MatcherConfig) -> Matcher {
        Matcher::with_model(config, config.queue.build())
    }

    /// A matcher with a custom queue model (`config.queue` is then only informative).
    pub fn with_model(config: MatcherConfig, model: Box<dyn QueueModel>) -> Matcher {
        Matcher { config, model, markets: BTreeMap::new(), orders: HashMap::new(), last_ns: 0 }
    }

    /// The settings.
    pub fn config(&self) -> &MatcherConfig {
        &self.config
    }

    /// The queue model in use.
    pub fn queue_model(&self) -> &dyn QueueModel {
        self.model.as_ref()
    }

    /// Adds a market (empty book until its first snapshot). Errors when the id is taken.
    pub fn add_market(&mut self, id: MarketId, spec: MarketSpec) -> Result<(), MatchError> {
        if self.markets.contains_key(&id) {
            return Err(MatchError::DuplicateMarket(id));
        }
        self.markets.insert(
            id,
            Market {
                spec,
                outside: Default::default(),
                pending: Default::default(),
                own: Default::default(),
                ledger: MarketLedger::default(),
            },
        );
        Ok(())
    }

    /// The exchange time of the last accepted input, ns (0 before any).
    pub fn last_ns(&self) -> u64 {
        self.last_ns
    }

    fn check_time(&self, ts_ns: u64) -> Result<(), MatchError> {
        if ts_ns < self.last_ns {
            return Err(MatchError::TimeWentBackwards { last_ns: self.last_ns, ts_ns });
        }
        Ok(())
    }

    /// Applies one market-data input at exchange time `ts_ns` and returns the events it caused
    /// (maker fills of our resting orders).
    pub fn on_market_data(
        &mut self,
        ts_ns: u64,
        market: MarketId,
        md: &MarketData,
    ) -> Result<Vec<MatchEvent>, MatchError> {
        let mut out = Vec::new();
        self.on_market_data_into(ts_ns, market, md, &mut out)?;
        Ok(out)
    }

    /// [`Matcher::on_market_data`], appending to `out`.
    pub fn on_market_data_into(
        &mut self,
        ts_ns: u64,
        market: MarketId,
        md: &MarketData,
        out: &mut Vec<MatchEvent>,
    ) -> Result<(), MatchError> {
        self.check_time(ts_ns)?;
        let mkt = self.markets.get_mut(&market).ok_or(MatchError::UnknownMarket(market))?;
        let grid = mkt.spec.grid;
        let on_grid = |price: Price| {
            if grid.contains(price) {
                Ok(())
            } else {
                Err(MatchError::OffGrid { market, price })
            }
        };
        let size_ok = |qty: Qty, min: i64| {
            if qty.0 >= min && qty.0.abs() <= Qty::MAX_ABS {
                Ok(())
            } else {
                Err(MatchError::BadSize { market, qty })
            }
        };
        // Validate first: an error leaves everything unchanged.
        enum Op {
            Snapshot(BTreeMap<Price, Qty>, BTreeMap<Price, Qty>),
            Delta(BookSide, Price, Qty),
            Trade(BookSide, Price, Qty),
        }
        let op = match md {
            MarketData::Snapshot { bids, asks } => {
                let mut sides = [BTreeMap::new(), BTreeMap::new()];
                for (i, levels) in [bids, asks].into_iter().enumerate() {
                    for &(p, q) in levels {
                        on_grid(p)?;
                        size_ok(q, 0)?;
                        if q.0 > 0 {
                            sides[i].insert(p, q);
                        } else {
                            sides[i].remove(&p);
                        }
                    }
                }
                let [b, a] = sides;
                if let (Some((&bid, _)), Some((&ask, _))) = (b.last_key_value(), a.first_key_value()) {
                    if bid >= ask {
                        return Err(MatchError::CrossedSnapshot { market, bid, ask });
                    }
                }
                Op::Snapshot(b, a)
            }
            MarketData::Delta { side, price, delta } => {
                on_grid(*price)?;
                size_ok(*delta, -Qty::MAX_ABS)?;
                let before = mkt.outside[si(*side)].get(price).copied().unwrap_or_default();
                let new = Qty((before.0 + delta.0).max(0));
                size_ok(new, 0)?;
                Op::Delta(*side, *price, new)
            }
            MarketData::Trade { taker_side, price, qty } => {
                on_grid(*price)?;
                size_ok(*qty, 1)?;
                Op::Trade(*taker_side, *price, *qty)
            }
        };
        self.last_ns = ts_ns;
        let mut cx = Ctx {
            model: self.model.as_ref(),
            precision: self.config.precision,
            ts: ts_ns,
            id: market,
            mkt,
            orders: &mut self.orders,
            out,
        };
        match op {
            Op::Snapshot(b, a) => cx.snapshot(b, a),
            Op::Delta(side, p, new) => cx.delta(side, p, new),
            Op::Trade(side, p, q) => cx.trade(side, p, q),
        }
        Ok(())
    }

    /// Applies one of our commands, arriving at the exchange at `ts_ns`, and returns the events
    /// it caused. A refused command is a [`MatchEventKind::Rejected`] event, not an error; the
    /// only error is [`MatchError::TimeWentBackwards`].
    pub fn on_command(&mut self, ts_ns: u64, cmd: &Command) -> Result<Vec<MatchEvent>, MatchError> {
        let mut out = Vec::new();
        self.on_command_into(ts_ns, cmd, &mut out)?;
        Ok(out)
    }

    /// [`Matcher::on_command`], appending to `out`.
    pub fn on_command_into(&mut self, ts_ns: u64, cmd: &Command, out: &mut Vec<MatchEvent>) -> Result<(), MatchError> {
        self.check_time(ts_ns)?;
        self.last_ns = ts_ns;
        let (id, market) = match cmd {
            Command::New(n) => (n.id, Some(n.market)),
            Command::Cancel { id } | Command::Amend { id, .. } | Command::Decrease { id, .. } => {
                (*id, self.orders.get(id).map(|o| o.market))
            }
        };
        let Some(mkt) = market.and_then(|m| self.markets.get_mut(&m)) else {
            let code = match cmd {
                Command::New(_) => RejectCode::MarketNotFound,
                _ => RejectCode::NotFound,
            };
            let m = match cmd {
                Command::New(n) => n.market,
                _ => NO_MARKET,
            };
            out.push(MatchEvent { ts_ns, market: m, order: id, kind: MatchEventKind::Rejected { code } });
            return Ok(());
        };
        let mut cx = Ctx {
            model: self.model.as_ref(),
            precision: self.config.precision,
            ts: ts_ns,
            id: market.unwrap_or(NO_MARKET),
            mkt,
            orders: &mut self.orders,
            out,
        };
        match *cmd {
            Command::New(ref n) => cx.new_order(n),
            Command::Cancel { id } => cx.cancel(id),
            Command::Amend { id, price, count } => cx.amend(id, price, count),
            Command::Decrease { id, reduce } => cx.decrease(id, reduce),
        }
        Ok(())
    }

    /// A live order (resting, in practice: orders that are done are forgotten).
    pub fn order(&self, id: OrderId) -> Option<OrderView> {
        self.orders.get(&id).map(|o| OrderView {
            id,
            market: o.market,
            side: o.side,
            price: o.price,
            tif: o.tif,
            post_only: o.post_only,
            stp: o.stp,
            count: o.count,
            filled: o.filled,
            remaining: o.remaining,
            ahead: o.ahead,
            fees_charged: o.fees.total_charged(),
        })
    }

    /// Our resting orders in `market`: bids best first, then asks best first, each level in
    /// priority order. Empty for an unknown market.
    pub fn open_orders(&self, market: MarketId) -> Vec<OrderView> {
        let Some(m) = self.markets.get(&market) else { return Vec::new() };
        let bids = m.own[si(BookSide::Bid)].values().rev().flatten();
        let asks = m.own[si(BookSide::Ask)].values().flatten();
        bids.chain(asks).filter_map(|&id| self.order(id)).collect()
    }

    /// The displayed outside size at a level in our view, hundredths (0 for an unknown market).
    pub fn displayed(&self, market: MarketId, side: BookSide, price: Price) -> Qty {
        self.markets.get(&market).and_then(|m| m.outside[si(side)].get(&price).copied()).unwrap_or_default()
    }

    /// The displayed outside levels of one side in our view, best first, `(price, size)`.
    pub fn levels(&self, market: MarketId, side: BookSide) -> Vec<(Price, Qty)> {
        let Some(m) = self.markets.get(&market) else { return Vec::new() };
        let it = m.outside[si(side)].iter().map(|(p, q)| (*p, *q));
        match side {
            BookSide::Bid => it.rev().collect(),
            BookSide::Ask => it.collect(),
        }
    }

    /// The best displayed outside level of one side in our view.
    pub fn best(&self, market: MarketId, side: BookSide) -> Option<(Price, Qty)> {
        let m = self.markets.get(&market)?;
        let map = &m.outside[si(side)];
        let e = match side {
            BookSide::Bid => map.last_key_value(),
            BookSide::Ask => map.first_key_value(),
        };
        e.map(|(p, q)| (*p, *q))
    }

    /// Our position, cash and fees in `market`.
    pub fn ledger(&self, market: MarketId) -> Option<&MarketLedger> {
        self.markets.get(&market).map(|m| &m.ledger)
    }
}
