//! The account's private WebSocket messages (`fill`, `user_order`) end to end: a
//! [`LinkedServers`] pair over real TLS on loopback, orders sent over REST V2 (signed with the
//! test RSA key in `tests/fixtures/keys/`), messages read over the WebSocket (tungstenite over
//! rustls trusting only the servers' generated certificate).
//!
//! Served markets (hand-made recording, NO-price scale):
//! - `KXP-A` (`linear_cent`, shard 0, `quadratic`: takers only): YES bids 0.40 × 10,
//!   0.38 × 20; NO bids 0.55 × 5 and 0.53 × 10, i.e. YES asks 0.45 × 5, 0.47 × 10. A delta at
//!   1.5 s of recording time removes the NO 0.53 level (for the interleaving test).
//! - `KXP-M` (`linear_cent`, shard 2, `quadratic_with_maker_fees`): YES bid 0.30 × 10; NO bid
//!   0.40 × 10 (YES ask 0.60 × 10).
//!
//! Fee numbers used below (SDK accumulator, cent precision): FoK 12 @ ≤ 0.47 on `KXP-A` takes
//! 5 @ 0.45 (trade fee 0.0867, charged 0.09) and 7 @ 0.47 (trade fee 0.1221, charged 0.12 after
//! the accumulator refunds one cent): `fee_cost` 0.086700 + 0.122100, ledger 0.21.

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
use strike_sdk::book::BookSide;
use strike_sdk::fees::{AccountPrecision, FeeSchedule, FeeType, Liquidity, OrderFeeAccumulator};
use strike_sdk::num::{Money, Price, Qty};
use strike_sim::recording::{Frame, Header, MarketRecord, Recording, FORMAT_VERSION};
use strike_sim::server::ws::WS_PATH;
use strike_sim::server::{
    ApiKey, LinkedServers, Pacing, PrivateChannel, PrivateTiming, RestFaults, RestServerConfig, TestCert,
    WsServerConfig,
};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

const KEY_ID: &str = "0b7f4c1e-test-key";
const BASE: &str = "/trade-api/v2";
const START_BALANCE: Money = Money::dollars(1_000);

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

fn signed(ts: &str, method: &str, path: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KALSHI-ACCESS-KEY", KEY_ID.to_string()),
        ("KALSHI-ACCESS-TIMESTAMP", ts.to_string()),
        ("KALSHI-ACCESS-SIGNATURE", sign(&format!("{ts}{method}{path}"))),
    ]
}

fn recording() -> Arc<Recording> {
    let frames = [
        (
            1_000_000u64,
            r#"{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"KXP-A","yes_dollars_fp":[["0.3800","20.00"],["0.4000","10.00"]],"no_dollars_fp":[["0.5300","10.00"],["0.5500","5.00"]]}}"#,
        ),
        (
            2_000_000,
            r#"{"type":"orderbook_snapshot","sid":1,"seq":2,"msg":{"market_ticker":"KXP-M","yes_dollars_fp":[["0.3000","10.00"]],"no_dollars_fp":[["0.4000","10.00"]]}}"#,
        ),
        (
            1_500_000_000,
            r#"{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"KXP-A","price_dollars":"0.5300","delta_fp":"-10.00","side":"no"}}"#,
        ),
    ];
    let market = |t: &str, xi: u8, fee: &str| MarketRecord {
        ticker: t.into(),
        event_ticker: "KXP".into(),
        series_ticker: "KXP".into(),
        price_level_structure: Some("linear_cent".into()),
        fee_type: Some(fee.into()),
        exchange_index: xi,
        ..Default::default()
    };
    Arc::new(Recording {
        header: Header {
            strike_recording: FORMAT_VERSION,
            source: "hand-made".into(),
            yes_price_scale: false,
            markets: vec![market("KXP-A", 0, "quadratic"), market("KXP-M", 2, "quadratic_with_maker_fees")],
            events: vec![],
        },
        frames: frames.iter().map(|(ns, t)| Frame { recv_ns: *ns, text: t.to_string() }).collect(),
    })
}

fn api_key() -> ApiKey {
    ApiKey::from_pem_file(KEY_ID, &keys().join("test_rsa_public.pem")).unwrap()
}

fn start_with(ws: impl FnOnce(&mut WsServerConfig), rest: impl FnOnce(&mut RestServerConfig)) -> LinkedServers {
    let rec = recording();
    let mut wc = WsServerConfig::new(Arc::clone(&rec), api_key());
    wc.ping_interval = None;
    ws(&mut wc);
    let mut rc = RestServerConfig::new(rec, api_key(), START_BALANCE);
    rest(&mut rc);
    LinkedServers::start(wc, rc).unwrap()
}

fn start() -> LinkedServers {
    start_with(|_| {}, |_| {})
}

fn tls_config(cert: &TestCert) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(cert.cert_der.clone())).unwrap();
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn tls_stream(addr: SocketAddr, cert: &TestCert) -> StreamOwned<ClientConnection, TcpStream> {
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = ClientConnection::new(tls_config(cert), ServerName::try_from("localhost").unwrap()).unwrap();
    StreamOwned::new(conn, sock)
}

// ---- WebSocket client ----

type Client = WebSocket<StreamOwned<ClientConnection, TcpStream>>;

fn connect_ws(s: &LinkedServers) -> Client {
    let ts = now_ms().to_string();
    let mut req = format!("wss://localhost:{}{WS_PATH}", s.ws.addr().port()).into_client_request().unwrap();
    for (k, v) in signed(&ts, "GET", WS_PATH) {
        req.headers_mut().insert(k, v.parse().unwrap());
    }
    let stream = tls_stream(s.ws.addr(), s.ws.cert());
    match tungstenite::client::client(req, stream) {
        Ok((ws, _)) => ws,
        Err(e) => panic!("WebSocket handshake: {e}"),
    }
}

fn send_ws(ws: &mut Client, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

/// The next text frame as JSON (pings and pongs skipped).
fn next_json(ws: &mut Client) -> Value {
    loop {
        match ws.read().unwrap_or_else(|e| panic!("read: {e}")) {
            Message::Text(t) => {
                return serde_json::from_str(t.as_str()).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
            }
            Message::Ping(_) | Message::Pong(_) => {}
            m => panic!("unexpected {m:?}"),
        }
    }
}

/// The next `n` frames.
fn next_n(ws: &mut Client, n: usize) -> Vec<Value> {
    (0..n).map(|_| next_json(ws)).collect()
}

/// Asserts that no frame arrives for `d`.
fn assert_quiet(ws: &mut Client, d: Duration) {
    ws.get_ref().sock.set_read_timeout(Some(d)).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(m) => panic!("expected silence, got {m:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                break
            }
            Err(e) => panic!("expected silence, got {e}"),
        }
    }
    ws.get_ref().sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
}

/// Subscribes to `channels` (optionally filtered by `tickers`); returns the sids, in order.
fn subscribe(ws: &mut Client, id: u64, channels: &[&str], tickers: Option<&[&str]>) -> Vec<u64> {
    let mut params = json!({ "channels": channels });
    if let Some(t) = tickers {
        params["market_tickers"] = json!(t);
    }
    send_ws(ws, json!({"id": id, "cmd": "subscribe", "params": params}));
    channels
        .iter()
        .map(|c| {
            let ack = next_json(ws);
            assert_eq!(ack["type"], "subscribed", "{ack}");
            assert_eq!(ack["id"], id, "{ack}");
            assert_eq!(ack["msg"]["channel"], *c, "{ack}");
            ack["msg"]["sid"].as_u64().unwrap()
        })
        .collect()
}

/// Both private channels: `(fill sid, user_orders sid)`.
fn subscribe_private(ws: &mut Client, tickers: Option<&[&str]>) -> (u64, u64) {
    let sids = subscribe(ws, 1, &["fill", "user_orders"], tickers);
    (sids[0], sids[1])
}

// ---- REST client ----

#[derive(Debug)]
struct Resp {
    status: u16,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
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

    fn send(&mut self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let ts = now_ms().to_string();
        let mut req = format!("{method} {BASE}{path} HTTP/1.1\r\nHost: localhost\r\n");
        for (k, v) in signed(&ts, method, &format!("{BASE}{}", path.split('?').next().unwrap())) {
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

    fn read_response(&mut self) -> io::Result<Resp> {
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
                    let body = String::from_utf8(self.buf[head..head + len].to_vec()).unwrap();
                    self.buf.drain(..head + len);
                    return Ok(Resp { status, body });
                }
            }
            let n = self.tls.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn ok(&mut self, method: &str, path: &str, body: Option<&Value>, status: u16) -> Value {
        let r = self.send(method, path, body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        if r.body.is_empty() {
            Value::Null
        } else {
            r.json()
        }
    }

    fn create(&mut self, order: &Value) -> Value {
        self.ok("POST", "/portfolio/events/orders", Some(order), 201)
    }

    fn order(&mut self, id: &str) -> Value {
        self.ok("GET", &format!("/portfolio/orders/{id}"), None, 200)["order"].clone()
    }
}

fn shard(ticker: &str) -> u8 {
    if ticker == "KXP-M" {
        2
    } else {
        0
    }
}

/// A V2 create body.
fn order(ticker: &str, cid: &str, side: &str, count: &str, price: &str, tif: &str) -> Value {
    json!({
        "ticker": ticker, "client_order_id": cid, "side": side, "count": count, "price": price,
        "time_in_force": tif, "self_trade_prevention_type": "taker_at_cross", "post_only": false,
        "exchange_index": shard(ticker),
    })
}

fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}

fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap()
}

fn money(v: &Value) -> Money {
    Money::parse(v.as_str().unwrap_or_else(|| panic!("not a dollar string: {v}"))).unwrap()
}

// ---- message checks ----

/// The keys of a `fill` msg, sorted (with `client_order_id`).
const FILL_KEYS: &[&str] = &[
    "action",
    "book_side",
    "client_order_id",
    "count_fp",
    "exchange_index",
    "fee_cost",
    "is_taker",
    "market_ticker",
    "order_id",
    "outcome_side",
    "post_position_fp",
    "purchased_side",
    "side",
    "subaccount",
    "trade_id",
    "ts",
    "ts_ms",
    "yes_price_dollars",
];

/// The keys of a `user_order` msg, sorted (no order group, no expiration).
const USER_ORDER_KEYS: &[&str] = &[
    "book_side",
    "client_order_id",
    "created_ts_ms",
    "exchange_index",
    "fill_count_fp",
    "initial_count_fp",
    "is_yes",
    "last_updated_ts_ms",
    "maker_fees_dollars",
    "maker_fill_cost_dollars",
    "order_id",
    "outcome_side",
    "remaining_count_fp",
    "self_trade_prevention_type",
    "side",
    "status",
    "subaccount_number",
    "taker_fees_dollars",
    "taker_fill_cost_dollars",
    "ticker",
    "user_id",
    "yes_price_dollars",
];

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// Checks the envelope (`type`, `sid`, no `seq`, no `id`) and the fields the engine's cold
/// parsers require, with their JSON types; returns `msg`.
fn msg_of(frame: &Value, ty: &str, sid: u64) -> Value {
    assert_eq!(frame["type"], ty, "{frame}");
    assert_eq!(frame["sid"], sid, "{frame}");
    assert!(frame.get("seq").is_none() && frame.get("id").is_none(), "{frame}");
    let m = frame["msg"].clone();
    let strings: &[&str] = if ty == "fill" {
        &["order_id", "trade_id", "yes_price_dollars", "count_fp", "fee_cost", "post_position_fp", "market_ticker"]
    } else {
        &["order_id", "client_order_id", "status", "fill_count_fp", "remaining_count_fp", "ticker"]
    };
    for k in strings {
        assert!(m[*k].is_string(), "{ty}.{k} is not a string: {frame}");
    }
    if ty == "fill" {
        assert!(m["is_taker"].is_boolean() && m["ts_ms"].is_i64() && m["ts"].is_i64(), "{frame}");
        assert_eq!(m["ts"].as_i64().unwrap(), m["ts_ms"].as_i64().unwrap().div_euclid(1000), "{frame}");
        assert_eq!(m["trade_id"].as_str().unwrap().len(), 36, "{frame}");
    } else {
        assert!(m["last_updated_ts_ms"].is_i64() && m["created_ts_ms"].is_i64(), "{frame}");
    }
    m
}

/// The fields of a `fill` that vary: `(yes price, count, fee_cost, is_taker, post_position)`.
fn fill_fields(m: &Value) -> (String, String, String, bool, String) {
    let s = |k: &str| m[k].as_str().unwrap().to_string();
    (s("yes_price_dollars"), s("count_fp"), s("fee_cost"), m["is_taker"].as_bool().unwrap(), s("post_position_fp"))
}

/// `(status, initial, filled, remaining)` of a `user_order`.
fn order_counts(m: &Value) -> (String, String, String, String) {
    let s = |k: &str| m[k].as_str().unwrap().to_string();
    (s("status"), s("initial_count_fp"), s("fill_count_fp"), s("remaining_count_fp"))
}

fn strs(a: &str, b: &str, c: &str, d: &str) -> (String, String, String, String) {
    (a.into(), b.into(), c.into(), d.into())
}

fn fill_of(price: &str, count: &str, fee: &str, taker: bool, post: &str) -> (String, String, String, bool, String) {
    (price.into(), count.into(), fee.into(), taker, post.into())
}

/// The `user_order` fields the REST order object carries too must agree with it.
fn assert_matches_order_object(m: &Value, o: &Value) {
    for k in [
        "order_id",
        "user_id",
        "ticker",
        "client_order_id",
        "status",
        "outcome_side",
        "book_side",
        "side",
        "yes_price_dollars",
        "initial_count_fp",
        "fill_count_fp",
        "remaining_count_fp",
        "taker_fill_cost_dollars",
        "maker_fill_cost_dollars",
        "taker_fees_dollars",
        "maker_fees_dollars",
        "self_trade_prevention_type",
        "subaccount_number",
        "exchange_index",
    ] {
        assert_eq!(m[k], o[k], "user_order.{k} vs GET order: {m} / {o}");
    }
}

// ---- tests ----

#[test]
fn fok_fill_publishes_each_fill_then_the_executed_user_order() {
    let s = start();
    let mut ws = connect_ws(&s);
    let (fill_sid, uo_sid) = subscribe_private(&mut ws, None);
    assert_eq!((fill_sid, uo_sid), (1, 2));
    let mut c = Http::connect(&s);
    let r = c.create(&order("KXP-A", "fok-1", "bid", "12", "0.47", "fill_or_kill"));
    assert_eq!(r["fill_count"], "12.00");
    assert_eq!(r["remaining_count"], "0.00");
    assert_eq!(r["average_fill_price"], "0.461666");
    assert_eq!(r["average_fee_paid"], "0.017500");
    // Published before the response was written.
    assert_eq!(s.feed.published(), 3);
    let oid = r["order_id"].as_str().unwrap().to_string();
    let ts = r["ts_ms"].as_i64().unwrap();

    let frames = next_n(&mut ws, 3);
    let f1 = msg_of(&frames[0], "fill", fill_sid);
    let f2 = msg_of(&frames[1], "fill", fill_sid);
    let u = msg_of(&frames[2], "user_order", uo_sid);
    assert_eq!(fill_fields(&f1), fill_of("0.4500", "5.00", "0.086700", true, "5.00"));
    assert_eq!(fill_fields(&f2), fill_of("0.4700", "7.00", "0.122100", true, "12.00"));
    for f in [&f1, &f2] {
        assert_eq!(keys_of(f), FILL_KEYS);
        assert_eq!(f["order_id"], oid.as_str());
        assert_eq!(f["client_order_id"], "fok-1");
        assert_eq!(f["market_ticker"], "KXP-A");
        assert_eq!(f["exchange_index"], 0);
        assert_eq!(f["subaccount"], 0);
        assert_eq!(
            (&f["side"], &f["action"], &f["purchased_side"], &f["outcome_side"], &f["book_side"]),
            (&json!("yes"), &json!("buy"), &json!("yes"), &json!("yes"), &json!("bid"))
        );
        assert_eq!(f["ts_ms"], ts);
    }
    assert_ne!(f1["trade_id"], f2["trade_id"]);
    // Each fee_cost is the fill's trade fee (rounded up to $0.0001) per the schedule.
    let sched = FeeSchedule::of(FeeType::Quadratic);
    assert_eq!(money(&f1["fee_cost"]), sched.trade_fee(Liquidity::Taker, p("0.45"), q("5")));
    assert_eq!(money(&f2["fee_cost"]), sched.trade_fee(Liquidity::Taker, p("0.47"), q("7")));

    assert_eq!(keys_of(&u), USER_ORDER_KEYS);
    assert_eq!(order_counts(&u), strs("executed", "12.00", "12.00", "0.00"));
    assert_eq!(u["order_id"], oid.as_str());
    assert_eq!(u["client_order_id"], "fok-1");
    assert_eq!(u["ticker"], "KXP-A");
    assert_eq!(u["yes_price_dollars"], "0.4700");
    assert_eq!(u["taker_fill_cost_dollars"], "5.540000");
    assert_eq!(u["taker_fees_dollars"], "0.210000");
    assert_eq!(u["maker_fill_cost_dollars"], "0.000000");
    assert_eq!(u["maker_fees_dollars"], "0.000000");
    assert_eq!(
        (&u["outcome_side"], &u["book_side"], &u["side"], &u["is_yes"]),
        (&json!("yes"), &json!("bid"), &json!("yes"), &json!(true))
    );
    assert_eq!((&u["created_ts_ms"], &u["last_updated_ts_ms"]), (&json!(ts), &json!(ts)));
    assert_eq!(u["self_trade_prevention_type"], "taker_at_cross");
    assert_eq!((&u["subaccount_number"], &u["exchange_index"]), (&json!(0), &json!(0)));
    assert_matches_order_object(&u, &c.order(&oid));

    // The fills, replayed through the SDK's fee accumulator, give the ledger's fees, the
    // response's averages and the balance.
    let mut acc = OrderFeeAccumulator::new();
    let mut notional = Money::ZERO;
    let mut count = Qty::ZERO;
    for f in [&f1, &f2] {
        let (fp, fq) = (p(f["yes_price_dollars"].as_str().unwrap()), q(f["count_fp"].as_str().unwrap()));
        let fee = acc.on_fill(&sched, Liquidity::Taker, fp, fq, AccountPrecision::Cent);
        assert_eq!(fee.trade_fee, money(&f["fee_cost"]));
        notional += Money::notional(fp, fq);
        count += fq;
    }
    assert_eq!(count, q("12"));
    assert_eq!(acc.total_charged(), money(&u["taker_fees_dollars"]));
    assert_eq!(notional, money(&u["taker_fill_cost_dollars"]));
    assert_eq!(Money(acc.total_charged().0 * 100 / count.0), money(&r["average_fee_paid"]));
    assert_eq!(s.rest.balance(), START_BALANCE - notional - acc.total_charged());
    assert_eq!(s.rest.position("KXP-A"), Some(q("12")));
    assert_quiet(&mut ws, Duration::from_millis(100));
    let st = s.ws.stats().connection(0).unwrap();
    assert_eq!((st.sent("fill"), st.sent("user_order"), st.data_frames), (2, 1, 0));
    assert_eq!((s.rest.stats().private_published, s.rest.stats().private_dropped), (3, 0));
}

#[test]
fn resting_gtc_filled_by_outside_takers_gets_maker_fills() {
    let s = start();
    let mut ws = connect_ws(&s);
    let (fill_sid, uo_sid) = subscribe_private(&mut ws, None);
    let mut c = Http::connect(&s);
    let r = c.create(&order("KXP-M", "gtc-1", "bid", "10", "0.35", "good_till_canceled"));
    assert_eq!((&r["fill_count"], &r["remaining_count"]), (&json!("0.00"), &json!("10.00")));
    let oid = r["order_id"].as_str().unwrap().to_string();
    let created = r["ts_ms"].as_i64().unwrap();
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!(order_counts(&u), strs("resting", "10.00", "0.00", "10.00"));
    assert_eq!((&u["order_id"], &u["client_order_id"], &u["ticker"]), (&json!(oid), &json!("gtc-1"), &json!("KXP-M")));
    assert_eq!((&u["yes_price_dollars"], &u["exchange_index"]), (&json!("0.3500"), &json!(2)));
    assert_eq!((&u["taker_fill_cost_dollars"], &u["taker_fees_dollars"]), (&json!("0.000000"), &json!("0.000000")));
    assert_eq!((&u["created_ts_ms"], &u["last_updated_ts_ms"]), (&json!(created), &json!(created)));
    assert_matches_order_object(&u, &c.order(&oid));

    // An outside seller hits our 0.35 bid for 4 (we are the best bid).
    assert_eq!(s.rest.external_trade("KXP-M", BookSide::Bid, p("0.35"), q("4")).unwrap(), q("4"));
    let fr = next_n(&mut ws, 2);
    let f = msg_of(&fr[0], "fill", fill_sid);
    let u = msg_of(&fr[1], "user_order", uo_sid);
    // Maker fee 0.0175 × 4 × 0.35 × 0.65 = 0.015925 → 0.0160 (charged 0.02 at cent precision).
    assert_eq!(fill_fields(&f), fill_of("0.3500", "4.00", "0.016000", false, "4.00"));
    let sched = FeeSchedule::of(FeeType::QuadraticWithMakerFees);
    assert_eq!(money(&f["fee_cost"]), sched.trade_fee(Liquidity::Maker, p("0.35"), q("4")));
    assert_eq!(
        (&f["order_id"], &f["client_order_id"], &f["exchange_index"]),
        (&json!(oid), &json!("gtc-1"), &json!(2))
    );
    assert_eq!(order_counts(&u), strs("resting", "10.00", "4.00", "6.00"));
    assert_eq!((&u["maker_fill_cost_dollars"], &u["maker_fees_dollars"]), (&json!("1.400000"), &json!("0.020000")));
    assert_eq!(u["taker_fees_dollars"], "0.000000");
    assert_eq!(u["last_updated_ts_ms"], f["ts_ms"]);
    assert!(u["last_updated_ts_ms"].as_i64().unwrap() >= created);
    assert_matches_order_object(&u, &c.order(&oid));

    // The rest: 6 more (the outside 0.30 bid is below the taker's limit).
    assert_eq!(s.rest.external_trade("KXP-M", BookSide::Bid, p("0.35"), q("10")).unwrap(), q("6"));
    let fr = next_n(&mut ws, 2);
    let f = msg_of(&fr[0], "fill", fill_sid);
    let u = msg_of(&fr[1], "user_order", uo_sid);
    // 0.0175 × 6 × 0.2275 = 0.0238875 → 0.0239; the accumulator refunds a cent: ledger 0.04.
    assert_eq!(fill_fields(&f), fill_of("0.3500", "6.00", "0.023900", false, "10.00"));
    assert_eq!(order_counts(&u), strs("executed", "10.00", "10.00", "0.00"));
    assert_eq!((&u["maker_fill_cost_dollars"], &u["maker_fees_dollars"]), (&json!("3.500000"), &json!("0.040000")));
    let mut acc = OrderFeeAccumulator::new();
    acc.on_fill(&sched, Liquidity::Maker, p("0.35"), q("4"), AccountPrecision::Cent);
    acc.on_fill(&sched, Liquidity::Maker, p("0.35"), q("6"), AccountPrecision::Cent);
    assert_eq!(acc.total_charged(), money(&u["maker_fees_dollars"]));
    assert_matches_order_object(&u, &c.order(&oid));
    assert_eq!(s.rest.balance(), START_BALANCE - Money::dollars(3) - Money(500_000) - acc.total_charged());
    assert_quiet(&mut ws, Duration::from_millis(100));
}

#[test]
fn amend_decrease_cancel_ioc_and_cancel_all_publish_user_orders() {
    let s = start();
    let mut ws = connect_ws(&s);
    let (fill_sid, uo_sid) = subscribe_private(&mut ws, None);
    let mut c = Http::connect(&s);
    // An ask (buys NO) resting at 0.50 YES, above the 0.40 bid.
    let r = c.create(&order("KXP-A", "c-1", "ask", "10", "0.50", "good_till_canceled"));
    let oid = r["order_id"].as_str().unwrap().to_string();
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!(order_counts(&u), strs("resting", "10.00", "0.00", "10.00"));
    assert_eq!(
        (&u["outcome_side"], &u["book_side"], &u["side"], &u["is_yes"], &u["yes_price_dollars"]),
        (&json!("no"), &json!("ask"), &json!("no"), &json!(false), &json!("0.5000"))
    );
    let t0 = u["last_updated_ts_ms"].as_i64().unwrap();

    // Amend: new price, new total 12, new client order id.
    let body = json!({"ticker": "KXP-A", "side": "ask", "price": "0.49", "count": "12", "client_order_id": "c-1",
        "updated_client_order_id": "c-2", "exchange_index": 0});
    let a = c.ok("POST", &format!("/portfolio/events/orders/{oid}/amend"), Some(&body), 200);
    assert_eq!(a["remaining_count"], "12.00");
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!(order_counts(&u), strs("resting", "12.00", "0.00", "12.00"));
    assert_eq!(
        (&u["order_id"], &u["client_order_id"], &u["yes_price_dollars"]),
        (&json!(oid), &json!("c-2"), &json!("0.4900"))
    );
    assert_eq!(u["last_updated_ts_ms"], a["ts_ms"]);
    assert!(a["ts_ms"].as_i64().unwrap() >= t0);
    assert_matches_order_object(&u, &c.order(&oid));

    // Decrease by 5.
    let d = c.ok(
        "POST",
        &format!("/portfolio/events/orders/{oid}/decrease"),
        Some(&json!({"reduce_by": "5", "exchange_index": 0})),
        200,
    );
    assert_eq!(d["remaining_count"], "7.00");
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!(order_counts(&u), strs("resting", "12.00", "0.00", "7.00"));
    assert_eq!(u["last_updated_ts_ms"], d["ts_ms"]);

    // Cancel: the remaining count drops to 0.
    let x = c.ok("DELETE", &format!("/portfolio/events/orders/{oid}?exchange_index=0"), None, 200);
    assert_eq!(x["reduced_by"], "7.00");
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!(order_counts(&u), strs("canceled", "12.00", "0.00", "0.00"));
    assert_eq!((&u["client_order_id"], &u["last_updated_ts_ms"]), (&json!("c-2"), &x["ts_ms"]));
    assert_matches_order_object(&u, &c.order(&oid));

    // IoC ask for 15 at 0.40: takes the 0.40 bid (10), the rest is cancelled.
    let r = c.create(&order("KXP-A", "ioc-1", "ask", "15", "0.40", "immediate_or_cancel"));
    assert_eq!((&r["fill_count"], &r["remaining_count"]), (&json!("10.00"), &json!("0.00")));
    let fr = next_n(&mut ws, 2);
    let f = msg_of(&fr[0], "fill", fill_sid);
    // 0.07 × 10 × 0.4 × 0.6 = 0.168; the position goes 10 NO.
    assert_eq!(fill_fields(&f), fill_of("0.4000", "10.00", "0.168000", true, "-10.00"));
    assert_eq!(
        (&f["side"], &f["action"], &f["purchased_side"], &f["outcome_side"], &f["book_side"]),
        (&json!("no"), &json!("buy"), &json!("no"), &json!("no"), &json!("ask"))
    );
    let u = msg_of(&fr[1], "user_order", uo_sid);
    assert_eq!(order_counts(&u), strs("canceled", "15.00", "10.00", "0.00"));
    // An ask's fill cost is the NO price: 10 × 0.60.
    assert_eq!((&u["taker_fill_cost_dollars"], &u["taker_fees_dollars"]), (&json!("6.000000"), &json!("0.170000")));
    assert_eq!(s.rest.position("KXP-A"), Some(q("-10")));

    // Two resting bids, then cancel-all: one canceled user_order each, in order.
    let b1 = c.create(&order("KXP-A", "r-1", "bid", "3", "0.30", "good_till_canceled"))["order_id"].clone();
    let b2 = c.create(&order("KXP-M", "r-2", "bid", "2", "0.20", "good_till_canceled"))["order_id"].clone();
    let fr = next_n(&mut ws, 2);
    assert_eq!(msg_of(&fr[0], "user_order", uo_sid)["order_id"], b1);
    assert_eq!(msg_of(&fr[1], "user_order", uo_sid)["order_id"], b2);
    c.ok("DELETE", "/portfolio/events/orders", None, 204);
    let fr = next_n(&mut ws, 2);
    let (u1, u2) = (msg_of(&fr[0], "user_order", uo_sid), msg_of(&fr[1], "user_order", uo_sid));
    assert_eq!((&u1["order_id"], order_counts(&u1)), (&b1, strs("canceled", "3.00", "0.00", "0.00")));
    assert_eq!((&u2["order_id"], order_counts(&u2)), (&b2, strs("canceled", "2.00", "0.00", "0.00")));
    assert_quiet(&mut ws, Duration::from_millis(100));
}

#[test]
fn fok_kill_and_self_trade_prevention_publish_cancellations() {
    let s = start();
    let mut ws = connect_ws(&s);
    let (_, uo_sid) = subscribe_private(&mut ws, None);
    let mut c = Http::connect(&s);
    // 16 cannot fill (15 offered): killed, no fill.
    let r = c.create(&order("KXP-A", "kill-1", "bid", "16", "0.47", "fill_or_kill"));
    assert_eq!(r["fill_count"], "0.00");
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!(order_counts(&u), strs("canceled", "16.00", "0.00", "0.00"));
    assert_eq!(u["client_order_id"], "kill-1");
    // Our own ask at 0.44 rests ahead of the outside 0.45; a bid with `maker` STP cancels it.
    let maker = c.create(&order("KXP-A", "mk-1", "ask", "2", "0.44", "good_till_canceled"))["order_id"].clone();
    assert_eq!(msg_of(&next_json(&mut ws), "user_order", uo_sid)["status"], "resting");
    let mut body = order("KXP-A", "tk-1", "bid", "1", "0.45", "immediate_or_cancel");
    body["self_trade_prevention_type"] = json!("maker");
    let r = c.create(&body);
    assert_eq!(r["fill_count"], "1.00");
    let fr = next_n(&mut ws, 3);
    let fill = &fr[0];
    assert_eq!(
        (&fill["type"], &fill["msg"]["client_order_id"], &fill["msg"]["yes_price_dollars"]),
        (&json!("fill"), &json!("tk-1"), &json!("0.4500"))
    );
    let um = msg_of(&fr[1], "user_order", uo_sid);
    assert_eq!((&um["order_id"], order_counts(&um)), (&maker, strs("canceled", "2.00", "0.00", "0.00")));
    let ut = msg_of(&fr[2], "user_order", uo_sid);
    assert_eq!((&ut["client_order_id"], order_counts(&ut)), (&json!("tk-1"), strs("executed", "1.00", "1.00", "0.00")));
}

#[test]
fn market_filters_and_unsubscribed_sessions() {
    let s = start();
    let mut only_m = connect_ws(&s);
    let (fill_m, uo_m) = subscribe_private(&mut only_m, Some(&["KXP-M"]));
    let mut all = connect_ws(&s);
    let (fill_all, uo_all) = subscribe_private(&mut all, None);
    let mut orders_only = connect_ws(&s);
    let uo_only = subscribe(&mut orders_only, 7, &["user_orders"], None)[0];
    // A session with only a public subscription, and one with none.
    let mut public = connect_ws(&s);
    subscribe(&mut public, 3, &["ticker"], None);
    let mut idle = connect_ws(&s);
    // An unknown market in the filter is refused as on every channel.
    send_ws(
        &mut idle,
        json!({"id": 9, "cmd": "subscribe", "params": {"channels": ["fill"], "market_tickers": ["NOPE"]}}),
    );
    let e = next_json(&mut idle);
    assert_eq!(
        (&e["type"], &e["msg"]["code"], &e["msg"]["market_ticker"]),
        (&json!("error"), &json!(16), &json!("NOPE"))
    );

    let mut c = Http::connect(&s);
    c.create(&order("KXP-A", "a-1", "bid", "5", "0.45", "fill_or_kill"));
    let m_id = c.create(&order("KXP-M", "m-1", "bid", "1", "0.25", "good_till_canceled"))["order_id"].clone();

    let fr = next_n(&mut all, 3);
    assert_eq!(
        (&msg_of(&fr[0], "fill", fill_all)["market_ticker"], &msg_of(&fr[1], "user_order", uo_all)["ticker"]),
        (&json!("KXP-A"), &json!("KXP-A"))
    );
    assert_eq!(msg_of(&fr[2], "user_order", uo_all)["order_id"], m_id);
    let u = msg_of(&next_json(&mut only_m), "user_order", uo_m);
    assert_eq!((&u["order_id"], &u["ticker"]), (&m_id, &json!("KXP-M")));
    let fr = next_n(&mut orders_only, 2);
    assert_eq!(msg_of(&fr[0], "user_order", uo_only)["ticker"], "KXP-A");
    assert_eq!(msg_of(&fr[1], "user_order", uo_only)["ticker"], "KXP-M");
    for ws in [&mut only_m, &mut all, &mut orders_only, &mut public, &mut idle] {
        assert_quiet(ws, Duration::from_millis(100));
    }
    // add_markets widens the filtered subscription.
    send_ws(
        &mut only_m,
        json!({"id": 4, "cmd": "update_subscription", "params": {"sid": fill_m, "action": "add_markets", "market_tickers": ["KXP-A"]}}),
    );
    let ok = next_json(&mut only_m);
    assert_eq!((&ok["type"], &ok["msg"]["market_tickers"]), (&json!("ok"), &json!(["KXP-A", "KXP-M"])));
    assert!(ok.get("seq").is_none(), "{ok}");
    c.create(&order("KXP-A", "a-2", "bid", "1", "0.47", "fill_or_kill"));
    let f = msg_of(&next_json(&mut only_m), "fill", fill_m);
    assert_eq!((&f["client_order_id"], &f["market_ticker"]), (&json!("a-2"), &json!("KXP-A")));
    assert_quiet(&mut only_m, Duration::from_millis(100));
    assert_eq!(s.ws.stats().total_sent("fill"), 3);
}

#[test]
fn messages_before_subscribe_or_after_unsubscribe_are_lost() {
    let s = start();
    let mut ws = connect_ws(&s);
    let mut c = Http::connect(&s);
    c.create(&order("KXP-A", "early", "bid", "1", "0.45", "fill_or_kill"));
    assert_eq!(s.feed.published(), 2);
    // Give the session time to drain what it cannot deliver.
    std::thread::sleep(Duration::from_millis(60));
    let (fill_sid, uo_sid) = subscribe_private(&mut ws, None);
    assert_quiet(&mut ws, Duration::from_millis(100));
    c.create(&order("KXP-A", "late", "bid", "1", "0.45", "fill_or_kill"));
    let fr = next_n(&mut ws, 2);
    assert_eq!(msg_of(&fr[0], "fill", fill_sid)["client_order_id"], "late");
    assert_eq!(msg_of(&fr[1], "user_order", uo_sid)["client_order_id"], "late");
    send_ws(&mut ws, json!({"id": 5, "cmd": "unsubscribe", "params": {"sids": [fill_sid]}}));
    let un = next_json(&mut ws);
    assert_eq!((&un["type"], &un["sid"]), (&json!("unsubscribed"), &json!(fill_sid)));
    assert!(un.get("seq").is_none(), "{un}");
    c.create(&order("KXP-A", "after", "bid", "1", "0.45", "fill_or_kill"));
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!(u["client_order_id"], "after");
    assert_quiet(&mut ws, Duration::from_millis(100));
}

#[test]
fn drop_fault_loses_the_next_n_messages() {
    let s = start();
    let mut ws = connect_ws(&s);
    let (fill_sid, uo_sid) = subscribe_private(&mut ws, None);
    s.rest.set_faults(RestFaults::none().drop_private(2));
    let mut c = Http::connect(&s);
    // Two fills and a user_order: the fills are lost.
    let r = c.create(&order("KXP-A", "d-1", "bid", "12", "0.47", "fill_or_kill"));
    assert_eq!(r["fill_count"], "12.00");
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!((&u["client_order_id"], order_counts(&u)), (&json!("d-1"), strs("executed", "12.00", "12.00", "0.00")));
    assert_quiet(&mut ws, Duration::from_millis(100));
    let st = s.rest.stats();
    assert_eq!((st.private_dropped, st.private_published), (2, 1));
    assert_eq!(s.rest.faults().drop_private_next, 0);
    // The exchange applied everything: the order object is complete.
    assert_eq!(c.order(r["order_id"].as_str().unwrap())["fill_count_fp"], "12.00");
    // Delivery resumes.
    c.create(&order("KXP-A", "d-2", "bid", "1", "0.40", "good_till_canceled"));
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!(u["client_order_id"], "d-2");
    let _ = fill_sid;
}

#[test]
fn private_timing_after_or_delayed_behind_the_response() {
    let s = start();
    let mut ws = connect_ws(&s);
    let (_, uo_sid) = subscribe_private(&mut ws, None);
    let mut c = Http::connect(&s);
    s.rest.set_faults(RestFaults::none().private_timing(PrivateTiming::Delayed(Duration::from_millis(600))));
    let t = Instant::now();
    c.create(&order("KXP-A", "slow", "bid", "1", "0.30", "good_till_canceled"));
    assert!(t.elapsed() < Duration::from_millis(450), "the response was held back");
    assert_eq!(s.feed.published(), 0);
    assert_quiet(&mut ws, Duration::from_millis(150));
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!((&u["client_order_id"], &u["status"]), (&json!("slow"), &json!("resting")));
    assert!(t.elapsed() >= Duration::from_millis(600));

    s.rest.set_faults(RestFaults::none().private_timing(PrivateTiming::AfterResponse));
    c.create(&order("KXP-A", "after", "bid", "1", "0.31", "good_till_canceled"));
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!(u["client_order_id"], "after");
    assert_eq!(s.feed.published(), 2);
    assert_eq!(s.rest.stats().private_published, 2);
}

#[test]
fn private_messages_interleave_with_the_replay() {
    let s = start_with(|w| w.pacing = Pacing::Recorded { speed: 1.0 }, |_| {});
    let mut ws = connect_ws(&s);
    let sids = subscribe(&mut ws, 1, &["orderbook_delta", "fill", "user_orders"], Some(&["KXP-A"]));
    let snap = next_json(&mut ws);
    assert_eq!((&snap["type"], &snap["sid"], &snap["seq"]), (&json!("orderbook_snapshot"), &json!(sids[0]), &json!(1)));
    let t = Instant::now();
    let mut c = Http::connect(&s);
    c.create(&order("KXP-A", "mid", "bid", "2", "0.45", "fill_or_kill"));
    // Well before the recording's delta (1.5 s in).
    let fr = next_n(&mut ws, 2);
    assert!(t.elapsed() < Duration::from_millis(1_000), "{:?}", t.elapsed());
    assert_eq!(msg_of(&fr[0], "fill", sids[1])["count_fp"], "2.00");
    assert_eq!(msg_of(&fr[1], "user_order", sids[2])["status"], "executed");
    let d = next_json(&mut ws);
    assert_eq!(
        (&d["type"], &d["seq"], &d["msg"]["delta_fp"]),
        (&json!("orderbook_delta"), &json!(2), &json!("-10.00"))
    );
    // The WebSocket's counters: one data frame pair from the recording, the private ones apart.
    let st = s.ws.stats().connection(0).unwrap();
    assert_eq!((st.data_frames, st.sent("fill"), st.sent("user_order")), (2, 1, 1));
}

#[test]
fn servers_without_a_bus_stay_silent_and_tests_can_inject() {
    // Without `private` the channels are acknowledged and silent.
    let rec = recording();
    let mut wc = WsServerConfig::new(Arc::clone(&rec), api_key());
    wc.ping_interval = None;
    let ws_server = strike_sim::server::WsServer::start(wc).unwrap();
    let mut rc = RestServerConfig::new(rec, api_key(), START_BALANCE);
    rc.cert = Some(Arc::clone(ws_server.cert()));
    let rest_server = strike_sim::server::RestServer::start(rc).unwrap();
    assert!(rest_server.private_feed().is_none());
    let linked = LinkedServers { ws: ws_server, rest: rest_server, feed: Default::default() };
    let mut ws = connect_ws(&linked);
    subscribe_private(&mut ws, None);
    let mut c = Http::connect(&linked);
    c.create(&order("KXP-A", "x", "bid", "1", "0.45", "fill_or_kill"));
    assert_quiet(&mut ws, Duration::from_millis(100));
    assert_eq!(linked.rest.stats().private_published, 0);

    // With a bus, a test may publish messages of its own.
    let s = start();
    let mut ws = connect_ws(&s);
    let (_, uo_sid) = subscribe_private(&mut ws, Some(&["KXP-M"]));
    s.feed.publish(PrivateChannel::UserOrders, "KXP-A", r#"{"order_id":"skip"}"#.into());
    s.feed.publish(PrivateChannel::UserOrders, "KXP-M", r#"{"order_id":"x","status":"canceled"}"#.into());
    let v = next_json(&mut ws);
    assert_eq!(v, json!({"type": "user_order", "sid": uo_sid, "msg": {"order_id": "x", "status": "canceled"}}));
    assert!(s.rest.private_feed().is_some());
}

#[test]
fn expiry_and_batches_publish_user_orders() {
    let s = start();
    let mut ws = connect_ws(&s);
    let (fill_sid, uo_sid) = subscribe_private(&mut ws, None);
    let mut c = Http::connect(&s);
    // A batch: one resting bid, one taker that fills 2 @ 0.45, one refused item (no message).
    let body = json!({"orders": [
        order("KXP-A", "b-1", "bid", "4", "0.39", "good_till_canceled"),
        order("KXP-A", "b-2", "bid", "2", "0.45", "immediate_or_cancel"),
        order("KXP-A", "b-3", "bid", "1", "0.999", "good_till_canceled"),
    ]});
    let r = c.ok("POST", "/portfolio/events/orders/batched", Some(&body), 201);
    assert!(r["orders"][2]["error"].is_object(), "{r}");
    let fr = next_n(&mut ws, 3);
    let u1 = msg_of(&fr[0], "user_order", uo_sid);
    assert_eq!((&u1["client_order_id"], order_counts(&u1)), (&json!("b-1"), strs("resting", "4.00", "0.00", "4.00")));
    let f = msg_of(&fr[1], "fill", fill_sid);
    assert_eq!(
        (&f["client_order_id"], fill_fields(&f)),
        (&json!("b-2"), fill_of("0.4500", "2.00", "0.034700", true, "2.00"))
    );
    let u2 = msg_of(&fr[2], "user_order", uo_sid);
    assert_eq!((&u2["client_order_id"], order_counts(&u2)), (&json!("b-2"), strs("executed", "2.00", "2.00", "0.00")));
    // Batch cancel of the resting one.
    let id1 = r["orders"][0]["order_id"].clone();
    let x = c.ok(
        "DELETE",
        "/portfolio/events/orders/batched",
        Some(&json!({"orders": [{"order_id": id1, "exchange_index": 0}]})),
        200,
    );
    assert_eq!(x["orders"][0]["reduced_by"], "4.00");
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!((&u["order_id"], order_counts(&u)), (&id1, strs("canceled", "4.00", "0.00", "0.00")));

    // A GTC expiring in a second: cancelled by the first request after its expiration.
    // At least 200 ms ahead (the create must see it in the future), at most 1.2 s.
    let exp_s = (now_ms() + 1_200) / 1000;
    let mut body = order("KXP-A", "exp-1", "bid", "1", "0.30", "good_till_canceled");
    body["expiration_time"] = json!(exp_s);
    c.create(&body);
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!((&u["status"], &u["expiration_ts_ms"]), (&json!("resting"), &json!(exp_s * 1000)));
    std::thread::sleep(Duration::from_millis((exp_s * 1000 - now_ms()).max(0) as u64 + 20));
    c.ok("GET", "/portfolio/balance", None, 200);
    let u = msg_of(&next_json(&mut ws), "user_order", uo_sid);
    assert_eq!((&u["client_order_id"], order_counts(&u)), (&json!("exp-1"), strs("canceled", "1.00", "0.00", "0.00")));
    assert_eq!(u["expiration_ts_ms"], exp_s * 1000);
    assert_quiet(&mut ws, Duration::from_millis(100));
}
