//! Shared fixtures for the Strike benchmarks: real recorded frames from `STRIKE_DATA_DIR`.

use strike_sim::recording::Recording;

/// The production capture (`ws_prod_mlb_wnba_2026-08-07`), NO-price scale.
pub fn prod_recording() -> Recording {
    let p = strike_sim::data_dir().join("kalshi/ws_prod_mlb_wnba_2026-08-07/ws_orderbook_stream.json");
    Recording::read(&p).unwrap_or_else(|e| panic!("{e}: set STRIKE_DATA_DIR to the shared data folder"))
}

/// Frames of `rec` whose text contains `"type":"<ty>"`.
pub fn frames_of(rec: &Recording, ty: &str) -> Vec<Vec<u8>> {
    let needle = format!("\"type\":\"{ty}\"");
    rec.frames.iter().filter(|f| f.text.contains(&needle)).map(|f| f.text.as_bytes().to_vec()).collect()
}
