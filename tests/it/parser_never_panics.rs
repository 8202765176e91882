//! Property tests: the parsers accept any text without panicking.

use chrono::NaiveDate;
use proptest::prelude::*;
use tuanbot::command::activity::{ActivityRules, parse_activity, parse_activity_lines};
use tuanbot::command::dates::{find_date, find_date_range, find_datetime};
use tuanbot::command::numerals::{find_numbers, parse_number, scan_number};

/// Text built from the pieces reports are made of, so the parser's deeper
/// paths are reached far more often than with uniform Unicode.
fn report_like() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "3月5日",
        "2026-02-29",
        "2月30日",
        "上周五",
        "周日",
        "昨天",
        "本月3号",
        "3.15",
        "5-18",
        "上午",
        "下午3点",
        "18:00",
        "在",
        "于",
        "到",
        "地点:",
        "县城三里铺",
        "会议室",
        "社区",
        "参加",
        "实到",
        "应到",
        "共计",
        "每人",
        "服务时长",
        "走访",
        "为",
        "其中",
        "约",
        "近",
        "余",
        "多",
        "人",
        "名",
        "人次",
        "小时",
        "个半小时",
        "份",
        "万元",
        "元",
        "株",
        "个",
        "45",
        "1.2万",
        "54.8",
        "二十三",
        "一百零八",
        "两万三千",
        "十",
        "百",
        "一",
        "第",
        "五四",
        "“",
        "”",
        "《",
        "》",
        "\"",
        " ",
        "\n",
        ",",
        "。",
        "志愿服务",
        "团课",
        "支委会",
        "组织生活会",
        "宣传",
        "竞赛",
        "慰问",
        "/log",
        "记录",
        "🎉",
        "\u{0}",
        "'; DROP TABLE x;--",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

fn any_day() -> impl Strategy<Value = NaiveDate> {
    (1i32..=9999, 1u32..=366).prop_map(|(y, d)| {
        NaiveDate::from_yo_opt(y, d).unwrap_or_else(|| NaiveDate::from_yo_opt(y, 1).unwrap())
    })
}

/// 512 cases per property unless `PROPTEST_CASES` says otherwise.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn parse_activity_never_panics(text in any::<String>(), today in any_day()) {
        let rules = ActivityRules::builtin();
        let r = parse_activity(&text, today, rules);
        prop_assert!(!r.title.is_empty());
        let _ = parse_activity_lines(&text, today, rules);
        prop_assert!(serde_json::to_string(&r).is_ok());
    }

    #[test]
    fn report_like_text_never_panics(text in report_like(), today in any_day()) {
        let rules = ActivityRules::builtin();
        let r = parse_activity(&text, today, rules);
        prop_assert!(!r.title.is_empty());
        prop_assert!(r.hours.is_none_or(f64::is_finite));
        prop_assert!(r.quantities.iter().all(|q| q.count.is_finite() && q.count >= 0.0));
        for line in parse_activity_lines(&text, today, rules) {
            prop_assert!(!line.title.is_empty());
        }
    }

    #[test]
    fn number_readers_never_panic(text in any::<String>()) {
        let _ = parse_number(&text);
        let _ = scan_number(&text);
        for (v, r) in find_numbers(&text) {
            prop_assert!(v.is_finite());
            prop_assert!(text.get(r).is_some());
        }
    }

    #[test]
    fn number_readers_on_numeral_soup(text in "[0-9〇零一二两三四五六七八九十百千万亿,.余多 ]{0,40}") {
        let _ = parse_number(&text);
        if let Some((v, len)) = scan_number(&text) {
            prop_assert!(v.is_finite() && len <= text.len());
        }
        let _ = find_numbers(&text);
    }

    #[test]
    fn date_readers_never_panic(text in report_like(), today in any_day()) {
        if let Some((_, r)) = find_date(&text, today) {
            prop_assert!(text.get(r).is_some());
        }
        if let Some((_, r)) = find_datetime(&text, today) {
            prop_assert!(text.get(r).is_some());
        }
        if let Some((a, b)) = find_date_range(&text, today) {
            prop_assert!(a <= b);
        }
    }

    #[test]
    fn date_readers_on_any_text(text in any::<String>(), today in any_day()) {
        let _ = find_date(&text, today);
        let _ = find_datetime(&text, today);
        let _ = find_date_range(&text, today);
    }
}

#[test]
fn long_and_hostile_inputs() {
    let today = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let rules = ActivityRules::builtin();
    let inputs = [
        "9".repeat(5000),
        "一".repeat(5000),
        "十".repeat(5000),
        "1人 ".repeat(1250),
        "在".repeat(5000),
        "“".repeat(5000),
        "🎉".repeat(5000),
        "\u{0}\u{7f}\u{1b}[0m".repeat(1000),
        "'; DROP TABLE activities; --".repeat(180),
        "3月5日 学雷锋志愿服务 参加团员45人 服务时长90小时 地点三里铺 ".repeat(80),
        "\n".repeat(5000),
        "9".repeat(400) + "万元",
        "1.2万".repeat(1000),
    ];
    for text in &inputs {
        let r = parse_activity(text, today, rules);
        assert!(!r.title.is_empty());
        assert!(r.title.chars().count() <= 40);
        let _ = parse_activity_lines(text, today, rules);
    }
    // extreme dates
    for today in [NaiveDate::MIN, NaiveDate::MAX] {
        let r = parse_activity("3月5日 周日 上周五 本月3号 明天 团课 30人", today, rules);
        assert!(!r.title.is_empty());
        let _ = find_date_range("本周 上月 本季度 去年 3月", today);
        let _ = find_datetime("下周五 下午3点 1月3日", today);
    }
}

/// Inputs proptest once found panicking (an approximate marker before a
/// spaced count: the count's span began before its clause). They must read
/// as the people a cadre meant.
#[test]
fn approx_marker_before_a_spaced_count() {
    let today = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let rules = ActivityRules::builtin();
    for (text, people) in [
        ("约 45人", 45),
        ("参加约 45人", 45),
        ("3月5日 学雷锋 参加约 45人 90小时", 45),
        ("3月5日 团课 近 30人", 30),
    ] {
        let r = parse_activity(text, today, rules);
        assert_eq!(r.participants, Some(people), "{text}");
        let _ = parse_activity_lines(text, today, rules);
    }
    for text in ["人约 1.2万人", "约 ", " 约 45", "约 约 45人 约"] {
        let _ = parse_activity(text, today, rules);
        let _ = parse_activity_lines(text, today, rules);
    }
}
