//! Live sessions against a Kalshi venue: paper trading on live data, and recording.
//!
//! Venues (`kalshi-protocol.md` §1.1, §3.1): `kalshi` (production), `kalshi-demo`, or an explicit
//! `wss://host[:port]/trade-api/ws/v2` (a loopback simulator; give `--rest` for its REST base and
//! `--ca-cert` for its self-signed certificate). The API key id and private key come from
//! `KALSHI_API_KEY_ID` / `KALSHI_PRIVATE_KEY_PATH` or the command line; the key is loaded once,
//! refused when readable by others, and handed to the background signer.
//!
//! The market universe comes from the venue's REST API ([`crate::metadata`]) for `--series` /
//! `--tickers`, or from an existing recording's header (`--markets-from`).
//!
//! `--paper` runs the whole pipeline on the live feed with the paper venue filling orders.
//! `--live` sends real orders through the REST V2 gateway ([`crate::gateway::rest`]) with the
//! same key and background signer; the command line makes the operator type the venue name to
//! confirm unless `--yes`.

use crate::auth::{load_private_key, BackgroundSigner, DEFAULT_REFRESH};
use crate::config::EngineConfig;
use crate::feed::ws::{SignerAuth, WsFeedConfig, WsSource};
use crate::feed::{FrameSource, SourcePoll};
use crate::host::Plugin;
use crate::metadata::{MarketQuery, RestClient};
use crate::pipeline::{Pipeline, RunOptions, RunOutcome};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strike_sim::recording::{Header, Recording, Rotation, StreamWriter};

/// Where to connect and who we are.
#[derive(Clone, Debug, Default)]
pub struct VenueArgs {
    /// `kalshi`, `kalshi-demo` or a `wss://…/trade-api/ws/v2` URL.
    pub venue: String,
    /// REST base override (`https://…/trade-api/v2`); required with a URL venue unless
    /// `markets_from` is given.
    pub rest: Option<String>,
    /// PEM or DER certificate to trust instead of the webpki roots (loopback simulators).
    pub ca_cert: Option<PathBuf>,
    /// API key id; default `$KALSHI_API_KEY_ID`.
    pub key_id: Option<String>,
    /// Private key file; default `$KALSHI_PRIVATE_KEY_PATH`.
    pub key_path: Option<PathBuf>,
    /// Series to load (`KXHIGHNY`).
    pub series: Vec<String>,
    /// Tickers to load.
    pub tickers: Vec<String>,
    /// Take the markets from this recording's header instead of REST.
    pub markets_from: Option<PathBuf>,
    /// Stop after this long (default: until Ctrl-C).
    pub duration: Option<Duration>,
}

/// The WebSocket URL and REST base of a venue name.
pub fn venue_urls(v: &VenueArgs) -> Result<(String, Option<String>), String> {
    if v.rest.is_some() && (v.venue == "kalshi" || v.venue == "kalshi-demo") {
        return Err(format!(
            "--rest cannot be combined with --venue {}: orders and data must go to the same exchange",
            v.venue
        ));
    }
    match v.venue.as_str() {
        "kalshi" => Ok((
            "wss://external-api-ws.kalshi.com/trade-api/ws/v2".into(),
            Some("https://external-api.kalshi.com/trade-api/v2".into()),
        )),
        "kalshi-demo" => Ok((
            "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2".into(),
            Some("https://external-api.demo.kalshi.co/trade-api/v2".into()),
        )),
        url if url.starts_with("wss://") => Ok((url.to_string(), v.rest.clone())),
        other => Err(format!("unknown venue {other:?}: use kalshi, kalshi-demo or a wss://…/trade-api/ws/v2 URL")),
    }
}

fn tls_for(v: &VenueArgs) -> Result<Arc<rustls::ClientConfig>, String> {
    match &v.ca_cert {
        None => Ok(WsFeedConfig::webpki_tls()),
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|e| format!("--ca-cert {}: {e}", p.display()))?;
            let der = if bytes.starts_with(b"-----BEGIN") {
                use rustls_pki_types::pem::PemObject;
                rustls_pki_types::CertificateDer::from_pem_slice(&bytes)
                    .map_err(|e| format!("--ca-cert {}: not a PEM certificate: {e}", p.display()))?
                    .to_vec()
            } else {
                bytes
            };
            WsFeedConfig::pinned_tls(&der)
        }
    }
}

/// The market universe for a session (REST or a recording header).
pub fn load_markets(v: &VenueArgs, rest: Option<&str>) -> Result<Header, String> {
    if let Some(p) = &v.markets_from {
        let mut h = Recording::read(p).map_err(|e| e.to_string())?.header;
        h.yes_price_scale = true;
        h.source = format!("live {} (markets from {})", v.venue, p.display());
        return Ok(h);
    }
    let rest = rest.ok_or("a URL venue needs --rest BASE or --markets-from FILE to know its markets")?;
    let q = MarketQuery { series: v.series.clone(), tickers: v.tickers.clone(), status: "open".into() };
    RestClient::new(rest).universe_header(&q, &format!("live {}", v.venue)).map_err(|e| e.to_string())
}

/// The API key and its background signer.
pub struct Credentials {
    /// Key id (`KALSHI-ACCESS-KEY`).
    pub key_id: String,
    /// The private key, shared with the gateway for paths signed at send time.
    pub key: Arc<crate::auth::SigningKey>,
    /// Keeps the fixed paths' headers fresh; stops when dropped.
    pub signer: BackgroundSigner,
}

/// Connects the live feed source (signed handshake via the background signer).
pub fn connect(v: &VenueArgs, header: &Header, channels: &[&str]) -> Result<(WsSource, Credentials), String> {
    let (ws_url, _) = venue_urls(v)?;
    let key_id = v
        .key_id
        .clone()
        .or_else(|| std::env::var("KALSHI_API_KEY_ID").ok())
        .ok_or("no API key id: set KALSHI_API_KEY_ID or pass --key-id")?;
    let key_path = v
        .key_path
        .clone()
        .or_else(|| std::env::var_os("KALSHI_PRIVATE_KEY_PATH").map(PathBuf::from))
        .ok_or("no private key: set KALSHI_PRIVATE_KEY_PATH or pass --key-path")?;
    let key = Arc::new(load_private_key(&key_path).map_err(|e| e.to_string())?);
    let signer = BackgroundSigner::spawn(key.clone(), DEFAULT_REFRESH).map_err(|e| e.to_string())?;
    let cfg = WsFeedConfig {
        url: ws_url,
        connect_addr: None,
        tls: tls_for(v)?,
        channels: channels.iter().map(|c| c.to_string()).collect(),
        tickers: header.markets.iter().map(|m| m.ticker.clone()).collect(),
        max_frame: crate::feed::parse::MAX_FRAME,
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(10),
        seed: std::process::id() as u64,
    };
    let src = WsSource::new(cfg, Box::new(SignerAuth { key_id: key_id.clone(), headers: signer.reader() }))?;
    Ok((src, Credentials { key_id, key, signer }))
}

/// Set by Ctrl-C, SIGTERM or SIGHUP; live loops stop at the next poll and shut down cleanly.
pub fn stop_flag() -> &'static AtomicBool {
    static STOP: AtomicBool = AtomicBool::new(false);
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst));
    });
    &STOP
}

/// Trading on the live feed until `duration` or Ctrl-C, with paper fills or, when `live`, real
/// orders through the REST gateway; returns the run's report.
pub fn run(
    cfg: &EngineConfig,
    v: &VenueArgs,
    plugins: &[Plugin],
    live: bool,
    opts: &RunOptions,
) -> Result<RunOutcome, String> {
    let (_, rest) = venue_urls(v)?;
    let header = load_markets(v, rest.as_deref())?;
    // our own orders' fills and updates ride the same connection (the gateway reads them)
    let channels: &[&str] = if live {
        &["orderbook_delta", "trade", "market_lifecycle_v2", "fill", "user_orders"]
    } else {
        &["orderbook_delta", "trade", "market_lifecycle_v2"]
    };
    let (src, creds) = connect(v, &header, channels)?;
    let venue = if live {
        let base = rest.ok_or("--live needs the venue's REST base (--rest URL for a URL venue)")?;
        let mut rc = crate::gateway::rest::RestConfig::new(&base, tls_for(v)?, &creds.key_id);
        rc.request_timeout = Duration::from_secs(5);
        rc.tier = cfg.rate_limit_tier;
        let metas = strike_sim::universe::UniverseData::from_header(&header)
            .map_err(|e| e.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; "))?
            .markets;
        let gw = crate::gateway::rest::RestGateway::new(rc, &metas, creds.signer.reader(), creds.key.clone())?;
        crate::pipeline::VenueChoice::Live(Box::new(gw))
    } else {
        crate::pipeline::VenueChoice::Paper
    };
    let mut p = Pipeline::with_source(cfg, &header, src, true, crate::feed::parse::MAX_FRAME, plugins, opts, venue)
        .map_err(|e| e.to_string())?;
    let stop = stop_flag();
    // `kill -USR1 <pid>` prints the latency so far to stderr
    let usr1 = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&usr1));
    let deadline = v.duration.map(|d| Instant::now() + d);
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        p.step();
        if usr1.load(Ordering::Relaxed) {
            usr1.store(false, Ordering::Relaxed);
            eprint!("{}", crate::telemetry::report::latency_text(&p.latency()));
        }
    }
    Ok(p.finish())
}

/// What a recording session wrote.
#[derive(Clone, Debug)]
pub struct RecordSummary {
    /// Frames written.
    pub frames: u64,
    /// Frames skipped (not JSON).
    pub skipped: u64,
    /// Connections lost on the way.
    pub disconnects: u64,
    /// Files started after the first (each begins with fresh snapshots of every market).
    pub rotations: u64,
    /// Frames written to the previous file while a rotation handed over
    /// ([`StreamWriter::handed_over`]).
    pub handed_over: u64,
    /// Frames dropped because their sid had no snapshot in the current file yet and no previous
    /// file was open to take them ([`StreamWriter::gated`]).
    pub gated: u64,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// How long `engine record` waits for a rotated file's fresh snapshots before asking again for
/// the ones still missing: 5 s.
pub const RESNAPSHOT_RETRY: Duration = Duration::from_secs(5);

/// `engine record`: raw frames with receive times, plus the market metadata, into `out`.
///
/// Every file replays on its own: when the writer rotates, the recorder asks the exchange for a
/// fresh `orderbook_snapshot` of every recorded market (`update_subscription` / `get_snapshot`,
/// one command per sid), and the writer starts each sid in the new file at its first fresh
/// snapshot; the deltas in flight until then go on into the previous file, so nothing is lost
/// and the files also replay one after the other (the rules, and the one exception that keeps a
/// sid's `seq` unbroken, are in [`StreamWriter`]'s docs). Snapshots still missing after
/// [`RESNAPSHOT_RETRY`] are asked for again; after a reconnect the new subscription's snapshots
/// serve as well.
pub fn record(v: &VenueArgs, out: &Path, rotation: Rotation) -> Result<RecordSummary, String> {
    let (_, rest) = venue_urls(v)?;
    let mut header = load_markets(v, rest.as_deref())?;
    header.source = format!("engine record {}", v.venue);
    let (mut src, _signer) = connect(v, &header, &["orderbook_delta", "trade", "ticker", "market_lifecycle_v2"])?;
    let mut w = StreamWriter::create(out, &header, rotation).map_err(|e| e.to_string())?;
    let stop = stop_flag();
    let deadline = v.duration.map(|d| Instant::now() + d);
    let mut disconnects = 0;
    let mut asked_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        match src.next_frame() {
            SourcePoll::Frame { recv_ns, bytes } => {
                let text = std::str::from_utf8(bytes).unwrap_or("");
                w.write(recv_ns, text).map_err(|e| e.to_string())?;
            }
            SourcePoll::Disconnected => disconnects += 1,
            SourcePoll::Idle => std::thread::sleep(Duration::from_micros(200)),
            SourcePoll::Done => break,
        }
        let rotated = w.tick().map_err(|e| e.to_string())?;
        let retry = asked_at.is_some_and(|t| t.elapsed() >= RESNAPSHOT_RETRY);
        if rotated || retry {
            let wanted = w.snapshot_requests();
            for &(sid, market) in &wanted {
                src.request_snapshot(sid, strike_sdk::market::MarketId(market as u32));
            }
            asked_at = (!wanted.is_empty()).then(Instant::now);
        }
    }
    let (frames, skipped, rotations, handed_over, gated) = (w.frames, w.skipped, w.rotations, w.handed_over, w.gated);
    let files = w.finish().map_err(|e| e.to_string())?;
    Ok(RecordSummary { frames, skipped, disconnects, rotations, handed_over, gated, files })
}
