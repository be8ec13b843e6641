use std::io::Write;

use nevil_actors::{ChildSpec, Strategy, SupervisorFlags, Tree};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::*;
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
    }
}

async fn body(response: Response<Full<Bytes>>) -> (StatusCode, String) {
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
    let metrics = metrics::with_local_recorder(&recorder, || ep.respond(&Method::GET, "/metrics"));
    let (status, text) = body(metrics).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("nevil_actor_messages_total{path=\"root/idle\"} 0"),
        "{text}"
    );
    assert!(text.contains("nevil_ready 1"), "{text}");

    let (status, json) = body(ep.respond(&Method::GET, "/tree")).await;
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

    let (status, json) = body(ep.respond(&Method::GET, "/health/live")).await;
    assert_eq!(
        (status, json.as_str()),
        (StatusCode::OK, r#"{"ok":true,"reasons":[]}"#)
    );
    ep.generation.bump();
    let (status, json) = body(ep.respond(&Method::GET, "/health/ready")).await;
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
    let (status, text) = body(ep.respond(&Method::GET, "/admin")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(text.starts_with("not found: /admin"), "{text}");
    let response = ep.respond(&Method::POST, "/tree");
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    tree.shutdown().await;
}

#[tokio::test]
async fn readiness_is_lost_while_the_tree_is_down() {
    let tree = tree().await;
    let ep = endpoint(&tree, Telemetry::recorder().unwrap().handle());
    tree.shutdown().await;
    let (status, json) = body(ep.respond(&Method::GET, "/health/ready")).await;
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
