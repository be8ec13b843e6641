//! What the child does between `fork` and `exec`: its own process group, death with its
//! parent, its address-space limit, and joining the jail's cgroups. And the thread that
//! forks it.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends, not the process.
//! A child forked on a tokio blocking-pool thread (or a worker given up by
//! `block_in_place`) would be killed when that thread retires after idling. So every
//! child is forked by one thread kept for the life of the process (`nevil-spawner`),
//! inside the caller's runtime (its handle), and the parent-death signal means what it
//! says: the child dies when this process dies.
//!
//! That code runs in the forked child of a multi-threaded parent, where only
//! async-signal-safe calls are allowed: no allocation, no locks. Everything it needs (the
//! `cgroup.procs` paths as C strings, the limit, the parent's pid) is built before the
//! fork; the child writes `0` ("the writing process") to each `cgroup.procs`, so it need
//! not even format its own pid.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Mutex;

/// One spawn for the spawner thread: the command, the runtime the child is reaped by,
/// and where the result goes.
struct Request {
    cmd: tokio::process::Command,
    runtime: tokio::runtime::Handle,
    reply: mpsc::SyncSender<io::Result<tokio::process::Child>>,
}

/// The spawner thread's queue, once it is started. Never dropped: the thread lives as
/// long as the process.
static SPAWNER: Mutex<Option<mpsc::Sender<Request>>> = Mutex::new(None);

/// Spawns `cmd` on the spawner thread, in the caller's tokio runtime, and waits for it
/// (as `Command::spawn` does: until the child has `exec`ed or failed to).
pub(super) fn spawn(cmd: tokio::process::Command) -> io::Result<tokio::process::Child> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
        io::Error::other(format!(
            "a jail spawns its child inside a tokio runtime: {e}"
        ))
    })?;
    let gone = || io::Error::other("the nevil-spawner thread is gone");
    let (reply, result) = mpsc::sync_channel(1);
    spawner()?
        .send(Request {
            cmd,
            runtime,
            reply,
        })
        .map_err(|_| gone())?;
    result.recv().map_err(|_| gone())?
}

/// The spawner thread's queue, starting the thread the first time.
fn spawner() -> io::Result<mpsc::Sender<Request>> {
    let mut slot = SPAWNER.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(tx) = slot.as_ref() {
        return Ok(tx.clone());
    }
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("nevil-spawner".into())
        .spawn(move || {
            for Request {
                mut cmd,
                runtime,
                reply,
            } in rx
            {
                let _entered = runtime.enter();
                let _ = reply.send(cmd.spawn());
            }
        })?;
    *slot = Some(tx.clone());
    Ok(tx)
}

/// Installs the pre-exec hook on `cmd`: `setpgid(0, 0)`, `PR_SET_PDEATHSIG` = `SIGKILL`
/// (failing if the parent is already gone), `RLIMIT_AS` = `rlimit_as` if given, then a
/// write of `0` to every path in `procs`. Any failure fails the spawn with its errno.
pub(super) fn prepare(
    cmd: &mut tokio::process::Command,
    procs: &[PathBuf],
    rlimit_as: Option<u64>,
) -> io::Result<()> {
    let paths = procs
        .iter()
        .map(|p| {
            CString::new(p.as_os_str().as_bytes()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cgroup path {} holds a NUL byte", p.display()),
                )
            })
        })
        .collect::<io::Result<Vec<CString>>>()?;
    let parent = libc::pid_t::try_from(std::process::id())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "our pid exceeds pid_t"))?;
    let limit = rlimit_as.map(|bytes| libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    });
    // SAFETY: the closure runs in the child after fork, before exec. It calls only
    // async-signal-safe system calls (setpgid, prctl, getppid, setrlimit, open, write,
    // close) on data built before the fork (`paths`, `limit`, `parent`), iterates a
    // vector it does not grow, and builds errors with `from_raw_os_error` /
    // `last_os_error`, which do not allocate. It takes no lock and allocates nothing.
    unsafe {
        cmd.pre_exec(move || in_child(&paths, limit.as_ref(), parent));
    }
    Ok(())
}

/// The child's side; see [`prepare`]. Only async-signal-safe calls.
fn in_child(
    paths: &[CString],
    limit: Option<&libc::rlimit>,
    parent: libc::pid_t,
) -> io::Result<()> {
    // SAFETY (each block): plain system calls with integer arguments or pointers to data
    // that outlives the call (`limit`, the C strings, a static byte).
    if unsafe { libc::setpgid(0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The parent may have died before the prctl: then no signal will ever come.
    if unsafe { libc::getppid() } != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    if let Some(limit) = limit {
        if unsafe { libc::setrlimit(libc::RLIMIT_AS, limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    for path in paths {
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        let err = io::Error::last_os_error();
        unsafe { libc::close(fd) };
        if written != 1 {
            return Err(err);
        }
    }
    Ok(())
}
