//! Thread placement of the stages: which core each stage thread is pinned to and how it waits
//! when it has nothing to do.
//!
//! A stage loop calls [`Waiter::idle`] after a round that did no work and [`Waiter::busy`]
//! after one that did. What an idle round costs and what it saves (measured on the dev VM,
//! `../shared/perf-notes.md`):
//!
//! | [`WaitStrategy`] | idle round | wake-up after work arrives | CPU while idle |
//! |---|---|---|---|
//! | `busy-spin` | `spin_loop` hint | the next poll, ~0.1 µs | one core, always |
//! | `spin-yield` | spin [`SPIN_ROUNDS`] rounds, then `sched_yield` (~0.3 µs) each round | ≤ one yield | one core unless others want it |
//! | `block` | sleep [`BLOCK_SLICE`] | up to the slice + the timer wake-up (~50–70 µs here) | none |
//!
//! `block` is the choice for a core shared with other work; on the feed thread of a live run the
//! socket source waits inside its own `mio` poll, so the slice only bounds how late a ring-fed
//! stage notices new events. Never block on the hot path of a run where latency matters: a
//! blocking wake-up costs ~22 µs here, against ~110 ns for an `rtrb` hand-off.

use std::time::Duration;

/// Idle rounds `spin-yield` spins before it starts yielding.
pub const SPIN_ROUNDS: u32 = 2_000;

/// How long `block` sleeps per idle round: 50 µs.
pub const BLOCK_SLICE: Duration = Duration::from_micros(50);

/// How a stage thread waits for work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitStrategy {
    /// Poll without pause (`busy-spin`): lowest latency, burns its core.
    BusySpin,
    /// Spin [`SPIN_ROUNDS`] idle rounds, then `sched_yield` between polls (`spin-yield`).
    #[default]
    SpinYield,
    /// Sleep [`BLOCK_SLICE`] per idle round (`block`): no CPU while idle.
    Block,
}

impl WaitStrategy {
    /// Config name: `busy-spin`, `spin-yield`, `block`.
    pub const fn name(self) -> &'static str {
        match self {
            WaitStrategy::BusySpin => "busy-spin",
            WaitStrategy::SpinYield => "spin-yield",
            WaitStrategy::Block => "block",
        }
    }

    /// Parses a config name; `None` for anything else.
    pub fn parse(s: &str) -> Option<WaitStrategy> {
        match s {
            "busy-spin" => Some(WaitStrategy::BusySpin),
            "spin-yield" => Some(WaitStrategy::SpinYield),
            "block" => Some(WaitStrategy::Block),
            _ => None,
        }
    }
}

/// Placement of one stage thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ThreadSpec {
    /// Core id to pin to (`core_affinity` numbering: 0 .. cores − 1); `None` leaves the thread to
    /// the scheduler.
    pub core: Option<usize>,
    /// How it waits when idle.
    pub wait: WaitStrategy,
}

/// Placement of every stage thread (`[threads.feed]`, `[threads.trader]`, `[threads.gateway]`
/// in `engine.toml`). In the `fused` topology the one stage thread uses `feed`'s spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Threads {
    /// The feed thread (the only stage thread when fused).
    pub feed: ThreadSpec,
    /// The trader thread (books, strategies, risk).
    pub trader: ThreadSpec,
    /// The gateway thread (paper venue or REST gateway).
    pub gateway: ThreadSpec,
}

/// Why a placement cannot be applied on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementError(pub String);

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlacementError {}

impl Threads {
    /// Checks every pinned core exists here (`core_affinity::get_core_ids`), naming each that
    /// does not.
    pub fn check(&self) -> Result<(), PlacementError> {
        let ids: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
        let mut bad = Vec::new();
        for (name, spec) in [("feed", self.feed), ("trader", self.trader), ("gateway", self.gateway)] {
            if let Some(c) = spec.core {
                if !ids.contains(&c) {
                    bad.push(format!("threads.{name}.core = {c}"));
                }
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(PlacementError(format!(
                "{} names a core this machine does not have (cores here: {:?}); change it in engine.toml or remove it to leave the thread unpinned",
                bad.join(", "),
                ids
            )))
        }
    }
}

/// Pins the calling thread per `spec` (nothing when `spec.core` is `None`). Returns whether the
/// OS accepted the pin.
pub fn pin(spec: ThreadSpec) -> bool {
    match spec.core {
        None => true,
        Some(id) => core_affinity::set_for_current(core_affinity::CoreId { id }),
    }
}

/// The idle-round state of one stage loop.
#[derive(Debug)]
pub struct Waiter {
    wait: WaitStrategy,
    idle_rounds: u32,
}

impl Waiter {
    /// A waiter for `wait`.
    pub const fn new(wait: WaitStrategy) -> Waiter {
        Waiter { wait, idle_rounds: 0 }
    }

    /// After a round that did work.
    #[inline]
    pub fn busy(&mut self) {
        self.idle_rounds = 0;
    }

    /// After a round that did no work: waits per the strategy.
    #[inline]
    pub fn idle(&mut self) {
        match self.wait {
            WaitStrategy::BusySpin => std::hint::spin_loop(),
            WaitStrategy::SpinYield => {
                if self.idle_rounds < SPIN_ROUNDS {
                    self.idle_rounds += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            WaitStrategy::Block => std::thread::sleep(BLOCK_SLICE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for w in [WaitStrategy::BusySpin, WaitStrategy::SpinYield, WaitStrategy::Block] {
            assert_eq!(WaitStrategy::parse(w.name()), Some(w));
        }
        assert_eq!(WaitStrategy::parse("spin"), None);
    }

    #[test]
    fn a_core_this_machine_lacks_is_named() {
        let t = Threads { trader: ThreadSpec { core: Some(4096), wait: WaitStrategy::Block }, ..Threads::default() };
        let e = t.check().unwrap_err().0;
        assert!(e.contains("threads.trader.core = 4096"), "{e}");
        assert!(Threads::default().check().is_ok());
    }
}
