//! The REST exchange of [`LinkedServers`] follows the market data its WebSocket replay sends:
//! orders meet the book as it was when they reached the exchange (entry latency included),
//! resting orders fill as makers from the replay's trade prints by their queue position (both
//! queue models), and the feed delay holds the frames, not the exchange. Real TLS on loopback,
//! requests signed with the test RSA key in `tests/fixtures/keys/`.
//!
//! Served markets (hand-made recording, NO-price scale, `linear_cent`):
//! - `KXL-Q` (`quadratic_with_maker_fees`): YES bids 0.40 × 10, 0.38 × 5; NO bid 0.55 × 10
//!   (YES ask 0.45 × 10). The replay then: +6 at the 0.40 bid (joins behind), −4 there (a
//!   cancel), a sell of 8 at 0.40 and the delta −8 that removes it, a sell of 5 at 0.40 and
//!   the delta −4 that empties the level, a sell of 3 at 0.38 (through a bid at 0.40).
//! - `KXL-D` (`quadratic`): YES bid 0.30 × 5; NO bid 0.55 × 5 (YES ask 0.45 × 5). The replay
//!   then removes the NO 0.55 level (the 0.45 ask) with a delta.
//!
//! The latency tests serve `KXL-D` alone at recorded pace, the delta some time after the
//! snapshot.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PSS_SHA256};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs1KeyDer, ServerName};
use serde_json::{json, Value};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use strike_sdk::fees::{AccountPrecision, FeeSchedule, FeeType, Liquidity, OrderFeeAccumulator};
use strike_sdk::num::{Money, Price, Qty};
use strike_sim::matching::{Constant, LatencyKind, QueueModelKind};
use strike_sim::recording::{Frame, Header, MarketRecord, Recording, FORMAT_VERSION};
use strike_sim::server::ws::WS_PATH;
use strike_sim::server::{ApiKey, LinkedServers, Pacing, RestServerConfig, TestCert, WsServerConfig};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

const KEY_ID: &str = "0b7f4c1e-test-key";
const BASE: &str = "/trade-api/v2";

fn keys() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys")
}

fn rsa() -> &'static RsaKeyPair {
    static K: OnceLock<RsaKeyPair> = OnceLock::new();
    K.get_or_init(|| {
        let der = PrivatePkcs1KeyDer::from_pem_file(keys().join("test_rsa_pkcs1.pem")).unwrap();
        RsaKeyPair::from_der(der.secret_pkcs1_der()).unwrap()
    })
}

fn signed(method: &str, path: &str) -> Vec<(&'static str, String)> {
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis().to_string();
    let k = rsa();
    let mut sig = vec![0u8; k.public().modulus_len()];
    k.sign(&RSA_PSS_SHA256, &SystemRandom::new(), format!("{ts}{method}{path}").as_bytes(), &mut sig).unwrap();
    vec![
        ("KALSHI-ACCESS-KEY", KEY_ID.to_string()),
        ("KALSHI-ACCESS-TIMESTAMP", ts),
        ("KALSHI-ACCESS-SIGNATURE", base64::engine::general_purpose::STANDARD.encode(sig)),
    ]
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn api_key() -> ApiKey {
    ApiKey::from_pem_file(KEY_ID, &keys().join("test_rsa_public.pem")).unwrap()
}

fn market(t: &str, fee: &str) -> MarketRecord {
    MarketRecord {
        ticker: t.into(),
        event_ticker: "KXL".into(),
        series_ticker: "KXL".into(),
        price_level_structure: Some("linear_cent".into()),
        fee_type: Some(fee.into()),
        ..Default::default()
    }
}

fn recording(markets: Vec<MarketRecord>, frames: &[(u64, String)]) -> Arc<Recording> {
    Arc::new(Recording {
        header: Header {
            strike_recording: FORMAT_VERSION,
            source: "hand-made".into(),
            yes_price_scale: false,
            markets,
            events: vec![],
        },
        frames: frames.iter().map(|(ns, t)| Frame { recv_ns: *ns, text: t.clone() }).collect(),
    })
}

fn delta(t: &str, side: &str, price: &str, d: &str) -> String {
    format!(
        r#"{{"type":"orderbook_delta","sid":1,"seq":0,"msg":{{"market_ticker":"{t}","price_dollars":"{price}","delta_fp":"{d}","side":"{side}"}}}}"#
    )
}

/// A `trade` frame: a taker sold YES (`taker_outcome_side: "no"`) `count` at `price`.
fn sell(t: &str, price: &str, count: &str) -> String {
    let no = Price::parse(price).unwrap().complement().to_fixed_str();
    format!(
        r#"{{"type":"trade","sid":2,"msg":{{"trade_id":"t-{price}-{count}","market_ticker":"{t}","yes_price_dollars":"{price}","no_price_dollars":"{no}","count_fp":"{count}","taker_outcome_side":"no","taker_book_side":"ask","taker_side":"no","is_block_trade":false,"ts_ms":1}}}}"#
    )
}

const SNAP_D: &str = r#"{"type":"orderbook_snapshot","sid":1,"seq":0,"msg":{"market_ticker":"KXL-D","yes_dollars_fp":[["0.3000","5.00"]],"no_dollars_fp":[["0.5500","5.00"]]}}"#;

/// The two-market recording of the module docs.
fn queue_recording() -> Arc<Recording> {
    let snap_q = r#"{"type":"orderbook_snapshot","sid":1,"seq":0,"msg":{"market_ticker":"KXL-Q","yes_dollars_fp":[["0.3800","5.00"],["0.4000","10.00"]],"no_dollars_fp":[["0.5500","10.00"]]}}"#;
    let frames: Vec<String> = vec![
        snap_q.into(),
        SNAP_D.into(),
        delta("KXL-D", "no", "0.5500", "-5.00"),
        delta("KXL-Q", "yes", "0.4000", "6.00"),
        delta("KXL-Q", "yes", "0.4000", "-4.00"),
        sell("KXL-Q", "0.4000", "8.00"),
        delta("KXL-Q", "yes", "0.4000", "-8.00"),
        sell("KXL-Q", "0.4000", "5.00"),
        delta("KXL-Q", "yes", "0.4000", "-4.00"),
        sell("KXL-Q", "0.3800", "3.00"),
    ];
    let timed: Vec<(u64, String)> =
        frames.into_iter().enumerate().map(|(i, f)| (1_000_000 * (i as u64 + 1), f)).collect();
    recording(vec![market("KXL-Q", "quadratic_with_maker_fees"), market("KXL-D", "quadratic")], &timed)
}

/// `KXL-D` alone: the snapshot, then the delta removing the 0.45 ask `delta_after` later.
fn latency_recording(delta_after: Duration) -> Arc<Recording> {
    let t0 = 1_000_000u64;
    recording(
        vec![market("KXL-D", "quadratic")],
        &[(t0, SNAP_D.into()), (t0 + delta_after.as_nanos() as u64, delta("KXL-D", "no", "0.5500", "-5.00"))],
    )
}

fn start(
    rec: Arc<Recording>,
    ws: impl FnOnce(&mut WsServerConfig),
    rest: impl FnOnce(&mut RestServerConfig),
) -> LinkedServers {
    let mut wc = WsServerConfig::new(Arc::clone(&rec), api_key());
    wc.ping_interval = None;
    ws(&mut wc);
    let mut rc = RestServerConfig::new(rec, api_key(), Money::dollars(1_000));
    rest(&mut rc);
    LinkedServers::start(wc, rc).unwrap()
}

fn tls_stream(addr: SocketAddr, cert: &TestCert) -> StreamOwned<ClientConnection, TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(cert.cert_der.clone())).unwrap();
    let cfg = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let conn = ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap()).unwrap();
    StreamOwned::new(conn, sock)
}

type Ws = WebSocket<StreamOwned<ClientConnection, TcpStream>>;

fn connect_ws(s: &LinkedServers) -> Ws {
    let mut req = format!("wss://localhost:{}{WS_PATH}", s.ws.addr().port()).into_client_request().unwrap();
    for (k, v) in signed("GET", WS_PATH) {
        req.headers_mut().insert(k, v.parse().unwrap());
    }
    match tungstenite::client::client(req, tls_stream(s.ws.addr(), s.ws.cert())) {
        Ok((ws, _)) => ws,
        Err(e) => panic!("WebSocket handshake: {e}"),
    }
}

fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.read().unwrap_or_else(|e| panic!("read: {e}")) {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            m => panic!("unexpected {m:?}"),
        }
    }
}

/// Subscribes to `channels` on `tickers` with `use_yes_price`; returns the sids in order.
fn subscribe(ws: &mut Ws, channels: &[&str], tickers: &[&str]) -> Vec<u64> {
    let cmd = json!({"id": 1, "cmd": "subscribe", "params": {"channels": channels, "market_tickers": tickers, "use_yes_price": true}});
    ws.send(Message::text(cmd.to_string())).unwrap();
    channels
        .iter()
        .map(|_| {
            let ack = next_json(ws);
            assert_eq!(ack["type"], "subscribed", "{ack}");
            ack["msg"]["sid"].as_u64().unwrap()
        })
        .collect()
}

/// Reads frames until `stop` accepts one; returns them all.
fn read_until(ws: &mut Ws, mut stop: impl FnMut(&Value) -> bool) -> Vec<Value> {
    let mut v = Vec::new();
    loop {
        let f = next_json(ws);
        let done = stop(&f);
        v.push(f);
        if done {
            return v;
        }
    }
}

struct Http {
    tls: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl Http {
    fn connect(s: &LinkedServers) -> Http {
        Http { tls: tls_stream(s.rest.addr(), s.rest.cert()), buf: Vec::new() }
    }

    fn send(&mut self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = format!("{method} {BASE}{path} HTTP/1.1\r\nHost: localhost\r\n");
        for (k, v) in signed(method, &format!("{BASE}{}", path.split('?').next().unwrap())) {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        self.tls.write_all(req.as_bytes()).unwrap();
        self.tls.flush().unwrap();
        self.read_response().unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn read_response(&mut self) -> io::Result<(u16, Value)> {
        let mut chunk = [0u8; 8192];
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut hs);
            if let httparse::Status::Complete(head) =
                r.parse(&self.buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                let len = r
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map(|h| std::str::from_utf8(h.value).unwrap().parse::<usize>().unwrap())
                    .unwrap_or(0);
                let status = r.code.unwrap();
                if self.buf.len() >= head + len {
                    let body = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    let v = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap() };
                    return Ok((status, v));
                }
            }
            let n = self.tls.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Creates an order; asserts 201 and returns the response.
    fn create(&mut self, ticker: &str, cid: &str, side: &str, count: &str, price: &str, tif: &str) -> Value {
        let body = json!({
            "ticker": ticker, "client_order_id": cid, "side": side, "count": count, "price": price,
            "time_in_force": tif, "self_trade_prevention_type": "taker_at_cross", "exchange_index": 0,
        });
        let (status, v) = self.send("POST", "/portfolio/events/orders", Some(&body));
        assert_eq!(status, 201, "{v}");
        v
    }

    fn order(&mut self, id: &Value) -> Value {
        let (status, v) = self.send("GET", &format!("/portfolio/orders/{}", id.as_str().unwrap()), None);
        assert_eq!(status, 200, "{v}");
        v["order"].clone()
    }
}

fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}

fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap()
}

fn money(v: &Value) -> Money {
    Money::parse(v.as_str().unwrap()).unwrap()
}

/// Waits (at most 20 s) until the exchange has applied `n` replayed market-data inputs.
fn wait_applied(s: &LinkedServers, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.rest.stats().market_data_applied < n {
        assert!(Instant::now() < deadline, "the exchange applied {} inputs", s.rest.stats().market_data_applied);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The maker fills one model gives our resting bid of 5 at 0.40 on `KXL-Q`, and its end state,
/// read from the private `fill` channel and the REST order object; also checks `KXL-D`.
fn run_queue_script(model: QueueModelKind) -> (Vec<(Price, Qty, bool)>, Value) {
    let s = start(queue_recording(), |_| {}, |r| r.queue_model = model);
    let mut c = Http::connect(&s);
    // Before the replay starts the exchange shows the opening book (each market's first
    // snapshot): our bid joins the 0.40 level behind the 10 displayed there (ahead = 10), and
    // an IoC buys 1 of the 5 offered at 0.45 on KXL-D.
    let bid = c.create("KXL-Q", "q-1", "bid", "5", "0.40", "good_till_canceled");
    assert_eq!((&bid["fill_count"], &bid["remaining_count"]), (&json!("0.00"), &json!("5.00")));
    let early = c.create("KXL-D", "d-1", "bid", "1", "0.45", "immediate_or_cancel");
    assert_eq!(early["fill_count"], "1.00", "the opening book still offers 0.45: {early}");

    // The replay starts (as fast as possible): every frame is applied to the exchange before
    // it is written, so once the client has read the delta that removed the 0.45 ask the
    // exchange has applied it too.
    let mut ws = connect_ws(&s);
    let sids = subscribe(&mut ws, &["orderbook_delta", "trade", "fill"], &["KXL-Q", "KXL-D"]);
    let frames = read_until(&mut ws, |f| f["type"] == "orderbook_delta" && f["msg"]["market_ticker"] == "KXL-D");
    assert_eq!(frames.iter().filter(|f| f["type"] == "orderbook_snapshot").count(), 2);
    let late = c.create("KXL-D", "d-2", "bid", "1", "0.45", "immediate_or_cancel");
    assert_eq!(late["fill_count"], "0.00", "sent after the delta removed the ask: nothing to take: {late}");
    assert!(s.rest.book("KXL-D").unwrap().asks.is_empty());

    // The rest of the replay: 10 events in all, the 3 trade prints among them.
    wait_applied(&s, 10);
    let fills: Vec<(Price, Qty, bool)> =
        read_until(&mut ws, |f| f["type"] == "trade" && f["msg"]["yes_price_dollars"] == "0.3800")
            .into_iter()
            .chain(std::iter::from_fn(|| {
                // Fill messages published with the last print may follow its trade frame.
                ws.get_ref().sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
                match ws.read() {
                    Ok(Message::Text(t)) => Some(serde_json::from_str::<Value>(t.as_str()).unwrap()),
                    _ => None,
                }
            }))
            .filter(|f| f["type"] == "fill")
            .map(|f| {
                assert_eq!(f["sid"], sids[2]);
                let m = &f["msg"];
                assert_eq!((&m["client_order_id"], &m["book_side"]), (&json!("q-1"), &json!("bid")));
                // Each fee_cost is the SDK's trade fee of the fill (maker, quadratic_with_maker_fees).
                let (fp, fq) = (p(m["yes_price_dollars"].as_str().unwrap()), q(m["count_fp"].as_str().unwrap()));
                let sched = FeeSchedule::of(FeeType::QuadraticWithMakerFees);
                assert_eq!(money(&m["fee_cost"]), sched.trade_fee(Liquidity::Maker, fp, fq), "{m}");
                (fp, fq, m["is_taker"].as_bool().unwrap())
            })
            .collect();
    let o = c.order(&bid["order_id"]);
    // The exchange's own record agrees: every fill went through the SDK's accumulator.
    let mut acc = OrderFeeAccumulator::new();
    let sched = FeeSchedule::of(FeeType::QuadraticWithMakerFees);
    for &(fp, fq, _) in &fills {
        acc.on_fill(&sched, Liquidity::Maker, fp, fq, AccountPrecision::Cent);
    }
    assert_eq!(money(&o["maker_fees_dollars"]), acc.total_charged(), "{o}");
    let booked: Vec<(Price, Qty, bool)> = s
        .rest
        .fills()
        .iter()
        .filter(|f| f.ticker == "KXL-Q")
        .map(|f| (f.price, f.qty, f.liquidity == Liquidity::Taker))
        .collect();
    assert_eq!(booked, fills, "the fill messages are the exchange's fills");
    assert_eq!(s.rest.stats().market_data_refused, 0);
    (fills, o)
}

/// Queue position under the risk-averse model, worked out (hundredths in the matcher, contracts
/// here). Our bid of 5 at 0.40 rests behind the 10 displayed: ahead = 10.
/// - replay snapshot: the same level, 10 → 10: ahead stays 10.
/// - +6: the level grows to 16, the newcomers queue behind us: ahead 10.
/// - −4 (no trade explains it): risk-averse assumes it came from behind us: ahead =
///   min(10, 16 − 4) = 10.
/// - sell 8 at 0.40: the print consumes 8 of the 10 ahead: ahead 2, no fill.
/// - −8: explained by that print (netted), the queue does not move: ahead 2, level 4.
/// - sell 5 at 0.40: 2 ahead go first, then we fill 3 (maker); 2 of ours rest, ahead 0.
/// - −4: explained by the print, the level is empty.
/// - sell 3 at 0.38: through our 0.40 bid (the seller would have met us first): we fill our
///   last 2 without a queue.
#[test]
fn risk_averse_queue_fills_a_resting_bid_from_the_replays_trade_prints() {
    let (fills, o) = run_queue_script(QueueModelKind::RiskAverse);
    assert_eq!(fills, vec![(p("0.40"), q("3"), false), (p("0.40"), q("2"), false)]);
    assert_eq!((o["status"].as_str(), o["fill_count_fp"].as_str()), (Some("executed"), Some("5.00")));
    assert_eq!(money(&o["maker_fill_cost_dollars"]), Money::notional(p("0.40"), q("5")));
}

/// The same script under the probabilistic model `power:2` (f(x) = x²), worked out:
/// - up to the −4: as above, ahead 10, behind 6 (level 16).
/// - −4: the share from ahead is f(10)/(f(10)+f(6)) = 100/136 = 0.735294…; 4 × share =
///   2.941 contracts, rounded down to 2.94 taken from ahead: ahead 7.06.
/// - sell 8 at 0.40: 7.06 ahead go first, then we fill 0.94.
/// - −8: netted against the print; level 4, ahead 0.
/// - sell 5 at 0.40: we are at the front: we fill our remaining 4.06, the order is executed.
/// - −4, sell 3 at 0.38: nothing of ours is left.
#[test]
fn power_queue_model_advances_the_same_order_faster() {
    let (fills, o) = run_queue_script(QueueModelKind::Power(2.0));
    assert_eq!(fills, vec![(p("0.40"), q("0.94"), false), (p("0.40"), q("4.06"), false)]);
    assert_eq!((o["status"].as_str(), o["fill_count_fp"].as_str()), (Some("executed"), Some("5.00")));
}

/// Entry latency: an order sent before a delta but arriving after it meets the new book. The
/// replay runs at recorded pace; the delta removing the 0.45 ask comes 250 ms after the
/// snapshot; an IoC for that ask is sent as soon as the snapshot is read, with a constant entry
/// latency of 1.5 s: it reaches the exchange after the delta, and takes nothing.
#[test]
fn with_entry_latency_an_order_meets_the_book_of_its_arrival() {
    let entry = Duration::from_millis(1_500);
    let s = start(
        latency_recording(Duration::from_millis(250)),
        |w| w.pacing = Pacing::Recorded { speed: 1.0 },
        |r| r.latency = LatencyKind::Constant(Constant { entry_ns: entry.as_nanos() as u64, ..Constant::default() }),
    );
    let mut ws = connect_ws(&s);
    subscribe(&mut ws, &["orderbook_delta"], &["KXL-D"]);
    let snap = next_json(&mut ws);
    assert_eq!(snap["msg"]["no_dollars_fp"], json!([["0.4500", "5.00"]]), "the 0.45 ask is offered: {snap}");
    let mut c = Http::connect(&s);
    let sent = now_ms();
    let r = c.create("KXL-D", "late", "bid", "1", "0.45", "immediate_or_cancel");
    assert_eq!(r["fill_count"], "0.00", "the order arrived after the delta: {r}");
    // The exchange time of the order is its arrival: at least the entry latency after sending.
    assert!(r["ts_ms"].as_i64().unwrap() >= sent + entry.as_millis() as i64, "{r} sent at {sent}");
    let d = next_json(&mut ws);
    assert_eq!((&d["type"], &d["msg"]["delta_fp"]), (&json!("orderbook_delta"), &json!("-5.00")));
}

/// Entry latency, the other way: the delta comes a minute after the snapshot; an IoC sent when
/// the snapshot is read arrives 200 ms later, before the delta, and takes the ask it saw.
#[test]
fn an_order_arriving_before_a_delta_sees_the_old_book() {
    let entry = Duration::from_millis(200);
    let s = start(
        latency_recording(Duration::from_secs(60)),
        |w| w.pacing = Pacing::Recorded { speed: 1.0 },
        |r| r.latency = LatencyKind::Constant(Constant { entry_ns: entry.as_nanos() as u64, ..Constant::default() }),
    );
    let mut ws = connect_ws(&s);
    subscribe(&mut ws, &["orderbook_delta"], &["KXL-D"]);
    next_json(&mut ws);
    let mut c = Http::connect(&s);
    let sent = now_ms();
    let r = c.create("KXL-D", "early", "bid", "2", "0.45", "immediate_or_cancel");
    assert_eq!((&r["fill_count"], &r["average_fill_price"]), (&json!("2.00"), &json!("0.450000")), "{r}");
    assert!(r["ts_ms"].as_i64().unwrap() >= sent + entry.as_millis() as i64, "{r} sent at {sent}");
    assert_eq!(s.rest.book("KXL-D").unwrap().asks, vec![(p("0.45"), q("3"))]);
    assert_eq!(s.rest.stats().market_data_applied, 1, "only the snapshot has been released");
}

/// Feed delay: the exchange applies a frame when the replay releases it and the client reads it
/// the feed delay later. With 800 ms of feed delay and the whole script released at once, an
/// order sent before the client has read anything already meets the book after the delta.
#[test]
fn the_feed_delay_holds_the_frames_not_the_exchange() {
    let feed = Duration::from_millis(800);
    let s = start(
        latency_recording(Duration::from_millis(1)),
        |_| {},
        |r| r.latency = LatencyKind::Constant(Constant { feed_ns: feed.as_nanos() as u64, ..Constant::default() }),
    );
    let mut ws = connect_ws(&s);
    let t = Instant::now();
    subscribe(&mut ws, &["orderbook_delta"], &["KXL-D"]);
    // Both frames are released (applied by the exchange) right after the subscription.
    wait_applied(&s, 2);
    let mut c = Http::connect(&s);
    let r = c.create("KXL-D", "blind", "bid", "1", "0.45", "immediate_or_cancel");
    assert_eq!(r["fill_count"], "0.00", "the exchange is ahead of the client's view: {r}");
    let snap = next_json(&mut ws);
    assert_eq!(snap["type"], "orderbook_snapshot");
    assert!(t.elapsed() >= feed, "the snapshot travelled the feed delay");
    let d = next_json(&mut ws);
    assert_eq!((&d["type"], &d["seq"]), (&json!("orderbook_delta"), &json!(2)));
}

/// A client that reconnects resumes from the exchange's clock: its new session starts from the
/// book as it stands (the delta already applied), not from the recording's start.
#[test]
fn a_second_session_joins_the_shared_replay_clock() {
    let s = start(latency_recording(Duration::from_millis(1)), |_| {}, |_| {});
    let mut first = connect_ws(&s);
    subscribe(&mut first, &["orderbook_delta"], &["KXL-D"]);
    assert_eq!(next_json(&mut first)["type"], "orderbook_snapshot");
    assert_eq!(next_json(&mut first)["type"], "orderbook_delta");
    drop(first);
    let mut second = connect_ws(&s);
    subscribe(&mut second, &["orderbook_delta"], &["KXL-D"]);
    let snap = next_json(&mut second);
    assert_eq!(snap["type"], "orderbook_snapshot");
    assert!(snap["msg"].get("no_dollars_fp").is_none(), "the ask is gone on the shared clock: {snap}");
    assert_eq!(snap["msg"]["yes_dollars_fp"], json!([["0.3000", "5.00"]]));
    // Nothing was applied twice.
    assert_eq!(s.rest.stats().market_data_applied, 2);
}

/// Crossing liquidity: our bid of 2 at 0.35 rests on `KXL-D` (best ask 0.45); the replay then
/// shows a new ask at 0.34 (a NO bid at 0.66) for 5, through our bid. That seller would have
/// met our bid first: we fill 2 as maker at our price 0.35, and the 3 left of it stay
/// displayed in front of the 0.45 ask.
#[test]
fn crossing_liquidity_in_the_replay_fills_a_resting_order_as_maker() {
    let rec = recording(
        vec![market("KXL-D", "quadratic")],
        &[(1_000_000, SNAP_D.into()), (2_000_000, delta("KXL-D", "no", "0.6600", "5.00"))],
    );
    let s = start(rec, |_| {}, |_| {});
    let mut c = Http::connect(&s);
    let bid = c.create("KXL-D", "x-1", "bid", "2", "0.35", "good_till_canceled");
    assert_eq!(bid["remaining_count"], "2.00");
    let mut ws = connect_ws(&s);
    let sids = subscribe(&mut ws, &["orderbook_delta", "fill"], &["KXL-D"]);
    let frames = read_until(&mut ws, |f| f["type"] == "fill");
    let fill = &frames.last().unwrap()["msg"];
    assert_eq!(frames.last().unwrap()["sid"], sids[1]);
    assert_eq!(
        (&fill["yes_price_dollars"], &fill["count_fp"], &fill["is_taker"], &fill["fee_cost"]),
        (&json!("0.3500"), &json!("2.00"), &json!(false), &json!("0.000000")),
        "a maker fill, no maker fee under `quadratic`: {fill}"
    );
    assert_eq!(c.order(&bid["order_id"])["status"], "executed");
    assert_eq!(s.rest.book("KXL-D").unwrap().asks, vec![(p("0.34"), q("3")), (p("0.45"), q("5"))]);
    assert_eq!(s.rest.stats().maker_fills, 1);
}
