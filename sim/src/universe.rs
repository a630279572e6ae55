//! The market universe built from a recording's metadata: dense [`MarketId`]s, grids, fee
//! schedules, strikes and [`OutcomeGroup`]s, owned here and lent to strategies as a
//! [`Universe`] view.
//!
//! Grouping (Kalshi says not to parse tickers for relationships, `kalshi-protocol.md` §4): markets
//! are grouped by `event_ticker`. A group is [`GroupKind::Brackets`] when the event is
//! `mutually_exclusive`, or when its strikes are a mix of `less` / `between` / `greater` (the
//! daily-temperature layout: two tails and two-degree bins, exactly one pays); it is a
//! [`GroupKind::Ladder`] when every member is `greater`/`greater_or_equal` (cumulative
//! thresholds); otherwise [`GroupKind::Unrelated`]. Members are ordered by floor strike, then cap
//! strike, missing floors first.

use crate::recording::{Header, MarketRecord};
use std::collections::HashMap;
use strike_sdk::fees::{FeeSchedule, FeeType};
use strike_sdk::grid::{PriceGrid, PriceStructure};
use strike_sdk::market::{
    GroupId, GroupKind, MarketId, MarketMeta, OutcomeGroup, Settlement, Strike, StrikeType, Ticker, Universe,
};

/// Owner of the universe's arrays; [`UniverseData::view`] lends them across the plugin ABI.
#[derive(Clone, Debug, Default)]
pub struct UniverseData {
    /// Markets indexed by id.
    pub markets: Vec<MarketMeta>,
    /// Outcome groups indexed by group id.
    pub groups: Vec<OutcomeGroup>,
    /// Members of all groups, contiguous per group.
    pub members: Vec<MarketId>,
    index: HashMap<String, MarketId>,
}

/// A market record that could not be turned into metadata.
#[derive(Debug, thiserror::Error)]
#[error("market {ticker}: {msg}")]
pub struct UniverseError {
    /// The market.
    pub ticker: String,
    /// What is wrong.
    pub msg: String,
}

impl UniverseData {
    /// Builds the universe from a recording header. Every problem found is reported, not just the
    /// first.
    pub fn from_header(header: &Header) -> Result<UniverseData, Vec<UniverseError>> {
        let mut u = UniverseData::default();
        let mut errors = Vec::new();
        for rec in &header.markets {
            if u.index.contains_key(&rec.ticker) {
                errors.push(UniverseError { ticker: rec.ticker.clone(), msg: "listed twice".into() });
                continue;
            }
            let id = MarketId(u.markets.len() as u32);
            match market_meta(id, rec) {
                Ok(m) => {
                    u.index.insert(rec.ticker.clone(), id);
                    u.markets.push(m);
                }
                Err(msg) => errors.push(UniverseError { ticker: rec.ticker.clone(), msg }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        u.build_groups(header);
        Ok(u)
    }

    fn build_groups(&mut self, header: &Header) {
        let mut by_event: Vec<(String, Vec<MarketId>)> = Vec::new();
        for m in &self.markets {
            let ev = m.event.as_str();
            if ev.is_empty() {
                continue;
            }
            match by_event.iter_mut().find(|(e, _)| e == ev) {
                Some((_, v)) => v.push(m.id),
                None => by_event.push((ev.to_string(), vec![m.id])),
            }
        }
        for (event, mut ids) in by_event {
            let metas: Vec<&MarketMeta> = ids.iter().map(|i| &self.markets[i.idx()]).collect();
            let exclusive = header.events.iter().any(|e| e.event_ticker == event && e.mutually_exclusive);
            let all_greater =
                metas.iter().all(|m| matches!(m.strike_type, StrikeType::Greater | StrikeType::GreaterOrEqual));
            let bracket_shapes = metas.iter().all(|m| {
                matches!(
                    m.strike_type,
                    StrikeType::Less
                        | StrikeType::LessOrEqual
                        | StrikeType::Between
                        | StrikeType::Greater
                        | StrikeType::GreaterOrEqual
                )
            }) && metas.iter().any(|m| m.strike_type == StrikeType::Between);
            let kind = if exclusive || (bracket_shapes && metas.len() > 1) {
                GroupKind::Brackets
            } else if all_greater && metas.len() > 1 {
                GroupKind::Ladder
            } else {
                GroupKind::Unrelated
            };
            ids.sort_by_key(|i| {
                let m = &self.markets[i.idx()];
                (m.floor_strike.get().unwrap_or(i64::MIN), m.cap_strike.get().unwrap_or(i64::MAX))
            });
            let gid = GroupId(self.groups.len() as u32);
            self.groups.push(OutcomeGroup {
                id: gid,
                kind,
                event: Ticker::new(&event).unwrap_or_default(),
                first_member: self.members.len() as u32,
                n_members: ids.len() as u32,
            });
            for id in &ids {
                self.markets[id.idx()].group = gid;
            }
            self.members.extend(ids);
        }
    }

    /// The id of a ticker, if subscribed. Hash lookup on a borrowed `&str`: no allocation.
    #[inline]
    pub fn id_of(&self, ticker: &str) -> Option<MarketId> {
        self.index.get(ticker).copied()
    }

    /// A borrowed view for strategies. Valid while `self` is alive and unmodified.
    pub fn view(&self) -> Universe {
        // SAFETY: the vectors are never resized after construction and live as long as `self`;
        // callers keep `self` (the engine holds it in an `Arc` for the whole run).
        unsafe { Universe::from_slices(&self.markets, &self.groups, &self.members) }
    }

    /// Number of markets.
    pub fn len(&self) -> usize {
        self.markets.len()
    }

    /// True when there are no markets.
    pub fn is_empty(&self) -> bool {
        self.markets.is_empty()
    }
}

/// Parses Kalshi's `fee_multiplier` decimal text into parts per million.
fn multiplier_ppm(s: &str) -> Result<u32, String> {
    let v = strike_sdk::num::parse_fixed(s.as_bytes(), 6, false).map_err(|e| format!("fee_multiplier {s:?}: {e}"))?;
    u32::try_from(v).map_err(|_| format!("fee_multiplier {s:?} is too large"))
}

/// One market's metadata from its record.
pub fn market_meta(id: MarketId, rec: &MarketRecord) -> Result<MarketMeta, String> {
    let ticker = Ticker::new(&rec.ticker).map_err(|e| e.to_string())?;
    let mut m = MarketMeta::bare(id, ticker);
    m.event = Ticker::new(&rec.event_ticker).unwrap_or_default();
    m.series = Ticker::new(&rec.series_ticker).unwrap_or_default();
    m.strike_type = rec.strike_type.as_deref().map(StrikeType::from_name).unwrap_or_default();
    let strike = |s: &Option<String>, what: &str| -> Result<Strike, String> {
        match s {
            None => Ok(Strike::NONE),
            Some(t) => Strike::parse(t).map_err(|e| format!("{what} {t:?}: {e}")),
        }
    };
    m.floor_strike = strike(&rec.floor_strike, "floor_strike")?;
    m.cap_strike = strike(&rec.cap_strike, "cap_strike")?;
    m.grid = if !rec.price_ranges.is_empty() {
        PriceGrid::from_price_ranges(
            rec.price_ranges.iter().map(|r| (r.start.as_str(), r.end.as_str(), r.step.as_str())),
        )
        .map_err(|e| e.to_string())?
    } else if let Some(name) = &rec.price_level_structure {
        PriceStructure::from_name(name)
            .ok_or_else(|| format!("unknown price_level_structure {name:?} and no price_ranges"))?
            .grid()
    } else {
        PriceGrid::default()
    };
    let mut fees = FeeSchedule::default();
    if let Some(t) = &rec.fee_type {
        fees.fee_type = FeeType::from_name(t).ok_or_else(|| format!("unknown fee_type {t:?}"))?;
    }
    if let Some(mult) = &rec.fee_multiplier {
        fees.multiplier_ppm = multiplier_ppm(mult)?;
    }
    m.fees = fees;
    m.open_ts_ms = rec.open_ts_ms;
    m.close_ts_ms = rec.close_ts_ms;
    m.exchange_index = rec.exchange_index;
    m.settlement = match rec.result.as_deref() {
        Some("yes") => Settlement::Yes,
        Some("no") => Settlement::No,
        None | Some("") => Settlement::Unknown,
        Some(other) => return Err(format!("unknown result {other:?} (expected \"yes\" or \"no\")")),
    };
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::EventRecord;

    fn rec(t: &str, ev: &str, st: &str, floor: Option<&str>, cap: Option<&str>) -> MarketRecord {
        MarketRecord {
            ticker: t.into(),
            event_ticker: ev.into(),
            strike_type: Some(st.into()),
            floor_strike: floor.map(Into::into),
            cap_strike: cap.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn weather_brackets_group_in_strike_order() {
        let h = Header {
            strike_recording: 1,
            yes_price_scale: true,
            markets: vec![
                rec("E-T95", "E", "greater", Some("94"), None),
                rec("E-B88.5", "E", "between", Some("88"), Some("89")),
                rec("E-T88", "E", "less", None, Some("88")),
                rec("L-70", "L", "greater", Some("70"), None),
                rec("L-60", "L", "greater", Some("60"), None),
                rec("X", "", "greater", None, None),
            ],
            ..Default::default()
        };
        let u = UniverseData::from_header(&h).unwrap();
        assert_eq!(u.groups.len(), 2);
        let v = u.view();
        let g = v.group(GroupId(0)).unwrap();
        assert_eq!(g.kind, GroupKind::Brackets);
        let names: Vec<&str> = v.group_members(g).iter().map(|i| v.market(*i).unwrap().ticker.as_str()).collect();
        assert_eq!(names, ["E-T88", "E-B88.5", "E-T95"]);
        let l = v.group(GroupId(1)).unwrap();
        assert_eq!(l.kind, GroupKind::Ladder);
        assert_eq!(v.market(v.group_members(l)[0]).unwrap().ticker.as_str(), "L-60");
        assert_eq!(u.markets[5].group, GroupId::NONE);
        assert_eq!(u.id_of("L-70"), Some(MarketId(3)));
    }

    #[test]
    fn mutually_exclusive_events_are_brackets_and_errors_are_all_reported() {
        let h = Header {
            strike_recording: 1,
            markets: vec![rec("A", "E", "custom", None, None), rec("B", "E", "custom", None, None)],
            events: vec![EventRecord { event_ticker: "E".into(), mutually_exclusive: true, ..Default::default() }],
            ..Default::default()
        };
        assert_eq!(UniverseData::from_header(&h).unwrap().groups[0].kind, GroupKind::Brackets);
        let bad = Header {
            markets: vec![
                MarketRecord { ticker: "A".into(), fee_type: Some("weird".into()), ..Default::default() },
                MarketRecord { ticker: "B".into(), price_level_structure: Some("nope".into()), ..Default::default() },
            ],
            ..Default::default()
        };
        let errs = UniverseData::from_header(&bad).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[0].to_string().contains("fee_type"));
        assert!(errs[1].to_string().contains("price_level_structure"));
    }
}
