//! The typed publish/subscribe bus between the robot's actors.
//!
//! One [`Topic`] per message type. Publishing clones the message to every subscriber.
//! Each subscriber has a bounded queue: at most `capacity` messages delivered to it and
//! not yet handled. A message that would exceed it is **dropped for that subscriber and
//! counted** (drop-newest); the others still get it. Every message on this bus carries a
//! full, timestamped reading or command, so a subscriber that fell behind is brought up
//! to date by the next message that fits — and a stuck subscriber costs a bounded amount
//! of memory instead of growing its mailbox forever.
//!
//! The in-flight count is kept by a ticket inside each [`Delivery`]: it is released when
//! the subscriber drops the delivery (handled, or lost with a dead actor's mailbox), so
//! nothing has to acknowledge by hand. Subscriptions are keyed by name: a restarted actor
//! subscribes again under its name and replaces its dead predecessor.
//!
//! [`bridge`] carries topics between processes (a process-placed group's child and its
//! parent) over Zenoh, in the frames of [`wire`].

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use bincode::{Decode, Encode};
use nevil_actors::Mailbox;
use ractor::{ActorRef, Message};
use serde::Serialize;

pub mod bridge;
pub mod net;
pub mod wire;

pub use crate::core::clock::Micros;
pub use bridge::{Bridge, BridgeError, BridgeStats, Direction, Export, Import};
pub use wire::Wire;

/// A reading of the ultrasonic ranger.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Encode, Decode)]
pub struct Range {
    /// When it was taken.
    pub t_us: Micros,
    /// Distance in metres; `None` when the ranger answered but nothing is within its
    /// range (a valid reading: the road ahead is clear as far as it sees). A ranger that
    /// does not answer publishes no `Range` at all, so it goes stale instead.
    pub distance_m: Option<f64>,
}

/// A reading of the grayscale line sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Encode, Decode)]
pub struct Line {
    /// When it was taken.
    pub t_us: Micros,
    /// Raw left, middle, right values (0–4095; lower is darker).
    pub raw: [u16; 3],
}

/// A reading of the battery monitor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Encode, Decode)]
pub struct Battery {
    /// When it was taken.
    pub t_us: Micros,
    /// Volts.
    pub volts: f64,
}

/// Which behaviour issued a [`Command`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Encode, Decode)]
pub enum Source {
    /// Obstacle avoidance.
    ObstacleAvoidance,
    /// Line following.
    LineFollower,
}

/// What a behaviour asks of the motion controller.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Encode, Decode)]
pub struct Command {
    /// When it was issued.
    pub t_us: Micros,
    /// Who issued it.
    pub source: Source,
    /// Wanted forward power in percent, −100..=100 (before the controller's limits).
    pub power: f64,
    /// Wanted steering angle in degrees (before the controller's limits).
    pub steer_deg: f64,
    /// An override (e.g. obstacle ahead) that wins over normal commands while fresh.
    pub urgent: bool,
}

/// What the motion controller sends to the actuators on each control loop tick.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Encode, Decode)]
pub struct Drive {
    /// When it was computed.
    pub t_us: Micros,
    /// Left motor power in percent.
    pub left: f64,
    /// Right motor power in percent.
    pub right: f64,
    /// Steering angle in degrees.
    pub steer_deg: f64,
    /// Commands the controller had taken when it computed this output. With
    /// `estops_seen` this pins down the controller's input order, which a replay needs:
    /// a command and a tick may reach it in either order.
    pub commands_seen: u64,
    /// E-stop changes the controller had taken.
    pub estops_seen: u64,
}

/// The safety watchdog's emergency stop: engaged stops the motors until released.
#[derive(Debug, Clone, PartialEq, Serialize, Encode, Decode)]
pub struct EStop {
    /// When it changed.
    pub t_us: Micros,
    /// Engaged (motors must stay stopped) or released.
    pub engaged: bool,
    /// Why, e.g. `stale ultrasonic`, `battery low`, `controller silent`, `shutdown`.
    pub reason: String,
}

/// The system monitor's latest rating of the host, published at every sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HostHealth {
    /// When it was sampled.
    pub t_us: Micros,
    /// The level of each host resource (with hysteresis applied).
    pub levels: crate::core::levels::Levels,
    /// The hottest temperature sensor in °C; `None` where the platform exposes none.
    pub temperature_c: Option<f64>,
}

/// One message as it travels: the value, plus the ticket that frees its queue slot.
pub struct Delivery<T> {
    msg: T,
    _ticket: Ticket,
}

impl<T> Deref for Delivery<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.msg
    }
}

impl<T: fmt::Debug> fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.msg.fmt(f)
    }
}

impl<T> Delivery<T> {
    /// The message, releasing its queue slot.
    pub fn into_inner(self) -> T {
        self.msg
    }
}

struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

type Deliver<T> = Box<dyn Fn(Delivery<T>) -> bool + Send + Sync>;

struct Subscriber<T> {
    name: String,
    in_flight: Arc<AtomicUsize>,
    dropped: AtomicU64,
    deliver: Deliver<T>,
}

/// Counters of one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TopicStats {
    /// Messages published.
    pub published: u64,
    /// Deliveries dropped because a subscriber's queue was full or it was gone.
    pub dropped: u64,
    /// Dropped deliveries by subscriber name.
    pub dropped_by: Vec<(String, u64)>,
}

struct TopicInner<T> {
    name: &'static str,
    capacity: usize,
    subscribers: RwLock<Vec<Subscriber<T>>>,
    published: AtomicU64,
}

/// A typed channel with any number of subscribers, each with a bounded queue.
pub struct Topic<T> {
    inner: Arc<TopicInner<T>>,
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Clone + Send + 'static> Topic<T> {
    /// A topic called `name` whose subscribers may each have `capacity` messages waiting.
    pub fn new(name: &'static str, capacity: usize) -> Self {
        Self {
            inner: Arc::new(TopicInner {
                name,
                capacity: capacity.max(1),
                subscribers: RwLock::new(Vec::new()),
                published: AtomicU64::new(0),
            }),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// Subscribes `deliver` under `name`, replacing an earlier subscription of that name.
    /// `deliver` returns `false` when the subscriber is gone (counted as a drop).
    pub fn subscribe_with(
        &self,
        name: &str,
        deliver: impl Fn(Delivery<T>) -> bool + Send + Sync + 'static,
    ) {
        let sub = Subscriber {
            name: name.to_string(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            dropped: AtomicU64::new(0),
            deliver: Box::new(deliver),
        };
        let mut subs = self
            .inner
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match subs.iter_mut().find(|s| s.name == name) {
            Some(old) => {
                // Keep the drop count of the name; the new incarnation starts empty.
                sub.dropped
                    .store(old.dropped.load(Ordering::Relaxed), Ordering::Relaxed);
                *old = sub;
            }
            None => subs.push(sub),
        }
    }

    /// Removes the subscription called `name`; `false` if there was none. Its
    /// deliveries already made stay valid (their tickets count against nothing now).
    pub fn unsubscribe(&self, name: &str) -> bool {
        let mut subs = self
            .inner
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let before = subs.len();
        subs.retain(|s| s.name != name);
        subs.len() != before
    }

    /// Subscribes an actor: each message arrives as `wrap(delivery)`. Call it from the
    /// subscriber's own `pre_start`: deliveries then go through its counting
    /// [`Mailbox`], so its supervisor sees its mailbox depth.
    pub fn subscribe<M: Message>(
        &self,
        name: &str,
        actor: ActorRef<M>,
        wrap: fn(Delivery<T>) -> M,
    ) {
        let mailbox = Mailbox::own(&actor);
        self.subscribe_with(name, move |d| mailbox.cast(wrap(d)).is_ok());
    }

    /// Publishes `msg` to every subscriber whose queue has room; returns how many got it.
    /// The copies are the subscribers' business: not charged to the publishing actor.
    pub fn publish(&self, msg: T) -> usize {
        nevil_actors::managed::uncharged(|| self.deliver(msg))
    }

    fn deliver(&self, msg: T) -> usize {
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        let subs = self
            .inner
            .subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut delivered = 0;
        for sub in subs.iter() {
            if sub.in_flight.fetch_add(1, Ordering::AcqRel) >= self.inner.capacity {
                sub.in_flight.fetch_sub(1, Ordering::AcqRel);
                sub.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let delivery = Delivery {
                msg: msg.clone(),
                _ticket: Ticket(sub.in_flight.clone()),
            };
            // A failed send drops the delivery, which frees the slot again.
            if (sub.deliver)(delivery) {
                delivered += 1;
            } else {
                sub.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        delivered
    }

    /// The topic's counters now.
    pub fn stats(&self) -> TopicStats {
        let subs = self
            .inner
            .subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let dropped_by: Vec<_> = subs
            .iter()
            .map(|s| (s.name.clone(), s.dropped.load(Ordering::Relaxed)))
            .collect();
        TopicStats {
            published: self.inner.published.load(Ordering::Relaxed),
            dropped: dropped_by.iter().map(|(_, n)| n).sum(),
            dropped_by,
        }
    }
}

/// Every topic of the robot.
#[derive(Clone)]
pub struct Bus {
    /// Ultrasonic readings.
    pub range: Topic<Range>,
    /// Grayscale readings.
    pub line: Topic<Line>,
    /// Battery readings.
    pub battery: Topic<Battery>,
    /// Behaviour commands to the motion controller.
    pub command: Topic<Command>,
    /// Motion controller outputs to the actuators.
    pub drive: Topic<Drive>,
    /// Emergency stops from the safety watchdog.
    pub estop: Topic<EStop>,
    /// Host health from the system monitor.
    pub host: Topic<HostHealth>,
}

impl Bus {
    /// A bus whose subscribers may each have `capacity` messages waiting.
    pub fn new(capacity: usize) -> Self {
        Self {
            range: Topic::new("range", capacity),
            line: Topic::new("line", capacity),
            battery: Topic::new("battery", capacity),
            command: Topic::new("command", capacity),
            drive: Topic::new("drive", capacity),
            estop: Topic::new("estop", capacity),
            host: Topic::new("host", capacity),
        }
    }

    /// Counters of every topic, by name.
    pub fn stats(&self) -> Vec<(&'static str, TopicStats)> {
        vec![
            (self.range.name(), self.range.stats()),
            (self.line.name(), self.line.stats()),
            (self.battery.name(), self.battery.stats()),
            (self.command.name(), self.command.stats()),
            (self.drive.name(), self.drive.stats()),
            (self.estop.name(), self.estop.stats()),
            (self.host.name(), self.host.stats()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn collecting(topic: &Topic<u32>, name: &str) -> Arc<Mutex<Vec<Delivery<u32>>>> {
        let held = Arc::new(Mutex::new(Vec::new()));
        let h = held.clone();
        topic.subscribe_with(name, move |d| {
            h.lock().unwrap().push(d);
            true
        });
        held
    }

    #[test]
    fn full_queue_drops_newest_and_counts() {
        let topic = Topic::new("t", 2);
        let slow = collecting(&topic, "slow");
        for v in 0..5 {
            topic.publish(v);
        }
        let got: Vec<u32> = slow.lock().unwrap().iter().map(|d| **d).collect();
        assert_eq!(got, [0, 1]);
        let stats = topic.stats();
        assert_eq!(stats.published, 5);
        assert_eq!(stats.dropped, 3);
        // Handling frees slots: the next message gets through.
        slow.lock().unwrap().clear();
        assert_eq!(topic.publish(9), 1);
    }

    #[test]
    fn one_slow_subscriber_does_not_starve_another() {
        let topic = Topic::new("t", 1);
        let slow = collecting(&topic, "slow");
        let fast = Arc::new(AtomicU64::new(0));
        let f = fast.clone();
        topic.subscribe_with("fast", move |_| {
            f.fetch_add(1, Ordering::Relaxed);
            true
        });
        for v in 0..10 {
            topic.publish(v);
        }
        assert_eq!(fast.load(Ordering::Relaxed), 10);
        assert_eq!(slow.lock().unwrap().len(), 1);
        assert_eq!(
            topic.stats().dropped_by,
            [("slow".into(), 9), ("fast".into(), 0)]
        );
    }

    #[test]
    fn resubscribing_replaces_by_name() {
        let topic = Topic::new("t", 4);
        let old = collecting(&topic, "a");
        let new = collecting(&topic, "a");
        topic.publish(1);
        assert!(old.lock().unwrap().is_empty());
        assert_eq!(new.lock().unwrap().len(), 1);
    }

    #[test]
    fn unsubscribing_stops_delivery() {
        let topic = Topic::new("t", 4);
        let held = collecting(&topic, "a");
        topic.publish(1);
        assert!(topic.unsubscribe("a"));
        assert!(!topic.unsubscribe("a"));
        assert_eq!(topic.publish(2), 0);
        assert_eq!(held.lock().unwrap().len(), 1);
        assert!(topic.stats().dropped_by.is_empty());
    }

    #[test]
    fn gone_subscriber_counts_as_dropped_and_frees_its_slot() {
        let topic = Topic::new("t", 1);
        topic.subscribe_with("dead", |_| false);
        for v in 0..3 {
            topic.publish(v);
        }
        assert_eq!(topic.stats().dropped, 3);
    }
}
