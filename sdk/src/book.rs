//! The fixed price-level order book of one market, on the YES scale.
//!
//! Kalshi publishes two bid ladders per market, YES bids and NO bids (Kalshi docs: *Orderbook
//! responses*, `kalshi-protocol.md` §2.1). A [`Book`] keeps them as two flat `Qty` arrays over the
//! market's [`PriceGrid`]: `bids` (YES bids) and `asks` (YES asks, where a NO bid at `q` is a YES
//! ask at `1 − q`). Every array is allocated once, when the market is subscribed; an update writes
//! one slot, flips one bit of a per-side bitset of non-empty levels and maintains the best index,
//! so best bid/ask is a field read and refinding the best after the touch empties is a
//! leading/trailing-zero scan of 64-level words, never a scan of levels.
//!
//! A delta that would make a level negative, an off-grid price and a crossed book (best bid ≥
//! best ask) are returned as [`BookFault`]s: the caller marks the market stale and resnapshots.
//!
//! The struct is `#[repr(C)]` and is read in place by plugins through [`crate::Ctx`]; only the
//! host mutates it.

use crate::grid::PriceGrid;
use crate::num::{Price, Qty};
use core::fmt;

/// Which side of the YES-scale book.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BookSide {
    /// YES bids (Kalshi `book_side: "bid"`).
    Bid = 0,
    /// YES asks, i.e. NO bids seen at `1 − q` (Kalshi `book_side: "ask"`).
    Ask = 1,
}

impl BookSide {
    /// The other side.
    #[inline]
    pub const fn opposite(self) -> BookSide {
        match self {
            BookSide::Bid => BookSide::Ask,
            BookSide::Ask => BookSide::Bid,
        }
    }
}

/// Why an update was refused or left the book unusable. The market must be resnapshotted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookFault {
    /// The price is not a level of this market's grid.
    OffGrid {
        /// The refused price.
        price: Price,
    },
    /// The delta would take the level below zero (the level is left unchanged).
    NegativeLevel {
        /// The level's price.
        price: Price,
        /// Its size before the delta.
        size: Qty,
        /// The refused delta.
        delta: Qty,
    },
    /// The size would leave the range of `Qty` (only with absurd sizes from a bad feed).
    Overflow {
        /// The level's price.
        price: Price,
    },
    /// After the update the best bid is at or above the best ask.
    Crossed {
        /// Best bid.
        bid: Price,
        /// Best ask.
        ask: Price,
    },
}

impl fmt::Display for BookFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BookFault::OffGrid { price } => write!(f, "price {price} is not on the market's grid"),
            BookFault::NegativeLevel { price, size, delta } => {
                write!(f, "delta {delta} at {price} would take size {size} below zero")
            }
            BookFault::Overflow { price } => write!(f, "size at {price} would overflow"),
            BookFault::Crossed { bid, ask } => write!(f, "crossed book: bid {bid} >= ask {ask}"),
        }
    }
}

/// Trading status of a market's book as the host sees it.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BookStatus {
    /// No snapshot yet: not tradable.
    #[default]
    Empty = 0,
    /// Snapshot applied and deltas in sequence: tradable.
    Live = 1,
    /// A gap or fault was seen; waiting for a snapshot: not tradable.
    Stale = 2,
    /// The market is closed, settled or deactivated: not tradable.
    Closed = 3,
}

const NONE: u32 = u32::MAX;

/// Fixed price-level book of one market; see the module docs.
#[repr(C)]
pub struct Book {
    grid: PriceGrid,
    bids: *mut Qty,
    asks: *mut Qty,
    bid_bits: *mut u64,
    ask_bits: *mut u64,
    n_levels: u32,
    n_words: u32,
    best_bid: u32,
    best_ask: u32,
    /// Host receive time of the last applied update, nanoseconds on the engine's monotonic clock.
    pub updated_ns: u64,
    /// Exchange time of the last applied update, unix milliseconds (0 when unknown).
    pub exchange_ts_ms: i64,
    /// Whether the book may be traded on.
    pub status: BookStatus,
}

// SAFETY: the pointers are uniquely owned by this `Book` (allocated in `new`, freed in `drop`).
unsafe impl Send for Book {}
// SAFETY: `&Book` only reads.
unsafe impl Sync for Book {}

fn leak<T: Copy>(v: T, n: usize) -> *mut T {
    Box::into_raw(vec![v; n].into_boxed_slice()) as *mut T
}

impl Book {
    /// An empty book over `grid`. Allocates the level arrays: call when a market is subscribed,
    /// never on the update path.
    pub fn new(grid: PriceGrid) -> Book {
        let n = grid.n_levels().max(1);
        let words = n.div_ceil(64);
        Book {
            grid,
            bids: leak(Qty::ZERO, n),
            asks: leak(Qty::ZERO, n),
            bid_bits: leak(0u64, words),
            ask_bits: leak(0u64, words),
            n_levels: n as u32,
            n_words: words as u32,
            best_bid: NONE,
            best_ask: NONE,
            updated_ns: 0,
            exchange_ts_ms: 0,
            status: BookStatus::Empty,
        }
    }

    /// The market's price grid.
    #[inline]
    pub fn grid(&self) -> &PriceGrid {
        &self.grid
    }

    #[inline]
    fn sizes(&self, side: BookSide) -> &[Qty] {
        let p = match side {
            BookSide::Bid => self.bids,
            BookSide::Ask => self.asks,
        };
        // SAFETY: allocated with n_levels elements in `new`.
        unsafe { core::slice::from_raw_parts(p, self.n_levels as usize) }
    }

    #[inline]
    fn bits(&self, side: BookSide) -> &[u64] {
        let p = match side {
            BookSide::Bid => self.bid_bits,
            BookSide::Ask => self.ask_bits,
        };
        // SAFETY: allocated with n_words elements in `new`.
        unsafe { core::slice::from_raw_parts(p, self.n_words as usize) }
    }

    #[inline]
    fn sizes_mut(&mut self, side: BookSide) -> &mut [Qty] {
        let p = match side {
            BookSide::Bid => self.bids,
            BookSide::Ask => self.asks,
        };
        // SAFETY: as `sizes`, and `&mut self` gives exclusive access.
        unsafe { core::slice::from_raw_parts_mut(p, self.n_levels as usize) }
    }

    #[inline]
    fn bits_mut(&mut self, side: BookSide) -> &mut [u64] {
        let p = match side {
            BookSide::Bid => self.bid_bits,
            BookSide::Ask => self.ask_bits,
        };
        // SAFETY: as `bits`, and `&mut self` gives exclusive access.
        unsafe { core::slice::from_raw_parts_mut(p, self.n_words as usize) }
    }

    /// Best YES bid `(price, size)`, if any. O(1).
    #[inline]
    pub fn best_bid(&self) -> Option<(Price, Qty)> {
        self.best(BookSide::Bid)
    }

    /// Best YES ask `(price, size)`, if any (= 1 − best NO bid). O(1).
    #[inline]
    pub fn best_ask(&self) -> Option<(Price, Qty)> {
        self.best(BookSide::Ask)
    }

    /// Best level of `side`. O(1).
    #[inline]
    pub fn best(&self, side: BookSide) -> Option<(Price, Qty)> {
        let l = match side {
            BookSide::Bid => self.best_bid,
            BookSide::Ask => self.best_ask,
        };
        if l == NONE {
            return None;
        }
        let p = self.grid.price_at(l as u16)?;
        Some((p, self.sizes(side)[l as usize]))
    }

    /// Best NO bid on the NO scale (`1 − best YES ask`).
    #[inline]
    pub fn best_no_bid(&self) -> Option<(Price, Qty)> {
        self.best_ask().map(|(p, q)| (p.complement(), q))
    }

    /// Best NO ask on the NO scale (`1 − best YES bid`).
    #[inline]
    pub fn best_no_ask(&self) -> Option<(Price, Qty)> {
        self.best_bid().map(|(p, q)| (p.complement(), q))
    }

    /// Resting size at a YES price on `side` (zero when empty or off-grid).
    #[inline]
    pub fn size_at(&self, side: BookSide, price: Price) -> Qty {
        match self.grid.level_of(price) {
            Some(l) => self.sizes(side)[l as usize],
            None => Qty::ZERO,
        }
    }

    /// Total size on `side` from the best price up to and including `limit`: asks priced ≤ limit,
    /// or bids priced ≥ limit. This is what a marketable order at `limit` could take.
    pub fn depth_to(&self, side: BookSide, limit: Price) -> Qty {
        let mut total = Qty::ZERO;
        self.for_each_level(side, |p, q| {
            let inside = match side {
                BookSide::Ask => p <= limit,
                BookSide::Bid => p >= limit,
            };
            if inside {
                total = Qty(total.0.saturating_add(q.0));
            }
            inside
        });
        total
    }

    /// Calls `f(price, size)` for each non-empty level of `side`, best first, until `f` returns
    /// false. Walks the bitset; allocation-free.
    pub fn for_each_level(&self, side: BookSide, mut f: impl FnMut(Price, Qty) -> bool) {
        let bits = self.bits(side);
        let sizes = self.sizes(side);
        match side {
            BookSide::Bid => {
                for w in (0..bits.len()).rev() {
                    let mut word = bits[w];
                    while word != 0 {
                        let b = 63 - word.leading_zeros() as usize;
                        word &= !(1u64 << b);
                        let l = w * 64 + b;
                        let p = self.grid.price_at(l as u16).unwrap_or_default();
                        if !f(p, sizes[l]) {
                            return;
                        }
                    }
                }
            }
            BookSide::Ask => {
                for (w, &word0) in bits.iter().enumerate() {
                    let mut word = word0;
                    while word != 0 {
                        let b = word.trailing_zeros() as usize;
                        word &= word - 1;
                        let l = w * 64 + b;
                        let p = self.grid.price_at(l as u16).unwrap_or_default();
                        if !f(p, sizes[l]) {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Number of non-empty levels on `side`.
    pub fn level_count(&self, side: BookSide) -> usize {
        self.bits(side).iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Highest set level strictly below `from` (or at/below `from` when `inclusive`).
    #[inline]
    fn scan_down(bits: &[u64], from: u32) -> u32 {
        let mut w = (from / 64) as usize;
        let b = from % 64;
        let mut word = bits[w] & (u64::MAX >> (63 - b));
        loop {
            if word != 0 {
                return w as u32 * 64 + 63 - word.leading_zeros();
            }
            if w == 0 {
                return NONE;
            }
            w -= 1;
            word = bits[w];
        }
    }

    /// Lowest set level at or above `from`.
    #[inline]
    fn scan_up(bits: &[u64], from: u32, n_levels: u32) -> u32 {
        if from >= n_levels {
            return NONE;
        }
        let mut w = (from / 64) as usize;
        let b = from % 64;
        let mut word = bits[w] & (u64::MAX << b);
        loop {
            if word != 0 {
                return w as u32 * 64 + word.trailing_zeros();
            }
            w += 1;
            if w == bits.len() {
                return NONE;
            }
            word = bits[w];
        }
    }

    /// Writes the size of one level and maintains the bitset and best index. No cross check.
    #[inline]
    fn write_level(&mut self, side: BookSide, l: u32, size: Qty) {
        self.sizes_mut(side)[l as usize] = size;
        let (w, bit) = ((l / 64) as usize, 1u64 << (l % 64));
        let n_levels = self.n_levels;
        if size.0 > 0 {
            self.bits_mut(side)[w] |= bit;
            match side {
                BookSide::Bid => {
                    if self.best_bid == NONE || l > self.best_bid {
                        self.best_bid = l
                    }
                }
                BookSide::Ask => {
                    if self.best_ask == NONE || l < self.best_ask {
                        self.best_ask = l
                    }
                }
            }
        } else {
            self.bits_mut(side)[w] &= !bit;
            match side {
                BookSide::Bid if l == self.best_bid => {
                    self.best_bid = if l == 0 { NONE } else { Self::scan_down(self.bits(side), l - 1) }
                }
                BookSide::Ask if l == self.best_ask => self.best_ask = Self::scan_up(self.bits(side), l + 1, n_levels),
                _ => {}
            }
        }
    }

    #[inline]
    fn check_crossed(&self) -> Result<(), BookFault> {
        if self.best_bid != NONE && self.best_ask != NONE && self.best_bid >= self.best_ask {
            let bid = self.grid.price_at(self.best_bid as u16).unwrap_or_default();
            let ask = self.grid.price_at(self.best_ask as u16).unwrap_or_default();
            return Err(BookFault::Crossed { bid, ask });
        }
        Ok(())
    }

    /// Adds `delta` to the size at YES price `price` on `side` (Kalshi `orderbook_delta`).
    ///
    /// Errors: [`BookFault::OffGrid`] and [`BookFault::NegativeLevel`] leave the book unchanged;
    /// [`BookFault::Crossed`] is reported after the update is applied. O(1) except when the best
    /// level empties (a bitset scan).
    #[inline]
    pub fn apply_delta(&mut self, side: BookSide, price: Price, delta: Qty) -> Result<(), BookFault> {
        let l = self.grid.level_of(price).ok_or(BookFault::OffGrid { price })? as u32;
        let size = self.sizes(side)[l as usize];
        let new = Qty(size.0.checked_add(delta.0).ok_or(BookFault::Overflow { price })?);
        if new.0 < 0 {
            return Err(BookFault::NegativeLevel { price, size, delta });
        }
        self.write_level(side, l, new);
        self.check_crossed()
    }

    /// Sets the size at YES price `price` on `side` outright (a snapshot level). Negative sizes
    /// are refused as [`BookFault::NegativeLevel`]. Does not check for a crossed book; call
    /// [`Book::finish_snapshot`] after the last level.
    #[inline]
    pub fn set_level(&mut self, side: BookSide, price: Price, size: Qty) -> Result<(), BookFault> {
        let l = self.grid.level_of(price).ok_or(BookFault::OffGrid { price })? as u32;
        if size.0 < 0 {
            return Err(BookFault::NegativeLevel { price, size: Qty::ZERO, delta: size });
        }
        self.write_level(side, l, size);
        Ok(())
    }

    /// Empties both sides. Touches only the non-empty levels.
    pub fn clear(&mut self) {
        for side in [BookSide::Bid, BookSide::Ask] {
            for w in 0..self.n_words as usize {
                let mut word = self.bits(side)[w];
                while word != 0 {
                    let b = word.trailing_zeros() as usize;
                    word &= word - 1;
                    self.sizes_mut(side)[w * 64 + b] = Qty::ZERO;
                }
                self.bits_mut(side)[w] = 0;
            }
        }
        self.best_bid = NONE;
        self.best_ask = NONE;
    }

    /// Checks the book after a snapshot's levels were written: errors when crossed.
    #[inline]
    pub fn finish_snapshot(&mut self) -> Result<(), BookFault> {
        self.check_crossed()
    }

    /// Replaces the whole book (Kalshi `orderbook_snapshot`): `bids` are YES bids, `asks` YES
    /// asks, both `(price, size)` on the YES scale. On a fault the book is left cleared.
    pub fn replace(
        &mut self,
        bids: impl IntoIterator<Item = (Price, Qty)>,
        asks: impl IntoIterator<Item = (Price, Qty)>,
    ) -> Result<(), BookFault> {
        self.clear();
        let r = (|| {
            for (p, q) in bids {
                self.set_level(BookSide::Bid, p, q)?;
            }
            for (p, q) in asks {
                self.set_level(BookSide::Ask, p, q)?;
            }
            self.finish_snapshot()
        })();
        if r.is_err() {
            self.clear();
        }
        r
    }

    /// Replaces the grid (Kalshi `price_level_structure_updated`): reallocates and empties the
    /// book. Cold path; the market must be resnapshotted afterwards.
    pub fn regrid(&mut self, grid: PriceGrid) {
        let status = self.status;
        *self = Book::new(grid);
        self.status = if status == BookStatus::Closed { status } else { BookStatus::Stale };
    }
}

impl Clone for Book {
    fn clone(&self) -> Book {
        let mut b = Book::new(self.grid);
        b.sizes_mut(BookSide::Bid).copy_from_slice(self.sizes(BookSide::Bid));
        b.sizes_mut(BookSide::Ask).copy_from_slice(self.sizes(BookSide::Ask));
        b.bits_mut(BookSide::Bid).copy_from_slice(self.bits(BookSide::Bid));
        b.bits_mut(BookSide::Ask).copy_from_slice(self.bits(BookSide::Ask));
        b.best_bid = self.best_bid;
        b.best_ask = self.best_ask;
        b.updated_ns = self.updated_ns;
        b.exchange_ts_ms = self.exchange_ts_ms;
        b.status = self.status;
        b
    }
}

impl Drop for Book {
    fn drop(&mut self) {
        // SAFETY: each pointer came from `Box<[T]>::into_raw` with exactly this length.
        unsafe {
            let n = self.n_levels as usize;
            let w = self.n_words as usize;
            drop(Box::from_raw(core::ptr::slice_from_raw_parts_mut(self.bids, n)));
            drop(Box::from_raw(core::ptr::slice_from_raw_parts_mut(self.asks, n)));
            drop(Box::from_raw(core::ptr::slice_from_raw_parts_mut(self.bid_bits, w)));
            drop(Box::from_raw(core::ptr::slice_from_raw_parts_mut(self.ask_bits, w)));
        }
    }
}

impl fmt::Debug for Book {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Book")
            .field("structure", &self.grid.structure)
            .field("best_bid", &self.best_bid())
            .field("best_ask", &self.best_ask())
            .field("status", &self.status)
            .finish()
    }
}

/// Offsets of the private fields, for the ABI golden file (plugins read them in place).
pub(crate) fn private_layout() -> String {
    use core::mem::offset_of;
    format!(
        "  .grid @{}\n  .bids @{}\n  .asks @{}\n  .bid_bits @{}\n  .ask_bits @{}\n  .n_levels @{}\n  .n_words @{}\n  .best_bid @{}\n  .best_ask @{}\n",
        offset_of!(Book, grid),
        offset_of!(Book, bids),
        offset_of!(Book, asks),
        offset_of!(Book, bid_bits),
        offset_of!(Book, ask_bits),
        offset_of!(Book, n_levels),
        offset_of!(Book, n_words),
        offset_of!(Book, best_bid),
        offset_of!(Book, best_ask),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::PriceStructure;

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }

    #[test]
    fn deltas_maintain_best_levels() {
        let mut b = Book::new(PriceStructure::LinearCent.grid());
        assert_eq!(b.best_bid(), None);
        b.apply_delta(BookSide::Bid, p("0.40"), q("10")).unwrap();
        b.apply_delta(BookSide::Bid, p("0.42"), q("5")).unwrap();
        b.apply_delta(BookSide::Ask, p("0.45"), q("7")).unwrap();
        b.apply_delta(BookSide::Ask, p("0.50"), q("3")).unwrap();
        assert_eq!(b.best_bid(), Some((p("0.42"), q("5"))));
        assert_eq!(b.best_ask(), Some((p("0.45"), q("7"))));
        assert_eq!(b.best_no_bid(), Some((p("0.55"), q("7"))));
        b.apply_delta(BookSide::Bid, p("0.42"), q("-5")).unwrap();
        assert_eq!(b.best_bid(), Some((p("0.40"), q("10"))));
        b.apply_delta(BookSide::Ask, p("0.45"), q("-7")).unwrap();
        assert_eq!(b.best_ask(), Some((p("0.50"), q("3"))));
        assert_eq!(b.depth_to(BookSide::Ask, p("0.50")), q("3"));
        assert_eq!(b.depth_to(BookSide::Ask, p("0.49")), Qty::ZERO);
        b.apply_delta(BookSide::Bid, p("0.40"), q("-10")).unwrap();
        assert_eq!(b.best_bid(), None);
    }

    #[test]
    fn faults_are_reported() {
        let mut b = Book::new(PriceStructure::LinearCent.grid());
        assert_eq!(b.apply_delta(BookSide::Bid, p("0.405"), q("1")), Err(BookFault::OffGrid { price: p("0.405") }));
        b.apply_delta(BookSide::Bid, p("0.40"), q("1")).unwrap();
        assert!(matches!(b.apply_delta(BookSide::Bid, p("0.40"), q("-2")), Err(BookFault::NegativeLevel { .. })));
        assert_eq!(b.size_at(BookSide::Bid, p("0.40")), q("1"));
        assert!(matches!(b.apply_delta(BookSide::Ask, p("0.40"), q("1")), Err(BookFault::Crossed { .. })));
    }

    #[test]
    fn snapshot_replaces_everything() {
        let mut b = Book::new(PriceStructure::CenterCentiEdgeCentiCent.grid());
        b.apply_delta(BookSide::Bid, p("0.0001"), q("1")).unwrap();
        b.replace([(p("0.3000"), q("2")), (p("0.2999"), q("4"))], [(p("0.9999"), q("1"))]).unwrap();
        assert_eq!(b.size_at(BookSide::Bid, p("0.0001")), Qty::ZERO);
        assert_eq!(b.best_bid(), Some((p("0.30"), q("2"))));
        assert_eq!(b.best_ask(), Some((p("0.9999"), q("1"))));
        assert_eq!(b.level_count(BookSide::Bid), 2);
        let mut seen = Vec::new();
        b.for_each_level(BookSide::Bid, |pr, _| {
            seen.push(pr);
            true
        });
        assert_eq!(seen, vec![p("0.30"), p("0.2999")]);
        assert!(b.replace([(p("0.6"), q("1"))], [(p("0.5"), q("1"))]).is_err());
        assert_eq!(b.best_bid(), None);
    }

    /// Cross-checks the maintained best index against a brute-force scan over random updates on
    /// the 10,001-level grid (sparse books are where a maintained index can go wrong).
    #[test]
    fn best_matches_brute_force() {
        let g = PriceStructure::CenterCentiEdgeCentiCent.grid();
        let mut b = Book::new(g);
        let mut shadow = vec![[0i64; 2]; g.n_levels()];
        let mut x: u64 = 0x9E3779B97F4A7C15;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let side = if x & 1 == 0 { BookSide::Bid } else { BookSide::Ask };
            let l = ((x >> 8) % 10001) as usize;
            let price = g.price_at(l as u16).unwrap();
            let cur = shadow[l][side as usize];
            let delta = if cur > 0 && (x >> 40).is_multiple_of(3) { -cur } else { ((x >> 20) % 500) as i64 + 1 };
            let _ = b.apply_delta(side, price, Qty(delta));
            shadow[l][side as usize] = b.size_at(side, price).0;
            if !(x >> 30).is_multiple_of(16) {
                continue;
            }
            let bb = (0..g.n_levels()).rev().find(|&i| shadow[i][0] > 0);
            let ba = (0..g.n_levels()).find(|&i| shadow[i][1] > 0);
            assert_eq!(b.best_bid().map(|x| x.0), bb.map(|i| g.price_at(i as u16).unwrap()));
            assert_eq!(b.best_ask().map(|x| x.0), ba.map(|i| g.price_at(i as u16).unwrap()));
            if (x >> 50).is_multiple_of(1000) {
                b.clear();
                shadow.iter_mut().for_each(|s| *s = [0, 0]);
            }
        }
    }
}
