//! The live gateway stage: order requests from the trader's ring go to Kalshi through the
//! [`RestGateway`], and what comes back goes onto the exec ring as [`ExecEvent`]s — the same
//! contract as the paper venue, so the trader cannot tell them apart.
//!
//! ## What comes back, and from where
//! - REST responses (acks, rejects, fills made at creation), through [`RestGateway::poll`].
//! - The account's private WebSocket stream (`fill`, `user_orders`), forwarded by the feed as
//!   raw frames on a [`PrivateEvent`] ring and fed to the order table
//!   ([`RestGateway::on_fill`], [`RestGateway::on_user_order`]): how a resting (GTC) order's
//!   later fills and venue-side cancels reach the strategy.
//!
//! ## Trading resumes only on a complete picture
//! The gateway starts *syncing* and trades only once it is *live*:
//!
//! ```text
//! Waiting ──Up──▶ Listing ──reads done──▶ Positions ──PositionsRead──▶ Live
//!    ▲               │ (a read failed: retry after 1 s)                  │
//!    └────Down (disconnect, lost or unreadable private frame)────────────┘
//! ```
//!
//! `Up` comes when `fill` and `user_orders` are both subscribed (at start, and again after every
//! reconnect). *Listing* reads every acknowledged order that is not terminal
//! (`GET /portfolio/orders`, [`RestGateway::resync`]), so fills and cancels the stream missed
//! come out as ordinary fills and updates. *Positions* reads `GET /portfolio/positions` and
//! compares each market with what the fills reported so far add up to (the gateway keeps that
//! tally): a market where they differ and no order of ours is live (positions held before this
//! run, or fills missed) is set to the venue's figure with an [`ExecEvent::Position`]; a
//! difference in a market with a live order is counted (`position_mismatch_live`) and left to
//! that order's own reports, which could still be on their way. While not live, a new order is
//! refused at once with [`RejectReason::Halted`] (counted as `live_syncing`): a decision taken
//! on a book that is stale or against positions that may be wrong must not reach the venue
//! late. Cancels always go through.
//!
//! Without a private stream (a gateway built with [`LiveGateway::new`] alone) nothing would
//! report a resting order's later fills, so GTC orders are refused
//! ([`RejectReason::BadTimeInForce`], counted as `live_gtc_refused`) and trading is live at once.
//!
//! Tick-to-trade is stamped when `submit` returns: the request bytes are written to a warm
//! connection then (or held by the token bucket, in which case the wait is part of it). Counters
//! are the paper venue's [`GatewayStats`], so reports read the same; faults and recoveries are in
//! its `faults` counters.

use super::orders::{GatewayEvent, OpKind};
use super::paper::GatewayStats;
use super::rest::RestGateway;
use crate::journal::{FaultSource, JournalEvent, JournalSink};
use crate::pipeline::events::{ExecEvent, OrderRequest, PrivateEvent};
use crate::telemetry::{Clock, Counters, Latency};
use strike_sdk::book::BookSide;
use strike_sdk::fees::Liquidity;
use strike_sdk::market::MarketId;
use strike_sdk::num::{Money, Qty};
use strike_sdk::order::{OrderStatus, OrderUpdate, RejectReason, TimeInForce};

/// How long after a failed resync read the resync starts again, ns.
const RESYNC_RETRY_NS: u64 = 1_000_000_000;

/// Where the gateway stands with the venue; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// The private stream is down (or not yet subscribed).
    Waiting,
    /// Reading the orders that are not terminal; retry at `retry_at_ns` if a read failed.
    Listing {
        /// A read of this round failed.
        failed: bool,
        /// Start again at this time (unix ns) after a failure; 0 = not scheduled.
        retry_at_ns: u64,
    },
    /// Reading the positions.
    Positions {
        /// A read of this round failed.
        failed: bool,
        /// The last page was handled.
        read: bool,
    },
    /// Trading.
    Live,
}

/// See the module docs.
pub struct LiveGateway {
    gw: RestGateway,
    orders: rtrb::Consumer<OrderRequest>,
    exec: rtrb::Producer<ExecEvent>,
    private: Option<rtrb::Consumer<PrivateEvent>>,
    sync: SyncState,
    /// Net position per market from the fills reported so far (+ the venue's figures taken),
    /// hundredths.
    tally: Vec<Qty>,
    pending: Vec<ExecEvent>,
    /// Positions read by a resync, checked once the poll's events are out.
    positions: Vec<(MarketId, Qty, Money)>,
    journal: Option<JournalSink>,
    /// Counters, as the paper venue's.
    pub stats: GatewayStats,
    /// Requests the gateway could not take or the venue refused (its `Failed` events). A refused
    /// create also reaches the trader as a `Rejected` update carrying the mapped reject reason.
    pub failures: u64,
}

impl LiveGateway {
    /// A stage over `gw`, reading `orders`, answering on `exec`, with no private stream:
    /// immediate (FOK, IOC) orders only; see the module docs.
    pub fn new(
        gw: RestGateway,
        orders: rtrb::Consumer<OrderRequest>,
        exec: rtrb::Producer<ExecEvent>,
        clock: Clock,
    ) -> LiveGateway {
        let n = gw.markets();
        let mut gw = gw;
        gw.set_clock(clock);
        LiveGateway {
            gw,
            orders,
            exec,
            private: None,
            sync: SyncState::Live,
            tally: vec![Qty::ZERO; n],
            pending: Vec::with_capacity(4096),
            positions: Vec::new(),
            journal: None,
            stats: GatewayStats {
                rejects: Counters::with_capacity(24),
                faults: Counters::with_capacity(8),
                events: Counters::with_capacity(8),
                ..Default::default()
            },
            failures: 0,
        }
    }

    /// Adds the account's private stream from the feed: resting orders are allowed, and
    /// trading starts once the stream is up and the venue's state is read (module docs).
    pub fn with_private(mut self, private: rtrb::Consumer<PrivateEvent>) -> LiveGateway {
        self.private = Some(private);
        self.sync = SyncState::Waiting;
        self
    }

    /// Journals orders sent, execution reports, the private stream's faults and the sync's
    /// progress from now on.
    pub fn with_journal(mut self, sink: JournalSink) -> LiveGateway {
        self.journal = Some(sink);
        self
    }

    fn journal(&mut self, ev: JournalEvent) {
        if let Some(j) = self.journal.as_mut() {
            j.record(ev);
        }
    }

    fn fault(&mut self, kind: &'static str, market: Option<MarketId>, value: i64) {
        self.stats.faults.bump(kind);
        let ts_ns = crate::auth::unix_now_ns();
        self.journal(JournalEvent::Fault { ts_ns, source: FaultSource::Gateway, kind, market, value });
    }

    fn session(&mut self, kind: &'static str, value: i64) {
        self.stats.events.bump(kind);
        self.journal(JournalEvent::Session { ts_ns: crate::auth::unix_now_ns(), kind, value });
    }

    /// The REST gateway (its counters and order table).
    pub fn rest(&self) -> &RestGateway {
        &self.gw
    }

    /// Where the gateway stands with the venue.
    pub fn sync_state(&self) -> SyncState {
        self.sync
    }

    fn emit(&mut self, e: ExecEvent) {
        if let Some(j) = self.journal.as_mut() {
            j.record(crate::journal::of_exec(crate::auth::unix_now_ns(), &e));
        }
        if !self.pending.is_empty() || self.exec.push(e).is_err() {
            self.pending.push(e);
        }
    }

    fn reject(&mut self, req: &OrderRequest, reason: RejectReason, counter: &'static str) {
        let OrderRequest::New { strategy, order_ref, market, side, yes_price, tag, .. } = *req else { return };
        self.stats.rejects.bump(counter);
        let update = OrderUpdate {
            order_ref,
            market,
            status: OrderStatus::Rejected,
            reason,
            filled: Qty::ZERO,
            remaining: Qty::ZERO,
            tag,
        };
        self.emit(ExecEvent::Update { strategy, update, side, yes_price });
    }

    /// The REST gateway's `tick_to_trade` (trigger read → create written) and
    /// `order_round_trip` (create written → response read) histograms, ns.
    pub fn latency(&self) -> &Latency {
        &self.gw.latency
    }

    /// Sends waiting requests, drives the connections, forwards what came back. True when it
    /// did work.
    pub fn poll(&mut self) -> bool {
        let mut n = 0;
        while n < self.pending.len() && self.exec.push(self.pending[n]).is_ok() {
            n += 1;
        }
        self.pending.drain(..n);
        let now = crate::auth::unix_now_ns();
        let mut busy = self.poll_private(now);
        while let Ok(req) = self.orders.pop() {
            busy = true;
            if let OrderRequest::New { tif, .. } = req {
                self.stats.orders += 1;
                if self.sync != SyncState::Live {
                    self.reject(&req, RejectReason::Halted, "live_syncing");
                    continue;
                }
                if tif == TimeInForce::Gtc && self.private.is_none() {
                    self.reject(&req, RejectReason::BadTimeInForce, "live_gtc_refused");
                    continue;
                }
            }
            match self.gw.submit(&req, now) {
                Ok(()) => {
                    if let Some(ev) = crate::journal::of_order(now, &req) {
                        self.journal(ev);
                    }
                    // tick-to-trade is recorded by the REST gateway once the bytes are written
                    if let OrderRequest::New { .. } = req {
                        self.stats.sent += 1;
                    }
                }
                // The gateway reports a refused submit itself (a Rejected update for a create it
                // cannot take, a Failed event otherwise): nothing to add here, or the strategy
                // would hear it twice.
                Err(_) => self.failures += 1,
            }
        }
        busy |= self.forward(now);
        self.advance_sync(now);
        busy
    }

    /// Feeds the private stream's frames to the order table and follows its ups and downs.
    fn poll_private(&mut self, now: u64) -> bool {
        let mut busy = false;
        while let Some(ev) = self.private.as_mut().and_then(|r| r.pop().ok()) {
            busy = true;
            match ev {
                PrivateEvent::Frame { len, bytes, .. } => {
                    let text = &bytes[..len as usize];
                    let gw = &mut self.gw;
                    let handled = match frame_type(text) {
                        Some(PrivateType::Fill) => super::orders::parse_fill(text, |f| gw.on_fill(f, now)),
                        Some(PrivateType::UserOrder) => {
                            super::orders::parse_user_order(text, |u| gw.on_user_order(u, now))
                        }
                        None => Err(String::new()),
                    };
                    match handled {
                        Ok(_) => self.stats.events.bump("private_frames"),
                        Err(_) => {
                            // A report about one of our orders that cannot be read: the venue's
                            // state must be read instead.
                            self.fault("private_unreadable", None, len as i64);
                            if self.sync != SyncState::Waiting {
                                self.start_resync(now);
                            }
                        }
                    }
                }
                PrivateEvent::Down => {
                    self.session("private_down", 0);
                    self.sync = SyncState::Waiting;
                }
                PrivateEvent::Up => self.start_resync(now),
            }
        }
        busy
    }

    fn start_resync(&mut self, now: u64) {
        let n = self.gw.resync(now);
        self.session("resyncs", n as i64);
        self.sync = SyncState::Listing { failed: false, retry_at_ns: 0 };
    }

    /// Moves the sync state on once its reads are done (module docs).
    fn advance_sync(&mut self, now: u64) {
        match self.sync {
            SyncState::Listing { failed: false, .. } if self.gw.reads_outstanding() == 0 => {
                self.gw.read_positions();
                self.sync = SyncState::Positions { failed: false, read: false };
            }
            SyncState::Listing { failed: true, retry_at_ns } if self.gw.reads_outstanding() == 0 => {
                if retry_at_ns == 0 {
                    self.sync = SyncState::Listing { failed: true, retry_at_ns: now + RESYNC_RETRY_NS };
                } else if now >= retry_at_ns {
                    self.start_resync(now);
                }
            }
            SyncState::Positions { failed, read } if self.gw.reads_outstanding() == 0 => {
                if failed || !read {
                    self.fault("resync_failed", None, 0);
                    self.sync = SyncState::Listing { failed: true, retry_at_ns: now + RESYNC_RETRY_NS };
                } else {
                    self.session("live", 0);
                    self.sync = SyncState::Live;
                }
            }
            _ => {}
        }
    }

    /// Forwards what the REST gateway reported; true when there was anything.
    fn forward(&mut self, now: u64) -> bool {
        let mut busy = false;
        let Self { gw, exec, pending, stats, failures, tally, sync, positions, journal, .. } = self;
        for ev in gw.poll(now).iter() {
            busy = true;
            match *ev {
                GatewayEvent::Exec(e) => {
                    match e {
                        ExecEvent::Fill { fill, .. } => {
                            stats.fills += 1;
                            match fill.liquidity {
                                Liquidity::Taker => stats.taker_fills += 1,
                                Liquidity::Maker => stats.maker_fills += 1,
                            }
                            stats.filled_qty += fill.qty;
                            stats.filled_notional += Money::notional(fill.yes_price, fill.qty);
                            stats.fees += fill.fee;
                            if let Some(t) = tally.get_mut(fill.market.idx()) {
                                match fill.side {
                                    BookSide::Bid => *t += fill.qty,
                                    BookSide::Ask => *t -= fill.qty,
                                }
                            }
                        }
                        ExecEvent::Update { update, .. } => match update.status {
                            OrderStatus::Rejected => stats.rejects.bump(update.reason.name()),
                            OrderStatus::Cancelled => stats.cancels += 1,
                            _ => {}
                        },
                        ExecEvent::Position { .. } => {}
                    }
                    if let Some(j) = journal.as_mut() {
                        j.record(crate::journal::of_exec(now, &e));
                    }
                    if !pending.is_empty() || exec.push(e).is_err() {
                        pending.push(e);
                    }
                }
                GatewayEvent::Failed { op, error, .. } => {
                    *failures += 1;
                    if let Some(j) = journal.as_mut() {
                        let (kind, value) = (op.name(), i64::from(error.status));
                        j.record(JournalEvent::Fault {
                            ts_ns: now,
                            source: FaultSource::Rest,
                            kind,
                            market: None,
                            value,
                        });
                    }
                    if matches!(op, OpKind::GetOrders | OpKind::GetPositions) {
                        match sync {
                            SyncState::Listing { failed, .. } | SyncState::Positions { failed, .. } => *failed = true,
                            _ => {}
                        }
                    }
                }
                GatewayEvent::Position { market, qty, exposure } => positions.push((market, qty, exposure)),
                GatewayEvent::PositionsRead => {
                    if let SyncState::Positions { read, .. } = sync {
                        *read = true;
                    }
                }
                _ => {}
            }
        }
        // After the fills of this poll are in the tally: a market where the venue says
        // otherwise and no order of ours could still report (module docs).
        for i in 0..self.positions.len() {
            let (market, qty, exposure) = self.positions[i];
            let Some(&t) = self.tally.get(market.idx()) else { continue };
            if t == qty {
                continue;
            }
            if self.gw.has_live_orders(market) {
                self.fault("position_mismatch_live", Some(market), qty.0 - t.0);
                continue;
            }
            self.stats.events.bump("positions_synced");
            self.tally[market.idx()] = qty;
            self.emit(ExecEvent::Position { market, qty, cost: yes_cost(qty, exposure) });
        }
        self.positions.clear();
        busy
    }

    /// True when no event waits to be delivered and no request is in flight or queued.
    pub fn drained(&self) -> bool {
        self.pending.is_empty() && self.gw.in_flight() == 0 && self.gw.queued() == 0
    }

    /// Shutdown: the trader has already asked to cancel each of its resting orders, one by one
    /// ([`crate::trader::TraderStage::shutdown`]); an account-wide cancel-all would also hit
    /// orders of other sessions on the same key, so none is sent. In-flight requests are waited
    /// for by the pipeline ([`LiveGateway::drained`]).
    pub fn cancel_all(&mut self) {}
}

/// A position's cost basis in YES terms, micro-dollars, from what it cost
/// (`market_exposure_dollars`): a YES position of `q` cost `exposure`; a NO position of `|q|`
/// bought for `exposure` is `|q|` YES sold at `1 − exposure/|q|`, so its YES cost is
/// `exposure − |q|·$1` (negative), as [`crate::portfolio`] books it.
pub fn yes_cost(qty: Qty, exposure: Money) -> Money {
    if qty.0 >= 0 {
        exposure
    } else {
        // $1 per contract: 1,000,000 micro-dollars per 100 hundredths
        Money(exposure.0 - qty.0.abs() * 10_000)
    }
}

#[derive(Clone, Copy)]
enum PrivateType {
    Fill,
    UserOrder,
}

/// The `type` of a private frame, read from its first 64 bytes (Kalshi writes `type` first),
/// else from the whole frame.
fn frame_type(text: &[u8]) -> Option<PrivateType> {
    #[derive(serde::Deserialize)]
    struct Ty<'a> {
        #[serde(borrow, rename = "type")]
        ty: std::borrow::Cow<'a, str>,
    }
    let head = &text[..text.len().min(64)];
    let find = |pat: &[u8]| head.windows(pat.len()).any(|w| w == pat);
    if find(b"\"type\":\"fill\"") {
        return Some(PrivateType::Fill);
    }
    if find(b"\"type\":\"user_order\"") {
        return Some(PrivateType::UserOrder);
    }
    match serde_json::from_slice::<Ty<'_>>(text).ok()?.ty.as_ref() {
        "fill" => Some(PrivateType::Fill),
        "user_order" => Some(PrivateType::UserOrder),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_position_costs_dollars_per_contract_less_what_it_paid() {
        // 3 NO bought at $0.40 = 3 YES sold at $0.60: YES cost −$1.80
        assert_eq!(yes_cost(Qty(-300), Money(1_200_000)), Money(-1_800_000));
        assert_eq!(yes_cost(Qty(500), Money(2_250_000)), Money(2_250_000));
    }

    #[test]
    fn frame_type_reads_type_wherever_it_is() {
        assert!(matches!(frame_type(br#"{"type":"fill","sid":3,"msg":{}}"#), Some(PrivateType::Fill)));
        assert!(matches!(frame_type(br#"{"sid":3, "type": "user_order","msg":{}}"#), Some(PrivateType::UserOrder)));
        assert!(frame_type(br#"{"type":"trade"}"#).is_none());
        assert!(frame_type(b"not json").is_none());
    }
}
