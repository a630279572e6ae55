//! Queue-position models: how far one of our resting orders is from the front of its price level.
//!
//! The displayed book only tells a level's total outside size, not who is where in it. A resting
//! order therefore carries an estimate, `ahead`: the outside quantity (hundredths of a contract)
//! still in front of it at its price. This module owns the rules that move `ahead` when the level
//! shrinks, one small struct per rule behind the [`QueueModel`] trait, and [`QueueModelKind`],
//! the config value that picks one (`"risk_averse"`, `"power:2"`, `"log"`).
//!
//! ## Rules common to every model (applied by [`super::Matcher`])
//! - **Arrival.** `ahead` starts at the displayed outside size at the order's price on its side
//!   (every order already there was there first).
//! - **Increase.** A level increase is new liquidity joining *behind* us: `ahead` is unchanged.
//! - **Trade at our price.** A trade of `T` printed at our level consumes the queue in order:
//!   first the outside quantity ahead of us (`ahead -= min(ahead, T)`), then our order (a partial
//!   or full maker fill of what is left of `T`), then the outside quantity behind us. A fill
//!   never exceeds the traded size. With several of our orders at one level, each one's own
//!   `ahead` is consumed in priority order (see [`allocate_trade`]).
//! - **Decrease.** A decrease of the level's displayed size that is not explained by a trade
//!   already counted (the matcher nets a trade's quantity against the level's next decreases,
//!   because the feed sends the `orderbook_delta` that removes what a trade took after the
//!   `trade` print) is handed to the model, [`QueueModel::ahead_after_decrease`].
//! - **Bounds.** Whatever a model answers, the matcher clamps it to
//!   `[max(0, ahead − d), min(ahead, level_before − d)]`: a decrease never moves us back, never
//!   removes more from ahead than was removed from the level, and `ahead` never exceeds what
//!   remains displayed at the level.
//!
//! ## Units and rounding
//! Quantities are exact [`Qty`] integers (hundredths of a contract). Floating point is used only
//! for the probabilistic split's share `f(ahead)/(f(ahead)+f(behind))`, with `f` evaluated on
//! contracts (`qty / 100`); the quantity taken from `ahead` is that share times the decrease,
//! **rounded down** to a hundredth (toward keeping us further back, the conservative side), with
//! a tolerance of 1e-9 hundredth so a share that is exact in real arithmetic is not lost to
//! binary rounding (`0.5 × 600` is 300, never 299).

use core::fmt;
use core::str::FromStr;
use strike_sdk::num::Qty;

/// How a level decrease moves our order's queue position. Object safe; one small struct per
/// model ([`RiskAverse`], [`Probabilistic`]). Formulas are in each implementation's docs.
pub trait QueueModel: fmt::Debug + Send + Sync {
    /// The model's config name (`"risk_averse"`, `"power:2"`, `"log"`).
    fn name(&self) -> String;

    /// The outside quantity ahead of our order after its level's displayed outside size fell by
    /// `decrease` from `level_before`, with `ahead` ahead before the change. All three in
    /// hundredths of a contract, with `0 ≤ ahead ≤ level_before` and
    /// `0 < decrease ≤ level_before`. The caller clamps the answer into
    /// `[max(0, ahead − decrease), min(ahead, level_before − decrease)]`.
    fn ahead_after_decrease(&self, ahead: Qty, level_before: Qty, decrease: Qty) -> Qty;
}

/// hftbacktest's risk-averse model: only trades at our price advance us.
///
/// ```text
/// on a decrease d of the level (L → L − d):   ahead' = min(ahead, L − d)
/// ```
///
/// A cancellation is assumed to come from behind us, unless there is not enough behind us for it:
/// `ahead` is only capped at the level's remaining displayed size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RiskAverse;

impl QueueModel for RiskAverse {
    fn name(&self) -> String {
        "risk_averse".to_string()
    }

    fn ahead_after_decrease(&self, ahead: Qty, level_before: Qty, decrease: Qty) -> Qty {
        Qty(ahead.0.min(level_before.0 - decrease.0).max(0))
    }
}

/// The weighting function `f` of the [`Probabilistic`] model, evaluated on contracts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ProbFn {
    /// `f(x) = xⁿ`, `n > 0` and finite (hftbacktest's `PowerProbQueueFunc`). Larger `n` puts
    /// more of a decrease on the larger side of the queue.
    Power(f64),
    /// `f(x) = ln(1 + x)` (hftbacktest's `LogProbQueueFunc`).
    Log,
}

impl ProbFn {
    /// The share of a decrease that comes from ahead of us, `f(a)/(f(a)+f(b))`, in `[0, 1]`, for
    /// `a` ahead and `b` behind in contracts. 0 when nothing is ahead, 1 when nothing is behind.
    /// Computed without overflow: `xⁿ` for large `x` is taken as a ratio `1/(1 + (b/a)ⁿ)`.
    pub fn share_ahead(&self, a: f64, b: f64) -> f64 {
        if a <= 0.0 {
            return 0.0;
        }
        if b <= 0.0 {
            return 1.0;
        }
        let s = match *self {
            ProbFn::Power(n) => 1.0 / (1.0 + (b / a).powf(n)),
            ProbFn::Log => {
                let (fa, fb) = (a.ln_1p(), b.ln_1p());
                fa / (fa + fb)
            }
        };
        if s.is_finite() {
            s.clamp(0.0, 1.0)
        } else {
            // (b/a)ⁿ overflowed to ∞ gives 0 above; only a NaN lands here: split evenly.
            0.5
        }
    }
}

/// hftbacktest's probabilistic model: a level decrease is split between the quantity ahead of us
/// and the quantity behind us in proportion to `f(ahead)` and `f(behind)`. Deterministic
/// expected-value version, exact integers except for the share:
///
/// ```text
/// on a decrease d of the level (L → L − d), ahead = a, behind b = L − a (contracts for f):
///   share  = f(a) / (f(a) + f(b))            f(x) = xⁿ  or  ln(1 + x)
///   taken  = floor(d · share)                hundredths, 1e-9 tolerance, 0 ≤ taken ≤ min(d, a)
///   ahead' = min(a − taken, L − d)
/// ```
///
/// The cap `L − d` is hftbacktest's overflow term `min(b − d·(1 − share), 0)`: when the part of
/// the decrease given to the back is more than there is behind us, the excess comes from ahead.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probabilistic {
    /// The weighting function.
    pub f: ProbFn,
}

impl QueueModel for Probabilistic {
    fn name(&self) -> String {
        match self.f {
            ProbFn::Power(n) => format!("power:{n}"),
            ProbFn::Log => "log".to_string(),
        }
    }

    fn ahead_after_decrease(&self, ahead: Qty, level_before: Qty, decrease: Qty) -> Qty {
        let (a, l, d) = (ahead.0.max(0), level_before.0.max(0), decrease.0.max(0));
        if a == 0 || d == 0 {
            return Qty(a.min((l - d).max(0)));
        }
        let behind = (l - a).max(0);
        let share = self.f.share_ahead(a as f64 / 100.0, behind as f64 / 100.0);
        let taken_f = (d as f64 * share + 1e-9).floor();
        let taken = if taken_f.is_finite() { (taken_f as i64).clamp(0, d.min(a)) } else { 0 };
        Qty((a - taken).min(l - d).max(0))
    }
}

/// The config value selecting a queue model. Parses from and displays as `"risk_averse"`,
/// `"power:N"` (`N` a positive finite number, e.g. `"power:2"`, `"power:0.5"`) and `"log"`.
#[derive(Clone, Copy, Debug, PartialEq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum QueueModelKind {
    /// [`RiskAverse`]: only trades at our price advance us. The default (the conservative one).
    #[default]
    RiskAverse,
    /// [`Probabilistic`] with `f = xⁿ`.
    Power(f64),
    /// [`Probabilistic`] with `f = ln(1 + x)`.
    Log,
}

impl QueueModelKind {
    /// The model this value selects.
    pub fn build(self) -> Box<dyn QueueModel> {
        match self {
            QueueModelKind::RiskAverse => Box::new(RiskAverse),
            QueueModelKind::Power(n) => Box::new(Probabilistic { f: ProbFn::Power(n) }),
            QueueModelKind::Log => Box::new(Probabilistic { f: ProbFn::Log }),
        }
    }
}

/// Why a queue model name was refused by [`QueueModelKind::from_str`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueModelParseError(pub String);

impl fmt::Display for QueueModelParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown queue model {:?}: expected \"risk_averse\", \"power:N\" (N > 0) or \"log\"", self.0)
    }
}

impl std::error::Error for QueueModelParseError {}

impl FromStr for QueueModelKind {
    type Err = QueueModelParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || QueueModelParseError(s.to_string());
        match s.trim() {
            "risk_averse" => Ok(QueueModelKind::RiskAverse),
            "log" => Ok(QueueModelKind::Log),
            t => {
                let n = t.strip_prefix("power:").ok_or_else(bad)?;
                let n: f64 = n.trim().parse().map_err(|_| bad())?;
                if n.is_finite() && n > 0.0 {
                    Ok(QueueModelKind::Power(n))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

impl TryFrom<String> for QueueModelKind {
    type Error = QueueModelParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for QueueModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueModelKind::RiskAverse => f.write_str("risk_averse"),
            QueueModelKind::Power(n) => write!(f, "power:{n}"),
            QueueModelKind::Log => f.write_str("log"),
        }
    }
}

/// One of our orders at a level, as [`allocate_trade`] sees it: its `ahead` and what is left of
/// it, hundredths of a contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSlot {
    /// Outside quantity ahead of the order.
    pub ahead: Qty,
    /// The order's unfilled quantity.
    pub remaining: Qty,
}

/// Splits a trade of `traded` printed at one level among the queue there: `slots` are our orders
/// at that level in priority order. Walks the queue front to back: the outside quantity ahead of
/// the first order, the first order, the outside quantity between the first and the second
/// order, and so on. Returns each order's fill (same order as `slots`) and updates every slot's
/// `ahead` by the outside quantity the trade consumed in front of it. The fills sum to at most
/// `traded`. Allocation: one `Vec` of fills.
pub fn allocate_trade(slots: &mut [QueueSlot], traded: Qty) -> Vec<Qty> {
    let mut left = traded.0.max(0);
    let mut outside_used = 0i64;
    let mut fills = vec![Qty::ZERO; slots.len()];
    for (i, s) in slots.iter().enumerate() {
        if left == 0 {
            break;
        }
        let gap = (s.ahead.0 - outside_used).max(0);
        let u = gap.min(left);
        left -= u;
        outside_used += u;
        let f = s.remaining.0.max(0).min(left);
        left -= f;
        fills[i] = Qty(f);
    }
    for (s, f) in slots.iter_mut().zip(&fills) {
        s.ahead = Qty((s.ahead.0 - outside_used).max(0));
        s.remaining = Qty(s.remaining.0 - f.0);
    }
    fills
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_kinds() {
        assert_eq!("risk_averse".parse(), Ok(QueueModelKind::RiskAverse));
        assert_eq!("log".parse(), Ok(QueueModelKind::Log));
        assert_eq!("power:2".parse(), Ok(QueueModelKind::Power(2.0)));
        assert_eq!("power:0.5".parse(), Ok(QueueModelKind::Power(0.5)));
        for bad in ["", "power", "power:", "power:0", "power:-1", "power:inf", "power:NaN", "square", "Log"] {
            assert!(bad.parse::<QueueModelKind>().is_err(), "{bad:?}");
        }
        assert_eq!(QueueModelKind::Power(3.0).to_string(), "power:3");
        assert_eq!(QueueModelKind::Power(3.0).build().name(), "power:3");
        assert_eq!(QueueModelKind::default().build().name(), "risk_averse");
        let k: QueueModelKind = serde_json::from_str("\"power:2\"").unwrap();
        assert_eq!(k, QueueModelKind::Power(2.0));
        assert!(serde_json::from_str::<QueueModelKind>("\"nope\"").is_err());
    }

    #[test]
    fn risk_averse_only_caps() {
        let m = RiskAverse;
        // 10 ahead of a level of 14; 4 cancelled: could all be behind us, ahead stays 10.
        assert_eq!(m.ahead_after_decrease(Qty(1000), Qty(1400), Qty(400)), Qty(1000));
        // 6 cancelled: only 4 behind, so ahead is capped at the 8 left.
        assert_eq!(m.ahead_after_decrease(Qty(1000), Qty(1400), Qty(600)), Qty(800));
    }

    #[test]
    fn probabilistic_splits_by_f() {
        let p2 = Probabilistic { f: ProbFn::Power(2.0) };
        // a = b = 5 contracts: share 1/2, d = 6 contracts → 3 from ahead.
        assert_eq!(p2.ahead_after_decrease(Qty(500), Qty(1000), Qty(600)), Qty(200));
        // a = 10, b = 4: share 100/116 = 0.862068…, 600 × share = 517.24 → 517 taken.
        assert_eq!(p2.ahead_after_decrease(Qty(1000), Qty(1400), Qty(600)), Qty(483));
        // nothing behind: all of it comes from ahead.
        assert_eq!(p2.ahead_after_decrease(Qty(700), Qty(700), Qty(300)), Qty(400));
        // nothing ahead: stays at the front.
        assert_eq!(p2.ahead_after_decrease(Qty(0), Qty(700), Qty(300)), Qty(0));
        let log = Probabilistic { f: ProbFn::Log };
        // a = 10, b = 4: ln 11 / (ln 11 + ln 5) = 0.598376…, 600 × share = 359.03 → 359.
        assert_eq!(log.ahead_after_decrease(Qty(1000), Qty(1400), Qty(600)), Qty(641));
        // overflow: the whole level goes, so ahead goes to zero whatever the share.
        assert_eq!(log.ahead_after_decrease(Qty(1000), Qty(1400), Qty(1400)), Qty(0));
        // huge sizes do not overflow the power.
        let p9 = Probabilistic { f: ProbFn::Power(9.0) };
        let a = p9.ahead_after_decrease(Qty(1), Qty(Qty::MAX_ABS), Qty(Qty::MAX_ABS / 2));
        assert_eq!(a, Qty(1));
    }

    #[test]
    fn trade_allocation_walks_the_queue() {
        // two of our orders: A (3 ahead, 2 left), B (5 ahead, 4 left); a trade of 7:
        // 3 outside, A fills 2, 2 outside (between A and B), B fills 0.
        let mut s = [QueueSlot { ahead: Qty(3), remaining: Qty(2) }, QueueSlot { ahead: Qty(5), remaining: Qty(4) }];
        assert_eq!(allocate_trade(&mut s, Qty(7)), vec![Qty(2), Qty(0)]);
        assert_eq!(s[0], QueueSlot { ahead: Qty(0), remaining: Qty(0) });
        assert_eq!(s[1], QueueSlot { ahead: Qty(0), remaining: Qty(4) });
        // another 3: B at the front fills 3.
        assert_eq!(allocate_trade(&mut s, Qty(3)), vec![Qty(0), Qty(3)]);
        assert_eq!(s[1].remaining, Qty(1));
    }
}
