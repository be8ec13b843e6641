//! Invariant `suspend_order`: a suspended worker loses nothing and reorders nothing.
//!
//! The soak adds one worker to the `management` group, the probe. A probe round
//! suspends it by hand ([`nevil_actors::TreeView::suspend`]), sends it numbered
//! messages through its counting mailbox, resumes it, and checks that it handled
//! exactly those numbers, in order ([`check_round`]). The probe writes what it handles
//! to a [`ProbeLog`] outside the actor, with the incarnation that handled it: a round
//! during which the probe was restarted (its group escalated) lost its mailbox with
//! the incarnation, as a restart does, and is void rather than failed.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ractor::{Actor, ActorProcessingErr, ActorRef};

/// The probe's name in the `management` group.
pub const NAME: &str = "soak_probe";

/// What the probe handled, shared with the soak. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ProbeLog(Arc<Mutex<Record>>);

#[derive(Debug, Default)]
struct Record {
    /// Incarnations started so far.
    incarnation: u64,
    /// The numbers handled since the last [`ProbeLog::take`], with their incarnation.
    handled: Vec<(u64, u64)>,
}

impl ProbeLog {
    fn lock(&self) -> MutexGuard<'_, Record> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The incarnation alive now (the number started so far).
    pub fn incarnation(&self) -> u64 {
        self.lock().incarnation
    }

    /// How many numbers were handled since the last take.
    pub fn len(&self) -> usize {
        self.lock().handled.len()
    }

    /// Whether nothing was handled since the last take.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The numbers handled since the last take, with their incarnations; empties the log.
    pub fn take(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.lock().handled)
    }
}

/// The probe's messages.
#[derive(Debug)]
pub enum ProbeMsg {
    /// A numbered message: the probe logs its number.
    Seq(u64),
    /// Does nothing.
    Noop,
}

/// The probe worker: logs each number it handles.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Where it logs.
    pub log: ProbeLog,
}

impl Actor for Probe {
    type Msg = ProbeMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<ProbeMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        let mut r = self.log.lock();
        r.incarnation += 1;
        Ok(r.incarnation)
    }

    async fn handle(
        &self,
        _: ActorRef<ProbeMsg>,
        msg: ProbeMsg,
        incarnation: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        if let ProbeMsg::Seq(n) = msg {
            self.log.lock().handled.push((n, *incarnation));
        }
        Ok(())
    }
}

/// How a round ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// Every number handled once, in order, by the incarnation they were sent to.
    Held,
    /// The probe was restarted during the round: its mailbox went with it.
    Void,
}

/// Checks a round: `sent` numbered messages were sent to incarnation `incarnation`,
/// and the probe logged `handled`.
///
/// # Errors
///
/// A message lost (not handled), handled twice, or out of order: the first difference.
pub fn check_round(
    sent: std::ops::Range<u64>,
    incarnation: u64,
    handled: &[(u64, u64)],
) -> Result<Round, String> {
    if handled.iter().any(|&(_, i)| i != incarnation) {
        return Ok(Round::Void);
    }
    let got: Vec<u64> = handled.iter().map(|&(n, _)| n).collect();
    let want: Vec<u64> = sent.clone().collect();
    if got == want {
        return Ok(Round::Held);
    }
    let first = got.iter().zip(&want).position(|(g, w)| g != w);
    let what = match first {
        Some(i) => format!(
            "message {} handled where {} was due (position {i})",
            got[i], want[i]
        ),
        None if got.len() < want.len() => format!(
            "{} of {} messages lost (first lost: {})",
            want.len() - got.len(),
            want.len(),
            want[got.len()]
        ),
        None => format!("{} messages handled more than once", got.len() - want.len()),
    };
    Err(format!(
        "suspend/resume of the probe, messages {}..{}: {what}",
        sent.start, sent.end
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by(incarnation: u64, ns: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
        ns.into_iter().map(|n| (n, incarnation)).collect()
    }

    #[test]
    fn all_in_order_holds() {
        assert_eq!(check_round(5..9, 2, &by(2, 5..9)), Ok(Round::Held));
    }

    #[test]
    fn a_lost_message_fails() {
        let e = check_round(5..9, 2, &by(2, [5, 6, 7])).unwrap_err();
        assert!(e.contains("1 of 4 messages lost (first lost: 8)"), "{e}");
        let e = check_round(5..9, 2, &by(2, [5, 7, 8])).unwrap_err();
        assert!(e.contains("message 7 handled where 6 was due"), "{e}");
    }

    #[test]
    fn a_reordered_or_doubled_message_fails() {
        let e = check_round(0..3, 1, &by(1, [0, 2, 1])).unwrap_err();
        assert!(
            e.contains("message 2 handled where 1 was due (position 1)"),
            "{e}"
        );
        let e = check_round(0..2, 1, &by(1, [0, 1, 1])).unwrap_err();
        assert!(e.contains("1 messages handled more than once"), "{e}");
    }

    #[test]
    fn a_restart_voids_the_round() {
        let mut handled = by(1, [0, 1]);
        handled.extend(by(2, [2]));
        assert_eq!(check_round(0..4, 1, &handled), Ok(Round::Void));
    }

    #[tokio::test]
    async fn the_probe_logs_in_order_across_a_suspension() {
        let log = ProbeLog::default();
        let spec = nevil_actors::ChildSpec::worker(NAME, Probe { log: log.clone() }, ());
        let tree = nevil_actors::Tree::start("root", Default::default(), vec![spec])
            .await
            .unwrap();
        let view = tree.view();
        let path = format!("root/{NAME}");
        assert_eq!(log.incarnation(), 1);
        assert!(view.suspend(&path));
        let mailbox = view.mailbox::<ProbeMsg>(&path).unwrap();
        for n in 0..50 {
            mailbox.cast(ProbeMsg::Seq(n)).unwrap();
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(log.is_empty(), "suspended: nothing handled");
        assert!(view.resume(&path));
        while log.len() < 50 {
            tokio::task::yield_now().await;
        }
        assert_eq!(check_round(0..50, 1, &log.take()), Ok(Round::Held));
        tree.shutdown().await;
    }
}
