//! The SQLite journal: every fault, session event, order sent, order update and fill, written off
//! the hot path by the `strike-journal` thread.
//!
//! The journal owns the database file, its schema, the writer thread and the ring that feeds it.
//! Hot threads hold a [`JournalSink`] and call [`JournalSink::record`] with a small `Copy`
//! [`JournalEvent`]: one push onto an `rtrb` ring, with no allocation, lock, system call or string
//! formatting. The [`Journal`] handle (cold side) writes the run's market tickers, and
//! [`Journal::finish`] drains, commits and reports what was written. [`read_faults`] and its
//! siblings read a file back.
//!
//! ## Schema
//!
//! Every table is `STRICT`; amounts are exact integers with the unit in the column name, never
//! REAL. Enum columns hold lower-case names. Rows keep insertion order (`rowid`).
//!
//! ```text
//! runs          run INTEGER PK (1, 2, ... one per Journal::open of the file),
//!               started_unix_ms (wall clock, ms since the Unix epoch), engine_version TEXT
//! markets       run, market_id (MarketId, an index into that run's universe), ticker TEXT
//!               PRIMARY KEY (run, market_id): ids are only meaningful within their run
//! sessions      run, ts_ns, kind TEXT (start|connected|reconnected|reconciled|stop|...), value
//! faults        run, ts_ns, source TEXT (feed|ws|rest|gateway|plugin|risk|journal|engine),
//!               kind TEXT (seq_gap|garbled_frame|disconnect|rate_limited|...), market_id NULL,
//!               value (the sid, the HTTP status, ...)
//! orders        run, ts_ns, strategy, order_ref, market_id, side TEXT (bid|ask),
//!               yes_price_cc (centicents, YES scale), qty_hundredths (contracts/100),
//!               tif TEXT (fok|ioc|gtc), post_only (0|1)
//! order_updates run, ts_ns, strategy, order_ref, market_id,
//!               status TEXT (resting|filled|cancelled|rejected),
//!               reason TEXT (RejectReason::name; NULL unless rejected or cancelled),
//!               filled_hundredths, remaining_hundredths
//! fills         run, ts_ns, strategy, order_ref, market_id, side TEXT, yes_price_cc,
//!               qty_hundredths, fee_micros (micro-dollars), liquidity TEXT (taker|maker)
//! ```
//!
//! `ts_ns` and `order_ref` are `u64`s stored as the same 64 bits in SQLite's `i64` (a value past
//! `i64::MAX` reads negative in SQL and exactly back through [`read_faults`] etc.). The caller
//! chooses the clock for `ts_ns`; Unix-epoch ns lets rows of different runs sort together.
//! `PRAGMA user_version` holds the schema version; a file from a newer engine is refused.
//!
//! ## Durability
//!
//! WAL mode with `synchronous=NORMAL`: a commit is a WAL append with no fsync, durable against
//! the process dying (kill -9, panic, abort), while a power loss may roll back the last commits
//! but never corrupts the file. The writer takes everything the ring holds, up to 4,096 events
//! at a time, into one transaction and commits it once [`JournalOptions::flush_interval`]
//! (default 100 ms) has passed since the transaction began, and at [`Journal::finish`]. So a
//! killed process loses at most the last `flush_interval` (+ one `idle_sleep`) of events, plus
//! whatever sat in the ring. This departs from `DESIGN.md`'s "a crash loses nothing that was
//! acknowledged": a commit per event would cost a WAL append per order; the restart
//! reconciliation against the exchange covers that window.
//!
//! ## Drop policy
//!
//! When the ring is full, [`JournalSink::record`] drops the event, counts it
//! ([`JournalSink::dropped`], [`JournalSummary::dropped`]) and returns `false`; it never waits.
//! A slow disk or a lock held on the file must not stall trading: the journal is a record, not
//! a gate, and the exchange stays the source of truth for orders and fills. The default ring
//! (65,536 events of 48 bytes, 3 MiB) holds many seconds of journal events at the order rates
//! the exchange allows, so a drop means the writer is stuck, which the count makes visible.
//! A write error in the thread (disk full, I/O error, a lock held past
//! [`JournalOptions::busy_timeout`]) rolls back the batch, counts its events as lost, and is
//! reported by [`Journal::finish`]; the thread goes on draining the ring so the sink never backs
//! up.

mod read;
mod schema;
mod writer;

pub use read::{
    count_rows, read_faults, read_fills, read_order_updates, read_orders, read_sessions, FaultRow, FillRow, OrderRow,
    OrderUpdateRow, SessionRow,
};

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
// lock-ok: the cold `Journal` handle; `JournalSink::record` touches only its SPSC ring
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use strike_sdk::book::BookSide;
use strike_sdk::fees::Liquidity;
use strike_sdk::market::MarketId;
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::{OrderStatus, RejectReason, TimeInForce};
use writer::Control;

/// What the journal hint says when a file cannot be opened for writing.
const WRITE_HINT: &str = "check the directory exists and is writable";
/// What the journal hint says when a file cannot be opened for reading.
const READ_HINT: &str = "check the path names an existing journal file";

/// Where a fault happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultSource {
    /// Market-data parsing and sequencing (sequence gaps, garbled frames).
    Feed,
    /// The WebSocket transport (disconnects, ping timeouts).
    Ws,
    /// REST HTTP calls (status codes, rate limits).
    Rest,
    /// Order gateway logic (reconcile resends, unknown acks).
    Gateway,
    /// A strategy plugin (panics, bad intents).
    Plugin,
    /// Risk and kill switches.
    Risk,
    /// The journal itself.
    Journal,
    /// Anything else in the engine.
    Engine,
}

impl FaultSource {
    /// The name stored in `faults.source`.
    pub const fn name(self) -> &'static str {
        match self {
            FaultSource::Feed => "feed",
            FaultSource::Ws => "ws",
            FaultSource::Rest => "rest",
            FaultSource::Gateway => "gateway",
            FaultSource::Plugin => "plugin",
            FaultSource::Risk => "risk",
            FaultSource::Journal => "journal",
            FaultSource::Engine => "engine",
        }
    }
}

/// One record for the journal: small, `Copy`, plain data (names are `&'static str`).
///
/// `ts_ns` is the event time in ns on the caller's clock (see the module docs); `strategy` is the
/// strategy's index in the run; `order_ref` its [`strike_sdk::order::OrderRef`] value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalEvent {
    /// Something went wrong, was counted and handled (→ `faults`).
    Fault {
        /// Event time, ns.
        ts_ns: u64,
        /// Where.
        source: FaultSource,
        /// What, as a static name: `seq_gap`, `garbled_frame`, `disconnect`, `rate_limited`,
        /// `reconcile_resend`, ...
        kind: &'static str,
        /// The market concerned, if any.
        market: Option<MarketId>,
        /// A number that qualifies it: the sid, the HTTP status, the gap size, ...
        value: i64,
    },
    /// An order was sent to the venue (→ `orders`).
    Order {
        /// Send time, ns.
        ts_ns: u64,
        /// The strategy's index.
        strategy: u16,
        /// The strategy's order reference.
        order_ref: u64,
        /// The market.
        market: MarketId,
        /// V2 book side (`Bid` buys YES, `Ask` sells YES / buys NO).
        side: BookSide,
        /// Limit on the YES scale, centicents.
        yes_price: Price,
        /// Size, hundredths of a contract.
        qty: Qty,
        /// Time in force.
        tif: TimeInForce,
        /// Post-only.
        post_only: bool,
    },
    /// An order changed state (→ `order_updates`).
    OrderUpdate {
        /// Update time, ns.
        ts_ns: u64,
        /// The strategy's index.
        strategy: u16,
        /// The strategy's order reference.
        order_ref: u64,
        /// The market.
        market: MarketId,
        /// New status.
        status: OrderStatus,
        /// Why (stored only for `Rejected` and `Cancelled`).
        reason: RejectReason,
        /// Filled so far, hundredths of a contract.
        filled: Qty,
        /// Still resting, hundredths of a contract.
        remaining: Qty,
    },
    /// One execution (→ `fills`).
    Fill {
        /// Fill time, ns.
        ts_ns: u64,
        /// The strategy's index.
        strategy: u16,
        /// The strategy's order reference.
        order_ref: u64,
        /// The market.
        market: MarketId,
        /// The order's V2 book side.
        side: BookSide,
        /// Execution price, YES scale, centicents.
        yes_price: Price,
        /// Filled size, hundredths of a contract.
        qty: Qty,
        /// Fee charged for this fill, micro-dollars.
        fee: Money,
        /// Taker or maker.
        liquidity: Liquidity,
    },
    /// A session milestone (→ `sessions`).
    Session {
        /// Event time, ns.
        ts_ns: u64,
        /// `start`, `connected`, `reconnected`, `reconciled`, `stop`, ...
        kind: &'static str,
        /// A number that qualifies it (a reconnect count, orders reconciled, ...).
        value: i64,
    },
}

/// How to open a journal.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// Ring capacity, events (default 65,536; at least 1). Each slot is
    /// `size_of::<JournalEvent>()` bytes (48).
    pub capacity: usize,
    /// Longest a transaction stays open before it is committed (default 100 ms): the most a
    /// killed process loses from the writer's side.
    pub flush_interval: Duration,
    /// How long the idle writer sleeps before looking at the ring again (default 1 ms); the ring
    /// must hold this long of events.
    pub idle_sleep: Duration,
    /// How long a write waits for a lock another connection holds on the file before the batch
    /// fails (default 5 s). Meanwhile the ring fills, then drops.
    pub busy_timeout: Duration,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            capacity: 65_536,
            flush_interval: Duration::from_millis(100),
            idle_sleep: Duration::from_millis(1),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Rows per table: written by one run ([`JournalSummary::written`]) or in a file ([`count_rows`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowCounts {
    /// `markets` rows.
    pub markets: u64,
    /// `sessions` rows.
    pub sessions: u64,
    /// `faults` rows.
    pub faults: u64,
    /// `orders` rows.
    pub orders: u64,
    /// `order_updates` rows.
    pub order_updates: u64,
    /// `fills` rows.
    pub fills: u64,
}

impl RowCounts {
    /// Rows that came from [`JournalEvent`]s (every table but `markets`).
    pub fn events(&self) -> u64 {
        self.sessions + self.faults + self.orders + self.order_updates + self.fills
    }

    fn add(&mut self, o: &RowCounts) {
        self.markets += o.markets;
        self.sessions += o.sessions;
        self.faults += o.faults;
        self.orders += o.orders;
        self.order_updates += o.order_updates;
        self.fills += o.fills;
    }
}

/// What one run wrote, from [`Journal::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalSummary {
    /// This run's id in the `runs` table.
    pub run: i64,
    /// Rows committed, per table.
    pub written: RowCounts,
    /// Events refused by a full ring ([`JournalSink::record`] returned `false`).
    pub dropped: u64,
}

/// Why the journal could not open, write or read. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be opened.
    #[error("cannot open journal {}: {}: {hint}", .path.display(), Brief(.source, .path))]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
        /// What to check.
        hint: &'static str,
    },
    /// The file opened but the schema could not be set up (not a journal, or locked).
    #[error(
        "cannot set up the journal schema in {}: {source}: use a new file, or check that no other \
         process holds it open for writing",
        .path.display()
    )]
    Schema {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// SQLite would not switch the file to WAL mode.
    #[error(
        "journal {}: SQLite refused WAL mode (journal_mode stayed {mode}): put the journal on a local \
         file system",
        .path.display()
    )]
    NoWal {
        /// The file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// The file's schema is newer than this engine's.
    #[error(
        "journal {} has schema version {found}, newer than this engine's {supported}: read it with a \
         newer engine, or journal to a new file",
        .path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// `PRAGMA user_version` in the file.
        found: i64,
        /// The version this engine writes.
        supported: i64,
    },
    /// The writer thread could not be started.
    #[error("cannot start the journal writer thread: {0}: the process may be out of threads or memory")]
    Spawn(#[source] std::io::Error),
    /// Writes failed while the journal ran; the first error is kept.
    #[error(
        "journal {}: a write failed ({source}); {lost} events were not written: check free disk space, \
         and that no other process holds a write lock on the file",
        .path.display()
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Events taken off the ring whose transaction was rolled back.
        lost: u64,
        /// The first error.
        source: rusqlite::Error,
    },
    /// Market tickers could not be written.
    #[error("cannot write market tickers to journal {}: {message}: check free disk space", .path.display())]
    Markets {
        /// The file.
        path: PathBuf,
        /// SQLite's error, as text.
        message: String,
    },
    /// The writer thread is gone (it panicked); rows it committed are in the file.
    #[error(
        "the journal writer thread for {} stopped unexpectedly: rows committed before are in the file, \
         later events are not",
        .path.display()
    )]
    WriterGone {
        /// The file.
        path: PathBuf,
    },
    /// A table could not be read.
    #[error("cannot read {table} from journal {}: {source}: check the file is a Strike journal", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The table (or pragma) being read.
        table: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A row holds a name this engine does not know.
    #[error(
        "journal {}: {table}.{column} holds {value:?}, which this engine does not know: was it written \
         by a newer engine?",
        .path.display()
    )]
    UnknownValue {
        /// The file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The stored text.
        value: String,
    },
}

/// SQLite's error without the `: <path>` rusqlite appends to open failures (the message already
/// names the path).
struct Brief<'a>(&'a rusqlite::Error, &'a Path);

impl std::fmt::Display for Brief<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let rusqlite::Error::SqliteFailure(_, Some(msg)) = self.0 {
            let path = self.1.display().to_string();
            if let Some(head) = msg.strip_suffix(path.as_str()).and_then(|m| m.strip_suffix(": ")) {
                return f.write_str(head);
            }
        }
        self.0.fmt(f)
    }
}

/// The journal row of an execution report: a fill, an order update, or (for
/// [`ExecEvent::Position`]) a `position_synced` session row whose value is the venue's position
/// in hundredths of a contract. `ts_ns`: unix nanoseconds.
#[inline]
pub fn of_exec(ts_ns: u64, e: &crate::pipeline::events::ExecEvent) -> JournalEvent {
    use crate::pipeline::events::ExecEvent;
    match *e {
        ExecEvent::Fill { strategy, fill } => JournalEvent::Fill {
            ts_ns,
            strategy,
            order_ref: fill.order_ref.0,
            market: fill.market,
            side: fill.side,
            yes_price: fill.yes_price,
            qty: fill.qty,
            fee: fill.fee,
            liquidity: fill.liquidity,
        },
        ExecEvent::Update { strategy, update, .. } => JournalEvent::OrderUpdate {
            ts_ns,
            strategy,
            order_ref: update.order_ref.0,
            market: update.market,
            status: update.status,
            reason: update.reason,
            filled: update.filled,
            remaining: update.remaining,
        },
        ExecEvent::Position { qty, .. } => JournalEvent::Session { ts_ns, kind: "position_synced", value: qty.0 },
    }
}

/// The journal row of an order sent to a venue (`None` for a cancel request: its outcome is
/// journaled as the order's update). `ts_ns`: unix nanoseconds.
#[inline]
pub fn of_order(ts_ns: u64, r: &crate::pipeline::events::OrderRequest) -> Option<JournalEvent> {
    match *r {
        crate::pipeline::events::OrderRequest::New {
            strategy,
            order_ref,
            market,
            side,
            yes_price,
            qty,
            tif,
            post_only,
            ..
        } => Some(JournalEvent::Order {
            ts_ns,
            strategy,
            order_ref: order_ref.0,
            market,
            side,
            yes_price,
            qty,
            tif,
            post_only,
        }),
        crate::pipeline::events::OrderRequest::Cancel { .. } => None,
    }
}

/// The hot side of the journal: one producer, `Send`, never blocks. See the module docs.
pub struct JournalSink {
    ring: rtrb::Producer<JournalEvent>,
    dropped: u64,
    shared_dropped: Arc<AtomicU64>,
}

impl JournalSink {
    /// Queues `ev` for the writer: `true` if queued, `false` if the ring was full and the event
    /// was dropped (and counted). Never allocates, locks, blocks or formats.
    #[inline]
    pub fn record(&mut self, ev: JournalEvent) -> bool {
        match self.ring.push(ev) {
            Ok(()) => true,
            Err(_) => {
                self.dropped += 1;
                // shared by every sink of the journal; only on a drop, never on the normal path
                self.shared_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Events dropped so far because the ring was full.
    #[inline]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The cold side of the journal: owns the writer thread. [`Journal::finish`] stops it; dropping
/// the handle does the same, reporting an error on stderr instead of returning it.
pub struct Journal {
    path: PathBuf,
    run: i64,
    // lock-ok: the cold `Journal` handle; `JournalSink::record` touches only its SPSC ring
    ctl: mpsc::Sender<Control>,
    thread: Option<JoinHandle<writer::Outcome>>,
    dropped: Arc<AtomicU64>,
    capacity: usize,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`: WAL mode, `synchronous=NORMAL`, the
    /// schema, a new row in `runs`; then starts the unpinned `strike-journal` writer thread.
    pub fn open(path: &Path, opts: JournalOptions) -> Result<(JournalSink, Journal), JournalError> {
        let conn = Connection::open(path).map_err(|source| JournalError::Open {
            path: path.to_path_buf(),
            source,
            hint: WRITE_HINT,
        })?;
        let run = setup(&conn, path, opts.busy_timeout)?;
        let (producer, consumer) = rtrb::RingBuffer::new(opts.capacity.max(1));
        // lock-ok: the cold `Journal` handle; `JournalSink::record` touches only its SPSC ring
        let (ctl, ctl_rx) = mpsc::channel();
        let timing = writer::Timing { flush_interval: opts.flush_interval, idle_sleep: opts.idle_sleep };
        let thread = std::thread::Builder::new()
            .name("strike-journal".into())
            .spawn(move || writer::run(conn, run, consumer, ctl_rx, timing))
            .map_err(JournalError::Spawn)?;
        let dropped = Arc::new(AtomicU64::new(0));
        let sink = JournalSink { ring: producer, dropped: 0, shared_dropped: dropped.clone() };
        let capacity = opts.capacity.max(1);
        Ok((sink, Journal { path: path.to_path_buf(), run, ctl, thread: Some(thread), dropped, capacity }))
    }

    /// Another producer for this journal (a second stage or thread), with a ring of the
    /// capacity the journal was opened with; the writer drains every sink. Cold: allocates the
    /// ring.
    pub fn sink(&self) -> Result<JournalSink, JournalError> {
        let (producer, consumer) = rtrb::RingBuffer::new(self.capacity);
        self.ctl.send(Control::AddRing(consumer)).map_err(|_| JournalError::WriterGone { path: self.path.clone() })?;
        Ok(JournalSink { ring: producer, dropped: 0, shared_dropped: self.dropped.clone() })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This run's id in the `runs` table (other tables' `run` column).
    pub fn run(&self) -> i64 {
        self.run
    }

    /// Events the sinks have dropped so far because their ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes this run's `(market id, ticker)` pairs to `markets` and commits them (with any
    /// events pending before), so rows read with tickers. Returns the rows written. Cold path:
    /// copies the tickers and waits for the writer.
    pub fn write_markets(&self, markets: &[(MarketId, &str)]) -> Result<usize, JournalError> {
        let rows = markets.iter().map(|(m, t)| (m.0, (*t).to_owned())).collect();
        // lock-ok: the cold `Journal` handle; `JournalSink::record` touches only its SPSC ring
        let (tx, rx) = mpsc::sync_channel(1);
        let gone = || JournalError::WriterGone { path: self.path.clone() };
        self.ctl.send(Control::Markets(rows, tx)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?.map_err(|message| JournalError::Markets { path: self.path.clone(), message })
    }

    /// Stops the writer after it has written everything the sink pushed before this call,
    /// commits, and returns the counts. Events recorded after this are not written.
    pub fn finish(mut self) -> Result<JournalSummary, JournalError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<JournalSummary, JournalError> {
        let Some(thread) = self.thread.take() else {
            return Err(JournalError::WriterGone { path: self.path.clone() });
        };
        let _ = self.ctl.send(Control::Stop);
        let out = thread.join().map_err(|_| JournalError::WriterGone { path: self.path.clone() })?;
        if let Some(source) = out.error {
            return Err(JournalError::Write { path: self.path.clone(), lost: out.lost, source });
        }
        Ok(JournalSummary { run: self.run, written: out.written, dropped: self.dropped() })
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.stop() {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "strike-engine: {e}");
            }
        }
    }
}

/// Pragmas, schema and the run row; returns the run id.
fn setup(conn: &Connection, path: &Path, busy_timeout: Duration) -> Result<i64, JournalError> {
    let schema_err = |source| JournalError::Schema { path: path.to_path_buf(), source };
    conn.busy_timeout(busy_timeout).map_err(schema_err)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(schema_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(JournalError::NoWal { path: path.to_path_buf(), mode });
    }
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(schema_err)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(schema_err)?;
    if version > schema::SCHEMA_VERSION {
        return Err(JournalError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: schema::SCHEMA_VERSION,
        });
    }
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {} PRAGMA user_version = {}; COMMIT;",
        schema::CREATE,
        schema::SCHEMA_VERSION
    ))
    .map_err(schema_err)?;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    conn.execute(schema::INSERT_RUN, rusqlite::params![now_ms, env!("CARGO_PKG_VERSION")]).map_err(schema_err)?;
    writer::check_statements(conn).map_err(schema_err)?;
    Ok(conn.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_stay_small() {
        // 48 bytes today; a ring slot per event, so keep it within a cache line.
        assert!(std::mem::size_of::<JournalEvent>() <= 64, "{}", std::mem::size_of::<JournalEvent>());
    }

    #[test]
    fn fault_source_names_match_the_schema_table() {
        for (s, n) in schema::SOURCES {
            assert_eq!(s.name(), n);
        }
        assert_eq!(schema::SOURCES.len(), 8);
    }

    #[test]
    fn options_default_to_the_documented_values() {
        let o = JournalOptions::default();
        assert_eq!(o.capacity, 65_536);
        assert_eq!(o.flush_interval, Duration::from_millis(100));
    }
}
