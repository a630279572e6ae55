//! The end-of-run report: what was received, what went wrong, what was traded, what it earned,
//! and how long every hop took. Printed as text at exit and optionally written as JSON
//! (`--report-json`) for scripts and CI.
//!
//! Dollar amounts and percentiles are computed here, off the hot path; `f64` appears only in
//! this report's dollar figures.

use super::{Hop, Latency};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use strike_sdk::num::Money;

/// Percentiles of one hop, nanoseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HopStats {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

/// Fees and P&L in dollars.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct PnlReport {
    /// Realized on closed contracts, before fees.
    pub realized: f64,
    /// Open positions at their marks (settlement where known, else mid).
    pub unrealized_mtm: f64,
    /// Fees paid.
    pub fees: f64,
    /// `realized + unrealized_mtm − fees`.
    pub total_mtm: f64,
    /// Markets with an open position at exit.
    pub open_markets: u32,
    /// Of those, marked at a known settlement result.
    pub marked_at_settlement: u32,
}

/// One strategy's state at exit.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StrategyReport {
    /// Name.
    pub name: String,
    /// Still enabled.
    pub enabled: bool,
    /// Panics caught.
    pub panics: u32,
    /// Callback that panicked.
    pub disabled_in: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct Report {
    /// Where the frames came from.
    pub source: String,
    /// Markets in the universe.
    pub markets: usize,
    /// Frames read.
    pub frames: u64,
    /// Messages by Kalshi `type`.
    pub messages: BTreeMap<String, u64>,
    /// Faults by kind: parse faults, book faults.
    pub faults: BTreeMap<String, u64>,
    /// Sequence gaps.
    pub gaps: u64,
    /// Markets marked stale.
    pub stale_markets: u64,
    /// Markets still stale (or never snapshotted) at exit.
    pub stale_at_exit: u64,
    /// Resnapshot requests made.
    pub resnapshot_requests: u64,
    /// Snapshots applied.
    pub snapshots_applied: u64,
    /// Deltas applied.
    pub deltas_applied: u64,
    /// Deltas dropped because their book was not live.
    pub deltas_dropped_not_live: u64,
    /// Ring stalls (a full ring made a producer wait).
    pub ring_stalls: u64,
    /// Intents queued by strategies.
    pub intents: u64,
    /// Orders sent.
    pub orders: u64,
    /// Cancels sent.
    pub cancels: u64,
    /// Fills.
    pub fills: u64,
    /// Taker fills.
    pub taker_fills: u64,
    /// Maker fills.
    pub maker_fills: u64,
    /// Contracts filled.
    pub contracts_filled: f64,
    /// Notional filled, dollars.
    pub notional_filled: f64,
    /// A live session's connection and sync events by kind (disconnects, private frames,
    /// resyncs, positions set to the venue's figure); empty in a replay.
    pub live: BTreeMap<String, u64>,
    /// Rows the journal wrote, by table, and events it dropped (`dropped`); empty without a
    /// journal.
    pub journal: BTreeMap<String, u64>,
    /// Rejects by reason (risk and venue).
    pub rejects: BTreeMap<String, u64>,
    /// Fees and P&L.
    pub pnl: PnlReport,
    /// Latency per hop.
    pub latency_ns: BTreeMap<String, HopStats>,
    /// Strategies.
    pub strategies: Vec<StrategyReport>,
    /// Wall time of the run, seconds.
    pub wall_seconds: f64,
}

/// Dollars from micro-dollars (reports only).
pub fn dollars(m: Money) -> f64 {
    m.as_dollars_f64()
}

/// Percentiles of every hop with samples.
pub fn latency_table(l: &Latency) -> BTreeMap<String, HopStats> {
    let mut t = BTreeMap::new();
    for hop in Hop::ALL {
        let h = l.hist(hop);
        if h.is_empty() {
            continue;
        }
        t.insert(
            hop.name().to_string(),
            HopStats {
                count: h.len(),
                p50: h.value_at_quantile(0.50),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
            },
        );
    }
    t
}

/// The latency table as text: one line per hop with samples (count, p50, p99, p99.9, max, ns).
pub fn latency_text(l: &Latency) -> String {
    let mut o = String::from("latency (ns)      count        p50        p99      p99.9        max\n");
    for (name, h) in latency_table(l) {
        o.push_str(&format!("  {name:<16}{:>6} {:>10} {:>10} {:>10} {:>10}\n", h.count, h.p50, h.p99, h.p999, h.max));
    }
    o
}

impl Report {
    /// Total parse and book faults.
    pub fn fault_total(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Human-readable text.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "== Strike run report ==");
        let _ = writeln!(o, "source            {}", self.source);
        let _ = writeln!(o, "markets           {}", self.markets);
        let _ = writeln!(o, "frames            {}   wall {:.3} s", self.frames, self.wall_seconds);
        let _ = writeln!(o, "messages by type");
        for (k, v) in &self.messages {
            let _ = writeln!(o, "  {k:<24} {v}");
        }
        let _ = writeln!(o, "faults            {}", self.fault_total());
        for (k, v) in &self.faults {
            let _ = writeln!(o, "  {k:<24} {v}");
        }
        let _ = writeln!(
            o,
            "sequencing        gaps {}  stale marked {}  stale at exit {}  resnapshot requests {}",
            self.gaps, self.stale_markets, self.stale_at_exit, self.resnapshot_requests
        );
        let _ = writeln!(
            o,
            "books             snapshots {}  deltas applied {}  dropped (not live) {}  ring stalls {}",
            self.snapshots_applied, self.deltas_applied, self.deltas_dropped_not_live, self.ring_stalls
        );
        let _ = writeln!(
            o,
            "orders            intents {}  sent {}  cancels {}  fills {} (taker {}, maker {})",
            self.intents, self.orders, self.cancels, self.fills, self.taker_fills, self.maker_fills
        );
        let _ = writeln!(
            o,
            "filled            {:.2} contracts  ${:.2} notional",
            self.contracts_filled, self.notional_filled
        );
        if !self.live.is_empty() {
            let items: Vec<String> = self.live.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(o, "live session      {}", items.join("  "));
        }
        if !self.journal.is_empty() {
            let items: Vec<String> = self.journal.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(o, "journal           {}", items.join("  "));
        }
        let _ = writeln!(o, "rejects           {}", self.rejects.values().sum::<u64>());
        for (k, v) in &self.rejects {
            let _ = writeln!(o, "  {k:<24} {v}");
        }
        let p = &self.pnl;
        let _ = writeln!(
            o,
            "P&L ($)           realized {:.4}  unrealized(mtm) {:.4}  fees {:.4}  total {:.4}",
            p.realized, p.unrealized_mtm, p.fees, p.total_mtm
        );
        let _ = writeln!(
            o,
            "positions         {} open at exit, {} marked at settlement",
            p.open_markets, p.marked_at_settlement
        );
        let _ = writeln!(o, "latency (ns)      {:>10} {:>9} {:>9} {:>9} {:>12}", "count", "p50", "p99", "p99.9", "max");
        for hop in Hop::ALL {
            if let Some(h) = self.latency_ns.get(hop.name()) {
                let _ = writeln!(
                    o,
                    "  {:<16}{:>10} {:>9} {:>9} {:>9} {:>12}",
                    hop.name(),
                    h.count,
                    h.p50,
                    h.p99,
                    h.p999,
                    h.max
                );
            }
        }
        for s in &self.strategies {
            let _ = writeln!(
                o,
                "strategy {:<8} {}{}",
                s.name,
                if s.enabled { "enabled" } else { "DISABLED" },
                match &s.disabled_in {
                    Some(cb) => format!(" (panicked in {cb}; its orders were cancelled)"),
                    None => String::new(),
                }
            );
        }
        o
    }
}
