//! Integration tests: one binary, one module per feature. Every store test
//! runs on a fresh SQLite file and on a fresh PostgreSQL schema; the suite
//! fails (never skips) when PostgreSQL is unreachable.

mod helpers;

mod cli;
mod console_scripts;
mod engine;
mod import_orgs;
mod outbox;
mod permissions;
mod store;
mod wishes;
