//! Test plugin `panicky`: a strategy that panics in `on_book`.
//!
//! It exists to prove the host's isolation: the panic is caught by the SDK's `catch_unwind` shim
//! and reported as `CallStatus::Panicked`, the host disables the strategy, cancels its orders and
//! keeps trading. Every other callback is the trait's no-op default.

use strike_sdk::{Ctx, MarketId, Strategy, Universe};

/// The message of the deliberate panic, for tests that look for it.
pub const PANIC_MESSAGE: &str = "panicky plugin: deliberate panic in on_book";

/// A strategy that panics on every `on_book` call (the host must disable it after the first).
pub struct Panicky;

impl Strategy for Panicky {
    const NAME: &'static str = "panicky";

    /// Accepts any configuration and universe.
    fn new(_config: &str, _universe: &Universe) -> Result<Self, String> {
        Ok(Panicky)
    }

    /// Panics with [`PANIC_MESSAGE`].
    fn on_book(&mut self, _ctx: &mut Ctx, _market: MarketId) {
        panic!("{}", PANIC_MESSAGE);
    }
}

strike_sdk::export_strategy!(Panicky);
