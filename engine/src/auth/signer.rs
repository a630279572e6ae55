//! Pre-signed Kalshi auth headers: a background signer thread and lock-free header cells.
//!
//! Owns: the set of fixed signed paths ([`FixedPath`]), the [`SignedHeader`] value (timestamp +
//! base64 signature in a fixed array), the publication cell each path's header lives in
//! ([`HeaderCell`]), the `strike-signer` thread that refreshes them ([`BackgroundSigner`]),
//! signing at send time for paths with an order id ([`sign_now`]), and writing the three
//! `KALSHI-ACCESS-*` header lines ([`write_auth_headers`]).
//!
//! ## Why pre-sign
//! The signature covers `timestamp_ms + METHOD + path`, not the body (`kalshi-protocol.md`
//! §3.2), so the header for "create an order" is the same for every order sent in the same
//! millisecond. Signing costs ~242 µs (RSA-2048 PSS) or ~36.5 µs (Ed25519) on the dev VM; the
//! whole tick-to-trade path is ~7 µs. The signer thread re-signs every fixed path every
//! `refresh` (default [`DEFAULT_REFRESH`], 50 ms) with the current wall-clock time, so an order
//! copies a header at most `refresh` + one signing old. Kalshi documents no skew window for the
//! timestamp; the gateway records [`header_age_ns`] with each order so the interval can be tuned
//! against real rejects (and the header is re-signed on every reconnect anyway).
//!
//! The thread is named `strike-signer` and is not pinned: it sleeps between rounds and must not
//! take a core from the pinned pipeline threads.
//!
//! ## The publication cell: a seqlock latch
//! One writer (the signer thread), any number of readers (gateway, WebSocket client), no locks,
//! no allocation. A plain seqlock makes readers spin while a write is in progress; on a 2-vCPU
//! box the unpinned writer can be preempted mid-write for a whole scheduler slice, and the order
//! path would spin with it. So the cell is a *latch* (two copies, as Linux's
//! `raw_write_seqcount_latch`): the sequence number's low bit tells readers which copy is stable,
//! and the writer only ever modifies the other one.
//!
//! The header is stored as 46 `AtomicU64` words per copy and copied with relaxed atomic loads and
//! stores (H.-J. Boehm, "Can seqlocks get along with programming language memory models?",
//! 2012), so a racing read is never a data race (no UB, unlike `UnsafeCell` + `read_volatile`).
//!
//! Memory ordering (single writer; `s` = sequence before the publish, even):
//! - writer: `seq = s+1` (Release) → `fence(Release)` → write copy 0 (Relaxed words) →
//!   `seq = s+2` (Release) → `fence(Release)` → write copy 1 (Relaxed words).
//! - reader: `s1 = seq` (Acquire) → copy `s1 & 1` (Relaxed words) → `fence(Acquire)` →
//!   `s2 = seq` (Relaxed); accept iff `s1 == s2`, else retry.
//!
//! Why that is enough: each `seq` store is Release, so a reader that acquires it sees the copy
//! it points to fully written (copy 1 by the previous publish, copy 0 by this one). If any word
//! the reader copied came from a store issued after one of the writer's release fences, the
//! reader's acquire fence synchronizes with that fence, so the `seq` store before it is visible to
//! the reader's second load: `s2 != s1` and the torn copy is discarded. A reader retries only if
//! the writer published during its ~20 ns copy (once per `refresh` per path), and never waits for
//! a stalled writer: the copy it is pointed to is not being written.

use super::keys::{signing_message, write_u64_dec, SigningKey};
use super::AuthError;
use std::fmt;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Capacity of a header's base64 signature, bytes: an RSA-2048 signature (256 bytes) is 344
/// base64 characters; an Ed25519 one (64 bytes) is 88.
pub const SIG_B64_CAP: usize = 344;

/// The default interval between two signing rounds of the [`BackgroundSigner`] (50 ms).
pub const DEFAULT_REFRESH: Duration = Duration::from_millis(50);

/// The shortest refresh interval accepted (1 ms: timestamps have ms resolution).
pub const MIN_REFRESH: Duration = Duration::from_millis(1);

/// Capacity of the message buffer the signer builds `timestamp_ms + METHOD + path` in, bytes.
const MSG_CAP: usize = 512;

/// The requests whose path is fixed, so their headers can be signed ahead of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FixedPath {
    /// `GET /trade-api/ws/v2`: the WebSocket upgrade (re-signed on every connect).
    WsHandshake = 0,
    /// `POST /trade-api/v2/portfolio/events/orders`: create one order (V2).
    CreateOrder = 1,
    /// `POST /trade-api/v2/portfolio/events/orders/batched`: create a batch of orders.
    BatchCreate = 2,
    /// `DELETE /trade-api/v2/portfolio/events/orders/batched`: cancel a batch of orders.
    BatchCancel = 3,
}

impl FixedPath {
    /// Number of fixed paths.
    pub const COUNT: usize = 4;

    /// Every fixed path, in index order.
    pub const ALL: [FixedPath; FixedPath::COUNT] =
        [FixedPath::WsHandshake, FixedPath::CreateOrder, FixedPath::BatchCreate, FixedPath::BatchCancel];

    /// The HTTP method, upper case.
    pub const fn method(self) -> &'static str {
        match self {
            FixedPath::WsHandshake => "GET",
            FixedPath::CreateOrder | FixedPath::BatchCreate => "POST",
            FixedPath::BatchCancel => "DELETE",
        }
    }

    /// The signed path (from `/trade-api`, no host, no query).
    pub const fn path(self) -> &'static str {
        match self {
            FixedPath::WsHandshake => "/trade-api/ws/v2",
            FixedPath::CreateOrder => "/trade-api/v2/portfolio/events/orders",
            FixedPath::BatchCreate | FixedPath::BatchCancel => "/trade-api/v2/portfolio/events/orders/batched",
        }
    }

    /// The index of this path in [`FixedPath::ALL`] (0..[`FixedPath::COUNT`]).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A signed timestamp: the values of `KALSHI-ACCESS-TIMESTAMP` and `KALSHI-ACCESS-SIGNATURE`
/// for one method + path. `Copy`, 368 bytes, no heap.
///
/// `Debug` shows the times and the signature length, not the signature (a valid signature is a
/// replayable credential until the exchange's skew window, undocumented, closes).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct SignedHeader {
    /// The signed timestamp, unix time in ms (the `KALSHI-ACCESS-TIMESTAMP` value).
    pub ts_ms: u64,
    /// When the signature was finished, unix time in ns.
    signed_at_ns: u64,
    /// Length of the base64 text in `sig_b64`, bytes (1..=[`SIG_B64_CAP`]).
    sig_len: u16,
    /// Padded standard base64 of the signature; bytes past `sig_len` are zero.
    sig_b64: [u8; SIG_B64_CAP],
    /// Explicit tail padding, always zero: every byte of the struct is initialized, so it can be
    /// copied as `u64` words ([`HeaderCell`]).
    _pad: [u8; 6],
}

/// The header's size in `u64` words.
const WORDS: usize = 46;
const _: () = {
    assert!(std::mem::size_of::<SignedHeader>() == WORDS * 8);
    assert!(std::mem::align_of::<SignedHeader>() == 8);
    // No implicit padding: the fields tile the struct exactly.
    assert!(std::mem::offset_of!(SignedHeader, signed_at_ns) == 8);
    assert!(std::mem::offset_of!(SignedHeader, sig_len) == 16);
    assert!(std::mem::offset_of!(SignedHeader, sig_b64) == 18);
    assert!(std::mem::offset_of!(SignedHeader, _pad) == 18 + SIG_B64_CAP);
    assert!(18 + SIG_B64_CAP + 6 == WORDS * 8);
};

impl fmt::Debug for SignedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedHeader")
            .field("ts_ms", &self.ts_ms)
            .field("signed_at_ns", &self.signed_at_ns)
            .field("sig_b64_len", &self.sig_len)
            .finish_non_exhaustive()
    }
}

impl SignedHeader {
    /// A header from its parts: `ts_ms` (unix ms, the signed timestamp), `signed_at_ns` (unix ns,
    /// when signed) and the base64 signature text (1..=[`SIG_B64_CAP`] bytes). For tests and for
    /// headers signed elsewhere; the signer builds its own.
    pub fn from_parts(ts_ms: u64, signed_at_ns: u64, sig_b64: &[u8]) -> Result<Self, AuthError> {
        if sig_b64.is_empty() || sig_b64.len() > SIG_B64_CAP {
            return Err(AuthError::InvalidRequest { reason: "a header's base64 signature must be 1 to 344 bytes" });
        }
        let mut h = SignedHeader {
            ts_ms,
            signed_at_ns,
            sig_len: sig_b64.len() as u16,
            sig_b64: [0; SIG_B64_CAP],
            _pad: [0; 6],
        };
        h.sig_b64[..sig_b64.len()].copy_from_slice(sig_b64);
        Ok(h)
    }

    /// The base64 signature text (the `KALSHI-ACCESS-SIGNATURE` value), bytes: 344 for RSA-2048,
    /// 88 for Ed25519.
    #[inline]
    pub fn signature_b64(&self) -> &[u8] {
        &self.sig_b64[..(self.sig_len as usize).min(SIG_B64_CAP)]
    }

    /// The base64 signature text as `&str` (base64 is ASCII; empty if it somehow is not).
    /// Checks UTF-8, so the byte form [`SignedHeader::signature_b64`] is cheaper on the hot path.
    pub fn signature_b64_str(&self) -> &str {
        std::str::from_utf8(self.signature_b64()).unwrap_or("")
    }

    /// When the signature was finished, unix time in ns.
    #[inline]
    pub fn signed_at_ns(&self) -> u64 {
        self.signed_at_ns
    }

    #[inline]
    fn to_words(self) -> [u64; WORDS] {
        // SAFETY: same size (asserted above); every byte of a SignedHeader is initialized (the
        // fields tile it, asserted above), so its bytes are a valid [u64; WORDS].
        unsafe { std::mem::transmute::<SignedHeader, [u64; WORDS]>(self) }
    }

    #[inline]
    fn from_words(w: [u64; WORDS]) -> SignedHeader {
        // SAFETY: same size; every field is an integer or byte array, so every bit pattern is a
        // valid SignedHeader (`signature_b64` clamps `sig_len`).
        unsafe { std::mem::transmute::<[u64; WORDS], SignedHeader>(w) }
    }
}

/// The age of a header's signed timestamp as the exchange will judge it, ns:
/// `now_unix_ns − ts_ms × 10⁶`, 0 if the timestamp is in the future. `now_unix_ns` is unix time
/// in ns ([`unix_now_ns`], ~23 ns a read). Because `ts_ms` is floored to the ms, this is up to
/// 1 ms more than the time since signing ([`SignedHeader::signed_at_ns`]).
#[inline]
pub fn header_age_ns(h: &SignedHeader, now_unix_ns: u64) -> u64 {
    now_unix_ns.saturating_sub(h.ts_ms.saturating_mul(1_000_000))
}

/// The wall clock, unix time in ns (`SystemTime`, vDSO, ~23 ns on the dev VM; 0 before 1970).
#[inline]
pub fn unix_now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Signs `ts_ms + method + path` (query stripped) now and returns the header. For requests
/// whose path carries an order id (amend, decrease, single cancel), which cannot be pre-signed;
/// costs one signature (~242 µs RSA-2048, ~36.5 µs Ed25519 on the dev VM) on the calling
/// thread. `ts_ms` is unix time in ms, normally `unix_now_ns() / 1_000_000`.
pub fn sign_now(key: &SigningKey, method: &str, path: &str, ts_ms: u64) -> Result<SignedHeader, AuthError> {
    let mut msg = [0u8; MSG_CAP];
    let n = signing_message(ts_ms, method, path, &mut msg)?;
    let mut b64 = [0u8; SIG_B64_CAP];
    let len = key.sign_base64(&msg[..n], &mut b64)?;
    SignedHeader::from_parts(ts_ms, unix_now_ns(), &b64[..len])
}

const KEY_LINE: &[u8] = b"KALSHI-ACCESS-KEY: ";
const TS_LINE: &[u8] = b"KALSHI-ACCESS-TIMESTAMP: ";
const SIG_LINE: &[u8] = b"KALSHI-ACCESS-SIGNATURE: ";

/// Writes the three auth header lines, each ending in CRLF, into `out`; returns the bytes
/// written:
///
/// ```text
/// KALSHI-ACCESS-KEY: <key_id>\r\n
/// KALSHI-ACCESS-TIMESTAMP: <h.ts_ms>\r\n
/// KALSHI-ACCESS-SIGNATURE: <h's base64 signature>\r\n
/// ```
///
/// Allocation-free, no formatting machinery (~480 bytes copied for RSA). `key_id` must be
/// non-empty printable ASCII without spaces ([`AuthError::InvalidKeyId`], so a bad config cannot
/// inject header lines); [`AuthError::BufferTooSmall`] if `out` is short (nothing useful is
/// written then).
pub fn write_auth_headers(key_id: &str, h: &SignedHeader, out: &mut [u8]) -> Result<usize, AuthError> {
    let id = key_id.as_bytes();
    if id.is_empty() || !id.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(AuthError::InvalidKeyId);
    }
    let mut digits = [0u8; 20];
    let ts = write_u64_dec(h.ts_ms, &mut digits);
    let sig = h.signature_b64();
    let needed = KEY_LINE.len() + id.len() + TS_LINE.len() + ts.len() + SIG_LINE.len() + sig.len() + 6;
    if out.len() < needed {
        return Err(AuthError::BufferTooSmall { what: "the auth header lines", needed, capacity: out.len() });
    }
    let mut at = 0;
    for part in [KEY_LINE, id, b"\r\n", TS_LINE, ts, b"\r\n", SIG_LINE, sig, b"\r\n"] {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok(at)
}

/// A lock-free single-writer publication cell for one [`SignedHeader`] (a seqlock latch; see
/// the module docs for the protocol and its memory ordering). Reads never block, never
/// allocate, and never return a torn header. 64-byte aligned so two cells never share a cache
/// line.
#[repr(align(64))]
pub struct HeaderCell {
    /// Publication sequence: +2 per publish; its low bit is the copy readers use.
    seq: AtomicU64,
    /// Two copies of the header, as words.
    copies: [[AtomicU64; WORDS]; 2],
}

impl fmt::Debug for HeaderCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderCell").field("publishes", &self.publishes()).finish_non_exhaustive()
    }
}

impl HeaderCell {
    /// A cell holding `h`.
    pub fn new(h: &SignedHeader) -> Self {
        let w = h.to_words();
        HeaderCell { seq: AtomicU64::new(0), copies: [0, 1].map(|_| w.map(AtomicU64::new)) }
    }

    /// Number of publishes since the cell was made.
    pub fn publishes(&self) -> u64 {
        self.seq.load(Ordering::Relaxed) / 2
    }

    /// The latest header: a copy of 368 bytes, retried (rarely) if a publish overlapped it.
    /// Lock-free, allocation-free, ~20 ns.
    #[inline]
    pub fn read(&self) -> SignedHeader {
        let mut w = [0u64; WORDS];
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            let copy = &self.copies[(s1 & 1) as usize];
            for (dst, src) in w.iter_mut().zip(copy.iter()) {
                *dst = src.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return SignedHeader::from_words(w);
            }
            std::hint::spin_loop();
        }
    }

    /// Publishes `h`. Single writer only: callers (the signer thread) must not publish to one
    /// cell from two threads at once, which is why this is private to the module.
    fn publish(&self, h: &SignedHeader) {
        let w = h.to_words();
        self.write_half(&w);
        self.write_half(&w);
    }

    /// One half of a publish: move readers to the other copy, then overwrite the copy they left.
    #[inline]
    fn write_half(&self, w: &[u64; WORDS]) {
        let s = self.seq.load(Ordering::Relaxed).wrapping_add(1);
        self.seq.store(s, Ordering::Release);
        fence(Ordering::Release);
        for (dst, &src) in self.copies[((s & 1) ^ 1) as usize].iter().zip(w.iter()) {
            dst.store(src, Ordering::Relaxed);
        }
    }
}

/// What the signer thread and the readers share.
struct Shared {
    cells: [HeaderCell; FixedPath::COUNT],
    stop: AtomicBool,
    rounds: AtomicU64,
    sign_failures: AtomicU64,
}

impl Shared {
    #[inline]
    fn latest(&self, p: FixedPath) -> SignedHeader {
        self.cells[p.index()].read()
    }
}

/// Keeps a fresh signed header for every [`FixedPath`] on a background thread
/// (`strike-signer`, not pinned) so an order never waits on a signature.
///
/// [`BackgroundSigner::spawn`] signs every path once on the calling thread before it returns,
/// so [`BackgroundSigner::latest`] always has a header. Dropping the signer stops the thread
/// and joins it (within one signing round: it sleeps with `park_timeout` and is unparked).
pub struct BackgroundSigner {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    refresh: Duration,
}

impl fmt::Debug for BackgroundSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundSigner")
            .field("refresh", &self.refresh)
            .field("rounds", &self.rounds())
            .field("sign_failures", &self.sign_failures())
            .finish_non_exhaustive()
    }
}

impl BackgroundSigner {
    /// Signs every fixed path now (4 signatures on the calling thread: ~1 ms RSA-2048, ~0.15 ms
    /// Ed25519), then starts the `strike-signer` thread, which re-signs them all every `refresh`
    /// ([`DEFAULT_REFRESH`] = 50 ms is a good start; at least [`MIN_REFRESH`] = 1 ms).
    ///
    /// Errors: [`AuthError::InvalidRefresh`], a signing error from the first round, or
    /// [`AuthError::SignerSpawn`]. A signing error in a later round is counted
    /// ([`BackgroundSigner::sign_failures`]) and the previous header stays published (its age
    /// grows, which the gateway sees in [`header_age_ns`]).
    pub fn spawn(key: Arc<SigningKey>, refresh: Duration) -> Result<Self, AuthError> {
        if refresh < MIN_REFRESH {
            return Err(AuthError::InvalidRefresh { refresh_us: refresh.as_micros() });
        }
        let mut first = [None; FixedPath::COUNT];
        for p in FixedPath::ALL {
            first[p.index()] = Some(sign_fixed(&key, p)?);
        }
        let cells = first.map(|h| HeaderCell::new(&h.expect("every fixed path was signed above")));
        let shared = Arc::new(Shared {
            cells,
            stop: AtomicBool::new(false),
            rounds: AtomicU64::new(0),
            sign_failures: AtomicU64::new(0),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("strike-signer".into())
            .spawn(move || run(&thread_shared, &key, refresh))
            .map_err(AuthError::SignerSpawn)?;
        Ok(BackgroundSigner { shared, thread: Some(thread), refresh })
    }

    /// The latest signed header for `p` (a 368-byte copy; lock-free, allocation-free, ~20 ns).
    #[inline]
    pub fn latest(&self, p: FixedPath) -> SignedHeader {
        self.shared.latest(p)
    }

    /// A cloneable read handle for another thread (the gateway, the WebSocket client).
    pub fn reader(&self) -> HeaderReader {
        HeaderReader { shared: Arc::clone(&self.shared) }
    }

    /// The interval between signing rounds.
    pub fn refresh(&self) -> Duration {
        self.refresh
    }

    /// Signing rounds completed by the thread (the first round, made by `spawn`, not counted).
    pub fn rounds(&self) -> u64 {
        self.shared.rounds.load(Ordering::Relaxed)
    }

    /// Signatures that failed on the thread since `spawn` (each leaves the old header in place).
    pub fn sign_failures(&self) -> u64 {
        self.shared.sign_failures.load(Ordering::Relaxed)
    }
}

impl Drop for BackgroundSigner {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            // A panic on the signer thread has already been reported by the panic hook.
            let _ = t.join();
        }
    }
}

/// A read handle on a [`BackgroundSigner`]'s headers, for another thread. Keeps the cells alive
/// (not the thread: headers stop refreshing once the signer is dropped, and their age shows it).
#[derive(Clone)]
pub struct HeaderReader {
    shared: Arc<Shared>,
}

impl fmt::Debug for HeaderReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderReader").finish_non_exhaustive()
    }
}

impl HeaderReader {
    /// The latest signed header for `p` (a 368-byte copy; lock-free, allocation-free, ~20 ns).
    #[inline]
    pub fn latest(&self, p: FixedPath) -> SignedHeader {
        self.shared.latest(p)
    }
}

/// Signs `p` with the current wall-clock time.
fn sign_fixed(key: &SigningKey, p: FixedPath) -> Result<SignedHeader, AuthError> {
    sign_now(key, p.method(), p.path(), unix_now_ns() / 1_000_000)
}

/// The `strike-signer` thread: every `refresh`, sign and publish each fixed path.
fn run(shared: &Shared, key: &SigningKey, refresh: Duration) {
    let mut next = Instant::now() + refresh;
    loop {
        loop {
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::park_timeout(next - now);
        }
        for p in FixedPath::ALL {
            // Each path takes its own timestamp, so the last one signed is not a round old.
            match sign_fixed(key, p) {
                Ok(h) => shared.cells[p.index()].publish(&h),
                Err(_) => {
                    shared.sign_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        shared.rounds.fetch_add(1, Ordering::Relaxed);
        next += refresh;
        let now = Instant::now();
        if next <= now {
            // Fell behind (descheduled, or signing slower than `refresh`): no burst of catch-up
            // rounds, just the next one a full interval from now.
            next = now + refresh;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(v: u8) -> SignedHeader {
        SignedHeader::from_words([u64::from_ne_bytes([v; 8]); WORDS])
    }

    #[test]
    fn fixed_paths_are_kalshis() {
        let got: Vec<(&str, &str)> = FixedPath::ALL.iter().map(|p| (p.method(), p.path())).collect();
        assert_eq!(
            got,
            [
                ("GET", "/trade-api/ws/v2"),
                ("POST", "/trade-api/v2/portfolio/events/orders"),
                ("POST", "/trade-api/v2/portfolio/events/orders/batched"),
                ("DELETE", "/trade-api/v2/portfolio/events/orders/batched"),
            ]
        );
        for (i, p) in FixedPath::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
        }
    }

    #[test]
    fn header_words_round_trip() {
        let h = SignedHeader::from_parts(1703123456789, 1_703_123_456_789_123_456, b"QUJD").unwrap();
        assert_eq!(SignedHeader::from_words(h.to_words()), h);
        assert_eq!(h.signature_b64(), b"QUJD");
        assert_eq!(h.signature_b64_str(), "QUJD");
        assert!(SignedHeader::from_parts(1, 1, b"").is_err());
        assert!(SignedHeader::from_parts(1, 1, &[b'A'; SIG_B64_CAP + 1]).is_err());
        assert_eq!(SignedHeader::from_parts(1, 1, &[b'A'; SIG_B64_CAP]).unwrap().signature_b64().len(), SIG_B64_CAP);
        let dbg = format!("{h:?}");
        assert!(!dbg.contains("QUJD"), "{dbg}");
    }

    #[test]
    fn age_is_from_the_signed_timestamp() {
        let h = SignedHeader::from_parts(1_000, 1_000_400_000, b"QQ==").unwrap();
        assert_eq!(header_age_ns(&h, 1_002_500_000), 2_500_000);
        assert_eq!(header_age_ns(&h, 999_000_000), 0);
    }

    #[test]
    fn auth_headers_exact_text() {
        let sig = [b'x'; 88];
        let h = SignedHeader::from_parts(1703123456789, 0, &sig).unwrap();
        let mut out = [0u8; 512];
        let n = write_auth_headers("a952bcbe-ec3b-4b5b-b8f9-11dae589608c", &h, &mut out).unwrap();
        let want = format!(
            "KALSHI-ACCESS-KEY: a952bcbe-ec3b-4b5b-b8f9-11dae589608c\r\n\
             KALSHI-ACCESS-TIMESTAMP: 1703123456789\r\n\
             KALSHI-ACCESS-SIGNATURE: {}\r\n",
            "x".repeat(88)
        );
        assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), want);

        let mut exact = vec![0u8; want.len()];
        assert_eq!(write_auth_headers("a952bcbe-ec3b-4b5b-b8f9-11dae589608c", &h, &mut exact).unwrap(), want.len());
        let mut short = vec![0u8; want.len() - 1];
        assert!(matches!(
            write_auth_headers("a952bcbe-ec3b-4b5b-b8f9-11dae589608c", &h, &mut short),
            Err(AuthError::BufferTooSmall { .. })
        ));
        for bad in ["", "id\r\nX-Evil: 1", "has space", "tab\tid"] {
            assert!(matches!(write_auth_headers(bad, &h, &mut out), Err(AuthError::InvalidKeyId)), "{bad:?}");
        }
    }

    #[test]
    fn latch_reader_never_sees_a_torn_header() {
        const READS_PER_READER: usize = 500_000;
        let cell = Arc::new(HeaderCell::new(&uniform(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (cell, stop) = (Arc::clone(&cell), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut v = 0u8;
                while !stop.load(Ordering::Relaxed) {
                    // Every byte of each header is the same value; a torn read would mix values.
                    v = v.wrapping_add(1);
                    cell.publish(&uniform(v));
                }
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let cell = Arc::clone(&cell);
                std::thread::spawn(move || {
                    let mut changes = 0u64;
                    let mut last = 0u8;
                    for _ in 0..READS_PER_READER {
                        let w = cell.read().to_words();
                        let v = w[0] as u8;
                        let word = u64::from_ne_bytes([v; 8]);
                        assert!(w.iter().all(|&x| x == word), "torn header read: {w:x?}");
                        changes += u64::from(v != last);
                        last = v;
                    }
                    changes
                })
            })
            .collect();
        let changes: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        // The readers really raced the writer: they saw the value move many times.
        assert!(changes > 0, "readers never saw a publish");
        assert!(cell.publishes() > 0);
    }

    #[test]
    fn latch_reader_does_not_wait_for_a_stalled_writer() {
        let cell = HeaderCell::new(&uniform(1));
        cell.publish(&uniform(2));
        // Simulate a writer preempted halfway through a publish: readers are moved to copy 1
        // and copy 0 is half overwritten.
        let s = cell.seq.load(Ordering::Relaxed) + 1;
        cell.seq.store(s, Ordering::Release);
        for w in &cell.copies[0][..WORDS / 2] {
            w.store(u64::from_ne_bytes([3; 8]), Ordering::Relaxed);
        }
        assert_eq!(cell.read(), uniform(2));
        // The writer resumes and finishes.
        cell.write_half(&uniform(3).to_words());
        cell.write_half(&uniform(3).to_words());
        assert_eq!(cell.read(), uniform(3));
    }

    #[test]
    fn refresh_below_one_ms_is_refused() {
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let key = Arc::new(SigningKey::Ed25519(ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()));
        let e = BackgroundSigner::spawn(key, Duration::from_micros(999)).unwrap_err();
        assert!(matches!(e, AuthError::InvalidRefresh { refresh_us: 999 }), "{e}");
    }

    #[test]
    fn drop_stops_the_thread_promptly() {
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let key = Arc::new(SigningKey::Ed25519(ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()));
        let signer = BackgroundSigner::spawn(key, Duration::from_secs(3600)).unwrap();
        let reader = signer.reader();
        let t0 = Instant::now();
        drop(signer);
        assert!(t0.elapsed() < Duration::from_secs(5), "drop waited for the refresh interval");
        // The cells outlive the signer through a reader.
        assert_eq!(reader.latest(FixedPath::CreateOrder).signature_b64().len(), 88);
    }
}
