//! The engine's real network stack (mio socket, rustls, tungstenite, signed handshake from the
//! background signer, the feed, the trader's books) against the loopback Kalshi exchange in
//! `strike-sim`, serving the real production capture.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strike_engine::auth::{load_private_key, BackgroundSigner, DEFAULT_REFRESH};
use strike_engine::config::EngineConfig;
use strike_engine::feed::ws::{SignerAuth, WsFeedConfig, WsSource, RERESOLVE_AFTER_FAILURES};
use strike_engine::pipeline::{Pipeline, RunOptions};
use strike_sdk::book::{Book, BookSide};
use strike_sdk::num::{Price, Qty};
use strike_sim::recording::Recording;
use strike_sim::server::{ApiKey, Faults, WsServer, WsServerConfig};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys").join(name)
}

/// A private copy of a fixture key with mode 0600 (git does not keep modes).
fn private_key(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("strike-wsfeed-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::copy(fixture(name), &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn prod() -> Recording {
    Recording::read(&strike_sim::data_dir().join("kalshi/ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json"))
        .unwrap()
}

fn server(faults: Faults, public: &str) -> WsServer {
    let key = ApiKey::from_pem_file("test-key-id", &fixture(public)).unwrap();
    let mut cfg = WsServerConfig::new(Arc::new(prod()), key);
    cfg.faults = faults;
    WsServer::start(cfg).unwrap()
}

fn cfg() -> EngineConfig {
    EngineConfig { strategies_dir: PathBuf::new(), ..EngineConfig::default() }
}

struct Live {
    pipeline: Pipeline<WsSource>,
    _signer: BackgroundSigner,
}

/// The feed config for `srv` over `header`'s markets on `channels`: pinned certificate, the
/// server's address, fast backoff.
fn feed_config(srv: &WsServer, header: &strike_sim::recording::Header, channels: &[&str]) -> WsFeedConfig {
    WsFeedConfig {
        url: srv.url(),
        connect_addr: Some(srv.addr()),
        tls: WsFeedConfig::pinned_tls(&srv.cert().cert_der).unwrap(),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        tickers: header.markets.iter().map(|m| m.ticker.clone()).collect(),
        max_frame: 1 << 20,
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        seed: 1,
    }
}

fn live(srv: &WsServer, private: &str) -> Live {
    let mut header = prod().header;
    header.yes_price_scale = true; // we subscribe with use_yes_price: true
    let key = load_private_key(&private_key(private)).unwrap();
    let signer = BackgroundSigner::spawn(Arc::new(key), DEFAULT_REFRESH).unwrap();
    let src = WsSource::new(
        feed_config(srv, &header, &["orderbook_delta"]),
        Box::new(SignerAuth { key_id: "test-key-id".into(), headers: signer.reader() }),
    )
    .unwrap();
    let pipeline = Pipeline::with_source(
        &cfg(),
        &header,
        src,
        true,
        1 << 20,
        &[],
        &RunOptions::default(),
        strike_engine::pipeline::VenueChoice::Paper,
    )
    .unwrap();
    Live { pipeline, _signer: signer }
}

/// The books a plain replay of the capture ends with.
fn replay_books() -> Vec<Vec<(BookSide, Price, Qty)>> {
    let mut p = Pipeline::new(&cfg(), prod(), &[], &RunOptions::default()).unwrap();
    p.run_to_end();
    levels(p.trader().books())
}

fn levels(books: &[Book]) -> Vec<Vec<(BookSide, Price, Qty)>> {
    books
        .iter()
        .map(|b| {
            let mut v = Vec::new();
            for side in [BookSide::Bid, BookSide::Ask] {
                b.for_each_level(side, |p, q| {
                    v.push((side, p, q));
                    true
                });
            }
            v
        })
        .collect()
}

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn subscribe_snapshot_deltas_give_the_books_of_a_plain_replay() {
    let srv = server(Faults::none(), "test_rsa_public.pem");
    let mut l = live(&srv, "test_rsa_pkcs1.pem");
    let ok = l.pipeline.run_until(Instant::now() + DEADLINE, |t| t.stats.deltas_applied == 245);
    assert!(
        ok,
        "live feed applied {} deltas: {:?}",
        l.pipeline.trader().stats.deltas_applied,
        l.pipeline.feed().source().stats
    );
    let t = l.pipeline.trader();
    assert_eq!(t.stats.snapshots_applied, 12);
    assert_eq!(t.stats.book_faults.iter().count(), 0);
    assert_eq!(l.pipeline.feed().stats.gaps, 0);
    assert_eq!(levels(t.books()), replay_books());
    let ws = &l.pipeline.feed().source().stats;
    assert_eq!((ws.opened, ws.subscribes, ws.disconnects), (1, 1, 0));
    // the server saw our signed handshake and a subscribe asking for the YES scale
    assert_eq!(srv.stats().rejected().len(), 0);
}

#[test]
fn ed25519_keys_sign_the_handshake_too() {
    let srv = server(Faults::none(), "test_ed25519_public.pem");
    let mut l = live(&srv, "test_ed25519_pkcs8.pem");
    assert!(l.pipeline.run_until(Instant::now() + DEADLINE, |t| t.stats.deltas_applied == 245));
}

#[test]
fn a_refused_signature_is_reported_clearly_and_retried_with_backoff() {
    // the server knows the Ed25519 public key; we sign with RSA
    let srv = server(Faults::none(), "test_ed25519_public.pem");
    let mut l = live(&srv, "test_rsa_pkcs1.pem");
    let ok = l.pipeline.run_until(Instant::now() + Duration::from_secs(2), |_| false);
    assert!(!ok);
    let ws = &l.pipeline.feed().source().stats;
    let err = ws.last_error.clone().unwrap_or_default();
    assert!(err.contains("HTTP 401") && err.contains("invalid_signature"), "{err}");
    assert!(ws.connects >= 2 && ws.opened == 0, "{ws:?}");
    assert_eq!(l.pipeline.trader().stats.deltas_applied, 0);
    assert!(!srv.stats().rejected().is_empty());
}

#[test]
fn a_dropped_connection_reconnects_resnapshots_and_ends_with_the_same_books() {
    let srv = server(Faults::none().close_after(50), "test_rsa_public.pem");
    let mut l = live(&srv, "test_rsa_pkcs1.pem");
    // the second session replays the capture from the start: wait for its 245 deltas on top of
    // what the first session applied before the drop
    let ok = l.pipeline.run_until(Instant::now() + DEADLINE, |t| t.stats.snapshots_applied >= 24);
    assert!(ok, "{:?}", l.pipeline.feed().source().stats);
    l.pipeline.run_until(Instant::now() + Duration::from_millis(500), |_| false);
    let ws = l.pipeline.feed().source().stats.clone();
    assert_eq!(ws.opened, 2, "{ws:?}");
    assert_eq!(ws.disconnects, 1);
    assert_eq!(l.pipeline.feed().stats.disconnects, 1);
    assert!(l.pipeline.feed().stats.markets_marked_stale >= 12, "every market went stale on the drop");
    assert_eq!(l.pipeline.trader().stats.book_faults.iter().count(), 0);
    assert_eq!(levels(l.pipeline.trader().books()), replay_books());
}

#[test]
fn a_skipped_seq_is_a_gap_repaired_by_get_snapshot() {
    let srv = server(Faults::none().skip_seq(100), "test_rsa_public.pem");
    let mut l = live(&srv, "test_rsa_pkcs1.pem");
    let ok = l.pipeline.run_until(Instant::now() + DEADLINE, |t| t.stats.snapshots_applied >= 24);
    assert!(ok, "{:?}", l.pipeline.feed().source().stats);
    // let the rest of the stream arrive
    l.pipeline.run_until(Instant::now() + Duration::from_millis(500), |_| false);
    let f = &l.pipeline.feed().stats;
    assert_eq!(f.gaps, 1);
    assert_eq!(f.markets_marked_stale, 12);
    assert!(l.pipeline.feed().source().stats.snapshot_requests >= 1);
    assert_eq!(l.pipeline.trader().stats.book_faults.iter().count(), 0);
    assert_eq!(levels(l.pipeline.trader().books()), replay_books(), "get_snapshot repaired every book");
}

#[test]
fn garbled_and_oversized_frames_are_counted_and_survived() {
    let srv = server(Faults::none().garbled_after(10).oversized_after(20, 2 << 20), "test_rsa_public.pem");
    let mut l = live(&srv, "test_rsa_pkcs1.pem");
    let ok = l
        .pipeline
        .run_until(Instant::now() + DEADLINE, |t| t.stats.snapshots_applied >= 12 && t.stats.deltas_applied >= 245);
    assert!(ok, "{:?}", l.pipeline.feed().source().stats);
    l.pipeline.run_until(Instant::now() + Duration::from_millis(300), |_| false);
    let ws = l.pipeline.feed().source().stats.clone();
    assert_eq!(l.pipeline.feed().stats.faults.get("json"), 1, "the garbled frame is a parse fault");
    assert_eq!(ws.oversized, 1, "{ws:?}");
    assert_eq!(ws.opened, 2, "the oversized frame drops the connection; the client comes back");
    assert_eq!(levels(l.pipeline.trader().books()), replay_books());
}

/// A TCP forwarder on `127.0.0.1:port` to `target`: the "listener" of the exchange as a client
/// resolving `localhost` sees it. Stopping it closes the listener and every forwarded
/// connection; a new one can then bind the same port.
struct Forwarder {
    port: u16,
    stop: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    fn start(port: u16, target: std::net::SocketAddr) -> Forwarder {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (st, cs) = (stop.clone(), conns.clone());
        let accept = std::thread::spawn(move || {
            while !st.load(std::sync::atomic::Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = std::net::TcpStream::connect(target) else { continue };
                let mut g = cs.lock().unwrap();
                g.push(client.try_clone().unwrap());
                g.push(server.try_clone().unwrap());
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Forwarder { port, stop, conns, accept: Some(accept) }
    }

    /// Closes the listener and drops every forwarded connection.
    fn stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(a) = self.accept.take() {
            a.join().unwrap();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn after_repeated_connect_failures_the_host_is_resolved_again_and_the_feed_comes_back() {
    let srv = server(Faults::none(), "test_rsa_public.pem");
    let mut fwd = Forwarder::start(0, srv.addr());
    let header = prod().header;
    let key = load_private_key(&private_key("test_rsa_pkcs1.pem")).unwrap();
    let signer = BackgroundSigner::spawn(Arc::new(key), DEFAULT_REFRESH).unwrap();
    // a host name, no connect_addr: the production path
    let mut src = WsSource::new(
        WsFeedConfig {
            url: format!("wss://localhost:{}/trade-api/ws/v2", fwd.port),
            connect_addr: None,
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
            seed: 3,
            ..feed_config(&srv, &header, &["orderbook_delta"])
        },
        Box::new(SignerAuth { key_id: "test-key-id".into(), headers: signer.reader() }),
    )
    .unwrap();
    assert_eq!(src.stats.resolves, 1);
    let deadline = Instant::now() + DEADLINE;
    let poll_until = |src: &mut WsSource, done: &dyn Fn(&WsSource) -> bool| {
        while Instant::now() < deadline && !done(src) {
            if let strike_engine::feed::SourcePoll::Idle = strike_engine::feed::FrameSource::next_frame(src) {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        assert!(done(src), "{:?}", src.stats);
    };
    // the first session streams
    poll_until(&mut src, &|s| s.stats.frames >= 20);
    // the exchange's listener goes away: the connection drops, reconnects are refused, and after
    // RERESOLVE_AFTER_FAILURES of them in a row the host is resolved again
    fwd.stop();
    poll_until(&mut src, &|s| s.stats.resolves >= 2 && s.stats.failures_in_row > RERESOLVE_AFTER_FAILURES);
    assert_eq!(src.stats.opened, 1);
    assert_eq!(src.stats.resolve_failures, 0, "{:?}", src.stats.last_resolve_error);
    assert!(src.addrs().iter().all(|a| a.ip().is_loopback() && a.port() == fwd.port));
    // back on the same port: the source reconnects and a new session streams
    let port = fwd.port;
    let _fwd = Forwarder::start(port, srv.addr());
    let frames = src.stats.frames;
    poll_until(&mut src, &|s| s.stats.opened == 2 && s.stats.frames >= frames + 20);
    assert_eq!(src.stats.failures_in_row, 0);
    assert_eq!(src.stats.subscribes, 2);
}

#[test]
fn the_private_stream_goes_down_with_the_connection_and_up_again_once_resubscribed() {
    use strike_engine::feed::FeedStage;
    use strike_engine::pipeline::events::PrivateEvent;
    let srv = server(Faults::none().close_after(50), "test_rsa_public.pem");
    let mut header = prod().header;
    header.yes_price_scale = true;
    let key = load_private_key(&private_key("test_rsa_pkcs1.pem")).unwrap();
    let signer = BackgroundSigner::spawn(Arc::new(key), DEFAULT_REFRESH).unwrap();
    let src = WsSource::new(
        feed_config(&srv, &header, &["orderbook_delta", "fill", "user_orders"]),
        Box::new(SignerAuth { key_id: "test-key-id".into(), headers: signer.reader() }),
    )
    .unwrap();
    let universe = Arc::new(strike_sim::universe::UniverseData::from_header(&header).unwrap());
    let levels = 2 * universe.markets.iter().map(|m| m.grid.n_levels()).max().unwrap();
    let (md_tx, mut md_rx) = rtrb::RingBuffer::new(1 << 16);
    let (private_tx, mut private_rx) = rtrb::RingBuffer::new(64);
    let mut feed = FeedStage::new(
        src,
        universe.clone(),
        universe.len(),
        true,
        1 << 20,
        levels,
        vec![md_tx],
        None,
        strike_engine::telemetry::Clock::default(),
    )
    .with_private(private_tx);
    // both private channels acked → Up; the drop → Down; the new session's acks → Up again
    let mut seen = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while seen.len() < 3 && Instant::now() < deadline {
        feed.poll();
        while md_rx.pop().is_ok() {}
        while let Ok(e) = private_rx.pop() {
            seen.push(match e {
                PrivateEvent::Up => "up",
                PrivateEvent::Down => "down",
                PrivateEvent::Frame { .. } => "frame",
            });
        }
    }
    assert_eq!(seen, ["up", "down", "up"], "{:?}", feed.source().stats);
    assert_eq!(feed.stats.disconnects, 1);
}
