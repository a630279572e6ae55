//! HTTP/1.1 for the order gateway: request heads written into a reused buffer, responses parsed
//! with `httparse` from the connection's read buffer, and Kalshi's error bodies.
//!
//! Only what the gateway needs: one request in flight per keep-alive connection, bodies framed
//! by `Content-Length` (no chunked encoding: Kalshi's API answers with a length), `Connection:
//! close` honoured. Writing a request is a sequence of `extend_from_slice` into a `Vec` whose
//! capacity was reserved up front, so it does not allocate.
//!
//! Kalshi error bodies come in three shapes (`kalshi-protocol.md` §3.7): the documented flat
//! `{"code","message","details"}`, the nested `{"error":{"code","message"}}` seen live, and the
//! 429 body `{"error":"too many requests"}`. [`ApiError::from_body`] reads all three into one
//! `Copy` value (fixed inline strings, truncated), so errors travel in events without the heap.

use std::fmt;

/// Most response headers parsed; a response with more is refused.
pub const MAX_HEADERS: usize = 32;

/// A string held inline in `N` bytes, truncated at a character boundary. `Copy`, no heap.
/// Bytes past the length are always zero, so the derived equality and hash are by content.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InlineStr<const N: usize> {
    len: u16,
    bytes: [u8; N],
}

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        InlineStr { len: 0, bytes: [0; N] }
    }
}

impl<const N: usize> InlineStr<N> {
    /// Capacity, bytes.
    pub const CAP: usize = N;

    /// `s`, cut to at most `N` bytes at a character boundary.
    pub fn truncated(s: &str) -> Self {
        let mut n = s.len().min(N);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        let mut out = InlineStr::default();
        out.bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
        out.len = n as u16;
        out
    }

    /// `s` if it fits in `N` bytes, else `None`.
    pub fn exact(s: &str) -> Option<Self> {
        (s.len() <= N).then(|| Self::truncated(s))
    }

    /// `bytes` (lossy UTF-8), truncated to `N` bytes.
    pub fn from_bytes_lossy(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => Self::truncated(s),
            Err(e) => Self::truncated(std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("")),
        }
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Write for InlineStr<N> {
    /// Appends what fits (truncating at a character boundary); never fails.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let at = self.len as usize;
        let mut n = s.len().min(N - at);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.bytes[at..at + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len = (at + n) as u16;
        Ok(())
    }
}

/// Why a response could not be read. Every one of them ends the connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// `httparse` refused the status line or a header.
    #[error("malformed HTTP response: {0}")]
    Malformed(httparse::Error),
    /// `Transfer-Encoding: chunked` (not supported: Kalshi answers with a Content-Length).
    #[error("chunked HTTP response bodies are not supported")]
    Chunked,
    /// A response that may have a body gave no `Content-Length`.
    #[error("HTTP response without Content-Length")]
    NoLength,
    /// A `Content-Length` that is not a decimal number.
    #[error("invalid Content-Length")]
    BadContentLength,
    /// A response longer than the connection's read limit.
    #[error("HTTP response of {len} bytes exceeds the {max} byte limit")]
    TooLarge {
        /// Head + body, bytes.
        len: usize,
        /// The limit, bytes.
        max: usize,
    },
}

/// A complete response at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Length of the status line and headers, including the blank line, bytes.
    pub head_len: usize,
    /// Length of the body, bytes.
    pub body_len: usize,
    /// The server will close the connection after this response (`Connection: close`, or an
    /// HTTP/1.0 response without `keep-alive`).
    pub close: bool,
}

impl Response {
    /// Head + body, bytes.
    #[inline]
    pub fn total_len(&self) -> usize {
        self.head_len + self.body_len
    }

    /// The body, given the buffer the response was parsed from.
    #[inline]
    pub fn body<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.head_len..self.total_len()]
    }
}

/// Parses the response at the start of `buf`: `Ok(None)` while the head or the body is
/// incomplete, `Ok(Some(r))` once `buf` holds `r.total_len()` bytes or more. Allocation-free.
pub fn parse_response(buf: &[u8], max_len: usize) -> Result<Option<Response>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= max_len {
                return Err(HttpError::TooLarge { len: buf.len(), max: max_len });
            }
            return Ok(None);
        }
        Err(e) => return Err(HttpError::Malformed(e)),
    };
    let status = resp.code.unwrap_or(0);
    let mut content_length = None;
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            content_length = Some(parse_usize(h.value).ok_or(HttpError::BadContentLength)?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !trim(h.value).eq_ignore_ascii_case(b"identity") {
                return Err(HttpError::Chunked);
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = trim(h.value);
            if v.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if v.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    let body_len = match content_length {
        Some(n) => n,
        // No body by definition.
        None if status == 204 || status == 304 || (100..200).contains(&status) => 0,
        None => return Err(HttpError::NoLength),
    };
    let total = head_len + body_len;
    if total > max_len {
        return Err(HttpError::TooLarge { len: total, max: max_len });
    }
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(Response { status, head_len, body_len, close }))
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let e = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(s, |i| i + 1);
    &v[s..e]
}

fn parse_usize(v: &[u8]) -> Option<usize> {
    let v = trim(v);
    if v.is_empty() || v.len() > 15 {
        return None;
    }
    v.iter().try_fold(0usize, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as usize))
}

/// Appends the decimal digits of `v` to `out`. Allocation-free within capacity.
#[inline]
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = v;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `s` percent-encoded as a query value (RFC 3986 unreserved characters kept).
pub fn put_query_value(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        }
    }
}

/// Appends a request head to `out`:
///
/// ```text
/// METHOD <path_and_query> HTTP/1.1\r\n
/// Host: <host>\r\n
/// <auth>                                   (the KALSHI-ACCESS-* lines, each ending in \r\n)
/// Content-Type: application/json\r\n       (when there is a body)
/// Content-Length: <body_len>\r\n           (except on GET)
/// \r\n
/// ```
///
/// `path_and_query` is given in parts so callers need no intermediate buffer. Allocation-free
/// within `out`'s capacity.
pub fn put_head(
    out: &mut Vec<u8>,
    method: &str,
    path_and_query: &[&[u8]],
    host: &str,
    auth: &[u8],
    body_len: Option<usize>,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    for p in path_and_query {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(auth);
    match body_len {
        Some(n) => {
            if n > 0 {
                out.extend_from_slice(b"Content-Type: application/json\r\n");
            }
            out.extend_from_slice(b"Content-Length: ");
            put_u64(out, n as u64);
            out.extend_from_slice(b"\r\n\r\n");
        }
        None => out.extend_from_slice(b"\r\n"),
    }
}

/// A Kalshi API error (or a local stand-in for one), in fixed inline strings. `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status; 0 when the error is local (timeout, connection lost, refused before
    /// sending).
    pub status: u16,
    /// Kalshi's `code` (`invalid_order`, `MARKET_INACTIVE`, ...); empty when the body had none
    /// (the 429 body, a non-JSON body).
    pub code: InlineStr<40>,
    /// Kalshi's `message` (for the 429 body, its `error` string; for a non-JSON body, its
    /// first bytes).
    pub message: InlineStr<120>,
    /// Kalshi's `details`, when given.
    pub details: InlineStr<48>,
}

impl ApiError {
    /// A local error with `code` and `message` (status 0).
    pub fn local(code: &str, message: &str) -> ApiError {
        ApiError {
            status: 0,
            code: InlineStr::truncated(code),
            message: InlineStr::truncated(message),
            details: InlineStr::default(),
        }
    }

    /// Reads an error body of any of Kalshi's three shapes (see the module docs); anything else
    /// becomes the message. Cold path (parses into a `serde_json::Value`).
    pub fn from_body(status: u16, body: &[u8]) -> ApiError {
        let mut e = ApiError {
            status,
            code: InlineStr::default(),
            message: InlineStr::default(),
            details: InlineStr::default(),
        };
        let text = |v: &serde_json::Value| -> Option<String> {
            match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            }
        };
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(o)) => {
                let inner = match o.get("error") {
                    Some(serde_json::Value::Object(inner)) => Some(inner),
                    Some(serde_json::Value::String(s)) => {
                        e.message = InlineStr::truncated(s);
                        None
                    }
                    _ => None,
                };
                let src = inner.unwrap_or(&o);
                if let Some(c) = src.get("code").and_then(text) {
                    e.code = InlineStr::truncated(&c);
                }
                if let Some(m) = src.get("message").or_else(|| src.get("msg")).and_then(text) {
                    e.message = InlineStr::truncated(&m);
                }
                if let Some(d) = src.get("details").and_then(text) {
                    e.details = InlineStr::truncated(&d);
                }
            }
            Ok(serde_json::Value::String(s)) => e.message = InlineStr::truncated(&s),
            _ => e.message = InlineStr::from_bytes_lossy(body.trim_ascii()),
        }
        e
    }

    /// True for a 429 (the exchange's token bucket was empty; the request was not applied).
    pub fn is_rate_limited(&self) -> bool {
        self.status == 429
    }

    /// True when the code is `code`, ignoring ASCII case (Kalshi mixes `snake_case` REST
    /// codes and `UPPER_CASE` FIX-style ones).
    pub fn code_is(&self, code: &str) -> bool {
        self.code.as_str().eq_ignore_ascii_case(code)
    }

    /// The pipeline's reject reason for this error.
    pub fn reject_reason(&self) -> strike_sdk::order::RejectReason {
        use strike_sdk::order::RejectReason as R;
        if self.status == 429 {
            return R::RateLimit;
        }
        // The code, and the details where Kalshi puts the FIX-style reason
        // (`invalid_order` / `POST_ONLY_CROSS`).
        let c = format!("{} {}", self.code, self.details).to_ascii_lowercase();
        let has = |k: &str| c.contains(k);
        if has("post_only") {
            R::PostOnlyCross
        } else if has("fok_insufficient") || has("fill_or_kill") {
            R::FokUnfilled
        } else if has("self_cross") || has("self_trade") {
            R::SelfCross
        } else if has("market_inactive") || has("market_already_closed") || has("market_closed") {
            R::MarketClosed
        } else if has("market_not_found") {
            R::UnknownMarket
        } else if has("paused") {
            R::Halted
        } else if has("size") {
            R::Size
        } else if has("price") {
            R::Price
        } else if has("balance") || has("risk_limit") || has("position") {
            R::Exposure
        } else {
            R::Venue
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status != 0 {
            write!(f, "HTTP {}", self.status)?;
        } else {
            f.write_str("local")?;
        }
        if !self.code.is_empty() {
            write!(f, " {}", self.code)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 16;

    #[test]
    fn complete_response_with_body() {
        let raw =
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":\"12345\"}";
        let r = parse_response(raw, MAX).unwrap().unwrap();
        assert_eq!(r.status, 201);
        assert!(!r.close);
        assert_eq!(r.body(raw), b"{\"a\":\"12345\"}");
        assert_eq!(r.total_len(), raw.len());
    }

    #[test]
    fn partial_head_and_partial_body_wait_for_more() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 0..raw.len() {
            assert_eq!(parse_response(&raw[..cut], MAX).unwrap(), None, "cut at {cut}");
        }
        assert!(parse_response(raw, MAX).unwrap().is_some());
    }

    #[test]
    fn trailing_bytes_are_not_part_of_the_response() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1";
        let r = parse_response(raw, MAX).unwrap().unwrap();
        assert_eq!(r.total_len(), raw.len() - 8);
    }

    #[test]
    fn no_content_statuses_and_connection_close() {
        let r = parse_response(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", MAX).unwrap().unwrap();
        assert_eq!((r.status, r.body_len, r.close), (204, 0, true));
        let r = parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", MAX).unwrap().unwrap();
        assert!(r.close, "HTTP/1.0 closes by default");
        let r = parse_response(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", MAX)
            .unwrap()
            .unwrap();
        assert!(!r.close);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", MAX),
            Err(HttpError::Chunked)
        );
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n{}", MAX), Err(HttpError::NoLength));
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", MAX),
            Err(HttpError::BadContentLength)
        );
        assert!(matches!(parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n", MAX), Err(HttpError::Malformed(_))));
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 64),
            Err(HttpError::TooLarge { len: 140, max: 64 })
        );
        assert!(matches!(parse_response(&[b'a'; 64], 64), Err(HttpError::TooLarge { .. } | HttpError::Malformed(_))));
    }

    #[test]
    fn head_is_exact_and_does_not_allocate() {
        let mut out = Vec::with_capacity(1024);
        let cap = out.capacity();
        let auth = b"KALSHI-ACCESS-KEY: k\r\nKALSHI-ACCESS-TIMESTAMP: 1\r\nKALSHI-ACCESS-SIGNATURE: s\r\n";
        put_head(&mut out, "POST", &[b"/trade-api/v2/portfolio/events/orders"], "h:8443", auth, Some(2));
        out.extend_from_slice(b"{}");
        assert_eq!(out.capacity(), cap);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "POST /trade-api/v2/portfolio/events/orders HTTP/1.1\r\nHost: h:8443\r\nKALSHI-ACCESS-KEY: k\r\n\
             KALSHI-ACCESS-TIMESTAMP: 1\r\nKALSHI-ACCESS-SIGNATURE: s\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\n\r\n{}"
        );
        out.clear();
        put_head(&mut out, "GET", &[b"/p", b"?a=1"], "h", b"", None);
        assert_eq!(out, b"GET /p?a=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        out.clear();
        put_head(&mut out, "DELETE", &[b"/p"], "h", b"", Some(0));
        assert_eq!(out, b"DELETE /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn query_values_and_numbers() {
        let mut out = Vec::new();
        put_query_value(&mut out, b"KXHIGHNY-26AUG12-T90.5");
        out.push(b'&');
        put_query_value(&mut out, b"a+b/c= d");
        assert_eq!(out, b"KXHIGHNY-26AUG12-T90.5&a%2Bb%2Fc%3D%20d");
        out.clear();
        put_u64(&mut out, 0);
        out.push(b' ');
        put_u64(&mut out, u64::MAX);
        assert_eq!(out, b"0 18446744073709551615");
    }

    #[test]
    fn error_bodies_of_every_shape() {
        let flat = ApiError::from_body(
            400,
            br#"{"code":"invalid_order","message":"price not on the market's grid","details":"price=0.5650"}"#,
        );
        assert_eq!(flat.code.as_str(), "invalid_order");
        assert_eq!(flat.message.as_str(), "price not on the market's grid");
        assert_eq!(flat.details.as_str(), "price=0.5650");
        assert_eq!(flat.reject_reason(), strike_sdk::order::RejectReason::Price, "details are read too");
        let plain = ApiError::from_body(400, br#"{"code":"invalid_order","message":"m"}"#);
        assert_eq!(plain.reject_reason(), strike_sdk::order::RejectReason::Venue);

        let nested =
            ApiError::from_body(409, br#"{"error":{"code":"order_already_exists","message":"duplicate client id"}}"#);
        assert_eq!((nested.status, nested.code.as_str()), (409, "order_already_exists"));
        assert_eq!(nested.message.as_str(), "duplicate client id");
        assert!(nested.code_is("ORDER_ALREADY_EXISTS"));

        let limited = ApiError::from_body(429, br#"{"error":"too many requests"}"#);
        assert!(limited.is_rate_limited());
        assert!(limited.code.is_empty());
        assert_eq!(limited.message.as_str(), "too many requests");
        assert_eq!(limited.reject_reason(), strike_sdk::order::RejectReason::RateLimit);

        let html = ApiError::from_body(502, b"  <html>bad gateway</html>\n");
        assert_eq!(html.message.as_str(), "<html>bad gateway</html>");
        assert_eq!(html.to_string(), "HTTP 502: <html>bad gateway</html>");

        let upper = ApiError::from_body(400, br#"{"code":"POST_ONLY_CROSS","message":"would cross"}"#);
        assert_eq!(upper.reject_reason(), strike_sdk::order::RejectReason::PostOnlyCross);
        let detailed =
            ApiError::from_body(400, br#"{"code":"invalid_order","message":"m","details":"POST_ONLY_CROSS"}"#);
        assert_eq!(detailed.reject_reason(), strike_sdk::order::RejectReason::PostOnlyCross);
        assert_eq!(
            ApiError::from_body(400, br#"{"code":"MARKET_INACTIVE"}"#).reject_reason(),
            strike_sdk::order::RejectReason::MarketClosed
        );
        assert_eq!(
            ApiError::from_body(400, br#"{"code":"available_balance_too_low"}"#).reject_reason(),
            strike_sdk::order::RejectReason::Exposure
        );
    }

    #[test]
    fn inline_strings_truncate_on_char_boundaries() {
        let s: InlineStr<4> = InlineStr::truncated("abé!");
        assert_eq!(s.as_str(), "abé");
        let s: InlineStr<3> = InlineStr::truncated("abé");
        assert_eq!(s.as_str(), "ab");
        assert_eq!(InlineStr::<3>::exact("abcd"), None);
        assert_eq!(InlineStr::<3>::truncated("ab"), InlineStr::<3>::exact("ab").unwrap());
        let mut w: InlineStr<5> = InlineStr::default();
        std::fmt::Write::write_fmt(&mut w, format_args!("{}", 1234567)).unwrap();
        assert_eq!(w.as_str(), "12345");
    }
}
