//! The `/log` parser and the date/number readers must accept any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tuanbot::command::activity::{ActivityRules, parse_activity_lines};
use tuanbot::command::{dates, numerals};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let today = chrono::NaiveDate::from_ymd_opt(2026, 3, 10).unwrap_or_default();
    let reports = parse_activity_lines(text, today, ActivityRules::builtin());
    for r in reports {
        assert!(!r.title.is_empty());
    }
    let _ = dates::find_date_range(text, today);
    let _ = dates::find_datetime(text, today);
    let _ = numerals::find_numbers(text);
});
