//! End to end: the real `engine` binary with the real FLB plugin trades against the simulator's
//! linked servers (`strike_sim::server::LinkedServers`: TLS WebSocket market data replaying a
//! recording, TLS REST V2 order entry whose matcher follows that replay, the private `fill` /
//! `user_order` channels between them) on loopback, with `--live --yes`. What the engine
//! journaled must be what the exchange did, fill for fill, also when faults are injected while
//! orders are live; a delayed feed must leave the engine with the books of a clean run.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use strike_sim::recording::Recording;
use strike_sim::server::{
    ApiKey, ExchangeFill, Faults, LinkedServers, Pacing, RestFaults, RestServerConfig, WsServer, WsServerConfig,
};
use strike_tests::*;

/// The demo-exchange session: 5 markets, 5 snapshots and 2,885 deltas over about 5 minutes.
fn demo() -> PathBuf {
    data("ws_demo_mm_session_2026-07-01/session.jsonl.gz")
}

fn api() -> ApiKey {
    ApiKey::from_pem_file("test-key-id", &fixture_key("test_ed25519_public.pem")).unwrap()
}

/// The shipped engine and risk configuration in `dir`, with FLB's `flb.toml` changed by `edit`;
/// returns the `--config` path.
fn config(dir: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::create_dir_all(dir.join("strategies")).unwrap();
    for f in ["engine.toml", "risk.toml"] {
        std::fs::copy(repo.join("config").join(f), dir.join(f)).unwrap();
    }
    let flb = std::fs::read_to_string(repo.join("config/strategies/flb.toml")).unwrap();
    std::fs::write(dir.join("strategies/flb.toml"), edit(flb)).unwrap();
    dir.join("engine.toml")
}

/// FLB with the longshot trigger raised from 0.10 to 0.20: with the shipped settings it never
/// trades the demo session (no YES ask at 0.90 or above, no YES bid at 0.10 or below on its
/// five markets). At 0.20 the KXNEXTTEAMNBA-26LJAM-MIA longshot (YES bid 0.16, calibrated win
/// probability 0.13) is worth buying NO on: 0.87 − 0.84 − fees > `min_ev`.
fn trading_flb(flb: String) -> String {
    assert!(flb.contains("longshot_threshold = \"0.10\""), "the shipped flb.toml states its trigger");
    flb.replace("longshot_threshold = \"0.10\"", "longshot_threshold = \"0.20\"")
}

/// One engine run against `srv`: `--live --yes` over TLS with `--journal`, for `seconds`.
struct Run {
    report: serde_json::Value,
    journal: PathBuf,
}

fn run_live(dir: &Path, srv: &LinkedServers, markets: &Path, seconds: u64) -> Run {
    let key = private_key_copy(dir, "test_ed25519_pkcs8.pem");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &srv.ws.cert().cert_pem).unwrap();
    let cfg = config(dir, trading_flb);
    let (json, journal) = (dir.join("report.json"), dir.join("journal.sqlite"));
    let (ws, rest) = (srv.ws.url(), srv.rest.url());
    let venue = LiveVenue { ws: &ws, rest: &rest, ca: &ca, key: &key, markets };
    let mut args: Vec<OsString> =
        vec!["--strategy".into(), plugin("flb").into_os_string(), "--config".into(), cfg.into_os_string()];
    args.extend(venue.args(seconds, &journal, &json));
    let out = std::process::Command::new(engine()).args(&args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    Run { report: report(&json), journal }
}

/// A fill reduced to what both sides state: `(ticker, yes price, size, fee, maker)`.
type FillKey = (String, i64, i64, i64, bool);

/// The engine's journaled fills, sorted.
fn journaled(journal: &Path) -> Vec<FillKey> {
    let mut v: Vec<FillKey> = strike_engine::journal::read_fills(journal)
        .unwrap()
        .into_iter()
        .map(|f| {
            let maker = f.liquidity == strike_sdk::fees::Liquidity::Maker;
            (f.ticker.unwrap_or_default(), i64::from(f.yes_price.0), f.qty.0, f.fee.0, maker)
        })
        .collect();
    v.sort();
    v
}

/// The exchange's fills, sorted, with the fee the account was charged.
fn exchanged(fills: &[ExchangeFill]) -> Vec<FillKey> {
    let mut v: Vec<FillKey> = fills
        .iter()
        .map(|f| {
            let maker = f.liquidity == strike_sdk::fees::Liquidity::Maker;
            (f.ticker.clone(), i64::from(f.price.0), f.qty.0, f.fee_charged.0, maker)
        })
        .collect();
    v.sort();
    v
}

/// Every order the engine sent reached the exchange exactly once, and the engine booked every
/// fill the exchange made, one for one (count, price, size, fee).
fn assert_books_agree(run: &Run, srv: &LinkedServers) {
    let rep = &run.report;
    let s = srv.rest.stats();
    let orders = rep["orders"].as_u64().unwrap();
    // orders decided before the gateway had read the account were refused on the spot
    let syncing = rep["rejects"]["venue.live_syncing"].as_u64().unwrap_or(0);
    assert_eq!(s.creates, orders - syncing, "no duplicate, none lost: {}", rep["rejects"]);
    assert_eq!(s.duplicates_refused, 0);
    assert_eq!(s.auth_failures, 0, "{:?}", s.auth_failure_reasons);
    assert_eq!(s.missing_exchange_index, 0, "exchange_index is always sent");
    let rows = strike_engine::journal::count_rows(&run.journal).unwrap();
    assert_eq!(rows.orders, s.creates, "journaled orders vs orders the exchange received");
    let fills = srv.rest.fills();
    assert_eq!(fills.len() as u64, s.fills);
    assert_eq!(rep["fills"].as_u64().unwrap(), s.fills, "engine vs exchange fill count");
    assert_eq!(journaled(&run.journal), exchanged(&fills), "the engine's fills are the exchange's");
    // shutdown cancelled what rested
    let resting: Vec<_> = srv.rest.orders().into_iter().filter(|o| o["status"] == "resting").collect();
    assert!(resting.is_empty(), "left resting: {resting:?}");
}

/// The demo session at 30× its recorded pace (about 10 s): the exchange's book follows the
/// replay, FLB's fill-or-kill orders meet it as it is when they arrive, and the engine's
/// journal holds exactly the exchange's fills.
#[test]
fn flb_trades_the_demo_session_and_the_journal_equals_the_exchange() {
    let dir = scratch("sim-e2e-demo");
    let rec = Arc::new(Recording::read(&demo()).unwrap());
    let mut wc = WsServerConfig::new(Arc::clone(&rec), api());
    wc.pacing = Pacing::Recorded { speed: 30.0 };
    let srv = LinkedServers::start(wc, RestServerConfig::new(rec, api(), strike_sdk::Money::dollars(10_000))).unwrap();
    let run = run_live(&dir, &srv, &demo(), 12);
    let rep = &run.report;
    assert_eq!(faults(rep), 0, "{}", rep["faults"]);
    assert_eq!(rep["deltas_applied"], 2885, "the whole session arrived: {rep}");
    let s = srv.rest.stats();
    assert!(s.fills > 0, "FLB traded nothing: {}", rep["rejects"]);
    // the exchange followed the replay: 5 snapshots and 2,885 deltas, none refused
    assert_eq!((s.market_data_applied, s.market_data_refused), (2_890, 0));
    assert_books_agree(&run, &srv);
}

/// Faults while orders are live over the linked servers: the first WebSocket session is cut
/// after 400 data frames (the engine reconnects and resumes on the shared replay clock), the
/// next two creates are answered 429 (the gateway sends them again) and every REST connection
/// is dropped after 3 answers. No order is duplicated or lost and the fills still agree.
#[test]
fn faults_while_orders_are_live_lose_and_duplicate_nothing() {
    let dir = scratch("sim-e2e-faults");
    let rec = Arc::new(Recording::read(&demo()).unwrap());
    let mut wc = WsServerConfig::new(Arc::clone(&rec), api());
    wc.pacing = Pacing::Recorded { speed: 30.0 };
    wc.faults = Faults::none().close_after(400);
    let mut rc = RestServerConfig::new(rec, api(), strike_sdk::Money::dollars(10_000));
    rc.faults = RestFaults::none().rate_limit_path(2, "/portfolio/events/orders").close_after(3);
    let srv = LinkedServers::start(wc, rc).unwrap();
    let run = run_live(&dir, &srv, &demo(), 12);
    let rep = &run.report;
    let s = srv.rest.stats();
    assert_eq!(srv.ws.stats().connections().len(), 2, "the engine came back once after the drop");
    assert_eq!(s.rate_limited, 2, "both 429s were served");
    assert!(s.fault_closes > 0, "REST connections were dropped");
    assert!(s.fills > 0, "FLB traded nothing: {}", rep["rejects"]);
    assert!(rep["live"]["resyncs"].as_u64().unwrap() >= 2, "the account was read again: {}", rep["live"]);
    assert_books_agree(&run, &srv);
    // the reconnect resumed from the exchange's clock: nothing reached the exchange twice
    assert_eq!((s.market_data_applied, s.market_data_refused), (2_890, 0));
}

/// The books a plain replay of `rec` through the engine's pipeline ends with.
fn replayed_books(rec: Recording) -> Vec<String> {
    let cfg = strike_engine::config::EngineConfig { strategies_dir: Default::default(), ..Default::default() };
    let mut p = strike_engine::pipeline::Pipeline::new(&cfg, rec, &[], &Default::default()).unwrap();
    p.run_to_end();
    let mut books = Vec::new();
    for b in p.trader().books() {
        for side in [strike_sdk::BookSide::Bid, strike_sdk::BookSide::Ask] {
            b.for_each_level(side, |px, q| {
                books.push(format!("{side:?} {px} {q}"));
                true
            });
        }
    }
    books
}

/// The "delay" fault: every data frame of the production capture is held back 2 ms before it
/// is sent. `engine record` over TLS still gets every frame, and its recording replays to the
/// books of the capture itself.
#[test]
fn a_delayed_feed_ends_with_the_books_of_a_clean_run() {
    let dir = scratch("sim-e2e-delay");
    let key = private_key_copy(&dir, "test_rsa_pkcs1.pem");
    let capture = data("ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json");
    let rec = Recording::read(&capture).unwrap();
    let public = ApiKey::from_pem_file("test-key-id", &fixture_key("test_rsa_public.pem")).unwrap();
    let mut cfg = WsServerConfig::new(Arc::new(rec.clone()), public);
    cfg.faults = Faults::none().delay_each(Duration::from_millis(2));
    let srv = WsServer::start(cfg).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &srv.cert().cert_pem).unwrap();
    let out = dir.join("delayed.jsonl.zst");
    let args: Vec<OsString> = vec![
        "record".into(),
        "--venue".into(),
        srv.url().into(),
        "--ca-cert".into(),
        ca.into_os_string(),
        "--key-id".into(),
        "test-key-id".into(),
        "--key-path".into(),
        key.into_os_string(),
        "--markets-from".into(),
        capture.clone().into_os_string(),
        "--duration-s".into(),
        "3".into(),
        "--out".into(),
        out.clone().into_os_string(),
    ];
    let refs: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let r = run_engine(&refs);
    assert!(r.status.success(), "stderr: {}", String::from_utf8_lossy(&r.stderr));
    // 257 data frames at 2 ms each: the delay really slowed the stream down
    let st = srv.stats().connection(0).unwrap();
    assert_eq!(st.data_frames, 257, "{st:?}");
    assert_eq!(srv.stats().connections().len(), 1, "no reconnect was needed");
    let live = Recording::read(&out).unwrap();
    assert_eq!(replayed_books(live), replayed_books(rec));
}
