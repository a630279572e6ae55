//! Sequencing per subscription id (`sid`).
//!
//! Kalshi's `seq` is one counter per sid, shared by every market of the subscription, and the
//! `ok` / `unsubscribed` acks that carry a `seq` consume a number too (both real recordings in
//! `STRIKE_DATA_DIR` show `ok` frames inside the contiguous run; `kalshi-protocol.md` §1.8). A
//! message whose `seq` is not `last + 1` is a gap: a gap cannot be attributed to one market, so
//! every market of the sid goes stale until its next snapshot. The counter then resynchronises
//! on the received number so later gaps are still seen.
//!
//! Markets are attached to a sid when a snapshot or delta of that sid names them. State is a
//! fixed table sized at start-up (subscriptions × markets bits); nothing allocates per message.

use strike_sdk::market::MarketId;

/// Most concurrent sequenced subscriptions tracked.
pub const MAX_SIDS: usize = 64;

/// Result of checking one sequenced message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqCheck {
    /// In order (or the first message of the sid).
    InOrder,
    /// A gap: `expected` was due, `got` arrived. Every market of the sid must go stale.
    Gap {
        /// The seq that was due.
        expected: u64,
        /// The seq that arrived.
        got: u64,
    },
    /// A duplicate or old message (`got <= last`): drop it.
    Stale {
        /// The seq that arrived.
        got: u64,
    },
    /// More sids than [`MAX_SIDS`]: not tracked (reported so it is never silent).
    Untracked,
}

struct SidState {
    sid: u32,
    last: u64,
    markets: Box<[u64]>,
}

/// Per-sid sequence state and market membership.
pub struct Sequencer {
    sids: Vec<SidState>,
    words: usize,
}

impl Sequencer {
    /// A sequencer for a universe of `n_markets` markets. Allocates the membership table once.
    pub fn new(n_markets: usize) -> Sequencer {
        let words = n_markets.div_ceil(64).max(1);
        Sequencer { sids: Vec::with_capacity(MAX_SIDS), words }
    }

    fn slot(&mut self, sid: u32) -> Option<&mut SidState> {
        if let Some(i) = self.sids.iter().position(|s| s.sid == sid) {
            return Some(&mut self.sids[i]);
        }
        if self.sids.len() == MAX_SIDS {
            return None;
        }
        // First message of a new subscription: cold path (once per sid).
        self.sids.push(SidState { sid, last: 0, markets: vec![0u64; self.words].into_boxed_slice() });
        self.sids.last_mut()
    }

    /// Checks `seq` on `sid` and advances the counter (also after a gap, to the received value).
    #[inline]
    pub fn check(&mut self, sid: u32, seq: u64) -> SeqCheck {
        let Some(s) = self.slot(sid) else { return SeqCheck::Untracked };
        let r = if s.last == 0 || seq == s.last + 1 {
            SeqCheck::InOrder
        } else if seq <= s.last {
            return SeqCheck::Stale { got: seq };
        } else {
            SeqCheck::Gap { expected: s.last + 1, got: seq }
        };
        s.last = seq;
        r
    }

    /// Records that `market` belongs to `sid`.
    #[inline]
    pub fn attach(&mut self, sid: u32, market: MarketId) {
        if let Some(s) = self.slot(sid) {
            let i = market.idx();
            if let Some(w) = s.markets.get_mut(i / 64) {
                *w |= 1u64 << (i % 64);
            }
        }
    }

    /// Calls `f` for every market attached to `sid`.
    pub fn for_each_market(&self, sid: u32, mut f: impl FnMut(MarketId)) {
        if let Some(s) = self.sids.iter().find(|s| s.sid == sid) {
            for (w, &word) in s.markets.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    let b = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    f(MarketId((w * 64 + b) as u32));
                }
            }
        }
    }

    /// Forgets every sid (after a reconnect, sids are new and seq restarts).
    pub fn reset(&mut self) {
        self.sids.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_duplicates_and_resync() {
        let mut s = Sequencer::new(130);
        assert_eq!(s.check(1, 1), SeqCheck::InOrder);
        assert_eq!(s.check(1, 2), SeqCheck::InOrder);
        assert_eq!(s.check(1, 2), SeqCheck::Stale { got: 2 });
        assert_eq!(s.check(1, 4), SeqCheck::Gap { expected: 3, got: 4 });
        assert_eq!(s.check(1, 5), SeqCheck::InOrder);
        // independent counters per sid
        assert_eq!(s.check(2, 7), SeqCheck::InOrder);
        assert_eq!(s.check(2, 8), SeqCheck::InOrder);
        s.attach(1, MarketId(3));
        s.attach(1, MarketId(129));
        s.attach(2, MarketId(5));
        let mut m = Vec::new();
        s.for_each_market(1, |id| m.push(id.0));
        assert_eq!(m, vec![3, 129]);
    }
}
