//! Positions and P&L per market, exact in micro-dollars.
//!
//! Positions are signed on the YES scale (+ YES, − NO, as Kalshi nets them) with an average-cost
//! basis in YES terms. A fill of signed size `dq` at YES price `p` on position `q` with cost `c`:
//! - opening or adding (`q = 0` or same sign): `q += dq`, `c += dq·p`;
//! - reducing: for `k = min(|dq|, |q|)` closed contracts,
//!   `realized += sign(q)·(k·p − |c|·k/|q|)` and the cost shrinks pro rata; any remainder of
//!   `dq` opens a position the other way at `p`.
//!
//! Mark-to-market value of a position is `q·mark − c`, with `mark` the settlement price where the
//! result is known, else the book's mid (or the one side present), else the cost basis.
//! Buying NO at `x` is selling YES at `1 − x`: the P&L is the same either way.

use strike_sdk::book::{Book, BookSide};
use strike_sdk::market::{MarketId, MarketMeta};
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::{Fill, Position};

/// Every market's position, indexed by [`MarketId`].
pub struct Portfolio {
    positions: Vec<Position>,
}

/// P&L totals for the report, micro-dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PnlSummary {
    /// Realized on closed contracts, before fees.
    pub realized: Money,
    /// Open positions at their marks.
    pub unrealized: Money,
    /// Fees paid.
    pub fees: Money,
    /// `realized + unrealized − fees`.
    pub total: Money,
    /// Markets with an open position.
    pub open_markets: u32,
    /// Open positions marked at a known settlement result.
    pub marked_at_settlement: u32,
}

impl Portfolio {
    /// Flat positions for `n_markets` markets (allocated once).
    pub fn new(n_markets: usize) -> Portfolio {
        Portfolio { positions: vec![Position::default(); n_markets] }
    }

    /// All positions, for the strategy [`strike_sdk::Ctx`].
    #[inline]
    pub fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// One market's position.
    #[inline]
    pub fn position(&self, m: MarketId) -> &Position {
        &self.positions[m.idx()]
    }

    /// Applies a fill; returns the position after it.
    #[inline]
    pub fn apply_fill(&mut self, f: &Fill) -> Qty {
        let pos = &mut self.positions[f.market.idx()];
        let dq = match f.side {
            BookSide::Bid => f.qty.0,
            BookSide::Ask => -f.qty.0,
        };
        apply(pos, dq, f.yes_price);
        pos.fees += f.fee;
        pos.qty
    }

    /// Takes the venue's figure for a market's open position (`qty` hundredths, + YES / − NO;
    /// `cost` micro-dollars in YES terms), keeping realized P&L, fees and resting sizes: a
    /// position held before this run, or corrected after fills were missed.
    pub fn set_position(&mut self, m: MarketId, qty: Qty, cost: Money) {
        let pos = &mut self.positions[m.idx()];
        pos.qty = qty;
        pos.cost = if qty.0 == 0 { Money::ZERO } else { cost };
    }

    /// Adds (`delta > 0`) or removes resting size on a side of a market.
    #[inline]
    pub fn adjust_resting(&mut self, m: MarketId, side: BookSide, delta: Qty) {
        let pos = &mut self.positions[m.idx()];
        let r = match side {
            BookSide::Bid => &mut pos.resting_bids,
            BookSide::Ask => &mut pos.resting_asks,
        };
        r.0 = (r.0 + delta.0).max(0);
    }

    /// P&L over all markets, marking open positions as in the module docs.
    pub fn summary(&self, markets: &[MarketMeta], books: &[Book]) -> PnlSummary {
        let mut s = PnlSummary::default();
        for (i, p) in self.positions.iter().enumerate() {
            s.realized += p.realized;
            s.fees += p.fees;
            if p.qty.0 != 0 {
                s.open_markets += 1;
                let (mark, settled) = match markets.get(i).and_then(|m| m.settlement_price()) {
                    Some(px) => (Some(px), true),
                    None => (books.get(i).and_then(mark_price), false),
                };
                if settled {
                    s.marked_at_settlement += 1;
                }
                if let Some(px) = mark {
                    s.unrealized += Money::notional(px, p.qty) - p.cost;
                }
            }
        }
        s.total = s.realized + s.unrealized - s.fees;
        s
    }
}

/// Mid of the book, or the one side present.
pub fn mark_price(b: &Book) -> Option<Price> {
    match (b.best_bid(), b.best_ask()) {
        (Some((bid, _)), Some((ask, _))) => Some(Price(((bid.0 as u32 + ask.0 as u32) / 2) as u16)),
        (Some((p, _)), None) | (None, Some((p, _))) => Some(p),
        (None, None) => None,
    }
}

fn apply(pos: &mut Position, dq: i64, p: Price) {
    let q = pos.qty.0;
    if q == 0 || (q > 0) == (dq > 0) {
        pos.qty.0 += dq;
        pos.cost += Money::notional(p, Qty(dq));
        return;
    }
    let k = dq.abs().min(q.abs());
    let sign = q.signum();
    let basis = Money((pos.cost.0.abs() as i128 * k as i128 / q.abs() as i128) as i64);
    pos.realized += Money(sign * (Money::notional(p, Qty(k)).0 - basis.0));
    pos.cost -= Money(sign * basis.0);
    pos.qty.0 += dq;
    if pos.qty.0 == 0 {
        pos.cost = Money::ZERO;
    } else if (pos.qty.0 > 0) != (q > 0) {
        // flipped: the remainder opened at p
        pos.cost = Money::notional(p, pos.qty);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strike_sdk::fees::Liquidity;
    use strike_sdk::order::OrderRef;

    fn fill(side: BookSide, price: u16, qty: i64) -> Fill {
        Fill {
            order_ref: OrderRef(1),
            market: MarketId(0),
            side,
            liquidity: Liquidity::Taker,
            yes_price: Price(price),
            qty: Qty::contracts(qty),
            fee: Money::cents(1),
            post_position: Qty::ZERO,
            ts_ns: 0,
            tag: 0,
        }
    }

    #[test]
    fn average_cost_realized_pnl() {
        let mut p = Portfolio::new(1);
        p.apply_fill(&fill(BookSide::Bid, 4000, 10)); // long 10 @ .40
        p.apply_fill(&fill(BookSide::Bid, 5000, 10)); // long 20 @ .45 avg
        assert_eq!(p.position(MarketId(0)).cost, Money::dollars(9));
        p.apply_fill(&fill(BookSide::Ask, 6000, 5)); // sell 5 @ .60: +0.75
        assert_eq!(p.position(MarketId(0)).realized, Money(750_000));
        p.apply_fill(&fill(BookSide::Ask, 3000, 25)); // sell 15 @ .30 (-2.25), flip short 10 @ .30
        let pos = *p.position(MarketId(0));
        assert_eq!(pos.realized, Money(750_000 - 2_250_000));
        assert_eq!(pos.qty, Qty::contracts(-10));
        assert_eq!(pos.cost, Money(-3_000_000));
        assert_eq!(pos.fees, Money::cents(4));
        // buy back the short at .10: +2.00
        p.apply_fill(&fill(BookSide::Bid, 1000, 10));
        assert_eq!(p.position(MarketId(0)).realized, Money(750_000 - 2_250_000 + 2_000_000));
        assert_eq!(p.position(MarketId(0)).cost, Money::ZERO);
    }

    #[test]
    fn buying_no_settles_like_selling_yes() {
        use strike_sdk::grid::PriceStructure;
        use strike_sdk::market::{Settlement, Ticker};
        // buy 10 NO at 0.95 = sell 10 YES at 0.05; market settles NO: +0.50
        let mut p = Portfolio::new(1);
        p.apply_fill(&Fill { fee: Money::ZERO, ..fill(BookSide::Ask, 500, 10) });
        let mut meta = MarketMeta::bare(MarketId(0), Ticker::new("M").unwrap());
        meta.settlement = Settlement::No;
        let books = vec![Book::new(PriceStructure::LinearCent.grid())];
        let s = p.summary(&[meta], &books);
        assert_eq!(s.total, Money(500_000));
        assert_eq!(s.marked_at_settlement, 1);
    }
}
