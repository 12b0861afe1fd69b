//! Small PNG writers for training artefacts: image grids, line plots (loss curves) and 2-D
//! scatter plots (embeddings). Drawing is done here on a plain pixel buffer with a built-in 5×7
//! bitmap font, so no plotting crate is needed.

use std::path::Path;

use crate::error::{Error, Result};

/// Largest PNG side accepted, and largest pixel count: keeps a typo from allocating gigabytes.
const MAX_SIDE: usize = 1 << 15;
const MAX_PIXELS: usize = 1 << 26;

/// Value of the gap between tiles of an image grid.
const GAP: f32 = 0.2;

/// Converts `[0, 1]` to 8 bits: clamped, NaN drawn as 0.
fn to_u8(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

fn check_canvas(op: &'static str, w: usize, h: usize) -> Result<()> {
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || w * h > MAX_PIXELS {
        return Err(Error::invalid(
            op,
            format!("image of {w}×{h} pixels is empty or too large (max side {MAX_SIDE}, max {MAX_PIXELS} pixels)"),
        ));
    }
    Ok(())
}

/// Encodes 8-bit pixels to PNG bytes and writes them atomically to `path`.
fn write_png(op: &'static str, path: &Path, w: usize, h: usize, color: png::ColorType, px: &[u8]) -> Result<()> {
    let enc_err = |e: png::EncodingError| Error::invalid(op, format!("PNG encoding failed: {e}"));
    let mut out = Vec::new();
    {
        // Sides are ≤ MAX_SIDE (checked), so the u32 conversions are exact.
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(enc_err)?;
        writer.write_image_data(px).map_err(enc_err)?;
        writer.finish().map_err(enc_err)?;
    }
    super::write_atomic(op, path, &out)
}

/// Saves `n` grayscale images (`images`: n × (height·width) floats in `[0, 1]`, clamped, NaN drawn
/// as 0) as one 8-bit grayscale PNG grid.
///
/// Layout: `c = min(cols, n)` columns and `r = ceil(n / c)` rows; image `i` sits in row `i / c`,
/// column `i % c`. Tiles are separated by 1-px gaps of value 0.2 (unused cells are gap-coloured
/// too), and every pixel is then repeated `scale × scale` times, so the PNG is
/// `(c·width + c − 1)·scale` pixels wide and `(r·height + r − 1)·scale` high. Pixel `(y, x)` of
/// image `i` covers the block starting at `((i % c)·(width + 1) + x)·scale`,
/// `((i / c)·(height + 1) + y)·scale` and has value `round(255·v)`.
///
/// Errors: `images.len() != n·height·width` → `Shape`; a zero `n`, `height`, `width`, `cols` or
/// `scale`, or a grid too large → `InvalidArgument`; a failed write → `Io`.
pub fn save_image_grid(
    path: &Path,
    images: &[f32],
    n: usize,
    height: usize,
    width: usize,
    cols: usize,
    scale: usize,
) -> Result<()> {
    const OP: &str = "save_image_grid";
    if n == 0 || height == 0 || width == 0 || cols == 0 || scale == 0 {
        return Err(Error::invalid(
            OP,
            format!("n ({n}), height ({height}), width ({width}), cols ({cols}) and scale ({scale}) must be ≥ 1"),
        ));
    }
    let need = n.checked_mul(height).and_then(|v| v.checked_mul(width));
    if need != Some(images.len()) {
        return Err(Error::shape(OP, format!("{} values given for {n} images of {height}×{width}", images.len())));
    }
    let c = cols.min(n);
    let r = n.div_ceil(c);
    // Checked: the sizes come from the caller and may be absurd.
    let side = |tiles: usize, len: usize| {
        tiles.checked_mul(len + 1).and_then(|v| v.checked_sub(1)).and_then(|v| v.checked_mul(scale))
    };
    let too_big = || Error::invalid(OP, "grid is too large".to_string());
    let (w_out, h_out) = (side(c, width).ok_or_else(too_big)?, side(r, height).ok_or_else(too_big)?);
    check_canvas(OP, w_out, h_out)?;

    // Unscaled canvas first, then every row widened and repeated `scale` times.
    let (bw, bh) = (c * (width + 1) - 1, r * (height + 1) - 1);
    let mut base = vec![to_u8(GAP); bw * bh];
    for (i, img) in images.chunks_exact(height * width).enumerate() {
        let (x0, y0) = ((i % c) * (width + 1), (i / c) * (height + 1));
        for (y, row) in img.chunks_exact(width).enumerate() {
            let dst = &mut base[(y0 + y) * bw + x0..][..width];
            for (d, &v) in dst.iter_mut().zip(row) {
                *d = to_u8(v);
            }
        }
    }
    let mut px = Vec::with_capacity(w_out * h_out);
    for row in base.chunks_exact(bw) {
        let wide: Vec<u8> = row.iter().flat_map(|&v| std::iter::repeat_n(v, scale)).collect();
        for _ in 0..scale {
            px.extend_from_slice(&wide);
        }
    }
    write_png(OP, path, w_out, h_out, png::ColorType::Grayscale, &px)
}

/// One curve of a line plot: `points` are (x, y) pairs drawn in order.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub name: &'a str,
    pub points: &'a [(f64, f64)],
}

/// Saves a line plot of one or more series on shared axes as an RGB PNG of `width`×`height`:
/// white background, axis box with light grid, numeric tick labels, a title, axis labels, one
/// colour per series and a legend with the series names. Non-finite points are skipped (the line
/// joins their finite neighbours). Text is drawn in upper case.
///
/// Errors: no series, or no finite point at all → `InvalidArgument`; a canvas too small for the
/// axes and labels (or too large) → `InvalidArgument`; a failed write → `Io`.
pub fn save_line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
    width: usize,
    height: usize,
) -> Result<()> {
    const OP: &str = "save_line_plot";
    check_canvas(OP, width, height)?;
    let finite = |&&(x, y): &&(f64, f64)| x.is_finite() && y.is_finite();
    let all = || series.iter().flat_map(|s| s.points.iter().filter(finite));
    let no_data = || Error::invalid(OP, "no series with a finite point to plot".to_string());
    let xr = range(all().map(|p| p.0), 0.0).ok_or_else(no_data)?;
    let yr = range(all().map(|p| p.1), 0.05).ok_or_else(no_data)?;

    let mut cv = Canvas::new(width, height);
    let ax = frame(OP, &mut cv, title, x_label, y_label, xr, yr)?;
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let mut pts = s.points.iter().filter(finite).map(|&(x, y)| (ax.px(x), ax.py(y)));
        let Some(mut prev) = pts.next() else { continue };
        // A lone point would draw nothing as a line: mark it.
        cv.rect(prev.0 - 1, prev.1 - 1, prev.0 + 1, prev.1 + 1, c);
        for p in pts {
            cv.line(prev, p, c);
            prev = p;
        }
    }
    let entries: Vec<(String, Rgb)> =
        series.iter().enumerate().map(|(i, s)| (s.name.to_string(), PALETTE[i % PALETTE.len()])).collect();
    legend(&mut cv, &ax, &entries, false);
    write_png(OP, path, width, height, png::ColorType::Rgb, &cv.px)
}

/// Saves a scatter plot of 2-D points coloured by class label (10-colour palette, label `l`
/// gets colour `l % 10`) with a legend of the class numbers present, as an RGB PNG of
/// `width`×`height` with the same axes as [`save_line_plot`]. Non-finite points are skipped.
///
/// Errors: `points.len() != labels.len()` → `Shape`; no finite point → `InvalidArgument`; a canvas
/// too small (or too large) → `InvalidArgument`; a failed write → `Io`.
pub fn save_scatter(
    path: &Path,
    title: &str,
    points: &[(f32, f32)],
    labels: &[u8],
    width: usize,
    height: usize,
) -> Result<()> {
    const OP: &str = "save_scatter";
    if points.len() != labels.len() {
        return Err(Error::shape(OP, format!("{} points but {} labels", points.len(), labels.len())));
    }
    check_canvas(OP, width, height)?;
    let pts: Vec<((f64, f64), u8)> = points
        .iter()
        .zip(labels)
        .filter(|(p, _)| p.0.is_finite() && p.1.is_finite())
        .map(|(&(x, y), &l)| ((f64::from(x), f64::from(y)), l))
        .collect();
    let no_data = || Error::invalid(OP, "no finite point to plot".to_string());
    let xr = range(pts.iter().map(|p| p.0 .0), 0.05).ok_or_else(no_data)?;
    let yr = range(pts.iter().map(|p| p.0 .1), 0.05).ok_or_else(no_data)?;

    let mut cv = Canvas::new(width, height);
    let ax = frame(OP, &mut cv, title, "", "", xr, yr)?;
    for &((x, y), l) in &pts {
        let (px, py) = (ax.px(x), ax.py(y));
        cv.rect(px - 1, py - 1, px + 1, py + 1, PALETTE[usize::from(l) % PALETTE.len()]);
    }
    let mut present = [false; 256];
    for &(_, l) in &pts {
        present[usize::from(l)] = true;
    }
    let entries: Vec<(String, Rgb)> =
        (0..256).filter(|&l| present[l]).map(|l| (l.to_string(), PALETTE[l % PALETTE.len()])).collect();
    legend(&mut cv, &ax, &entries, true);
    write_png(OP, path, width, height, png::ColorType::Rgb, &cv.px)
}

type Rgb = [u8; 3];

/// Matplotlib's "tab10": distinct and readable on white.
const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];
const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [232, 232, 232];
const LEGEND_BORDER: Rgb = [150, 150, 150];

/// An RGB8 pixel buffer; every drawing call clips, so nothing can index out of bounds.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas { w, h, px: vec![255; w * h * 3] }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if let (Ok(x), Ok(y)) = (usize::try_from(x), usize::try_from(y)) {
            if x < self.w && y < self.h {
                let i = 3 * (y * self.w + x);
                self.px[i..i + 3].copy_from_slice(&c);
            }
        }
    }

    /// Filled rectangle, corners inclusive.
    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        // Clamped to the canvas first so huge rectangles cost nothing extra.
        let (x0, x1) = (x0.max(0), x1.min(self.w as i64 - 1));
        let (y0, y1) = (y0.max(0), y1.min(self.h as i64 - 1));
        for y in y0..=y1 {
            for x in x0..=x1 {
                self.set(x, y, c);
            }
        }
    }

    /// Bresenham line, endpoints inclusive.
    fn line(&mut self, (mut x, mut y): (i64, i64), (x1, y1): (i64, i64), c: Rgb) {
        let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
        let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
        let mut err = dx + dy;
        loop {
            self.set(x, y, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Draws `s` with its top-left corner at (x, y); 6-px advance per character.
    fn text(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
        for (i, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (r, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.set(x + 6 * i as i64 + col, y + r as i64, c);
                    }
                }
            }
        }
    }
}

const CHAR_H: i64 = 7;

fn text_width(s: &str) -> i64 {
    (6 * s.chars().count() as i64 - 1).max(0)
}

/// 5×7 glyphs, one byte per row, bit 4 = leftmost column. Lower case maps to upper case except
/// `e`, kept lower case for exponents in tick labels; anything else unknown draws as `?`.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        'e' => [0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        ' ' => [0; 7],
        c if c.is_ascii_lowercase() => glyph(c.to_ascii_uppercase()),
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

/// Range of the finite values of `vals`, widened by `pad` of its span on each side; a zero span
/// is widened so the axis is not degenerate. `None` when there is no finite value.
fn range(vals: impl Iterator<Item = f64>, pad: f64) -> Option<(f64, f64)> {
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return None;
    }
    let span = hi - lo;
    if span > 0.0 {
        Some((lo - pad * span, hi + pad * span))
    } else {
        let d = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        Some((lo - d, hi + d))
    }
}

/// Up to ~10 "nice" tick values (1, 2 or 5 × 10^k apart) within `[lo, hi]`, and their spacing.
fn ticks(lo: f64, hi: f64) -> (Vec<f64>, f64) {
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = mag
        * if norm < 1.5 {
            1.0
        } else if norm < 3.5 {
            2.0
        } else if norm < 7.5 {
            5.0
        } else {
            10.0
        };
    if !(step.is_finite() && step > 0.0) {
        return (vec![lo, hi], hi - lo);
    }
    let first = (lo / step).ceil();
    let mut out = Vec::new();
    for k in 0..12 {
        let t = (first + f64::from(k)) * step;
        if t > hi + 1e-9 * step {
            break;
        }
        // Snap float noise around zero so it does not print as "-0" or "1e-17".
        out.push(if t.abs() < 1e-9 * step { 0.0 } else { t });
    }
    (out, step)
}

/// Tick label: fixed-point with just enough decimals for `step`, scientific for very large or
/// small magnitudes.
fn tick_label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let mag = |x: f64| x.abs().log10().floor();
    if v.abs() >= 1e5 || step < 1e-4 {
        let digits = (mag(v) - mag(step)).clamp(0.0, 6.0) as usize;
        format!("{v:.digits$e}")
    } else {
        let decimals = (-mag(step)).clamp(0.0, 6.0) as usize;
        format!("{v:.decimals$}")
    }
}

/// The plot box in pixels and the data ranges it shows.
struct Axes {
    left: i64,
    top: i64,
    right: i64,
    bottom: i64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Axes {
    fn px(&self, x: f64) -> i64 {
        // `as` saturates, so even extreme values cannot overflow.
        self.left + ((x - self.x.0) / (self.x.1 - self.x.0) * (self.right - self.left) as f64).round() as i64
    }

    fn py(&self, y: f64) -> i64 {
        self.bottom - ((y - self.y.0) / (self.y.1 - self.y.0) * (self.bottom - self.top) as f64).round() as i64
    }
}

const TICK: i64 = 4;
const LINE_H: i64 = CHAR_H + 3;

/// Lays out and draws title, axis labels, grid, box, ticks and tick labels; returns the box.
fn frame(
    op: &'static str,
    cv: &mut Canvas,
    title: &str,
    x_label: &str,
    y_label: &str,
    xr: (f64, f64),
    yr: (f64, f64),
) -> Result<Axes> {
    if !(xr.1 - xr.0).is_finite() || !(yr.1 - yr.0).is_finite() {
        return Err(Error::invalid(op, "data range is too large to plot".to_string()));
    }
    let (xt, xs) = ticks(xr.0, xr.1);
    let (yt, ys) = ticks(yr.0, yr.1);
    let xl: Vec<String> = xt.iter().map(|&v| tick_label(v, xs)).collect();
    let yl: Vec<String> = yt.iter().map(|&v| tick_label(v, ys)).collect();
    let ylw = yl.iter().map(|s| text_width(s)).max().unwrap_or(0);
    let last_xw = xl.last().map_or(0, |s| text_width(s));

    let left = 6 + ylw + 3 + TICK;
    let top = 6 + 2 * LINE_H + 4;
    let right = cv.w as i64 - 1 - (last_xw / 2 + 6).max(12);
    let bottom = cv.h as i64 - 1 - (TICK + 3 + LINE_H + 3 + LINE_H);
    if right - left < 20 || bottom - top < 20 {
        return Err(Error::invalid(
            op,
            format!("{}×{} pixels leave no room for the plot area; use a larger image", cv.w, cv.h),
        ));
    }
    let ax = Axes { left, top, right, bottom, x: xr, y: yr };

    for &v in &xt {
        let x = ax.px(v);
        cv.line((x, top + 1), (x, bottom - 1), GRID);
        cv.line((x, bottom), (x, bottom + TICK), BLACK);
    }
    for &v in &yt {
        let y = ax.py(v);
        cv.line((left + 1, y), (right - 1, y), GRID);
        cv.line((left - TICK, y), (left, y), BLACK);
    }
    cv.line((left, top), (right, top), BLACK);
    cv.line((left, bottom), (right, bottom), BLACK);
    cv.line((left, top), (left, bottom), BLACK);
    cv.line((right, top), (right, bottom), BLACK);
    for (&v, s) in xt.iter().zip(&xl) {
        cv.text(ax.px(v) - text_width(s) / 2, bottom + TICK + 3, s, BLACK);
    }
    for (&v, s) in yt.iter().zip(&yl) {
        cv.text(left - TICK - 3 - text_width(s), ax.py(v) - CHAR_H / 2, s, BLACK);
    }

    let title = title.to_ascii_uppercase();
    cv.text((cv.w as i64 - text_width(&title)) / 2, 6, &title, BLACK);
    // The y label sits above the axis: no rotated text needed.
    cv.text(6, 6 + LINE_H + 2, &y_label.to_ascii_uppercase(), BLACK);
    let x_label = x_label.to_ascii_uppercase();
    cv.text((left + right - text_width(&x_label)) / 2, bottom + TICK + 3 + LINE_H + 3, &x_label, BLACK);
    Ok(ax)
}

/// Legend box in the top-right corner of the plot; entries that do not fit are left out.
fn legend(cv: &mut Canvas, ax: &Axes, entries: &[(String, Rgb)], markers: bool) {
    let fit = usize::try_from((ax.bottom - ax.top - 8) / LINE_H).unwrap_or(0);
    let entries = &entries[..entries.len().min(fit)];
    if entries.is_empty() {
        return;
    }
    let names: Vec<String> = entries.iter().map(|(n, _)| n.to_ascii_uppercase()).collect();
    let w = 4 + 12 + 4 + names.iter().map(|n| text_width(n)).max().unwrap_or(0) + 4;
    let h = LINE_H * entries.len() as i64 + 4;
    let (x0, y0) = (ax.right - 4 - w, ax.top + 4);
    cv.rect(x0, y0, x0 + w, y0 + h, LEGEND_BORDER);
    cv.rect(x0 + 1, y0 + 1, x0 + w - 1, y0 + h - 1, WHITE);
    for (i, ((_, c), name)) in entries.iter().zip(&names).enumerate() {
        let y = y0 + 4 + LINE_H * i as i64;
        let mid = y + CHAR_H / 2;
        if markers {
            cv.rect(x0 + 8, mid - 2, x0 + 12, mid + 2, *c);
        } else {
            cv.rect(x0 + 4, mid - 1, x0 + 15, mid, *c);
        }
        cv.text(x0 + 20, y, name, BLACK);
    }
}
