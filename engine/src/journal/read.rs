//! Reading a journal back: typed rows per table and row counts, for tests and the `engine journal`
//! command. Cold path: these allocate freely and open their own read-only connection, which WAL
//! lets run beside a live writer.

use super::schema::{self, parse, parse_reason};
use super::{FaultSource, JournalError, RowCounts};
use rusqlite::{Connection, OpenFlags, Row};
use std::path::Path;
use strike_sdk::book::BookSide;
use strike_sdk::fees::Liquidity;
use strike_sdk::market::MarketId;
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::{OrderStatus, RejectReason, TimeInForce};

/// One `sessions` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// The run (one per [`super::Journal::open`]) that wrote it.
    pub run: i64,
    /// Event time, ns (the caller's clock; see [`super::JournalEvent`]).
    pub ts_ns: u64,
    /// `start`, `connected`, `reconnected`, `reconciled`, `stop`, ...
    pub kind: String,
    /// A number that qualifies it (e.g. a reconnect count).
    pub value: i64,
}

/// One `faults` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRow {
    /// The run that wrote it.
    pub run: i64,
    /// Event time, ns.
    pub ts_ns: u64,
    /// Where it happened.
    pub source: FaultSource,
    /// What happened (`seq_gap`, `garbled_frame`, `disconnect`, ...).
    pub kind: String,
    /// The market concerned, if any.
    pub market: Option<MarketId>,
    /// Its ticker, when the run wrote its markets ([`super::Journal::write_markets`]).
    pub ticker: Option<String>,
    /// A number that qualifies it (a sid, an HTTP status, ...).
    pub value: i64,
}

/// One `orders` row: an order sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRow {
    /// The run that wrote it.
    pub run: i64,
    /// Send time, ns.
    pub ts_ns: u64,
    /// The strategy's index in the run.
    pub strategy: u16,
    /// The strategy's order reference.
    pub order_ref: u64,
    /// The market.
    pub market: MarketId,
    /// Its ticker, when the run wrote its markets.
    pub ticker: Option<String>,
    /// V2 book side.
    pub side: BookSide,
    /// Limit on the YES scale, centicents.
    pub yes_price: Price,
    /// Size, hundredths of a contract.
    pub qty: Qty,
    /// Time in force.
    pub tif: TimeInForce,
    /// Post-only.
    pub post_only: bool,
}

/// One `order_updates` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderUpdateRow {
    /// The run that wrote it.
    pub run: i64,
    /// Update time, ns.
    pub ts_ns: u64,
    /// The strategy's index in the run.
    pub strategy: u16,
    /// The strategy's order reference.
    pub order_ref: u64,
    /// The market.
    pub market: MarketId,
    /// Its ticker, when the run wrote its markets.
    pub ticker: Option<String>,
    /// New status.
    pub status: OrderStatus,
    /// Why, for `Rejected` and `Cancelled`; `None` otherwise.
    pub reason: Option<RejectReason>,
    /// Filled so far, hundredths of a contract.
    pub filled: Qty,
    /// Still resting, hundredths of a contract.
    pub remaining: Qty,
}

/// One `fills` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FillRow {
    /// The run that wrote it.
    pub run: i64,
    /// Fill time, ns.
    pub ts_ns: u64,
    /// The strategy's index in the run.
    pub strategy: u16,
    /// The strategy's order reference.
    pub order_ref: u64,
    /// The market.
    pub market: MarketId,
    /// Its ticker, when the run wrote its markets.
    pub ticker: Option<String>,
    /// The order's V2 book side.
    pub side: BookSide,
    /// Execution price, YES scale, centicents.
    pub yes_price: Price,
    /// Filled size, hundredths of a contract.
    pub qty: Qty,
    /// Fee charged, micro-dollars.
    pub fee: Money,
    /// Taker or maker.
    pub liquidity: Liquidity,
}

/// A row failed to decode: SQLite's error, or a name this engine does not know.
enum RowErr {
    Sql(rusqlite::Error),
    Unknown { column: &'static str, value: String },
}

impl From<rusqlite::Error> for RowErr {
    fn from(e: rusqlite::Error) -> Self {
        RowErr::Sql(e)
    }
}

fn open_read(path: &Path) -> Result<Connection, JournalError> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|source| JournalError::Open { path: path.to_path_buf(), source, hint: super::READ_HINT })?;
    let version: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|source| JournalError::Read { path: path.to_path_buf(), table: "user_version", source })?;
    if version > schema::SCHEMA_VERSION {
        return Err(JournalError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: schema::SCHEMA_VERSION,
        });
    }
    Ok(c)
}

fn read_rows<T>(
    path: &Path,
    table: &'static str,
    sql: &str,
    mut decode: impl FnMut(&Row<'_>) -> Result<T, RowErr>,
) -> Result<Vec<T>, JournalError> {
    let c = open_read(path)?;
    let sql_err = |source| JournalError::Read { path: path.to_path_buf(), table, source };
    let mut stmt = c.prepare(sql).map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(sql_err)? {
        match decode(r) {
            Ok(v) => out.push(v),
            Err(RowErr::Sql(source)) => return Err(sql_err(source)),
            Err(RowErr::Unknown { column, value }) => {
                return Err(JournalError::UnknownValue { path: path.to_path_buf(), table, column, value })
            }
        }
    }
    Ok(out)
}

/// Decodes a text column through a name table.
fn named<T: Copy>(r: &Row<'_>, idx: usize, column: &'static str, table: &[(T, &'static str)]) -> Result<T, RowErr> {
    let s: String = r.get(idx)?;
    parse(table, &s).ok_or(RowErr::Unknown { column, value: s })
}

fn market_of(r: &Row<'_>, idx: usize) -> Result<MarketId, RowErr> {
    Ok(MarketId(r.get(idx)?))
}

/// Every `sessions` row, in the order written (all runs).
pub fn read_sessions(path: &Path) -> Result<Vec<SessionRow>, JournalError> {
    read_rows(path, "sessions", "SELECT run, ts_ns, kind, value FROM sessions ORDER BY rowid", |r| {
        Ok(SessionRow { run: r.get(0)?, ts_ns: r.get::<_, i64>(1)? as u64, kind: r.get(2)?, value: r.get(3)? })
    })
}

/// Every `faults` row, in the order written (all runs), with the market's ticker where known.
pub fn read_faults(path: &Path) -> Result<Vec<FaultRow>, JournalError> {
    let sql = "SELECT t.run, t.ts_ns, t.source, t.kind, t.market_id, m.ticker, t.value FROM faults t \
               LEFT JOIN markets m ON m.run = t.run AND m.market_id = t.market_id ORDER BY t.rowid";
    read_rows(path, "faults", sql, |r| {
        Ok(FaultRow {
            run: r.get(0)?,
            ts_ns: r.get::<_, i64>(1)? as u64,
            source: named(r, 2, "source", &schema::SOURCES)?,
            kind: r.get(3)?,
            market: r.get::<_, Option<u32>>(4)?.map(MarketId),
            ticker: r.get(5)?,
            value: r.get(6)?,
        })
    })
}

/// Every `orders` row, in the order written (all runs).
pub fn read_orders(path: &Path) -> Result<Vec<OrderRow>, JournalError> {
    let sql = "SELECT t.run, t.ts_ns, t.strategy, t.order_ref, t.market_id, m.ticker, t.side, t.yes_price_cc, \
               t.qty_hundredths, t.tif, t.post_only FROM orders t \
               LEFT JOIN markets m ON m.run = t.run AND m.market_id = t.market_id ORDER BY t.rowid";
    read_rows(path, "orders", sql, |r| {
        Ok(OrderRow {
            run: r.get(0)?,
            ts_ns: r.get::<_, i64>(1)? as u64,
            strategy: r.get(2)?,
            order_ref: r.get::<_, i64>(3)? as u64,
            market: market_of(r, 4)?,
            ticker: r.get(5)?,
            side: named(r, 6, "side", &schema::SIDES)?,
            yes_price: Price(r.get(7)?),
            qty: Qty(r.get(8)?),
            tif: named(r, 9, "tif", &schema::TIFS)?,
            post_only: r.get(10)?,
        })
    })
}

/// Every `order_updates` row, in the order written (all runs).
pub fn read_order_updates(path: &Path) -> Result<Vec<OrderUpdateRow>, JournalError> {
    let sql = "SELECT t.run, t.ts_ns, t.strategy, t.order_ref, t.market_id, m.ticker, t.status, t.reason, \
               t.filled_hundredths, t.remaining_hundredths FROM order_updates t \
               LEFT JOIN markets m ON m.run = t.run AND m.market_id = t.market_id ORDER BY t.rowid";
    read_rows(path, "order_updates", sql, |r| {
        let reason = match r.get::<_, Option<String>>(7)? {
            None => None,
            Some(s) => Some(parse_reason(&s).ok_or(RowErr::Unknown { column: "reason", value: s })?),
        };
        Ok(OrderUpdateRow {
            run: r.get(0)?,
            ts_ns: r.get::<_, i64>(1)? as u64,
            strategy: r.get(2)?,
            order_ref: r.get::<_, i64>(3)? as u64,
            market: market_of(r, 4)?,
            ticker: r.get(5)?,
            status: named(r, 6, "status", &schema::STATUSES)?,
            reason,
            filled: Qty(r.get(8)?),
            remaining: Qty(r.get(9)?),
        })
    })
}

/// Every `fills` row, in the order written (all runs).
pub fn read_fills(path: &Path) -> Result<Vec<FillRow>, JournalError> {
    let sql = "SELECT t.run, t.ts_ns, t.strategy, t.order_ref, t.market_id, m.ticker, t.side, t.yes_price_cc, \
               t.qty_hundredths, t.fee_micros, t.liquidity FROM fills t \
               LEFT JOIN markets m ON m.run = t.run AND m.market_id = t.market_id ORDER BY t.rowid";
    read_rows(path, "fills", sql, |r| {
        Ok(FillRow {
            run: r.get(0)?,
            ts_ns: r.get::<_, i64>(1)? as u64,
            strategy: r.get(2)?,
            order_ref: r.get::<_, i64>(3)? as u64,
            market: market_of(r, 4)?,
            ticker: r.get(5)?,
            side: named(r, 6, "side", &schema::SIDES)?,
            yes_price: Price(r.get(7)?),
            qty: Qty(r.get(8)?),
            fee: Money(r.get(9)?),
            liquidity: named(r, 10, "liquidity", &schema::LIQUIDITIES)?,
        })
    })
}

/// Rows per table in the file (all runs).
pub fn count_rows(path: &Path) -> Result<RowCounts, JournalError> {
    let c = open_read(path)?;
    let count = |table: &'static str| -> Result<u64, JournalError> {
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|source| JournalError::Read { path: path.to_path_buf(), table, source })
    };
    Ok(RowCounts {
        markets: count("markets")?,
        sessions: count("sessions")?,
        faults: count("faults")?,
        orders: count("orders")?,
        order_updates: count("order_updates")?,
        fills: count("fills")?,
    })
}
