//! `engine`: the Strike command-line entry point. See [`strike_engine::cli`].

use clap::Parser;
use std::process::ExitCode;
use strike_engine::cli::{Cli, Command, ImportCmd, RunArgs};
use strike_engine::config::EngineConfig;
use strike_engine::host::Plugin;
use strike_engine::pipeline::{self, RunOptions};
use strike_sim::recording::Recording;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Import(ImportCmd::Weather { books, actuals, out })) => import_weather(books, actuals, out),
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
    let outcome = match pipeline::run(&cfg, recording, &plugins, &RunOptions::default()) {
        Ok(o) => o,
        Err(e) => return fail(2, &e.to_string()),
    };
    print!("{}", outcome.report.to_text());
    if let Some(path) = &args.report_json {
        let json = match serde_json::to_string_pretty(&outcome.report) {
            Ok(j) => j,
            Err(e) => return fail(1, &format!("cannot encode the report: {e}")),
        };
        if let Err(e) = std::fs::write(path, json) {
            return fail(1, &format!("cannot write {}: {e}", path.display()));
        }
    }
    ExitCode::SUCCESS
}
