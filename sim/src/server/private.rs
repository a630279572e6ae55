//! The account's private WebSocket messages (`fill`, `user_order`; `kalshi-protocol.md`
//! §1.6–1.7): a bus from the REST server's exchange to the WebSocket sessions.
//!
//! [`PrivateFeed`] is a cheap, cloneable handle on one bus. The REST server
//! ([`super::RestServer`], with [`super::RestServerConfig::private`]) publishes into it every
//! change of one of the account's orders and every execution; each WebSocket session of a
//! [`super::WsServer`] built with [`super::WsServerConfig::private`] receives every message
//! published after it connected and forwards it to its `fill` / `user_orders` subscriptions
//! (each its own `sid`, no `seq`, filtered by the `market_tickers` given at subscribe, if any).
//! A message published while a session has no matching subscription is lost for that session,
//! as on Kalshi: there is no replay. [`LinkedServers::start`] starts both servers on one bus and
//! one certificate.
//!
//! The message bodies (`msg`) are rendered by the exchange; their shapes are in
//! [`super::exchange`]'s module docs (*Private messages*). A session wraps each one as
//! `{"type":"fill"|"user_order","sid":<sid>,"msg":{...}}`.
//!
//! Locking: the REST server publishes while holding its exchange lock (so the bus order is the
//! exchange's order); the bus takes its own mutex only to number and fan out a message. Each
//! session owns an unbounded [`mpsc`] receiver, drained by its connection thread once per loop
//! turn (at most [`super::ws::POLL_INTERVAL`] apart). This is the simulator, not the engine's
//! hot path.

use super::rest::{RestServer, RestServerConfig};
use super::tls::TestCert;
use super::ws::{WsServer, WsServerConfig};
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Which private channel a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrivateChannel {
    /// Subscribe name `fill`, message `type` `fill`: one execution of one of the account's
    /// orders.
    Fill,
    /// Subscribe name `user_orders`, message `type` `user_order`: the state of one of the
    /// account's orders after a change.
    UserOrders,
}

impl PrivateChannel {
    /// The channel name clients subscribe to (`"fill"`, `"user_orders"`).
    pub fn channel_name(self) -> &'static str {
        match self {
            PrivateChannel::Fill => "fill",
            PrivateChannel::UserOrders => "user_orders",
        }
    }

    /// The `type` of its messages (`"fill"`, `"user_order"`).
    pub fn message_type(self) -> &'static str {
        match self {
            PrivateChannel::Fill => "fill",
            PrivateChannel::UserOrders => "user_order",
        }
    }
}

/// One published message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateMsg {
    /// Position on the bus, from 0 (unique per [`PrivateFeed`]; not sent on the wire).
    pub seq: u64,
    /// Its channel.
    pub channel: PrivateChannel,
    /// The market the message concerns (for `market_tickers` filters).
    pub ticker: String,
    /// The `msg` object, JSON text.
    pub msg: String,
}

/// A message before the bus numbers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Draft {
    pub channel: PrivateChannel,
    pub ticker: String,
    pub msg: String,
}

#[derive(Default)]
struct Inner {
    /// The `seq` of the next message.
    next_seq: u64,
    subscribers: Vec<Sender<Arc<PrivateMsg>>>,
}

/// A shared bus of private messages; clones share it. See the module docs.
#[derive(Clone, Default)]
pub struct PrivateFeed {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for PrivateFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.lock();
        f.debug_struct("PrivateFeed").field("published", &g.next_seq).field("receivers", &g.subscribers.len()).finish()
    }
}

impl PrivateFeed {
    /// A new, empty bus.
    pub fn new() -> PrivateFeed {
        PrivateFeed::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes one message (`msg`: the JSON text of the `msg` object) concerning `ticker` to
    /// every connected session; returns its `seq`. Sessions without a matching subscription
    /// drop it. The REST server calls this; tests may inject messages of their own.
    pub fn publish(&self, channel: PrivateChannel, ticker: &str, msg: String) -> u64 {
        self.publish_draft(Draft { channel, ticker: ticker.to_string(), msg })
    }

    pub(crate) fn publish_draft(&self, d: Draft) -> u64 {
        let mut g = self.lock();
        let seq = g.next_seq;
        g.next_seq += 1;
        let m = Arc::new(PrivateMsg { seq, channel: d.channel, ticker: d.ticker, msg: d.msg });
        // A session that ended dropped its receiver: forget it.
        g.subscribers.retain(|tx| tx.send(Arc::clone(&m)).is_ok());
        seq
    }

    /// Messages published so far (also the `seq` the next one gets).
    pub fn published(&self) -> u64 {
        self.lock().next_seq
    }

    /// A receiver of every message published from now on (one per WebSocket session).
    pub(crate) fn receiver(&self) -> Receiver<Arc<PrivateMsg>> {
        let (tx, rx) = mpsc::channel();
        self.lock().subscribers.push(tx);
        rx
    }
}

/// When the REST server publishes the private messages a request produced, relative to writing
/// its HTTP response ([`super::RestFaults::private_timing`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PrivateTiming {
    /// Published while the request is applied, before its response is written (the natural
    /// order: a client usually reads `fill` / `user_order` before or with the response). The
    /// default.
    #[default]
    BeforeResponse,
    /// Published right after the response has been written (the response wins the race).
    AfterResponse,
    /// Published by a separate thread this long after the request was applied; the response is
    /// not held back. Messages of later requests may overtake them.
    Delayed(Duration),
}

/// A [`WsServer`] and a [`RestServer`] sharing one [`PrivateFeed`], one certificate and one
/// exchange timeline: what the account does over REST is published on the WebSocket's `fill`
/// and `user_orders`, and the REST exchange's matcher follows the market data the WebSocket
/// replay sends ([`WsServerConfig::exchange`]; see [`super::ws`]'s *Linked replay* and
/// [`super::rest`]'s *Time and latency*).
#[derive(Debug)]
pub struct LinkedServers {
    /// The WebSocket server.
    pub ws: WsServer,
    /// The REST server.
    pub rest: RestServer,
    /// The bus both use.
    pub feed: PrivateFeed,
}

impl LinkedServers {
    /// Starts both servers over one bus (`ws.private`, or else `rest.private`, or else a new
    /// one) and one certificate (`ws.cert`, or else `rest.cert`, or a generated one), the REST
    /// server first; the WebSocket server's [`WsServerConfig::exchange`] is set to the REST
    /// server's [`RestServer::link`], so its replay drives the exchange's book. The other
    /// server's `private`, `cert` and `exchange` are overwritten. Errors as
    /// [`WsServer::start`] and [`RestServer::start`].
    pub fn start(mut ws: WsServerConfig, mut rest: RestServerConfig) -> io::Result<LinkedServers> {
        let feed = ws.private.clone().or_else(|| rest.private.clone()).unwrap_or_default();
        ws.private = Some(feed.clone());
        rest.private = Some(feed.clone());
        let cert = match ws.cert.clone().or_else(|| rest.cert.clone()) {
            Some(c) => c,
            None => Arc::new(TestCert::generate()?),
        };
        rest.cert = Some(Arc::clone(&cert));
        let rest = RestServer::start(rest)?;
        ws.cert = Some(cert);
        ws.exchange = Some(rest.link());
        let ws = WsServer::start(ws)?;
        Ok(LinkedServers { ws, rest, feed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_out_to_live_receivers_and_numbers_messages() {
        let feed = PrivateFeed::new();
        assert_eq!(feed.publish(PrivateChannel::Fill, "A", "{}".into()), 0);
        let a = feed.receiver();
        let b = feed.receiver();
        assert_eq!(feed.publish(PrivateChannel::UserOrders, "B", "{\"x\":1}".into()), 1);
        drop(b);
        assert_eq!(feed.clone().publish(PrivateChannel::Fill, "C", "{}".into()), 2);
        let got: Vec<(u64, String)> = a.try_iter().map(|m| (m.seq, m.ticker.clone())).collect();
        assert_eq!(got, [(1, "B".to_string()), (2, "C".to_string())]);
        assert_eq!(feed.published(), 3);
        assert_eq!(feed.lock().subscribers.len(), 1);
        assert_eq!(PrivateChannel::UserOrders.channel_name(), "user_orders");
        assert_eq!(PrivateChannel::UserOrders.message_type(), "user_order");
    }
}
