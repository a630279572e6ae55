//! Exact fixed-point numbers: [`Price`], [`Qty`], [`Money`].
//!
//! Kalshi sends prices as dollar strings with up to 4 decimals (`"0.0800"`, `"0.960"`), sizes as
//! strings with 2 decimals (`"300.00"`, `"-54.00"`) and costs/fees with up to 6 (`"0.054600"`)
//! (Kalshi docs: *Fixed-point migration*, `kalshi-protocol.md` §2.5, §6.7). This module owns the
//! exact integer forms and their allocation-free parsing and formatting. No value here ever
//! passes through `f64`.
//!
//! | type | unit | range |
//! |---|---|---|
//! | [`Price`] | centicents, $0.0001 (`u16`) | `0..=10000`, YES scale unless a name says NO |
//! | [`Qty`] | hundredths of a contract (`i64`) | signed |
//! | [`Money`] | micro-dollars, $0.000001 (`i64`) | signed |
//!
//! `Price × Qty` is exactly `Money`: 1e-4 $ × 1e-2 contracts = 1e-6 $.

use core::fmt;

/// Why a fixed-point string was refused. Returned by every `parse` in this module; never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The input was empty (or only a sign).
    Empty,
    /// A byte that is not a digit, a single `.`, or a leading `-` (where allowed), at this offset.
    Malformed {
        /// Byte offset of the first bad byte.
        at: u8,
    },
    /// More non-zero decimals than the type holds (e.g. `"0.00001"` as a price).
    TooManyDecimals,
    /// The value does not fit the type's range (e.g. a price above `1.0000`).
    OutOfRange,
    /// A `-` sign on a type that cannot be negative.
    Negative,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty number"),
            ParseError::Malformed { at } => write!(f, "malformed number (unexpected byte at offset {at})"),
            ParseError::TooManyDecimals => f.write_str("too many decimals for this fixed-point type"),
            ParseError::OutOfRange => f.write_str("number out of range"),
            ParseError::Negative => f.write_str("negative value where only >= 0 is allowed"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses a decimal string into an integer scaled by `10^scale`.
///
/// Accepts `[-]digits[.digits]` and `[-].digits`; decimals beyond `scale` are accepted only when
/// they are zeros (`"0.960000"` as a price). At most 18 integer digits. Allocation-free.
#[inline]
pub fn parse_fixed(s: &[u8], scale: u32, allow_negative: bool) -> Result<i64, ParseError> {
    let (neg, body) = match s.first() {
        None => return Err(ParseError::Empty),
        Some(b'-') => {
            if !allow_negative {
                return Err(ParseError::Negative);
            }
            (true, &s[1..])
        }
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return Err(ParseError::Empty);
    }
    let off = (s.len() - body.len()) as u8;
    let mut int: i64 = 0;
    let mut i = 0usize;
    let mut int_digits = 0u32;
    while i < body.len() && body[i].is_ascii_digit() {
        int_digits += 1;
        if int_digits > 18 {
            return Err(ParseError::OutOfRange);
        }
        int = int * 10 + (body[i] - b'0') as i64;
        i += 1;
    }
    let mut frac: i64 = 0;
    let mut frac_digits = 0u32;
    if i < body.len() {
        if body[i] != b'.' {
            return Err(ParseError::Malformed { at: off.saturating_add(i as u8) });
        }
        i += 1;
        if i == body.len() && int_digits == 0 {
            return Err(ParseError::Malformed { at: off.saturating_add(i as u8) });
        }
        while i < body.len() {
            let b = body[i];
            if !b.is_ascii_digit() {
                return Err(ParseError::Malformed { at: off.saturating_add(i as u8) });
            }
            if frac_digits < scale {
                frac = frac * 10 + (b - b'0') as i64;
                frac_digits += 1;
            } else if b != b'0' {
                return Err(ParseError::TooManyDecimals);
            }
            i += 1;
        }
    } else if int_digits == 0 {
        return Err(ParseError::Malformed { at: off });
    }
    while frac_digits < scale {
        frac *= 10;
        frac_digits += 1;
    }
    let mult = 10i64.pow(scale);
    let v = int.checked_mul(mult).and_then(|x| x.checked_add(frac)).ok_or(ParseError::OutOfRange)?;
    Ok(if neg { -v } else { v })
}

/// Writes `v / 10^scale` with exactly `scale` decimals into `out`; returns the length written.
///
/// `out` must hold at least 22 bytes (the longest `i64` plus sign and point). Allocation-free.
#[inline]
pub fn format_fixed(v: i64, scale: u32, out: &mut [u8; 24]) -> usize {
    let mut tmp = [0u8; 24];
    let mut n = 0usize;
    let neg = v < 0;
    let mut u = v.unsigned_abs();
    let mut digits = 0u32;
    loop {
        tmp[n] = b'0' + (u % 10) as u8;
        n += 1;
        u /= 10;
        digits += 1;
        if digits == scale && scale > 0 {
            tmp[n] = b'.';
            n += 1;
        }
        if u == 0 && digits > scale {
            break;
        }
    }
    let mut len = 0usize;
    if neg {
        out[0] = b'-';
        len = 1;
    }
    while n > 0 {
        n -= 1;
        out[len] = tmp[n];
        len += 1;
    }
    len
}

/// A small stack buffer holding a formatted fixed-point number; derefs to `&str`.
#[derive(Clone, Copy)]
pub struct FixedStr {
    buf: [u8; 24],
    len: u8,
}

impl FixedStr {
    /// Formats `v / 10^scale` with `scale` decimals.
    #[inline]
    pub fn new(v: i64, scale: u32) -> Self {
        let mut buf = [0u8; 24];
        let len = format_fixed(v, scale, &mut buf) as u8;
        FixedStr { buf, len }
    }
    /// The formatted text.
    #[inline]
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, '-' and '.' are ever written.
        core::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl core::ops::Deref for FixedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for FixedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A price in centicents ($0.0001), `0..=10000`, on the YES scale unless a name says NO.
///
/// Kalshi: prices are dollar strings with 2–4 decimals on requests, up to 6 (zero-padded) on
/// responses (`kalshi-protocol.md` §2.4). `Price(5600)` is $0.56.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Price(pub u16);

impl Price {
    /// Centicents in one dollar: the payout of one contract.
    pub const ONE: u16 = 10_000;
    /// $0.00.
    pub const ZERO: Price = Price(0);
    /// $1.00.
    pub const MAX: Price = Price(10_000);

    /// Parses a Kalshi dollar string (`"0.0800"`, `"0.960"`, `"1"`) into centicents.
    ///
    /// Errors: [`ParseError::TooManyDecimals`] for a non-zero 5th decimal,
    /// [`ParseError::OutOfRange`] above `1.0000`, [`ParseError::Negative`] for a sign.
    #[inline]
    pub fn parse(s: &str) -> Result<Price, ParseError> {
        Self::parse_bytes(s.as_bytes())
    }

    /// [`Price::parse`] on bytes.
    #[inline]
    pub fn parse_bytes(s: &[u8]) -> Result<Price, ParseError> {
        let v = parse_fixed(s, 4, false)?;
        if v > Self::ONE as i64 {
            return Err(ParseError::OutOfRange);
        }
        Ok(Price(v as u16))
    }

    /// Builds a price from whole cents (1..=99 on the classic grid). `None` above 100.
    #[inline]
    pub const fn from_cents(c: u16) -> Option<Price> {
        if c <= 100 {
            Some(Price(c * 100))
        } else {
            None
        }
    }

    /// Centicents.
    #[inline]
    pub const fn cc(self) -> u16 {
        self.0
    }

    /// The complementary price `1 − p`: a YES price to the NO price of the same level and back.
    /// Saturates at 0 for an out-of-range value (> $1), which no check accepts anyway.
    #[inline]
    pub const fn complement(self) -> Price {
        Price(Self::ONE.saturating_sub(self.0))
    }

    /// Formats as a 4-decimal dollar string (`"0.5600"`), the form Kalshi V2 requests accept.
    #[inline]
    pub fn to_fixed_str(self) -> FixedStr {
        FixedStr::new(self.0 as i64, 4)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_fixed_str())
    }
}

/// A size in hundredths of a contract (`"1.55"` → 155), signed.
///
/// Kalshi: every market accepts fractional size since 2026-04-17; `*_fp` strings carry 2
/// decimals, minimum 0.01 (`kalshi-protocol.md` §2.5). Positions use + for YES, − for NO.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Qty(pub i64);

impl Qty {
    /// Zero contracts.
    pub const ZERO: Qty = Qty(0);
    /// Hundredths in one contract.
    pub const ONE_CONTRACT: i64 = 100;
    /// Largest magnitude [`Qty::parse`] accepts: 10¹² contracts. Far above any real size
    /// (Kalshi's deepest levels are ~10⁶ contracts), and small enough that sums over every level
    /// of a 10,001-level book cannot overflow `i64`.
    pub const MAX_ABS: i64 = 100_000_000_000_000;

    /// Parses `"300.00"`, `"-54.00"`, `"1"`, `"1.5"` into hundredths of a contract.
    ///
    /// Errors: [`ParseError::TooManyDecimals`] for a non-zero 3rd decimal, malformed text,
    /// [`ParseError::OutOfRange`] beyond ±[`Qty::MAX_ABS`].
    #[inline]
    pub fn parse(s: &str) -> Result<Qty, ParseError> {
        Self::parse_bytes(s.as_bytes())
    }

    /// [`Qty::parse`] on bytes.
    #[inline]
    pub fn parse_bytes(s: &[u8]) -> Result<Qty, ParseError> {
        let v = parse_fixed(s, 2, true)?;
        if v.abs() > Self::MAX_ABS {
            return Err(ParseError::OutOfRange);
        }
        Ok(Qty(v))
    }

    /// Whole contracts to hundredths.
    #[inline]
    pub const fn contracts(n: i64) -> Qty {
        Qty(n * 100)
    }

    /// Hundredths of a contract.
    #[inline]
    pub const fn raw(self) -> i64 {
        self.0
    }

    /// True when zero.
    #[inline]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Formats as Kalshi's 2-decimal `*_fp` string (`"300.00"`).
    #[inline]
    pub fn to_fixed_str(self) -> FixedStr {
        FixedStr::new(self.0, 2)
    }
}

impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_fixed_str())
    }
}

impl core::ops::Add for Qty {
    type Output = Qty;
    fn add(self, o: Qty) -> Qty {
        Qty(self.0 + o.0)
    }
}
impl core::ops::Sub for Qty {
    type Output = Qty;
    fn sub(self, o: Qty) -> Qty {
        Qty(self.0 - o.0)
    }
}
impl core::ops::Neg for Qty {
    type Output = Qty;
    fn neg(self) -> Qty {
        Qty(-self.0)
    }
}
impl core::ops::AddAssign for Qty {
    fn add_assign(&mut self, o: Qty) {
        self.0 += o.0
    }
}
impl core::ops::SubAssign for Qty {
    fn sub_assign(&mut self, o: Qty) {
        self.0 -= o.0
    }
}

/// An amount of money in micro-dollars ($0.000001), signed.
///
/// `Price × Qty` is exact in this unit ([`Money::notional`]). Kalshi sends fees and costs with up
/// to 6 decimals (`"0.054600"`).
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Money(pub i64);

impl Money {
    /// $0.
    pub const ZERO: Money = Money(0);
    /// Micro-dollars per centicent.
    pub const PER_CENTICENT: i64 = 100;
    /// Micro-dollars per cent.
    pub const PER_CENT: i64 = 10_000;
    /// Micro-dollars per dollar.
    pub const PER_DOLLAR: i64 = 1_000_000;

    /// Parses a dollar string with up to 6 decimals (`"0.054600"`, `"-1.75"`).
    #[inline]
    pub fn parse(s: &str) -> Result<Money, ParseError> {
        Self::parse_bytes(s.as_bytes())
    }

    /// [`Money::parse`] on bytes.
    #[inline]
    pub fn parse_bytes(s: &[u8]) -> Result<Money, ParseError> {
        parse_fixed(s, 6, true).map(Money)
    }

    /// Whole dollars.
    #[inline]
    pub const fn dollars(d: i64) -> Money {
        Money(d * Self::PER_DOLLAR)
    }

    /// Whole cents.
    #[inline]
    pub const fn cents(c: i64) -> Money {
        Money(c * Self::PER_CENT)
    }

    /// The exact cost of `qty` contracts at `price`: centicents × hundredths = micro-dollars.
    #[inline]
    pub const fn notional(price: Price, qty: Qty) -> Money {
        Money(price.0 as i64 * qty.0)
    }

    /// Micro-dollars.
    #[inline]
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Dollars as `f64`, for reports only.
    #[inline]
    pub fn as_dollars_f64(self) -> f64 {
        self.0 as f64 / Self::PER_DOLLAR as f64
    }

    /// Formats with 6 decimals (`"1.750000"`).
    #[inline]
    pub fn to_fixed_str(self) -> FixedStr {
        FixedStr::new(self.0, 6)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_fixed_str())
    }
}

impl core::ops::Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0 + o.0)
    }
}
impl core::ops::Sub for Money {
    type Output = Money;
    fn sub(self, o: Money) -> Money {
        Money(self.0 - o.0)
    }
}
impl core::ops::Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}
impl core::ops::AddAssign for Money {
    fn add_assign(&mut self, o: Money) {
        self.0 += o.0
    }
}
impl core::ops::SubAssign for Money {
    fn sub_assign(&mut self, o: Money) {
        self.0 -= o.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly() {
        assert_eq!(Price::parse("0.0800"), Ok(Price(800)));
        assert_eq!(Price::parse("0.960"), Ok(Price(9600)));
        assert_eq!(Price::parse("0.96"), Ok(Price(9600)));
        assert_eq!(Price::parse("1"), Ok(Price(10000)));
        assert_eq!(Price::parse("1.0000"), Ok(Price(10000)));
        assert_eq!(Price::parse("0.0001"), Ok(Price(1)));
        assert_eq!(Price::parse("0.560000"), Ok(Price(5600)));
        assert_eq!(Price::parse(".5"), Ok(Price(5000)));
    }

    #[test]
    fn prices_reject_bad_text() {
        assert_eq!(Price::parse(""), Err(ParseError::Empty));
        assert_eq!(Price::parse("0.00001"), Err(ParseError::TooManyDecimals));
        assert_eq!(Price::parse("1.0001"), Err(ParseError::OutOfRange));
        assert_eq!(Price::parse("2"), Err(ParseError::OutOfRange));
        assert_eq!(Price::parse("-0.5"), Err(ParseError::Negative));
        assert!(matches!(Price::parse("0.5x"), Err(ParseError::Malformed { .. })));
        assert!(matches!(Price::parse("0..5"), Err(ParseError::Malformed { .. })));
        assert!(matches!(Price::parse("."), Err(ParseError::Malformed { .. })));
        assert!(matches!(Price::parse("1e-2"), Err(ParseError::Malformed { .. })));
        assert_eq!(Price::parse("99999999999999999999"), Err(ParseError::OutOfRange));
    }

    #[test]
    fn qty_parse_exactly() {
        assert_eq!(Qty::parse("300.00"), Ok(Qty(30000)));
        assert_eq!(Qty::parse("-54.00"), Ok(Qty(-5400)));
        assert_eq!(Qty::parse("1"), Ok(Qty(100)));
        assert_eq!(Qty::parse("1.55"), Ok(Qty(155)));
        assert_eq!(Qty::parse("1406474.86"), Ok(Qty(140647486)));
        assert_eq!(Qty::parse("0.001"), Err(ParseError::TooManyDecimals));
        assert_eq!(Qty::parse("-"), Err(ParseError::Empty));
        assert_eq!(Qty::parse("1000000000000.00"), Ok(Qty(Qty::MAX_ABS)));
        assert_eq!(Qty::parse("1000000000000.01"), Err(ParseError::OutOfRange));
        assert_eq!(Price(20000).complement(), Price(0));
    }

    #[test]
    fn money_parse_exactly() {
        assert_eq!(Money::parse("0.054600"), Ok(Money(54600)));
        assert_eq!(Money::parse("1.75"), Ok(Money(1_750_000)));
        assert_eq!(Money::parse("-0.0001"), Ok(Money(-100)));
        assert_eq!(Money::parse("0.0000001"), Err(ParseError::TooManyDecimals));
    }

    #[test]
    fn formatting_round_trips() {
        for cc in 0..=10000u16 {
            let p = Price(cc);
            assert_eq!(Price::parse(&p.to_fixed_str()), Ok(p));
        }
        assert_eq!(&*Price(800).to_fixed_str(), "0.0800");
        assert_eq!(&*Qty(-5400).to_fixed_str(), "-54.00");
        assert_eq!(&*Qty(5).to_fixed_str(), "0.05");
        assert_eq!(&*Qty(0).to_fixed_str(), "0.00");
        assert_eq!(&*Money(54600).to_fixed_str(), "0.054600");
        assert_eq!(&*Money(i64::MIN + 1).to_fixed_str(), "-9223372036854.775807");
        for v in [-123456789i64, -1, 0, 1, 99, 100, 101, Qty::MAX_ABS] {
            assert_eq!(Qty::parse(&Qty(v).to_fixed_str()), Ok(Qty(v)));
            assert_eq!(Money::parse(&Money(v).to_fixed_str()), Ok(Money(v)));
        }
    }

    #[test]
    fn notional_is_exact() {
        // 278 contracts at $0.75 = $208.50
        assert_eq!(Money::notional(Price(7500), Qty(27800)), Money(208_500_000));
        // 0.01 contract at $0.0001 = $0.000001
        assert_eq!(Money::notional(Price(1), Qty(1)), Money(1));
    }
}
