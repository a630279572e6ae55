//! Kalshi's token-bucket rate limits, enforced before a request is sent (`kalshi-protocol.md`
//! §3.8).
//!
//! Every authenticated request costs tokens ([`cost`]); a bucket refills continuously at its
//! tier's rate (tokens/s) up to its capacity (1 s or 2 s of refill). There are two independent
//! buckets per account, Read (GETs) and Write (orders, amends, cancels), and the Write bucket is
//! per shard: a single write with `exchange_index >= 1` bills that shard's own bucket, one with
//! `exchange_index: 0` the unscoped bucket, and a batch always the unscoped one ([`Bucket`]).
//!
//! The gateway asks [`RateLimiter::try_take`] before it sends; a request that does not fit is
//! held in the gateway's queue until [`RateLimiter::wait_ns`] says it will, never sent to be
//! rejected. A 429 from the exchange means its bucket and ours disagree (another process on the
//! key, a restart): [`RateLimiter::drain`] empties ours so the following requests wait too.
//!
//! All times are nanoseconds on the caller's clock (the gateway passes unix ns); the clock is an
//! argument, so the tests drive it by hand. Allocation-free after construction.

use std::fmt;

/// A Kalshi API tier: sets the refill rate and capacity of the Read and Write buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// 200 read / 100 write tokens/s.
    Basic,
    /// 300 / 300 tokens/s.
    Advanced,
    /// 600 / 600 tokens/s.
    Expert,
    /// 1,000 / 1,000 tokens/s.
    Premier,
    /// 2,000 / 2,000 tokens/s.
    Paragon,
    /// 4,000 / 4,000 tokens/s.
    Prime,
    /// 10,000 read / 8,000 write tokens/s.
    Prestige,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 7] =
        [Tier::Basic, Tier::Advanced, Tier::Expert, Tier::Premier, Tier::Paragon, Tier::Prime, Tier::Prestige];

    /// Read bucket refill rate, tokens/s.
    pub const fn read_rate(self) -> u32 {
        match self {
            Tier::Basic => 200,
            Tier::Advanced => 300,
            Tier::Expert => 600,
            Tier::Premier => 1_000,
            Tier::Paragon => 2_000,
            Tier::Prime => 4_000,
            Tier::Prestige => 10_000,
        }
    }

    /// Write bucket refill rate, tokens/s (each shard's bucket gets the full rate).
    pub const fn write_rate(self) -> u32 {
        match self {
            Tier::Basic => 100,
            Tier::Advanced => 300,
            Tier::Expert => 600,
            Tier::Premier => 1_000,
            Tier::Paragon => 2_000,
            Tier::Prime => 4_000,
            Tier::Prestige => 8_000,
        }
    }

    /// Read bucket capacity, tokens: 2 s of refill for Basic and Advanced, 1 s above.
    pub const fn read_capacity(self) -> u32 {
        match self {
            Tier::Basic | Tier::Advanced => 2 * self.read_rate(),
            _ => self.read_rate(),
        }
    }

    /// Write bucket capacity, tokens: 1 s of refill for Basic, 2 s above.
    pub const fn write_capacity(self) -> u32 {
        match self {
            Tier::Basic => self.write_rate(),
            _ => 2 * self.write_rate(),
        }
    }

    /// The tier named `s` (case-insensitive: `basic`, `advanced`, ... `prestige`).
    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(s))
    }

    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Tier::Basic => "basic",
            Tier::Advanced => "advanced",
            Tier::Expert => "expert",
            Tier::Premier => "premier",
            Tier::Paragon => "paragon",
            Tier::Prime => "prime",
            Tier::Prestige => "prestige",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Token costs of the requests the gateway sends (`kalshi-protocol.md` §3.6, §3.8), tokens.
pub mod cost {
    /// V2 create (`POST /portfolio/events/orders`).
    pub const CREATE: u32 = 10;
    /// V2 cancel (`DELETE /portfolio/events/orders/{id}`).
    pub const CANCEL: u32 = 2;
    /// Cancel all (`DELETE /portfolio/events/orders`).
    pub const CANCEL_ALL: u32 = 2;
    /// Batched create, per order in the batch.
    pub const BATCH_CREATE_PER_ORDER: u32 = 10;
    /// Batched cancel, per order in the batch.
    pub const BATCH_CANCEL_PER_ORDER: u32 = 2;
    /// Amend (`POST /portfolio/events/orders/{id}/amend`).
    pub const AMEND: u32 = 10;
    /// Decrease (`POST /portfolio/events/orders/{id}/decrease`).
    pub const DECREASE: u32 = 10;
    /// A read with the default cost (`GET /portfolio/orders`).
    pub const READ: u32 = 10;
}

/// Nano-tokens per token: bucket levels are kept in 1e-9 tokens so that refilling `dt` ns at
/// `r` tokens/s adds exactly `dt * r` nano-tokens, in integers.
const NANO: u64 = 1_000_000_000;

/// One token bucket: continuous refill at `rate` tokens/s up to `capacity` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Refill rate, tokens/s.
    rate: u64,
    /// Capacity, nano-tokens.
    cap_nt: u64,
    /// Level at `last_ns`, nano-tokens.
    level_nt: u64,
    /// When `level_nt` was computed, ns.
    last_ns: u64,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilling at `rate` tokens/s, as of `now_ns`.
    pub fn new(rate: u32, capacity: u32, now_ns: u64) -> TokenBucket {
        let cap_nt = u64::from(capacity) * NANO;
        TokenBucket { rate: u64::from(rate), cap_nt, level_nt: cap_nt, last_ns: now_ns }
    }

    /// Refill rate, tokens/s.
    pub fn rate(&self) -> u32 {
        self.rate as u32
    }

    /// Capacity, tokens.
    pub fn capacity(&self) -> u32 {
        (self.cap_nt / NANO) as u32
    }

    #[inline]
    fn refill(&mut self, now_ns: u64) {
        // A clock that went backwards refills nothing (and does not move `last_ns` back).
        if now_ns > self.last_ns {
            let add = (now_ns - self.last_ns).saturating_mul(self.rate);
            self.level_nt = self.level_nt.saturating_add(add).min(self.cap_nt);
            self.last_ns = now_ns;
        }
    }

    /// Whole tokens available at `now_ns`.
    pub fn available(&mut self, now_ns: u64) -> u32 {
        self.refill(now_ns);
        (self.level_nt / NANO) as u32
    }

    /// Takes `cost` tokens if the bucket holds them at `now_ns`; returns whether it did.
    #[inline]
    pub fn try_take(&mut self, cost: u32, now_ns: u64) -> bool {
        self.refill(now_ns);
        let need = u64::from(cost) * NANO;
        if self.level_nt >= need {
            self.level_nt -= need;
            true
        } else {
            false
        }
    }

    /// Nanoseconds from `now_ns` until `cost` tokens are available (0 = now), or `None` when
    /// `cost` exceeds the capacity and never will be.
    pub fn wait_ns(&mut self, cost: u32, now_ns: u64) -> Option<u64> {
        let need = u64::from(cost) * NANO;
        if need > self.cap_nt {
            return None;
        }
        self.refill(now_ns);
        if self.level_nt >= need {
            return Some(0);
        }
        if self.rate == 0 {
            return None;
        }
        Some((need - self.level_nt).div_ceil(self.rate))
    }

    /// Empties the bucket at `now_ns` (after a 429: the exchange's bucket is empty).
    pub fn drain(&mut self, now_ns: u64) {
        self.refill(now_ns);
        self.level_nt = 0;
    }
}

/// Which bucket a request bills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// The Read bucket (not shard-scoped).
    Read,
    /// A Write bucket: `0` is the unscoped bucket, `n >= 1` shard `n`'s own.
    Write(u8),
}

impl Bucket {
    /// The bucket a single write to `exchange_index` bills.
    #[inline]
    pub const fn write(exchange_index: u8) -> Bucket {
        Bucket::Write(exchange_index)
    }

    /// The bucket every batch write bills (the unscoped Write bucket).
    pub const BATCH: Bucket = Bucket::Write(0);
}

/// The account's buckets: Read, unscoped Write and one Write bucket per shard.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    tier: Tier,
    read: TokenBucket,
    /// Index 0: unscoped; index n: shard n.
    write: Vec<TokenBucket>,
}

impl RateLimiter {
    /// Full buckets for `tier` with Write buckets for shards `0..=max_shard`, as of `now_ns`.
    /// A write to a shard above `max_shard` bills the highest bucket (make `max_shard` cover
    /// every shard traded: 3 today, `kalshi-protocol.md` §3.9).
    pub fn new(tier: Tier, max_shard: u8, now_ns: u64) -> RateLimiter {
        RateLimiter {
            tier,
            read: TokenBucket::new(tier.read_rate(), tier.read_capacity(), now_ns),
            write: (0..=max_shard)
                .map(|_| TokenBucket::new(tier.write_rate(), tier.write_capacity(), now_ns))
                .collect(),
        }
    }

    /// The tier.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    #[inline]
    fn bucket(&mut self, b: Bucket) -> &mut TokenBucket {
        match b {
            Bucket::Read => &mut self.read,
            Bucket::Write(i) => {
                let i = (i as usize).min(self.write.len() - 1);
                &mut self.write[i]
            }
        }
    }

    /// Takes `cost` tokens from `b` if they are there at `now_ns`; returns whether it did.
    #[inline]
    pub fn try_take(&mut self, b: Bucket, cost: u32, now_ns: u64) -> bool {
        self.bucket(b).try_take(cost, now_ns)
    }

    /// Nanoseconds until `cost` tokens are in `b` (0 = now); `None` when `cost` is above the
    /// bucket's capacity (a batch too large for the tier: it can never be sent whole).
    pub fn wait_ns(&mut self, b: Bucket, cost: u32, now_ns: u64) -> Option<u64> {
        self.bucket(b).wait_ns(cost, now_ns)
    }

    /// Whole tokens in `b` at `now_ns`.
    pub fn available(&mut self, b: Bucket, now_ns: u64) -> u32 {
        self.bucket(b).available(now_ns)
    }

    /// Capacity of `b`, tokens.
    pub fn capacity(&mut self, b: Bucket) -> u32 {
        self.bucket(b).capacity()
    }

    /// Empties `b` at `now_ns` (the exchange answered 429 for a request billed to it).
    pub fn drain(&mut self, b: Bucket, now_ns: u64) {
        self.bucket(b).drain(now_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    #[test]
    fn tier_table_matches_the_docs() {
        let want = [
            (Tier::Basic, 200, 400, 100, 100),
            (Tier::Advanced, 300, 600, 300, 600),
            (Tier::Expert, 600, 600, 600, 1200),
            (Tier::Premier, 1000, 1000, 1000, 2000),
            (Tier::Paragon, 2000, 2000, 2000, 4000),
            (Tier::Prime, 4000, 4000, 4000, 8000),
            (Tier::Prestige, 10000, 10000, 8000, 16000),
        ];
        for (t, rr, rc, wr, wc) in want {
            assert_eq!((t.read_rate(), t.read_capacity(), t.write_rate(), t.write_capacity()), (rr, rc, wr, wc), "{t}");
            assert_eq!(Tier::parse(&t.name().to_uppercase()), Some(t));
        }
        assert_eq!(Tier::parse("gold"), None);
    }

    #[test]
    fn bucket_starts_full_refills_continuously_and_caps() {
        let t0 = 1_000 * S;
        let mut b = TokenBucket::new(100, 100, t0);
        // Basic write: 10 creates back to back, then empty.
        for _ in 0..10 {
            assert!(b.try_take(cost::CREATE, t0));
        }
        assert!(!b.try_take(cost::CREATE, t0));
        assert!(b.try_take(cost::CANCEL, t0 + 20 * MS), "2 tokens refill in 20 ms at 100/s");
        assert!(!b.try_take(cost::CREATE, t0 + 20 * MS));
        assert_eq!(b.wait_ns(cost::CREATE, t0 + 20 * MS), Some(100 * MS));
        assert!(!b.try_take(cost::CREATE, t0 + 120 * MS - 1));
        assert!(b.try_take(cost::CREATE, t0 + 120 * MS));
        // A long idle period refills only up to the capacity.
        assert_eq!(b.available(t0 + 3600 * S), 100);
        assert_eq!(b.wait_ns(101, t0 + 3600 * S), None, "above capacity: never");
        assert_eq!(b.wait_ns(100, t0 + 3600 * S), Some(0));
    }

    #[test]
    fn fractional_refill_is_exact_in_integers() {
        let t0 = 5 * S;
        let mut b = TokenBucket::new(300, 600, t0);
        b.drain(t0);
        // 300 tokens/s: one token every 3.333.. ms; 10 tokens after exactly 33,333,334 ns.
        assert_eq!(b.wait_ns(10, t0), Some(33_333_334));
        assert!(!b.try_take(10, t0 + 33_333_333));
        assert!(b.try_take(10, t0 + 33_333_334));
    }

    #[test]
    fn clock_going_backwards_refills_nothing() {
        let mut b = TokenBucket::new(100, 100, 10 * S);
        b.drain(10 * S);
        assert_eq!(b.available(9 * S), 0);
        assert_eq!(b.available(10 * S + 100 * MS), 10);
    }

    #[test]
    fn shards_have_their_own_write_buckets_and_batches_bill_unscoped() {
        let t0 = 100 * S;
        let mut rl = RateLimiter::new(Tier::Basic, 3, t0);
        // Drain the unscoped bucket with single creates on shard 0.
        while rl.try_take(Bucket::write(0), cost::CREATE, t0) {}
        assert_eq!(rl.available(Bucket::write(0), t0), 0);
        // Shard 2 is untouched; Read is independent.
        assert!(rl.try_take(Bucket::write(2), cost::CREATE, t0));
        assert_eq!(rl.available(Bucket::write(2), t0), 90);
        assert_eq!(rl.available(Bucket::Read, t0), 400);
        // A batch bills the unscoped bucket, which is empty, even for shard-2 orders.
        assert!(!rl.try_take(Bucket::BATCH, 2 * cost::BATCH_CREATE_PER_ORDER, t0));
        assert_eq!(rl.wait_ns(Bucket::BATCH, 20, t0), Some(200 * MS));
        // An out-of-range shard shares the highest bucket instead of panicking.
        assert!(rl.try_take(Bucket::write(9), cost::CREATE, t0));
        assert_eq!(rl.available(Bucket::write(3), t0), 90);
        // A batch larger than the capacity can never be sent whole.
        assert_eq!(rl.wait_ns(Bucket::BATCH, 11 * cost::BATCH_CREATE_PER_ORDER, t0 + 10 * S), None);
        assert_eq!(rl.capacity(Bucket::BATCH), 100);
    }
}
