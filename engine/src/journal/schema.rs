//! The journal's SQL: table definitions, the insert statements the writer prepares once, and the
//! text names the enum columns hold (so rows read without a decoder ring).

use super::FaultSource;
use strike_sdk::book::BookSide;
use strike_sdk::fees::Liquidity;
use strike_sdk::order::{OrderStatus, RejectReason, TimeInForce};

/// The schema version this engine writes (`PRAGMA user_version`). A file with a higher version
/// was written by a newer engine and is refused rather than mixed.
pub const SCHEMA_VERSION: i64 = 1;

/// Every table, `STRICT` so a column can only ever hold its declared type (no REAL amounts).
/// Kept in step with the schema block in the module docs.
pub const CREATE: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run             INTEGER PRIMARY KEY,
    started_unix_ms INTEGER NOT NULL,
    engine_version  TEXT    NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS markets (
    run       INTEGER NOT NULL,
    market_id INTEGER NOT NULL,
    ticker    TEXT    NOT NULL,
    PRIMARY KEY (run, market_id)
) STRICT;
CREATE TABLE IF NOT EXISTS sessions (
    run   INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    kind  TEXT    NOT NULL,
    value INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS faults (
    run       INTEGER NOT NULL,
    ts_ns     INTEGER NOT NULL,
    source    TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    market_id INTEGER,
    value     INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS orders (
    run            INTEGER NOT NULL,
    ts_ns          INTEGER NOT NULL,
    strategy       INTEGER NOT NULL,
    order_ref      INTEGER NOT NULL,
    market_id      INTEGER NOT NULL,
    side           TEXT    NOT NULL,
    yes_price_cc   INTEGER NOT NULL,
    qty_hundredths INTEGER NOT NULL,
    tif            TEXT    NOT NULL,
    post_only      INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS order_updates (
    run                  INTEGER NOT NULL,
    ts_ns                INTEGER NOT NULL,
    strategy             INTEGER NOT NULL,
    order_ref            INTEGER NOT NULL,
    market_id            INTEGER NOT NULL,
    status               TEXT    NOT NULL,
    reason               TEXT,
    filled_hundredths    INTEGER NOT NULL,
    remaining_hundredths INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS fills (
    run            INTEGER NOT NULL,
    ts_ns          INTEGER NOT NULL,
    strategy       INTEGER NOT NULL,
    order_ref      INTEGER NOT NULL,
    market_id      INTEGER NOT NULL,
    side           TEXT    NOT NULL,
    yes_price_cc   INTEGER NOT NULL,
    qty_hundredths INTEGER NOT NULL,
    fee_micros     INTEGER NOT NULL,
    liquidity      TEXT    NOT NULL
) STRICT;
";

/// Starts a run: `(started_unix_ms, engine_version)`.
pub const INSERT_RUN: &str = "INSERT INTO runs (started_unix_ms, engine_version) VALUES (?1, ?2)";
/// One market's ticker for a run (a second write for the same id replaces the first).
pub const INSERT_MARKET: &str = "INSERT OR REPLACE INTO markets (run, market_id, ticker) VALUES (?1, ?2, ?3)";
/// One session row.
pub const INSERT_SESSION: &str = "INSERT INTO sessions (run, ts_ns, kind, value) VALUES (?1, ?2, ?3, ?4)";
/// One fault row.
pub const INSERT_FAULT: &str =
    "INSERT INTO faults (run, ts_ns, source, kind, market_id, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// One sent order.
pub const INSERT_ORDER: &str = "INSERT INTO orders (run, ts_ns, strategy, order_ref, market_id, side, yes_price_cc, \
     qty_hundredths, tif, post_only) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
/// One order update.
pub const INSERT_ORDER_UPDATE: &str = "INSERT INTO order_updates (run, ts_ns, strategy, order_ref, market_id, status, \
     reason, filled_hundredths, remaining_hundredths) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
/// One fill.
pub const INSERT_FILL: &str = "INSERT INTO fills (run, ts_ns, strategy, order_ref, market_id, side, yes_price_cc, \
     qty_hundredths, fee_micros, liquidity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// `side` column values.
pub const SIDES: [(BookSide, &str); 2] = [(BookSide::Bid, "bid"), (BookSide::Ask, "ask")];
/// `tif` column values.
pub const TIFS: [(TimeInForce, &str); 3] =
    [(TimeInForce::Fok, "fok"), (TimeInForce::Ioc, "ioc"), (TimeInForce::Gtc, "gtc")];
/// `status` column values.
pub const STATUSES: [(OrderStatus, &str); 4] = [
    (OrderStatus::Resting, "resting"),
    (OrderStatus::Filled, "filled"),
    (OrderStatus::Cancelled, "cancelled"),
    (OrderStatus::Rejected, "rejected"),
];
/// `liquidity` column values.
pub const LIQUIDITIES: [(Liquidity, &str); 2] = [(Liquidity::Taker, "taker"), (Liquidity::Maker, "maker")];
/// `source` column values.
pub const SOURCES: [(FaultSource, &str); 8] = [
    (FaultSource::Feed, "feed"),
    (FaultSource::Ws, "ws"),
    (FaultSource::Rest, "rest"),
    (FaultSource::Gateway, "gateway"),
    (FaultSource::Plugin, "plugin"),
    (FaultSource::Risk, "risk"),
    (FaultSource::Journal, "journal"),
    (FaultSource::Engine, "engine"),
];

/// The name `v` is stored under (every variant is in its table; `"?"` is unreachable).
pub fn name_of<T: Copy + PartialEq>(table: &[(T, &'static str)], v: T) -> &'static str {
    table.iter().find(|(x, _)| *x == v).map(|(_, n)| *n).unwrap_or("?")
}

/// The value stored under `name`, if this engine knows it.
pub fn parse<T: Copy>(table: &[(T, &'static str)], name: &str) -> Option<T> {
    table.iter().find(|(_, n)| *n == name).map(|(x, _)| *x)
}

/// `reason` column value: the reason's name for a rejected or cancelled order, NULL otherwise
/// (a resting or filled order's reason field carries no meaning).
pub fn reason_name(status: OrderStatus, reason: RejectReason) -> Option<&'static str> {
    match status {
        OrderStatus::Rejected | OrderStatus::Cancelled => Some(reason.name()),
        OrderStatus::Resting | OrderStatus::Filled => None,
    }
}

/// The reject reason stored under `name`.
pub fn parse_reason(name: &str) -> Option<RejectReason> {
    RejectReason::ALL.iter().copied().find(|r| r.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: Copy + PartialEq + core::fmt::Debug>(table: &[(T, &'static str)]) {
        for &(v, n) in table {
            assert_eq!(name_of(table, v), n);
            assert_eq!(parse(table, n), Some(v));
        }
        assert_eq!(parse(table, "nonsense"), None);
    }

    #[test]
    fn every_enum_name_round_trips() {
        round_trips(&SIDES);
        round_trips(&TIFS);
        round_trips(&STATUSES);
        round_trips(&LIQUIDITIES);
        round_trips(&SOURCES);
        for r in RejectReason::ALL {
            assert_eq!(parse_reason(r.name()), Some(r));
        }
    }

    #[test]
    fn reason_is_kept_only_where_it_means_something() {
        assert_eq!(reason_name(OrderStatus::Rejected, RejectReason::Venue), Some("venue"));
        assert_eq!(reason_name(OrderStatus::Cancelled, RejectReason::FokUnfilled), Some("fok_unfilled"));
        assert_eq!(reason_name(OrderStatus::Resting, RejectReason::Venue), None);
        assert_eq!(reason_name(OrderStatus::Filled, RejectReason::Venue), None);
    }
}
