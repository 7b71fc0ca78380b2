//! The HPA experiment's timeline as SVG and PNG (plotters): load (asked and achieved req/s),
//! utilization against its target, and replicas (HPA current/desired, Deployment ready) over
//! time, with every scale decision marked.
//!
//! Text is laid out (both formats) and rasterized (PNG) with plotters' `ab_glyph` font backend
//! from a small subset of DejaVu Sans embedded in the binary (`assets/`, with its license), so
//! the plot needs no system fonts; the PNG is encoded by the `png` crate.
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::hpa::Sample;

type R<T> = Result<T, Box<dyn std::error::Error>>;

const SIZE: (u32, u32) = (1000, 900);
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// Registers the embedded font as "sans-serif" (once per process).
fn fonts() -> R<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the embedded font could not be loaded".into())
    }
}

/// [`svg()`] or [`png()`].
pub type Plot = fn(&Path, &str, &[Sample], i32, i32) -> R<()>;

pub fn svg(path: &Path, title: &str, samples: &[Sample], min: i32, max: i32) -> R<()> {
    fonts()?;
    draw(
        SVGBackend::new(path, SIZE).into_drawing_area(),
        title,
        samples,
        min,
        max,
    )
}

pub fn png(path: &Path, title: &str, samples: &[Sample], min: i32, max: i32) -> R<()> {
    fonts()?;
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    draw(
        BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(),
        title,
        samples,
        min,
        max,
    )?;
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(file, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    // A chart is mostly flat colour: per-row filter choice and the best deflate level make
    // the file a fraction of the default's size.
    enc.set_compression(png::Compression::Best);
    enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut out = enc.write_header()?;
    out.write_image_data(&rgb)?;
    out.finish()?;
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    samples: &[Sample],
    min: i32,
    max: i32,
) -> R<()>
where
    DB::ErrorType: 'static,
{
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
        + 2) as f64;
    let mut c = ChartBuilder::on(&panels[2])
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
    c.configure_mesh()
        .x_desc("seconds")
        .y_desc("replicas")
        .draw()?;
    for (i, (t, label)) in events.iter().enumerate() {
        c.draw_series(LineSeries::new(
            vec![(*t, 0.0), (*t, y_max)],
            GREEN.mix(0.5),
        ))?;
        // Above the max line, in three staggered rows (decisions a second apart do not
        // overlap), and ending at its mark near the right edge (not cut off).
        let h = if *t > t_max * 0.85 {
            HPos::Right
        } else {
            HPos::Left
        };
        let style = TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(h, VPos::Top));
        c.draw_series(std::iter::once(Text::new(
            label.clone(),
            (*t, y_max * (0.99 - 0.055 * (i % 3) as f64)),
            style,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Sample> {
        (0..60)
            .map(|i| {
                let t = i as f64;
                let load = i < 30;
                let replicas = if i < 5 {
                    1
                } else if i < 40 {
                    4
                } else {
                    1
                };
                Sample {
                    t,
                    load,
                    asked_rps: if load { 200.0 } else { 0.0 },
                    rps: if load { 198.0 } else { 0.0 },
                    utilization: Some(if load { 80 } else { 0 }),
                    target_utilization: Some(50),
                    current_replicas: replicas,
                    desired_replicas: replicas,
                    ready_replicas: replicas,
                    events: match i {
                        5 => vec!["1→4".into()],
                        40 => vec!["4→1".into()],
                        _ => vec![],
                    },
                    ..Default::default()
                }
            })
            .collect()
    }

    #[test]
    fn png_has_the_plot_and_its_text() {
        let dir = std::env::temp_dir().join(format!("loadgen-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("timeline.png");
        png(
            &path,
            "loadgen hpa ns/hpa — stages 30s:200",
            &samples(),
            1,
            10,
        )
        .unwrap();
        let dec = ::png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut r = dec.read_info().unwrap();
        let mut px = vec![0u8; r.output_buffer_size()];
        let info = r.next_frame(&mut px).unwrap();
        assert_eq!((info.width, info.height), SIZE);
        let dark = |rows: std::ops::Range<u32>| {
            rows.flat_map(|y| (0..info.width).map(move |x| (y * info.width + x) as usize * 3))
                .filter(|i| px[*i] < 128 && px[*i + 1] < 128 && px[*i + 2] < 128)
                .count()
        };
        // The title (text through the embedded font) is drawn in the top rows...
        assert!(dark(0..30) > 200, "no title text: {}", dark(0..30));
        // ...and the panels below it have axes, labels and lines.
        assert!(dark(30..info.height) > 5_000, "{}", dark(30..info.height));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn svg_has_the_series_and_events() {
        let dir = std::env::temp_dir().join(format!("loadgen-plot-svg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("timeline.svg");
        svg(&path, "t", &samples(), 1, 10).unwrap();
        let s = std::fs::read_to_string(&path).unwrap();
        for want in [
            "<svg",
            "HPA current",
            "Deployment ready",
            "1→4",
            "4→1",
            "req/s",
        ] {
            assert!(s.contains(want), "{want} missing");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
