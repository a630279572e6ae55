//! Test plugin `bad_abi`: a well-formed descriptor that claims ABI version 999.
//!
//! The entry symbol is written by hand instead of with `export_strategy!` so the descriptor can
//! carry a wrong `abi_version` while every other field (magic, sizes, versions, name, vtable) is
//! valid: the host must refuse it on the version alone, with a clear error, and never call into
//! the vtable.

use strike_sdk::abi::{descriptor, StrategyDescriptor};
use strike_sdk::{Ctx, MarketId, Strategy, Universe};

/// The ABI version this plugin claims: one no host implements.
pub const BAD_ABI_VERSION: u32 = 999;

/// A do-nothing strategy behind the bad descriptor.
pub struct BadAbi;

impl Strategy for BadAbi {
    const NAME: &'static str = "bad_abi";

    /// Accepts any configuration (the host must never get this far).
    fn new(_config: &str, _universe: &Universe) -> Result<Self, String> {
        Ok(BadAbi)
    }

    /// Does nothing.
    fn on_book(&mut self, _ctx: &mut Ctx, _market: MarketId) {}
}

/// The descriptor: valid in every field except `abi_version`.
static DESCRIPTOR: StrategyDescriptor = StrategyDescriptor { abi_version: BAD_ABI_VERSION, ..descriptor::<BadAbi>() };

/// Plugin entry point (see `strike_sdk::abi`), returning the descriptor with the wrong version.
#[no_mangle]
pub extern "C" fn strike_strategy_entry() -> *const StrategyDescriptor {
    &DESCRIPTOR
}
