//! Recordings: a market-metadata [`Header`] and the verbatim Kalshi WebSocket frames with the time
//! each was received.
//!
//! ## The project's format (`*.jsonl.zst`)
//! zstd-compressed JSON lines. Line 1 is the [`Header`]:
//! `{"strike_recording":1,"source":"...","yes_price_scale":true,"markets":[...],"events":[...]}`.
//! Every further line is one [`Frame`]: `{"recv_ns":1786085188416000000,"frame":{...}}` where
//! `frame` is the exact Kalshi message and `recv_ns` the receive time in unix nanoseconds.
//! `yes_price_scale` says how NO-side levels are priced: `true` when recorded with
//! `use_yes_price: true` (NO levels already on the YES scale), `false` for Kalshi's legacy
//! default (NO levels at NO prices; `kalshi-protocol.md` §2.3).
//!
//! ## Foreign formats read by [`Recording::read`]
//! - `ws_orderbook_stream.json` (`ws_prod_mlb_wnba_2026-08-07`): one JSON object with `tickers`
//!   and `frames: [{received_ms, frame}]`; NO-price scale.
//! - `*.jsonl` / `*.jsonl.gz` of bare Kalshi frames, one per line, blank lines allowed
//!   (`ws_demo_mm_session_2026-07-01/session.jsonl.gz`); NO-price scale; receive times are taken
//!   from each frame's `ts_ms` where present, else the previous frame's time plus 1 µs.
//!
//! Readers build the header's market list from the tickers seen when the file carries no
//! metadata. Reading is a cold path: everything is loaded into memory before replay starts.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Version written in [`Header::strike_recording`].
pub const FORMAT_VERSION: u32 = 1;

/// One `price_ranges` band, dollar strings as Kalshi sends them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRange {
    /// Band start (`"0.0000"`).
    pub start: String,
    /// Band end, inclusive (`"1.0000"`).
    pub end: String,
    /// Step (`"0.0100"`).
    pub step: String,
}

/// Metadata of one event (Kalshi `GET /events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EventRecord {
    /// Event ticker.
    pub event_ticker: String,
    /// Series ticker.
    #[serde(default)]
    pub series_ticker: String,
    /// At most one market of the event resolves YES.
    #[serde(default)]
    pub mutually_exclusive: bool,
    /// Settled value of the underlying where known (e.g. `"91.00"` °F), as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_value: Option<String>,
}

/// Metadata of one market (a subset of Kalshi's Market object, `kalshi-protocol.md` §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MarketRecord {
    /// Market ticker.
    pub ticker: String,
    /// Event ticker ("" when unknown).
    #[serde(default)]
    pub event_ticker: String,
    /// Series ticker ("" when unknown).
    #[serde(default)]
    pub series_ticker: String,
    /// Kalshi `strike_type` (`greater`, `between`, `less`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strike_type: Option<String>,
    /// `floor_strike` as decimal text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_strike: Option<String>,
    /// `cap_strike` as decimal text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_strike: Option<String>,
    /// `yes_sub_title` (e.g. `"84° to 85°"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yes_sub_title: Option<String>,
    /// `price_level_structure` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_level_structure: Option<String>,
    /// `price_ranges` bands; the source of truth for the grid. Empty = from the label, else
    /// `linear_cent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub price_ranges: Vec<PriceRange>,
    /// Series `fee_type` (`quadratic`, ...); `None` = `quadratic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_type: Option<String>,
    /// `fee_multiplier` as decimal text; `None` = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_multiplier: Option<String>,
    /// Open time, unix ms (0 = unknown).
    #[serde(default)]
    pub open_ts_ms: i64,
    /// Close time, unix ms (0 = unknown).
    #[serde(default)]
    pub close_ts_ms: i64,
    /// Exchange shard.
    #[serde(default)]
    pub exchange_index: u8,
    /// Settlement result `"yes"` / `"no"`, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// Line 1 of a recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Format version, [`FORMAT_VERSION`].
    pub strike_recording: u32,
    /// Where the frames came from (free text).
    #[serde(default)]
    pub source: String,
    /// True when NO-side levels are on the YES scale (`use_yes_price: true`).
    pub yes_price_scale: bool,
    /// Every market the frames mention.
    #[serde(default)]
    pub markets: Vec<MarketRecord>,
    /// Events of those markets, where known.
    #[serde(default)]
    pub events: Vec<EventRecord>,
}

/// One received WebSocket frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Receive time, unix nanoseconds.
    pub recv_ns: u64,
    /// The exact Kalshi message text.
    pub text: String,
}

/// A whole recording in memory.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Recording {
    /// Market metadata and price scale.
    pub header: Header,
    /// Frames in receive order.
    pub frames: Vec<Frame>,
}

/// Why a recording could not be read or written. Always names the file, and the line where one
/// applies.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The content is not a recording this reader understands.
    #[error("{path}:{line}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when not line-based).
        line: usize,
        /// What is wrong and what was expected.
        msg: String,
    },
}

impl RecordingError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        RecordingError::Io { path: path.to_path_buf(), source }
    }
    fn format(path: &Path, line: usize, msg: impl Into<String>) -> Self {
        RecordingError::Format { path: path.to_path_buf(), line, msg: msg.into() }
    }
}

#[derive(Serialize, Deserialize)]
struct FrameLine<'a> {
    recv_ns: u64,
    #[serde(borrow)]
    frame: &'a serde_json::value::RawValue,
}

impl Recording {
    /// Reads a recording in any supported format, chosen by file name: `*.jsonl.zst` (the
    /// project's format), `*.json` (the prod capture object), `*.jsonl` / `*.jsonl.gz` (bare
    /// frames).
    pub fn read(path: &Path) -> Result<Recording, RecordingError> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".jsonl.zst") || name.ends_with(".zst") {
            Self::read_strike(path)
        } else if name.ends_with(".jsonl.gz") || name.ends_with(".jsonl") {
            Self::read_bare_frames(path)
        } else if name.ends_with(".json") {
            Self::read_capture_object(path)
        } else {
            Err(RecordingError::format(
                path,
                0,
                "unknown recording type: expected *.jsonl.zst (Strike), *.json (capture object) or *.jsonl[.gz] (bare Kalshi frames)",
            ))
        }
    }

    /// Reads the project's `*.jsonl.zst` format.
    pub fn read_strike(path: &Path) -> Result<Recording, RecordingError> {
        let f = std::fs::File::open(path).map_err(|e| RecordingError::io(path, e))?;
        let mut dec = zstd::stream::read::Decoder::new(f).map_err(|e| RecordingError::io(path, e))?;
        // A recorder killed mid-write leaves an unfinished zstd frame and maybe a partial last
        // line: everything decoded before that point is kept (`StreamWriter` flushes every
        // second, so a kill loses at most the last second).
        let mut text = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            match dec.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break, // truncated tail
                Err(e) => return Err(RecordingError::io(path, e)),
            }
        }
        let text = String::from_utf8_lossy(&text);
        let mut lines = text.split('\n').enumerate().peekable();
        let first = match lines.next() {
            Some((_, l)) if !l.trim().is_empty() => l,
            _ => return Err(RecordingError::format(path, 1, "empty recording: the header line is missing")),
        };
        let header: Header =
            serde_json::from_str(first).map_err(|e| RecordingError::format(path, 1, format!("bad header: {e}")))?;
        if header.strike_recording != FORMAT_VERSION {
            return Err(RecordingError::format(
                path,
                1,
                format!(
                    "recording format version {} is not supported (expected {FORMAT_VERSION})",
                    header.strike_recording
                ),
            ));
        }
        let mut frames = Vec::new();
        while let Some((i, line)) = lines.next() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<FrameLine<'_>>(line) {
                Ok(fl) => frames.push(Frame { recv_ns: fl.recv_ns, text: fl.frame.get().to_string() }),
                // only the very last line may be cut short
                Err(_) if lines.peek().is_none_or(|(_, rest)| rest.trim().is_empty()) => break,
                Err(e) => return Err(RecordingError::format(path, i + 1, format!("bad frame line: {e}"))),
            }
        }
        Ok(Recording { header, frames })
    }

    /// Writes the project's `*.jsonl.zst` format (zstd level 9).
    pub fn write_strike(&self, path: &Path) -> Result<(), RecordingError> {
        let f = std::fs::File::create(path).map_err(|e| RecordingError::io(path, e))?;
        let mut enc = zstd::stream::write::Encoder::new(f, 9).map_err(|e| RecordingError::io(path, e))?;
        let header = serde_json::to_string(&self.header).map_err(|e| RecordingError::format(path, 1, e.to_string()))?;
        let io = |e| RecordingError::io(path, e);
        enc.write_all(header.as_bytes()).map_err(io)?;
        enc.write_all(b"\n").map_err(io)?;
        for (i, fr) in self.frames.iter().enumerate() {
            let raw = serde_json::value::RawValue::from_string(fr.text.clone())
                .map_err(|e| RecordingError::format(path, i + 2, format!("frame is not JSON: {e}")))?;
            let line = serde_json::to_string(&FrameLine { recv_ns: fr.recv_ns, frame: &raw })
                .map_err(|e| RecordingError::format(path, i + 2, e.to_string()))?;
            enc.write_all(line.as_bytes()).map_err(io)?;
            enc.write_all(b"\n").map_err(io)?;
        }
        enc.finish().map_err(io)?;
        Ok(())
    }

    /// Reads the `ws_orderbook_stream.json` capture object. Implemented in the readers below.
    pub fn read_capture_object(path: &Path) -> Result<Recording, RecordingError> {
        readers::capture_object(path)
    }

    /// Reads bare Kalshi frames, one per line (`*.jsonl`, `*.jsonl.gz`).
    pub fn read_bare_frames(path: &Path) -> Result<Recording, RecordingError> {
        readers::bare_frames(path)
    }
}

/// Parses one page of Kalshi's `GET /markets` answer (`{"markets":[Market...],"cursor":"..."}`)
/// into market records (every field that maps cleanly: event and series tickers, strike type and
/// strikes, sub-title, price level structure and `price_ranges`, open/close times, shard,
/// result) and the cursor of the next page (`None` on the last page).
pub fn parse_markets_page(text: &str) -> Result<(Vec<MarketRecord>, Option<String>), String> {
    readers::markets_page(text)
}

/// When a [`StreamWriter`] starts a new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// After this many uncompressed bytes (0 = never).
    pub max_bytes: u64,
    /// After this long (zero = never).
    pub max_age: std::time::Duration,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation { max_bytes: 0, max_age: std::time::Duration::ZERO }
    }
}

/// How long a new file waits for the snapshots of its markets (and the previous file stays open
/// for the handover) before the writer stops waiting: a snapshot that never comes must not stop
/// rotation for good. 10 s.
pub const ROTATION_SNAPSHOT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Writes a recording frame by frame as it is received (`engine record`).
///
/// Each file is a complete recording in the project's format: the header line, then one
/// `{"recv_ns":N,"frame":{...}}` line per frame, zstd-compressed. [`StreamWriter::tick`] flushes
/// the compressor once a second, so a killed recorder loses at most the last second; rotation
/// starts `BASE.1.jsonl.zst`, `BASE.2.jsonl.zst`, … each with the same header. A frame that is
/// not valid JSON is skipped and counted (it would make the file unreadable).
///
/// ## Every file replays on its own
/// A rotated file must not start in the middle of a book: it has to begin with a fresh
/// `orderbook_snapshot` of every recorded market. The writer reads each frame's envelope
/// (`type`, `sid`, `seq`, `msg.market_ticker`, a `subscribed` ack's `msg.sid`) and remembers each
/// market's orderbook `sid`. When [`StreamWriter::tick`] rotates it returns `true`, and the
/// caller asks the exchange for a snapshot of every market in
/// [`StreamWriter::snapshot_requests`] (`update_subscription` / `get_snapshot`,
/// `kalshi-protocol.md` §1.3). Then, per sid (its `seq` is one counter for all its markets):
/// - until the sid's first fresh snapshot arrives, its `seq` frames (deltas in flight, `ok`
///   acks) go on into the previous file, kept open for this handover: the previous file ends
///   with an unbroken `seq` run, the new file starts the sid at the snapshot, and nothing is
///   lost, so the files also replay one after the other without a gap. The previous file is
///   closed once every sid has handed over, or after [`ROTATION_SNAPSHOT_WAIT`]; after that the
///   frames of a sid with no snapshot in the new file yet are dropped (counted in
///   [`StreamWriter::gated`]);
/// - from the sid's first frame in the new file on, every `seq` frame of the sid is written
///   there, so none of a market's deltas precedes its snapshot as long as the exchange sends
///   the `get_snapshot` answers back to back (the loopback simulator does). If a delta of a
///   market still awaiting its snapshot comes after another market's snapshot, it is written
///   all the same (counted in [`StreamWriter::written_before_snapshot`]): dropping it would leave
///   a `seq` hole, a gap that makes a replay distrust every market of the sid, while a replay
///   just ignores a delta for a book that is not live yet;
/// - frames without `seq` (trades, tickers, lifecycle, acks) go to the new file.
///
/// The first file is gated the same way from the start (a market's deltas only after its
/// snapshot; with no previous file, a held frame is dropped), which the subscription's initial
/// snapshots satisfy at once; it awaits a snapshot of every market of the header, a rotated file
/// one of every market seen on a sid before.
///
/// The size counter of a file starts once all its awaited snapshots are in (the snapshots are the
/// file's preamble, not part of [`Rotation::max_bytes`]), and the file is not rotated before
/// then, or before [`ROTATION_SNAPSHOT_WAIT`] has passed since it was opened, whichever comes
/// first: a rotation size below one set of snapshots must neither cut a file before its books
/// are complete nor rotate on every snapshot.
pub struct StreamWriter {
    base: PathBuf,
    header_line: String,
    rotation: Rotation,
    enc: Option<Encoder>,
    index: u32,
    /// The previous file during a rotation's handover, and its index.
    prev: Option<(Encoder, u32)>,
    /// Sids whose frames still go to the previous file.
    handover: Vec<u32>,
    bytes: u64,
    opened: std::time::Instant,
    last_flush: std::time::Instant,
    gate: SnapshotGate,
    /// Frames written.
    pub frames: u64,
    /// Frames skipped because they were not valid JSON.
    pub skipped: u64,
    /// Files started after the first (rotations).
    pub rotations: u64,
    /// Frames written to the previous file during a rotation's handover (see the type docs).
    pub handed_over: u64,
    /// Frames dropped: held back from the current file because their sid had no snapshot in it
    /// yet, with no previous file open to take them (see the type docs).
    pub gated: u64,
    /// Deltas written before their market's fresh snapshot to keep their sid's `seq` unbroken
    /// (see the type docs).
    pub written_before_snapshot: u64,
    /// Files written so far (paths).
    pub files: Vec<PathBuf>,
}

type Encoder = zstd::stream::write::Encoder<'static, std::io::BufWriter<std::fs::File>>;

/// The envelope fields the gate reads; a frame whose envelope has other shapes is written as
/// is.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow, default)]
    ty: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    sid: Option<u64>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(borrow, default)]
    msg: Option<EnvelopeMsg<'a>>,
}

#[derive(Deserialize)]
struct EnvelopeMsg<'a> {
    #[serde(borrow, default)]
    market_ticker: Option<std::borrow::Cow<'a, str>>,
    /// The sid of a `subscribed` ack.
    #[serde(default)]
    sid: Option<u64>,
}

/// What the gate says about one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GateVerdict {
    Write,
    /// Written although its market has no fresh snapshot in this file (keeps `seq` unbroken).
    WriteEarly,
    /// A `seq` frame of this sid, which has no snapshot in the current file yet.
    Held(u32),
}

/// Per-file snapshot state (see [`StreamWriter`]'s docs).
struct SnapshotGate {
    index: std::collections::HashMap<String, usize>,
    /// The orderbook sid each market was last seen on.
    sid_of: Vec<Option<u32>>,
    /// A snapshot of the market has been written to the current file.
    live: Vec<bool>,
    /// The market's fresh snapshot is awaited in the current file.
    awaiting: Vec<bool>,
    awaiting_count: usize,
    /// Sids with a `seq` frame written to the current file.
    started: Vec<u32>,
}

impl SnapshotGate {
    /// The first file awaits every market of the header: the subscription sends their snapshots.
    fn new(header: &Header) -> SnapshotGate {
        let n = header.markets.len();
        SnapshotGate {
            index: header.markets.iter().enumerate().map(|(i, m)| (m.ticker.clone(), i)).collect(),
            sid_of: vec![None; n],
            live: vec![false; n],
            awaiting: vec![true; n],
            awaiting_count: n,
            started: Vec::new(),
        }
    }

    /// A new file: nothing is live, every market with a known sid awaits its snapshot.
    fn rotated(&mut self) {
        self.live.iter_mut().for_each(|l| *l = false);
        self.started.clear();
        self.awaiting_count = 0;
        for (a, sid) in self.awaiting.iter_mut().zip(&self.sid_of) {
            *a = sid.is_some();
            self.awaiting_count += usize::from(*a);
        }
    }

    fn check(&mut self, frame: &str) -> GateVerdict {
        let Ok(env) = serde_json::from_str::<Envelope<'_>>(frame) else { return GateVerdict::Write };
        let ty = env.ty.as_deref().unwrap_or("");
        if ty == "subscribed" {
            // a new epoch of the sid (reconnect): a replay restarts its count here
            if let Some(sid) = env.msg.as_ref().and_then(|m| m.sid) {
                self.started.retain(|&s| u64::from(s) != sid);
            }
            return GateVerdict::Write;
        }
        let Some(sid) = env.sid.and_then(|s| u32::try_from(s).ok()) else { return GateVerdict::Write };
        let market = env.msg.as_ref().and_then(|m| m.market_ticker.as_deref()).and_then(|t| self.index.get(t).copied());
        let book_msg = ty == "orderbook_snapshot" || ty == "orderbook_delta";
        if let (Some(m), true) = (market, book_msg) {
            self.sid_of[m] = Some(sid);
        }
        // only orderbook sids are gated: other sequenced channels have no snapshot to wait for
        if env.seq.is_none() || !(book_msg || self.sid_of.contains(&Some(sid))) {
            return GateVerdict::Write;
        }
        let started = self.started.contains(&sid);
        if ty == "orderbook_snapshot" {
            if let Some(m) = market {
                self.live[m] = true;
                if std::mem::take(&mut self.awaiting[m]) {
                    self.awaiting_count -= 1;
                }
            }
            if !started {
                self.started.push(sid);
            }
            return GateVerdict::Write;
        }
        let live = market.is_some_and(|m| self.live[m]);
        if live || started {
            if !started {
                self.started.push(sid);
            }
            if ty == "orderbook_delta" && market.is_some() && !live {
                return GateVerdict::WriteEarly;
            }
            return GateVerdict::Write;
        }
        GateVerdict::Held(sid)
    }
}

impl StreamWriter {
    /// Starts writing at `path` (`*.jsonl.zst`) with `header`.
    pub fn create(path: &Path, header: &Header, rotation: Rotation) -> Result<StreamWriter, RecordingError> {
        let header_line = serde_json::to_string(header).map_err(|e| RecordingError::format(path, 1, e.to_string()))?;
        let now = std::time::Instant::now();
        let mut w = StreamWriter {
            base: path.to_path_buf(),
            header_line,
            rotation,
            enc: None,
            index: 0,
            prev: None,
            handover: Vec::new(),
            bytes: 0,
            opened: now,
            last_flush: now,
            gate: SnapshotGate::new(header),
            frames: 0,
            skipped: 0,
            rotations: 0,
            handed_over: 0,
            gated: 0,
            written_before_snapshot: 0,
            files: Vec::new(),
        };
        w.open()?;
        Ok(w)
    }

    fn path_of(&self, index: u32) -> PathBuf {
        if index == 0 {
            return self.base.clone();
        }
        let name = self.base.file_name().and_then(|n| n.to_str()).unwrap_or("recording.jsonl.zst");
        let stem = name.strip_suffix(".jsonl.zst").unwrap_or(name);
        self.base.with_file_name(format!("{stem}.{index}.jsonl.zst"))
    }

    fn open(&mut self) -> Result<(), RecordingError> {
        let path = self.path_of(self.index);
        // never overwrite: a restarted recorder must not truncate the crashed session's files
        let f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                RecordingError::format(
                    &path,
                    0,
                    "already exists: refusing to overwrite a recording; pick another --out",
                )
            } else {
                RecordingError::io(&path, e)
            }
        })?;
        let mut enc = zstd::stream::write::Encoder::new(std::io::BufWriter::new(f), 3)
            .map_err(|e| RecordingError::io(&path, e))?;
        enc.write_all(self.header_line.as_bytes())
            .and_then(|_| enc.write_all(b"\n"))
            .map_err(|e| RecordingError::io(&path, e))?;
        self.enc = Some(enc);
        self.bytes = 0;
        self.opened = std::time::Instant::now();
        self.files.push(path);
        Ok(())
    }

    fn finish_file(enc: Encoder, path: &Path) -> Result<(), RecordingError> {
        let mut w = enc.finish().map_err(|e| RecordingError::io(path, e))?;
        w.flush().map_err(|e| RecordingError::io(path, e))
    }

    fn close(&mut self) -> Result<(), RecordingError> {
        self.close_prev()?;
        if let Some(enc) = self.enc.take() {
            Self::finish_file(enc, &self.path_of(self.index))?;
        }
        Ok(())
    }

    /// Ends the handover: the previous file is complete.
    fn close_prev(&mut self) -> Result<(), RecordingError> {
        self.handover.clear();
        match self.prev.take() {
            Some((enc, index)) => Self::finish_file(enc, &self.path_of(index)),
            None => Ok(()),
        }
    }

    fn put(enc: &mut Encoder, path: &Path, recv_ns: u64, frame: &str) -> Result<(), RecordingError> {
        let io = |e| RecordingError::io(path, e);
        write!(enc, "{{\"recv_ns\":{recv_ns},\"frame\":").map_err(io)?;
        enc.write_all(frame.as_bytes()).map_err(io)?;
        enc.write_all(b"}\n").map_err(io)
    }

    /// Appends one frame received at `recv_ns` (unix ns) to the current file, or to the previous
    /// one while a rotation hands over, or drops it (see the type docs).
    pub fn write(&mut self, recv_ns: u64, frame: &str) -> Result<(), RecordingError> {
        let frame = frame.trim();
        if serde_json::from_str::<serde::de::IgnoredAny>(frame).is_err() {
            self.skipped += 1;
            return Ok(());
        }
        let awaiting_before = self.gate.awaiting_count;
        let verdict = self.gate.check(frame);
        // one frame per line: a raw newline between tokens would split it (cold path, rare)
        let compacted;
        let frame = if frame.contains(['\n', '\r']) {
            compacted = readers::compact_json(frame);
            compacted.as_str()
        } else {
            frame
        };
        match verdict {
            GateVerdict::Held(sid) => {
                let path = self.prev.as_ref().map(|(_, i)| self.path_of(*i));
                match (self.prev.as_mut(), path) {
                    (Some((enc, _)), Some(path)) if self.handover.contains(&sid) => {
                        Self::put(enc, &path, recv_ns, frame)?;
                        self.handed_over += 1;
                        self.frames += 1;
                    }
                    _ => self.gated += 1,
                }
                return Ok(());
            }
            GateVerdict::WriteEarly => self.written_before_snapshot += 1,
            GateVerdict::Write => {}
        }
        // the file has all its snapshots with this frame: the rotation size counts from here
        let completed = awaiting_before > 0 && self.gate.awaiting_count == 0;
        let path = self.path_of(self.index);
        let Some(enc) = self.enc.as_mut() else { return Ok(()) };
        Self::put(enc, &path, recv_ns, frame)?;
        self.bytes = if completed { 0 } else { self.bytes + frame.len() as u64 + 32 };
        self.frames += 1;
        if self.prev.is_some() {
            let started = &self.gate.started;
            self.handover.retain(|s| !started.contains(s));
            if self.handover.is_empty() {
                self.close_prev()?;
            }
        }
        Ok(())
    }

    /// Flushes once a second and rotates when due. Call regularly (every frame is fine).
    /// Returns `true` when it started a new file: the caller then requests a fresh snapshot of
    /// every market in [`StreamWriter::snapshot_requests`] (see the type docs).
    pub fn tick(&mut self) -> Result<bool, RecordingError> {
        let now = std::time::Instant::now();
        if now.duration_since(self.last_flush) >= std::time::Duration::from_secs(1) {
            self.flush()?;
        }
        let waited_enough = now.duration_since(self.opened) >= ROTATION_SNAPSHOT_WAIT;
        if self.prev.is_some() && waited_enough {
            self.close_prev()?;
        }
        let r = self.rotation;
        let due = (r.max_bytes > 0 && self.bytes >= r.max_bytes)
            || (!r.max_age.is_zero() && now.duration_since(self.opened) >= r.max_age);
        if !(due && (self.gate.awaiting_count == 0 || waited_enough)) {
            return Ok(false);
        }
        // the current file becomes the previous one, open until every sid has handed over
        self.close_prev()?;
        self.gate.rotated();
        let mut sids: Vec<u32> = self.snapshot_requests().iter().map(|&(sid, _)| sid).collect();
        sids.sort_unstable();
        sids.dedup();
        if let Some(enc) = self.enc.take() {
            if sids.is_empty() {
                Self::finish_file(enc, &self.path_of(self.index))?;
            } else {
                self.prev = Some((enc, self.index));
                self.handover = sids;
            }
        }
        self.index += 1;
        self.open()?;
        self.rotations += 1;
        Ok(true)
    }

    /// `(sid, market)` of every market whose fresh snapshot the current file still awaits and
    /// whose orderbook sid is known: `market` indexes the header's `markets` (the engine's
    /// `MarketId`), `sid` is the subscription it was last seen on. Empty in the first file (the
    /// subscription sends those snapshots) and once every snapshot is in.
    pub fn snapshot_requests(&self) -> Vec<(u32, usize)> {
        let g = &self.gate;
        (0..g.awaiting.len()).filter(|&m| g.awaiting[m]).filter_map(|m| g.sid_of[m].map(|sid| (sid, m))).collect()
    }

    /// Pushes everything written so far to the file (a complete zstd block).
    pub fn flush(&mut self) -> Result<(), RecordingError> {
        self.last_flush = std::time::Instant::now();
        let path = self.path_of(self.index);
        let prev_path = self.prev.as_ref().map(|(_, i)| self.path_of(*i)).unwrap_or_default();
        let files =
            self.enc.as_mut().map(|e| (e, &path)).into_iter().chain(self.prev.as_mut().map(|(e, _)| (e, &prev_path)));
        for (enc, path) in files {
            enc.flush().map_err(|e| RecordingError::io(path, e))?;
            enc.get_mut().flush().map_err(|e| RecordingError::io(path, e))?;
        }
        Ok(())
    }

    /// Finishes the current file, and the previous one if a rotation is still handing over.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, RecordingError> {
        self.close()?;
        Ok(std::mem::take(&mut self.files))
    }
}

/// Opens a file, transparently gunzipping `*.gz`.
pub fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>, RecordingError> {
    let f = std::fs::File::open(path).map_err(|e| RecordingError::io(path, e))?;
    if path.extension().and_then(|e| e.to_str()) == Some("gz") {
        Ok(Box::new(flate2::read::GzDecoder::new(f)))
    } else {
        Ok(Box::new(f))
    }
}

mod readers {
    //! The foreign-format readers behind [`Recording::read_capture_object`] and
    //! [`Recording::read_bare_frames`]. Both produce NO-price-scale recordings
    //! (`yes_price_scale: false`): the captures were taken with Kalshi's default
    //! `use_yes_price: false` (checked: the demo session's first WebSocket snapshots equal the REST
    //! `orderbook_fp` books level for level). Markets carry only what the file says; a market
    //! without `price_level_structure`/`price_ranges` gets the default `linear_cent` grid, which
    //! covers every price in these captures (all whole cents).

    use super::*;
    use crate::import::{decimal_text, rfc3339_ns};
    use serde_json::value::RawValue;
    use std::collections::HashSet;

    /// The `ws_orderbook_stream.json` object; only the keys the reader needs.
    #[derive(Deserialize)]
    struct CaptureObject<'a> {
        #[serde(default)]
        tickers: Vec<String>,
        #[serde(borrow)]
        frames: Vec<CaptureFrame<'a>>,
    }

    #[derive(Deserialize)]
    struct CaptureFrame<'a> {
        received_ms: u64,
        #[serde(borrow)]
        frame: &'a RawValue,
    }

    /// The envelope of a Kalshi frame: `type` is required (every Kalshi message has one), `msg`
    /// is looked into only for tickers and `ts_ms`.
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "type")]
        ty: String,
        #[serde(default, borrow)]
        msg: Option<&'a RawValue>,
    }

    /// The few `msg` fields that name markets or carry the exchange time. Every field is taken as
    /// any JSON value so a message of another shape is skipped, not refused.
    #[derive(Deserialize, Default)]
    struct MsgPeek {
        #[serde(default)]
        market_ticker: Option<serde_json::Value>,
        #[serde(default)]
        market_tickers: Option<serde_json::Value>,
        #[serde(default)]
        ticker: Option<serde_json::Value>,
        #[serde(default)]
        ts_ms: Option<serde_json::Value>,
    }

    /// What a frame says about markets and time.
    struct Peeked {
        tickers: Vec<String>,
        ts_ms: Option<u64>,
    }

    /// Parses a frame's envelope; `Err` holds the reason it is not a Kalshi frame.
    fn peek(text: &str) -> Result<Peeked, String> {
        let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| format!("not a Kalshi frame: {e}"))?;
        let m: MsgPeek = env.msg.and_then(|raw| serde_json::from_str(raw.get()).ok()).unwrap_or_default();
        let mut tickers = Vec::new();
        if let Some(serde_json::Value::String(t)) = m.market_ticker {
            tickers.push(t);
        }
        if let Some(serde_json::Value::Array(ts)) = m.market_tickers {
            tickers.extend(ts.into_iter().filter_map(|v| match v {
                serde_json::Value::String(t) => Some(t),
                _ => None,
            }));
        }
        // `user_order` names its market `ticker` (kalshi-protocol.md §1.7).
        if env.ty == "user_order" {
            if let Some(serde_json::Value::String(t)) = m.ticker {
                tickers.push(t);
            }
        }
        Ok(Peeked { tickers, ts_ms: m.ts_ms.and_then(|v| v.as_u64()) })
    }

    /// Markets in first-seen order, without duplicates.
    #[derive(Default)]
    struct MarketList {
        seen: HashSet<String>,
        markets: Vec<MarketRecord>,
    }

    impl MarketList {
        fn add(&mut self, ticker: &str) {
            if !ticker.is_empty() && self.seen.insert(ticker.to_string()) {
                self.markets.push(MarketRecord { ticker: ticker.to_string(), ..Default::default() });
            }
        }
    }

    /// `text` without the insignificant whitespace between JSON tokens; strings (keys and values),
    /// numbers, key order and escapes are kept byte for byte. `text` must be valid JSON.
    pub(super) fn compact_json(text: &str) -> String {
        let mut out = Vec::with_capacity(text.len());
        let (mut in_str, mut esc) = (false, false);
        for &b in text.as_bytes() {
            if in_str {
                out.push(b);
                if esc {
                    esc = false;
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' {
                    in_str = false;
                }
            } else if b == b'"' {
                in_str = true;
                out.push(b);
            } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                out.push(b);
            }
        }
        // Only ASCII whitespace outside strings was dropped, so the bytes are still UTF-8.
        String::from_utf8(out).unwrap_or_else(|_| text.to_string())
    }

    /// Reads `ws_orderbook_stream.json`: `{tickers, frames: [{received_ms, frame}]}` (other keys
    /// ignored). Each frame is kept as its exact text with the capture file's pretty-printing
    /// whitespace removed; `recv_ns` is `received_ms` in ns, raised to the previous frame's
    /// `recv_ns + 1` where several frames share a millisecond, so it is strictly increasing.
    /// Markets: `tickers`, then any other ticker the frames name. When `markets_settled.json`
    /// (a REST `GET /markets` answer: `{markets: [Market...]}`) sits beside the file, the
    /// markets it lists get their result and metadata from it; see [`apply_settled`].
    pub(super) fn capture_object(path: &Path) -> Result<Recording, RecordingError> {
        let mut text = String::new();
        open_maybe_gz(path)?.read_to_string(&mut text).map_err(|e| RecordingError::io(path, e))?;
        let cap: CaptureObject<'_> = serde_json::from_str(&text).map_err(|e| {
            RecordingError::format(
                path,
                e.line(),
                format!("not a capture object {{tickers, frames: [{{received_ms, frame}}]}}: {e}"),
            )
        })?;
        let mut markets = MarketList::default();
        for t in &cap.tickers {
            markets.add(t);
        }
        let mut frames = Vec::with_capacity(cap.frames.len());
        let mut prev: Option<u64> = None;
        for (i, cf) in cap.frames.iter().enumerate() {
            let text = compact_json(cf.frame.get());
            let p = peek(&text).map_err(|m| RecordingError::format(path, 0, format!("frames[{i}]: {m}")))?;
            for t in &p.tickers {
                markets.add(t);
            }
            let at = cf
                .received_ms
                .checked_mul(1_000_000)
                .ok_or_else(|| RecordingError::format(path, 0, format!("frames[{i}]: received_ms out of range")))?;
            let recv_ns = match prev {
                Some(p) if at <= p => p + 1,
                _ => at,
            };
            prev = Some(recv_ns);
            frames.push(Frame { recv_ns, text });
        }
        let mut source = format!("Kalshi WebSocket capture object {}", path.display());
        let settled = path.with_file_name("markets_settled.json");
        if settled.is_file() {
            apply_settled(&settled, &mut markets.markets)?;
            source.push_str(&format!(" + REST settled markets {}", settled.display()));
        }
        let header = Header {
            strike_recording: FORMAT_VERSION,
            source,
            yes_price_scale: false,
            markets: markets.markets,
            events: Vec::new(),
        };
        Ok(Recording { header, frames })
    }

    /// One `price_ranges` band as Kalshi sends it.
    #[derive(Deserialize)]
    struct RangeIn {
        start: String,
        end: String,
        step: String,
    }

    /// The Kalshi Market object fields that map cleanly onto a [`MarketRecord`].
    #[derive(Deserialize)]
    struct MarketIn<'a> {
        ticker: String,
        #[serde(default)]
        event_ticker: Option<String>,
        #[serde(default)]
        series_ticker: Option<String>,
        #[serde(default)]
        result: Option<String>,
        #[serde(default)]
        strike_type: Option<String>,
        #[serde(default, borrow)]
        floor_strike: Option<&'a RawValue>,
        #[serde(default, borrow)]
        cap_strike: Option<&'a RawValue>,
        #[serde(default)]
        yes_sub_title: Option<String>,
        #[serde(default)]
        price_level_structure: Option<String>,
        #[serde(default)]
        price_ranges: Option<Vec<RangeIn>>,
        #[serde(default)]
        open_time: Option<String>,
        #[serde(default)]
        close_time: Option<String>,
        #[serde(default)]
        exchange_index: Option<u8>,
    }

    #[derive(Deserialize)]
    struct SettledFile<'a> {
        #[serde(default, borrow)]
        markets: Vec<MarketIn<'a>>,
    }

    /// Fills in the records of `markets` that `settled` (a REST `GET /markets` answer) lists:
    /// `result` (`"yes"`/`"no"` only; `""` and other values are left unset), `event_ticker`,
    /// `series_ticker`, `strike_type`, `floor_strike`/`cap_strike` (as decimal text),
    /// `yes_sub_title`, `price_level_structure`, `price_ranges`, `open_ts_ms`/`close_ts_ms` and
    /// `exchange_index`, each only where present and non-empty. Markets it lists that the capture
    /// does not mention are ignored.
    fn apply_settled(settled: &Path, markets: &mut [MarketRecord]) -> Result<(), RecordingError> {
        let mut text = String::new();
        open_maybe_gz(settled)?.read_to_string(&mut text).map_err(|e| RecordingError::io(settled, e))?;
        let file: SettledFile<'_> = serde_json::from_str(&text).map_err(|e| {
            RecordingError::format(
                settled,
                e.line(),
                format!("not a REST markets answer {{markets: [Market...]}}: {e}"),
            )
        })?;
        for m in &file.markets {
            let Some(rec) = markets.iter_mut().find(|r| r.ticker == m.ticker) else { continue };
            fill_record(rec, m).map_err(|e| RecordingError::format(settled, 0, e))?;
        }
        Ok(())
    }

    /// A `GET /markets` page: the markets and the pagination cursor.
    #[derive(Deserialize)]
    struct MarketsPage<'a> {
        #[serde(default, borrow)]
        markets: Vec<MarketIn<'a>>,
        #[serde(default)]
        cursor: Option<String>,
    }

    /// See [`super::parse_markets_page`].
    pub(super) fn markets_page(text: &str) -> Result<(Vec<MarketRecord>, Option<String>), String> {
        let page: MarketsPage<'_> =
            serde_json::from_str(text).map_err(|e| format!("not a Kalshi GET /markets answer: {e}"))?;
        let mut out = Vec::with_capacity(page.markets.len());
        for m in &page.markets {
            let mut rec = MarketRecord { ticker: m.ticker.clone(), ..Default::default() };
            fill_record(&mut rec, m)?;
            out.push(rec);
        }
        Ok((out, page.cursor.filter(|c| !c.is_empty())))
    }

    /// Copies every field of Kalshi Market object `m` that maps cleanly into `rec`, each only where
    /// present and non-empty (`result` only when `"yes"`/`"no"`).
    fn fill_record(rec: &mut MarketRecord, m: &MarketIn<'_>) -> Result<(), String> {
        let nonempty = |s: &Option<String>| s.as_ref().filter(|v| !v.is_empty()).cloned();
        let ms = |s: &Option<String>, what: &str| -> Result<Option<i64>, String> {
            match nonempty(s) {
                None => Ok(None),
                Some(t) => rfc3339_ns(&t)
                    .map(|ns| Some(ns.div_euclid(1_000_000)))
                    .map_err(|e| format!("market {}: {what}: {e}", m.ticker)),
            }
        };
        {
            let strike = |raw: Option<&RawValue>, what: &str| -> Result<Option<String>, String> {
                match raw {
                    None => Ok(None),
                    Some(r) => decimal_text(r).map_err(|e| format!("market {}: {what}: {e}", m.ticker)),
                }
            };
            if let Some(r) = nonempty(&m.result).filter(|r| r == "yes" || r == "no") {
                rec.result = Some(r);
            }
            if let Some(e) = nonempty(&m.event_ticker) {
                rec.event_ticker = e;
            }
            if let Some(s) = nonempty(&m.series_ticker) {
                rec.series_ticker = s;
            }
            if let Some(s) = nonempty(&m.strike_type) {
                rec.strike_type = Some(s);
            }
            if let Some(f) = strike(m.floor_strike, "floor_strike")? {
                rec.floor_strike = Some(f);
            }
            if let Some(c) = strike(m.cap_strike, "cap_strike")? {
                rec.cap_strike = Some(c);
            }
            if let Some(s) = nonempty(&m.yes_sub_title) {
                rec.yes_sub_title = Some(s);
            }
            if let Some(s) = nonempty(&m.price_level_structure) {
                rec.price_level_structure = Some(s);
            }
            if let Some(rs) = m.price_ranges.as_ref().filter(|r| !r.is_empty()) {
                rec.price_ranges = rs
                    .iter()
                    .map(|r| PriceRange { start: r.start.clone(), end: r.end.clone(), step: r.step.clone() })
                    .collect();
            }
            if let Some(t) = ms(&m.open_time, "open_time")? {
                rec.open_ts_ms = t;
            }
            if let Some(t) = ms(&m.close_time, "close_time")? {
                rec.close_ts_ms = t;
            }
            if let Some(x) = m.exchange_index {
                rec.exchange_index = x;
            }
        }
        Ok(())
    }

    /// Reads bare Kalshi frames, one JSON object per line (`*.jsonl`, `*.jsonl.gz`); blank lines
    /// are skipped and every other line must be a Kalshi frame (an object with a `type`), kept
    /// verbatim (surrounding whitespace trimmed).
    ///
    /// `recv_ns` is strictly increasing: a frame's `msg.ts_ms` in ns when present and later than
    /// the previous frame's `recv_ns`, else the previous `recv_ns` + 1 µs. Frames before the first
    /// one with a `ts_ms` (subscription acks, the first snapshots) are placed 1 µs apart, ending
    /// 1 µs before it. Markets: every `market_ticker` / `market_tickers` entry (and `ticker` of
    /// `user_order` messages), in first-seen order.
    pub(super) fn bare_frames(path: &Path) -> Result<Recording, RecordingError> {
        const STEP_NS: u64 = 1_000;
        let mut reader = BufReader::new(open_maybe_gz(path)?);
        let mut markets = MarketList::default();
        let mut frames: Vec<Frame> = Vec::new();
        let mut ts: Vec<Option<u64>> = Vec::new();
        let mut line = String::new();
        let mut line_no = 0usize;
        loop {
            line.clear();
            line_no += 1;
            match reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(RecordingError::format(path, line_no, format!("not UTF-8 text: {e}")))
                }
                Err(e) => return Err(RecordingError::io(path, e)),
            }
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            let p = peek(text).map_err(|m| RecordingError::format(path, line_no, m))?;
            for t in &p.tickers {
                markets.add(t);
            }
            ts.push(p.ts_ms.and_then(|ms| ms.checked_mul(1_000_000)));
            frames.push(Frame { recv_ns: 0, text: text.to_string() });
        }
        // Anchor the leading frames without a timestamp just before the first timestamped one.
        let lead = ts.iter().position(Option::is_some).unwrap_or(ts.len());
        let first = ts.get(lead).copied().flatten().unwrap_or(0);
        let mut prev = first.saturating_sub(STEP_NS * (lead as u64 + 1));
        for (i, (fr, t)) in frames.iter_mut().zip(&ts).enumerate() {
            fr.recv_ns = match *t {
                Some(t) if t > prev || (i == 0 && t >= prev) => t,
                _ => prev + STEP_NS,
            };
            prev = fr.recv_ns;
        }
        let header = Header {
            strike_recording: FORMAT_VERSION,
            source: format!("bare Kalshi WebSocket frames {}", path.display()),
            yes_price_scale: false,
            markets: markets.markets,
            events: Vec::new(),
        };
        Ok(Recording { header, frames })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn temp_file(name: &str, content: &[u8]) -> PathBuf {
            let dir = std::env::temp_dir().join(format!("strike-sim-readers-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join(name);
            std::fs::write(&p, content).unwrap();
            p
        }

        #[test]
        fn stream_writer_flushes_rotates_and_reads_back() {
            let dir = std::env::temp_dir().join(format!("strike-sw-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let base = dir.join("live.jsonl.zst");
            let header = Header { strike_recording: FORMAT_VERSION, yes_price_scale: true, ..Default::default() };
            let mut w =
                StreamWriter::create(&base, &header, Rotation { max_bytes: 2_000, max_age: Default::default() })
                    .unwrap();
            for i in 0..40u64 {
                w.write(1_000 + i, &format!("{{\"type\":\"ok\",\"id\":{i}}}")).unwrap();
                w.tick().unwrap();
            }
            w.write(2_000, "{not json").unwrap();
            // before finishing, a flush makes the file readable up to here (a kill loses at most
            // what came after the last flush)
            w.flush().unwrap();
            let partial = std::fs::read(w.files.last().unwrap()).unwrap();
            let mut dec = zstd::stream::read::Decoder::new(&partial[..]).unwrap();
            let mut text = String::new();
            let _ = dec.read_to_string(&mut text); // the stream is unterminated: read what is there
            assert!(text.starts_with("{\"strike_recording\":1"), "{text}");
            assert_eq!(w.skipped, 1);
            // a killed recorder: copy the unfinished file now and read it like any recording
            let killed = dir.join("killed.jsonl.zst");
            std::fs::write(&killed, &partial).unwrap();
            let got = Recording::read(&killed).unwrap();
            assert!(!got.frames.is_empty(), "everything flushed before the kill is readable");
            // a frame with raw newlines stays one line
            w.write(3_000, "{\"type\":\n\"ok\",\r\n\"id\":99}").unwrap();
            // a second writer on the same path refuses to overwrite
            assert!(StreamWriter::create(&base, &header, Rotation::default()).is_err());
            let files = w.finish().unwrap();
            assert!(files.len() >= 2, "rotation by size: {files:?}");
            assert_eq!(files[1].file_name().unwrap().to_str().unwrap(), "live.1.jsonl.zst");
            let mut ids = Vec::new();
            for f in &files {
                let r = Recording::read(f).unwrap();
                assert_eq!(r.header, header);
                for fr in r.frames {
                    let v: serde_json::Value = serde_json::from_str(&fr.text).unwrap();
                    ids.push((fr.recv_ns, v["id"].as_u64().unwrap()));
                }
            }
            let mut want: Vec<(u64, u64)> = (0..40u64).map(|i| (1_000 + i, i)).collect();
            want.push((3_000, 99));
            assert_eq!(ids, want);
        }

        #[test]
        fn rotated_files_start_with_fresh_snapshots_and_keep_seq_unbroken() {
            let dir = std::env::temp_dir().join(format!("strike-sw-gate-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let base = dir.join("gate.jsonl.zst");
            let _ = std::fs::remove_file(&base);
            for i in 1..=3 {
                let _ = std::fs::remove_file(dir.join(format!("gate.{i}.jsonl.zst")));
            }
            let market = |t: &str| MarketRecord { ticker: t.into(), ..Default::default() };
            let header = Header {
                strike_recording: FORMAT_VERSION,
                yes_price_scale: true,
                markets: vec![market("A"), market("B"), market("C")],
                ..Default::default()
            };
            let mut w =
                StreamWriter::create(&base, &header, Rotation { max_bytes: 100, max_age: Default::default() }).unwrap();
            let snap = |t: &str, seq: u64| {
                let sid = if t == "C" { 3 } else { 1 };
                format!(
                    r#"{{"type":"orderbook_snapshot","sid":{sid},"seq":{seq},"msg":{{"market_ticker":"{t}","yes_dollars_fp":[["0.4000","10.00"]]}}}}"#
                )
            };
            let delta = |t: &str, seq: u64| {
                format!(
                    r#"{{"type":"orderbook_delta","sid":1,"seq":{seq},"msg":{{"market_ticker":"{t}","price_dollars":"0.4000","delta_fp":"1.00","side":"yes"}}}}"#
                )
            };
            let trade =
                r#"{"type":"trade","sid":2,"msg":{"market_ticker":"A","yes_price_dollars":"0.40","count_fp":"1.00"}}"#;
            let mut ns = 0;
            let mut put = |w: &mut StreamWriter, f: &str| {
                ns += 1;
                w.write(ns, f).unwrap();
            };
            // file 0: a delta before any snapshot of its sid is dropped (no previous file to take it)
            put(&mut w, r#"{"id":1,"type":"subscribed","msg":{"channel":"orderbook_delta","sid":1}}"#);
            put(&mut w, &delta("A", 1));
            // other sequenced channels are not gated
            put(&mut w, r#"{"type":"order_group_updates","sid":9,"seq":1,"msg":{"event_type":"created"}}"#);
            for f in [snap("A", 2), snap("B", 3), delta("A", 4), delta("B", 5), trade.to_string()] {
                put(&mut w, &f);
            }
            assert_eq!(w.snapshot_requests(), vec![], "the subscription sends the first file's snapshots");
            assert!(!w.tick().unwrap(), "over 100 bytes, but C's first snapshot is still due");
            put(&mut w, &snap("C", 1));
            put(&mut w, &delta("A", 6));
            assert!(w.tick().unwrap(), "over 100 bytes after the snapshots: rotated");
            assert_eq!(w.rotations, 1);
            assert_eq!(w.snapshot_requests(), vec![(1, 0), (1, 1), (3, 2)]);
            // file 1: in-flight deltas and acks of a sid before its first fresh snapshot go on into
            // file 0, which closes once every sid (1 and 3) has its first snapshot in file 1
            put(&mut w, &delta("A", 7));
            put(&mut w, r#"{"id":5,"sid":1,"seq":8,"type":"ok","msg":{"market_tickers":["A","B"]}}"#);
            put(&mut w, trade);
            put(&mut w, &snap("A", 9));
            put(&mut w, &delta("A", 10));
            // B's snapshot is late: its delta is written anyway, or seq 11 would be a hole
            put(&mut w, &delta("B", 11));
            put(&mut w, &snap("C", 2));
            assert!(!w.tick().unwrap(), "no rotation before the file has every fresh snapshot");
            put(&mut w, &snap("B", 12));
            assert_eq!(w.snapshot_requests(), vec![]);
            assert!(!w.tick().unwrap(), "the snapshots are the preamble: the size counts from here");
            put(&mut w, &delta("B", 13));
            assert!(w.tick().unwrap());
            assert_eq!(w.snapshot_requests(), vec![(1, 0), (1, 1), (3, 2)]);
            // file 2: without its snapshots it is not rotated again (until ROTATION_SNAPSHOT_WAIT),
            // and the stream goes on into file 1
            for seq in 14..20 {
                put(&mut w, &delta("A", seq));
            }
            assert!(!w.tick().unwrap());
            assert_eq!((w.gated, w.handed_over, w.written_before_snapshot, w.rotations), (1, 8, 1, 2));
            assert_eq!(w.frames, 24, "every frame but the one before any snapshot");
            let files = w.finish().unwrap();
            assert_eq!(files.len(), 3);
            let read = |p: &Path| -> Vec<(String, Option<String>, Option<u64>)> {
                Recording::read(p)
                    .unwrap()
                    .frames
                    .iter()
                    .map(|f| {
                        let v: serde_json::Value = serde_json::from_str(&f.text).unwrap();
                        let t = v["msg"]["market_ticker"].as_str().map(str::to_string);
                        (v["type"].as_str().unwrap().to_string(), t, v["seq"].as_u64())
                    })
                    .collect()
            };
            let f = |ty: &str, t: Option<&str>, seq: Option<u64>| (ty.to_string(), t.map(str::to_string), seq);
            assert_eq!(
                read(&files[0]),
                vec![
                    f("subscribed", None, None),
                    f("order_group_updates", None, Some(1)),
                    f("orderbook_snapshot", Some("A"), Some(2)),
                    f("orderbook_snapshot", Some("B"), Some(3)),
                    f("orderbook_delta", Some("A"), Some(4)),
                    f("orderbook_delta", Some("B"), Some(5)),
                    f("trade", Some("A"), None),
                    f("orderbook_snapshot", Some("C"), Some(1)),
                    f("orderbook_delta", Some("A"), Some(6)),
                    f("orderbook_delta", Some("A"), Some(7)),
                    f("ok", None, Some(8)),
                ]
            );
            assert_eq!(
                read(&files[1]),
                vec![
                    f("trade", Some("A"), None),
                    f("orderbook_snapshot", Some("A"), Some(9)),
                    f("orderbook_delta", Some("A"), Some(10)),
                    f("orderbook_delta", Some("B"), Some(11)),
                    f("orderbook_snapshot", Some("C"), Some(2)),
                    f("orderbook_snapshot", Some("B"), Some(12)),
                    f("orderbook_delta", Some("B"), Some(13)),
                    f("orderbook_delta", Some("A"), Some(14)),
                    f("orderbook_delta", Some("A"), Some(15)),
                    f("orderbook_delta", Some("A"), Some(16)),
                    f("orderbook_delta", Some("A"), Some(17)),
                    f("orderbook_delta", Some("A"), Some(18)),
                    f("orderbook_delta", Some("A"), Some(19)),
                ]
            );
            assert_eq!(read(&files[2]), vec![]);
        }

        #[test]
        fn compact_json_keeps_strings_and_key_order() {
            let t = "{\n \"b\": [1, 2.50],\n \"a\": \"x y \\\" z\\\\\",\t\"c\" : {}\n}";
            assert_eq!(compact_json(t), r#"{"b":[1,2.50],"a":"x y \" z\\","c":{}}"#);
        }

        #[test]
        fn bare_frames_times_markets_and_a_malformed_line() {
            let good = concat!(
                "{\"type\":\"subscribed\",\"id\":1,\"msg\":{\"channel\":\"orderbook_delta\",\"sid\":1}}\n\n",
                "{\"type\":\"orderbook_snapshot\",\"sid\":1,\"seq\":1,\"msg\":{\"market_ticker\":\"A\"}}\n",
                "{\"type\":\"orderbook_delta\",\"sid\":1,\"seq\":2,\"msg\":{\"market_ticker\":\"B\",\"ts_ms\":5}}\n",
                "{\"type\":\"orderbook_delta\",\"sid\":1,\"seq\":3,\"msg\":{\"market_ticker\":\"A\",\"ts_ms\":5}}\n",
                "{\"type\":\"user_order\",\"sid\":2,\"msg\":{\"ticker\":\"C\",\"ts_ms\":4}}\n",
            );
            let r = bare_frames(&temp_file("good.jsonl", good.as_bytes())).unwrap();
            let ns: Vec<u64> = r.frames.iter().map(|f| f.recv_ns).collect();
            assert_eq!(ns, [4_998_000, 4_999_000, 5_000_000, 5_001_000, 5_002_000]);
            let t: Vec<&str> = r.header.markets.iter().map(|m| m.ticker.as_str()).collect();
            assert_eq!(t, ["A", "B", "C"]);
            assert!(!r.header.yes_price_scale);

            let bad = "{\"type\":\"ok\",\"msg\":{}}\n\n{\"type\":\"orderbook_delta\",\"msg\":{\n";
            let err = bare_frames(&temp_file("bad.jsonl", bad.as_bytes())).unwrap_err();
            match &err {
                RecordingError::Format { line, .. } => assert_eq!(*line, 3),
                other => panic!("expected a format error, got {other:?}"),
            }
            assert!(err.to_string().contains("bad.jsonl:3:"), "{err}");
            let untyped = bare_frames(&temp_file("untyped.jsonl", b"{\"a\":1}\n")).unwrap_err();
            assert!(untyped.to_string().contains(":1:") && untyped.to_string().contains("type"), "{untyped}");
        }
    }
}
