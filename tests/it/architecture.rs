//! The one-way flow, checked on the source (ARCHITECTURE.md, "Bird's-eye
//! view"): adapter → engine → service → Out → dispatcher. Services and the
//! scheduler never reach back into the engine; the engine names no feature,
//! only the service hooks; only the Out port writes outbox rows for a
//! service; `report` and the scheduler are below the services, never
//! imported by them.

use std::path::{Path, PathBuf};

/// What `engine.rs` may name of `service`: the hooks and the types they
/// take or give.
const ENGINE_MAY_NAME: &[&str] = &[
    // hooks
    "dispatch",
    "batch_key",
    "run_batch",
    "download_for",
    "download",
    // their types
    "self",
    "Env",
    "FileFetcher",
    "Update",
    "Batched",
    "Download",
    "Fetched",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file: each line with its `//` comment (doc comments
/// included) cut off, numbered from 1.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            let code = match l.find("//") {
                // Not inside a string such as "http://…".
                Some(at) if !l[..at].contains('"') => &l[..at],
                _ => l,
            };
            (i + 1, code.to_string())
        })
        .collect()
}

/// Lines of `files` whose code contains any of `needles`, as `path:line`.
fn offending(files: &[PathBuf], needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        for (n, code) in code_lines(f) {
            if needles.iter().any(|needle| code.contains(needle)) {
                let rel = f.strip_prefix(root()).unwrap_or(f);
                found.push(format!("{}:{n}: {}", rel.display(), code.trim()));
            }
        }
    }
    found
}

#[test]
fn services_and_the_scheduler_never_reach_back_into_the_engine() {
    let mut files = rust_files(&root().join("src/service"));
    files.push(root().join("src/jobs.rs"));
    let found = offending(&files, &["crate::engine", "engine::"]);
    assert!(found.is_empty(), "engine named in:\n{}", found.join("\n"));
}

#[test]
fn services_do_not_import_the_scheduler_and_report_not_the_services() {
    let services = rust_files(&root().join("src/service"));
    let found = offending(&services, &["crate::jobs"]);
    assert!(found.is_empty(), "crate::jobs in:\n{}", found.join("\n"));
    let report = rust_files(&root().join("src/report"));
    let found = offending(&report, &["crate::service", "service::"]);
    assert!(found.is_empty(), "service named in:\n{}", found.join("\n"));
}

#[test]
fn only_the_out_port_touches_the_outbox_for_a_service() {
    let port = root().join("src/service/out.rs");
    let env = root().join("src/service/env.rs");
    let files: Vec<_> = rust_files(&root().join("src/service"))
        .into_iter()
        .filter(|f| *f != port)
        .collect();
    let found = offending(&files, &["store::outbox", "outbox::", "crate::outbox"]);
    assert!(
        found.is_empty(),
        "outbox used directly in:\n{}",
        found.join("\n")
    );
    // Waking the dispatcher is for the code that commits, after it does.
    let files: Vec<_> = files.into_iter().filter(|f| *f != env).collect();
    let found = offending(&files, &["outbox_ready"]);
    assert!(
        found.is_empty(),
        "a service wakes the dispatcher:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_engine_names_only_the_service_hooks() {
    let engine = root().join("src/engine.rs");
    let mut named = Vec::new();
    for (n, code) in code_lines(&engine) {
        // `use crate::service::{self, Env};`
        if let Some(at) = code.find("service::{") {
            let list = &code[at + "service::{".len()..];
            let list = &list[..list.find('}').unwrap_or(list.len())];
            for item in list.split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    named.push((n, item.to_string()));
                }
            }
        }
        // `service::dispatch(…)`, `crate::service::Env`
        let mut rest = code.as_str();
        while let Some(at) = rest.find("service::") {
            rest = &rest[at + "service::".len()..];
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                named.push((n, ident));
            }
        }
    }
    assert!(
        named.iter().any(|(_, i)| i == "dispatch"),
        "the check reads engine.rs: {named:?}"
    );
    let bad: Vec<_> = named
        .iter()
        .filter(|(_, i)| !ENGINE_MAY_NAME.contains(&i.as_str()))
        .map(|(n, i)| format!("src/engine.rs:{n}: service::{i}"))
        .collect();
    assert!(
        bad.is_empty(),
        "the engine names a feature:\n{}",
        bad.join("\n")
    );
}
