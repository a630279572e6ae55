//! The SQLite journal against real files: exact round trips of every event kind, ordering under
//! load, the drop policy when the writer is stalled, flushing at finish and on drop, write errors
//! kept for finish, clear open errors, and an allocation-free `JournalSink::record`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use strike_engine::journal::{
    count_rows, read_faults, read_fills, read_order_updates, read_orders, read_sessions, FaultRow, FaultSource,
    FillRow, Journal, JournalError, JournalEvent, JournalOptions, OrderRow, OrderUpdateRow, SessionRow,
};
use strike_sdk::book::BookSide;
use strike_sdk::fees::Liquidity;
use strike_sdk::market::MarketId;
use strike_sdk::num::{Money, Price, Qty};
use strike_sdk::order::{OrderStatus, RejectReason, TimeInForce};

// Counts allocations made by the one thread that armed itself, so the writer thread and other
// tests running beside it are not counted.
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

fn armed() -> bool {
    ARMED.try_with(|a| a.get()).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if armed() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if armed() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.realloc(p, l, n)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("strike-journal-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self) -> PathBuf {
        self.0.join("journal.sqlite")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn order(i: u64) -> JournalEvent {
    JournalEvent::Order {
        ts_ns: 1_700_000_000_000_000_000 + i,
        strategy: 1,
        order_ref: i,
        market: MarketId((i % 7) as u32),
        side: [BookSide::Bid, BookSide::Ask][(i % 2) as usize],
        yes_price: Price(100 + (i % 9800) as u16),
        qty: Qty(100 + i as i64),
        tif: TimeInForce::Ioc,
        post_only: false,
    }
}

/// Holds the file's write lock from another connection, as another process could.
fn lock_file(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("BEGIN EXCLUSIVE").unwrap();
    c
}

#[test]
fn every_event_kind_round_trips_with_exact_values() {
    let dir = TempDir::new("roundtrip");
    let path = dir.file();
    let (mut sink, journal) = Journal::open(&path, JournalOptions::default()).unwrap();
    assert_eq!(journal.run(), 1);
    assert_eq!(journal.write_markets(&[(MarketId(0), "KXHIGHNY-25AUG01-B85.5"), (MarketId(3), "KXBTC-X")]).unwrap(), 2);
    let t = 1_754_000_000_123_456_789u64;
    let events = [
        JournalEvent::Session { ts_ns: t, kind: "start", value: 0 },
        JournalEvent::Fault {
            ts_ns: t + 1,
            source: FaultSource::Feed,
            kind: "seq_gap",
            market: Some(MarketId(0)),
            value: 17,
        },
        JournalEvent::Fault { ts_ns: t + 2, source: FaultSource::Rest, kind: "rate_limited", market: None, value: 429 },
        JournalEvent::Order {
            ts_ns: t + 3,
            strategy: 2,
            order_ref: u64::MAX - 5, // past i64::MAX: stored as the same bits
            market: MarketId(3),
            side: BookSide::Ask,
            yes_price: Price(9_999),
            qty: Qty(1_234_567),
            tif: TimeInForce::Gtc,
            post_only: true,
        },
        JournalEvent::OrderUpdate {
            ts_ns: t + 4,
            strategy: 2,
            order_ref: 77,
            market: MarketId(3),
            status: OrderStatus::Resting,
            reason: RejectReason::Venue, // meaningless for Resting: not stored
            filled: Qty(0),
            remaining: Qty(250),
        },
        JournalEvent::OrderUpdate {
            ts_ns: t + 5,
            strategy: 2,
            order_ref: 78,
            market: MarketId(5),
            status: OrderStatus::Rejected,
            reason: RejectReason::PostOnlyCross,
            filled: Qty(25),
            remaining: Qty(0),
        },
        JournalEvent::Fill {
            ts_ns: t + 6,
            strategy: 0,
            order_ref: 79,
            market: MarketId(0),
            side: BookSide::Bid,
            yes_price: Price(1),
            qty: Qty(1),
            fee: Money(-1_750), // a maker rebate
            liquidity: Liquidity::Maker,
        },
        JournalEvent::Fill {
            ts_ns: u64::MAX,
            strategy: u16::MAX,
            order_ref: 80,
            market: MarketId(3),
            side: BookSide::Ask,
            yes_price: Price(5_600),
            qty: Qty(30_000),
            fee: Money(123_456_789),
            liquidity: Liquidity::Taker,
        },
        JournalEvent::Session { ts_ns: t + 7, kind: "stop", value: -3 },
    ];
    for ev in events {
        assert!(sink.record(ev));
    }
    let summary = journal.finish().unwrap();
    assert_eq!(summary.run, 1);
    assert_eq!(summary.dropped, 0);
    assert_eq!((summary.written.markets, summary.written.sessions, summary.written.faults), (2, 2, 2), "{summary:?}");
    assert_eq!((summary.written.orders, summary.written.order_updates, summary.written.fills), (1, 2, 2));
    assert_eq!(count_rows(&path).unwrap(), summary.written);

    let ticker = |s: &str| Some(s.to_string());
    assert_eq!(
        read_sessions(&path).unwrap(),
        [
            SessionRow { run: 1, ts_ns: t, kind: "start".into(), value: 0 },
            SessionRow { run: 1, ts_ns: t + 7, kind: "stop".into(), value: -3 },
        ]
    );
    assert_eq!(
        read_faults(&path).unwrap(),
        [
            FaultRow {
                run: 1,
                ts_ns: t + 1,
                source: FaultSource::Feed,
                kind: "seq_gap".into(),
                market: Some(MarketId(0)),
                ticker: ticker("KXHIGHNY-25AUG01-B85.5"),
                value: 17,
            },
            FaultRow {
                run: 1,
                ts_ns: t + 2,
                source: FaultSource::Rest,
                kind: "rate_limited".into(),
                market: None,
                ticker: None,
                value: 429,
            },
        ]
    );
    assert_eq!(
        read_orders(&path).unwrap(),
        [OrderRow {
            run: 1,
            ts_ns: t + 3,
            strategy: 2,
            order_ref: u64::MAX - 5,
            market: MarketId(3),
            ticker: ticker("KXBTC-X"),
            side: BookSide::Ask,
            yes_price: Price(9_999),
            qty: Qty(1_234_567),
            tif: TimeInForce::Gtc,
            post_only: true,
        }]
    );
    assert_eq!(
        read_order_updates(&path).unwrap(),
        [
            OrderUpdateRow {
                run: 1,
                ts_ns: t + 4,
                strategy: 2,
                order_ref: 77,
                market: MarketId(3),
                ticker: ticker("KXBTC-X"),
                status: OrderStatus::Resting,
                reason: None,
                filled: Qty(0),
                remaining: Qty(250),
            },
            OrderUpdateRow {
                run: 1,
                ts_ns: t + 5,
                strategy: 2,
                order_ref: 78,
                market: MarketId(5),
                ticker: None, // no ticker written for id 5
                status: OrderStatus::Rejected,
                reason: Some(RejectReason::PostOnlyCross),
                filled: Qty(25),
                remaining: Qty(0),
            },
        ]
    );
    assert_eq!(
        read_fills(&path).unwrap(),
        [
            FillRow {
                run: 1,
                ts_ns: t + 6,
                strategy: 0,
                order_ref: 79,
                market: MarketId(0),
                ticker: ticker("KXHIGHNY-25AUG01-B85.5"),
                side: BookSide::Bid,
                yes_price: Price(1),
                qty: Qty(1),
                fee: Money(-1_750),
                liquidity: Liquidity::Maker,
            },
            FillRow {
                run: 1,
                ts_ns: u64::MAX,
                strategy: u16::MAX,
                order_ref: 80,
                market: MarketId(3),
                ticker: ticker("KXBTC-X"),
                side: BookSide::Ask,
                yes_price: Price(5_600),
                qty: Qty(30_000),
                fee: Money(123_456_789),
                liquidity: Liquidity::Taker,
            },
        ]
    );

    // Amounts are INTEGER columns, readable as plain SQL by anyone.
    let c = rusqlite::Connection::open(&path).unwrap();
    let (price, qty, fee): (i64, i64, i64) = c
        .query_row("SELECT yes_price_cc, qty_hundredths, fee_micros FROM fills WHERE order_ref = 79", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((price, qty, fee), (1, 1, -1_750));
    let types: String = c
        .query_row("SELECT typeof(yes_price_cc) || typeof(qty_hundredths) || typeof(fee_micros) FROM fills", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(types, "integerintegerinteger");
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_hundred_thousand_events_from_a_producer_thread_arrive_in_order() {
    const N: u64 = 100_000;
    let dir = TempDir::new("order");
    let path = dir.file();
    let opts = JournalOptions { capacity: 131_072, ..JournalOptions::default() };
    let (mut sink, journal) = Journal::open(&path, opts).unwrap();
    let producer = std::thread::spawn(move || {
        for i in 0..N {
            assert!(sink.record(order(i)), "event {i} dropped");
        }
        sink.dropped()
    });
    assert_eq!(producer.join().unwrap(), 0);
    let summary = journal.finish().unwrap();
    assert_eq!(summary.dropped, 0);
    assert_eq!(summary.written.orders, N);
    let rows = read_orders(&path).unwrap();
    assert_eq!(rows.len() as u64, N);
    for (i, r) in rows.iter().enumerate() {
        let JournalEvent::Order { ts_ns, order_ref, market, side, yes_price, qty, .. } = order(i as u64) else {
            unreachable!()
        };
        assert_eq!(
            (r.ts_ns, r.order_ref, r.market, r.side, r.yes_price, r.qty),
            (ts_ns, order_ref, market, side, yes_price, qty),
            "row {i}"
        );
    }
}

#[test]
fn a_full_ring_drops_and_counts_instead_of_blocking() {
    const CAP: usize = 16;
    const N: u64 = 10_000;
    let dir = TempDir::new("drops");
    let path = dir.file();
    let opts = JournalOptions { capacity: CAP, ..JournalOptions::default() };
    let (mut sink, journal) = Journal::open(&path, opts).unwrap();
    // Another connection holds the write lock: the writer takes at most one event, then waits
    // for the lock (busy timeout 5 s) while the burst below fills the ring.
    let lock = lock_file(&path);
    let mut kept = Vec::with_capacity(N as usize);
    let start = Instant::now();
    for i in 0..N {
        if sink.record(order(i)) {
            kept.push(i);
        }
    }
    let burst = start.elapsed();
    let accepted = kept.len() as u64;
    assert_eq!(accepted + sink.dropped(), N);
    assert!(sink.dropped() >= N - CAP as u64 - 1, "dropped {} of {N}", sink.dropped());
    assert_eq!(journal.dropped(), sink.dropped());
    assert_eq!(count_rows(&path).unwrap().orders, 0, "the writer should be stalled on the lock");
    assert!(burst < Duration::from_secs(1), "the burst took {burst:?}: record must not wait for the writer");
    drop(lock); // rolls back and releases

    let summary = journal.finish().unwrap();
    assert_eq!(summary.dropped, sink.dropped());
    assert_eq!(summary.written.orders, accepted);
    // What was accepted is written, in order: the first events until the ring filled, plus the
    // one the writer may have taken off the ring before it stalled, which frees a slot for a
    // later event at whatever moment the scheduler lets it run.
    let refs: Vec<u64> = read_orders(&path).unwrap().iter().map(|r| r.order_ref).collect();
    assert_eq!(refs, kept);
    assert_eq!(&kept[..CAP], &(0..CAP as u64).collect::<Vec<_>>()[..]);
}

#[test]
fn finish_flushes_everything_recorded_before_it() {
    let dir = TempDir::new("finish");
    let path = dir.file();
    // A flush interval far longer than the test: only finish can commit these.
    let opts = JournalOptions { flush_interval: Duration::from_secs(3600), ..JournalOptions::default() };
    let (mut sink, journal) = Journal::open(&path, opts).unwrap();
    for i in 0..5_000 {
        assert!(sink.record(order(i)));
    }
    let summary = journal.finish().unwrap();
    assert_eq!(summary.written.orders, 5_000);
    assert_eq!(count_rows(&path).unwrap().orders, 5_000);
}

#[test]
fn dropping_the_journal_flushes_too() {
    let dir = TempDir::new("drop");
    let path = dir.file();
    let opts = JournalOptions { flush_interval: Duration::from_secs(3600), ..JournalOptions::default() };
    let (mut sink, journal) = Journal::open(&path, opts).unwrap();
    for i in 0..1_000 {
        assert!(sink.record(order(i)));
    }
    drop(journal);
    assert_eq!(count_rows(&path).unwrap().orders, 1_000);
    // The sink outlives the journal harmlessly: its events are no longer written.
    let _ = sink.record(order(1_000));
}

#[test]
fn a_running_journal_commits_within_the_flush_interval() {
    let dir = TempDir::new("interval");
    let path = dir.file();
    let opts = JournalOptions { flush_interval: Duration::from_millis(50), ..JournalOptions::default() };
    let (mut sink, journal) = Journal::open(&path, opts).unwrap();
    for i in 0..100 {
        assert!(sink.record(order(i)));
    }
    // Another reader sees the rows while the writer still runs (what a kill would leave).
    let deadline = Instant::now() + Duration::from_secs(10);
    while count_rows(&path).unwrap().orders < 100 {
        assert!(Instant::now() < deadline, "rows not committed while running");
        std::thread::sleep(Duration::from_millis(10));
    }
    journal.finish().unwrap();
}

#[test]
fn each_open_is_a_new_run_with_its_own_markets() {
    let dir = TempDir::new("runs");
    let path = dir.file();
    for (run, ticker) in [(1, "KX-FIRST"), (2, "KX-SECOND")] {
        let (mut sink, journal) = Journal::open(&path, JournalOptions::default()).unwrap();
        assert_eq!(journal.run(), run);
        journal.write_markets(&[(MarketId(0), ticker)]).unwrap();
        let ev = JournalEvent::Fault {
            ts_ns: 1,
            source: FaultSource::Ws,
            kind: "disconnect",
            market: Some(MarketId(0)),
            value: 1006,
        };
        assert!(sink.record(ev));
        assert_eq!(journal.finish().unwrap().run, run);
    }
    let faults = read_faults(&path).unwrap();
    let got: Vec<(i64, Option<&str>)> = faults.iter().map(|f| (f.run, f.ticker.as_deref())).collect();
    assert_eq!(got, [(1, Some("KX-FIRST")), (2, Some("KX-SECOND"))]);
}

#[test]
fn a_write_error_is_kept_and_reported_by_finish() {
    let dir = TempDir::new("error");
    let path = dir.file();
    let opts = JournalOptions { busy_timeout: Duration::from_millis(20), ..JournalOptions::default() };
    let (mut sink, journal) = Journal::open(&path, opts).unwrap();
    let lock = lock_file(&path);
    assert!(sink.record(order(0)));
    // The writer gives up on the lock after 20 ms and goes on; the event is lost, not retried.
    std::thread::sleep(Duration::from_millis(300));
    drop(lock);
    assert!(sink.record(order(1)));
    let err = journal.finish().unwrap_err();
    let JournalError::Write { lost, .. } = &err else { panic!("{err}") };
    assert_eq!(*lost, 1);
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()) && msg.contains("locked"), "{msg}");
    assert!(msg.contains("check free disk space"), "{msg}");
    // The thread kept going: the event after the lock was released is there.
    assert_eq!(read_orders(&path).unwrap().iter().map(|r| r.order_ref).collect::<Vec<_>>(), [1]);
}

#[test]
fn open_on_an_unwritable_path_says_what_to_do() {
    let dir = TempDir::new("unwritable");
    let path = dir.0.join("no-such-dir").join("journal.sqlite");
    let Err(err) = Journal::open(&path, JournalOptions::default()) else { panic!("opened {}", path.display()) };
    let msg = err.to_string();
    assert!(matches!(err, JournalError::Open { .. }), "{msg}");
    assert_eq!(
        msg,
        format!(
            "cannot open journal {}: unable to open database file: check the directory exists and is writable",
            path.display()
        )
    );
    let err = read_faults(&path).unwrap_err().to_string();
    assert!(err.contains("check the path names an existing journal file"), "{err}");
}

#[test]
fn record_allocates_nothing() {
    let dir = TempDir::new("alloc");
    let path = dir.file();
    let opts = JournalOptions { capacity: 1_024, ..JournalOptions::default() };
    let (mut sink, journal) = Journal::open(&path, opts).unwrap();
    let kinds = [
        order(0),
        JournalEvent::Fault {
            ts_ns: 1,
            source: FaultSource::Gateway,
            kind: "reconcile_resend",
            market: None,
            value: 2,
        },
        JournalEvent::OrderUpdate {
            ts_ns: 2,
            strategy: 0,
            order_ref: 1,
            market: MarketId(1),
            status: OrderStatus::Cancelled,
            reason: RejectReason::FokUnfilled,
            filled: Qty(0),
            remaining: Qty(0),
        },
        JournalEvent::Fill {
            ts_ns: 3,
            strategy: 0,
            order_ref: 1,
            market: MarketId(1),
            side: BookSide::Bid,
            yes_price: Price(4_200),
            qty: Qty(100),
            fee: Money(17_500),
            liquidity: Liquidity::Taker,
        },
        JournalEvent::Session { ts_ns: 4, kind: "connected", value: 0 },
    ];

    // The counter works: an allocation inside the armed window is seen.
    ALLOCS.store(0, Ordering::SeqCst);
    ARMED.with(|a| a.set(true));
    let v = std::hint::black_box(vec![1u8; 64]);
    ARMED.with(|a| a.set(false));
    drop(v);
    assert!(ALLOCS.load(Ordering::SeqCst) >= 1);

    // 200k records into a 1,024-slot ring while the writer is held off: both the queued and the
    // dropped path run.
    let lock = lock_file(&path);
    ALLOCS.store(0, Ordering::SeqCst);
    ARMED.with(|a| a.set(true));
    let mut queued = 0u64;
    for i in 0..200_000usize {
        queued += sink.record(std::hint::black_box(kinds[i % kinds.len()])) as u64;
    }
    ARMED.with(|a| a.set(false));
    drop(lock);
    assert_eq!(ALLOCS.load(Ordering::SeqCst), 0, "JournalSink::record allocated");
    assert!(queued >= 1_024 && sink.dropped() > 0, "queued {queued}, dropped {}", sink.dropped());
    let summary = journal.finish().unwrap();
    assert_eq!(summary.written.events() + summary.dropped, 200_000);
}

#[test]
fn every_sink_of_a_journal_is_written() {
    let dir = TempDir::new("sinks");
    let path = dir.file();
    let (mut feed, journal) = Journal::open(&path, JournalOptions::default()).unwrap();
    let mut gateway = journal.sink().unwrap();
    // two producers on two threads, as two pinned stages would be
    let t = std::thread::spawn(move || {
        for i in 0..1_000 {
            assert!(gateway.record(order(10_000 + i)));
        }
    });
    for i in 0..1_000 {
        assert!(feed.record(order(i)));
    }
    t.join().unwrap();
    let summary = journal.finish().unwrap();
    assert_eq!(summary.written.orders, 2_000);
    let refs: Vec<u64> = read_orders(&path).unwrap().iter().map(|o| o.order_ref).collect();
    // each sink's events keep their order; both sets are complete
    let first: Vec<u64> = refs.iter().copied().filter(|r| *r < 10_000).collect();
    let second: Vec<u64> = refs.iter().copied().filter(|r| *r >= 10_000).collect();
    assert_eq!(first, (0..1_000).collect::<Vec<_>>());
    assert_eq!(second, (10_000..11_000).collect::<Vec<_>>());
}
