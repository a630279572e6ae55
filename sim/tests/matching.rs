//! The matcher of our orders against replayed books (`strike_sim::matching`): order outcomes
//! (FOK / IoC / GTC / post-only / self-trade prevention) on scripted books, queue position under
//! both models on a scripted tape, amend / decrease / cancel priority, how our view of the book
//! reconciles with later deltas, fees equal to the SDK's fee functions, the P&L of a scripted
//! session, and the latency models.

use strike_sdk::fees::{AccountPrecision, FeeSchedule, FeeType, FillFee, Liquidity, OrderFeeAccumulator};
use strike_sdk::grid::PriceStructure;
use strike_sdk::order::TimeInForce;
use strike_sdk::{BookSide, MarketId, Money, Price, Qty};
use strike_sim::matching::latency::{Constant, LatencyError, LatencyModel, OrderTiming, Recorded};
use strike_sim::matching::{
    CancelReason, Command, MarketData, MarketSpec, MatchError, MatchEvent, MatchEventKind, Matcher, MatcherConfig,
    NewOrder, OrderId, QueueModelKind, Reduce, RejectCode, SelfTradePrevention, NO_MARKET,
};

const M: MarketId = MarketId(0);
use BookSide::{Ask, Bid};
use Liquidity::{Maker, Taker};
use TimeInForce::{Fok, Gtc, Ioc};

fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}
fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap()
}

fn matcher_with(kind: QueueModelKind, fees: FeeSchedule) -> Matcher {
    let mut m = Matcher::new(MatcherConfig { queue: kind, precision: AccountPrecision::Cent });
    m.add_market(M, MarketSpec { grid: PriceStructure::LinearCent.grid(), fees }).unwrap();
    m
}

fn matcher(kind: QueueModelKind) -> Matcher {
    matcher_with(kind, FeeSchedule::of(FeeType::Quadratic))
}

fn levels(v: &[(&str, &str)]) -> Vec<(Price, Qty)> {
    v.iter().map(|(a, b)| (p(a), q(b))).collect()
}

fn snapshot(m: &mut Matcher, ts: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Vec<MatchEvent> {
    m.on_market_data(ts, M, &MarketData::Snapshot { bids: levels(bids), asks: levels(asks) }).unwrap()
}

fn delta(m: &mut Matcher, ts: u64, side: BookSide, price: &str, d: &str) -> Vec<MatchEvent> {
    m.on_market_data(ts, M, &MarketData::Delta { side, price: p(price), delta: q(d) }).unwrap()
}

fn trade(m: &mut Matcher, ts: u64, taker_side: BookSide, price: &str, qty: &str) -> Vec<MatchEvent> {
    m.on_market_data(ts, M, &MarketData::Trade { taker_side, price: p(price), qty: q(qty) }).unwrap()
}

fn order(id: u64, side: BookSide, price: &str, qty: &str, tif: TimeInForce) -> NewOrder {
    NewOrder {
        id: OrderId(id),
        market: M,
        side,
        price: p(price),
        qty: q(qty),
        tif,
        post_only: false,
        stp: SelfTradePrevention::TakerAtCross,
    }
}

fn send(m: &mut Matcher, ts: u64, o: NewOrder) -> Vec<MatchEvent> {
    m.on_command(ts, &Command::New(o)).unwrap()
}

/// The events without fees, timestamps and markets: what the table compares.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Accepted(u64),
    Fill(u64, Price, Qty, Liquidity),
    Resting(u64, Qty, Qty),
    Amended(u64, Price, Qty, bool),
    Decreased(u64, Qty),
    Cancelled(u64, CancelReason, Qty),
    Rejected(u64, RejectCode),
}

fn ev(events: &[MatchEvent]) -> Vec<Ev> {
    events
        .iter()
        .map(|e| {
            let id = e.order.0;
            match e.kind {
                MatchEventKind::Accepted { .. } => Ev::Accepted(id),
                MatchEventKind::Fill(f) => Ev::Fill(id, f.price, f.qty, f.liquidity),
                MatchEventKind::Resting { remaining, ahead, .. } => Ev::Resting(id, remaining, ahead),
                MatchEventKind::Amended { price, remaining, kept_priority } => {
                    Ev::Amended(id, price, remaining, kept_priority)
                }
                MatchEventKind::Decreased { remaining } => Ev::Decreased(id, remaining),
                MatchEventKind::Cancelled { reason, qty } => Ev::Cancelled(id, reason, qty),
                MatchEventKind::Rejected { code } => Ev::Rejected(id, code),
            }
        })
        .collect()
}

fn fill(id: u64, price: &str, qty: &str, liq: Liquidity) -> Ev {
    Ev::Fill(id, p(price), q(qty), liq)
}

/// Fills as `(time, qty)` pairs.
fn fills_of(events: &[MatchEvent]) -> Vec<(u64, Qty)> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            MatchEventKind::Fill(f) => Some((e.ts_ns, f.qty)),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Order outcomes against scripted books
// ---------------------------------------------------------------------------------------------

const BIDS: &[(&str, &str)] = &[("0.40", "10"), ("0.39", "20")];
const ASKS: &[(&str, &str)] = &[("0.45", "10"), ("0.46", "20"), ("0.48", "5")];

struct Row {
    name: &'static str,
    /// Our resting orders placed before the order under test (their events are not compared).
    own: Vec<NewOrder>,
    order: NewOrder,
    expect: Vec<Ev>,
    /// The displayed asks afterwards, best first, when the row checks them.
    asks_after: Option<&'static [(&'static str, &'static str)]>,
}

fn row(name: &'static str, order: NewOrder, expect: Vec<Ev>) -> Row {
    Row { name, own: Vec::new(), order, expect, asks_after: None }
}

#[test]
fn order_outcomes_table() {
    use CancelReason::*;
    let maker = SelfTradePrevention::Maker;
    // our resting ask behind the 10 outside contracts at 0.45 (ahead 10)
    let own_ask_45 = order(9, Ask, "0.45", "5", Gtc);
    let rows = vec![
        Row {
            asks_after: Some(&[("0.46", "5"), ("0.48", "5")]),
            ..row(
                "FOK fills across two levels, best first, each at the level's price",
                order(1, Bid, "0.46", "25", Fok),
                vec![Ev::Accepted(1), fill(1, "0.45", "10", Taker), fill(1, "0.46", "15", Taker)],
            )
        },
        row(
            "FOK for exactly the depth at or better than its limit",
            order(1, Bid, "0.46", "30", Fok),
            vec![Ev::Accepted(1), fill(1, "0.45", "10", Taker), fill(1, "0.46", "20", Taker)],
        ),
        Row {
            asks_after: Some(ASKS),
            ..row(
                "FOK one hundredth short of the depth is rejected and takes nothing",
                order(1, Bid, "0.46", "30.01", Fok),
                vec![Ev::Rejected(1, RejectCode::FokInsufficientVolume { fillable: q("30") })],
            )
        },
        row(
            "FOK that does not cross is rejected",
            order(1, Bid, "0.44", "1", Fok),
            vec![Ev::Rejected(1, RejectCode::FokInsufficientVolume { fillable: Qty::ZERO })],
        ),
        row(
            "FOK ask sweeps bids downwards",
            order(1, Ask, "0.39", "15", Fok),
            vec![Ev::Accepted(1), fill(1, "0.40", "10", Taker), fill(1, "0.39", "5", Taker)],
        ),
        row(
            "IoC fills what it can and cancels the rest",
            order(1, Bid, "0.46", "40", Ioc),
            vec![
                Ev::Accepted(1),
                fill(1, "0.45", "10", Taker),
                fill(1, "0.46", "20", Taker),
                Ev::Cancelled(1, ImmediateOrCancel, q("10")),
            ],
        ),
        row(
            "IoC that does not cross is cancelled whole",
            order(1, Bid, "0.44", "5", Ioc),
            vec![Ev::Accepted(1), Ev::Cancelled(1, ImmediateOrCancel, q("5"))],
        ),
        row(
            "IoC partial fill of one level, fractional size",
            order(1, Ask, "0.40", "12.34", Ioc),
            vec![Ev::Accepted(1), fill(1, "0.40", "10", Taker), Ev::Cancelled(1, ImmediateOrCancel, q("2.34"))],
        ),
        Row {
            asks_after: Some(&[("0.46", "20"), ("0.48", "5")]),
            ..row(
                "GTC takes what crosses and rests the rest at its limit, first in the queue",
                order(1, Bid, "0.45", "15", Gtc),
                vec![Ev::Accepted(1), fill(1, "0.45", "10", Taker), Ev::Resting(1, q("5"), Qty::ZERO)],
            )
        },
        row(
            "GTC that does not cross rests behind the displayed size at its price",
            order(1, Bid, "0.40", "3", Gtc),
            vec![Ev::Accepted(1), Ev::Resting(1, q("3"), q("10"))],
        ),
        row(
            "GTC ask inside the spread rests at the front",
            order(1, Ask, "0.43", "3", Gtc),
            vec![Ev::Accepted(1), Ev::Resting(1, q("3"), Qty::ZERO)],
        ),
        Row {
            asks_after: Some(ASKS),
            ..row(
                "post-only that would cross is rejected (POST_ONLY_CROSS)",
                NewOrder { post_only: true, ..order(1, Bid, "0.45", "1", Gtc) },
                vec![Ev::Rejected(1, RejectCode::PostOnlyCross)],
            )
        },
        row(
            "post-only ask that would cross the bids is rejected",
            NewOrder { post_only: true, ..order(1, Ask, "0.40", "1", Gtc) },
            vec![Ev::Rejected(1, RejectCode::PostOnlyCross)],
        ),
        row(
            "post-only that does not cross rests",
            NewOrder { post_only: true, ..order(1, Bid, "0.44", "1", Gtc) },
            vec![Ev::Accepted(1), Ev::Resting(1, q("1"), Qty::ZERO)],
        ),
        Row {
            own: vec![order(9, Ask, "0.44", "1", Gtc)],
            ..row(
                "post-only that would cross our own resting order is rejected",
                NewOrder { post_only: true, ..order(1, Bid, "0.44", "1", Gtc) },
                vec![Ev::Rejected(1, RejectCode::PostOnlyCross)],
            )
        },
        Row {
            own: vec![own_ask_45],
            asks_after: Some(&[("0.46", "20"), ("0.48", "5")]),
            ..row(
                "STP taker_at_cross: takes the 10 ahead of our ask, then stops; GTC remainder cancelled",
                order(1, Bid, "0.46", "20", Gtc),
                vec![Ev::Accepted(1), fill(1, "0.45", "10", Taker), Ev::Cancelled(1, SelfTradeTaker, q("10"))],
            )
        },
        Row {
            own: vec![own_ask_45],
            asks_after: Some(&[("0.46", "10"), ("0.48", "5")]),
            ..row(
                "STP maker: our resting ask is cancelled and the taker goes on",
                NewOrder { stp: maker, ..order(1, Bid, "0.46", "20", Gtc) },
                vec![
                    Ev::Accepted(1),
                    fill(1, "0.45", "10", Taker),
                    Ev::Cancelled(9, SelfTradeMaker, q("5")),
                    fill(1, "0.46", "10", Taker),
                ],
            )
        },
        Row {
            own: vec![order(9, Ask, "0.44", "5", Gtc)],
            ..row(
                "STP maker with our order alone at the touch: cancelled first, then the outside level",
                NewOrder { stp: maker, ..order(1, Bid, "0.45", "10", Ioc) },
                vec![Ev::Accepted(1), Ev::Cancelled(9, SelfTradeMaker, q("5")), fill(1, "0.45", "10", Taker)],
            )
        },
        Row {
            own: vec![order(9, Ask, "0.44", "5", Gtc)],
            ..row(
                "STP taker_at_cross with our order alone at the touch: nothing fills",
                order(1, Bid, "0.45", "10", Ioc),
                vec![Ev::Accepted(1), Ev::Cancelled(1, SelfTradeTaker, q("10"))],
            )
        },
        Row {
            own: vec![own_ask_45],
            ..row(
                "a taker that is filled before reaching our order never self-trades",
                order(1, Bid, "0.46", "8", Fok),
                vec![Ev::Accepted(1), fill(1, "0.45", "8", Taker)],
            )
        },
        Row {
            own: vec![own_ask_45],
            asks_after: Some(ASKS),
            ..row(
                "FOK that taker_at_cross would stop short is rejected with nothing taken",
                order(1, Bid, "0.46", "20", Fok),
                vec![Ev::Rejected(1, RejectCode::FokInsufficientVolume { fillable: q("10") })],
            )
        },
        row("zero size is invalid", order(1, Bid, "0.40", "0", Gtc), vec![Ev::Rejected(1, RejectCode::InvalidOrder)]),
        row(
            "negative size is invalid",
            order(1, Bid, "0.40", "-1", Gtc),
            vec![Ev::Rejected(1, RejectCode::InvalidOrder)],
        ),
        row(
            "a price off the grid is invalid",
            order(1, Bid, "0.405", "1", Gtc),
            vec![Ev::Rejected(1, RejectCode::InvalidOrder)],
        ),
        row("price 0 is invalid", order(1, Bid, "0", "1", Gtc), vec![Ev::Rejected(1, RejectCode::InvalidOrder)]),
        row("price 1 is invalid", order(1, Ask, "1", "1", Ioc), vec![Ev::Rejected(1, RejectCode::InvalidOrder)]),
        row(
            "an unknown market is market_not_found",
            NewOrder { market: MarketId(7), ..order(1, Bid, "0.40", "1", Gtc) },
            vec![Ev::Rejected(1, RejectCode::MarketNotFound)],
        ),
        Row {
            own: vec![order(1, Bid, "0.30", "1", Gtc)],
            ..row(
                "a live order's id is order_already_exists",
                order(1, Bid, "0.31", "1", Gtc),
                vec![Ev::Rejected(1, RejectCode::OrderAlreadyExists)],
            )
        },
    ];
    for r in rows {
        let mut m = matcher(QueueModelKind::RiskAverse);
        snapshot(&mut m, 1, BIDS, ASKS);
        for o in &r.own {
            let e = send(&mut m, 2, *o);
            assert!(matches!(e.last().map(|e| e.kind), Some(MatchEventKind::Resting { .. })), "{}: setup", r.name);
        }
        let got = send(&mut m, 3, r.order);
        assert_eq!(ev(&got), r.expect, "{}", r.name);
        assert!(got.iter().all(|e| e.ts_ns == 3), "{}: stamped with the command's time", r.name);
        if let Some(a) = r.asks_after {
            assert_eq!(m.levels(M, Ask), levels(a), "{}: asks after", r.name);
        }
        // The order is live afterwards exactly when it rests.
        let rests = matches!(got.last().map(|e| e.kind), Some(MatchEventKind::Resting { .. }));
        let own_live = r.own.iter().any(|o| o.id == r.order.id);
        assert_eq!(m.order(r.order.id).is_some(), rests || own_live, "{}: liveness", r.name);
    }
}

#[test]
fn amend_decrease_cancel_and_priority() {
    use CancelReason::*;
    let mut m = matcher(QueueModelKind::RiskAverse);
    snapshot(&mut m, 1, &[("0.40", "10")], &[("0.45", "10")]);
    send(&mut m, 2, order(1, Bid, "0.40", "5", Gtc));
    send(&mut m, 3, order(2, Bid, "0.40", "5", Gtc));
    let ids = |m: &Matcher| m.open_orders(M).iter().map(|o| o.id.0).collect::<Vec<_>>();
    assert_eq!(ids(&m), vec![1, 2]);

    // decrease keeps priority and queue position
    let e = m.on_command(4, &Command::Decrease { id: OrderId(1), reduce: Reduce::By(q("2")) }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Decreased(1, q("3"))]);
    assert_eq!(ids(&m), vec![1, 2]);
    assert_eq!(m.order(OrderId(1)).unwrap().ahead, q("10"));
    // an amend that changes nothing, and one that decreases, keep it too
    let e = m.on_command(5, &Command::Amend { id: OrderId(1), price: p("0.40"), count: q("3") }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Amended(1, p("0.40"), q("3"), true)]);
    // a size increase goes to the back, behind order 2
    let e = m.on_command(6, &Command::Amend { id: OrderId(1), price: p("0.40"), count: q("6") }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Amended(1, p("0.40"), q("6"), false), Ev::Resting(1, q("6"), q("10"))]);
    assert_eq!(ids(&m), vec![2, 1]);

    // a sell of 12 at 0.40: 10 outside ahead, then order 2 fills 2 (maker); order 1 nothing
    let e = trade(&mut m, 7, Ask, "0.40", "12");
    assert_eq!(ev(&e), vec![fill(2, "0.40", "2", Maker)]);

    // a price change that crosses fills as taker at the new price
    let e = m.on_command(8, &Command::Amend { id: OrderId(1), price: p("0.45"), count: q("6") }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Amended(1, p("0.45"), q("6"), false), fill(1, "0.45", "6", Taker)]);
    assert!(m.order(OrderId(1)).is_none(), "filled orders are forgotten");

    // amend count is the new total: order 2 has filled 2, so count 2 is invalid, 4 leaves 2
    let e = m.on_command(9, &Command::Amend { id: OrderId(2), price: p("0.40"), count: q("2") }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Rejected(2, RejectCode::InvalidOrder)]);
    let e = m.on_command(9, &Command::Amend { id: OrderId(2), price: p("0.40"), count: q("4") }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Amended(2, p("0.40"), q("2"), true)]);
    // decrease: reduce_to above what rests and reduce_by 0 are invalid
    for bad in [Reduce::To(q("3")), Reduce::By(Qty::ZERO), Reduce::To(q("-1"))] {
        let e = m.on_command(9, &Command::Decrease { id: OrderId(2), reduce: bad }).unwrap();
        assert_eq!(ev(&e), vec![Ev::Rejected(2, RejectCode::InvalidOrder)], "{bad:?}");
    }
    // off-grid amend price is invalid and changes nothing
    let e = m.on_command(9, &Command::Amend { id: OrderId(2), price: p("0.401"), count: q("4") }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Rejected(2, RejectCode::InvalidOrder)]);
    assert_eq!(m.order(OrderId(2)).unwrap().remaining, q("2"));

    let e = m.on_command(10, &Command::Cancel { id: OrderId(2) }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Cancelled(2, Requested, q("2"))]);
    let e = m.on_command(10, &Command::Cancel { id: OrderId(2) }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Rejected(2, RejectCode::NotFound)]);
    assert_eq!(e[0].market, NO_MARKET);
    assert!(m.open_orders(M).is_empty());

    // decrease to zero cancels
    send(&mut m, 11, order(3, Ask, "0.47", "4", Gtc));
    let e = m.on_command(12, &Command::Decrease { id: OrderId(3), reduce: Reduce::By(q("9")) }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Cancelled(3, DecreasedToZero, q("4"))]);

    // a post-only order's amend that would cross is rejected and the order is left as it was
    send(&mut m, 13, NewOrder { post_only: true, ..order(4, Bid, "0.41", "3", Gtc) });
    let e = m.on_command(14, &Command::Amend { id: OrderId(4), price: p("0.45"), count: q("3") }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Rejected(4, RejectCode::PostOnlyCross)]);
    let o = m.order(OrderId(4)).unwrap();
    assert_eq!((o.price, o.remaining), (p("0.41"), q("3")));
    // an amend that re-prices without crossing rests at the back of its new level
    let e = m.on_command(15, &Command::Amend { id: OrderId(4), price: p("0.40"), count: q("3") }).unwrap();
    assert_eq!(ev(&e), vec![Ev::Amended(4, p("0.40"), q("3"), false), Ev::Resting(4, q("3"), q("10"))]);
}

// ---------------------------------------------------------------------------------------------
// Queue position
// ---------------------------------------------------------------------------------------------

/// The scripted tape of `queue_position_under_each_model`: one market, our GTC bid of 5 at
/// $0.40. Returns the fills of our order as `(time, qty)` and `ahead` after each step.
fn run_queue_tape(kind: QueueModelKind) -> (Vec<(u64, Qty)>, Vec<Qty>) {
    let mut m = matcher(kind);
    let mut out = Vec::new();
    let mut aheads = Vec::new();
    let ahead = |m: &Matcher| m.order(OrderId(1)).map(|o| o.ahead).unwrap_or_default();
    snapshot(&mut m, 0, &[("0.40", "10"), ("0.39", "20")], &[("0.45", "10")]);
    out.extend(send(&mut m, 1_000, order(1, Bid, "0.40", "5", Gtc)));
    aheads.push(ahead(&m));
    let tape: &[(u64, BookSide, bool, &str, &str)] = &[
        // (time, side, is_trade, price, size or delta)
        (2_000, Bid, false, "0.40", "4"),  // level 14: 4 join behind us
        (3_000, Bid, false, "0.40", "-6"), // level 8: 6 cancelled
        (4_000, Ask, true, "0.40", "3"),   // a seller takes 3 at 0.40
        (4_001, Bid, false, "0.40", "-3"), // ... and the delta removing them: level 5
        (5_000, Ask, true, "0.40", "4"),   // a seller takes 4 at 0.40
        (5_001, Bid, false, "0.40", "-4"), // level 1
        (5_500, Bid, false, "0.40", "5"),  // level 6: 5 join behind
        (6_000, Ask, true, "0.40", "3"),   // a seller takes 3
        (6_001, Bid, false, "0.40", "-3"), // level 3
        (7_000, Ask, true, "0.40", "2"),   // a seller takes 2
        (7_001, Bid, false, "0.40", "-2"), // level 1
        (7_500, Bid, false, "0.40", "-1"), // level 0: the last outside bid at 0.40 cancelled
        (8_000, Ask, true, "0.39", "1"),   // a seller takes 1 at 0.39: through our price
    ];
    for &(t, side, is_trade, price, x) in tape {
        if is_trade {
            out.extend(trade(&mut m, t, side, price, x));
        } else {
            out.extend(delta(&mut m, t, side, price, x));
        }
        aheads.push(ahead(&m));
    }
    (fills_of(&out), aheads)
}

/// Queue position of one GTC bid (5 contracts at $0.40, arriving behind 10) on a scripted tape,
/// under each model. Sizes below in contracts; the engine's unit is hundredths.
///
/// ```text
/// time   event                         level  risk_averse      power:2             log
/// 1000   our bid arrives                10    ahead 10         ahead 10            ahead 10
/// 2000   +4 join behind                 14    10               10                  10
/// 3000   −6 cancelled (a=10, b=4)        8    min(10,8) = 8    share 100/116:      share ln11/(ln11+ln5)
///                                                              6×0.8621=5.1724     6×0.5984=3.5903
///                                                              → 5.17 taken: 4.83  → 3.59 taken: 6.41
/// 4000   trade 3 @0.40                        5                1.83                3.41
/// 4001   −3 (the trade's delta: netted)  5    min(5,5) = 5     1.83                3.41
/// 5000   trade 4 @0.40                        1                0 — FILL 2.17       0 — FILL 0.59
/// 5001   −4 (netted)                     1    1                0                   0
/// 5500   +5 join behind                  6    1                0                   0
/// 6000   trade 3 @0.40                        0 — FILL 2       FILL 2.83 (done)    FILL 3
/// 6001   −3 (netted)                     3
/// 7000   trade 2 @0.40                        FILL 2                               FILL 1.41 (done)
/// 7001   −2 (netted)                     1
/// 7500   −1 cancelled                    0    0
/// 8000   trade 1 @0.39 (through 0.40)         FILL 1 (done)
/// ```
/// Fill times: risk-averse 6000, 7000, 8000; power:2 5000, 6000; log 5000, 6000, 7000.
#[test]
fn queue_position_under_each_model() {
    let (f, a) = run_queue_tape(QueueModelKind::RiskAverse);
    assert_eq!(f, vec![(6_000, q("2")), (7_000, q("2")), (8_000, q("1"))]);
    assert_eq!(&a[..5], &[q("10"), q("10"), q("8"), q("5"), q("5")]);
    assert_eq!(&a[5..8], &[q("1"), q("1"), q("1")]);

    let (f, a) = run_queue_tape(QueueModelKind::Power(2.0));
    assert_eq!(f, vec![(5_000, q("2.17")), (6_000, q("2.83"))]);
    assert_eq!(&a[..6], &[q("10"), q("10"), q("4.83"), q("1.83"), q("1.83"), Qty::ZERO]);

    let (f, a) = run_queue_tape(QueueModelKind::Log);
    assert_eq!(f, vec![(5_000, q("0.59")), (6_000, q("3")), (7_000, q("1.41"))]);
    assert_eq!(&a[..6], &[q("10"), q("10"), q("6.41"), q("3.41"), q("3.41"), Qty::ZERO]);

    // Every model: the fills sum to the order, each fill within its trade's size.
    for kind in [QueueModelKind::RiskAverse, QueueModelKind::Power(2.0), QueueModelKind::Log] {
        let (f, _) = run_queue_tape(kind);
        assert_eq!(f.iter().map(|x| x.1 .0).sum::<i64>(), 500, "{kind}");
    }
}

/// Two of our bids at one level, and a trade that reaches both; a decrease never reorders them.
///
/// ```text
/// book 0.40: 4 outside.  A (3) arrives: ahead 4.  +2 join.  B (3) arrives: ahead 6.
/// power:2, −2 cancelled (level 6 → 4): A (a=4, b=2): share 16/20 → 1.6 taken: ahead 2.4
///                                       B (a=6, b=0): share 1 → 2 taken: ahead 4
/// trade 9 @0.40: 2.4 outside, A fills 3, 1.6 outside (between A and B), B fills 2.
/// ```
#[test]
fn queue_several_own_orders_at_one_level() {
    let mut m = matcher(QueueModelKind::Power(2.0));
    snapshot(&mut m, 0, &[("0.40", "4")], &[("0.45", "1")]);
    send(&mut m, 1, order(1, Bid, "0.40", "3", Gtc));
    delta(&mut m, 2, Bid, "0.40", "2");
    send(&mut m, 3, order(2, Bid, "0.40", "3", Gtc));
    assert_eq!(m.order(OrderId(1)).unwrap().ahead, q("4"));
    assert_eq!(m.order(OrderId(2)).unwrap().ahead, q("6"));
    delta(&mut m, 4, Bid, "0.40", "-2");
    assert_eq!(m.order(OrderId(1)).unwrap().ahead, q("2.4"));
    assert_eq!(m.order(OrderId(2)).unwrap().ahead, q("4"));
    let e = trade(&mut m, 5, Ask, "0.40", "9");
    assert_eq!(ev(&e), vec![fill(1, "0.40", "3", Maker), fill(2, "0.40", "2", Maker)]);
    let b = m.order(OrderId(2)).unwrap();
    assert_eq!((b.ahead, b.remaining), (Qty::ZERO, q("1")));
}

/// Outside liquidity that arrives at or through our resting price executes against us (maker, at
/// our price); the rest of it stays displayed.
#[test]
fn crossing_liquidity_fills_resting_orders() {
    let mut m = matcher(QueueModelKind::RiskAverse);
    snapshot(&mut m, 0, &[("0.40", "10")], &[("0.45", "10")]);
    send(&mut m, 1, order(1, Bid, "0.42", "5", Gtc));
    // an outside ask at 0.41 (through our 0.42 bid): 3 of it is ours
    let e = delta(&mut m, 2, Ask, "0.41", "3");
    assert_eq!(ev(&e), vec![fill(1, "0.42", "3", Maker)]);
    assert_eq!(m.displayed(M, Ask, p("0.41")), Qty::ZERO);
    // a snapshot whose asks come down to 0.42 with 7: we take our last 2, 5 stay displayed
    let e = snapshot(&mut m, 3, &[("0.40", "10")], &[("0.42", "7")]);
    assert_eq!(ev(&e), vec![fill(1, "0.42", "2", Maker)]);
    assert_eq!(m.best(M, Ask), Some((p("0.42"), q("5"))));
    assert!(m.order(OrderId(1)).is_none());
    // the same for an ask of ours against bids moving up (the asks at 0.42 leave first)
    delta(&mut m, 4, Ask, "0.42", "-5");
    send(&mut m, 4, order(2, Ask, "0.44", "4", Gtc));
    let e = delta(&mut m, 5, Bid, "0.44", "1");
    assert_eq!(ev(&e), vec![fill(2, "0.44", "1", Maker)]);
    let e = delta(&mut m, 6, Bid, "0.45", "10");
    assert_eq!(ev(&e), vec![fill(2, "0.44", "3", Maker)]);
    assert_eq!(m.displayed(M, Bid, p("0.45")), q("7"));
}

/// A snapshot resets our view; a decrease in it moves our queue position like a delta would.
#[test]
fn snapshot_moves_queue_and_resets_view() {
    let mut m = matcher(QueueModelKind::RiskAverse);
    snapshot(&mut m, 0, &[("0.40", "10")], &[("0.45", "10")]);
    send(&mut m, 1, order(1, Bid, "0.40", "5", Gtc));
    send(&mut m, 2, order(2, Bid, "0.45", "4", Ioc)); // takes 4 of the 10 at 0.45
    assert_eq!(m.displayed(M, Ask, p("0.45")), q("6"));
    snapshot(&mut m, 3, &[("0.40", "7")], &[("0.45", "10")]);
    assert_eq!(m.displayed(M, Ask, p("0.45")), q("10"), "the snapshot is the recording's view");
    assert_eq!(m.order(OrderId(1)).unwrap().ahead, q("7"));
}

/// Liquidity we took leaves our view; later deltas for that level never take it below zero.
#[test]
fn taken_liquidity_and_later_deltas_reconcile() {
    let mut m = matcher(QueueModelKind::RiskAverse);
    snapshot(&mut m, 0, &[("0.40", "10")], &[("0.45", "10"), ("0.46", "10")]);
    let e = send(&mut m, 1, order(1, Bid, "0.45", "8", Ioc));
    assert_eq!(ev(&e), vec![Ev::Accepted(1), fill(1, "0.45", "8", Taker)]);
    assert_eq!(m.displayed(M, Ask, p("0.45")), q("2"));
    // A second order cannot take the same liquidity again.
    let e = send(&mut m, 2, order(2, Bid, "0.45", "5", Ioc));
    assert_eq!(ev(&e)[1], fill(2, "0.45", "2", Taker));
    // The recording's owner of those 10 cancels 6: our view stays at zero, not −6.
    delta(&mut m, 3, Ask, "0.45", "-6");
    assert_eq!(m.displayed(M, Ask, p("0.45")), Qty::ZERO);
    assert_eq!(m.best(M, Ask), Some((p("0.46"), q("10"))));
    // New outside liquidity adds in full.
    delta(&mut m, 4, Ask, "0.45", "3");
    assert_eq!(m.displayed(M, Ask, p("0.45")), q("3"));
    assert_eq!(m.levels(M, Ask), levels(&[("0.45", "3"), ("0.46", "10")]));
}

// ---------------------------------------------------------------------------------------------
// Fees and P&L
// ---------------------------------------------------------------------------------------------

/// Every fill's fee equals the SDK's: the trade fee is `FeeSchedule::trade_fee`, a one-fill
/// order is charged `one_fill_fee`, and a many-fill order is charged what an
/// `OrderFeeAccumulator` fed the same fills charges. Over fee types, precisions, prices on the
/// $0.0001 grid and sizes; taker and maker.
#[test]
fn fees_equal_the_sdk_fee_functions() {
    let types = [
        FeeSchedule::of(FeeType::Quadratic),
        FeeSchedule::of(FeeType::QuadraticWithMakerFees),
        FeeSchedule::of(FeeType::QuadraticWithComboMakerFees),
        FeeSchedule { multiplier_ppm: 500_000, ..FeeSchedule::of(FeeType::QuadraticWithMakerFees) },
        FeeSchedule { flat_cc_per_contract: 37, ..FeeSchedule::of(FeeType::Flat) },
    ];
    let sizes = [1i64, 7, 55, 100, 155, 999, 10_000, 123_456];
    let grid = PriceStructure::CenterCentiEdgeCentiCent.grid();
    let mut checked = 0;
    for sched in types {
        for prec in [AccountPrecision::Cent, AccountPrecision::Centicent] {
            for cc in (1..Price::ONE).step_by(97).chain([1, 50, 5000, 9999]) {
                let price = Price(cc);
                for &s in &sizes {
                    let size = Qty(s);
                    let mut m = Matcher::new(MatcherConfig { queue: QueueModelKind::RiskAverse, precision: prec });
                    m.add_market(M, MarketSpec { grid, fees: sched }).unwrap();
                    m.on_market_data(0, M, &MarketData::Snapshot { bids: vec![], asks: vec![(price, size)] }).unwrap();
                    // taker: an IoC bid takes the level
                    let e = send(&mut m, 1, NewOrder { price, qty: size, ..order(1, Bid, "0.5", "1", Ioc) });
                    let f = the_fill(&e);
                    assert_eq!(f.trade_fee, sched.trade_fee(Taker, price, size));
                    assert_eq!(
                        f.charged,
                        sched.one_fill_fee(Taker, price, size, prec),
                        "{sched:?} {prec:?} {price} {size}"
                    );
                    // maker: a resting ask is lifted by a trade print
                    send(&mut m, 2, NewOrder { price, qty: size, ..order(2, Ask, "0.5", "1", Gtc) });
                    let e = m.on_market_data(3, M, &MarketData::Trade { taker_side: Bid, price, qty: size }).unwrap();
                    let f = the_fill(&e);
                    assert_eq!(f.trade_fee, sched.trade_fee(Maker, price, size));
                    assert_eq!(f.charged, sched.one_fill_fee(Maker, price, size, prec));
                    checked += 2;
                }
                // many fills of one order: maker fills of 0.01, 0.07, 0.55, 1.00, then a taker
                // fill on amend; each against a parallel accumulator
                let mut m = Matcher::new(MatcherConfig { queue: QueueModelKind::RiskAverse, precision: prec });
                m.add_market(M, MarketSpec { grid, fees: sched }).unwrap();
                let total = Qty(1 + 7 + 55 + 100 + 10);
                send(&mut m, 1, NewOrder { price, qty: total, ..order(1, Bid, "0.5", "1", Gtc) });
                let mut acc = OrderFeeAccumulator::new();
                let mut t = 2;
                for part in [1i64, 7, 55, 100] {
                    let e =
                        m.on_market_data(t, M, &MarketData::Trade { taker_side: Ask, price, qty: Qty(part) }).unwrap();
                    assert_eq!(the_fill(&e), acc.on_fill(&sched, Maker, price, Qty(part), prec));
                    t += 1;
                }
                if let Some(up) = grid.next_above(price).filter(|u| u.0 < Price::ONE) {
                    m.on_market_data(t, M, &MarketData::Snapshot { bids: vec![], asks: vec![(up, Qty(10))] }).unwrap();
                    let e = m.on_command(t + 1, &Command::Amend { id: OrderId(1), price: up, count: total }).unwrap();
                    assert_eq!(the_fill(&e), acc.on_fill(&sched, Taker, up, Qty(10), prec));
                    assert_eq!(m.ledger(M).unwrap().fees, acc.total_charged());
                }
            }
        }
    }
    assert!(checked > 1000);
}

fn the_fill(e: &[MatchEvent]) -> FillFee {
    let fills: Vec<FillFee> = e
        .iter()
        .filter_map(|e| match e.kind {
            MatchEventKind::Fill(f) => Some(f.fee),
            _ => None,
        })
        .collect();
    assert_eq!(fills.len(), 1, "{e:?}");
    fills[0]
}

/// A fill inside the market's fee waiver costs nothing.
#[test]
fn fee_waiver() {
    let ts_ms = 1_784_638_800_000i64;
    let waived = FeeSchedule { waived_until_ms: ts_ms + 1, ..FeeSchedule::of(FeeType::Quadratic) };
    let mut m = matcher_with(QueueModelKind::RiskAverse, waived);
    let ns = ts_ms as u64 * 1_000_000;
    snapshot(&mut m, ns, &[], &[("0.50", "100")]);
    let e = send(&mut m, ns, order(1, Bid, "0.50", "10", Ioc));
    assert_eq!(the_fill(&e), FillFee::default());
    let e = send(&mut m, ns + 1_000_000, order(2, Bid, "0.50", "10", Ioc));
    assert_eq!(the_fill(&e).charged, Money::cents(18)); // 0.07 × 10 × 0.25 = 0.175 → 0.18
}

/// A scripted session (`quadratic_with_maker_fees`, cent precision), P&L by hand:
///
/// ```text
/// t1  IoC buy 15 @ ≤0.46 vs asks 0.45×10, 0.46×20 (taker):
///       10 @ 0.45: fee 0.07×10×0.45×0.55 = 0.17325 → trade fee 0.1733 → charged 0.18
///        5 @ 0.46: fee 0.07×5×0.46×0.54  = 0.08694 → trade fee 0.0870 → charged 0.09
///       (order's rounding 0.27 − 0.26019 = 0.00981 < 0.01: no rebate)       cash −6.80
/// t2  GTC sell 15 @ 0.48 rests (nothing ahead)
/// t3  a buyer lifts 20 @ 0.48: our 15 fill (maker):
///       fee 0.0175×15×0.48×0.52 = 0.06552 → 0.0656 → charged 0.07                cash +7.20
/// t4  GTC buy 10 @ 0.41 rests at the front (best bid 0.40)
/// t5  a seller hits 4 @ 0.41 (maker): 0.0175×4×0.41×0.59 = 0.016933 → 0.0170 → 0.02  cash −1.64
/// t6  cancel the other 6
/// cash −6.80 + 7.20 − 1.64 = −1.24; fees 0.18 + 0.09 + 0.07 + 0.02 = 0.36; position +4
/// P&L settled YES: −1.24 + 4 × 1.00 − 0.36 = +2.40;  settled NO: −1.24 − 0.36 = −1.60
/// ```
#[test]
fn scripted_session_pnl() {
    let mut m = matcher_with(QueueModelKind::RiskAverse, FeeSchedule::of(FeeType::QuadraticWithMakerFees));
    snapshot(&mut m, 0, &[("0.40", "10")], &[("0.45", "10"), ("0.46", "20")]);
    let mut all = Vec::new();
    all.extend(send(&mut m, 1, order(1, Bid, "0.46", "15", Ioc)));
    all.extend(send(&mut m, 2, order(2, Ask, "0.48", "15", Gtc)));
    all.extend(trade(&mut m, 3, Bid, "0.48", "20"));
    all.extend(send(&mut m, 4, order(3, Bid, "0.41", "10", Gtc)));
    all.extend(trade(&mut m, 5, Ask, "0.41", "4"));
    all.extend(m.on_command(6, &Command::Cancel { id: OrderId(3) }).unwrap());
    let fees: Vec<(Money, Money)> = all
        .iter()
        .filter_map(|e| match e.kind {
            MatchEventKind::Fill(f) => Some((f.fee.trade_fee, f.fee.charged)),
            _ => None,
        })
        .collect();
    let d = |s: &str| Money::parse(s).unwrap();
    assert_eq!(
        fees,
        vec![(d("0.1733"), d("0.18")), (d("0.0870"), d("0.09")), (d("0.0656"), d("0.07")), (d("0.0170"), d("0.02")),]
    );
    let l = *m.ledger(M).unwrap();
    assert_eq!(l.position, q("4"));
    assert_eq!(l.cash, d("-1.24"));
    assert_eq!(l.fees, d("0.36"));
    assert_eq!(l.volume, q("34"));
    assert_eq!(l.fills, 4);
    assert_eq!(l.mark_to_market(Price::MAX), d("2.40"));
    assert_eq!(l.mark_to_market(Price::ZERO), d("-1.60"));
    assert!(m.open_orders(M).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Bad input and time
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_market_data_is_an_error_and_changes_nothing() {
    let mut m = matcher(QueueModelKind::RiskAverse);
    snapshot(&mut m, 10, &[("0.40", "10")], &[("0.45", "10")]);
    let bad = [
        (MarketId(3), MarketData::Delta { side: Bid, price: p("0.40"), delta: q("1") }),
        (M, MarketData::Delta { side: Bid, price: p("0.405"), delta: q("1") }),
        (M, MarketData::Delta { side: Bid, price: p("0.40"), delta: Qty(Qty::MAX_ABS + 1) }),
        (M, MarketData::Trade { taker_side: Bid, price: p("0.45"), qty: Qty::ZERO }),
        (M, MarketData::Snapshot { bids: levels(&[("0.46", "1")]), asks: levels(&[("0.45", "1")]) }),
        (M, MarketData::Snapshot { bids: levels(&[("0.40", "-1")]), asks: vec![] }),
    ];
    for (mk, md) in bad {
        assert!(m.on_market_data(11, mk, &md).is_err(), "{md:?}");
    }
    assert_eq!(m.levels(M, Bid), levels(&[("0.40", "10")]));
    assert_eq!(m.levels(M, Ask), levels(&[("0.45", "10")]));
    assert_eq!(
        m.on_market_data(9, M, &MarketData::Delta { side: Bid, price: p("0.40"), delta: q("1") }),
        Err(MatchError::TimeWentBackwards { last_ns: 10, ts_ns: 9 })
    );
    assert_eq!(
        m.on_command(9, &Command::Cancel { id: OrderId(1) }),
        Err(MatchError::TimeWentBackwards { last_ns: 10, ts_ns: 9 })
    );
    assert_eq!(m.add_market(M, MarketSpec::default()), Err(MatchError::DuplicateMarket(M)));
    // a delta larger than the level just empties it
    delta(&mut m, 12, Bid, "0.40", "-15");
    assert_eq!(m.best(M, Bid), None);
}

// ---------------------------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------------------------

#[test]
fn constant_latency_shifts_exactly() {
    let mut c = Constant { feed_ns: 1_500_000, entry_ns: 2_000_000, response_ns: 3_000_000 };
    assert_eq!(
        c.order_timing(10_000_000),
        OrderTiming { sent_ns: 10_000_000, arrival_ns: 12_000_000, ack_ns: 15_000_000 }
    );
    assert_eq!(c.feed_arrival(7), 1_500_007);
    for _ in 0..3 {
        assert_eq!(c.order_timing(0).arrival_ns, 2_000_000);
    }
    assert_eq!(c.order_timing(u64::MAX - 1).ack_ns, u64::MAX, "saturates");
}

#[test]
fn recorded_latency_draws_from_samples_reproducibly() {
    let feed = vec![1_000, 2_000, 3_000];
    let entry = vec![10_000, 20_000, 30_000, 40_000];
    let response = vec![500_000, 700_000];
    let mk = |seed| Recorded::new(feed.clone(), entry.clone(), response.clone(), seed).unwrap();
    let mut a = mk(42);
    let mut b = mk(42);
    let draws = |r: &mut Recorded| (0..200).map(|i| r.order_timing(i * 1_000_000)).collect::<Vec<_>>();
    let da = draws(&mut a);
    assert_eq!(da, draws(&mut b), "same seed, same draws");
    for t in &da {
        assert!(entry.contains(&(t.arrival_ns - t.sent_ns)));
        assert!(response.contains(&(t.ack_ns - t.arrival_ns)));
    }
    // every sample shows up over 200 draws (not stuck on one value)
    for e in &entry {
        assert!(da.iter().any(|t| t.arrival_ns - t.sent_ns == *e), "entry sample {e} never drawn");
    }
    let mut c = mk(43);
    assert_ne!(da, draws(&mut c), "another seed, other draws");
    // per-leg streams: interleaving order draws does not change the feed delays
    let mut x = mk(7);
    let mut y = mk(7);
    let fx: Vec<u64> = (0..50).map(|_| x.feed_ns()).collect();
    let fy: Vec<u64> = (0..50)
        .map(|_| {
            y.order_timing(0);
            y.feed_ns()
        })
        .collect();
    assert_eq!(fx, fy);
    assert!(fx.iter().all(|f| feed.contains(f)));
    assert_eq!(Recorded::new(vec![], entry.clone(), response.clone(), 1).err(), Some(LatencyError::NoSamples("feed")));
    assert_eq!(Recorded::same_for_all(vec![], 1).err(), Some(LatencyError::NoSamples("feed")));
}

/// The latency helper with the matcher: an order sent while the ask is there arrives after it
/// was taken, and meets the book as it was at arrival.
#[test]
fn order_meets_the_book_at_arrival() {
    let mut lat = Constant { feed_ns: 1_000, entry_ns: 5_000, response_ns: 5_000 };
    let mut m = matcher(QueueModelKind::RiskAverse);
    snapshot(&mut m, 0, &[("0.40", "10")], &[("0.45", "10")]);
    // we see the snapshot at 1_000 and send an IoC at once; it reaches the exchange at 6_000
    let seen = lat.feed_arrival(0);
    let timing = lat.order_timing(seen);
    assert_eq!((timing.arrival_ns, timing.ack_ns), (6_000, 11_000));
    // meanwhile (exchange time 3_000) the ask is cancelled
    delta(&mut m, 3_000, Ask, "0.45", "-10");
    let e = send(&mut m, timing.arrival_ns, order(1, Bid, "0.45", "5", Ioc));
    assert_eq!(ev(&e), vec![Ev::Accepted(1), Ev::Cancelled(1, CancelReason::ImmediateOrCancel, q("5"))]);
    assert!(e.iter().all(|x| x.ts_ns == 6_000));
}

// ---------------------------------------------------------------------------------------------
// Invariants under random input
// ---------------------------------------------------------------------------------------------

mod random {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Snapshot(Vec<(u16, i64)>, Vec<(u16, i64)>),
        Delta(bool, u16, i64),
        Trade(bool, u16, i64),
        New(u64, bool, u16, i64, u8, bool, bool),
        Cancel(u64),
        Amend(u64, u16, i64),
        Decrease(u64, bool, i64),
    }

    fn size() -> impl Strategy<Value = i64> {
        prop_oneof![1i64..3_000, Just(Qty::MAX_ABS), -5i64..0, Just(0)]
    }
    fn cents() -> impl Strategy<Value = u16> {
        prop_oneof![35u16..50, Just(0), Just(100), Just(101)]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (
                proptest::collection::vec((35u16..43, 0i64..2_000), 0..4),
                proptest::collection::vec((43u16..50, 0i64..2_000), 0..4)
            )
                .prop_map(|(b, a)| Op::Snapshot(b, a)),
            (any::<bool>(), cents(), -3_000i64..3_000).prop_map(|(s, p, d)| Op::Delta(s, p, d)),
            (any::<bool>(), cents(), size()).prop_map(|(s, p, q)| Op::Trade(s, p, q)),
            (0u64..6, any::<bool>(), cents(), size(), 0u8..3, any::<bool>(), any::<bool>())
                .prop_map(|(i, s, p, q, t, po, stp)| Op::New(i, s, p, q, t, po, stp)),
            (0u64..6).prop_map(Op::Cancel),
            (0u64..6, cents(), size()).prop_map(|(i, p, q)| Op::Amend(i, p, q)),
            (0u64..6, any::<bool>(), size()).prop_map(|(i, b, q)| Op::Decrease(i, b, q)),
        ]
    }

    fn side(b: bool) -> BookSide {
        if b {
            Bid
        } else {
            Ask
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn never_panics_and_keeps_invariants(
            kind in prop_oneof![Just(QueueModelKind::RiskAverse), Just(QueueModelKind::Power(2.0)), Just(QueueModelKind::Log)],
            ops in proptest::collection::vec(op(), 1..80),
        ) {
            let mut m = matcher_with(kind, FeeSchedule::of(FeeType::QuadraticWithMakerFees));
            let mut position = 0i64;
            for (t, op) in ops.into_iter().enumerate() {
                let ts = t as u64;
                let cc = |c: u16| Price(c.saturating_mul(100));
                let (res, traded) = match op {
                    Op::Snapshot(b, a) => {
                        let lv = |v: Vec<(u16, i64)>| v.into_iter().map(|(c, s)| (cc(c), Qty(s))).collect();
                        (m.on_market_data(ts, M, &MarketData::Snapshot { bids: lv(b), asks: lv(a) }), None)
                    }
                    Op::Delta(s, c, d) => (m.on_market_data(ts, M, &MarketData::Delta { side: side(s), price: cc(c), delta: Qty(d) }), None),
                    Op::Trade(s, c, q) => (m.on_market_data(ts, M, &MarketData::Trade { taker_side: side(s), price: cc(c), qty: Qty(q) }), Some(q)),
                    Op::New(i, s, c, q, t, po, stp) => {
                        let tif = [Fok, Ioc, Gtc][t as usize];
                        let stp = if stp { SelfTradePrevention::Maker } else { SelfTradePrevention::TakerAtCross };
                        let o = NewOrder { id: OrderId(i), market: M, side: side(s), price: cc(c), qty: Qty(q), tif, post_only: po, stp };
                        (m.on_command(ts, &Command::New(o)), None)
                    }
                    Op::Cancel(i) => (m.on_command(ts, &Command::Cancel { id: OrderId(i) }), None),
                    Op::Amend(i, c, q) => (m.on_command(ts, &Command::Amend { id: OrderId(i), price: cc(c), count: Qty(q) }), None),
                    Op::Decrease(i, b, q) => {
                        let reduce = if b { Reduce::By(Qty(q)) } else { Reduce::To(Qty(q)) };
                        (m.on_command(ts, &Command::Decrease { id: OrderId(i), reduce }), None)
                    }
                };
                let Ok(events) = res else { continue };
                let mut filled = 0i64;
                for e in &events {
                    if let MatchEventKind::Fill(f) = e.kind {
                        prop_assert!(f.qty.0 > 0);
                        prop_assert!(f.leaves.0 >= 0);
                        prop_assert!(f.fee.charged.0 >= 0);
                        filled += f.qty.0;
                        position += if f.side == Bid { f.qty.0 } else { -f.qty.0 };
                        prop_assert_eq!(f.position_after.0, position);
                    }
                }
                if let Some(q) = traded {
                    prop_assert!(filled <= q, "fills {} exceed the trade {}", filled, q);
                }
                for s in [Bid, Ask] {
                    prop_assert!(m.levels(M, s).iter().all(|(_, q)| q.0 > 0));
                }
                for o in m.open_orders(M) {
                    prop_assert!(o.remaining.0 > 0);
                    prop_assert!(o.ahead.0 >= 0);
                    prop_assert!(o.ahead <= m.displayed(M, o.side, o.price), "ahead {:?} above the level", o.ahead);
                    prop_assert_eq!(o.filled + o.remaining, o.count);
                }
                // Our resting orders never cross each other.
                let own = m.open_orders(M);
                let bid = own.iter().filter(|o| o.side == Bid).map(|o| o.price).max();
                let ask = own.iter().filter(|o| o.side == Ask).map(|o| o.price).min();
                if let (Some(b), Some(a)) = (bid, ask) {
                    prop_assert!(b < a);
                }
            }
        }
    }
}
