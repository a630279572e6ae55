//! The small `Copy` events that travel on the SPSC rings between stages.
//!
//! Every event fits in a cache line or two and owns no heap memory, so a ring of them is a flat
//! array and a push is a copy. Times named `t0` are raw TSC stamps (`quanta::Clock::raw`) of the
//! moment the feed took the triggering frame; `recv_ns` is the frame's receive time in unix
//! nanoseconds (recording time in replays).

use strike_sdk::book::BookSide;
use strike_sdk::grid::PriceGrid;
use strike_sdk::market::MarketId;
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::{Fill, OrderRef, OrderUpdate, TimeInForce, Trade};

/// Why the feed declared a market stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleReason {
    /// A `seq` gap on the market's subscription.
    SeqGap,
    /// A terminal subscription error (codes 10, 17, 25).
    SubscriptionError,
    /// The price grid changed (`price_level_structure_updated`).
    Regrid,
    /// A snapshot or delta of the subscription could not be parsed.
    Fault,
    /// The subscription was acked again (reconnect) or ended.
    Resubscribed,
}

/// Market data, feed → trader (and feed → paper gateway).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MdEvent {
    /// A snapshot of `market` begins: clear its book. Levels follow, then `SnapshotEnd`.
    SnapshotBegin {
        /// Market.
        market: MarketId,
    },
    /// One snapshot level (YES scale).
    SnapshotLevel {
        /// Market.
        market: MarketId,
        /// Bid or ask.
        side: BookSide,
        /// Price.
        price: Price,
        /// Size.
        qty: Qty,
    },
    /// The snapshot of `market` is complete: the book is live again.
    SnapshotEnd {
        /// Market.
        market: MarketId,
        /// Receive time, unix ns.
        recv_ns: u64,
        /// TSC at frame pickup.
        t0: u64,
    },
    /// An in-sequence `orderbook_delta` (YES scale).
    Delta {
        /// Market.
        market: MarketId,
        /// Bid or ask.
        side: BookSide,
        /// Price.
        price: Price,
        /// Signed size change.
        delta: Qty,
        /// Exchange time, unix ms (0 = absent).
        ts_ms: i64,
        /// Receive time, unix ns.
        recv_ns: u64,
        /// TSC at frame pickup.
        t0: u64,
    },
    /// A public trade.
    Trade {
        /// The trade.
        trade: Trade,
        /// Receive time, unix ns.
        recv_ns: u64,
        /// TSC at frame pickup.
        t0: u64,
    },
    /// The market may not be traded until its next snapshot.
    Stale {
        /// Market.
        market: MarketId,
        /// Why.
        reason: StaleReason,
    },
    /// The market closed, was deactivated or settled: stop trading it.
    Closed {
        /// Market.
        market: MarketId,
        /// Settlement result where the message carried one (`Some(true)` = YES).
        result_yes: Option<bool>,
    },
    /// A deactivated market was reactivated (its resting orders were cancelled by Kalshi).
    Reopened {
        /// Market.
        market: MarketId,
    },
    /// The market's price grid changed (`price_level_structure_updated`): rebuild its book over
    /// `grid` and wait for a snapshot.
    Regrid {
        /// Market.
        market: MarketId,
        /// The new grid.
        grid: PriceGrid,
    },
}

/// An order instruction, trader → gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderRequest {
    /// Send a new order (risk-checked).
    New {
        /// Strategy slot that owns it.
        strategy: u16,
        /// The strategy's handle.
        order_ref: OrderRef,
        /// Market.
        market: MarketId,
        /// V2 book side.
        side: BookSide,
        /// Limit, YES scale.
        yes_price: Price,
        /// Size, hundredths.
        qty: Qty,
        /// Time in force.
        tif: TimeInForce,
        /// Post-only.
        post_only: bool,
        /// Strategy tag.
        tag: u32,
        /// Receive time of the triggering data, unix ns.
        recv_ns: u64,
        /// TSC at pickup of the triggering frame.
        t0: u64,
    },
    /// Cancel a resting order.
    Cancel {
        /// Strategy slot.
        strategy: u16,
        /// The order.
        order_ref: OrderRef,
    },
}

/// What happened to an order, gateway → trader.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExecEvent {
    /// A fill.
    Fill {
        /// Strategy slot.
        strategy: u16,
        /// The fill (fee after rounding).
        fill: Fill,
    },
    /// A state change (resting, filled, cancelled, rejected).
    Update {
        /// Strategy slot.
        strategy: u16,
        /// The change.
        update: OrderUpdate,
        /// V2 book side of the order.
        side: BookSide,
        /// Limit, YES scale.
        yes_price: Price,
    },
    /// The venue's position in `market` differs from what the fills reported so far add up to
    /// (positions held before this run, or fills missed while the private feed was down): the
    /// trader takes the venue's figure. Not an order event: no strategy is called.
    Position {
        /// Market.
        market: MarketId,
        /// The venue's position, hundredths of a contract (+ YES, − NO).
        qty: Qty,
        /// Its cost basis in YES terms, micro-dollars (`qty · average YES price`; negative for
        /// a NO position), as [`crate::portfolio`] keeps it.
        cost: Money,
    },
}

/// The largest private frame (`fill`, `user_order`) the feed forwards to the gateway, bytes.
/// Kalshi's `user_order` is about 900 bytes; a longer frame is counted and answered with a
/// resync instead ([`PrivateEvent`]).
pub const PRIVATE_FRAME_CAP: usize = 2048;

/// The account's private stream, feed → gateway (live trading only): the raw `fill` and
/// `user_order` frames, and when that stream went down and came back. Any loss (disconnect,
/// full ring, oversized frame) is reported as `Down` followed by `Up` once the channels are
/// subscribed again, so the gateway reconciles through REST instead of trusting a stream with
/// a hole in it.
// Every ring slot is a frame's size anyway; `Down`/`Up` are rare.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
pub enum PrivateEvent {
    /// One `fill` or `user_order` frame, as received.
    Frame {
        /// Receive time, unix ns.
        recv_ns: u64,
        /// Bytes used in `bytes`.
        len: u16,
        /// The frame text.
        bytes: [u8; PRIVATE_FRAME_CAP],
    },
    /// The stream lost messages or the connection: what it says from now on is incomplete until
    /// the next `Up` and a reconciliation.
    Down,
    /// `fill` and `user_orders` are subscribed (again): reconcile, then trust the stream.
    Up,
}

impl std::fmt::Debug for PrivateEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrivateEvent::Frame { recv_ns, len, bytes } => f
                .debug_struct("Frame")
                .field("recv_ns", recv_ns)
                .field("text", &String::from_utf8_lossy(&bytes[..*len as usize]))
                .finish(),
            PrivateEvent::Down => f.write_str("Down"),
            PrivateEvent::Up => f.write_str("Up"),
        }
    }
}

/// A request from the trader back to the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedCommand {
    /// The trader found a book fault on `market`: ask the exchange for a fresh snapshot.
    Resnapshot {
        /// Market.
        market: MarketId,
    },
}
