//! Helpers for the whole-system tests: find the built `engine` binary and plugin `.so` files
//! beside the test executable, run the binary, read its JSON report.
//!
//! The binaries come from `cargo build --workspace` (the README's test command builds first).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The cargo profile directory holding the test executable (`target/debug`, `target/release`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-binary>
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

/// Path of a built artefact, with a clear failure when it is missing.
pub fn artefact(name: &str) -> PathBuf {
    let p = profile_dir().join(name);
    assert!(p.exists(), "{} not built: run `cargo build --workspace` before `cargo test --workspace`", p.display());
    p
}

/// The `engine` binary.
pub fn engine() -> PathBuf {
    artefact("engine")
}

/// A plugin library by crate name (`flb` → `libflb.so`).
pub fn plugin(crate_name: &str) -> PathBuf {
    artefact(&format!("lib{crate_name}.so"))
}

/// A file of the shared recorded data.
pub fn data(rel: &str) -> PathBuf {
    let p = strike_sim::data_dir().join("kalshi").join(rel);
    assert!(p.exists(), "{} missing: set STRIKE_DATA_DIR to the shared data folder", p.display());
    p
}

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strike-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Runs the engine with `args` from the workspace root (so `config/engine.toml` applies).
pub fn run_engine(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(engine())
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("engine runs")
}

/// Reads a `--report-json` file.
pub fn report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("report is JSON")
}

/// Total of the report's `faults` map.
pub fn faults(r: &serde_json::Value) -> u64 {
    r["faults"].as_object().map(|m| m.values().filter_map(|v| v.as_u64()).sum()).unwrap_or(0)
}
