//! The `flb` configuration (`config/strategies/flb.toml`): parsing, defaults and validation.
//!
//! Every key is optional; `""` gives [`Config::default`]. Unknown keys are refused (a misspelt
//! key would otherwise silently fall back to its default). Errors name the key, say what is wrong
//! and what is allowed. Prices and sizes are written as strings so they parse exactly into the
//! SDK's fixed-point [`Price`] and [`Qty`]; probabilities and fractions are TOML floats.

use serde::Deserialize;
use strike_sdk::{Price, Qty};

/// How orders are placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Take displayed liquidity at the touch with fill-or-kill orders (taker fees).
    Taker,
    /// Rest post-only good-till-cancelled orders one tick better than the outcome's best bid
    /// (maker fees, none on plain `quadratic` series).
    Maker,
}

/// One calibration bucket: YES wins with probability `win_prob` when YES trades at a price in
/// `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Lowest YES price of the bucket, inclusive (centicents).
    pub from: Price,
    /// Highest YES price of the bucket, exclusive (centicents); the last bucket ends at $1.00.
    pub to: Price,
    /// Probability that YES settles $1 for a YES price in the bucket, 0..=1.
    pub win_prob: f64,
}

/// The validated configuration. See `config/strategies/flb.toml` for each key's documentation.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Buy YES when the best YES ask is at or above this price (YES scale, centicents).
    pub favorite_threshold: Price,
    /// Buy NO when the best YES bid is at or below this price (YES scale, centicents).
    pub longshot_threshold: Price,
    /// YES win probability by YES price: ascending, contiguous buckets covering $0.00–$1.00.
    pub calibration: Vec<Bucket>,
    /// Smallest fee-exact expected value to trade, dollars per contract.
    pub min_ev: f64,
    /// Kelly multiplier (0.25 = quarter Kelly), in (0, 1].
    pub kelly_fraction: f64,
    /// Largest size of one order, hundredths of a contract.
    pub max_order_contracts: Qty,
    /// Largest net position per market in the traded outcome, counting resting and in-flight
    /// orders, hundredths of a contract.
    pub max_position_contracts: Qty,
    /// Taker or maker.
    pub mode: Mode,
    /// Least time between two new orders in one market, milliseconds.
    pub cooldown_ms: u64,
}

/// The default calibration table `(from, to, win_prob)`, prices in centicents.
///
/// Shape from the favourite-longshot-bias literature (Snowberg & Wolfers 2010 on betting
/// markets; Bürgi, Deng & Whelan 2025 on Kalshi: contracts under 10¢ win well under their price,
/// contracts over 90¢ slightly more often than theirs): YES wins less often than its price below
/// $0.50 and more often above, mirror-symmetric about $0.50, unbiased in the middle.
pub const DEFAULT_CALIBRATION: [(u16, u16, f64); 12] = [
    (0, 500, 0.015),
    (500, 1000, 0.045),
    (1000, 2000, 0.13),
    (2000, 3000, 0.24),
    (3000, 4000, 0.345),
    (4000, 5000, 0.45),
    (5000, 6000, 0.55),
    (6000, 7000, 0.655),
    (7000, 8000, 0.76),
    (8000, 9000, 0.87),
    (9000, 9500, 0.955),
    (9500, 10000, 0.985),
];

impl Default for Config {
    fn default() -> Self {
        Config {
            favorite_threshold: Price(9000),
            longshot_threshold: Price(1000),
            calibration: DEFAULT_CALIBRATION
                .iter()
                .map(|&(from, to, win_prob)| Bucket { from: Price(from), to: Price(to), win_prob })
                .collect(),
            min_ev: 0.005,
            kelly_fraction: 0.25,
            max_order_contracts: Qty::contracts(50),
            max_position_contracts: Qty::contracts(200),
            mode: Mode::Taker,
            cooldown_ms: 1000,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    favorite_threshold: Option<String>,
    longshot_threshold: Option<String>,
    calibration: Option<Vec<RawBucket>>,
    min_ev: Option<f64>,
    kelly_fraction: Option<f64>,
    max_order_contracts: Option<String>,
    max_position_contracts: Option<String>,
    mode: Option<String>,
    cooldown_ms: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBucket {
    from: String,
    to: String,
    win_prob: f64,
}

fn err(key: &str, value: impl core::fmt::Display, what: &str) -> String {
    format!("flb config: {key} = {value}: {what}")
}

/// A dollar price strictly inside (0, 1).
fn threshold(key: &str, s: &str) -> Result<Price, String> {
    match Price::parse(s) {
        Ok(p) if p.0 > 0 && p.0 < Price::ONE => Ok(p),
        Ok(_) => Err(err(key, format!("{s:?}"), "must be strictly between \"0\" and \"1\" dollars, e.g. \"0.90\"")),
        Err(e) => Err(err(key, format!("{s:?}"), &format!("{e}; expected a dollar price string like \"0.90\""))),
    }
}

/// A positive size in contracts, up to 2 decimals.
fn contracts(key: &str, s: &str) -> Result<Qty, String> {
    match Qty::parse(s) {
        Ok(q) if q.0 > 0 => Ok(q),
        Ok(_) => Err(err(key, format!("{s:?}"), "must be a positive number of contracts, e.g. \"50.00\"")),
        Err(e) => {
            Err(err(key, format!("{s:?}"), &format!("{e}; expected contracts with up to 2 decimals, e.g. \"50.00\"")))
        }
    }
}

fn calibration(raw: &[RawBucket]) -> Result<Vec<Bucket>, String> {
    if raw.is_empty() {
        return Err("flb config: calibration is empty: give buckets covering \"0.00\" to \"1.00\"".to_string());
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut expect_from = Price::ZERO;
    for (i, b) in raw.iter().enumerate() {
        let price = |field: &str, s: &str| {
            Price::parse(s).map_err(|e| {
                err(
                    &format!("calibration[{i}].{field}"),
                    format!("{s:?}"),
                    &format!("{e}; expected a dollar price like \"0.95\""),
                )
            })
        };
        let (from, to) = (price("from", &b.from)?, price("to", &b.to)?);
        if from != expect_from {
            return Err(err(
                &format!("calibration[{i}].from"),
                format!("{:?}", b.from),
                &format!(
                    "buckets must be ascending and contiguous from \"0.00\": expected \"{}\" (the previous bucket's `to`)",
                    expect_from
                ),
            ));
        }
        if to <= from {
            return Err(err(
                &format!("calibration[{i}].to"),
                format!("{:?}", b.to),
                "must be above the bucket's `from`",
            ));
        }
        if !(b.win_prob.is_finite() && (0.0..=1.0).contains(&b.win_prob)) {
            return Err(err(
                &format!("calibration[{i}].win_prob"),
                b.win_prob,
                "must be a probability between 0 and 1",
            ));
        }
        out.push(Bucket { from, to, win_prob: b.win_prob });
        expect_from = to;
    }
    if expect_from != Price::MAX {
        return Err(err(
            &format!("calibration[{}].to", raw.len() - 1),
            format!("\"{expect_from}\""),
            "the last bucket must end at \"1.00\" so every price has a win probability",
        ));
    }
    Ok(out)
}

impl Config {
    /// Parses and validates TOML text; `""` (or only comments) gives the defaults.
    ///
    /// Errors name the offending key and say what is allowed.
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| format!("flb config: {e}"))?;
        let mut c = Config::default();
        if let Some(s) = &raw.favorite_threshold {
            c.favorite_threshold = threshold("favorite_threshold", s)?;
        }
        if let Some(s) = &raw.longshot_threshold {
            c.longshot_threshold = threshold("longshot_threshold", s)?;
        }
        if c.longshot_threshold >= c.favorite_threshold {
            return Err(format!(
                "flb config: longshot_threshold ({}) must be below favorite_threshold ({})",
                c.longshot_threshold, c.favorite_threshold
            ));
        }
        if let Some(b) = &raw.calibration {
            c.calibration = calibration(b)?;
        }
        if let Some(v) = raw.min_ev {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return Err(err("min_ev", v, "must be dollars per contract in [0, 1), e.g. 0.005"));
            }
            c.min_ev = v;
        }
        if let Some(v) = raw.kelly_fraction {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(err("kelly_fraction", v, "must be in (0, 1], e.g. 0.25 for quarter Kelly"));
            }
            c.kelly_fraction = v;
        }
        if let Some(s) = &raw.max_order_contracts {
            c.max_order_contracts = contracts("max_order_contracts", s)?;
        }
        if let Some(s) = &raw.max_position_contracts {
            c.max_position_contracts = contracts("max_position_contracts", s)?;
        }
        if let Some(m) = &raw.mode {
            c.mode = match m.as_str() {
                "taker" => Mode::Taker,
                "maker" => Mode::Maker,
                _ => return Err(err("mode", format!("{m:?}"), "allowed values are \"taker\" and \"maker\"")),
            };
        }
        if let Some(v) = raw.cooldown_ms {
            c.cooldown_ms = u64::try_from(v)
                .map_err(|_| err("cooldown_ms", v, "must be a whole number of milliseconds, 0 or more"))?;
        }
        Ok(c)
    }

    /// The calibrated probability that YES wins when YES trades at `yes` (a price in
    /// `[from, to)` of a bucket; $1.00 falls in the last bucket). Allocation-free.
    #[inline]
    pub fn win_prob(&self, yes: Price) -> Option<f64> {
        let last = self.calibration.len().checked_sub(1)?;
        self.calibration
            .iter()
            .enumerate()
            .find(|(i, b)| yes >= b.from && (yes < b.to || (*i == last && yes <= b.to)))
            .map(|(_, b)| b.win_prob)
    }
}
