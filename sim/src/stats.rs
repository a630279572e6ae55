//! Order-book statistics of a recording: what the synthetic generator's defaults are measured
//! against.
//!
//! This module owns two measurements, both cold-path and allocation-happy:
//! - [`book_stats`] replays a [`Recording`] (any reader's output, an imported weather day or a
//!   [`crate::synth::generate`]d session) through one [`strike_sdk::Book`] per market and reports
//!   per-market event rates, the quoted spread in grid ticks, levels per side, level sizes and
//!   delta sizes ([`BookStats`]);
//! - [`trade_print_stats`] reads a cleaned trade-print table (the `trades_kxinx_spx_brackets`
//!   CSVs) and reports the per-market trade rate and trade sizes ([`TradeStats`]).
//!
//! ## How a book is sampled
//! Kalshi sends the deltas of one matching-engine update with one `ts_ms`; a book in the middle
//! of such a batch is a state nobody could trade against (and the weather importer orders a
//! sweep's decreases before its increases, so its intermediate books are thinner than either
//! sweep). A market's book is therefore **sampled** after each `orderbook_snapshot` and after
//! each run of consecutive `orderbook_delta`s on that market with one `ts_ms` (trade frames do
//! not break a run). Each sample contributes: the spread in ticks of the market's grid (when
//! both sides are quoted and the book is not crossed), the level count of each side (two
//! samples, zero included) and the size of every level on both sides.
//!
//! Prices and sizes stay the SDK's exact integers ([`Price`], [`Qty`] hundredths) until a
//! statistic is formed; only the statistics themselves ([`Quantiles`], rates) are `f64`.
//! Quantiles are nearest-rank on the sorted exact samples.
//!
//! Frame shapes follow `kalshi-protocol.md` §2.2 (`orderbook_snapshot`: `yes_dollars_fp` /
//! `no_dollars_fp` level arrays), §2.3 (`orderbook_delta`: `price_dollars`, `delta_fp`, `side`,
//! `ts_ms`) and §2.4 (`trade`: `count_fp`). NO-side levels are converted to YES asks at `1 − p`
//! unless the header says `yes_price_scale`.

use crate::recording::{Recording, RecordingError};
use crate::universe::UniverseData;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use strike_sdk::book::{Book, BookSide};
use strike_sdk::num::{Price, Qty};

/// Nearest-rank quantiles of a sample, in the statistic's unit (ticks, levels or contracts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantiles {
    /// Number of samples.
    pub n: usize,
    /// 10th percentile.
    pub p10: f64,
    /// Median (50th percentile).
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
}

impl Quantiles {
    /// Quantiles of exact integer samples, divided by `scale` (100 turns [`Qty`] hundredths into
    /// contracts; 1 for ticks and counts). `None` for an empty sample. Sorts `samples`.
    pub fn of(samples: &mut [i64], scale: f64) -> Option<Quantiles> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let n = samples.len();
        // nearest rank: the ceil(q·n)-th smallest, 1-based
        let at = |q: u32| samples[((q as usize * n).div_ceil(100)).clamp(1, n) - 1] as f64 / scale;
        Some(Quantiles { n, p10: at(10), median: at(50), p90: at(90) })
    }
}

/// Order-book statistics of one recording ([`book_stats`]). Rates are per market over
/// [`BookStats::span_s`]; see the module docs for how books are sampled.
#[derive(Clone, Debug, PartialEq)]
pub struct BookStats {
    /// Markets that received an `orderbook_snapshot`.
    pub markets: usize,
    /// Receive time from the first snapshot to the last book or trade frame, seconds.
    pub span_s: f64,
    /// `orderbook_delta` frames applied to a snapshotted book.
    pub deltas: u64,
    /// `trade` frames.
    pub trades: u64,
    /// Deltas the book refused (off the market's grid, a level below zero, before a snapshot)
    /// plus frames that were not JSON or lacked a field; they are not counted in `deltas`.
    pub refused: u64,
    /// Samples taken while the book was crossed (best YES bid ≥ best YES ask); no spread sample.
    pub crossed_samples: u64,
    /// Samples with at least one side empty; no spread sample.
    pub one_sided_samples: u64,
    /// Book events (deltas) per second per market: `deltas / span_s / markets`.
    pub deltas_per_s_per_market: f64,
    /// Trades per second per market: `trades / span_s / markets`.
    pub trades_per_s_per_market: f64,
    /// Trade share of events: `trades / (trades + deltas)`; `None` with neither.
    pub trade_share: Option<f64>,
    /// Best YES ask minus best YES bid, in ticks of the market's grid.
    pub spread_ticks: Option<Quantiles>,
    /// Price levels on one side of a sampled book (both sides sampled, empty sides count 0).
    pub levels_per_side: Option<Quantiles>,
    /// Size of one price level of a sampled book, contracts.
    pub level_size: Option<Quantiles>,
    /// Absolute size of one applied `orderbook_delta`, contracts.
    pub delta_size: Option<Quantiles>,
    /// Size of one `trade` print (`count_fp`), contracts.
    pub trade_size: Option<Quantiles>,
}

/// Errors of [`book_stats`] and [`trade_print_stats`].
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The recording's header does not describe a usable market universe (a grid or fee field
    /// does not parse): fix the header or re-read the recording with a current reader.
    #[error("the recording's market header is unusable: {0}")]
    Universe(String),
    /// The recording has no `orderbook_snapshot`, so no book can be measured: pass a recording
    /// of the `orderbook_delta` channel.
    #[error("the recording has no orderbook_snapshot frame: nothing to measure")]
    NoBooks,
    /// Reading a trade-print file failed (I/O, gzip, or a line that is not a trade row).
    #[error(transparent)]
    Read(#[from] RecordingError),
}

/// Accumulates [`BookStats`] samples while replaying.
struct Acc {
    spreads: Vec<i64>,
    levels: Vec<i64>,
    level_sizes: Vec<i64>,
    crossed: u64,
    one_sided: u64,
}

impl Acc {
    fn sample(&mut self, book: &Book) {
        for side in [BookSide::Bid, BookSide::Ask] {
            self.levels.push(book.level_count(side) as i64);
            book.for_each_level(side, |_, q| {
                self.level_sizes.push(q.0);
                true
            });
        }
        match (book.best_bid(), book.best_ask()) {
            (Some((b, _)), Some((a, _))) if b < a => {
                let g = book.grid();
                if let (Some(lb), Some(la)) = (g.level_of(b), g.level_of(a)) {
                    self.spreads.push(la as i64 - lb as i64);
                }
            }
            (Some(_), Some(_)) => self.crossed += 1,
            _ => self.one_sided += 1,
        }
    }
}

fn price_of(v: &Value) -> Option<Price> {
    v.as_str().and_then(|s| Price::parse(s).ok())
}

fn qty_of(v: &Value) -> Option<Qty> {
    v.as_str().and_then(|s| Qty::parse(s).ok())
}

/// Measures the order-book statistics of `rec` (see [`BookStats`] and the module docs).
///
/// Errors: [`StatsError::Universe`] when the header's markets do not build a universe,
/// [`StatsError::NoBooks`] when no snapshot is present. Malformed frames and refused deltas are
/// counted in [`BookStats::refused`], never fatal.
pub fn book_stats(rec: &Recording) -> Result<BookStats, StatsError> {
    let u = UniverseData::from_header(&rec.header).map_err(|errs| {
        StatsError::Universe(errs.iter().map(|e| format!("{}: {}", e.ticker, e.msg)).collect::<Vec<_>>().join("; "))
    })?;
    let yes_scale = rec.header.yes_price_scale;
    // a NO-side price on the YES scale
    let ask_price = |p: Price| if yes_scale { p } else { p.complement() };
    let mut books: Vec<Book> = u.markets.iter().map(|m| Book::new(m.grid)).collect();
    let mut snapshotted = vec![false; books.len()];
    let mut seen = vec![false; books.len()];
    let mut acc = Acc { spreads: Vec::new(), levels: Vec::new(), level_sizes: Vec::new(), crossed: 0, one_sided: 0 };
    let (mut deltas, mut trades, mut refused) = (0u64, 0u64, 0u64);
    let mut delta_sizes = Vec::new();
    let mut trade_sizes = Vec::new();
    let (mut first_ns, mut last_ns) = (None::<u64>, 0u64);
    // the market and ts_ms of the delta run being applied, sampled when the run ends
    let mut pending: Option<(usize, u64)> = None;

    for f in &rec.frames {
        // cheap filter before parsing: only the three frame types measured here
        let ty = if f.text.contains("\"orderbook_delta\"") && f.text.contains("\"delta_fp\"") {
            "orderbook_delta"
        } else if f.text.contains("\"orderbook_snapshot\"") {
            "orderbook_snapshot"
        } else if f.text.contains("\"trade\"") && f.text.contains("\"count_fp\"") {
            "trade"
        } else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&f.text) else {
            refused += 1;
            continue;
        };
        if v["type"].as_str() != Some(ty) {
            continue;
        }
        let msg = &v["msg"];
        let Some(mi) = msg["market_ticker"].as_str().and_then(|t| u.id_of(t)).map(|id| id.idx()) else {
            refused += 1;
            continue;
        };
        match ty {
            "trade" => {
                if first_ns.is_some() {
                    last_ns = last_ns.max(f.recv_ns);
                }
                trades += 1;
                if let Some(q) = qty_of(&msg["count_fp"]) {
                    trade_sizes.push(q.0);
                }
            }
            "orderbook_snapshot" => {
                if let Some((pm, _)) = pending.take() {
                    acc.sample(&books[pm]);
                }
                first_ns.get_or_insert(f.recv_ns);
                last_ns = last_ns.max(f.recv_ns);
                let side = |k: &str| -> Vec<(Price, Qty)> {
                    msg.get(k)
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|l| Some((price_of(&l[0])?, qty_of(&l[1])?))).collect())
                        .unwrap_or_default()
                };
                let asks: Vec<(Price, Qty)> =
                    side("no_dollars_fp").into_iter().map(|(p, q)| (ask_price(p), q)).collect();
                match books[mi].replace(side("yes_dollars_fp"), asks) {
                    Ok(()) => {
                        snapshotted[mi] = true;
                        seen[mi] = true;
                        acc.sample(&books[mi]);
                    }
                    Err(_) => {
                        refused += 1;
                        snapshotted[mi] = false;
                    }
                }
            }
            _ => {
                let (Some(p), Some(d), Some(s)) =
                    (price_of(&msg["price_dollars"]), qty_of(&msg["delta_fp"]), msg["side"].as_str())
                else {
                    refused += 1;
                    continue;
                };
                let (side, p) = match s {
                    "yes" => (BookSide::Bid, p),
                    "no" => (BookSide::Ask, ask_price(p)),
                    _ => {
                        refused += 1;
                        continue;
                    }
                };
                if !snapshotted[mi] {
                    refused += 1;
                    continue;
                }
                let ts = msg["ts_ms"].as_u64().unwrap_or(f.recv_ns / 1_000_000);
                if let Some((pm, pts)) = pending {
                    if (pm, pts) != (mi, ts) {
                        acc.sample(&books[pm]);
                    }
                }
                pending = Some((mi, ts));
                last_ns = last_ns.max(f.recv_ns);
                match books[mi].apply_delta(side, p, d) {
                    // a crossed result is applied; the sample records it as crossed
                    Ok(()) | Err(strike_sdk::book::BookFault::Crossed { .. }) => {
                        deltas += 1;
                        delta_sizes.push(d.0.abs());
                    }
                    Err(_) => refused += 1,
                }
            }
        }
    }
    if let Some((pm, _)) = pending {
        acc.sample(&books[pm]);
    }
    let Some(first_ns) = first_ns else {
        return Err(StatsError::NoBooks);
    };
    let markets = seen.iter().filter(|&&s| s).count().max(1);
    let span_s = (last_ns.saturating_sub(first_ns) as f64 / 1e9).max(1e-9);
    let per = |n: u64| n as f64 / span_s / markets as f64;
    Ok(BookStats {
        markets,
        span_s,
        deltas,
        trades,
        refused,
        crossed_samples: acc.crossed,
        one_sided_samples: acc.one_sided,
        deltas_per_s_per_market: per(deltas),
        trades_per_s_per_market: per(trades),
        trade_share: (deltas + trades > 0).then(|| trades as f64 / (deltas + trades) as f64),
        spread_ticks: Quantiles::of(&mut acc.spreads, 1.0),
        levels_per_side: Quantiles::of(&mut acc.levels, 1.0),
        level_size: Quantiles::of(&mut acc.level_sizes, 100.0),
        delta_size: Quantiles::of(&mut delta_sizes, 100.0),
        trade_size: Quantiles::of(&mut trade_sizes, 100.0),
    })
}

/// Trade statistics of a cleaned trade-print table ([`trade_print_stats`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TradeStats {
    /// Distinct tickers.
    pub markets: usize,
    /// Trade rows.
    pub trades: u64,
    /// Sum over markets of the time from its first to its last print, seconds.
    pub active_s: f64,
    /// Trades per second per market while it trades: `trades / active_s`.
    pub trades_per_s_per_market: f64,
    /// Median over markets (with two prints or more) of each market's own
    /// `(prints − 1) / (last − first)`, per second.
    pub median_market_trades_per_s: f64,
    /// Size of one print, contracts.
    pub trade_size: Option<Quantiles>,
}

/// Reads a cleaned trade-print CSV (`kalshi_kxinx_clean.csv.gz` / `kalshi_kxinxu_clean.csv.gz` of
/// `trades_kxinx_spx_brackets_2026-01_02`, gzip or plain): the header row names the columns, of
/// which `ticker`, `ts` (`2026-01-02 00:27:55.835333+00:00`) and `quantity` (contracts, `15.0`)
/// are used; quoted fields may hold commas.
///
/// Errors: [`StatsError::Read`] naming the file and line for I/O failures, a missing column or
/// a row whose time or quantity does not parse.
pub fn trade_print_stats(path: &Path) -> Result<TradeStats, StatsError> {
    let bad =
        |line: usize, msg: String| StatsError::Read(RecordingError::Format { path: path.to_path_buf(), line, msg });
    let reader = std::io::BufReader::new(crate::recording::open_maybe_gz(path)?);
    let mut lines = reader.lines().enumerate();
    let header = match lines.next() {
        Some((_, Ok(h))) => split_csv(&h),
        Some((_, Err(e))) => return Err(StatsError::Read(RecordingError::Io { path: path.to_path_buf(), source: e })),
        None => return Err(bad(1, "empty file: expected a CSV header row".into())),
    };
    let col = |name: &str| {
        header.iter().position(|c| c == name).ok_or_else(|| bad(1, format!("no `{name}` column in the header")))
    };
    let (c_ticker, c_ts, c_qty) = (col("ticker")?, col("ts")?, col("quantity")?);
    // ticker -> (first ns, last ns, prints)
    let mut per: BTreeMap<String, (i64, i64, u64)> = BTreeMap::new();
    let mut sizes = Vec::new();
    for (i, line) in lines {
        let line = line.map_err(|e| StatsError::Read(RecordingError::Io { path: path.to_path_buf(), source: e }))?;
        if line.trim().is_empty() {
            continue;
        }
        let cells = split_csv(&line);
        let get = |c: usize| cells.get(c).map(String::as_str).unwrap_or("");
        let ts = chrono::DateTime::parse_from_str(get(c_ts), "%Y-%m-%d %H:%M:%S%.f%:z")
            .map_err(|e| bad(i + 1, format!("bad ts {:?}: {e}", get(c_ts))))?
            .timestamp_nanos_opt()
            .ok_or_else(|| bad(i + 1, "ts out of range".into()))?;
        let q = Qty::parse(get(c_qty)).map_err(|e| bad(i + 1, format!("bad quantity {:?}: {e:?}", get(c_qty))))?;
        sizes.push(q.0);
        let e = per.entry(get(c_ticker).to_string()).or_insert((ts, ts, 0));
        e.0 = e.0.min(ts);
        e.1 = e.1.max(ts);
        e.2 += 1;
    }
    let trades: u64 = per.values().map(|e| e.2).sum();
    let active_s: f64 = per.values().map(|e| (e.1 - e.0) as f64 / 1e9).sum();
    let mut rates: Vec<i64> = per
        .values()
        .filter(|e| e.2 >= 2 && e.1 > e.0)
        // prints per 10⁶ s, exact enough as an integer sample
        .map(|e| ((e.2 - 1) as f64 / ((e.1 - e.0) as f64 / 1e9) * 1e6).round() as i64)
        .collect();
    Ok(TradeStats {
        markets: per.len(),
        trades,
        active_s,
        trades_per_s_per_market: if active_s > 0.0 { trades as f64 / active_s } else { 0.0 },
        median_market_trades_per_s: Quantiles::of(&mut rates, 1e6).map_or(0.0, |q| q.median),
        trade_size: Quantiles::of(&mut sizes, 100.0),
    })
}

/// Splits one CSV line: commas separate cells, double quotes protect commas, `""` is a quote.
fn split_csv(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cells.last_mut().unwrap_or(&mut String::new()).push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(String::new()),
            _ => {
                if let Some(cell) = cells.last_mut() {
                    cell.push(c);
                }
            }
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut v: Vec<i64> = (1..=10).rev().collect();
        let q = Quantiles::of(&mut v, 1.0).unwrap();
        assert_eq!((q.n, q.p10, q.median, q.p90), (10, 1.0, 5.0, 9.0));
        let mut one = vec![250];
        let q = Quantiles::of(&mut one, 100.0).unwrap();
        assert_eq!((q.p10, q.median, q.p90), (2.5, 2.5, 2.5));
        assert!(Quantiles::of(&mut [], 1.0).is_none());
    }

    #[test]
    fn csv_cells_keep_quoted_commas() {
        assert_eq!(split_csv(r#"a,"b, c",,"d""e""#), ["a", "b, c", "", "d\"e"]);
    }
}
