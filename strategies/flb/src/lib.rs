//! # flb — the favourite-longshot-bias harvester
//!
//! Prediction-market prices are biased toward 50¢ at the extremes: contracts priced as heavy
//! favourites win a little more often than their price says, longshots a good deal less often.
//! `flb` buys the favourite side of both:
//!
//! - **Favourites**: when the best YES ask is at or above `favorite_threshold`, YES wins with the
//!   calibrated probability `p = win_prob(ask)`; buy YES.
//! - **Longshots**: when the best YES bid is at or below `longshot_threshold`, NO costs `1 − bid`
//!   and wins with `1 − win_prob(bid)`; buy NO.
//!
//! An order is sent only when its **fee-exact** expected value per contract
//! ([`strike_sdk::helpers::ev_per_contract`], with the per-order rounding of the intended size) is
//! at least `min_ev`. It is sized by fractional Kelly ([`strike_sdk::helpers::kelly_qty`]) on
//! [`Ctx::capital`] with the cost per contract including the fee, and capped by
//! `max_order_contracts`, by the room left under `max_position_contracts` (net position in the
//! outcome plus this strategy's resting and in-flight orders in that market) and, for takers, by
//! the size displayed at the touch. Sizing and the EV check iterate until the size is stable,
//! because the per-contract fee of a small order is higher (it rounds up to the cent).
//!
//! **Modes.** `taker`: a fill-or-kill buy at the touch. `maker`: a post-only good-till-cancelled
//! buy one tick above the outcome's best bid ([`strike_sdk::helpers::penny_price`], computed
//! without our own resting size so we never penny ourselves), EV with maker fees at that price.
//! At most one order per market and outcome is live at a time; a resting order is cancelled when
//! it is no longer at the penny price, no longer +EV, or the book is no longer live (stale or
//! closed). A new order in a market waits `cooldown_ms` after the previous one
//! ([`Ctx::now_ns`]).
//!
//! **Robustness.** The strategy reads only `Live` books, never indexes without a bound check,
//! never unwraps data from the book, and does not allocate on the callback path (per-market state
//! is sized once in [`Strategy::new`]). An in-flight FOK whose outcome is never reported, or a
//! cancel never confirmed, is forgotten after [`FORGET_AFTER_NS`].
//!
//! Balance precision is taken as whole cents ([`AccountPrecision::Cent`], non-direct members):
//! the conservative fee rounding.

#![warn(missing_docs)]

pub mod config;

pub use config::{Bucket, Config, Mode};
use strike_sdk::helpers::{ev_per_contract, fee_per_contract, kelly_qty, penny_price};
use strike_sdk::{
    AccountPrecision, Action, Book, BookSide, BookStatus, Ctx, FeeSchedule, Fill, Liquidity, MarketId, OrderIntent,
    OrderRef, OrderStatus, OrderUpdate, Outcome, Price, Qty, Strategy, TimeInForce, Universe,
};

/// Fee rounding assumed for EV and sizing: whole cents (non-direct members).
pub const PRECISION: AccountPrecision = AccountPrecision::Cent;

/// An in-flight fill-or-kill, or a cancel, with no report after this long (ns) is forgotten.
pub const FORGET_AFTER_NS: u64 = 5_000_000_000;

/// One live order of ours in one market and outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    order_ref: OrderRef,
    /// Limit on the outcome's own scale.
    price: Price,
    /// Size still live, hundredths.
    qty: Qty,
    /// Fill-or-kill (taker) rather than resting (maker).
    fok: bool,
    /// When it was submitted, engine ns.
    submitted_ns: u64,
    /// When we asked to cancel it, engine ns.
    cancel_sent_ns: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default)]
struct MarketState {
    last_order_ns: Option<u64>,
    /// Index 0: YES, 1: NO.
    slots: [Option<Slot>; 2],
}

fn oi(o: Outcome) -> usize {
    match o {
        Outcome::Yes => 0,
        Outcome::No => 1,
    }
}

/// The book side an outcome's buy orders rest on.
fn buy_side(o: Outcome) -> BookSide {
    match o {
        Outcome::Yes => BookSide::Bid,
        Outcome::No => BookSide::Ask,
    }
}

/// A price as dollars.
fn dollars(p: Price) -> f64 {
    p.0 as f64 / Price::ONE as f64
}

/// What the strategy wants in one market and outcome right now.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Want {
    price: Price,
    qty: Qty,
}

/// The favourite-longshot-bias harvester; see the crate docs.
pub struct Flb {
    cfg: Config,
    markets: Vec<MarketState>,
}

impl Flb {
    /// The validated configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Room to buy more of `outcome` in `m` under `max_position_contracts`, hundredths: the cap
    /// minus the net position in that outcome, our resting buys of it, and our in-flight order.
    fn room(&self, ctx: &Ctx, m: MarketId, outcome: Outcome, exclude: Option<OrderRef>) -> Qty {
        let pos = ctx.position(m).qty.0;
        let held = match outcome {
            Outcome::Yes => pos,
            Outcome::No => pos.saturating_neg(),
        };
        let side = buy_side(outcome);
        let mut resting: i64 = 0;
        let mut slot_seen = false;
        let slot = self.markets.get(m.idx()).and_then(|s| s.slots[oi(outcome)]);
        for o in ctx.open_orders() {
            if o.market == m && o.side == side && Some(o.order_ref) != exclude {
                resting = resting.saturating_add(o.remaining.0.max(0));
            }
            if slot.is_some_and(|s| s.order_ref == o.order_ref) {
                slot_seen = true;
            }
        }
        if let Some(s) = slot {
            if !slot_seen && Some(s.order_ref) != exclude {
                resting = resting.saturating_add(s.qty.0.max(0));
            }
        }
        Qty(self.cfg.max_position_contracts.0.saturating_sub(held).saturating_sub(resting).max(0))
    }

    /// Size of a buy of an outcome at `price` (its own scale) winning with `p`, capped by `cap`:
    /// fractional Kelly with the fee in the cost, iterated to a stable size, then the fee-exact EV
    /// check at that size. `None` when nothing is worth sending.
    fn size(
        &self,
        capital: strike_sdk::Money,
        fees: &FeeSchedule,
        liq: Liquidity,
        price: Price,
        p: f64,
        cap: Qty,
    ) -> Option<Qty> {
        if cap.0 <= 0 || price.0 == 0 || price.0 >= Price::ONE || !(0.0..=1.0).contains(&p) {
            return None;
        }
        // quick reject: even the cheapest per-contract fee (at the cap) leaves too little
        let best_ev = ev_per_contract(fees, Action::Buy, liq, price, cap, p, PRECISION);
        if best_ev.is_nan() || best_ev < self.cfg.min_ev {
            return None;
        }
        let x = dollars(price);
        let mut q = cap;
        for _ in 0..8 {
            let cost = x + fee_per_contract(fees, liq, price, q, PRECISION);
            let k = kelly_qty(capital, p, cost, self.cfg.kelly_fraction, q);
            if k.0 <= 0 {
                return None;
            }
            if k == q {
                break;
            }
            q = k;
        }
        let ev = ev_per_contract(fees, Action::Buy, liq, price, q, p, PRECISION);
        (ev >= self.cfg.min_ev).then_some(q)
    }

    /// Probability that `outcome` wins when bought at `price` on its own scale.
    fn p_win(&self, outcome: Outcome, price: Price) -> Option<f64> {
        if price.0 > Price::ONE {
            return None;
        }
        match outcome {
            Outcome::Yes => self.cfg.win_prob(price),
            Outcome::No => self.cfg.win_prob(price.complement()).map(|p| 1.0 - p),
        }
    }

    /// True when `m` may receive a new order at `now`.
    fn cooled(&self, m: MarketId, now: u64) -> bool {
        match self.markets.get(m.idx()).and_then(|s| s.last_order_ns) {
            Some(t) => now.saturating_sub(t) >= self.cfg.cooldown_ms.saturating_mul(1_000_000),
            None => true,
        }
    }

    /// Whether the market is a favourite (`Yes`) or longshot (`No`) candidate on this book.
    fn candidate(&self, book: &Book, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Yes => book.best_ask().is_some_and(|(a, _)| a >= self.cfg.favorite_threshold),
            Outcome::No => book.best_bid().is_some_and(|(b, _)| b <= self.cfg.longshot_threshold),
        }
    }

    /// Taker: a FOK buy at the touch, if +EV.
    fn taker_want(&self, ctx: &Ctx, m: MarketId, book: &Book, fees: &FeeSchedule, outcome: Outcome) -> Option<Want> {
        if !self.candidate(book, outcome) {
            return None;
        }
        let (price, shown) = match outcome {
            Outcome::Yes => book.best_ask()?,
            Outcome::No => {
                let (bid, sz) = book.best_bid()?;
                if bid.0 > Price::ONE {
                    return None;
                }
                (bid.complement(), sz)
            }
        };
        let p = self.p_win(outcome, price)?;
        let cap = Qty(self.cfg.max_order_contracts.0.min(self.room(ctx, m, outcome, None).0).min(shown.0));
        let qty = self.size(ctx.capital(), fees, Liquidity::Taker, price, p, cap)?;
        Some(Want { price, qty })
    }

    /// Maker: a post-only buy at the penny price, if +EV. `own` is our live order there.
    fn maker_want(
        &self,
        ctx: &Ctx,
        m: MarketId,
        book: &Book,
        fees: &FeeSchedule,
        outcome: Outcome,
        own: Option<Slot>,
    ) -> Option<Want> {
        if !self.candidate(book, outcome) {
            return None;
        }
        let price = penny_excluding(book, outcome, own)?;
        let p = self.p_win(outcome, price)?;
        let room = self.room(ctx, m, outcome, own.map(|s| s.order_ref));
        let cap = Qty(self.cfg.max_order_contracts.0.min(room.0));
        let qty = self.size(ctx.capital(), fees, Liquidity::Maker, price, p, cap)?;
        Some(Want { price, qty })
    }

    /// Forgets in-flight FOKs and cancels that were never reported.
    fn expire(&mut self, m: MarketId, now: u64) {
        if let Some(st) = self.markets.get_mut(m.idx()) {
            for slot in st.slots.iter_mut() {
                if let Some(s) = slot {
                    let since = s.cancel_sent_ns.unwrap_or(s.submitted_ns);
                    if (s.fok || s.cancel_sent_ns.is_some()) && now.saturating_sub(since) > FORGET_AFTER_NS {
                        *slot = None;
                    }
                }
            }
        }
    }

    /// Queues a cancel of the slot's order unless one was already sent.
    fn cancel_slot(&mut self, ctx: &mut Ctx, m: MarketId, o: usize) {
        let now = ctx.now_ns();
        if let Some(Some(s)) = self.markets.get_mut(m.idx()).map(|st| &mut st.slots[o]) {
            if s.cancel_sent_ns.is_none() && !s.fok && ctx.cancel(s.order_ref).is_ok() {
                s.cancel_sent_ns = Some(now);
            }
        }
    }

    fn submit(&mut self, ctx: &mut Ctx, m: MarketId, outcome: Outcome, want: Want, mode: Mode) {
        let (tif, post_only) = match mode {
            Mode::Taker => (TimeInForce::Fok, false),
            Mode::Maker => (TimeInForce::Gtc, true),
        };
        let mut intent = OrderIntent::limit(m, outcome, Action::Buy, want.price, want.qty, tif);
        intent.post_only = post_only;
        let now = ctx.now_ns();
        if let Ok(order_ref) = ctx.submit(intent) {
            if let Some(st) = self.markets.get_mut(m.idx()) {
                st.last_order_ns = Some(now);
                st.slots[oi(outcome)] = Some(Slot {
                    order_ref,
                    price: want.price,
                    qty: want.qty,
                    fok: mode == Mode::Taker,
                    submitted_ns: now,
                    cancel_sent_ns: None,
                });
            }
        }
    }

    fn find_slot(&mut self, m: MarketId, r: OrderRef) -> Option<&mut Option<Slot>> {
        self.markets.get_mut(m.idx())?.slots.iter_mut().find(|s| s.is_some_and(|s| s.order_ref == r))
    }
}

/// The penny price to buy `outcome` (its own scale), ignoring our own resting size `own`.
///
/// Without an order of ours this is [`penny_price`]. With one, the level holding it counts only
/// the size beyond ours, so a lone order at the top is compared with the best *other* bid.
fn penny_excluding(book: &Book, outcome: Outcome, own: Option<Slot>) -> Option<Price> {
    let Some(own) = own.filter(|s| !s.fok && s.price.0 <= Price::ONE) else {
        return penny_price(book, outcome);
    };
    let own_yes = match outcome {
        Outcome::Yes => own.price,
        Outcome::No => own.price.complement(),
    };
    let side = buy_side(outcome);
    let mut others: Option<Price> = None;
    book.for_each_level(side, |p, q| {
        let mine = if p == own_yes { own.qty.0.max(0) } else { 0 };
        if q.0 > mine {
            others = Some(p);
            false
        } else {
            true
        }
    });
    let best = others?;
    let grid = book.grid();
    match outcome {
        Outcome::Yes => {
            let p = grid.next_above(best)?;
            match book.best_ask() {
                Some((ask, _)) if p >= ask => None,
                _ => Some(p),
            }
        }
        Outcome::No => {
            let yes = grid.next_below(best)?;
            match book.best_bid() {
                Some((bid, _)) if yes <= bid => None,
                _ => Some(yes.complement()),
            }
        }
    }
}

impl Strategy for Flb {
    const NAME: &'static str = "flb";

    fn new(config: &str, universe: &Universe) -> Result<Self, String> {
        let cfg = Config::parse(config)?;
        Ok(Flb { cfg, markets: vec![MarketState::default(); universe.markets().len()] })
    }

    fn on_book(&mut self, ctx: &mut Ctx, market: MarketId) {
        if market.idx() >= self.markets.len() {
            return;
        }
        let now = ctx.now_ns();
        self.expire(market, now);
        let Some(fees) = ctx.market(market).map(|m| m.fees) else { return };
        let mode = self.cfg.mode;
        let st = self.markets[market.idx()];
        let cooled = self.cooled(market, now);
        // decide with the book borrowed, act after
        let mut wants: [Option<Want>; 2] = [None; 2];
        let mut keep: [bool; 2] = [false; 2];
        {
            let Some(book) = ctx.book(market) else { return };
            if book.status == BookStatus::Live {
                for outcome in [Outcome::Yes, Outcome::No] {
                    let o = oi(outcome);
                    let own = st.slots[o];
                    match (mode, own) {
                        (Mode::Taker, Some(_)) => {} // one in flight at a time
                        (Mode::Taker, None) => {
                            if cooled {
                                wants[o] = self.taker_want(ctx, market, book, &fees, outcome);
                            }
                        }
                        (Mode::Maker, Some(s)) if s.cancel_sent_ns.is_some() || s.fok => {}
                        (Mode::Maker, own) => {
                            let w = self.maker_want(ctx, market, book, &fees, outcome, own);
                            match own {
                                Some(s) => {
                                    // keep while still the penny price and +EV at its live size
                                    keep[o] = w.is_some_and(|w| w.price == s.price)
                                        && ev_per_contract(
                                            &fees,
                                            Action::Buy,
                                            Liquidity::Maker,
                                            s.price,
                                            s.qty,
                                            self.p_win(outcome, s.price).unwrap_or(0.0),
                                            PRECISION,
                                        ) >= self.cfg.min_ev;
                                }
                                None if cooled => wants[o] = w,
                                None => {}
                            }
                        }
                    }
                }
            } else {
                // not tradable: pull resting orders, send nothing
                keep = [false; 2];
            }
        }
        for outcome in [Outcome::Yes, Outcome::No] {
            let o = oi(outcome);
            match st.slots[o] {
                Some(s) if !s.fok && !keep[o] => self.cancel_slot(ctx, market, o),
                Some(_) => {}
                None => {
                    if let Some(w) = wants[o] {
                        // a new order respects the cooldown even after one outcome just traded
                        if self.cooled(market, ctx.now_ns()) {
                            self.submit(ctx, market, outcome, w, mode);
                        }
                    }
                }
            }
        }
    }

    fn on_fill(&mut self, _ctx: &mut Ctx, fill: &Fill) {
        if let Some(slot) = self.find_slot(fill.market, fill.order_ref) {
            if let Some(s) = slot {
                s.qty = Qty(s.qty.0.saturating_sub(fill.qty.0));
                if s.qty.0 <= 0 {
                    *slot = None;
                }
            }
        }
    }

    fn on_order_update(&mut self, _ctx: &mut Ctx, update: &OrderUpdate) {
        if let Some(slot) = self.find_slot(update.market, update.order_ref) {
            match update.status {
                OrderStatus::Resting => {
                    if let Some(s) = slot {
                        s.qty = update.remaining;
                        if s.qty.0 <= 0 {
                            *slot = None;
                        }
                    }
                }
                OrderStatus::Filled | OrderStatus::Cancelled | OrderStatus::Rejected => *slot = None,
            }
        }
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx) {
        for i in 0..self.markets.len() {
            for o in 0..2 {
                self.cancel_slot(ctx, MarketId(i as u32), o);
            }
        }
    }
}

strike_sdk::export_strategy!(Flb);

#[cfg(test)]
mod tests;
