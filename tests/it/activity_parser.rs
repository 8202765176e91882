//! Every example in `tests/fixtures/activities.jsonl` must parse exactly.

use chrono::NaiveDate;
use serde_json::Value;
use tuanbot::command::activity::{ActivityRules, parse_activity, parse_activity_lines};

fn fixture() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/activities.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("fixture file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("fixture line is JSON"))
        .collect()
}

#[test]
fn every_fixture_example_parses() {
    let rules = ActivityRules::builtin();
    let cases = fixture();
    assert_eq!(cases.len(), 21, "fixture size");
    let mut failures = Vec::new();
    for case in &cases {
        let today: NaiveDate = case["today"].as_str().unwrap().parse().unwrap();
        let text = case["text"].as_str().unwrap();
        let expect = &case["expect"];
        let report = parse_activity(text, today, rules);
        let got = serde_json::to_value(&report).unwrap();
        let mut problems = Vec::new();
        for key in ["date", "category", "participants", "hours", "location"] {
            if got[key] != expect[key] {
                problems.push(format!("{key}: got {} want {}", got[key], expect[key]));
            }
        }
        let got_q: Vec<(Value, Value)> = got["quantities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| (q["count"].clone(), q["unit"].clone()))
            .collect();
        let want_q: Vec<(Value, Value)> = expect["quantities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| (q["count"].clone(), q["unit"].clone()))
            .collect();
        if got_q != want_q {
            problems.push(format!("quantities: got {got_q:?} want {want_q:?}"));
        }
        assert!(!report.title.is_empty());
        if !problems.is_empty() {
            failures.push(format!(
                "{text}\n    {}\n    full: {got}",
                problems.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}/{} fixture examples failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn serialized_shape_and_key_order() {
    let today = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let report = parse_activity(
        "3月5日 学雷锋志愿服务 45人 90小时 三里铺 发放宣传资料2000份",
        today,
        ActivityRules::builtin(),
    );
    let json = serde_json::to_string(&report).unwrap();
    assert_eq!(
        json,
        r#"{"kind":"activity","date":"2026-03-05","category":"志愿服务","title":"学雷锋志愿服务","participants":45,"approx":false,"hours":90,"location":"三里铺","org":null,"quantities":[{"count":2000,"unit":"份","what":"宣传资料"}],"warnings":[]}"#
    );
}

#[test]
fn fixture_lines_as_one_message() {
    // all fixture texts sharing a `today` sent as one multi-line /log
    let today = NaiveDate::from_ymd_opt(2026, 5, 10).unwrap();
    let msg = "/log\n5月4日 主题团日 “青春心向党” 在烈士陵园 40人\n\n5月4日上午 新团员入团仪式 12名新团员宣誓\n";
    let reports = parse_activity_lines(msg, today, ActivityRules::builtin());
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].participants, Some(40));
    assert_eq!(reports[1].participants, Some(12));
}
