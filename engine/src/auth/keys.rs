//! The Kalshi API private key: loading, the signed message, raw and base64 signatures.
//!
//! Owns: reading the PEM key file (refusing one that group or others can read), turning it into a
//! [`SigningKey`], building the message Kalshi signs (`timestamp_ms + METHOD + path`, query
//! stripped; `kalshi-protocol.md` §3.2), and signing it into caller buffers.
//!
//! Formats accepted (decided by the PEM label, then by the PKCS#8 algorithm):
//! - `-----BEGIN RSA PRIVATE KEY-----`: PKCS#1 RSA, the format Kalshi's key download uses;
//! - `-----BEGIN PRIVATE KEY-----`: PKCS#8, RSA or Ed25519 (v1 as OpenSSL writes it, or v2).
//!
//! RSA keys sign with RSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt (ring's `RSA_PSS_SHA256`) and
//! must be 2048-bit (Kalshi's size; its 256-byte signature is 344 base64 characters, the size of
//! the pre-signed header slot). Ed25519 keys sign the message bytes directly (RFC 8032).
//!
//! Cost and allocation: [`signing_message`], [`SigningKey::sign`] with Ed25519 and
//! [`SigningKey::sign_base64`]'s encoding are allocation-free; ring's RSA signing allocates its
//! big-number scratch internally, which is one reason RSA signing runs on the background signer
//! thread ([`super::signer`]), never on the order path. Loading allocates (it runs once).
//!
//! Secrets: `SigningKey`'s `Debug` prints only the algorithm and size. Errors carry the path and
//! fixed descriptions, never file content. The file bytes and the decoded DER are overwritten
//! with zeros once ring has parsed them (best effort: ring keeps its own copy for the life of the
//! key, and the PEM parser's scratch buffer is freed, not wiped).

use super::AuthError;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _, RsaKeyPair, RSA_PSS_SHA256};
use rustls_pki_types::pem::{self, PemObject as _, SectionKind};
use std::fmt;
use std::io::Read as _;
use std::path::Path;

/// Capacity of a raw signature buffer, bytes (an RSA-4096 signature; RSA-2048 uses 256,
/// Ed25519 64).
pub const MAX_SIGNATURE_LEN: usize = 512;

/// The largest key file [`load_private_key`] reads, bytes (an RSA-4096 PEM is ~3.3 KB).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The RSA modulus size Kalshi issues and the header slot holds, bits.
pub const RSA_BITS: usize = 2048;

/// The signature algorithm of a [`SigningKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    RsaPssSha256,
    /// Ed25519 (RFC 8032).
    Ed25519,
}

impl KeyAlgorithm {
    /// The algorithm's name for logs: `"RSA-PSS-SHA256"` or `"Ed25519"`.
    pub const fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::RsaPssSha256 => "RSA-PSS-SHA256",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }
}

/// A Kalshi API private key, ready to sign. `Send + Sync`: share it behind an `Arc`.
///
/// `Debug` and `Display` show the algorithm and size only (e.g. `SigningKey(RSA-PSS-SHA256,
/// 2048-bit, <redacted>)`).
pub enum SigningKey {
    /// An RSA key (2048-bit when loaded by [`load_private_key`]); signs with RSA-PSS-SHA256,
    /// 32-byte salt. Signatures are the modulus size (256 bytes for RSA-2048).
    RsaPssSha256(RsaKeyPair),
    /// An Ed25519 key; 64-byte signatures.
    Ed25519(Ed25519KeyPair),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningKey::RsaPssSha256(k) => {
                write!(f, "SigningKey(RSA-PSS-SHA256, {}-bit, <redacted>)", k.public().modulus_len() * 8)
            }
            SigningKey::Ed25519(_) => f.write_str("SigningKey(Ed25519, <redacted>)"),
        }
    }
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl SigningKey {
    /// The signature algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            SigningKey::RsaPssSha256(_) => KeyAlgorithm::RsaPssSha256,
            SigningKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// Length of one raw signature, bytes (256 for RSA-2048, 64 for Ed25519).
    pub fn signature_len(&self) -> usize {
        match self {
            SigningKey::RsaPssSha256(k) => k.public().modulus_len(),
            SigningKey::Ed25519(_) => 64,
        }
    }

    /// Length of one signature in padded standard base64, bytes (344 for RSA-2048, 88 for
    /// Ed25519).
    pub fn signature_b64_len(&self) -> usize {
        self.signature_len().div_ceil(3) * 4
    }

    /// The public key, for checking it against the one registered with Kalshi: the DER
    /// `RSAPublicKey` (PKCS#1) for RSA, the 32 raw bytes for Ed25519. Not secret.
    pub fn public_key(&self) -> &[u8] {
        match self {
            SigningKey::RsaPssSha256(k) => k.public().as_ref(),
            SigningKey::Ed25519(k) => k.public_key().as_ref(),
        }
    }

    /// A fresh Ed25519 key drawn from the OS random source, held in memory only (never written
    /// anywhere): the key the engine signs with against the simulator it starts itself, which is
    /// given [`SigningKey::public_key`] to verify with. ring's PKCS#8 document of the key is
    /// freed, not wiped, as with a loaded key. Errors: [`AuthError::SigningFailed`] if the OS
    /// random source fails.
    pub fn generate_ed25519() -> Result<SigningKey, AuthError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| AuthError::SigningFailed)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| AuthError::SigningFailed)?;
        Ok(SigningKey::Ed25519(pair))
    }

    /// Signs `msg` (normally built by [`signing_message`]) into `out`; returns the signature
    /// length, bytes ([`SigningKey::signature_len`]).
    ///
    /// RSA-PSS is randomized (fresh salt from the OS each call, ~242 µs for RSA-2048 on the dev
    /// VM, allocates inside ring); Ed25519 is deterministic (~36.5 µs, allocation-free). Not for
    /// the order path: see [`super::signer`].
    pub fn sign(&self, msg: &[u8], out: &mut [u8; MAX_SIGNATURE_LEN]) -> Result<usize, AuthError> {
        match self {
            SigningKey::RsaPssSha256(k) => {
                let n = k.public().modulus_len();
                if n > MAX_SIGNATURE_LEN {
                    return Err(AuthError::BufferTooSmall {
                        what: "the signature",
                        needed: n,
                        capacity: MAX_SIGNATURE_LEN,
                    });
                }
                k.sign(&RSA_PSS_SHA256, &SystemRandom::new(), msg, &mut out[..n])
                    .map_err(|_| AuthError::SigningFailed)?;
                Ok(n)
            }
            SigningKey::Ed25519(k) => {
                let sig = k.sign(msg);
                let sig = sig.as_ref();
                out[..sig.len()].copy_from_slice(sig);
                Ok(sig.len())
            }
        }
    }

    /// Signs `msg` and writes the signature as padded standard base64 (the
    /// `KALSHI-ACCESS-SIGNATURE` value) into `out`; returns the text length, bytes
    /// ([`SigningKey::signature_b64_len`]). The encoding is allocation-free.
    pub fn sign_base64(&self, msg: &[u8], out: &mut [u8]) -> Result<usize, AuthError> {
        let needed = self.signature_b64_len();
        if out.len() < needed {
            return Err(AuthError::BufferTooSmall { what: "the base64 signature", needed, capacity: out.len() });
        }
        let mut raw = [0u8; MAX_SIGNATURE_LEN];
        let n = self.sign(msg, &mut raw)?;
        base64::engine::general_purpose::STANDARD.encode_slice(&raw[..n], out).map_err(|_| AuthError::BufferTooSmall {
            what: "the base64 signature",
            needed,
            capacity: out.len(),
        })
    }
}

/// Writes the message Kalshi signs, `<ts_ms decimal><METHOD><path>` with everything from the
/// first `?` of `path` stripped (the query is not signed), into `out`; returns its length,
/// bytes. Allocation-free.
///
/// `ts_ms` is unix time in ms (the same value sent as `KALSHI-ACCESS-TIMESTAMP`); `method` is
/// the upper-case HTTP method (`GET`, `POST`, `DELETE`, ...); `path` starts at `/trade-api/...`
/// without scheme or host. Example: `(1703123456789, "GET",
/// "/trade-api/v2/portfolio/orders?limit=5")` → `1703123456789GET/trade-api/v2/portfolio/orders`.
///
/// Errors: [`AuthError::InvalidRequest`] if `method` is not upper-case ASCII letters or `path`
/// does not start with `/`; [`AuthError::BufferTooSmall`] if the message does not fit in `N`.
pub fn signing_message<const N: usize>(
    ts_ms: u64,
    method: &str,
    path: &str,
    out: &mut [u8; N],
) -> Result<usize, AuthError> {
    let method = method.as_bytes();
    if method.is_empty() || !method.iter().all(u8::is_ascii_uppercase) {
        return Err(AuthError::InvalidRequest { reason: "the HTTP method must be upper-case ASCII, e.g. `POST`" });
    }
    let path = path.as_bytes();
    if path.first() != Some(&b'/') {
        return Err(AuthError::InvalidRequest {
            reason: "the path must start with `/` (e.g. `/trade-api/v2/...`), without scheme or host",
        });
    }
    let path = match path.iter().position(|&b| b == b'?') {
        Some(q) => &path[..q],
        None => path,
    };
    let mut digits = [0u8; 20];
    let ts = write_u64_dec(ts_ms, &mut digits);
    let needed = ts.len() + method.len() + path.len();
    if needed > N {
        return Err(AuthError::BufferTooSmall { what: "the signing message", needed, capacity: N });
    }
    let (a, rest) = out.split_at_mut(ts.len());
    a.copy_from_slice(ts);
    let (b, rest) = rest.split_at_mut(method.len());
    b.copy_from_slice(method);
    rest[..path.len()].copy_from_slice(path);
    Ok(needed)
}

/// Writes `v` in decimal into the tail of `buf` and returns the digits (1–20 bytes).
/// Allocation-free.
#[inline]
pub(crate) fn write_u64_dec(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// Loads the Kalshi API private key at `path`: PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`, Kalshi's
/// download) or PKCS#8 PEM (`BEGIN PRIVATE KEY`, RSA or Ed25519). Runs once at start-up;
/// allocates; ~1 ms for RSA (ring validates the key).
///
/// Refuses (each with an [`AuthError`] saying what to do): a file group or others can read
/// (unix mode & 0o077 != 0: `chmod 600 <path>`), an encrypted key, an EC key, a key ring
/// rejects, an RSA key that is not 2048-bit, a file over [`MAX_KEY_FILE_BYTES`]. The first private
/// key section in the file is used.
pub fn load_private_key(path: &Path) -> Result<SigningKey, AuthError> {
    let read_err = |source| AuthError::KeyFileRead { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(read_err)?;
    // Check the mode of the opened file (not the path again), so a swap between check and read
    // cannot slip a readable file past the check.
    let meta = file.metadata().map_err(read_err)?;
    check_mode(path, &meta)?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(AuthError::KeyFileTooLarge { path: path.to_path_buf(), len: meta.len(), max: MAX_KEY_FILE_BYTES });
    }
    let mut text = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut text).map_err(read_err)?;
    let key = parse_pem_key(path, &text);
    wipe(&mut text);
    key
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), AuthError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AuthError::KeyFilePermissions { path: path.to_path_buf(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), AuthError> {
    Ok(())
}

/// Overwrites `buf` with zeros in a way the optimizer keeps.
fn wipe(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to a u8.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

fn parse_pem_key(path: &Path, text: &[u8]) -> Result<SigningKey, AuthError> {
    let p = || path.to_path_buf();
    if text.split(|&b| b == b'\n').any(|line| {
        (line.starts_with(b"-----BEGIN") && contains(line, b"ENCRYPTED")) || line.starts_with(b"Proc-Type: 4,ENCRYPTED")
    }) {
        return Err(AuthError::KeyEncrypted { path: p() });
    }
    let mut hint = "";
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(text) {
        let (kind, mut der) = section.map_err(|e| AuthError::KeyFilePem { path: p(), reason: pem_reason(&e) })?;
        let key = match kind {
            SectionKind::RsaPrivateKey => rsa_key(path, RsaKeyPair::from_der(&der)),
            SectionKind::PrivateKey => pkcs8_key(path, &der),
            SectionKind::EcPrivateKey => Err(AuthError::UnsupportedKey { path: p(), what: "an EC (SEC1) private key" }),
            SectionKind::PublicKey => {
                hint = " (only a public key: pass the private key file)";
                wipe(&mut der);
                continue;
            }
            SectionKind::Certificate => {
                hint = " (only a certificate: pass the private key file)";
                wipe(&mut der);
                continue;
            }
            _ => {
                wipe(&mut der);
                continue;
            }
        };
        wipe(&mut der);
        return key;
    }
    Err(AuthError::NoPrivateKey { path: p(), hint })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A fixed description of a PEM error; the error's own text may quote file lines.
fn pem_reason(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a `-----BEGIN` line has no matching `-----END` line",
        pem::Error::IllegalSectionStart { .. } => "malformed `-----BEGIN` line",
        pem::Error::Base64Decode(_) => "the base64 body does not decode",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "unreadable PEM",
    }
}

fn rsa_key(path: &Path, key: Result<RsaKeyPair, ring::error::KeyRejected>) -> Result<SigningKey, AuthError> {
    let key = key.map_err(|reason| AuthError::KeyRejected { path: path.to_path_buf(), algorithm: "RSA", reason })?;
    let bits = key.public().modulus_len() * 8;
    if bits != RSA_BITS {
        return Err(AuthError::RsaKeySize { path: path.to_path_buf(), bits });
    }
    Ok(SigningKey::RsaPssSha256(key))
}

fn pkcs8_key(path: &Path, der: &[u8]) -> Result<SigningKey, AuthError> {
    // ring reports a PKCS#8 algorithm mismatch as `WrongAlgorithm`; try Ed25519, then RSA.
    // `maybe_unchecked` accepts the v1 PKCS#8 OpenSSL writes (no embedded public key).
    const WRONG_ALGORITHM: &str = "WrongAlgorithm";
    let ed = match Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
        Ok(k) => return Ok(SigningKey::Ed25519(k)),
        Err(e) => e,
    };
    match RsaKeyPair::from_pkcs8(der) {
        Ok(k) => rsa_key(path, Ok(k)),
        Err(rsa) => {
            let ed_wrong = ed.to_string() == WRONG_ALGORITHM;
            let rsa_wrong = rsa.to_string() == WRONG_ALGORITHM;
            match (ed_wrong, rsa_wrong) {
                (true, true) => Err(AuthError::UnsupportedKey {
                    path: path.to_path_buf(),
                    what: "a PKCS#8 private key that is neither RSA nor Ed25519 (EC?)",
                }),
                (false, _) => {
                    Err(AuthError::KeyRejected { path: path.to_path_buf(), algorithm: "Ed25519", reason: ed })
                }
                (true, false) => {
                    Err(AuthError::KeyRejected { path: path.to_path_buf(), algorithm: "RSA", reason: rsa })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ts: u64, m: &str, p: &str) -> String {
        let mut out = [0u8; 128];
        let n = signing_message(ts, m, p, &mut out).unwrap();
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn generated_keys_are_fresh_ed25519_keys_that_verify() {
        let a = SigningKey::generate_ed25519().unwrap();
        let b = SigningKey::generate_ed25519().unwrap();
        assert_eq!(a.algorithm(), KeyAlgorithm::Ed25519);
        assert_eq!(a.public_key().len(), 32);
        assert_ne!(a.public_key(), b.public_key(), "each call draws a new key");
        let mut sig = [0u8; MAX_SIGNATURE_LEN];
        let n = a.sign(b"1703123456789GET/trade-api/ws/v2", &mut sig).unwrap();
        let pk = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, a.public_key());
        assert!(pk.verify(b"1703123456789GET/trade-api/ws/v2", &sig[..n]).is_ok());
        assert!(pk.verify(b"1703123456789GET/trade-api/ws/v3", &sig[..n]).is_err());
    }

    #[test]
    fn message_is_timestamp_method_path() {
        assert_eq!(msg(1703123456789, "GET", "/trade-api/ws/v2"), "1703123456789GET/trade-api/ws/v2");
        assert_eq!(
            msg(1703123456789, "POST", "/trade-api/v2/portfolio/events/orders"),
            "1703123456789POST/trade-api/v2/portfolio/events/orders"
        );
    }

    #[test]
    fn message_strips_the_query() {
        assert_eq!(
            msg(1703123456789, "GET", "/trade-api/v2/portfolio/orders?limit=5"),
            "1703123456789GET/trade-api/v2/portfolio/orders"
        );
        assert_eq!(msg(1, "GET", "/a?"), "1GET/a");
        assert_eq!(msg(0, "DELETE", "/a?b=1?c=2"), "0DELETE/a");
        assert_eq!(msg(u64::MAX, "GET", "/"), "18446744073709551615GET/");
    }

    #[test]
    fn message_rejects_bad_input_and_short_buffers() {
        let mut out = [0u8; 128];
        assert!(matches!(signing_message(1, "get", "/a", &mut out), Err(AuthError::InvalidRequest { .. })));
        assert!(matches!(signing_message(1, "", "/a", &mut out), Err(AuthError::InvalidRequest { .. })));
        assert!(matches!(
            signing_message(1, "GET", "https://api.elections.kalshi.com/trade-api/v2", &mut out),
            Err(AuthError::InvalidRequest { .. })
        ));
        let mut small = [0u8; 10];
        let e = signing_message(1703123456789, "GET", "/trade-api/ws/v2", &mut small).unwrap_err();
        assert!(matches!(e, AuthError::BufferTooSmall { needed: 32, capacity: 10, .. }), "{e}");
        let mut exact = [0u8; 32];
        assert_eq!(signing_message(1703123456789, "GET", "/trade-api/ws/v2?x", &mut exact).unwrap(), 32);
    }

    #[test]
    fn decimal_digits() {
        let mut b = [0u8; 20];
        assert_eq!(write_u64_dec(0, &mut b), b"0");
        assert_eq!(write_u64_dec(7, &mut b), b"7");
        assert_eq!(write_u64_dec(10, &mut b), b"10");
        assert_eq!(write_u64_dec(1703123456789, &mut b), b"1703123456789");
        assert_eq!(write_u64_dec(u64::MAX, &mut b), b"18446744073709551615");
    }
}
