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
//! `--paper` runs the whole pipeline on the live feed with the simulator's matcher filling orders
//! in-process ([`crate::gateway::matcher`]: queue position per `paper_queue_model`, exact fees).
//! `--live` sends real orders through the REST V2 gateway ([`crate::gateway::rest`]) with the
//! same key and background signer; the command line makes the operator type the venue name to
//! confirm unless `--yes`.
//!
//! Without a venue, [`run_simulated`] (the engine's default run) starts `strike-sim`'s exchange
//! in this process on loopback and trades a recording through the same network path as `--live`:
//! a fresh in-memory Ed25519 key, the WebSocket feed with the private channels, the REST
//! gateway, the resync. [`SimSource`] ends the run when the recording has been served.

use crate::auth::{load_private_key, BackgroundSigner, DEFAULT_REFRESH};
use crate::config::EngineConfig;
use crate::feed::ws::{SignerAuth, WsFeedConfig, WsSource};
use crate::feed::{FrameSource, SourcePoll};
use crate::host::Plugin;
use crate::metadata::{MarketQuery, RestClient};
use crate::pipeline::{Pipeline, RunOptions, RunOutcome, Stop};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strike_sim::recording::{Header, Recording, Rotation, StreamWriter};
use strike_sim::server::{ApiKey, LinkedServers, Pacing, PublicKey, RestServerConfig, WsServerConfig};

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
        rc.account_precision = cfg.account_precision;
        let metas = strike_sim::universe::UniverseData::from_header(&header)
            .map_err(|e| e.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; "))?
            .markets;
        let gw = crate::gateway::rest::RestGateway::new(rc, &metas, creds.signer.reader(), creds.key.clone())?;
        crate::pipeline::VenueChoice::Live(Box::new(gw))
    } else {
        crate::pipeline::VenueChoice::Matched(cfg.paper_queue_model)
    };
    cfg.threads.check().map_err(|e| e.to_string())?;
    let mut p = Pipeline::with_source(cfg, &header, src, true, crate::feed::parse::MAX_FRAME, plugins, opts, venue)
        .map_err(|e| e.to_string())?;
    // `kill -USR1 <pid>` prints the latency so far to stderr
    let usr1 = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&usr1));
    let deadline = v.duration.map(|d| Instant::now() + d);
    let stop = Stop { flag: Some(stop_flag()), deadline, print_latency: Some(&*usr1) };
    p.drive(cfg.topology, &cfg.threads, &stop);
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

// ---------------------------------------------------------------------------------------------
// The embedded simulator: the default run without --venue.
// ---------------------------------------------------------------------------------------------

/// The key id the engine and the simulator it starts agree on.
pub const SIM_KEY_ID: &str = "strike-embedded-sim";

/// A replay stalled this long without a frame (beyond the recording's own longest gap at the
/// chosen pace) is abandoned and reported as a fault (`sim.replay_incomplete`): 60 s.
pub const SIM_STALL: Duration = Duration::from_secs(60);

/// The data frames the simulator serves to one WebSocket session subscribed to
/// `orderbook_delta` and `trade` on every market of the recording, by type.
///
/// Worked out from the recording by the simulator's documented forwarding rules
/// ([`strike_sim::server::ws`], *Replay model*): every `orderbook_snapshot` of a listed market;
/// a listed market's `orderbook_delta` once a snapshot of that market came before it in the
/// recording (earlier deltas have no book to apply to and are not served); every `trade` of a
/// listed market. Frames of other types, and of markets the header does not list, are not
/// served. These are what the first session serves; a session after a reconnect resumes from the
/// simulator's shared clock instead ([`SimSource`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServedCounts {
    /// `orderbook_snapshot` frames.
    pub snapshots: u64,
    /// `orderbook_delta` frames.
    pub deltas: u64,
    /// `trade` frames.
    pub trades: u64,
}

/// What the simulator serves of a recording to one session ([`ServedCounts`]' rules): the counts,
/// and the recording's receive time (unix ns) of every served data frame, in serving order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServedPlan {
    /// Data frames by type.
    pub counts: ServedCounts,
    /// `recv_ns` of each, in order.
    pub times: Vec<u64>,
}

impl ServedPlan {
    /// The plan of `rec`. Frames that are not JSON are skipped here (the simulator refuses to
    /// start on them).
    pub fn of(rec: &Recording) -> ServedPlan {
        #[derive(serde::Deserialize)]
        struct Msg<'a> {
            #[serde(borrow, default)]
            market_ticker: Option<std::borrow::Cow<'a, str>>,
        }
        #[derive(serde::Deserialize)]
        struct Env<'a> {
            #[serde(borrow, rename = "type")]
            ty: std::borrow::Cow<'a, str>,
            #[serde(borrow, default)]
            msg: Option<Msg<'a>>,
        }
        let index: std::collections::HashMap<&str, usize> =
            rec.header.markets.iter().enumerate().map(|(i, m)| (m.ticker.as_str(), i)).collect();
        let mut booked = vec![false; rec.header.markets.len()];
        let mut plan = ServedPlan::default();
        for f in &rec.frames {
            let Ok(env) = serde_json::from_str::<Env<'_>>(&f.text) else { continue };
            let market = env.msg.as_ref().and_then(|m| m.market_ticker.as_deref()).and_then(|t| index.get(t).copied());
            let c = &mut plan.counts;
            let served = match (env.ty.as_ref(), market) {
                ("orderbook_snapshot", Some(m)) => {
                    booked[m] = true;
                    c.snapshots += 1;
                    true
                }
                ("orderbook_delta", Some(m)) if booked[m] => {
                    c.deltas += 1;
                    true
                }
                ("trade", Some(_)) => {
                    c.trades += 1;
                    true
                }
                _ => false,
            };
            if served {
                plan.times.push(f.recv_ns);
            }
        }
        plan
    }
}

impl ServedCounts {
    /// What the simulator serves of `rec` ([`ServedPlan::of`]'s counts).
    pub fn of(rec: &Recording) -> ServedCounts {
        ServedPlan::of(rec).counts
    }

    fn reached(&self, target: &ServedCounts) -> bool {
        self.snapshots >= target.snapshots && self.deltas >= target.deltas && self.trades >= target.trades
    }
}

/// How a [`SimSource`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimProgress {
    /// Frames are still due.
    Running,
    /// Every frame the simulator serves has arrived on one connection: the replay is over.
    Complete,
    /// No frame for longer than the stall limit: abandoned (a fault).
    Stalled,
}

/// What a [`SimSource`] asks the simulator it runs against (cold: called at most every
/// [`SIM_PROBE_EVERY`], and only while holding at the start or settling at the end).
pub trait SimWatch: Send {
    /// The engine has read the account: the exchange has been asked for the positions, the last
    /// read of the gateway's start-up sync ([`crate::gateway::live`]).
    fn account_read(&mut self) -> bool;
    /// Private messages (`fill`, `user_order`) the exchange has published so far.
    fn private_published(&mut self) -> u64;
    /// The data frames the simulator sent on its latest connection, once that connection's
    /// replay is over (every event it serves written); `None` while frames are still due.
    fn latest_connection_done(&mut self) -> Option<u64> {
        None
    }
}

impl SimWatch for Arc<LinkedServers> {
    fn account_read(&mut self) -> bool {
        self.rest.stats().requests_to("GET", "/portfolio/positions") > 0
    }
    fn private_published(&mut self) -> u64 {
        self.rest.private_feed().map_or(0, |f| f.published())
    }
    fn latest_connection_done(&mut self) -> Option<u64> {
        let last = self.ws.stats().connections().pop()?;
        (last.replay_done && last.end.is_none()).then_some(last.data_frames)
    }
}

/// How often a [`SimSource`] asks its [`SimWatch`] while waiting: 200 µs.
pub const SIM_PROBE_EVERY: Duration = Duration::from_micros(200);

/// How long market data is held after the exchange saw the gateway's positions read, for its
/// answer to arrive and the gateway to go live: 5 ms (an interim margin until the gateway
/// publishes its sync state; see [`SimSource`]).
pub const SIM_SYNC_GRACE: Duration = Duration::from_millis(5);

/// The longest market data is held at the start waiting for the gateway's sync: 10 s (the
/// simulator drops a client that does not read for 20 s). After it the data flows anyway and
/// orders decided before the sync ends are refused (`venue.live_syncing` in the report).
pub const SIM_HOLD_MAX: Duration = Duration::from_secs(10);

/// The longest the end of a run waits for the account's private messages still on their way
/// once the replay is over: 2 s. They repeat what the REST answers said; a run does not fail
/// without them.
pub const SIM_PRIVATE_SETTLE: Duration = Duration::from_secs(2);

/// The WebSocket source of a run against the embedded simulator. Frames pass through untouched
/// except at the two ends of the run:
///
/// - **Start.** The gateway trades only after its start-up sync (private stream up, orders and
///   positions read over REST; [`crate::gateway::live`]), and a replay served as fast as
///   possible would otherwise race it: orders decided on the first snapshots would be refused.
///   So the first data frame is held (copied into a buffer allocated up front, the socket left
///   unread) until the exchange has seen the positions read ([`SimWatch::account_read`]) and
///   [`SIM_SYNC_GRACE`] has passed, at most [`SIM_HOLD_MAX`]; it is then delivered stamped with
///   the release time. The acks before it (which bring the private stream up) pass at once.
/// - **End.** Once the current connection has delivered every data frame the simulator serves
///   ([`ServedCounts`]) and the private messages published so far (at most
///   [`SIM_PRIVATE_SETTLE`] more), the source reports [`SourcePoll::Done`], so the pipeline
///   drains the orders still in flight and ends as at the end of an in-process replay: no
///   timer decides when the recording is over. The linked simulator resumes a new session from its
///   shared replay clock (fresh snapshots, then the events not yet served) instead of replaying
///   from the start, so after a reconnect the plan no longer applies: the connection is then
///   complete once the simulator reports its replay over ([`SimWatch::latest_connection_done`])
///   and every data frame it sent on it has arrived. No frame for `stall` makes it give up
///   ([`SimProgress::Stalled`]).
///
/// **Time.** Every frame is stamped with the recording's receive time of the data frame being
/// served (the `k`-th data frame on a connection is the plan's `k`-th, [`ServedPlan::times`];
/// other frames take the last data frame's time), as an in-process replay stamps them, never
/// decreasing. So the trader's clock (strategies' cooldowns, timers) and `exchange_to_recv`
/// follow the recorded day however fast it is served, and a run at any pace decides on the same
/// clock as `--in-process`; the network's own delay shows in tick-to-trade and the order round
/// trip, which the feed measures on the TSC from the moment a frame is read.
///
/// Frames are classified by their `type`, read from their first 48 bytes (the simulator writes
/// `type` first). A snapshot the engine asked for (`get_snapshot` after a fault) counts as a
/// served snapshot, so such a run may end up to that many trailing snapshots early, and the
/// frames after it are stamped one frame early.
pub struct SimSource<S: FrameSource> {
    inner: S,
    watch: Box<dyn SimWatch>,
    target: ServedCounts,
    times: Vec<u64>,
    /// The stamp of the last frame delivered (recording time, unix ns).
    now_ns: u64,
    data_this_connection: usize,
    seen: ServedCounts,
    private_seen: u64,
    frames_this_connection: u64,
    progress: SimProgress,
    stall: Duration,
    last_frame: Instant,
    /// `Some(since)` while the start is held; `None` once released.
    hold: Option<Instant>,
    /// When the exchange saw the positions read.
    account_read_at: Option<Instant>,
    /// The held frame's bytes (capacity: the largest frame).
    held: Vec<u8>,
    held_ns: u64,
    has_held: bool,
    /// When the data was complete on this connection.
    complete_at: Option<Instant>,
    last_probe: Instant,
    /// The connection was lost at least once: the simulator resumes rather than replays.
    reconnected: bool,
}

impl<S: FrameSource> SimSource<S> {
    /// Wraps `inner` against the simulator `watch`, expecting `plan` per connection, frames up
    /// to `max_frame` bytes, giving up after `stall` without a frame.
    pub fn new(inner: S, watch: Box<dyn SimWatch>, plan: ServedPlan, max_frame: usize, stall: Duration) -> Self {
        let now = Instant::now();
        SimSource {
            inner,
            watch,
            target: plan.counts,
            now_ns: plan.times.first().copied().unwrap_or(0),
            times: plan.times,
            data_this_connection: 0,
            seen: ServedCounts::default(),
            private_seen: 0,
            frames_this_connection: 0,
            progress: SimProgress::Running,
            stall,
            last_frame: now,
            hold: Some(now),
            account_read_at: None,
            held: Vec::with_capacity(max_frame),
            held_ns: 0,
            has_held: false,
            complete_at: None,
            last_probe: now - SIM_PROBE_EVERY,
            reconnected: false,
        }
    }

    /// Where the replay stands.
    pub fn progress(&self) -> SimProgress {
        self.progress
    }

    /// Data frames received on the current connection, by type.
    pub fn seen(&self) -> ServedCounts {
        self.seen
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Whether the start hold is over (released now if its conditions hold).
    fn released(&mut self) -> bool {
        let Some(since) = self.hold else { return true };
        let now = Instant::now();
        if self.account_read_at.is_none() && now.duration_since(self.last_probe) >= SIM_PROBE_EVERY {
            self.last_probe = now;
            if self.watch.account_read() {
                self.account_read_at = Some(now);
            }
        }
        let synced = self.account_read_at.is_some_and(|t| now.duration_since(t) >= SIM_SYNC_GRACE);
        if synced || now.duration_since(since) >= SIM_HOLD_MAX {
            self.hold = None;
            self.last_frame = now;
            return true;
        }
        false
    }

    /// Whether the run is over on this connection (data complete, private messages in).
    fn finished(&mut self) -> bool {
        if self.frames_this_connection == 0 {
            return false;
        }
        if !self.seen.reached(&self.target) {
            // After a reconnect the simulator resumes from its shared clock (fresh snapshots,
            // then what it has not served yet), so the plan no longer applies: the connection
            // is complete once its replay is over and every data frame it sent has arrived.
            if self.reconnected && Instant::now().duration_since(self.last_probe) >= SIM_PROBE_EVERY {
                self.last_probe = Instant::now();
                if self.watch.latest_connection_done().is_some_and(|n| self.data_this_connection as u64 >= n) {
                    self.seen = self.target;
                }
            }
            if !self.seen.reached(&self.target) {
                return false;
            }
        }
        let now = Instant::now();
        let since = *self.complete_at.get_or_insert(now);
        if now.duration_since(since) >= SIM_PRIVATE_SETTLE {
            return true;
        }
        if now.duration_since(self.last_probe) < SIM_PROBE_EVERY {
            return false;
        }
        self.last_probe = now;
        self.private_seen >= self.watch.private_published()
    }
}

/// What a simulator frame is, from its head (`{"type":"orderbook_delta",...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Served {
    Snapshot,
    Delta,
    Trade,
    Private,
    Other,
}

#[inline]
fn served_type(bytes: &[u8]) -> Served {
    let head = &bytes[..bytes.len().min(48)];
    let has = |pat: &[u8]| head.windows(pat.len()).any(|w| w == pat);
    if has(b"\"type\":\"orderbook_delta\"") {
        Served::Delta
    } else if has(b"\"type\":\"orderbook_snapshot\"") {
        Served::Snapshot
    } else if has(b"\"type\":\"trade\"") {
        Served::Trade
    } else if has(b"\"type\":\"fill\"") || has(b"\"type\":\"user_order\"") {
        Served::Private
    } else {
        Served::Other
    }
}

impl<S: FrameSource> FrameSource for SimSource<S> {
    #[inline]
    fn next_frame(&mut self) -> SourcePoll<'_> {
        if self.progress != SimProgress::Running {
            return SourcePoll::Done;
        }
        if self.has_held {
            if !self.released() {
                return SourcePoll::Idle;
            }
            self.has_held = false;
            return SourcePoll::Frame { recv_ns: self.held_ns, bytes: &self.held };
        }
        if self.finished() {
            self.progress = SimProgress::Complete;
            return SourcePoll::Done;
        }
        let holding = self.hold.is_some();
        let Self {
            inner,
            seen,
            private_seen,
            frames_this_connection,
            data_this_connection,
            times,
            now_ns,
            progress,
            stall,
            last_frame,
            reconnected,
            ..
        } = self;
        match inner.next_frame() {
            SourcePoll::Frame { bytes, .. } => {
                *last_frame = Instant::now();
                *frames_this_connection += 1;
                let ty = served_type(bytes);
                let data = matches!(ty, Served::Delta | Served::Snapshot | Served::Trade);
                match ty {
                    Served::Delta => seen.deltas += 1,
                    Served::Snapshot => seen.snapshots += 1,
                    Served::Trade => seen.trades += 1,
                    Served::Private => *private_seen += 1,
                    Served::Other => {}
                }
                if data {
                    if let Some(&t) = times.get(*data_this_connection) {
                        *now_ns = (*now_ns).max(t);
                    }
                    *data_this_connection += 1;
                }
                let recv_ns = *now_ns;
                if holding && data {
                    self.held.clear();
                    self.held.extend_from_slice(bytes);
                    self.held_ns = recv_ns;
                    self.has_held = true;
                    return SourcePoll::Idle;
                }
                SourcePoll::Frame { recv_ns, bytes }
            }
            SourcePoll::Disconnected => {
                *seen = ServedCounts::default();
                *private_seen = 0;
                *frames_this_connection = 0;
                *data_this_connection = 0;
                *reconnected = true;
                self.complete_at = None;
                SourcePoll::Disconnected
            }
            SourcePoll::Idle => {
                if last_frame.elapsed() >= *stall + SIM_HOLD_MAX {
                    *progress = SimProgress::Stalled;
                    return SourcePoll::Done;
                }
                SourcePoll::Idle
            }
            SourcePoll::Done => SourcePoll::Done,
        }
    }

    fn request_snapshot(&mut self, sid: u32, market: strike_sdk::market::MarketId) {
        self.inner.request_snapshot(sid, market);
    }

    fn reconnect(&mut self) {
        self.inner.reconnect();
    }
}

/// Why a run against the embedded simulator did not happen.
#[derive(Debug)]
pub enum SimRunError {
    /// The recording or configuration cannot be served or traded (exit status 2).
    Input(String),
    /// Something failed while starting or running (exit status 1).
    Failed(String),
}

impl std::fmt::Display for SimRunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimRunError::Input(m) | SimRunError::Failed(m) => f.write_str(m),
        }
    }
}

/// The longest gap between two consecutive frames of `rec`, at `pacing`.
fn longest_gap(rec: &Recording, pacing: Pacing) -> Duration {
    let Pacing::Recorded { speed } = pacing else { return Duration::ZERO };
    let gap = rec.frames.windows(2).map(|w| w[1].recv_ns.saturating_sub(w[0].recv_ns)).max().unwrap_or(0);
    Duration::from_secs_f64(gap as f64 / 1e9 / speed)
}

/// The main job: serves `recording` from the simulator started here, in-process, on loopback
/// ([`LinkedServers`]: the TLS WebSocket market-data server and the TLS REST V2 exchange with
/// the private `fill` / `user_order` bus between them, a fresh self-signed certificate, ephemeral
/// ports, the account holding `cfg.capital`), and trades it with the engine's real network
/// stack, exactly as against Kalshi: the WebSocket feed with its signed handshake and the
/// private channels, the REST gateway signing every order, the resync before trading. The key is
/// a fresh Ed25519 key held in memory ([`crate::auth::SigningKey::generate_ed25519`]); the
/// simulator gets its public half.
///
/// The run ends by itself once the recording has been served ([`SimSource`]) and every order in
/// flight has been answered ([`Pipeline::finish`]), or on Ctrl-C. The report is the in-process
/// replay's, plus the simulator's side of the story in `live` (`sim_ws_connections`,
/// `sim_ws_data_frames` it sent, `sim_rest_requests`, `sim_orders_created`, `sim_fills`,
/// `sim_filled_hundredths`, `sim_rest_auth_failures` and `sim_ws_handshakes_refused` for bad
/// signatures, `sim_replay_complete`) and, when the replay could not complete, the fault
/// `sim.replay_incomplete` (refused signatures: `sim.auth_refused`). Frames carry the
/// recording's receive times ([`SimSource`], *Time*), so strategies decide on the recorded day's
/// clock and `exchange_to_recv` is the recording's, as in an in-process replay.
///
/// Rate limits: the gateway's token buckets refill on the wall clock, so a replay faster than
/// real time (`Pacing::AsFastAsPossible`, or `Recorded` with a speed above 1) would be throttled
/// against a clock the market no longer runs on; the simulator enforces no limit. Such runs use
/// the highest tier (`prestige`); a real-time replay keeps `rate_limit_tier`.
///
/// Errors: [`SimRunError::Input`] for a recording whose markets are invalid or which the
/// simulator cannot serve (the message points to `--in-process`), [`SimRunError::Failed`] when
/// the key, the servers or the connections cannot be set up.
pub fn run_simulated(
    cfg: &EngineConfig,
    recording: Recording,
    plugins: &[Plugin],
    pacing: Pacing,
    opts: &RunOptions,
) -> Result<RunOutcome, SimRunError> {
    let input = SimRunError::Input;
    let failed = SimRunError::Failed;
    cfg.threads.check().map_err(|e| input(e.to_string()))?;
    // The same check, and the same message, as an in-process replay.
    let metas = strike_sim::universe::UniverseData::from_header(&recording.header)
        .map_err(|e| {
            input(crate::pipeline::RunError::Universe(e.into_iter().map(|x| x.to_string()).collect()).to_string())
        })?
        .markets;
    let plan = ServedPlan::of(&recording);
    let stall = SIM_STALL + longest_gap(&recording, pacing);
    // The simulator re-addresses frames (`sid`, `seq`): room for that beyond the largest one.
    let max_frame =
        recording.frames.iter().map(|f| f.text.len() + 256).max().unwrap_or(0).max(crate::feed::parse::MAX_FRAME);
    let mut header = recording.header.clone();
    header.yes_price_scale = true; // the feed subscribes with use_yes_price: true
    let source_name = header.source.clone();
    let rec = Arc::new(recording);

    let key = Arc::new(crate::auth::SigningKey::generate_ed25519().map_err(|e| failed(e.to_string()))?);
    let public: [u8; 32] =
        key.public_key().try_into().map_err(|_| failed("the generated Ed25519 public key is not 32 bytes".into()))?;
    let api = ApiKey { key_id: SIM_KEY_ID.into(), public_key: PublicKey::Ed25519(public) };
    let mut wc = WsServerConfig::new(Arc::clone(&rec), api.clone());
    wc.pacing = pacing;
    wc.max_frame_size = wc.max_frame_size.max(max_frame);
    let mut rc = RestServerConfig::new(Arc::clone(&rec), api, cfg.capital);
    rc.account_precision = cfg.account_precision;
    let srv = LinkedServers::start(wc, rc).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => input(format!(
            "the simulator cannot serve this recording: {e}; replay it with --in-process instead (no network), \
             or fix the recording"
        )),
        _ => failed(format!("cannot start the loopback simulator: {e}")),
    })?;
    let srv = Arc::new(srv);
    let tls = WsFeedConfig::pinned_tls(&srv.ws.cert().cert_der).map_err(failed)?;
    let signer = BackgroundSigner::spawn(key.clone(), DEFAULT_REFRESH).map_err(|e| failed(e.to_string()))?;
    let ws_cfg = WsFeedConfig {
        url: srv.ws.url(),
        connect_addr: Some(srv.ws.addr()),
        tls: tls.clone(),
        channels: ["orderbook_delta", "trade", "market_lifecycle_v2", "fill", "user_orders"]
            .iter()
            .map(|c| c.to_string())
            .collect(),
        tickers: header.markets.iter().map(|m| m.ticker.clone()).collect(),
        max_frame,
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        seed: std::process::id() as u64,
    };
    let ws = WsSource::new(ws_cfg, Box::new(SignerAuth { key_id: SIM_KEY_ID.into(), headers: signer.reader() }))
        .map_err(failed)?;
    let src = SimSource::new(ws, Box::new(Arc::clone(&srv)), plan, max_frame, stall);
    let mut rcfg = crate::gateway::rest::RestConfig::new(&srv.rest.url(), tls, SIM_KEY_ID);
    rcfg.connect_addr = Some(srv.rest.addr());
    rcfg.request_timeout = Duration::from_secs(5);
    rcfg.account_precision = cfg.account_precision;
    // The account's token buckets refill on the wall clock; a replay faster than real time
    // compresses the market's clock, not theirs, and the simulator enforces no limit: so only a
    // real-time replay keeps the configured tier, a faster one gets the highest.
    rcfg.tier = match pacing {
        Pacing::Recorded { speed } if speed <= 1.0 => cfg.rate_limit_tier,
        _ => crate::gateway::ratelimit::Tier::Prestige,
    };
    let gw = crate::gateway::rest::RestGateway::new(rcfg, &metas, signer.reader(), key.clone()).map_err(failed)?;
    let venue = crate::pipeline::VenueChoice::Live(Box::new(gw));
    let mut p = Pipeline::with_source(cfg, &header, src, true, max_frame, plugins, opts, venue)
        .map_err(|e| input(e.to_string()))?;

    // Until the source reports the replay done and the rings are empty, or Ctrl-C; `kill -USR1
    // <pid>` prints the latency so far. In the configured topology, as an in-process replay.
    let usr1 = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&usr1));
    let stop = Stop { flag: Some(stop_flag()), deadline: None, print_latency: Some(&*usr1) };
    p.drive(cfg.topology, &cfg.threads, &stop);
    let progress = p.feed().source().progress();
    let ws_stats = p.feed().source().inner().stats.clone();
    let mut outcome = p.finish();
    drop(signer);

    let r = &mut outcome.report;
    r.source = format!("{source_name} (served over TLS by the loopback simulator, {})", srv.ws.url());
    let rest = srv.rest.stats();
    let ws_srv = srv.ws.stats();
    let data_frames: u64 = ws_srv.connections().iter().map(|c| c.data_frames).sum();
    for (k, v) in [
        ("sim_ws_connections", ws_stats.opened),
        ("sim_ws_data_frames", data_frames),
        ("sim_ws_handshakes_refused", ws_srv.rejected().len() as u64),
        ("sim_rest_requests", rest.total_requests()),
        ("sim_orders_created", rest.creates),
        ("sim_fills", rest.fills),
        ("sim_filled_hundredths", rest.filled.0.max(0) as u64),
        ("sim_rest_auth_failures", rest.auth_failures),
        ("sim_replay_complete", u64::from(progress == SimProgress::Complete)),
    ] {
        r.live.insert(k.to_string(), v);
    }
    if progress == SimProgress::Stalled {
        r.faults.insert("sim.replay_incomplete".into(), 1);
    }
    let refused = rest.auth_failures + ws_srv.rejected().len() as u64;
    if refused > 0 {
        r.faults.insert("sim.auth_refused".into(), refused);
    }
    outcome.wire = Some(crate::pipeline::WireStamps {
        frames_sent_ns: ws_srv.data_frame_times(),
        creates_read_ns: srv.rest.create_read_times(),
    });
    drop(srv); // the last handle: both servers stop
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::atomic::AtomicU64;
    use strike_sim::recording::{Frame, MarketRecord, FORMAT_VERSION};

    const SNAP: &str = r#"{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"A","yes_dollars_fp":[["0.4000","1.00"]]}}"#;
    const DELTA: &str = r#"{"type":"orderbook_delta","sid":1,"seq":2,"msg":{"market_ticker":"A","price_dollars":"0.4000","delta_fp":"1.00","side":"yes"}}"#;
    const TRADE: &str = r#"{"type":"trade","sid":2,"msg":{"market_ticker":"A","yes_price_dollars":"0.40","count_fp":"1.00","taker_side":"yes"}}"#;
    const ACK: &str = r#"{"id":1,"type":"subscribed","msg":{"channel":"fill","sid":4}}"#;
    const FILL: &str = r#"{"type":"fill","sid":4,"msg":{"market_ticker":"A"}}"#;

    fn recording(frames: &[&str]) -> Recording {
        let market = |t: &str| MarketRecord { ticker: t.into(), ..Default::default() };
        Recording {
            header: Header {
                strike_recording: FORMAT_VERSION,
                source: "test".into(),
                yes_price_scale: false,
                markets: vec![market("A"), market("B")],
                events: vec![],
            },
            frames: frames.iter().enumerate().map(|(i, t)| Frame { recv_ns: i as u64, text: t.to_string() }).collect(),
        }
    }

    #[test]
    fn served_plans_follow_the_simulators_forwarding_rules() {
        let b = |t: &str| t.replace("\"A\"", "\"B\"");
        let z = |t: &str| t.replace("\"A\"", "\"Z\"");
        let rec = recording(&[
            ACK,
            &b(DELTA), // B has no book yet: not served
            SNAP,
            DELTA,
            &b(SNAP),
            &b(DELTA),
            TRADE,
            &z(TRADE), // not a listed market
            &z(SNAP),
            "not json",
        ]);
        let plan = ServedPlan::of(&rec);
        assert_eq!(plan.counts, ServedCounts { snapshots: 2, deltas: 2, trades: 1 });
        // the served frames' receive times (their index in the recording here), in order
        assert_eq!(plan.times, [2, 3, 4, 5, 6]);
        assert_eq!(ServedCounts::of(&rec), plan.counts);
    }

    enum Step {
        Frame(&'static str),
        Idle,
        Lost,
    }

    struct Script {
        steps: VecDeque<Step>,
        current: String,
    }

    impl FrameSource for Script {
        fn next_frame(&mut self) -> SourcePoll<'_> {
            match self.steps.pop_front() {
                Some(Step::Frame(t)) => {
                    self.current = t.to_string();
                    SourcePoll::Frame { recv_ns: 7, bytes: self.current.as_bytes() }
                }
                Some(Step::Lost) => SourcePoll::Disconnected,
                Some(Step::Idle) | None => SourcePoll::Idle,
            }
        }
    }

    #[derive(Clone, Default)]
    struct Watch {
        account: Arc<AtomicBool>,
        published: Arc<AtomicU64>,
        asked: Arc<AtomicU64>,
        /// 0: the latest connection's replay is not over; n + 1: over after n data frames.
        done_after: Arc<AtomicU64>,
    }

    impl SimWatch for Watch {
        fn account_read(&mut self) -> bool {
            self.asked.fetch_add(1, Ordering::SeqCst);
            self.account.load(Ordering::SeqCst)
        }
        fn private_published(&mut self) -> u64 {
            self.published.load(Ordering::SeqCst)
        }
        fn latest_connection_done(&mut self) -> Option<u64> {
            self.done_after.load(Ordering::SeqCst).checked_sub(1)
        }
    }

    fn source(steps: Vec<Step>, watch: &Watch) -> SimSource<Script> {
        let script = Script { steps: steps.into(), current: String::new() };
        // the recording's snapshot at t = 100, its delta at t = 200
        let plan = ServedPlan { counts: ServedCounts { snapshots: 1, deltas: 1, trades: 0 }, times: vec![100, 200] };
        SimSource::new(script, Box::new(watch.clone()), plan, 4096, Duration::from_secs(3600))
    }

    /// What the next poll gives: the frame text, "idle", "done" or "lost".
    fn next(s: &mut SimSource<Script>) -> String {
        next_at(s).0
    }

    /// [`next`] with the frame's stamp (0 for no frame).
    fn next_at(s: &mut SimSource<Script>) -> (String, u64) {
        match s.next_frame() {
            SourcePoll::Frame { bytes, recv_ns } => (String::from_utf8_lossy(bytes).into_owned(), recv_ns),
            SourcePoll::Idle => ("idle".into(), 0),
            SourcePoll::Done => ("done".into(), 0),
            SourcePoll::Disconnected => ("lost".into(), 0),
        }
    }

    #[test]
    fn market_data_waits_for_the_account_read_and_acks_do_not() {
        let watch = Watch::default();
        let mut s = source(vec![Step::Frame(ACK), Step::Frame(SNAP), Step::Frame(DELTA)], &watch);
        assert_eq!(next(&mut s), ACK, "acks pass at once: they bring the private stream up");
        assert_eq!(next(&mut s), "idle", "the first data frame is held");
        // held for as long as the exchange has not seen the positions read
        while watch.asked.load(Ordering::SeqCst) < 3 {
            assert_eq!(next(&mut s), "idle");
        }
        watch.account.store(true, Ordering::SeqCst);
        let released = loop {
            let n = next(&mut s);
            if n != "idle" {
                break n;
            }
        };
        assert_eq!(released, SNAP, "then delivered whole");
        assert_eq!(next(&mut s), DELTA, "and the rest flows");
    }

    #[test]
    fn the_run_ends_once_the_connection_served_everything_and_the_private_messages_are_in() {
        let watch = Watch::default();
        watch.account.store(true, Ordering::SeqCst);
        watch.published.store(1, Ordering::SeqCst);
        let steps = vec![
            Step::Frame(ACK),
            Step::Frame(SNAP),
            Step::Lost, // a new session replays from the start: the count starts again
            Step::Frame(ACK),
            Step::Frame(SNAP),
            Step::Frame(DELTA),
            Step::Idle,
            Step::Frame(FILL),
        ];
        let mut s = source(steps, &watch);
        let mut seen = Vec::new();
        loop {
            let (n, at) = next_at(&mut s);
            if n == "done" {
                break;
            }
            if n != "idle" {
                seen.push((n, at));
            }
        }
        let want = [(ACK, 100), (SNAP, 100), ("lost", 0), (ACK, 100), (SNAP, 100), (DELTA, 200), (FILL, 200)];
        assert_eq!(seen, want.map(|(t, at)| (t.to_string(), at)), "stamped with the recording's times");
        assert_eq!(s.progress(), SimProgress::Complete);
        assert_eq!(s.seen(), ServedCounts { snapshots: 1, deltas: 1, trades: 0 });
        assert_eq!(next(&mut s), "done", "and stays done");
    }

    #[test]
    fn after_a_reconnect_the_run_ends_when_the_simulator_says_the_resumed_replay_is_over() {
        let watch = Watch::default();
        watch.account.store(true, Ordering::SeqCst);
        let steps = vec![
            Step::Frame(ACK),
            Step::Frame(SNAP),
            Step::Lost,
            // the resumed session: a fresh snapshot of the book as it stands, and the delta had
            // already been served before the drop, so nothing more comes
            Step::Frame(ACK),
            Step::Frame(SNAP),
        ];
        let mut s = source(steps, &watch);
        for _ in 0..5 {
            next(&mut s);
        }
        std::thread::sleep(SIM_PROBE_EVERY);
        assert_eq!(next(&mut s), "idle", "the plan is not reached and the simulator has not said it is over");
        assert_eq!(s.progress(), SimProgress::Running);
        watch.done_after.store(2, Ordering::SeqCst); // over after 1 data frame on this connection
        std::thread::sleep(SIM_PROBE_EVERY);
        let mut end = next(&mut s);
        for _ in 0..100 {
            if end == "done" {
                break;
            }
            std::thread::sleep(SIM_PROBE_EVERY);
            end = next(&mut s);
        }
        assert_eq!(end, "done");
        assert_eq!(s.progress(), SimProgress::Complete);
    }
}
