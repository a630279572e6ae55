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
//! - [`ws`]: the WebSocket server ([`WsServer`], `wss://localhost:<port>/trade-api/ws/v2`):
//!   subscriptions, acks and error codes, `sid`/`seq` numbering, `use_yes_price`, heartbeats,
//!   `get_snapshot`, the recording's market data, the account's `fill` / `user_order` messages
//!   from a [`PrivateFeed`], with a scripted [`Faults`] layer for gap/reconnect tests.
//! - `faults`, `stats`: the fault script ([`Faults`]) and the per-connection counters
//!   ([`ServerStats`]).
//! - `session`, `replay` (private): the I/O-free protocol model of one WebSocket session and the
//!   recording prepared for serving.
//! - [`rest`]: the REST V2 order-entry server ([`RestServer`],
//!   `https://localhost:<port>/trade-api/v2`, `kalshi-protocol.md` §3): its own listener and
//!   threads (Kalshi's REST and WebSocket hosts differ too), the same [`TestCert`],
//!   [`verify_request`] on every request, HTTP/1.1 keep-alive, with a scripted [`RestFaults`]
//!   layer (429s, never-answered creates, scripted rejects, connection drops) and
//!   [`RestStats`].
//! - [`exchange`]: the REST server's trading model: Kalshi's V2 wire layer (validation, error
//!   codes, order ids and statuses, balance and positions, the `fill` / `user_order` message
//!   bodies) around the [`crate::matching::Matcher`], which does all matching, queue positions
//!   and fees against the recording's books.
//! - [`private`]: the bus ([`PrivateFeed`]) carrying those messages from the REST server to the
//!   WebSocket sessions subscribed to `fill` / `user_orders`, [`PrivateTiming`] (when they are
//!   published relative to the REST response), and [`LinkedServers`]: both servers on one bus,
//!   one certificate and one exchange timeline, the WebSocket replay driving the exchange's book
//!   through an [`ExchangeLink`] (market data applied when released and delivered the feed delay
//!   later, orders applied at their arrival plus the entry delay; see [`rest`] *Time and
//!   latency* and [`ws`] *Linked replay*).
//!
//! ## To come
//! A combined `SimServer` owning both servers behind one handle (today [`LinkedServers`] is the
//! pair started together). Private messages reach a session when the exchange applies a change;
//! they wait behind held market data but take no feed delay of their own.
//!
//! Everything here is the exchange side, off the engine's hot path: blocking I/O, a thread per
//! connection, allocation wherever it is clearest.

pub mod auth;
pub mod exchange;
pub mod faults;
pub mod private;
mod replay;
pub mod rest;
mod session;
pub mod stats;
pub mod tls;
pub mod ws;

pub use auth::{verify_request, ApiKey, AuthError, AuthHeaders, PublicKey};
pub use exchange::{BookLevels, ErrorShape, ExchangeFill, FokKill};
pub use faults::Faults;
pub use private::{LinkedServers, PrivateChannel, PrivateFeed, PrivateMsg, PrivateTiming};
pub use rest::{ExchangeLink, RestFaults, RestServer, RestServerConfig, RestStats, ScriptedReject};
pub use stats::{ConnEnd, ConnStats, ServerStats};
pub use tls::TestCert;
pub use ws::{Pacing, WsServer, WsServerConfig};
