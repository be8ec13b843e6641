//! Choosing a jail's backend: which cgroup hierarchies are mounted, where this process
//! sits in them, and whether a jail can be made there.
//!
//! cgroupfs is driven through its files rather than the `cgroups-rs` crate (0.5): that
//! crate always builds a D-Bus client (`zbus`) for its systemd manager, looks for the
//! unified hierarchy at the fixed `/sys/fs/cgroup` (no root of our own for tests or an
//! operator), and joins a task to a cgroup from the parent after it started, while a
//! jail's child must join before `exec` from an allocation-free pre-exec hook. What a
//! jail needs is a dozen files.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::files;
use super::{v1, v2, Backend, JailLimits};

/// Where cgroup file systems are mounted unless [`super::Jail::with_root`] says otherwise.
pub(super) const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// The leaf a process moves itself into under v2 so that its own cgroup may hand
/// controllers to the jails ("no internal processes").
pub(super) const LEAF: &str = "supervisor";

/// One line of `/proc/self/mountinfo`, the fields a jail needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mount {
    /// The directory of the hierarchy that is mounted (field 4; `/` unless bind-mounted
    /// or seen from a cgroup namespace).
    pub(super) root: String,
    /// Where it is mounted (field 5).
    pub(super) point: PathBuf,
    /// `cgroup`, `cgroup2`, ...
    pub(super) fstype: String,
    /// The super-block options: the v1 controllers of a `cgroup` mount.
    pub(super) options: Vec<String>,
}

/// Parses `/proc/self/mountinfo`; malformed lines are skipped.
pub(super) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?.to_string();
            let _source = right.next()?;
            let options = right
                .next()
                .unwrap_or("")
                .split(',')
                .map(String::from)
                .collect();
            Some(Mount {
                root: unescape(left.get(3)?),
                point: PathBuf::from(unescape(left.get(4)?)),
                fstype,
                options,
            })
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/cgroup` into (controllers, path) pairs: `4:memory:/a` gives
/// `(["memory"], "/a")`, the v2 line `0::/b` gives `([], "/b")`.
pub(super) fn parse_self_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?.to_string();
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect();
            Some((controllers, path))
        })
        .collect()
}

/// The directory of our own cgroup in `mount`: its mount point plus our path relative
/// to the mounted root. `None` if our path lies outside what is mounted there.
pub(super) fn own_dir(mount: &Mount, own: &str) -> Option<PathBuf> {
    let rel = Path::new(own).strip_prefix(&mount.root).ok()?;
    Some(mount.point.join(rel))
}

/// The mounts of `fstype` at or under `root`.
fn mounts_under<'a>(
    mounts: &'a [Mount],
    root: &'a Path,
    fstype: &'a str,
) -> impl Iterator<Item = &'a Mount> {
    mounts
        .iter()
        .filter(move |m| m.fstype == fstype && m.point.starts_with(root))
}

/// Picks the backend for a jail named `name` under `root`: v2, else v1, else signals
/// with the reasons the others failed.
pub(super) fn choose(root: &Path, name: &str, limits: &JailLimits) -> (Backend, Option<String>) {
    if let Err(why) = check_name(name) {
        return (Backend::Signals, Some(why));
    }
    let mountinfo = files::read(Path::new("/proc/self/mountinfo")).unwrap_or_default();
    let mounts = parse_mountinfo(&mountinfo);
    let selfcg =
        parse_self_cgroup(&files::read(Path::new("/proc/self/cgroup")).unwrap_or_default());
    let v2_why = match make_v2(root, &mounts, &selfcg, name, limits) {
        Ok(g) => return (Backend::V2(g), None),
        Err(why) => why,
    };
    let v1_why = match make_v1(root, &mounts, &selfcg, name, limits) {
        Ok(g) => return (Backend::V1(g), None),
        Err(why) => why,
    };
    (
        Backend::Signals,
        Some(format!("cgroup v2: {v2_why}; cgroup v1: {v1_why}")),
    )
}

/// A jail's name becomes a directory name: one plain path component.
fn check_name(name: &str) -> Result<(), String> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) if !name.contains('/') => Ok(()),
        _ => Err(format!("jail name {name:?} is not a plain directory name")),
    }
}

fn make_v2(
    root: &Path,
    mounts: &[Mount],
    selfcg: &[(Vec<String>, String)],
    name: &str,
    limits: &JailLimits,
) -> Result<v2::Group, String> {
    let mount = mounts_under(mounts, root, "cgroup2")
        .next()
        .ok_or_else(|| format!("no cgroup2 file system mounted under {}", root.display()))?;
    let own = selfcg
        .iter()
        .find(|(c, _)| c.is_empty())
        .and_then(|(_, path)| own_dir(mount, path))
        .ok_or_else(|| format!("this process is in no cgroup of {}", mount.point.display()))?;
    let parent = prepare_v2(mount, &own)?;
    let dir = make_dir(&parent.join(name))?;
    let group = v2::Group::at(dir);
    let undo = |why: String| {
        group.remove();
        why
    };
    for file in ["cgroup.freeze", "cpu.max", "memory.max"] {
        if !group.dir().join(file).exists() {
            return Err(undo(format!("{} has no {file}", group.dir().display())));
        }
    }
    if let Some(bytes) = limits.memory_max {
        group.limit_memory(bytes).map_err(|e| undo(e.to_string()))?;
    }
    Ok(group)
}

/// Own cgroups already prepared by this process: the leaf it moved into → the directory
/// its jails go in. A second jail finds itself in the leaf and must not nest again.
static PREPARED: Mutex<Option<HashMap<PathBuf, PathBuf>>> = Mutex::new(None);

/// Makes `own` able to hold jails with the cpu and memory controllers, once per process:
/// enables `+cpu +memory` in its `cgroup.subtree_control`, first moving this process into
/// the leaf `own/supervisor` if the kernel refuses because we are in `own` ourselves.
/// Returns the directory the jails go in.
fn prepare_v2(mount: &Mount, own: &Path) -> Result<PathBuf, String> {
    let mut prepared = PREPARED.lock().unwrap_or_else(|p| p.into_inner());
    let prepared = prepared.get_or_insert_with(HashMap::new);
    if let Some(parent) = prepared.get(own) {
        return Ok(parent.clone());
    }
    let available = files::read(&own.join("cgroup.controllers")).unwrap_or_default();
    let missing: Vec<&str> = ["cpu", "memory"]
        .into_iter()
        .filter(|c| !available.split_whitespace().any(|a| a == *c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} offers the controllers [{}], not {}",
            own.display(),
            available.trim(),
            missing.join(" and ")
        ));
    }
    let control = own.join("cgroup.subtree_control");
    let enabled =
        |c: &str| files::read(&control).is_some_and(|t| t.split_whitespace().any(|e| e == c));
    if enabled("cpu") && enabled("memory") {
        prepared.insert(own.to_path_buf(), own.to_path_buf());
        return Ok(own.to_path_buf());
    }
    if let Err(first) = files::write(&control, "+cpu +memory") {
        if own == mount.point {
            return Err(first.to_string());
        }
        // "No internal processes": move ourselves into a leaf, then retry.
        let leaf = make_dir_keep(&own.join(LEAF))?;
        files::write(&leaf.join("cgroup.procs"), "0").map_err(|e| e.to_string())?;
        files::write(&control, "+cpu +memory")
            .map_err(|e| format!("{e} (after moving this process to {})", leaf.display()))?;
        prepared.insert(leaf, own.to_path_buf());
    }
    prepared.insert(own.to_path_buf(), own.to_path_buf());
    Ok(own.to_path_buf())
}

fn make_v1(
    root: &Path,
    mounts: &[Mount],
    selfcg: &[(Vec<String>, String)],
    name: &str,
    limits: &JailLimits,
) -> Result<v1::Groups, String> {
    let mut dirs = Vec::new();
    for controller in ["cpu", "cpuacct", "memory", "freezer"] {
        let mount = mounts_under(mounts, root, "cgroup")
            .find(|m| m.options.iter().any(|o| o == controller))
            .ok_or_else(|| format!("no {controller} hierarchy mounted under {}", root.display()))?;
        let own = selfcg
            .iter()
            .find(|(c, _)| c.iter().any(|c| c == controller))
            .and_then(|(_, path)| own_dir(mount, path))
            .ok_or_else(|| format!("this process is in no cgroup of {}", mount.point.display()))?;
        dirs.push(own.join(name));
    }
    let groups = v1::Groups {
        cpu: dirs[0].clone(),
        cpuacct: dirs[1].clone(),
        memory: dirs[2].clone(),
        freezer: dirs[3].clone(),
    };
    let mut made = Vec::new();
    for dir in groups.dirs() {
        match make_dir(&dir) {
            Ok(d) => made.push(d),
            Err(why) => {
                made.iter().for_each(|d| files::remove_dir(d));
                return Err(why);
            }
        }
    }
    if let Some(bytes) = limits.memory_max {
        if let Err(e) = groups.limit_memory(bytes) {
            groups.remove();
            return Err(e.to_string());
        }
    }
    Ok(groups)
}

/// Makes the cgroup directory `dir`. One left over (a previous process of the same pid
/// that died without removing it) is removed first if it is empty.
fn make_dir(dir: &Path) -> Result<PathBuf, String> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_dir(dir)
                .and_then(|()| std::fs::create_dir(dir))
                .map_err(|e| format!("cannot make {} (left over, in use?): {e}", dir.display()))?;
        }
        Err(e) => return Err(format!("cannot make {}: {e}", dir.display())),
        Ok(()) => {}
    }
    Ok(dir.to_path_buf())
}

/// Makes `dir` unless it exists.
fn make_dir_keep(dir: &Path) -> Result<PathBuf, String> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(dir.to_path_buf()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(dir.to_path_buf()),
        Err(e) => Err(format!("cannot make {}: {e}", dir.display())),
    }
}

/// Whether a fallback was logged as a warning already in this process.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Logs why jail `name` fell back to signals: a warning the first time in a process,
/// a debug line after (every restart makes a new jail; the reason stays the same).
pub(super) fn warn_fallback(name: &str, reason: &str) {
    if WARNED.swap(true, Ordering::Relaxed) {
        tracing::debug!(
            jail = name,
            reason,
            "process isolation falls back to signals"
        );
    } else {
        tracing::warn!(
            jail = name,
            reason,
            "process isolation falls back to signals"
        );
    }
}
