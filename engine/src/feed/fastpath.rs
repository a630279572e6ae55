//! The `orderbook_delta` fast path: a hand-written, allocation-free scanner for the exact frame
//! shapes Kalshi sends, tried before the simd-json tape walk of [`super::parse`].
//!
//! This module owns only the byte-level scan: [`scan_delta`] reads one frame into
//! [`DeltaFields`] or declines it. [`super::parse::FrameParser`] then resolves the ticker and
//! the NO-price scale exactly as the simd-json path does, and falls back to that path whenever
//! this one declines.
//!
//! # What it accepts
//!
//! A frame is taken only when it is, byte for byte, a compact JSON object (no whitespace
//! anywhere, nothing after the closing brace) of this shape (`kalshi-protocol.md` §1.7):
//!
//! - top level: `"type":"orderbook_delta"`, `"sid"` and `"seq"` as unsigned integers, `"msg"` as
//!   an object, in any order; any other member (`id`, `sending_ts_ms`, ...) must have a simple
//!   value (see below) and is skipped, as the simd-json path ignores it;
//! - `msg`: `market_ticker`, `price_dollars`, `delta_fp` and `side` (`"yes"` or `"no"`) as
//!   strings, optional `ts_ms` as an unsigned integer and optional `client_order_id` as a string
//!   or `null`, in any order; other members (`market_id`, `ts`, `subaccount`, ...) must have a
//!   simple value and are skipped.
//!
//! Simple values are strings, unsigned integers, `true`, `false` and `null`. Strings may hold
//! only the bytes 0x20..=0x7F other than `"` and `\` (so no escapes and no non-ASCII: the bytes
//! are the decoded text); integers are `0` or a digit run of at most 18 digits without a leading
//! zero (so they fit an `i64`: no sign, fraction or exponent). `sid` must fit a `u32`. The
//! fixed-point strings go through the same [`Price::parse_bytes`] / [`Qty::parse_bytes`] as the
//! simd-json path and must parse.
//!
//! # When it declines (and the simd-json path decides)
//!
//! Anything else: another `type`, a member of the wrong JSON type, a nested array or object other
//! than `msg`, a duplicated member the result depends on (the simd-json path lets the last one
//! win), a missing required member, an invalid price or size, whitespace, escapes, non-ASCII,
//! numbers in any other form, truncation or trailing bytes. Declining is always safe: the
//! decision is the simd-json path's. So the fast path never reports a fault of its own except
//! the one it can be sure of, an unknown market, which [`super::parse`] reports after a complete
//! scan exactly as the simd-json path would.
//!
//! # Two scanners
//!
//! [`scan_template`] matches Kalshi's member order as literal byte runs (the keys cost a few
//! wide compares, only the values are scanned); it takes every recorded delta. When it declines,
//! [`scan_generic`] reads the same grammar in any member order. The template's language is a
//! subset of the generic scanner's, with the same result on it: [`scan_delta`] tries one, then
//! the other.
//!
//! # Checked against the simd-json path
//!
//! Every accepted frame is valid JSON that the simd-json path reads to the same
//! [`super::parse::Parsed`]. The unit tests check this, and template ⊆ generic, on every
//! recorded delta, on hand-written edge cases and on tens of thousands of seeded mutations of
//! recorded frames; the `delta_fast_vs_simd` cargo-fuzz target (`fuzz/`, run for a bounded time
//! by `.ci/run`) checks it on arbitrary bytes.
//!
//! Cost on the dev VM (`cargo bench -p strike-bench --bench parse_fast`, 245 recorded 258-byte
//! deltas): the template scan 65–70 ns (about 1,070 instructions), the whole
//! [`super::parse::FrameParser::parse`] with the ticker lookup 91 ns, against 366 ns for the
//! simd-json path; parse + book apply 110 ns.

use strike_sdk::book::BookSide;
use strike_sdk::num::{Price, Qty};

/// The members of one `orderbook_delta` frame as the fast path read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaFields<'a> {
    /// Subscription id (`sid`).
    pub sid: u32,
    /// Sequence number (`seq`).
    pub seq: u64,
    /// `msg.market_ticker`, as sent (ASCII, no escapes).
    pub ticker: &'a str,
    /// `msg.side`: `"yes"` is [`BookSide::Bid`], `"no"` is [`BookSide::Ask`].
    pub side: BookSide,
    /// `msg.price_dollars` in centicents, on the wire's scale: a NO price unless the
    /// subscription asked for `use_yes_price` (the caller converts).
    pub price: Price,
    /// `msg.delta_fp`: signed size change, hundredths of a contract.
    pub delta: Qty,
    /// `msg.ts_ms`, exchange time in unix ms; 0 when absent.
    pub ts_ms: i64,
    /// `msg.client_order_id` is present and not `null`.
    pub own: bool,
}

/// Scans `frame` as an `orderbook_delta` of the shape described in the module docs. `None`
/// means "not sure": the caller must use the general parser. Never allocates, never panics.
///
/// Tries [`scan_template`] (members in Kalshi's order) first, then [`scan_generic`] (any
/// order). Every frame the template takes, the generic scanner takes too, with the same result
/// (checked by the tests and the fuzz target); the template is only quicker.
#[inline]
pub fn scan_delta(frame: &[u8]) -> Option<DeltaFields<'_>> {
    match scan_template(frame) {
        Some(d) => Some(d),
        None => scan_generic(frame),
    }
}

/// The members in the order Kalshi sends them, matched as literal byte runs:
/// `{"type":"orderbook_delta","sid":N,"seq":N,"msg":{"market_ticker":S[,"market_id":S],`
/// `"price_dollars":S,"delta_fp":S,"side":S[,"client_order_id":S|null][,"subaccount":N]`
/// `[,"ts":S][,"ts_ms":N]}}` (`[...]` optional), with the value forms of the module docs.
/// `None` for anything else, including every other order.
pub fn scan_template(frame: &[u8]) -> Option<DeltaFields<'_>> {
    let mut s = Scan { b: frame, i: 0 };
    s.literal(b"{\"type\":\"orderbook_delta\",\"sid\":")?;
    let sid = u32::try_from(s.uint()?).ok()?;
    s.literal(b",\"seq\":")?;
    let seq = s.uint()?;
    s.literal(b",\"msg\":{\"market_ticker\":")?;
    let ticker = s.string()?;
    if s.literal(b",\"market_id\":").is_some() {
        s.string()?;
    }
    s.literal(b",\"price_dollars\":")?;
    let price = Price::parse_bytes(s.string()?).ok()?;
    s.literal(b",\"delta_fp\":")?;
    let delta = Qty::parse_bytes(s.string()?).ok()?;
    s.literal(b",\"side\":")?;
    let side = side_of(s.string()?)?;
    let mut own = false;
    if s.literal(b",\"client_order_id\":").is_some() {
        own = s.client_order_id()?;
    }
    if s.literal(b",\"subaccount\":").is_some() {
        s.uint()?;
    }
    if s.literal(b",\"ts\":").is_some() {
        s.string()?;
    }
    let mut ts_ms = 0;
    if s.literal(b",\"ts_ms\":").is_some() {
        // ≤ 18 digits: always fits an i64
        ts_ms = s.uint()? as i64;
    }
    s.literal(b"}}")?;
    if s.i != frame.len() {
        return None;
    }
    Some(DeltaFields { sid, seq, ticker: ascii_str(ticker), side, price, delta, ts_ms, own })
}

/// The members in any order, each at most once (see the module docs). Slower than
/// [`scan_template`]: every key is scanned and dispatched.
pub fn scan_generic(frame: &[u8]) -> Option<DeltaFields<'_>> {
    let mut s = Scan { b: frame, i: 0 };
    s.byte(b'{')?;
    let (mut sid, mut seq, mut msg) = (None, None, None);
    let mut has_type = false;
    loop {
        let key = s.string()?;
        s.byte(b':')?;
        match key {
            b"type" => {
                if has_type || s.string()? != b"orderbook_delta" {
                    return None;
                }
                has_type = true;
            }
            b"sid" if sid.is_none() => sid = Some(u32::try_from(s.uint()?).ok()?),
            b"seq" if seq.is_none() => seq = Some(s.uint()?),
            b"msg" if msg.is_none() => msg = Some(s.msg()?),
            b"sid" | b"seq" | b"msg" => return None,
            _ => s.simple()?,
        }
        match s.next()? {
            b',' => {}
            b'}' => break,
            _ => return None,
        }
    }
    if s.i != frame.len() || !has_type {
        return None;
    }
    let m = msg?;
    Some(DeltaFields {
        sid: sid?,
        seq: seq?,
        ticker: ascii_str(m.ticker?),
        side: m.side?,
        price: m.price?,
        delta: m.delta?,
        ts_ms: m.ts_ms.unwrap_or(0),
        own: m.own.unwrap_or(false),
    })
}

/// A string's contents from [`Scan::string`] as `&str`, without a second validation pass.
#[inline(always)]
fn ascii_str(s: &[u8]) -> &str {
    debug_assert!(s.is_ascii());
    // SAFETY: `Scan::string` returns only runs of bytes in 0x20..=0x7F (it stops at, and
    // rejects, every byte ≥ 0x80): ASCII, hence valid UTF-8. (`str::from_utf8` here cost ~145
    // instructions per frame, 10% of the scan.)
    unsafe { std::str::from_utf8_unchecked(s) }
}

/// `msg.side`: `"yes"` is the YES bid side, `"no"` the NO bid side (YES asks).
#[inline(always)]
fn side_of(s: &[u8]) -> Option<BookSide> {
    match s {
        b"yes" => Some(BookSide::Bid),
        b"no" => Some(BookSide::Ask),
        _ => None,
    }
}

/// The `msg` members the result depends on; `None` = not seen.
struct Msg<'a> {
    ticker: Option<&'a [u8]>,
    price: Option<Price>,
    delta: Option<Qty>,
    side: Option<BookSide>,
    ts_ms: Option<i64>,
    own: Option<bool>,
}

/// Bytes that end or spoil a string run: `"`, `\`, controls below 0x20 and non-ASCII (≥ 0x80).
/// One high bit per such byte of the 8-byte little-endian word `w`; bits above the lowest may be
/// spurious (borrows), the lowest is exact, which is all [`Scan::string`] uses.
#[inline(always)]
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    below_space | (w & HIGH) | zero(w ^ (ONES * b'"' as u64)) | zero(w ^ (ONES * b'\\' as u64))
}

/// A cursor over the frame. Every read is bounds-checked; a failed read is `None`.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// The next byte, consumed.
    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    /// Consumes `want` or fails.
    #[inline(always)]
    fn byte(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// A string of safe bytes (0x20..=0x7F except `"` and `\`); returns its contents.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a [u8]> {
        self.byte(b'"')?;
        let start = self.i;
        let mut i = start;
        let b = self.b;
        loop {
            if let Some(chunk) = b.get(i..i + 8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(chunk);
                let m = special_bytes(u64::from_le_bytes(w));
                if m == 0 {
                    i += 8;
                    continue;
                }
                i += (m.trailing_zeros() / 8) as usize;
            } else {
                while let Some(&c) = b.get(i) {
                    if !(0x20..0x80).contains(&c) || c == b'"' || c == b'\\' {
                        break;
                    }
                    i += 1;
                }
            }
            // `i` is at the first special byte (or the end)
            if *b.get(i)? != b'"' {
                return None;
            }
            self.i = i + 1;
            return b.get(start..i);
        }
    }

    /// An unsigned integer: `0`, or 1 to 18 digits without a leading zero.
    #[inline(always)]
    fn uint(&mut self) -> Option<u64> {
        let first = *self.b.get(self.i)?;
        if first == b'0' {
            self.i += 1;
            return Some(0);
        }
        if !first.is_ascii_digit() {
            return None;
        }
        let start = self.i;
        let mut v = 0u64;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            if self.i - start == 18 {
                return None;
            }
            v = v * 10 + (c - b'0') as u64;
            self.i += 1;
        }
        Some(v)
    }

    /// Consumes `lit` exactly.
    #[inline(always)]
    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.i.checked_add(lit.len())?;
        (self.b.get(self.i..end)? == lit).then_some(())?;
        self.i = end;
        Some(())
    }

    /// Skips a simple value: a safe string, an unsigned integer, `true`, `false` or `null`.
    fn simple(&mut self) -> Option<()> {
        match *self.b.get(self.i)? {
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.uint().map(|_| ()),
        }
    }

    /// A `client_order_id` value: a string (`true`: our order) or `null` (`false`).
    #[inline(always)]
    fn client_order_id(&mut self) -> Option<bool> {
        if self.b.get(self.i) == Some(&b'n') {
            self.literal(b"null")?;
            Some(false)
        } else {
            self.string()?;
            Some(true)
        }
    }

    /// The `msg` object.
    fn msg(&mut self) -> Option<Msg<'a>> {
        self.byte(b'{')?;
        let mut m = Msg { ticker: None, price: None, delta: None, side: None, ts_ms: None, own: None };
        loop {
            let key = self.string()?;
            self.byte(b':')?;
            match key {
                b"market_ticker" if m.ticker.is_none() => m.ticker = Some(self.string()?),
                b"price_dollars" if m.price.is_none() => m.price = Some(Price::parse_bytes(self.string()?).ok()?),
                b"delta_fp" if m.delta.is_none() => m.delta = Some(Qty::parse_bytes(self.string()?).ok()?),
                b"side" if m.side.is_none() => m.side = Some(side_of(self.string()?)?),
                // ≤ 18 digits: always fits an i64
                b"ts_ms" if m.ts_ms.is_none() => m.ts_ms = Some(self.uint()? as i64),
                b"client_order_id" if m.own.is_none() => m.own = Some(self.client_order_id()?),
                b"market_ticker" | b"price_dollars" | b"delta_fp" | b"side" | b"ts_ms" | b"client_order_id" => {
                    return None
                }
                _ => self.simple()?,
            }
            match self.next()? {
                b',' => {}
                b'}' => return Some(m),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: &str = r#"{"type":"orderbook_delta","sid":1,"seq":10,"msg":{"market_ticker":"KXNEXTTEAMNBA-26LJAM-CLE","market_id":"7552b8d4-05de-4e41-84a8-97b0684da4a9","price_dollars":"0.7400","delta_fp":"-1.84","side":"no","ts":"2026-07-01T02:31:45.308599Z","ts_ms":1782873105308}}"#;

    #[test]
    fn reads_every_member_of_a_real_frame() {
        assert_eq!(
            scan_delta(FRAME.as_bytes()),
            Some(DeltaFields {
                sid: 1,
                seq: 10,
                ticker: "KXNEXTTEAMNBA-26LJAM-CLE",
                side: BookSide::Ask,
                price: Price(7400),
                delta: Qty(-184),
                ts_ms: 1782873105308,
                own: false,
            })
        );
    }

    #[test]
    fn special_bytes_finds_the_first_special_byte_exactly() {
        for pos in 0..8 {
            for bad in [b'"', b'\\', 0x00, 0x01, 0x1f, 0x80, 0xff] {
                for after in [b'a', 0x00, 0x01, b'"', 0xff] {
                    let mut w = [b'a'; 8];
                    w[pos] = bad;
                    if pos < 7 {
                        w[pos + 1] = after;
                    }
                    let m = special_bytes(u64::from_le_bytes(w));
                    assert_eq!((m.trailing_zeros() / 8) as usize, pos, "{w:?}");
                }
            }
        }
        for ok in [0x20u8, b'!', b'#', b'[', b']', 0x7f, b'~', b'0'] {
            assert_eq!(special_bytes(u64::from_le_bytes([ok; 8])), 0, "{ok:#x}");
        }
    }

    #[test]
    fn declines_what_it_is_not_sure_of() {
        let declined = [
            // whitespace, trailing bytes, truncation
            FRAME.replace(",\"sid\"", ", \"sid\""),
            format!("{FRAME} "),
            format!(" {FRAME}"),
            FRAME[..FRAME.len() - 1].to_string(),
            // escapes and non-ASCII in any string
            FRAME.replace("KXNEXT", "KX\\u004eEXT"),
            FRAME.replace("market_id", "market_\\u0069d"),
            FRAME.replace("2026-07", "2026\u{e9}07"),
            // numbers in other forms
            FRAME.replace("\"seq\":10", "\"seq\":010"),
            FRAME.replace("\"seq\":10", "\"seq\":10.0"),
            FRAME.replace("\"seq\":10", "\"seq\":1e1"),
            FRAME.replace("\"seq\":10", "\"seq\":-10"),
            FRAME.replace("\"seq\":10", "\"seq\":\"10\""),
            FRAME.replace("\"sid\":1", "\"sid\":4294967296"),
            FRAME.replace("1782873105308", "1782873105308000000"),
            FRAME.replace("1782873105308", "-1782873105308"),
            // duplicates, wrong types, missing members, bad values
            FRAME.replace("\"sid\":1,", "\"sid\":1,\"sid\":2,"),
            FRAME.replace("\"side\":\"no\"", "\"side\":\"no\",\"side\":\"yes\""),
            FRAME.replace("\"side\":\"no\"", "\"side\":\"No\""),
            FRAME.replace("\"side\":\"no\",", ""),
            FRAME.replace("\"price_dollars\":\"0.7400\"", "\"price_dollars\":0.74"),
            FRAME.replace("0.7400", "0.74001"),
            FRAME.replace("0.7400", "1.7400"),
            FRAME.replace("-1.84", "-1.845"),
            FRAME.replace("\"ts_ms\":1782873105308", "\"ts_ms\":null"),
            FRAME.replace("\"market_id\":\"7552b8d4-05de-4e41-84a8-97b0684da4a9\"", "\"market_id\":[1]"),
            FRAME.replace("\"market_id\":\"7552b8d4-05de-4e41-84a8-97b0684da4a9\"", "\"market_id\":1.5"),
            FRAME.replace("orderbook_delta", "orderbook_snapshot"),
            FRAME.replace("{\"type\":\"orderbook_delta\",", "{"),
        ];
        for f in &declined {
            assert_eq!(scan_delta(f.as_bytes()), None, "{f}");
        }
    }

    #[test]
    fn accepts_the_optional_and_reordered_members() {
        let own = FRAME.replace("\"side\":\"no\"", "\"side\":\"yes\",\"client_order_id\":\"my-1\",\"subaccount\":3");
        let d = scan_delta(own.as_bytes()).unwrap();
        assert_eq!((d.side, d.own), (BookSide::Bid, true));
        let null_coid = FRAME.replace("\"side\":\"no\"", "\"side\":\"no\",\"client_order_id\":null");
        assert!(!scan_delta(null_coid.as_bytes()).unwrap().own);
        let no_ts = FRAME.replace(",\"ts_ms\":1782873105308", "");
        assert_eq!(scan_delta(no_ts.as_bytes()).unwrap().ts_ms, 0);
        let reordered = r#"{"seq":10,"msg":{"side":"no","delta_fp":"-1.84","price_dollars":"0.7400","market_ticker":"KXNEXTTEAMNBA-26LJAM-CLE"},"sending_ts_ms":1782873105309,"id":null,"flag":true,"sid":1,"type":"orderbook_delta"}"#;
        let d = scan_delta(reordered.as_bytes()).unwrap();
        assert_eq!((d.sid, d.seq, d.price, d.delta, d.ts_ms), (1, 10, Price(7400), Qty(-184), 0));
    }
}
