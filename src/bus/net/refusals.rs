//! The robot's own log line when its TLS listener refuses a peer.
//!
//! Zenoh 1.10's TLS listener (`zenoh_link_tls`) reports every failed handshake as a
//! warning that blames the open file limit (`<rustls error>. Hint: increase the system
//! open file limit.`), and without the peer's address (its accept error drops it). The
//! [`Refusals`] layer replaces that line with one of nevil's: `zenoh refused a peer:
//! <reason>`, with zenoh's `detail`. Zenoh's other warnings pass untouched, and no
//! zenoh debug log is needed.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The target of zenoh's TLS link events.
const ZENOH_TLS: &str = "zenoh_link_tls";

/// What zenoh-link-tls appends to every failed accept.
const ACCEPT_HINT: &str = ". Hint: increase the system open file limit.";

/// The line a refusal is logged with (followed by the reason).
pub const REFUSED: &str = "zenoh refused a peer";

/// A tracing layer that turns zenoh's failed TLS accepts into [`REFUSED`] warnings of
/// nevil's own (target `nevil::bus::net`) and drops zenoh's misleading line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Refusals;

impl<S: Subscriber> Layer<S> for Refusals {
    /// Logs a refusal instead of zenoh's line. The line is logged from inside this
    /// dispatch, which tracing allows under a global subscriber (nevil's logging
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
