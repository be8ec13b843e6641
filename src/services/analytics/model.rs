//! Error analytics over the actors' abnormal exits (seed `000_…`, "Error Reporting and
//! Analytics"): signatures, recurring patterns, correlations between related actors, and
//! a risk score per actor. Pure logic on times given as "since the run started"; the
//! [`error_analytics`](crate::services::analytics) actor feeds it from the tree's
//! event feed.
//!
//! - **Signature** ([`signature`]): exit kind + actor path + normalised message. Every
//!   abnormal exit (error, panic, kill, failed start, quota restart or termination) is
//!   one occurrence; normal exits are not errors.
//! - **Recurring pattern**: a signature that occurred at least
//!   [`Params::pattern_min`] times (3) within [`Params::pattern_window`] (24 h), as
//!   seed 000 (`min_pattern_occurrences`, `pattern_window_hours`). Restart intensity
//!   catches crash storms within seconds; patterns catch the slow repeats it misses
//!   (a crash every hour).
//! - **Correlation** ([`correlation`]): an error of one actor within
//!   [`Params::correlation_window`] (5 s) after an error of a related one (sibling under
//!   the same supervisor, or supervisor and child). Counted per pair: each new error
//!   counts once with each related actor that erred in the window. Seed 000 used 5 min
//!   for a Python system whose restarts take seconds; ours take microseconds.
//! - **Risk** ([`risk`]): frequency × recency × severity by exit kind, plus correlation,
//!   mapped to [0, 1]; the formula and its figures are in that module.
//!
//! Memory is bounded for a robot that runs for weeks: at most [`Params::max_signatures`]
//! signatures (each keeping at most [`Params::recent_per_signature`] recent times), as
//! many correlation pairs, [`Params::max_actors`] risk records, and the errors of the
//! last correlation window (at most [`Params::max_recent_errors`]). When full, the entry
//! seen least recently (for risk: the lowest score) is dropped and counted in
//! [`Evicted`].

pub mod correlation;
pub mod risk;
pub mod signature;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use nevil_actors::{ActorPath, ExitReason};
use serde::{Serialize, Serializer};

use correlation::{relation, Relation};
use risk::Decayed;
use signature::Signature;

/// The analytics' windows, thresholds and bounds. The defaults are documented on
/// [`Params::default`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Params {
    /// A signature is a recurring pattern when it occurred `pattern_min` times within
    /// this window.
    #[serde(rename = "pattern_window_s", serialize_with = "secs")]
    pub pattern_window: Duration,
    /// See `pattern_window`.
    pub pattern_min: usize,
    /// Errors of related actors this close are correlated.
    #[serde(rename = "correlation_window_s", serialize_with = "secs")]
    pub correlation_window: Duration,
    /// An error's weight in the risk score halves every `half_life`.
    #[serde(rename = "half_life_s", serialize_with = "secs")]
    pub half_life: Duration,
    /// Signatures kept (and, as many, correlation pairs).
    pub max_signatures: usize,
    /// Occurrence times kept per signature (at least `pattern_min`).
    pub recent_per_signature: usize,
    /// Actors with a risk record.
    pub max_actors: usize,
    /// Errors kept for correlation within the window.
    pub max_recent_errors: usize,
}

impl Default for Params {
    /// Patterns: 3 within 24 h (seed 000). Correlation: 5 s. Risk half-life: 10 min.
    /// Bounds: 128 signatures × 32 times, 128 pairs, 256 actors, 64 recent errors —
    /// well under 100 KiB when full.
    fn default() -> Self {
        Self {
            pattern_window: Duration::from_secs(24 * 3600),
            pattern_min: 3,
            correlation_window: Duration::from_secs(5),
            half_life: Duration::from_secs(600),
            max_signatures: 128,
            recent_per_signature: 32,
            max_actors: 256,
            max_recent_errors: 64,
        }
    }
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// One signature's history.
#[derive(Debug, Clone)]
struct Occurrences {
    count: u64,
    first: Duration,
    last: Duration,
    /// The latest occurrence times, oldest first, at most `recent_per_signature`.
    recent: VecDeque<Duration>,
}

/// One related pair's history.
#[derive(Debug, Clone, Copy)]
struct Pair {
    relation: Relation,
    count: u64,
    first: Duration,
    last: Duration,
}

/// One actor's risk inputs.
#[derive(Debug, Clone, Copy, Default)]
struct ActorRisk {
    /// Severity-weighted errors, decayed.
    errors: Decayed,
    /// Correlated errors, decayed.
    correlated: Decayed,
    errors_total: u64,
    last_error: Duration,
}

impl ActorRisk {
    fn score(&self, t: Duration, half_life: Duration) -> f64 {
        let load = self.errors.at(t, half_life)
            + risk::CORRELATION_WEIGHT * self.correlated.at(t, half_life);
        risk::score(load)
    }
}

/// What was dropped to stay within bounds, cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Evicted {
    /// Signatures.
    pub signatures: u64,
    /// Correlation pairs.
    pub pairs: u64,
    /// Risk records.
    pub actors: u64,
}

/// What recording one error changed, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The error's exit kind.
    pub kind: &'static str,
    /// The signature it counted towards.
    pub signature: Signature,
    /// The related actors that erred within the correlation window: one new correlation
    /// each, and a higher risk for them too.
    pub partners: Vec<ActorPath>,
    /// An actor whose risk record was dropped to make room, if any.
    pub evicted_actor: Option<ActorPath>,
}

/// The analytics state. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Analytics {
    params: Params,
    errors_total: u64,
    correlations_total: u64,
    events_lost: u64,
    evicted: Evicted,
    signatures: HashMap<Signature, Occurrences>,
    pairs: HashMap<(ActorPath, ActorPath), Pair>,
    actors: HashMap<ActorPath, ActorRisk>,
    /// Errors within the last correlation window, oldest first.
    recent: VecDeque<(Duration, ActorPath)>,
}

impl Default for Analytics {
    fn default() -> Self {
        Self::new(Params::default())
    }
}

/// Removes the entry with the smallest `key` from `map` (a scan: maps are small and
/// this only runs when one is full).
fn evict_min<K: Clone + Eq + std::hash::Hash, V, O: PartialOrd>(
    map: &mut HashMap<K, V>,
    key: impl Fn(&V) -> O,
) -> Option<K> {
    let victim = map
        .iter()
        .min_by(|a, b| {
            key(a.1)
                .partial_cmp(&key(b.1))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(k, _)| k.clone())?;
    map.remove(&victim);
    Some(victim)
}

impl Analytics {
    /// Empty analytics with `params` (bounds of 0 are taken as 1, and
    /// `recent_per_signature` as at least `pattern_min`).
    pub fn new(mut params: Params) -> Self {
        params.pattern_min = params.pattern_min.max(1);
        params.recent_per_signature = params.recent_per_signature.max(params.pattern_min);
        params.max_signatures = params.max_signatures.max(1);
        params.max_actors = params.max_actors.max(1);
        params.max_recent_errors = params.max_recent_errors.max(1);
        Self {
            params,
            errors_total: 0,
            correlations_total: 0,
            events_lost: 0,
            evicted: Evicted::default(),
            signatures: HashMap::new(),
            pairs: HashMap::new(),
            actors: HashMap::new(),
            recent: VecDeque::new(),
        }
    }

    /// The parameters in force.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Records that the actor at `path` exited for `reason` at `t` (since the start).
    /// Returns `None` for a normal exit, which is not an error.
    pub fn record(
        &mut self,
        t: Duration,
        path: &ActorPath,
        reason: &ExitReason,
    ) -> Option<Recorded> {
        if !reason.is_abnormal() {
            return None;
        }
        let kind = reason.kind();
        self.errors_total += 1;
        let signature = Signature::new(kind, path, reason.message());
        self.count_signature(t, &signature);
        let partners = self.correlate(t, path);
        let evicted_actor = self.charge(t, path, risk::severity(kind), partners.len() as u64);
        Some(Recorded {
            kind,
            signature,
            partners,
            evicted_actor,
        })
    }

    /// Counts `n` events the feed dropped before they could be recorded.
    pub fn lost(&mut self, n: u64) {
        self.events_lost = self.events_lost.saturating_add(n);
    }

    fn count_signature(&mut self, t: Duration, signature: &Signature) {
        if !self.signatures.contains_key(signature)
            && self.signatures.len() >= self.params.max_signatures
            && evict_min(&mut self.signatures, |o| o.last).is_some()
        {
            self.evicted.signatures += 1;
        }
        let occ = self
            .signatures
            .entry(signature.clone())
            .or_insert_with(|| Occurrences {
                count: 0,
                first: t,
                last: t,
                recent: VecDeque::new(),
            });
        occ.count += 1;
        occ.last = occ.last.max(t);
        if occ.recent.len() >= self.params.recent_per_signature {
            occ.recent.pop_front();
        }
        occ.recent.push_back(t);
    }

    /// Pairs the error at `path` with the recent errors of related actors; returns those
    /// actors.
    fn correlate(&mut self, t: Duration, path: &ActorPath) -> Vec<ActorPath> {
        let window = self.params.correlation_window;
        while let Some((at, _)) = self.recent.front() {
            if t.saturating_sub(*at) > window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        let mut partners: Vec<(ActorPath, Relation)> = Vec::new();
        for (_, other) in &self.recent {
            if partners.iter().any(|(p, _)| p == other) {
                continue;
            }
            if let Some(rel) = relation(path, other) {
                partners.push((other.clone(), rel));
            }
        }
        for (other, rel) in &partners {
            let key = if path < other {
                (path.clone(), other.clone())
            } else {
                (other.clone(), path.clone())
            };
            if !self.pairs.contains_key(&key)
                && self.pairs.len() >= self.params.max_signatures
                && evict_min(&mut self.pairs, |p| p.last).is_some()
            {
                self.evicted.pairs += 1;
            }
            let pair = self.pairs.entry(key).or_insert(Pair {
                relation: *rel,
                count: 0,
                first: t,
                last: t,
            });
            pair.count += 1;
            pair.last = pair.last.max(t);
            let half_life = self.params.half_life;
            if let Some(a) = self.actors.get_mut(other) {
                a.correlated.add(t, 1.0, half_life);
            }
        }
        if self.recent.len() >= self.params.max_recent_errors {
            self.recent.pop_front();
        }
        self.recent.push_back((t, path.clone()));
        self.correlations_total += partners.len() as u64;
        partners.into_iter().map(|(p, _)| p).collect()
    }

    /// Adds an error of `severity`, and `correlated` correlations, to the risk of `path`;
    /// returns the actor dropped to make room, if any.
    fn charge(
        &mut self,
        t: Duration,
        path: &ActorPath,
        severity: f64,
        correlated: u64,
    ) -> Option<ActorPath> {
        let half_life = self.params.half_life;
        let mut evicted = None;
        if !self.actors.contains_key(path) && self.actors.len() >= self.params.max_actors {
            evicted = evict_min(&mut self.actors, |a| a.score(t, half_life));
            if evicted.is_some() {
                self.evicted.actors += 1;
            }
        }
        let a = self.actors.entry(path.clone()).or_default();
        a.errors.add(t, severity, half_life);
        if correlated > 0 {
            a.correlated.add(t, correlated as f64, half_life);
        }
        a.errors_total += 1;
        a.last_error = a.last_error.max(t);
        evicted
    }

    /// The risk of the actor at `path` at `t`: 0 for an actor without errors.
    pub fn risk(&self, t: Duration, path: &ActorPath) -> f64 {
        self.actors
            .get(path)
            .map_or(0.0, |a| a.score(t, self.params.half_life))
    }

    /// Every actor with a risk record and its risk at `t`.
    pub fn risks(&self, t: Duration) -> impl Iterator<Item = (&ActorPath, f64)> + '_ {
        let half_life = self.params.half_life;
        self.actors
            .iter()
            .map(move |(p, a)| (p, a.score(t, half_life)))
    }

    /// How many occurrences of `occ` fall within the pattern window ending at `t`.
    fn in_window(&self, occ: &Occurrences, t: Duration) -> usize {
        let window = self.params.pattern_window;
        occ.recent
            .iter()
            .filter(|&&at| t.saturating_sub(at) <= window)
            .count()
    }

    /// How many signatures are recurring patterns at `t`.
    pub fn active_patterns(&self, t: Duration) -> usize {
        self.signatures
            .values()
            .filter(|o| self.in_window(o, t) >= self.params.pattern_min)
            .count()
    }

    /// Abnormal exits recorded, cumulative.
    pub fn errors_total(&self) -> u64 {
        self.errors_total
    }

    /// Correlations found, cumulative.
    pub fn correlations_total(&self) -> u64 {
        self.correlations_total
    }

    /// Everything, as of `t`: signatures (most frequent first), active patterns,
    /// correlated pairs (most frequent first), and risk per actor (highest first).
    pub fn report(&self, t: Duration) -> AnalyticsReport {
        let mut signatures: Vec<_> = self
            .signatures
            .iter()
            .map(|(sig, o)| SignatureReport {
                id: sig.id(),
                kind: sig.kind,
                path: sig.path.clone(),
                message: sig.message.clone(),
                count: o.count,
                first_seen_s: o.first.as_secs_f64(),
                last_seen_s: o.last.as_secs_f64(),
                in_window: self.in_window(o, t),
            })
            .collect();
        signatures.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.id.cmp(&b.id)));
        let patterns = signatures
            .iter()
            .filter(|s| s.in_window >= self.params.pattern_min)
            .map(|s| PatternReport {
                signature: s.id.clone(),
                kind: s.kind,
                path: s.path.clone(),
                message: s.message.clone(),
                occurrences: s.in_window,
                last_seen_s: s.last_seen_s,
            })
            .collect();
        let mut correlations: Vec<_> = self
            .pairs
            .iter()
            .map(|((a, b), p)| CorrelationReport {
                a: a.clone(),
                b: b.clone(),
                relation: p.relation,
                count: p.count,
                first_seen_s: p.first.as_secs_f64(),
                last_seen_s: p.last.as_secs_f64(),
            })
            .collect();
        correlations.sort_by(|x, y| {
            y.count
                .cmp(&x.count)
                .then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
        });
        let half_life = self.params.half_life;
        let mut risk: Vec<_> = self
            .actors
            .iter()
            .map(|(path, a)| RiskReport {
                path: path.clone(),
                score: a.score(t, half_life),
                errors: a.errors_total,
                last_error_s: a.last_error.as_secs_f64(),
            })
            .collect();
        risk.sort_by(|x, y| {
            y.score
                .partial_cmp(&x.score)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| x.path.cmp(&y.path))
        });
        AnalyticsReport {
            at_s: t.as_secs_f64(),
            errors_total: self.errors_total,
            correlations_total: self.correlations_total,
            events_lost: self.events_lost,
            evicted: self.evicted,
            params: self.params,
            signatures,
            patterns,
            correlations,
            risk,
        }
    }
}

/// The analytics as data: the tree dump's `analytics` object.
///
/// Times (`*_s`) are seconds since the run started, the clock of the dump's `uptime_s`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyticsReport {
    /// When the report was made.
    pub at_s: f64,
    /// Abnormal exits recorded, cumulative.
    pub errors_total: u64,
    /// Correlations found, cumulative.
    pub correlations_total: u64,
    /// Events the feed dropped because the analytics fell behind, cumulative.
    pub events_lost: u64,
    /// What was dropped to stay within bounds.
    pub evicted: Evicted,
    /// The windows, thresholds and bounds in force.
    pub params: Params,
    /// Every signature kept, most frequent first.
    pub signatures: Vec<SignatureReport>,
    /// The signatures that are recurring patterns now.
    pub patterns: Vec<PatternReport>,
    /// Related actors whose errors came together, most frequent first.
    pub correlations: Vec<CorrelationReport>,
    /// Risk per actor that had errors, highest first; actors without errors are absent
    /// (their risk is 0).
    pub risk: Vec<RiskReport>,
}

/// One signature in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignatureReport {
    /// Its stable id ([`Signature::id`]).
    pub id: String,
    /// The exit kind.
    pub kind: &'static str,
    /// The actor.
    pub path: ActorPath,
    /// The normalised message.
    pub message: String,
    /// Occurrences, cumulative.
    pub count: u64,
    /// The first occurrence.
    pub first_seen_s: f64,
    /// The latest occurrence.
    pub last_seen_s: f64,
    /// Occurrences within the pattern window (at most `params.recent_per_signature`).
    pub in_window: usize,
}

/// One recurring pattern in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatternReport {
    /// The signature's id.
    pub signature: String,
    /// The exit kind.
    pub kind: &'static str,
    /// The actor.
    pub path: ActorPath,
    /// The normalised message.
    pub message: String,
    /// Occurrences within the pattern window.
    pub occurrences: usize,
    /// The latest occurrence.
    pub last_seen_s: f64,
}

/// One correlated pair in a report (`a` < `b`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorrelationReport {
    /// One actor.
    pub a: ActorPath,
    /// The other.
    pub b: ActorPath,
    /// How they are related.
    pub relation: Relation,
    /// Times an error of one followed an error of the other within the window.
    pub count: u64,
    /// The first time.
    pub first_seen_s: f64,
    /// The latest time.
    pub last_seen_s: f64,
}

/// One actor's risk in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskReport {
    /// The actor.
    pub path: ActorPath,
    /// Its risk, in [0, 1].
    pub score: f64,
    /// Its errors, cumulative.
    pub errors: u64,
    /// Its latest error.
    pub last_error_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ActorPath {
        ActorPath::from(s)
    }

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn err(m: &str) -> ExitReason {
        ExitReason::Error(m.to_string())
    }

    const MOTION: &str = "root/control/motion";
    const OA: &str = "root/control/obstacle_avoidance";
    const MOTORS: &str = "root/drivers/motors";

    #[test]
    fn normal_exits_are_not_errors() {
        let mut a = Analytics::default();
        assert_eq!(a.record(s(1.0), &p(MOTION), &ExitReason::Normal), None);
        assert_eq!(a.errors_total(), 0);
        assert!(a.report(s(2.0)).signatures.is_empty());
        assert_eq!(a.risk(s(2.0), &p(MOTION)), 0.0);
    }

    #[test]
    fn errors_group_by_kind_path_and_normalised_message() {
        let mut a = Analytics::default();
        let r = a
            .record(s(1.0), &p(MOTION), &err("timeout after 12 ms"))
            .unwrap();
        assert_eq!(
            (r.kind, r.signature.message.as_str()),
            ("error", "timeout after N ms")
        );
        a.record(s(2.0), &p(MOTION), &err("timeout after 40 ms"));
        a.record(
            s(3.0),
            &p(MOTION),
            &ExitReason::Panic("timeout after 9 ms".into()),
        );
        a.record(s(4.0), &p(MOTORS), &err("timeout after 1 ms"));
        let report = a.report(s(5.0));
        assert_eq!(a.errors_total(), 4);
        assert_eq!(report.signatures.len(), 3);
        let top = &report.signatures[0];
        assert_eq!(
            (top.kind, top.path.as_str(), top.count),
            ("error", MOTION, 2)
        );
        assert_eq!((top.first_seen_s, top.last_seen_s), (1.0, 2.0));
        assert_eq!(top.id, r.signature.id());
    }

    #[test]
    fn a_pattern_is_three_occurrences_within_the_window() {
        let mut a = Analytics::default();
        let hour = 3600.0;
        let motion = p(MOTION);
        a.record(s(0.0), &motion, &err("bus fault 1"));
        a.record(s(hour), &motion, &err("bus fault 2"));
        assert_eq!(a.active_patterns(s(hour)), 0, "two is not a pattern");
        a.record(s(2.0 * hour), &motion, &err("bus fault 3"));
        assert_eq!(a.active_patterns(s(2.0 * hour)), 1);
        let report = a.report(s(2.0 * hour));
        assert_eq!(report.patterns.len(), 1);
        assert_eq!(report.patterns[0].occurrences, 3);
        assert_eq!(report.patterns[0].message, "bus fault N");
        // A day after the first, only two remain within the window.
        assert_eq!(a.active_patterns(s(24.0 * hour + 1.0)), 0);
        assert!(a.report(s(24.0 * hour + 1.0)).patterns.is_empty());
        assert_eq!(a.report(s(24.0 * hour + 1.0)).signatures[0].count, 3);
    }

    #[test]
    fn spaced_out_repeats_never_form_a_pattern() {
        let mut a = Analytics::default();
        for day in 0..5 {
            a.record(s(f64::from(day) * 13.0 * 3600.0), &p(MOTION), &err("x"));
            assert_eq!(a.active_patterns(s(f64::from(day) * 13.0 * 3600.0)), 0);
        }
    }

    #[test]
    fn related_errors_within_the_window_correlate() {
        let mut a = Analytics::default();
        assert_eq!(
            a.record(s(10.0), &p(MOTION), &err("a"))
                .unwrap()
                .partners
                .len(),
            0
        );
        // A sibling 2 s later: one pair.
        assert_eq!(
            a.record(s(12.0), &p(OA), &err("b")).unwrap().partners.len(),
            1
        );
        // Another group: unrelated.
        assert_eq!(
            a.record(s(13.0), &p(MOTORS), &err("c"))
                .unwrap()
                .partners
                .len(),
            0
        );
        // The sibling again, 4 s after motion: still the one partner, counted once.
        assert_eq!(
            a.record(s(14.0), &p(OA), &err("b")).unwrap().partners.len(),
            1
        );
        // 20 s later: motion's error is out of the window.
        assert_eq!(
            a.record(s(34.0), &p(OA), &err("b")).unwrap().partners.len(),
            0
        );
        // The supervisor gives up just after its child's error: parent and child.
        let control = p("root/control");
        assert_eq!(
            a.record(s(34.001), &control, &err("escalated"))
                .unwrap()
                .partners
                .len(),
            1
        );
        let report = a.report(s(40.0));
        assert_eq!(a.correlations_total(), 3);
        assert_eq!(report.correlations.len(), 2);
        let top = &report.correlations[0];
        assert_eq!((top.a.as_str(), top.b.as_str()), (MOTION, OA));
        assert_eq!((top.relation, top.count), (Relation::Siblings, 2));
        assert_eq!((top.first_seen_s, top.last_seen_s), (12.0, 14.0));
        let parent = &report.correlations[1];
        assert_eq!((parent.a.as_str(), parent.b.as_str()), ("root/control", OA));
        assert_eq!(parent.relation, Relation::Parent);
    }

    #[test]
    fn risk_follows_severity_recency_and_correlation() {
        let mut a = Analytics::default();
        let t = s(100.0);
        a.record(t, &p("root/a/panicky"), &ExitReason::Panic("x".into()));
        a.record(t, &p("root/b/failing"), &err("x"));
        a.record(t, &p("root/c/killed"), &ExitReason::Killed);
        let (panicky, failing, killed) = (
            a.risk(t, &p("root/a/panicky")),
            a.risk(t, &p("root/b/failing")),
            a.risk(t, &p("root/c/killed")),
        );
        assert!(panicky > failing && failing > killed && killed > 0.0);
        assert!((panicky - risk::score(1.0)).abs() < 1e-12);
        assert_eq!(a.risk(t, &p("root/a/untouched")), 0.0);

        // A half-life later the load is halved.
        let later = t + a.params().half_life;
        assert!((a.risk(later, &p("root/a/panicky")) - risk::score(0.5)).abs() < 1e-12);

        // Repeats raise it, towards but never past 1.
        for i in 0..50 {
            a.record(
                t + s(f64::from(i)),
                &p("root/a/panicky"),
                &ExitReason::Panic("x".into()),
            );
        }
        let storm = a.risk(t + s(50.0), &p("root/a/panicky"));
        assert!(storm > 0.99 && storm <= 1.0, "{storm}");

        // The same error with a related actor's error alongside scores higher.
        let mut alone = Analytics::default();
        alone.record(t, &p(OA), &err("x"));
        let mut together = Analytics::default();
        together.record(t, &p(MOTION), &err("x"));
        together.record(t, &p(OA), &err("x"));
        assert!(together.risk(t, &p(OA)) > alone.risk(t, &p(OA)));
        assert!(
            together.risk(t, &p(MOTION)) > alone.risk(t, &p(OA)),
            "both gain"
        );
    }

    #[test]
    fn memory_stays_within_bounds() {
        let params = Params {
            max_signatures: 4,
            recent_per_signature: 3,
            max_actors: 2,
            max_recent_errors: 5,
            ..Params::default()
        };
        let mut a = Analytics::new(params);
        for i in 0..10u32 {
            // Ten distinct messages (letters, not digits) on one actor.
            let msg = char::from(b'a' + i as u8).to_string();
            a.record(s(f64::from(i)), &p(MOTION), &err(&msg));
        }
        let report = a.report(s(10.0));
        assert_eq!(report.signatures.len(), 4);
        assert_eq!(report.evicted.signatures, 6);
        let mut kept: Vec<_> = report
            .signatures
            .iter()
            .map(|s| s.message.as_str())
            .collect();
        kept.sort_unstable();
        assert_eq!(
            kept,
            ["g", "h", "i", "j"],
            "the least recently seen go first"
        );

        // One signature keeps at most `recent_per_signature` times.
        for i in 0..100 {
            a.record(s(20.0 + f64::from(i)), &p(MOTION), &err("j"));
        }
        let j = a.signatures.values().map(|o| o.recent.len()).max();
        assert_eq!(j, Some(3));
        assert!(a.recent.len() <= 5);

        // A third actor drops the one with the lowest risk.
        a.record(s(200.0), &p(MOTORS), &ExitReason::Killed);
        let r = a
            .record(
                s(200.0),
                &p("root/drivers/steering"),
                &ExitReason::Panic("p".into()),
            )
            .unwrap();
        assert_eq!(
            r.evicted_actor.as_ref().map(ActorPath::as_str),
            Some(MOTORS)
        );
        assert_eq!(a.report(s(200.0)).risk.len(), 2);
        assert_eq!(a.report(s(200.0)).evicted.actors, 1);
    }

    #[test]
    fn report_serializes_with_its_documented_keys() {
        let mut a = Analytics::default();
        a.record(s(1.0), &p(MOTION), &err("x"));
        a.record(s(2.0), &p(OA), &err("y"));
        a.lost(3);
        let json = serde_json::to_value(a.report(s(3.0))).unwrap();
        for key in [
            "at_s",
            "errors_total",
            "correlations_total",
            "events_lost",
            "evicted",
            "params",
            "signatures",
            "patterns",
            "correlations",
            "risk",
        ] {
            assert!(json.get(key).is_some(), "no {key} in {json}");
        }
        assert_eq!(json["events_lost"], 3);
        assert_eq!(json["params"]["pattern_window_s"], 86400.0);
        assert_eq!(json["params"]["correlation_window_s"], 5.0);
        assert_eq!(json["signatures"][0]["kind"], "error");
        assert_eq!(json["correlations"][0]["relation"], "siblings");
        assert_eq!(json["risk"][0]["path"], OA, "the later error weighs more");
        assert!(json["risk"][0]["score"].as_f64().unwrap() > 0.0);
    }
}
