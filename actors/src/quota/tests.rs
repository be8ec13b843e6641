//! Unit tests of the ladder: [`QuotaState::assess`] sample by sample.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn at(base: Instant, ms: u64) -> Instant {
    base + Duration::from_millis(ms)
}

fn cpu(v: f64) -> Usage {
    Usage::default().with(Resource::Cpu, v)
}

/// A group governing only CPU: soft 1, burst 2, hard 4; escalation 1 s / 5 s / 10 s;
/// recovery 2 s.
fn cpu_group(hard_action: HardAction) -> QuotaGroup {
    QuotaGroup {
        cpu: Some(Limits {
            soft: 1.0,
            burst: 2.0,
            hard: 4.0,
        }),
        hard_action,
        ..QuotaGroup::ungoverned()
    }
}

/// Feeds `usage` every 100 ms from `from_ms` up to and including `to_ms`; returns the
/// decisions with the time (ms) each was taken.
fn run(
    state: &mut QuotaState,
    t: Instant,
    from_ms: u64,
    to_ms: u64,
    usage: Usage,
    group: &QuotaGroup,
) -> Vec<(u64, Action)> {
    (from_ms..=to_ms)
        .step_by(100)
        .filter_map(|ms| {
            state
                .assess(at(t, ms), &usage, group)
                .map(|d| (ms, d.action))
        })
        .collect()
}

#[test]
fn soft_limit_warns_once() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Restart);
    let mut s = QuotaState::new(t);
    assert_eq!(run(&mut s, t, 0, 900, cpu(0.5), &g), []);
    let decisions = run(&mut s, t, 1000, 1900, cpu(1.0), &g);
    assert_eq!(decisions, [(1000, Action::Warn)], "at soft, warned once");
    assert_eq!(s.status(), QuotaStatus::Warned);
    assert_eq!(s.since(), at(t, 1000));
}

#[test]
fn warn_decision_names_resource_usage_and_limit() {
    let t = Instant::now();
    let mut s = QuotaState::new(t);
    let d = s.assess(t, &cpu(1.5), &cpu_group(HardAction::Restart));
    assert_eq!(
        d,
        Some(Decision {
            action: Action::Warn,
            resource: Resource::Cpu,
            usage: 1.5,
            limit: 1.0,
            state_after: QuotaStatus::Warned,
        })
    );
}

#[test]
fn burst_throttles_by_excess_ratio() {
    let g = cpu_group(HardAction::Restart); // burst 2
    for (usage, factor) in [(2.0, 0.9), (2.4, 0.9), (2.5, 0.85), (3.0, 0.85), (3.2, 0.7)] {
        let t = Instant::now();
        let mut s = QuotaState::new(t);
        let d = s.assess(t, &cpu(usage), &g);
        assert_eq!(
            d.map(|d| (d.action, d.limit, d.state_after)),
            Some((
                Action::Throttle { factor },
                2.0,
                QuotaStatus::Throttled(factor)
            )),
            "usage {usage}"
        );
    }
}

#[test]
fn throttle_factor_boundaries() {
    // Excess ratios exactly at a boundary take the lighter throttle (strict >).
    assert_eq!(throttle_factor(8.0, 4.0), 0.7, "ratio 1.0");
    assert_eq!(throttle_factor(8.5, 4.0), 0.5, "ratio 1.125");
    assert_eq!(throttle_factor(6.0, 4.0), 0.85, "ratio 0.5");
    assert_eq!(throttle_factor(6.0, 5.0), 0.9, "ratio 0.2");
    assert_eq!(throttle_factor(4.0, 4.0), 0.9, "ratio 0");
    assert_eq!(throttle_factor(1.0, 0.0), 0.5, "over a zero limit");
    assert_eq!(throttle_factor(0.0, 0.0), 0.9);
}

#[test]
fn throttle_tightens_but_never_loosens_while_violating() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Restart);
    let mut s = QuotaState::new(t);
    let d = s.assess(at(t, 0), &cpu(2.1), &g).map(|d| d.action);
    assert_eq!(d, Some(Action::Throttle { factor: 0.9 }));
    let d = s.assess(at(t, 100), &cpu(3.5), &g).map(|d| d.action);
    assert_eq!(d, Some(Action::Throttle { factor: 0.7 }));
    assert_eq!(s.assess(at(t, 200), &cpu(3.5), &g), None, "same factor");
    assert_eq!(s.assess(at(t, 300), &cpu(2.1), &g), None, "never loosens");
    assert_eq!(s.assess(at(t, 400), &cpu(1.1), &g), None, "soft is below");
    assert_eq!(s.status(), QuotaStatus::Throttled(0.7));
}

#[test]
fn hard_limit_applies_the_groups_action_at_once() {
    for (hard_action, action, state) in [
        (
            HardAction::Throttle,
            Action::Throttle { factor: 0.85 },
            QuotaStatus::Throttled(0.85),
        ),
        (HardAction::Suspend, Action::Suspend, QuotaStatus::Suspended),
        (HardAction::Restart, Action::Restart, QuotaStatus::Ok),
        (
            HardAction::Terminate,
            Action::Terminate,
            QuotaStatus::Terminated,
        ),
    ] {
        let t = Instant::now();
        let mut s = QuotaState::new(t);
        let g = cpu_group(hard_action);
        // 5 over a hard limit of 4: 25 % over → 0.85 if throttled.
        let d = s.assess(t, &cpu(5.0), &g);
        assert_eq!(
            d.map(|d| (d.action, d.limit, d.state_after)),
            Some((action, 4.0, state)),
            "{hard_action:?}"
        );
        assert_eq!(s.status(), state);
    }
}

#[test]
fn hard_limit_escalates_from_any_lower_state() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Suspend);
    let mut s = QuotaState::new(t);
    assert_eq!(run(&mut s, t, 0, 0, cpu(1.0), &g), [(0, Action::Warn)]);
    let thr = Action::Throttle { factor: 0.9 };
    assert_eq!(run(&mut s, t, 100, 100, cpu(2.0), &g), [(100, thr)]);
    assert_eq!(
        run(&mut s, t, 200, 300, cpu(4.0), &g),
        [(200, Action::Suspend)]
    );
}

#[test]
fn restart_starts_the_next_incarnation_clean() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Restart);
    let mut s = QuotaState::new(t);
    assert_eq!(run(&mut s, t, 0, 900, cpu(1.0), &g), [(0, Action::Warn)]);
    assert_eq!(
        run(&mut s, t, 1000, 1000, cpu(4.0), &g),
        [(1000, Action::Restart)]
    );
    assert_eq!(s, QuotaState::new(at(t, 1000)));
    // The new incarnation is warned afresh, and its escalation clock starts anew.
    assert_eq!(
        run(&mut s, t, 1100, 2000, cpu(1.0), &g),
        [(1100, Action::Warn)]
    );
    assert_eq!(
        run(&mut s, t, 2100, 2100, cpu(1.0), &g),
        [(2100, Action::Throttle { factor: 0.9 })]
    );
}

#[test]
fn persistence_escalates_exactly_at_the_delays() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Restart);
    let mut s = QuotaState::new(t);
    // Every 100 ms at soft (never burst or hard) for 12 s.
    let decisions = run(&mut s, t, 0, 12_000, cpu(1.0), &g);
    assert_eq!(
        decisions,
        [
            (0, Action::Warn),
            (1000, Action::Throttle { factor: 0.9 }),
            (5000, Action::Suspend),
            (10_000, Action::Terminate),
        ]
    );
}

#[test]
fn escalation_is_not_early_between_samples() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Restart);
    let mut s = QuotaState::new(t);
    assert!(s.assess(at(t, 0), &cpu(1.0), &g).is_some());
    assert_eq!(s.assess(at(t, 999), &cpu(1.0), &g), None);
    let d = s.assess(at(t, 1000), &cpu(1.0), &g).map(|d| d.action);
    assert_eq!(d, Some(Action::Throttle { factor: 0.9 }));
    assert_eq!(s.assess(at(t, 4999), &cpu(1.0), &g), None);
    let d = s.assess(at(t, 5000), &cpu(1.0), &g).map(|d| d.action);
    assert_eq!(d, Some(Action::Suspend));
    assert_eq!(s.assess(at(t, 9999), &cpu(1.0), &g), None);
    let d = s.assess(at(t, 10_000), &cpu(1.0), &g).map(|d| d.action);
    assert_eq!(d, Some(Action::Terminate));
}

#[test]
fn escalation_counts_from_the_violations_start_not_the_state() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Terminate);
    let mut s = QuotaState::new(t);
    // Throttled by burst at 0; the suspension comes 5 s after the violation began.
    let decisions = run(&mut s, t, 0, 5000, cpu(2.0), &g);
    assert_eq!(
        decisions,
        [
            (0, Action::Throttle { factor: 0.9 }),
            (5000, Action::Suspend)
        ]
    );
}

#[test]
fn a_sample_below_soft_ends_the_violation() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Restart);
    let mut s = QuotaState::new(t);
    assert_eq!(run(&mut s, t, 0, 900, cpu(1.0), &g), [(0, Action::Warn)]);
    // 0.9 is below soft but above 80 % of it: still warned, but the violation ended.
    assert_eq!(run(&mut s, t, 1000, 1000, cpu(0.9), &g), []);
    assert_eq!(s.violating_since(), None);
    assert_eq!(run(&mut s, t, 1100, 2000, cpu(1.0), &g), []);
    assert_eq!(
        run(&mut s, t, 2100, 2100, cpu(1.0), &g),
        [(2100, Action::Throttle { factor: 0.9 })],
        "1 s after the violation restarted at 1100"
    );
}

#[test]
fn terminated_is_final() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Terminate);
    let mut s = QuotaState::new(t);
    assert!(s.assess(t, &cpu(9.0), &g).is_some());
    assert_eq!(run(&mut s, t, 100, 20_000, cpu(0.0), &g), []);
    assert_eq!(run(&mut s, t, 20_100, 30_000, cpu(9.0), &g), []);
    assert_eq!(s.status(), QuotaStatus::Terminated);
}

#[test]
fn recovery_needs_the_whole_window_below_80_percent_of_soft() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Restart); // soft 1: calm below 0.8; recovery 2 s
    let mut s = QuotaState::new(t);
    let thr = Action::Throttle { factor: 0.9 };
    assert_eq!(run(&mut s, t, 0, 0, cpu(2.0), &g), [(0, thr)]);
    // Below soft but not below 80 % of it: never recovers.
    assert_eq!(run(&mut s, t, 100, 5000, cpu(0.8), &g), []);
    assert_eq!(s.last_high(), Some(at(t, 5000)));
    // Calm from 5100: recovers 2 s after the last high sample (5000), not before.
    assert_eq!(run(&mut s, t, 5100, 6900, cpu(0.79), &g), []);
    let d = s.assess(at(t, 7000), &cpu(0.79), &g);
    assert_eq!(
        d,
        Some(Decision {
            action: Action::Recover,
            resource: Resource::Cpu,
            usage: 0.79,
            limit: 0.8,
            state_after: QuotaStatus::Ok,
        })
    );
    assert_eq!(s.status(), QuotaStatus::Ok);
    assert_eq!(
        run(&mut s, t, 7100, 9000, cpu(0.0), &g),
        [],
        "recovered once"
    );
}

#[test]
fn one_sample_above_restarts_the_recovery_window() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Suspend);
    let mut s = QuotaState::new(t);
    assert_eq!(run(&mut s, t, 0, 0, cpu(4.0), &g), [(0, Action::Suspend)]);
    assert_eq!(run(&mut s, t, 100, 900, cpu(0.0), &g), []);
    assert_eq!(
        run(&mut s, t, 1000, 1000, cpu(0.85), &g),
        [],
        "one sample high"
    );
    assert_eq!(run(&mut s, t, 1100, 2900, cpu(0.0), &g), []);
    assert_eq!(
        run(&mut s, t, 3000, 3000, cpu(0.0), &g),
        [(3000, Action::Recover)],
        "2 s after the high sample at 1000"
    );
}

#[test]
fn warned_recovers_to_ok_and_is_warned_again() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Restart);
    let mut s = QuotaState::new(t);
    assert_eq!(run(&mut s, t, 0, 0, cpu(1.0), &g), [(0, Action::Warn)]);
    assert_eq!(
        run(&mut s, t, 100, 2100, cpu(0.0), &g),
        [(2000, Action::Recover)]
    );
    assert_eq!(
        run(&mut s, t, 2200, 2300, cpu(1.0), &g),
        [(2200, Action::Warn)]
    );
}

#[test]
fn recovery_needs_every_governed_resource_calm() {
    let t = Instant::now();
    let g = QuotaGroup::standard(); // cpu soft 0.15, memory soft 200 MB
    let mut s = QuotaState::new(t);
    let d = s.assess(t, &cpu(0.2), &g).map(|d| d.action);
    assert_eq!(d, Some(Action::Warn));
    let cpu_calm_memory_high = cpu(0.0).with(Resource::Memory, 170e6);
    assert_eq!(run(&mut s, t, 100, 5000, cpu_calm_memory_high, &g), []);
    assert_eq!(
        run(&mut s, t, 5100, 7000, cpu(0.0), &g),
        [(7000, Action::Recover)]
    );
}

#[test]
fn the_worst_resource_decides() {
    let t = Instant::now();
    let g = QuotaGroup::standard();
    let mut s = QuotaState::new(t);
    // cpu at soft; mailbox 140 over its hard limit 128 → restart, on the mailbox.
    let usage = cpu(0.16).with(Resource::Mailbox, 140.0);
    let d = s.assess(t, &usage, &g);
    assert_eq!(
        d.map(|d| (d.action, d.resource, d.limit)),
        Some((Action::Restart, Resource::Mailbox, 128.0))
    );
    // Both over burst: the one further over it decides.
    let mut s = QuotaState::new(t);
    // heavy: cpu burst 0.6, mailbox burst 384; 25 % over vs 1.6 % over.
    let usage = cpu(0.75).with(Resource::Mailbox, 390.0);
    let d = s
        .assess(t, &usage, &QuotaGroup::heavy())
        .map(|d| d.resource);
    assert_eq!(d, Some(Resource::Cpu));
}

#[test]
fn an_ungoverned_resource_never_acts() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Terminate);
    let mut s = QuotaState::new(t);
    let huge = Usage {
        cpu: 0.0,
        memory: f64::MAX,
        mailbox: 1e12,
        rate: f64::INFINITY,
        stall: 1e9,
    };
    assert_eq!(run(&mut s, t, 0, 30_000, huge, &g), []);
    assert_eq!(s.status(), QuotaStatus::Ok);
    let mut s = QuotaState::new(t);
    assert_eq!(run(&mut s, t, 0, 1000, huge, &QuotaGroup::ungoverned()), []);
}

#[test]
fn suspended_mailbox_is_not_held_against_the_child() {
    let t = Instant::now();
    let g = QuotaGroup::heavy(); // cpu hard 0.8 → suspend; mailbox soft 256
    let mut s = QuotaState::new(t);
    assert_eq!(run(&mut s, t, 0, 0, cpu(0.9), &g), [(0, Action::Suspend)]);
    // Suspended, its CPU falls to 0 while messages pile up at its gate.
    let backlog = cpu(0.0).with(Resource::Mailbox, 600.0);
    assert_eq!(
        run(&mut s, t, 100, 2000, backlog, &g),
        [(2000, Action::Recover)]
    );
}

#[test]
fn suspended_for_a_flood_escalates_to_terminate() {
    let t = Instant::now();
    let g = QuotaGroup::heavy(); // mailbox hard 512 → suspend
    let mut s = QuotaState::new(t);
    let flood = Usage::default().with(Resource::Mailbox, 600.0);
    assert_eq!(
        run(&mut s, t, 0, 12_000, flood, &g),
        [(0, Action::Suspend), (10_000, Action::Terminate)]
    );
}

#[test]
fn nan_readings_neither_act_nor_recover() {
    let t = Instant::now();
    let g = cpu_group(HardAction::Restart);
    let mut s = QuotaState::new(t);
    assert_eq!(run(&mut s, t, 0, 0, cpu(1.0), &g), [(0, Action::Warn)]);
    assert_eq!(run(&mut s, t, 100, 10_000, cpu(f64::NAN), &g), []);
    assert_eq!(s.status(), QuotaStatus::Warned);
}

/// Every usage level of every resource, from calm to far over hard.
fn every_breach() -> Vec<Usage> {
    let g = QuotaGroup::critical();
    let mut out = vec![Usage::default()];
    for r in Resource::ALL {
        let l = g.limits(r).unwrap();
        for v in [l.soft, l.burst, l.hard, 10.0 * l.hard + 1.0] {
            out.push(Usage::default().with(r, v));
        }
    }
    out
}

#[test]
fn a_critical_group_only_warns_and_restarts() {
    // Even with a hard action it may not have (as if built by hand), over every
    // resource, every level, held for 30 s: never throttle, suspend or terminate.
    for hard_action in [HardAction::Terminate, HardAction::Restart] {
        let g = QuotaGroup {
            hard_action,
            ..QuotaGroup::critical()
        };
        for usage in every_breach() {
            let t = Instant::now();
            let mut s = QuotaState::new(t);
            for (ms, action) in run(&mut s, t, 0, 30_000, usage, &g) {
                assert!(
                    matches!(action, Action::Warn | Action::Restart | Action::Recover),
                    "{usage:?} at {ms} ms: {action:?}"
                );
            }
            assert!(matches!(s.status(), QuotaStatus::Ok | QuotaStatus::Warned));
        }
    }
}

#[test]
fn a_critical_group_warns_at_burst_and_restarts_at_hard() {
    let t = Instant::now();
    let g = QuotaGroup::critical(); // stall 0.1 / 0.15 / 0.2 s
    let mut s = QuotaState::new(t);
    let stall = |v| Usage::default().with(Resource::Stall, v);
    // Over burst for 12 s: warned once, never escalated by age.
    assert_eq!(
        run(&mut s, t, 0, 12_000, stall(0.15), &g),
        [(0, Action::Warn)]
    );
    let d = s.assess(at(t, 12_100), &stall(0.2), &g).unwrap();
    assert_eq!(
        (d.action, d.resource, d.limit, d.state_after),
        (Action::Restart, Resource::Stall, 0.2, QuotaStatus::Ok)
    );
    // CPU over hard (0.5 of a core) restarts too, never throttles.
    let mut s = QuotaState::new(t);
    let d = s.assess(t, &cpu(0.9), &g).map(|d| d.action);
    assert_eq!(d, Some(Action::Restart));
}

#[test]
fn stall_while_suspended_for_something_else_is_not_held_against_the_child() {
    let t = Instant::now();
    let g = QuotaGroup {
        stall: Some(Limits::midway(0.1, 0.2)),
        ..QuotaGroup::heavy() // cpu hard 0.8 → suspend
    };
    let mut s = QuotaState::new(t);
    assert_eq!(run(&mut s, t, 0, 0, cpu(0.9), &g), [(0, Action::Suspend)]);
    let held = cpu(0.0).with(Resource::Stall, 5.0);
    assert_eq!(
        run(&mut s, t, 100, 2000, held, &g),
        [(2000, Action::Recover)]
    );
}
