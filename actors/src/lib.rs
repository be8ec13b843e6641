//! # nevil-actors: supervision trees with OTP's semantics, on ractor
//!
//! Every actor lives in a tree of supervisors ([`supervisor`]). A supervisor starts its
//! children in order, restarts them when they exit according to their [`Restart`]
//! type and its [`Strategy`], gives up when they fail more often than its restart
//! intensity allows (stopping them in reverse order and failing to its own supervisor),
//! and stops them in reverse order, each running its `post_stop`. The semantics are
//! Erlang/OTP's `supervisor`; [`supervisor`]'s module docs give them in full.
//!
//! The crate knows nothing of the application it runs. It is built on ractor's own primitives
//! (`spawn_linked`, `SupervisionEvent`); children are named within their supervisor, never
//! in ractor's global registry, so the same tree can run twice in one process.
//!
//! To see supervision respond, any worker can be made to fail on purpose — panic, error,
//! exit, hang, spin, leak, flood or busy — through the tree ([`Tree::inject`], [`fault`]);
//! its message type knows nothing of it.
//!
//! A worker may stand for work that runs in another OS process (a supervisor group placed
//! in a child process): it attaches an [`External`] and its supervisor measures and governs
//! that process through it, and the tree shows the process's actors in place, each node
//! saying where it runs ([`external`]).
//!
//! ```
//! use std::time::Duration;
//! use nevil_actors::{ChildSpec, ExitReason, Restart, Strategy, SupervisorFlags, Tree};
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//!
//! #[derive(Clone)]
//! struct Reader;
//! impl Actor for Reader {
//!     type Msg = ();
//!     type State = ();
//!     type Arguments = ();
//!     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let io = ChildSpec::supervisor(
//!     "io",
//!     SupervisorFlags::new(Strategy::OneForOne).intensity(3, Duration::from_secs(5)),
//!     vec![
//!         ChildSpec::worker("reader", Reader, ()),
//!         ChildSpec::worker("poller", Reader, ()).restart(Restart::Transient),
//!     ],
//! );
//! let control = ChildSpec::supervisor(
//!     "control",
//!     SupervisorFlags::new(Strategy::RestForOne),
//!     vec![ChildSpec::worker("executor", Reader, ())],
//! );
//! let tree = Tree::start("root", SupervisorFlags::default(), vec![io, control])
//!     .await
//!     .unwrap();
//!
//! let snapshot = tree.snapshot();
//! let names: Vec<_> = snapshot.root.walk().iter().map(|n| n.path.to_string()).collect();
//! assert_eq!(names, ["root", "root/io", "root/io/reader",
//!                    "root/io/poller", "root/control", "root/control/executor"]);
//! assert_eq!(tree.shutdown().await, ExitReason::Normal);
//! # }
//! ```

#![warn(missing_docs, unreachable_pub)]
// Unsafe code only where a module allows it by name (the allocator and the mailbox's own
// reference to the running actor's counters, both in `managed::alloc`; the handling
// adapter; the TSC read), each with its SAFETY comment. What a type can carry, it does:
// `alloc::Enter` takes an `&Arc<Counters>` and borrows it for the guard's life.
#![deny(unsafe_code)]

// A panic in an actor must unwind to its supervisor; with `panic = "abort"` it would end
// the process instead, silently disabling supervision (ractor #214).
#[cfg(panic = "abort")]
compile_error!("nevil-actors requires panic = \"unwind\": supervision cannot catch panics under panic = \"abort\"");

pub mod error;
pub mod event;
pub mod exit;
pub mod external;
pub mod fault;
pub mod introspect;
pub mod managed;
pub mod path;
pub mod problems;
pub mod process;
pub mod quota;
pub mod supervisor;
pub mod tree;

pub use error::{CallError, Escalated, SpecError, StartError};
pub use event::{EventFeed, TreeEvent};
pub use exit::{ExitReason, NodeLost, OutOfMemory, Panicked};
pub use external::{External, Placement, Subtree};
pub use fault::{Fault, InjectError};
pub use introspect::{NodeSnapshot, QuotaSnapshot, Status, TreeLine, TreeSnapshot, WorkerFigures};
pub use managed::{Counters, CountingAlloc, Mailbox, Managed, ManagedState};
pub use path::ActorPath;
pub use problems::{Problem, Problems};
pub use quota::{
    Action, Decision, Enforcement, Escalation, HardAction, History, Limits, Pressure,
    PressureLevel, PressurePolicy, QuotaConfig, QuotaGroup, QuotaState, QuotaStatus, Resource,
    Usage,
};
pub use supervisor::{
    Backoff, ChildCounts, ChildInfo, ChildKind, ChildSpec, Incarnation, Restart, Shutdown,
    Strategy, SupervisorFlags, SupervisorRef,
};
pub use tree::{Tree, TreeContext, TreeView};

/// The README's example, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
