//! A PNG chart of the report: activities per month and per category
//! (plotters, bitmap backend).
//!
//! Chinese labels need a CJK font. It is loaded from a system path when one
//! is present (Debian `fonts-wqy-microhei`, Noto CJK, Droid fallback);
//! otherwise a Latin font (DejaVu, Liberation) draws English labels. Nothing
//! is downloaded at run time; with no font at all there is no chart.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use chrono::Datelike;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use rust_i18n::t;

use super::Report;

/// Fonts with CJK glyphs, tried in order.
const CJK_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
];
/// Latin-only fonts for the English fallback.
const LATIN_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];
const FONT: &str = "tuanbot-chart";

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("no usable font found (install fonts-wqy-microhei or fonts-dejavu)")]
    NoFont,
    #[error("chart: {0}")]
    Draw(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Register the first font found, once per process; `Some(true)` when it
/// has CJK glyphs.
fn font() -> Option<bool> {
    static FOUND: OnceLock<Option<bool>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let candidates = CJK_FONTS
            .iter()
            .map(|p| (p, true))
            .chain(LATIN_FONTS.iter().map(|p| (p, false)));
        for (path, cjk) in candidates {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if register_font(FONT, FontStyle::Normal, bytes).is_ok() {
                return Some(cjk);
            }
        }
        None
    })
}

/// The font charts would use: its path, and whether it has CJK glyphs
/// (`tuanbot doctor`).
pub fn font_path() -> Option<(&'static str, bool)> {
    CJK_FONTS
        .iter()
        .map(|p| (*p, true))
        .chain(LATIN_FONTS.iter().map(|p| (*p, false)))
        .find(|(p, _)| std::path::Path::new(p).is_file())
}

/// Bars of one panel: (label, count).
pub type Bars = Vec<(String, i64)>;

/// (label, count) per month of the period and per category, in the
/// report's order.
pub fn series(r: &Report, locale: &str) -> (Bars, Bars) {
    let mut months: BTreeMap<(i32, u32), i64> = BTreeMap::new();
    let (mut y, mut m) = (r.from.year(), r.from.month());
    while (y, m) <= (r.to.year(), r.to.month()) {
        months.insert((y, m), 0);
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    for o in &r.orgs {
        for d in o.dates_by_category.values().flatten() {
            if let Some(n) = months.get_mut(&(d.year(), d.month())) {
                *n += 1;
            }
        }
    }
    let months = months
        .into_iter()
        .map(|((y, m), n)| {
            (
                t!("report.chart_month", locale = locale, y = y, m = m).into_owned(),
                n,
            )
        })
        .collect();
    let cats = r
        .categories
        .iter()
        .map(|c| {
            let label = t!(format!("category.{}", c.category), locale = locale).into_owned();
            (label, c.records)
        })
        .collect();
    (months, cats)
}

/// Draw the chart to `path` (PNG). With only a Latin font the labels are
/// English whatever `locale` asks.
pub fn write_png(r: &Report, locale: &str, path: &Path) -> Result<(), ChartError> {
    let cjk = font().ok_or(ChartError::NoFont)?;
    let locale = if cjk { locale } else { "en" };
    let (months, cats) = series(r, locale);
    let draw = |e: &dyn std::fmt::Display| ChartError::Draw(e.to_string());
    let root = BitMapBackend::new(path, (900, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let title = t!(
        "report.chart_title",
        locale = locale,
        from = r.from.format("%Y-%m-%d"),
        to = r.to.format("%Y-%m-%d")
    );
    let root = root
        .titled(&title, (FONT, 26).into_font())
        .map_err(|e| draw(&e))?;
    let (top, bottom) = root.split_vertically(330);
    let by_month = t!("report.chart_by_month", locale = locale);
    let by_category = t!("report.chart_by_category", locale = locale);
    bars(&top, &by_month, &months).map_err(|e| draw(&e))?;
    bars(&bottom, &by_category, &cats).map_err(|e| draw(&e))?;
    root.present().map_err(|e| draw(&e))?;
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// One bar panel: a bar per (label, value), the value above it.
fn bars(
    area: &Area<'_>,
    caption: &str,
    data: &[(String, i64)],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::coord::ranged1d::SegmentValue;
    let n = data.len().max(1) as i32;
    let max = data.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 20).into_font())
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(44)
        // A segmented range holds its end as a segment too.
        .build_cartesian_2d((0..(n - 1).max(1)).into_segmented(), 0..(max + max / 5 + 1))?;
    let label = |x: &SegmentValue<i32>| match x {
        SegmentValue::CenterOf(i) => data
            .get(usize::try_from(*i).unwrap_or(usize::MAX))
            .map(|(l, _)| l.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(data.len().max(1) + 1)
        .x_label_formatter(&label)
        .label_style((FONT, 14).into_font())
        .draw()?;
    chart.draw_series(data.iter().enumerate().map(|(i, (_, v))| {
        let x = i as i32;
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(x), 0),
                (SegmentValue::Exact(x + 1), *v),
            ],
            BLUE.mix(0.6).filled(),
        );
        bar.set_margin(0, 0, 10, 10);
        bar
    }))?;
    chart.draw_series(data.iter().enumerate().map(|(i, (_, v))| {
        Text::new(
            v.to_string(),
            (SegmentValue::CenterOf(i as i32), *v),
            (FONT, 14).into_font(),
        )
    }))?;
    Ok(())
}

/// The chart as a photo to send: the PNG's bytes, which each adapter hands
/// to its platform in its own way.
pub fn png_attachment(r: &Report, locale: &str) -> Result<crate::chat::OutFile, ChartError> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("tuanbot-chart-{}-{n}.png", std::process::id()));
    let drawn = write_png(r, locale, &path);
    let bytes = drawn.and_then(|()| Ok(std::fs::read(&path)?));
    let _ = std::fs::remove_file(&path);
    Ok(crate::chat::OutFile::photo_bytes(bytes?, "chart.png"))
}
