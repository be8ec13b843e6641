//! The tree service: writes the live tree on request (SIGUSR1, end of a `--duration`
//! run) as indented text to the log and as the tree document (the tree JSON and the
//! error analytics, [`tree_document`]) to the dump file.
//!
//! The snapshot is read from the supervisors' tables without messaging any actor, and
//! the file is written off the async workers and swapped in by rename, so a dump neither
//! stops nor slows the robot and a reader never sees half a file.

pub mod text;

use crate::config::reload::Generation;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use nevil_actors::{TreeSnapshot, TreeView};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

use crate::services::analytics::model::AnalyticsReport;
use crate::services::analytics::AnalyticsHandle;

/// The tree dump: DESIGN.md's tree JSON (`config_generation` first, then `pid`,
/// `uptime_s`, `root`) with the error analytics beside them under `analytics`. The
/// SIGUSR1 dump writes it and `GET /tree` serves it.
#[derive(Debug, Clone, Serialize)]
pub struct TreeDocument {
    /// The config generation in force (1 at start; see `config::reload::Generation`).
    pub config_generation: u64,
    /// `pid`, `uptime_s` and `root`, flattened to the top level.
    #[serde(flatten)]
    pub tree: TreeSnapshot,
    /// Signatures, patterns, correlations and risk of the actors' errors.
    pub analytics: AnalyticsReport,
}

/// Builds the tree document from a snapshot of the tree and the run's analytics.
pub fn tree_document(
    snapshot: TreeSnapshot,
    analytics: &AnalyticsHandle,
    generation: &Generation,
) -> TreeDocument {
    TreeDocument {
        config_generation: generation.get(),
        tree: snapshot,
        analytics: analytics.report(),
    }
}

/// Messages of the [`TreeService`].
pub enum TreeServiceMsg {
    /// Dump the tree now; replies with the file written, or why not.
    Dump(Option<RpcReplyPort<Result<PathBuf, String>>>),
    /// Does nothing: any number of them is harmless, so a mailbox flood (a fault
    /// injected into the tree) is made of them.
    Noop,
}

/// The tree service actor.
#[derive(Clone)]
pub struct TreeService {
    /// The tree it lives in, set once the tree has started.
    pub view: Arc<OnceLock<TreeView>>,
    /// The run's error analytics, part of each dump.
    pub analytics: AnalyticsHandle,
    /// Where the JSON goes.
    pub path: PathBuf,
    /// The run's config generation, at the top of each dump.
    pub generation: Generation,
}

/// Writes `json` to `path` atomically (temp file, then rename).
pub fn write_atomically(path: &std::path::Path, json: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}

impl TreeService {
    async fn dump(&self) -> Result<PathBuf, String> {
        let view = self
            .view
            .get()
            .ok_or("the tree has not finished starting")?;
        let snapshot = view.snapshot();
        tracing::info!("actor tree:\n{}", snapshot.root);
        let document = tree_document(snapshot, &self.analytics, &self.generation);
        let json = serde_json::to_vec_pretty(&document).map_err(|e| e.to_string())?;
        let path = self.path.clone();
        let written = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &json))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{}: {e}", written.display()))?;
        tracing::info!(path = %written.display(), "tree dump written");
        Ok(written)
    }
}

impl Actor for TreeService {
    type Msg = TreeServiceMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ActorRef<TreeServiceMsg>,
        _: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<TreeServiceMsg>,
        msg: TreeServiceMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TreeServiceMsg::Dump(reply) => {
                let result = self.dump().await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, "tree dump failed");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            TreeServiceMsg::Noop => {}
        }
        Ok(())
    }
}
