//! The feed stage: frames in, sequenced YES-scale [`MdEvent`]s out.
//!
//! [`FeedStage::poll`] takes one frame from its [`FrameSource`] (a socket in live trading, a
//! [`ReplaySource`] over a recording here), parses it ([`parse`]), checks its sequence
//! ([`seq`]), and pushes the resulting events onto the trader's ring and, when paper trading, the
//! paper venue's ring. A snapshot becomes `SnapshotBegin`, one `SnapshotLevel` per level and
//! `SnapshotEnd`, so every ring event stays small and `Copy`.
//!
//! A full ring never drops market data: events wait in a pre-allocated staging buffer, the stall
//! is counted, and the next frame is read only once every consumer has taken the previous
//! frame's events. Faults (parse, unknown market, gaps, terminal subscription errors) are
//! counted by kind and handled; none panics.
//!
//! In live trading the account's private frames (`fill`, `user_order`) are not parsed here:
//! they go whole to the gateway on their own ring ([`FeedStage::with_private`],
//! [`PrivateEvent`]), with `Up` once both channels are subscribed and `Down` when the connection
//! (or a frame, to a full ring or its size) is lost, so the gateway can reconcile before it
//! trades again. With a journal ([`FeedStage::with_journal`]) every fault and disconnect is
//! also journaled.
//!
//! Resnapshot requests (after a gap, or from the trader after a book fault) are counted here; in
//! live trading the WebSocket client turns them into `update_subscription` / `get_snapshot`
//! commands. A replay cannot ask its recording for a snapshot, so its markets stay stale until
//! the recording's next snapshot of them.

pub mod fastpath;
pub mod parse;
pub mod seq;
pub mod ws;

use crate::pipeline::events::{FeedCommand, MdEvent, PrivateEvent, StaleReason, PRIVATE_FRAME_CAP};
use crate::telemetry::{Clock, Counters, Hop, Latency};
use parse::{Channel, FrameParser, LifecycleKind, MarketIndex, ParseFault, Parsed};
use seq::{SeqCheck, Sequencer};
use strike_sdk::market::MarketId;
use strike_sdk::order::Trade;

/// What a frame source has for the feed right now.
pub enum SourcePoll<'a> {
    /// A frame received at `recv_ns` (unix ns).
    Frame {
        /// Receive time, unix ns.
        recv_ns: u64,
        /// The frame text.
        bytes: &'a [u8],
    },
    /// Nothing yet (live socket would block).
    Idle,
    /// The source is exhausted (end of a recording, or the socket closed for good).
    Done,
    /// The connection was lost: every subscription is gone, and the source is reconnecting.
    /// Reported once per loss.
    Disconnected,
}

/// Where frames come from.
pub trait FrameSource {
    /// The next frame, without blocking.
    fn next_frame(&mut self) -> SourcePoll<'_>;
    /// Asks the exchange for a fresh snapshot of `market` on subscription `sid` (live sources:
    /// `update_subscription` / `get_snapshot`). A recording cannot; the default does nothing.
    fn request_snapshot(&mut self, _sid: u32, _market: MarketId) {}
    /// A subscription died (terminal error 10, 17 or 25): reconnect and subscribe again.
    fn reconnect(&mut self) {}
}

/// Replays a recording's frames in order, as fast as the pipeline takes them.
pub struct ReplaySource {
    frames: Vec<strike_sim::recording::Frame>,
    pos: usize,
}

impl ReplaySource {
    /// A source over `frames`.
    pub fn new(frames: Vec<strike_sim::recording::Frame>) -> ReplaySource {
        ReplaySource { frames, pos: 0 }
    }
    /// Largest frame in bytes (to size the parser's buffers up front).
    pub fn max_frame_len(&self) -> usize {
        self.frames.iter().map(|f| f.text.len()).max().unwrap_or(0)
    }
}

impl FrameSource for ReplaySource {
    #[inline]
    fn next_frame(&mut self) -> SourcePoll<'_> {
        match self.frames.get(self.pos) {
            Some(f) => {
                self.pos += 1;
                SourcePoll::Frame { recv_ns: f.recv_ns, bytes: f.text.as_bytes() }
            }
            None => SourcePoll::Done,
        }
    }
}

/// What the feed counted.
#[derive(Clone, Debug, Default)]
pub struct FeedStats {
    /// Frames read.
    pub frames: u64,
    /// Messages by Kalshi `type` (`unknown` for types not used).
    pub by_type: Counters,
    /// Parse faults by kind.
    pub faults: Counters,
    /// Sequence gaps.
    pub gaps: u64,
    /// Snapshots whose `seq` reused an already-seen number (applied, counter unchanged).
    pub snapshot_seq_reused: u64,
    /// Subscriptions restarted by a `subscribed` ack for a known sid (reconnects).
    pub sid_restarts: u64,
    /// Markets marked stale (one per market per gap).
    pub markets_marked_stale: u64,
    /// Snapshot requests that live trading would send (per market).
    pub resnapshot_requests: u64,
    /// Deltas passed on to the trader.
    pub deltas_forwarded: u64,
    /// Snapshots passed on.
    pub snapshots_forwarded: u64,
    /// Trades passed on.
    pub trades_forwarded: u64,
    /// Terminal subscription errors (10, 17, 25).
    pub subscription_errors: u64,
    /// Times a ring was full and events had to wait.
    pub ring_stalls: u64,
    /// Messages on sids beyond the tracking table.
    pub untracked_sids: u64,
    /// Connections lost (live sources).
    pub disconnects: u64,
    /// Private frames (`fill`, `user_order`) forwarded to the gateway.
    pub private_forwarded: u64,
    /// Private frames that could not be forwarded (full ring, longer than
    /// [`PRIVATE_FRAME_CAP`]); each one makes the gateway reconcile.
    pub private_lost: u64,
}

/// The feed's end of the private stream to the gateway; see [`PrivateEvent`].
struct PrivateLink {
    ring: rtrb::Producer<PrivateEvent>,
    /// Bit 0: `fill` subscribed in this session; bit 1: `user_orders`.
    acked: u8,
    /// Both subscribed and `Up` reported.
    up: bool,
    /// A loss happened: `Down` (and `Up` if up) still to be delivered.
    owe: bool,
}

impl PrivateLink {
    fn frame(&mut self, recv_ns: u64, text: &[u8], stats: &mut FeedStats) {
        if text.len() > PRIVATE_FRAME_CAP {
            stats.private_lost += 1;
            self.owe = true;
            return;
        }
        let mut ev = PrivateEvent::Frame { recv_ns, len: text.len() as u16, bytes: [0; PRIVATE_FRAME_CAP] };
        if let PrivateEvent::Frame { bytes, .. } = &mut ev {
            bytes[..text.len()].copy_from_slice(text);
        }
        if self.ring.push(ev).is_ok() {
            stats.private_forwarded += 1;
        } else {
            stats.private_lost += 1;
            self.owe = true;
        }
    }

    fn subscribed(&mut self, bit: u8) {
        self.acked |= bit;
        if self.acked == 3 && !self.up {
            self.up = true;
            if !self.owe && self.ring.push(PrivateEvent::Up).is_err() {
                self.owe = true;
            }
        }
    }

    fn disconnected(&mut self) {
        self.acked = 0;
        self.up = false;
        self.owe = true;
    }

    /// Delivers an owed `Down` (+ `Up`) once the ring has room.
    #[inline]
    fn tick(&mut self) {
        if self.owe && self.ring.slots() >= 2 {
            let _ = self.ring.push(PrivateEvent::Down);
            if self.up {
                let _ = self.ring.push(PrivateEvent::Up);
            }
            self.owe = false;
        }
    }
}

/// The feed stage; see the module docs.
pub struct FeedStage<S: FrameSource, I: MarketIndex> {
    source: S,
    index: I,
    parser: FrameParser,
    seq: Sequencer,
    rings: Vec<rtrb::Producer<MdEvent>>,
    commands: Option<rtrb::Consumer<FeedCommand>>,
    staging: Vec<MdEvent>,
    cursors: Vec<usize>,
    stale: Vec<bool>,
    private: Option<PrivateLink>,
    journal: Option<crate::journal::JournalSink>,
    /// Receive time of the frame in hand, unix ns (journal timestamps).
    recv_ns: u64,
    clock: Clock,
    /// Latency of the feed's hops.
    pub latency: Latency,
    /// Counters.
    pub stats: FeedStats,
    done: bool,
}

/// Outcome of one `poll`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Work was done.
    Busy,
    /// Nothing to do right now.
    Idle,
    /// The source is exhausted and every event was delivered.
    Done,
}

impl<S: FrameSource, I: MarketIndex> FeedStage<S, I> {
    /// A feed over `source` for `n_markets` markets, pushing onto `rings` (trader first, then
    /// any other consumer such as the paper venue). `max_frame` and `max_levels` size the
    /// parser's buffers; `yes_price_scale` as in [`FrameParser::new`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: S,
        index: I,
        n_markets: usize,
        yes_price_scale: bool,
        max_frame: usize,
        max_levels: usize,
        rings: Vec<rtrb::Producer<MdEvent>>,
        commands: Option<rtrb::Consumer<FeedCommand>>,
        clock: Clock,
    ) -> Self {
        let n = rings.len();
        let mut parser = FrameParser::new(yes_price_scale, max_frame, max_levels);
        parser.warm_up(max_frame);
        FeedStage {
            source,
            index,
            parser,
            seq: Sequencer::new(n_markets),
            rings,
            commands,
            staging: Vec::with_capacity(max_levels + 2 * n_markets + 8),
            cursors: vec![0; n],
            stale: vec![false; n_markets],
            private: None,
            journal: None,
            recv_ns: 0,
            clock,
            latency: Latency::default(),
            stats: FeedStats {
                by_type: Counters::with_capacity(32),
                faults: Counters::with_capacity(16),
                ..Default::default()
            },
            done: false,
        }
    }

    /// Forwards the account's private frames (`fill`, `user_order`) and the state of their
    /// subscriptions to the gateway on `ring` (live trading). Without it they are only counted.
    pub fn with_private(mut self, ring: rtrb::Producer<PrivateEvent>) -> Self {
        self.private = Some(PrivateLink { ring, acked: 0, up: false, owe: false });
        self
    }

    /// Journals the feed's faults (parse faults, sequence gaps, lost private frames, terminal
    /// subscription errors) and disconnects from now on.
    pub fn with_journal(mut self, sink: crate::journal::JournalSink) -> Self {
        self.journal = Some(sink);
        self
    }

    #[cold]
    fn journal_fault(&mut self, source: crate::journal::FaultSource, kind: &'static str, value: i64) {
        if let Some(j) = self.journal.as_mut() {
            j.record(crate::journal::JournalEvent::Fault { ts_ns: self.recv_ns, source, kind, market: None, value });
        }
    }

    /// Delivers staged events to every ring; true when all were delivered.
    #[inline]
    fn flush(&mut self) -> bool {
        let mut all = true;
        for (ring, cur) in self.rings.iter_mut().zip(self.cursors.iter_mut()) {
            while *cur < self.staging.len() {
                match ring.push(self.staging[*cur]) {
                    Ok(()) => *cur += 1,
                    Err(_) => {
                        all = false;
                        break;
                    }
                }
            }
        }
        if all {
            self.staging.clear();
            self.cursors.iter_mut().for_each(|c| *c = 0);
        } else {
            self.stats.ring_stalls += 1;
        }
        all
    }

    fn mark_sid_stale(&mut self, sid: u32, reason: StaleReason) {
        let (staging, stale, stats, source) = (&mut self.staging, &mut self.stale, &mut self.stats, &mut self.source);
        self.seq.for_each_market(sid, |m| {
            if !stale[m.idx()] {
                stale[m.idx()] = true;
                stats.markets_marked_stale += 1;
                stats.resnapshot_requests += 1;
            }
            staging.push(MdEvent::Stale { market: m, reason });
            if reason == StaleReason::SeqGap || reason == StaleReason::Fault {
                source.request_snapshot(sid, m);
            }
        });
    }

    /// The connection is gone: every market is stale and every sid forgotten until the new
    /// session's snapshots arrive.
    #[cold]
    fn disconnected(&mut self) {
        self.stats.disconnects += 1;
        if let Some(j) = self.journal.as_mut() {
            let ts_ns = crate::auth::unix_now_ns();
            j.record(crate::journal::JournalEvent::Session { ts_ns, kind: "disconnected", value: 0 });
        }
        if let Some(p) = self.private.as_mut() {
            p.disconnected();
        }
        for i in 0..self.stale.len() {
            if !self.stale[i] {
                self.stale[i] = true;
                self.stats.markets_marked_stale += 1;
            }
            self.staging.push(MdEvent::Stale { market: MarketId(i as u32), reason: StaleReason::Resubscribed });
        }
        self.seq.reset();
    }

    /// Handles one frame or delivers waiting events. Never blocks.
    pub fn poll(&mut self) -> Poll {
        if let Some(cmds) = self.commands.as_mut() {
            while let Ok(FeedCommand::Resnapshot { market }) = cmds.pop() {
                if let Some(s) = self.stale.get_mut(market.idx()) {
                    *s = true;
                }
                self.stats.resnapshot_requests += 1;
                if let Some(sid) = self.seq.sid_of(market) {
                    self.source.request_snapshot(sid, market);
                }
            }
        }
        if let Some(p) = self.private.as_mut() {
            p.tick();
        }
        if !self.staging.is_empty() && !self.flush() {
            return Poll::Busy;
        }
        if self.done {
            return Poll::Done;
        }
        let t0 = self.clock.raw();
        let (recv_ns, bytes) = match self.source.next_frame() {
            SourcePoll::Frame { recv_ns, bytes } => (recv_ns, bytes),
            SourcePoll::Idle => return Poll::Idle,
            SourcePoll::Disconnected => {
                self.disconnected();
                self.flush();
                return Poll::Busy;
            }
            SourcePoll::Done => {
                self.done = true;
                return Poll::Done;
            }
        };
        self.stats.frames += 1;
        self.recv_ns = recv_ns;
        let (ty, parsed) = self.parser.parse(bytes, &self.index);
        self.stats.by_type.bump(ty);
        if let Some(p) = self.private.as_mut() {
            if ty == "fill" || ty == "user_order" {
                // the gateway reads them whole (order ids, statuses); a fill on a market outside
                // the universe is still ours
                let lost = self.stats.private_lost;
                let len = bytes.len() as i64;
                p.frame(recv_ns, bytes, &mut self.stats);
                if self.stats.private_lost != lost {
                    self.journal_fault(crate::journal::FaultSource::Feed, "private_lost", len);
                }
                self.latency.record(Hop::FeedParse, self.clock.ns(t0, self.clock.raw()));
                return Poll::Busy;
            }
        }
        match parsed {
            Err(f) => self.fault(f, ty),
            Ok(p) => self.handle(p, recv_ns, t0),
        }
        self.latency.record(Hop::FeedParse, self.clock.ns(t0, self.clock.raw()));
        self.flush();
        Poll::Busy
    }

    /// A fault on a sequenced frame still consumes its `seq` (no false gap afterwards). A bad
    /// snapshot or delta of a subscribed market means a book can no longer be trusted, and the
    /// ticker may be what was unreadable: every market of the sid goes stale. A frame for a
    /// market we never subscribed loses nothing of ours.
    #[cold]
    fn fault(&mut self, f: ParseFault, ty: &'static str) {
        self.stats.faults.bump(f.name());
        self.journal_fault(crate::journal::FaultSource::Feed, f.name(), 0);
        if let Some((sid, seq)) = self.parser.envelope_seq() {
            self.sequence(sid, seq);
            let book_msg = ty == "orderbook_delta" || ty == "orderbook_snapshot";
            if book_msg && f != ParseFault::UnknownMarket {
                self.mark_sid_stale(sid, StaleReason::Fault);
            }
        }
    }

    /// Sequence check shared by snapshots, deltas and acks. Returns false when the message must
    /// be dropped.
    #[inline]
    fn sequence(&mut self, sid: u32, seq: u64) -> bool {
        match self.seq.check(sid, seq) {
            SeqCheck::InOrder => true,
            SeqCheck::Gap { .. } => {
                self.stats.gaps += 1;
                self.journal_fault(crate::journal::FaultSource::Feed, "seq_gap", i64::from(sid));
                self.mark_sid_stale(sid, StaleReason::SeqGap);
                true
            }
            SeqCheck::Reused => true,
            SeqCheck::Untracked => {
                self.stats.untracked_sids += 1;
                true
            }
        }
    }

    fn handle(&mut self, p: Parsed, recv_ns: u64, t0: u64) {
        match p {
            Parsed::Snapshot { sid, seq, market } => {
                match self.seq.check_snapshot(sid, seq) {
                    SeqCheck::InOrder => {}
                    SeqCheck::Gap { .. } => {
                        self.stats.gaps += 1;
                        self.journal_fault(crate::journal::FaultSource::Feed, "seq_gap", i64::from(sid));
                        self.mark_sid_stale(sid, StaleReason::SeqGap);
                    }
                    SeqCheck::Reused => self.stats.snapshot_seq_reused += 1,
                    SeqCheck::Untracked => self.stats.untracked_sids += 1,
                }
                self.seq.attach(sid, market);
                self.stale[market.idx()] = false;
                self.staging.push(MdEvent::SnapshotBegin { market });
                for l in self.parser.levels() {
                    self.staging.push(MdEvent::SnapshotLevel { market, side: l.side, price: l.price, qty: l.qty });
                }
                self.staging.push(MdEvent::SnapshotEnd { market, recv_ns, t0 });
                self.stats.snapshots_forwarded += 1;
            }
            Parsed::Delta { sid, seq, market, side, price, delta, ts_ms, .. } => {
                if !self.sequence(sid, seq) {
                    return;
                }
                self.seq.attach(sid, market);
                if ts_ms > 0 {
                    let ex_ns = (ts_ms as u64).saturating_mul(1_000_000);
                    self.latency.record(Hop::ExchangeToRecv, recv_ns.saturating_sub(ex_ns));
                }
                self.staging.push(MdEvent::Delta { market, side, price, delta, ts_ms, recv_ns, t0 });
                self.stats.deltas_forwarded += 1;
            }
            Parsed::Trade { market, yes_price, qty, taker_side, is_block, ts_ms } => {
                let trade = Trade { market, yes_price, qty, taker_side, is_block, ts_ms };
                self.staging.push(MdEvent::Trade { trade, recv_ns, t0 });
                self.stats.trades_forwarded += 1;
            }
            Parsed::Ok { sid: Some(sid), seq: Some(seq), .. } => {
                self.sequence(sid, seq);
            }
            Parsed::Unsubscribed { sid: Some(sid), .. } => {
                self.mark_sid_stale(sid, StaleReason::Resubscribed);
                self.seq.remove(sid);
            }
            Parsed::Subscribed { sid, channel, .. } => {
                if let Some(p) = self.private.as_mut() {
                    match channel {
                        Channel::Fill => p.subscribed(1),
                        Channel::UserOrders => p.subscribed(2),
                        _ => {}
                    }
                }
                // A known sid acked again is a new epoch (reconnect): its books are unknown
                // until their snapshots arrive.
                self.mark_sid_stale(sid, StaleReason::Resubscribed);
                if self.seq.restart(sid) {
                    self.stats.sid_restarts += 1;
                }
            }
            Parsed::Error { code, .. } => {
                if matches!(code, 10 | 17 | 25) {
                    // Terminal for the subscription: start a fresh session (new sids, snapshots).
                    self.stats.subscription_errors += 1;
                    self.journal_fault(crate::journal::FaultSource::Ws, "subscription_error", i64::from(code));
                    self.source.reconnect();
                }
            }
            Parsed::Lifecycle { market: Some(market), kind, result_yes, grid } => match kind {
                LifecycleKind::Deactivated | LifecycleKind::Determined | LifecycleKind::Settled => {
                    self.staging.push(MdEvent::Closed { market, result_yes });
                }
                LifecycleKind::Activated => {
                    // Reactivation cancels resting orders; the book must be fetched again.
                    self.stale[market.idx()] = true;
                    self.stats.resnapshot_requests += 1;
                    if let Some(sid) = self.seq.sid_of(market) {
                        self.source.request_snapshot(sid, market);
                    }
                    self.staging.push(MdEvent::Reopened { market });
                }
                LifecycleKind::PriceLevelStructureUpdated => {
                    self.stale[market.idx()] = true;
                    self.stats.resnapshot_requests += 1;
                    if let Some(grid) = grid {
                        self.staging.push(MdEvent::Regrid { market, grid });
                    }
                    if let Some(sid) = self.seq.sid_of(market) {
                        self.source.request_snapshot(sid, market);
                    }
                    self.staging.push(MdEvent::Stale { market, reason: StaleReason::Regrid });
                }
                _ => {}
            },
            // Private fills and order updates of the recorded account, tickers, subscription acks:
            // counted by type above. Our own orders' fills come from the gateway.
            _ => {}
        }
    }

    /// The frame source (e.g. to read a WebSocket source's counters).
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Markets currently stale in the feed's view.
    pub fn stale_markets(&self) -> impl Iterator<Item = MarketId> + '_ {
        self.stale.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| MarketId(i as u32))
    }
}
