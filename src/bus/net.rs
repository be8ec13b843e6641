//! The robot's (or a node's, or a fleet view's) Zenoh session on the network, from
//! `[zenoh]` ([`crate::config::ZenohConfig`]): peer mode, no multicast scouting (peers
//! are the endpoints configured, and those they tell of), configured endpoints retried
//! in the background, and mutual TLS when `[zenoh.tls]` is given.
//!
//! Everything a robot says on the network is under [`robot_prefix`] `nevil/<id>/`.

use crate::config::{TlsConfig, ZenohConfig};

mod refusals;

pub use refusals::{Refusals, REFUSED};

/// Why the network session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A setting could not be given to Zenoh (the config check lets none through).
    #[error("zenoh setting {key}: {cause}")]
    Setting {
        /// Zenoh's key.
        key: String,
        /// Zenoh's error.
        cause: String,
    },
    /// Zenoh could not open the session (a listener's address in use, a bad
    /// certificate, ...).
    #[error("cannot open the zenoh session: {0}")]
    Open(String),
}

/// The key prefix of everything robot `id` says: `nevil/<id>`.
pub fn robot_prefix(id: &str) -> String {
    format!("nevil/{id}")
}

/// How fast a configured endpoint is retried: a node or router that comes back is
/// reached again within a second.
const RETRY_INIT_MS: u64 = 250;
const RETRY_MAX_MS: u64 = 1000;

/// Zenoh's configuration for `zenoh`: peer mode, the endpoints, the lease, TLS.
///
/// # Errors
///
/// [`NetError::Setting`] if Zenoh refuses a value (a checked config gives none).
pub fn zenoh_config(zenoh: &ZenohConfig) -> Result<zenoh::Config, NetError> {
    let json = |list: &[String]| serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
    let mut settings: Vec<(&str, String)> = vec![
        ("mode", "\"peer\"".into()),
        ("listen/endpoints", json(&zenoh.listen)),
        ("connect/endpoints", json(&zenoh.connect)),
        // Never block the start for a peer: retried in the background, for good.
        ("connect/timeout_ms", "-1".into()),
        ("connect/exit_on_failure", "false".into()),
        (
            "connect/retry",
            format!(
                "{{period_init_ms: {RETRY_INIT_MS}, period_max_ms: {RETRY_MAX_MS}, \
                 period_increase_factor: 2}}"
            ),
        ),
        ("scouting/multicast/enabled", "false".into()),
        ("transport/link/tx/lease", zenoh.lease_ms.to_string()),
        ("transport/link/tx/keep_alive", "4".into()),
    ];
    if zenoh.listen.iter().any(|e| picks_port(e)) {
        // Read-only admin space: how a session listening on port 0 learns the port the
        // OS picked (`session.info().locators()` is behind zenoh's `unstable` feature).
        // Peers can read it too (the config, with file paths but no key), so only a
        // session that needs it has it.
        settings.extend([
            ("adminspace/enabled", "true".into()),
            ("adminspace/permissions/read", "true".into()),
            ("adminspace/permissions/write", "false".into()),
        ]);
    }
    if let Some(tls) = &zenoh.tls {
        settings.extend(tls_settings(tls));
    }
    let mut config = zenoh::Config::default();
    for (key, value) in settings {
        config
            .insert_json5(key, &value)
            .map_err(|e| NetError::Setting {
                key: key.into(),
                cause: format!("{value}: {e}"),
            })?;
    }
    Ok(config)
}

/// Mutual TLS: this process's certificate on both sides of a link, the peer's checked
/// against the CA whichever side it is on.
fn tls_settings(tls: &TlsConfig) -> Vec<(&'static str, String)> {
    let path = |p: &std::path::Path| format!("\"{}\"", p.display());
    vec![
        ("transport/link/tls/root_ca_certificate", path(&tls.ca)),
        ("transport/link/tls/listen_certificate", path(&tls.cert)),
        ("transport/link/tls/listen_private_key", path(&tls.key)),
        ("transport/link/tls/connect_certificate", path(&tls.cert)),
        ("transport/link/tls/connect_private_key", path(&tls.key)),
        ("transport/link/tls/enable_mtls", "true".into()),
    ]
}

/// Whether an endpoint asks the OS for a port (`tcp/127.0.0.1:0`).
fn picks_port(endpoint: &str) -> bool {
    let address = endpoint.split(['?', '#']).next().unwrap_or(endpoint);
    address.ends_with(":0")
}

/// The locators a session listening on `listen` (its `[zenoh] listen`) is reached at:
/// those endpoints, or, when one asks for port 0, the session's own list from its admin space
/// (`tcp/127.0.0.1:40123`: the port the OS picked).
///
/// # Errors
///
/// [`NetError::Open`] if the admin space does not answer or its answer has no
/// locators list.
pub async fn locators(
    session: &zenoh::Session,
    listen: &[String],
) -> Result<Vec<String>, NetError> {
    if !listen.iter().any(|e| picks_port(e)) {
        return Ok(listen.to_vec());
    }
    let key = format!("@/{}/peer", session.zid());
    let failed = |what: String| NetError::Open(format!("{key}: {what}"));
    let replies = session
        .get(&key)
        .timeout(std::time::Duration::from_secs(2))
        .await
        .map_err(|e| failed(e.to_string()))?;
    while let Ok(reply) = replies.recv_async().await {
        let Ok(sample) = reply.result() else { continue };
        let info: serde_json::Value = serde_json::from_slice(&sample.payload().to_bytes())
            .map_err(|e| failed(format!("not JSON: {e}")))?;
        let list = info
            .get("locators")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| failed("no \"locators\" list".into()))?;
        return Ok(list
            .iter()
            .filter_map(|l| l.as_str().map(str::to_string))
            .collect());
    }
    Err(failed("no answer".into()))
}

/// Opens the network session `zenoh` describes.
///
/// # Errors
///
/// [`NetError`]: a setting Zenoh refuses, or a session that does not open.
pub async fn open(zenoh: &ZenohConfig) -> Result<zenoh::Session, NetError> {
    let config = zenoh_config(zenoh)?;
    for endpoint in zenoh.beyond_loopback() {
        if zenoh.tls.is_some() {
            tracing::info!(endpoint, "zenoh listens beyond loopback (mutual TLS)");
        } else {
            tracing::warn!(
                endpoint,
                "zenoh listens beyond loopback without TLS: anyone on the network may join"
            );
        }
    }
    zenoh::open(config)
        .await
        .map_err(|e| NetError::Open(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_checked_config_gives_zenoh_a_config() {
        let zenoh = ZenohConfig {
            listen: vec!["tls/127.0.0.1:0".into()],
            connect: vec!["tls/127.0.0.1:7447".into()],
            tls: Some(TlsConfig {
                ca: "/etc/nevil/ca.pem".into(),
                cert: "/etc/nevil/robot.pem".into(),
                key: "/etc/nevil/robot.key".into(),
            }),
            ..ZenohConfig::default()
        };
        let config = zenoh_config(&zenoh).unwrap();
        let mtls = config.get_json("transport/link/tls/enable_mtls").unwrap();
        assert_eq!(mtls, "true");
        let lease = config.get_json("transport/link/tx/lease").unwrap();
        assert_eq!(lease, "2000");
        assert!(zenoh_config(&ZenohConfig::default()).is_ok());
        assert_eq!(robot_prefix("picar-7"), "nevil/picar-7");
        // The admin space (readable by peers) only for a session that must learn its port.
        assert!(config.get_json("adminspace/enabled").unwrap() == "true");
        let fixed = ZenohConfig {
            listen: vec!["tcp/127.0.0.1:7447".into()],
            ..ZenohConfig::default()
        };
        let fixed = zenoh_config(&fixed).unwrap();
        assert_eq!(fixed.get_json("adminspace/enabled").unwrap(), "false");
        assert!(picks_port("tcp/[::1]:0#iface=lo") && !picks_port("tcp/127.0.0.1:7447"));
    }
}
