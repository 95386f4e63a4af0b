//! PNG line charts with no system dependencies: training curves (loss, speed, gradient norm
//! against iteration) and benchmark throughput against batch size.
//!
//! The charts are drawn by [`plotters`] into an RGB buffer and encoded with the `png` crate.
//! The font (DejaVu Sans, `assets/fonts/`) is compiled into the binary and registered with
//! plotters from its bytes, so the charts render the same on a machine without fontconfig or
//! any installed fonts. Axes can be linear or logarithmic; points that are not finite (or not
//! positive on a log axis) are skipped and break their line. Files are written atomically
//! ([`crate::io::files::write_atomic`]).
//!
//! ```no_run
//! use backdrive::io::plot;
//! let loss: Vec<(f64, f64)> = (0..100).map(|i| (i as f64, 1.0 / (1.0 + i as f64))).collect();
//! plot::line_chart("out/loss.png", "training loss", "iteration", "loss", &[("loss", loss)], true)
//!     .unwrap();
//! ```

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{
    AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged, ValueFormatter,
};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// Chart size and axis scales.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartOptions {
    /// Image width in pixels (200..=8192).
    pub width: u32,
    /// Image height in pixels (150..=8192).
    pub height: u32,
    /// Logarithmic x axis (batch sizes, for instance).
    pub log_x: bool,
    /// Logarithmic y axis (losses, gradient norms, throughput).
    pub log_y: bool,
}

impl Default for ChartOptions {
    fn default() -> Self {
        ChartOptions {
            width: 900,
            height: 540,
            log_x: false,
            log_y: false,
        }
    }
}

/// Writes a line chart of `series` (name and `(x, y)` points each) as a PNG file at `path`,
/// with a linear x axis and a linear or logarithmic y axis. See [`line_chart_with`] for a
/// logarithmic x axis or another size.
pub fn line_chart<S: AsRef<str>>(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(S, Vec<(f64, f64)>)],
    log_y: bool,
) -> Result<()> {
    let options = ChartOptions {
        log_y,
        ..ChartOptions::default()
    };
    line_chart_with(path, title, x_label, y_label, series, &options)
}

/// Writes a line chart as a PNG file at `path` (parent directories are created; the file is
/// written atomically, so a failed run leaves no partial file).
pub fn line_chart_with<S: AsRef<str>>(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(S, Vec<(f64, f64)>)],
    options: &ChartOptions,
) -> Result<()> {
    let png = render_line_chart(title, x_label, y_label, series, options)?;
    crate::io::files::write_atomic(path.as_ref(), &png)
}

/// Renders a line chart and returns the PNG file's bytes.
pub fn render_line_chart<S: AsRef<str>>(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(S, Vec<(f64, f64)>)],
    options: &ChartOptions,
) -> Result<Vec<u8>> {
    let (w, h) = (options.width, options.height);
    if !(200..=8192).contains(&w) || !(150..=8192).contains(&h) {
        return Err(Error::InvalidInput(format!(
            "chart size {w}x{h}: expected 200..=8192 by 150..=8192 pixels"
        )));
    }
    register_font()?;
    let labels = Labels {
        title,
        x: x_label,
        y: y_label,
    };
    let runs: Vec<Series> = series
        .iter()
        .map(|(name, points)| Series::new(name.as_ref(), points, options))
        .collect();
    let x = AxisRange::of(
        runs.iter().flat_map(|s| s.points().map(|p| p.0)),
        options.log_x,
    );
    let y = AxisRange::of(
        runs.iter().flat_map(|s| s.points().map(|p| p.1)),
        options.log_y,
    );
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        // The four axis-scale combinations are four coordinate types in plotters.
        let drawn = match (options.log_x, options.log_y) {
            (false, false) => draw(&root, &labels, &runs, &x, &y, x.linear(), y.linear()),
            (true, false) => draw(&root, &labels, &runs, &x, &y, x.log(), y.linear()),
            (false, true) => draw(&root, &labels, &runs, &x, &y, x.linear(), y.log()),
            (true, true) => draw(&root, &labels, &runs, &x, &y, x.log(), y.log()),
        };
        drawn.map_err(|e| Error::InvalidInput(format!("drawing chart '{title}': {e}")))?;
        root.present()
            .map_err(|e| Error::InvalidInput(format!("drawing chart '{title}': {e}")))?;
    }
    encode_png(w, h, &rgb)
}

/// The bundled font's family name as plotters looks it up.
const FONT: &str = "sans-serif";

/// Registers the bundled font once per process (plotters keeps a global font table).
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(
            "the bundled chart font (assets/fonts/DejaVuSans.ttf) could not be read".into(),
        ))
    }
}

struct Labels<'a> {
    title: &'a str,
    x: &'a str,
    y: &'a str,
}

/// Line colours (the "tab10" palette), cycled through by series.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];
const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
const AXIS: RGBColor = RGBColor(0x66, 0x66, 0x66);
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
const MINOR_GRID: RGBColor = RGBColor(0xef, 0xef, 0xef);

/// Series with at most this many points get a marker on every point.
const MARKER_MAX_POINTS: usize = 60;

/// One series split into runs of drawable points (a skipped point breaks the line).
struct Series {
    name: String,
    runs: Vec<Vec<(f64, f64)>>,
}

impl Series {
    fn new(name: &str, points: &[(f64, f64)], options: &ChartOptions) -> Series {
        let valid = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &(x, y) in points {
            if valid(x, options.log_x) && valid(y, options.log_y) {
                runs.last_mut().expect("non-empty").push((x, y));
            } else if !runs.last().expect("non-empty").is_empty() {
                runs.push(Vec::new());
            }
        }
        runs.retain(|r| !r.is_empty());
        Series {
            name: name.to_string(),
            runs,
        }
    }

    fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.runs.iter().flatten().copied()
    }
}

/// The shown range of one axis: the data's, padded, or a unit range without data.
struct AxisRange {
    lo: f64,
    hi: f64,
    log: bool,
}

impl AxisRange {
    fn of(values: impl Iterator<Item = f64>, log: bool) -> AxisRange {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            return if log {
                AxisRange {
                    lo: 1.0,
                    hi: 10.0,
                    log,
                }
            } else {
                AxisRange {
                    lo: 0.0,
                    hi: 1.0,
                    log,
                }
            };
        }
        if log {
            // A tenth of a decade of margin, and at least a factor of 2 shown.
            let (mut l, mut h) = (lo.log10(), hi.log10());
            if h - l < 0.3 {
                let mid = 0.5 * (l + h);
                (l, h) = (mid - 0.15, mid + 0.15);
            }
            let pad = 0.03 * (h - l);
            AxisRange {
                lo: 10f64.powf(l - pad),
                hi: 10f64.powf(h + pad),
                log,
            }
        } else {
            if hi - lo <= 1e-12 * lo.abs().max(1e-300) {
                let half = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
                (lo, hi) = (lo - half, hi + half);
            }
            let pad = 0.04 * (hi - lo);
            AxisRange {
                lo: lo - pad,
                hi: hi + pad,
                log,
            }
        }
    }

    fn linear(&self) -> Ticked<RangedCoordf64> {
        let (bold, light) = self.ticks();
        Ticked {
            inner: (self.lo..self.hi).into(),
            bold,
            light,
        }
    }

    fn log(&self) -> Ticked<LogCoord<f64>> {
        let (bold, light) = self.ticks();
        Ticked {
            inner: (self.lo..self.hi).log_scale().into(),
            bold,
            light,
        }
    }

    /// Labelled ticks and minor grid lines. A linear axis gets 1, 2 or 5 times a power of ten
    /// apart. A log axis gets its powers of ten when it spans three decades or more, else
    /// 1, 2 and 5 times them, and linear steps within about a decade.
    fn ticks(&self) -> (Vec<f64>, Vec<f64>) {
        let within = |v: &f64| *v >= self.lo * (1.0 - 1e-12) && *v <= self.hi * (1.0 + 1e-12);
        let linear = |lo: f64, hi: f64| {
            let step = nice_step((hi - lo) / 6.0);
            let first = (lo / step).ceil() as i64;
            let last = (hi / step).floor() as i64;
            let bold: Vec<f64> = (first..=last).map(|k| k as f64 * step).collect();
            let light = (2 * first - 1..=2 * last + 1)
                .filter(|k| k % 2 != 0)
                .map(|k| k as f64 * step / 2.0)
                .filter(|v| *v >= lo && *v <= hi)
                .collect();
            (bold, light)
        };
        if !self.log {
            return linear(self.lo, self.hi);
        }
        let (d0, d1) = (
            self.lo.log10().floor() as i32,
            self.hi.log10().ceil() as i32,
        );
        let multiples = |ms: &[f64]| -> Vec<f64> {
            (d0..=d1)
                .flat_map(|d| ms.iter().map(move |m| m * 10f64.powi(d)))
                .filter(within)
                .collect()
        };
        let decades = multiples(&[1.0]);
        let one_two_five = multiples(&[1.0, 2.0, 5.0]);
        let others = |bold: &[f64]| -> Vec<f64> {
            multiples(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
                .into_iter()
                .filter(|v| !bold.iter().any(|b| (b - v).abs() <= 1e-9 * v.abs()))
                .collect()
        };
        if decades.len() >= 3 {
            let light = others(&decades);
            (decades, light)
        } else if one_two_five.len() >= 3 {
            let light = others(&one_two_five);
            (one_two_five, light)
        } else {
            linear(self.lo, self.hi)
        }
    }

    /// Where `v` lies along the axis, 0 at `lo` and 1 at `hi`.
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v / self.lo).log10() / (self.hi / self.lo).log10()
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
}

/// An axis with the chart's own labelled ticks (`bold`) and minor grid lines (`light`), since
/// plotters' own log axis labels only powers of ten.
struct Ticked<R> {
    inner: R,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> std::ops::Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 {
        raw
    } else {
        1.0
    };
    let e = 10f64.powf(raw.log10().floor());
    let f = raw / e;
    e * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// A tick label: SI suffixes from 10^4 up, scientific notation below 10^-3, otherwise as few
/// decimals as show the value to three significant digits.
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if let Some((scale, suffix)) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e4, "k")]
        .into_iter()
        .find(|&(s, _)| a >= s)
    {
        let scale = if suffix == "k" { 1e3 } else { scale };
        return format!("{}{suffix}", trim(v / scale, 3));
    }
    if a < 1e-3 {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    trim(v, 3)
}

/// `v` to `digits` significant digits without trailing zeros.
fn trim(v: f64, digits: i32) -> String {
    let decimals = (digits - 1 - v.abs().log10().floor() as i32).clamp(0, 8) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The legend's corner: the one of the plot's four quadrants holding the fewest points.
fn legend_position(runs: &[Series], x: &AxisRange, y: &AxisRange) -> SeriesLabelPosition {
    let mut count = [0usize; 4];
    for (px, py) in runs.iter().flat_map(Series::points) {
        let right = x.frac(px) > 0.5;
        let upper = y.frac(py) > 0.5;
        count[usize::from(upper) * 2 + usize::from(right)] += 1;
    }
    let order = [
        (3, SeriesLabelPosition::UpperRight),
        (2, SeriesLabelPosition::UpperLeft),
        (1, SeriesLabelPosition::LowerRight),
        (0, SeriesLabelPosition::LowerLeft),
    ];
    let (_, best) = order
        .into_iter()
        .min_by_key(|&(k, _)| count[k])
        .expect("four corners");
    best
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw<DB, X, Y>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    labels: &Labels,
    runs: &[Series],
    x_range: &AxisRange,
    y_range: &AxisRange,
    x: X,
    y: Y,
) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(12)
        .margin_right(24)
        .x_label_area_size(if labels.x.is_empty() { 28 } else { 48 })
        .y_label_area_size(if labels.y.is_empty() { 56 } else { 76 });
    if !labels.title.is_empty() {
        builder.caption(labels.title, (FONT, 20).into_font().color(&TEXT));
    }
    let mut chart = builder.build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .x_desc(labels.x)
        .y_desc(labels.y)
        .label_style((FONT, 13).into_font().color(&TEXT))
        .axis_desc_style((FONT, 15).into_font().color(&TEXT))
        .axis_style(AXIS)
        .bold_line_style(GRID)
        .light_line_style(MINOR_GRID)
        .draw()?;

    let mut any_data = false;
    let mut any_name = false;
    for (k, series) in runs.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let n: usize = series.runs.iter().map(Vec::len).sum();
        for (r, run) in series.runs.iter().enumerate() {
            any_data = true;
            let line =
                chart.draw_series(LineSeries::new(run.iter().copied(), colour.stroke_width(2)))?;
            if r == 0 && !series.name.is_empty() {
                any_name = true;
                line.label(series.name.as_str()).legend(move |(lx, ly)| {
                    PathElement::new(vec![(lx, ly), (lx + 22, ly)], colour.stroke_width(2))
                });
            }
            if n <= MARKER_MAX_POINTS || run.len() == 1 {
                chart.draw_series(run.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            }
        }
    }
    if !any_data {
        let area = chart.plotting_area();
        let (pw, ph) = area.dim_in_pixel();
        let style = (FONT, 18).into_font().color(&AXIS);
        let (tw, th) = area.estimate_text_size("no data", &style)?;
        root.draw_text(
            "no data",
            &style,
            (
                area.get_base_pixel().0 + (pw as i32 - tw as i32) / 2,
                area.get_base_pixel().1 + (ph as i32 - th as i32) / 2,
            ),
        )?;
    }
    if any_name {
        chart
            .configure_series_labels()
            .position(legend_position(runs, x_range, y_range))
            .margin(10)
            .label_font((FONT, 13).into_font().color(&TEXT))
            .background_style(WHITE.mix(0.9))
            .border_style(GRID)
            .draw()?;
    }
    Ok(())
}

fn encode_png(w: u32, h: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let fail = |e: png::EncodingError| Error::InvalidInput(format!("encoding PNG: {e}"));
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(rgb).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(0.05), "0.05");
        assert_eq!(tick_label(0.315), "0.315");
        assert_eq!(tick_label(1000.0), "1000");
        assert_eq!(tick_label(10_000.0), "10k");
        assert_eq!(tick_label(3.2e6), "3.2M");
        assert_eq!(tick_label(1e-5), "1e-5");
        assert_eq!(tick_label(-250.0), "-250");
    }

    #[test]
    fn ticks_follow_the_scale() {
        let labels =
            |a: &AxisRange| -> Vec<String> { a.ticks().0.into_iter().map(tick_label).collect() };
        let log = |lo: f64, hi: f64| AxisRange { lo, hi, log: true };
        assert_eq!(
            labels(&log(1.0, 65536.0)),
            ["1", "10", "100", "1000", "10k"]
        );
        assert_eq!(labels(&log(0.02, 0.3)), ["0.02", "0.05", "0.1", "0.2"]);
        // Within a decade: linear steps.
        assert_eq!(
            labels(&log(0.31, 0.33)),
            ["0.31", "0.315", "0.32", "0.325", "0.33"]
        );
        let linear = AxisRange {
            lo: 0.0,
            hi: 10.0,
            log: false,
        };
        assert_eq!(labels(&linear), ["0", "2", "4", "6", "8", "10"]);
        assert!(!log(1.0, 65536.0).ticks().1.is_empty());
    }

    #[test]
    fn ranges_pad_the_data_and_survive_constants() {
        let a = AxisRange::of([0.13, 9.7].into_iter(), false);
        assert!(a.lo < 0.13 && a.hi > 9.7 && a.hi < 10.2);
        let a = AxisRange::of([2.0, 2.0].into_iter(), false);
        assert!(a.lo < 2.0 && a.hi > 2.0);
        let a = AxisRange::of([0.31, 0.33].into_iter(), true);
        assert!(a.lo < 0.31 && a.hi > 0.33 && a.hi / a.lo >= 2.0);
        let a = AxisRange::of(std::iter::empty(), true);
        assert!(a.lo > 0.0 && a.hi > a.lo);
    }

    #[test]
    fn bad_points_are_skipped_and_sizes_checked() {
        let s = [(
            "a",
            vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, -1.0), (3.0, 4.0)],
        )];
        let png = render_line_chart("t", "x", "y", &s, &ChartOptions::default()).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let log = ChartOptions {
            log_y: true,
            ..ChartOptions::default()
        };
        // On a log axis -1 is skipped as well: two runs of one point each.
        let series = Series::new("a", &s[0].1, &log);
        assert_eq!(series.runs, vec![vec![(0.0, 1.0)], vec![(3.0, 4.0)]]);
        render_line_chart("t", "x", "y", &s, &log).unwrap();
        let empty: [(&str, Vec<(f64, f64)>); 0] = [];
        render_line_chart("", "", "", &empty, &log).unwrap();
        let tiny = ChartOptions {
            width: 10,
            ..ChartOptions::default()
        };
        assert!(render_line_chart("t", "x", "y", &s, &tiny).is_err());
    }

    #[test]
    fn the_legend_avoids_the_data() {
        let x = AxisRange::of([0.0, 10.0].into_iter(), false);
        let y = AxisRange::of([0.0, 10.0].into_iter(), false);
        // A falling line fills the upper left and lower right.
        let falling = Series {
            name: "a".into(),
            runs: vec![
                (0..=10)
                    .map(|i| (f64::from(i), 10.0 - f64::from(i)))
                    .collect(),
            ],
        };
        let pos = legend_position(std::slice::from_ref(&falling), &x, &y);
        assert!(matches!(pos, SeriesLabelPosition::UpperRight), "{pos:?}");
        let rising = Series {
            name: "a".into(),
            runs: vec![(0..=10).map(|i| (f64::from(i), f64::from(i))).collect()],
        };
        let pos = legend_position(std::slice::from_ref(&rising), &x, &y);
        assert!(matches!(pos, SeriesLabelPosition::UpperLeft), "{pos:?}");
    }
}
