//! Pre-trade risk checks: pure functions over fixed-size state, run on every intent before it
//! can reach a venue, each failure with its own [`RejectReason`].
//!
//! Checks, in order (the first failure wins):
//! 1. the market's book is live (not stale after a gap or fault, not closed): `StaleBook` /
//!    `MarketClosed`;
//! 2. the triggering data is young enough: the time since the feed took the frame that led to
//!    this intent (TSC, ns) is within `max_data_age_ns` — the 27 ms tick-to-trade budget less
//!    the expected order round trip (`budget_ms`, `expected_round_trip_ms` in `engine.toml`) —
//!    else `LatencyBudget`: an order that would reach the exchange after the budget is spent is
//!    not sent;
//! 3. post-only only with GTC: `BadTimeInForce`;
//! 4. size in `(0, max_order_contracts]`: `Size`;
//! 5. price on the market's current grid (the book's, which follows
//!    `price_level_structure_updated`) and inside `[min_price, max_price]` on the YES scale (0
//!    and $1 are never tradable): `Price`;
//! 6. notional — the collateral the order can tie up — within `max_order_notional`:
//!    `Notional`. Kalshi nets YES and NO, so only the part of the order that opens exposure
//!    costs collateral: a bid (buy YES / sell NO) costs `yes_price` per contract beyond the NO
//!    position it closes, an ask (sell YES / buy NO) `1 − yes_price` per contract beyond the YES
//!    position it closes (positions already promised to resting orders on that side are not
//!    counted as closable);
//! 7. worst-case position: the market's position plus every resting order on the same side plus
//!    this order, in absolute value, within `max_position_contracts`: `PositionCap`.
//!
//! Kill switches, exposure groups, fee inversion and rate limits arrive with the risk issue; the
//! reasons are already part of the ABI ([`RejectReason`]).

use crate::config::RiskConfig;
use strike_sdk::book::{Book, BookSide, BookStatus};
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::{OrderIntent, Position, RejectReason, TimeInForce};

/// Limits in exact units, from `risk.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiskLimits {
    /// Largest order, hundredths of a contract.
    pub max_order_qty: Qty,
    /// Largest order notional, micro-dollars.
    pub max_order_notional: Money,
    /// Lowest YES price an order may carry.
    pub min_price: Price,
    /// Highest YES price an order may carry.
    pub max_price: Price,
    /// Largest worst-case absolute position per market, hundredths.
    pub max_position: Qty,
    /// Oldest triggering data an order may be sent on, ns (budget − expected round trip;
    /// `u64::MAX`: no limit).
    pub max_data_age_ns: u64,
}

impl From<&RiskConfig> for RiskLimits {
    fn from(c: &RiskConfig) -> Self {
        RiskLimits {
            max_order_qty: c.max_order_contracts,
            max_order_notional: c.max_order_notional,
            min_price: c.min_price,
            max_price: c.max_price,
            max_position: c.max_position_contracts,
            max_data_age_ns: u64::MAX,
        }
    }
}

/// Runs every pre-trade check on `intent`; see the module docs. Allocation-free, lock-free.
#[inline]
pub fn check(
    limits: &RiskLimits,
    intent: &OrderIntent,
    book: &Book,
    position: &Position,
    data_age_ns: u64,
) -> Result<(), RejectReason> {
    match book.status {
        BookStatus::Live => {}
        BookStatus::Closed => return Err(RejectReason::MarketClosed),
        BookStatus::Stale | BookStatus::Empty => return Err(RejectReason::StaleBook),
    }
    if data_age_ns > limits.max_data_age_ns {
        return Err(RejectReason::LatencyBudget);
    }
    if intent.post_only && intent.tif != TimeInForce::Gtc {
        return Err(RejectReason::BadTimeInForce);
    }
    if intent.qty.0 <= 0 || intent.qty > limits.max_order_qty {
        return Err(RejectReason::Size);
    }
    if intent.price.0 == 0 || intent.price >= Price::MAX {
        return Err(RejectReason::Price);
    }
    let yes = intent.yes_price();
    if yes.0 == 0 || yes >= Price::MAX || yes < limits.min_price || yes > limits.max_price || !book.grid().contains(yes)
    {
        return Err(RejectReason::Price);
    }
    let (per_contract, closable) = match intent.book_side() {
        BookSide::Bid => (yes, (-position.qty.0 - position.resting_bids.0).max(0)),
        BookSide::Ask => (yes.complement(), (position.qty.0 - position.resting_asks.0).max(0)),
    };
    let opening = Qty((intent.qty.0 - closable).max(0));
    if Money::notional(per_contract, opening) > limits.max_order_notional {
        return Err(RejectReason::Notional);
    }
    let worst = match intent.book_side() {
        BookSide::Bid => position.qty.0 + position.resting_bids.0 + intent.qty.0,
        BookSide::Ask => position.qty.0 - position.resting_asks.0 - intent.qty.0,
    };
    if worst.abs() > limits.max_position.0 {
        return Err(RejectReason::PositionCap);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strike_sdk::grid::PriceStructure;
    use strike_sdk::market::MarketId;
    use strike_sdk::order::{Action, Outcome};

    fn setup() -> (RiskLimits, (), Book) {
        let limits = RiskLimits {
            max_order_qty: Qty::contracts(100),
            max_order_notional: Money::dollars(50),
            min_price: Price(100),
            max_price: Price(9900),
            max_position: Qty::contracts(150),
            max_data_age_ns: 17_000_000,
        };
        let mut book = Book::new(PriceStructure::LinearCent.grid());
        book.status = BookStatus::Live;
        (limits, (), book)
    }

    fn buy_yes(price: u16, qty: i64) -> OrderIntent {
        OrderIntent::limit(MarketId(0), Outcome::Yes, Action::Buy, Price(price), Qty::contracts(qty), TimeInForce::Fok)
    }

    #[test]
    fn each_check_has_its_reason() {
        let (l, (), mut b) = setup();
        let p = Position::default();
        assert_eq!(check(&l, &buy_yes(4000, 10), &b, &p, 0), Ok(()));
        assert_eq!(check(&l, &buy_yes(4000, 0), &b, &p, 0), Err(RejectReason::Size));
        assert_eq!(check(&l, &buy_yes(4000, 101), &b, &p, 0), Err(RejectReason::Size));
        assert_eq!(check(&l, &buy_yes(4050, 10), &b, &p, 0), Err(RejectReason::Price));
        assert_eq!(check(&l, &buy_yes(9950, 1), &b, &p, 0), Err(RejectReason::Price));
        assert_eq!(check(&l, &buy_yes(0, 1), &b, &p, 0), Err(RejectReason::Price));
        assert_eq!(check(&l, &buy_yes(6000, 90), &b, &p, 0), Err(RejectReason::Notional));
        let post = OrderIntent { post_only: true, ..buy_yes(4000, 1) };
        assert_eq!(check(&l, &post, &b, &p, 0), Err(RejectReason::BadTimeInForce));
        let held = Position { qty: Qty::contracts(100), resting_bids: Qty::contracts(40), ..Default::default() };
        assert_eq!(check(&l, &buy_yes(1000, 20), &b, &held, 0), Err(RejectReason::PositionCap));
        // selling against a long position reduces it: allowed
        let sell = OrderIntent { action: Action::Sell, ..buy_yes(1000, 100) };
        assert_eq!(check(&l, &sell, &b, &held, 0), Ok(()));
        // buying NO at 0.95 is a YES ask at 0.05: the collateral is the NO price paid
        let no = OrderIntent { outcome: Outcome::No, ..buy_yes(9500, 60) };
        assert_eq!(check(&l, &no, &b, &p, 0), Err(RejectReason::Notional));
        // selling YES at 0.05 without holding it ties up 0.95 a contract: 60 is $57 > $50
        let sell_cheap = OrderIntent { action: Action::Sell, ..buy_yes(500, 60) };
        assert_eq!(check(&l, &sell_cheap, &b, &p, 0), Err(RejectReason::Notional));
        // holding 60 YES, the same sell only closes: no collateral
        let long60 = Position { qty: Qty::contracts(60), ..Default::default() };
        assert_eq!(check(&l, &sell_cheap, &b, &long60, 0), Ok(()));
        // ... unless those 60 are already promised to resting asks
        let promised = Position { resting_asks: Qty::contracts(60), ..long60 };
        assert_eq!(check(&l, &sell_cheap, &b, &promised, 0), Err(RejectReason::Notional));
        // an out-of-range NO price is a price reject, never an overflow
        let bad = OrderIntent { outcome: Outcome::No, ..buy_yes(20000, 1) };
        assert_eq!(check(&l, &bad, &b, &p, 0), Err(RejectReason::Price));
        // data older than the budget less the round trip: not sent; at the limit: sent
        assert_eq!(check(&l, &buy_yes(4000, 10), &b, &p, 17_000_001), Err(RejectReason::LatencyBudget));
        assert_eq!(check(&l, &buy_yes(4000, 10), &b, &p, 17_000_000), Ok(()));
        b.status = BookStatus::Stale;
        assert_eq!(check(&l, &buy_yes(4000, 10), &b, &p, 0), Err(RejectReason::StaleBook));
        b.status = BookStatus::Closed;
        assert_eq!(check(&l, &buy_yes(4000, 10), &b, &p, 0), Err(RejectReason::MarketClosed));
    }
}
