//! systemd's service notifications (`sd_notify(3)`) for the `Type=notify` unit in
//! `deploy/nevil.service`.
//!
//! What nevil tells systemd, in this order:
//! - `READY=1` once the whole actor tree has started ([`Service::ready`]);
//! - `WATCHDOG=1` every half `WatchdogSec=` (systemd passes it as `WATCHDOG_USEC`), but
//!   only while the root supervisor is running ([`root_running`]). A root that gave up
//!   or a wedged runtime sends no more pings, so systemd kills and restarts the process;
//! - `STOPPING=1` when graceful shutdown begins ([`Service::stopping`]); the watchdog
//!   pings end before it.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset or empty) nothing is sent. The sockets are
//! non-blocking, so a service manager that stops reading cannot stall the robot: the
//! send fails and is logged instead.
//!
//! The message vocabulary and the `WATCHDOG_USEC`/`WATCHDOG_PID` rules come from the
//! `sd-notify` crate. Its `notify` reads the environment on each call, so [`Notifier`]
//! sends itself, to an address given explicitly ([`Notifier::new`]): tests point it at a
//! socket of their own without touching the process environment.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::future::Future;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use nevil_actors::{Status, Tree};
use sd_notify::NotifyState;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::ops::health;

/// A notification that could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("systemd notify socket {socket}: {source}")]
pub struct NotifyError {
    /// The socket, as `NOTIFY_SOCKET` names it (`@name` for an abstract socket).
    pub socket: String,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Sends notifications to the service manager's socket. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Unbound and unconnected: the address is resolved on every send, as libsystemd
    /// does, so a re-executed systemd that bound its socket anew is still reached.
    socket: UnixDatagram,
    addr: SocketAddr,
    name: String,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier systemd asks for through `NOTIFY_SOCKET`, with the watchdog of
    /// `WATCHDOG_USEC` (ignored when `WATCHDOG_PID` names another process); `None` when
    /// not run by systemd as a notify service.
    ///
    /// # Errors
    ///
    /// [`NotifyError`] if the socket address is unusable.
    pub fn from_env() -> Result<Option<Self>, NotifyError> {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(socket) if !socket.is_empty() => {
                Self::new(&socket, sd_notify::watchdog_enabled()).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// A notifier for `socket` (a path, or `@name` for an abstract socket) with the
    /// watchdog timeout `watchdog` (`WatchdogSec=`; `None` or zero: no watchdog).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("nevil-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let path = dir.join("notify.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let manager = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    /// let notifier = nevil::ops::systemd::Notifier::new(&path, None).unwrap();
    /// notifier.ready().unwrap();
    /// let mut buf = [0; 64];
    /// let n = manager.recv(&mut buf).unwrap();
    /// assert_eq!(&buf[..n], b"READY=1\n");
    /// ```
    ///
    /// # Errors
    ///
    /// [`NotifyError`] if no datagram socket can be created or the address is invalid
    /// (a path too long for a Unix socket).
    pub fn new(socket: impl AsRef<OsStr>, watchdog: Option<Duration>) -> Result<Self, NotifyError> {
        let socket = socket.as_ref();
        let name = socket.to_string_lossy().into_owned();
        let error = |source| NotifyError {
            socket: name.clone(),
            source,
        };
        let addr = address(socket).map_err(error)?;
        let sender = UnixDatagram::unbound().map_err(error)?;
        sender.set_nonblocking(true).map_err(error)?;
        Ok(Self {
            inner: Arc::new(Inner {
                socket: sender,
                addr,
                name,
                watchdog: watchdog.filter(|d| !d.is_zero()),
            }),
        })
    }

    /// The watchdog timeout systemd enforces (`WatchdogSec=`), if it asked for pings.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.inner.watchdog
    }

    /// How often [`watchdog_loop`] pings: half the timeout, as `sd_watchdog_enabled(3)`
    /// advises, so one late ping does not get the service killed.
    pub fn ping_period(&self) -> Option<Duration> {
        self.inner.watchdog.map(|d| d / 2)
    }

    /// `READY=1`: start-up is complete.
    ///
    /// # Errors
    ///
    /// [`NotifyError`] if the datagram could not be sent.
    pub fn ready(&self) -> Result<(), NotifyError> {
        self.notify(&[NotifyState::Ready])
    }

    /// `STOPPING=1`: graceful shutdown has begun.
    ///
    /// # Errors
    ///
    /// [`NotifyError`] if the datagram could not be sent.
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.notify(&[NotifyState::Stopping])
    }

    /// `STATUS=text`, shown by `systemctl status` (line breaks become spaces: the
    /// protocol is one assignment per line).
    ///
    /// # Errors
    ///
    /// [`NotifyError`] if the datagram could not be sent.
    pub fn status(&self, text: &str) -> Result<(), NotifyError> {
        let line = text.replace(['\n', '\r'], " ");
        self.notify(&[NotifyState::Status(&line)])
    }

    /// `WATCHDOG=1`: the service is alive.
    ///
    /// # Errors
    ///
    /// [`NotifyError`] if the datagram could not be sent.
    pub fn ping(&self) -> Result<(), NotifyError> {
        self.notify(&[NotifyState::Watchdog])
    }

    /// Sends `states` in one datagram, one `KEY=value` line each.
    ///
    /// # Errors
    ///
    /// [`NotifyError`] if the datagram could not be sent whole.
    pub fn notify(&self, states: &[NotifyState<'_>]) -> Result<(), NotifyError> {
        let mut msg = String::new();
        for state in states {
            // Writing to a String cannot fail.
            let _ = writeln!(msg, "{state}");
        }
        let inner = &self.inner;
        let sent = inner.socket.send_to_addr(msg.as_bytes(), &inner.addr);
        let result = match sent {
            Ok(n) if n == msg.len() => Ok(()),
            Ok(_) => Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "datagram truncated",
            )),
            Err(e) => Err(e),
        };
        result.map_err(|source| NotifyError {
            socket: inner.name.clone(),
            source,
        })
    }
}

/// The address `NOTIFY_SOCKET` names: `@name` is in Linux's abstract namespace.
fn address(socket: &OsStr) -> std::io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    match socket.as_bytes().strip_prefix(b"@") {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        Some(_) => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "abstract sockets exist only on Linux",
        )),
        None => SocketAddr::from_pathname(socket),
    }
}

/// Pings the watchdog every [`Notifier::ping_period`], first at once, while `healthy()`
/// says so, until `stop` resolves. A tick on which `healthy()` is false sends nothing:
/// if that lasts a whole watchdog timeout, systemd kills and restarts the service.
/// Returns at once when systemd asked for no watchdog.
pub async fn watchdog_loop(
    notifier: Notifier,
    healthy: impl Fn() -> bool,
    stop: impl Future<Output = ()>,
) {
    let Some(period) = notifier.ping_period() else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    // After a stall, ping once and go on: a burst of catch-up pings would hide it.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(stop);
    let mut withheld = false;
    loop {
        tokio::select! {
            biased;
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        if !healthy() {
            if !withheld {
                tracing::error!(
                    "root supervisor not running: withholding watchdog pings, systemd will restart nevil"
                );
                withheld = true;
            }
            continue;
        }
        if withheld {
            tracing::info!("root supervisor running again: watchdog pings resume");
            withheld = false;
        }
        if let Err(e) = notifier.ping() {
            tracing::warn!(error = %e, "watchdog ping not sent");
        }
    }
}

/// Whether the root supervisor of `tree` is up, by [`health::root_is_up`] (the rule
/// `/health/live` follows too): false once it is stopping or stopped, which is what
/// giving up (escalation) does. Reads one atomic; sends no message.
pub fn root_running(tree: &Tree) -> impl Fn() -> bool + Send + Sync + 'static {
    let root = tree.root().cell();
    move || health::root_is_up(Status::of(&root))
}

/// A run's side of the unit's contract: ready sent, watchdog pinging, stopping sent.
/// Does nothing outside systemd.
pub struct Service {
    notifier: Option<Notifier>,
    stop: Option<oneshot::Sender<()>>,
    watchdog: Option<JoinHandle<()>>,
}

impl Service {
    /// Tells the service manager of the environment that the robot of `tree` is up, and
    /// pings its watchdog while the root supervisor runs. Problems are logged: systemd
    /// then times the start out or restarts the service, which is the right outcome.
    pub fn ready(tree: &Tree) -> Self {
        let notifier = match Notifier::from_env() {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "cannot notify systemd");
                None
            }
        };
        Self::start(notifier, root_running(tree))
    }

    /// Sends `READY=1` through `notifier` (if any) and starts [`watchdog_loop`] with
    /// `healthy` on the current runtime.
    pub fn start(notifier: Option<Notifier>, healthy: impl Fn() -> bool + Send + 'static) -> Self {
        let Some(notifier) = notifier else {
            return Self {
                notifier: None,
                stop: None,
                watchdog: None,
            };
        };
        let sent = notifier.ready().and_then(|()| notifier.status("running"));
        match sent {
            Ok(()) => tracing::info!(
                watchdog_ms = notifier.watchdog_interval().map(|d| d.as_millis()),
                "told systemd: ready"
            ),
            Err(e) => tracing::error!(error = %e, "could not tell systemd the robot is ready"),
        }
        let (stop, stopped) = oneshot::channel();
        let watchdog = notifier.ping_period().map(|_| {
            let pinger = notifier.clone();
            tokio::spawn(watchdog_loop(pinger, healthy, async move {
                // A dropped sender stops the loop too.
                let _ = stopped.await;
            }))
        });
        Self {
            notifier: Some(notifier),
            stop: Some(stop),
            watchdog,
        }
    }

    /// Graceful shutdown begins: ends the watchdog pings, then sends `STATUS=why` and
    /// `STOPPING=1`.
    pub async fn stopping(mut self, why: &str) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(watchdog) = self.watchdog.take() {
            // The loop ends at its next poll; it cannot fail but by a panic, already logged.
            let _ = watchdog.await;
        }
        let Some(notifier) = &self.notifier else {
            return;
        };
        let sent = notifier
            .status(&format!("stopping: {why}"))
            .and_then(|()| notifier.stopping());
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not tell systemd the robot is stopping");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use super::*;

    /// A socket standing in for systemd's, in a directory of its own.
    struct Manager {
        socket: UnixDatagram,
        path: PathBuf,
    }

    impl Manager {
        fn bind(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("nevil-systemd-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("notify.sock");
            let socket = UnixDatagram::bind(&path).unwrap();
            socket.set_nonblocking(true).unwrap();
            Self { socket, path }
        }

        fn notifier(&self, watchdog: Option<Duration>) -> Notifier {
            Notifier::new(&self.path, watchdog).unwrap()
        }

        /// Every datagram received so far (sends are synchronous, so all have arrived).
        fn received(&self) -> Vec<String> {
            let mut out = Vec::new();
            let mut buf = [0u8; 512];
            loop {
                match self.socket.recv(&mut buf) {
                    Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return out,
                    Err(e) => panic!("recv: {e}"),
                }
            }
        }
    }

    impl Drop for Manager {
        fn drop(&mut self) {
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// A health flag whose every consultation is reported, with the (virtual) time.
    fn probe(
        healthy: bool,
    ) -> (
        Arc<AtomicBool>,
        impl Fn() -> bool,
        mpsc::UnboundedReceiver<Instant>,
    ) {
        let flag = Arc::new(AtomicBool::new(healthy));
        let (tx, rx) = mpsc::unbounded_channel();
        let read = flag.clone();
        let check = move || {
            let _ = tx.send(Instant::now());
            read.load(Ordering::SeqCst)
        };
        (flag, check, rx)
    }

    #[test]
    fn ready_stopping_status_datagrams() {
        let manager = Manager::bind("states");
        let notifier = manager.notifier(None);
        notifier.ready().unwrap();
        notifier.status("running\nfine").unwrap();
        notifier.ping().unwrap();
        notifier.stopping().unwrap();
        assert_eq!(
            manager.received(),
            [
                "READY=1\n",
                "STATUS=running fine\n",
                "WATCHDOG=1\n",
                "STOPPING=1\n"
            ]
        );
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("nevil-systemd-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let manager = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::new(format!("@{name}"), None)
            .unwrap()
            .ready()
            .unwrap();
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
    }

    #[test]
    fn missing_socket_is_an_error_naming_it() {
        let manager = Manager::bind("missing");
        let gone = manager.path.with_file_name("gone.sock");
        let err = Notifier::new(&gone, None).unwrap().ready().unwrap_err();
        assert_eq!(err.source.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("gone.sock"), "{err}");
    }

    #[test]
    fn watchdog_timeout_and_ping_period() {
        let manager = Manager::bind("period");
        let n = manager.notifier(Some(Duration::from_millis(200)));
        assert_eq!(n.watchdog_interval(), Some(Duration::from_millis(200)));
        assert_eq!(n.ping_period(), Some(Duration::from_millis(100)));
        // WATCHDOG_USEC=0 is no watchdog (a zero period would be a busy loop).
        assert_eq!(manager.notifier(Some(Duration::ZERO)).ping_period(), None);
        assert_eq!(manager.notifier(None).ping_period(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_pings_every_half_timeout_while_healthy() {
        let manager = Manager::bind("pings");
        let (_flag, healthy, mut checks) = probe(true);
        let start = Instant::now();
        let notifier = manager.notifier(Some(Duration::from_millis(200)));
        let task = tokio::spawn(watchdog_loop(notifier, healthy, std::future::pending()));
        let mut at = Vec::new();
        for _ in 0..3 {
            at.push(checks.recv().await.unwrap() - start);
        }
        // The loop pings right after each check, before it awaits again.
        assert_eq!(manager.received(), ["WATCHDOG=1\n"; 3]);
        assert_eq!(
            at,
            [0, 100, 200].map(Duration::from_millis),
            "virtual times of the checks"
        );
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn no_ping_while_unhealthy() {
        let manager = Manager::bind("unhealthy");
        let (flag, healthy, mut checks) = probe(false);
        let notifier = manager.notifier(Some(Duration::from_millis(200)));
        let task = tokio::spawn(watchdog_loop(notifier, healthy, std::future::pending()));
        for _ in 0..5 {
            checks.recv().await.unwrap();
        }
        assert_eq!(manager.received(), Vec::<String>::new());
        flag.store(true, Ordering::SeqCst);
        checks.recv().await.unwrap();
        assert_eq!(manager.received(), ["WATCHDOG=1\n"]);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn loop_ends_on_stop_and_without_watchdog() {
        let manager = Manager::bind("stop");
        let (_flag, healthy, mut checks) = probe(true);
        let (stop, stopped) = oneshot::channel::<()>();
        let notifier = manager.notifier(Some(Duration::from_secs(1)));
        let task = tokio::spawn(watchdog_loop(notifier, healthy, async move {
            let _ = stopped.await;
        }));
        checks.recv().await.unwrap();
        stop.send(()).unwrap();
        task.await.unwrap();
        assert_eq!(manager.received(), ["WATCHDOG=1\n"]);
        // No watchdog asked for: nothing to do, the loop returns without a check.
        let (_flag, healthy, mut checks) = probe(true);
        watchdog_loop(manager.notifier(None), healthy, std::future::pending()).await;
        assert!(checks.try_recv().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn service_sends_ready_pings_then_stopping() {
        let manager = Manager::bind("service");
        let (_flag, healthy, mut checks) = probe(true);
        let service = Service::start(
            Some(manager.notifier(Some(Duration::from_millis(200)))),
            healthy,
        );
        checks.recv().await.unwrap();
        checks.recv().await.unwrap();
        service.stopping("SIGTERM").await;
        // The loop is gone: time passes and nothing more is checked or sent.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(checks.try_recv().is_err());
        assert_eq!(
            manager.received(),
            [
                "READY=1\n",
                "STATUS=running\n",
                "WATCHDOG=1\n",
                "WATCHDOG=1\n",
                "STATUS=stopping: SIGTERM\n",
                "STOPPING=1\n"
            ]
        );
    }

    #[tokio::test]
    async fn service_outside_systemd_does_nothing() {
        let (_flag, healthy, mut checks) = probe(true);
        Service::start(None, healthy).stopping("done").await;
        assert!(checks.try_recv().is_err());
    }

    #[derive(Clone)]
    struct Failing;

    impl ractor::Actor for Failing {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(
            &self,
            _: ractor::ActorRef<()>,
            _: (),
        ) -> Result<(), ractor::ActorProcessingErr> {
            Ok(())
        }

        async fn handle(
            &self,
            _: ractor::ActorRef<()>,
            _: (),
            _: &mut (),
        ) -> Result<(), ractor::ActorProcessingErr> {
            Err("drill".into())
        }
    }

    async fn tree() -> Tree {
        use nevil_actors::{ChildSpec, Strategy, SupervisorFlags};
        // No restart allowed: the first failure makes the root give up.
        let flags = SupervisorFlags::new(Strategy::OneForOne).intensity(0, Duration::from_secs(5));
        Tree::start("root", flags, vec![ChildSpec::worker("w", Failing, ())])
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn root_running_follows_the_root_supervisor() {
        let stopped = tree().await;
        let healthy = root_running(&stopped);
        assert!(healthy());
        stopped.shutdown().await;
        assert!(!healthy());

        let escalated = tree().await;
        let healthy = root_running(&escalated);
        assert!(healthy());
        let worker = ractor::ActorRef::<()>::from(escalated.actor("root/w").unwrap());
        worker.cast(()).unwrap();
        let exit = escalated.wait().await;
        assert!(exit.is_abnormal(), "{exit}");
        assert!(!healthy());
    }
}
