//! A recording prepared for serving: its orderbook and trade frames parsed once into
//! [`Event`]s, with both price-scale renderings of every message ready, and the per-market grids.
//!
//! Only the current Kalshi shapes are understood (`kalshi-protocol.md` §1.7): snapshots with
//! `yes_dollars_fp` / `no_dollars_fp`, deltas with `price_dollars` / `delta_fp` / `side`. Frames of
//! other types (acks, tickers, fills, ...) are not served. Frames naming a market the header does
//! not list are skipped.

use crate::matching::MarketData;
use crate::recording::Recording;
use crate::universe::UniverseData;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use strike_sdk::book::{Book, BookSide};
use strike_sdk::grid::PriceGrid;
use strike_sdk::num::{Price, Qty};

/// A JSON object's members in their original order, values verbatim.
pub(crate) struct Ordered(pub Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, Box<RawValue>>()? {
                    v.push((k, val));
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl Ordered {
    fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    /// Renders the object, replacing the values of the keys `replace` names.
    fn render(&self, replace: &[(&str, &str)]) -> String {
        let mut s = String::from("{");
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&json_str(k));
            s.push(':');
            match replace.iter().find(|(rk, _)| rk == k) {
                Some((_, rv)) => s.push_str(rv),
                None => s.push_str(v.get()),
            }
        }
        s.push('}');
        s
    }
}

/// `s` as a JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// One frame ready to be re-addressed: the envelope members other than `type`, `sid`, `seq` and
/// `msg`, and `msg` rendered on both NO-price scales.
pub(crate) struct FrameParts {
    ty: &'static str,
    extra: Vec<(String, Box<RawValue>)>,
    /// `msg` with NO-side prices on the YES scale (`use_yes_price: true`).
    msg_yes_scale: String,
    /// `msg` with NO-side prices at NO prices (`use_yes_price: false`).
    msg_no_scale: String,
}

impl FrameParts {
    /// The frame for subscription `sid`: `{"type":..,"sid":..,"seq":..,<extra>,"msg":..}`
    /// (`seq` only when given).
    pub(crate) fn render(&self, sid: u32, seq: Option<u64>, yes_scale: bool) -> String {
        let msg = if yes_scale { &self.msg_yes_scale } else { &self.msg_no_scale };
        envelope(self.ty, sid, seq, &self.extra, msg)
    }
}

/// `{"type":ty,"sid":sid[,"seq":seq][,extra...],"msg":msg}`.
pub(crate) fn envelope(ty: &str, sid: u32, seq: Option<u64>, extra: &[(String, Box<RawValue>)], msg: &str) -> String {
    let mut s = String::with_capacity(msg.len() + 64);
    let _ = write!(s, "{{\"type\":\"{ty}\",\"sid\":{sid}");
    if let Some(q) = seq {
        let _ = write!(s, ",\"seq\":{q}");
    }
    for (k, v) in extra {
        let _ = write!(s, ",{}:{}", json_str(k), v.get());
    }
    let _ = write!(s, ",\"msg\":{msg}}}");
    s
}

/// What a served frame does.
pub(crate) enum EventKind {
    /// `orderbook_snapshot`: the book on the YES scale (`asks` = NO bids at `1 − q`).
    Snapshot { market: usize, bids: Vec<(Price, Qty)>, asks: Vec<(Price, Qty)>, frame: FrameParts },
    /// `orderbook_delta` on the YES-scale book.
    Delta { market: usize, side: BookSide, price: Price, delta: Qty, frame: FrameParts },
    /// `trade` (market `None` when the frame names none the header lists). `print` is the
    /// trade as a book trade for the exchange's matcher: `None` for a block trade (matched off
    /// the book) or a frame without a parseable `yes_price_dollars`, `count_fp` (> 0) and taker
    /// side.
    Trade { market: Option<usize>, print: Option<TradePrint>, frame: FrameParts },
}

/// A `trade` frame as a book trade, YES scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TradePrint {
    /// `Bid`: the taker bought YES (`taker_outcome_side: "yes"`, `taker_book_side: "bid"`), it
    /// hit asks; `Ask`: it sold YES (bought NO), it hit bids.
    pub taker_side: BookSide,
    /// `yes_price_dollars`.
    pub price: Price,
    /// `count_fp`, hundredths.
    pub qty: Qty,
}

/// Reads the book trade of a `trade` msg: `taker_outcome_side` (else `taker_book_side`, else the
/// deprecated `taker_side`), `yes_price_dollars`, `count_fp`; `None` for block trades and for
/// anything missing or malformed.
fn trade_print(msg: &Ordered) -> Option<TradePrint> {
    if msg.get("is_block_trade").is_some_and(|v| v.get() == "true") {
        return None;
    }
    let side = match (
        msg.get("taker_outcome_side").and_then(str_of),
        msg.get("taker_book_side").and_then(str_of),
        msg.get("taker_side").and_then(str_of),
    ) {
        (Some(o), _, _) | (None, None, Some(o)) => match o.as_str() {
            "yes" => BookSide::Bid,
            "no" => BookSide::Ask,
            _ => return None,
        },
        (None, Some(b), _) => match b.as_str() {
            "bid" => BookSide::Bid,
            "ask" => BookSide::Ask,
            _ => return None,
        },
        (None, None, None) => return None,
    };
    let price = Price::parse(&msg.get("yes_price_dollars").and_then(str_of)?).ok()?;
    let qty = Qty::parse(&msg.get("count_fp").and_then(str_of)?).ok().filter(|q| q.0 > 0)?;
    Some(TradePrint { taker_side: side, price, qty })
}

/// One served frame and its receive time.
pub(crate) struct Event {
    pub recv_ns: u64,
    pub kind: EventKind,
}

impl Event {
    /// The event as market data for the exchange's matcher, YES scale, with its market's header
    /// index: snapshots and deltas always, trades when they are book trades of a listed market.
    pub(crate) fn market_data(&self) -> Option<(usize, MarketData)> {
        match &self.kind {
            EventKind::Snapshot { market, bids, asks, .. } => {
                Some((*market, MarketData::Snapshot { bids: bids.clone(), asks: asks.clone() }))
            }
            EventKind::Delta { market, side, price, delta, .. } => {
                Some((*market, MarketData::Delta { side: *side, price: *price, delta: *delta }))
            }
            EventKind::Trade { market, print, .. } => {
                let (m, t) = ((*market)?, (*print)?);
                Some((m, MarketData::Trade { taker_side: t.taker_side, price: t.price, qty: t.qty }))
            }
        }
    }
}

/// A recording prepared for serving.
pub(crate) struct ReplayData {
    pub tickers: Vec<String>,
    index: HashMap<String, usize>,
    pub grids: Vec<PriceGrid>,
    /// Each market's `market_id`, from the first frame that carries one.
    pub market_ids: Vec<Option<String>>,
    pub events: Vec<Event>,
    /// `recv_ns` of the first event (the replay clock's origin).
    pub first_ns: u64,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
}

fn bad(i: usize, msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("recording frame {i}: {msg}"))
}

fn str_of(v: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(v.get()).ok()
}

fn parse_levels(v: Option<&RawValue>) -> Result<Vec<(Price, Qty)>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let levels: Vec<(String, String)> =
        serde_json::from_str(v.get()).map_err(|e| format!("levels are not [[price, count], ...] strings: {e}"))?;
    levels
        .iter()
        .map(|(p, q)| {
            let price = Price::parse(p).map_err(|e| format!("price {p:?}: {e:?}"))?;
            let qty = Qty::parse(q).map_err(|e| format!("count {q:?}: {e:?}"))?;
            Ok((price, qty))
        })
        .collect()
}

/// `[["p","q"],...]` ascending by price.
pub(crate) fn render_levels(levels: &[(Price, Qty)]) -> String {
    let mut v = levels.to_vec();
    v.sort_by_key(|l| l.0);
    let mut s = String::from("[");
    for (i, (p, q)) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "[\"{}\",\"{}\"]", p.to_fixed_str().as_str(), q.to_fixed_str().as_str());
    }
    s.push(']');
    s
}

fn complement(levels: &[(Price, Qty)]) -> Vec<(Price, Qty)> {
    levels.iter().map(|&(p, q)| (p.complement(), q)).collect()
}

impl ReplayData {
    pub(crate) fn new(rec: &Recording) -> io::Result<ReplayData> {
        let u = UniverseData::from_header(&rec.header).map_err(|errs| {
            let list: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            io::Error::new(io::ErrorKind::InvalidData, format!("recording header: {}", list.join("; ")))
        })?;
        let tickers: Vec<String> = rec.header.markets.iter().map(|m| m.ticker.clone()).collect();
        let index: HashMap<String, usize> = tickers.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();
        let grids = u.markets.iter().map(|m| m.grid).collect();
        let yes_scale = rec.header.yes_price_scale;
        let mut data = ReplayData {
            market_ids: vec![None; tickers.len()],
            tickers,
            index,
            grids,
            events: Vec::new(),
            first_ns: rec.frames.first().map_or(0, |f| f.recv_ns),
        };
        for (i, f) in rec.frames.iter().enumerate() {
            let env: Envelope<'_> =
                serde_json::from_str(&f.text).map_err(|e| bad(i, format!("not a Kalshi frame: {e}")))?;
            let ty: &'static str = match env.ty {
                "orderbook_snapshot" => "orderbook_snapshot",
                "orderbook_delta" => "orderbook_delta",
                "trade" => "trade",
                _ => continue,
            };
            let top: Ordered = serde_json::from_str(&f.text).map_err(|e| bad(i, e))?;
            let msg_raw = top.get("msg").ok_or_else(|| bad(i, format!("{ty} without msg")))?;
            let msg: Ordered = serde_json::from_str(msg_raw.get()).map_err(|e| bad(i, format!("msg: {e}")))?;
            let extra: Vec<(String, Box<RawValue>)> = top
                .0
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "type" | "sid" | "seq" | "msg"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let market = msg.get("market_ticker").and_then(str_of).and_then(|t| data.index.get(&t).copied());
            if let (Some(m), Some(id)) = (market, msg.get("market_id").and_then(str_of)) {
                data.market_ids[m].get_or_insert(id);
            }
            let kind = match ty {
                "orderbook_snapshot" => {
                    let Some(market) = market else { continue };
                    let yes = parse_levels(msg.get("yes_dollars_fp")).map_err(|e| bad(i, e))?;
                    let no = parse_levels(msg.get("no_dollars_fp")).map_err(|e| bad(i, e))?;
                    // The NO ladder on both scales, and the YES-scale asks for the book.
                    let (no_yes_scale, no_no_scale) =
                        if yes_scale { (no.clone(), complement(&no)) } else { (complement(&no), no.clone()) };
                    let render = |levels: &Vec<(Price, Qty)>| {
                        if msg.get("no_dollars_fp").is_some() {
                            msg.render(&[("no_dollars_fp", &render_levels(levels))])
                        } else {
                            msg.render(&[])
                        }
                    };
                    let frame = FrameParts {
                        ty,
                        extra,
                        msg_yes_scale: render(&no_yes_scale),
                        msg_no_scale: render(&no_no_scale),
                    };
                    EventKind::Snapshot { market, bids: yes, asks: no_yes_scale, frame }
                }
                "orderbook_delta" => {
                    let Some(market) = market else { continue };
                    let field =
                        |k: &str| msg.get(k).and_then(str_of).ok_or_else(|| bad(i, format!("delta without {k}")));
                    let (side, price_s, delta_s) = (field("side")?, field("price_dollars")?, field("delta_fp")?);
                    let price = Price::parse(&price_s).map_err(|e| bad(i, format!("price {price_s:?}: {e:?}")))?;
                    let delta = Qty::parse(&delta_s).map_err(|e| bad(i, format!("delta {delta_s:?}: {e:?}")))?;
                    let (side, yes_price, msg_yes_scale, msg_no_scale) = match side.as_str() {
                        "yes" => (BookSide::Bid, price, msg.render(&[]), msg.render(&[])),
                        "no" => {
                            let other = json_str(price.complement().to_fixed_str().as_str());
                            let flipped = msg.render(&[("price_dollars", &other)]);
                            if yes_scale {
                                (BookSide::Ask, price, msg.render(&[]), flipped)
                            } else {
                                (BookSide::Ask, price.complement(), flipped, msg.render(&[]))
                            }
                        }
                        s => return Err(bad(i, format!("delta side {s:?}"))),
                    };
                    let frame = FrameParts { ty, extra, msg_yes_scale, msg_no_scale };
                    EventKind::Delta { market, side, price: yes_price, delta, frame }
                }
                _ => {
                    let plain = msg.render(&[]);
                    let frame = FrameParts { ty, extra, msg_yes_scale: plain.clone(), msg_no_scale: plain };
                    EventKind::Trade { market, print: trade_print(&msg), frame }
                }
            };
            data.events.push(Event { recv_ns: f.recv_ns, kind });
        }
        if let Some(e) = data.events.first() {
            data.first_ns = e.recv_ns;
        }
        Ok(data)
    }

    /// The index of `ticker` in the header's market list.
    pub(crate) fn market(&self, ticker: &str) -> Option<usize> {
        self.index.get(ticker).copied()
    }

    /// The `msg` of an `orderbook_snapshot` of `book` (market `m`), NO side on the requested
    /// scale; empty sides are omitted, levels ascend by price.
    pub(crate) fn snapshot_msg(&self, m: usize, book: &Book, yes_scale: bool) -> String {
        let collect = |side: BookSide| {
            let mut v = Vec::new();
            book.for_each_level(side, |p, q| {
                v.push((p, q));
                true
            });
            v
        };
        let bids = collect(BookSide::Bid);
        let asks = collect(BookSide::Ask);
        let no = if yes_scale { asks } else { complement(&asks) };
        let mut s = format!("{{\"market_ticker\":{}", json_str(&self.tickers[m]));
        if let Some(id) = &self.market_ids[m] {
            let _ = write!(s, ",\"market_id\":{}", json_str(id));
        }
        if !bids.is_empty() {
            let _ = write!(s, ",\"yes_dollars_fp\":{}", render_levels(&bids));
        }
        if !no.is_empty() {
            let _ = write!(s, ",\"no_dollars_fp\":{}", render_levels(&no));
        }
        s.push('}');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Frame, Header, MarketRecord, FORMAT_VERSION};

    fn rec(yes_price_scale: bool, frames: &[&str]) -> Recording {
        Recording {
            header: Header {
                strike_recording: FORMAT_VERSION,
                source: "test".into(),
                yes_price_scale,
                markets: vec![MarketRecord { ticker: "M".into(), ..Default::default() }],
                events: vec![],
            },
            frames: frames
                .iter()
                .enumerate()
                .map(|(i, t)| Frame { recv_ns: 100 + i as u64, text: t.to_string() })
                .collect(),
        }
    }

    #[test]
    fn trades_are_book_prints_unless_block_trades_or_incomplete() {
        let frames = [
            r#"{"type":"trade","sid":2,"msg":{"market_ticker":"M","yes_price_dollars":"0.36","count_fp":"1.50","taker_outcome_side":"no","taker_book_side":"ask"}}"#,
            r#"{"type":"trade","sid":2,"msg":{"market_ticker":"M","yes_price_dollars":"0.3600","count_fp":"2.00","taker_book_side":"bid"}}"#,
            r#"{"type":"trade","sid":2,"msg":{"market_ticker":"M","yes_price_dollars":"0.3600","count_fp":"2.00","taker_side":"yes","is_block_trade":true}}"#,
            r#"{"type":"trade","sid":2,"msg":{"market_ticker":"M","yes_price_dollars":"0.3600","count_fp":"0.00","taker_side":"yes"}}"#,
            r#"{"type":"trade","sid":2,"msg":{"market_ticker":"OTHER","yes_price_dollars":"0.3600","count_fp":"1.00","taker_side":"yes"}}"#,
        ];
        let d = ReplayData::new(&rec(false, &frames)).unwrap();
        let got: Vec<Option<(usize, MarketData)>> = d.events.iter().map(Event::market_data).collect();
        let print = |taker_side, q| Some((0, MarketData::Trade { taker_side, price: Price(3600), qty: Qty(q) }));
        assert_eq!(got, vec![print(BookSide::Ask, 150), print(BookSide::Bid, 200), None, None, None]);
    }

    #[test]
    fn both_scales_are_rendered_and_key_order_is_kept() {
        let frames = [
            r#"{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}"#,
            r#"{"type":"orderbook_snapshot","sid":4,"seq":9,"msg":{"market_ticker":"M","market_id":"u-1","yes_dollars_fp":[["0.4000","10.00"]],"no_dollars_fp":[["0.3000","5.00"],["0.5000","1.50"]]}}"#,
            r#"{"type":"orderbook_delta","sid":4,"seq":10,"msg":{"market_ticker":"M","price_dollars":"0.300","delta_fp":"-5.00","side":"no","ts_ms":7}}"#,
            r#"{"type":"trade","sid":5,"msg":{"market_ticker":"M","yes_price_dollars":"0.45"}}"#,
            r#"{"type":"orderbook_delta","sid":4,"seq":11,"msg":{"market_ticker":"OTHER","price_dollars":"0.3","delta_fp":"1.00","side":"no"}}"#,
        ];
        let d = ReplayData::new(&rec(false, &frames)).unwrap();
        assert_eq!(d.events.len(), 3);
        assert_eq!(d.first_ns, 101);
        assert_eq!(d.market_ids[0].as_deref(), Some("u-1"));
        let EventKind::Snapshot { bids, asks, frame, .. } = &d.events[0].kind else { panic!() };
        assert_eq!(bids, &[(Price(4000), Qty(1000))]);
        assert_eq!(asks, &[(Price(7000), Qty(500)), (Price(5000), Qty(150))]);
        assert_eq!(
            frame.render(2, Some(1), false),
            r#"{"type":"orderbook_snapshot","sid":2,"seq":1,"msg":{"market_ticker":"M","market_id":"u-1","yes_dollars_fp":[["0.4000","10.00"]],"no_dollars_fp":[["0.3000","5.00"],["0.5000","1.50"]]}}"#
        );
        assert!(frame.render(2, Some(1), true).ends_with(r#""no_dollars_fp":[["0.5000","1.50"],["0.7000","5.00"]]}}"#));
        let EventKind::Delta { side, price, delta, frame, .. } = &d.events[1].kind else { panic!() };
        assert_eq!((*side, *price, *delta), (BookSide::Ask, Price(7000), Qty(-500)));
        assert_eq!(
            frame.render(3, Some(2), true),
            r#"{"type":"orderbook_delta","sid":3,"seq":2,"msg":{"market_ticker":"M","price_dollars":"0.7000","delta_fp":"-5.00","side":"no","ts_ms":7}}"#
        );
        assert!(frame.render(3, Some(2), false).contains(r#""price_dollars":"0.300""#));
        let EventKind::Trade { frame, market, print } = &d.events[2].kind else { panic!() };
        assert_eq!(*market, Some(0));
        assert_eq!(*print, None, "no count_fp, no taker side: not a book trade");
        assert_eq!(
            frame.render(7, None, false),
            r#"{"type":"trade","sid":7,"msg":{"market_ticker":"M","yes_price_dollars":"0.45"}}"#
        );

        // A YES-scale recording converts the other way.
        let y = ReplayData::new(&rec(true, &frames[1..3])).unwrap();
        let EventKind::Delta { price, frame, .. } = &y.events[1].kind else { panic!() };
        assert_eq!(*price, Price(3000));
        assert!(frame.render(1, Some(2), false).contains(r#""price_dollars":"0.7000""#));

        let mut book = Book::new(d.grids[0]);
        book.replace([(Price(4000), Qty(1000))], [(Price(7000), Qty(500)), (Price(5000), Qty(150))]).unwrap();
        assert_eq!(
            d.snapshot_msg(0, &book, false),
            r#"{"market_ticker":"M","market_id":"u-1","yes_dollars_fp":[["0.4000","10.00"]],"no_dollars_fp":[["0.3000","5.00"],["0.5000","1.50"]]}"#
        );
        book.clear();
        assert_eq!(d.snapshot_msg(0, &book, true), r#"{"market_ticker":"M","market_id":"u-1"}"#);

        let broken =
            ReplayData::new(&rec(false, &[r#"{"type":"orderbook_delta","msg":{"market_ticker":"M","side":"yes"}}"#]));
        assert!(broken.err().unwrap().to_string().contains("recording frame 0: delta without price_dollars"));
    }
}
