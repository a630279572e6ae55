//! Kalshi API-key request signing, verified the way the exchange does it
//! (`kalshi-protocol.md` §1.2 and §3.2).
//!
//! Every authenticated request (the WebSocket upgrade, every REST call) carries three headers:
//! `KALSHI-ACCESS-KEY` (the key id), `KALSHI-ACCESS-TIMESTAMP` (unix milliseconds, decimal) and
//! `KALSHI-ACCESS-SIGNATURE`: base64 of a signature over `timestamp + METHOD + path`, where the
//! path starts at `/trade-api/` and stops before any `?`. RSA keys sign with RSA-PSS, SHA-256,
//! MGF1-SHA-256 and a 32-byte salt; Ed25519 keys sign the message bytes directly.
//! [`verify_request`] checks all of it against one registered [`ApiKey`]; the WebSocket server
//! calls it from the upgrade handshake, the REST server will call it per request.
//!
//! Public keys are read from SPKI PEM files (`BEGIN PUBLIC KEY`), the form OpenSSL writes and
//! the test keys in `tests/fixtures/keys/` use.

use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, ED25519, RSA_PSS_2048_8192_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use std::fmt;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The key-id header.
pub const HEADER_KEY: &str = "KALSHI-ACCESS-KEY";
/// The timestamp header (unix milliseconds).
pub const HEADER_TIMESTAMP: &str = "KALSHI-ACCESS-TIMESTAMP";
/// The signature header (base64).
pub const HEADER_SIGNATURE: &str = "KALSHI-ACCESS-SIGNATURE";

/// The default largest accepted distance between a request's timestamp and the server clock.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(30);

/// DER of the `rsaEncryption` OID 1.2.840.113549.1.1.1.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// DER of the `id-Ed25519` OID 1.3.101.112.
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// A registered API public key.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An RSA key (2048–8192 bits) as a DER PKCS#1 `RSAPublicKey`; signatures are RSA-PSS-SHA256
    /// with a 32-byte salt.
    RsaPss(Vec<u8>),
    /// An Ed25519 public key.
    Ed25519([u8; 32]),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicKey::RsaPss(der) => write!(f, "PublicKey::RsaPss({} DER bytes)", der.len()),
            PublicKey::Ed25519(k) => write!(f, "PublicKey::Ed25519({:02x}{:02x}..)", k[0], k[1]),
        }
    }
}

impl PublicKey {
    /// Reads an SPKI PEM file (`-----BEGIN PUBLIC KEY-----`) holding an RSA or Ed25519 key.
    /// Errors (`InvalidData`) name the file and what is wrong.
    pub fn from_pem_file(path: &Path) -> io::Result<PublicKey> {
        let text = std::fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Self::from_pem(&text).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// Parses SPKI PEM text (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(pem: &[u8]) -> io::Result<PublicKey> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem)
            .map_err(|e| invalid(format!("expected a `BEGIN PUBLIC KEY` (SPKI) PEM block: {e}")))?;
        Self::from_spki_der(der.as_ref())
    }

    /// Parses a DER `SubjectPublicKeyInfo` with algorithm `rsaEncryption` or `id-Ed25519`.
    pub fn from_spki_der(der: &[u8]) -> io::Result<PublicKey> {
        let bad = |what: &str| invalid(format!("not a SubjectPublicKeyInfo: {what}"));
        let (spki, rest) = der_take(der, 0x30).ok_or_else(|| bad("no outer SEQUENCE"))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the SEQUENCE"));
        }
        let (alg, rest) = der_take(spki, 0x30).ok_or_else(|| bad("no AlgorithmIdentifier"))?;
        let (bits, rest) = der_take(rest, 0x03).ok_or_else(|| bad("no subjectPublicKey BIT STRING"))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the BIT STRING"));
        }
        let (oid, _params) = der_take(alg, 0x06).ok_or_else(|| bad("no algorithm OID"))?;
        let key = match bits.split_first() {
            Some((0, key)) => key,
            _ => return Err(bad("BIT STRING with unused bits")),
        };
        if oid == OID_RSA_ENCRYPTION {
            // The BIT STRING holds a PKCS#1 RSAPublicKey SEQUENCE; ring checks the rest.
            der_take(key, 0x30).ok_or_else(|| bad("RSA key is not an RSAPublicKey SEQUENCE"))?;
            Ok(PublicKey::RsaPss(key.to_vec()))
        } else if oid == OID_ED25519 {
            let k: [u8; 32] =
                key.try_into().map_err(|_| bad(&format!("Ed25519 key of {} bytes (expected 32)", key.len())))?;
            Ok(PublicKey::Ed25519(k))
        } else {
            Err(invalid("unsupported key algorithm: expected an RSA (rsaEncryption) or Ed25519 public key".into()))
        }
    }

    /// Whether `signature` is a valid signature of `message` under this key (RSA-PSS-SHA256 or
    /// Ed25519).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::RsaPss(der) => UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, der).verify(message, signature),
            PublicKey::Ed25519(k) => UnparsedPublicKey::new(&ED25519, k).verify(message, signature),
        }
        .is_ok()
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Takes one DER TLV with tag `tag` from the front of `input`: `(contents, rest)`.
fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&l0, mut rest) = rest.split_first()?;
    let len = if l0 < 0x80 {
        l0 as usize
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// One registered key: the id clients send in `KALSHI-ACCESS-KEY` and its public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// The key id (a UUID on Kalshi; any string here).
    pub key_id: String,
    /// The public half.
    pub public_key: PublicKey,
}

impl ApiKey {
    /// `key_id` with the key read from an SPKI PEM file.
    pub fn from_pem_file(key_id: impl Into<String>, path: &Path) -> io::Result<ApiKey> {
        Ok(ApiKey { key_id: key_id.into(), public_key: PublicKey::from_pem_file(path)? })
    }
}

/// The three signing headers of one request, as sent (absent = `None`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthHeaders<'a> {
    /// `KALSHI-ACCESS-KEY`.
    pub key_id: Option<&'a str>,
    /// `KALSHI-ACCESS-TIMESTAMP`.
    pub timestamp: Option<&'a str>,
    /// `KALSHI-ACCESS-SIGNATURE`.
    pub signature: Option<&'a str>,
}

impl<'a> AuthHeaders<'a> {
    /// Looks the headers up by name (case-insensitively) with `get`, e.g. over a parsed request.
    /// A header whose value is not visible ASCII counts as absent.
    pub fn from_lookup(get: impl Fn(&str) -> Option<&'a str>) -> AuthHeaders<'a> {
        AuthHeaders { key_id: get(HEADER_KEY), timestamp: get(HEADER_TIMESTAMP), signature: get(HEADER_SIGNATURE) }
    }

    /// From an `http` header map (the WebSocket upgrade request).
    pub fn from_http(headers: &'a tungstenite::http::HeaderMap) -> AuthHeaders<'a> {
        Self::from_lookup(|name| headers.get(name).and_then(|v| v.to_str().ok()))
    }

    /// From `httparse` headers (the REST server's parser).
    pub fn from_httparse(headers: &'a [httparse::Header<'a>]) -> AuthHeaders<'a> {
        Self::from_lookup(|name| {
            headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).and_then(|h| std::str::from_utf8(h.value).ok())
        })
    }
}

/// Why a request's signature was refused. [`AuthError::code`] is a stable machine-readable
/// reason; `Display` says it for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// A signing header is absent (its name).
    MissingHeader(&'static str),
    /// `KALSHI-ACCESS-KEY` names no registered key.
    UnknownKey(String),
    /// `KALSHI-ACCESS-TIMESTAMP` is not a decimal unix-millisecond time.
    BadTimestamp(String),
    /// The timestamp is further than the allowed skew from the server clock.
    StaleTimestamp {
        /// Server time minus request time, milliseconds (negative: from the future).
        skew_ms: i64,
        /// The allowed distance, milliseconds.
        max_ms: u64,
    },
    /// `KALSHI-ACCESS-SIGNATURE` is not base64.
    BadSignatureEncoding,
    /// The signature does not verify against the key for this timestamp, method and path.
    BadSignature,
}

impl AuthError {
    /// The reason as a stable code: `missing_header`, `unknown_key`, `invalid_timestamp`,
    /// `timestamp_out_of_window`, `invalid_signature_encoding`, `invalid_signature`.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingHeader(_) => "missing_header",
            AuthError::UnknownKey(_) => "unknown_key",
            AuthError::BadTimestamp(_) => "invalid_timestamp",
            AuthError::StaleTimestamp { .. } => "timestamp_out_of_window",
            AuthError::BadSignatureEncoding => "invalid_signature_encoding",
            AuthError::BadSignature => "invalid_signature",
        }
    }

    /// The HTTP 401 body: Kalshi's error shape `{"code", "message", "details"}` with `code` =
    /// [`AuthError::code`], `message` = the `Display` text, `details` = `"authentication failed"`.
    pub fn error_body(&self) -> String {
        serde_json::json!({"code": self.code(), "message": self.to_string(), "details": "authentication failed"})
            .to_string()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingHeader(h) => write!(f, "missing {h} header"),
            AuthError::UnknownKey(k) => write!(f, "unknown API key id {k:?}"),
            AuthError::BadTimestamp(t) => write!(f, "{HEADER_TIMESTAMP} {t:?} is not unix milliseconds"),
            AuthError::StaleTimestamp { skew_ms, max_ms } => {
                write!(f, "{HEADER_TIMESTAMP} is {skew_ms} ms from the server clock (allowed: {max_ms} ms)")
            }
            AuthError::BadSignatureEncoding => write!(f, "{HEADER_SIGNATURE} is not base64"),
            AuthError::BadSignature => write!(f, "{HEADER_SIGNATURE} does not verify for this key, time and path"),
        }
    }
}

impl std::error::Error for AuthError {}

/// The current unix time in milliseconds (0 if the clock is before 1970).
pub fn unix_now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The exact bytes a client signs: `timestamp + method + path`, the path cut at any `?`.
pub fn signing_message(timestamp: &str, method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    format!("{timestamp}{method}{path}")
}

/// Verifies a request's signing headers against `key`: the key id must match, the timestamp must
/// be decimal unix milliseconds within `max_skew` of `now_ms`, and the base64 signature must
/// verify over [`signing_message`]`(timestamp, method, path)`. Checks run in that order and the
/// first failure is returned. `path` may carry a query; it is not signed.
pub fn verify_request(
    key: &ApiKey,
    headers: &AuthHeaders<'_>,
    method: &str,
    path: &str,
    now_ms: i64,
    max_skew: Duration,
) -> Result<(), AuthError> {
    let key_id = headers.key_id.ok_or(AuthError::MissingHeader(HEADER_KEY))?;
    let ts = headers.timestamp.ok_or(AuthError::MissingHeader(HEADER_TIMESTAMP))?;
    let sig = headers.signature.ok_or(AuthError::MissingHeader(HEADER_SIGNATURE))?;
    if key_id.trim() != key.key_id {
        return Err(AuthError::UnknownKey(key_id.to_string()));
    }
    let ts_ms: i64 = match ts.trim() {
        t if !t.is_empty() && t.len() <= 18 && t.bytes().all(|b| b.is_ascii_digit()) => {
            t.parse().map_err(|_| AuthError::BadTimestamp(ts.to_string()))?
        }
        _ => return Err(AuthError::BadTimestamp(ts.to_string())),
    };
    let skew_ms = now_ms - ts_ms;
    let max_ms = max_skew.as_millis().min(i64::MAX as u128) as u64;
    if skew_ms.unsigned_abs() > max_ms {
        return Err(AuthError::StaleTimestamp { skew_ms, max_ms });
    }
    let sig =
        base64::engine::general_purpose::STANDARD.decode(sig.trim()).map_err(|_| AuthError::BadSignatureEncoding)?;
    let msg = signing_message(ts.trim(), method, path);
    if key.public_key.verify(msg.as_bytes(), &sig) {
        Ok(())
    } else {
        Err(AuthError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair, RSA_PSS_SHA256};
    use rustls_pki_types::{PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};
    use std::path::PathBuf;

    fn keys() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys")
    }

    fn b64(sig: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(sig)
    }

    #[test]
    fn loads_spki_pem_keys() {
        let rsa = PublicKey::from_pem_file(&keys().join("test_rsa_public.pem")).unwrap();
        assert!(matches!(&rsa, PublicKey::RsaPss(d) if d.len() == 270), "{rsa:?}");
        let ed = PublicKey::from_pem_file(&keys().join("test_ed25519_public.pem")).unwrap();
        let pkcs8 = PrivatePkcs8KeyDer::from_pem_file(keys().join("test_ed25519_pkcs8.pem")).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.secret_pkcs8_der()).unwrap();
        assert_eq!(ed, PublicKey::Ed25519(pair.public_key().as_ref().try_into().unwrap()));
        // A private key is not a public key; a missing file names itself.
        let err = PublicKey::from_pem_file(&keys().join("test_rsa_pkcs8.pem")).unwrap_err();
        assert!(err.to_string().contains("test_rsa_pkcs8.pem") && err.to_string().contains("SPKI"), "{err}");
        assert!(PublicKey::from_pem_file(&keys().join("nope.pem")).unwrap_err().to_string().contains("nope.pem"));
        assert!(PublicKey::from_spki_der(&[0x30, 0x03, 0x30, 0x01]).is_err());
    }

    #[test]
    fn verify_request_checks_id_time_and_signature() {
        let key = ApiKey::from_pem_file("key-1", &keys().join("test_rsa_public.pem")).unwrap();
        let pkcs1 = PrivatePkcs1KeyDer::from_pem_file(keys().join("test_rsa_pkcs1.pem")).unwrap();
        let pair = RsaKeyPair::from_der(pkcs1.secret_pkcs1_der()).unwrap();
        let now = 1_786_085_188_416i64;
        let ts = (now - 1_000).to_string();
        let mut sig = vec![0u8; pair.public().modulus_len()];
        let msg = signing_message(&ts, "GET", "/trade-api/v2/portfolio/orders?limit=5");
        assert_eq!(msg, format!("{ts}GET/trade-api/v2/portfolio/orders"));
        pair.sign(&RSA_PSS_SHA256, &SystemRandom::new(), msg.as_bytes(), &mut sig).unwrap();
        let sig = b64(&sig);
        let h = AuthHeaders { key_id: Some("key-1"), timestamp: Some(&ts), signature: Some(&sig) };
        let skew = DEFAULT_MAX_SKEW;
        let path = "/trade-api/v2/portfolio/orders?limit=5";
        assert_eq!(verify_request(&key, &h, "GET", path, now, skew), Ok(()));
        assert_eq!(verify_request(&key, &h, "POST", path, now, skew), Err(AuthError::BadSignature));
        assert_eq!(
            verify_request(&key, &AuthHeaders { key_id: Some("key-2"), ..h }, "GET", path, now, skew),
            Err(AuthError::UnknownKey("key-2".into()))
        );
        assert_eq!(
            verify_request(&key, &AuthHeaders { signature: None, ..h }, "GET", path, now, skew),
            Err(AuthError::MissingHeader(HEADER_SIGNATURE))
        );
        assert_eq!(
            verify_request(&key, &AuthHeaders { signature: Some("!!"), ..h }, "GET", path, now, skew),
            Err(AuthError::BadSignatureEncoding)
        );
        assert_eq!(
            verify_request(&key, &AuthHeaders { timestamp: Some("12.5"), ..h }, "GET", path, now, skew),
            Err(AuthError::BadTimestamp("12.5".into()))
        );
        let late = verify_request(&key, &h, "GET", path, now + 30_001, skew).unwrap_err();
        assert_eq!(late, AuthError::StaleTimestamp { skew_ms: 31_001, max_ms: 30_000 });
        assert_eq!(late.code(), "timestamp_out_of_window");
        assert_eq!(verify_request(&key, &h, "GET", path, now + 29_000, skew), Ok(()));
        let body: serde_json::Value = serde_json::from_str(&late.error_body()).unwrap();
        assert_eq!(body["code"], "timestamp_out_of_window");
        assert!(body["message"].as_str().unwrap().contains("31001 ms"));
    }
}
