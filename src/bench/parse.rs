//! `tuanbot bench parse`: `/log` lines parsed per second on one thread.

use std::time::Instant;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::command::activity::{ActivityRules, parse_activity};

/// The fixture lines the benchmark cycles through (real report shapes).
const FIXTURE: &str = include_str!("../../tests/fixtures/activities.jsonl");

#[derive(Debug, Deserialize)]
struct Example {
    today: NaiveDate,
    text: String,
}

#[derive(Debug, Serialize)]
pub struct ParseBench {
    pub bench: &'static str,
    pub messages: usize,
    pub seconds: f64,
    pub messages_per_s: f64,
    pub mean_us: f64,
    pub threads: usize,
}

/// Parse `messages` lines (cycling through the fixture) and time it.
pub fn run(messages: usize) -> ParseBench {
    let rules = ActivityRules::builtin();
    let examples: Vec<Example> = FIXTURE
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Warm-up: first use compiles the rules and regexes.
    for e in &examples {
        std::hint::black_box(parse_activity(&e.text, e.today, rules));
    }
    let start = Instant::now();
    let mut n = 0;
    while n < messages {
        for e in &examples {
            if n == messages {
                break;
            }
            std::hint::black_box(parse_activity(
                std::hint::black_box(&e.text),
                e.today,
                rules,
            ));
            n += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    ParseBench {
        bench: "parse",
        messages,
        seconds,
        messages_per_s: messages as f64 / seconds.max(1e-9),
        mean_us: seconds * 1e6 / messages.max(1) as f64,
        threads: 1,
    }
}
