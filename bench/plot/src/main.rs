//! Draws the charts of a benchmark run as PNG files.
//!
//! `bench/run.py` writes a `plots` list into its results.json. Each entry
//! names a PNG file, its title and axis labels, whether an axis is
//! logarithmic, and the series of (x, y) points. This program draws every
//! entry as a line chart. The harness decides what to plot, so a new chart
//! needs no change here.
//!
//! Text is drawn with ab_glyph from a TTF file (DejaVu Sans from Debian's
//! fonts-dejavu-core by default), so no system fontconfig is needed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Parser;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use serde::Deserialize;

/// Default font: Debian's fonts-dejavu-core, which bench/setup.sh installs.
const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Family name under which the font is registered with plotters.
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (960, 600);
/// Upper bound of tick labels per axis, so that labels of a logarithmic
/// axis do not overlap.
const LABELS: usize = 6;

#[derive(Parser)]
#[command(about = "Draw the charts listed in a benchmark results.json as PNG files")]
struct Args {
    /// results.json written by bench/run.py.
    #[arg(long)]
    results: PathBuf,
    /// Folder the PNG files are written to.
    #[arg(long)]
    out_dir: PathBuf,
    /// TTF file used for every text.
    #[arg(long, default_value = DEFAULT_FONT)]
    font: PathBuf,
}

/// The part of results.json that this program reads.
#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    plots: Vec<Chart>,
}

/// One line chart, as bench/run.py describes it.
#[derive(Deserialize)]
struct Chart {
    /// File name of the PNG, without folder.
    file: String,
    title: String,
    x_label: String,
    y_label: String,
    #[serde(default)]
    log_x: bool,
    #[serde(default)]
    log_y: bool,
    series: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    name: String,
    /// (x, y) pairs in the order they are joined.
    points: Vec<(f64, f64)>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    register_font(&args.font)?;

    let text = std::fs::read_to_string(&args.results)
        .with_context(|| format!("failed to read {}", args.results.display()))?;
    let results: Results = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a results.json of bench/run.py",
            args.results.display()
        )
    })?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("failed to create {}", args.out_dir.display()))?;

    for chart in &results.plots {
        let path = args.out_dir.join(&chart.file);
        draw_chart(chart, &path).with_context(|| format!("failed to draw {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Reads the TTF file and registers it for every text style that plotters uses.
fn register_font(path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "failed to read the font {}; install fonts-dejavu-core or pass --font",
            path.display()
        )
    })?;
    // plotters keeps registered fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    for style in [FontStyle::Normal, FontStyle::Bold] {
        if plotters::style::register_font(FAMILY, style, bytes).is_err() {
            bail!(
                "{} is not a TrueType font that ab_glyph can read",
                path.display()
            );
        }
    }
    Ok(())
}

/// Range of every x and every y in the chart, widened so that no point sits
/// on the frame or under the legend, and a flat series still gets a visible
/// range.
fn bounds(chart: &Chart) -> anyhow::Result<((f64, f64), (f64, f64))> {
    let points: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|series| series.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if points.is_empty() {
        bail!("chart {:?} has no points", chart.title);
    }
    let xs = points.iter().map(|p| p.0);
    let ys = points.iter().map(|p| p.1);
    let x = widen(min_max(xs), chart.log_x, Axis::X);
    let y = widen(min_max(ys), chart.log_y, Axis::Y);
    if (chart.log_x && x.0 <= 0.0) || (chart.log_y && y.0 <= 0.0) {
        bail!(
            "chart {:?} has a value at or below zero on a logarithmic axis",
            chart.title
        );
    }
    Ok((x, y))
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
        (low.min(v), high.max(v))
    })
}

/// Widens a range by a margin. The y axis gets more room at the top, where
/// the legend sits in the upper left corner. A linear axis starts at zero
/// when every value is positive, so that lines of throughput compare by
/// height.
fn widen((low, high): (f64, f64), log: bool, axis: Axis) -> (f64, f64) {
    let top = match axis {
        Axis::X => 0.1,
        Axis::Y => 0.6,
    };
    if log {
        return (low / 1.5, high * (1.5 + 10.0 * top));
    }
    let span = if high > low {
        high - low
    } else {
        high.abs().max(1.0)
    };
    let start = if low >= 0.0 { 0.0 } else { low - span * 0.1 };
    (start, high + span * top)
}

#[derive(Clone, Copy)]
enum Axis {
    X,
    Y,
}

fn draw_chart(chart: &Chart, path: &Path) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (x, y) = bounds(chart)?;
    match (chart.log_x, chart.log_y) {
        (false, false) => draw_series(chart, &root, x.0..x.1, y.0..y.1)?,
        (true, false) => draw_series(chart, &root, (x.0..x.1).log_scale(), y.0..y.1)?,
        (false, true) => draw_series(chart, &root, x.0..x.1, (y.0..y.1).log_scale())?,
        (true, true) => draw_series(chart, &root, (x.0..x.1).log_scale(), (y.0..y.1).log_scale())?,
    }
    root.present()?;
    Ok(())
}

/// Formats a tick value briefly: 100000 as "100k", 2.5 as "2.5".
fn compact(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if magnitude >= 1e4 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

/// Prints a number with at most two decimals and without trailing zeros.
fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

/// Draws axes, one coloured line with markers per series, and the legend.
fn draw_series<X, Y>(
    chart: &Chart,
    root: &DrawingArea<BitMapBackend, Shift>,
    x_range: X,
    y_range: Y,
) -> anyhow::Result<()>
where
    X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let mut context = ChartBuilder::on(root)
        .caption(&chart.title, (FAMILY, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x_range, y_range)?;
    context
        .configure_mesh()
        .x_labels(LABELS)
        .y_labels(LABELS)
        .x_label_formatter(&|value| compact(*value))
        .y_label_formatter(&|value| compact(*value))
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()?;

    for (index, series) in chart.series.iter().enumerate() {
        let colour = Palette99::pick(index).to_rgba();
        let points = series.points.clone();
        context
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(series.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        context.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, colour.filled())),
        )?;
    }

    context
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}
