//! Parsing of Kalshi WebSocket frames into fixed-point, interned [`Parsed`] messages.
//!
//! simd-json's stage 1/2 fills a reused [`Tape`] from a reused, padded input buffer
//! ([`simd_json::fill_tape_padded`] with reused [`Buffers`]), and this module walks the flat tape
//! directly: no DOM, no serde visitor, no allocation once the buffers have grown to the largest
//! frame. Dispatch is on the `type` string (perf-notes: a serde tagged enum doubles parse cost).
//!
//! Shapes follow Kalshi's AsyncAPI (`kalshi-protocol.md` §1.7, current fixed-point format).
//! A required field that is missing or malformed is a [`ParseFault`], never a silent zero;
//! unknown message types are reported as [`Parsed::Unknown`] for counting. Tickers are resolved
//! to [`MarketId`]s through the subscription's [`MarketIndex`]; an unknown ticker is a fault.
//!
//! `orderbook_delta` frames, the bulk of the feed, first go through a hand-written scanner
//! ([`super::fastpath`]: 91 ns against 366 ns per recorded delta, `--bench parse_fast`) that
//! takes only the exact shapes Kalshi sends and hands everything else to the simd-json path;
//! both give the same [`Parsed`] for every frame the scanner takes
//! ([`FrameParser::cross_check`], used by the tests and the `fuzz/` target).
//!
//! NO-side prices: with `use_yes_price: true` (our subscriptions) NO levels arrive on the YES
//! scale; recordings made with Kalshi's legacy default carry NO prices and are converted here
//! (`yes = 1 − no`, §2.3). Either way [`Parsed`] is on the YES scale: NO bids are YES asks.

use super::fastpath;
use simd_json::{Buffers, Node, StaticNode, Tape};
use strike_sdk::book::BookSide;
use strike_sdk::grid::PriceGrid;
use strike_sdk::market::MarketId;
use strike_sdk::num::{Money, Price, Qty};

/// Ticker → id lookup used while parsing. Implemented by the engine's universe.
pub trait MarketIndex {
    /// The id of `ticker`, if subscribed. Must not allocate.
    fn id_of(&self, ticker: &str) -> Option<MarketId>;
}

// The `fuzz/` crate compiles this file on its own (with cargo-fuzz's `--cfg fuzzing`) so that it
// need not build the whole engine; it has no strike-sim. The allow covers that cfg name.
#[allow(unexpected_cfgs)]
mod universe_index {
    #[cfg(not(fuzzing))]
    impl super::MarketIndex for strike_sim::universe::UniverseData {
        #[inline]
        fn id_of(&self, ticker: &str) -> Option<super::MarketId> {
            strike_sim::universe::UniverseData::id_of(self, ticker)
        }
    }
}

/// Why a frame could not be used. Counted per kind; the frame is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseFault {
    /// Not valid JSON (or not an object).
    Json,
    /// A field the message type requires is absent.
    MissingField(&'static str),
    /// A field is present with the wrong JSON type or a malformed fixed-point value.
    BadField(&'static str),
    /// The market ticker is not in the subscribed universe.
    UnknownMarket,
    /// A snapshot with more levels than the parser's level buffer holds.
    TooManyLevels,
    /// The frame is larger than the maximum frame size.
    TooLarge,
}

impl ParseFault {
    /// Stable snake-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ParseFault::Json => "json",
            ParseFault::MissingField(_) => "missing_field",
            ParseFault::BadField(_) => "bad_field",
            ParseFault::UnknownMarket => "unknown_market",
            ParseFault::TooManyLevels => "too_many_levels",
            ParseFault::TooLarge => "frame_too_large",
        }
    }
}

/// The channel a `subscribed` ack is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// `orderbook_delta` (sequenced).
    OrderbookDelta,
    /// `trade`.
    Trade,
    /// `ticker`.
    Ticker,
    /// `fill`.
    Fill,
    /// `user_orders`.
    UserOrders,
    /// `market_lifecycle_v2`.
    Lifecycle,
    /// Any other channel name.
    Other,
}

/// What a `market_lifecycle_v2` message says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleKind {
    /// `created`.
    Created,
    /// `activated` (or `deactivated` with `is_deactivated:false`).
    Activated,
    /// `deactivated`.
    Deactivated,
    /// `close_date_updated`.
    CloseDateUpdated,
    /// `determined` (result known, not final).
    Determined,
    /// `settled`.
    Settled,
    /// `price_level_structure_updated`: the grid changed; resnapshot.
    PriceLevelStructureUpdated,
    /// `metadata_updated` or anything else.
    Other,
}

/// A parsed frame, on the YES scale, with tickers interned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Parsed {
    /// `orderbook_snapshot`; the levels are in [`FrameParser::levels`].
    Snapshot {
        /// Subscription id.
        sid: u32,
        /// Sequence number.
        seq: u64,
        /// Market.
        market: MarketId,
    },
    /// `orderbook_delta`.
    Delta {
        /// Subscription id.
        sid: u32,
        /// Sequence number.
        seq: u64,
        /// Market.
        market: MarketId,
        /// YES bid (`side:"yes"`) or YES ask (`side:"no"`).
        side: BookSide,
        /// YES-scale price.
        price: Price,
        /// Signed size change.
        delta: Qty,
        /// Exchange time, unix ms (0 when absent: it is optional on deltas).
        ts_ms: i64,
        /// The frame carries a `client_order_id`: our own order caused it.
        own: bool,
    },
    /// `trade`.
    Trade {
        /// Market.
        market: MarketId,
        /// Trade price, YES scale.
        yes_price: Price,
        /// Size.
        qty: Qty,
        /// Taker's book side (bid = bought YES).
        taker_side: BookSide,
        /// Off-book block trade.
        is_block: bool,
        /// Exchange time, unix ms.
        ts_ms: i64,
    },
    /// `ticker` (top of book summary).
    Ticker {
        /// Market.
        market: MarketId,
        /// Best YES bid, if any.
        yes_bid: Option<Price>,
        /// Best YES ask, if any.
        yes_ask: Option<Price>,
        /// Exchange time, unix ms.
        ts_ms: i64,
    },
    /// `fill` (private).
    Fill {
        /// Market.
        market: MarketId,
        /// The order's book side.
        side: BookSide,
        /// Price, YES scale.
        yes_price: Price,
        /// Size.
        qty: Qty,
        /// Fee charged, micro-dollars.
        fee: Money,
        /// Taker fill.
        is_taker: bool,
        /// Exchange time, unix ms.
        ts_ms: i64,
    },
    /// `user_order` (private).
    UserOrder {
        /// Market.
        market: MarketId,
        /// Remaining size.
        remaining: Qty,
        /// Filled size.
        filled: Qty,
    },
    /// `market_lifecycle_v2` (and `event_lifecycle` / `event_fee_update`, reported as `Other`
    /// without a market).
    Lifecycle {
        /// Market, when the message names one we subscribed.
        market: Option<MarketId>,
        /// What happened.
        kind: LifecycleKind,
        /// Settlement result for `determined`: `Some(true)` = YES.
        result_yes: Option<bool>,
        /// The new grid, from `price_ranges` (`created`, `price_level_structure_updated`).
        grid: Option<PriceGrid>,
    },
    /// `subscribed` ack.
    Subscribed {
        /// Command id.
        id: u64,
        /// New subscription id.
        sid: u32,
        /// Channel.
        channel: Channel,
    },
    /// `ok` ack (shares the sid's seq counter when it carries one).
    Ok {
        /// Command id.
        id: u64,
        /// Subscription id, if present.
        sid: Option<u32>,
        /// Sequence number, if present.
        seq: Option<u64>,
    },
    /// `unsubscribed` ack.
    Unsubscribed {
        /// Subscription id, if present.
        sid: Option<u32>,
        /// Sequence number, if present.
        seq: Option<u64>,
    },
    /// `error` reply.
    Error {
        /// Command id.
        id: u64,
        /// Kalshi error code (10, 17, 25 are terminal for the subscription).
        code: u32,
    },
    /// A message type this engine does not use; the index into [`UNKNOWN_TYPE`] buckets is the
    /// caller's concern.
    Unknown,
}

/// The name reported for frames of an unknown `type`.
pub const UNKNOWN_TYPE: &str = "unknown";

/// One level of a snapshot, YES scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Bid (YES bid) or ask (NO bid seen as YES ask).
    pub side: BookSide,
    /// YES-scale price.
    pub price: Price,
    /// Size.
    pub qty: Qty,
}

/// Largest frame accepted, bytes. A full 10,001-level snapshot of both sides is ~500 KB.
pub const MAX_FRAME: usize = 1 << 20;

/// Reusable parser state: padded input buffer, simd-json buffers, tape, snapshot levels.
pub struct FrameParser {
    input: Vec<u8>,
    buffers: Buffers,
    tape: Tape<'static>,
    levels: Vec<Level>,
    max_levels: usize,
    yes_price_scale: bool,
    envelope_seq: Option<(u32, u64)>,
}

impl FrameParser {
    /// A parser for frames whose NO levels are on the YES scale when `yes_price_scale` (our
    /// subscriptions send `use_yes_price: true`), or at NO prices otherwise (legacy
    /// recordings). Pre-allocates for frames of `expected_frame` bytes and snapshots of
    /// `max_levels` levels (both sides).
    pub fn new(yes_price_scale: bool, expected_frame: usize, max_levels: usize) -> FrameParser {
        FrameParser {
            input: Vec::with_capacity(expected_frame + simd_json::INPUT_PADDING),
            buffers: Buffers::new(expected_frame),
            tape: Tape(Vec::with_capacity(expected_frame / 2 + 16)),
            levels: Vec::with_capacity(max_levels),
            max_levels,
            yes_price_scale,
            envelope_seq: None,
        }
    }

    /// The `(sid, seq)` of the last parsed frame's envelope, when it had both — also when the
    /// message itself was a fault, so the sequencer can account for its number.
    #[inline]
    pub fn envelope_seq(&self) -> Option<(u32, u64)> {
        self.envelope_seq
    }

    /// Grows every buffer to what a frame of up to `max_frame` bytes can need, by parsing the
    /// densest possible frame of that size (`[0,0,...]`: one value per two bytes), so that no
    /// real frame up to that size allocates later. Call once at start-up.
    pub fn warm_up(&mut self, max_frame: usize) {
        struct NoMarkets;
        impl MarketIndex for NoMarkets {
            fn id_of(&self, _: &str) -> Option<MarketId> {
                None
            }
        }
        let n = (max_frame.clamp(2, MAX_FRAME) - 1) / 2;
        let mut dense = Vec::with_capacity(2 * n + 2);
        dense.push(b'[');
        for i in 0..n {
            if i > 0 {
                dense.push(b',');
            }
            dense.push(b'0');
        }
        dense.push(b']');
        let _ = self.parse(&dense, &NoMarkets);
        self.input.reserve(max_frame + simd_json::INPUT_PADDING);
    }

    /// Levels of the last [`Parsed::Snapshot`].
    #[inline]
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// The message `type` of the last parsed frame is returned alongside the message, borrowed
    /// from a static table (for counting without allocation).
    ///
    /// Parses one frame: an `orderbook_delta` of the usual shape through the fast path
    /// ([`FrameParser::parse_fast`]), anything else through simd-json
    /// ([`FrameParser::parse_simd`]); the result is the same either way. Allocation-free once
    /// the buffers have grown to the largest frame seen.
    #[inline]
    pub fn parse(&mut self, frame: &[u8], index: &impl MarketIndex) -> (&'static str, Result<Parsed, ParseFault>) {
        match self.parse_fast(frame, index) {
            Some(out) => out,
            None => self.parse_simd(frame, index),
        }
    }

    /// The fast path alone: `Some` when the hand scanner ([`super::fastpath::scan_delta`]) took
    /// `frame` as an `orderbook_delta`, with exactly what [`FrameParser::parse_simd`] returns for
    /// it (a [`Parsed::Delta`], or [`ParseFault::UnknownMarket`] for a ticker `index` lacks), and
    /// the same [`FrameParser::envelope_seq`] and (empty) [`FrameParser::levels`]. `None` when
    /// the scanner is not sure of the frame; the parser's state is then untouched.
    #[inline]
    pub fn parse_fast(
        &mut self,
        frame: &[u8],
        index: &impl MarketIndex,
    ) -> Option<(&'static str, Result<Parsed, ParseFault>)> {
        if frame.len() > MAX_FRAME {
            return None;
        }
        let d = fastpath::scan_delta(frame)?;
        self.levels.clear();
        self.envelope_seq = Some((d.sid, d.seq));
        let r = match index.id_of(d.ticker) {
            Some(market) => Ok(Parsed::Delta {
                sid: d.sid,
                seq: d.seq,
                market,
                side: d.side,
                price: to_yes(self.yes_price_scale, d.side, d.price),
                delta: d.delta,
                ts_ms: d.ts_ms,
                own: d.own,
            }),
            None => Err(ParseFault::UnknownMarket),
        };
        Some(("orderbook_delta", r))
    }

    /// Runs `frame` through both paths and compares everything a caller can see: the type name,
    /// the result, [`FrameParser::envelope_seq`] and [`FrameParser::levels`]. `Ok(true)`: the
    /// fast path took the frame and agrees; `Ok(false)`: it declined (nothing to compare);
    /// `Err`: the two disagree, with both outcomes in the message — a bug in the fast path.
    /// For the differential tests and the `fuzz/` target; allocates only to report a mismatch.
    pub fn cross_check(&mut self, frame: &[u8], index: &impl MarketIndex) -> Result<bool, String> {
        let Some((f_ty, f_r)) = self.parse_fast(frame, index) else { return Ok(false) };
        let (f_env, f_levels) = (self.envelope_seq, self.levels.len());
        let (s_ty, s_r) = self.parse_simd(frame, index);
        let (s_env, s_levels) = (self.envelope_seq, self.levels.len());
        if (f_ty, f_r, f_env, f_levels) == (s_ty, s_r, s_env, s_levels) {
            Ok(true)
        } else {
            Err(format!(
                "fast path {:?} differs from simd-json {:?} on {:?}",
                (f_ty, f_r, f_env, f_levels),
                (s_ty, s_r, s_env, s_levels),
                String::from_utf8_lossy(frame)
            ))
        }
    }

    /// The general path alone: simd-json's tape, walked for every message type (the reference
    /// the fast path is checked against). Same contract as [`FrameParser::parse`].
    pub fn parse_simd(&mut self, frame: &[u8], index: &impl MarketIndex) -> (&'static str, Result<Parsed, ParseFault>) {
        if frame.len() > MAX_FRAME {
            return (UNKNOWN_TYPE, Err(ParseFault::TooLarge));
        }
        self.input.clear();
        self.input.extend_from_slice(frame);
        self.input.resize(frame.len() + simd_json::INPUT_PADDING, 0);
        self.levels.clear();
        self.envelope_seq = None;
        let mut tape: Tape<'_> = std::mem::replace(&mut self.tape, Tape(Vec::new())).reset();
        let out = match simd_json::fill_tape_padded(&mut self.input, frame.len(), &mut self.buffers, &mut tape) {
            Ok(()) => {
                let mut w = Walk {
                    levels: &mut self.levels,
                    max_levels: self.max_levels,
                    yes_scale: self.yes_price_scale,
                    seq_out: &mut self.envelope_seq,
                };
                w.message(&tape.0, index)
            }
            Err(_) => (UNKNOWN_TYPE, Err(ParseFault::Json)),
        };
        self.tape = tape.reset();
        out
    }
}

/// Index just past the value starting at `i`.
#[inline]
fn skip(t: &[Node<'_>], i: usize) -> usize {
    match t.get(i) {
        Some(Node::Object { count, .. }) | Some(Node::Array { count, .. }) => i + 1 + count,
        _ => i + 1,
    }
}

/// Iterates `(key, value_index)` of the object at `obj`.
#[inline]
fn fields<'t, 'i>(t: &'t [Node<'i>], obj: usize) -> impl Iterator<Item = (&'i str, usize)> + 't {
    let len = match t.get(obj) {
        Some(Node::Object { len, .. }) => *len,
        _ => 0,
    };
    let mut i = obj + 1;
    (0..len).filter_map(move |_| {
        let key = match t.get(i) {
            Some(Node::String(k)) => *k,
            _ => return None,
        };
        let v = i + 1;
        i = skip(t, v);
        Some((key, v))
    })
}

#[inline]
fn as_str<'i>(t: &[Node<'i>], i: usize) -> Option<&'i str> {
    match t.get(i) {
        Some(Node::String(s)) => Some(*s),
        _ => None,
    }
}

#[inline]
fn as_i64(t: &[Node<'_>], i: usize) -> Option<i64> {
    match t.get(i) {
        Some(Node::Static(StaticNode::I64(v))) => Some(*v),
        Some(Node::Static(StaticNode::U64(v))) => i64::try_from(*v).ok(),
        _ => None,
    }
}

#[inline]
fn as_bool(t: &[Node<'_>], i: usize) -> Option<bool> {
    match t.get(i) {
        Some(Node::Static(StaticNode::Bool(b))) => Some(*b),
        _ => None,
    }
}

#[inline]
fn is_null(t: &[Node<'_>], i: usize) -> bool {
    matches!(t.get(i), Some(Node::Static(StaticNode::Null)))
}

struct Walk<'a> {
    levels: &'a mut Vec<Level>,
    max_levels: usize,
    yes_scale: bool,
    seq_out: &'a mut Option<(u32, u64)>,
}

/// Required-field helpers: missing → `MissingField`, wrong type → `BadField`.
macro_rules! req {
    ($opt:expr, $name:literal) => {
        match $opt {
            Some(v) => v,
            None => return Err(ParseFault::MissingField($name)),
        }
    };
}

impl Walk<'_> {
    fn message(&mut self, t: &[Node<'_>], index: &impl MarketIndex) -> (&'static str, Result<Parsed, ParseFault>) {
        if !matches!(t.first(), Some(Node::Object { .. })) {
            return (UNKNOWN_TYPE, Err(ParseFault::Json));
        }
        let (mut ty, mut sid, mut seq, mut id, mut msg) = (None, None, None, None, None);
        for (k, v) in fields(t, 0) {
            match k {
                "type" => ty = as_str(t, v),
                "sid" => sid = Some(v),
                "seq" => seq = Some(v),
                "id" => id = Some(v),
                "msg" => msg = Some(v),
                _ => {}
            }
        }
        let Some(ty) = ty else { return (UNKNOWN_TYPE, Err(ParseFault::MissingField("type"))) };
        let int = |i: Option<usize>| i.and_then(|i| as_i64(t, i));
        let sid_v = int(sid).and_then(|v| u32::try_from(v).ok());
        let seq_v = int(seq).and_then(|v| u64::try_from(v).ok());
        *self.seq_out = sid_v.zip(seq_v);
        let name: &'static str = match ty {
            "orderbook_snapshot" => "orderbook_snapshot",
            "orderbook_delta" => "orderbook_delta",
            "trade" => "trade",
            "ticker" => "ticker",
            "fill" => "fill",
            "user_order" => "user_order",
            "market_lifecycle_v2" => "market_lifecycle_v2",
            "event_lifecycle" => "event_lifecycle",
            "event_fee_update" => "event_fee_update",
            "subscribed" => "subscribed",
            "ok" => "ok",
            "unsubscribed" => "unsubscribed",
            "error" => "error",
            _ => return (UNKNOWN_TYPE, Ok(Parsed::Unknown)),
        };
        let r = (|| -> Result<Parsed, ParseFault> {
            match name {
                "orderbook_snapshot" => {
                    let sid = req!(sid_v, "sid");
                    let seq = req!(seq_v, "seq");
                    let m = req!(msg, "msg");
                    self.snapshot(t, m, sid, seq, index)
                }
                "orderbook_delta" => {
                    let sid = req!(sid_v, "sid");
                    let seq = req!(seq_v, "seq");
                    let m = req!(msg, "msg");
                    self.delta(t, m, sid, seq, index)
                }
                "trade" => trade(t, req!(msg, "msg"), index),
                "ticker" => ticker(t, req!(msg, "msg"), index),
                "fill" => fill(t, req!(msg, "msg"), index),
                "user_order" => user_order(t, req!(msg, "msg"), index),
                "market_lifecycle_v2" => lifecycle(t, req!(msg, "msg"), index),
                "event_lifecycle" | "event_fee_update" => {
                    Ok(Parsed::Lifecycle { market: None, kind: LifecycleKind::Other, result_yes: None, grid: None })
                }
                "subscribed" => {
                    let id = int(id).unwrap_or(0) as u64;
                    // Older acks lacked `msg`; the sid may then sit at top level (parse leniently).
                    let (mut sid, mut channel) = (sid_v, Channel::Other);
                    if let Some(m) = msg {
                        for (k, v) in fields(t, m) {
                            match k {
                                "sid" => sid = as_i64(t, v).and_then(|x| u32::try_from(x).ok()),
                                "channel" => channel = channel_of(as_str(t, v).unwrap_or("")),
                                _ => {}
                            }
                        }
                    }
                    Ok(Parsed::Subscribed { id, sid: req!(sid, "msg.sid"), channel })
                }
                "ok" => Ok(Parsed::Ok { id: int(id).unwrap_or(0) as u64, sid: sid_v, seq: seq_v }),
                "unsubscribed" => Ok(Parsed::Unsubscribed { sid: sid_v, seq: seq_v }),
                "error" => {
                    let m = req!(msg, "msg");
                    let mut code = None;
                    for (k, v) in fields(t, m) {
                        if k == "code" {
                            code = as_i64(t, v).and_then(|c| u32::try_from(c).ok());
                        }
                    }
                    Ok(Parsed::Error { id: int(id).unwrap_or(0) as u64, code: req!(code, "msg.code") })
                }
                _ => Ok(Parsed::Unknown),
            }
        })();
        (name, r)
    }

    #[inline]
    fn to_yes(&self, side: BookSide, p: Price) -> Price {
        to_yes(self.yes_scale, side, p)
    }

    fn snapshot(
        &mut self,
        t: &[Node<'_>],
        m: usize,
        sid: u32,
        seq: u64,
        index: &impl MarketIndex,
    ) -> Result<Parsed, ParseFault> {
        let mut market = None;
        for (k, v) in fields(t, m) {
            match k {
                "market_ticker" => market = Some(market_field(t, v, "market_ticker")?),
                "yes_dollars_fp" => self.levels_of(t, v, BookSide::Bid)?,
                "no_dollars_fp" => self.levels_of(t, v, BookSide::Ask)?,
                _ => {}
            }
        }
        let market = index.id_of(req!(market, "msg.market_ticker")).ok_or(ParseFault::UnknownMarket)?;
        Ok(Parsed::Snapshot { sid, seq, market })
    }

    fn levels_of(&mut self, t: &[Node<'_>], arr: usize, side: BookSide) -> Result<(), ParseFault> {
        let field = if side == BookSide::Bid { "yes_dollars_fp" } else { "no_dollars_fp" };
        let len = match t.get(arr) {
            Some(Node::Array { len, .. }) => *len,
            _ if is_null(t, arr) => return Ok(()),
            _ => return Err(ParseFault::BadField(field)),
        };
        let mut i = arr + 1;
        for _ in 0..len {
            // each level is a 2-element array of strings: [price_dollars, count_fp]
            if !matches!(t.get(i), Some(Node::Array { len: 2, .. })) {
                return Err(ParseFault::BadField(field));
            }
            let p = as_str(t, i + 1).ok_or(ParseFault::BadField(field))?;
            let q = as_str(t, i + 2).ok_or(ParseFault::BadField(field))?;
            let price = Price::parse(p).map_err(|_| ParseFault::BadField(field))?;
            let qty = Qty::parse(q).map_err(|_| ParseFault::BadField(field))?;
            if self.levels.len() == self.max_levels {
                return Err(ParseFault::TooManyLevels);
            }
            self.levels.push(Level { side, price: self.to_yes(side, price), qty });
            i = skip(t, i);
        }
        Ok(())
    }

    fn delta(
        &mut self,
        t: &[Node<'_>],
        m: usize,
        sid: u32,
        seq: u64,
        index: &impl MarketIndex,
    ) -> Result<Parsed, ParseFault> {
        let (mut market, mut price, mut delta, mut side, mut ts_ms, mut own) = (None, None, None, None, 0i64, false);
        for (k, v) in fields(t, m) {
            match k {
                "market_ticker" => market = Some(market_field(t, v, "market_ticker")?),
                "price_dollars" => price = Some(price_field(t, v, "price_dollars")?),
                "delta_fp" => delta = Some(qty_field(t, v, "delta_fp")?),
                "side" => side = Some(side_of(as_str(t, v)).ok_or(ParseFault::BadField("side"))?),
                "ts_ms" => ts_ms = as_i64(t, v).ok_or(ParseFault::BadField("ts_ms"))?,
                "client_order_id" => own = !is_null(t, v),
                _ => {}
            }
        }
        let market = index.id_of(req!(market, "msg.market_ticker")).ok_or(ParseFault::UnknownMarket)?;
        let side = req!(side, "msg.side");
        let price = self.to_yes(side, req!(price, "msg.price_dollars"));
        Ok(Parsed::Delta { sid, seq, market, side, price, delta: req!(delta, "msg.delta_fp"), ts_ms, own })
    }
}

/// A level price on the YES scale: NO-side (`Ask`) prices are complemented unless the frames are
/// already on the YES scale (`use_yes_price`).
#[inline]
fn to_yes(yes_scale: bool, side: BookSide, p: Price) -> Price {
    if side == BookSide::Ask && !yes_scale {
        p.complement()
    } else {
        p
    }
}

#[inline]
fn side_of(s: Option<&str>) -> Option<BookSide> {
    match s? {
        "yes" => Some(BookSide::Bid),
        "no" => Some(BookSide::Ask),
        _ => None,
    }
}

fn channel_of(s: &str) -> Channel {
    match s {
        "orderbook_delta" => Channel::OrderbookDelta,
        "trade" => Channel::Trade,
        "ticker" => Channel::Ticker,
        "fill" => Channel::Fill,
        "user_orders" => Channel::UserOrders,
        "market_lifecycle_v2" => Channel::Lifecycle,
        _ => Channel::Other,
    }
}

fn market_field<'i>(t: &[Node<'i>], v: usize, name: &'static str) -> Result<&'i str, ParseFault> {
    as_str(t, v).ok_or(ParseFault::BadField(name))
}

fn price_field(t: &[Node<'_>], v: usize, name: &'static str) -> Result<Price, ParseFault> {
    let s = as_str(t, v).ok_or(ParseFault::BadField(name))?;
    Price::parse(s).map_err(|_| ParseFault::BadField(name))
}

fn qty_field(t: &[Node<'_>], v: usize, name: &'static str) -> Result<Qty, ParseFault> {
    let s = as_str(t, v).ok_or(ParseFault::BadField(name))?;
    Qty::parse(s).map_err(|_| ParseFault::BadField(name))
}

fn trade(t: &[Node<'_>], m: usize, index: &impl MarketIndex) -> Result<Parsed, ParseFault> {
    let (mut market, mut price, mut qty, mut taker, mut taker_legacy, mut block, mut ts) =
        (None, None, None, None, None, false, 0i64);
    for (k, v) in fields(t, m) {
        match k {
            "market_ticker" => market = Some(market_field(t, v, "market_ticker")?),
            "yes_price_dollars" => price = Some(price_field(t, v, "yes_price_dollars")?),
            "count_fp" => qty = Some(qty_field(t, v, "count_fp")?),
            "taker_book_side" => {
                taker = Some(match as_str(t, v) {
                    Some("bid") => BookSide::Bid,
                    Some("ask") => BookSide::Ask,
                    _ => return Err(ParseFault::BadField("taker_book_side")),
                })
            }
            "taker_outcome_side" | "taker_side" => taker_legacy = side_of(as_str(t, v)),
            "is_block_trade" => block = as_bool(t, v).unwrap_or(false),
            "ts_ms" => ts = as_i64(t, v).ok_or(ParseFault::BadField("ts_ms"))?,
            _ => {}
        }
    }
    let market = index.id_of(req!(market, "msg.market_ticker")).ok_or(ParseFault::UnknownMarket)?;
    let taker_side = req!(taker.or(taker_legacy), "msg.taker_book_side");
    Ok(Parsed::Trade {
        market,
        yes_price: req!(price, "msg.yes_price_dollars"),
        qty: req!(qty, "msg.count_fp"),
        taker_side,
        is_block: block,
        ts_ms: ts,
    })
}

fn ticker(t: &[Node<'_>], m: usize, index: &impl MarketIndex) -> Result<Parsed, ParseFault> {
    let (mut market, mut bid, mut ask, mut ts) = (None, None, None, 0i64);
    for (k, v) in fields(t, m) {
        match k {
            "market_ticker" => market = Some(market_field(t, v, "market_ticker")?),
            // an empty string means "no price" on some fields
            "yes_bid_dollars" => bid = as_str(t, v).and_then(|s| Price::parse(s).ok()),
            "yes_ask_dollars" => ask = as_str(t, v).and_then(|s| Price::parse(s).ok()),
            "ts_ms" => ts = as_i64(t, v).unwrap_or(0),
            _ => {}
        }
    }
    let market = index.id_of(req!(market, "msg.market_ticker")).ok_or(ParseFault::UnknownMarket)?;
    Ok(Parsed::Ticker { market, yes_bid: bid, yes_ask: ask, ts_ms: ts })
}

fn fill(t: &[Node<'_>], m: usize, index: &impl MarketIndex) -> Result<Parsed, ParseFault> {
    let (mut market, mut side, mut legacy, mut price, mut qty, mut fee, mut taker, mut ts) =
        (None, None, None, None, None, None, None, 0i64);
    for (k, v) in fields(t, m) {
        match k {
            "market_ticker" => market = Some(market_field(t, v, "market_ticker")?),
            "book_side" => {
                side = match as_str(t, v) {
                    Some("bid") => Some(BookSide::Bid),
                    Some("ask") => Some(BookSide::Ask),
                    _ => return Err(ParseFault::BadField("book_side")),
                }
            }
            "purchased_side" | "outcome_side" => legacy = side_of(as_str(t, v)),
            "yes_price_dollars" => price = Some(price_field(t, v, "yes_price_dollars")?),
            "count_fp" => qty = Some(qty_field(t, v, "count_fp")?),
            "fee_cost" => {
                let s = as_str(t, v).ok_or(ParseFault::BadField("fee_cost"))?;
                fee = Some(Money::parse(s).map_err(|_| ParseFault::BadField("fee_cost"))?);
            }
            "is_taker" => taker = as_bool(t, v),
            "ts_ms" => ts = as_i64(t, v).unwrap_or(0),
            _ => {}
        }
    }
    let market = index.id_of(req!(market, "msg.market_ticker")).ok_or(ParseFault::UnknownMarket)?;
    Ok(Parsed::Fill {
        market,
        side: req!(side.or(legacy), "msg.book_side"),
        yes_price: req!(price, "msg.yes_price_dollars"),
        qty: req!(qty, "msg.count_fp"),
        fee: req!(fee, "msg.fee_cost"),
        is_taker: req!(taker, "msg.is_taker"),
        ts_ms: ts,
    })
}

fn user_order(t: &[Node<'_>], m: usize, index: &impl MarketIndex) -> Result<Parsed, ParseFault> {
    let (mut market, mut rem, mut filled) = (None, None, None);
    for (k, v) in fields(t, m) {
        match k {
            "ticker" => market = Some(market_field(t, v, "ticker")?),
            "remaining_count_fp" => rem = Some(qty_field(t, v, "remaining_count_fp")?),
            "fill_count_fp" => filled = Some(qty_field(t, v, "fill_count_fp")?),
            _ => {}
        }
    }
    let market = index.id_of(req!(market, "msg.ticker")).ok_or(ParseFault::UnknownMarket)?;
    Ok(Parsed::UserOrder {
        market,
        remaining: req!(rem, "msg.remaining_count_fp"),
        filled: req!(filled, "msg.fill_count_fp"),
    })
}

fn lifecycle(t: &[Node<'_>], m: usize, index: &impl MarketIndex) -> Result<Parsed, ParseFault> {
    let (mut market, mut kind, mut result, mut deact, mut grid) = (None, None, None, None, None);
    for (k, v) in fields(t, m) {
        match k {
            "market_ticker" => market = Some(market_field(t, v, "market_ticker")?),
            "price_ranges" => grid = Some(price_ranges(t, v)?),
            "event_type" => {
                kind = Some(match as_str(t, v) {
                    Some("created") => LifecycleKind::Created,
                    Some("activated") => LifecycleKind::Activated,
                    Some("deactivated") => LifecycleKind::Deactivated,
                    Some("close_date_updated") => LifecycleKind::CloseDateUpdated,
                    Some("determined") => LifecycleKind::Determined,
                    Some("settled") => LifecycleKind::Settled,
                    Some("price_level_structure_updated") => LifecycleKind::PriceLevelStructureUpdated,
                    Some(_) => LifecycleKind::Other,
                    None => return Err(ParseFault::BadField("event_type")),
                })
            }
            "result" => {
                result = match as_str(t, v) {
                    Some("yes") => Some(true),
                    Some("no") => Some(false),
                    _ => None,
                }
            }
            "is_deactivated" => deact = as_bool(t, v),
            _ => {}
        }
    }
    let mut kind = req!(kind, "msg.event_type");
    if kind == LifecycleKind::Deactivated && deact == Some(false) {
        kind = LifecycleKind::Activated;
    }
    let ticker = req!(market, "msg.market_ticker");
    if kind == LifecycleKind::PriceLevelStructureUpdated && grid.is_none() {
        return Err(ParseFault::MissingField("msg.price_ranges"));
    }
    Ok(Parsed::Lifecycle { market: index.id_of(ticker), kind, result_yes: result, grid })
}

/// `price_ranges: [{"start":"0.0000","end":"1.0000","step":"0.0100"}, ...]` → a grid, walking
/// the tape (cold path, but allocation-free all the same).
fn price_ranges(t: &[Node<'_>], arr: usize) -> Result<PriceGrid, ParseFault> {
    const F: ParseFault = ParseFault::BadField("price_ranges");
    let len = match t.get(arr) {
        Some(Node::Array { len, .. }) => *len,
        _ => return Err(F),
    };
    let mut bands = [(0u16, 0u16, 0u16); strike_sdk::grid::MAX_BANDS];
    if len == 0 || len > bands.len() {
        return Err(F);
    }
    let mut i = arr + 1;
    for band in bands.iter_mut().take(len) {
        let (mut s, mut e, mut st) = (None, None, None);
        for (k, v) in fields(t, i) {
            let p = as_str(t, v).and_then(|x| Price::parse(x).ok()).map(|p| p.0);
            match k {
                "start" => s = p,
                "end" => e = p,
                "step" => st = p,
                _ => {}
            }
        }
        *band = (s.ok_or(F)?, e.ok_or(F)?, st.ok_or(F)?);
        i = skip(t, i);
    }
    PriceGrid::from_bands(&bands[..len]).map_err(|_| F)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Idx;
    impl MarketIndex for Idx {
        fn id_of(&self, t: &str) -> Option<MarketId> {
            match t {
                "FED-23DEC-T3.00" => Some(MarketId(0)),
                "HIGHNY-22DEC23-B53.5" => Some(MarketId(1)),
                _ => None,
            }
        }
    }

    fn parse(yes_scale: bool, s: &str) -> (Vec<Level>, &'static str, Result<Parsed, ParseFault>) {
        let mut p = FrameParser::new(yes_scale, 256, 64);
        let (ty, r) = p.parse(s.as_bytes(), &Idx);
        (p.levels().to_vec(), ty, r)
    }

    #[test]
    fn snapshot_in_no_price_scale_becomes_yes_asks() {
        let (lv, ty, r) = parse(
            false,
            r#"{"type":"orderbook_snapshot","sid":2,"seq":2,"msg":{"market_ticker":"FED-23DEC-T3.00","market_id":"9b0f","yes_dollars_fp":[["0.0800","300.00"],["0.2200","333.00"]],"no_dollars_fp":[["0.5400","20.00"]]}}"#,
        );
        assert_eq!(ty, "orderbook_snapshot");
        assert_eq!(r, Ok(Parsed::Snapshot { sid: 2, seq: 2, market: MarketId(0) }));
        assert_eq!(
            lv,
            vec![
                Level { side: BookSide::Bid, price: Price(800), qty: Qty(30000) },
                Level { side: BookSide::Bid, price: Price(2200), qty: Qty(33300) },
                Level { side: BookSide::Ask, price: Price(4600), qty: Qty(2000) },
            ]
        );
        // YES scale: the NO ladder is already the ask ladder
        let (lv, _, _) = parse(
            true,
            r#"{"type":"orderbook_snapshot","sid":2,"seq":2,"msg":{"market_ticker":"FED-23DEC-T3.00","no_dollars_fp":[["0.5400","20.00"]]}}"#,
        );
        assert_eq!(lv, vec![Level { side: BookSide::Ask, price: Price(5400), qty: Qty(2000) }]);
    }

    #[test]
    fn delta_parses_every_field() {
        let (_, _, r) = parse(
            false,
            r#"{"type":"orderbook_delta","sid":2,"seq":3,"msg":{"market_ticker":"FED-23DEC-T3.00","market_id":"9b0f","price_dollars":"0.960","delta_fp":"-54.00","side":"no","client_order_id":"my-1","subaccount":3,"ts":"2022-11-22T20:44:01Z","ts_ms":1669149841000}}"#,
        );
        assert_eq!(
            r,
            Ok(Parsed::Delta {
                sid: 2,
                seq: 3,
                market: MarketId(0),
                side: BookSide::Ask,
                price: Price(400),
                delta: Qty(-5400),
                ts_ms: 1669149841000,
                own: true
            })
        );
    }

    #[test]
    fn missing_and_bad_fields_are_faults_not_zeros() {
        let (_, ty, r) = parse(
            true,
            r#"{"type":"orderbook_delta","sid":2,"seq":3,"msg":{"market_ticker":"FED-23DEC-T3.00","price":96,"delta":-54,"side":"yes"}}"#,
        );
        assert_eq!(ty, "orderbook_delta");
        assert_eq!(r, Err(ParseFault::MissingField("msg.price_dollars")));
        let (_, _, r) = parse(
            true,
            r#"{"type":"orderbook_delta","sid":2,"seq":3,"msg":{"market_ticker":"FED-23DEC-T3.00","price_dollars":"0.96001","delta_fp":"1.00","side":"yes"}}"#,
        );
        assert_eq!(r, Err(ParseFault::BadField("price_dollars")));
        let (_, _, r) = parse(true, r#"{"type":"orderbook_delta","seq":3,"msg":{}}"#);
        assert_eq!(r, Err(ParseFault::MissingField("sid")));
        let (_, _, r) = parse(
            true,
            r#"{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"NOPE","price_dollars":"0.5","delta_fp":"1","side":"yes"}}"#,
        );
        assert_eq!(r, Err(ParseFault::UnknownMarket));
        let (_, ty, r) = parse(true, r#"{"type":"orderbook_delta","sid":1"#);
        assert_eq!((ty, r), (UNKNOWN_TYPE, Err(ParseFault::Json)));
        let (_, ty, r) = parse(true, r#"{"type":"multivariate_lookup","msg":{}}"#);
        assert_eq!((ty, r), (UNKNOWN_TYPE, Ok(Parsed::Unknown)));
    }

    #[test]
    fn trade_fill_and_acks() {
        let (_, _, r) = parse(
            true,
            r#"{"type":"trade","sid":11,"msg":{"trade_id":"d91b","market_ticker":"HIGHNY-22DEC23-B53.5","yes_price_dollars":"0.360","no_price_dollars":"0.640","count_fp":"136.00","taker_side":"no","taker_outcome_side":"no","taker_book_side":"ask","is_block_trade":false,"ts":1669149841,"ts_ms":1669149841000}}"#,
        );
        assert_eq!(
            r,
            Ok(Parsed::Trade {
                market: MarketId(1),
                yes_price: Price(3600),
                qty: Qty(13600),
                taker_side: BookSide::Ask,
                is_block: false,
                ts_ms: 1669149841000
            })
        );
        let (_, _, r) = parse(
            true,
            r#"{"type":"fill","sid":2,"msg":{"trade_id":"50e1","order_id":"e38f","market_ticker":"FED-23DEC-T3.00","is_taker":true,"side":"yes","ts":1782873388,"ts_ms":1782873388379,"yes_price_dollars":"0.1700","count_fp":"5.52","fee_cost":"0.054600","action":"buy","post_position_fp":"5.52","purchased_side":"yes","outcome_side":"yes","book_side":"bid","subaccount":0}}"#,
        );
        assert_eq!(
            r,
            Ok(Parsed::Fill {
                market: MarketId(0),
                side: BookSide::Bid,
                yes_price: Price(1700),
                qty: Qty(552),
                fee: Money(54600),
                is_taker: true,
                ts_ms: 1782873388379
            })
        );
        let (_, _, r) = parse(true, r#"{"type":"subscribed","id":2,"msg":{"channel":"orderbook_delta","sid":1}}"#);
        assert_eq!(r, Ok(Parsed::Subscribed { id: 2, sid: 1, channel: Channel::OrderbookDelta }));
        let (_, _, r) = parse(true, r#"{"type":"ok","id":4,"sid":1,"seq":2,"msg":{"market_tickers":["A"]}}"#);
        assert_eq!(r, Ok(Parsed::Ok { id: 4, sid: Some(1), seq: Some(2) }));
        let (_, _, r) = parse(
            true,
            r#"{"id":127,"type":"error","msg":{"code":16,"msg":"Market not found","market_ticker":"BAD"}}"#,
        );
        assert_eq!(r, Ok(Parsed::Error { id: 127, code: 16 }));
        let (_, _, r) = parse(
            true,
            r#"{"type":"market_lifecycle_v2","sid":13,"msg":{"market_ticker":"FED-23DEC-T3.00","event_type":"determined","result":"yes","settlement_value":"1.0000"}}"#,
        );
        assert_eq!(
            r,
            Ok(Parsed::Lifecycle {
                market: Some(MarketId(0)),
                kind: LifecycleKind::Determined,
                result_yes: Some(true),
                grid: None
            })
        );
        let (_, _, r) = parse(
            true,
            r#"{"type":"market_lifecycle_v2","sid":13,"msg":{"market_ticker":"FED-23DEC-T3.00","event_type":"price_level_structure_updated","price_level_structure":"tapered_deci_cent","price_ranges":[{"start":"0.0000","end":"0.1000","step":"0.0010"},{"start":"0.1000","end":"0.9000","step":"0.0100"},{"start":"0.9000","end":"1.0000","step":"0.0010"}]}}"#,
        );
        match r {
            Ok(Parsed::Lifecycle { kind: LifecycleKind::PriceLevelStructureUpdated, grid: Some(g), .. }) => {
                assert_eq!(g.structure, strike_sdk::grid::PriceStructure::TaperedDeciCent)
            }
            other => panic!("{other:?}"),
        }
        let (_, _, r) = parse(
            true,
            r#"{"type":"market_lifecycle_v2","sid":13,"msg":{"market_ticker":"FED-23DEC-T3.00","event_type":"price_level_structure_updated","price_ranges":[{"start":"0.0000","end":"1.0000","step":"0.0300"}]}}"#,
        );
        assert_eq!(r, Err(ParseFault::BadField("price_ranges")));
    }

    #[test]
    fn snapshot_level_cap_is_a_fault() {
        let mut p = FrameParser::new(true, 256, 1);
        let (_, r) = p.parse(
            br#"{"type":"orderbook_snapshot","sid":2,"seq":2,"msg":{"market_ticker":"FED-23DEC-T3.00","yes_dollars_fp":[["0.08","1"],["0.09","1"]]}}"#,
            &Idx,
        );
        assert_eq!(r, Err(ParseFault::TooManyLevels));
    }

    // ---- the orderbook_delta fast path against the simd-json path ----

    use strike_sim::recording::Recording;
    use strike_sim::universe::UniverseData;

    /// Both paths on `frame`, with both NO-price scales: they agree (or the fast path declines).
    /// Returns whether the fast path took it.
    fn agree(frame: &[u8], index: &impl MarketIndex) -> bool {
        let mut taken = None;
        for yes_scale in [false, true] {
            let mut p = FrameParser::new(yes_scale, 256, 64);
            let t = p.cross_check(frame, index).unwrap_or_else(|e| panic!("{e}"));
            // and `parse` returns what the simd-json path returns
            assert_eq!(p.parse(frame, index), p.parse_simd(frame, index));
            assert_eq!(*taken.get_or_insert(t), t);
        }
        taken.unwrap_or(false)
    }

    fn recordings() -> Vec<(&'static str, Recording)> {
        let dir = strike_sim::data_dir().join("kalshi");
        let read = |p: &str| {
            Recording::read(&dir.join(p))
                .unwrap_or_else(|e| panic!("{e}: set STRIKE_DATA_DIR to the shared data folder"))
        };
        vec![
            ("prod", read("ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json")),
            ("demo", read("ws_demo_mm_session_2026-07-01/session.jsonl.gz")),
            ("synthetic", strike_sim::synth::generate(7, &strike_sim::synth::SynthConfig::default())),
        ]
    }

    #[test]
    fn fast_path_takes_every_recorded_delta_and_agrees_with_simd_json() {
        for (name, rec) in recordings() {
            let u = UniverseData::from_header(&rec.header).unwrap();
            let mut p = FrameParser::new(rec.header.yes_price_scale, 256, 4096);
            let (mut deltas, mut others) = (0, 0);
            for f in &rec.frames {
                let bytes = f.text.as_bytes();
                let is_delta = p.parse_simd(bytes, &u).0 == "orderbook_delta";
                // the fast path takes exactly the deltas (these recordings have no odd ones) ...
                assert_eq!(agree(bytes, &u), is_delta, "{name}: {}", f.text);
                // ... and they are real deltas of subscribed markets, not faults
                if is_delta {
                    assert!(matches!(p.parse_fast(bytes, &u), Some((_, Ok(Parsed::Delta { .. })))), "{}", f.text);
                    // by the quick template, which the generic scanner agrees with
                    let t = fastpath::scan_template(bytes);
                    assert!(t.is_some() && t == fastpath::scan_generic(bytes), "{name}: {}", f.text);
                    deltas += 1;
                } else {
                    others += 1;
                }
            }
            // prod: 245 deltas; demo: 2,885; the synthetic session: thousands
            assert!(deltas >= 245 && others > 0, "{name}: {deltas} deltas, {others} other frames");
        }
    }

    #[test]
    fn fast_path_edge_cases_agree_with_simd_json() {
        let base = r#"{"type":"orderbook_delta","sid":2,"seq":3,"msg":{"market_ticker":"FED-23DEC-T3.00","market_id":"9b0f","price_dollars":"0.960","delta_fp":"-54.00","side":"no","ts":"2022-11-22T20:44:01Z","ts_ms":1669149841000}}"#;
        let taken = [
            base.to_string(),
            base.replace("FED-23DEC-T3.00", "NOT-SUBSCRIBED"), // UnknownMarket, decided by both
            base.replace("FED-23DEC-T3.00", ""),
            base.replace("\"side\":\"no\"", "\"side\":\"yes\""),
            base.replace("\"side\":\"no\"", "\"side\":\"no\",\"client_order_id\":\"my-1\",\"subaccount\":3"),
            base.replace("\"side\":\"no\"", "\"side\":\"no\",\"client_order_id\":\"\""),
            base.replace("\"side\":\"no\"", "\"side\":\"no\",\"client_order_id\":null"),
            base.replace(",\"ts_ms\":1669149841000", ""),
            base.replace("1669149841000", "0"),
            base.replace("1669149841000", "999999999999999999"),
            base.replace("\"sid\":2", "\"sid\":4294967295"),
            base.replace("\"seq\":3", "\"seq\":999999999999999999"),
            base.replace("\"seq\":3", "\"seq\":0"),
            base.replace("0.960", "0"),
            base.replace("0.960", "1"),
            base.replace("0.960", ".5"),
            base.replace("0.960", "+0.5"),
            base.replace("-54.00", "0"),
            base.replace("-54.00", "+1.5"),
            base.replace("-54.00", "-0"),
            base.replace("T3.00", "T3.00\u{7f}~ !#$%&'()*+,-./:;<=>?@[]^_`{|}"),
            base.replace("\"sid\":2,", "\"id\":7,\"sending_ts_ms\":1669149841001,\"x\":true,\"y\":false,\"z\":null,\"sid\":2,"),
            r#"{"msg":{"side":"no","delta_fp":"1.00","price_dollars":"0.5","market_ticker":"FED-23DEC-T3.00"},"seq":3,"sid":2,"type":"orderbook_delta"}"#.to_string(),
        ];
        for f in &taken {
            assert!(agree(f.as_bytes(), &Idx), "not taken: {f}");
        }
        let declined = [
            String::new(),
            "{}".to_string(),
            "{\"type\":\"orderbook_delta\"}".to_string(),
            base.replace("\"side\":\"no\",", ""),
            base.replace("\"sid\":2,", ""),
            base.replace("\"sid\":2", "\"sid\":4294967296"),
            base.replace("\"seq\":3", "\"seq\":1000000000000000000"),
            base.replace("\"seq\":3", "\"seq\":-3"),
            base.replace("\"seq\":3", "\"seq\":3.0"),
            base.replace("\"seq\":3", "\"seq\":03"),
            base.replace("1669149841000", "1.669149841e12"),
            base.replace("\"sid\":2,", "\"sid\":2,\"sid\":5,"),
            base.replace("\"sid\":2,", "\"sid\":2,\"type\":\"orderbook_delta\","),
            base.replace("\"side\":\"no\"", "\"side\":\"no\",\"side\":\"yes\""),
            base.replace("\"side\":\"no\"", "\"side\":\"no\",\"client_order_id\":5"),
            base.replace("\"side\":\"no\"", "\"side\":\"n\\u006f\""),
            base.replace("FED-23DEC", "FED\\/23DEC"),
            base.replace("FED-23DEC", "FED\u{e9}23DEC"),
            base.replace("FED-23DEC", "FED\t23DEC"),
            base.replace("0.960", "0.96001"),
            base.replace("0.960", "1.01"),
            base.replace("-54.00", "-54.001"),
            base.replace("\"market_id\":\"9b0f\"", "\"market_id\":{\"a\":1}"),
            base.replace("\"market_id\":\"9b0f\"", "\"market_id\":[]"),
            base.replace("\"market_id\":\"9b0f\"", "\"market_id\":-1"),
            base.replace("\"msg\":{", "\"msg\": {"),
            base.replace("\"msg\":{", "\"msg\":[{").replace("}}", "}]}"),
            format!("{base}\n"),
            format!("{base}{{}}"),
            base.replace("orderbook_delta", "orderbook_snapshot"),
            base[..base.len() - 1].to_string(),
        ];
        for f in &declined {
            assert!(!agree(f.as_bytes(), &Idx), "taken: {f}");
        }
    }

    /// splitmix64: a deterministic stream for the mutation test (no dependency, same cases on
    /// every run).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
            &xs[self.below(xs.len())]
        }
    }

    /// The byte ranges of the members of the object starting at `open` (a `{`) in a compact
    /// frame: `(start, end)` of each `"key":value`, and the index of the closing `}`. `None` when
    /// the text is not simple enough to split (the mutator then uses other mutations).
    fn members(b: &[u8], open: usize) -> Option<(Vec<(usize, usize)>, usize)> {
        let (mut depth, mut in_str, mut esc) = (0i32, false, false);
        let (mut out, mut start) = (Vec::new(), open + 1);
        for (i, &c) in b.iter().enumerate().skip(open) {
            if in_str {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        if i > start {
                            out.push((start, i));
                        }
                        return Some((out, i));
                    }
                }
                b',' if depth == 1 => {
                    out.push((start, i));
                    start = i + 1;
                }
                _ => {}
            }
        }
        None
    }

    /// One random structural or lexical mutation of a JSON frame.
    fn mutate(rng: &mut Rng, f: &mut Vec<u8>) {
        const WS: [&[u8]; 4] = [b" ", b"\t", b"\n", b"\r"];
        const NUMS: [&[u8]; 14] = [
            b"0",
            b"00",
            b"01",
            b"-1",
            b"-0",
            b"1.0",
            b"1e3",
            b"1E+3",
            b"4294967295",
            b"4294967296",
            b"999999999999999999",
            b"1000000000000000000",
            b"18446744073709551616",
            b"\"7\"",
        ];
        const STRS: [&[u8]; 22] = [
            b"\"yes\"",
            b"\"no\"",
            b"\"YES\"",
            b"\"\"",
            b"\"0.5\"",
            b"\"0.5000\"",
            b"\"1.0000\"",
            b"\"1.0001\"",
            b"\"0.00001\"",
            b"\"-0.5\"",
            b"\"+3.00\"",
            b"\"-12.34\"",
            b"\"12.345\"",
            b"\".\"",
            b"\"1.\"",
            b"\"-\"",
            b"\"a\\\"b\"",
            b"\"\\u0079es\"",
            b"\"\xc3\xa9\"",
            b"\"\x7f\"",
            b"\"\x01\"",
            b"\"FED-23DEC-T3.00\"",
        ];
        const OTHER: [&[u8]; 9] =
            [b"null", b"true", b"false", b"[]", b"{}", b"[1,2]", b"{\"a\":\"b\"}", b"nul", b"1.5"];
        const KEYS: [&[u8]; 14] = [
            b"type",
            b"sid",
            b"seq",
            b"msg",
            b"id",
            b"market_ticker",
            b"price_dollars",
            b"delta_fp",
            b"side",
            b"ts_ms",
            b"client_order_id",
            b"subaccount",
            b"market_id",
            b"ts",
        ];
        if f.is_empty() {
            f.extend_from_slice(b"{}");
        }
        let value = |rng: &mut Rng| -> Vec<u8> {
            match rng.below(3) {
                0 => rng.pick(&NUMS).to_vec(),
                1 => rng.pick(&STRS).to_vec(),
                _ => rng.pick(&OTHER).to_vec(),
            }
        };
        // the object to restructure: the top level or `msg`
        let open = match rng.below(2) {
            0 => 0,
            _ => f.windows(7).position(|w| w == b"\"msg\":{").map(|p| p + 6).unwrap_or(0),
        };
        match rng.below(12) {
            0 => {
                let i = rng.below(f.len());
                f[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(f.len());
                f[i] = rng.next() as u8;
            }
            2 => f.truncate(rng.below(f.len())),
            3 => {
                let i = rng.below(f.len() + 1);
                let ws = *rng.pick(&WS);
                f.splice(i..i, ws.iter().copied());
            }
            4 | 5 => {
                // reorder, drop or duplicate members
                if let Some((ms, close)) = members(f, open) {
                    if ms.is_empty() {
                        return;
                    }
                    let mut parts: Vec<Vec<u8>> = ms.iter().map(|&(a, b)| f[a..b].to_vec()).collect();
                    match rng.below(4) {
                        0 => {
                            parts.remove(rng.below(parts.len()));
                        }
                        1 => {
                            let d = rng.pick(&parts).clone();
                            let at = rng.below(parts.len() + 1);
                            parts.insert(at, d);
                        }
                        _ => {
                            for i in (1..parts.len()).rev() {
                                parts.swap(i, rng.below(i + 1));
                            }
                        }
                    }
                    let body = parts.join(&b',');
                    f.splice(open + 1..close, body);
                }
            }
            6 | 7 => {
                // replace a member's value
                if let Some((ms, _)) = members(f, open) {
                    if ms.is_empty() {
                        return;
                    }
                    let (a, b) = *rng.pick(&ms);
                    if let Some(colon) = f[a..b].iter().position(|&c| c == b':') {
                        let v = value(rng);
                        f.splice(a + colon + 1..b, v);
                    }
                }
            }
            8 => {
                // add a member
                if let Some((ms, close)) = members(f, open) {
                    let mut m = b"\"".to_vec();
                    m.extend_from_slice(rng.pick::<&[u8]>(&KEYS));
                    m.extend_from_slice(b"\":");
                    m.extend(value(rng));
                    let at = if ms.is_empty() || rng.below(2) == 0 { open + 1 } else { close };
                    if !ms.is_empty() {
                        if at == close {
                            m.insert(0, b',');
                        } else {
                            m.push(b',');
                        }
                    }
                    f.splice(at..at, m);
                }
            }
            9 => {
                // edit a digit run
                let digits: Vec<usize> = (0..f.len()).filter(|&i| f[i].is_ascii_digit()).collect();
                if let Some(&i) = digits.get(rng.below(digits.len())) {
                    let mut j = i;
                    while j < f.len() && f[j].is_ascii_digit() {
                        j += 1;
                    }
                    let n = *rng.pick(&NUMS);
                    f.splice(i..j, n.iter().copied());
                }
            }
            10 => {
                // the message type
                let tys: [&[u8]; 4] = [b"orderbook_snapshot", b"orderbook_deltas", b"orderbook_delt", b"trade"];
                if let Some(p) = f.windows(15).position(|w| w == b"orderbook_delta") {
                    f.splice(p..p + 15, rng.pick(&tys).iter().copied());
                }
            }
            _ => {
                // a stray byte of JSON syntax
                let i = rng.below(f.len() + 1);
                let c = *rng.pick(b"{}[]:,\"\\0-.e");
                f.insert(i, c);
            }
        }
    }

    #[test]
    fn fast_path_agrees_with_simd_json_on_mutated_real_frames() {
        let mut rng = Rng(0x05ee_d0fd_e17a);
        let (mut cases, mut taken, mut generic_only, mut unknown_market) = (0usize, 0usize, 0usize, 0usize);
        for (_, rec) in recordings() {
            let u = UniverseData::from_header(&rec.header).unwrap();
            let deltas: Vec<&str> =
                rec.frames.iter().map(|f| f.text.as_str()).filter(|t| t.contains("\"orderbook_delta\",")).collect();
            let mut p = FrameParser::new(rec.header.yes_price_scale, 256, 4096);
            for _ in 0..10_000 {
                let mut f = rng.pick(&deltas).as_bytes().to_vec();
                for _ in 0..1 + rng.below(3) {
                    mutate(&mut rng, &mut f);
                }
                cases += 1;
                // the template's language is a subset of the generic scanner's, same results
                let t = fastpath::scan_template(&f);
                if t.is_some() {
                    assert_eq!(t, fastpath::scan_generic(&f), "{}", String::from_utf8_lossy(&f));
                } else if fastpath::scan_generic(&f).is_some() {
                    generic_only += 1;
                }
                if p.cross_check(&f, &u).unwrap_or_else(|e| panic!("{e}")) {
                    taken += 1;
                    if p.parse_fast(&f, &u).is_some_and(|(_, r)| r == Err(ParseFault::UnknownMarket)) {
                        unknown_market += 1;
                    }
                }
            }
        }
        // the mutations keep a fair share of frames on the fast path (reorders, extra members,
        // edited values), so both outcomes are exercised
        assert!(taken > cases / 20 && taken < cases * 9 / 10, "{taken} of {cases} taken");
        assert!(unknown_market > 0, "no mutated ticker reached the UnknownMarket decision");
        // reordered and extra members reach the generic scanner
        assert!(generic_only > cases / 50, "{generic_only} of {cases} taken by the generic scanner alone");
        eprintln!("{cases} mutated frames: {taken} taken ({generic_only} by the generic scanner), {unknown_market} unknown markets");
    }
}
