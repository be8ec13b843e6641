//! `[zenoh]`: the robot's network session, which carries groups placed on other hosts
//! (`placement = "node:NAME"`) and the fleet view. With no endpoint (the default) the
//! robot opens none and listens on nothing at all.
//!
//! ```toml
//! [robot]
//! id = "picar-7"                       # the key prefix nevil/<id>/… (default: hostname)
//!
//! [zenoh]
//! listen = ["tls/0.0.0.0:7447"]        # where nodes and fleet views reach the robot
//! connect = ["tls/router.lab:7447"]    # a router, or a node, to reach
//! lease_ms = 2000                      # a silent peer is gone after this
//!
//! [zenoh.tls]                          # mutual TLS: every peer shows a cert from `ca`
//! ca = "/etc/nevil/ca.pem"
//! cert = "/etc/nevil/robot.pem"
//! key = "/etc/nevil/robot.key"
//! ```
//!
//! Endpoints are Zenoh's `<protocol>/<address>`: `tcp/…`, or `tls/…` which needs
//! `[zenoh.tls]`. With TLS configured every endpoint must be `tls/`: one plain TCP
//! listener beside it would let in a peer without a certificate.

use std::path::PathBuf;

use nevil_actors::Problems;
use serde::Deserialize;

/// The link lease when none is configured: a peer silent this long is gone, and a node
/// with it (its liveliness token is dropped).
pub const DEFAULT_LEASE_MS: u64 = 2000;

/// `[zenoh]`: endpoints to listen on and connect to, the lease, and TLS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZenohConfig {
    /// Endpoints to listen on, e.g. `tcp/127.0.0.1:7447` (default none).
    pub listen: Vec<String>,
    /// Endpoints to connect to: a router or a peer (default none). Retried in the
    /// background until reached, and again after the link is lost.
    pub connect: Vec<String>,
    /// How long a peer may stay silent before its link, and everything it announced,
    /// is dropped (milliseconds, 200–60000; default [`DEFAULT_LEASE_MS`]).
    pub lease_ms: u64,
    /// Mutual TLS (`[zenoh.tls]`); every endpoint must then be `tls/`.
    pub tls: Option<TlsConfig>,
}

impl Default for ZenohConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            connect: Vec::new(),
            lease_ms: DEFAULT_LEASE_MS,
            tls: None,
        }
    }
}

/// `[zenoh.tls]`: the CA that every peer's certificate must come from, and this
/// process's own certificate and key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate authority's certificate.
    pub ca: PathBuf,
    /// This process's certificate, signed by `ca`.
    pub cert: PathBuf,
    /// This process's private key.
    pub key: PathBuf,
}

/// The protocols an endpoint may use.
const PROTOCOLS: [&str; 2] = ["tcp", "tls"];

impl ZenohConfig {
    /// Whether the robot opens a network session at all (an endpoint is configured).
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty() || !self.connect.is_empty()
    }

    /// Every listen endpoint whose address is not loopback: the robot is reachable from
    /// the network there, a deliberate choice that the start logs (with a warning when
    /// there is no TLS).
    pub fn beyond_loopback(&self) -> impl Iterator<Item = &str> {
        self.listen
            .iter()
            .map(String::as_str)
            .filter(|e| !is_loopback(e))
    }

    /// Every problem, with its key path.
    pub fn check(&self, p: &mut Problems) {
        for (list, endpoints) in [("listen", &self.listen), ("connect", &self.connect)] {
            for (i, endpoint) in endpoints.iter().enumerate() {
                if let Err(why) = self.check_endpoint(endpoint) {
                    p.push(format!("zenoh.{list}[{i}]"), why);
                }
            }
        }
        if !(200..=60_000).contains(&self.lease_ms) {
            p.push(
                "zenoh.lease_ms",
                format!("must be between 200 and 60000 (is {})", self.lease_ms),
            );
        }
        if let Some(tls) = &self.tls {
            for (key, path) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
                if let Err(e) = std::fs::File::open(path) {
                    p.push(
                        format!("zenoh.tls.{key}"),
                        format!("cannot read {}: {e}", path.display()),
                    );
                } else if path.to_str().is_none_or(|s| s.contains(['"', '\\'])) {
                    p.push(
                        format!("zenoh.tls.{key}"),
                        "the path must be UTF-8 without quotes or backslashes",
                    );
                }
            }
        }
    }

    fn check_endpoint(&self, endpoint: &str) -> Result<(), String> {
        let Some((protocol, address)) = endpoint.split_once('/') else {
            return Err(format!(
                "{endpoint:?} is no endpoint (expected \"<protocol>/<host>:<port>\", e.g. \
                 \"tcp/127.0.0.1:7447\")"
            ));
        };
        if !PROTOCOLS.contains(&protocol) {
            return Err(format!(
                "{endpoint:?}: unknown protocol {protocol:?} (expected one of: {})",
                PROTOCOLS.join(", ")
            ));
        }
        if address.is_empty() || address.contains(['"', '\\', ' ']) || !address.contains(':') {
            return Err(format!(
                "{endpoint:?}: expected <host>:<port> after the protocol"
            ));
        }
        match (protocol, &self.tls) {
            ("tls", None) => Err(format!(
                "{endpoint:?}: a tls endpoint needs [zenoh.tls] (ca, cert, key)"
            )),
            ("tcp", Some(_)) => Err(format!(
                "{endpoint:?}: plain tcp beside [zenoh.tls] would let in peers without a \
                 certificate (use \"tls/{address}\")"
            )),
            _ => Ok(()),
        }
    }
}

/// Whether an endpoint's host is a loopback address (`127.x`, `[::1]`, `localhost`).
fn is_loopback(endpoint: &str) -> bool {
    let address = endpoint.split_once('/').map_or(endpoint, |(_, a)| a);
    // Zenoh's endpoint may carry `?config` or `#metadata` after the address.
    let address = address.split(['?', '#']).next().unwrap_or(address);
    let host = address
        .rsplit_once(':')
        .map_or(address, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The robot's id when `[robot] id` is not given: the host's name, in the characters an
/// id may hold, else `nevil`.
pub fn default_robot_id() -> String {
    let host = sysinfo::System::host_name().unwrap_or_default();
    let id: String = host
        .chars()
        .map(|c| if id_char(c) { c } else { '-' })
        .take(64)
        .collect();
    if id.is_empty() {
        "nevil".into()
    } else {
        id
    }
}

fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Checks a robot's or a node's name: one chunk of a Zenoh key, 1–64 of `A-Z a-z 0-9 - _`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        Err(format!("{name:?} must be 1 to 64 characters"))
    } else if !name.chars().all(id_char) {
        Err(format!(
            "{name:?} may hold only letters, digits, `-` and `_`"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(z: &ZenohConfig) -> Vec<String> {
        let mut p = Problems::default();
        z.check(&mut p);
        p.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn endpoints_are_checked_naming_the_key() {
        let mut z = ZenohConfig {
            listen: vec!["tcp/127.0.0.1:7447".into(), "udp/1.2.3.4:1".into()],
            connect: vec!["router".into(), "tls/10.0.0.1:7447".into()],
            ..ZenohConfig::default()
        };
        let p = problems(&z);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("zenoh.listen[1]: \"udp/1.2.3.4:1\": unknown protocol"));
        assert!(p[1].starts_with("zenoh.connect[0]: \"router\" is no endpoint"));
        assert!(p[2].contains("needs [zenoh.tls]"), "{p:?}");
        z.lease_ms = 10;
        assert!(problems(&z).iter().any(|m| m.starts_with("zenoh.lease_ms")));
        assert!(z.enabled());
        assert!(!ZenohConfig::default().enabled());
    }

    #[test]
    fn tls_refuses_plain_tcp_and_unreadable_files() {
        let z = ZenohConfig {
            listen: vec!["tcp/0.0.0.0:7447".into()],
            tls: Some(TlsConfig {
                ca: "/nonexistent/ca.pem".into(),
                cert: "/nonexistent/c.pem".into(),
                key: "/nonexistent/k.pem".into(),
            }),
            ..ZenohConfig::default()
        };
        let p = problems(&z);
        assert!(p[0].contains("plain tcp beside [zenoh.tls]"), "{p:?}");
        assert!(
            p[1].starts_with("zenoh.tls.ca: cannot read /nonexistent/ca.pem"),
            "{p:?}"
        );
        assert_eq!(p.len(), 4, "{p:?}");
    }

    #[test]
    fn loopback_is_told_apart() {
        let z = ZenohConfig {
            listen: vec![
                "tcp/127.0.0.1:7447".into(),
                "tcp/[::1]:7447".into(),
                "tcp/localhost:1".into(),
                "tcp/0.0.0.0:7447".into(),
                "tcp/192.168.1.5:7447#iface=eth0".into(),
            ],
            ..ZenohConfig::default()
        };
        assert_eq!(
            z.beyond_loopback().collect::<Vec<_>>(),
            ["tcp/0.0.0.0:7447", "tcp/192.168.1.5:7447#iface=eth0"]
        );
    }

    #[test]
    fn names_are_one_key_chunk() {
        assert!(check_name("picar-7_a").is_ok());
        for bad in ["", "a/b", "a*", "x y", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&default_robot_id()).is_ok());
    }
}
