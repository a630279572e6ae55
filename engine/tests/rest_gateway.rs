//! The REST V2 order gateway (`strike_engine::gateway::rest`) against the loopback Kalshi REST
//! server in `strike-sim`, over real TLS on loopback: mio sockets, rustls trusting only the
//! server's generated certificate, headers pre-signed by the background signer (RSA-2048 PSS,
//! the test key in `tests/fixtures/keys/`) and checked by the server.
//!
//! Markets (hand-made recording, NO-price scale):
//! - `KXT-A` (`linear_cent`, shard 0): YES bids 0.40 × 10, 0.38 × 20; YES asks 0.45 × 5,
//!   0.47 × 10.
//! - `KXT-B` (`deci_cent`, shard 2): YES bid 0.200 × 3; YES ask 0.250 × 4.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strike_engine::auth::{load_private_key, unix_now_ns, BackgroundSigner, DEFAULT_REFRESH};
use strike_engine::feed::ws::WsFeedConfig;
use strike_engine::gateway::orders::{GatewayEvent, OpKind, Phase};
use strike_engine::gateway::rest::{Decrease, RestConfig, RestGateway};
use strike_engine::pipeline::events::{ExecEvent, OrderRequest};
use strike_sdk::book::BookSide;
use strike_sdk::market::MarketId;
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::{OrderRef, OrderStatus, RejectReason, TimeInForce};
use strike_sim::recording::{Frame, Header, MarketRecord, Recording, FORMAT_VERSION};
use strike_sim::server::{ApiKey, ErrorShape, RestFaults, RestServer, RestServerConfig, ScriptedReject};
use strike_sim::universe::UniverseData;

// ---- a per-thread allocation counter (tests run on parallel threads) ----

struct Counting;
thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while thread-locals are being torn down.
    let _ = ARMED.try_with(|a| {
        if a.get() {
            let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        System.alloc(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        System.realloc(p, l, n)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCS.with(|n| n.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, ALLOCS.with(|n| n.get()))
}

// ---- fixtures ----

const KEY_ID: &str = "0b7f4c1e-test-key";
const STRATEGY: u16 = 4;
const A: MarketId = MarketId(0);
const B: MarketId = MarketId(1);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys").join(name)
}

/// A private copy of a fixture key with mode 0600 (git does not keep modes).
fn private_key(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("strike-restgw-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::copy(fixture(name), &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn recording() -> Arc<Recording> {
    let frames = [
        r#"{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"KXT-A","yes_dollars_fp":[["0.3800","20.00"],["0.4000","10.00"]],"no_dollars_fp":[["0.5300","10.00"],["0.5500","5.00"]]}}"#,
        r#"{"type":"orderbook_snapshot","sid":1,"seq":2,"msg":{"market_ticker":"KXT-B","yes_dollars_fp":[["0.2000","3.00"]],"no_dollars_fp":[["0.7500","4.00"]]}}"#,
    ];
    let market = |t: &str, xi: u8, structure: &str| MarketRecord {
        ticker: t.into(),
        event_ticker: "KXT".into(),
        series_ticker: "KXT".into(),
        price_level_structure: Some(structure.into()),
        exchange_index: xi,
        ..Default::default()
    };
    Arc::new(Recording {
        header: Header {
            strike_recording: FORMAT_VERSION,
            source: "hand-made".into(),
            yes_price_scale: false,
            markets: vec![market("KXT-A", 0, "linear_cent"), market("KXT-B", 2, "deci_cent")],
            events: vec![],
        },
        frames: frames
            .iter()
            .enumerate()
            .map(|(i, t)| Frame { recv_ns: 1_000_000 * (i as u64 + 1), text: t.to_string() })
            .collect(),
    })
}

fn server(tweak: impl FnOnce(&mut RestServerConfig)) -> RestServer {
    let key = ApiKey::from_pem_file(KEY_ID, &fixture("test_rsa_public.pem")).unwrap();
    let mut cfg = RestServerConfig::new(recording(), key, Money::dollars(1_000));
    tweak(&mut cfg);
    RestServer::start(cfg).unwrap()
}

struct Rig {
    gw: RestGateway,
    events: Vec<GatewayEvent>,
    _signer: BackgroundSigner,
}

fn gateway(srv: &RestServer, tweak: impl FnOnce(&mut RestConfig)) -> Rig {
    let key = Arc::new(load_private_key(&private_key("test_rsa_pkcs1.pem")).unwrap());
    let signer = BackgroundSigner::spawn(Arc::clone(&key), DEFAULT_REFRESH).unwrap();
    let mut cfg = RestConfig::new(&srv.url(), WsFeedConfig::pinned_tls(&srv.cert().cert_der).unwrap(), KEY_ID);
    cfg.connect_addr = Some(srv.addr());
    cfg.session_id = SESSION;
    cfg.backoff_min = Duration::from_millis(10);
    cfg.backoff_max = Duration::from_millis(200);
    tweak(&mut cfg);
    let metas = UniverseData::from_header(&recording().header).unwrap().markets;
    let gw = RestGateway::new(cfg, &metas, signer.reader(), key).unwrap();
    let mut rig = Rig { gw, events: Vec::new(), _signer: signer };
    rig.until("connections ready", |r| r.gw.connections_ready() == 2);
    rig
}

impl Rig {
    /// Polls (with short sleeps: the server's threads share the 2 cores) until `done`, keeping
    /// every event. Panics after 10 s.
    fn until(&mut self, what: &str, mut done: impl FnMut(&Rig) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ev = self.gw.poll(unix_now_ns()).to_vec();
            self.events.extend(ev);
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {:#?}\n{:?}", self.events, self.gw);
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn submit(&mut self, r: OrderRequest) {
        self.gw.submit(&r, unix_now_ns()).unwrap();
    }

    fn phase(&self, order_ref: u64) -> Option<Phase> {
        self.gw.order(STRATEGY, OrderRef(order_ref)).map(|r| r.phase)
    }

    fn wait_phase(&mut self, order_ref: u64, p: Phase) {
        self.until(&format!("order {order_ref} {p:?}"), |r| r.phase(order_ref) == Some(p));
    }

    fn updates(&self, order_ref: u64) -> Vec<(OrderStatus, RejectReason, Qty, Qty, Price)> {
        self.events
            .iter()
            .filter_map(|e| match e.exec() {
                Some(ExecEvent::Update { update, yes_price, .. }) if update.order_ref == OrderRef(order_ref) => {
                    Some((update.status, update.reason, update.filled, update.remaining, yes_price))
                }
                _ => None,
            })
            .collect()
    }

    fn fills(&self, order_ref: u64) -> Vec<(Price, Qty)> {
        self.events
            .iter()
            .filter_map(|e| match e.exec() {
                Some(ExecEvent::Fill { fill, .. }) if fill.order_ref == OrderRef(order_ref) => {
                    Some((fill.yes_price, fill.qty))
                }
                _ => None,
            })
            .collect()
    }

    fn failures(&self, op: OpKind) -> Vec<strike_engine::gateway::http::ApiError> {
        self.events
            .iter()
            .filter_map(|e| match e {
                GatewayEvent::Failed { op: o, error, .. } if *o == op => Some(*error),
                _ => None,
            })
            .collect()
    }
}

fn new(order_ref: u64, market: MarketId, side: BookSide, cents: u16, qty: i64, tif: TimeInForce) -> OrderRequest {
    OrderRequest::New {
        strategy: STRATEGY,
        order_ref: OrderRef(order_ref),
        market,
        side,
        yes_price: Price(cents * 100),
        qty: Qty::contracts(qty),
        tif,
        post_only: false,
        tag: 77,
        recv_ns: 0,
        t0: 0,
    }
}

fn server_order(srv: &RestServer, coid: &str) -> serde_json::Value {
    srv.orders()
        .into_iter()
        .find(|o| o["client_order_id"] == coid)
        .unwrap_or_else(|| panic!("no order {coid} on the server"))
}

/// The session id of the gateway under test (its `client_order_id`s carry it).
const SESSION: u32 = 0x5e55_1011;

fn coid(order_ref: u64) -> String {
    format!("strk-{SESSION:08x}-{STRATEGY:02x}-{order_ref:016x}")
}

// ---- tests ----

#[test]
fn create_batch_cancel_amend_decrease_round_trips() {
    let srv = server(|_| {});
    let mut rig = gateway(&srv, |_| {});

    // A resting bid below the book, then an IoC that takes 2 at the 0.45 ask.
    rig.submit(new(1, A, BookSide::Bid, 39, 10, TimeInForce::Gtc));
    rig.submit(new(2, A, BookSide::Bid, 45, 2, TimeInForce::Ioc));
    rig.wait_phase(1, Phase::Resting);
    rig.wait_phase(2, Phase::Executed);
    assert_eq!(
        rig.updates(1),
        [(OrderStatus::Resting, RejectReason::Venue, Qty::ZERO, Qty::contracts(10), Price(3900))]
    );
    assert_eq!(rig.fills(2), [(Price(4500), Qty::contracts(2))]);
    assert_eq!(rig.updates(2).last().unwrap().0, OrderStatus::Filled);
    let id1 = rig.gw.order(STRATEGY, OrderRef(1)).unwrap().order_id.unwrap();
    assert_eq!(server_order(&srv, &coid(1))["order_id"], id1.as_str());
    // Both creates were timed from their last byte written to their response read.
    let rtt = rig.gw.latency.hist(strike_engine::telemetry::Hop::OrderRoundTrip);
    assert_eq!(rtt.len(), 2);
    assert!(rtt.min() > 0);

    // Every send carried a pre-signed header younger than the refresh interval (plus slack).
    let ages: Vec<u64> = rig
        .events
        .iter()
        .filter_map(|e| match e {
            GatewayEvent::Sent { op: OpKind::Create, header_age_ns, .. } => Some(*header_age_ns),
            _ => None,
        })
        .collect();
    assert_eq!(ages.len(), 2);
    assert!(ages.iter().all(|&a| a < 1_000_000_000), "{ages:?}");
    assert_eq!(rig.gw.order(STRATEGY, OrderRef(1)).unwrap().header_age_ns, ages[0]);

    // A batch of three on shard 2, resting.
    let batch: Vec<OrderRequest> = (10..13).map(|i| new(i, B, BookSide::Bid, 15, 1, TimeInForce::Gtc)).collect();
    rig.gw.submit_batch(&batch, unix_now_ns()).unwrap();
    for i in 10..13 {
        rig.wait_phase(i, Phase::Resting);
    }
    assert_eq!(srv.stats().requests_to("POST", "/portfolio/events/orders/batched"), 1);

    // Amend order 1 to 0.41 and a total of 12; then decrease it to 5; then cancel it.
    rig.gw.amend(STRATEGY, OrderRef(1), Price(4100), Qty::contracts(12), unix_now_ns()).unwrap();
    rig.until("amend", |r| r.updates(1).last().is_some_and(|u| u.4 == Price(4100)));
    assert_eq!(
        *rig.updates(1).last().unwrap(),
        (OrderStatus::Resting, RejectReason::Venue, Qty::ZERO, Qty::contracts(12), Price(4100))
    );
    assert_eq!(server_order(&srv, &coid(1))["yes_price_dollars"], "0.4100");
    rig.gw.decrease(STRATEGY, OrderRef(1), Decrease::To(Qty::contracts(5)), unix_now_ns()).unwrap();
    rig.until("decrease", |r| r.updates(1).last().is_some_and(|u| u.3 == Qty::contracts(5)));
    assert_eq!(server_order(&srv, &coid(1))["remaining_count_fp"], "5.00");
    rig.gw.decrease(STRATEGY, OrderRef(1), Decrease::By(Qty::contracts(1)), unix_now_ns()).unwrap();
    rig.until("decrease by", |r| r.updates(1).last().is_some_and(|u| u.3 == Qty::contracts(4)));
    rig.submit(OrderRequest::Cancel { strategy: STRATEGY, order_ref: OrderRef(1) });
    rig.wait_phase(1, Phase::Canceled);
    assert_eq!(server_order(&srv, &coid(1))["status"], "canceled");

    // Batched cancel of two of the batch, then cancel-all takes the last.
    let cancels: Vec<OrderRequest> =
        (10..12).map(|i| OrderRequest::Cancel { strategy: STRATEGY, order_ref: OrderRef(i) }).collect();
    rig.gw.submit_batch(&cancels, unix_now_ns()).unwrap();
    rig.wait_phase(10, Phase::Canceled);
    rig.wait_phase(11, Phase::Canceled);
    assert_eq!(rig.phase(12), Some(Phase::Resting));
    rig.gw.cancel_all(unix_now_ns());
    rig.until("cancel all", |r| r.events.contains(&GatewayEvent::CancelledAll));
    assert_eq!(rig.phase(12), Some(Phase::Canceled));
    for i in 10..13 {
        assert_eq!(server_order(&srv, &coid(i))["status"], "canceled", "order {i}");
    }

    let st = srv.stats();
    assert_eq!(st.creates, 5, "{st:?}");
    assert_eq!((st.amends, st.decreases), (1, 2));
    assert_eq!(st.missing_exchange_index, 0, "exchange_index on every write: {:?}", st.missing_exchange_index_by);
    assert_eq!(st.auth_failures, 0, "{:?}", st.auth_failure_reasons);
    assert_eq!(st.requests_to("DELETE", "/portfolio/events/orders/batched"), 1);
    assert_eq!(st.requests_to("DELETE", "/portfolio/events/orders"), 1);
    assert!(rig.failures(OpKind::Create).is_empty());
    assert_eq!(rig.gw.stats().resends, 0);
    // Keep-alive: everything went over the two pooled connections.
    assert_eq!(rig.gw.stats().connected, 2, "{:?}", rig.gw.stats());
}

#[test]
fn rate_limited_create_is_retried_not_duplicated() {
    let srv = server(|c| c.faults = RestFaults::none().rate_limit_path(2, "/portfolio/events/orders"));
    let mut rig = gateway(&srv, |_| {});
    rig.submit(new(1, A, BookSide::Bid, 30, 3, TimeInForce::Gtc));
    rig.wait_phase(1, Phase::Resting);
    let attempts: Vec<u32> = rig
        .events
        .iter()
        .filter_map(|e| match e {
            GatewayEvent::Sent { op: OpKind::Create, attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    let st = srv.stats();
    assert_eq!((st.rate_limited, st.creates), (2, 1), "{st:?}");
    assert_eq!(rig.gw.stats().rate_limited, 2);
    assert_eq!(rig.gw.order(STRATEGY, OrderRef(1)).unwrap().sends, 3);
    assert_eq!(rig.updates(1).len(), 1, "one ack, no reject");
}

#[test]
fn both_error_shapes_and_venue_rejects() {
    let srv = server(|c| {
        c.faults = RestFaults::none()
            .reject_next_create(ScriptedReject::new(400, "invalid_order", "flat shape").with_details("D1"))
            .reject_next_create(ScriptedReject::new(409, "order_group_not_found", "nested shape").nested());
        c.error_shape = ErrorShape::Nested;
    });
    let mut rig = gateway(&srv, |_| {});
    rig.submit(new(1, A, BookSide::Bid, 30, 1, TimeInForce::Gtc));
    rig.wait_phase(1, Phase::Rejected);
    rig.submit(new(2, A, BookSide::Bid, 30, 1, TimeInForce::Gtc));
    rig.wait_phase(2, Phase::Rejected);
    // A post-only order that would cross, refused by the exchange's own rules (nested body).
    let mut po = new(3, A, BookSide::Bid, 45, 1, TimeInForce::Gtc);
    if let OrderRequest::New { post_only, .. } = &mut po {
        *post_only = true;
    }
    rig.submit(po);
    rig.wait_phase(3, Phase::Rejected);
    // More than the balance can pay for.
    rig.submit(new(4, A, BookSide::Bid, 30, 100_000, TimeInForce::Gtc));
    rig.wait_phase(4, Phase::Rejected);

    let f = rig.failures(OpKind::Create);
    assert_eq!(f.len(), 4, "{f:?}");
    assert_eq!(
        (f[0].status, f[0].code.as_str(), f[0].message.as_str(), f[0].details.as_str()),
        (400, "invalid_order", "flat shape", "D1")
    );
    assert_eq!(
        (f[1].status, f[1].code.as_str(), f[1].message.as_str()),
        (409, "order_group_not_found", "nested shape")
    );
    assert!(format!("{} {}", f[2].code, f[2].details).contains("POST_ONLY_CROSS"), "{}", f[2]);
    assert_eq!(f[3].code.as_str(), "insufficient_balance");
    assert_eq!(rig.updates(3).last().unwrap().1, RejectReason::PostOnlyCross);
    assert_eq!(rig.updates(4).last().unwrap().1, RejectReason::Exposure);
    assert_eq!(srv.stats().creates, 0);
}

#[test]
fn flat_error_shape_from_the_server() {
    let srv = server(|c| c.error_shape = ErrorShape::Flat);
    let mut rig = gateway(&srv, |_| {});
    rig.submit(new(1, A, BookSide::Bid, 45, 1, TimeInForce::Gtc));
    let mut po = new(2, A, BookSide::Bid, 46, 1, TimeInForce::Gtc);
    if let OrderRequest::New { post_only, .. } = &mut po {
        *post_only = true;
    }
    rig.submit(po);
    rig.wait_phase(2, Phase::Rejected);
    let f = rig.failures(OpKind::Create);
    assert_eq!(f[0].status, 400);
    assert!(format!("{} {}", f[0].code, f[0].details).contains("POST_ONLY_CROSS"), "{}", f[0]);
    assert_eq!(rig.updates(2).last().unwrap().1, RejectReason::PostOnlyCross);
    // Order 1 took 1 at the 0.45 ask. Cancelling it now (no longer resting) is refused with
    // the exchange's code; its state stays Executed.
    rig.wait_phase(1, Phase::Executed);
    rig.submit(OrderRequest::Cancel { strategy: STRATEGY, order_ref: OrderRef(1) });
    let _ = rig.gw.poll(unix_now_ns());
    assert_eq!(rig.phase(1), Some(Phase::Executed));
    assert!(rig.failures(OpKind::Cancel).is_empty(), "a cancel of a finished order is dropped, not sent");
}

#[test]
fn a_create_never_answered_is_reconciled_not_duplicated() {
    let srv = server(|c| c.faults = RestFaults::none().never_answer_create(1));
    let mut rig = gateway(&srv, |c| c.request_timeout = Duration::from_millis(400));
    rig.submit(new(1, A, BookSide::Bid, 35, 4, TimeInForce::Gtc));
    rig.until("reconciled", |r| r.events.iter().any(|e| matches!(e, GatewayEvent::Reconciled { .. })));
    assert!(rig.events.contains(&GatewayEvent::Reconciled {
        strategy: STRATEGY,
        order_ref: OrderRef(1),
        found: true,
        resent: false
    }));
    let rec = rig.gw.order(STRATEGY, OrderRef(1)).unwrap();
    assert_eq!((rec.phase, rec.sends, rec.remaining), (Phase::Resting, 1, Qty::contracts(4)));
    assert_eq!(rec.order_id.unwrap().as_str(), server_order(&srv, &coid(1))["order_id"].as_str().unwrap());
    let st = srv.stats();
    assert_eq!(st.creates, 1, "no duplicate order: {st:?}");
    assert_eq!(st.never_answered, 1);
    assert_eq!(st.requests_to("GET", "/portfolio/orders"), 1);
    let gs = rig.gw.stats();
    assert_eq!((gs.timeouts, gs.reconciliations, gs.resends), (1, 1, 0), "{gs:?}");
    // The timed-out connection was replaced; the gateway keeps trading.
    rig.submit(new(2, A, BookSide::Bid, 35, 1, TimeInForce::Gtc));
    rig.wait_phase(2, Phase::Resting);
    assert_eq!(srv.stats().creates, 2);
}

#[test]
fn connections_closed_by_the_server_are_reestablished() {
    let srv = server(|c| c.faults = RestFaults::none().close_after(1));
    let mut rig = gateway(&srv, |_| {});
    for i in 1..=4 {
        rig.submit(new(i, A, BookSide::Bid, 30 + i as u16, 1, TimeInForce::Gtc));
        rig.wait_phase(i, Phase::Resting);
        // Let the idle probe notice the close before the next order.
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = srv.stats();
    assert_eq!(st.creates, 4, "no duplicates: {st:?}");
    assert!(rig.gw.stats().connected >= 4, "{:?}", rig.gw.stats());
    assert_eq!(rig.gw.stats().resends, 0);
}

#[test]
fn the_create_path_allocates_only_inside_rustls() {
    let srv = server(|_| {});
    let mut rig = gateway(&srv, |_| {});
    // Warm up: one order round trip on each connection.
    for i in 1..=2 {
        rig.submit(new(i, A, BookSide::Bid, 30, 1, TimeInForce::Gtc));
    }
    rig.wait_phase(1, Phase::Resting);
    rig.wait_phase(2, Phase::Resting);
    let _ = rig.gw.poll(unix_now_ns());
    let req = new(3, A, BookSide::Bid, 31, 1, TimeInForce::Gtc);
    let now = unix_now_ns();
    let (r, n) = allocations(|| rig.gw.submit(&req, now));
    r.unwrap();
    assert_eq!(rig.gw.in_flight(), 1, "written at once");
    // rustls allocates the TLS record it encrypts into; everything of ours is pre-allocated.
    assert!(n <= 1, "{n} allocations on the create path");
    rig.wait_phase(3, Phase::Resting);
}

/// The live stage sends FOK/IOC orders only: a resting order's later fills arrive on private
/// WebSocket channels the gateway does not consume yet, so a GTC order is refused up front and
/// never reaches the exchange.
#[test]
fn the_live_stage_refuses_resting_orders_without_sending_them() {
    use strike_engine::gateway::live::LiveGateway;
    let srv = server(|_| {});
    let Rig { gw, _signer: signer, .. } = gateway(&srv, |_| {});
    let (mut ord_tx, ord_rx) = rtrb::RingBuffer::new(64);
    let (exec_tx, mut exec_rx) = rtrb::RingBuffer::new(64);
    let mut live = LiveGateway::new(gw, ord_rx, exec_tx, strike_engine::telemetry::Clock::default());
    ord_tx
        .push(OrderRequest::New {
            strategy: 0,
            order_ref: OrderRef(1),
            market: MarketId(0),
            side: BookSide::Bid,
            yes_price: Price(4000),
            qty: Qty::contracts(1),
            tif: TimeInForce::Gtc,
            post_only: true,
            tag: 7,
            recv_ns: 0,
            t0: 0,
        })
        .unwrap();
    live.poll();
    match exec_rx.pop() {
        Ok(ExecEvent::Update { update, .. }) => {
            assert_eq!(update.status, OrderStatus::Rejected);
            assert_eq!(update.reason, RejectReason::BadTimeInForce);
            assert_eq!(update.tag, 7);
        }
        other => panic!("{other:?}"),
    }
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        live.poll();
    }
    assert_eq!(srv.stats().creates, 0, "nothing reached the exchange");
    assert_eq!(live.stats.rejects.get("live_gtc_refused"), 1);
    drop(signer);
}

// ---- the live gateway stage: private stream, resync, positions ----

use strike_engine::gateway::live::{LiveGateway, SyncState};
use strike_engine::pipeline::events::PrivateEvent;

struct LiveRig {
    lg: LiveGateway,
    orders: rtrb::Producer<OrderRequest>,
    exec: rtrb::Consumer<ExecEvent>,
    private: rtrb::Producer<PrivateEvent>,
    seen: Vec<ExecEvent>,
    _signer: BackgroundSigner,
}

fn live_stage(srv: &RestServer) -> LiveRig {
    let key = Arc::new(load_private_key(&private_key("test_rsa_pkcs1.pem")).unwrap());
    let signer = BackgroundSigner::spawn(Arc::clone(&key), DEFAULT_REFRESH).unwrap();
    let mut cfg = RestConfig::new(&srv.url(), WsFeedConfig::pinned_tls(&srv.cert().cert_der).unwrap(), KEY_ID);
    cfg.connect_addr = Some(srv.addr());
    cfg.backoff_min = Duration::from_millis(10);
    let metas = UniverseData::from_header(&recording().header).unwrap().markets;
    let gw = RestGateway::new(cfg, &metas, signer.reader(), key).unwrap();
    let (orders, ord_rx) = rtrb::RingBuffer::new(64);
    let (exec_tx, exec) = rtrb::RingBuffer::new(64);
    let (private, priv_rx) = rtrb::RingBuffer::new(16);
    let lg = LiveGateway::new(gw, ord_rx, exec_tx, strike_engine::telemetry::Clock::default()).with_private(priv_rx);
    LiveRig { lg, orders, exec, private, seen: Vec::new(), _signer: signer }
}

impl LiveRig {
    fn until(&mut self, what: &str, mut done: impl FnMut(&LiveRig) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.lg.poll();
            while let Ok(e) = self.exec.pop() {
                self.seen.push(e);
            }
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {:#?}", self.seen);
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn send(&mut self, r: OrderRequest) {
        self.orders.push(r).unwrap();
    }

    fn up(&mut self) {
        self.private.push(PrivateEvent::Up).unwrap();
        self.until("live", |r| r.lg.sync_state() == SyncState::Live);
    }

    fn status(&self, order_ref: u64) -> Option<(OrderStatus, RejectReason, Qty)> {
        self.seen.iter().rev().find_map(|e| match e {
            ExecEvent::Update { update, .. } if update.order_ref == OrderRef(order_ref) => {
                Some((update.status, update.reason, update.remaining))
            }
            _ => None,
        })
    }

    fn fills(&self, order_ref: u64) -> Vec<(Price, Qty, strike_sdk::fees::Liquidity)> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                ExecEvent::Fill { fill, .. } if fill.order_ref == OrderRef(order_ref) => {
                    Some((fill.yes_price, fill.qty, fill.liquidity))
                }
                _ => None,
            })
            .collect()
    }
}

#[test]
fn live_stage_refuses_orders_until_the_private_stream_is_up_and_the_venue_is_read() {
    let srv = server(|_| {});
    let mut r = live_stage(&srv);
    assert_eq!(r.lg.sync_state(), SyncState::Waiting);
    r.send(new(1, A, BookSide::Bid, 45, 5, TimeInForce::Fok));
    r.until("order 1 refused", |r| r.status(1).is_some());
    assert_eq!(r.status(1), Some((OrderStatus::Rejected, RejectReason::Halted, Qty::ZERO)));
    assert_eq!(r.lg.stats.rejects.get("live_syncing"), 1);
    assert_eq!(srv.stats().requests_to("POST", "/portfolio/events/orders"), 0, "nothing reached the venue");

    r.up();
    assert_eq!(srv.stats().requests_to("GET", "/portfolio/positions"), 1, "positions read before trading");
    // a flat account: nothing to correct
    assert!(!r.seen.iter().any(|e| matches!(e, ExecEvent::Position { .. })));
    r.send(new(2, A, BookSide::Bid, 45, 5, TimeInForce::Fok));
    r.until("order 2 filled", |r| r.status(2).is_some_and(|s| s.0 == OrderStatus::Filled));
    assert_eq!(r.fills(2), vec![(Price(4500), Qty::contracts(5), strike_sdk::fees::Liquidity::Taker)]);
}

#[test]
fn positions_held_before_the_run_are_taken_from_the_venue() {
    let srv = server(|_| {});
    // an earlier session bought 5 YES at 0.45 and 3 NO (sold YES into the 0.20 bid) on B
    let mut earlier = gateway(&srv, |_| {});
    earlier.submit(new(1, A, BookSide::Bid, 45, 5, TimeInForce::Fok));
    earlier.wait_phase(1, Phase::Executed);
    earlier.submit(new(2, B, BookSide::Ask, 20, 3, TimeInForce::Fok));
    earlier.wait_phase(2, Phase::Executed);

    let mut r = live_stage(&srv);
    r.up();
    let mut pos: Vec<(MarketId, Qty, Money)> = r
        .seen
        .iter()
        .filter_map(|e| match *e {
            ExecEvent::Position { market, qty, cost } => Some((market, qty, cost)),
            _ => None,
        })
        .collect();
    pos.sort_by_key(|p| p.0 .0);
    // A: +5 YES costing $2.25. B: 3 NO bought at $0.80 = 3 YES sold at $0.20: YES cost −$0.60.
    assert_eq!(pos, vec![(A, Qty::contracts(5), Money(2_250_000)), (B, Qty::contracts(-3), Money(-600_000))]);
    assert_eq!(r.lg.stats.events.get("positions_synced"), 2);
}

#[test]
fn a_fill_missed_while_the_stream_was_down_comes_out_of_the_resync() {
    let srv = server(|_| {});
    let mut r = live_stage(&srv);
    r.up();
    r.send(new(1, A, BookSide::Bid, 42, 5, TimeInForce::Gtc));
    r.until("order 1 resting", |r| r.status(1).is_some_and(|s| s.0 == OrderStatus::Resting));

    // the connection drops; meanwhile an outside seller hits our bid for 3
    r.private.push(PrivateEvent::Down).unwrap();
    r.until("waiting", |r| r.lg.sync_state() == SyncState::Waiting);
    assert_eq!(srv.external_trade("KXT-A", BookSide::Bid, Price(4200), Qty::contracts(3)).unwrap(), Qty::contracts(3));
    r.send(new(2, A, BookSide::Bid, 45, 1, TimeInForce::Fok));
    r.until("order 2 refused", |r| r.status(2).is_some());
    assert_eq!(r.status(2).unwrap().1, RejectReason::Halted);
    assert!(r.fills(1).is_empty(), "nothing said the order filled yet");

    // back up: the listing reports the fill, exactly once, before trading resumes
    r.up();
    assert_eq!(r.fills(1), vec![(Price(4200), Qty::contracts(3), strike_sdk::fees::Liquidity::Maker)]);
    let (status, _, remaining) = r.status(1).unwrap();
    assert_eq!((status, remaining), (OrderStatus::Resting, Qty::contracts(2)));
    assert_eq!(srv.stats().requests_to("GET", "/portfolio/orders"), 1);
    // the fill was ours and is in the tally: the position read finds nothing to correct
    assert!(!r.seen.iter().any(|e| matches!(e, ExecEvent::Position { .. })));
    assert_eq!(r.lg.stats.events.get("resyncs"), 2);
}

#[test]
fn a_second_cancel_while_the_first_is_pending_is_not_sent() {
    // the strategy cancels in on_shutdown and the trader then cancels every open order: one
    // request must reach the venue, not a second that can only earn a 404
    let srv = server(|_| {});
    let mut rig = gateway(&srv, |_| {});
    rig.submit(new(1, A, BookSide::Bid, 42, 5, TimeInForce::Gtc));
    rig.wait_phase(1, Phase::Resting);
    rig.submit(OrderRequest::Cancel { strategy: STRATEGY, order_ref: OrderRef(1) });
    rig.submit(OrderRequest::Cancel { strategy: STRATEGY, order_ref: OrderRef(1) });
    rig.wait_phase(1, Phase::Canceled);
    assert_eq!(srv.stats().requests_to("DELETE", "/portfolio/events/orders/{order_id}"), 1);
    assert_eq!(rig.gw.stats().cancels_coalesced, 1);
    assert!(rig.failures(OpKind::Cancel).is_empty(), "{:?}", rig.failures(OpKind::Cancel));
}
