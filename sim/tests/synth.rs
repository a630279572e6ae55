//! The synthetic session generator: determinism, wire shape, book invariants, settlement and the
//! universe it describes.

use serde_json::Value;
use strike_sdk::{Book, BookSide, BookStatus, GroupKind, Price, Qty};
use strike_sim::recording::Recording;
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
