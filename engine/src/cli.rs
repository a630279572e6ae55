//! The `engine` command line (clap).
//!
//! ```text
//! engine --strategy libflb.so [--replay FILE] [--config FILE] [--report-json FILE] [--seed N]
//! engine import weather --books weather_books_DAY.jsonl.gz [--actuals FILE]... --out DAY.jsonl.zst
//! engine synth [--seed N] --out FILE.jsonl.zst
//! ```
//!
//! Without `--replay` the run uses the embedded default: the synthetic session `strike-sim`
//! generates from `--seed`. Exit status: 0 success, 1 a failure while running, 2 bad usage or
//! configuration.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Strike: a low-latency trading engine for Kalshi with strategy plugins.
#[derive(Parser, Debug)]
#[command(name = "engine", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; without a subcommand, run strategies (paper trading).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of a run.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of a paper-trading run.
#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// Strategy plugin (.so) to load; repeat for several.
    #[arg(long = "strategy", value_name = "PATH")]
    pub strategies: Vec<PathBuf>,
    /// Replay this recording instead of the embedded synthetic session: *.jsonl.zst (Strike),
    /// a capture object *.json, or bare Kalshi frames *.jsonl / *.jsonl.gz.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Engine configuration (default: config/engine.toml when present, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write the end-of-run report as JSON here.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Seed of the embedded synthetic session.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Convert other recorded data into Strike recordings.
    #[command(subcommand)]
    Import(ImportCmd),
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
