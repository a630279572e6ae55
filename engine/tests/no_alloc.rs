//! The hot path allocates nothing: a counting global allocator watches every allocation made
//! while the fused pipeline replays real and synthetic sessions (frames parsed, sequenced,
//! applied to books, strategies called, risk-checked, orders encoded and paper-filled).
//! Construction (`Pipeline::new`) and the report (`finish`) are outside the measured window.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use strike_engine::config::EngineConfig;
use strike_engine::host::Plugin;
use strike_engine::pipeline::{Pipeline, RunOptions};
use strike_sdk::market::{MarketId, Universe};
use strike_sdk::num::{Price, Qty};
use strike_sdk::order::{Action, OrderIntent, Outcome, TimeInForce};
use strike_sdk::{Ctx, Strategy};
use strike_sim::recording::Recording;

struct Counting;
static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.realloc(p, l, n)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sends an IOC at the ask of the updated market on every book update (exercises risk, the
/// encoder, taker fills and exec reports on every frame).
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
static FLB: strike_sdk::abi::StrategyDescriptor = strike_sdk::abi::descriptor::<flb::Flb>();

fn hot_path_allocations(rec: Recording) -> (u64, u64, u64) {
    let cfg = EngineConfig { strategies_dir: PathBuf::new(), ..EngineConfig::default() };
    let plugins = [Plugin::from_static(&FLB).unwrap(), Plugin::from_static(&PROBE).unwrap()];
    let mut p = Pipeline::new(&cfg, rec, &plugins, &RunOptions::default()).unwrap();
    ALLOCS.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    p.run_to_end();
    ARMED.store(false, Ordering::SeqCst);
    let n = ALLOCS.load(Ordering::SeqCst);
    let r = p.finish().report;
    (n, r.deltas_applied, r.orders)
}

// One test so the armed window never overlaps another test's thread.
#[test]
fn replaying_allocates_nothing_on_the_hot_path() {
    // The counter works: an allocation inside the armed window is seen.
    ALLOCS.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    let v = std::hint::black_box(vec![1u8; 64]);
    ARMED.store(false, Ordering::SeqCst);
    drop(v);
    assert_eq!(ALLOCS.load(Ordering::SeqCst), 1);

    let prod =
        Recording::read(&strike_sim::data_dir().join("kalshi/ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json"))
            .unwrap();
    let demo =
        Recording::read(&strike_sim::data_dir().join("kalshi/ws_demo_mm_session_2026-07-01/session.jsonl.gz")).unwrap();
    let synth = strike_sim::synth::generate(7, &strike_sim::synth::SynthConfig::default());
    for (name, rec) in [("prod", prod), ("demo", demo), ("synthetic", synth)] {
        let (allocs, deltas, orders) = hot_path_allocations(rec);
        assert!(
            deltas > 200 && orders > 100,
            "{name}: the run must exercise the path ({deltas} deltas, {orders} orders)"
        );
        assert_eq!(allocs, 0, "{name}: {allocs} heap allocations on the hot path ({deltas} deltas, {orders} orders)");
    }
}
