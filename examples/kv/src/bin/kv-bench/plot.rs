//! The results plot: requests per second per test, one panel per
//! (persistence, pipeline), one bar per server (plotters, SVG backend).

use crate::Results;
use plotters::prelude::*;
use std::path::Path;

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
];

type Error = Box<dyn std::error::Error>;

/// Draws `path`.
pub fn throughput(
    path: &Path,
    r: &Results,
    tests: &[String],
    servers: &[String],
) -> Result<(), Error> {
    let mut panels: Vec<(String, u32)> = r.keys().map(|k| (k.0.clone(), k.1)).collect();
    panels.dedup();
    let rows = panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (1000, 330 * rows)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((rows as usize, 1));
    for ((persistence, p), area) in panels.iter().zip(areas) {
        let top = r
            .iter()
            .filter(|(k, _)| &k.0 == persistence && k.1 == *p)
            .map(|(_, s)| s.rps)
            .fold(1.0f64, f64::max)
            * 1.15;
        let n = tests.len();
        let mut chart = ChartBuilder::on(&area)
            .caption(
                format!("persistence {persistence}, pipeline {p}: requests/s (higher is better)"),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)?;
        let label = |x: &f64| {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 || i as usize >= n {
                String::new()
            } else {
                tests[i as usize].clone()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&label)
            .y_label_formatter(&|v| format!("{:.0}k", v / 1000.0))
            .draw()?;
        let width = 0.8 / servers.len() as f64;
        for (j, server) in servers.iter().enumerate() {
            let colour = COLOURS[j % COLOURS.len()];
            let bars = tests.iter().enumerate().filter_map(|(i, t)| {
                let s = r.get(&(persistence.clone(), *p, server.clone(), t.clone()))?;
                let x0 = i as f64 - 0.4 + j as f64 * width;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + width, s.rps)],
                    colour.filled(),
                ))
            });
            chart
                .draw_series(bars)?
                .label(server.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
