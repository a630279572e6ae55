//! Clocks, per-hop HDR latency histograms, fixed counter tables ([`Counters`]) and the end-of-run
//! [`report::Report`].
//!
//! Every stage stamps the TSC through [`Clock`] (`quanta`, ~9.5 ns a read on the dev VM) and
//! records into its own pre-allocated [`Latency`] set (`Histogram::saturating_record`, ~3 ns, no
//! allocation). At exit the stages' sets are merged and turned into percentiles (a 2 µs
//! operation each, so never on the hot path).
//!
//! Hops, in pipeline order:
//! - `feed_parse`: frame taken from the socket/recording → events on the ring;
//! - `book_apply`: one market-data event applied to the trader's book;
//! - `strategy`: one strategy callback;
//! - `risk`: pre-trade checks of one intent;
//! - `order_encode`: the V2 order body written into the gateway's pre-allocated buffer;
//! - `tick_to_trade`: frame pickup → order bytes ready (the headline number, budget 27 ms);
//! - `exchange_to_recv`: exchange `ts_ms` → receive time (network + exchange queueing; ms
//!   resolution, from the recording).

pub mod report;

use hdrhistogram::Histogram;

/// A monotonic TSC clock; raw stamps are converted to ns only when a delta is recorded.
#[derive(Clone, Debug)]
pub struct Clock(quanta::Clock);

impl Default for Clock {
    fn default() -> Self {
        Clock(quanta::Clock::new())
    }
}

impl Clock {
    /// A raw TSC stamp.
    #[inline]
    pub fn raw(&self) -> u64 {
        self.0.raw()
    }
    /// Nanoseconds between two raw stamps (0 if `end` precedes `start`).
    #[inline]
    pub fn ns(&self, start: u64, end: u64) -> u64 {
        if end <= start {
            0
        } else {
            self.0.delta_as_nanos(start, end)
        }
    }
}

/// The measured hops; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Hop {
    /// Frame pickup → events pushed.
    FeedParse = 0,
    /// One event applied to a book.
    BookApply = 1,
    /// One strategy callback.
    Strategy = 2,
    /// Risk checks of one intent.
    Risk = 3,
    /// Order body encoding.
    OrderEncode = 4,
    /// Frame pickup → order bytes ready.
    TickToTrade = 5,
    /// Exchange timestamp → receive time.
    ExchangeToRecv = 6,
}

impl Hop {
    /// Every hop in pipeline order.
    pub const ALL: [Hop; 7] = [
        Hop::FeedParse,
        Hop::BookApply,
        Hop::Strategy,
        Hop::Risk,
        Hop::OrderEncode,
        Hop::TickToTrade,
        Hop::ExchangeToRecv,
    ];
    /// Report name.
    pub const fn name(self) -> &'static str {
        match self {
            Hop::FeedParse => "feed_parse",
            Hop::BookApply => "book_apply",
            Hop::Strategy => "strategy",
            Hop::Risk => "risk",
            Hop::OrderEncode => "order_encode",
            Hop::TickToTrade => "tick_to_trade",
            Hop::ExchangeToRecv => "exchange_to_recv",
        }
    }
}

/// One HDR histogram per hop, 1 ns .. 60 s at 3 significant digits, allocated up front.
pub struct Latency {
    hists: Vec<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            hists: Hop::ALL
                .iter()
                .map(|_| Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds are valid"))
                .collect(),
        }
    }
}

impl Latency {
    /// Records `ns` for `hop`. Values outside the range saturate; never allocates.
    #[inline]
    pub fn record(&mut self, hop: Hop, ns: u64) {
        self.hists[hop as usize].saturating_record(ns.max(1));
    }

    /// The histogram of `hop`.
    pub fn hist(&self, hop: Hop) -> &Histogram<u64> {
        &self.hists[hop as usize]
    }

    /// Adds another set into this one (end of run).
    pub fn merge(&mut self, other: &Latency) {
        for (a, b) in self.hists.iter_mut().zip(&other.hists) {
            // same bounds on both sides, so `add` cannot fail
            let _ = a.add(b);
        }
    }
}

/// A counter table keyed by static names; no allocation after construction.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    slots: Vec<(&'static str, u64)>,
}

impl Counters {
    /// A table with room for `n` distinct names.
    pub fn with_capacity(n: usize) -> Counters {
        Counters { slots: Vec::with_capacity(n) }
    }
    /// Adds one to `name`'s count.
    #[inline]
    pub fn bump(&mut self, name: &'static str) {
        self.add(name, 1)
    }
    /// Adds `n` to `name`'s count.
    #[inline]
    pub fn add(&mut self, name: &'static str, n: u64) {
        if let Some(s) = self.slots.iter_mut().find(|s| s.0 == name) {
            s.1 += n;
        } else if self.slots.len() < self.slots.capacity() {
            self.slots.push((name, n));
        }
    }
    /// The count of `name`.
    pub fn get(&self, name: &str) -> u64 {
        self.slots.iter().find(|s| s.0 == name).map(|s| s.1).unwrap_or(0)
    }
    /// All `(name, count)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.slots.iter().copied()
    }
}
