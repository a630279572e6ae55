//! The real `engine` binary with real plugin `.so` files on real recordings.

use std::ffi::OsStr;
use strike_tests::*;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn flb_plugin_replays_the_prod_capture() {
    let dir = scratch("flb-prod");
    let out_json = dir.join("report.json");
    let out = run_engine(&[
        os("--strategy"),
        plugin("flb").as_os_str(),
        os("--replay"),
        data("ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json").as_os_str(),
        os("--report-json"),
        out_json.as_os_str(),
    ]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("== Strike run report =="), "{text}");
    assert!(text.contains("tick_to_trade") || text.contains("book_apply"), "{text}");
    let r = report(&out_json);
    assert_eq!(r["deltas_applied"], 245);
    assert_eq!(faults(&r), 0, "{}", r["faults"]);
    assert_eq!(r["strategies"][0]["name"], "flb");
    assert_eq!(r["strategies"][0]["enabled"], true);
    assert!(r["latency_ns"]["book_apply"]["count"].as_u64().unwrap() >= 257);
}

/// The in-process replay (`--in-process`, no network) of the embedded session: FLB trades it, and
/// the run is deterministic for a seed (the promise that mode exists for; the networked default
/// races real sockets and threads, so it makes none).
#[test]
fn embedded_default_session_trades_in_process_deterministically() {
    let dir = scratch("default");
    let out_json = dir.join("report.json");
    let flb = plugin("flb");
    let args = |json: &std::path::Path| -> Vec<std::ffi::OsString> {
        vec!["--strategy".into(), flb.clone().into(), "--in-process".into(), "--report-json".into(), json.into()]
    };
    let run = |json: &std::path::Path| {
        let a = args(json);
        run_engine(&a.iter().map(|x| x.as_os_str()).collect::<Vec<_>>())
    };
    let out = run(&out_json);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out_json);
    assert_eq!(faults(&r), 0, "{}", r["faults"]);
    assert!(r["deltas_applied"].as_u64().unwrap() > 1000);
    assert!(r["orders"].as_u64().unwrap() > 0, "flb sent no order on the synthetic session");
    assert!(r["fills"].as_u64().unwrap() > 0);
    assert!(r["pnl"]["fees"].as_f64().unwrap() > 0.0);
    let t2t = &r["latency_ns"]["tick_to_trade"];
    assert!(t2t["count"].as_u64().unwrap() > 0 && t2t["p50"].as_u64().unwrap() > 0);
    assert!(r["live"].as_object().unwrap().is_empty(), "no network: {}", r["live"]);
    // deterministic for a seed
    let again = dir.join("again.json");
    let out2 = run(&again);
    assert!(out2.status.success());
    let r2 = report(&again);
    assert_eq!(r["orders"], r2["orders"]);
    assert_eq!(r["fills"], r2["fills"]);
    assert_eq!(r["pnl"]["total_mtm"], r2["pnl"]["total_mtm"]);
}

/// Checks a run against the embedded simulator (`net`) against the in-process replay of the
/// same recording (`local`): served over TLS on one connection to the end, signatures accepted,
/// the gateway synced and live, every frame applied as in-process, no fault.
fn assert_served_over_loopback(net: &serde_json::Value, local: &serde_json::Value) {
    assert_eq!(faults(net), 0, "{}", net["faults"]);
    assert!(net["source"].as_str().unwrap().contains("loopback simulator"), "{}", net["source"]);
    assert_eq!(live(net, "sim_ws_connections"), 1, "{}", net["live"]);
    assert_eq!(live(net, "sim_replay_complete"), 1, "{}", net["live"]);
    assert_eq!(live(net, "sim_ws_handshakes_refused") + live(net, "sim_rest_auth_failures"), 0, "{}", net["live"]);
    // the private stream came up and the account was read over signed REST before trading
    assert!(live(net, "resyncs") >= 1 && live(net, "live") >= 1, "{}", net["live"]);
    assert!(live(net, "sim_rest_requests") >= 1, "{}", net["live"]);
    // every data frame the simulator sent arrived, and every frame of the recording was applied
    // as the in-process replay applies it
    assert_eq!(data_messages(net), live(net, "sim_ws_data_frames"));
    assert_eq!(net["snapshots_applied"], local["snapshots_applied"]);
    assert_eq!(net["deltas_applied"], local["deltas_applied"]);
    assert!(net["deltas_applied"].as_u64().unwrap() > 0);
    assert_eq!((net["gaps"].as_u64(), net["deltas_dropped_not_live"].as_u64()), (Some(0), Some(0)));
    assert!(local["live"].as_object().unwrap().is_empty(), "--in-process used the network: {}", local["live"]);
}

/// The main job: without a venue the engine starts the simulator in-process and trades the
/// embedded session through its real network stack (TLS WebSocket with the private channels,
/// signed REST orders, the resync), to the end of the session.
#[test]
fn the_embedded_default_trades_the_simulator_over_tls_on_loopback() {
    let dir = scratch("sim-default");
    let flb = plugin("flb");
    let net = run_report(&[os("--strategy"), flb.as_os_str()], &dir.join("net.json"));
    let local = run_report(&[os("--strategy"), flb.as_os_str(), os("--in-process")], &dir.join("local.json"));
    assert_served_over_loopback(&net, &local);
    assert_eq!(net["snapshots_applied"], 27, "the embedded session (seed 7) lists 27 markets");
    // FLB's orders reached the exchange over signed REST, each once; an order decided while the
    // gateway was still syncing would be refused on the spot (counted) rather than sent late
    let orders = net["orders"].as_u64().unwrap();
    assert!(orders > 0, "FLB sent no order");
    let syncing = net["rejects"]["venue.live_syncing"].as_u64().unwrap_or(0);
    assert_eq!(live(&net, "sim_orders_created") + syncing, orders, "no order lost or sent twice");
    assert!(live(&net, "private_frames") > 0, "fill / user_order came over the WebSocket: {}", net["live"]);
    // what the exchange filled is what the engine booked
    let filled = (net["contracts_filled"].as_f64().unwrap() * 100.0).round() as u64;
    assert_eq!(filled, live(&net, "sim_filled_hundredths"));
    assert!(net["fills"].as_u64().unwrap() > 0);
    let t2t = &net["latency_ns"]["tick_to_trade"];
    assert_eq!(t2t["count"].as_u64(), Some(live(&net, "sim_orders_created")), "one sample per order sent");
    // frames carry the recording's receive times, as in-process: the same recorded latencies
    assert_eq!(net["latency_ns"]["exchange_to_recv"], local["latency_ns"]["exchange_to_recv"]);
}

/// `--replay FILE` goes over the same loopback network path, at any pace, and applies every frame
/// the in-process replay applies.
#[test]
fn replays_go_over_tls_on_loopback_and_apply_every_frame() {
    let dir = scratch("sim-replay");
    let flb = plugin("flb");
    for (name, rec, pace) in [
        ("prod", "ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json", "x50"),
        ("demo", "ws_demo_mm_session_2026-07-01/session.jsonl.gz", "asap"),
    ] {
        let rec = data(rec);
        let net = run_report(
            &[os("--strategy"), flb.as_os_str(), os("--replay"), rec.as_os_str(), os("--pace"), os(pace)],
            &dir.join(format!("{name}-net.json")),
        );
        let local = run_report(
            &[os("--strategy"), flb.as_os_str(), os("--replay"), rec.as_os_str(), os("--in-process")],
            &dir.join(format!("{name}-local.json")),
        );
        assert_served_over_loopback(&net, &local);
    }
}

#[test]
fn a_journaled_run_holds_every_order_update_and_fill_of_the_report() {
    let dir = scratch("journal");
    let journal = dir.join("journal.sqlite");
    let json = dir.join("report.json");
    let flb = plugin("flb");
    // --in-process: the test counts two identical runs into one file, which only the
    // deterministic replay promises
    let args = [
        os("--strategy"),
        flb.as_os_str(),
        os("--in-process"),
        os("--journal"),
        journal.as_os_str(),
        os("--report-json"),
        json.as_os_str(),
    ];
    for _ in 0..2 {
        let out = run_engine(&args);
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    let r = report(&json);
    assert_eq!(faults(&r), 0, "{}", r["faults"]);
    let rows = strike_engine::journal::count_rows(&journal).unwrap();
    // two runs appended to one file
    assert_eq!(rows.orders, 2 * r["orders"].as_u64().unwrap());
    assert_eq!(rows.fills, 2 * r["fills"].as_u64().unwrap());
    assert_eq!(r["journal"]["orders"], r["orders"]);
    assert_eq!(r["journal"]["dropped"], 0);
    let fills = strike_engine::journal::read_fills(&journal).unwrap();
    let fees: i64 = fills.iter().filter(|f| f.run == fills[0].run).map(|f| f.fee.0).sum();
    assert_eq!(fees as f64 / 1e6, r["pnl"]["fees"].as_f64().unwrap(), "journaled fees are the report's, exactly");
    assert!(fills.iter().all(|f| f.ticker.is_some()), "every fill names its market");
}

#[test]
fn wrong_abi_plugin_is_refused_with_a_clear_message() {
    let out = run_engine(&[
        os("--strategy"),
        plugin("strike_test_plugin_bad_abi").as_os_str(),
        os("--replay"),
        data("ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ABI version mismatch: plugin has v999, engine expects v1"), "{err}");
    assert!(err.contains("libstrike_test_plugin_bad_abi.so"), "{err}");
    assert!(err.contains("rebuild the plugin"), "{err}");
}

#[test]
fn a_panicking_plugin_is_disabled_and_trading_goes_on() {
    let dir = scratch("panicky");
    let out_json = dir.join("report.json");
    let out = run_engine(&[
        os("--strategy"),
        plugin("strike_test_plugin_panicky").as_os_str(),
        os("--strategy"),
        plugin("flb").as_os_str(),
        os("--replay"),
        data("ws_demo_mm_session_2026-07-01/session.jsonl.gz").as_os_str(),
        os("--report-json"),
        out_json.as_os_str(),
    ]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out_json);
    assert_eq!(r["deltas_applied"], 2885, "the run went on to the end");
    assert_eq!(r["strategies"][0]["name"], "panicky");
    assert_eq!(r["strategies"][0]["enabled"], false);
    assert_eq!(r["strategies"][0]["disabled_in"], "on_book");
    assert_eq!(r["strategies"][1]["name"], "flb");
    assert_eq!(r["strategies"][1]["enabled"], true);
    assert!(String::from_utf8_lossy(&out.stdout).contains("DISABLED (panicked in on_book"));
}

#[test]
fn imported_weather_day_replays_without_faults() {
    let dir = scratch("weather");
    let rec = dir.join("weather.jsonl.zst");
    let imp = run_engine(&[
        os("import"),
        os("weather"),
        os("--books"),
        data("rest_weather_books_2026-07/weather_books_2026-07-21.jsonl.gz").as_os_str(),
        os("--out"),
        rec.as_os_str(),
    ]);
    assert!(imp.status.success(), "stderr: {}", String::from_utf8_lossy(&imp.stderr));
    assert!(String::from_utf8_lossy(&imp.stdout).contains("settled markets"));
    let out_json = dir.join("report.json");
    let out = run_engine(&[
        os("--strategy"),
        plugin("flb").as_os_str(),
        os("--replay"),
        rec.as_os_str(),
        os("--report-json"),
        out_json.as_os_str(),
    ]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out_json);
    assert_eq!(faults(&r), 0, "{}", r["faults"]);
    assert_eq!(r["deltas_applied"], 36581);
    assert_eq!(r["snapshots_applied"], 730);
    assert!(r["pnl"]["marked_at_settlement"].as_u64().unwrap() <= r["pnl"]["open_markets"].as_u64().unwrap());
}

#[test]
fn bad_input_gets_clear_errors() {
    let dir = scratch("bad-input");
    // a plugin path that does not exist
    let out = run_engine(&[os("--strategy"), os("/nonexistent/libnope.so")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/libnope.so not found"));
    // a config with an unknown key and a bad value: both reported
    let cfg = dir.join("engine.toml");
    std::fs::write(dir.join("risk.toml"), "").unwrap();
    std::fs::write(&cfg, "capitall = \"1\"\nring_capacity = 3\n").unwrap();
    let out = run_engine(&[os("--strategy"), plugin("flb").as_os_str(), os("--config"), cfg.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown key `capitall`") && err.contains("`ring_capacity`"), "{err}");
    // a recording that is not a recording
    let junk = dir.join("junk.jsonl");
    std::fs::write(&junk, "{\"type\":\"orderbook_delta\"}\nnot json\n").unwrap();
    let out = run_engine(&[os("--strategy"), plugin("flb").as_os_str(), os("--replay"), junk.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.jsonl:2"), "{}", String::from_utf8_lossy(&out.stderr));
    // a recording the loopback simulator cannot serve: said so, with the way out
    let odd = dir.join("odd-side.jsonl");
    std::fs::write(
        &odd,
        concat!(
            r#"{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"KXA","yes_dollars_fp":[["0.4000","10.00"]]}}"#,
            "\n",
            r#"{"type":"orderbook_delta","sid":1,"seq":2,"msg":{"market_ticker":"KXA","price_dollars":"0.4000","delta_fp":"1.00","side":"maybe"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = run_engine(&[os("--strategy"), plugin("flb").as_os_str(), os("--replay"), odd.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("simulator cannot serve") && err.contains("delta side") && err.contains("--in-process"),
        "{err}"
    );
    // ... which the in-process replay takes, counting the bad frame as a fault
    let json = dir.join("odd.json");
    let r = run_report(
        &[os("--strategy"), plugin("flb").as_os_str(), os("--replay"), odd.as_os_str(), os("--in-process")],
        &json,
    );
    assert_eq!(faults(&r), 1, "{}", r["faults"]);
    // a pace that is not one
    let out = run_engine(&[os("--strategy"), plugin("flb").as_os_str(), os("--pace"), os("x0")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad --pace `x0`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the in-process replay has no venue
    let out = run_engine(&[
        os("--strategy"),
        plugin("flb").as_os_str(),
        os("--in-process"),
        os("--venue"),
        os("kalshi"),
        os("--paper"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--in-process"), "{}", String::from_utf8_lossy(&out.stderr));
    // a plugin that is not a Strike plugin (any shared library without the entry symbol)
    let out = run_engine(&[os("--strategy"), os("/lib/x86_64-linux-gnu/libm.so.6")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exports no `strike_strategy_entry`"));
}

/// The loopback Kalshi exchange serving the prod capture, a mode-600 copy of the test key, and
/// the exchange's certificate on disk: everything `--venue wss://…` needs.
struct Loopback {
    srv: strike_sim::server::WsServer,
    key: std::path::PathBuf,
    ca: std::path::PathBuf,
    capture: std::path::PathBuf,
}

impl Loopback {
    fn start(dir: &std::path::Path) -> Loopback {
        Loopback::start_with(dir, |_| {})
    }

    /// As [`Loopback::start`], with the server's configuration adjusted by `f` first.
    fn start_with(dir: &std::path::Path, f: impl FnOnce(&mut strike_sim::server::WsServerConfig)) -> Loopback {
        let key = strike_tests::private_key_copy(dir, "test_rsa_pkcs1.pem");
        let capture = data("ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json");
        let rec = strike_sim::recording::Recording::read(&capture).unwrap();
        let api =
            strike_sim::server::ApiKey::from_pem_file("test-key-id", &strike_tests::fixture_key("test_rsa_public.pem"))
                .unwrap();
        let mut cfg = strike_sim::server::WsServerConfig::new(std::sync::Arc::new(rec), api);
        f(&mut cfg);
        let srv = strike_sim::server::WsServer::start(cfg).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, &srv.cert().cert_pem).unwrap();
        Loopback { srv, key, ca, capture }
    }

    /// `--venue … --ca-cert … --key-id … --key-path … --markets-from … --duration-s N`.
    fn venue_args(&self, seconds: &str) -> Vec<std::ffi::OsString> {
        [
            "--venue".into(),
            self.srv.url().into(),
            "--ca-cert".into(),
            self.ca.clone().into_os_string(),
            "--key-id".into(),
            "test-key-id".into(),
            "--key-path".into(),
            self.key.clone().into_os_string(),
            "--markets-from".into(),
            self.capture.clone().into_os_string(),
            "--duration-s".into(),
            seconds.into(),
        ]
        .to_vec()
    }
}

#[test]
fn live_paper_trading_on_the_loopback_exchange() {
    let dir = scratch("live-paper");
    let lb = Loopback::start(&dir);
    let json = dir.join("report.json");
    let mut args: Vec<std::ffi::OsString> = vec!["--strategy".into(), plugin("flb").into_os_string()];
    args.extend(lb.venue_args("2"));
    args.extend(["--paper".into(), "--report-json".into(), json.clone().into_os_string()]);
    let refs: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let r = run_engine(&refs);
    assert!(r.status.success(), "stderr: {}", String::from_utf8_lossy(&r.stderr));
    let rep = report(&json);
    assert_eq!(faults(&rep), 0, "{}", rep["faults"]);
    assert_eq!(rep["deltas_applied"], 245, "the whole capture arrived over TLS and was applied");
    assert_eq!(rep["snapshots_applied"], 12);
    assert_eq!(rep["strategies"][0]["enabled"], true);
    assert!(rep["latency_ns"]["feed_parse"]["count"].as_u64().unwrap() >= 257);
}

#[test]
fn engine_record_against_the_loopback_exchange_replays_to_the_same_books() {
    let dir = scratch("record");
    let lb = Loopback::start(&dir);
    let capture = lb.capture.clone();
    let out = dir.join("live.jsonl.zst");
    let mut args: Vec<std::ffi::OsString> = vec!["record".into()];
    args.extend(lb.venue_args("2"));
    args.extend(["--out".into(), out.clone().into_os_string()]);
    let refs: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let r = run_engine(&refs);
    assert!(r.status.success(), "stderr: {}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stdout).contains("recorded"), "{}", String::from_utf8_lossy(&r.stdout));
    // the recording replays through the engine: every delta applied, no fault
    let json = dir.join("report.json");
    let rep = run_engine(&[
        os("--strategy"),
        plugin("flb").as_os_str(),
        os("--replay"),
        out.as_os_str(),
        os("--report-json"),
        json.as_os_str(),
    ]);
    assert!(rep.status.success(), "stderr: {}", String::from_utf8_lossy(&rep.stderr));
    let live = report(&json);
    assert_eq!(faults(&live), 0, "{}", live["faults"]);
    assert_eq!(live["deltas_applied"], 245);
    assert_eq!(live["snapshots_applied"], 12);
    // and ends with the same books as the original capture, both replayed through the engine
    let books = |path: &std::path::Path| replay(strike_sim::recording::Recording::read(path).unwrap()).books;
    assert_eq!(books(&out), books(&capture));
}

/// What a replay through the engine's pipeline ends with.
struct Replayed {
    /// Every level of every book at the end, in market order.
    books: Vec<String>,
    gaps: u64,
    faults: u64,
    book_faults: u64,
    deltas_applied: u64,
    deltas_dropped_not_live: u64,
    snapshots_applied: u64,
}

fn replay(rec: strike_sim::recording::Recording) -> Replayed {
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
    let (f, t) = (&p.feed().stats, &p.trader().stats);
    Replayed {
        books,
        gaps: f.gaps,
        faults: f.faults.iter().map(|(_, n)| n).sum(),
        book_faults: t.book_faults.iter().map(|(_, n)| n).sum(),
        deltas_applied: t.deltas_applied,
        deltas_dropped_not_live: t.deltas_dropped_not_live,
        snapshots_applied: t.snapshots_applied,
    }
}

#[test]
fn engine_record_rotates_into_files_that_each_replay_on_their_own() {
    let dir = scratch("record-rotate");
    // the 56 s capture at 20x: deltas keep coming for ~2.8 s, so rotations fall mid-stream
    let lb = Loopback::start_with(&dir, |c| c.pacing = strike_sim::server::Pacing::Recorded { speed: 20.0 });
    let capture = strike_sim::recording::Recording::read(&lb.capture).unwrap();
    let out = dir.join("rotated.jsonl.zst");
    let venue = strike_engine::live::VenueArgs {
        venue: lb.srv.url(),
        ca_cert: Some(lb.ca.clone()),
        key_id: Some("test-key-id".into()),
        key_path: Some(lb.key.clone()),
        markets_from: Some(lb.capture.clone()),
        duration: Some(std::time::Duration::from_millis(4_500)),
        ..Default::default()
    };
    // 12 kB of stream per file (the ~28 kB of fresh snapshots opening each file do not count)
    let rotation = strike_sim::recording::Rotation { max_bytes: 12_000, max_age: Default::default() };
    let sum = strike_engine::live::record(&venue, &out, rotation).unwrap();
    assert!(sum.rotations >= 3, "rotated {} times", sum.rotations);
    assert!(sum.handed_over > 0, "deltas in flight at each rotation went into the previous file");
    assert_eq!(sum.gated, 0, "nothing was dropped");
    assert_eq!(sum.files.len() as u64, sum.rotations + 1);
    assert_eq!(sum.disconnects, 0);
    let tickers: std::collections::BTreeSet<String> = capture.header.markets.iter().map(|m| m.ticker.clone()).collect();
    let mut all = Vec::new();
    for (i, path) in sum.files.iter().enumerate() {
        let rec = strike_sim::recording::Recording::read(path).unwrap();
        // every market's first orderbook message in the file is its snapshot, and every market has one
        let mut first: std::collections::BTreeMap<String, String> = Default::default();
        for f in &rec.frames {
            let v: serde_json::Value = serde_json::from_str(&f.text).unwrap();
            let ty = v["type"].as_str().unwrap_or("");
            if ty == "orderbook_snapshot" || ty == "orderbook_delta" {
                let t = v["msg"]["market_ticker"].as_str().unwrap().to_string();
                first.entry(t).or_insert_with(|| ty.to_string());
            }
        }
        assert_eq!(first.keys().cloned().collect::<std::collections::BTreeSet<_>>(), tickers, "file {i}");
        assert!(first.values().all(|t| t == "orderbook_snapshot"), "file {i}: {first:?}");
        // and the file replays alone: no gap, no fault, no delta before its book
        let r = replay(rec.clone());
        assert_eq!((r.gaps, r.faults, r.book_faults), (0, 0, 0), "file {i}");
        assert_eq!(r.deltas_dropped_not_live, 0, "file {i}");
        assert!(r.snapshots_applied >= 12, "file {i}: {} snapshots", r.snapshots_applied);
        if i > 0 {
            assert!(r.deltas_applied > 0, "file {i} carries stream, not only snapshots");
        }
        all.extend(rec.frames);
    }
    // the files one after the other are the whole stream: every delta once, no gap, and the books
    // of a plain replay of the capture at the end
    let header = strike_sim::recording::Recording::read(&sum.files[0]).unwrap().header;
    let joined = replay(strike_sim::recording::Recording { header, frames: all });
    assert_eq!((joined.gaps, joined.faults, joined.book_faults), (0, 0, 0));
    assert_eq!(joined.deltas_applied, 245);
    assert_eq!(joined.books, replay(capture).books);
}

#[test]
fn live_orders_go_to_the_exchange_over_rest_and_fills_come_back() {
    use std::sync::Arc;
    use strike_sim::server::{ApiKey, RestServer, RestServerConfig, TestCert, WsServer, WsServerConfig};
    let dir = scratch("live-rest");
    let key = strike_tests::private_key_copy(&dir, "test_ed25519_pkcs8.pem");
    let api = || ApiKey::from_pem_file("test-key-id", &strike_tests::fixture_key("test_ed25519_public.pem")).unwrap();
    // the synthetic session: favourites and longshots that FLB trades
    let rec = Arc::new(strike_sim::synth::generate(7, &strike_sim::synth::SynthConfig::default()));
    let markets = dir.join("synth.jsonl.zst");
    rec.write_strike(&markets).unwrap();
    let cert = Arc::new(TestCert::generate().unwrap());
    let mut wc = WsServerConfig::new(rec.clone(), api());
    wc.cert = Some(cert.clone());
    let ws = WsServer::start(wc).unwrap();
    let mut rc = RestServerConfig::new(rec.clone(), api(), strike_sdk::Money::dollars(10_000));
    rc.cert = Some(cert.clone());
    let rest = RestServer::start(rc).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &cert.cert_pem).unwrap();
    let json = dir.join("report.json");
    let (ws_url, rest_url) = (ws.url(), rest.url());
    let venue = strike_tests::LiveVenue { ws: &ws_url, rest: &rest_url, ca: &ca, key: &key, markets: &markets };
    let mut args: Vec<std::ffi::OsString> = vec!["--strategy".into(), plugin("flb").into_os_string()];
    args.extend(venue.args(4, &dir.join("journal.sqlite"), &json));
    let refs: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let r = run_engine(&refs);
    assert!(r.status.success(), "stderr: {}", String::from_utf8_lossy(&r.stderr));
    let rep = report(&json);
    let s = rest.stats();
    assert_eq!(faults(&rep), 0, "{}", rep["faults"]);
    let orders = rep["orders"].as_u64().unwrap();
    assert!(orders > 0, "FLB sent no order");
    // orders decided before the gateway had read the account (private stream up, positions read)
    // were refused on the spot; every other one reached the exchange exactly once
    let syncing = rep["rejects"]["venue.live_syncing"].as_u64().unwrap_or(0);
    assert_eq!(s.creates, orders - syncing, "no duplicate, none lost");
    assert!(s.creates > 0, "trading resumed after the sync");
    assert_eq!(rep["live"]["resyncs"], 1, "{}", rep["live"]);
    assert_eq!(s.auth_failures, 0, "{:?}", s.auth_failure_reasons);
    assert_eq!(s.missing_exchange_index, 0, "exchange_index is always sent");
    assert_eq!(s.duplicates_refused, 0);
    // what the exchange filled is what the engine booked
    let filled = (rep["contracts_filled"].as_f64().unwrap() * 100.0).round() as i64;
    assert_eq!(filled, s.filled.0, "engine {filled} vs exchange {}", s.filled.0);
    assert!(rep["fills"].as_u64().unwrap() > 0);
    let t2t = &rep["latency_ns"]["tick_to_trade"];
    assert!(t2t["count"].as_u64().unwrap() >= s.creates, "a tick-to-trade sample per order sent");
}

/// FLB in maker mode over `--live`: its post-only GTC bids rest on the loopback exchange, an
/// outside seller (the test) hits them while the engine runs, and the maker fills reach the
/// engine only through the WebSocket `fill` / `user_orders` channels. The engine's report and
/// journal must agree with the exchange fill for fill, and nothing may rest after shutdown.
#[test]
fn resting_orders_fill_through_the_private_channels_and_match_the_exchange() {
    use std::sync::Arc;
    use strike_sim::server::{ApiKey, LinkedServers, RestServerConfig, WsServerConfig};
    let dir = scratch("live-maker");
    let key = strike_tests::private_key_copy(&dir, "test_ed25519_pkcs8.pem");
    let api = || ApiKey::from_pem_file("test-key-id", &strike_tests::fixture_key("test_ed25519_public.pem")).unwrap();
    // Two heavy favourites whose books stand still (the exchange's REST book is the first
    // snapshot, so a moving book would make FLB's penny bids cross there): best YES bid 0.90,
    // ask 0.93 (NO bid 0.07). FLB in maker mode bids one tick above the best bid.
    use strike_sim::recording::{Frame, Header, MarketRecord, Recording, FORMAT_VERSION};
    let market = |t: &str| MarketRecord {
        ticker: t.into(),
        event_ticker: format!("{t}-EV"),
        series_ticker: "KXM".into(),
        price_level_structure: Some("linear_cent".into()),
        ..Default::default()
    };
    let snap = |sid: u32, t: &str| Frame {
        recv_ns: 1_000_000 * u64::from(sid),
        text: format!(
            r#"{{"type":"orderbook_snapshot","sid":{sid},"seq":1,"msg":{{"market_ticker":"{t}","yes_dollars_fp":[["0.8800","40.00"],["0.9000","50.00"]],"no_dollars_fp":[["0.0700","50.00"]]}}}}"#
        ),
    };
    let delta = |sid: u32, t: &str| Frame {
        recv_ns: 1_000_000_000 + 1_000_000 * u64::from(sid),
        text: format!(
            r#"{{"type":"orderbook_delta","sid":{sid},"seq":2,"msg":{{"market_ticker":"{t}","price_dollars":"0.8800","delta_fp":"1.00","side":"yes"}}}}"#
        ),
    };
    let rec = Arc::new(Recording {
        header: Header {
            strike_recording: FORMAT_VERSION,
            source: "two favourites".into(),
            yes_price_scale: false,
            markets: vec![market("KXM-A"), market("KXM-B")],
            events: vec![],
        },
        // a second later (recorded pace), one more contract at 0.88 on each: the top of book is
        // unchanged, but FLB looks again, now that the gateway has read the account
        frames: vec![snap(1, "KXM-A"), snap(2, "KXM-B"), delta(1, "KXM-A"), delta(2, "KXM-B")],
    });
    let markets = dir.join("favourites.jsonl.zst");
    rec.write_strike(&markets).unwrap();
    let mut wc = WsServerConfig::new(rec.clone(), api());
    wc.pacing = strike_sim::server::Pacing::Recorded { speed: 1.0 };
    let srv = LinkedServers::start(wc, RestServerConfig::new(rec.clone(), api(), strike_sdk::Money::dollars(10_000)))
        .unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &srv.ws.cert().cert_pem).unwrap();
    // the shipped configuration with FLB quoting as a maker
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::create_dir_all(dir.join("strategies")).unwrap();
    for f in ["engine.toml", "risk.toml"] {
        std::fs::copy(repo.join("config").join(f), dir.join(f)).unwrap();
    }
    let flb = std::fs::read_to_string(repo.join("config/strategies/flb.toml")).unwrap();
    assert!(flb.contains("mode = \"taker\""), "the shipped flb.toml states its mode");
    std::fs::write(dir.join("strategies/flb.toml"), flb.replace("mode = \"taker\"", "mode = \"maker\"")).unwrap();
    let json = dir.join("report.json");
    let journal = dir.join("journal.sqlite");
    let (ws_url, rest_url) = (srv.ws.url(), srv.rest.url());
    let venue = strike_tests::LiveVenue { ws: &ws_url, rest: &rest_url, ca: &ca, key: &key, markets: &markets };
    let mut args: Vec<std::ffi::OsString> = vec![
        "--strategy".into(),
        plugin("flb").into_os_string(),
        "--config".into(),
        dir.join("engine.toml").into_os_string(),
    ];
    args.extend(venue.args(5, &journal, &json));
    let mut child = std::process::Command::new(strike_tests::engine())
        .args(&args)
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // an outside seller takes 1 contract off every resting bid (and buyer off every ask) it sees
    let mut hit = std::collections::HashSet::new();
    let mut traded = 0i64;
    while child.try_wait().unwrap().is_none() {
        for o in srv.rest.orders() {
            let id = o["order_id"].as_str().unwrap_or_default().to_string();
            if o["status"] != "resting" || hit.contains(&id) {
                continue;
            }
            let side = if o["book_side"] == "bid" { strike_sdk::BookSide::Bid } else { strike_sdk::BookSide::Ask };
            let price = strike_sdk::Price::parse(o["yes_price_dollars"].as_str().unwrap()).unwrap();
            let q = srv.rest.external_trade(o["ticker"].as_str().unwrap(), side, price, strike_sdk::Qty::contracts(1));
            traded += q.unwrap().0;
            hit.insert(id);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let rep = report(&json);
    let s = srv.rest.stats();
    assert_eq!(faults(&rep), 0, "{}", rep["faults"]);
    assert!(traded > 0, "FLB rested nothing the outside seller could hit: {}", rep["rejects"]);
    // every fill the exchange made reached the engine, once
    assert!(rep["maker_fills"].as_u64().unwrap() > 0, "{}", rep);
    assert_eq!(rep["fills"].as_u64().unwrap(), s.fills, "engine vs exchange fill count");
    let filled = (rep["contracts_filled"].as_f64().unwrap() * 100.0).round() as i64;
    assert_eq!(filled, s.filled.0, "engine {filled} vs exchange {}", s.filled.0);
    assert!(rep["live"]["private_frames"].as_u64().unwrap() > 0, "{}", rep["live"]);
    // shutdown cancelled what rested: nothing of ours is left on the book
    let resting: Vec<_> = srv.rest.orders().into_iter().filter(|o| o["status"] == "resting").collect();
    assert!(resting.is_empty(), "left resting: {resting:?}");
    // the journal holds the same orders and fills
    let rows = strike_engine::journal::count_rows(&journal).unwrap();
    assert_eq!(rows.orders, s.creates, "journaled orders vs orders the exchange received");
    assert_eq!(rows.fills, s.fills, "journaled fills vs exchange fills");
    let fills = strike_engine::journal::read_fills(&journal).unwrap();
    assert_eq!(fills.iter().map(|f| f.qty.0).sum::<i64>(), s.filled.0);
}

#[test]
fn latency_histograms_are_exported_as_hgrm_files() {
    let dir = scratch("hgrm");
    let hgrm = dir.join("hgrm");
    let json = dir.join("report.json");
    let flb = plugin("flb");
    let out = run_engine(&[
        os("--strategy"),
        flb.as_os_str(),
        os("--hgrm-dir"),
        hgrm.as_os_str(),
        os("--report-json"),
        json.as_os_str(),
    ]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let r = report(&json);
    for (hop, stats) in r["latency_ns"].as_object().unwrap() {
        let text = std::fs::read_to_string(hgrm.join(format!("{hop}.hgrm"))).unwrap();
        // the last distribution row reaches percentile 1 with every sample the report counted
        let last = text.lines().take_while(|l| !l.starts_with('#')).filter(|l| !l.trim().is_empty()).last().unwrap();
        let cols: Vec<&str> = last.split_whitespace().collect();
        assert_eq!(cols[1].parse::<f64>().unwrap(), 1.0, "{hop}: {last}");
        assert_eq!(cols[2].parse::<u64>().unwrap(), stats["count"].as_u64().unwrap(), "{hop}");
    }
    assert!(hgrm.join("tick_to_trade.hgrm").exists());
}

#[test]
fn sigusr1_prints_the_latency_so_far_and_trading_goes_on() {
    let dir = scratch("usr1");
    let lb = Loopback::start(&dir);
    let json = dir.join("report.json");
    let mut args: Vec<std::ffi::OsString> = vec!["--strategy".into(), plugin("flb").into_os_string()];
    args.extend(lb.venue_args("3"));
    args.extend(["--paper".into(), "--report-json".into(), json.clone().into_os_string()]);
    let child = std::process::Command::new(strike_tests::engine())
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the handler is in place before the engine subscribes: wait for market data to flow
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !lb.srv.stats().connections().iter().any(|c| c.data_frames > 0) {
        assert!(std::time::Instant::now() < deadline, "the engine never subscribed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let kill = std::process::Command::new("kill").args(["-USR1", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stderr.contains("latency (ns)") && stderr.contains("feed_parse"), "stderr: {stderr}");
    let rep = report(&json);
    assert_eq!(rep["deltas_applied"], 245, "the run went on to the end of the capture");
}
