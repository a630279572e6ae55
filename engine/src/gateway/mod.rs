//! Order entry: encoding Kalshi REST V2 order bodies ([`encode`]) and the venues orders go to:
//! [`paper`] execution on live or replayed data, [`matcher`] paper execution with queue positions
//! through the simulator's matcher, and the live REST V2 gateway ([`rest`]: keep-alive
//! TLS connections, pre-signed headers, token-bucket rate limits ([`ratelimit`]), order state
//! keyed by `client_order_id` and `order_id` ([`orders`]), HTTP/1.1 framing ([`http`])). Both take
//! the same [`crate::pipeline::events::OrderRequest`]s and answer with
//! [`crate::pipeline::events::ExecEvent`]s.

pub mod encode;
pub mod http;
pub mod live;
pub mod matcher;
pub mod orders;
pub mod paper;
pub mod ratelimit;
pub mod rest;
