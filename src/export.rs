//! Files for staff: activity lists as XLSX or CSV; and how every export
//! writes text people typed ([`write_text`], [`csv_text`]).
//!
//! Text from chats and imports may start like a formula
//! (`=HYPERLINK(…)`, `+1`, `-2+3`, `@SUM(…)`): Excel and WPS would run it
//! when the file is opened. Following OWASP's CSV-injection guidance, such
//! a text cell is written as text: in CSV with a leading `'`, in XLSX as a
//! string cell with Excel's quote prefix (the text itself unchanged, and it
//! stays text when someone edits the cell). Numbers in numeric columns are
//! written as numbers, negative ones included.

use std::borrow::Cow;
use std::path::Path;

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use crate::store::activities::{self, Activity, Filter};
use crate::store::{Store, orgs};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("XLSX: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("unsupported file type (use .xlsx or .csv)")]
    UnsupportedType,
}

const HEADER: [&str; 13] = [
    "编号",
    "组织",
    "日期",
    "类别",
    "标题",
    "人数",
    "约数",
    "时长（小时）",
    "地点",
    "数量",
    "照片",
    "原文",
    "记录时间",
];

/// Whether a spreadsheet would take `text` for a formula (OWASP's list:
/// `=` `+` `-` `@`, tab, carriage return; and their full-width forms, which
/// Chinese input methods type and some spreadsheets read alike).
pub fn looks_like_formula(text: &str) -> bool {
    text.starts_with(['=', '+', '-', '@', '\t', '\r', '\n', '＝', '＋', '－', '＠'])
}

/// `text` as a CSV text cell: a leading `'` when it looks like a formula.
pub fn csv_text(text: &str) -> Cow<'_, str> {
    if looks_like_formula(text) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// Write `text` people typed as a string cell (never a formula; with the
/// quote prefix when it looks like one), in `format` when given.
pub fn write_text(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    text: &str,
    format: Option<&Format>,
) -> Result<(), XlsxError> {
    let quoted;
    let format = if looks_like_formula(text) {
        quoted = format.cloned().unwrap_or_default().set_quote_prefix();
        Some(&quoted)
    } else {
        format
    };
    match format {
        Some(f) => sheet.write_string_with_format(row, col, text, f)?,
        None => sheet.write_string(row, col, text)?,
    };
    Ok(())
}

/// One cell of an export: a number stays a number (Excel sums it), text is
/// text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Number(f64),
    Text(String),
    Empty,
}

impl Cell {
    fn number(n: Option<f64>) -> Cell {
        n.map_or(Cell::Empty, Cell::Number)
    }

    /// The CSV field: numbers as Rust prints them (`45`, `-3`, `1.5`),
    /// text with [`csv_text`].
    fn csv(&self) -> Cow<'_, str> {
        match self {
            Cell::Number(n) => n.to_string().into(),
            Cell::Text(t) => csv_text(t),
            Cell::Empty => "".into(),
        }
    }

    fn write(&self, sheet: &mut Worksheet, row: u32, col: u16) -> Result<(), XlsxError> {
        match self {
            Cell::Number(n) => {
                sheet.write_number(row, col, *n)?;
            }
            Cell::Text(t) => write_text(sheet, row, col, t, None)?,
            Cell::Empty => {}
        }
        Ok(())
    }
}

fn quantities(a: &Activity) -> String {
    a.quantities
        .iter()
        .map(|q| {
            let n = if q.count.fract() == 0.0 {
                format!("{}", q.count as i64)
            } else {
                q.count.to_string()
            };
            format!("{}{n}{}", q.what.as_deref().unwrap_or(""), q.unit)
        })
        .collect::<Vec<_>>()
        .join("；")
}

/// The export's rows of `list` (columns of [`HEADER`]).
fn rows(
    list: &[Activity],
    names: &std::collections::HashMap<i64, String>,
    tz: chrono_tz::Tz,
) -> Vec<Vec<Cell>> {
    let text = |s: &str| Cell::Text(s.to_string());
    list.iter()
        .map(|a| {
            vec![
                Cell::Number(a.id as f64),
                text(names.get(&a.org_id).map_or("", String::as_str)),
                text(&a.date),
                text(&a.category),
                text(&a.title),
                Cell::number(a.participants.map(|p| p as f64)),
                text(if a.approx { "是" } else { "" }),
                Cell::number(a.hours),
                text(a.location.as_deref().unwrap_or_default()),
                text(&quantities(a)),
                Cell::Number(a.photos as f64),
                text(&a.source_text),
                text(
                    &crate::store::from_ms(a.created_at)
                        .with_timezone(&tz)
                        .format("%Y-%m-%d %H:%M")
                        .to_string(),
                ),
            ]
        })
        .collect()
}

/// The live activities in `filter` with their org names.
async fn load(
    store: &Store,
    filter: &Filter<'_>,
) -> Result<(Vec<Activity>, std::collections::HashMap<i64, String>), ExportError> {
    let mut conn = store.conn().await?;
    let list = activities::list(&mut conn, filter).await?;
    let names = orgs::all(&mut conn)
        .await?
        .into_iter()
        .map(|o| (o.id, o.full_name))
        .collect();
    Ok((list, names))
}

fn workbook(rows: &[Vec<Cell>]) -> Result<Workbook, ExportError> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("活动")?;
    let bold = Format::new().set_bold();
    for (c, h) in HEADER.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            v.write(sheet, r as u32 + 1, c as u16)?;
        }
    }
    sheet.autofit();
    Ok(book)
}

/// The live activities in `filter` (and of `category`, when given) as an
/// XLSX file in memory, with the number of rows (the dashboard's export).
pub async fn activities_xlsx(
    store: &Store,
    filter: &Filter<'_>,
    category: Option<&str>,
    tz: chrono_tz::Tz,
) -> Result<(Vec<u8>, usize), ExportError> {
    let (mut list, names) = load(store, filter).await?;
    if let Some(c) = category {
        list.retain(|a| a.category == c);
    }
    let rows = rows(&list, &names, tz);
    let bytes = workbook(&rows)?.save_to_buffer()?;
    Ok((bytes, rows.len()))
}

/// Write the live activities in `filter` to `path` (`.xlsx` or `.csv`).
/// Returns the number of rows written.
pub async fn activities(
    store: &Store,
    filter: &Filter<'_>,
    tz: chrono_tz::Tz,
    path: &Path,
) -> Result<usize, ExportError> {
    let (list, names) = load(store, filter).await?;
    let rows = rows(&list, &names, tz);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("xlsx") => workbook(&rows)?.save(path)?,
        Some("csv") => {
            let mut w = csv::Writer::from_path(path)?;
            w.write_record(HEADER)?;
            for row in &rows {
                w.write_record(row.iter().map(|c| c.csv().into_owned()))?;
            }
            w.flush()?;
        }
        _ => return Err(ExportError::UnsupportedType),
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_text_is_quoted_and_numbers_stay_numbers() {
        for risky in [
            "=1+1",
            "+1",
            "-2+3+cmd|' /C calc'!A0",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "＝1+1",
        ] {
            assert!(looks_like_formula(risky), "{risky:?}");
            assert_eq!(csv_text(risky), format!("'{risky}"));
            assert_eq!(Cell::Text(risky.into()).csv(), format!("'{risky}"));
        }
        for plain in ["团课", "3月5日", "45", "", "a=b", " =1"] {
            assert!(!looks_like_formula(plain), "{plain:?}");
            assert_eq!(csv_text(plain), plain);
        }
        // A number in a numeric column is written as one, sign and all.
        assert_eq!(Cell::Number(-3.0).csv(), "-3");
        assert_eq!(Cell::Number(1.5).csv(), "1.5");
        assert_eq!(Cell::Text("-3".into()).csv(), "'-3");
    }
}
