//! The `orderbook_delta` fast path (`engine/src/feed/fastpath.rs`) on the real recorded frames of
//! the `hops` bench (`ws_prod_mlb_wnba_2026-08-07`: 245 distinct deltas, 258 B on average).
//!
//! `cargo bench -p strike-bench --bench parse_fast`
//!
//! - `parse (entry point)`: [`FrameParser::parse`], what the feed calls; every one of these
//!   frames takes the fast path and gives the simd-json result (checked before timing).
//! - `parse_simd (general path)`: [`FrameParser::parse_simd`], the simd-json tape walk the fast
//!   path falls back to, in the same run for the ratio.
//! - `scan only`: [`scan_delta`] alone, without the ticker lookup (a SipHash of the ticker in
//!   `UniverseData`) and the YES-scale conversion.
//! - `parse + book apply`: the "orderbook_delta parse + apply" target. Each step parses
//!   one recorded frame through the entry point, applies its delta to its market's book
//!   ([`Book::apply_delta`]) and reads both bests. The stream is the recording's deltas in order
//!   on books built from its snapshots, then the same frames in reverse order with the delta
//!   undone, so the loop is stationary, every parse is of a real frame and every book state is
//!   one the recording produced.
//!
//! Frames rotate, so inputs come from cache and the branch predictors see variety, as in `hops`.
//! After criterion's rows, a table of per-call p50 / p99 / p99.9 (`strike_bench::per_call_ns`,
//! TSC) is printed.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use std::hint::black_box;
use strike_bench::{frames_of, per_call_ns, prod_recording, CallStats};
use strike_engine::feed::fastpath::scan_delta;
use strike_engine::feed::parse::{FrameParser, Parsed};
use strike_sdk::book::Book;
use strike_sdk::num::Qty;
use strike_sim::universe::UniverseData;

/// Per-call samples per row of the percentile table.
const CALLS: usize = 100_000;

/// Runs `f` as criterion function `name` of `g`, then samples its per-call percentiles into `rows`.
fn row<R>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rows: &mut Vec<(String, CallStats)>,
    name: &str,
    mut f: impl FnMut() -> R,
) {
    g.bench_function(name, |b| b.iter(&mut f));
    rows.push((name.to_string(), per_call_ns(CALLS, f)));
}

/// Books of every market of `u`, filled from the recording's snapshot frames.
fn books_from_snapshots(u: &UniverseData, p: &mut FrameParser, snaps: &[Vec<u8>]) -> Vec<Book> {
    let mut books: Vec<Book> = u.markets.iter().map(|m| Book::new(m.grid)).collect();
    for s in snaps {
        match p.parse(s, u).1 {
            Ok(Parsed::Snapshot { market, .. }) => {
                let b = &mut books[market.idx()];
                b.clear();
                for l in p.levels() {
                    b.set_level(l.side, l.price, l.qty).expect("recorded snapshot level");
                }
                b.finish_snapshot().expect("recorded snapshot");
            }
            other => panic!("snapshot frame parsed as {other:?}"),
        }
    }
    books
}

fn parse_fast(c: &mut Criterion) {
    let rec = prod_recording();
    let u = UniverseData::from_header(&rec.header).unwrap();
    let deltas = frames_of(&rec, "orderbook_delta");
    let snaps = frames_of(&rec, "orderbook_snapshot");
    let n = deltas.len();
    let mut p = FrameParser::new(rec.header.yes_price_scale, 64 * 1024, 4096);
    p.warm_up(64 * 1024);
    // same work on both paths, and the fast path takes every frame
    for f in &deltas {
        assert_eq!(p.cross_check(f, &u), Ok(true), "{}", String::from_utf8_lossy(f));
    }
    let mut books = books_from_snapshots(&u, &mut p, &snaps);
    // the forward-and-undo stream applies cleanly and comes back to the snapshot books
    let bests = |books: &[Book]| books.iter().map(|b| (b.best_bid(), b.best_ask())).collect::<Vec<_>>();
    let start = bests(&books);
    for (f, sign) in deltas.iter().map(|f| (f, 1)).chain(deltas.iter().rev().map(|f| (f, -1))) {
        let Ok(Parsed::Delta { market, side, price, delta, .. }) = p.parse(f, &u).1 else { panic!("not a delta") };
        books[market.idx()].apply_delta(side, price, Qty(sign * delta.0)).expect("recorded delta applies");
    }
    assert_eq!(bests(&books), start);

    let mut rows = Vec::new();
    let mut g = c.benchmark_group("parse_fast");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    row(&mut g, &mut rows, &format!("parse (entry point, {n} real deltas, rotating)"), || {
        i = (i + 1) % n;
        p.parse(black_box(&deltas[i]), &u).1.is_ok()
    });
    row(&mut g, &mut rows, &format!("parse_simd (general path, {n} real deltas, rotating)"), || {
        i = (i + 1) % n;
        p.parse_simd(black_box(&deltas[i]), &u).1.is_ok()
    });
    row(&mut g, &mut rows, &format!("scan only (no ticker lookup, {n} real deltas, rotating)"), || {
        i = (i + 1) % n;
        scan_delta(black_box(&deltas[i])).map(|d| d.seq)
    });
    // forward through the recording, then back with every delta undone
    let mut k = 0;
    row(&mut g, &mut rows, &format!("parse + book apply + best bid/ask ({n} real deltas, in order)"), || {
        let (f, undo) = if k < n { (&deltas[k], false) } else { (&deltas[2 * n - 1 - k], true) };
        k = (k + 1) % (2 * n);
        match p.parse(black_box(f), &u).1 {
            Ok(Parsed::Delta { market, side, price, delta, .. }) => {
                let b = &mut books[market.idx()];
                let ok = b.apply_delta(side, price, if undo { Qty(-delta.0) } else { delta }).is_ok();
                (ok, b.best_bid(), b.best_ask())
            }
            _ => (false, None, None),
        }
    });
    g.finish();

    println!("\nparse_fast: per-call ns ({CALLS} calls each, timer floor subtracted)");
    println!("{:<64} {:>7} {:>7} {:>7} {:>6}", "row", "p50", "p99", "p99.9", "floor");
    for (name, s) in &rows {
        println!("{name:<64} {:>7.0} {:>7.0} {:>7.0} {:>6.0}", s.p50, s.p99, s.p999, s.floor);
    }
    println!();
}

criterion_group!(benches, parse_fast);
criterion_main!(benches);
