//! Mutual TLS between hosts: a robot (`nevil run` listening on `tls/`) lets in a node
//! whose certificate comes from its CA, and refuses (and logs) an impostor with another
//! CA's certificate and a plain-TCP peer. Robot and peers are hosts in network
//! namespaces (tests/util/netns.rs), or loopback when namespaces cannot be made.
//!
//! The robot also refuses (and logs) a node it connects to whose certificate is from
//! another CA.
//!
//! A peer is this test binary run again on its host (`ip netns exec`) as the ignored
//! test [`tls_peer`]: a Zenoh session of nevil's (`bus::net::open`), connecting or
//! listening, that prints `peer joined` once it has a peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use util::netns::{subnet, Host, Lab};
use util::pki::{Ca, Leaf};
use util::{nevil, scratch, Running};

/// What the peer prints once its session has a peer (the robot).
const JOINED: &str = "peer joined";

/// The port the robot listens on: its own in a namespace; on loopback one the system
/// gave free a moment ago (tests run side by side).
fn port(lab: &Lab) -> u16 {
    if lab.fallback().is_some() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        socket.local_addr().expect("address").port()
    } else {
        7447
    }
}

/// A lab, saying so when it fell back to loopback.
fn lab() -> Lab {
    let lab = Lab::new();
    if let Some(why) = lab.fallback() {
        eprintln!("net_tls: falling back to loopback: {why}");
    }
    lab
}

/// `nevil run` with the default config plus `zenoh` (a `[zenoh]` section and more),
/// started.
fn robot(host: &Host, dir: &Path, zenoh: &str) -> Running {
    let config = dir.join("robot.toml");
    let text = format!("{}\n{zenoh}", nevil::config::DEFAULT_TOML);
    std::fs::write(&config, text).expect("write config");
    let path = config.to_str().expect("utf-8 path");
    host.spawn(nevil(&["run", "--config", path]))
}

/// `[zenoh]` listening on `endpoint` with mutual TLS from `ca` and `leaf`.
fn tls_section(endpoint: &str, ca: &Path, leaf: &Leaf) -> String {
    format!(
        "[zenoh]\nlisten = [\"{endpoint}\"]\n\n[zenoh.tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \
         \"{}\"\n",
        ca.display(),
        leaf.cert.display(),
        leaf.key.display()
    )
}

/// A peer on `host` connecting to `endpoint`, with `tls` (CA, certificate) or plain.
fn peer(host: &Host, endpoint: &str, tls: Option<(&Path, &Leaf)>) -> Running {
    peer_at(host, ("NEVIL_TEST_PEER_CONNECT", endpoint), tls)
}

/// A peer on `host` listening on `endpoint` with `tls` (CA, certificate).
fn listening_peer(host: &Host, endpoint: &str, tls: (&Path, &Leaf)) -> Running {
    peer_at(host, ("NEVIL_TEST_PEER_LISTEN", endpoint), Some(tls))
}

/// The peer process, told where to connect or listen by `(variable, endpoint)`.
fn peer_at(host: &Host, (var, endpoint): (&str, &str), tls: Option<(&Path, &Leaf)>) -> Running {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--ignored", "--exact", "tls_peer", "--nocapture"])
        .env(var, endpoint);
    if let Some((ca, leaf)) = tls {
        cmd.env("NEVIL_TEST_PEER_CA", ca)
            .env("NEVIL_TEST_PEER_CERT", &leaf.cert)
            .env("NEVIL_TEST_PEER_KEY", &leaf.key);
    }
    host.spawn(cmd)
}

/// Stops `running` and returns every line it logged.
fn stop(running: Running) -> Vec<String> {
    running.signal("TERM");
    running.finish().1
}

/// The peer process of [`peer`] and [`listening_peer`] (run by the tests, not on its
/// own): opens a session to `NEVIL_TEST_PEER_CONNECT`, or listening on
/// `NEVIL_TEST_PEER_LISTEN`, and prints [`JOINED`] with the first peer it sees.
#[test]
#[ignore = "run by the other tests as a peer host"]
fn tls_peer() {
    let connect = std::env::var("NEVIL_TEST_PEER_CONNECT").ok();
    let listen = std::env::var("NEVIL_TEST_PEER_LISTEN").ok();
    let tls = std::env::var_os("NEVIL_TEST_PEER_CA").map(|ca| nevil::config::TlsConfig {
        ca: PathBuf::from(ca),
        cert: std::env::var_os("NEVIL_TEST_PEER_CERT")
            .expect("cert")
            .into(),
        key: std::env::var_os("NEVIL_TEST_PEER_KEY").expect("key").into(),
    });
    assert!(
        connect.is_some() || listen.is_some(),
        "NEVIL_TEST_PEER_CONNECT or NEVIL_TEST_PEER_LISTEN"
    );
    let zenoh = nevil::config::ZenohConfig {
        connect: connect.into_iter().collect(),
        listen: listen.into_iter().collect(),
        tls,
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let session = nevil::bus::net::open(&zenoh).await.expect("session");
        // Zenoh's stable API has no event for a new peer: look at the session's peers
        // until one is there (the test waits for the line, or kills this process).
        loop {
            if let Some(zid) = session.info().peers_zid().await.next() {
                eprintln!("{JOINED} {zid}");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn a_node_from_our_ca_joins_and_an_impostor_is_refused_and_logged() {
    let mut lab = lab();
    let robot_host = lab.host("robot");
    let node_host = lab.host("node");
    let link = lab.link(&robot_host, &node_host);
    let dir = scratch("net-tls-mtls");
    let ca = Ca::new(&dir, "fleet-ca");
    // The robot's certificate names its address: the node checks it reached the robot
    // it meant to (Zenoh's verify_name_on_connect stays on).
    let robot_leaf = ca.leaf("robot", &["robot".into(), link.a.to_string()]);
    let node_leaf = ca.leaf("node", &["node".into(), link.b.to_string()]);
    let other = Ca::new(&dir, "other-ca");
    let impostor_leaf = other.leaf("impostor", &["impostor".into(), link.b.to_string()]);

    let endpoint = format!("tls/{}:{}", link.a, port(&lab));
    let mut robot = robot(
        &robot_host,
        &dir,
        &tls_section(&endpoint, &ca.cert, &robot_leaf),
    );

    let node = peer(&node_host, &endpoint, Some((&ca.cert, &node_leaf)));
    let (code, lines) = node.finish();
    assert_eq!(
        code,
        Some(0),
        "the node did not join:\n{}",
        lines.join("\n")
    );
    assert!(lines.iter().any(|l| l.contains(JOINED)), "{lines:?}");

    // The impostor trusts our CA (it is no secret) but shows a certificate of its own
    // CA's: the robot refuses it, on every retry.
    let impostor = peer(&node_host, &endpoint, Some((&ca.cert, &impostor_leaf)));
    for _ in 0..2 {
        let line = robot.wait_for("zenoh refused a peer");
        assert!(line.contains("certificate not from our CA"), "{line}");
    }
    let lines = stop(impostor);
    assert!(!lines.iter().any(|l| l.contains(JOINED)), "{lines:?}");

    // A stranger from another fleet (its CA only) does not trust the robot either: the
    // handshake fails on its side first, and the robot logs that too.
    let stranger = peer(&node_host, &endpoint, Some((&other.cert, &impostor_leaf)));
    let line = robot.wait_for("zenoh refused a peer");
    assert!(
        line.contains("the peer does not trust our certificate"),
        "{line}"
    );
    let lines = stop(stranger);
    assert!(!lines.iter().any(|l| l.contains(JOINED)), "{lines:?}");

    let log = stop(robot);
    assert!(
        !log.iter().any(|l| l.contains("open file limit")),
        "zenoh's misleading line is replaced by ours:\n{}",
        log.join("\n")
    );
    assert!(
        log.iter()
            .any(|l| l.contains("zenoh listens beyond loopback (mutual TLS)"))
            || lab.fallback().is_some()
    );
}

#[test]
fn a_node_the_robot_connects_to_with_another_cas_certificate_is_refused_and_logged() {
    let mut lab = lab();
    let robot_host = lab.host("robot");
    let node_host = lab.host("node");
    let link = lab.link(&robot_host, &node_host);
    let dir = scratch("net-tls-connect");
    let ca = Ca::new(&dir, "fleet-ca");
    let robot_leaf = ca.leaf("robot", &["robot".into(), link.a.to_string()]);
    let other = Ca::new(&dir, "other-ca");
    // The node trusts our CA but shows its own CA's certificate (with the right name).
    let impostor_leaf = other.leaf("impostor", &["impostor".into(), link.b.to_string()]);
    let endpoint = format!("tls/{}:{}", link.b, port(&lab));
    let node = listening_peer(&node_host, &endpoint, (&ca.cert, &impostor_leaf));

    let tls = tls_section(&endpoint, &ca.cert, &robot_leaf).replace("listen = ", "connect = ");
    let mut robot = robot(&robot_host, &dir, &tls);
    // The robot's connector retries the node (every second at most): refused each time.
    for _ in 0..2 {
        let line = robot.wait_for("zenoh refused a peer");
        assert!(line.contains("certificate not from our CA"), "{line}");
        assert!(line.contains(&endpoint), "the line names the node: {line}");
        assert!(line.contains("UnknownIssuer"), "zenoh's detail: {line}");
    }
    let lines = stop(node);
    assert!(!lines.iter().any(|l| l.contains(JOINED)), "{lines:?}");
    let log = stop(robot);
    // Zenoh's connector debug lines feed the refusal but stay out of the log.
    assert!(
        !log.iter()
            .any(|l| l.contains("DEBUG") || l.contains("Unable to connect to configured peer")),
        "{}",
        log.join("\n")
    );
}

#[test]
fn a_plain_tcp_peer_is_refused_by_a_tls_listener() {
    let mut lab = lab();
    let robot_host = lab.host("robot");
    let node_host = lab.host("node");
    let link = lab.link(&robot_host, &node_host);
    let dir = scratch("net-tls-plain");
    let ca = Ca::new(&dir, "fleet-ca");
    let robot_leaf = ca.leaf("robot", &["robot".into(), link.a.to_string()]);
    let port = port(&lab);
    let mut robot = robot(
        &robot_host,
        &dir,
        &tls_section(&format!("tls/{}:{port}", link.a), &ca.cert, &robot_leaf),
    );
    let plain = peer(&node_host, &format!("tcp/{}:{port}", link.a), None);
    let line = robot.wait_for("zenoh refused a peer");
    assert!(line.contains("not TLS"), "{line}");
    let lines = stop(plain);
    assert!(!lines.iter().any(|l| l.contains(JOINED)), "{lines:?}");
    stop(robot);
}

#[test]
fn the_default_robot_listens_on_nothing_but_its_http_endpoint() {
    let mut lab = lab();
    let host = lab.host("robot");
    let mut robot = host.spawn(nevil(&["run"]));
    let http = robot.http_base();
    let http_addr = http.trim_start_matches("http://").to_string();
    assert_eq!(listening(robot.pid()), [http_addr]);
    let log = stop(robot);
    assert!(
        !log.iter().any(|l| l.contains("zenoh")),
        "{}",
        log.join("\n")
    );
}

#[test]
fn listening_beyond_loopback_without_tls_warns_at_start() {
    let mut lab = lab();
    let host = lab.host("robot");
    let dir = scratch("net-tls-warn");
    let mut robot = robot(&host, &dir, "[zenoh]\nlisten = [\"tcp/0.0.0.0:0\"]\n");
    let line = robot.wait_for("without TLS");
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("anyone on the network may join"), "{line}");
    robot.wait_for("http endpoint listening");
    stop(robot);
}

/// Every TCP socket process `pid` listens on and every UDP socket it has bound, as
/// `a.b.c.d:port` (IPv6 ones as /proc writes them), read from /proc: its socket inodes,
/// and the sockets of its namespace.
fn listening(pid: u32) -> Vec<String> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the robot's fds");
    let inodes: Vec<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut out = Vec::new();
    for (table, state) in [("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == state && inodes.iter().any(|i| i == f[9]) {
                out.push(socket_address(f[1]));
            }
        }
    }
    out
}

/// /proc/net's `0100007F:1F90` as `127.0.0.1:8080` (IPv6 addresses stay as they are).
fn socket_address(hex: &str) -> String {
    let (ip, port) = hex.split_once(':').unwrap_or((hex, "0"));
    let port = u16::from_str_radix(port, 16).unwrap_or(0);
    match u32::from_str_radix(ip, 16) {
        Ok(ip) if ip_is_v4(hex) => format!("{}:{port}", std::net::Ipv4Addr::from(ip.swap_bytes())),
        _ => format!("{ip}:{port}"),
    }
}

fn ip_is_v4(hex: &str) -> bool {
    hex.find(':') == Some(8)
}

#[test]
fn proc_net_addresses_read_as_ip_and_port() {
    assert_eq!(socket_address("0100007F:1F90"), "127.0.0.1:8080");
    assert_eq!(socket_address("00000000:0000"), "0.0.0.0:0");
    let v6 = "00000000000000000000000001000000:1F90";
    assert_eq!(socket_address(v6), format!("{}:8080", &v6[..32]));
}

#[test]
fn a_lab_leaves_nothing_behind_when_its_test_fails() {
    let made = std::sync::Mutex::new(None);
    let failed = std::panic::catch_unwind(|| {
        let mut lab = lab();
        let a = lab.host("a");
        let b = lab.host("b");
        let link = lab.link(&a, &b);
        let mut robot = a.spawn(nevil(&["run"]));
        robot.http_base();
        if lab.fallback().is_none() {
            link.down().expect("partition");
            link.up().expect("heal");
        } else {
            assert!(link.down().is_err(), "loopback cannot be partitioned");
        }
        let names: Vec<String> = [&a, &b]
            .iter()
            .filter_map(|h| h.netns())
            .map(String::from)
            .collect();
        *made.lock().unwrap() = Some((names, robot.pid()));
        panic!("the test fails with a robot running in its namespace");
    });
    assert!(failed.is_err());
    let (names, pid) = made.lock().unwrap().take().expect("the lab was made");
    let list = Command::new("ip").args(["netns", "list"]).output();
    let list = list
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for name in &names {
        assert!(!list.contains(name.as_str()), "{name} is left:\n{list}");
    }
    if !names.is_empty() {
        // Killed: gone, or a zombie until this process reaps it.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map_or("", |(_, rest)| &rest[..1]);
        assert!(
            stat.is_empty() || state == "Z",
            "the robot still runs: {stat}"
        );
    } else {
        // On loopback the lab kills nothing: the test's own robot is stopped here.
        Command::new("kill")
            .arg(pid.to_string())
            .status()
            .expect("kill");
    }
}

#[test]
fn subnets_are_private_and_distinct_per_link_and_process() {
    let (a, b) = subnet(4242, 0);
    assert!(a.is_private() && b.is_private());
    assert_eq!(u32::from(b) - u32::from(a), 1);
    assert_eq!(u32::from(a) & 3, 1, "{a} is the first host of a /30");
    assert_ne!(subnet(4242, 1).0, a);
    assert_ne!(subnet(4243, 0).0, a);
}
