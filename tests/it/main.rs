//! Integration tests: one binary, one module per feature. Every store test
//! runs on a fresh SQLite file and on a fresh PostgreSQL schema; the suite
//! fails (never skips) when PostgreSQL is unreachable.

mod helpers;

mod activities;
mod activity_parser;
mod bench;
mod browser;
mod cli;
mod console_scripts;
mod engine;
mod events;
mod failed;
mod faq;
mod flood;
mod import_orgs;
mod jobs;
mod notices;
mod onebot;
mod outage;
mod outbox;
mod parser_never_panics;
mod permissions;
mod reports;
mod rush;
mod store;
mod telegram;
mod web;
mod wishes;
