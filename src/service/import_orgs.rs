//! `tuanbot import orgs FILE`: a county's org list (CSV or XLSX with the
//! columns 全称, 简称, 类别, 上级, 书记 and an optional 别名) into the org tree.
//!
//! Idempotent (the full name is the key: re-importing updates, never
//! duplicates) and all-or-nothing: every row is checked first, every error is
//! reported with its row number, and only a clean file is written, in one
//! transaction with an audit row per org changed.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use crate::domain::{OrgKind, Platform};
use crate::store::orgs::{self, NewOrg, Upserted};
use crate::store::{Store, StoreError, audit};
use crate::table::{Table, cell};
use rust_i18n::t;

/// Longest org name we accept.
const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRow {
    pub line: usize,
    pub full_name: String,
    pub short_name: String,
    pub kind: OrgKind,
    pub parent: Option<String>,
    pub secretary: Option<String>,
    pub aliases: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Row-numbered problems, one line each, in the operator's language.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The import's required columns (`(name, index found)`): one error per
/// missing one, naming the columns a file should have (`expected`).
pub fn require_columns(
    required: &[(&str, Option<usize>)],
    expected: &str,
    locale: &str,
) -> Result<(), ImportError> {
    let errors: Vec<String> = required
        .iter()
        .filter(|(_, idx)| idx.is_none())
        .map(|(name, _)| {
            t!(
                "import.missing_column",
                locale = locale,
                column = *name,
                expected = expected
            )
            .into_owned()
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ImportError::Invalid(errors))
    }
}

/// A table with no rows, or more than `max`: the reply from `empty` or
/// `too_many` (`%{n}` rows, `%{max}`).
pub fn require_rows(
    table: &Table,
    max: usize,
    (empty, too_many): (&str, &str),
    locale: &str,
) -> Result<(), ImportError> {
    if table.rows.is_empty() {
        return Err(ImportError::Invalid(vec![
            t!(empty, locale = locale).into_owned(),
        ]));
    }
    if table.rows.len() > max {
        return Err(ImportError::Invalid(vec![
            t!(too_many, locale = locale, n = table.rows.len(), max = max).into_owned(),
        ]));
    }
    Ok(())
}

/// Row errors as the import's answer: none is fine; otherwise the first
/// 20, and how many more there are.
pub fn row_errors(mut errors: Vec<String>, locale: &str) -> Result<(), ImportError> {
    const SHOWN: usize = 20;
    if errors.is_empty() {
        return Ok(());
    }
    let more = errors.len().saturating_sub(SHOWN);
    errors.truncate(SHOWN);
    if more > 0 {
        errors.push(t!("import.more_errors", locale = locale, n = more).into_owned());
    }
    Err(ImportError::Invalid(errors))
}

/// Check every row of `table`; all problems are returned together.
pub fn validate(table: &Table, locale: &str) -> Result<Vec<OrgRow>, ImportError> {
    let col = |names: &[&str]| table.column(names);
    let (full, short, kind, parent, secretary, alias) = (
        col(&["全称", "组织全称", "名称"]),
        col(&["简称"]),
        col(&["类别", "类型"]),
        col(&["上级", "上级组织"]),
        col(&["书记"]),
        col(&["别名"]),
    );
    require_columns(
        &[("全称", full), ("类别", kind)],
        &t!("import.org_columns", locale = locale),
        locale,
    )?;
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, r) in &table.rows {
        let line = *line;
        let full_name = cell(r, full).to_string();
        let err = |key: &str, value: &str| {
            t!(
                key,
                locale = locale,
                line = line,
                value = crate::service::clip(value, 30)
            )
            .into_owned()
        };
        if full_name.is_empty() {
            errors.push(err("import.empty_name", ""));
            continue;
        }
        if full_name.chars().count() > MAX_NAME_CHARS {
            errors.push(err("import.name_too_long", &full_name));
            continue;
        }
        if let Some(first) = seen.insert(full_name.clone(), line) {
            errors.push(
                t!(
                    "import.duplicate",
                    locale = locale,
                    line = line,
                    first = first,
                    value = full_name.as_str()
                )
                .into_owned(),
            );
            continue;
        }
        let kind_text = cell(r, kind);
        let Some(kind) = OrgKind::parse(kind_text) else {
            errors.push(err("import.bad_kind", kind_text));
            continue;
        };
        let short_name = match cell(r, short) {
            "" => full_name.clone(),
            s => s.to_string(),
        };
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        rows.push(OrgRow {
            line,
            full_name,
            short_name,
            kind,
            parent: opt(cell(r, parent)),
            secretary: opt(cell(r, secretary)),
            aliases: cell(r, alias)
                .split(['、', ',', '，', ';', '；'])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(String::from)
                .collect(),
        });
    }
    if !errors.is_empty() {
        return Err(ImportError::Invalid(errors));
    }
    Ok(rows)
}

/// Write validated rows: parents before children, in one transaction.
/// `progress` is called after each row with (done, total).
pub async fn import(
    store: &Store,
    rows: &[OrgRow],
    actor: &str,
    now_ms: i64,
    locale: &str,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportSummary, ImportError> {
    let mut tx = store.begin().await?;
    let existing = orgs::all(&mut tx).await?;
    // Names (full and short) → id, for parents that are already stored.
    let mut ids: HashMap<String, i64> = HashMap::new();
    for o in &existing {
        ids.insert(o.full_name.clone(), o.id);
        ids.insert(o.short_name.clone(), o.id);
    }
    let in_file: HashSet<&str> = rows
        .iter()
        .flat_map(|r| [r.full_name.as_str(), r.short_name.as_str()])
        .collect();
    let mut errors = Vec::new();
    for r in rows {
        if let Some(p) = &r.parent
            && !in_file.contains(p.as_str())
            && !ids.contains_key(p)
        {
            errors.push(
                t!(
                    "import.unknown_parent",
                    locale = locale,
                    line = r.line,
                    value = p.as_str()
                )
                .into_owned(),
            );
        }
    }
    if !errors.is_empty() {
        return Err(ImportError::Invalid(errors));
    }
    // Topological order: repeatedly write the rows whose parent is known.
    let mut left: Vec<&OrgRow> = rows.iter().collect();
    let mut summary = ImportSummary::default();
    let total = rows.len();
    let mut done = 0;
    while !left.is_empty() {
        let before = left.len();
        let mut next = Vec::new();
        for r in left {
            let parent_id = match &r.parent {
                None => None,
                Some(p) if p == &r.full_name || p == &r.short_name => {
                    errors.push(
                        t!(
                            "import.self_parent",
                            locale = locale,
                            line = r.line,
                            value = p.as_str()
                        )
                        .into_owned(),
                    );
                    continue;
                }
                Some(p) => match ids.get(p) {
                    Some(id) => Some(*id),
                    None => {
                        next.push(r);
                        continue;
                    }
                },
            };
            let (id, what) = orgs::upsert(
                &mut tx,
                &NewOrg {
                    full_name: &r.full_name,
                    short_name: &r.short_name,
                    kind: r.kind,
                    parent_id,
                    secretary: r.secretary.as_deref(),
                },
                now_ms,
            )
            .await?;
            for a in &r.aliases {
                orgs::set_alias(&mut tx, a, id).await?;
            }
            ids.insert(r.full_name.clone(), id);
            ids.insert(r.short_name.clone(), id);
            match what {
                Upserted::Inserted => summary.inserted += 1,
                Upserted::Updated => summary.updated += 1,
                Upserted::Unchanged => summary.unchanged += 1,
            }
            if what != Upserted::Unchanged {
                audit::record(
                    &mut tx,
                    &audit::Entry {
                        at_ms: now_ms,
                        platform: Platform::Console,
                        actor,
                        action: if what == Upserted::Inserted {
                            "org.create"
                        } else {
                            "org.update"
                        },
                        entity: "org",
                        entity_id: Some(id.to_string()),
                        detail: json!({"full_name": r.full_name, "line": r.line}),
                    },
                )
                .await?;
            }
            done += 1;
            progress(done, total);
        }
        if next.len() == before {
            // Nobody could be placed: the remaining rows form a cycle.
            for r in &next {
                errors.push(
                    t!(
                        "import.cycle",
                        locale = locale,
                        line = r.line,
                        value = r.full_name.as_str()
                    )
                    .into_owned(),
                );
            }
            break;
        }
        left = next;
    }
    if !errors.is_empty() {
        tx.rollback().await?;
        return Err(ImportError::Invalid(errors));
    }
    tx.commit().await?;
    progress(total, total);
    Ok(summary)
}
