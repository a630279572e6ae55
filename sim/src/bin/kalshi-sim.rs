//! `kalshi-sim`: the loopback Kalshi exchange on its own, for any client to trade against.
//!
//! It starts [`LinkedServers`] on `127.0.0.1`: the TLS WebSocket market-data server replaying a
//! recording (or the seeded synthetic session the engine embeds), the TLS REST V2 order-entry
//! exchange over the same markets, and the private `fill` / `user_order` bus between them, all
//! behind one throw-away self-signed certificate and one API key (signatures are verified
//! against `--public-key`). The point is to test or paper-trade a client (the engine, a script,
//! another bot) over the real wire protocol without touching Kalshi.
//!
//! ```text
//! kalshi-sim [--replay FILE | --seed N] --public-key PEM --key-id ID [--balance DOLLARS]
//!            [--pace asap|realtime|xN] [--ws-port P] [--rest-port P] [--cert-out FILE]
//!            [--duration-s S] [--queue-model risk_averse|power:N|log]
//!            [--latency-us FEED,ENTRY,RESPONSE | --latency-samples FILE [--latency-seed N]]
//! ```
//!
//! ## Fill model
//! The REST exchange matches orders with the simulator's matcher against the book the
//! WebSocket replay serves (one replay clock for all sessions; a client that reconnects resumes
//! where the exchange is). `--queue-model` picks how a resting order's queue position moves
//! when its level shrinks (`crate::matching::queue`: `risk_averse`, the default, only trades at
//! the order's price advance it; `power:N` and `log` split a decrease between ahead and behind
//! by `f(ahead)/(f(ahead)+f(behind))`). The latency model delays market data reaching the
//! exchange (`FEED`), orders reaching it (`ENTRY`) and its answers (`RESPONSE`):
//! `--latency-us` gives three constant delays in microseconds (default `0,0,0`);
//! `--latency-samples` draws every delay from a file of recorded one-way delays, one whole number of
//! microseconds per line (blank lines and `#` comments ignored), reproducibly for
//! `--latency-seed` (default 1).
//!
//! ## Output (stdout, one line each, space-separated, stable)
//! On start, once both servers accept connections:
//! ```text
//! cert /path/to/cert.pem
//! ws wss://localhost:40123/trade-api/ws/v2
//! rest https://localhost:40124/trade-api/v2
//! ready
//! ```
//! then it runs until SIGINT / SIGTERM / SIGHUP or `--duration-s`, stops both servers and prints
//! the exchange's counters, `stopped` first:
//! ```text
//! stopped
//! orders_created 12
//! fills 5
//! maker_fills 2
//! filled_contracts 30.00
//! cancels 0
//! amends 0
//! decreases 0
//! rejections 1
//! auth_failures 0
//! balance 9987.650000
//! ```
//! (`filled_contracts` in contracts with 2 decimals, `balance` in dollars with 6.) Diagnostics
//! go to stderr. Exit status: 0 after a clean stop, 2 for bad input (a missing or unreadable
//! recording or key, a bad `--pace`, a port in use), with one `kalshi-sim: error: …` line.
//!
//! ## Trading the engine against it
//! ```text
//! kalshi-sim --seed 7 --public-key key_public.pem --key-id ID --cert-out cert.pem
//! engine synth --seed 7 --out synth.jsonl.zst
//! engine --strategy target/release/libflb.so --venue wss://localhost:PORT/trade-api/ws/v2 \
//!        --rest https://localhost:PORT/trade-api/v2 --ca-cert cert.pem --key-id ID \
//!        --key-path key.pem --markets-from synth.jsonl.zst --live --yes --duration-s 5
//! ```
//! (`--markets-from` is the same recording the simulator serves: `--replay FILE`, or the
//! synthetic session for the same seed written by `engine synth`.)

use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strike_sdk::Money;
use strike_sim::matching::{Constant, LatencyKind, QueueModelKind, Recorded};
use strike_sim::recording::Recording;
use strike_sim::server::{ApiKey, LinkedServers, Pacing, RestServerConfig, WsServerConfig};

/// The loopback Kalshi exchange (TLS WebSocket market data + REST V2 order entry + the private
/// fill/user_order channels), for clients to trade against. Prints `cert`, `ws`, `rest` and
/// `ready` lines on stdout when it is up, and the exchange's counters after `stopped` when it
/// ends (SIGINT/SIGTERM or --duration-s).
#[derive(Parser, Debug)]
#[command(name = "kalshi-sim", version)]
struct Cli {
    /// Serve this recording: *.jsonl.zst (Strike), a capture object *.json, or bare Kalshi
    /// frames *.jsonl / *.jsonl.gz. Default: the synthetic session of --seed.
    #[arg(long, value_name = "FILE", conflicts_with = "seed")]
    replay: Option<PathBuf>,
    /// Seed of the synthetic session served without --replay (the engine's embedded default
    /// uses 7 too; `engine synth --seed N` writes the same session for --markets-from).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// The API public key clients sign with: SPKI PEM (`BEGIN PUBLIC KEY`), RSA or Ed25519.
    #[arg(long, value_name = "PEM")]
    public_key: PathBuf,
    /// The key id clients send in KALSHI-ACCESS-KEY.
    #[arg(long, value_name = "ID")]
    key_id: String,
    /// The account's starting balance, dollars (up to 6 decimals).
    #[arg(long, value_name = "DOLLARS", default_value = "10000")]
    balance: String,
    /// Market-data pace: `asap` (as fast as possible), `realtime` (recorded gaps), or `xN`
    /// (recorded gaps divided by N, e.g. `x10`).
    #[arg(long, value_name = "PACE", default_value = "asap")]
    pace: String,
    /// WebSocket port on 127.0.0.1 (0: an ephemeral port, printed on the `ws` line).
    #[arg(long, value_name = "P", default_value_t = 0)]
    ws_port: u16,
    /// REST port on 127.0.0.1 (0: an ephemeral port, printed on the `rest` line).
    #[arg(long, value_name = "P", default_value_t = 0)]
    rest_port: u16,
    /// Write the self-signed certificate (PEM) here, for clients' --ca-cert. Default: a file
    /// in the temporary directory, printed on the `cert` line.
    #[arg(long, value_name = "FILE")]
    cert_out: Option<PathBuf>,
    /// Stop after this many seconds (default: run until SIGINT / SIGTERM).
    #[arg(long, value_name = "S")]
    duration_s: Option<f64>,
    /// Queue-position model of resting orders: `risk_averse`, `power:N` (N > 0) or `log`.
    #[arg(long, value_name = "MODEL", default_value = "risk_averse")]
    queue_model: String,
    /// Constant latencies, microseconds: market data to the exchange, order to the exchange,
    /// exchange's answer back (e.g. `500,2000,2000`).
    #[arg(long, value_name = "FEED,ENTRY,RESPONSE", conflicts_with = "latency_samples")]
    latency_us: Option<String>,
    /// Draw every latency from these recorded one-way delays: one number of microseconds per
    /// line.
    #[arg(long, value_name = "FILE")]
    latency_samples: Option<PathBuf>,
    /// Seed of the draws from --latency-samples.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "latency_samples")]
    latency_seed: u64,
}

/// Set by the signal handler.
static STOP: AtomicBool = AtomicBool::new(false);

/// A bad-input error: the message says what to do.
struct Usage(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Usage(msg)) => {
            eprintln!("kalshi-sim: error: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Parses `--queue-model`.
fn parse_queue(s: &str) -> Result<QueueModelKind, Usage> {
    s.parse().map_err(|_| {
        Usage(format!("bad --queue-model `{s}`: use `risk_averse`, `log`, or `power:N` with N > 0 (e.g. `power:2`)"))
    })
}

/// Whole microseconds (`"500"`) as nanoseconds.
fn micros(s: &str) -> Option<u64> {
    s.trim().parse::<u64>().ok()?.checked_mul(1000)
}

/// Parses `--latency-us FEED,ENTRY,RESPONSE` or reads `--latency-samples FILE`.
fn parse_latency(cli: &Cli) -> Result<LatencyKind, Usage> {
    if let Some(s) = &cli.latency_us {
        let bad = || {
            Usage(format!(
                "bad --latency-us `{s}`: give three delays in whole microseconds FEED,ENTRY,RESPONSE, e.g. `0,500,500`"
            ))
        };
        let v: Vec<u64> = s.split(',').map(micros).collect::<Option<_>>().ok_or_else(bad)?;
        let [feed_ns, entry_ns, response_ns] = v[..] else { return Err(bad()) };
        return Ok(LatencyKind::Constant(Constant { feed_ns, entry_ns, response_ns }));
    }
    let Some(path) = &cli.latency_samples else { return Ok(LatencyKind::default()) };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Usage(format!("cannot read --latency-samples {}: {e}; give a file of microsecond delays", path.display()))
    })?;
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        samples.push(micros(l).ok_or_else(|| {
            Usage(format!(
                "bad --latency-samples {} line {}: `{l}` is not a whole number of microseconds",
                path.display(),
                i + 1
            ))
        })?);
    }
    let model = Recorded::same_for_all(samples, cli.latency_seed)
        .map_err(|e| Usage(format!("--latency-samples {}: {e}; give at least one delay", path.display())))?;
    Ok(LatencyKind::Recorded(Box::new(model)))
}

/// Parses `--pace`.
fn parse_pace(s: &str) -> Result<Pacing, Usage> {
    let bad = || Usage(format!("bad --pace `{s}`: use `asap`, `realtime`, or `xN` with N > 0 (e.g. `x10`)"));
    match s {
        "asap" => Ok(Pacing::AsFastAsPossible),
        "realtime" => Ok(Pacing::Recorded { speed: 1.0 }),
        _ => {
            let speed: f64 = s.strip_prefix('x').ok_or_else(bad)?.parse().map_err(|_| bad())?;
            if speed.is_finite() && speed > 0.0 {
                Ok(Pacing::Recorded { speed })
            } else {
                Err(bad())
            }
        }
    }
}

fn run(cli: Cli) -> Result<(), Usage> {
    // Everything is checked before anything is started.
    let pacing = parse_pace(&cli.pace)?;
    let queue_model = parse_queue(&cli.queue_model)?;
    let latency = parse_latency(&cli)?;
    let balance = Money::parse(&cli.balance)
        .ok()
        .filter(|m| m.0 >= 0)
        .ok_or_else(|| Usage(format!("bad --balance `{}`: give dollars >= 0, e.g. 10000 or 2500.50", cli.balance)))?;
    let duration = match cli.duration_s {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => return Err(Usage(format!("bad --duration-s {s}: give seconds > 0, or leave it out"))),
    };
    if cli.key_id.is_empty() {
        return Err(Usage("--key-id is empty: give the key id clients send".into()));
    }
    let api = ApiKey::from_pem_file(cli.key_id.clone(), &cli.public_key).map_err(|e| {
        Usage(format!("cannot use --public-key {e}; give an SPKI PEM public key (`BEGIN PUBLIC KEY`), RSA or Ed25519"))
    })?;
    let rec = match &cli.replay {
        Some(path) => Recording::read(path).map_err(|e| {
            Usage(format!("cannot read --replay: {e}; give a *.jsonl.zst, *.json or *.jsonl[.gz] recording"))
        })?,
        None => {
            let seed = cli.seed.unwrap_or(7);
            let mut r = strike_sim::synth::generate(seed, &strike_sim::synth::SynthConfig::default());
            if r.header.source.is_empty() {
                r.header.source = format!("synthetic session (seed {seed})");
            }
            r
        }
    };
    let rec = Arc::new(rec);
    let mut ws = WsServerConfig::new(Arc::clone(&rec), api.clone());
    ws.pacing = pacing;
    ws.bind = SocketAddr::from(([127, 0, 0, 1], cli.ws_port));
    let mut rest = RestServerConfig::new(Arc::clone(&rec), api, balance);
    rest.bind = SocketAddr::from(([127, 0, 0, 1], cli.rest_port));
    rest.queue_model = queue_model;
    rest.latency = latency;
    let mut srv = LinkedServers::start(ws, rest).map_err(|e| {
        Usage(format!("cannot start the exchange: {e}; pick free --ws-port / --rest-port (or 0), or another recording"))
    })?;
    let cert_path = cli
        .cert_out
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("kalshi-sim-{}-cert.pem", std::process::id())));
    std::fs::write(&cert_path, &srv.ws.cert().cert_pem).map_err(|e| {
        Usage(format!("cannot write the certificate to {}: {e}; give a writable --cert-out", cert_path.display()))
    })?;
    // SIGINT, SIGTERM and SIGHUP (ctrlc's `termination` feature). A second handler cannot be
    // set; without one, --duration-s still ends the run.
    if let Err(e) = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst)) {
        eprintln!("kalshi-sim: warning: no signal handler ({e})");
    }
    eprintln!(
        "kalshi-sim: serving {} ({} markets, {} frames) to key {}; queue model {queue_model}",
        rec.header.source,
        rec.header.markets.len(),
        rec.frames.len(),
        cli.key_id
    );
    {
        let mut out = std::io::stdout().lock();
        // A closed stdout is not a reason to stop serving.
        let _ = writeln!(out, "cert {}", cert_path.display());
        let _ = writeln!(out, "ws {}", srv.ws.url());
        let _ = writeln!(out, "rest {}", srv.rest.url());
        let _ = writeln!(out, "ready");
        let _ = out.flush();
    }
    let start = Instant::now();
    while !STOP.load(Ordering::SeqCst) && duration.is_none_or(|d| start.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.ws.stop();
    srv.rest.stop();
    let s = srv.rest.stats();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "stopped");
    let _ = writeln!(out, "orders_created {}", s.creates);
    let _ = writeln!(out, "fills {}", s.fills);
    let _ = writeln!(out, "maker_fills {}", s.maker_fills);
    let _ = writeln!(out, "filled_contracts {}", s.filled);
    let _ = writeln!(out, "cancels {}", s.cancels);
    let _ = writeln!(out, "amends {}", s.amends);
    let _ = writeln!(out, "decreases {}", s.decreases);
    let _ = writeln!(out, "rejections {}", s.rejections);
    let _ = writeln!(out, "auth_failures {}", s.auth_failures);
    let _ = writeln!(out, "balance {}", srv.rest.balance());
    let _ = out.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strike_sim::matching::LatencyModel as _;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["kalshi-sim", "--public-key", "k.pem", "--key-id", "k"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap()
    }

    #[test]
    fn queue_and_latency_flags() {
        assert_eq!(parse_queue("power:2").ok(), Some(QueueModelKind::Power(2.0)));
        assert_eq!(parse_queue(&cli(&[]).queue_model).ok(), Some(QueueModelKind::RiskAverse));
        assert!(parse_queue("square").err().unwrap().0.contains("bad --queue-model `square`"));
        let LatencyKind::Constant(c) = parse_latency(&cli(&["--latency-us", "1,20,300"])).ok().unwrap() else {
            panic!("constant expected")
        };
        assert_eq!(c, Constant { feed_ns: 1_000, entry_ns: 20_000, response_ns: 300_000 });
        assert!(matches!(parse_latency(&cli(&[])).ok(), Some(LatencyKind::Constant(Constant { feed_ns: 0, .. }))));
        for bad in ["1,2", "1,2,3,4", "1,x,3", "-1,2,3", "0.5,1,1"] {
            let e = parse_latency(&cli(&[&format!("--latency-us={bad}")])).err().unwrap().0;
            assert!(e.starts_with("bad --latency-us"), "{bad}: {e}");
        }
        let dir = std::env::temp_dir().join(format!("kalshi-sim-lat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("samples.txt");
        std::fs::write(&f, "# one-way delays\n250\n\n250 # again\n").unwrap();
        let mut m = parse_latency(&cli(&["--latency-samples", f.to_str().unwrap()])).ok().unwrap();
        assert_eq!((m.feed_ns(), m.entry_ns(), m.response_ns()), (250_000, 250_000, 250_000));
        std::fs::write(&f, "250\nfast\n").unwrap();
        let e = parse_latency(&cli(&["--latency-samples", f.to_str().unwrap()])).err().unwrap().0;
        assert!(e.contains("line 2: `fast`"), "{e}");
        std::fs::write(&f, "# nothing\n").unwrap();
        let e = parse_latency(&cli(&["--latency-samples", f.to_str().unwrap()])).err().unwrap().0;
        assert!(e.contains("no recorded feed latency samples"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
