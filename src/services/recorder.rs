//! The flight recorder: writes every bus message, in the order it receives them, to a
//! rotating recording (see [`crate::services::recorder::recording`]), so a run seen on the robot can be
//! replayed on a laptop with `nevil replay`.
//!
//! It is an ordinary bus subscriber, so if it falls behind, the bus drops (and counts)
//! messages to it rather than slowing anyone down. Writes are buffered and flushed every
//! 100 ms and when it stops.

pub mod recording;

use std::path::PathBuf;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::bus::Bus;
use crate::core::ticker::{self, Timer};
use crate::services::recorder::recording::{Record, Writer};

/// Messages of the [`Recorder`].
pub enum RecorderMsg {
    /// A bus message to write.
    Record(Record),
    /// Time to flush.
    Flush,
    /// Does nothing: any number of them is harmless, so a mailbox flood (a fault
    /// injected into the tree) is made of them.
    Noop,
}

/// The flight recorder actor.
#[derive(Clone)]
pub struct Recorder {
    /// Where to write.
    pub path: PathBuf,
    /// Rotation size.
    pub max_file_bytes: u64,
    /// Rotated files kept.
    pub keep_files: u32,
    /// The bus.
    pub bus: Bus,
}

/// State of the [`Recorder`].
pub struct RecorderState {
    writer: Writer,
}

impl Actor for Recorder {
    type Msg = RecorderMsg;
    type State = RecorderState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<RecorderMsg>,
        _: (),
    ) -> Result<RecorderState, ActorProcessingErr> {
        let writer = Writer::create(&self.path, self.max_file_bytes, self.keep_files)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let b = &self.bus;
        let me = || myself.clone();
        b.range.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::Range(d.into_inner()))
        });
        b.line.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::Line(d.into_inner()))
        });
        b.battery.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::Battery(d.into_inner()))
        });
        b.command.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::Command(d.into_inner()))
        });
        b.drive.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::Drive(d.into_inner()))
        });
        b.estop.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::EStop(d.into_inner()))
        });
        ticker::spawn(
            Timer::Tokio,
            "recorder",
            Duration::from_millis(100),
            myself,
            |_| RecorderMsg::Flush,
        )?;
        tracing::info!(path = %self.path.display(), "recording bus messages");
        Ok(RecorderState { writer })
    }

    async fn handle(
        &self,
        _: ActorRef<RecorderMsg>,
        msg: RecorderMsg,
        state: &mut RecorderState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RecorderMsg::Record(r) => state.writer.append(&r)?,
            RecorderMsg::Flush => state.writer.flush()?,
            RecorderMsg::Noop => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<RecorderMsg>,
        state: &mut RecorderState,
    ) -> Result<(), ActorProcessingErr> {
        state.writer.flush()?;
        Ok(())
    }
}
