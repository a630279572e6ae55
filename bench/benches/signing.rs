//! Kalshi request signing: what a signature costs, and what an order pays instead with a
//! pre-signed header (`signer.latest()` + `write_auth_headers`).
//! `cargo bench -p strike-bench --bench signing`
//!
//! Keys are the test fixtures (`tests/fixtures/keys/`), copied to a 0600 temporary file first
//! (git does not keep modes; the loader refuses readable keys).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strike_engine::auth::{
    load_private_key, signing_message, write_auth_headers, BackgroundSigner, FixedPath, SigningKey, DEFAULT_REFRESH,
    MAX_SIGNATURE_LEN,
};

const KEY_ID: &str = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c";

/// Loads a fixture key through a 0600 temporary copy.
fn fixture_key(name: &str) -> SigningKey {
    use std::os::unix::fs::PermissionsExt as _;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys").join(name);
    let tmp: PathBuf = std::env::temp_dir().join(format!("strike-bench-{}-{name}", std::process::id()));
    std::fs::write(&tmp, std::fs::read(&src).unwrap()).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = load_private_key(&tmp);
    let _ = std::fs::remove_file(&tmp);
    key.unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn keys() -> [(&'static str, SigningKey); 2] {
    [("RSA-2048 PSS", fixture_key("test_rsa_pkcs1.pem")), ("Ed25519", fixture_key("test_ed25519_pkcs8.pem"))]
}

fn sign(c: &mut Criterion) {
    let mut g = c.benchmark_group("sign");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    let mut msg = [0u8; 256];
    let n = signing_message(1703123456789, "POST", FixedPath::CreateOrder.path(), &mut msg).unwrap();
    for (name, key) in keys() {
        let mut sig = [0u8; MAX_SIGNATURE_LEN];
        g.bench_function(format!("{name}: sign ts+POST+path (raw)"), |b| {
            b.iter(|| black_box(key.sign(black_box(&msg[..n]), &mut sig).unwrap()))
        });
    }
    let mut out = [0u8; 256];
    let mut ts = 1703123456789u64;
    g.bench_function("signing_message (ts + method + path, query stripped)", |b| {
        b.iter(|| {
            ts += 1;
            black_box(
                signing_message(ts, "GET", black_box("/trade-api/v2/portfolio/orders?limit=5"), &mut out).unwrap(),
            )
        })
    });
    g.finish();
}

fn per_order(c: &mut Criterion) {
    let mut g = c.benchmark_group("per_order_auth");
    g.throughput(Throughput::Elements(1));
    for (name, key) in keys() {
        let signer = BackgroundSigner::spawn(Arc::new(key), DEFAULT_REFRESH).unwrap();
        let mut out = [0u8; 512];
        g.bench_function(format!("{name}: latest() + write_auth_headers (pre-signed)"), |b| {
            b.iter(|| {
                let h = signer.latest(black_box(FixedPath::CreateOrder));
                black_box(write_auth_headers(KEY_ID, &h, &mut out).unwrap())
            })
        });
        let h = signer.latest(FixedPath::CreateOrder);
        g.bench_function(format!("{name}: write_auth_headers only"), |b| {
            b.iter(|| black_box(write_auth_headers(KEY_ID, black_box(&h), &mut out).unwrap()))
        });
        drop(signer);
    }
    g.finish();
}

criterion_group!(benches, sign, per_order);
criterion_main!(benches);
