//! Two bridges in one process over a temporary socket: a parent's and a child's, each
//! with its own [`Bus`]. Waits are bounded (a failsafe of [`WAIT`]) and end on a
//! condition, never on a sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::*;
use crate::bus::{Bus, Command, Range, Source};

/// The failsafe of every wait: generous, since the machine may be loaded.
const WAIT: Duration = Duration::from_secs(20);

static SOCKETS: AtomicUsize = AtomicUsize::new(0);

/// A socket path of its own for each test, removed when dropped.
struct Socket(PathBuf);

impl Socket {
    fn new() -> Self {
        let n = SOCKETS.fetch_add(1, Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!("nevil-bridge-{}-{n}.sock", std::process::id())))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const PREFIX: &str = "nevil/test";

/// A parent and a child bridge, connected.
async fn pair(socket: &Socket) -> (Bridge, Bridge) {
    let parent = Bridge::listen(&socket.0, PREFIX).await.unwrap();
    let child = Bridge::connect(&socket.0, PREFIX).await.unwrap();
    parent.wait_peer(WAIT).await.unwrap();
    child.wait_peer(WAIT).await.unwrap();
    (parent, child)
}

/// Everything published on `topic` from now on.
fn collect<T: Clone + Send + 'static>(topic: &Topic<T>) -> UnboundedReceiver<T> {
    let (tx, rx) = unbounded_channel();
    topic.subscribe_with("test", move |d| tx.send(d.into_inner()).is_ok());
    rx
}

async fn next<T>(rx: &mut UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("nothing crossed the bridge in time")
        .expect("collector closed")
}

/// Waits until `cond` holds (failsafe: [`WAIT`]).
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn range(i: u64) -> Range {
    Range {
        t_us: i,
        distance_m: (i % 3 != 0).then_some(i as f64 / 7.0),
    }
}

fn command(i: u64) -> Command {
    Command {
        t_us: i,
        source: Source::ObstacleAvoidance,
        power: -(i as f64),
        steer_deg: 0.25 * i as f64,
        urgent: i % 2 == 0,
    }
}

fn stats_of(bridge: &Bridge, topic: &str, direction: Direction) -> BridgeStats {
    bridge
        .stats()
        .into_iter()
        .find(|s| s.topic == topic && s.direction == direction)
        .expect("no stats for the topic")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_crosses_to_the_child_in_order_unchanged_and_once_and_command_comes_back() {
    let socket = Socket::new();
    let (parent, child) = pair(&socket).await;
    let (up, down) = (Bus::new(64), Bus::new(64));
    let _import = child.import(&down.range).await.unwrap();
    let export = parent.export(&up.range).await.unwrap();
    let _back = parent.import(&up.command).await.unwrap();
    let back_export = child.export(&down.command).await.unwrap();
    export.wait_matched(WAIT).await.unwrap();
    back_export.wait_matched(WAIT).await.unwrap();
    let mut at_child = collect(&down.range);
    let mut at_parent = collect(&up.command);

    let sent: Vec<Range> = (0..100).map(range).collect();
    for r in &sent {
        up.range.publish(*r);
    }
    let mut got = Vec::new();
    for _ in 0..sent.len() {
        got.push(next(&mut at_child).await);
    }
    assert_eq!(got, sent);

    down.command.publish(command(7));
    assert_eq!(next(&mut at_parent).await, command(7));
    // Each range message was published once on each side: none came back.
    assert_eq!(up.range.stats().published, 100);
    assert_eq!(down.range.stats().published, 100);
    assert_eq!(up.command.stats().published, 1);
    assert_eq!(down.command.stats().published, 1);
    let out = stats_of(&parent, "range", Direction::Export);
    assert_eq!((out.messages, out.dropped), (100, 0));
    let sizes = 100 * 2; // every frame starts with its 2-byte schema version
    assert!(out.bytes > sizes, "{out:?}");
    assert_eq!(
        stats_of(&child, "range", Direction::Import).bytes,
        out.bytes
    );
    assert_eq!(stats_of(&child, "command", Direction::Export).messages, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_crosses_one_way_per_bridge() {
    let socket = Socket::new();
    let (parent, _child) = pair(&socket).await;
    let bus = Bus::new(8);
    let _out = parent.export(&bus.range).await.unwrap();
    let err = parent.import(&bus.range).await.err().unwrap();
    assert!(
        matches!(err, BridgeError::BothWays { topic: "range", .. }),
        "{err}"
    );
    let _in = parent.import(&bus.command).await.unwrap();
    let err = parent.export(&bus.command).await.err().unwrap();
    assert!(err
        .to_string()
        .contains("\"command\" already crosses this bridge as an import"));
}

/// A gap in the sequence numbers is counted as lost; the first frame sets the start (the
/// import was not there before), and a number below the one expected is a new export
/// (its process restarted), not a loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_in_the_sequence_are_counted_as_lost() {
    let socket = Socket::new();
    let (parent, child) = pair(&socket).await;
    let (up, down) = (Bus::new(64), Bus::new(64));
    let _import = parent.import(&up.command).await.unwrap();
    let export = child.export(&down.command).await.unwrap();
    export.wait_matched(WAIT).await.unwrap();
    let mut at_parent = collect(&up.command);
    let key = format!("{PREFIX}/command");
    for seq in [3, 4, 8, 9, 0, 1] {
        let frame = wire::encode(&command(seq), seq).unwrap();
        child.session.put(&key, frame).await.unwrap();
    }
    for seq in [3, 4, 8, 9, 0, 1] {
        assert_eq!(next(&mut at_parent).await, command(seq));
    }
    let s = stats_of(&parent, "command", Direction::Import);
    assert_eq!((s.messages, s.lost), (6, 3), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_are_rejected_and_counted() {
    let socket = Socket::new();
    let (parent, child) = pair(&socket).await;
    let (up, down) = (Bus::new(64), Bus::new(64));
    let _import = parent.import(&up.command).await.unwrap();
    let export = child.export(&down.command).await.unwrap();
    export.wait_matched(WAIT).await.unwrap();
    let mut at_parent = collect(&up.command);

    let key = format!("{PREFIX}/command");
    let mut other_version = wire::encode(&command(1), 0).unwrap();
    other_version[..2].copy_from_slice(&9u16.to_le_bytes());
    child.session.put(&key, other_version).await.unwrap();
    for garbage in [
        vec![],
        vec![1],
        vec![1, 0, 0xff, 0xff, 0xff, 0xff],
        vec![0xa5; 5000],
    ] {
        child.session.put(&key, garbage).await.unwrap();
    }
    until("every bad frame counted", || {
        let s = stats_of(&parent, "command", Direction::Import);
        s.rejected_schema == 1 && s.rejected_decode == 4
    })
    .await;
    // The import still works, and nothing bad was published.
    down.command.publish(command(2));
    assert_eq!(next(&mut at_parent).await, command(2));
    assert_eq!(up.command.stats().published, 1);
    assert_eq!(stats_of(&parent, "command", Direction::Import).messages, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_handoff_queue_drops_the_newest_and_counts() {
    let counters = Arc::new(Counters::new("range", Direction::Export));
    let (tx, mut rx) = mpsc::channel(3);
    let topic = Topic::new("range", 100);
    topic.subscribe_with("bridge-test", handoff(tx, counters.clone()));
    // Nobody drains: the publisher is never held up, the queue keeps the oldest.
    for i in 0..10 {
        topic.publish(range(i));
    }
    assert_eq!(counters.stats().dropped, 7);
    assert_eq!(topic.stats().dropped_by, [("bridge-test".to_string(), 7)]);
    for i in 0..3 {
        assert_eq!(rx.recv().await, Some(range(i)));
    }
    // Drained, it takes messages again.
    topic.publish(range(10));
    assert_eq!(rx.recv().await, Some(range(10)));
    assert_eq!(counters.stats().dropped, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_export_stops_the_flow() {
    let socket = Socket::new();
    let (parent, child) = pair(&socket).await;
    let (up, down) = (Bus::new(64), Bus::new(64));
    let _ranges = child.import(&down.range).await.unwrap();
    let _lines = child.import(&down.line).await.unwrap();
    let range_out = parent.export(&up.range).await.unwrap();
    let line_out = parent.export(&up.line).await.unwrap();
    range_out.wait_matched(WAIT).await.unwrap();
    line_out.wait_matched(WAIT).await.unwrap();
    let mut ranges = collect(&down.range);
    let mut lines = collect(&down.line);

    up.range.publish(range(1));
    assert_eq!(next(&mut ranges).await, range(1));
    drop(range_out);
    // Nobody local takes range any more: the bridge's subscription is gone.
    assert_eq!(up.range.publish(range(2)), 0);
    assert!(up.range.stats().dropped_by.is_empty());
    // A message on a topic still exported, sent after, arrives; range(2) never does.
    let line = crate::bus::Line {
        t_us: 3,
        raw: [1, 2, 3],
    };
    up.line.publish(line);
    assert_eq!(next(&mut lines).await, line);
    assert!(ranges.try_recv().is_err());
    assert_eq!(stats_of(&parent, "range", Direction::Export).messages, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_where_nobody_listens_names_the_socket() {
    let socket = Socket::new();
    let err = Bridge::connect(&socket.0, PREFIX).await.err().unwrap();
    assert!(matches!(err, BridgeError::NoListener { .. }), "{err}");
    assert!(
        err.to_string().contains(&*socket.0.to_string_lossy()),
        "{err}"
    );
    // A stale socket file with nobody behind it: the same.
    drop(std::os::unix::net::UnixListener::bind(&socket.0).unwrap());
    let err = Bridge::connect(&socket.0, PREFIX).await.err().unwrap();
    assert!(matches!(err, BridgeError::NoListener { .. }), "{err}");
    // The parent's end removes that stale file and listens.
    let _parent = Bridge::listen(&socket.0, PREFIX).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_and_runtimes_are_checked() {
    let socket = Socket::new();
    for bad in [
        "", "nevil/*", "nevil/$x", "a#b", "a?", "/nevil", "nevil/", "a//b",
    ] {
        let err = Bridge::listen(&socket.0, bad).await.err().unwrap();
        assert!(matches!(err, BridgeError::Prefix { .. }), "{bad:?}: {err}");
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    assert!(check_topic("range").is_ok());
    assert!(check_topic("a/b").is_err());
    // Zenoh blocks in place on close: a current-thread runtime is refused up front.
    let path = socket.0.clone();
    let err = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(Bridge::listen(&path, PREFIX)).err().unwrap()
    })
    .join()
    .unwrap();
    assert!(matches!(err, BridgeError::Runtime(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_count_each_topic_and_direction() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // This thread runs the test's body, where the counters are registered.
    let _guard = metrics::set_default_local_recorder(&recorder);
    let socket = Socket::new();
    let (parent, child) = pair(&socket).await;
    let (up, down) = (Bus::new(64), Bus::new(64));
    let _import = child.import(&down.command).await.unwrap();
    let export = parent.export(&up.command).await.unwrap();
    export.wait_matched(WAIT).await.unwrap();
    let mut at_child = collect(&down.command);
    up.command.publish(command(1));
    next(&mut at_child).await;
    parent
        .session
        .put(format!("{PREFIX}/command"), vec![0u8])
        .await
        .unwrap();
    until("the bad frame counted", || {
        stats_of(&child, "command", Direction::Import).rejected_decode == 1
    })
    .await;
    // The sender counts after its put returns: wait for that too.
    until("the export counted", || {
        stats_of(&parent, "command", Direction::Export).messages == 1
    })
    .await;
    let recorded = crate::core::metrics::recorded(&snapshotter);
    let value = |name: &str| {
        recorded
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("{name} not in {recorded:?}"))
    };
    let one = &DebugValue::Counter(1);
    let zero = &DebugValue::Counter(0);
    assert_eq!(
        value("nevil_bridge_messages_total{topic=command,direction=export}"),
        one
    );
    assert_eq!(
        value("nevil_bridge_messages_total{topic=command,direction=import}"),
        one
    );
    assert_eq!(
        value("nevil_bridge_rejected_total{topic=command,reason=decode}"),
        one
    );
    assert_eq!(
        value("nevil_bridge_rejected_total{topic=command,reason=schema}"),
        zero
    );
    assert_eq!(value("nevil_bridge_dropped_total{topic=command}"), zero);
}
