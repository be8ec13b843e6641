//! The robot's own log line when a TLS handshake with a peer fails, on either side.
//!
//! Listening: Zenoh 1.10's TLS listener (`zenoh_link_tls`) reports every failed
//! handshake as a warning that blames the open file limit (`<rustls error>. Hint:
//! increase the system open file limit.`), and without the peer's address (its accept
//! error drops it). The [`Refusals`] layer replaces that line with one of nevil's:
//! `zenoh refused a peer: <reason>`, with zenoh's `detail`.
//!
//! Connecting: when a configured `tls/` peer shows a certificate not from our CA, Zenoh
//! says so only in a debug event of its connector (`Unable to connect to configured peer
//! <endpoint>! <rustls error>. Retry in …`, target [`ZENOH_CONNECTOR`]). The layer logs
//! the same warning for it, with the `peer`; [`Refusals::targets`] is the filter that lets
//! that debug event reach this layer alone (the log's own filter still keeps zenoh's
//! debug lines out). Zenoh's other events pass untouched.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer};

/// The target of zenoh's TLS link events.
const ZENOH_TLS: &str = "zenoh_link_tls";

/// The target of zenoh's connector (it retries the `[zenoh] connect` endpoints).
pub const ZENOH_CONNECTOR: &str = "zenoh::net::runtime::orchestrator";

/// How zenoh's connector's debug event for a failed attempt starts (the endpoint
/// follows, then `! `, the error, and `. Retry in …`).
const CONNECT_FAILED: &str = "Unable to connect to configured peer ";

/// What zenoh-link-tls's error says when the connecting side's handshake failed.
const CONNECT_TLS: &str = "Can not create a new TLS link";

/// What zenoh-link-tls appends to every failed accept.
const ACCEPT_HINT: &str = ". Hint: increase the system open file limit.";

/// The line a refusal is logged with (followed by the reason).
pub const REFUSED: &str = "zenoh refused a peer";

/// A tracing layer that turns zenoh's failed TLS accepts into [`REFUSED`] warnings of
/// nevil's own (target `nevil::bus::net`) and drops zenoh's misleading line; and logs the
/// same warning when a `tls/` peer this process connects to fails the handshake.
#[derive(Debug, Default, Clone, Copy)]
pub struct Refusals;

impl Refusals {
    /// The events this layer reads: zenoh-link-tls's warnings and zenoh's connector's
    /// debug events. Given to the layer as its own (per-layer) filter, so that the debug
    /// events reach it without being enabled for the log's output.
    pub fn targets() -> Targets {
        Targets::new()
            .with_target(ZENOH_TLS, Level::WARN)
            .with_target(ZENOH_CONNECTOR, Level::DEBUG)
    }
}

impl<S: Subscriber> Layer<S> for Refusals {
    /// Logs a refusal instead of zenoh's listener line. The line is logged from inside
    /// this dispatch, which tracing allows under a global subscriber (nevil's logging
    /// installs one), not under a scoped one.
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        match refusal(event) {
            None => true,
            Some((reason, detail)) => {
                tracing::warn!(target: "nevil::bus::net", reason, detail, "{REFUSED}: {reason}");
                false
            }
        }
    }

    /// Logs a refusal seen by the connecting side. Zenoh's debug event itself goes on
    /// to whatever the log's filter decides (nothing, by default). Logged here, after
    /// the inner layers handled the event, so the nested event does not disturb their
    /// per-layer filter state for this one.
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if let Some((reason, peer, detail)) = connect_refusal(event) {
            tracing::warn!(target: "nevil::bus::net", reason, peer, detail, "{REFUSED}: {reason}");
        }
    }
}

/// The reason, endpoint and zenoh's detail when `event` is zenoh's connector failing a
/// TLS handshake with a configured `tls/` peer.
fn connect_refusal(event: &Event<'_>) -> Option<(&'static str, String, String)> {
    let meta = event.metadata();
    if *meta.level() != Level::DEBUG || !meta.target().starts_with(ZENOH_CONNECTOR) {
        return None;
    }
    let mut message = Message::default();
    event.record(&mut message);
    connect_failure(&message.0)
}

/// [`connect_refusal`] on the event's message.
fn connect_failure(message: &str) -> Option<(&'static str, String, String)> {
    let (peer, rest) = message.strip_prefix(CONNECT_FAILED)?.split_once("! ")?;
    if !peer.starts_with("tls/") {
        return None;
    }
    let detail = rest.rsplit_once(". Retry in ").map_or(rest, |(d, _)| d);
    if !detail.contains(CONNECT_TLS) && !detail.contains("received fatal alert") {
        // Not the handshake (a zenoh-level failure after it): not a refusal.
        return None;
    }
    // None: the peer could not be reached at all (connection refused, no route, ...).
    let reason = reason(detail)?;
    Some((reason, peer.to_string(), detail.to_string()))
}

/// The reason and zenoh's detail when `event` is zenoh's line for a refused peer.
fn refusal(event: &Event<'_>) -> Option<(&'static str, String)> {
    let meta = event.metadata();
    if *meta.level() != Level::WARN || !meta.target().starts_with(ZENOH_TLS) {
        return None;
    }
    let mut message = Message::default();
    event.record(&mut message);
    let detail = message.0.strip_suffix(ACCEPT_HINT)?;
    // None: a failing listener (out of file descriptors, ...), where zenoh's hint is right.
    reason(detail).map(|r| (r, detail.to_string()))
}

/// Why the handshake failed, from rustls' error text as zenoh logs it; `None` when the
/// accept itself failed (an I/O error of the listening socket, no peer refused).
fn reason(detail: &str) -> Option<&'static str> {
    let has = |s: &str| detail.contains(s);
    Some(
        if has("invalid peer certificate: UnknownIssuer") || has("BadSignature") {
            "certificate not from our CA"
        } else if has("invalid peer certificate") {
            "certificate not valid (expired, revoked or unfit)"
        } else if has("peer sent no certificates") {
            "no certificate"
        } else if ["UnknownCA", "BadCertificate", "CertificateUnknown"]
            .iter()
            .any(|alert| has(&format!("received fatal alert: {alert}")))
        {
            "the peer does not trust our certificate"
        } else if has("received fatal alert") {
            "the peer ended the handshake"
        } else if has("received corrupt message") || has("InvalidContentType") {
            "not TLS (a plain tcp peer?)"
        } else if has("Timeout during TLS handshake") {
            "no TLS handshake in time"
        } else if has("(os error") {
            return None;
        } else {
            "TLS handshake failed"
        },
    )
}

/// An event's `message` field as text.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// An event that reached the subscriber: target, level, message, and the reason
    /// [`refusal`] finds in it (empty if none).
    type Logged = (String, Level, String, String);

    /// Every event that reaches the subscriber.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<Logged>>>);

    impl<S: Subscriber> Layer<S> for Seen {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let mut message = Message::default();
            event.record(&mut message);
            let reason = refusal(event).map_or("", |r| r.0);
            let meta = event.metadata();
            if let Ok(mut seen) = self.0.lock() {
                seen.push((
                    meta.target().into(),
                    *meta.level(),
                    message.0,
                    reason.into(),
                ));
            }
        }
    }

    /// What reaches the log when `emit` runs, with or without the layer.
    fn logged(layer: bool, emit: impl FnOnce()) -> Vec<Logged> {
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry()
            .with(seen.clone())
            .with(layer.then_some(Refusals));
        tracing::subscriber::with_default(subscriber, emit);
        let out = seen.0.lock().map(|s| s.clone()).unwrap_or_default();
        out
    }

    /// Zenoh's line for a peer with another CA's certificate.
    fn zenoh_refuses() {
        tracing::warn!(
            target: "zenoh_link_tls::unicast",
            "{}. Hint: increase the system open file limit.",
            "invalid peer certificate: UnknownIssuer"
        );
    }

    #[test]
    fn zenohs_line_for_a_refused_peer_is_recognised_and_dropped() {
        // The line is zenoh's refusal ...
        let seen = logged(false, zenoh_refuses);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].0, "zenoh_link_tls::unicast");
        assert_eq!(seen[0].3, "certificate not from our CA");
        // ... and the layer keeps it out of the log (nevil's own line takes its place:
        // tests/net_tls.rs reads it in a robot's log, under the global subscriber).
        let seen = logged(true, zenoh_refuses);
        assert!(
            seen.iter().all(|s| s.0 != "zenoh_link_tls::unicast"),
            "{seen:?}"
        );
    }

    #[test]
    fn other_zenoh_lines_and_listener_failures_pass_untouched() {
        let seen = logged(true, || {
            tracing::warn!(
                target: "zenoh_link_tls::unicast",
                "Too many open files (os error 24). Hint: increase the system open file limit."
            );
            tracing::warn!(target: "zenoh_link_tls::unicast", "Error getting client cert common name: x");
            tracing::info!(target: "zenoh_link_tls::unicast", "x. Hint: increase the system open file limit.");
            tracing::warn!(target: "zenoh::net", "y. Hint: increase the system open file limit.");
        });
        assert!(seen.iter().all(|s| s.3.is_empty()), "{seen:?}");
        let targets: Vec<_> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            targets,
            [
                "zenoh_link_tls::unicast",
                "zenoh_link_tls::unicast",
                "zenoh_link_tls::unicast",
                "zenoh::net"
            ]
        );
    }

    #[test]
    fn the_connectors_failed_handshake_is_a_refusal_and_an_unreachable_peer_is_not() {
        let failed = |detail: &str| {
            format!(
                "{CONNECT_FAILED}tls/10.0.0.2:7447! {detail} at /zenoh/src/x.rs:10.. Retry \
                 in 500ms."
            )
        };
        let tls = |e: &str| format!("{CONNECT_TLS} bound to \"10.0.0.2\": {e}");
        let (reason, peer, detail) =
            connect_failure(&failed(&tls("invalid peer certificate: UnknownIssuer"))).unwrap();
        assert_eq!(reason, "certificate not from our CA");
        assert_eq!(peer, "tls/10.0.0.2:7447");
        assert!(
            detail.ends_with("UnknownIssuer at /zenoh/src/x.rs:10."),
            "{detail}"
        );
        let (reason, ..) =
            connect_failure(&failed(&tls("received fatal alert: UnknownCA"))).unwrap();
        assert_eq!(reason, "the peer does not trust our certificate");
        // Not a refusal: nobody listening, a plain tcp peer, a zenoh-level failure,
        // another of the connector's events.
        let refused = tls("Connection refused (os error 111)");
        assert_eq!(connect_failure(&failed(&refused)), None);
        let tcp = failed("Can not create a new TCP link: x").replace("tls/", "tcp/");
        assert_eq!(connect_failure(&tcp), None);
        assert_eq!(
            connect_failure(&failed("Transport closed immediately")),
            None
        );
        assert_eq!(
            connect_failure("Try to connect: tls/10.0.0.2:7447: x"),
            None
        );
    }

    #[test]
    fn only_the_connectors_debug_events_are_read() {
        let read = Arc::new(Mutex::new(Vec::new()));
        let sink = read.clone();
        let subscriber =
            tracing_subscriber::registry().with(tracing_subscriber::layer::Layer::with_filter(
                ConnectorEvents(sink),
                Refusals::targets(),
            ));
        tracing::subscriber::with_default(subscriber, || {
            let m = format!(
                "{CONNECT_FAILED}tls/10.0.0.2:7447! {CONNECT_TLS} bound to \"x\": invalid \
                 peer certificate: UnknownIssuer. Retry in 1s."
            );
            tracing::debug!(target: "zenoh::net::runtime::orchestrator", "{m}");
            tracing::debug!(target: "zenoh::net::routing", "{m}");
            tracing::trace!(target: "zenoh::net::runtime::orchestrator", "{m}");
        });
        let read = read.lock().unwrap().clone();
        assert_eq!(read, ["certificate not from our CA"]);
    }

    /// A layer recording the reasons [`connect_refusal`] finds in the events it gets.
    struct ConnectorEvents(Arc<Mutex<Vec<&'static str>>>);

    impl<S: Subscriber> Layer<S> for ConnectorEvents {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            if let (Some((reason, ..)), Ok(mut read)) = (connect_refusal(event), self.0.lock()) {
                read.push(reason);
            }
        }
    }

    #[test]
    fn reasons_name_what_the_peer_did_wrong() {
        let cases = [
            (
                "invalid peer certificate: UnknownIssuer",
                "certificate not from our CA",
            ),
            (
                "invalid peer certificate: BadSignature",
                "certificate not from our CA",
            ),
            (
                "invalid peer certificate: Expired",
                "certificate not valid (expired, revoked or unfit)",
            ),
            ("peer sent no certificates", "no certificate"),
            (
                "received fatal alert: UnknownCA",
                "the peer does not trust our certificate",
            ),
            (
                "received corrupt message of type InvalidContentType",
                "not TLS (a plain tcp peer?)",
            ),
            ("Timeout during TLS handshake", "no TLS handshake in time"),
            ("handshake not complete", "TLS handshake failed"),
        ];
        for (detail, want) in cases {
            assert_eq!(reason(detail), Some(want), "{detail}");
        }
        assert_eq!(reason("Too many open files (os error 24)"), None);
    }
}
