//! `nevil replay FILE --plot OUT.svg` on a recorded simulated run: the SVG is well formed
//! and has its parts (the path, the motor commands, the e-stops, the tree's restarts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use util::{output, scratch, text};

/// Checks that `svg` is well-formed XML as far as a plot needs: every tag closed in
/// order, quoted attributes, no raw `&` or `<` in text. Returns the elements' names.
fn well_formed(svg: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open]);
        let tag = &rest[open + 1..];
        // The end of the tag: the first `>` outside quotes.
        let mut quote = None;
        let end = tag
            .char_indices()
            .find(|&(_, c)| match quote {
                Some(q) if c == q => {
                    quote = None;
                    false
                }
                Some(_) => false,
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    false
                }
                None => c == '>',
            })
            .map(|(i, _)| i)
            .expect("an unterminated tag");
        let body = &tag[..end];
        rest = &tag[end + 1..];
        if body.starts_with('?') {
            continue;
        }
        if let Some(name) = body.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
            continue;
        }
        let name: String = body
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect();
        assert!(!name.is_empty(), "an empty tag: <{body}>");
        check_text(body);
        names.push(name.clone());
        if !body.ends_with('/') {
            stack.push(name);
        }
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    names
}

/// No raw `&` outside an entity.
fn check_text(text: &str) {
    for (i, _) in text.match_indices('&') {
        let entity = &text[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| entity.starts_with(e)),
            "a raw & in {text:?}"
        );
    }
}

/// The elements that have `marker` in their start tag, each with what follows up to
/// its end.
fn elements<'a>(svg: &'a str, marker: &str) -> Vec<&'a str> {
    svg.match_indices(marker)
        .map(|(i, _)| {
            let rest = &svg[i..];
            let end = rest.find("</g>").or(rest.find("/>")).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// The points of the first polyline (`points`) or path (`d`) in `element`.
fn points(element: &str) -> usize {
    let start = [element.find("points=\""), element.find(" d=\"")]
        .into_iter()
        .flatten()
        .min()
        .expect("no points");
    let start = start + element[start..].find('"').unwrap() + 1;
    let end = element[start..].find('"').unwrap();
    element[start..start + end]
        .split(' ')
        .filter(|p| p.contains(','))
        .count()
}

/// The x coordinates of the first path (`d`) in `element`.
fn xs(element: &str) -> Vec<f64> {
    let start = element.find(" d=\"").expect("no path") + 4;
    let end = element[start..].find('"').unwrap();
    element[start..start + end]
        .split(' ')
        .map(|p| {
            let x = p.trim_start_matches(['M', 'L']).split(',').next().unwrap();
            x.parse::<f64>().unwrap()
        })
        .collect()
}

#[test]
fn a_recorded_run_is_plotted_with_its_path_commands_estops_and_restarts() {
    let dir = scratch("replay-plot");
    let rec = dir.join("run.rec");
    let out = output(&[
        "run",
        "--duration",
        "4",
        "--record",
        rec.to_str().unwrap(),
        "--inject",
        "motion:panic@1",
    ]);
    assert!(out.status.success(), "{}", text(&out).1);

    let svg_path = dir.join("out.svg");
    let out = output(&[
        "replay",
        rec.to_str().unwrap(),
        "--json",
        "--plot",
        svg_path.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    // 0 or 1 (the comparison's verdict); the plot is drawn either way.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["tree_restarts"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["tree_exits"].as_u64().unwrap() >= 1, "{report}");
    assert!(stderr.contains("plot written to"), "{stderr}");

    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let names = well_formed(&svg);
    assert_eq!(names.first().map(String::as_str), Some("svg"));
    assert!(svg.contains("run.rec"), "the title names the file");
    // The path: one polyline of many points, over the simulated room.
    let path = elements(&svg, r#"id="path""#);
    assert_eq!(path.len(), 1);
    assert!(points(path[0]) > 50, "{}", path[0]);
    assert!(svg.contains(r#"class="room""#) && svg.contains("dead reckoning"));
    // The commands: left and right over time, each a line across the time axis (its
    // flat stretches drawn by their ends only).
    for class in [r#"class="series left""#, r#"class="series right""#] {
        let series = elements(&svg, class);
        assert_eq!(series.len(), 1, "{class}");
        let xs = xs(series[0]);
        assert!(xs.len() >= 5, "{class}: {}", series[0]);
        let span = xs.last().unwrap() - xs.first().unwrap();
        assert!(span > 600.0, "{class} spans {span} px: {}", series[0]);
    }
    // The e-stops: the shutdown's, at the end, at least.
    let estops = elements(&svg, r#"class="estop""#);
    assert!(
        estops.iter().any(|e| e.contains("to the end: shutdown")),
        "{estops:?}"
    );
    // The restarts: motion's, marked with its name.
    let restarts = elements(&svg, r#"class="restart""#);
    assert!(
        restarts
            .iter()
            .any(|r| r.contains(">motion</text>") && r.contains("root/control/motion")),
        "{restarts:?}"
    );
}

#[test]
fn an_unwritable_plot_is_exit_2_naming_it() {
    let dir = scratch("replay-plot-unwritable");
    let rec = dir.join("run.rec");
    // A header and no records: a valid, empty recording.
    let mut empty = b"NEVILREC".to_vec();
    empty.extend_from_slice(&2u32.to_le_bytes());
    std::fs::write(&rec, &empty).unwrap();
    let target = dir.join("no-such-dir").join("out.svg");
    let out = output(&[
        "replay",
        rec.to_str().unwrap(),
        "--plot",
        target.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(target.to_str().unwrap()), "{stderr}");

    // The empty recording itself plots, and says so (exit 1: nothing was compared).
    let svg_path = dir.join("empty.svg");
    let out = output(&[
        "replay",
        rec.to_str().unwrap(),
        "--plot",
        svg_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    well_formed(&svg);
    assert!(svg.contains("no records"), "{svg}");
}
