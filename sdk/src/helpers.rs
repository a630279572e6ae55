//! Pieces every strategy needs: fee-exact expected value, fractional Kelly sizing, pennying.
//!
//! Probabilities and EVs are `f64` (model outputs); prices, sizes and money stay fixed-point.
//!
//! **Expected value per contract** of trading `qty` contracts of an outcome at price `x` (that
//! outcome's scale, dollars) when the outcome pays with probability `p`:
//!
//! ```text
//! buy:  EV = p − x − fee(qty)/qty
//! sell: EV = x − p − fee(qty)/qty
//! ```
//!
//! where `fee(qty)` is [`FeeSchedule::one_fill_fee`] for the whole order, so the rounding of a
//! small order (1 contract at $0.50 pays $0.02, not $0.0175) is in the number.
//!
//! **Kelly** for a contract costing `c` (price plus fee per contract) that pays $1 with
//! probability `p`: `f* = (p − c) / (1 − c)` of the bankroll; the strategy stakes `k·f*`
//! (fractional Kelly, `k` = ¼ by default) and buys `floor(k·f*·bankroll / c)` contracts, capped.
//!
//! **Pennying**: the post-only price one tick of the market's grid better than the best bid of
//! the outcome, if that still does not cross the book.

use crate::book::Book;
use crate::fees::{AccountPrecision, FeeSchedule, Liquidity};
use crate::num::{Money, Price, Qty};
use crate::order::{Action, Outcome};

/// Fee-exact expected value per contract in dollars; see the module docs.
///
/// `price` and `prob_win` are on the traded outcome's scale. `qty` must be > 0.
pub fn ev_per_contract(
    fees: &FeeSchedule,
    action: Action,
    liq: Liquidity,
    price: Price,
    qty: Qty,
    prob_win: f64,
    precision: AccountPrecision,
) -> f64 {
    let fee = fee_per_contract(fees, liq, price, qty, precision);
    let x = price.0 as f64 / Price::ONE as f64;
    match action {
        Action::Buy => prob_win - x - fee,
        Action::Sell => x - prob_win - fee,
    }
}

/// The one-fill fee of an order of `qty` divided by its size, in dollars per contract.
pub fn fee_per_contract(
    fees: &FeeSchedule,
    liq: Liquidity,
    price: Price,
    qty: Qty,
    precision: AccountPrecision,
) -> f64 {
    if qty.0 <= 0 {
        return 0.0;
    }
    let fee = fees.one_fill_fee(liq, price, qty, precision);
    fee.0 as f64 / Money::PER_DOLLAR as f64 / (qty.0 as f64 / Qty::ONE_CONTRACT as f64)
}

/// The full-Kelly fraction of bankroll for a $1-payout contract costing `cost` dollars (price plus
/// fee) that pays with probability `prob_win`. Zero when the edge is not positive.
pub fn kelly_fraction(prob_win: f64, cost: f64) -> f64 {
    if !(0.0..1.0).contains(&cost) || !(0.0..=1.0).contains(&prob_win) || prob_win <= cost {
        return 0.0;
    }
    (prob_win - cost) / (1.0 - cost)
}

/// Fractional-Kelly size in hundredths of a contract, floored to whole hundredths and capped by
/// `max_qty`. `fraction` is the Kelly multiplier (0.25 = quarter Kelly); `cost` as in
/// [`kelly_fraction`]; `bankroll` the capital to size against.
pub fn kelly_qty(bankroll: Money, prob_win: f64, cost: f64, fraction: f64, max_qty: Qty) -> Qty {
    let f = kelly_fraction(prob_win, cost) * fraction.clamp(0.0, 1.0);
    if f <= 0.0 || cost <= 0.0 || bankroll.0 <= 0 {
        return Qty::ZERO;
    }
    let stake = f * bankroll.0 as f64 / Money::PER_DOLLAR as f64;
    let hundredths = (stake / cost * Qty::ONE_CONTRACT as f64).floor();
    if !hundredths.is_finite() || hundredths <= 0.0 {
        return Qty::ZERO;
    }
    Qty((hundredths as i64).min(max_qty.0.max(0)))
}

/// The pennying price for buying `outcome` post-only: one tick above that outcome's best bid,
/// on the outcome's scale. `None` when there is no bid to penny or when one tick better would
/// reach the opposite side (a post-only order there would be rejected).
pub fn penny_price(book: &Book, outcome: Outcome) -> Option<Price> {
    let grid = book.grid();
    match outcome {
        Outcome::Yes => {
            let (bid, _) = book.best_bid()?;
            let p = grid.next_above(bid)?;
            match book.best_ask() {
                Some((ask, _)) if p >= ask => None,
                _ => Some(p),
            }
        }
        Outcome::No => {
            // NO bid q = 1 − YES ask; a better NO bid is a lower YES ask.
            let (ask, _) = book.best_ask()?;
            let yes = grid.next_below(ask)?;
            match book.best_bid() {
                Some((bid, _)) if yes <= bid => None,
                _ => Some(yes.complement()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::BookSide;
    use crate::fees::FeeType;
    use crate::grid::PriceStructure;

    #[test]
    fn ev_includes_small_order_rounding() {
        let f = FeeSchedule::of(FeeType::Quadratic);
        let ev1 = ev_per_contract(
            &f,
            Action::Buy,
            Liquidity::Taker,
            Price(5000),
            Qty::contracts(1),
            0.55,
            AccountPrecision::Cent,
        );
        assert!((ev1 - (0.55 - 0.50 - 0.02)).abs() < 1e-12);
        let ev100 = ev_per_contract(
            &f,
            Action::Buy,
            Liquidity::Taker,
            Price(5000),
            Qty::contracts(100),
            0.55,
            AccountPrecision::Cent,
        );
        assert!((ev100 - (0.05 - 0.0175)).abs() < 1e-12);
        let maker = ev_per_contract(
            &f,
            Action::Buy,
            Liquidity::Maker,
            Price(5000),
            Qty::contracts(100),
            0.55,
            AccountPrecision::Cent,
        );
        assert!((maker - 0.05).abs() < 1e-12);
        let sell = ev_per_contract(
            &f,
            Action::Sell,
            Liquidity::Taker,
            Price(9000),
            Qty::contracts(100),
            0.80,
            AccountPrecision::Cent,
        );
        assert!((sell - (0.10 - 0.0063)).abs() < 1e-12);
    }

    #[test]
    fn kelly_sizes_and_caps() {
        assert_eq!(kelly_fraction(0.5, 0.6), 0.0);
        assert!((kelly_fraction(0.95, 0.90) - 0.5).abs() < 1e-12);
        // $1000 bankroll, quarter Kelly of 0.5 = 12.5% = $125 at $0.90 → 138.88 contracts
        assert_eq!(kelly_qty(Money::dollars(1000), 0.95, 0.90, 0.25, Qty::contracts(1000)), Qty(13888));
        assert_eq!(kelly_qty(Money::dollars(1000), 0.95, 0.90, 0.25, Qty::contracts(50)), Qty::contracts(50));
        assert_eq!(kelly_qty(Money::dollars(1000), 0.80, 0.90, 0.25, Qty::contracts(50)), Qty::ZERO);
    }

    #[test]
    fn pennying_respects_grid_and_touch() {
        let mut b = Book::new(PriceStructure::TaperedDeciCent.grid());
        b.apply_delta(BookSide::Bid, Price(9100), Qty(100)).unwrap();
        b.apply_delta(BookSide::Ask, Price(9300), Qty(100)).unwrap();
        assert_eq!(penny_price(&b, Outcome::Yes), Some(Price(9110)));
        assert_eq!(penny_price(&b, Outcome::No), Some(Price(10000 - 9290)));
        let mut lc = Book::new(PriceStructure::LinearCent.grid());
        lc.apply_delta(BookSide::Bid, Price(4000), Qty(100)).unwrap();
        lc.apply_delta(BookSide::Ask, Price(4100), Qty(100)).unwrap();
        assert_eq!(penny_price(&lc, Outcome::Yes), None);
        assert_eq!(penny_price(&lc, Outcome::No), None);
        lc.apply_delta(BookSide::Ask, Price(4100), Qty(-100)).unwrap();
        assert_eq!(penny_price(&lc, Outcome::Yes), Some(Price(4100)));
        assert_eq!(penny_price(&lc, Outcome::No), None);
    }
}
