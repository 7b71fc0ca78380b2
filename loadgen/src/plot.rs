//! The HPA experiment's timeline as an SVG (plotters): load (asked and achieved req/s),
//! utilization against its target, and replicas (HPA current/desired, Deployment ready) over
//! time, with every scale decision marked.
use std::path::Path;

use plotters::prelude::*;

use crate::hpa::Sample;

type R<T> = Result<T, Box<dyn std::error::Error>>;

pub fn svg(path: &Path, title: &str, samples: &[Sample], min: i32, max: i32) -> R<()> {
    let root = SVGBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let panels = root.split_evenly((3, 1));
    let t_max = samples.iter().map(|s| s.t).fold(1.0, f64::max);
    let events: Vec<(f64, String)> = samples
        .iter()
        .flat_map(|s| s.events.iter().map(move |e| (s.t, e.clone())))
        .collect();

    // Load.
    let r_max = samples
        .iter()
        .map(|s| s.rps.max(s.asked_rps))
        .fold(1.0, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&panels[0])
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..r_max)?;
    c.configure_mesh().y_desc("req/s").draw()?;
    c.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.asked_rps)),
        &BLACK,
    ))?
    .label("asked")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    c.draw_series(LineSeries::new(samples.iter().map(|s| (s.t, s.rps)), &BLUE))?
        .label("achieved")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    c.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    // Utilization.
    let u_max = samples
        .iter()
        .filter_map(|s| s.utilization.max(s.target_utilization))
        .max()
        .unwrap_or(100)
        .max(1) as f64
        * 1.1;
    let mut c = ChartBuilder::on(&panels[1])
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..u_max)?;
    c.configure_mesh().y_desc("CPU utilization %").draw()?;
    c.draw_series(LineSeries::new(
        samples
            .iter()
            .filter_map(|s| s.utilization.map(|u| (s.t, u as f64))),
        &RED,
    ))?
    .label("current")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    c.draw_series(LineSeries::new(
        samples
            .iter()
            .filter_map(|s| s.target_utilization.map(|u| (s.t, u as f64))),
        BLACK.stroke_width(1),
    ))?
    .label("target")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    c.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    // Replicas, with the scale events.
    let y_max = (samples
        .iter()
        .map(|s| {
            s.current_replicas
                .max(s.desired_replicas)
                .max(s.ready_replicas)
        })
        .max()
        .unwrap_or(1)
        .max(max)
        + 1) as f64;
    let mut c = ChartBuilder::on(&panels[2])
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
    c.configure_mesh()
        .x_desc("seconds")
        .y_desc("replicas")
        .draw()?;
    for (t, label) in &events {
        c.draw_series(LineSeries::new(
            vec![(*t, 0.0), (*t, y_max)],
            GREEN.mix(0.5),
        ))?;
        c.draw_series(std::iter::once(Text::new(
            label.clone(),
            (*t, y_max * 0.95),
            ("sans-serif", 12),
        )))?;
    }
    for (v, style) in [(min, BLACK.mix(0.3)), (max, BLACK.mix(0.3))] {
        c.draw_series(LineSeries::new(
            vec![(0.0, v as f64), (t_max, v as f64)],
            style,
        ))?;
    }
    c.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.current_replicas as f64)),
        BLUE.stroke_width(2),
    ))?
    .label("HPA current")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    c.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.desired_replicas as f64)),
        &MAGENTA,
    ))?
    .label("HPA desired")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], MAGENTA));
    c.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.ready_replicas as f64)),
        &GREEN,
    ))?
    .label("Deployment ready")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    c.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}
