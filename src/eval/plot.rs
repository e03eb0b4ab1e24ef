//! Pictures (plotters): perturbation curves (PNG or SVG by the file's extension: one line per
//! method, the mean of f(x_0) - f(x_k) over samples, a band of +-1 standard error, the AOPC in
//! the legend), and grids of heatmaps with titles (PNG). Text is set in DejaVu Sans
//! (embedded), so nothing depends on system fonts.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// One method's curve.
pub struct Series<'a> {
    pub name: &'a str,
    pub aopc: f64,
    /// Mean over samples, steps 0..=L.
    pub mean: &'a [f64],
    /// Standard error over samples per step.
    pub se: &'a [f64],
}

/// Per-step standard error of curves (each steps 0..=L) over samples.
pub fn curve_se(curves: &[Vec<f32>]) -> Vec<f64> {
    let n = curves.len();
    let len = curves.first().map_or(0, Vec::len);
    (0..len)
        .map(|k| {
            if n < 2 {
                return 0.0;
            }
            let m = curves.iter().map(|c| f64::from(c[k])).sum::<f64>() / n as f64;
            let var = curves
                .iter()
                .map(|c| (f64::from(c[k]) - m).powi(2))
                .sum::<f64>()
                / (n - 1) as f64;
            (var / n as f64).sqrt()
        })
        .collect()
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font parses (a fixed asset); a failure would only lose the text.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    series: &[Series],
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let steps = series
        .iter()
        .map(|s| s.mean.len())
        .max()
        .unwrap_or(1)
        .max(2)
        - 1;
    let (lo, hi) = series.iter().fold((0f64, 0f64), |(l, h), s| {
        s.mean
            .iter()
            .zip(s.se)
            .fold((l, h), |(l, h), (m, se)| (l.min(m - se), h.max(m + se)))
    });
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..steps as f64, (lo - pad)..(hi + pad))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("mean f(x_0) - f(x_k)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    for (i, s) in series.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let upper = s
            .mean
            .iter()
            .zip(s.se)
            .enumerate()
            .map(|(k, (m, se))| (k as f64, m + se));
        let lower: Vec<(f64, f64)> = s
            .mean
            .iter()
            .zip(s.se)
            .enumerate()
            .map(|(k, (m, se))| (k as f64, m - se))
            .collect();
        let band: Vec<(f64, f64)> = upper.chain(lower.into_iter().rev()).collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                band,
                colour.mix(0.18).filled(),
            )))
            .map_err(e)?;
        chart
            .draw_series(LineSeries::new(
                s.mean.iter().enumerate().map(|(k, &m)| (k as f64, m)),
                colour.stroke_width(2),
            ))
            .map_err(e)?
            .label(format!("{} (AOPC {:.4})", s.name, s.aopc))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

/// Writes the curves to `path` (`.png` or `.svg`), atomically.
pub fn curves(path: &Path, title: &str, x_label: &str, series: &[Series]) -> Result<()> {
    register_font();
    let bad = |reason: String| Error::Input {
        what: path.display().to_string(),
        reason,
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let size = (900, 600);
    match ext.as_str() {
        "svg" => {
            let mut text = String::new();
            draw(
                SVGBackend::with_string(&mut text, size).into_drawing_area(),
                title,
                x_label,
                series,
            )
            .map_err(|e| bad(format!("drawing the plot: {e}")))?;
            crate::io::atomic::write_atomically(path, |w| w.write_all(text.as_bytes()))
        }
        "png" => {
            let mut pixels = vec![0u8; (size.0 * size.1 * 3) as usize];
            draw(
                BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area(),
                title,
                x_label,
                series,
            )
            .map_err(|e| bad(format!("drawing the plot: {e}")))?;
            let img = image::RgbImage::from_raw(size.0, size.1, pixels)
                .ok_or_else(|| bad("internal: the plot buffer has the wrong size".into()))?;
            let mut png = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .map_err(|e| bad(format!("encoding the PNG: {e}")))?;
            crate::io::atomic::write_atomically(path, |w| w.write_all(&png))
        }
        _ => Err(bad("--plot writes .png or .svg".into())),
    }
}

/// A grid of heatmaps as a PNG: one row per input (`rows`: label and one image per column),
/// one column per title in `columns`, each cell titled; images are drawn at their own size
/// in cells as large as the largest.
pub fn grid(
    path: &Path,
    columns: &[String],
    rows: &[(String, Vec<image::RgbImage>)],
) -> Result<()> {
    register_font();
    let bad = |reason: String| Error::Input {
        what: path.display().to_string(),
        reason,
    };
    let (cw, ch) = rows
        .iter()
        .flat_map(|(_, r)| r.iter())
        .fold((1u32, 1u32), |(w, h), i| {
            (w.max(i.width()), h.max(i.height()))
        });
    let (pad, title, label) = (10u32, 26u32, 90u32);
    // Wide enough for the longest title too (about 8 px a character at 14 px).
    let longest = columns.iter().map(|t| t.chars().count()).max().unwrap_or(0) as u32;
    let cell_w = cw.max(longest * 8);
    let width = label + columns.len() as u32 * (cell_w + pad) + pad;
    let height = title + rows.len() as u32 * (ch + pad) + pad;
    let mut pixels = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        let e = |x: DrawingAreaErrorKind<_>| bad(format!("drawing the grid: {x}"));
        root.fill(&WHITE).map_err(e)?;
        let font = ("sans-serif", 14).into_font();
        for (j, t) in columns.iter().enumerate() {
            let x = (label + pad + j as u32 * (cell_w + pad)) as i32;
            root.draw(&Text::new(t.clone(), (x, 6), font.clone()))
                .map_err(e)?;
        }
        for (i, (name, cells)) in rows.iter().enumerate() {
            let y = (title + i as u32 * (ch + pad)) as i32;
            root.draw(&Text::new(
                name.clone(),
                (6, y + ch as i32 / 2 - 7),
                font.clone(),
            ))
            .map_err(e)?;
            for (j, img) in cells.iter().enumerate() {
                let x = (label + pad + j as u32 * (cell_w + pad)) as i32;
                let element = BitMapElement::with_owned_buffer(
                    (x, y),
                    (img.width(), img.height()),
                    img.as_raw().clone(),
                )
                .ok_or_else(|| bad("internal: a heatmap buffer has the wrong size".into()))?;
                root.draw(&element).map_err(e)?;
            }
        }
        root.present().map_err(e)?;
    }
    let img = image::RgbImage::from_raw(width, height, pixels)
        .ok_or_else(|| bad("internal: the grid buffer has the wrong size".into()))?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| bad(format!("encoding the PNG: {e}")))?;
    crate::io::atomic::write_atomically(path, |w| w.write_all(&png))
}
