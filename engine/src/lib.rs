//! # strike-engine
//!
//! The Strike trading engine. One folder per concern:
//! - [`feed`]: Kalshi WebSocket frames → parsed, sequenced market data;
//! - [`trader`]: books, strategy dispatch, risk, positions;
//! - [`gateway`]: order encoding and the venue (paper execution in this build);
//! - [`pipeline`]: the ring events and the loop that drives the stages;
//! - [`host`]: strategy plugin loading and dispatch;
//! - [`risk`], [`portfolio`], [`telemetry`], [`config`], [`cli`].
//!
//! Dependency direction: `strike-sdk ← strike-sim ← strike-engine`.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod feed;
pub mod gateway;
pub mod host;
pub mod pipeline;
pub mod portfolio;
pub mod risk;
pub mod telemetry;
pub mod trader;
