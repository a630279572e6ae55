//! The synthetic session generator: determinism, wire shape, book invariants, settlement and the
//! universe it describes.

use serde_json::Value;
use strike_sdk::{Book, BookSide, BookStatus, GroupKind, Price, Qty};
use strike_sim::import::{default_actuals, import_weather_sweeps};
use strike_sim::recording::Recording;
use strike_sim::stats::{book_stats, trade_print_stats, BookStats};
use strike_sim::synth::{generate, SynthConfig, BOOK_SID, TRADE_SID};
use strike_sim::universe::UniverseData;

const SEEDS: [u64; 6] = [7, 1, 2, 3, 42, 20_260_721];

fn price(v: &Value) -> Price {
    Price::parse(v.as_str().expect("price is a string")).expect("price parses")
}

fn qty(v: &Value) -> Qty {
    Qty::parse(v.as_str().expect("size is a string")).expect("size parses")
}

fn wire_side(v: &Value) -> BookSide {
    match v.as_str() {
        Some("yes") => BookSide::Bid,
        Some("no") => BookSide::Ask, // yes_price_scale: the NO ladder is the YES ask ladder
        other => panic!("bad side {other:?}"),
    }
}

/// Frame counts by type.
#[derive(Debug, Default)]
struct Counts {
    subscribed: usize,
    snapshots: usize,
    deltas: usize,
    trades: usize,
}

/// Replays every frame through real SDK books, asserting the wire invariants as it goes; returns
/// the counts and the books at the end of the session.
fn replay(rec: &Recording) -> (Counts, UniverseData, Vec<Book>) {
    assert!(rec.header.yes_price_scale);
    let u = UniverseData::from_header(&rec.header).expect("header builds a universe");
    let mut books: Vec<Book> = u.markets.iter().map(|m| Book::new(m.grid)).collect();
    let mut c = Counts::default();
    let mut last_seq = 0u64;
    let mut last_recv = 0u64;
    for (i, f) in rec.frames.iter().enumerate() {
        assert!(f.recv_ns > last_recv, "recv_ns not increasing at frame {i}");
        last_recv = f.recv_ns;
        let v: Value = serde_json::from_str(&f.text).expect("frame is JSON");
        let ty = v["type"].as_str().expect("type");
        let msg = &v["msg"];
        match ty {
            "subscribed" => {
                assert!(i < 2, "acks come first");
                c.subscribed += 1;
                let want = if msg["channel"] == "orderbook_delta" { BOOK_SID } else { TRADE_SID };
                assert_eq!(msg["sid"].as_u64(), Some(want as u64));
            }
            "orderbook_snapshot" | "orderbook_delta" => {
                assert_eq!(v["sid"].as_u64(), Some(BOOK_SID as u64));
                let seq = v["seq"].as_u64().expect("seq");
                assert_eq!(seq, last_seq + 1, "seq gap at frame {i}");
                last_seq = seq;
                let id = u.id_of(msg["market_ticker"].as_str().unwrap()).expect("known market");
                let book = &mut books[id.idx()];
                if ty == "orderbook_snapshot" {
                    assert_eq!(c.deltas, 0, "snapshots precede deltas");
                    c.snapshots += 1;
                    let lv = |k: &str| -> Vec<(Price, Qty)> {
                        msg.get(k)
                            .and_then(Value::as_array)
                            .map(|a| a.iter().map(|e| (price(&e[0]), qty(&e[1]))).collect())
                            .unwrap_or_default()
                    };
                    book.replace(lv("yes_dollars_fp"), lv("no_dollars_fp")).expect("snapshot is valid");
                    book.status = BookStatus::Live;
                } else {
                    c.deltas += 1;
                    assert!(msg["ts_ms"].as_u64().unwrap() * 1_000_000 < f.recv_ns);
                    let p = price(&msg["price_dollars"]);
                    assert_eq!(msg["price_dollars"].as_str().unwrap().len(), 6, "4-decimal price");
                    assert!(p.0 > 0 && p.0 < Price::ONE);
                    book.apply_delta(wire_side(&msg["side"]), p, qty(&msg["delta_fp"]))
                        .unwrap_or_else(|e| panic!("frame {i}: {e}"));
                }
                if let (Some((b, _)), Some((a, _))) = (book.best_bid(), book.best_ask()) {
                    assert!(b < a, "crossed at frame {i}");
                }
            }
            "trade" => {
                c.trades += 1;
                assert_eq!(v["sid"].as_u64(), Some(TRADE_SID as u64));
                assert!(v.get("seq").is_none());
                assert_eq!(msg["is_block_trade"], false);
                let id = u.id_of(msg["market_ticker"].as_str().unwrap()).expect("known market");
                let (p, n) = (price(&msg["yes_price_dollars"]), qty(&msg["count_fp"]));
                assert_eq!(price(&msg["no_price_dollars"]), p.complement());
                let side = match (msg["taker_book_side"].as_str(), msg["taker_outcome_side"].as_str()) {
                    (Some("bid"), Some("yes")) => BookSide::Ask,
                    (Some("ask"), Some("no")) => BookSide::Bid,
                    other => panic!("bad taker sides {other:?}"),
                };
                let book = &books[id.idx()];
                assert_eq!(book.best(side).map(|x| x.0), Some(p), "trade at the touch (frame {i})");
                assert!(n.0 > 0 && n <= book.size_at(side, p));
                // the very next frame removes what the trade took
                let next: Value = serde_json::from_str(&rec.frames[i + 1].text).unwrap();
                assert_eq!(next["type"], "orderbook_delta");
                assert_eq!(next["msg"]["market_ticker"], msg["market_ticker"]);
                assert_eq!(price(&next["msg"]["price_dollars"]), p);
                assert_eq!(wire_side(&next["msg"]["side"]), side);
                assert_eq!(qty(&next["msg"]["delta_fp"]), -n);
            }
            other => panic!("unexpected frame type {other}"),
        }
    }
    (c, u, books)
}

#[test]
fn same_seed_same_session_different_seed_different() {
    let cfg = SynthConfig::default();
    let a = generate(7, &cfg);
    let b = generate(7, &cfg);
    assert!(a == b, "generation is not deterministic");
    let c = generate(8, &cfg);
    assert_ne!(a.frames, c.frames);
    assert_ne!(a.header, c.header);
}

#[test]
fn replay_never_faults_or_crosses_and_seq_is_contiguous() {
    for seed in SEEDS {
        let rec = generate(seed, &SynthConfig::default());
        let (c, u, _) = replay(&rec);
        assert_eq!(c.subscribed, 2);
        assert_eq!(c.snapshots, u.len());
    }
}

#[test]
fn frame_counts_are_in_the_documented_ranges() {
    for seed in SEEDS {
        let rec = generate(seed, &SynthConfig::default());
        let (c, _, _) = replay(&rec);
        assert!((3_000..=25_000).contains(&c.deltas), "seed {seed}: {c:?}");
        assert!((100..=1_000).contains(&c.trades), "seed {seed}: {c:?}");
        assert!((10_000..=30_000).contains(&rec.frames.len()), "seed {seed}: {} frames", rec.frames.len());
        let span_s = (rec.frames.last().unwrap().recv_ns - rec.frames[0].recv_ns) / 1_000_000_000;
        assert!((30 * 60..=60 * 60).contains(&span_s), "seed {seed}: {span_s} s");
    }
}

#[test]
fn brackets_settle_exactly_one_yes_and_ladders_are_consistent() {
    for seed in SEEDS {
        let rec = generate(seed, &SynthConfig::default());
        let h = &rec.header;
        assert!(h.markets.iter().all(|m| matches!(m.result.as_deref(), Some("yes" | "no"))));
        for ev in &h.events {
            let mut members: Vec<_> = h.markets.iter().filter(|m| m.event_ticker == ev.event_ticker).collect();
            let yes = members.iter().filter(|m| m.result.as_deref() == Some("yes")).count();
            if ev.mutually_exclusive {
                assert_eq!(yes, 1, "seed {seed}: {}", ev.event_ticker);
            } else {
                // ladder: YES exactly for the strikes below the drawn value
                let value: f64 = ev.expiration_value.as_deref().unwrap().parse().unwrap();
                members
                    .sort_by_key(|m| strike_sdk::Strike::parse(m.floor_strike.as_deref().unwrap()).unwrap().value_e4);
                for m in members {
                    let k: f64 = m.floor_strike.as_deref().unwrap().parse().unwrap();
                    assert_eq!(m.result.as_deref() == Some("yes"), value > k, "seed {seed}: {}", m.ticker);
                }
            }
        }
    }
}

#[test]
fn session_ends_with_favorites_and_longshots() {
    for seed in SEEDS {
        let rec = generate(seed, &SynthConfig::default());
        let (_, _, books) = replay(&rec);
        let fav = books.iter().filter(|b| b.best_bid().is_some_and(|(p, _)| p >= Price(9000))).count();
        let long = books.iter().filter(|b| b.best_ask().is_some_and(|(p, _)| p <= Price(1000))).count();
        assert!(fav >= 1 && long >= 1, "seed {seed}: {fav} favorites, {long} longshots");
        // spreads stay tight on most books
        let tight = books
            .iter()
            .filter(|b| match (b.best_bid(), b.best_ask()) {
                (Some((bid, _)), Some((ask, _))) => {
                    let g = b.grid();
                    g.level_of(ask).unwrap() - g.level_of(bid).unwrap() <= 4
                }
                _ => false,
            })
            .count();
        assert!(tight * 10 >= books.len() * 7, "seed {seed}: only {tight} of {} books within 4 ticks", books.len());
    }
}

#[test]
fn universe_has_bracket_and_ladder_groups_on_several_grids() {
    let rec = generate(7, &SynthConfig::default());
    let u = UniverseData::from_header(&rec.header).unwrap();
    let v = u.view();
    let kinds: Vec<GroupKind> = v.groups().iter().map(|g| g.kind).collect();
    assert_eq!(kinds, [GroupKind::Brackets, GroupKind::Brackets, GroupKind::Brackets, GroupKind::Ladder]);
    for g in v.groups() {
        let n = v.group_members(g).len();
        assert_eq!(n, if g.kind == GroupKind::Ladder { 9 } else { 6 });
    }
    let structures: std::collections::BTreeSet<&str> = u.markets.iter().map(|m| m.grid.structure.name()).collect();
    assert!(structures.contains("linear_cent") && structures.contains("tapered_deci_cent"), "{structures:?}");
    let fees: std::collections::BTreeSet<&str> = u.markets.iter().map(|m| m.fees.fee_type.name()).collect();
    assert!(fees.contains("quadratic") && fees.contains("quadratic_with_maker_fees"), "{fees:?}");
    assert!(u.markets.iter().all(|m| m.close_ts_ms > 0 && m.settlement != strike_sdk::Settlement::Unknown));
}

#[test]
fn fine_grid_market_quotes_sub_cent_prices() {
    let rec = generate(7, &SynthConfig::default());
    let sub_cent = rec
        .frames
        .iter()
        .filter(|f| f.text.contains("KXHIGHMIA"))
        .filter_map(|f| serde_json::from_str::<Value>(&f.text).ok())
        .filter_map(|v| v["msg"]["price_dollars"].as_str().map(|s| Price::parse(s).unwrap()))
        .filter(|p| p.0 % 100 != 0)
        .count();
    assert!(sub_cent > 0, "the tapered_deci_cent event never used a $0.001 price");
}

#[test]
fn round_trips_through_the_recording_format() {
    let rec = generate(7, &SynthConfig::default());
    let dir = std::env::temp_dir().join(format!("strike-synth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("synth.jsonl.zst");
    rec.write_strike(&path).unwrap();
    let back = Recording::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(back == rec);
}

#[test]
fn odd_configs_never_panic_and_stay_valid() {
    use strike_sdk::{FeeType, PriceStructure};
    use strike_sim::synth::{BracketSpec, LadderSpec};
    let d = SynthConfig::default();
    let degenerate = SynthConfig {
        duration_s: 0,
        brackets: vec![BracketSpec {
            bins: 0,
            sd_start_f: 0.0,
            sd_end_f: -1.0,
            structure: PriceStructure::Custom,
            ..d.brackets[0].clone()
        }],
        ladders: vec![LadderSpec {
            strikes: 0,
            strike_step_cents: 0,
            underlying_start_cents: -5,
            annual_vol: f64::NAN,
            ..d.ladders[0].clone()
        }],
        book_events_per_s: f64::NAN,
        min_levels: 0,
        max_levels: 0,
        feed_latency_min_us: 9,
        feed_latency_max_us: 1,
        ..d.clone()
    };
    let rec = generate(3, &degenerate);
    let (c, u, _) = replay(&rec);
    assert_eq!((c.snapshots, c.deltas), (u.len(), 0));
    let fine = SynthConfig {
        duration_s: 120,
        brackets: vec![BracketSpec {
            bins: 1,
            structure: PriceStructure::CenterCentiEdgeCentiCent,
            fee_type: FeeType::QuadraticWithComboMakerFees,
            ..d.brackets[0].clone()
        }],
        ladders: vec![LadderSpec { strikes: 3, structure: PriceStructure::DeciCent, ..d.ladders[0].clone() }],
        book_events_per_s: 40.0,
        trade_share: 0.2,
        quote_logit_slope: 1.0,
        ..d
    };
    let rec = generate(5, &fine);
    let (c, u, _) = replay(&rec);
    assert_eq!(u.len(), 6);
    assert!(c.deltas > 1_000 && c.trades > 100, "{c:?}");
}

/// The real recordings the generator's defaults follow, measured by [`strike_sim::stats`].
fn real_stats() -> Vec<(&'static str, BookStats)> {
    let k = strike_sim::data_dir().join("kalshi");
    let read = |p: &str| {
        Recording::read(&k.join(p)).unwrap_or_else(|e| panic!("{e}: set STRIKE_DATA_DIR to the shared data directory"))
    };
    let books = k.join("rest_weather_books_2026-07/weather_books_2026-07-21.jsonl.gz");
    let (weather, _) = import_weather_sweeps(&books, &default_actuals(&books)).expect("weather day imports");
    vec![
        ("prod", book_stats(&read("ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json")).unwrap()),
        ("demo", book_stats(&read("ws_demo_mm_session_2026-07-01/session.jsonl.gz")).unwrap()),
        ("weather", book_stats(&weather).unwrap()),
    ]
}

fn near(got: f64, want: f64) -> bool {
    (got - want).abs() <= 0.01 * want.abs().max(1e-9)
}

/// The numbers `SynthConfig`'s docs and the ranges below quote are what the recordings give:
/// a change of the data or of the measurement shows up here first.
#[test]
fn real_recordings_measure_as_documented() {
    for (name, s) in real_stats() {
        let (sp, lv, ls, ds) =
            (s.spread_ticks.unwrap(), s.levels_per_side.unwrap(), s.level_size.unwrap(), s.delta_size.unwrap());
        let got = (s.markets, sp.median, sp.p90, lv.median, lv.p90, ls.median, ls.p90, ds.median);
        let (markets, rate, want) = match name {
            "prod" => (12, 0.3645, (12, 1.0, 2.0, 47.0, 64.0, 5510.0, 57807.0, 25.0)),
            "demo" => (5, 1.830, (5, 1.0, 1.0, 11.0, 22.0, 49743.54, 366666.52, 1.0)),
            _ => (730, 0.001154, (730, 1.0, 7.0, 18.0, 45.0, 15.0, 232.0, 20.56)),
        };
        assert_eq!(got, want, "{name}: {s:#?}");
        assert_eq!((s.markets, s.refused, s.trades), (markets, 0, 0), "{name}");
        assert!(near(s.deltas_per_s_per_market, rate), "{name}: {}", s.deltas_per_s_per_market);
    }
    let dir = strike_sim::data_dir().join("kalshi/trades_kxinx_spx_brackets_2026-01_02");
    for (file, markets, rate, median, p90) in [
        ("kalshi_kxinx_clean.csv.gz", 208, 0.001722, 12.0, 121.0),
        ("kalshi_kxinxu_clean.csv.gz", 215, 0.003556, 19.0, 183.0),
    ] {
        let t = trade_print_stats(&dir.join(file)).unwrap();
        let q = t.trade_size.unwrap();
        assert_eq!((t.markets, q.median, q.p90), (markets, median, p90), "{file}: {t:#?}");
        assert!(near(t.trades_per_s_per_market, rate), "{file}: {}", t.trades_per_s_per_market);
    }
}

/// The embedded default (seed 7) measures inside the real recordings' ranges for every parameter
/// `SynthConfig` documents, so an edit of the generator that drifts from the data fails here.
/// Each range is written with its source (numbers from `real_recordings_measure_as_documented`).
#[test]
fn synthetic_default_statistics_fall_within_the_real_recordings() {
    let s = book_stats(&generate(7, &SynthConfig::default())).unwrap();
    let within = |what: &str, got: f64, lo: f64, hi: f64, src: &str| {
        assert!((lo..=hi).contains(&got), "{what} = {got} is outside [{lo}, {hi}] ({src}); all: {s:#?}");
    };
    assert_eq!((s.refused, s.crossed_samples), (0, 0));
    // book_events_per_s: deltas per second per market between the weather sweeps' net change
    // (a lower bound: sweeps are hours apart) and the live-game prod capture
    within("deltas/s/market", s.deltas_per_s_per_market, 0.0012, 0.3645, "weather 2026-07-21 .. prod capture");
    // trade_share: trade prints per second per market, S&P 500 brackets .. thresholds
    within("trades/s/market", s.trades_per_s_per_market, 0.0017, 0.0036, "KXINX .. KXINXU prints");
    let t = s.trade_size.unwrap();
    within("trade size median", t.median, 12.0, 19.0, "KXINX .. KXINXU prints");
    within("trade size p90", t.p90, 121.0, 183.0, "KXINX .. KXINXU prints");
    // spreads: every real median is 1 tick; p90 2 (prod) .. 7 (weather)
    let sp = s.spread_ticks.unwrap();
    within("spread median", sp.median, 1.0, 2.0, "real median 1 tick; at most one tick wider");
    within("spread p90", sp.p90, 2.0, 7.0, "prod .. weather");
    // min_levels / max_levels: levels per side, demo .. prod (weather 18 / 45)
    let lv = s.levels_per_side.unwrap();
    within("levels/side median", lv.median, 11.0, 47.0, "demo .. prod");
    within("levels/side p90", lv.p90, 22.0, 64.0, "demo .. prod");
    // depth sizes: level size, weather .. prod
    let ls = s.level_size.unwrap();
    within("level size median", ls.median, 15.0, 5510.0, "weather .. prod");
    within("level size p90", ls.p90, 232.0, 57807.0, "weather .. prod");
    // churn sizes: delta size median, demo .. prod (weather 20.56)
    within("delta size median", s.delta_size.unwrap().median, 1.0, 25.0, "demo .. prod");
}
