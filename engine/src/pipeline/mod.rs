//! Stages, rings and the loop that drives them.
//!
//! Three stages, each a struct with a non-blocking `poll`: [`crate::feed::FeedStage`] (frames →
//! market data), [`crate::trader::TraderStage`] (books, strategies, risk) and the gateway
//! ([`crate::gateway::paper::PaperVenue`] in paper trading). They talk only through `rtrb` SPSC
//! rings of small `Copy` events ([`events`]):
//!
//! ```text
//! feed ──MdEvent──▶ trader ──OrderRequest──▶ gateway
//!   │  ◀─FeedCommand─┘  ◀────ExecEvent─────────┘
//!   └────MdEvent (paper venue's own copy)─────▶
//! ```
//!
//! Two placements of the same stage code ([`crate::config::Topology`], `topology` in
//! `engine.toml`), each thread pinned and waiting per `[threads.*]` ([`threads`]):
//! - `fused`: all three on one thread, polled in pipeline order ([`Pipeline::step`]). A paper
//!   replay is then deterministic: the venue has seen exactly the data the trader decided on
//!   when the order arrives. No hand-off between cores: the lowest tick-to-trade.
//! - `split`: feed, trader and gateway each on its own thread ([`Pipeline::drive`]), the rings
//!   crossing cores (~110 ns a hand-off here). The feed never waits for a strategy, and a slow
//!   gateway never delays a book update; a paper venue then sees the data as it stands when the
//!   order reaches it, as a real exchange would.
//!
//! In both, a full market-data ring never drops an event: the feed keeps it in its staging
//! buffer, waits, and counts the stall (`ring_stalls` in the report). The journal has its own
//! unpinned thread ([`crate::journal`]). [`Pipeline::finish`] drains every ring and flushes the
//! journal.

pub mod events;
pub mod threads;

use crate::config::{EngineConfig, Topology};
use crate::feed::{FeedStage, FrameSource, Poll, ReplaySource};
use crate::gateway::live::LiveGateway;
use crate::gateway::matcher::MatcherVenue;
use crate::gateway::paper::{PaperVenue, SentOrder};
use crate::host::{HostError, Plugin};
use crate::portfolio::PnlSummary;
use crate::risk::RiskLimits;
use crate::telemetry::report::{dollars, latency_table, PnlReport, Report, StrategyReport};
use crate::telemetry::{Clock, Latency};
use crate::trader::{TraderParts, TraderStage};
use std::sync::Arc;
use strike_sdk::book::BookStatus;
use strike_sim::recording::Recording;
use strike_sim::universe::UniverseData;

/// Slots of the feed → gateway ring of private frames ([`events::PrivateEvent`], 2 KiB each):
/// fills and order updates of our own orders, far rarer than market data.
const PRIVATE_RING: usize = 1024;

/// Why a run could not start.
#[derive(Debug)]
pub enum RunError {
    /// The recording's market metadata is invalid (every problem listed).
    Universe(Vec<String>),
    /// A strategy could not be created.
    Host(HostError),
    /// A strategy's configuration file could not be read.
    Config(crate::config::ConfigError),
    /// The journal could not be opened.
    Journal(crate::journal::JournalError),
    /// `[threads.*]` names a core this machine lacks.
    Placement(threads::PlacementError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Universe(e) => {
                writeln!(f, "the recording's market metadata has {} problem(s):", e.len())?;
                for m in e {
                    writeln!(f, "  - {m}")?;
                }
                Ok(())
            }
            RunError::Host(e) => write!(f, "{e}"),
            RunError::Config(e) => write!(f, "{e}"),
            RunError::Journal(e) => write!(f, "{e}"),
            RunError::Placement(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Options of one run beyond the configuration.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep the log of orders that reached the venue (tests, audits).
    pub log_orders: bool,
    /// Journal faults, sessions, orders, order updates and fills into this SQLite file
    /// ([`crate::journal`]); none when `None`.
    pub journal: Option<std::path::PathBuf>,
}

/// What a run leaves behind.
pub struct RunOutcome {
    /// The report.
    pub report: Report,
    /// Orders that reached the venue, when [`RunOptions::log_orders`] was set.
    pub order_log: Vec<SentOrder>,
    /// Every stage's latency histograms, merged (for `.hgrm` export).
    pub latency: Latency,
    /// The simulator's wire stamps, for a run against the in-process loopback simulator
    /// ([`crate::live::run_simulated`]); `None` otherwise.
    pub wire: Option<WireStamps>,
}

/// Wire stamps the loopback simulator took during a run, on one monotonic clock
/// ([`strike_sim::server::stats::wire_ns`], ns): when it handed each market-data frame to its
/// socket, and when it had read each create request. A create paired with the last frame sent
/// before it gives the wire-to-wire latency (frame on the wire → order on the wire) when the
/// frames are spaced wider than the engine's reaction (the `wire_to_wire` bench).
#[derive(Clone, Debug, Default)]
pub struct WireStamps {
    /// Each data frame sent, in order, ns.
    pub frames_sent_ns: Vec<u64>,
    /// Each create request read, in order, ns.
    pub creates_read_ns: Vec<u64>,
}

/// Replays `recording` through feed → trader → paper venue with `plugins`, in the configured
/// topology (`fused` on this thread, `split` on a thread per stage).
pub fn run(
    cfg: &EngineConfig,
    recording: Recording,
    plugins: &[Plugin],
    opts: &RunOptions,
) -> Result<RunOutcome, RunError> {
    cfg.threads.check().map_err(RunError::Placement)?;
    let mut p = Pipeline::new(cfg, recording, plugins, opts)?;
    p.drive(cfg.topology, &cfg.threads, &Stop::never());
    Ok(p.finish())
}

/// When a [`Pipeline::drive`] of a source that never ends by itself (a live feed) stops.
#[derive(Debug)]
pub struct Stop<'a> {
    /// Set (e.g. by Ctrl-C) to stop.
    pub flag: Option<&'a std::sync::atomic::AtomicBool>,
    /// Stop at this instant.
    pub deadline: Option<std::time::Instant>,
    /// When set, the stages print their latency so far to stderr and clear it (`SIGUSR1`).
    pub print_latency: Option<&'a std::sync::atomic::AtomicBool>,
}

impl Stop<'_> {
    /// Never stops early: a recording runs to its end.
    pub const fn never() -> Stop<'static> {
        Stop { flag: None, deadline: None, print_latency: None }
    }

    /// Whether it is time to stop. Reads an atomic and, with a deadline, the clock (~20 ns):
    /// called once per idle round and every [`STOP_CHECK_EVERY`] busy rounds.
    fn now(&self) -> bool {
        self.flag.is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
            || self.deadline.is_some_and(|d| std::time::Instant::now() >= d)
    }
}

/// Busy rounds between two checks of [`Stop`].
pub const STOP_CHECK_EVERY: u32 = 256;

/// Where orders go.
pub enum VenueChoice {
    /// The paper venue, fed its own copy of the market data: allocation-free, no queue model
    /// (in-process replays, the zero-allocation proof, the benchmarks).
    Paper,
    /// The simulator's matcher, fed its own copy of the market data: queue position under this
    /// model, exact fees (`--venue … --paper`; [`crate::gateway::matcher`]).
    Matched(strike_sim::matching::QueueModelKind),
    /// Kalshi's REST V2 API, through this gateway (real orders).
    Live(Box<crate::gateway::rest::RestGateway>),
}

// The paper venue is the common case and polled every step: kept inline, not boxed.
#[allow(clippy::large_enum_variant)]
enum Venue {
    Paper(PaperVenue),
    Matched(Box<MatcherVenue>),
    Live(Box<LiveGateway>),
}

impl Venue {
    #[inline]
    fn poll(&mut self) -> bool {
        match self {
            Venue::Paper(v) => v.poll(),
            Venue::Matched(v) => v.poll(),
            Venue::Live(v) => v.poll(),
        }
    }
    fn drained(&self) -> bool {
        match self {
            Venue::Paper(v) => v.drained(),
            Venue::Matched(v) => v.drained(),
            Venue::Live(v) => v.drained(),
        }
    }
    fn cancel_all(&mut self) {
        match self {
            Venue::Paper(v) => v.cancel_all(),
            Venue::Matched(v) => v.cancel_all(),
            Venue::Live(v) => v.cancel_all(),
        }
    }
    fn latency(&self) -> &Latency {
        match self {
            Venue::Paper(v) => &v.latency,
            Venue::Matched(v) => &v.latency,
            Venue::Live(v) => v.latency(),
        }
    }
    fn stats(&self) -> &crate::gateway::paper::GatewayStats {
        match self {
            Venue::Paper(v) => &v.stats,
            Venue::Matched(v) => &v.stats,
            Venue::Live(v) => &v.stats,
        }
    }
}

/// The three stages wired together in the fused topology. Everything is allocated in
/// [`Pipeline::new`]; [`Pipeline::step`] (the hot path) allocates nothing.
pub struct Pipeline<S: FrameSource = ReplaySource> {
    feed: FeedStage<S, Arc<UniverseData>>,
    trader: TraderStage,
    venue: Venue,
    universe: Arc<UniverseData>,
    source_name: String,
    journal: Option<crate::journal::Journal>,
    started: std::time::Instant,
}

impl Pipeline<ReplaySource> {
    /// A replay of `recording`: builds the universe, creates the strategies, allocates rings,
    /// books and buffers.
    pub fn new(
        cfg: &EngineConfig,
        recording: Recording,
        plugins: &[Plugin],
        opts: &RunOptions,
    ) -> Result<Pipeline, RunError> {
        let yes_scale = recording.header.yes_price_scale;
        let source = ReplaySource::new(recording.frames);
        let max_frame = source.max_frame_len().max(4096);
        Pipeline::with_source(cfg, &recording.header, source, yes_scale, max_frame, plugins, opts, VenueChoice::Paper)
    }
}

impl<S: FrameSource> Pipeline<S> {
    /// The stages over any frame source (a live WebSocket, a recording). `header` gives the
    /// markets and source name; `yes_scale` how NO levels arrive; `max_frame` the largest
    /// frame the parser must take without allocating.
    #[allow(clippy::too_many_arguments)]
    pub fn with_source(
        cfg: &EngineConfig,
        header: &strike_sim::recording::Header,
        source: S,
        yes_scale: bool,
        max_frame: usize,
        plugins: &[Plugin],
        opts: &RunOptions,
        venue: VenueChoice,
    ) -> Result<Pipeline<S>, RunError> {
        let started = std::time::Instant::now();
        let universe = UniverseData::from_header(header)
            .map_err(|e| RunError::Universe(e.into_iter().map(|x| x.to_string()).collect()))?;
        let universe = Arc::new(universe);
        let view = universe.view();
        let mut strategies = Vec::with_capacity(plugins.len());
        for (slot, p) in plugins.iter().enumerate() {
            let (text, _) = cfg.strategy_config(p.name()).map_err(RunError::Config)?;
            strategies.push(p.create(&text, &view, slot as u16).map_err(RunError::Host)?);
        }

        let cap = cfg.ring_capacity;
        let (md_tx, md_rx) = rtrb::RingBuffer::new(cap);
        let (paper_md_tx, paper_md_rx) = rtrb::RingBuffer::new(cap);
        let (ord_tx, ord_rx) = rtrb::RingBuffer::new(cap);
        let (exec_tx, exec_rx) = rtrb::RingBuffer::new(cap);
        let (cmd_tx, cmd_rx) = rtrb::RingBuffer::new(1024);
        let clock = Clock::default();

        let source_name = header.source.clone();
        let max_levels = 2 * universe.markets.iter().map(|m| m.grid.n_levels()).max().unwrap_or(101);
        let live = matches!(venue, VenueChoice::Live(_));
        let (private_tx, private_rx) = rtrb::RingBuffer::new(if live { PRIVATE_RING } else { 1 });
        let feed = FeedStage::new(
            source,
            universe.clone(),
            universe.len(),
            yes_scale,
            max_frame,
            max_levels,
            if matches!(venue, VenueChoice::Paper | VenueChoice::Matched(_)) {
                vec![md_tx, paper_md_tx]
            } else {
                vec![md_tx]
            },
            Some(cmd_rx),
            clock.clone(),
        );
        let feed = if live { feed.with_private(private_tx) } else { feed };
        let (journal, feed, venue_sink) = match &opts.journal {
            None => (None, feed, None),
            Some(path) => {
                let (sink, j) = crate::journal::Journal::open(path, Default::default()).map_err(RunError::Journal)?;
                let tickers: Vec<(strike_sdk::market::MarketId, &str)> = universe
                    .markets
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (strike_sdk::market::MarketId(i as u32), m.ticker.as_str()))
                    .collect();
                j.write_markets(&tickers).map_err(RunError::Journal)?;
                let venue_sink = j.sink().map_err(RunError::Journal)?;
                (Some(j), feed.with_journal(sink), Some(venue_sink))
            }
        };
        let trader = TraderStage::new(TraderParts {
            universe: universe.clone(),
            strategies,
            limits: RiskLimits { max_data_age_ns: cfg.max_data_age_ns(), ..RiskLimits::from(&cfg.risk) },
            md: md_rx,
            exec: exec_rx,
            orders: ord_tx,
            commands: Some(cmd_tx),
            intents_per_callback: cfg.intents_per_callback,
            capital: cfg.capital,
            timer_interval_ns: cfg.timer_interval_ns,
            clock: clock.clone(),
        });
        let venue = match venue {
            VenueChoice::Paper => {
                let mut v =
                    PaperVenue::new(&universe.markets, paper_md_rx, ord_rx, exec_tx, cfg.account_precision, clock);
                if opts.log_orders {
                    v.log_orders(1 << 20);
                }
                Venue::Paper(match venue_sink {
                    Some(s) => v.with_journal(s),
                    None => v,
                })
            }
            VenueChoice::Matched(queue) => {
                let mut v = MatcherVenue::new(
                    &universe.markets,
                    paper_md_rx,
                    ord_rx,
                    exec_tx,
                    cfg.account_precision,
                    clock,
                    queue,
                );
                if opts.log_orders {
                    v.log_orders(1 << 20);
                }
                Venue::Matched(Box::new(match venue_sink {
                    Some(s) => v.with_journal(s),
                    None => v,
                }))
            }
            VenueChoice::Live(gw) => {
                let v = LiveGateway::new(*gw, ord_rx, exec_tx, clock).with_private(private_rx);
                Venue::Live(Box::new(match venue_sink {
                    Some(s) => v.with_journal(s),
                    None => v,
                }))
            }
        };
        Ok(Pipeline { feed, trader, venue, universe, source_name, journal, started })
    }

    /// One round of the fused topology: feed, venue (market data), trader, venue (orders).
    /// Returns false once the recording is done and every ring is empty. The hot path.
    #[inline]
    pub fn step(&mut self) -> bool {
        self.round().1
    }

    /// One fused round: (did any stage work, is there more to do).
    #[inline]
    fn round(&mut self) -> (bool, bool) {
        let f = self.feed.poll();
        let v1 = self.venue.poll();
        let t = self.trader.poll(256);
        let v2 = self.venue.poll();
        let worked = f == Poll::Busy || v1 || t || v2;
        (worked, worked || f != Poll::Done || !self.trader.idle() || !self.venue.drained())
    }

    /// Steps until the recording is done (fused, on this thread, unpinned, never waiting).
    pub fn run_to_end(&mut self) {
        while self.step() {}
    }

    /// Runs the stages in `topology` until the source is done and every ring is empty, or
    /// `stop` says so. `fused`: on this thread, pinned per `threads.feed`. `split`: the feed,
    /// trader and gateway each on a scoped thread pinned per `threads`, this thread waiting for
    /// them; leftovers in the rings are handled by [`Pipeline::finish`]. Check the placement
    /// first with [`threads::Threads::check`] (a pin the OS refuses leaves the thread unpinned).
    pub fn drive(&mut self, topology: Topology, placement: &threads::Threads, stop: &Stop<'_>)
    where
        S: Send,
    {
        match topology {
            Topology::Fused => self.drive_fused(placement.feed, stop),
            Topology::Split => self.drive_split(placement, stop),
        }
    }

    fn drive_fused(&mut self, spec: threads::ThreadSpec, stop: &Stop<'_>) {
        threads::pin(spec);
        let mut wait = threads::Waiter::new(spec.wait);
        let mut rounds = 0u32;
        loop {
            let (worked, more) = self.round();
            if !more {
                return;
            }
            if worked {
                wait.busy();
                rounds += 1;
                if rounds < STOP_CHECK_EVERY {
                    continue;
                }
            }
            rounds = 0;
            if stop.now() {
                return;
            }
            if let Some(p) = stop.print_latency {
                if p.swap(false, std::sync::atomic::Ordering::Relaxed) {
                    eprint!("{}", crate::telemetry::report::latency_text(&self.latency()));
                }
            }
            if !worked {
                wait.idle();
            }
        }
    }

    fn drive_split(&mut self, placement: &threads::Threads, stop: &Stop<'_>)
    where
        S: Send,
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        let feed_done = AtomicBool::new(false);
        let trader_done = AtomicBool::new(false);
        let (feed, trader, venue) = (&mut self.feed, &mut self.trader, &mut self.venue);
        let (feed_done, trader_done) = (&feed_done, &trader_done);
        let print = |l: &Latency, stage: &str| {
            if let Some(p) = stop.print_latency {
                if p.load(Ordering::Relaxed) {
                    eprint!("[{stage} thread]\n{}", crate::telemetry::report::latency_text(l));
                }
            }
        };
        std::thread::scope(|scope| {
            // The feed: until the source is done (a recording) or told to stop (a live feed).
            let feed_spec = placement.feed;
            let f = spawn_stage(scope, "strike-feed", move || {
                threads::pin(feed_spec);
                let mut wait = threads::Waiter::new(feed_spec.wait);
                let mut rounds = 0u32;
                loop {
                    match feed.poll() {
                        Poll::Done => break,
                        Poll::Busy => {
                            wait.busy();
                            rounds += 1;
                            if rounds >= STOP_CHECK_EVERY {
                                rounds = 0;
                                if stop.now() {
                                    break;
                                }
                            }
                        }
                        Poll::Idle => {
                            if stop.now() {
                                break;
                            }
                            print(&feed.latency, "feed");
                            wait.idle();
                        }
                    }
                }
                feed_done.store(true, Ordering::Release);
            });
            // The gateway: until the trader is done and nothing is in flight.
            let gw_spec = placement.gateway;
            let g = spawn_stage(scope, "strike-gateway", move || {
                threads::pin(gw_spec);
                let mut wait = threads::Waiter::new(gw_spec.wait);
                loop {
                    if venue.poll() {
                        wait.busy();
                        continue;
                    }
                    if trader_done.load(Ordering::Acquire) && venue.drained() {
                        break;
                    }
                    print(venue.latency(), "gateway");
                    wait.idle();
                }
            });
            // The trader, on this scope's third thread, until the feed is done and its rings
            // are empty.
            let tr_spec = placement.trader;
            let t = spawn_stage(scope, "strike-trader", move || {
                threads::pin(tr_spec);
                let mut wait = threads::Waiter::new(tr_spec.wait);
                loop {
                    if trader.poll(256) {
                        wait.busy();
                        continue;
                    }
                    if feed_done.load(Ordering::Acquire) && trader.idle() {
                        break;
                    }
                    print(&trader.latency, "trader");
                    wait.idle();
                }
                trader_done.store(true, Ordering::Release);
            });
            for (name, h) in [("feed", f), ("trader", t), ("gateway", g)] {
                match h {
                    Ok(h) => {
                        if h.join().is_err() {
                            eprintln!("strike-engine: the {name} thread panicked");
                        }
                    }
                    Err(e) => eprintln!("strike-engine: cannot start the {name} thread: {e}"),
                }
            }
        });
        if let Some(p) = stop.print_latency {
            p.store(false, Ordering::Relaxed);
        }
    }

    /// Steps until `done(trader)` holds or `deadline` passes (live sources never end by
    /// themselves). Returns whether `done` held.
    pub fn run_until(&mut self, deadline: std::time::Instant, mut done: impl FnMut(&TraderStage) -> bool) -> bool {
        loop {
            self.step();
            if done(&self.trader) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// Every stage's latency so far, merged (a cold copy: for printing on demand).
    pub fn latency(&self) -> Latency {
        let mut l = Latency::default();
        l.merge(&self.feed.latency);
        l.merge(&self.trader.latency);
        l.merge(self.venue.latency());
        l
    }

    /// The trader stage (books, positions, counters).
    pub fn trader(&self) -> &TraderStage {
        &self.trader
    }

    /// The feed stage (its source and counters).
    pub fn feed(&self) -> &FeedStage<S, Arc<UniverseData>> {
        &self.feed
    }

    /// Shuts down (strategies' last word, every resting order cancelled) and builds the report.
    pub fn finish(mut self) -> RunOutcome {
        let (feed, trader, venue, universe) = (&mut self.feed, &mut self.trader, &mut self.venue, &self.universe);
        trader.shutdown();
        for _ in 0..4 {
            venue.poll();
            trader.poll(256);
        }
        venue.cancel_all();
        // A live venue answers over the network: wait (bounded) for every in-flight request.
        let deadline = std::time::Instant::now()
            + if matches!(venue, Venue::Live(_)) {
                std::time::Duration::from_secs(10)
            } else {
                // in-process: only what the split threads left in the rings, microseconds
                std::time::Duration::from_secs(1)
            };
        loop {
            let busy = venue.poll() | trader.poll(256);
            if (!busy && venue.drained() && trader.idle()) || std::time::Instant::now() >= deadline {
                break;
            }
        }
        for _ in 0..4 {
            venue.poll();
            trader.poll(256);
        }
        let started = self.started;
        let source_name = std::mem::take(&mut self.source_name);
        let mut latency = Latency::default();
        latency.merge(&feed.latency);
        latency.merge(&trader.latency);
        latency.merge(venue.latency());
        let fs = &feed.stats;
        let ts = &trader.stats;
        let vs = venue.stats();
        let mut report = Report {
            source: source_name,
            markets: universe.len(),
            frames: fs.frames,
            gaps: fs.gaps,
            stale_markets: fs.markets_marked_stale,
            stale_at_exit: trader
                .books()
                .iter()
                .filter(|b| b.status != BookStatus::Live && b.status != BookStatus::Closed)
                .count() as u64,
            resnapshot_requests: fs.resnapshot_requests,
            snapshots_applied: ts.snapshots_applied,
            deltas_applied: ts.deltas_applied,
            deltas_dropped_not_live: ts.deltas_dropped_not_live,
            ring_stalls: fs.ring_stalls + ts.order_ring_stalls,
            intents: ts.intents,
            orders: ts.orders_sent,
            cancels: ts.cancels_sent,
            fills: vs.fills,
            taker_fills: vs.taker_fills,
            maker_fills: vs.maker_fills,
            contracts_filled: vs.filled_qty.0 as f64 / 100.0,
            notional_filled: dollars(vs.filled_notional),
            latency_ns: latency_table(&latency),
            wall_seconds: started.elapsed().as_secs_f64(),
            ..Default::default()
        };
        for (k, v) in fs.by_type.iter() {
            report.messages.insert(k.to_string(), v);
        }
        for (k, v) in fs.faults.iter() {
            report.faults.insert(format!("parse.{k}"), v);
        }
        for (k, v) in ts.book_faults.iter() {
            report.faults.insert(format!("book.{k}"), v);
        }
        for (k, v) in ts.risk_rejects.iter() {
            report.rejects.insert(format!("risk.{k}"), v);
        }
        for (k, v) in vs.faults.iter() {
            report.faults.insert(format!("venue.{k}"), v);
        }
        for (k, v) in vs.events.iter() {
            report.live.insert(k.to_string(), v);
        }
        if fs.private_lost > 0 {
            report.faults.insert("feed.private_lost".into(), fs.private_lost);
        }
        if fs.disconnects > 0 {
            report.live.insert("disconnects".into(), fs.disconnects);
        }
        if fs.private_forwarded > 0 {
            report.live.insert("private_forwarded".into(), fs.private_forwarded);
        }
        if ts.positions_synced > 0 {
            report.live.insert("trader_positions_synced".into(), ts.positions_synced);
        }
        for (k, v) in vs.rejects.iter() {
            report.rejects.insert(format!("venue.{k}"), v);
        }
        let s: PnlSummary = trader.portfolio().summary(&universe.markets, trader.books());
        report.pnl = PnlReport {
            realized: dollars(s.realized),
            unrealized_mtm: dollars(s.unrealized),
            fees: dollars(s.fees),
            total_mtm: dollars(s.total),
            open_markets: s.open_markets,
            marked_at_settlement: s.marked_at_settlement,
        };
        report.strategies = trader
            .strategies()
            .iter()
            .map(|h| StrategyReport {
                name: h.name().to_string(),
                enabled: h.enabled(),
                panics: h.panics,
                disabled_in: h.disabled_in.map(str::to_string),
            })
            .collect();
        if let Some(j) = self.journal.take() {
            match j.finish() {
                Ok(s) => {
                    let w = &s.written;
                    for (k, v) in [
                        ("sessions", w.sessions),
                        ("faults", w.faults),
                        ("orders", w.orders),
                        ("order_updates", w.order_updates),
                        ("fills", w.fills),
                        ("dropped", s.dropped),
                    ] {
                        report.journal.insert(k.to_string(), v);
                    }
                    if s.dropped > 0 {
                        report.faults.insert("journal.dropped".into(), s.dropped);
                    }
                }
                Err(e) => {
                    eprintln!("strike-engine: {e}");
                    report.faults.insert("journal.write_failed".into(), 1);
                }
            }
        }
        let order_log = match venue {
            Venue::Paper(v) => v.order_log.take().unwrap_or_default(),
            Venue::Matched(v) => v.order_log.take().unwrap_or_default(),
            Venue::Live(_) => Vec::new(),
        };
        RunOutcome { report, order_log, latency, wire: None }
    }
}

/// Starts one stage thread of the `split` topology, named `name`.
fn spawn_stage<'scope, F: FnOnce() + Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    f: F,
) -> std::io::Result<std::thread::ScopedJoinHandle<'scope, ()>> {
    std::thread::Builder::new().name(name.to_string()).spawn_scoped(scope, f)
}

impl crate::feed::parse::MarketIndex for Arc<UniverseData> {
    #[inline]
    fn id_of(&self, ticker: &str) -> Option<strike_sdk::market::MarketId> {
        UniverseData::id_of(self, ticker)
    }
}
