//! Where a database stands against the migrations of this binary:
//! `tuanbot migrate --check`, the doctor and restores read it.

use crate::store::{self, Backend, Conn, StoreError};

/// A database's migrations against this binary's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Versions applied to the database.
    pub applied: Vec<i64>,
    /// Migrations of this binary not applied yet: `(version, description)`.
    pub pending: Vec<(i64, String)>,
    /// Applied versions this binary does not know: a newer tuanbot
    /// migrated the database.
    pub unknown: Vec<i64>,
    /// Applied versions whose SQL differs from this binary's.
    pub modified: Vec<i64>,
}

impl Status {
    /// Compare `applied` (`(version, checksum)`, as stored) with the
    /// migrations this binary carries for `backend`.
    pub fn of(applied: &[(i64, Vec<u8>)], backend: Backend) -> Status {
        let migrator = store::migrator(backend);
        let mut status = Status {
            applied: applied.iter().map(|(v, _)| *v).collect(),
            ..Status::default()
        };
        for m in migrator.iter() {
            match applied.iter().find(|(v, _)| *v == m.version) {
                Some((_, sum)) if sum.as_slice() != &*m.checksum => status.modified.push(m.version),
                Some(_) => {}
                None => status.pending.push((m.version, m.description.to_string())),
            }
        }
        status.unknown = applied
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| !migrator.version_exists(*v))
            .collect();
        status
    }

    /// The status of the database on `conn`.
    pub async fn read(conn: &mut Conn, backend: Backend) -> Result<Status, StoreError> {
        let applied = store::maintenance::applied_migrations(conn, backend)
            .await?
            .unwrap_or_default();
        Ok(Status::of(&applied, backend))
    }

    /// A database this binary cannot migrate: made by a newer tuanbot, or
    /// with migrations changed since.
    pub fn is_foreign(&self) -> bool {
        !self.unknown.is_empty() || !self.modified.is_empty()
    }

    /// The versions that make the database foreign ([`Status::is_foreign`]),
    /// as the migration files name them: `0015, 0016`.
    pub fn foreign_versions(&self) -> String {
        self.unknown
            .iter()
            .chain(&self.modified)
            .map(|v| version_name(*v))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The newest version applied (0 for none).
    pub fn version(&self) -> i64 {
        self.applied.iter().copied().max().unwrap_or(0)
    }
}

/// The newest migration this binary carries for `backend`.
pub fn latest(backend: Backend) -> i64 {
    store::migrator(backend)
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// `0014` for 14, as the migration files are named.
pub fn version_name(v: i64) -> String {
    format!("{v:04}")
}
