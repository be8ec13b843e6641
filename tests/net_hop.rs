//! A message hop between two processes on two hosts: `nevil bench --echo` in one
//! network namespace, `nevil bench --hop` in another, across their veth link
//! (tests/util/netns.rs; loopback, saying why, when namespaces cannot be made). A short
//! run: that the two ends work and report sane figures (`scripts/net-hop` measures).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use util::netns::Lab;
use util::{nevil, output, text};

#[test]
fn hop_times_round_trips_to_an_echo_on_another_host() {
    let mut lab = Lab::new();
    if let Some(why) = lab.fallback() {
        eprintln!("net_hop: falling back to loopback: {why}");
    }
    let near = lab.host("near");
    let far = lab.host("far");
    let link = lab.link(&near, &far);

    let mut echo = far.spawn(nevil(&["bench", "--echo", &format!("tcp/{}:0", link.b)]));
    let line = echo.wait_for("echo listening on");
    let prefix = format!("tcp/{}:", link.b);
    let start = line.find(&prefix).expect("a locator on the link");
    let endpoint: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();

    let out = near
        .command(nevil(&[
            "bench", "--hop", &endpoint, "--hops", "200", "--json",
        ]))
        .output()
        .expect("run nevil bench --hop");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(report["endpoint"], endpoint.as_str());
    assert_eq!(report["round_trips"], 200);
    let f = |key: &str| report[key].as_f64().expect(key);
    assert!(f("round_trip_p50_us") > 0.0, "{report}");
    assert!(f("round_trip_p50_us") <= f("round_trip_p99_us"), "{report}");
    assert!((f("hop_p50_us") * 2.0 - f("round_trip_p50_us")).abs() < 1e-6);
    assert!((f("hop_p99_us") * 2.0 - f("round_trip_p99_us")).abs() < 1e-6);

    echo.signal("TERM");
    let (code, lines) = echo.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
}

#[test]
fn hop_without_an_echo_says_so_and_a_bad_endpoint_is_bad_input() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let out = output(&["bench", "--hop", &endpoint, "--hops", "1"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("no echo at {endpoint} within 10s")),
        "{stderr}"
    );

    let out = output(&["bench", "--hop", "127.0.0.1:7447"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nevil bench: --hop"), "{stderr}");
    let out = output(&[
        "bench",
        "--hop",
        "tcp/127.0.0.1:1",
        "--echo",
        "tcp/127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
