//! No lock type is reachable from the stages' `poll` functions (issue: proof of the hot-path
//! rules). A source scan of every module the stages call — feed, trader, gateway, risk,
//! portfolio, pipeline, plugin host, telemetry, the background signer's reader, the journal's
//! sink — and all of `strike-sdk`: a line naming `Mutex`, `RwLock`, `Condvar`, `Barrier`,
//! `parking_lot`, `mpsc` or calling `.lock()` fails the test unless it (or the line above) says
//! `lock-ok:` and why the path is cold. Dependencies are outside the scan (rustls' session cache
//! takes a lock during a TLS handshake, which happens only when a connection is opened).

use std::path::{Path, PathBuf};

const FORBIDDEN: &[&str] = &["Mutex", "RwLock", "Condvar", "Barrier", "parking_lot", "mpsc", ".lock()"];

/// Lines of `text` that name a lock without a `lock-ok:` note, as `line number: text`.
fn unjustified(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let code = l.trim_start();
        if code.starts_with("//") {
            continue;
        }
        if !FORBIDDEN.iter().any(|f| code.contains(f)) {
            continue;
        }
        let noted = l.contains("lock-ok:") || (i > 0 && lines[i - 1].contains("lock-ok:"));
        if !noted {
            out.push(format!("{}: {}", i + 1, code));
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_scan_catches_a_lock() {
    assert_eq!(unjustified("let m = std::sync::Mutex::new(0);\nlet g = m.lock();\n").len(), 2);
    assert!(unjustified("// lock-ok: cold\nlet m = std::sync::Mutex::new(0);").is_empty());
    assert!(unjustified("/// a Mutex in a doc comment is prose").is_empty());
}

#[test]
fn no_lock_is_reachable_from_the_stage_polls() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in ["src/feed", "src/trader", "src/gateway", "src/risk", "src/portfolio", "src/pipeline", "src/host"] {
        rust_files(&root.join(d), &mut files);
    }
    for f in ["src/telemetry/mod.rs", "src/auth/signer.rs", "src/journal/mod.rs"] {
        files.push(root.join(f));
    }
    rust_files(&root.join("../sdk/src"), &mut files);
    assert!(files.len() > 20, "the scan found too few files: {files:?}");
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for l in unjustified(&text) {
            bad.push(format!("{}:{l}", f.display()));
        }
    }
    assert!(bad.is_empty(), "locks on the hot path (annotate a cold one with `// lock-ok: why`):\n{}", bad.join("\n"));
}
