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
//! - `tick_to_trade`: frame pickup → order bytes ready (paper venue) or written to the socket
//!   (REST gateway, [`crate::gateway::rest`]): the headline number, budget 27 ms;
//! - `order_round_trip`: a create's bytes written → its response read (REST gateway only);
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
    /// Create request written → response read.
    OrderRoundTrip = 7,
}

impl Hop {
    /// Every hop in pipeline order.
    pub const ALL: [Hop; 8] = [
        Hop::FeedParse,
        Hop::BookApply,
        Hop::Strategy,
        Hop::Risk,
        Hop::OrderEncode,
        Hop::TickToTrade,
        Hop::ExchangeToRecv,
        Hop::OrderRoundTrip,
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
            Hop::OrderRoundTrip => "order_round_trip",
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

/// Writes `h` in HdrHistogram's percentile-distribution text format (the `.hgrm` files
/// HdrHistogram's plotters read): one row per quantile step (5 ticks per half distance) with the
/// value in nanoseconds, the quantile, the cumulative count and `1/(1-quantile)`, then the mean,
/// standard deviation, maximum and total count. Cold path (formats text).
pub fn write_hgrm(h: &Histogram<u64>, out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(out, "{:>12} {:>14} {:>10} {:>14}", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")?;
    writeln!(out)?;
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            writeln!(
                out,
                "{:>12.3} {:>2.12} {:>10} {:>14.2}",
                v.value_iterated_to() as f64,
                q,
                total,
                1.0 / (1.0 - q)
            )?;
        } else {
            writeln!(out, "{:>12.3} {:>2.12} {:>10}", v.value_iterated_to() as f64, q, total)?;
        }
    }
    writeln!(out, "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]", h.mean(), h.stdev())?;
    writeln!(out, "#[Max     = {:>12.3}, Total count    = {:>12}]", h.max() as f64, h.len())?;
    Ok(())
}

impl Latency {
    /// Writes `<dir>/<prefix><hop>.hgrm` ([`write_hgrm`], nanoseconds) for every hop with
    /// samples; creates `dir`. Returns the files written. Cold path.
    pub fn export_hgrm(&self, dir: &std::path::Path, prefix: &str) -> std::io::Result<Vec<std::path::PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut files = Vec::new();
        for hop in Hop::ALL {
            let h = self.hist(hop);
            if h.is_empty() {
                continue;
            }
            let path = dir.join(format!("{prefix}{}.hgrm", hop.name()));
            let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
            write_hgrm(h, &mut f)?;
            std::io::Write::flush(&mut f)?;
            files.push(path);
        }
        Ok(files)
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

#[cfg(test)]
mod hgrm_tests {
    use super::*;

    #[test]
    fn hgrm_rows_climb_to_the_whole_count() {
        let mut l = Latency::default();
        for v in 1..=1000u64 {
            l.record(Hop::TickToTrade, v * 100);
        }
        let mut out = Vec::new();
        write_hgrm(l.hist(Hop::TickToTrade), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<(f64, f64, u64)> = text
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                (c[0].parse().unwrap(), c[1].parse().unwrap(), c[2].parse().unwrap())
            })
            .collect();
        assert!(rows.len() > 10, "{text}");
        assert!(rows.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0].2 <= w[1].2), "{text}");
        let last = rows.last().unwrap();
        assert_eq!((last.1, last.2), (1.0, 1000));
        // 3 significant digits: the max (100,000 ns) within 0.1 %
        assert!((last.0 - 100_000.0).abs() <= 100.0, "{last:?}");
        assert!(text.contains("Total count    =         1000]"), "{text}");
    }
}
