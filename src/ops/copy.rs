//! `tuanbot copy --from URL --to URL`: move a county's data from one
//! database to another — typically from the embedded SQLite file to
//! PostgreSQL when a county wants several replicas or its DBA's backups.
//!
//! Both databases are migrated to this binary's schema first; the target
//! must be empty. Every table is copied row by row with its ids, in the
//! order of the foreign keys (a self-reference, such as an org's parent, is
//! filled in after the rows), in ONE transaction on the target and one read
//! transaction on the source; on PostgreSQL the id sequences are then moved
//! past the copied ids. Both databases are locked for the copy (see
//! [`super::lock`]): stop the bot first.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Connection;

use super::Target;
use super::lock::{self, LockError};
use crate::store::maintenance::{self, Column, Counts, Value};
use crate::store::{Store, StoreError};

/// What a copy moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Rows per table, in the order copied.
    pub tables: Vec<(String, usize)>,
    pub counts: Counts,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("--from and --to are the same database")]
    Same,
    #[error("the source database {0} does not exist")]
    NoSource(String),
    #[error("a tuanbot process is using {0}")]
    InUse(String),
    #[error("the target database is not empty (table {0} has rows)")]
    NotEmpty(String),
    #[error("the copy does not add up: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("{0}")]
    Other(String),
}

async fn hold(url: &str) -> Result<lock::Held, CopyError> {
    match lock::exclusive(url).await {
        Ok(h) => Ok(h),
        Err(LockError::Busy) => Err(CopyError::InUse(crate::app::redact(url))),
        Err(e) => Err(CopyError::Other(e.to_string())),
    }
}

/// Copy everything from `from` into the empty database `to`.
pub async fn copy(from: &str, to: &str) -> Result<Copied, CopyError> {
    if from == to {
        return Err(CopyError::Same);
    }
    let source = Target::of(from).map_err(|e| CopyError::Other(e.to_string()))?;
    if let Target::Sqlite(path) = &source
        && !path.exists()
    {
        return Err(CopyError::NoSource(path.display().to_string()));
    }
    let _from = hold(from).await?;
    let _to = hold(to).await?;
    let src = Store::open(from, "full").await?;
    let dst = Store::open(to, "full").await?;
    let result = copy_stores(&src, &dst).await;
    src.close().await;
    dst.close().await;
    result
}

async fn copy_stores(src: &Store, dst: &Store) -> Result<Copied, CopyError> {
    let mut read = src.conn().await?;
    let mut read = read.begin().await?;
    let tables = maintenance::tables(&mut read, src.backend()).await?;
    let mut refs = BTreeMap::new();
    for t in &tables {
        refs.insert(
            t.clone(),
            maintenance::foreign_keys(&mut read, src.backend(), t).await?,
        );
    }
    let order = by_foreign_keys(&tables, &refs);
    let mut tx = dst.begin().await?;
    let target_tables = maintenance::tables(&mut tx, dst.backend()).await?;
    for t in &target_tables {
        if !maintenance::is_empty(&mut tx, t).await? {
            return Err(CopyError::NotEmpty(t.clone()));
        }
    }
    let mut copied = Vec::new();
    for table in &order {
        let columns = maintenance::columns(&mut tx, dst.backend(), table).await?;
        let source_columns = maintenance::columns(&mut read, src.backend(), table).await?;
        if columns
            .iter()
            .map(|c| &c.name)
            .ne(source_columns.iter().map(|c| &c.name))
        {
            return Err(CopyError::Mismatch(format!(
                "table {table} has other columns in the two databases"
            )));
        }
        let mut rows = maintenance::rows(&mut read, table, &columns).await?;
        // Self-references are set once every row of the table is in.
        let own: Vec<usize> = refs[table]
            .iter()
            .filter(|(_, r)| r == table)
            .filter_map(|(c, _)| columns.iter().position(|col| &col.name == c))
            .collect();
        let mut later = Vec::new();
        for row in &mut rows {
            for &i in &own {
                if let Value::Int(v) = row[i] {
                    later.push((row[0].clone(), i, v));
                    row[i] = Value::Null;
                }
            }
        }
        maintenance::insert_rows(&mut tx, table, &columns, &rows).await?;
        for (key, i, v) in later {
            maintenance::set_int(&mut tx, table, &columns[0].name, &key, &columns[i].name, v)
                .await?;
        }
        if columns.iter().any(|c: &Column| c.name == "id") {
            maintenance::advance_sequence(&mut tx, dst.backend(), table).await?;
        }
        copied.push((table.clone(), rows.len()));
    }
    let counts = maintenance::counts(&mut tx).await?;
    let expected = maintenance::counts(&mut read).await?;
    if counts != expected {
        return Err(CopyError::Mismatch(format!(
            "source {expected:?}, target {counts:?}"
        )));
    }
    tx.commit().await?;
    read.commit().await?;
    Ok(Copied {
        tables: copied,
        counts,
    })
}

/// The tables in an order where every table comes after the tables its
/// foreign keys point to (self-references aside); by name otherwise.
fn by_foreign_keys(
    tables: &[String],
    refs: &BTreeMap<String, Vec<(String, String)>>,
) -> Vec<String> {
    let mut done: Vec<String> = Vec::new();
    let mut left: BTreeSet<&String> = tables.iter().collect();
    while !left.is_empty() {
        let ready: Vec<&String> = left
            .iter()
            .copied()
            .filter(|t| {
                refs.get(*t)
                    .into_iter()
                    .flatten()
                    .all(|(_, r)| r == *t || done.contains(r) || !tables.contains(r))
            })
            .collect();
        // A cycle between tables (none in tuanbot's schema) is copied in
        // name order rather than not at all.
        let ready = if ready.is_empty() {
            left.iter().copied().take(1).collect()
        } else {
            ready
        };
        for t in ready {
            left.remove(t);
            done.push(t.clone());
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_before_children() {
        let tables: Vec<String> = ["wishes", "orgs", "people", "wish_batches"]
            .map(String::from)
            .to_vec();
        let mut refs = BTreeMap::new();
        let r = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        refs.insert(
            "wishes".into(),
            r(&[
                ("batch_id", "wish_batches"),
                ("org_id", "orgs"),
                ("claimer_id", "people"),
            ]),
        );
        refs.insert("orgs".into(), r(&[("parent_id", "orgs")]));
        refs.insert("people".into(), r(&[("org_id", "orgs")]));
        refs.insert("wish_batches".into(), vec![]);
        assert_eq!(
            by_foreign_keys(&tables, &refs),
            ["orgs", "wish_batches", "people", "wishes"]
        );
    }
}
