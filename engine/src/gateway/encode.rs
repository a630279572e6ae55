//! Kalshi REST V2 order bodies, written into a pre-allocated buffer without allocation.
//!
//! `POST /trade-api/v2/portfolio/events/orders` (Kalshi docs: *Create order V2*,
//! `kalshi-protocol.md` §3.3):
//!
//! ```json
//! {"ticker":"KXHIGHNY-26AUG12-T90","client_order_id":"strk-5f3a09c1-00-0000000000000001","side":"bid",
//!  "count":"10.00","price":"0.5600","time_in_force":"good_till_canceled",
//!  "self_trade_prevention_type":"taker_at_cross","post_only":true,"exchange_index":0}
//! ```
//!
//! `exchange_index` is always sent (auto-routing adds latency and bills every shard).
//! `client_order_id` is `strk-<session, 8 hex>-<strategy slot, 2 hex>-<order ref, 16 hex>`,
//! derived without formatting machinery. Order refs restart at every run, so the session id
//! (drawn once per process, [`new_session_id`]) is what keeps an id from naming an order of an
//! earlier run: without it a restart would get `order_already_exists` for a still-resting old
//! order, and reconciliation by `client_order_id` would adopt that old order as the new one.

use strike_sdk::book::BookSide;
use strike_sdk::num::{Price, Qty};
use strike_sdk::order::{OrderRef, TimeInForce};

/// Length of a generated `client_order_id`.
pub const CLIENT_ORDER_ID_LEN: usize = 33;

/// A session id for [`client_order_id`]: the low 32 bits of a mix of the wall clock (ns) and
/// the process id, so two runs on one key (even started in the same second) differ.
pub fn new_session_id() -> u32 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let x = t ^ ((std::process::id() as u64) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64 finaliser: every input bit reaches the low 32 bits
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) as u32
}

/// Capacity of the body buffer; a body with the longest ticker is under 330 bytes.
pub const BODY_CAP: usize = 512;

/// Writes V2 create-order bodies into one reused buffer.
pub struct OrderEncoder {
    buf: [u8; BODY_CAP],
    len: usize,
}

impl Default for OrderEncoder {
    fn default() -> Self {
        OrderEncoder { buf: [0; BODY_CAP], len: 0 }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The `client_order_id` of a strategy slot's order ref in session `session`
/// (`strk-SSSSSSSS-PP-RRRRRRRRRRRRRRRR`, lowercase hex).
#[inline]
pub fn client_order_id(session: u32, slot: u16, order_ref: OrderRef) -> [u8; CLIENT_ORDER_ID_LEN] {
    let mut id = *b"strk-00000000-00-0000000000000000";
    for i in 0..8 {
        id[5 + i] = HEX[((session >> (28 - 4 * i)) & 0xf) as usize];
    }
    id[14] = HEX[((slot >> 4) & 0xf) as usize];
    id[15] = HEX[(slot & 0xf) as usize];
    for i in 0..16 {
        id[17 + i] = HEX[((order_ref.0 >> (60 - 4 * i)) & 0xf) as usize];
    }
    id
}

/// Fields of one create-order request.
#[derive(Clone, Copy, Debug)]
pub struct NewOrderFields<'a> {
    /// Market ticker.
    pub ticker: &'a str,
    /// Session id ([`new_session_id`]; 0 in paper trading).
    pub session: u32,
    /// Strategy slot.
    pub slot: u16,
    /// Order ref.
    pub order_ref: OrderRef,
    /// V2 side.
    pub side: BookSide,
    /// Size.
    pub count: Qty,
    /// YES price.
    pub price: Price,
    /// Time in force.
    pub tif: TimeInForce,
    /// Post-only.
    pub post_only: bool,
    /// Shard.
    pub exchange_index: u8,
}

impl OrderEncoder {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        let end = (self.len + b.len()).min(BODY_CAP);
        let n = end - self.len;
        self.buf[self.len..end].copy_from_slice(&b[..n]);
        self.len = end;
    }

    /// Writes the body of `o` and returns it. Allocation-free.
    #[inline]
    pub fn encode(&mut self, o: &NewOrderFields<'_>) -> &[u8] {
        self.len = 0;
        self.put(b"{\"ticker\":\"");
        self.put(o.ticker.as_bytes());
        self.put(b"\",\"client_order_id\":\"");
        self.put(&client_order_id(o.session, o.slot, o.order_ref));
        self.put(match o.side {
            BookSide::Bid => b"\",\"side\":\"bid\",\"count\":\"",
            BookSide::Ask => b"\",\"side\":\"ask\",\"count\":\"",
        });
        self.put(o.count.to_fixed_str().as_bytes());
        self.put(b"\",\"price\":\"");
        self.put(o.price.to_fixed_str().as_bytes());
        self.put(b"\",\"time_in_force\":\"");
        self.put(o.tif.kalshi_name().as_bytes());
        self.put(b"\",\"self_trade_prevention_type\":\"taker_at_cross\",\"post_only\":");
        self.put(if o.post_only { b"true" } else { b"false" });
        self.put(b",\"exchange_index\":");
        let e = o.exchange_index;
        if e >= 100 {
            self.put(&[b'0' + e / 100]);
        }
        if e >= 10 {
            self.put(&[b'0' + (e / 10) % 10]);
        }
        self.put(&[b'0' + e % 10, b'}']);
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_v2_shape() {
        let mut e = OrderEncoder::default();
        let body = e.encode(&NewOrderFields {
            ticker: "KXHIGHNY-26AUG12-T90",
            session: 0x5f3a_09c1,
            slot: 1,
            order_ref: OrderRef(0x1f),
            side: BookSide::Ask,
            count: Qty(1050),
            price: Price(5600),
            tif: TimeInForce::Gtc,
            post_only: true,
            exchange_index: 12,
        });
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["ticker"], "KXHIGHNY-26AUG12-T90");
        assert_eq!(v["client_order_id"], "strk-5f3a09c1-01-000000000000001f");
        assert_eq!(v["side"], "ask");
        assert_eq!(v["count"], "10.50");
        assert_eq!(v["price"], "0.5600");
        assert_eq!(v["time_in_force"], "good_till_canceled");
        assert_eq!(v["self_trade_prevention_type"], "taker_at_cross");
        assert_eq!(v["post_only"], true);
        assert_eq!(v["exchange_index"], 12);
        assert_eq!(v.as_object().unwrap().len(), 9);
    }

    #[test]
    fn session_ids_differ_between_calls() {
        // drawn from the nanosecond clock: two draws in a row must not collide
        let ids: std::collections::HashSet<u32> = (0..64).map(|_| new_session_id()).collect();
        assert!(ids.len() > 60, "{} distinct of 64", ids.len());
        assert_ne!(client_order_id(1, 0, OrderRef(1)), client_order_id(2, 0, OrderRef(1)));
    }
}
