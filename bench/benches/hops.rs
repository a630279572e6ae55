//! One benchmark per hop of the hot path, on real recorded Kalshi frames:
//! parse (delta, snapshot), book update, fee, risk check, order encoding.
//! `cargo bench -p strike-bench --bench hops`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use strike_bench::{frames_of, prod_recording};
use strike_engine::feed::parse::FrameParser;
use strike_engine::gateway::encode::{NewOrderFields, OrderEncoder};
use strike_engine::risk::{check, RiskLimits};
use strike_sdk::book::{Book, BookSide, BookStatus};
use strike_sdk::fees::{FeeSchedule, FeeType, Liquidity};
use strike_sdk::grid::PriceStructure;
use strike_sdk::market::{MarketId, MarketMeta, Ticker};
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::{Action, OrderIntent, OrderRef, Outcome, Position, TimeInForce};
use strike_sim::universe::UniverseData;

fn parse(c: &mut Criterion) {
    let rec = prod_recording();
    let u = UniverseData::from_header(&rec.header).unwrap();
    let deltas = frames_of(&rec, "orderbook_delta");
    let snaps = frames_of(&rec, "orderbook_snapshot");
    let mut p = FrameParser::new(false, 64 * 1024, 4096);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("orderbook_delta (245 real frames, rotating)", |b| {
        b.iter(|| {
            i = (i + 1) % deltas.len();
            black_box(p.parse(black_box(&deltas[i]), &u).1.is_ok())
        })
    });
    let mut j = 0;
    g.bench_function("orderbook_snapshot (12 real frames, ~100 levels)", |b| {
        b.iter(|| {
            j = (j + 1) % snaps.len();
            black_box(p.parse(black_box(&snaps[j]), &u).1.is_ok())
        })
    });
    g.finish();
}

fn book(c: &mut Criterion) {
    let mut g = c.benchmark_group("book");
    for s in [PriceStructure::LinearCent, PriceStructure::CenterCentiEdgeCentiCent] {
        let grid = s.grid();
        let mut b = Book::new(grid);
        let n = grid.n_levels() as u16;
        for l in 1..n / 2 {
            b.apply_delta(BookSide::Bid, grid.price_at(l).unwrap(), Qty(1000)).unwrap();
        }
        for l in n / 2 + 1..n - 1 {
            b.apply_delta(BookSide::Ask, grid.price_at(l).unwrap(), Qty(1000)).unwrap();
        }
        let near = grid.price_at(n / 2 - 3).unwrap();
        let mut k = 0i64;
        g.bench_function(format!("delta + best bid/ask ({} levels)", n), |bch| {
            bch.iter(|| {
                k = -k + if k <= 0 { 7 } else { 0 };
                let _ = b.apply_delta(BookSide::Bid, near, Qty(if k > 0 { 500 } else { -500 }));
                black_box((b.best_bid(), b.best_ask()))
            })
        });
    }
    g.finish();
}

fn fees_risk_encode(c: &mut Criterion) {
    let sched = FeeSchedule::of(FeeType::QuadraticWithMakerFees);
    c.bench_function("fees/trade_fee", |b| {
        b.iter(|| black_box(sched.trade_fee(Liquidity::Taker, black_box(Price(9300)), black_box(Qty(2345)))))
    });
    let limits = RiskLimits {
        max_order_qty: Qty::contracts(500),
        max_order_notional: Money::dollars(500),
        min_price: Price(100),
        max_price: Price(9900),
        max_position: Qty::contracts(1000),
        max_data_age_ns: 17_000_000,
    };
    let meta = MarketMeta::bare(MarketId(0), Ticker::new("KXHIGHNY-26AUG12-T90").unwrap());
    let mut book = Book::new(meta.grid);
    book.status = BookStatus::Live;
    let intent = OrderIntent::limit(MarketId(0), Outcome::Yes, Action::Buy, Price(9300), Qty(2500), TimeInForce::Fok);
    let pos = Position::default();
    c.bench_function("risk/check (all pre-trade checks)", |b| {
        b.iter(|| black_box(check(&limits, black_box(&intent), &book, &pos, black_box(1_000))))
    });
    let mut enc = OrderEncoder::default();
    let mut r = 0u64;
    c.bench_function("gateway/encode V2 create-order body", |b| {
        b.iter_batched(
            || {
                r += 1;
                r
            },
            |r| {
                black_box(
                    enc.encode(&NewOrderFields {
                        ticker: "KXHIGHNY-26AUG12-T90",
                        session: 0x5f3a_09c1,
                        slot: 0,
                        order_ref: OrderRef(r),
                        side: BookSide::Bid,
                        count: Qty(2500),
                        price: Price(9300),
                        tif: TimeInForce::Fok,
                        post_only: false,
                        exchange_index: 0,
                    })
                    .len(),
                )
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, parse, book, fees_risk_encode);
criterion_main!(benches);
