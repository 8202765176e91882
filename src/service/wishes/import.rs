//! Importing a batch of wishes from a table (CLI and chat).

use super::*;

/// Longest cell texts accepted at import.
const MAX_SCHOOL: usize = 64;
const MAX_CHILD: usize = 16;
const MAX_ITEM: usize = 100;
const MAX_NOTE: usize = 200;

// ---------------------------------------------------------------- import

/// Check a wish table (学校, 年级, 学生, 心愿, 估价（元）, 备注); all problems
/// are returned together, each with its row number.
pub fn validate(table: &Table, locale: &str) -> std::result::Result<Vec<NewWish>, ImportError> {
    let col = |names: &[&str]| table.column(names);
    let (school, grade, child, item, price, note) = (
        col(&["学校", "学校名称"]),
        col(&["年级", "年级班级", "班级"]),
        col(&["学生", "姓名", "学生姓名"]),
        col(&["心愿", "微心愿", "心愿内容"]),
        col(&["估价（元）", "估价(元)", "估价", "价格", "金额"]),
        col(&["备注"]),
    );
    crate::service::import_orgs::require_columns(
        &[("学校", school), ("学生", child), ("心愿", item)],
        &tr(locale, "wishes.import.columns"),
        locale,
    )?;
    crate::service::import_orgs::require_rows(
        table,
        MAX_WISHES as usize,
        ("wishes.import.empty", "wishes.import.too_many"),
        locale,
    )?;
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for (line, r) in &table.rows {
        let err = |key: &str, value: &str| {
            t!(key, locale = locale, line = line, value = clip(value, 30)).into_owned()
        };
        let (s, c, i) = (cell(r, school), cell(r, child), cell(r, item));
        let mut bad = false;
        for (v, field, max) in [
            (s, "学校", MAX_SCHOOL),
            (c, "学生", MAX_CHILD),
            (i, "心愿", MAX_ITEM),
        ] {
            if v.is_empty() {
                errors.push(
                    t!(
                        "wishes.import.empty_cell",
                        locale = locale,
                        line = line,
                        column = field
                    )
                    .into_owned(),
                );
                bad = true;
            } else if v.chars().count() > max {
                errors.push(
                    t!(
                        "wishes.import.too_long",
                        locale = locale,
                        line = line,
                        column = field,
                        max = max
                    )
                    .into_owned(),
                );
                bad = true;
            }
        }
        let price_text = cell(r, price).trim_end_matches('元').trim();
        let price_yuan = if price_text.is_empty() {
            None
        } else {
            match price_text.parse::<f64>() {
                Ok(v) if v.is_finite() && (0.0..=100_000.0).contains(&v) => Some(v.round() as i64),
                _ => {
                    errors.push(err("wishes.import.bad_price", price_text));
                    bad = true;
                    None
                }
            }
        };
        let note_text = cell(r, note);
        if note_text.chars().count() > MAX_NOTE {
            errors.push(
                t!(
                    "wishes.import.too_long",
                    locale = locale,
                    line = line,
                    column = "备注",
                    max = MAX_NOTE
                )
                .into_owned(),
            );
            bad = true;
        }
        if bad {
            continue;
        }
        rows.push(NewWish {
            school: s.to_string(),
            grade: cell(r, grade).to_string(),
            child: c.to_string(),
            item: i.to_string(),
            price_yuan,
            note: (!note_text.is_empty()).then(|| note_text.to_string()),
        });
    }
    crate::service::import_orgs::row_errors(errors, locale)?;
    Ok(rows)
}

/// Validate a batch name: short, one line.
fn valid_batch_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=30).contains(&n) && !name.contains(['\n', '\r'])
}

/// Write a validated batch in the caller's transaction, audited. Fails with a
/// readable error when the name is taken.
pub async fn import(
    conn: &mut Conn,
    name: &str,
    rows: &[NewWish],
    platform: Platform,
    actor: &str,
    now_ms: i64,
    locale: &str,
) -> std::result::Result<i64, ImportError> {
    if !valid_batch_name(name) {
        return Err(ImportError::Invalid(vec![tr(
            locale,
            "wishes.import.bad_name",
        )]));
    }
    if db::batch_by_name(&mut *conn, name).await?.is_some() {
        return Err(ImportError::Invalid(vec![
            t!("wishes.import.exists", locale = locale, name = name).into_owned(),
        ]));
    }
    let id = db::create_batch(&mut *conn, name, rows, now_ms).await?;
    audit::record(
        conn,
        &audit::Entry {
            at_ms: now_ms,
            platform,
            actor,
            action: "wish.import",
            entity: "wish_batch",
            entity_id: Some(id.to_string()),
            detail: json!({"name": name, "wishes": rows.len()}),
        },
    )
    .await?;
    Ok(id)
}

/// `tuanbot import wishes FILE --batch NAME`: read, check and write a batch
/// in one transaction. Returns how many wishes were imported.
pub async fn import_file(
    store: &crate::store::Store,
    path: &std::path::Path,
    name: &str,
    locale: &str,
) -> std::result::Result<usize, ImportError> {
    let table = Table::read(path).map_err(|e| {
        ImportError::Invalid(vec![format!("{}: {}", path.display(), e.message(locale))])
    })?;
    let rows = validate(&table, locale)?;
    let now = store::ms(Utc::now());
    let mut tx = store.begin().await?;
    let imported = import(
        &mut tx,
        name.trim(),
        &rows,
        Platform::Console,
        "cli",
        now,
        locale,
    )
    .await;
    match imported {
        Ok(_) => tx.commit().await?,
        // Ended here, not left to a queued ROLLBACK on the pooled connection.
        Err(e) => {
            tx.rollback().await?;
            return Err(e);
        }
    }
    Ok(rows.len())
}

/// `/wishes import NAME` as the caption of a CSV/XLSX document (staff).
pub async fn import_in_chat(ctx: &mut Ctx<'_>, name: &str) -> Result {
    if !ctx.is_staff() {
        let text = tr(ctx.locale, "wishes.staff_only");
        ctx.reply(text);
        return Ok(());
    }
    let table =
        match crate::service::files::document_table(ctx.document, ctx.locale, "wishes.import") {
            Ok(table) => table,
            Err(text) => {
                ctx.reply(text);
                return Ok(());
            }
        };
    let rows = match validate(table, ctx.locale) {
        Ok(rows) => rows,
        Err(e) => {
            let text = t!(
                "wishes.import.failed",
                locale = ctx.locale,
                errors = e.to_string()
            );
            ctx.reply(text);
            return Ok(());
        }
    };
    let name = name.trim();
    let (platform, actor, now_ms) = (ctx.msg.platform, ctx.msg.sender_id.clone(), ctx.now_ms());
    match import(ctx.tx, name, &rows, platform, &actor, now_ms, ctx.locale).await {
        Ok(_) => {
            let schools = rows
                .iter()
                .map(|r| r.school.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len();
            let text = t!(
                "wishes.import.done",
                locale = ctx.locale,
                name = name,
                n = rows.len(),
                schools = schools
            );
            ctx.reply(text);
        }
        Err(ImportError::Invalid(errors)) => {
            let text = t!(
                "wishes.import.failed",
                locale = ctx.locale,
                errors = errors.join("\n")
            );
            ctx.reply(text);
        }
        Err(ImportError::Store(e)) => return Err(e),
    }
    Ok(())
}
