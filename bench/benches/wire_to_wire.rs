//! Wire-to-wire over loopback TLS against the simulator: from the simulator handing a market-data
//! frame to its WebSocket socket to it having read the create request the frame triggered, with
//! the engine's real network stack in between (TLS + WebSocket read, parse, book, strategy, risk,
//! encode, pre-signed auth headers, TLS write of the REST request), both ends stamped by the
//! simulator on one clock ([`strike_sim::server::stats::wire_ns`]).
//!
//! Set-up: the real `orderbook_delta` frames of the prod capture, re-timed 2 ms apart and served
//! at that pace (`Pacing::Recorded`), so every frame stands alone on the wire; a probe strategy
//! sends a 0.01-contract IOC at the best ask on every book update. Each create is paired with
//! the last frame sent before it (unambiguous: the engine answers well within 2 ms; a create
//! more than 2 ms after its frame is counted as unpaired). Rows: `fused` and `split` with the
//! default `spin-yield` threads, and `fused` with `block` (a thread that sleeps when idle leaves
//! the second core to the simulator's threads). The account is on the `prestige`
//! rate-limit tier so that no order waits for a token. Threads are unpinned: 2 vCPUs here for
//! the engine's threads and the simulator's.
//!
//! Not criterion: one sample per frame, from the simulator's stamps, in an HDR histogram.
//! `cargo bench -p strike-bench --bench wire_to_wire`

// The engine binary's allocator: the pipeline's construction and teardown (rings, books,
// histograms) cost 7x more per replay under glibc's malloc, which zeroes reused heap memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use hdrhistogram::Histogram;
use std::path::PathBuf;
use strike_engine::config::{EngineConfig, Topology};
use strike_engine::host::Plugin;
use strike_engine::pipeline::RunOptions;
use strike_sdk::market::{MarketId, Universe};
use strike_sdk::num::{Price, Qty};
use strike_sdk::order::{Action, OrderIntent, Outcome, TimeInForce};
use strike_sdk::{Ctx, Strategy};
use strike_sim::recording::Recording;
use strike_sim::server::Pacing;

/// Sends an IOC for 0.01 contract at the ask of the updated market on every book update.
struct Probe;
impl Strategy for Probe {
    const NAME: &'static str = "probe";
    fn new(_: &str, _: &Universe) -> Result<Self, String> {
        Ok(Probe)
    }
    fn on_book(&mut self, ctx: &mut Ctx, m: MarketId) {
        let ask = ctx.book(m).and_then(|b| b.best_ask()).map(|(p, _)| p).unwrap_or(Price(5000));
        let _ = ctx.submit(OrderIntent::limit(m, Outcome::Yes, Action::Buy, ask, Qty(1), TimeInForce::Ioc));
    }
}

static PROBE: strike_sdk::abi::StrategyDescriptor = strike_sdk::abi::descriptor::<Probe>();

/// Gap between two frames on the wire, ns.
const GAP_NS: u64 = 2_000_000;

/// The prod capture with its frames re-timed `GAP_NS` apart.
fn spaced(rec: &Recording) -> Recording {
    let mut r = rec.clone();
    let t0 = r.frames.first().map_or(0, |f| f.recv_ns);
    for (i, f) in r.frames.iter_mut().enumerate() {
        f.recv_ns = t0 + i as u64 * GAP_NS;
    }
    r
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that does not match skips the run.
    if std::env::args().skip(1).any(|a| !a.starts_with("--") && !"wire_to_wire".contains(a.as_str())) {
        return;
    }
    let rec = spaced(&strike_bench::prod_recording());
    let probe = Plugin::from_static(&PROBE).expect("probe descriptor");
    println!(
        "wire-to-wire over loopback TLS (prod capture frames {} ms apart, probe IOC on every update)",
        GAP_NS / 1_000_000
    );
    println!(
        "  {:<8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "topology", "paired", "unpaired", "p50 µs", "p90 µs", "p99 µs", "max µs", "t2t p50", "rtt p50"
    );
    let block = strike_engine::pipeline::threads::ThreadSpec {
        core: None,
        wait: strike_engine::pipeline::threads::WaitStrategy::Block,
    };
    let blocking = strike_engine::pipeline::threads::Threads { feed: block, trader: block, gateway: block };
    for (topology, threads) in
        [(Topology::Fused, Default::default()), (Topology::Split, Default::default()), (Topology::Fused, blocking)]
    {
        // One order per 2 ms frame is 500 creates/s: the `prestige` tier's buckets (800 creates/s)
        // never hold one back, so the latency is the stack's, not the rate limiter's.
        let cfg = EngineConfig {
            strategies_dir: PathBuf::new(),
            topology,
            threads,
            rate_limit_tier: strike_engine::gateway::ratelimit::Tier::Prestige,
            ..EngineConfig::default()
        };
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        let (mut paired, mut unpaired) = (0u64, 0u64);
        let mut t2t = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        let mut rtt = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        for _ in 0..4 {
            let out = strike_engine::live::run_simulated(
                &cfg,
                rec.clone(),
                &[probe],
                Pacing::Recorded { speed: 1.0 },
                &RunOptions::default(),
            )
            .unwrap_or_else(|e| panic!("simulated run: {e}"));
            let wire = out.wire.expect("a simulated run has wire stamps");
            for &c in &wire.creates_read_ns {
                let i = wire.frames_sent_ns.partition_point(|&f| f <= c);
                match i.checked_sub(1).map(|j| c - wire.frames_sent_ns[j]) {
                    Some(d) if d <= GAP_NS => {
                        paired += 1;
                        h.saturating_record(d.max(1));
                    }
                    _ => unpaired += 1,
                }
            }
            t2t.add(out.latency.hist(strike_engine::telemetry::Hop::TickToTrade)).expect("same bounds");
            rtt.add(out.latency.hist(strike_engine::telemetry::Hop::OrderRoundTrip)).expect("same bounds");
        }
        let us = |v: u64| v as f64 / 1000.0;
        println!(
            "  {:<14} {:>7} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8.1}µs {:>8.1}µs",
            format!("{}, {}", topology.name(), threads.feed.wait.name()),
            paired,
            unpaired,
            us(h.value_at_quantile(0.5)),
            us(h.value_at_quantile(0.9)),
            us(h.value_at_quantile(0.99)),
            us(h.max()),
            us(t2t.value_at_quantile(0.5)),
            us(rtt.value_at_quantile(0.5)),
        );
    }
}
