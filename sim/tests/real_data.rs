//! The readers and the weather importer on the real Kalshi data in `STRIKE_DATA_DIR`
//! (`strike_sim::data_dir()`): counts from the folders' `PROVENANCE.md`, strictly increasing
//! receive times, contiguous `seq`, and book replays through the SDK's [`Book`].

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use strike_sdk::book::{Book, BookSide};
use strike_sdk::num::{Price, Qty};
use strike_sim::import::{default_actuals, import_weather_sweeps};
use strike_sim::recording::{Recording, RecordingError};
use strike_sim::universe::UniverseData;

fn kalshi(rel: &str) -> PathBuf {
    let p = strike_sim::data_dir().join("kalshi").join(rel);
    assert!(p.exists(), "{} is missing: set STRIKE_DATA_DIR to the shared data directory", p.display());
    p
}

fn count_type(rec: &Recording, ty: &str) -> usize {
    let needle = format!("\"type\":\"{ty}\"");
    rec.frames.iter().filter(|f| f.text.contains(&needle)).count()
}

fn assert_strictly_increasing(rec: &Recording) {
    for w in rec.frames.windows(2) {
        assert!(w[0].recv_ns < w[1].recv_ns, "recv_ns not increasing: {} then {}", w[0].recv_ns, w[1].recv_ns);
    }
}

/// Every `seq` of the recording in order; they must be 1, 2, 3, ...
fn assert_seq_contiguous(rec: &Recording) -> u64 {
    let mut expect = 1u64;
    for f in &rec.frames {
        let v: Value = serde_json::from_str(&f.text).unwrap();
        if let Some(s) = v.get("seq").and_then(Value::as_u64) {
            assert_eq!(s, expect, "seq gap in {}", f.text);
            expect += 1;
        }
    }
    expect - 1
}

fn px(v: &Value) -> Price {
    Price::parse(v.as_str().unwrap()).unwrap()
}

fn qty(v: &Value) -> Qty {
    Qty::parse(v.as_str().unwrap()).unwrap()
}

/// Replays a NO-price-scale recording's `orderbook_delta` channel into one [`Book`] per market
/// (NO bids at `q` become YES asks at `1 − q`). Any book fault fails the test.
fn replay(rec: &Recording) -> (UniverseData, Vec<Book>) {
    assert!(!rec.header.yes_price_scale);
    let u = UniverseData::from_header(&rec.header).unwrap_or_else(|e| panic!("universe: {e:?}"));
    let mut books: Vec<Book> = u.markets.iter().map(|m| Book::new(m.grid)).collect();
    let mut snapshotted = vec![false; books.len()];
    for f in &rec.frames {
        let v: Value = serde_json::from_str(&f.text).unwrap();
        let ty = v["type"].as_str().unwrap();
        if ty != "orderbook_snapshot" && ty != "orderbook_delta" {
            continue;
        }
        let msg = &v["msg"];
        let id = u.id_of(msg["market_ticker"].as_str().unwrap()).expect("market in header");
        let book = &mut books[id.0 as usize];
        if ty == "orderbook_snapshot" {
            let side = |k: &str| -> Vec<(Price, Qty)> {
                msg.get(k)
                    .map(|a| a.as_array().unwrap().iter().map(|l| (px(&l[0]), qty(&l[1]))).collect())
                    .unwrap_or_default()
            };
            let asks = side("no_dollars_fp").into_iter().map(|(p, q)| (p.complement(), q));
            book.replace(side("yes_dollars_fp"), asks).unwrap_or_else(|e| panic!("snapshot {}: {e}", f.text));
            snapshotted[id.0 as usize] = true;
        } else {
            assert!(snapshotted[id.0 as usize], "delta before snapshot: {}", f.text);
            let p = px(&msg["price_dollars"]);
            let (side, p) = match msg["side"].as_str().unwrap() {
                "yes" => (BookSide::Bid, p),
                "no" => (BookSide::Ask, p.complement()),
                s => panic!("side {s}"),
            };
            book.apply_delta(side, p, qty(&msg["delta_fp"])).unwrap_or_else(|e| panic!("delta {}: {e}", f.text));
        }
    }
    (u, books)
}

fn levels(book: &Book, side: BookSide) -> Vec<(Price, Qty)> {
    let mut v = Vec::new();
    book.for_each_level(side, |p, q| {
        v.push((p, q));
        true
    });
    v.sort();
    v
}

#[test]
fn prod_capture_object_counts_times_results_and_replay() {
    let path = kalshi("ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json");
    let rec = Recording::read(&path).unwrap();
    assert_eq!(rec.frames.len(), 269);
    assert_eq!(rec.header.markets.len(), 12);
    assert_eq!(count_type(&rec, "orderbook_delta"), 245);
    assert_eq!(count_type(&rec, "orderbook_snapshot"), 12);
    assert_eq!(count_type(&rec, "ok"), 11);
    assert!(!rec.header.yes_price_scale);
    assert_strictly_increasing(&rec);
    assert_eq!(rec.frames[0].recv_ns, 1_786_085_188_416_000_000);
    assert_eq!(assert_seq_contiguous(&rec), 268);

    // Frames are the capture's frames, compacted: same JSON, same key order, no whitespace.
    let whole: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (f, orig) in rec.frames.iter().zip(whole["frames"].as_array().unwrap()) {
        assert_eq!(serde_json::from_str::<Value>(&f.text).unwrap(), orig["frame"]);
        assert!(!f.text.contains('\n') && !f.text.contains(": "), "{}", f.text);
    }
    assert!(rec.frames[0].text.starts_with(r#"{"type":"subscribed","id":2,"msg":"#), "{}", rec.frames[0].text);

    let results: BTreeMap<&str, &str> =
        rec.header.markets.iter().filter_map(|m| Some((m.ticker.as_str(), m.result.as_deref()?))).collect();
    let expect: BTreeMap<&str, &str> = [
        ("KXMLBGAME-26AUG072140LADAZ-LAD", "no"),
        ("KXMLBGAME-26AUG072140HOUSD-SD", "no"),
        ("KXMLBGAME-26AUG072145TBSEA-TB", "yes"),
        ("KXWNBAGAME-26AUG07PHXCONN-PHX", "no"),
    ]
    .into_iter()
    .collect();
    assert_eq!(results, expect);
    let tb = rec.header.markets.iter().find(|m| m.ticker == "KXMLBGAME-26AUG072145TBSEA-TB").unwrap();
    assert_eq!(tb.event_ticker, "KXMLBGAME-26AUG072145TBSEA");
    assert_eq!(tb.price_level_structure.as_deref(), Some("linear_cent"));
    assert_eq!(tb.close_ts_ms, 1_786_163_068_000); // 2026-08-08T04:24:28Z

    let (_, books) = replay(&rec);
    assert!(books.iter().all(|b| b.best_bid().is_some() && b.best_ask().is_some()));
}

#[test]
fn demo_session_bare_frames() {
    let rec = Recording::read(&kalshi("ws_demo_mm_session_2026-07-01/session.jsonl.gz")).unwrap();
    assert_eq!(count_type(&rec, "orderbook_delta"), 2885);
    assert_eq!(count_type(&rec, "orderbook_snapshot"), 5);
    assert_eq!(count_type(&rec, "fill"), 2);
    assert_eq!(rec.frames.len(), 2 + 4 + 5 + 2885 + 2);
    let mut tickers: Vec<&str> = rec.header.markets.iter().map(|m| m.ticker.as_str()).collect();
    tickers.sort();
    assert_eq!(
        tickers,
        [
            "KXBTCD-26JUL0317-T60499.99",
            "KXBTCD-26JUL0317-T60999.99",
            "KXNEXTTEAMNBA-26LJAM-CLE",
            "KXNEXTTEAMNBA-26LJAM-GSW",
            "KXNEXTTEAMNBA-26LJAM-MIA"
        ]
    );
    assert!(!rec.header.yes_price_scale);
    assert_strictly_increasing(&rec);
    // 2026-07-01T02:31:45.308Z is the first ts_ms; the frames before it sit just below it.
    let first_ts = rec.frames.iter().position(|f| f.text.contains("\"ts_ms\"")).unwrap();
    assert_eq!(rec.frames[first_ts].recv_ns / 1_000_000_000, 1_782_873_105);
    assert!(rec.frames[0].recv_ns > rec.frames[first_ts].recv_ns - 1_000_000);
    replay(&rec);
}

/// One market's last row in the books file: `(yes levels, no levels)`, NO at NO prices.
type RawBooks = HashMap<String, (Vec<(Price, Qty)>, Vec<(Price, Qty)>)>;

fn last_raw_books(books: &Path) -> (RawBooks, usize) {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(strike_sim::recording::open_maybe_gz(books).unwrap());
    let mut last: HashMap<String, (String, Value)> = HashMap::new();
    let mut first_sweep: Option<String> = None;
    let mut first_sweep_markets = std::collections::HashSet::new();
    for line in reader.lines() {
        let line = line.unwrap();
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).unwrap();
        let at = v["captured_at"].as_str().unwrap().to_string();
        let t = v["ticker"].as_str().unwrap().to_string();
        if first_sweep.as_ref().is_none_or(|f| at < *f) {
            first_sweep = Some(at.clone());
            first_sweep_markets.clear();
        }
        if first_sweep.as_deref() == Some(at.as_str()) {
            first_sweep_markets.insert(t.clone());
        }
        if last.get(&t).is_none_or(|(a, _)| at >= *a) {
            last.insert(t, (at, v["raw_orderbook"].clone()));
        }
    }
    let side = |b: &Value, k: &str| -> Vec<(Price, Qty)> {
        let mut v: Vec<(Price, Qty)> = b
            .get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|l| (px(&l[0]), qty(&l[1]))).filter(|(_, q)| !q.is_zero()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let raw = last.into_iter().map(|(t, (_, b))| (t, (side(&b, "yes_dollars"), side(&b, "no_dollars")))).collect();
    (raw, first_sweep_markets.len())
}

#[test]
fn weather_sweeps_import_replays_to_the_last_sweep() {
    let books = kalshi("rest_weather_books_2026-07/weather_books_2026-07-21.jsonl.gz");
    let actuals = default_actuals(&books);
    assert_eq!(actuals.len(), 6);
    let (rec, stats) = import_weather_sweeps(&books, &actuals).unwrap();
    println!("weather_books_2026-07-21: {stats:?}, frames {}", rec.frames.len());

    let (raw, first_sweep_markets) = last_raw_books(&books);
    assert_eq!(stats.rows, 1978);
    assert_eq!(stats.sweeps, 5);
    assert_eq!(stats.markets, raw.len());
    assert_eq!(stats.markets, rec.header.markets.len());
    assert_eq!(stats.events, rec.header.events.len());
    assert!(first_sweep_markets > 0 && first_sweep_markets <= stats.markets);
    assert!(stats.settled_markets > 0);
    assert_eq!(stats.settled_markets, rec.header.markets.iter().filter(|m| m.result.is_some()).count());

    // Frame inventory: one ack, one snapshot per market, then deltas.
    assert!(rec.frames[0].text == r#"{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}"#);
    assert_eq!(count_type(&rec, "orderbook_snapshot"), stats.snapshots);
    assert_eq!(count_type(&rec, "orderbook_delta"), stats.deltas);
    assert_eq!(rec.frames.len(), 1 + stats.snapshots + stats.deltas);
    assert_eq!(stats.snapshots, stats.markets);
    let mut snaps: HashMap<String, usize> = HashMap::new();
    for f in rec.frames.iter().filter(|f| f.text.contains("\"type\":\"orderbook_snapshot\"")) {
        let v: Value = serde_json::from_str(&f.text).unwrap();
        *snaps.entry(v["msg"]["market_ticker"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(snaps.len(), stats.markets);
    assert!(snaps.values().all(|&n| n == 1));
    // The first sweep's markets are snapshotted first, before any delta.
    let first_delta = rec.frames.iter().position(|f| f.text.contains("\"type\":\"orderbook_delta\"")).unwrap();
    assert_eq!(first_delta, 1 + first_sweep_markets);
    assert_eq!(assert_seq_contiguous(&rec) as usize, stats.snapshots + stats.deltas);
    assert_strictly_increasing(&rec);
    assert!(!rec.header.yes_price_scale);
    // 2026-07-21T01:01:17.039795Z
    assert_eq!(rec.frames[0].recv_ns, 1_784_595_677_039_795_000);

    // Metadata.
    let m = rec.header.markets.iter().find(|m| m.ticker == "KXHIGHAUS-26JUL21-T95").unwrap();
    assert_eq!(m.event_ticker, "KXHIGHAUS-26JUL21");
    assert_eq!(m.series_ticker, "KXHIGHAUS");
    assert_eq!(m.strike_type.as_deref(), Some("less"));
    assert_eq!((m.floor_strike.as_deref(), m.cap_strike.as_deref()), (None, Some("95")));
    assert_eq!(m.close_ts_ms, 1_784_699_940_000); // 2026-07-22T05:59:00Z
    assert_eq!(m.price_level_structure.as_deref(), Some("linear_cent"));
    assert_eq!(m.fee_type.as_deref(), Some("quadratic"));
    let ev = rec.header.events.iter().find(|e| e.event_ticker == "KXHIGHAUS-26JUL21").unwrap();
    assert!(ev.mutually_exclusive);
    assert_eq!(ev.series_ticker, "KXHIGHAUS");
    assert!(rec.header.events.iter().filter(|e| e.series_ticker.starts_with("KXTEMP")).all(|e| !e.mutually_exclusive));
    assert!(rec.header.markets.iter().any(|m| m.floor_strike.as_deref().is_some_and(|f| f.contains('.'))));
    assert!(rec.header.events.iter().any(|e| e.expiration_value.is_some()));
    // Each settled event of the books has exactly one YES market.
    let mut yes_per_event: HashMap<&str, (usize, usize)> = HashMap::new();
    for m in rec.header.markets.iter().filter(|m| m.result.is_some()) {
        let e = yes_per_event.entry(m.event_ticker.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(m.result.as_deref() == Some("yes"));
    }
    assert!(yes_per_event.values().all(|&(_, yes)| yes == 1), "{yes_per_event:?}");

    // Replay: every market ends equal, level for level, to its last sweep's REST book.
    let (u, books_now) = replay(&rec);
    for m in &u.markets {
        let (yes, no) = &raw[m.ticker.as_str()];
        let book = &books_now[m.id.0 as usize];
        assert_eq!(&levels(book, BookSide::Bid), yes, "{} YES bids", m.ticker.as_str());
        let mut asks_as_no: Vec<(Price, Qty)> =
            levels(book, BookSide::Ask).into_iter().map(|(p, q)| (p.complement(), q)).collect();
        asks_as_no.sort();
        assert_eq!(&asks_as_no, no, "{} NO bids", m.ticker.as_str());
    }

    // Round trip through the project's format.
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("weather_books_2026-07-21.jsonl.zst");
    rec.write_strike(&out).unwrap();
    let back = Recording::read(&out).unwrap();
    assert!(back == rec, "write_strike → read_strike changed the recording");
    let _ = std::fs::remove_file(&out);
}

fn tmp(name: &str, content: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("real_data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn gz(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

const ROW: &str = r#"{"capture_id":"C1","captured_at":"2026-07-21T01:01:17.039795+00:00","series":"KXHIGHNY","ticker":"KXHIGHNY-26JUL21-B84.5","group":"daily","strike_type":"between","floor_strike":84,"cap_strike":85.0,"yes_sub_title":"84° to 85°","close_time":"2026-07-22T04:59:00Z","raw_orderbook":{"yes_dollars":[["0.0100","453.00"],["0.4200","3"]],"no_dollars":[]}}"#;

#[test]
fn weather_import_small_file_frames_and_malformed_line() {
    let later = ROW.replace("C1", "C2").replace("01:01:17.039795", "04:00:00").replace(
        r#"[["0.0100","453.00"],["0.4200","3"]],"no_dollars":[]"#,
        r#"[["0.4300","1.5"]],"no_dollars":[["0.5000","2"]]"#,
    );
    let books = tmp("weather_books_small.jsonl.gz", gz(&format!("{ROW}\n\n{later}\n")).as_slice());
    let (rec, stats) = import_weather_sweeps(&books, &[]).unwrap();
    let texts: Vec<&str> = rec.frames.iter().map(|f| f.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            r#"{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}"#,
            r#"{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"KXHIGHNY-26JUL21-B84.5","yes_dollars_fp":[["0.0100","453.00"],["0.4200","3.00"]]}}"#,
            r#"{"type":"orderbook_delta","sid":1,"seq":2,"msg":{"market_ticker":"KXHIGHNY-26JUL21-B84.5","price_dollars":"0.0100","delta_fp":"-453.00","side":"yes","ts_ms":1784606400000}}"#,
            r#"{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"KXHIGHNY-26JUL21-B84.5","price_dollars":"0.4200","delta_fp":"-3.00","side":"yes","ts_ms":1784606400000}}"#,
            r#"{"type":"orderbook_delta","sid":1,"seq":4,"msg":{"market_ticker":"KXHIGHNY-26JUL21-B84.5","price_dollars":"0.4300","delta_fp":"1.50","side":"yes","ts_ms":1784606400000}}"#,
            r#"{"type":"orderbook_delta","sid":1,"seq":5,"msg":{"market_ticker":"KXHIGHNY-26JUL21-B84.5","price_dollars":"0.5000","delta_fp":"2.00","side":"no","ts_ms":1784606400000}}"#,
        ]
    );
    assert_eq!(rec.frames[1].recv_ns, rec.frames[0].recv_ns + 1);
    assert_eq!(rec.frames[3].recv_ns, rec.frames[2].recv_ns + 1);
    assert_eq!(
        (stats.rows, stats.sweeps, stats.markets, stats.events, stats.snapshots, stats.deltas),
        (2, 2, 1, 1, 1, 4)
    );
    let m = &rec.header.markets[0];
    assert_eq!((m.floor_strike.as_deref(), m.cap_strike.as_deref()), (Some("84"), Some("85")));
    assert_eq!(m.event_ticker, "KXHIGHNY-26JUL21");

    let bad = tmp("weather_books_bad.jsonl.gz", gz(&format!("{ROW}\n\n{{\"capture_id\": 3\n")).as_slice());
    let err = import_weather_sweeps(&bad, &[]).unwrap_err();
    assert!(matches!(err, RecordingError::Format { line: 3, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("weather_books_bad.jsonl.gz:3:"), "{msg}");

    let crooked = ROW.replace(r#""0.4200","3""#, r#""0.4250","3""#);
    let err = import_weather_sweeps(&tmp("weather_books_grid.jsonl", crooked.as_bytes()), &[]).unwrap_err();
    assert!(err.to_string().contains(":1:") && err.to_string().contains("linear_cent"), "{err}");
}

#[test]
fn every_weather_day_imports_and_replays_without_faults() {
    let dir = kalshi("rest_weather_books_2026-07");
    let mut days: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("weather_books_"))
        .collect();
    days.sort();
    assert_eq!(days.len(), 9);
    let mut rows = 0;
    for books in &days {
        let (rec, stats) = import_weather_sweeps(books, &default_actuals(books)).unwrap();
        println!("{}: {stats:?}", books.file_name().unwrap().to_string_lossy());
        rows += stats.rows;
        assert_eq!(stats.snapshots, stats.markets);
        assert_eq!(assert_seq_contiguous(&rec) as usize, stats.snapshots + stats.deltas);
        assert_strictly_increasing(&rec);
        replay(&rec);
    }
    assert_eq!(rows, 15_436);
}
