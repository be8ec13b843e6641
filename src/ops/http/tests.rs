use std::io::Write;

use nevil_actors::{ChildSpec, Strategy, SupervisorFlags, Tree};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::*;
use crate::ops::observer::Controls;
use crate::services::analytics::AnalyticsHandle;

/// A worker that does nothing: enough for a tree to report on.
#[derive(Clone)]
struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// A started tree, once every actor in it has finished starting (ractor marks an
/// actor running only when its own task has run `post_start`).
async fn tree() -> Tree {
    let children = vec![ChildSpec::worker("idle", Idle, ())];
    let tree = Tree::start("root", SupervisorFlags::new(Strategy::OneForOne), children)
        .await
        .unwrap();
    let running = |t: &Tree| {
        let s = t.snapshot();
        s.root
            .walk()
            .iter()
            .all(|n| n.status == nevil_actors::Status::Running)
    };
    // Polls a condition (no timing is asserted); other workers may be running it.
    for _ in 0..5000 {
        if running(&tree) {
            return tree;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("tree never ran: {}", tree.snapshot().root);
}

fn endpoint(tree: &Tree, handle: metrics_exporter_prometheus::PrometheusHandle) -> Endpoint {
    Endpoint {
        tree: tree.view(),
        telemetry: Telemetry::from_handle(handle),
        estops: EStopLatch::default(),
        analytics: AnalyticsHandle::new(Default::default(), crate::core::clock::Clock::start()),
        generation: crate::config::reload::Generation::new(),
        timeline: Timeline::default(),
        robot: RobotSources {
            jitter: Arc::default(),
            host: crate::services::monitor::HostStatus::default(),
            sim: None,
        },
        controls: None,
        fleet: crate::ops::fleet::peers::Peers::alone("picar-1"),
    }
}

/// `GET path` without headers.
fn get_(ep: &Endpoint, path: &str) -> Response<Body> {
    ep.respond(&Method::GET, path, &HeaderMap::new())
}

async fn body(response: Response<Body>) -> (StatusCode, String) {
    use http_body_util::BodyExt;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn routes_answer_from_the_tree() {
    let tree = tree().await;
    let recorder = Telemetry::recorder().unwrap();
    let ep = endpoint(&tree, recorder.handle());
    let metrics = metrics::with_local_recorder(&recorder, || get_(&ep, "/metrics"));
    let (status, text) = body(metrics).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("nevil_actor_messages_total{path=\"root/idle\"} 0"),
        "{text}"
    );
    assert!(text.contains("nevil_ready 1"), "{text}");

    let (status, json) = body(get_(&ep, "/tree")).await;
    assert_eq!(status, StatusCode::OK);
    let tree_json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(tree_json["root"]["children"][0]["path"], "root/idle");
    assert!(tree_json["analytics"].is_object(), "as in the dump: {json}");
    assert_eq!(tree_json["config_generation"], 1);
    assert!(
        json.trim_start()
            .starts_with("{\n  \"config_generation\": 1,"),
        "at the top: {json}"
    );

    let (status, json) = body(get_(&ep, "/health/live")).await;
    assert_eq!(
        (status, json.as_str()),
        (StatusCode::OK, r#"{"ok":true,"reasons":[]}"#)
    );
    ep.generation.bump();
    let (status, json) = body(get_(&ep, "/health/ready")).await;
    assert_eq!(
        (status, json.as_str()),
        (
            StatusCode::OK,
            r#"{"ok":true,"reasons":[],"config_generation":2}"#
        )
    );
    tree.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() {
    let tree = tree().await;
    let ep = endpoint(&tree, Telemetry::recorder().unwrap().handle());
    let (status, text) = body(get_(&ep, "/admin")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(text.starts_with("not found: /admin"), "{text}");
    let response = ep.respond(&Method::POST, "/tree", &HeaderMap::new());
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = ep.respond(&Method::HEAD, "/events", &HeaderMap::new());
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    tree.shutdown().await;
}

#[tokio::test]
async fn readiness_is_lost_while_the_tree_is_down() {
    let tree = tree().await;
    let ep = endpoint(&tree, Telemetry::recorder().unwrap().handle());
    tree.shutdown().await;
    let (status, json) = body(get_(&ep, "/health/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert!(json.contains("root: stopped"), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_do_not_lock_others_out() {
    let tree = tree().await;
    let ep = endpoint(&tree, Telemetry::recorder().unwrap().handle());
    let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let limits = Limits {
        max_connections: 2,
        timeout: Duration::from_millis(300),
    };
    let server = Server::start(listener, ep, limits).unwrap();
    let addr = server.local_addr();
    // Take every slot with clients that send half a request and then stall.
    let stalled: Vec<_> = (0..limits.max_connections)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /tree HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    // Served once the stalled ones are cut off; without the timeout this would hang
    // (the client's own limit is far longer than the server's).
    let patience = Duration::from_secs(60);
    let (status, _) = get(&format!("http://{addr}/health/live"), patience)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, _) = get(&format!("http://{addr}/nope"), patience).await.unwrap();
    assert_eq!(status, 404);
    drop(stalled);
    server.stop();
    tree.shutdown().await;
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let first = bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = first.local_addr().unwrap();
    let err = bind(addr).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cannot listen on {addr}: ")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_what_the_server_serves() {
    let tree = tree().await;
    let ep = endpoint(&tree, Telemetry::recorder().unwrap().handle());
    let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let limits = Limits {
        max_connections: 4,
        timeout: Duration::from_secs(5),
    };
    let server = Server::start(listener, ep, limits).unwrap();
    let base = format!("http://{}", server.local_addr());
    let (status, json) = get(&tree_url(&base), Duration::from_secs(5)).await.unwrap();
    assert_eq!(status, 200);
    assert!(json.contains("\"root/idle\""), "{json}");
    let (status, _) = get(&format!("{base}/x"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(status, 404);
    server.stop();
    tree.shutdown().await;
}

/// The page's files are served with a policy that allows nothing from elsewhere, and
/// the page asks for no file that is not embedded.
#[tokio::test]
async fn the_observer_page_is_served_self_contained() {
    let tree = tree().await;
    let ep = endpoint(&tree, Telemetry::recorder().unwrap().handle());
    for asset in &crate::ops::observer::ASSETS {
        let response = get_(&ep, asset.path);
        assert_eq!(response.status(), StatusCode::OK, "{}", asset.path);
        assert_eq!(response.headers()["content-type"], asset.content_type);
        assert_eq!(
            response.headers()["content-security-policy"],
            crate::ops::observer::CSP
        );
    }
    let (_, html) = body(get_(&ep, "/")).await;
    for reference in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(reference) {
            let rest = &html[at + reference.len()..];
            let target = &rest[..rest.find('"').unwrap()];
            let path = format!("/{}", target.trim_start_matches('/'));
            assert!(
                crate::ops::observer::asset(&path).is_some(),
                "the page asks for {target}, which is not embedded"
            );
        }
    }
    tree.shutdown().await;
}

const TOKEN: &str = "0123456789abcdef";

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        hyper::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    headers
}

/// A tree of `root/{idle, vital, team/member}` with controls unlocked by [`TOKEN`];
/// `vital` counts as safety-critical.
async fn controlled() -> (Tree, Endpoint) {
    let team = ChildSpec::supervisor(
        "team",
        SupervisorFlags::new(Strategy::OneForOne),
        vec![ChildSpec::worker("member", Idle, ())],
    );
    let children = vec![
        ChildSpec::worker("idle", Idle, ()),
        ChildSpec::worker("vital", Idle, ()),
        team,
    ];
    let flags = SupervisorFlags::new(Strategy::OneForOne).intensity(10, Duration::from_secs(1));
    let tree = Tree::start("root", flags, children).await.unwrap();
    let mut ep = endpoint(&tree, Telemetry::recorder().unwrap().handle());
    ep.controls = Some(Controls {
        token: crate::config::ControlToken::from(TOKEN),
        tree: tree.view(),
        critical: Arc::new(|path: &str| path == "root/vital"),
        timeline: ep.timeline.clone(),
        audit: None,
    });
    (tree, ep)
}

fn restarts(tree: &Tree, path: &str) -> u64 {
    tree.snapshot().root.find(path).unwrap().restarts
}

/// Without the token (or with a wrong one) nothing is done; with it, a restart really
/// restarts the actor through its supervisor; refusals say why; every request is on
/// the timeline.
#[tokio::test]
async fn controls_need_the_token_and_act_through_the_supervisors() {
    let (tree, ep) = controlled().await;
    let post = |path: &str, headers: &HeaderMap| ep.respond(&Method::POST, path, headers);
    let restart = "/actors/root/idle/restart";

    let (status, json) = body(post(restart, &HeaderMap::new())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    let (status, _) = body(post(restart, &bearer("0123456789abcdeX"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(restarts(&tree, "root/idle"), 0);
    assert_eq!(ep.timeline.subscribe().0.len(), 0, "refused at the door");

    let (status, json) = body(post(restart, &bearer(TOKEN))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let answer: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(answer["ok"], true);
    for _ in 0..5000 {
        if restarts(&tree, "root/idle") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(restarts(&tree, "root/idle"), 1);

    let (status, _) = body(post("/actors/root/idle/suspend", &bearer(TOKEN))).await;
    assert_eq!(status, StatusCode::OK);
    let gate = tree.view().counters("root/idle").unwrap();
    assert_eq!(gate.gate_state(), "suspended");
    let (status, _) = body(post("/actors/root/idle/resume", &bearer(TOKEN))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gate.gate_state(), "open");

    for (path, expected, why) in [
        (
            "/actors/root/vital/suspend",
            StatusCode::CONFLICT,
            "safety-critical",
        ),
        (
            "/actors/root/team/suspend",
            StatusCode::CONFLICT,
            "supervisor",
        ),
        ("/actors/root/restart", StatusCode::CONFLICT, "SIGTERM"),
        (
            "/actors/root/nobody/restart",
            StatusCode::NOT_FOUND,
            "no actor",
        ),
    ] {
        let (status, json) = body(post(path, &bearer(TOKEN))).await;
        assert_eq!(status, expected, "{path}: {json}");
        assert!(json.contains(why), "{path}: {json}");
    }
    assert_eq!(restarts(&tree, "root/vital"), 0);
    let (status, _) = body(post("/actors/root/idle/explode", &bearer(TOKEN))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = body(get_(&ep, restart)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    let (backlog, _) = ep.timeline.subscribe();
    let controls: Vec<_> = backlog
        .iter()
        .filter_map(|s| match &s.entry {
            crate::services::audit::Entry::Control {
                path,
                action,
                outcome,
            } => Some(format!("{path} {action} {outcome}")),
            _ => None,
        })
        .collect();
    assert_eq!(controls.len(), 7, "{controls:?}");
    assert_eq!(controls[0], "root/idle restart done");
    assert!(
        controls[3].starts_with("root/vital suspend refused: "),
        "{controls:?}"
    );
    tree.shutdown().await;
}

/// Without a configured token, every control request is refused.
#[tokio::test]
async fn without_a_configured_token_there_are_no_controls() {
    let tree = tree().await;
    let ep = endpoint(&tree, Telemetry::recorder().unwrap().handle());
    let (status, json) =
        body(ep.respond(&Method::POST, "/actors/root/idle/restart", &bearer(TOKEN))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(json.contains("control_token"), "{json}");
    assert_eq!(restarts(&tree, "root/idle"), 0);
    tree.shutdown().await;
}

/// Reads from `stream` until `needle` has arrived; everything read.
fn read_until(stream: &mut std::net::TcpStream, needle: &str) -> String {
    use std::io::Read;
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before {needle:?}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

/// `/events` streams the backlog, the state and new timeline entries; an open stream
/// gives its connection slot back (a probe is served with one slot in all), and the
/// streams allowed at once are bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_the_state_and_the_timeline() {
    let tree = tree().await;
    let ep = endpoint(&tree, Telemetry::recorder().unwrap().handle());
    let timeline = ep.timeline.clone();
    timeline.push(crate::services::audit::Entry::Restart {
        path: "root/before".into(),
        restarts: 1,
    });
    let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let limits = Limits {
        max_connections: 1,
        timeout: Duration::from_secs(30),
    };
    let server = Server::start(listener, ep, limits).unwrap();
    let addr = server.local_addr();
    let mut page = std::net::TcpStream::connect(addr).unwrap();
    page.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let seen = read_until(&mut page, "event: state\n");
    assert!(seen.contains("text/event-stream"), "{seen}");
    assert!(
        seen.contains("\"path\":\"root/before\""),
        "the backlog: {seen}"
    );
    let seen = read_until(&mut page, "\n\n");
    assert!(seen.contains("\"root/idle\""), "the tree: {seen}");

    // The one connection slot is free again: a probe is served.
    let patience = Duration::from_secs(60);
    let (status, _) = get(&format!("http://{addr}/health/live"), patience)
        .await
        .unwrap();
    assert_eq!(status, 200);
    // One stream at a time for one connection.
    let (status, _) = get(&format!("http://{addr}/events"), patience)
        .await
        .unwrap();
    assert_eq!(status, 503);

    timeline.push(crate::services::audit::Entry::Restart {
        path: "root/after".into(),
        restarts: 2,
    });
    let seen = read_until(&mut page, "root/after");
    assert!(seen.contains("event: timeline"), "{seen}");
    drop(page);
    server.stop();
    tree.shutdown().await;
}

/// A page that stops reading is cut off once its stream could not take an event for
/// the stall limit: its stream slot comes back and the connection is told.
#[tokio::test(start_paused = true)]
async fn a_stalled_stream_is_cut_off() {
    let tree = tree().await;
    let ep = endpoint(&tree, Telemetry::recorder().unwrap().handle());
    let (states, _) = tokio::sync::broadcast::channel(64);
    let slots = Arc::new(Semaphore::new(1));
    let permit = slots.clone().try_acquire_owned().unwrap();
    let ended = Arc::new(tokio::sync::Notify::new());
    let (tx, frames) = events::channel();
    let task = tokio::spawn(events::forward(
        ep,
        states.subscribe(),
        tx,
        Duration::from_secs(5),
        permit,
        events::Ended(ended.clone()),
    ));
    // Nobody reads `frames`: the queue fills, then the stall limit runs out.
    for _ in 0..64 {
        let _ = states.send(Bytes::from_static(b"event: state\ndata: {}\n\n"));
        tokio::task::yield_now().await;
    }
    let started = tokio::time::Instant::now();
    ended.notified().await;
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "not before the limit"
    );
    task.await.unwrap();
    assert_eq!(slots.available_permits(), 1);
    drop(frames);
    tree.shutdown().await;
}

/// `GET path` the way the server answers it (the fleet's routes included).
async fn ask(ep: &Endpoint, method: Method, path: &str) -> (StatusCode, String) {
    body(ep.answer(&method, path, &HeaderMap::new()).await).await
}

#[tokio::test]
async fn without_a_session_the_fleet_is_this_robot_alone() {
    let tree = tree().await;
    let recorder = Telemetry::recorder().unwrap();
    let ep = endpoint(&tree, recorder.handle());

    let (status, json) = ask(&ep, Method::GET, "/fleet").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{json}");
    assert_eq!(listed[0]["id"], "picar-1");
    assert_eq!(listed[0]["self"], true);
    assert_eq!(listed[0]["health"]["id"], "picar-1");
    assert_eq!(listed[0]["health"]["actors"], 2, "root and idle: {json}");

    let (status, json) = ask(&ep, Method::GET, "/fleet/picar-1/tree").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let own: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(own["root"]["children"][0]["path"], "root/idle");
    let (status, json) = ask(&ep, Method::GET, "/fleet/picar-1/events").await;
    assert_eq!((status, json.as_str()), (StatusCode::OK, "[]"));

    let (status, text) = ask(&ep, Method::GET, "/fleet/picar-2/tree").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(text.contains("\"picar-2\" is not reachable"), "{text}");
    let (status, text) = ask(&ep, Method::GET, "/fleet/no%2Fsuch/events").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("robot id \"no%2Fsuch\""), "{text}");
    let (status, _) = ask(&ep, Method::GET, "/fleet/picar-1/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = ask(&ep, Method::POST, "/fleet").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // The rest is answered as before.
    let (status, _) = ask(&ep, Method::GET, "/health/live").await;
    assert_eq!(status, StatusCode::OK);
}
