//! The cold-path REST client ([`strike_engine::metadata::RestClient`]) against the loopback
//! Kalshi REST server in `strike-sim` (TLS with its self-signed certificate, signed requests,
//! scripted 429s): rate limits are retried with backoff, and too many give a clear error.
//!
//! The simulator serves the account reads (`/portfolio/balance`, `/portfolio/positions`) but no
//! market metadata; the retry of `GET /markets` itself is covered by the unit tests in
//! `engine/src/metadata.rs` (plain-HTTP loopback server with `Retry-After`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strike_engine::metadata::{MetadataError, RestClient, RetryPolicy};
use strike_sdk::num::Money;
use strike_sim::server::{ApiKey, RestFaults, RestServer, RestServerConfig};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys").join(name)
}

fn server(faults: RestFaults) -> RestServer {
    let rec = Arc::new(strike_sim::synth::generate(3, &strike_sim::synth::SynthConfig::default()));
    let key = ApiKey::from_pem_file("test-key-id", &fixture("test_ed25519_public.pem")).unwrap();
    let mut cfg = RestServerConfig::new(rec, key, Money::dollars(2_500));
    cfg.faults = faults;
    RestServer::start(cfg).unwrap()
}

fn client(srv: &RestServer) -> RestClient {
    use std::os::unix::fs::PermissionsExt;
    let p = std::env::temp_dir().join(format!(
        "strike-md-rest-key-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::copy(fixture("test_ed25519_pkcs8.pem"), &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = Arc::new(strike_engine::auth::load_private_key(&p).unwrap());
    RestClient::with_ca_cert(&srv.url(), &srv.cert().cert_der).with_key("test-key-id", key)
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_total_wait: Duration::from_secs(2),
    }
}

#[test]
fn rate_limited_account_reads_are_retried_until_they_load() {
    let srv = server(RestFaults::none().rate_limit_path(3, "/portfolio/balance"));
    let c = client(&srv).with_retry(fast());
    let t0 = Instant::now();
    assert_eq!(c.balance().unwrap(), Money::dollars(2_500));
    // 20 + 40 + 80 ms of backoff
    assert!(t0.elapsed() >= Duration::from_millis(140), "{:?}", t0.elapsed());
    let s = srv.stats();
    assert_eq!(s.rate_limited, 3);
    assert_eq!(s.requests_to("GET", "/portfolio/balance"), 4);
    assert_eq!(s.auth_failures, 0, "every attempt is signed afresh: {:?}", s.auth_failure_reasons);

    // the default policy rides out the same (250 + 500 ms)
    srv.set_faults(RestFaults::none().rate_limit_path(2, "/portfolio/positions"));
    assert!(client(&srv).positions().unwrap().is_empty());
    assert_eq!(srv.stats().rate_limited, 5);
}

#[test]
fn too_many_429s_end_in_an_error_that_says_what_to_do() {
    let srv = server(RestFaults::none().rate_limit_path(50, "/portfolio/positions"));
    let c = client(&srv).with_retry(fast());
    let e = c.positions().unwrap_err();
    assert!(matches!(e, MetadataError::GaveUp { attempts: 5, .. }), "{e:?}");
    let msg = e.to_string();
    for want in ["/trade-api/v2/portfolio/positions", "gave up after 5 attempts", "HTTP 429", "too many requests"] {
        assert!(msg.contains(want), "{want:?} missing from: {msg}");
    }
    assert!(msg.contains("rate limit") && msg.contains("run again"), "{msg}");
    assert_eq!(srv.stats().rate_limited, 5, "bounded: exactly max_attempts requests");
    // other paths are not limited: the balance loads at once
    assert_eq!(c.balance().unwrap(), Money::dollars(2_500));
}
