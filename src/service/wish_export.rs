//! `tuanbot export wishes --batch NAME FILE.xlsx`: the full record of a batch
//! for committee staff (children's names included: an operator's file, never
//! sent to a chat).

use std::path::Path;

use chrono_tz::Tz;
use rust_xlsxwriter::{Format, Workbook};

use crate::store::wishes as db;
use crate::store::{self, Store};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no wish batch called {0:?}")]
    NoBatch(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("XLSX: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
}

const HEADER: &[&str] = &[
    "编号",
    "学校",
    "年级",
    "学生",
    "心愿",
    "估价（元）",
    "备注",
    "状态",
    "认领组织",
    "认领人",
    "认领时间",
    "圆梦时间",
    "凭证",
    "下架原因",
];

/// Write the batch to `path`; returns the number of wishes written.
pub async fn export(
    store: &Store,
    batch: &str,
    path: &Path,
    tz: Tz,
    locale: &str,
) -> Result<usize, ExportError> {
    let mut conn = store.conn().await?;
    let b = db::batch_by_name(&mut conn, batch)
        .await?
        .ok_or_else(|| ExportError::NoBatch(batch.to_string()))?;
    let rows = db::export(&mut conn, b.id).await?;
    drop(conn);
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(
        crate::service::clip(&b.name, 28).replace(['[', ']', ':', '*', '?', '/', '\\'], ""),
    )?;
    let bold = Format::new().set_bold();
    for (c, h) in HEADER.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    let time = |ms: Option<i64>| {
        ms.map(|v| {
            store::from_ms(v)
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
    };
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        let w = &r.wish;
        sheet.write_number(row, 0, w.no as f64)?;
        let texts = [
            (1, w.school.clone()),
            (2, w.grade.clone()),
            (3, w.child.clone()),
            (4, w.item.clone()),
            (6, w.note.clone().unwrap_or_default()),
            (
                7,
                crate::i18n::tr(locale, &format!("wishes.status.{}", w.status.as_str()), &[]),
            ),
            (8, r.org.clone().unwrap_or_default()),
            (9, r.claimer.clone().unwrap_or_default()),
            (10, time(w.claimed_at)),
            (11, time(w.delivered_at)),
            (12, w.proof_ref.clone().unwrap_or_default()),
            (13, w.revoke_reason.clone().unwrap_or_default()),
        ];
        for (c, t) in texts {
            crate::export::write_text(sheet, row, c, &t, None)?;
        }
        if let Some(p) = w.price_yuan {
            sheet.write_number(row, 5, p as f64)?;
        }
    }
    book.save(path)?;
    Ok(rows.len())
}
