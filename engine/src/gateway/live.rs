//! The live gateway stage: order requests from the trader's ring go to Kalshi through the
//! [`RestGateway`], and what comes back (acks, rejects, fills from REST responses) goes onto the
//! exec ring as [`ExecEvent`]s — the same contract as the paper venue, so the trader cannot tell
//! them apart.
//!
//! **Immediate orders only, for now.** A resting (GTC) order's later fills and venue-side
//! cancels arrive only on the private `fill` / `user_orders` WebSocket channels, and routing
//! those into the gateway's order state is not built yet. Until it is, a GTC order is refused
//! here with [`RejectReason::BadTimeInForce`] (counted as `live_gtc_refused`) instead of resting
//! where the engine could not see it fill. FOK and IOC orders are complete in the REST response.
//!
//! Tick-to-trade is stamped when `submit` returns: the request bytes are written to a warm
//! connection then (or held by the token bucket, in which case the wait is part of it). Counters
//! are the paper venue's [`GatewayStats`], so reports read the same.

use super::orders::GatewayEvent;
use super::paper::GatewayStats;
use super::rest::RestGateway;
use crate::pipeline::events::{ExecEvent, OrderRequest};
use crate::telemetry::{Clock, Counters, Hop, Latency};
use strike_sdk::fees::Liquidity;
use strike_sdk::num::{Money, Qty};
use strike_sdk::order::{OrderStatus, OrderUpdate, RejectReason, TimeInForce};

/// See the module docs.
pub struct LiveGateway {
    gw: RestGateway,
    orders: rtrb::Consumer<OrderRequest>,
    exec: rtrb::Producer<ExecEvent>,
    pending: Vec<ExecEvent>,
    clock: Clock,
    /// Latency of submission (tick-to-trade).
    pub latency: Latency,
    /// Counters, as the paper venue's.
    pub stats: GatewayStats,
    /// Requests the gateway could not take or the venue refused (its `Failed` events). A refused
    /// create also reaches the trader as a `Rejected` update carrying the mapped reject reason.
    pub failures: u64,
}

impl LiveGateway {
    /// A stage over `gw`, reading `orders`, answering on `exec`.
    pub fn new(
        gw: RestGateway,
        orders: rtrb::Consumer<OrderRequest>,
        exec: rtrb::Producer<ExecEvent>,
        clock: Clock,
    ) -> LiveGateway {
        LiveGateway {
            gw,
            orders,
            exec,
            pending: Vec::with_capacity(4096),
            clock,
            latency: Latency::default(),
            stats: GatewayStats { rejects: Counters::with_capacity(24), ..Default::default() },
            failures: 0,
        }
    }

    /// The REST gateway (its counters and order table).
    pub fn rest(&self) -> &RestGateway {
        &self.gw
    }

    fn emit(&mut self, e: ExecEvent) {
        if !self.pending.is_empty() || self.exec.push(e).is_err() {
            self.pending.push(e);
        }
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
        let mut busy = false;
        while let Ok(req) = self.orders.pop() {
            busy = true;
            if let OrderRequest::New { strategy, order_ref, market, side, yes_price, tif, tag, .. } = req {
                self.stats.orders += 1;
                if tif == TimeInForce::Gtc {
                    self.stats.rejects.bump("live_gtc_refused");
                    let update = OrderUpdate {
                        order_ref,
                        market,
                        status: OrderStatus::Rejected,
                        reason: RejectReason::BadTimeInForce,
                        filled: Qty::ZERO,
                        remaining: Qty::ZERO,
                        tag,
                    };
                    self.emit(ExecEvent::Update { strategy, update, side, yes_price });
                    continue;
                }
            }
            match self.gw.submit(&req, now) {
                Ok(()) => {
                    if let OrderRequest::New { t0, .. } = req {
                        self.stats.sent += 1;
                        self.latency.record(Hop::TickToTrade, self.clock.ns(t0, self.clock.raw()));
                    }
                }
                // The gateway reports a refused submit itself (a Rejected update for a create it
                // cannot take, a Failed event otherwise): nothing to add here, or the strategy
                // would hear it twice.
                Err(_) => self.failures += 1,
            }
        }
        let Self { gw, exec, pending, stats, failures, .. } = self;
        for ev in gw.poll(now).iter() {
            busy = true;
            match ev {
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
                        }
                        ExecEvent::Update { update, .. } => match update.status {
                            OrderStatus::Rejected => stats.rejects.bump(update.reason.name()),
                            OrderStatus::Cancelled => stats.cancels += 1,
                            _ => {}
                        },
                    }
                    if !pending.is_empty() || exec.push(*e).is_err() {
                        pending.push(*e);
                    }
                }
                GatewayEvent::Failed { .. } => *failures += 1,
                _ => {}
            }
        }
        busy
    }

    /// True when no event waits to be delivered and no request is in flight or queued.
    pub fn drained(&self) -> bool {
        self.pending.is_empty() && self.gw.in_flight() == 0 && self.gw.queued() == 0
    }

    /// Shutdown: no order of ours can rest (see the module docs), so there is nothing to cancel
    /// at the venue; and an account-wide cancel-all would also hit orders of other sessions on
    /// the same key. In-flight requests are waited for by the pipeline ([`LiveGateway::drained`]).
    pub fn cancel_all(&mut self) {}
}
