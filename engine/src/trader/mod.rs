//! The trader stage: books → strategies → risk → order requests.
//!
//! [`TraderStage::poll`] first drains execution reports (fills and order updates: positions,
//! open orders, strategy callbacks), then applies market data to the per-market [`Book`]s and
//! calls every enabled strategy's `on_book`/`on_trade`. Each intent a strategy queues in its
//! [`Ctx`] goes through [`crate::risk::check`]; accepted intents become
//! [`OrderRequest`]s on the gateway ring, rejected ones are reported back to the strategy
//! through `on_order_update`.
//!
//! Book rules: deltas to a book that is not live (stale after a gap or fault, or awaiting its
//! first snapshot) are dropped and counted; a fault while applying (negative level, off-grid
//! price, crossed book) makes the market stale and asks the feed for a resnapshot; a snapshot
//! makes it live again. Orders in flight count as resting for worst-case risk until the venue
//! answers. A strategy that panics is disabled and its resting orders are cancelled.
//!
//! Nothing here allocates after construction: intents and cancels go into fixed buffers, open
//! orders into vectors reserved up front, counters into fixed tables.

use crate::host::HostedStrategy;
use crate::pipeline::events::{ExecEvent, FeedCommand, MdEvent, OrderRequest};
use crate::portfolio::Portfolio;
use crate::risk::{self, RiskLimits};
use crate::telemetry::{Clock, Counters, Hop, Latency};
use std::sync::Arc;
use strike_sdk::book::{Book, BookFault, BookStatus};
use strike_sdk::ctx::Ctx;
use strike_sdk::market::MarketId;
use strike_sdk::num::{Money, Qty};
use strike_sdk::order::{CancelIntent, OpenOrder, OrderIntent, OrderRef, OrderStatus, OrderUpdate, RejectReason};
use strike_sim::universe::UniverseData;

/// Most open orders tracked per strategy.
pub const MAX_OPEN_ORDERS: usize = 4096;

/// What the trader counted.
#[derive(Clone, Debug, Default)]
pub struct TraderStats {
    /// Market-data events taken from the ring.
    pub md_events: u64,
    /// Snapshots applied (book live afterwards).
    pub snapshots_applied: u64,
    /// Deltas applied.
    pub deltas_applied: u64,
    /// Deltas dropped because their book was not live.
    pub deltas_dropped_not_live: u64,
    /// Book faults by kind (`off_grid`, `negative_level`, `crossed`).
    pub book_faults: Counters,
    /// Resnapshot requests sent to the feed after book faults.
    pub resnapshot_requests: u64,
    /// Markets marked stale by the feed (gaps, regrids).
    pub stale_events: u64,
    /// Trades seen.
    pub trades: u64,
    /// Strategy callbacks made.
    pub callbacks: u64,
    /// Intents queued by strategies.
    pub intents: u64,
    /// Intents refused by risk, by reason.
    pub risk_rejects: Counters,
    /// Intents dropped because the buffer was full (a strategy asked for more than the cap).
    pub intents_overflow: u64,
    /// Orders sent to the gateway.
    pub orders_sent: u64,
    /// Cancels sent to the gateway.
    pub cancels_sent: u64,
    /// Fills received.
    pub fills: u64,
    /// Orders the venue rejected, by reason.
    pub venue_rejects: Counters,
    /// Strategy panics caught.
    pub plugin_panics: u64,
    /// Times the order ring was full.
    pub order_ring_stalls: u64,
    /// Execution reports for unknown strategies or markets, dropped.
    pub unknown_exec: u64,
    /// Positions set to the venue's figure ([`ExecEvent::Position`]).
    pub positions_synced: u64,
    /// Books rebuilt for a new price grid.
    pub regrids: u64,
}

/// The trader stage; see the module docs.
pub struct TraderStage {
    universe: Arc<UniverseData>,
    books: Vec<Book>,
    portfolio: Portfolio,
    strategies: Vec<HostedStrategy>,
    open: Vec<Vec<OpenOrder>>,
    limits: RiskLimits,
    md: rtrb::Consumer<MdEvent>,
    exec: rtrb::Consumer<ExecEvent>,
    orders: rtrb::Producer<OrderRequest>,
    commands: Option<rtrb::Producer<FeedCommand>>,
    pending_orders: Vec<OrderRequest>,
    intents: Vec<OrderIntent>,
    cancels: Vec<CancelIntent>,
    rejected: Vec<(u16, OrderUpdate)>,
    next_ref: u64,
    capital: Money,
    now_ns: u64,
    last_timer_ns: u64,
    timer_interval_ns: u64,
    clock: Clock,
    /// Latency of the trader's hops.
    pub latency: Latency,
    /// Counters.
    pub stats: TraderStats,
}

/// Construction parameters of a [`TraderStage`].
pub struct TraderParts {
    /// The market universe.
    pub universe: Arc<UniverseData>,
    /// Strategy instances, slot = index.
    pub strategies: Vec<HostedStrategy>,
    /// Risk limits.
    pub limits: RiskLimits,
    /// Market data in.
    pub md: rtrb::Consumer<MdEvent>,
    /// Execution reports in.
    pub exec: rtrb::Consumer<ExecEvent>,
    /// Order requests out.
    pub orders: rtrb::Producer<OrderRequest>,
    /// Resnapshot requests out.
    pub commands: Option<rtrb::Producer<FeedCommand>>,
    /// Intents (and cancels) per callback.
    pub intents_per_callback: usize,
    /// Kelly bankroll.
    pub capital: Money,
    /// `on_timer` interval, ns.
    pub timer_interval_ns: u64,
    /// Clock.
    pub clock: Clock,
}

fn fault_name(f: &BookFault) -> &'static str {
    match f {
        BookFault::OffGrid { .. } => "off_grid",
        BookFault::NegativeLevel { .. } => "negative_level",
        BookFault::Overflow { .. } => "overflow",
        BookFault::Crossed { .. } => "crossed",
    }
}

/// What triggered a strategy callback (for latency attribution of its orders).
#[derive(Clone, Copy)]
struct Trigger {
    recv_ns: u64,
    t0: u64,
}

impl TraderStage {
    /// Builds the stage: allocates one book per market and the order tables.
    pub fn new(p: TraderParts) -> TraderStage {
        let n = p.universe.len();
        let books = p.universe.markets.iter().map(|m| Book::new(m.grid)).collect();
        let n_strat = p.strategies.len();
        TraderStage {
            books,
            portfolio: Portfolio::new(n),
            open: (0..n_strat).map(|_| Vec::with_capacity(MAX_OPEN_ORDERS)).collect(),
            strategies: p.strategies,
            limits: p.limits,
            md: p.md,
            exec: p.exec,
            orders: p.orders,
            commands: p.commands,
            pending_orders: Vec::with_capacity(4096),
            intents: vec![
                OrderIntent::limit(
                    MarketId(0),
                    strike_sdk::order::Outcome::Yes,
                    strike_sdk::order::Action::Buy,
                    strike_sdk::num::Price(0),
                    Qty::ZERO,
                    strike_sdk::order::TimeInForce::Fok
                );
                p.intents_per_callback
            ],
            cancels: vec![CancelIntent { order_ref: OrderRef(0) }; p.intents_per_callback],
            rejected: Vec::with_capacity(p.intents_per_callback),
            next_ref: 0,
            capital: p.capital,
            now_ns: 0,
            last_timer_ns: 0,
            timer_interval_ns: p.timer_interval_ns,
            clock: p.clock,
            latency: Latency::default(),
            stats: TraderStats {
                book_faults: Counters::with_capacity(8),
                risk_rejects: Counters::with_capacity(24),
                venue_rejects: Counters::with_capacity(24),
                ..Default::default()
            },
            universe: p.universe,
        }
    }

    /// The books (for reports and tests).
    pub fn books(&self) -> &[Book] {
        &self.books
    }
    /// The portfolio.
    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }
    /// The strategies.
    pub fn strategies(&self) -> &[HostedStrategy] {
        &self.strategies
    }
    /// The universe.
    pub fn universe(&self) -> &UniverseData {
        &self.universe
    }
    /// Open orders of every strategy, in flight or resting.
    pub fn open_order_count(&self) -> usize {
        self.open.iter().map(|v| v.len()).sum()
    }

    /// Drains execution reports, then up to `batch` market-data events. True when it did work.
    pub fn poll(&mut self, batch: usize) -> bool {
        let mut busy = self.flush_orders();
        while let Ok(ev) = self.exec.pop() {
            busy = true;
            self.on_exec(ev);
        }
        for _ in 0..batch {
            match self.md.pop() {
                Ok(ev) => {
                    busy = true;
                    self.stats.md_events += 1;
                    self.on_md(ev);
                }
                Err(_) => break,
            }
        }
        if self.timer_interval_ns > 0 && self.now_ns >= self.last_timer_ns + self.timer_interval_ns {
            if self.last_timer_ns == 0 {
                self.last_timer_ns = self.now_ns;
            } else {
                self.last_timer_ns = self.now_ns;
                let trig = Trigger { recv_ns: self.now_ns, t0: self.clock.raw() };
                let now = self.now_ns;
                for slot in 0..self.strategies.len() {
                    self.dispatch(slot, trig, |s, ctx| s.on_timer(ctx, now));
                }
            }
        }
        busy
    }

    fn flush_orders(&mut self) -> bool {
        if self.pending_orders.is_empty() {
            return false;
        }
        let mut n = 0;
        while n < self.pending_orders.len() && self.orders.push(self.pending_orders[n]).is_ok() {
            n += 1;
        }
        self.pending_orders.drain(..n);
        true
    }

    /// Hands a request to the gateway ring. Never drops one: when the ring is full the request
    /// waits in `pending_orders` (reserved for 4096; beyond that it grows, which is counted as a
    /// stall and is the only allocation this stage can make).
    #[inline]
    fn send(&mut self, req: OrderRequest) {
        if !self.pending_orders.is_empty() || self.orders.push(req).is_err() {
            self.stats.order_ring_stalls += 1;
            self.pending_orders.push(req);
        }
    }

    fn book_fault(&mut self, m: MarketId, f: BookFault) {
        self.stats.book_faults.bump(fault_name(&f));
        let b = &mut self.books[m.idx()];
        if b.status != BookStatus::Closed {
            b.status = BookStatus::Stale;
        }
        self.stats.resnapshot_requests += 1;
        if let Some(c) = self.commands.as_mut() {
            let _ = c.push(FeedCommand::Resnapshot { market: m });
        }
    }

    fn on_md(&mut self, ev: MdEvent) {
        let t = self.clock.raw();
        match ev {
            MdEvent::SnapshotBegin { market } => {
                let b = &mut self.books[market.idx()];
                b.clear();
                if b.status != BookStatus::Closed {
                    b.status = BookStatus::Empty;
                }
            }
            MdEvent::SnapshotLevel { market, side, price, qty } => {
                if let Err(f) = self.books[market.idx()].set_level(side, price, qty) {
                    self.book_fault(market, f);
                }
            }
            MdEvent::SnapshotEnd { market, recv_ns, t0 } => {
                self.now_ns = self.now_ns.max(recv_ns);
                let b = &mut self.books[market.idx()];
                b.updated_ns = recv_ns;
                // a level fault already made it stale; a closed market stays closed
                if b.status == BookStatus::Empty {
                    match b.finish_snapshot() {
                        Ok(()) => {
                            b.status = BookStatus::Live;
                            self.stats.snapshots_applied += 1;
                        }
                        Err(f) => self.book_fault(market, f),
                    }
                }
                self.latency.record(Hop::BookApply, self.clock.ns(t, self.clock.raw()));
                if self.books[market.idx()].status == BookStatus::Live {
                    self.on_book_all(market, Trigger { recv_ns, t0 });
                }
            }
            MdEvent::Delta { market, side, price, delta, ts_ms, recv_ns, t0 } => {
                self.now_ns = self.now_ns.max(recv_ns);
                let b = &mut self.books[market.idx()];
                if b.status != BookStatus::Live {
                    self.stats.deltas_dropped_not_live += 1;
                    return;
                }
                match b.apply_delta(side, price, delta) {
                    Ok(()) => {
                        b.updated_ns = recv_ns;
                        b.exchange_ts_ms = ts_ms;
                        self.stats.deltas_applied += 1;
                        self.latency.record(Hop::BookApply, self.clock.ns(t, self.clock.raw()));
                        self.on_book_all(market, Trigger { recv_ns, t0 });
                    }
                    Err(f) => self.book_fault(market, f),
                }
            }
            MdEvent::Trade { trade, recv_ns, t0 } => {
                self.now_ns = self.now_ns.max(recv_ns);
                self.stats.trades += 1;
                for slot in 0..self.strategies.len() {
                    self.dispatch(slot, Trigger { recv_ns, t0 }, |s, ctx| s.on_trade(ctx, &trade));
                }
            }
            MdEvent::Stale { market, .. } => {
                self.stats.stale_events += 1;
                let b = &mut self.books[market.idx()];
                if b.status != BookStatus::Closed {
                    b.status = BookStatus::Stale;
                }
            }
            MdEvent::Closed { market, .. } => self.books[market.idx()].status = BookStatus::Closed,
            MdEvent::Reopened { market } => self.books[market.idx()].status = BookStatus::Stale,
            // Rare and cold: the book's arrays are reallocated for the new grid.
            MdEvent::Regrid { market, grid } => {
                self.books[market.idx()].regrid(grid);
                self.stats.regrids += 1;
            }
        }
    }

    fn on_book_all(&mut self, market: MarketId, trig: Trigger) {
        for slot in 0..self.strategies.len() {
            self.dispatch(slot, trig, |s, ctx| s.on_book(ctx, market));
        }
    }

    /// Runs one callback of strategy `slot` and processes what it queued; risk rejects are
    /// reported back through `on_order_update`, and what the strategy queues there is processed
    /// too (its own rejects are counted, not reported again, so a strategy cannot loop).
    fn dispatch(&mut self, slot: usize, trig: Trigger, f: impl FnOnce(&mut HostedStrategy, &mut Ctx) -> bool) {
        self.call(slot, trig, true, f);
        let mut k = 0;
        while k < self.rejected.len() {
            let (s, u) = self.rejected[k];
            k += 1;
            self.call(s as usize, trig, false, |st, ctx| st.on_order_update(ctx, &u));
        }
        self.rejected.clear();
    }

    fn call(
        &mut self,
        slot: usize,
        trig: Trigger,
        report_rejects: bool,
        f: impl FnOnce(&mut HostedStrategy, &mut Ctx) -> bool,
    ) {
        if !self.strategies[slot].enabled() {
            return;
        }
        let t = self.clock.raw();
        // SAFETY: the universe (Arc), books, positions, open orders and the intent buffers all
        // outlive `ctx`, which is dropped before any of them is touched again.
        let mut ctx = unsafe {
            Ctx::new(
                self.universe.view(),
                &self.books,
                self.portfolio.positions(),
                &self.open[slot],
                &mut self.intents,
                &mut self.cancels,
                self.next_ref,
                self.now_ns,
                self.capital,
            )
        };
        let ok = f(&mut self.strategies[slot], &mut ctx);
        // A plugin could overwrite its Ctx: trust nothing beyond the host's own buffers.
        let n_i = ctx.queued_intents().len().min(self.intents.len());
        let n_c = ctx.queued_cancels().len().min(self.cancels.len());
        let next = ctx.next_ref();
        self.latency.record(Hop::Strategy, self.clock.ns(t, self.clock.raw()));
        self.stats.callbacks += 1;
        // refs only move forward, so they stay unique whatever the plugin does
        self.next_ref = self.next_ref.max(next).max(self.next_ref + n_i as u64);
        if !ok {
            self.disable(slot);
            return;
        }
        for i in 0..n_c {
            let order_ref = self.cancels[i].order_ref;
            if self.open[slot].iter().any(|o| o.order_ref == order_ref) {
                self.stats.cancels_sent += 1;
                self.send(OrderRequest::Cancel { strategy: slot as u16, order_ref });
            }
        }
        for i in 0..n_i {
            let intent = self.intents[i];
            self.process_intent(slot, intent, trig, report_rejects);
        }
    }

    fn process_intent(&mut self, slot: usize, intent: OrderIntent, trig: Trigger, report: bool) {
        self.stats.intents += 1;
        let t = self.clock.raw();
        let m = intent.market;
        let verdict = match self.books.get(m.idx()) {
            Some(book) => {
                let age = self.clock.ns(trig.t0, t);
                risk::check(&self.limits, &intent, book, self.portfolio.position(m), age)
            }
            None => Err(RejectReason::UnknownMarket),
        };
        self.latency.record(Hop::Risk, self.clock.ns(t, self.clock.raw()));
        if let Err(reason) = verdict {
            self.stats.risk_rejects.bump(reason.name());
            if report && self.rejected.len() < self.rejected.capacity() {
                self.rejected.push((
                    slot as u16,
                    OrderUpdate {
                        order_ref: intent.order_ref,
                        market: m,
                        status: OrderStatus::Rejected,
                        reason,
                        filled: Qty::ZERO,
                        remaining: Qty::ZERO,
                        tag: intent.tag,
                    },
                ));
            }
            return;
        }
        if self.open[slot].len() == MAX_OPEN_ORDERS {
            self.stats.risk_rejects.bump(RejectReason::Size.name());
            return;
        }
        let side = intent.book_side();
        let yes_price = intent.yes_price();
        self.portfolio.adjust_resting(m, side, intent.qty);
        self.open[slot].push(OpenOrder {
            order_ref: intent.order_ref,
            market: m,
            side,
            yes_price,
            remaining: intent.qty,
            filled: Qty::ZERO,
            tag: intent.tag,
        });
        self.stats.orders_sent += 1;
        self.send(OrderRequest::New {
            strategy: slot as u16,
            order_ref: intent.order_ref,
            market: m,
            side,
            yes_price,
            qty: intent.qty,
            tif: intent.tif,
            post_only: intent.post_only,
            tag: intent.tag,
            recv_ns: trig.recv_ns,
            t0: trig.t0,
        });
    }

    fn disable(&mut self, slot: usize) {
        self.stats.plugin_panics += 1;
        // Cancel everything it has resting; it will never be called again.
        for i in 0..self.open[slot].len() {
            let order_ref = self.open[slot][i].order_ref;
            self.stats.cancels_sent += 1;
            self.send(OrderRequest::Cancel { strategy: slot as u16, order_ref });
        }
    }

    fn on_exec(&mut self, ev: ExecEvent) {
        let trig = Trigger { recv_ns: self.now_ns, t0: self.clock.raw() };
        let (strategy, market) = match &ev {
            ExecEvent::Fill { strategy, fill } => (*strategy as usize, fill.market),
            ExecEvent::Update { strategy, update, .. } => (*strategy as usize, update.market),
            ExecEvent::Position { market, qty, cost } => {
                if market.idx() < self.books.len() {
                    self.stats.positions_synced += 1;
                    self.portfolio.set_position(*market, *qty, *cost);
                } else {
                    self.stats.unknown_exec += 1;
                }
                return;
            }
        };
        if strategy >= self.strategies.len() || market.idx() >= self.books.len() {
            // not an order of ours (or a corrupt report): never index with it
            self.stats.unknown_exec += 1;
            return;
        }
        match ev {
            ExecEvent::Fill { mut fill, .. } => {
                self.stats.fills += 1;
                fill.post_position = self.portfolio.apply_fill(&fill);
                // Only the part of the fill this order still had resting leaves the resting
                // total: a terminal update may already have removed the rest (any order of
                // arrival is valid, kalshi-protocol.md §6.8).
                if let Some(o) = self.open[strategy].iter_mut().find(|o| o.order_ref == fill.order_ref) {
                    let k = Qty(fill.qty.0.min(o.remaining.0).max(0));
                    o.remaining -= k;
                    o.filled += fill.qty;
                    self.portfolio.adjust_resting(fill.market, fill.side, -k);
                }
                self.dispatch(strategy, trig, |s, ctx| s.on_fill(ctx, &fill));
            }
            ExecEvent::Update { update, .. } => {
                if let Some(i) = self.open[strategy].iter().position(|o| o.order_ref == update.order_ref) {
                    match update.status {
                        OrderStatus::Resting => {
                            // the venue's remaining size is authoritative
                            let o = &mut self.open[strategy][i];
                            let diff = Qty(update.remaining.0 - o.remaining.0);
                            o.remaining = update.remaining;
                            let (m, side) = (o.market, o.side);
                            self.portfolio.adjust_resting(m, side, diff);
                        }
                        _ => {
                            let o = self.open[strategy].swap_remove(i);
                            self.portfolio.adjust_resting(o.market, o.side, -o.remaining);
                        }
                    }
                }
                if update.status == OrderStatus::Rejected {
                    self.stats.venue_rejects.bump(update.reason.name());
                }
                self.dispatch(strategy, trig, |s, ctx| s.on_order_update(ctx, &update));
            }
            ExecEvent::Position { .. } => {}
        }
    }

    /// Calls `on_shutdown` on every enabled strategy, then cancels every open order.
    pub fn shutdown(&mut self) {
        let trig = Trigger { recv_ns: self.now_ns, t0: self.clock.raw() };
        for slot in 0..self.strategies.len() {
            self.dispatch(slot, trig, |s, ctx| s.on_shutdown(ctx));
        }
        for slot in 0..self.strategies.len() {
            for i in 0..self.open[slot].len() {
                let order_ref = self.open[slot][i].order_ref;
                self.stats.cancels_sent += 1;
                self.send(OrderRequest::Cancel { strategy: slot as u16, order_ref });
            }
        }
    }

    /// True when nothing waits on any ring.
    pub fn idle(&self) -> bool {
        self.md.is_empty() && self.exec.is_empty() && self.pending_orders.is_empty()
    }
}
