//! Shared fixtures for the Strike benchmarks: real recorded frames from `STRIKE_DATA_DIR`, and a
//! per-call latency sampler for the percentiles criterion does not give.

use strike_sim::recording::Recording;

/// The production capture (`ws_prod_mlb_wnba_2026-08-07`), NO-price scale.
pub fn prod_recording() -> Recording {
    let p = strike_sim::data_dir().join("kalshi/ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json");
    Recording::read(&p).unwrap_or_else(|e| panic!("{e}: set STRIKE_DATA_DIR to the shared data folder"))
}

/// The demo-exchange market-maker session (`ws_demo_mm_session_2026-07-01`: 5 markets, 5 snapshots,
/// 2,885 deltas), NO-price scale.
pub fn demo_recording() -> Recording {
    let p = strike_sim::data_dir().join("kalshi/ws_demo_mm_session_2026-07-01/session.jsonl.gz");
    Recording::read(&p).unwrap_or_else(|e| panic!("{e}: set STRIKE_DATA_DIR to the shared data folder"))
}

/// Frames of `rec` whose text contains `"type":"<ty>"`.
pub fn frames_of(rec: &Recording, ty: &str) -> Vec<Vec<u8>> {
    let needle = format!("\"type\":\"{ty}\"");
    rec.frames.iter().filter(|f| f.text.contains(&needle)).map(|f| f.text.as_bytes().to_vec()).collect()
}

/// Per-call latency percentiles, nanoseconds, from [`per_call_ns`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CallStats {
    /// Median over batches of ~2 µs of calls, divided by the batch size: resolves operations below
    /// the timer step, and, being a median, ignores the batches a busy machine preempted.
    pub median: f64,
    /// Median of single timed calls.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Median cost of an empty timed call, already subtracted from the three values above.
    pub floor: f64,
}

/// Times `n` calls of `f` one at a time between two TSC reads (`quanta::Clock::raw`), after `n / 10`
/// unmeasured warm-up calls, and returns the percentiles in nanoseconds with the median cost of an
/// empty timed call subtracted (floored at 0); then times 2,000 batches of calls sized to ~2 µs
/// for [`CallStats::median`] (the method of `perf-notes.md`).
///
/// Criterion reports means and medians of wall time over batches; this gives the tail it does not,
/// and a median that a shared machine's time slicing does not inflate. On the dev VM the TSC
/// advances in steps of ~10 ns and a clock read costs ~10 ns (`perf-notes.md`), so per-call values
/// below ~30 ns are at the timer floor. `n` must be at least 1000.
pub fn per_call_ns<R>(n: usize, mut f: impl FnMut() -> R) -> CallStats {
    assert!(n >= 1000, "per_call_ns needs at least 1000 samples, got {n}");
    let clock = quanta::Clock::new();
    let sample = |g: &mut dyn FnMut()| -> Vec<u64> {
        for _ in 0..n / 10 {
            g();
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = clock.raw();
            g();
            let t1 = clock.raw();
            v.push(clock.delta_as_nanos(t0, t1));
        }
        v.sort_unstable();
        v
    };
    let empty = sample(&mut || {
        std::hint::black_box(());
    });
    let floor = empty[empty.len() / 2] as f64;
    let v = sample(&mut || {
        std::hint::black_box(f());
    });
    let at = |q: f64| (v[((v.len() as f64 * q) as usize).min(v.len() - 1)] as f64 - floor).max(0.0);
    let batch = (2000.0 / (v[v.len() / 2] as f64).max(1.0)).clamp(1.0, 4096.0) as usize;
    let mut per = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let t0 = clock.raw();
        for _ in 0..batch {
            std::hint::black_box(f());
        }
        let t1 = clock.raw();
        per.push((clock.delta_as_nanos(t0, t1) as f64 - floor).max(0.0) / batch as f64);
    }
    per.sort_unstable_by(f64::total_cmp);
    CallStats { median: per[per.len() / 2], p50: at(0.50), p99: at(0.99), p999: at(0.999), floor }
}
