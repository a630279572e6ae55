//! [`Ctx`]: what a strategy callback can read and write.
//!
//! A `Ctx` is a `#[repr(C)]` view the host builds before each callback: pointers into the host's
//! books, market metadata, positions and open orders (read in place, no copies), and two
//! fixed-capacity output buffers for order and cancel intents. Nothing in it allocates; a full
//! buffer is reported as [`CtxFull`] and the intent is dropped, never grown.

use crate::book::Book;
use crate::market::{MarketId, MarketMeta, Universe};
use crate::num::Money;
use crate::order::{CancelIntent, OpenOrder, OrderIntent, OrderRef, Position};
use core::fmt;

/// The intent or cancel buffer of this callback is full; the request was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtxFull;

impl fmt::Display for CtxFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("intent buffer full for this callback")
    }
}

/// The strategy's window onto the engine during one callback; see the module docs.
#[repr(C)]
pub struct Ctx {
    universe: Universe,
    books: *const Book,
    positions: *const Position,
    open_orders: *const OpenOrder,
    n_open: u32,
    n_intents: u32,
    intents: *mut OrderIntent,
    cap_intents: u32,
    n_cancels: u32,
    cancels: *mut CancelIntent,
    cap_cancels: u32,
    _pad: u32,
    next_ref: u64,
    now_ns: u64,
    capital: Money,
}

impl Ctx {
    /// Builds a context over host-owned state. `books` and `positions` are indexed by
    /// [`MarketId`] and must have one entry per market of `universe`.
    ///
    /// Host API.
    ///
    /// # Safety
    /// The `Ctx` keeps raw pointers into every slice (it crosses the C ABI, so it carries no
    /// lifetime): the slices, and the data `universe` points into, must stay alive, unmoved and
    /// not mutated elsewhere for as long as the `Ctx` is used.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn new(
        universe: Universe,
        books: &[Book],
        positions: &[Position],
        open_orders: &[OpenOrder],
        intents: &mut [OrderIntent],
        cancels: &mut [CancelIntent],
        next_ref: u64,
        now_ns: u64,
        capital: Money,
    ) -> Ctx {
        assert_eq!(books.len(), universe.markets().len(), "one book per market");
        assert_eq!(positions.len(), universe.markets().len(), "one position per market");
        Ctx {
            universe,
            books: books.as_ptr(),
            positions: positions.as_ptr(),
            open_orders: open_orders.as_ptr(),
            n_open: open_orders.len() as u32,
            n_intents: 0,
            intents: intents.as_mut_ptr(),
            cap_intents: intents.len() as u32,
            n_cancels: 0,
            cancels: cancels.as_mut_ptr(),
            cap_cancels: cancels.len() as u32,
            _pad: 0,
            next_ref,
            now_ns,
            capital,
        }
    }

    /// The market universe.
    #[inline]
    pub fn universe(&self) -> &Universe {
        &self.universe
    }

    /// Metadata of one market.
    #[inline]
    pub fn market(&self, id: MarketId) -> Option<&MarketMeta> {
        self.universe.market(id)
    }

    /// The book of one market (YES scale). Check [`Book::status`] before trading on it.
    #[inline]
    pub fn book(&self, id: MarketId) -> Option<&Book> {
        if id.idx() < self.universe.markets().len() {
            // SAFETY: `books` has one entry per market (checked in `new`).
            Some(unsafe { &*self.books.add(id.idx()) })
        } else {
            None
        }
    }

    /// The engine's position in one market (zero for an unknown id).
    #[inline]
    pub fn position(&self, id: MarketId) -> Position {
        if id.idx() < self.universe.markets().len() {
            // SAFETY: `positions` has one entry per market (checked in `new`).
            unsafe { *self.positions.add(id.idx()) }
        } else {
            Position::default()
        }
    }

    /// This strategy's resting orders.
    #[inline]
    pub fn open_orders(&self) -> &[OpenOrder] {
        if self.n_open == 0 {
            return &[];
        }
        // SAFETY: built from a live slice of this length in `new`.
        unsafe { core::slice::from_raw_parts(self.open_orders, self.n_open as usize) }
    }

    /// Engine time, ns on its monotonic clock (recording time in replays).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Capital the strategy may size against (Kelly bankroll), micro-dollars.
    #[inline]
    pub fn capital(&self) -> Money {
        self.capital
    }

    /// Queues an order for risk checks and sending; returns its [`OrderRef`].
    ///
    /// Errors with [`CtxFull`] when this callback already queued the buffer's capacity.
    #[inline]
    pub fn submit(&mut self, mut intent: OrderIntent) -> Result<OrderRef, CtxFull> {
        if self.n_intents >= self.cap_intents {
            return Err(CtxFull);
        }
        self.next_ref += 1;
        intent.order_ref = OrderRef(self.next_ref);
        // SAFETY: index < capacity of the host's buffer.
        unsafe { self.intents.add(self.n_intents as usize).write(intent) };
        self.n_intents += 1;
        Ok(intent.order_ref)
    }

    /// Queues a cancel of a resting order. Errors with [`CtxFull`] when the buffer is full.
    #[inline]
    pub fn cancel(&mut self, order_ref: OrderRef) -> Result<(), CtxFull> {
        if self.n_cancels >= self.cap_cancels {
            return Err(CtxFull);
        }
        // SAFETY: index < capacity of the host's buffer.
        unsafe { self.cancels.add(self.n_cancels as usize).write(CancelIntent { order_ref }) };
        self.n_cancels += 1;
        Ok(())
    }

    /// Intents queued so far in this callback.
    #[inline]
    pub fn queued_intents(&self) -> &[OrderIntent] {
        // SAFETY: the first n_intents entries were written by `submit`.
        unsafe { core::slice::from_raw_parts(self.intents, self.n_intents as usize) }
    }

    /// Cancels queued so far in this callback.
    #[inline]
    pub fn queued_cancels(&self) -> &[CancelIntent] {
        // SAFETY: the first n_cancels entries were written by `cancel`.
        unsafe { core::slice::from_raw_parts(self.cancels, self.n_cancels as usize) }
    }

    /// Host API: the next order ref to hand out after this callback.
    #[inline]
    pub fn next_ref(&self) -> u64 {
        self.next_ref
    }
}

/// Offsets of the private fields, for the ABI golden file.
pub(crate) fn private_layout() -> String {
    use core::mem::offset_of;
    let mut o = String::new();
    for (name, off) in [
        ("universe", offset_of!(Ctx, universe)),
        ("books", offset_of!(Ctx, books)),
        ("positions", offset_of!(Ctx, positions)),
        ("open_orders", offset_of!(Ctx, open_orders)),
        ("n_open", offset_of!(Ctx, n_open)),
        ("n_intents", offset_of!(Ctx, n_intents)),
        ("intents", offset_of!(Ctx, intents)),
        ("cap_intents", offset_of!(Ctx, cap_intents)),
        ("n_cancels", offset_of!(Ctx, n_cancels)),
        ("cancels", offset_of!(Ctx, cancels)),
        ("cap_cancels", offset_of!(Ctx, cap_cancels)),
        ("next_ref", offset_of!(Ctx, next_ref)),
        ("now_ns", offset_of!(Ctx, now_ns)),
        ("capital", offset_of!(Ctx, capital)),
    ] {
        o.push_str(&format!("  .{name} @{off}\n"));
    }
    o
}
