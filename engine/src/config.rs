//! Engine configuration: `engine.toml` and `risk.toml`.
//!
//! Files are TOML. Money, prices and sizes are strings in Kalshi's notation (`"500.00"`,
//! `"0.99"`), parsed exactly. Loading reports **every** problem at once, each naming its key:
//! unknown keys (found with `serde_ignored`), values of the wrong type, and values out of range.
//! Without a file the built-in defaults apply; the shipped `config/*.toml` state exactly those
//! defaults (a test keeps them equal).

use crate::gateway::ratelimit::Tier;
use crate::pipeline::threads::{ThreadSpec, Threads, WaitStrategy};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use strike_sdk::fees::AccountPrecision;
use strike_sdk::num::{Money, Price, Qty};
use strike_sim::matching::QueueModelKind;

/// Every problem found in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<built-in>`).
    pub file: PathBuf,
    /// One line per problem, each naming its key.
    pub errors: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {} problem(s):", self.file.display(), self.errors.len())?;
        for e in &self.errors {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// How stages are placed on threads ([`crate::pipeline`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Feed, trader and gateway polled in turn on one thread, joined by SPSC rings.
    Fused,
    /// Feed, trader and gateway each on its own thread (pinned per `[threads.*]`), joined by the
    /// same SPSC rings.
    Split,
}

impl Topology {
    /// Config name: `fused`, `split`.
    pub const fn name(self) -> &'static str {
        match self {
            Topology::Fused => "fused",
            Topology::Split => "split",
        }
    }
}

/// `engine.toml`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Capital strategies size against (Kelly bankroll), micro-dollars.
    pub capital: Money,
    /// Balance precision of the account (fee rounding).
    pub account_precision: AccountPrecision,
    /// Stage placement.
    pub topology: Topology,
    /// Core and wait strategy of each stage thread (`[threads.feed]`, `[threads.trader]`,
    /// `[threads.gateway]`: `core = N`, `wait = "busy-spin" | "spin-yield" | "block"`).
    pub threads: Threads,
    /// Queue-position model of the matcher-backed paper venue of `--venue … --paper`
    /// (`paper_queue_model`: `"risk_averse"`, `"power:N"`, `"log"`; default `risk_averse`).
    pub paper_queue_model: QueueModelKind,
    /// Capacity of each SPSC ring, events.
    pub ring_capacity: usize,
    /// Most intents (and cancels) one strategy callback may queue.
    pub intents_per_callback: usize,
    /// Interval of `on_timer` callbacks, ns of engine time.
    pub timer_interval_ns: u64,
    /// Risk limits file (resolved against the engine file's folder).
    pub risk_file: PathBuf,
    /// Folder of per-strategy configs `<name>.toml` (resolved likewise).
    pub strategies_dir: PathBuf,
    /// The risk limits loaded from `risk_file`.
    pub risk: RiskConfig,
    /// The account's Kalshi API rate-limit tier (`rate_limit_tier`: `basic`, `advanced`,
    /// `expert`, `premier`, `paragon`, `prime`, `prestige`; default `basic`): sets the token
    /// buckets the live gateway holds orders in (`kalshi-protocol.md` §3.8).
    pub rate_limit_tier: Tier,
    /// Tick-to-trade budget, ms (`budget_ms`, default 27): with `expected_round_trip_ms` it sets
    /// how old an order's triggering data may be ([`EngineConfig::max_data_age_ns`]).
    pub budget_ms: u64,
    /// Expected order round trip to the exchange, ms (`expected_round_trip_ms`, default 10;
    /// below `budget_ms`).
    pub expected_round_trip_ms: u64,
}

/// `risk.toml`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskConfig {
    /// Largest single order, hundredths of a contract.
    pub max_order_contracts: Qty,
    /// Largest single order notional, micro-dollars.
    pub max_order_notional: Money,
    /// Lowest YES-scale price an order may carry.
    pub min_price: Price,
    /// Highest YES-scale price an order may carry.
    pub max_price: Price,
    /// Largest worst-case absolute position per market, hundredths of a contract.
    pub max_position_contracts: Qty,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            max_order_contracts: Qty::contracts(500),
            max_order_notional: Money::dollars(500),
            min_price: Price(100),
            max_price: Price(9900),
            max_position_contracts: Qty::contracts(1000),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            capital: Money::dollars(10_000),
            account_precision: AccountPrecision::Cent,
            topology: Topology::Fused,
            threads: Threads::default(),
            paper_queue_model: QueueModelKind::RiskAverse,
            ring_capacity: 65_536,
            intents_per_callback: 64,
            timer_interval_ns: 1_000_000_000,
            risk_file: PathBuf::from("risk.toml"),
            strategies_dir: PathBuf::from("strategies"),
            risk: RiskConfig::default(),
            rate_limit_tier: Tier::Basic,
            budget_ms: 27,
            expected_round_trip_ms: 10,
        }
    }
}

#[derive(Deserialize, Default)]
struct RawEngine {
    capital: Option<toml::Value>,
    account_precision: Option<toml::Value>,
    topology: Option<toml::Value>,
    ring_capacity: Option<toml::Value>,
    intents_per_callback: Option<toml::Value>,
    timer_interval_ms: Option<toml::Value>,
    risk: Option<toml::Value>,
    strategies_dir: Option<toml::Value>,
    rate_limit_tier: Option<toml::Value>,
    budget_ms: Option<toml::Value>,
    expected_round_trip_ms: Option<toml::Value>,
    threads: Option<RawThreads>,
    paper_queue_model: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
struct RawThreads {
    feed: Option<RawThread>,
    trader: Option<RawThread>,
    gateway: Option<RawThread>,
}

#[derive(Deserialize, Default)]
struct RawThread {
    core: Option<toml::Value>,
    wait: Option<toml::Value>,
}

fn thread_spec(raw: &Option<RawThread>, name: &str, errors: &mut Vec<String>) -> ThreadSpec {
    let Some(raw) = raw else { return ThreadSpec::default() };
    let core = raw.core.as_ref().and_then(|v| match v.as_integer() {
        Some(i) if (0..=4095).contains(&i) => Some(i as usize),
        _ => {
            errors.push(format!("`threads.{name}.core` must be a core id in 0..=4095, got {v}"));
            None
        }
    });
    let wait = match raw.wait.as_ref() {
        None => WaitStrategy::default(),
        Some(v) => match v.as_str().and_then(WaitStrategy::parse) {
            Some(w) => w,
            None => {
                errors
                    .push(format!("`threads.{name}.wait` must be \"busy-spin\", \"spin-yield\" or \"block\", got {v}"));
                WaitStrategy::default()
            }
        },
    };
    ThreadSpec { core, wait }
}

#[derive(Deserialize, Default)]
struct RawRisk {
    max_order_contracts: Option<toml::Value>,
    max_order_notional: Option<toml::Value>,
    min_price: Option<toml::Value>,
    max_price: Option<toml::Value>,
    max_position_contracts: Option<toml::Value>,
}

/// Parses TOML into `T`, collecting unknown keys as errors instead of stopping at the first.
fn parse_collecting<T: for<'de> Deserialize<'de>>(text: &str, errors: &mut Vec<String>, known: &str) -> Option<T> {
    let de = match toml::Deserializer::parse(text) {
        Ok(d) => d,
        Err(e) => {
            errors.push(format!("not valid TOML: {}", e.to_string().trim()));
            return None;
        }
    };
    let mut unknown = Vec::new();
    match serde_ignored::deserialize(de, |path| unknown.push(path.to_string())) {
        Ok(v) => {
            for k in unknown {
                // serde_ignored writes each `Option` it went through as a `?` segment
                let k = k.split('.').filter(|seg| *seg != "?").collect::<Vec<_>>().join(".");
                errors.push(format!("unknown key `{k}` (known keys: {known})"));
            }
            Some(v)
        }
        Err(e) => {
            errors.push(e.to_string().trim().to_string());
            None
        }
    }
}

fn string_of<'a>(v: &'a toml::Value, key: &str, errors: &mut Vec<String>) -> Option<&'a str> {
    match v.as_str() {
        Some(s) => Some(s),
        None => {
            errors.push(format!("`{key}` must be a string, e.g. {key} = \"1.00\""));
            None
        }
    }
}

fn money(v: &Option<toml::Value>, key: &str, default: Money, errors: &mut Vec<String>) -> Money {
    let Some(v) = v else { return default };
    let Some(s) = string_of(v, key, errors) else { return default };
    match Money::parse(s) {
        Ok(m) if m.0 > 0 => m,
        Ok(_) => {
            errors.push(format!("`{key}` must be a positive dollar amount, got {s:?}"));
            default
        }
        Err(e) => {
            errors.push(format!("`{key}`: {e} in {s:?} (dollars with up to 6 decimals)"));
            default
        }
    }
}

fn qty(v: &Option<toml::Value>, key: &str, default: Qty, errors: &mut Vec<String>) -> Qty {
    let Some(v) = v else { return default };
    let Some(s) = string_of(v, key, errors) else { return default };
    match Qty::parse(s) {
        Ok(q) if q.0 > 0 => q,
        Ok(_) => {
            errors.push(format!("`{key}` must be a positive number of contracts, got {s:?}"));
            default
        }
        Err(e) => {
            errors.push(format!("`{key}`: {e} in {s:?} (contracts with up to 2 decimals)"));
            default
        }
    }
}

fn price(v: &Option<toml::Value>, key: &str, default: Price, errors: &mut Vec<String>) -> Price {
    let Some(v) = v else { return default };
    let Some(s) = string_of(v, key, errors) else { return default };
    match Price::parse(s) {
        Ok(p) if p.0 > 0 && p < Price::MAX => p,
        Ok(_) => {
            errors.push(format!("`{key}` must be strictly between 0 and 1, got {s:?}"));
            default
        }
        Err(e) => {
            errors.push(format!("`{key}`: {e} in {s:?} (dollars, up to 4 decimals)"));
            default
        }
    }
}

fn int(v: &Option<toml::Value>, key: &str, default: u64, range: (u64, u64), errors: &mut Vec<String>) -> u64 {
    let Some(v) = v else { return default };
    match v.as_integer() {
        Some(i) if i >= range.0 as i64 && i as u64 <= range.1 => i as u64,
        _ => {
            errors.push(format!("`{key}` must be an integer in {}..={}, got {v}", range.0, range.1));
            default
        }
    }
}

impl RiskConfig {
    /// Parses `risk.toml` text; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<RiskConfig, ConfigError> {
        let mut errors = Vec::new();
        let known = "max_order_contracts, max_order_notional, min_price, max_price, max_position_contracts";
        let raw: RawRisk = parse_collecting(text, &mut errors, known).unwrap_or_default();
        let d = RiskConfig::default();
        let c = RiskConfig {
            max_order_contracts: qty(
                &raw.max_order_contracts,
                "max_order_contracts",
                d.max_order_contracts,
                &mut errors,
            ),
            max_order_notional: money(&raw.max_order_notional, "max_order_notional", d.max_order_notional, &mut errors),
            min_price: price(&raw.min_price, "min_price", d.min_price, &mut errors),
            max_price: price(&raw.max_price, "max_price", d.max_price, &mut errors),
            max_position_contracts: qty(
                &raw.max_position_contracts,
                "max_position_contracts",
                d.max_position_contracts,
                &mut errors,
            ),
        };
        if c.min_price > c.max_price {
            errors.push(format!("`min_price` ({}) must not exceed `max_price` ({})", c.min_price, c.max_price));
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(ConfigError { file: file.to_path_buf(), errors })
        }
    }
}

impl EngineConfig {
    /// The oldest triggering data an order may be sent on: `budget_ms − expected_round_trip_ms`,
    /// ns (risk rejects older with `LatencyBudget`).
    pub fn max_data_age_ns(&self) -> u64 {
        self.budget_ms.saturating_sub(self.expected_round_trip_ms).saturating_mul(1_000_000)
    }

    /// Parses `engine.toml` text and loads the risk file it names (relative to `file`'s folder).
    pub fn parse(text: &str, file: &Path) -> Result<EngineConfig, ConfigError> {
        let mut errors = Vec::new();
        let known = "capital, account_precision, topology, threads.{feed,trader,gateway}.{core,wait}, ring_capacity, intents_per_callback, timer_interval_ms, risk, strategies_dir, rate_limit_tier, budget_ms, expected_round_trip_ms, paper_queue_model";
        let raw: RawEngine = parse_collecting(text, &mut errors, known).unwrap_or_default();
        let d = EngineConfig::default();
        let capital = money(&raw.capital, "capital", d.capital, &mut errors);
        let account_precision = match raw.account_precision.as_ref().map(|v| v.as_str()) {
            None => d.account_precision,
            Some(Some("cent")) => AccountPrecision::Cent,
            Some(Some("centicent")) => AccountPrecision::Centicent,
            Some(other) => {
                errors.push(format!("`account_precision` must be \"cent\" or \"centicent\", got {other:?}"));
                d.account_precision
            }
        };
        let topology = match raw.topology.as_ref().map(|v| v.as_str()) {
            None | Some(Some("fused")) => Topology::Fused,
            Some(Some("split")) => Topology::Split,
            Some(_) => {
                let got = raw.topology.as_ref().map(|v| v.to_string()).unwrap_or_default();
                errors.push(format!("`topology` must be \"fused\" or \"split\", got {got}"));
                Topology::Fused
            }
        };
        let raw_threads = raw.threads.unwrap_or_default();
        let threads = Threads {
            feed: thread_spec(&raw_threads.feed, "feed", &mut errors),
            trader: thread_spec(&raw_threads.trader, "trader", &mut errors),
            gateway: thread_spec(&raw_threads.gateway, "gateway", &mut errors),
        };
        let paper_queue_model = match raw.paper_queue_model.as_ref() {
            None => d.paper_queue_model,
            Some(v) => match v.as_str().map(str::parse::<QueueModelKind>) {
                Some(Ok(k)) => k,
                Some(Err(e)) => {
                    errors.push(format!("`paper_queue_model`: {e}"));
                    d.paper_queue_model
                }
                None => {
                    errors.push(format!("`paper_queue_model` must be a string, got {v}"));
                    d.paper_queue_model
                }
            },
        };
        let rate_limit_tier = match raw.rate_limit_tier.as_ref().map(|v| v.as_str()) {
            None => d.rate_limit_tier,
            Some(Some(name)) if Tier::parse(name).is_some() => Tier::parse(name).unwrap_or(d.rate_limit_tier),
            Some(other) => {
                let names: Vec<&str> = Tier::ALL.iter().map(|t| t.name()).collect();
                let got = other.map_or("a value that is not a string".to_string(), |s| format!("{s:?}"));
                errors.push(format!("`rate_limit_tier` must be one of {}, got {got}", names.join(", ")));
                d.rate_limit_tier
            }
        };
        let budget_ms = int(&raw.budget_ms, "budget_ms", d.budget_ms, (1, 60_000), &mut errors);
        let rtt_ms = int(
            &raw.expected_round_trip_ms,
            "expected_round_trip_ms",
            d.expected_round_trip_ms,
            (0, 60_000),
            &mut errors,
        );
        if rtt_ms >= budget_ms {
            errors.push(format!(
                "`expected_round_trip_ms` ({rtt_ms}) must be below `budget_ms` ({budget_ms}): no order could be sent"
            ));
        }
        let ring_capacity =
            int(&raw.ring_capacity, "ring_capacity", d.ring_capacity as u64, (1024, 1 << 24), &mut errors);
        if !ring_capacity.is_power_of_two() {
            errors.push(format!("`ring_capacity` must be a power of two, got {ring_capacity}"));
        }
        let intents = int(&raw.intents_per_callback, "intents_per_callback", 64, (1, 4096), &mut errors) as usize;
        let timer_ms = int(&raw.timer_interval_ms, "timer_interval_ms", 1000, (1, 3_600_000), &mut errors);
        let path_of = |v: &Option<toml::Value>, key: &str, default: &Path, errors: &mut Vec<String>| match v {
            None => default.to_path_buf(),
            Some(v) => match v.as_str() {
                Some(s) => PathBuf::from(s),
                None => {
                    errors.push(format!("`{key}` must be a path string"));
                    default.to_path_buf()
                }
            },
        };
        let risk_file = path_of(&raw.risk, "risk", &d.risk_file, &mut errors);
        let strategies_dir = path_of(&raw.strategies_dir, "strategies_dir", &d.strategies_dir, &mut errors);
        let base = file.parent().unwrap_or(Path::new("."));
        let risk_path = base.join(&risk_file);
        let risk = match std::fs::read_to_string(&risk_path) {
            Ok(t) => match RiskConfig::parse(&t, &risk_path) {
                Ok(r) => r,
                Err(e) => {
                    errors.extend(e.errors.into_iter().map(|m| format!("{}: {m}", risk_path.display())));
                    RiskConfig::default()
                }
            },
            Err(e) => {
                errors.push(format!("`risk` = {:?}: cannot read {}: {e}", risk_file.display(), risk_path.display()));
                RiskConfig::default()
            }
        };
        if errors.is_empty() {
            Ok(EngineConfig {
                capital,
                account_precision,
                topology,
                threads,
                paper_queue_model,
                ring_capacity: ring_capacity as usize,
                intents_per_callback: intents,
                timer_interval_ns: timer_ms * 1_000_000,
                risk_file: risk_path,
                strategies_dir: base.join(strategies_dir),
                risk,
                rate_limit_tier,
                budget_ms,
                expected_round_trip_ms: rtt_ms,
            })
        } else {
            Err(ConfigError { file: file.to_path_buf(), errors })
        }
    }

    /// Loads `path`; with `None`, loads `config/engine.toml` when it exists in the working
    /// directory, else the built-in defaults (strategies then get an empty config).
    pub fn load(path: Option<&Path>) -> Result<EngineConfig, ConfigError> {
        let default_path = Path::new("config/engine.toml");
        let p = match path {
            Some(p) => p,
            None if default_path.exists() => default_path,
            None => return Ok(EngineConfig { strategies_dir: PathBuf::new(), ..EngineConfig::default() }),
        };
        let text = std::fs::read_to_string(p)
            .map_err(|e| ConfigError { file: p.to_path_buf(), errors: vec![format!("cannot read: {e}")] })?;
        EngineConfig::parse(&text, p)
    }

    /// The configuration text for strategy `name`: `<strategies_dir>/<name>.toml` when present,
    /// else `""` (the strategy's defaults).
    pub fn strategy_config(&self, name: &str) -> Result<(String, Option<PathBuf>), ConfigError> {
        if self.strategies_dir.as_os_str().is_empty() {
            return Ok((String::new(), None));
        }
        let p = self.strategies_dir.join(format!("{name}.toml"));
        match std::fs::read_to_string(&p) {
            Ok(t) => Ok((t, Some(p))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((String::new(), None)),
            Err(e) => Err(ConfigError { file: p, errors: vec![format!("cannot read: {e}")] }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn shipped_files_state_the_defaults() {
        let p = root().join("config/engine.toml");
        let c = EngineConfig::load(Some(&p)).unwrap();
        let d = EngineConfig::default();
        assert_eq!(c.capital, d.capital);
        assert_eq!(c.account_precision, d.account_precision);
        assert_eq!(c.ring_capacity, d.ring_capacity);
        assert_eq!(c.intents_per_callback, d.intents_per_callback);
        assert_eq!(c.timer_interval_ns, d.timer_interval_ns);
        assert_eq!(c.risk, d.risk);
        assert_eq!(c.rate_limit_tier, d.rate_limit_tier);
        assert_eq!((c.topology, c.threads, c.paper_queue_model), (d.topology, d.threads, d.paper_queue_model));
        assert_eq!((c.budget_ms, c.expected_round_trip_ms), (d.budget_ms, d.expected_round_trip_ms));
        assert_eq!(d.max_data_age_ns(), 17_000_000);
        assert!(c.strategies_dir.ends_with("strategies"));
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let dir = std::env::temp_dir().join(format!("strike-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("risk.toml"), "max_order_contracts = \"-1\"\nmax_price = \"1.5\"\nbogus = 1\n")
            .unwrap();
        let text = "capital = 5\nring_capacity = 1000\ncapitol = \"1\"\naccount_precision = \"mills\"\nrate_limit_tier = \"gold\"\nbudget_ms = 5\nexpected_round_trip_ms = 9\n";
        let e = EngineConfig::parse(text, &dir.join("engine.toml")).unwrap_err();
        let all = e.to_string();
        for needle in [
            "`capital` must be a string",
            "`ring_capacity` must be an integer in 1024",
            "unknown key `capitol`",
            "`account_precision` must be",
            "`rate_limit_tier` must be one of basic, advanced, expert, premier, paragon, prime, prestige, got \"gold\"",
            "`expected_round_trip_ms` (9) must be below `budget_ms` (5)",
            "`max_order_contracts` must be a positive",
            "`max_price`",
            "unknown key `bogus`",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(e.errors.len(), 9, "{all}");
    }

    #[test]
    fn rate_limit_tier_is_read_by_name() {
        let dir = std::env::temp_dir().join(format!("strike-cfg-tier-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("risk.toml"), "").unwrap();
        let c = EngineConfig::parse("rate_limit_tier = \"premier\"\n", &dir.join("engine.toml")).unwrap();
        assert_eq!(c.rate_limit_tier, Tier::Premier);
    }

    #[test]
    fn split_topology_threads_and_queue_model_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("strike-cfg-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("risk.toml"), "").unwrap();
        let text = "topology = \"split\"\npaper_queue_model = \"power:2\"\n[threads.feed]\ncore = 1\nwait = \"busy-spin\"\n[threads.gateway]\nwait = \"block\"\n";
        let c = EngineConfig::parse(text, &dir.join("engine.toml")).unwrap();
        assert_eq!(c.topology, Topology::Split);
        assert_eq!(c.threads.feed, ThreadSpec { core: Some(1), wait: WaitStrategy::BusySpin });
        assert_eq!(c.threads.trader, ThreadSpec::default());
        assert_eq!(c.threads.gateway.wait, WaitStrategy::Block);
        assert_eq!(c.paper_queue_model, QueueModelKind::Power(2.0));
        let bad = "topology = \"tripled\"\npaper_queue_model = \"fifo\"\n[threads.trader]\ncore = -1\nwait = \"nap\"\ncpu = 3\n";
        let e = EngineConfig::parse(bad, &dir.join("engine.toml")).unwrap_err();
        let all = e.to_string();
        for needle in [
            "`topology` must be \"fused\" or \"split\"",
            "unknown queue model \"fifo\"",
            "`threads.trader.core` must be a core id",
            "`threads.trader.wait` must be \"busy-spin\", \"spin-yield\" or \"block\"",
            "unknown key `threads.trader.cpu`",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(e.errors.len(), 5, "{all}");
    }
}
