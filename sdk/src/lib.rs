//! # strike-sdk
//!
//! Everything the Strike engine and its strategy plugins share, and nothing else: exact
//! fixed-point [`Price`]/[`Qty`]/[`Money`], per-market [`PriceGrid`]s, the fixed-level [`Book`],
//! Kalshi fee math ([`fees`]), market metadata and outcome groups ([`market`]), orders and the
//! events about them ([`order`]), the [`Strategy`] trait with its [`Ctx`], the plugin C ABI
//! ([`abi`], [`export_strategy!`]) and the helpers every strategy needs ([`helpers`]).
//!
//! A strategy crate depends only on this crate, implements [`Strategy`], calls
//! [`export_strategy!`] and builds as a `cdylib` (`crate-type = ["cdylib"]`). This is the
//! README's 30-line example, compiled as a test:
//!
//! ```
//! use strike_sdk::{Action, BookStatus, Ctx, MarketId, OrderIntent, Outcome, Price, Qty, Strategy};
//! use strike_sdk::{TimeInForce, Universe};
//!
//! /// Buys one YES contract (fill-or-kill) when a market's ask is at or below `limit`.
//! pub struct CheapYes {
//!     limit: Price,
//! }
//!
//! impl Strategy for CheapYes {
//!     const NAME: &'static str = "cheap_yes";
//!
//!     fn new(config: &str, _universe: &Universe) -> Result<Self, String> {
//!         // config/strategies/cheap_yes.toml: `limit = "0.05"` (a real strategy uses serde + toml)
//!         let text = config.split('"').nth(1).unwrap_or("0.05");
//!         let limit = Price::parse(text).map_err(|e| format!("limit {text:?}: {e}"))?;
//!         Ok(CheapYes { limit })
//!     }
//!
//!     fn on_book(&mut self, ctx: &mut Ctx, m: MarketId) {
//!         let Some(book) = ctx.book(m) else { return };
//!         if book.status != BookStatus::Live || !ctx.position(m).qty.is_zero() {
//!             return;
//!         }
//!         if let Some((ask, size)) = book.best_ask() {
//!             if ask <= self.limit && size >= Qty::contracts(1) {
//!                 let order = OrderIntent::limit(m, Outcome::Yes, Action::Buy, ask, Qty::contracts(1), TimeInForce::Fok);
//!                 let _ = ctx.submit(order); // risk checks it before anything is sent
//!             }
//!         }
//!     }
//! }
//!
//! strike_sdk::export_strategy!(CheapYes);
//! ```

#![warn(missing_docs)]

pub mod abi;
pub mod book;
pub mod ctx;
pub mod fees;
pub mod grid;
pub mod helpers;
pub mod market;
pub mod num;
pub mod order;
pub mod strategy;

pub use book::{Book, BookFault, BookSide, BookStatus};
pub use ctx::{Ctx, CtxFull};
pub use fees::{AccountPrecision, FeeSchedule, FeeType, Liquidity, OrderFeeAccumulator};
pub use grid::{PriceGrid, PriceStructure};
pub use market::{
    GroupId, GroupKind, MarketId, MarketMeta, OutcomeGroup, Settlement, Strike, StrikeType, Ticker, Universe,
};
pub use num::{Money, ParseError, Price, Qty};
pub use order::{
    Action, CancelIntent, Fill, OpenOrder, OrderIntent, OrderRef, OrderStatus, OrderUpdate, Outcome, Position,
    RejectReason, Signal, TimeInForce, Trade,
};
pub use strategy::Strategy;
