//! Command parsing (after normalisation) must accept any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tuanbot::command::{ParseOptions, normalize::normalize, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let opts = ParseOptions {
        bot_username: Some("tuan_bot"),
        bot_name: Some("团务助手"),
        ..Default::default()
    };
    let _ = parse(&normalize(text), &opts);
});
