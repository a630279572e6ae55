//! # strike-sim
//!
//! The exchange side of Strike. This crate owns:
//! - [`recording`]: the project's recording format (zstd JSON lines of `{recv_ns, frame}` after a
//!   market-metadata header) and readers for the real Kalshi captures in `STRIKE_DATA_DIR`;
//! - [`universe`]: turning a recording's market metadata into the SDK's market universe
//!   (dense ids, grids, fees, outcome groups);
//! - [`import`]: importers that turn other recorded data (REST book sweeps) into recordings;
//! - [`stats`]: order-book statistics of a recording (event rates, spreads, depth, sizes) and of
//!   trade-print tables, which the synthetic generator's defaults are measured against;
//! - [`synth`]: the synthetic session generator behind the engine's embedded default;
//! - [`matching`]: the I/O-free matcher of our orders against a replayed or generated book
//!   (FOK / IoC / GTC, post-only, self-trade prevention, queue-position models, latency models,
//!   the exact fee ledger), for the exchange server and the paper venue to sit on;
//! - [`server`]: the loopback Kalshi-compatible exchange server (TLS WebSocket market data fed
//!   from a recording, REST V2 order entry and account reads, signed-request auth, scripted faults).
//!
//! Dependency direction: `strike-sdk ← strike-sim ← strike-engine`.

#![warn(missing_docs)]

pub mod import;
pub mod matching;
pub mod recording;
pub mod server;
pub mod stats;
pub mod synth;
pub mod universe;

/// The directory holding the shared recorded Kalshi data: `$STRIKE_DATA_DIR`, else
/// `../shared/data` relative to the workspace root.
pub fn data_dir() -> std::path::PathBuf {
    match std::env::var_os("STRIKE_DATA_DIR") {
        Some(d) => d.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    }
}
