//! The `orderbook_delta` fast path (`engine/src/feed/fastpath.rs`) on the real recorded frames of
//! the `hops` bench (`ws_prod_mlb_wnba_2026-08-07`: 245 distinct deltas, 258 B on average).
//!
//! `cargo bench -p strike-bench --bench parse_fast`
//!
//! - `parse_fast/parse (entry point)`: [`FrameParser::parse`], what the feed calls; every one of
//!   these frames takes the fast path (checked before timing).
//! - `parse_fast/parse_simd (general path)`: [`FrameParser::parse_simd`], the simd-json tape walk
//!   the fast path falls back to, in the same run for the ratio.
//! - `parse_fast/scan only`: [`scan_delta`] alone, without the ticker lookup (a SipHash of the
//!   ticker in `UniverseData`) and the YES-scale conversion.
//! - `parse_fast/parse + book apply (in order)`: the "orderbook_delta parse + apply"
//!   target: each frame parsed through the entry point, then applied to its market's book with
//!   [`Book::apply_delta`], then both bests read. The deltas run in recorded order on books built
//!   from the recording's snapshots, so every book state is one the recording produced; the
//!   books are rebuilt (untimed) after each pass over the 245 frames.
//!
//! Frames rotate, so inputs come from cache and branch predictors see variety, as in `hops`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use strike_bench::{frames_of, prod_recording};
use strike_engine::feed::fastpath::scan_delta;
use strike_engine::feed::parse::{FrameParser, Parsed};
use strike_sdk::book::Book;
use strike_sim::universe::UniverseData;

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
    let mut p = FrameParser::new(rec.header.yes_price_scale, 64 * 1024, 4096);
    p.warm_up(64 * 1024);
    // same work on both paths, and the fast path takes every frame
    for f in &deltas {
        assert_eq!(p.cross_check(f, &u), Ok(true), "{}", String::from_utf8_lossy(f));
    }

    let mut g = c.benchmark_group("parse_fast");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function(format!("parse (entry point, {} real deltas, rotating)", deltas.len()), |b| {
        b.iter(|| {
            i = (i + 1) % deltas.len();
            black_box(p.parse(black_box(&deltas[i]), &u).1.is_ok())
        })
    });
    g.bench_function(format!("parse_simd (general path, {} real deltas, rotating)", deltas.len()), |b| {
        b.iter(|| {
            i = (i + 1) % deltas.len();
            black_box(p.parse_simd(black_box(&deltas[i]), &u).1.is_ok())
        })
    });
    g.bench_function(format!("scan only (no ticker lookup, {} real deltas, rotating)", deltas.len()), |b| {
        b.iter(|| {
            i = (i + 1) % deltas.len();
            black_box(scan_delta(black_box(&deltas[i])).map(|d| d.seq))
        })
    });
    g.bench_function(format!("parse + book apply + best bid/ask ({} real deltas, in order)", deltas.len()), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let mut books = books_from_snapshots(&u, &mut p, &snaps);
                let n = (iters - done).min(deltas.len() as u64) as usize;
                let t0 = Instant::now();
                for f in &deltas[..n] {
                    if let (_, Ok(Parsed::Delta { market, side, price, delta, .. })) = p.parse(black_box(f), &u) {
                        let book = &mut books[market.idx()];
                        black_box(book.apply_delta(side, price, delta).is_ok());
                        black_box((book.best_bid(), book.best_ask()));
                    }
                }
                total += t0.elapsed();
                done += n as u64;
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, parse_fast);
criterion_main!(benches);
