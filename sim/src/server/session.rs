//! One WebSocket session's protocol state, free of I/O: commands in, frames out, and the replay
//! cursor over the recording. `ws.rs` drives it from the connection thread.
//!
//! The behaviour it implements is documented in `ws.rs` (module docs: *Session*, *Replay model*).

use super::private::{PrivateChannel, PrivateMsg};
use super::replay::{envelope, json_str, EventKind, ReplayData};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use strike_sdk::book::Book;

/// Channels Kalshi accepts that the simulator acknowledges but never feeds (`fill` and
/// `user_orders` are fed from the server's [`super::PrivateFeed`], silent without one).
const SILENT_CHANNELS: &[&str] = &[
    "ticker",
    "market_positions",
    "market_lifecycle_v2",
    "multivariate_market_lifecycle",
    "order_group_updates",
    "communications",
    "cfbenchmarks_value",
    "pyth_value",
];

/// The channel names of the streaming channels.
const ORDERBOOK: &str = "orderbook_delta";
const TRADE: &str = "trade";

/// A frame to send: its text, its `type` for the stats, and whether it is a data frame.
#[derive(Debug)]
pub(crate) struct OutFrame {
    pub text: String,
    pub ty: &'static str,
    pub data: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Channel {
    Orderbook,
    Trade,
    Private(PrivateChannel),
    Silent(&'static str),
}

impl Channel {
    fn parse(name: &str) -> Option<Channel> {
        match name {
            ORDERBOOK => Some(Channel::Orderbook),
            TRADE => Some(Channel::Trade),
            "fill" => Some(Channel::Private(PrivateChannel::Fill)),
            "user_orders" => Some(Channel::Private(PrivateChannel::UserOrders)),
            _ => SILENT_CHANNELS.iter().find(|c| **c == name).map(|c| Channel::Silent(c)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Channel::Orderbook => ORDERBOOK,
            Channel::Trade => TRADE,
            Channel::Private(p) => p.channel_name(),
            Channel::Silent(n) => n,
        }
    }
}

struct Sub {
    sid: u32,
    channel: Channel,
    /// Market indices covered; for `trade`, empty with `all_markets` = every market.
    markets: BTreeSet<usize>,
    all_markets: bool,
    /// `use_yes_price` of the subscribe command.
    yes_scale: bool,
    /// Last `seq` used on this sid (orderbook only).
    seq: u64,
    /// Markets whose snapshot this sid has sent (deltas flow only for these).
    live: HashSet<usize>,
    /// Private channels: the first [`PrivateMsg::seq`] this sid gets (messages published
    /// before the subscription are not delivered to it).
    private_from: u64,
}

impl Sub {
    fn covers(&self, m: Option<usize>) -> bool {
        self.all_markets || m.is_some_and(|m| self.markets.contains(&m))
    }

    fn next_seq(&mut self) -> Option<u64> {
        (self.channel == Channel::Orderbook).then(|| {
            self.seq += 1;
            self.seq
        })
    }
}

/// A command's failure: Kalshi error code, message, and the market it concerns (code 16).
struct CmdError {
    code: u32,
    msg: &'static str,
    market: Option<String>,
}

fn err(code: u32, msg: &'static str) -> CmdError {
    CmdError { code, msg, market: None }
}

/// The protocol state of one session.
pub(crate) struct Session {
    data: Arc<ReplayData>,
    books: Vec<Option<Book>>,
    subs: Vec<Sub>,
    next_sid: u32,
    cursor: usize,
    started: bool,
    /// The scripted skip-seq fault, until it fires.
    skip_seq: Option<u64>,
    /// [`PrivateFeed::published`](super::PrivateFeed::published) as the connection last read
    /// it: private subscriptions made now start there.
    private_mark: u64,
}

fn id_prefix(id: Option<u64>) -> String {
    match id {
        Some(id) => format!("{{\"id\":{id},"),
        None => "{".to_string(),
    }
}

impl Session {
    pub(crate) fn new(data: Arc<ReplayData>, skip_seq: Option<u64>) -> Session {
        let n = data.tickers.len();
        Session {
            data,
            books: (0..n).map(|_| None).collect(),
            subs: Vec::new(),
            next_sid: 1,
            cursor: 0,
            started: false,
            skip_seq,
            private_mark: 0,
        }
    }

    /// Sets where private subscriptions made from now on start (the bus's
    /// [`published`](super::PrivateFeed::published) count, read just before the commands are
    /// handled).
    pub(crate) fn set_private_mark(&mut self, mark: u64) {
        self.private_mark = mark;
    }

    /// Forwards one private message to every subscription of its channel that covers its
    /// market and was made before it was published: `{"type":..,"sid":..,"msg":..}`, no `seq`.
    pub(crate) fn private(&self, m: &PrivateMsg, out: &mut Vec<OutFrame>) {
        let market = self.data.market(&m.ticker);
        for sub in &self.subs {
            if sub.channel == Channel::Private(m.channel) && m.seq >= sub.private_from && sub.covers(market) {
                out.push(OutFrame {
                    text: envelope(m.channel.message_type(), sub.sid, None, &[], &m.msg),
                    ty: m.channel.message_type(),
                    data: false,
                });
            }
        }
    }

    /// Whether the replay clock has started.
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// `recv_ns` of the next recording event, or `None` when the recording is exhausted.
    pub(crate) fn next_event_ns(&self) -> Option<u64> {
        self.data.events.get(self.cursor).map(|e| e.recv_ns)
    }

    /// The replay clock's origin (`recv_ns` of the first event).
    pub(crate) fn origin_ns(&self) -> u64 {
        self.data.first_ns
    }

    /// The index of the next recording event this session replays.
    pub(crate) fn cursor(&self) -> usize {
        self.cursor
    }

    /// Moves the replay to event `target` without sending anything: the books take every
    /// skipped event (a session joining a linked replay that is already under way starts from
    /// its clock). Only before the replay started (no streaming subscription yet); does nothing
    /// when `target` is behind the cursor.
    pub(crate) fn skip_to(&mut self, target: usize) {
        let data = Arc::clone(&self.data);
        while self.cursor < target.min(data.events.len()) {
            self.apply_book(&data.events[self.cursor].kind);
            self.cursor += 1;
        }
    }

    /// Applies one event to this session's copy of the books.
    fn apply_book(&mut self, kind: &EventKind) {
        match kind {
            EventKind::Snapshot { market, bids, asks, .. } => {
                let m = *market;
                let book = self.books[m].get_or_insert_with(|| Book::new(self.data.grids[m]));
                // A crossed recorded snapshot is still the exchange's word: keep its levels.
                if book.replace(bids.iter().copied(), asks.iter().copied()).is_err() {
                    book.clear();
                    for &(p, q) in bids {
                        let _ = book.set_level(strike_sdk::book::BookSide::Bid, p, q);
                    }
                    for &(p, q) in asks {
                        let _ = book.set_level(strike_sdk::book::BookSide::Ask, p, q);
                    }
                }
            }
            EventKind::Delta { market, side, price, delta, .. } => {
                if let Some(book) = self.books[*market].as_mut() {
                    let _ = book.apply_delta(*side, *price, *delta);
                }
            }
            EventKind::Trade { .. } => {}
        }
    }

    /// Replays the next recording event: updates the book and appends what the subscriptions
    /// get. Does nothing once the recording is exhausted.
    pub(crate) fn step(&mut self, out: &mut Vec<OutFrame>) {
        let data = Arc::clone(&self.data);
        let Some(ev) = data.events.get(self.cursor) else { return };
        self.cursor += 1;
        match &ev.kind {
            EventKind::Snapshot { market, frame, .. } => {
                let m = *market;
                self.apply_book(&ev.kind);
                for sub in self.subs.iter_mut().filter(|s| s.channel == Channel::Orderbook && s.markets.contains(&m)) {
                    let seq = sub.next_seq();
                    out.push(OutFrame {
                        text: frame.render(sub.sid, seq, sub.yes_scale),
                        ty: "orderbook_snapshot",
                        data: true,
                    });
                    sub.live.insert(m);
                }
            }
            EventKind::Delta { market, frame, .. } => {
                let m = *market;
                if self.books[m].is_none() {
                    return;
                }
                self.apply_book(&ev.kind);
                for sub in self.subs.iter_mut().filter(|s| s.channel == Channel::Orderbook && s.live.contains(&m)) {
                    let seq = sub.next_seq().unwrap_or(0);
                    if self.skip_seq.is_some_and(|k| seq >= k) {
                        self.skip_seq = None;
                        continue;
                    }
                    out.push(OutFrame {
                        text: frame.render(sub.sid, Some(seq), sub.yes_scale),
                        ty: "orderbook_delta",
                        data: true,
                    });
                }
            }
            EventKind::Trade { market, frame, .. } => {
                for sub in self.subs.iter().filter(|s| s.channel == Channel::Trade && s.covers(*market)) {
                    out.push(OutFrame { text: frame.render(sub.sid, None, false), ty: "trade", data: true });
                }
            }
        }
    }

    /// Handles one client text frame, appending the answers.
    pub(crate) fn handle_command(&mut self, text: &str, out: &mut Vec<OutFrame>) {
        let v: Value = match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Self::error(out, None, err(1, "Unable to process message")),
        };
        let id = v.get("id").and_then(Value::as_u64).filter(|&i| i != 0);
        let Some(cmd) = v.get("cmd").and_then(Value::as_str) else {
            return Self::error(out, id, err(1, "Unable to process message"));
        };
        let params = v.get("params").and_then(Value::as_object);
        let r = match cmd {
            "subscribe" => self.subscribe(id, params, out),
            "unsubscribe" => self.unsubscribe(id, params, out),
            "update_subscription" => self.update(id, params, out),
            "list_subscriptions" => {
                let list: Vec<Value> =
                    self.subs.iter().map(|s| serde_json::json!({"channel": s.channel.name(), "sid": s.sid})).collect();
                let text = format!("{}\"type\":\"ok\",\"msg\":{}}}", id_prefix(id), Value::Array(list));
                out.push(OutFrame { text, ty: "ok", data: false });
                Ok(())
            }
            _ => Err(err(5, "Unknown command")),
        };
        if let Err(e) = r {
            Self::error(out, id, e);
        }
    }

    fn error(out: &mut Vec<OutFrame>, id: Option<u64>, e: CmdError) {
        let mut msg = format!("{{\"code\":{},\"msg\":{}", e.code, json_str(e.msg));
        if let Some(m) = &e.market {
            msg.push_str(&format!(",\"market_ticker\":{}", json_str(m)));
        }
        msg.push('}');
        out.push(OutFrame {
            text: format!("{}\"type\":\"error\",\"msg\":{msg}}}", id_prefix(id)),
            ty: "error",
            data: false,
        });
    }

    /// `market_ticker` / `market_tickers` of `params`, resolved: `Ok(None)` when neither is given.
    fn markets_param(&self, params: &Map<String, Value>) -> Result<Option<Vec<usize>>, CmdError> {
        if params.contains_key("market_id") || params.contains_key("market_ids") {
            return Err(err(11, "Invalid parameter: market ids are not supported, use market_tickers"));
        }
        let tickers: Vec<&str> = match (params.get("market_ticker"), params.get("market_tickers")) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(err(11, "Invalid parameter: market_ticker and market_tickers are exclusive"))
            }
            (Some(Value::String(t)), None) => vec![t.as_str()],
            (None, Some(Value::Array(a))) => a
                .iter()
                .map(|t| t.as_str().ok_or_else(|| err(11, "Invalid parameter: market_tickers must be strings")))
                .collect::<Result<_, _>>()?,
            _ => return Err(err(11, "Invalid parameter: market tickers")),
        };
        let mut ms = Vec::with_capacity(tickers.len());
        for t in tickers {
            match self.data.market(t) {
                Some(m) => ms.push(m),
                None => return Err(CmdError { code: 16, msg: "Market not found", market: Some(t.to_string()) }),
            }
        }
        Ok(Some(ms))
    }

    /// Joins market `m` to orderbook sub `si`: a snapshot now if the book exists.
    fn join_market(&mut self, si: usize, m: usize, out: &mut Vec<OutFrame>) {
        let Some(book) = self.books[m].as_ref() else { return };
        let sub = &mut self.subs[si];
        let msg = self.data.snapshot_msg(m, book, sub.yes_scale);
        let seq = sub.next_seq();
        out.push(OutFrame {
            text: envelope("orderbook_snapshot", sub.sid, seq, &[], &msg),
            ty: "orderbook_snapshot",
            data: true,
        });
        sub.live.insert(m);
    }

    fn subscribe(
        &mut self,
        id: Option<u64>,
        params: Option<&Map<String, Value>>,
        out: &mut Vec<OutFrame>,
    ) -> Result<(), CmdError> {
        let params = params.ok_or_else(|| err(2, "Params required"))?;
        let names = match params.get("channels") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            _ => return Err(err(3, "Channels required")),
        };
        let mut channels = Vec::with_capacity(names.len());
        for n in names {
            let c = n.as_str().and_then(Channel::parse).ok_or_else(|| err(8, "Unknown channel name"))?;
            channels.push(c);
        }
        let yes_scale = match params.get("use_yes_price") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(err(11, "Invalid parameter: use_yes_price must be a boolean")),
        };
        let markets = self.markets_param(params)?;
        if channels.contains(&Channel::Orderbook) && markets.as_ref().is_none_or(|m| m.is_empty()) {
            return Err(err(14, "Market ticker required"));
        }
        let first = self.subs.len();
        for &channel in &channels {
            let sid = self.next_sid;
            self.next_sid += 1;
            let set: BTreeSet<usize> = markets.iter().flatten().copied().collect();
            let all_markets = matches!(channel, Channel::Trade | Channel::Private(_)) && markets.is_none();
            self.subs.push(Sub {
                sid,
                channel,
                markets: set,
                all_markets,
                yes_scale,
                seq: 0,
                live: HashSet::new(),
                private_from: self.private_mark,
            });
            let text = format!(
                "{}\"type\":\"subscribed\",\"msg\":{{\"channel\":\"{}\",\"sid\":{sid}}}}}",
                id_prefix(id),
                channel.name()
            );
            out.push(OutFrame { text, ty: "subscribed", data: false });
        }
        for si in first..self.subs.len() {
            match self.subs[si].channel {
                Channel::Orderbook => {
                    // In the command's order, without repeats.
                    let mut seen = HashSet::new();
                    for &m in markets.iter().flatten() {
                        if seen.insert(m) {
                            self.join_market(si, m, out);
                        }
                    }
                    self.started = true;
                }
                Channel::Trade => self.started = true,
                Channel::Private(_) | Channel::Silent(_) => {}
            }
        }
        Ok(())
    }

    fn sub_index(&self, sid: u64) -> Option<usize> {
        self.subs.iter().position(|s| u64::from(s.sid) == sid)
    }

    fn unsubscribe(
        &mut self,
        id: Option<u64>,
        params: Option<&Map<String, Value>>,
        out: &mut Vec<OutFrame>,
    ) -> Result<(), CmdError> {
        let params = params.ok_or_else(|| err(2, "Params required"))?;
        let sids: Vec<u64> = match params.get("sids") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|s| s.as_u64().ok_or_else(|| err(11, "Invalid parameter: sids")))
                .collect::<Result<_, _>>()?,
            _ => return Err(err(4, "Subscription IDs required")),
        };
        for sid in sids {
            match self.sub_index(sid) {
                Some(i) => {
                    let mut sub = self.subs.remove(i);
                    let seq = sub.next_seq().map(|q| format!(",\"seq\":{q}")).unwrap_or_default();
                    let text = format!("{}\"sid\":{}{seq},\"type\":\"unsubscribed\"}}", id_prefix(id), sub.sid);
                    out.push(OutFrame { text, ty: "unsubscribed", data: false });
                }
                None => Self::error(out, id, err(7, "Unknown subscription ID")),
            }
        }
        Ok(())
    }

    fn update(
        &mut self,
        id: Option<u64>,
        params: Option<&Map<String, Value>>,
        out: &mut Vec<OutFrame>,
    ) -> Result<(), CmdError> {
        let params = params.ok_or_else(|| err(2, "Params required"))?;
        let sid = match (params.get("sid"), params.get("sids")) {
            (Some(s), None) => s.as_u64(),
            (None, Some(Value::Array(a))) if a.len() == 1 => a[0].as_u64(),
            _ => None,
        }
        .ok_or_else(|| err(12, "Exactly one subscription ID required"))?;
        let si = self.sub_index(sid).ok_or_else(|| err(7, "Unknown subscription ID"))?;
        let action = params.get("action").and_then(Value::as_str).ok_or_else(|| err(15, "Action required"))?;
        if !matches!(action, "add_markets" | "delete_markets" | "get_snapshot") {
            return Err(err(13, "Unsupported action"));
        }
        let markets = match self.markets_param(params)? {
            Some(m) if !m.is_empty() => m,
            _ => return Err(err(14, "Market ticker required")),
        };
        let channel = self.subs[si].channel;
        match action {
            "get_snapshot" => {
                if channel != Channel::Orderbook {
                    return Err(err(13, "Unsupported action: get_snapshot is for orderbook_delta subscriptions"));
                }
                if let Some(&m) = markets.iter().find(|m| !self.subs[si].markets.contains(m)) {
                    return Err(CmdError {
                        code: 11,
                        msg: "Invalid parameter: market is not in this subscription",
                        market: Some(self.data.tickers[m].clone()),
                    });
                }
                let mut seen = HashSet::new();
                for m in markets {
                    if seen.insert(m) {
                        self.join_market(si, m, out);
                    }
                }
            }
            _ => {
                let mut added = Vec::new();
                {
                    let sub = &mut self.subs[si];
                    for &m in &markets {
                        if action == "add_markets" {
                            if sub.markets.insert(m) {
                                added.push(m);
                            }
                        } else {
                            sub.markets.remove(&m);
                            sub.live.remove(&m);
                        }
                    }
                    if action == "add_markets" {
                        sub.all_markets = false;
                    }
                }
                let sub = &mut self.subs[si];
                let mut tickers: Vec<&str> = sub.markets.iter().map(|&m| self.data.tickers[m].as_str()).collect();
                tickers.sort_unstable();
                let seq = sub.next_seq().map(|q| format!(",\"seq\":{q}")).unwrap_or_default();
                let text = format!(
                    "{}\"sid\":{}{seq},\"type\":\"ok\",\"msg\":{{\"market_tickers\":{}}}}}",
                    id_prefix(id),
                    sub.sid,
                    serde_json::to_string(&tickers).unwrap_or_default()
                );
                out.push(OutFrame { text, ty: "ok", data: false });
                if channel == Channel::Orderbook {
                    for m in added {
                        self.join_market(si, m, out);
                    }
                }
            }
        }
        Ok(())
    }
}
