//! The SVG plots of the results page, drawn with plotters (SVG backend
//! only; text is laid out by plotters' estimate, no system fonts needed).

use crate::check::{Ctx, Result};
use crate::harness::{Results, ScalePoint};
use crate::table::human;
use crate::workload::{Kind, Workload};
use plotters::prelude::*;
use std::path::Path;

/// The colour of each runtime in every plot.
fn colour(kind: Kind) -> RGBColor {
    match kind {
        Kind::Corelet => RGBColor(214, 39, 40),
        Kind::Actix => RGBColor(31, 119, 180),
        Kind::Ractor => RGBColor(44, 160, 44),
        Kind::Kameo => RGBColor(255, 127, 14),
        Kind::Glommio => RGBColor(140, 86, 75),
        Kind::Stakker => RGBColor(127, 127, 127),
        Kind::Go => RGBColor(23, 190, 207),
    }
}

/// Rows of the comparison plot: workloads corelet has a result for.
fn rows(results: &Results) -> Vec<(Workload, f64)> {
    Workload::ALL
        .into_iter()
        .filter_map(|w| results.median(w, Kind::Corelet).map(|c| (w, c)))
        .collect()
}

/// Grouped horizontal bars: each runtime's median divided by corelet's,
/// per workload, on a log scale (corelet = 1; a bar right of the line is
/// a runtime slower, or bigger, than corelet).
pub fn comparison(path: &Path, results: &Results) -> Result<()> {
    let rows = rows(results);
    let n = rows.len().max(1);
    let (mut lo, mut hi) = (1.0f64, 1.0f64);
    for (w, c) in &rows {
        for k in Kind::ALL {
            if let Some(v) = results.median(*w, k) {
                lo = lo.min(v / c);
                hi = hi.max(v / c);
            }
        }
    }
    let (lo, hi) = (lo / 2.0, hi * 2.0);
    let labels: Vec<String> = rows
        .iter()
        .map(|(w, c)| format!("{} ({})", w.title(), human(*c, w.unit())))
        .collect();
    let label_at = |y: &f64| -> String {
        let i = y.round();
        if (y - i).abs() > 1e-6 || i < 0.0 || i as usize >= n {
            return String::new();
        }
        // Row 0 is drawn at the top.
        labels.get(n - 1 - i as usize).cloned().unwrap_or_default()
    };
    let root = SVGBackend::new(path, (1000, 110 + 70 * n as u32)).into_drawing_area();
    root.fill(&WHITE).ctx("plot")?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Median relative to corelet (log scale; lower is better; corelet = 1)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(330)
        .build_cartesian_2d((lo..hi).log_scale(), -0.5f64..(n as f64 - 0.5))
        .ctx("plot")?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&label_at)
        .x_desc("runtime median / corelet median (label: corelet's median)")
        .label_style(("sans-serif", 14))
        .draw()
        .ctx("plot")?;
    // Runtimes with any result, each a bar in every workload's band.
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| rows.iter().any(|(w, _)| results.median(*w, *k).is_some()))
        .collect();
    let step = 0.84 / kinds.len().max(1) as f64;
    for (j, kind) in kinds.into_iter().enumerate() {
        let bars: Vec<_> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, (w, c))| {
                let v = results.median(*w, kind)?;
                let y = (n - 1 - i) as f64 + 0.42 - step * (j as f64 + 0.5);
                Some(Rectangle::new(
                    [(lo, y - step * 0.4), (v / c, y + step * 0.4)],
                    colour(kind).filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)
            .ctx("plot")?
            .label(kind.title())
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour(kind).filled())
            });
    }
    chart
        .draw_series(LineSeries::new(
            [(1.0, -0.5), (1.0, n as f64 - 0.5)],
            BLACK.stroke_width(1),
        ))
        .ctx("plot")?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .ctx("plot")?;
    root.present().ctx("writing the plot")
}

/// One line of a scaling panel: name, colour, points.
type Line = (&'static str, RGBColor, Vec<(f64, f64)>);

/// One panel of the scaling plot: lines of a value against log2(shards).
fn scaling_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    lines: &[Line],
    cores: usize,
) -> Result<()> {
    let top = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        * 1.25
        + 1e-9;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.3f64..3.3f64, 0.0f64..top)
        .ctx("plot")?;
    let shards = |x: &f64| {
        if (x - x.round()).abs() < 1e-6 && *x >= 0.0 {
            format!("{}", 1u32 << x.round() as u32)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_labels(4)
        .x_label_formatter(&shards)
        .x_desc("shards")
        .y_desc(y_desc)
        .light_line_style(WHITE)
        .label_style(("sans-serif", 14))
        .draw()
        .ctx("plot")?;
    let grey = RGBColor(120, 120, 120);
    let core_x = (cores.max(1) as f64).log2();
    chart
        .draw_series(DashedLineSeries::new(
            [(core_x, 0.0), (core_x, top)],
            6,
            4,
            grey.stroke_width(2),
        ))
        .ctx("plot")?
        .label(format!("{cores} cores: more shards share them"))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], grey.stroke_width(2)));
    for (name, colour, points) in lines {
        let c = *colour;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
            .ctx("plot")?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], c.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, c.filled())))
            .ctx("plot")?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .ctx("plot")
}

/// Two panels: cross-shard tell throughput (all senders; disjoint pairs
/// and a ring) and skynet time against the shard count, with the
/// machine's core count marked.
pub fn scaling(path: &Path, points: &[ScalePoint], cores: usize) -> Result<()> {
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).ctx("plot")?;
    let panels = root.split_evenly((1, 2));
    let x = |p: &ScalePoint| (p.shards as f64).log2();
    let series = |f: &dyn Fn(&ScalePoint) -> f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|p| (x(p), f(p)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    };
    let cross = [
        (
            "pairs (one-way)",
            colour(Kind::Corelet),
            series(&|p| p.pairs_mmsgs()),
        ),
        (
            "ring (every shard sends)",
            RGBColor(148, 103, 189),
            series(&|p| p.ring_mmsgs()),
        ),
    ];
    let skynet = [(
        "corelet",
        colour(Kind::Corelet),
        series(&|p| p.skynet_ns.map_or(f64::NAN, |ns| ns / 1e6)),
    )];
    scaling_panel(
        &panels[0],
        "corelet cross-shard tell",
        "M msg/s (all senders)",
        &cross,
        cores,
    )?;
    scaling_panel(
        &panels[1],
        "corelet skynet (1.1 M processes)",
        "ms",
        &skynet,
        cores,
    )?;
    root.present().ctx("writing the plot")
}
