//! The simulator's exchange server: a loopback, Kalshi-compatible endpoint that the engine
//! connects to exactly as it connects to Kalshi (TLS, signed requests, the same messages), fed
//! from a [`Recording`](crate::recording::Recording).
//!
//! ## Layout
//! - [`tls`]: the throw-away certificate ([`TestCert`]) and the rustls configurations (ring
//!   provider). Clients trust [`TestCert::cert_der`] as their only root.
//! - [`auth`]: Kalshi API-key signature verification ([`verify_request`]) over `timestamp +
//!   METHOD + path`, RSA-PSS-SHA256 or Ed25519 public keys read from SPKI PEM ([`PublicKey`]).
//!   Shared by every endpoint.
//! - [`ws`]: the WebSocket market-data server ([`WsServer`], `wss://localhost:<port>/trade-api/ws/v2`):
//!   subscriptions, acks and error codes, `sid`/`seq` numbering, `use_yes_price`, heartbeats,
//!   `get_snapshot`, with a scripted [`Faults`] layer for gap/reconnect tests.
//! - `faults`, `stats`: the fault script ([`Faults`]) and the per-connection counters
//!   ([`ServerStats`]).
//! - `session`, `replay` (private): the I/O-free protocol model of one WebSocket session and the
//!   recording prepared for serving.
//!
//! ## REST (to come)
//! The REST order-entry server (`https://localhost:<port>/trade-api/v2/...`,
//! `kalshi-protocol.md` §3) will live in a `rest` module beside `ws`: its own listener and
//! threads (Kalshi's REST and WebSocket hosts differ too), the same [`TestCert`], and
//! [`verify_request`] with the request's method and path on every call
//! ([`AuthHeaders::from_httparse`] reads the headers from an `httparse` request). A combined
//! `SimServer` owning both will then start them together over one recording and one matching
//! engine.
//!
//! Everything here is the exchange side, off the engine's hot path: blocking I/O, a thread per
//! connection, allocation wherever it is clearest.

pub mod auth;
pub mod faults;
mod replay;
mod session;
pub mod stats;
pub mod tls;
pub mod ws;

pub use auth::{verify_request, ApiKey, AuthError, AuthHeaders, PublicKey};
pub use faults::Faults;
pub use stats::{ConnEnd, ConnStats, ServerStats};
pub use tls::TestCert;
pub use ws::{Pacing, WsServer, WsServerConfig};
