//! Market metadata over Kalshi's REST API (cold path, before and between trading sessions).
//!
//! A blocking `ureq` client (rustls, ring) fetches, for the configured series or tickers:
//! markets (`GET /markets?series_ticker=…` or `?tickers=…`, paginated by `cursor`), their events
//! (`GET /events/{event_ticker}`: `mutually_exclusive`), and their series
//! (`GET /series/{series_ticker}`: `fee_type`, `fee_multiplier`), per `kalshi-protocol.md` §4–5.
//! The result is a recording [`Header`], the same shape replays carry, so the universe the SDK
//! exposes (events, outcome groups, strikes, `price_ranges` grids, fees, shards, close times) is
//! built by one code path whether the markets came from a file or from the exchange.
//!
//! With an API key ([`RestClient::with_key`]) it also reads the account, signing each request
//! when it is made (`timestamp + GET + path`, no query): `GET /portfolio/balance` (available
//! balance in cents: the capital risk limits are fractions of) and `GET /portfolio/positions`
//! (`market_positions[].position_fp`, paginated) for reconciliation.
//!
//! ## Retries
//! A `429` (Kalshi's token-bucket read limit, `kalshi-protocol.md` §3.8), a `5xx`, or a
//! connection reset / abort / early EOF is retried with exponential backoff
//! ([`RetryPolicy`]: by default 5 attempts, 250 ms doubling to at most 2 s between attempts, at
//! most 5 s of waiting in all). A `Retry-After` header in whole seconds is honoured when present
//! (Kalshi documents none on its 429s, §3.7), as long as it fits the remaining budget. When the
//! attempts or the budget run out the error ([`MetadataError::GaveUp`]) says how many attempts
//! were made, what the last answer was and what to do. Other statuses (400, 401, 404, ...) and
//! other transport failures (refused connection, timeout, TLS) are not retried. Each attempt
//! is signed afresh (a new timestamp).
//!
//! Nothing here runs on a hot thread: the client sleeps between attempts. Errors name the URL and
//! what came back.

use std::collections::BTreeSet;
use std::time::Duration;
use strike_sim::recording::{parse_markets_page, EventRecord, Header, MarketRecord, FORMAT_VERSION};

/// Why metadata could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The request failed (connection, TLS, timeout) or came back with an error status.
    #[error("GET {url}: {msg}")]
    Http {
        /// The URL.
        url: String,
        /// What happened.
        msg: String,
    },
    /// The answer was not the JSON Kalshi documents.
    #[error("GET {url}: unexpected answer: {msg}")]
    Body {
        /// The URL.
        url: String,
        /// What is wrong.
        msg: String,
    },
    /// Every attempt failed with a retryable answer (429, 5xx, connection reset) and the
    /// [`RetryPolicy`] bounds ran out.
    #[error("GET {url}: gave up after {attempts} attempts in {waited_ms} ms, last: {last}; {advice}")]
    GaveUp {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent waiting between attempts, milliseconds.
        waited_ms: u64,
        /// The last failure (`HTTP 429: {"error":"too many requests"}`, `connection reset ...`).
        last: String,
        /// What the operator can do about it.
        advice: &'static str,
    },
    /// The query named nothing to fetch, or matched no market.
    #[error("{0}")]
    Empty(String),
}

/// How [`RestClient`] retries a `429`, a `5xx` or a reset connection (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests made at most, the first one included (1 = never retry). Default 5.
    pub max_attempts: u32,
    /// Wait before the first retry; doubles for each further one. Default 250 ms.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts (a longer `Retry-After` gives up instead). Default 2 s.
    pub max_backoff: Duration,
    /// Most time spent waiting between the attempts of one request, in all. Default 5 s.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
            max_total_wait: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Never retry: one attempt.
    pub fn none() -> RetryPolicy {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// The wait before attempt `n + 1` after `n` failed attempts (n ≥ 1), without `Retry-After`:
    /// `initial_backoff · 2^(n−1)`, capped at `max_backoff`.
    pub fn backoff(&self, n: u32) -> Duration {
        self.initial_backoff.saturating_mul(1u32 << n.saturating_sub(1).min(20)).min(self.max_backoff)
    }
}

/// One failed attempt: what to report, whether to retry, and the server's `Retry-After`.
struct Failure {
    msg: String,
    retry: Option<Retryable>,
    retry_after: Option<Duration>,
}

/// Why a failure may go away by itself.
#[derive(Clone, Copy)]
enum Retryable {
    RateLimited,
    ServerError,
    Reset,
}

impl Retryable {
    fn advice(self) -> &'static str {
        match self {
            Retryable::RateLimited => {
                "Kalshi's read rate limit (kalshi-protocol.md §3.8): wait a few seconds and run again, load \
                 fewer series/tickers at once, or stop other clients using this API key"
            }
            Retryable::ServerError => {
                "the exchange is failing or in maintenance (Thursdays 03:00-05:00 ET): check \
                 GET /exchange/status and run again later"
            }
            Retryable::Reset => "the connection keeps being dropped: check the network or proxy and run again",
        }
    }
}

/// Transport errors worth another attempt: the peer dropped the connection.
fn is_reset(e: &ureq::Error) -> bool {
    use std::io::ErrorKind as K;
    match e {
        ureq::Error::Io(io) => {
            matches!(io.kind(), K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof)
        }
        _ => false,
    }
}

/// What to load: whole series, or single markets.
#[derive(Clone, Debug, Default)]
pub struct MarketQuery {
    /// Series tickers (`KXHIGHNY`): every market of theirs with `status`.
    pub series: Vec<String>,
    /// Market tickers.
    pub tickers: Vec<String>,
    /// Market status filter for series (`open` by default; empty = any).
    pub status: String,
}

/// A blocking client for Kalshi's public REST reads.
pub struct RestClient {
    agent: ureq::Agent,
    base: String,
    key: Option<(String, std::sync::Arc<crate::auth::SigningKey>)>,
    /// Retry bounds for 429 / 5xx / reset connections ([`RetryPolicy::default`]).
    pub retry: RetryPolicy,
}

/// The account's position in one market (`GET /portfolio/positions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountPosition {
    /// Market ticker.
    pub ticker: String,
    /// Net contracts, hundredths: + YES, − NO.
    pub position: strike_sdk::num::Qty,
    /// Resting orders in the market.
    pub resting_orders: u32,
}

impl RestClient {
    /// A client for `base` (`https://external-api.kalshi.com/trade-api/v2`, or `http://127.0.0.1:PORT/...`
    /// for loopback tests), with a 10 s timeout per request.
    pub fn new(base: &str) -> RestClient {
        RestClient::with_roots(base, ureq::tls::RootCerts::WebPki)
    }

    /// A client for `base` trusting only the DER certificate `cert_der` (a loopback simulator's
    /// self-signed certificate, e.g. `strike_sim::server::TestCert::cert_der`).
    pub fn with_ca_cert(base: &str, cert_der: &[u8]) -> RestClient {
        let cert = ureq::tls::Certificate::from_der(cert_der).to_owned();
        RestClient::with_roots(base, ureq::tls::RootCerts::new_with_certs(&[cert]))
    }

    fn with_roots(base: &str, roots: ureq::tls::RootCerts) -> RestClient {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent();
        RestClient { agent, base: base.trim_end_matches('/').to_string(), key: None, retry: RetryPolicy::default() }
    }

    /// Replaces the retry bounds.
    pub fn with_retry(mut self, retry: RetryPolicy) -> RestClient {
        self.retry = retry;
        self
    }

    /// Signs every request with `key` as API key `key_id` (needed for the account reads).
    pub fn with_key(mut self, key_id: &str, key: std::sync::Arc<crate::auth::SigningKey>) -> RestClient {
        self.key = Some((key_id.to_string(), key));
        self
    }

    /// `GET base + path_and_query`, retried per [`RestClient::retry`]; the body of a 200.
    fn get(&self, path_and_query: &str) -> Result<String, MetadataError> {
        let url = format!("{}{}", self.base, path_and_query);
        let policy = self.retry;
        let mut waited = Duration::ZERO;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let f = match self.get_once(&url) {
                Ok(body) => return Ok(body),
                Err(f) => f,
            };
            let Some(kind) = f.retry else {
                return Err(MetadataError::Http { url, msg: f.msg });
            };
            let wait = f.retry_after.unwrap_or_else(|| policy.backoff(attempt));
            let out_of_attempts = attempt >= policy.max_attempts.max(1);
            let too_long = wait > policy.max_backoff || waited + wait > policy.max_total_wait;
            if out_of_attempts || too_long {
                let last = match f.retry_after {
                    Some(ra) if !out_of_attempts => {
                        format!("{} with Retry-After {} s, past the retry bounds", f.msg, ra.as_secs())
                    }
                    _ => f.msg,
                };
                return Err(MetadataError::GaveUp {
                    url,
                    attempts: attempt,
                    waited_ms: waited.as_millis() as u64,
                    last,
                    advice: kind.advice(),
                });
            }
            std::thread::sleep(wait);
            waited += wait;
        }
    }

    /// One signed (when keyed) attempt.
    fn get_once(&self, url: &str) -> Result<String, Failure> {
        let fatal = |msg: String| Failure { msg, retry: None, retry_after: None };
        let mut req = self.agent.get(url);
        if let Some((key_id, key)) = &self.key {
            // sign the full path (the base's path prefix plus ours), without the query
            let full_path =
                url.split_once("://").map(|(_, r)| r).and_then(|r| r.find('/').map(|i| &r[i..])).unwrap_or("/");
            let ts = crate::auth::unix_now_ns() / 1_000_000;
            let h = crate::auth::sign_now(key, "GET", full_path, ts).map_err(|e| fatal(e.to_string()))?;
            req = req
                .header("KALSHI-ACCESS-KEY", key_id.as_str())
                .header("KALSHI-ACCESS-TIMESTAMP", h.ts_ms.to_string())
                .header("KALSHI-ACCESS-SIGNATURE", h.signature_b64_str());
        }
        let transport = |e: ureq::Error, what: &str| Failure {
            msg: format!("{what}{e}"),
            retry: is_reset(&e).then_some(Retryable::Reset),
            retry_after: None,
        };
        let mut resp = req.call().map_err(|e| transport(e, ""))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.body_mut().read_to_string().map_err(|e| transport(e, "reading the body: "))?;
        if status == 200 {
            return Ok(body);
        }
        let snippet: String = body.chars().take(200).collect();
        let retry = match status {
            429 => Some(Retryable::RateLimited),
            500..=599 => Some(Retryable::ServerError),
            _ => None,
        };
        Err(Failure { msg: format!("HTTP {status}: {snippet}"), retry, retry_after })
    }

    /// Every market matching `query`, following `cursor` pages (`limit=1000`).
    pub fn markets(&self, query: &MarketQuery) -> Result<Vec<MarketRecord>, MetadataError> {
        let mut out: Vec<MarketRecord> = Vec::new();
        let mut queries = Vec::new();
        for s in &query.series {
            let status = if query.status.is_empty() { String::new() } else { format!("&status={}", query.status) };
            queries.push(format!("/markets?limit=1000&series_ticker={s}{status}"));
        }
        for chunk in query.tickers.chunks(100) {
            queries.push(format!("/markets?limit=1000&tickers={}", chunk.join(",")));
        }
        if queries.is_empty() {
            return Err(MetadataError::Empty("no series and no tickers to load: pass --series or --tickers".into()));
        }
        for q in queries {
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("{q}&cursor={c}"),
                    None => q.clone(),
                };
                let body = self.get(&path)?;
                let (page, next) = parse_markets_page(&body)
                    .map_err(|msg| MetadataError::Body { url: format!("{}{path}", self.base), msg })?;
                for m in page {
                    if !out.iter().any(|o| o.ticker == m.ticker) {
                        out.push(m);
                    }
                }
                match next {
                    Some(c) if Some(&c) != cursor.as_ref() => cursor = Some(c),
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    /// `GET /events/{event_ticker}`: the event's series and whether its markets are mutually
    /// exclusive.
    pub fn event(&self, event_ticker: &str) -> Result<EventRecord, MetadataError> {
        let path = format!("/events/{event_ticker}");
        let body = self.get(&path)?;
        let v: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| MetadataError::Body { url: format!("{}{path}", self.base), msg: e.to_string() })?;
        let ev = &v["event"];
        if !ev.is_object() {
            return Err(MetadataError::Body { url: format!("{}{path}", self.base), msg: "no `event` object".into() });
        }
        Ok(EventRecord {
            event_ticker: event_ticker.to_string(),
            series_ticker: ev["series_ticker"].as_str().unwrap_or_default().to_string(),
            mutually_exclusive: ev["mutually_exclusive"].as_bool().unwrap_or(false),
            expiration_value: None,
        })
    }

    /// `GET /series/{series_ticker}`: `(fee_type, fee_multiplier as decimal text)`.
    pub fn series_fees(&self, series_ticker: &str) -> Result<(Option<String>, Option<String>), MetadataError> {
        let path = format!("/series/{series_ticker}");
        let body = self.get(&path)?;
        let v: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| MetadataError::Body { url: format!("{}{path}", self.base), msg: e.to_string() })?;
        let s = &v["series"];
        let fee_type = s["fee_type"].as_str().filter(|t| !t.is_empty()).map(str::to_string);
        // a JSON number: keep its text, never go through f64
        let mult = match &s["fee_multiplier"] {
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::String(t) if !t.is_empty() => Some(t.clone()),
            _ => None,
        };
        Ok((fee_type, mult))
    }

    /// `GET /portfolio/balance`: the available balance (Kalshi reports whole cents).
    pub fn balance(&self) -> Result<strike_sdk::num::Money, MetadataError> {
        let path = "/portfolio/balance";
        let body = self.get(path)?;
        let bad = |msg: String| MetadataError::Body { url: format!("{}{path}", self.base), msg };
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| bad(e.to_string()))?;
        let cents = v["balance"].as_i64().ok_or_else(|| bad("no integer `balance` (cents)".into()))?;
        Ok(strike_sdk::num::Money::cents(cents))
    }

    /// `GET /portfolio/positions`: every market position, following `cursor` pages.
    pub fn positions(&self) -> Result<Vec<AccountPosition>, MetadataError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/portfolio/positions?limit=1000&cursor={c}"),
                None => "/portfolio/positions?limit=1000".to_string(),
            };
            let body = self.get(&path)?;
            let bad = |msg: String| MetadataError::Body { url: format!("{}{path}", self.base), msg };
            let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| bad(e.to_string()))?;
            for m in v["market_positions"].as_array().ok_or_else(|| bad("no `market_positions` array".into()))? {
                let ticker = m["ticker"].as_str().ok_or_else(|| bad("a position without `ticker`".into()))?;
                let fp = m["position_fp"].as_str().ok_or_else(|| bad(format!("{ticker}: no `position_fp`")))?;
                let position =
                    strike_sdk::num::Qty::parse(fp).map_err(|e| bad(format!("{ticker}: position_fp {fp:?}: {e}")))?;
                let resting_orders = m["resting_orders_count"].as_u64().unwrap_or(0) as u32;
                out.push(AccountPosition { ticker: ticker.to_string(), position, resting_orders });
            }
            match v["cursor"].as_str().filter(|c| !c.is_empty()) {
                Some(c) if Some(c) != cursor.as_deref() => cursor = Some(c.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Markets, events and series fees for `query`, as a recording header with the YES price
    /// scale (live subscriptions send `use_yes_price: true`).
    pub fn universe_header(&self, query: &MarketQuery, source: &str) -> Result<Header, MetadataError> {
        let mut markets = self.markets(query)?;
        if markets.is_empty() {
            return Err(MetadataError::Empty(format!(
                "no market matched series {:?} / tickers {:?} (status {:?})",
                query.series, query.tickers, query.status
            )));
        }
        let event_tickers: BTreeSet<String> =
            markets.iter().map(|m| m.event_ticker.clone()).filter(|e| !e.is_empty()).collect();
        let mut events = Vec::new();
        for e in &event_tickers {
            events.push(self.event(e)?);
        }
        let mut series: BTreeSet<String> = markets.iter().map(|m| m.series_ticker.clone()).collect();
        series.extend(events.iter().map(|e| e.series_ticker.clone()));
        series.remove("");
        for s in &series {
            let (fee_type, mult) = self.series_fees(s)?;
            for m in markets.iter_mut() {
                let ev_series =
                    events.iter().find(|e| e.event_ticker == m.event_ticker).map(|e| e.series_ticker.as_str());
                if m.series_ticker == *s || (m.series_ticker.is_empty() && ev_series == Some(s.as_str())) {
                    m.series_ticker = s.clone();
                    m.fee_type = fee_type.clone();
                    m.fee_multiplier = mult.clone();
                }
            }
        }
        Ok(Header {
            strike_recording: FORMAT_VERSION,
            source: source.to_string(),
            yes_price_scale: true,
            markets,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A one-thread HTTP/1.1 server on loopback answering GETs from a table (path prefix → body).
    fn serve(routes: Vec<(String, u16, String)>, requests: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/trade-api/v2", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..requests {
                let (mut s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let (code, body) = routes
                    .iter()
                    .find(|(p, _, _)| path.starts_with(p.as_str()))
                    .map(|(_, c, b)| (*c, b.clone()))
                    .unwrap_or((404, "{\"error\":{\"code\":\"not_found\"}}".into()));
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                seen.push(path);
            }
            seen
        });
        (base, h)
    }

    #[test]
    fn a_series_becomes_a_universe_header_over_real_kalshi_answers() {
        // The real REST answer recorded in ws_prod_mlb_wnba_2026-08-07/markets_settled.json,
        // served as two cursor pages.
        let p = strike_sim::data_dir().join("kalshi/ws_prod_mlb_wnba_2026-08-07/markets_settled.json");
        let text = std::fs::read_to_string(&p).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let all: Vec<serde_json::Value> = v["markets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["series_ticker"] == "KXMLBGAME" || m["event_ticker"].as_str().unwrap_or("").starts_with("KXMLBGAME")
            })
            .cloned()
            .collect();
        assert!(all.len() >= 4, "{}", all.len());
        let (a, b) = all.split_at(all.len() / 2);
        let page1 = serde_json::json!({"markets": a, "cursor": "c2"}).to_string();
        let page2 = serde_json::json!({"markets": b, "cursor": ""}).to_string();
        let events: BTreeSet<String> = all.iter().map(|m| m["event_ticker"].as_str().unwrap().to_string()).collect();
        let mut routes = vec![
            ("/trade-api/v2/markets?limit=1000&series_ticker=KXMLBGAME&status=settled&cursor=c2".into(), 200, page2),
            ("/trade-api/v2/markets?limit=1000&series_ticker=KXMLBGAME&status=settled".into(), 200, page1),
            (
                "/trade-api/v2/series/KXMLBGAME".into(),
                200,
                r#"{"series":{"ticker":"KXMLBGAME","fee_type":"quadratic_with_maker_fees","fee_multiplier":0.5}}"#
                    .into(),
            ),
        ];
        for e in &events {
            routes.push((
                format!("/trade-api/v2/events/{e}"),
                200,
                format!(
                    r#"{{"event":{{"event_ticker":"{e}","series_ticker":"KXMLBGAME","mutually_exclusive":true}}}}"#
                ),
            ));
        }
        let n_requests = 3 + events.len();
        let (base, h) = serve(routes, n_requests);
        let c = RestClient::new(&base);
        let q = MarketQuery { series: vec!["KXMLBGAME".into()], tickers: vec![], status: "settled".into() };
        let header = c.universe_header(&q, "test").unwrap();
        let seen = h.join().unwrap();
        assert_eq!(seen.len(), n_requests);
        assert_eq!(header.markets.len(), all.len());
        assert!(header.events.iter().all(|e| e.mutually_exclusive));
        for m in &header.markets {
            assert_eq!(m.series_ticker, "KXMLBGAME");
            assert_eq!(m.fee_type.as_deref(), Some("quadratic_with_maker_fees"));
            assert_eq!(m.fee_multiplier.as_deref(), Some("0.5"));
            assert!(!m.event_ticker.is_empty());
        }
        // the universe builder takes it: grids, fees (multiplier 0.5 = 500000 ppm), groups
        let u = strike_sim::universe::UniverseData::from_header(&header).unwrap();
        assert_eq!(u.markets[0].fees.multiplier_ppm, 500_000);
        assert!(!u.groups.is_empty());
    }

    /// Serves one signed GET: verifies the KALSHI-ACCESS-* headers with the sim exchange's
    /// verifier and the test public key, then answers `body`.
    fn serve_signed(body: String) -> (String, std::thread::JoinHandle<Result<(), String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/trade-api/v2", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.trim_end().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let target = line.split(' ').nth(1).unwrap_or("").to_string();
            let path = target.split('?').next().unwrap_or("");
            let key = strike_sim::server::ApiKey::from_pem_file(
                "kid",
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../tests/fixtures/keys/test_ed25519_public.pem"),
            )
            .unwrap();
            let hv = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
            let auth = strike_sim::server::AuthHeaders {
                key_id: hv("kalshi-access-key"),
                timestamp: hv("kalshi-access-timestamp"),
                signature: hv("kalshi-access-signature"),
            };
            let verdict = strike_sim::server::verify_request(
                &key,
                &auth,
                "GET",
                path,
                strike_sim::server::auth::unix_now_ms(),
                Duration::from_secs(30),
            )
            .map_err(|e| e.to_string());
            let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            verdict
        });
        (base, h)
    }

    fn test_key() -> std::sync::Arc<crate::auth::SigningKey> {
        use std::os::unix::fs::PermissionsExt;
        let src =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys/test_ed25519_pkcs8.pem");
        let p = std::env::temp_dir().join(format!(
            "strike-md-key-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::copy(src, &p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::sync::Arc::new(crate::auth::load_private_key(&p).unwrap())
    }

    #[test]
    fn account_reads_are_signed_and_parse_the_real_positions_answer() {
        // the recorded GET /portfolio/positions answer of ws_demo_mm_session_2026-07-01
        let rest =
            std::fs::read_to_string(strike_sim::data_dir().join("kalshi/ws_demo_mm_session_2026-07-01/rest.jsonl"))
                .unwrap();
        let body = rest
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["url"].as_str().unwrap_or("").ends_with("/portfolio/positions"))
            .and_then(|v| v["response_body"].as_str().map(str::to_string))
            .unwrap();
        let n = serde_json::from_str::<serde_json::Value>(&body).unwrap()["market_positions"].as_array().unwrap().len();
        let (base, h) = serve_signed(body);
        let c = RestClient::new(&base).with_key("kid", test_key());
        let pos = c.positions().unwrap();
        h.join().unwrap().expect("the server verified our signature");
        assert_eq!(pos.len(), n);
        assert!(pos.iter().any(|p| p.ticker == "KXNEXTTEAMNBA-26LJAM-MIA" && p.position == strike_sdk::num::Qty::ZERO));

        let (base, h) = serve_signed(r#"{"balance":123456,"portfolio_value":7890,"updated_ts":1}"#.into());
        let bal = RestClient::new(&base).with_key("kid", test_key()).balance().unwrap();
        h.join().unwrap().expect("signed");
        assert_eq!(bal, strike_sdk::num::Money::dollars(1234) + strike_sdk::num::Money::cents(56));

        // an unsigned request is refused by the same verifier
        let (base, h) = serve_signed("{}".into());
        let _ = RestClient::new(&base).balance();
        assert!(h.join().unwrap().is_err());
    }

    #[test]
    fn errors_name_the_url_and_status() {
        let (base, h) = serve(vec![("/trade-api/v2/markets".into(), 404, "{\"code\":\"not_found\"}".into())], 1);
        let c = RestClient::new(&base);
        let q = MarketQuery { series: vec!["X".into()], ..Default::default() };
        let e = c.markets(&q).unwrap_err().to_string();
        h.join().unwrap();
        assert!(e.contains("/markets?limit=1000&series_ticker=X") && e.contains("HTTP 404"), "{e}");
        assert!(RestClient::new(&base).markets(&MarketQuery::default()).unwrap_err().to_string().contains("--series"));
    }

    /// One scripted answer: status, extra header lines, body; `None` = drop the connection
    /// without answering (a reset).
    type Answer = Option<(u16, &'static str, String)>;

    /// A one-thread HTTP/1.1 server on loopback answering requests in order from `script`,
    /// whatever their path; returns the paths asked.
    fn serve_script(script: Vec<Answer>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/trade-api/v2", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for answer in script {
                let (mut s, _) = l.accept().unwrap();
                let Some((code, headers, body)) = answer else {
                    // closing with the request unread makes the kernel send a RST
                    std::thread::sleep(Duration::from_millis(50));
                    seen.push("(reset)".to_string());
                    drop(s);
                    continue;
                };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                seen.push(line.split(' ').nth(1).unwrap_or("").to_string());
            }
            seen
        });
        (base, h)
    }

    fn fast_retry() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(2),
            max_total_wait: Duration::from_secs(3),
        }
    }

    const TOO_MANY: &str = r#"{"error":"too many requests"}"#;

    #[test]
    fn rate_limits_5xx_and_resets_are_retried_then_the_universe_loads() {
        let market = r#"{"ticker":"KXT-26JAN01-T1","event_ticker":"KXT-26JAN01","market_type":"binary","status":"active",
            "price_level_structure":"linear_cent","price_ranges":[{"start":"0.0000","end":"1.0000","step":"0.0100"}]}"#;
        let ok = |b: String| Some((200, "", b));
        let script = vec![
            Some((429, "retry-after: 1\r\n", TOO_MANY.to_string())),
            Some((429, "", TOO_MANY.to_string())),
            ok(format!(r#"{{"markets":[{market}],"cursor":""}}"#)),
            Some((503, "", r#"{"code":"service_unavailable"}"#.to_string())),
            None,
            ok(r#"{"event":{"event_ticker":"KXT-26JAN01","series_ticker":"KXT","mutually_exclusive":true}}"#.into()),
            ok(r#"{"series":{"ticker":"KXT","fee_type":"quadratic","fee_multiplier":1}}"#.into()),
        ];
        let (base, h) = serve_script(script);
        let c = RestClient::new(&base).with_retry(fast_retry());
        let q = MarketQuery { series: vec!["KXT".into()], tickers: vec![], status: "open".into() };
        let t0 = std::time::Instant::now();
        let header = c.universe_header(&q, "test").unwrap();
        let took = t0.elapsed();
        let seen = h.join().unwrap();
        assert_eq!(seen.len(), 7, "{seen:?}");
        assert!(seen[..3].iter().all(|p| p.starts_with("/trade-api/v2/markets?")), "{seen:?}");
        assert_eq!(seen[3], "/trade-api/v2/events/KXT-26JAN01");
        assert_eq!(seen[4], "(reset)");
        assert_eq!(seen[5], "/trade-api/v2/events/KXT-26JAN01");
        assert_eq!(header.markets.len(), 1);
        assert!(header.events[0].mutually_exclusive);
        // Retry-After: 1 was honoured (the backoff alone would have waited 10 ms)
        assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn too_many_429s_give_up_with_a_clear_error() {
        let (base, h) = serve_script((0..4).map(|_| Some((429, "", TOO_MANY.to_string()))).collect());
        let c = RestClient::new(&base).with_retry(fast_retry());
        let q = MarketQuery { series: vec!["X".into()], ..Default::default() };
        let e = c.markets(&q).unwrap_err();
        assert_eq!(h.join().unwrap().len(), 4);
        assert!(matches!(e, MetadataError::GaveUp { attempts: 4, .. }), "{e:?}");
        let e = e.to_string();
        for want in
            ["/markets?limit=1000&series_ticker=X", "gave up after 4 attempts", "HTTP 429", "rate limit", "run again"]
        {
            assert!(e.contains(want), "{want:?} missing from: {e}");
        }

        // a Retry-After longer than the bounds allow: one request, no pointless sleep
        let (base, h) = serve_script(vec![Some((429, "Retry-After: 60\r\n", TOO_MANY.to_string()))]);
        let t0 = std::time::Instant::now();
        let e = RestClient::new(&base).with_retry(fast_retry()).balance().unwrap_err().to_string();
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert_eq!(h.join().unwrap().len(), 1);
        assert!(e.contains("gave up after 1 attempts") && e.contains("Retry-After 60 s"), "{e}");

        // 5xx advice differs; a 400 is not retried
        let (base, h) = serve_script((0..2).map(|_| Some((500, "", "{}".to_string()))).collect());
        let c = RestClient::new(&base).with_retry(RetryPolicy { max_attempts: 2, ..fast_retry() });
        let e = c.balance().unwrap_err().to_string();
        h.join().unwrap();
        assert!(e.contains("HTTP 500") && e.contains("exchange/status"), "{e}");
        let (base, h) = serve_script(vec![Some((400, "", r#"{"code":"bad_request"}"#.to_string()))]);
        let e = RestClient::new(&base).with_retry(fast_retry()).balance().unwrap_err();
        assert_eq!(h.join().unwrap().len(), 1);
        assert!(matches!(e, MetadataError::Http { .. }) && e.to_string().contains("HTTP 400"), "{e}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (1..=6).map(|n| p.backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000]);
        // the default bounds fit their five attempts into the total budget
        let total: Duration = (1..p.max_attempts).map(|n| p.backoff(n)).sum();
        assert!(total <= p.max_total_wait, "{total:?}");
        assert_eq!(RetryPolicy::none().max_attempts, 1);
    }
}
