//! Invariant `escalation_explained`: a supervisor gives up only after more restarts than
//! its intensity allows (OTP: more than `max_restarts` within `period_s`).
//!
//! The check reads the tree's event feed. Per supervisor it keeps the times of its
//! children's exits that it restarted, since its own latest start (a restarted
//! supervisor starts with a fresh intensity, as in OTP). An escalation with fewer than
//! `max_restarts` of them within `period_s` before it is a violation. If the feed
//! lagged (events were lost), escalations within one period after the loss cannot be
//! judged: they are counted, not failed.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use nevil_actors::TreeEvent;

/// Slack on the window's edge, seconds: the event's time and the supervisor's own
/// clock reading may differ by the time it takes to publish.
const EDGE_S: f64 = 0.001;

/// The escalation check.
#[derive(Debug, Clone)]
pub struct EscalationCheck {
    max_restarts: u32,
    period_s: f64,
    /// Supervisor path → times (s) of its children's restarted exits, oldest first.
    windows: HashMap<String, VecDeque<f64>>,
    blind_until_s: f64,
    escalations: u64,
    unjudged: u64,
    restarts: u64,
}

/// The supervisor of the actor at `path`: `root/drivers` for `root/drivers/motors`.
fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(p, _)| p)
}

impl EscalationCheck {
    /// A check of supervisors allowing `max_restarts` within `period`.
    pub fn new(max_restarts: u32, period: Duration) -> Self {
        Self {
            max_restarts,
            period_s: period.as_secs_f64(),
            windows: HashMap::new(),
            blind_until_s: 0.0,
            escalations: 0,
            unjudged: 0,
            restarts: 0,
        }
    }

    /// Escalations seen.
    pub fn escalations(&self) -> u64 {
        self.escalations
    }

    /// Escalations that could not be judged (the feed had lost events just before).
    pub fn unjudged(&self) -> u64 {
        self.unjudged
    }

    /// Restarts seen (new incarnations, of workers and supervisors).
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// The feed lost events at `at_s`.
    pub fn lagged(&mut self, at_s: f64) {
        self.blind_until_s = at_s + self.period_s;
    }

    /// Takes the next event, at `at_s` seconds since start.
    ///
    /// # Errors
    ///
    /// An escalation that the intensity does not explain, naming the supervisor, the
    /// restarts it had and what it allows.
    pub fn feed(&mut self, at_s: f64, event: &TreeEvent) -> Result<(), String> {
        match event {
            TreeEvent::ChildExited {
                path,
                restart: true,
                ..
            } => {
                if let Some(sup) = parent(path.as_str()) {
                    let period = self.period_s;
                    let w = self.windows.entry(sup.to_string()).or_default();
                    w.push_back(at_s);
                    while w.front().is_some_and(|t| at_s - t > period + EDGE_S) {
                        w.pop_front();
                    }
                }
                Ok(())
            }
            TreeEvent::ChildRestarted { path, .. } => {
                self.restarts += 1;
                // A supervisor's new incarnation: a fresh intensity.
                self.windows.remove(path.as_str());
                Ok(())
            }
            TreeEvent::Escalated { path, child, .. } => {
                self.escalations += 1;
                let within = self.windows.remove(path.as_str()).map_or(0, |w| {
                    w.iter()
                        .filter(|t| at_s - **t <= self.period_s + EDGE_S)
                        .count()
                });
                if at_s <= self.blind_until_s {
                    self.unjudged += 1;
                    return Ok(());
                }
                if within < self.max_restarts as usize {
                    return Err(format!(
                        "{path} escalated at {at_s:.3} s (on {child}'s exit) after {within} \
                         restart(s) within {} s; its intensity allows {}",
                        self.period_s, self.max_restarts
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nevil_actors::{ActorPath, ExitReason};
    use tokio::time::Instant;

    fn exited(path: &str) -> TreeEvent {
        TreeEvent::ChildExited {
            at: Instant::now(),
            path: ActorPath::from(path),
            reason: ExitReason::Error("boom".into()),
            restart: true,
            delay: None,
        }
    }

    fn escalated(path: &str) -> TreeEvent {
        TreeEvent::Escalated {
            at: Instant::now(),
            path: ActorPath::from(path),
            child: ActorPath::from(format!("{path}/motors").as_str()),
            reason: ExitReason::Error("boom".into()),
        }
    }

    #[test]
    fn an_escalation_after_max_restarts_is_explained() {
        let mut c = EscalationCheck::new(3, Duration::from_secs(5));
        for t in [1.0, 2.0, 3.0] {
            c.feed(t, &exited("root/drivers/motors")).unwrap();
        }
        c.feed(4.0, &escalated("root/drivers")).unwrap();
        assert_eq!(c.escalations(), 1);
    }

    #[test]
    fn an_escalation_with_too_few_restarts_fails() {
        let mut c = EscalationCheck::new(3, Duration::from_secs(5));
        // Three restarts, but the first left the window; another supervisor's do not count.
        for (t, p) in [
            (1.0, "root/drivers/motors"),
            (7.0, "root/drivers/steering"),
            (8.0, "root/drivers/motors"),
            (8.5, "root/control/motion"),
            (8.6, "root/control/motion"),
        ] {
            c.feed(t, &exited(p)).unwrap();
        }
        let e = c.feed(9.0, &escalated("root/drivers")).unwrap_err();
        assert!(
            e.contains("root/drivers escalated at 9.000 s") && e.contains("after 2 restart(s)"),
            "{e}"
        );
    }

    #[test]
    fn a_restarted_supervisor_starts_a_fresh_window() {
        let mut c = EscalationCheck::new(2, Duration::from_secs(10));
        for t in [1.0, 2.0] {
            c.feed(t, &exited("root/drivers/motors")).unwrap();
        }
        let restarted = TreeEvent::ChildRestarted {
            at: Instant::now(),
            path: ActorPath::from("root/drivers"),
            restarts: 1,
        };
        c.feed(2.5, &restarted).unwrap();
        c.feed(3.0, &exited("root/drivers/motors")).unwrap();
        assert!(c.feed(3.5, &escalated("root/drivers")).is_err());
        assert_eq!(c.restarts(), 1);
    }

    #[test]
    fn escalations_right_after_lost_events_are_not_judged() {
        let mut c = EscalationCheck::new(3, Duration::from_secs(5));
        c.lagged(1.0);
        c.feed(4.0, &escalated("root/drivers")).unwrap();
        assert_eq!(c.unjudged(), 1);
        assert!(c.feed(7.0, &escalated("root/drivers")).is_err());
    }
}
