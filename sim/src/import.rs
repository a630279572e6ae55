//! Importers that turn other recorded data into [`Recording`]s.
//!
//! ## Weather REST sweeps (`rest_weather_books_2026-07`)
//! [`import_weather_sweeps`] reads `weather_books_*.jsonl.gz`: gzip JSON lines, one row per
//! market per sweep, each holding the verbatim Kalshi REST `orderbook_fp` book of that market
//! (`{"yes_dollars": [["0.0100","453.00"], ...], "no_dollars": [...]}`, NO bids at NO prices; a side
//! may be missing, `null` or empty). It produces the WebSocket frames Kalshi would have sent for
//! a `use_yes_price: false` subscription to `orderbook_delta` covering those books
//! (`kalshi-protocol.md` §1.7, §1.8, §2.2, §2.3):
//!
//! - one `subscribed` ack (`id` 1, `sid` 1);
//! - sweeps (rows grouped by `capture_id`) in `captured_at` order; the first row of a market is an
//!   `orderbook_snapshot`, every later row becomes one `orderbook_delta` per level whose size
//!   changed (new − old; a level that vanished gets −old), so that replaying the deltas turns
//!   each sweep's book into the next one exactly;
//! - within one market's deltas, every decrease comes before any increase: each intermediate book
//!   is then a subset of the older or of the newer sweep's book, so it is never crossed when
//!   those are not (a replay that treats a crossed book as a gap never sees one);
//! - `seq` is one contiguous counter from 1 over all snapshots and deltas (the ack has none);
//! - `recv_ns` is the row's `captured_at` in unix nanoseconds, made strictly increasing by adding
//!   1 ns per frame within one timestamp; deltas carry `ts_ms` = `captured_at` in milliseconds.
//!
//! Prices are written with 4 decimals and sizes with 2, through the SDK's exact fixed-point
//! types (never `f64`).
//!
//! Header metadata comes from each market's first row: `series` → `series_ticker`,
//! `strike_type`, `floor_strike` / `cap_strike` (as the JSON number's decimal text: `95` → `"95"`,
//! `84.5` → `"84.5"`), `yes_sub_title`, `close_time` → `close_ts_ms`, and the grid label
//! `linear_cent` and fee type `quadratic` of Kalshi's weather series. **The rows carry no event
//! ticker**: `event_ticker` is taken as the market ticker up to its last `-`
//! (`KXHIGHNY-26JUL21-B84.5` → `KXHIGHNY-26JUL21`), which is how every weather ticker in the data
//! is built, unless an actuals file lists the market under an event, which then wins. One
//! [`EventRecord`] per event, `mutually_exclusive` when the event has a `between` market (the
//! daily high/low bracket layout; the hourly `KXTEMP*H` thresholds are cumulative), with the
//! settled `expiration_value` where an actuals file has it.
//!
//! Settlements come from `weather_actuals_*.jsonl` ([`default_actuals`]):
//! `settled_markets.events[].results` = `{ticker: "yes"|"no"}` sets [`MarketRecord::result`] of the
//! markets in the books file.

use crate::recording::{EventRecord, Frame, Header, MarketRecord, Recording, RecordingError, FORMAT_VERSION};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use strike_sdk::num::{Price, Qty};

/// Counts from one [`import_weather_sweeps`] run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Book rows read (non-blank lines of the books file).
    pub rows: usize,
    /// Sweeps (distinct `capture_id`s).
    pub sweeps: usize,
    /// Distinct markets, = header markets.
    pub markets: usize,
    /// Distinct events, = header events.
    pub events: usize,
    /// `orderbook_snapshot` frames written (one per market).
    pub snapshots: usize,
    /// `orderbook_delta` frames written.
    pub deltas: usize,
    /// Header markets with a settlement result from the actuals files.
    pub settled_markets: usize,
}

/// The `weather_actuals_*.jsonl` files beside `books` (same directory), sorted by name. Empty
/// when there are none or the directory cannot be listed.
pub fn default_actuals(books: &Path) -> Vec<PathBuf> {
    let dir = match books.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut out: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("weather_actuals_") && n.ends_with(".jsonl"))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

fn format_err(path: &Path, line: usize, msg: impl Into<String>) -> RecordingError {
    RecordingError::Format { path: path.to_path_buf(), line, msg: msg.into() }
}

fn io_err(path: &Path, source: std::io::Error) -> RecordingError {
    RecordingError::Io { path: path.to_path_buf(), source }
}

/// Unix nanoseconds of an RFC 3339 timestamp (`2026-07-21T01:01:17.039795+00:00`,
/// `2026-07-22T05:59:00Z`).
pub(crate) fn rfc3339_ns(s: &str) -> Result<i64, String> {
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| format!("bad RFC 3339 time {s:?}: {e}"))?;
    t.timestamp_nanos_opt().ok_or_else(|| format!("time {s:?} is out of range"))
}

/// The decimal text of a JSON number (or numeric string) as Kalshi metadata uses it: `95` →
/// `"95"`, `84.5` → `"84.5"`, `95.0` → `"95"`; `null` → `None`. Exponents are refused, and the
/// result must parse as a strike (at most 4 decimals).
pub(crate) fn decimal_text(raw: &RawValue) -> Result<Option<String>, String> {
    let t = raw.get().trim();
    if t == "null" {
        return Ok(None);
    }
    let t = t.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(t);
    let mut s = t.to_string();
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    strike_sdk::market::Strike::parse(&s).map_err(|e| format!("{t:?} is not a decimal strike: {e}"))?;
    Ok(Some(s))
}

/// One row of the books file; only the keys the importer needs.
#[derive(Deserialize)]
struct Row<'a> {
    capture_id: String,
    captured_at: String,
    series: String,
    ticker: String,
    #[serde(default)]
    strike_type: Option<String>,
    #[serde(default, borrow)]
    floor_strike: Option<&'a RawValue>,
    #[serde(default, borrow)]
    cap_strike: Option<&'a RawValue>,
    #[serde(default)]
    yes_sub_title: Option<String>,
    #[serde(default)]
    close_time: Option<String>,
    raw_orderbook: RestBook,
}

/// Kalshi REST `orderbook_fp`: bid levels `[price_dollars, count_fp]`, NO side at NO prices.
#[derive(Deserialize)]
struct RestBook {
    #[serde(default)]
    yes_dollars: Option<Vec<(String, String)>>,
    #[serde(default)]
    no_dollars: Option<Vec<(String, String)>>,
}

/// One side of a book: price → size, sizes > 0, each side on its own scale (NO at NO prices).
type Side = BTreeMap<Price, Qty>;

/// A parsed row: where it came from, when, and the two bid ladders.
struct Obs {
    line: usize,
    ns: u64,
    ticker: String,
    yes: Side,
    no: Side,
}

fn parse_side(levels: &Option<Vec<(String, String)>>, what: &str) -> Result<Side, String> {
    let mut side = Side::new();
    for (p, q) in levels.iter().flatten() {
        let price = Price::parse(p).map_err(|e| format!("{what} price {p:?}: {e}"))?;
        let size = Qty::parse(q).map_err(|e| format!("{what} size {q:?}: {e}"))?;
        if size.0 < 0 {
            return Err(format!("{what} level {p}: negative size {q:?}"));
        }
        if price.0 == 0 || price.0 >= Price::ONE || price.0 % 100 != 0 {
            return Err(format!("{what} price {p:?} is not on the linear_cent grid (0.01..0.99)"));
        }
        if size.0 > 0 && side.insert(price, size).is_some() {
            return Err(format!("{what} price {p:?} listed twice"));
        }
    }
    Ok(side)
}

/// Serialized `[price_dollars, count_fp]` level.
fn levels(side: &Side) -> Vec<(String, String)> {
    side.iter().map(|(p, q)| (p.to_fixed_str().to_string(), q.to_fixed_str().to_string())).collect()
}

#[derive(Serialize)]
struct SnapshotMsg<'a> {
    market_ticker: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    yes_dollars_fp: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    no_dollars_fp: Vec<(String, String)>,
}

#[derive(Serialize)]
struct DeltaMsg<'a> {
    market_ticker: &'a str,
    price_dollars: String,
    delta_fp: String,
    side: &'static str,
    ts_ms: i64,
}

#[derive(Serialize)]
struct DataFrame<M> {
    #[serde(rename = "type")]
    ty: &'static str,
    sid: u32,
    seq: u64,
    msg: M,
}

/// The level changes from `old` to `new` on one side: `(price, new − old)` for every price whose
/// size differs.
fn side_changes(old: &Side, new: &Side, out: &mut Vec<(Price, Qty)>) {
    let mut prices: Vec<Price> = old.keys().chain(new.keys()).copied().collect();
    prices.sort_unstable();
    prices.dedup();
    for p in prices {
        let o = old.get(&p).copied().unwrap_or(Qty::ZERO);
        let n = new.get(&p).copied().unwrap_or(Qty::ZERO);
        if n != o {
            out.push((p, n - o));
        }
    }
}

#[derive(Deserialize)]
struct ActualsLine {
    #[serde(default)]
    settled_markets: Option<ActualsSettled>,
}

#[derive(Deserialize)]
struct ActualsSettled {
    #[serde(default)]
    events: Option<Vec<ActualsEvent>>,
}

#[derive(Deserialize)]
struct ActualsEvent {
    event_ticker: String,
    #[serde(default)]
    expiration_value: Option<serde_json::Value>,
    #[serde(default)]
    results: Option<BTreeMap<String, String>>,
}

/// What the actuals files say: event ticker → settled `expiration_value`, and market ticker →
/// (event ticker, `"yes"`/`"no"`).
struct Settlements {
    expiration_values: HashMap<String, String>,
    results: HashMap<String, (String, String)>,
}

/// Reads the actuals files. Results other than `"yes"`/`"no"` (e.g. `""`) are ignored; two rows
/// disagreeing on a market's result is an error.
fn read_actuals(actuals: &[PathBuf]) -> Result<Settlements, RecordingError> {
    let mut expiration_values: HashMap<String, String> = HashMap::new();
    let mut results: HashMap<String, (String, String)> = HashMap::new();
    for path in actuals {
        let reader = std::io::BufReader::new(crate::recording::open_maybe_gz(path)?);
        for (i, line) in reader.lines().enumerate() {
            let line_no = i + 1;
            let line = line.map_err(|e| io_err(path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            let a: ActualsLine = serde_json::from_str(&line)
                .map_err(|e| format_err(path, line_no, format!("not a weather_actuals row: {e}")))?;
            for ev in a.settled_markets.and_then(|s| s.events).unwrap_or_default() {
                let value = match ev.expiration_value {
                    Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
                    Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                if let Some(v) = value {
                    expiration_values.insert(ev.event_ticker.clone(), v);
                }
                for (ticker, res) in ev.results.unwrap_or_default() {
                    if res != "yes" && res != "no" {
                        continue;
                    }
                    if let Some((_, prev)) = results.get(&ticker) {
                        if *prev != res {
                            return Err(format_err(
                                path,
                                line_no,
                                format!(
                                    "market {ticker}: result {res:?} contradicts {prev:?} from an earlier actuals row"
                                ),
                            ));
                        }
                        continue;
                    }
                    results.insert(ticker, (ev.event_ticker.clone(), res));
                }
            }
        }
    }
    Ok(Settlements { expiration_values, results })
}

/// Converts a weather REST-sweep books file (`weather_books_*.jsonl.gz`) and settlement files
/// (`weather_actuals_*.jsonl`, e.g. [`default_actuals`]) into a NO-price-scale recording of
/// Kalshi `orderbook_delta` WebSocket frames; see the module docs for the exact frames and
/// metadata. Errors name the file and, where one applies, the 1-based line.
pub fn import_weather_sweeps(books: &Path, actuals: &[PathBuf]) -> Result<(Recording, ImportStats), RecordingError> {
    let mut stats = ImportStats::default();

    // 1. Rows, grouped into sweeps by capture_id; market metadata from each market's first row.
    struct Sweep {
        first_ns: u64,
        rows: Vec<Obs>,
    }
    let mut sweeps: Vec<Sweep> = Vec::new();
    let mut sweep_of: HashMap<String, usize> = HashMap::new();
    let mut meta: HashMap<String, MarketRecord> = HashMap::new();
    let mut first_seen: Vec<(u64, usize, String)> = Vec::new(); // (ns, line, ticker)

    let reader = std::io::BufReader::new(crate::recording::open_maybe_gz(books)?);
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => format_err(books, line_no, format!("not UTF-8 text: {e}")),
            _ => io_err(books, e),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: String| format_err(books, line_no, m);
        let row: Row<'_> = serde_json::from_str(&line).map_err(|e| bad(format!("not a weather_books row: {e}")))?;
        stats.rows += 1;
        let ns = rfc3339_ns(&row.captured_at).map_err(|m| bad(format!("captured_at: {m}")))?;
        let ns = u64::try_from(ns).map_err(|_| bad(format!("captured_at {:?} is before 1970", row.captured_at)))?;
        if row.ticker.is_empty() {
            return Err(bad("empty ticker".into()));
        }
        let yes = parse_side(&row.raw_orderbook.yes_dollars, "yes_dollars").map_err(bad)?;
        let no = parse_side(&row.raw_orderbook.no_dollars, "no_dollars").map_err(bad)?;

        if !meta.contains_key(&row.ticker) {
            let event = match row.ticker.rfind('-') {
                Some(k) if k > 0 => row.ticker[..k].to_string(),
                _ => return Err(bad(format!("ticker {:?} has no event part (no '-')", row.ticker))),
            };
            let strike =
                |r: Option<&RawValue>, what: &str| decimal_text_opt(r).map_err(|m| bad(format!("{what}: {m}")));
            let close_ts_ms = match row.close_time.as_deref().filter(|s| !s.is_empty()) {
                Some(t) => rfc3339_ns(t).map_err(|m| bad(format!("close_time: {m}")))?.div_euclid(1_000_000),
                None => 0,
            };
            meta.insert(
                row.ticker.clone(),
                MarketRecord {
                    ticker: row.ticker.clone(),
                    event_ticker: event,
                    series_ticker: row.series.clone(),
                    strike_type: row.strike_type.clone().filter(|s| !s.is_empty()),
                    floor_strike: strike(row.floor_strike, "floor_strike")?,
                    cap_strike: strike(row.cap_strike, "cap_strike")?,
                    yes_sub_title: row.yes_sub_title.clone(),
                    price_level_structure: Some("linear_cent".into()),
                    fee_type: Some("quadratic".into()),
                    close_ts_ms,
                    ..Default::default()
                },
            );
            first_seen.push((ns, line_no, row.ticker.clone()));
        }

        let idx = *sweep_of.entry(row.capture_id.clone()).or_insert_with(|| {
            sweeps.push(Sweep { first_ns: ns, rows: Vec::new() });
            sweeps.len() - 1
        });
        let sw = &mut sweeps[idx];
        sw.first_ns = sw.first_ns.min(ns);
        sw.rows.push(Obs { line: line_no, ns, ticker: row.ticker, yes, no });
    }
    if stats.rows == 0 {
        return Err(format_err(books, 0, "no book rows"));
    }
    stats.sweeps = sweeps.len();
    // Stable: sweeps with the same time keep their file order.
    sweeps.sort_by_key(|s| s.first_ns);

    // 2. Settlements.
    let settled = read_actuals(actuals)?;

    // 3. Header: markets in the order they first appear in time, events in their markets' order.
    first_seen.sort_by_key(|(ns, line, _)| (*ns, *line));
    let mut markets: Vec<MarketRecord> = Vec::with_capacity(first_seen.len());
    let mut events: Vec<EventRecord> = Vec::new();
    let mut event_seen: HashSet<String> = HashSet::new();
    let mut has_between: HashMap<String, bool> = HashMap::new();
    for (_, _, t) in &first_seen {
        let mut m = meta.remove(t).unwrap_or_default();
        if let Some((ev, res)) = settled.results.get(t) {
            m.event_ticker = ev.clone();
            m.result = Some(res.clone());
        }
        let between = m.strike_type.as_deref() == Some("between");
        *has_between.entry(m.event_ticker.clone()).or_default() |= between;
        if event_seen.insert(m.event_ticker.clone()) {
            events.push(EventRecord {
                event_ticker: m.event_ticker.clone(),
                series_ticker: m.series_ticker.clone(),
                mutually_exclusive: false,
                expiration_value: settled.expiration_values.get(&m.event_ticker).cloned(),
            });
        }
        markets.push(m);
    }
    for e in &mut events {
        e.mutually_exclusive = has_between.get(&e.event_ticker).copied().unwrap_or(false);
    }
    stats.markets = markets.len();
    stats.events = events.len();
    stats.settled_markets = markets.iter().filter(|m| m.result.is_some()).count();

    // 4. Frames.
    let mut frames: Vec<Frame> = Vec::with_capacity(stats.rows * 4);
    let mut last_ns: Option<u64> = None;
    let mut stamp = |ns: u64| -> u64 {
        let t = match last_ns {
            Some(p) if ns <= p => p + 1,
            _ => ns,
        };
        last_ns = Some(t);
        t
    };
    let first_ns = sweeps.first().map(|s| s.first_ns).unwrap_or(0);
    frames.push(Frame {
        recv_ns: stamp(first_ns),
        text: r#"{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}"#.to_string(),
    });
    let mut books_now: HashMap<String, (Side, Side)> = HashMap::new();
    let mut seq: u64 = 0;
    let mut changes: Vec<(&'static str, Price, Qty)> = Vec::new();
    let mut side_buf: Vec<(Price, Qty)> = Vec::new();
    for sw in &sweeps {
        for obs in &sw.rows {
            match books_now.get_mut(&obs.ticker) {
                None => {
                    seq += 1;
                    let f = DataFrame {
                        ty: "orderbook_snapshot",
                        sid: 1,
                        seq,
                        msg: SnapshotMsg {
                            market_ticker: &obs.ticker,
                            yes_dollars_fp: levels(&obs.yes),
                            no_dollars_fp: levels(&obs.no),
                        },
                    };
                    frames.push(Frame { recv_ns: stamp(obs.ns), text: to_json(books, &f, obs.line)? });
                    stats.snapshots += 1;
                    books_now.insert(obs.ticker.clone(), (obs.yes.clone(), obs.no.clone()));
                }
                Some((yes, no)) => {
                    changes.clear();
                    for (name, old, new) in [("yes", &*yes, &obs.yes), ("no", &*no, &obs.no)] {
                        side_buf.clear();
                        side_changes(old, new, &mut side_buf);
                        changes.extend(side_buf.iter().map(|&(p, d)| (name, p, d)));
                    }
                    // Decreases first: every intermediate book stays uncrossed (module docs).
                    changes.sort_by_key(|&(_, _, d)| d.0 > 0);
                    let ts_ms = (obs.ns / 1_000_000) as i64;
                    for &(side, p, d) in &changes {
                        seq += 1;
                        let f = DataFrame {
                            ty: "orderbook_delta",
                            sid: 1,
                            seq,
                            msg: DeltaMsg {
                                market_ticker: &obs.ticker,
                                price_dollars: p.to_fixed_str().to_string(),
                                delta_fp: d.to_fixed_str().to_string(),
                                side,
                                ts_ms,
                            },
                        };
                        frames.push(Frame { recv_ns: stamp(obs.ns), text: to_json(books, &f, obs.line)? });
                        stats.deltas += 1;
                    }
                    *yes = obs.yes.clone();
                    *no = obs.no.clone();
                }
            }
        }
    }

    let mut source = format!("Kalshi REST orderbook_fp sweeps {} as orderbook_delta frames", books.display());
    if !actuals.is_empty() {
        let names: Vec<String> = actuals
            .iter()
            .map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
            .collect();
        source.push_str(&format!("; results from {}", names.join(", ")));
    }
    let header = Header { strike_recording: FORMAT_VERSION, source, yes_price_scale: false, markets, events };
    Ok((Recording { header, frames }, stats))
}

fn decimal_text_opt(raw: Option<&RawValue>) -> Result<Option<String>, String> {
    match raw {
        None => Ok(None),
        Some(r) => decimal_text(r),
    }
}

fn to_json<T: Serialize>(books: &Path, v: &T, line: usize) -> Result<String, RecordingError> {
    serde_json::to_string(v).map_err(|e| format_err(books, line, format!("cannot serialize frame: {e}")))
}
