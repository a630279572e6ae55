//! The hot path allocates nothing, in both topologies, with a real strategy plugin `.so` loaded.
//!
//! **How allocations are counted.** This test executable defines the C allocator entry points
//! (`malloc`, `calloc`, `realloc`, `free`, `posix_memalign`, `aligned_alloc`, `memalign`) and
//! forwards them to glibc's `__libc_*` implementations, counting while armed. The dynamic linker
//! resolves every `malloc` in the process to the executable's definition first, so the count
//! covers the engine (Rust's `System` allocator calls `malloc`), the plugin `.so` loaded with
//! `dlopen` (its own copy of `std` calls `malloc` too) and any C code. A Rust `#[global_allocator]`
//! would miss the plugin, which has its own. The first test proves the interposition is live.
//!
//! **What is measured.** Real recorded sessions (prod capture, demo session) and the synthetic
//! default replayed through feed → trader → paper venue, with FLB loaded from `libflb.so` and an
//! in-process probe strategy that sends an IOC on every book update (so risk, encoding, fills
//! and exec reports run on every frame).
//! - `fused`: armed after construction; the whole replay must allocate nothing.
//! - `split`: starting and joining the three stage threads allocates (names, handles, thread
//!   locals: 6 per stage thread here), the same few whatever the recording. So the replay of a whole session
//!   must allocate exactly as much as the replay of its first [`WARM_UP`] frames: not one
//!   allocation more per event after warm-up.

use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use strike_engine::config::{EngineConfig, Topology};
use strike_engine::host::Plugin;
use strike_engine::pipeline::{Pipeline, RunOptions, Stop};
use strike_sdk::market::{MarketId, Universe};
use strike_sdk::num::{Price, Qty};
use strike_sdk::order::{Action, OrderIntent, Outcome, TimeInForce};
use strike_sdk::{Ctx, Strategy};
use strike_sim::recording::Recording;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

extern "C" {
    fn __libc_malloc(n: usize) -> *mut c_void;
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(p: *mut c_void, n: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, n: usize) -> *mut c_void;
    fn __libc_free(p: *mut c_void);
    fn dlsym(handle: *mut c_void, name: *const std::ffi::c_char) -> *mut c_void;
}

#[inline]
fn count() {
    if ARMED.load(Ordering::Relaxed) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

/// # Safety
/// The C `malloc` contract.
#[no_mangle]
pub unsafe extern "C" fn malloc(n: usize) -> *mut c_void {
    count();
    __libc_malloc(n)
}

/// # Safety
/// The C `calloc` contract.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    count();
    __libc_calloc(n, size)
}

/// # Safety
/// The C `realloc` contract.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, n: usize) -> *mut c_void {
    count();
    __libc_realloc(p, n)
}

/// # Safety
/// The C `memalign` contract.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, n: usize) -> *mut c_void {
    count();
    __libc_memalign(align, n)
}

/// # Safety
/// The C `aligned_alloc` contract.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, n: usize) -> *mut c_void {
    count();
    __libc_memalign(align, n)
}

/// # Safety
/// The POSIX `posix_memalign` contract.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, n: usize) -> i32 {
    count();
    let p = __libc_memalign(align, n);
    if p.is_null() {
        return 12; // ENOMEM
    }
    *out = p;
    0
}

/// # Safety
/// The C `free` contract.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    __libc_free(p)
}

/// Sends an IOC at the ask of the updated market on every book update.
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

/// Frames replayed before the split topology's count is taken as its baseline.
const WARM_UP: usize = 50;

struct Counted {
    allocs: u64,
    deltas: u64,
    orders: u64,
    fills: u64,
}

fn replay(rec: Recording, topology: Topology, flb: &Plugin) -> Counted {
    let cfg = EngineConfig { strategies_dir: PathBuf::new(), topology, ..EngineConfig::default() };
    let plugins = [*flb, Plugin::from_static(&PROBE).unwrap()];
    let mut p = Pipeline::new(&cfg, rec, &plugins, &RunOptions::default()).unwrap();
    ALLOCS.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    p.drive(topology, &cfg.threads, &Stop::never());
    ARMED.store(false, Ordering::SeqCst);
    let allocs = ALLOCS.load(Ordering::SeqCst);
    let r = p.finish().report;
    Counted { allocs, deltas: r.deltas_applied, orders: r.orders, fills: r.fills }
}

fn sessions() -> Vec<(&'static str, Recording)> {
    let prod = Recording::read(&strike_tests::data("ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json")).unwrap();
    let demo = Recording::read(&strike_tests::data("ws_demo_mm_session_2026-07-01/session.jsonl.gz")).unwrap();
    let synth = strike_sim::synth::generate(7, &strike_sim::synth::SynthConfig::default());
    vec![("prod", prod), ("demo", demo), ("synthetic", synth)]
}

fn prefix(rec: &Recording, n: usize) -> Recording {
    Recording { header: rec.header.clone(), frames: rec.frames[..n.min(rec.frames.len())].to_vec() }
}

// One test so the armed window never overlaps another test's thread.
#[test]
fn replaying_allocates_nothing_on_the_hot_path_in_either_topology_with_a_plugin_so_loaded() {
    // The interposition is live: the process-wide `malloc` is this executable's, so `dlopen`ed
    // plugins allocate through it; and an allocation inside the armed window is counted.
    let ours = malloc as unsafe extern "C" fn(usize) -> *mut c_void as *mut c_void;
    let global = unsafe { dlsym(std::ptr::null_mut(), c"malloc".as_ptr()) };
    assert_eq!(global, ours, "the dynamic linker must resolve malloc to the counting one");
    ALLOCS.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    let v = std::hint::black_box(vec![1u8; 64]);
    ARMED.store(false, Ordering::SeqCst);
    drop(v);
    assert_eq!(ALLOCS.load(Ordering::SeqCst), 1);

    let flb = Plugin::load(&strike_tests::plugin("flb")).unwrap();
    // Loading and creating the plugin allocates inside the .so, and that is seen.
    ALLOCS.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    let created = {
        let synth = strike_sim::synth::generate(7, &strike_sim::synth::SynthConfig::default());
        let cfg = EngineConfig { strategies_dir: PathBuf::new(), ..EngineConfig::default() };
        Pipeline::new(&cfg, synth, std::slice::from_ref(&flb), &RunOptions::default()).map(|_| ())
    };
    ARMED.store(false, Ordering::SeqCst);
    created.unwrap();
    assert!(ALLOCS.load(Ordering::SeqCst) > 0, "construction allocates, and the counter sees it");

    // The process's first thread spawn caches what it read from the environment
    // (`RUST_MIN_STACK`): done once here so that every counted split run starts alike.
    let sessions = sessions();
    replay(prefix(&sessions[0].1, WARM_UP), Topology::Split, &flb);
    for (name, rec) in sessions {
        let warm = prefix(&rec, WARM_UP);
        let fused = replay(rec.clone(), Topology::Fused, &flb);
        assert!(
            fused.deltas > 200 && fused.orders > 100 && fused.fills > 0,
            "{name}: the run must exercise the path ({} deltas, {} orders, {} fills)",
            fused.deltas,
            fused.orders,
            fused.fills
        );
        assert_eq!(fused.allocs, 0, "{name}, fused: {} heap allocations on the hot path", fused.allocs);

        let base = replay(warm, Topology::Split, &flb);
        let split = replay(rec, Topology::Split, &flb);
        assert_eq!(split.deltas, fused.deltas, "{name}: split applied every delta");
        assert!(split.orders > 100, "{name}: split traded ({} orders)", split.orders);
        assert_eq!(
            split.allocs, base.allocs,
            "{name}, split: the whole session allocated {} times, its first {WARM_UP} frames {} times (thread start-up)",
            split.allocs, base.allocs
        );
    }
}
