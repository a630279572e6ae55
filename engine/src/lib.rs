//! # strike-engine
//!
//! The Strike trading engine. One folder per concern:
//! - [`feed`]: Kalshi WebSocket frames → parsed, sequenced market data;
//! - [`trader`]: books, strategy dispatch, risk, positions;
//! - [`gateway`]: order encoding and the venues: paper execution, and the Kalshi REST V2 gateway;
//! - [`auth`]: Kalshi API key loading, request signing and the background pre-signer;
//! - [`pipeline`]: the ring events and the loop that drives the stages;
//! - [`host`]: strategy plugin loading and dispatch;
//! - [`live`]: sessions against a Kalshi venue (paper trading on live data, recording);
//! - [`metadata`]: market metadata over REST (cold path);
//! - [`journal`]: the SQLite journal of faults, sessions, orders, updates and fills, written off
//!   the hot path by its own thread;
//! - [`risk`], [`portfolio`], [`telemetry`], [`config`], [`cli`].
//!
//! Dependency direction: `strike-sdk ← strike-sim ← strike-engine`.
//!
//! ## Where this departs from `DESIGN.md`, and why
//! - The trader stage has its own folder, [`trader`], beside [`pipeline`] (which keeps the ring
//!   events and the loop): books, dispatch and order state are one concern, the wiring another.
//! - Frames are parsed by walking simd-json's tape ([`feed::parse`]), not through serde: the
//!   serde path allocates per message for snapshots and doubles cost for tagged enums, and the
//!   tape walk is allocation-free with every buffer reused.
//! - A snapshot crosses the ring as `SnapshotBegin`, one `SnapshotLevel` per level, then
//!   `SnapshotEnd`, so ring events stay small `Copy` values however deep the book.
//! - Paper execution lives in [`gateway::paper`] for now, fed its own copy of the market data;
//!   the simulator crate's queue-position venue replaces it behind the same order ring.
//! - The release profile uses `panic = "unwind"`, not `abort`: a plugin panic must be caught at
//!   the ABI boundary and the strategy disabled while trading goes on.

#![warn(missing_docs)]

pub mod auth;
pub mod cli;
pub mod config;
pub mod feed;
pub mod gateway;
pub mod host;
pub mod journal;
pub mod live;
pub mod metadata;
pub mod pipeline;
pub mod portfolio;
pub mod risk;
pub mod telemetry;
pub mod trader;
