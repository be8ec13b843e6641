//! What the child does between `fork` and `exec`: its own process group, death with its
//! parent, its address-space limit, and joining the jail's cgroups.
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
