//! PNG figures with plotters and an embedded DejaVu Sans (no system fonts needed): line charts
//! with optional log axes, 2D densities, and grids of small panels.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result};
use boltzflow_core::Error;
use plotters::prelude::*;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn fonts() {
    REGISTER.call_once(|| {
        // The embedded bytes are a valid TTF; a failure here is a build defect, and plots would
        // then fail with a clear plotters error rather than panic.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A figure drawn into a temporary file next to its destination and renamed over it once
/// complete, so that a killed run or a full disk never leaves a truncated PNG (plotters writes
/// to its path directly). The temporary, `.boltzflow-<name>.tmp.png` (plotters picks the
/// encoder from the extension), is removed if the figure is not committed, and by `--resume`
/// if the process was killed.
struct PendingPng {
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    committed: bool,
}

impl PendingPng {
    fn new(path: &Path) -> Self {
        let name = path
            .file_name()
            .map_or_else(|| "figure".into(), |n| n.to_string_lossy().into_owned());
        let tmp = path.with_file_name(format!(".boltzflow-{name}.tmp.png"));
        Self {
            tmp,
            path: path.to_path_buf(),
            committed: false,
        }
    }

    fn tmp(&self) -> &Path {
        &self.tmp
    }

    fn commit(mut self) -> Result<()> {
        let io = |e: std::io::Error| {
            anyhow::Error::new(e)
                .context(format!("cannot write the figure `{}`", self.path.display()))
        };
        std::fs::File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&self.tmp, &self.path).map_err(io)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PendingPng {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// One line (and markers) of a chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Draw markers only (no line).
    pub markers_only: bool,
    /// Dashed style for references (drawn as a thinner line).
    pub reference: bool,
    /// Symmetric error bars (one per point; empty for none).
    pub errors: Vec<f64>,
}

impl Series {
    /// A line with markers.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            markers_only: false,
            reference: false,
            errors: Vec::new(),
        }
    }

    /// A thin reference line.
    pub fn reference(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            reference: true,
            ..Self::line(name, points)
        }
    }
}

fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    C[i % C.len()]
}

fn finite_range(values: impl Iterator<Item = f64>, log: bool) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return None;
    }
    if log {
        Some((lo / 1.5, hi * 1.5))
    } else {
        let pad = if hi > lo {
            0.05 * (hi - lo)
        } else {
            0.5 * lo.abs().max(1.0)
        };
        Some((lo - pad, hi + pad))
    }
}

/// A tick label: `1e-3` style on log axes, at most six significant digits otherwise.
fn axis_label(v: f64, log: bool) -> String {
    if log {
        format!("{v:.0e}")
    } else {
        let r = format!("{:.6}", v);
        let r = r.trim_end_matches('0').trim_end_matches('.');
        if r == "-0" { "0".into() } else { r.to_string() }
    }
}

/// Draws `series` into `chart`: lines with markers of `marker` px (references thin and without
/// markers, `markers_only` series as dots), error bars, and legend entries `legend` px long.
/// Non-finite points, and on a log axis non-positive ones, are left out.
fn draw_lines<X, Y>(
    chart: &mut ChartContext<'_, BitMapBackend<'_>, Cartesian2d<X, Y>>,
    series: &[Series],
    log_y: bool,
    marker: u32,
    legend: i32,
) -> Result<()>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        let valid = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite() && (!log_y || p.1 > 0.0);
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(valid).collect();
        // A line breaks where a point is missing (an empty profile bin) instead of bridging it.
        let segments: Vec<Vec<(f64, f64)>> = s
            .points
            .split(|p| !valid(p))
            .filter(|seg| seg.len() > 1)
            .map(<[(f64, f64)]>::to_vec)
            .collect();
        if s.markers_only {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, marker + 1, c.filled())))?
                .label(s.name.clone())
                .legend(move |(x, y)| Circle::new((x + legend / 2, y), 4, c.filled()));
        } else {
            let width = if s.reference { 1 } else { 2 };
            chart
                .draw_series(
                    segments
                        .iter()
                        .map(|seg| PathElement::new(seg.clone(), c.stroke_width(width))),
                )?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + legend, y)], c.stroke_width(2))
                });
            if !s.reference {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, marker, c.filled())))?;
            }
        }
        if !s.errors.is_empty() {
            chart.draw_series(
                s.points
                    .iter()
                    .zip(&s.errors)
                    .filter(|(p, e)| {
                        p.0.is_finite()
                            && p.1.is_finite()
                            && e.is_finite()
                            && (!log_y || p.1 - **e > 0.0)
                    })
                    .map(|(&(x, y), &e)| {
                        ErrorBar::new_vertical(x, y - e, y, y + e, c.stroke_width(1), 2 * marker)
                    }),
            )?;
        }
    }
    Ok(())
}

/// A line chart of `series` written to `path` (PNG, 800×560). `log_y` uses a log10 y axis
/// (non-positive values are left out); `shade_below` greys the region y < x (the ITS plot's
/// "faster than the lag time" area).
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
    shade_below_diagonal: bool,
) -> Result<()> {
    fonts();
    let (x0, x1) = finite_range(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
        false,
    )
    .with_context(|| format!("{}: nothing to plot", path.display()))?;
    let (y0, y1) = finite_range(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        log_y,
    )
    .with_context(|| format!("{}: nothing finite to plot", path.display()))?;
    let png = PendingPng::new(path);
    let tmp = png.tmp().to_path_buf();
    let root = BitMapBackend::new(&tmp, (800, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .y_label_formatter(&|v: &f64| axis_label(*v, log_y))
                .label_style(("sans-serif", 15))
                .draw()?;
            if shade_below_diagonal {
                let lo = y0.max(f64::MIN_POSITIVE);
                let pts: Vec<(f64, f64)> =
                    vec![(x0, lo), (x1, lo), (x1, x1.max(lo)), (x0, x0.max(lo))];
                chart.draw_series(std::iter::once(Polygon::new(
                    pts,
                    RGBColor(200, 200, 200).mix(0.5).filled(),
                )))?;
            }
            draw_lines(&mut chart, series, log_y, 3, 20)?;
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()?;
        }};
    }
    if log_y {
        draw!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?);
    } else {
        draw!(builder.build_cartesian_2d(x0..x1, y0..y1)?);
    }
    root.present()
        .with_context(|| format!("cannot write the figure `{}`", path.display()))?;
    // The backend has written its file and holds no handle; it only borrows `tmp`.
    png.commit()
}

/// A 2D density (free energy −ln p, in kT, of a histogram with `bins`² cells) of points (x, y),
/// on the data's range or on `range = ([x0, x1], [y0, y1])`.
#[allow(clippy::too_many_arguments)]
pub fn density_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    x: &[f64],
    y: &[f64],
    bins: usize,
    range: Option<([f64; 2], [f64; 2])>,
    weights: Option<&[f64]>,
) -> Result<()> {
    fonts();
    let ((x0, x1), (y0, y1)) = match range {
        Some((xr, yr)) => ((xr[0], xr[1]), (yr[0], yr[1])),
        None => (
            finite_range(x.iter().copied(), false)
                .with_context(|| format!("{}: nothing to plot", path.display()))?,
            finite_range(y.iter().copied(), false)
                .with_context(|| format!("{}: nothing to plot", path.display()))?,
        ),
    };
    let mut h = vec![0.0f64; bins * bins];
    for (k, (&a, &b)) in x.iter().zip(y).enumerate() {
        if a.is_finite() && b.is_finite() && (x0..=x1).contains(&a) && (y0..=y1).contains(&b) {
            let i = (((a - x0) / (x1 - x0) * bins as f64) as usize).min(bins - 1);
            let j = (((b - y0) / (y1 - y0) * bins as f64) as usize).min(bins - 1);
            h[i * bins + j] += weights.map_or(1.0, |w| w[k]);
        }
    }
    let max = h.iter().copied().fold(0.0, f64::max);
    // Colours span at most 15 kT below the densest cell; sparser cells (weights from a long
    // tail) are left blank rather than compressing the scale.
    const SPAN: f64 = 15.0;
    let shown = |v: f64| v > 0.0 && -(v / max).ln() <= SPAN;
    let fmax = h
        .iter()
        .filter(|&&v| shown(v))
        .map(|&v| -(v / max).ln())
        .fold(0.0, f64::max)
        .max(1e-9);
    let png = PendingPng::new(path);
    let tmp = png.tmp().to_path_buf();
    let root = BitMapBackend::new(&tmp, (720, 640)).into_drawing_area();
    let mut chart = map_chart(&root, title, x_label, y_label, (x0, x1), (y0, y1))?;
    let (dx, dy) = ((x1 - x0) / bins as f64, (y1 - y0) / bins as f64);
    chart.draw_series((0..bins * bins).filter(|&k| shown(h[k])).map(|k| {
        let (i, j) = (k / bins, k % bins);
        let f = -(h[k] / max).ln() / fmax;
        let c = ViridisRGB::get_color(f);
        Rectangle::new(
            [
                (x0 + i as f64 * dx, y0 + j as f64 * dy),
                (x0 + (i + 1) as f64 * dx, y0 + (j + 1) as f64 * dy),
            ],
            c.filled(),
        )
    }))?;
    root.present()
        .with_context(|| format!("cannot write the figure `{}`", path.display()))?;
    // The backend has written its file and holds no handle; it only borrows `tmp`.
    png.commit()
}

/// A grid of m×m panels; panel (a, b) shows `predicted[k][a][b]` (line) and `estimated[k][a][b]`
/// (markers) against `x[k]`. Used by the Chapman–Kolmogorov test.
pub fn panel_grid(
    path: &Path,
    title: &str,
    x: &[f64],
    predicted: &ndarray::Array3<f64>,
    estimated: &ndarray::Array3<f64>,
) -> Result<()> {
    fonts();
    let m = predicted.shape()[1];
    let size = (260 * m as u32 + 40).max(400);
    let png = PendingPng::new(path);
    let tmp = png.tmp().to_path_buf();
    let root = BitMapBackend::new(&tmp, (size, size + 30)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 16))?;
    let (x0, x1) = finite_range(x.iter().copied(), false)
        .with_context(|| format!("{}: nothing to plot", path.display()))?;
    for (idx, area) in root.split_evenly((m, m)).iter().enumerate() {
        let (a, b) = (idx / m, idx % m);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{a} → {b}"), ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(25)
            .y_label_area_size(40)
            .build_cartesian_2d(x0..x1, -0.05f64..1.05)?;
        chart
            .configure_mesh()
            .x_labels(5)
            .y_labels(6)
            .label_style(("sans-serif", 12))
            .draw()?;
        let pred: Vec<(f64, f64)> = x
            .iter()
            .enumerate()
            .map(|(k, &t)| (t, predicted[[k, a, b]]))
            .collect();
        let est: Vec<(f64, f64)> = x
            .iter()
            .enumerate()
            .map(|(k, &t)| (t, estimated[[k, a, b]]))
            .collect();
        chart.draw_series(LineSeries::new(pred, color(0).stroke_width(2)))?;
        chart.draw_series(est.iter().map(|&p| Circle::new(p, 4, color(1).filled())))?;
    }
    root.present()
        .with_context(|| format!("cannot write the figure `{}`", path.display()))?;
    // The backend has written its file and holds no handle; it only borrows `tmp`.
    png.commit()
}

/// Samples (x, y) as dots over a map of the energy E(x, y) (greyscale, darker is lower, clipped
/// `span` kT above the minimum), on `range = ([x0, x1], [y0, y1])`.
pub fn samples_on_energy(
    path: &Path,
    title: &str,
    energy: &dyn Fn(f64, f64) -> f64,
    range: ([f64; 2], [f64; 2]),
    span: f64,
    points: &[(f64, f64)],
) -> Result<()> {
    fonts();
    let ([x0, x1], [y0, y1]) = range;
    let n = 160;
    let (dx, dy) = ((x1 - x0) / n as f64, (y1 - y0) / n as f64);
    let grid: Vec<f64> = (0..n * n)
        .map(|k| {
            energy(
                x0 + (k / n) as f64 * dx + 0.5 * dx,
                y0 + (k % n) as f64 * dy + 0.5 * dy,
            )
        })
        .collect();
    let emin = grid
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let png = PendingPng::new(path);
    let tmp = png.tmp().to_path_buf();
    let root = BitMapBackend::new(&tmp, (720, 640)).into_drawing_area();
    let mut chart = map_chart(&root, title, "x₁", "x₂", (x0, x1), (y0, y1))?;
    chart.draw_series((0..n * n).map(|k| {
        let f = ((grid[k] - emin) / span).clamp(0.0, 1.0);
        let f = if f.is_finite() { f } else { 1.0 };
        let g = (120.0 + 135.0 * f) as u8;
        let (i, j) = (k / n, k % n);
        Rectangle::new(
            [
                (x0 + i as f64 * dx, y0 + j as f64 * dy),
                (x0 + (i + 1) as f64 * dx, y0 + (j + 1) as f64 * dy),
            ],
            RGBColor(g, g, g).filled(),
        )
    }))?;
    let c = color(0);
    chart.draw_series(
        points
            .iter()
            .filter(|p| p.0 >= x0 && p.0 <= x1 && p.1 >= y0 && p.1 <= y1)
            .map(|&p| Circle::new(p, 1, c.mix(0.5).filled())),
    )?;
    root.present()
        .with_context(|| format!("cannot write the figure `{}`", path.display()))?;
    // The backend has written its file and holds no handle; it only borrows `tmp`.
    png.commit()
}

/// Normalised histogram of `values` (with optional log-weights) as points (bin centre, density)
/// on [lo, hi] with `bins` bins.
pub fn histogram_points(
    values: &[f64],
    log_w: Option<&[f64]>,
    lo: f64,
    hi: f64,
    bins: usize,
) -> Vec<(f64, f64)> {
    let m = log_w.map_or(0.0, |l| l.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    let mut h = vec![0.0; bins];
    let mut total = 0.0;
    let width = (hi - lo) / bins as f64;
    for (i, &v) in values.iter().enumerate() {
        let w = log_w.map_or(1.0, |l| (l[i] - m).exp());
        if !v.is_finite() || !w.is_finite() {
            continue;
        }
        total += w;
        if v >= lo && v < hi {
            h[(((v - lo) / width) as usize).min(bins - 1)] += w;
        }
    }
    h.iter()
        .enumerate()
        .map(|(b, &c)| {
            (
                lo + (b as f64 + 0.5) * width,
                c / (total.max(f64::MIN_POSITIVE) * width),
            )
        })
        .collect()
}

/// A 2D chart on f64 axes drawn into a PNG.
type MapChart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A white 2D chart with a caption and axis labels, no grid lines: the frame of the map figures.
fn map_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<MapChart<'a, 'b>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .disable_mesh()
        .draw()?;
    Ok(chart)
}

/// Spin configurations on an L × L lattice as black (+1) and white (−1) squares: one row of
/// panels per labelled group (e.g. per β), `configs[g]` holding that group's configurations.
pub fn spin_snapshots(
    path: &Path,
    title: &str,
    l: usize,
    groups: &[(String, Vec<Vec<f32>>)],
) -> Result<()> {
    fonts();
    let cols = groups.iter().map(|g| g.1.len()).max().unwrap_or(1).max(1);
    let rows = groups.len().max(1);
    let cell = 150u32;
    let png = PendingPng::new(path);
    let tmp = png.tmp().to_path_buf();
    let root = BitMapBackend::new(
        &tmp,
        (cell * cols as u32 + 20, (cell + 24) * rows as u32 + 40),
    )
    .into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let areas = root.split_evenly((rows, cols));
    for (g, (label, configs)) in groups.iter().enumerate() {
        for (c, s) in configs.iter().enumerate() {
            let area = &areas[g * cols + c];
            let mut chart = ChartBuilder::on(area)
                .caption(label.as_str(), ("sans-serif", 13))
                .margin(6)
                .build_cartesian_2d(0..l, 0..l)?;
            chart.draw_series((0..l * l).map(|p| {
                let (y, x) = (p / l, p % l);
                let colour = if s.get(p).copied().unwrap_or(0.0) > 0.0 {
                    BLACK
                } else {
                    RGBColor(235, 235, 235)
                };
                // Row 0 at the top, as sites are numbered.
                Rectangle::new([(x, l - 1 - y), (x + 1, l - y)], colour.filled())
            }))?;
        }
    }
    root.present()
        .with_context(|| format!("cannot write the figure `{}`", path.display()))?;
    // The backend has written its file and holds no handle; it only borrows `tmp`.
    png.commit()
}

/// What a small panel of [`chart_grid`] shows.
pub enum PanelContent {
    /// Lines (with markers and error bars as in [`line_chart`]).
    Lines(Vec<Series>),
    /// Points (x, y, c) coloured by c ∈ [0, 1] on the viridis scale.
    Scatter(Vec<(f64, f64, f64)>),
}

/// One panel of [`chart_grid`].
pub struct Panel {
    pub caption: String,
    pub content: PanelContent,
    /// log10 y axis (lines only; non-positive values are left out).
    pub log_y: bool,
    /// Axis ranges; `None` for the data's.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
}

impl Panel {
    /// Lines on a linear axis.
    pub fn lines(caption: impl Into<String>, series: Vec<Series>) -> Self {
        Self {
            caption: caption.into(),
            content: PanelContent::Lines(series),
            log_y: false,
            x_range: None,
            y_range: None,
        }
    }

    /// Coloured points on the given ranges.
    pub fn scatter(
        caption: impl Into<String>,
        points: Vec<(f64, f64, f64)>,
        x_range: (f64, f64),
        y_range: (f64, f64),
    ) -> Self {
        Self {
            caption: caption.into(),
            content: PanelContent::Scatter(points),
            log_y: false,
            x_range: Some(x_range),
            y_range: Some(y_range),
        }
    }
}

/// A grid of `cols` small panels per row (row-major), with a title; legends are drawn in the
/// first panel that has lines. Used for the VAE figures (latent distributions and data
/// coloured by latent value per decoder and β, metrics against β).
pub fn chart_grid(
    path: &Path,
    title: &str,
    cols: usize,
    panels: &[Panel],
    x_label: &str,
    y_label: &str,
) -> Result<()> {
    fonts();
    let cols = cols.max(1);
    let rows = panels.len().div_ceil(cols).max(1);
    // Wide enough for the title (18 px sans-serif: about 9 px per character).
    let title_w = 9 * title.chars().count() as u32 + 40;
    let (w, h) = (
        (300 * cols as u32 + 20).max(title_w),
        260 * rows as u32 + 40,
    );
    let png = PendingPng::new(path);
    let tmp = png.tmp().to_path_buf();
    let root = BitMapBackend::new(&tmp, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let mut legend_drawn = false;
    for (panel, area) in panels.iter().zip(root.split_evenly((rows, cols)).iter()) {
        let (xr, yr) = match &panel.content {
            PanelContent::Lines(series) => (
                finite_range(
                    series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
                    false,
                ),
                finite_range(
                    series.iter().flat_map(|s| {
                        s.points
                            .iter()
                            .zip(s.errors.iter().copied().chain(std::iter::repeat(0.0)))
                            .flat_map(|(p, e)| [p.1 - e, p.1 + e])
                    }),
                    panel.log_y,
                ),
            ),
            PanelContent::Scatter(pts) => (
                finite_range(pts.iter().map(|p| p.0), false),
                finite_range(pts.iter().map(|p| p.1), false),
            ),
        };
        let (Some((x0, x1)), Some((y0, y1))) = (panel.x_range.or(xr), panel.y_range.or(yr)) else {
            continue;
        };
        let mut builder = ChartBuilder::on(area);
        builder
            .caption(&panel.caption, ("sans-serif", 14))
            .margin(6)
            .x_label_area_size(30)
            .y_label_area_size(48);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .x_labels(5)
                    .y_labels(5)
                    .y_label_formatter(&|v: &f64| axis_label(*v, panel.log_y))
                    .label_style(("sans-serif", 11))
                    .disable_mesh()
                    .draw()?;
                match &panel.content {
                    PanelContent::Scatter(pts) => {
                        chart.draw_series(
                            pts.iter()
                                .filter(|p| (x0..=x1).contains(&p.0) && (y0..=y1).contains(&p.1))
                                .map(|&(x, y, c)| {
                                    let col = ViridisRGB::get_color(c.clamp(0.0, 1.0));
                                    Circle::new((x, y), 1, col.filled())
                                }),
                        )?;
                    }
                    PanelContent::Lines(series) => {
                        draw_lines(&mut chart, series, panel.log_y, 2, 16)?;
                        if !legend_drawn && series.len() > 1 {
                            legend_drawn = true;
                            chart
                                .configure_series_labels()
                                .background_style(WHITE.mix(0.8))
                                .border_style(BLACK)
                                .label_font(("sans-serif", 11))
                                .draw()?;
                        }
                    }
                }
            }};
        }
        if panel.log_y {
            draw!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?);
        } else {
            draw!(builder.build_cartesian_2d(x0..x1, y0..y1)?);
        }
    }
    root.present()
        .with_context(|| format!("cannot write the figure `{}`", path.display()))?;
    // The backend has written its file and holds no handle; it only borrows `tmp`.
    png.commit()
}

/// A comma-separated table with a header row (metrics.csv, ais_levels.csv), read by column
/// name: columns get added over versions, so positions are not stable.
pub struct CsvTable {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl CsvTable {
    /// Reads `path`.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut lines = text.lines();
        let header = lines
            .next()
            .map(|h| h.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        Ok(Self {
            path: path.to_path_buf(),
            header,
            rows: lines
                .map(|l| l.split(',').map(str::to_string).collect())
                .collect(),
        })
    }

    /// The column `name` as text, one entry per row (empty where a row is short).
    ///
    /// # Errors
    /// A missing column, naming the file and the columns it has.
    pub fn column(&self, name: &str) -> Result<Vec<&str>> {
        let i = self.index(name)?;
        Ok(self
            .rows
            .iter()
            .map(|r| r.get(i).map_or("", String::as_str))
            .collect())
    }

    fn index(&self, name: &str) -> Result<usize> {
        Ok(self.header.iter().position(|h| h == name).ok_or_else(|| {
            Error::invalid(
                "report",
                format!(
                    "{} has no column `{name}` (columns: {}); rerun the command that wrote it",
                    self.path.display(),
                    self.header.join(", ")
                ),
            )
        })?)
    }

    /// (x, y) of every row where both parse as numbers.
    ///
    /// # Errors
    /// A missing column, naming the file and the columns it has.
    pub fn points(&self, x: &str, y: &str) -> Result<Vec<(f64, f64)>> {
        let (i, j) = (self.index(x)?, self.index(y)?);
        Ok(self
            .rows
            .iter()
            .filter_map(|r| Some((r.get(i)?.parse().ok()?, r.get(j)?.parse().ok()?)))
            .collect())
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_columns_are_found_by_name_whatever_their_position() {
        // A column added before val_nll (as kl_cut_fraction once was) must not shift the
        // series the report draws.
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("metrics.csv");
        std::fs::write(
            &path,
            "epoch,stage,nll,kl_cut_fraction,val_nll,ess_fraction\n1,ml,-3.5,NaN,-3.0,0.25\n2,kl,-3.7,0.1,-3.2,0.5\n",
        )
        .unwrap();
        let t = CsvTable::read(&path).unwrap();
        assert_eq!(
            t.points("epoch", "val_nll").unwrap(),
            vec![(1.0, -3.0), (2.0, -3.2)]
        );
        assert_eq!(
            t.points("epoch", "ess_fraction").unwrap(),
            vec![(1.0, 0.25), (2.0, 0.5)]
        );
        // NaN parses as a number and is left to the chart to skip.
        assert!(t.points("epoch", "kl_cut_fraction").unwrap()[0].1.is_nan());
        let e = t.points("epoch", "rc").unwrap_err().to_string();
        assert!(e.contains("metrics.csv") && e.contains("`rc`"), "{e}");
    }
}
