//! `/edit ID FIELD VALUE` (修改 57 人数 50): which field, and its new value
//! read for that field.
//!
//! ```text
//! edit  := ["#"] ID ["号"] FIELD [":"|"为"] VALUE      57 人数 50, #57 地点 三里铺村, 57人数50
//! ```

use chrono::NaiveDate;

use super::Command;
use super::dates::{activity_date, find_date};
use super::numerals::parse_number;
use crate::domain::category::Category;

/// Longest title or place accepted by `/edit`, in characters.
pub const MAX_FIELD_CHARS: usize = 60;

/// The field an `/edit` changes, by its Chinese (or English) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditField {
    Date,
    Category,
    Participants,
    Hours,
    Location,
    Title,
}

impl EditField {
    pub fn parse(word: &str) -> Option<EditField> {
        Some(match word {
            "日期" | "时间" | "date" => EditField::Date,
            "类别" | "类型" | "分类" | "category" => EditField::Category,
            "人数" | "参与人数" | "参加人数" | "people" | "participants" => {
                EditField::Participants
            }
            "时长" | "小时" | "志愿时长" | "服务时长" | "hours" => EditField::Hours,
            "地点" | "地址" | "place" | "location" => EditField::Location,
            "标题" | "名称" | "活动名称" | "title" => EditField::Title,
            _ => return None,
        })
    }

    /// Stable code, also the locale key suffix (`activity.field.<code>`).
    pub fn code(self) -> &'static str {
        match self {
            EditField::Date => "date",
            EditField::Category => "category",
            EditField::Participants => "participants",
            EditField::Hours => "hours",
            EditField::Location => "location",
            EditField::Title => "title",
        }
    }
}

/// A new value, read for its field.
#[derive(Debug, Clone, PartialEq)]
pub enum EditValue {
    Date(NaiveDate),
    Category(Category),
    Participants(i64),
    Hours(f64),
    /// A place or a title, as typed (trimmed).
    Text(String),
}

/// Why a value can't be used; each has its reply (`activity.edit_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("date in the future")]
    FutureDate,
    #[error("not a date")]
    BadDate,
    #[error("not a category")]
    BadCategory,
    #[error("not a number")]
    BadNumber,
    #[error("empty or longer than {MAX_FIELD_CHARS} characters")]
    BadText,
}

impl EditField {
    /// `value` read for this field on `today`.
    pub fn read(self, value: &str, today: NaiveDate) -> Result<EditValue, EditError> {
        let value = value.trim();
        match self {
            EditField::Date => match find_date(value, today) {
                Some((d, _)) => {
                    let d = activity_date(value, d, today);
                    if d <= today {
                        Ok(EditValue::Date(d))
                    } else {
                        Err(EditError::FutureDate)
                    }
                }
                None => Err(EditError::BadDate),
            },
            EditField::Category => value
                .parse::<Category>()
                .map(EditValue::Category)
                .map_err(|_| EditError::BadCategory),
            EditField::Participants => match parse_number(value.trim_end_matches(['人', '名'])) {
                Some(n) if n >= 0.0 && n.fract() == 0.0 && n < 1e7 => {
                    Ok(EditValue::Participants(n as i64))
                }
                _ => Err(EditError::BadNumber),
            },
            EditField::Hours => {
                match parse_number(value.trim_end_matches("小时").trim_end_matches('h')) {
                    Some(n) if (0.0..1e7).contains(&n) => Ok(EditValue::Hours(n)),
                    _ => Err(EditError::BadNumber),
                }
            }
            EditField::Location | EditField::Title => {
                if value.is_empty() || value.chars().count() > MAX_FIELD_CHARS {
                    Err(EditError::BadText)
                } else {
                    Ok(EditValue::Text(value.to_string()))
                }
            }
        }
    }
}

/// `57 人数 50`, `#57 地点 三里铺村`, `57人数50`; `None` when the number or
/// the field can't be read, or no value follows.
pub fn parse_args(args: &str, today: NaiveDate) -> Option<Command> {
    let args = args.trim().trim_start_matches('#');
    let digits = args
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(args.len());
    let id = args[..digits].parse::<i64>().ok().filter(|n| *n > 0)?;
    let rest = args[digits..].trim_start_matches('号').trim();
    let (word, value) = match rest.split_once(char::is_whitespace) {
        Some((w, v)) => (w, v.trim()),
        None => {
            // `人数50`: the field name runs into the value.
            let cut = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            (&rest[..cut], rest[cut..].trim())
        }
    };
    let field = EditField::parse(word.trim_end_matches([':', '为']))?;
    (!value.is_empty()).then(|| Command::Edit {
        id,
        field,
        value: field.read(value.trim_start_matches([':', '为']), today),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    #[test]
    fn values_by_field() {
        let today = day(3, 10);
        let read = |f: EditField, v: &str| f.read(v, today);
        use EditError::*;
        use EditField as F;
        let long = "长".repeat(61);
        let cases: Vec<(EditField, &str, Result<EditValue, EditError>)> = vec![
            (F::Date, "3月5日", Ok(EditValue::Date(day(3, 5)))),
            (F::Date, "昨天", Ok(EditValue::Date(day(3, 9)))),
            (F::Date, "2026-03-10", Ok(EditValue::Date(day(3, 10)))),
            // Written on 3月10日, 3月16日 means next week: not yet.
            (F::Date, "3月16日", Err(FutureDate)),
            (F::Date, "明天", Err(FutureDate)),
            (F::Date, "2月30日", Err(BadDate)),
            (F::Date, "上次", Err(BadDate)),
            (
                F::Category,
                "团课",
                Ok(EditValue::Category(Category::LeagueLecture)),
            ),
            (F::Category, "团课课", Err(BadCategory)),
            (F::Participants, "50", Ok(EditValue::Participants(50))),
            (F::Participants, "50人", Ok(EditValue::Participants(50))),
            (F::Participants, "三十名", Ok(EditValue::Participants(30))),
            (F::Participants, "2.5", Err(BadNumber)),
            (F::Participants, "-3", Err(BadNumber)),
            (F::Participants, "五十多", Err(BadNumber)),
            (F::Hours, "2.5小时", Ok(EditValue::Hours(2.5))),
            (F::Hours, "3h", Ok(EditValue::Hours(3.0))),
            (F::Hours, "半天", Err(BadNumber)),
            (
                F::Location,
                " 三里铺村 ",
                Ok(EditValue::Text("三里铺村".into())),
            ),
            (
                F::Title,
                "学雷锋 志愿服务",
                Ok(EditValue::Text("学雷锋 志愿服务".into())),
            ),
            (F::Title, &long, Err(BadText)),
        ];
        for (field, value, want) in cases {
            assert_eq!(read(field, value), want, "{field:?} {value:?}");
        }
    }

    #[test]
    fn arguments() {
        let today = day(3, 10);
        assert_eq!(
            parse_args("#57 人数:50", today),
            Some(Command::Edit {
                id: 57,
                field: EditField::Participants,
                value: Ok(EditValue::Participants(50)),
            })
        );
        assert_eq!(
            parse_args("57 日期 明天", today),
            Some(Command::Edit {
                id: 57,
                field: EditField::Date,
                value: Err(EditError::FutureDate),
            })
        );
        for bad in ["", "57", "57 人数", "x 人数 5", "0 人数 5", "57 颜色 红"] {
            assert_eq!(parse_args(bad, today), None, "{bad:?}");
        }
    }
}
