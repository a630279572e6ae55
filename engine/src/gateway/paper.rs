//! Paper execution: a simulated venue in the gateway's place, fed the same market data as the
//! trader.
//!
//! The venue keeps its own books (from its own ring of [`MdEvent`]s) and matches each
//! [`OrderRequest`] after encoding its V2 body exactly as the live gateway would:
//! - a marketable order takes displayed liquidity level by level, best first, at each level's
//!   price, up to its limit: FOK all or nothing (`FokUnfilled` otherwise), IOC what is there
//!   (rest cancelled), GTC what is there and the rest rests. Taken liquidity is removed from the
//!   venue's book so it is not taken twice.
//! - a post-only order that would cross is rejected (`PostOnlyCross`, Kalshi's
//!   `PostOnlyCrossCancel`); otherwise it rests.
//! - a resting order fills at its own price, as maker, when a trade prints at or through it
//!   with the taker on the other side (up to the trade's size), or when the opposite side of
//!   the book reaches its price (up to that level's size): an order priced there would have
//!   met ours.
//! - fees come from the SDK's per-order accumulator at the account's precision.
//!
//! There is no queue position or latency model here; the simulator crate brings those. Resting
//! orders of a market that closes are cancelled, as Kalshi sweeps them.

use super::encode::{NewOrderFields, OrderEncoder};
use crate::pipeline::events::{ExecEvent, MdEvent, OrderRequest};
use crate::telemetry::{Clock, Counters, Hop, Latency};
use strike_sdk::book::{Book, BookSide, BookStatus};
use strike_sdk::fees::{AccountPrecision, Liquidity, OrderFeeAccumulator};
use strike_sdk::market::{MarketId, MarketMeta};
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::{Fill, OrderRef, OrderStatus, OrderUpdate, RejectReason, TimeInForce};

struct Resting {
    strategy: u16,
    order_ref: OrderRef,
    market: MarketId,
    side: BookSide,
    price: Price,
    remaining: Qty,
    filled: Qty,
    tag: u32,
    fees: OrderFeeAccumulator,
}

/// What the venue counted.
#[derive(Clone, Debug, Default)]
pub struct GatewayStats {
    /// Order requests received.
    pub orders: u64,
    /// Order bodies encoded ("sent").
    pub sent: u64,
    /// Fills.
    pub fills: u64,
    /// Taker fills.
    pub taker_fills: u64,
    /// Maker fills.
    pub maker_fills: u64,
    /// Contracts filled, hundredths.
    pub filled_qty: Qty,
    /// Notional filled, micro-dollars.
    pub filled_notional: Money,
    /// Fees charged, micro-dollars.
    pub fees: Money,
    /// Venue rejects by reason.
    pub rejects: Counters,
    /// Orders cancelled (by request, IOC remainder, or market close).
    pub cancels: u64,
    /// Cancel requests for orders no longer resting.
    pub cancel_misses: u64,
    /// Body bytes encoded.
    pub bytes: u64,
    /// Faults of a live venue by kind (an unreadable private frame, a failed resync, a position
    /// that differs where an order is live); empty for the paper venue.
    pub faults: Counters,
    /// What a live venue went through, by kind (private frames, the stream going down,
    /// resyncs, positions set to the venue's figure); empty for the paper venue.
    pub events: Counters,
}

/// One order as it reached the venue (kept only when the order log is enabled, for tests and
/// audits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentOrder {
    /// Market.
    pub market: MarketId,
    /// Receive time of the data that triggered it, unix ns.
    pub recv_ns: u64,
    /// Order ref.
    pub order_ref: OrderRef,
}

/// The paper venue stage; see the module docs.
pub struct PaperVenue {
    metas: Vec<MarketMeta>,
    books: Vec<Book>,
    md: rtrb::Consumer<MdEvent>,
    orders: rtrb::Consumer<OrderRequest>,
    exec: rtrb::Producer<ExecEvent>,
    pending: Vec<ExecEvent>,
    resting: Vec<Resting>,
    encoder: OrderEncoder,
    precision: AccountPrecision,
    clock: Clock,
    /// Latency of encoding and tick-to-trade.
    pub latency: Latency,
    /// Counters.
    pub stats: GatewayStats,
    /// Orders as they reached the venue, when enabled with [`PaperVenue::log_orders`].
    pub order_log: Option<Vec<SentOrder>>,
    journal: Option<crate::journal::JournalSink>,
    now_ms: i64,
}

impl PaperVenue {
    /// A venue over `metas` reading market data from `md` and orders from `orders`, answering on
    /// `exec`. Allocates its books and order tables now.
    pub fn new(
        metas: &[MarketMeta],
        md: rtrb::Consumer<MdEvent>,
        orders: rtrb::Consumer<OrderRequest>,
        exec: rtrb::Producer<ExecEvent>,
        precision: AccountPrecision,
        clock: Clock,
    ) -> PaperVenue {
        PaperVenue {
            metas: metas.to_vec(),
            books: metas.iter().map(|m| Book::new(m.grid)).collect(),
            md,
            orders,
            exec,
            pending: Vec::with_capacity(4096),
            resting: Vec::with_capacity(4096),
            encoder: OrderEncoder::default(),
            precision,
            clock,
            latency: Latency::default(),
            stats: GatewayStats { rejects: Counters::with_capacity(24), ..Default::default() },
            order_log: None,
            journal: None,
            now_ms: 0,
        }
    }

    /// Keeps a log of every order that reaches the venue (pre-allocated for `cap` orders).
    pub fn log_orders(&mut self, cap: usize) {
        self.order_log = Some(Vec::with_capacity(cap));
    }

    /// Orders resting now.
    pub fn resting_count(&self) -> usize {
        self.resting.len()
    }

    #[inline]
    /// Journals every order taken and every execution report from now on.
    pub fn with_journal(mut self, sink: crate::journal::JournalSink) -> PaperVenue {
        self.journal = Some(sink);
        self
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

    fn on_md(&mut self, ev: MdEvent) {
        match ev {
            MdEvent::SnapshotBegin { market } => self.books[market.idx()].clear(),
            MdEvent::SnapshotLevel { market, side, price, qty } => {
                let _ = self.books[market.idx()].set_level(side, price, qty);
            }
            MdEvent::SnapshotEnd { market, .. } => {
                self.books[market.idx()].status = BookStatus::Live;
                self.check_resting_against_book(market);
            }
            MdEvent::Delta { market, side, price, delta, ts_ms, .. } => {
                if ts_ms > 0 {
                    self.now_ms = ts_ms;
                }
                let b = &mut self.books[market.idx()];
                // Tolerant: our own taker fills already removed liquidity the recording still
                // shows, so clamp at zero instead of faulting.
                let size = b.size_at(side, price);
                let _ = b.set_level(side, price, Qty(size.0.saturating_add(delta.0).max(0)));
                self.check_resting_against_book(market);
            }
            MdEvent::Trade { trade, .. } => {
                self.now_ms = trade.ts_ms.max(self.now_ms);
                if !trade.is_block {
                    self.fill_resting_on_trade(trade.market, trade.yes_price, trade.qty, trade.taker_side);
                }
            }
            MdEvent::Stale { market, .. } => self.books[market.idx()].status = BookStatus::Stale,
            MdEvent::Closed { market, .. } => {
                self.books[market.idx()].status = BookStatus::Closed;
                self.cancel_market(market, RejectReason::MarketClosed);
            }
            MdEvent::Regrid { market, grid } => {
                // Kalshi carries resting orders over to the finer grid; so do we.
                self.books[market.idx()].regrid(grid);
            }
            MdEvent::Reopened { market } => {
                // Kalshi cancels resting orders on reactivation.
                self.cancel_market(market, RejectReason::MarketClosed);
                self.books[market.idx()].status = BookStatus::Stale;
            }
        }
    }

    fn cancel_market(&mut self, market: MarketId, reason: RejectReason) {
        let mut i = 0;
        while i < self.resting.len() {
            if self.resting[i].market == market {
                let r = self.resting.swap_remove(i);
                self.stats.cancels += 1;
                self.emit_update(&r, OrderStatus::Cancelled, reason);
            } else {
                i += 1;
            }
        }
    }

    fn emit_update(&mut self, r: &Resting, status: OrderStatus, reason: RejectReason) {
        let update = OrderUpdate {
            order_ref: r.order_ref,
            market: r.market,
            status,
            reason,
            filled: r.filled,
            remaining: if matches!(status, OrderStatus::Resting) { r.remaining } else { Qty::ZERO },
            tag: r.tag,
        };
        self.emit(ExecEvent::Update { strategy: r.strategy, update, side: r.side, yes_price: r.price });
    }

    fn fill(&mut self, r: &mut Resting, price: Price, qty: Qty, liq: Liquidity) {
        let meta = &self.metas[r.market.idx()];
        let fee = if meta.fees.is_waived(self.now_ms) {
            Money::ZERO
        } else {
            r.fees.on_fill(&meta.fees, liq, price, qty, self.precision).charged
        };
        r.remaining -= qty;
        r.filled += qty;
        self.stats.fills += 1;
        match liq {
            Liquidity::Taker => self.stats.taker_fills += 1,
            Liquidity::Maker => self.stats.maker_fills += 1,
        }
        self.stats.filled_qty += qty;
        self.stats.filled_notional += Money::notional(price, qty);
        self.stats.fees += fee;
        let fill = Fill {
            order_ref: r.order_ref,
            market: r.market,
            side: r.side,
            liquidity: liq,
            yes_price: price,
            qty,
            fee,
            post_position: Qty::ZERO, // the trader's portfolio fills this in
            ts_ns: (self.now_ms.max(0) as u64).saturating_mul(1_000_000),
            tag: r.tag,
        };
        self.emit(ExecEvent::Fill { strategy: r.strategy, fill });
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
        let meta = &self.metas[market.idx()];
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

        let mut r = Resting {
            strategy,
            order_ref,
            market,
            side,
            price: yes_price,
            remaining: qty,
            filled: Qty::ZERO,
            tag,
            fees: OrderFeeAccumulator::new(),
        };
        let book = &self.books[market.idx()];
        if book.status != BookStatus::Live {
            let reason =
                if book.status == BookStatus::Closed { RejectReason::MarketClosed } else { RejectReason::StaleBook };
            return self.reject(&r, reason);
        }
        let opposite = side.opposite();
        let crosses = |p: Price| match side {
            BookSide::Bid => p <= yes_price,
            BookSide::Ask => p >= yes_price,
        };
        let marketable = book.best(opposite).map(|(p, _)| crosses(p)).unwrap_or(false);
        if post_only {
            if marketable {
                return self.reject(&r, RejectReason::PostOnlyCross);
            }
        } else if tif == TimeInForce::Fok && (!marketable || book.depth_to(opposite, yes_price) < qty) {
            return self.reject(&r, RejectReason::FokUnfilled);
        } else if marketable {
            // take level by level, best first
            while r.remaining.0 > 0 {
                let Some((p, size)) = self.books[market.idx()].best(opposite) else { break };
                if !crosses(p) {
                    break;
                }
                let take = Qty(size.0.min(r.remaining.0));
                let _ = self.books[market.idx()].set_level(opposite, p, size - take);
                self.fill(&mut r, p, take, Liquidity::Taker);
            }
        }
        if r.remaining.0 == 0 {
            self.emit_update(&r, OrderStatus::Filled, RejectReason::Venue);
        } else if tif == TimeInForce::Gtc {
            self.emit_update(&r, OrderStatus::Resting, RejectReason::Venue);
            if self.resting.len() < self.resting.capacity() {
                self.resting.push(r);
            } else {
                self.stats.cancels += 1;
                self.emit_update(&r, OrderStatus::Cancelled, RejectReason::Venue);
            }
        } else {
            self.stats.cancels += 1;
            self.emit_update(&r, OrderStatus::Cancelled, RejectReason::Venue);
        }
    }

    fn reject(&mut self, r: &Resting, reason: RejectReason) {
        self.stats.rejects.bump(reason.name());
        self.emit_update(r, OrderStatus::Rejected, reason);
    }

    fn on_cancel(&mut self, strategy: u16, order_ref: OrderRef) {
        match self.resting.iter().position(|r| r.order_ref == order_ref && r.strategy == strategy) {
            Some(i) => {
                let r = self.resting.swap_remove(i);
                self.stats.cancels += 1;
                self.emit_update(&r, OrderStatus::Cancelled, RejectReason::Venue);
            }
            None => self.stats.cancel_misses += 1,
        }
    }

    fn fill_resting_on_trade(&mut self, market: MarketId, price: Price, qty: Qty, taker: BookSide) {
        let mut left = qty;
        let mut i = 0;
        while i < self.resting.len() && left.0 > 0 {
            let r = &self.resting[i];
            let hit = r.market == market
                && r.side != taker
                && match r.side {
                    BookSide::Bid => price <= r.price,
                    BookSide::Ask => price >= r.price,
                };
            if !hit {
                i += 1;
                continue;
            }
            let mut r = self.resting.swap_remove(i);
            let take = Qty(r.remaining.0.min(left.0));
            left -= take;
            let p = r.price;
            self.fill(&mut r, p, take, Liquidity::Maker);
            self.after_maker_fill(r);
        }
    }

    fn check_resting_against_book(&mut self, market: MarketId) {
        let mut i = 0;
        while i < self.resting.len() {
            let r = &self.resting[i];
            if r.market != market {
                i += 1;
                continue;
            }
            let b = &self.books[market.idx()];
            let reach = match r.side {
                BookSide::Bid => b.best_ask().filter(|(p, _)| *p <= r.price),
                BookSide::Ask => b.best_bid().filter(|(p, _)| *p >= r.price),
            };
            let Some((p, size)) = reach else {
                i += 1;
                continue;
            };
            let mut r = self.resting.swap_remove(i);
            let take = Qty(r.remaining.0.min(size.0));
            let _ = self.books[market.idx()].set_level(r.side.opposite(), p, size - take);
            let px = r.price;
            self.fill(&mut r, px, take, Liquidity::Maker);
            self.after_maker_fill(r);
        }
    }

    fn after_maker_fill(&mut self, r: Resting) {
        if r.remaining.0 == 0 {
            self.emit_update(&r, OrderStatus::Filled, RejectReason::Venue);
        } else {
            self.resting.push(r);
        }
    }

    /// Cancels every resting order (shutdown).
    pub fn cancel_all(&mut self) {
        while let Some(r) = self.resting.pop() {
            self.stats.cancels += 1;
            self.emit_update(&r, OrderStatus::Cancelled, RejectReason::Venue);
        }
    }

    /// True when no events wait to be delivered.
    pub fn drained(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strike_sdk::fees::{FeeSchedule, FeeType};
    use strike_sdk::market::Ticker;
    use strike_sdk::order::Trade;

    struct Rig {
        venue: PaperVenue,
        md: rtrb::Producer<MdEvent>,
        orders: rtrb::Producer<OrderRequest>,
        exec: rtrb::Consumer<ExecEvent>,
        next: u64,
    }

    fn rig() -> Rig {
        let mut meta = MarketMeta::bare(MarketId(0), Ticker::new("M").unwrap());
        meta.fees = FeeSchedule::of(FeeType::QuadraticWithMakerFees);
        let (md, md_rx) = rtrb::RingBuffer::new(1024);
        let (orders, ord_rx) = rtrb::RingBuffer::new(1024);
        let (exec_tx, exec) = rtrb::RingBuffer::new(1024);
        let venue = PaperVenue::new(&[meta], md_rx, ord_rx, exec_tx, AccountPrecision::Cent, Clock::default());
        let mut r = Rig { venue, md, orders, exec, next: 0 };
        // asks 0.50 x 10, 0.51 x 10; bids 0.47 x 10
        r.md(MdEvent::SnapshotBegin { market: MarketId(0) });
        for (side, p, q) in [(BookSide::Ask, 5000, 10), (BookSide::Ask, 5100, 10), (BookSide::Bid, 4700, 10)] {
            r.md(MdEvent::SnapshotLevel { market: MarketId(0), side, price: Price(p), qty: Qty::contracts(q) });
        }
        r.md(MdEvent::SnapshotEnd { market: MarketId(0), recv_ns: 1, t0: 0 });
        r
    }

    impl Rig {
        fn md(&mut self, e: MdEvent) {
            self.md.push(e).unwrap();
            self.venue.poll();
        }
        fn order(&mut self, side: BookSide, price: u16, qty: i64, tif: TimeInForce, post_only: bool) -> Vec<ExecEvent> {
            self.next += 1;
            self.orders
                .push(OrderRequest::New {
                    strategy: 0,
                    order_ref: OrderRef(self.next),
                    market: MarketId(0),
                    side,
                    yes_price: Price(price),
                    qty: Qty::contracts(qty),
                    tif,
                    post_only,
                    tag: 0,
                    recv_ns: 0,
                    t0: 0,
                })
                .unwrap();
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

    fn fills(ev: &[ExecEvent]) -> Vec<(Price, Qty, Liquidity, Money)> {
        ev.iter()
            .filter_map(|e| match e {
                ExecEvent::Fill { fill, .. } => Some((fill.yes_price, fill.qty, fill.liquidity, fill.fee)),
                _ => None,
            })
            .collect()
    }

    fn last_status(ev: &[ExecEvent]) -> (OrderStatus, RejectReason) {
        ev.iter()
            .rev()
            .find_map(|e| match e {
                ExecEvent::Update { update, .. } => Some((update.status, update.reason)),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn fok_takes_levels_all_or_nothing() {
        let mut r = rig();
        let ev = r.order(BookSide::Bid, 5100, 25, TimeInForce::Fok, false);
        assert!(fills(&ev).is_empty());
        assert_eq!(last_status(&ev), (OrderStatus::Rejected, RejectReason::FokUnfilled));
        let ev = r.order(BookSide::Bid, 5100, 15, TimeInForce::Fok, false);
        let f = fills(&ev);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].0, f[0].1, f[0].2), (Price(5000), Qty::contracts(10), Liquidity::Taker));
        assert_eq!((f[1].0, f[1].1), (Price(5100), Qty::contracts(5)));
        assert_eq!(last_status(&ev).0, OrderStatus::Filled);
        // 10 @ 0.50 (0.175) then 5 @ 0.51 (0.0874545 cumulative -> 0.2625 total exact ...)
        let total: i64 = f.iter().map(|x| x.3 .0).sum();
        let one = FeeSchedule::of(FeeType::QuadraticWithMakerFees);
        let exact = one.trade_fee(Liquidity::Taker, Price(5000), Qty::contracts(10)).0
            + one.trade_fee(Liquidity::Taker, Price(5100), Qty::contracts(5)).0;
        assert!(total >= exact && total < exact + Money::PER_CENT, "{total} vs {exact}");
        // the taken liquidity is gone from the venue's book: a repeat FOK cannot fill
        let ev = r.order(BookSide::Bid, 5000, 1, TimeInForce::Fok, false);
        assert_eq!(last_status(&ev), (OrderStatus::Rejected, RejectReason::FokUnfilled));
    }

    #[test]
    fn ioc_fills_what_is_there_and_cancels_the_rest() {
        let mut r = rig();
        let ev = r.order(BookSide::Bid, 5000, 25, TimeInForce::Ioc, false);
        assert_eq!(fills(&ev).len(), 1);
        assert_eq!(last_status(&ev).0, OrderStatus::Cancelled);
        match ev.last().unwrap() {
            ExecEvent::Update { update, .. } => assert_eq!(update.filled, Qty::contracts(10)),
            _ => panic!(),
        }
    }

    #[test]
    fn post_only_rejects_a_cross_and_rests_otherwise() {
        let mut r = rig();
        let ev = r.order(BookSide::Bid, 5000, 1, TimeInForce::Gtc, true);
        assert_eq!(last_status(&ev), (OrderStatus::Rejected, RejectReason::PostOnlyCross));
        let ev = r.order(BookSide::Bid, 4800, 5, TimeInForce::Gtc, true);
        assert!(fills(&ev).is_empty());
        assert_eq!(last_status(&ev).0, OrderStatus::Resting);
        assert_eq!(r.venue.resting_count(), 1);
    }

    #[test]
    fn resting_orders_fill_as_maker_on_trades_and_on_the_book_reaching_them() {
        let mut r = rig();
        r.order(BookSide::Bid, 4800, 5, TimeInForce::Gtc, true);
        // a trade at 0.49 with a buying taker does not reach our bid
        let t = Trade {
            market: MarketId(0),
            yes_price: Price(4900),
            qty: Qty::contracts(3),
            taker_side: BookSide::Bid,
            is_block: false,
            ts_ms: 1,
        };
        r.md(MdEvent::Trade { trade: t, recv_ns: 2, t0: 0 });
        assert!(fills(&r.drain()).is_empty());
        // a selling taker at 0.48 fills 3 of our 5 at our price, as maker
        r.md(MdEvent::Trade {
            trade: Trade { yes_price: Price(4800), taker_side: BookSide::Ask, ..t },
            recv_ns: 3,
            t0: 0,
        });
        let f = fills(&r.drain());
        assert_eq!(f, vec![(Price(4800), Qty::contracts(3), Liquidity::Maker, Money::cents(2))]);
        // an ask appearing at our price fills the rest
        r.md(MdEvent::Delta {
            market: MarketId(0),
            side: BookSide::Ask,
            price: Price(4800),
            delta: Qty::contracts(7),
            ts_ms: 4,
            recv_ns: 4,
            t0: 0,
        });
        let ev = r.drain();
        assert_eq!(fills(&ev).len(), 1);
        assert_eq!(fills(&ev)[0].1, Qty::contracts(2));
        assert_eq!(last_status(&ev).0, OrderStatus::Filled);
        assert_eq!(r.venue.resting_count(), 0);
    }

    #[test]
    fn closing_a_market_cancels_its_resting_orders() {
        let mut r = rig();
        r.order(BookSide::Bid, 4800, 5, TimeInForce::Gtc, true);
        r.md(MdEvent::Closed { market: MarketId(0), result_yes: Some(true) });
        assert_eq!(last_status(&r.drain()), (OrderStatus::Cancelled, RejectReason::MarketClosed));
        let ev = r.order(BookSide::Bid, 5000, 1, TimeInForce::Fok, false);
        assert_eq!(last_status(&ev), (OrderStatus::Rejected, RejectReason::MarketClosed));
    }
}
