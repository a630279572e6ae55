//! `engine`: the Strike command-line entry point. See [`strike_engine::cli`] for the commands and
//! the modes of a run (the loopback simulator by default, `--in-process`, `--venue ... --paper`,
//! `--venue ... --live`).

use clap::Parser;
use std::process::ExitCode;
use strike_engine::cli::{Cli, Command, ImportCmd, RunArgs};
use strike_engine::config::EngineConfig;
use strike_engine::host::Plugin;
use strike_engine::live::SimRunError;
use strike_engine::pipeline::{self, RunOptions};
use strike_sim::recording::Recording;
use strike_sim::server::Pacing;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Import(ImportCmd::Weather { books, actuals, out })) => import_weather(books, actuals, out),
        Some(Command::Record { venue, out, rotate_mb, rotate_minutes }) => {
            if venue.venue.is_none() {
                return fail(2, "engine record needs --venue (kalshi, kalshi-demo or a wss:// URL)");
            }
            let rotation = strike_sim::recording::Rotation {
                max_bytes: rotate_mb * 1024 * 1024,
                max_age: std::time::Duration::from_secs(rotate_minutes * 60),
            };
            match strike_engine::live::record(&venue.to_args(), &out, rotation) {
                Ok(s) => {
                    println!(
                        "recorded {} frames ({} skipped, {} reconnects) into {}",
                        s.frames,
                        s.skipped,
                        s.disconnects,
                        s.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(1, &e),
            }
        }
        Some(Command::Synth { seed, out }) => {
            let rec = strike_sim::synth::generate(seed, &strike_sim::synth::SynthConfig::default());
            match rec.write_strike(&out) {
                Ok(()) => {
                    println!(
                        "wrote {} frames, {} markets to {}",
                        rec.frames.len(),
                        rec.header.markets.len(),
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(1, &e.to_string()),
            }
        }
        None => run(cli.run),
    }
}

fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("error: {}", msg.trim_end());
    ExitCode::from(code)
}

fn import_weather(books: std::path::PathBuf, actuals: Vec<std::path::PathBuf>, out: std::path::PathBuf) -> ExitCode {
    let actuals = if actuals.is_empty() { strike_sim::import::default_actuals(&books) } else { actuals };
    match strike_sim::import::import_weather_sweeps(&books, &actuals) {
        Ok((rec, stats)) => match rec.write_strike(&out) {
            Ok(()) => {
                println!(
                    "imported {}: {} rows, {} sweeps, {} markets, {} events, {} snapshots, {} deltas, {} settled markets -> {}",
                    books.display(),
                    stats.rows,
                    stats.sweeps,
                    stats.markets,
                    stats.events,
                    stats.snapshots,
                    stats.deltas,
                    stats.settled_markets,
                    out.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(1, &e.to_string()),
        },
        Err(e) => fail(1, &e.to_string()),
    }
}

fn run(args: RunArgs) -> ExitCode {
    if args.strategies.is_empty() {
        return fail(2, "no strategy given: pass --strategy PATH/TO/libNAME.so (e.g. target/release/libflb.so)");
    }
    let cfg = match EngineConfig::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(2, &e.to_string()),
    };
    let mut plugins = Vec::new();
    for p in &args.strategies {
        match Plugin::load(p) {
            Ok(pl) => plugins.push(pl),
            Err(e) => return fail(2, &e.to_string()),
        }
    }
    if args.venue.venue.is_some() {
        if args.replay.is_some() {
            return fail(2, "--venue and --replay are exclusive: trade live data or a recording, not both");
        }
        if args.live && !args.yes {
            let venue = args.venue.venue.clone().unwrap_or_default();
            eprintln!("LIVE TRADING: real orders will be sent to {venue}. Type the venue name to confirm:");
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_err() || line.trim() != venue {
                return fail(2, "not confirmed: no order was sent (pass --yes to skip this question)");
            }
        }
        if !args.paper && !args.live {
            return fail(2, "--venue needs --paper (live data, simulated fills) or --live (real orders)");
        }
        let journal = args.journal.clone().or_else(|| args.live.then(|| "strike-journal.sqlite".into()));
        let opts = RunOptions { journal, ..Default::default() };
        return match strike_engine::live::run(&cfg, &args.venue.to_args(), &plugins, args.live, &opts) {
            Ok(outcome) => finish(&outcome, &args),
            Err(e) => fail(1, &e),
        };
    }
    let recording = match &args.replay {
        Some(path) => match Recording::read(path) {
            Ok(r) => r,
            Err(e) => return fail(2, &e.to_string()),
        },
        None => {
            let mut r = strike_sim::synth::generate(args.seed, &strike_sim::synth::SynthConfig::default());
            if r.header.source.is_empty() {
                r.header.source = format!("embedded synthetic session (seed {})", args.seed);
            }
            r
        }
    };
    let opts = RunOptions { journal: args.journal.clone(), ..Default::default() };
    if args.in_process {
        // Deterministic and network-free: the backtest, zero-allocation and benchmark path.
        return match pipeline::run(&cfg, recording, &plugins, &opts) {
            Ok(outcome) => finish(&outcome, &args),
            Err(e) => fail(2, &e.to_string()),
        };
    }
    let pacing = args.pace.unwrap_or(Pacing::AsFastAsPossible);
    match strike_engine::live::run_simulated(&cfg, recording, &plugins, pacing, &opts) {
        Ok(outcome) => finish(&outcome, &args),
        Err(e @ SimRunError::Input(_)) => fail(2, &e.to_string()),
        Err(e @ SimRunError::Failed(_)) => fail(1, &e.to_string()),
    }
}

/// Prints and writes the report, and the `.hgrm` files when asked.
fn finish(outcome: &pipeline::RunOutcome, args: &RunArgs) -> ExitCode {
    if let Some(dir) = &args.hgrm_dir {
        match outcome.latency.export_hgrm(dir, "") {
            Ok(files) => eprintln!("wrote {} latency histograms to {}", files.len(), dir.display()),
            Err(e) => return fail(1, &format!("cannot write the .hgrm files to {}: {e}", dir.display())),
        }
    }
    report(&outcome.report, args.report_json.as_deref())
}

fn report(r: &strike_engine::telemetry::report::Report, json: Option<&std::path::Path>) -> ExitCode {
    print!("{}", r.to_text());
    if let Some(path) = json {
        let text = match serde_json::to_string_pretty(r) {
            Ok(j) => j,
            Err(e) => return fail(1, &format!("cannot encode the report: {e}")),
        };
        if let Err(e) = std::fs::write(path, text) {
            return fail(1, &format!("cannot write {}: {e}", path.display()));
        }
    }
    ExitCode::SUCCESS
}
