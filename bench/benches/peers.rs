//! Strike's parse and book hops side by side with peers doing the same work on the same real
//! recorded Kalshi frames, in the same criterion groups (issue 5, part 4).
//!
//! - `cargo bench -p strike-bench --bench peers`: parse of `orderbook_delta` and
//!   `orderbook_snapshot` (`ws_prod_mlb_wnba_2026-08-07`) by Strike's `FrameParser` (deltas also
//!   through `parse_simd`, the simd-json path without the hand-written fast path) against
//!   serde_json and sonic-rs into borrowed derive structs (snapshots also through a
//!   `DeserializeSeed` that fills a reused level buffer, as Strike does), and serde_json's `Value`
//!   for the delta. Book update on the recorded delta streams (the prod capture and the demo
//!   session) against a `BTreeMap` book, the structure kalshi-trade-rs keeps (restated here: its
//!   book state is crate-private).
//! - `cargo bench -p strike-bench --features peers --bench peers`: adds kalshi-trade-rs's own
//!   parse path (its public message types through its `StreamMessage::from_type_and_value`),
//!   nautilus-model's `OrderBook` (L2_MBP), and hftbacktest's `HashMapMarketDepth` and
//!   `ROIVectorMarketDepth`. These crates are heavy to build, hence the feature.
//!
//! Same work, checked before timing:
//! - Parse: every peer produces the same [`Parsed`] value (fixed-point price and size, YES-scale
//!   price, interned market id) as Strike for every recorded frame, and the same snapshot levels;
//!   the string → fixed-point conversion and the ticker lookup are Strike's own functions in every
//!   row, so the rows differ only in the JSON work. The typed peers are handed the message type in
//!   advance (they deserialize straight into the delta or snapshot struct), which favours them:
//!   Strike dispatches on `type`. kalshi-trade-rs does not extract `ts_ms` (it keeps the RFC 3339
//!   `ts` string), so its deltas are compared with `ts_ms` cleared.
//! - Book: one update = apply one recorded delta to the warmed book of its market, then read the
//!   best bid and best ask (price and size). The stream is the recording's deltas in order,
//!   followed by the same deltas undone in reverse order, so the loop is stationary and every book
//!   it visits is one the recording produced. nautilus and hftbacktest take level sizes, not
//!   increments (their L2 form); their deltas carry the size after the update, precomputed, which
//!   spares them the read of the old size that Strike and the `BTreeMap` do. Each peer's best bid
//!   and ask are compared with Strike's after every step of one full loop.
//!
//! After each group a table (`strike_bench::per_call_ns`, TSC) gives the median over ~2 µs batches
//! and the per-call p50 / p99 / p99.9; criterion's own output gives wall-time estimates, which a
//! shared machine's time slicing inflates. Results: `bench/BENCHMARKS.md`.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use serde::de::DeserializeSeed;
use serde::Deserialize;
use std::hint::black_box;
use strike_bench::{demo_recording, frames_of, per_call_ns, prod_recording, CallStats};
use strike_engine::feed::parse::{FrameParser, Level, Parsed};
use strike_sdk::book::{Book, BookSide};
use strike_sdk::num::{Price, Qty};
use strike_sim::recording::Recording;
use strike_sim::universe::UniverseData;

/// Per-call samples per row of the percentile tables.
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

fn print_rows(group: &str, rows: &[(String, CallStats)]) {
    println!("\n{group}: ns per call; median of ~2 µs batches, then {CALLS} single calls (timer floor subtracted)");
    println!("{:<52} {:>9} {:>9} {:>9} {:>9} {:>7}", "row", "median", "p50", "p99", "p99.9", "floor");
    for (name, s) in rows {
        println!("{name:<52} {:>9.1} {:>9.0} {:>9.0} {:>9.0} {:>7.0}", s.median, s.p50, s.p99, s.p999, s.floor);
    }
    println!();
}

// ---------------------------------------------------------------------------------------------
// Parse peers
// ---------------------------------------------------------------------------------------------

/// An `orderbook_delta` frame, the fields Strike's parser reads, borrowed from the input.
#[derive(Deserialize)]
struct DeltaFrame<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
    sid: u32,
    seq: u64,
    #[serde(borrow)]
    msg: DeltaMsg<'a>,
}

#[derive(Deserialize)]
struct DeltaMsg<'a> {
    market_ticker: &'a str,
    price_dollars: &'a str,
    delta_fp: &'a str,
    side: &'a str,
    #[serde(default)]
    ts_ms: i64,
    #[serde(default, borrow)]
    client_order_id: Option<&'a str>,
}

/// An `orderbook_snapshot` frame, the fields Strike's parser reads, borrowed from the input.
#[derive(Deserialize)]
struct SnapFrame<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
    sid: u32,
    seq: u64,
    #[serde(borrow)]
    msg: SnapMsg<'a>,
}

#[derive(Deserialize)]
struct SnapMsg<'a> {
    market_ticker: &'a str,
    #[serde(default, borrow)]
    yes_dollars_fp: Option<Vec<(&'a str, &'a str)>>,
    #[serde(default, borrow)]
    no_dollars_fp: Option<Vec<(&'a str, &'a str)>>,
}

/// What every parse row shares after the JSON work: Strike's fixed-point conversion, YES scale and
/// ticker lookup.
struct Convert<'u> {
    universe: &'u UniverseData,
    /// NO levels arrive on the YES scale (false for both recordings used here).
    yes_scale: bool,
}

impl Convert<'_> {
    #[inline]
    fn side(&self, s: &str) -> Option<BookSide> {
        match s {
            "yes" => Some(BookSide::Bid),
            "no" => Some(BookSide::Ask),
            _ => None,
        }
    }

    #[inline]
    fn price(&self, side: BookSide, s: &str) -> Option<Price> {
        let p = Price::parse(s).ok()?;
        Some(if side == BookSide::Ask && !self.yes_scale { p.complement() } else { p })
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn delta(
        &self,
        ty: &str,
        sid: u32,
        seq: u64,
        ticker: &str,
        side: BookSide,
        price: &str,
        delta: &str,
        ts_ms: i64,
        own: bool,
    ) -> Option<Parsed> {
        if ty != "orderbook_delta" {
            return None;
        }
        Some(Parsed::Delta {
            sid,
            seq,
            market: self.universe.id_of(ticker)?,
            side,
            price: self.price(side, price)?,
            delta: Qty::parse(delta).ok()?,
            ts_ms,
            own,
        })
    }

    #[inline]
    fn typed_delta(&self, f: &DeltaFrame<'_>) -> Option<Parsed> {
        let m = &f.msg;
        let side = self.side(m.side)?;
        self.delta(
            f.ty,
            f.sid,
            f.seq,
            m.market_ticker,
            side,
            m.price_dollars,
            m.delta_fp,
            m.ts_ms,
            m.client_order_id.is_some(),
        )
    }

    #[inline]
    fn value_delta(&self, v: &serde_json::Value) -> Option<Parsed> {
        let m = v.get("msg")?;
        let s = |k: &str| m.get(k).and_then(|x| x.as_str());
        let side = self.side(s("side")?)?;
        self.delta(
            v.get("type")?.as_str()?,
            u32::try_from(v.get("sid")?.as_u64()?).ok()?,
            v.get("seq")?.as_u64()?,
            s("market_ticker")?,
            side,
            s("price_dollars")?,
            s("delta_fp")?,
            m.get("ts_ms").and_then(|x| x.as_i64()).unwrap_or(0),
            m.get("client_order_id").is_some_and(|x| !x.is_null()),
        )
    }

    #[inline]
    fn typed_snapshot(&self, f: &SnapFrame<'_>, out: &mut Vec<Level>) -> Option<Parsed> {
        if f.ty != "orderbook_snapshot" {
            return None;
        }
        out.clear();
        for (side, lv) in [(BookSide::Bid, &f.msg.yes_dollars_fp), (BookSide::Ask, &f.msg.no_dollars_fp)] {
            for (p, q) in lv.iter().flatten() {
                out.push(Level { side, price: self.price(side, p)?, qty: Qty::parse(q).ok()? });
            }
        }
        Some(Parsed::Snapshot { sid: f.sid, seq: f.seq, market: self.universe.id_of(f.msg.market_ticker)? })
    }
}

/// A snapshot through serde without allocating: `DeserializeSeed`s that walk the envelope and the
/// level arrays and push converted levels straight into a reused buffer, as Strike's parser does
/// (the derive-based rows allocate one `Vec` per side per frame). Works with any serde
/// deserializer; used with serde_json's and sonic-rs's.
mod snap_seed {
    use super::Convert;
    use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;
    use strike_engine::feed::parse::{Level, Parsed};
    use strike_sdk::book::BookSide;
    use strike_sdk::num::Qty;

    /// The whole frame: `{"type","sid","seq","msg":{...}}` in any key order.
    pub struct Frame<'o, 'u> {
        pub conv: &'o Convert<'u>,
        pub out: &'o mut Vec<Level>,
    }

    impl<'de> DeserializeSeed<'de> for Frame<'_, '_> {
        type Value = Option<Parsed>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Frame<'_, '_> {
        type Value = Option<Parsed>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an orderbook_snapshot frame")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            self.out.clear();
            let (mut ty, mut sid, mut seq, mut ticker) = (None, None, None, None);
            while let Some(k) = map.next_key::<&'de str>()? {
                match k {
                    "type" => ty = Some(map.next_value::<&'de str>()?),
                    "sid" => sid = Some(map.next_value::<u32>()?),
                    "seq" => seq = Some(map.next_value::<u64>()?),
                    "msg" => ticker = map.next_value_seed(Msg { conv: self.conv, out: &mut *self.out })?,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            if ty != Some("orderbook_snapshot") {
                return Ok(None);
            }
            let market = match ticker.and_then(|t| self.conv.universe.id_of(t)) {
                Some(m) => m,
                None => return Ok(None),
            };
            Ok(sid.zip(seq).map(|(sid, seq)| Parsed::Snapshot { sid, seq, market }))
        }
    }

    /// The `msg` object; yields the ticker, fills the levels.
    struct Msg<'o, 'u> {
        conv: &'o Convert<'u>,
        out: &'o mut Vec<Level>,
    }

    impl<'de> DeserializeSeed<'de> for Msg<'_, '_> {
        type Value = Option<&'de str>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Msg<'_, '_> {
        type Value = Option<&'de str>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an orderbook_snapshot msg")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut ticker = None;
            while let Some(k) = map.next_key::<&'de str>()? {
                match k {
                    "market_ticker" => ticker = Some(map.next_value::<&'de str>()?),
                    "yes_dollars_fp" => {
                        map.next_value_seed(Levels { conv: self.conv, out: &mut *self.out, side: BookSide::Bid })?
                    }
                    "no_dollars_fp" => {
                        map.next_value_seed(Levels { conv: self.conv, out: &mut *self.out, side: BookSide::Ask })?
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(ticker)
        }
    }

    /// `[["0.4500","100.00"], ...]` or `null`, converted into `out`.
    struct Levels<'o, 'u> {
        conv: &'o Convert<'u>,
        out: &'o mut Vec<Level>,
        side: BookSide,
    }

    impl<'de> DeserializeSeed<'de> for Levels<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_option(self)
        }
    }

    impl<'de> Visitor<'de> for Levels<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of [price_dollars, count_fp] pairs or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some((p, q)) = seq.next_element::<(&'de str, &'de str)>()? {
                let price = self.conv.price(self.side, p).ok_or_else(|| de::Error::custom("bad price_dollars"))?;
                let qty = Qty::parse(q).map_err(|_| de::Error::custom("bad count_fp"))?;
                self.out.push(Level { side: self.side, price, qty });
            }
            Ok(())
        }
    }
}

/// kalshi-trade-rs's parse path: its session deserializes the envelope with `msg` as a
/// `serde_json::Value` (`ws::protocol::parse_incoming`, crate-private: its `RawMessage` is mirrored
/// here field for field), then routes `msg` through the public `StreamMessage::from_type_and_value`
/// into its owned-`String` message structs.
#[cfg(feature = "peers")]
mod kalshi_trade {
    use super::Convert;
    use kalshi_trade_rs::ws::{Side, StreamMessage};
    use serde::Deserialize;
    use strike_engine::feed::parse::{Level, Parsed};
    use strike_sdk::book::BookSide;
    use strike_sdk::num::Qty;

    /// The fields of kalshi-trade-rs 0.6.0's private `RawMessage`.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct RawMessage {
        id: Option<u64>,
        #[serde(rename = "type")]
        msg_type: Option<String>,
        sid: Option<i64>,
        seq: Option<i64>,
        msg: Option<serde_json::Value>,
        code: Option<i64>,
        message: Option<String>,
        error: Option<serde_json::Value>,
    }

    /// The crate's parse of one text frame into its `StreamMessage`, with the envelope's sid and seq.
    #[inline]
    pub fn parse(text: &str) -> Option<(i64, Option<i64>, StreamMessage)> {
        let raw: RawMessage = serde_json::from_str(text).ok()?;
        let ty = raw.msg_type?;
        let msg = StreamMessage::from_type_and_value(&ty, raw.msg?).ok()?;
        Some((raw.sid?, raw.seq, msg))
    }

    fn side(s: Side) -> BookSide {
        match s {
            Side::Yes => BookSide::Bid,
            Side::No => BookSide::Ask,
        }
    }

    /// Parse + the same conversion as every other row. `ts_ms` is 0: the crate does not keep it.
    #[inline]
    pub fn delta(c: &Convert<'_>, text: &str) -> Option<Parsed> {
        let (sid, seq, m) = parse(text)?;
        let StreamMessage::OrderbookDelta(d) = m else { return None };
        let side = side(d.side);
        c.delta(
            "orderbook_delta",
            u32::try_from(sid).ok()?,
            u64::try_from(seq?).ok()?,
            &d.market_ticker,
            side,
            &d.price_dollars,
            &d.delta_fp,
            0,
            d.client_order_id.is_some(),
        )
    }

    #[inline]
    pub fn snapshot(c: &Convert<'_>, text: &str, out: &mut Vec<Level>) -> Option<Parsed> {
        let (sid, seq, m) = parse(text)?;
        let StreamMessage::OrderbookSnapshot(s) = m else { return None };
        out.clear();
        for (bs, lv) in [(BookSide::Bid, &s.yes_dollars_fp), (BookSide::Ask, &s.no_dollars_fp)] {
            for (p, q) in lv.iter().flatten() {
                out.push(Level { side: bs, price: c.price(bs, p)?, qty: Qty::parse(q).ok()? });
            }
        }
        Some(Parsed::Snapshot {
            sid: u32::try_from(sid).ok()?,
            seq: u64::try_from(seq?).ok()?,
            market: c.universe.id_of(&s.market_ticker)?,
        })
    }
}

fn sorted(mut v: Vec<Level>) -> Vec<(u8, u16, i64)> {
    let mut k: Vec<_> = v.drain(..).map(|l| (l.side as u8, l.price.0, l.qty.0)).collect();
    k.sort_unstable();
    k
}

fn parse(c: &mut Criterion) {
    let rec = prod_recording();
    let u = UniverseData::from_header(&rec.header).expect("the prod capture's universe");
    let conv = Convert { universe: &u, yes_scale: rec.header.yes_price_scale };
    let deltas = frames_of(&rec, "orderbook_delta");
    let snaps = frames_of(&rec, "orderbook_snapshot");
    // kalshi-trade-rs takes the `&str` its WebSocket layer already checked for UTF-8.
    #[cfg(feature = "peers")]
    let delta_texts: Vec<String> = deltas.iter().map(|d| String::from_utf8(d.clone()).expect("UTF-8 frame")).collect();
    #[cfg(feature = "peers")]
    let snap_texts: Vec<String> = snaps.iter().map(|d| String::from_utf8(d.clone()).expect("UTF-8 frame")).collect();
    let mut p = FrameParser::new(rec.header.yes_price_scale, 64 * 1024, 4096);

    // Same output from every row, on every frame, before anything is timed.
    for d in &deltas {
        let want = p.parse(d, &u).1.expect("Strike parses every recorded delta");
        assert_eq!(p.parse_simd(d, &u).1, Ok(want), "Strike's two paths on {}", String::from_utf8_lossy(d));
        let typed = serde_json::from_slice::<DeltaFrame>(d).ok().and_then(|f| conv.typed_delta(&f));
        assert_eq!(typed, Some(want), "serde_json typed vs Strike on {}", String::from_utf8_lossy(d));
        let sonic = sonic_rs::from_slice::<DeltaFrame>(d).ok().and_then(|f| conv.typed_delta(&f));
        assert_eq!(sonic, Some(want), "sonic-rs vs Strike on {}", String::from_utf8_lossy(d));
        let value = serde_json::from_slice::<serde_json::Value>(d).ok().and_then(|v| conv.value_delta(&v));
        assert_eq!(value, Some(want), "serde_json Value vs Strike on {}", String::from_utf8_lossy(d));
        #[cfg(feature = "peers")]
        {
            let mut want = want;
            if let Parsed::Delta { ts_ms, .. } = &mut want {
                *ts_ms = 0;
            }
            let k = kalshi_trade::delta(&conv, std::str::from_utf8(d).unwrap());
            assert_eq!(k, Some(want), "kalshi-trade-rs vs Strike on {}", String::from_utf8_lossy(d));
        }
    }
    let mut out = Vec::with_capacity(4096);
    for s in &snaps {
        let want = p.parse(s, &u).1.expect("Strike parses every recorded snapshot");
        let want_levels = sorted(p.levels().to_vec());
        let f = serde_json::from_slice::<SnapFrame>(s).expect("serde_json snapshot");
        assert_eq!(conv.typed_snapshot(&f, &mut out), Some(want));
        assert_eq!(sorted(out.clone()), want_levels, "serde_json snapshot levels");
        let f = sonic_rs::from_slice::<SnapFrame>(s).expect("sonic-rs snapshot");
        assert_eq!(conv.typed_snapshot(&f, &mut out), Some(want));
        assert_eq!(sorted(out.clone()), want_levels, "sonic-rs snapshot levels");
        let seed = snap_seed::Frame { conv: &conv, out: &mut out };
        assert_eq!(seed.deserialize(&mut serde_json::Deserializer::from_slice(s)).ok(), Some(Some(want)));
        assert_eq!(sorted(out.clone()), want_levels, "serde_json seed snapshot levels");
        let seed = snap_seed::Frame { conv: &conv, out: &mut out };
        assert_eq!(seed.deserialize(&mut sonic_rs::Deserializer::from_slice(s)).ok(), Some(Some(want)));
        assert_eq!(sorted(out.clone()), want_levels, "sonic-rs seed snapshot levels");
        #[cfg(feature = "peers")]
        {
            assert_eq!(kalshi_trade::snapshot(&conv, std::str::from_utf8(s).unwrap(), &mut out), Some(want));
            assert_eq!(sorted(out.clone()), want_levels, "kalshi-trade-rs snapshot levels");
        }
    }

    let mut rows = Vec::new();
    let mut g = c.benchmark_group(format!("peers parse orderbook_delta ({} real frames, rotating)", deltas.len()));
    g.throughput(Throughput::Elements(1));
    let n = deltas.len();
    let mut i = 0;
    row(&mut g, &mut rows, "strike FrameParser (delta fast path)", || {
        i = (i + 1) % n;
        p.parse(black_box(&deltas[i]), &u).1
    });
    let mut i = 0;
    row(&mut g, &mut rows, "strike FrameParser::parse_simd (no fast path)", || {
        i = (i + 1) % n;
        p.parse_simd(black_box(&deltas[i]), &u).1
    });
    let mut i = 0;
    row(&mut g, &mut rows, "serde_json typed (borrowed)", || {
        i = (i + 1) % n;
        serde_json::from_slice::<DeltaFrame>(black_box(&deltas[i])).ok().and_then(|f| conv.typed_delta(&f))
    });
    let mut i = 0;
    row(&mut g, &mut rows, "sonic-rs typed (borrowed)", || {
        i = (i + 1) % n;
        sonic_rs::from_slice::<DeltaFrame>(black_box(&deltas[i])).ok().and_then(|f| conv.typed_delta(&f))
    });
    let mut i = 0;
    row(&mut g, &mut rows, "serde_json Value (DOM)", || {
        i = (i + 1) % n;
        serde_json::from_slice::<serde_json::Value>(black_box(&deltas[i])).ok().and_then(|v| conv.value_delta(&v))
    });
    #[cfg(feature = "peers")]
    {
        let mut i = 0;
        row(&mut g, &mut rows, "kalshi-trade-rs (its message types)", || {
            i = (i + 1) % n;
            kalshi_trade::delta(&conv, black_box(&delta_texts[i]))
        });
    }
    g.finish();
    print_rows("parse orderbook_delta", &rows);

    let mut rows = Vec::new();
    let mut g = c.benchmark_group(format!("peers parse orderbook_snapshot ({} real frames, ~100 levels)", snaps.len()));
    g.throughput(Throughput::Elements(1));
    let n = snaps.len();
    let mut j = 0;
    row(&mut g, &mut rows, "strike FrameParser (simd-json tape walk)", || {
        j = (j + 1) % n;
        p.parse(black_box(&snaps[j]), &u).1
    });
    let mut j = 0;
    row(&mut g, &mut rows, "serde_json typed (borrowed)", || {
        j = (j + 1) % n;
        serde_json::from_slice::<SnapFrame>(black_box(&snaps[j])).ok().and_then(|f| conv.typed_snapshot(&f, &mut out))
    });
    let mut j = 0;
    row(&mut g, &mut rows, "sonic-rs typed (borrowed)", || {
        j = (j + 1) % n;
        sonic_rs::from_slice::<SnapFrame>(black_box(&snaps[j])).ok().and_then(|f| conv.typed_snapshot(&f, &mut out))
    });
    let mut j = 0;
    row(&mut g, &mut rows, "serde_json seed (reused level buffer)", || {
        j = (j + 1) % n;
        let seed = snap_seed::Frame { conv: &conv, out: &mut out };
        seed.deserialize(&mut serde_json::Deserializer::from_slice(black_box(&snaps[j]))).ok().flatten()
    });
    let mut j = 0;
    row(&mut g, &mut rows, "sonic-rs seed (reused level buffer)", || {
        j = (j + 1) % n;
        let seed = snap_seed::Frame { conv: &conv, out: &mut out };
        seed.deserialize(&mut sonic_rs::Deserializer::from_slice(black_box(&snaps[j]))).ok().flatten()
    });
    #[cfg(feature = "peers")]
    {
        let mut j = 0;
        row(&mut g, &mut rows, "kalshi-trade-rs (its message types)", || {
            j = (j + 1) % n;
            kalshi_trade::snapshot(&conv, black_box(&snap_texts[j]), &mut out)
        });
    }
    g.finish();
    print_rows("parse orderbook_snapshot", &rows);
}

// ---------------------------------------------------------------------------------------------
// Book peers
// ---------------------------------------------------------------------------------------------

/// One update of the stationary loop: a recorded delta (or its undo) and the level size after it.
#[derive(Clone, Copy)]
struct Step {
    market: usize,
    side: BookSide,
    price: Price,
    delta: Qty,
    /// What the L2 peers (nautilus, hftbacktest) are given.
    #[cfg_attr(not(feature = "peers"), allow(dead_code))]
    size_after: Qty,
}

type Best = (Option<(Price, Qty)>, Option<(Price, Qty)>);

/// A recorded delta stream made stationary, with everything each book needs to start warm.
struct Stream {
    name: &'static str,
    /// Strike's books after the snapshots, one per market.
    books: Vec<Book>,
    /// Each market's finest grid step, centicents (hftbacktest's tick size).
    #[cfg_attr(not(feature = "peers"), allow(dead_code))]
    ticks: Vec<u16>,
    /// Snapshot levels per market (the warm start for the peers).
    snaps: Vec<Vec<Level>>,
    steps: Vec<Step>,
    /// Strike's best bid and ask after each step.
    expect: Vec<Best>,
    /// Steps after which Strike's book was crossed (reported, not an error).
    crossed: usize,
}

fn stream(name: &'static str, rec: &Recording) -> Stream {
    let u = UniverseData::from_header(&rec.header).expect("the recording's universe");
    let metas = u.view().markets().to_vec();
    let fresh = || metas.iter().map(|m| Book::new(m.grid)).collect::<Vec<_>>();
    let ticks = metas
        .iter()
        .map(|m| {
            let n = m.grid.n_levels() as u16;
            (1..n).filter_map(|l| Some(m.grid.price_at(l)?.0 - m.grid.price_at(l - 1)?.0)).min().unwrap_or(1)
        })
        .collect();
    let mut p = FrameParser::new(rec.header.yes_price_scale, 64 * 1024, 1 << 16);
    let mut snaps: Vec<Option<Vec<Level>>> = vec![None; metas.len()];
    let mut deltas = Vec::new();
    for f in &rec.frames {
        match p.parse(f.text.as_bytes(), &u).1 {
            Ok(Parsed::Snapshot { market, .. }) => {
                let m = market.0 as usize;
                assert!(snaps[m].is_none(), "{name}: a second snapshot of one market; the loop assumes one");
                snaps[m] = Some(p.levels().to_vec());
            }
            Ok(Parsed::Delta { market, side, price, delta, .. }) => {
                let m = market.0 as usize;
                assert!(snaps[m].is_some(), "{name}: a delta before its market's snapshot");
                deltas.push((m, side, price, delta));
            }
            _ => {}
        }
    }
    let snaps: Vec<Vec<Level>> = snaps.into_iter().map(Option::unwrap_or_default).collect();
    let mut books = fresh();
    for (b, lv) in books.iter_mut().zip(&snaps) {
        let side = |s| lv.iter().filter(move |l| l.side == s).map(|l| (l.price, l.qty));
        let _ = b.replace(side(BookSide::Bid), side(BookSide::Ask));
    }
    // Forward, then undone in reverse: every book visited is one the recording produced.
    let cycle: Vec<_> =
        deltas.iter().copied().chain(deltas.iter().rev().map(|&(m, s, p, d)| (m, s, p, Qty(-d.0)))).collect();
    let (mut steps, mut expect, mut crossed) = (Vec::new(), Vec::new(), 0);
    let mut warm = fresh();
    for (b, lv) in warm.iter_mut().zip(&snaps) {
        let side = |s| lv.iter().filter(move |l| l.side == s).map(|l| (l.price, l.qty));
        let _ = b.replace(side(BookSide::Bid), side(BookSide::Ask));
    }
    for (m, side, price, delta) in cycle {
        let b = &mut warm[m];
        match b.apply_delta(side, price, delta) {
            Ok(()) => {}
            Err(strike_sdk::book::BookFault::Crossed { .. }) => crossed += 1,
            Err(e) => panic!("{name}: the recorded stream does not apply cleanly: {e:?}"),
        }
        steps.push(Step { market: m, side, price, delta, size_after: b.size_at(side, price) });
        expect.push((b.best_bid(), b.best_ask()));
    }
    Stream { name, books, ticks, snaps, steps, expect, crossed }
}

/// Kalshi-trade-rs's book structure (`orderbook/state.rs`, crate-private): one
/// `BTreeMap<price, size>` per side; an update reads the old size, then inserts the new one or
/// removes the level; bests are the maps' ends. Written here on Strike's integer units (the crate
/// keys whole cents and whole contracts and parses both from strings as `f64` inside its update,
/// which this leaves out), so it is a lower bound of that crate's book hop.
#[derive(Default)]
struct BTreeBook {
    bids: std::collections::BTreeMap<u16, i64>,
    asks: std::collections::BTreeMap<u16, i64>,
}

impl BTreeBook {
    #[inline]
    fn apply(&mut self, side: BookSide, price: Price, delta: Qty) {
        let levels = if side == BookSide::Bid { &mut self.bids } else { &mut self.asks };
        let new = levels.get(&price.0).copied().unwrap_or(0) + delta.0;
        if new <= 0 {
            levels.remove(&price.0);
        } else {
            levels.insert(price.0, new);
        }
    }

    #[inline]
    fn best(&self) -> Best {
        (
            self.bids.last_key_value().map(|(&p, &q)| (Price(p), Qty(q))),
            self.asks.first_key_value().map(|(&p, &q)| (Price(p), Qty(q))),
        )
    }
}

#[cfg(feature = "peers")]
mod nautilus {
    use super::{Best, Stream};
    use nautilus_model::data::{BookOrder, OrderBookDelta};
    use nautilus_model::enums::{BookAction, BookType, OrderSide};
    use nautilus_model::identifiers::InstrumentId;
    use nautilus_model::orderbook::OrderBook;
    use nautilus_model::types::price::PriceRaw;
    use nautilus_model::types::quantity::QuantityRaw;
    use nautilus_model::types::{Price, Quantity};
    use strike_sdk::book::BookSide;
    use strike_sdk::num::{Price as SPrice, Qty};

    /// Nautilus's standard precision keeps 9 decimals: centicents × 1e5, hundredths × 1e7.
    fn px(p: SPrice) -> Price {
        Price::from_raw(p.0 as PriceRaw * 100_000, 4)
    }
    fn qty(q: Qty) -> Quantity {
        Quantity::from_raw(q.0 as QuantityRaw * 10_000_000, 2)
    }
    fn side(s: BookSide) -> OrderSide {
        if s == BookSide::Bid {
            OrderSide::Buy
        } else {
            OrderSide::Sell
        }
    }

    /// One `OrderBook` (L2_MBP) per market, warmed with the snapshot levels, and the loop's steps as
    /// L2 deltas (Update to the size after, Delete when it reaches zero).
    pub fn setup(s: &Stream) -> (Vec<OrderBook>, Vec<(usize, OrderBookDelta)>) {
        let ids: Vec<InstrumentId> =
            (0..s.snaps.len()).map(|m| format!("M{m}.KALSHI").parse().expect("instrument id")).collect();
        let books = ids
            .iter()
            .zip(&s.snaps)
            .map(|(id, lv)| {
                let mut b = OrderBook::new(*id, BookType::L2_MBP);
                for l in lv.iter().filter(|l| l.qty.0 > 0) {
                    b.add(BookOrder::new(side(l.side), px(l.price), qty(l.qty), 0), 0, 0, 0u64.into());
                }
                b
            })
            .collect();
        let deltas = s
            .steps
            .iter()
            .enumerate()
            .map(|(k, st)| {
                let action = if st.size_after.0 > 0 { BookAction::Update } else { BookAction::Delete };
                let order = BookOrder::new(side(st.side), px(st.price), qty(st.size_after), 0);
                let d = OrderBookDelta::new(
                    ids[st.market],
                    action,
                    order,
                    0,
                    k as u64 + 1,
                    (k as u64).into(),
                    (k as u64).into(),
                );
                (st.market, d)
            })
            .collect();
        (books, deltas)
    }

    #[inline]
    pub fn step(
        books: &mut [OrderBook],
        m: usize,
        d: &OrderBookDelta,
    ) -> (Option<Price>, Option<Quantity>, Option<Price>, Option<Quantity>) {
        let b = &mut books[m];
        let _ = b.apply_delta(d);
        (b.best_bid_price(), b.best_bid_size(), b.best_ask_price(), b.best_ask_size())
    }

    pub fn to_best(r: (Option<Price>, Option<Quantity>, Option<Price>, Option<Quantity>)) -> Best {
        let p = |p: Price| SPrice((p.raw / 100_000) as u16);
        let q = |q: Quantity| Qty((q.raw / 10_000_000) as i64);
        (r.0.zip(r.1).map(|(a, b)| (p(a), q(b))), r.2.zip(r.3).map(|(a, b)| (p(a), q(b))))
    }
}

#[cfg(feature = "peers")]
mod hft {
    use super::{Best, Stream};
    use hftbacktest::depth::{L2MarketDepth, MarketDepth, INVALID_MAX, INVALID_MIN};
    use strike_sdk::book::BookSide;
    use strike_sdk::num::{Price, Qty};

    /// A step in hftbacktest's units: side, price in dollars, size after in contracts (`f64`).
    #[derive(Clone, Copy)]
    pub struct HStep {
        pub market: usize,
        pub bid: bool,
        pub price: f64,
        pub qty: f64,
    }

    /// One depth per market (built by `new(tick_size_dollars)`), warmed with the snapshot levels,
    /// and the loop's steps.
    pub fn setup<D: L2MarketDepth>(s: &Stream, new: impl Fn(f64) -> D) -> (Vec<D>, Vec<HStep>) {
        let mut books: Vec<D> = s.ticks.iter().map(|&t| new(t as f64 / 10_000.0)).collect();
        for (b, lv) in books.iter_mut().zip(&s.snaps) {
            for l in lv.iter().filter(|l| l.qty.0 > 0) {
                let (p, q) = (l.price.0 as f64 / 10_000.0, l.qty.0 as f64 / 100.0);
                if l.side == BookSide::Bid {
                    b.update_bid_depth(p, q, 0);
                } else {
                    b.update_ask_depth(p, q, 0);
                }
            }
        }
        let steps = s
            .steps
            .iter()
            .map(|st| HStep {
                market: st.market,
                bid: st.side == BookSide::Bid,
                price: st.price.0 as f64 / 10_000.0,
                qty: st.size_after.0 as f64 / 100.0,
            })
            .collect();
        (books, steps)
    }

    #[inline]
    pub fn step<D: L2MarketDepth + MarketDepth>(books: &mut [D], s: &HStep) -> (i64, f64, i64, f64) {
        let b = &mut books[s.market];
        if s.bid {
            b.update_bid_depth(s.price, s.qty, 0);
        } else {
            b.update_ask_depth(s.price, s.qty, 0);
        }
        (b.best_bid_tick(), b.best_bid_qty(), b.best_ask_tick(), b.best_ask_qty())
    }

    pub fn to_best(r: (i64, f64, i64, f64), tick: u16) -> Best {
        let q = |x: f64| Qty((x * 100.0).round() as i64);
        let bid = (r.0 != INVALID_MIN).then(|| (Price((r.0 * tick as i64) as u16), q(r.1)));
        let ask = (r.2 != INVALID_MAX).then(|| (Price((r.2 * tick as i64) as u16), q(r.3)));
        (bid, ask)
    }
}

/// Counts the steps of one loop after which a peer's best bid/ask differ from Strike's.
fn mismatches(s: &Stream, mut step: impl FnMut(usize) -> Best) -> usize {
    (0..s.steps.len()).filter(|&k| step(k) != s.expect[k]).count()
}

fn book(c: &mut Criterion) {
    for rec_stream in [stream("prod capture", &prod_recording()), stream("demo session", &demo_recording())] {
        let s = rec_stream;
        let n = s.steps.len();
        let markets = s.snaps.len();
        let group = format!("peers book {} ({} markets, {} recorded deltas forward + undone)", s.name, markets, n / 2);

        // Checks: every peer tracks Strike's bests through one whole loop.
        let mut bt: Vec<BTreeBook> = (0..markets).map(|_| BTreeBook::default()).collect();
        for (b, lv) in bt.iter_mut().zip(&s.snaps) {
            for l in lv.iter().filter(|l| l.qty.0 > 0) {
                b.apply(l.side, l.price, l.qty);
            }
        }
        let bad = mismatches(&s, |k| {
            let st = s.steps[k];
            bt[st.market].apply(st.side, st.price, st.delta);
            bt[st.market].best()
        });
        assert_eq!(bad, 0, "{}: BTreeMap book disagrees with Strike's on {bad} steps", s.name);
        #[cfg(feature = "peers")]
        let (mut nbooks, ndeltas) = nautilus::setup(&s);
        #[cfg(feature = "peers")]
        {
            let bad = mismatches(&s, |k| nautilus::to_best(nautilus::step(&mut nbooks, ndeltas[k].0, &ndeltas[k].1)));
            assert_eq!(bad, 0, "{}: nautilus OrderBook disagrees with Strike's on {bad} steps", s.name);
        }
        #[cfg(feature = "peers")]
        let (mut hmap, hsteps) = hft::setup(&s, |t| hftbacktest::depth::HashMapMarketDepth::new(t, 0.01));
        #[cfg(feature = "peers")]
        let (mut roi, _) = hft::setup(&s, |t| hftbacktest::depth::ROIVectorMarketDepth::new(t, 0.01, 0.0, 1.0));
        #[cfg(feature = "peers")]
        {
            let bad = mismatches(&s, |k| hft::to_best(hft::step(&mut hmap, &hsteps[k]), s.ticks[hsteps[k].market]));
            println!("{}: hftbacktest HashMapMarketDepth differs from Strike on {bad} of {n} steps", s.name);
            let bad = mismatches(&s, |k| hft::to_best(hft::step(&mut roi, &hsteps[k]), s.ticks[hsteps[k].market]));
            println!("{}: hftbacktest ROIVectorMarketDepth differs from Strike on {bad} of {n} steps", s.name);
        }
        println!("{}: Strike's book was crossed after {} of {n} steps (applied all the same)", s.name, s.crossed);
        println!("{}: finest grid step per market, centicents (hftbacktest's tick): {:?}", s.name, s.ticks);

        let mut rows = Vec::new();
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(1));
        let mut books = s.books;
        let mut k = 0;
        row(&mut g, &mut rows, "strike Book (fixed levels, bitset bests)", || {
            let st = &s.steps[k];
            k = (k + 1) % n;
            let b = &mut books[st.market];
            let _ = b.apply_delta(st.side, st.price, st.delta);
            (b.best_bid(), b.best_ask())
        });
        // Every book starts at the snapshot state (the checks ran whole loops) and the rows apply the
        // steps in order from step 0, so each update lands on the book the recording had.
        let mut k = 0;
        row(&mut g, &mut rows, "BTreeMap per side (kalshi-trade-rs structure)", || {
            let st = &s.steps[k];
            k = (k + 1) % n;
            let b = &mut bt[st.market];
            b.apply(st.side, st.price, st.delta);
            b.best()
        });
        #[cfg(feature = "peers")]
        {
            let mut k = 0;
            row(&mut g, &mut rows, "nautilus-model OrderBook L2_MBP", || {
                let (m, d) = &ndeltas[k];
                k = (k + 1) % n;
                nautilus::step(&mut nbooks, *m, d)
            });
            let mut k = 0;
            row(&mut g, &mut rows, "hftbacktest HashMapMarketDepth", || {
                let st = &hsteps[k];
                k = (k + 1) % n;
                hft::step(&mut hmap, st)
            });
            let mut k = 0;
            row(&mut g, &mut rows, "hftbacktest ROIVectorMarketDepth", || {
                let st = &hsteps[k];
                k = (k + 1) % n;
                hft::step(&mut roi, st)
            });
        }
        g.finish();
        print_rows(&format!("book {}", s.name), &rows);
    }
}

criterion_group!(benches, parse, book);
criterion_main!(benches);
