//! Latency models: how long market data takes to reach us and how long our orders take to reach
//! the exchange and to be answered, so that an order meets the book as it was when it *arrived*.
//!
//! This module owns the three one-way delays, one small struct per model behind the
//! [`LatencyModel`] trait: [`Constant`] and [`Recorded`] (drawn from recorded samples with a
//! seeded ChaCha stream, reproducible). All times are nanoseconds on the exchange's clock (unix
//! ns in replays), delays are nanoseconds, and every addition saturates instead of overflowing.
//!
//! ```text
//!  exchange                      us (engine / strategy)
//!  t_md ─── feed_ns ───────────▶ t_md + feed          market data (book, trades, private fills)
//!  arrival ◀── entry_ns ──────── sent                 order command
//!  arrival ─── response_ns ────▶ ack = arrival + response
//! ```
//!
//! ## Driving the matcher in time order
//! [`super::Matcher`] is a pure function of its inputs in the order given, and refuses a
//! timestamp earlier than the last one it saw ([`super::MatchError::TimeWentBackwards`]). A
//! backtest or the paper venue keeps one queue of pending inputs keyed by **exchange time**:
//! 1. every market-data event at its exchange timestamp `t_md`; the strategy is shown it at
//!    [`LatencyModel::feed_arrival`]`(t_md)`;
//! 2. every command the strategy sends at local time `sent` at
//!    [`LatencyModel::order_timing`]`(sent).arrival_ns`, so it meets the book after every
//!    market-data event stamped before its arrival;
//! 3. ties at the same nanosecond: market data first, then commands in send order.
//!
//! The matcher's output events carry the exchange time they happened at. The direct answer to a
//! command (ack, reject, immediate fills, the cancel of an IoC remainder) reaches the strategy at
//! [`OrderTiming::ack_ns`]; maker fills of a resting order, which Kalshi reports on the private
//! WebSocket, reach it at `feed_arrival(fill time)`. With drawn latencies two commands can arrive
//! in a different order than they were sent (as over several REST connections); a driver that
//! wants FIFO per connection takes `max(arrival, previous arrival)`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// When one order command reaches the exchange and when its answer reaches us, nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderTiming {
    /// When we sent it (local send time, on the exchange clock).
    pub sent_ns: u64,
    /// When the exchange receives and matches it: `sent + entry`.
    pub arrival_ns: u64,
    /// When its REST answer reaches us: `arrival + response`.
    pub ack_ns: u64,
}

/// A one-way latency model. Each call draws one delay in nanoseconds; a stateful model (one
/// that draws from a distribution) advances its stream.
pub trait LatencyModel: std::fmt::Debug + Send {
    /// Delay from the exchange publishing market data (or a private message) to us receiving it.
    fn feed_ns(&mut self) -> u64;
    /// Delay from us sending an order command to the exchange receiving it.
    fn entry_ns(&mut self) -> u64;
    /// Delay from the exchange handling a command to us receiving its answer.
    fn response_ns(&mut self) -> u64;

    /// The timing of a command sent at `sent_ns`: arrival `sent + entry`, answer
    /// `arrival + response` (saturating). Draws one entry and one response delay.
    fn order_timing(&mut self, sent_ns: u64) -> OrderTiming {
        let arrival_ns = sent_ns.saturating_add(self.entry_ns());
        let ack_ns = arrival_ns.saturating_add(self.response_ns());
        OrderTiming { sent_ns, arrival_ns, ack_ns }
    }

    /// When market data stamped `exchange_ns` reaches us: `exchange_ns + feed` (saturating).
    fn feed_arrival(&mut self, exchange_ns: u64) -> u64 {
        exchange_ns.saturating_add(self.feed_ns())
    }
}

/// Fixed delays, nanoseconds.
///
/// ```text
/// feed_arrival(t) = t + feed_ns;  arrival = sent + entry_ns;  ack = arrival + response_ns
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Constant {
    /// Exchange → us for market data, ns.
    pub feed_ns: u64,
    /// Us → exchange for an order command, ns.
    pub entry_ns: u64,
    /// Exchange → us for a command's answer, ns.
    pub response_ns: u64,
}

impl LatencyModel for Constant {
    fn feed_ns(&mut self) -> u64 {
        self.feed_ns
    }
    fn entry_ns(&mut self) -> u64 {
        self.entry_ns
    }
    fn response_ns(&mut self) -> u64 {
        self.response_ns
    }
}

/// Why a [`Recorded`] model could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyError {
    /// One of the sample lists is empty; the name says which (`"feed"`, `"entry"`, `"response"`).
    NoSamples(&'static str),
}

impl std::fmt::Display for LatencyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LatencyError::NoSamples(leg) => write!(f, "no recorded {leg} latency samples"),
        }
    }
}

impl std::error::Error for LatencyError {}

/// Delays drawn from recorded samples (the empirical distribution), nanoseconds.
///
/// ```text
/// each leg: delay = samples[k],  k uniform in 0..samples.len(),  from ChaCha8(seed, stream)
/// ```
///
/// Each leg has its own sample list and its own ChaCha8 stream of one seed (streams 0, 1, 2 for
/// feed, entry, response), so the same seed gives the same sequence of delays per leg however
/// the calls to the three legs interleave (a strategy sending more orders does not change the
/// feed delays it sees).
#[derive(Clone, Debug)]
pub struct Recorded {
    feed: Vec<u64>,
    entry: Vec<u64>,
    response: Vec<u64>,
    rngs: [ChaCha8Rng; 3],
}

impl Recorded {
    /// A model drawing from these samples (ns each) with `seed`. Errors when a list is empty.
    pub fn new(feed: Vec<u64>, entry: Vec<u64>, response: Vec<u64>, seed: u64) -> Result<Recorded, LatencyError> {
        for (name, v) in [("feed", &feed), ("entry", &entry), ("response", &response)] {
            if v.is_empty() {
                return Err(LatencyError::NoSamples(name));
            }
        }
        let rng = |stream: u64| {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            r.set_stream(stream);
            r
        };
        Ok(Recorded { feed, entry, response, rngs: [rng(0), rng(1), rng(2)] })
    }

    /// One list for all three legs (e.g. recorded one-way delays of one link).
    pub fn same_for_all(samples: Vec<u64>, seed: u64) -> Result<Recorded, LatencyError> {
        Recorded::new(samples.clone(), samples.clone(), samples, seed)
    }

    fn draw(&mut self, leg: usize) -> u64 {
        let v = match leg {
            0 => &self.feed,
            1 => &self.entry,
            _ => &self.response,
        };
        // Non-empty by construction.
        let k = self.rngs[leg].random_range(0..v.len());
        v[k]
    }
}

impl LatencyModel for Recorded {
    fn feed_ns(&mut self) -> u64 {
        self.draw(0)
    }
    fn entry_ns(&mut self) -> u64 {
        self.draw(1)
    }
    fn response_ns(&mut self) -> u64 {
        self.draw(2)
    }
}

/// A latency model chosen by configuration (the exchange server's
/// [`crate::server::RestServerConfig::latency`], `kalshi-sim --latency-us` /
/// `--latency-samples`): one of this module's models, cloneable. The default is
/// [`Constant`] zero delays (an order meets the book as it is when the request is read).
#[derive(Clone, Debug)]
pub enum LatencyKind {
    /// Fixed delays.
    Constant(Constant),
    /// Delays drawn from recorded samples (boxed: the ChaCha streams are large).
    Recorded(Box<Recorded>),
}

impl Default for LatencyKind {
    fn default() -> LatencyKind {
        LatencyKind::Constant(Constant::default())
    }
}

impl LatencyModel for LatencyKind {
    fn feed_ns(&mut self) -> u64 {
        match self {
            LatencyKind::Constant(m) => m.feed_ns(),
            LatencyKind::Recorded(m) => m.feed_ns(),
        }
    }
    fn entry_ns(&mut self) -> u64 {
        match self {
            LatencyKind::Constant(m) => m.entry_ns(),
            LatencyKind::Recorded(m) => m.entry_ns(),
        }
    }
    fn response_ns(&mut self) -> u64 {
        match self {
            LatencyKind::Constant(m) => m.response_ns(),
            LatencyKind::Recorded(m) => m.response_ns(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_kind_delegates_and_defaults_to_zero() {
        let mut z = LatencyKind::default();
        assert_eq!((z.feed_ns(), z.entry_ns(), z.response_ns()), (0, 0, 0));
        let mut c = LatencyKind::Constant(Constant { feed_ns: 1, entry_ns: 2, response_ns: 3 });
        assert_eq!(c.order_timing(10), OrderTiming { sent_ns: 10, arrival_ns: 12, ack_ns: 15 });
        assert_eq!(c.feed_arrival(10), 11);
        let mut r = LatencyKind::Recorded(Box::new(Recorded::same_for_all(vec![7], 1).unwrap()));
        assert_eq!((r.feed_ns(), r.entry_ns(), r.response_ns()), (7, 7, 7));
    }
}
