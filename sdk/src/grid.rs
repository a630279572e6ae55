//! Price grids: which prices a market accepts, and the map between a price and a level index.
//!
//! Kalshi gives each market's valid prices as `price_ranges`, bands of `{start, end, step}` in
//! dollars; `price_level_structure` is only a label for 12 named band sets (Kalshi docs:
//! *Price level structures*, `kalshi-protocol.md` §2.4). A [`PriceGrid`] numbers every valid price
//! from 0 upward so a [`crate::Book`] can be a flat array. Band endpoints shared by two bands are
//! one level. All 12 named structures are symmetric about $0.50, so a NO price `q` is on the grid
//! exactly when the YES price `1 − q` is.

use crate::num::{ParseError, Price};
use core::fmt;

/// Most bands a grid holds. The widest named structure has 3.
pub const MAX_BANDS: usize = 4;

/// One band of a grid: every price `start, start+step, ..., end`, in centicents.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Band {
    /// First price of the band (centicents).
    pub start: u16,
    /// Last price of the band, inclusive (centicents).
    pub end: u16,
    /// Distance between prices (centicents), > 0.
    pub step: u16,
    /// Level index of the band's first price that is not shared with the band before it.
    pub first_level: u16,
}

/// The 12 named `price_level_structure` values, plus `Custom` for any other valid band set.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PriceStructure {
    /// 0.00–1.00 step 0.01 (101 levels): most markets.
    #[default]
    LinearCent = 0,
    /// 0.00–1.00 step 0.001.
    DeciCent = 1,
    /// 0–0.10: 0.001; 0.10–0.90: 0.01; 0.90–1.00: 0.001.
    TaperedDeciCent = 2,
    /// 0–0.10: 0.005; 0.10–0.90: 0.01; 0.90–1: 0.005.
    CenterWholeEdgeHalfCent = 3,
    /// 0–0.10: 0.002; 0.10–0.90: 0.01; 0.90–1: 0.002.
    CenterWholeEdgeQuintCent = 4,
    /// 0–1: 0.005.
    CenterHalfEdgeHalfCent = 5,
    /// 0–0.10: 0.002; 0.10–0.90: 0.005; 0.90–1: 0.002.
    CenterHalfEdgeQuintCent = 6,
    /// 0–0.10: 0.001; 0.10–0.90: 0.005; 0.90–1: 0.001.
    CenterHalfEdgeDeciCent = 7,
    /// 0–1: 0.002.
    CenterQuintEdgeQuintCent = 8,
    /// 0–0.10: 0.001; 0.10–0.90: 0.002; 0.90–1: 0.001.
    CenterQuintEdgeDeciCent = 9,
    /// 0–1: 0.0001 (10,001 levels).
    CenterCentiEdgeCentiCent = 10,
    /// 0–0.01: 0.0001; 0.01–0.99: 0.001; 0.99–1: 0.0001 (combos since 2026-08).
    CenterDeciEdgeCentiCent = 11,
    /// Bands from `price_ranges` that match no named structure.
    Custom = 255,
}

impl PriceStructure {
    /// All named structures, in Kalshi's documented order.
    pub const ALL: [PriceStructure; 12] = [
        Self::LinearCent,
        Self::DeciCent,
        Self::TaperedDeciCent,
        Self::CenterWholeEdgeHalfCent,
        Self::CenterWholeEdgeQuintCent,
        Self::CenterHalfEdgeHalfCent,
        Self::CenterHalfEdgeQuintCent,
        Self::CenterHalfEdgeDeciCent,
        Self::CenterQuintEdgeQuintCent,
        Self::CenterQuintEdgeDeciCent,
        Self::CenterCentiEdgeCentiCent,
        Self::CenterDeciEdgeCentiCent,
    ];

    /// Kalshi's name (`"linear_cent"`, ...); `"custom"` for [`PriceStructure::Custom`].
    pub const fn name(self) -> &'static str {
        match self {
            Self::LinearCent => "linear_cent",
            Self::DeciCent => "deci_cent",
            Self::TaperedDeciCent => "tapered_deci_cent",
            Self::CenterWholeEdgeHalfCent => "center_whole_edge_half_cent",
            Self::CenterWholeEdgeQuintCent => "center_whole_edge_quint_cent",
            Self::CenterHalfEdgeHalfCent => "center_half_edge_half_cent",
            Self::CenterHalfEdgeQuintCent => "center_half_edge_quint_cent",
            Self::CenterHalfEdgeDeciCent => "center_half_edge_deci_cent",
            Self::CenterQuintEdgeQuintCent => "center_quint_edge_quint_cent",
            Self::CenterQuintEdgeDeciCent => "center_quint_edge_deci_cent",
            Self::CenterCentiEdgeCentiCent => "center_centi_edge_centi_cent",
            Self::CenterDeciEdgeCentiCent => "center_deci_edge_centi_cent",
            Self::Custom => "custom",
        }
    }

    /// The structure with Kalshi name `name`, if it is one of the 12.
    pub fn from_name(name: &str) -> Option<PriceStructure> {
        Self::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The structure's bands as `(start, end, step)` in centicents.
    pub const fn bands(self) -> &'static [(u16, u16, u16)] {
        match self {
            Self::LinearCent => &[(0, 10000, 100)],
            Self::DeciCent => &[(0, 10000, 10)],
            Self::TaperedDeciCent => &[(0, 1000, 10), (1000, 9000, 100), (9000, 10000, 10)],
            Self::CenterWholeEdgeHalfCent => &[(0, 1000, 50), (1000, 9000, 100), (9000, 10000, 50)],
            Self::CenterWholeEdgeQuintCent => &[(0, 1000, 20), (1000, 9000, 100), (9000, 10000, 20)],
            Self::CenterHalfEdgeHalfCent => &[(0, 10000, 50)],
            Self::CenterHalfEdgeQuintCent => &[(0, 1000, 20), (1000, 9000, 50), (9000, 10000, 20)],
            Self::CenterHalfEdgeDeciCent => &[(0, 1000, 10), (1000, 9000, 50), (9000, 10000, 10)],
            Self::CenterQuintEdgeQuintCent => &[(0, 10000, 20)],
            Self::CenterQuintEdgeDeciCent => &[(0, 1000, 10), (1000, 9000, 20), (9000, 10000, 10)],
            Self::CenterCentiEdgeCentiCent => &[(0, 10000, 1)],
            Self::CenterDeciEdgeCentiCent => &[(0, 100, 1), (100, 9900, 10), (9900, 10000, 1)],
            Self::Custom => &[],
        }
    }

    /// The grid of a named structure. [`PriceStructure::Custom`] gives the linear-cent grid.
    pub fn grid(self) -> PriceGrid {
        let b = if self == Self::Custom { Self::LinearCent.bands() } else { self.bands() };
        let mut g = PriceGrid::from_bands(b).expect("named structures are valid");
        g.structure = self;
        g
    }
}

/// Why a set of `price_ranges` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridError {
    /// No bands at all.
    Empty,
    /// More than [`MAX_BANDS`] bands.
    TooManyBands,
    /// A band with `step == 0`, `start >= end`, or `end − start` not a multiple of `step`.
    BadBand {
        /// Index of the band in `price_ranges`.
        index: u8,
    },
    /// Bands not ascending and contiguous (each must start where the previous ended).
    NotContiguous {
        /// Index of the band in `price_ranges`.
        index: u8,
    },
    /// A band's bound or step was not a valid price string.
    BadNumber(ParseError),
}

impl fmt::Display for GridError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GridError::Empty => f.write_str("price_ranges is empty"),
            GridError::TooManyBands => write!(f, "price_ranges has more than {MAX_BANDS} bands"),
            GridError::BadBand { index } => {
                write!(f, "price_ranges[{index}]: step must be > 0, start < end, and end - start a multiple of step")
            }
            GridError::NotContiguous { index } => {
                write!(f, "price_ranges[{index}] does not start where the previous band ended")
            }
            GridError::BadNumber(e) => write!(f, "price_ranges: {e}"),
        }
    }
}

impl std::error::Error for GridError {}

/// A market's valid prices, numbered `0..n_levels` in ascending price order.
///
/// Plain `#[repr(C)]` data, so it crosses the plugin ABI inside [`crate::MarketMeta`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriceGrid {
    /// Bands, ascending; only the first `n_bands` are meaningful.
    pub bands: [Band; MAX_BANDS],
    /// Number of bands in use.
    pub n_bands: u8,
    /// The named structure these bands match, or `Custom`.
    pub structure: PriceStructure,
    /// Number of levels (valid prices).
    pub n_levels: u16,
}

impl Default for PriceGrid {
    fn default() -> Self {
        PriceStructure::LinearCent.grid()
    }
}

impl PriceGrid {
    /// Builds a grid from bands `(start, end, step)` in centicents, checking that they are valid,
    /// ascending and contiguous. The structure is recognised when the bands match a named one.
    pub fn from_bands(bands: &[(u16, u16, u16)]) -> Result<PriceGrid, GridError> {
        if bands.is_empty() {
            return Err(GridError::Empty);
        }
        if bands.len() > MAX_BANDS {
            return Err(GridError::TooManyBands);
        }
        let mut g = PriceGrid {
            bands: [Band::default(); MAX_BANDS],
            n_bands: bands.len() as u8,
            structure: PriceStructure::Custom,
            n_levels: 0,
        };
        let mut level: u32 = 0;
        for (i, &(start, end, step)) in bands.iter().enumerate() {
            if step == 0 || start >= end || end > Price::ONE || (end - start) % step != 0 {
                return Err(GridError::BadBand { index: i as u8 });
            }
            let shared = i > 0 && bands[i - 1].1 == start;
            if i > 0 && !shared {
                return Err(GridError::NotContiguous { index: i as u8 });
            }
            let count = (end - start) / step + if shared { 0 } else { 1 };
            g.bands[i] = Band { start, end, step, first_level: level as u16 };
            level += count as u32;
        }
        g.n_levels = level as u16;
        g.structure =
            PriceStructure::ALL.iter().copied().find(|s| s.bands() == bands).unwrap_or(PriceStructure::Custom);
        Ok(g)
    }

    /// Builds a grid from Kalshi `price_ranges` strings `(start, end, step)` in dollars
    /// (`("0.0000","1.0000","0.0100")`).
    pub fn from_price_ranges<'a>(
        ranges: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Result<PriceGrid, GridError> {
        let mut b = [(0u16, 0u16, 0u16); MAX_BANDS];
        let mut n = 0usize;
        for (s, e, st) in ranges {
            if n == MAX_BANDS {
                return Err(GridError::TooManyBands);
            }
            let p = |x: &str| Price::parse(x).map(|p| p.0).map_err(GridError::BadNumber);
            b[n] = (p(s)?, p(e)?, p(st)?);
            n += 1;
        }
        Self::from_bands(&b[..n])
    }

    /// The bands in use.
    #[inline]
    pub fn bands(&self) -> &[Band] {
        &self.bands[..self.n_bands as usize]
    }

    /// Number of valid prices.
    #[inline]
    pub fn n_levels(&self) -> usize {
        self.n_levels as usize
    }

    /// The level index of `price`, or `None` when the price is not on the grid. O(bands).
    #[inline]
    pub fn level_of(&self, price: Price) -> Option<u16> {
        let p = price.0;
        for (i, b) in self.bands().iter().enumerate() {
            if p >= b.start && p <= b.end {
                let off = p - b.start;
                if !off.is_multiple_of(b.step) {
                    return None;
                }
                let shared = i > 0;
                let k = off / b.step;
                return Some(if shared { b.first_level + k - 1 } else { b.first_level + k });
            }
        }
        None
    }

    /// The price at `level`, or `None` past the last level.
    #[inline]
    pub fn price_at(&self, level: u16) -> Option<Price> {
        if level >= self.n_levels {
            return None;
        }
        let bands = self.bands();
        let mut i = bands.len() - 1;
        while bands[i].first_level > level {
            i -= 1;
        }
        let b = bands[i];
        let k = level - b.first_level + if i > 0 { 1 } else { 0 };
        Some(Price(b.start + k * b.step))
    }

    /// True when `price` is a valid price of this market.
    #[inline]
    pub fn contains(&self, price: Price) -> bool {
        self.level_of(price).is_some()
    }

    /// The grid step at `price` going up: the distance to the next valid price above it
    /// (centicents). `None` at or above the top of the grid or off-grid.
    #[inline]
    pub fn tick_above(&self, price: Price) -> Option<u16> {
        let l = self.level_of(price)?;
        Some(self.price_at(l + 1)?.0 - price.0)
    }

    /// The next valid price strictly above `price` (on or off the grid), if any.
    #[inline]
    pub fn next_above(&self, price: Price) -> Option<Price> {
        for b in self.bands() {
            if price.0 < b.end {
                let k = if price.0 < b.start { 0 } else { (price.0 - b.start) / b.step + 1 };
                return Some(Price(b.start + k * b.step));
            }
        }
        None
    }

    /// The next valid price strictly below `price` (on or off the grid), if any.
    #[inline]
    pub fn next_below(&self, price: Price) -> Option<Price> {
        for b in self.bands().iter().rev() {
            if price.0 > b.start {
                let k = if price.0 > b.end { (b.end - b.start) / b.step } else { (price.0 - b.start - 1) / b.step };
                return Some(Price(b.start + k * b.step));
            }
        }
        None
    }

    /// The NO-scale price of the same level as YES price `yes` (`1 − yes`), checked on the grid.
    #[inline]
    pub fn no_price_of(&self, yes: Price) -> Option<Price> {
        let no = yes.complement();
        self.contains(no).then_some(no)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_structures_have_documented_level_counts() {
        let counts = [
            (PriceStructure::LinearCent, 101),
            (PriceStructure::DeciCent, 1001),
            (PriceStructure::TaperedDeciCent, 281),
            (PriceStructure::CenterCentiEdgeCentiCent, 10001),
            (PriceStructure::CenterDeciEdgeCentiCent, 1181),
            (PriceStructure::CenterHalfEdgeHalfCent, 201),
            (PriceStructure::CenterQuintEdgeQuintCent, 501),
        ];
        for (s, n) in counts {
            assert_eq!(s.grid().n_levels(), n, "{}", s.name());
        }
    }

    #[test]
    fn every_named_structure_round_trips_and_is_symmetric() {
        for s in PriceStructure::ALL {
            let g = s.grid();
            assert_eq!(g.structure, s);
            assert_eq!(PriceStructure::from_name(s.name()), Some(s));
            let mut prev = None;
            for l in 0..g.n_levels {
                let p = g.price_at(l).unwrap();
                assert_eq!(g.level_of(p), Some(l), "{} level {l}", s.name());
                assert!(g.contains(p.complement()), "{} not symmetric at {p}", s.name());
                if let Some(q) = prev {
                    assert!(p > q);
                    assert_eq!(g.next_above(q), Some(p));
                    assert_eq!(g.next_below(p), Some(q));
                }
                prev = Some(p);
            }
            // whole cents are valid everywhere
            for c in 0..=100u16 {
                assert!(g.contains(Price(c * 100)), "{} lacks {c}c", s.name());
            }
            assert_eq!(g.price_at(g.n_levels), None);
        }
    }

    #[test]
    fn off_grid_prices_are_rejected() {
        let g = PriceStructure::LinearCent.grid();
        assert_eq!(g.level_of(Price(5650)), None);
        assert_eq!(g.level_of(Price(5600)), Some(56));
        let t = PriceStructure::TaperedDeciCent.grid();
        assert_eq!(t.level_of(Price(950)), Some(95));
        assert_eq!(t.level_of(Price(1000)), Some(100));
        assert_eq!(t.level_of(Price(1010)), None);
        assert_eq!(t.level_of(Price(1100)), Some(101));
        assert_eq!(t.tick_above(Price(1000)), Some(100));
        assert_eq!(t.tick_above(Price(990)), Some(10));
        assert_eq!(t.tick_above(Price(10000)), None);
    }

    #[test]
    fn price_ranges_parse_and_validate() {
        let g = PriceGrid::from_price_ranges([("0.0000", "1.0000", "0.0100")]).unwrap();
        assert_eq!(g.structure, PriceStructure::LinearCent);
        let g = PriceGrid::from_price_ranges([
            ("0.0000", "0.1000", "0.0010"),
            ("0.1000", "0.9000", "0.0100"),
            ("0.9000", "1.0000", "0.0010"),
        ])
        .unwrap();
        assert_eq!(g.structure, PriceStructure::TaperedDeciCent);
        let g = PriceGrid::from_price_ranges([("0.0000", "1.0000", "0.0250")]).unwrap();
        assert_eq!(g.structure, PriceStructure::Custom);
        assert_eq!(g.n_levels(), 41);
        assert_eq!(
            PriceGrid::from_price_ranges([("0.0000", "1.0000", "0.0300")]),
            Err(GridError::BadBand { index: 0 })
        );
        assert_eq!(
            PriceGrid::from_price_ranges([("0.0000", "0.5000", "0.0100"), ("0.6000", "1.0000", "0.0100")]),
            Err(GridError::NotContiguous { index: 1 })
        );
        assert!(matches!(
            PriceGrid::from_price_ranges([("0.0000", "1.5000", "0.0100")]),
            Err(GridError::BadNumber(ParseError::OutOfRange))
        ));
        assert_eq!(PriceGrid::from_price_ranges([]), Err(GridError::Empty));
    }
}
