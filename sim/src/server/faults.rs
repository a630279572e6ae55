//! The fault script: misbehaviour the WebSocket server injects on purpose, so clients' gap
//! detection, resnapshot, reconnect and frame-limit handling can be tested against a server that
//! otherwise speaks Kalshi's protocol faithfully.
//!
//! "Data frames" are the frames a connection streams from the recording or its book:
//! `orderbook_snapshot`, `orderbook_delta` and `trade` (not acks, errors or pings). The one-shot
//! faults ([`Faults::close_after_frames`], [`Faults::skip_seq`],
//! [`Faults::garbled_after_frames`], [`Faults::oversized_after_frames`]) act on the server's
//! **first** WebSocket session only, so a client that reconnects gets a clean session (new
//! `sid`s, fresh snapshots, no further faults). [`Faults::frame_delay`] applies to every session.

use std::time::Duration;

/// Default size of the oversized frame: 2 MiB.
pub const DEFAULT_OVERSIZED_BYTES: usize = 2 * 1024 * 1024;

/// What to break, all optional; [`Faults::none`] (the default) breaks nothing. Build with the
/// chained setters: `Faults::none().skip_seq(100).close_after(150)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Faults {
    /// After the first session's N-th data frame, drop the connection abruptly: TCP shutdown
    /// with no WebSocket Close frame and no TLS `close_notify`. N = 0 closes right after the
    /// subscription that starts the replay is acknowledged.
    pub close_after_frames: Option<u64>,
    /// On the first session, omit the first `orderbook_delta` whose `seq` would be ≥ K. Its seq
    /// is consumed, so the client sees exactly one gap (K−1 then K+1). The server's own book
    /// still applies the delta: a `get_snapshot` afterwards shows the true book.
    pub skip_seq: Option<u64>,
    /// After the first session's N-th data frame, send one text frame that is not JSON.
    pub garbled_after_frames: Option<u64>,
    /// After the first session's N-th data frame, send one text frame of
    /// [`Faults::oversized_bytes`] bytes (a valid JSON object of the unknown type
    /// `strike_sim_padding`, so a client that accepts its size can skip it).
    pub oversized_after_frames: Option<u64>,
    /// Size of the oversized frame, bytes ([`DEFAULT_OVERSIZED_BYTES`]).
    pub oversized_bytes: usize,
    /// Sleep this long before sending each data frame (every session). The connection's thread
    /// sleeps, so commands are answered late too.
    pub frame_delay: Option<Duration>,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            close_after_frames: None,
            skip_seq: None,
            garbled_after_frames: None,
            oversized_after_frames: None,
            oversized_bytes: DEFAULT_OVERSIZED_BYTES,
            frame_delay: None,
        }
    }
}

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Sets [`Faults::close_after_frames`].
    pub fn close_after(mut self, frames: u64) -> Faults {
        self.close_after_frames = Some(frames);
        self
    }

    /// Sets [`Faults::skip_seq`].
    pub fn skip_seq(mut self, seq: u64) -> Faults {
        self.skip_seq = Some(seq);
        self
    }

    /// Sets [`Faults::garbled_after_frames`].
    pub fn garbled_after(mut self, frames: u64) -> Faults {
        self.garbled_after_frames = Some(frames);
        self
    }

    /// Sets [`Faults::oversized_after_frames`] and [`Faults::oversized_bytes`].
    pub fn oversized_after(mut self, frames: u64, bytes: usize) -> Faults {
        self.oversized_after_frames = Some(frames);
        self.oversized_bytes = bytes;
        self
    }

    /// Sets [`Faults::frame_delay`].
    pub fn delay_each(mut self, delay: Duration) -> Faults {
        self.frame_delay = Some(delay);
        self
    }

    /// Whether any fault is scripted.
    pub fn is_none(&self) -> bool {
        self.close_after_frames.is_none()
            && self.skip_seq.is_none()
            && self.garbled_after_frames.is_none()
            && self.oversized_after_frames.is_none()
            && self.frame_delay.is_none()
    }
}

/// The text of the garbled frame: the truncated start of a delta, not valid JSON.
pub const GARBLED_FRAME: &str = r#"{"type":"orderbook_delta","sid":1,"seq":"#;

/// The oversized frame's text: `{"type":"strike_sim_padding","msg":"xxx…"}`, exactly `bytes`
/// long (at least the empty object's length).
pub fn oversized_frame(bytes: usize) -> String {
    const HEAD: &str = r#"{"type":"strike_sim_padding","msg":""#;
    const TAIL: &str = r#""}"#;
    let pad = bytes.saturating_sub(HEAD.len() + TAIL.len());
    let mut s = String::with_capacity(HEAD.len() + pad + TAIL.len());
    s.push_str(HEAD);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str(TAIL);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_frames() {
        let f = Faults::none().close_after(3).skip_seq(7).garbled_after(1).oversized_after(2, 100);
        assert_eq!(f.close_after_frames, Some(3));
        assert_eq!(f.skip_seq, Some(7));
        assert_eq!((f.oversized_after_frames, f.oversized_bytes), (Some(2), 100));
        assert!(!f.is_none() && Faults::none().is_none());
        let big = oversized_frame(100);
        assert_eq!(big.len(), 100);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&big).unwrap()["type"], "strike_sim_padding");
        assert!(serde_json::from_str::<serde_json::Value>(GARBLED_FRAME).is_err());
    }
}
