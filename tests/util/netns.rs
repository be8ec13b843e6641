//! Hosts on one machine for multi-host tests: each [`Host`] is a network namespace made
//! by the test, each [`Link`] a veth pair between two of them with addresses in a
//! private /30 (traffic stays inside the namespaces the test made). A link can be taken
//! down and brought back (a partition and its healing). Everything is deleted when the
//! [`Lab`] is dropped, also when the test fails: the processes still running in its
//! namespaces are killed (by pid), then the namespaces (and with them the veths).
//!
//! Namespaces need root and `ip` (iproute2). Without them [`Lab::new`] says why and
//! every host is this machine's loopback ([`Lab::fallback`]); a test prints that it fell
//! back, and cannot partition.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::Running;

/// Numbers labs, hosts and links of this process: names unique per test and process.
static NEXT: AtomicU32 = AtomicU32::new(0);

fn next() -> u32 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `ip args`; what failed, if it did.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The hosts and links of one test.
pub struct Lab {
    /// This lab's tag in namespace and interface names (`nv<pid>x<n>`).
    tag: String,
    /// Why there are no namespaces (`None` when there are).
    fallback: Option<String>,
    /// The namespaces made, to delete on drop.
    namespaces: Vec<String>,
}

impl Lab {
    /// A lab for one test: namespaces when this machine allows them (checked by making
    /// one), else loopback with the reason in [`Lab::fallback`].
    pub fn new() -> Self {
        let mut lab = Self {
            tag: format!("nv{}x{}", std::process::id(), next()),
            fallback: None,
            namespaces: Vec::new(),
        };
        let probe = format!("{}probe", lab.tag);
        match ip(&["netns", "add", &probe]) {
            Ok(()) => {
                let _ = ip(&["netns", "del", &probe]);
            }
            Err(why) => {
                let uid = Command::new("id")
                    .arg("-u")
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .unwrap_or_default();
                lab.fallback = Some(format!(
                    "no network namespaces (uid {uid}; namespaces need root and iproute2): {why}"
                ));
            }
        }
        lab
    }

    /// Why the hosts are loopback instead of namespaces, if they are.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// A new host named `name` (a namespace with its loopback up, or this machine).
    ///
    /// # Panics
    ///
    /// If the namespace cannot be made although the probe could (a test harness error).
    pub fn host(&mut self, name: &str) -> Host {
        if self.fallback.is_some() {
            return Host {
                name: name.into(),
                netns: None,
            };
        }
        let netns = format!("{}-{name}", self.tag);
        ip(&["netns", "add", &netns]).unwrap_or_else(|e| panic!("{e}"));
        self.namespaces.push(netns.clone());
        ip(&["-n", &netns, "link", "set", "lo", "up"]).unwrap_or_else(|e| panic!("{e}"));
        Host {
            name: name.into(),
            netns: Some(netns),
        }
    }

    /// A link between `a` and `b`: a veth pair, `a` at the /30's first address and `b`
    /// at its second, both up. On loopback both ends are 127.0.0.1.
    ///
    /// # Panics
    ///
    /// If `ip` fails on a namespace this lab made (a test harness error).
    pub fn link(&mut self, a: &Host, b: &Host) -> Link {
        let n = next();
        let (Some(na), Some(nb)) = (&a.netns, &b.netns) else {
            return Link {
                a: Ipv4Addr::LOCALHOST,
                b: Ipv4Addr::LOCALHOST,
                ends: None,
            };
        };
        let (addr_a, addr_b) = subnet(std::process::id(), n);
        // Interface names have at most 15 bytes; they live inside the namespaces, so
        // they only need to be unique on the root namespace while being moved.
        let (va, vb) = (
            format!("nv{:x}l{n}a", std::process::id()),
            format!("nv{:x}l{n}b", std::process::id()),
        );
        let run = |args: &[&str]| ip(args).unwrap_or_else(|e| panic!("{e}"));
        run(&[
            "link", "add", &va, "netns", na, "type", "veth", "peer", "name", &vb, "netns", nb,
        ]);
        for (ns, dev, addr) in [(na, &va, addr_a), (nb, &vb, addr_b)] {
            run(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev]);
            run(&["-n", ns, "link", "set", dev, "up"]);
        }
        Link {
            a: addr_a,
            b: addr_b,
            ends: Some([(na.clone(), va), (nb.clone(), vb)]),
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            // The processes a test started in its namespace (a failing test leaves them
            // running): a namespace is only gone once nothing runs in it.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// The /30 of link `n` of process `pid`: `10.a.b.c+1` and `10.a.b.c+2`. Distinct for
/// the first 64 links of processes whose pids differ modulo 2^16 (and namespaces keep
/// links apart anyway: each pair of addresses is only ever on its own veth).
pub fn subnet(pid: u32, n: u32) -> (Ipv4Addr, Ipv4Addr) {
    let index = ((pid & 0xffff) << 6) | (n & 0x3f);
    let base = (10u32 << 24) | (index << 2);
    (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
}

/// A host: a namespace of the test's, or this machine when the lab fell back.
pub struct Host {
    name: String,
    netns: Option<String>,
}

impl Host {
    /// The host's name in the test.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace, when the host is one.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// `cmd` to run on this host: behind `ip netns exec NAME` (same program, arguments,
    /// environment and directory), or as it is on loopback.
    pub fn command(&self, cmd: Command) -> Command {
        let Some(ns) = &self.netns else {
            return cmd;
        };
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", ns])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => wrapped.env(key, v),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }

    /// Starts `cmd` (e.g. [`super::nevil`]`(["run", …])`) on this host; `ip netns exec`
    /// execs it, so the pid is the command's own.
    pub fn spawn(&self, cmd: Command) -> Running {
        Running::spawn(self.command(cmd))
    }
}

/// A veth pair between two hosts.
pub struct Link {
    /// The first host's address on this link.
    pub a: Ipv4Addr,
    /// The second host's address.
    pub b: Ipv4Addr,
    /// Each end: its namespace and interface (`None` on loopback).
    ends: Option<[(String, String); 2]>,
}

impl Link {
    /// Takes both ends down: nothing passes between the hosts (a partition).
    ///
    /// # Errors
    ///
    /// On loopback (nothing to take down), or when `ip` fails.
    pub fn down(&self) -> Result<(), String> {
        self.set("down")
    }

    /// Brings both ends back up (the partition heals).
    ///
    /// # Errors
    ///
    /// On loopback, or when `ip` fails.
    pub fn up(&self) -> Result<(), String> {
        self.set("up")
    }

    fn set(&self, state: &str) -> Result<(), String> {
        let ends = self
            .ends
            .as_ref()
            .ok_or("the hosts share loopback: there is no link to take down")?;
        for (ns, dev) in ends {
            ip(&["-n", ns, "link", "set", dev, state])?;
        }
        Ok(())
    }
}
