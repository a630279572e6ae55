//! The real pipeline (feed → trader → paper venue) on the real Kalshi recordings in
//! `STRIKE_DATA_DIR`: every delta applied without a fault, REST cross-checks, and gap handling.

use std::path::PathBuf;
use strike_engine::config::EngineConfig;
use strike_engine::feed::parse::{FrameParser, Parsed};
use strike_engine::host::Plugin;
use strike_engine::pipeline::{run, RunOptions};
use strike_sdk::book::BookSide;
use strike_sdk::market::{MarketId, Universe};
use strike_sdk::num::{Price, Qty};
use strike_sdk::order::{Action, OrderIntent, Outcome, TimeInForce};
use strike_sdk::{Ctx, Strategy};
use strike_sim::recording::Recording;
use strike_sim::universe::UniverseData;

fn data(rel: &str) -> PathBuf {
    let p = strike_sim::data_dir().join("kalshi").join(rel);
    assert!(p.exists(), "{} missing: set STRIKE_DATA_DIR to the shared data folder", p.display());
    p
}

fn prod() -> Recording {
    Recording::read(&data("ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json")).unwrap()
}

fn demo() -> Recording {
    Recording::read(&data("ws_demo_mm_session_2026-07-01/session.jsonl.gz")).unwrap()
}

/// Tries to buy one YES contract at the best ask of every market, on every book update and
/// every timer tick, stale or not: risk must stop what must not go out.
struct Probe;

impl Probe {
    fn fire(ctx: &mut Ctx) {
        for i in 0..ctx.universe().markets().len() {
            let m = MarketId(i as u32);
            let ask = ctx.book(m).and_then(|b| b.best_ask()).map(|(p, _)| p).unwrap_or(Price(5000));
            let _ = ctx.submit(OrderIntent::limit(m, Outcome::Yes, Action::Buy, ask, Qty(1), TimeInForce::Ioc));
        }
    }
}

impl Strategy for Probe {
    const NAME: &'static str = "probe";
    fn new(_: &str, _: &Universe) -> Result<Self, String> {
        Ok(Probe)
    }
    fn on_book(&mut self, ctx: &mut Ctx, _: MarketId) {
        Self::fire(ctx)
    }
    fn on_timer(&mut self, ctx: &mut Ctx, _: u64) {
        Self::fire(ctx)
    }
}

static PROBE: strike_sdk::abi::StrategyDescriptor = strike_sdk::abi::descriptor::<Probe>();

fn cfg() -> EngineConfig {
    EngineConfig { strategies_dir: PathBuf::new(), ..EngineConfig::default() }
}

#[test]
fn prod_capture_applies_all_245_deltas_without_a_fault() {
    let out = run(&cfg(), prod(), &[], &RunOptions::default()).unwrap();
    let r = out.report;
    assert_eq!(r.markets, 12);
    assert_eq!(r.snapshots_applied, 12);
    assert_eq!(r.deltas_applied, 245);
    assert_eq!(r.fault_total(), 0, "faults: {:?}", r.faults);
    assert_eq!(r.gaps, 0);
    assert_eq!(r.messages.get("orderbook_delta"), Some(&245));
    assert_eq!(r.messages.get("ok"), Some(&11));
    assert_eq!(r.stale_at_exit, 0);
}

#[test]
fn prod_books_are_never_crossed_at_any_point() {
    // Replays the frames one at a time through the same parser and the SDK book, checking the
    // crossed condition after every single update (the pipeline reports it as a fault too).
    let rec = prod();
    let u = UniverseData::from_header(&rec.header).unwrap();
    let mut books: Vec<_> = u.markets.iter().map(|m| strike_sdk::Book::new(m.grid)).collect();
    let mut p = FrameParser::new(false, 64 * 1024, 1024);
    let mut updates = 0;
    for f in &rec.frames {
        let (_, r) = p.parse(f.text.as_bytes(), &u);
        match r.unwrap() {
            Parsed::Snapshot { market, .. } => {
                let lv = p.levels().to_vec();
                books[market.idx()]
                    .replace(
                        lv.iter().filter(|l| l.side == BookSide::Bid).map(|l| (l.price, l.qty)),
                        lv.iter().filter(|l| l.side == BookSide::Ask).map(|l| (l.price, l.qty)),
                    )
                    .unwrap();
            }
            Parsed::Delta { market, side, price, delta, .. } => {
                books[market.idx()].apply_delta(side, price, delta).unwrap();
                updates += 1;
            }
            _ => {}
        }
        for b in &books {
            if let (Some((bid, _)), Some((ask, _))) = (b.best_bid(), b.best_ask()) {
                assert!(bid < ask, "crossed: {bid} >= {ask}");
            }
        }
    }
    assert_eq!(updates, 245);
}

#[test]
fn demo_session_applies_all_2885_deltas() {
    let out = run(&cfg(), demo(), &[], &RunOptions::default()).unwrap();
    let r = out.report;
    assert_eq!(r.markets, 5);
    assert_eq!(r.deltas_applied, 2885);
    assert_eq!(r.snapshots_applied, 5);
    assert_eq!(r.fault_total(), 0, "faults: {:?}", r.faults);
    assert_eq!(r.messages.get("fill"), Some(&2));
}

#[test]
fn demo_first_snapshots_equal_the_rest_books_level_for_level() {
    let rec = demo();
    let u = UniverseData::from_header(&rec.header).unwrap();
    let mut p = FrameParser::new(false, 64 * 1024, 4096);
    let mut first: Vec<Option<Vec<(BookSide, Price, Qty)>>> = vec![None; u.len()];
    for f in &rec.frames {
        if let (_, Ok(Parsed::Snapshot { market, .. })) = p.parse(f.text.as_bytes(), &u) {
            if first[market.idx()].is_none() {
                first[market.idx()] = Some(p.levels().iter().map(|l| (l.side, l.price, l.qty)).collect());
            }
        }
    }
    let rest = std::fs::read_to_string(data("ws_demo_mm_session_2026-07-01/rest.jsonl")).unwrap();
    let mut compared = 0;
    for line in rest.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let url = v["url"].as_str().unwrap();
        let Some(ticker) = url.strip_suffix("/orderbook").and_then(|s| s.rsplit('/').next()) else { continue };
        let body: serde_json::Value = serde_json::from_str(v["response_body"].as_str().unwrap()).unwrap();
        let ob = &body["orderbook_fp"];
        // REST: yes_dollars are YES bids, no_dollars NO bids at NO prices (= YES asks at 1 - q)
        let mut want = Vec::new();
        for (key, side) in [("yes_dollars", BookSide::Bid), ("no_dollars", BookSide::Ask)] {
            for lv in ob[key].as_array().into_iter().flatten() {
                let price = Price::parse(lv[0].as_str().unwrap()).unwrap();
                let qty = Qty::parse(lv[1].as_str().unwrap()).unwrap();
                want.push((side, if side == BookSide::Ask { price.complement() } else { price }, qty));
            }
        }
        let id = u.id_of(ticker).unwrap_or_else(|| panic!("{ticker} not in the session"));
        let mut got = first[id.idx()].clone().unwrap();
        got.sort_by_key(|l| (l.0 as u8, l.1));
        want.sort_by_key(|l| (l.0 as u8, l.1));
        assert_eq!(got, want, "{ticker}");
        compared += 1;
    }
    assert_eq!(compared, 5);
}

fn position_of_nth_delta(rec: &Recording, n: usize) -> usize {
    rec.frames.iter().enumerate().filter(|(_, f)| f.text.contains("\"orderbook_delta\"")).nth(n).unwrap().0
}

#[test]
fn a_removed_delta_is_a_gap_that_stops_trading_until_the_next_snapshot() {
    let plugin = Plugin::from_static(&PROBE).unwrap();
    // Baseline: the probe does trade on the intact recording.
    let base = run(&cfg(), prod(), &[plugin], &RunOptions { log_orders: true, ..Default::default() }).unwrap();
    assert!(base.report.orders > 100, "{}", base.report.orders);
    assert_eq!(base.report.gaps, 0);

    let mut rec = prod();
    let gap_at = position_of_nth_delta(&rec, 100);
    let gap_ns = rec.frames[gap_at].recv_ns;
    rec.frames.remove(gap_at);
    // Later, a fresh snapshot of one market (its original first snapshot, with the next seq).
    let target = "KXMLBGAME-26AUG071910ATHBOS-BOS";
    let last_seq = rec
        .frames
        .iter()
        .filter_map(|f| serde_json::from_str::<serde_json::Value>(&f.text).ok()?["seq"].as_u64())
        .max()
        .unwrap();
    let snap = rec
        .frames
        .iter()
        .find(|f| f.text.contains("orderbook_snapshot") && f.text.contains(target))
        .unwrap()
        .text
        .clone();
    let mut v: serde_json::Value = serde_json::from_str(&snap).unwrap();
    v["seq"] = serde_json::json!(last_seq + 1);
    let snap_ns = rec.frames.last().unwrap().recv_ns + 1_000_000;
    rec.frames.push(strike_sim::recording::Frame { recv_ns: snap_ns, text: v.to_string() });

    let out = run(&cfg(), rec, &[plugin], &RunOptions { log_orders: true, ..Default::default() }).unwrap();
    let r = &out.report;
    assert_eq!(r.gaps, 1);
    assert_eq!(r.stale_markets, 12, "one sid: every market goes stale");
    assert!(r.deltas_dropped_not_live > 0);
    assert!(r.rejects.get("risk.stale_book").copied().unwrap_or(0) > 0, "{:?}", r.rejects);
    assert_eq!(r.fault_total(), 0, "{:?}", r.faults);
    let u = UniverseData::from_header(&prod().header).unwrap();
    let revived = u.id_of(target).unwrap();
    let mut after_snapshot = 0;
    for o in &out.order_log {
        if o.recv_ns >= gap_ns {
            assert_eq!(o.market, revived, "order on a stale market after the gap: {o:?}");
            assert!(o.recv_ns >= snap_ns, "order before the snapshot: {o:?}");
            after_snapshot += 1;
        }
    }
    assert!(after_snapshot > 0, "the market must trade again after its snapshot");
    assert_eq!(r.stale_at_exit, 11);
}

#[test]
fn demo_gap_marks_every_market_of_the_sid_stale() {
    let mut rec = demo();
    let at = position_of_nth_delta(&rec, 1000);
    rec.frames.remove(at);
    let out = run(&cfg(), rec, &[], &RunOptions::default()).unwrap();
    assert_eq!(out.report.gaps, 1);
    assert_eq!(out.report.stale_markets, 5);
    assert_eq!(out.report.deltas_applied, 999);
    assert_eq!(out.report.stale_at_exit, 5);
    assert!(out.report.resnapshot_requests >= 5);
}

#[test]
fn a_reconnect_reusing_the_sid_restarts_sequencing_and_waits_for_snapshots() {
    // After the capture, the connection drops and comes back: Kalshi acks `subscribed` with
    // sid 1 again and restarts seq at 1 with a fresh snapshot of one market, then a delta.
    let mut rec = prod();
    let target = "KXMLBGAME-26AUG071910ATHBOS-BOS";
    let snap = rec.frames.iter().find(|f| f.text.contains("orderbook_snapshot") && f.text.contains(target)).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&snap.text).unwrap();
    v["seq"] = serde_json::json!(1);
    let level = v["msg"]["yes_dollars_fp"][0][0].as_str().unwrap().to_string();
    let t = rec.frames.last().unwrap().recv_ns;
    let frame = |ns: u64, text: String| strike_sim::recording::Frame { recv_ns: ns, text };
    rec.frames
        .push(frame(t + 1_000, r#"{"type":"subscribed","id":9,"msg":{"channel":"orderbook_delta","sid":1}}"#.into()));
    rec.frames.push(frame(t + 2_000, v.to_string()));
    rec.frames.push(frame(
        t + 3_000,
        format!(
            r#"{{"type":"orderbook_delta","sid":1,"seq":2,"msg":{{"market_ticker":"{target}","price_dollars":"{level}","delta_fp":"1.00","side":"yes"}}}}"#
        ),
    ));
    let out = run(&cfg(), rec, &[], &RunOptions::default()).unwrap();
    let r = &out.report;
    assert_eq!(r.fault_total(), 0, "{:?}", r.faults);
    assert_eq!(r.gaps, 0, "a new epoch is not a gap");
    assert_eq!(r.snapshots_applied, 13, "the restarted seq=1 snapshot is applied, not dropped");
    assert_eq!(r.deltas_applied, 246);
    assert_eq!(r.stale_markets, 12);
    assert_eq!(r.stale_at_exit, 11, "only the resnapshotted market is live");
}

#[test]
fn a_grid_change_rebuilds_the_book_and_sub_cent_levels_apply_after_the_snapshot() {
    // The market moves from linear_cent to deci_cent mid-session (kalshi-protocol.md §2.4:
    // structures change on live markets), then Kalshi resends its book with sub-cent levels.
    let mut rec = prod();
    let target = "KXMLBGAME-26AUG071910ATHBOS-BOS";
    let last_seq = rec
        .frames
        .iter()
        .filter_map(|f| serde_json::from_str::<serde_json::Value>(&f.text).ok()?["seq"].as_u64())
        .max()
        .unwrap();
    let t = rec.frames.last().unwrap().recv_ns;
    let frame = |ns: u64, text: String| strike_sim::recording::Frame { recv_ns: ns, text };
    rec.frames.push(frame(
        t + 1_000,
        format!(
            r#"{{"type":"market_lifecycle_v2","sid":13,"msg":{{"market_ticker":"{target}","event_type":"price_level_structure_updated","price_level_structure":"deci_cent","price_ranges":[{{"start":"0.0000","end":"1.0000","step":"0.0010"}}]}}}}"#
        ),
    ));
    // a delta before the new snapshot is dropped (book not live), not applied to the old grid
    rec.frames.push(frame(
        t + 2_000,
        format!(
            r#"{{"type":"orderbook_delta","sid":1,"seq":{},"msg":{{"market_ticker":"{target}","price_dollars":"0.4550","delta_fp":"5.00","side":"yes"}}}}"#,
            last_seq + 1
        ),
    ));
    rec.frames.push(frame(
        t + 3_000,
        format!(
            r#"{{"type":"orderbook_snapshot","sid":1,"seq":{},"msg":{{"market_ticker":"{target}","yes_dollars_fp":[["0.4550","10.00"],["0.4400","3.00"]],"no_dollars_fp":[["0.5350","7.00"]]}}}}"#,
            last_seq + 2
        ),
    ));
    rec.frames.push(frame(
        t + 4_000,
        format!(
            r#"{{"type":"orderbook_delta","sid":1,"seq":{},"msg":{{"market_ticker":"{target}","price_dollars":"0.4560","delta_fp":"2.00","side":"yes"}}}}"#,
            last_seq + 3
        ),
    ));
    let out = run(&cfg(), rec, &[], &RunOptions::default()).unwrap();
    let r = &out.report;
    assert_eq!(r.fault_total(), 0, "{:?}", r.faults);
    assert_eq!(r.gaps, 0);
    assert_eq!(r.snapshots_applied, 13);
    assert_eq!(r.deltas_applied, 246, "the sub-cent delta after the snapshot applies");
    assert_eq!(r.deltas_dropped_not_live, 1, "the delta between regrid and snapshot waits");
    assert_eq!(r.stale_at_exit, 0);
}
