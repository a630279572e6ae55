//! # strike-sdk
//!
//! Everything the Strike engine and its strategy plugins share, and nothing else: exact
//! fixed-point [`Price`]/[`Qty`]/[`Money`], per-market [`PriceGrid`]s, the fixed-level [`Book`],
//! Kalshi fee math ([`fees`]), market metadata and outcome groups ([`market`]), orders and the
//! events about them ([`order`]), the [`Strategy`] trait with its [`Ctx`], the plugin C ABI
//! ([`abi`], [`export_strategy!`]) and the helpers every strategy needs ([`helpers`]).
//!
//! A strategy crate depends only on this crate, implements [`Strategy`], calls
//! [`export_strategy!`] and builds as a `cdylib`.

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
