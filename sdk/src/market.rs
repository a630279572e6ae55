//! Market metadata and the market universe: ids, tickers, events, strikes, outcome groups.
//!
//! Kalshi's hierarchy is series (`KXHIGHNY`) → event (`KXHIGHNY-26AUG12`) → market
//! (`KXHIGHNY-26AUG12-T90`) (Kalshi docs: *Get markets*, *Get events*, `kalshi-protocol.md` §4).
//! Tickers are interned to a dense [`MarketId`] when the market is subscribed; everything after
//! that indexes arrays by id. An [`OutcomeGroup`] is the set of markets of one event that
//! partition or ladder one outcome: mutually exclusive brackets (exactly one pays) or a
//! threshold ladder (`greater` strikes: the YES prices must fall as the strike rises).
//!
//! All types are `#[repr(C)]` plain data: they cross the plugin ABI unchanged.

use crate::fees::FeeSchedule;
use crate::grid::PriceGrid;
use crate::num::Price;
use core::fmt;

/// Dense id of a subscribed market: an index into the universe's arrays.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MarketId(pub u32);

impl MarketId {
    /// The id as an array index.
    #[inline]
    pub const fn idx(self) -> usize {
        self.0 as usize
    }
}

/// Capacity of a [`Ticker`] in bytes.
pub const TICKER_CAP: usize = 79;

/// A ticker held inline (no heap): up to [`TICKER_CAP`] ASCII bytes.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticker {
    len: u8,
    bytes: [u8; TICKER_CAP],
}

impl Default for Ticker {
    fn default() -> Self {
        Ticker { len: 0, bytes: [0; TICKER_CAP] }
    }
}

/// A ticker longer than [`TICKER_CAP`] bytes or not printable ASCII.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickerError {
    /// Length of the refused ticker in bytes.
    pub len: usize,
}

impl fmt::Display for TickerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ticker of {} bytes is empty, longer than {TICKER_CAP} bytes, or not printable ASCII", self.len)
    }
}

impl std::error::Error for TickerError {}

impl Ticker {
    /// Copies `s` inline. Errors when longer than [`TICKER_CAP`] or not printable ASCII.
    pub fn new(s: &str) -> Result<Ticker, TickerError> {
        let b = s.as_bytes();
        if b.len() > TICKER_CAP || !b.iter().all(|c| c.is_ascii_graphic()) {
            return Err(TickerError { len: b.len() });
        }
        let mut t = Ticker::default();
        t.bytes[..b.len()].copy_from_slice(b);
        t.len = b.len() as u8;
        Ok(t)
    }
    /// The ticker text.
    #[inline]
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}
impl fmt::Display for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a market's strike decides YES (Kalshi `strike_type`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StrikeType {
    /// Not known (e.g. a recording without metadata).
    #[default]
    Unknown = 0,
    /// YES if value > floor.
    Greater = 1,
    /// YES if value >= floor.
    GreaterOrEqual = 2,
    /// YES if value < cap.
    Less = 3,
    /// YES if value <= cap.
    LessOrEqual = 4,
    /// YES if floor <= value <= cap (read `rules_primary` for inclusivity).
    Between = 5,
    /// Functional strike.
    Functional = 6,
    /// Custom strike.
    Custom = 7,
    /// Structured strike.
    Structured = 8,
}

impl StrikeType {
    /// Parses Kalshi's `strike_type`; unknown strings give [`StrikeType::Unknown`].
    pub fn from_name(s: &str) -> StrikeType {
        match s {
            "greater" => StrikeType::Greater,
            "greater_or_equal" => StrikeType::GreaterOrEqual,
            "less" => StrikeType::Less,
            "less_or_equal" => StrikeType::LessOrEqual,
            "between" => StrikeType::Between,
            "functional" => StrikeType::Functional,
            "custom" => StrikeType::Custom,
            "structured" => StrikeType::Structured,
            _ => StrikeType::Unknown,
        }
    }
    /// Kalshi's name.
    pub const fn name(self) -> &'static str {
        match self {
            StrikeType::Unknown => "unknown",
            StrikeType::Greater => "greater",
            StrikeType::GreaterOrEqual => "greater_or_equal",
            StrikeType::Less => "less",
            StrikeType::LessOrEqual => "less_or_equal",
            StrikeType::Between => "between",
            StrikeType::Functional => "functional",
            StrikeType::Custom => "custom",
            StrikeType::Structured => "structured",
        }
    }
}

/// A strike value in ten-thousandths of the underlying's unit (`84.5`°F → 845000,
/// `60499.99` → 604999900). `None` when the market has no such strike.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Strike {
    /// Whether a value is present.
    pub present: bool,
    /// The value × 10⁴.
    pub value_e4: i64,
}

impl Strike {
    /// No strike.
    pub const NONE: Strike = Strike { present: false, value_e4: 0 };
    /// A strike of `value_e4 / 10⁴`.
    pub const fn new(value_e4: i64) -> Strike {
        Strike { present: true, value_e4 }
    }
    /// Parses a decimal strike (`"84.5"`, `"60499.99"`, `"-3"`), up to 4 decimals.
    pub fn parse(s: &str) -> Result<Strike, crate::num::ParseError> {
        crate::num::parse_fixed(s.as_bytes(), 4, true).map(Strike::new)
    }
    /// The value, if present.
    pub const fn get(self) -> Option<i64> {
        if self.present {
            Some(self.value_e4)
        } else {
            None
        }
    }
}

/// Settlement result of a market, where known.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Settlement {
    /// Not settled (or not known).
    #[default]
    Unknown = 0,
    /// Settled YES: YES pays $1.
    Yes = 1,
    /// Settled NO: NO pays $1.
    No = 2,
}

/// Dense id of an outcome group (index into [`Universe::groups`]).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GroupId(pub u32);

impl GroupId {
    /// No group.
    pub const NONE: GroupId = GroupId(u32::MAX);
}

/// What ties the markets of an outcome group together.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GroupKind {
    /// Markets of one event with no known relation.
    #[default]
    Unrelated = 0,
    /// Mutually exclusive and exhaustive brackets: exactly one market settles YES, so the YES
    /// prices should sum to $1.
    Brackets = 1,
    /// A threshold ladder (`greater` strikes of one underlying): YES prices must not rise as the
    /// strike rises.
    Ladder = 2,
}

/// A set of markets of one event that partition or ladder one outcome.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutcomeGroup {
    /// This group's id.
    pub id: GroupId,
    /// The relation between the members.
    pub kind: GroupKind,
    /// The event ticker.
    pub event: Ticker,
    /// Start of the members in [`Universe::group_members`].
    pub first_member: u32,
    /// Number of members; members are ordered by strike (floor, then cap), ascending.
    pub n_members: u32,
}

/// Everything a strategy may know about one market.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketMeta {
    /// Dense id, equal to this market's index in the universe.
    pub id: MarketId,
    /// Market ticker (`KXHIGHNY-26AUG12-T90`).
    pub ticker: Ticker,
    /// Event ticker (`KXHIGHNY-26AUG12`); empty when unknown.
    pub event: Ticker,
    /// Series ticker (`KXHIGHNY`); empty when unknown.
    pub series: Ticker,
    /// The outcome group this market belongs to, or [`GroupId::NONE`].
    pub group: GroupId,
    /// How the strike decides YES.
    pub strike_type: StrikeType,
    /// Lower strike (`floor_strike`).
    pub floor_strike: Strike,
    /// Upper strike (`cap_strike`).
    pub cap_strike: Strike,
    /// Valid prices.
    pub grid: PriceGrid,
    /// Fee rules.
    pub fees: FeeSchedule,
    /// Trading opens at this unix time in ms (0 = unknown).
    pub open_ts_ms: i64,
    /// Trading closes at this unix time in ms (0 = unknown).
    pub close_ts_ms: i64,
    /// The exchange shard the market lives on (Kalshi `exchange_index`).
    pub exchange_index: u8,
    /// Settlement result, where known (replays of settled sessions).
    pub settlement: Settlement,
}

impl MarketMeta {
    /// A market known only by ticker: linear-cent grid, quadratic taker fees, no event.
    pub fn bare(id: MarketId, ticker: Ticker) -> MarketMeta {
        MarketMeta {
            id,
            ticker,
            event: Ticker::default(),
            series: Ticker::default(),
            group: GroupId::NONE,
            strike_type: StrikeType::Unknown,
            floor_strike: Strike::NONE,
            cap_strike: Strike::NONE,
            grid: PriceGrid::default(),
            fees: FeeSchedule::default(),
            open_ts_ms: 0,
            close_ts_ms: 0,
            exchange_index: 0,
            settlement: Settlement::Unknown,
        }
    }

    /// The settlement value of one YES contract, where known.
    pub fn settlement_price(&self) -> Option<Price> {
        match self.settlement {
            Settlement::Yes => Some(Price::MAX),
            Settlement::No => Some(Price::ZERO),
            Settlement::Unknown => None,
        }
    }
}

/// A borrowed view of the market universe, as it crosses the plugin ABI.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Universe {
    markets: *const MarketMeta,
    n_markets: u32,
    n_groups: u32,
    groups: *const OutcomeGroup,
    members: *const MarketId,
    n_members: u32,
}

impl Universe {
    /// A view over host-owned slices. `members` holds every group's members contiguously.
    ///
    /// # Safety
    /// The view keeps raw pointers (it crosses the C ABI, so it carries no lifetime): the
    /// slices must stay alive and unmoved for as long as the view or any copy of it is used.
    pub unsafe fn from_slices(markets: &[MarketMeta], groups: &[OutcomeGroup], members: &[MarketId]) -> Universe {
        Universe {
            markets: markets.as_ptr(),
            n_markets: markets.len() as u32,
            n_groups: groups.len() as u32,
            groups: groups.as_ptr(),
            members: members.as_ptr(),
            n_members: members.len() as u32,
        }
    }

    /// Every market, indexed by [`MarketId`].
    #[inline]
    pub fn markets(&self) -> &[MarketMeta] {
        // SAFETY: built by `from_slices` from a live slice of this length.
        unsafe { slice(self.markets, self.n_markets) }
    }

    /// One market's metadata.
    #[inline]
    pub fn market(&self, id: MarketId) -> Option<&MarketMeta> {
        self.markets().get(id.idx())
    }

    /// Every outcome group, indexed by [`GroupId`].
    #[inline]
    pub fn groups(&self) -> &[OutcomeGroup] {
        // SAFETY: as `markets`.
        unsafe { slice(self.groups, self.n_groups) }
    }

    /// One outcome group.
    #[inline]
    pub fn group(&self, id: GroupId) -> Option<&OutcomeGroup> {
        self.groups().get(id.0 as usize)
    }

    /// The members of `group`, ordered by strike.
    #[inline]
    pub fn group_members(&self, group: &OutcomeGroup) -> &[MarketId] {
        // SAFETY: as `markets`.
        let all = unsafe { slice(self.members, self.n_members) };
        let a = group.first_member as usize;
        all.get(a..a + group.n_members as usize).unwrap_or(&[])
    }

    /// Looks a market up by ticker. O(n): for set-up, not the hot path.
    pub fn find(&self, ticker: &str) -> Option<&MarketMeta> {
        self.markets().iter().find(|m| m.ticker.as_str() == ticker)
    }
}

#[inline]
unsafe fn slice<'a, T>(p: *const T, n: u32) -> &'a [T] {
    if n == 0 || p.is_null() {
        &[]
    } else {
        core::slice::from_raw_parts(p, n as usize)
    }
}

/// Offsets of the private fields of [`Universe`], for the ABI golden file.
pub(crate) fn universe_private_layout() -> String {
    use core::mem::offset_of;
    format!(
        "  .markets @{}\n  .n_markets @{}\n  .n_groups @{}\n  .groups @{}\n  .members @{}\n  .n_members @{}\n",
        offset_of!(Universe, markets),
        offset_of!(Universe, n_markets),
        offset_of!(Universe, n_groups),
        offset_of!(Universe, groups),
        offset_of!(Universe, members),
        offset_of!(Universe, n_members),
    )
}

/// Offsets of the private fields of [`Ticker`], for the ABI golden file.
pub(crate) fn ticker_private_layout() -> String {
    use core::mem::offset_of;
    format!("  .len @{}\n  .bytes @{}\n", offset_of!(Ticker, len), offset_of!(Ticker, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickers_are_inline_and_bounded() {
        let t = Ticker::new("KXHIGHNY-26AUG12-T90").unwrap();
        assert_eq!(t.as_str(), "KXHIGHNY-26AUG12-T90");
        assert!(Ticker::new(&"X".repeat(TICKER_CAP + 1)).is_err());
        assert!(Ticker::new("has space").is_err());
    }

    #[test]
    fn strikes_parse() {
        assert_eq!(Strike::parse("84.5").unwrap().get(), Some(845_000));
        assert_eq!(Strike::parse("60499.99").unwrap().get(), Some(604_999_900));
    }
}
