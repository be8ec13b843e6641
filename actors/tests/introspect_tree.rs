//! The tree as data: the JSON shape of DESIGN.md and the indented text dump.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use nevil_actors::{ChildSpec, Strategy, SupervisorFlags, Tree};
use serde_json::json;
use support::{log, settle, tell, Probe, ProbeMsg};

#[tokio::test(start_paused = true)]
async fn snapshot_serializes_to_the_design_schema() {
    let (log, mut events) = log();
    let io = ChildSpec::supervisor(
        "io",
        SupervisorFlags::new(Strategy::OneForOne),
        vec![Probe::new("reader", &log).spec()],
    );
    let tree = Tree::start("root", SupervisorFlags::default(), vec![io])
        .await
        .unwrap();
    events.take(1).await;
    tell(&tree, "root/io/reader", ProbeMsg::Panic);
    events.take(2).await;
    settle(&tree).await;
    support::settle_at(&tree, "root/io").await;

    let json = serde_json::to_value(tree.snapshot()).unwrap();
    assert_eq!(json["pid"], std::process::id());
    assert!(json["uptime_s"].is_f64());
    let root = &json["root"];
    assert_eq!(root["name"], "root");
    assert_eq!(root["kind"], "supervisor");
    assert_eq!(root["strategy"], "one_for_one");
    assert_eq!(root["status"], "running");
    assert_eq!(root["last_exit"], json!(null));
    let io = &root["children"][0];
    assert_eq!(io["path"], "root/io");
    let mut reader = io["children"][0].clone();
    let cpu = reader["cpu_seconds"].take();
    assert!(
        cpu.as_f64().is_some_and(|s| s > 0.0),
        "handler time is measured: {cpu}"
    );
    assert_eq!(
        reader,
        json!({
            "name": "reader",
            "path": "root/io/reader",
            "kind": "worker",
            "strategy": null,
            "status": "running",
            "restarts": 1,
            "last_exit": "panic: reader was told to panic",
            "mailbox_depth": 0,
            "messages_handled": 1,
            "cpu_seconds": null,
            "memory_bytes": 0,
            "quota": null,
            "placement": "in_process",
            "pid": std::process::id(),
            "isolation": null,
            "children": []
        })
    );
}

/// Handled messages are counted per child, across incarnations.
#[tokio::test(start_paused = true)]
async fn messages_handled_accumulate_across_restarts() {
    let (log, mut events) = log();
    let tree = Tree::start(
        "root",
        SupervisorFlags::default(),
        vec![Probe::new("w", &log).spec()],
    )
    .await
    .unwrap();
    events.take(1).await;
    for v in 0..5 {
        tell(&tree, "root/w", ProbeMsg::Record(v));
    }
    events.take(5).await;
    tell(&tree, "root/w", ProbeMsg::Fail);
    events.take(2).await;
    tell(&tree, "root/w", ProbeMsg::Record(9));
    events.take(1).await;
    assert_eq!(tree.snapshot().root.find("w").unwrap().messages_handled, 7);
}

#[tokio::test(start_paused = true)]
async fn text_dump_is_indented_in_start_order() {
    let (log, _events) = log();
    let control = ChildSpec::supervisor(
        "control",
        SupervisorFlags::new(Strategy::RestForOne),
        vec![
            Probe::new("executor", &log).spec(),
            Probe::new("line_follower", &log).spec(),
        ],
    );
    let tree = Tree::start("root", SupervisorFlags::default(), vec![control])
        .await
        .unwrap();
    // ractor reports `starting` until an actor's `post_start` ran in its own task.
    support::idle().await;
    let text = tree.snapshot().root.to_string();
    assert_eq!(
        text,
        "root (one_for_one) [running] restarts=0\n\
         \x20 control (rest_for_one) [running] restarts=0\n\
         \x20   executor [running] restarts=0\n\
         \x20   line_follower [running] restarts=0\n"
    );
    assert!(tree.actor("root/control/executor").is_some());
    assert!(tree.supervisor("root/control").is_some());
    assert!(tree.actor("root/control/nope").is_none());
    assert!(tree.supervisor("root/control/executor").is_none());
}
