//! Plane geometry of the simulated world: pure functions, no state, no randomness.
//!
//! Conventions: metres; x east, y north, origin at the room's south-west corner; angles
//! in radians counter-clockwise from +x. Polygons are convex, vertices counter-clockwise.
//! A *clearance* is the gap between two solids: positive when apart, zero or negative
//! when they touch or overlap (how negative is not meaningful).

use std::ops::{Add, Mul, Sub};

/// A point or vector in the plane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct V2 {
    pub(crate) x: f64,
    pub(crate) y: f64,
}

impl V2 {
    pub(crate) const fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }

    /// The unit vector at `angle` radians.
    pub(crate) fn from_angle(angle: f64) -> Self {
        Self::new(angle.cos(), angle.sin())
    }

    pub(crate) fn dot(self, o: Self) -> f64 {
        self.x * o.x + self.y * o.y
    }

    pub(crate) fn cross(self, o: Self) -> f64 {
        self.x * o.y - self.y * o.x
    }

    pub(crate) fn len(self) -> f64 {
        self.x.hypot(self.y)
    }
}

impl Add for V2 {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.x + o.x, self.y + o.y)
    }
}

impl Sub for V2 {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.x - o.x, self.y - o.y)
    }
}

impl Mul<f64> for V2 {
    type Output = Self;
    fn mul(self, k: f64) -> Self {
        Self::new(self.x * k, self.y * k)
    }
}

/// A four-sided convex polygon, counter-clockwise (the car's footprint, a box).
pub(crate) type Quad = [V2; 4];

/// The ranger's field of view: rays from `apex` within `half` radians of `dir`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cone {
    apex: V2,
    dir: V2,
    cos_half: f64,
    edges: [V2; 2],
}

impl Cone {
    /// A cone at `apex` looking along `heading` (radians), `half` radians either side
    /// (below a right angle, so that the cone is convex).
    pub(crate) fn new(apex: V2, heading: f64, half: f64) -> Self {
        Self {
            apex,
            dir: V2::from_angle(heading),
            cos_half: half.cos(),
            edges: [
                V2::from_angle(heading + half),
                V2::from_angle(heading - half),
            ],
        }
    }

    /// Whether the direction of `v` (non-zero) lies inside the cone.
    fn contains_dir(&self, v: V2) -> bool {
        v.dot(self.dir) >= v.len() * self.cos_half
    }

    /// The nearest point of a convex solid inside the cone, given the solid's nearest
    /// point to the apex (`None`: the apex is inside) and a ray caster. For a convex
    /// solid, either its nearest point lies in the cone, or the nearest point of
    /// solid ∩ cone lies on one of the cone's two edge rays.
    fn nearest_in(&self, nearest: Option<V2>, ray: impl Fn(V2, V2) -> Option<f64>) -> Option<f64> {
        let Some(p) = nearest else {
            return Some(0.0);
        };
        let v = p - self.apex;
        let d = v.len();
        if d == 0.0 || self.contains_dir(v) {
            return Some(d);
        }
        min_opt(ray(self.apex, self.edges[0]), ray(self.apex, self.edges[1]))
    }
}

/// The smaller of two optional distances.
pub(crate) fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A solid obstacle on the floor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Shape {
    /// A disc: centre and radius.
    Circle { c: V2, r: f64 },
    /// An axis-aligned rectangle: its south-west and north-east corners.
    Rect { min: V2, max: V2 },
}

impl Shape {
    /// The point of the solid nearest to `p`, or `None` when `p` is inside it.
    fn nearest(&self, p: V2) -> Option<V2> {
        match *self {
            Shape::Circle { c, r } => {
                let v = p - c;
                let d = v.len();
                (d > r).then(|| c + v * (r / d))
            }
            Shape::Rect { min, max } => {
                let q = V2::new(p.x.clamp(min.x, max.x), p.y.clamp(min.y, max.y));
                (q != p).then_some(q)
            }
        }
    }

    /// The distance along the ray `o + t·u` (u a unit vector, t ≥ 0) to the solid.
    fn ray(&self, o: V2, u: V2) -> Option<f64> {
        match *self {
            Shape::Circle { c, r } => {
                let m = o - c;
                let b = m.dot(u);
                let k = m.dot(m) - r * r;
                if k > 0.0 && b > 0.0 {
                    return None;
                }
                let disc = b * b - k;
                (disc >= 0.0).then(|| (-b - disc.sqrt()).max(0.0))
            }
            Shape::Rect { min, max } => {
                let (mut t0, mut t1) = (0.0_f64, f64::INFINITY);
                for (o, u, lo, hi) in [(o.x, u.x, min.x, max.x), (o.y, u.y, min.y, max.y)] {
                    if u.abs() < 1e-12 {
                        if o < lo || o > hi {
                            return None;
                        }
                    } else {
                        let (a, b) = ((lo - o) / u, (hi - o) / u);
                        t0 = t0.max(a.min(b));
                        t1 = t1.min(a.max(b));
                    }
                }
                (t0 <= t1).then_some(t0)
            }
        }
    }

    /// Distance from the cone's apex to the nearest point of the solid inside the cone.
    pub(crate) fn cone_distance(&self, cone: &Cone) -> Option<f64> {
        cone.nearest_in(self.nearest(cone.apex), |o, u| self.ray(o, u))
    }

    /// Clearance between the solid and a convex polygon.
    pub(crate) fn clearance(&self, poly: &Quad) -> f64 {
        match *self {
            Shape::Circle { c, r } => {
                if contains(poly, c) {
                    -r
                } else {
                    point_polygon_distance(c, poly) - r
                }
            }
            Shape::Rect { min, max } => {
                let rect = [min, V2::new(max.x, min.y), max, V2::new(min.x, max.y)];
                polygon_distance(poly, &rect)
            }
        }
    }
}

/// The room: the floor is `[0, w] × [0, h]`, everything outside is wall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Walls {
    pub(crate) w: f64,
    pub(crate) h: f64,
}

impl Walls {
    /// The four walls as half-planes `{p : n·p ≥ k}`.
    fn half_planes(&self) -> [(V2, f64); 4] {
        [
            (V2::new(-1.0, 0.0), 0.0),
            (V2::new(1.0, 0.0), self.w),
            (V2::new(0.0, -1.0), 0.0),
            (V2::new(0.0, 1.0), self.h),
        ]
    }

    /// Clearance between the walls and a polygon: the smallest gap of any vertex.
    pub(crate) fn clearance(&self, poly: &Quad) -> f64 {
        poly.iter()
            .map(|p| p.x.min(self.w - p.x).min(p.y).min(self.h - p.y))
            .fold(f64::INFINITY, f64::min)
    }

    /// Distance from the cone's apex to the nearest wall inside the cone.
    pub(crate) fn cone_distance(&self, cone: &Cone) -> Option<f64> {
        self.half_planes()
            .into_iter()
            .map(|(n, k)| {
                let gap = k - n.dot(cone.apex);
                let nearest = (gap > 0.0).then(|| cone.apex + n * gap);
                cone.nearest_in(nearest, |o, u| {
                    let nu = n.dot(u);
                    (nu > 0.0).then(|| (k - n.dot(o)) / nu)
                })
            })
            .fold(None, min_opt)
    }
}

/// A closed line loop painted on the floor: the outline of a rounded rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Track {
    pub(crate) centre: V2,
    /// Half the outline's width and height.
    pub(crate) half: V2,
    pub(crate) corner_radius: f64,
}

impl Track {
    /// Distance from `p` to the line's centre (the outline), from either side.
    pub(crate) fn distance(&self, p: V2) -> f64 {
        // Signed distance of a rounded box (negative inside), then its magnitude.
        let r = self.corner_radius;
        let d = p - self.centre;
        let q = V2::new(d.x.abs() - (self.half.x - r), d.y.abs() - (self.half.y - r));
        let outside = V2::new(q.x.max(0.0), q.y.max(0.0)).len();
        let inside = q.x.max(q.y).min(0.0);
        (outside + inside - r).abs()
    }
}

/// Whether `p` lies inside or on a counter-clockwise convex polygon.
pub(crate) fn contains(poly: &Quad, p: V2) -> bool {
    edges(poly).all(|(a, b)| (b - a).cross(p - a) >= 0.0)
}

/// The polygon's edges as (start, end) pairs.
fn edges(poly: &Quad) -> impl Iterator<Item = (V2, V2)> + '_ {
    (0..poly.len()).map(move |i| (poly[i], poly[(i + 1) % poly.len()]))
}

fn point_segment_distance(p: V2, a: V2, b: V2) -> f64 {
    let ab = b - a;
    let len2 = ab.dot(ab);
    let t = if len2 > 0.0 {
        ((p - a).dot(ab) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (p - (a + ab * t)).len()
}

fn point_polygon_distance(p: V2, poly: &Quad) -> f64 {
    edges(poly)
        .map(|(a, b)| point_segment_distance(p, a, b))
        .fold(f64::INFINITY, f64::min)
}

/// Whether some edge normal of `a` separates `a` from `b` (touching is not separated).
fn separated_by_edges_of(a: &Quad, b: &Quad) -> bool {
    edges(a).any(|(p, q)| {
        let n = V2::new(q.y - p.y, p.x - q.x); // outward for counter-clockwise order
        let a_max = a
            .iter()
            .map(|v| n.dot(*v))
            .fold(f64::NEG_INFINITY, f64::max);
        let b_min = b.iter().map(|v| n.dot(*v)).fold(f64::INFINITY, f64::min);
        b_min > a_max
    })
}

/// Clearance between two convex polygons: 0 when they touch or overlap, else the
/// gap, which two convex polygons reach between a vertex of one and an edge of the other.
pub(crate) fn polygon_distance(a: &Quad, b: &Quad) -> f64 {
    if !separated_by_edges_of(a, b) && !separated_by_edges_of(b, a) {
        return 0.0;
    }
    let ab = a.iter().map(|p| point_polygon_distance(*p, b));
    let ba = b.iter().map(|p| point_polygon_distance(*p, a));
    ab.chain(ba).fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-9;

    fn square(cx: f64, cy: f64, half: f64) -> Quad {
        [
            V2::new(cx - half, cy - half),
            V2::new(cx + half, cy - half),
            V2::new(cx + half, cy + half),
            V2::new(cx - half, cy + half),
        ]
    }

    #[test]
    fn circle_ahead_is_seen_at_its_surface() {
        let disc = Shape::Circle {
            c: V2::new(2.0, 0.0),
            r: 0.5,
        };
        let cone = Cone::new(V2::new(0.0, 0.0), 0.0, 15_f64.to_radians());
        let d = disc.cone_distance(&cone).unwrap();
        assert!((d - 1.5).abs() < EPS, "{d}");
        // Looking away: nothing.
        let away = Cone::new(V2::new(0.0, 0.0), std::f64::consts::PI, 0.2);
        assert_eq!(disc.cone_distance(&away), None);
    }

    #[test]
    fn circle_off_axis_is_seen_along_the_cone_edge() {
        // Centre 30° off axis: only the cone's upper edge (15°) reaches it.
        let c = V2::from_angle(30_f64.to_radians()) * 2.0;
        let disc = Shape::Circle { c, r: 0.6 };
        let cone = Cone::new(V2::new(0.0, 0.0), 0.0, 15_f64.to_radians());
        let d = disc.cone_distance(&cone).unwrap();
        let direct = 2.0 - 0.6;
        assert!(d > direct && d < 2.0, "{d}");
        let narrow = Cone::new(V2::new(0.0, 0.0), 0.0, 5_f64.to_radians());
        assert_eq!(disc.cone_distance(&narrow), None);
    }

    #[test]
    fn walls_are_seen_straight_and_slanted() {
        let walls = Walls { w: 4.0, h: 3.0 };
        let east = Cone::new(V2::new(1.0, 1.5), 0.0, 0.25);
        assert!((walls.cone_distance(&east).unwrap() - 3.0).abs() < EPS);
        // Heading 45° at a corner 1 m from both walls: the nearest wall point inside a
        // 15° cone lies on its edge ray, at 1/cos(30°).
        let ne = Cone::new(V2::new(3.0, 2.0), 45_f64.to_radians(), 15_f64.to_radians());
        let expected = 1.0 / 30_f64.to_radians().cos();
        assert!((walls.cone_distance(&ne).unwrap() - expected).abs() < EPS);
    }

    #[test]
    fn rect_is_seen_by_ray_and_by_nearest_point() {
        let rect = Shape::Rect {
            min: V2::new(1.0, -0.5),
            max: V2::new(1.5, 0.5),
        };
        let cone = Cone::new(V2::new(0.0, 0.0), 0.0, 0.2);
        assert!((rect.cone_distance(&cone).unwrap() - 1.0).abs() < EPS);
        // Inside: zero.
        let inside = Cone::new(V2::new(1.2, 0.0), 0.0, 0.2);
        assert_eq!(rect.cone_distance(&inside), Some(0.0));
    }

    #[test]
    fn clearances_are_positive_apart_and_not_positive_touching() {
        let car = square(0.0, 0.0, 0.1);
        let disc = Shape::Circle {
            c: V2::new(0.5, 0.0),
            r: 0.1,
        };
        assert!((disc.clearance(&car) - 0.3).abs() < EPS);
        let touching = Shape::Circle {
            c: V2::new(0.2, 0.0),
            r: 0.1,
        };
        assert!(touching.clearance(&car) <= EPS);
        let rect = Shape::Rect {
            min: V2::new(0.3, 0.3),
            max: V2::new(0.5, 0.5),
        };
        let diag = (0.2_f64 * 0.2 * 2.0).sqrt();
        assert!((rect.clearance(&car) - diag).abs() < EPS);
        let overlapping = Shape::Rect {
            min: V2::new(0.05, -0.05),
            max: V2::new(0.5, 0.05),
        };
        assert_eq!(overlapping.clearance(&car), 0.0);
        let walls = Walls { w: 1.0, h: 1.0 };
        assert!((walls.clearance(&square(0.5, 0.5, 0.1)) - 0.4).abs() < EPS);
        assert!(walls.clearance(&square(0.05, 0.5, 0.1)) < 0.0);
    }

    #[test]
    fn rotated_polygon_distance_uses_vertex_to_edge() {
        // A diamond whose right vertex points at a square's left edge.
        let r = std::f64::consts::FRAC_1_SQRT_2 * 0.2;
        let diamond = [
            V2::new(0.0, -r),
            V2::new(r, 0.0),
            V2::new(0.0, r),
            V2::new(-r, 0.0),
        ];
        let sq = square(1.0, 0.0, 0.2);
        assert!((polygon_distance(&diamond, &sq) - (0.8 - r)).abs() < EPS);
    }

    #[test]
    fn track_distance_is_zero_on_the_outline() {
        let track = Track {
            centre: V2::new(2.0, 1.5),
            half: V2::new(1.0, 0.5),
            corner_radius: 0.3,
        };
        assert!(track.distance(V2::new(2.0, 1.0)) < EPS); // bottom straight
        assert!(track.distance(V2::new(3.0, 1.5)) < EPS); // right straight
        let corner = V2::new(2.7, 1.3) + V2::from_angle(-0.8) * 0.3;
        assert!(track.distance(corner) < EPS); // on a rounded corner
        assert!((track.distance(V2::new(2.0, 1.5)) - 0.5).abs() < EPS); // centre
        assert!((track.distance(V2::new(2.0, 0.8)) - 0.2).abs() < EPS); // outside
    }
}
