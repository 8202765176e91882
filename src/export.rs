//! Files for staff: activity lists as XLSX or CSV.

use std::path::Path;

use rust_xlsxwriter::{Format, Workbook};

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
) -> Vec<Vec<String>> {
    list.iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                names.get(&a.org_id).cloned().unwrap_or_default(),
                a.date.clone(),
                a.category.clone(),
                a.title.clone(),
                a.participants.map(|p| p.to_string()).unwrap_or_default(),
                if a.approx {
                    "是".into()
                } else {
                    String::new()
                },
                a.hours.map(|h| h.to_string()).unwrap_or_default(),
                a.location.clone().unwrap_or_default(),
                quantities(a),
                a.photos.to_string(),
                a.source_text.clone(),
                crate::store::from_ms(a.created_at)
                    .with_timezone(&tz)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
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

fn workbook(rows: &[Vec<String>]) -> Result<Workbook, ExportError> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("活动")?;
    let bold = Format::new().set_bold();
    for (c, h) in HEADER.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            // Numbers stay numbers so staff can sum them in Excel.
            match (c, v.parse::<f64>()) {
                (0 | 5 | 7 | 10, Ok(n)) => sheet.write_number(r, c, n)?,
                _ => sheet.write_string(r, c, v)?,
            };
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
                w.write_record(row)?;
            }
            w.flush()?;
        }
        _ => return Err(ExportError::UnsupportedType),
    }
    Ok(rows.len())
}
