//! `nevil replay FILE --plot OUT.svg`: the recorded run drawn as one self-contained SVG.
//!
//! Three panels: the path the car took, seen from above in metres (over the simulated
//! room, its obstacles and its line when the config's backend is `sim`); the motor
//! powers (left, right) over time; the steering over time. Both time panels shade the
//! intervals the e-stop was engaged (with its reasons) and mark the tree's restarts
//! and escalations with the actor's name (recordings of format version 2 have them).
//!
//! The recording holds no pose: the path is dead reckoning from the recorded motor
//! commands through the simulator's car model ([`DeadReckoning`]), and the plot says
//! so. A [`Plot`] takes the records one at a time in bounded memory: each series is
//! thinned evenly as it grows (time buckets that keep their extremes, so no spike is
//! lost), the path keeps an evenly spaced subset of poses, and each is drawn with at
//! most [`MAX_POINTS`] points (a flat stretch by its two ends); at most [`MAX_SPANS`]
//! e-stop intervals and [`MAX_MARKS`] tree marks are drawn, the rest counted.

use std::fmt::Write;

use super::dead_reckoning::DeadReckoning;
use super::svg::{self, escape, label, points_attr, ticks};
use crate::bus::Micros;
use crate::config::{Backend, Config};
use crate::hw::sim::car::{MAX_POWER, MAX_STEERING_DEG};
use crate::hw::sim::{Obstacle, Pose, SimConfig};
use crate::services::recorder::recording::{Record, TreeKind};

/// Points drawn per series (and for the path) at most.
pub const MAX_POINTS: usize = 2000;
/// E-stop intervals drawn at most; later ones are counted.
pub const MAX_SPANS: usize = 1000;
/// Restart and escalation marks drawn at most; later ones are counted.
pub const MAX_MARKS: usize = 1000;
/// Points a series holds before it is thinned to half: its memory bound.
const HELD: usize = 8192;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const PLOT_W: f64 = 860.0;
const PATH_MAX_H: f64 = 460.0;
/// A silence in a series longer than this (seconds) breaks its line: the controller
/// publishes every 20 ms.
const GAP_S: f64 = 0.25;

/// One e-stop interval: engaged at `start`, released at `end` (open to the end of the
/// recording if never released).
#[derive(Debug, Clone, PartialEq)]
struct Span {
    start: Micros,
    end: Option<Micros>,
    reasons: String,
}

/// A restart or escalation to mark.
#[derive(Debug, Clone, PartialEq)]
struct Mark {
    t: Micros,
    kind: TreeKind,
    path: String,
    detail: String,
}

/// A series over time, thinned evenly as it grows: values fall into time buckets, each
/// keeping its lowest and highest; when there are too many buckets, they double in width
/// and merge in pairs. Memory stays under [`HELD`] points and every spike is kept.
#[derive(Debug)]
struct Series {
    /// Bucket width, seconds.
    width: f64,
    buckets: Vec<Bucket>,
}

/// One bucket of a [`Series`]: its index (start time / width) and its extremes.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    index: u64,
    lo: (f64, f64),
    hi: (f64, f64),
}

impl Bucket {
    fn take(&mut self, p: (f64, f64)) {
        if p.1 < self.lo.1 {
            self.lo = p;
        }
        if p.1 > self.hi.1 {
            self.hi = p;
        }
    }
}

impl Default for Series {
    fn default() -> Self {
        // Finer than the controller's 20 ms: one output per bucket until it grows.
        Self {
            width: 0.01,
            buckets: Vec::new(),
        }
    }
}

impl Series {
    /// Takes `v` at `t_s`; a value that is not a number (a corrupt record) is skipped.
    fn push(&mut self, t_s: f64, v: f64) {
        if !v.is_finite() {
            return;
        }
        let index = (t_s / self.width) as u64;
        match self.buckets.last_mut() {
            Some(last) if last.index == index => last.take((t_s, v)),
            _ => self.buckets.push(Bucket {
                index,
                lo: (t_s, v),
                hi: (t_s, v),
            }),
        }
        if self.buckets.len() >= HELD / 2 {
            self.width *= 2.0;
            let mut merged: Vec<Bucket> = Vec::with_capacity(HELD / 4 + 1);
            for mut b in self.buckets.drain(..) {
                b.index /= 2;
                match merged.last_mut() {
                    Some(last) if last.index == b.index => {
                        last.take(b.lo);
                        last.take(b.hi);
                    }
                    _ => merged.push(b),
                }
            }
            self.buckets = merged;
        }
    }

    /// The points held, in time order: each bucket's extremes.
    fn points(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(2 * self.buckets.len());
        for b in &self.buckets {
            let (first, second) = if b.lo.0 <= b.hi.0 {
                (b.lo, b.hi)
            } else {
                (b.hi, b.lo)
            };
            out.push(first);
            if second != first {
                out.push(second);
            }
        }
        out
    }
}

/// The plot of a recording, fed one record at a time (see the module docs).
pub struct Plot {
    /// The simulated world, drawn under the path (backend `sim`).
    world: Option<SimConfig>,
    reckoning: DeadReckoning,
    path: Vec<(f64, f64)>,
    /// Motor commands whose pose went into the path: one in `path_every`.
    path_every: u64,
    path_seen: u64,
    left: Series,
    right: Series,
    steer: Series,
    spans: Vec<Span>,
    open: Option<usize>,
    spans_dropped: usize,
    marks: Vec<Mark>,
    marks_dropped: usize,
    restarts: usize,
    exits: usize,
    escalations: usize,
    records: usize,
    drives: usize,
    last_t: Micros,
}

impl Plot {
    /// A plot of a run made with `config`: its sim world is drawn when its backend is
    /// `sim`, and the path starts at its start pose (else at the origin, heading +x).
    pub fn new(config: &Config) -> Self {
        let world = (config.robot.backend == Backend::Sim).then(|| config.sim.clone());
        let start = world.as_ref().map_or(
            Pose {
                x_m: 0.0,
                y_m: 0.0,
                heading_deg: 0.0,
            },
            |w| w.start,
        );
        Self {
            world,
            reckoning: DeadReckoning::new(start),
            path: vec![(start.x_m, start.y_m)],
            path_every: 1,
            path_seen: 0,
            left: Series::default(),
            right: Series::default(),
            steer: Series::default(),
            spans: Vec::new(),
            open: None,
            spans_dropped: 0,
            marks: Vec::new(),
            marks_dropped: 0,
            restarts: 0,
            exits: 0,
            escalations: 0,
            records: 0,
            drives: 0,
            last_t: 0,
        }
    }

    /// Takes the next record.
    pub fn feed(&mut self, record: &Record) {
        self.records += 1;
        let t = match record {
            Record::Range(r) => r.t_us,
            Record::Line(l) => l.t_us,
            Record::Battery(b) => b.t_us,
            Record::Command(c) => c.t_us,
            Record::Drive(d) => d.t_us,
            Record::EStop(e) => e.t_us,
            Record::Tree(t) => t.t_us,
        };
        self.last_t = self.last_t.max(t);
        match record {
            Record::Drive(d) => {
                self.drives += 1;
                let s = seconds(d.t_us);
                self.left.push(s, d.left);
                self.right.push(s, d.right);
                self.steer.push(s, d.steer_deg);
                self.reckoning.drive(d);
                self.push_pose();
            }
            Record::EStop(e) => self.estop(e.t_us, e.engaged, &e.reason),
            Record::Tree(tree) => {
                match tree.kind {
                    TreeKind::Restart => self.restarts += 1,
                    TreeKind::Exit => self.exits += 1,
                    TreeKind::Escalation => self.escalations += 1,
                }
                if tree.kind != TreeKind::Exit {
                    if self.marks.len() < MAX_MARKS {
                        self.marks.push(Mark {
                            t: tree.t_us,
                            kind: tree.kind,
                            path: tree.path.clone(),
                            detail: tree.detail.clone(),
                        });
                    } else {
                        self.marks_dropped += 1;
                    }
                }
            }
            _ => {}
        }
    }

    /// Keeps the pose of every `path_every`-th motor command; when the path is full,
    /// every other point goes and the stride doubles, so it stays evenly thinned.
    fn push_pose(&mut self) {
        self.path_seen += 1;
        if self.path_seen % self.path_every != 0 {
            return;
        }
        let p = self.reckoning.pose();
        self.path.push((p.x_m, p.y_m));
        if self.path.len() >= HELD {
            self.path = self.path.iter().copied().step_by(2).collect();
            self.path_every *= 2;
        }
    }

    fn estop(&mut self, t: Micros, engaged: bool, reason: &str) {
        match (engaged, self.open) {
            (true, Some(i)) => {
                // Engaged again while engaged: another reason joins (bounded).
                let span = &mut self.spans[i];
                if !span.reasons.split("; ").any(|r| r == reason) && span.reasons.len() < 200 {
                    span.reasons.push_str("; ");
                    span.reasons.push_str(reason);
                }
            }
            (true, None) if self.spans.len() < MAX_SPANS => {
                self.open = Some(self.spans.len());
                self.spans.push(Span {
                    start: t,
                    end: None,
                    reasons: reason.chars().take(200).collect(),
                });
            }
            (true, None) => self.spans_dropped += 1,
            (false, Some(i)) => {
                self.spans[i].end = Some(t);
                self.open = None;
            }
            (false, None) => {}
        }
    }

    /// The SVG of everything fed, titled with `name` (the recording's file name).
    pub fn render(mut self, name: &str) -> String {
        self.reckoning.advance_to(self.last_t);
        let end = self.reckoning.pose();
        self.path.push((end.x_m, end.y_m));
        let duration = seconds(self.last_t);
        let t_end = if duration > 0.0 { duration } else { 1.0 };

        let mut body = String::new();
        let path_top = 100.0;
        let path_bottom = self.path_panel(&mut body, path_top);
        let power = Chart {
            top: path_bottom + 70.0,
            height: 180.0,
            t_end,
            lo: -MAX_POWER,
            hi: MAX_POWER,
        };
        let steer = Chart {
            top: power.top + power.height + 70.0,
            height: 130.0,
            t_end,
            lo: -MAX_STEERING_DEG,
            hi: MAX_STEERING_DEG,
        };
        power.frame(&mut body, "Motor power", "%");
        steer.frame(&mut body, "Steering", "degrees (positive: right)");
        // The reasons are written once, on the power panel.
        self.events(&mut body, &power, true);
        self.events(&mut body, &steer, false);
        // Left under right, wider: where they are equal, both show.
        let left = r##"stroke="#1f77b4" stroke-width="3.5" opacity="0.6""##;
        let right = r##"stroke="#ff7f0e" stroke-width="1.2""##;
        let steering = r##"stroke="#6a3d9a" stroke-width="1.2""##;
        power.series(&mut body, &self.left.points(), "series left", left);
        power.series(&mut body, &self.right.points(), "series right", right);
        steer.series(&mut body, &self.steer.points(), "series steer", steering);
        legend(
            &mut body,
            power.top - 12.0,
            &[
                ("left", "#1f77b4", false),
                ("right", "#ff7f0e", false),
                ("e-stop engaged", "#d62728", true),
                ("restart", "#2ca02c", false),
                ("escalation", "#9467bd", false),
            ],
        );
        legend(
            &mut body,
            steer.top - 12.0,
            &[("steering", "#6a3d9a", false)],
        );
        let height = steer.top + steer.height + 60.0;

        let mut out = String::with_capacity(body.len() + 2048);
        let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            out,
            r#"<rect width="100%" height="100%" fill="white"/><text id="title" x="{LEFT}" y="28" font-size="18" font-weight="bold">nevil replay: {} ({duration:.1} s, {} records)</text>"#,
            escape(name),
            self.records
        );
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="48">{} motor commands; tree: {} restarts, {} exits, {} escalations; {} e-stop intervals{}</text>"#,
            self.drives,
            self.restarts,
            self.exits,
            self.escalations,
            self.spans.len() + self.spans_dropped,
            dropped_note(self.spans_dropped, self.marks_dropped)
        );
        let _ = writeln!(
            out,
            r##"<text id="path-note" x="{LEFT}" y="66" fill="#555">Path: dead reckoning from the recorded motor commands through the simulator's car model (walls and obstacles not applied; on a real robot an estimate).</text>"##
        );
        if self.records == 0 {
            let _ = writeln!(
                out,
                r##"<text id="empty" x="{}" y="86" font-size="16" fill="#d62728">no records</text>"##,
                LEFT
            );
        } else if self.drives == 0 {
            let _ = writeln!(
                out,
                r##"<text id="empty" x="{LEFT}" y="86" font-size="14" fill="#d62728">no motor commands recorded</text>"##
            );
        }
        out.push_str(&body);
        out.push_str("</svg>\n");
        out
    }

    /// The top view: world, path, start and end; returns its bottom edge.
    fn path_panel(&self, out: &mut String, top: f64) -> f64 {
        let mut bounds = Bounds::of(&self.path);
        if let Some(w) = &self.world {
            bounds.add(0.0, 0.0);
            bounds.add(w.room.width_m, w.room.height_m);
        }
        bounds.pad(0.2, 1.0);
        let scale = (PLOT_W / bounds.width()).min(PATH_MAX_H / bounds.height());
        let (w, h) = (bounds.width() * scale, bounds.height() * scale);
        let px = |x: f64| LEFT + (x - bounds.x0) * scale;
        let py = |y: f64| top + (bounds.y1 - y) * scale;
        let _ = writeln!(
            out,
            r#"<g id="top-view"><text x="{LEFT}" y="{:.1}" font-weight="bold">Path (top view, metres)</text>"#,
            top - 10.0
        );
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{w:.1}" height="{h:.1}" fill="#fafafa" stroke="#999"/>"##
        );
        for x in ticks(bounds.x0, bounds.x1, 10) {
            let _ = writeln!(
                out,
                r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#999"/><text x="{0:.1}" y="{3:.1}" text-anchor="middle">{4}</text>"##,
                px(x),
                top + h,
                top + h + 5.0,
                top + h + 18.0,
                label(x)
            );
        }
        for y in ticks(bounds.y0, bounds.y1, 8) {
            let _ = writeln!(
                out,
                r##"<line x1="{0:.1}" y1="{1:.1}" x2="{2:.1}" y2="{1:.1}" stroke="#999"/><text x="{3:.1}" y="{4:.1}" text-anchor="end">{5}</text>"##,
                LEFT - 5.0,
                py(y),
                LEFT,
                LEFT - 8.0,
                py(y) + 4.0,
                label(y)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">x (m)</text><text x="20" y="{:.1}" transform="rotate(-90 20 {:.1})" text-anchor="middle">y (m)</text>"#,
            LEFT + w / 2.0,
            top + h + 34.0,
            top + h / 2.0,
            top + h / 2.0
        );
        if let Some(world) = &self.world {
            let room = &world.room;
            let _ = writeln!(
                out,
                r##"<rect class="room" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#333" stroke-width="3"/>"##,
                px(0.0),
                py(room.height_m),
                room.width_m * scale,
                room.height_m * scale
            );
            let line = &world.line;
            let _ = writeln!(
                out,
                r##"<rect class="line" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="{:.1}" fill="none" stroke="#222" stroke-width="{:.1}" opacity="0.5"/>"##,
                px(line.centre_x_m - line.width_m / 2.0),
                py(line.centre_y_m + line.height_m / 2.0),
                line.width_m * scale,
                line.height_m * scale,
                line.corner_radius_m * scale,
                (line.line_width_m * scale).max(1.0)
            );
            for o in &world.obstacles {
                let _ = match *o {
                    Obstacle::Circle { x_m, y_m, radius_m } => writeln!(
                        out,
                        r##"<circle class="obstacle" cx="{:.1}" cy="{:.1}" r="{:.1}" fill="#bbb" stroke="#666"/>"##,
                        px(x_m),
                        py(y_m),
                        radius_m * scale
                    ),
                    Obstacle::Box {
                        x_m,
                        y_m,
                        size_x_m,
                        size_y_m,
                    } => writeln!(
                        out,
                        r##"<rect class="obstacle" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#bbb" stroke="#666"/>"##,
                        px(x_m - size_x_m / 2.0),
                        py(y_m + size_y_m / 2.0),
                        size_x_m * scale,
                        size_y_m * scale
                    ),
                };
            }
        }
        let drawn = svg::stride(&self.path, MAX_POINTS);
        let _ = writeln!(
            out,
            r##"<polyline id="path" class="path" fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
            points_attr(drawn.iter().map(|&(x, y)| (px(x), py(y))))
        );
        if let (Some(first), Some(last)) = (self.path.first(), self.path.last()) {
            let _ = writeln!(
                out,
                r##"<circle class="start" cx="{:.1}" cy="{:.1}" r="5" fill="#2ca02c"><title>start</title></circle><circle class="end" cx="{:.1}" cy="{:.1}" r="5" fill="#d62728"><title>end</title></circle>"##,
                px(first.0),
                py(first.1),
                px(last.0),
                py(last.1)
            );
        }
        out.push_str("</g>\n");
        top + h + 40.0
    }

    /// The e-stop shading (labelled with its reasons if `reasons`) and the tree's marks
    /// on `chart`. Labels close to the one before are stacked, and those near the right
    /// edge end at their mark.
    fn events(&self, out: &mut String, chart: &Chart, reasons: bool) {
        let mut labels = Stack::default();
        for span in &self.spans {
            let x0 = chart.x(seconds(span.start));
            let x1 = chart
                .x(seconds(span.end.unwrap_or(self.last_t)))
                .max(x0 + 2.0);
            let until = span
                .end
                .map_or("the end".to_string(), |e| format!("{:.2} s", seconds(e)));
            let why = escape(&span.reasons);
            let label = if reasons {
                let (x, anchor) = label_at(x0 + 2.0);
                let y = chart.top + 11.0 + labels.level(x0) * 11.0;
                format!(
                    r##"<text x="{x:.1}" y="{y:.1}" font-size="10" fill="#d62728" text-anchor="{anchor}">{why}</text>"##
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                r##"<g class="estop"><rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#d62728" opacity="0.18"/>{label}<title>e-stop engaged {:.2} s to {until}: {why}</title></g>"##,
                chart.top,
                x1 - x0,
                chart.height,
                seconds(span.start)
            );
        }
        let mut labels = Stack::default();
        for mark in &self.marks {
            let (class, colour) = match mark.kind {
                TreeKind::Escalation => ("escalation", "#9467bd"),
                _ => ("restart", "#2ca02c"),
            };
            let x = chart.x(seconds(mark.t));
            let name = mark.path.rsplit('/').next().unwrap_or(&mark.path);
            let (tx, anchor) = label_at(x + 3.0);
            let y = chart.top + chart.height - 4.0 - labels.level(x) * 11.0;
            let _ = writeln!(
                out,
                r##"<g class="{class}"><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3"/><text x="{tx:.1}" y="{y:.1}" font-size="10" fill="{colour}" text-anchor="{anchor}">{}</text><title>{} {} at {:.2} s: {}</title></g>"##,
                chart.top,
                chart.top + chart.height,
                escape(name),
                mark.kind.name(),
                escape(&mark.path),
                seconds(mark.t),
                escape(&mark.detail)
            );
        }
    }
}

/// Where a label starting at `x` goes: there, or ending there when too near the right
/// edge to fit.
fn label_at(x: f64) -> (f64, &'static str) {
    if x > LEFT + PLOT_W - 90.0 {
        (x - 5.0, "end")
    } else {
        (x, "start")
    }
}

/// Stacks labels: one within 90 px of the previous goes a line further (up to four
/// lines, then back to the first).
#[derive(Default)]
struct Stack {
    last_x: Option<f64>,
    level: u8,
}

impl Stack {
    fn level(&mut self, x: f64) -> f64 {
        self.level = match self.last_x {
            Some(last) if x - last < 90.0 => (self.level + 1) % 4,
            _ => 0,
        };
        self.last_x = Some(x);
        f64::from(self.level)
    }
}

/// The note on what was left out, if anything.
fn dropped_note(spans: usize, marks: usize) -> String {
    if spans == 0 && marks == 0 {
        String::new()
    } else {
        format!(
            " ({spans} e-stop intervals and {marks} tree marks beyond the drawn ones not drawn)"
        )
    }
}

fn seconds(t: Micros) -> f64 {
    t as f64 / 1e6
}

/// A time panel: seconds across, `lo..=hi` up.
struct Chart {
    top: f64,
    height: f64,
    t_end: f64,
    lo: f64,
    hi: f64,
}

impl Chart {
    fn x(&self, t: f64) -> f64 {
        LEFT + (t / self.t_end).clamp(0.0, 1.0) * PLOT_W
    }

    fn y(&self, v: f64) -> f64 {
        let f = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        self.top + (1.0 - f) * self.height
    }

    /// Title, box, ticks and units.
    fn frame(&self, out: &mut String, title: &str, unit: &str) {
        let bottom = self.top + self.height;
        let _ = writeln!(
            out,
            r##"<text x="{LEFT}" y="{:.1}" font-weight="bold">{title}</text><rect x="{LEFT}" y="{:.1}" width="{PLOT_W}" height="{:.1}" fill="none" stroke="#999"/>"##,
            self.top - 12.0,
            self.top,
            self.height
        );
        for t in ticks(0.0, self.t_end, 10) {
            let _ = writeln!(
                out,
                r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#999"/><text x="{0:.1}" y="{3:.1}" text-anchor="middle">{4}</text>"##,
                self.x(t),
                bottom,
                bottom + 5.0,
                bottom + 18.0,
                label(t)
            );
        }
        for v in ticks(self.lo, self.hi, 4) {
            let _ = writeln!(
                out,
                r##"<line x1="{0:.1}" y1="{1:.1}" x2="{2:.1}" y2="{1:.1}" stroke="#eee"/><text x="{3:.1}" y="{4:.1}" text-anchor="end">{5}</text>"##,
                LEFT,
                self.y(v),
                LEFT + PLOT_W,
                LEFT - 8.0,
                self.y(v) + 4.0,
                label(v)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (s)</text><text x="20" y="{:.1}" transform="rotate(-90 20 {:.1})" text-anchor="middle">{unit}</text>"#,
            LEFT + PLOT_W / 2.0,
            bottom + 34.0,
            self.top + self.height / 2.0,
            self.top + self.height / 2.0
        );
    }

    /// A series as a line, broken where the recording has no value for a while (the
    /// controller was down): longer than [`GAP_S`] or eight drawn points' spacing.
    fn series(&self, out: &mut String, points: &[(f64, f64)], class: &str, style: &str) {
        let drawn = svg::min_max(points, MAX_POINTS);
        let gap = GAP_S.max(8.0 * self.t_end / MAX_POINTS as f64);
        let mut prev = f64::NEG_INFINITY;
        let pixels: Vec<((f64, f64), bool)> = drawn
            .iter()
            .map(|&(t, v)| {
                let broken = t - prev > gap;
                prev = t;
                ((self.x(t), self.y(v)), broken)
            })
            .collect();
        let d = svg::path_d(svg::drop_flat(&pixels));
        let _ = writeln!(
            out,
            r#"<path class="{class}" fill="none" {style} d="{d}"/>"#
        );
    }
}

/// A row of swatches at the right of the panel title line at `y`.
fn legend(out: &mut String, y: f64, items: &[(&str, &str, bool)]) {
    let mut x = LEFT + PLOT_W;
    let _ = write!(out, r#"<g class="legend">"#);
    for (name, colour, shaded) in items.iter().rev() {
        x -= 8.0 * name.len() as f64 + 30.0;
        let swatch = if *shaded {
            format!(
                r#"<rect x="{x:.1}" y="{:.1}" width="18" height="10" fill="{colour}" opacity="0.3"/>"#,
                y - 9.0
            )
        } else {
            format!(
                r#"<line x1="{x:.1}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="{colour}" stroke-width="2"/>"#,
                y - 4.0,
                x + 18.0
            )
        };
        let _ = write!(
            out,
            r#"{swatch}<text x="{:.1}" y="{y:.1}">{name}</text>"#,
            x + 22.0
        );
    }
    out.push_str("</g>\n");
}

/// The extent of the drawn world, in metres.
struct Bounds {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Bounds {
    fn of(points: &[(f64, f64)]) -> Self {
        let mut b = Self {
            x0: f64::INFINITY,
            y0: f64::INFINITY,
            x1: f64::NEG_INFINITY,
            y1: f64::NEG_INFINITY,
        };
        for &(x, y) in points {
            b.add(x, y);
        }
        b
    }

    fn add(&mut self, x: f64, y: f64) {
        if x.is_finite() && y.is_finite() {
            self.x0 = self.x0.min(x);
            self.x1 = self.x1.max(x);
            self.y0 = self.y0.min(y);
            self.y1 = self.y1.max(y);
        }
    }

    /// Adds `margin` around, and grows each side to at least `min`.
    fn pad(&mut self, margin: f64, min: f64) {
        if !self.x0.is_finite() {
            (self.x0, self.y0, self.x1, self.y1) = (0.0, 0.0, 0.0, 0.0);
        }
        for (lo, hi) in [(&mut self.x0, &mut self.x1), (&mut self.y0, &mut self.y1)] {
            let grow = ((min - (*hi - *lo)) / 2.0).max(0.0) + margin;
            *lo -= grow;
            *hi += grow;
        }
    }

    fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    fn height(&self) -> f64 {
        self.y1 - self.y0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Drive, EStop};
    use crate::services::recorder::recording::TreeRecord;

    fn config() -> Config {
        Config::load(None).unwrap()
    }

    fn drive(t_ms: u64, power: f64, steer_deg: f64) -> Record {
        Record::Drive(Drive {
            t_us: t_ms * 1000,
            left: power,
            right: power,
            steer_deg,
            commands_seen: 0,
            estops_seen: 0,
        })
    }

    fn estop(t_ms: u64, engaged: bool, reason: &str) -> Record {
        Record::EStop(EStop {
            t_us: t_ms * 1000,
            engaged,
            reason: reason.into(),
        })
    }

    fn tree(t_ms: u64, kind: TreeKind, path: &str) -> Record {
        Record::Tree(TreeRecord {
            t_us: t_ms * 1000,
            kind,
            path: path.into(),
            detail: "panic: <injected> & \"quoted\"".into(),
        })
    }

    /// The `points` attribute of the element that has `marker` (an id or class).
    fn points_of<'a>(svg: &'a str, marker: &str) -> Vec<&'a str> {
        let at = svg.find(marker).unwrap_or_else(|| panic!("no {marker}"));
        let rest = &svg[at..];
        let start = [rest.find("points=\""), rest.find(" d=\"")]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        let start = start + rest[start..].find('"').unwrap() + 1;
        let end = rest[start..].find('"').unwrap();
        rest[start..start + end]
            .split(' ')
            .map(|p| p.trim_start_matches(['M', 'L']))
            .collect()
    }

    fn plot(records: &[Record]) -> String {
        let mut plot = Plot::new(&config());
        for r in records {
            plot.feed(r);
        }
        plot.render("run.rec")
    }

    #[test]
    fn draws_the_path_the_commands_the_estops_and_the_restarts() {
        let mut records = vec![estop(0, true, "starting")];
        records.push(estop(500, false, "clear"));
        for i in 0..200 {
            let power = 30.0 + (i % 10) as f64;
            records.push(drive(
                500 + i * 20,
                power,
                if i < 100 { 0.0 } else { -20.0 },
            ));
        }
        records.push(tree(2000, TreeKind::Exit, "root/control/motion"));
        records.push(tree(2001, TreeKind::Restart, "root/control/motion"));
        records.push(tree(3000, TreeKind::Escalation, "root/x<y>"));
        records.push(estop(4500, true, "shutdown"));
        let svg = plot(&records);
        assert!(svg.starts_with("<?xml") && svg.ends_with("</svg>\n"));
        assert!(
            svg.contains("nevil replay: run.rec (4.5 s, 206 records)"),
            "{svg}"
        );
        assert!(points_of(&svg, r#"id="path""#).len() > 100);
        assert!(points_of(&svg, r#"class="series left""#).len() >= 200);
        assert!(points_of(&svg, r#"class="series right""#).len() >= 200);
        // On both time panels: two e-stop intervals, one restart, one escalation.
        assert_eq!(svg.matches(r#"<g class="estop">"#).count(), 4);
        assert!(svg.contains("e-stop engaged 4.50 s to the end: shutdown"));
        assert_eq!(svg.matches(r#"<g class="restart">"#).count(), 2);
        assert!(svg.contains(">motion</text>"));
        assert_eq!(svg.matches(r#"<g class="escalation">"#).count(), 2);
        assert!(svg.contains("1 restarts, 1 exits, 1 escalations"));
        // The recording's text is escaped wherever it appears.
        assert!(svg.contains("root/x&lt;y&gt;") && !svg.contains("x<y>"));
        assert!(svg.contains("&lt;injected&gt; &amp; &quot;quoted&quot;"));
        // The default config is the simulator: its room and obstacles are drawn.
        assert!(svg.contains(r#"class="room""#) && svg.contains(r#"class="obstacle""#));
        assert!(svg.contains("dead reckoning"));
    }

    #[test]
    fn the_path_ends_where_the_dead_reckoning_does() {
        let records: Vec<Record> = (0..100).map(|i| drive(i * 20, 50.0, 10.0)).collect();
        let mut dr = DeadReckoning::new(config().sim.start);
        let mut plot = Plot::new(&config());
        for r in &records {
            if let Record::Drive(d) = r {
                dr.drive(d);
            }
            plot.feed(r);
        }
        let end = dr.pose();
        assert!(end.x_m > config().sim.start.x_m + 0.3, "{end:?}");
        assert_eq!(plot.path.len(), 101);
        assert_eq!(plot.path.last(), Some(&(end.x_m, end.y_m)));
    }

    #[test]
    fn a_long_run_is_drawn_with_bounded_points_and_memory() {
        let mut plot = Plot::new(&config());
        // An hour at 50 Hz.
        for i in 0..180_000u64 {
            let power = if i == 99_999 { 100.0 } else { 30.0 };
            plot.feed(&drive(i * 20, power, (i % 7) as f64 - 3.0));
            assert!(plot.left.buckets.len() < HELD / 2 && plot.path.len() < HELD);
        }
        let svg = plot.render("long.rec");
        for marker in [r#"id="path""#, r#"class="series steer""#] {
            let n = points_of(&svg, marker).len();
            assert!((MAX_POINTS / 2..=MAX_POINTS).contains(&n), "{marker}: {n}");
        }
        // The one full-power spike survived the thinning: two levels drawn, 30 % and
        // 100 %, and the flat stretches are a few points.
        let left = points_of(&svg, r#"class="series left""#);
        assert!(left.len() <= 8, "{left:?}");
        let mut ys: Vec<&str> = left.iter().map(|p| p.split(',').nth(1).unwrap()).collect();
        ys.sort_unstable();
        ys.dedup();
        assert_eq!(ys.len(), 2, "{ys:?}");
        assert!(svg.len() < 200_000, "{} bytes", svg.len());
    }

    #[test]
    fn hostile_values_draw_nothing_absurd() {
        let mut records = vec![drive(0, 10.0, 0.0)];
        records.push(Record::Drive(Drive {
            t_us: 5_000,
            left: f64::NAN,
            right: f64::INFINITY,
            steer_deg: -1e300,
            commands_seen: 0,
            estops_seen: 0,
        }));
        records.push(estop(7, true, &"<&>".repeat(5000)));
        records.push(tree(8, TreeKind::Restart, "/"));
        records.push(tree(9, TreeKind::Restart, ""));
        records.push(drive(u64::MAX / 1000, 10.0, 0.0));
        let svg = plot(&records);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(svg.contains("<g class=\"estop\">"));
        // The reason is cut to 200 characters before escaping.
        assert!(svg.len() < 40_000, "{} bytes", svg.len());
    }

    #[test]
    fn an_empty_recording_still_plots_and_says_so() {
        let svg = plot(&[]);
        assert!(svg.contains(r#"id="empty""#) && svg.contains("no records"));
        assert!(svg.contains("(0.0 s, 0 records)"));
        assert!(svg.ends_with("</svg>\n"));
        let only_sensors = plot(&[estop(10, true, "stale ultrasonic")]);
        assert!(only_sensors.contains("no motor commands recorded"));
    }

    #[test]
    fn many_estops_are_capped_and_counted() {
        let records: Vec<Record> = (0..2 * MAX_SPANS as u64 + 10)
            .flat_map(|i| [estop(i * 10, true, "a"), estop(i * 10 + 5, false, "a")])
            .collect();
        let mut plot = Plot::new(&config());
        records.iter().for_each(|r| plot.feed(r));
        assert_eq!(plot.spans.len(), MAX_SPANS);
        assert_eq!(plot.spans_dropped, MAX_SPANS + 10);
        // A second reason while engaged joins the open interval.
        let mut plot = Plot::new(&config());
        plot.feed(&estop(0, true, "stale ultrasonic"));
        plot.feed(&estop(1, true, "battery low"));
        plot.feed(&estop(2, true, "battery low"));
        assert_eq!(plot.spans.len(), 1);
        assert_eq!(plot.spans[0].reasons, "stale ultrasonic; battery low");
    }
}
