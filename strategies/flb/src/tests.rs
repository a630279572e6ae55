//! Unit tests over real SDK books and a real [`Ctx`], built directly from `strike-sdk`.

use super::*;
use strike_sdk::{
    CancelIntent, FeeType, GroupId, MarketMeta, Money, OpenOrder, OutcomeGroup, Position, PriceGrid, PriceStructure,
    Ticker,
};

const NOW: u64 = 1_000_000_000_000;

/// Host-side state for one callback: one market per book.
struct World {
    markets: Vec<MarketMeta>,
    groups: Vec<OutcomeGroup>,
    members: Vec<MarketId>,
    books: Vec<Book>,
    positions: Vec<Position>,
    open: Vec<OpenOrder>,
    intents: Vec<OrderIntent>,
    cancels: Vec<CancelIntent>,
    capital: Money,
}

fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}

fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap()
}

impl World {
    fn new(grids: &[PriceGrid]) -> World {
        let markets = grids
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let mut m = MarketMeta::bare(MarketId(i as u32), Ticker::new(&format!("KXTEST-M{i}")).unwrap());
                m.grid = *g;
                m.group = GroupId::NONE;
                m
            })
            .collect();
        let books = grids
            .iter()
            .map(|g| {
                let mut b = Book::new(*g);
                b.status = BookStatus::Live;
                b
            })
            .collect();
        World {
            markets,
            groups: Vec::new(),
            members: Vec::new(),
            books,
            positions: vec![Position::default(); grids.len()],
            open: Vec::new(),
            intents: vec![
                OrderIntent::limit(MarketId(0), Outcome::Yes, Action::Buy, Price(0), Qty(0), TimeInForce::Fok);
                16
            ],
            cancels: vec![CancelIntent { order_ref: OrderRef(0) }; 16],
            capital: Money::dollars(1000),
        }
    }

    fn one(structure: PriceStructure) -> World {
        World::new(&[structure.grid()])
    }

    fn universe(&self) -> Universe {
        // SAFETY: the World outlives every view taken in a test and is not resized.
        unsafe { Universe::from_slices(&self.markets, &self.groups, &self.members) }
    }

    fn set(&mut self, m: usize, bids: &[(&str, &str)], asks: &[(&str, &str)]) {
        let b = &mut self.books[m];
        b.replace(bids.iter().map(|(x, y)| (p(x), q(y))), asks.iter().map(|(x, y)| (p(x), q(y)))).unwrap();
    }

    /// Runs `f` with a fresh `Ctx` at `now`; returns the queued intents and cancels.
    fn call(&mut self, now: u64, f: impl FnOnce(&mut Ctx)) -> (Vec<OrderIntent>, Vec<CancelIntent>) {
        // SAFETY: every slice is owned by the World, which outlives `ctx`.
        let mut ctx = unsafe {
            Ctx::new(
                self.universe(),
                &self.books,
                &self.positions,
                &self.open,
                &mut self.intents,
                &mut self.cancels,
                100,
                now,
                self.capital,
            )
        };
        f(&mut ctx);
        (ctx.queued_intents().to_vec(), ctx.queued_cancels().to_vec())
    }
}

fn flb(w: &World, cfg: &str) -> Flb {
    Flb::new(cfg, &w.universe()).unwrap()
}

fn book(s: &mut Flb, w: &mut World, now: u64, m: u32) -> (Vec<OrderIntent>, Vec<CancelIntent>) {
    w.call(now, |ctx| s.on_book(ctx, MarketId(m)))
}

fn update(s: &mut Flb, w: &mut World, r: OrderRef, status: OrderStatus, remaining: Qty) {
    let u = OrderUpdate {
        order_ref: r,
        market: MarketId(0),
        status,
        reason: strike_sdk::RejectReason::Venue,
        filled: Qty::ZERO,
        remaining,
        tag: 0,
    };
    w.call(NOW, |ctx| s.on_order_update(ctx, &u));
}

#[test]
fn favorite_at_93_buys_yes_fok_within_caps() {
    let mut w = World::one(PriceStructure::LinearCent);
    w.set(0, &[("0.91", "100.00")], &[("0.93", "100.00"), ("0.94", "500.00")]);
    let mut s = flb(&w, "");
    let (intents, cancels) = book(&mut s, &mut w, NOW, 0);
    assert!(cancels.is_empty());
    assert_eq!(intents.len(), 1, "{intents:?}");
    let i = intents[0];
    assert_eq!(
        (i.market, i.outcome, i.action, i.tif, i.post_only),
        (MarketId(0), Outcome::Yes, Action::Buy, TimeInForce::Fok, false)
    );
    assert_eq!(i.price, p("0.93"));
    assert!(i.qty.0 > 0 && i.qty <= Qty::contracts(50) && i.qty <= q("100.00"), "{:?}", i.qty);
    // quarter Kelly on $1000 at p = 0.955, cost ≈ 0.9346 is ≈ 83 contracts: the order cap binds
    assert_eq!(i.qty, Qty::contracts(50));
    let fees = FeeSchedule::of(FeeType::Quadratic);
    assert!(ev_per_contract(&fees, Action::Buy, Liquidity::Taker, i.price, i.qty, 0.955, PRECISION) >= 0.005);
}

#[test]
fn taker_size_respects_displayed_size_and_position_room() {
    let mut w = World::one(PriceStructure::LinearCent);
    w.set(0, &[("0.91", "100.00")], &[("0.93", "12.34")]);
    let mut s = flb(&w, "");
    let (intents, _) = book(&mut s, &mut w, NOW, 0);
    assert_eq!(intents[0].qty, q("12.34"));

    let mut w = World::one(PriceStructure::LinearCent);
    w.set(0, &[("0.91", "100.00")], &[("0.93", "100.00")]);
    w.positions[0].qty = Qty::contracts(180);
    w.open.push(OpenOrder {
        order_ref: OrderRef(7),
        market: MarketId(0),
        side: BookSide::Bid,
        yes_price: p("0.90"),
        remaining: Qty::contracts(5),
        filled: Qty::ZERO,
        tag: 0,
    });
    let mut s = flb(&w, "");
    let (intents, _) = book(&mut s, &mut w, NOW, 0);
    assert_eq!(intents[0].qty, Qty::contracts(15), "200 cap − 180 held − 5 resting");

    w.positions[0].qty = Qty::contracts(200);
    let mut s = flb(&w, "");
    assert!(book(&mut s, &mut w, NOW, 0).0.is_empty(), "no room left");
}

#[test]
fn longshot_bid_buys_no_at_the_complement() {
    let mut w = World::one(PriceStructure::LinearCent);
    w.set(0, &[("0.04", "300.00")], &[("0.06", "300.00")]);
    let mut s = flb(&w, "");
    let (intents, _) = book(&mut s, &mut w, NOW, 0);
    assert_eq!(intents.len(), 1, "{intents:?}");
    let i = intents[0];
    assert_eq!((i.outcome, i.action, i.tif), (Outcome::No, Action::Buy, TimeInForce::Fok));
    assert_eq!(i.price, p("0.96"));
    assert_eq!(i.yes_price(), p("0.04"));
    assert!(i.qty.0 > 0 && i.qty <= Qty::contracts(50));
}

#[test]
fn fee_inverted_book_produces_nothing() {
    // 0.949 ask on the tapered grid: the calibrated edge 0.955 − 0.949 = 0.006 clears min_ev
    // before fees, but one displayed contract pays a whole cent of taker fee.
    let mut w = World::one(PriceStructure::TaperedDeciCent);
    w.set(0, &[("0.940", "100.00")], &[("0.949", "1.00")]);
    let fees = FeeSchedule::of(FeeType::Quadratic);
    let gross = Config::default().win_prob(p("0.949")).unwrap() - dollars(p("0.949"));
    assert!(gross >= 0.005, "{gross}");
    assert!(ev_per_contract(&fees, Action::Buy, Liquidity::Taker, p("0.949"), q("1.00"), 0.955, PRECISION) < 0.0);
    for cfg in ["", "min_ev = 0"] {
        let mut s = flb(&w, cfg);
        let (intents, cancels) = book(&mut s, &mut w, NOW, 0);
        assert!(intents.is_empty() && cancels.is_empty(), "{cfg:?}: {intents:?}");
    }
    // with size to spread the rounding over, the EV after fees is positive (0.0026/contract at
    // 50): still below the default min_ev, above a zero one
    w.set(0, &[("0.940", "100.00")], &[("0.949", "100.00")]);
    assert!(book(&mut flb(&w, ""), &mut w, NOW, 0).0.is_empty());
    assert_eq!(book(&mut flb(&w, "min_ev = 0"), &mut w, NOW, 0).0.len(), 1);
}

#[test]
fn unattractive_prices_produce_nothing() {
    let mut w = World::one(PriceStructure::LinearCent);
    // mid-range market: neither favourite nor longshot
    w.set(0, &[("0.50", "100.00")], &[("0.52", "100.00")]);
    let mut s = flb(&w, "");
    assert!(book(&mut s, &mut w, NOW, 0).0.is_empty());
    // 0.99 ask: calibrated 0.985 is below the price
    w.set(0, &[("0.98", "100.00")], &[("0.99", "100.00")]);
    assert!(book(&mut s, &mut w, NOW, 0).0.is_empty());
    // empty book
    w.books[0].clear();
    assert!(book(&mut s, &mut w, NOW, 0).0.is_empty());
    // no capital to size with
    w.set(0, &[("0.91", "100.00")], &[("0.93", "100.00")]);
    w.capital = Money::ZERO;
    assert!(book(&mut s, &mut w, NOW, 0).0.is_empty());
}

#[test]
fn stale_book_produces_nothing() {
    let mut w = World::one(PriceStructure::LinearCent);
    w.set(0, &[("0.91", "100.00")], &[("0.93", "100.00")]);
    for status in [BookStatus::Stale, BookStatus::Empty, BookStatus::Closed] {
        w.books[0].status = status;
        for cfg in ["", "mode = \"maker\""] {
            let mut s = flb(&w, cfg);
            let (intents, cancels) = book(&mut s, &mut w, NOW, 0);
            assert!(intents.is_empty() && cancels.is_empty(), "{status:?} {cfg}");
        }
    }
}

#[test]
fn cooldown_and_one_order_in_flight_per_market() {
    let mut w = World::one(PriceStructure::LinearCent);
    w.set(0, &[("0.91", "100.00")], &[("0.93", "100.00")]);
    let mut s = flb(&w, "");
    let (first, _) = book(&mut s, &mut w, NOW, 0);
    assert_eq!(first.len(), 1);
    // still in flight: nothing new, even after the cooldown
    assert!(book(&mut s, &mut w, NOW + 2_000_000_000, 0).0.is_empty());
    update(&mut s, &mut w, first[0].order_ref, OrderStatus::Cancelled, Qty::ZERO);
    // resolved, but inside the 1000 ms cooldown
    assert!(book(&mut s, &mut w, NOW + 999_000_000, 0).0.is_empty());
    assert_eq!(book(&mut s, &mut w, NOW + 1_000_000_000, 0).0.len(), 1);
}

#[test]
fn unreported_fok_is_forgotten() {
    let mut w = World::one(PriceStructure::LinearCent);
    w.set(0, &[("0.91", "100.00")], &[("0.93", "100.00")]);
    let mut s = flb(&w, "");
    assert_eq!(book(&mut s, &mut w, NOW, 0).0.len(), 1);
    assert!(book(&mut s, &mut w, NOW + FORGET_AFTER_NS, 0).0.is_empty());
    assert_eq!(book(&mut s, &mut w, NOW + FORGET_AFTER_NS + 1, 0).0.len(), 1);
}

#[test]
fn maker_mode_quotes_the_penny_price_post_only() {
    let mut w = World::one(PriceStructure::LinearCent);
    w.set(0, &[("0.91", "100.00")], &[("0.95", "100.00")]);
    let mut s = flb(&w, "mode = \"maker\"");
    let (intents, _) = book(&mut s, &mut w, NOW, 0);
    assert_eq!(intents.len(), 1, "{intents:?}");
    let i = intents[0];
    assert_eq!((i.outcome, i.action, i.tif, i.post_only), (Outcome::Yes, Action::Buy, TimeInForce::Gtc, true));
    assert_eq!(Some(i.price), penny_price(&w.books[0], Outcome::Yes));
    assert_eq!(i.price, p("0.92"));
    assert!(i.qty.0 > 0 && i.qty <= Qty::contracts(50));

    // acknowledged and now on the book: it is the best bid itself, and is kept (no self-pennying)
    update(&mut s, &mut w, i.order_ref, OrderStatus::Resting, i.qty);
    w.set(0, &[("0.91", "100.00"), ("0.92", &i.qty.to_fixed_str())], &[("0.95", "100.00")]);
    w.open.push(OpenOrder {
        order_ref: i.order_ref,
        market: MarketId(0),
        side: BookSide::Bid,
        yes_price: i.price,
        remaining: i.qty,
        filled: Qty::ZERO,
        tag: 0,
    });
    let (again, cancels) = book(&mut s, &mut w, NOW + 5_000_000_000, 0);
    assert!(again.is_empty() && cancels.is_empty(), "{again:?} {cancels:?}");

    // someone else pennies us at 0.93: ours is no longer the penny price, cancel it (once)
    w.set(0, &[("0.91", "100.00"), ("0.92", &i.qty.to_fixed_str()), ("0.93", "10.00")], &[("0.95", "100.00")]);
    let (none, cancels) = book(&mut s, &mut w, NOW + 6_000_000_000, 0);
    assert!(none.is_empty());
    assert_eq!(cancels, vec![CancelIntent { order_ref: i.order_ref }]);
    let (none, cancels) = book(&mut s, &mut w, NOW + 6_100_000_000, 0);
    assert!(none.is_empty() && cancels.is_empty(), "cancel already sent");

    // cancel confirmed: a new quote one tick above the new best bid
    update(&mut s, &mut w, i.order_ref, OrderStatus::Cancelled, Qty::ZERO);
    w.open.clear();
    w.set(0, &[("0.91", "100.00"), ("0.93", "10.00")], &[("0.95", "100.00")]);
    let (next, _) = book(&mut s, &mut w, NOW + 7_000_000_000, 0);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].price, p("0.94"));
    assert!(next[0].post_only);
}

#[test]
fn maker_mode_quotes_longshot_no_and_pulls_on_stale() {
    let mut w = World::one(PriceStructure::TaperedDeciCent);
    w.set(0, &[("0.030", "500.00")], &[("0.060", "500.00")]);
    let mut s = flb(&w, "mode = \"maker\"");
    let (intents, _) = book(&mut s, &mut w, NOW, 0);
    assert_eq!(intents.len(), 1, "{intents:?}");
    let i = intents[0];
    assert_eq!((i.outcome, i.tif, i.post_only), (Outcome::No, TimeInForce::Gtc, true));
    // NO bid one tick better = YES ask one tick lower: 0.059 → NO 0.941
    assert_eq!(i.price, p("0.941"));
    assert_eq!(Some(i.price), penny_price(&w.books[0], Outcome::No));
    update(&mut s, &mut w, i.order_ref, OrderStatus::Resting, i.qty);
    w.books[0].status = BookStatus::Stale;
    let (none, cancels) = book(&mut s, &mut w, NOW + 1, 0);
    assert!(none.is_empty());
    assert_eq!(cancels, vec![CancelIntent { order_ref: i.order_ref }]);
}

#[test]
fn maker_fill_to_zero_frees_the_slot() {
    let mut w = World::one(PriceStructure::LinearCent);
    w.set(0, &[("0.91", "100.00")], &[("0.95", "100.00")]);
    let mut s = flb(&w, "mode = \"maker\"\ncooldown_ms = 0");
    let (intents, _) = book(&mut s, &mut w, NOW, 0);
    let i = intents[0];
    let fill = Fill {
        order_ref: i.order_ref,
        market: MarketId(0),
        side: BookSide::Bid,
        liquidity: Liquidity::Maker,
        yes_price: i.price,
        qty: i.qty,
        fee: Money::ZERO,
        post_position: i.qty,
        ts_ns: NOW,
        tag: 0,
    };
    w.call(NOW, |ctx| s.on_fill(ctx, &fill));
    w.positions[0].qty = i.qty;
    assert_eq!(book(&mut s, &mut w, NOW + 1, 0).0.len(), 1, "a new quote once the old one filled");
}

#[test]
fn unknown_config_key_is_refused_with_its_name() {
    let w = World::one(PriceStructure::LinearCent);
    let e = Flb::new("favourite_threshold = \"0.90\"", &w.universe()).err().unwrap();
    assert!(e.contains("favourite_threshold"), "{e}");
    assert!(e.contains("favorite_threshold"), "lists the allowed keys: {e}");
    let e = Flb::new("calibration = [{ from = \"0.00\", to = \"1.00\", win_prob = 0.5, weight = 1 }]", &w.universe())
        .err()
        .unwrap();
    assert!(e.contains("weight"), "{e}");
}

#[test]
fn bad_values_name_the_key_and_what_is_allowed() {
    let cases = [
        ("favorite_threshold = \"1.50\"", "favorite_threshold"),
        ("longshot_threshold = \"0.0x\"", "longshot_threshold"),
        ("favorite_threshold = \"0.20\"\nlongshot_threshold = \"0.30\"", "longshot_threshold"),
        ("min_ev = -0.1", "min_ev"),
        ("kelly_fraction = 0.0", "kelly_fraction"),
        ("kelly_fraction = 2.0", "kelly_fraction"),
        ("max_order_contracts = \"0\"", "max_order_contracts"),
        ("max_position_contracts = \"ten\"", "max_position_contracts"),
        ("mode = \"both\"", "mode"),
        ("cooldown_ms = -5", "cooldown_ms"),
        ("calibration = []", "calibration"),
        ("calibration = [{ from = \"0.10\", to = \"1.00\", win_prob = 0.5 }]", "calibration[0].from"),
        ("calibration = [{ from = \"0.00\", to = \"0.50\", win_prob = 0.5 }]", "calibration[0].to"),
        (
            "calibration = [{ from = \"0.00\", to = \"0.50\", win_prob = 0.4 }, { from = \"0.60\", to = \"1.00\", win_prob = 0.7 }]",
            "calibration[1].from",
        ),
        ("calibration = [{ from = \"0.00\", to = \"1.00\", win_prob = 1.5 }]", "calibration[0].win_prob"),
    ];
    for (text, key) in cases {
        let e = Config::parse(text).err().unwrap_or_else(|| panic!("accepted {text:?}"));
        assert!(e.contains(key), "{text:?} → {e}");
    }
    assert_eq!(Config::parse("").unwrap(), Config::default());
    assert_eq!(Config::parse("# only a comment\n").unwrap(), Config::default());
    let c = Config::parse("mode = \"maker\"\nmin_ev = 0\nmax_order_contracts = \"1.55\"").unwrap();
    assert_eq!((c.mode, c.min_ev, c.max_order_contracts), (Mode::Maker, 0.0, q("1.55")));
}

#[test]
fn default_calibration_covers_every_price() {
    let c = Config::default();
    for cc in 0..=Price::ONE {
        let pw = c.win_prob(Price(cc)).unwrap();
        assert!((0.0..=1.0).contains(&pw));
    }
    assert_eq!(c.win_prob(p("0.93")), Some(0.955));
    assert_eq!(c.win_prob(p("0.95")), Some(0.985));
    assert_eq!(c.win_prob(p("0.04")), Some(0.015));
    // longshots win less often than their price, favourites more
    assert!(c.win_prob(p("0.07")).unwrap() < 0.07 && c.win_prob(p("0.93")).unwrap() > 0.93);
}

#[test]
fn shipped_config_file_is_exactly_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/strategies/flb.toml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(Config::parse(&text).unwrap(), Config::default());
    // every key is documented by a comment line right above it
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if let Some((key, _)) = l.split_once(" = ") {
            if !key.starts_with(' ') && !key.starts_with('#') && !key.starts_with('{') {
                assert!(i > 0 && lines[i - 1].starts_with('#'), "key {key} has no comment line above it");
            }
        }
    }
}

#[test]
fn out_of_range_ids_and_random_books_never_panic() {
    let grids = [
        PriceStructure::LinearCent.grid(),
        PriceStructure::TaperedDeciCent.grid(),
        PriceStructure::CenterCentiEdgeCentiCent.grid(),
    ];
    let mut w = World::new(&grids);
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for cfg in ["", "mode = \"maker\"\ncooldown_ms = 0", "min_ev = 0\nkelly_fraction = 1.0"] {
        let mut s = flb(&w, cfg);
        for step in 0..3_000u64 {
            let m = (next() % 4) as u32; // id 3 is out of range
            if let Some(b) = w.books.get_mut(m as usize) {
                let g = *b.grid();
                let n = g.n_levels() as u64;
                let bid = g.price_at((next() % n) as u16).unwrap();
                let ask = g.price_at((next() % n) as u16).unwrap();
                let (bq, aq) = (Qty((next() % 100_000) as i64 + 1), Qty((next() % 3) as i64 + 1));
                let _ = b.replace([(bid, bq)], [(ask, aq)]);
                b.status = if next() % 7 == 0 { BookStatus::Stale } else { BookStatus::Live };
            }
            w.positions[(next() % 3) as usize].qty = Qty((next() % 1_000_000) as i64 - 500_000);
            w.capital = Money((next() % 10_000_000_000) as i64 - 1_000_000);
            let now = NOW + step * 10_000_000;
            let (intents, _) = book(&mut s, &mut w, now, m);
            for i in &intents {
                assert!(i.qty.0 > 0 && i.qty <= Qty::contracts(50) && i.price.0 > 0 && i.price.0 < Price::ONE, "{i:?}");
            }
            let r = OrderRef(next() % 120);
            let u = OrderUpdate {
                order_ref: r,
                market: MarketId((next() % 5) as u32),
                status: [OrderStatus::Resting, OrderStatus::Filled, OrderStatus::Cancelled, OrderStatus::Rejected]
                    [(next() % 4) as usize],
                reason: strike_sdk::RejectReason::Venue,
                filled: Qty::ZERO,
                remaining: Qty((next() % 10_000) as i64 - 100),
                tag: 0,
            };
            let f = Fill {
                order_ref: r,
                market: MarketId((next() % 5) as u32),
                side: BookSide::Ask,
                liquidity: Liquidity::Taker,
                yes_price: Price((next() % 10_001) as u16),
                qty: Qty((next() % 10_000) as i64 - 100),
                fee: Money::ZERO,
                post_position: Qty::ZERO,
                ts_ns: now,
                tag: 0,
            };
            w.call(now, |ctx| {
                s.on_order_update(ctx, &u);
                s.on_fill(ctx, &f);
                s.on_timer(ctx, now);
            });
        }
        w.call(NOW, |ctx| s.on_shutdown(ctx));
    }
}
