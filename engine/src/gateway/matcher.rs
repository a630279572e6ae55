//! Paper execution through the simulator's matcher: a venue stage with the paper venue's
//! contract ([`super::paper::PaperVenue`]: the same rings, the same [`ExecEvent`]s, the same
//! [`GatewayStats`]) whose fills come from [`strike_sim::matching::Matcher`], the fill model the
//! loopback exchange uses, with queue positions.
//!
//! ## What it owns
//! [`MatcherVenue`] reads its own copy of the market data ([`MdEvent`]) and the trader's
//! [`OrderRequest`]s, turns them into the matcher's inputs and turns the matcher's events into
//! [`ExecEvent`]s:
//!
//! | in | to the matcher |
//! |---|---|
//! | `SnapshotBegin`, `SnapshotLevel`…, `SnapshotEnd` | [`MarketData::Snapshot`] (the market is tradeable from then on) |
//! | `Delta` | [`MarketData::Delta`] |
//! | `Trade` (not a block trade, size > 0) | [`MarketData::Trade`] |
//! | `OrderRequest::New` | [`Command::New`] (self-trade prevention `taker_at_cross`, as the V2 encoder sends) |
//! | `OrderRequest::Cancel` | [`Command::Cancel`] |
//!
//! | matcher event | out |
//! |---|---|
//! | `Fill` | `ExecEvent::Fill` (price, size, taker/maker as the matcher decided, the fee the order's [`strike_sdk::fees::OrderFeeAccumulator`] charged at the account's precision), then `Update Filled` when nothing is left |
//! | `Resting` | `Update Resting` (filled so far, what rests) |
//! | `Cancelled` | `Update Cancelled`: reason [`RejectReason::SelfCross`] for self-trade prevention, [`RejectReason::MarketClosed`] for a market that closed or reopened, else [`RejectReason::Venue`] |
//! | `Rejected` | `Update Rejected`: `POST_ONLY_CROSS` → [`RejectReason::PostOnlyCross`], `FOK_INSUFFICIENT_VOLUME` → [`RejectReason::FokUnfilled`], `invalid_order` → [`RejectReason::Size`] or [`RejectReason::Price`], `market_not_found` → [`RejectReason::UnknownMarket`] |
//!
//! Semantics (documented in [`strike_sim::matching`]): FOK all or nothing against displayed
//! depth at or better than the limit, IOC fills what it can, GTC rests the rest, post-only that
//! would cross is refused; a resting order's queue position starts at the displayed size ahead of
//! it and advances by trades at its price and by the queue model for other decreases
//! ([`QueueModelKind`]: `risk_averse`, `power:N`, `log`, the engine's `paper_queue_model`); it
//! fills as maker when the queue ahead of it has traded away, when a trade prints through its
//! price, or when liquidity on the other side reaches it.
//!
//! Orders are refused without reaching the matcher when their market has no live book (before
//! its first snapshot, after a `Stale`: [`RejectReason::StaleBook`]) or is closed
//! ([`RejectReason::MarketClosed`]). A market that closes or reopens has its resting orders
//! cancelled, as Kalshi does. A market whose price grid changes (`Regrid`) has its resting orders
//! cancelled ([`RejectReason::Venue`]; Kalshi carries them over, but the matcher cannot change a
//! market's grid) and starts again on the new grid at its next snapshot. Market data the matcher
//! refuses (off the grid, a crossed snapshot, a size out of range) is counted in the stats'
//! `faults` as `matcher_md_refused`, and the market is not traded until its next good snapshot.
//!
//! Time: the matcher needs non-decreasing exchange time. The venue feeds it the latest receive
//! time it has seen (`recv_ns` of market data and of the data that triggered an order; unix ns,
//! recording time in replays), so an order meets the book exactly as the trader saw it (in the
//! fused topology) and fee waivers are judged on that clock.
//!
//! ## Not on the zero-allocation path
//! The matcher keeps its books and orders in `BTreeMap`s and a `HashMap`, returns events in
//! `Vec`s and takes snapshots as owned `Vec`s, so this venue allocates as it runs (the venue also
//! keeps its order tables in `HashMap`s). The zero-allocation proof and the benchmarks use the
//! flat, pre-allocated [`super::paper::PaperVenue`]; this venue is for paper trading on live data
//! (`--venue … --paper`), where fill fidelity (queue position) matters more than a few hundred
//! nanoseconds on the venue's side, which is not the engine's hot path anyway.

use super::encode::{NewOrderFields, OrderEncoder};
use super::paper::{GatewayStats, SentOrder};
use crate::pipeline::events::{ExecEvent, MdEvent, OrderRequest};
use crate::telemetry::{Clock, Counters, Hop, Latency};
use std::collections::HashMap;
use strike_sdk::book::BookSide;
use strike_sdk::fees::{AccountPrecision, Liquidity};
use strike_sdk::market::{MarketId, MarketMeta};
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::{Fill, OrderRef, OrderStatus, OrderUpdate, RejectReason};
use strike_sim::matching::{
    CancelReason, Command, MarketData, MarketSpec, MatchEvent, MatchEventKind, Matcher, MatcherConfig, NewOrder,
    OrderId, QueueModelKind, RejectCode, SelfTradePrevention,
};

/// Whether a market can be traded now, in the venue's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// No snapshot yet, or the feed declared it stale, or the matcher refused its data.
    Stale,
    /// A snapshot is being assembled.
    Snapshotting,
    /// Tradeable.
    Live,
    /// Closed, settled or deactivated.
    Closed,
}

/// One of our orders the matcher still holds.
#[derive(Clone, Copy, Debug)]
struct Live {
    strategy: u16,
    order_ref: OrderRef,
    market: MarketId,
    side: BookSide,
    price: Price,
    filled: Qty,
    tag: u32,
}

/// The matcher-backed paper venue stage; see the module docs.
pub struct MatcherVenue {
    metas: Vec<MarketMeta>,
    matcher: Matcher,
    /// The matcher's id of each market (a regrid moves a market to a fresh id).
    ids: Vec<MarketId>,
    next_id: u32,
    status: Vec<Status>,
    md: rtrb::Consumer<MdEvent>,
    orders: rtrb::Consumer<OrderRequest>,
    exec: rtrb::Producer<ExecEvent>,
    pending: Vec<ExecEvent>,
    live: HashMap<OrderId, Live>,
    by_ref: HashMap<(u16, OrderRef), OrderId>,
    next_order: u64,
    snap_bids: Vec<(Price, Qty)>,
    snap_asks: Vec<(Price, Qty)>,
    out: Vec<MatchEvent>,
    /// Why cancels in progress happen (a market closing), overriding the matcher's reason.
    cancel_reason: Option<RejectReason>,
    now_ns: u64,
    encoder: OrderEncoder,
    clock: Clock,
    journal: Option<crate::journal::JournalSink>,
    /// Latency of encoding and tick-to-trade.
    pub latency: Latency,
    /// Counters, as the paper venue's.
    pub stats: GatewayStats,
    /// Orders as they reached the venue, when enabled with [`MatcherVenue::log_orders`].
    pub order_log: Option<Vec<SentOrder>>,
}

impl MatcherVenue {
    /// A venue over `metas` (market `i` is `MarketId(i)`, as in the universe) reading market data
    /// from `md` and orders from `orders`, answering on `exec`, charging fees at `precision`,
    /// with the queue-position model `queue` (`QueueModelKind::default()` is `risk_averse`;
    /// `"power:2".parse()` and the engine's `paper_queue_model` give others). Every market starts
    /// untradeable until its first snapshot.
    pub fn new(
        metas: &[MarketMeta],
        md: rtrb::Consumer<MdEvent>,
        orders: rtrb::Consumer<OrderRequest>,
        exec: rtrb::Producer<ExecEvent>,
        precision: AccountPrecision,
        clock: Clock,
        queue: QueueModelKind,
    ) -> MatcherVenue {
        let mut matcher = Matcher::new(MatcherConfig { queue, precision });
        for (i, m) in metas.iter().enumerate() {
            // Ids are distinct by construction: adding cannot fail.
            let _ = matcher.add_market(MarketId(i as u32), MarketSpec { grid: m.grid, fees: m.fees });
        }
        MatcherVenue {
            metas: metas.to_vec(),
            matcher,
            ids: (0..metas.len() as u32).map(MarketId).collect(),
            next_id: metas.len() as u32,
            status: vec![Status::Stale; metas.len()],
            md,
            orders,
            exec,
            pending: Vec::with_capacity(4096),
            live: HashMap::with_capacity(1024),
            by_ref: HashMap::with_capacity(1024),
            next_order: 0,
            snap_bids: Vec::with_capacity(256),
            snap_asks: Vec::with_capacity(256),
            out: Vec::with_capacity(64),
            cancel_reason: None,
            now_ns: 0,
            encoder: OrderEncoder::default(),
            clock,
            journal: None,
            latency: Latency::default(),
            stats: GatewayStats {
                rejects: Counters::with_capacity(24),
                faults: Counters::with_capacity(4),
                ..Default::default()
            },
            order_log: None,
        }
    }

    /// The queue model in use (`"risk_averse"`, `"power:2"`, `"log"`).
    pub fn queue_model(&self) -> String {
        self.matcher.queue_model().name()
    }

    /// Keeps a log of every order that reaches the venue (pre-allocated for `cap` orders).
    pub fn log_orders(&mut self, cap: usize) {
        self.order_log = Some(Vec::with_capacity(cap));
    }

    /// Journals every order taken and every execution report from now on.
    pub fn with_journal(mut self, sink: crate::journal::JournalSink) -> MatcherVenue {
        self.journal = Some(sink);
        self
    }

    /// Orders resting now.
    pub fn resting_count(&self) -> usize {
        self.live.len()
    }

    /// The queue position of a resting order: outside quantity ahead of it, hundredths.
    pub fn ahead_of(&self, strategy: u16, order_ref: OrderRef) -> Option<Qty> {
        let id = self.by_ref.get(&(strategy, order_ref))?;
        self.matcher.order(*id).map(|o| o.ahead)
    }

    fn emit(&mut self, e: ExecEvent) {
        if let Some(j) = self.journal.as_mut() {
            j.record(crate::journal::of_exec(crate::auth::unix_now_ns(), &e));
        }
        if !self.pending.is_empty() || self.exec.push(e).is_err() {
            self.pending.push(e);
        }
    }

    fn flush(&mut self) {
        let mut n = 0;
        while n < self.pending.len() && self.exec.push(self.pending[n]).is_ok() {
            n += 1;
        }
        self.pending.drain(..n);
    }

    /// Applies waiting market data, then handles waiting orders. Returns true when it did work.
    pub fn poll(&mut self) -> bool {
        self.flush();
        let mut busy = false;
        while let Ok(ev) = self.md.pop() {
            busy = true;
            self.on_md(ev);
        }
        while let Ok(req) = self.orders.pop() {
            busy = true;
            match req {
                OrderRequest::New { .. } => self.on_new(req),
                OrderRequest::Cancel { strategy, order_ref } => self.on_cancel(strategy, order_ref),
            }
        }
        busy
    }

    fn advance(&mut self, recv_ns: u64) -> u64 {
        self.now_ns = self.now_ns.max(recv_ns);
        self.now_ns
    }

    fn on_md(&mut self, ev: MdEvent) {
        match ev {
            MdEvent::SnapshotBegin { market } => {
                self.snap_bids.clear();
                self.snap_asks.clear();
                if let Some(s) = self.status.get_mut(market.idx()) {
                    if *s != Status::Closed {
                        *s = Status::Snapshotting;
                    }
                }
            }
            MdEvent::SnapshotLevel { side, price, qty, .. } => match side {
                BookSide::Bid => self.snap_bids.push((price, qty)),
                BookSide::Ask => self.snap_asks.push((price, qty)),
            },
            MdEvent::SnapshotEnd { market, recv_ns, .. } => {
                let ts = self.advance(recv_ns);
                let md = MarketData::Snapshot {
                    bids: std::mem::take(&mut self.snap_bids),
                    asks: std::mem::take(&mut self.snap_asks),
                };
                let ok = self.market_data(market, ts, &md);
                if let MarketData::Snapshot { bids, asks } = md {
                    (self.snap_bids, self.snap_asks) = (bids, asks);
                }
                if let Some(s) = self.status.get_mut(market.idx()) {
                    if *s != Status::Closed {
                        *s = if ok { Status::Live } else { Status::Stale };
                    }
                }
            }
            MdEvent::Delta { market, side, price, delta, recv_ns, .. } => {
                let ts = self.advance(recv_ns);
                if self.status.get(market.idx()) == Some(&Status::Live)
                    && !self.market_data(market, ts, &MarketData::Delta { side, price, delta })
                {
                    self.status[market.idx()] = Status::Stale;
                }
            }
            MdEvent::Trade { trade, recv_ns, .. } => {
                let ts = self.advance(recv_ns);
                if !trade.is_block && trade.qty.0 > 0 && self.status.get(trade.market.idx()) == Some(&Status::Live) {
                    let md = MarketData::Trade { taker_side: trade.taker_side, price: trade.yes_price, qty: trade.qty };
                    self.market_data(trade.market, ts, &md);
                }
            }
            MdEvent::Stale { market, .. } => {
                if let Some(s) = self.status.get_mut(market.idx()) {
                    if *s != Status::Closed {
                        *s = Status::Stale;
                    }
                }
            }
            MdEvent::Closed { market, .. } => {
                self.cancel_market(market, RejectReason::MarketClosed);
                if let Some(s) = self.status.get_mut(market.idx()) {
                    *s = Status::Closed;
                }
            }
            MdEvent::Reopened { market } => {
                // Kalshi cancels resting orders on reactivation; trading waits for a snapshot.
                self.cancel_market(market, RejectReason::MarketClosed);
                if let Some(s) = self.status.get_mut(market.idx()) {
                    *s = Status::Stale;
                }
            }
            MdEvent::Regrid { market, grid } => {
                let Some(meta) = self.metas.get_mut(market.idx()) else { return };
                meta.grid = grid;
                let spec = MarketSpec { grid, fees: meta.fees };
                self.cancel_market(market, RejectReason::Venue);
                let id = MarketId(self.next_id);
                if self.matcher.add_market(id, spec).is_ok() {
                    self.next_id += 1;
                    self.ids[market.idx()] = id;
                }
                if self.status[market.idx()] != Status::Closed {
                    self.status[market.idx()] = Status::Stale;
                }
            }
        }
    }

    /// Hands `md` of `market` to the matcher at `ts` and reports its events; false when the
    /// matcher refused it (counted).
    fn market_data(&mut self, market: MarketId, ts: u64, md: &MarketData) -> bool {
        let Some(&id) = self.ids.get(market.idx()) else { return false };
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let ok = match self.matcher.on_market_data_into(ts, id, md, &mut out) {
            Ok(()) => true,
            Err(_) => {
                self.stats.faults.bump("matcher_md_refused");
                false
            }
        };
        self.report(&out);
        self.out = out;
        ok
    }

    fn command(&mut self, ts: u64, cmd: &Command) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        // Time never goes backwards here (`advance`): the only error cannot happen.
        let _ = self.matcher.on_command_into(ts, cmd, &mut out);
        self.report(&out);
        self.out = out;
    }

    /// Cancels every resting order of `market`, reporting `reason`.
    fn cancel_market(&mut self, market: MarketId, reason: RejectReason) {
        let ids: Vec<OrderId> = self.live.iter().filter(|(_, o)| o.market == market).map(|(id, _)| *id).collect();
        self.cancel_ids(&ids, reason);
    }

    fn cancel_ids(&mut self, ids: &[OrderId], reason: RejectReason) {
        let ts = self.now_ns;
        self.cancel_reason = Some(reason);
        for &id in ids {
            self.command(ts, &Command::Cancel { id });
        }
        self.cancel_reason = None;
    }

    fn update(&mut self, o: &Live, status: OrderStatus, reason: RejectReason, remaining: Qty) {
        let update = OrderUpdate {
            order_ref: o.order_ref,
            market: o.market,
            status,
            reason,
            filled: o.filled,
            remaining,
            tag: o.tag,
        };
        self.emit(ExecEvent::Update { strategy: o.strategy, update, side: o.side, yes_price: o.price });
    }

    fn forget(&mut self, id: OrderId) -> Option<Live> {
        let o = self.live.remove(&id)?;
        self.by_ref.remove(&(o.strategy, o.order_ref));
        Some(o)
    }

    /// Turns the matcher's events into execution reports.
    fn report(&mut self, events: &[MatchEvent]) {
        for ev in events {
            let Some(mut o) = self.live.get(&ev.order).copied() else { continue };
            match ev.kind {
                MatchEventKind::Accepted { .. } | MatchEventKind::Amended { .. } => {}
                MatchEventKind::Fill(f) => {
                    o.filled += f.qty;
                    self.stats.fills += 1;
                    match f.liquidity {
                        Liquidity::Taker => self.stats.taker_fills += 1,
                        Liquidity::Maker => self.stats.maker_fills += 1,
                    }
                    self.stats.filled_qty += f.qty;
                    self.stats.filled_notional += Money::notional(f.price, f.qty);
                    self.stats.fees += f.fee.charged;
                    let fill = Fill {
                        order_ref: o.order_ref,
                        market: o.market,
                        side: o.side,
                        liquidity: f.liquidity,
                        yes_price: f.price,
                        qty: f.qty,
                        fee: f.fee.charged,
                        post_position: Qty::ZERO, // the trader's portfolio fills this in
                        ts_ns: ev.ts_ns,
                        tag: o.tag,
                    };
                    self.emit(ExecEvent::Fill { strategy: o.strategy, fill });
                    if f.leaves.0 <= 0 {
                        self.forget(ev.order);
                        self.update(&o, OrderStatus::Filled, RejectReason::Venue, Qty::ZERO);
                    } else if let Some(l) = self.live.get_mut(&ev.order) {
                        l.filled = o.filled;
                    }
                }
                MatchEventKind::Resting { remaining, .. } => {
                    self.update(&o, OrderStatus::Resting, RejectReason::Venue, remaining);
                }
                MatchEventKind::Decreased { .. } => {}
                MatchEventKind::Cancelled { reason, .. } => {
                    self.forget(ev.order);
                    self.stats.cancels += 1;
                    let why = match reason {
                        CancelReason::SelfTradeTaker | CancelReason::SelfTradeMaker => RejectReason::SelfCross,
                        _ => self.cancel_reason.unwrap_or(RejectReason::Venue),
                    };
                    self.update(&o, OrderStatus::Cancelled, why, Qty::ZERO);
                }
                MatchEventKind::Rejected { code } => {
                    if code == RejectCode::NotFound {
                        self.stats.cancel_misses += 1;
                        continue;
                    }
                    self.forget(ev.order);
                    let why = reject_reason(code, &o, &self.metas);
                    self.stats.rejects.bump(why.name());
                    self.update(&o, OrderStatus::Rejected, why, Qty::ZERO);
                }
            }
        }
    }

    fn on_new(&mut self, req: OrderRequest) {
        let OrderRequest::New { strategy, order_ref, market, side, yes_price, qty, tif, post_only, tag, recv_ns, t0 } =
            req
        else {
            return;
        };
        if let Some(j) = self.journal.as_mut() {
            if let Some(ev) = crate::journal::of_order(crate::auth::unix_now_ns(), &req) {
                j.record(ev);
            }
        }
        self.stats.orders += 1;
        let o = Live { strategy, order_ref, market, side, price: yes_price, filled: Qty::ZERO, tag };
        let Some(meta) = self.metas.get(market.idx()) else {
            self.stats.rejects.bump(RejectReason::UnknownMarket.name());
            return self.update(&o, OrderStatus::Rejected, RejectReason::UnknownMarket, Qty::ZERO);
        };
        // The body the live gateway would send, for the same latency accounting.
        let te = self.clock.raw();
        let body = self.encoder.encode(&NewOrderFields {
            ticker: meta.ticker.as_str(),
            session: 0,
            slot: strategy,
            order_ref,
            side,
            count: qty,
            price: yes_price,
            tif,
            post_only,
            exchange_index: meta.exchange_index,
        });
        self.stats.bytes += body.len() as u64;
        let t1 = self.clock.raw();
        self.latency.record(Hop::OrderEncode, self.clock.ns(te, t1));
        self.latency.record(Hop::TickToTrade, self.clock.ns(t0, t1));
        self.stats.sent += 1;
        if let Some(log) = self.order_log.as_mut() {
            if log.len() < log.capacity() {
                log.push(SentOrder { market, recv_ns, order_ref });
            }
        }
        let ts = self.advance(recv_ns);
        match self.status[market.idx()] {
            Status::Live => {}
            Status::Closed => {
                self.stats.rejects.bump(RejectReason::MarketClosed.name());
                return self.update(&o, OrderStatus::Rejected, RejectReason::MarketClosed, Qty::ZERO);
            }
            Status::Stale | Status::Snapshotting => {
                self.stats.rejects.bump(RejectReason::StaleBook.name());
                return self.update(&o, OrderStatus::Rejected, RejectReason::StaleBook, Qty::ZERO);
            }
        }
        self.next_order += 1;
        let id = OrderId(self.next_order);
        self.live.insert(id, o);
        self.by_ref.insert((strategy, order_ref), id);
        let cmd = Command::New(NewOrder {
            id,
            market: self.ids[market.idx()],
            side,
            price: yes_price,
            qty,
            tif,
            post_only,
            stp: SelfTradePrevention::TakerAtCross,
        });
        // Every end of an order (last fill, cancel, reject) comes as an event and forgets it.
        self.command(ts, &cmd);
    }

    fn on_cancel(&mut self, strategy: u16, order_ref: OrderRef) {
        match self.by_ref.get(&(strategy, order_ref)).copied() {
            Some(id) => {
                let ts = self.now_ns;
                self.command(ts, &Command::Cancel { id });
            }
            None => self.stats.cancel_misses += 1,
        }
    }

    /// Cancels every resting order (shutdown).
    pub fn cancel_all(&mut self) {
        let ids: Vec<OrderId> = self.live.keys().copied().collect();
        self.cancel_ids(&ids, RejectReason::Venue);
    }

    /// True when no events wait to be delivered.
    pub fn drained(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The engine's reason for a matcher refusal.
fn reject_reason(code: RejectCode, o: &Live, metas: &[MarketMeta]) -> RejectReason {
    match code {
        RejectCode::PostOnlyCross => RejectReason::PostOnlyCross,
        RejectCode::FokInsufficientVolume { .. } => RejectReason::FokUnfilled,
        RejectCode::MarketNotFound => RejectReason::UnknownMarket,
        RejectCode::InvalidOrder => {
            let on_grid = metas.get(o.market.idx()).is_some_and(|m| m.grid.contains(o.price));
            if on_grid && o.price.0 > 0 && o.price.0 < Price::ONE {
                RejectReason::Size
            } else {
                RejectReason::Price
            }
        }
        RejectCode::OrderAlreadyExists | RejectCode::NotFound => RejectReason::Venue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strike_sdk::fees::{FeeSchedule, FeeType, OrderFeeAccumulator};
    use strike_sdk::market::Ticker;
    use strike_sdk::order::{TimeInForce, Trade};

    const M: MarketId = MarketId(0);

    struct Rig {
        venue: MatcherVenue,
        md: rtrb::Producer<MdEvent>,
        orders: rtrb::Producer<OrderRequest>,
        exec: rtrb::Consumer<ExecEvent>,
        next: u64,
        ns: u64,
    }

    fn fees() -> FeeSchedule {
        FeeSchedule::of(FeeType::QuadraticWithMakerFees)
    }

    /// A venue over one market with `queue`, before any snapshot.
    fn bare(queue: &str) -> Rig {
        let mut meta = MarketMeta::bare(M, Ticker::new("M").unwrap());
        meta.fees = fees();
        let (md, md_rx) = rtrb::RingBuffer::new(1024);
        let (orders, ord_rx) = rtrb::RingBuffer::new(1024);
        let (exec_tx, exec) = rtrb::RingBuffer::new(1024);
        let queue: QueueModelKind = queue.parse().unwrap();
        let venue = MatcherVenue::new(&[meta], md_rx, ord_rx, exec_tx, AccountPrecision::Cent, Clock::default(), queue);
        Rig { venue, md, orders, exec, next: 0, ns: 1_000 }
    }

    /// Asks 0.50 x 10 and 0.51 x 10, bids 0.48 x 10 (outside liquidity).
    fn rig(queue: &str) -> Rig {
        let mut r = bare(queue);
        r.snapshot(&[(BookSide::Ask, 5000, 10), (BookSide::Ask, 5100, 10), (BookSide::Bid, 4800, 10)]);
        r
    }

    impl Rig {
        fn tick(&mut self) -> u64 {
            self.ns += 1_000;
            self.ns
        }
        fn md(&mut self, e: MdEvent) -> Vec<ExecEvent> {
            self.md.push(e).unwrap();
            self.venue.poll();
            self.drain()
        }
        fn snapshot(&mut self, levels: &[(BookSide, u16, i64)]) {
            self.md(MdEvent::SnapshotBegin { market: M });
            for &(side, p, q) in levels {
                self.md(MdEvent::SnapshotLevel { market: M, side, price: Price(p), qty: Qty::contracts(q) });
            }
            let recv_ns = self.tick();
            self.md(MdEvent::SnapshotEnd { market: M, recv_ns, t0: 0 });
        }
        fn delta(&mut self, side: BookSide, p: u16, d: i64) -> Vec<ExecEvent> {
            let recv_ns = self.tick();
            self.md(MdEvent::Delta {
                market: M,
                side,
                price: Price(p),
                delta: Qty::contracts(d),
                ts_ms: 0,
                recv_ns,
                t0: 0,
            })
        }
        /// A trade print of `q` contracts at `p`, the taker on `taker`.
        fn trade(&mut self, taker: BookSide, p: u16, q: i64) -> Vec<ExecEvent> {
            let recv_ns = self.tick();
            let trade = Trade {
                market: M,
                yes_price: Price(p),
                qty: Qty::contracts(q),
                taker_side: taker,
                is_block: false,
                ts_ms: 0,
            };
            self.md(MdEvent::Trade { trade, recv_ns, t0: 0 })
        }
        fn order(&mut self, side: BookSide, price: u16, qty: i64, tif: TimeInForce, post_only: bool) -> Vec<ExecEvent> {
            self.next += 1;
            let recv_ns = self.tick();
            self.orders
                .push(OrderRequest::New {
                    strategy: 0,
                    order_ref: OrderRef(self.next),
                    market: M,
                    side,
                    yes_price: Price(price),
                    qty: Qty::contracts(qty),
                    tif,
                    post_only,
                    tag: 7,
                    recv_ns,
                    t0: 0,
                })
                .unwrap();
            self.venue.poll();
            self.drain()
        }
        fn cancel(&mut self, order_ref: u64) -> Vec<ExecEvent> {
            self.orders.push(OrderRequest::Cancel { strategy: 0, order_ref: OrderRef(order_ref) }).unwrap();
            self.venue.poll();
            self.drain()
        }
        fn drain(&mut self) -> Vec<ExecEvent> {
            let mut v = Vec::new();
            while let Ok(e) = self.exec.pop() {
                v.push(e);
            }
            v
        }
    }

    /// `(price, contracts, liquidity, fee)` of every fill.
    fn fills(ev: &[ExecEvent]) -> Vec<(u16, f64, Liquidity, Money)> {
        ev.iter()
            .filter_map(|e| match e {
                ExecEvent::Fill { fill, .. } => {
                    Some((fill.yes_price.0, fill.qty.0 as f64 / 100.0, fill.liquidity, fill.fee))
                }
                _ => None,
            })
            .collect()
    }

    /// Every update: `(status, reason, filled, remaining)` in contracts.
    fn updates(ev: &[ExecEvent]) -> Vec<(OrderStatus, RejectReason, i64, i64)> {
        ev.iter()
            .filter_map(|e| match e {
                ExecEvent::Update { update: u, .. } => {
                    Some((u.status, u.reason, u.filled.0 / 100, u.remaining.0 / 100))
                }
                _ => None,
            })
            .collect()
    }

    /// The fees an order's accumulator charges for `fills` `(liquidity, price, contracts)`.
    fn charged(fills: &[(Liquidity, u16, i64)]) -> Vec<Money> {
        let mut acc = OrderFeeAccumulator::new();
        fills
            .iter()
            .map(|&(l, p, q)| acc.on_fill(&fees(), l, Price(p), Qty::contracts(q), AccountPrecision::Cent).charged)
            .collect()
    }

    use BookSide::{Ask, Bid};
    use Liquidity::{Maker, Taker};
    use OrderStatus::{Cancelled, Filled, Rejected, Resting};
    use TimeInForce::{Fok, Gtc, Ioc};

    #[test]
    fn order_outcomes_against_a_scripted_book() {
        // (what, side, limit, contracts, tif, post-only) → (fills: price, contracts, liquidity;
        // the one update: status, reason, filled, remaining)
        type Case = (
            &'static str,
            BookSide,
            u16,
            i64,
            TimeInForce,
            bool,
            &'static [(u16, f64, Liquidity)],
            (OrderStatus, RejectReason, i64, i64),
        );
        use RejectReason as R;
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("FOK short of depth",        Bid, 5100, 25, Fok, false, &[], (Rejected, R::FokUnfilled, 0, 0)),
            ("FOK through two levels",    Bid, 5100, 15, Fok, false, &[(5000, 10.0, Taker), (5100, 5.0, Taker)], (Filled, R::Venue, 15, 0)),
            ("FOK not marketable",        Bid, 4900, 1,  Fok, false, &[], (Rejected, R::FokUnfilled, 0, 0)),
            ("IOC takes what is there",   Bid, 5000, 25, Ioc, false, &[(5000, 10.0, Taker)], (Cancelled, R::Venue, 10, 0)),
            ("IOC sell into the bid",     Ask, 4800, 4,  Ioc, false, &[(4800, 4.0, Taker)], (Filled, R::Venue, 4, 0)),
            ("GTC takes, rests the rest", Bid, 5000, 12, Gtc, false, &[(5000, 10.0, Taker)], (Resting, R::Venue, 10, 2)),
            ("GTC below the ask rests",   Bid, 4900, 3,  Gtc, false, &[], (Resting, R::Venue, 0, 3)),
            ("post-only bid crossing",    Bid, 5000, 1,  Gtc, true,  &[], (Rejected, R::PostOnlyCross, 0, 0)),
            ("post-only ask crossing",    Ask, 4800, 1,  Gtc, true,  &[], (Rejected, R::PostOnlyCross, 0, 0)),
            ("post-only passive",         Ask, 5200, 2,  Gtc, true,  &[], (Resting, R::Venue, 0, 2)),
            ("off the grid",              Bid, 4850, 1,  Gtc, false, &[], (Rejected, R::Price, 0, 0)),
        ];
        for &(what, side, price, qty, tif, post_only, want_fills, want_last) in cases {
            let mut r = rig("risk_averse");
            let ev = r.order(side, price, qty, tif, post_only);
            let got: Vec<(u16, f64, Liquidity)> = fills(&ev).iter().map(|f| (f.0, f.1, f.2)).collect();
            assert_eq!(got, want_fills, "{what}");
            let ups = updates(&ev);
            assert_eq!(ups.len(), 1, "{what}: exactly one update per order outcome: {ups:?}");
            assert_eq!(ups[0], want_last, "{what}");
            // every fee is what the order's own accumulator charges for its fills, exactly
            let want_fees = charged(&want_fills.iter().map(|&(p, q, l)| (l, p, q as i64)).collect::<Vec<_>>());
            assert_eq!(fills(&ev).iter().map(|f| f.3).collect::<Vec<_>>(), want_fees, "{what}");
            let resting = usize::from(want_last.0 == Resting);
            assert_eq!(r.venue.resting_count(), resting, "{what}");
        }
    }

    #[test]
    fn taken_liquidity_is_gone_and_the_stats_add_up() {
        let mut r = rig("risk_averse");
        r.order(Bid, 5000, 10, Fok, false);
        let ev = r.order(Bid, 5000, 1, Fok, false);
        assert_eq!(updates(&ev), [(Rejected, RejectReason::FokUnfilled, 0, 0)], "the 0.50 level was taken");
        let s = &r.venue.stats;
        assert_eq!((s.orders, s.sent, s.fills, s.taker_fills, s.maker_fills), (2, 2, 1, 1, 0));
        assert_eq!(s.filled_qty, Qty::contracts(10));
        assert_eq!(s.filled_notional, Money::dollars(5));
        assert_eq!(s.fees, charged(&[(Taker, 5000, 10)])[0]);
        assert_eq!(s.rejects.get("fok_unfilled"), 1);
        assert!(s.bytes > 0 && r.venue.latency.hist(Hop::TickToTrade).len() == 2);
    }

    /// Our bid of 5 joins the outside 10 at 0.48 (ahead = 10). Then, in order:
    /// 1. +4 joins behind us (level 14, ahead 10);
    /// 2. −3 not explained by a trade: risk-averse assumes it came from behind
    ///    (ahead = min(10, 14 − 3) = 10); `power:2` splits it by f(ahead)/(f(ahead)+f(behind)) =
    ///    10²/(10² + 4²) = 100/116, taking ⌊300 × 100/116⌋ = 258 hundredths from ahead (7.42);
    /// 3. a sell of 5 prints at 0.48: it eats 5 of what is ahead (10 → 5, or 7.42 → 2.42): no
    ///    fill; its delta −5 follows (level 6) and is netted against the print (no further move);
    /// 4. a sell of 8 prints at 0.48: risk-averse: the 5 ahead trade first, then 3 of ours (a
    ///    maker fill of 3, 2 left); `power:2`: 2.42 ahead, then all 5 of ours (filled);
    /// 5. risk-averse only: the delta −5, then a sell of 2 fills our last 2.
    #[test]
    fn a_resting_order_fills_as_maker_once_the_queue_ahead_has_traded_away() {
        for (model, ahead_2, ahead_3, fill_4) in
            [("risk_averse", Qty(1000), Qty(500), 3), ("power:2", Qty(742), Qty(242), 5)]
        {
            let mut r = rig(model);
            assert_eq!(r.venue.queue_model(), model);
            let ev = r.order(Bid, 4800, 5, Gtc, true);
            assert_eq!(updates(&ev), [(Resting, RejectReason::Venue, 0, 5)], "{model}");
            let ahead = |r: &Rig| r.venue.ahead_of(0, OrderRef(1));
            assert_eq!(ahead(&r), Some(Qty::contracts(10)), "{model}: behind the 10 there first");
            assert!(r.delta(Bid, 4800, 4).is_empty());
            assert_eq!(ahead(&r), Some(Qty::contracts(10)), "{model}: joined behind us");
            assert!(r.delta(Bid, 4800, -3).is_empty());
            assert_eq!(ahead(&r), Some(ahead_2), "{model}: a cancel");
            assert!(fills(&r.trade(Ask, 4800, 5)).is_empty(), "{model}: the queue ahead trades first");
            assert!(r.delta(Bid, 4800, -5).is_empty());
            assert_eq!(ahead(&r), Some(ahead_3), "{model}: the print, then its delta");
            let ev = r.trade(Ask, 4800, 8);
            assert_eq!(fills(&ev), [(4800, fill_4 as f64, Maker, charged(&[(Maker, 4800, fill_4)])[0])], "{model}");
            if fill_4 == 5 {
                assert_eq!(updates(&ev), [(Filled, RejectReason::Venue, 5, 0)], "{model}");
                assert_eq!(r.venue.resting_count(), 0);
                continue;
            }
            assert!(updates(&ev).is_empty(), "{model}: partly filled, still resting");
            r.delta(Bid, 4800, -5);
            let ev = r.trade(Ask, 4800, 2);
            let want = charged(&[(Maker, 4800, 3), (Maker, 4800, 2)]);
            assert_eq!(fills(&ev), [(4800, 2.0, Maker, want[1])], "{model}: the order's own fee ledger");
            assert_eq!(updates(&ev), [(Filled, RejectReason::Venue, 5, 0)], "{model}");
            assert_eq!(r.venue.stats.maker_fills, 2);
        }
    }

    #[test]
    fn a_seller_reaching_a_resting_bid_fills_it_as_maker() {
        let mut r = rig("risk_averse");
        r.order(Bid, 4900, 5, Gtc, true);
        // an outside ask appears at our price: it would have executed against us
        let ev = r.delta(Ask, 4900, 3);
        assert_eq!(fills(&ev), [(4900, 3.0, Maker, charged(&[(Maker, 4900, 3)])[0])]);
        assert!(updates(&ev).is_empty());
        // a sell printed through our price (at 0.48, below our 0.49): we were first in line
        let ev = r.trade(Ask, 4800, 4);
        assert_eq!(fills(&ev).len(), 1);
        assert_eq!(fills(&ev)[0].1, 2.0);
        assert_eq!(updates(&ev), [(Filled, RejectReason::Venue, 5, 0)]);
    }

    #[test]
    fn cancels_closes_stale_books_and_shutdown() {
        let mut r = bare("log");
        // no snapshot yet: the book is not live
        let ev = r.order(Bid, 4800, 1, Gtc, true);
        assert_eq!(updates(&ev), [(Rejected, RejectReason::StaleBook, 0, 0)]);
        r.snapshot(&[(Ask, 5000, 10), (Bid, 4800, 10)]);
        r.order(Bid, 4800, 2, Gtc, true);
        let ev = r.cancel(2);
        assert_eq!(updates(&ev), [(Cancelled, RejectReason::Venue, 0, 0)]);
        assert!(r.cancel(2).is_empty(), "no longer resting");
        assert_eq!(r.venue.stats.cancel_misses, 1);
        // a stale market refuses orders until its next snapshot
        r.order(Bid, 4700, 1, Gtc, true);
        r.md(MdEvent::Stale { market: M, reason: crate::pipeline::events::StaleReason::SeqGap });
        let ev = r.order(Bid, 4700, 1, Gtc, true);
        assert_eq!(updates(&ev), [(Rejected, RejectReason::StaleBook, 0, 0)]);
        r.snapshot(&[(Ask, 5000, 10), (Bid, 4800, 10)]);
        assert_eq!(updates(&r.order(Bid, 4600, 1, Gtc, true)), [(Resting, RejectReason::Venue, 0, 1)]);
        // shutdown cancels what rests (refs 3 and 5)
        r.venue.cancel_all();
        let ev = r.drain();
        assert_eq!(updates(&ev), [(Cancelled, RejectReason::Venue, 0, 0); 2]);
        assert_eq!(r.venue.resting_count(), 0);
        // a market that closes cancels its resting orders and refuses new ones
        r.order(Bid, 4600, 1, Gtc, true);
        let ev = r.md(MdEvent::Closed { market: M, result_yes: Some(true) });
        assert_eq!(updates(&ev), [(Cancelled, RejectReason::MarketClosed, 0, 0)]);
        let ev = r.order(Bid, 5000, 1, Fok, false);
        assert_eq!(updates(&ev), [(Rejected, RejectReason::MarketClosed, 0, 0)]);
        assert!(r.venue.drained());
    }

    #[test]
    fn the_venue_can_run_on_its_own_thread() {
        // the split topology moves the gateway stage to a thread of its own
        fn send<T: Send>() {}
        send::<MatcherVenue>();
    }

    #[test]
    fn market_data_the_matcher_refuses_is_counted_and_stops_trading_the_market() {
        let mut r = rig("risk_averse");
        // a crossed snapshot: bid 0.52 over ask 0.50
        r.snapshot(&[(Ask, 5000, 10), (Bid, 5200, 10)]);
        assert_eq!(r.venue.stats.faults.get("matcher_md_refused"), 1);
        let ev = r.order(Bid, 4800, 1, Gtc, true);
        assert_eq!(updates(&ev), [(Rejected, RejectReason::StaleBook, 0, 0)]);
        // the next good snapshot makes it tradeable again
        r.snapshot(&[(Ask, 5000, 10), (Bid, 4800, 10)]);
        assert_eq!(updates(&r.order(Bid, 5000, 1, Fok, false)), [(Filled, RejectReason::Venue, 1, 0)]);
    }
}
