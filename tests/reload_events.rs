//! The reload channel, on the whole robot in-process and on tokio's paused clock: each
//! reload's outcome is a `ReloadEvent` (what an audit trail records), a rollback
//! returns to the last configuration that passed its probation, and generations only
//! go up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use nevil::app::reload::ReloadEvent;
use nevil::app::{Devices, Robot, RunOptions};
use nevil::config::{Config, DEFAULT_TOML};
use nevil::core::clock::Clock;
use nevil::core::ticker::Timer;
use tokio::sync::broadcast;

/// The default config, all on one runtime (a bulkhead would not follow the paused
/// clock), with `edits`, as text.
fn text(edits: &[(&str, &str)]) -> String {
    let mut text = DEFAULT_TOML.replace(
        "bulkhead = [\"obstacle_avoidance\", \"line_follower\"]",
        "bulkhead = []",
    );
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    text
}

async fn next(rx: &mut broadcast::Receiver<ReloadEvent>) -> ReloadEvent {
    tokio::time::timeout(Duration::from_secs(600), rx.recv())
        .await
        .expect("a reload event")
        .unwrap()
}

async fn reload(robot: &Robot, path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    robot.reloads().request();
}

#[tokio::test(start_paused = true)]
async fn each_outcome_is_an_event_and_a_rollback_returns_to_the_last_good_config() {
    let dir = std::env::temp_dir().join(format!("nevil-reload-events-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    let start = text(&[]);
    std::fs::write(&path, &start).unwrap();
    let config = Config::load(Some(&path)).unwrap();
    let clock = Clock::start();
    let devices = Devices::open(&config, clock).unwrap();
    let opts = RunOptions {
        tree_dump: dir.join("tree.json"),
        loop_timer: Timer::Tokio,
        config_path: Some(path.clone()),
        ..RunOptions::default()
    };
    let robot = Robot::start(&config, devices, clock, &opts).await.unwrap();
    let mut rx = robot.reloads().subscribe();
    assert_eq!(robot.reloads().generation().get(), 1);

    reload(
        &robot,
        &path,
        &text(&[("backend = \"sim\"", "backend = \"picarx\"")]),
    )
    .await;
    assert_eq!(
        next(&mut rx).await,
        ReloadEvent::Refused {
            generation: 1,
            problems: vec!["robot.backend cannot change without a restart".into()],
        }
    );

    let good = text(&[
        ("battery_low_v = 6.4", "battery_low_v = 6.2"),
        ("probation_s = 30", "probation_s = 5"),
    ]);
    reload(&robot, &path, &good).await;
    assert_eq!(
        next(&mut rx).await,
        ReloadEvent::Applied {
            generation: 2,
            keys: vec!["safety.battery_low_v".into(), "reload.probation_s".into()],
        }
    );
    // Past its probation: generation 2 is the last good configuration.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let storm = good.replacen(
        "[quotas.actors.obstacle_avoidance]\ngroup = \"lightweight\"",
        "[quotas.groups.tight]\nrate = { soft = 1, hard = 2 }\nhard_action = \"restart\"\n\n\
         [quotas.actors.obstacle_avoidance]\ngroup = \"tight\"",
        1,
    );
    reload(&robot, &path, &storm).await;
    let keys = vec![
        "quotas.groups.tight".to_string(),
        "quotas.actors.obstacle_avoidance".to_string(),
    ];
    assert_eq!(
        next(&mut rx).await,
        ReloadEvent::Applied {
            generation: 3,
            keys: keys.clone(),
        }
    );
    match next(&mut rx).await {
        ReloadEvent::RolledBack {
            generation,
            restored,
            keys: back,
            cause,
        } => {
            assert_eq!((generation, restored, back), (4, 2, keys));
            assert!(cause.contains("root/control"), "{cause}");
        }
        other => panic!("not rolled back: {other:?}"),
    }
    assert_eq!(robot.reloads().generation().get(), 4);
    let snapshot = robot.tree().snapshot();
    let oa = snapshot
        .root
        .find("root/control/behaviours/obstacle_avoidance")
        .unwrap();
    assert_eq!(
        oa.quota.as_ref().map(|q| q.group.as_str()),
        Some("lightweight")
    );
    robot.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
