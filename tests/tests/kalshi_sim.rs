//! The standalone `kalshi-sim` binary: the real engine binary trades against it as a separate
//! process, over TLS on loopback, exactly as it would against any exchange URL; and bad input
//! gets a clear error and exit status 2.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use strike_tests::*;

/// A running `kalshi-sim`, killed if the test ends without stopping it.
struct Sim {
    child: Child,
    /// Its stdout, line by line (a reader thread; the channel closes at EOF).
    lines: mpsc::Receiver<String>,
}

impl Sim {
    fn spawn(args: &[OsString]) -> Sim {
        let mut child = Command::new(artefact("kalshi-sim"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kalshi-sim starts");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Sim { child, lines }
    }

    /// The next stdout line, within `secs`.
    fn line(&mut self, secs: u64) -> String {
        match self.lines.recv_timeout(Duration::from_secs(secs)) {
            Ok(l) => l,
            Err(e) => {
                let _ = self.child.kill();
                let out = stderr_of(&mut self.child);
                panic!("no line from kalshi-sim ({e:?}); stderr: {out}");
            }
        }
    }

    /// The `key value` lines up to `ready`, as pairs.
    fn until_ready(&mut self) -> Vec<(String, String)> {
        let mut got = Vec::new();
        loop {
            let l = self.line(60);
            if l == "ready" {
                return got;
            }
            let (k, v) = l.split_once(' ').unwrap_or_else(|| panic!("unexpected line `{l}`"));
            got.push((k.to_string(), v.to_string()));
        }
    }
}

/// Waits for the (killed or exiting) child and returns its stderr.
fn stderr_of(child: &mut Child) -> String {
    let _ = child.wait();
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn value<'a>(kv: &'a [(String, String)], key: &str) -> &'a str {
    kv.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no `{key}` in {kv:?}"))
}

/// A mode-600 copy of the test private key, and the matching public key.
fn keys(dir: &Path) -> (PathBuf, PathBuf) {
    (
        strike_tests::private_key_copy(dir, "test_ed25519_pkcs8.pem"),
        strike_tests::fixture_key("test_ed25519_public.pem"),
    )
}

/// FLB in the engine binary trades the synthetic session (seed 7) against a separate
/// `kalshi-sim` process; what the exchange counts at exit is what the engine reports.
#[test]
fn engine_trades_against_the_standalone_simulator() {
    let dir = scratch("kalshi-sim-e2e");
    let (key, public) = keys(&dir);
    let cert = dir.join("cert.pem");
    let mut sim = Sim::spawn(&[
        "--seed".into(),
        "7".into(),
        "--public-key".into(),
        public.into_os_string(),
        "--key-id".into(),
        "test-key-id".into(),
        "--cert-out".into(),
        cert.clone().into_os_string(),
    ]);
    let up = sim.until_ready();
    assert_eq!(value(&up, "cert"), cert.to_str().unwrap());
    let ws = value(&up, "ws").to_string();
    let rest = value(&up, "rest").to_string();
    assert!(ws.starts_with("wss://localhost:") && ws.ends_with("/trade-api/ws/v2"), "{ws}");
    assert!(rest.starts_with("https://localhost:") && rest.ends_with("/trade-api/v2"), "{rest}");
    assert!(std::fs::read_to_string(&cert).unwrap().contains("BEGIN CERTIFICATE"));

    // the engine's market metadata: the same synthetic session the simulator serves
    let markets = dir.join("synth.jsonl.zst");
    strike_sim::synth::generate(7, &strike_sim::synth::SynthConfig::default()).write_strike(&markets).unwrap();
    let json = dir.join("report.json");
    let venue = strike_tests::LiveVenue { ws: &ws, rest: &rest, ca: &cert, key: &key, markets: &markets };
    let mut args: Vec<OsString> = vec!["--strategy".into(), plugin("flb").into_os_string()];
    args.extend(venue.args(4, &dir.join("journal.sqlite"), &json));
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let r = run_engine(&refs);
    assert!(r.status.success(), "stderr: {}", String::from_utf8_lossy(&r.stderr));
    let rep = report(&json);
    assert_eq!(faults(&rep), 0, "{}", rep["faults"]);
    let orders = rep["orders"].as_u64().unwrap();
    assert!(orders > 0, "FLB sent no order");

    // stop the simulator as an operator would, and read its counters
    let pid = sim.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert_eq!(sim.line(30), "stopped");
    let mut counters = Vec::new();
    while let Ok(l) = sim.lines.recv_timeout(Duration::from_secs(30)) {
        let (k, v) = l.split_once(' ').unwrap_or_else(|| panic!("unexpected line `{l}`"));
        counters.push((k.to_string(), v.to_string()));
    }
    let status = sim.child.wait().unwrap();
    assert!(status.success(), "kalshi-sim exit {status}: {}", stderr_of(&mut sim.child));

    // orders refused by the gateway before it had read the account never left the engine;
    // every other one reached the exchange exactly once
    let syncing = rep["rejects"]["venue.live_syncing"].as_u64().unwrap_or(0);
    let created: u64 = value(&counters, "orders_created").parse().unwrap();
    assert_eq!(created, orders - syncing, "no duplicate, none lost: {counters:?}");
    assert!(created > 0, "trading resumed after the sync");
    assert_eq!(value(&counters, "auth_failures"), "0");
    // what the exchange filled is what the engine booked
    let filled = strike_sdk::Qty::parse(value(&counters, "filled_contracts")).unwrap();
    let booked = (rep["contracts_filled"].as_f64().unwrap() * 100.0).round() as i64;
    assert_eq!(booked, filled.0, "engine {booked} vs exchange {}", filled.0);
    assert!(value(&counters, "fills").parse::<u64>().unwrap() > 0, "{counters:?}");
    assert!(strike_sdk::Money::parse(value(&counters, "balance")).is_ok(), "{counters:?}");
}

/// A `--replay` file that does not exist: exit status 2 and one line naming the file.
#[test]
fn missing_replay_file_is_a_clear_error() {
    let dir = scratch("kalshi-sim-bad");
    let (_, public) = keys(&dir);
    let missing = dir.join("no-such-recording.jsonl.zst");
    let out = Command::new(artefact("kalshi-sim"))
        .arg("--replay")
        .arg(&missing)
        .arg("--public-key")
        .arg(&public)
        .args(["--key-id", "test-key-id", "--duration-s", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("kalshi-sim: error: cannot read --replay"), "{err}");
    assert!(err.contains("no-such-recording.jsonl.zst"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty(), "nothing served: {}", String::from_utf8_lossy(&out.stdout));
    // a bad pace and an unreadable key are refused the same way
    let out = Command::new(artefact("kalshi-sim"))
        .arg("--public-key")
        .arg(&public)
        .args(["--key-id", "k", "--pace", "fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad --pace `fast`"));
    let out = Command::new(artefact("kalshi-sim"))
        .args(["--public-key", "/nonexistent/key.pem", "--key-id", "k"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/key.pem"));
}
