//! PNG line charts with no system dependencies: training curves (loss, speed, gradient norm
//! against iteration) and benchmark throughput against batch size.
//!
//! The charts are rasterised here (anti-aliased lines, bitmap fonts embedded in this file) and
//! encoded with the `png` crate, so they render the same on a machine without any fonts.
//! Axes can be linear or logarithmic; points that are not finite (or not positive on a log
//! axis) are skipped and break their line. Files are written atomically
//! ([`crate::files::write_atomic`]).
//!
//! ```no_run
//! use backdrive::plot;
//! let loss: Vec<(f64, f64)> = (0..100).map(|i| (i as f64, 1.0 / (1.0 + i as f64))).collect();
//! plot::line_chart("out/loss.png", "training loss", "iteration", "loss", &[("loss", loss)], true)
//!     .unwrap();
//! ```

use std::path::Path;
use std::sync::OnceLock;

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
/// written atomically by [`crate::files::write_atomic`]).
pub fn line_chart_with<S: AsRef<str>>(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(S, Vec<(f64, f64)>)],
    options: &ChartOptions,
) -> Result<()> {
    let png = render_line_chart(title, x_label, y_label, series, options)?;
    crate::files::write_atomic(path.as_ref(), &png)
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
    let mut canvas = Canvas::new(w, h, WHITE);
    draw_chart(&mut canvas, title, x_label, y_label, series, options);
    canvas.encode_png()
}

type Rgb = [u8; 3];

const WHITE: Rgb = [255, 255, 255];
const TEXT: Rgb = [0x22, 0x22, 0x22];
const AXIS: Rgb = [0x66, 0x66, 0x66];
const GRID: Rgb = [0xdd, 0xdd, 0xdd];
const MINOR_GRID: Rgb = [0xef, 0xef, 0xef];

/// Line colours (the "tab10" palette), cycled through by series.
const PALETTE: [Rgb; 10] = [
    [0x1f, 0x77, 0xb4],
    [0xff, 0x7f, 0x0e],
    [0x2c, 0xa0, 0x2c],
    [0xd6, 0x27, 0x28],
    [0x94, 0x67, 0xbd],
    [0x8c, 0x56, 0x4b],
    [0xe3, 0x77, 0xc2],
    [0x7f, 0x7f, 0x7f],
    [0xbc, 0xbd, 0x22],
    [0x17, 0xbe, 0xcf],
];

/// Series with at most this many points get a marker on every point.
const MARKER_MAX_POINTS: usize = 60;

fn draw_chart<S: AsRef<str>>(
    canvas: &mut Canvas,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(S, Vec<(f64, f64)>)],
    options: &ChartOptions,
) {
    let (small, bold) = (small_font(), bold_font());
    let valid = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
    let ok = |&(x, y): &(f64, f64)| valid(x, options.log_x) && valid(y, options.log_y);
    let points = || series.iter().flat_map(|(_, p)| p.iter().filter(|p| ok(p)));
    let x_axis = Axis::new(points().map(|p| p.0), options.log_x);
    let y_axis = Axis::new(points().map(|p| p.1), options.log_y);
    let any_data = points().next().is_some();

    // Layout: title on top, y label and tick labels on the left, x ones below.
    let (w, h) = (canvas.w as i32, canvas.h as i32);
    let tick_w = y_axis
        .ticks
        .iter()
        .map(|(_, s)| small.width(s))
        .max()
        .unwrap_or(0);
    let top = if title.is_empty() { 14 } else { bold.h + 16 };
    let left = 12 + if y_label.is_empty() { 0 } else { bold.h + 8 } + tick_w + 8;
    let bottom = 8 + small.h + 6 + if x_label.is_empty() { 0 } else { bold.h + 8 } + 4;
    let last_x_tick = x_axis.ticks.last().map_or(0, |(_, s)| small.width(s));
    let right = (last_x_tick / 2 + 8).max(24);
    let plot = Rect {
        x0: left,
        y0: top,
        x1: (w - right).max(left + 10),
        y1: (h - bottom).max(top + 10),
    };
    let px = |x: f64| f64::from(plot.x0) + x_axis.frac(x) * f64::from(plot.x1 - plot.x0);
    let py = |y: f64| f64::from(plot.y1) - y_axis.frac(y) * f64::from(plot.y1 - plot.y0);

    // Grid, minor lines first.
    for &x in &x_axis.minor {
        canvas.vline(px(x).round() as i32, plot.y0, plot.y1, MINOR_GRID);
    }
    for &y in &y_axis.minor {
        canvas.hline(py(y).round() as i32, plot.x0, plot.x1, MINOR_GRID);
    }
    for (x, _) in &x_axis.ticks {
        canvas.vline(px(*x).round() as i32, plot.y0, plot.y1, GRID);
    }
    for (y, _) in &y_axis.ticks {
        canvas.hline(py(*y).round() as i32, plot.x0, plot.x1, GRID);
    }

    // Tick labels; an x label that would overlap the previous one is left out.
    let mut last_right = i32::MIN;
    for (x, label) in &x_axis.ticks {
        let tw = small.width(label);
        let lx = px(*x).round() as i32 - tw / 2;
        if lx > last_right + 6 {
            canvas.tick(px(*x).round() as i32, plot.y1, true);
            canvas.text(small, lx, plot.y1 + 8, label, TEXT);
            last_right = lx + tw;
        }
    }
    let mut last_top = i32::MAX;
    for (y, label) in &y_axis.ticks {
        let ty = py(*y).round() as i32 - small.ascent / 2 - 2;
        if ty + small.h + 2 <= last_top {
            canvas.tick(py(*y).round() as i32, plot.x0, false);
            canvas.text(small, plot.x0 - 8 - small.width(label), ty, label, TEXT);
            last_top = ty;
        }
    }

    // Series, clipped to the plot area.
    canvas.clip = Some(plot);
    let mut legend = Vec::new();
    let mut pixel_runs = Vec::new();
    for (k, (name, pts)) in series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for p in pts {
            if ok(p) {
                runs.last_mut().expect("non-empty").push((px(p.0), py(p.1)));
            } else if !runs.last().expect("non-empty").is_empty() {
                runs.push(Vec::new());
            }
        }
        runs.retain(|r| !r.is_empty());
        canvas.stroke(&runs, 2.0, colour);
        let n: usize = runs.iter().map(Vec::len).sum();
        for run in &runs {
            for &(x, y) in run {
                if n <= MARKER_MAX_POINTS || run.len() == 1 {
                    canvas.disc(x, y, 3.5, colour);
                }
            }
        }
        if !name.as_ref().is_empty() {
            legend.push((name.as_ref().to_string(), colour));
        }
        pixel_runs.extend(runs);
    }
    canvas.clip = None;

    // Frame around the plot area.
    canvas.hline(plot.y0, plot.x0, plot.x1, AXIS);
    canvas.hline(plot.y1, plot.x0, plot.x1 + 1, AXIS);
    canvas.vline(plot.x0, plot.y0, plot.y1, AXIS);
    canvas.vline(plot.x1, plot.y0, plot.y1, AXIS);

    if !any_data {
        let msg = "no data";
        let cx = (plot.x0 + plot.x1) / 2 - bold.width(msg) / 2;
        let cy = (plot.y0 + plot.y1) / 2 - bold.h / 2;
        canvas.text(bold, cx, cy, msg, AXIS);
    }
    if !legend.is_empty() {
        draw_legend(canvas, small, plot, &legend, &pixel_runs);
    }

    if !title.is_empty() {
        let tx = (plot.x0 + plot.x1) / 2 - bold.width(title) / 2;
        canvas.text(bold, tx.max(4), 8, title, TEXT);
    }
    if !x_label.is_empty() {
        let tx = (plot.x0 + plot.x1) / 2 - bold.width(x_label) / 2;
        canvas.text(bold, tx.max(4), plot.y1 + 8 + small.h + 8, x_label, TEXT);
    }
    if !y_label.is_empty() {
        let ty = (plot.y0 + plot.y1) / 2 + bold.width(y_label) / 2;
        canvas.text_up(bold, 10, ty.min(h - 4), y_label, TEXT);
    }
}

/// Draws the legend in the corner of the plot area that hides the fewest line pixels.
fn draw_legend(
    canvas: &mut Canvas,
    font: &Font,
    plot: Rect,
    entries: &[(String, Rgb)],
    runs: &[Vec<(f64, f64)>],
) {
    let name_w = entries
        .iter()
        .map(|(n, _)| font.width(n))
        .max()
        .unwrap_or(0);
    let (bw, line_h) = (8 + 22 + 6 + name_w + 8, font.h + 4);
    let bh = 6 + line_h * entries.len() as i32 + 2;
    let m = 8;
    let corners = [
        (plot.x1 - m - bw, plot.y0 + m),
        (plot.x0 + m, plot.y0 + m),
        (plot.x1 - m - bw, plot.y1 - m - bh),
        (plot.x0 + m, plot.y1 - m - bh),
    ];
    let hidden = |&(x, y): &(i32, i32)| -> usize {
        let inside = |p: (f64, f64)| {
            p.0 >= f64::from(x)
                && p.0 <= f64::from(x + bw)
                && p.1 >= f64::from(y)
                && p.1 <= f64::from(y + bh)
        };
        let mut n = 0;
        for run in runs {
            for (i, &p) in run.iter().enumerate() {
                n += usize::from(inside(p));
                if let Some(&q) = run.get(i + 1) {
                    // Sample the segment so that sparse series count too.
                    for s in 1..8 {
                        let t = f64::from(s) / 8.0;
                        n += usize::from(inside((p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1))));
                    }
                }
            }
        }
        n
    };
    let (x, y) = corners
        .iter()
        .min_by_key(|c| hidden(c))
        .copied()
        .expect("four corners");
    canvas.fill_rect(x, y, x + bw, y + bh, WHITE, 0.88);
    canvas.hline(y, x, x + bw, GRID);
    canvas.hline(y + bh, x, x + bw + 1, GRID);
    canvas.vline(x, y, y + bh, GRID);
    canvas.vline(x + bw, y, y + bh, GRID);
    for (i, (name, colour)) in entries.iter().enumerate() {
        let ty = y + 5 + line_h * i as i32;
        let cy = f64::from(ty + font.ascent - 4);
        canvas.stroke(
            &[vec![(f64::from(x + 8), cy), (f64::from(x + 30), cy)]],
            2.0,
            *colour,
        );
        canvas.text(font, x + 36, ty, name, TEXT);
    }
}

/// A pixel rectangle, `x0..=x1` by `y0..=y1`.
#[derive(Clone, Copy, Debug)]
struct Rect {
    x0: i32,
    y0: i32,
    x1: i32,
    y1: i32,
}

/// One axis: its range, labelled ticks and unlabelled minor grid lines.
#[derive(Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<(f64, String)>,
    minor: Vec<f64>,
}

impl Axis {
    /// An axis covering `values` (finite, and positive on a log axis), rounded out to ticks.
    fn new(values: impl Iterator<Item = f64>, log: bool) -> Axis {
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if log {
            Axis::log(lo, hi)
        } else {
            Axis::linear(lo, hi)
        }
    }

    fn linear(lo: f64, hi: f64) -> Axis {
        let (mut lo, mut hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
        if hi - lo <= 1e-12 * lo.abs().max(hi.abs()) {
            let d = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
            lo -= d;
            hi += d;
        }
        let step = nice_step((hi - lo) / 6.0);
        let lo = (lo / step + 1e-9).floor() * step;
        let hi = (hi / step - 1e-9).ceil() * step;
        let n = ((hi - lo) / step).round() as i64;
        let ticks = (0..=n)
            .map(|i| {
                let v = lo + i as f64 * step;
                (v, linear_label(v, step, lo.abs().max(hi.abs())))
            })
            .collect();
        Axis {
            lo,
            hi,
            log: false,
            ticks,
            minor: Vec::new(),
        }
    }

    fn log(lo: f64, hi: f64) -> Axis {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (1.0, 10.0) };
        // Range in decades, padded by 4% (half a decade each way around a constant).
        let (mut a, mut b) = (lo.log10(), hi.log10());
        if b - a < 1e-9 {
            a -= 0.5;
            b += 0.5;
        } else {
            let pad = 0.04 * (b - a);
            a -= pad;
            b += pad;
        }
        let (vlo, vhi) = (10f64.powf(a), 10f64.powf(b));
        let within = |v: f64| v >= vlo * (1.0 - 1e-9) && v <= vhi * (1.0 + 1e-9);
        let decades = b - a;
        let (ka, kb) = (a.floor() as i32, b.ceil() as i32);
        let mut ticks = Vec::new();
        let mut minor = Vec::new();
        let step = ((decades / 10.0).ceil() as i32).max(1);
        for k in ka..=kb {
            if decades <= 3.0 {
                for m in 1..10 {
                    let v = f64::from(m) * 10f64.powi(k);
                    if [1, 2, 5].contains(&m) {
                        ticks.push((v, log_label(m, k)));
                    } else {
                        minor.push(v);
                    }
                }
            } else if (k - ka) % step == 0 {
                ticks.push((10f64.powi(k), log_label(1, k)));
                if decades <= 6.0 {
                    minor.extend((2..10).map(|m| f64::from(m) * 10f64.powi(k)));
                }
            }
        }
        ticks.retain(|(v, _)| within(*v));
        minor.retain(|v| within(*v));
        if ticks.len() < 2 {
            // Less than a decade: round linear steps.
            let step = nice_step((vhi - vlo) / 5.0);
            let first = (vlo / step - 1e-9).ceil() as i64;
            ticks = (first..)
                .map(|i| i as f64 * step)
                .take_while(|v| *v <= vhi * (1.0 + 1e-9))
                .filter(|v| *v > 0.0)
                .map(|v| (v, linear_label(v, step, vhi)))
                .collect();
            minor.clear();
        }
        Axis {
            lo: vlo,
            hi: vhi,
            log: true,
            ticks,
            minor,
        }
    }

    /// Position of `v` along the axis, 0 at `lo` and 1 at `hi`.
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
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

/// SI suffix for magnitudes of at least 10^4 (`k`, `M`, `G`, `T`), with its scale.
fn si_scale(max_abs: f64) -> Option<(f64, &'static str)> {
    if max_abs < 1e4 {
        return None;
    }
    [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|&(s, _)| max_abs >= s)
}

/// A tick label on a linear axis whose ticks are `step` apart and reach `max_abs`.
fn linear_label(v: f64, step: f64, max_abs: f64) -> String {
    if v.abs() < 1e-9 * step {
        return "0".to_string();
    }
    if max_abs < 1e-3 {
        let digits = (v.abs().log10().floor() - step.log10().floor()).clamp(0.0, 4.0) as usize;
        return format!("{v:.digits$e}");
    }
    let (scale, suffix) = si_scale(max_abs).unwrap_or((1.0, ""));
    let decimals = (-(step / scale).log10() - 1e-9).ceil().clamp(0.0, 8.0) as usize;
    format!("{:.decimals$}{suffix}", v / scale)
}

/// The label of `m * 10^k` on a log axis.
fn log_label(m: i32, k: i32) -> String {
    match k {
        ..-3 => format!("{m}e{k}"),
        -3..=-1 => format!("{:.*}", (-k) as usize, f64::from(m) * 10f64.powi(k)),
        0..=3 => format!("{}", i64::from(m) * 10i64.pow(k as u32)),
        4..=14 => {
            let (scale, suffix) = match k {
                4..=5 => (3, "k"),
                6..=8 => (6, "M"),
                9..=11 => (9, "G"),
                _ => (12, "T"),
            };
            format!("{}{suffix}", i64::from(m) * 10i64.pow((k - scale) as u32))
        }
        _ => format!("{m}e{k}"),
    }
}

/// An RGB image being drawn.
struct Canvas {
    w: u32,
    h: u32,
    px: Vec<u8>,
    /// Drawing outside this rectangle (inclusive) is discarded when set.
    clip: Option<Rect>,
}

impl Canvas {
    fn new(w: u32, h: u32, background: Rgb) -> Canvas {
        Canvas {
            w,
            h,
            px: background.repeat((w * h) as usize),
            clip: None,
        }
    }

    fn inside(&self, x: i32, y: i32) -> bool {
        let in_image = x >= 0 && y >= 0 && (x as u32) < self.w && (y as u32) < self.h;
        in_image
            && self
                .clip
                .is_none_or(|c| x >= c.x0 && x <= c.x1 && y >= c.y0 && y <= c.y1)
    }

    /// Mixes `colour` into pixel `(x, y)` with opacity `a`.
    fn blend(&mut self, x: i32, y: i32, colour: Rgb, a: f32) {
        if a <= 0.0 || !self.inside(x, y) {
            return;
        }
        let i = 3 * (y as usize * self.w as usize + x as usize);
        for (p, c) in self.px[i..i + 3].iter_mut().zip(colour) {
            let v = f32::from(*p) + (f32::from(c) - f32::from(*p)) * a.min(1.0);
            *p = v.round().clamp(0.0, 255.0) as u8;
        }
    }

    fn fill_rect(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, colour: Rgb, a: f32) {
        for y in y0..y1 {
            for x in x0..x1 {
                self.blend(x, y, colour, a);
            }
        }
    }

    fn hline(&mut self, y: i32, x0: i32, x1: i32, colour: Rgb) {
        self.fill_rect(x0, y, x1, y + 1, colour, 1.0);
    }

    fn vline(&mut self, x: i32, y0: i32, y1: i32, colour: Rgb) {
        self.fill_rect(x, y0, x + 1, y1 + 1, colour, 1.0);
    }

    /// A 5-pixel tick mark outside the plot area: below `at` on the x axis (`horizontal_axis`),
    /// left of it on the y axis.
    fn tick(&mut self, pos: i32, at: i32, horizontal_axis: bool) {
        if horizontal_axis {
            self.vline(pos, at, at + 4, AXIS);
        } else {
            self.hline(pos, at - 4, at, AXIS);
        }
    }

    /// Draws `s` with its top-left corner at `(x, y)`.
    fn text(&mut self, font: &Font, x: i32, y: i32, s: &str, colour: Rgb) {
        for (i, c) in s.chars().enumerate() {
            let gx = x + i as i32 * font.w;
            for (r, bits) in font.glyph(c).iter().enumerate() {
                for col in 0..font.w {
                    if bits >> (font.w - 1 - col) & 1 == 1 {
                        self.blend(gx + col, y + r as i32, colour, 1.0);
                    }
                }
            }
        }
    }

    /// Draws `s` reading upwards (rotated a quarter turn anticlockwise), the top of its glyphs
    /// at column `x` and its start at row `y`.
    fn text_up(&mut self, font: &Font, x: i32, y: i32, s: &str, colour: Rgb) {
        for (i, c) in s.chars().enumerate() {
            let gy = y - i as i32 * font.w;
            for (r, bits) in font.glyph(c).iter().enumerate() {
                for col in 0..font.w {
                    if bits >> (font.w - 1 - col) & 1 == 1 {
                        self.blend(x + r as i32, gy - col, colour, 1.0);
                    }
                }
            }
        }
    }

    /// Strokes polylines `width` pixels wide, anti-aliased; overlapping segments of one call
    /// do not darken their joints.
    fn stroke(&mut self, runs: &[Vec<(f64, f64)>], width: f64, colour: Rgb) {
        let (w, h) = (self.w as i32, self.h as i32);
        let mut coverage = vec![0f32; (w * h) as usize];
        let (mut bx0, mut by0, mut bx1, mut by1) = (w, h, -1, -1);
        let hw = 0.5 * width;
        for run in runs {
            let segments: Vec<((f64, f64), (f64, f64))> = if run.len() == 1 {
                vec![(run[0], run[0])]
            } else {
                run.windows(2).map(|p| (p[0], p[1])).collect()
            };
            for (a, b) in segments {
                let x0 = ((a.0.min(b.0) - hw - 1.0).floor() as i32).max(0);
                let x1 = ((a.0.max(b.0) + hw + 1.0).ceil() as i32).min(w - 1);
                let y0 = ((a.1.min(b.1) - hw - 1.0).floor() as i32).max(0);
                let y1 = ((a.1.max(b.1) + hw + 1.0).ceil() as i32).min(h - 1);
                let (dx, dy) = (b.0 - a.0, b.1 - a.1);
                let len2 = dx * dx + dy * dy;
                for y in y0..=y1 {
                    for x in x0..=x1 {
                        let (px, py) = (f64::from(x) + 0.5 - a.0, f64::from(y) + 0.5 - a.1);
                        let t = if len2 > 0.0 {
                            ((px * dx + py * dy) / len2).clamp(0.0, 1.0)
                        } else {
                            0.0
                        };
                        let d = ((px - t * dx).powi(2) + (py - t * dy).powi(2)).sqrt();
                        let c = (hw + 0.5 - d).clamp(0.0, 1.0) as f32;
                        if c > 0.0 {
                            let i = (y * w + x) as usize;
                            coverage[i] = coverage[i].max(c);
                        }
                    }
                }
                (bx0, by0, bx1, by1) = (bx0.min(x0), by0.min(y0), bx1.max(x1), by1.max(y1));
            }
        }
        for y in by0..=by1 {
            for x in bx0..=bx1 {
                self.blend(x, y, colour, coverage[(y * w + x) as usize]);
            }
        }
    }

    /// A filled, anti-aliased disc.
    fn disc(&mut self, cx: f64, cy: f64, r: f64, colour: Rgb) {
        let (x0, x1) = ((cx - r - 1.0).floor() as i32, (cx + r + 1.0).ceil() as i32);
        let (y0, y1) = ((cy - r - 1.0).floor() as i32, (cy + r + 1.0).ceil() as i32);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let d = (f64::from(x) + 0.5 - cx).hypot(f64::from(y) + 0.5 - cy);
                self.blend(x, y, colour, (r + 0.5 - d).clamp(0.0, 1.0) as f32);
            }
        }
    }

    fn encode_png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let fail = |e: png::EncodingError| Error::InvalidInput(format!("encoding PNG: {e}"));
        let mut encoder = png::Encoder::new(&mut out, self.w, self.h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(fail)?;
        writer.write_image_data(&self.px).map_err(fail)?;
        writer.finish().map_err(fail)?;
        Ok(out)
    }
}

/// A fixed-width bitmap font for ASCII 32..=126 (other characters draw as `?`).
struct Font {
    w: i32,
    h: i32,
    ascent: i32,
    /// `h` rows per glyph; bit `w - 1` of a row is the leftmost pixel.
    rows: Vec<u16>,
}

impl Font {
    fn parse(hex: &str, (w, h, ascent): (u32, u32, u32)) -> Font {
        let digits = w.div_ceil(4) as usize;
        let mut rows = Vec::with_capacity(95 * h as usize);
        for line in hex.lines() {
            debug_assert_eq!(line.len(), digits * h as usize);
            for r in 0..h as usize {
                let v = &line[r * digits..(r + 1) * digits];
                rows.push(u16::from_str_radix(v, 16).expect("valid font data"));
            }
        }
        debug_assert_eq!(rows.len(), 95 * h as usize);
        Font {
            w: w as i32,
            h: h as i32,
            ascent: ascent as i32,
            rows,
        }
    }

    fn glyph(&self, c: char) -> &[u16] {
        let i = if (' '..='~').contains(&c) {
            c as usize - 32
        } else {
            '?' as usize - 32
        };
        let h = self.h as usize;
        &self.rows[i * h..(i + 1) * h]
    }

    /// Width of `s` in pixels.
    fn width(&self, s: &str) -> i32 {
        s.chars().count() as i32 * self.w
    }
}

fn small_font() -> &'static Font {
    static FONT: OnceLock<Font> = OnceLock::new();
    FONT.get_or_init(|| Font::parse(FONT_SMALL_HEX, FONT_SMALL_SIZE))
}

fn bold_font() -> &'static Font {
    static FONT: OnceLock<Font> = OnceLock::new();
    FONT.get_or_init(|| Font::parse(FONT_BOLD_HEX, FONT_BOLD_SIZE))
}

/// Misc-Fixed 7x13 (public domain), ASCII 32..=126: one glyph per line, 13 rows of
/// 2 hex digits each (bit 6 of a row is the leftmost pixel).
const FONT_SMALL_HEX: &str = "\
00000000000000000000000000\n\
00000808080808080800080000\n\
00001414140000000000000000\n\
00000014143e143e1414000000\n\
000000081e281c0a3c08000000\n\
0000225224080810244a440000\n\
00000000304848304a443a0000\n\
00000808080000000000000000\n\
00000408081010100808040000\n\
00001008080404040808100000\n\
0000000024187e182400000000\n\
0000000008083e080800000000\n\
0000000000000000001c182000\n\
0000000000003e000000000000\n\
000000000000000000081c0800\n\
00000202040408101020200000\n\
00001824424242424224180000\n\
000008182808080808083e0000\n\
00003c424202041820407e0000\n\
00007e0204081c0202423c0000\n\
0000040c142444447e04040000\n\
00007e40405c620202423c0000\n\
00001c2040405c6242423c0000\n\
00007e02040808101020200000\n\
00003c4242423c4242423c0000\n\
00003c4242463a020204380000\n\
00000000081c080000081c0800\n\
00000000081c0800001c182000\n\
00000204081020100804020000\n\
00000000007e00007e00000000\n\
00002010080402040810200000\n\
00003c42420204080800080000\n\
00003c42424e52564a403c0000\n\
000018244242427e4242420000\n\
00007c2222223c2222227c0000\n\
00003c424040404040423c0000\n\
00007c222222222222227c0000\n\
00007e404040784040407e0000\n\
00007e40404078404040400000\n\
00003c424040404e42463a0000\n\
0000424242427e424242420000\n\
00003e080808080808083e0000\n\
00000e04040404040444380000\n\
00004244485060504844420000\n\
000040404040404040407e0000\n\
00004266665a5a424242420000\n\
0000424262524a464242420000\n\
00003c424242424242423c0000\n\
00007c4242427c404040400000\n\
00003c4242424242524a3c0200\n\
00007c4242427c504844420000\n\
00003c4240403c0202423c0000\n\
00003e08080808080808080000\n\
000042424242424242423c0000\n\
00004242422424241818180000\n\
0000424242425a5a6666420000\n\
00004242242418242442420000\n\
00002222141408080808080000\n\
00007e020408181020407e0000\n\
003c2020202020202020203c00\n\
00002020101008040402020000\n\
003c0404040404040404043c00\n\
00000814220000000000000000\n\
00000000000000000000007e00\n\
00100800000000000000000000\n\
00000000003c023e42463a0000\n\
00004040405c624242625c0000\n\
00000000003c424040423c0000\n\
00000202023a464242463a0000\n\
00000000003c427e40423c0000\n\
00001c22202078202020200000\n\
00000000003a444438403c423c\n\
00004040405c62424242420000\n\
000000080018080808083e0000\n\
0000000200060202020222221c\n\
00004040404448704844420000\n\
000018080808080808083e0000\n\
0000000000342a2a2a2a220000\n\
00000000005c62424242420000\n\
00000000003c424242423c0000\n\
00000000005c6242625c404040\n\
00000000003a4642463a020202\n\
00000000005c22202020200000\n\
00000000003c42300c423c0000\n\
000000202078202020221c0000\n\
000000000042424242463a0000\n\
00000000002222221414080000\n\
000000000022222a2a2a140000\n\
00000000004224181824420000\n\
0000000000424242463a02423c\n\
00000000007e040810207e0000\n\
000e1010100830081010100e00\n\
00000808080808080808080000\n\
00380404040806080404043800\n\
0000122a240000000000000000\n\
";
const FONT_SMALL_SIZE: (u32, u32, u32) = (7, 13, 11);

/// Misc-Fixed 9x15B (public domain), ASCII 32..=126: one glyph per line, 15 rows of
/// 3 hex digits each (bit 8 of a row is the leftmost pixel).
const FONT_BOLD_HEX: &str = "\
000000000000000000000000000000000000000000000\n\
000000030030030030030030030030000030000000000\n\
00000006c06c06c000000000000000000000000000000\n\
00000000006c06c0fe06c06c0fe06c06c000000000000\n\
00000001007c0d60d00f007c01e0160d607c010000000\n\
0000000861cc1cc0980300300640ce0ce184000000000\n\
0000000700d80d80f00600f219e18c19c0f6000000000\n\
000000030030030030000000000000000000000000000\n\
00000c01803003006006006006003003001800c000000\n\
00006003001801800c00c00c00c018018030060000000\n\
00000000000000006c0380fe03806c000000000000000\n\
0000000000000300300301fe030030030000000000000\n\
000000000000000000000000000000038038018018030\n\
0000000000000000000001fe000000000000000000000\n\
000000000000000000000000000000030078030000000\n\
00000000600c00c0180300300600c00c0180000000000\n\
0000000300780cc1861861861860cc078030000000000\n\
0000000300700f00300300300300300300fc000000000\n\
0000000780cc18600600c0180300600c01fe000000000\n\
0000000f818c00600c03800c00600618c0f8000000000\n\
00000000c01c03c06c0cc18c1fe00c00c00c000000000\n\
0000001fc1801801b81cc0060061860cc078000000000\n\
0000000780cc1841801b81cc1861860cc078000000000\n\
0000001fe00600600c018018030030030030000000000\n\
0000000780cc1860cc0780cc1861860cc078000000000\n\
0000000780cc1861860ce0760060860cc078000000000\n\
000000000000000030078030000000030078030000000\n\
000000000000000030078030000000038038018018030\n\
00000000c0180300600c00c006003001800c000000000\n\
0000000000000000001fe0000001fe000000000000000\n\
0000000c006003001800c00c0180300600c0000000000\n\
00000007c0c60c600600c018030000030030000000000\n\
0000000780cc18619e1b61b619c1800c607c000000000\n\
0000000300780cc1861861861fe186186186000000000\n\
0000001f818c18618c1f818c18618618c1f8000000000\n\
00000007c0c61821801801801801820c607c000000000\n\
0000001f818c18618618618618618618c1f8000000000\n\
0000000fe0c00c00c00fc0c00c00c00c00fe000000000\n\
0000001fe1801801801f8180180180180180000000000\n\
00000007c0c618018018018e1861860c607c000000000\n\
0000001861861861861fe186186186186186000000000\n\
0000000fc0300300300300300300300300fc000000000\n\
00000003c00c00c00c00c00c00c08c0d8070000000000\n\
00000018618c1981b01e01e01b019818c186000000000\n\
0000000c00c00c00c00c00c00c00c00c00fe000000000\n\
0000001861ce1fe1b61b61b6186186186186000000000\n\
0000001861c61e61e61b61b619e18e18e186000000000\n\
0000000780cc1861861861861861860cc078000000000\n\
0000001fc1861861861fc180180180180180000000000\n\
0000000780cc1861861861861b619e0cc07a000000000\n\
0000001fc1861861861fc1f019818c186186000000000\n\
0000000fc1861801800fc0060060061860fc000000000\n\
0000001fe030030030030030030030030030000000000\n\
0000001861861861861861861861860cc078000000000\n\
0000001861861860cc0cc0cc078078030030000000000\n\
0000001861861861861b61b61b61fe1ce186000000000\n\
0000001861860cc0780300300780cc186186000000000\n\
0000001861860cc078030030030030030030000000000\n\
0000000fe00600600c0180300600c00c00fe000000000\n\
00007c06006006006006006006006006006007c000000\n\
0000001800c00c006003003001800c00c006000000000\n\
00007c00c00c00c00c00c00c00c00c00c00c07c000000\n\
0000000300780cc084000000000000000000000000000\n\
0000000000000000000000000000000000001fe000000\n\
000060030018000000000000000000000000000000000\n\
00000000000000007c0c60060fe18618e0f6000000000\n\
0000001801801801b81cc1861861861cc1b8000000000\n\
00000000000000007c0c61801801800c607c000000000\n\
0000000060060060760ce1861861860ce076000000000\n\
0000000000000000780cc1861fe1800c607c000000000\n\
00000003c0660660600601f8060060060060000000000\n\
0000000000000000fa18e18c18c0f81800fc1861860fc\n\
0000001801801801b81cc186186186186186000000000\n\
0000000300300000700300300300300300fc000000000\n\
00000000600600001e0060060060060060c60c60c607c\n\
0000000c00c00c00cc0d80f00f00d80cc0c6000000000\n\
0000000700300300300300300300300300fc000000000\n\
00000000000000016c1b61b61b61b61b61b6000000000\n\
0000000000000001b81cc186186186186186000000000\n\
0000000000000000780cc1861861860cc078000000000\n\
0000000000000001b81cc1861861861cc1b8180180180\n\
0000000000000000760ce1861861860ce076006006006\n\
0000000000000001bc0e60c00c00c00c00c0000000000\n\
0000000000000000fc1861800fc0061860fc000000000\n\
0000000000600601f806006006006006603c000000000\n\
0000000000000001861861861861860ce076000000000\n\
0000000000000001861860cc0cc078078030000000000\n\
0000000000000001861861b61b61b61fe0cc000000000\n\
0000000000000001860cc0780300780cc186000000000\n\
0000000000000001861861861861860ce07600618c0f8\n\
0000000000000000fc00c0180300600c00fc000000000\n\
00001c03003003003006006003003003003001c000000\n\
000000030030030030030030030030030030000000000\n\
00007001801801801800c00c018018018018070000000\n\
0000000e61b619c000000000000000000000000000000\n\
";
const FONT_BOLD_SIZE: (u32, u32, u32) = (9, 15, 12);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fonts_parse() {
        assert_eq!(small_font().rows.len(), 95 * 13);
        assert_eq!(bold_font().rows.len(), 95 * 15);
        // A space is blank, an 'A' is not.
        assert!(small_font().glyph(' ').iter().all(|&r| r == 0));
        assert!(bold_font().glyph('A').iter().any(|&r| r != 0));
    }

    #[test]
    fn linear_ticks_are_round_and_cover_the_data() {
        let a = Axis::linear(0.13, 9.7);
        assert!(a.lo <= 0.13 && a.hi >= 9.7);
        let labels: Vec<&str> = a.ticks.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(labels, ["0", "2", "4", "6", "8", "10"]);
        let a = Axis::linear(0.0, 0.25);
        assert_eq!(a.ticks[1].1, "0.05");
        let a = Axis::linear(0.0, 3.2e6);
        assert_eq!(a.ticks[1].1, "1M");
        assert_eq!(a.ticks.last().unwrap().1, "4M");
        // A constant series still gets a range.
        let a = Axis::linear(2.0, 2.0);
        assert!(a.lo < 2.0 && a.hi > 2.0);
    }

    #[test]
    fn log_ticks() {
        let a = Axis::log(1.0, 65536.0);
        let labels: Vec<&str> = a.ticks.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(labels, ["1", "10", "100", "1000", "10k", "100k"]);
        let a = Axis::log(0.02, 0.3);
        let labels: Vec<&str> = a.ticks.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(labels, ["0.02", "0.05", "0.1", "0.2"]);
        // Within a decade: linear steps.
        let a = Axis::log(0.31, 0.33);
        let labels: Vec<&str> = a.ticks.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(labels, ["0.310", "0.315", "0.320", "0.325", "0.330"]);
        assert_eq!(log_label(1, -5), "1e-5");
        assert_eq!(log_label(2, 6), "2M");
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
        render_line_chart("t", "x", "y", &s, &log).unwrap();
        let empty: [(&str, Vec<(f64, f64)>); 0] = [];
        render_line_chart("", "", "", &empty, &log).unwrap();
        let tiny = ChartOptions {
            width: 10,
            ..ChartOptions::default()
        };
        assert!(render_line_chart("t", "x", "y", &s, &tiny).is_err());
    }
}
