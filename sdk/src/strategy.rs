//! The [`Strategy`] trait: what a plugin implements.
//!
//! A strategy is created from its TOML text and the market universe, then called back on the
//! trader thread. Callbacks must not block, lock or allocate on the hot path; they read through
//! [`Ctx`] and write intents into its fixed buffers. A panic in any callback is caught at the ABI
//! boundary ([`crate::abi`]): the host disables the strategy, cancels its orders and trading
//! goes on.

use crate::ctx::Ctx;
use crate::market::{MarketId, Universe};
use crate::order::{Fill, OrderUpdate, Signal, Trade};

/// A trading strategy. Export it with [`crate::export_strategy!`].
/// `Send` because the engine creates strategies on its main thread and runs them on the
/// trader thread.
pub trait Strategy: Send + Sized + 'static {
    /// Short name, used in reports and to find `config/strategies/<NAME>.toml`.
    const NAME: &'static str;

    /// Builds the strategy from its TOML configuration (`""` when none) and the markets it may
    /// trade. Errors are shown to the user verbatim: say what is wrong and how to fix it.
    fn new(config: &str, universe: &Universe) -> Result<Self, String>;

    /// A market's book changed (snapshot or delta applied).
    fn on_book(&mut self, ctx: &mut Ctx, market: MarketId);

    /// A public trade printed.
    fn on_trade(&mut self, _ctx: &mut Ctx, _trade: &Trade) {}

    /// One of this strategy's orders filled (in part or in full).
    fn on_fill(&mut self, _ctx: &mut Ctx, _fill: &Fill) {}

    /// One of this strategy's orders changed state (resting, cancelled, rejected, filled).
    fn on_order_update(&mut self, _ctx: &mut Ctx, _update: &OrderUpdate) {}

    /// An external signal arrived (model probabilities, reference data).
    fn on_signal(&mut self, _ctx: &mut Ctx, _signal: &Signal) {}

    /// Periodic timer, `now_ns` on the engine clock.
    fn on_timer(&mut self, _ctx: &mut Ctx, _now_ns: u64) {}

    /// The engine is stopping; cancel or flatten here if wanted.
    fn on_shutdown(&mut self, _ctx: &mut Ctx) {}
}
