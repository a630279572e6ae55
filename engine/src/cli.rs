//! The `engine` command line (clap).
//!
//! ```text
//! engine --strategy libflb.so [--replay FILE] [--seed N] [--pace asap|realtime|xN]
//!        [--config FILE] [--report-json FILE] [--journal FILE] [--hgrm-dir DIR]
//! engine --strategy libflb.so --in-process [--replay FILE] [--seed N] ...
//! engine --strategy libflb.so --venue kalshi-demo --paper --series KXHIGHNY
//! engine --strategy libflb.so --venue kalshi --live --series KXHIGHNY
//! engine record --venue kalshi --series KXHIGHNY --out f.jsonl.zst
//! engine import weather --books weather_books_DAY.jsonl.gz [--actuals FILE]... --out DAY.jsonl.zst
//! engine synth [--seed N] --out FILE.jsonl.zst
//! ```
//!
//! ## Modes of a run
//! - **Default (no `--venue`)**: the engine starts the simulator (`strike-sim`) in-process on
//!   loopback and trades it through its real network stack: TLS, the WebSocket feed with the
//!   signed handshake and the private `fill` / `user_orders` channels, the REST V2 gateway
//!   signing every order with a fresh in-memory Ed25519 key, the resync before trading
//!   ([`crate::live::run_simulated`]). The simulator serves the embedded synthetic session
//!   (`--seed`) or `--replay FILE`, as fast as possible or at `--pace`; the run ends once the
//!   whole recording has been served and every order in flight answered.
//! - **`--in-process`**: the same recording through feed → trader → the paper venue, no network
//!   at all ([`crate::pipeline::run`]). Deterministic in the fused topology (the same orders and
//!   fills on every run of a recording or seed) and allocation-free after warm-up, so backtests
//!   that must repeat exactly, the zero-allocation proof and the benchmarks use it.
//! - **`--venue V --paper`**: live market data from Kalshi (or a `wss://` URL), simulated fills.
//! - **`--venue V --live`**: real orders through Kalshi's REST V2 API (asks to confirm).
//!
//! Exit status: 0 success, 1 a failure while running, 2 bad usage, configuration or input.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use strike_sim::server::Pacing;

/// Strike: a low-latency trading engine for Kalshi with strategy plugins.
#[derive(Parser, Debug)]
#[command(name = "engine", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; without a subcommand, run strategies (see the module docs for the modes).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of a run.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of a run (module docs: *Modes of a run*).
#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// Strategy plugin (.so) to load; repeat for several.
    #[arg(long = "strategy", value_name = "PATH")]
    pub strategies: Vec<PathBuf>,
    /// Replay this recording instead of the embedded synthetic session: *.jsonl.zst (Strike),
    /// a capture object *.json, or bare Kalshi frames *.jsonl / *.jsonl.gz. Served by the
    /// loopback simulator, or in-process with --in-process.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Replay in-process through the paper venue, with no simulator and no network. Exists
    /// because it is deterministic (in the fused topology, the same orders and fills on every
    /// run of a recording or seed) and allocation-free after warm-up: backtests that must
    /// repeat exactly, the zero-allocation proof and the benchmarks use it. Without it the
    /// engine trades the simulator over TLS on loopback (its real network stack).
    #[arg(long, conflicts_with_all = ["venue", "pace"])]
    pub in_process: bool,
    /// How fast the loopback simulator serves the recording: `asap` (as fast as possible, the
    /// default), `realtime` (the recorded gaps) or `xN` (the recorded gaps divided by N, e.g.
    /// `x10`); `fast`, `recorded` and `Nx` are accepted too.
    #[arg(long, value_name = "PACE", value_parser = parse_pace, conflicts_with = "venue")]
    pub pace: Option<Pacing>,
    /// Engine configuration (default: config/engine.toml when present, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write the end-of-run report as JSON here.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Seed of the embedded synthetic session.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Trade on live data from this venue instead of a recording (needs --paper or --live).
    #[command(flatten)]
    pub venue: VenueOpts,
    /// With --venue: live market data, simulated (paper) fills.
    #[arg(long, requires = "venue", conflicts_with = "live")]
    pub paper: bool,
    /// With --venue: real orders through Kalshi's REST V2 API (asks you to type the venue name
    /// to confirm unless --yes).
    #[arg(long, requires = "venue")]
    pub live: bool,
    /// With --live: skip typing the venue name to confirm.
    #[arg(long)]
    pub yes: bool,
    /// Journal faults, sessions, orders, order updates and fills into this SQLite file
    /// (default with --live: strike-journal.sqlite in the current folder; none otherwise).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// At exit, write each hop's latency histogram as DIR/<hop>.hgrm (HdrHistogram's
    /// percentile-distribution text, nanoseconds).
    #[arg(long, value_name = "DIR")]
    pub hgrm_dir: Option<PathBuf>,
}

/// Where to connect for live data, and which markets.
#[derive(Args, Debug, Default, Clone)]
pub struct VenueOpts {
    /// `kalshi`, `kalshi-demo`, or a `wss://HOST[:PORT]/trade-api/ws/v2` URL.
    #[arg(long, value_name = "VENUE")]
    pub venue: Option<String>,
    /// REST base for a URL venue (`https://HOST/trade-api/v2`).
    #[arg(long, value_name = "URL")]
    pub rest: Option<String>,
    /// Trust this certificate (PEM or DER) instead of the public roots (loopback simulators).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// API key id (default: $KALSHI_API_KEY_ID).
    #[arg(long, value_name = "ID")]
    pub key_id: Option<String>,
    /// Private key PEM file, mode 600 (default: $KALSHI_PRIVATE_KEY_PATH).
    #[arg(long, value_name = "FILE")]
    pub key_path: Option<PathBuf>,
    /// Series to trade or record (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub series: Vec<String>,
    /// Market tickers to trade or record (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub tickers: Vec<String>,
    /// Take the market list and metadata from this recording instead of REST.
    #[arg(long, value_name = "FILE")]
    pub markets_from: Option<PathBuf>,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub duration_s: Option<u64>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Convert other recorded data into Strike recordings.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Record a venue's raw frames and market metadata into a Strike recording.
    Record {
        /// Venue and markets.
        #[command(flatten)]
        venue: VenueOpts,
        /// Output file (*.jsonl.zst); rotated files get .1, .2, ... before the extension.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Start a new file after this many MiB of frames (0 = never).
        #[arg(long, default_value_t = 0)]
        rotate_mb: u64,
        /// Start a new file after this many minutes (0 = never).
        #[arg(long, default_value_t = 0)]
        rotate_minutes: u64,
    },
    /// Write the synthetic session for a seed as a Strike recording.
    Synth {
        /// Seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Output file (*.jsonl.zst).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Importers.
#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// REST book sweeps of weather events (weather_books_*.jsonl.gz) → snapshots + deltas.
    Weather {
        /// The sweep file.
        #[arg(long, value_name = "FILE")]
        books: PathBuf,
        /// Settlement files (weather_actuals_*.jsonl); default: every one beside the books file.
        #[arg(long, value_name = "FILE")]
        actuals: Vec<PathBuf>,
        /// Output file (*.jsonl.zst).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Parses `--pace`: `asap` / `fast`, `realtime` / `recorded`, `xN` / `Nx` with N > 0.
pub fn parse_pace(s: &str) -> Result<Pacing, String> {
    let bad = || format!("bad --pace `{s}`: use `asap`, `realtime`, or `xN` with N > 0 (e.g. `x10`)");
    match s {
        "asap" | "fast" => Ok(Pacing::AsFastAsPossible),
        "realtime" | "recorded" => Ok(Pacing::Recorded { speed: 1.0 }),
        _ => {
            let n = s.strip_prefix('x').or_else(|| s.strip_suffix('x')).ok_or_else(bad)?;
            let speed: f64 = n.parse().map_err(|_| bad())?;
            if speed.is_finite() && speed > 0.0 {
                Ok(Pacing::Recorded { speed })
            } else {
                Err(bad())
            }
        }
    }
}

impl VenueOpts {
    /// As the live module's arguments.
    pub fn to_args(&self) -> crate::live::VenueArgs {
        crate::live::VenueArgs {
            venue: self.venue.clone().unwrap_or_default(),
            rest: self.rest.clone(),
            ca_cert: self.ca_cert.clone(),
            key_id: self.key_id.clone(),
            key_path: self.key_path.clone(),
            series: self.series.clone(),
            tickers: self.tickers.clone(),
            markets_from: self.markets_from.clone(),
            duration: self.duration_s.map(std::time::Duration::from_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn venue_options_parse() {
        let c = Cli::try_parse_from([
            "engine",
            "--strategy",
            "a.so",
            "--venue",
            "kalshi-demo",
            "--paper",
            "--series",
            "KXHIGHNY,KXHIGHCHI",
        ])
        .unwrap();
        assert_eq!(c.run.venue.series, vec!["KXHIGHNY", "KXHIGHCHI"]);
        assert!(c.run.paper);
        assert!(Cli::try_parse_from(["engine", "--strategy", "a.so", "--paper"]).is_err(), "--paper needs --venue");
        let r =
            Cli::try_parse_from(["engine", "record", "--venue", "kalshi", "--tickers", "A", "--out", "f.jsonl.zst"])
                .unwrap();
        assert!(matches!(r.command, Some(Command::Record { .. })));
    }

    #[test]
    fn modes_and_pace_parse() {
        let c = Cli::try_parse_from(["engine", "--strategy", "a.so", "--replay", "f.json", "--pace", "x10"]).unwrap();
        assert_eq!(c.run.pace, Some(Pacing::Recorded { speed: 10.0 }));
        assert!(!c.run.in_process);
        for (arg, pace) in [
            ("asap", Pacing::AsFastAsPossible),
            ("fast", Pacing::AsFastAsPossible),
            ("realtime", Pacing::Recorded { speed: 1.0 }),
            ("recorded", Pacing::Recorded { speed: 1.0 }),
            ("2.5x", Pacing::Recorded { speed: 2.5 }),
        ] {
            assert_eq!(parse_pace(arg), Ok(pace), "{arg}");
        }
        for bad in ["x0", "x-1", "xinf", "slow", "x", ""] {
            assert!(parse_pace(bad).unwrap_err().contains("bad --pace"), "{bad}");
        }
        let c = Cli::try_parse_from(["engine", "--strategy", "a.so", "--in-process"]).unwrap();
        assert!(c.run.in_process && c.run.pace.is_none());
        // the in-process replay has no simulator to pace and no venue
        assert!(Cli::try_parse_from(["engine", "--strategy", "a.so", "--in-process", "--pace", "x2"]).is_err());
        assert!(Cli::try_parse_from(["engine", "--strategy", "a.so", "--in-process", "--venue", "kalshi", "--paper"])
            .is_err());
        assert!(Cli::try_parse_from(["engine", "--strategy", "a.so", "--venue", "kalshi", "--paper", "--pace", "x2"])
            .is_err());
    }
}
