//! The loopback Kalshi WebSocket server (`strike_sim::server`) against a plain blocking
//! tungstenite client over rustls that trusts only the server's generated certificate and signs
//! its upgrade with the test keys in `tests/fixtures/keys/` (ring: RSA-PSS-SHA256 from the PKCS#1
//! key, Ed25519 from PKCS#8).
//!
//! Served data: the prod capture `ws_prod_mlb_wnba_2026-08-07` (12 markets, 12 snapshots, 245
//! deltas, NO-price scale) and small hand-made recordings.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, RsaKeyPair, RSA_PSS_SHA256};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use strike_sdk::book::{Book, BookSide};
use strike_sdk::num::{Price, Qty};
use strike_sim::recording::{Frame, Header, MarketRecord, Recording, FORMAT_VERSION};
use strike_sim::server::stats::ConnEnd;
use strike_sim::server::ws::WS_PATH;
use strike_sim::server::{ApiKey, Faults, Pacing, WsServer, WsServerConfig};
use strike_sim::universe::UniverseData;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Bytes, Message, WebSocket};

type Client = WebSocket<StreamOwned<ClientConnection, TcpStream>>;

const KEY_ID: &str = "0b7f4c1e-test-key";
const N_SNAPSHOTS: usize = 12;
const N_DELTAS: usize = 245;
const N_DATA: usize = N_SNAPSHOTS + N_DELTAS;

fn keys() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys")
}

fn prod() -> Arc<Recording> {
    static REC: OnceLock<Arc<Recording>> = OnceLock::new();
    REC.get_or_init(|| {
        let p = strike_sim::data_dir().join("kalshi/ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json");
        assert!(p.exists(), "{} is missing: set STRIKE_DATA_DIR to the shared data directory", p.display());
        Arc::new(Recording::read(&p).unwrap())
    })
    .clone()
}

fn tickers(rec: &Recording) -> Vec<String> {
    rec.header.markets.iter().map(|m| m.ticker.clone()).collect()
}

enum Signer {
    Rsa(RsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Signer {
    fn rsa() -> Signer {
        let der = PrivatePkcs1KeyDer::from_pem_file(keys().join("test_rsa_pkcs1.pem")).unwrap();
        Signer::Rsa(RsaKeyPair::from_der(der.secret_pkcs1_der()).unwrap())
    }

    fn ed25519() -> Signer {
        let der = PrivatePkcs8KeyDer::from_pem_file(keys().join("test_ed25519_pkcs8.pem")).unwrap();
        Signer::Ed(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der()).unwrap())
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&RSA_PSS_SHA256, &SystemRandom::new(), msg, &mut sig).unwrap();
                sig
            }
            Signer::Ed(k) => k.sign(msg).as_ref().to_vec(),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The three signing headers for the upgrade, `ts_ms` signed over `path`.
fn signed(signer: &Signer, key_id: &str, ts_ms: i64, path: &str) -> Vec<(&'static str, String)> {
    let sig = signer.sign(format!("{ts_ms}GET{path}").as_bytes());
    vec![
        ("KALSHI-ACCESS-KEY", key_id.to_string()),
        ("KALSHI-ACCESS-TIMESTAMP", ts_ms.to_string()),
        ("KALSHI-ACCESS-SIGNATURE", base64::engine::general_purpose::STANDARD.encode(sig)),
    ]
}

fn connect_with(
    server: &WsServer,
    path: &str,
    headers: &[(&'static str, String)],
    cfg: Option<WebSocketConfig>,
) -> Result<Client, tungstenite::Error> {
    let sock = TcpStream::connect(server.addr()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The generated certificate is the client's only trust root.
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(server.cert().cert_der.clone())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn = ClientConnection::new(Arc::new(tls_cfg), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut req = format!("wss://localhost:{}{path}", server.addr().port()).into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    match tungstenite::client::client_with_config(req, StreamOwned::new(conn, sock), cfg) {
        Ok((ws, _)) => Ok(ws),
        Err(HandshakeError::Failure(e)) => Err(e),
        Err(HandshakeError::Interrupted(_)) => panic!("handshake interrupted"),
    }
}

fn connect(server: &WsServer, signer: &Signer) -> Client {
    connect_with(server, WS_PATH, &signed(signer, KEY_ID, now_ms(), WS_PATH), None).unwrap()
}

/// The 401/404 answer of a refused upgrade: `(status, body)`.
fn refused(r: Result<Client, tungstenite::Error>) -> (u16, Value) {
    match r {
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_deref().unwrap_or_default();
            (resp.status().as_u16(), serde_json::from_slice(body).unwrap_or(Value::Null))
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, got a connection"),
    }
}

fn rsa_key() -> ApiKey {
    ApiKey::from_pem_file(KEY_ID, &keys().join("test_rsa_public.pem")).unwrap()
}

fn start(rec: Arc<Recording>, faults: Faults, tweak: impl FnOnce(&mut WsServerConfig)) -> WsServer {
    let mut cfg = WsServerConfig::new(rec, rsa_key());
    cfg.faults = faults;
    tweak(&mut cfg);
    WsServer::start(cfg).unwrap()
}

fn send(ws: &mut Client, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

/// The next text frame (pings and pongs skipped), as text.
fn next_text(ws: &mut Client) -> String {
    loop {
        match ws.read().unwrap_or_else(|e| panic!("read: {e}")) {
            Message::Text(t) => return t.as_str().to_string(),
            Message::Ping(_) | Message::Pong(_) => {}
            m => panic!("unexpected {m:?}"),
        }
    }
}

fn next_json(ws: &mut Client) -> Value {
    let t = next_text(ws);
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
}

/// Sends a command and returns the next frame.
fn ask(ws: &mut Client, cmd: Value) -> Value {
    send(ws, cmd);
    next_json(ws)
}

/// Waits up to 5 s for `cond` (the server counts a frame just after writing it).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(5), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn is_data(v: &Value) -> bool {
    matches!(v["type"].as_str(), Some("orderbook_snapshot" | "orderbook_delta" | "trade"))
}

/// Asserts that nothing but pings arrives for `d`.
fn assert_quiet(ws: &mut Client, d: Duration) {
    ws.get_ref().sock.set_read_timeout(Some(d)).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(m) => panic!("expected silence, got {m:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                break
            }
            Err(e) => panic!("expected silence, got {e}"),
        }
    }
    ws.get_ref().sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
}

fn subscribe_book(ws: &mut Client, id: u64, tickers: &[String], use_yes_price: bool) -> u64 {
    send(
        ws,
        json!({"id": id, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": tickers, "use_yes_price": use_yes_price}}),
    );
    let ack = next_json(ws);
    assert_eq!(ack["type"], "subscribed", "{ack}");
    assert_eq!(ack["id"], id);
    assert_eq!(ack["msg"]["channel"], "orderbook_delta");
    ack["msg"]["sid"].as_u64().unwrap()
}

fn px(v: &Value) -> Price {
    Price::parse(v.as_str().unwrap()).unwrap()
}

fn qty(v: &Value) -> Qty {
    Qty::parse(v.as_str().unwrap()).unwrap()
}

/// Books built the way a client builds them: snapshot replaces, delta adds; NO levels on the
/// YES scale when `yes_scale`, else at NO prices.
struct Books {
    u: UniverseData,
    books: Vec<Book>,
}

impl Books {
    fn new(rec: &Recording) -> Books {
        let u = UniverseData::from_header(&rec.header).unwrap();
        let books = u.markets.iter().map(|m| Book::new(m.grid)).collect();
        Books { u, books }
    }

    fn of(rec: &Recording) -> Books {
        let mut b = Books::new(rec);
        for f in &rec.frames {
            b.apply(&serde_json::from_str(&f.text).unwrap(), rec.header.yes_price_scale);
        }
        b
    }

    fn idx(&self, ticker: &str) -> usize {
        self.u.id_of(ticker).unwrap_or_else(|| panic!("{ticker} not in the header")).0 as usize
    }

    /// The snapshot `v` as a book (not applied).
    fn snapshot_book(&self, v: &Value, yes_scale: bool) -> Book {
        let msg = &v["msg"];
        let side = |k: &str| -> Vec<(Price, Qty)> {
            msg.get(k)
                .map(|a| a.as_array().unwrap().iter().map(|l| (px(&l[0]), qty(&l[1]))).collect())
                .unwrap_or_default()
        };
        let asks: Vec<(Price, Qty)> = side("no_dollars_fp")
            .into_iter()
            .map(|(p, q)| if yes_scale { (p, q) } else { (p.complement(), q) })
            .collect();
        let mut b = Book::new(*self.books[self.idx(msg["market_ticker"].as_str().unwrap())].grid());
        b.replace(side("yes_dollars_fp"), asks).unwrap();
        b
    }

    fn apply(&mut self, v: &Value, yes_scale: bool) {
        let msg = &v["msg"];
        match v["type"].as_str().unwrap() {
            "orderbook_snapshot" => {
                let i = self.idx(msg["market_ticker"].as_str().unwrap());
                self.books[i] = self.snapshot_book(v, yes_scale);
            }
            "orderbook_delta" => {
                let i = self.idx(msg["market_ticker"].as_str().unwrap());
                let p = px(&msg["price_dollars"]);
                let (side, p) = match msg["side"].as_str().unwrap() {
                    "yes" => (BookSide::Bid, p),
                    "no" if yes_scale => (BookSide::Ask, p),
                    "no" => (BookSide::Ask, p.complement()),
                    s => panic!("side {s}"),
                };
                self.books[i].apply_delta(side, p, qty(&msg["delta_fp"])).unwrap_or_else(|e| panic!("{v}: {e}"));
            }
            _ => {}
        }
    }
}

/// A book's `(bids, asks)` levels, best first.
type Levels = (Vec<(Price, Qty)>, Vec<(Price, Qty)>);

fn levels(book: &Book) -> Levels {
    let side = |s: BookSide| {
        let mut v = Vec::new();
        book.for_each_level(s, |p, q| {
            v.push((p, q));
            true
        });
        v
    };
    (side(BookSide::Bid), side(BookSide::Ask))
}

fn assert_same_books(got: &Books, want: &Books) {
    for (i, (g, w)) in got.books.iter().zip(&want.books).enumerate() {
        assert_eq!(levels(g), levels(w), "market {}", got.u.markets[i].ticker);
    }
}

/// Reads `n` data frames, checking each is on `sid`; returns them with the non-data frames seen.
fn read_data(ws: &mut Client, n: usize) -> (Vec<Value>, Vec<Value>) {
    let (mut data, mut other) = (Vec::new(), Vec::new());
    while data.len() < n {
        let v = next_json(ws);
        if is_data(&v) {
            data.push(v);
        } else {
            other.push(v);
        }
    }
    (data, other)
}

fn count(frames: &[Value], ty: &str) -> usize {
    frames.iter().filter(|v| v["type"] == ty).count()
}

fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().filter_map(|v| v["seq"].as_u64()).collect()
}

/// A full session on the prod capture: 12 snapshots then 245 deltas on one sid, seq 1..=257,
/// and the books they build equal the recording's own.
fn full_session(server: &WsServer, use_yes_price: bool) -> (Client, Books) {
    let rec = prod();
    let mut ws = connect(server, &Signer::rsa());
    let sid = subscribe_book(&mut ws, 1, &tickers(&rec), use_yes_price);
    assert_eq!(sid, 1);
    let (data, other) = read_data(&mut ws, N_DATA);
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(count(&data, "orderbook_snapshot"), N_SNAPSHOTS);
    assert_eq!(count(&data, "orderbook_delta"), N_DELTAS);
    assert!(data.iter().all(|v| v["sid"] == 1));
    assert_eq!(seqs(&data), (1..=N_DATA as u64).collect::<Vec<_>>());
    let mut books = Books::new(&rec);
    for v in &data {
        books.apply(v, use_yes_price);
    }
    assert_same_books(&books, &Books::of(&rec));
    (ws, books)
}

#[test]
fn handshake_accepts_good_signatures_and_refuses_bad_ones_with_401_reasons() {
    let server = start(prod(), Faults::none(), |_| {});
    let rsa = Signer::rsa();
    let good = connect_with(&server, WS_PATH, &signed(&rsa, KEY_ID, now_ms(), WS_PATH), None);
    assert!(good.is_ok(), "{:?}", good.err());

    let mut tampered = signed(&rsa, KEY_ID, now_ms(), WS_PATH);
    let mut sig = base64::engine::general_purpose::STANDARD.decode(&tampered[2].1).unwrap();
    sig[10] ^= 1;
    tampered[2].1 = base64::engine::general_purpose::STANDARD.encode(sig);
    let (status, body) = refused(connect_with(&server, WS_PATH, &tampered, None));
    assert_eq!(status, 401);
    assert_eq!(body["code"], "invalid_signature", "{body}");

    let (status, body) = refused(connect_with(&server, WS_PATH, &signed(&rsa, "other-key", now_ms(), WS_PATH), None));
    assert_eq!((status, body["code"].as_str()), (401, Some("unknown_key")), "{body}");

    let stale = signed(&rsa, KEY_ID, now_ms() - 31_000, WS_PATH);
    let (status, body) = refused(connect_with(&server, WS_PATH, &stale, None));
    assert_eq!((status, body["code"].as_str()), (401, Some("timestamp_out_of_window")), "{body}");

    let mut missing = signed(&rsa, KEY_ID, now_ms(), WS_PATH);
    missing.pop();
    let (status, body) = refused(connect_with(&server, WS_PATH, &missing, None));
    assert_eq!((status, body["code"].as_str()), (401, Some("missing_header")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("KALSHI-ACCESS-SIGNATURE"), "{body}");

    // Signed over another path (e.g. the REST prefix): does not verify.
    let other_path = signed(&rsa, KEY_ID, now_ms(), "/trade-api/v2");
    let (status, body) = refused(connect_with(&server, WS_PATH, &other_path, None));
    assert_eq!((status, body["code"].as_str()), (401, Some("invalid_signature")), "{body}");

    let (status, _) =
        refused(connect_with(&server, "/trade-api/ws/v1", &signed(&rsa, KEY_ID, now_ms(), "/trade-api/ws/v1"), None));
    assert_eq!(status, 404);

    // Ed25519 keys work the same way; an RSA signature does not verify against one.
    let mut cfg =
        WsServerConfig::new(prod(), ApiKey::from_pem_file(KEY_ID, &keys().join("test_ed25519_public.pem")).unwrap());
    cfg.ping_interval = None;
    let ed_server = WsServer::start(cfg).unwrap();
    let mut ws = connect(&ed_server, &Signer::ed25519());
    send(&mut ws, json!({"id": 1, "cmd": "list_subscriptions"}));
    assert_eq!(next_json(&mut ws), json!({"id": 1, "type": "ok", "msg": []}));
    let (status, body) = refused(connect_with(&ed_server, WS_PATH, &signed(&rsa, KEY_ID, now_ms(), WS_PATH), None));
    assert_eq!((status, body["code"].as_str()), (401, Some("invalid_signature")), "{body}");

    wait_for("6 rejections", || server.stats().rejected().len() == 6);
    let rejected = server.stats().rejected();
    assert!(rejected[0].contains("invalid_signature"), "{rejected:?}");
    assert_eq!(server.stats().connections().len(), 1);
    assert_eq!(ed_server.stats().connections().len(), 1);
}

#[test]
fn orderbook_stream_no_price_scale_matches_the_recording() {
    let server = start(prod(), Faults::none(), |_| {});
    let (mut ws, _) = full_session(&server, false);
    // The recording is exhausted: the connection stays open and quiet.
    assert_quiet(&mut ws, Duration::from_millis(300));
    send(&mut ws, json!({"id": 9, "cmd": "list_subscriptions"}));
    assert_eq!(next_json(&mut ws), json!({"id": 9, "type": "ok", "msg": [{"channel": "orderbook_delta", "sid": 1}]}));
    let c = server.stats().connection(0).unwrap();
    assert_eq!((c.sent("orderbook_snapshot"), c.sent("orderbook_delta"), c.sent("subscribed")), (12, 245, 1));
    assert_eq!((c.data_frames, c.commands, c.end.clone()), (257, 2, None));
    assert!(c.replay_done, "every event served and flushed");
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    wait_for("the session to end", || server.stats().connection(0).unwrap().end.is_some());
    assert_eq!(server.stats().connection(0).unwrap().end, Some(ConnEnd::ClientClosed));
}

#[test]
fn orderbook_stream_yes_price_scale_matches_the_recording() {
    let server = start(prod(), Faults::none(), |_| {});
    let (_ws, _) = full_session(&server, true);
}

#[test]
fn get_snapshot_mid_stream_is_the_current_book_at_the_next_seq() {
    // The 56 s capture replayed in about one second.
    let server = start(prod(), Faults::none(), |c| c.pacing = Pacing::Recorded { speed: 56.0 });
    let rec = prod();
    let all = tickers(&rec);
    let mut ws = connect(&server, &Signer::rsa());
    subscribe_book(&mut ws, 1, &all, false);
    let mut books = Books::new(&rec);
    let mut data = Vec::new();
    let mut asked = false;
    let mut checked = 0;
    let t0 = Instant::now();
    while data.len() < N_DATA + 2 {
        let v = next_json(&mut ws);
        assert!(is_data(&v), "{v}");
        let seq = v["seq"].as_u64().unwrap();
        assert_eq!(seq, data.len() as u64 + 1, "{v}");
        if seq > N_SNAPSHOTS as u64 && v["type"] == "orderbook_snapshot" {
            // The answer to get_snapshot: exactly the book the deltas so far have built.
            let i = books.idx(v["msg"]["market_ticker"].as_str().unwrap());
            assert_eq!(levels(&books.snapshot_book(&v, false)), levels(&books.books[i]), "{v}");
            checked += 1;
        }
        books.apply(&v, false);
        data.push(v);
        if data.len() == 100 && !asked {
            send(
                &mut ws,
                json!({"id": 2, "cmd": "update_subscription", "params": {"sids": [1], "action": "get_snapshot", "market_tickers": [all[0], all[5]]}}),
            );
            asked = true;
        }
    }
    assert!(t0.elapsed() > Duration::from_millis(500), "paced replay took only {:?}", t0.elapsed());
    assert_eq!(checked, 2);
    assert_eq!(count(&data, "orderbook_snapshot"), N_SNAPSHOTS + 2);
    // The get_snapshot answer landed mid-stream, not after the recording.
    let last_snap = data.iter().rposition(|v| v["type"] == "orderbook_snapshot").unwrap();
    assert!(last_snap < N_DATA, "snapshot at {last_snap}");
    assert_same_books(&books, &Books::of(&rec));
    assert_quiet(&mut ws, Duration::from_millis(200));
}

#[test]
fn add_delete_list_unsubscribe_acks() {
    let server = start(prod(), Faults::none(), |c| c.ping_interval = None);
    let rec = prod();
    let all = tickers(&rec);
    let last = all.last().unwrap().clone();
    let mut ws = connect(&server, &Signer::rsa());
    subscribe_book(&mut ws, 1, &all[..11], true);
    let want = Books::of(&rec);
    let n = want.u.markets.len();
    assert_eq!(n, 12);
    // 11 snapshots and the deltas of those 11 markets.
    let n_last = rec
        .frames
        .iter()
        .map(|f| serde_json::from_str::<Value>(&f.text).unwrap())
        .filter(|v| v["type"] == "orderbook_delta" && v["msg"]["market_ticker"] == last.as_str())
        .count();
    assert!(n_last > 0);
    let (data, _) = read_data(&mut ws, N_DATA - 1 - n_last);
    assert!(data.iter().all(|v| v["msg"]["market_ticker"] != last.as_str()));
    let next = data.len() as u64 + 1;
    assert_quiet(&mut ws, Duration::from_millis(200));

    send(
        &mut ws,
        json!({"id": 2, "cmd": "update_subscription", "params": {"sid": 1, "action": "add_markets", "market_tickers": [last]}}),
    );
    let ok = next_json(&mut ws);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(ok, json!({"id": 2, "sid": 1, "seq": next, "type": "ok", "msg": {"market_tickers": sorted}}));
    // The added market's current (final) book, YES scale as subscribed, at the next seq.
    let snap = next_json(&mut ws);
    assert_eq!((snap["type"].as_str(), snap["seq"].as_u64()), (Some("orderbook_snapshot"), Some(next + 1)), "{snap}");
    assert_eq!(snap["msg"]["market_ticker"], last.as_str());
    assert!(snap["msg"]["market_id"].is_string(), "{snap}");
    let b = Books::new(&rec);
    assert_eq!(levels(&b.snapshot_book(&snap, true)), levels(&want.books[want.idx(&last)]));

    send(
        &mut ws,
        json!({"id": 3, "cmd": "update_subscription", "params": {"sids": [1], "action": "delete_markets", "market_tickers": [all[0]]}}),
    );
    let ok = next_json(&mut ws);
    assert_eq!((ok["type"].as_str(), ok["seq"].as_u64()), (Some("ok"), Some(next + 2)));
    assert_eq!(ok["msg"]["market_tickers"].as_array().unwrap().len(), 11);
    assert!(!ok["msg"]["market_tickers"].as_array().unwrap().contains(&json!(all[0])));

    send(&mut ws, json!({"id": 4, "cmd": "subscribe", "params": {"channels": ["ticker", "trade"]}}));
    assert_eq!(next_json(&mut ws), json!({"id": 4, "type": "subscribed", "msg": {"channel": "ticker", "sid": 2}}));
    assert_eq!(next_json(&mut ws), json!({"id": 4, "type": "subscribed", "msg": {"channel": "trade", "sid": 3}}));
    send(&mut ws, json!({"id": 5, "cmd": "list_subscriptions"}));
    assert_eq!(
        next_json(&mut ws),
        json!({"id": 5, "type": "ok", "msg": [
            {"channel": "orderbook_delta", "sid": 1}, {"channel": "ticker", "sid": 2}, {"channel": "trade", "sid": 3}]})
    );
    send(&mut ws, json!({"id": 6, "cmd": "unsubscribe", "params": {"sids": [1, 2, 42]}}));
    assert_eq!(next_json(&mut ws), json!({"id": 6, "sid": 1, "seq": next + 3, "type": "unsubscribed"}));
    assert_eq!(next_json(&mut ws), json!({"id": 6, "sid": 2, "type": "unsubscribed"}));
    assert_eq!(
        next_json(&mut ws),
        json!({"id": 6, "type": "error", "msg": {"code": 7, "msg": "Unknown subscription ID"}})
    );
    send(&mut ws, json!({"id": 7, "cmd": "list_subscriptions"}));
    assert_eq!(next_json(&mut ws), json!({"id": 7, "type": "ok", "msg": [{"channel": "trade", "sid": 3}]}));
    assert_quiet(&mut ws, Duration::from_millis(100));
}

#[test]
fn skip_seq_fault_gives_exactly_one_gap_and_get_snapshot_repairs_it() {
    let server = start(prod(), Faults::none().skip_seq(100), |c| c.ping_interval = None);
    let rec = prod();
    let all = tickers(&rec);
    let mut ws = connect(&server, &Signer::rsa());
    subscribe_book(&mut ws, 1, &all, false);
    let (data, _) = read_data(&mut ws, N_DATA - 1);
    let s = seqs(&data);
    let gaps: Vec<(u64, u64)> = s.windows(2).filter(|w| w[1] != w[0] + 1).map(|w| (w[0], w[1])).collect();
    assert_eq!(gaps, [(99, 101)]);
    assert_eq!((s[0], *s.last().unwrap()), (1, N_DATA as u64));
    assert_quiet(&mut ws, Duration::from_millis(200));
    let mut books = Books::new(&rec);
    for v in &data {
        books.apply(v, false);
    }
    let want = Books::of(&rec);
    let wrong: Vec<usize> = (0..all.len()).filter(|&i| levels(&books.books[i]) != levels(&want.books[i])).collect();
    assert_eq!(wrong.len(), 1, "the skipped delta spoils exactly one market");
    // Resnapshot every market of the sid: the server's books include the skipped delta.
    send(
        &mut ws,
        json!({"id": 2, "cmd": "update_subscription", "params": {"sids": [1], "action": "get_snapshot", "market_tickers": all}}),
    );
    let (snaps, _) = read_data(&mut ws, all.len());
    assert_eq!(seqs(&snaps), (N_DATA as u64 + 1..=(N_DATA + all.len()) as u64).collect::<Vec<_>>());
    for v in &snaps {
        books.apply(v, false);
    }
    assert_same_books(&books, &want);

    // The fault is the first session's only: a second session has no gap.
    let mut ws2 = connect(&server, &Signer::rsa());
    subscribe_book(&mut ws2, 1, &all, false);
    let (data2, _) = read_data(&mut ws2, N_DATA);
    assert_eq!(seqs(&data2), (1..=N_DATA as u64).collect::<Vec<_>>());
}

#[test]
fn close_after_fault_drops_the_first_session_and_a_reconnect_gets_a_clean_one() {
    let server = start(prod(), Faults::none().close_after(50), |c| c.ping_interval = None);
    let rec = prod();
    let mut ws = connect(&server, &Signer::rsa());
    subscribe_book(&mut ws, 1, &tickers(&rec), false);
    let (data, _) = read_data(&mut ws, 50);
    assert_eq!(seqs(&data), (1..=50).collect::<Vec<_>>());
    // Abrupt: no Close frame, just the end of the stream.
    match ws.read() {
        Ok(m) => panic!("expected the connection to drop, got {m:?}"),
        Err(tungstenite::Error::Io(e)) => {
            assert!(matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset), "{e}")
        }
        Err(tungstenite::Error::Protocol(p)) => assert!(p.to_string().contains("without closing handshake"), "{p}"),
        Err(e) => panic!("unexpected error {e}"),
    }
    let (_ws2, _) = full_session(&server, false);
    let c = server.stats().connections();
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].data_frames, c[0].end.clone()), (50, Some(ConnEnd::FaultClose)));
    assert!(!c[0].replay_done, "dropped after 50 of 257 frames");
    assert_eq!((c[1].data_frames, c[1].sent("orderbook_snapshot")), (257, 12));
}

#[test]
fn garbled_and_oversized_frames_are_sent_when_scripted() {
    const BIG: usize = 2 * 1024 * 1024;
    let faults = Faults::none().garbled_after(10).oversized_after(20, BIG);
    let server = start(prod(), faults.clone(), |c| c.ping_interval = None);
    let rec = prod();
    let mut ws = connect(&server, &Signer::rsa());
    subscribe_book(&mut ws, 1, &tickers(&rec), false);
    let mut data = 0usize;
    let mut odd = Vec::new();
    while data < N_DATA {
        let t = next_text(&mut ws);
        match serde_json::from_str::<Value>(&t) {
            Ok(v) if is_data(&v) => {
                data += 1;
                assert_eq!(v["seq"].as_u64(), Some(data as u64));
            }
            Ok(v) => {
                assert_eq!(v["type"], "strike_sim_padding");
                odd.push((data, "oversized", t.len()));
            }
            Err(_) => odd.push((data, "garbled", t.len())),
        }
    }
    assert_eq!(odd, [(10, "garbled", strike_sim::server::faults::GARBLED_FRAME.len()), (20, "oversized", BIG)]);
    wait_for("the last frame's count", || server.stats().connection(0).unwrap().data_frames == 257);
    let c = server.stats().connection(0).unwrap();
    assert_eq!((c.sent("garbled"), c.sent("oversized"), c.data_frames), (1, 1, 257));

    // A client with a 1 MiB frame limit fails on the oversized frame.
    let server = start(prod(), faults, |c| c.ping_interval = None);
    let small = WebSocketConfig::default().max_frame_size(Some(1 << 20)).max_message_size(Some(1 << 20));
    let mut ws =
        connect_with(&server, WS_PATH, &signed(&Signer::rsa(), KEY_ID, now_ms(), WS_PATH), Some(small)).unwrap();
    subscribe_book(&mut ws, 1, &tickers(&rec), false);
    let mut texts = 0;
    let err = loop {
        match ws.read() {
            Ok(Message::Text(_)) => texts += 1,
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(matches!(err, tungstenite::Error::Capacity(_)), "{err}");
    assert_eq!(texts, 21, "20 data frames and the garbled one before the oversized frame");
}

#[test]
fn command_errors_carry_kalshi_codes() {
    let server = start(prod(), Faults::none(), |c| c.ping_interval = None);
    let mut ws = connect(&server, &Signer::rsa());
    let e = ask(&mut ws, json!({"id": 1, "cmd": "frobnicate"}));
    assert_eq!(e, json!({"id": 1, "type": "error", "msg": {"code": 5, "msg": "Unknown command"}}));
    let e = ask(&mut ws, json!({"id": 2, "cmd": "subscribe", "params": {"channels": ["ticker_v2"]}}));
    assert_eq!(e, json!({"id": 2, "type": "error", "msg": {"code": 8, "msg": "Unknown channel name"}}));
    let e = ask(
        &mut ws,
        json!({"id": 3, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": ["KXNOPE-1"]}}),
    );
    assert_eq!(
        e,
        json!({"id": 3, "type": "error", "msg": {"code": 16, "msg": "Market not found", "market_ticker": "KXNOPE-1"}})
    );
    assert_eq!(ask(&mut ws, json!({"id": 4, "cmd": "subscribe"}))["msg"]["code"], 2);
    assert_eq!(ask(&mut ws, json!({"id": 5, "cmd": "subscribe", "params": {"channels": []}}))["msg"]["code"], 3);
    assert_eq!(
        ask(&mut ws, json!({"id": 6, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}}))["msg"]["code"],
        14
    );
    assert_eq!(ask(&mut ws, json!({"id": 7, "cmd": "unsubscribe", "params": {}}))["msg"]["code"], 4);
    let e = ask(
        &mut ws,
        json!({"id": 8, "cmd": "update_subscription", "params": {"sid": 9, "action": "get_snapshot", "market_tickers": ["X"]}}),
    );
    assert_eq!(e["msg"]["code"], 7);
    let e = ask(
        &mut ws,
        json!({"id": 9, "cmd": "update_subscription", "params": {"sids": [1, 2], "action": "add_markets"}}),
    );
    assert_eq!(e["msg"]["code"], 12);
    send(&mut ws, json!("not a command"));
    assert_eq!(next_json(&mut ws), json!({"type": "error", "msg": {"code": 1, "msg": "Unable to process message"}}));
    ws.send(Message::text("{oops")).unwrap();
    assert_eq!(next_json(&mut ws)["msg"]["code"], 1);
    // Errors consume no sid; a silent channel is acknowledged and stays silent.
    let ok = ask(&mut ws, json!({"id": 10, "cmd": "subscribe", "params": {"channels": ["market_lifecycle_v2"]}}));
    assert_eq!(ok, json!({"id": 10, "type": "subscribed", "msg": {"channel": "market_lifecycle_v2", "sid": 1}}));
    let e = ask(
        &mut ws,
        json!({"id": 11, "cmd": "update_subscription", "params": {"sid": 1, "action": "get_snapshot", "market_tickers": [tickers(&prod())[0]]}}),
    );
    assert_eq!(e["msg"]["code"], 13);
    let e = ask(&mut ws, json!({"id": 12, "cmd": "update_subscription", "params": {"sid": 1, "action": "replace"}}));
    assert_eq!(e["msg"]["code"], 13);
    assert_quiet(&mut ws, Duration::from_millis(200));
    let c = server.stats().connection(0).unwrap();
    assert_eq!((c.sent("error"), c.sent("subscribed"), c.data_frames), (13, 1, 0));
}

#[test]
fn heartbeat_pings_and_pongs() {
    let server = start(prod(), Faults::none(), |c| c.ping_interval = Some(Duration::from_millis(50)));
    let mut ws = connect(&server, &Signer::rsa());
    let t0 = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        match ws.read().unwrap() {
            Message::Ping(p) => {
                assert_eq!(&p[..], b"heartbeat");
                pings += 1;
            }
            m => panic!("unexpected {m:?}"),
        }
    }
    assert!(t0.elapsed() >= Duration::from_millis(100), "{:?}", t0.elapsed());
    ws.send(Message::Ping(Bytes::from_static(b"are you there"))).unwrap();
    let pong = loop {
        match ws.read().unwrap() {
            Message::Pong(p) => break p,
            Message::Ping(_) => {}
            m => panic!("unexpected {m:?}"),
        }
    };
    assert_eq!(&pong[..], b"are you there");
    let c = server.stats().connection(0).unwrap();
    assert!(c.sent("ping") >= 3, "{c:?}");
    assert_eq!((c.pings_received, c.sent("pong")), (1, 1));
}

/// Two markets on the YES scale with trades.
fn small_recording() -> Recording {
    let frames = [
        r#"{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"A","yes_dollars_fp":[["0.4000","10.00"]],"no_dollars_fp":[["0.6000","5.00"]]}}"#,
        r#"{"type":"orderbook_snapshot","sid":1,"seq":2,"msg":{"market_ticker":"B","yes_dollars_fp":[["0.2000","1.00"]]}}"#,
        r#"{"type":"trade","sid":2,"msg":{"trade_id":"t1","market_ticker":"A","yes_price_dollars":"0.6000","count_fp":"2.00","taker_outcome_side":"yes","ts_ms":5}}"#,
        r#"{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"A","price_dollars":"0.6000","delta_fp":"-2.00","side":"no","ts_ms":5}}"#,
        r#"{"type":"trade","sid":2,"msg":{"trade_id":"t2","market_ticker":"B","yes_price_dollars":"0.2000","count_fp":"1.00","taker_outcome_side":"no","ts_ms":6}}"#,
        r#"{"type":"orderbook_delta","sid":1,"seq":4,"msg":{"market_ticker":"B","price_dollars":"0.2000","delta_fp":"-1.00","side":"yes","ts_ms":6}}"#,
    ];
    let market = |t: &str| MarketRecord { ticker: t.into(), ..Default::default() };
    Recording {
        header: Header {
            strike_recording: FORMAT_VERSION,
            source: "hand-made".into(),
            yes_price_scale: true,
            markets: vec![market("A"), market("B")],
            events: vec![],
        },
        frames: frames
            .iter()
            .enumerate()
            .map(|(i, t)| Frame { recv_ns: 1_000_000 * (i as u64 + 1), text: t.to_string() })
            .collect(),
    }
}

#[test]
fn trades_and_price_scale_conversion_from_a_yes_scale_recording() {
    let server = start(Arc::new(small_recording()), Faults::none(), |c| c.ping_interval = None);
    let mut ws = connect(&server, &Signer::rsa());
    send(
        &mut ws,
        json!({"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta", "trade"], "market_tickers": ["A"]}}),
    );
    assert_eq!(next_json(&mut ws)["msg"], json!({"channel": "orderbook_delta", "sid": 1}));
    assert_eq!(next_json(&mut ws)["msg"], json!({"channel": "trade", "sid": 2}));
    let got: Vec<String> = (0..3).map(|_| next_text(&mut ws)).collect();
    assert_eq!(
        got,
        [
            // NO levels at NO prices (use_yes_price absent = false): YES-scale 0.60 is NO 0.40.
            r#"{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"A","yes_dollars_fp":[["0.4000","10.00"]],"no_dollars_fp":[["0.4000","5.00"]]}}"#,
            r#"{"type":"trade","sid":2,"msg":{"trade_id":"t1","market_ticker":"A","yes_price_dollars":"0.6000","count_fp":"2.00","taker_outcome_side":"yes","ts_ms":5}}"#,
            r#"{"type":"orderbook_delta","sid":1,"seq":2,"msg":{"market_ticker":"A","price_dollars":"0.4000","delta_fp":"-2.00","side":"no","ts_ms":5}}"#,
        ]
    );
    assert_quiet(&mut ws, Duration::from_millis(200));

    // All markets' trades without a filter; YES scale kept for use_yes_price: true.
    let mut ws = connect(&server, &Signer::rsa());
    send(&mut ws, json!({"id": 1, "cmd": "subscribe", "params": {"channels": ["trade"]}}));
    assert_eq!(next_json(&mut ws)["msg"]["sid"], 1);
    let trades: Vec<Value> = (0..2).map(|_| next_json(&mut ws)).collect();
    assert_eq!(trades.iter().map(|t| t["msg"]["trade_id"].as_str().unwrap()).collect::<Vec<_>>(), ["t1", "t2"]);
    assert!(trades.iter().all(|t| t["sid"] == 1 && t.get("seq").is_none()));
    subscribe_book(&mut ws, 2, &["A".to_string()], true);
    // The replay is over: A's current book, NO side on the YES scale.
    let snap = next_text(&mut ws);
    assert_eq!(
        snap,
        r#"{"type":"orderbook_snapshot","sid":2,"seq":1,"msg":{"market_ticker":"A","yes_dollars_fp":[["0.4000","10.00"]],"no_dollars_fp":[["0.6000","3.00"]]}}"#
    );
}

#[test]
fn stop_closes_sessions_and_joins_threads() {
    let mut server = start(prod(), Faults::none(), |c| c.pacing = Pacing::Recorded { speed: 1.0 });
    let rec = prod();
    let mut ws = connect(&server, &Signer::rsa());
    subscribe_book(&mut ws, 1, &tickers(&rec), false);
    let _ = read_data(&mut ws, 1);
    let t = Instant::now();
    server.stop();
    assert!(t.elapsed() < Duration::from_secs(3), "stop took {:?}", t.elapsed());
    let end = loop {
        match ws.read() {
            Ok(Message::Close(f)) => break format!("close {:?}", f.map(|f| f.code)),
            Ok(_) => {}
            Err(e) => break format!("error {e}"),
        }
    };
    assert!(end.starts_with("close Some(Away)"), "{end}");
    assert_eq!(server.stats().connection(0).unwrap().end, Some(ConnEnd::ServerStopped));
    server.stop();
    assert!(TcpStream::connect(server.addr()).is_err(), "the listener is closed");
}

#[test]
fn frame_delay_spaces_data_frames() {
    let delay = Duration::from_millis(20);
    let server = start(Arc::new(small_recording()), Faults::none().delay_each(delay), |c| c.ping_interval = None);
    let mut ws = connect(&server, &Signer::rsa());
    let t0 = Instant::now();
    send(
        &mut ws,
        json!({"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta", "trade"], "market_tickers": ["A", "B"]}}),
    );
    let (data, acks) = read_data(&mut ws, 6);
    assert_eq!(acks.len(), 2);
    assert_eq!(
        data.iter().map(|v| v["type"].as_str().unwrap()).collect::<Vec<_>>(),
        ["orderbook_snapshot", "orderbook_snapshot", "trade", "orderbook_delta", "trade", "orderbook_delta"]
    );
    assert!(t0.elapsed() >= delay * 6, "{:?}", t0.elapsed());
}

#[test]
fn start_refuses_bad_config_and_malformed_recordings() {
    let mut cfg = WsServerConfig::new(prod(), rsa_key());
    cfg.pacing = Pacing::Recorded { speed: 0.0 };
    assert_eq!(WsServer::start(cfg).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    let mut rec = small_recording();
    rec.frames[3].text = r#"{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"A","price_dollars":"abc","delta_fp":"1.00","side":"no"}}"#.into();
    let err = WsServer::start(WsServerConfig::new(Arc::new(rec), rsa_key())).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("recording frame 3"), "{err}");
}
