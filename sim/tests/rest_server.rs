//! The loopback Kalshi REST V2 server (`strike_sim::server::rest`) against a small blocking
//! HTTP/1.1 client written here: rustls trusting only the server's generated certificate,
//! hand-written requests with `Content-Length` bodies, keep-alive (many requests per TLS
//! connection), each request signed with the test RSA key in `tests/fixtures/keys/` (ring,
//! RSA-PSS-SHA256 over `timestamp + METHOD + /trade-api/v2/path`).
//!
//! Served markets (hand-made recording, NO-price scale):
//! - `KXT-A` (`linear_cent`, shard 0): YES bids 0.40 × 10, 0.38 × 20; NO bids 0.55 × 5 and
//!   0.53 × 10, i.e. YES asks 0.45 × 5, 0.47 × 10.
//! - `KXT-B` (`deci_cent`, shard 2): YES bid 0.200 × 3; YES ask 0.250 × 4.
//! - `KXT-C` (shard 0): no snapshot, empty book.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PSS_SHA256};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs1KeyDer, ServerName};
use serde_json::{json, Value};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use strike_sdk::book::BookSide;
use strike_sdk::fees::{AccountPrecision, FeeSchedule, Liquidity, OrderFeeAccumulator};
use strike_sdk::num::{Money, Price, Qty};
use strike_sim::recording::{Frame, Header, MarketRecord, Recording, FORMAT_VERSION};
use strike_sim::server::rest::TOO_MANY_REQUESTS_BODY;
use strike_sim::server::{ApiKey, ErrorShape, FokKill, RestFaults, RestServer, RestServerConfig, ScriptedReject};

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

fn sign(msg: &str) -> String {
    let k = rsa();
    let mut sig = vec![0u8; k.public().modulus_len()];
    k.sign(&RSA_PSS_SHA256, &SystemRandom::new(), msg.as_bytes(), &mut sig).unwrap();
    base64::engine::general_purpose::STANDARD.encode(sig)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn recording() -> Arc<Recording> {
    let frames = [
        r#"{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"KXT-A","yes_dollars_fp":[["0.3800","20.00"],["0.4000","10.00"]],"no_dollars_fp":[["0.5300","10.00"],["0.5500","5.00"]]}}"#,
        r#"{"type":"orderbook_snapshot","sid":1,"seq":2,"msg":{"market_ticker":"KXT-B","yes_dollars_fp":[["0.2000","3.00"]],"no_dollars_fp":[["0.7500","4.00"]]}}"#,
        r#"{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"KXT-A","price_dollars":"0.5500","delta_fp":"-5.00","side":"no"}}"#,
        r#"{"type":"orderbook_snapshot","sid":1,"seq":4,"msg":{"market_ticker":"KXT-A","yes_dollars_fp":[["0.1000","1.00"]]}}"#,
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
            markets: vec![
                market("KXT-A", 0, "linear_cent"),
                market("KXT-B", 2, "deci_cent"),
                market("KXT-C", 0, "linear_cent"),
            ],
            events: vec![],
        },
        frames: frames
            .iter()
            .enumerate()
            .map(|(i, t)| Frame { recv_ns: 1_000_000 * (i as u64 + 1), text: t.to_string() })
            .collect(),
    })
}

fn api_key() -> ApiKey {
    ApiKey::from_pem_file(KEY_ID, &keys().join("test_rsa_public.pem")).unwrap()
}

const START_BALANCE: Money = Money::dollars(1_000);

fn start_with(tweak: impl FnOnce(&mut RestServerConfig)) -> RestServer {
    let mut cfg = RestServerConfig::new(recording(), api_key(), START_BALANCE);
    tweak(&mut cfg);
    RestServer::start(cfg).unwrap()
}

fn start() -> RestServer {
    start_with(|_| {})
}

/// One parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A blocking HTTP/1.1 client over one TLS connection.
struct Http {
    tls: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl Http {
    fn connect(server: &RestServer) -> Http {
        let sock = TcpStream::connect(server.addr()).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(server.cert().cert_der.clone())).unwrap();
        let cfg = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let conn = ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap()).unwrap();
        Http { tls: StreamOwned::new(conn, sock), buf: Vec::new() }
    }

    /// Sends `method BASE+path` with the given signing headers and extra headers; reads the
    /// answer.
    fn raw(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        auth: &[(&str, String)],
        extra: &[(&str, &str)],
    ) -> io::Result<Resp> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = format!("{method} {BASE}{path} HTTP/1.1\r\nHost: localhost\r\n");
        for (k, v) in auth {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        self.tls.write_all(req.as_bytes())?;
        self.tls.flush()?;
        self.read_response()
    }

    fn read_response(&mut self) -> io::Result<Resp> {
        let mut chunk = [0u8; 8192];
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut hs);
            if let httparse::Status::Complete(head) =
                r.parse(&self.buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                let len = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse::<usize>().unwrap())
                    .unwrap_or(0);
                let status = r.code.unwrap();
                if self.buf.len() >= head + len {
                    let body = String::from_utf8(self.buf[head..head + len].to_vec()).unwrap();
                    self.buf.drain(..head + len);
                    return Ok(Resp { status, headers, body });
                }
            }
            let n = self.tls.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn try_send(&mut self, method: &str, path: &str, body: Option<&Value>) -> io::Result<Resp> {
        let ts = now_ms().to_string();
        let signed_path = format!("{BASE}{}", path.split('?').next().unwrap());
        let auth = signed(&ts, method, &signed_path);
        self.raw(method, path, body, &auth, &[])
    }

    fn send(&mut self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        self.try_send(method, path, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, None)
    }

    fn post(&mut self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, Some(body))
    }

    fn delete(&mut self, path: &str, body: Option<&Value>) -> Resp {
        self.send("DELETE", path, body)
    }

    fn create(&mut self, order: &Value) -> Resp {
        self.post("/portfolio/events/orders", order)
    }
}

fn signed(ts: &str, method: &str, path: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KALSHI-ACCESS-KEY", KEY_ID.to_string()),
        ("KALSHI-ACCESS-TIMESTAMP", ts.to_string()),
        ("KALSHI-ACCESS-SIGNATURE", sign(&format!("{ts}{method}{path}"))),
    ]
}

fn shard(ticker: &str) -> u8 {
    if ticker == "KXT-B" {
        2
    } else {
        0
    }
}

fn next_cid() -> String {
    static N: AtomicU64 = AtomicU64::new(1);
    format!("cid-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A V2 create body with every field the engine sends.
fn order(ticker: &str, side: &str, count: &str, price: &str, tif: &str) -> Value {
    json!({
        "ticker": ticker, "client_order_id": next_cid(), "side": side, "count": count, "price": price,
        "time_in_force": tif, "self_trade_prevention_type": "taker_at_cross", "post_only": false,
        "exchange_index": shard(ticker),
    })
}

fn with(mut v: Value, k: &str, x: Value) -> Value {
    v[k] = x;
    v
}

fn money(v: &Value) -> Money {
    Money::parse(v.as_str().unwrap_or_else(|| panic!("not a dollar string: {v}"))).unwrap()
}

fn qty(v: &Value) -> Qty {
    Qty::parse(v.as_str().unwrap_or_else(|| panic!("not a count string: {v}"))).unwrap()
}

fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}

fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap()
}

/// The error `{code, message, details}` of a flat or nested error body.
fn error_of(r: &Resp) -> Value {
    let v = r.json();
    if v.get("error").is_some_and(Value::is_object) {
        v["error"].clone()
    } else {
        v
    }
}

fn assert_error(r: &Resp, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    let e = error_of(r);
    assert_eq!(e["code"], code, "{}", r.body);
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.body);
    e
}

/// Taker fees charged for `fills` of one order (the SDK's accumulator at cent precision).
fn taker_fees(fills: &[(&str, &str)]) -> Money {
    let mut acc = OrderFeeAccumulator::new();
    let sched = FeeSchedule::default();
    for (price, n) in fills {
        acc.on_fill(&sched, Liquidity::Taker, p(price), q(n), AccountPrecision::Cent);
    }
    acc.total_charged()
}

fn get_order(c: &mut Http, id: &str) -> Value {
    let r = c.get(&format!("/portfolio/orders/{id}"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["order"].clone()
}

#[test]
fn fok_fills_completely_or_is_killed() {
    let server = start();
    let mut c = Http::connect(&server);
    // Two ask levels: 5 at 0.45, then 7 of the 10 at 0.47.
    let body = order("KXT-A", "bid", "12", "0.47", "fill_or_kill");
    let r = c.create(&body);
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!(v["client_order_id"], body["client_order_id"]);
    assert_eq!((v["fill_count"].as_str(), v["remaining_count"].as_str()), (Some("12.00"), Some("0.00")));
    assert_eq!(v["average_fill_price"], "0.461666", "(5 × 0.45 + 7 × 0.47) / 12, floor to 6 dp");
    let fees = taker_fees(&[("0.45", "5"), ("0.47", "7")]);
    assert_eq!(fees, Money::cents(21));
    assert_eq!(money(&v["average_fee_paid"]), Money(fees.0 * 100 / 1200));
    assert!(v["ts_ms"].as_i64().unwrap() > 1_700_000_000_000);
    let id = v["order_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "UUID-like: {id}");
    let book = server.book("KXT-A").unwrap();
    assert_eq!(book.asks, vec![(p("0.47"), q("3"))], "taken liquidity leaves the book");
    let o = get_order(&mut c, &id);
    assert_eq!(o["status"], "executed");
    assert_eq!((o["book_side"].as_str(), o["outcome_side"].as_str()), (Some("bid"), Some("yes")));
    assert_eq!(money(&o["taker_fill_cost_dollars"]), Money(5_540_000), "5 × 0.45 + 7 × 0.47");
    assert_eq!(money(&o["taker_fees_dollars"]), fees);
    assert_eq!(server.position("KXT-A"), Some(q("12")));
    assert_eq!(server.balance(), START_BALANCE - Money(5_540_000) - fees);

    // 10 more cannot fill (3 left): killed, nothing taken.
    let r = c.create(&order("KXT-A", "bid", "10", "0.47", "fill_or_kill"));
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!((v["fill_count"].as_str(), v["remaining_count"].as_str()), (Some("0.00"), Some("0.00")));
    assert!(v.get("average_fill_price").is_none(), "averages only with fills: {v}");
    assert_eq!(get_order(&mut c, v["order_id"].as_str().unwrap())["status"], "canceled");
    assert_eq!(server.book("KXT-A").unwrap().asks, vec![(p("0.47"), q("3"))]);

    // The other documented answer: a FOK_INSUFFICIENT_VOLUME reject, no order.
    let strict = start_with(|c| c.fok_kill = FokKill::Reject);
    let mut c2 = Http::connect(&strict);
    let r = c2.create(&order("KXT-A", "bid", "20", "0.47", "fill_or_kill"));
    let e = assert_error(&r, 400, "FOK_INSUFFICIENT_VOLUME");
    assert_eq!(e["details"], "15.00 of 20.00 fillable");
    assert!(strict.orders().is_empty());
    assert_eq!(strict.book("KXT-A").unwrap().asks.len(), 2);
}

#[test]
fn ioc_keeps_the_partial_fill_and_cancels_the_rest() {
    let server = start();
    let mut c = Http::connect(&server);
    // Sell 15 at 0.39: only the 0.40 bid (10) is at or above the limit.
    let r = c.create(&order("KXT-A", "ask", "15", "0.39", "immediate_or_cancel"));
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!((v["fill_count"].as_str(), v["remaining_count"].as_str()), (Some("10.00"), Some("0.00")));
    assert_eq!(v["average_fill_price"], "0.400000");
    let o = get_order(&mut c, v["order_id"].as_str().unwrap());
    assert_eq!(o["status"], "canceled");
    assert_eq!((o["initial_count_fp"].as_str(), qty(&o["fill_count_fp"])), (Some("15.00"), q("10")));
    assert_eq!(o["remaining_count_fp"], "0.00");
    assert_eq!((o["book_side"].as_str(), o["outcome_side"].as_str()), (Some("ask"), Some("no")));
    // An ask costs 1 − p per contract (buying NO): 10 × 0.60.
    assert_eq!(money(&o["taker_fill_cost_dollars"]), Money::dollars(6));
    assert_eq!(server.position("KXT-A"), Some(q("-10")));
    assert_eq!(server.book("KXT-A").unwrap().bids, vec![(p("0.38"), q("20"))]);
    let fee = taker_fees(&[("0.40", "10")]);
    assert_eq!(server.balance(), START_BALANCE - Money::dollars(6) - fee);
}

#[test]
fn gtc_rests_post_only_cross_is_refused_and_resting_orders_fill_as_makers() {
    let server = start();
    let mut c = Http::connect(&server);
    // Crosses 5 at 0.45, rests 3 at 0.45.
    let r = c.create(&order("KXT-A", "bid", "8", "0.45", "good_till_canceled"));
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!((v["fill_count"].as_str(), v["remaining_count"].as_str()), (Some("5.00"), Some("3.00")));
    let partial = v["order_id"].as_str().unwrap().to_string();
    assert_eq!(get_order(&mut c, &partial)["status"], "resting");
    let book = server.book("KXT-A").unwrap();
    assert_eq!(book.bids[0], (p("0.45"), q("3")));
    assert_eq!(book.asks, vec![(p("0.47"), q("10"))]);

    // A pure rest.
    let r = c.create(&order("KXT-A", "bid", "2", "0.42", "good_till_canceled"));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["remaining_count"], "2.00");
    let rest = r.json()["order_id"].as_str().unwrap().to_string();

    // Post-only: crossing the 0.47 ask is refused; crossing the account's own 0.45 bid too.
    let cross = with(order("KXT-A", "bid", "1", "0.47", "good_till_canceled"), "post_only", json!(true));
    let e = assert_error(&c.create(&cross), 400, "POST_ONLY_CROSS");
    assert_eq!(e["details"], "best ask 0.4700");
    let self_cross = with(order("KXT-A", "ask", "1", "0.45", "good_till_canceled"), "post_only", json!(true));
    assert_eq!(assert_error(&c.create(&self_cross), 400, "POST_ONLY_CROSS")["details"], "best bid 0.4500");
    let fine = with(order("KXT-A", "ask", "1", "0.46", "good_till_canceled"), "post_only", json!(true));
    let r = c.create(&fine);
    assert_eq!(r.status, 201, "{}", r.body);
    // Amending a post-only order through the book is refused the same way; it keeps resting.
    let fine_id = r.json()["order_id"].as_str().unwrap().to_string();
    let reprice = json!({"ticker": "KXT-A", "side": "ask", "count": "1", "price": "0.45", "exchange_index": 0});
    let r = c.post(&format!("/portfolio/events/orders/{fine_id}/amend"), &reprice);
    assert_error(&r, 400, "POST_ONLY_CROSS");
    assert_eq!(get_order(&mut c, &fine_id)["yes_price_dollars"], "0.4600");

    // An outside seller hits the bids down to 0.42: the 0.45 (3) and 0.42 (2) orders fill as
    // makers (no maker fee under `quadratic`), the outside 0.40 bid is untouched.
    assert_eq!(server.external_trade("KXT-A", BookSide::Bid, p("0.42"), q("100")).unwrap(), q("5"));
    let o = get_order(&mut c, &partial);
    assert_eq!((o["status"].as_str(), o["fill_count_fp"].as_str()), (Some("executed"), Some("8.00")));
    assert_eq!(money(&o["maker_fill_cost_dollars"]), Money(1_350_000));
    assert_eq!(money(&o["maker_fees_dollars"]), Money::ZERO);
    assert_eq!(get_order(&mut c, &rest)["status"], "executed");
    assert_eq!(server.book("KXT-A").unwrap().bids, vec![(p("0.40"), q("10")), (p("0.38"), q("20"))]);
    assert_eq!(server.position("KXT-A"), Some(q("10")));
}

#[test]
fn self_trade_prevention_stops_the_taker_or_cancels_the_maker() {
    let server = start();
    let mut c = Http::connect(&server);
    // Own ask 2 at 0.45 queues behind the outside 5.
    let r = c.create(&order("KXT-A", "ask", "2", "0.45", "good_till_canceled"));
    let own = r.json()["order_id"].as_str().unwrap().to_string();
    assert_eq!(server.book("KXT-A").unwrap().asks[0], (p("0.45"), q("7")));
    // taker_at_cross: takes the outside 5, stops at the own order; the rest is cancelled.
    let r = c.create(&order("KXT-A", "bid", "10", "0.47", "good_till_canceled"));
    let v = r.json();
    assert_eq!((v["fill_count"].as_str(), v["remaining_count"].as_str()), (Some("5.00"), Some("0.00")));
    assert_eq!(get_order(&mut c, v["order_id"].as_str().unwrap())["status"], "canceled");
    assert_eq!(get_order(&mut c, &own)["status"], "resting");
    // maker: the own ask is cancelled and the taker continues to 0.47.
    let r = c.create(&with(
        order("KXT-A", "bid", "4", "0.47", "immediate_or_cancel"),
        "self_trade_prevention_type",
        json!("maker"),
    ));
    let v = r.json();
    assert_eq!(v["fill_count"], "4.00", "{v}");
    assert_eq!(v["average_fill_price"], "0.470000");
    assert_eq!(get_order(&mut c, &own)["status"], "canceled");
    assert_eq!(server.book("KXT-A").unwrap().asks, vec![(p("0.47"), q("6"))]);
}

#[test]
fn validation_errors_and_duplicates() {
    let server = start();
    let mut c = Http::connect(&server);
    assert_error(&c.create(&order("NOPE", "bid", "1", "0.40", "good_till_canceled")), 404, "market_not_found");
    let bad = [
        order("KXT-A", "bid", "1", "0.405", "good_till_canceled"),
        order("KXT-A", "bid", "1", "1.0000", "good_till_canceled"),
        order("KXT-A", "bid", "1", "0", "good_till_canceled"),
        order("KXT-A", "bid", "1.234", "0.40", "good_till_canceled"),
        order("KXT-A", "bid", "0", "0.40", "good_till_canceled"),
        order("KXT-A", "bid", "-1", "0.40", "good_till_canceled"),
        with(order("KXT-A", "bid", "1", "0.40", "good_till_canceled"), "count", json!(5)),
        order("KXT-A", "buy", "1", "0.40", "good_till_canceled"),
        order("KXT-A", "bid", "1", "0.40", "gtc"),
        with(order("KXT-A", "bid", "1", "0.40", "good_till_canceled"), "self_trade_prevention_type", json!("none")),
        with(order("KXT-A", "bid", "1", "0.40", "good_till_canceled"), "exchange_index", json!(2)),
        with(order("KXT-A", "bid", "1", "0.40", "immediate_or_cancel"), "expiration_time", json!(now_ms() / 1000 + 60)),
        with(order("KXT-A", "bid", "1", "0.40", "good_till_canceled"), "expiration_time", json!(1)),
    ];
    for b in &bad {
        let r = c.create(b);
        assert_error(&r, 400, "invalid_order");
    }
    let r = c.post("/portfolio/events/orders", &json!("not an object"));
    assert_error(&r, 400, "invalid_order");
    // Off-grid on linear_cent is fine on deci_cent.
    let r = c.create(&order("KXT-B", "bid", "1", "0.205", "good_till_canceled"));
    assert_eq!(r.status, 201, "{}", r.body);
    // Missing exchange_index: accepted (auto-route) and counted.
    let mut auto = order("KXT-A", "bid", "1", "0.30", "good_till_canceled");
    auto.as_object_mut().unwrap().remove("exchange_index");
    assert_eq!(c.create(&auto).status, 201);
    // A duplicate open client_order_id: 409.
    let dup = with(
        order("KXT-A", "bid", "1", "0.31", "good_till_canceled"),
        "client_order_id",
        auto["client_order_id"].clone(),
    );
    assert_error(&c.create(&dup), 409, "order_already_exists");
    // Not enough money.
    let rich = order("KXT-A", "bid", "100000", "0.30", "good_till_canceled");
    assert_error(&c.create(&rich), 400, "insufficient_balance");
    let s = server.stats();
    assert_eq!(s.missing_exchange_index, 1);
    assert_eq!(s.missing_exchange_index_by["POST /portfolio/events/orders"], 1);
    assert_eq!(s.duplicates_refused, 1);
    assert_eq!(s.creates, 2);
    assert_eq!(s.rejections, 1 + bad.len() as u64 + 1 + 1 + 1);
    assert_eq!(s.rejections_by_code["market_not_found"], 1);
    assert_eq!(s.rejections_by_code["order_already_exists"], 1);
    assert_eq!(s.requests_to("POST", "/portfolio/events/orders"), 1 + bad.len() as u64 + 5);
}

#[test]
fn batch_create_answers_per_item() {
    let server = start();
    let mut c = Http::connect(&server);
    let items = json!({"orders": [
        order("KXT-A", "bid", "1", "0.45", "immediate_or_cancel"),
        order("NOPE", "bid", "1", "0.45", "immediate_or_cancel"),
        order("KXT-A", "bid", "1", "0.455", "good_till_canceled"),
        order("KXT-B", "ask", "2", "0.300", "good_till_canceled"),
    ]});
    let r = c.post("/portfolio/events/orders/batched", &items);
    assert_eq!(r.status, 201, "{}", r.body);
    let out = r.json()["orders"].as_array().unwrap().clone();
    assert_eq!(out.len(), 4);
    assert_eq!(out[0]["error"], Value::Null);
    assert_eq!(
        (out[0]["fill_count"].as_str(), out[0]["average_fill_price"].as_str()),
        (Some("1.00"), Some("0.450000"))
    );
    assert_eq!(out[1]["error"]["code"], "market_not_found");
    assert_eq!(out[1]["order_id"], Value::Null);
    assert_eq!(out[1]["client_order_id"], items["orders"][1]["client_order_id"]);
    assert_eq!(out[2]["error"]["code"], "invalid_order");
    assert_eq!(out[3]["error"], Value::Null);
    assert_eq!((out[3]["remaining_count"].as_str(), out[3]["average_fill_price"].clone()), (Some("2.00"), Value::Null));
    assert_eq!(server.stats().creates, 2);
    assert_error(&c.post("/portfolio/events/orders/batched", &json!({"orders": []})), 400, "invalid_order");
    let too_many = json!({"orders": vec![order("KXT-A", "bid", "1", "0.30", "good_till_canceled"); 21]});
    assert_error(&c.post("/portfolio/events/orders/batched", &too_many), 400, "invalid_order");
}

/// Creates a resting GTC bid and returns `(order_id, client_order_id)`.
fn rest_bid(c: &mut Http, ticker: &str, count: &str, price: &str) -> (String, String) {
    let r = c.create(&order(ticker, "bid", count, price, "good_till_canceled"));
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!(v["remaining_count"], format!("{}", q(count)), "{v}");
    (v["order_id"].as_str().unwrap().to_string(), v["client_order_id"].as_str().unwrap().to_string())
}

#[test]
fn cancel_batch_cancel_and_cancel_all() {
    let server = start();
    let mut c = Http::connect(&server);
    let (a, a_cid) = rest_bid(&mut c, "KXT-A", "3", "0.41");
    let (b, _) = rest_bid(&mut c, "KXT-A", "4", "0.41");
    let (d, _) = rest_bid(&mut c, "KXT-B", "5", "0.150");
    let (e, _) = rest_bid(&mut c, "KXT-C", "6", "0.10");
    assert_eq!(server.book("KXT-A").unwrap().bids[0], (p("0.41"), q("7")));

    let r = c.delete(&format!("/portfolio/events/orders/{a}?exchange_index=0&market_ticker=KXT-A"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!((v["order_id"].as_str(), v["client_order_id"].as_str()), (Some(a.as_str()), Some(a_cid.as_str())));
    assert_eq!(v["reduced_by"], "3.00");
    assert!(v["ts_ms"].is_i64());
    assert_eq!(server.book("KXT-A").unwrap().bids[0], (p("0.41"), q("4")));
    // Twice, or unknown: 404.
    assert_error(&c.delete(&format!("/portfolio/events/orders/{a}?exchange_index=0"), None), 404, "not_found");
    assert_error(&c.delete("/portfolio/events/orders/nope?exchange_index=0", None), 404, "not_found");
    assert_error(
        &c.delete(&format!("/portfolio/events/orders/{b}?exchange_index=0&market_ticker=KXT-B"), None),
        400,
        "order_ticker_mismatch",
    );

    let batch = json!({"orders": [
        {"order_id": b, "exchange_index": 0, "market_ticker": "KXT-A"},
        {"order_id": "nope", "exchange_index": 0},
        {"order_id": d, "exchange_index": 2},
    ]});
    let r = c.delete("/portfolio/events/orders/batched", Some(&batch));
    assert_eq!(r.status, 200, "{}", r.body);
    let out = r.json()["orders"].as_array().unwrap().clone();
    assert_eq!((out[0]["reduced_by"].as_str(), out[0]["error"].clone()), (Some("4.00"), Value::Null));
    assert_eq!(out[1]["error"]["code"], "not_found");
    assert_eq!(out[2]["reduced_by"], "5.00");
    assert_eq!(server.book("KXT-A").unwrap().bids[0], (p("0.40"), q("10")), "the outside book is back");

    let (f, _) = rest_bid(&mut c, "KXT-A", "1", "0.39");
    let r = c.delete("/portfolio/events/orders", None);
    assert_eq!((r.status, r.body.as_str(), r.header("content-length")), (204, "", None));
    for id in [&e, &f] {
        assert_eq!(get_order(&mut c, id)["status"], "canceled");
    }
    let r = c.get("/portfolio/orders?status=resting");
    assert_eq!(r.json()["orders"].as_array().unwrap().len(), 0);
    assert!(server.book("KXT-C").unwrap().bids.is_empty());
    assert_eq!(server.stats().cancels, 5);
}

#[test]
fn amend_keeps_or_loses_priority_and_can_fill() {
    let server = start();
    let mut c = Http::connect(&server);
    let (id, cid) = rest_bid(&mut c, "KXT-A", "5", "0.40");
    assert_eq!(server.book("KXT-A").unwrap().bids[0], (p("0.40"), q("15")));
    let amend = |count: &str, price: &str| {
        json!({
            "ticker": "KXT-A", "side": "bid", "count": count, "price": price, "client_order_id": cid,
            "exchange_index": 0,
        })
    };
    let path = format!("/portfolio/events/orders/{id}/amend");
    // Smaller, same price: keeps its place.
    let r = c.post(&path, &amend("3", "0.40"));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!((v["remaining_count"].as_str(), v["fill_count"].as_str()), (Some("3.00"), Some("0.00")));
    assert_eq!(v["average_fill_price"], Value::Null);
    assert_eq!(server.book("KXT-A").unwrap().bids[0], (p("0.40"), q("13")));
    // Repriced through the 0.45 ask: fills 5, rests 3 (count is the new total).
    let r = c.post(&path, &amend("8", "0.45"));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!((v["fill_count"].as_str(), v["remaining_count"].as_str()), (Some("5.00"), Some("3.00")));
    assert_eq!(v["average_fill_price"], "0.450000");
    assert_eq!(v["order_id"], id.as_str());
    let o = get_order(&mut c, &id);
    assert_eq!((o["status"].as_str(), o["yes_price_dollars"].as_str()), (Some("resting"), Some("0.4500")));
    assert_eq!((o["initial_count_fp"].as_str(), o["fill_count_fp"].as_str()), (Some("8.00"), Some("5.00")));
    let book = server.book("KXT-A").unwrap();
    assert_eq!(book.bids[0], (p("0.45"), q("3")));
    assert_eq!(book.bids[1], (p("0.40"), q("10")));
    // Mismatches and bad totals.
    assert_error(&c.post(&path, &with(amend("9", "0.45"), "side", json!("ask"))), 400, "order_side_mismatch");
    assert_error(&c.post(&path, &with(amend("9", "0.45"), "ticker", json!("KXT-C"))), 400, "order_ticker_mismatch");
    assert_error(
        &c.post(&path, &with(amend("9", "0.45"), "client_order_id", json!("x"))),
        400,
        "order_id_and_client_order_id_mismatch",
    );
    assert_error(&c.post(&path, &amend("5", "0.45")), 400, "invalid_order");
    assert_error(&c.post(&path, &amend("9", "0.451")), 400, "invalid_order");
    assert_error(&c.post("/portfolio/events/orders/nope/amend", &amend("9", "0.45")), 404, "not_found");
    // A new client order id.
    let r = c.post(&path, &with(amend("9", "0.45"), "updated_client_order_id", json!("renamed")));
    assert_eq!(r.json()["client_order_id"], "renamed");
    assert_eq!(r.json()["remaining_count"], "4.00");
    assert_eq!(server.stats().amends, 3);
}

#[test]
fn decrease_by_or_to() {
    let server = start();
    let mut c = Http::connect(&server);
    let (id, cid) = rest_bid(&mut c, "KXT-A", "10", "0.39");
    let path = format!("/portfolio/events/orders/{id}/decrease");
    let r = c.post(&path, &json!({"reduce_by": "3", "exchange_index": 0}));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!((v["remaining_count"].as_str(), v["client_order_id"].as_str()), (Some("7.00"), Some(cid.as_str())));
    assert!(v["ts_ms"].is_i64());
    let r = c.post(&path, &json!({"reduce_to": "2.5", "exchange_index": 0}));
    assert_eq!(r.json()["remaining_count"], "2.50");
    assert_eq!(server.book("KXT-A").unwrap().bids[1], (p("0.39"), q("2.5")));
    assert_error(
        &c.post(&path, &json!({"reduce_to": "1", "reduce_by": "1", "exchange_index": 0})),
        400,
        "invalid_order",
    );
    assert_error(&c.post(&path, &json!({"exchange_index": 0})), 400, "invalid_order");
    assert_error(&c.post(&path, &json!({"reduce_to": "5", "exchange_index": 0})), 400, "invalid_order");
    let r = c.post(&path, &json!({"reduce_by": "5", "exchange_index": 0}));
    assert_eq!(r.json()["remaining_count"], "0.00");
    assert_eq!(get_order(&mut c, &id)["status"], "canceled");
    assert_error(&c.post(&path, &json!({"reduce_by": "1", "exchange_index": 0})), 404, "not_found");
    assert_eq!(server.stats().decreases, 3);
}

#[test]
fn reads_agree_with_what_happened() {
    let server = start();
    let mut c = Http::connect(&server);
    // Buy 5 YES at 0.45, then sell 3 into the 0.40 bid (closing 3 of the 5).
    let buy = c.create(&order("KXT-A", "bid", "5", "0.45", "immediate_or_cancel")).json();
    let sell = c.create(&order("KXT-A", "ask", "3", "0.40", "immediate_or_cancel")).json();
    let (resting, _) = rest_bid(&mut c, "KXT-B", "2", "0.150");
    let f1 = taker_fees(&[("0.45", "5")]);
    let f2 = taker_fees(&[("0.40", "3")]);

    let bal = c.get("/portfolio/balance");
    assert_eq!(bal.status, 200);
    let b = bal.json();
    let want = START_BALANCE - Money::notional(p("0.45"), q("5")) + Money::notional(p("0.40"), q("3")) - f1 - f2;
    assert_eq!(server.balance(), want);
    assert_eq!(b["balance"].as_i64().unwrap(), want.0.div_euclid(10_000), "cents");
    assert_eq!(money(&b["balance_dollars"]), want);
    // Open position: 2 YES at 0.45 average cost.
    assert_eq!(b["portfolio_value"], 90);
    assert!(b["updated_ts"].as_i64().unwrap() > 1_700_000_000);

    let pos = c.get("/portfolio/positions").json();
    let mp = pos["market_positions"].as_array().unwrap();
    let a = mp.iter().find(|m| m["ticker"] == "KXT-A").unwrap();
    assert_eq!(a["position_fp"], "2.00");
    assert_eq!(money(&a["market_exposure_dollars"]), Money(900_000));
    assert_eq!(money(&a["realized_pnl_dollars"]), Money(-150_000), "3 × (0.40 − 0.45)");
    assert_eq!(money(&a["fees_paid_dollars"]), f1 + f2);
    assert_eq!(
        money(&a["total_traded_dollars"]),
        Money::notional(p("0.45"), q("5")) + Money::notional(p("0.60"), q("3"))
    );
    assert_eq!(a["volume_fp"], "8.00");
    assert_eq!(a["resting_orders_count"], 0);
    assert!(a["last_updated_ts"].as_str().unwrap().ends_with('Z'));
    let bpos = mp.iter().find(|m| m["ticker"] == "KXT-B").unwrap();
    assert_eq!((bpos["position_fp"].as_str(), bpos["resting_orders_count"].as_i64()), (Some("0.00"), Some(1)));
    assert_eq!(pos["event_positions"][0]["event_ticker"], "KXT");
    assert_eq!(pos["cursor"], "");
    let only = c.get("/portfolio/positions?count_filter=position").json();
    assert_eq!(only["market_positions"].as_array().unwrap().len(), 1);

    // Orders: newest first, paged.
    let all = c.get("/portfolio/orders").json();
    let ids: Vec<&str> = all["orders"].as_array().unwrap().iter().map(|o| o["order_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [resting.as_str(), sell["order_id"].as_str().unwrap(), buy["order_id"].as_str().unwrap()]);
    assert_eq!(all["cursor"], "");
    let page1 = c.get("/portfolio/orders?limit=2").json();
    assert_eq!(page1["orders"].as_array().unwrap().len(), 2);
    let cursor = page1["cursor"].as_str().unwrap().to_string();
    assert!(!cursor.is_empty());
    let page2 = c.get(&format!("/portfolio/orders?limit=2&cursor={cursor}")).json();
    assert_eq!(page2["orders"][0]["order_id"], buy["order_id"]);
    assert_eq!(page2["cursor"], "");
    let filtered = c.get("/portfolio/orders?ticker=KXT-A&status=executed").json();
    assert_eq!(filtered["orders"].as_array().unwrap().len(), 2);
    let min_ts = now_ms() / 1000 + 3600;
    assert_eq!(c.get(&format!("/portfolio/orders?min_ts={min_ts}")).json()["orders"].as_array().unwrap().len(), 0);
    assert_error(&c.get("/portfolio/orders?status=open"), 400, "invalid_order");
    assert_error(&c.get("/portfolio/orders?limit=500"), 400, "invalid_order");
    let o = get_order(&mut c, &resting);
    for k in [
        "order_id",
        "user_id",
        "client_order_id",
        "ticker",
        "outcome_side",
        "book_side",
        "status",
        "yes_price_dollars",
        "no_price_dollars",
        "initial_count_fp",
        "fill_count_fp",
        "remaining_count_fp",
        "taker_fill_cost_dollars",
        "maker_fill_cost_dollars",
        "taker_fees_dollars",
        "maker_fees_dollars",
        "created_time",
        "last_update_time",
        "expiration_time",
        "self_trade_prevention_type",
        "cancel_order_on_pause",
        "subaccount_number",
        "exchange_index",
    ] {
        assert!(o.get(k).is_some(), "order object lacks {k}: {o}");
    }
    assert_eq!((o["yes_price_dollars"].as_str(), o["no_price_dollars"].as_str()), (Some("0.1500"), Some("0.8500")));
    assert_eq!(o["exchange_index"], 2);
    assert_error(&c.get("/portfolio/orders/nope"), 404, "not_found");
    assert_eq!(server.orders().len(), 3);
}

#[test]
fn rate_limit_fault_answers_429_without_applying() {
    let server = start();
    server.set_faults(RestFaults::none().rate_limit_path(2, "/portfolio/events/orders"));
    let mut c = Http::connect(&server);
    let r = c.create(&order("KXT-A", "bid", "1", "0.45", "immediate_or_cancel"));
    assert_eq!((r.status, r.body.as_str()), (429, TOO_MANY_REQUESTS_BODY));
    assert_eq!(r.json(), json!({"error": "too many requests"}));
    assert!(r.header("retry-after").is_none());
    assert_eq!(c.get("/portfolio/balance").status, 200, "other paths are not limited");
    assert_eq!(c.delete("/portfolio/events/orders", None).status, 429);
    assert_eq!(c.create(&order("KXT-A", "bid", "1", "0.45", "immediate_or_cancel")).status, 201);
    let s = server.stats();
    assert_eq!((s.rate_limited, s.creates), (2, 1));
    assert_eq!(server.faults().rate_limit_next, 0);
    // Every path.
    server.set_faults(RestFaults::none().rate_limit(1));
    assert_eq!(c.get("/portfolio/balance").status, 429);
    assert_eq!(c.get("/portfolio/balance").status, 200);
}

#[test]
fn never_answered_create_is_applied_and_found_by_get_orders() {
    let server = start();
    server.set_faults(RestFaults::none().never_answer_create(2));
    let mut c = Http::connect(&server);
    assert_eq!(c.create(&order("KXT-A", "bid", "1", "0.30", "good_till_canceled")).status, 201);
    let lost = order("KXT-A", "bid", "2", "0.31", "good_till_canceled");
    c.tls.get_ref().set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    let err = c.try_send("POST", "/portfolio/events/orders", Some(&lost)).unwrap_err();
    assert!(
        matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        "no answer, connection open: {err}"
    );
    // Reconcile on another connection.
    let mut c2 = Http::connect(&server);
    let v = c2.get("/portfolio/orders?ticker=KXT-A&status=resting").json();
    let found: Vec<&Value> =
        v["orders"].as_array().unwrap().iter().filter(|o| o["client_order_id"] == lost["client_order_id"]).collect();
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(found[0]["remaining_count_fp"], "2.00");
    assert_eq!(server.book("KXT-A").unwrap().bids.iter().find(|l| l.0 == p("0.31")), Some(&(p("0.31"), q("2"))));
    // One-shot: the next create is answered.
    assert_eq!(c2.create(&order("KXT-A", "bid", "1", "0.30", "good_till_canceled")).status, 201);
    let s = server.stats();
    assert_eq!((s.never_answered, s.creates), (1, 3));
}

#[test]
fn scripted_rejects_in_both_error_shapes() {
    let server = start();
    server.set_faults(
        RestFaults::none()
            .reject_next_create(ScriptedReject::new(409, "order_already_exists", "duplicate"))
            .reject_next_create(ScriptedReject::new(503, "EXCHANGE_UNAVAILABLE", "outcome unknown").nested()),
    );
    let mut c = Http::connect(&server);
    let r = c.create(&order("KXT-A", "bid", "1", "0.45", "immediate_or_cancel"));
    assert_eq!(r.status, 409);
    assert_eq!(r.json(), json!({"code": "order_already_exists", "message": "duplicate", "details": ""}));
    let r = c.create(&order("KXT-A", "bid", "1", "0.45", "immediate_or_cancel"));
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json(),
        json!({"error": {"code": "EXCHANGE_UNAVAILABLE", "message": "outcome unknown", "details": ""}})
    );
    assert_eq!(c.create(&order("KXT-A", "bid", "1", "0.45", "immediate_or_cancel")).status, 201);
    let s = server.stats();
    assert_eq!((s.scripted_rejects, s.creates, s.fills), (2, 1, 1));

    // A server whose own errors are nested.
    let nested = start_with(|c| c.error_shape = ErrorShape::Nested);
    let mut c = Http::connect(&nested);
    let r = c.create(&order("NOPE", "bid", "1", "0.45", "immediate_or_cancel"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "market_not_found");
}

#[test]
fn bad_signatures_get_401_and_the_connection_stays_usable() {
    let server = start();
    let mut c = Http::connect(&server);
    let ts = now_ms().to_string();
    // Signed for GET, sent as POST.
    let wrong = signed(&ts, "GET", &format!("{BASE}/portfolio/events/orders"));
    let body = order("KXT-A", "bid", "1", "0.45", "immediate_or_cancel");
    let r = c.raw("POST", "/portfolio/events/orders", Some(&body), &wrong, &[]).unwrap();
    assert_error(&r, 401, "invalid_signature");
    let mut missing = signed(&ts, "GET", &format!("{BASE}/portfolio/balance"));
    missing.pop();
    let r = c.raw("GET", "/portfolio/balance", None, &missing, &[]).unwrap();
    let e = assert_error(&r, 401, "missing_header");
    assert!(e["message"].as_str().unwrap().contains("KALSHI-ACCESS-SIGNATURE"));
    let stale = (now_ms() - 60_000).to_string();
    let r = c
        .raw("GET", "/portfolio/balance", None, &signed(&stale, "GET", &format!("{BASE}/portfolio/balance")), &[])
        .unwrap();
    assert_error(&r, 401, "timestamp_out_of_window");
    // The query is not signed.
    assert_eq!(c.get("/portfolio/orders?limit=5").status, 200);
    assert!(server.orders().is_empty(), "refused requests are not applied");
    let s = server.stats();
    assert_eq!(s.auth_failures, 3);
    assert!(s.auth_failure_reasons[0].starts_with("invalid_signature"), "{:?}", s.auth_failure_reasons);
    assert_eq!(s.connections, vec![4]);
    // Unknown paths and wrong methods (signed correctly).
    assert_error(&c.get("/markets"), 404, "not_found");
    assert_error(&c.get("/portfolio/events/orders"), 405, "method_not_allowed");
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = start();
    let mut c = Http::connect(&server);
    assert_eq!(c.get("/portfolio/balance").status, 200);
    let (id, _) = rest_bid(&mut c, "KXT-A", "1", "0.30");
    assert_eq!(c.get(&format!("/portfolio/orders/{id}")).status, 200);
    assert_eq!(c.delete(&format!("/portfolio/events/orders/{id}?exchange_index=0"), None).status, 200);
    assert_eq!(c.get("/portfolio/positions").status, 200);
    assert_eq!(server.stats().connections, vec![5]);
    // `Connection: close` is honoured: answered, announced, then closed.
    let ts = now_ms().to_string();
    let auth = signed(&ts, "GET", &format!("{BASE}/portfolio/balance"));
    let r = c.raw("GET", "/portfolio/balance", None, &auth, &[("Connection", "close")]).unwrap();
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    c.tls.get_ref().set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = [0u8; 64];
    match c.tls.read(&mut rest) {
        Ok(n) => assert_eq!(n, 0, "closed after the answer"),
        Err(e) => assert!(!matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut), "still open: {e}"),
    }
    assert_eq!(server.stats().connections, vec![6]);
    let s = server.stats();
    assert_eq!(s.requests_to("GET", "/portfolio/balance"), 2);
    assert_eq!(s.requests_to("DELETE", "/portfolio/events/orders/{order_id}"), 1);
    assert_eq!(s.total_requests(), 6);
}

#[test]
fn close_after_fault_drops_connections_and_a_new_one_works() {
    let server = start();
    server.set_faults(RestFaults::none().close_after(2));
    let mut c = Http::connect(&server);
    assert_eq!(c.get("/portfolio/balance").status, 200);
    let r = c.get("/portfolio/balance");
    assert_eq!((r.status, r.header("connection")), (200, None), "the close is not announced");
    assert!(c.try_send("GET", "/portfolio/balance", None).is_err(), "the third request finds the connection gone");
    let mut c2 = Http::connect(&server);
    assert_eq!(c2.get("/portfolio/balance").status, 200);
    assert_eq!(server.stats().fault_closes, 1);
    server.set_faults(RestFaults::none());
    assert_eq!(c2.get("/portfolio/balance").status, 200);
    assert_eq!(c2.get("/portfolio/balance").status, 200);
}

#[test]
fn malformed_requests_are_refused_and_stop_joins_threads() {
    let mut server = start();
    let mut c = Http::connect(&server);
    let ts = now_ms().to_string();
    let auth = signed(&ts, "POST", &format!("{BASE}/portfolio/events/orders"));
    let r = c.raw("POST", "/portfolio/events/orders", None, &auth, &[("Transfer-Encoding", "chunked")]).unwrap();
    assert_eq!(r.status, 411);
    assert_eq!(server.stats().bad_requests, 1);
    let mut idle = Http::connect(&server);
    assert_eq!(idle.get("/portfolio/balance").status, 200);
    server.stop();
    assert!(idle.try_send("GET", "/portfolio/balance", None).is_err());
    server.stop();
}

#[test]
fn expired_orders_are_cancelled() {
    let server = start();
    let mut c = Http::connect(&server);
    // At least one second ahead whatever the sub-second clock.
    let exp = now_ms() / 1000 + 2;
    let r = c.create(&with(order("KXT-A", "bid", "1", "0.30", "good_till_canceled"), "expiration_time", json!(exp)));
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["order_id"].as_str().unwrap().to_string();
    let o = get_order(&mut c, &id);
    assert_eq!(o["status"], "resting");
    assert!(o["expiration_time"].as_str().unwrap().ends_with('Z'), "{o}");
    while now_ms() < exp * 1000 + 50 {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get_order(&mut c, &id)["status"], "canceled");
    assert!(server.book("KXT-A").unwrap().bids.iter().all(|l| l.0 != p("0.30")));
}

#[test]
fn start_refuses_a_crossed_first_snapshot() {
    let mut rec = (*recording()).clone();
    // YES bid 0.60 against a NO bid 0.50 (a YES ask at 0.50): crossed.
    rec.frames[0].text = concat!(
        r#"{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"KXT-A","#,
        r#""yes_dollars_fp":[["0.6000","1.00"]],"no_dollars_fp":[["0.5000","1.00"]]}}"#
    )
    .into();
    let err = RestServer::start(RestServerConfig::new(Arc::new(rec), api_key(), START_BALANCE)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("KXT-A"), "{err}");
    let server = start();
    assert!(server.url().starts_with("https://localhost:") && server.url().ends_with("/trade-api/v2"));
    assert!(server.set_book("KXT-A", &[(p("0.50"), q("1"))], &[(p("0.50"), q("1"))]).is_err());
    server.set_book("KXT-A", &[(p("0.20"), q("1"))], &[(p("0.80"), q("1"))]).unwrap();
    assert_eq!(server.book("KXT-A").unwrap().asks, vec![(p("0.80"), q("1"))]);
}
