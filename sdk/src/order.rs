//! Orders and the events about them: what a strategy asks for ([`OrderIntent`], [`CancelIntent`])
//! and what it hears back ([`Fill`], [`OrderUpdate`], [`Trade`], [`Signal`]), plus the
//! per-market [`Position`] and resting [`OpenOrder`] it can read.
//!
//! Kalshi V2 orders are on one YES-priced book: `bid` = buy YES, `ask` = sell YES ≡ buy NO at
//! `1 − price` (Kalshi docs: *Create order V2*, `kalshi-protocol.md` §3.3). An intent is written
//! in the trader's terms (buy/sell YES/NO at that outcome's price) and [`OrderIntent::book_side`]
//! / [`OrderIntent::yes_price`] give the V2 form.

use crate::book::BookSide;
use crate::fees::Liquidity;
use crate::market::MarketId;
use crate::num::{Money, Price, Qty};
use core::fmt;

/// The outcome a contract pays on.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Pays $1 if the market settles YES.
    Yes = 0,
    /// Pays $1 if the market settles NO.
    No = 1,
}

/// Buy or sell.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Buy contracts of the outcome.
    Buy = 0,
    /// Sell contracts of the outcome.
    Sell = 1,
}

/// Time in force.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeInForce {
    /// Fill or kill: the whole size now, or nothing (`fill_or_kill`).
    Fok = 0,
    /// Immediate or cancel: what fills now, the rest cancelled (`immediate_or_cancel`).
    Ioc = 1,
    /// Good till cancelled: rests on the book (`good_till_canceled`).
    Gtc = 2,
}

impl TimeInForce {
    /// Kalshi V2 `time_in_force` value.
    pub const fn kalshi_name(self) -> &'static str {
        match self {
            TimeInForce::Fok => "fill_or_kill",
            TimeInForce::Ioc => "immediate_or_cancel",
            TimeInForce::Gtc => "good_till_canceled",
        }
    }
}

/// A strategy's handle on one of its orders, unique for the engine's run. Assigned by
/// [`crate::Ctx::submit`]; the host derives the Kalshi `client_order_id` from it.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OrderRef(pub u64);

/// An order a strategy wants sent. Checked by risk before anything reaches the venue.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderIntent {
    /// Set by [`crate::Ctx::submit`].
    pub order_ref: OrderRef,
    /// The market.
    pub market: MarketId,
    /// Which outcome's contracts.
    pub outcome: Outcome,
    /// Buy or sell them.
    pub action: Action,
    /// Time in force.
    pub tif: TimeInForce,
    /// Post-only: rejected instead of taking liquidity (GTC only).
    pub post_only: bool,
    /// Limit price on the outcome's own scale (a NO price for `Outcome::No`), centicents.
    pub price: Price,
    /// Size in hundredths of a contract, > 0.
    pub qty: Qty,
    /// Multi-leg basket id: intents with the same non-zero basket in one callback are sent
    /// all-or-none (each leg FOK). 0 = a single order.
    pub basket: u32,
    /// Free tag for the strategy's own bookkeeping; reported with fills.
    pub tag: u32,
}

impl OrderIntent {
    /// A limit order with no basket and tag 0.
    pub fn limit(market: MarketId, outcome: Outcome, action: Action, price: Price, qty: Qty, tif: TimeInForce) -> Self {
        OrderIntent {
            order_ref: OrderRef(0),
            market,
            outcome,
            action,
            tif,
            post_only: false,
            price,
            qty,
            basket: 0,
            tag: 0,
        }
    }

    /// The V2 book side: buy YES / sell NO → `Bid`; sell YES / buy NO → `Ask`.
    #[inline]
    pub const fn book_side(&self) -> BookSide {
        match (self.outcome, self.action) {
            (Outcome::Yes, Action::Buy) | (Outcome::No, Action::Sell) => BookSide::Bid,
            (Outcome::Yes, Action::Sell) | (Outcome::No, Action::Buy) => BookSide::Ask,
        }
    }

    /// The limit on the YES scale (`1 − price` for NO).
    #[inline]
    pub const fn yes_price(&self) -> Price {
        match self.outcome {
            Outcome::Yes => self.price,
            Outcome::No => self.price.complement(),
        }
    }

    /// Signed change to the YES position if fully filled (+ for bids, − for asks).
    #[inline]
    pub const fn signed_qty(&self) -> Qty {
        match self.book_side() {
            BookSide::Bid => Qty(self.qty.0),
            BookSide::Ask => Qty(-self.qty.0),
        }
    }
}

/// A request to cancel one of the strategy's resting orders.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelIntent {
    /// The order.
    pub order_ref: OrderRef,
}

/// Why an order did not reach the venue or was refused there. Stable codes (ABI).
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Size is zero, negative, or above the per-order cap.
    Size = 1,
    /// Notional above the per-order cap.
    Notional = 2,
    /// Price off the grid, outside (0, 1), or outside the configured bounds.
    Price = 3,
    /// Would take the market's position beyond its cap.
    PositionCap = 4,
    /// The market's book is stale (sequence gap, fault) or not yet snapshotted.
    StaleBook = 5,
    /// The market is closed or unknown.
    MarketClosed = 6,
    /// A post-only order would have crossed the book.
    PostOnlyCross = 7,
    /// A FOK order could not be filled in full.
    FokUnfilled = 8,
    /// Trading is halted by a kill switch.
    Halted = 9,
    /// Fees make the trade's expected value non-positive.
    FeeInversion = 10,
    /// Exposure above its limit.
    Exposure = 11,
    /// Order rate above the token bucket.
    RateLimit = 12,
    /// Would trade against our own resting order.
    SelfCross = 13,
    /// The triggering data is older than the latency budget.
    LatencyBudget = 14,
    /// Post-only is only valid with GTC; FOK/IOC are never post-only.
    BadTimeInForce = 15,
    /// The venue refused the order.
    Venue = 16,
    /// An unknown market id.
    UnknownMarket = 17,
}

impl RejectReason {
    /// Every reason, for reports.
    pub const ALL: [RejectReason; 17] = [
        RejectReason::Size,
        RejectReason::Notional,
        RejectReason::Price,
        RejectReason::PositionCap,
        RejectReason::StaleBook,
        RejectReason::MarketClosed,
        RejectReason::PostOnlyCross,
        RejectReason::FokUnfilled,
        RejectReason::Halted,
        RejectReason::FeeInversion,
        RejectReason::Exposure,
        RejectReason::RateLimit,
        RejectReason::SelfCross,
        RejectReason::LatencyBudget,
        RejectReason::BadTimeInForce,
        RejectReason::Venue,
        RejectReason::UnknownMarket,
    ];

    /// Snake-case name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            RejectReason::Size => "size",
            RejectReason::Notional => "notional",
            RejectReason::Price => "price",
            RejectReason::PositionCap => "position_cap",
            RejectReason::StaleBook => "stale_book",
            RejectReason::MarketClosed => "market_closed",
            RejectReason::PostOnlyCross => "post_only_cross",
            RejectReason::FokUnfilled => "fok_unfilled",
            RejectReason::Halted => "halted",
            RejectReason::FeeInversion => "fee_inversion",
            RejectReason::Exposure => "exposure",
            RejectReason::RateLimit => "rate_limit",
            RejectReason::SelfCross => "self_cross",
            RejectReason::LatencyBudget => "latency_budget",
            RejectReason::BadTimeInForce => "bad_time_in_force",
            RejectReason::Venue => "venue",
            RejectReason::UnknownMarket => "unknown_market",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Lifecycle state of an order.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Accepted and resting on the book.
    Resting = 0,
    /// Fully filled.
    Filled = 1,
    /// Cancelled (by us, by IOC/FOK expiry, or by the venue); `filled` says what filled first.
    Cancelled = 2,
    /// Refused before resting; see the reason.
    Rejected = 3,
}

/// A change in one of the strategy's orders.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderUpdate {
    /// The order.
    pub order_ref: OrderRef,
    /// Its market.
    pub market: MarketId,
    /// New status.
    pub status: OrderStatus,
    /// Why it was rejected (meaningful for `Rejected`, and `Cancelled` by the venue).
    pub reason: RejectReason,
    /// Filled so far, hundredths.
    pub filled: Qty,
    /// Still resting, hundredths.
    pub remaining: Qty,
    /// The strategy's tag from the intent.
    pub tag: u32,
}

/// One execution of one of the strategy's orders.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// The order.
    pub order_ref: OrderRef,
    /// Its market.
    pub market: MarketId,
    /// The order's book side (`Bid` bought YES, `Ask` sold YES / bought NO).
    pub side: BookSide,
    /// Taker or maker.
    pub liquidity: Liquidity,
    /// Execution price, YES scale.
    pub yes_price: Price,
    /// Filled size, hundredths, > 0.
    pub qty: Qty,
    /// Fee charged for this fill (after rounding and rebates), micro-dollars.
    pub fee: Money,
    /// YES position after the fill (+ YES, − NO).
    pub post_position: Qty,
    /// Host time of the fill, ns on the engine's monotonic clock.
    pub ts_ns: u64,
    /// The strategy's tag from the intent.
    pub tag: u32,
}

/// A public trade print (Kalshi `trade`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    /// The market.
    pub market: MarketId,
    /// Trade price, YES scale.
    pub yes_price: Price,
    /// Size, hundredths.
    pub qty: Qty,
    /// The taker's book side (`Bid` = taker bought YES).
    pub taker_side: BookSide,
    /// Off-book block trade: exclude from book-derived logic.
    pub is_block: bool,
    /// Exchange time, unix ms.
    pub ts_ms: i64,
}

/// An external signal: a model probability or any number a data feed produces (weather
/// forecasts, reference prices). Delivered through `on_signal`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Signal {
    /// Signal kind, defined by the producer and the strategy between them.
    pub kind: u32,
    /// The market it is about, or `MarketId(u32::MAX)` for none.
    pub market: MarketId,
    /// The value: a probability in [0, 1] or a model output.
    pub value: f64,
    /// A fixed-point companion value (e.g. a temperature × 10⁴), producer-defined.
    pub aux: i64,
    /// Time the signal was produced, unix ms.
    pub ts_ms: i64,
}

/// The engine's position in one market, on the YES scale.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Position {
    /// Net contracts, hundredths: + long YES, − long NO.
    pub qty: Qty,
    /// Cost basis of the open position in YES terms (signed), micro-dollars.
    pub cost: Money,
    /// Realized P&L from closed contracts, before fees, micro-dollars.
    pub realized: Money,
    /// Fees paid, micro-dollars.
    pub fees: Money,
    /// Size of resting bids (buy YES / sell NO), hundredths.
    pub resting_bids: Qty,
    /// Size of resting asks (sell YES / buy NO), hundredths.
    pub resting_asks: Qty,
}

/// A resting order of the strategy.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOrder {
    /// The order.
    pub order_ref: OrderRef,
    /// Its market.
    pub market: MarketId,
    /// Book side.
    pub side: BookSide,
    /// Limit, YES scale.
    pub yes_price: Price,
    /// Resting size, hundredths.
    pub remaining: Qty,
    /// Filled so far, hundredths.
    pub filled: Qty,
    /// The strategy's tag.
    pub tag: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_map_to_v2_book_sides() {
        let m = MarketId(0);
        let q = Qty::contracts(1);
        let buy_no = OrderIntent::limit(m, Outcome::No, Action::Buy, Price(300), q, TimeInForce::Fok);
        assert_eq!(buy_no.book_side(), BookSide::Ask);
        assert_eq!(buy_no.yes_price(), Price(9700));
        assert_eq!(buy_no.signed_qty(), Qty(-100));
        let sell_no = OrderIntent { action: Action::Sell, ..buy_no };
        assert_eq!(sell_no.book_side(), BookSide::Bid);
        let buy_yes = OrderIntent::limit(m, Outcome::Yes, Action::Buy, Price(9100), q, TimeInForce::Gtc);
        assert_eq!(buy_yes.book_side(), BookSide::Bid);
        assert_eq!(buy_yes.yes_price(), Price(9100));
    }
}
