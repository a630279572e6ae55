//! Tick-to-trade, in process: the whole pipeline (feed parse → sequencing → book → FLB strategy
//! → risk → V2 order encoding → paper fill) replaying a session, with the FLB strategy linked
//! statically (the same code as `libflb.so`), in each topology: `fused` (one thread) and `split`
//! (feed, trader and gateway threads, `spin-yield`, unpinned: this VM has 2 cores for 3 threads).
//!
//! Criterion times a full replay per iteration (throughput in frames); the engine's own HDR
//! histograms give the per-order tick-to-trade percentiles, printed once per topology before
//! timing. `cargo bench -p strike-bench --bench tick_to_trade`

// The engine binary's allocator: the pipeline's construction and teardown (rings, books,
// histograms) cost 7x more per replay under glibc's malloc, which zeroes reused heap memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::path::PathBuf;
use strike_engine::config::{EngineConfig, Topology};
use strike_engine::host::Plugin;
use strike_engine::pipeline::{run, RunOptions};
use strike_sim::recording::Recording;
use strike_sim::synth::{generate, SynthConfig};

static FLB: strike_sdk::abi::StrategyDescriptor = strike_sdk::abi::descriptor::<flb::Flb>();

fn cfg(topology: Topology) -> EngineConfig {
    EngineConfig { strategies_dir: PathBuf::new(), topology, ..EngineConfig::default() }
}

fn print_hops(name: &str, rec: &Recording, flb: Plugin, topology: Topology) {
    let out = run(&cfg(topology), rec.clone(), &[flb], &RunOptions::default()).expect("run");
    let r = out.report;
    println!(
        "\n{name}, {}: {} frames, {} deltas, {} orders, {} fills",
        topology.name(),
        r.frames,
        r.deltas_applied,
        r.orders,
        r.fills
    );
    println!("  {:<16} {:>8} {:>8} {:>8} {:>8} {:>10}", "hop (ns)", "count", "p50", "p99", "p99.9", "max");
    for (hop, h) in &r.latency_ns {
        println!("  {:<16} {:>8} {:>8} {:>8} {:>8} {:>10}", hop, h.count, h.p50, h.p99, h.p999, h.max);
    }
}

fn replay(c: &mut Criterion) {
    let flb = Plugin::from_static(&FLB).expect("flb descriptor");
    let synth = generate(7, &SynthConfig::default());
    let prod = strike_bench::prod_recording();
    for topology in [Topology::Fused, Topology::Split] {
        print_hops("synthetic session (seed 7)", &synth, flb, topology);
        print_hops("ws_prod_mlb_wnba_2026-08-07", &prod, flb, topology);
    }
    let mut g = c.benchmark_group("replay");
    g.sample_size(20);
    for topology in [Topology::Fused, Topology::Split] {
        for (name, rec) in [("synthetic seed 7 + flb", &synth), ("prod capture + flb", &prod)] {
            g.throughput(Throughput::Elements(rec.frames.len() as u64));
            g.bench_function(format!("{name}, {}", topology.name()), |b| {
                b.iter_batched(
                    || rec.clone(),
                    |r| run(&cfg(topology), r, &[flb], &RunOptions::default()).expect("run").report.deltas_applied,
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
