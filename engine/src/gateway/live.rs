//! The live gateway stage: order requests from the trader's ring go to Kalshi through the
//! [`RestGateway`], and what comes back (acks, rejects, fills from REST responses) goes onto the
//! exec ring as [`ExecEvent`]s — the same contract as the paper venue, so the trader cannot tell
//! them apart.
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
use strike_sdk::order::{OrderStatus, OrderUpdate, RejectReason};

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
    /// Requests refused by the venue or the gateway, by Kalshi error code.
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
            if let OrderRequest::New { .. } = req {
                self.stats.orders += 1;
            }
            match self.gw.submit(&req, now) {
                Ok(()) => {
                    if let OrderRequest::New { t0, .. } = req {
                        self.stats.sent += 1;
                        self.latency.record(Hop::TickToTrade, self.clock.ns(t0, self.clock.raw()));
                    }
                }
                Err(e) => {
                    // never silently dropped: the strategy hears a reject
                    if let OrderRequest::New { strategy, order_ref, market, side, yes_price, tag, .. } = req {
                        self.stats.rejects.bump(RejectReason::Venue.name());
                        let update = OrderUpdate {
                            order_ref,
                            market,
                            status: OrderStatus::Rejected,
                            reason: if matches!(e, super::rest::SubmitError::UnknownMarket(_)) {
                                RejectReason::UnknownMarket
                            } else {
                                RejectReason::Venue
                            },
                            filled: Qty::ZERO,
                            remaining: Qty::ZERO,
                            tag,
                        };
                        self.emit(ExecEvent::Update { strategy, update, side, yes_price });
                    }
                }
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

    /// Cancels every resting order at the venue (shutdown).
    pub fn cancel_all(&mut self) {
        self.gw.cancel_all(crate::auth::unix_now_ns());
    }
}
