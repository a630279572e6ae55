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

/// Runs the engine with `args` plus `--report-json json`, asserts it succeeded (showing its
/// stderr otherwise) and returns the report.
pub fn run_report(args: &[&std::ffi::OsStr], json: &Path) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push(std::ffi::OsStr::new("--report-json"));
    all.push(json.as_os_str());
    let out = run_engine(&all);
    assert!(out.status.success(), "engine {all:?} failed; stderr: {}", String::from_utf8_lossy(&out.stderr));
    report(json)
}

/// A counter of the report's `live` map (0 when absent): the live gateway's and, in a run
/// against the embedded simulator, the simulator's (`sim_*`).
pub fn live(r: &serde_json::Value, key: &str) -> u64 {
    r["live"][key].as_u64().unwrap_or(0)
}

/// Data frames (`orderbook_snapshot`, `orderbook_delta`, `trade`) the engine received, from the
/// report's `messages`.
pub fn data_messages(r: &serde_json::Value) -> u64 {
    ["orderbook_snapshot", "orderbook_delta", "trade"].iter().map(|t| r["messages"][t].as_u64().unwrap_or(0)).sum()
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

/// A test key of `tests/fixtures/keys`.
pub fn fixture_key(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys").join(name)
}

/// A mode-0600 copy of the fixture key `name` as `dir/key.pem`: git keeps no file modes, and the
/// engine refuses a private key others can read.
pub fn private_key_copy(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("key.pem");
    std::fs::copy(fixture_key(name), &key).expect("copy the fixture key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
    key
}

/// Where and how an engine run reaches a loopback venue with real orders.
pub struct LiveVenue<'a> {
    /// `wss://…/trade-api/ws/v2`.
    pub ws: &'a str,
    /// `https://…/trade-api/v2`.
    pub rest: &'a str,
    /// The venue's certificate (PEM).
    pub ca: &'a Path,
    /// The private key (mode 0600); its id is `test-key-id`.
    pub key: &'a Path,
    /// A recording whose header lists the venue's markets.
    pub markets: &'a Path,
}

impl LiveVenue<'_> {
    /// `--venue … --rest … --ca-cert … --key-id test-key-id --key-path … --markets-from …
    /// --duration-s S --live --yes --journal J --report-json R`.
    pub fn args(&self, seconds: u64, journal: &Path, json: &Path) -> Vec<std::ffi::OsString> {
        vec![
            "--venue".into(),
            self.ws.into(),
            "--rest".into(),
            self.rest.into(),
            "--ca-cert".into(),
            self.ca.into(),
            "--key-id".into(),
            "test-key-id".into(),
            "--key-path".into(),
            self.key.into(),
            "--markets-from".into(),
            self.markets.into(),
            "--duration-s".into(),
            seconds.to_string().into(),
            "--live".into(),
            "--yes".into(),
            "--journal".into(),
            journal.into(),
            "--report-json".into(),
            json.into(),
        ]
    }
}
