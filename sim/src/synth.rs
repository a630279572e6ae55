//! The synthetic session generator behind the engine's embedded default.
//!
//! [`generate`] turns a seed and a [`SynthConfig`] into a [`Recording`] that looks like a real
//! Kalshi WebSocket capture made with `use_yes_price: true`, so every consumer (feed parser,
//! sequencer, books, strategies, the matching simulator) runs on it exactly as on a recording.
//!
//! ## What a session holds (the [`SynthConfig::default`] embedded default)
//! - Three daily-high-temperature events (`KXHIGHNY`, `KXHIGHCHI`, `KXHIGHMIA`), each a set of
//!   mutually exclusive brackets: a `less` tail, four two-degree `between` bins and a `greater`
//!   tail. `KXHIGHMIA` is quoted on the `tapered_deci_cent` grid ($0.001 steps below $0.10 and
//!   above $0.90), the others on `linear_cent`; `KXHIGHCHI` charges `quadratic_with_maker_fees`.
//! - One threshold ladder (`KXBTCD`, nine `greater` strikes $500 apart around the underlying's
//!   starting value), closing 15 minutes after the session ends.
//!
//! ## Model
//! - **Fair values.** A bracket event's daily high is `N(μ, σ)` rounded to a whole degree: `μ`
//!   random-walks over the session, `σ` shrinks linearly from `sd_start_f` to `sd_end_f`, and a
//!   bracket's fair probability is the normal mass of its degrees, so an event's fair
//!   probabilities sum to 1. A ladder strike `K` has fair probability `Φ(ln(S/K) / σ√τ)` with `S`
//!   a log random walk and `τ` the time to close, monotone in `K` by construction.
//! - **Quotes.** Market makers quote around a biased mid, `logit(q) = slope · logit(p)` with
//!   [`SynthConfig::quote_logit_slope`] < 1: favourites trade a little cheap and longshots a
//!   little rich, the favourite-longshot bias the `flb` strategy harvests. A requote posts a
//!   spread of 1–4 ticks of the market's grid (1 tick 60 % of the time); each side keeps
//!   `min_levels..=max_levels` levels of about 1–400 contracts, some of them fractional.
//!   Rates, spreads, depth and sizes follow the real recordings' statistics: see
//!   [`SynthConfig`] for which recording and what was measured.
//! - **Events.** A Poisson stream of book events at [`SynthConfig::book_events_per_s`], each on a
//!   uniformly drawn market: requotes toward the fair mid (forced when the fair mid has left the
//!   spread), size churn at and behind the touch, depth maintenance, and trades. A trade takes
//!   liquidity at the touch: the `trade` frame is followed by the `orderbook_delta` that removes
//!   the size it took.
//! - **Settlement.** Each bracket event draws its daily high from the session-end distribution:
//!   exactly one bracket settles `"yes"`, with the final fair probabilities. Each ladder draws
//!   one underlying value at close; strikes below it settle `"yes"`. The drawn values are the
//!   events' `expiration_value`.
//!
//! ## Wire shape
//! Frame 1 and 2 are the `subscribed` acks (`orderbook_delta` sid [`BOOK_SID`], `trade` sid
//! [`TRADE_SID`]); then one `orderbook_snapshot` per market (seq 1, 2, ...) and the event stream.
//! `seq` is contiguous on the book sid across snapshots and deltas; trades carry no seq. NO-side
//! levels and `side:"no"` deltas are on the YES scale (the NO ladder is the YES ask ladder), and
//! the header says so with `yes_price_scale: true`. Prices are 4-decimal dollar strings, sizes
//! 2-decimal. `recv_ns` strictly increases; `ts_ms` is the exchange time, 1.5–6 ms before receipt.
//!
//! ## Invariants (tested in `sim/tests/synth.rs`)
//! The generator keeps a [`strike_sdk::Book`] per market and emits a delta only after checking it
//! keeps every level ≥ 0, on the grid and strictly inside (0, 1), and the book uncrossed (best
//! YES bid < best YES ask). The same seed and config give the identical recording
//! ([`ChaCha8Rng`], no hash-map iteration, no clock reads); floating point is used only for the
//! model, never for a price or a size on the wire.
//!
//! This is a cold path: it allocates freely and formats JSON with `serde_json`.

use crate::recording::{EventRecord, Frame, Header, MarketRecord, PriceRange, Recording, FORMAT_VERSION};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use strike_sdk::book::{Book, BookSide};
use strike_sdk::fees::FeeType;
use strike_sdk::grid::PriceStructure;
use strike_sdk::num::{Price, Qty};

/// 2026-07-21T13:00:00Z in unix nanoseconds: the default session start.
pub const DEFAULT_START_NS: u64 = 1_784_638_800_000_000_000;

/// The `sid` of the `orderbook_delta` subscription in generated sessions.
pub const BOOK_SID: u32 = 1;

/// The `sid` of the `trade` subscription in generated sessions.
pub const TRADE_SID: u32 = 2;

const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;
const SECONDS_PER_YEAR: f64 = 365.0 * 86_400.0;
/// Exchange time of the first book event after the snapshots, after the session start.
const FIRST_EVENT_AFTER_NS: u64 = 50 * NS_PER_MS;
/// Most `between` bins per bracket event (larger values are clamped).
const MAX_BINS: u32 = 64;
/// Most strikes per ladder (larger values are clamped).
const MAX_STRIKES: u32 = 256;
/// Most book events one session generates, whatever the rate and duration.
const MAX_EVENTS: u64 = 2_000_000;
/// Size range (contracts, log-uniform) of a level added behind the touch: ~1–400 puts the
/// level-size median near the weather books' 15 contracts (see [`SynthConfig`]).
const DEPTH_SIZE: (f64, f64) = (1.0, 400.0);
/// Size range (contracts) of a fresh touch posted by a requote.
const TOUCH_SIZE: (f64, f64) = (2.0, 300.0);
/// Size range (contracts) of a churn add or partial cancel at an existing level: the median
/// delta lands near the real 20–25 contracts (weather sweeps, prod capture).
const CHURN_SIZE: (f64, f64) = (1.0, 100.0);
/// Size range (contracts) of a new level posted by churn (at, behind or inside the touch).
const NEW_LEVEL_SIZE: (f64, f64) = (2.0, 300.0);
/// Size range (contracts) of a trade that does not take the whole touch.
const TRADE_SIZE: (f64, f64) = (2.0, 400.0);
/// Largest underlying value or strike step, cents ($10¹¹), so strike arithmetic cannot overflow.
const MAX_UNDERLYING_CENTS: i64 = 10_000_000_000_000;

/// One daily-high-temperature event: mutually exclusive brackets on one underlying.
#[derive(Clone, Debug, PartialEq)]
pub struct BracketSpec {
    /// Series ticker (`"KXHIGHNY"`); the event ticker appends the session date (`-26JUL21`).
    pub series: String,
    /// Floor of the lowest `between` bin, whole °F. The `less` tail's `cap_strike` is this value.
    pub first_bin_floor: i32,
    /// Number of two-degree `between` bins (at least 1); the event has `bins + 2` markets.
    pub bins: u32,
    /// Forecast mean of the daily high at the session start, °F.
    pub mean_start_f: f64,
    /// Random-walk volatility of the forecast mean, °F per √hour.
    pub mean_vol_f_per_sqrt_h: f64,
    /// Forecast standard deviation at the session start, °F (> 0).
    pub sd_start_f: f64,
    /// Forecast standard deviation at the session end, °F (> 0); the results are drawn with it.
    pub sd_end_f: f64,
    /// Price grid of the event's markets (`price_level_structure` and `price_ranges`).
    pub structure: PriceStructure,
    /// Series `fee_type`.
    pub fee_type: FeeType,
}

/// One threshold ladder: `greater` strikes on one underlying (an hourly crypto-price event).
#[derive(Clone, Debug, PartialEq)]
pub struct LadderSpec {
    /// Series ticker (`"KXBTCD"`); the event ticker appends the close date and ET hour.
    pub series: String,
    /// Value of the underlying at the session start, in cents (`11_800_000` = $118,000.00).
    pub underlying_start_cents: i64,
    /// Distance between strikes, cents (> 0).
    pub strike_step_cents: i64,
    /// Number of `greater` strikes (at least 1), centred on the starting value. Strikes sit one
    /// cent below a step multiple, as Kalshi lists them (`T118249.99`).
    pub strikes: u32,
    /// Annualised volatility of the underlying's log value (0.45 = 45 %).
    pub annual_vol: f64,
    /// The markets close (and settle) this many seconds after the session ends.
    pub close_after_session_s: u32,
    /// Price grid of the ladder's markets.
    pub structure: PriceStructure,
    /// Series `fee_type`.
    pub fee_type: FeeType,
}

/// What [`generate`] produces. [`SynthConfig::default`] is the engine's embedded default session.
///
/// ## Where the defaults come from
/// Measured with [`crate::stats::book_stats`] / [`crate::stats::trade_print_stats`] on the shared
/// data (`$STRIKE_DATA_DIR/kalshi`), per market; checked in `sim/tests/synth.rs`
/// (`real_recordings_measure_as_documented`; the default, seed 7, in
/// `synthetic_default_statistics_fall_within_the_real_recordings`). Sources: **prod** = `ws_prod_mlb_wnba_2026-08-07`
/// (12 live MLB/WNBA game books, 56 s); **demo** = `ws_demo_mm_session_2026-07-01` (5 demo-exchange
/// books, 315 s; demo liquidity); **weather** = `rest_weather_books_2026-07/weather_books_2026-07-21`
/// imported by [`crate::import::import_weather_sweeps`] (730 real weather-bracket books, 5 full-depth
/// sweeps over 12 h); **KXINX/KXINXU** = `trades_kxinx_spx_brackets_2026-01_02` trade prints.
///
/// | statistic | prod | demo | weather | KXINX / KXINXU | default (seed 7) |
/// | --- | ---: | ---: | ---: | ---: | ---: |
/// | deltas /s /market | 0.36 | 1.83 | 0.0012¹ | – | 0.16 |
/// | trades /s /market | – | – | – | 0.0017 / 0.0036² | 0.0034 |
/// | trade size, median (p90), contracts | – | – | – | 12 (121) / 19 (183) | 15 (151) |
/// | spread, ticks, median (p10–p90) | 1 (1–2) | 1 (1–1) | 1 (1–7) | – | 2 (1–3) |
/// | levels per side, median (p90) | 47 (64) | 11 (22) | 18 (45) | – | 16 (31) |
/// | level size, contracts, median (p10–p90) | 5,510 (146–57,807) | 49,744 (3,455–366,667) | 15 (1–232) | – | 30 (2–255) |
/// | delta size, contracts, median | 25 | 1 | 20.6¹ | – | 23 |
///
/// ¹ net change between sweeps hours apart: a lower bound on the real event rate, and a delta
/// there sums many real ones. ² trade-weighted over each market's first-to-last print (whole
/// days, quiet hours included); no recording carries both the book and the trade channel, so
/// the trade share of events is not measured directly (the default's is 2 %).
///
/// Known gaps: the default's spread median is 2 ticks where every recording's is 1 (its p90, 3,
/// sits inside the real 2–7); the weather books' event rate is unknown (REST sweeps), so
/// `book_events_per_s` sits between the sweep lower bound and the live-game prod capture; the
/// ladder (`KXBTCD`) uses the weather-derived depth, not measured on crypto books.
///
/// Nonsensical values are clamped rather than refused (1–64 bins, 1–256 strikes, at least one
/// level and one second; `Custom` grids become `linear_cent`; a non-positive or non-finite rate
/// gives a session with snapshots only).
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    /// Session start, unix nanoseconds. Tickers take their date from it.
    pub start_ns: u64,
    /// Session length, seconds of simulated time.
    pub duration_s: u32,
    /// The bracket events.
    pub brackets: Vec<BracketSpec>,
    /// The threshold ladders.
    pub ladders: Vec<LadderSpec>,
    /// Mean book events per second over all markets (Poisson). Each event emits about 1.3
    /// deltas on average; a session stops after 2,000,000 events whatever the rate.
    /// Default 3.5/s = 0.16 deltas/s per market over 27 markets: inside the real range, from
    /// the weather sweeps' lower bound 0.0012 to the prod live-game capture's 0.36 (12 markets →
    /// 4.4 deltas/s); the demo session's 1.83 is bot liquidity. Kept rather than doubled to the
    /// prod rate: a weather bracket in the morning is quieter than a game in progress.
    pub book_events_per_s: f64,
    /// Share of book events that are trades, 0..1. Default 0.025 (was 0.04): 0.0034 trades/s per
    /// market, inside the KXINX (0.0017) .. KXINXU (0.0036) trade-print rates. Trade sizes (a
    /// quarter take the whole touch, the rest log-uniform 2–400 contracts capped by it) give a
    /// median of 15 and p90 of 151 contracts against the prints' 12–19 and 121–183.
    pub trade_share: f64,
    /// Share of book events that are voluntary requotes (new spread around the fair mid), 0..1.
    /// Requotes are forced, whatever this share, when the fair mid has left the spread.
    /// Not measured (no recording separates requotes from other deltas); it shapes the spread
    /// statistics in the table above.
    pub requote_share: f64,
    /// Favourite-longshot bias of the quotes: `logit(quoted mid) = slope · logit(fair)`.
    /// 1.0 quotes fair values; below 1 pulls quotes toward $0.50.
    pub quote_logit_slope: f64,
    /// Fewest price levels a market maker keeps per side (where the grid has room). Default 10
    /// (was 4): with `max_levels` 30 the default's median is 16 levels per side and p90 31,
    /// against weather 18 / 45, demo 11 / 22 and prod 47 / 64 (it was 7 / 13, below them all).
    /// Level sizes (behind the touch log-uniform 1–400 contracts; was 25–2,500) give a median of
    /// 30 contracts, p10 2, p90 255, against the weather books' 15 / 1 / 232 (the old median was
    /// 221); sports (prod 5,510) and demo books are far deeper.
    pub min_levels: u32,
    /// Most price levels per side before the deepest is cancelled. Default 30 (was 10); see
    /// `min_levels`.
    pub max_levels: u32,
    /// Smallest exchange-to-receive delay of a frame, microseconds. Not measured: the real
    /// captures stamp receipt in milliseconds only.
    pub feed_latency_min_us: u32,
    /// Largest exchange-to-receive delay of a frame, microseconds.
    pub feed_latency_max_us: u32,
}

impl Default for SynthConfig {
    /// The embedded default: 45 minutes from 2026-07-21T13:00:00Z, three bracket events and one
    /// ladder (27 markets), about 12k deltas and 250 trades (seed 7: 12,267 frames; FLB in-process:
    /// 138 orders, 59 fills, no fault).
    fn default() -> Self {
        let bracket =
            |series: &str, first: i32, mean: f64, sd0: f64, sd1: f64, s: PriceStructure, f: FeeType| BracketSpec {
                series: series.to_string(),
                first_bin_floor: first,
                bins: 4,
                mean_start_f: mean,
                mean_vol_f_per_sqrt_h: 0.8,
                sd_start_f: sd0,
                sd_end_f: sd1,
                structure: s,
                fee_type: f,
            };
        SynthConfig {
            start_ns: DEFAULT_START_NS,
            duration_s: 45 * 60,
            brackets: vec![
                bracket("KXHIGHNY", 84, 88.4, 1.2, 0.45, PriceStructure::LinearCent, FeeType::Quadratic),
                bracket("KXHIGHCHI", 78, 80.6, 1.6, 0.8, PriceStructure::LinearCent, FeeType::QuadraticWithMakerFees),
                bracket("KXHIGHMIA", 88, 92.3, 1.1, 0.6, PriceStructure::TaperedDeciCent, FeeType::Quadratic),
            ],
            ladders: vec![LadderSpec {
                series: "KXBTCD".to_string(),
                underlying_start_cents: 11_800_000,
                strike_step_cents: 50_000,
                strikes: 9,
                annual_vol: 0.45,
                close_after_session_s: 15 * 60,
                structure: PriceStructure::LinearCent,
                fee_type: FeeType::Quadratic,
            }],
            book_events_per_s: 3.5,
            trade_share: 0.025,
            requote_share: 0.2,
            quote_logit_slope: 0.88,
            min_levels: 10,
            max_levels: 30,
            feed_latency_min_us: 1_500,
            feed_latency_max_us: 6_000,
        }
    }
}

/// Generates the session for `seed`: deterministic (same seed and config, same recording).
///
/// See the module docs for what it contains. Never panics on any config.
pub fn generate(seed: u64, cfg: &SynthConfig) -> Recording {
    let mut g = Gen::new(seed, cfg);
    g.acks_and_snapshots();
    g.run();
    let header = g.header(seed);
    Recording { header, frames: g.frames }
}

/// How a market's fair probability follows from its event's state.
#[derive(Clone, Copy, Debug)]
enum Model {
    /// Pays when the rounded daily high `k` satisfies `lo < k < hi` (°F, half-degree bounds).
    Bracket { ev: usize, lo: Option<f64>, hi: Option<f64> },
    /// Pays when the underlying ends above `strike` (dollars).
    Ladder { ev: usize, strike: f64 },
}

struct Mkt {
    record: MarketRecord,
    market_id: String,
    book: Book,
    model: Model,
}

struct BracketState {
    spec: BracketSpec,
    event_ticker: String,
    mu: f64,
}

struct LadderState {
    spec: LadderSpec,
    event_ticker: String,
    ln_s: f64,
    close_ns: u64,
}

struct Gen<'a> {
    cfg: &'a SynthConfig,
    rng: ChaCha8Rng,
    mkts: Vec<Mkt>,
    brackets: Vec<BracketState>,
    ladders: Vec<LadderState>,
    frames: Vec<Frame>,
    seq: u64,
    last_recv: u64,
    /// Exchange time of the event being generated, unix ns.
    now: u64,
    end_ns: u64,
}

#[derive(Serialize)]
struct Subscribed<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
    id: u32,
    msg: SubscribedMsg<'a>,
}

#[derive(Serialize)]
struct SubscribedMsg<'a> {
    channel: &'a str,
    sid: u32,
}

#[derive(Serialize)]
struct Envelope<'a, M> {
    #[serde(rename = "type")]
    ty: &'a str,
    sid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    msg: M,
}

#[derive(Serialize)]
struct SnapshotMsg<'a> {
    market_ticker: &'a str,
    market_id: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    yes_dollars_fp: Vec<[String; 2]>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    no_dollars_fp: Vec<[String; 2]>,
}

#[derive(Serialize)]
struct DeltaMsg<'a> {
    market_ticker: &'a str,
    market_id: &'a str,
    price_dollars: &'a str,
    delta_fp: &'a str,
    side: &'a str,
    ts_ms: u64,
}

#[derive(Serialize)]
struct TradeMsg<'a> {
    trade_id: &'a str,
    market_ticker: &'a str,
    yes_price_dollars: &'a str,
    no_price_dollars: &'a str,
    count_fp: &'a str,
    taker_outcome_side: &'a str,
    taker_book_side: &'a str,
    is_block_trade: bool,
    ts_ms: u64,
}

/// Wire `side` of a YES-scale book side under `use_yes_price: true`.
fn wire_side(side: BookSide) -> &'static str {
    match side {
        BookSide::Bid => "yes",
        BookSide::Ask => "no",
    }
}

/// The structure itself, or `linear_cent` for [`PriceStructure::Custom`] (which has no bands).
fn named(s: PriceStructure) -> PriceStructure {
    if s == PriceStructure::Custom {
        PriceStructure::LinearCent
    } else {
        s
    }
}

/// `price_ranges` of a named structure, as Kalshi's 4-decimal dollar strings.
fn price_ranges(s: PriceStructure) -> Vec<PriceRange> {
    named(s)
        .bands()
        .iter()
        .map(|&(a, b, st)| PriceRange {
            start: Price(a).to_fixed_str().to_string(),
            end: Price(b).to_fixed_str().to_string(),
            step: Price(st).to_fixed_str().to_string(),
        })
        .collect()
}

/// Civil date (year, month 1..=12, day) of a count of days since 1970-01-01 (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Kalshi's ticker date (`26JUL21`) of a unix time in seconds.
fn ticker_date(unix_s: i64) -> String {
    const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    let (y, m, d) = civil_from_days(unix_s.div_euclid(86_400));
    format!("{:02}{}{:02}", y.rem_euclid(100), MONTHS[(m as usize - 1) % 12], d)
}

/// Complementary error function (Numerical Recipes `erfcc`, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Standard normal CDF.
fn norm_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return 0.5;
    }
    (0.5 * erfc(-x / std::f64::consts::SQRT_2)).clamp(0.0, 1.0)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A size, log-uniform between `lo` and `hi` contracts: mostly round lots, some whole contracts,
/// a quarter fractional (hundredths), always at least 0.01.
fn rand_qty(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> Qty {
    let (lo, hi) = (lo.max(0.01), hi.max(lo.max(0.01)));
    let x = (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp();
    let r = rng.random::<f64>();
    let hundredths = if r < 0.45 && x >= 5.0 {
        (x / 5.0).round() * 500.0
    } else if r < 0.75 && x >= 1.0 {
        x.round() * 100.0
    } else {
        (x * 100.0).round()
    };
    Qty((hundredths as i64).max(1))
}

/// A v4-style UUID string from the generator's stream.
fn uuid(rng: &mut ChaCha8Rng) -> String {
    let a: u64 = rng.random();
    let b: u64 = rng.random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl<'a> Gen<'a> {
    fn new(seed: u64, cfg: &'a SynthConfig) -> Gen<'a> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let start_s = (cfg.start_ns / NS_PER_S) as i64;
        let duration_s = cfg.duration_s.max(1) as u64;
        let end_ns = cfg.start_ns.saturating_add(duration_s * NS_PER_S);
        let day_start_s = start_s.div_euclid(86_400) * 86_400;
        let date = ticker_date(start_s);
        let mut mkts = Vec::new();
        let mut brackets = Vec::new();
        let mut ladders = Vec::new();

        // Daily-high events close at 04:59Z the next day and opened at 14:00Z the day before.
        let bracket_close_ms = (day_start_s + 86_400 + 4 * 3600 + 59 * 60) * 1000;
        let bracket_open_ms = (day_start_s - 86_400 + 14 * 3600) * 1000;
        for spec in &cfg.brackets {
            let ev = brackets.len();
            let event_ticker = format!("{}-{}", spec.series, date);
            let bins = spec.bins.clamp(1, MAX_BINS) as i32;
            let f = spec.first_bin_floor.clamp(-10_000, 10_000);
            let top = f + 2 * bins - 1;
            let mut add = |ticker: String, st: &str, floor: Option<i32>, cap: Option<i32>, sub: String, m: Model| {
                mkts.push(Mkt {
                    record: MarketRecord {
                        ticker,
                        event_ticker: event_ticker.clone(),
                        series_ticker: spec.series.clone(),
                        strike_type: Some(st.to_string()),
                        floor_strike: floor.map(|v| v.to_string()),
                        cap_strike: cap.map(|v| v.to_string()),
                        yes_sub_title: Some(sub),
                        price_level_structure: Some(named(spec.structure).name().to_string()),
                        price_ranges: price_ranges(spec.structure),
                        fee_type: Some(spec.fee_type.name().to_string()),
                        open_ts_ms: bracket_open_ms,
                        close_ts_ms: bracket_close_ms,
                        ..Default::default()
                    },
                    market_id: String::new(),
                    book: Book::new(named(spec.structure).grid()),
                    model: m,
                })
            };
            add(
                format!("{event_ticker}-T{f}"),
                "less",
                None,
                Some(f),
                format!("{}° or below", f - 1),
                Model::Bracket { ev, lo: None, hi: Some(f as f64 - 0.5) },
            );
            for i in 0..bins {
                let a = f + 2 * i;
                add(
                    format!("{event_ticker}-B{a}.5"),
                    "between",
                    Some(a),
                    Some(a + 1),
                    format!("{a}° to {}°", a + 1),
                    Model::Bracket { ev, lo: Some(a as f64 - 0.5), hi: Some(a as f64 + 1.5) },
                );
            }
            add(
                format!("{event_ticker}-T{top}"),
                "greater",
                Some(top),
                None,
                format!("{}° or above", top + 1),
                Model::Bracket { ev, lo: Some(top as f64 + 0.5), hi: None },
            );
            brackets.push(BracketState { spec: spec.clone(), event_ticker, mu: spec.mean_start_f });
        }

        for spec in &cfg.ladders {
            let ev = ladders.len();
            let close_ns = end_ns.saturating_add(spec.close_after_session_s as u64 * NS_PER_S);
            let close_s = (close_ns / NS_PER_S) as i64;
            let et_s = close_s - 4 * 3600; // EDT, for the ticker's date and hour only
            let event_ticker = format!("{}-{}{:02}", spec.series, ticker_date(et_s), et_s.rem_euclid(86_400) / 3600);
            let step = spec.strike_step_cents.clamp(1, MAX_UNDERLYING_CENTS);
            let n = spec.strikes.clamp(1, MAX_STRIKES) as i64;
            let start = spec.underlying_start_cents.clamp(1, MAX_UNDERLYING_CENTS);
            let centre = (start.max(step) + step / 2) / step * step;
            let first = centre - (n / 2) * step;
            for i in 0..n {
                let k_cents = (first + i * step - 1).max(1);
                let k_text = format!("{}.{:02}", k_cents / 100, k_cents % 100);
                mkts.push(Mkt {
                    record: MarketRecord {
                        ticker: format!("{event_ticker}-T{k_text}"),
                        event_ticker: event_ticker.clone(),
                        series_ticker: spec.series.clone(),
                        strike_type: Some("greater".to_string()),
                        floor_strike: Some(k_text.clone()),
                        yes_sub_title: Some(format!("${k_text} or above")),
                        price_level_structure: Some(named(spec.structure).name().to_string()),
                        price_ranges: price_ranges(spec.structure),
                        fee_type: Some(spec.fee_type.name().to_string()),
                        open_ts_ms: (close_ns / NS_PER_MS) as i64 - 3_600_000,
                        close_ts_ms: (close_ns / NS_PER_MS) as i64,
                        ..Default::default()
                    },
                    market_id: String::new(),
                    book: Book::new(named(spec.structure).grid()),
                    model: Model::Ladder { ev, strike: k_cents as f64 / 100.0 },
                });
            }
            let s0 = start as f64 / 100.0;
            ladders.push(LadderState { spec: spec.clone(), event_ticker, ln_s: s0.ln(), close_ns });
        }
        for m in &mut mkts {
            m.market_id = uuid(&mut rng);
        }
        Gen {
            cfg,
            rng,
            mkts,
            brackets,
            ladders,
            frames: Vec::new(),
            seq: 0,
            last_recv: cfg.start_ns,
            now: cfg.start_ns,
            end_ns,
        }
    }

    // ---- model ----

    /// Fraction of the session elapsed at `now`, 0..=1.
    fn progress(&self) -> f64 {
        let span = self.end_ns.saturating_sub(self.cfg.start_ns).max(1) as f64;
        (self.now.saturating_sub(self.cfg.start_ns) as f64 / span).clamp(0.0, 1.0)
    }

    fn bracket_sd(&self, spec: &BracketSpec) -> f64 {
        let (a, b) = (spec.sd_start_f.max(0.05), spec.sd_end_f.max(0.05));
        a + (b - a) * self.progress()
    }

    fn ladder_sigma(&self, st: &LadderState) -> f64 {
        let tau_s = (st.close_ns.saturating_sub(self.now) as f64 / NS_PER_S as f64).max(1.0);
        (st.spec.annual_vol.abs() * (tau_s / SECONDS_PER_YEAR).sqrt()).max(1e-9)
    }

    /// Fair probability that market `mi` settles YES, now.
    fn fair(&self, mi: usize) -> f64 {
        match self.mkts[mi].model {
            Model::Bracket { ev, lo, hi } => {
                let st = &self.brackets[ev];
                let sd = self.bracket_sd(&st.spec);
                let c = |x: Option<f64>, none: f64| x.map(|x| norm_cdf((x - st.mu) / sd)).unwrap_or(none);
                (c(hi, 1.0) - c(lo, 0.0)).clamp(0.0, 1.0)
            }
            Model::Ladder { ev, strike } => {
                let st = &self.ladders[ev];
                norm_cdf((st.ln_s - strike.max(1e-9).ln()) / self.ladder_sigma(st))
            }
        }
    }

    /// Advances every underlying by `dt_ns` of simulated time.
    fn advance(&mut self, dt_ns: u64) {
        let dt_s = dt_ns as f64 / NS_PER_S as f64;
        for i in 0..self.brackets.len() {
            let z = normal(&mut self.rng);
            let b = &mut self.brackets[i];
            b.mu += z * b.spec.mean_vol_f_per_sqrt_h.abs() * (dt_s / 3600.0).sqrt();
        }
        for i in 0..self.ladders.len() {
            let z = normal(&mut self.rng);
            let l = &mut self.ladders[i];
            l.ln_s += z * l.spec.annual_vol.abs() * (dt_s / SECONDS_PER_YEAR).sqrt();
        }
    }

    /// Grid level of the highest price at or below the quoted (biased) fair mid of `mi`.
    fn fair_level(&self, mi: usize) -> i32 {
        let p = self.fair(mi).clamp(1e-5, 1.0 - 1e-5);
        let slope = if self.cfg.quote_logit_slope.is_finite() { self.cfg.quote_logit_slope } else { 1.0 };
        let q = sigmoid(slope * logit(p));
        let cc = Price((q * Price::ONE as f64).round().clamp(0.0, Price::ONE as f64) as u16);
        let grid = self.mkts[mi].book.grid();
        grid.level_of(cc).or_else(|| grid.next_below(cc).and_then(|p| grid.level_of(p))).unwrap_or(0) as i32
    }

    // ---- book helpers ----

    fn n_levels(&self, mi: usize) -> i32 {
        self.mkts[mi].book.grid().n_levels() as i32
    }

    fn price_at(&self, mi: usize, level: i32) -> Option<Price> {
        u16::try_from(level).ok().and_then(|l| self.mkts[mi].book.grid().price_at(l))
    }

    fn level_of(&self, mi: usize, p: Price) -> i32 {
        self.mkts[mi].book.grid().level_of(p).map(|l| l as i32).unwrap_or(-1)
    }

    fn best_level(&self, mi: usize, side: BookSide) -> Option<i32> {
        self.mkts[mi].book.best(side).map(|(p, _)| self.level_of(mi, p))
    }

    /// `(level, price, size)` of every level of `side`, best first.
    fn levels(&self, mi: usize, side: BookSide) -> Vec<(i32, Price, Qty)> {
        let book = &self.mkts[mi].book;
        let mut v = Vec::new();
        book.for_each_level(side, |p, q| {
            v.push((book.grid().level_of(p).map(|l| l as i32).unwrap_or(-1), p, q));
            true
        });
        v
    }

    // ---- emission ----

    /// Next receive time: exchange time plus feed latency, strictly after the previous frame.
    fn stamp(&mut self) -> u64 {
        let (lo, hi) = (self.cfg.feed_latency_min_us, self.cfg.feed_latency_max_us.max(self.cfg.feed_latency_min_us));
        let lat_us = self.rng.random_range(lo..=hi) as u64;
        let gap_ns = self.rng.random_range(1_000..=8_000u64);
        let recv = self.now.saturating_add(lat_us * 1000).max(self.last_recv.saturating_add(gap_ns));
        self.last_recv = recv;
        recv
    }

    fn push(&mut self, text: String) {
        let recv_ns = self.stamp();
        self.frames.push(Frame { recv_ns, text });
    }

    /// Emits one `orderbook_delta` if it keeps the book valid (level ≥ 0, on the grid, strictly
    /// inside (0, 1), uncrossed); returns whether it was emitted.
    fn delta(&mut self, mi: usize, side: BookSide, price: Price, d: Qty) -> bool {
        if !self.keeps_book_valid(mi, side, price, d) {
            return false;
        }
        let r = self.mkts[mi].book.apply_delta(side, price, d);
        debug_assert!(r.is_ok(), "generator emitted a faulting delta: {r:?}");
        if r.is_err() {
            return false;
        }
        self.seq += 1;
        let m = &self.mkts[mi];
        let text = serde_json::to_string(&Envelope {
            ty: "orderbook_delta",
            sid: BOOK_SID,
            seq: Some(self.seq),
            msg: DeltaMsg {
                market_ticker: &m.record.ticker,
                market_id: &m.market_id,
                price_dollars: &price.to_fixed_str(),
                delta_fp: &d.to_fixed_str(),
                side: wire_side(side),
                ts_ms: self.now / NS_PER_MS,
            },
        })
        .unwrap_or_default();
        self.push(text);
        true
    }

    fn acks_and_snapshots(&mut self) {
        for (channel, sid) in [("orderbook_delta", BOOK_SID), ("trade", TRADE_SID)] {
            let text =
                serde_json::to_string(&Subscribed { ty: "subscribed", id: 1, msg: SubscribedMsg { channel, sid } })
                    .unwrap_or_default();
            self.push(text);
        }
        for mi in 0..self.mkts.len() {
            self.requote(mi, false);
            for side in [BookSide::Bid, BookSide::Ask] {
                let want = self
                    .rng
                    .random_range(self.cfg.min_levels.max(1)..=self.cfg.max_levels.max(self.cfg.min_levels.max(1)));
                self.fill_depth(mi, side, want as usize, false);
            }
            self.snapshot(mi);
        }
    }

    /// Emits the `orderbook_snapshot` of `mi`'s current book.
    fn snapshot(&mut self, mi: usize) {
        let ladder = |side| {
            let mut v: Vec<[String; 2]> = self
                .levels(mi, side)
                .into_iter()
                .map(|(_, p, q)| [p.to_fixed_str().to_string(), q.to_fixed_str().to_string()])
                .collect();
            if side == BookSide::Bid {
                v.reverse(); // ascending, best bid last, as Kalshi sends them
            }
            v
        };
        let (yes, no) = (ladder(BookSide::Bid), ladder(BookSide::Ask));
        self.seq += 1;
        let m = &self.mkts[mi];
        let text = serde_json::to_string(&Envelope {
            ty: "orderbook_snapshot",
            sid: BOOK_SID,
            seq: Some(self.seq),
            msg: SnapshotMsg {
                market_ticker: &m.record.ticker,
                market_id: &m.market_id,
                yes_dollars_fp: yes,
                no_dollars_fp: no,
            },
        })
        .unwrap_or_default();
        self.push(text);
    }

    // ---- behaviour ----

    /// Moves the touch to a fresh spread of 1–4 ticks around the fair mid: cancels the levels
    /// inside the new spread first, then posts the new touch, then tops up depth.
    fn requote(&mut self, mi: usize, emit: bool) {
        let n = self.n_levels(mi);
        if n < 4 {
            return;
        }
        let fl = self.fair_level(mi);
        let s = match self.rng.random::<f64>() {
            x if x < 0.60 => 1,
            x if x < 0.82 => 2,
            x if x < 0.93 => 3,
            _ => 4,
        };
        let mut bid = fl - s / 2;
        let mut ask = bid + s;
        if bid < 1 {
            bid = 1;
            ask = 1 + s;
        }
        if ask > n - 2 {
            ask = n - 2;
            bid = (ask - s).max(1);
        }
        for (l, p, q) in self.levels(mi, BookSide::Bid) {
            if l > bid {
                self.apply(mi, BookSide::Bid, p, -q, emit);
            }
        }
        for (l, p, q) in self.levels(mi, BookSide::Ask) {
            if l < ask {
                self.apply(mi, BookSide::Ask, p, -q, emit);
            }
        }
        for (side, l) in [(BookSide::Bid, bid), (BookSide::Ask, ask)] {
            if let Some(p) = self.price_at(mi, l) {
                if self.mkts[mi].book.size_at(side, p).is_zero() {
                    let q = rand_qty(&mut self.rng, TOUCH_SIZE.0, TOUCH_SIZE.1);
                    self.apply(mi, side, p, q, emit);
                }
            }
        }
        let min = self.cfg.min_levels as usize;
        self.fill_depth(mi, BookSide::Bid, min, emit);
        self.fill_depth(mi, BookSide::Ask, min, emit);
    }

    /// A delta, emitted as a frame (`emit`) or applied silently while building a snapshot.
    fn apply(&mut self, mi: usize, side: BookSide, p: Price, q: Qty, emit: bool) -> bool {
        if emit {
            return self.delta(mi, side, p, q);
        }
        self.keeps_book_valid(mi, side, p, q) && self.mkts[mi].book.apply_delta(side, p, q).is_ok()
    }

    /// True when adding `d` at `price` on `side` keeps the level ≥ 0, the price on the grid and
    /// strictly inside (0, 1), and the book uncrossed. A zero delta is never worth a frame.
    fn keeps_book_valid(&self, mi: usize, side: BookSide, price: Price, d: Qty) -> bool {
        let book = &self.mkts[mi].book;
        if d.0 == 0 || price.0 == 0 || price.0 >= Price::ONE || !book.grid().contains(price) {
            return false;
        }
        if book.size_at(side, price).0 + d.0 < 0 {
            return false;
        }
        d.0 < 0
            || match side {
                BookSide::Bid => book.best_ask().is_none_or(|(a, _)| price < a),
                BookSide::Ask => book.best_bid().is_none_or(|(b, _)| price > b),
            }
    }

    /// Adds levels behind the deepest one until `side` has `want` levels or the grid ends.
    fn fill_depth(&mut self, mi: usize, side: BookSide, want: usize, emit: bool) {
        let n = self.n_levels(mi);
        let mut guard = 0;
        while self.mkts[mi].book.level_count(side) < want && guard < 64 {
            guard += 1;
            let deepest = match self.levels(mi, side).last() {
                Some(&(l, _, _)) => l,
                None => return,
            };
            let gap = self.rng.random_range(1..=2);
            let l = match side {
                BookSide::Bid => deepest - gap,
                BookSide::Ask => deepest + gap,
            };
            if l < 1 || l > n - 2 {
                return;
            }
            let Some(p) = self.price_at(mi, l) else { return };
            let q = rand_qty(&mut self.rng, DEPTH_SIZE.0, DEPTH_SIZE.1);
            if !self.apply(mi, side, p, q, emit) {
                return;
            }
        }
    }

    /// Size changes at and behind the touch: adds, partial cancels, new levels, pennying.
    fn churn(&mut self, mi: usize) {
        let side = if self.rng.random_bool(0.5) { BookSide::Bid } else { BookSide::Ask };
        let lv = self.levels(mi, side);
        if lv.is_empty() {
            self.requote(mi, true);
            return;
        }
        if self.rng.random_bool(0.5) {
            // modify an existing level, nearer the touch more often
            let mut idx = 0;
            while idx + 1 < lv.len() && self.rng.random_bool(0.5) {
                idx += 1;
            }
            let (_, p, sz) = lv[idx];
            if self.rng.random_bool(0.5) {
                let q = rand_qty(&mut self.rng, CHURN_SIZE.0, CHURN_SIZE.1);
                self.delta(mi, side, p, q);
            } else if idx > 0 && self.rng.random_bool(0.3) {
                self.delta(mi, side, p, -sz);
            } else {
                let floor = if idx == 0 { Qty::contracts(1) } else { Qty(1) };
                let room = sz.0 - floor.0;
                if room > 0 {
                    let q = rand_qty(&mut self.rng, CHURN_SIZE.0, CHURN_SIZE.1).0.min(room);
                    self.delta(mi, side, p, Qty(-q));
                } else {
                    let q = rand_qty(&mut self.rng, CHURN_SIZE.0, CHURN_SIZE.1);
                    self.delta(mi, side, p, q);
                }
            }
        } else {
            let touch = lv[0].0;
            let other = self.best_level(mi, side.opposite());
            let n = self.n_levels(mi);
            let l = if self.rng.random_bool(0.12) {
                // improve inside the spread when there is room
                match side {
                    BookSide::Bid => touch + 1,
                    BookSide::Ask => touch - 1,
                }
            } else {
                let k = self.rng.random_range(0..=5);
                match side {
                    BookSide::Bid => touch - k,
                    BookSide::Ask => touch + k,
                }
            };
            let inside = match (side, other) {
                (BookSide::Bid, Some(a)) => l < a,
                (BookSide::Ask, Some(b)) => l > b,
                (_, None) => true,
            };
            if inside && l >= 1 && l <= n - 2 {
                if let Some(p) = self.price_at(mi, l) {
                    let q = rand_qty(&mut self.rng, NEW_LEVEL_SIZE.0, NEW_LEVEL_SIZE.1);
                    self.delta(mi, side, p, q);
                }
            }
        }
    }

    /// Keeps each side between `min_levels` and `max_levels` levels.
    fn maintain(&mut self, mi: usize) {
        for side in [BookSide::Bid, BookSide::Ask] {
            let lv = self.levels(mi, side);
            if lv.len() > self.cfg.max_levels.max(1) as usize {
                if let Some(&(_, p, q)) = lv.last() {
                    self.delta(mi, side, p, -q);
                }
            } else {
                let min = self.cfg.min_levels as usize;
                self.fill_depth(mi, side, min, true);
            }
        }
    }

    /// A taker hits the touch: the `trade` frame, then the delta removing what it took.
    fn trade(&mut self, mi: usize) {
        let taker_buys = self.rng.random_bool(0.5);
        let side = if taker_buys { BookSide::Ask } else { BookSide::Bid };
        let Some((p, sz)) = self.mkts[mi].book.best(side) else {
            return;
        };
        let count = if self.rng.random_bool(0.25) {
            sz
        } else {
            Qty(rand_qty(&mut self.rng, TRADE_SIZE.0, TRADE_SIZE.1).0.min(sz.0))
        };
        if count.0 <= 0 {
            return;
        }
        let trade_id = uuid(&mut self.rng);
        let m = &self.mkts[mi];
        let text = serde_json::to_string(&Envelope {
            ty: "trade",
            sid: TRADE_SID,
            seq: None,
            msg: TradeMsg {
                trade_id: &trade_id,
                market_ticker: &m.record.ticker,
                yes_price_dollars: &p.to_fixed_str(),
                no_price_dollars: &p.complement().to_fixed_str(),
                count_fp: &count.to_fixed_str(),
                taker_outcome_side: if taker_buys { "yes" } else { "no" },
                taker_book_side: if taker_buys { "bid" } else { "ask" },
                is_block_trade: false,
                ts_ms: self.now / NS_PER_MS,
            },
        })
        .unwrap_or_default();
        self.push(text);
        self.delta(mi, side, p, -count);
        if count == sz && self.rng.random_bool(0.6) {
            self.requote(mi, true);
        }
    }

    /// True when the fair mid has left the spread, a side is empty or the spread is over 4 ticks.
    fn needs_requote(&self, mi: usize) -> bool {
        let (Some(b), Some(a)) = (self.best_level(mi, BookSide::Bid), self.best_level(mi, BookSide::Ask)) else {
            return true;
        };
        let fl = self.fair_level(mi);
        fl < b || fl >= a || a - b > 4
    }

    fn run(&mut self) {
        let rate = self.cfg.book_events_per_s;
        if !(rate.is_finite() && rate > 0.0) || self.mkts.is_empty() {
            return;
        }
        let mut t = self.cfg.start_ns.saturating_add(FIRST_EVENT_AFTER_NS);
        self.now = t;
        for _ in 0..MAX_EVENTS {
            let u = 1.0 - self.rng.random::<f64>();
            let dt = ((-u.ln() / rate) * NS_PER_S as f64).max(1_000.0) as u64;
            t = t.saturating_add(dt);
            if t >= self.end_ns {
                break;
            }
            self.advance(t - self.now);
            self.now = t;
            let mi = self.rng.random_range(0..self.mkts.len());
            let x = self.rng.random::<f64>();
            let trade = self.cfg.trade_share.clamp(0.0, 1.0);
            let requote = trade + self.cfg.requote_share.clamp(0.0, 1.0);
            if x >= trade && self.needs_requote(mi) && self.rng.random_bool(0.85) {
                self.requote(mi, true);
            } else if x < trade {
                self.trade(mi);
            } else if x < requote {
                self.requote(mi, true);
            } else if x < requote + 0.05 {
                self.maintain(mi);
            } else {
                self.churn(mi);
            }
        }
        // the session ends at end_ns: settle against the state there
        if self.end_ns > self.now {
            self.advance(self.end_ns - self.now);
            self.now = self.end_ns;
        }
    }

    /// The header, with settlement results drawn from the session-end distributions.
    fn header(&mut self, seed: u64) -> Header {
        let mut events = Vec::new();
        let mut results: Vec<Option<bool>> = vec![None; self.mkts.len()];
        for ev in 0..self.brackets.len() {
            let sd = self.bracket_sd(&self.brackets[ev].spec);
            let high = (self.brackets[ev].mu + sd * normal(&mut self.rng)).round();
            for (mi, m) in self.mkts.iter().enumerate() {
                if let Model::Bracket { ev: e, lo, hi } = m.model {
                    if e == ev {
                        results[mi] = Some(lo.is_none_or(|lo| high > lo) && hi.is_none_or(|hi| high < hi));
                    }
                }
            }
            let b = &self.brackets[ev];
            events.push(EventRecord {
                event_ticker: b.event_ticker.clone(),
                series_ticker: b.spec.series.clone(),
                mutually_exclusive: true,
                expiration_value: Some(format!("{high:.0}")),
            });
        }
        for ev in 0..self.ladders.len() {
            let sigma = self.ladder_sigma(&self.ladders[ev]);
            let ln_end = self.ladders[ev].ln_s + sigma * normal(&mut self.rng);
            let cents = (ln_end.exp() * 100.0).round().clamp(0.0, 1e15) as i64;
            for (mi, m) in self.mkts.iter().enumerate() {
                if let Model::Ladder { ev: e, strike } = m.model {
                    if e == ev {
                        results[mi] = Some(cents as f64 / 100.0 > strike);
                    }
                }
            }
            let l = &self.ladders[ev];
            events.push(EventRecord {
                event_ticker: l.event_ticker.clone(),
                series_ticker: l.spec.series.clone(),
                mutually_exclusive: false,
                expiration_value: Some(format!("{}.{:02}", cents / 100, cents % 100)),
            });
        }
        let markets = self
            .mkts
            .iter()
            .zip(results)
            .map(|(m, r)| MarketRecord {
                result: r.map(|y| if y { "yes" } else { "no" }.to_string()),
                ..m.record.clone()
            })
            .collect();
        Header {
            strike_recording: FORMAT_VERSION,
            source: format!("strike-sim synthetic session, seed {seed}"),
            yes_price_scale: true,
            markets,
            events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_is_accurate() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(1.0) - 0.841_344_746).abs() < 1e-6);
        assert!((norm_cdf(-1.959_963_985) - 0.025).abs() < 1e-6);
        assert!(norm_cdf(9.0) <= 1.0 && norm_cdf(-9.0) >= 0.0);
    }

    #[test]
    fn ticker_dates_match_kalshi() {
        assert_eq!(ticker_date((DEFAULT_START_NS / NS_PER_S) as i64), "26JUL21");
        assert_eq!(ticker_date(0), "70JAN01");
        assert_eq!(ticker_date(951_782_400), "00FEB29");
    }

    #[test]
    fn sizes_are_positive_hundredths() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..10_000 {
            let q = rand_qty(&mut rng, 25.0, 2500.0);
            assert!(q.0 >= 1 && q.0 <= 250_100, "{q:?}");
        }
    }
}
