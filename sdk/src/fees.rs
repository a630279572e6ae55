//! Kalshi trading fees, exact to the centicent, and the per-order rounding accumulator.
//!
//! Source: series `fee_type` in Kalshi's OpenAPI, *Fee rounding* (docs.kalshi.com/getting_started/
//! fee_rounding), `kalshi-protocol.md` §5. With `C` contracts at price `P` dollars:
//!
//! ```text
//! taker fee           = 0.07   × C × P × (1 − P) × fee_multiplier
//! maker fee           = 0.0175 × C × P × (1 − P) × fee_multiplier   (quadratic_with_maker_fees)
//! combo maker fee     = 0.035  × C × P × (1 − P) × fee_multiplier   (quadratic_with_combo_maker_fees)
//! maker fee           = 0                                           (quadratic)
//! ```
//!
//! The fee is symmetric (`fee(P) = fee(1 − P)`), so a NO price gives the same fee as its YES
//! complement. Rounding, per fill of an order:
//! 1. the fill's trade fee is rounded **up to $0.0001** (Kalshi's per-fill `fee_cost`);
//! 2. the balance change is rounded up to the account's precision (whole cents for non-direct
//!    members, [`AccountPrecision::Cent`]); the excess is a rounding fee;
//! 3. a per-order accumulator keeps the order's total rounding — everything charged above the
//!    exact fee, measured exactly — and refunds whole units of precision whenever it reaches one
//!    unit.
//!
//! Invariant (property-tested): an order's total charge is at least its exact fee and less than
//! its exact fee plus one unit of precision, so never more than the one-fill fee plus one cent,
//! however many small fills the order takes.
//!
//! All arithmetic is integer: an exact fee is a numerator over [`FEE_DEN`] in centicents.

use crate::num::{Money, Price, Qty};

/// Denominator of exact fees: an [`ExactFee`] of `FEE_DEN` is one centicent ($0.0001).
///
/// `fee_cc = coef × q/100 × p(10⁴−p)/10⁸ × 10⁴ × mult_ppm/10⁶` with `coef ∈ {7/100, 7/400, 7/200}`
/// reduces to `7·q·p·(10⁴−p)·k·mult_ppm / (4·10⁸·10⁶)` with `k = 4, 1, 2`.
pub const FEE_DEN: i128 = 400_000_000 * 1_000_000;

/// A series' fee type (Kalshi `fee_type`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FeeType {
    /// Taker pays `0.07·C·P·(1−P)`, maker pays nothing.
    #[default]
    Quadratic = 0,
    /// As `Quadratic`, plus maker `0.0175·C·P·(1−P)`.
    QuadraticWithMakerFees = 1,
    /// As `Quadratic`, plus maker `0.035·C·P·(1−P)`.
    QuadraticWithComboMakerFees = 2,
    /// A flat fee per contract from Kalshi's specific trading fee table, given in
    /// [`FeeSchedule::flat_cc_per_contract`] (taker and maker alike).
    Flat = 3,
}

impl FeeType {
    /// Parses Kalshi's `fee_type` string.
    pub fn from_name(s: &str) -> Option<FeeType> {
        Some(match s {
            "quadratic" => FeeType::Quadratic,
            "quadratic_with_maker_fees" => FeeType::QuadraticWithMakerFees,
            "quadratic_with_combo_maker_fees" => FeeType::QuadraticWithComboMakerFees,
            "flat" => FeeType::Flat,
            _ => return None,
        })
    }
    /// Kalshi's name.
    pub const fn name(self) -> &'static str {
        match self {
            FeeType::Quadratic => "quadratic",
            FeeType::QuadraticWithMakerFees => "quadratic_with_maker_fees",
            FeeType::QuadraticWithComboMakerFees => "quadratic_with_combo_maker_fees",
            FeeType::Flat => "flat",
        }
    }
}

/// Taker (removes liquidity) or maker (was resting).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liquidity {
    /// The order took displayed liquidity.
    Taker = 0,
    /// The order was resting and was hit.
    Maker = 1,
}

/// The balance precision of an account.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccountPrecision {
    /// Whole cents (non-direct members; the default).
    #[default]
    Cent = 0,
    /// Centicents (direct members).
    Centicent = 1,
}

impl AccountPrecision {
    /// One unit of precision in centicents.
    #[inline]
    pub const fn unit_cc(self) -> i64 {
        match self {
            AccountPrecision::Cent => 100,
            AccountPrecision::Centicent => 1,
        }
    }
}

/// The fee rules of one market, resolved from waiver → event override → series (Kalshi fee
/// authority order, `kalshi-protocol.md` §5).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeeSchedule {
    /// The formula.
    pub fee_type: FeeType,
    /// Flat fee per contract in centicents, for [`FeeType::Flat`] only.
    pub flat_cc_per_contract: u16,
    /// `fee_multiplier` in parts per million (1.0 = 1_000_000).
    pub multiplier_ppm: u32,
    /// Fees are waived for fills before this unix time in ms (0 = no waiver).
    pub waived_until_ms: i64,
}

impl Default for FeeSchedule {
    fn default() -> Self {
        FeeSchedule {
            fee_type: FeeType::Quadratic,
            flat_cc_per_contract: 0,
            multiplier_ppm: 1_000_000,
            waived_until_ms: 0,
        }
    }
}

/// An exact fee: a numerator over [`FEE_DEN`], in centicents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ExactFee(pub i128);

impl ExactFee {
    /// Rounded up to whole centicents.
    #[inline]
    pub fn ceil_cc(self) -> i64 {
        (self.0 + FEE_DEN - 1).div_euclid(FEE_DEN) as i64
    }
}

impl FeeSchedule {
    /// The `fee_type` formula with multiplier 1 and no waiver.
    pub const fn of(fee_type: FeeType) -> FeeSchedule {
        FeeSchedule { fee_type, flat_cc_per_contract: 0, multiplier_ppm: 1_000_000, waived_until_ms: 0 }
    }

    /// True when a fill at unix time `ts_ms` is inside a fee waiver.
    #[inline]
    pub fn is_waived(&self, ts_ms: i64) -> bool {
        ts_ms < self.waived_until_ms
    }

    /// The exact (unrounded) fee of `qty` contracts at `price` (either scale: the formula is
    /// symmetric). Negative quantities are treated as their absolute value.
    #[inline]
    pub fn exact(&self, liq: Liquidity, price: Price, qty: Qty) -> ExactFee {
        let q = qty.0.unsigned_abs() as i128;
        let p = price.0 as i128;
        let k: i128 = match (self.fee_type, liq) {
            (FeeType::Flat, _) => {
                // flat cc per contract: q/100 contracts × cc, over FEE_DEN
                return ExactFee(q * self.flat_cc_per_contract as i128 * FEE_DEN / 100);
            }
            (_, Liquidity::Taker) => 4,
            (FeeType::Quadratic, Liquidity::Maker) => 0,
            (FeeType::QuadraticWithMakerFees, Liquidity::Maker) => 1,
            (FeeType::QuadraticWithComboMakerFees, Liquidity::Maker) => 2,
        };
        ExactFee(7 * q * p * (10_000 - p) * k * self.multiplier_ppm as i128)
    }

    /// The trade fee of one fill of `qty` at `price`, rounded up to $0.0001 (what Kalshi reports
    /// as a fill's `fee_cost`).
    #[inline]
    pub fn trade_fee(&self, liq: Liquidity, price: Price, qty: Qty) -> Money {
        Money(self.exact(liq, price, qty).ceil_cc() * Money::PER_CENTICENT)
    }

    /// What one fill of `qty` at `price` costs the account: the trade fee rounded up to the
    /// account's precision. 100 contracts at $0.50: taker $1.75, maker $0.44.
    #[inline]
    pub fn one_fill_fee(&self, liq: Liquidity, price: Price, qty: Qty, precision: AccountPrecision) -> Money {
        let cc = self.exact(liq, price, qty).ceil_cc();
        let u = precision.unit_cc();
        Money((cc + u - 1) / u * u * Money::PER_CENTICENT)
    }
}

/// The fee charged for one fill by [`OrderFeeAccumulator::on_fill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FillFee {
    /// The fill's trade fee rounded to $0.0001 (Kalshi `fee_cost`).
    pub trade_fee: Money,
    /// What the balance is debited for this fill: trade fee plus rounding fee minus rebate.
    pub charged: Money,
    /// Rounding fees refunded by the accumulator with this fill.
    pub rebate: Money,
}

/// Per-order fee state: the cumulative exact fee and what was charged (see module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OrderFeeAccumulator {
    exact: i128,
    charged: Money,
}

impl OrderFeeAccumulator {
    /// Fresh state for a new order.
    pub const fn new() -> Self {
        OrderFeeAccumulator { exact: 0, charged: Money::ZERO }
    }

    /// Books one fill of the order and returns its fee. Allocation-free.
    #[inline]
    pub fn on_fill(
        &mut self,
        schedule: &FeeSchedule,
        liq: Liquidity,
        price: Price,
        qty: Qty,
        precision: AccountPrecision,
    ) -> FillFee {
        let fill = schedule.exact(liq, price, qty);
        self.exact += fill.0;
        let trade_cc = fill.ceil_cc();
        let u = precision.unit_cc();
        let charge_cc = (trade_cc + u - 1) / u * u;
        // accumulated rounding = (charged so far + this charge) − exact so far, in exact units
        let charged_cc = self.charged.0 / Money::PER_CENTICENT + charge_cc;
        let over = charged_cc as i128 * FEE_DEN - self.exact;
        let unit = u as i128 * FEE_DEN;
        let rebate_cc = if over >= unit { (over / unit) as i64 * u } else { 0 };
        let charged = Money((charge_cc - rebate_cc) * Money::PER_CENTICENT);
        self.charged += charged;
        FillFee {
            trade_fee: Money(trade_cc * Money::PER_CENTICENT),
            charged,
            rebate: Money(rebate_cc * Money::PER_CENTICENT),
        }
    }

    /// Everything charged to the balance for this order so far.
    #[inline]
    pub fn total_charged(&self) -> Money {
        self.charged
    }

    /// The order's cumulative exact fee.
    #[inline]
    pub fn total_exact(&self) -> ExactFee {
        ExactFee(self.exact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    const TAKER: FeeSchedule = FeeSchedule::of(FeeType::QuadraticWithMakerFees);

    #[test]
    fn documented_fee_vectors() {
        let c = AccountPrecision::Cent;
        let q100 = Qty::contracts(100);
        assert_eq!(TAKER.one_fill_fee(Liquidity::Taker, p("0.50"), q100, c), Money::cents(175));
        assert_eq!(TAKER.one_fill_fee(Liquidity::Maker, p("0.50"), q100, c), Money::cents(44));
        assert_eq!(TAKER.one_fill_fee(Liquidity::Taker, p("0.90"), q100, c), Money::cents(63));
        assert_eq!(TAKER.one_fill_fee(Liquidity::Maker, p("0.90"), q100, c), Money::cents(16));
        assert_eq!(TAKER.one_fill_fee(Liquidity::Taker, p("0.50"), Qty::contracts(1), c), Money::cents(2));
        let combo = FeeSchedule::of(FeeType::QuadraticWithComboMakerFees);
        assert_eq!(combo.one_fill_fee(Liquidity::Maker, p("0.50"), q100, c), Money::cents(88));
        assert_eq!(combo.one_fill_fee(Liquidity::Maker, p("0.90"), q100, c), Money::cents(32));
        // direct members pay centicent precision
        let cc = AccountPrecision::Centicent;
        assert_eq!(TAKER.one_fill_fee(Liquidity::Maker, p("0.50"), q100, cc), Money(437_500));
        assert_eq!(TAKER.one_fill_fee(Liquidity::Maker, p("0.90"), q100, cc), Money(157_500));
        // plain quadratic: makers pay nothing
        let quad = FeeSchedule::of(FeeType::Quadratic);
        assert_eq!(quad.one_fill_fee(Liquidity::Maker, p("0.50"), q100, c), Money::ZERO);
        // symmetric in price
        assert_eq!(TAKER.exact(Liquidity::Taker, p("0.17"), q100), TAKER.exact(Liquidity::Taker, p("0.83"), q100));
        // multiplier 0.5
        let half = FeeSchedule { multiplier_ppm: 500_000, ..TAKER };
        assert_eq!(half.one_fill_fee(Liquidity::Taker, p("0.50"), q100, cc), Money(875_000));
    }

    #[test]
    fn demo_recording_fill_fee_matches_kalshi() {
        // ws_demo_mm_session_2026-07-01: 5.52 contracts at $0.17, taker, fee_cost "0.054600"
        let f = FeeSchedule::of(FeeType::Quadratic);
        assert_eq!(
            f.trade_fee(Liquidity::Taker, p("0.17"), Qty::parse("5.52").unwrap()),
            Money::parse("0.0546").unwrap()
        );
    }

    #[test]
    fn accumulator_single_fill_equals_one_fill_fee() {
        let mut acc = OrderFeeAccumulator::new();
        let f = acc.on_fill(&TAKER, Liquidity::Taker, p("0.50"), Qty::contracts(1), AccountPrecision::Cent);
        assert_eq!(f.trade_fee, Money::parse("0.0175").unwrap());
        assert_eq!(f.charged, Money::cents(2));
        assert_eq!(f.rebate, Money::ZERO);
    }

    #[test]
    fn accumulator_refunds_whole_cents() {
        // four fills of 1 contract at $0.50: trade fees 0.0175 each, charged 0.02 each, the
        // accumulated 0.0025 × 4 = 0.01 is refunded on the fourth.
        let mut acc = OrderFeeAccumulator::new();
        let mut charged = Vec::new();
        for _ in 0..4 {
            charged.push(acc.on_fill(&TAKER, Liquidity::Taker, p("0.50"), Qty::contracts(1), AccountPrecision::Cent));
        }
        assert_eq!(charged[3].rebate, Money::cents(1));
        assert_eq!(acc.total_charged(), Money::cents(7)); // 4 × 0.0175 = 0.07
    }

    #[test]
    fn each_fill_reports_its_own_rounded_fee_and_tiny_fills_are_rebated() {
        // four fills of 0.01 contract at $0.50 taker: Kalshi's fee_cost is 0.0002 per fill
        // (0.000175 rounded up); each is charged a cent, and the accumulator refunds the excess.
        let mut acc = OrderFeeAccumulator::new();
        let mut total = Money::ZERO;
        for i in 0..4 {
            let f = acc.on_fill(&TAKER, Liquidity::Taker, p("0.50"), Qty(1), AccountPrecision::Cent);
            assert_eq!(f.trade_fee, Money(200), "fill {i}");
            total += f.charged;
        }
        assert_eq!(total, Money::cents(1));
    }

    proptest! {
        #[test]
        fn accumulator_never_charges_more_than_one_fill_plus_a_cent(
            fee_type in 0u8..3,
            maker in any::<bool>(),
            price_cc in 1u16..10_000,
            fills in proptest::collection::vec(1i64..50_000, 1..60),
            direct in any::<bool>(),
        ) {
            let sched = FeeSchedule::of(match fee_type { 0 => FeeType::Quadratic, 1 => FeeType::QuadraticWithMakerFees, _ => FeeType::QuadraticWithComboMakerFees });
            let liq = if maker { Liquidity::Maker } else { Liquidity::Taker };
            let prec = if direct { AccountPrecision::Centicent } else { AccountPrecision::Cent };
            let price = Price(price_cc);
            let mut acc = OrderFeeAccumulator::new();
            let mut total = Money::ZERO;
            for &f in &fills {
                let ff = acc.on_fill(&sched, liq, price, Qty(f), prec);
                prop_assert!(ff.charged.0 >= 0);
                total += ff.charged;
            }
            let whole: i64 = fills.iter().sum();
            let one = sched.one_fill_fee(liq, price, Qty(whole), prec);
            prop_assert!(total.0 <= one.0 + Money::PER_CENT, "total {} one-fill {}", total, one);
            // never less than the exact fee, and less than exact + one unit of precision
            let total_scaled = (total.0 / Money::PER_CENTICENT) as i128 * FEE_DEN;
            prop_assert!(total_scaled >= acc.total_exact().0);
            prop_assert!(total_scaled < acc.total_exact().0 + prec.unit_cc() as i128 * FEE_DEN);
            prop_assert_eq!(total, acc.total_charged());
        }
    }
}
