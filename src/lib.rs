//! tuanbot: a group-chat assistant for Communist Youth League county
//! committees. See ARCHITECTURE.md for the bird's-eye view.

rust_i18n::i18n!("locales", fallback = "zh-CN");

pub mod app;
pub mod bench;
pub mod chat;
pub mod clock;
pub mod command;
pub mod config;
pub mod domain;
pub mod engine;
pub mod export;
pub mod faq;
pub mod i18n;
pub mod jobs;
pub mod metrics;
pub mod ops;
pub mod outage;
pub mod outbox;
pub mod report;
pub mod service;
pub mod store;
pub mod table;
pub mod web;
