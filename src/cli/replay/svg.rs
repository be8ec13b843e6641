//! The small pieces an SVG plot is written with, by hand: text escaping, series
//! downsampling, axis ticks and number formatting.

use std::fmt::Write;

/// `text` made safe inside an SVG (XML) element or a quoted attribute: `&<>"'` become
/// entities, and the characters XML 1.0 cannot hold at all (control characters other
/// than tab and newlines) become `?`. Recorded actor names and e-stop reasons go through
/// it: a recording is input.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// `points` reduced to at most `max` (at least 4), keeping the shape a plot shows: the
/// series is cut into `max / 2` buckets and each keeps its lowest and highest point, in
/// their order, so no spike disappears; the last point is always kept. Reducing an
/// already reduced series again keeps the extremes it kept.
pub fn min_max(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let max = max.max(4);
    if points.len() <= max {
        return points.to_vec();
    }
    // One slot for the last point.
    let buckets = (max - 1) / 2;
    let mut out = Vec::with_capacity(max);
    for b in 0..buckets {
        let from = b * points.len() / buckets;
        let to = ((b + 1) * points.len() / buckets).max(from + 1);
        let bucket = &points[from..to];
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in bucket.iter().enumerate() {
            if p.1 < bucket[lo].1 {
                lo = i;
            }
            if p.1 > bucket[hi].1 {
                hi = i;
            }
        }
        let (first, second) = (lo.min(hi), lo.max(hi));
        out.push(bucket[first]);
        if second != first {
            out.push(bucket[second]);
        }
    }
    if let (Some(last), Some(kept)) = (points.last(), out.last()) {
        if last != kept {
            out.push(*last);
        }
    }
    out
}

/// `points` thinned to at most `max` (at least 2) by keeping evenly spaced ones, the
/// first and the last included: for a path, where each point is near the last.
pub fn stride(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let max = max.max(2);
    if points.len() <= max {
        return points.to_vec();
    }
    let last = points.len() - 1;
    (0..max).map(|i| points[i * last / (max - 1)]).collect()
}

/// Round tick values covering `lo..=hi`: steps of 1, 2 or 5 × 10ⁿ, about `want` of them.
pub fn ticks(lo: f64, hi: f64, want: usize) -> Vec<f64> {
    let span = hi - lo;
    if !span.is_finite() || span <= 0.0 {
        return vec![lo];
    }
    let rough = span / want.max(1) as f64;
    let mag = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A tick label: as few decimals as the step needs (`0.5`, `2`, `-100`).
pub fn label(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// The `points` attribute of a polyline: `x,y` pairs with one decimal.
pub fn points_attr(points: impl IntoIterator<Item = (f64, f64)>) -> String {
    let mut out = String::new();
    for (x, y) in points {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{x:.1},{y:.1}");
    }
    out
}

/// The `d` attribute of a path through `points` (already in pixels), with one decimal:
/// a new subpath (a break in the line) at each point whose flag is set.
pub fn path_d(points: impl IntoIterator<Item = ((f64, f64), bool)>) -> String {
    let mut out = String::new();
    for (i, ((x, y), gap)) in points.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let cmd = if i == 0 || gap { 'M' } else { 'L' };
        let _ = write!(out, "{cmd}{x:.1},{y:.1}");
    }
    out
}

/// `points` (in pixels, each flagged when it starts a new subpath) without the inner
/// points of horizontal runs, as drawn (to a tenth of a pixel): a motor held at one power
/// for a minute is two points, not three thousand.
pub fn drop_flat(points: &[((f64, f64), bool)]) -> Vec<((f64, f64), bool)> {
    let level = |i: usize| (points[i].0 .1 * 10.0).round();
    (0..points.len())
        .filter(|&i| {
            let inner = i > 0 && i + 1 < points.len();
            let flat = inner
                && !points[i].1
                && !points[i + 1].1
                && level(i - 1) == level(i)
                && level(i) == level(i + 1);
            !flat
        })
        .map(|i| points[i])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup_and_no_illegal_character() {
        assert_eq!(
            escape(r#"a<b>&"c"'d'"#),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
        );
        assert_eq!(escape("root/control/motion"), "root/control/motion");
        assert_eq!(escape("bell\u{7}\0end\ttab"), "bell??end\ttab");
        assert_eq!(escape("stale ultrasonic — ok"), "stale ultrasonic — ok");
    }

    #[test]
    fn min_max_bounds_the_points_and_keeps_every_spike() {
        let mut points: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, 0.0)).collect();
        points[12_345].1 = 90.0;
        points[77_777].1 = -60.0;
        let out = min_max(&points, 2000);
        assert!(out.len() <= 2000, "{}", out.len());
        assert!(out.contains(&(12_345.0, 90.0)) && out.contains(&(77_777.0, -60.0)));
        assert_eq!(out.first(), points.first());
        assert_eq!(out.last(), points.last());
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "in order");
        // Reduced again, harder: the spikes are still there.
        let again = min_max(&out, 100);
        assert!(again.len() <= 100);
        assert!(again.contains(&(12_345.0, 90.0)) && again.contains(&(77_777.0, -60.0)));
        // Short series are left alone.
        assert_eq!(min_max(&points[..10], 2000), points[..10].to_vec());
        assert!(min_max(&[], 10).is_empty());
    }

    #[test]
    fn stride_keeps_the_ends_and_the_bound() {
        let points: Vec<(f64, f64)> = (0..10_001).map(|i| (i as f64, -(i as f64))).collect();
        let out = stride(&points, 2000);
        assert_eq!(out.len(), 2000);
        assert_eq!((out[0], out[1999]), (points[0], points[10_000]));
        assert_eq!(stride(&points[..3], 2000).len(), 3);
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            ticks(-100.0, 100.0, 4),
            vec![-100.0, -50.0, 0.0, 50.0, 100.0]
        );
        assert_eq!(ticks(0.0, 0.0, 5), vec![0.0]);
        let t = ticks(0.0, 63.7, 8);
        assert_eq!((t[0], t[1], *t.last().unwrap()), (0.0, 10.0, 60.0));
        assert_eq!(label(0.5), "0.5");
        assert_eq!(label(-100.0), "-100");
        assert_eq!(label(-0.0), "0");
        assert_eq!(points_attr([(1.0, 2.26), (3.0, 4.0)]), "1.0,2.3 3.0,4.0");
        let d = path_d([((1.0, 2.0), false), ((3.0, 4.0), false), ((5.0, 6.0), true)]);
        assert_eq!(d, "M1.0,2.0 L3.0,4.0 M5.0,6.0");
        let p = |x: f64, y: f64, gap: bool| ((x, y), gap);
        let line = [
            p(0.0, 5.0, false),
            p(1.0, 5.0, false),
            p(2.0, 5.01, false),
            p(3.0, 5.0, false),
            p(4.0, 9.0, false),
            p(5.0, 9.0, false),
            p(6.0, 9.0, true),
            p(7.0, 9.0, false),
        ];
        let kept: Vec<f64> = drop_flat(&line).iter().map(|q| q.0 .0).collect();
        // The run 0..3 keeps its ends; 4 starts a rise; 5 ends before a break; 6, 7 stay.
        assert_eq!(kept, vec![0.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    }
}
