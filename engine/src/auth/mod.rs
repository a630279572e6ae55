//! Kalshi request signing: the API private key, the signed message, pre-signed headers.
//!
//! Every authenticated Kalshi request (REST order entry and the WebSocket upgrade) carries three
//! headers (`kalshi-protocol.md` §1.2, §3.2):
//!
//! ```text
//! KALSHI-ACCESS-KEY: <key id>
//! KALSHI-ACCESS-TIMESTAMP: <unix time, ms>
//! KALSHI-ACCESS-SIGNATURE: base64(sign(<timestamp ms> + METHOD + path without query))
//! ```
//!
//! The body is not signed, so a signature depends only on the timestamp, method and path. An
//! RSA-2048 PSS signature costs ~242 µs on the dev VM and an Ed25519 one ~36.5 µs
//! (`perf-notes.md`): 5–35× a whole tick-to-trade path. So signatures are made off the hot path:
//!
//! - [`keys`] owns the key: PEM loading (PKCS#1 RSA as Kalshi ships it, PKCS#8 RSA or Ed25519),
//!   the file-permission check, the signed message ([`signing_message`]) and raw / base64
//!   signatures into caller buffers.
//! - [`signer`] owns the pre-signed headers: a [`BackgroundSigner`] thread re-signs every
//!   [`FixedPath`] (WebSocket handshake, create, batched create, batched cancel) every refresh
//!   interval (50 ms by default) and publishes each into a lock-free latch cell; an order reads
//!   the latest header ([`BackgroundSigner::latest`], a ~370-byte copy, no lock, no allocation) and
//!   writes the three header lines ([`write_auth_headers`]). Paths that carry an order id (amend,
//!   decrease, single cancel) cannot be pre-signed; [`sign_now`] signs them when sent.
//!
//! Secrets: key material never appears in an error, `Debug` or `Display` output, and a key file
//! that group or others can read is refused. Kalshi documents no clock-skew window for the
//! timestamp; the gateway records each order's header age ([`header_age_ns`]) so the refresh
//! interval can be tuned against real rejects.

pub mod keys;
pub mod signer;

pub use keys::{load_private_key, signing_message, KeyAlgorithm, SigningKey, MAX_SIGNATURE_LEN};
pub use signer::{
    header_age_ns, sign_now, unix_now_ns, write_auth_headers, BackgroundSigner, FixedPath, HeaderReader, SignedHeader,
    DEFAULT_REFRESH, SIG_B64_CAP,
};

use std::path::PathBuf;

/// Why a key could not be loaded, a message not built, or a header not signed or written.
///
/// Every message says what to do about it. None contains key material: PEM and DER parsing
/// errors are reduced to a fixed description before they get here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The key file could not be opened or read.
    #[error("cannot read the Kalshi private key file {}: {source}", .path.display())]
    KeyFileRead {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is readable by group or others (unix mode & 0o077 != 0).
    #[error(
        "the Kalshi private key file {p} can be read by other users (mode {mode:03o}); \
         restrict it with `chmod 600 {p}` and start again",
        p = .path.display()
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`st_mode & 0o777`).
        mode: u32,
    },
    /// The key file is larger than any PEM key ([`keys::MAX_KEY_FILE_BYTES`]).
    #[error(
        "{} is {len} bytes, too large for a PEM private key (at most {max}); check the key path",
        .path.display()
    )]
    KeyFileTooLarge {
        /// The key file.
        path: PathBuf,
        /// Its size, bytes.
        len: u64,
        /// The limit, bytes.
        max: u64,
    },
    /// The file is not well-formed PEM.
    #[error(
        "{} is not a well-formed PEM file ({reason}); download the key from Kalshi again or check \
         that the file was not truncated or re-wrapped",
        .path.display()
    )]
    KeyFilePem {
        /// The key file.
        path: PathBuf,
        /// A fixed description of the fault (never file content).
        reason: &'static str,
    },
    /// The file holds no private key section.
    #[error(
        "{} holds no private key{hint}: expected `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1, the file \
         Kalshi lets you download) or `-----BEGIN PRIVATE KEY-----` (PKCS#8, RSA or Ed25519)",
        .path.display()
    )]
    NoPrivateKey {
        /// The key file.
        path: PathBuf,
        /// What was found instead, e.g. " (only a public key)"; empty if nothing.
        hint: &'static str,
    },
    /// The private key is encrypted with a passphrase.
    #[error(
        "{p} holds a passphrase-encrypted private key; Strike needs it unencrypted: \
         `openssl pkey -in {p} -out <new file> && chmod 600 <new file>`",
        p = .path.display()
    )]
    KeyEncrypted {
        /// The key file.
        path: PathBuf,
    },
    /// A private key of a kind Kalshi does not accept (EC, or PKCS#8 of another algorithm).
    #[error("{} holds {what}; Kalshi API keys are RSA-2048 or Ed25519", .path.display())]
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
        /// What it holds, e.g. "an EC (SEC1) private key".
        what: &'static str,
    },
    /// ring refused the key's DER encoding or components.
    #[error(
        "the {algorithm} private key in {} is invalid ({reason}); check that it is the complete, \
         unmodified file Kalshi gave you",
        .path.display()
    )]
    KeyRejected {
        /// The key file.
        path: PathBuf,
        /// "RSA" or "Ed25519".
        algorithm: &'static str,
        /// ring's fixed reason (e.g. `InvalidEncoding`); never key material.
        reason: ring::error::KeyRejected,
    },
    /// An RSA key whose size is not 2048 bits.
    #[error(
        "the RSA key in {} has {bits} bits; Kalshi API keys are RSA-2048 (its signature must fit the \
         256-byte header slot), or use an Ed25519 key",
        .path.display()
    )]
    RsaKeySize {
        /// The key file.
        path: PathBuf,
        /// The modulus size, bits.
        bits: usize,
    },
    /// The method or path cannot be signed as given.
    #[error("cannot sign this request: {reason}")]
    InvalidRequest {
        /// What is wrong, e.g. "the path must start with `/`".
        reason: &'static str,
    },
    /// A caller buffer (message, signature, base64 or header output) is too small.
    #[error("{what} needs {needed} bytes but the buffer holds {capacity}")]
    BufferTooSmall {
        /// Which output.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
    /// ring could not sign (for RSA-PSS: the OS random source failed).
    #[error("signing failed: ring returned an error (RSA-PSS needs the OS random source, getrandom)")]
    SigningFailed,
    /// The key id would not make a valid header value.
    #[error(
        "invalid Kalshi key id: it must be non-empty printable ASCII without spaces (the key id \
         shown on Kalshi's API keys page, a UUID)"
    )]
    InvalidKeyId,
    /// The background signer's refresh interval is shorter than 1 ms.
    #[error("signer refresh interval is {refresh_us} µs; it must be at least 1 ms (timestamps are in ms)")]
    InvalidRefresh {
        /// The interval given, µs.
        refresh_us: u128,
    },
    /// The `strike-signer` thread could not be started.
    #[error("cannot start the strike-signer thread: {0}")]
    SignerSpawn(#[source] std::io::Error),
}
