//! Signing against the fixture keys (`tests/fixtures/keys/`): loading, permission and format
//! refusals, signatures checked with the *public* key files, the background signer.
//!
//! Git does not keep file modes, so every key is copied to a temporary 0600 file first.
//! A per-thread counting allocator checks that the order path (read a pre-signed header, write
//! the header lines) and Ed25519 signing allocate nothing.

use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, ED25519, RSA_PSS_2048_8192_SHA256};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strike_engine::auth::{
    header_age_ns, load_private_key, sign_now, signing_message, unix_now_ns, write_auth_headers, AuthError,
    BackgroundSigner, FixedPath, KeyAlgorithm, SignedHeader, SigningKey, DEFAULT_REFRESH, MAX_SIGNATURE_LEN,
};

/// Counts allocations made by the current thread while it is armed (tests run in parallel).
struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count_alloc() {
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count_alloc();
        System.alloc(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count_alloc();
        System.realloc(p, l, n)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCS.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    ALLOCS.with(Cell::get)
}

const RSA_KEYS: [&str; 2] = ["test_rsa_pkcs1.pem", "test_rsa_pkcs8.pem"];
const ED_KEY: &str = "test_ed25519_pkcs8.pem";
const RSA_PUB: &str = "test_rsa_public.pem";
const ED_PUB: &str = "test_ed25519_public.pem";

/// A throw-away P-256 key (generated for this test only), SEC1 and PKCS#8: Kalshi takes neither.
const EC_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIFUdIesZ8uTNU8whXvN5nZbXffv+Pe8+r4VUzGYRq05voAoGCCqGSM49
AwEHoUQDQgAEB3ivXo55Sa0KhYVsRiUXjYT4Lx1/uvLkjNJTrHPyuGwu1JCh6uzi
HrOSmC7UKO/kVbs9t9vPKtHEu4k1Owovww==
-----END EC PRIVATE KEY-----
";
const EC_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVR0h6xny5M1TzCFe
83mdltd9+/497z6vhVTMZhGrTm+hRANCAAQHeK9ejnlJrQqFhWxGJReNhPgvHX+6
8uSM0lOsc/K4bC7UkKHq7OIes5KYLtQo7+RVuz23288q0cS7iTU7Ci/D
-----END PRIVATE KEY-----
";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys").join(name)
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

/// A temporary key file with a chosen mode, removed on drop.
struct TempKey(PathBuf);

impl TempKey {
    fn with_text(text: &str, mode: u32) -> TempKey {
        use std::os::unix::fs::PermissionsExt as _;
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "strike-auth-test-{}-{}.pem",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        TempKey(path)
    }

    fn copy_of(name: &str, mode: u32) -> TempKey {
        TempKey::with_text(&fixture_text(name), mode)
    }
}

impl Drop for TempKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn load(name: &str) -> SigningKey {
    let k = TempKey::copy_of(name, 0o600);
    load_private_key(&k.0).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The DER of a public key file (SPKI).
fn spki(name: &str) -> Vec<u8> {
    SubjectPublicKeyInfoDer::from_pem_file(fixture(name)).unwrap().as_ref().to_vec()
}

/// The PKCS#1 `RSAPublicKey` inside an RSA-2048 SPKI: a fixed 24-byte prefix (outer SEQUENCE,
/// AlgorithmIdentifier rsaEncryption + NULL, BIT STRING header) then 270 bytes.
fn rsa_public_key() -> Vec<u8> {
    let der = spki(RSA_PUB);
    assert_eq!(der.len(), 294);
    assert_eq!(&der[..4], [0x30, 0x82, 0x01, 0x22]);
    assert_eq!(&der[19..24], [0x03, 0x82, 0x01, 0x0f, 0x00]);
    der[24..].to_vec()
}

/// The raw Ed25519 public key: the last 32 bytes of the 44-byte SPKI.
fn ed25519_public_key() -> Vec<u8> {
    let der = spki(ED_PUB);
    assert_eq!(der.len(), 44);
    der[12..].to_vec()
}

fn verifies(alg: KeyAlgorithm, msg: &[u8], sig: &[u8]) -> bool {
    match alg {
        KeyAlgorithm::RsaPssSha256 => {
            UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, rsa_public_key()).verify(msg, sig).is_ok()
        }
        KeyAlgorithm::Ed25519 => UnparsedPublicKey::new(&ED25519, ed25519_public_key()).verify(msg, sig).is_ok(),
    }
}

fn header_verifies(alg: KeyAlgorithm, h: &SignedHeader, method: &str, path: &str) -> bool {
    let mut msg = [0u8; 256];
    let n = signing_message(h.ts_ms, method, path, &mut msg).unwrap();
    let sig = base64::engine::general_purpose::STANDARD.decode(h.signature_b64()).unwrap();
    verifies(alg, &msg[..n], &sig)
}

/// The base64 body lines of a PEM file (the key material).
fn body_lines(pem: &str) -> Vec<String> {
    pem.lines().filter(|l| !l.starts_with("-----") && !l.is_empty()).map(str::to_owned).collect()
}

/// Panics if any chunk of the key's base64 body appears in `text`.
fn assert_no_key_material(text: &str, pem: &str) {
    for line in body_lines(pem) {
        for chunk in line.as_bytes().chunks(12).filter(|c| c.len() == 12) {
            let chunk = std::str::from_utf8(chunk).unwrap();
            assert!(!text.contains(chunk), "key material {chunk:?} leaked into: {text}");
        }
    }
}

fn all_keys() -> Vec<(&'static str, SigningKey)> {
    RSA_KEYS.iter().chain([&ED_KEY]).map(|n| (*n, load(n))).collect()
}

#[test]
fn every_fixture_key_loads() {
    for name in RSA_KEYS {
        let k = load(name);
        assert_eq!(k.algorithm(), KeyAlgorithm::RsaPssSha256, "{name}");
        assert_eq!(k.signature_len(), 256);
        assert_eq!(k.signature_b64_len(), 344);
        assert_eq!(k.public_key(), rsa_public_key(), "{name}: not the key of {RSA_PUB}");
    }
    let k = load(ED_KEY);
    assert_eq!(k.algorithm(), KeyAlgorithm::Ed25519);
    assert_eq!(k.signature_len(), 64);
    assert_eq!(k.signature_b64_len(), 88);
    assert_eq!(k.public_key(), ed25519_public_key());
    // Owner-read-only is fine too.
    let ro = TempKey::copy_of(ED_KEY, 0o400);
    load_private_key(&ro.0).unwrap();
}

#[test]
fn readable_by_others_is_refused_with_the_chmod_hint() {
    for name in RSA_KEYS.iter().chain([&ED_KEY]) {
        for mode in [0o644, 0o640, 0o604, 0o660, 0o601] {
            let k = TempKey::copy_of(name, mode);
            let e = load_private_key(&k.0).unwrap_err();
            assert!(matches!(e, AuthError::KeyFilePermissions { mode: m, .. } if m == mode), "{name} {mode:o}: {e}");
            let text = e.to_string();
            assert!(text.contains(&format!("chmod 600 {}", k.0.display())), "{text}");
            assert!(text.contains(&format!("{mode:03o}")), "{text}");
            assert_no_key_material(&text, &fixture_text(name));
            assert_no_key_material(&format!("{e:?}"), &fixture_text(name));
        }
    }
}

#[test]
fn key_material_never_in_debug_or_display() {
    for (name, k) in all_keys() {
        let dbg = format!("{k:?} {k}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
        assert_no_key_material(&dbg, &fixture_text(name));
    }
    assert_eq!(format!("{:?}", load(RSA_KEYS[0])), "SigningKey(RSA-PSS-SHA256, 2048-bit, <redacted>)");
    assert_eq!(format!("{:?}", load(ED_KEY)), "SigningKey(Ed25519, <redacted>)");
}

#[test]
fn malformed_and_unsupported_keys_are_refused_without_leaking() {
    let rsa = fixture_text(RSA_KEYS[0]);
    let lines: Vec<&str> = rsa.lines().collect();
    // A key with its middle lines cut out: valid PEM, invalid DER.
    let truncated = [&lines[..5], &lines[lines.len() - 4..]].concat().join("\n");
    // A character outside the base64 alphabet.
    let garbled = rsa.replacen('A', "*", 1);
    // No END line.
    let unterminated = lines[..lines.len() - 1].join("\n");
    type Case<'a> = (&'a str, &'a str, fn(&AuthError) -> bool);
    let cases: [Case; 8] = [
        ("truncated", &truncated, |e| matches!(e, AuthError::KeyRejected { algorithm: "RSA", .. })),
        ("garbled", &garbled, |e| matches!(e, AuthError::KeyFilePem { .. })),
        ("unterminated", &unterminated, |e| matches!(e, AuthError::KeyFilePem { .. })),
        ("public key", RSA_PUB_TEXT, |e| matches!(e, AuthError::NoPrivateKey { hint, .. } if hint.contains("public"))),
        ("empty", "", |e| matches!(e, AuthError::NoPrivateKey { .. })),
        ("ec sec1", EC_SEC1, |e| matches!(e, AuthError::UnsupportedKey { .. })),
        ("ec pkcs8", EC_PKCS8, |e| matches!(e, AuthError::UnsupportedKey { .. })),
        (
            "encrypted",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
            |e| matches!(e, AuthError::KeyEncrypted { .. }),
        ),
    ];
    for (what, text, ok) in cases {
        let k = TempKey::with_text(text, 0o600);
        let e = load_private_key(&k.0).unwrap_err();
        assert!(ok(&e), "{what}: {e}");
        let shown = format!("{e} {e:?}");
        assert_no_key_material(&shown, &rsa);
        assert_no_key_material(&shown, EC_SEC1);
        assert_no_key_material(&shown, EC_PKCS8);
        assert!(shown.contains(&k.0.display().to_string()), "{what}: the error should name the file: {shown}");
    }
    let missing = load_private_key(Path::new("/nonexistent/kalshi.pem")).unwrap_err();
    assert!(matches!(missing, AuthError::KeyFileRead { .. }), "{missing}");
    assert!(missing.to_string().contains("/nonexistent/kalshi.pem"));
}

const RSA_PUB_TEXT: &str = include_str!("../../tests/fixtures/keys/test_rsa_public.pem");

#[test]
fn signatures_verify_with_the_public_key_and_tampering_fails() {
    let mut msg = [0u8; 256];
    let n = signing_message(1703123456789, "POST", "/trade-api/v2/portfolio/events/orders", &mut msg).unwrap();
    let msg = &msg[..n];
    for (name, k) in all_keys() {
        let mut sig = [0u8; MAX_SIGNATURE_LEN];
        let len = k.sign(msg, &mut sig).unwrap();
        assert_eq!(len, k.signature_len());
        assert!(verifies(k.algorithm(), msg, &sig[..len]), "{name}: signature does not verify");

        let mut tampered = sig;
        tampered[len / 2] ^= 0x01;
        assert!(!verifies(k.algorithm(), msg, &tampered[..len]), "{name}: tampered signature verified");
        let mut other = msg.to_vec();
        other[0] = b'2'; // a different timestamp
        assert!(!verifies(k.algorithm(), &other, &sig[..len]), "{name}: signature verified another message");

        let mut b64 = [0u8; 344];
        let blen = k.sign_base64(msg, &mut b64).unwrap();
        assert_eq!(blen, k.signature_b64_len());
        let raw = base64::engine::general_purpose::STANDARD.decode(&b64[..blen]).unwrap();
        assert!(verifies(k.algorithm(), msg, &raw), "{name}: base64 signature does not verify");
        let mut short = [0u8; 87];
        assert!(matches!(k.sign_base64(msg, &mut short), Err(AuthError::BufferTooSmall { .. })));
    }
}

#[test]
fn query_string_is_not_signed() {
    for (name, k) in all_keys() {
        let mut msg = [0u8; 256];
        let n = signing_message(1703123456789, "GET", "/trade-api/v2/portfolio/orders?limit=5", &mut msg).unwrap();
        assert_eq!(&msg[..n], b"1703123456789GET/trade-api/v2/portfolio/orders");
        let h = sign_now(&k, "GET", "/trade-api/v2/portfolio/orders?limit=5", 1703123456789).unwrap();
        let sig = base64::engine::general_purpose::STANDARD.decode(h.signature_b64()).unwrap();
        assert!(verifies(k.algorithm(), b"1703123456789GET/trade-api/v2/portfolio/orders", &sig), "{name}");
        assert!(!verifies(k.algorithm(), b"1703123456789GET/trade-api/v2/portfolio/orders?limit=5", &sig), "{name}");
    }
}

#[test]
fn sign_now_signs_order_id_paths() {
    let path = "/trade-api/v2/portfolio/events/orders/ee587a1c-6e2a-4f0e-9c3b-6f1f0d7d1a2b/amend";
    for (name, k) in all_keys() {
        let ts = unix_now_ns() / 1_000_000;
        let h = sign_now(&k, "POST", path, ts).unwrap();
        assert_eq!(h.ts_ms, ts);
        assert_eq!(h.signature_b64().len(), k.signature_b64_len());
        assert!(h.signed_at_ns() >= ts * 1_000_000);
        assert!(header_verifies(k.algorithm(), &h, "POST", path), "{name}");
        assert!(!header_verifies(k.algorithm(), &h, "DELETE", path), "{name}: method not covered");
    }
}

#[test]
fn background_signer_publishes_fresh_verified_headers() {
    for (name, k) in [(RSA_KEYS[0], load(RSA_KEYS[0])), (ED_KEY, load(ED_KEY))] {
        let alg = k.algorithm();
        let refresh = DEFAULT_REFRESH;
        let signer = BackgroundSigner::spawn(Arc::new(k), refresh).unwrap();
        // The first round is signed before spawn returns.
        for p in FixedPath::ALL {
            assert!(header_verifies(alg, &signer.latest(p), p.method(), p.path()), "{name} {p:?}: first header");
        }
        let t0 = Instant::now();
        let start_ns = unix_now_ns();
        while !FixedPath::ALL.iter().all(|&p| signer.latest(p).signed_at_ns() > start_ns) {
            assert!(t0.elapsed() <= 2 * refresh, "{name}: no fresh header for every path within 2 x refresh");
            std::thread::sleep(Duration::from_millis(1));
        }
        let reader = signer.reader();
        for p in FixedPath::ALL {
            let h = reader.latest(p);
            assert!(header_verifies(alg, &h, p.method(), p.path()), "{name} {p:?}: refreshed header");
            let age = header_age_ns(&h, unix_now_ns());
            assert!(age <= 2 * refresh.as_nanos() as u64, "{name} {p:?}: header is {age} ns old");
        }
        assert!(signer.rounds() >= 1);
        assert_eq!(signer.sign_failures(), 0);

        let mut out = [0u8; 512];
        let h = signer.latest(FixedPath::CreateOrder);
        let n = write_auth_headers("a952bcbe-ec3b-4b5b-b8f9-11dae589608c", &h, &mut out).unwrap();
        let text = std::str::from_utf8(&out[..n]).unwrap();
        assert_eq!(
            text,
            format!(
                "KALSHI-ACCESS-KEY: a952bcbe-ec3b-4b5b-b8f9-11dae589608c\r\nKALSHI-ACCESS-TIMESTAMP: {}\r\n\
                 KALSHI-ACCESS-SIGNATURE: {}\r\n",
                h.ts_ms,
                h.signature_b64_str()
            )
        );
        let t = Instant::now();
        drop(signer);
        assert!(t.elapsed() < Duration::from_secs(2), "{name}: drop did not stop the signer promptly");
    }
}

#[test]
fn order_path_and_ed25519_signing_allocate_nothing() {
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8; 8]))), 1, "the counter does not count");
    let signer = BackgroundSigner::spawn(Arc::new(load(RSA_KEYS[0])), Duration::from_millis(1)).unwrap();
    let mut out = [0u8; 512];
    let mut total = 0usize;
    let n = allocations(|| {
        // Read while the signer publishes: until it has done 3 rounds (and at least 20k reads).
        let mut i = 0;
        while (i < 20_000 || signer.rounds() < 3) && i < 50_000_000 {
            i += 1;
            let h = signer.latest(FixedPath::ALL[i % FixedPath::COUNT]);
            total += write_auth_headers("a952bcbe-ec3b-4b5b-b8f9-11dae589608c", &h, &mut out).unwrap();
            total += header_age_ns(&h, unix_now_ns()) as usize & 1;
        }
    });
    assert_eq!(n, 0, "latest() + write_auth_headers allocated");
    assert!(total > 0);
    assert!(signer.rounds() >= 3, "the signer did not publish during the reads");

    let ed = load(ED_KEY);
    let mut msg = [0u8; 256];
    let mut b64 = [0u8; 344];
    let n = allocations(|| {
        for ts in 0..100u64 {
            let m = signing_message(ts, "GET", "/trade-api/v2/portfolio/orders?limit=5", &mut msg).unwrap();
            ed.sign_base64(&msg[..m], &mut b64).unwrap();
            sign_now(&ed, "DELETE", "/trade-api/v2/portfolio/events/orders/ee587a1c", ts).unwrap();
        }
    });
    assert_eq!(n, 0, "Ed25519 signing allocated");
}
