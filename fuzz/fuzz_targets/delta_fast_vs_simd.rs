//! Differential fuzz target: arbitrary bytes through the `orderbook_delta` fast path and the
//! simd-json path of `FrameParser` must give the same result whenever the fast path takes the
//! frame (`FrameParser::cross_check`), on both NO-price scales; and the template scanner's
//! results must be the generic scanner's (template ⊆ generic). Any disagreement panics, which
//! libFuzzer reports as a crash with the input saved under `fuzz/artifacts/`.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run delta_fast_vs_simd fuzz/seeds/delta_fast_vs_simd -- -dict=fuzz/delta.dict`
//! (see fuzz/README.md; `.ci/run` runs it for a bounded time, seeded with recorded frames).

#![no_main]
// parse.rs is compiled here whole; the fuzz target uses only part of its API.
#![allow(dead_code)]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use strike_sdk::market::MarketId;

// The engine's own files, not copies: `parse` reaches the scanner as `super::fastpath`.
#[path = "../../engine/src/feed/fastpath.rs"]
mod fastpath;
#[path = "../../engine/src/feed/parse.rs"]
mod parse;

use parse::{FrameParser, MarketIndex};

/// Markets the seeds name (the real recordings' tickers and the synthetic seeds'); any other
/// ticker is unknown, which exercises the `UnknownMarket` decision.
const TICKERS: [&str; 7] = [
    "FED-23DEC-T3.00",
    "KXMLBGAME-26AUG071905ATLNYY-NYY",
    "KXMLBGAME-26AUG072140LADAZ-LAD",
    "KXNEXTTEAMNBA-26LJAM-CLE",
    "KXNEXTTEAMNBA-26LJAM-MIA",
    "KXBTCD-26JUL0317-T60499.99",
    "M",
];

struct Idx;
impl MarketIndex for Idx {
    fn id_of(&self, ticker: &str) -> Option<MarketId> {
        TICKERS.iter().position(|t| *t == ticker).map(|i| MarketId(i as u32))
    }
}

thread_local! {
    // reused like the feed reuses its parser: the state a previous frame left must not leak
    static PARSERS: RefCell<[FrameParser; 2]> =
        RefCell::new([FrameParser::new(false, 512, 256), FrameParser::new(true, 512, 256)]);
}

fuzz_target!(|data: &[u8]| {
    PARSERS.with(|ps| {
        for p in ps.borrow_mut().iter_mut() {
            if let Err(e) = p.cross_check(data, &Idx) {
                panic!("{e}");
            }
            let entry = p.parse(data, &Idx);
            let envelope = p.envelope_seq();
            assert_eq!(entry, p.parse_simd(data, &Idx), "parse() differs from parse_simd()");
            assert_eq!(envelope, p.envelope_seq(), "envelope_seq differs");
        }
    });
    let t = fastpath::scan_template(data);
    if t.is_some() {
        assert_eq!(t, fastpath::scan_generic(data), "template and generic scanners differ");
    }
});
