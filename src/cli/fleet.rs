//! `nevil fleet`: the robots reachable over Zenoh (each robot's `nevil/<id>/alive`
//! token), with their health (`nevil/<id>/health`); one robot's tree
//! (`nevil/<id>/tree`, printed as `nevil tree` prints one); or one robot's events
//! (the entries it kept, then `nevil/<id>/events` as they come).
//!
//! The viewer listens on nothing: it connects to the endpoints given (`--connect`, the
//! config's `[zenoh] connect`) with the config's lease and TLS, waits briefly until a
//! peer answers at each, and asks.

use std::process::ExitCode;
use std::time::Duration;

use nevil_actors::Problems;
use serde::Serialize;
use serde_json::Value;
use zenoh::sample::SampleKind;

use super::{FleetArgs, BAD_INPUT};
use crate::config::network::check_name;
use crate::config::{Config, ZenohConfig};
use crate::ops::fleet::{key, query, RobotHealth};

/// How long the viewer waits for a peer at each endpoint before it asks.
const PEER_WAIT: Duration = Duration::from_secs(3);

/// How often it looks whether they are there.
const PEER_POLL: Duration = Duration::from_millis(20);

/// How long a query waits for its answers.
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// `nevil fleet`: lists the robots reachable, prints one's tree or follows its events.
pub fn main(args: FleetArgs) -> ExitCode {
    let zenoh = match viewer_config(&args) {
        Ok(zenoh) => zenoh,
        Err(problems) => {
            for problem in problems {
                eprintln!("nevil fleet: {problem}");
            }
            return ExitCode::from(BAD_INPUT);
        }
    };
    // Zenoh needs tokio's multi-threaded runtime.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nevil fleet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args, zenoh))
}

/// The viewer's `[zenoh]`: the config's (without its listen endpoints: the viewer is
/// no robot) plus `--connect`; every problem named, with what it came from.
pub fn viewer_config(args: &FleetArgs) -> Result<ZenohConfig, Vec<String>> {
    let mut problems = Vec::new();
    for (flag, id) in [("--tree", &args.tree), ("--follow", &args.follow)] {
        if let Some(id) = id {
            if let Err(why) = check_name(id) {
                problems.push(format!("{flag}: robot id {why}"));
            }
        }
    }
    let mut zenoh = match &args.config {
        Some(path) => match Config::load(Some(path)) {
            Ok(config) => config.zenoh,
            Err(e) => return Err(vec![e.to_string()]),
        },
        None => ZenohConfig::default(),
    };
    zenoh.listen.clear();
    for endpoint in &args.connect {
        let one = ZenohConfig {
            connect: vec![endpoint.clone()],
            ..zenoh.clone()
        };
        let mut p = Problems::default();
        one.check(&mut p);
        for problem in p.0.iter().filter(|p| p.key.starts_with("zenoh.connect")) {
            problems.push(format!("--connect {}", problem.message));
        }
    }
    zenoh.connect.extend(args.connect.iter().cloned());
    if zenoh.connect.is_empty() {
        problems.push(
            "nothing to connect to: give --connect ENDPOINT (e.g. tcp/127.0.0.1:7447) or a \
             --config whose [zenoh] connect names one"
                .into(),
        );
    }
    if problems.is_empty() {
        Ok(zenoh)
    } else {
        Err(problems)
    }
}

async fn run(args: FleetArgs, zenoh: ZenohConfig) -> ExitCode {
    let session = match crate::bus::net::open(&zenoh).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nevil fleet: {e}");
            return ExitCode::FAILURE;
        }
    };
    wait_for_peers(&session, zenoh.connect.len()).await;
    let code = match alive(&session).await {
        Ok(ids) if ids.is_empty() => {
            eprintln!(
                "nevil fleet: no robot reachable at {}",
                zenoh.connect.join(", ")
            );
            ExitCode::FAILURE
        }
        Ok(ids) => {
            let wanted = args.follow.as_ref().or(args.tree.as_ref());
            match wanted.filter(|id| !ids.contains(id)) {
                Some(id) => {
                    eprintln!(
                        "nevil fleet: robot {id:?} not found (reachable: {})",
                        ids.join(", ")
                    );
                    ExitCode::FAILURE
                }
                None => match &args.follow {
                    Some(id) => follow(&session, id, args.for_secs).await,
                    None => show(&session, &ids, &args).await,
                },
            }
        }
        Err(e) => {
            eprintln!("nevil fleet: {e}");
            ExitCode::FAILURE
        }
    };
    let _ = session.close().await;
    code
}

/// Waits until there are `endpoints` peers or routers, or [`PEER_WAIT`] has passed (an
/// endpoint with nobody behind it is what the listing then shows).
async fn wait_for_peers(session: &zenoh::Session, endpoints: usize) {
    let waited = tokio::time::timeout(PEER_WAIT, async {
        loop {
            let info = session.info();
            let reached = info.peers_zid().await.count() + info.routers_zid().await.count();
            if reached >= endpoints {
                break;
            }
            tokio::time::sleep(PEER_POLL).await;
        }
    })
    .await;
    if waited.is_err() {
        tracing::debug!(endpoints, "not every endpoint answered");
    }
}

/// The ids of the robots whose token is there, sorted.
async fn alive(session: &zenoh::Session) -> Result<Vec<String>, String> {
    query::alive(session, QUERY_TIMEOUT).await
}

/// The first answer to a query on `key`, as text.
async fn get(session: &zenoh::Session, key: &str) -> Result<String, String> {
    query::get(session, key, QUERY_TIMEOUT)
        .await
        .map_err(|e| e.to_string())
}

/// One robot in `--json`'s list.
#[derive(Debug, Serialize)]
struct Listed {
    id: String,
    health: Option<RobotHealth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tree: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Robot `id`'s health, asked.
async fn health(session: &zenoh::Session, id: &str) -> Result<RobotHealth, String> {
    query::health(session, id, QUERY_TIMEOUT).await
}

/// The listing (a table, or `--json`), or `--tree`'s robot's tree.
async fn show(session: &zenoh::Session, ids: &[String], args: &FleetArgs) -> ExitCode {
    let tree = match &args.tree {
        Some(id) => match get(session, &key(id, "tree")).await {
            Ok(json) => Some((id.clone(), json)),
            Err(e) => {
                eprintln!("nevil fleet: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    if let (Some((_, json)), false) = (&tree, args.json) {
        return match crate::services::tree::text::render(json) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("nevil fleet: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let healths = futures::future::join_all(ids.iter().map(|id| health(session, id))).await;
    let mut listed = Vec::new();
    for (id, health) in ids.iter().zip(healths) {
        let (health, error) = match health {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(e)),
        };
        let tree = match &tree {
            Some((tree_id, json)) if tree_id == id => serde_json::from_str(json).ok(),
            _ => None,
        };
        listed.push(Listed {
            id: id.clone(),
            health,
            tree,
            error,
        });
    }
    if args.json {
        match serde_json::to_string_pretty(&listed) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("nevil fleet: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", table(&listed));
    }
    ExitCode::SUCCESS
}

/// The listing as a table: id, ready, e-stop, actors, restarts, uptime.
fn table(listed: &[Listed]) -> String {
    let width = listed.iter().map(|l| l.id.len()).max().unwrap_or(0).max(2);
    let mut out = format!(
        "{:width$}  {:5}  {:>6}  {:>8}  {:>10}  E-STOP\n",
        "ID", "READY", "ACTORS", "RESTARTS", "UPTIME"
    );
    for l in listed {
        let line = match (&l.health, &l.error) {
            (Some(h), _) => format!(
                "{:width$}  {:5}  {:>6}  {:>8}  {:>8.1} s  {}",
                l.id,
                if h.ready { "yes" } else { "no" },
                h.actors,
                h.restarts,
                h.uptime_s,
                h.estop.as_deref().unwrap_or("-"),
            ),
            (None, error) => format!(
                "{:width$}  ?      (no health: {})",
                l.id,
                error.as_deref().unwrap_or("no answer")
            ),
        };
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints robot `id`'s kept events, then its new ones as they come, one JSON object a
/// line, until SIGINT or `for_secs`; exit 1 if the robot goes.
async fn follow(session: &zenoh::Session, id: &str, for_secs: Option<Duration>) -> ExitCode {
    let events_key = key(id, "events");
    let declared = async {
        let events = session.declare_subscriber(&events_key).await?;
        let gone = session
            .liveliness()
            .declare_subscriber(key(id, "alive"))
            .await?;
        zenoh::Result::Ok((events, gone))
    };
    let (events, gone) = match declared.await {
        Ok(subscribers) => subscribers,
        Err(e) => {
            eprintln!("nevil fleet: {events_key}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Subscribed first: an event between the two is in both, and printed once.
    let kept: Vec<Value> = match get(session, &events_key).await {
        Ok(json) => serde_json::from_str(&json).unwrap_or_default(),
        Err(e) => {
            eprintln!("nevil fleet: {e}");
            return ExitCode::FAILURE;
        }
    };
    for entry in &kept {
        println!("{entry}");
    }
    eprintln!("nevil fleet: following {id}");
    let until = async {
        match for_secs {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    loop {
        tokio::select! {
            _ = &mut until => return ExitCode::SUCCESS,
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
            sample = gone.recv_async() => match sample {
                Ok(s) if s.kind() == SampleKind::Delete => {
                    eprintln!("nevil fleet: robot {id:?} is gone");
                    return ExitCode::FAILURE;
                }
                Ok(_) => {}
                Err(_) => return ExitCode::FAILURE,
            },
            sample = events.recv_async() => {
                let Ok(sample) = sample else { return ExitCode::FAILURE };
                let bytes = sample.payload().to_bytes();
                match serde_json::from_slice::<Value>(&bytes) {
                    Ok(entry) if kept.contains(&entry) => {}
                    Ok(entry) => println!("{entry}"),
                    Err(e) => tracing::warn!(error = %e, "an event that is not JSON"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(connect: &[&str]) -> FleetArgs {
        FleetArgs {
            connect: connect.iter().map(|s| s.to_string()).collect(),
            config: None,
            json: false,
            tree: None,
            follow: None,
            for_secs: None,
        }
    }

    #[test]
    fn endpoints_and_ids_are_checked_with_their_flag() {
        let zenoh = viewer_config(&args(&["tcp/127.0.0.1:7447"])).unwrap();
        assert_eq!(zenoh.connect, ["tcp/127.0.0.1:7447"]);
        assert!(zenoh.listen.is_empty());
        let e = viewer_config(&args(&["127.0.0.1:7447", "udp/127.0.0.1:1"])).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("--connect \"127.0.0.1:7447\" is no endpoint"),
            "{e:?}"
        );
        assert!(e[1].contains("unknown protocol \"udp\""), "{e:?}");
        let e = viewer_config(&args(&[])).unwrap_err();
        assert!(e[0].starts_with("nothing to connect to"), "{e:?}");
        let mut a = args(&["tcp/127.0.0.1:7447"]);
        a.follow = Some("no/such".into());
        let e = viewer_config(&a).unwrap_err();
        assert!(e[0].starts_with("--follow: robot id \"no/such\""), "{e:?}");
    }

    #[test]
    fn the_table_shows_each_robot_or_why_not() {
        let health = RobotHealth {
            id: "picar-1".into(),
            live: true,
            ready: false,
            reasons: vec!["safety: e-stop engaged: battery low".into()],
            estop: Some("battery low".into()),
            uptime_s: 3.25,
            config_generation: 1,
            actors: 25,
            restarts: 2,
        };
        let listed = [
            Listed {
                id: "picar-1".into(),
                health: Some(health),
                tree: None,
                error: None,
            },
            Listed {
                id: "picar-22".into(),
                health: None,
                tree: None,
                error: Some("nevil/picar-22/health: no answer".into()),
            },
        ];
        let text = table(&listed);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("ID        READY  ACTORS  RESTARTS"),
            "{text}"
        );
        assert_eq!(
            lines[1],
            "picar-1   no         25         2       3.2 s  battery low"
        );
        assert!(lines[2].starts_with("picar-22  ?      (no health: nevil/picar-22/health"));
    }
}
