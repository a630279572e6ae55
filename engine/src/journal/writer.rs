//! The `strike-journal` thread: drains the ring into SQLite, one transaction per batch.

use super::schema::{self, name_of};
use super::{JournalEvent, RowCounts};
use rusqlite::{params, Connection, Statement};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

/// Events written between two looks at the control channel.
const BATCH: usize = 4096;

/// A request from the [`super::Journal`] handle.
pub(super) enum Control {
    /// Write `(market_id, ticker)` rows for the run, commit, and answer how many were written
    /// (or the error's text).
    Markets(Vec<(u32, String)>, SyncSender<Result<usize, String>>),
    /// Drain this ring too (another [`super::JournalSink`]).
    AddRing(rtrb::Consumer<JournalEvent>),
    /// Drain the rings, commit and exit.
    Stop,
}

/// What the thread hands back when it exits.
pub(super) struct Outcome {
    /// Rows committed, per table.
    pub written: RowCounts,
    /// Events taken off the ring whose transaction failed.
    pub lost: u64,
    /// The first write error, if any.
    pub error: Option<rusqlite::Error>,
}

/// Timing knobs, from [`super::JournalOptions`].
pub(super) struct Timing {
    pub flush_interval: Duration,
    pub idle_sleep: Duration,
}

struct Stmts<'c> {
    begin: Statement<'c>,
    commit: Statement<'c>,
    rollback: Statement<'c>,
    market: Statement<'c>,
    session: Statement<'c>,
    fault: Statement<'c>,
    order: Statement<'c>,
    update: Statement<'c>,
    fill: Statement<'c>,
}

impl<'c> Stmts<'c> {
    fn prepare(c: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Stmts {
            begin: c.prepare("BEGIN IMMEDIATE")?,
            commit: c.prepare("COMMIT")?,
            rollback: c.prepare("ROLLBACK")?,
            market: c.prepare(schema::INSERT_MARKET)?,
            session: c.prepare(schema::INSERT_SESSION)?,
            fault: c.prepare(schema::INSERT_FAULT)?,
            order: c.prepare(schema::INSERT_ORDER)?,
            update: c.prepare(schema::INSERT_ORDER_UPDATE)?,
            fill: c.prepare(schema::INSERT_FILL)?,
        })
    }
}

/// Checks that every statement the thread uses prepares against `c` (called at open, so a
/// schema problem is reported by `Journal::open` rather than by the thread).
pub(super) fn check_statements(c: &Connection) -> rusqlite::Result<()> {
    Stmts::prepare(c).map(drop)
}

/// Runs the writer until [`Control::Stop`] (or the handle is gone), then closes `conn`.
pub(super) fn run(
    conn: Connection,
    run: i64,
    ring: rtrb::Consumer<JournalEvent>,
    ctl: Receiver<Control>,
    timing: Timing,
) -> Outcome {
    let outcome = match Stmts::prepare(&conn) {
        Ok(stmts) => {
            let mut w = Writer {
                s: stmts,
                run,
                rings: vec![ring],
                timing,
                txn_start: None,
                pending: RowCounts::default(),
                out: Outcome { written: RowCounts::default(), lost: 0, error: None },
            };
            w.main_loop(&ctl);
            w.out
        }
        Err(e) => Outcome { written: RowCounts::default(), lost: 0, error: Some(e) },
    };
    // Closing checkpoints the WAL into the main file; an error here loses nothing committed.
    let _ = conn.close();
    outcome
}

struct Writer<'c> {
    s: Stmts<'c>,
    run: i64,
    rings: Vec<rtrb::Consumer<JournalEvent>>,
    timing: Timing,
    /// When the open transaction began; `None` when none is open.
    txn_start: Option<Instant>,
    /// Rows inserted in the open transaction.
    pending: RowCounts,
    out: Outcome,
}

impl Writer<'_> {
    fn main_loop(&mut self, ctl: &Receiver<Control>) {
        let mut stopping = false;
        loop {
            // Requests first, so a Stop sent after the producer's last push is seen before the
            // drain below, which then takes everything pushed before it.
            loop {
                match ctl.try_recv() {
                    Ok(msg) => stopping |= self.handle(msg),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        stopping = true;
                        break;
                    }
                }
            }
            let mut n = 0;
            for i in 0..self.rings.len() {
                while n < BATCH {
                    let Ok(ev) = self.rings[i].pop() else { break };
                    self.write(ev);
                    n += 1;
                }
            }
            let due = self.txn_start.is_some_and(|t| t.elapsed() >= self.timing.flush_interval);
            if due || (stopping && n < BATCH) {
                self.commit();
            }
            if stopping {
                if n < BATCH {
                    return;
                }
                continue;
            }
            if n == 0 {
                // Idle: wait for a request, or until the ring may have filled again, or until the
                // open transaction is due.
                let mut wait = self.timing.idle_sleep;
                if let Some(t) = self.txn_start {
                    wait = wait.min(self.timing.flush_interval.saturating_sub(t.elapsed()));
                }
                match ctl.recv_timeout(wait) {
                    Ok(msg) => stopping |= self.handle(msg),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => stopping = true,
                }
            }
        }
    }

    /// Handles one request; true for Stop.
    fn handle(&mut self, msg: Control) -> bool {
        match msg {
            Control::Stop => true,
            Control::AddRing(r) => {
                self.rings.push(r);
                false
            }
            Control::Markets(rows, reply) => {
                let r = self.write_markets(&rows);
                let _ = reply.send(r);
                false
            }
        }
    }

    /// Commits what is pending, then writes the tickers in a transaction of their own (so a
    /// failure there loses no events); the caller gets the error's text.
    fn write_markets(&mut self, rows: &[(u32, String)]) -> Result<usize, String> {
        self.commit();
        match self.try_markets(rows) {
            Ok(()) => Ok(rows.len()),
            Err(e) => {
                self.abort();
                Err(e.to_string())
            }
        }
    }

    fn try_markets(&mut self, rows: &[(u32, String)]) -> rusqlite::Result<()> {
        self.begin()?;
        for (id, ticker) in rows {
            self.s.market.execute(params![self.run, id, ticker])?;
            self.pending.markets += 1;
        }
        self.try_commit()
    }

    /// Opens a transaction if none is open.
    fn begin(&mut self) -> rusqlite::Result<()> {
        if self.txn_start.is_none() {
            self.s.begin.execute([])?;
            self.txn_start = Some(Instant::now());
        }
        Ok(())
    }

    /// Inserts one event; on failure the open transaction is rolled back and its rows counted
    /// as lost.
    fn write(&mut self, ev: JournalEvent) {
        if let Err(e) = self.begin() {
            self.keep(e);
            self.out.lost += 1;
            return;
        }
        let run = self.run;
        let r = match ev {
            JournalEvent::Session { ts_ns, kind, value } => {
                self.pending.sessions += 1;
                self.s.session.execute(params![run, ts_ns as i64, kind, value])
            }
            JournalEvent::Fault { ts_ns, source, kind, market, value } => {
                self.pending.faults += 1;
                self.s.fault.execute(params![run, ts_ns as i64, source.name(), kind, market.map(|m| m.0), value])
            }
            JournalEvent::Order { ts_ns, strategy, order_ref, market, side, yes_price, qty, tif, post_only } => {
                self.pending.orders += 1;
                self.s.order.execute(params![
                    run,
                    ts_ns as i64,
                    strategy,
                    order_ref as i64,
                    market.0,
                    name_of(&schema::SIDES, side),
                    yes_price.0,
                    qty.0,
                    name_of(&schema::TIFS, tif),
                    post_only,
                ])
            }
            JournalEvent::OrderUpdate { ts_ns, strategy, order_ref, market, status, reason, filled, remaining } => {
                self.pending.order_updates += 1;
                self.s.update.execute(params![
                    run,
                    ts_ns as i64,
                    strategy,
                    order_ref as i64,
                    market.0,
                    name_of(&schema::STATUSES, status),
                    schema::reason_name(status, reason),
                    filled.0,
                    remaining.0,
                ])
            }
            JournalEvent::Fill { ts_ns, strategy, order_ref, market, side, yes_price, qty, fee, liquidity } => {
                self.pending.fills += 1;
                self.s.fill.execute(params![
                    run,
                    ts_ns as i64,
                    strategy,
                    order_ref as i64,
                    market.0,
                    name_of(&schema::SIDES, side),
                    yes_price.0,
                    qty.0,
                    fee.0,
                    name_of(&schema::LIQUIDITIES, liquidity),
                ])
            }
        };
        if let Err(e) = r {
            self.keep(e);
            self.abort();
        }
    }

    /// Commits the open transaction, if any; a failure is kept for `finish`.
    fn commit(&mut self) {
        if let Err(e) = self.try_commit() {
            self.keep(e);
        }
    }

    /// Commits the open transaction, if any; on failure rolls it back and counts its rows lost.
    fn try_commit(&mut self) -> rusqlite::Result<()> {
        if self.txn_start.is_none() {
            return Ok(());
        }
        match self.s.commit.execute([]) {
            Ok(_) => {
                self.txn_start = None;
                self.out.written.add(&self.pending);
                self.pending = RowCounts::default();
                Ok(())
            }
            Err(e) => {
                self.abort();
                Err(e)
            }
        }
    }

    /// Rolls the open transaction back and counts its rows as lost.
    fn abort(&mut self) {
        let _ = self.s.rollback.execute([]);
        self.txn_start = None;
        self.out.lost += self.pending.events();
        self.pending = RowCounts::default();
    }

    fn keep(&mut self, e: rusqlite::Error) {
        if self.out.error.is_none() {
            self.out.error = Some(e);
        }
    }
}
