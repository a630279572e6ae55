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
        let dec = zstd::stream::read::Decoder::new(f).map_err(|e| RecordingError::io(path, e))?;
        let mut lines = BufReader::new(dec).lines();
        let first = match lines.next() {
            Some(l) => l.map_err(|e| RecordingError::io(path, e))?,
            None => return Err(RecordingError::format(path, 1, "empty recording: the header line is missing")),
        };
        let header: Header = serde_json::from_str(&first)
            .map_err(|e| RecordingError::format(path, 1, format!("bad header: {e}")))?;
        if header.strike_recording != FORMAT_VERSION {
            return Err(RecordingError::format(
                path,
                1,
                format!("recording format version {} is not supported (expected {FORMAT_VERSION})", header.strike_recording),
            ));
        }
        let mut frames = Vec::new();
        for (i, line) in lines.enumerate() {
            let line = line.map_err(|e| RecordingError::io(path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            let fl: FrameLine<'_> = serde_json::from_str(&line)
                .map_err(|e| RecordingError::format(path, i + 2, format!("bad frame line: {e}")))?;
            frames.push(Frame { recv_ns: fl.recv_ns, text: fl.frame.get().to_string() });
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
    use super::*;

    pub(super) fn capture_object(path: &Path) -> Result<Recording, RecordingError> {
        let _ = (path, open_maybe_gz as fn(&Path) -> _);
        Err(RecordingError::format(path, 0, "capture-object reader not implemented yet"))
    }

    pub(super) fn bare_frames(path: &Path) -> Result<Recording, RecordingError> {
        Err(RecordingError::format(path, 0, "bare-frame reader not implemented yet"))
    }
}
