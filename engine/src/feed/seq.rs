//! Sequencing per subscription id (`sid`).
//!
//! Kalshi's `seq` is one counter per sid, shared by every market of the subscription, and the
//! `ok` / `unsubscribed` acks that carry a `seq` consume a number too (both real recordings in
//! `STRIKE_DATA_DIR` show `ok` frames inside the contiguous run; `kalshi-protocol.md` §1.8).
//!
//! Rules:
//! - a delta or ack whose `seq` is not `last + 1` is a gap — including a repeated or backwards
//!   `seq`, since applying a delta twice corrupts the book as surely as missing one. A gap cannot
//!   be attributed to one market, so every market of the sid goes stale until its next
//!   snapshot, and the counter resynchronises on the received number;
//! - a snapshot is always applied: `seq == last + 1` advances, a jump is a gap for the sid's
//!   other markets, and a `seq` at or below `last` (a `get_snapshot` answer may reuse the current
//!   number — an open question in §1.8) leaves the counter where it is;
//! - a `subscribed` ack for a sid already tracked starts a new epoch (after a reconnect sids are
//!   reused and seq restarts): the counter resets and its markets go stale;
//! - `unsubscribed` frees the sid's slot.
//!
//! Markets are attached to a sid when a snapshot or delta of that sid names them. State is a
//! fixed table of [`MAX_SIDS`] slots sized at start-up; nothing allocates per message.

use strike_sdk::market::MarketId;

/// Most concurrent sequenced subscriptions tracked.
pub const MAX_SIDS: usize = 64;

const FREE: u32 = u32::MAX;

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
    /// A snapshot reusing an already-seen seq: apply it, counter unchanged.
    Reused,
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
}

impl Sequencer {
    /// A sequencer for a universe of `n_markets` markets. Allocates every slot now.
    pub fn new(n_markets: usize) -> Sequencer {
        let words = n_markets.div_ceil(64).max(1);
        Sequencer {
            sids: (0..MAX_SIDS)
                .map(|_| SidState { sid: FREE, last: 0, markets: vec![0u64; words].into_boxed_slice() })
                .collect(),
        }
    }

    fn slot(&mut self, sid: u32) -> Option<&mut SidState> {
        let i = match self.sids.iter().position(|s| s.sid == sid) {
            Some(i) => i,
            None => {
                let i = self.sids.iter().position(|s| s.sid == FREE)?;
                self.sids[i].sid = sid;
                i
            }
        };
        Some(&mut self.sids[i])
    }

    /// Checks the `seq` of a delta or ack on `sid` and advances the counter (after a gap, to
    /// the received value).
    #[inline]
    pub fn check(&mut self, sid: u32, seq: u64) -> SeqCheck {
        let Some(s) = self.slot(sid) else { return SeqCheck::Untracked };
        let r = if s.last == 0 || seq == s.last + 1 {
            SeqCheck::InOrder
        } else {
            SeqCheck::Gap { expected: s.last + 1, got: seq }
        };
        s.last = seq;
        r
    }

    /// Checks the `seq` of a snapshot (always applied; see the module docs).
    #[inline]
    pub fn check_snapshot(&mut self, sid: u32, seq: u64) -> SeqCheck {
        let Some(s) = self.slot(sid) else { return SeqCheck::Untracked };
        if s.last != 0 && seq <= s.last {
            return SeqCheck::Reused;
        }
        let r = if s.last == 0 || seq == s.last + 1 {
            SeqCheck::InOrder
        } else {
            SeqCheck::Gap { expected: s.last + 1, got: seq }
        };
        s.last = seq;
        r
    }

    /// A `subscribed` ack for `sid`: returns true when the sid was already tracked, in which case
    /// its counter is reset (the caller marks its markets stale first).
    pub fn restart(&mut self, sid: u32) -> bool {
        match self.sids.iter_mut().find(|s| s.sid == sid) {
            Some(s) => {
                s.last = 0;
                true
            }
            None => false,
        }
    }

    /// Forgets every sid (after a reconnect sids are new and seq restarts).
    pub fn reset(&mut self) {
        for s in self.sids.iter_mut() {
            s.sid = FREE;
            s.last = 0;
            s.markets.iter_mut().for_each(|w| *w = 0);
        }
    }

    /// Frees `sid`'s slot (after `unsubscribed`).
    pub fn remove(&mut self, sid: u32) {
        if let Some(s) = self.sids.iter_mut().find(|s| s.sid == sid) {
            s.sid = FREE;
            s.last = 0;
            s.markets.iter_mut().for_each(|w| *w = 0);
        }
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

    /// The sid `market` is attached to, if any.
    pub fn sid_of(&self, market: MarketId) -> Option<u32> {
        let (w, bit) = (market.idx() / 64, 1u64 << (market.idx() % 64));
        self.sids.iter().find(|s| s.sid != FREE && s.markets.get(w).is_some_and(|x| x & bit != 0)).map(|s| s.sid)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_duplicates_and_resync() {
        let mut s = Sequencer::new(130);
        assert_eq!(s.check(1, 1), SeqCheck::InOrder);
        assert_eq!(s.check(1, 2), SeqCheck::InOrder);
        // a repeated seq is a gap too: applying a delta twice corrupts the book
        assert_eq!(s.check(1, 2), SeqCheck::Gap { expected: 3, got: 2 });
        assert_eq!(s.check(1, 3), SeqCheck::InOrder);
        assert_eq!(s.check(1, 5), SeqCheck::Gap { expected: 4, got: 5 });
        assert_eq!(s.check(1, 6), SeqCheck::InOrder);
        // snapshots: reuse is accepted without moving the counter, a jump is a gap
        assert_eq!(s.check_snapshot(1, 6), SeqCheck::Reused);
        assert_eq!(s.check_snapshot(1, 7), SeqCheck::InOrder);
        assert_eq!(s.check_snapshot(1, 9), SeqCheck::Gap { expected: 8, got: 9 });
        // independent counters per sid
        assert_eq!(s.check(2, 7), SeqCheck::InOrder);
        assert_eq!(s.check(2, 8), SeqCheck::InOrder);
        s.attach(1, MarketId(3));
        s.attach(1, MarketId(129));
        s.attach(2, MarketId(5));
        let mut m = Vec::new();
        s.for_each_market(1, |id| m.push(id.0));
        assert_eq!(m, vec![3, 129]);
        // a new epoch of sid 1 (reconnect) restarts its counter
        assert!(s.restart(1));
        assert_eq!(s.check_snapshot(1, 1), SeqCheck::InOrder);
        assert!(!s.restart(42));
        // slots are freed on unsubscribe and reused
        for sid in 100..100 + MAX_SIDS as u32 - 2 {
            assert_eq!(s.check(sid, 1), SeqCheck::InOrder);
        }
        assert_eq!(s.check(999, 1), SeqCheck::Untracked);
        s.remove(100);
        assert_eq!(s.check(999, 1), SeqCheck::InOrder);
    }
}
