//! Order entry: encoding Kalshi REST V2 order bodies ([`encode`]) and the venue orders go to.
//! In this build the venue is [`paper`] execution; the live REST gateway (keep-alive TLS,
//! pre-signed headers, rate limits) arrives with the connectivity issue and takes the same
//! [`crate::pipeline::events::OrderRequest`]s.

pub mod encode;
pub mod paper;
