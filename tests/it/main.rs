//! Integration tests: one binary, one module per feature. Every store test
//! runs on a fresh SQLite file and on a fresh PostgreSQL schema; the suite
//! fails (never skips) when PostgreSQL is unreachable.

mod activities;
mod activity_parser;
mod architecture;
mod backup;
mod bench;
mod browser;
mod cli;
mod console_scripts;
mod copy;
mod doctor;
mod engine;
mod events;
mod exports;
mod failed;
mod faq;
mod files;
mod flood;
mod helpers;
mod import_orgs;
mod jobs;
mod members;
mod near_misses;
mod notices;
mod onebot;
mod operate;
mod outage;
mod outbox;
mod parser_never_panics;
mod permissions;
mod privacy;
mod qqbot;
mod qqbot_fake;
mod reports;
mod rush;
mod store;
mod telegram;
mod upgrades;
mod web;
mod wishes;
